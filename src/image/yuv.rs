//! YUV → RGB: the one conversion every frame goes through before any metric sees it. A frame's score is by
//! definition the metric's score on the RGB image this module makes.
//!
//! For a frame of bit depth `b` (the sample value `v` of semi-planar formats is the stored word >> (16 − b)):
//!
//! 1. **Range.** Limited: `Y' = (v − 16·2^(b−8)) / (219·2^(b−8))`, `Pb, Pr = (v − 128·2^(b−8)) / (224·2^(b−8))`.
//!    Full: `Y' = v / (2^b − 1)`, `Pb, Pr = (v − 2^(b−1)) / (2^b − 1)`. Gray frames have `Pb = Pr = 0`.
//! 2. **Chroma upsampling**, bilinear, on the `Pb`, `Pr` planes (rows first, then columns). Chroma sample `k`
//!    sits at luma position `k·f + o` for the subsampling factor `f` of that direction, with `o` = 0 where the
//!    siting is co-sited and `(f − 1)/2` where it is centred ([`ChromaSiting`]: left = co-sited horizontally,
//!    centred vertically; center = centred both ways; top-left = co-sited both ways). The luma sample at `x`
//!    reads `u = (x − o)/f` and takes `(1 − t)·c[i] + t·c[i + 1]` with `i = ⌊u⌋`, `t = u − i`, indices
//!    clamped to the plane (edge samples repeated).
//! 3. **Matrix** (non-constant luminance, `Kg = 1 − Kr − Kb`; [`ColorMatrix`] gives Kr, Kb):
//!    `R = Y' + 2(1 − Kr)·Pr`, `G = Y' − (2Kb(1 − Kb)/Kg)·Pb − (2Kr(1 − Kr)/Kg)·Pr`, `B = Y' + 2(1 − Kb)·Pb`.
//! 4. **Clamping** of R, G, B to [0, 1]. No rounding: the values stay float32, as metrics take them.
//!
//! Computed in float32 (`(v − offset)·scale` per sample, the blends and the matrix with float32 constants
//! derived in float64): within about 1e-6 of the same formulas in float64.
use super::frame::{ChromaSiting, ColorMatrix, ColorRange, Frame, PlaneLayout};
use crate::error::{Error, Result};
use crate::runtime::{for_each_piece, worker_threads};
use crate::tensor::FreshTensor;
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
fn normalise(
    frame: &Frame<'_>,
    row: &[u8],
    per: usize,
    component: usize,
    (offset, scale): (f32, f32),
    out: &mut [f32],
) {
    let format = frame.format();
    if format.bytes_per_sample() == 1 {
        for (o, &v) in out.iter_mut().zip(row[component..].iter().step_by(per)) {
            *o = (v as f32 - offset) * scale;
        }
    } else {
        let shift = if format.layout() == PlaneLayout::SemiPlanar { 16 - format.bit_depth() as u32 } else { 0 };
        for (o, s) in out.iter_mut().zip(row.chunks_exact(2 * per)) {
            let v = u16::from_le_bytes([s[2 * component], s[2 * component + 1]]) >> shift;
            *o = (v as f32 - offset) * scale;
        }
    }
}

/// Scratch rows of one band of output rows.
struct Scratch {
    luma: Vec<f32>,
    /// The two chroma rows a vertical tap reads, per component, and their blend.
    rows: [Vec<f32>; 2],
    blended: [Vec<f32>; 2],
    /// The blend upsampled to the luma width (Pb, Pr).
    full: [Vec<f32>; 2],
}

/// Writes `frame` as three planes (R, G, B) of width×height float32 in [0,1] (see the module documentation).
pub(crate) fn write_planes(frame: &Frame<'_>, planes: &mut [f32]) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let plane = w * h;
    let (r_plane, rest) = planes[..3 * plane].split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    // Bands of rows on the worker threads for frames large enough to repay the hand-over.
    let threads = if plane >= 1 << 16 { worker_threads() } else { 1 };
    let band = h.div_ceil(threads).max(1);
    let mut bands: Vec<_> = r_plane
        .chunks_mut(band * w)
        .zip(g_plane.chunks_mut(band * w))
        .zip(b_plane.chunks_mut(band * w))
        .map(|((r, g), b)| (r, g, b))
        .collect();
    let format = frame.format();
    let color = frame.color();
    let coefficients = Coefficients::of(format.bit_depth(), color.matrix, color.range);
    let shifts = format.subsampling().shifts();
    let (cw, ch, per) = format.plane_size(1, frame.width(), frame.height());
    let has_chroma = format.plane_count() > 1;
    let siting = if has_chroma { color.siting } else { ChromaSiting::Left };
    let (ox, oy) = siting.offsets(shifts);
    let columns: Vec<Tap> = if has_chroma { (0..w).map(|x| tap(x, cw, shifts.0, ox)).collect() } else { Vec::new() };
    for_each_piece(&mut bands, 1, |i, piece| {
        let (r, g, b) = &mut piece[0];
        let mut scratch = Scratch {
            luma: vec![0.0; w],
            rows: [vec![0.0; cw], vec![0.0; cw]],
            blended: [vec![0.0; cw], vec![0.0; cw]],
            full: [vec![0.0; w], vec![0.0; w]],
        };
        for (j, y) in (i * band..((i + 1) * band).min(h)).enumerate() {
            let out = j * w..(j + 1) * w;
            let (r, g, b) = (&mut r[out.clone()], &mut g[out.clone()], &mut b[out]);
            normalise(frame, frame.row(0, y), 1, 0, coefficients.luma, &mut scratch.luma);
            if !has_chroma {
                for (((r, g), b), &luma) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()).zip(&scratch.luma) {
                    let v = luma.clamp(0.0, 1.0);
                    (*r, *g, *b) = (v, v, v);
                }
                continue;
            }
            let vertical = tap(y, ch, shifts.1, oy);
            upsample_row(frame, &vertical, &columns, per, &coefficients, &mut scratch);
            let [pb, pr] = &scratch.full;
            let c = &coefficients;
            for (x, ((r, g), b)) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()).enumerate() {
                let (luma, pb, pr) = (scratch.luma[x], pb[x], pr[x]);
                *r = (luma + c.r_pr * pr).clamp(0.0, 1.0);
                *g = (luma + c.g_pb * pb + c.g_pr * pr).clamp(0.0, 1.0);
                *b = (luma + c.b_pb * pb).clamp(0.0, 1.0);
            }
        }
    });
}

/// Fills `scratch.full` with the Pb and Pr of one output row: the two chroma rows of its vertical tap
/// normalised and blended, then upsampled along the row (or copied at full chroma width).
fn upsample_row(frame: &Frame<'_>, vertical: &Tap, columns: &[Tap], per: usize, c: &Coefficients, s: &mut Scratch) {
    let planar = per == 1;
    for component in 0..2 {
        let (plane, k) = if planar { (1 + component, 0) } else { (1, component) };
        let [row0, row1] = &mut s.rows;
        normalise(frame, frame.row(plane, vertical.i0), per, k, c.chroma, row0);
        let blended = &mut s.blended[component];
        if vertical.w1 == 0.0 {
            blended.copy_from_slice(row0);
        } else {
            normalise(frame, frame.row(plane, vertical.i1), per, k, c.chroma, row1);
            for ((out, &a), &b) in blended.iter_mut().zip(row0.iter()).zip(row1.iter()) {
                *out = vertical.w0 * a + vertical.w1 * b;
            }
        }
        let full = &mut s.full[component];
        if blended.len() == full.len() {
            full.copy_from_slice(blended);
        } else {
            for (out, tap) in full.iter_mut().zip(columns) {
                *out = tap.w0 * blended[tap.i0] + tap.w1 * blended[tap.i1];
            }
        }
    }
}

/// Converts equally sized frames into one N×3×H×W float32 tensor in [0,1] on `device`: one pass over the
/// samples into the tensor's own memory (plus the host→device transfer for a GPU).
pub fn frames_to_batch_tensor(frames: &[Frame<'_>], device: Device) -> Result<Tensor> {
    let first = frames.first().ok_or_else(|| Error::invalid("no frames given"))?;
    let (w, h) = (first.width(), first.height());
    if let Some(other) = frames.iter().find(|f| (f.width(), f.height()) != (w, h)) {
        return Err(Error::shape(format!(
            "frames in one batch must have one size: {w}x{h} and {}x{}",
            other.width(),
            other.height()
        )));
    }
    let per_frame = 3 * w as usize * h as usize;
    let mut fresh = FreshTensor::<f32>::empty(&[frames.len() as i64, 3, h as i64, w as i64])?;
    for (frame, planes) in frames.iter().zip(fresh.as_mut_slice().chunks_exact_mut(per_frame)) {
        write_planes(frame, planes);
    }
    let mut host = fresh.into_tensor();
    if device != Device::Cpu {
        host = host.f_to_device(device)?;
    }
    Ok(host)
}
