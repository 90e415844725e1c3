//! pyiqa's model zoo through TorchScript: scripts/export_torchscript.py exports a pyiqa metric with
//! random weights (pyiqa's own architectures, seeded) into a fresh directory during the test run, writing
//! pyiqa's scores for the calibration pairs and a 301x257 crop; iqa then finds each module by name
//! (IQA_WEIGHTS_DIR) and must give pyiqa's scores within 1e-4 relative. Needs pyiqa (scripts/setup.sh --dev).
//! maniqa is exported by the same script but left out here: 20 ViT crops per image take ~15 min on 2 cores.
mod common;
use common::{profile_dir, references_at, rel_err, root, score_reference, venv_python};
use std::path::PathBuf;

/// pyiqa names the script exports. Each module is installed under `NAME-exported`: a module never takes a
/// built-in metric's name (musiq is built in; tests/zoo.rs covers it), and a user's module may have any name.
const ZOO: [&str; 1] = ["musiq"];

fn installed(name: &str) -> String {
    format!("{name}-exported")
}

fn exported() -> PathBuf {
    let dir = profile_dir().join("torchscript-zoo");
    let _ = std::fs::remove_dir_all(&dir);
    let out = std::process::Command::new(venv_python())
        .arg(root().join("scripts/export_torchscript.py"))
        .args(ZOO)
        .args(["--random-weights", "--images", "2", "--out"])
        .arg(&dir)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "export failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for name in ZOO {
        for ext in ["pt", "json"] {
            std::fs::rename(dir.join(format!("{name}.{ext}")), dir.join(format!("{}.{ext}", installed(name)))).unwrap();
        }
    }
    dir
}

#[test]
fn exported_modules_give_pyiqas_scores_for_the_same_weights() {
    let dir = exported();
    std::env::set_var("IQA_WEIGHTS_DIR", &dir);
    let names = iqa::metric_names();
    let mut report = Vec::new();
    for pyiqa_name in ZOO {
        let name = installed(pyiqa_name);
        let name = name.as_str();
        assert!(names.iter().any(|n| n == name), "{name} not listed: {names:?}");
        let metric = iqa::create_metric(name, &iqa::Options::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let sidecar: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap();
        let fr = sidecar["mode"] == "FR";
        assert_eq!(metric.info().mode == iqa::Mode::FullReference, fr, "{name}");
        let rows = references_at(&dir.join(format!("{pyiqa_name}.references.csv")));
        assert_eq!(rows.len(), 4, "{name}: two pairs, each whole and cropped");
        let (mut worst, mut lo, mut hi) = (0f64, f64::INFINITY, f64::NEG_INFINITY);
        let mut worst_abs = 0f64;
        for r in &rows {
            let got = score_reference(&metric, r).unwrap_or_else(|e| panic!("{name} {r:?}: {e}"));
            let err = rel_err(got, r.score);
            assert!(
                err <= 1e-4,
                "{name} {} {:?}: iqa {got} vs pyiqa {} (relative {err:.2e})",
                r.image,
                r.region,
                r.score
            );
            worst = worst.max(err);
            worst_abs = worst_abs.max((got - r.score).abs());
            lo = lo.min(r.score);
            hi = hi.max(r.score);
        }
        // Random weights can make a model nearly constant; the error must still be far below how much the
        // scores differ between the inputs, or the comparison would not tell images apart.
        let spread = hi - lo;
        assert!(worst_abs <= 1e-2 * spread, "{name}: error {worst_abs:.2e} against a spread of {spread:.2e}");
        // Seconds per image through libiqa (file pair I03, decode included; median of 3), for the README.
        let (d, r) = (common::calibration("dist", "I03.bmp"), common::calibration("ref", "I03.bmp"));
        let mut times: Vec<f64> = (0..3)
            .map(|_| {
                let t = std::time::Instant::now();
                metric.score_files(&d, fr.then_some(r.as_path())).unwrap();
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        report.push(format!(
            "{name}: max relative error {worst:.2e}, max abs {worst_abs:.2e}, score spread {spread:.2e}, \
             iqa {:.3} s/image (pyiqa {:.3}, exported module in Python {:.3})",
            times[1], sidecar["seconds_per_image_pyiqa"], sidecar["seconds_per_image_module"]
        ));
    }
    println!("{}", report.join("\n"));
}
