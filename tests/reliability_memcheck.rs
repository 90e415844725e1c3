//! The C library under valgrind memcheck: tests/c/contract.c (every function of the C contract, error paths
//! included) and tests/c/metric_loop.c (create, score and free every built-in metric), with no invalid read or
//! write and no definitely lost bytes. Uninitialised-value checks are off: libtorch's vectorised kernels read
//! padding lanes they then discard, which memcheck reports by the thousand without a bug behind them.
//! valgrind is installed by `scripts/setup.sh --dev`; without it these tests fail saying so. Ignored by plain
//! `cargo test` (libtorch under valgrind takes many minutes): `make memcheck` runs them.
mod common;
use common::{compile_c, fresh_temp_dir, root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `exe args` under memcheck; returns the program's stdout after checking valgrind's verdict.
fn memcheck(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let log = exe.with_extension("valgrind.log");
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--error-exitcode=99",
        "--undef-value-errors=no",
        "--leak-check=full",
        "--show-leak-kinds=definite",
        "--errors-for-leak-kinds=definite",
        "--num-callers=30",
    ])
    .arg(format!("--log-file={}", log.display()))
    .arg(exe)
    .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run valgrind ({e}): install it (Debian: apt-get install valgrind; `scripts/setup.sh --dev`)")
    });
    let report = std::fs::read_to_string(&log).unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary: Vec<&str> =
        report.lines().filter(|l| l.contains("ERROR SUMMARY") || l.contains("definitely lost:")).collect();
    println!("{}: {}", exe.display(), summary.join(" | "));
    assert!(
        out.status.code() != Some(99) && !report.contains("Invalid read") && !report.contains("Invalid write"),
        "memcheck found errors in {}:\n{report}\n--- stdout ---\n{stdout}",
        exe.display()
    );
    assert!(out.status.success(), "{} failed: {}\n{stdout}\n{report}", exe.display(), out.status);
    stdout
}

fn temp_dir(test: &str) -> PathBuf {
    fresh_temp_dir("memcheck", test)
}

#[test]
#[ignore = "minutes under valgrind: make memcheck"]
fn contract_c_under_memcheck() {
    let dir = temp_dir("contract");
    let exe = compile_c("tests/c/contract.c", &dir);
    let calibration = root().join("data/calibration");
    let stdout = memcheck(&exe, &[calibration.to_str().unwrap()], &[]);
    let last = stdout.lines().last().unwrap_or("");
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    println!("contract.c under memcheck: {last}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "minutes under valgrind: make memcheck"]
fn every_metric_create_score_free_under_memcheck() {
    let dir = temp_dir("loop");
    let exe = compile_c("tests/c/metric_loop.c", &dir);
    // One thread: valgrind runs one thread at a time, and OpenMP workers spinning between libtorch calls would
    // take most of its time without exercising anything the C API does.
    let stdout = memcheck(&exe, &["2"], &[("IQA_NUM_THREADS", "1"), ("OMP_WAIT_POLICY", "PASSIVE")]);
    let last = stdout.lines().last().unwrap_or("");
    // Every built-in metric runs when the shared weights are there (IQA_WEIGHTS_DIR, as in CI).
    let expected_skips = if std::env::var_os("IQA_WEIGHTS_DIR").is_some() { " 0 skipped" } else { "" };
    assert!(last.ends_with(" 0 failed") && last.contains(expected_skips), "{stdout}");
    println!("metric_loop.c under memcheck: {last}");
    let _ = std::fs::remove_dir_all(&dir);
}
