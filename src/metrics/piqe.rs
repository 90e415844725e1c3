//! PIQE (Venkatanath et al. 2015), pyiqa 0.1.16's `piqe`: the luma (Y of YIQ, not rounded) scaled so that
//! its maximum is 255 and rounded, padded symmetrically on the right and bottom by (side mod 16), MSCN
//! coefficients (7×7 Gaussian, σ 7/6, replicated border), then per whole 16×16 block: active when its
//! variance exceeds 0.1; impaired ("noticeable artifact") when some 6-sample run along one of its four edges has
//! a standard deviation below 0.1; noisy when its σ exceeds twice the relative gap between σ and the
//! centre/surround deviation ratio. Score = 100·(Σ_active [impaired·(1 − var) + noisy·var] + 1)/(#active + 1).
//! Float32 throughout, as pyiqa runs it.
//!
//! pyiqa's details, which iqa keeps: it pads by (side mod 16), not up to the next multiple of 16 (so a partial
//! last block is dropped or completed depending on the side), and the "surround" of its centre/surround ratio
//! leaves out columns 7 and 9 (0-based) of the block rather than the two centre columns 7 and 8. On the
//! calibration images (512×384, whole blocks) pyiqa equals the official MATLAB scores
//! (data/calibration/official_scores.csv) to their two published decimals: 100.00, 21.62, 35.86, 41.15, 76.95.
//!
//! Minimum size 8×8: a side of 7 or less pads to less than one block, where pyiqa fails.
use super::Model;
use crate::error::Result;
use crate::image::colour::rgb_to_y;
use crate::nn::nss::{fspecial_gaussian_f32, mscn, serial_reduce, Border};
use crate::runtime::FrozenTensor;
use tch::{Device, Kind, Tensor};

const BLOCK: i64 = 16;
const ACTIVITY_THRESHOLD: f64 = 0.1;
const IMPAIRED_THRESHOLD: f64 = 0.1;
const SEGMENT: i64 = 6;

pub struct Piqe {
    window: FrozenTensor,
    /// The 14 "surround" columns of a block (pyiqa's: all but 7 and 9).
    surround: FrozenTensor,
}

impl Piqe {
    pub fn new(device: Device) -> Result<Self> {
        let taps = fspecial_gaussian_f32(7, 7.0 / 6.0);
        let window = Tensor::f_from_slice(&taps)?.f_view([1, 1, 7, 7])?.f_to_device(device)?;
        let columns: Vec<i64> = (0..BLOCK).filter(|&c| c != 7 && c != 9).collect();
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

impl Model for Piqe {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let y = rgb_to_y(dist, 1.0)?;
        let (n, _, h, w) = y.size4()?;
        let max = y.f_flatten(1, -1)?.f_amax([-1i64].as_slice(), false)?.f_reshape([n, 1, 1, 1])?;
        let img = y.f_div(&max)?.f_mul_scalar(255.0)?.f_round()?;
        let img = pad_symmetric(&pad_symmetric(&img, 3, w % BLOCK)?, 2, h % BLOCK)?;
        let coeffs = mscn(&img, &self.window, Border::Replicate)?;

        let blocks = coeffs.f_unfold(2, BLOCK, BLOCK)?.f_unfold(3, BLOCK, BLOCK)?.f_contiguous()?;
        let blocks = blocks.f_view([n, -1, BLOCK, BLOCK])?; // N×blocks×16×16, row-major
        let var = blocks.f_var_dim([2i64, 3].as_slice(), true, false)?;
        let active = var.f_gt(ACTIVITY_THRESHOLD)?;

        // Noise: block σ against the centre/surround deviation ratio.
        let sigma = var.f_sqrt()?;
        let centre = Tensor::f_stack(&[blocks.f_select(3, 7)?, blocks.f_select(3, 8)?], 3)?;
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
        let scores =
            whsa.f_mul(&wndc)?.f_mul(&var.f_neg()?.f_add_scalar(1.0)?)?.f_add(&whsa.f_mul(&wnc)?.f_mul(&var)?)?;
        let scores = serial_reduce(&scores, 1, false)?;
        let active_count = active.f_sum_dim_intlist([1i64].as_slice(), false, None::<Kind>)?;
        Ok(scores.f_add_scalar(1.0)?.f_div(&active_count.f_add_scalar(1)?)?.f_mul_scalar(100.0)?)
    }

    fn min_size(&self) -> (i64, i64) {
        (8, 8)
    }
}
