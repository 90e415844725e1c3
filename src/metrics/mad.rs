//! MAD, most apparent distortion (Larson & Chandler 2010), as pyiqa 0.1.16 computes it by default (its port
//! of IQA_pytorch's MAD.py on the RGB channels scaled to 0..255). Lower is better.
//!
//! - High-quality index (detection): luminance through k·L^(2.2/3), CSF-filtered (float32 FFTs), log contrasts
//!   of 16×16 patches (stride 4) compared and weighted by the local MSE, pooled by an L2 norm.
//! - Low-quality index (appearance): a log-Gabor bank (5 scales, 4 orientations) on complex128 spectra, the
//!   standard deviation, skewness and kurtosis of every 16×16 patch in float64, pooled by an L2 norm.
//! - MAD = LO^(1−σ)·HI^σ with σ = 1/(1 + β₁·HI^β₂), averaged over the three channels.
//!
//! Two pyiqa quirks are kept because its scores have them: per-patch statistics reshaped from (patch, channel)
//! order into N×C×h×w (mixing channels and positions; gray input is unaffected), and a CSF built transposed
//! and then reshaped to H×W (a different filter from the paper's on non-square images). Pairs of a batch are
//! scored one at a time, because the float32 patch reductions round differently in a bigger batch.
//! Minimum size 16×16: one patch.
use crate::error::{Error, Result};
use crate::model::{require_ref, MetricSpec, Mode, Model, Prepared};
use crate::nn::frequency::ifftshift2;
use crate::runtime::for_each_piece;
use crate::tensor::{cpu_slice, FreshTensor, FrozenTensor};
use parking_lot::Mutex;
use std::f64::consts::PI;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

pub const METRICS: &[MetricSpec] =
    &[MetricSpec::new("mad", Mode::FullReference, true, (0.0, f64::NAN), |_| Ok(Arc::new(Mad::default())))
        .min_size(PATCH as u32, PATCH as u32)];

/// Bytes of complex128 maps (all channels of an image) above which the appearance path runs channel by channel.
const PER_CHANNEL_ABOVE: i64 = 256 << 20;
/// Bytes of centred patch copies made at once by [`patch_mean_std`].
const PATCHES_AT_ONCE: i64 = 1 << 30;
/// Patch side and stride of every local statistic.
const PATCH: i64 = 16;
const STEP: i64 = 4;
/// Gabor bank: scales (wavelength 3·3^s), orientations, radial bandwidth, angular spacing over spread.
const SCALES: usize = 5;
const ORIENTATIONS: usize = 4;
const MIN_WAVELENGTH: f64 = 3.0;
const MULT: f64 = 3.0;
const SIGMA_ON_F: f64 = 0.55;
const D_THETA_ON_SIGMA: f64 = 1.5;
/// Weights of the statistic differences, indexed by orientation as pyiqa indexes them.
const ORIENTATION_WEIGHTS: [f64; ORIENTATIONS] = [0.5 / 13.25, 0.75 / 13.25, 1.0 / 13.25, 5.0 / 13.25];

/// Filters depending only on the image size, on one device: the CSF (float32, zero frequency at the
/// corner) and the 20 Gabor filters (float64, orientation-major).
struct Filters {
    size: (i64, i64),
    device: Device,
    csf: FrozenTensor,
    gabor: FrozenTensor,
}

/// The metric, keeping the filters of the last image size (consecutive images of one size reuse them).
#[derive(Default)]
pub struct Mad {
    last: Mutex<Option<Arc<Filters>>>,
}

/// pyiqa's `make_csf(rows, cols, 32)`, transposed to cols×rows and read row-major as rows×cols (what its
/// `reshape` does), row-major f64.
fn csf_values(rows: i64, cols: i64) -> Vec<f64> {
    const NFREQ: f64 = 32.0;
    const W: f64 = 0.7;
    let (r, c) = (rows as usize, cols as usize);
    let mut grid = vec![0f64; r * c];
    for i in 0..r {
        let y = -(rows as f64 - 1.0) / 2.0 + i as f64;
        for j in 0..c {
            let x = -(cols as f64 - 1.0) / 2.0 + j as f64;
            let (px, py) = (x / cols as f64 * 2.0 * NFREQ, y / cols as f64 * 2.0 * NFREQ);
            let s = (1.0 - W) / 2.0 * (4.0 * py.atan2(px)).cos() + (1.0 + W) / 2.0;
            let f = px.hypot(py) / s;
            grid[i * c + j] =
                if f < 7.8909 { 0.9809 } else { 2.6 * (0.0192 + 0.114 * f) * (-(0.114 * f).powf(1.1)).exp() };
        }
    }
    // Transposed (cols×rows) in row-major order: element (j, i) = grid[i][j].
    (0..c).flat_map(|j| (0..r).map(move |i| (i, j))).map(|(i, j)| grid[i * c + j]).collect()
}

/// pyiqa's MAD log-Gabor bank for rows×cols, each filter `fftshift`ed, orientation-major, row-major f64.
fn gabor_values(rows: i64, cols: i64) -> Vec<f64> {
    let (r, c) = (rows as usize, cols as usize);
    let (half_r, half_c) = (rows as f64 / 2.0, cols as f64 / 2.0);
    let inv_half_r = 1.0 / half_r;
    let mut log_radius = vec![0f64; r * c];
    let (mut sin, mut cos) = (vec![0f64; r * c], vec![0f64; r * c]);
    for i in 0..r {
        let y = (i as f64 - half_r) * inv_half_r;
        for j in 0..c {
            let x = (j as f64 - half_c) / half_c;
            let theta = (-y).atan2(x);
            sin[i * c + j] = theta.sin();
            cos[i * c + j] = theta.cos();
            log_radius[i * c + j] = (x * x + y * y).sqrt();
        }
    }
    // pyiqa replaces the radius one sample off the centre (not the zero at the centre) by 1, then takes logs.
    let off = ((half_r + 1.0).round_ties_even() as usize, (half_c + 1.0).round_ties_even() as usize);
    log_radius[off.0 * c + off.1] = 1.0;
    log_radius.iter_mut().for_each(|v| *v = (*v + 1e-12).ln());
    let centre = half_r.round_ties_even() as usize * c + half_c.round_ties_even() as usize;
    let denom = -(2.0 * SIGMA_ON_F.ln().powi(2));
    let radial: Vec<Vec<f64>> = (0..SCALES)
        .map(|s| {
            let rfo = 1.0 / (MIN_WAVELENGTH * MULT.powi(s as i32)) / 0.5;
            let mut g: Vec<f64> = log_radius.iter().map(|lr| ((lr - rfo.ln()).powi(2) / denom).exp()).collect();
            g[centre] = 0.0;
            g
        })
        .collect();
    let theta_sigma = PI / ORIENTATIONS as f64 / D_THETA_ON_SIGMA;
    let mut out = Vec::with_capacity(ORIENTATIONS * SCALES * r * c);
    let (shift_r, shift_c) = (r / 2, c / 2);
    for o in 0..ORIENTATIONS {
        let angle = o as f64 * PI / ORIENTATIONS as f64;
        let spread: Vec<f64> = (0..r * c)
            .map(|k| {
                let ds = sin[k] * angle.cos() - cos[k] * angle.sin();
                let dc = cos[k] * angle.cos() + sin[k] * angle.sin();
                let dtheta = ds.atan2(dc).abs();
                (-(dtheta * dtheta) / (2.0 * theta_sigma * theta_sigma)).exp()
            })
            .collect();
        for g in &radial {
            // numpy's fftshift: output (i, j) takes input ((i − r/2) mod r, (j − c/2) mod c).
            for i in 0..r {
                let si = (i + r - shift_r) % r;
                for j in 0..c {
                    let k = si * c + (j + c - shift_c) % c;
                    out.push(g[k] * spread[k]);
                }
            }
        }
    }
    out
}

impl Mad {
    fn filters(&self, rows: i64, cols: i64, device: Device) -> Result<Arc<Filters>> {
        let mut last = self.last.lock();
        if let Some(f) = last.as_ref().filter(|f| f.size == (rows, cols) && f.device == device) {
            return Ok(f.clone());
        }
        // pyiqa multiplies the spectrum, shifted to the centre, by the float32 CSF and shifts back: the same
        // as multiplying by the inverse-shifted CSF.
        let csf = Tensor::f_from_slice(&csf_values(rows, cols))?.f_view([rows, cols])?.f_to_kind(Kind::Float)?;
        let csf = ifftshift2(&csf)?.f_to_device(device)?;
        let n = (ORIENTATIONS * SCALES) as i64;
        let gabor =
            Tensor::f_from_slice(&gabor_values(rows, cols))?.f_view([n, 1, 1, rows, cols])?.f_to_device(device)?;
        let f = Arc::new(Filters {
            size: (rows, cols),
            device,
            csf: FrozenTensor::new(csf),
            gabor: FrozenTensor::new(gabor),
        });
        *last = Some(f.clone());
        Ok(f)
    }
}

/// Every 16×16 patch (stride 4) of N×C×H×W as an N×C×h×w×16×16 view (no copy).
fn patches(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_unfold(2, PATCH, STEP)?.f_unfold(3, PATCH, STEP)?)
}

/// pyiqa's reshape of per-patch statistics stored in (patch, channel) order into N×C×h×w: the statistics
/// computed here in N×C×h×w order are laid out as N×h×w×C and that memory read as N×C×h×w.
fn as_pyiqa_layout(stat: &Tensor) -> Result<Tensor> {
    let s = stat.size();
    Ok(stat.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_view([s[0], s[1], s[2], s[3]])?)
}

const PATCH_DIMS: [i64; 2] = [-2, -1];

/// Mean and standard deviation (population, √(var + 1e-12)) of every patch, in pyiqa's layout. pyiqa's
/// operations, on bands of patch rows when the centred copy of all patches (16× the image) would exceed 1 GiB
/// (9.2 GB for an 8000×6000 pair): each patch's reductions are its own, so the bands give the same values.
fn patch_mean_std(x: &Tensor) -> Result<(Tensor, Tensor)> {
    patch_mean_std_with(x, PATCHES_AT_ONCE)
}

/// [`patch_mean_std`] with at most about `budget` bytes of centred patches at once.
fn patch_mean_std_with(x: &Tensor, budget: i64) -> Result<(Tensor, Tensor)> {
    let (n, c, h, w) = x.size4()?;
    let (rows, cols) = ((h - PATCH) / STEP + 1, (w - PATCH) / STEP + 1);
    let bytes = n * c * rows * cols * PATCH * PATCH * x.kind().elt_size_in_bytes() as i64;
    let bands = (bytes / budget + 1).min(rows);
    let band_rows = (rows + bands - 1) / bands;
    let mut means = Vec::new();
    let mut stds = Vec::new();
    for first in (0..rows).step_by(band_rows as usize) {
        let count = band_rows.min(rows - first);
        let p = patches(&x.f_narrow(2, first * STEP, (count - 1) * STEP + PATCH)?)?;
        let mean = p.f_mean_dim(&PATCH_DIMS[..], true, None::<Kind>)?;
        let var = p.f_sub(&mean)?.f_square()?.f_mean_dim(&PATCH_DIMS[..], false, None::<Kind>)?;
        stds.push(var.f_add_scalar(1e-12)?.f_sqrt()?);
        means.push(mean.f_squeeze_dim(-1)?.f_squeeze_dim(-1)?);
    }
    let (mean, std) = (Tensor::f_cat(&means, 2)?, Tensor::f_cat(&stds, 2)?);
    Ok((as_pyiqa_layout(&mean)?, as_pyiqa_layout(&std)?))
}

/// Standard deviation, skewness and excess kurtosis of every patch, in pyiqa's layout, from the central moments
/// of [`patch_moments`] (N×C×h×w×3). The third and fourth central moments are divided by std³ and std⁴ once per
/// patch instead of standardising every sample first (pyiqa's order): the same values in float64 up to rounding.
fn patch_stats(moments: &Tensor) -> Result<[Tensor; 3]> {
    let [var, m3, m4] = [0, 1, 2].map(|k| moments.f_select(-1, k));
    let (var, m3, m4) = (var?, m3?, m4?);
    let std = var.f_add_scalar(1e-12)?.f_sqrt()?;
    let std2 = std.f_square()?;
    let skew = m3.f_div(&std2.f_mul(&std)?)?;
    let kurt = m4.f_div(&std2.f_square()?)?.f_sub_scalar(3.0)?;
    Ok([as_pyiqa_layout(&std)?, as_pyiqa_layout(&skew)?, as_pyiqa_layout(&kurt)?])
}

/// The second, third and fourth central moments of every 16×16 patch (stride 4) of N×C×H×W: N×C×h×w×3.
fn patch_moments(x: &Tensor) -> Result<Tensor> {
    if x.device() == Device::Cpu && x.kind() == Kind::Double {
        patch_moments_cpu(x)
    } else {
        patch_moments_tensor(x)
    }
}

/// The second, third and fourth central moments of every patch (N×C×h×w×3), as libtorch operations on the
/// patch view.
fn patch_moments_tensor(x: &Tensor) -> Result<Tensor> {
    let p = patches(x)?;
    let dims = &PATCH_DIMS[..];
    let mean = p.f_mean_dim(dims, true, None::<Kind>)?;
    let diffs = p.f_sub(&mean)?;
    let d2 = diffs.f_square()?;
    let var = d2.f_mean_dim(dims, false, None::<Kind>)?;
    let m3 = d2.f_mul(&diffs)?.f_mean_dim(dims, false, None::<Kind>)?;
    let m4 = d2.f_square()?.f_mean_dim(dims, false, None::<Kind>)?;
    Ok(Tensor::f_stack(&[var, m3, m4], -1)?)
}

/// [`patch_moments_tensor`] for float64 on the CPU, two passes over each patch's 256 samples (mean, then the
/// three moments together) instead of six patch-sized temporaries, which were three fifths of MAD's time.
/// Sums run in another order than libtorch's, so values differ by float64 rounding (tested within 1e-12).
fn patch_moments_cpu(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.size4()?;
    let (oh, ow) = ((h - PATCH) / STEP + 1, (w - PATCH) / STEP + 1);
    let x = x.f_contiguous()?;
    let input = cpu_slice::<f64>(&x)?;
    let mut out = FreshTensor::<f64>::empty(&[n, c, oh, ow, 3])?;
    let output = out.as_mut_slice();
    let (h, w, oh, ow) = (h as usize, w as usize, oh as usize, ow as usize);
    const SIDE: usize = PATCH as usize;
    let step = STEP as usize;
    let count = (SIDE * SIDE) as f64;
    for_each_piece(output, ow * 3, |row, out_row| {
        let (plane, i) = (row / oh, row % oh);
        let rows = &input[plane * h * w + i * step * w..][..SIDE * w];
        for (j, moments) in out_row.chunks_exact_mut(3).enumerate() {
            let patch = || rows.chunks_exact(w).map(|r| &r[j * step..][..SIDE]);
            // Per-column partial sums (vectorised), added up at the end.
            let mut sums = [0.0; SIDE];
            for r in patch() {
                sums.iter_mut().zip(r).for_each(|(s, &v)| *s += v);
            }
            let mean = sums.iter().sum::<f64>() / count;
            let (mut m2, mut m3, mut m4) = ([0.0; SIDE], [0.0; SIDE], [0.0; SIDE]);
            for r in patch() {
                for (k, &v) in r.iter().enumerate() {
                    let d = v - mean;
                    let d2 = d * d;
                    m2[k] += d2;
                    m3[k] += d2 * d;
                    m4[k] += d2 * d2;
                }
            }
            let total = |m: &[f64; SIDE]| m.iter().sum::<f64>() / count;
            moments.copy_from_slice(&[total(&m2), total(&m3), total(&m4)]);
        }
    });
    Ok(out.into_tensor())
}

/// L2 norm of each N×C map over its positions, divided by √(positions).
fn pooled(map: &Tensor) -> Result<Tensor> {
    let s = map.size();
    let norm = map.f_reshape([s[0], s[1], -1])?.f_norm_scalaropt_dim(2, &[2i64][..], false)?;
    Ok(norm.f_div_scalar(((s[2] * s[3]) as f64).sqrt())?)
}

/// The reference's side of the detection index: its CSF-filtered luminance, and the mean and log contrast of
/// every patch of it.
struct Detection {
    filtered: FrozenTensor,
    mean: FrozenTensor,
    contrast: FrozenTensor,
}

const K: f64 = 0.02874;
const EPS: f64 = 1e-12;

/// k·x^(2.2/3) through the CSF (float32 FFTs), real part: 1×C×H×W.
fn csf_filtered(x: &Tensor, csf: &Tensor) -> Result<Tensor> {
    let dims = [-2i64, -1];
    Ok(x.f_pow_tensor_scalar(2.2 / 3.0)?
        .f_mul_scalar(K)?
        .f_fft_fft2(None::<&[i64]>, dims, "backward")?
        .f_mul(csf)?
        .f_fft_ifft2(None::<&[i64]>, dims, "backward")?
        .f_real()?)
}

impl Detection {
    /// Of a reference (1×C×H×W float32 in 0..255).
    fn of(reference: &Tensor, csf: &Tensor) -> Result<Self> {
        let filtered = csf_filtered(&reference.f_add_scalar(1e-12)?, csf)?;
        let (mean, std) = patch_mean_std(&filtered)?;
        let (h1, w1) = (std.size()[2], std.size()[3]);
        // Min over the 2×2 neighbourhood ending at each position (pyiqa: −maxpool(−x) padded by 1, cropped),
        // halved.
        let std = std
            .f_neg()?
            .f_max_pool2d([2, 2], [1, 1], [1, 1], [1, 1], false)?
            .f_neg()?
            .f_div_scalar(2.0)?
            .f_narrow(2, 0, h1)?
            .f_narrow(3, 0, w1)?;
        let contrast = std.f_add_scalar(EPS)?.f_div(&mean.f_add_scalar(EPS)?)?.f_abs()?.f_log()?;
        Ok(Detection {
            filtered: FrozenTensor::new(filtered),
            mean: FrozenTensor::new(mean),
            contrast: FrozenTensor::new(contrast),
        })
    }
}

/// The high-quality (detection) index of `dist` against `reference` (1×C×H×W float32 in 0..255 each) and its
/// [`Detection`], 1×C float32.
fn hi_index(reference: &Tensor, detection: &Detection, dist: &Tensor, csf: &Tensor) -> Result<Tensor> {
    const G: f64 = 0.5;
    const THRESHOLD: f64 = -5.0;
    let d = csf_filtered(&dist.f_abs()?.f_add_scalar(1e-12)?, csf)?;
    let (_, std_e) = patch_mean_std(&d.f_sub(&detection.filtered)?)?;
    let ci_ref = &*detection.contrast;
    let ci_dst = std_e.f_add_scalar(EPS)?.f_div(&detection.mean.f_add_scalar(EPS)?)?.f_abs()?.f_log()?;
    let ci_dst = ci_dst.f_masked_fill(&detection.mean.f_lt(G)?, -1000.0)?;
    // pyiqa's threshold line, slope 1: (Ci_ref − T)·1 + T, rounded as it rounds it.
    let line = ci_ref.f_sub_scalar(THRESHOLD)?.f_add_scalar(THRESHOLD)?;
    let above = ci_ref.f_gt(THRESHOLD)?.f_logical_and(&ci_dst.f_gt_tensor(&line)?)?;
    let below = ci_ref.f_le(THRESHOLD)?.f_logical_and(&ci_dst.f_gt(THRESHOLD)?)?;
    let zero = ci_ref.f_zeros_like()?;
    let mask =
        ci_dst.f_sub(&line)?.f_where_self(&above, &ci_dst.f_sub_scalar(THRESHOLD)?.f_where_self(&below, &zero)?)?;
    // Local MSE of the 0..255 pixels over 16×16 boxes, stride 4 (pyiqa's depthwise convolution).
    let channels = reference.size()[1];
    let window =
        Tensor::f_full([channels, 1, PATCH, PATCH], 1.0 / (PATCH * PATCH) as f64, (Kind::Float, reference.device()))?;
    let lmse = reference.f_sub(dist)?.f_square()?.f_conv2d(
        &window,
        None::<&Tensor>,
        [STEP, STEP],
        [0, 0],
        [1, 1],
        channels,
    )?;
    Ok(pooled(&mask.f_mul(&lmse)?)?.f_mul_scalar(200.0)?)
}

/// The log-Gabor filters of the bank, orientation-major.
const FILTERS: usize = ORIENTATIONS * SCALES;

/// One image's side of the appearance index, filter by filter: its spectrum (float32, transformed once) and
/// how many channels to filter at a time.
struct Appearance {
    spectrum: Tensor,
    group: i64,
}

impl Appearance {
    /// Of an image (1×C×H×W float32 in 0..255). float32 spectrum; pyiqa's product with float64 filters
    /// promotes it to complex128. Above 256 MB of such complex128 maps, the promotion, the product and its
    /// inverse FFT run one channel at a time (for all three at once each was a 2.3 GB buffer for an 8000×6000
    /// image); below, all channels in one batch, which is faster. The promotion is exact and each channel's
    /// transforms are their own, so the values agree to float64 rounding (tested).
    fn of(x: &Tensor) -> Result<Self> {
        let group = if x.numel() as i64 * 16 > PER_CHANNEL_ABOVE { 1 } else { x.size()[1] };
        Self::grouped(x, group)
    }

    fn grouped(x: &Tensor, group: i64) -> Result<Self> {
        Ok(Appearance { spectrum: x.f_fft_fft2(None::<&[i64]>, [-2i64, -1], "backward")?, group })
    }

    /// The standard deviation, skewness and kurtosis of every patch of the image's response to filter
    /// `index` of `gabor`, 1×C×h×w each in pyiqa's layout.
    fn stats(&self, gabor: &Tensor, index: usize) -> Result<[Tensor; 3]> {
        let filter = gabor.f_get(index as i64)?;
        let channels = self.spectrum.size()[1];
        let moments = (0..channels)
            .step_by(self.group as usize)
            .map(|c| {
                let response = self
                    .spectrum
                    .f_narrow(1, c, self.group.min(channels - c))?
                    .f_to_kind(Kind::ComplexDouble)?
                    .f_mul(&filter)?
                    .f_fft_ifft2(None::<&[i64]>, [-2i64, -1], "backward")?;
                let magnitude = response
                    .f_real()?
                    .f_square()?
                    .f_add(&response.f_imag()?.f_square()?)?
                    .f_add_scalar(1e-12)?
                    .f_sqrt()?;
                patch_moments(&magnitude)
            })
            .collect::<Result<Vec<_>>>()?;
        patch_stats(&Tensor::f_cat(&moments, 1)?)
    }
}

/// The low-quality (appearance) index of `dist` against the reference's patch statistics, `reference(index)`
/// for each filter as [`Appearance::stats`] gives them, 1×C float64.
fn lo_index(reference: impl Fn(usize) -> Result<[Tensor; 3]>, dist: &Appearance, gabor: &Tensor) -> Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for index in 0..FILTERS {
        let ([std_r, skew_r, kurt_r], [std_d, skew_d, kurt_d]) = (reference(index)?, dist.stats(gabor, index)?);
        let diff = |r: &Tensor, d: &Tensor| -> Result<Tensor> { Ok(r.f_sub(d)?.f_abs()?) };
        let term = diff(&std_r, &std_d)?
            .f_add(&diff(&skew_r, &skew_d)?.f_mul_scalar(2.0)?)?
            .f_add(&diff(&kurt_r, &kurt_d)?)?
            .f_mul_scalar(ORIENTATION_WEIGHTS[index / SCALES])?;
        total = Some(match total {
            None => term,
            Some(t) => t.f_add(&term)?,
        });
    }
    pooled(&total.expect("the bank has filters"))
}

/// What a prepared reference keeps of MAD's work: the reference at 0..255 (1×C×H×W float32), its
/// [`Detection`], and its patch statistics under each of the 20 log-Gabor filters.
struct MadReference {
    pixels: FrozenTensor,
    detection: Detection,
    appearance: Vec<[FrozenTensor; 3]>,
}

/// Bytes of kept appearance statistics (60 float64 maps of a quarter of the image's side each way) above
/// which a reference is not prepared and pairs are scored as given: 3840×2160 keeps 0.74 GB, 8000×6000 would
/// keep 4.3 GB.
const KEEP_AT_MOST: i64 = 1 << 30;

impl Mad {
    /// MAD of one pair against the reference's [`Detection`] and appearance statistics.
    fn score_pair(
        &self,
        (reference, detection): (&Tensor, &Detection),
        appearance: impl Fn(usize) -> Result<[Tensor; 3]>,
        dist: &Tensor,
        filters: &Filters,
    ) -> Result<Tensor> {
        let b1 = (-2.55f64 / 3.35).exp();
        let b2 = 1.0 / (10f64.ln() * 3.35);
        let hi = hi_index(reference, detection, dist, &filters.csf)?;
        let lo = lo_index(appearance, &Appearance::of(dist)?, &filters.gabor)?;
        let sig = hi.f_pow_tensor_scalar(b2)?.f_mul_scalar(b1)?.f_add_scalar(1.0)?.f_reciprocal()?;
        let mad = lo.f_pow(&sig.f_neg()?.f_add_scalar(1.0)?)?.f_mul(&hi.f_pow(&sig)?)?;
        Ok(mad.f_mean_dim(&[1i64][..], false, None::<Kind>)?)
    }
}

/// Image `i` of a batch in 0..255 as MAD takes it.
fn scaled(batch: &Tensor, i: i64) -> Result<Tensor> {
    Ok(batch.f_narrow(0, i, 1)?.f_to_kind(Kind::Float)?.f_mul_scalar(255.0)?)
}

impl Model for Mad {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let reference = require_ref(reference)?;
        let size = dist.size();
        let (n, h, w) = (size[0], size[2], size[3]);
        if h < PATCH || w < PATCH {
            return Err(Error::shape(format!("image is {w}x{h}; mad needs at least {PATCH}x{PATCH} pixels")));
        }
        let filters = self.filters(h, w, dist.device())?;
        let mut scores = Vec::with_capacity(n as usize);
        for i in 0..n {
            let (r, d) = (scaled(reference, i)?, scaled(dist, i)?);
            let detection = Detection::of(&r, &filters.csf)?;
            let appearance = Appearance::of(&r)?;
            let stats = |index| appearance.stats(&filters.gabor, index);
            scores.push(self.score_pair((&r, &detection), stats, &d, &filters)?);
        }
        Ok(Tensor::f_cat(&scores, 0)?)
    }

    fn prepares_references(&self) -> bool {
        true
    }

    /// The reference's detection maps and appearance statistics, unless they would pass [`KEEP_AT_MOST`].
    fn prepare(&self, reference: &Tensor) -> Result<Option<Prepared>> {
        let (_, c, h, w) = reference.size4()?;
        let kept = 3 * FILTERS as i64 * c * ((h - PATCH) / STEP + 1) * ((w - PATCH) / STEP + 1) * 8;
        if h < PATCH || w < PATCH || kept > KEEP_AT_MOST {
            return Ok(None);
        }
        let filters = self.filters(h, w, reference.device())?;
        let r = scaled(reference, 0)?;
        let appearance = Appearance::of(&r)?;
        let stats = (0..FILTERS)
            .map(|index| Ok(appearance.stats(&filters.gabor, index)?.map(FrozenTensor::new)))
            .collect::<Result<_>>()?;
        let detection = Detection::of(&r, &filters.csf)?;
        Ok(Some(Prepared(Box::new(MadReference { pixels: FrozenTensor::new(r), detection, appearance: stats }))))
    }

    fn forward_prepared(&self, dist: &Tensor, prepared: &Prepared) -> Result<Tensor> {
        let reference = prepared.get::<MadReference>()?;
        let size = dist.size();
        let filters = self.filters(size[2], size[3], dist.device())?;
        let stats = |index: usize| Ok(reference.appearance[index].each_ref().map(|t| t.shallow_clone()));
        let scores = (0..size[0])
            .map(|i| self.score_pair((&reference.pixels, &reference.detection), stats, &scaled(dist, i)?, &filters))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::f_cat(&scores, 0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Patch means and deviations in bands of patch rows equal the one-piece computation bit for bit.
    #[test]
    fn patch_mean_std_in_bands_equals_one_piece() {
        tch::manual_seed(4);
        let x = Tensor::rand([1, 3, 83, 61], (Kind::Float, Device::Cpu)) * 255.0;
        let p = patches(&x).unwrap();
        let mean = p.mean_dim(&PATCH_DIMS[..], true, None::<Kind>);
        let std =
            (p - &mean).square().mean_dim(&PATCH_DIMS[..], false, None::<Kind>).f_add_scalar(1e-12).unwrap().sqrt();
        let expected =
            (as_pyiqa_layout(&mean.squeeze_dim(-1).squeeze_dim(-1)).unwrap(), as_pyiqa_layout(&std).unwrap());
        // 17 patch rows of 12, 3 channels: 627 KB at once, so a 64 KB budget makes bands of 2 patch rows.
        let bands = patch_mean_std_with(&x, 64 << 10).unwrap();
        assert!(bands.0.equal(&expected.0) && bands.1.equal(&expected.1));
        assert!(patch_mean_std(&x).unwrap().1.equal(&expected.1));
    }

    /// Channel by channel (large images) gives the appearance index of all channels at once.
    #[test]
    fn lo_index_per_channel_equals_batched() {
        tch::manual_seed(9);
        let opts = (Kind::Float, Device::Cpu);
        let (reference, dist) =
            (Tensor::rand([1, 3, 48, 64], opts) * 255.0, Tensor::rand([1, 3, 48, 64], opts) * 255.0);
        let filters = Mad::default().filters(48, 64, Device::Cpu).unwrap();
        let lo = |group| {
            let (reference, dist) =
                (Appearance::grouped(&reference, group).unwrap(), Appearance::grouped(&dist, group).unwrap());
            lo_index(|index| reference.stats(&filters.gabor, index), &dist, &filters.gabor).unwrap()
        };
        let (batched, per_channel) = (lo(3), lo(1));
        assert_eq!(batched.size(), [1, 3]);
        let difference = (&batched - &per_channel).abs().max().double_value(&[]);
        assert!(difference <= 1e-12 * batched.abs().max().double_value(&[]), "difference {difference}");
    }

    /// The CPU moments equal libtorch's patch-view operations to float64 rounding: random magnitudes around
    /// a large mean (the cancellation-prone case), a flat map (all moments 0), sides that leave remainders.
    #[test]
    fn patch_moments_cpu_equal_libtorch() {
        tch::manual_seed(7);
        let opts = (Kind::Double, Device::Cpu);
        let noisy = Tensor::rand([2, 3, 37, 45], opts) * 3.0 + 1000.0;
        let flat = Tensor::full([1, 1, 16, 20], 5.0, opts);
        for x in [&noisy, &flat] {
            let expected = patch_moments_tensor(x).unwrap();
            let actual = patch_moments_cpu(x).unwrap();
            assert_eq!(actual.size(), expected.size());
            let scale = expected.abs().max().double_value(&[]).max(1e-300);
            let difference = (&actual - &expected).abs().max().double_value(&[]);
            assert!(difference <= 1e-12 * scale, "difference {difference}, scale {scale}");
        }
        assert_eq!(patch_moments_cpu(&flat).unwrap().abs().max().double_value(&[]), 0.0);
    }
}
