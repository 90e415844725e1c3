//! Video frames scored through the Rust API against an independent reference: scripts/make_yuv_references.py
//! makes clips in every format × matrix × range from integer formulas, converts them to RGB with its own numpy
//! implementation of the documented formulas and scores the float RGB with pyiqa, writing
//! tests/data/yuv_references.csv. Here the same clips are made with the same arithmetic (`clip_planes`), written
//! as Y4M (raw .yuv for NV12/P010), read by iqa's readers, converted by iqa (compared with numpy's RGB through
//! its checksums) and scored through a `Stream` (compared with pyiqa, and pooled values with the per-frame
//! scores). Also: subsampling, threads and batches, errors at push, a dropped stream, and memory over 10,000
//! frames.
mod common;
use common::{process_memory, profile_dir, rel_err, require_weights_dir, root, torchscript_fixtures, venv_python};
use iqa::{
    create_metric, create_torchscript, open_video, ChromaSiting, ColorChoice, ColorMatrix, ColorRange, ColorSpec,
    ErrorKind, Frame, FrameFormat, FrameReader, Image, Mode, Options, PixelFormat, Pooling, RawFormat, Stream,
    StreamOptions, TorchScriptSpec,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

const METRICS: [&str; 3] = ["psnr", "ssim", "lpips"];
const SIZE: (u32, u32) = (64, 48);
const FRAMES: usize = 3;

/// numpy's per-channel (mean, weighted mean) of one RGB frame (see the script).
type Checksums = [[f64; 2]; 3];

/// One clip pair of the reference: pyiqa's scores of its frames (psnr, ssim, lpips) and the numpy RGB's
/// checksums (distorted, reference).
struct Case {
    /// The `image` field of the CSV: format, matrix, range, siting, container, what the Y4M header states.
    name: String,
    /// Position in the CSV, the seed of its clip.
    index: u64,
    container: String,
    format: FrameFormat,
    format_name: String,
    color: ColorSpec,
    range_in_header: bool,
    siting_in_header: bool,
    scores: Vec<[f64; 3]>,
    checksums: Vec<[Checksums; 2]>,
}

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    let text = std::fs::read_to_string(root().join("tests/data/yuv_references.csv")).unwrap();
    for line in text.lines().skip(1) {
        let [metric, image, region, score]: [&str; 4] = line.split(',').collect::<Vec<_>>().try_into().unwrap();
        let score: f64 = score.parse().unwrap();
        let i = *at.entry(image.to_string()).or_insert_with(|| {
            let f: Vec<&str> = image.split(' ').collect();
            cases.push(Case {
                name: image.to_string(),
                index: cases.len() as u64,
                container: f[4].into(),
                format: FrameFormat::parse(f[0]).unwrap_or_else(|| panic!("format {}", f[0])),
                format_name: f[0].into(),
                color: ColorSpec {
                    matrix: ColorMatrix::parse(f[1]).unwrap(),
                    range: ColorRange::parse(f[2]).unwrap(),
                    siting: ChromaSiting::parse(f[3]).unwrap(),
                },
                range_in_header: f[5..].contains(&"range"),
                siting_in_header: f[5..].contains(&"siting"),
                scores: vec![[f64::NAN; 3]; FRAMES],
                checksums: vec![[[[f64::NAN; 2]; 3]; 2]; FRAMES],
            });
            cases.len() - 1
        });
        let case = &mut cases[i];
        let words: Vec<&str> = region.split(' ').collect();
        let frame: usize = words[1].parse().unwrap();
        match metric.split_once('_') {
            None => case.scores[frame][METRICS.iter().position(|m| *m == metric).unwrap()] = score,
            Some((side, kind)) => {
                let side = ["dist", "ref"].iter().position(|s| *s == side).unwrap();
                let channel = ["R", "G", "B"].iter().position(|c| *c == words[2]).unwrap();
                let kind = ["mean", "weighted"].iter().position(|k| *k == kind).unwrap();
                case.checksums[frame][side][channel][kind] = score;
            }
        }
    }
    assert_eq!(cases.len(), 48, "8 formats x 3 matrices x 2 ranges");
    for case in &cases {
        let all = case.scores.iter().flatten().chain(case.checksums.iter().flatten().flatten().flatten());
        assert!(all.clone().all(|v| v.is_finite()), "{}: a value is missing", case.name);
    }
    cases
}

/// splitmix64's finaliser, as the script's `mix`.
fn mix(key: u64) -> u64 {
    let z = key.wrapping_mul(0x9E3779B97F4A7C15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

/// The script's `noise`: an integer in [-amplitude, amplitude] hashed from (case, stream, plane, y, x).
fn noise(case: u64, stream: u64, plane: u64, (x, y): (i64, i64), amplitude: i64) -> i64 {
    let key = ((case * 64 + stream) * 4 + plane) << 32 | (y as u64) << 16 | x as u64;
    (mix(key) % (2 * amplitude + 1) as u64) as i64 - amplitude
}

fn tri(t: i64, period: i64) -> i64 {
    (t.rem_euclid(period) - period / 2).abs()
}

/// The script's `clip_planes`: the reference frame's planes (Y, U, V, row-major) and the distorted frames'.
fn clip_planes(case: u64, format: FrameFormat) -> (Vec<Vec<i64>>, Vec<Vec<Vec<i64>>>) {
    let top = (1i64 << format.bit_depth()) - 1;
    let (w, h) = (SIZE.0 as i64, SIZE.1 as i64);
    let (sx, sy) = format.subsampling().shifts();
    let (cw, ch) = (w >> sx, h >> sy);
    let luma = (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).map(|(x, y)| {
        let v = (tri(2 * x + 3 * y, 40) + tri(x + 2 * (h - y), 28)) * (top + top / 8) / 34 - top / 16;
        v + noise(case, 0, 0, (x, y), top / 16)
    });
    let mut planes = vec![luma.collect::<Vec<_>>()];
    for p in 1..3i64 {
        let chroma = (0..ch).flat_map(|y| (0..cw).map(move |x| (x, y))).map(|(x, y)| {
            let c = tri(3 * x + y * p + 7 * p, 24) * top / 14 + top / 2 - 6 * top / 14;
            c + noise(case, 0, p as u64, (x, y), top / 20)
        });
        planes.push(chroma.collect());
    }
    let reference: Vec<Vec<i64>> =
        planes.iter().map(|q| q.iter().map(|v| v.clamp(&0, &top)).copied().collect()).collect();
    let dist = (0..FRAMES as i64)
        .map(|f| {
            (0..3)
                .map(|p| {
                    let pw = if p == 0 { w } else { cw };
                    let q = reference[p].iter().enumerate().map(|(i, &v)| {
                        let at = (i as i64 % pw, i as i64 / pw);
                        (v + noise(case, 1 + f as u64, p as u64, at, top / 12) + (f + 1) * top / 100).clamp(0, top)
                    });
                    q.collect()
                })
                .collect()
        })
        .collect();
    (reference, dist)
}

/// A frame's bytes as stored: planar Y, U, V, or Y and interleaved UV for semi-planar formats (P010: the value
/// in the high bits); 16-bit samples little-endian.
fn frame_bytes(planes: &[Vec<i64>], format: FrameFormat, semi_planar: bool) -> Vec<u8> {
    let deep = format.bit_depth() > 8;
    let shift = if semi_planar && deep { 16 - format.bit_depth() as u32 } else { 0 };
    let samples: Vec<i64> = if semi_planar {
        planes[0].iter().copied().chain(planes[1].iter().zip(&planes[2]).flat_map(|(&u, &v)| [u, v])).collect()
    } else {
        planes.concat()
    };
    let sample = |v: i64| ((v as u16) << shift).to_le_bytes();
    samples.into_iter().flat_map(|v| if deep { sample(v).to_vec() } else { vec![v as u8] }).collect()
}

/// The Y4M header the script's cases describe.
fn y4m_header(case: &Case) -> String {
    let colorspace = match (case.siting_in_header, case.format_name.as_str()) {
        (true, _) => Some(match case.color.siting {
            ChromaSiting::Left => "420mpeg2",
            ChromaSiting::Center => "420jpeg",
            ChromaSiting::TopLeft => "420paldv",
        }),
        (false, "yuv420p") => None,
        (false, "yuv422p") => Some("422"),
        (false, "yuv444p") => Some("444"),
        (false, "yuv420p10le") => Some("420p10"),
        (false, "yuv422p10le") => Some("422p10"),
        (false, "yuv444p10le") => Some("444p10"),
        (false, other) => panic!("{other} in Y4M"),
    };
    let mut header = format!("YUV4MPEG2 W{} H{} F25:1 Ip A1:1", SIZE.0, SIZE.1);
    if let Some(c) = colorspace {
        header += &format!(" C{c}");
    }
    if case.range_in_header {
        header += &format!(" XCOLORRANGE={}", if case.color.range == ColorRange::Full { "FULL" } else { "LIMITED" });
    }
    header + "\n"
}

/// The cases' clips written once per test process; the path of a case's `side` (dist or ref).
fn clip_path(case: &Case, side: &str) -> PathBuf {
    static MADE: std::sync::Once = std::sync::Once::new();
    let dir = profile_dir().join(format!("yuv-clips-{}", std::process::id()));
    MADE.call_once(|| {
        std::fs::create_dir_all(&dir).unwrap();
        for case in cases() {
            let y4m = case.container == "y4m";
            let (reference, dist) = clip_planes(case.index, case.format);
            for (side, frames) in [("dist", dist), ("ref", vec![reference; FRAMES])] {
                let mut data = if y4m { y4m_header(&case).into_bytes() } else { Vec::new() };
                for planes in &frames {
                    if y4m {
                        data.extend_from_slice(b"FRAME\n");
                    }
                    data.extend(frame_bytes(planes, case.format, !y4m));
                }
                std::fs::write(dir.join(file_name(&case, side)), data).unwrap();
            }
        }
    });
    dir.join(file_name(case, side))
}

fn file_name(case: &Case, side: &str) -> String {
    format!("{}_{side}.{}", case.name.replace(' ', "_"), case.container)
}

/// A clip through `open_video`: the header's range and siting where it states them, the rest given.
fn open_case(case: &Case, side: &str) -> Box<dyn FrameReader + Send> {
    let path = clip_path(case, side);
    let y4m = case.container == "y4m";
    let choice = ColorChoice {
        matrix: Some(case.color.matrix),
        // Y4M clips without XCOLORRANGE are limited range: the reader's default.
        range: (!y4m).then_some(case.color.range),
        siting: (!case.siting_in_header).then_some(case.color.siting),
    };
    let raw = RawFormat { width: SIZE.0, height: SIZE.1, format: case.format };
    let reader = open_video(&path, (!y4m).then_some(raw), choice).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let info = reader.info();
    assert_eq!((info.width, info.height, info.format, info.color), (SIZE.0, SIZE.1, case.format, case.color));
    if y4m {
        assert_eq!(info.frame_rate, Some((25, 1)));
    }
    reader
}

/// The checksums of an RGB frame (interleaved float32) as the script computes them.
fn checksums(rgb: &[f32]) -> Checksums {
    let (w, n) = (SIZE.0 as usize, (SIZE.0 * SIZE.1) as usize);
    let mut sums = [[0f64; 2]; 3];
    for (i, pixel) in rgb.chunks_exact(3).enumerate() {
        let weight = ((31 * (i % w) + 17 * (i / w)) % 7) as f64 - 3.0;
        for (sum, &v) in sums.iter_mut().zip(pixel) {
            sum[0] += v as f64;
            sum[1] += v as f64 * weight;
        }
    }
    sums.map(|[a, b]| [a / n as f64, b / n as f64])
}

#[test]
fn every_format_matrix_and_range_converts_as_the_numpy_reference() {
    let mut worst = 0f64;
    let (mut clamped, mut total) = (0usize, 0usize);
    for case in cases() {
        for (s, side) in ["dist", "ref"].iter().enumerate() {
            let mut reader = open_case(&case, side);
            let mut n = 0;
            while let Some(frame) = reader.read_frame().unwrap() {
                let got = frame.to_rgb_f32();
                let sums = checksums(&got);
                for (c, channel) in ["R", "G", "B"].iter().enumerate() {
                    for (k, kind) in ["mean", "weighted"].iter().enumerate() {
                        let (g, w) = (sums[c][k], case.checksums[n][s][c][k]);
                        let err = (g - w).abs();
                        assert!(err <= 2e-6, "{} {side} frame {n} {channel} {kind}: iqa {g} vs numpy {w}", case.name);
                        worst = worst.max(err);
                    }
                }
                clamped += got.iter().filter(|&&v| v == 0.0 || v == 1.0).count();
                total += got.len();
                n += 1;
            }
            assert_eq!(n, FRAMES, "{} {side}", case.name);
        }
    }
    // The clips reach outside the RGB gamut, so clamping is exercised, but most values are inside.
    assert!(clamped > total / 100 && clamped < total / 3, "{clamped} of {total} values clamped");
    println!("largest checksum difference from the numpy conversion: {worst:e} ({clamped} of {total} values clamped)");
}

#[test]
fn a_wrong_siting_or_matrix_moves_the_checksums() {
    // The checksums can tell: the centred siting read as left, or BT.709 read as BT.601, is far outside 2e-6.
    let case = cases()
        .into_iter()
        .find(|c| c.name.starts_with("yuv420p10le bt709") && c.color.siting != ChromaSiting::Left)
        .unwrap();
    let (reference, _) = clip_planes(case.index, case.format);
    let bytes = frame_bytes(&reference, case.format, false);
    let want = case.checksums[0][1];
    for color in
        [ColorSpec { siting: ChromaSiting::Left, ..case.color }, ColorSpec { matrix: ColorMatrix::Bt601, ..case.color }]
    {
        let frame = Frame::packed(&bytes, SIZE.0, SIZE.1, case.format, color).unwrap();
        let got = checksums(&frame.to_rgb_f32());
        let far = got.iter().flatten().zip(want.iter().flatten()).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
        assert!(far > 1e-4, "{color:?}: {far}");
    }
    let frame = Frame::packed(&bytes, SIZE.0, SIZE.1, case.format, case.color).unwrap();
    let got = checksums(&frame.to_rgb_f32());
    assert!(got.iter().flatten().zip(want.iter().flatten()).all(|(g, w)| (g - w).abs() <= 2e-6));
}

#[test]
fn frame_scores_equal_pyiqa_on_the_same_rgb_and_pool_as_defined() {
    require_weights_dir();
    let mut worst = [0f64; 3];
    for case in cases() {
        let mut stream = Stream::open(&METRICS, &StreamOptions::default()).unwrap();
        assert_eq!(stream.metric_names(), METRICS);
        let (mut dist, mut reference) = (open_case(&case, "dist"), open_case(&case, "ref"));
        while let Some(d) = dist.read_frame().unwrap() {
            let r = reference.read_frame().unwrap().expect("as many reference frames");
            stream.push(&d, Some(&r)).unwrap();
        }
        stream.flush().unwrap();
        assert_eq!((stream.frames_pushed(), stream.frames_done()), (3, 3));
        for (f, want) in case.scores.iter().enumerate() {
            let got = stream.frame_scores(f as u64).unwrap();
            for (m, name) in METRICS.iter().enumerate() {
                let err = rel_err(got[m], want[m]);
                assert!(err <= 1e-4, "{} frame {f} {name}: iqa {} vs pyiqa {}", case.name, got[m], want[m]);
                worst[m] = worst[m].max(err);
            }
        }
        // Pooled values from the per-frame scores, computed here.
        for (m, name) in METRICS.iter().enumerate() {
            let s: Vec<f64> = (0..3).map(|f| stream.frame_scores(f).unwrap()[m]).collect();
            let mean = s.iter().sum::<f64>() / 3.0;
            let harmonic = 3.0 / s.iter().map(|v| 1.0 / (v + 1.0)).sum::<f64>() - 1.0;
            let mut sorted = s.clone();
            sorted.sort_by(f64::total_cmp);
            let p75 = sorted[1] + 0.5 * (sorted[2] - sorted[1]);
            assert!(rel_err(stream.pooled(m, Pooling::Mean).unwrap(), mean) < 1e-12);
            assert!(rel_err(stream.pooled(m, Pooling::HarmonicMean).unwrap(), harmonic) < 1e-12);
            assert_eq!(stream.pooled(m, Pooling::Min).unwrap(), sorted[0]);
            assert_eq!(stream.pooled(m, Pooling::Max).unwrap(), sorted[2]);
            assert!(rel_err(stream.pooled(m, Pooling::Percentile(75.0)).unwrap(), p75) < 1e-12);
            let summary = &stream.summary().unwrap()[m];
            assert_eq!((summary.metric.as_str(), summary.frames), (*name, 3));
            assert_eq!(summary.mean, stream.pooled(m, Pooling::Mean).unwrap());
        }
    }
    println!(
        "largest relative difference from pyiqa: psnr {:.1e}, ssim {:.1e}, lpips {:.1e}",
        worst[0], worst[1], worst[2]
    );
}

/// Packed I420 planes of a `w`×`h` frame whose pattern moves with `t`.
fn i420(w: usize, h: usize, t: usize) -> Vec<u8> {
    let luma = (0..w * h).map(|i| ((i % w) * 3 + (i / w) * 5 + t * 7) as u8);
    let chroma = (0..w * h / 2).map(|i| (96 + (i * 13 + t * 3) % 64) as u8);
    luma.chain(chroma).collect()
}

fn frame(data: &[u8], w: usize, h: usize) -> Frame<'_> {
    Frame::packed(data, w as u32, h as u32, FrameFormat::I420, ColorSpec::default()).unwrap()
}

/// Distorted and reference clips of `n` frames.
fn clips(w: usize, h: usize, n: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let dist = (0..n).map(|t| i420(w, h, t)).collect();
    let reference = (0..n).map(|t| i420(w, h, t + 1)).collect();
    (dist, reference)
}

#[test]
fn a_frame_scores_as_its_rgb_image_alone_and_in_batches() {
    let (w, h) = (192, 176);
    let (dist, reference) = clips(w, h, 4);
    let d: Vec<Frame> = dist.iter().map(|b| frame(b, w, h)).collect();
    let r: Vec<Frame> = reference.iter().map(|b| frame(b, w, h)).collect();
    // psnr, the SSIM family and psnry (which has no frame path of its own) score frames from their rows.
    for name in ["psnr", "ssim", "ssimc", "ms_ssim", "psnry"] {
        let metric = create_metric(name, &Options::default()).unwrap();
        let batch = metric.score_frames(&d, Some(&r)).unwrap();
        for i in 0..4 {
            let (rgb_d, rgb_r) = (d[i].to_rgb_f32(), r[i].to_rgb_f32());
            let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>();
            let (bd, br) = (bytes(&rgb_d), bytes(&rgb_r));
            let image_d = Image::new(&bd, w as u32, h as u32, 0, PixelFormat::RgbF32).unwrap();
            let image_r = Image::new(&br, w as u32, h as u32, 0, PixelFormat::RgbF32).unwrap();
            let want = metric.score(&image_d, Some(&image_r)).unwrap();
            let single = metric.score_frame(&d[i], Some(&r[i])).unwrap();
            assert!(rel_err(single, want) < 1e-12, "{name} frame {i}: {single} vs RGB {want}");
            assert!(rel_err(batch[i], single) < 1e-12, "{name} frame {i}: batch {} vs {single}", batch[i]);
        }
    }
    // The checks of image scoring apply to frames.
    let psnr = create_metric("psnr", &Options::default()).unwrap();
    let e = psnr.score_frame(&d[0], None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    let small = i420(8, 6, 0);
    let e = psnr.score_frame(&d[0], Some(&frame(&small, 8, 6))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ShapeMismatch);
    assert!(e.message.contains("frame 0: distorted 192x176 and reference 8x6 differ in size"), "{e}");
}

#[test]
fn subsampling_threads_batches_and_dropped_scores_give_the_same_values() {
    let (w, h) = (64, 48);
    let (dist, reference) = clips(w, h, 10);
    let metrics = ["psnr", "ssim"];
    let direct: Vec<Vec<f64>> = metrics
        .iter()
        .map(|name| {
            let m = create_metric(name, &Options::default()).unwrap();
            (0..10).map(|i| m.score_frame(&frame(&dist[i], w, h), Some(&frame(&reference[i], w, h))).unwrap()).collect()
        })
        .collect();
    let run = |options: StreamOptions| {
        let mut stream = Stream::open(&metrics, &options).unwrap();
        for i in 0..10 {
            stream.push(&frame(&dist[i], w, h), Some(&frame(&reference[i], w, h))).unwrap();
        }
        stream.flush().unwrap();
        stream
    };
    let layouts = [
        StreamOptions::default(),
        StreamOptions { threads: 2, queue: 2, batch: 3, ..Default::default() },
        StreamOptions { threads: 3, queue: 1, batch: 1, ..Default::default() },
    ];
    for options in layouts {
        let mut stream = run(options);
        assert_eq!((stream.frames_pushed(), stream.frames_done()), (10, 10));
        for i in 0..10 {
            let got = stream.frame_scores(i).unwrap();
            for m in 0..2 {
                assert!(rel_err(got[m], direct[m][i as usize]) < 1e-12, "{options:?} frame {i} {}", metrics[m]);
            }
        }
        let mean = direct[1].iter().sum::<f64>() / 10.0;
        assert!(rel_err(stream.pooled(1, Pooling::Mean).unwrap(), mean) < 1e-12);
    }
    // Every 3rd frame: 0, 3, 6, 9.
    let mut stream = run(StreamOptions { subsample: 3, threads: 2, ..Default::default() });
    assert_eq!(stream.frames_done(), 10);
    for i in 0..10u64 {
        assert_eq!(stream.frame_scores(i).is_some(), i % 3 == 0, "frame {i}");
    }
    let picked: Vec<f64> = [0, 3, 6, 9].iter().map(|&i| direct[0][i]).collect();
    let min = picked.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(stream.pooled(0, Pooling::Min).unwrap(), min);
    assert_eq!(stream.summary().unwrap()[0].frames, 4);
    // Without per-frame scores: pooled values only.
    let mut stream = run(StreamOptions { keep_frame_scores: false, ..Default::default() });
    assert!(stream.frame_scores(0).is_none());
    let max = direct[0].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(stream.pooled(0, Pooling::Max).unwrap(), max);
    let e = stream.pooled(0, Pooling::Percentile(50.0)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("keep_frame_scores"), "{e}");
    // Bad options and arguments.
    for options in [
        StreamOptions { threads: 0, ..Default::default() },
        StreamOptions { queue: 0, ..Default::default() },
        StreamOptions { batch: 0, ..Default::default() },
        StreamOptions { subsample: 0, ..Default::default() },
    ] {
        let e = Stream::open(&metrics, &options).err().unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{options:?}");
    }
    assert_eq!(Stream::open(&[], &StreamOptions::default()).err().unwrap().kind, ErrorKind::InvalidArgument);
    assert_eq!(
        Stream::open(&["psnr", "nope"], &StreamOptions::default()).err().unwrap().kind,
        ErrorKind::UnknownMetric
    );
    let mut stream = run(StreamOptions::default());
    assert_eq!(stream.pooled(2, Pooling::Mean).unwrap_err().kind, ErrorKind::InvalidArgument);
    assert_eq!(stream.pooled(0, Pooling::Percentile(101.0)).unwrap_err().kind, ErrorKind::InvalidArgument);
    let mut empty = Stream::open(&metrics, &StreamOptions::default()).unwrap();
    assert_eq!(empty.pooled(0, Pooling::Mean).unwrap_err().kind, ErrorKind::InvalidArgument);
}

#[test]
fn bad_pairs_are_refused_at_push_and_the_stream_goes_on() {
    let (w, h) = (64, 48);
    let (dist, reference) = clips(w, h, 3);
    let mut stream = Stream::open(&["psnr", "ssim"], &StreamOptions::default()).unwrap();
    let (d, r) = (frame(&dist[0], w, h), frame(&reference[0], w, h));
    let e = stream.push(&d, None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("frame 0: no reference frame, but the stream's full-reference metrics (psnr, ssim)"));
    // Too small for ssim (11x11 window).
    let tiny = i420(4, 4, 0);
    let e = stream.push(&frame(&tiny, 4, 4), Some(&frame(&tiny, 4, 4))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ShapeMismatch);
    assert!(e.message.contains("metric 'ssim'") && e.message.contains("at least 11x11"), "{e}");
    stream.push(&d, Some(&r)).unwrap();
    // Frame 1 changes size.
    let other = i420(32, 48, 0);
    let e = stream.push(&frame(&other, 32, 48), Some(&frame(&other, 32, 48))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ShapeMismatch);
    assert!(
        e.message.contains("frame 1: the stream's frames are 64x48 yuv420p, reference yuv420p (as frame 0)"),
        "{e}"
    );
    stream.push(&frame(&dist[1], w, h), Some(&frame(&reference[1], w, h))).unwrap();
    stream.flush().unwrap();
    assert_eq!(stream.frames_done(), 2);
    // A no-reference stream takes no reference: the TorchScript brightness module scores the RGB mean.
    let fixtures = torchscript_fixtures();
    let spec = TorchScriptSpec {
        name: "brightness".into(),
        mode: Mode::NoReference,
        lower_better: false,
        score_range: (0.0, 1.0),
    };
    let brightness = create_torchscript(&fixtures.join("brightness.pt"), &spec, &Options::default()).unwrap();
    let mut stream = Stream::with_metrics(vec![brightness], &StreamOptions::default()).unwrap();
    let e = stream.push(&d, Some(&r)).unwrap_err();
    assert!(e.message.contains("only no-reference metrics: push no reference frame"), "{e}");
    stream.push(&d, None).unwrap();
    let rgb = d.to_rgb_f32();
    let mean = rgb.iter().map(|&v| v as f64).sum::<f64>() / rgb.len() as f64;
    assert!((stream.pooled(0, Pooling::Mean).unwrap() - mean).abs() < 1e-6);
}

#[test]
fn a_failure_while_scoring_names_the_frame_and_ends_the_stream() {
    // A TorchScript module that fails on a frame brighter than 0.9 on average.
    let dir = profile_dir().join(format!("failing-module-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let module = dir.join("fails_when_bright.pt");
    let script = format!(
        "import torch\n\
         class M(torch.nn.Module):\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n        \
         if bool(x.mean() > 0.9):\n            raise RuntimeError('too bright')\n        \
         return x.mean(dim=[1, 2, 3])\n\
         torch.jit.script(M()).save({:?})\n",
        module.to_str().unwrap()
    );
    // From a file: TorchScript reads the module's source.
    std::fs::write(dir.join("make.py"), script).unwrap();
    let out = std::process::Command::new(venv_python()).arg(dir.join("make.py")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spec = TorchScriptSpec {
        name: "fails_when_bright".into(),
        mode: Mode::NoReference,
        lower_better: false,
        score_range: (0.0, 1.0),
    };
    let metric = create_torchscript(&module, &spec, &Options::default()).unwrap();
    let mut stream = Stream::with_metrics(vec![metric], &StreamOptions { threads: 2, ..Default::default() }).unwrap();
    let (w, h) = (16, 16);
    let dark = i420(w, h, 0);
    // Full-range white: Y = 255, neutral chroma.
    let white: Vec<u8> = [vec![255u8; w * h], vec![128u8; w * h / 2]].concat();
    let white = Frame::packed(
        &white,
        w as u32,
        h as u32,
        FrameFormat::I420,
        ColorSpec { range: ColorRange::Full, ..Default::default() },
    )
    .unwrap();
    let mut failed_at = None;
    // Pushes go on until one reports the failure: on a loaded machine the worker holding frame 5 may still be
    // scoring it while the other scores dozens more.
    for i in 0..10_000 {
        let pushed = if i == 5 { stream.push(&white, None) } else { stream.push(&frame(&dark, w, h), None) };
        if let Err(e) = pushed {
            failed_at = Some(i);
            assert_eq!(e.kind, ErrorKind::Runtime, "{e}");
            assert!(e.message.starts_with("frame 5: metric 'fails_when_bright': libtorch error"), "{e}");
            break;
        }
    }
    assert!(failed_at.is_some_and(|i| i > 5), "the failure was not reported by a later push");
    let e = stream.flush().unwrap_err();
    assert!(e.message.contains("frame 5:"), "{e}");
    assert!(stream.push(&frame(&dark, w, h), None).is_err(), "a failed stream refuses more frames");
    // The frames before the failure keep their scores.
    assert_eq!(stream.frames_done(), 5);
    assert!(stream.frame_scores(4).is_some() && stream.frame_scores(5).is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dropping_a_stream_with_frames_queued_joins_its_workers() {
    if !alone_in_a_child_process("dropping_a_stream_with_frames_queued_joins_its_workers") {
        return;
    }
    assert_eq!(iqa::cache_stats().handles_alive, 0);
    let (w, h) = (256, 192);
    let (dist, reference) = clips(w, h, 12);
    let options = StreamOptions { threads: 2, queue: 8, ..Default::default() };
    let mut stream = Stream::open(&["ssim", "psnr"], &options).unwrap();
    for i in 0..12 {
        stream.push(&frame(&dist[i], w, h), Some(&frame(&reference[i], w, h))).unwrap();
    }
    assert_eq!(iqa::cache_stats().handles_alive, 2);
    drop(stream);
    assert_eq!(iqa::cache_stats().handles_alive, 0, "metric handles outlived the stream");
}

/// Handle counts and resident memory are process-wide and the other tests of this file create handles in
/// parallel: a test that checks them runs again, alone, in a child process of this test binary. True in that
/// child (go on); in the parent, runs the child, fails if it failed, and returns false.
fn alone_in_a_child_process(test: &str) -> bool {
    const ALONE: &str = "IQA_TEST_ALONE";
    if std::env::var_os(ALONE).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env(ALONE, "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("1 passed"), "{test}, alone in a child process, failed:\n{text}");
    print!("{text}");
    false
}

#[test]
fn memory_stays_bounded_over_10000_frames() {
    if !alone_in_a_child_process("memory_stays_bounded_over_10000_frames") {
        return;
    }
    let (w, h) = (64, 64);
    let clip: Vec<Vec<u8>> = (0..16).map(|t| i420(w, h, t)).collect();
    let mut stream = Stream::open(&["psnr"], &StreamOptions { threads: 2, ..Default::default() }).unwrap();
    let mut push = |i: usize| stream.push(&frame(&clip[i % 16], w, h), Some(&frame(&clip[(i + 1) % 16], w, h)));
    for i in 0..1000 {
        push(i).unwrap();
    }
    let warm = process_memory("VmRSS");
    for i in 1000..10_000 {
        push(i).unwrap();
    }
    stream.flush().unwrap();
    let grown = process_memory("VmRSS").saturating_sub(warm);
    // 9,000 more frames: a frame kept would be 2 × 6 KB of copies plus 2 × 48 KB of RGB (~0.9 GB); the kept
    // scores are 8 bytes each.
    println!("RSS after 1,000 frames {} MB, grew by {} KB over 9,000 more", warm >> 20, grown >> 10);
    assert!(grown < 32 << 20, "RSS grew by {} MB over 9,000 frames", grown >> 20);
    assert_eq!(stream.frames_done(), 10_000);
    assert_eq!(stream.summary().unwrap()[0].frames, 10_000);
}
