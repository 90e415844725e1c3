//! BRISQUE (Mittal et al. 2012), pyiqa 0.1.16's `brisque` (version 'original': the LIVE ε-SVR): on the luma
//! (Y of YIQ rounded to 0..255), at full and half scale (MATLAB bicubic `imresize(0.5)`), 18 features of the
//! MSCN coefficients (7×7 Gaussian, σ 7/6, zero border): a GGD fit of the coefficients (shape, σ²) and AGGD
//! fits of their products with the four neighbours (circular shifts over the whole image: shape, mean, σ²
//! left and right). The 36 features are scaled to [−1, 1] with the official ranges and scored by the RBF SVR
//! (γ 0.05, ρ −153.591): Σ coefᵢ·exp(−γ‖x − svᵢ‖²) − ρ.
//!
//! Everything runs in float32 with pyiqa's op sequence and summation orders (see
//! `nn::nss::serial_reduce`), which gives pyiqa's single-threaded score bit for bit. That matters: the SVR sum cancels (terms of ±1024 down to
//! a few units), so a last-bit change in one moment moves the score by up to 5e-3 — pyiqa's own score moves
//! that much with its thread count on images above 32768 pixels (I08's 301×257 crop: 9.8906 … 9.8951 for 1,
//! 2, 4 threads; I04: −0.1128 … −0.1152). The final products are taken one image at a time, as pyiqa's call
//! for one image is: a batched matrix-vector product rounds differently.
//!
//! Against the official MATLAB scores (data/calibration/official_scores.csv) pyiqa (one thread) differs: I03
//! 94.6435 vs 94.6421, I04 −0.1128 vs −0.1076, I06 1.0746 vs 0.9929, I08 5.1364 vs 5.3583, I19 66.8368 vs
//! 72.2617 (the SVR amplifies small feature differences). The SVR model is the official one (a port of the
//! MATLAB code with it reproduces I04 and I06 to four decimals); the gaps come from pyiqa's feature pipeline:
//! luma from YIQ instead of `rgb2gray`, float32 arithmetic, its own `imresize`, and features passed to the SVR
//! at full precision where the official code goes through libsvm's text files (rounded to six digits). iqa
//! follows pyiqa: its users compare against pyiqa.
//!
//! Minimum size 7×7: smaller images make pyiqa's resize fail. Small images (up to about 16×16, depending on
//! their content) can have no negative or no positive product along some direction; their AGGD fit, and so the
//! score, is NaN, as in pyiqa.
use super::Model;
use crate::error::{Error, ErrorKind, Result};
use crate::image::colour::rgb_to_y;
use crate::nn::nss::{fspecial_gaussian_f32, lgamma_of, mscn, neighbour_product, Border, ShapeTables};
use crate::nn::resize::imresize_scale;
use crate::registry::ModelKey;
use crate::runtime::FrozenTensor;
use crate::weights::{self, files};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

const FEATURES: i64 = 36;
const GAMMA: f64 = 0.05;
const RHO: f64 = -153.591;
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
    let params = weights::load(&files::BRISQUE_SVM, &[])?;
    // The shared .safetensors names the tensors; pyiqa's official file is a tuple (sv_coef, sv) saved by torch.
    let pick = |names: [&str; 2]| names.iter().find_map(|n| params.get(*n));
    let (Some(sv_coef), Some(sv)) = (pick(["sv_coef", "0"]), pick(["sv", "1"])) else {
        return Err(Error::new(
            ErrorKind::Weights,
            "BRISQUE model file has neither sv_coef/sv nor a (sv_coef, sv) tuple",
        ));
    };
    let count = sv_coef.numel() as i64;
    if sv.size() != [count, FEATURES] {
        return Err(Error::new(
            ErrorKind::Weights,
            format!("BRISQUE support vectors have shape {:?}, expected [{count}, {FEATURES}]", sv.size()),
        ));
    }
    Ok(Arc::new(Brisque::new(sv_coef, sv, key.device)?))
}

impl Brisque {
    /// `sv_coef` (SV) and `sv` (SV×36), the LIVE SVR model.
    pub fn new(sv_coef: &Tensor, sv: &Tensor, device: Device) -> Result<Self> {
        let taps = fspecial_gaussian_f32(7, 7.0 / 6.0);
        let window = Tensor::f_from_slice(&taps)?.f_view([1, 1, 7, 7])?;
        let flat: Vec<f32> = RANGES.iter().flatten().copied().collect();
        let ranges = Tensor::f_from_slice(&flat)?.f_view([FEATURES, 2])?;
        let (lo, hi) = (ranges.f_select(1, 0)?, ranges.f_select(1, 1)?);
        let frozen = |t: Tensor| -> Result<FrozenTensor> { Ok(FrozenTensor::new(t.f_to_device(device)?)) };
        Ok(Brisque {
            window: frozen(window)?,
            tables: ShapeTables::new(Kind::Float, device)?,
            range_width: frozen(hi.f_sub(&lo)?)?,
            range_min: frozen(lo)?,
            sv: frozen(sv.f_to_kind(Kind::Float)?.f_contiguous()?)?,
            sv_coef: frozen(sv_coef.f_reshape([-1])?.f_to_kind(Kind::Float)?)?,
        })
    }

    /// The 18 features of N×1×H×W luma at one scale, N×18 (pyiqa's `natural_scene_statistics`).
    fn scale_features(&self, luma: &Tensor) -> Result<Tensor> {
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
        let scaled =
            features.f_sub(&self.range_min)?.f_mul_scalar(2.0)?.f_div(&self.range_width)?.f_add_scalar(-1.0)?;
        let distance = scaled
            .f_unsqueeze(-1)?
            .f_sub(&self.sv.f_tr()?.f_unsqueeze(0)?)?
            .f_pow_tensor_scalar(2)?
            .f_sum_dim_intlist([1i64].as_slice(), false, None::<Kind>)?;
        let kernel = distance.f_neg()?.f_mul_scalar(GAMMA)?.f_exp()?;
        // One (1×SV)·(SV) product per image, the call pyiqa makes for one image: the float32 sum of ±1024-weighted
        // terms cancels down to the score, so its rounding depends on the BLAS kernel, which differs between a
        // matrix-vector product over a batch and one over a single row (1e-3 apart on the calibration images).
        let scores = (0..kernel.size()[0])
            .map(|i| Ok(kernel.f_narrow(0, i, 1)?.f_matmul(&self.sv_coef)?))
            .collect::<Result<Vec<Tensor>>>()?;
        Ok(Tensor::f_cat(&scores, 0)?.f_sub_scalar(RHO)?)
    }

    fn min_size(&self) -> (i64, i64) {
        (7, 7)
    }
}
