//! pyiqa's model zoo built in, against pyiqa 0.1.16 on random checkpoints (scripts/make_zoo_references.py: each
//! family's own pyiqa network with seeded random weights and measured BatchNorm statistics, saved in its real
//! checkpoint's format under its real file name; tests/data/zoo_references.csv holds pyiqa's scores with them).
//! The checkpoints are regenerated into the cargo profile's `zoo-weights` folder when missing or made by
//! another version of the script (the dev venv's pyiqa is needed then), and IQA_WEIGHTS_DIR points there for
//! this test binary only. One test per metric: every reference row within 1e-4 relative, scores that differ
//! between images, batches equal to single scores, the minimum size, CUDA against the CPU where there is one,
//! bf16 against fp32 where the metric honours it.
//!
//! "Relative" is to the score or to the width of the metric's stated range where that is larger: random
//! weights put some scores near zero (ARNIQA maps its regressor's output from a MOS range onto [0, 1]), where
//! float32 noise of 1e-6 relative in the features is a large part of a score of 1e-3.
mod common;
use common::*;
use iqa::{create_metric, ErrorKind, Options, Precision};
use std::ffi::OsStr;
use std::path::PathBuf;

/// The random checkpoints, made once per test process; IQA_WEIGHTS_DIR points at them.
fn zoo_weights() -> PathBuf {
    static MADE: std::sync::Once = std::sync::Once::new();
    let dir = profile_dir().join("zoo-weights");
    MADE.call_once(|| {
        let script = root().join("scripts/make_zoo_references.py");
        let stamp = dir.join("made-by.py");
        let current = std::fs::read(&script).unwrap();
        if std::fs::read(&stamp).ok().as_ref() != Some(&current) {
            let _ = std::fs::remove_dir_all(&dir);
            let out = std::process::Command::new(venv_python())
                .arg(&script)
                .arg("--checkpoints")
                .arg(&dir)
                .output()
                .expect("python runs");
            assert!(out.status.success(), "making the zoo checkpoints failed: {}", describe("script", &out));
            std::fs::write(&stamp, &current).unwrap();
        }
        // Set before any metric is created (every test comes through here first), read by no other thread now.
        std::env::set_var("IQA_WEIGHTS_DIR", &dir);
        std::env::set_var("IQA_OFFLINE", "1");
    });
    dir
}

/// Which of a metric's reference rows every run checks; the long run (`make zoo-parity`, IQA_ZOO_LONG=1) checks
/// them all.
#[derive(Clone, Copy, PartialEq)]
enum Rows {
    /// Every row.
    All,
    /// All but the 1920×1080 row: variants whose network is checked at that size under another name, and the
    /// slowest networks (keeping `.ci/run` within its time).
    NoLarge,
    /// Only the files I03 and I19, and none of the batch and size checks: MANIQA's twenty ViT-B/8 crops take
    /// ~20 s per image of any size, TReS's fifty ResNet-50 crops ~8 s.
    Brief,
}

const BRIEF_IMAGES: [&str; 2] = ["I03.bmp", "I19.bmp"];

/// Every reference row of `name` within `relative` of pyiqa (to the score, or to the width of the metric's range
/// where that is larger), and scores of the five calibration files that are not all alike, by far more than
/// the largest error (random weights with a near-constant output would prove little).
fn check(name: &str, relative: f64, min_side: u32, rows: Rows) {
    zoo_weights();
    let long = std::env::var_os("IQA_ZOO_LONG").is_some_and(|v| v == "1");
    let brief = rows == Rows::Brief && !long;
    let kept = |r: &Reference| match rows {
        _ if long => true,
        Rows::All => true,
        Rows::NoLarge => !matches!(r.region, Region::TileCut(..)),
        Rows::Brief => r.region == Region::File && BRIEF_IMAGES.contains(&r.image.as_str()),
    };
    let rows: Vec<Reference> =
        references_from("zoo_references.csv").into_iter().filter(|r| r.metric == name && kept(r)).collect();
    assert!(rows.len() >= if brief { BRIEF_IMAGES.len() } else { 10 }, "{name}: only {} reference rows", rows.len());
    let metric = create_metric(name, &Options::default()).unwrap();
    let (lo, hi) = metric.info().score_range;
    let width = if (hi - lo).is_finite() { hi - lo } else { 0.0 };
    let (mut worst, mut worst_abs) = (0.0f64, 0.0f64);
    let mut files = Vec::new();
    let captions = metric.takes_caption().then(captions);
    let caption = |image: &str| captions.as_ref().map(|c| c[image].as_str());
    for r in &rows {
        let scale = r.score.abs().max(width);
        let got = score_reference_with(&metric, r, caption(&r.image));
        if r.region == Region::File {
            files.push((r, *got.as_ref().unwrap_or(&f64::NAN)));
        }
        let err = check_reference(r, got, relative * scale, false).unwrap_or(0.0);
        worst = worst.max(err / scale);
        worst_abs = worst_abs.max(err);
    }
    println!("{name}: {} rows, max error vs pyiqa {worst:.2e} relative, {worst_abs:.2e} absolute", rows.len());
    let (lo, hi) = files.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &(r, _)| (lo.min(r.score), hi.max(r.score)));
    assert!(hi - lo > 1e-3 * hi.abs().max(lo.abs()), "{name}: near-constant scores from {lo} to {hi}");
    assert!(worst_abs <= 1e-2 * (hi - lo), "{name}: error {worst_abs:e} against a spread of {:e}", hi - lo);
    if brief {
        println!("{name}: batch and size checks left to the long run");
        return;
    }
    if metric.takes_caption() {
        assert_captioned_batch_equals_single(&metric, caption);
    } else {
        assert_batch_equals_single_within(name, 1e-5, 1e-5 * width);
        assert_cuda_equals_cpu(name, 1e-3);
        check_bf16(name, &files, width);
    }
    let fr = metric.info().mode == iqa::Mode::FullReference;
    let (d, f) = (decoded("dist", "I03.bmp"), decoded("ref", "I03.bmp"));
    let score = |w: u32, h: u32| {
        let reference = strided_crop(&f, (5, 7, w, h));
        let dist = strided_crop(&d, (5, 7, w, h));
        match caption("I03.bmp") {
            Some(c) => metric.score_captioned(&dist, c),
            None => metric.score(&dist, fr.then_some(&reference)),
        }
    };
    score(min_side, min_side).unwrap_or_else(|e| panic!("{name} at its minimum {min_side}: {e}"));
    // (pyiqa scores a 1×1 image with most of them: then there is nothing smaller to refuse.)
    for (w, h) in [(min_side - 1, min_side), (min_side, min_side - 1)].into_iter().filter(|_| min_side > 1) {
        let e = score(w, h).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ShapeMismatch, "{name} {w}x{h}: {}", e.message);
        assert!(e.message.contains("at least"), "{name}: {}", e.message);
    }
}

/// The caption of each calibration image (tests/data/zoo_captions.csv, which the reference script reads too).
fn captions() -> std::collections::HashMap<String, String> {
    // Two columns, the second quoted where it holds a comma (as Python's csv module writes it).
    let text = std::fs::read_to_string(root().join("tests/data/zoo_captions.csv")).unwrap();
    let field = |f: &str| match f.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => f.to_string(),
    };
    text.lines().skip(1).map(|l| l.split_once(',').unwrap()).map(|(i, c)| (i.to_string(), field(c))).collect()
}

/// A captioned metric's batch (each calibration image with its caption, and a crop with another image's
/// caption) equals its single scores, and it refuses every other way of scoring.
fn assert_captioned_batch_equals_single<'a>(metric: &iqa::Metric, caption: impl Fn(&str) -> Option<&'a str>) {
    let decoded: Vec<_> = IMAGES.iter().map(|i| decoded("dist", i)).collect();
    let mut images: Vec<iqa::Image> = decoded.iter().map(|d| d.as_image()).collect();
    let mut texts: Vec<&str> = IMAGES.iter().map(|i| caption(i).unwrap()).collect();
    images.push(strided_crop(&decoded[0], (3, 4, 171, 165)));
    texts.push(caption(IMAGES[4]).unwrap());
    let batch = metric.score_batch_captioned(&images, &texts).unwrap();
    for (i, (image, text)) in images.iter().zip(&texts).enumerate() {
        let single = metric.score_captioned(image, text).unwrap();
        assert!((batch[i] - single).abs() <= 1e-5 * single.abs().max(1.0), "image {i}: {} vs {single}", batch[i]);
    }
    let e = metric.score_batch_captioned(&images, &texts[..2]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{}", e.message);
    let e = metric.score(&images[0], None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{}", e.message);
    assert!(e.message.contains("caption"), "{}", e.message);
}

/// Where the metric honours reduced precision, its bf16 scores of the calibration files (`files`: each row and
/// iqa's fp32 score) within 1e-2 of the fp32 ones (of the range's width, or of the score where larger). Where it
/// does not, a bf16 request runs fp32.
fn check_bf16(name: &str, files: &[(&Reference, f64)], width: f64) {
    let bf16 = create_metric(name, &Options { precision: Some(Precision::Bf16), ..Options::default() }).unwrap();
    if bf16.precision() != Precision::Bf16 {
        assert_eq!(bf16.precision(), Precision::Fp32, "{name}");
        return;
    }
    let mut worst = 0.0f64;
    for &(r, full) in files {
        let reduced = score_reference(&bf16, r).unwrap();
        let err = (full - reduced).abs() / full.abs().max(width);
        assert!(err <= 1e-2, "{name} {}: bf16 {reduced} vs fp32 {full} ({err:e} of the scale)", r.image);
        worst = worst.max(err);
    }
    println!("{name}: bf16 within {worst:.1e} of fp32 (of the range's width or the score)");
}

macro_rules! zoo_tests {
    ($($test:ident => ($name:literal, $relative:expr, $min:expr, $rows:ident),)*) => {
        $(
            #[test]
            fn $test() {
                check($name, $relative, $min, Rows::$rows);
            }
        )*

        /// Every metric with reference rows has its test above.
        #[test]
        fn every_zoo_metric_has_a_test() {
            let tested = [$($name),*];
            for r in references_from("zoo_references.csv") {
                assert!(tested.contains(&r.metric.as_str()), "{} has reference rows but no test", r.metric);
            }
        }
    };
}

zoo_tests! {
    topiq_nr => ("topiq_nr", 1e-4, 1, All),
    topiq_nr_flive => ("topiq_nr-flive", 1e-4, 1, NoLarge),
    topiq_nr_spaq => ("topiq_nr-spaq", 1e-4, 1, NoLarge),
    topiq_fr => ("topiq_fr", 1e-4, 1, All),
    topiq_fr_pipal => ("topiq_fr-pipal", 1e-4, 1, NoLarge),
    topiq_iaa_res50 => ("topiq_iaa_res50", 1e-4, 1, All),
    cnniqa => ("cnniqa", 1e-4, 7, All),
    hyperiqa => ("hyperiqa", 1e-4, 1, All),
    arniqa => ("arniqa", 1e-4, 2, All),
    arniqa_live => ("arniqa-live", 1e-4, 2, NoLarge),
    arniqa_csiq => ("arniqa-csiq", 1e-4, 2, NoLarge),
    arniqa_tid => ("arniqa-tid", 1e-4, 2, NoLarge),
    arniqa_kadid => ("arniqa-kadid", 1e-4, 2, NoLarge),
    arniqa_clive => ("arniqa-clive", 1e-4, 2, NoLarge),
    arniqa_flive => ("arniqa-flive", 1e-4, 2, NoLarge),
    arniqa_spaq => ("arniqa-spaq", 1e-4, 2, NoLarge),
    dbcnn => ("dbcnn", 1e-4, 16, All),
    paq2piq => ("paq2piq", 1e-4, 1, All),
    unique => ("unique", 1e-4, 1, All),
    metaiqa => ("metaiqa", 1e-4, 1, All),
    nima_vgg16_ava => ("nima-vgg16-ava", 1e-4, 1, All),
    nima => ("nima", 1e-4, 1, All),
    nima_koniq => ("nima-koniq", 1e-4, 1, NoLarge),
    nima_spaq => ("nima-spaq", 1e-4, 1, NoLarge),
    niqe_matlab => ("niqe_matlab", 1e-4, 96, All),
    brisque_matlab => ("brisque_matlab", 1e-4, 7, All),
    stlpips => ("stlpips", 1e-4, 21, All),
    stlpips_vgg => ("stlpips-vgg", 1e-4, 18, NoLarge),
    wadiqam_fr => ("wadiqam_fr", 1e-4, 33, All),
    wadiqam_nr => ("wadiqam_nr", 1e-4, 33, All),
    ckdn => ("ckdn", 1e-4, 1, All),
    deepdc => ("deepdc", 1e-4, 16, NoLarge),
    pieapp => ("pieapp", 1e-4, 64, NoLarge),
    nrqm => ("nrqm", 1e-4, 84, All),
    pi => ("pi", 1e-4, 104, NoLarge),
    clipiqa => ("clipiqa", 1e-4, 31, All),
    clipiqa_plus => ("clipiqa+", 1e-4, 31, NoLarge),
    clipiqa_plus_rn50_512 => ("clipiqa+_rn50_512", 1e-4, 31, All),
    clipiqa_plus_vitl14_512 => ("clipiqa+_vitL14_512", 1e-4, 14, All),
    laion_aes => ("laion_aes", 1e-4, 1, All),
    qualiclip => ("qualiclip", 1e-4, 31, All),
    qualiclip_plus => ("qualiclip+", 1e-4, 31, All),
    qualiclip_plus_clive => ("qualiclip+-clive", 1e-4, 31, NoLarge),
    qualiclip_plus_flive => ("qualiclip+-flive", 1e-4, 31, NoLarge),
    qualiclip_plus_spaq => ("qualiclip+-spaq", 1e-4, 31, NoLarge),
    liqe => ("liqe", 1e-4, 224, All),
    liqe_mix => ("liqe_mix", 1e-4, 224, All),
    maclip => ("maclip", 1e-4, 224, All),
    clipscore => ("clipscore", 1e-4, 1, All),
    musiq => ("musiq", 1e-4, 1, All),
    musiq_ava => ("musiq-ava", 1e-4, 1, All),
    musiq_paq2piq => ("musiq-paq2piq", 1e-4, 1, NoLarge),
    musiq_spaq => ("musiq-spaq", 1e-4, 1, NoLarge),
    maniqa => ("maniqa", 1e-4, 1, Brief),
    maniqa_kadid => ("maniqa-kadid", 1e-4, 1, Brief),
    maniqa_pipal => ("maniqa-pipal", 1e-4, 1, Brief),
    tres => ("tres", 1e-4, 1, Brief),
    tres_flive => ("tres-flive", 1e-4, 1, Brief),
}

/// A checkpoint that is not there is an error naming the file, the URL and the places searched.
#[test]
fn a_missing_checkpoint_names_file_url_and_places() {
    zoo_weights();
    let empty = fresh_temp_dir("zoo", "missing");
    std::fs::create_dir_all(&empty).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "missing_checkpoint_child", "--nocapture", "--ignored"])
        .env("IQA_ZOO_CHILD", "1")
        .env("IQA_WEIGHTS_DIR", &empty)
        .env("IQA_OFFLINE", "1")
        .env("TORCH_HOME", empty.join("torch"))
        .env("IQA_CACHE_DIR", empty.join("cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe("child", &out));
}

/// Run by [`a_missing_checkpoint_names_file_url_and_places`] in a child process with empty folders.
#[test]
#[ignore]
fn missing_checkpoint_child() {
    if std::env::var_os("IQA_ZOO_CHILD").is_none() {
        return;
    }
    let e = create_metric("topiq_nr", &Options::default()).err().expect("no checkpoint anywhere");
    assert_eq!(e.kind, ErrorKind::Weights, "{}", e.message);
    for part in [
        "cfanet_nr_koniq_res50-9a73138b.pth",
        "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/cfanet_nr_koniq_res50-9a73138b.pth",
        "IQA_WEIGHTS_DIR",
        "torch hub",
        "IQA_OFFLINE=1",
    ] {
        assert!(e.message.contains(part), "'{part}' not in: {}", e.message);
    }
}

/// pyiqa's score of a calibration file for `metric`.
fn pyiqa_file_score(metric: &str, image: &str) -> f64 {
    references_from("zoo_references.csv")
        .into_iter()
        .find(|r| r.metric == metric && r.image == image && r.region == Region::File)
        .unwrap_or_else(|| panic!("{metric} {image}: no file row"))
        .score
}

/// Through the C ABI: a zoo metric by name, a file pair, pyiqa's score; the handle's info is pyiqa's.
#[test]
fn the_c_abi_scores_zoo_metrics() {
    use iqa::ffi::*;
    use std::ffi::{CStr, CString};
    zoo_weights();
    for (name, fr) in [("topiq_fr", true), ("hyperiqa", false)] {
        let c = CString::new(name).unwrap();
        let mut handle = std::ptr::null_mut();
        let code = unsafe { iqa_metric_create(c.as_ptr(), std::ptr::null(), &mut handle) };
        let error = || unsafe { CStr::from_ptr(iqa_last_error()) }.to_string_lossy().into_owned();
        assert_eq!(code, IqaStatus::IQA_OK, "{name}: {}", error());
        let mut info = std::mem::MaybeUninit::<IqaMetricInfo>::uninit();
        assert_eq!(unsafe { iqa_metric_info(handle, info.as_mut_ptr()) }, IqaStatus::IQA_OK);
        let info = unsafe { info.assume_init() };
        assert_eq!(info.mode == IqaMode::IQA_MODE_FR, fr, "{name}");
        assert!(!info.lower_better && info.score_min == 0.0 && info.score_max == 1.0, "{name}");
        let (d, r) = (calibration("dist", "I08.bmp"), calibration("ref", "I08.bmp"));
        let d = CString::new(d.to_str().unwrap()).unwrap();
        let r = CString::new(r.to_str().unwrap()).unwrap();
        let mut score = f64::NAN;
        let r_ptr = if fr { r.as_ptr() } else { std::ptr::null() };
        let code = unsafe { iqa_score_files(handle, d.as_ptr(), r_ptr, &mut score) };
        assert_eq!(code, IqaStatus::IQA_OK, "{name}: {}", error());
        let want = pyiqa_file_score(name, "I08.bmp");
        assert!((score - want).abs() <= 1e-4, "{name}: C ABI {score} vs pyiqa {want}");
        unsafe { iqa_metric_free(handle) };
    }
}

fn iqa_command(args: &[&str]) -> std::process::Output {
    let dir = zoo_weights();
    std::process::Command::new(env!("CARGO_BIN_EXE_iqa"))
        .args(args)
        .env("IQA_WEIGHTS_DIR", &dir)
        .env("IQA_OFFLINE", "1")
        .output()
        .unwrap()
}

/// `iqa score METRIC DIST [REF]` prints pyiqa's score; `iqa info` names each file and where it was found.
#[test]
fn the_command_scores_zoo_metrics_and_says_where_their_files_are() {
    let dir = zoo_weights();
    for (name, fr) in [("topiq_nr", false), ("topiq_fr", true), ("arniqa-kadid", false)] {
        let (d, r) = (calibration("dist", "I19.bmp"), calibration("ref", "I19.bmp"));
        let mut args = vec!["score", name, d.to_str().unwrap()];
        if fr {
            args.push(r.to_str().unwrap());
        }
        let out = iqa_command(&args);
        assert!(out.status.success(), "{}", describe(name, &out));
        let got: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let want = pyiqa_file_score(name, "I19.bmp");
        assert!((got - want).abs() <= 1e-4, "{name}: iqa score {got} vs pyiqa {want}");
    }
    let out = iqa_command(&["info", "arniqa-kadid"]);
    assert!(out.status.success(), "{}", describe("info", &out));
    let text = String::from_utf8_lossy(&out.stdout);
    for file in ["ARNIQA.pth", "regressor_kadid10k.pth"] {
        let found = format!("{file}: found at {}", dir.join(file).display());
        assert!(text.contains(&found), "{found:?} not in {text}");
    }
}

/// `iqa video -m topiq_nr` scores each frame of a Y4M clip as the library scores that frame's RGB image.
#[test]
fn the_video_command_scores_frames_with_a_zoo_metric() {
    zoo_weights();
    let (w, h) = (96usize, 64usize);
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|t| {
            let luma = (0..w * h).map(|i| (((i % w) * 3 + (i / w) * 5 + t * 29) % 220 + 16) as u8);
            luma.chain((0..w * h / 2).map(|i| (96 + (i * 13 + t * 7) % 64) as u8)).collect()
        })
        .collect();
    let dir = fresh_temp_dir("zoo", "video");
    std::fs::create_dir_all(&dir).unwrap();
    let mut y4m = format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420mpeg2\n").into_bytes();
    for f in &frames {
        y4m.extend_from_slice(b"FRAME\n");
        y4m.extend_from_slice(f);
    }
    let (clip, json) = (dir.join("clip.y4m"), dir.join("out.json"));
    std::fs::write(&clip, y4m).unwrap();
    let out =
        iqa_command(&["video", "-m", "topiq_nr", "--dist", clip.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe("video", &out));
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let metric = create_metric("topiq_nr", &Options::default()).unwrap();
    let frames_json = doc["frames"].as_array().unwrap_or_else(|| panic!("no frames in {doc}"));
    assert_eq!(frames_json.len(), 3);
    for (t, f) in frames.iter().enumerate() {
        let frame = iqa::Frame::packed(f, w as u32, h as u32, iqa::FrameFormat::I420, iqa::ColorSpec::default());
        let want = metric.score_frame(&frame.unwrap(), None).unwrap();
        let got = frames_json[t]["metrics"]["topiq_nr"].as_f64().unwrap();
        assert_eq!(got, want, "frame {t}");
    }
}

/// `iqa score -m clipscore` takes captions from `--caption` or a `--captions` file (by file name here), gives
/// pyiqa's scores, and makes an image without a caption an error row.
#[test]
fn clipscore_on_the_command_line() {
    let weights = zoo_weights();
    let dir = profile_dir().join("clipscore-cli");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("images")).unwrap();
    for image in ["I03.bmp", "I04.bmp"] {
        std::fs::copy(calibration("dist", image), dir.join("images").join(image)).unwrap();
    }
    let captions = captions();
    std::fs::write(dir.join("captions.csv"), format!("I03.bmp,\"{}\"\n", captions["I03.bmp"].replace('"', "\"\"")))
        .unwrap();
    let want: std::collections::HashMap<String, f64> = references_from("zoo_references.csv")
        .into_iter()
        .filter(|r| r.metric == "clipscore" && r.region == Region::File)
        .map(|r| (r.image, r.score))
        .collect();
    let run = |args: &[&OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_iqa"))
            .args(["score", "-m", "clipscore", "--csv", "-"])
            .args(args)
            .env("IQA_WEIGHTS_DIR", &weights)
            .env("IQA_OFFLINE", "1")
            .output()
            .unwrap();
        assert!(out.status.code().is_some(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let score_of = |csv: &str, image: &str| -> Option<f64> {
        let line = csv.lines().find(|l| l.starts_with(&format!("{image},")))?;
        line.split(',').nth(3)?.parse().ok()
    };
    let images = dir.join("images");
    let captions_file = dir.join("captions.csv");
    let by_file = run(&[OsStr::new("--captions"), captions_file.as_os_str(), images.as_os_str()]);
    let got = score_of(&by_file, "I03.bmp").unwrap_or_else(|| panic!("no I03 score in:\n{by_file}"));
    assert!(rel_err(got, want["I03.bmp"]) <= 1e-4, "{got} vs pyiqa {}", want["I03.bmp"]);
    assert!(by_file.contains("I04.bmp,,clipscore,,no caption"), "{by_file}");
    let one = run(&[OsStr::new("--caption"), OsStr::new(&captions["I04.bmp"]), images.as_os_str()]);
    let got = score_of(&one, "I04.bmp").unwrap_or_else(|| panic!("no I04 score in:\n{one}"));
    assert!(rel_err(got, want["I04.bmp"]) <= 1e-4, "{got} vs pyiqa {}", want["I04.bmp"]);
}
