//! NRQM (Ma et al. 2017, "Learning a no-reference quality metric for single-image super-resolution") and PI
//! (the PIRM 2018 perceptual index, (10 − NRQM + NIQE) / 2), as pyiqa 0.1.16's `nrqm` and `pi` compute them.
//!
//! NRQM scores the luma (0..255, float64) with three random forests (randomforest-matlab's layout, read from
//! `NRQM_model.mat`) over three feature sets, combined by a linear model:
//! - block DCT statistics (18): on a 3-level Gaussian pyramid, the 7×7 DCTs of blocks every 3 pixels give
//!   generalised-Gaussian shapes, coefficients of variation and their spread over three orientations, each as
//!   the mean of its tail and of all;
//! - a global Gaussian scale mixture (45): the 12 real sub-bands of a 2-level, 6-orientation complex steerable
//!   pyramid, each divided by its neighbourhood's GSM estimate, their shapes alone and across scales, and SSIM's
//!   contrast-structure term between scales and between orientations;
//! - singular values (75) of the distinct 5×5 blocks at each pyramid level.
//!
//! Everything runs in float64 on the CPU's libtorch as pyiqa's own tensors do (pyiqa's float32 window and resize
//! included), so the forests take the same branches.
use crate::error::{Error, ErrorKind, Result};
use crate::image::colour::Luma;
use crate::metrics::niqe::Niqe;
use crate::model::{MetricSpec, Mode, Model, ModelKey};
use crate::nn::filters::{gaussian_taps, separable_valid_cpu};
use crate::nn::frequency::{steerable_bands, steerable_highpass, steerable_real_parts};
use crate::nn::nss::fspecial_gaussian_f32;
use crate::nn::resize::imresize_to;
use crate::tensor::FrozenTensor;
use crate::weights::{self, files};
use std::collections::HashMap;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

pub const METRICS: &[MetricSpec] = &[
    MetricSpec::new("nrqm", Mode::NoReference, false, (0.0, 10.0), build_nrqm)
        .min_size(MIN_SIDE as u32, MIN_SIDE as u32)
        .weights(&[&files::NRQM_MODEL]),
    MetricSpec::new("pi", Mode::NoReference, true, (0.0, f64::NAN), build_pi)
        .min_size(PI_MIN_SIDE, PI_MIN_SIDE)
        .weights(&[&files::NRQM_MODEL, &files::NIQE_PARAMS]),
];

/// Smallest side pyiqa scores: the finest sub-bands, less their 1-pixel window border and 16-pixel guard band,
/// must hold SSIM's 11×11 window.
const MIN_SIDE: i64 = 2 + 2 * 16 + 11;
/// pi's: NIQE's 96×96 block after its 4-pixel border.
const PI_MIN_SIDE: u32 = 96 + 2 * PI_CROP as u32;
const PI_CROP: i64 = 4;
const BANDS: usize = 6;
const SSIM_SIDE: usize = 11;
/// Singular values per pyramid level: one per pixel of a 5×5 block, when there are at least as many blocks.
const SINGULAR_VALUES: i64 = 25;

fn build_nrqm(key: &ModelKey) -> Result<Arc<dyn Model>> {
    Ok(Arc::new(Nrqm::load(Luma::Yiq, 0, key.device)?))
}

fn build_pi(key: &ModelKey) -> Result<Arc<dyn Model>> {
    let params =
        weights::load(&files::NIQE_PARAMS, &[("mu_pris_param", &[36][..]), ("cov_pris_param", &[36, 36][..])])?;
    let niqe = Niqe::new(&params["mu_pris_param"], &params["cov_pris_param"], key.device)?;
    Ok(Arc::new(Pi { nrqm: Nrqm::load(Luma::YCbCr, PI_CROP, key.device)?, niqe: niqe.with_luma(Luma::YCbCr, PI_CROP) }))
}

/// One randomforest-matlab regression tree: per node, its children (1-based, 0 for none), the threshold, the
/// prediction and the feature it splits on (1-based).
struct Tree {
    left: Vec<i64>,
    right: Vec<i64>,
    threshold: Vec<f64>,
    prediction: Vec<f64>,
    feature: Vec<i64>,
}

impl Tree {
    /// pyiqa's `tree_regression`: from the root, left when the feature is at most the threshold, until a node
    /// without that child (or as many steps as nodes); the prediction of the last node reached. A feature index
    /// of 0 (a leaf's) reads the last feature, as numpy's index −1 does.
    fn predict(&self, features: &[f64]) -> Result<f64> {
        let bad = |what: String| Error::new(ErrorKind::Weights, format!("NRQM_model.mat: {what}"));
        let (mut previous, mut k) = (0usize, 0usize);
        for _ in 0..self.left.len() {
            let column = self.feature[k] - 1;
            let column = if column < 0 { column + features.len() as i64 } else { column };
            let value = usize::try_from(column)
                .ok()
                .and_then(|c| features.get(c))
                .ok_or_else(|| bad(format!("a node splits on feature {} of {}", column + 1, features.len())))?;
            previous = k;
            let next = if *value <= self.threshold[k] { self.left[k] } else { self.right[k] } - 1;
            if next == -1 {
                break;
            }
            k = usize::try_from(next)
                .ok()
                .filter(|&n| n < self.left.len())
                .ok_or_else(|| bad(format!("a node points to node {} of {}", next + 1, self.left.len())))?;
        }
        Ok(self.prediction[previous])
    }
}

/// A forest's prediction is its trees' mean.
struct Forest(Vec<Tree>);

impl Forest {
    /// pyiqa's reading: the cell's `index`-th struct, fields by position (0 lDau, 1 rDau, 4 upper, 5 avnode,
    /// 6 mbest), each nodes × trees.
    fn read(tensors: &HashMap<String, Tensor>, index: usize) -> Result<Forest> {
        let field = |k: usize| -> Result<(Vec<i64>, Vec<f64>)> {
            let key = format!("model.rf.{index}.{k}");
            let t = tensors.get(&key).ok_or_else(|| {
                Error::new(
                    ErrorKind::Weights,
                    format!("NRQM_model.mat: '{key}' (forest {index}, field {k}) is missing"),
                )
            })?;
            let size = t.size();
            if size.len() != 2 || size[0] == 0 || size[1] == 0 {
                return Err(Error::new(
                    ErrorKind::Weights,
                    format!("NRQM_model.mat: '{key}' has shape {size:?}, expected nodes × trees"),
                ));
            }
            let values = Vec::<f64>::try_from(t.f_to_kind(Kind::Double)?.f_contiguous()?.f_view([-1])?)?;
            Ok((size, values))
        };
        let (left, right, threshold, prediction, feature) = (field(0)?, field(1)?, field(4)?, field(5)?, field(6)?);
        let shape = &left.0;
        for (name, f) in [("rDau", &right), ("upper", &threshold), ("avnode", &prediction), ("mbest", &feature)] {
            if &f.0 != shape {
                return Err(Error::new(
                    ErrorKind::Weights,
                    format!("NRQM_model.mat: forest {index}'s {name} is {:?}, lDau {shape:?}", f.0),
                ));
            }
        }
        let (nodes, trees) = (shape[0] as usize, shape[1] as usize);
        let column = |v: &[f64], t: usize| -> Vec<f64> { (0..nodes).map(|n| v[n * trees + t]).collect() };
        let integers = |v: &[f64], t: usize| -> Vec<i64> { column(v, t).into_iter().map(|x| x as i64).collect() };
        Ok(Forest(
            (0..trees)
                .map(|t| Tree {
                    left: integers(&left.1, t),
                    right: integers(&right.1, t),
                    threshold: column(&threshold.1, t),
                    prediction: column(&prediction.1, t),
                    feature: integers(&feature.1, t),
                })
                .collect(),
        ))
    }

    fn predict(&self, features: &[f64]) -> Result<f64> {
        let sum = self.0.iter().map(|t| t.predict(features)).sum::<Result<f64>>()?;
        Ok(sum / self.0.len() as f64)
    }
}

/// The generalised-Gaussian shapes pyiqa's `gamma_gen_gauss` searches: γ = 0.03, 0.031, ... 10 (a float32
/// arange, as pyiqa builds it) and ρ(γ) = Γ(1/γ)Γ(3/γ)/Γ(2/γ)².
struct ShapeTable {
    gamma: Vec<f64>,
    ratio: Vec<f64>,
    /// Whether `ratio` strictly decreases (it does): then the nearest entry is found by bisection.
    decreasing: bool,
}

impl ShapeTable {
    fn new() -> Result<Self> {
        let gamma = Tensor::f_arange_start_step(0.03, 10.0 + 0.001, 0.001, (Kind::Float, Device::Cpu))?
            .f_to_kind(Kind::Double)?;
        let lg = |k: f64| -> Result<Tensor> { Ok(gamma.f_full_like(k)?.f_div(&gamma)?.f_lgamma()?) };
        let ratio = lg(1.0)?.f_add(&lg(3.0)?)?.f_sub(&lg(2.0)?.f_mul_scalar(2.0)?)?.f_exp()?;
        let ratio = Vec::<f64>::try_from(ratio)?;
        let decreasing = ratio.windows(2).all(|w| w[1] < w[0]);
        Ok(ShapeTable { gamma: Vec::<f64>::try_from(gamma)?, ratio, decreasing })
    }

    /// `gamma[argmin |rho − ratio|]`, ties to the first entry, NaN to the first (as torch's argmin).
    fn nearest(&self, rho: f64) -> f64 {
        let distance = |i: usize| (rho - self.ratio[i]).abs();
        let best = if rho.is_nan() {
            0
        } else if self.decreasing {
            // The distance falls while ratio > rho and rises after: the minimum is beside the crossing. Rounding
            // can make neighbours equal; the first of equals wins.
            let j = self.ratio.partition_point(|&r| r > rho);
            let mut best = if j == 0 {
                0
            } else if j == self.ratio.len() || distance(j - 1) <= distance(j) {
                j - 1
            } else {
                j
            };
            while best > 0 && distance(best - 1) == distance(best) {
                best -= 1;
            }
            best
        } else {
            (0..self.ratio.len()).fold(0, |b, i| if distance(i) < distance(b) { i } else { b })
        };
        self.gamma[best]
    }

    /// pyiqa's `gamma_gen_gauss` over the last dimension of `x` (…×L): the shape whose ratio is nearest to
    /// var / (mean |x − mean|)², one per row.
    fn shapes(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.f_mean_dim([-1i64].as_slice(), true, None::<Kind>)?;
        let var = x.f_var_correction([-1i64].as_slice(), 1i64, true)?;
        let mean_abs = x.f_sub(&mean)?.f_abs()?.f_mean_dim([-1i64].as_slice(), true, None::<Kind>)?.f_square()?;
        let rho = var.f_div(&mean_abs.f_add_scalar(1e-7)?)?;
        let shape: Vec<i64> = rho.size()[..rho.dim() - 1].to_vec();
        let rho = Vec::<f64>::try_from(rho.f_to_device(Device::Cpu)?.f_contiguous()?.f_view([-1])?)?;
        let gammas: Vec<f64> = rho.into_iter().map(|r| self.nearest(r)).collect();
        Ok(Tensor::f_from_slice(&gammas)?.f_view(shape.as_slice())?.f_to_device(x.device())?)
    }
}

/// pyiqa's `get_var_gen_gauss`: std(|x|) / (mean(|x|) + eps) over the last dimension.
fn variation(x: &Tensor, eps: f64) -> Result<Tensor> {
    let a = x.f_abs()?;
    let std = a.f_std_correction([-1i64].as_slice(), 1i64, false)?;
    Ok(std.f_div(&a.f_mean_dim([-1i64].as_slice(), false, None::<Kind>)?.f_add_scalar(eps)?)?)
}

/// The mean of `sorted[.., from..to]`.
fn mean_of(sorted: &Tensor, from: i64, to: i64) -> Result<Tensor> {
    Ok(sorted.f_narrow(1, from, to - from)?.f_mean_dim([1i64].as_slice(), false, None::<Kind>)?)
}

/// Positions (row·7 + column) of the three orientation groups of a 7×7 DCT block, in pyiqa's order: rows of
/// (row, first column, last column) for groups 1 and 2, columns of (column, first row) for group 3.
const ORIENTED_ROWS: [&[(i64, i64, i64)]; 2] = [
    &[(0, 1, 7), (1, 2, 7), (2, 4, 7), (3, 5, 7)],
    &[(1, 1, 2), (2, 2, 4), (3, 2, 5), (4, 3, 7), (5, 4, 7), (6, 4, 7)],
];
const ORIENTED_COLUMNS: &[(i64, i64)] = &[(0, 1), (1, 2), (2, 4), (3, 5)];

pub struct Nrqm {
    luma: Luma,
    crop_border: i64,
    linear: [f64; 4],
    forests: [Forest; 3],
    table: ShapeTable,
    /// The 7×7 orthonormal DCT-II matrix.
    dct: FrozenTensor,
    /// 1×1×3×3 Gaussian (σ 0.5) of the pyramid, 1×1×11×11 (σ 1.5) of SSIM: float32 values in float64.
    pyramid_kernel: FrozenTensor,
    ssim_window: FrozenTensor,
    ssim_taps: Vec<f64>,
    oriented: [FrozenTensor; 3],
}

impl Nrqm {
    fn load(luma: Luma, crop_border: i64, device: Device) -> Result<Self> {
        let tensors = weights::load(&files::NRQM_MODEL, &[("model.linear", &[4, 1][..])])?;
        let linear = Vec::<f64>::try_from(tensors["model.linear"].f_to_kind(Kind::Double)?.f_view([-1])?)?;
        let forests = [Forest::read(&tensors, 0)?, Forest::read(&tensors, 1)?, Forest::read(&tensors, 2)?];
        let n = 7usize;
        let dct: Vec<f64> = (0..n * n)
            .map(|i| {
                let (k, x) = ((i / n) as f64, (i % n) as f64);
                let scale = if k == 0.0 { (1.0 / n as f64).sqrt() } else { (2.0 / n as f64).sqrt() };
                scale * (std::f64::consts::PI * (2.0 * x + 1.0) * k / (2.0 * n as f64)).cos()
            })
            .collect();
        let window = |size: usize, sigma: f64| -> Result<FrozenTensor> {
            let taps = fspecial_gaussian_f32(size, sigma);
            let t = Tensor::f_from_slice(&taps)?.f_view([1, 1, size as i64, size as i64])?;
            Ok(FrozenTensor::new(t.f_to_kind(Kind::Double)?.f_to_device(device)?))
        };
        let index = |v: Vec<i64>| -> Result<FrozenTensor> {
            Ok(FrozenTensor::new(Tensor::f_from_slice(&v)?.f_to_device(device)?))
        };
        let rows = |groups: &[(i64, i64, i64)]| -> Vec<i64> {
            groups.iter().flat_map(|&(r, a, b)| (a..b).map(move |c| r * 7 + c)).collect()
        };
        let columns: Vec<i64> = ORIENTED_COLUMNS.iter().flat_map(|&(c, a)| (a..7).map(move |r| r * 7 + c)).collect();
        Ok(Nrqm {
            luma,
            crop_border,
            linear: linear.try_into().expect("shape checked: 4 values"),
            forests,
            table: ShapeTable::new()?,
            dct: FrozenTensor::new(Tensor::f_from_slice(&dct)?.f_view([7, 7])?.f_to_device(device)?),
            pyramid_kernel: window(3, 0.5)?,
            ssim_window: window(SSIM_SIDE, 1.5)?,
            ssim_taps: gaussian_taps(SSIM_SIDE, 1.5),
            oriented: [index(rows(ORIENTED_ROWS[0]))?, index(rows(ORIENTED_ROWS[1]))?, index(columns)?],
        })
    }

    /// NRQM of an N×3×H×W batch in [0, 1].
    fn scores(&self, rgb: &Tensor) -> Result<Tensor> {
        let y = self.luma.y255(rgb)?.f_to_kind(Kind::Double)?;
        let (n, _, h, w) = y.size4()?;
        let c = self.crop_border;
        let y = y.f_narrow(2, c, h - 2 * c)?.f_narrow(3, c, w - 2 * c)?;
        let pyramid = self.gauss_pyramid(&y.f_div_scalar(255.0)?)?;
        let (_, _, ch, cw) = pyramid[2].size4()?;
        if ((ch + 4) / 5) * ((cw + 4) / 5) < SINGULAR_VALUES {
            // pyiqa goes on with fewer singular values, which moves the features the forest reads.
            return Err(Error::shape(format!(
                "nrqm needs at least {SINGULAR_VALUES} blocks of 5×5 pixels at a quarter of the size (84×84 pixels \
                 for a square image); this one is {}×{} after its border",
                w - 2 * c,
                h - 2 * c
            )));
        }
        let dct = Tensor::f_cat(&pyramid.iter().map(|p| self.block_dct(p)).collect::<Result<Vec<_>>>()?, 1)?;
        let gsm = self.global_gsm(&y)?;
        let singular = pyramid
            .iter()
            // The values of the thin decomposition with vectors, as pyiqa's `linalg.svd` (LAPACK's values-only
            // path can differ in the last bits).
            .map(|p| Ok(block_columns(p, 5)?.f_svd(true, true)?.1))
            .collect::<Result<Vec<_>>>()?;
        let svd = Tensor::f_cat(&singular, 1)?;
        let mut scores = Vec::with_capacity(n as usize);
        let sets = [dct, gsm, svd].map(|t| -> Result<Vec<f64>> {
            Ok(Vec::<f64>::try_from(t.f_to_device(Device::Cpu)?.f_contiguous()?.f_view([-1])?)?)
        });
        let [dct, gsm, svd] = sets;
        let sets = [dct?, gsm?, svd?];
        for i in 0..n as usize {
            let mut quality = self.linear[0];
            for ((features, forest), weight) in sets.iter().zip(&self.forests).zip(&self.linear[1..]) {
                let per_image = features.len() / n as usize;
                quality += forest.predict(&features[i * per_image..(i + 1) * per_image])? * weight;
            }
            scores.push(quality);
        }
        Ok(Tensor::f_from_slice(&scores)?.f_to_device(rgb.device())?)
    }

    /// pyiqa's `get_gauss_pyramid`: the image and two levels, each the previous filtered (zero padding) and
    /// sampled at odd rows and columns.
    fn gauss_pyramid(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut levels = vec![x.shallow_clone()];
        for _ in 0..2 {
            let last = levels.last().expect("one level at least");
            let filtered = last.f_constant_pad_nd([1, 1, 1, 1])?.f_conv2d(
                &self.pyramid_kernel,
                None::<&Tensor>,
                [1, 1],
                [0, 0],
                [1, 1],
                1,
            )?;
            levels.push(filtered.f_slice(2, 1, None, 2)?.f_slice(3, 1, None, 2)?);
        }
        Ok(levels)
    }

    /// pyiqa's `block_dct`: six statistics of the 7×7 DCTs of blocks every 3 pixels ('same' zero padding).
    fn block_dct(&self, img: &Tensor) -> Result<Tensor> {
        let (n, _, h, w) = img.size4()?;
        let pad = |side: i64| {
            let total = ((side + 2) / 3 - 1) * 3 + 7 - side;
            (total / 2, total - total / 2)
        };
        let ((top, bottom), (left, right)) = (pad(h), pad(w));
        let padded = img.f_constant_pad_nd([left, right, top, bottom])?;
        let blocks = padded.f_im2col([7, 7], [1, 1], [0, 0], [3, 3])?.f_transpose(1, 2)?; // N×P×49
        let p = blocks.size()[1];
        let blocks = blocks.f_reshape([n, p, 7, 7])?;
        let dct = self.dct.f_matmul(&blocks)?.f_matmul(&self.dct.f_tr()?)?.f_reshape([n, p, 49])?;
        let ac = dct.f_narrow(2, 1, 48)?;

        let gamma = self.table.shapes(&ac)?.f_sort(-1, false)?.0;
        let variation_sorted = variation(&ac, 1e-7)?.f_sort(-1, false)?.0;
        let groups = self
            .oriented
            .iter()
            .map(|index| variation(&dct.f_index_select(2, index)?, 1e-8))
            .collect::<Result<Vec<_>>>()?;
        let orientation =
            Tensor::f_stack(&groups, -1)?.f_var_correction([-1i64].as_slice(), 1i64, false)?.f_sort(-1, false)?.0;
        let head = (0.1 * p as f64).ceil() as i64 + 1;
        let tail = (0.9 * p as f64).floor() as i64;
        let features = [
            mean_of(&gamma, 0, head.min(p))?,
            mean_of(&gamma, 0, p)?,
            mean_of(&variation_sorted, tail, p)?,
            mean_of(&variation_sorted, 0, p)?,
            mean_of(&orientation, tail, p)?,
            mean_of(&orientation, 0, p)?,
        ];
        Ok(Tensor::f_stack(&features, 1)?)
    }

    /// pyiqa's `global_gsm` of the luma (N×1×H×W, 0..255): 45 features.
    fn global_gsm(&self, y: &Tensor) -> Result<Tensor> {
        let images = y.f_squeeze_dim(1)?;
        let n = images.size()[0];
        let mut bands = Vec::with_capacity(2 * BANDS);
        for level in 1..=2 {
            let real = steerable_real_parts(&steerable_bands(&images, level, BANDS)?, BANDS)?;
            bands.extend(real.f_unbind(1)?);
        }
        let subbands = self.normalised(&bands)?;
        let mut features = Vec::with_capacity(45);
        for sb in &subbands {
            features.push(self.table.shapes(&sb.f_reshape([n, -1])?)?);
        }
        for i in 0..BANDS {
            let both = Tensor::f_cat(&[subbands[i].f_reshape([n, -1])?, subbands[i + BANDS].f_reshape([n, -1])?], 1)?;
            features.push(self.table.shapes(&both)?);
        }
        let highpass = steerable_highpass(&images)?.f_unsqueeze(1)?;
        let (_, _, hh, hw) = highpass.size4()?;
        for band in &bands {
            // pyiqa's imresize to the high-pass size (a float32 round trip where the size is the same).
            let resized = imresize_to(&band.f_unsqueeze(1)?, hh, hw, true)?;
            features.push(self.contrast_structure(&resized, &highpass)?);
        }
        for i in 0..BANDS {
            for j in i + 1..BANDS {
                features.push(self.contrast_structure(&subbands[i].f_unsqueeze(1)?, &subbands[j].f_unsqueeze(1)?)?);
            }
        }
        Ok(Tensor::f_stack(&features, 1)?)
    }

    /// pyiqa's `norm_sender_normalized`: each sub-band's coefficients divided by the GSM multiplier estimated
    /// from its 3×3 neighbourhood, its parent (the same orientation a scale down, resized) and the other
    /// orientations at the same place; less a guard band of 16 pixels (8 at the coarser scale) and centred.
    fn normalised(&self, bands: &[Tensor]) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(bands.len());
        for scale in 0..2 {
            for orientation in 0..BANDS {
                let index = scale * BANDS + orientation;
                let band = &bands[index];
                let (n, h, w) = band.size3()?;
                let inner = |t: &Tensor| -> Result<Tensor> {
                    Ok(t.f_narrow(1, 1, h - 2)?.f_narrow(2, 1, w - 2)?.f_reshape([n, -1, 1])?)
                };
                let mut columns =
                    vec![band.f_unsqueeze(1)?.f_im2col([3, 3], [1, 1], [0, 0], [1, 1])?.f_transpose(1, 2)?];
                let mut count = 9.0;
                if index + BANDS < bands.len() {
                    let parent = imresize_to(&bands[index + BANDS].f_unsqueeze(1)?, h, w, true)?.f_squeeze_dim(1)?;
                    columns.push(inner(&parent)?);
                    count += 1.0;
                }
                for other in (0..BANDS).filter(|&o| o != orientation) {
                    columns.push(inner(&bands[scale * BANDS + other])?);
                }
                let tmp = Tensor::f_cat(&columns, 2)?; // N×L×D
                let samples = tmp.size()[1] as f64;
                let cov = tmp.f_transpose(1, 2)?.f_matmul(&tmp)?.f_div_scalar(samples)?;
                // Negative eigenvalues set to zero, the rest rescaled to keep the trace.
                let (values, vectors) = cov.f_linalg_eigh("L")?;
                let positive = values.f_mul(&values.f_gt(0.0)?.f_to_kind(Kind::Double)?)?;
                let positive_sum = positive.f_sum_dim_intlist([1i64].as_slice(), true, None::<Kind>)?;
                let total = values.f_sum_dim_intlist([1i64].as_slice(), true, None::<Kind>)?;
                let values = positive
                    .f_mul(&total)?
                    .f_div(&positive_sum.f_add(&positive_sum.f_eq(0.0)?.f_to_kind(Kind::Double)?)?)?;
                let cov = vectors.f_matmul(&values.f_diag_embed(0, -2, -1)?)?.f_matmul(&vectors.f_transpose(1, 2)?)?;

                let centre = band.f_narrow(1, 1, h - 2)?.f_narrow(2, 1, w - 2)?.f_reshape([n, -1])?;
                let centre = centre.f_sub(&centre.f_mean_dim([1i64].as_slice(), true, None::<Kind>)?)?;
                let solved = Tensor::f_linalg_solve(&cov.f_transpose(1, 2)?, &tmp.f_transpose(1, 2)?, true)?;
                let weighted = solved.f_transpose(1, 2)?.f_mul(&tmp)?.f_div_scalar(count)?;
                let z = weighted.f_sum_dim_intlist([2i64].as_slice(), false, None::<Kind>)?.f_sqrt()?;
                let mask = z.f_ne(0.0)?.f_to_kind(Kind::Double)?;
                let g =
                    centre.f_mul(&mask)?.f_div(&z.f_mul(&mask)?.f_add_scalar(1e-12)?)?.f_reshape([n, h - 2, w - 2])?;
                let guard = 16 >> scale;
                let g = g.f_narrow(1, guard, h - 2 - 2 * guard)?.f_narrow(2, guard, w - 2 - 2 * guard)?;
                out.push(g.f_sub(&g.f_mean_dim([1i64, 2].as_slice(), true, None::<Kind>)?)?);
            }
        }
        Ok(out)
    }

    /// The mean of SSIM's contrast-structure map (11×11 Gaussian window, valid, data range 255, clamped at 0)
    /// of two N×1×H×W images, as pyiqa's `ssim(..., get_cs=True)`: N values.
    fn contrast_structure(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        // x, y, x², y², xy filtered in one pass. libtorch convolves float64 on the CPU through an im2col buffer of
        // 121 values per pixel (30 s of a 512×384 image's 27 maps): separable loops there, whose taps' product is
        // pyiqa's window before its float32 rounding (6e-8 relative per tap).
        let planes =
            Tensor::f_cat(&[x.shallow_clone(), y.shallow_clone(), x.f_square()?, y.f_square()?, x.f_mul(y)?], 1)?;
        let filtered = if planes.device() == Device::Cpu && planes.kind() == Kind::Double {
            separable_valid_cpu(&planes, &self.ssim_taps)?
        } else {
            let window = self.ssim_window.f_expand([5, 1, SSIM_SIDE as i64, SSIM_SIDE as i64], false)?;
            planes.f_conv2d(&window, None::<&Tensor>, [1, 1], [0, 0], [1, 1], 5)?
        };
        let [mu1, mu2, xx, yy, xy] = [0, 1, 2, 3, 4].map(|i| filtered.narrow(1, i, 1));
        let c2 = (0.03f64 * 255.0).powi(2);
        let sigma1 = xx.f_sub(&mu1.f_square()?)?;
        let sigma2 = yy.f_sub(&mu2.f_square()?)?;
        let sigma12 = xy.f_sub(&mu1.f_mul(&mu2)?)?;
        let cs =
            sigma12.f_mul_scalar(2.0)?.f_add_scalar(c2)?.f_div(&sigma1.f_add(&sigma2)?.f_add_scalar(c2)?)?.f_relu()?;
        Ok(cs.f_mean_dim([1i64, 2, 3].as_slice(), false, None::<Kind>)?)
    }
}

/// pyiqa's `im2col(x, k, 'distinct')`: the k×k blocks of N×1×H×W (zero padded right and bottom to whole
/// blocks) as N×blocks×k².
fn block_columns(x: &Tensor, k: i64) -> Result<Tensor> {
    let (_, _, h, w) = x.size4()?;
    let whole = |side: i64| (side + k - 1) / k * k;
    let padded = x.f_constant_pad_nd([0, whole(w) - w, 0, whole(h) - h])?;
    Ok(padded.f_im2col([k, k], [1, 1], [0, 0], [k, k])?.f_transpose(1, 2)?)
}

impl Model for Nrqm {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        self.scores(dist)
    }
}

/// PI = (10 − NRQM + NIQE) / 2, both on the YCbCr luma less a 4-pixel border.
pub struct Pi {
    nrqm: Nrqm,
    niqe: Niqe,
}

impl Model for Pi {
    fn forward(&self, dist: &Tensor, _reference: Option<&Tensor>) -> Result<Tensor> {
        // pyiqa's NRQM returns the luma's dtype, float32.
        let nrqm = self.nrqm.scores(dist)?.f_to_kind(Kind::Float)?.f_to_kind(Kind::Double)?;
        let niqe = self.niqe.forward(dist, None)?.f_to_kind(Kind::Double)?;
        Ok(nrqm.f_neg()?.f_add_scalar(10.0)?.f_add(&niqe)?.f_mul_scalar(0.5)?)
    }
}
