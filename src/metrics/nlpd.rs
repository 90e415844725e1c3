//! NLPD, normalised Laplacian pyramid distance (Laparra et al. 2016), as pyiqa 0.1.16 computes it: the Y of
//! YIQ in [0, 1] (not rounded), a six-level Laplacian pyramid, each band divided by σᵢ + a 3×3 weighted sum of
//! its absolute values; the score is the mean over levels of the RMS difference of the normalised bands.
//! Lower is better.
//!
//! Float32 like pyiqa, from pyiqa's float32 taps and constants; the mean squares are accumulated in float64 so
//! that a batch equals single scores. The official MATLAB scores are of the luma rounded to 8 bits while pyiqa
//! keeps it unrounded, which matters on near-identical pairs (README lists the distances); iqa follows pyiqa.
//! Any size down to 1×1 is scored (symmetric padding folds as often as needed), as in pyiqa.
use crate::error::Result;
use crate::image::colour::rgb_to_y;
use crate::model::{require_ref, MetricSpec, Mode, Model};
use crate::nn::matlab::{kernel, pad_symmetric};
use crate::tensor::FrozenTensor;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

pub const METRICS: &[MetricSpec] =
    &[MetricSpec::new("nlpd", Mode::FullReference, true, (0.0, 1.0), |k| Ok(Arc::new(Nlpd::new(k.device)?)))];

const LEVELS: usize = 6;
const KIND: Kind = Kind::Float;
/// 1-D taps whose outer product is the pyramid filter (pyiqa stores the 5×5 product, rounded to float32).
const TAPS: [f64; 5] = [0.05, 0.25, 0.4, 0.25, 0.05];
/// Divisive-normalisation constants per level (the last for the low-pass residual).
const SIGMAS: [f32; LEVELS] = [0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782];
/// Divisive-normalisation weights per level (up, left, right, down neighbours), as MATLAB's conv2 kernels.
const DN_WEIGHTS: [[f32; 4]; LEVELS] = [
    [0.1011, 0.1493, 0.1460, 0.1015],
    [0.0757, 0.1986, 0.1846, 0.0837],
    [0.0477, 0.2138, 0.2243, 0.0467],
    [0.0, 0.2503, 0.2616, 0.0],
    [0.0, 0.2598, 0.2552, 0.0],
    [0.0, 0.2215, 0.0717, 0.0],
];

pub struct Nlpd {
    filter: FrozenTensor,
    /// Per level, the normalisation weights rotated by 180° (conv2 convolves; conv2d correlates).
    dn: Vec<FrozenTensor>,
}

impl Nlpd {
    pub fn new(device: Device) -> Result<Self> {
        // The 5×5 taps as float32 products, the values pyiqa holds.
        let taps: Vec<f64> = (0..25).map(|p| (TAPS[p / 5] * TAPS[p % 5]) as f32 as f64).collect();
        let filter = kernel(&taps, Kind::Float)?.f_to_kind(KIND)?.f_to_device(device)?;
        let dn = DN_WEIGHTS
            .iter()
            .map(|&[up, left, right, down]| {
                let w = [0.0, up, 0.0, left, 0.0, right, 0.0, down, 0.0].map(f64::from);
                let t = kernel(&w, Kind::Float)?.f_flip([2, 3])?.f_to_kind(KIND)?.f_to_device(device)?;
                Ok(FrozenTensor::new(t))
            })
            .collect::<Result<_>>()?;
        Ok(Nlpd { filter: FrozenTensor::new(filter), dn })
    }

    /// `band` / (σ + weighted sum of |band| over the 4-neighbourhood, zero outside).
    fn normalise(&self, band: &Tensor, level: usize) -> Result<Tensor> {
        let activity = band.f_abs()?.f_conv2d(&self.dn[level], None::<&Tensor>, [1, 1], [1, 1], [1, 1], 1)?;
        let sigma = Tensor::f_from_slice(&[SIGMAS[level]])?.f_to_kind(KIND)?.f_to_device(band.device())?;
        Ok(band.f_div(&activity.f_add(&sigma)?)?)
    }

    /// The normalised pyramid of `j` (B×1×H×W), fine to coarse.
    fn pyramid(&self, mut j: Tensor) -> Result<Vec<Tensor>> {
        let none = None::<&Tensor>;
        let mut out = Vec::with_capacity(LEVELS);
        for level in 0..LEVELS - 1 {
            let (h, w) = (j.size()[2], j.size()[3]);
            let low = pad_symmetric(&j, [2, 2, 2, 2])?.f_conv2d(&self.filter, none, [2, 2], [0, 0], [1, 1], 1)?;
            // Upsample: replicated border of one sample, zeros between samples (the kept ones times 4), the
            // same filter with zero borders, cropped back to H×W.
            let padded = low.f_replication_pad2d([1, 1, 1, 1])?.f_mul_scalar(4.0)?;
            let zeros = padded.f_zeros_like()?;
            let up = Tensor::f_cat(&[&padded, &zeros, &zeros, &zeros], 1)?.f_pixel_shuffle(2)?;
            let smooth = up.f_conv2d(&self.filter, none, [1, 1], [2, 2], [1, 1], 1)?;
            let band = j.f_sub(&smooth.f_narrow(2, 2, h)?.f_narrow(3, 2, w)?)?;
            out.push(self.normalise(&band, level)?);
            j = low;
        }
        out.push(self.normalise(&j, LEVELS - 1)?);
        Ok(out)
    }
}

impl Model for Nlpd {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let n = dist.size()[0];
        let x = rgb_to_y(dist, 1.0)?;
        let y = rgb_to_y(require_ref(reference)?, 1.0)?;
        let both = Tensor::f_cat(&[&x, &y], 0)?.f_to_kind(KIND)?;
        let mut total = Tensor::f_zeros([n], (Kind::Double, dist.device()))?;
        for band in self.pyramid(both)? {
            let diff = band.f_narrow(0, 0, n)?.f_sub(&band.f_narrow(0, n, n)?)?;
            let rms = diff.f_square()?.f_mean_dim(&[1i64, 2, 3][..], false, Kind::Double)?.f_sqrt()?;
            total = total.f_add(&rms)?;
        }
        Ok(total.f_div_scalar(LEVELS as f64)?)
    }
}
