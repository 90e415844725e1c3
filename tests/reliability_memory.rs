//! Memory: resident memory stays flat over 1,000 create/score/free cycles of one metric per family, and an
//! allocation that fails because the address space is limited (RLIMIT_AS) is an `ErrorKind::Runtime` error
//! after which the same handle scores again. Both run in child processes of this binary: RSS is process-wide,
//! and the limit cannot be lifted once set.
mod common;
use common::*;
use iqa::{create_metric, ErrorKind, Image, Options, PixelFormat};
use std::process::Command;

/// One metric per family of models: own CPU kernels (psnr, fsim), libtorch graphs (ssim, vif), natural-scene
/// statistics with fitted parameters (brisque, niqe), a pretrained backbone (lpips).
const FAMILIES: &[&str] = &["psnr", "ssim", "fsim", "vif", "brisque", "niqe", "lpips"];
const CYCLES: usize = 1000;
/// Cycles run before the first measurement: allocator pools, libtorch's thread pool and caches settle.
const WARMUP: usize = 100;
const SIDE: u32 = 96;

/// Image side of the RSS cycles: small, so that 1,000 cycles take seconds; niqe needs 96 (its block size).
fn cycle_side(name: &str) -> u32 {
    if name == "niqe" {
        96
    } else {
        48
    }
}

fn crop(kind: &str, side: u32) -> Vec<u8> {
    let full = decoded(kind, "I19.bmp");
    (0..side as usize).flat_map(|y| full.bytes()[y * 512 * 3..(y * 512 + side as usize) * 3].to_vec()).collect()
}

/// Runs one ignored test of this binary in a child process; its output (libtest writes "test NAME ... " before
/// the test's own first line, so markers are searched anywhere in a line).
fn child(test: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--ignored", "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{test}: {}\n{text}", out.status);
    text
}

#[test]
#[ignore = "run by rss_is_flat_over_1000_cycles_per_family in a child process per metric"]
fn child_cycle_metric() {
    let name = std::env::var("IQA_TEST_METRIC").unwrap();
    let side = cycle_side(&name);
    let (d, r) = (crop("dist", side), crop("ref", side));
    let (d, r) = (
        Image::new(&d, side, side, 0, PixelFormat::Rgb8).unwrap(),
        Image::new(&r, side, side, 0, PixelFormat::Rgb8).unwrap(),
    );
    let mut first = None;
    let mut rss_after_warmup = 0;
    for cycle in 0..CYCLES {
        let metric = create_metric(&name, &Options::default()).unwrap();
        let fr = metric.info().mode == iqa::Mode::FullReference;
        let score = metric.score(&d, fr.then_some(&r)).unwrap();
        assert_eq!(score.to_bits(), first.get_or_insert(score).to_bits(), "{name} cycle {cycle}");
        drop(metric);
        if cycle + 1 == WARMUP {
            rss_after_warmup = process_memory("VmRSS");
        }
    }
    println!("RSS {name} {rss_after_warmup} {}", process_memory("VmRSS"));
}

/// Growth allowed between cycle 100 and cycle 1,000: allocator noise. A leak of one 96×96 float image per
/// cycle would be 24 MiB (48×48), 78 MiB (96×96, niqe).
const RSS_SLACK: u64 = 8 << 20;

#[test]
#[ignore = "7,000 cycles: 19 min on a loaded 2-core machine; make memcheck"]
fn rss_is_flat_over_1000_cycles_per_family() {
    let mut failures = Vec::new();
    for name in FAMILIES {
        let text = child("child_cycle_metric", &[("IQA_TEST_METRIC", name)]);
        let line = text
            .lines()
            .find_map(|l| l.find("RSS ").map(|at| &l[at + 4..]))
            .unwrap_or_else(|| panic!("{name}: {text}"));
        let v: Vec<u64> = line.split(' ').skip(1).map(|x| x.parse().unwrap()).collect();
        let growth = v[1] as i64 - v[0] as i64;
        println!(
            "{name:<8} RSS after {WARMUP} cycles {:.1} MiB, after {CYCLES} {:.1} MiB ({:+.2} MiB)",
            v[0] as f64 / 1048576.0,
            v[1] as f64 / 1048576.0,
            growth as f64 / 1048576.0
        );
        if growth > RSS_SLACK as i64 {
            failures.push(format!("{name}: RSS grew {growth} bytes over {} cycles", CYCLES - WARMUP));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The address-space headroom left above what the process has mapped after warming up: enough for a
/// 96×96 score, far too little for the 6144×6144 image's float tensors (3 × 144 MiB each, several of them).
const HEADROOM: u64 = 160 << 20;

fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmSize:")).unwrap().trim().trim_end_matches(" kB");
    kb.trim().parse::<u64>().unwrap() * 1024
}

#[test]
#[ignore = "run by failed_allocation_is_a_runtime_error_and_the_handle_recovers in a child process"]
fn child_allocation_failure() {
    let name = std::env::var("IQA_TEST_METRIC").unwrap();
    let metric = create_metric(&name, &Options::default()).unwrap();
    let fr = metric.info().mode == iqa::Mode::FullReference;
    let (d, r) = (crop("dist", SIDE), crop("ref", SIDE));
    let (d, r) = (
        Image::new(&d, SIDE, SIDE, 0, PixelFormat::Rgb8).unwrap(),
        Image::new(&r, SIDE, SIDE, 0, PixelFormat::Rgb8).unwrap(),
    );
    let before = metric.score(&d, fr.then_some(&r)).unwrap();
    // The big image's pixels are allocated before the limit: only the library's own allocations can fail.
    // ssim's one full-size array is its float64 map: 301 MB at this side, beyond the headroom (at 4096 it fits).
    let side = 6144u32;
    let big: Vec<u8> = (0..side as usize * side as usize * 3).map(|i| (i * 7 % 251) as u8).collect();
    let big = Image::new(&big, side, side, 0, PixelFormat::Rgb8).unwrap();
    let limit = vm_size() + HEADROOM;
    let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit only reads the struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rlimit) }, 0);
    let err = metric.score(&big, fr.then_some(&big)).expect_err("a 6144x6144 score within 160 MiB of headroom");
    println!("ERROR {:?} {err}", err.kind);
    assert_eq!(err.kind, ErrorKind::Runtime, "{err}");
    let after = metric.score(&d, fr.then_some(&r)).unwrap();
    assert_eq!(after.to_bits(), before.to_bits(), "{name}: the same score after the failed allocation");
    println!("RECOVERED {name} {after}");
}

#[test]
fn failed_allocation_is_a_runtime_error_and_the_handle_recovers() {
    for name in ["ssim", "lpips"] {
        let text = child("child_allocation_failure", &[("IQA_TEST_METRIC", name)]);
        assert!(text.contains(&format!("RECOVERED {name} ")), "{text}");
        println!("{name}: {}", text.lines().find_map(|l| l.find("ERROR ").map(|at| &l[at..])).unwrap_or(""));
    }
}
