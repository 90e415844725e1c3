//! Every error path of the safe API gives its exact kind and a message naming what failed, and the handle
//! keeps working afterwards. (The same paths through the C ABI: tests/c/contract.c.)
mod common;
use common::*;
use iqa::{create_metric, ErrorKind, Image, Options, PixelFormat};
use std::path::PathBuf;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("iqa-errors-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gradient(w: u32, h: u32, shift: u8) -> Vec<u8> {
    (0..w * h * 3).map(|i| ((i % 251) as u8).wrapping_add(shift)).collect()
}

#[test]
fn unknown_metrics_are_named() {
    let e = create_metric("no_such_metric", &Options::default()).err().unwrap();
    assert_eq!(e.kind, ErrorKind::UnknownMetric);
    assert!(e.message.contains("'no_such_metric'") && e.message.contains("psnr"), "{}", e.message);
    // A pyiqa metric that iqa does not build in is told apart from a typo.
    let e = create_metric("uranker", &Options::default()).err().unwrap();
    assert_eq!(e.kind, ErrorKind::UnknownMetric);
    assert!(e.message.contains("exists in pyiqa"), "{}", e.message);
}

#[test]
fn cuda_request_without_cuda_is_a_device_error() {
    if iqa::cuda_device_count() > 0 {
        return; // a GPU machine: covered by the device tests there
    }
    let opts = Options { device: iqa::DeviceRequest::Cuda(0), ..Default::default() };
    let e = create_metric("ssim", &opts).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Device);
    assert!(e.message.contains("CUDA") && e.message.contains("ssim"), "{}", e.message);
}

#[test]
fn bad_buffers_are_invalid_arguments() {
    let px = gradient(64, 64, 0);
    let cases: Vec<(&str, iqa::Result<Image>)> = vec![
        ("zero width", Image::new(&px, 0, 64, 0, PixelFormat::Rgb8)),
        ("zero height", Image::new(&px, 64, 0, 0, PixelFormat::Rgb8)),
        ("short stride", Image::new(&px, 64, 64, 64 * 3 - 1, PixelFormat::Rgb8)),
        ("short buffer", Image::new(&px[..px.len() - 1], 64, 64, 0, PixelFormat::Rgb8)),
        ("overflow", Image::new(&px, u32::MAX, u32::MAX, 0, PixelFormat::RgbF32)),
    ];
    for (label, r) in cases {
        let e = r.err().unwrap_or_else(|| panic!("{label} accepted"));
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{label}: {}", e.message);
    }
    let e = Image::new(&px, 64, 64, 100, PixelFormat::Rgb8).err().unwrap();
    assert!(e.message.contains("stride 100") && e.message.contains("192"), "{}", e.message);
}

#[test]
fn scoring_errors_leave_the_handle_usable() {
    let metric = create_metric("ssim", &Options::default()).unwrap();
    let (a, b) = (gradient(64, 64, 0), gradient(64, 64, 9));
    let (ia, ib) =
        (Image::new(&a, 64, 64, 0, PixelFormat::Rgb8).unwrap(), Image::new(&b, 64, 64, 0, PixelFormat::Rgb8).unwrap());
    let good = metric.score(&ia, Some(&ib)).unwrap();
    let check_still_works = || assert_eq!(metric.score(&ia, Some(&ib)).unwrap(), good);

    // FR metric without a reference.
    let e = metric.score(&ia, None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("'ssim'") && e.message.contains("reference"), "{}", e.message);
    check_still_works();

    // Mismatched sizes name both.
    let small = Image::new(&b, 64, 32, 0, PixelFormat::Rgb8).unwrap();
    let e = metric.score(&ia, Some(&small)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ShapeMismatch);
    assert!(e.message.contains("64x64") && e.message.contains("64x32"), "{}", e.message);
    check_still_works();

    // Too small for the metric: the minimum is in the message.
    let tiny = Image::new(&a, 8, 8, 0, PixelFormat::Rgb8).unwrap();
    let e = metric.score(&tiny, Some(&tiny)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ShapeMismatch);
    assert!(e.message.contains("at least 11x11"), "{}", e.message);
    let ms = create_metric("ms_ssim", &Options::default()).unwrap();
    let e = ms.score(&ia, Some(&ib)).unwrap_err();
    assert!(e.kind == ErrorKind::ShapeMismatch && e.message.contains("at least 161x161"), "{}", e.message);
    check_still_works();

    // NaN, infinity and out-of-range float pixels.
    for (bad, word) in [(f32::NAN, "NaN"), (f32::INFINITY, "infinite"), (1.5, "outside [0,1]")] {
        let mut f: Vec<f32> = a.iter().map(|&v| v as f32 / 255.0).collect();
        f[3 * (64 * 5 + 7) + 1] = bad;
        let bytes: Vec<u8> = f.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let img = Image::new(&bytes, 64, 64, 0, PixelFormat::RgbF32).unwrap();
        let e = metric.score(&img, Some(&ia)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.message.contains(word) && e.message.contains("(7, 5)"), "{}", e.message);
        check_still_works();
        // psnr and psnry read two float buffers directly (not through tensors): the same error, either side.
        let good: Vec<u8> = a.iter().flat_map(|&v| (v as f32 / 255.0).to_ne_bytes()).collect();
        let fine = Image::new(&good, 64, 64, 0, PixelFormat::RgbF32).unwrap();
        for name in ["psnr", "psnry"] {
            let direct = create_metric(name, &Options::default()).unwrap();
            for (d, r) in [(&img, &fine), (&fine, &img)] {
                let e = direct.score(d, Some(r)).unwrap_err();
                assert_eq!(e.kind, ErrorKind::InvalidArgument, "{name}");
                assert!(e.message.contains(word) && e.message.contains("(7, 5)"), "{name}: {}", e.message);
            }
            assert!(direct.score(&fine, Some(&fine)).unwrap() > 79.9, "{name}: identical images give 80 dB");
            // A float buffer that is not aligned for f32 is read through a copy: same score.
            let shifted: Vec<u8> = std::iter::once(0u8).chain(good.iter().copied()).collect();
            let unaligned = Image::new(&shifted[1..], 64, 64, 0, PixelFormat::RgbF32).unwrap();
            assert_eq!(direct.score(&unaligned, Some(&img)).unwrap_err().kind, ErrorKind::InvalidArgument);
            let as_rgb8 = Image::new(&a, 64, 64, 0, PixelFormat::Rgb8).unwrap();
            let aligned_score = direct.score(&fine, Some(&as_rgb8)).unwrap();
            let other_f32 = direct.score(&unaligned, Some(&fine)).unwrap();
            assert!(other_f32 > 79.9, "{name}: unaligned copy of the same pixels: {other_f32}");
            assert!(aligned_score > 79.9, "{name}: float vs 8-bit of the same pixels: {aligned_score}");
            // A gray float pattern as GrayF32 bytes and as RgbF32 bytes with R = G = B.
            let gray_and_rgb = |step: usize| -> (Vec<u8>, Vec<u8>) {
                let gray: Vec<f32> = (0..64 * 64).map(|i| ((i * step) % 256) as f32 / 255.0).collect();
                let rgb = gray.iter().flat_map(|v| [*v; 3]).flat_map(|v| v.to_ne_bytes()).collect();
                (gray.iter().flat_map(|v| v.to_ne_bytes()).collect(), rgb)
            };
            let ((gray_bytes, rgb_bytes), (other_gray, other_rgb)) = (gray_and_rgb(7), gray_and_rgb(11));
            fn image(bytes: &[u8], format: PixelFormat) -> Image<'_> {
                Image::new(bytes, 64, 64, 0, format).unwrap()
            }
            let (as_gray, as_rgb) = (image(&gray_bytes, PixelFormat::GrayF32), image(&rgb_bytes, PixelFormat::RgbF32));
            // Gray float against RGB float: as if the gray image had R = G = B.
            let want = direct.score(&fine, Some(&as_rgb)).unwrap();
            assert_eq!(direct.score(&fine, Some(&as_gray)).unwrap(), want, "{name}: RGB vs gray");
            // Gray against gray (one difference per pixel stands for three).
            let other_as_gray = image(&other_gray, PixelFormat::GrayF32);
            let other_as_rgb = image(&other_rgb, PixelFormat::RgbF32);
            let gray_score = direct.score(&as_gray, Some(&other_as_gray)).unwrap();
            let rgb_score = direct.score(&as_rgb, Some(&other_as_rgb)).unwrap();
            assert!((gray_score - rgb_score).abs() <= 1e-12 * rgb_score, "{name}: {gray_score} vs {rgb_score}");
        }
    }

    // An NR metric given a reference.
    let nr = create_metric("entropy", &Options::default()).unwrap();
    let e = nr.score(&ia, Some(&ib)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("'entropy'") && e.message.contains("no-reference"), "{}", e.message);
    assert!(nr.score(&ia, None).is_ok());

    // Empty batch, and a batch whose counts differ.
    assert_eq!(metric.score_batch(&[], None).unwrap_err().kind, ErrorKind::InvalidArgument);
    assert_eq!(metric.score_batch(&[ia, ia], Some(&[ib])).unwrap_err().kind, ErrorKind::InvalidArgument);
    check_still_works();
}

#[test]
fn file_errors_name_the_file() {
    let metric = create_metric("psnr", &Options::default()).unwrap();
    let good_ref = calibration("ref", "I03.bmp");
    let dir = tmpdir("files");

    let missing = dir.join("does-not-exist.png");
    let e = metric.score_files(&missing, Some(&good_ref)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io);
    assert!(e.message.contains(&*missing.to_string_lossy()), "{}", e.message);

    let corrupt = dir.join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nthis is not a png at all").unwrap();
    let e = metric.score_files(&corrupt, Some(&good_ref)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Decode, "{}", e.message);
    assert!(e.message.contains("corrupt.png"), "{}", e.message);

    let garbage = dir.join("garbage.bin");
    std::fs::write(&garbage, [0u8, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    assert_eq!(metric.score_files(&garbage, Some(&good_ref)).unwrap_err().kind, ErrorKind::Decode);

    let truncated = dir.join("truncated.bmp");
    std::fs::write(&truncated, &std::fs::read(calibration("dist", "I03.bmp")).unwrap()[..1000]).unwrap();
    let e = metric.score_files(&truncated, Some(&good_ref)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Decode, "{}", e.message);

    // A decompression bomb: a valid PNG header announcing 100000×100000 pixels.
    let bomb = dir.join("bomb.png");
    std::fs::write(&bomb, png_header(100_000, 100_000)).unwrap();
    let e = metric.score_files(&bomb, Some(&good_ref)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Decode, "{}", e.message);
    assert!(e.message.contains("limits"), "{}", e.message);

    // The handle still works.
    let s = metric.score_files(&calibration("dist", "I03.bmp"), Some(&good_ref)).unwrap();
    assert!((s - 21.113628387451172).abs() < 1e-4);
    std::fs::remove_dir_all(dir).ok();
}

/// PNG signature + IHDR (8-bit RGB) with a correct CRC, and no image data.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend(w.to_be_bytes());
    chunk.extend(h.to_be_bytes());
    chunk.extend([8, 2, 0, 0, 0]);
    let crc = chunk.iter().fold(0xFFFF_FFFFu32, |mut c, &b| {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
        c
    }) ^ 0xFFFF_FFFF;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(13u32.to_be_bytes());
    out.extend(&chunk);
    out.extend(crc.to_be_bytes());
    out
}

/// Lossless formats give exactly the BMP's score; a 16-bit PNG keeps its 16 bits.
#[test]
fn file_formats_decode_the_same_pixels() {
    let metric = create_metric("ssim", &Options::default()).unwrap();
    let (d, r) = (calibration("dist", "I19.bmp"), calibration("ref", "I19.bmp"));
    let want = metric.score_files(&d, Some(&r)).unwrap();
    let dir = tmpdir("formats");
    let (di, ri) = (image::open(&d).unwrap(), image::open(&r).unwrap());
    for ext in ["png", "tiff", "webp"] {
        let (dp, rp) = (dir.join(format!("d.{ext}")), dir.join(format!("r.{ext}")));
        di.save(&dp).unwrap();
        ri.save(&rp).unwrap();
        assert_eq!(metric.score_files(&dp, Some(&rp)).unwrap(), want, "{ext}");
    }
    // JPEG is lossy: it must decode and score close to the original.
    let (dj, rj) = (dir.join("d.jpg"), dir.join("r.jpg"));
    di.save(&dj).unwrap();
    ri.save(&rj).unwrap();
    let sj = metric.score_files(&dj, Some(&rj)).unwrap();
    assert!((sj - want).abs() < 0.05, "jpeg {sj} vs {want}");

    // 16-bit: values that differ below 8-bit resolution must change the score, as the buffer path does.
    let rgb = di.to_rgb8();
    let (w, h) = rgb.dimensions();
    let wide: Vec<u16> = rgb.as_raw().iter().enumerate().map(|(i, &v)| v as u16 * 257 + (i % 97) as u16).collect();
    let img16 = image::ImageBuffer::<image::Rgb<u16>, _>::from_raw(w, h, wide.clone()).unwrap();
    let p16 = dir.join("d16.png");
    img16.save(&p16).unwrap();
    let psnr = create_metric("psnr", &Options::default()).unwrap();
    let from_file = psnr.score_files(&p16, Some(&r)).unwrap();
    let bytes: Vec<u8> = wide.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let rb = iqa::image::decode_file(&r).unwrap();
    let from_buffer =
        psnr.score(&Image::new(&bytes, w, h, 0, PixelFormat::Rgb16).unwrap(), Some(&rb.as_image())).unwrap();
    assert_eq!(from_file, from_buffer);
    let eight_bit = psnr.score_files(&d, Some(&r)).unwrap();
    assert_ne!(from_file, eight_bit, "16-bit precision was lost");
    std::fs::remove_dir_all(dir).ok();
}
