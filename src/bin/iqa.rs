//! Command-line front end over the safe API.
//!   iqa demo [DIR]                 score DIR/dist/* against DIR/ref/* with every metric (default data/calibration)
//!   iqa score METRIC DIST [REF]    print one score
//!   iqa list                       metric names with mode and direction
//!   iqa map METRIC DIST REF OUT    write the metric's per-pixel distance map as a PNG heat map (lpips*)
use iqa::{create_metric, metric_names, metric_status, Availability, Mode, Options};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

fn usage() -> ExitCode {
    eprintln!("usage: iqa demo [DIR] | iqa score METRIC DIST [REF] | iqa list | iqa map METRIC DIST REF OUT.png");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(Path::new(args.get(1).map(String::as_str).unwrap_or("data/calibration"))),
        Some("score") if args.len() == 3 || args.len() == 4 => score(&args[1], &args[2], args.get(3)),
        Some("list") => list(),
        Some("map") if args.len() == 5 => map(&args[1], &args[2], &args[3], &args[4]),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iqa: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every metric with its mode, direction, range and whether it is ready here (from `metric_status`: nothing is
/// created, so a missing file does not stop the listing).
fn list() -> anyhow::Result<()> {
    for name in metric_names() {
        let status = metric_status(&name)?;
        let info = &status.info;
        let mode = if info.mode == Mode::FullReference { "FR" } else { "NR" };
        let dir = if info.lower_better { "lower is better" } else { "higher is better" };
        let ready = match status.availability {
            Availability::Ready => "ready",
            Availability::Download => "downloads on first use",
            Availability::Missing => "missing files",
        };
        println!("{name:<14} {mode}  {dir:<16}  range {:?}  {ready}", info.score_range);
        for line in status.describe().lines() {
            println!("    {line}");
        }
    }
    Ok(())
}

fn score(name: &str, dist: &str, reference: Option<&String>) -> anyhow::Result<()> {
    let metric = create_metric(name, &Options::default())?;
    let s = metric.score_files(Path::new(dist), reference.map(Path::new))?;
    println!("{s}");
    Ok(())
}

fn demo(dir: &Path) -> anyhow::Result<()> {
    let mut images: Vec<PathBuf> = std::fs::read_dir(dir.join("dist"))
        .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.join("dist").display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    images.sort();
    let names = metric_names();
    print!("{:<10}", "image");
    for n in &names {
        print!("{n:>14}");
    }
    println!();
    let start = Instant::now();
    let metrics = names.iter().map(|n| create_metric(n, &Options::default())).collect::<Result<Vec<_>, _>>()?;
    for dist in &images {
        let file = dist.file_name().unwrap_or_default();
        let reference = dir.join("ref").join(file);
        print!("{:<10}", file.to_string_lossy());
        for m in &metrics {
            let r = (m.info().mode == Mode::FullReference).then_some(reference.as_path());
            print!("{:>14.6}", m.score_files(dist, r)?);
        }
        println!();
    }
    let dev = metrics.first().map(|m| format!("{:?}", m.device())).unwrap_or_default();
    println!("{} images x {} metrics on {dev} in {:.2} s", images.len(), metrics.len(), start.elapsed().as_secs_f64());
    Ok(())
}

/// Writes the distance map as a heat map: black (identical) through red and yellow to white (the largest
/// distance in this pair), and prints the map's range.
fn map(name: &str, dist: &str, reference: &str, out: &str) -> anyhow::Result<()> {
    let metric = create_metric(name, &Options::default())?;
    let (d, r) = (iqa::image::decode_file(Path::new(dist))?, iqa::image::decode_file(Path::new(reference))?);
    let map = metric.score_map(&d.as_image(), &r.as_image())?;
    let (w, h, values) = (map.width, map.height, map.values);
    let max = values.iter().cloned().fold(f32::MIN_POSITIVE, f32::max);
    let heat = image::RgbImage::from_fn(w, h, |x, y| {
        let t = (values[(y * w + x) as usize] / max).clamp(0.0, 1.0);
        let ramp = |lo: f32| ((t * 3.0 - lo).clamp(0.0, 1.0) * 255.0).round() as u8;
        image::Rgb([ramp(0.0), ramp(1.0), ramp(2.0)])
    });
    heat.save(out)?;
    let min = values.iter().cloned().fold(f32::MAX, f32::min);
    println!("{name} map {w}x{h}: min {min:.6} max {max:.6} -> {out}");
    Ok(())
}
