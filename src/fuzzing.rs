//! Entry points of the fuzz targets (fuzz/) and of their regression test (tests/fuzz_regressions.rs): every
//! parser of untrusted bytes, fed from a byte slice. Not part of the API; hidden from the documentation.
//!
//! The parsers read files, so the bytes go through a file of this process (in /dev/shm where there is one,
//! to keep a fuzzer's thousands of runs a second off the disk).
use crate::api::{create_metric, Options, TorchScriptSpec};
use crate::error::{panic_text, Result};
use crate::image::{
    decode_file, ChromaSiting, ColorChoice, ColorMatrix, ColorRange, ColorSpec, FrameFormat, FrameReader, Image,
    PixelFormat, PlaneLayout, RawReader, Subsampling, Y4mReader,
};
use crate::weights::load_state_dict;
use std::path::{Path, PathBuf};

/// The parsers the fuzz targets drive, by target name (fuzz/fuzz_targets/NAME.rs, fuzz/corpus/NAME,
/// fuzz/regressions/NAME).
pub const TARGETS: &[&str] = &[
    "image_decode",
    "pixel_buffer",
    "weights_pth",
    "weights_safetensors",
    "weights_mat",
    "sidecar_json",
    "y4m_stream",
    "raw_stream",
];

/// Runs target `name` on `data`; `Ok` or the parser's error, never a panic (which the fuzzer reports as a crash).
pub fn run(name: &str, data: &[u8]) -> Result<()> {
    match name {
        "image_decode" => with_file("img", data, |p| decode_file(p).map(|_| ())),
        "pixel_buffer" => pixel_buffer(data),
        "weights_pth" => with_file("pth", data, |p| load_state_dict(p).map(|_| ())),
        "weights_safetensors" => with_file("safetensors", data, |p| load_state_dict(p).map(|_| ())),
        "weights_mat" => with_file("mat", data, |p| load_state_dict(p).map(|_| ())),
        "y4m_stream" => frames(Y4mReader::new(data, ColorChoice::default())?),
        "raw_stream" => raw_stream(data),
        "sidecar_json" => with_file("json", data, |p| TorchScriptSpec::from_sidecar("fuzz", p).map(|_| ())),
        _ => panic!("no fuzz target named {name}"),
    }
}

fn with_file<T>(extension: &str, data: &[u8], parse: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    let thread = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let path: PathBuf = dir.join(format!("iqa_fuzz_{}_{thread}.{extension}", std::process::id()));
    std::fs::write(&path, data).expect("the fuzzing scratch file is writable");
    let result = parse(&path);
    let _ = std::fs::remove_file(&path);
    result
}

const FORMATS: [PixelFormat; 9] = [
    PixelFormat::Rgb8,
    PixelFormat::Rgba8,
    PixelFormat::Bgr8,
    PixelFormat::Bgra8,
    PixelFormat::Gray8,
    PixelFormat::Rgb16,
    PixelFormat::RgbF32,
    PixelFormat::RgbF16,
    PixelFormat::GrayF32,
];

/// A 10-byte header (format, width, height, stride, metric) and the pixel bytes: a buffer of any length, size,
/// stride and format, checked by `Image::new` and, when accepted, scored by a metric that reads the pixels
/// itself (psnr: 8-bit buffers directly) or through the tensor conversion (ssim, entropy).
fn pixel_buffer(data: &[u8]) -> Result<()> {
    let Some((header, pixels)) = data.split_first_chunk::<10>() else { return Ok(()) };
    let format = FORMATS[header[0] as usize % FORMATS.len()];
    let width = u16::from_le_bytes([header[1], header[2]]) as u32 % 257;
    let height = u16::from_le_bytes([header[3], header[4]]) as u32 % 257;
    let stride = u32::from_le_bytes([header[5], header[6], header[7], header[8]]) as usize;
    // Strides are mostly small; the largest exercise the overflow checks.
    let stride = if header[5] & 0x80 != 0 { stride } else { stride % 4096 };
    let image = Image::new(pixels, width, height, stride, format)?;
    let metric = ["psnr", "ssim", "entropy"][header[9] as usize % 3];
    let scorer = create_metric(metric, &Options::default())?;
    let reference = (metric != "entropy").then_some(&image);
    scorer.score(&image, reference).map(|_| ())
}

/// Frames read from a stream are converted to RGB, so that the samples (10-bit values out of range, odd
/// chroma sizes) reach the conversion too. A few frames are enough: each is read the same way.
fn frames(mut reader: impl FrameReader) -> Result<()> {
    let mut planes = Vec::new();
    while reader.frames_read() < 4 {
        let Some(frame) = reader.read_frame()? else { break };
        planes.resize(3 * frame.width() as usize * frame.height() as usize, 0.0);
        frame.write_rgb_planes(&mut planes)?;
    }
    Ok(())
}

/// A 6-byte header (width, height, subsampling and depth, layout, colour) and the stream's bytes: what a raw
/// .yuv stream is read as comes from the caller, so every stated format meets every byte count.
fn raw_stream(data: &[u8]) -> Result<()> {
    let Some((header, stream)) = data.split_first_chunk::<6>() else { return Ok(()) };
    let width = header[0] as u32 % 67;
    let height = header[1] as u32 % 67;
    let subsampling =
        [Subsampling::Yuv420, Subsampling::Yuv422, Subsampling::Yuv444, Subsampling::Yuv411, Subsampling::Mono]
            [header[2] as usize % 5];
    let bits = 8 + (header[2] / 5) % 9;
    let layout = if header[3] & 1 == 0 { PlaneLayout::Planar } else { PlaneLayout::SemiPlanar };
    let format = FrameFormat::new(subsampling, bits, layout)?;
    let color = ColorSpec {
        matrix: [ColorMatrix::Bt709, ColorMatrix::Bt601, ColorMatrix::Bt2020][header[4] as usize % 3],
        range: if header[4] & 4 == 0 { ColorRange::Limited } else { ColorRange::Full },
        siting: [ChromaSiting::Left, ChromaSiting::Center, ChromaSiting::TopLeft][header[5] as usize % 3],
    };
    frames(RawReader::new(stream, width, height, format, color)?)
}

/// One fuzzer run of target `name`: errors are fine, a panic that escapes the parser aborts with its message
/// (libFuzzer then keeps the input). Panics that a parser catches itself (libjpeg's errors unwind out of its
/// error handler) stay silent, instead of the abort that libfuzzer-sys's panic hook makes of every panic.
pub fn fuzz_one(name: &str, data: &[u8]) {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    if let Err(panic) = std::panic::catch_unwind(|| run(name, data)) {
        eprintln!("{name}: panic: {}", panic_text(panic.as_ref()).unwrap_or("(no message)"));
        std::process::abort();
    }
}
