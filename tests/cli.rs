//! The `iqa` command on folders made here: pairing (nested, unpaired, mixed formats), a corrupt file among
//! good ones, CSV/JSON/JSONL parsed and checked against the library's scores, exit codes, `list` and `info`
//! with no weights anywhere, `--help` everywhere, and `map`.
mod common;
use common::*;
use iqa::{create_metric, Options};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn iqa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iqa")).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh folder under the cargo profile, removed first.
fn fresh(name: &str) -> PathBuf {
    let dir = profile_dir().join(format!("cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn put(path: &Path, from: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::copy(from, path).unwrap();
}

/// Saves a calibration image in another format (PNG is lossless: the same pixels; JPEG is not, and is scored
/// as the file it is).
fn convert(path: &Path, from: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::open(from).unwrap().to_rgb8().save(path).unwrap();
}

/// dist/ and ref/ with: a PNG paired with a BMP of the same name, a nested pair, a JPEG pair, a corrupt PNG
/// with a good reference, an image with no reference, a reference with no image, and a text file.
fn folders(root: &Path) -> (PathBuf, PathBuf) {
    let (dist, reference) = (root.join("dist"), root.join("ref"));
    convert(&dist.join("a/I03.png"), &calibration("dist", "I03.bmp"));
    put(&reference.join("a/I03.bmp"), &calibration("ref", "I03.bmp"));
    put(&dist.join("b/c/I04.bmp"), &calibration("dist", "I04.bmp"));
    put(&reference.join("b/c/I04.bmp"), &calibration("ref", "I04.bmp"));
    put(&dist.join("I19_q75.jpg"), &root_path("tests/data/I19_q75.jpg"));
    convert(&reference.join("I19_q75.png"), &calibration("ref", "I19.bmp"));
    std::fs::write(dist.join("corrupt.png"), b"\x89PNG\r\n\x1a\n not really a png").unwrap();
    put(&reference.join("corrupt.png"), &calibration("ref", "I06.bmp"));
    put(&dist.join("only_dist.bmp"), &calibration("dist", "I08.bmp"));
    put(&reference.join("only_ref.bmp"), &calibration("ref", "I08.bmp"));
    std::fs::write(dist.join("notes.txt"), "not an image").unwrap();
    (dist, reference)
}

fn root_path(relative: &str) -> PathBuf {
    root().join(relative)
}

/// The library's score of a file pair.
fn library_score(metric: &str, dist: &Path, reference: &Path) -> f64 {
    let m = create_metric(metric, &Options::default()).unwrap();
    let fr = m.info().mode == iqa::Mode::FullReference;
    m.score_files(dist, fr.then_some(reference)).unwrap()
}

/// Parses the CSV the command writes (the fields here hold no quotes or commas).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines().skip(1).map(|l| l.split(',').map(String::from).collect()).collect()
}

#[test]
fn folders_pair_by_relative_path_and_every_output_holds_the_library_scores() {
    let root = fresh("folders");
    let (dist, reference) = folders(&root);
    let (csv, json, jsonl) = (root.join("out.csv"), root.join("out.json"), root.join("out.jsonl"));
    let out = iqa(&[
        "score",
        "-m",
        "psnr,ssim,niqe",
        "--recursive",
        dist.to_str().unwrap(),
        reference.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--jsonl",
        jsonl.to_str().unwrap(),
        "--quiet",
    ]);
    // The corrupt file is an error row: the run goes on, and ends with status 1.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("only_dist.bmp") && err.contains("only_ref.bmp"), "unpaired files listed: {err}");
    assert!(err.contains("corrupt.png: psnr:"), "{err}");

    let expected_pairs = [
        ("I19_q75.jpg", "I19_q75.png"),
        ("a/I03.png", "a/I03.bmp"),
        ("b/c/I04.bmp", "b/c/I04.bmp"),
        ("corrupt.png", "corrupt.png"),
    ];
    let rows = csv_rows(&std::fs::read_to_string(&csv).unwrap());
    assert_eq!(rows.len(), 12, "4 pairs x 3 metrics: {rows:?}");
    for (i, (d, r)) in expected_pairs.iter().enumerate() {
        for (j, metric) in ["psnr", "ssim", "niqe"].iter().enumerate() {
            let row = &rows[i * 3 + j];
            assert_eq!((&row[0][..], &row[1][..], &row[2][..]), (*d, *r, *metric), "{row:?}");
            if *d == "corrupt.png" {
                assert!(row[3].is_empty() && row[4].contains("corrupt.png"), "{row:?}");
            } else {
                // The command scores one image per thread, each call on one thread; the library here splits
                // each call over every core, and torch's float64 reductions (ssim's mean) then sum in another
                // order: the last bit may differ.
                let want = library_score(metric, &dist.join(d), &reference.join(r));
                let got = row[3].parse::<f64>().unwrap();
                assert!((got - want).abs() <= 1e-13 * want.abs(), "{row:?}: library {want}");
                assert!(row[4].is_empty());
            }
        }
    }

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["iqa_version"], iqa::VERSION);
    assert_eq!(doc["interrupted"], false);
    assert_eq!(doc["unpaired"]["dist_only"], serde_json::json!(["only_dist.bmp"]));
    assert_eq!(doc["unpaired"]["ref_only"], serde_json::json!(["only_ref.bmp"]));
    assert_eq!(doc["run"]["device"], "cpu");
    assert!(doc["run"]["threads"].as_u64().unwrap() >= 1 && doc["run"]["workers"].as_u64().unwrap() >= 1);
    let metrics = doc["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 3);
    assert_eq!(metrics[0]["name"], "psnr");
    assert_eq!((&metrics[1]["mode"], &metrics[1]["lower_better"]), (&"FR".into(), &false.into()));
    assert_eq!((&metrics[2]["mode"], &metrics[2]["lower_better"]), (&"NR".into(), &true.into()));
    assert_eq!(metrics[1]["range"], serde_json::json!([0.0, 1.0]));
    assert_eq!(metrics[0]["precision"], "fp32");
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 12);
    for (row, result) in rows.iter().zip(results) {
        assert_eq!(result["dist"], row[0].as_str());
        assert_eq!(result["metric"], row[2].as_str());
        match result["score"].as_f64() {
            Some(s) => assert_eq!(s.to_bits(), row[3].parse::<f64>().unwrap().to_bits()),
            None => assert!(result["error"].as_str().unwrap().contains("corrupt.png")),
        }
    }
    for (k, summary) in doc["summary"].as_array().unwrap().iter().enumerate() {
        let scores: Vec<f64> = rows.iter().skip(k).step_by(3).filter_map(|r| r[3].parse().ok()).collect();
        let mut sorted = scores.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(summary["count"], 3);
        assert_eq!(summary["errors"], 1);
        let mean = scores.iter().sum::<f64>() / 3.0;
        assert!((summary["mean"].as_f64().unwrap() - mean).abs() <= 1e-12 * mean.abs());
        assert_eq!(summary["median"].as_f64().unwrap(), sorted[1]);
        assert_eq!((summary["min"].as_f64().unwrap(), summary["max"].as_f64().unwrap()), (sorted[0], sorted[2]));
    }

    // JSONL: one line per image, in the order they finished.
    let lines: Vec<Value> =
        std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    for line in &lines {
        let row = rows.iter().find(|r| line["dist"] == r[0].as_str()).unwrap();
        if row[0] == "corrupt.png" {
            assert_eq!(line["errors"].as_object().unwrap().len(), 3);
        } else {
            assert_eq!(line["scores"].as_object().unwrap().len(), 3);
            assert_eq!(line["scores"]["psnr"].as_f64().unwrap().to_string(), row[3]);
        }
    }

    // Without --recursive only the top folder counts; without the corrupt file the run succeeds.
    std::fs::remove_file(dist.join("corrupt.png")).unwrap();
    let out = iqa(&["score", "-m", "psnr", dist.to_str().unwrap(), reference.to_str().unwrap(), "--csv", "-", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = csv_rows(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["I19_q75.jpg"]);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn tables_single_scores_and_no_reference_metrics() {
    let (d, r) = (calibration("dist", "I03.bmp"), calibration("ref", "I03.bmp"));
    let (d, r) = (d.to_str().unwrap(), r.to_str().unwrap());
    // One image, one metric: the number alone, in either argument order.
    for args in [&["score", "psnr", d, r][..], &["score", "-m", "psnr", d, r][..]] {
        let out = iqa(args);
        let want = library_score("psnr", Path::new(d), Path::new(r));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().unwrap(), want);
    }
    // A no-reference metric ignores the reference.
    let with_ref = iqa(&["score", "-m", "niqe", d, r]);
    let without = iqa(&["score", "-m", "niqe", d]);
    assert!(with_ref.status.success(), "{}", stderr(&with_ref));
    assert_eq!(with_ref.stdout, without.stdout);
    // Several metrics: a table with a summary.
    let out = iqa(&["score", "-m", "psnr,niqe", d, r]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("psnr") && text.contains("niqe") && text.contains("median"), "{text}");
    assert!(text.contains(&format!("{:.6}", library_score("niqe", Path::new(d), Path::new(r)))), "{text}");
    // `all` without a reference: the no-reference metrics ready here.
    let out = iqa(&["score", "-m", "all", d, "--json", "-", "-q"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = doc["metrics"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["entropy", "niqe", "ilniqe", "brisque", "piqe"]);
}

#[test]
fn exit_codes_say_usage_errors_apart_from_failures() {
    let (d, r) = (calibration("dist", "I03.bmp"), calibration("ref", "I03.bmp"));
    let (d, r) = (d.to_str().unwrap(), r.to_str().unwrap());
    let dir = calibration("dist", "I03.bmp").parent().unwrap().to_str().unwrap().to_string();
    for (args, needle) in [
        (&["score", "-m", "nope", d, r][..], "unknown metric 'nope'"),
        (&["score", "-m", "uranker", d][..], "scripts/export_torchscript.py uranker"),
        (&["score", "-m", "ssim", d][..], "ssim is full-reference"),
        (&["score", "-m", "psnr", "/no/such/file.png", r][..], "does not exist"),
        (&["score", "-m", "psnr", &dir, r][..], "both be files or both be folders"),
        (&["score", "-m", "psnr", d, r, "--csv", "-", "--json", "-"][..], "only one of"),
        (&["score"][..], "required"),
        (&["score", "-m", "psnr", d, r, "--threads", "0"][..], "--threads"),
        (&["score", "-m", "psnr", d, r, "--device", "tpu"][..], "not a device"),
        (&["frobnicate"][..], "unrecognized subcommand"),
        (&["info", "nope"][..], "unknown metric 'nope'"),
    ] {
        let out = iqa(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    // A corrupt single file: a failure (1), not a usage error.
    let root = fresh("exit");
    let bad = root.join("bad.png");
    std::fs::write(&bad, b"garbage").unwrap();
    let out = iqa(&["score", "-m", "niqe", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("bad.png"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn help_on_every_subcommand() {
    for sub in ["score", "list", "info", "map", "demo"] {
        let out = iqa(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{sub}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: iqa") && text.contains("--threads"), "{sub}: {text}");
    }
    let out = iqa(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("score"));
    let out = iqa(&["--version"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("iqa {}", iqa::VERSION));
}

#[test]
fn list_and_info_without_any_weights() {
    let root = fresh("list");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_iqa"))
            .args(args)
            .env("HOME", &root)
            .env("TORCH_HOME", root.join("torch"))
            .env("IQA_CACHE_DIR", root.join("cache"))
            .env("IQA_OFFLINE", "1")
            .env_remove("IQA_WEIGHTS_DIR")
            .env_remove("XDG_CACHE_HOME")
            .output()
            .unwrap()
    };
    let out = run(&["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| text.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap().to_string();
    assert_eq!(line("psnr").split_whitespace().collect::<Vec<_>>(), ["psnr", "FR", "higher", "[0,", "40]", "ready"]);
    assert!(line("niqe").contains("NR") && line("niqe").contains("ready (parameters built in)"));
    assert!(line("lpips").contains("missing alexnet-owt-7be5be79.pth"), "{}", line("lpips"));
    assert!(line("dists").contains("missing vgg16-397923af.pth"), "{}", line("dists"));
    assert!(text.contains("scripts/export_torchscript.py NAME") && line("uranker").contains("NR"), "{text}");
    for name in iqa::metric_names() {
        assert!(text.lines().any(|l| l.split_whitespace().next() == Some(name.as_str())), "{name} not listed");
    }
    let out = run(&["info", "lpips"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("LPIPS_v0.1_alex-df73285e.pth: built in"), "{text}");
    assert!(text.contains("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"), "{text}");
    let out = run(&["info", "uranker"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("scripts/export_torchscript.py uranker"));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn map_writes_a_heat_map_of_the_maps_size() {
    let root = fresh("map");
    let (d, r) = (calibration("dist", "I03.bmp"), calibration("ref", "I03.bmp"));
    for (metric, size) in [("ssim", (502, 374)), ("gmsd", (256, 192)), ("psnr", (512, 384))] {
        let png = root.join(format!("{metric}.png"));
        let out = iqa(&["map", metric, d.to_str().unwrap(), r.to_str().unwrap(), png.to_str().unwrap()]);
        assert!(out.status.success(), "{metric}: {}", stderr(&out));
        assert_eq!(image::image_dimensions(&png).unwrap(), size, "{metric}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{}x{}", size.0, size.1)));
    }
    let out = iqa(&["map", "niqe", d.to_str().unwrap(), r.to_str().unwrap(), "/dev/null"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("has no spatial map"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn ctrl_c_stops_with_what_was_scored_written() {
    let root = fresh("interrupt");
    let dir = root.join("images");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..60 {
        std::os::unix::fs::symlink(calibration("dist", IMAGES[i % IMAGES.len()]), dir.join(format!("{i:03}.bmp")))
            .unwrap();
    }
    let (csv, jsonl) = (root.join("out.csv"), root.join("out.jsonl"));
    let child = Command::new(env!("CARGO_BIN_EXE_iqa"))
        .args(["score", "-m", "niqe,brisque", dir.to_str().unwrap(), "--threads", "1", "-q"])
        .args(["--csv", csv.to_str().unwrap(), "--jsonl", jsonl.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first image is streamed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_to_string(&jsonl).map_or(true, |t| t.lines().count() == 0) {
        assert!(std::time::Instant::now() < deadline, "no line streamed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill on the id of the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted after"), "{}", stderr(&out));
    let lines: Vec<Value> =
        std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty() && lines.len() < 60, "{} images streamed", lines.len());
    // The CSV holds exactly the images streamed, each with both metrics, and nothing cut short.
    let rows = csv_rows(&std::fs::read_to_string(&csv).unwrap());
    assert_eq!(rows.len(), 2 * lines.len());
    for line in &lines {
        let name = line["dist"].as_str().unwrap();
        let scored: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == name).collect();
        assert_eq!(scored.len(), 2, "{name}");
        assert_eq!(scored[0][3].parse::<f64>().unwrap(), line["scores"]["niqe"].as_f64().unwrap());
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn one_reference_scores_many_images_as_their_pairs() {
    require_weights_dir();
    let root = fresh("shared-reference");
    let reference = root_path("data/calibration/ref/I03.bmp");
    let dists = root.join("ladder");
    for image in ["I03.bmp", "I04.bmp", "I06.bmp"] {
        put(&dists.join(image), &root_path(&format!("data/calibration/dist/{image}")));
    }
    let single = root_path("data/calibration/dist/I08.bmp");
    let out = iqa(&[
        "score",
        "-q",
        "-m",
        "lpips,psnr,niqe",
        "--ref",
        reference.to_str().unwrap(),
        dists.to_str().unwrap(),
        single.to_str().unwrap(),
        "--csv",
        "-",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = csv_rows(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(rows.len(), 4 * 3, "{rows:?}");
    for row in &rows {
        let dist = if row[0].ends_with("I08.bmp") { single.clone() } else { root.join(&row[0]) };
        assert_eq!(row[1], reference.display().to_string());
        let want = library_score(&row[2], &dist, &reference);
        assert_eq!(row[3].parse::<f64>().unwrap(), want, "{row:?}");
    }
    // A folder as --ref, and three paths without it, are usage errors (exit 2) that say what to do.
    let out = iqa(&["score", "-m", "lpips", "--ref", dists.to_str().unwrap(), single.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a file"), "{}", stderr(&out));
    let path = single.to_str().unwrap();
    let out = iqa(&["score", "-m", "lpips", path, path, path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("use --ref"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&root);
}
