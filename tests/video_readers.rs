//! The Y4M and raw readers on streams written here: every colour space ffmpeg's yuv4mpegpipe writes, the
//! header's range and siting, reading through a pipe-like source one byte at a time, and broken streams
//! (truncated header, bad sizes, missing FRAME, truncated frame, huge claimed size, out-of-range samples),
//! which must be errors naming the byte offset, never a crash or a large allocation.
mod common;
use common::process_memory;
use iqa::{
    open_video, ChromaSiting, ColorChoice, ColorMatrix, ColorRange, ColorSpec, ErrorKind, FrameFormat, FrameReader,
    RawFormat, RawReader, Y4mReader,
};
use std::io::Read;

/// A Y4M stream: `header` tags after the signature, then each frame's bytes after a FRAME line.
fn y4m(tags: &str, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("YUV4MPEG2 {tags}\n").into_bytes();
    for frame in frames {
        out.extend_from_slice(b"FRAME\n");
        out.extend_from_slice(frame);
    }
    out
}

/// Deterministic bytes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Little-endian u16 samples of `bits` bits.
fn samples16(count: usize, bits: u32, seed: u32) -> Vec<u8> {
    pattern(2 * count, seed)
        .chunks_exact(2)
        .flat_map(|c| (u16::from_le_bytes([c[0], c[1]]) & ((1u32 << bits) - 1) as u16).to_le_bytes())
        .collect()
}

fn reader(bytes: &[u8]) -> iqa::Result<Y4mReader<&[u8]>> {
    Y4mReader::new(bytes, ColorChoice::default())
}

fn read_all(mut r: impl FrameReader) -> iqa::Result<Vec<Vec<f32>>> {
    let mut out = Vec::new();
    while let Some(frame) = r.read_frame()? {
        out.push(frame.to_rgb_f32());
    }
    Ok(out)
}

fn decode_error(result: iqa::Result<impl Sized>, needles: &[&str]) {
    let Err(e) = result else { panic!("expected a decode error containing {needles:?}") };
    assert_eq!(e.kind, ErrorKind::Decode, "{e}");
    for needle in needles {
        assert!(e.message.contains(needle), "{needle:?} not in: {e}");
    }
}

#[test]
fn every_ffmpeg_colour_space_is_read_with_its_layout_and_siting() {
    // (C tag, ffmpeg pix_fmt, bytes of a 16x8 frame, siting the tag states)
    let (w, h) = (16usize, 8usize);
    let table: &[(&str, &str, usize, Option<ChromaSiting>)] = &[
        ("420jpeg", "yuv420p", w * h * 3 / 2, Some(ChromaSiting::Center)),
        ("420", "yuv420p", w * h * 3 / 2, Some(ChromaSiting::Center)),
        ("420mpeg2", "yuv420p", w * h * 3 / 2, Some(ChromaSiting::Left)),
        ("420paldv", "yuv420p", w * h * 3 / 2, Some(ChromaSiting::TopLeft)),
        ("411", "yuv411p", w * h * 3 / 2, None),
        ("422", "yuv422p", w * h * 2, None),
        ("444", "yuv444p", w * h * 3, None),
        ("444alpha", "yuv444p", w * h * 3, None),
        ("mono", "gray", w * h, None),
        ("mono9", "gray9le", w * h * 2, None),
        ("mono10", "gray10le", w * h * 2, None),
        ("mono12", "gray12le", w * h * 2, None),
        ("mono16", "gray16le", w * h * 2, None),
        ("420p9", "yuv420p9le", w * h * 3, None),
        ("420p10", "yuv420p10le", w * h * 3, None),
        ("420p12", "yuv420p12le", w * h * 3, None),
        ("420p14", "yuv420p14le", w * h * 3, None),
        ("420p16", "yuv420p16le", w * h * 3, None),
        ("422p10", "yuv422p10le", w * h * 4, None),
        ("444p12", "yuv444p12le", w * h * 6, None),
        ("444p16", "yuv444p16le", w * h * 6, None),
    ];
    for &(tag, pix_fmt, len, siting) in table {
        let format = FrameFormat::parse(pix_fmt).unwrap();
        assert_eq!(format.name(), pix_fmt);
        let bits = format.bit_depth() as u32;
        let frame = |seed| if bits == 8 { pattern(len, seed) } else { samples16(len / 2, bits, seed) };
        // 444alpha carries an alpha plane after the three it has in common with 444, skipped.
        let alpha = if tag == "444alpha" { pattern(w * h, 99) } else { Vec::new() };
        let frames = [[frame(1), alpha.clone()].concat(), [frame(2), alpha].concat()];
        let bytes = y4m(&format!("W{w} H{h} F30000:1001 It A1:1 C{tag}"), &frames);
        let r = reader(&bytes).unwrap_or_else(|e| panic!("C{tag}: {e}"));
        let info = *r.info();
        assert_eq!((info.width, info.height, info.format), (w as u32, h as u32, format), "C{tag}");
        assert_eq!(info.frame_rate, Some((30000, 1001)));
        assert_eq!(info.color.siting, siting.unwrap_or_default(), "C{tag}");
        assert_eq!((info.color.matrix, info.color.range), (ColorMatrix::Bt709, ColorRange::Limited));
        let rgb = read_all(r).unwrap_or_else(|e| panic!("C{tag}: {e}"));
        assert_eq!(rgb.len(), 2, "C{tag}");
        // The same samples as a raw stream give the same RGB.
        let raw: Vec<u8> = frames.iter().flat_map(|f| f[..len].to_vec()).collect();
        let raw_reader = RawReader::new(&raw[..], w as u32, h as u32, format, info.color).unwrap();
        assert_eq!(read_all(raw_reader).unwrap(), rgb, "C{tag}");
    }
    // Gray: R = G = B = the luma alone.
    let bytes = y4m("W4 H2 Cmono XCOLORRANGE=FULL", &[vec![0, 51, 102, 153, 204, 255, 255, 0]]);
    let rgb = read_all(reader(&bytes).unwrap()).unwrap();
    let want: Vec<f32> = [0u8, 51, 102, 153, 204, 255, 255, 0].iter().flat_map(|&v| [v as f32 / 255.0; 3]).collect();
    assert!(rgb[0].iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-7), "{:?}", rgb[0]);
}

#[test]
fn header_range_siting_and_the_callers_choice() {
    let frame = vec![128u8; 8 * 4 * 3 / 2];
    let info = |tags: &str, choice: ColorChoice| *Y4mReader::new(&y4m(tags, &[])[..], choice).unwrap().info();
    assert_eq!(
        info("W8 H4", ColorChoice::default()).color,
        ColorSpec {
            matrix: ColorMatrix::Bt709,
            range: ColorRange::Limited,
            // No C tag: 420jpeg, chroma centred.
            siting: ChromaSiting::Center
        }
    );
    assert_eq!(info("W8 H4 C420mpeg2 XCOLORRANGE=FULL", ColorChoice::default()).color.range, ColorRange::Full);
    assert_eq!(info("W8 H4 XCOLORRANGE=LIMITED", ColorChoice::default()).color.range, ColorRange::Limited);
    // XYSCSS stands in for a missing C tag; C wins over it.
    assert_eq!(info("W8 H4 XYSCSS=422", ColorChoice::default()).format, FrameFormat::I422);
    assert_eq!(info("W8 H4 C444 XYSCSS=422", ColorChoice::default()).format, FrameFormat::I444);
    // The caller's choice wins over the header.
    let choice = ColorChoice {
        matrix: Some(ColorMatrix::Bt2020),
        range: Some(ColorRange::Limited),
        siting: Some(ChromaSiting::TopLeft),
    };
    let c = info("W8 H4 C420jpeg XCOLORRANGE=FULL", choice).color;
    assert_eq!((c.matrix, c.range, c.siting), (ColorMatrix::Bt2020, ColorRange::Limited, ChromaSiting::TopLeft));
    // Unknown tags and FRAME parameters are ignored.
    let bytes = [y4m("W8 H4 Zsomething Q", &[]), b"FRAME Ixyz Zq\n".to_vec(), frame].concat();
    assert_eq!(read_all(reader(&bytes).unwrap()).unwrap().len(), 1);
}

/// A source that hands out at most one byte per read, as a slow pipe may.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.0[0];
        self.0 = &self.0[1..];
        Ok(1)
    }
}

#[test]
fn a_stream_read_a_byte_at_a_time_gives_the_same_frames() {
    let frames: Vec<Vec<u8>> = (0..3).map(|i| samples16(12 * 6 * 3 / 2, 10, i)).collect();
    let bytes = y4m("W12 H6 C420p10 XCOLORRANGE=FULL", &frames);
    let whole = read_all(reader(&bytes).unwrap()).unwrap();
    let trickled = read_all(Y4mReader::new(Trickle(&bytes), ColorChoice::default()).unwrap()).unwrap();
    assert_eq!(whole.len(), 3);
    assert_eq!(trickled, whole);
}

#[test]
fn broken_headers_are_decode_errors_naming_the_problem() {
    decode_error(reader(b""), &["empty"]);
    decode_error(reader(b"YUV4MPEG3 W8 H8\n"), &["byte 0", "no YUV4MPEG2 signature"]);
    decode_error(reader(b"YUV4MPEG2 W8 H8"), &["y4m header at byte 0", "cut off by the end of the stream at byte 15"]);
    decode_error(reader(&[b"YUV4MPEG2 ".as_slice(), &[b'X'; 5000]].concat()), &["no newline within 4096 bytes"]);
    decode_error(reader(b"YUV4MPEG2 H8\n"), &["no W (width) tag"]);
    decode_error(reader(b"YUV4MPEG2 W8\n"), &["no H (height) tag"]);
    decode_error(reader(b"YUV4MPEG2 W0 H8\n"), &["W0 is not a positive integer"]);
    decode_error(reader(b"YUV4MPEG2 W-8 H8\n"), &["W-8 is not a positive integer"]);
    decode_error(reader(b"YUV4MPEG2 W8 Habc\n"), &["Habc is not a positive integer"]);
    decode_error(reader(b"YUV4MPEG2 W99999999999 H8\n"), &["W99999999999 is not a positive integer"]);
    decode_error(reader(b"YUV4MPEG2 W70000 H8\n"), &["70000x8 exceeds the decoding limit of 65535 pixels a side"]);
    // 65535² 4:4:4 16-bit samples would be 25 GB a frame: refused before anything is allocated.
    decode_error(reader(b"YUV4MPEG2 W65535 H65535 C444p16\n"), &["over the decoding limit of 2048 MiB"]);
    decode_error(reader(b"YUV4MPEG2 W7 H8 C420jpeg\n"), &["width 7 is not a multiple of 2"]);
    decode_error(reader(b"YUV4MPEG2 W8 H5 C420p10\n"), &["height 5 is not a multiple of 2"]);
    decode_error(reader(b"YUV4MPEG2 W6 H4 C411\n"), &["width 6 is not a multiple of 4"]);
    decode_error(reader(b"YUV4MPEG2 W8 H8 C420foo\n"), &["unsupported colour space C420foo"]);
    decode_error(reader(b"YUV4MPEG2 W8 H8 C420p11\n"), &["unsupported colour space C420p11"]);
    decode_error(reader(b"YUV4MPEG2 W8 H8 Im\n"), &["mixed interlacing"]);
    decode_error(reader(b"YUV4MPEG2 W8 H8 Ix\n"), &["interlacing Ix"]);
    decode_error(reader(b"YUV4MPEG2 W8 H8 F30\n"), &["frame rate F30 is not N:D"]);
    decode_error(reader(b"YUV4MPEG2 W8 H8 XCOLORRANGE=PC\n"), &["XCOLORRANGE=PC is not FULL or LIMITED"]);
    decode_error(reader(b"YUV4MPEG2 W8 H8 \xff\n"), &["not ASCII"]);
}

#[test]
fn broken_frames_are_decode_errors_with_the_byte_offset() {
    let header = "W8 H4 C420jpeg"; // 18 + 1 bytes of header line; frames of 48 bytes
    let good = pattern(48, 5);
    let header_len = "YUV4MPEG2 W8 H4 C420jpeg\n".len();
    // Frame 1's marker is wrong: it starts after the header, FRAME\n and 48 bytes.
    let bytes = [y4m(header, std::slice::from_ref(&good)), b"FRAMX\n".to_vec(), good.clone()].concat();
    let mut r = reader(&bytes).unwrap();
    assert!(r.read_frame().unwrap().is_some());
    let at = header_len + 6 + 48;
    decode_error(r.read_frame(), &["y4m frame 1", &format!("expected FRAME at byte {at}"), "\"FRAMX\""]);
    // A frame cut short.
    let bytes = [y4m(header, std::slice::from_ref(&good)), b"FRAME\n".to_vec(), good[..20].to_vec()].concat();
    let mut r = reader(&bytes).unwrap();
    r.read_frame().unwrap();
    let start = header_len + 6 + 48 + 6;
    decode_error(
        r.read_frame(),
        &[
            &format!("y4m frame 1 starting at byte {start} is truncated"),
            &format!("the stream ends at byte {} after 20 of its 48 bytes", start + 20),
        ],
    );
    // Nothing after a FRAME line; a FRAME line cut short.
    let bytes = [y4m(header, &[]), b"FRAME\n".to_vec()].concat();
    decode_error(
        reader(&bytes).unwrap().read_frame(),
        &[&format!("ends at byte {} right after its FRAME", header_len + 6)],
    );
    let bytes = [y4m(header, &[]), b"FRA".to_vec()].concat();
    decode_error(
        reader(&bytes).unwrap().read_frame(),
        &[&format!("y4m frame 0 header at byte {header_len} is cut off")],
    );
    // A 10-bit sample above 1023 in the U plane (8x4 luma = 64 bytes, then U at 2x2 chroma... of 4x2).
    let mut samples = samples16(8 * 4 * 3 / 2, 10, 3);
    samples[64 + 2 * 5..64 + 2 * 5 + 2].copy_from_slice(&1024u16.to_le_bytes());
    let bytes = y4m("W8 H4 C420p10", &[samples]);
    decode_error(
        reader(&bytes).unwrap().read_frame(),
        &[
            "y4m frame 0",
            &format!("samples from byte {}", "YUV4MPEG2 W8 H4 C420p10\n".len() + 6),
            "plane U: sample at (1, 1) is 1024, above 1023",
        ],
    );
}

#[test]
fn a_huge_claimed_frame_over_a_short_stream_allocates_little() {
    // 16000x16000 4:4:4 claims 768 MB a frame; the stream holds 3 MB of it.
    let before = process_memory("VmHWM");
    let bytes = [b"YUV4MPEG2 W16000 H16000 C444\nFRAME\n".to_vec(), vec![7u8; 3 << 20]].concat();
    decode_error(reader(&bytes).unwrap().read_frame(), &["is truncated", "after 3145728 of its 768000000 bytes"]);
    let grown = process_memory("VmHWM").saturating_sub(before);
    assert!(grown < 64 << 20, "peak RSS grew by {} MB", grown >> 20);
}

#[test]
fn raw_streams_end_at_a_frame_boundary_or_report_the_cut() {
    let (w, h) = (8u32, 4u32);
    let len = 48;
    let color = ColorSpec::default();
    let frames = pattern(3 * len, 9);
    assert_eq!(read_all(RawReader::new(&frames[..], w, h, FrameFormat::I420, color).unwrap()).unwrap().len(), 3);
    assert_eq!(read_all(RawReader::new(&[][..], w, h, FrameFormat::I420, color).unwrap()).unwrap().len(), 0);
    let cut = &frames[..2 * len + 10];
    let mut r = RawReader::new(cut, w, h, FrameFormat::I420, color).unwrap();
    r.read_frame().unwrap();
    r.read_frame().unwrap();
    decode_error(
        r.read_frame(),
        &[&format!("raw frame 2 starting at byte {} is truncated", 2 * len), "after 10 of its 48"],
    );
    // P010 keeps its 10 bits high: low bits set are refused, naming the component.
    let mut p010: Vec<u8> = (0..48u16).flat_map(|v| (v << 6).to_le_bytes()).collect();
    p010[64 + 2] = 1; // the UV plane's second word, V of chroma (0, 0): 33 << 6 = 0x0840 becomes 0x0801
    let mut r = RawReader::new(&p010[..], w, h, FrameFormat::P010, color).unwrap();
    decode_error(
        r.read_frame(),
        &["raw frame 0 (from byte 0)", "plane UV: V sample at (0, 0) is 0x0801", "low 6 bits"],
    );
    // Sizes are the caller's: their errors are argument errors.
    let e = RawReader::new(&frames[..], 7, 4, FrameFormat::NV12, color).err().unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    assert!(e.message.contains("width 7 is not a multiple of 2: nv12"), "{e}");
}

#[test]
fn open_video_sniffs_y4m_and_needs_a_size_for_raw() {
    let dir = std::env::temp_dir().join(format!("iqa_video_readers_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (y4m_path, raw_path) = (dir.join("a.y4m"), dir.join("a.yuv"));
    let frame = pattern(48, 1);
    std::fs::write(&y4m_path, y4m("W8 H4 C420mpeg2", std::slice::from_ref(&frame))).unwrap();
    std::fs::write(&raw_path, &frame).unwrap();
    let raw = RawFormat { width: 8, height: 4, format: FrameFormat::I420 };
    let mut r = open_video(&y4m_path, None, ColorChoice::default()).unwrap();
    assert_eq!(r.info().color.siting, ChromaSiting::Left);
    let from_y4m = r.read_frame().unwrap().unwrap().to_rgb_f32();
    let mut r =
        open_video(&raw_path, Some(raw), ColorChoice { siting: Some(ChromaSiting::Left), ..Default::default() })
            .unwrap();
    assert_eq!(r.read_frame().unwrap().unwrap().to_rgb_f32(), from_y4m);
    assert!(r.read_frame().unwrap().is_none());
    assert_eq!(r.frames_read(), 1);
    let e = open_video(&raw_path, None, ColorChoice::default()).err().unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("not a Y4M stream") && e.message.contains("a.yuv"), "{e}");
    let e = open_video(&dir.join("missing.y4m"), None, ColorChoice::default()).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Io);
    assert!(e.message.contains("missing.y4m"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_prefix_and_corruption_of_a_stream_is_an_error_or_frames_never_a_panic() {
    let frames: Vec<Vec<u8>> = (0..2).map(|i| samples16(8 * 4 * 3 / 2, 10, i)).collect();
    let bytes = y4m("W8 H4 F25:1 Ip A1:1 C420p10 XCOLORRANGE=FULL", &frames);
    for cut in 0..bytes.len() {
        match reader(&bytes[..cut]).and_then(read_all) {
            Ok(frames) => assert!(frames.len() < 2, "a cut stream gave every frame"),
            Err(e) => assert_eq!(e.kind, ErrorKind::Decode, "cut at {cut}: {e}"),
        }
    }
    let mut state = 12345u32;
    for _ in 0..3000 {
        let mut corrupt = bytes.clone();
        for _ in 0..3 {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            let at = (state >> 8) as usize % corrupt.len();
            corrupt[at] = (state >> 24) as u8;
        }
        if let Err(e) = reader(&corrupt).and_then(read_all) {
            assert_eq!(e.kind, ErrorKind::Decode, "{e}");
        }
    }
}
