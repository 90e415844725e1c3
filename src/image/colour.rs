//! Colour conversions as tensor ops on N×3×H×W batches, with pyiqa's coefficients and operation order.
use super::{Frame, Image, RowConverter};
use crate::error::Result;
use crate::runtime::{bands_of_planes, bits_differing, for_each_piece, Probed};
use crate::tensor::{cpu_slice, FreshTensor};
use tch::{Device, Kind, Tensor};

/// RGB → YIQ matrix (rows: Y, I, Q), the conversion pyiqa's `to_y_channel` uses by default.
const RGB_TO_YIQ: [f32; 9] = [0.299, 0.587, 0.114, 0.5959, -0.2746, -0.3213, 0.2115, -0.5227, 0.3112];
const KR: f32 = RGB_TO_YIQ[0];
const KG: f32 = RGB_TO_YIQ[1];
const KB: f32 = RGB_TO_YIQ[2];

/// Defines `fn $name` and, on x86-64, its copies `$fast` compiled with the target features `$feature` (string
/// literals; `"avx512f" / "avx2", fn f / f_avx512 / f_avx2` for two tiers), which `$name` tries in order where the
/// CPU has them. The body is written into every copy; the arithmetic must be in it or in functions it inlines or
/// closures it defines (which inherit the feature), not in closures handed in from outside. Rust never fuses a
/// multiply and an add on its own, so a wider copy rounds as the baseline one does.
macro_rules! with_target_feature {
    ($($feature:tt)/+, $(#[$doc:meta])* $vis:vis fn $name:ident $(/ $fast:ident)+ ($($arg:ident: $ty:ty),*)
        $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            $crate::image::colour::with_target_feature!(@try ($($arg),*) $($feature => $fast),+);
            $body
        }
        $crate::image::colour::with_target_feature!(
            @copies [($($arg: $ty),*) $(-> $ret)?] $body $($feature => $fast),+
        );
    };
    // One tier after the other: the call of the first copy whose feature the CPU has.
    (@try ($($arg:ident),*) $feature:tt => $fast:ident $(, $more:tt => $more_fast:ident)*) => {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!($feature) {
            // SAFETY: the CPU has the feature (checked just above).
            return unsafe { $fast($($arg),*) };
        }
        $crate::image::colour::with_target_feature!(@try ($($arg),*) $($more => $more_fast),*);
    };
    (@try ($($arg:ident),*)) => {};
    (@copies [$($signature:tt)*] $body:block $feature:tt => $fast:ident $(, $more:tt => $more_fast:ident)*) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $fast $($signature)* $body
        $crate::image::colour::with_target_feature!(@copies [$($signature)*] $body $($more => $more_fast),*);
    };
    (@copies [$($signature:tt)*] $body:block) => {};
}
pub(crate) use with_target_feature;

/// [`with_target_feature`] with FMA instructions: baseline x86-64 has none, so [`LumaFormula::luma`]'s `mul_add`
/// would call libm.
macro_rules! with_fma {
    ($($definition:tt)*) => {
        $crate::image::colour::with_target_feature!("fma", $($definition)*);
    };
}
pub(crate) use with_fma;

/// How libtorch rounds one pixel's float32 luma in pyiqa's YIQ product. pyiqa's `matmul` of the N×H×W×3
/// permuted batch runs as a batched product of H matrices W×3 by 3×3; libtorch computes it with its own scalar
/// loop when 9·W < 400 (separate multiplies and adds on x86-64) and with the BLAS otherwise, whose kernel
/// depends on the CPU (MKL: separate on an AVX2 Xeon, fused multiply-adds on AVX-512 ones). So the luma
/// depends on the width and the CPU, and is found by [`luma_formula`] rather than assumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LumaFormula {
    /// (r·kr + g·kg) + b·kb.
    Separate,
    /// fma(b, kb, fma(g, kg, r·kr)): accumulation over r, g, b with fused multiply-adds.
    FusedForward,
    /// fma(r, kr, fma(g, kg, b·kb)): the same, accumulated from b.
    FusedBackward,
}

impl LumaFormula {
    const CANDIDATES: [LumaFormula; 3] = [Self::Separate, Self::FusedForward, Self::FusedBackward];

    /// One pixel's luma. `mul_add` is a libm call unless inlined into code compiled with FMA ([`with_fma`]).
    #[inline(always)]
    pub fn luma(self, r: f32, g: f32, b: f32) -> f32 {
        match self {
            Self::Separate => r * KR + g * KG + b * KB,
            Self::FusedForward => b.mul_add(KB, g.mul_add(KG, r * KR)),
            Self::FusedBackward => r.mul_add(KR, g.mul_add(KG, b * KB)),
        }
    }

    /// The luma of each of `pixels` (r, g, b) times `scale`, rounded half to even when `round`, into `out`.
    pub fn fill(self, out: &mut [f32], scale: f32, round: bool, pixels: impl Iterator<Item = [f32; 3]>) {
        fill_luma(self, out, scale, round, pixels)
    }
}

with_fma! {
    fn fill_luma / fill_luma_fma(
        formula: LumaFormula,
        out: &mut [f32],
        scale: f32,
        round: bool,
        pixels: impl Iterator<Item = [f32; 3]>
    ) {
        // The formula chosen outside the loops (a match per pixel kept them scalar).
        match formula {
            LumaFormula::Separate => fill_luma_with(out, scale, round, pixels, |[r, g, b]| {
                LumaFormula::Separate.luma(r, g, b)
            }),
            LumaFormula::FusedForward => fill_luma_with(out, scale, round, pixels, |[r, g, b]| {
                LumaFormula::FusedForward.luma(r, g, b)
            }),
            LumaFormula::FusedBackward => fill_luma_with(out, scale, round, pixels, |[r, g, b]| {
                LumaFormula::FusedBackward.luma(r, g, b)
            }),
        }
    }
}

#[inline(always)]
fn fill_luma_with(
    out: &mut [f32],
    scale: f32,
    round: bool,
    pixels: impl Iterator<Item = [f32; 3]>,
    luma: impl Fn([f32; 3]) -> f32,
) {
    let pixels = out.iter_mut().zip(pixels);
    if round {
        for (y, rgb) in pixels {
            *y = round_ties_even(luma(rgb) * scale);
        }
    } else {
        for (y, rgb) in pixels {
            *y = luma(rgb) * scale;
        }
    }
}

/// The 8-bit colours the product is probed with: enough that each pair of candidate formulas differs on some
/// (tested), spread over the colour cube by a multiplicative hash.
const PROBE_COLOURS: usize = 1024;

fn probe_colour(i: usize) -> [f32; 3] {
    let c = (i as u32).wrapping_mul(2_654_435_761) >> 8;
    [(c >> 16) as f32 / 255.0, ((c >> 8) & 255) as f32 / 255.0, (c & 255) as f32 / 255.0]
}

/// The formula that equals libtorch's luma product bit for bit for images `width` wide on this CPU, or `None`
/// where no candidate does (then the product itself is computed). Found at the first image of each width by
/// running pyiqa's product on probe colours laid out `width` wide, then remembered.
pub fn luma_formula(width: usize) -> Option<LumaFormula> {
    static FOUND: Probed<usize, Option<LumaFormula>> = Probed::new();
    FOUND.get_or_probe(width, || probe_luma_formula(width))
}

fn probe_luma_formula(width: usize) -> Option<LumaFormula> {
    if width == 0 {
        return None;
    }
    let pixels = PROBE_COLOURS.div_ceil(width) * width;
    let colour = |i: usize| probe_colour(i % PROBE_COLOURS);
    let planes: Vec<f32> = (0..3).flat_map(|c| (0..pixels).map(move |i| colour(i)[c])).collect();
    let rgb = Tensor::f_from_slice(&planes).ok()?.f_view([1, 3, (pixels / width) as i64, width as i64]).ok()?;
    let product = rgb_to_y_matmul(&rgb, 1.0).ok()?.f_contiguous().ok()?;
    let product = Vec::<f32>::try_from(product.f_flatten(0, -1).ok()?).ok()?;
    let mut luma = vec![0f32; pixels];
    LumaFormula::CANDIDATES.into_iter().find(|formula| {
        formula.fill(&mut luma, 1.0, false, (0..pixels).map(colour));
        bits_differing(&luma, &product) == 0
    })
}

/// Luma (the Y of YIQ) of an RGB batch, as N×1×H×W, scaled to `out_range`; rounded to integers when
/// `out_range >= 255`, which makes the values those of a MATLAB uint8 image.
/// Computed as pyiqa does, so that values on a rounding boundary fall the same way: float32 on the CPU in
/// [`rgb_to_y_cpu`], everything else as the full 3×3 matrix product in the input's dtype.
pub fn rgb_to_y(rgb: &Tensor, out_range: f64) -> Result<Tensor> {
    if rgb.device() == Device::Cpu && rgb.kind() == Kind::Float {
        rgb_to_y_cpu(rgb, out_range)
    } else {
        rgb_to_y_matmul(rgb, out_range)
    }
}

/// pyiqa's conversion: the 3×3 YIQ product, its Y plane kept.
fn rgb_to_y_matmul(rgb: &Tensor, out_range: f64) -> Result<Tensor> {
    let weights =
        Tensor::f_from_slice(&RGB_TO_YIQ)?.f_view([3, 3])?.f_tr()?.f_to_device(rgb.device())?.f_to_kind(rgb.kind())?;
    let yiq = rgb.f_permute([0, 2, 3, 1])?.f_matmul(&weights)?.f_permute([0, 3, 1, 2])?;
    let y = yiq.f_narrow(1, 0, 1)?.f_mul_scalar(out_range)?;
    Ok(if out_range >= 255.0 { y.f_round()? } else { y })
}

/// [`rgb_to_y_matmul`] for a float32 CPU batch in one pass of the [`luma_formula`] for its width; the product,
/// which also computes I and Q, was a third of GMSD's time. Where no formula is known, the product of each
/// image alone: pyiqa scores one image at a time, and a batch must give the single images' values.
fn rgb_to_y_cpu(rgb: &Tensor, out_range: f64) -> Result<Tensor> {
    let (n, c, h, w) = rgb.size4()?;
    if c != 3 {
        return rgb_to_y_matmul(rgb, out_range);
    }
    let Some(formula) = luma_formula(w as usize) else {
        let singles =
            (0..n).map(|i| rgb_to_y_matmul(&rgb.f_narrow(0, i, 1)?, out_range)).collect::<Result<Vec<_>>>()?;
        return Ok(Tensor::f_cat(&singles, 0)?);
    };
    let rgb = rgb.f_contiguous()?;
    let plane = (h * w) as usize;
    let input = cpu_slice::<f32>(&rgb)?;
    let mut out = FreshTensor::<f32>::empty(&[n, 1, h, w])?;
    let output = out.as_mut_slice();
    for (planes, y_plane) in input.chunks_exact(3 * plane).zip(output.chunks_exact_mut(plane)) {
        let (r, gb) = planes.split_at(plane);
        let (g, b) = gb.split_at(plane);
        let pixels = r.iter().zip(g).zip(b).map(|((&r, &g), &b)| [r, g, b]);
        formula.fill(y_plane, out_range as f32, out_range >= 255.0, pixels);
    }
    Ok(out.into_tensor())
}

/// `f32::round_ties_even` (torch.round: halves to even) without the call to libm's `rintf` that it compiles
/// to on baseline x86-64 (a quarter of GMSD's luma pass): below 2^23, adding and subtracting 2^23 rounds to an
/// integer in the default rounding mode; larger values, infinities and NaN are returned as they are (they are
/// integers already or stay what they are). Tested equal on every float32 bit pattern.
#[inline(always)]
fn round_ties_even(v: f32) -> f32 {
    const TWO_23: f32 = 8_388_608.0;
    if v.abs() < TWO_23 {
        ((v.abs() + TWO_23) - TWO_23).copysign(v)
    } else {
        v
    }
}

/// The luma pyiqa's `to_y_channel(img, 255, color_space)` takes: the Y of YIQ or of BT.601 YCbCr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Luma {
    Yiq,
    YCbCr,
}

impl Luma {
    /// The luma of an RGB batch in [0, 1] as N×1×H×W on 0..255, rounded to integers as pyiqa rounds it.
    pub fn y255(self, rgb: &Tensor) -> Result<Tensor> {
        match self {
            Luma::Yiq => rgb_to_y(rgb, 255.0),
            Luma::YCbCr => {
                // pyiqa's `rgb2ycbcr` op for op, one image at a time as pyiqa scores them (the product's rounding
                // depends on its shape, see LumaFormula): (RGB·M + bias) / 255, its Y times 255, rounded.
                let m = Tensor::f_from_slice(&RGB_TO_YCBCR)?.f_view([3, 3])?.f_to_kind(rgb.kind())?;
                let m = m.f_to_device(rgb.device())?;
                let bias = Tensor::f_from_slice(&[16f32, 128.0, 128.0])?.f_view([1, 3, 1, 1])?;
                let bias = bias.f_to_kind(rgb.kind())?.f_to_device(rgb.device())?;
                let one = |i: i64| -> Result<Tensor> {
                    let x = rgb.f_narrow(0, i, 1)?.f_permute([0, 2, 3, 1])?.f_matmul(&m)?.f_permute([0, 3, 1, 2])?;
                    let y = x.f_add(&bias)?.f_div_scalar(255.0)?.f_narrow(1, 0, 1)?;
                    Ok(y.f_mul_scalar(255.0)?.f_round()?)
                };
                let planes = (0..rgb.size()[0]).map(one).collect::<Result<Vec<_>>>()?;
                Ok(Tensor::f_cat(&planes, 0)?)
            }
        }
    }
}

/// pyiqa's RGB (0..1) to BT.601 YCbCr (0..255 before its bias) matrix, rows R, G, B.
const RGB_TO_YCBCR: [f32; 9] = [65.481, -37.797, 112.0, 128.553, -74.203, -93.786, 24.966, 112.0, -18.214];

/// pyiqa's `preprocess_rgb`: luma or all channels, scaled to `data_range` (rounded when 255), then `kind`.
pub fn preprocess(rgb: &Tensor, luma_only: bool, data_range: f64, kind: Kind) -> Result<Tensor> {
    let x = if luma_only {
        rgb_to_y(rgb, data_range)?
    } else {
        let x = rgb.f_mul_scalar(data_range)?;
        if data_range == 255.0 {
            x.f_round()?
        } else {
            x
        }
    };
    Ok(x.f_to_kind(kind)?)
}

/// [`preprocess`]'s planes at data range 255 in float64, made from the rows of an 8-bit image or of a video
/// frame's RGB conversion instead of from their float32 tensor: the same values (the luma of the same float32
/// pixels by the same formula, rounded; or each channel scaled to 255 and rounded, which for 8-bit images is
/// the bytes themselves) without the 3×H×W float32 planes. Made whole ([`Planes255::tensor`]) or a band of
/// rows at a time ([`Planes255::fill`]), so that a metric working in bands holds no whole plane at all.
pub struct Planes255<'a> {
    source: Source<'a>,
    luma: Option<LumaFormula>,
    width: usize,
    height: usize,
}

enum Source<'a> {
    /// Bytes per pixel and the R, G, B byte offsets within a pixel.
    Rgb8(&'a Image<'a>, usize, [usize; 3]),
    Frame(&'a Frame<'a>),
}

impl<'a> Planes255<'a> {
    /// `None` for pixel formats other than 8-bit ones, and for luma at a width where libtorch computes the
    /// luma as a product no formula here equals.
    pub fn of_8bit(image: &'a Image<'a>, luma_only: bool) -> Option<Self> {
        let (step, channels) = image.rgb8_layout()?;
        Self::new(Source::Rgb8(image, step, channels), image.width(), image.height(), luma_only)
    }

    /// `None` for luma at a width where libtorch computes the luma as a product no formula here equals.
    pub fn of_frame(frame: &'a Frame<'a>, luma_only: bool) -> Option<Self> {
        Self::new(Source::Frame(frame), frame.width(), frame.height(), luma_only)
    }

    fn new(source: Source<'a>, width: u32, height: u32, luma_only: bool) -> Option<Self> {
        let (width, height) = (width as usize, height as usize);
        let luma = if luma_only { Some(luma_formula(width)?) } else { None };
        Some(Planes255 { source, luma, width, height })
    }

    /// 1 (luma) or 3 (R, G, B).
    pub fn channels(&self) -> usize {
        if self.luma.is_some() {
            1
        } else {
            3
        }
    }

    /// (width, height).
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The whole planes, 1×C×H×W, made in bands of rows on the worker threads.
    pub fn tensor(&self) -> Result<Tensor> {
        const BAND: usize = 16;
        let (w, h) = (self.width, self.height);
        let mut fresh = FreshTensor::<f64>::empty(&[1, self.channels() as i64, h as i64, w as i64])?;
        let mut bands = bands_of_planes(fresh.as_mut_slice(), h * w, BAND * w);
        for_each_piece(&mut bands, 1, |i, piece| self.fill(i * BAND, &mut piece[0]));
        Ok(fresh.into_tensor())
    }

    /// Writes rows `first..` of each plane into `out` (one slice per channel, whole rows of the width).
    pub fn fill(&self, first: usize, out: &mut [&mut [f64]]) {
        let w = self.width;
        let rows = out.first().map_or(0, |o| o.len() / w);
        let mut luma = vec![0f32; if self.luma.is_some() { w } else { 0 }];
        match self.source {
            Source::Rgb8(image, step, [ri, gi, bi]) => {
                let lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
                for j in 0..rows {
                    let pixels = image.row(first + j).chunks_exact(step);
                    let row = j * w..(j + 1) * w;
                    match self.luma {
                        Some(formula) => {
                            let rgb = pixels.map(|p| [lut[p[ri] as usize], lut[p[gi] as usize], lut[p[bi] as usize]]);
                            formula.fill(&mut luma, 255.0, true, rgb);
                            out[0][row].iter_mut().zip(&luma).for_each(|(o, &v)| *o = v as f64);
                        }
                        None => {
                            for (plane, index) in out.iter_mut().zip([ri, gi, bi]) {
                                let values = pixels.clone().map(|p| p[index] as f64);
                                plane[row.clone()].iter_mut().zip(values).for_each(|(o, v)| *o = v);
                            }
                        }
                    }
                }
            }
            Source::Frame(frame) => {
                let mut converter = RowConverter::new(frame);
                let mut rgb = vec![0f32; 3 * w];
                for j in 0..rows {
                    let (r, rest) = rgb.split_at_mut(w);
                    let (g, b) = rest.split_at_mut(w);
                    converter.convert(first + j, r, g, b);
                    let row = j * w..(j + 1) * w;
                    match self.luma {
                        Some(formula) => {
                            let pixels = r.iter().zip(g.iter()).zip(b.iter()).map(|((&r, &g), &b)| [r, g, b]);
                            formula.fill(&mut luma, 255.0, true, pixels);
                            out[0][row].iter_mut().zip(&luma).for_each(|(o, &v)| *o = v as f64);
                        }
                        None => {
                            for (plane, channel) in out.iter_mut().zip([&*r, &*g, &*b]) {
                                let values = channel.iter().map(|&v| round_ties_even(v * 255.0) as f64);
                                plane[row.clone()].iter_mut().zip(values).for_each(|(o, v)| *o = v);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Scores each pair from the planes `planes` makes of each input's rows; `None` when it makes none for some
/// input (the tensor path then scores the batch), checked for every image first so that no pair is scored
/// twice.
pub fn score_by_rows<'a, P>(
    dists: &'a [P],
    refs: Option<&'a [P]>,
    planes: impl Fn(&'a P) -> Option<Planes255<'a>>,
    score: impl Fn(&Planes255<'_>, &Planes255<'_>) -> Result<f64>,
) -> Option<Result<Vec<f64>>> {
    let refs = refs?;
    let dists: Vec<_> = dists.iter().map(&planes).collect::<Option<_>>()?;
    let refs: Vec<_> = refs.iter().map(&planes).collect::<Option<_>>()?;
    Some(dists.iter().zip(&refs).map(|(x, y)| score(x, y)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straight from 8-bit rows, the planes [`preprocess`] makes from the pixels' float32 tensor, bit for bit:
    /// luma (at a width under and one over libtorch's 400-element switch to the BLAS) and RGB, for every byte
    /// value in every channel, through RGB, BGRA and gray layouts; and a band of rows alone, as the SSIM bands
    /// fill it, equals those rows of the whole planes.
    #[test]
    fn planes_of_8bit_rows_equal_preprocess_of_the_tensor() {
        use super::super::{to_batch_tensor, PixelFormat};
        for (w, h) in [(16usize, 48usize), (300, 3)] {
            for (format, channels) in [(PixelFormat::Rgb8, 3), (PixelFormat::Bgra8, 4), (PixelFormat::Gray8, 1)] {
                let bytes: Vec<u8> = (0..w * h * channels).map(|i| (i * 7 + i / 3) as u8).collect();
                let image = Image::new(&bytes, w as u32, h as u32, 0, format).unwrap();
                let tensor = to_batch_tensor(&[image], Device::Cpu).unwrap();
                for luma_only in [true, false] {
                    let want = preprocess(&tensor, luma_only, 255.0, Kind::Double).unwrap();
                    let planes = Planes255::of_8bit(&image, luma_only).unwrap();
                    let got = planes.tensor().unwrap();
                    assert_eq!(got.size(), want.size());
                    let (a, b) = (
                        Vec::<f64>::try_from(got.flatten(0, -1)).unwrap(),
                        Vec::<f64>::try_from(want.flatten(0, -1)).unwrap(),
                    );
                    assert!(
                        a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{format:?} {w}x{h} luma {luma_only}"
                    );
                    let (first, rows) = (1, 2);
                    let mut band = vec![0f64; planes.channels() * rows * w];
                    planes.fill(first, &mut band.chunks_mut(rows * w).collect::<Vec<_>>());
                    let want_band: Vec<f64> =
                        b.chunks(h * w).flat_map(|plane| &plane[first * w..(first + rows) * w]).copied().collect();
                    assert_eq!(band, want_band, "{format:?} {w}x{h} luma {luma_only}: band of rows 1..3");
                }
            }
        }
    }

    /// Every float32 bit pattern rounds as `f32::round_ties_even` does (NaN payloads aside: NaN stays NaN).
    #[test]
    fn inline_rounding_equals_round_ties_even() {
        let mismatches = (0..=u32::MAX)
            .map(f32::from_bits)
            .filter(|v| {
                let (a, b) = (round_ties_even(*v), v.round_ties_even());
                !(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
            })
            .count();
        assert_eq!(mismatches, 0);
    }

    /// The CPU pass with the formula selected for the batch's width equals pyiqa's product of each image alone,
    /// bit for bit, and a formula was selected (the pass did not fall back to the product itself).
    fn assert_same_luma(rgb: &Tensor, what: &str) {
        let (n, _, _, w) = rgb.size4().unwrap();
        let formula = luma_formula(w as usize);
        assert!(formula.is_some(), "{what}: no candidate formula equals libtorch's product {w} wide on this CPU");
        for range in [1.0, 255.0] {
            let fast = Vec::<f32>::try_from(rgb_to_y_cpu(rgb, range).unwrap().flatten(0, -1)).unwrap();
            let singles: Vec<Tensor> = (0..n).map(|i| rgb_to_y_matmul(&rgb.narrow(0, i, 1), range).unwrap()).collect();
            let product = Vec::<f32>::try_from(Tensor::cat(&singles, 0).flatten(0, -1)).unwrap();
            assert_eq!(fast.len(), product.len());
            let differing = bits_differing(&fast, &product);
            assert_eq!(
                differing,
                0,
                "{what} ({formula:?}), range {range}: {differing} of {} values differ",
                fast.len()
            );
        }
    }

    /// The one-pass luma equals pyiqa's matrix product bit for bit: every 8-bit colour laid out 32 wide (below
    /// 45, libtorch's own loop) and 4096 wide (the BLAS), random floats in [0,1] in batches and at sizes on both
    /// sides of that width.
    #[test]
    fn cpu_luma_equals_matrix_product() {
        let levels = Tensor::arange(256, (Kind::Float, Device::Cpu)) / 255.0;
        let r = levels.view([256, 1, 1]).expand([256, 256, 256], false).reshape([-1]);
        let g = levels.view([1, 256, 1]).expand([256, 256, 256], false).reshape([-1]);
        let b = levels.view([1, 1, 256]).expand([256, 256, 256], false).reshape([-1]);
        let every_colour = Tensor::stack(&[r, g, b], 0);
        for width in [32, 4096] {
            let image = every_colour.view([1, 3, (1 << 24) / width, width]);
            assert_same_luma(&image, &format!("every 8-bit colour, {width} wide"));
        }
        tch::manual_seed(3);
        for (n, h, w) in [(2, 301, 257), (1, 1, 1), (3, 7, 5), (1, 37, 44), (2, 29, 45), (1, 1080, 1920)] {
            assert_same_luma(&Tensor::rand([n, 3, h, w], (Kind::Float, Device::Cpu)), &format!("random {n}x{h}x{w}"));
        }
    }

    /// Each pair of candidate formulas gives different values on some probe colours, so the probe cannot take
    /// one for another.
    #[test]
    fn probe_colours_tell_the_candidates_apart() {
        let luma = |f: LumaFormula| {
            let mut out = vec![0f32; PROBE_COLOURS];
            f.fill(&mut out, 1.0, false, (0..PROBE_COLOURS).map(probe_colour));
            out
        };
        for (i, &a) in LumaFormula::CANDIDATES.iter().enumerate() {
            for &b in &LumaFormula::CANDIDATES[i + 1..] {
                let differing = bits_differing(&luma(a), &luma(b));
                assert!(differing >= 20, "{a:?} and {b:?} differ on only {differing} probe colours");
            }
        }
    }
}
