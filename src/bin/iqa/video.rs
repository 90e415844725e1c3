//! `iqa video`: two videos (Y4M, or raw .yuv with --size/--pixfmt; `-` = standard input) scored frame by frame
//! with several metrics through a `Stream` (each frame pair converted to RGB once for all metrics, scored behind
//! the decode loop), then pooled: mean, harmonic mean (libvmaf's), min, max, median.
//!
//! Output: a table of pooled scores on stdout; `--csv` rows `frame,metric,score` (per frame, then the pooled
//! values with `mean`, `harmonic_mean`, `min`, `max`, `median` in the frame column); `--json` in libvmaf's
//! layout: `{"iqa_version", "run": {...}, "frames": [{"frameNum": 0, "metrics": {"psnr": 31.2}}],
//! "pooled_metrics": {"psnr": {"min", "max", "mean", "harmonic_mean", "median"}}}`.
use crate::options::RunOptions;
use crate::progress::Progress;
use crate::{interrupt, Outcome, UsageError};
use iqa::{
    metric_status, open_video, ChromaSiting, ColorChoice, ColorMatrix, ColorRange, FrameFormat, FrameReader, Mode,
    Pooling, RawFormat, Stream, StreamOptions,
};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct VideoArgs {
    /// Metrics, comma-separated pyiqa names (e.g. psnr,ssim,lpips).
    #[arg(short, long, value_name = "METRICS")]
    metrics: String,
    /// The distorted video: Y4M, or raw with --size and --pixfmt; `-` reads standard input.
    #[arg(long, value_name = "PATH|-")]
    dist: PathBuf,
    /// The reference video (needed by full-reference metrics), in the same size and format.
    #[arg(long = "ref", value_name = "PATH|-")]
    reference: Option<PathBuf>,
    /// Frame size of raw videos, WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    size: Option<(u32, u32)>,
    /// Sample layout of raw videos: yuv420p, nv12, yuv422p, yuv444p, yuv420p10le, p010le, yuv422p10le,
    /// yuv444p10le.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pixfmt: Option<FrameFormat>,
    /// Colour matrix: bt709 (default), bt601, bt2020.
    #[arg(long, value_name = "MATRIX", value_parser = parse_matrix)]
    matrix: Option<ColorMatrix>,
    /// limited (default, TV) or full (PC); overrides a Y4M file's XCOLORRANGE.
    #[arg(long, value_name = "RANGE", value_parser = parse_range)]
    range: Option<ColorRange>,
    /// Chroma siting: left (default), center, topleft; overrides a Y4M file's colour space.
    #[arg(long, value_name = "SITING", value_parser = parse_siting)]
    siting: Option<ChromaSiting>,
    /// Score every Nth frame (frames 0, N, 2N, ...).
    #[arg(long, value_name = "N", default_value_t = 1)]
    subsample: u32,
    /// Stop at the end of the shorter video instead of failing when their lengths differ.
    #[arg(long)]
    shortest: bool,
    /// Frames scored at once behind the decoding (each metric call gets threads/workers threads).
    #[arg(long, value_name = "N", default_value_t = 1)]
    workers: u32,
    /// Write per-frame and pooled scores as CSV (frame,metric,score).
    #[arg(long, value_name = "PATH|-")]
    csv: Option<String>,
    /// Write per-frame and pooled scores as JSON (libvmaf's layout).
    #[arg(long, value_name = "PATH|-")]
    json: Option<String>,
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{text:?} is not a size; WIDTHxHEIGHT, e.g. 1920x1080");
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    match (w.parse::<u32>(), h.parse::<u32>()) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(bad()),
    }
}

fn parse_format(text: &str) -> Result<FrameFormat, String> {
    FrameFormat::parse(text).ok_or_else(|| format!("{text:?} is not a pixel format the reader knows"))
}

fn parse_matrix(text: &str) -> Result<ColorMatrix, String> {
    ColorMatrix::parse(text).ok_or_else(|| format!("{text:?} is not a matrix; one of bt709, bt601, bt2020"))
}

fn parse_range(text: &str) -> Result<ColorRange, String> {
    ColorRange::parse(text).ok_or_else(|| format!("{text:?} is not a range; limited or full"))
}

fn parse_siting(text: &str) -> Result<ChromaSiting, String> {
    ChromaSiting::parse(text).ok_or_else(|| format!("{text:?} is not a siting; one of left, center, topleft"))
}

/// An output destination, opened before any work (a bad path fails first).
fn open_output(target: &str) -> anyhow::Result<Box<dyn Write>> {
    if target == "-" {
        return Ok(Box::new(std::io::stdout()));
    }
    let file = std::fs::File::create(target).map_err(|e| UsageError(format!("cannot write {target}: {e}")))?;
    Ok(Box::new(std::io::BufWriter::new(file)))
}

/// Pooled values in the order of the CSV and JSON.
const POOLS: [(&str, Pooling); 5] = [
    ("mean", Pooling::Mean),
    ("harmonic_mean", Pooling::HarmonicMean),
    ("min", Pooling::Min),
    ("max", Pooling::Max),
    ("median", Pooling::Percentile(50.0)),
];

pub fn run(args: &VideoArgs, options: &RunOptions) -> anyhow::Result<Outcome> {
    let names: Vec<String> =
        args.metrics.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect();
    if names.is_empty() {
        return Err(UsageError("no metric: give -m METRICS (e.g. -m psnr,ssim,lpips)".into()).into());
    }
    for name in &names {
        let status = metric_status(name).map_err(|e| UsageError(e.message))?;
        if status.info.mode == Mode::FullReference && args.reference.is_none() {
            return Err(UsageError(format!("{name} is full-reference: give the reference video with --ref")).into());
        }
    }
    if args.subsample == 0 || args.workers == 0 {
        return Err(UsageError("--subsample and --workers take a number from 1".into()).into());
    }
    let stdin = |p: &Path| p.as_os_str() == "-";
    if args.reference.as_deref().is_some_and(stdin) && stdin(&args.dist) {
        return Err(UsageError("only one of --dist and --ref can be standard input (-)".into()).into());
    }
    if [&args.csv, &args.json].iter().filter(|o| o.as_deref() == Some("-")).count() > 1 {
        return Err(UsageError("only one output can go to stdout (-)".into()).into());
    }
    let raw = match (args.size, args.pixfmt) {
        (Some((width, height)), Some(format)) => Some(RawFormat { width, height, format }),
        (None, None) => None,
        _ => return Err(UsageError("--size and --pixfmt go together (raw video)".into()).into()),
    };
    let choice = ColorChoice { matrix: args.matrix, range: args.range, siting: args.siting };
    let mut csv = args.csv.as_deref().map(open_output).transpose()?;
    let mut json_out = args.json.as_deref().map(open_output).transpose()?;

    let mut dist = open_video(&args.dist, raw, choice)?;
    let mut reference = args.reference.as_deref().map(|p| open_video(p, raw, choice)).transpose()?;
    if let Some(r) = &reference {
        let (d, r) = (dist.info(), r.info());
        if (d.width, d.height) != (r.width, r.height) || d.format != r.format {
            anyhow::bail!(
                "the videos differ: --dist is {}x{} {}, --ref is {}x{} {}",
                d.width,
                d.height,
                d.format.name(),
                r.width,
                r.height,
                r.format.name()
            );
        }
    }
    let workers = args.workers as usize;
    options.set_threads(options.threads().div_ceil(workers));
    let stream_options = StreamOptions {
        metric: options.metric_options(),
        subsample: args.subsample,
        threads: workers,
        ..Default::default()
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut stream = Stream::open(&refs, &stream_options)?;
    interrupt::install();
    let start = Instant::now();
    let mut progress = Progress::new(estimated_frames(&args.dist, dist.as_ref()), "frames", !options.quiet);
    let mut interrupted = false;
    loop {
        if interrupt::requested() {
            interrupted = true;
            break;
        }
        let frame_number = dist.frames_read();
        let Some(d) = dist.read_frame()? else {
            if let Some(r) = reference.as_mut() {
                if !args.shortest && r.read_frame()?.is_some() {
                    anyhow::bail!(
                        "--ref is longer than --dist ({frame_number} frames); --shortest stops at the shorter one"
                    );
                }
            }
            break;
        };
        let r = match reference.as_mut() {
            None => None,
            Some(r) => match r.read_frame()? {
                Some(frame) => Some(frame),
                None if args.shortest => break,
                None => anyhow::bail!(
                    "--dist is longer than --ref ({frame_number} frames); --shortest stops at the shorter one"
                ),
            },
        };
        stream.push(&d, r.as_ref()).map_err(|e| anyhow::anyhow!("frame {frame_number}: {e}"))?;
        progress.inc();
    }
    stream.flush()?;
    progress.finish();
    let seconds = start.elapsed().as_secs_f64();
    let frames = stream.frames_pushed();
    let info = *dist.info();
    let mut pooled: Vec<Vec<Option<f64>>> = Vec::new();
    for m in 0..names.len() {
        pooled.push(POOLS.iter().map(|(_, p)| stream.pooled(m, *p).ok()).collect());
    }
    let per_frame: Vec<(u64, Vec<f64>)> =
        (0..frames).filter_map(|f| stream.frame_scores(f).map(|scores| (f, scores))).collect();

    if let Some(out) = csv.as_mut() {
        writeln!(out, "frame,metric,score")?;
        for (f, scores) in &per_frame {
            for (name, score) in names.iter().zip(scores) {
                writeln!(out, "{f},{name},{}", number(*score))?;
            }
        }
        for (name, values) in names.iter().zip(&pooled) {
            for ((pool, _), value) in POOLS.iter().zip(values) {
                writeln!(out, "{pool},{name},{}", value.map(number).unwrap_or_default())?;
            }
        }
        out.flush()?;
    }
    if let Some(out) = json_out.as_mut() {
        let frames_json: Vec<Value> = per_frame
            .iter()
            .map(|(f, scores)| {
                let metrics: Map<String, Value> =
                    names.iter().zip(scores).map(|(n, s)| (n.clone(), finite(*s))).collect();
                json!({ "frameNum": f, "metrics": metrics })
            })
            .collect();
        let pooled_json: Map<String, Value> = names
            .iter()
            .zip(&pooled)
            .map(|(name, values)| {
                let fields: Map<String, Value> = POOLS
                    .iter()
                    .zip(values)
                    .map(|((pool, _), v)| (pool.to_string(), v.map_or(Value::Null, finite)))
                    .collect();
                (name.clone(), Value::Object(fields))
            })
            .collect();
        let document = json!({
            "iqa_version": iqa::VERSION,
            "interrupted": interrupted,
            "run": {
                "dist": args.dist.display().to_string(),
                "ref": args.reference.as_ref().map(|p| p.display().to_string()),
                "width": info.width, "height": info.height, "format": info.format.name(),
                "matrix": format!("{:?}", info.color.matrix), "range": format!("{:?}", info.color.range),
                "siting": format!("{:?}", info.color.siting),
                "frames": frames, "scored": per_frame.len(), "subsample": args.subsample,
                "workers": workers, "threads": options.threads(),
                "seconds": seconds, "fps": if seconds > 0.0 { frames as f64 / seconds } else { 0.0 },
            },
            "frames": frames_json,
            "pooled_metrics": pooled_json,
        });
        serde_json::to_writer_pretty(&mut *out, &document)?;
        writeln!(out)?;
        out.flush()?;
    }
    if args.csv.as_deref() != Some("-") && args.json.as_deref() != Some("-") {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{frames} frames ({} scored), {:.1} frames/s",
            per_frame.len(),
            frames as f64 / seconds.max(1e-9)
        )?;
        writeln!(
            out,
            "{:<14} {:>14} {:>14} {:>14} {:>14} {:>14}",
            "metric", "mean", "harmonic_mean", "min", "max", "median"
        )?;
        for (name, values) in names.iter().zip(&pooled) {
            let cells: Vec<String> = values.iter().map(|v| v.map_or("-".into(), |v| format!("{v:.6}"))).collect();
            writeln!(out, "{name:<14} {}", cells.iter().map(|c| format!("{c:>14}")).collect::<Vec<_>>().join(" "))?;
        }
    }
    Ok(if interrupted { Outcome::Interrupted } else { Outcome::Done })
}

/// Frames a regular file holds at most (for the progress bar); 0 for pipes.
fn estimated_frames(path: &Path, reader: &dyn FrameReader) -> u64 {
    let info = reader.info();
    let frame = iqa::image::packed_frame_len(info.width, info.height, info.format).unwrap_or(0) as u64;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && frame > 0 => m.len() / frame,
        _ => 0,
    }
}

/// The shortest decimal that reads back to the same double; `NaN` for NaN.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v:?}")
    }
}

fn finite(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}
