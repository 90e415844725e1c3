//! What a video frame costs beyond its RGB image: per metric, the median time to score a 1920×1080 I420 pair
//! (conversion included) beside scoring the same pixels given as RGB (float32, and rounded to 8 bits), and the
//! conversion alone (into RGB planes, the tensor layout) for each chroma siting. Also frames per second
//! through a `Stream` (one worker) for the metrics together.
//!
//! `cargo run --release --example frame_cost [METRIC ...]` (default psnr ssim lpips; IQA_WEIGHTS_DIR for lpips).
//! IQA_NUM_THREADS sets the threads. Prints a Markdown table.
#[path = "support/timing.rs"]
mod timing;
use iqa::{
    create_metric, ChromaSiting, ColorSpec, Frame, FrameFormat, Image, Options, PixelFormat, Stream, StreamOptions,
};
use std::time::Instant;
use timing::median_seconds;

const W: usize = 1920;
const H: usize = 1080;

/// Packed I420 planes with texture, an edge pattern and noise, different per `seed`.
fn i420(seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(747796405).wrapping_add(2891336453);
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 9) as i32 - 4
    };
    let luma = (0..W * H).map(|i| {
        let (x, y) = ((i % W) as f32, (i / W) as f32);
        let v = 128.0
            + 60.0 * (x / 37.0).sin() * (y / 23.0).cos()
            + if (x as usize / 64 + y as usize / 64).is_multiple_of(2) { 20.0 } else { -20.0 };
        (v as i32 + noise()).clamp(16, 235) as u8
    });
    let chroma = (0..W * H / 2).map(|i| (128 + ((i % (W / 2)) as i32 / 30 - 16)) as u8);
    luma.collect::<Vec<_>>().into_iter().chain(chroma).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> =
        if args.is_empty() { vec!["psnr", "ssim", "lpips"] } else { args.iter().map(String::as_str).collect() };
    let (dist, reference) = (i420(1), i420(2));
    let (d, r) = (frame(&dist), frame(&reference));
    let (rgb_d, rgb_r) = (d.to_rgb_f32(), r.to_rgb_f32());
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>();
    let rounded = |v: &[f32]| v.iter().map(|x| (x * 255.0).round() as u8).collect::<Vec<u8>>();
    let (fd, fr) = (bytes(&rgb_d), bytes(&rgb_r));
    let (bd, br) = (rounded(&rgb_d), rounded(&rgb_r));
    let mut planes = vec![0f32; 3 * W * H];
    let sitings = [("left", ChromaSiting::Left), ("center", ChromaSiting::Center), ("topleft", ChromaSiting::TopLeft)];
    let convert: Vec<String> = sitings
        .iter()
        .map(|&(name, siting)| {
            let sited =
                Frame::packed(&dist, W as u32, H as u32, FrameFormat::I420, ColorSpec { siting, ..d.color() }).unwrap();
            format!("{name} {:.2} ms", 1e3 * median_seconds(21, || sited.write_rgb_planes(&mut planes).unwrap()))
        })
        .collect();
    println!(
        "1920x1080 I420, {} threads; conversion alone (to RGB f32 planes), by chroma siting: {}\n",
        tch_threads(),
        convert.join(", ")
    );
    println!("| metric | frame (YUV) ms | RGB f32 buffer ms | RGB8 buffer ms | frame / RGB f32 | frame / RGB8 |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for name in &names {
        let metric = create_metric(name, &Options::default()).unwrap();
        let runs = if *name == "psnr" { 21 } else { 7 };
        let yuv = median_seconds(runs, || {
            metric.score_frame(&d, Some(&r)).unwrap();
        });
        let f32_time = median_seconds(runs, || {
            metric.score(&image(&fd, PixelFormat::RgbF32), Some(&image(&fr, PixelFormat::RgbF32))).unwrap();
        });
        let u8_time = median_seconds(runs, || {
            metric.score(&image(&bd, PixelFormat::Rgb8), Some(&image(&br, PixelFormat::Rgb8))).unwrap();
        });
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            1e3 * yuv,
            1e3 * f32_time,
            1e3 * u8_time,
            yuv / f32_time,
            yuv / u8_time
        );
    }
    // The metrics together through a stream: each frame converted once for all of them.
    let frames = 12;
    let mut stream = Stream::open(&names, &StreamOptions::default()).unwrap();
    stream.push(&d, Some(&r)).unwrap();
    stream.flush().unwrap();
    let t = Instant::now();
    for i in 0..frames {
        let (a, b) = if i % 2 == 0 { (&d, &r) } else { (&r, &d) };
        stream.push(a, Some(b)).unwrap();
    }
    stream.flush().unwrap();
    let seconds = t.elapsed().as_secs_f64();
    println!("\nstream of {} ({frames} frames, 1 worker): {:.2} frames/s", names.join("+"), frames as f64 / seconds);
}

fn frame(bytes: &[u8]) -> Frame<'_> {
    Frame::packed(bytes, W as u32, H as u32, FrameFormat::I420, ColorSpec::default()).unwrap()
}

fn image(bytes: &[u8], format: PixelFormat) -> Image<'_> {
    Image::new(bytes, W as u32, H as u32, 0, format).unwrap()
}

fn tch_threads() -> String {
    std::env::var("IQA_NUM_THREADS").unwrap_or_else(|_| "all".into())
}
