//! YUV → RGB: the one conversion every frame goes through before any metric sees it. A frame's score is by
//! definition the metric's score on the RGB image this module makes.
//!
//! For a frame of bit depth `b` (the sample value `v` of semi-planar formats is the stored word >> (16 − b)):
//!
//! 1. **Range.** Limited: `Y' = (v − 16·2^(b−8)) / (219·2^(b−8))`,
//!    `Pb, Pr = (v − 128·2^(b−8)) / (224·2^(b−8))`.
//!    Full: `Y' = v / (2^b − 1)`, `Pb, Pr = (v − 2^(b−1)) / (2^b − 1)`. Gray frames have `Pb = Pr = 0`.
//! 2. **Chroma upsampling**, bilinear, on the `Pb`, `Pr` planes (rows first, then columns). Chroma sample `k`
//!    sits at luma position `k·f + o` for the subsampling factor `f` of that direction, with `o` = 0 where the
//!    siting is co-sited and `(f − 1)/2` where it is centred ([`ChromaSiting`]: left = co-sited horizontally,
//!    centred vertically; center = centred both ways; top-left = co-sited both ways). The luma sample at `x`
//!    reads `u = (x − o)/f` and takes `(1 − t)·c[i] + t·c[i + 1]` with `i = ⌊u⌋`, `t = u − i`, indices
//!    clamped to the plane (edge samples repeated).
//! 3. **Matrix** (non-constant luminance, `Kg = 1 − Kr − Kb`; [`ColorMatrix`] gives Kr, Kb):
//!    `R = Y' + 2(1 − Kr)·Pr`, `G = Y' − (2Kb(1 − Kb)/Kg)·Pb − (2Kr(1 − Kr)/Kg)·Pr`,
//!    `B = Y' + 2(1 − Kb)·Pb`.
//! 4. **Clamping** of R, G, B to [0, 1]. No rounding: the values stay float32, as metrics take them.
//!
//! Computed in float32 (`(v − offset)·scale` per sample, the blends and the matrix with float32 constants
//! derived in float64): within about 1e-6 of the same formulas in float64.
use super::frame::{ColorMatrix, ColorRange, Frame, PlaneLayout};
use crate::error::{Error, Result};
use crate::runtime::{for_each_piece, worker_threads};
use crate::tensor::{FreshTensor, StagingTensor};
use tch::{Device, Tensor};

/// The constants of one frame's conversion.
struct Coefficients {
    /// Normalised value = (sample − offset) · scale, for luma and chroma.
    luma: (f32, f32),
    chroma: (f32, f32),
    /// R = Y' + r_pr·Pr; G = Y' + g_pb·Pb + g_pr·Pr; B = Y' + b_pb·Pb.
    r_pr: f32,
    g_pb: f32,
    g_pr: f32,
    b_pb: f32,
}

impl Coefficients {
    fn of(bits: u8, matrix: ColorMatrix, range: ColorRange) -> Coefficients {
        let unit = (1u32 << (bits - 8)) as f64;
        let max = ((1u32 << bits) - 1) as f64;
        let ((luma_offset, luma_span), (chroma_offset, chroma_span)) = match range {
            ColorRange::Limited => ((16.0 * unit, 219.0 * unit), (128.0 * unit, 224.0 * unit)),
            ColorRange::Full => ((0.0, max), ((1u32 << (bits - 1)) as f64, max)),
        };
        let (kr, kb) = matrix.coefficients();
        let kg = 1.0 - kr - kb;
        Coefficients {
            luma: (luma_offset as f32, (1.0 / luma_span) as f32),
            chroma: (chroma_offset as f32, (1.0 / chroma_span) as f32),
            r_pr: (2.0 * (1.0 - kr)) as f32,
            g_pb: (-2.0 * kb * (1.0 - kb) / kg) as f32,
            g_pr: (-2.0 * kr * (1.0 - kr) / kg) as f32,
            b_pb: (2.0 * (1.0 - kb)) as f32,
        }
    }
}

/// One bilinear tap pair: output sample reads `w0·c[i0] + w1·c[i1]`.
#[derive(Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    w0: f32,
    w1: f32,
}

/// The tap of output sample `x` reading a chroma line of `len` samples at factor 2^shift, offset `offset`.
fn tap(x: usize, len: usize, shift: u32, offset: f64) -> Tap {
    let u = (x as f64 - offset) / (1u32 << shift) as f64;
    let i = u.floor();
    let t = u - i;
    let clamp = |k: i64| k.clamp(0, len as i64 - 1) as usize;
    Tap { i0: clamp(i as i64), i1: clamp(i as i64 + 1), w0: (1.0 - t) as f32, w1: t as f32 }
}

/// Reads component `component` (of `per` interleaved ones) of a row's samples as normalised floats.
#[inline(always)]
fn normalise(
    frame: &Frame<'_>,
    row: &[u8],
    per: usize,
    component: usize,
    (offset, scale): (f32, f32),
    out: &mut [f32],
) {
    let format = frame.format();
    let value = |v: u16| (v as f32 - offset) * scale;
    match (format.bytes_per_sample(), per) {
        (1, 1) => out.iter_mut().zip(row).for_each(|(o, &v)| *o = value(v as u16)),
        (1, _) => out.iter_mut().zip(row.chunks_exact(per)).for_each(|(o, s)| *o = value(s[component] as u16)),
        _ => {
            let shift = if format.layout() == PlaneLayout::SemiPlanar { 16 - format.bit_depth() as u32 } else { 0 };
            for (o, s) in out.iter_mut().zip(row.chunks_exact(2 * per)) {
                *o = value(u16::from_le_bytes([s[2 * component], s[2 * component + 1]]) >> shift);
            }
        }
    }
}

/// How a chroma row becomes a luma-wide row: the general taps, and the common cases written out so that they
/// vectorise (the same products and sums as their taps).
enum Horizontal {
    /// Full chroma width.
    Copy,
    /// Factor 2, co-sited: out[2k] = c[k], out[2k+1] = ½·c[k] + ½·c[k+1].
    CoSitedHalf,
    /// Factor 2, centred: out[2k] = ¼·c[k−1] + ¾·c[k], out[2k+1] = ¾·c[k] + ¼·c[k+1].
    CentredHalf,
    Taps(Vec<Tap>),
}

impl Horizontal {
    fn new(width: usize, chroma_width: usize, shift: u32, offset: f64) -> Horizontal {
        match (shift, offset) {
            (0, _) => Horizontal::Copy,
            (1, 0.0) => Horizontal::CoSitedHalf,
            (1, 0.5) => Horizontal::CentredHalf,
            _ => Horizontal::Taps((0..width).map(|x| tap(x, chroma_width, shift, offset)).collect()),
        }
    }

    #[inline(always)]
    fn apply(&self, c: &[f32], out: &mut [f32]) {
        let last = c.len() - 1;
        match self {
            Horizontal::Copy => out.copy_from_slice(c),
            // The pairs of all but the last chroma sample, without index clamping so that they vectorise;
            // then the last pair, whose right neighbour is the sample itself.
            Horizontal::CoSitedHalf => {
                let (pairs, end) = out.split_at_mut(2 * last);
                for (pair, (&a, &b)) in pairs.chunks_exact_mut(2).zip(c.iter().zip(&c[1..])) {
                    pair[0] = a;
                    pair[1] = 0.5 * a + 0.5 * b;
                }
                let a = c[last];
                end[0] = a;
                end[1] = 0.5 * a + 0.5 * a;
            }
            // The first pair's left neighbour is the sample itself; the pairs after it read three plain slices
            // (an iterator chained in front of one kept this loop scalar: 3.5× slower).
            Horizontal::CentredHalf => {
                let (pairs, end) = out.split_at_mut(2 * last);
                if let Some((first, pairs)) = pairs.split_first_chunk_mut::<2>() {
                    let (a, after) = (c[0], c[1]);
                    *first = [0.25 * a + 0.75 * a, 0.75 * a + 0.25 * after];
                    let neighbours = c.iter().zip(&c[1..]).zip(&c[2..]);
                    for (pair, ((&before, &a), &after)) in pairs.chunks_exact_mut(2).zip(neighbours) {
                        pair[0] = 0.25 * before + 0.75 * a;
                        pair[1] = 0.75 * a + 0.25 * after;
                    }
                }
                let (before, a) = (c[last.saturating_sub(1)], c[last]);
                end[0] = 0.25 * before + 0.75 * a;
                end[1] = 0.75 * a + 0.25 * a;
            }
            Horizontal::Taps(taps) => {
                for (o, tap) in out.iter_mut().zip(taps) {
                    *o = tap.w0 * c[tap.i0] + tap.w1 * c[tap.i1];
                }
            }
        }
    }
}

/// Scratch rows of one band of output rows.
struct Scratch {
    luma: Vec<f32>,
    /// The two chroma rows a vertical tap reads, and their blend.
    rows: [Vec<f32>; 2],
    blended: Vec<f32>,
    /// Pb and Pr upsampled to the luma width.
    full: [Vec<f32>; 2],
}

/// Converts the rows of one frame, one at a time, into R, G and B rows (see the module documentation); one per
/// thread, as it keeps its scratch rows.
pub(crate) struct RowConverter<'f> {
    frame: &'f Frame<'f>,
    c: Coefficients,
    /// Chroma rows and the samples interleaved per chroma plane row (2 for semi-planar).
    chroma_rows: usize,
    per: usize,
    has_chroma: bool,
    vertical: (u32, f64),
    horizontal: Horizontal,
    s: Scratch,
}

impl<'f> RowConverter<'f> {
    pub(crate) fn new(frame: &'f Frame<'f>) -> RowConverter<'f> {
        let (w, format, color) = (frame.width() as usize, frame.format(), frame.color());
        let shifts = format.subsampling().shifts();
        let (cw, ch, per) = format.plane_size(1, frame.width(), frame.height());
        let (ox, oy) = color.siting.offsets(shifts);
        RowConverter {
            frame,
            c: Coefficients::of(format.bit_depth(), color.matrix, color.range),
            chroma_rows: ch,
            per,
            has_chroma: format.plane_count() > 1,
            vertical: (shifts.1, oy),
            horizontal: Horizontal::new(w, cw, shifts.0, ox),
            s: Scratch {
                luma: vec![0.0; w],
                rows: [vec![0.0; cw], vec![0.0; cw]],
                blended: vec![0.0; cw],
                full: [vec![0.0; w], vec![0.0; w]],
            },
        }
    }

    /// Writes row `y` of the frame's R, G and B planes (each the frame's width).
    pub(crate) fn convert(&mut self, y: usize, r: &mut [f32], g: &mut [f32], b: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { self.convert_avx2(y, r, g, b) };
        }
        self.convert_any(y, r, g, b)
    }

    /// [`RowConverter::convert`] in 8-wide vectors: the same operations (Rust fuses no multiply-add), so the
    /// same values.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn convert_avx2(&mut self, y: usize, r: &mut [f32], g: &mut [f32], b: &mut [f32]) {
        self.convert_any(y, r, g, b)
    }

    #[inline(always)]
    fn convert_any(&mut self, y: usize, r: &mut [f32], g: &mut [f32], b: &mut [f32]) {
        let (frame, c, s) = (self.frame, &self.c, &mut self.s);
        normalise(frame, frame.row(0, y), 1, 0, c.luma, &mut s.luma);
        if !self.has_chroma {
            for (((r, g), b), &luma) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()).zip(&s.luma) {
                let v = luma.clamp(0.0, 1.0);
                (*r, *g, *b) = (v, v, v);
            }
            return;
        }
        let vertical = tap(y, self.chroma_rows, self.vertical.0, self.vertical.1);
        for component in 0..2 {
            chroma_row(frame, &vertical, self.per, component, c.chroma, s);
            self.horizontal.apply(&s.blended, &mut s.full[component]);
        }
        let [pb, pr] = &s.full;
        let pixels = r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()).zip(s.luma.iter().zip(pb).zip(pr));
        for (((r, g), b), ((&luma, &pb), &pr)) in pixels {
            *r = (luma + c.r_pr * pr).clamp(0.0, 1.0);
            *g = (luma + c.g_pb * pb + c.g_pr * pr).clamp(0.0, 1.0);
            *b = (luma + c.b_pb * pb).clamp(0.0, 1.0);
        }
    }
}

/// Writes `frame` as three planes (R, G, B) of width×height float32 in [0,1] (see the module documentation).
pub(crate) fn write_planes(frame: &Frame<'_>, planes: &mut [f32]) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let plane = w * h;
    let (r_plane, rest) = planes[..3 * plane].split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    // Bands of rows on the worker threads for frames large enough to repay the hand-over.
    let band = h.div_ceil(band_threads(frame)).max(1);
    let mut bands: Vec<_> = r_plane
        .chunks_mut(band * w)
        .zip(g_plane.chunks_mut(band * w))
        .zip(b_plane.chunks_mut(band * w))
        .map(|((r, g), b)| (r, g, b))
        .collect();
    for_each_piece(&mut bands, 1, |i, piece| {
        let (r, g, b) = &mut piece[0];
        let mut converter = RowConverter::new(frame);
        for (j, y) in (i * band..((i + 1) * band).min(h)).enumerate() {
            let out = j * w..(j + 1) * w;
            converter.convert(y, &mut r[out.clone()], &mut g[out.clone()], &mut b[out]);
        }
    });
}

/// How many threads share the rows of `frame`: all the worker threads from 64K pixels, else one.
fn band_threads(frame: &Frame<'_>) -> usize {
    if frame.width() as usize * frame.height() as usize >= 1 << 16 {
        worker_threads()
    } else {
        1
    }
}

/// Fills `s.blended` with chroma component `component` (0 = Pb, 1 = Pr) of one output row at chroma width:
/// the two chroma rows of its vertical tap normalised and blended.
#[inline(always)]
fn chroma_row(frame: &Frame<'_>, vertical: &Tap, per: usize, component: usize, norm: (f32, f32), s: &mut Scratch) {
    let (plane, k) = if per == 1 { (1 + component, 0) } else { (1, component) };
    if vertical.w1 == 0.0 {
        normalise(frame, frame.row(plane, vertical.i0), per, k, norm, &mut s.blended);
        return;
    }
    let [row0, row1] = &mut s.rows;
    normalise(frame, frame.row(plane, vertical.i0), per, k, norm, row0);
    normalise(frame, frame.row(plane, vertical.i1), per, k, norm, row1);
    for ((out, &a), &b) in s.blended.iter_mut().zip(row0.iter()).zip(row1.iter()) {
        *out = vertical.w0 * a + vertical.w1 * b;
    }
}

/// Converts equally sized frames into one N×3×H×W float32 tensor in [0,1] on `device`: one pass over the
/// samples into the tensor's own memory (plus the host→device transfer for a GPU).
pub fn frames_to_batch_tensor(frames: &[Frame<'_>], device: Device) -> Result<Tensor> {
    let shape = batch_shape(frames)?;
    let mut fresh = FreshTensor::<f32>::empty(&shape)?;
    write_batch(frames, fresh.as_mut_slice());
    to_device(fresh.into_tensor(), device)
}

/// [`frames_to_batch_tensor`] into `staging`'s memory, for a loop converting frame after frame.
pub fn frames_to_staged_tensor(
    frames: &[Frame<'_>],
    device: Device,
    staging: &mut StagingTensor<f32>,
) -> Result<Tensor> {
    let shape = batch_shape(frames)?;
    let host = staging.refill(&shape, |planes| write_batch(frames, planes))?;
    to_device(host, device)
}

/// The N×3×H×W shape of equally sized frames.
fn batch_shape(frames: &[Frame<'_>]) -> Result<[i64; 4]> {
    let first = frames.first().ok_or_else(|| Error::invalid("no frames given"))?;
    let (w, h) = (first.width(), first.height());
    if let Some(other) = frames.iter().find(|f| (f.width(), f.height()) != (w, h)) {
        return Err(Error::shape(format!(
            "frames in one batch must have one size: {w}x{h} and {}x{}",
            other.width(),
            other.height()
        )));
    }
    Ok([frames.len() as i64, 3, h as i64, w as i64])
}

fn write_batch(frames: &[Frame<'_>], planes: &mut [f32]) {
    let per_frame = planes.len() / frames.len().max(1);
    for (frame, planes) in frames.iter().zip(planes.chunks_exact_mut(per_frame.max(1))) {
        write_planes(frame, planes);
    }
}

fn to_device(host: Tensor, device: Device) -> Result<Tensor> {
    Ok(if device == Device::Cpu { host } else { host.f_to_device(device)? })
}
