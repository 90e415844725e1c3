//! TorchScript-backed metrics through the Rust API: discovery of NAME.pt + NAME.json in IQA_WEIGHTS_DIR,
//! creation by name and by path, scores of tiny generated modules against values computed here, and every
//! error the contract names (tests/python/make_torchscript_fixtures.py makes the modules).
mod common;
use common::{decoded, torchscript_fixtures};
use iqa::{create_metric, create_torchscript, ErrorKind, Mode, Options, Precision, TorchScriptSpec};
use std::path::PathBuf;

/// The fixtures, with IQA_WEIGHTS_DIR pointing at them for this whole test process (set before any iqa call:
/// every test calls this first).
fn fixtures() -> PathBuf {
    static SET: std::sync::Once = std::sync::Once::new();
    let dir = torchscript_fixtures();
    SET.call_once(|| std::env::set_var("IQA_WEIGHTS_DIR", &dir));
    dir
}

fn spec(name: &str, mode: Mode) -> TorchScriptSpec {
    TorchScriptSpec { name: name.into(), mode, lower_better: false, score_range: (f64::NAN, f64::NAN) }
}

/// Mean of the decoded 8-bit pixels / 255, and mean |dist - ref| / 255, computed here in f64.
fn pixel_means(image: &str) -> (f64, f64) {
    let (d, r) = (decoded("dist", image), decoded("ref", image));
    let n = d.bytes().len() as f64;
    let mean = d.bytes().iter().map(|&v| v as f64).sum::<f64>() / n / 255.0;
    let diff = d.bytes().iter().zip(r.bytes()).map(|(&a, &b)| (a as f64 - b as f64).abs()).sum::<f64>() / n / 255.0;
    (mean, diff)
}

#[test]
fn modules_with_sidecars_are_listed_after_the_built_in_metrics() {
    fixtures();
    let names = iqa::metric_names();
    let built_in = |n: &String| matches!(iqa::metric_status(n), Ok(s) if s.module.is_none());
    let first_module = names.iter().position(|n| !built_in(n)).expect("modules are listed");
    let listed: Vec<&str> = names[first_module..].iter().map(String::as_str).collect();
    assert!(!names[first_module..].iter().any(built_in), "built-in metrics after the modules: {names:?}");
    assert_eq!(listed, ["absdiff", "bad_sidecar", "brightness", "not_a_module", "one_arg_fr"], "{names:?}");
}

#[test]
fn nr_module_found_by_name_scores_the_mean_brightness() {
    fixtures();
    let metric = create_metric("brightness", &Options::default()).unwrap();
    let info = metric.info();
    assert_eq!((info.name.as_str(), info.mode, info.lower_better), ("brightness", Mode::NoReference, false));
    assert_eq!(info.score_range, (0.0, 1.0));
    for image in ["I03.bmp", "I19.bmp"] {
        let (mean, _) = pixel_means(image);
        let d = decoded("dist", image);
        let got = metric.score(&d.as_image(), None).unwrap();
        assert!((got - mean).abs() < 1e-6, "{image}: {got} vs {mean}");
    }
    // An NR module given a reference is the same argument error as for built-in metrics.
    let d = decoded("dist", "I03.bmp");
    let err = metric.score(&d.as_image(), Some(&d.as_image())).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument, "{err}");
}

#[test]
fn fr_module_scores_pairs_and_batches_and_returns_n_by_1() {
    fixtures();
    let metric = create_metric("absdiff", &Options::default()).unwrap();
    let info = metric.info();
    assert_eq!((info.mode, info.lower_better), (Mode::FullReference, true));
    assert!(info.score_range.0.is_nan() && info.score_range.1.is_nan());
    let images = ["I03.bmp", "I04.bmp", "I08.bmp"];
    let pairs: Vec<_> = images.iter().map(|i| (decoded("dist", i), decoded("ref", i))).collect();
    let dists: Vec<_> = pairs.iter().map(|p| p.0.as_image()).collect();
    let refs: Vec<_> = pairs.iter().map(|p| p.1.as_image()).collect();
    let batch = metric.score_batch(&dists, Some(&refs)).unwrap();
    for (i, image) in images.iter().enumerate() {
        let (_, diff) = pixel_means(image);
        let single = metric.score(&dists[i], Some(&refs[i])).unwrap();
        assert!((single - diff).abs() < 1e-6, "{image}: {single} vs {diff}");
        assert!((batch[i] - single).abs() < 1e-7, "{image}: batch {} vs single {single}", batch[i]);
    }
}

#[test]
fn creation_by_path_uses_the_given_spec_and_shares_the_module_loaded_by_name() {
    let dir = fixtures();
    let by_name = create_metric("absdiff", &Options::default()).unwrap();
    let mut s = spec("my-absdiff", Mode::FullReference);
    s.score_range = (0.0, 1.0);
    let by_path = create_torchscript(&dir.join("absdiff.pt"), &s, &Options::default()).unwrap();
    assert_eq!(by_path.info().name, "my-absdiff");
    assert_eq!(by_path.info().score_range, (0.0, 1.0));
    let (d, r) = (decoded("dist", "I06.bmp"), decoded("ref", "I06.bmp"));
    let a = by_name.score(&d.as_image(), Some(&r.as_image())).unwrap();
    let b = by_path.score(&d.as_image(), Some(&r.as_image())).unwrap();
    assert_eq!(a, b);
    assert!(by_name.shares_model_with(&by_path), "one file, one loaded module");
    let bf16 = create_torchscript(
        &dir.join("absdiff.pt"),
        &s,
        &Options { precision: Some(Precision::Bf16), ..Default::default() },
    )
    .unwrap();
    assert!(!bf16.shares_model_with(&by_path), "bf16 converts the module: a model of its own");
    let c = bf16.score(&d.as_image(), Some(&r.as_image())).unwrap();
    assert!((c - a).abs() < 1e-2 * a, "bf16 {c} vs fp32 {a}");
}

#[test]
fn errors_are_reported_at_creation() {
    let dir = fixtures();
    let o = Options::default();
    let cases: Vec<(&str, iqa::Result<iqa::Metric>, ErrorKind, &str)> = vec![
        (
            "missing file",
            create_torchscript(&dir.join("nothing_here.pt"), &spec("x", Mode::NoReference), &o),
            ErrorKind::Io,
            "nothing_here.pt",
        ),
        (
            "not an archive, by name",
            create_metric("not_a_module", &o),
            ErrorKind::Weights,
            "not a loadable TorchScript",
        ),
        ("FR sidecar on forward(x)", create_metric("one_arg_fr", &o), ErrorKind::Weights, "forward(dist, ref)"),
        (
            "NR spec on forward(x, y)",
            create_torchscript(&dir.join("two_arg_nr.pt"), &spec("x", Mode::NoReference), &o),
            ErrorKind::Weights,
            "forward(dist) for an NR metric",
        ),
        (
            "FR spec on forward(x)",
            create_torchscript(&dir.join("brightness.pt"), &spec("x", Mode::FullReference), &o),
            ErrorKind::Weights,
            "Tensor x",
        ),
        ("bad sidecar", create_metric("bad_sidecar", &o), ErrorKind::Weights, "\"mode\" must be"),
        ("no sidecar: not found by name", create_metric("orphan", &o), ErrorKind::UnknownMetric, "orphan"),
    ];
    for (what, result, kind, needle) in cases {
        let err = result.err().unwrap_or_else(|| panic!("{what}: created"));
        assert_eq!(err.kind, kind, "{what}: {err}");
        assert!(err.message.contains(needle), "{what}: {err:?} lacks {needle:?}");
    }
    // Nothing half-made stays behind: the good modules still load and score.
    let metric = create_metric("brightness", &o).unwrap();
    let d = decoded("dist", "I03.bmp");
    assert!(metric.score(&d.as_image(), None).unwrap() > 0.0);
}
