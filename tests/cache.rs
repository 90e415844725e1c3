//! The weak-reference model cache. One test in its own binary: the counts are process-wide.
use iqa::{cache_stats, create_metric, CacheStats, Options};

#[test]
fn handles_share_models_and_the_last_one_frees_them() {
    assert_eq!(cache_stats(), CacheStats { models_alive: 0, handles_alive: 0, shared_parts_alive: 0 });
    let a = create_metric("ssim", &Options::default()).unwrap();
    let b = create_metric("ssim", &Options::default()).unwrap();
    assert_eq!(cache_stats(), CacheStats { models_alive: 1, handles_alive: 2, shared_parts_alive: 0 });
    // ssim does not honour bf16 (it would move its scores): a bf16 handle runs, and shares, the fp32 model.
    let c = create_metric("ssim", &Options { precision: Some(iqa::Precision::Bf16), ..Default::default() }).unwrap();
    assert_eq!(c.precision(), iqa::Precision::Fp32);
    assert!(c.shares_model_with(&a));
    let d = create_metric("psnr", &Options::default()).unwrap();
    assert_eq!(cache_stats(), CacheStats { models_alive: 2, handles_alive: 4, shared_parts_alive: 0 });
    drop(a);
    assert_eq!(cache_stats(), CacheStats { models_alive: 2, handles_alive: 3, shared_parts_alive: 0 });
    drop(b);
    assert_eq!(
        cache_stats(),
        CacheStats { models_alive: 2, handles_alive: 2, shared_parts_alive: 0 },
        "c still holds ssim"
    );
    drop((c, d));
    assert_eq!(cache_stats(), CacheStats { models_alive: 0, handles_alive: 0, shared_parts_alive: 0 });

    // IQA_CACHE_SIZE keeps the N most recently freed models alive (LRU). Set before any other thread reads it:
    // this binary holds this single test.
    std::env::set_var("IQA_CACHE_SIZE", "1");
    drop(create_metric("ssim", &Options::default()).unwrap());
    assert_eq!(cache_stats(), CacheStats { models_alive: 1, handles_alive: 0, shared_parts_alive: 0 });
    drop(create_metric("psnr", &Options::default()).unwrap());
    assert_eq!(
        cache_stats(),
        CacheStats { models_alive: 1, handles_alive: 0, shared_parts_alive: 0 },
        "ssim evicted, psnr kept"
    );
    let again = create_metric("psnr", &Options::default()).unwrap();
    assert_eq!(
        cache_stats(),
        CacheStats { models_alive: 1, handles_alive: 1, shared_parts_alive: 0 },
        "psnr reused, not rebuilt"
    );
    std::env::set_var("IQA_CACHE_SIZE", "0");
    drop(again);
    assert_eq!(cache_stats(), CacheStats { models_alive: 0, handles_alive: 0, shared_parts_alive: 0 });
}
