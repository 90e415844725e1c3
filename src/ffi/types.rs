//! The C contract's types (ABI version 1). Enum fields of structs the caller fills are read as raw integers
//! and decoded with `TryFrom<u32>` (below each enum), never read as Rust enums, so that a bad value is an error
//! rather than undefined behaviour.
#![allow(non_camel_case_types, missing_docs)]
use std::ffi::{c_char, c_void};

/// `TryFrom<u32>` for a C enum, from its variant list: the raw value a caller stored, or the value back as
/// the error when the enum has no such variant.
macro_rules! decode_c_enum {
    ($name:ident { $($variant:ident),+ $(,)? }) => {
        impl TryFrom<u32> for $name {
            type Error = u32;
            fn try_from(raw: u32) -> Result<Self, u32> {
                $(if raw == $name::$variant as u32 {
                    return Ok($name::$variant);
                })+
                Err(raw)
            }
        }
    };
}

/// Version of the C ABI described by this header; bumped on any incompatible change.
pub const IQA_ABI_VERSION: u32 = 1;

/// Result of every fallible call. On anything but IQA_OK, iqa_last_error() describes what failed.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqaStatus {
    IQA_OK = 0,
    /// NULL pointer, bad enum value, bad sizes/stride, NaN/Inf in float pixels.
    IQA_ERR_INVALID_ARGUMENT = 1,
    IQA_ERR_UNKNOWN_METRIC = 2,
    /// File missing or unreadable.
    IQA_ERR_IO = 3,
    /// Corrupt, truncated, unsupported or over-limit image.
    IQA_ERR_DECODE = 4,
    /// FR pair of different sizes; image too small for the metric.
    IQA_ERR_SHAPE_MISMATCH = 5,
    /// Weights missing, corrupt, wrong shapes, checksum mismatch.
    IQA_ERR_WEIGHTS = 6,
    /// Requested device not available.
    IQA_ERR_DEVICE = 7,
    /// libtorch error, out of memory.
    IQA_ERR_RUNTIME = 8,
    /// Internal bug caught at the boundary; the process survives.
    IQA_ERR_PANIC = 9,
}

/// Layout of one pixel.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqaPixelFormat {
    IQA_FORMAT_RGB8 = 0,
    IQA_FORMAT_RGBA8 = 1,
    IQA_FORMAT_BGR8 = 2,
    IQA_FORMAT_BGRA8 = 3,
    IQA_FORMAT_GRAY8 = 4,
    /// Native-endian u16 per channel, full range 0..65535.
    IQA_FORMAT_RGB16 = 5,
    /// Interleaved float32, 0..1.
    IQA_FORMAT_RGB_F32 = 6,
    /// Interleaved IEEE half, 0..1.
    IQA_FORMAT_RGB_F16 = 7,
    IQA_FORMAT_GRAY_F32 = 8,
}

decode_c_enum!(IqaPixelFormat {
    IQA_FORMAT_RGB8,
    IQA_FORMAT_RGBA8,
    IQA_FORMAT_BGR8,
    IQA_FORMAT_BGRA8,
    IQA_FORMAT_GRAY8,
    IQA_FORMAT_RGB16,
    IQA_FORMAT_RGB_F32,
    IQA_FORMAT_RGB_F16,
    IQA_FORMAT_GRAY_F32,
});

/// A caller's pixel buffer.
#[repr(C)]
pub struct IqaImage {
    /// Borrowed for the duration of the call only.
    pub data: *const c_void,
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next; 0 = tightly packed.
    pub stride: usize,
    pub format: IqaPixelFormat,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqaDeviceKind {
    IQA_DEVICE_AUTO = 0,
    IQA_DEVICE_CPU = 1,
    IQA_DEVICE_CUDA = 2,
}

decode_c_enum!(IqaDeviceKind { IQA_DEVICE_AUTO, IQA_DEVICE_CPU, IQA_DEVICE_CUDA });

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqaPrecision {
    IQA_PRECISION_FP32 = 0,
    IQA_PRECISION_FP16 = 1,
    IQA_PRECISION_BF16 = 2,
}

decode_c_enum!(IqaPrecision { IQA_PRECISION_FP32, IQA_PRECISION_FP16, IQA_PRECISION_BF16 });

/// Options for iqa_metric_create. Fill with iqa_options_default() first, then change fields.
#[repr(C)]
pub struct IqaOptions {
    /// sizeof(IqaOptions) as the caller compiled it: lets the struct grow.
    pub struct_size: u32,
    /// AUTO = CUDA when usable, else CPU (IQA_DEVICE env var overrides AUTO).
    pub device: IqaDeviceKind,
    pub device_index: i32,
    /// FP16/BF16 = mixed precision inference where the metric allows it.
    pub precision: IqaPrecision,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqaMode {
    IQA_MODE_FR = 0,
    IQA_MODE_NR = 1,
}

decode_c_enum!(IqaMode { IQA_MODE_FR, IQA_MODE_NR });

/// Describes a TorchScript module for iqa_metric_create_torchscript.
#[repr(C)]
pub struct IqaTorchScriptSpec {
    /// sizeof(IqaTorchScriptSpec) as the caller compiled it.
    pub struct_size: u32,
    /// What iqa_metric_info reports (copied; NULL = the file name without extension).
    pub name: *const c_char,
    /// FR: forward(dist, ref); NR: forward(dist).
    pub mode: IqaMode,
    pub lower_better: bool,
    /// Rough score range; NAN where unknown.
    pub score_min: f64,
    pub score_max: f64,
}

#[repr(C)]
pub struct IqaMetricInfo {
    /// Owned by the library; valid while the handle lives.
    pub name: *const c_char,
    pub mode: IqaMode,
    pub lower_better: bool,
    /// Rough range as pyiqa states it; NAN where unknown.
    pub score_min: f64,
    pub score_max: f64,
}

#[repr(C)]
pub struct IqaCacheStats {
    /// Distinct loaded models (shared between handles).
    pub models_alive: usize,
    pub handles_alive: usize,
}

/// Whether a metric can be created here now (iqa_metric_status).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqaAvailability {
    /// Everything it needs is built in or found on this machine.
    IQA_AVAILABILITY_READY = 0,
    /// Creating it first downloads a pretrained file (sha256-verified, into the cache directory).
    IQA_AVAILABILITY_DOWNLOAD = 1,
    /// A pretrained file is missing and cannot be downloaded now (IQA_OFFLINE=1, or no verified checksum).
    IQA_AVAILABILITY_MISSING = 2,
}

/// What iqa_metric_status reports. Set struct_size = sizeof(IqaMetricStatus) before the call.
#[repr(C)]
pub struct IqaMetricStatus {
    /// sizeof(IqaMetricStatus) as the caller compiled it: lets the struct grow.
    pub struct_size: u32,
    pub availability: IqaAvailability,
    pub mode: IqaMode,
    pub lower_better: bool,
    /// Rough range as pyiqa states it; NAN where unknown.
    pub score_min: f64,
    pub score_max: f64,
    /// Bytes the whole description needs, its terminating NUL included; larger than text_size when the text
    /// written was cut short.
    pub text_len: usize,
}
