//! Faults in the weights folder between runs: the brisque parameters file is cut short, replaced by a file of
//! other tensors or by garbage; each is a clear `ErrorKind::Weights` naming the file, the cache directory gets
//! nothing, and once the file is back the score is the same to the bit. A file that disappears leaves brisque
//! its built-in copy of the same parameters: the same score. A file that changes
//! while a handle holds its model does not change that handle's scores (the model is in memory). One test in
//! its own binary: it points IQA_WEIGHTS_DIR at a folder of its own. (Downloads cut half-way or with a wrong
//! checksum, and an unwritable cache directory, are tested in src/weights/tests.rs with a local server.)
mod common;
use common::*;
use iqa::{create_metric, ErrorKind, Options};
use std::path::Path;

fn shared_weights() -> std::path::PathBuf {
    let dir = std::env::var_os("IQA_WEIGHTS_DIR").expect("IQA_WEIGHTS_DIR (the shared weights folder) is set");
    Path::new(&dir).to_path_buf()
}

fn brisque_score() -> iqa::Result<f64> {
    let metric = create_metric("brisque", &Options::default())?;
    metric.score(&decoded("dist", "I19.bmp").as_image(), None)
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_weights_file_that_changes_or_disappears_is_a_clear_error_and_nothing_is_left_behind() {
    let bytes = std::fs::read(shared_weights().join("brisque/brisque_live_svm.safetensors")).unwrap();
    let other = std::fs::read(shared_weights().join("niqe/niqe_pris_params.safetensors")).unwrap();
    let tmp = std::env::temp_dir().join(format!("iqa_reliability_faults_{}", std::process::id()));
    let (weights, cache) = (tmp.join("weights"), tmp.join("cache"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&weights).unwrap();
    let file = weights.join("brisque_live_svm.safetensors");
    std::fs::write(&file, &bytes).unwrap();
    // Set before any weights are looked up: this binary holds this single test.
    std::env::set_var("IQA_WEIGHTS_DIR", &weights);
    std::env::set_var("IQA_CACHE_DIR", &cache);
    std::env::set_var("IQA_OFFLINE", "1");

    let expected = brisque_score().unwrap();
    let holder = create_metric("brisque", &Options::default()).unwrap();

    let shown = file.display().to_string();
    let faults: [(&str, Option<Vec<u8>>, &str); 4] = [
        ("cut short", Some(bytes[..bytes.len() / 2].to_vec()), "not a valid safetensors file"),
        ("other tensors", Some(other), "key 'sv_coef'"),
        ("garbage", Some(b"not weights at all".to_vec()), "not a valid safetensors file"),
        // Not an error: the built-in copy of the same parameters is used.
        ("gone", None, ""),
    ];
    // While a handle lives, its model stays in memory: the damaged file changes nothing.
    for (what, content, _) in &faults {
        match content {
            Some(c) => std::fs::write(&file, c).unwrap(),
            None => std::fs::remove_file(&file).unwrap(),
        }
        let held = holder.score(&decoded("dist", "I19.bmp").as_image(), None).unwrap();
        assert_eq!(held.to_bits(), expected.to_bits(), "{what}: the live handle's score");
        let again = brisque_score().unwrap();
        assert_eq!(again.to_bits(), expected.to_bits(), "{what}: a new handle shares the loaded model");
    }
    drop(holder);
    // With no handle left the model is freed, and the next handle reads the file anew.
    for (what, content, needle) in faults {
        match &content {
            Some(c) => std::fs::write(&file, c).unwrap(),
            None => std::fs::remove_file(&file).unwrap(),
        }
        if content.is_none() {
            let built_in = brisque_score().unwrap();
            assert_eq!(built_in.to_bits(), expected.to_bits(), "{what}: the built-in parameters' score");
        } else {
            let e = brisque_score().expect_err(what);
            println!("{what}: {e}");
            assert_eq!(e.kind, ErrorKind::Weights, "{what}: {e}");
            assert!(e.message.contains(needle), "{what}: {e}");
            assert!(e.message.contains(&shown), "{what}: names the file: {e}");
        }
        assert!(listing(&cache).is_empty(), "{what}: cache {:?}", listing(&cache));
        assert_eq!(listing(&weights), if content.is_some() { vec!["brisque_live_svm.safetensors"] } else { vec![] });
    }
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(brisque_score().unwrap().to_bits(), expected.to_bits(), "the file back, the same score");
    let _ = std::fs::remove_dir_all(&tmp);
}
