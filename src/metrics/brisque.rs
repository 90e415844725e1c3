//! BRISQUE (Mittal et al. 2012), pyiqa 0.1.16's `brisque` (the LIVE ε-SVR): on the luma (Y of YIQ rounded to
//! 0..255) at full and half scale, 18 features of the MSCN coefficients (a GGD fit and AGGD fits of their
//! products with the four neighbours), scaled with the official ranges and scored by the RBF SVR.
//!
//! Everything runs in float32 with pyiqa's operation sequence and single-threaded summation order
//! (`nn::nss::serial_reduce`), and the final products one image at a time: the SVR sum cancels, so a last-bit
//! change in one moment moves the score visibly, and pyiqa's own score moves with its thread count. iqa
//! reproduces pyiqa on one thread whatever iqa's thread count is. Where pyiqa departs from the official MATLAB
//! code (its luma, float32 features, its own `imresize`) iqa follows pyiqa; README lists the distances.
//! Minimum size 7×7 (pyiqa's resize fails below). Small images with no negative or no positive neighbour
//! product along some direction score NaN, as in pyiqa.
use crate::error::{Error, ErrorKind, Result};
use crate::image::colour::rgb_to_y;
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::nss::{aggd_features, fspecial_gaussian_f32, lgamma_of, mscn, neighbour_product, Border, ShapeTables};
use crate::nn::resize::imresize_scale;
use crate::tensor::FrozenTensor;
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[
    MetricSpec::new("brisque", Mode::NoReference, true, (0.0, 150.0), build)
        .min_size(7, 7)
        .weights(&[&files::BRISQUE_SVM]),
    MetricSpec::new("brisque_matlab", Mode::NoReference, true, (0.0, 100.0), build_matlab)
        .min_size(7, 7)
        .weights(&[&files::BRISQUE_MATLAB]),
];

const FEATURES: i64 = 36;
/// Support vectors of the LIVE model.
const SUPPORT_VECTORS: i64 = 774;
/// Which of pyiqa's two BRISQUE models.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Version {
    /// The LIVE SVR (`brisque`): features of zero-padded MSCN coefficients (a GGD fit, AGGD σ's), scaled to
    /// [−1, 1] with the official ranges; RBF γ 0.05, ρ −153.591.
    Original,
    /// MATLAB's model (`brisque_matlab`): features of replicate-padded coefficients (pyiqa's
    /// `compute_nss_features`: AGGD fits, β's), and support vectors, divided by 0.3210; RBF γ 1, ρ −43.4582.
    Matlab,
}

impl Version {
    /// (γ, ρ) of the RBF SVR.
    fn svr(self) -> (f64, f64) {
        match self {
            Version::Original => (0.05, -153.591),
            Version::Matlab => (1.0, -43.4582),
        }
    }
}

/// MATLAB's feature scale (features and support vectors are divided by it).
const MATLAB_SCALE: f64 = 0.3210;
/// The official feature ranges (LIVE `allrange`: min, max per feature) that scale features to [−1, 1].
const RANGES: [[f32; 2]; 36] = [
    [0.338, 10.0],
    [0.017204, 0.806612],
    [0.236, 1.642],
    [-0.123884, 0.20293],
    [0.000155, 0.712298],
    [0.001122, 0.470257],
    [0.244, 1.641],
    [-0.123586, 0.179083],
    [0.000152, 0.710456],
    [0.000975, 0.470984],
    [0.249, 1.555],
    [-0.135687, 0.100858],
    [0.000174, 0.684173],
    [0.000913, 0.534174],
    [0.258, 1.561],
    [-0.143408, 0.100486],
    [0.000179, 0.685696],
    [0.000888, 0.536508],
    [0.471, 3.264],
    [0.012809, 0.703171],
    [0.218, 1.046],
    [-0.094876, 0.187459],
    [1.5e-5, 0.442057],
    [0.001272, 0.40803],
    [0.222, 1.042],
    [-0.115772, 0.162604],
    [1.6e-5, 0.444362],
    [0.001374, 0.40243],
    [0.227, 0.996],
    [-0.117188, 0.098323],
    [3e-5, 0.531903],
    [0.001122, 0.369589],
    [0.228, 0.99],
    [-0.12243, 0.098658],
    [2.8e-5, 0.530092],
    [0.001118, 0.370399],
];

pub struct Brisque {
    version: Version,
    window: FrozenTensor,
    tables: ShapeTables,
    range_min: FrozenTensor,
    range_width: FrozenTensor,
    /// Support vectors, SV×36, float32; used transposed (a strided view, as in pyiqa, so that the squared
    /// distances are summed in the same order).
    sv: FrozenTensor,
    /// SV coefficients, float32.
    sv_coef: FrozenTensor,
}

pub fn build(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let params = weights::load(
        &files::BRISQUE_SVM,
        &[("sv_coef", &[SUPPORT_VECTORS][..]), ("sv", &[SUPPORT_VECTORS, FEATURES][..])],
    )?;
    Ok(Arc::new(Brisque::new(Version::Original, &params["sv_coef"], &params["sv"], key.device)?))
}

/// MATLAB's model: any number of support vectors (its file says how many), 36 features each.
fn build_matlab(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let file = &files::BRISQUE_MATLAB;
    let params = weights::load(file, &[])?;
    let get = |name: &str| {
        params
            .get(name)
            .ok_or_else(|| Error::new(ErrorKind::Weights, format!("'{}' lacks '{name}'", file.official_name)))
    };
    let (sv, sv_coef) = (get("sv")?, get("sv_coef")?.f_reshape([-1])?);
    if sv.dim() != 2 || sv.size()[1] != FEATURES || sv.size()[0] != sv_coef.size()[0] {
        return Err(Error::new(
            ErrorKind::Weights,
            format!(
                "'{}': 'sv' has shape {:?} and 'sv_coef' {} values; expected k×{FEATURES} and k",
                file.official_name,
                sv.size(),
                sv_coef.size()[0]
            ),
        ));
    }
    // pyiqa divides the float64 support vectors by the scale before they meet float32 features.
    let sv = sv.f_to_kind(Kind::Double)?.f_div_scalar(MATLAB_SCALE)?;
    Ok(Arc::new(Brisque::new(Version::Matlab, &sv_coef, &sv, key.device)?))
}

impl Brisque {
    /// `sv_coef` (SV) and `sv` (SV×36), the SVR model.
    fn new(version: Version, sv_coef: &Tensor, sv: &Tensor, device: Device) -> Result<Self> {
        let taps = fspecial_gaussian_f32(7, 7.0 / 6.0);
        let window = Tensor::f_from_slice(&taps)?.f_view([1, 1, 7, 7])?;
        let flat: Vec<f32> = RANGES.iter().flatten().copied().collect();
        let ranges = Tensor::f_from_slice(&flat)?.f_view([FEATURES, 2])?;
        let (lo, hi) = (ranges.f_select(1, 0)?, ranges.f_select(1, 1)?);
        let frozen = |t: Tensor| -> Result<FrozenTensor> { Ok(FrozenTensor::new(t.f_to_device(device)?)) };
        Ok(Brisque {
            version,
            window: frozen(window)?,
            tables: ShapeTables::new(Kind::Float, device)?,
            range_width: frozen(hi.f_sub(&lo)?)?,
            range_min: frozen(lo)?,
            sv: frozen(sv.f_to_kind(Kind::Float)?.f_contiguous()?)?,
            sv_coef: frozen(sv_coef.f_reshape([-1])?.f_to_kind(Kind::Float)?)?,
        })
    }

    /// The 18 features of N×1×H×W luma at one scale, N×18 (pyiqa's `natural_scene_statistics`, or
    /// `compute_nss_features` for MATLAB's model).
    fn scale_features(&self, luma: &Tensor) -> Result<Tensor> {
        if self.version == Version::Matlab {
            let coeffs = mscn(luma, &self.window, Border::Replicate)?;
            return aggd_features(&self.tables, &coeffs, [[0, 1], [1, 0], [1, 1], [-1, 1]]);
        }
        let coeffs = mscn(luma, &self.window, Border::Zeros)?;
        let (alpha, sigma) = self.tables.ggd(&coeffs)?;
        let mut feat = vec![alpha, sigma.f_pow_tensor_scalar(2)?];
        for shift in [[0i64, 1], [1, 0], [1, 1], [-1, 1]] {
            let product = neighbour_product(&coeffs, shift)?;
            let (alpha, left, right) = self.tables.aggd(&product)?;
            let log_ratio = lgamma_of(2.0, &alpha)?
                .f_sub(&lgamma_of(1.0, &alpha)?.f_add(&lgamma_of(3.0, &alpha)?)?.f_div_scalar(2.0)?)?;
            let eta = right.f_sub(&left)?.f_mul(&log_ratio.f_exp()?)?;
            feat.extend([alpha, eta, left.f_pow_tensor_scalar(2)?, right.f_pow_tensor_scalar(2)?]);
        }
        Ok(Tensor::f_stack(&feat, -1)?)
    }
}

impl Model for Brisque {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        let mut luma = rgb_to_y(dist, 255.0)?.f_to_kind(Kind::Float)?;
        let mut features = Vec::with_capacity(2);
        for _ in 0..2 {
            features.push(self.scale_features(&luma)?);
            // pyiqa also resizes after the last scale (and fails there on images below 7×7).
            luma = imresize_scale(&luma, 0.5, true)?;
        }
        let features = Tensor::f_cat(&features, -1)?; // N×36
        let scaled = match self.version {
            Version::Original => {
                features.f_sub(&self.range_min)?.f_mul_scalar(2.0)?.f_div(&self.range_width)?.f_add_scalar(-1.0)?
            }
            Version::Matlab => features.f_div_scalar(MATLAB_SCALE)?,
        };
        let (gamma, rho) = self.version.svr();
        let distance = scaled
            .f_unsqueeze(-1)?
            .f_sub(&self.sv.f_tr()?.f_unsqueeze(0)?)?
            .f_pow_tensor_scalar(2)?
            .f_sum_dim_intlist([1i64].as_slice(), false, None::<Kind>)?;
        let kernel = distance.f_neg()?.f_mul_scalar(gamma)?.f_exp()?;
        // One (1×SV)·(SV) product per image, the call pyiqa makes for one image: the float32 sum of ±1024-weighted
        // terms cancels down to the score, so its rounding depends on the BLAS kernel, which differs between a
        // matrix-vector product over a batch and one over a single row (1e-3 apart on the calibration images).
        let scores = (0..kernel.size()[0])
            .map(|i| Ok(kernel.f_narrow(0, i, 1)?.f_matmul(&self.sv_coef)?))
            .collect::<Result<Vec<Tensor>>>()?;
        Ok(Tensor::f_cat(&scores, 0)?.f_sub_scalar(rho)?)
    }
}
