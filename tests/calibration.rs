//! Scores equal pyiqa 0.1.16's (tests/data/references.csv) within 1e-4 relative, on the calibration files
//! and on odd/small crops taken from the decoded buffers with a stride; batches equal single scores.
mod common;
use common::*;
use iqa::{create_metric, Image, Mode, Options, PixelFormat};
use std::collections::BTreeMap;

const TOLERANCE: f64 = 1e-4;

fn crop<'a>(img: &'a iqa::image::DecodedImage, c: (usize, usize, u32, u32)) -> Image<'a> {
    strided_crop(img, c)
}

#[test]
fn every_metric_matches_pyiqa_on_calibration_files_and_crops() {
    let mut worst: BTreeMap<String, f64> = BTreeMap::new();
    let refs = references();
    assert!(refs.len() >= 100, "references.csv has {} rows", refs.len());
    for r in &refs {
        let metric = create_metric(&r.metric, &Options::default()).unwrap();
        if let Some(err) = check_reference(r, score_reference(&metric, r), TOLERANCE, true) {
            let w = worst.entry(r.metric.clone()).or_default();
            *w = w.max(err);
        }
    }
    for (m, e) in &worst {
        println!("max relative error vs pyiqa: {m:<8} {e:.2e}");
    }
}

#[test]
fn every_available_metric_has_pyiqa_references() {
    let mut covered: Vec<String> = references().into_iter().map(|r| r.metric).collect();
    covered.extend(references_from("deep_references.csv").into_iter().map(|r| r.metric));
    covered.extend(references_from("fr_references.csv").into_iter().map(|r| r.metric));
    covered.extend(references_from("frequency_references.csv").into_iter().map(|r| r.metric));
    covered.extend(references_from("nr_references.csv").into_iter().map(|r| r.metric));
    covered.extend(references_from("ilniqe_references.csv").into_iter().map(|r| r.metric));
    covered.extend(references_from("mad_references.csv").into_iter().map(|r| r.metric));
    for name in iqa::metric_names() {
        assert!(covered.contains(&name), "no pyiqa reference for available metric {name}");
    }
}

#[test]
fn batch_scores_equal_single_scores_including_mixed_sizes() {
    let dists: Vec<_> = IMAGES.iter().map(|i| decoded("dist", i)).collect();
    let refs: Vec<_> = IMAGES.iter().map(|i| decoded("ref", i)).collect();
    let mut names: Vec<String> = references().into_iter().map(|r| r.metric).collect();
    names.dedup();
    for name in names {
        let metric = create_metric(&name, &Options::default()).unwrap();
        // Five full images (one forward pass) and two crops of another size in between.
        let mut d: Vec<Image> = dists.iter().map(|x| x.as_image()).collect();
        let mut r: Vec<Image> = refs.iter().map(|x| x.as_image()).collect();
        let region = (3, 4, 171, 165);
        d.insert(2, crop(&dists[0], region));
        r.insert(2, crop(&refs[0], region));
        d.push(crop(&dists[4], region));
        r.push(crop(&refs[4], region));
        let fr = metric.info().mode == Mode::FullReference;
        let batch = metric.score_batch(&d, fr.then_some(&r[..])).unwrap();
        assert_eq!(batch.len(), d.len());
        for i in 0..d.len() {
            let single = metric.score(&d[i], fr.then_some(&r[i])).unwrap();
            assert!(rel_err(batch[i], single) <= 1e-12, "{name} image {i}: batch {} vs single {single}", batch[i]);
        }
    }
}

/// The same pixels in every format give the same score (exactly for the 8-bit layouts, within the
/// quantisation of the format otherwise).
/// Every pixel format gives the score of the RGB8 image. psnr and psnry read 8-bit and float32 buffers directly
/// (Model::score_pixels, integer or float arithmetic) and other formats through tensors: those paths agree
/// within 1e-7 relative.
#[test]
fn pixel_formats_agree() {
    for name in ["ssim", "psnr", "psnry"] {
        pixel_formats_agree_for(name, if name == "ssim" { 0.0 } else { 1e-7 });
    }
}

fn pixel_formats_agree_for(name: &str, path_tol: f64) {
    let (d, r) = (decoded("dist", "I08.bmp"), decoded("ref", "I08.bmp"));
    let (w, h) = (d.as_image().width(), d.as_image().height());
    let metric = create_metric(name, &Options::default()).unwrap();
    let base = metric.score(&d.as_image(), Some(&r.as_image())).unwrap();
    type Conv = fn(&[u8]) -> (Vec<u8>, PixelFormat, f64);
    let conversions: [(&str, Conv); 7] = [
        ("rgba8", |p| (p.chunks(3).flat_map(|c| [c[0], c[1], c[2], 7]).collect(), PixelFormat::Rgba8, 0.0)),
        ("bgr8", |p| (p.chunks(3).flat_map(|c| [c[2], c[1], c[0]]).collect(), PixelFormat::Bgr8, 0.0)),
        ("bgra8", |p| (p.chunks(3).flat_map(|c| [c[2], c[1], c[0], 255]).collect(), PixelFormat::Bgra8, 0.0)),
        ("rgb16", |p| (p.iter().flat_map(|&v| (v as u16 * 257).to_ne_bytes()).collect(), PixelFormat::Rgb16, -1.0)),
        ("rgbf32", |p| (p.iter().flat_map(|&v| (v as f32 / 255.0).to_ne_bytes()).collect(), PixelFormat::RgbF32, -1.0)),
        ("rgbf16", |p| {
            (
                p.iter().flat_map(|&v| half::f16::from_f32(v as f32 / 255.0).to_ne_bytes()).collect(),
                PixelFormat::RgbF16,
                1e-3,
            )
        }),
        // Gray is compared below against the gray-converted RGB input.
        ("rgb8-padded", |p| (p.to_vec(), PixelFormat::Rgb8, 0.0)),
    ];
    for (label, conv) in conversions {
        let (dd, fmt, tol) = conv(d.bytes());
        let (rr, _, _) = conv(r.bytes());
        let s = metric
            .score(&Image::new(&dd, w, h, 0, fmt).unwrap(), Some(&Image::new(&rr, w, h, 0, fmt).unwrap()))
            .unwrap();
        // tol -1: a format that psnr does not read with its 8-bit reader.
        let tol = if tol < 0.0 { path_tol } else { tol };
        assert!(rel_err(s, base) <= tol.max(1e-12), "{name} {label}: {s} vs {base}");
    }
    // Rows padded to a stride longer than the row.
    let stride = w as usize * 3 + 13;
    let pad = |src: &[u8]| -> Vec<u8> {
        src.chunks(w as usize * 3).flat_map(|row| row.iter().copied().chain(std::iter::repeat_n(0xAB, 13))).collect()
    };
    let (dp, rp) = (pad(d.bytes()), pad(r.bytes()));
    let s = metric
        .score(
            &Image::new(&dp, w, h, stride, PixelFormat::Rgb8).unwrap(),
            Some(&Image::new(&rp, w, h, stride, PixelFormat::Rgb8).unwrap()),
        )
        .unwrap();
    assert_eq!(s, base, "{name} padded stride");
    // Gray8 and GrayF32 are broadcast to three channels: equal to the RGB image with R = G = B.
    let gray = |src: &[u8]| -> Vec<u8> { src.chunks(3).map(|c| c[1]).collect() };
    let (dg, rg) = (gray(d.bytes()), gray(r.bytes()));
    let triple = |g: &[u8]| -> Vec<u8> { g.iter().flat_map(|&v| [v, v, v]).collect() };
    let (dt, rt) = (triple(&dg), triple(&rg));
    let want = metric
        .score(
            &Image::new(&dt, w, h, 0, PixelFormat::Rgb8).unwrap(),
            Some(&Image::new(&rt, w, h, 0, PixelFormat::Rgb8).unwrap()),
        )
        .unwrap();
    let got8 = metric
        .score(
            &Image::new(&dg, w, h, 0, PixelFormat::Gray8).unwrap(),
            Some(&Image::new(&rg, w, h, 0, PixelFormat::Gray8).unwrap()),
        )
        .unwrap();
    assert_eq!(got8, want, "{name} gray8");
    let f32s = |g: &[u8]| -> Vec<u8> { g.iter().flat_map(|&v| (v as f32 / 255.0).to_ne_bytes()).collect() };
    let (df, rf) = (f32s(&dg), f32s(&rg));
    let gotf = metric
        .score(
            &Image::new(&df, w, h, 0, PixelFormat::GrayF32).unwrap(),
            Some(&Image::new(&rf, w, h, 0, PixelFormat::GrayF32).unwrap()),
        )
        .unwrap();
    assert!(rel_err(gotf, want) <= path_tol.max(0.0), "{name} grayf32: {gotf} vs {want}");
}
