//! IL-NIQE (Zhang, Zhang & Bovik 2015), pyiqa 0.1.16's `ilniqe` with the official template model: the RGB image
//! resized to 524×524 (MATLAB bicubic `imresize`, run in float32 as pyiqa does), cut into 84×84 blocks at two
//! scales, 109 maps per block (MSCN of O3, gradient magnitudes, log-RGB opponent channels, log-Gabor
//! responses and their derivatives), 234 features per block and scale (AGGD and Weibull fits, means and
//! variances), projected on the template's principal vectors; a block's quality is its distance to the
//! pristine Gaussian under ((Σ_pris + Σ_dist)/2)⁺, and the score is the mean over blocks.
//!
//! Float64 throughout, as pyiqa, except its float32 resize, Gaussian windows and log-Gabor filters, which are
//! reproduced. Every image is resized first, so a batch of any size runs as one. Where pyiqa departs from the
//! official MATLAB scores (its float32 resize, its Weibull fit's early stop) iqa follows pyiqa; README lists the
//! distances. Images below 3×3 are refused (pyiqa's resize fails), and so are tiny ones whose every block has a
//! NaN feature (pyiqa's pseudo-inverse then fails).
use crate::error::{Error, Result};
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::frequency::PhaseCongruency;
use crate::nn::nss::{
    aggd_beta_factor, fspecial_gaussian_f32, mscn, nan_mean_cov, niqe_block_features, Border, NanStats, ShapeTables,
};
use crate::nn::resize::imresize_to;
use crate::runtime::for_each_piece;
use crate::tensor::{cpu_slice, FreshTensor, FrozenTensor};
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// pyiqa's resize needs three samples per side.
pub const METRICS: &[MetricSpec] = &[MetricSpec::new("ilniqe", Mode::NoReference, true, (0.0, 100.0), build)
    .min_size(3, 3)
    .weights(&[&files::ILNIQE_TEMPLATE])];

const SIDE: i64 = 524;
const BLOCK: i64 = 84;
const RAW: i64 = 468;
const PCA: i64 = 430;
const EPS: f64 = 1e-8;
const K_FOR_LOG: f64 = 1e-5;
const INF_CONST: f64 = 10000.0;
/// The 109 maps of a block, by the index of their first channel (written by `block_maps`, read by
/// `block_features`): MSCN of O3; gradient magnitudes of O1..O3; log-RGB intensity, blue-yellow, red-green;
/// O derivatives (x, y per channel); log-Gabor real and imaginary parts (12 filters); their derivatives; their
/// gradient magnitudes. The signed maps, fitted by AGGDs, run from the O derivatives to the end of the
/// log-Gabor derivatives.
const MSCN: i64 = 0;
const GRADIENT_MAGNITUDES: i64 = 1;
const LOG_RGB: i64 = 4;
const DERIVATIVES: i64 = 7;
const LOG_GABOR: i64 = 13;
const LOG_GABOR_DERIVATIVES: i64 = 37;
const LOG_GABOR_MAGNITUDES: i64 = 85;
const MAPS: i64 = 109;
/// Signed maps fitted per AGGD call (of 78).
const SIGNED_CHUNK: i64 = 13;
/// pyiqa's float32 `ospace_weight` (rows: O1, O2, O3; columns: R, G, B).
const OSPACE: [f32; 9] = [0.3, 0.04, -0.35, 0.34, -0.6, 0.17, 0.06, 0.63, 0.27];

/// What one of the two scales needs: the separable Gaussian-derivative taps (11 each) and the 12 log-Gabor
/// filters for its image side (index scale·4 + orientation, each transposed as pyiqa does).
struct Scale {
    smooth: Vec<f64>,
    derivative: Vec<f64>,
    log_gabor: FrozenTensor,
}

pub struct Ilniqe {
    mu_pris: FrozenTensor,
    cov_pris: FrozenTensor,
    mean_sample: FrozenTensor,
    principal: FrozenTensor,
    mscn_window: FrozenTensor,
    downsample: FrozenTensor,
    ospace: FrozenTensor,
    scales: [Scale; 2],
    tables: ShapeTables,
}

pub fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let p = weights::load(
        &files::ILNIQE_TEMPLATE,
        &[
            ("mu_pris_param", &[PCA][..]),
            ("cov_pris_param", &[PCA, PCA][..]),
            ("mean_of_sample_data", &[RAW][..]),
            ("principle_vectors", &[RAW, PCA][..]),
        ],
    )?;
    Ok(Arc::new(Ilniqe::new(
        &p["mu_pris_param"],
        &p["cov_pris_param"],
        &p["mean_of_sample_data"],
        &p["principle_vectors"],
        key.device,
    )?))
}

/// pyiqa's `gauDerivative(sigma)` (x·exp(−(x² + y²)/2σ²) and y·…, on the integer grid ±ceil(3σ)) as the
/// separable taps of MATLAB's `conv2(…, 'same')` with it (a correlation with the flipped kernel): the smoothing
/// taps g(t) and the derivative taps −t·g(t), t = −half..half, float64.
fn gaussian_derivative_taps(sigma: f64) -> (Vec<f64>, Vec<f64>) {
    let half = (3.0 * sigma).ceil() as i64;
    let t = (-half..=half).map(|t| t as f64);
    let smooth: Vec<f64> = t.clone().map(|t| (-(t * t) / 2.0 / sigma / sigma).exp()).collect();
    let derivative = t.zip(&smooth).map(|(t, g)| -t * g).collect();
    (smooth, derivative)
}

/// Correlation of every map of an N×C×H×W tensor with `taps` along dimension `dim` (2 or 3), zero padded to
/// the same size ('same' for an odd number of taps), as pyiqa computes it: a sum of shifted copies, each tap's
/// product added in turn to the running sum.
fn correlate_1d(x: &Tensor, taps: &[f64], dim: i64) -> Result<Tensor> {
    if x.device() == Device::Cpu && x.kind() == Kind::Double {
        correlate_1d_cpu(x, taps, dim)
    } else {
        correlate_1d_tensor(x, taps, dim)
    }
}

fn correlate_1d_tensor(x: &Tensor, taps: &[f64], dim: i64) -> Result<Tensor> {
    let k = taps.len() as i64;
    let p = (k - 1) / 2;
    let len = x.size()[dim as usize];
    let pad = if dim == 3 { [p, p, 0, 0] } else { [0, 0, p, p] };
    let padded = x.f_constant_pad_nd(pad)?;
    let mut out = padded.f_narrow(dim, 0, len)?.f_mul_scalar(taps[0])?;
    for (i, &tap) in taps.iter().enumerate().skip(1) {
        out = out.f_add(&padded.f_narrow(dim, i as i64, len)?.f_mul_scalar(tap)?)?;
    }
    Ok(out)
}

/// [`correlate_1d`] of float64 maps on the CPU in one pass per map, the same products and additions in the same
/// order, the padding's zeros included (bit for bit, tested): libtorch's version made two full-size
/// temporaries per tap, a fifth of IL-NIQE's time.
fn correlate_1d_cpu(x: &Tensor, taps: &[f64], dim: i64) -> Result<Tensor> {
    let (n, c, h, w) = x.size4()?;
    let (h, w) = (h as usize, w as usize);
    let x = x.f_contiguous()?;
    let input = cpu_slice::<f64>(&x)?;
    let mut out = FreshTensor::<f64>::empty(&[n, c, h as i64, w as i64])?;
    let output = out.as_mut_slice();
    let half = (taps.len() - 1) / 2;
    for_each_piece(output, h * w, |plane, out_plane| {
        let src = &input[plane * h * w..][..h * w];
        if dim == 3 {
            let mut padded = vec![0.0; w + 2 * half];
            for (row, out_row) in src.chunks_exact(w).zip(out_plane.chunks_exact_mut(w)) {
                padded[half..half + w].copy_from_slice(row);
                out_row.iter_mut().zip(&padded).for_each(|(o, &v)| *o = v * taps[0]);
                for (t, &tap) in taps.iter().enumerate().skip(1) {
                    out_row.iter_mut().zip(&padded[t..]).for_each(|(o, &v)| *o += v * tap);
                }
            }
        } else {
            for (r, out_row) in out_plane.chunks_exact_mut(w).enumerate() {
                let row_at = |t: usize| (r + t).checked_sub(half).filter(|&i| i < h).map(|i| &src[i * w..][..w]);
                match row_at(0) {
                    Some(first) => out_row.iter_mut().zip(first).for_each(|(o, &v)| *o = v * taps[0]),
                    None => out_row.fill(0.0 * taps[0]),
                }
                for (t, &tap) in taps.iter().enumerate().skip(1) {
                    match row_at(t) {
                        Some(line) => out_row.iter_mut().zip(line).for_each(|(o, &v)| *o += v * tap),
                        None => out_row.iter_mut().for_each(|o| *o += 0.0 * tap),
                    }
                }
            }
        }
    });
    Ok(out.into_tensor())
}

impl Ilniqe {
    /// The template: `mu` (430), `cov` (430×430), the PCA's sample mean (468) and principal vectors (468×430).
    pub fn new(mu: &Tensor, cov: &Tensor, mean: &Tensor, principal: &Tensor, device: Device) -> Result<Self> {
        let to = |t: &Tensor| -> Result<FrozenTensor> {
            Ok(FrozenTensor::new(t.f_to_kind(Kind::Double)?.f_to_device(device)?))
        };
        let window = |size: usize, sigma: f64| -> Result<FrozenTensor> {
            let taps = fspecial_gaussian_f32(size, sigma);
            to(&Tensor::f_from_slice(&taps)?.f_view([1, 1, size as i64, size as i64])?)
        };
        let bank = PhaseCongruency {
            scales: 3,
            orientations: 4,
            min_length: 0.0,
            mult: 1.31,
            sigma_f: 0.55,
            delta_theta: 1.10,
            k: 0.0,
        };
        let mut scales = Vec::with_capacity(2);
        for scale in [1i64, 2] {
            let (smooth, derivative) = gaussian_derivative_taps(1.66 / (scale as f64).powf(0.28));
            let side = SIDE / BLOCK * BLOCK / scale;
            let pc = PhaseCongruency { min_length: 2.4 / (scale as f64).powf(0.87), ..bank };
            // o·3 + s → s·4 + o, then each filter transposed (pyiqa's "needs to be transposed" step).
            let filters = pc
                .log_gabor_bank(side, side, false)?
                .f_view([4, 3, side, side])?
                .f_transpose(0, 1)?
                .f_transpose(-1, -2)?
                .f_contiguous()?
                .f_view([1, 12, side, side])?;
            scales.push(Scale { smooth, derivative, log_gabor: to(&filters)? });
        }
        let [s1, s2]: [Scale; 2] = scales.try_into().map_err(|_| Error::invalid("ilniqe: two scales"))?;
        Ok(Ilniqe {
            mu_pris: to(&mu.f_reshape([PCA])?)?,
            cov_pris: to(cov)?,
            mean_sample: to(&mean.f_reshape([RAW])?)?,
            principal: to(principal)?,
            mscn_window: window(5, 5.0 / 6.0)?,
            downsample: window(6, 0.9)?,
            ospace: to(&Tensor::f_from_slice(&OSPACE)?.f_view([3, 3, 1, 1])?)?,
            scales: [s1, s2],
            tables: ShapeTables::new(Kind::Double, device)?,
        })
    }

    /// AGGD shape and mean width ((β_l + β_r)/2) of each map: `maps` is B×C×h×w, the result B×2C (interleaved).
    fn aggd_shape_width(&self, maps: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = maps.size4()?;
        let (alpha, left, right) = self.tables.aggd(&maps.f_reshape([b * c, 1, h, w])?)?;
        let beta = aggd_beta_factor(&alpha)?;
        let width = left.f_mul(&beta)?.f_add(&right.f_mul(&beta)?)?.f_div_scalar(2.0)?;
        Ok(Tensor::f_stack(&[alpha, width], -1)?.f_reshape([b, 2 * c])?)
    }

    /// Features of every block from [`Self::block_maps`] (N·blocks×109×side×side): N×blocks×234.
    fn block_features(&self, blocks: &Tensor, n: i64) -> Result<Tensor> {
        let (b, _, side, _) = blocks.size4()?;
        let nb = b / n;
        let pixels = side * side;
        let aggd = niqe_block_features(&self.tables, &blocks.f_narrow(1, MSCN, 1)?)?;
        let gm = weibull(&blocks.f_narrow(1, GRADIENT_MAGNITUDES, 3)?.f_reshape([n, nb * 3, pixels])?)?
            .f_reshape([n * nb, 6])?;
        let colour = blocks.f_narrow(1, LOG_RGB, 3)?;
        let dims = [2i64, 3].as_slice();
        let mean = colour.f_mean_dim(dims, false, None::<Kind>)?;
        let var = colour.f_var_correction(dims, 1, false)?;
        let colour = Tensor::f_stack(&[mean, var], -1)?.f_reshape([n * nb, 6])?;
        // The 78 signed maps a few at a time: each map's fit is its own, and the element-wise AGGD terms of all
        // 78 at once (four copies of them) were IL-NIQE's peak allocation.
        let signed = (DERIVATIVES..LOG_GABOR_MAGNITUDES)
            .step_by(SIGNED_CHUNK as usize)
            .map(|first| {
                self.aggd_shape_width(&blocks.f_narrow(1, first, SIGNED_CHUNK.min(LOG_GABOR_MAGNITUDES - first))?)
            })
            .collect::<Result<Vec<_>>>()?;
        let signed = Tensor::f_cat(&signed, 1)?;
        let count = MAPS - LOG_GABOR_MAGNITUDES;
        let mags = blocks.f_narrow(1, LOG_GABOR_MAGNITUDES, count)?.f_reshape([n, nb * count, pixels])?;
        let mags = weibull(&mags)?.f_reshape([n * nb, 2 * count])?;
        Ok(Tensor::f_cat(&[aggd, gm, colour, signed, mags], 1)?.f_view([n, nb, 234])?)
    }

    /// The 109 maps of one scale from the RGB (N×3×H×W, 0..255) and opponent images, cut into side×side blocks:
    /// N·blocks×109×side×side, blocks in pyiqa's column-major order. Each group of maps is written into its
    /// blocks as soon as it is computed (concatenating all 109 maps and then permuting them into blocks were
    /// two copies of 221 MB at the first scale).
    fn block_maps(&self, rgb: &Tensor, opponent: &Tensor, scale: &Scale, side: i64) -> Result<Tensor> {
        let (n, _, h, w) = opponent.size4()?;
        let (nh, nw) = (h / side, w / side);
        let blocks = Tensor::f_empty([n * nw * nh, MAPS, side, side], (Kind::Double, opponent.device()))?;
        // Maps first..first+c of every block, viewed as N×c×H×W (H = nh·side, W = nw·side).
        let put = |first: i64, maps: &Tensor| -> Result<()> {
            let c = maps.size()[1];
            let mut dest =
                blocks.f_view([n, nw, nh, MAPS, side, side])?.f_narrow(3, first, c)?.f_permute([0, 3, 2, 4, 1, 5])?;
            dest.f_copy_(&maps.f_reshape([n, c, nh, side, nw, side])?)?;
            Ok(())
        };
        let o3 = opponent.f_narrow(1, 2, 1)?;
        put(MSCN, &mscn(&o3, &self.mscn_window, Border::Replicate)?)?;
        // The x and y derivatives: derivative taps along one axis, smoothing along the other.
        let gradient = |x: &Tensor| -> Result<(Tensor, Tensor)> {
            let gx = correlate_1d(&correlate_1d(x, &scale.smooth, 2)?, &scale.derivative, 3)?;
            let gy = correlate_1d(&correlate_1d(x, &scale.derivative, 2)?, &scale.smooth, 3)?;
            Ok((gx, gy))
        };
        let magnitude = |gx: &Tensor, gy: &Tensor| -> Result<Tensor> {
            Ok(gx.f_square()?.f_add(&gy.f_square()?)?.f_add_scalar(EPS)?.f_sqrt()?)
        };
        let (ix, iy) = gradient(opponent)?;
        put(GRADIENT_MAGNITUDES, &magnitude(&ix, &iy)?)?;
        put(DERIVATIVES, &Tensor::f_stack(&[&ix, &iy], 2)?.f_reshape([n, 6, h, w])?)?;

        let log_rgb = rgb.f_add_scalar(K_FOR_LOG)?.f_log()?;
        let log_rgb = log_rgb.f_sub(&log_rgb.f_mean_dim([2i64, 3].as_slice(), true, None::<Kind>)?)?;
        let ch = |i: i64| log_rgb.f_narrow(1, i, 1);
        put(LOG_RGB, &log_rgb.f_sum_dim_intlist([1i64].as_slice(), true, None::<Kind>)?.f_div_scalar(3f64.sqrt())?)?;
        put(LOG_RGB + 1, &ch(0)?.f_add(&ch(1)?)?.f_sub(&ch(2)?.f_mul_scalar(2.0)?)?.f_div_scalar(6f64.sqrt())?)?;
        put(LOG_RGB + 2, &ch(0)?.f_sub(&ch(1)?)?.f_div_scalar(2f64.sqrt())?)?;

        let dims = [-2i64, -1];
        let response = o3
            .f_fft_fft2(None::<&[i64]>, dims, "backward")?
            .f_mul(&scale.log_gabor)?
            .f_fft_ifft2(None::<&[i64]>, dims, "backward")?
            .f_view_as_real()?; // N×12×H×W×2
        let parts = response.f_permute([0, 1, 4, 2, 3])?.f_contiguous()?.f_view([n, 24, h, w])?; // re, im, …
        drop(response);
        put(LOG_GABOR, &parts)?;
        let (px, py) = gradient(&parts)?;
        drop(parts);
        // xRe, yRe, xIm, yIm, …
        put(LOG_GABOR_DERIVATIVES, &Tensor::f_stack(&[&px, &py], 2)?.f_reshape([n, 48, h, w])?)?;
        put(LOG_GABOR_MAGNITUDES, &magnitude(&px, &py)?)?;
        Ok(blocks)
    }

    /// The 6×6 Gaussian with replicated borders, then every second row and column.
    fn downsample(&self, x: &Tensor) -> Result<Tensor> {
        let c = x.size()[1];
        let weight = self.downsample.f_expand([c, 1, 6, 6], false)?;
        let padded = x.f_pad([2, 3, 2, 3], "replicate", None)?;
        Ok(padded.f_conv2d(&weight, None::<Tensor>, [2, 2], [0, 0], [1, 1], c)?)
    }
}

/// pyiqa's `fitweibull` (Newton iterations on the shape, at most 50, stopping once the largest step of the
/// call is below 1e-2, then the scale in closed form) for each image of N×R×M positive samples, stopping each
/// image where pyiqa, called on that image alone, stops. Returns N×R×2 (scale, shape).
fn weibull(x: &Tensor) -> Result<Tensor> {
    let n = x.size()[0];
    let ln_x = x.f_log()?;
    let last = [-1i64].as_slice();
    let mut k = ln_x.f_std_correction(last, 1, true)?.f_reciprocal()?.f_mul_scalar(1.2)?;
    let mut k_prev = k.shallow_clone();
    let f1 = ln_x.f_mean_dim(last, true, None::<Kind>)?;
    let mut active = Tensor::f_ones([n, 1, 1], (Kind::Bool, x.device()))?;
    for _ in 0..50 {
        let x_k = x.f_pow(&k)?;
        let x_k_ln_x = x_k.f_mul(&ln_x)?;
        let ff = x_k_ln_x.f_sum_dim_intlist(last, true, None::<Kind>)?;
        let fg = x_k.f_sum_dim_intlist(last, true, None::<Kind>)?;
        let f = ff.f_div(&fg)?.f_sub(&f1)?.f_sub(&k.f_reciprocal()?)?;
        let ff_prime = x_k_ln_x.f_mul(&ln_x)?.f_sum_dim_intlist(last, true, None::<Kind>)?;
        let f_prime = ff_prime
            .f_div(&fg)?
            .f_sub(&ff.f_div(&fg)?.f_mul(&ff)?.f_div(&fg)?)?
            .f_add(&k.f_mul(&k)?.f_reciprocal()?)?;
        let stepped = k.f_sub(&f.f_div(&f_prime)?)?;
        k = stepped.f_where_self(&active, &k)?;
        let error = stepped.f_sub(&k_prev)?.f_abs()?.f_amax([1i64, 2].as_slice(), true)?;
        let done = error.f_lt(1e-2)?;
        active = active.f_logical_and(&done.f_logical_not()?)?;
        if !bool::try_from(active.f_any()?)? {
            break;
        }
        k_prev = k.shallow_clone();
    }
    let scale = x.f_pow(&k)?.f_mean_dim(last, true, None::<Kind>)?.f_pow(&k.f_reciprocal()?)?;
    Ok(Tensor::f_cat(&[scale, k], -1)?)
}

impl Model for Ilniqe {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let img = dist.f_mul_scalar(255.0)?.f_round()?.f_to_kind(Kind::Double)?;
        let img = imresize_to(&img, SIDE, SIDE, true)?.f_clamp(0.0, 255.0)?;
        let side = SIDE / BLOCK * BLOCK;
        let mut img = img.f_narrow(2, 0, side)?.f_narrow(3, 0, side)?;
        let mut opponent = img.f_conv2d(&self.ospace, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)?;
        let mut features = Vec::with_capacity(2);
        for (i, scale) in self.scales.iter().enumerate() {
            let blocks = self.block_maps(&img, &opponent, scale, BLOCK / (i as i64 + 1))?;
            features.push(self.block_features(&blocks, img.size()[0])?);
            drop(blocks);
            if i == 0 {
                opponent = self.downsample(&opponent)?;
                img = self.downsample(&img)?;
            }
        }
        let raw = Tensor::f_cat(&features, 2)?; // N×blocks×468
        let raw = raw.f_where_self(&raw.f_gt(INF_CONST)?.f_logical_not()?, &raw.f_full_like(INF_CONST)?)?;
        let features = raw.f_sub(&self.mean_sample)?.f_matmul(&self.principal)?; // N×blocks×430

        // pyiqa's nancov and nanmean, which also replaces the NaN features.
        let NanStats { nan, mean: mu, cov, complete_blocks } = nan_mean_cov(&features)?;
        // With no block left the fitted covariance is undefined and pyiqa's pseudo-inverse fails (tiny images,
        // whose upsampled maps are too smooth for some AGGD side): refused the same way.
        if f64::try_from(complete_blocks.f_min()?)? < 1.0 {
            return Err(Error::shape(
                "ilniqe: every block of the image has an undefined (NaN) feature, as with images of a few pixels \
                 (pyiqa fails on it too); it needs at least one block with positive and negative values in every \
                 signed map",
            ));
        }
        let filled = features.f_where_self(&nan.f_logical_not()?, &mu)?;

        let inv = self.cov_pris.f_add(&cov)?.f_div_scalar(2.0)?.f_linalg_pinv_atol_rtol_float(None, None, false)?;
        let diff = filled.f_sub(&self.mu_pris)?;
        let quality = diff.f_matmul(&inv)?.f_mul(&diff)?.f_sum_dim_intlist([-1i64].as_slice(), false, None::<Kind>)?;
        Ok(quality.f_sqrt()?.f_mean_dim([1i64].as_slice(), false, None::<Kind>)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass CPU correlation equals libtorch's sum of shifted copies bit for bit, along both dimensions,
    /// for IL-NIQE's two tap sets and maps narrower than the taps (all padding), with zeros and negatives.
    #[test]
    fn correlate_1d_cpu_equals_libtorch() {
        tch::manual_seed(3);
        for (h, w) in [(23, 17), (4, 30), (9, 3)] {
            let x = Tensor::randn([2, 3, h, w], (Kind::Double, Device::Cpu)) * 50.0;
            let _ = x.narrow(1, 1, 1).fill_(0.0);
            for sigma in [1.66, 1.66 / 2f64.powf(0.28)] {
                let (smooth, derivative) = gaussian_derivative_taps(sigma);
                for (taps, dim) in [(&smooth, 2), (&derivative, 3), (&derivative, 2), (&smooth, 3)] {
                    let expected = correlate_1d_tensor(&x, taps, dim).unwrap();
                    let actual = correlate_1d_cpu(&x, taps, dim).unwrap();
                    assert_eq!(actual.size(), expected.size());
                    // Bits, so that signed zeros count too.
                    let bits = |t: &Tensor| {
                        Vec::<f64>::try_from(t.flatten(0, -1)).unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    };
                    assert!(bits(&actual) == bits(&expected), "{h}x{w}, dim {dim}");
                }
            }
        }
    }
}
