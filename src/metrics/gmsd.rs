//! GMSD, gradient magnitude similarity deviation (Xue et al. 2013), with pyiqa 0.1.16's defaults: the Y of
//! YIQ rounded to 0..255, 2×2 averaging with stride 2, Prewitt-like gradients with zero padding, T = 170, and
//! the standard deviation (n−1, as `torch.std`) of the similarity map. Lower is better.
//!
//! Float32 with pyiqa's operations in pyiqa's order: the deviation of similarities near 1 carries float32
//! rounding that a float64 computation would not reproduce. The deviation is reduced one image at a time so
//! that a batch equals single scores. Where pyiqa differs from the official GMSD.m (its luma conversion)
//! iqa follows pyiqa. Minimum size: two 2×2 blocks (4×2 or 2×4); pyiqa returns NaN or fails below that.
use crate::error::{Error, Result};
use crate::image::colour::{luma_formula, rgb_to_y};
use crate::image::Image;
use crate::model::{require_ref, MetricSpec, Mode, Model};
use crate::nn::filters::scaled_block_mean;
use crate::nn::matlab::kernel;
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
        self.block_magnitude(&scaled_block_mean(&y, 1.0, 2)?)
    }

    /// Gradient magnitude of 2×2-averaged luma `y`.
    fn block_magnitude(&self, y: &Tensor) -> Result<Tensor> {
        let none = None::<&Tensor>;
        let ix = y.f_conv2d(&self.dx, none, [1, 1], [1, 1], [1, 1], 1)?;
        let iy = y.f_conv2d(&self.dy, none, [1, 1], [1, 1], [1, 1], 1)?;
        Ok(ix.f_square()?.f_add(&iy.f_square()?)?.f_add_scalar(MAGNITUDE_EPS)?.f_sqrt()?)
    }

    /// The 2×2 block means of the rounded 0..255 luma of an 8-bit image, 1×1×H/2×W/2, in one pass over its
    /// bytes: the values `magnitude` computes from the image's float planes (the same luma formula on the same
    /// v/255 values; block sums of four integers are exact), without building the planes, which cost a third of
    /// GMSD's time at 512×384. `None` for other formats, where no luma formula is known at this width, or below
    /// two blocks (`forward` reports that).
    fn block_luma_u8(image: &Image<'_>) -> Option<Result<Tensor>> {
        let (step, [ri, gi, bi]) = image.rgb8_layout()?;
        let (w, h) = (image.width() as usize, image.height() as usize);
        let (oh, ow) = (h / 2, w / 2);
        if oh * ow < 2 {
            return None;
        }
        let formula = luma_formula(w)?;
        let mut out = match FreshTensor::<f32>::empty(&[1, 1, oh as i64, ow as i64]) {
            Ok(out) => out,
            Err(e) => return Some(Err(e)),
        };
        // Division, as the conversion to planes does it.
        let lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
        let (mut upper, mut lower) = (vec![0f32; w], vec![0f32; w]);
        for (by, pooled) in out.as_mut_slice().chunks_exact_mut(ow).enumerate() {
            for (luma, y) in [(&mut upper, 2 * by), (&mut lower, 2 * by + 1)] {
                let pixels = image.row(y).chunks_exact(step);
                let pixels = pixels.map(|p| [lut[p[ri] as usize], lut[p[gi] as usize], lut[p[bi] as usize]]);
                formula.fill(luma, 255.0, true, pixels);
            }
            for (x, o) in pooled.iter_mut().enumerate() {
                // scaled_block_mean's order: the upper row left to right, then the lower one.
                *o = (upper[2 * x] + upper[2 * x + 1] + lower[2 * x] + lower[2 * x + 1]) / 4.0;
            }
        }
        Some(Ok(out.into_tensor()))
    }

    /// The deviation of the similarity of gradient magnitudes `g1`, `g2` (N×1×h×w), one value per image.
    fn deviation(&self, g1: &Tensor, g2: &Tensor) -> Result<Tensor> {
        let n = g1.size()[0];
        let quality = g1
            .f_mul_scalar(2.0)?
            .f_mul(g2)?
            .f_add_scalar(T)?
            .f_div(&g1.f_square()?.f_add(&g2.f_square()?)?.f_add_scalar(T)?)?;
        // One float32 reduction per image, shaped as pyiqa's single-image call, so that a batch gives exactly
        // the single scores (a batched reduction splits its sums differently).
        let per_image = (0..n)
            .map(|i| Ok(quality.f_narrow(0, i, 1)?.f_view([1, -1])?.f_std_correction(&[1i64][..], 1, false)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::f_cat(&per_image, 0)?)
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
        self.deviation(&self.magnitude(dist)?, &self.magnitude(reference)?)
    }

    /// 8-bit pairs (on the CPU, where the api calls this) through [`Gmsd::block_luma_u8`]; the rest as `forward`.
    fn score_pixels(&self, dists: &[Image<'_>], refs: Option<&[Image<'_>]>) -> Option<Result<Vec<f64>>> {
        let refs = refs?;
        let mut scores = Vec::with_capacity(dists.len());
        for (d, r) in dists.iter().zip(refs) {
            let (d, r) = (Self::block_luma_u8(d)?, Self::block_luma_u8(r)?);
            let score = (|| {
                let (g1, g2) = (self.block_magnitude(&d?)?, self.block_magnitude(&r?)?);
                Ok(self.deviation(&g1, &g2)?.f_double_value(&[0])?)
            })();
            match score {
                Ok(score) => scores.push(score),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(scores))
    }
}
