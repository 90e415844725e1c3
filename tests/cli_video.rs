//! `iqa video` on clips written here (Y4M and raw I420): per-frame and pooled scores in JSON and CSV equal the
//! library's scores of the same frames, standard input as a pipe, raw input, and the errors (videos of
//! different sizes or lengths, --shortest, a truncated file, usage errors).
mod common;
use common::{profile_dir, rel_err};
use iqa::{create_metric, ColorSpec, Frame, FrameFormat, Options};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const W: usize = 64;
const H: usize = 48;

/// I420 frame `t` of clip `seed`: a moving pattern with chroma.
fn i420(w: usize, h: usize, seed: usize, t: usize) -> Vec<u8> {
    let luma = (0..w * h).map(|i| (((i % w) * 3 + (i / w) * 5 + t * 7 + seed * 11) % 220 + 16) as u8);
    let chroma = (0..w * h / 2).map(|i| (96 + (i * 13 + t * 3 + seed) % 64) as u8);
    luma.chain(chroma).collect()
}

fn y4m(frames: &[Vec<u8>], w: usize, h: usize) -> Vec<u8> {
    let mut data = format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420mpeg2\n").into_bytes();
    for f in frames {
        data.extend_from_slice(b"FRAME\n");
        data.extend_from_slice(f);
    }
    data
}

fn clip(seed: usize, n: usize, w: usize, h: usize) -> Vec<Vec<u8>> {
    (0..n).map(|t| i420(w, h, seed, t)).collect()
}

fn fresh(name: &str) -> PathBuf {
    let dir = profile_dir().join(format!("cli-video-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn iqa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iqa")).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The library's scores of each frame pair (psnr, ssim), as the command should report them.
fn library_scores(dist: &[Vec<u8>], reference: &[Vec<u8>]) -> Vec<[f64; 2]> {
    let metrics =
        [create_metric("psnr", &Options::default()).unwrap(), create_metric("ssim", &Options::default()).unwrap()];
    let frame = i420_frame;
    dist.iter()
        .zip(reference)
        .map(|(d, r)| {
            let (d, r) = (frame(d), frame(r));
            [0, 1].map(|m| metrics[m].score_frame(&d, Some(&r)).unwrap())
        })
        .collect()
}

fn i420_frame(bytes: &[u8]) -> Frame<'_> {
    Frame::packed(bytes, W as u32, H as u32, FrameFormat::I420, ColorSpec::default()).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// JSON frames[] as (psnr, ssim) per frame, and pooled_metrics.
fn json_scores(doc: &Value) -> Vec<[f64; 2]> {
    doc["frames"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            assert_eq!(f["frameNum"].as_u64(), Some(i as u64));
            ["psnr", "ssim"].map(|m| f["metrics"][m].as_f64().unwrap())
        })
        .collect()
}

#[test]
fn files_give_the_librarys_per_frame_scores_and_pool_them() {
    let dir = fresh("files");
    let (dist, reference) = (clip(1, 5, W, H), clip(2, 5, W, H));
    let (d, r) = (dir.join("dist.y4m"), dir.join("ref.y4m"));
    std::fs::write(&d, y4m(&dist, W, H)).unwrap();
    std::fs::write(&r, y4m(&reference, W, H)).unwrap();
    let (json, csv) = (dir.join("out.json"), dir.join("out.csv"));
    let out = iqa(&[
        "video",
        "-m",
        "psnr,ssim",
        "--dist",
        path(&d),
        "--ref",
        path(&r),
        "--json",
        path(&json),
        "--csv",
        path(&csv),
        "--workers",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let want = library_scores(&dist, &reference);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let got = json_scores(&doc);
    assert_eq!(got, want, "per-frame scores are the library's, to the bit");
    assert_eq!(doc["run"]["frames"].as_u64(), Some(5));
    assert_eq!((doc["run"]["width"].as_u64(), doc["run"]["format"].as_str()), (Some(64), Some("yuv420p")));
    for (m, name) in ["psnr", "ssim"].iter().enumerate() {
        let s: Vec<f64> = want.iter().map(|f| f[m]).collect();
        let pooled = &doc["pooled_metrics"][name];
        let mean = s.iter().sum::<f64>() / 5.0;
        let harmonic = 5.0 / s.iter().map(|v| 1.0 / (v + 1.0)).sum::<f64>() - 1.0;
        let mut sorted = s.clone();
        sorted.sort_by(f64::total_cmp);
        assert!(rel_err(pooled["mean"].as_f64().unwrap(), mean) < 1e-12, "{name} {pooled}");
        assert!(rel_err(pooled["harmonic_mean"].as_f64().unwrap(), harmonic) < 1e-12, "{name} {pooled}");
        assert_eq!(pooled["min"].as_f64(), Some(sorted[0]));
        assert_eq!(pooled["max"].as_f64(), Some(sorted[4]));
        assert_eq!(pooled["median"].as_f64(), Some(sorted[2]));
    }
    // CSV: the same values, then the pooled rows.
    let csv = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows[0], ["frame", "metric", "score"]);
    assert_eq!(rows.len(), 1 + 5 * 2 + 5 * 2);
    for (f, scores) in want.iter().enumerate() {
        for (m, name) in ["psnr", "ssim"].iter().enumerate() {
            let row = &rows[1 + 2 * f + m];
            assert_eq!((row[0], row[1]), (f.to_string().as_str(), *name));
            assert_eq!(row[2].parse::<f64>().unwrap(), scores[m]);
        }
    }
    assert_eq!(rows[11][..2], ["mean", "psnr"]);
    assert_eq!(rows[11][2].parse::<f64>().unwrap(), doc["pooled_metrics"]["psnr"]["mean"].as_f64().unwrap());
    // The table on stdout names the pooled values.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("5 frames (5 scored)") && stdout.contains("harmonic_mean"), "{stdout}");
}

#[test]
fn standard_input_and_raw_files_give_the_same_scores() {
    let dir = fresh("pipe");
    let (dist, reference) = (clip(3, 4, W, H), clip(4, 4, W, H));
    let r = dir.join("ref.y4m");
    std::fs::write(&r, y4m(&reference, W, H)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_iqa"))
        .args(["video", "-m", "psnr,ssim", "--dist", "-", "--ref", path(&r), "--json", "-", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = y4m(&dist, W, H);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // In pieces, as a decoder writes.
        for piece in bytes.chunks(1000) {
            stdin.write_all(piece).unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON alone");
    let want = library_scores(&dist, &reference);
    assert_eq!(json_scores(&doc), want);
    assert_eq!(doc["run"]["dist"].as_str(), Some("-"));

    // Raw .yuv with --size and --pixfmt: the same frames, the same scores.
    let raw = dir.join("dist.yuv");
    std::fs::write(&raw, dist.concat()).unwrap();
    let json = dir.join("raw.json");
    let out = iqa(&[
        "video",
        "-m",
        "psnr,ssim",
        "--dist",
        path(&raw),
        "--ref",
        path(&r),
        "--size",
        "64x48",
        "--pixfmt",
        "yuv420p",
        "--json",
        path(&json),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(json_scores(&doc), want);
}

#[test]
fn videos_that_differ_are_errors_unless_told_to_stop_at_the_shorter() {
    let dir = fresh("errors");
    let (d, r, small, short, cut) =
        (dir.join("d.y4m"), dir.join("r.y4m"), dir.join("small.y4m"), dir.join("short.y4m"), dir.join("cut.y4m"));
    std::fs::write(&d, y4m(&clip(5, 4, W, H), W, H)).unwrap();
    std::fs::write(&r, y4m(&clip(6, 4, W, H), W, H)).unwrap();
    std::fs::write(&small, y4m(&clip(6, 4, 32, 24), 32, 24)).unwrap();
    std::fs::write(&short, y4m(&clip(6, 3, W, H), W, H)).unwrap();
    let mut truncated = y4m(&clip(6, 4, W, H), W, H);
    truncated.truncate(truncated.len() - 100);
    std::fs::write(&cut, truncated).unwrap();
    let run = |args: &[&str]| iqa(&[&["video", "-m", "psnr", "--quiet"], args].concat());
    let fails = |out: &Output, code: i32, needle: &str| {
        assert_eq!(out.status.code(), Some(code), "{}", text(out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "wants {needle:?}: {}", text(out));
    };
    fails(
        &run(&["--dist", path(&d), "--ref", path(&small)]),
        1,
        "the videos differ: --dist is 64x48 yuv420p, --ref is 32x24 yuv420p",
    );
    fails(&run(&["--dist", path(&d), "--ref", path(&short)]), 1, "--dist is longer than --ref (3 frames); --shortest");
    fails(&run(&["--dist", path(&short), "--ref", path(&d)]), 1, "--ref is longer than --dist (3 frames)");
    fails(&run(&["--dist", path(&d), "--ref", path(&cut)]), 1, "is truncated: the stream ends at byte");
    let json = dir.join("short.json");
    let out = run(&["--dist", path(&d), "--ref", path(&short), "--shortest", "--json", path(&json)]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["frames"].as_array().unwrap().len(), 3);
    // Usage errors: exit status 2.
    fails(&run(&["--dist", path(&d)]), 2, "psnr is full-reference: give the reference video with --ref");
    fails(&run(&["--dist", path(&d), "--ref", path(&r), "--size", "64x48"]), 2, "--size and --pixfmt go together");
    fails(&run(&["--dist", "-", "--ref", "-"]), 2, "only one of --dist and --ref can be standard input");
    fails(&iqa(&["video", "-m", "nope", "--dist", path(&d)]), 2, "nope");
    fails(
        &run(&["--dist", path(&d), "--ref", path(&r), "--size", "64by48", "--pixfmt", "yuv420p"]),
        2,
        "is not a size",
    );
    // Every scored frame's subsample.
    let out = run(&["--dist", path(&d), "--ref", path(&r), "--subsample", "2", "--json", path(&json)]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let nums: Vec<u64> = doc["frames"].as_array().unwrap().iter().map(|f| f["frameNum"].as_u64().unwrap()).collect();
    assert_eq!((nums, doc["run"]["frames"].as_u64()), (vec![0, 2], Some(4)));
}
