//! VSI (`vsi`, Zhang, Shen & Li 2014) as pyiqa 0.1.16 computes it, in float64: SDSP saliency (CIELAB,
//! log-Gabor band-pass, centre and warm-colour priors at 256×256), LMN colour, k×k block averages with
//! k = round(min(H, W)/256), Scharr gradient magnitude of L, and the similarity of saliency, gradient and
//! chroma pooled by the larger saliency.
//!
//! pyiqa's VSI is a port of piq's, written without the official MATLAB code, and differs from the official
//! scores (README lists the distances); iqa follows pyiqa, whose scores its users compare against.
use super::fsim::pooling_factor;
use crate::error::Result;
use crate::image::colour::with_target_feature;
use crate::model::{require_ref, MetricSpec, Mode, Model};
use crate::nn::filters::PoolingBlocks;
use crate::nn::frequency::scharr_magnitude_pixel_major;
use crate::nn::frequency::{centred_grid, log_gabor, machine_eps, scharr_magnitude, similarity_map};
use crate::runtime::for_each_piece;
use crate::tensor::{cpu_slice, FreshTensor, FrozenTensor};
use std::sync::Arc;
use tch::kind::Element;
use tch::{Device, Kind, Tensor};

pub const METRICS: &[MetricSpec] =
    &[MetricSpec::new("vsi", Mode::FullReference, false, (0.0, 1.0), |k| Ok(Arc::new(Vsi::new(k.device)?)))];

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
/// The CIELAB threshold between the cube root and the linear segment, and the linear segment's slope.
const LAB_EPSILON: f64 = 0.008856;
const LAB_KAPPA: f64 = 903.3;
/// Values per task of the element-wise loops.
const PIECE: usize = 1 << 14;

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

/// The right-hand factor of pyiqa's colour product `x.permute(0, 2, 3, 1) @ M.T`: the 3×3 matrix `rows`
/// transposed, as a view, in `kind` on `device`.
fn colour_factor(rows: &[f64; 9], kind: Kind, device: Device) -> Result<Tensor> {
    Ok(as_f32(rows)?.f_view([3, 3])?.f_tr()?.f_to_kind(kind)?.f_to_device(device)?)
}

/// The 3×3 colour matrix `rows` applied to every pixel of an N×3×H×W batch, in the batch's dtype.
fn colour_matrix(x: &Tensor, rows: &[f64; 9]) -> Result<Tensor> {
    let m = colour_factor(rows, x.kind(), x.device())?;
    Ok(x.f_permute([0, 2, 3, 1])?.f_matmul(&m)?.f_permute([0, 3, 1, 2])?)
}

/// libtorch's product of pixel-major rows (N·H×W×3, contiguous) by the colour factor of `rows`, as the
/// `matmul` of a permuted NCHW batch runs: a batched product of N·H matrices W×3 by 3×3.
fn batched_colour_product(pixels: &Tensor, rows: &[f64; 9]) -> Result<Tensor> {
    let m = colour_factor(rows, pixels.kind(), pixels.device())?;
    Ok(pixels.f_bmm(&m.f_expand([pixels.size()[0], 3, 3], false)?)?)
}

/// The D50 white point as pyiqa divides by it (float32 constants in float64).
fn white_point() -> [f64; 3] {
    D50.map(|v| v as f32 as f64)
}

/// sRGB gamma expansion of one 0..255 value, given its power term `((x + 0.055) / 1.055)^2.4`: pyiqa's
/// masked sum of the two segments, each operation as libtorch rounds it.
fn gamma_expanded(value: f64, power: f64) -> f64 {
    let x = value / 255.0;
    let (below, above) = (f64::from(u8::from(x <= 0.04045)), f64::from(u8::from(x > 0.04045)));
    x / 12.92 * below + power * above
}

/// The base of the gamma expansion's power for one 0..255 value.
fn gamma_base(value: f64) -> f64 {
    (value / 255.0 + 0.055) / 1.055
}

/// CIELAB's f(t) given |t + eps|^(1/3): pyiqa's masked sum of the signed cube root and the linear segment.
fn lab_f(t: f64, cube_root: f64) -> f64 {
    let sign = f64::from(u8::from(0.0 < t)) - f64::from(u8::from(t < 0.0));
    let (above, below) = (f64::from(u8::from(t > LAB_EPSILON)), f64::from(u8::from(t <= LAB_EPSILON)));
    sign * cube_root * above + (t * LAB_KAPPA + 16.0) / 116.0 * below
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
    let eps = machine_eps(x.kind());
    // pyiqa's safe_frac_pow: sign(t)·|t + eps|^(1/3).
    let cube_root = t.f_sign()?.f_mul(&t.f_add_scalar(eps)?.f_abs()?.f_pow_tensor_scalar(1.0 / 3.0)?)?;
    let f = cube_root
        .f_mul(&t.f_gt(LAB_EPSILON)?)?
        .f_add(&t.f_mul_scalar(LAB_KAPPA)?.f_add_scalar(16.0)?.f_div_scalar(116.0)?.f_mul(&t.f_le(LAB_EPSILON)?)?)?;
    let bias = Tensor::f_from_slice(&[-16.0f32, 0.0, 0.0])?.f_to_kind(x.kind())?.f_to_device(x.device())?;
    Ok(colour_matrix(&f, &XYZ_TO_LAB)?.f_add(&bias.f_view([1, 3, 1, 1])?)?)
}

/// Per-image minimum and maximum over the last two dimensions (keeping them).
fn spatial_min_max(x: &Tensor) -> Result<(Tensor, Tensor)> {
    let min = x.f_amin(&[-1i64][..], true)?.f_amin(&[-2i64][..], true)?;
    let max = x.f_amax(&[-1i64][..], true)?.f_amax(&[-2i64][..], true)?;
    Ok((min, max))
}

/// The smallest and largest of `values`, NaN for both where one is NaN (as libtorch's amin and amax).
fn value_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        if v.is_nan() || lo.is_nan() {
            (f64::NAN, f64::NAN)
        } else {
            (lo.min(v), hi.max(v))
        }
    })
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

/// SDSP's two priors that depend on nothing but the fixed side, made once per handle on its device: the
/// log-Gabor band-pass (frequency prior) and the centred Gaussian (location prior), 1×1×S×S float64 each.
struct Priors {
    log_gabor: FrozenTensor,
    location: FrozenTensor,
}

impl Priors {
    fn new(device: Device) -> Result<Self> {
        let side = SALIENCY_SIDE;
        let log_gabor = log_gabor(side, side, OMEGA_0, SIGMA_F)?.f_to_kind(Kind::Double)?;
        // A Gaussian around the centre of pyiqa's grid, scaled by the side and shifted by 1.
        let (gx, gy) = centred_grid(side, side)?;
        let coords = Tensor::f_stack(&[gx, gy], 0)?.f_to_kind(Kind::Double)?;
        let coords = coords.f_mul_scalar(side as f64)?.f_add_scalar(1.0)?;
        let location = coords
            .f_square()?
            .f_sum_dim_intlist(&[0i64][..], false, None::<Kind>)?
            .f_neg()?
            .f_div_scalar(SIGMA_D * SIGMA_D)?
            .f_exp()?;
        let place = |t: Tensor| -> Result<FrozenTensor> {
            Ok(FrozenTensor::new(t.f_view([1, 1, side, side])?.f_contiguous()?.f_to_device(device)?))
        };
        Ok(Priors { log_gabor: place(log_gabor)?, location: place(location)? })
    }
}

pub struct Vsi {
    priors: Priors,
}

impl Vsi {
    pub fn new(device: Device) -> Result<Self> {
        Ok(Vsi { priors: Priors::new(device)? })
    }

    /// The frequency prior: the energy of the log-Gabor band-pass of L*, a*, b* (N×1×S×S).
    fn frequency_prior(&self, lab: &Tensor) -> Result<Tensor> {
        let dims = [-2i64, -1];
        let band = lab
            .f_fft_fft2(None::<&[i64]>, dims, "backward")?
            .f_mul(&self.priors.log_gabor)?
            .f_fft_ifft2(None::<&[i64]>, dims, "backward")?
            .f_real()?;
        let eps = machine_eps(lab.kind());
        Ok(band.f_square()?.f_sum_dim_intlist(&[1i64][..], true, None::<Kind>)?.f_add_scalar(eps)?.f_sqrt()?)
    }

    /// SDSP visual saliency before its final resize, from the images already resized to 256×256 (N×3×256×256
    /// float64, 0..255): N×1×256×256, not yet normalised. libtorch's operations throughout (any device).
    fn saliency(&self, small: &Tensor) -> Result<Tensor> {
        let eps = machine_eps(small.kind());
        let lab = rgb_to_lab(small)?;
        // Colour prior: warm colours, from the min-max normalised a*, b*.
        let (min, max) = spatial_min_max(&lab)?;
        let normalised = lab.f_sub(&min)?.f_div(&max.f_sub(&min)?.f_add_scalar(eps)?)?;
        let norm = normalised.f_narrow(1, 1, 2)?.f_square()?.f_sum_dim_intlist(&[1i64][..], true, None::<Kind>)?;
        let s_c = norm.f_neg()?.f_div_scalar(SIGMA_C * SIGMA_C)?.f_exp()?.f_neg()?.f_add_scalar(1.0)?;
        Ok(self.frequency_prior(&lab)?.f_mul(&self.priors.location)?.f_mul(&s_c)?)
    }

    /// [`Vsi::saliency`] on the CPU with the element-wise work in iqa's own loops, a few passes instead of
    /// libtorch's forty: the same operations on the same values in the same order, and libtorch's own powers,
    /// exponentials, colour products and frequency prior on tensors of the same layout, so the same bits.
    fn saliency_cpu(&self, small: &Tensor) -> Result<Tensor> {
        let (n, side) = (small.size()[0], SALIENCY_SIDE);
        let plane = (side * side) as usize;
        let rgb = cpu_slice::<f64>(small)?;
        // Gamma expansion, pixel-major (N·S×S×3) as the XYZ product reads it; libtorch raises the bases
        // channel-major, as pyiqa's power runs on the NCHW batch.
        let bases = fill_pieces(&[n, 3, side, side], PIECE, |start, out| gamma_bases(&rgb[start..], out))?;
        let powers = bases.f_pow_tensor_scalar(2.4)?;
        let powers = cpu_slice::<f64>(&powers)?;
        let row = side as usize;
        let linear = fill_pieces(&[n * side, side, 3], 3 * row, |start, out| {
            // One pixel row: its three channel rows, channel-major, interleaved.
            let (image, y) = (start / (3 * plane), (start / (3 * row)) % row);
            let at = |c: usize| (image * 3 + c) * plane + y * row;
            let (rgb, powers) = ([0, 1, 2].map(|c| &rgb[at(c)..][..row]), [0, 1, 2].map(|c| &powers[at(c)..][..row]));
            gamma_expanded_row(rgb, powers, out)
        })?;
        let xyz = batched_colour_product(&linear, &RGB_TO_XYZ)?;
        let xyz = cpu_slice::<f64>(&xyz)?;
        let roots = fill_pieces(&[n * side, side, 3], PIXEL_PIECE, |start, out| cube_root_bases(&xyz[start..], out))?;
        let roots = roots.f_pow_tensor_scalar(1.0 / 3.0)?;
        let roots = cpu_slice::<f64>(&roots)?;
        let f =
            fill_pieces(&[n * side * side, 3], PIXEL_PIECE, |start, out| lab_fs(&xyz[start..], &roots[start..], out))?;
        let lab_rows = f.f_mm(&colour_factor(&XYZ_TO_LAB, Kind::Double, Device::Cpu)?)?;
        let lab_rows = cpu_slice::<f64>(&lab_rows)?;
        let lab = fill_pieces(&[n, side, side, 3], PIXEL_PIECE, |start, out| lab_offsets(&lab_rows[start..], out))?;
        let values = cpu_slice::<f64>(&lab)?;
        // Colour prior: each image's a*, b* normalised by their ranges, and the exponent of the warm-colour
        // Gaussian (libtorch takes the exponential).
        let mut ranges = vec![[(0.0, 0.0); 2]; n as usize];
        for_each_piece(&mut ranges, 1, |image, range| {
            let pixels = &values[image * 3 * plane..(image + 1) * 3 * plane];
            range[0] = [1, 2].map(|c| value_range(pixels.iter().skip(c).step_by(3).copied()));
        });
        // Each range's divisor once per image, not once per pixel.
        let eps = machine_eps(Kind::Double);
        let spans: Vec<[(f64, f64); 2]> = ranges.iter().map(|r| r.map(|(lo, hi)| (lo, hi - lo + eps))).collect();
        let exponentials = fill_pieces(&[n, 1, side, side], PIECE, |start, out| {
            let image = start / plane;
            colour_exponents(&values[3 * start..], spans[image], out)
        })?
        .f_exp()?;
        let frequency = self.frequency_prior(&lab.f_permute([0, 3, 1, 2])?)?;
        let (frequency, exponentials) = (cpu_slice::<f64>(&frequency)?, cpu_slice::<f64>(&exponentials)?);
        let location = cpu_slice::<f64>(&self.priors.location)?;
        fill_pieces(&[n, 1, side, side], PIECE, |start, out| {
            saliency_products(&frequency[start..], &location[start % plane..], &exponentials[start..], out)
        })
    }
}

/// Values per task of the pixel-major loops: whole pixels, and whole periods of [`by_channel`].
const PIXEL_PIECE: usize = 24 * 683;

/// A fresh float64 CPU tensor of `shape` filled in pieces of `piece_len` values on the worker threads:
/// `fill(start, piece)` writes the values from index `start` on. `PIECE` divides the saliency's planes, so a
/// piece never spans two; [`PIXEL_PIECE`] starts every piece at a whole period of [`by_channel`].
fn fill_pieces(shape: &[i64], piece_len: usize, fill: impl Fn(usize, &mut [f64]) + Sync) -> Result<Tensor> {
    let mut out = FreshTensor::<f64>::empty(shape)?;
    for_each_piece(out.as_mut_slice(), piece_len, |index, piece| fill(index * piece_len, piece));
    Ok(out.into_tensor())
}

/// A per-channel constant of pixel-major values repeated over a period of whole pixels that vectors of 2, 4 and
/// 8 float64 divide, so that the loops over it vectorise.
fn by_channel(values: [f64; 3]) -> [f64; 24] {
    std::array::from_fn(|i| values[i % 3])
}

with_target_feature! {
    "avx2",
    /// The bases of the gamma expansion's power for 0..255 values.
    fn gamma_bases / gamma_bases_avx2(values: &[f64], out: &mut [f64]) {
        for (o, &v) in out.iter_mut().zip(values) {
            *o = gamma_base(v);
        }
    }
}

with_target_feature! {
    "avx2",
    /// One pixel row (at most the saliency's side) of the gamma expansion, pixel-major, from its three channel
    /// rows of values and powers.
    fn gamma_expanded_row / gamma_expanded_row_avx2(values: [&[f64]; 3], powers: [&[f64]; 3], out: &mut [f64]) {
        let mut row = [0.0; SALIENCY_SIDE as usize];
        let channel = &mut row[..out.len() / 3];
        for c in 0..3 {
            for ((o, &v), &p) in channel.iter_mut().zip(values[c]).zip(powers[c]) {
                *o = gamma_expanded(v, p);
            }
            for (pixel, &v) in out.chunks_exact_mut(3).zip(channel.iter()) {
                pixel[c] = v;
            }
        }
    }
}

with_target_feature! {
    "avx2",
    /// |t + eps| for pixel-major XYZ values (t: each over its white point), whose cube roots CIELAB takes.
    fn cube_root_bases / cube_root_bases_avx2(xyz: &[f64], out: &mut [f64]) {
        let (white, eps) = (by_channel(white_point()), machine_eps(Kind::Double));
        for (o, x) in out.chunks_mut(24).zip(xyz.chunks(24)) {
            for ((o, &x), &w) in o.iter_mut().zip(x).zip(&white) {
                *o = (x / w + eps).abs();
            }
        }
    }
}

with_target_feature! {
    "avx2",
    /// CIELAB's f(t) of pixel-major XYZ values, given the cube roots of [`cube_root_bases`].
    fn lab_fs / lab_fs_avx2(xyz: &[f64], roots: &[f64], out: &mut [f64]) {
        let white = by_channel(white_point());
        for ((o, x), r) in out.chunks_mut(24).zip(xyz.chunks(24)).zip(roots.chunks(24)) {
            for (((o, &x), &r), &w) in o.iter_mut().zip(x).zip(r).zip(&white) {
                *o = lab_f(x / w, r);
            }
        }
    }
}

with_target_feature! {
    "avx2",
    /// The L*a*b* product's rows plus pyiqa's bias (−16 for L*; 0 for a*, b*, added too, as libtorch adds it).
    fn lab_offsets / lab_offsets_avx2(rows: &[f64], out: &mut [f64]) {
        let bias = by_channel([-16.0, 0.0, 0.0]);
        for (o, v) in out.chunks_mut(24).zip(rows.chunks(24)) {
            for ((o, &v), &b) in o.iter_mut().zip(v).zip(&bias) {
                *o = v + b;
            }
        }
    }
}

with_target_feature! {
    "avx2",
    /// The warm-colour Gaussian's exponent of each pixel (pixel-major L*a*b* values) of one image, given its
    /// a* and b* minima and spans.
    fn colour_exponents / colour_exponents_avx2(lab: &[f64], spans: [(f64, f64); 2], out: &mut [f64]) {
        let [(lo_a, span_a), (lo_b, span_b)] = spans;
        let exponent = |a: f64, b: f64| {
            let (a, b) = ((a - lo_a) / span_a, (b - lo_b) / span_b);
            -(0.0 + a * a + b * b) / (SIGMA_C * SIGMA_C)
        };
        let mut lab_pixels = lab[..3 * out.len()].chunks_exact(24);
        let mut pixels = out.chunks_exact_mut(8);
        for (o, p) in pixels.by_ref().zip(lab_pixels.by_ref()) {
            // a* and b* of eight pixels gathered, so that the arithmetic runs on whole vectors.
            let a: [f64; 8] = std::array::from_fn(|j| p[3 * j + 1]);
            let b: [f64; 8] = std::array::from_fn(|j| p[3 * j + 2]);
            for j in 0..8 {
                o[j] = exponent(a[j], b[j]);
            }
        }
        for (o, p) in pixels.into_remainder().iter_mut().zip(lab_pixels.remainder().chunks_exact(3)) {
            *o = exponent(p[1], p[2]);
        }
    }
}

with_target_feature! {
    "avx2",
    /// SDSP's product of its three priors: frequency · location · (1 − exp(colour exponent)).
    fn saliency_products / saliency_products_avx2(
        frequency: &[f64],
        location: &[f64],
        exponentials: &[f64],
        out: &mut [f64]
    ) {
        for (((o, &f), &l), &e) in out.iter_mut().zip(frequency).zip(location).zip(exponentials) {
            *o = f * l * (-e + 1.0);
        }
    }
}

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
        let resized = |x: &Tensor| -> Result<Tensor> {
            Ok(x.f_to_kind(Kind::Double)?.f_upsample_bilinear2d([SALIENCY_SIDE, SALIENCY_SIDE], false, None, None)?)
        };
        let small = Tensor::f_cat(&[resized(dist)?, resized(reference)?], 0)?.f_mul_scalar(255.0)?;
        let own_loops = [dist, reference].iter().all(|x| x.device() == Device::Cpu && x.is_contiguous())
            && dist.kind() == Kind::Float
            && reference.kind() == Kind::Float;
        let (lmn, vs, gm) = if own_loops {
            let pixels = block_means_255::<f32>([cpu_slice(dist)?, cpu_slice(reference)?], n, h, w, k)?;
            let (ph, pw) = PoolingBlocks::replicated(h as usize, w as usize, k as usize).out_size();
            let lmn_pixels = batched_colour_product(&pixels, &RGB_TO_LMN)?.f_view([2 * n, ph as i64, pw as i64, 3])?;
            let lmn = lmn_pixels.f_permute([0, 3, 1, 2])?;
            let gm = match scharr_magnitude_pixel_major(&lmn_pixels, 0)? {
                Some(gm) => gm,
                None => scharr_magnitude(&lmn.f_narrow(1, 0, 1)?)?,
            };
            let vs_full = self.saliency_cpu(&small)?.f_upsample_bilinear2d([h, w], true, None, None)?;
            (lmn, normalised_block_means(&vs_full, k)?, gm)
        } else {
            let pooled = |x: &Tensor| block_average(&x.f_to_kind(Kind::Double)?, k);
            let pooled = Tensor::f_cat(&[pooled(dist)?, pooled(reference)?], 0)?.f_mul_scalar(255.0)?;
            // Saliency back at full size (aligned corners), normalised to [0, 1] by its range there; the affine
            // normalisation commutes with the block means, so it is applied to the block means.
            let vs_full = self.saliency(&small)?.f_upsample_bilinear2d([h, w], true, None, None)?;
            let (min, max) = spatial_min_max(&vs_full)?;
            let vs = block_average(&vs_full, k)?.f_sub(&min)?.f_div(&max.f_sub(&min)?.f_add_scalar(eps)?)?;
            let lmn = colour_matrix(&pooled, &RGB_TO_LMN)?;
            let gm = scharr_magnitude(&lmn.f_narrow(1, 0, 1)?)?;
            (lmn, vs, gm)
        };
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

/// The k×k block means of both batches' colour planes (N×3×H×W each, contiguous), times 255, pixel-major
/// (2N·h'×w'×3, distorted images first): the LMN product's input as pyiqa's `matmul` lays it out.
fn block_means_255<T: Element + Copy + Into<f64> + Sync>(
    batches: [&[T]; 2],
    n: i64,
    h: i64,
    w: i64,
    k: i64,
) -> Result<Tensor> {
    let (h, w, n) = (h as usize, w as usize, n as usize);
    let blocks = PoolingBlocks::replicated(h, w, k as usize);
    let (oh, ow) = blocks.out_size();
    let area = (k * k) as f64;
    let mut out = FreshTensor::<f64>::empty(&[(2 * n * oh) as i64, ow as i64, 3])?;
    for_each_piece(out.as_mut_slice(), 3 * ow, |row, values| {
        let (image, y) = (row / oh, row % oh);
        let batch = batches[image / n];
        let mut sums = vec![0.0; ow];
        for c in 0..3 {
            blocks.row_sums(&batch[((image % n) * 3 + c) * h * w..][..h * w], w, y, &mut sums, Into::into);
            for (x, sum) in sums.iter().enumerate() {
                values[3 * x + c] = pooled_mean(*sum, area) * 255.0;
            }
        }
    });
    Ok(out.into_tensor())
}

/// A block's mean from its sum as libtorch's average pooling rounds it: divided by the block's area, added to
/// the zero the output starts from.
fn pooled_mean(sum: f64, area: f64) -> f64 {
    0.0 + sum / area
}

/// pyiqa's normalised saliency maps from the full-size ones (N×1×H×W float64): block means, minus each map's
/// minimum, over its range plus eps, as libtorch rounds each step.
fn normalised_block_means(maps: &Tensor, k: i64) -> Result<Tensor> {
    let (n, h, w) = (maps.size()[0] as usize, maps.size()[2] as usize, maps.size()[3] as usize);
    let values = cpu_slice::<f64>(maps)?;
    let blocks = PoolingBlocks::replicated(h, w, k as usize);
    let (oh, ow) = blocks.out_size();
    let mut ranges = vec![(0.0, 0.0); n];
    for_each_piece(&mut ranges, 1, |image, range| {
        range[0] = value_range(values[image * h * w..(image + 1) * h * w].iter().copied())
    });
    let (eps, area) = (machine_eps(Kind::Double), (k * k) as f64);
    let mut out = FreshTensor::<f64>::empty(&[n as i64, 1, oh as i64, ow as i64])?;
    for_each_piece(out.as_mut_slice(), ow, |row, line| {
        let (image, y) = (row / oh, row % oh);
        let (lo, hi) = ranges[image];
        let span = hi - lo + eps;
        blocks.row_sums(&values[image * h * w..(image + 1) * h * w], w, y, line, |v| v);
        for v in line.iter_mut() {
            *v = (pooled_mean(*v, area) - lo) / span;
        }
    });
    Ok(out.into_tensor())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashed values in [0, 1) with exact 0, 1 and the sRGB threshold among them, and a flat patch.
    fn images(shape: &[i64], seed: u64) -> Tensor {
        let len: i64 = shape.iter().product();
        let values: Vec<f32> = (0..len as u64)
            .map(|i| match i % 97 {
                0 => 0.0,
                1 => 1.0,
                2 => 0.04045,
                3..=9 => 0.5,
                _ => ((i ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f32 / (1u64 << 24) as f32,
            })
            .collect();
        Tensor::from_slice(&values).view(shape)
    }

    fn same_bits(a: &Tensor, b: &Tensor) -> usize {
        assert_eq!(a.size(), b.size());
        let (a, b) = (a.contiguous(), b.contiguous());
        let (a, b) = (cpu_slice::<f64>(&a).unwrap(), cpu_slice::<f64>(&b).unwrap());
        a.iter().zip(b).filter(|(x, y)| x.to_bits() != y.to_bits()).count()
    }

    /// iqa's loops give libtorch's saliency to the bit (the powers, exponentials and colour products being
    /// libtorch's on tensors laid out as pyiqa's are).
    #[test]
    fn saliency_loops_equal_libtorch_bit_for_bit() {
        let vsi = Vsi::new(Device::Cpu).unwrap();
        for (n, seed) in [(2, 1), (4, 7)] {
            let small = images(&[n, 3, SALIENCY_SIDE, SALIENCY_SIDE], seed).to_kind(Kind::Double) * 255.0;
            let (ours, theirs) = (vsi.saliency_cpu(&small).unwrap(), vsi.saliency(&small).unwrap());
            assert_eq!(ours.size(), [n, 1, SALIENCY_SIDE, SALIENCY_SIDE]);
            assert_eq!(same_bits(&ours, &theirs), 0, "{n} images");
        }
    }

    /// The vector-shaped kernels give their per-value formulas at every length, whole periods or not.
    #[test]
    fn kernels_equal_their_formulas_at_every_length() {
        let values: Vec<f64> = (0..320).map(|i| ((i * 37 % 101) as f64 - 40.0) * 0.731).collect();
        let (white, eps) = (white_point(), machine_eps(Kind::Double));
        let spans = [(-3.5, 41.25), (1.0, 17.0)];
        for pixels in 0..=100 {
            let len = 3 * pixels;
            let mut out = vec![0.0; len];
            cube_root_bases(&values, &mut out);
            let want: Vec<f64> = (0..len).map(|i| (values[i] / white[i % 3] + eps).abs()).collect();
            assert_eq!(out, want, "cube root bases, {pixels} pixels");
            lab_fs(&values, &values[7..], &mut out);
            let want: Vec<f64> = (0..len).map(|i| lab_f(values[i] / white[i % 3], values[7 + i])).collect();
            assert_eq!(out, want, "f(t), {pixels} pixels");
            lab_offsets(&values, &mut out);
            let want: Vec<f64> = (0..len).map(|i| values[i] + if i % 3 == 0 { -16.0 } else { 0.0 }).collect();
            assert_eq!(out, want, "offsets, {pixels} pixels");
            let mut exponents = vec![0.0; pixels];
            colour_exponents(&values, spans, &mut exponents);
            let want: Vec<f64> = (0..pixels)
                .map(|p| {
                    let norm = [0, 1].iter().fold(0.0, |sum, &c| {
                        let v = (values[3 * p + 1 + c] - spans[c].0) / spans[c].1;
                        sum + v * v
                    });
                    -norm / (SIGMA_C * SIGMA_C)
                })
                .collect();
            assert_eq!(exponents, want, "colour exponents, {pixels} pixels");
        }
    }

    /// Block means (times 255, pixel-major) and the normalised saliency means equal libtorch's replicate
    /// padding and average pooling to the bit, for every pooling factor and odd sizes.
    #[test]
    fn block_means_equal_libtorch_bit_for_bit() {
        for (h, w, k) in [(384, 512, 2), (333, 901, 1), (37, 50, 3), (61, 45, 4), (9, 7, 5)] {
            let (x, y) = (images(&[2, 3, h, w], 3), images(&[2, 3, h, w], 4));
            let ours = block_means_255::<f32>([cpu_slice(&x).unwrap(), cpu_slice(&y).unwrap()], 2, h, w, k).unwrap();
            let pooled = |t: &Tensor| block_average(&t.to_kind(Kind::Double), k).unwrap();
            let theirs = Tensor::cat(&[pooled(&x), pooled(&y)], 0) * 255.0;
            let (oh, ow) = ((h - 1) / k + 1, (w - 1) / k + 1);
            assert_eq!(theirs.size(), [4, 3, oh, ow]);
            assert_eq!(same_bits(&ours.view([4, oh, ow, 3]).permute([0, 3, 1, 2]), &theirs), 0, "{h}x{w}, k {k}");

            let maps = images(&[2, 1, h, w], 5).to_kind(Kind::Double) * 3.5;
            let (min, max) = spatial_min_max(&maps).unwrap();
            let eps = machine_eps(Kind::Double);
            let theirs = block_average(&maps, k).unwrap().f_sub(&min).unwrap() / (max - &min + eps);
            assert_eq!(same_bits(&normalised_block_means(&maps, k).unwrap(), &theirs), 0, "{h}x{w}, k {k}");
        }
    }

    /// A NaN anywhere in a map makes its range NaN, as libtorch's amin and amax do.
    #[test]
    fn ranges_carry_nan() {
        assert_eq!(value_range([3.0, -1.0, 2.0].into_iter()), (-1.0, 3.0));
        let (lo, hi) = value_range([3.0, f64::NAN, 2.0].into_iter());
        assert!(lo.is_nan() && hi.is_nan());
    }
}
