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
    if !tch::Cuda::is_available() {
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
