//! GMSD, gradient magnitude similarity deviation (Xue et al. 2013), with pyiqa 0.1.16's defaults: the Y of
//! YIQ rounded to 0..255, 2×2 averaging with stride 2, Prewitt-like gradients with zero padding, T = 170, and
//! the standard deviation (n−1, as `torch.std`) of the similarity map. Lower is better.
//!
//! Float32 with pyiqa's operations in pyiqa's order: the deviation of similarities near 1 carries float32
//! rounding that a float64 computation would not reproduce. The deviation is reduced one image at a time so
//! that a batch equals single scores. Where pyiqa differs from the official GMSD.m (its luma conversion)
//! iqa follows pyiqa. Minimum size: two 2×2 blocks (4×2 or 2×4); pyiqa returns NaN or fails below that.
use crate::error::{Error, Result};
use crate::image::colour::{rgb_to_y, score_by_rows, with_fma, Planes255};
use crate::image::Image;
use crate::model::{require_ref, DistanceMap, MetricSpec, Mode, Model};
use crate::nn::filters::{runs_on_onednn, scaled_block_mean, ONEDNN_MIN_ELEMENTS};
use crate::nn::matlab::kernel;
use crate::runtime::{bits_differing, for_each_piece, try_for_each_piece, zeroed, Probed};
use crate::tensor::{cpu_slice, FreshTensor, FrozenTensor};
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
/// The gradient kernels' weights are ±1/3 in float32.
const THIRD: f32 = 1.0 / 3.0;

pub struct Gmsd {
    /// 1×1×3×3 horizontal and vertical gradient kernels (cross-correlation, as conv2d applies them), float32.
    dx: FrozenTensor,
    dy: FrozenTensor,
}

impl Gmsd {
    pub fn new(device: Device) -> Result<Self> {
        let third = THIRD as f64;
        let dx = kernel(&[third, 0.0, -third, third, 0.0, -third, third, 0.0, -third], Kind::Float)?;
        let dy = kernel(&[third, third, third, 0.0, 0.0, 0.0, -third, -third, -third], Kind::Float)?;
        Ok(Gmsd { dx: FrozenTensor::new(dx.f_to_device(device)?), dy: FrozenTensor::new(dy.f_to_device(device)?) })
    }

    /// Gradient magnitude of the 2×2-averaged luma, N×1×H/2×W/2.
    fn magnitude(&self, rgb: &Tensor) -> Result<Tensor> {
        let y = rgb_to_y(rgb, 255.0)?;
        // Exact in float32: sums of four integers, divided by 4.
        self.magnitude_of_half(&scaled_block_mean(&y, 1.0, 2)?)
    }

    /// Gradient magnitude of 2×2-averaged luma `y`.
    fn magnitude_of_half(&self, y: &Tensor) -> Result<Tensor> {
        let none = None::<&Tensor>;
        let ix = y.f_conv2d(&self.dx, none, [1, 1], [1, 1], [1, 1], 1)?;
        let iy = y.f_conv2d(&self.dy, none, [1, 1], [1, 1], [1, 1], 1)?;
        Ok(ix.f_square()?.f_add(&iy.f_square()?)?.f_add_scalar(MAGNITUDE_EPS)?.f_sqrt()?)
    }
}

impl Model for Gmsd {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let reference = require_ref(reference)?;
        check_size(dist.size()[2], dist.size()[3])?;
        let quality = self.similarity(dist, reference)?;
        deviation(&quality)
    }

    /// Each 8-bit pair from its half-size luma made straight from the rows ([`half_luma`]): no 3×H×W float32
    /// tensor and no full-size luma. The same values from the block means on, so the same scores; from there,
    /// [`fused_similarity`] where it equals libtorch's convolution on this CPU, libtorch's otherwise.
    fn score_pixels(&self, dists: &[Image<'_>], refs: Option<&[Image<'_>]>) -> Option<Result<Vec<f64>>> {
        score_by_rows(
            dists,
            refs,
            |i| Planes255::of_8bit(i, true),
            |d, r| {
                let (w, h) = d.size();
                check_size(h as i64, w as i64)?;
                let (y1, y2) = (half_luma(d)?, half_luma(r)?);
                let quality = if runs_on_onednn((w / 2) * (h / 2), 3) && self.fused_matches_libtorch(w / 2) {
                    fused_similarity(cpu_slice(&y1)?, cpu_slice(&y2)?, w / 2)?
                } else {
                    self.similarity_of_halves(&y1, &y2)?
                };
                Ok(deviation(&quality)?.f_double_value(&[0])?)
            },
        )
    }

    fn distance_map(&self) -> Option<&dyn DistanceMap> {
        Some(self)
    }
}

impl Gmsd {
    /// The gradient magnitude similarity map (GMS), N×1×H/2×W/2.
    fn similarity(&self, dist: &Tensor, reference: &Tensor) -> Result<Tensor> {
        similarity(&self.magnitude(dist)?, &self.magnitude(reference)?)
    }

    /// Whether [`fused_similarity`] equals libtorch's similarity map, bit for bit, for half-size planes `width`
    /// wide above [`ONEDNN_MIN_ELEMENTS`]. Found at the first image of each width on probe planes, then
    /// remembered: the order of the convolution's sums is oneDNN's, which depends on the CPU it dispatches for.
    fn fused_matches_libtorch(&self, width: usize) -> bool {
        static FOUND: Probed<usize, bool> = Probed::new();
        FOUND.get_or_probe(width, || self.probe_fused(width).unwrap_or(false))
    }

    fn probe_fused(&self, width: usize) -> Result<bool> {
        let rows = ONEDNN_MIN_ELEMENTS.div_ceil(width).max(3);
        let planes = [0u32, 1].map(|seed| (0..rows * width).map(|i| probe_luma(i, width, seed)).collect::<Vec<_>>());
        Ok(self.fused_values_differing(&planes[0], &planes[1], width)? == 0)
    }

    /// libtorch's similarity map of half-size lumas `y1` and `y2`, pyiqa's operations.
    fn similarity_of_halves(&self, y1: &Tensor, y2: &Tensor) -> Result<Tensor> {
        similarity(&self.magnitude_of_half(y1)?, &self.magnitude_of_half(y2)?)
    }

    /// How many values of [`fused_similarity`]'s map of planes `a` and `b` (`width` wide) differ in their bits
    /// from libtorch's.
    fn fused_values_differing(&self, a: &[f32], b: &[f32], width: usize) -> Result<usize> {
        let shape = [1, 1, (a.len() / width) as i64, width as i64];
        let (ta, tb) = (Tensor::f_from_slice(a)?.f_view(shape)?, Tensor::f_from_slice(b)?.f_view(shape)?);
        let (libtorch, fused) = (self.similarity_of_halves(&ta, &tb)?, fused_similarity(a, b, width)?);
        let (libtorch, fused) = (cpu_slice::<f32>(&libtorch)?, cpu_slice::<f32>(&fused)?);
        Ok(bits_differing(libtorch, fused))
    }
}

/// A probe plane's value at `i`: multiples of 1/4 in 0..=255 as half-size luma has, spread by a multiplicative
/// hash, with flat rows (zero gradients, where the magnitude's epsilon decides) in the second plane.
fn probe_luma(i: usize, width: usize, seed: u32) -> f32 {
    if seed == 1 && (i / width) % 4 == 1 {
        return 128.0;
    }
    let c = (i as u32 ^ seed.wrapping_mul(0x9e37_79b9)).wrapping_mul(2_654_435_761) >> 8;
    (c % 1021) as f32 / 4.0
}

/// Output rows per task of [`fused_similarity`]'s passes.
const SIMILARITY_BAND_ROWS: usize = 16;

/// The similarity map of half-size lumas `dist` and `reference` (`width` wide), 1×1×H×W float32, with the
/// float32 operations of [`Gmsd::magnitude_of_half`] and [`similarity`] in their order: the gradients and
/// their squared magnitudes in one pass ([`squared_magnitude`]), libtorch's square root (MKL's, which is not
/// correctly rounded, on x86-64), then the similarity in one pass.
fn fused_similarity(dist: &[f32], reference: &[f32], width: usize) -> Result<Tensor> {
    let height = dist.len() / width;
    let shape = [1, 1, height as i64, width as i64];
    let magnitude = |plane: &[f32]| -> Result<Tensor> {
        let mut squared = FreshTensor::<f32>::empty(&shape)?;
        try_for_each_piece(squared.as_mut_slice(), SIMILARITY_BAND_ROWS * width, |i, band| {
            let zeros = zeroed(width, "GMSD padding row")?;
            for (k, out) in band.chunks_exact_mut(width).enumerate() {
                squared_magnitude(window(plane, i * SIMILARITY_BAND_ROWS + k, &zeros), out);
            }
            Ok(())
        })?;
        Ok(squared.into_tensor().f_sqrt_()?)
    };
    let (g1, g2) = (magnitude(dist)?, magnitude(reference)?);
    let (g1, g2) = (cpu_slice::<f32>(&g1)?, cpu_slice::<f32>(&g2)?);
    let mut out = FreshTensor::<f32>::empty(&shape)?;
    for_each_piece(out.as_mut_slice(), SIMILARITY_BAND_ROWS * width, |i, band| {
        let start = i * SIMILARITY_BAND_ROWS * width;
        for ((q, &a), &b) in band.iter_mut().zip(&g1[start..]).zip(&g2[start..]) {
            *q = (a * 2.0 * b + T as f32) / (a * a + b * b + T as f32);
        }
    });
    Ok(out.into_tensor())
}

/// Rows `y` − 1, `y` and `y` + 1 of `plane` (rows as long as `zeros`), with `zeros` outside it: the
/// convolution's zero padding.
fn window<'a>(plane: &'a [f32], y: usize, zeros: &'a [f32]) -> [&'a [f32]; 3] {
    let width = zeros.len();
    let row = |r: usize| plane.get(r * width..(r + 1) * width).unwrap_or(zeros);
    [y.checked_sub(1).map_or(zeros, row), row(y), row(y + 1)]
}

with_fma! {
    /// The squared gradient magnitude of one output row from the rows above, at and below it (`rows`), into
    /// `out`: ix² + iy² + ε with ix and iy the 3×3 convolutions summed as oneDNN does, fused multiply-adds over
    /// the taps in row-major order (zero taps and padding add exact zeros, so they are left out).
    fn squared_magnitude / squared_magnitude_fma(rows: [&[f32]; 3], out: &mut [f32]) {
        let w = out.len();
        let [u, m, d] = rows.map(|r| &r[..w]);
        let t = THIRD;
        // l, c, r: the left, centre and right columns of the 3×3 window (top, middle, bottom).
        let magnitude = |l: [f32; 3], c: [f32; 3], r: [f32; 3]| {
            // Sums in row-major tap order, from the top left.
            let ix = t * l[0];
            let ix = t.mul_add(l[2], (-t).mul_add(r[1], t.mul_add(l[1], (-t).mul_add(r[0], ix))));
            let ix = (-t).mul_add(r[2], ix);
            let iy = t * l[0];
            let iy = (-t).mul_add(l[2], t.mul_add(r[0], t.mul_add(c[0], iy)));
            let iy = (-t).mul_add(r[2], (-t).mul_add(c[2], iy));
            ix * ix + iy * iy + MAGNITUDE_EPS as f32
        };
        let column = |x: usize| [u[x], m[x], d[x]];
        let padded = |x: Option<usize>| x.filter(|&x| x < w).map_or([0.0; 3], column);
        for x in [0, w - 1] {
            out[x] = magnitude(padded(x.checked_sub(1)), column(x), padded(Some(x + 1)));
        }
        if w > 2 {
            let n = w - 2;
            let (ul, uc, ur, ml, mr, dl, dc, dr) =
                (&u[..n], &u[1..n + 1], &u[2..], &m[..n], &m[2..], &d[..n], &d[1..n + 1], &d[2..]);
            for (x, o) in out[1..n + 1].iter_mut().enumerate() {
                *o = magnitude([ul[x], ml[x], dl[x]], [uc[x], 0.0, dc[x]], [ur[x], mr[x], dr[x]]);
            }
        }
    }
}

/// The similarity of gradient magnitudes `g1` and `g2`.
fn similarity(g1: &Tensor, g2: &Tensor) -> Result<Tensor> {
    Ok(g1
        .f_mul_scalar(2.0)?
        .f_mul(g2)?
        .f_add_scalar(T)?
        .f_div(&g1.f_square()?.f_add(&g2.f_square()?)?.f_add_scalar(T)?)?)
}

/// The deviation needs two similarity values; pyiqa returns NaN for one (2×2 or 3×3 images, say).
fn check_size(h: i64, w: i64) -> Result<()> {
    if (h / 2) * (w / 2) < 2 {
        return Err(Error::shape(format!("image is {w}x{h}; gmsd needs at least 4x2 or 2x4 pixels (two 2x2 blocks)")));
    }
    Ok(())
}

/// The score of each image: one float32 reduction per image, shaped as pyiqa's single-image call, so that a
/// batch gives exactly the single scores (a batched reduction splits its sums differently).
fn deviation(quality: &Tensor) -> Result<Tensor> {
    let per_image = (0..quality.size()[0])
        .map(|i| Ok(quality.f_narrow(0, i, 1)?.f_view([1, -1])?.f_std_correction(&[1i64][..], 1, false)?))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::f_cat(&per_image, 0)?)
}

/// Output rows per task of [`half_luma`].
const HALF_BAND_ROWS: usize = 16;

/// The luma of [`rgb_to_y`] averaged over 2×2 blocks ([`scaled_block_mean`]: trailing odd rows and columns
/// dropped), 1×1×H/2×W/2 float32, made from the image's rows in bands on the worker threads. The luma values
/// are integers, so each block's float32 sum is exact.
fn half_luma(luma: &Planes255<'_>) -> Result<Tensor> {
    let (w, h) = luma.size();
    let (ow, oh) = (w / 2, h / 2);
    let mut out = FreshTensor::<f32>::empty(&[1, 1, oh as i64, ow as i64])?;
    if ow > 0 {
        try_for_each_piece(out.as_mut_slice(), HALF_BAND_ROWS * ow, |i, band| {
            let rows = band.len() / ow;
            let mut full = zeroed(2 * rows * w, "GMSD luma rows")?;
            luma.fill(2 * i * HALF_BAND_ROWS, &mut [&mut full[..]]);
            for (pair, out) in full.chunks_exact(2 * w).zip(band.chunks_exact_mut(ow)) {
                let (top, bottom) = pair.split_at(w);
                for (x, o) in out.iter_mut().enumerate() {
                    let sum =
                        top[2 * x] as f32 + top[2 * x + 1] as f32 + bottom[2 * x] as f32 + bottom[2 * x + 1] as f32;
                    *o = sum / 4.0;
                }
            }
            Ok(())
        })?;
    }
    Ok(out.into_tensor())
}

impl DistanceMap for Gmsd {
    /// The gradient magnitude similarity of the 2×2-averaged luma (1 where gradients agree): the score is its
    /// standard deviation (n−1) over the map.
    fn map(&self, dist: &Tensor, reference: &Tensor) -> Result<Tensor> {
        self.similarity(dist, reference)
    }

    fn map_size(&self, height: i64, width: i64) -> (i64, i64) {
        (height / 2, width / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A half-size luma plane in multiples of 1/4, as 2×2 means of integers are: ramps, a flat square (zero
    /// gradients, where ε decides), a sharp edge and hashed noise.
    fn plane(w: usize, h: usize, seed: u32) -> Vec<f32> {
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let noise = ((i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 24) as f32;
                match (x * 4 / w.max(1), y * 4 / h.max(1)) {
                    (0, _) => (x + 2 * y) as f32 % 256.0,
                    (1, 1) => 77.25,
                    (2, _) => {
                        if y % 7 < 3 {
                            12.0
                        } else {
                            240.5
                        }
                    }
                    _ => (noise + seed as f32 * 3.0).min(255.0).round() / 4.0 + 100.0,
                }
            })
            .collect()
    }

    /// The fused map is libtorch's to the bit on this CPU, at the sizes pyiqa's images give: so the fast path
    /// is taken here, and the probe that guards it elsewhere has a known answer.
    #[test]
    fn fused_similarity_equals_libtorch_bit_for_bit() {
        let gmsd = Gmsd::new(Device::Cpu).unwrap();
        for (w, h) in [(960, 540), (256, 192), (144, 143), (1, 20481), (2, 10241), (3, 6827), (517, 41)] {
            let (a, b) = (plane(w, h, 0), plane(w, h, 1));
            assert_eq!(fused_similarity(&a, &b, w).unwrap().size(), [1, 1, h as i64, w as i64]);
            let differ = gmsd.fused_values_differing(&a, &b, w).unwrap();
            assert_eq!(differ, 0, "{w}x{h}: {differ} of {} values differ", w * h);
            assert!(gmsd.fused_matches_libtorch(w), "{w}: the probe disagrees with this test");
        }
    }
}
