//! PIQE (Venkatanath et al. 2015), pyiqa 0.1.16's `piqe`: the luma scaled so that its maximum is 255 and
//! rounded, padded symmetrically by (side mod 16), MSCN coefficients, then per whole 16×16 block: active when
//! its variance exceeds 0.1, impaired when an edge segment is flat, noisy when its σ exceeds twice the gap to
//! the centre/surround deviation ratio; the score pools active blocks. Float32 throughout, as pyiqa.
//!
//! pyiqa's details are kept: padding by (side mod 16) rather than up to a multiple of 16, and a "surround"
//! that leaves out columns 7 and 9 rather than the two centre columns. Minimum size 8×8 (pyiqa fails below).
use crate::error::Result;
use crate::image::colour::rgb_to_y;
use crate::model::{MetricSpec, Mode, Model};
use crate::nn::nss::{fspecial_gaussian_f32, mscn, serial_reduce, Border};
use crate::tensor::{cpu_slice, FrozenTensor};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

pub const METRICS: &[MetricSpec] =
    &[MetricSpec::new("piqe", Mode::NoReference, true, (0.0, 100.0), |k| Ok(Arc::new(Piqe::new(k.device)?)))
        .min_size(8, 8)];

const BLOCK: i64 = 16;
const ACTIVITY_THRESHOLD: f64 = 0.1;
const IMPAIRED_THRESHOLD: f64 = 0.1;
const SEGMENT: i64 = 6;
/// The two "centre" columns of a block and the 14 "surround" ones (pyiqa's: all but 7 and 9, not 7 and 8).
const CENTRE: [usize; 2] = [7, 8];
const SURROUND: [usize; 14] = [0, 1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15];

pub struct Piqe {
    window: FrozenTensor,
    /// [`SURROUND`] as an index tensor on the device.
    surround: FrozenTensor,
}

impl Piqe {
    pub fn new(device: Device) -> Result<Self> {
        let taps = fspecial_gaussian_f32(7, 7.0 / 6.0);
        let window = Tensor::f_from_slice(&taps)?.f_view([1, 1, 7, 7])?.f_to_device(device)?;
        let columns: Vec<i64> = SURROUND.iter().map(|&c| c as i64).collect();
        let surround = Tensor::f_from_slice(&columns)?.f_to_device(device)?;
        Ok(Piqe { window: FrozenTensor::new(window), surround: FrozenTensor::new(surround) })
    }
}

/// Unbiased standard deviation over the last `dims`.
fn std(x: &Tensor, dims: &[i64]) -> Result<Tensor> {
    Ok(x.f_std_dim(dims, true, false)?)
}

/// Right and bottom symmetric padding (the edge sample repeated, as MATLAB's 'symmetric'), `pad` ≤ side.
fn pad_symmetric(x: &Tensor, dim: i64, pad: i64) -> Result<Tensor> {
    if pad == 0 {
        return Ok(x.shallow_clone());
    }
    let side = x.size()[dim as usize];
    let mirrored = x.f_narrow(dim, side - pad, pad)?.f_flip([dim])?;
    Ok(Tensor::f_cat(&[x, &mirrored], dim)?)
}

impl Piqe {
    /// Per-block PIQE terms, N×blocks float32, and the number of active blocks, N (int64). `coeffs` is the padded
    /// MSCN map, N×1×H×W; blocks are the whole 16×16 tiles in row-major order.
    fn block_terms(&self, coeffs: &Tensor) -> Result<(Tensor, Tensor)> {
        if coeffs.device() == Device::Cpu {
            block_terms_cpu(coeffs)
        } else {
            self.block_terms_tensor(coeffs)
        }
    }

    /// [`Piqe::block_terms`] in libtorch operations (any device).
    fn block_terms_tensor(&self, coeffs: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = coeffs.size()[0];
        let blocks = coeffs.f_unfold(2, BLOCK, BLOCK)?.f_unfold(3, BLOCK, BLOCK)?.f_contiguous()?;
        let blocks = blocks.f_view([n, -1, BLOCK, BLOCK])?; // N×blocks×16×16, row-major
        let var = blocks.f_var_dim([2i64, 3].as_slice(), true, false)?;
        let active = var.f_gt(ACTIVITY_THRESHOLD)?;

        // Noise: block σ against the centre/surround deviation ratio.
        let sigma = var.f_sqrt()?;
        let centre =
            Tensor::f_stack(&[blocks.f_select(3, CENTRE[0] as i64)?, blocks.f_select(3, CENTRE[1] as i64)?], 3)?;
        let surround = blocks.f_index_select(3, &self.surround)?;
        let ratio = std(&centre, &[2, 3])?.f_div(&std(&surround, &[2, 3])?)?.f_nan_to_num(None, None, None)?;
        let beta = sigma.f_sub(&ratio)?.f_abs()?.f_div(&sigma.f_maximum(&ratio)?)?;
        let noisy = sigma.f_gt_tensor(&beta.f_mul_scalar(2.0)?)?;

        // Noticeable artifacts: a flat 6-sample run along an edge.
        let edges = [
            blocks.f_select(2, 0)?,
            blocks.f_select(3, BLOCK - 1)?,
            blocks.f_select(2, BLOCK - 1)?,
            blocks.f_select(3, 0)?,
        ];
        let mut flat_runs: Option<Tensor> = None;
        for edge in &edges {
            let runs = std(&edge.f_unfold(-1, SEGMENT, 1)?, &[-1])?.f_lt(IMPAIRED_THRESHOLD)?;
            let count = runs.f_sum_dim_intlist([2i64].as_slice(), false, None::<Kind>)?;
            flat_runs = Some(match flat_runs {
                None => count,
                Some(total) => total.f_add(&count)?,
            });
        }
        let impaired = flat_runs.expect("four edges").f_gt(0)?;

        let whsa = active.f_to_kind(Kind::Float)?;
        let wndc = impaired.f_to_kind(Kind::Float)?;
        let wnc = noisy.f_to_kind(Kind::Float)?;
        let terms =
            whsa.f_mul(&wndc)?.f_mul(&var.f_neg()?.f_add_scalar(1.0)?)?.f_add(&whsa.f_mul(&wnc)?.f_mul(&var)?)?;
        let active_count = active.f_sum_dim_intlist([1i64].as_slice(), false, None::<Kind>)?;
        Ok((terms, active_count))
    }
}

/// Unbiased variance of `values` (an iterator that can be walked twice) in float64: libtorch reduces float32
/// that way (its standard deviation is the float64 square root of this, rounded to float32).
fn var_f64<I: Iterator<Item = f32> + Clone>(values: I) -> f64 {
    let (count, sum) = values.clone().fold((0usize, 0f64), |(c, s), v| (c + 1, s + v as f64));
    let mean = sum / count as f64;
    let m2: f64 = values.map(|v| (v as f64 - mean).powi(2)).sum();
    m2 / (count - 1) as f64
}

/// [`Piqe::block_terms`] on the CPU in one pass per block over the MSCN map (the tensor version is ~40 small
/// libtorch operations, whose dispatch and thread hand-offs made PIQE slower than pyiqa at 512×384). Every
/// statistic is libtorch's: float64 accumulation rounded to float32, the thresholds compared in float32, so the
/// verdicts are the tensor version's (tested against it on random maps).
fn block_terms_cpu(coeffs: &Tensor) -> Result<(Tensor, Tensor)> {
    let (n, _, h, w) = coeffs.size4()?;
    let (rows, cols) = ((h / BLOCK) as usize, (w / BLOCK) as usize);
    let (h, w) = (h as usize, w as usize);
    let coeffs = coeffs.f_to_kind(Kind::Float)?.f_contiguous()?;
    let data = cpu_slice::<f32>(&coeffs)?;
    let b = BLOCK as usize;
    let mut terms = Vec::with_capacity(n as usize * rows * cols);
    let mut active_counts = Vec::with_capacity(n as usize);
    for plane in data.chunks_exact(h * w) {
        let mut active_count = 0i64;
        for block_row in 0..rows {
            for block_col in 0..cols {
                let at = |r: usize, c: usize| plane[(block_row * b + r) * w + block_col * b + c];
                let var = var_f64((0..b * b).map(|i| at(i / b, i % b))) as f32;
                if var <= ACTIVITY_THRESHOLD as f32 {
                    terms.push(0f32);
                    continue;
                }
                active_count += 1;
                let sigma = var.sqrt();
                let centre = var_f64((0..b * 2).map(|i| at(i / 2, CENTRE[i % 2]))).sqrt() as f32;
                let surround = var_f64((0..b * 14).map(|i| at(i / 14, SURROUND[i % 14]))).sqrt() as f32;
                let ratio = nan_to_num(centre / surround);
                let beta = (sigma - ratio).abs() / maximum(sigma, ratio);
                let noisy = sigma > beta * 2.0;
                let seg = SEGMENT as usize;
                let flat = |edge: &dyn Fn(usize) -> f32| {
                    (0..=b - seg).any(|s| (var_f64((s..s + seg).map(edge)).sqrt() as f32) < IMPAIRED_THRESHOLD as f32)
                };
                let impaired =
                    flat(&|i| at(0, i)) || flat(&|i| at(i, b - 1)) || flat(&|i| at(b - 1, i)) || flat(&|i| at(i, 0));
                let impaired_term = if impaired { 1.0 - var } else { 0.0 };
                let noisy_term = if noisy { var } else { 0.0 };
                terms.push(impaired_term + noisy_term);
            }
        }
        active_counts.push(active_count);
    }
    let terms = Tensor::f_from_slice(&terms)?.f_view([n, (rows * cols) as i64])?;
    Ok((terms, Tensor::f_from_slice(&active_counts)?))
}

/// torch.nan_to_num for float32: NaN → 0, ±∞ → the largest finite values.
fn nan_to_num(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(f32::MIN, f32::MAX)
    }
}

/// torch.maximum: NaN if either is NaN.
fn maximum(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

impl Model for Piqe {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let y = rgb_to_y(dist, 1.0)?;
        let (n, _, h, w) = y.size4()?;
        let max = y.f_flatten(1, -1)?.f_amax([-1i64].as_slice(), false)?.f_reshape([n, 1, 1, 1])?;
        let img = y.f_div(&max)?.f_mul_scalar(255.0)?.f_round()?;
        let img = pad_symmetric(&pad_symmetric(&img, 3, w % BLOCK)?, 2, h % BLOCK)?;
        let coeffs = mscn(&img, &self.window, Border::Replicate)?;
        let (terms, active_count) = self.block_terms(&coeffs)?;
        let scores = serial_reduce(&terms, 1, false)?;
        Ok(scores.f_add_scalar(1.0)?.f_div(&active_count.f_add_scalar(1)?)?.f_mul_scalar(100.0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU loops give the tensor version's per-block terms and active counts on random MSCN-like maps
    /// (with flat patches, so that every verdict occurs), a batch of 2 and sides that are not multiples of 16.
    #[test]
    fn cpu_block_terms_equal_tensor_version() {
        tch::manual_seed(7);
        let piqe = Piqe::new(Device::Cpu).unwrap();
        for (h, w) in [(64, 80), (50, 37)] {
            let noise = Tensor::randn([2, 1, h, w], (Kind::Float, Device::Cpu));
            // Scale varies per 8×8 patch: 0 (flat), 0.05, 0.3 and 1.
            let scale =
                Tensor::randint(4, [2, 1, h / 8 + 1, w / 8 + 1], (Kind::Int64, Device::Cpu)).to_kind(Kind::Float);
            let scale = scale.pow_tensor_scalar(2).repeat_interleave_self_int(8, Some(2), None);
            let scale = scale.repeat_interleave_self_int(8, Some(3), None).narrow(2, 0, h).narrow(3, 0, w);
            let coeffs = noise * scale / 9.0;
            let (terms, counts) = block_terms_cpu(&coeffs).unwrap();
            let (expected_terms, expected_counts) = piqe.block_terms_tensor(&coeffs).unwrap();
            assert_eq!(terms.size(), expected_terms.size());
            assert_eq!(Vec::<i64>::try_from(&counts).unwrap(), Vec::<i64>::try_from(&expected_counts).unwrap());
            // Some blocks inactive, some active (2 images).
            let active: i64 = Vec::<i64>::try_from(&counts).unwrap().iter().sum();
            assert!(active > 0 && active < 2 * (h / 16) * (w / 16), "{h}x{w}: {active} active");
            let got = Vec::<f32>::try_from(terms.flatten(0, -1)).unwrap();
            let want = Vec::<f32>::try_from(expected_terms.flatten(0, -1)).unwrap();
            let nonzero = want.iter().filter(|&&v| v != 0.0).count();
            assert!(nonzero > 0, "no block scored");
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                assert!((g - e).abs() <= 1e-6 * e.abs().max(1.0), "{h}x{w} block {i}: {g} vs {e}");
            }
        }
    }
}
