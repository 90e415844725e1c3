//! Natural-scene-statistics pieces shared by NIQE, BRISQUE and PIQE, as pyiqa 0.1.16 computes them: the MSCN
//! normalisation with a Gaussian window, and the moment-matching estimates of generalised Gaussian (GGD) and
//! asymmetric generalised Gaussian (AGGD) parameters by table look-up over shapes 0.2:0.001:10.
//!
//! The op sequence mirrors pyiqa's (including `2.0 / t` being `reciprocal(t) · 2` in PyTorch) so that the
//! arg-min over the look-up table picks the same entry: a neighbouring entry would move a feature by 0.001.
use crate::error::Result;
use crate::nn::filters::correlate_valid_cpu;
use crate::tensor::{cpu_slice, FreshTensor, FrozenTensor};
use tch::{Device, Kind, Tensor};

/// numpy's pairwise summation of a contiguous array (8 accumulators below 128 elements, halving above), so that
/// a kernel normalised the way numpy normalises it rounds identically.
fn numpy_sum(v: &[f64]) -> f64 {
    if v.len() < 8 {
        return v.iter().fold(0.0, |a, b| a + b);
    }
    if v.len() <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&v[..8]);
        let mut i = 8;
        while i + 8 <= v.len() {
            for (j, acc) in r.iter_mut().enumerate() {
                *acc += v[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &v[i..] {
            res += x;
        }
        return res;
    }
    let half = (v.len() / 2) / 8 * 8;
    numpy_sum(&v[..half]) + numpy_sum(&v[half..])
}

/// pyiqa's `fspecial(size, sigma)`: MATLAB's normalised `size`×`size` Gaussian (taps below eps·max zeroed),
/// computed in float64 and stored as float32 (pyiqa returns `.float()`); row-major.
pub fn fspecial_gaussian_f32(size: usize, sigma: f64) -> Vec<f32> {
    let m = (size as f64 - 1.0) / 2.0;
    let mut h: Vec<f64> = (0..size * size)
        .map(|i| {
            let (y, x) = ((i / size) as f64 - m, (i % size) as f64 - m);
            (-(x * x + y * y) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let max = h.iter().cloned().fold(f64::MIN, f64::max);
    for v in h.iter_mut() {
        if *v < f64::EPSILON * max {
            *v = 0.0;
        }
    }
    let sum = numpy_sum(&h);
    h.into_iter().map(|v| (v / sum) as f32).collect()
}

/// How the MSCN filter treats the border: pyiqa's 'same' (zeros) or 'replicate'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Border {
    Zeros,
    Replicate,
}

/// pyiqa's `normalize_img_with_gauss` (C = 1): (x − μ) / (σ + 1) with μ and σ the local mean and standard
/// deviation under `window` (1×1×k×k, x's dtype), σ = sqrt(|E[x²] − μ²| + eps of the dtype).
/// `x` is N×1×H×W.
pub fn mscn(x: &Tensor, window: &Tensor, border: Border) -> Result<Tensor> {
    let k = window.size()[2];
    let (before, after) = ((k - 1) / 2, k - 1 - (k - 1) / 2);
    let pad = [before, after, before, after];
    let filter = |t: &Tensor| -> Result<Tensor> {
        let padded = match border {
            Border::Zeros => t.f_constant_pad_nd(pad)?,
            Border::Replicate => t.f_pad(pad, "replicate", None)?,
        };
        if padded.device() == Device::Cpu && padded.kind() == Kind::Double {
            let taps = Vec::<f64>::try_from(&window.f_to_kind(Kind::Double)?.f_flatten(0, -1)?)?;
            return correlate_valid_cpu(&padded, &taps, k as usize);
        }
        Ok(padded.f_conv2d(window, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)?)
    };
    let mu = filter(x)?;
    let second = filter(&x.f_pow_tensor_scalar(2)?)?;
    let eps = if x.kind() == Kind::Double { f64::EPSILON } else { f32::EPSILON as f64 };
    let sigma = second.f_sub(&mu.f_pow_tensor_scalar(2)?)?.f_abs()?.f_add_scalar(eps)?.f_sqrt()?;
    Ok(x.f_sub(&mu)?.f_div(&sigma.f_add_scalar(1.0)?)?)
}

/// PyTorch's `at::internal::GRAIN_SIZE`: reductions over fewer elements always run on one thread.
const SERIAL_REDUCTION: i64 = 32768;

/// Mean (or sum) over the last `k` dimensions in the tensor's dtype, as pyiqa computes it, with PyTorch's
/// single-threaded summation order whatever the number of threads or the batch size. PyTorch splits a reduction
/// to one value over more than its grain size (32768 elements) between its threads, which changes the last bits
/// with the thread count (and would make one image differ from the same image in a batch); with two or more
/// values to reduce it gives each to one thread, in the serial order. A lone value is therefore reduced next to
/// a zero one. This is pyiqa's result when it runs on one thread, and what BRISQUE needs: its float32 SVR sum
/// cancels so much that a last-bit change in a moment moves the score by up to 5e-3. `x` has at least `k + 1`
/// dimensions (the first one is never reduced).
pub fn serial_reduce(x: &Tensor, k: usize, mean: bool) -> Result<Tensor> {
    let size = x.size();
    let dims: Vec<i64> = (1..=k as i64).map(|d| -d).collect();
    let reduced: i64 = size[size.len() - k..].iter().product();
    let lone = x.numel() as i64 == reduced;
    let input = if lone && reduced > SERIAL_REDUCTION {
        Tensor::f_cat(&[x, &x.f_zeros_like()?], 0)?
    } else {
        x.shallow_clone()
    };
    let r = if mean {
        input.f_mean_dim(dims.as_slice(), false, None::<Kind>)?
    } else {
        input.f_sum_dim_intlist(dims.as_slice(), false, None::<Kind>)?
    };
    Ok(if input.size()[0] != size[0] { r.f_narrow(0, 0, size[0])? } else { r })
}

fn reduce(x: &Tensor, mean: bool) -> Result<Tensor> {
    serial_reduce(x, 2, mean)
}

/// `2.0 / t`, as PyTorch evaluates a Python scalar divided by a tensor.
fn rdiv(numerator: f64, t: &Tensor) -> Result<Tensor> {
    Ok(t.f_reciprocal()?.f_mul_scalar(numerator)?)
}

/// The look-up tables: candidate shapes 0.2:0.001:10 (a float32 `arange`, as pyiqa builds it, then in the
/// dtype of the data it is used on) and the moment ratio each gives in that dtype, for the GGD and the AGGD,
/// built on the CPU so that every device uses the same entries.
pub struct ShapeTables {
    gamma: FrozenTensor,
    /// Γ(1/γ)Γ(3/γ)/Γ(2/γ)², pyiqa's `estimate_ggd_param` table.
    ggd_ratio: FrozenTensor,
    /// Γ(2/γ)²/(Γ(1/γ)Γ(3/γ)), pyiqa's `estimate_aggd_param` table.
    aggd_ratio: FrozenTensor,
}

impl ShapeTables {
    /// Tables for data of `kind` (Float or Double) on `device`.
    pub fn new(kind: Kind, device: Device) -> Result<Self> {
        let gamma =
            Tensor::f_arange_start_step(0.2, 10.0 + 0.001, 0.001, (Kind::Float, Device::Cpu))?.f_to_kind(kind)?;
        let lg = |num: f64| -> Result<Tensor> { Ok(rdiv(num, &gamma)?.f_lgamma()?) };
        let ggd = lg(1.0)?.f_add(&lg(3.0)?)?.f_sub(&lg(2.0)?.f_mul_scalar(2.0)?)?.f_exp()?;
        let aggd = lg(2.0)?.f_mul_scalar(2.0)?.f_sub(&lg(1.0)?.f_add(&lg(3.0)?)?)?.f_exp()?;
        Ok(ShapeTables {
            gamma: FrozenTensor::new(gamma.f_to_device(device)?),
            ggd_ratio: FrozenTensor::new(ggd.f_unsqueeze(0)?.f_to_device(device)?),
            aggd_ratio: FrozenTensor::new(aggd.f_unsqueeze(0)?.f_to_device(device)?),
        })
    }

    /// The table entry whose ratio is nearest `ratio` (B×1), as B shapes.
    fn nearest(&self, table: &Tensor, ratio: &Tensor) -> Result<Tensor> {
        // In chunks of rows: the B×9801 distance matrix at once was most of NIQE's peak memory (1.77 GB for a
        // 1080p image, above pyiqa's 1.57 GB). Each row's arg-min is independent, so the result is the same.
        const ROWS: i64 = 64;
        let total = ratio.size()[0];
        let mut parts = Vec::new();
        for start in (0..total).step_by(ROWS as usize) {
            let rows = ratio.f_narrow(0, start, ROWS.min(total - start))?;
            parts.push(table.f_sub(&rows)?.f_abs()?.f_argmin(-1, false)?);
        }
        let index = if parts.len() == 1 { parts.pop().expect("one part") } else { Tensor::f_cat(&parts, 0)? };
        Ok(self.gamma.f_index_select(0, &index)?)
    }

    /// GGD fit of each B×1×h×w block (pyiqa's `estimate_ggd_param`): (shape, σ), each of B values.
    pub fn ggd(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let sigma_sq = reduce(&x.f_pow_tensor_scalar(2)?, true)?;
        let sigma = sigma_sq.f_sqrt()?.f_squeeze_dim(-1)?;
        let e = reduce(&x.f_abs()?, true)?;
        let rho = sigma_sq.f_div(&e.f_pow_tensor_scalar(2)?)?;
        Ok((self.nearest(&self.ggd_ratio, &rho)?, sigma))
    }

    /// AGGD fit of each B×1×h×w block (pyiqa's `estimate_aggd_param`): (shape, left σ, right σ), each of B
    /// values. A block without negative (or positive) values gives NaN, as in pyiqa.
    pub fn aggd(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let terms = AggdTerms::of(x)?;
        let left = reduce(&terms.negative_squares, false)?.f_div(&terms.negative_count)?.f_sqrt()?;
        let right = reduce(&terms.positive_squares, false)?.f_div(&terms.positive_count)?.f_sqrt()?;
        let gammahat = left.f_div(&right)?;
        let rhat = reduce(&terms.magnitudes, true)?.f_pow_tensor_scalar(2)?.f_div(&reduce(&terms.squares, true)?)?;
        let rhatnorm = rhat
            .f_mul(&gammahat.f_pow_tensor_scalar(3)?.f_add_scalar(1.0)?)?
            .f_mul(&gammahat.f_add_scalar(1.0)?)?
            .f_div(&gammahat.f_pow_tensor_scalar(2)?.f_add_scalar(1.0)?.f_pow_tensor_scalar(2)?)?;
        let alpha = self.nearest(&self.aggd_ratio, &rhatnorm)?;
        Ok((alpha, left.f_squeeze_dim(-1)?, right.f_squeeze_dim(-1)?))
    }
}

/// The element-wise terms of an AGGD fit of B×1×h×w data, before pyiqa's reductions: (x·[x<0])², (x·[x>0])²,
/// |x| and x², and the counts of negative and positive values (B×1, in x's dtype).
struct AggdTerms {
    negative_squares: Tensor,
    positive_squares: Tensor,
    magnitudes: Tensor,
    squares: Tensor,
    negative_count: Tensor,
    positive_count: Tensor,
}

impl AggdTerms {
    fn of(x: &Tensor) -> Result<Self> {
        match (x.device(), x.kind()) {
            (Device::Cpu, Kind::Float) => Self::cpu::<f32>(x),
            (Device::Cpu, Kind::Double) => Self::cpu::<f64>(x),
            _ => Self::tensor(x),
        }
    }

    /// pyiqa's operations.
    fn tensor(x: &Tensor) -> Result<Self> {
        let dims = [-1i64, -2].as_slice();
        let (negative, positive) = (x.f_lt(0.0)?, x.f_gt(0.0)?);
        Ok(AggdTerms {
            negative_count: negative.f_sum_dim_intlist(dims, false, x.kind())?,
            positive_count: positive.f_sum_dim_intlist(dims, false, x.kind())?,
            negative_squares: x.f_mul(&negative)?.f_pow_tensor_scalar(2)?,
            positive_squares: x.f_mul(&positive)?.f_pow_tensor_scalar(2)?,
            magnitudes: x.f_abs()?,
            squares: x.f_pow_tensor_scalar(2)?,
        })
    }

    /// The same values in one pass over x (they were ten libtorch passes, and a third of BRISQUE's time): the
    /// same products (a mask multiplies as 0 or 1, so NaN stays NaN), exact integer counts.
    fn cpu<T: Sample>(x: &Tensor) -> Result<Self> {
        let size = x.size();
        let x = x.f_contiguous()?;
        let blocks = size[0] as usize;
        let per_block = x.numel() / blocks.max(1);
        let input = cpu_slice::<T>(&x)?;
        let fresh = || FreshTensor::<T>::empty(size.as_slice());
        let mut outputs = [fresh()?, fresh()?, fresh()?, fresh()?];
        let [neg, pos, mag, sq] = outputs.each_mut().map(FreshTensor::as_mut_slice);
        let mut counts = (Vec::with_capacity(blocks), Vec::with_capacity(blocks));
        for b in 0..blocks {
            let range = b * per_block..(b + 1) * per_block;
            let (mut negatives, mut positives) = (0usize, 0usize);
            for i in range {
                let v = input[i];
                let (below, above) = (v < T::NIL, v > T::NIL);
                negatives += below as usize;
                positives += above as usize;
                let (l, r) = (v * T::mask(below), v * T::mask(above));
                (neg[i], pos[i], mag[i], sq[i]) = (l * l, r * r, v.abs(), v * v);
            }
            counts.0.push(T::count(negatives));
            counts.1.push(T::count(positives));
        }
        let [negative_squares, positive_squares, magnitudes, squares] = outputs.map(FreshTensor::into_tensor);
        let shape = [blocks as i64, 1];
        Ok(AggdTerms {
            negative_squares,
            positive_squares,
            magnitudes,
            squares,
            negative_count: T::tensor(&counts.0)?.f_view(shape)?,
            positive_count: T::tensor(&counts.1)?.f_view(shape)?,
        })
    }
}

/// float32 or float64 samples for the CPU passes.
trait Sample: tch::kind::Element + Copy + PartialOrd + std::ops::Mul<Output = Self> {
    const NIL: Self;
    fn mask(on: bool) -> Self;
    fn abs(self) -> Self;
    fn count(n: usize) -> Self;
    fn tensor(values: &[Self]) -> Result<Tensor>;
}

macro_rules! sample {
    ($t:ty) => {
        impl Sample for $t {
            const NIL: Self = 0.0;
            fn mask(on: bool) -> Self {
                if on {
                    1.0
                } else {
                    0.0
                }
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn count(n: usize) -> Self {
                n as $t
            }
            fn tensor(values: &[Self]) -> Result<Tensor> {
                Ok(Tensor::f_from_slice(values)?)
            }
        }
    };
}
sample!(f32);
sample!(f64);

/// x times its neighbour at `shift` (rows, columns) with wrap-around, `x · roll(x, shift)` over the last two
/// dimensions as pyiqa computes it; on the CPU in one pass instead of a rolled copy and a product.
pub fn neighbour_product(x: &Tensor, shift: [i64; 2]) -> Result<Tensor> {
    match (x.device(), x.kind()) {
        (Device::Cpu, Kind::Float) => neighbour_product_cpu::<f32>(x, shift),
        (Device::Cpu, Kind::Double) => neighbour_product_cpu::<f64>(x, shift),
        _ => Ok(x.f_mul(&x.f_roll(shift, [-2i64, -1])?)?),
    }
}

fn neighbour_product_cpu<T: Sample>(x: &Tensor, [dy, dx]: [i64; 2]) -> Result<Tensor> {
    let size = x.size();
    let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
    let x = x.f_contiguous()?;
    let input = cpu_slice::<T>(&x)?;
    let mut out = FreshTensor::<T>::empty(size.as_slice())?;
    let output = out.as_mut_slice();
    let (h, w) = (h as usize, w as usize);
    if h == 0 || w == 0 {
        return Ok(out.into_tensor());
    }
    // roll: out[i][j] = x[(i − dy) mod h][(j − dx) mod w].
    let (dy, dx) = (dy.rem_euclid(h as i64) as usize, dx.rem_euclid(w as i64) as usize);
    for (plane, result) in input.chunks_exact(h * w).zip(output.chunks_exact_mut(h * w)) {
        for i in 0..h {
            let row = &plane[i * w..(i + 1) * w];
            let source = (i + h - dy) % h;
            let neighbours = &plane[source * w..(source + 1) * w];
            let out_row = &mut result[i * w..(i + 1) * w];
            // Columns j ≥ dx read neighbour column j − dx; the first dx wrap around to w − dx + j.
            for j in 0..dx {
                out_row[j] = row[j] * neighbours[w - dx + j];
            }
            for j in dx..w {
                out_row[j] = row[j] * neighbours[j - dx];
            }
        }
    }
    Ok(out.into_tensor())
}

/// sqrt(Γ(1/α)/Γ(3/α)): multiplies an AGGD side σ into pyiqa's β.
pub fn aggd_beta_factor(alpha: &Tensor) -> Result<Tensor> {
    Ok(rdiv(1.0, alpha)?.f_lgamma()?.f_sub(&rdiv(3.0, alpha)?.f_lgamma()?)?.f_exp()?.f_sqrt()?)
}

/// lgamma(numerator/α), with the division as PyTorch evaluates it.
pub fn lgamma_of(numerator: f64, alpha: &Tensor) -> Result<Tensor> {
    Ok(rdiv(numerator, alpha)?.f_lgamma()?)
}

/// NIQE's 18 features of each B×1×h×w block of MSCN coefficients (pyiqa's `compute_feature`), B×18: the AGGD
/// shape and mean width of the coefficients, then shape, mean and both widths of their products with the four
/// neighbours (right, below, the two diagonals). IL-NIQE uses the same features.
pub fn niqe_block_features(tables: &ShapeTables, block: &Tensor) -> Result<Tensor> {
    aggd_features(tables, block, [[0, 1], [1, 0], [1, 1], [1, -1]])
}

/// [`niqe_block_features`] with the neighbours given as `torch.roll` shifts: pyiqa's `compute_nss_features`
/// (BRISQUE's MATLAB version) rolls the last diagonal the other way, by (−1, 1).
pub fn aggd_features(tables: &ShapeTables, block: &Tensor, shifts: [[i64; 2]; 4]) -> Result<Tensor> {
    let (alpha, left, right) = tables.aggd(block)?;
    let beta = aggd_beta_factor(&alpha)?;
    let mut feat = vec![alpha, left.f_mul(&beta)?.f_add(&right.f_mul(&beta)?)?.f_div_scalar(2.0)?];
    for shift in shifts {
        let product = neighbour_product(block, shift)?;
        let (alpha, left, right) = tables.aggd(&product)?;
        let beta = aggd_beta_factor(&alpha)?;
        let (beta_l, beta_r) = (left.f_mul(&beta)?, right.f_mul(&beta)?);
        let mean = beta_r.f_sub(&beta_l)?.f_mul(&lgamma_of(2.0, &alpha)?.f_sub(&lgamma_of(1.0, &alpha)?)?.f_exp()?)?;
        feat.extend([alpha, mean, beta_l, beta_r]);
    }
    Ok(Tensor::f_stack(&feat, 1)?)
}

/// pyiqa's `nanmean` and `nancov` of block features (N×blocks×F, NaN where a feature is undefined), shared by
/// NIQE and IL-NIQE.
pub struct NanStats {
    /// Where the features are NaN (N×blocks×F).
    pub nan: Tensor,
    /// Mean of each feature over the blocks where it is defined (N×1×F).
    pub mean: Tensor,
    /// Covariance over the blocks without any NaN, unbiased unless only one block is left (N×F×F).
    pub cov: Tensor,
    /// How many blocks had no NaN (N).
    pub complete_blocks: Tensor,
}

pub fn nan_mean_cov(features: &Tensor) -> Result<NanStats> {
    let nan = features.f_isnan()?;
    let zeroed = features.f_masked_fill(&nan, 0.0)?;
    let defined = nan.f_logical_not()?.f_sum_dim_intlist([1i64].as_slice(), true, Kind::Float)?;
    let mean = zeroed.f_sum_dim_intlist([1i64].as_slice(), true, None::<Kind>)?.f_div(&defined)?;
    let complete = nan.f_any_dim(2, true)?.f_logical_not()?.f_to_kind(Kind::Double)?; // N×blocks×1
    let rows = complete.f_sum_dim_intlist([1i64, 2].as_slice(), false, None::<Kind>)?; // N
    let row_mean = zeroed
        .f_mul(&complete)?
        .f_sum_dim_intlist([1i64].as_slice(), true, None::<Kind>)?
        .f_div(&rows.f_view([-1, 1, 1])?)?;
    let centred = zeroed.f_sub(&row_mean)?.f_mul(&complete)?;
    let denominator = rows.f_sub_scalar(1.0)?.f_clamp_min(1.0)?.f_view([-1, 1, 1])?;
    let cov = centred.f_transpose(1, 2)?.f_matmul(&centred)?.f_div(&denominator)?;
    Ok(NanStats { nan, mean, cov, complete_blocks: rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(t: &Tensor) -> Vec<u64> {
        let t = t.to_kind(Kind::Double).flatten(0, -1);
        Vec::<f64>::try_from(&t).unwrap().iter().map(|v| v.to_bits()).collect()
    }

    /// Random data with zeros, a NaN and a block without negative values, float32 and float64.
    fn awkward_samples(kind: Kind) -> Tensor {
        tch::manual_seed(11);
        let x = Tensor::randn([3, 1, 9, 13], (kind, Device::Cpu));
        let _ = x.narrow(3, 0, 2).fill_(0.0);
        let _ = x.get(1).abs_();
        let _ = x.get(2).get(0).get(4).get(5).fill_(f64::NAN);
        x
    }

    /// The one-pass CPU terms equal pyiqa's operations bit for bit (NaN where they give NaN).
    #[test]
    fn cpu_aggd_terms_equal_tensor_operations() {
        for kind in [Kind::Float, Kind::Double] {
            let x = awkward_samples(kind);
            let (fast, slow) = (AggdTerms::of(&x).unwrap(), AggdTerms::tensor(&x).unwrap());
            for (name, a, b) in [
                ("negative squares", &fast.negative_squares, &slow.negative_squares),
                ("positive squares", &fast.positive_squares, &slow.positive_squares),
                ("magnitudes", &fast.magnitudes, &slow.magnitudes),
                ("squares", &fast.squares, &slow.squares),
                ("negative count", &fast.negative_count, &slow.negative_count),
                ("positive count", &fast.positive_count, &slow.positive_count),
            ] {
                assert_eq!(a.size(), b.size(), "{kind:?} {name}");
                assert_eq!(a.kind(), b.kind(), "{kind:?} {name}");
                assert_eq!(bits(a), bits(b), "{kind:?} {name}");
            }
            assert_eq!(
                Vec::<f64>::try_from(slow.positive_count.to_kind(Kind::Double).flatten(0, -1)).unwrap()[1],
                0.0 + (9 * 11) as f64
            );
        }
    }

    /// MSCN in float64 on the CPU (plain-loop correlation) equals libtorch's conv2d within float64 rounding.
    #[test]
    fn cpu_float64_mscn_equals_conv2d() {
        tch::manual_seed(2);
        let x = (Tensor::rand([2, 1, 40, 33], (Kind::Double, Device::Cpu)) * 255.0).round();
        let taps = fspecial_gaussian_f32(7, 7.0 / 6.0);
        let window = Tensor::from_slice(&taps).view([1, 1, 7, 7]).to_kind(Kind::Double);
        for border in [Border::Zeros, Border::Replicate] {
            let fast = mscn(&x, &window, border).unwrap();
            // The same formula with libtorch's convolution (float32 goes through it; compare in float64).
            let pad = [3i64, 3, 3, 3];
            let filter = |t: &Tensor| {
                let p = if border == Border::Zeros { t.constant_pad_nd(pad) } else { t.pad(pad, "replicate", None) };
                p.conv2d(&window, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
            };
            let mu = filter(&x);
            let sigma = (filter(&x.square()) - mu.square()).abs().g_add_scalar(f64::EPSILON).sqrt();
            let slow = (&x - &mu) / (sigma + 1.0);
            assert_eq!(fast.size(), slow.size());
            let err = f64::try_from((fast - &slow).abs().max()).unwrap();
            assert!(err < 1e-12, "{border:?}: {err}");
        }
    }

    /// x·roll(x, shift) for every shift direction NIQE and BRISQUE use, and ones beyond the size.
    #[test]
    fn cpu_neighbour_product_equals_roll() {
        for kind in [Kind::Float, Kind::Double] {
            let x = awkward_samples(kind);
            for shift in [[0, 1], [1, 0], [1, 1], [-1, 1], [1, -1], [0, 0], [10, -14]] {
                let expected = x.f_mul(&x.f_roll(shift, [-2i64, -1]).unwrap()).unwrap();
                assert_eq!(bits(&neighbour_product(&x, shift).unwrap()), bits(&expected), "{kind:?} {shift:?}");
            }
        }
    }

    #[test]
    fn gaussian_window_is_normalised_and_symmetric() {
        let w = fspecial_gaussian_f32(7, 7.0 / 6.0);
        let sum: f64 = w.iter().map(|&v| v as f64).sum();
        assert!((sum - 1.0).abs() < 1e-6, "{sum}");
        for i in 0..7 {
            for j in 0..7 {
                assert_eq!(w[i * 7 + j], w[j * 7 + i]);
                assert_eq!(w[i * 7 + j], w[(6 - i) * 7 + (6 - j)]);
            }
        }
    }

    #[test]
    fn shape_fits_recover_known_distributions() {
        let tables = ShapeTables::new(Kind::Double, Device::Cpu).unwrap();
        tch::manual_seed(7);
        // Gaussian samples: GGD shape 2; symmetric, so the AGGD sides agree.
        let x = Tensor::f_randn([2, 1, 300, 300], (Kind::Double, Device::Cpu)).unwrap();
        let (shape, sigma) = tables.ggd(&x).unwrap();
        let (shape, sigma) = (Vec::<f64>::try_from(&shape).unwrap(), Vec::<f64>::try_from(&sigma).unwrap());
        for (a, s) in shape.iter().zip(&sigma) {
            assert!((a - 2.0).abs() < 0.05 && (s - 1.0).abs() < 0.01, "shape {a}, sigma {s}");
        }
        let (alpha, left, right) = tables.aggd(&x).unwrap();
        let (left, right) = (Vec::<f64>::try_from(&left).unwrap(), Vec::<f64>::try_from(&right).unwrap());
        assert!(Vec::<f64>::try_from(&alpha).unwrap().iter().all(|a| (a - 2.0).abs() < 0.05));
        assert!(left.iter().zip(&right).all(|(l, r)| (l - r).abs() < 0.01));
        // Laplacian samples (−ln U · random sign): shape 1.
        let u = Tensor::f_rand([1, 1, 300, 300], (Kind::Double, Device::Cpu)).unwrap();
        let sign = Tensor::f_rand([1, 1, 300, 300], (Kind::Double, Device::Cpu)).unwrap().gt(0.5).to_kind(Kind::Double)
            * 2.0
            - 1.0;
        let laplace = u.log().neg() * sign;
        let (shape, _) = tables.ggd(&laplace).unwrap();
        assert!((shape.double_value(&[0]) - 1.0).abs() < 0.05);
    }

    /// A lone large plane and the same plane in a batch reduce to identical bits.
    #[test]
    fn serial_reduce_is_batch_independent() {
        let x = Tensor::f_rand([3, 1, 300, 200], (Kind::Float, Device::Cpu)).unwrap();
        let batch = serial_reduce(&x, 2, true).unwrap();
        for i in 0..3 {
            let single = serial_reduce(&x.narrow(0, i, 1), 2, true).unwrap();
            assert!(single.equal(&batch.narrow(0, i, 1)));
        }
    }
}
