//! Every built-in metric against pyiqa 0.1.16 (tests/data/pyiqa_references.csv, scripts/make_references.py): the
//! calibration files, JPEGs, gray input, 2×2 tiles, odd and small crops taken with a stride, and the sizes
//! around each metric's minimum (refused with a shape error where pyiqa fails). One row of `PARITY` per metric
//! gives its tolerances; each row is one test that also checks batches against single scores, the minimum size,
//! CUDA against the CPU (where a GPU is present) and the distance to the official implementation's scores
//! (data/calibration/official_scores.csv). Special cases follow the table.
mod common;
use common::*;
use iqa::{create_metric, ErrorKind, Image, Options, PixelFormat};

/// One metric's parity facts.
struct Parity {
    /// pyiqa's name.
    metric: &'static str,
    /// Largest relative error against pyiqa's score, or `floor` absolute where that is larger.
    relative: f64,
    floor: f64,
    /// Smallest (width, height) scored; one pixel less in either direction is a shape error.
    min_size: (u32, u32),
    /// Largest relative distance to the official scores of the calibration files, where they are published.
    official: Option<f64>,
    /// Batch against single scores, relative.
    batch: f64,
    /// CUDA against the CPU, relative.
    cuda: f64,
    /// Pretrained weights come from IQA_WEIGHTS_DIR (the test fails loudly without it).
    weights: bool,
}

const PYIQA: f64 = 1e-4;

/// The default row: 1e-4 relative to pyiqa, batch within 1e-9, float64-exact CUDA within 1e-6, no weights.
const fn row(metric: &'static str, min_size: (u32, u32), official: Option<f64>) -> Parity {
    Parity { metric, relative: PYIQA, floor: 0.0, min_size, official, batch: 1e-9, cuda: 1e-6, weights: false }
}

/// A deep metric: float32 networks, within 1e-5 absolute of pyiqa run with the same weight files.
const fn deep(metric: &'static str, min_side: u32, official: Option<f64>) -> Parity {
    Parity {
        metric,
        relative: 0.0,
        floor: 1e-5,
        min_size: (min_side, min_side),
        official,
        batch: 1e-5,
        cuda: 1e-4,
        weights: true,
    }
}

/// The table. Tolerances above 1e-4 are pyiqa's own spread between CPUs: its float32 arithmetic follows the
/// CPU's kernels (AVX2 or AVX-512 libtorch/MKL), and iqa follows pyiqa on the CPU it runs on (measured errors
/// there: 0 for gmsd, vif, brisque; 3e-13 niqe; 2.4e-5 ilniqe). The official distances are documented in each
/// metric's source file.
macro_rules! parity_table {
    ($($test:ident => $row:expr,)*) => {
        const PARITY: &[Parity] = &[$($row),*];
        $(
            #[test]
            fn $test() {
                check(&$row);
            }
        )*
    };
}

parity_table! {
    // The official scores have two decimals (psnr) or four digits (most others).
    psnr => row("psnr", (1, 1), Some(2.5e-4)),
    psnry => row("psnry", (1, 1), None),
    ssim => row("ssim", (11, 11), Some(1e-3)),
    ssimc => row("ssimc", (11, 11), None),
    // pyiqa's MS-SSIM departs from the official MATLAB code (0.6707 vs 0.6733 on I03).
    ms_ssim => row("ms_ssim", (161, 161), Some(6e-3)),
    entropy => row("entropy", (1, 1), Some(2e-5)),
    // pyiqa's GMSD of I06 (near 4e-4) moves by 9.9e-8 between CPUs. Two 2×2 blocks: 4×2 (or 2×4).
    gmsd => Parity { floor: 1e-7, ..row("gmsd", (4, 2), Some(3e-3)) },
    // pyiqa's VIF moves by up to 9.9e-3 relative between CPUs (I19 tiled: 0.18187 vs 0.18007).
    vif => Parity { relative: 1e-2, ..row("vif", (33, 33), Some(3e-3)) },
    // Official scores are of 8-bit luma, pyiqa's of unrounded luma: 31% apart on I06.
    nlpd => row("nlpd", (1, 1), Some(0.35)),
    mad => row("mad", (16, 16), Some(1e-5)),
    cw_ssim => row("cw_ssim", (64, 64), Some(2e-4)),
    fsim => row("fsim", (2, 2), Some(3e-4)),
    // pyiqa's VSI (piq's port) differs from the official scores by up to 1.3e-2.
    vsi => row("vsi", (1, 1), Some(1.5e-2)),
    // pyiqa's NIQE, BRISQUE and IL-NIQE feature pipelines depart from the official MATLAB code (up to 5%, 5.4
    // points and 3.2% on I19). pyiqa's NIQE moves by 4.5e-4 relative between CPUs (I03's 301×257 crop). The
    // three metrics' parameters are built into the library (IQA_WEIGHTS_DIR's files are read instead when it
    // holds them), so they need no weights folder.
    niqe => Parity { relative: 4.5e-4, cuda: PYIQA, ..row("niqe", (96, 96), Some(6e-2)) },
    // BRISQUE's ±1024-weighted SVR terms cancel to a few units: pyiqa moves by 6.4e-3 absolute near 0 (I04) and
    // 1.4e-3 relative on large scores between CPUs, and by 5e-3 with its thread count.
    brisque => Parity {
        relative: 1.5e-3,
        floor: 6.5e-3,
        cuda: PYIQA,
        ..row("brisque", (7, 7), Some(0.1))
    },
    piqe => Parity { cuda: PYIQA, ..row("piqe", (8, 8), Some(3e-4)) },
    // pyiqa's IL-NIQE moves by 9.0e-4 relative between CPUs (I19's 301×257 crop).
    ilniqe => Parity { relative: 1e-3, cuda: PYIQA, ..row("ilniqe", (3, 3), Some(4e-2)) },
    lpips => deep("lpips", 31, Some(3e-4)),
    lpips_vgg => deep("lpips-vgg", 16, None),
    lpips_plus => deep("lpips+", 31, None),
    lpips_vgg_plus => deep("lpips-vgg+", 16, None),
    lpips_squeeze => deep("lpips-squeeze", 17, None),
    dists => deep("dists", 1, Some(2e-4)),
}

fn check(p: &Parity) {
    if p.weights {
        require_weights_dir();
    }
    assert_matches_pyiqa(p.metric, p.relative, p.floor);
    assert_batch_equals_single(p.metric, p.batch);
    assert_minimum_size(p.metric, p.min_size);
    assert_cuda_equals_cpu(p.metric, p.cuda);
    if let Some(official) = p.official {
        let distance = distance_to_official(p.metric);
        assert!(distance <= official, "{}: {distance:e} from the official scores", p.metric);
    }
}

/// The minimum size scores; one pixel less in either direction is a shape error saying what is needed.
fn assert_minimum_size(name: &str, (w, h): (u32, u32)) {
    let metric = create_metric(name, &Options::default()).unwrap();
    let fr = metric.info().mode == iqa::Mode::FullReference;
    let (d, r) = (decoded("dist", "I03.bmp"), decoded("ref", "I03.bmp"));
    let score = |w, h| {
        let reference = strided_crop(&r, (11, 13, w, h));
        metric.score(&strided_crop(&d, (11, 13, w, h)), fr.then_some(&reference))
    };
    if let Err(e) = score(w, h) {
        // pyiqa (and iqa) also refuse some tiny crops at the minimum whose every block has a NaN feature.
        assert!(name == "ilniqe" && e.kind == ErrorKind::ShapeMismatch, "{name} at {w}x{h}: {e}");
        assert!(score(5, 5).is_ok(), "{name} at 5x5");
    }
    for (bw, bh) in [(w - 1, h), (w, h - 1)] {
        if bw == 0 || bh == 0 {
            continue;
        }
        let e = score(bw, bh).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ShapeMismatch, "{name} {bw}x{bh}: {}", e.message);
        assert!(e.message.contains("at least"), "{name}: {}", e.message);
    }
}

#[test]
fn the_table_covers_every_built_in_metric() {
    // The model zoo's metrics have their own table (tests/zoo.rs).
    let zoo = zoo_metrics();
    let mut names: Vec<String> = iqa::metric_names().into_iter().filter(|n| !zoo.contains(n)).collect();
    names.sort();
    let mut table: Vec<String> = PARITY.iter().map(|p| p.metric.to_string()).collect();
    table.sort();
    assert_eq!(table, names);
}

/// The smooth gray pair of scripts/make_references.py (`smooth_pair`): (dist, ref) as 8-bit gray.
fn smooth_pair(w: u32, h: u32) -> (Vec<u8>, Vec<u8>) {
    let image = |base: f64, amp: f64| -> Vec<u8> {
        (0..h)
            .flat_map(|y| {
                (0..w).map(move |x| {
                    let (x, y) = (x as f64, y as f64);
                    let v = base + amp * ((x / 37.0).sin() * (y / 53.0).cos()) + 40.0 * ((x + y) / 91.0).sin();
                    (v + 0.5).floor().clamp(0.0, 255.0) as u8
                })
            })
            .collect()
    };
    (image(120.0, 50.0), image(127.5, 60.0))
}

/// pyiqa's float32 VIF is NaN on the smooth pair; iqa gives pyiqa's formula in float64 instead.
#[test]
fn vif_scores_pyiqa_float64_where_pyiqa_gives_nan() {
    let smooth: Vec<Reference> =
        references().into_iter().filter(|r| matches!(r.region, Region::Smooth { .. })).collect();
    let (w, h, pyiqa32, pyiqa64) = match &smooth[..] {
        [a, b] => match (&a.region, &b.region) {
            (
                &Region::Smooth { width, height, float64: false },
                &Region::Smooth { float64: true, width: w2, height: h2 },
            ) if (width, height) == (w2, h2) => (width, height, a.score, b.score),
            _ => panic!("unexpected smooth rows {smooth:?}"),
        },
        _ => panic!("expected the two smooth rows of vif, got {smooth:?}"),
    };
    assert!(pyiqa32.is_nan(), "pyiqa's float32 VIF on the smooth pair is NaN");
    let (d, r) = smooth_pair(w, h);
    let metric = create_metric("vif", &Options::default()).unwrap();
    let img = |p| Image::new(p, w, h, 0, PixelFormat::Gray8).unwrap();
    let got = metric.score(&img(&d), Some(&img(&r))).unwrap();
    let err = rel_err(got, pyiqa64);
    println!("vif smooth {w}x{h}: pyiqa NaN, pyiqa in float64 {pyiqa64}, iqa {got} (rel err {err:.2e})");
    assert!(err <= 1e-5, "iqa {got} vs pyiqa in float64 {pyiqa64}");
    // In a batch with a pair pyiqa scores, each keeps its own path.
    let (cd, cr) = (decoded("dist", "I19.bmp"), decoded("ref", "I19.bmp"));
    let batch = metric.score_batch(&[img(&d), cd.as_image()], Some(&[img(&r), cr.as_image()])).unwrap();
    assert_eq!(batch[0], got);
    assert_eq!(batch[1], metric.score(&cd.as_image(), Some(&cr.as_image())).unwrap());
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

/// Every pixel format gives the score of the RGB8 image. psnr and psnry read 8-bit and float32 buffers directly
/// (Model::score_pixels, integer or float arithmetic) and other formats through tensors: those paths agree
/// within 1e-7 relative. ssim's and gmsd's 8-bit readers give the tensors' scores exactly.
#[test]
fn pixel_formats_agree() {
    for name in ["ssim", "gmsd", "psnr", "psnry"] {
        pixel_formats_agree_for(name, if ["ssim", "gmsd"].contains(&name) { 0.0 } else { 1e-7 });
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
