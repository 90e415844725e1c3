//! Helpers shared by the integration tests.
#![allow(dead_code)]
use iqa::image::{decode_file, DecodedImage};
use std::path::{Path, PathBuf};

pub const IMAGES: [&str; 5] = ["I03.bmp", "I04.bmp", "I06.bmp", "I08.bmp", "I19.bmp"];

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn calibration(kind: &str, image: &str) -> PathBuf {
    root().join("data/calibration").join(kind).join(image)
}

pub fn decoded(kind: &str, image: &str) -> DecodedImage {
    decode_file(&calibration(kind, image)).expect("calibration image decodes")
}

/// One row of tests/data/references.csv (scores by pyiqa 0.1.16, see scripts/make_references.py).
#[derive(Debug, Clone)]
pub struct Reference {
    pub metric: String,
    pub image: String,
    /// None: the whole file; Some((x, y, w, h)): a crop of both decoded images.
    pub crop: Option<(usize, usize, u32, u32)>,
    /// Some(file in tests/data): this JPEG as the distorted image instead of the calibration BMP.
    pub jpeg: Option<String>,
    pub score: f64,
}

pub fn references() -> Vec<Reference> {
    let text = std::fs::read_to_string(root().join("tests/data/references.csv")).expect("references.csv");
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let crop = f[2].strip_prefix("crop ").map(|c| {
                let n: Vec<usize> = c.split(' ').map(|v| v.parse().unwrap()).collect();
                (n[0], n[1], n[2] as u32, n[3] as u32)
            });
            let jpeg = f[2].strip_prefix("jpeg ").map(str::to_string);
            Reference { metric: f[0].to_string(), image: f[1].to_string(), crop, jpeg, score: f[3].parse().unwrap() }
        })
        .collect()
}

pub fn rel_err(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-12)
}

/// Directory of the cargo profile the tests were built with (target/debug or target/release).
pub fn profile_dir() -> PathBuf {
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf()
}

/// libiqa.so of this profile, (re)built first: `cargo test` builds the rlib the tests link, not the cdylib.
pub fn libiqa() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let dir = profile_dir();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "--lib", "--quiet"]).current_dir(root());
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some(profile) => {
                cmd.args(["--profile", profile]);
            }
            None => panic!("unexpected test binary location {}", dir.display()),
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "cargo build --lib failed");
    });
    let lib = dir.join("libiqa.so");
    assert!(lib.exists(), "{} was not built", lib.display());
    lib
}
