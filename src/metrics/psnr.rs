//! PSNR over RGB (`psnr`) or over luma (`psnry`), data range 1, as pyiqa computes it.
use super::{require_ref, Model};
use crate::error::Result;
use crate::image::colour::rgb_to_y;
use tch::{Kind, Tensor};

/// pyiqa adds this to the MSE so that identical images give a finite score (80 dB).
const MSE_EPS: f64 = 1e-8;

pub struct Psnr {
    pub luma_only: bool,
}

impl Model for Psnr {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let reference = require_ref(reference)?;
        let (x, y) = if self.luma_only {
            (rgb_to_y(dist, 1.0)?, rgb_to_y(reference, 1.0)?)
        } else {
            (dist.shallow_clone(), reference.shallow_clone())
        };
        // Accumulated in float64: pyiqa's float32 mean differs by ~1e-7 relative, and its rounding would
        // depend on how the reduction is split, so a batch would not give exactly the single scores.
        let mse = x.f_sub(&y)?.f_square()?.f_mean_dim(&[1i64, 2, 3][..], false, Kind::Double)?;
        // 10·log10(1 / (mse + eps)), data range 1
        Ok(mse.f_add_scalar(MSE_EPS)?.f_reciprocal()?.f_log10()?.f_mul_scalar(10.0)?)
    }
}
