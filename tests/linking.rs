//! libiqa.so and every binary find libtorch by themselves, and libtorch_cuda stays linked so that CUDA is
//! usable when present (on a CPU machine: the library is mapped into the process).
mod common;
use common::libiqa;
use std::process::Command;

#[test]
fn libiqa_resolves_every_dependency_without_ld_library_path() {
    let out = Command::new("ldd").arg(libiqa()).env_remove("LD_LIBRARY_PATH").output().expect("ldd runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ldd failed: {text}");
    assert!(!text.contains("not found"), "unresolved libraries:\n{text}");
    assert!(text.contains("libtorch_cpu.so"), "{text}");
}

#[test]
fn libtorch_cuda_is_mapped_in_this_process_and_through_dlopen() {
    let has_cuda_build = std::path::Path::new(env!("IQA_LIBTORCH_LIB_DIR")).join("libtorch_cuda.so").exists();
    if !has_cuda_build {
        eprintln!("this libtorch has no libtorch_cuda.so (CPU-only build): nothing to keep linked");
        return;
    }
    // Touch libtorch so that the test binary certainly links it.
    assert!(tch::Cuda::device_count() >= 0);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(maps.contains("libtorch_cuda.so"), "libtorch_cuda.so not mapped into the test process");
    // A Python with no environment at all loads libiqa.so through dlopen, and libtorch_cuda comes with it.
    let script = format!(
        "import ctypes; lib = ctypes.CDLL({:?}); lib.iqa_version.restype = ctypes.c_char_p; \
         print(lib.iqa_version().decode()); print('libtorch_cuda.so' in open('/proc/self/maps').read())",
        libiqa().to_string_lossy()
    );
    let out = Command::new("python3").arg("-c").arg(script).env_clear().output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python3 failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.lines().collect::<Vec<_>>(), [env!("CARGO_PKG_VERSION"), "True"]);
}

#[test]
fn auto_picks_cuda_exactly_when_libtorch_reports_it() {
    let m = iqa::create_metric("psnr", &iqa::Options::default()).unwrap();
    let want = if tch::Cuda::is_available() { tch::Device::Cuda(0) } else { tch::Device::Cpu };
    assert_eq!(m.device(), want);
}
