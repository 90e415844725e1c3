//! Large images: LPIPS is scored tile by tile above 4 MP (bounded peak memory) and must equal one pass;
//! metrics that cannot be tiled refuse such images with a shape error naming the limit.
mod common;
use common::{decoded, require_weights_dir};
use iqa::image::to_batch_tensor;
use iqa::registry::ModelKey;
use iqa::{create_metric, ErrorKind, Options, Precision};
use tch::{Device, Tensor};

/// The I03 pair repeated 3×3 (1536×1152): large enough for several tiles of 512 plus halo.
fn big_pair() -> (Tensor, Tensor) {
    let (d, r) = (decoded("dist", "I03.bmp"), decoded("ref", "I03.bmp"));
    let t =
        |img: &iqa::image::DecodedImage| to_batch_tensor(&[img.as_image()], Device::Cpu).unwrap().repeat([1, 1, 3, 3]);
    (t(&d), t(&r))
}

#[test]
fn lpips_in_tiles_equals_one_pass() {
    require_weights_dir();
    let (d, r) = big_pair();
    let _no_grad = tch::no_grad_guard();
    for net in ["alex", "squeeze", "vgg"] {
        let key =
            ModelKey { name: format!("lpips-{net}-tiling-test"), device: Device::Cpu, precision: Precision::Fp32 };
        let model = iqa::metrics::lpips::build(&key, net, false).unwrap();
        let whole = f64::try_from(model.forward(&d, Some(&r)).unwrap()).unwrap();
        let lpips = model.as_lpips().unwrap();
        let tiled = f64::try_from(lpips.score_in_tiles(&d, &r, 512).unwrap()).unwrap();
        let err = (tiled - whole).abs() / whole;
        println!("lpips {net}: one pass {whole}, 3x3 tiles of 512 {tiled}, relative {err:.1e}");
        assert!(err < 1e-5, "lpips {net}: tiled {tiled} vs one pass {whole}");
    }
}

#[test]
fn metrics_that_cannot_be_tiled_refuse_images_above_their_limit() {
    require_weights_dir();
    // 2100×2000 = 4.2 MP of gray, just above the 4 MP limit; the buffer is never read past the size check.
    let pixels = vec![128u8; 2100 * 2000];
    let image = iqa::Image::new(&pixels, 2100, 2000, 0, iqa::PixelFormat::Gray8).unwrap();
    for name in ["lpips+", "lpips-vgg+", "dists"] {
        let metric = create_metric(name, &Options::default()).unwrap();
        let err = metric.score(&image, Some(&image)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ShapeMismatch, "{name}: {err}");
        assert!(err.message.contains("2100x2000") && err.message.contains("at most 4.0 MP"), "{name}: {err}");
    }
}
