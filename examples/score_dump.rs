//! Prints every built-in metric's score on every pyiqa reference row (tests/data/*references.csv: calibration
//! files, crops, tiles, JPEG and gray inputs), in a batch, from float32 buffers and in bf16, with all 17
//! digits. A refactoring that must keep every score diffs this output before and after:
//! `cargo run --release --example score_dump > before.txt`; metric names as arguments dump only those.
#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

fn main() {
    let dir = root().join("tests/data");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            n.ends_with("references.csv") && !["fr_nan_references.csv", "yuv_references.csv"].contains(&n.as_str())
        })
        .collect();
    files.sort();
    let mut rows: Vec<(String, Reference)> = Vec::new();
    for f in &files {
        rows.extend(references_from(f).into_iter().map(|r| (f.clone(), r)));
    }
    let only: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<String> = iqa::metric_names().into_iter().filter(|n| only.is_empty() || only.contains(n)).collect();
    for name in &names {
        let metric = match iqa::create_metric(name, &iqa::Options::default()) {
            Ok(m) => m,
            Err(e) => {
                println!("{name},create,{:?}", e.kind);
                continue;
            }
        };
        // Smooth rows (gradients made by their own test) have no pixels here.
        let scored = |r: &&Reference| &r.metric == name && !matches!(r.region, Region::Smooth { .. });
        for (file, r) in rows.iter().filter(|(_, r)| scored(&r)) {
            let got = score_reference(&metric, r);
            println!("{name},{file},{},{:?},{}", r.image, r.region, fmt(got));
        }
        let fr = metric.info().mode == iqa::Mode::FullReference;
        let pairs: Vec<_> = IMAGES.iter().map(|i| (decoded("dist", i), decoded("ref", i))).collect();
        let d: Vec<iqa::Image> = pairs.iter().map(|p| p.0.as_image()).collect();
        let rf: Vec<iqa::Image> = pairs.iter().map(|p| p.1.as_image()).collect();
        match metric.score_batch(&d, fr.then_some(&rf[..])) {
            Ok(s) => s.iter().zip(IMAGES).for_each(|(s, i)| println!("{name},batch,{i},{s:?}")),
            Err(e) => println!("{name},batch,err,{:?}", e.kind),
        }
        let floats = |p: &iqa::image::DecodedImage| p.bytes().iter().map(|&b| b as f32 / 255.0).collect::<Vec<f32>>();
        for (image, (dp, rp)) in IMAGES.iter().zip(&pairs) {
            let (w, h) = (dp.as_image().width(), dp.as_image().height());
            let (df, rff) = (floats(dp), floats(rp));
            let bytes = |v: &Vec<f32>| v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>();
            let (db, rb) = (bytes(&df), bytes(&rff));
            let di = iqa::Image::new(&db, w, h, 0, iqa::PixelFormat::RgbF32).unwrap();
            let ri = iqa::Image::new(&rb, w, h, 0, iqa::PixelFormat::RgbF32).unwrap();
            println!("{name},f32,{image},{}", fmt(metric.score(&di, fr.then_some(&ri))));
        }
        let bf16 = iqa::Options { precision: Some(iqa::Precision::Bf16), ..Default::default() };
        if let Ok(m) = iqa::create_metric(name, &bf16) {
            for image in IMAGES {
                let reference = calibration("ref", image);
                let got = m.score_files(&calibration("dist", image), fr.then_some(reference.as_path()));
                println!("{name},bf16,{image},{}", fmt(got));
            }
        }
    }
}

fn fmt(r: iqa::Result<f64>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("err {:?}", e.kind),
    }
}
