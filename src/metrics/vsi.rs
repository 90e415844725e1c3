//! VSI (`vsi`, Zhang, Shen & Li 2014) as pyiqa 0.1.16 computes it, in float64: SDSP saliency (CIELAB,
//! log-Gabor band-pass, centre and warm-colour priors at 256×256), LMN colour, k×k block averages with
//! k = round(min(H, W)/256), Scharr gradient magnitude of L, and the similarity of saliency, gradient and
//! chroma pooled by the larger saliency.
//!
//! pyiqa's VSI is a port of piq's, written without the official MATLAB code, and differs from the official
//! scores (README lists the distances); iqa follows pyiqa, whose scores its users compare against.
use super::fsim::pooling_factor;
use crate::error::Result;
use crate::model::{require_ref, MetricSpec, Mode, Model};
use crate::nn::frequency::{centred_grid, log_gabor, machine_eps, scharr_magnitude, similarity_map};
use std::sync::Arc;
use tch::{Kind, Tensor};

pub const METRICS: &[MetricSpec] =
    &[MetricSpec::new("vsi", Mode::FullReference, false, (0.0, 1.0), |_| Ok(Arc::new(Vsi)))];

const C1: f64 = 1.27;
const C2: f64 = 386.0;
const C3: f64 = 130.0;
const ALPHA: f64 = 0.4;
const BETA: f64 = 0.02;
const OMEGA_0: f64 = 0.021;
const SIGMA_F: f64 = 1.34;
const SIGMA_D: f64 = 145.0;
const SIGMA_C: f64 = 0.001;
/// SDSP works on this fixed size.
const SALIENCY_SIDE: i64 = 256;

/// RGB → LMN (rows). Every constant here is written as pyiqa writes it and rounded to float32 where it is used,
/// as pyiqa's `torch.tensor([...])` stores them.
const RGB_TO_LMN: [f64; 9] = [0.06, 0.63, 0.27, 0.30, 0.04, -0.35, 0.34, -0.6, 0.17];
/// sRGB (linear) → XYZ (rows).
const RGB_TO_XYZ: [f64; 9] =
    [0.4124564, 0.3575761, 0.1804375, 0.2126729, 0.7151522, 0.0721750, 0.0193339, 0.1191920, 0.9503041];
/// XYZ → L*a*b* (rows) and the D50 white point (2° observer).
const XYZ_TO_LAB: [f64; 9] = [0.0, 116.0, 0.0, 500.0, -500.0, 0.0, 0.0, 200.0, -200.0];
const D50: [f64; 3] = [0.964_211_994_421_199_4, 1.0, 0.825_188_284_518_828_8];

/// Constants as a float32 tensor (the rounding pyiqa's default dtype gives them), on the CPU.
fn as_f32(values: &[f64]) -> Result<Tensor> {
    let rounded: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Ok(Tensor::f_from_slice(&rounded)?)
}

/// The 3×3 colour matrix `rows` applied to every pixel of an N×3×H×W batch, in the batch's dtype.
fn colour_matrix(x: &Tensor, rows: &[f64; 9]) -> Result<Tensor> {
    let m = as_f32(rows)?.f_view([3, 3])?.f_tr()?.f_to_kind(x.kind())?.f_to_device(x.device())?;
    Ok(x.f_permute([0, 2, 3, 1])?.f_matmul(&m)?.f_permute([0, 3, 1, 2])?)
}

/// pyiqa's `rgb2lab` of a 0..255 batch: sRGB gamma expansion, XYZ, D50-relative CIELAB.
fn rgb_to_lab(x: &Tensor) -> Result<Tensor> {
    let x = x.f_div_scalar(255.0)?;
    let below = x.f_le(0.04045)?.f_to_kind(x.kind())?;
    let above = x.f_gt(0.04045)?.f_to_kind(x.kind())?;
    let linear = x
        .f_div_scalar(12.92)?
        .f_mul(&below)?
        .f_add(&x.f_add_scalar(0.055)?.f_div_scalar(1.055)?.f_pow_tensor_scalar(2.4)?.f_mul(&above)?)?;
    let xyz = colour_matrix(&linear, &RGB_TO_XYZ)?;
    let white = as_f32(&D50)?.f_to_kind(x.kind())?.f_to_device(x.device())?.f_view([1, 3, 1, 1])?;
    let t = xyz.f_div(&white)?;
    let (epsilon, kappa) = (0.008856, 903.3);
    let eps = machine_eps(x.kind());
    // pyiqa's safe_frac_pow: sign(t)·|t + eps|^(1/3).
    let cube_root = t.f_sign()?.f_mul(&t.f_add_scalar(eps)?.f_abs()?.f_pow_tensor_scalar(1.0 / 3.0)?)?;
    let f = cube_root
        .f_mul(&t.f_gt(epsilon)?)?
        .f_add(&t.f_mul_scalar(kappa)?.f_add_scalar(16.0)?.f_div_scalar(116.0)?.f_mul(&t.f_le(epsilon)?)?)?;
    let bias = Tensor::f_from_slice(&[-16.0f32, 0.0, 0.0])?.f_to_kind(x.kind())?.f_to_device(x.device())?;
    Ok(colour_matrix(&f, &XYZ_TO_LAB)?.f_add(&bias.f_view([1, 3, 1, 1])?)?)
}

/// Per-image minimum and maximum over the last two dimensions (keeping them).
fn spatial_min_max(x: &Tensor) -> Result<(Tensor, Tensor)> {
    let min = x.f_amin(&[-1i64][..], true)?.f_amin(&[-2i64][..], true)?;
    let max = x.f_amax(&[-1i64][..], true)?.f_amax(&[-2i64][..], true)?;
    Ok((min, max))
}

/// SDSP visual saliency before its final resize, from the images already resized to 256×256 (N×3×256×256
/// float64, 0..255): N×1×256×256, not yet normalised.
fn sdsp_small(small: &Tensor) -> Result<Tensor> {
    let side = SALIENCY_SIDE;
    let eps = machine_eps(small.kind());
    let lab = rgb_to_lab(small)?;
    // Frequency prior: energy of the log-Gabor band-pass of L*, a*, b*.
    let lg = log_gabor(side, side, OMEGA_0, SIGMA_F)?
        .f_to_kind(small.kind())?
        .f_to_device(small.device())?
        .f_view([1, 1, side, side])?;
    let dims = [-2i64, -1];
    let band = lab
        .f_fft_fft2(None::<&[i64]>, dims, "backward")?
        .f_mul(&lg)?
        .f_fft_ifft2(None::<&[i64]>, dims, "backward")?
        .f_real()?;
    let s_f = band.f_square()?.f_sum_dim_intlist(&[1i64][..], true, None::<Kind>)?.f_add_scalar(eps)?.f_sqrt()?;
    // Location prior: a Gaussian around the centre (pyiqa's grid, scaled by the side and shifted by 1).
    let (gx, gy) = centred_grid(side, side)?;
    let coords = Tensor::f_stack(&[gx, gy], 0)?.f_to_kind(small.kind())?.f_to_device(small.device())?;
    let coords = coords.f_mul_scalar(side as f64)?.f_add_scalar(1.0)?;
    let s_d = coords
        .f_square()?
        .f_sum_dim_intlist(&[0i64][..], false, None::<Kind>)?
        .f_neg()?
        .f_div_scalar(SIGMA_D * SIGMA_D)?
        .f_exp()?
        .f_view([1, 1, side, side])?;
    // Colour prior: warm colours, from the min-max normalised a*, b*.
    let (min, max) = spatial_min_max(&lab)?;
    let normalised = lab.f_sub(&min)?.f_div(&max.f_sub(&min)?.f_add_scalar(eps)?)?;
    let norm = normalised.f_narrow(1, 1, 2)?.f_square()?.f_sum_dim_intlist(&[1i64][..], true, None::<Kind>)?;
    let s_c = norm.f_neg()?.f_div_scalar(SIGMA_C * SIGMA_C)?.f_exp()?.f_neg()?.f_add_scalar(1.0)?;
    Ok(s_f.f_mul(&s_d)?.f_mul(&s_c)?)
}

/// pyiqa's downsampling: k/2 leading and (k−1)/2 trailing rows and columns replicated, then k×k block means.
fn block_average(x: &Tensor, k: i64) -> Result<Tensor> {
    let padded = if k / 2 > 0 {
        // [left, right, top, bottom]
        x.f_pad([k / 2, (k - 1) / 2, k / 2, (k - 1) / 2], "replicate", None)?
    } else {
        x.shallow_clone()
    };
    Ok(padded.f_avg_pool2d([k, k], [k, k], [0, 0], false, true, None)?)
}

pub struct Vsi;

impl Model for Vsi {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let reference = require_ref(reference)?;
        let n = dist.size()[0];
        let (h, w) = (dist.size()[2], dist.size()[3]);
        let k = pooling_factor(h, w);
        let eps = machine_eps(Kind::Double);
        // pyiqa scales each image to 0..255, then resizes it to 256×256 for the saliency, and converts it to LMN
        // and block-averages it for the rest. Resizing, LMN and block means are linear, so iqa resizes and
        // block-averages the [0, 1] images first and scales and converts only the small results: the same
        // values to ~1e-15 relative, with three fewer passes over the full-resolution images.
        let prepare = |x: &Tensor| -> Result<(Tensor, Tensor)> {
            let x = x.f_to_kind(Kind::Double)?;
            let small = x.f_upsample_bilinear2d([SALIENCY_SIDE, SALIENCY_SIDE], false, None, None)?;
            Ok((small, block_average(&x, k)?))
        };
        let (small_x, pooled_x) = prepare(dist)?;
        let (small_y, pooled_y) = prepare(reference)?;
        let small = Tensor::f_cat(&[small_x, small_y], 0)?.f_mul_scalar(255.0)?;
        let lmn = colour_matrix(&Tensor::f_cat(&[pooled_x, pooled_y], 0)?.f_mul_scalar(255.0)?, &RGB_TO_LMN)?;
        // Saliency back at full size (aligned corners), normalised to [0, 1] by its range there; the affine
        // normalisation commutes with the block means, so it is applied to the block means.
        let vs_full = sdsp_small(&small)?.f_upsample_bilinear2d([h, w], true, None, None)?;
        let (min, max) = spatial_min_max(&vs_full)?;
        let vs = block_average(&vs_full, k)?.f_sub(&min)?.f_div(&max.f_sub(&min)?.f_add_scalar(eps)?)?;
        let gm = scharr_magnitude(&lmn.f_narrow(1, 0, 1)?)?;
        let half = |t: &Tensor| -> Result<(Tensor, Tensor)> { Ok((t.f_narrow(0, 0, n)?, t.f_narrow(0, n, n)?)) };
        let (vs_x, vs_y) = half(&vs)?;
        let (gm_x, gm_y) = half(&gm)?;
        let (lmn_x, lmn_y) = half(&lmn)?;
        let s_vs = similarity_map(&vs_x, &vs_y, C1)?;
        let s_gm = similarity_map(&gm_x, &gm_y, C2)?;
        let s_m = similarity_map(&lmn_x.f_narrow(1, 1, 1)?, &lmn_y.f_narrow(1, 1, 1)?, C3)?;
        let s_n = similarity_map(&lmn_x.f_narrow(1, 2, 1)?, &lmn_y.f_narrow(1, 2, 1)?, C3)?;
        let s_c = s_m.f_mul(&s_n)?;
        // Real part of the complex power s_c^β: |s_c|^β · cos(β·arg s_c), arg being 0 or π.
        let arg = s_c.f_zeros_like()?.f_atan2(&s_c)?;
        let chroma = s_c.f_abs()?.f_pow_tensor_scalar(BETA)?.f_mul(&arg.f_mul_scalar(BETA)?.f_cos()?)?;
        let s = s_vs.f_mul(&s_gm.f_pow_tensor_scalar(ALPHA)?)?.f_mul(&chroma)?;
        let vs_max = vs_x.f_maximum(&vs_y)?;
        let dims = &[-1i64, -2][..];
        let num = s.f_mul(&vs_max)?.f_sum_dim_intlist(dims, false, None::<Kind>)?.f_add_scalar(eps)?;
        let den = vs_max.f_sum_dim_intlist(dims, false, None::<Kind>)?.f_add_scalar(eps)?;
        Ok(num.f_div(&den)?.f_squeeze_dim(-1)?)
    }
}
