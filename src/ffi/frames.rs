//! The C ABI of video frames and streams: `IqaFrame` checked and borrowed as a [`Frame`], frame scoring, and
//! `IqaStream` over [`Stream`]. Same conventions as the rest of `ffi` (checked pointers, `entry`, tags).
use super::types::*;
use super::{checked_out, checked_ref, entry, options_from_c, read_enum, score_all, score_one, IqaMetric};
use crate::error::{Error, Result};
use crate::image::{ChromaSiting, ColorMatrix, ColorRange, ColorSpec, Frame, FrameFormat};
use crate::video::{Pooling, Stream, StreamOptions};
use parking_lot::Mutex;
use std::ffi::{c_char, CStr};
use std::mem::size_of;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::addr_of;

/// Opaque stream handle. Open with iqa_stream_open, close with iqa_stream_close.
pub struct IqaStream {
    tag: u64,
    stream: Mutex<Stream>,
}

/// Marks a live stream ("IQASTREM"); overwritten when closed.
const LIVE_STREAM: u64 = 0x4951_4153_5452_454d;
const CLOSED_STREAM: u64 = 0xdead_dead_dead_dead;

fn frame_format(raw: u32, what: &str) -> Result<FrameFormat> {
    use IqaFrameFormat::*;
    let format = IqaFrameFormat::try_from(raw)
        .map_err(|raw| Error::invalid(format!("{what}->format {raw} is not an IqaFrameFormat (0..7)")))?;
    Ok(match format {
        IQA_FRAME_I420 => FrameFormat::I420,
        IQA_FRAME_NV12 => FrameFormat::NV12,
        IQA_FRAME_I422 => FrameFormat::I422,
        IQA_FRAME_I444 => FrameFormat::I444,
        IQA_FRAME_I420_10 => FrameFormat::I420P10,
        IQA_FRAME_P010 => FrameFormat::P010,
        IQA_FRAME_I422_10 => FrameFormat::I422P10,
        IQA_FRAME_I444_10 => FrameFormat::I444P10,
    })
}

/// Borrows a caller's `IqaFrame` as a checked [`Frame`]: every field, plane pointer, stride and sample.
///
/// # Safety
/// `p` must be NULL or point to `struct_size` readable bytes of an `IqaFrame` whose planes cover their rows.
unsafe fn frame_from_c<'a>(p: *const IqaFrame, what: &str) -> Result<Frame<'a>> {
    let f = checked_ref(p, what)?;
    if (f.struct_size as usize) < size_of::<IqaFrame>() {
        return Err(Error::invalid(format!(
            "{what}->struct_size is {}; set it to sizeof(IqaFrame) ({})",
            f.struct_size,
            size_of::<IqaFrame>()
        )));
    }
    let format = frame_format(read_enum(addr_of!(f.format)), what)?;
    let matrix = match IqaColorMatrix::try_from(read_enum(addr_of!(f.matrix))) {
        Ok(IqaColorMatrix::IQA_MATRIX_BT709) => ColorMatrix::Bt709,
        Ok(IqaColorMatrix::IQA_MATRIX_BT601) => ColorMatrix::Bt601,
        Ok(IqaColorMatrix::IQA_MATRIX_BT2020) => ColorMatrix::Bt2020,
        Err(raw) => return Err(Error::invalid(format!("{what}->matrix {raw} is not an IqaColorMatrix (0..2)"))),
    };
    let range = match IqaColorRange::try_from(read_enum(addr_of!(f.range))) {
        Ok(IqaColorRange::IQA_RANGE_LIMITED) => ColorRange::Limited,
        Ok(IqaColorRange::IQA_RANGE_FULL) => ColorRange::Full,
        Err(raw) => return Err(Error::invalid(format!("{what}->range {raw} is not an IqaColorRange (0..1)"))),
    };
    let siting = match IqaChromaSiting::try_from(read_enum(addr_of!(f.siting))) {
        Ok(IqaChromaSiting::IQA_CHROMA_LEFT) => ChromaSiting::Left,
        Ok(IqaChromaSiting::IQA_CHROMA_CENTER) => ChromaSiting::Center,
        Ok(IqaChromaSiting::IQA_CHROMA_TOPLEFT) => ChromaSiting::TopLeft,
        Err(raw) => return Err(Error::invalid(format!("{what}->siting {raw} is not an IqaChromaSiting (0..2)"))),
    };
    let in_context = |e: Error| e.context(what);
    format.check_size(f.width, f.height).map_err(in_context)?;
    let count = format.plane_count();
    let mut planes: [&[u8]; 3] = [&[]; 3];
    for (i, plane) in planes.iter_mut().enumerate().take(count) {
        let (len, _) = format.plane_len(i, f.width, f.height, f.strides[i]).map_err(in_context)?;
        if f.planes[i].is_null() {
            return Err(Error::invalid(format!("{what}: planes[{i}] ({}) is NULL", format.plane_name(i))));
        }
        if len > isize::MAX as usize {
            return Err(Error::invalid(format!(
                "{what}: plane {} of {len} bytes is larger than memory",
                format.plane_name(i)
            )));
        }
        *plane = std::slice::from_raw_parts(f.planes[i].cast::<u8>(), len);
    }
    let color = ColorSpec { matrix, range, siting };
    Frame::new(&planes[..count], &f.strides[..count], f.width, f.height, format, color).map_err(in_context)
}

/// Scores one video frame (`ref` required for FR metrics, NULL for NR): the metric's score on the frame's RGB
/// conversion. Distorted and reference frames may differ in format, not in size. Planes are only read during
/// the call. Errors: IQA_ERR_INVALID_ARGUMENT (NULL pointers or planes, struct_size, bad enum values, sizes
/// the format cannot hold such as odd widths of 4:2:0, strides shorter than a row, 10-bit values above 1023,
/// P010 words with low bits set: the message names the plane and the value), IQA_ERR_SHAPE_MISMATCH (sizes
/// differ, frame smaller than the metric's minimum), IQA_ERR_RUNTIME. On error *out_score is untouched.
///
/// # Safety
/// `metric` a live handle or NULL; `dist`, `ref` NULL or valid frames; `out_score` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_score_frame(
    metric: *mut IqaMetric,
    dist: *const IqaFrame,
    r#ref: *const IqaFrame,
    out_score: *mut f64,
) -> IqaStatus {
    score_one(metric, dist, r#ref, out_score, frame_from_c, |m, d, r| m.score_frame(d, r))
}

/// Scores `count` frames (`dists[i]` against `refs[i]`; `refs` NULL for NR metrics) into
/// out_scores[0..count); frames of one size go through the model in one forward pass. Errors as
/// iqa_score_frame (messages name the frame: "dists[2]: plane U: ..."); on error no score is written.
///
/// # Safety
/// `dists` (and `refs` unless NULL) must point to `count` frames; `out_scores` to `count` writable doubles.
#[no_mangle]
pub unsafe extern "C" fn iqa_score_frames(
    metric: *mut IqaMetric,
    dists: *const IqaFrame,
    refs: *const IqaFrame,
    count: usize,
    out_scores: *mut f64,
) -> IqaStatus {
    score_all(metric, dists, refs, count, out_scores, frame_from_c, |m, d, r| m.score_frames(d, r))
}

/// Fills *out with the defaults: struct_size = sizeof(IqaStreamOptions), every frame, 1 worker, 4 frames
/// queued, batches of 1, per-frame scores kept, default metric options. NULL is a no-op.
///
/// # Safety
/// `out` must be NULL or point to a writable IqaStreamOptions.
#[no_mangle]
pub unsafe extern "C" fn iqa_stream_options_default(out: *mut IqaStreamOptions) {
    let defaults = StreamOptions::default();
    if checked_out(out, "out").is_ok() {
        out.write(IqaStreamOptions {
            struct_size: size_of::<IqaStreamOptions>() as u32,
            subsample: defaults.subsample,
            threads: defaults.threads as u32,
            queue: defaults.queue as u32,
            batch: defaults.batch as u32,
            pooled_only: !defaults.keep_frame_scores,
            metric_options: std::ptr::null(),
        });
    }
}

/// # Safety
/// `p` must be NULL or point to an IqaStreamOptions of at least its struct_size bytes.
unsafe fn stream_options_from_c(p: *const IqaStreamOptions) -> Result<StreamOptions> {
    let defaults = StreamOptions::default();
    if p.is_null() {
        return Ok(defaults);
    }
    let o = checked_ref(p, "options")?;
    if (o.struct_size as usize) < size_of::<IqaStreamOptions>() {
        return Err(Error::invalid(format!(
            "options->struct_size is {}; set it to sizeof(IqaStreamOptions) (or use iqa_stream_options_default)",
            o.struct_size
        )));
    }
    let or = |value: u32, default: usize| if value == 0 { default } else { value as usize };
    // A C bool that is neither 0 nor 1 is read as a byte, not trusted as a Rust bool.
    let pooled_only = std::ptr::read(addr_of!(o.pooled_only).cast::<u8>()) != 0;
    Ok(StreamOptions {
        metric: options_from_c(o.metric_options)?,
        subsample: or(o.subsample, defaults.subsample as usize) as u32,
        threads: or(o.threads, defaults.threads),
        queue: or(o.queue, defaults.queue),
        batch: or(o.batch, defaults.batch),
        keep_frame_scores: !pooled_only,
    })
}

/// # Safety
/// `p` must be NULL or a pointer the caller got from iqa_stream_open (possibly since closed).
unsafe fn checked_stream<'a>(p: *const IqaStream) -> Result<&'a IqaStream> {
    let handle = checked_ref(p, "stream")?;
    if std::ptr::read_volatile(addr_of!(handle.tag)) != LIVE_STREAM {
        return Err(Error::invalid("stream is not a live IqaStream (already closed, or a foreign pointer)"));
    }
    Ok(handle)
}

/// Opens a stream scoring `metric_count` metrics (names as for iqa_metric_create) on every frame pair pushed:
/// each pair is converted to RGB once for all of them and scored on worker threads behind the push, in frame
/// order. `options` may be NULL for defaults. On success *out receives a stream to close with
/// iqa_stream_close. Errors: IQA_ERR_INVALID_ARGUMENT (NULL pointers or names, count 0, bad options),
/// IQA_ERR_UNKNOWN_METRIC, and those of iqa_metric_create.
///
/// # Safety
/// `metrics` must be NULL or point to `metric_count` NULL or NUL-terminated strings; `options` NULL or valid for
/// struct_size bytes; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_stream_open(
    metrics: *const *const c_char,
    metric_count: usize,
    options: *const IqaStreamOptions,
    out: *mut *mut IqaStream,
) -> IqaStatus {
    entry(|| {
        checked_out(out, "out")?;
        checked_ref(metrics, "metrics")?;
        if metric_count == 0 {
            return Err(Error::invalid("metric_count is 0: a stream needs at least one metric"));
        }
        if metric_count > isize::MAX as usize / size_of::<*const c_char>() {
            return Err(Error::invalid(format!("metric_count {metric_count} is too large")));
        }
        let mut names = Vec::with_capacity(metric_count);
        for i in 0..metric_count {
            let name = *metrics.add(i);
            if name.is_null() {
                return Err(Error::invalid(format!("metrics[{i}] is NULL")));
            }
            names
                .push(CStr::from_ptr(name).to_str().map_err(|_| Error::invalid(format!("metrics[{i}] is not UTF-8")))?);
        }
        let options = stream_options_from_c(options)?;
        let stream = Stream::open(&names, &options)?;
        out.write(Box::into_raw(Box::new(IqaStream { tag: LIVE_STREAM, stream: Mutex::new(stream) })));
        Ok(())
    })
}

/// Adds the next frame pair in display order (`ref` NULL when every metric is no-reference, required
/// otherwise). The planes are copied before the call returns; scoring happens behind it, and the call blocks
/// only while the queue is full. A bad pair is refused with the errors of iqa_score_frame (nothing queued,
/// the stream stays usable; pairs must keep the size and formats of the first); a failure while scoring an
/// earlier frame is returned here and by every later call, its message naming the frame.
///
/// # Safety
/// `stream` a live stream or NULL; `dist`, `ref` NULL or valid frames.
#[no_mangle]
pub unsafe extern "C" fn iqa_stream_push(
    stream: *mut IqaStream,
    dist: *const IqaFrame,
    r#ref: *const IqaFrame,
) -> IqaStatus {
    entry(|| {
        let handle = checked_stream(stream)?;
        let dist = frame_from_c(dist, "dist")?;
        let reference = if r#ref.is_null() { None } else { Some(frame_from_c(r#ref, "ref")?) };
        handle.stream.lock().push(&dist, reference.as_ref())
    })
}

/// Waits until every frame pushed is scored. Errors: a failure while scoring (the message names the frame).
///
/// # Safety
/// `stream` a live stream or NULL.
#[no_mangle]
pub unsafe extern "C" fn iqa_stream_flush(stream: *mut IqaStream) -> IqaStatus {
    entry(|| checked_stream(stream)?.stream.lock().flush())
}

/// Frames pushed so far, and how many leading frames are done (scored, or skipped by subsampling): frames
/// below *frames_done can be read with iqa_stream_frame_scores. Either out pointer may be NULL.
///
/// # Safety
/// `stream` a live stream or NULL; `frames_pushed`, `frames_done` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_stream_progress(
    stream: *const IqaStream,
    frames_pushed: *mut u64,
    frames_done: *mut u64,
) -> IqaStatus {
    entry(|| {
        let stream = checked_stream(stream)?.stream.lock();
        for (out, value, what) in [
            (frames_pushed, stream.frames_pushed(), "frames_pushed"),
            (frames_done, stream.frames_done(), "frames_done"),
        ] {
            if !out.is_null() {
                checked_out(out, what)?;
                out.write(value);
            }
        }
        Ok(())
    })
}

/// The scores of display frame `frame` (0 = the first pushed), one per metric in the order given to
/// iqa_stream_open, into out_scores[0..metric_count); `count` must be at least metric_count. Errors:
/// IQA_ERR_INVALID_ARGUMENT when the frame is not scored (not pushed or not done yet: see
/// iqa_stream_progress; skipped by subsampling; stream opened pooled_only). On error nothing is written.
///
/// # Safety
/// `stream` a live stream or NULL; `out_scores` NULL or `count` writable doubles.
#[no_mangle]
pub unsafe extern "C" fn iqa_stream_frame_scores(
    stream: *const IqaStream,
    frame: u64,
    out_scores: *mut f64,
    count: usize,
) -> IqaStatus {
    entry(|| {
        let stream = checked_stream(stream)?.stream.lock();
        checked_out(out_scores, "out_scores")?;
        let metrics = stream.metric_names().len();
        if count < metrics {
            return Err(Error::invalid(format!("count {count} is smaller than the stream's {metrics} metrics")));
        }
        let scores = stream.frame_scores(frame).ok_or_else(|| {
            Error::invalid(if frame >= stream.frames_pushed() {
                format!("frame {frame} was not pushed ({} frames so far)", stream.frames_pushed())
            } else if frame >= stream.frames_done() {
                format!(
                    "frame {frame} is not scored yet (frames 0..{} are); iqa_stream_flush waits",
                    stream.frames_done()
                )
            } else {
                format!("frame {frame} has no scores: skipped by subsampling, or the stream keeps pooled values only")
            })
        })?;
        std::ptr::copy_nonoverlapping(scores.as_ptr(), out_scores, scores.len());
        Ok(())
    })
}

/// Metric `metric_index`'s scores (in the order given to iqa_stream_open) pooled over every frame pushed:
/// waits for them first (as iqa_stream_flush). `method` is an IqaPooling value (an integer here, so that any
/// value a caller passes is checked rather than trusted); `percentile` (0..100) is read for IQA_POOL_PERCENTILE
/// only.
/// Errors: IQA_ERR_INVALID_ARGUMENT (index out of range, bad method or percentile, no frame scored, a
/// percentile of a pooled_only stream), a failure while scoring.
///
/// # Safety
/// `stream` a live stream or NULL; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_stream_pooled(
    stream: *mut IqaStream,
    metric_index: usize,
    method: u32,
    percentile: f64,
    out: *mut f64,
) -> IqaStatus {
    entry(|| {
        let handle = checked_stream(stream)?;
        checked_out(out, "out")?;
        let pooling = match IqaPooling::try_from(method) {
            Ok(IqaPooling::IQA_POOL_MEAN) => Pooling::Mean,
            Ok(IqaPooling::IQA_POOL_HARMONIC_MEAN) => Pooling::HarmonicMean,
            Ok(IqaPooling::IQA_POOL_MIN) => Pooling::Min,
            Ok(IqaPooling::IQA_POOL_MAX) => Pooling::Max,
            Ok(IqaPooling::IQA_POOL_PERCENTILE) => Pooling::Percentile(percentile),
            Err(raw) => return Err(Error::invalid(format!("method {raw} is not an IqaPooling (0..4)"))),
        };
        let value = handle.stream.lock().pooled(metric_index, pooling)?;
        out.write(value);
        Ok(())
    })
}

/// Closes a stream (NULL is a no-op; a pointer that is not a live stream is ignored where detectable): frames
/// still queued are dropped unscored, its worker threads are joined and its metric handles released. Do not
/// close a stream while another thread is calling it.
///
/// # Safety
/// `stream` must be NULL or a stream from iqa_stream_open not yet closed.
#[no_mangle]
pub unsafe extern "C" fn iqa_stream_close(stream: *mut IqaStream) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if stream.is_null() || checked_stream(stream).is_err() {
            return;
        }
        std::ptr::write_volatile(&mut (*stream).tag, CLOSED_STREAM);
        drop(Box::from_raw(stream));
    }));
}
