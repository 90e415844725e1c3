//! `mad` equals pyiqa 0.1.16's scores (tests/data/mad_references.csv, scripts/make_mad_references.py) within
//! 1e-4 relative on the calibration files, gray input (PIL `convert('L')`), 2×2 tiles and odd/small crops;
//! sizes pyiqa refuses (below 16×16) are refused with a shape error naming the minimum; batches equal single
//! scores; CUDA (when present) equals CPU; and the distance to the official scores stays as documented.
mod common;
use common::*;

#[test]
fn mad_matches_pyiqa() {
    assert_matches_pyiqa("mad_references.csv", "mad", 1e-4, 0.0);
}

#[test]
fn mad_batches_devices_and_official_scores() {
    assert_batch_equals_single("mad");
    assert_cuda_equals_cpu("mad", 1e-6);
    // See src/metrics/mad.rs for the distance to the official scores.
    assert!(distance_to_official("mad") < 1e-5);
}

#[test]
fn mad_refuses_images_below_16x16() {
    let metric = iqa::create_metric("mad", &iqa::Options::default()).unwrap();
    assert_eq!(metric.info().name, "mad");
    let pixels = vec![128u8; 16 * 15 * 3];
    let image = iqa::Image::new(&pixels, 16, 15, 0, iqa::PixelFormat::Rgb8).unwrap();
    let err = metric.score(&image, Some(&image)).unwrap_err();
    assert!(err.kind == iqa::ErrorKind::ShapeMismatch && err.message.contains("at least 16x16"), "{}", err.message);
}
