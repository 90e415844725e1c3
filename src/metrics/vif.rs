//! VIF, visual information fidelity in the steerable-pyramid domain (Sheikh & Bovik 2006), as pyiqa 0.1.16
//! computes it: the Y of YIQ rounded to 0..255, a steerable pyramid of four levels and six orientations
//! (matlabPyrTools' sp5 filters, reflected borders); for the eight subbands pyiqa's indices select
//! (orientations 0 and 3 of every level), the Gaussian-scale-mixture model of the reference (3×3
//! neighbourhoods) and the gain/noise of the distortion channel; the score is Σ log2(1 + g²·s·λ/(σv² + σn²))
//! over Σ log2(1 + s·λ/σn²), σn² = 0.4. Higher is better.
//!
//! Only the subbands used are computed. Wherever rounding moves the score, the arithmetic is pyiqa's float32
//! with its shapes, one instance at a time: the box sums and means of the channel estimate (vv is a difference
//! of nearly equal sums), the neighbourhood covariance (`reference_model`) and the sums of logarithms. pyiqa's
//! score depends on the CPU through that rounding (libtorch's kernels differ between AVX2 and AVX-512); iqa
//! gives pyiqa's score on the CPU it runs on, and a batch equals single scores. Where pyiqa's float32 covariance
//! is not positive semi-definite (smooth content) and its score NaN, iqa scores that pair with the reference
//! model in float64 instead of returning NaN. Where pyiqa differs from the official vifvec (its float32
//! rounding), iqa follows pyiqa. Minimum size 33×33: pyiqa's fourth level needs it.
use crate::error::Result;
use crate::image::colour::rgb_to_y;
use crate::image::colour::with_fma;
use crate::model::{require_ref, MetricSpec, Mode, Model};
use crate::nn::filters::{runs_on_onednn, ONEDNN_MIN_ELEMENTS};
use crate::nn::matlab::{corr_dn, kernel};
use crate::runtime::{bits_differing, for_each_piece, zeroed, Probed};
use crate::tensor::{cpu_slice, FreshTensor, FrozenTensor};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

pub const METRICS: &[MetricSpec] =
    &[MetricSpec::new("vif", Mode::FullReference, false, (0.0, 1.0), |k| Ok(Arc::new(Vif::new(k.device)?)))
        .min_size(MIN_SIDE as u32, MIN_SIDE as u32)];

/// Pyramid levels, and the neighbourhood side of the scale-mixture model.
const LEVELS: usize = 4;
const M: i64 = 3;
const SIGMA_NSQ: f64 = 0.4;
const TOL: f64 = 1e-12;
/// Smallest side pyiqa accepts (its fourth downsampling pads by 4 and needs at least 5 samples).
const MIN_SIDE: i64 = 33;

/// sp5 filters (matlabPyrTools `sp5Filters`) by their symmetric quarters. lo0filt: 5×5, symmetric in both axes.
const LO0_QUARTER: [[f64; 3]; 3] = [
    [0.00341614, -0.01551246, -0.03848215],
    [-0.01551246, 0.05586982, 0.15925570],
    [-0.03848215, 0.15925570, 0.40304148],
];
/// lofilt / 2: 9×9, symmetric in both axes.
const LO_QUARTER: [[f64; 5]; 5] = [
    [0.00085404, -0.00244917, -0.00387812, -0.00944432, -0.00962054],
    [-0.00244917, -0.00523281, -0.00661117, 0.00410600, 0.01002988],
    [-0.00387812, -0.00661117, 0.01396746, 0.03277038, 0.03981393],
    [-0.00944432, 0.00410600, 0.03277038, 0.06426333, 0.08169618],
    [-0.00962054, 0.01002988, 0.03981393, 0.08169618, 0.10096540],
];
/// Band filter of orientation 0 (7×7): symmetric up-down, antisymmetric left-right (zero middle column);
/// orientation 3 is minus its transpose.
const BAND0_QUARTER: [[f64; 3]; 4] = [
    [0.00277643, -0.00986904, -0.01021852],
    [0.00496194, -0.00893064, -0.03075356],
    [0.01026699, 0.01189859, -0.08226445],
    [0.01455399, 0.02755155, -0.11732297],
];

/// Mirror index: distance from the nearer edge of a side of `n` samples.
fn fold(i: usize, n: usize) -> usize {
    i.min(n - 1 - i)
}

fn symmetric_filter<const Q: usize>(quarter: &[[f64; Q]], scale: f64) -> Vec<f64> {
    let n = 2 * Q - 1;
    (0..n * n).map(|p| scale * quarter[fold(p / n, n)][fold(p % n, n)]).collect()
}

fn band_filters() -> Vec<f64> {
    let b0 = |i: usize, j: usize| -> f64 {
        let r = fold(i, 7);
        match j {
            0..=2 => BAND0_QUARTER[r][j],
            3 => 0.0,
            _ => -BAND0_QUARTER[r][6 - j],
        }
    };
    let first = (0..49).map(|p| b0(p / 7, p % 7));
    let fourth = (0..49).map(|p| -b0(p % 7, p / 7));
    first.chain(fourth).collect()
}

pub struct Vif {
    lo0: FrozenTensor,
    lo: FrozenTensor,
    /// 2×1×7×7: orientations 0 and 3.
    bands: FrozenTensor,
    /// Per level, the box filters of the channel estimate (1×1×w×w): ones, and 1/w² as pyiqa rounds it to float32.
    box_sums: Vec<FrozenTensor>,
    box_means: Vec<FrozenTensor>,
}

/// Box side of the distortion-channel estimate at `level` (0 = finest): 2^(4−level) + 1.
fn box_side(level: usize) -> i64 {
    (1 << (LEVELS - level)) + 1
}

impl Vif {
    pub fn new(device: Device) -> Result<Self> {
        let f = Kind::Float;
        let lo0 = kernel(&symmetric_filter(&LO0_QUARTER, 1.0), f)?.f_to_device(device)?;
        let lo = kernel(&symmetric_filter(&LO_QUARTER, 2.0), f)?.f_to_device(device)?;
        let bands = Tensor::f_from_slice(&band_filters())?.f_to_kind(f)?.f_view([2, 1, 7, 7])?.f_to_device(device)?;
        let box_filter = |level: usize, value: f64| -> Result<FrozenTensor> {
            let side = box_side(level) as usize;
            Ok(FrozenTensor::new(kernel(&vec![value; side * side], f)?.f_to_device(device)?))
        };
        let box_sums = (0..LEVELS).map(|level| box_filter(level, 1.0)).collect::<Result<_>>()?;
        let box_means = (0..LEVELS)
            .map(|level| box_filter(level, 1.0 / (box_side(level) * box_side(level)) as f64))
            .collect::<Result<_>>()?;
        Ok(Vif {
            lo0: FrozenTensor::new(lo0),
            lo: FrozenTensor::new(lo),
            bands: FrozenTensor::new(bands),
            box_sums,
            box_means,
        })
    }

    /// Orientations 0 and 3 of every level of the pyramid of `y` (B×1×H×W): per level (fine to coarse)
    /// a B×2×h×w tensor.
    fn pyramid(&self, y: &Tensor) -> Result<Vec<Tensor>> {
        let mut lo = corr_dn(y, &self.lo0, 1, 1, (0, 0))?;
        let mut out = Vec::with_capacity(LEVELS);
        for level in 0..LEVELS {
            out.push(corr_dn(&lo, &self.bands, 1, 1, (0, 0))?);
            if level + 1 < LEVELS {
                lo = corr_dn(&lo, &self.lo, 1, 2, (0, 0))?;
            }
        }
        Ok(out)
    }

    /// Gain g and noise variance vv of the distortion channel, per box of `w`×`w` reference (`r`) and
    /// distorted (`d`) samples (B×1×H×W, sides multiples of 3), at every third sample from (1, 1).
    ///
    /// The box means and sums are pyiqa's correlations, one instance at a time with its shapes: full 1×1×H×W
    /// convolutions with the box filters, then every third sample. vv is a difference of nearly equal sums, so
    /// their rounding (the convolution's, which depends on the CPU) shows in the score: computing them otherwise
    /// (average pooling) moved scores by up to 1.7e-6 from pyiqa's. Where libtorch runs those convolutions
    /// through oneDNN and a probe finds the same bits, [`box_moments`] computes only the samples kept, in
    /// oneDNN's order; elsewhere (CUDA, small 3×3 boxes) libtorch's full convolutions.
    fn channel(&self, r: &Tensor, d: &Tensor, level: usize) -> Result<(Tensor, Tensor)> {
        let w2 = (box_side(level) * box_side(level)) as f64;
        let (b, h, w) = (r.size()[0], r.size()[2], r.size()[3]);
        let side = box_side(level) as usize;
        let padded = (h as usize + side - 1) * (w as usize + side - 1);
        let fused = r.device() == Device::Cpu
            && runs_on_onednn(padded, side)
            && self.box_moments_match_libtorch(side, w as usize);
        let mut parts: [Vec<Tensor>; 5] = Default::default();
        for i in 0..b {
            let (x, y) = (r.f_narrow(0, i, 1)?.f_contiguous()?, d.f_narrow(0, i, 1)?.f_contiguous()?);
            let moments = if fused {
                box_moments(cpu_slice(&x)?, cpu_slice(&y)?, w as usize, side, self.mean_tap(level))?
            } else {
                self.libtorch_moments(&x, &y, level)?
            };
            for (part, moment) in parts.iter_mut().zip(moments) {
                part.push(moment);
            }
        }
        let [mean_x, mean_y, sum_xy, sum_xx, sum_yy] = parts.map(|p| Tensor::f_cat(&p, 0));
        let (mean_x, mean_y) = (mean_x?, mean_y?);
        let cov = sum_xy?.f_sub(&mean_x.f_mul_scalar(w2)?.f_mul(&mean_y)?)?;
        let ss_x = sum_xx?.f_sub(&mean_x.f_square()?.f_mul_scalar(w2)?)?.f_relu()?;
        let ss_y = sum_yy?.f_sub(&mean_y.f_square()?.f_mul_scalar(w2)?)?.f_relu()?;
        let mut g = cov.f_div(&ss_x.f_add_scalar(TOL)?)?;
        let mut vv = ss_y.f_sub(&g.f_mul(&cov)?)?.f_div_scalar(w2)?;
        let zero = Tensor::f_zeros_like(&g)?;
        // Flat reference box: no gain, all of the distorted variance is noise.
        let flat_x = ss_x.f_lt(TOL)?;
        g = g.f_where_self(&flat_x.f_logical_not()?, &zero)?;
        vv = ss_y.f_where_self(&flat_x, &vv)?;
        // Flat distorted box: no gain, no noise.
        let flat_y = ss_y.f_lt(TOL)?;
        g = zero.f_where_self(&flat_y, &g)?;
        vv = zero.f_where_self(&flat_y, &vv)?;
        // Negative gain: clipped to 0, the distorted variance is noise.
        vv = ss_y.f_where_self(&g.f_lt(0.0)?, &vv)?;
        g = g.f_relu()?;
        vv = vv.f_clamp_min(TOL)?;
        Ok((g, vv))
    }

    /// Scale-mixture model of the reference subband `r` (B×1×H×W, sides multiples of 3): the multiplier s of
    /// every 3×3 block (B×1×H/3×W/3) and the eigenvalues of the neighbourhood covariance (B×9).
    ///
    /// The float32 covariance of millions of neighbourhoods is ill-conditioned enough that its rounding moves
    /// pyiqa's scores by up to 2e-3 relative from the exact (float64) value, so it is computed one instance at
    /// a time with pyiqa's shapes and operations (1×1×P×9 neighbourhoods, the same reductions and matmuls of
    /// the same libtorch), which reproduces pyiqa's rounding and keeps a batch equal to single scores.
    fn reference_model(r: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, h, w) = (r.size()[0], r.size()[2], r.size()[3]);
        let mut multipliers = Vec::with_capacity(b as usize);
        let mut eigenvalues = Vec::with_capacity(b as usize);
        for i in 0..b {
            let (temp, blocks) = neighbourhoods(&r.f_narrow(0, i, 1)?)?;
            let p = temp.size()[2];
            let mean = temp.f_mean_dim(&[2i64][..], false, None::<Kind>)?.f_unsqueeze(2)?;
            let centred = temp.f_sub(&mean)?;
            let cu = centred.f_permute([0, 1, 3, 2])?.f_matmul(&centred)?.f_div_scalar(p as f64)?;
            let ss = cu.f_pinverse(1e-15)?.f_matmul(&blocks)?;
            let ss = ss.f_mul(&blocks)?.f_sum_dim_intlist(&[2i64][..], false, None::<Kind>)?;
            multipliers.push(ss.f_div_scalar((M * M) as f64)?.f_reshape([1, 1, h / M, w / M])?);
            eigenvalues.push(cu.f_linalg_eigh("U")?.0.f_reshape([1, 9])?);
        }
        Ok((Tensor::f_cat(&multipliers, 0)?, Tensor::f_cat(&eigenvalues, 0)?))
    }

    /// [`Vif::reference_model`] of one instance (1×1×H×W) in float64, for the pairs whose float32 model is not
    /// sound. On the CPU the covariance and the multipliers come from iqa's own loops over the float32 subband
    /// (no 9×P float64 copy, and the 9×P by P×9 product without a BLAS); the pseudo-inverse and eigenvalues of the
    /// 9×9 covariance from libtorch. Exact arithmetic is the aim here, not pyiqa's rounding (pyiqa gives NaN).
    fn reference_model_f64(r: &Tensor) -> Result<(Tensor, Tensor)> {
        if r.device() != Device::Cpu || r.kind() != Kind::Float || r.size()[0] != 1 {
            return Self::reference_model(&r.f_to_kind(Kind::Double)?);
        }
        let r = r.f_contiguous()?;
        let (h, w) = (r.size()[2] as usize, r.size()[3] as usize);
        let plane = cpu_slice::<f32>(&r)?;
        let cu = neighbourhood_covariance(plane, h, w);
        let cu = Tensor::f_from_slice(&cu)?.f_view([9, 9])?;
        let inverse: Vec<f64> = Vec::<f64>::try_from(cu.f_pinverse(1e-15)?.f_contiguous()?.f_view([-1])?)?;
        let m = M as usize;
        let (bh, bw) = (h / m, w / m);
        let offsets = neighbour_offsets(w);
        let mut multipliers = FreshTensor::<f64>::empty(&[1, 1, bh as i64, bw as i64])?;
        for_each_piece(multipliers.as_mut_slice(), bw, |by, row| {
            for (bx, out) in row.iter_mut().enumerate() {
                let b: [f64; 9] = std::array::from_fn(|s| plane[m * by * w + m * bx + offsets[s]] as f64);
                let quadratic =
                    (0..9).fold(0.0, |sum, i| sum + b[i] * (0..9).fold(0.0, |row, j| row + inverse[i * 9 + j] * b[j]));
                *out = quadratic / (M * M) as f64;
            }
        });
        let eigenvalues = cu.f_linalg_eigh("U")?.0.f_reshape([1, 9])?;
        Ok((multipliers.into_tensor(), eigenvalues))
    }
}

/// The covariance (9×9, row-major, divided by their count) of the 3×3 neighbourhoods at every position of an
/// H×W plane, in float64: the mean first, then the centred products, in bands of rows whose partial sums are
/// added in band order, so the value does not depend on the thread count.
fn neighbourhood_covariance(plane: &[f32], h: usize, w: usize) -> Vec<f64> {
    let m = M as usize;
    let (rows, cols) = (h - m + 1, w - m + 1);
    let count = (rows * cols) as f64;
    let offsets = neighbour_offsets(w);
    let at = |y: usize, x: usize, s: usize| plane[y * w + x + offsets[s]] as f64;
    let mut sums = vec![[0f64; 9]; rows.div_ceil(BAND_ROWS)];
    for_each_piece(&mut sums, 1, |band, out| {
        for y in band * BAND_ROWS..((band + 1) * BAND_ROWS).min(rows) {
            for x in 0..cols {
                for (s, sum) in out[0].iter_mut().enumerate() {
                    *sum += at(y, x, s);
                }
            }
        }
    });
    let mean: [f64; 9] = std::array::from_fn(|s| sums.iter().fold(0.0, |t, band| t + band[s]) / count);
    let mut products = vec![[0f64; 45]; rows.div_ceil(BAND_ROWS)];
    for_each_piece(&mut products, 1, |band, out| {
        for y in band * BAND_ROWS..((band + 1) * BAND_ROWS).min(rows) {
            for x in 0..cols {
                let v: [f64; 9] = std::array::from_fn(|s| at(y, x, s) - mean[s]);
                let mut k = 0;
                for i in 0..9 {
                    for j in i..9 {
                        out[0][k] += v[i] * v[j];
                        k += 1;
                    }
                }
            }
        }
    });
    let mut cu = vec![0f64; 81];
    let mut k = 0;
    for i in 0..9 {
        for j in i..9 {
            let value = products.iter().fold(0.0, |t, band| t + band[k]) / count;
            (cu[i * 9 + j], cu[j * 9 + i]) = (value, value);
            k += 1;
        }
    }
    cu
}

impl Vif {
    /// pyiqa's information sums (numerator, denominator) of one subband instance, with its operations and shapes:
    /// per eigenvalue a 1×1×h×w map of log2(1 + …) summed over h×w in the dtype of the model (float32: its
    /// rounding, which depends on the CPU's vector width and the thread count, moves pyiqa's score by up to 2e-6),
    /// accumulated over the nine eigenvalues. `g`, `vv`, `ss` are 1×1×h×w (cropped), `eig` holds 9 eigenvalues.
    fn subband_sums(g: &Tensor, vv: &Tensor, ss: &Tensor, eig: &Tensor) -> Result<(Tensor, Tensor)> {
        let information = |t: Tensor| t.f_add_scalar(1.0)?.f_log2()?.f_sum_dim_intlist(&[2i64, 3][..], false, None);
        let mut num = Tensor::f_zeros([1, 1], (ss.kind(), ss.device()))?;
        let mut den = num.f_zeros_like()?;
        for j in 0..M * M {
            let cc = eig.f_narrow(0, j, 1)?.f_view([1, 1, 1, 1])?;
            let gain = g.f_mul(g)?.f_mul(ss)?.f_mul(&cc)?.f_div(&vv.f_add_scalar(SIGMA_NSQ)?)?;
            num = num.f_add(&information(gain)?)?;
            den = den.f_add(&information(ss.f_mul(&cc)?.f_div_scalar(SIGMA_NSQ)?)?)?;
        }
        Ok((num.f_view([1])?, den.f_view([1])?))
    }

    /// The score of one image from its subbands' sums, in pyiqa's order (coarse to fine, orientation 3 before 0):
    /// Σ num / (Σ den + 1e-12), the sums over the eight subbands as pyiqa's stacked sum.
    fn score_of(sums: &[(Tensor, Tensor)]) -> Result<Tensor> {
        let total = |part: &dyn Fn(&(Tensor, Tensor)) -> Tensor| -> Result<Tensor> {
            let parts: Vec<Tensor> = sums.iter().map(part).collect();
            Ok(Tensor::f_stack(&parts, 1)?.f_sum_dim_intlist(&[1i64][..], false, None::<Kind>)?)
        };
        let (num, den) = (total(&|s| s.0.shallow_clone())?, total(&|s| s.1.shallow_clone())?);
        Ok(num.f_div(&den.f_add_scalar(1e-12)?)?)
    }

    /// Scores of the pairs (`y` reference, `x` distorted: N×1×H×W float32 luma).
    fn scores(&self, y: &Tensor, x: &Tensor) -> Result<Tensor> {
        let n = x.size()[0];
        // Reference and distorted images through one pyramid pass.
        let levels = self.pyramid(&Tensor::f_cat(&[y, x], 0)?)?;
        // Per level (fine to coarse): the reference subbands, the cropped channel estimates and the crop.
        let mut kept = Vec::with_capacity(LEVELS);
        // Per instance (image i, orientation 0 and 3 at 2i and 2i + 1), its subbands' sums, coarse to fine.
        let mut sums: Vec<Vec<(Tensor, Tensor)>> = (0..2 * n).map(|_| Vec::with_capacity(LEVELS)).collect();
        for (level, bands) in levels.iter().enumerate() {
            let (h, w) = (bands.size()[2] / M * M, bands.size()[3] / M * M);
            let bands = bands.f_narrow(2, 0, h)?.f_narrow(3, 0, w)?;
            let r = bands.f_narrow(0, 0, n)?.f_reshape([2 * n, 1, h, w])?;
            let d = bands.f_narrow(0, n, n)?.f_reshape([2 * n, 1, h, w])?;
            let (g, vv) = self.channel(&r, &d, level)?;
            // Border blocks whose boxes reach past the subband are left out.
            let offset = ((box_side(level) - 1) / 2 + M - 1) / M;
            let (g, vv) = (crop(&g, offset)?, crop(&vv, offset)?);
            let (ss, eig) = Self::reference_model(&r)?;
            let ss = crop(&ss, offset)?;
            for (i, instance) in sums.iter_mut().enumerate() {
                let one = |t: &Tensor| t.f_narrow(0, i as i64, 1);
                instance.insert(0, Self::subband_sums(&one(&g)?, &one(&vv)?, &one(&ss)?, &eig.f_select(0, i as i64)?)?);
            }
            kept.push((r, g, vv, offset));
        }
        // pyiqa's subband order: per level, orientation 3 then 0.
        let of_image = |sums: &[Vec<(Tensor, Tensor)>], i: usize| -> Vec<(Tensor, Tensor)> {
            let (o0, o3) = (&sums[2 * i], &sums[2 * i + 1]);
            o3.iter()
                .zip(o0)
                .flat_map(|(a, b)| {
                    [(a.0.shallow_clone(), a.1.shallow_clone()), (b.0.shallow_clone(), b.1.shallow_clone())]
                })
                .collect()
        };
        let scores = (0..n as usize).map(|i| Self::score_of(&of_image(&sums, i))).collect::<Result<Vec<_>>>()?;
        let scores = Tensor::f_cat(&scores, 0)?.f_to_kind(Kind::Double)?;
        // Where pyiqa's float32 covariance of a subband is not positive semi-definite (its rounding exceeds the
        // smallest eigenvalues: smooth content, e.g. upscaled 1080p), logarithms of negative numbers make
        // pyiqa's score NaN. iqa scores those pairs again with the reference model in float64, where the
        // covariance is sound: the score pyiqa's formula gives in exact arithmetic (tests: pyiqa run in float64).
        let failed = scores.f_isnan()?;
        if i64::try_from(failed.f_sum(Kind::Int64)?)? > 0 {
            for i in Vec::<i64>::try_from(failed.f_nonzero()?.f_flatten(0, -1)?.f_to_device(Device::Cpu)?)? {
                let mut sums: Vec<Vec<(Tensor, Tensor)>> = vec![Vec::with_capacity(LEVELS), Vec::with_capacity(LEVELS)];
                for (r, g, vv, offset) in &kept {
                    for (o, instance) in sums.iter_mut().enumerate() {
                        let one = |t: &Tensor| t.f_narrow(0, 2 * i + o as i64, 1);
                        let (ss, eig) = Self::reference_model_f64(&one(r)?)?;
                        let ss = crop(&ss, *offset)?;
                        instance.insert(0, Self::subband_sums(&one(g)?, &one(vv)?, &ss, &eig.f_select(0, 0)?)?);
                    }
                }
                let score = f64::try_from(Self::score_of(&of_image(&sums, 0))?.f_view([])?)?;
                // In place: the narrowed view shares the scores' storage.
                let _ = scores.f_narrow(0, i, 1)?.f_fill_(score)?;
            }
        }
        Ok(scores)
    }
}

impl Vif {
    /// The float32 tap of the box means at `level`: 1/w² as pyiqa rounds it.
    fn mean_tap(&self, level: usize) -> f32 {
        1.0 / (box_side(level) * box_side(level)) as f32
    }

    /// Whether [`box_moments`] equals libtorch's five correlations bit for bit for `side`×`side` boxes on
    /// subbands `width` wide: only where libtorch runs them through oneDNN, whose order of sums it follows,
    /// and found on probe planes at the first subband of each side and width (that order depends on the CPU).
    fn box_moments_match_libtorch(&self, side: usize, width: usize) -> bool {
        static FOUND: Probed<(usize, usize), bool> = Probed::new();
        FOUND.get_or_probe((side, width), || self.probe_box_moments(side, width).unwrap_or(false))
    }

    fn probe_box_moments(&self, side: usize, width: usize) -> Result<bool> {
        let padded_width = width + side - 1;
        // Enough rows for oneDNN whatever the side (libtorch's rule decides elsewhere whether this probe is asked).
        let rows = ONEDNN_MIN_ELEMENTS.div_ceil(padded_width).max(side + 6).next_multiple_of(3);
        if width < side || !width.is_multiple_of(3) {
            return Ok(false);
        }
        let level = (0..LEVELS).find(|&l| box_side(l) as usize == side).expect("a box side of the pyramid");
        let planes = [1u32, 2].map(|seed| (0..rows * width).map(|i| probe_subband(i, seed)).collect::<Vec<_>>());
        let shape = [1, 1, rows as i64, width as i64];
        let (x, y) =
            (Tensor::f_from_slice(&planes[0])?.f_view(shape)?, Tensor::f_from_slice(&planes[1])?.f_view(shape)?);
        let fused = box_moments(&planes[0], &planes[1], width, side, self.mean_tap(level))?;
        Ok(values_differing(&self.libtorch_moments(&x, &y, level)?, &fused)? == 0)
    }

    /// libtorch's five correlations of [`Vif::channel`] for one instance (`x`, `y`: 1×1×H×W): full convolutions
    /// with the box filters of `level`, then every third sample from (1, 1); pyiqa's operations and shapes.
    fn libtorch_moments(&self, x: &Tensor, y: &Tensor, level: usize) -> Result<[Tensor; 5]> {
        let (h, w) = (x.size()[2], x.size()[3]);
        let correlate = |x: &Tensor, filter: &FrozenTensor| -> Result<Tensor> {
            Ok(corr_dn(x, filter, 1, 1, (0, 0))?.f_slice(2, 1, h - 1, M)?.f_slice(3, 1, w - 1, M)?.f_contiguous()?)
        };
        let (sum, mean) = (&self.box_sums[level], &self.box_means[level]);
        Ok([
            correlate(x, mean)?,
            correlate(y, mean)?,
            correlate(&x.f_mul(y)?, sum)?,
            correlate(&x.f_square()?, sum)?,
            correlate(&y.f_square()?, sum)?,
        ])
    }
}

/// How many values of the float32 moments `a` and `b` (contiguous) differ in their bits.
fn values_differing(a: &[Tensor; 5], b: &[Tensor; 5]) -> Result<usize> {
    a.iter().zip(b).try_fold(0, |count, (a, b)| Ok(count + bits_differing::<f32>(cpu_slice(a)?, cpu_slice(b)?)))
}

/// The 3×3 neighbourhoods of subband `r` (1×1×H×W, sides multiples of 3) as pyiqa stacks them: all
/// overlapping ones, 1×1×P×9 (P = (H − 2)(W − 2), neighbours column offset major), and the non-overlapping
/// blocks, 1×1×9×Q (Q = HW/9). Copied by iqa's own loop from float32 CPU subbands (the same tensors as
/// libtorch's stacks).
fn neighbourhoods(r: &Tensor) -> Result<(Tensor, Tensor)> {
    let (h, w) = (r.size()[2], r.size()[3]);
    if r.device() == Device::Cpu && r.kind() == Kind::Float {
        let r = r.f_contiguous()?;
        let (plane, (h, w)) = (cpu_slice::<f32>(&r)?, (h as usize, w as usize));
        let m = M as usize;
        let cols = w - m + 1;
        let offsets = neighbour_offsets(w);
        let mut overlapping = FreshTensor::<f32>::empty(&[1, 1, ((h - m + 1) * cols) as i64, (m * m) as i64])?;
        for_each_piece(overlapping.as_mut_slice(), BAND_ROWS * 9 * cols, |i, band| {
            for (k, row) in band.chunks_exact_mut(9 * cols).enumerate() {
                let y = i * BAND_ROWS + k;
                for (x, neighbours) in row.chunks_exact_mut(9).enumerate() {
                    for (v, offset) in neighbours.iter_mut().zip(offsets) {
                        *v = plane[y * w + x + offset];
                    }
                }
            }
        });
        let q = (h / m) * (w / m);
        let mut blocks = FreshTensor::<f32>::empty(&[1, 1, (m * m) as i64, q as i64])?;
        for (offset, out) in offsets.iter().zip(blocks.as_mut_slice().chunks_exact_mut(q)) {
            for (p, v) in out.iter_mut().enumerate() {
                *v = plane[m * (p / (w / m)) * w + m * (p % (w / m)) + offset];
            }
        }
        return Ok((overlapping.into_tensor(), blocks.into_tensor()));
    }
    let mut shifts = Vec::with_capacity(9);
    let mut blocks = Vec::with_capacity(9);
    for j in 0..M {
        for k in 0..M {
            let win = r.f_narrow(2, k, h - M + 1)?.f_narrow(3, j, w - M + 1)?;
            shifts.push(win.f_reshape([1, 1, -1])?);
            blocks.push(r.f_slice(2, k, h, M)?.f_slice(3, j, w, M)?.f_reshape([1, 1, -1])?);
        }
    }
    Ok((Tensor::f_stack(&shifts, 3)?, Tensor::f_stack(&blocks, 2)?))
}

/// A probe subband's value at `i`: signed values of a few units with fine fractions, spread by a hash.
fn probe_subband(i: usize, seed: u32) -> f32 {
    let c = (i as u32 ^ seed.wrapping_mul(0x9e37_79b9)).wrapping_mul(2_654_435_761) >> 8;
    (c % 100_003) as f32 / 4096.0 - 12.0
}

/// Output rows per task of [`box_moments`] and [`neighbourhoods`].
const BAND_ROWS: usize = 4;

/// The offsets in an H×W plane of width `w` of the nine samples of a 3×3 neighbourhood from its top left, in
/// pyiqa's order: sample s has column offset s / 3 and row offset s % 3 (its stack of shifted views).
fn neighbour_offsets(w: usize) -> [usize; 9] {
    let m = M as usize;
    std::array::from_fn(|s| (s % m) * w + s / m)
}

/// The five correlations of [`Vif::channel`] for one instance (`x` reference, `y` distorted: planes `width`
/// wide, sides multiples of 3) with `side`×`side` boxes on their reflected padding, at every third sample
/// from (1, 1) only: the means of x and y (tap `mean_tap`) and the sums of xy, x² and y² (tap 1), each
/// 1×1×H/3×W/3. Summed as oneDNN sums a correlation: fused multiply-adds over the taps in row-major order.
fn box_moments(x: &[f32], y: &[f32], width: usize, side: usize, mean_tap: f32) -> Result<[Tensor; 5]> {
    let (pad, rows, cols) = ((side - 1) / 2, x.len() / width / M as usize, width / M as usize);
    let (px, py) = (phased_padding(x, width, pad)?, phased_padding(y, width, pad)?);
    let mut out = FreshTensor::<f32>::empty(&[rows as i64, 5, cols as i64])?;
    for_each_piece(out.as_mut_slice(), BAND_ROWS * 5 * cols, |i, band| {
        for (k, row) in band.chunks_exact_mut(5 * cols).enumerate() {
            let top = 3 * (i * BAND_ROWS + k) + 1;
            box_moments_row(&px, &py, top, side, mean_tap, row);
        }
    });
    let out = out.into_tensor();
    let moment =
        |k: i64| -> Result<Tensor> { Ok(out.f_select(1, k)?.f_contiguous()?.f_view([1, 1, rows as i64, -1])?) };
    Ok([moment(0)?, moment(1)?, moment(2)?, moment(3)?, moment(4)?])
}

/// A plane with `pad` samples of reflection on every side, each padded row split by column phase: padded
/// column 3k + φ at `row_len·φ + k` of its row (rows `3·row_len` long), so that every third column is
/// contiguous.
struct PhasedPlane {
    values: Vec<f32>,
    row_len: usize,
}

fn phased_padding(plane: &[f32], width: usize, pad: usize) -> Result<PhasedPlane> {
    let height = plane.len() / width;
    let padded_width = width + 2 * pad;
    let row_len = padded_width.div_ceil(3);
    let mut values = zeroed((height + 2 * pad) * 3 * row_len, "VIF box padding")?;
    // Reflection without repeating the edge, as libtorch's "reflect" padding.
    let reflect = |i: usize, n: usize| -> usize {
        let i = i as isize - pad as isize;
        (if i < 0 {
            -i
        } else if i >= n as isize {
            2 * (n as isize - 1) - i
        } else {
            i
        }) as usize
    };
    for (r, out) in values.chunks_exact_mut(3 * row_len).enumerate() {
        let source = &plane[reflect(r, height) * width..][..width];
        for c in 0..padded_width {
            out[(c % 3) * row_len + c / 3] = source[reflect(c, width)];
        }
    }
    Ok(PhasedPlane { values, row_len })
}

with_fma! {
    /// One output row of [`box_moments`] into `out` (five segments: mean x, mean y, Σxy, Σx², Σy²), from the
    /// `side` padded rows from `top`.
    fn box_moments_row / box_moments_row_fma(
        x: &PhasedPlane, y: &PhasedPlane, top: usize, side: usize, mean_tap: f32, out: &mut [f32]
    ) {
        let cols = out.len() / 5;
        let stride = 3 * x.row_len;
        out.fill(0.0);
        let (mean_x, rest) = out.split_at_mut(cols);
        let (mean_y, rest) = rest.split_at_mut(cols);
        let (sum_xy, rest) = rest.split_at_mut(cols);
        let (sum_xx, sum_yy) = rest.split_at_mut(cols);
        for kh in 0..side {
            let row = (top + kh) * stride..(top + kh + 1) * stride;
            let (row_x, row_y) = (&x.values[row.clone()], &y.values[row]);
            for kw in 0..side {
                // Output column j reads padded column 3j + 1 + kw.
                let start = ((1 + kw) % 3) * x.row_len + (1 + kw) / 3;
                let (a, b) = (&row_x[start..start + cols], &row_y[start..start + cols]);
                for j in 0..cols {
                    mean_x[j] = a[j].mul_add(mean_tap, mean_x[j]);
                    mean_y[j] = b[j].mul_add(mean_tap, mean_y[j]);
                    sum_xy[j] += a[j] * b[j];
                    sum_xx[j] += a[j] * a[j];
                    sum_yy[j] += b[j] * b[j];
                }
            }
        }
    }
}

/// `t` without `offset` samples on each side of its last two dimensions (empty when nothing is left).
fn crop(t: &Tensor, offset: i64) -> Result<Tensor> {
    let (h, w) = (t.size()[2], t.size()[3]);
    Ok(t.f_narrow(2, offset, (h - 2 * offset).max(0))?.f_narrow(3, offset, (w - 2 * offset).max(0))?)
}

impl Model for Vif {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let x = rgb_to_y(dist, 255.0)?;
        let y = rgb_to_y(require_ref(reference)?, 255.0)?;
        self.scores(&y, &x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On shapes where libtorch runs the boxes through oneDNN (every side above 3; the 3×3 box above 20480
    /// padded elements), the fused moments equal libtorch's to the bit, and the probe finds so; where it runs
    /// im2col (the 3×3 box of a 64×48 subband), the probe is not consulted and the values do differ, which is
    /// why the path is chosen by libtorch's rule.
    #[test]
    fn box_moments_equal_libtorch_bit_for_bit() -> Result<()> {
        let vif = Vif::new(Device::Cpu)?;
        let subband = |h: usize, w: usize, seed: u32| -> Result<Tensor> {
            let values: Vec<f32> = (0..h * w).map(|i| probe_subband(i * 7 + 3, seed)).collect();
            Ok(Tensor::f_from_slice(&values)?.f_view([1, 1, h as i64, w as i64])?)
        };
        let differing = |level: usize, h: usize, w: usize| -> Result<usize> {
            let (x, y) = (subband(h, w, 5)?, subband(h, w, 6)?);
            let fused = box_moments(cpu_slice(&x)?, cpu_slice(&y)?, w, box_side(level) as usize, vif.mean_tap(level))?;
            let libtorch = vif.libtorch_moments(&x, &y, level)?;
            assert!(libtorch.iter().zip(&fused).all(|(a, b)| a.size() == b.size()), "level {level} {w}×{h}");
            values_differing(&libtorch, &fused)
        };
        for (level, h, w) in [(0, 384, 510), (0, 33, 33), (1, 192, 255), (1, 99, 21), (2, 96, 126), (3, 135, 240)] {
            let side = box_side(level) as usize;
            assert!(runs_on_onednn((h + side - 1) * (w + side - 1), side), "level {level} {w}×{h}");
            assert_eq!(differing(level, h, w)?, 0, "level {level} {w}×{h}");
            assert!(vif.box_moments_match_libtorch(side, w), "probe at level {level} {w}×{h}");
        }
        assert!(!runs_on_onednn(50 * 65, 3));
        assert!(differing(3, 48, 63)? > 0, "im2col sums in another order");
        Ok(())
    }

    /// The float64 model from iqa's loops is libtorch's float64 model of the same subband to rounding.
    #[test]
    fn float64_reference_model_equals_libtorch_float64() -> Result<()> {
        let (h, w) = (45, 63);
        let values: Vec<f32> = (0..h * w).map(|i| probe_subband(i * 5 + 1, 9)).collect();
        let r = Tensor::f_from_slice(&values)?.f_view([1, 1, h as i64, w as i64])?;
        let (ss, eig) = Vif::reference_model_f64(&r)?;
        let (want_ss, want_eig) = Vif::reference_model(&r.f_to_kind(Kind::Double)?)?;
        assert_eq!(ss.size(), [1, 1, 15, 21]);
        assert_eq!(eig.size(), [1, 9]);
        let largest = |a: &Tensor, b: &Tensor| -> Result<f64> {
            Ok(f64::try_from(a.f_sub(b)?.f_abs()?.f_max()?)? / f64::try_from(b.f_abs()?.f_max()?)?)
        };
        assert!(largest(&ss, &want_ss)? < 1e-12, "multipliers differ by {}", largest(&ss, &want_ss)?);
        assert!(largest(&eig, &want_eig)? < 1e-12, "eigenvalues differ by {}", largest(&eig, &want_eig)?);
        Ok(())
    }

    /// iqa's copy of the neighbourhoods is libtorch's stack of shifted views, element for element.
    #[test]
    fn neighbourhoods_equal_the_stacked_views() -> Result<()> {
        let r = Tensor::f_arange(12 * 9, (Kind::Float, Device::Cpu))?.f_view([1, 1, 12, 9])?;
        let (overlapping, blocks) = neighbourhoods(&r)?;
        let (want_overlapping, want_blocks) = neighbourhoods(&r.f_to_kind(Kind::Double)?)?;
        assert_eq!(overlapping.size(), [1, 1, 70, 9]);
        assert_eq!(blocks.size(), [1, 1, 9, 12]);
        assert!(overlapping.f_to_kind(Kind::Double)?.f_equal(&want_overlapping)?);
        assert!(blocks.f_to_kind(Kind::Double)?.f_equal(&want_blocks)?);
        // Neighbour 5 (column offset 1, row offset 2) of position (1, 3): the sample at row 3, column 4.
        assert_eq!(overlapping.f_double_value(&[0, 0, 7 + 3, 5])?, (3 * 9 + 4) as f64);
        Ok(())
    }
}
