//! One reference, many distorted images: a reference prepared once scores each distorted image as the pair
//! alone does, for metrics that keep work of their own (LPIPS, DISTS, SSIM, MAD) and for those that do not.
mod common;

use common::{decoded, require_weights_dir};
use iqa::{create_metric, ErrorKind, Image, Options, PixelFormat};

/// A quality ladder of one calibration pair: the distorted image blended into its reference in steps, a
/// shifted copy and the distorted image itself (the pair pyiqa scored).
fn ladder(dist: &[u8], reference: &[u8]) -> Vec<Vec<u8>> {
    let blend = |t: f64| -> Vec<u8> {
        dist.iter().zip(reference).map(|(&d, &r)| (r as f64 + t * (d as f64 - r as f64)).round() as u8).collect()
    };
    let shifted: Vec<u8> = reference.iter().enumerate().map(|(i, &r)| r.saturating_add((i % 7) as u8)).collect();
    vec![blend(0.25), blend(0.5), blend(0.75), shifted, dist.to_vec()]
}

#[test]
fn a_prepared_reference_scores_as_each_pair_alone() {
    require_weights_dir();
    let (dist, reference) = (decoded("dist", "I03.bmp"), decoded("ref", "I03.bmp"));
    let (w, h) = (reference.as_image().width(), reference.as_image().height());
    let rungs = ladder(dist.bytes(), reference.bytes());
    let images: Vec<Image> = rungs.iter().map(|b| Image::new(b, w, h, 0, PixelFormat::Rgb8).unwrap()).collect();
    // pyiqa 0.1.16 on the calibration pair I03 (data/calibration/pyiqa_scores.csv), the last rung; lpips-vgg
    // and ssimc have no row there (their parity is tests/parity.rs').
    for (name, pyiqa, keeps_work) in [
        ("lpips", Some(0.7236), true),
        ("lpips-vgg", None, true),
        ("dists", Some(0.4742), true),
        ("psnr", Some(21.1136), false),
        ("ssim", Some(0.6997), true),
        ("ssimc", None, true),
        ("ms_ssim", Some(0.6707), false),
        ("mad", Some(195.2796), true),
        ("fsim", Some(0.6891), false),
    ] {
        let metric = create_metric(name, &Options::default()).unwrap();
        let prepared = metric.prepare_reference(&reference.as_image()).unwrap();
        assert_eq!(prepared.keeps_work(), keeps_work, "{name}");
        assert_eq!((prepared.size(), prepared.metric_name()), ((w, h), name));
        let scores = metric.score_with_reference(&images, &prepared).unwrap();
        assert_eq!(scores.len(), images.len());
        for (i, (image, got)) in images.iter().zip(&scores).enumerate() {
            let alone = metric.score(image, Some(&reference.as_image())).unwrap();
            assert_eq!(got.to_bits(), alone.to_bits(), "{name} rung {i}: prepared {got} vs the pair alone {alone}");
        }
        let last = scores[scores.len() - 1];
        if let Some(pyiqa) = pyiqa {
            assert!((last - pyiqa).abs() <= 1e-4 * pyiqa.abs().max(1.0), "{name}: {last} vs pyiqa {pyiqa}");
        }
        // The ladder climbs: each blend step further from the reference scores worse.
        let better = |a: f64, b: f64| if metric.info().lower_better { a < b } else { a > b };
        assert!(better(scores[0], scores[1]) && better(scores[1], scores[2]), "{name}: {scores:?}");
    }
}

#[test]
fn a_prepared_reference_refuses_what_a_pair_would_and_belongs_to_its_metric() {
    require_weights_dir();
    let reference = decoded("ref", "I03.bmp");
    let lpips = create_metric("lpips", &Options::default()).unwrap();
    let prepared = lpips.prepare_reference(&reference.as_image()).unwrap();

    let other = create_metric("dists", &Options::default()).unwrap();
    let e = other.score_with_reference(&[reference.as_image()], &prepared).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("prepared by 'lpips'") && e.message.contains("not by this handle's 'dists'"), "{e}");

    let small = common::strided_crop(&reference, (3, 4, 171, 165));
    let e = lpips.score_with_reference(&[reference.as_image(), small], &prepared).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ShapeMismatch);
    assert!(e.message.contains("image 1: distorted"), "{e}");

    let e = lpips.score_with_reference(&[], &prepared).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);

    let niqe = create_metric("niqe", &Options::default()).unwrap();
    let e = niqe.prepare_reference(&reference.as_image()).err().unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("no-reference"), "{e}");

    // Float pixels are checked when the reference is prepared, not at the first score.
    let nan: Vec<u8> = [0.5f32, f32::NAN, 0.5].repeat(64 * 64).iter().flat_map(|v| v.to_ne_bytes()).collect();
    let image = Image::new(&nan, 64, 64, 0, PixelFormat::RgbF32).unwrap();
    let e = lpips.prepare_reference(&image).err().unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);

    // A handle of the same metric (the same model) may use it; the first handle may go.
    drop(lpips);
    let again = create_metric("lpips", &Options::default()).unwrap();
    let score = again.score_with_reference(&[reference.as_image()], &prepared).unwrap()[0];
    assert!(score.abs() < 1e-6, "a reference against itself: {score}");
}

/// A reference in any pixel layout is copied whole: planar float32 (its three planes, rows padded), interleaved
/// float32 and padded BGRA rows prepare into the scores their pairs get, for metrics that keep work of the
/// reference (LPIPS' activations; SSIM's moments of luma and of RGB, from float tensors and from 8-bit rows) and
/// one that keeps only its pixels.
#[test]
fn a_prepared_reference_in_every_layout_scores_as_its_pair() {
    require_weights_dir();
    let (dist, reference) = (decoded("dist", "I03.bmp"), decoded("ref", "I03.bmp"));
    let (w, h) = (reference.as_image().width() as usize, reference.as_image().height() as usize);
    let floats = |rgb: &[u8]| -> Vec<f32> { rgb.iter().map(|&v| v as f32 / 255.0).collect() };
    let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_ne_bytes()).collect() };
    // Planes R, G, B of rows of w values and 3 values of padding.
    let planar = |rgb: &[u8]| -> Vec<u8> {
        let mut out = vec![f32::NAN; 3 * h * (w + 3)];
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                out[(c * h + i / w) * (w + 3) + i % w] = v as f32 / 255.0;
            }
        }
        bytes(&out)
    };
    // BGRA rows with 8 bytes of padding.
    let bgra = |rgb: &[u8]| -> Vec<u8> {
        rgb.chunks_exact(3 * w)
            .flat_map(|row| row.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0], 255]).chain([0; 8]))
            .collect()
    };
    let cases: Vec<(PixelFormat, usize, Vec<u8>, Vec<u8>)> = vec![
        (PixelFormat::RgbF32Planar, (w + 3) * 4, planar(dist.bytes()), planar(reference.bytes())),
        (PixelFormat::RgbF32, 0, bytes(&floats(dist.bytes())), bytes(&floats(reference.bytes()))),
        (PixelFormat::Bgra8, 4 * w + 8, bgra(dist.bytes()), bgra(reference.bytes())),
    ];
    for name in ["lpips", "ssim", "ssimc", "psnr"] {
        let metric = create_metric(name, &Options::default()).unwrap();
        for (format, stride, d, r) in &cases {
            let image = |b| Image::new(b, w as u32, h as u32, *stride, *format).unwrap();
            let (d, r) = (image(d.as_slice()), image(r.as_slice()));
            let prepared = metric.prepare_reference(&r).unwrap();
            let got = metric.score_with_reference(&[d], &prepared).unwrap()[0];
            let pair = metric.score(&d, Some(&r)).unwrap();
            assert_eq!(got.to_bits(), pair.to_bits(), "{name} {format:?}: prepared {got} vs pair {pair}");
        }
    }
}

/// SSIM's kept statistics cover the whole reference at any size: the smallest image its window fits, sizes
/// where the bands of rows split unevenly, and a tall narrow one, each to the bit of its pair.
#[test]
fn ssim_prepared_at_odd_sizes_scores_as_its_pairs() {
    let noise = |seed: u32, len: usize| -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect()
    };
    for name in ["ssim", "ssimc"] {
        let metric = create_metric(name, &Options::default()).unwrap();
        for (w, h) in [(11u32, 11u32), (70, 37), (45, 200), (13, 97)] {
            let len = 3 * (w * h) as usize;
            let reference = noise(1 + w, len);
            let blurred: Vec<u8> = reference.iter().zip(noise(7 + h, len)).map(|(&r, n)| r / 2 + n / 2).collect();
            let image = |b| Image::new(b, w, h, 0, PixelFormat::Rgb8).unwrap();
            let prepared = metric.prepare_reference(&image(&reference)).unwrap();
            assert!(prepared.keeps_work(), "{name}");
            let got = metric.score_with_reference(&[image(&blurred), image(&reference)], &prepared).unwrap();
            let pair = metric.score(&image(&blurred), Some(&image(&reference))).unwrap();
            assert_eq!(got[0].to_bits(), pair.to_bits(), "{name} {w}x{h}: prepared {} vs pair {pair}", got[0]);
            assert!(pair > 0.0 && pair < 1.0, "{name} {w}x{h}: {pair}");
            assert_eq!(got[1], 1.0, "{name} {w}x{h}: the reference against itself");
        }
    }
}
