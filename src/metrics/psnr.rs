//! PSNR over RGB (`psnr`) or over luma (`psnry`), data range 1, as pyiqa computes it.
use crate::error::Result;
use crate::image::colour::{luma_formula, rgb_to_y, with_fma, LumaFormula};
use crate::image::{Frame, Image, PixelFormat, RowConverter};
use crate::model::{require_ref, DistanceMap, MetricSpec, Mode, Model};
use crate::runtime::{for_each_piece, worker_threads};
use crate::tensor::cpu_slice;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// `psnr` on RGB and `psnry` on luma.
pub const METRICS: &[MetricSpec] = &[
    MetricSpec::new("psnr", Mode::FullReference, false, (0.0, 40.0), |_| Ok(Arc::new(Psnr { luma_only: false }))),
    MetricSpec::new("psnry", Mode::FullReference, false, (0.0, 60.0), |_| Ok(Arc::new(Psnr { luma_only: true }))),
];

/// pyiqa adds this to the MSE so that identical images give a finite score (80 dB).
const MSE_EPS: f64 = 1e-8;

pub struct Psnr {
    pub luma_only: bool,
}

/// 10·log10(1 / (mse + eps)), data range 1.
fn psnr_of_mse(mse: f64) -> f64 {
    10.0 * (1.0 / (mse + MSE_EPS)).log10()
}

impl Psnr {
    /// Mean squared error of one 8-bit pair in [0,1] units: exact integer sums for RGB, divided by 255² once;
    /// for luma, the Y of YIQ in float32 as pyiqa computes it, differences accumulated in float64. The rows'
    /// sums are added in row order, so the score does not depend on how the rows were split between threads.
    fn mse_u8(&self, d: &Image<'_>, r: &Image<'_>) -> Option<f64> {
        let (d_layout, r_layout) = (d.rgb8_layout()?, r.rgb8_layout()?);
        let (w, h) = (d.width() as usize, d.height() as usize);
        let values = (w * h * if self.luma_only { 1 } else { 3 }) as f64;
        // The luma pyiqa's product gives at this width; none known: the tensor path computes the product.
        let formula = if self.luma_only { Some(luma_formula(w)?) } else { None };
        // Equal 3-byte layouts: the squared differences of the bytes, channel order aside; packed buffers in
        // one pass (a row is too short for the vector loop's set-up and final sums not to show).
        let same_rgb = d_layout == r_layout && d_layout.0 == 3;
        // Integer sums are exact in float64 (below 2⁵³ for any image of at most 2³¹ pixels).
        let scale = if formula.is_some() { 1.0 } else { 255.0 * 255.0 };
        if let (true, None, Some(a), Some(b)) = (same_rgb, formula, d.packed_bytes(), r.packed_bytes()) {
            return Some(packed_squared_differences(a, b) as f64 / scale / values);
        }
        let row_sum = |y: usize| -> f64 {
            let (drow, rrow) = (d.row(y), r.row(y));
            if let Some(formula) = formula {
                luma_squared_differences(formula, drow, d_layout, rrow, r_layout)
            } else if same_rgb {
                byte_squared_differences(drow, rrow) as f64
            } else {
                let ((dstep, [dr, dg, db]), (rstep, [rr, rg, rb])) = (d_layout, r_layout);
                let pixels = drow.chunks_exact(dstep).zip(rrow.chunks_exact(rstep));
                let mut row_sum = 0u64;
                for (a, b) in pixels {
                    for (i, j) in [(dr, rr), (dg, rg), (db, rb)] {
                        let diff = a[i] as i32 - b[j] as i32;
                        row_sum += (diff * diff) as u64;
                    }
                }
                row_sum as f64
            }
        };
        let mut rows = vec![0f64; h];
        // Threads for the luma, which computes, from 64K pixels; the bytes are read as fast on one.
        let threads = if formula.is_some() && w * h >= 1 << 16 { worker_threads() } else { 1 };
        let band = h.div_ceil(threads).max(1);
        for_each_piece(&mut rows, band, |i, sums| {
            for (k, sum) in sums.iter_mut().enumerate() {
                *sum = row_sum(i * band + k);
            }
        });
        let sum = rows.iter().fold(0f64, |sum, &row| sum + row);
        Some(sum / scale / values)
    }

    /// Mean squared error of one float32 pair (RGB or gray), as [`Model::forward`] computes it from the
    /// planes: float32 differences (of float32 luma for psnry) squared in float32 and accumulated in float64;
    /// every pixel checked as the tensor conversion checks it. Reading the interleaved buffers once replaces the
    /// conversion to planes, which cost more than the metric.
    fn mse_f32(&self, d: &Image<'_>, r: &Image<'_>) -> Option<Result<f64>> {
        let float = |i: &Image<'_>| matches!(i.format(), PixelFormat::RgbF32 | PixelFormat::GrayF32);
        if !float(d) || !float(r) {
            return None;
        }
        let (w, h) = (d.width() as usize, d.height() as usize);
        // The luma pyiqa's product gives at this width; none known: the tensor path computes the product.
        let formula = if self.luma_only { Some(luma_formula(w)?) } else { None };
        // Gray against gray: each difference stands for three equal channel differences.
        let gray = |i: &Image<'_>| i.format() == PixelFormat::GrayF32;
        let repeat = if !self.luma_only && gray(d) && gray(r) { 3.0 } else { 1.0 };
        // Bands of rows on the worker threads (reading the buffers is the whole cost); each band's lanes are
        // added in band order, and the first bad pixel in row order is the one reported.
        let threads = if w * h >= 1 << 16 { worker_threads() } else { 1 };
        let band = h.div_ceil(threads).max(1);
        let mut bands: Vec<Option<Result<[f64; 8]>>> = vec![None; h.div_ceil(band)];
        for_each_piece(&mut bands, 1, |i, out| {
            out[0] = self.squared_differences(d, r, i * band..((i + 1) * band).min(h), formula);
        });
        let mut lanes = [0f64; 8];
        for band in bands {
            match band? {
                Ok(partial) => lanes.iter_mut().zip(partial).for_each(|(lane, p)| *lane += p),
                Err(e) => return Some(Err(e)),
            }
        }
        let values = (w * h * if self.luma_only { 1 } else { 3 }) as f64;
        Some(Ok(repeat * lanes.iter().sum::<f64>() / values))
    }

    /// The squared differences of rows `rows` of a float32 pair (see [`Psnr::mse_f32`]) in 8 partial sums, of
    /// the luma computed with `formula` for psnry.
    fn squared_differences(
        &self,
        d: &Image<'_>,
        r: &Image<'_>,
        rows: std::ops::Range<usize>,
        formula: Option<LumaFormula>,
    ) -> Option<Result<[f64; 8]>> {
        let (mut scratch_a, mut scratch_b, mut diffs) = (Vec::new(), Vec::new(), Vec::new());
        let mut lanes = [0f64; 8];
        for y in rows {
            let ((a, da), (b, db)) = match (d.float_row(y, &mut scratch_a)?, r.float_row(y, &mut scratch_b)?) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => return Some(Err(e)),
            };
            if !self.luma_only && da == db {
                add_squared_differences(&mut lanes, a, b);
                continue;
            }
            // Gray is R = G = B.
            let rgb = |v: &[f32]| if v.len() == 3 { [v[0], v[1], v[2]] } else { [v[0]; 3] };
            diffs.clear();
            if let Some(formula) = formula {
                luma_differences(formula, a, da, b, db, &mut diffs);
            } else {
                let pixels = a.chunks_exact(da).zip(b.chunks_exact(db)).map(|(p, q)| (rgb(p), rgb(q)));
                diffs.extend(pixels.flat_map(|(p, q)| [p[0] - q[0], p[1] - q[1], p[2] - q[2]]));
            }
            add_squares(&mut lanes, &diffs);
        }
        Some(Ok(lanes))
    }
}

/// The mean squared error of each image of two float32 CPU batches (the RGB path of [`Model::forward`], which
/// video frames take): one pass in fixed pieces of the planes on the worker threads, each piece's squares
/// summed in 8 float64 lanes and the pieces added in order, so the value does not depend on the thread count.
/// Three libtorch passes with two temporaries each the size of the batch cost several times more.
fn mse_of_planes(dist: &Tensor, reference: &Tensor) -> Result<Vec<f64>> {
    const PIECE: usize = 1 << 16;
    let (dist, reference) = (dist.f_contiguous()?, reference.f_contiguous()?);
    let (a, b) = (cpu_slice::<f32>(&dist)?, cpu_slice::<f32>(&reference)?);
    let n = dist.size().first().copied().unwrap_or(1).max(1) as usize;
    let per_image = a.len() / n;
    (0..n)
        .map(|i| {
            let (a, b) = (&a[i * per_image..(i + 1) * per_image], &b[i * per_image..(i + 1) * per_image]);
            let mut pieces = vec![[0f64; 8]; per_image.div_ceil(PIECE)];
            for_each_piece(&mut pieces, 1, |k, out| {
                let range = k * PIECE..((k + 1) * PIECE).min(per_image);
                add_squared_differences(&mut out[0], &a[range.clone()], &b[range]);
            });
            Ok(pieces.iter().flatten().sum::<f64>() / per_image as f64)
        })
        .collect()
}

/// The mean squared error of a frame pair's RGB conversions, without the planes: rows converted into scratch
/// rows and compared at once, in fixed bands of rows on the worker threads (the bands' sums added in order, so
/// the value does not depend on the thread count). The same float32 values and float64 squares as
/// [`mse_of_planes`] on the converted planes, added in another order.
fn mse_of_frames(d: &Frame<'_>, r: &Frame<'_>) -> f64 {
    const BAND: usize = 16;
    let (w, h) = (d.width() as usize, d.height() as usize);
    let mut bands = vec![[0f64; 8]; h.div_ceil(BAND)];
    for_each_piece(&mut bands, 1, |i, out| {
        let (mut dist, mut reference) = (RowConverter::new(d), RowConverter::new(r));
        let mut rows = vec![0f32; 6 * w];
        let (a, b) = rows.split_at_mut(3 * w);
        for y in i * BAND..((i + 1) * BAND).min(h) {
            for (converter, rgb) in [(&mut dist, &mut *a), (&mut reference, &mut *b)] {
                let (red, rest) = rgb.split_at_mut(w);
                let (green, blue) = rest.split_at_mut(w);
                converter.convert(y, red, green, blue);
            }
            add_squared_differences(&mut out[0], a, b);
        }
    });
    bands.iter().flatten().sum::<f64>() / (3 * w * h) as f64
}

with_fma! {
    /// The sum of the squared differences of the luma of two rows of 8-bit pixels (each with its layout: bytes
    /// per pixel, offsets of r, g, b), in [0,1] units: float32 luma, float64 squares and sum.
    fn luma_squared_differences / luma_squared_differences_fma(
        formula: LumaFormula,
        a: &[u8],
        a_layout: (usize, [usize; 3]),
        b: &[u8],
        b_layout: (usize, [usize; 3])
    ) -> f64 {
        let ((a_step, [ar, ag, ab]), (b_step, [br, bg, bb])) = (a_layout, b_layout);
        let lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
        let mut sum = 0f64;
        for (p, q) in a.chunks_exact(a_step).zip(b.chunks_exact(b_step)) {
            let y = formula.luma(lut[p[ar] as usize], lut[p[ag] as usize], lut[p[ab] as usize]);
            let z = formula.luma(lut[q[br] as usize], lut[q[bg] as usize], lut[q[bb] as usize]);
            let diff = (y - z) as f64;
            sum += diff * diff;
        }
        sum
    }
}

with_fma! {
    /// Appends to `diffs` the differences of the luma of two rows of float32 pixels (`a_step`/`b_step` values
    /// each: 3 for RGB, 1 for gray, which is R = G = B).
    fn luma_differences / luma_differences_fma(
        formula: LumaFormula,
        a: &[f32],
        a_step: usize,
        b: &[f32],
        b_step: usize,
        diffs: &mut Vec<f32>
    ) {
        let rgb = |v: &[f32]| if v.len() == 3 { [v[0], v[1], v[2]] } else { [v[0]; 3] };
        for (p, q) in a.chunks_exact(a_step).zip(b.chunks_exact(b_step)) {
            let ([r, g, b], [s, t, u]) = (rgb(p), rgb(q));
            diffs.push(formula.luma(r, g, b) - formula.luma(s, t, u));
        }
    }
}

/// The sum of the squared differences of two equally long byte buffers, exactly, in pieces on the worker
/// threads from 2 MiB each (smaller pieces cost more to hand out than they save). Integer sums: the value does
/// not depend on the split.
fn packed_squared_differences(a: &[u8], b: &[u8]) -> u64 {
    const PIECE: usize = 1 << 21;
    if a.len() < 2 * PIECE || worker_threads() < 2 {
        return byte_squared_differences(a, b);
    }
    let piece = a.len().div_ceil(worker_threads()).max(PIECE);
    let mut sums = vec![0u64; a.len().div_ceil(piece)];
    for_each_piece(&mut sums, 1, |i, out| {
        let range = i * piece..((i + 1) * piece).min(a.len());
        out[0] = byte_squared_differences(&a[range.clone()], &b[range]);
    });
    sums.iter().sum()
}

/// The sum of the squared differences of two equally long byte rows, exactly; with AVX-512BW or AVX2 where the
/// CPU has them (baseline x86-64 has no 32-bit vector multiply, and this loop is the whole of psnr's time).
fn byte_squared_differences(a: &[u8], b: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512F and BW (BW implies F; checked just above).
            return unsafe { byte_squared_differences_avx512(a, b) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { byte_squared_differences_avx2(a, b) };
        }
    }
    byte_squared_differences_any(a, b)
}

// The vector versions take |a − b| in bytes (two saturating subtractions, or-ed), widen it to 16 bits by
// interleaving with zeros, and square and add pairs into 32-bit lanes (`vpmaddwd`), in two 32-byte halves per
// step with an accumulator each so that the additions do not wait on one another. A lane takes at most
// 2 · 255² per step; blocks of 64 KiB keep the lanes and their total under 2³² (65536 · 255² < 2³²).

/// 64 bytes a step in 256-bit vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn byte_squared_differences_avx2(a: &[u8], b: &[u8]) -> u64 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let vectors = n / 64 * 64;
    let zero = _mm256_setzero_si256();
    let mut total = 0u64;
    for start in (0..vectors).step_by(65536) {
        let mut acc = [zero; 4];
        for i in (start..(start + 65536).min(vectors)).step_by(64) {
            for half in 0..2 {
                // SAFETY: i + 64 <= vectors <= n, the length of both slices; unaligned loads.
                let x = _mm256_loadu_si256(a.as_ptr().add(i + 32 * half) as *const __m256i);
                let y = _mm256_loadu_si256(b.as_ptr().add(i + 32 * half) as *const __m256i);
                let diff = _mm256_or_si256(_mm256_subs_epu8(x, y), _mm256_subs_epu8(y, x));
                let (lo, hi) = (_mm256_unpacklo_epi8(diff, zero), _mm256_unpackhi_epi8(diff, zero));
                acc[2 * half] = _mm256_add_epi32(acc[2 * half], _mm256_madd_epi16(lo, lo));
                acc[2 * half + 1] = _mm256_add_epi32(acc[2 * half + 1], _mm256_madd_epi16(hi, hi));
            }
        }
        for lanes in acc {
            let mut values = [0u32; 8];
            _mm256_storeu_si256(values.as_mut_ptr() as *mut __m256i, lanes);
            total += values.iter().map(|&v| v as u64).sum::<u64>();
        }
    }
    total + byte_squared_differences_any(&a[vectors..n], &b[vectors..n])
}

/// 128 bytes a step in 512-bit vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn byte_squared_differences_avx512(a: &[u8], b: &[u8]) -> u64 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let vectors = n / 128 * 128;
    let zero = _mm512_setzero_si512();
    let mut total = 0u64;
    for start in (0..vectors).step_by(65536) {
        let mut acc = [zero; 4];
        for i in (start..(start + 65536).min(vectors)).step_by(128) {
            for half in 0..2 {
                // SAFETY: i + 128 <= vectors <= n, the length of both slices; unaligned loads.
                let x = _mm512_loadu_si512(a.as_ptr().add(i + 64 * half) as *const __m512i);
                let y = _mm512_loadu_si512(b.as_ptr().add(i + 64 * half) as *const __m512i);
                let diff = _mm512_or_si512(_mm512_subs_epu8(x, y), _mm512_subs_epu8(y, x));
                let (lo, hi) = (_mm512_unpacklo_epi8(diff, zero), _mm512_unpackhi_epi8(diff, zero));
                acc[2 * half] = _mm512_add_epi32(acc[2 * half], _mm512_madd_epi16(lo, lo));
                acc[2 * half + 1] = _mm512_add_epi32(acc[2 * half + 1], _mm512_madd_epi16(hi, hi));
            }
        }
        for lanes in acc {
            let mut values = [0u32; 16];
            _mm512_storeu_si512(values.as_mut_ptr() as *mut __m512i, lanes);
            total += values.iter().map(|&v| v as u64).sum::<u64>();
        }
    }
    total + byte_squared_differences_any(&a[vectors..n], &b[vectors..n])
}

/// In blocks whose sum fits 32 bits (65536 · 255² < 2³²), of 16-bit differences whose squares are widened, the
/// shape the compiler turns into multiply-add vector instructions.
#[inline(always)]
fn byte_squared_differences_any(a: &[u8], b: &[u8]) -> u64 {
    a.chunks(65536)
        .zip(b.chunks(65536))
        .map(|(a, b)| {
            a.iter().zip(b).fold(0u32, |sum, (&x, &y)| {
                let diff = x as i16 - y as i16;
                sum.wrapping_add((diff as i32 * diff as i32) as u32)
            }) as u64
        })
        .sum()
}

// Both below keep 8 float64 partial sums: one accumulator would be a chain of dependent additions, several
// times slower.

/// Adds the squares of `diffs` into `lanes`.
fn add_squares(lanes: &mut [f64; 8], diffs: &[f32]) {
    let chunks = diffs.chunks_exact(8);
    for (lane, &diff) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += (diff * diff) as f64;
    }
    for chunk in chunks {
        for (lane, &diff) in lanes.iter_mut().zip(chunk) {
            *lane += (diff * diff) as f64;
        }
    }
}

/// Adds the squares of `a − b` into `lanes` without materialising the differences.
fn add_squared_differences(lanes: &mut [f64; 8], a: &[f32], b: &[f32]) {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (lane, (&x, &y)) in lanes.iter_mut().zip(ca.remainder().iter().zip(cb.remainder())) {
        *lane += ((x - y) * (x - y)) as f64;
    }
    for (x, y) in ca.zip(cb) {
        for (lane, (&x, &y)) in lanes.iter_mut().zip(x.iter().zip(y)) {
            *lane += ((x - y) * (x - y)) as f64;
        }
    }
}

impl Model for Psnr {
    fn score_pixels(&self, dists: &[Image<'_>], refs: Option<&[Image<'_>]>) -> Option<Result<Vec<f64>>> {
        let refs = refs?;
        dists
            .iter()
            .zip(refs)
            .map(|(d, r)| match self.mse_u8(d, r) {
                Some(mse) => Some(Ok(psnr_of_mse(mse))),
                None => self.mse_f32(d, r).map(|mse| mse.map(psnr_of_mse)),
            })
            .collect()
    }

    fn score_frames(&self, dists: &[Frame<'_>], refs: Option<&[Frame<'_>]>) -> Option<Result<Vec<f64>>> {
        let refs = refs?;
        if self.luma_only {
            return None;
        }
        Some(Ok(dists.iter().zip(refs).map(|(d, r)| psnr_of_mse(mse_of_frames(d, r))).collect()))
    }

    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let reference = require_ref(reference)?;
        let float_cpu = |t: &Tensor| t.device() == Device::Cpu && t.kind() == Kind::Float;
        if !self.luma_only && float_cpu(dist) && float_cpu(reference) {
            return Ok(Tensor::f_from_slice(
                &mse_of_planes(dist, reference)?.into_iter().map(psnr_of_mse).collect::<Vec<_>>(),
            )?);
        }
        // Accumulated in float64: pyiqa's float32 mean differs by ~1e-7 relative, and its rounding would
        // depend on how the reduction is split, so a batch would not give exactly the single scores.
        let mse = self.squared_error(dist, reference)?.f_mean_dim(&[1i64, 2, 3][..], false, Kind::Double)?;
        // 10·log10(1 / (mse + eps)), data range 1
        Ok(mse.f_add_scalar(MSE_EPS)?.f_reciprocal()?.f_log10()?.f_mul_scalar(10.0)?)
    }

    fn distance_map(&self) -> Option<&dyn DistanceMap> {
        Some(self)
    }
}

impl Psnr {
    /// Per-pixel squared differences of RGB (or luma) in [0, 1], N×C×H×W float32.
    fn squared_error(&self, dist: &Tensor, reference: &Tensor) -> Result<Tensor> {
        let (x, y) = if self.luma_only {
            (rgb_to_y(dist, 1.0)?, rgb_to_y(reference, 1.0)?)
        } else {
            (dist.shallow_clone(), reference.shallow_clone())
        };
        Ok(x.f_sub(&y)?.f_square()?)
    }
}

impl DistanceMap for Psnr {
    /// The squared error, averaged over channels for `psnr`: its mean is the MSE, and the score is
    /// 10·log10(1 / (MSE + 1e-8)).
    fn map(&self, dist: &Tensor, reference: &Tensor) -> Result<Tensor> {
        Ok(self.squared_error(dist, reference)?.f_mean_dim(&[1i64][..], true, Kind::Double)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every vector version this CPU has gives the exact integer sum: lengths around the step sizes and the
    /// 64 KiB blocks, unaligned starts, and the largest differences (0 against 255) across whole blocks.
    #[test]
    fn byte_squared_differences_are_exact_on_every_path() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        };
        let random: Vec<u8> = (0..140_000).map(|_| next()).collect();
        let other: Vec<u8> = (0..140_000).map(|_| next()).collect();
        let (zeros, full) = (vec![0u8; 140_000], vec![255u8; 140_000]);
        let scalar =
            |a: &[u8], b: &[u8]| -> u64 { a.iter().zip(b).map(|(&x, &y)| (x as i64 - y as i64).pow(2) as u64).sum() };
        type Path = fn(&[u8], &[u8]) -> u64;
        let mut paths: Vec<(&str, Path)> =
            vec![("dispatch", byte_squared_differences), ("any", byte_squared_differences_any)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                paths.push(("avx2", |a, b| unsafe { byte_squared_differences_avx2(a, b) }));
            }
            if std::arch::is_x86_feature_detected!("avx512bw") {
                // SAFETY: the CPU has AVX-512BW.
                paths.push(("avx512", |a, b| unsafe { byte_squared_differences_avx512(a, b) }));
            }
        }
        let lengths = [0, 1, 15, 31, 63, 64, 65, 127, 128, 129, 200, 1000, 65535, 65536, 65600, 131_072, 139_990];
        for (name, path) in paths {
            for &len in &lengths {
                for start in [0, 3] {
                    let range = start..start + len;
                    let (a, b) = (&random[range.clone()], &other[range.clone()]);
                    assert_eq!(path(a, b), scalar(a, b), "{name}: random bytes, {len} from {start}");
                    let (a, b) = (&zeros[range.clone()], &full[range]);
                    assert_eq!(path(a, b), len as u64 * 255 * 255, "{name}: 0 against 255, {len}");
                    assert_eq!(path(b, a), len as u64 * 255 * 255, "{name}: 255 against 0, {len}");
                }
            }
        }
    }
}
