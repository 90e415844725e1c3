//! Link settings that make libiqa.so, the tests and every binary usable as built:
//! - rpath to the libtorch that torch-sys found, so nothing needs LD_LIBRARY_PATH;
//! - libtorch_cuda is NOT linked: the default `--as-needed` drops it (no symbol of it is referenced), and
//!   runtime::load_cuda_backend dlopens it when a CUDA driver is present, which registers libtorch's CUDA
//!   backend. Linking it always would cost every process ~130 ms and its pages on machines without a GPU.
use std::path::PathBuf;

fn main() {
    let lib_dir = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys did not report the libtorch lib directory"),
    );
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    println!("cargo:rustc-env=IQA_LIBTORCH_LIB_DIR={}", lib_dir.display());
    println!("cargo:rerun-if-changed=build.rs");
}
