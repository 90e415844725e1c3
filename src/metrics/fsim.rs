//! FSIMc (`fsim`, Zhang et al. 2011) with pyiqa 0.1.16's defaults: inputs scaled to 0..255 in float32,
//! averaged over k×k blocks with k = round(min(H, W)/256), YIQ, phase congruency of the luma (4 scales,
//! 4 orientations, Kovesi's noise compensation), Scharr gradient magnitude, chroma similarity of I and Q,
//! pooled by the larger phase congruency.
//!
//! The same float32 operations in the same order as pyiqa. The official FeatureSIM.m downsamples and builds
//! its filters differently; iqa follows pyiqa.
use crate::error::Result;
use crate::model::{require_ref, MetricSpec, Mode, Model};
use crate::nn::filters::scaled_block_mean;
use crate::nn::frequency::{scharr_magnitude, similarity_map, FilterBank, PhaseCongruency};
use crate::tensor::per_image_sums_f64;
use parking_lot::Mutex;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// pyiqa's centred frequency grid divides by (side − 1) on odd sides: one-pixel sides give NaN.
pub const METRICS: &[MetricSpec] =
    &[MetricSpec::new("fsim", Mode::FullReference, false, (0.0, 1.0), |_| Ok(Arc::new(Fsim::default())))
        .min_size(2, 2)];

/// RGB → YIQ (rows: Y, I, Q), as pyiqa's `rgb2yiq` stores it (float32).
const RGB_TO_YIQ: [f32; 9] = [0.299, 0.587, 0.114, 0.5959, -0.2746, -0.3213, 0.2115, -0.5227, 0.3112];
/// Similarity constants of the paper: phase congruency, gradient magnitude, I, Q; chroma exponent.
const T1: f64 = 0.85;
const T2: f64 = 160.0;
const T3: f64 = 200.0;
const T4: f64 = 200.0;
const LAMBDA: f64 = 0.03;

pub(crate) const PC: PhaseCongruency =
    PhaseCongruency { scales: 4, orientations: 4, min_length: 6.0, mult: 2.0, sigma_f: 0.55, delta_theta: 1.2, k: 2.0 };

/// The metric, keeping the filter bank of the last (downsampled) image size: building it, 16 filters and
/// their inverse FFTs, is a sizeable part of scoring one pair, and consecutive images of one size (the
/// common case) reuse it.
#[derive(Default)]
pub struct Fsim {
    last_bank: Mutex<Option<Arc<FilterBank>>>,
}

impl Fsim {
    fn bank(&self, rows: i64, cols: i64, device: Device) -> Result<Arc<FilterBank>> {
        let mut last = self.last_bank.lock();
        if let Some(bank) = last.as_ref().filter(|b| b.fits(rows, cols, device)) {
            return Ok(bank.clone());
        }
        let bank = Arc::new(PC.bank(rows, cols, device)?);
        *last = Some(bank.clone());
        Ok(bank)
    }
}

/// The block size of pyiqa's automatic downsampling: round(min side / 256), half to even, at least 1.
pub(crate) fn pooling_factor(h: i64, w: i64) -> i64 {
    ((h.min(w) as f64 / 256.0).round_ties_even() as i64).max(1)
}

/// RGB → YIQ of an N×3×H×W batch in its dtype, as the same matrix product pyiqa computes.
fn rgb_to_yiq(rgb: &Tensor) -> Result<Tensor> {
    let m =
        Tensor::f_from_slice(&RGB_TO_YIQ)?.f_view([3, 3])?.f_tr()?.f_to_kind(rgb.kind())?.f_to_device(rgb.device())?;
    Ok(rgb.f_permute([0, 2, 3, 1])?.f_matmul(&m)?.f_permute([0, 3, 1, 2])?)
}

impl Model for Fsim {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let reference = require_ref(reference)?;
        let n = dist.size()[0];
        let (h, w) = (dist.size()[2], dist.size()[3]);
        let k = pooling_factor(h, w);
        // Scaled to 0..255 then block-averaged, as pyiqa does (its x / 1.0 is exact and left out); the two
        // images of every pair then go through one pass as 2N small images.
        let pool = |x: &Tensor| scaled_block_mean(&x.f_to_kind(Kind::Float)?, 255.0, k);
        let pooled = Tensor::f_cat(&[pool(dist)?, pool(reference)?], 0)?;
        let yiq = rgb_to_yiq(&pooled)?;
        let luma = yiq.f_narrow(1, 0, 1)?;
        let (ph, pw) = (luma.size()[2], luma.size()[3]);
        let bank = self.bank(ph, pw, luma.device())?;
        let pc = PC.compute(&luma, &bank)?;
        let gm = scharr_magnitude(&luma)?;
        let half = |t: &Tensor| -> Result<(Tensor, Tensor)> { Ok((t.f_narrow(0, 0, n)?, t.f_narrow(0, n, n)?)) };
        let (pc_x, pc_y) = half(&pc)?;
        let (gm_x, gm_y) = half(&gm)?;
        let (iq_x, iq_y) = half(&yiq)?;
        let s_pc = similarity_map(&pc_x, &pc_y, T1)?;
        let s_gm = similarity_map(&gm_x, &gm_y, T2)?;
        let pc_max = pc_x.f_where_self(&pc_x.f_gt_tensor(&pc_y)?, &pc_y)?;
        let s_i = similarity_map(&iq_x.f_narrow(1, 1, 1)?, &iq_y.f_narrow(1, 1, 1)?, T3)?;
        let s_q = similarity_map(&iq_x.f_narrow(1, 2, 1)?, &iq_y.f_narrow(1, 2, 1)?, T4)?;
        let chroma = s_i.f_mul(&s_q)?.f_abs()?.f_pow_tensor_scalar(LAMBDA)?;
        let score = s_gm.f_mul(&s_pc)?.f_mul(&pc_max)?.f_mul(&chroma)?;
        // Pooled in float64 in a fixed order: how libtorch splits a reduction follows the thread count and the
        // batch size, and batches must give exactly the single scores at any thread count.
        Ok(per_image_sums_f64(&score)?.f_div(&per_image_sums_f64(&pc_max)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::frequency::responses;

    /// The CPU pass of phase congruency agrees with the libtorch sequence to a few float32 ulp (see
    /// `combine_cpu`) on FSIM's bank: a batch of three (random 0..255 values, a flat image whose responses are
    /// all zero, 8-bit steps), odd and even sides.
    #[test]
    fn phase_congruency_cpu_equals_libtorch() {
        tch::manual_seed(11);
        for (h, w) in [(37, 29), (64, 48), (5, 300)] {
            let opts = (Kind::Float, Device::Cpu);
            let random = Tensor::rand([1, 1, h, w], opts) * 255.0;
            let flat = Tensor::full([1, 1, h, w], 128.0, opts);
            let steps = Tensor::randint(256, [1, 1, h, w], opts);
            let x = Tensor::cat(&[random, flat, steps], 0);
            let bank = PC.bank(h, w, Device::Cpu).unwrap();
            let responses = responses(&x, &bank).unwrap();
            let expected = PC.combine(&responses, &bank, (3, h, w)).unwrap();
            let actual = PC.combine_cpu(&responses, &bank, (3, h, w)).unwrap();
            assert_eq!(actual.size(), [3, 1, h, w]);
            // Phase congruency lies in [0, 1]; a few ulp of float32 apart.
            let difference = (&actual - &expected).abs().max().double_value(&[]);
            assert!(difference <= 1e-6, "{h}x{w}: max difference {difference}");
            assert_eq!(expected.isnan().sum(Kind::Int64).int64_value(&[]), 0);
        }
    }
}
