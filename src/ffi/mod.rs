//! The C ABI: the only `extern "C"` and raw-pointer code. Each function checks its pointers and sizes,
//! converts to the safe API in [`crate::api`], catches panics, and maps errors to a status plus the
//! thread-local message returned by `iqa_last_error`.
// The doc comments here become the C header's: "[0,1]" and "[N]" are math there, not links.
#![allow(rustdoc::broken_intra_doc_links)]
mod frames;
mod reference;
mod types;

pub use frames::*;
pub use types::*;

use crate::api::{self, DeviceRequest, Metric, Mode, Options, Precision, Preset, TorchScriptSpec};
use crate::error::{catch_panics, Error, ErrorKind, Result};
use crate::image::{Image, PixelFormat};
use once_cell::sync::Lazy;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::mem::size_of;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::ptr::addr_of;

/// Opaque metric handle. Create with iqa_metric_create, free with iqa_metric_free.
pub struct IqaMetric {
    tag: u64,
    metric: Metric,
    name: CString,
}

/// Marks a live handle ("IQAMETRC"); overwritten when freed, so a freed or foreign pointer is refused where
/// the memory still shows it rather than used blindly.
const LIVE_TAG: u64 = 0x4951_414d_4554_5243;
const FREED_TAG: u64 = 0xdead_dead_dead_dead;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

fn status_of(kind: ErrorKind) -> IqaStatus {
    match kind {
        ErrorKind::InvalidArgument => IqaStatus::IQA_ERR_INVALID_ARGUMENT,
        ErrorKind::UnknownMetric => IqaStatus::IQA_ERR_UNKNOWN_METRIC,
        ErrorKind::Io => IqaStatus::IQA_ERR_IO,
        ErrorKind::Decode => IqaStatus::IQA_ERR_DECODE,
        ErrorKind::ShapeMismatch => IqaStatus::IQA_ERR_SHAPE_MISMATCH,
        ErrorKind::Weights => IqaStatus::IQA_ERR_WEIGHTS,
        ErrorKind::Device => IqaStatus::IQA_ERR_DEVICE,
        ErrorKind::Runtime => IqaStatus::IQA_ERR_RUNTIME,
        ErrorKind::Panic => IqaStatus::IQA_ERR_PANIC,
    }
}

/// Runs the body of a status-returning entry point: clears the last error, catches panics, maps errors.
fn entry(body: impl FnOnce() -> Result<()>) -> IqaStatus {
    set_last_error("");
    match catch_panics(body) {
        Ok(()) => IqaStatus::IQA_OK,
        Err(e) => {
            set_last_error(&e.message);
            status_of(e.kind)
        }
    }
}

/// A reference to a caller's struct: non-NULL and aligned, else an error naming `what`.
///
/// # Safety
/// A non-NULL `p` must point to a readable `T` for the duration of the call.
unsafe fn checked_ref<'a, T>(p: *const T, what: &str) -> Result<&'a T> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    if !p.is_aligned() {
        return Err(Error::invalid(format!("{what} is not a properly aligned pointer")));
    }
    Ok(&*p)
}

fn checked_out<T>(p: *mut T, what: &str) -> Result<()> {
    if p.is_null() {
        Err(Error::invalid(format!("{what} is NULL")))
    } else if !p.is_aligned() {
        Err(Error::invalid(format!("{what} is not a properly aligned pointer")))
    } else {
        Ok(())
    }
}

/// # Safety
/// `p` must be NULL or a pointer the caller got from iqa_metric_create (possibly since freed).
unsafe fn checked_handle<'a>(p: *const IqaMetric) -> Result<&'a IqaMetric> {
    let handle = checked_ref(p, "metric handle")?;
    if std::ptr::read_volatile(addr_of!(handle.tag)) != LIVE_TAG {
        return Err(Error::invalid("metric handle is not a live IqaMetric (already freed, or a foreign pointer)"));
    }
    Ok(handle)
}

/// Reads a C enum field as its integer value, whatever the caller stored there.
///
/// # Safety
/// `field` must point to a readable 4-byte C enum.
unsafe fn read_enum<E>(field: *const E) -> u32 {
    debug_assert_eq!(size_of::<E>(), 4);
    field.cast::<u32>().read()
}

fn pixel_format(raw: u32) -> Result<PixelFormat> {
    use IqaPixelFormat::*;
    let format = IqaPixelFormat::try_from(raw)
        .map_err(|raw| Error::invalid(format!("unknown pixel format {raw} (valid: 0..9, IQA_FORMAT_*)")))?;
    Ok(match format {
        IQA_FORMAT_RGB8 => PixelFormat::Rgb8,
        IQA_FORMAT_RGBA8 => PixelFormat::Rgba8,
        IQA_FORMAT_BGR8 => PixelFormat::Bgr8,
        IQA_FORMAT_BGRA8 => PixelFormat::Bgra8,
        IQA_FORMAT_GRAY8 => PixelFormat::Gray8,
        IQA_FORMAT_RGB16 => PixelFormat::Rgb16,
        IQA_FORMAT_RGB_F32 => PixelFormat::RgbF32,
        IQA_FORMAT_RGB_F16 => PixelFormat::RgbF16,
        IQA_FORMAT_GRAY_F32 => PixelFormat::GrayF32,
        IQA_FORMAT_RGB_F32_PLANAR => PixelFormat::RgbF32Planar,
    })
}

/// Borrows a caller's `IqaImage` as a checked [`Image`].
///
/// # Safety
/// `p` must be NULL or point to an `IqaImage` whose `data` covers `height` rows of `stride` bytes.
unsafe fn image_from_c<'a>(p: *const IqaImage, what: &str) -> Result<Image<'a>> {
    let img = checked_ref(p, what)?;
    let format = pixel_format(read_enum(addr_of!(img.format))).map_err(|e| e.context(what))?;
    let len = Image::required_len(img.width, img.height, img.stride, format).map_err(|e| e.context(what))?;
    if img.data.is_null() {
        return Err(Error::invalid(format!("{what}: pixel data is NULL")));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("{what}: image of {len} bytes is larger than memory")));
    }
    let data = std::slice::from_raw_parts(img.data.cast::<u8>(), len);
    Image::new(data, img.width, img.height, img.stride, format).map_err(|e| e.context(what))
}

/// `count` caller structs at `p` (images, frames), each converted by `one` and named `what[i]` in errors.
///
/// # Safety
/// `p` must be NULL or point to `count` `C`s, each valid for `one`.
unsafe fn array_from_c<C, T>(
    p: *const C,
    count: usize,
    what: &str,
    one: unsafe fn(*const C, &str) -> Result<T>,
) -> Result<Vec<T>> {
    checked_ref(p, what)?;
    if count.checked_mul(size_of::<C>()).is_none_or(|n| n > isize::MAX as usize) {
        return Err(Error::invalid(format!("count {count} is too large")));
    }
    (0..count).map(|i| one(p.add(i), &format!("{what}[{i}]"))).collect()
}

/// The body of a single-pair scoring entry point (iqa_score, iqa_score_frame): checks the handle and the
/// output, converts `dist` and `ref` (NULL: none) with `one`, writes the score.
///
/// # Safety
/// As the entry points: `metric` a live handle or NULL, `dist`/`ref` NULL or valid for `one`, `out_score` NULL
/// or writable.
pub(crate) unsafe fn score_one<C, T>(
    metric: *const IqaMetric,
    dist: *const C,
    r#ref: *const C,
    out_score: *mut f64,
    one: unsafe fn(*const C, &str) -> Result<T>,
    score: impl FnOnce(&Metric, &T, Option<&T>) -> Result<f64>,
) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        checked_out(out_score, "out_score")?;
        let dist = one(dist, "dist")?;
        let reference = if r#ref.is_null() { None } else { Some(one(r#ref, "ref")?) };
        out_score.write(score(&handle.metric, &dist, reference.as_ref())?);
        Ok(())
    })
}

/// The body of a batch entry point (iqa_score_batch, iqa_score_frames): `count` inputs (`refs` NULL: none)
/// converted with `one`; every score written, or none on error.
///
/// # Safety
/// As the entry points: `dists` (and `refs` unless NULL) point to `count` inputs valid for `one`, `out_scores`
/// to `count` writable doubles.
pub(crate) unsafe fn score_all<C, T>(
    metric: *const IqaMetric,
    dists: *const C,
    refs: *const C,
    count: usize,
    out_scores: *mut f64,
    one: unsafe fn(*const C, &str) -> Result<T>,
    score: impl FnOnce(&Metric, &[T], Option<&[T]>) -> Result<Vec<f64>>,
) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        checked_out(out_scores, "out_scores")?;
        if count == 0 {
            return Err(Error::invalid("count is 0: nothing to score"));
        }
        let dists = array_from_c(dists, count, "dists", one)?;
        let refs = if refs.is_null() { None } else { Some(array_from_c(refs, count, "refs", one)?) };
        let scores = score(&handle.metric, &dists, refs.as_deref())?;
        std::ptr::copy_nonoverlapping(scores.as_ptr(), out_scores, count);
        Ok(())
    })
}

/// # Safety
/// `p` must be NULL or a NUL-terminated string.
unsafe fn path_from_c(p: *const c_char, what: &str) -> Result<PathBuf> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    use std::os::unix::ffi::OsStrExt;
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(CStr::from_ptr(p).to_bytes())))
}

/// The precision `iqa_options_default` and a NULL options pointer use: IQA_PRECISION, else the preset's.
fn env_precision() -> IqaPrecision {
    match api::default_precision() {
        Ok(Precision::Fp16) => IqaPrecision::IQA_PRECISION_FP16,
        Ok(Precision::Bf16) => IqaPrecision::IQA_PRECISION_BF16,
        _ => IqaPrecision::IQA_PRECISION_FP32,
    }
}

/// # Safety
/// `p` must be NULL or point to at least `struct_size` readable bytes of an `IqaOptions`.
unsafe fn options_from_c(p: *const IqaOptions) -> Result<Options> {
    if p.is_null() {
        return Ok(Options::default());
    }
    let o = checked_ref(p, "options")?;
    let size = o.struct_size as usize;
    // Fields past what the caller's (older) struct holds keep their defaults.
    let has = |end: usize| size >= end;
    if !has(std::mem::offset_of!(IqaOptions, device) + 4) {
        return Err(Error::invalid(format!(
            "options->struct_size is {size}; set it to sizeof(IqaOptions) (or use iqa_options_default)"
        )));
    }
    let index = if has(std::mem::offset_of!(IqaOptions, device_index) + 4) { o.device_index } else { 0 };
    let device = IqaDeviceKind::try_from(read_enum(addr_of!(o.device)))
        .map_err(|raw| Error::invalid(format!("options->device {raw} is not an IqaDeviceKind (0..2)")))?;
    let device = match device {
        IqaDeviceKind::IQA_DEVICE_AUTO => DeviceRequest::Auto,
        IqaDeviceKind::IQA_DEVICE_CPU => DeviceRequest::Cpu,
        IqaDeviceKind::IQA_DEVICE_CUDA if index >= 0 => DeviceRequest::Cuda(index as usize),
        IqaDeviceKind::IQA_DEVICE_CUDA => {
            return Err(Error::invalid(format!("options->device_index {index} is negative")));
        }
    };
    let precision = if has(std::mem::offset_of!(IqaOptions, precision) + 4) {
        let raw = IqaPrecision::try_from(read_enum(addr_of!(o.precision)))
            .map_err(|raw| Error::invalid(format!("options->precision {raw} is not an IqaPrecision (0..2)")))?;
        Some(match raw {
            IqaPrecision::IQA_PRECISION_FP32 => Precision::Fp32,
            IqaPrecision::IQA_PRECISION_FP16 => Precision::Fp16,
            IqaPrecision::IQA_PRECISION_BF16 => Precision::Bf16,
        })
    } else {
        None
    };
    Ok(Options { device, precision })
}

/// Returns IQA_ABI_VERSION of the library actually loaded; compare it with the header's IQA_ABI_VERSION.
#[no_mangle]
pub extern "C" fn iqa_abi_version() -> u32 {
    IQA_ABI_VERSION
}

/// The library's version ("MAJOR.MINOR.PATCH"), a static string: never free it.
#[no_mangle]
pub extern "C" fn iqa_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// This thread's last error message, "" when the last status-returning call on this thread succeeded.
/// Never NULL. Owned by the library: valid until the next iqa call on the same thread; copy it to keep it.
#[no_mangle]
pub extern "C" fn iqa_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Fills *out with the defaults: struct_size = sizeof(IqaOptions), device AUTO, index 0, precision from
/// IQA_PRECISION (else FP32). NULL is a no-op.
///
/// # Safety
/// `out` must be NULL or point to a writable IqaOptions.
#[no_mangle]
pub unsafe extern "C" fn iqa_options_default(out: *mut IqaOptions) {
    if checked_out(out, "out").is_ok() {
        out.write(IqaOptions {
            struct_size: size_of::<IqaOptions>() as u32,
            device: IqaDeviceKind::IQA_DEVICE_AUTO,
            device_index: 0,
            precision: env_precision(),
        });
    }
}

/// Switches the process to a preset: "accuracy" (the default: fp32, every core, whole batches, no model kept
/// after its last handle), "speed" (as accuracy, plus bf16 for the metrics whose scores it moves by less
/// than 1e-3, and the 4 most recently freed models kept loaded) or "memory" (fp32, one image per forward pass,
/// freed memory returned to the system at once). Sets the default precision, CPU threads, model cache size,
/// batch policy and allocator behaviour; IQA_PRECISION, IQA_NUM_THREADS and IQA_CACHE_SIZE, when set, still
/// win. Handles already created keep their precision. IQA_PRESET selects one at start-up.
/// Errors: IQA_ERR_INVALID_ARGUMENT (NULL or unknown name).
///
/// # Safety
/// `name` must be NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn iqa_set_preset(name: *const c_char) -> IqaStatus {
    entry(|| {
        if name.is_null() {
            return Err(Error::invalid("preset name is NULL"));
        }
        let text = CStr::from_ptr(name).to_string_lossy();
        let preset = Preset::parse(&text)
            .ok_or_else(|| Error::invalid(format!("unknown preset {text:?}; one of speed, memory, accuracy")))?;
        api::set_preset(preset)
    })
}

static METRIC_NAMES: Lazy<Vec<CString>> =
    Lazy::new(|| api::metric_names().into_iter().map(|n| CString::new(n).expect("metric names have no NUL")).collect());

/// Number of metrics iqa_metric_create accepts. Thread-safe.
#[no_mangle]
pub extern "C" fn iqa_metric_count() -> usize {
    METRIC_NAMES.len()
}

/// Name of metric `index` (0 ≤ index < iqa_metric_count()), as pyiqa names it ("psnr", "ssim", ...); NULL
/// past the end. Static string: never free it.
#[no_mangle]
pub extern "C" fn iqa_metric_name(index: usize) -> *const c_char {
    METRIC_NAMES.get(index).map_or(std::ptr::null(), |n| n.as_ptr())
}

/// Whether the metric `name` can be created here, without creating it or downloading anything: fills *out
/// (availability, mode, direction, range) and writes a description to `text`, one line per pretrained file the
/// metric needs: "NAME: built in", "NAME: found at PATH", "NAME: will download from URL into DIR" or
/// "NAME: missing: WHY" (or "needs no pretrained file", or "TorchScript module PATH"). The text is NUL-terminated
/// and cut at a UTF-8 character boundary to fit `text_size` bytes; out->text_len says how many bytes the whole
/// text needs, so a caller may call once with text NULL and text_size 0 to size its buffer.
/// Set out->struct_size = sizeof(IqaMetricStatus) first. On error neither *out nor text is written.
/// Errors: IQA_ERR_INVALID_ARGUMENT (NULL name or out, struct_size too small, text NULL with text_size > 0,
/// malformed IQA_OFFLINE), IQA_ERR_UNKNOWN_METRIC (also for pyiqa names iqa does not build), IQA_ERR_WEIGHTS
/// or IQA_ERR_IO (a TorchScript module's sidecar unreadable).
///
/// # Safety
/// `name` must be NULL or NUL-terminated; `out` NULL or a writable IqaMetricStatus whose struct_size is set;
/// `text` NULL or writable for `text_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn iqa_metric_status(
    name: *const c_char,
    out: *mut IqaMetricStatus,
    text: *mut c_char,
    text_size: usize,
) -> IqaStatus {
    entry(|| {
        checked_out(out, "out")?;
        let size = std::ptr::read(addr_of!((*out).struct_size)) as usize;
        if size < size_of::<IqaMetricStatus>() {
            return Err(Error::invalid(format!(
                "out->struct_size is {size}; set it to sizeof(IqaMetricStatus) ({})",
                size_of::<IqaMetricStatus>()
            )));
        }
        if text.is_null() && text_size > 0 {
            return Err(Error::invalid(format!("text is NULL but text_size is {text_size}")));
        }
        if name.is_null() {
            return Err(Error::invalid("metric name is NULL"));
        }
        let name = CStr::from_ptr(name).to_str().map_err(|_| Error::invalid("metric name is not valid UTF-8"))?;
        let status = api::metric_status(name)?;
        let description = status.describe();
        if text_size > 0 {
            let mut len = description.len().min(text_size - 1);
            while !description.is_char_boundary(len) {
                len -= 1;
            }
            std::ptr::copy_nonoverlapping(description.as_ptr(), text.cast::<u8>(), len);
            text.add(len).write(0);
        }
        out.write(IqaMetricStatus {
            struct_size: size_of::<IqaMetricStatus>() as u32,
            availability: match status.availability {
                api::Availability::Ready => IqaAvailability::IQA_AVAILABILITY_READY,
                api::Availability::Download => IqaAvailability::IQA_AVAILABILITY_DOWNLOAD,
                api::Availability::Missing => IqaAvailability::IQA_AVAILABILITY_MISSING,
            },
            mode: match status.info.mode {
                Mode::FullReference => IqaMode::IQA_MODE_FR,
                Mode::NoReference => IqaMode::IQA_MODE_NR,
            },
            lower_better: status.info.lower_better,
            score_min: status.info.score_range.0,
            score_max: status.info.score_range.1,
            text_len: description.len() + 1,
        });
        Ok(())
    })
}

/// Creates a handle for the metric `name` (a pyiqa name). `options` may be NULL for defaults.
/// Handles of the same metric and model-relevant options share one loaded model.
/// On success *out receives a handle to free with iqa_metric_free; on error *out is untouched.
/// Errors: IQA_ERR_INVALID_ARGUMENT (NULL name/out, bad options), IQA_ERR_UNKNOWN_METRIC, IQA_ERR_DEVICE,
/// IQA_ERR_WEIGHTS, IQA_ERR_RUNTIME.
///
/// # Safety
/// `name` must be NULL or NUL-terminated; `options` NULL or valid for struct_size bytes; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_metric_create(
    name: *const c_char,
    options: *const IqaOptions,
    out: *mut *mut IqaMetric,
) -> IqaStatus {
    entry(|| {
        checked_out(out, "out")?;
        if name.is_null() {
            return Err(Error::invalid("metric name is NULL"));
        }
        let name_c = CStr::from_ptr(name);
        let name = name_c.to_str().map_err(|_| Error::invalid("metric name is not valid UTF-8"))?;
        let options = options_from_c(options)?;
        let metric = api::create_metric(name, &options)?;
        let handle = Box::new(IqaMetric { tag: LIVE_TAG, metric, name: name_c.to_owned() });
        out.write(Box::into_raw(handle));
        Ok(())
    })
}

/// Creates a handle for the TorchScript module at `path`. Its `forward` takes float32 N×3×H×W tensors in
/// [0,1] on the chosen device (dist, and ref for FR) and returns N scores (shape [N] or [N,1]). `spec` says
/// what it is; NULL = read the sidecar next to the file (`NAME.json` for `NAME.pt`:
/// {"mode": "FR" | "NR", "lower_better": false, "score_range": [0.0, 1.0]}). Handles of the same file and
/// model-relevant options share one loaded module.
/// Errors: IQA_ERR_INVALID_ARGUMENT (NULL path/out, bad spec or options), IQA_ERR_IO (file or sidecar
/// missing), IQA_ERR_WEIGHTS (not a TorchScript archive, forward takes the wrong number of images for the
/// mode, bad sidecar), IQA_ERR_DEVICE, IQA_ERR_RUNTIME.
///
/// # Safety
/// `path` must be NULL or NUL-terminated; `spec` NULL or valid for struct_size bytes with `name` NULL or
/// NUL-terminated; `options` NULL or valid for struct_size bytes; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_metric_create_torchscript(
    path: *const c_char,
    spec: *const IqaTorchScriptSpec,
    options: *const IqaOptions,
    out: *mut *mut IqaMetric,
) -> IqaStatus {
    entry(|| {
        checked_out(out, "out")?;
        let path = path_from_c(path, "path")?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("torchscript").to_string();
        let spec = if spec.is_null() {
            TorchScriptSpec::from_sidecar(&stem, &path.with_extension("json"))?
        } else {
            torchscript_spec_from_c(spec, &stem)?
        };
        let options = options_from_c(options)?;
        let metric = api::create_torchscript(&path, &spec, &options)?;
        let name = CString::new(spec.name).map_err(|_| Error::invalid("spec->name contains NUL"))?;
        out.write(Box::into_raw(Box::new(IqaMetric { tag: LIVE_TAG, metric, name })));
        Ok(())
    })
}

/// # Safety
/// `p` must be non-NULL and valid for its struct_size bytes; `name` NULL or NUL-terminated.
unsafe fn torchscript_spec_from_c(p: *const IqaTorchScriptSpec, default_name: &str) -> Result<TorchScriptSpec> {
    let s = checked_ref(p, "spec")?;
    if (s.struct_size as usize) < size_of::<IqaTorchScriptSpec>() {
        return Err(Error::invalid(format!(
            "spec->struct_size is {}; set it to sizeof(IqaTorchScriptSpec) ({})",
            s.struct_size,
            size_of::<IqaTorchScriptSpec>()
        )));
    }
    let name = if s.name.is_null() {
        default_name.to_string()
    } else {
        CStr::from_ptr(s.name).to_str().map_err(|_| Error::invalid("spec->name is not valid UTF-8"))?.to_string()
    };
    if name.is_empty() {
        return Err(Error::invalid("spec->name is empty"));
    }
    let mode = match IqaMode::try_from(read_enum(addr_of!(s.mode))) {
        Ok(IqaMode::IQA_MODE_FR) => Mode::FullReference,
        Ok(IqaMode::IQA_MODE_NR) => Mode::NoReference,
        Err(raw) => return Err(Error::invalid(format!("spec->mode {raw} is not an IqaMode (0..1)"))),
    };
    // A C bool that is neither 0 nor 1 is read as a byte, not trusted as a Rust bool.
    let lower_better = std::ptr::read(addr_of!(s.lower_better).cast::<u8>()) != 0;
    Ok(TorchScriptSpec { name, mode, lower_better, score_range: (s.score_min, s.score_max) })
}

/// Frees a handle (NULL is a no-op; a pointer that is not a live handle is ignored where detectable). The
/// model is freed with the last handle that uses it unless IQA_CACHE_SIZE keeps it. Do not use the handle
/// afterwards, nor free it while another thread is scoring with it.
///
/// # Safety
/// `metric` must be NULL or a handle from iqa_metric_create not yet freed.
#[no_mangle]
pub unsafe extern "C" fn iqa_metric_free(metric: *mut IqaMetric) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if metric.is_null() || checked_handle(metric).is_err() {
            return;
        }
        std::ptr::write_volatile(&mut (*metric).tag, FREED_TAG);
        drop(Box::from_raw(metric));
    }));
}

/// Describes the metric of a handle. out->name is owned by the handle and valid while it lives.
///
/// # Safety
/// `metric` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_metric_info(metric: *const IqaMetric, out: *mut IqaMetricInfo) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        checked_out(out, "out")?;
        let info = handle.metric.info();
        out.write(IqaMetricInfo {
            name: handle.name.as_ptr(),
            mode: match info.mode {
                Mode::FullReference => IqaMode::IQA_MODE_FR,
                Mode::NoReference => IqaMode::IQA_MODE_NR,
            },
            lower_better: info.lower_better,
            score_min: info.score_range.0,
            score_max: info.score_range.1,
        });
        Ok(())
    })
}

/// The device a handle's model runs on (what AUTO resolved to): *kind is CPU or CUDA, *index the CUDA
/// device index (0 for CPU). Either out pointer may be NULL.
///
/// # Safety
/// `metric` must be NULL or a live handle; `kind`, `index` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_metric_device(
    metric: *const IqaMetric,
    kind: *mut IqaDeviceKind,
    index: *mut i32,
) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        let (k, i) = match handle.metric.device() {
            tch::Device::Cuda(i) => (IqaDeviceKind::IQA_DEVICE_CUDA, i as i32),
            _ => (IqaDeviceKind::IQA_DEVICE_CPU, 0),
        };
        if !kind.is_null() {
            checked_out(kind, "kind")?;
            kind.write(k);
        }
        if !index.is_null() {
            checked_out(index, "index")?;
            index.write(i);
        }
        Ok(())
    })
}

/// The precision a handle's model really runs in: what was asked for where the metric honours it (lpips*,
/// dists, TorchScript modules; fp16 on the CPU runs fp32), else FP32.
///
/// # Safety
/// `metric` must be NULL or a live handle; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_metric_precision(metric: *const IqaMetric, out: *mut IqaPrecision) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        checked_out(out, "out")?;
        out.write(match handle.metric.precision() {
            Precision::Fp32 => IqaPrecision::IQA_PRECISION_FP32,
            Precision::Fp16 => IqaPrecision::IQA_PRECISION_FP16,
            Precision::Bf16 => IqaPrecision::IQA_PRECISION_BF16,
        });
        Ok(())
    })
}

/// Scores one image: `ref` is required for FR metrics and must be NULL for NR metrics. Pixel data is only
/// read during the call. Thread-safe: many threads may score with one handle at once.
/// On error *out_score is untouched. Errors: IQA_ERR_INVALID_ARGUMENT (NULL pointers, bad sizes, stride or
/// format, NaN/Inf or out-of-range float pixels, ref given/missing), IQA_ERR_SHAPE_MISMATCH (pair sizes differ,
/// image smaller than the metric's minimum), IQA_ERR_RUNTIME.
///
/// # Safety
/// `metric` a live handle or NULL; `dist`, `ref` NULL or valid images; `out_score` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_score(
    metric: *mut IqaMetric,
    dist: *const IqaImage,
    r#ref: *const IqaImage,
    out_score: *mut f64,
) -> IqaStatus {
    score_one(metric, dist, r#ref, out_score, image_from_c, |m, d, r| m.score(d, r))
}

/// Scores `count` images (`dists[i]` against `refs[i]`; `refs` NULL for NR metrics) into out_scores[0..count).
/// Images of one size run through the model in one forward pass; scores equal those of iqa_score.
/// On error no score is written.
///
/// # Safety
/// `dists` (and `refs` unless NULL) must point to `count` images; `out_scores` to `count` writable doubles.
#[no_mangle]
pub unsafe extern "C" fn iqa_score_batch(
    metric: *mut IqaMetric,
    dists: *const IqaImage,
    refs: *const IqaImage,
    count: usize,
    out_scores: *mut f64,
) -> IqaStatus {
    score_all(metric, dists, refs, count, out_scores, image_from_c, |m, d, r| m.score_batch(d, r))
}

/// Decodes and scores image files (PNG, JPEG, BMP, TIFF, WebP) as pyiqa reads them (RGB; gray replicated,
/// alpha dropped; 16-bit files keep 16 bits). `ref_path` NULL for NR metrics.
/// Errors as iqa_score, plus IQA_ERR_IO (missing/unreadable file, named in the message) and IQA_ERR_DECODE
/// (corrupt, truncated, unsupported or over the decoding limits).
///
/// # Safety
/// Paths NULL or NUL-terminated; `out_score` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_score_files(
    metric: *mut IqaMetric,
    dist_path: *const c_char,
    ref_path: *const c_char,
    out_score: *mut f64,
) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        checked_out(out_score, "out_score")?;
        let dist = path_from_c(dist_path, "dist_path")?;
        let reference = if ref_path.is_null() { None } else { Some(path_from_c(ref_path, "ref_path")?) };
        let score = handle.metric.score_files(&dist, reference.as_deref())?;
        out_score.write(score);
        Ok(())
    })
}

/// # Safety
/// `p` must be NULL or a NUL-terminated string.
unsafe fn caption_from_c<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::invalid(format!("{what} is NULL")));
    }
    CStr::from_ptr(p).to_str().map_err(|_| Error::invalid(format!("{what} is not valid UTF-8")))
}

/// Whether the metric scores an image against a caption (clipscore): such a metric scores only through
/// iqa_score_captioned, iqa_score_batch_captioned and iqa_score_files_captioned, and those score with no other.
/// Errors: IQA_ERR_INVALID_ARGUMENT (NULL pointers).
///
/// # Safety
/// `metric` a live handle or NULL; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_metric_takes_caption(metric: *const IqaMetric, out: *mut bool) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        checked_out(out, "out")?;
        out.write(handle.metric.takes_caption());
        Ok(())
    })
}

/// Scores one image against a caption (NUL-terminated UTF-8 of any length; CLIP reads its first 77 tokens).
/// On error *out_score is untouched. Errors as iqa_score, and IQA_ERR_INVALID_ARGUMENT for a metric that takes
/// no caption or a caption that is NULL or not UTF-8.
///
/// # Safety
/// `metric` a live handle or NULL; `image` NULL or a valid image; `caption` NULL or NUL-terminated;
/// `out_score` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_score_captioned(
    metric: *mut IqaMetric,
    image: *const IqaImage,
    caption: *const c_char,
    out_score: *mut f64,
) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        checked_out(out_score, "out_score")?;
        let image = image_from_c(image, "image")?;
        let caption = caption_from_c(caption, "caption")?;
        out_score.write(handle.metric.score_captioned(&image, caption)?);
        Ok(())
    })
}

/// Scores `count` images, `images[i]` against `captions[i]`, into out_scores[0..count); images of one size run
/// through the model in one forward pass. On error no score is written.
///
/// # Safety
/// `images` and `captions` must point to `count` images and `count` strings (each NULL or NUL-terminated);
/// `out_scores` to `count` writable doubles.
#[no_mangle]
pub unsafe extern "C" fn iqa_score_batch_captioned(
    metric: *mut IqaMetric,
    images: *const IqaImage,
    captions: *const *const c_char,
    count: usize,
    out_scores: *mut f64,
) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        checked_out(out_scores, "out_scores")?;
        if count == 0 {
            return Err(Error::invalid("count is 0: nothing to score"));
        }
        let images = array_from_c(images, count, "images", image_from_c)?;
        if captions.is_null() {
            return Err(Error::invalid("captions is NULL"));
        }
        let captions = (0..count)
            .map(|i| caption_from_c(*captions.add(i), &format!("captions[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let scores = handle.metric.score_batch_captioned(&images, &captions)?;
        std::ptr::copy_nonoverlapping(scores.as_ptr(), out_scores, count);
        Ok(())
    })
}

/// Decodes an image file (as iqa_score_files) and scores it against a caption. Errors as iqa_score_files and
/// iqa_score_captioned.
///
/// # Safety
/// `path` and `caption` NULL or NUL-terminated; `out_score` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_score_files_captioned(
    metric: *mut IqaMetric,
    path: *const c_char,
    caption: *const c_char,
    out_score: *mut f64,
) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        checked_out(out_score, "out_score")?;
        let path = path_from_c(path, "path")?;
        let caption = caption_from_c(caption, "caption")?;
        out_score.write(handle.metric.score_files_captioned(&path, caption)?);
        Ok(())
    })
}

/// Per-pixel map of one pair, for metrics that define one. Each map relates to its metric's score:
/// - the LPIPS family (lpips, lpips-vgg, lpips-squeeze and the + variants): each layer's distance upsampled to
///   the image size and summed (larger = more different; its mean is close to the score);
/// - ssim, ssimc: pyiqa's SSIM index map ('valid' 11×11 window: (width−10)×(height−10); its mean is the score);
/// - psnr, psnry: the squared error of RGB (averaged over channels) or luma in [0,1] (its mean is the MSE; the
///   score is 10·log10(1/(MSE + 1e-8)));
/// - gmsd: the gradient magnitude similarity of the 2×2-averaged luma ((width/2)×(height/2); the score is its
///   standard deviation).
///
/// Writes the map's floats, row-major, to out_map, which must hold `out_len` >= map width × map height floats
/// (iqa_map_size gives the map's size; it is the image's for most metrics). Errors: IQA_ERR_INVALID_ARGUMENT
/// (metric without a map, NULL pointers, out_len too small), IQA_ERR_SHAPE_MISMATCH, as iqa_score otherwise.
/// On error out_map is untouched.
///
/// # Safety
/// `metric` a live handle or NULL; `dist`, `ref` NULL or valid images; `out_map` NULL or `out_len` floats.
#[no_mangle]
pub unsafe extern "C" fn iqa_score_map(
    metric: *mut IqaMetric,
    dist: *const IqaImage,
    r#ref: *const IqaImage,
    out_map: *mut f32,
    out_len: usize,
) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        checked_out(out_map, "out_map")?;
        let dist = image_from_c(dist, "dist")?;
        let reference = image_from_c(r#ref, "ref")?;
        let (width, height) = handle.metric.map_size(dist.width(), dist.height())?;
        let needed = width as usize * height as usize;
        if out_len < needed {
            return Err(Error::invalid(format!(
                "out_len {out_len} is smaller than the {width}x{height} map ({needed} floats) of a {}x{} image",
                dist.width(),
                dist.height()
            )));
        }
        let map = handle.metric.score_map(&dist, &reference)?;
        std::ptr::copy_nonoverlapping(map.values.as_ptr(), out_map, map.values.len().min(out_len));
        Ok(())
    })
}

/// The size of iqa_score_map's map for an image of `width`×`height`: the image's own for most metrics,
/// (width−10)×(height−10) for ssim and ssimc, (width/2)×(height/2) for gmsd. Either out pointer may be NULL.
/// Errors: IQA_ERR_INVALID_ARGUMENT (NULL or dead handle, metric without a map).
///
/// # Safety
/// `metric` a live handle or NULL; `out_width`, `out_height` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_map_size(
    metric: *const IqaMetric,
    width: u32,
    height: u32,
    out_width: *mut u32,
    out_height: *mut u32,
) -> IqaStatus {
    entry(|| {
        let handle = checked_handle(metric)?;
        let (w, h) = handle.metric.map_size(width, height)?;
        if !out_width.is_null() {
            checked_out(out_width, "out_width")?;
        }
        if !out_height.is_null() {
            checked_out(out_height, "out_height")?;
        }
        if !out_width.is_null() {
            out_width.write(w);
        }
        if !out_height.is_null() {
            out_height.write(h);
        }
        Ok(())
    })
}

/// Counts of distinct loaded models and live handles, process-wide.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn iqa_cache_stats(out: *mut IqaCacheStats) -> IqaStatus {
    entry(|| {
        checked_out(out, "out")?;
        let stats = api::cache_stats();
        out.write(IqaCacheStats { models_alive: stats.models_alive, handles_alive: stats.handles_alive });
        Ok(())
    })
}
