//! Large images: metrics that cannot be tiled refuse images above 4 MP with a shape error naming the limit
//! (that LPIPS in tiles equals one pass is a unit test of metrics/lpips.rs).
mod common;
use common::require_weights_dir;
use iqa::{create_metric, ErrorKind, Options};

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
