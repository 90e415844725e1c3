//! iqa: the image-quality metrics of pyiqa (IQA-PyTorch) over libtorch, as a Rust library and a C-ABI shared
//! library (`libiqa.so` + `include/iqa.h`).
//!
//! The public surface is small: [`api`] (create a [`Metric`] by its pyiqa name, score [`Image`]s, video
//! [`Frame`]s or files), [`error`], the pixel and frame types of [`image`] (with the Y4M and raw video
//! readers), [`video`] (a [`Stream`] of frame pairs scored and pooled), and [`ffi`], the C ABI that wraps
//! them. ARCHITECTURE.md shows the layers behind it.
#![warn(missing_docs)]

pub mod api;
pub mod error;
pub mod ffi;
#[doc(hidden)]
pub mod fuzzing;
pub mod image;
pub mod video;

mod cache;
mod catalogue;
mod metrics;
mod model;
mod nn;
mod registry;
mod runtime;
mod tensor;
mod weights;

pub use api::{
    cache_stats, create_metric, create_torchscript, cuda_backend, cuda_device_count, current_preset, metric_names,
    metric_status, pyiqa_catalogue, set_preset, Availability, CacheStats, DeviceRequest, FileSource, FileStatus,
    Metric, MetricInfo, MetricStatus, Mode, Options, Precision, PreparedReference, Preset, QualityMap, TorchScriptSpec,
};
pub use error::{Error, ErrorKind, Result};
pub use image::{
    open_video, ChromaSiting, ColorChoice, ColorMatrix, ColorRange, ColorSpec, Frame, FrameBuf, FrameFormat,
    FrameReader, Image, PixelFormat, RawFormat, RawReader, Y4mReader,
};
pub use video::{PooledScores, Pooling, Stream, StreamOptions};

/// The crate version ("0.1.0").
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
