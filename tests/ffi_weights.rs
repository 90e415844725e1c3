//! Through the C ABI: missing weights are IQA_ERR_WEIGHTS with *out untouched, and iqa_score_map's contract.
//! One test in its own binary, because it sets IQA_* variables before any other thread reads them.
mod common;
use common::*;
use iqa::ffi::*;
use std::ffi::{CStr, CString};
use std::ptr;

fn last_error() -> String {
    unsafe { CStr::from_ptr(iqa_last_error()) }.to_string_lossy().into_owned()
}

fn rgb8(img: &iqa::image::DecodedImage) -> IqaImage {
    let i = img.as_image();
    IqaImage {
        data: img.bytes().as_ptr().cast(),
        width: i.width(),
        height: i.height(),
        stride: 0,
        format: IqaPixelFormat::IQA_FORMAT_RGB8,
    }
}

#[test]
fn weights_errors_and_score_map_through_the_c_abi() {
    let shared = require_weights_dir();
    let empty = std::env::temp_dir().join(format!("iqa-ffi-weights-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    std::env::set_var("IQA_WEIGHTS_DIR", &empty);
    std::env::set_var("IQA_CACHE_DIR", &empty);
    std::env::set_var("IQA_OFFLINE", "1");

    let name = CString::new("lpips").unwrap();
    let sentinel = 0x1234usize as *mut IqaMetric;
    let mut handle = sentinel;
    let status = unsafe { iqa_metric_create(name.as_ptr(), ptr::null(), &mut handle) };
    assert_eq!(status, IqaStatus::IQA_ERR_WEIGHTS);
    assert_eq!(handle, sentinel, "*out untouched on error");
    let msg = last_error();
    assert!(msg.contains("lpips") && msg.contains("alexnet-owt-7be5be79.pth") && msg.contains("https://"), "{msg}");

    std::env::set_var("IQA_WEIGHTS_DIR", &shared);
    let status = unsafe { iqa_metric_create(name.as_ptr(), ptr::null(), &mut handle) };
    assert_eq!(status, IqaStatus::IQA_OK, "{}", last_error());

    let (d, r) = (decoded("dist", "I03.bmp"), decoded("ref", "I03.bmp"));
    let (dc, rc) = (rgb8(&d), rgb8(&r));
    let n = 512 * 384;
    let mut map = vec![-1f32; n];
    unsafe {
        assert_eq!(iqa_score_map(handle, &dc, &rc, map.as_mut_ptr(), n - 1), IqaStatus::IQA_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("512x384"), "{}", last_error());
        assert!(map.iter().all(|&v| v == -1.0), "map untouched on error");
        assert_eq!(iqa_score_map(handle, &dc, &rc, ptr::null_mut(), n), IqaStatus::IQA_ERR_INVALID_ARGUMENT);
        assert_eq!(iqa_score_map(handle, &dc, ptr::null(), map.as_mut_ptr(), n), IqaStatus::IQA_ERR_INVALID_ARGUMENT);
        assert_eq!(iqa_score_map(handle, &dc, &rc, map.as_mut_ptr(), n), IqaStatus::IQA_OK, "{}", last_error());
    }
    let mean = map.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    assert!((mean - 0.723698616027832).abs() < 1e-5, "map mean {mean}");
    let mut score = 0.0;
    assert_eq!(unsafe { iqa_score(handle, &dc, &rc, &mut score) }, IqaStatus::IQA_OK);
    assert!((score - 0.7236980199813843).abs() < 1e-5);
    unsafe { iqa_metric_free(handle) };

    // A metric without a map.
    let ms_ssim = CString::new("ms_ssim").unwrap();
    let mut h = ptr::null_mut();
    unsafe {
        assert_eq!(iqa_metric_create(ms_ssim.as_ptr(), ptr::null(), &mut h), IqaStatus::IQA_OK);
        assert_eq!(iqa_score_map(h, &dc, &rc, map.as_mut_ptr(), n), IqaStatus::IQA_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("no spatial map"));
        let (mut w, mut hh) = (7u32, 7u32);
        assert_eq!(iqa_map_size(h, 512, 384, &mut w, &mut hh), IqaStatus::IQA_ERR_INVALID_ARGUMENT);
        assert_eq!((w, hh), (7, 7), "untouched on error");
        iqa_metric_free(h);
    }

    // SSIM's map is smaller than the image ('valid' window): iqa_map_size says how much, and out_len is
    // checked against it; its mean is the score.
    let ssim = CString::new("ssim").unwrap();
    unsafe {
        assert_eq!(iqa_metric_create(ssim.as_ptr(), ptr::null(), &mut h), IqaStatus::IQA_OK);
        let (mut w, mut hh) = (0u32, 0u32);
        assert_eq!(iqa_map_size(h, 512, 384, &mut w, ptr::null_mut()), IqaStatus::IQA_OK);
        assert_eq!(iqa_map_size(h, 512, 384, ptr::null_mut(), &mut hh), IqaStatus::IQA_OK);
        assert_eq!((w, hh), (502, 374));
        assert_eq!(iqa_map_size(ptr::null(), 512, 384, &mut w, &mut hh), IqaStatus::IQA_ERR_INVALID_ARGUMENT);
        let m = 502 * 374;
        map.fill(-1.0);
        assert_eq!(iqa_score_map(h, &dc, &rc, map.as_mut_ptr(), m - 1), IqaStatus::IQA_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("502x374 map"), "{}", last_error());
        assert!(map.iter().all(|&v| v == -1.0), "map untouched on error");
        assert_eq!(iqa_score_map(h, &dc, &rc, map.as_mut_ptr(), m), IqaStatus::IQA_OK, "{}", last_error());
        assert!(map[m..].iter().all(|&v| v == -1.0), "nothing written past the map");
        let mean = map[..m].iter().map(|&v| v as f64).sum::<f64>() / m as f64;
        let mut score = 0.0;
        assert_eq!(iqa_score(h, &dc, &rc, &mut score), IqaStatus::IQA_OK);
        assert!((mean - score).abs() < 1e-6, "ssim map mean {mean} vs score {score}");
        iqa_metric_free(h);
    }
    std::fs::remove_dir_all(empty).ok();
}
