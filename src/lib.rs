//! iqa: the image-quality metrics of pyiqa (IQA-PyTorch) over libtorch, as a Rust library and a C-ABI shared
//! library (`libiqa.so` + `include/iqa.h`).
//!
//! The public surface is small: [`api`] (create a [`Metric`] by its pyiqa name, score [`Image`]s or files),
//! [`error`], the pixel types of [`image`], and [`ffi`], the C ABI that wraps `api`. ARCHITECTURE.md shows
//! the layers behind it.
#![warn(missing_docs)]

pub mod api;
pub mod error;
pub mod ffi;
#[doc(hidden)]
pub mod fuzzing;
pub mod image;

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
    set_preset, CacheStats, DeviceRequest, Metric, MetricInfo, Mode, Options, Precision, Preset, TorchScriptSpec,
};
pub use error::{Error, ErrorKind, Result};
pub use image::{Image, PixelFormat};

/// The crate version ("0.1.0").
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
