//! One reference, many distorted images: per metric, the time to score 8 distorted images against one
//! reference pair by pair (`Metric::score`) beside preparing the reference once and scoring against it
//! (`Metric::prepare_reference` + `score_with_reference`), at 512×384 (calibration image I03) and 1920×1080
//! (the same image tiled), and whether every score is the same to the bit. Median of RUNS after a warm-up.
//!
//! `cargo run --release --example prepared_reference [METRIC ...]` (default lpips lpips-vgg dists ssim ssimc mad
//! psnr; IQA_WEIGHTS_DIR for the deep ones). IQA_NUM_THREADS sets the threads. Prints a Markdown table.
#[path = "support/timing.rs"]
mod timing;
use iqa::image::decode_file;
use iqa::{create_metric, Image, Options, PixelFormat};
use timing::median_seconds;

const LADDER: usize = 8;
const RUNS: usize = 3;

/// The reference's pixels tiled to `w`×`h`.
fn tiled(rgb: &[u8], (sw, sh): (usize, usize), (w, h): (usize, usize)) -> Vec<u8> {
    (0..h).flat_map(|y| (0..w).flat_map(move |x| &rgb[3 * ((y % sh) * sw + x % sw)..][..3])).copied().collect()
}

/// Eight distortions of `reference`: noise of growing strength.
fn ladder(reference: &[u8]) -> Vec<Vec<u8>> {
    (1..=LADDER)
        .map(|level| {
            let mut state = 2463534242u32.wrapping_add(level as u32);
            reference
                .iter()
                .map(|&v| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    let noise = (state % (8 * level as u32 + 1)) as i32 - 4 * level as i32;
                    (v as i32 + noise).clamp(0, 255) as u8
                })
                .collect()
        })
        .collect()
}

fn image(rgb: &[u8], w: usize, h: usize) -> Image<'_> {
    Image::new(rgb, w as u32, h as u32, 0, PixelFormat::Rgb8).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = if args.is_empty() {
        vec!["lpips", "lpips-vgg", "dists", "ssim", "ssimc", "mad", "psnr"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    let source = decode_file(std::path::Path::new("data/calibration/ref/I03.bmp")).expect("run from the repository");
    let small = (source.as_image().width() as usize, source.as_image().height() as usize);
    println!("{LADDER} distorted images per reference, {} threads, median of {RUNS}\n", tch::get_num_threads());
    println!("| metric | size | pair by pair ms | prepared ms | speed-up | scores equal |");
    println!("| --- | --- | ---: | ---: | ---: | --- |");
    for (w, h) in [small, (1920, 1080)] {
        let reference = tiled(source.bytes(), small, (w, h));
        let rungs = ladder(&reference);
        let dists: Vec<Image> = rungs.iter().map(|b| image(b, w, h)).collect();
        for name in &names {
            let metric = create_metric(name, &Options::default()).unwrap();
            let mut alone = Vec::new();
            let pairs = median_seconds(RUNS, || {
                alone = dists.iter().map(|d| metric.score(d, Some(&image(&reference, w, h))).unwrap()).collect();
            });
            let mut against = Vec::new();
            let prepared = median_seconds(RUNS, || {
                let prepared = metric.prepare_reference(&image(&reference, w, h)).unwrap();
                against = metric.score_with_reference(&dists, &prepared).unwrap();
            });
            let equal = alone.iter().zip(&against).all(|(a, b)| a.to_bits() == b.to_bits());
            println!(
                "| {name} | {w}×{h} | {:.1} | {:.1} | {:.2}× | {} |",
                1e3 * pairs,
                1e3 * prepared,
                pairs / prepared,
                if equal { "to the bit" } else { "NO" }
            );
        }
    }
}
