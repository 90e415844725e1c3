//! GMSD, gradient magnitude similarity deviation (Xue et al. 2013), with pyiqa 0.1.16's defaults: the Y of
//! YIQ rounded to 0..255, 2×2 averaging with stride 2, Prewitt-like gradients with zero padding, T = 170, and
//! the standard deviation (n−1, as `torch.std`) of the similarity map. Lower is better.
//!
//! Float32 with pyiqa's operations in pyiqa's order: the deviation of similarities near 1 carries float32
//! rounding that a float64 computation would not reproduce. The deviation is reduced one image at a time so
//! that a batch equals single scores. Where pyiqa differs from the official GMSD.m (its luma conversion)
//! iqa follows pyiqa. Minimum size: two 2×2 blocks (4×2 or 2×4); pyiqa returns NaN or fails below that.
use crate::error::{Error, Result};
use crate::image::colour::{rgb_to_y, score_by_rows, Planes255};
use crate::image::Image;
use crate::model::{require_ref, DistanceMap, MetricSpec, Mode, Model};
use crate::nn::filters::scaled_block_mean;
use crate::nn::matlab::kernel;
use crate::runtime::{try_for_each_piece, zeroed};
use crate::tensor::{FreshTensor, FrozenTensor};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// 2×4 and 4×2 work too; `forward` checks the exact condition.
pub const METRICS: &[MetricSpec] =
    &[MetricSpec::new("gmsd", Mode::FullReference, true, (0.0, 1.0), |k| Ok(Arc::new(Gmsd::new(k.device)?)))
        .min_size(2, 2)];

/// Stabilising constant of the similarity, for data range 255.
const T: f64 = 170.0;
/// pyiqa adds this under the square root of the gradient magnitude.
const MAGNITUDE_EPS: f64 = 1e-12;

pub struct Gmsd {
    /// 1×1×3×3 horizontal and vertical gradient kernels (cross-correlation, as conv2d applies them), float32.
    dx: FrozenTensor,
    dy: FrozenTensor,
}

impl Gmsd {
    pub fn new(device: Device) -> Result<Self> {
        let third = (1.0f32 / 3.0) as f64;
        let dx = kernel(&[third, 0.0, -third, third, 0.0, -third, third, 0.0, -third], Kind::Float)?;
        let dy = kernel(&[third, third, third, 0.0, 0.0, 0.0, -third, -third, -third], Kind::Float)?;
        Ok(Gmsd { dx: FrozenTensor::new(dx.f_to_device(device)?), dy: FrozenTensor::new(dy.f_to_device(device)?) })
    }

    /// Gradient magnitude of the 2×2-averaged luma, N×1×H/2×W/2.
    fn magnitude(&self, rgb: &Tensor) -> Result<Tensor> {
        let y = rgb_to_y(rgb, 255.0)?;
        // Exact in float32: sums of four integers, divided by 4.
        self.magnitude_of_half(&scaled_block_mean(&y, 1.0, 2)?)
    }

    /// Gradient magnitude of 2×2-averaged luma `y`.
    fn magnitude_of_half(&self, y: &Tensor) -> Result<Tensor> {
        let none = None::<&Tensor>;
        let ix = y.f_conv2d(&self.dx, none, [1, 1], [1, 1], [1, 1], 1)?;
        let iy = y.f_conv2d(&self.dy, none, [1, 1], [1, 1], [1, 1], 1)?;
        Ok(ix.f_square()?.f_add(&iy.f_square()?)?.f_add_scalar(MAGNITUDE_EPS)?.f_sqrt()?)
    }
}

impl Model for Gmsd {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let reference = require_ref(reference)?;
        check_size(dist.size()[2], dist.size()[3])?;
        let quality = self.similarity(dist, reference)?;
        deviation(&quality)
    }

    /// Each 8-bit pair from its half-size luma made straight from the rows ([`half_luma`]): no 3×H×W float32
    /// tensor and no full-size luma. The same values from the block means on, so the same scores.
    fn score_pixels(&self, dists: &[Image<'_>], refs: Option<&[Image<'_>]>) -> Option<Result<Vec<f64>>> {
        score_by_rows(
            dists,
            refs,
            |i| Planes255::of_8bit(i, true),
            |d, r| {
                let (w, h) = d.size();
                check_size(h as i64, w as i64)?;
                let (g1, g2) = (self.magnitude_of_half(&half_luma(d)?)?, self.magnitude_of_half(&half_luma(r)?)?);
                Ok(deviation(&similarity(&g1, &g2)?)?.f_double_value(&[0])?)
            },
        )
    }

    fn distance_map(&self) -> Option<&dyn DistanceMap> {
        Some(self)
    }
}

impl Gmsd {
    /// The gradient magnitude similarity map (GMS), N×1×H/2×W/2.
    fn similarity(&self, dist: &Tensor, reference: &Tensor) -> Result<Tensor> {
        similarity(&self.magnitude(dist)?, &self.magnitude(reference)?)
    }
}

/// The similarity of gradient magnitudes `g1` and `g2`.
fn similarity(g1: &Tensor, g2: &Tensor) -> Result<Tensor> {
    Ok(g1
        .f_mul_scalar(2.0)?
        .f_mul(g2)?
        .f_add_scalar(T)?
        .f_div(&g1.f_square()?.f_add(&g2.f_square()?)?.f_add_scalar(T)?)?)
}

/// The deviation needs two similarity values; pyiqa returns NaN for one (2×2 or 3×3 images, say).
fn check_size(h: i64, w: i64) -> Result<()> {
    if (h / 2) * (w / 2) < 2 {
        return Err(Error::shape(format!("image is {w}x{h}; gmsd needs at least 4x2 or 2x4 pixels (two 2x2 blocks)")));
    }
    Ok(())
}

/// The score of each image: one float32 reduction per image, shaped as pyiqa's single-image call, so that a
/// batch gives exactly the single scores (a batched reduction splits its sums differently).
fn deviation(quality: &Tensor) -> Result<Tensor> {
    let per_image = (0..quality.size()[0])
        .map(|i| Ok(quality.f_narrow(0, i, 1)?.f_view([1, -1])?.f_std_correction(&[1i64][..], 1, false)?))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::f_cat(&per_image, 0)?)
}

/// Output rows per task of [`half_luma`].
const HALF_BAND_ROWS: usize = 16;

/// The luma of [`rgb_to_y`] averaged over 2×2 blocks ([`scaled_block_mean`]: trailing odd rows and columns
/// dropped), 1×1×H/2×W/2 float32, made from the image's rows in bands on the worker threads. The luma values
/// are integers, so each block's float32 sum is exact.
fn half_luma(luma: &Planes255<'_>) -> Result<Tensor> {
    let (w, h) = luma.size();
    let (ow, oh) = (w / 2, h / 2);
    let mut out = FreshTensor::<f32>::empty(&[1, 1, oh as i64, ow as i64])?;
    if ow > 0 {
        try_for_each_piece(out.as_mut_slice(), HALF_BAND_ROWS * ow, |i, band| {
            let rows = band.len() / ow;
            let mut full = zeroed(2 * rows * w, "GMSD luma rows")?;
            luma.fill(2 * i * HALF_BAND_ROWS, &mut [&mut full[..]]);
            for (pair, out) in full.chunks_exact(2 * w).zip(band.chunks_exact_mut(ow)) {
                let (top, bottom) = pair.split_at(w);
                for (x, o) in out.iter_mut().enumerate() {
                    let sum =
                        top[2 * x] as f32 + top[2 * x + 1] as f32 + bottom[2 * x] as f32 + bottom[2 * x + 1] as f32;
                    *o = sum / 4.0;
                }
            }
            Ok(())
        })?;
    }
    Ok(out.into_tensor())
}

impl DistanceMap for Gmsd {
    /// The gradient magnitude similarity of the 2×2-averaged luma (1 where gradients agree): the score is its
    /// standard deviation (n−1) over the map.
    fn map(&self, dist: &Tensor, reference: &Tensor) -> Result<Tensor> {
        self.similarity(dist, reference)
    }

    fn map_size(&self, height: i64, width: i64) -> (i64, i64) {
        (height / 2, width / 2)
    }
}
