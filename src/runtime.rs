//! Process-wide runtime settings: device choice (CUDA really loaded), CPU threads, precision, and the
//! environment variables that configure them.
use crate::error::{Error, ErrorKind, Result};
use once_cell::sync::OnceCell;
use tch::Device;

/// Where a metric runs, as requested by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceRequest {
    /// CUDA when usable, else CPU; `IQA_DEVICE` overrides it.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

/// Numeric precision of inference. Metrics whose scores move under reduced precision stay in fp32/fp64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    #[default]
    Fp32,
    Fp16,
    Bf16,
}

impl Precision {
    pub fn parse(text: &str) -> Option<Precision> {
        match text.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Some(Precision::Fp32),
            "fp16" | "float16" | "half" => Some(Precision::Fp16),
            "bf16" | "bfloat16" => Some(Precision::Bf16),
            _ => None,
        }
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses `cpu`, `cuda`, `cuda:N`.
pub fn parse_device(text: &str) -> Option<DeviceRequest> {
    let text = text.trim().to_ascii_lowercase();
    match text.as_str() {
        "cpu" => Some(DeviceRequest::Cpu),
        "cuda" | "gpu" => Some(DeviceRequest::Cuda(0)),
        "auto" => Some(DeviceRequest::Auto),
        _ => text.strip_prefix("cuda:").and_then(|n| n.parse().ok()).map(DeviceRequest::Cuda),
    }
}

/// The default precision: `IQA_PRECISION`, else fp32.
pub fn default_precision() -> Result<Precision> {
    match env_nonempty("IQA_PRECISION") {
        None => Ok(Precision::Fp32),
        Some(v) => Precision::parse(&v)
            .ok_or_else(|| Error::invalid(format!("IQA_PRECISION={v:?} is not one of fp32, fp16, bf16"))),
    }
}

/// Number of CUDA devices libtorch can use. libtorch_cuda is linked with --no-as-needed (see build.rs), so
/// its backend is registered before this runs.
pub fn cuda_device_count() -> usize {
    static COUNT: OnceCell<usize> = OnceCell::new();
    *COUNT.get_or_init(|| if tch::Cuda::is_available() { tch::Cuda::device_count().max(0) as usize } else { 0 })
}

/// Turns a request into a concrete device: AUTO → `IQA_DEVICE` if set → CUDA when usable → CPU.
pub fn resolve_device(request: DeviceRequest) -> Result<Device> {
    let request = match request {
        DeviceRequest::Auto => match env_nonempty("IQA_DEVICE") {
            None => DeviceRequest::Auto,
            Some(v) => parse_device(&v)
                .ok_or_else(|| Error::invalid(format!("IQA_DEVICE={v:?} is not one of cpu, cuda, cuda:N")))?,
        },
        r => r,
    };
    match request {
        DeviceRequest::Cpu => Ok(Device::Cpu),
        DeviceRequest::Auto => Ok(if cuda_device_count() > 0 { Device::Cuda(0) } else { Device::Cpu }),
        DeviceRequest::Cuda(index) => {
            let count = cuda_device_count();
            if index < count {
                Ok(Device::Cuda(index))
            } else if count == 0 {
                Err(Error::new(
                    ErrorKind::Device,
                    format!("CUDA device {index} requested, but CUDA is not available in this process (no NVIDIA driver or GPU found by libtorch)"),
                ))
            } else {
                Err(Error::new(
                    ErrorKind::Device,
                    format!("CUDA device {index} requested, but only {count} CUDA device(s) are available"),
                ))
            }
        }
    }
}

/// One-time process set-up before the first metric: `IQA_NUM_THREADS`.
pub fn init() -> Result<()> {
    static INIT: OnceCell<()> = OnceCell::new();
    INIT.get_or_try_init(|| {
        if let Some(v) = env_nonempty("IQA_NUM_THREADS") {
            let n: i32 = v
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::invalid(format!("IQA_NUM_THREADS={v:?} is not a positive integer")))?;
            tch::set_num_threads(n);
        }
        Ok(())
    })
    .copied()
}

/// `IQA_CACHE_SIZE`: how many recently freed models stay loaded (default 0).
pub fn cache_size() -> usize {
    env_nonempty("IQA_CACHE_SIZE").and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// A tensor that is only ever read after construction, shared between threads.
///
/// `tch::Tensor` is `Send` but not `Sync`. Read-only use from several threads is safe in libtorch (ops on a
/// const tensor allocate new outputs; the storage refcount is atomic), and this wrapper only hands out `&Tensor`
/// for such use: no in-place op is ever applied to model constants.
pub struct FrozenTensor(tch::Tensor);

// SAFETY: see the type's documentation; the tensor is never mutated after construction.
unsafe impl Sync for FrozenTensor {}

impl FrozenTensor {
    pub fn new(t: tch::Tensor) -> Self {
        FrozenTensor(t)
    }
}

impl std::ops::Deref for FrozenTensor {
    type Target = tch::Tensor;
    fn deref(&self) -> &tch::Tensor {
        &self.0
    }
}
