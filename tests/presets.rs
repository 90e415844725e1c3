//! Presets (IQA_PRESET / iqa_set_preset) and reduced precision. Own binary: presets are process-wide.
mod common;
use common::{decoded, require_weights_dir};
use iqa::ffi::{iqa_last_error, iqa_set_preset, IqaStatus};
use iqa::{create_metric, set_preset, Options, Precision, Preset};
use std::ffi::{CStr, CString};

fn pair(image: &str) -> (iqa::image::DecodedImage, iqa::image::DecodedImage) {
    (decoded("dist", image), decoded("ref", image))
}

#[test]
fn presets_set_precision_and_batch_policy_and_unknown_names_are_refused() {
    require_weights_dir();
    let fp32 = Options { precision: Some(Precision::Fp32), ..Default::default() };
    let lpips32 = create_metric("lpips", &fp32).unwrap();
    let (d, r) = pair("I03.bmp");
    let want = lpips32.score(&d.as_image(), Some(&r.as_image())).unwrap();

    // speed: bf16 for the metrics that honour it (within 1e-3 of fp32), fp32 for the others.
    set_preset(Preset::Speed).unwrap();
    let lpips = create_metric("lpips", &Options::default()).unwrap();
    assert_eq!(lpips.precision(), Precision::Bf16);
    assert!(!lpips.shares_model_with(&lpips32));
    let got = lpips.score(&d.as_image(), Some(&r.as_image())).unwrap();
    assert!((got - want).abs() < 1e-3 && got != want, "bf16 {got} vs fp32 {want}");
    let ssim = create_metric("ssim", &Options::default()).unwrap();
    assert_eq!(ssim.precision(), Precision::Fp32);
    // The same through C.
    unsafe {
        use iqa::ffi::{iqa_metric_create, iqa_metric_free, iqa_metric_precision, IqaPrecision};
        for (name, want) in [("lpips", IqaPrecision::IQA_PRECISION_BF16), ("ssim", IqaPrecision::IQA_PRECISION_FP32)] {
            let c_name = CString::new(name).unwrap();
            let mut handle = std::ptr::null_mut();
            assert_eq!(iqa_metric_create(c_name.as_ptr(), std::ptr::null(), &mut handle), IqaStatus::IQA_OK);
            let mut got = IqaPrecision::IQA_PRECISION_FP16;
            assert_eq!(iqa_metric_precision(handle, &mut got), IqaStatus::IQA_OK);
            assert_eq!(got, want, "{name}");
            assert_eq!(iqa_metric_precision(handle, std::ptr::null_mut()), IqaStatus::IQA_ERR_INVALID_ARGUMENT);
            iqa_metric_free(handle);
        }
    }

    // memory: one image per forward pass, same scores as a whole batch.
    let images = ["I03.bmp", "I04.bmp", "I06.bmp"];
    let pairs: Vec<_> = images.iter().map(|i| pair(i)).collect();
    let dists: Vec<_> = pairs.iter().map(|p| p.0.as_image()).collect();
    let refs: Vec<_> = pairs.iter().map(|p| p.1.as_image()).collect();
    let whole = lpips32.score_batch(&dists, Some(&refs)).unwrap();
    set_preset(Preset::Memory).unwrap();
    assert_eq!(iqa::current_preset(), Preset::Memory);
    let one_by_one = lpips32.score_batch(&dists, Some(&refs)).unwrap();
    for (a, b) in whole.iter().zip(&one_by_one) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    assert_eq!(create_metric("lpips", &Options::default()).unwrap().precision(), Precision::Fp32);

    // The C entry point.
    let unknown = CString::new("fastest").unwrap();
    unsafe {
        assert_eq!(iqa_set_preset(unknown.as_ptr()), IqaStatus::IQA_ERR_INVALID_ARGUMENT);
        let msg = CStr::from_ptr(iqa_last_error()).to_string_lossy().into_owned();
        assert!(msg.contains("fastest") && msg.contains("speed, memory, accuracy"), "{msg}");
        assert_eq!(iqa_set_preset(std::ptr::null()), IqaStatus::IQA_ERR_INVALID_ARGUMENT);
        let accuracy = CString::new("accuracy").unwrap();
        assert_eq!(iqa_set_preset(accuracy.as_ptr()), IqaStatus::IQA_OK);
    }
    assert_eq!(iqa::current_preset(), Preset::Accuracy);
}
