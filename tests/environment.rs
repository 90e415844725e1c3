//! Environment variables, through the CLI (each run is a fresh process, so the variables are read anew).
mod common;
use common::root;
use std::process::{Command, Output};

fn score_psnr(vars: &[(&str, &str)]) -> Output {
    let (d, r) = (root().join("data/calibration/dist/I03.bmp"), root().join("data/calibration/ref/I03.bmp"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iqa"));
    cmd.arg("score").arg("psnr").arg(&d).arg(&r);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn assert_fails_with(vars: &[(&str, &str)], needle: &str) {
    let out = score_psnr(vars);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(needle), "{vars:?}: {err}");
}

fn assert_scores(vars: &[(&str, &str)]) {
    let out = score_psnr(vars);
    assert!(out.status.success(), "{vars:?}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("21.1136"), "{vars:?}");
}

#[test]
fn iqa_device() {
    assert_scores(&[("IQA_DEVICE", "cpu")]);
    assert_scores(&[("IQA_DEVICE", "auto")]);
    assert_fails_with(&[("IQA_DEVICE", "tpu")], "IQA_DEVICE=\"tpu\"");
    if iqa::cuda_device_count() == 0 {
        assert_fails_with(&[("IQA_DEVICE", "cuda")], "CUDA device 0 requested");
        assert_fails_with(&[("IQA_DEVICE", "cuda:3")], "CUDA device 3 requested");
    }
}

#[test]
fn iqa_num_threads() {
    assert_scores(&[("IQA_NUM_THREADS", "1")]);
    assert_fails_with(&[("IQA_NUM_THREADS", "zero")], "IQA_NUM_THREADS=\"zero\"");
    assert_fails_with(&[("IQA_NUM_THREADS", "0")], "positive integer");
}

#[test]
fn iqa_precision() {
    assert_scores(&[("IQA_PRECISION", "bf16")]);
    assert_fails_with(&[("IQA_PRECISION", "fp8")], "IQA_PRECISION=\"fp8\"");
}

/// Every variable has one policy: unset or empty is the default, a value that does not parse is an error
/// naming the variable and the values it accepts.
#[test]
fn malformed_values_are_errors_naming_the_variable_and_accepted_values() {
    for (var, value, accepted) in [
        ("IQA_CACHE_SIZE", "-1", "a non-negative integer"),
        ("IQA_CACHE_SIZE", "four", "a non-negative integer"),
        ("IQA_PRESET", "fastest", "accuracy, speed, memory"),
        ("IQA_CUDA", "sometimes", "auto, 0 (or off, no, false), force"),
        ("IQA_OFFLINE", "maybe", "1, 0, true, false, yes, no, on, off"),
        ("IQA_NUM_THREADS", "-2", "a positive integer"),
    ] {
        assert_fails_with(&[(var, value)], &format!("{var}=\"{value}\" is not valid; accepted: {accepted}"));
    }
    for (var, value) in
        [("IQA_CACHE_SIZE", "3"), ("IQA_CACHE_SIZE", ""), ("IQA_CUDA", "0"), ("IQA_OFFLINE", "no"), ("IQA_PRESET", " ")]
    {
        assert_scores(&[(var, value)]);
    }
}

/// A directory to use as IQA_WEIGHTS_DIR / IQA_CACHE_DIR, removed first.
fn fresh_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("iqa-env-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn score_lpips(weights: &std::path::Path, cache: &std::path::Path) -> Output {
    let (d, r) = (root().join("data/calibration/dist/I03.bmp"), root().join("data/calibration/ref/I03.bmp"));
    Command::new(env!("CARGO_BIN_EXE_iqa"))
        .arg("score")
        .arg("lpips")
        .arg(&d)
        .arg(&r)
        .env("IQA_WEIGHTS_DIR", weights)
        .env("IQA_CACHE_DIR", cache)
        .env("IQA_OFFLINE", "1")
        .output()
        .unwrap()
}

#[test]
fn missing_weights_offline_name_the_file_the_places_and_the_url() {
    let (weights, cache) = (fresh_dir("empty-weights"), fresh_dir("empty-cache"));
    let out = score_lpips(&weights, &cache);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for needle in ["alexnet-owt-7be5be79.pth", "https://", &*weights.to_string_lossy(), &*cache.to_string_lossy()] {
        assert!(err.contains(needle), "message lacks {needle}: {err}");
    }
}

/// The official file names (legacy-format .pth for the LPIPS layers, as pyiqa caches them) give the same
/// score as the shared safetensors; a wrong-shape or corrupt file is a weights error, not a crash.
#[test]
fn official_pth_names_load_and_bad_files_are_weights_errors() {
    let shared = common::require_weights_dir();
    let cache = fresh_dir("cache");
    let dir = fresh_dir("official");
    std::fs::copy(shared.join("lpips/lpips_v0.1_alex_lin.pth"), dir.join("LPIPS_v0.1_alex-df73285e.pth")).unwrap();
    std::fs::copy(
        shared.join("backbones/alexnet_features_torchvision.safetensors"),
        dir.join("alexnet_features_torchvision.safetensors"),
    )
    .unwrap();
    let out = score_lpips(&dir, &cache);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let official: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let out = score_lpips(&shared, &cache);
    let from_shared: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(official, from_shared);
    assert!((official - 0.7237).abs() < 1e-4);

    // The VGG layers under the AlexNet layers' name: wrong shapes.
    std::fs::copy(shared.join("lpips/lpips_v0.1_vgg_lin.pth"), dir.join("LPIPS_v0.1_alex-df73285e.pth")).unwrap();
    let out = score_lpips(&dir, &cache);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("lin1.model.1.weight") && err.contains("192"), "{err}");

    // A truncated file.
    let bytes = std::fs::read(shared.join("lpips/lpips_v0.1_alex_lin.pth")).unwrap();
    std::fs::write(dir.join("LPIPS_v0.1_alex-df73285e.pth"), &bytes[..bytes.len() / 2]).unwrap();
    let out = score_lpips(&dir, &cache);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("LPIPS_v0.1_alex-df73285e.pth"), "{err}");
}
