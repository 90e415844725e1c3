//! Device choice: AUTO, `IQA_DEVICE`, and libtorch's CUDA backend, loaded only where a CUDA driver is.
use super::settings::{self, CudaPolicy, DeviceRequest};
use crate::error::{Error, ErrorKind, Result};
use once_cell::sync::OnceCell;
use tch::Device;

/// Whether libtorch's CUDA backend (libtorch_cuda.so) is loaded, and why not where it is not.
///
/// Loaded on first need, and only where a CUDA driver (libcuda.so.1) can be loaded too: linking it always cost
/// every process start-up time and memory on machines without a GPU (README, "How CUDA stays usable").
/// `IQA_CUDA=0` never loads it; `IQA_CUDA=force` loads it even without a driver (tests check that it
/// registers). A malformed `IQA_CUDA` is reported by [`resolve_device`].
pub fn load_cuda_backend() -> std::result::Result<(), String> {
    static LOADED: OnceCell<std::result::Result<(), String>> = OnceCell::new();
    LOADED
        .get_or_init(|| {
            match settings::cuda_policy().map_err(|e| e.message)? {
                CudaPolicy::Off => return Err("IQA_CUDA turns CUDA off".into()),
                CudaPolicy::Force => {}
                CudaPolicy::Auto => {
                    if let Err(e) = dlopen("libcuda.so.1", libc::RTLD_LAZY | libc::RTLD_LOCAL) {
                        return Err(format!("no CUDA driver ({e})"));
                    }
                }
            }
            // Found through libiqa's RUNPATH (the libtorch it was built against), else next to that libtorch.
            let fallback = concat!(env!("IQA_LIBTORCH_LIB_DIR"), "/libtorch_cuda.so");
            dlopen("libtorch_cuda.so", libc::RTLD_NOW | libc::RTLD_GLOBAL)
                .or_else(|_| dlopen(fallback, libc::RTLD_NOW | libc::RTLD_GLOBAL))
                .map_err(|e| format!("libtorch_cuda.so could not be loaded ({e})"))
        })
        .clone()
}

/// Loads a shared library for the life of the process.
fn dlopen(name: &str, flags: libc::c_int) -> std::result::Result<(), String> {
    let c = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: a valid NUL-terminated name; the handle is deliberately never closed.
    let handle = unsafe { libc::dlopen(c.as_ptr(), flags) };
    if handle.is_null() {
        // SAFETY: dlerror returns NULL or a valid C string owned by libc, read before any other dl* call.
        let err = unsafe { libc::dlerror() };
        let text = if err.is_null() {
            "unknown error".to_string()
        } else {
            // SAFETY: non-NULL, NUL-terminated (see above).
            unsafe { std::ffi::CStr::from_ptr(err) }.to_string_lossy().into_owned()
        };
        return Err(text);
    }
    Ok(())
}

/// Number of CUDA devices libtorch can use (0 where its CUDA backend cannot be loaded).
pub fn cuda_device_count() -> usize {
    static COUNT: OnceCell<usize> = OnceCell::new();
    *COUNT.get_or_init(|| {
        if load_cuda_backend().is_err() {
            return 0;
        }
        if tch::Cuda::is_available() {
            tch::Cuda::device_count().max(0) as usize
        } else {
            0
        }
    })
}

/// Turns a request into a concrete device: AUTO → `IQA_DEVICE` if set → CUDA when usable → CPU.
pub fn resolve_device(request: DeviceRequest) -> Result<Device> {
    settings::cuda_policy()?;
    let request = match request {
        DeviceRequest::Auto => settings::device()?.unwrap_or(DeviceRequest::Auto),
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
                let why = load_cuda_backend().err().unwrap_or_else(|| "libtorch found no GPU".into());
                Err(Error::new(
                    ErrorKind::Device,
                    format!("CUDA device {index} requested, but CUDA is not available in this process: {why}"),
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
