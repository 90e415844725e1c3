//! One handle shared by 8 threads gives exactly the single-threaded scores (fsim: iqa's own CPU kernels, run on
//! libtorch's OpenMP team from every calling thread).
mod common;
use common::*;
use iqa::{create_metric, Options};
use std::sync::Arc;

#[test]
fn eight_threads_on_one_handle_match_single_threaded_results() {
    let pairs: Arc<Vec<_>> = Arc::new(IMAGES.iter().map(|i| (decoded("dist", i), decoded("ref", i))).collect());
    for name in ["ssim", "ms_ssim", "psnr", "fsim"] {
        let metric = Arc::new(create_metric(name, &Options::default()).unwrap());
        let single: Vec<f64> =
            pairs.iter().map(|(d, r)| metric.score(&d.as_image(), Some(&r.as_image())).unwrap()).collect();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (metric, pairs) = (metric.clone(), pairs.clone());
                std::thread::spawn(move || {
                    let mut out = Vec::new();
                    for round in 0..3 {
                        // Each thread walks the images in its own order.
                        for k in 0..pairs.len() {
                            let i = (k + t + round) % pairs.len();
                            let (d, r) = &pairs[i];
                            out.push((i, metric.score(&d.as_image(), Some(&r.as_image())).unwrap()));
                        }
                    }
                    out
                })
            })
            .collect();
        for t in threads {
            for (i, s) in t.join().unwrap() {
                assert_eq!(s, single[i], "{name} image {i}");
            }
        }
    }
}
