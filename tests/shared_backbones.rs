//! Two metrics over the same backbone hold one copy of it, and it is freed with its last user. One test in
//! its own binary: the counts are process-wide. Needs IQA_WEIGHTS_DIR.
mod common;
use iqa::{cache_stats, create_metric, CacheStats, Options};

/// Backbones loaded now (only VGG16 can be, in this test).
fn shared_parts() -> usize {
    cache_stats().shared_parts_alive
}

#[test]
fn lpips_vgg_and_dists_share_one_vgg16() {
    common::require_weights_dir();
    assert_eq!(shared_parts(), 0);
    let a = create_metric("lpips-vgg", &Options::default()).unwrap();
    let b = create_metric("dists", &Options::default()).unwrap();
    let c = create_metric("lpips-vgg", &Options::default()).unwrap();
    assert_eq!(shared_parts(), 1, "one VGG16 for lpips-vgg and dists");
    assert_eq!(cache_stats(), CacheStats { models_alive: 2, handles_alive: 3, shared_parts_alive: 1 });
    drop((a, c));
    assert_eq!(shared_parts(), 1, "dists still holds it");
    drop(b);
    assert_eq!(shared_parts(), 0, "freed with its last user");
    assert_eq!(cache_stats(), CacheStats { models_alive: 0, handles_alive: 0, shared_parts_alive: 0 });
}
