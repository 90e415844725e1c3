//! GMSD, gradient magnitude similarity deviation (Xue et al. 2013), with pyiqa 0.1.16's defaults: the Y of
//! YIQ rounded to 0..255, 2×2 averaging with stride 2, Prewitt-like gradients with zero padding, T = 170, and
//! the standard deviation (n−1, as `torch.std`) of the similarity map. Lower is better.
//!
//! Float32 with pyiqa's operations in pyiqa's order: the deviation of similarities near 1 carries float32
//! rounding that a float64 computation would not reproduce. The deviation is reduced one image at a time so
//! that a batch equals single scores. Where pyiqa differs from the official GMSD.m (its luma conversion)
//! iqa follows pyiqa. Minimum size: two 2×2 blocks (4×2 or 2×4); pyiqa returns NaN or fails below that.
use crate::error::{Error, Result};
use crate::image::colour::rgb_to_y;
use crate::model::{require_ref, DistanceMap, MetricSpec, Mode, Model};
use crate::nn::filters::scaled_block_mean;
use crate::nn::matlab::kernel;
use crate::tensor::FrozenTensor;
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
        let y = scaled_block_mean(&y, 1.0, 2)?;
        let none = None::<&Tensor>;
        let ix = y.f_conv2d(&self.dx, none, [1, 1], [1, 1], [1, 1], 1)?;
        let iy = y.f_conv2d(&self.dy, none, [1, 1], [1, 1], [1, 1], 1)?;
        Ok(ix.f_square()?.f_add(&iy.f_square()?)?.f_add_scalar(MAGNITUDE_EPS)?.f_sqrt()?)
    }
}

impl Model for Gmsd {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let reference = require_ref(reference)?;
        let (h, w) = (dist.size()[2], dist.size()[3]);
        // The deviation needs two similarity values; pyiqa returns NaN for one (2×2 or 3×3 images, say).
        if (h / 2) * (w / 2) < 2 {
            return Err(Error::shape(format!(
                "image is {w}x{h}; gmsd needs at least 4x2 or 2x4 pixels (two 2x2 blocks)"
            )));
        }
        let n = dist.size()[0];
        let quality = self.similarity(dist, reference)?;
        // One float32 reduction per image, shaped as pyiqa's single-image call, so that a batch gives exactly
        // the single scores (a batched reduction splits its sums differently).
        let per_image = (0..n)
            .map(|i| Ok(quality.f_narrow(0, i, 1)?.f_view([1, -1])?.f_std_correction(&[1i64][..], 1, false)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::f_cat(&per_image, 0)?)
    }

    fn distance_map(&self) -> Option<&dyn DistanceMap> {
        Some(self)
    }
}

impl Gmsd {
    /// The gradient magnitude similarity map (GMS), N×1×H/2×W/2.
    fn similarity(&self, dist: &Tensor, reference: &Tensor) -> Result<Tensor> {
        let (g1, g2) = (self.magnitude(dist)?, self.magnitude(reference)?);
        Ok(g1
            .f_mul_scalar(2.0)?
            .f_mul(&g2)?
            .f_add_scalar(T)?
            .f_div(&g1.f_square()?.f_add(&g2.f_square()?)?.f_add_scalar(T)?)?)
    }
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
