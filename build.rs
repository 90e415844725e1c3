//! Link settings that make libiqa.so, the tests and every binary usable as built:
//! - rpath to the libtorch that torch-sys found, so nothing needs LD_LIBRARY_PATH;
//! - libtorch_cuda kept as a DT_NEEDED entry. The default `--as-needed` drops it because no symbol of it is
//!   referenced directly, and then libtorch never registers its CUDA backend: CUDA would be unavailable even
//!   on a GPU machine.
use std::path::PathBuf;

fn main() {
    let lib_dir = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys did not report the libtorch lib directory"),
    );
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    println!("cargo:rustc-env=IQA_LIBTORCH_LIB_DIR={}", lib_dir.display());
    for cuda_lib in ["torch_cuda", "c10_cuda"] {
        if lib_dir.join(format!("lib{cuda_lib}.so")).exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-l{cuda_lib}");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
