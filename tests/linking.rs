//! libiqa.so and every binary find libtorch by themselves, and libtorch_cuda is loaded (so that CUDA is usable)
//! exactly where a CUDA driver is.
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

fn libtorch_cuda_mapped() -> bool {
    std::fs::read_to_string("/proc/self/maps").unwrap().contains("libtorch_cuda.so")
}

fn has_cuda_build() -> bool {
    std::path::Path::new(env!("IQA_LIBTORCH_LIB_DIR")).join("libtorch_cuda.so").exists()
}

/// libtorch_cuda is loaded on first need exactly where a CUDA driver can be loaded; on a machine without one
/// (this CI) it never enters the process, whether through the Rust API or a dlopen'ed libiqa.so.
#[test]
fn libtorch_cuda_is_loaded_exactly_where_a_cuda_driver_is() {
    let driver = unsafe { !libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_LAZY).is_null() };
    let m = iqa::create_metric("psnr", &iqa::Options::default()).unwrap();
    assert_eq!(libtorch_cuda_mapped(), driver && has_cuda_build(), "driver present: {driver}");
    assert_eq!(m.device() != tch::Device::Cpu, iqa::cuda_device_count() > 0);
    let script = format!(
        "import ctypes; lib = ctypes.CDLL({:?}); h = ctypes.c_void_p(); \
         print(lib.iqa_metric_create(b'psnr', None, ctypes.byref(h))); \
         print('libtorch_cuda.so' in open('/proc/self/maps').read())",
        libiqa().to_string_lossy()
    );
    let out = Command::new("python3").arg("-c").arg(script).env_clear().output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python3 failed: {}", String::from_utf8_lossy(&out.stderr));
    let mapped = if driver && has_cuda_build() { "True" } else { "False" };
    assert_eq!(text.lines().collect::<Vec<_>>(), ["0", mapped]);
}

/// With IQA_CUDA=force libtorch_cuda is loaded even without a driver, and its CUDA backend registers: a CUDA
/// tensor then fails in the CUDA runtime (no driver), not for want of a CUDA backend. This is what proves the
/// lazy load makes CUDA usable on a GPU machine. Run in a child process (IQA_CUDA is read once).
#[test]
fn a_lazily_loaded_libtorch_cuda_registers_the_cuda_backend() {
    if !has_cuda_build() {
        panic!("this libtorch has no libtorch_cuda.so: the PyPI torch wheel scripts/setup.sh installs has one");
    }
    if std::env::var_os("IQA_LINKING_CHILD").is_some() {
        let before = tch::Tensor::f_zeros([1], (tch::Kind::Float, tch::Device::Cuda(0))).unwrap_err().to_string();
        assert!(!libtorch_cuda_mapped());
        assert_eq!(iqa::cuda_backend(), Ok(()));
        assert!(libtorch_cuda_mapped());
        let after = tch::Tensor::f_zeros([1], (tch::Kind::Float, tch::Device::Cuda(0))).map(|_| ()).err();
        println!("CHILD before: {}", before.lines().next().unwrap_or(""));
        println!("CHILD after: {:?}", after.map(|e| e.to_string().lines().next().unwrap_or("").to_string()));
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "a_lazily_loaded_libtorch_cuda_registers_the_cuda_backend", "--nocapture"])
        .env("IQA_LINKING_CHILD", "1")
        .env("IQA_CUDA", "force")
        .output()
        .expect("test binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = |tag: &str| text.lines().find_map(|l| l.strip_prefix(tag)).unwrap_or_default().to_string();
    let (before, after) = (line("CHILD before: "), line("CHILD after: "));
    assert!(before.contains("CUDA") && before.contains("backend"), "before loading: {before}");
    assert!(!after.contains("backend"), "after loading, the CUDA backend is registered: {after}");
}

#[test]
fn auto_picks_cuda_exactly_when_libtorch_reports_it() {
    let m = iqa::create_metric("psnr", &iqa::Options::default()).unwrap();
    let want = if iqa::cuda_device_count() > 0 { tch::Device::Cuda(0) } else { tch::Device::Cpu };
    assert_eq!(m.device(), want);
}
