//! The C contract's types (ABI version 1; frames and streams were added without changing it). Enum fields of
//! structs the caller fills are read as raw integers and decoded with `TryFrom<u32>` (below each enum), never
//! read as Rust enums, so that a bad value is an error rather than undefined behaviour.
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
    /// Planar float32, 0..1: three planes R, G, B of `height` rows each, `stride` bytes from one row to the
    /// next (0 = width*4) and from each plane's last row to the next plane's first, so plane c starts
    /// c*height*stride bytes after `data`; the buffer holds (3*height-1)*stride + width*4 bytes. Image n of a
    /// contiguous float32 N×3×H×W tensor is data = base + n*3*H*W*4, stride 0 (or W*4).
    IQA_FORMAT_RGB_F32_PLANAR = 9,
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
    IQA_FORMAT_RGB_F32_PLANAR,
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

/// Layout and bit depth of a frame's samples. 10-bit samples are little-endian uint16.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqaFrameFormat {
    /// 8-bit 4:2:0; planes Y, U, V (yuv420p).
    IQA_FRAME_I420 = 0,
    /// 8-bit 4:2:0; planes Y and interleaved U,V (nv12).
    IQA_FRAME_NV12 = 1,
    /// 8-bit 4:2:2; planes Y, U, V (yuv422p).
    IQA_FRAME_I422 = 2,
    /// 8-bit 4:4:4; planes Y, U, V (yuv444p).
    IQA_FRAME_I444 = 3,
    /// 10-bit 4:2:0; planes Y, U, V; values in the low 10 bits, at most 1023 (yuv420p10le).
    IQA_FRAME_I420_10 = 4,
    /// 10-bit 4:2:0; planes Y and interleaved U,V; values in the high 10 bits, low 6 bits zero (p010le).
    IQA_FRAME_P010 = 5,
    /// 10-bit 4:2:2; planes Y, U, V; values in the low 10 bits (yuv422p10le).
    IQA_FRAME_I422_10 = 6,
    /// 10-bit 4:4:4; planes Y, U, V; values in the low 10 bits (yuv444p10le).
    IQA_FRAME_I444_10 = 7,
}

decode_c_enum!(IqaFrameFormat {
    IQA_FRAME_I420,
    IQA_FRAME_NV12,
    IQA_FRAME_I422,
    IQA_FRAME_I444,
    IQA_FRAME_I420_10,
    IQA_FRAME_P010,
    IQA_FRAME_I422_10,
    IQA_FRAME_I444_10,
});

/// Matrix coefficients of Y'CbCr (non-constant luminance).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqaColorMatrix {
    /// Kr 0.2126, Kb 0.0722 (HD). The default (0).
    IQA_MATRIX_BT709 = 0,
    /// Kr 0.299, Kb 0.114 (SD; SMPTE 170M, BT.470 BG).
    IQA_MATRIX_BT601 = 1,
    /// Kr 0.2627, Kb 0.0593 (UHD, non-constant luminance).
    IQA_MATRIX_BT2020 = 2,
}

decode_c_enum!(IqaColorMatrix { IQA_MATRIX_BT709, IQA_MATRIX_BT601, IQA_MATRIX_BT2020 });

/// Which code values span black to white.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqaColorRange {
    /// "TV": Y 16..235, chroma 16..240, times 2^(bits-8). The default (0).
    IQA_RANGE_LIMITED = 0,
    /// "PC": 0..2^bits-1.
    IQA_RANGE_FULL = 1,
}

decode_c_enum!(IqaColorRange { IQA_RANGE_LIMITED, IQA_RANGE_FULL });

/// Where chroma samples sit relative to luma in subsampled formats (ignored for 4:4:4).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqaChromaSiting {
    /// Co-sited with the left luma sample, vertically between rows: MPEG-2, H.264, HEVC (chroma_sample_loc_type
    /// 0). The default (0).
    IQA_CHROMA_LEFT = 0,
    /// Centred both ways: JPEG, MPEG-1 (type 1).
    IQA_CHROMA_CENTER = 1,
    /// Co-sited with the top-left luma sample (type 2).
    IQA_CHROMA_TOPLEFT = 2,
}

decode_c_enum!(IqaChromaSiting { IQA_CHROMA_LEFT, IQA_CHROMA_CENTER, IQA_CHROMA_TOPLEFT });

/// A caller's video frame. Converted to RGB as the README documents (range, bilinear chroma upsampling at the
/// siting, matrix, clamping to [0,1], no rounding); its score is the metric's score on that RGB image.
#[repr(C)]
pub struct IqaFrame {
    /// sizeof(IqaFrame) as the caller compiled it.
    pub struct_size: u32,
    /// Luma size in pixels; even widths (4:2:0, 4:2:2) and heights (4:2:0).
    pub width: u32,
    pub height: u32,
    pub format: IqaFrameFormat,
    pub matrix: IqaColorMatrix,
    pub range: IqaColorRange,
    pub siting: IqaChromaSiting,
    /// Y, U, V (planar) or Y, UV (NV12, P010; planes[2] unused). Borrowed for the duration of the call only.
    pub planes: [*const c_void; 3],
    /// Bytes from one row of each plane to the next; 0 = tightly packed.
    pub strides: [usize; 3],
}

/// Options for iqa_stream_open. Fill with iqa_stream_options_default() first, then change fields; 0 in a
/// count means its default.
#[repr(C)]
pub struct IqaStreamOptions {
    /// sizeof(IqaStreamOptions) as the caller compiled it.
    pub struct_size: u32,
    /// Score every Nth frame pushed (frames 0, N, 2N, ...); default 1 = every frame.
    pub subsample: u32,
    /// Worker threads scoring frames behind iqa_stream_push; default 1.
    pub threads: u32,
    /// Frames that may wait for a worker before iqa_stream_push blocks; default 4.
    pub queue: u32,
    /// Consecutive waiting frames scored in one forward pass; default 1.
    pub batch: u32,
    /// Keep only the running pooled values (constant memory): no per-frame reads, no percentiles. Default
    /// false: 8 bytes per metric per scored frame are kept.
    pub pooled_only: bool,
    /// Device and precision of every metric; NULL = defaults.
    pub metric_options: *const IqaOptions,
}

/// How iqa_stream_pooled pools per-frame scores.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqaPooling {
    IQA_POOL_MEAN = 0,
    /// libvmaf's harmonic mean: n / sum(1 / (score + 1)) - 1.
    IQA_POOL_HARMONIC_MEAN = 1,
    IQA_POOL_MIN = 2,
    IQA_POOL_MAX = 3,
    /// The p-th percentile, linear between the closest ranks (numpy's default): with the n scores sorted and
    /// r = p/100 * (n-1), s[floor r] + (r - floor r) * (s[ceil r] - s[floor r]).
    IQA_POOL_PERCENTILE = 4,
}

decode_c_enum!(IqaPooling { IQA_POOL_MEAN, IQA_POOL_HARMONIC_MEAN, IQA_POOL_MIN, IQA_POOL_MAX, IQA_POOL_PERCENTILE });

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
