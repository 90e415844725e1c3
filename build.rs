//! Link settings that make libiqa.so, the tests and every binary usable as built, and installable unchanged:
//! - rpath to the libtorch that torch-sys found, so nothing needs LD_LIBRARY_PATH; before it, where
//!   `make install LIBTORCH_BUNDLE=cpu|cuda` copies libtorch ($ORIGIN/iqa/torch/lib beside libiqa,
//!   $ORIGIN/../lib/iqa/torch/lib from bin/iqa), so that a bundled install needs nothing of the checkout;
//! - soname libiqa.so.<IQA_ABI_VERSION>, set here rather than patched at install time so that the installed
//!   file is the built one; a libiqa.so.<ABI> -> libiqa.so symlink in the profile directory lets programs
//!   linked with `-Ltarget/release -liqa` (which record the soname) run from the build tree as well;
//! - libtorch_cuda is NOT linked: the default `--as-needed` drops it (no symbol of it is referenced), and
//!   runtime::load_cuda_backend dlopens it when a CUDA driver is present, which registers libtorch's CUDA
//!   backend. Linking it always would cost every process ~130 ms and its pages on machines without a GPU.
use std::path::{Path, PathBuf};

/// Where an install keeps its copy of libtorch, relative to the directory of libiqa.so (scripts/install.sh).
const BUNDLE_FROM_LIB: &str = "$ORIGIN/iqa/torch/lib";
const BUNDLE_FROM_BIN: &str = "$ORIGIN/../lib/iqa/torch/lib";

fn main() {
    let lib_dir = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys did not report the libtorch lib directory"),
    );
    let soname = format!("libiqa.so.{}", abi_version());
    // Printed before the rpath every target gets: ld joins -rpath options in order, and the bundle must win.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,{BUNDLE_FROM_LIB}");
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{BUNDLE_FROM_BIN}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    println!("cargo:rustc-env=IQA_LIBTORCH_LIB_DIR={}", lib_dir.display());
    link_soname_in_profile_dir(&soname);
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/ffi/types.rs");
}

/// IQA_ABI_VERSION as src/ffi/types.rs defines it (the one place it is written).
fn abi_version() -> u32 {
    let path = "src/ffi/types.rs";
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .find_map(|l| l.trim().strip_prefix("pub const IQA_ABI_VERSION: u32 = ")?.strip_suffix(';')?.parse().ok())
        .unwrap_or_else(|| panic!("{path} has no `pub const IQA_ABI_VERSION: u32 = N;`"))
}

/// target/<profile>/libiqa.so.<ABI> -> libiqa.so. OUT_DIR is <target>/<profile>/build/iqa-<hash>/out.
fn link_soname_in_profile_dir(soname: &str) {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let profile_dir = match out_dir.ancestors().nth(3) {
        Some(dir) if out_dir.ancestors().nth(2).and_then(Path::file_name) == Some("build".as_ref()) => dir,
        _ => {
            println!("cargo:warning=unexpected OUT_DIR {}: no {soname} symlink made", out_dir.display());
            return;
        }
    };
    let link = profile_dir.join(soname);
    if std::fs::read_link(&link).is_ok_and(|target| target == Path::new("libiqa.so")) {
        return;
    }
    let _ = std::fs::remove_file(&link);
    if let Err(e) = std::os::unix::fs::symlink("libiqa.so", &link) {
        println!("cargo:warning=cannot make {}: {e}", link.display());
    }
}
