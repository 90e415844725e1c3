//! `iqa map`: a metric's per-pixel map of a pair, written as a heat map: black (the map's smallest value)
//! through red and yellow to white (its largest), with the map's size, range and mean printed.
use crate::options::RunOptions;
use crate::Outcome;
use iqa::create_metric;
use iqa::image::decode_file;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct MapArgs {
    /// lpips*, ssim, ssimc, psnr, psnry or gmsd.
    metric: String,
    /// The distorted image.
    dist: PathBuf,
    /// The reference image.
    reference: PathBuf,
    /// The heat map to write (PNG).
    out: PathBuf,
}

pub fn run(args: &MapArgs, options: &RunOptions) -> anyhow::Result<Outcome> {
    options.set_threads(options.threads());
    let metric = create_metric(&args.metric, &options.metric_options())?;
    let (d, r) = (decode_file(&args.dist)?, decode_file(&args.reference)?);
    let map = metric.score_map(&d.as_image(), &r.as_image())?;
    let (w, h) = (map.width, map.height);
    let min = map.values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = map.values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mean = map.values.iter().map(|&v| v as f64).sum::<f64>() / map.values.len().max(1) as f64;
    let span = (max - min).max(f32::MIN_POSITIVE);
    let heat = image::RgbImage::from_fn(w, h, |x, y| {
        let t = ((map.values[(y * w + x) as usize] - min) / span).clamp(0.0, 1.0);
        let ramp = |lo: f32| ((t * 3.0 - lo).clamp(0.0, 1.0) * 255.0).round() as u8;
        image::Rgb([ramp(0.0), ramp(1.0), ramp(2.0)])
    });
    heat.save(&args.out)?;
    println!("{} map {w}x{h}: min {min:.6} max {max:.6} mean {mean:.6} -> {}", args.metric, args.out.display());
    Ok(Outcome::Done)
}
