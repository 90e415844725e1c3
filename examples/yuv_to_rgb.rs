//! Writes iqa's RGB of every frame of a video (Y4M, or raw with --size and --pixfmt) as little-endian float32,
//! height×width×3 per frame: what metrics score. scripts/ffmpeg_yuv_compare.py compares it with ffmpeg's.
//!
//! `cargo run --release --example yuv_to_rgb -- IN OUT [--size WxH --pixfmt yuv420p] [--matrix bt709]
//! [--range limited] [--siting left]` (IN may be `-` for standard input).
use iqa::{open_video, ChromaSiting, ColorChoice, ColorMatrix, ColorRange, FrameFormat, RawFormat};
use std::io::Write;
use std::path::PathBuf;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (input, output) = match (args.next(), args.next()) {
        (Some(i), Some(o)) => (PathBuf::from(i), PathBuf::from(o)),
        _ => {
            return Err("usage: yuv_to_rgb IN OUT [--size WxH --pixfmt F] [--matrix M] [--range R] [--siting S]".into())
        }
    };
    let (mut choice, mut size, mut format) = (ColorChoice::default(), None, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad {flag} {value}");
        match flag.as_str() {
            "--matrix" => choice.matrix = Some(ColorMatrix::parse(&value).ok_or_else(bad)?),
            "--range" => choice.range = Some(ColorRange::parse(&value).ok_or_else(bad)?),
            "--siting" => choice.siting = Some(ChromaSiting::parse(&value).ok_or_else(bad)?),
            "--pixfmt" => format = Some(FrameFormat::parse(&value).ok_or_else(bad)?),
            "--size" => {
                let (w, h) = value.split_once('x').ok_or_else(bad)?;
                size = Some((w.parse::<u32>().map_err(|_| bad())?, h.parse::<u32>().map_err(|_| bad())?));
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let raw = match (size, format) {
        (Some((width, height)), Some(format)) => Some(RawFormat { width, height, format }),
        (None, None) => None,
        _ => return Err("--size and --pixfmt go together".into()),
    };
    let mut reader = open_video(&input, raw, choice).map_err(|e| e.to_string())?;
    let file = std::fs::File::create(&output).map_err(|e| format!("{}: {e}", output.display()))?;
    let mut out = std::io::BufWriter::new(file);
    while let Some(frame) = reader.read_frame().map_err(|e| e.to_string())? {
        let bytes: Vec<u8> = frame.to_rgb_f32().iter().flat_map(|v| v.to_le_bytes()).collect();
        out.write_all(&bytes).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    eprintln!("{} frame(s) written to {}", reader.frames_read(), output.display());
    Ok(())
}
