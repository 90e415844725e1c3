//! The library as C and Python clients see it: examples/score.c, tests/c/contract.c, tests/c/frames.c and
//! tests/c/torchscript.c are compiled with `cc` against include/iqa.h and the libiqa.so of the current cargo
//! profile, and run; examples/score.py is run with the project's Python through the `iqa` package (python/).
//! libiqa.so of the test profile is built first (tests/common).
mod common;
use common::{
    calibration, compile_c, describe, fresh_temp_dir, libiqa, require_weights_dir, root as repo, torchscript_fixtures,
    venv_python,
};
use std::path::PathBuf;
use std::process::{Command, Output};

fn temp_dir(test: &str) -> PathBuf {
    fresh_temp_dir("c_clients", test)
}

fn run(what: &str, cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"))
}

#[test]
fn score_c_example_scores_and_reports_errors() {
    let dir = temp_dir("score_c");
    let exe = compile_c("examples/score.c", &dir);

    let (dist, reference) = (calibration("dist", "I03.bmp"), calibration("ref", "I03.bmp"));
    let out = run("score", Command::new(&exe).arg("psnr").arg(&dist).arg(&reference));
    let text = describe("score psnr I03", &out);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l == "score psnr 21.113628"), "{text}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with("score ")).count(), 1, "{text}");
    println!("{text}");

    let out = run("score", Command::new(&exe).args(["no_such_metric", "a", "b"]));
    let text = describe("score no_such_metric", &out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no_such_metric"), "{text}");
    assert!(stderr.starts_with("error: 2: "), "{text}");
    println!("{text}");

    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs a check program of tests/c (one line per check, last "N passed, 0 failed").
fn assert_checks_pass(source: &str, out: &Output) {
    let text = describe(source, out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(out.status.success(), "{}\n--- failed checks ---\n{}", text, failures.join("\n"));
    let last = stdout.lines().last().unwrap_or("");
    let passed = last
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("last line {last:?} is not `N passed, 0 failed`\n{text}"));
    assert!(passed > 0, "{text}");
    println!("{source}: {last}");
}

#[test]
fn contract_c_passes() {
    let dir = temp_dir("contract_c");
    let exe = compile_c("tests/c/contract.c", &dir);
    let out = run("contract", Command::new(&exe).arg(repo().join("data/calibration")));
    assert_checks_pass("tests/c/contract.c", &out);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn frames_c_passes() {
    let dir = temp_dir("frames_c");
    let exe = compile_c("tests/c/frames.c", &dir);
    let out = run("frames", &mut Command::new(&exe));
    assert_checks_pass("tests/c/frames.c", &out);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reference_c_passes() {
    require_weights_dir();
    let dir = temp_dir("reference_c");
    let exe = compile_c("tests/c/reference.c", &dir);
    let out = run("reference", &mut Command::new(&exe));
    assert_checks_pass("tests/c/reference.c", &out);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn torchscript_c_passes() {
    let dir = temp_dir("torchscript_c");
    let exe = compile_c("tests/c/torchscript.c", &dir);
    let fixtures = torchscript_fixtures();
    let out = run("torchscript", Command::new(&exe).arg(&fixtures).env("IQA_WEIGHTS_DIR", &fixtures));
    assert_checks_pass("tests/c/torchscript.c", &out);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn score_py_example_scores_files_and_buffers() {
    let (dist, reference) = (calibration("dist", "I03.bmp"), calibration("ref", "I03.bmp"));
    let out = run(
        "python",
        Command::new(venv_python())
            .arg(repo().join("examples/score.py"))
            .arg("psnr")
            .arg(&dist)
            .arg(&reference)
            .env("IQA_LIBRARY", libiqa())
            .env("PYTHONDONTWRITEBYTECODE", "1"),
    );
    let text = describe("python examples/score.py psnr I03", &out);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l == "score psnr 21.113628"), "{text}");
    let buffer = stdout
        .lines()
        .find_map(|l| l.strip_prefix("buffer psnr "))
        .unwrap_or_else(|| panic!("no `buffer psnr` line\n{text}"));
    let value: f64 = buffer.parse().unwrap_or_else(|_| panic!("`buffer psnr {buffer}` is not a number\n{text}"));
    assert!(value.is_finite() && value > 0.0, "{text}");
    println!("{text}");
}
