//! iqa: the image-quality metrics of pyiqa (IQA-PyTorch) over libtorch, as a Rust library and a C-ABI shared
//! library (`libiqa.so` + `include/iqa.h`).
//!
//! The layers, outside in: [`ffi`] (the C ABI, a thin shell) → [`api`] (this safe API) → [`image`] (pixels to
//! tensors) → [`metrics`] (the math) with [`registry`] sharing built models between handles.
pub mod api;
mod catalogue;
pub mod error;
pub mod ffi;
pub mod image;
pub mod metrics;
pub mod nn;
pub mod registry;
pub mod runtime;
pub mod weights;

pub use api::{
    cache_stats, create_metric, create_torchscript, metric_names, set_preset, CacheStats, Metric, MetricInfo, Options,
};
pub use error::{Error, ErrorKind, Result};
pub use image::{Image, PixelFormat};
pub use metrics::torchscript::TorchScriptSpec;
pub use registry::Mode;
pub use runtime::{DeviceRequest, Precision, Preset};

/// The crate version ("0.1.0").
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
