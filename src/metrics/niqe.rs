//! NIQE (Mittal et al. 2013), pyiqa 0.1.16's `niqe` (the LIVE pristine model): the luma (Y of YIQ rounded
//! to 0..255) cut into 96×96 blocks, 18 AGGD features of the MSCN coefficients per block at full and half
//! scale, a multivariate Gaussian fitted to the blocks and its distance to the pristine one:
//! sqrt(Δμᵀ ((Σ_pris + Σ_dist)/2)⁺ Δμ). Float64, except pyiqa's float32 Gaussian window and resize, which are
//! reproduced.
//!
//! `niqe_matlab` is the same computation against the pristine model MATLAB's `niqe` ships (pyiqa's
//! `niqe_matlab_params.mat`, found like a model-zoo file).
//!
//! The pristine parameters are the official ones; pyiqa's feature pipeline (the Y of YIQ instead of
//! `rgb2gray`, its float32 `imresize`) moves its scores from the official MATLAB ones (README lists the
//! distances). iqa follows pyiqa, bit for bit on the CPU.
use crate::error::Result;
use crate::image::colour::Luma;
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::nss::{fspecial_gaussian_f32, mscn, nan_mean_cov, niqe_block_features, Border, ShapeTables};
use crate::nn::resize::imresize_scale;
use crate::tensor::FrozenTensor;
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[
    MetricSpec::new("niqe", Mode::NoReference, true, (0.0, 100.0), build)
        .min_size(BLOCK as u32, BLOCK as u32)
        .weights(&[&files::NIQE_PARAMS]),
    MetricSpec::new("niqe_matlab", Mode::NoReference, true, (0.0, 100.0), build_matlab)
        .min_size(BLOCK as u32, BLOCK as u32)
        .weights(&[&files::NIQE_MATLAB_PARAMS]),
];

const BLOCK: i64 = 96;
const FEATURES: i64 = 36;

pub struct Niqe {
    luma: Luma,
    /// Pixels dropped at each edge before scoring (pyiqa's `crop_border`; pi uses 4).
    crop_border: i64,
    mu_pris: FrozenTensor,
    cov_pris: FrozenTensor,
    window: FrozenTensor,
    tables: ShapeTables,
}

pub fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    build_with(&files::NIQE_PARAMS, key)
}

/// pyiqa's `niqe_matlab`: the same features against the pristine model of MATLAB's `niqe`.
fn build_matlab(key: &ModelKey) -> Result<Arc<dyn Model>> {
    build_with(&files::NIQE_MATLAB_PARAMS, key)
}

fn build_with(file: &weights::WeightFile, key: &ModelKey) -> Result<Arc<dyn Model>> {
    let params =
        weights::load(file, &[("mu_pris_param", &[FEATURES][..]), ("cov_pris_param", &[FEATURES, FEATURES][..])])?;
    Ok(Arc::new(Niqe::new(&params["mu_pris_param"], &params["cov_pris_param"], key.device)?))
}

impl Niqe {
    /// `mu` (36) and `cov` (36×36), the pristine model.
    pub fn new(mu: &Tensor, cov: &Tensor, device: Device) -> Result<Self> {
        let taps = fspecial_gaussian_f32(7, 7.0 / 6.0);
        let window = Tensor::f_from_slice(&taps)?.f_view([1, 1, 7, 7])?.f_to_kind(Kind::Double)?;
        let to = |t: &Tensor| -> Result<FrozenTensor> {
            Ok(FrozenTensor::new(t.f_to_kind(Kind::Double)?.f_to_device(device)?))
        };
        Ok(Niqe {
            luma: Luma::Yiq,
            crop_border: 0,
            mu_pris: to(&mu.f_reshape([FEATURES])?)?,
            cov_pris: to(cov)?,
            window: to(&window)?,
            tables: ShapeTables::new(Kind::Double, device)?,
        })
    }

    /// The same model on another luma and with `crop_border` pixels dropped at each edge (pyiqa's `color_space`
    /// and `crop_border` options).
    pub fn with_luma(self, luma: Luma, crop_border: i64) -> Self {
        Niqe { luma, crop_border, ..self }
    }

    /// Features of every `side`×`side` block of N×1×H×W coefficients (H, W multiples of `side`): N×blocks×18,
    /// blocks in pyiqa's column-major order.
    fn image_features(&self, coeffs: &Tensor, side: i64) -> Result<Tensor> {
        let (n, _, h, w) = coeffs.size4()?;
        let (nh, nw) = (h / side, w / side);
        let blocks = coeffs.f_view([n, nh, side, nw, side])?.f_permute([0, 3, 1, 2, 4])?.f_contiguous()?.f_view([
            n * nw * nh,
            1,
            side,
            side,
        ])?;
        Ok(niqe_block_features(&self.tables, &blocks)?.f_view([n, nw * nh, 18])?)
    }
}

impl Model for Niqe {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let y = self.luma.y255(dist)?.f_to_kind(Kind::Double)?;
        let (_, _, h, w) = y.size4()?;
        let c = self.crop_border;
        let (y, h, w) = (y.f_narrow(2, c, h - 2 * c)?.f_narrow(3, c, w - 2 * c)?, h - 2 * c, w - 2 * c);
        let mut img = y.f_narrow(2, 0, h / BLOCK * BLOCK)?.f_narrow(3, 0, w / BLOCK * BLOCK)?;
        let mut features = Vec::with_capacity(2);
        for scale in [1, 2] {
            let coeffs = mscn(&img, &self.window, Border::Replicate)?;
            features.push(self.image_features(&coeffs, BLOCK / scale)?);
            if scale == 1 {
                // pyiqa resizes the image scaled to [0, 1] (in float32, see nn::resize) and scales it back.
                img = imresize_scale(&img.f_div_scalar(255.0)?, 0.5, true)?.f_mul_scalar(255.0)?;
            }
        }
        let features = Tensor::f_cat(&features, 2)?; // N×blocks×36

        let stats = nan_mean_cov(&features)?;
        let (mu, cov) = (stats.mean.f_squeeze_dim(1)?, stats.cov);

        // A pseudo-inverse with PyTorch's default tolerance, as pyiqa takes it: with few blocks (a 96×96 image
        // has one) the fitted covariance is singular or zero.
        let inv = self.cov_pris.f_add(&cov)?.f_div_scalar(2.0)?.f_linalg_pinv_atol_rtol_float(None, None, false)?;
        let diff = self.mu_pris.f_sub(&mu)?.f_unsqueeze(1)?; // N×1×36
        let quality = diff.f_matmul(&inv)?.f_matmul(&diff.f_transpose(1, 2)?)?.f_reshape([-1])?;
        Ok(quality.f_sqrt()?)
    }
}
