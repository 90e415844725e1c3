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

/// Which pixels a reference row scored.
#[derive(Debug, Clone, PartialEq)]
pub enum Region {
    /// The calibration files themselves.
    File,
    /// A crop (x, y, w, h) of both decoded images.
    Crop(usize, usize, u32, u32),
    /// Both images tiled nx × ny.
    Tile(u32, u32),
    /// Both images tiled nx × ny, then cut to w × h at the top left (`tile NX NY W H`): a large image.
    TileCut(u32, u32, u32, u32),
    /// This JPEG (in tests/data) as the distorted image.
    Jpeg(String),
    /// The distorted image converted to gray by PIL's `convert('L')`, given as a one-channel image.
    Gray,
    /// The synthetic smooth gray pair of scripts/make_references.py (`smooth_pair`), w × h; `float64`: pyiqa's
    /// formula run in float64 rather than pyiqa's own float32 score.
    Smooth { width: u32, height: u32, float64: bool },
}

/// One row of a reference CSV (tests/data/pyiqa_references.csv: scores by pyiqa 0.1.16, scripts/make_references.py;
/// or one written by scripts/export_torchscript.py).
#[derive(Debug, Clone)]
pub struct Reference {
    pub metric: String,
    pub image: String,
    pub region: Region,
    /// NaN where pyiqa refused the size.
    pub score: f64,
}

pub fn references_from(file: &str) -> Vec<Reference> {
    references_at(&root().join("tests/data").join(file))
}

/// A reference CSV anywhere (e.g. one written by scripts/export_torchscript.py during the test run).
pub fn references_at(path: &Path) -> Vec<Reference> {
    let file = path.display();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let words: Vec<&str> = f[2].split(' ').collect();
            let n = |i: usize| words[i].parse::<usize>().unwrap();
            let region = match words[0] {
                "file" => Region::File,
                "crop" => Region::Crop(n(1), n(2), n(3) as u32, n(4) as u32),
                "tile" if words.len() == 5 => Region::TileCut(n(1) as u32, n(2) as u32, n(3) as u32, n(4) as u32),
                "tile" => Region::Tile(n(1) as u32, n(2) as u32),
                "jpeg" => Region::Jpeg(words[1].to_string()),
                "gray" => Region::Gray,
                "smooth" => Region::Smooth { width: n(1) as u32, height: n(2) as u32, float64: words.len() > 3 },
                other => panic!("unknown region {other} in {file}"),
            };
            Reference { metric: f[0].to_string(), image: f[1].to_string(), region, score: f[3].parse().unwrap() }
        })
        .collect()
}

/// Every row of tests/data/pyiqa_references.csv.
pub fn references() -> Vec<Reference> {
    references_from("pyiqa_references.csv")
}

/// An owned RGB8 image.
pub struct Pixels {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl Pixels {
    pub fn image(&self) -> iqa::Image<'_> {
        iqa::Image::new(&self.bytes, self.width, self.height, 0, iqa::PixelFormat::Rgb8).unwrap()
    }
}

/// The pixels a reference row scored, for one side ("dist" or "ref"), as a borrowed crop of `full` (strided)
/// or a new tiled buffer. `None` for `File` and `Jpeg` rows, which are scored from files.
pub fn region_pixels(full: &DecodedImage, region: &Region) -> Option<Pixels> {
    let img = full.as_image();
    let (w, h) = (img.width(), img.height());
    let row = w as usize * 3;
    match *region {
        Region::Crop(x, y, cw, ch) => Some(Pixels {
            bytes: (0..ch as usize)
                .flat_map(|r| full.bytes()[(y + r) * row + x * 3..][..cw as usize * 3].to_vec())
                .collect(),
            width: cw,
            height: ch,
        }),
        Region::Tile(nx, ny) => Some(Pixels {
            bytes: (0..h * ny)
                .flat_map(|r| {
                    let line = &full.bytes()[(r % h) as usize * row..][..row];
                    (0..nx).flat_map(move |_| line.iter().copied())
                })
                .collect(),
            width: w * nx,
            height: h * ny,
        }),
        Region::TileCut(nx, ny, cw, ch) => {
            let tiled = region_pixels(full, &Region::Tile(nx, ny))?;
            let row = tiled.width as usize * 3;
            Some(Pixels {
                bytes: (0..ch as usize).flat_map(|r| tiled.bytes[r * row..][..cw as usize * 3].to_vec()).collect(),
                width: cw,
                height: ch,
            })
        }
        _ => None,
    }
}

/// PIL's `convert('L')` of packed RGB8 pixels: (19595·R + 38470·G + 7471·B + 2¹⁵) >> 16.
pub fn pil_gray(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks(3)
        .map(|c| ((c[0] as u32 * 19595 + c[1] as u32 * 38470 + c[2] as u32 * 7471 + 0x8000) >> 16) as u8)
        .collect()
}

/// A crop of a decoded image borrowed with a stride (no copy).
pub fn strided_crop<'a>(img: &'a DecodedImage, (x, y, w, h): (usize, usize, u32, u32)) -> iqa::Image<'a> {
    let stride = img.as_image().width() as usize * 3;
    iqa::Image::new(&img.bytes()[y * stride + x * 3..], w, h, stride, iqa::PixelFormat::Rgb8).unwrap()
}

/// IQA_WEIGHTS_DIR, required by the tests of metrics with pretrained weights: they fail, loudly, without it.
pub fn require_weights_dir() -> PathBuf {
    let dir = std::env::var_os("IQA_WEIGHTS_DIR").map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "IQA_WEIGHTS_DIR is not set: these tests need the real pretrained files \
             (e.g. IQA_WEIGHTS_DIR=../shared/weights)"
        )
    });
    assert!(dir.join("PROVENANCE.md").exists() || dir.is_dir(), "IQA_WEIGHTS_DIR={} is not a directory", dir.display());
    dir
}

/// A fresh, empty directory for one test (`suite`, `test`) of this process, under the system's temp dir.
pub fn fresh_temp_dir(suite: &str, test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iqa_{suite}_{}_{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A finished command's status, stdout and stderr, for an assertion message.
pub fn describe(what: &str, out: &std::process::Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
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
        // Without the variables cargo sets for the test process (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, OUT_DIR, ...):
        // ring's build script tracks them, and their differing values rebuilt ring, rustls, ureq and iqa on every
        // switch between `cargo test` and this build (minutes each time).
        let per_crate = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_PRIMARY_PACKAGE"];
        for (name, _) in std::env::vars_os() {
            if per_crate.iter().any(|p| name.to_string_lossy().starts_with(p))
                || name == "CARGO_TARGET_TMPDIR"
                || name == "OUT_DIR"
            {
                cmd.env_remove(name);
            }
        }
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

/// Scores what a reference row describes: the calibration files (or a JPEG in tests/data), a strided crop of
/// the decoded images, or a tiled copy; the reference image only for FR metrics.
pub fn score_reference(metric: &iqa::Metric, r: &Reference) -> iqa::Result<f64> {
    score_reference_with(metric, r, None)
}

/// [`score_reference`], against `caption` for metrics that take one (clipscore).
pub fn score_reference_with(metric: &iqa::Metric, r: &Reference, caption: Option<&str>) -> iqa::Result<f64> {
    let fr = metric.info().mode == iqa::Mode::FullReference;
    let files = |d: &Path, f: Option<&Path>| match caption {
        Some(c) => metric.score_files_captioned(d, c),
        None => metric.score_files(d, f),
    };
    let images = |d: &iqa::Image, f: Option<&iqa::Image>| match caption {
        Some(c) => metric.score_captioned(d, c),
        None => metric.score(d, f),
    };
    let reference_file = calibration("ref", &r.image);
    match &r.region {
        Region::File => files(&calibration("dist", &r.image), fr.then_some(reference_file.as_path())),
        Region::Jpeg(file) => files(&root().join("tests/data").join(file), fr.then_some(reference_file.as_path())),
        &Region::Crop(x, y, w, h) => {
            let (d, f) = (decoded("dist", &r.image), decoded("ref", &r.image));
            images(&strided_crop(&d, (x, y, w, h)), fr.then_some(&strided_crop(&f, (x, y, w, h))))
        }
        Region::Gray => {
            let d = decoded("dist", &r.image);
            let g = pil_gray(d.bytes());
            let (w, h) = (d.as_image().width(), d.as_image().height());
            let gray = iqa::Image::new(&g, w, h, 0, iqa::PixelFormat::Gray8).unwrap();
            let rg = fr.then(|| pil_gray(decoded("ref", &r.image).bytes()));
            let rgray = rg.as_ref().map(|g| iqa::Image::new(g, w, h, 0, iqa::PixelFormat::Gray8).unwrap());
            images(&gray, rgray.as_ref())
        }
        Region::Smooth { .. } => panic!("smooth rows are scored by their own test"),
        region @ (Region::Tile(..) | Region::TileCut(..)) => {
            let (d, f) = (decoded("dist", &r.image), decoded("ref", &r.image));
            let (dp, fp) = (region_pixels(&d, region).unwrap(), region_pixels(&f, region).unwrap());
            images(&dp.image(), fr.then_some(&fp.image()))
        }
    }
}

/// Checks a score against its reference row and returns its error (relative or absolute). A NaN reference
/// means pyiqa refused that size: iqa must then give a shape error naming the minimum size.
pub fn check_reference(r: &Reference, got: iqa::Result<f64>, tolerance: f64, relative: bool) -> Option<f64> {
    if r.score.is_nan() {
        let e = got.expect_err("pyiqa could not score this size");
        assert_eq!(e.kind, iqa::ErrorKind::ShapeMismatch, "{} {:?}: {}", r.metric, r.region, e.message);
        assert!(e.message.contains("at least"), "{}", e.message);
        return None;
    }
    let got = got.unwrap_or_else(|e| panic!("{} {} {:?}: {e}", r.metric, r.image, r.region));
    let err = if relative { rel_err(got, r.score) } else { (got - r.score).abs() };
    assert!(
        err <= tolerance,
        "{} {} {:?}: iqa {got} vs pyiqa {} ({} error {err:e})",
        r.metric,
        r.image,
        r.region,
        r.score,
        if relative { "relative" } else { "absolute" }
    );
    Some(err)
}

impl Region {
    /// The kind of region, for per-kind error summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            Region::File => "file",
            Region::Crop(..) => "crop",
            Region::Tile(..) | Region::TileCut(..) => "tile",
            Region::Gray => "gray",
            Region::Jpeg(_) => "jpeg",
            Region::Smooth { .. } => "smooth",
        }
    }
}

/// Every row of tests/data/pyiqa_references.csv for metric `name` (but the smooth pair's) within `relative` of
/// pyiqa's score, or within `floor` absolute where that is larger; sizes pyiqa refused must be refused with a
/// shape error. Prints the worst errors per region kind.
pub fn assert_matches_pyiqa(name: &str, relative: f64, floor: f64) {
    let rows: Vec<Reference> =
        references().into_iter().filter(|r| r.metric == name && !matches!(r.region, Region::Smooth { .. })).collect();
    assert!(rows.len() >= 20, "{name}: only {} reference rows", rows.len());
    let metric = iqa::create_metric(name, &iqa::Options::default()).unwrap();
    let mut worst: std::collections::BTreeMap<&str, (f64, f64)> = Default::default();
    for r in &rows {
        let tolerance = (relative * r.score.abs()).max(floor);
        if let Some(err) = check_reference(r, score_reference(&metric, r), tolerance, false) {
            let w = worst.entry(r.region.kind()).or_default();
            *w = (w.0.max(err / r.score.abs().max(1e-12)), w.1.max(err));
        }
    }
    for (kind, (rel, abs)) in &worst {
        println!("{name} max error vs pyiqa on {kind}: {rel:.2e} relative, {abs:.2e} absolute");
    }
}

fn is_fr(metric: &iqa::Metric) -> bool {
    metric.info().mode == iqa::Mode::FullReference
}

/// Five full calibration images (one forward pass) with two crops of another size among them: each batch
/// score equals the single score within `relative` (the reference images only for FR metrics).
pub fn assert_batch_equals_single(name: &str, relative: f64) {
    assert_batch_equals_single_within(name, relative, 0.0);
}

/// [`assert_batch_equals_single`] within `relative` or `floor` absolute, whichever is larger.
pub fn assert_batch_equals_single_within(name: &str, relative: f64, floor: f64) {
    let metric = iqa::create_metric(name, &iqa::Options::default()).unwrap();
    let pairs: Vec<_> = IMAGES.iter().map(|i| (decoded("dist", i), decoded("ref", i))).collect();
    let fr = is_fr(&metric);
    // An odd size, larger where the metric needs more (LIQE and MA-CLIP: 224×224).
    let small = (3, 4, 171, 165);
    let refused = metric
        .score(&strided_crop(&pairs[0].0, small), fr.then_some(&strided_crop(&pairs[0].1, small)))
        .is_err_and(|e| e.kind == iqa::ErrorKind::ShapeMismatch);
    let region = if refused { (3, 4, 257, 241) } else { small };
    let mut d: Vec<iqa::Image> = pairs.iter().map(|p| p.0.as_image()).collect();
    let mut r: Vec<iqa::Image> = pairs.iter().map(|p| p.1.as_image()).collect();
    d.insert(2, strided_crop(&pairs[0].0, region));
    r.insert(2, strided_crop(&pairs[0].1, region));
    d.push(strided_crop(&pairs[4].0, region));
    r.push(strided_crop(&pairs[4].1, region));
    let batch = metric.score_batch(&d, fr.then_some(&r[..])).unwrap();
    assert_eq!(batch.len(), d.len());
    for i in 0..d.len() {
        let single = metric.score(&d[i], fr.then_some(&r[i])).unwrap();
        let err = (batch[i] - single).abs();
        let tolerance = (relative * single.abs()).max(floor);
        assert!(err <= tolerance, "{name} image {i}: batch {} vs single {single} ({err:e} absolute)", batch[i]);
    }
}

/// On CUDA (when this machine has it) the calibration scores equal the CPU's within `relative`.
pub fn assert_cuda_equals_cpu(name: &str, relative: f64) {
    if iqa::cuda_device_count() == 0 {
        println!("{name}: no CUDA device, checked on the CPU only");
        return;
    }
    let on = |device| iqa::create_metric(name, &iqa::Options { device, ..Default::default() }).unwrap();
    let (cpu, gpu) = (on(iqa::DeviceRequest::Cpu), on(iqa::DeviceRequest::Cuda(0)));
    for image in IMAGES {
        let (d, r) = (calibration("dist", image), calibration("ref", image));
        let r = is_fr(&cpu).then_some(r.as_path());
        let (a, b) = (cpu.score_files(&d, r).unwrap(), gpu.score_files(&d, r).unwrap());
        assert!(rel_err(b, a) <= relative, "{name} {image}: cuda {b} vs cpu {a}");
    }
}

/// Largest relative distance between iqa's scores of the calibration files and the official ones
/// (data/calibration/official_scores.csv); printed.
pub fn distance_to_official(name: &str) -> f64 {
    let text = std::fs::read_to_string(root().join("data/calibration/official_scores.csv")).unwrap();
    let line = text.lines().find(|l| l.split(',').next() == Some(name)).expect("metric has official scores");
    let official: Vec<f64> = line.split(',').skip(1).map(|v| v.parse().unwrap()).collect();
    let metric = iqa::create_metric(name, &iqa::Options::default()).unwrap();
    let mut worst = 0f64;
    for (image, want) in IMAGES.iter().zip(official) {
        let reference = calibration("ref", image);
        let got =
            metric.score_files(&calibration("dist", image), is_fr(&metric).then_some(reference.as_path())).unwrap();
        worst = worst.max(rel_err(got, want));
    }
    println!("max relative distance to the official scores: {name} {worst:.2e}");
    worst
}

/// The project's Python (scripts/setup.sh makes it: torch 2.13.0, and pyiqa with `--dev`). Tests that
/// generate TorchScript modules need it and fail loudly without it.
pub fn venv_python() -> PathBuf {
    let python = root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup.sh --dev first", python.display());
    python
}

/// The tiny TorchScript modules of tests/python/make_torchscript_fixtures.py, generated once per test process
/// into a fresh directory of the cargo profile.
pub fn torchscript_fixtures() -> PathBuf {
    static MADE: std::sync::Once = std::sync::Once::new();
    let dir = profile_dir().join(format!("torchscript-fixtures-{}", std::process::id()));
    MADE.call_once(|| {
        let _ = std::fs::remove_dir_all(&dir);
        let out = std::process::Command::new(venv_python())
            .arg(root().join("tests/python/make_torchscript_fixtures.py"))
            .arg(&dir)
            .output()
            .expect("python runs");
        assert!(out.status.success(), "making TorchScript fixtures failed: {}", String::from_utf8_lossy(&out.stderr));
    });
    dir
}

/// The metrics whose ImageNet backbone (AlexNet, VGG16, SqueezeNet: not built in) must be found or downloaded.
pub const NEEDS_BACKBONE: [&str; 6] = ["lpips", "lpips-vgg", "lpips+", "lpips-vgg+", "lpips-squeeze", "dists"];

/// Empty HOME, IQA_WEIGHTS_DIR, IQA_CACHE_DIR and TORCH_HOME under `root` (made fresh), as on a new user's machine.
pub struct FreshMachine {
    pub home: PathBuf,
    pub weights: PathBuf,
    pub cache: PathBuf,
    pub torch_home: PathBuf,
}

impl FreshMachine {
    pub fn new(root: &Path) -> FreshMachine {
        let _ = std::fs::remove_dir_all(root);
        let m = FreshMachine {
            home: root.join("home"),
            weights: root.join("weights"),
            cache: root.join("cache"),
            torch_home: root.join("torch"),
        };
        for d in [&m.home, &m.weights, &m.cache, &m.torch_home] {
            std::fs::create_dir_all(d).unwrap();
        }
        m
    }

    /// (variable, value) pairs to set; XDG_CACHE_HOME is to be removed.
    pub fn vars(&self) -> [(&'static str, &Path); 4] {
        [
            ("HOME", &self.home),
            ("IQA_WEIGHTS_DIR", &self.weights),
            ("IQA_CACHE_DIR", &self.cache),
            ("TORCH_HOME", &self.torch_home),
        ]
    }

    /// A torch hub laid out as pyiqa and torchvision leave it: pyiqa's LPIPS and DISTS files in `hub/pyiqa`
    /// (byte copies of its assets), torchvision's backbones in `hub/checkpoints` under their official names
    /// (torch.save of the shared folder's feature tensors: the real files, which also hold the classifier, cannot
    /// be downloaded here). `shared` is the shared weights folder.
    pub fn fill_torch_hub(&self, shared: &Path) {
        let pyiqa = self.torch_home.join("hub/pyiqa");
        std::fs::create_dir_all(&pyiqa).unwrap();
        for (from, to) in [
            ("lpips/lpips_v0.1_alex_lin.pth", "LPIPS_v0.1_alex-df73285e.pth"),
            ("lpips/lpips_v0.1_vgg_lin.pth", "LPIPS_v0.1_vgg-a78928a0.pth"),
            ("lpips/lpips_v0.1_squeeze_lin.pth", "LPIPS_v0.1_squeeze-4a5350f2.pth"),
            ("dists/dists_alpha_beta.pt", "DISTS_weights-f5e65c96.pth"),
        ] {
            std::fs::copy(shared.join(from), pyiqa.join(to)).unwrap();
        }
        let checkpoints = self.torch_home.join("hub/checkpoints");
        let script = "import sys, torch\nfrom safetensors.torch import load_file\n\
                      for src, dst in zip(sys.argv[1::2], sys.argv[2::2]):\n    torch.save(load_file(src), dst)\n";
        let mut cmd = std::process::Command::new(venv_python());
        cmd.arg("-c").arg(script);
        for (from, to) in [
            ("backbones/alexnet_features_torchvision.safetensors", "alexnet-owt-7be5be79.pth"),
            ("backbones/vgg16_features_torchvision.safetensors", "vgg16-397923af.pth"),
            ("backbones/squeezenet1_1_torchvision_fp16rounded.safetensors", "squeezenet1_1-b8a52dc0.pth"),
        ] {
            cmd.arg(shared.join(from)).arg(checkpoints.join(to));
        }
        std::fs::create_dir_all(&checkpoints).unwrap();
        let out = cmd.output().expect("python runs");
        assert!(out.status.success(), "writing the fake torch hub failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// This process's memory from /proc/self/status, bytes: `VmRSS` (resident now) or `VmHWM` (peak resident).
pub fn process_memory(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':'))).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Compiles C file `source` (relative to the repository) into `dir` against include/iqa.h and the libiqa.so of
/// the test profile (strict warnings, debug info for valgrind's reports); returns the executable.
pub fn compile_c(source: &str, dir: &Path) -> PathBuf {
    let exe = dir.join(Path::new(source).file_stem().unwrap());
    let lib = libiqa().parent().unwrap().to_path_buf();
    let out = std::process::Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pthread", "-g"])
        .arg(format!("-I{}", root().join("include").display()))
        .arg(root().join(source))
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .args(["-liqa", "-lm"])
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run cc: {e}"));
    assert!(out.status.success(), "{}", describe(&format!("compiling {source}"), &out));
    exe
}

/// Where a zoo metric's first file is downloaded from: pyiqa's store, torchvision's for DeepDC (whose only file
/// is torchvision's VGG-19), or OpenAI's for the metrics built on OpenAI's CLIP archives.
pub fn zoo_store(metric: &str) -> &'static str {
    let status = iqa::metric_status(metric).unwrap();
    match status.files[0].name.as_str() {
        "vgg19-dcbb9e9d.pth" => "https://download.pytorch.org/models/",
        "RN50.pt" | "ViT-B-32.pt" | "ViT-L-14.pt" => "https://openaipublic.azureedge.net/clip/models/",
        _ => "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/",
    }
}

/// The built-in metrics of pyiqa's model zoo (those with rows in tests/data/zoo_references.csv): tests/zoo.rs
/// scores them on random checkpoints made during the run; the shared weights folder has no file of theirs, so
/// tests that score every metric with the shared files leave them out.
pub fn zoo_metrics() -> Vec<String> {
    let mut names: Vec<String> = references_from("zoo_references.csv").into_iter().map(|r| r.metric).collect();
    names.dedup();
    names
}
