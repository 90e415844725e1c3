//! Quality maps (`Metric::score_map`) against the metrics' own scores on the calibration pairs: the SSIM map's
//! mean is the score, the PSNR map's mean is the MSE the score follows from, and the GMSD score is the standard
//! deviation of its similarity map, each to 1e-6; the LPIPS map's mean is close to its score (as in pyiqa,
//! whose map tests/parity.rs checks). Maps of an identical pair are the metric's "perfect" value everywhere.
mod common;
use common::*;
use iqa::{create_metric, Options};

fn map_and_score(name: &str, image: &str) -> (iqa::QualityMap, f64) {
    let metric = create_metric(name, &Options::default()).unwrap();
    let (d, r) = (decoded("dist", image), decoded("ref", image));
    let map = metric.score_map(&d.as_image(), &r.as_image()).unwrap();
    let (w, h) = metric.map_size(d.as_image().width(), d.as_image().height()).unwrap();
    assert_eq!((map.width, map.height), (w, h), "{name}");
    assert_eq!(map.values.len(), (w * h) as usize, "{name}");
    let score = metric.score(&d.as_image(), Some(&r.as_image())).unwrap();
    (map, score)
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
}

#[test]
fn ssim_map_means_are_the_scores() {
    for name in ["ssim", "ssimc"] {
        for image in IMAGES {
            let (map, score) = map_and_score(name, image);
            assert_eq!((map.width, map.height), (502, 374), "{name}: 'valid' 11x11 window");
            let m = mean(&map.values);
            assert!((m - score).abs() < 1e-6, "{name} {image}: map mean {m} vs score {score}");
        }
    }
}

#[test]
fn psnr_map_means_give_the_scores() {
    for name in ["psnr", "psnry"] {
        for image in IMAGES {
            let (map, score) = map_and_score(name, image);
            assert_eq!((map.width, map.height), (512, 384), "{name}");
            let mse = mean(&map.values);
            let from_map = 10.0 * (1.0 / (mse + 1e-8)).log10();
            assert!((from_map - score).abs() < 1e-6 * score.abs(), "{name} {image}: {from_map} vs {score}");
            // The MSE itself, from the score.
            let mse_of_score = 1.0 / 10f64.powf(score / 10.0) - 1e-8;
            assert!((mse - mse_of_score).abs() < 1e-6 * mse_of_score, "{name} {image}: {mse} vs {mse_of_score}");
        }
    }
}

#[test]
fn gmsd_is_the_deviation_of_its_map() {
    for image in IMAGES {
        let (map, score) = map_and_score("gmsd", image);
        assert_eq!((map.width, map.height), (256, 192), "2x2-averaged luma");
        let n = map.values.len() as f64;
        let m = mean(&map.values);
        let std = (map.values.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!((std - score).abs() < 1e-6, "{image}: map deviation {std} vs score {score}");
        assert!(map.values.iter().all(|&v| v > 0.0 && v <= 1.0 + 1e-6), "{image}: similarities in (0, 1]");
    }
}

#[test]
fn identical_pairs_give_perfect_maps() {
    let d = decoded("ref", "I03.bmp");
    for (name, perfect) in [("ssim", 1.0f32), ("psnr", 0.0), ("gmsd", 1.0)] {
        let metric = create_metric(name, &Options::default()).unwrap();
        let map = metric.score_map(&d.as_image(), &d.as_image()).unwrap();
        assert!(map.values.iter().all(|&v| (v - perfect).abs() < 1e-6), "{name}");
    }
}

#[test]
fn lpips_map_mean_is_close_to_its_score() {
    require_weights_dir();
    for image in IMAGES {
        let (map, score) = map_and_score("lpips", image);
        assert_eq!((map.width, map.height), (512, 384));
        assert!((mean(&map.values) - score).abs() < 1e-5, "{image}");
    }
}

#[test]
fn metrics_without_a_map_say_which_have_one() {
    let metric = create_metric("niqe", &Options::default()).unwrap();
    let e = metric.map_size(512, 384).unwrap_err();
    assert_eq!(e.kind, iqa::ErrorKind::InvalidArgument);
    assert!(e.message.contains("supported: lpips*, ssim, ssimc, psnr, psnry, gmsd"), "{e}");
}
