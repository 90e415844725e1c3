//! Deep metrics with the real pretrained weights (IQA_WEIGHTS_DIR, e.g. ../shared/weights; these tests fail
//! without it): equal to pyiqa 0.1.16 run with the same files within 1e-5 absolute on the calibration pairs,
//! odd and small crops and 2×2 tiles (tests/data/deep_references.csv, scripts/make_deep_references.py), and
//! to the official LPIPS and DISTS scores within 1e-4.
mod common;
use common::*;
use iqa::{create_metric, ErrorKind, Options};
use std::collections::BTreeMap;

const PYIQA_TOLERANCE: f64 = 1e-5;
const OFFICIAL_TOLERANCE: f64 = 1e-4;
const OFFICIAL_LPIPS: [f64; 5] = [0.7237, 0.2572, 0.05079, 0.05205, 0.4253];
const OFFICIAL_DISTS: [f64; 5] = [0.4742, 0.1424, 0.06825, 0.02867, 0.3123];

#[test]
fn deep_metrics_match_pyiqa_with_the_same_weights() {
    require_weights_dir();
    let refs = references_from("deep_references.csv");
    assert_eq!(refs.len(), 180);
    let mut worst: BTreeMap<String, f64> = BTreeMap::new();
    let mut metrics = BTreeMap::new();
    for r in &refs {
        let metric = metrics.entry(r.metric.clone()).or_insert_with(|| {
            create_metric(&r.metric, &Options::default()).unwrap_or_else(|e| panic!("{}: {e}", r.metric))
        });
        if let Some(err) = check_reference(r, score_reference(metric, r), PYIQA_TOLERANCE, false) {
            let w = worst.entry(r.metric.clone()).or_default();
            *w = w.max(err);
        }
    }
    for (m, e) in &worst {
        println!("max absolute error vs pyiqa: {m:<14} {e:.2e}");
    }
}

#[test]
fn lpips_and_dists_match_the_official_scores() {
    require_weights_dir();
    for (name, official) in [("lpips", OFFICIAL_LPIPS), ("dists", OFFICIAL_DISTS)] {
        let metric = create_metric(name, &Options::default()).unwrap();
        let mut worst = 0f64;
        for (image, want) in IMAGES.iter().zip(official) {
            let got = metric.score_files(&calibration("dist", image), Some(&calibration("ref", image))).unwrap();
            worst = worst.max((got - want).abs());
            assert!((got - want).abs() <= OFFICIAL_TOLERANCE, "{name} {image}: {got} vs official {want}");
        }
        println!("max absolute distance to the official scores: {name} {worst:.2e}");
    }
}

#[test]
fn batches_equal_single_scores() {
    require_weights_dir();
    let pairs: Vec<_> = IMAGES.iter().map(|i| (decoded("dist", i), decoded("ref", i))).collect();
    let crop = Region::Crop(3, 4, 171, 165);
    let cropped: Vec<_> =
        pairs.iter().map(|(d, r)| (region_pixels(d, &crop).unwrap(), region_pixels(r, &crop).unwrap())).collect();
    for name in ["lpips", "lpips-vgg+", "lpips-squeeze", "dists"] {
        let metric = create_metric(name, &Options::default()).unwrap();
        let mut d: Vec<_> = pairs.iter().map(|p| p.0.as_image()).collect();
        let mut r: Vec<_> = pairs.iter().map(|p| p.1.as_image()).collect();
        d.insert(1, cropped[0].0.image());
        r.insert(1, cropped[0].1.image());
        let batch = metric.score_batch(&d, Some(&r)).unwrap();
        for i in 0..d.len() {
            let single = metric.score(&d[i], Some(&r[i])).unwrap();
            assert!((batch[i] - single).abs() <= 1e-6, "{name} image {i}: batch {} vs single {single}", batch[i]);
        }
    }
}

/// LPIPS' spatial map: same shape as the image, values as pyiqa's `spatial=True` (tests/data/lpips_map_I03.csv).
#[test]
fn lpips_distance_map_matches_pyiqa() {
    require_weights_dir();
    let text = std::fs::read_to_string(root().join("tests/data/lpips_map_I03.csv")).unwrap();
    let metric = create_metric("lpips", &Options::default()).unwrap();
    let (d, r) = (decoded("dist", "I03.bmp"), decoded("ref", "I03.bmp"));
    let map = metric.score_map(&d.as_image(), &r.as_image()).unwrap();
    assert_eq!((map.width, map.height), (512, 384));
    let map = map.values;
    let mut checked = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').collect();
        let close = |got: f64, want: &str| {
            let want: f64 = want.parse().unwrap();
            assert!((got - want).abs() <= 1e-5, "{line}: iqa {got}");
        };
        match f[0] {
            "shape" => assert_eq!(f[1..], ["1", "1", "384", "512"]),
            "mean" => close(map.iter().map(|&v| v as f64).sum::<f64>() / map.len() as f64, f[1]),
            "max" => close(map.iter().cloned().fold(f32::MIN, f32::max) as f64, f[1]),
            "min" => close(map.iter().cloned().fold(f32::MAX, f32::min) as f64, f[1]),
            "px" => {
                let (y, x): (usize, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
                close(map[y * 512 + x] as f64, f[3]);
            }
            _ => continue,
        }
        checked += 1;
    }
    assert_eq!(checked, 9);
    let ms_ssim = create_metric("ms_ssim", &Options::default()).unwrap();
    let e = ms_ssim.score_map(&d.as_image(), &r.as_image()).unwrap_err();
    assert!(e.kind == ErrorKind::InvalidArgument && e.message.contains("no spatial map"), "{}", e.message);
}
