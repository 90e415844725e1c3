//! A new user's machine through the C ABI (own test binary: it sets IQA_* variables in its process). With HOME,
//! IQA_WEIGHTS_DIR, IQA_CACHE_DIR and TORCH_HOME empty and IQA_OFFLINE=1: iqa_metric_status says every classical
//! metric is ready (niqe, brisque, ilniqe built in) and every deep one missing, naming the backbone and its URL;
//! the classical ones are created and score, the deep ones are IQA_ERR_WEIGHTS naming what to download. With a
//! torch hub laid out as pyiqa leaves it, the deep metrics are ready and score. Also iqa_metric_status's
//! argument checks and its text buffer contract.
mod common;
use common::*;
use iqa::ffi::*;
use std::ffi::{CStr, CString};
use std::ptr;

fn last_error() -> String {
    unsafe { CStr::from_ptr(iqa_last_error()) }.to_string_lossy().into_owned()
}

fn fresh_status() -> IqaMetricStatus {
    IqaMetricStatus {
        struct_size: std::mem::size_of::<IqaMetricStatus>() as u32,
        availability: IqaAvailability::IQA_AVAILABILITY_MISSING,
        mode: IqaMode::IQA_MODE_FR,
        lower_better: false,
        score_min: 0.0,
        score_max: 0.0,
        text_len: 0,
    }
}

/// The status and its whole text, through the two-call protocol (size first, then the text).
fn status(name: &str) -> (IqaStatus, IqaMetricStatus, String) {
    let c = CString::new(name).unwrap();
    let mut st = fresh_status();
    let code = unsafe { iqa_metric_status(c.as_ptr(), &mut st, ptr::null_mut(), 0) };
    if code != IqaStatus::IQA_OK {
        return (code, st, String::new());
    }
    let mut buf = vec![0x55u8; st.text_len];
    let code = unsafe { iqa_metric_status(c.as_ptr(), &mut st, buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(code, IqaStatus::IQA_OK);
    assert_eq!(buf[st.text_len - 1], 0);
    let text = CStr::from_bytes_with_nul(&buf).unwrap().to_string_lossy().into_owned();
    (code, st, text)
}

fn score_i03(name: &str) -> Result<f64, (IqaStatus, String)> {
    let c = CString::new(name).unwrap();
    let mut handle = ptr::null_mut();
    let code = unsafe { iqa_metric_create(c.as_ptr(), ptr::null(), &mut handle) };
    if code != IqaStatus::IQA_OK {
        return Err((code, last_error()));
    }
    let (d, r) = (calibration("dist", "I03.bmp"), calibration("ref", "I03.bmp"));
    let (d, r) = (CString::new(d.to_str().unwrap()).unwrap(), CString::new(r.to_str().unwrap()).unwrap());
    let mut info = std::mem::MaybeUninit::<IqaMetricInfo>::uninit();
    assert_eq!(unsafe { iqa_metric_info(handle, info.as_mut_ptr()) }, IqaStatus::IQA_OK);
    let fr = unsafe { info.assume_init() }.mode == IqaMode::IQA_MODE_FR;
    let mut score = f64::NAN;
    let code = unsafe { iqa_score_files(handle, d.as_ptr(), if fr { r.as_ptr() } else { ptr::null() }, &mut score) };
    unsafe { iqa_metric_free(handle) };
    assert_eq!(code, IqaStatus::IQA_OK, "{name}: {}", last_error());
    Ok(score)
}

#[test]
fn a_fresh_machine_through_the_c_abi() {
    let shared = require_weights_dir();
    let machine = FreshMachine::new(&profile_dir().join(format!("fresh-machine-ffi-{}", std::process::id())));
    for (k, v) in machine.vars() {
        std::env::set_var(k, v);
    }
    std::env::remove_var("XDG_CACHE_HOME");
    std::env::set_var("IQA_OFFLINE", "1");

    let names: Vec<String> = (0..iqa_metric_count())
        .map(|i| unsafe { CStr::from_ptr(iqa_metric_name(i)) }.to_string_lossy().into_owned())
        .collect();
    let zoo = zoo_metrics();
    assert_eq!(names.len(), 23 + zoo.len());
    for name in &names {
        let (code, st, text) = status(name);
        assert_eq!(code, IqaStatus::IQA_OK, "{name}: {}", last_error());
        assert_eq!(st.struct_size as usize, std::mem::size_of::<IqaMetricStatus>());
        assert_eq!(st.text_len, text.len() + 1);
        if zoo.contains(name) {
            // The zoo's checkpoints: missing here, named with their store's URL.
            assert_eq!(st.availability, IqaAvailability::IQA_AVAILABILITY_MISSING, "{name}: {text}");
            assert!(text.contains("missing: ") && text.contains(zoo_store(name)), "{text}");
            let (code, message) = score_i03(name).unwrap_err();
            assert_eq!(code, IqaStatus::IQA_ERR_WEIGHTS, "{name}: {message}");
            assert!(message.contains("IQA_OFFLINE") || message.contains("no verified sha256"), "{message}");
        } else if NEEDS_BACKBONE.contains(&name.as_str()) {
            assert_eq!(st.availability, IqaAvailability::IQA_AVAILABILITY_MISSING, "{name}: {text}");
            assert!(text.contains(": built in") && text.contains("missing: ") && text.contains("https://"), "{text}");
            assert!(st.lower_better && st.mode == IqaMode::IQA_MODE_FR && st.score_max == 1.0, "{name}");
            let (code, message) = score_i03(name).unwrap_err();
            assert_eq!(code, IqaStatus::IQA_ERR_WEIGHTS, "{name}: {message}");
            assert!(message.contains("https://download.pytorch.org/models/") && message.contains("IQA_OFFLINE"));
        } else {
            assert_eq!(st.availability, IqaAvailability::IQA_AVAILABILITY_READY, "{name}: {text}");
            let score = score_i03(name).unwrap_or_else(|(c, m)| panic!("{name}: {c:?} {m}"));
            assert!(score.is_finite(), "{name}: {score}");
        }
        if ["niqe", "brisque", "ilniqe"].contains(&name.as_str()) {
            assert!(text.ends_with(": built in") && !text.contains('\n'), "{name}: {text}");
        }
    }
    let (_, st, text) = status("psnr");
    assert_eq!((text.as_str(), st.mode, st.lower_better), ("needs no pretrained file", IqaMode::IQA_MODE_FR, false));
    assert_eq!((st.score_min, st.score_max), (0.0, 40.0));

    // pyiqa's cache: ready, found there, and scoring.
    machine.fill_torch_hub(&shared);
    for name in NEEDS_BACKBONE {
        let (_, st, text) = status(name);
        assert_eq!(st.availability, IqaAvailability::IQA_AVAILABILITY_READY, "{name}: {text}");
        assert!(text.contains(&format!("found at {}", machine.torch_home.join("hub/checkpoints").display())), "{text}");
        assert!(score_i03(name).unwrap().is_finite());
    }
    // Online, a file that is not anywhere will be downloaded: the status says from where, and nothing is fetched.
    std::fs::remove_file(machine.torch_home.join("hub/checkpoints/vgg16-397923af.pth")).unwrap();
    std::env::set_var("IQA_OFFLINE", "0");
    let (_, st, text) = status("dists");
    assert_eq!(st.availability, IqaAvailability::IQA_AVAILABILITY_DOWNLOAD, "{text}");
    let expected = format!(
        "DISTS_weights-f5e65c96.pth: built in\nvgg16-397923af.pth: will download from \
         https://download.pytorch.org/models/vgg16-397923af.pth into {}",
        machine.cache.display()
    );
    assert_eq!(text, expected);
    std::env::set_var("IQA_OFFLINE", "1");

    // The argument checks: *out and the text untouched on every error.
    let name = CString::new("lpips").unwrap();
    let mut st = fresh_status();
    let mut buf = [0x55u8; 16];
    let unchanged = |st: &IqaMetricStatus, buf: &[u8; 16]| st.text_len == 0 && buf.iter().all(|&b| b == 0x55);
    unsafe {
        assert_eq!(
            iqa_metric_status(ptr::null(), &mut st, buf.as_mut_ptr().cast(), 16),
            IqaStatus::IQA_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("NULL"));
        assert_eq!(
            iqa_metric_status(name.as_ptr(), ptr::null_mut(), ptr::null_mut(), 0),
            IqaStatus::IQA_ERR_INVALID_ARGUMENT
        );
        assert_eq!(iqa_metric_status(name.as_ptr(), &mut st, ptr::null_mut(), 5), IqaStatus::IQA_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("text is NULL but text_size is 5"), "{}", last_error());
        st.struct_size = 8;
        assert_eq!(
            iqa_metric_status(name.as_ptr(), &mut st, buf.as_mut_ptr().cast(), 16),
            IqaStatus::IQA_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("struct_size is 8"), "{}", last_error());
        st.struct_size = std::mem::size_of::<IqaMetricStatus>() as u32;
        for (unknown, needle) in
            [("uranker", "exists in pyiqa but is not built into iqa"), ("nope", "unknown metric 'nope'")]
        {
            let c = CString::new(unknown).unwrap();
            assert_eq!(
                iqa_metric_status(c.as_ptr(), &mut st, buf.as_mut_ptr().cast(), 16),
                IqaStatus::IQA_ERR_UNKNOWN_METRIC
            );
            assert!(last_error().contains(needle), "{}", last_error());
        }
        std::env::set_var("IQA_OFFLINE", "maybe");
        assert_eq!(
            iqa_metric_status(name.as_ptr(), &mut st, buf.as_mut_ptr().cast(), 16),
            IqaStatus::IQA_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("IQA_OFFLINE=\"maybe\""), "{}", last_error());
        std::env::set_var("IQA_OFFLINE", "1");
        assert!(unchanged(&st, &buf));
        // A short buffer: the text is cut at a character boundary and NUL-terminated; text_len is the full size.
        assert_eq!(iqa_metric_status(name.as_ptr(), &mut st, buf.as_mut_ptr().cast(), 16), IqaStatus::IQA_OK);
        assert_eq!(&buf[..16], b"LPIPS_v0.1_alex\0");
        assert!(st.text_len > 16);
    }
    let _ = std::fs::remove_dir_all(machine.home.parent().unwrap());
}
