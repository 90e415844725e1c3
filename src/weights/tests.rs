//! Pretrained weights: resolution order, verified downloads from a local HTTP server, the
//! restricted `.pth` reader on committed test files (zip and legacy formats) and on corrupt or hostile files, and
//! every real file of the shared weights folder.
//!
//! The real-file tests need `IQA_WEIGHTS_DIR` (e.g. `IQA_WEIGHTS_DIR=../shared/weights cargo test --release
//! --lib weights`) and fail, not skip, without it.
use super::{files, load_state_dict, resolve_with, FileRef, SearchConfig};
use crate::error::ErrorKind;
use crate::weights;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

// ---------------------------------------------------------------------------------------------------------------
// Helpers

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/weights")
}

/// The shared weights folder from `IQA_WEIGHTS_DIR`; a test that needs it fails with instructions without it.
fn shared_weights() -> PathBuf {
    let dir = std::env::var_os("IQA_WEIGHTS_DIR").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "IQA_WEIGHTS_DIR is not set: this test loads the real pretrained files. Set IQA_WEIGHTS_DIR to \
             ../shared/weights, e.g. `IQA_WEIGHTS_DIR=../shared/weights cargo test --release --lib weights`"
        )
    });
    for f in [
        "lpips/lpips_v0.1_alex_lin.pth",
        "dists/dists_alpha_beta.pt",
        "backbones/vgg16_features_torchvision.safetensors",
    ] {
        assert!(
            dir.join(f).is_file(),
            "IQA_WEIGHTS_DIR={} lacks {f}: set IQA_WEIGHTS_DIR to the shared weights folder (../shared/weights)",
            dir.display()
        );
    }
    dir
}

/// A fresh temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "iqa-weights-test-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

fn dir_entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

fn values_f64(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

fn values_i64(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.to_kind(Kind::Int64).reshape([-1])).unwrap()
}

/// Asserts that a load fails with ErrorKind::Weights whose message names the file and contains `needle`.
fn assert_weights_error(path: &Path, needle: &str) {
    match load_state_dict(path) {
        Ok(t) => panic!("{} loaded ({} tensors) but should have failed", path.display(), t.len()),
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::Weights, "{}: {e}", path.display());
            assert!(e.message.contains(&path.display().to_string()), "message does not name the file: {e}");
            assert!(e.message.to_lowercase().contains(&needle.to_lowercase()), "expected {needle:?} in: {e}");
        }
    }
}

/// Two state dicts with the same keys, dtypes, shapes and values.
fn assert_same(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>, what: &str) {
    let mut ka: Vec<_> = a.keys().collect();
    let mut kb: Vec<_> = b.keys().collect();
    ka.sort();
    kb.sort();
    assert_eq!(ka, kb, "{what}: keys differ");
    for (k, ta) in a {
        let tb = &b[k];
        assert_eq!(ta.kind(), tb.kind(), "{what}: {k} dtype");
        assert_eq!(ta.size(), tb.size(), "{what}: {k} shape");
        assert!(ta.equal(tb), "{what}: {k} values differ");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The committed torch.save files (scripts/make_test_weights.py)

const EXPECTED_KEYS: [&str; 15] = [
    "f32",
    "f16",
    "bf16",
    "f64",
    "i64",
    "i32",
    "u8",
    "bool",
    "transposed",
    "row",
    "scalar",
    "empty",
    "param",
    "nested.w",
    "nested.deeper.b",
];

fn check_test_state_dict(sd: &HashMap<String, Tensor>, file: &str) {
    let mut keys: Vec<&str> = sd.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = EXPECTED_KEYS.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want, "{file}: keys (the int 'epoch' and str 'name' entries are skipped)");
    let t = |k: &str| &sd[k];
    let check = |k: &str, kind: Kind, shape: &[i64]| {
        assert_eq!(t(k).kind(), kind, "{file}: {k} dtype");
        assert_eq!(t(k).size(), shape, "{file}: {k} shape");
        assert_eq!(t(k).device(), tch::Device::Cpu, "{file}: {k} device");
    };
    check("f32", Kind::Float, &[2, 3]);
    let f32v = values_f64(t("f32"));
    assert_eq!(f32v, [0.5, -1.25, 3.0, 1e-3f32 as f64, 2.5e5, 0.0], "{file}: f32");
    assert!(f32v[5].is_sign_negative(), "{file}: -0.0 keeps its sign");
    check("f16", Kind::Half, &[4]);
    assert_eq!(values_f64(t("f16")), [1.5, -2.0, 0.0999755859375, 65504.0], "{file}: f16");
    check("bf16", Kind::BFloat16, &[3]);
    assert_eq!(values_f64(t("bf16")), [1.0, -3.5, 1.0005576689441423e-20], "{file}: bf16");
    check("f64", Kind::Double, &[1, 1]);
    assert_eq!(values_f64(t("f64")), [1.0 / 3.0], "{file}: f64");
    check("i64", Kind::Int64, &[4]);
    assert_eq!(values_i64(t("i64")), [0, -1, 1 << 40, -(1 << 62)], "{file}: i64");
    check("i32", Kind::Int, &[2]);
    assert_eq!(values_i64(t("i32")), [7, -8], "{file}: i32");
    check("u8", Kind::Uint8, &[2]);
    assert_eq!(values_i64(t("u8")), [0, 255], "{file}: u8");
    check("bool", Kind::Bool, &[3]);
    assert_eq!(values_i64(t("bool")), [1, 0, 1], "{file}: bool");
    // base = arange(12).reshape(3, 4); transposed = base[:, 1:3].t(): offset 1, strides (1, 4) in the storage.
    check("transposed", Kind::Float, &[2, 3]);
    assert_eq!(values_f64(t("transposed")), [1.0, 5.0, 9.0, 2.0, 6.0, 10.0], "{file}: transposed view");
    check("row", Kind::Float, &[4]);
    assert_eq!(values_f64(t("row")), [4.0, 5.0, 6.0, 7.0], "{file}: row view (offset 4)");
    check("scalar", Kind::Float, &[]);
    assert_eq!(values_f64(t("scalar")), [2.5], "{file}: 0-d");
    check("empty", Kind::Float, &[0, 3]);
    check("param", Kind::Float, &[2]);
    assert_eq!(values_f64(t("param")), [0.25, 0.75], "{file}: nn.Parameter");
    assert!(!t("param").requires_grad(), "{file}: loaded tensors carry no autograd state");
    check("nested.w", Kind::Float, &[1, 2]);
    assert_eq!(values_f64(t("nested.w")), [1.0, 2.0], "{file}: nested dict");
    check("nested.deeper.b", Kind::Int16, &[1]);
    assert_eq!(values_i64(t("nested.deeper.b")), [3], "{file}: nested twice");
}

#[test]
fn zip_format_pth_loads_with_values_dtypes_and_views() {
    let sd = load_state_dict(&data_dir().join("zip_format.pth")).unwrap();
    check_test_state_dict(&sd, "zip_format.pth");
}

#[test]
fn legacy_format_pth_loads_with_values_dtypes_and_views() {
    let sd = load_state_dict(&data_dir().join("legacy_format.pth")).unwrap();
    check_test_state_dict(&sd, "legacy_format.pth");
}

#[test]
fn zip_and_legacy_formats_give_identical_tensors() {
    let z = load_state_dict(&data_dir().join("zip_format.pth")).unwrap();
    let l = load_state_dict(&data_dir().join("legacy_format.pth")).unwrap();
    assert_same(&z, &l, "zip vs legacy");
}

#[test]
fn top_level_tuple_is_flattened_by_index() {
    let sd = load_state_dict(&data_dir().join("tuple_legacy.pt")).unwrap();
    assert_eq!(sd.len(), 2);
    assert_eq!(sd["0"].kind(), Kind::Double);
    assert_eq!(values_f64(&sd["0"]), [1.0, -1.0]);
    assert_eq!(sd["1"].size(), [1, 2]);
    assert_eq!(values_f64(&sd["1"]), [0.5, 0.25]);
}

#[test]
fn nested_state_dict_with_pickle_protocol_1_is_flattened_with_dots() {
    let nested = load_state_dict(&data_dir().join("nested_protocol1_legacy.pth")).unwrap();
    let flat = load_state_dict(&data_dir().join("zip_format.pth")).unwrap();
    let unprefixed: HashMap<String, Tensor> = nested
        .iter()
        .map(|(k, t)| {
            (k.strip_prefix("state_dict.").unwrap_or_else(|| panic!("key {k}")).to_string(), t.shallow_clone())
        })
        .collect();
    assert_same(&unprefixed, &flat, "{\"state_dict\": ...} vs flat");
}

#[test]
fn a_modules_state_dict_with_metadata_loads() {
    // nn.Sequential(Conv2d(3, 2, 1), BatchNorm2d(2)).state_dict() after torch.manual_seed(0).
    let sd = load_state_dict(&data_dir().join("module_state_dict.pth")).unwrap();
    assert_eq!(sd.len(), 7);
    assert_eq!(sd["0.weight"].size(), [2, 3, 1, 1]);
    assert_eq!(
        values_f64(&sd["0.weight"]),
        [
            -0.004322517663240433,
            0.3097158372402191,
            -0.4751853346824646,
            -0.4248946011066437,
            -0.2223689705133438,
            0.15482072532176971
        ]
    );
    assert_eq!(values_f64(&sd["0.bias"]), [-0.011439144611358643, 0.45777493715286255]);
    assert_eq!(values_f64(&sd["1.running_var"]), [1.0, 1.0]);
    assert_eq!(sd["1.num_batches_tracked"].kind(), Kind::Int64);
    assert_eq!(sd["1.num_batches_tracked"].size(), Vec::<i64>::new());
}

#[test]
fn safetensors_round_trip() {
    let tmp = TempDir::new("st");
    let p = tmp.path().join("x.safetensors");
    let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2]);
    let b = Tensor::from_slice(&[7i64, -7]);
    Tensor::write_safetensors(&[("layer.weight", &a), ("layer.count", &b)], &p).unwrap();
    let sd = load_state_dict(&p).unwrap();
    assert_eq!(sd.len(), 2);
    assert!(sd["layer.weight"].equal(&a) && sd["layer.count"].equal(&b));
}

// ---------------------------------------------------------------------------------------------------------------
// Corrupt, truncated and hostile files: ErrorKind::Weights naming the file, never a panic

/// The legacy format's three header pickles (magic number, protocol version 1001, an empty sys_info dict).
const LEGACY_HEADER: &[u8] = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.\x80\x02}q\x00.";
/// `{'a': os.system('ls')}` as pickle protocol 2, written by hand.
const OS_SYSTEM_PICKLE: &[u8] =
    b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01cos\nsystem\nq\x02X\x02\x00\x00\x00lsq\x03\x85q\x04Rq\x05s.";

fn make_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

#[test]
fn garbage_and_empty_files_are_weights_errors() {
    let tmp = TempDir::new("garbage");
    let p = tmp.path().join("garbage.pth");
    write(&p, b"this is not a checkpoint, just some text \x00\x01\x02\xff");
    assert_weights_error(&p, "not a PyTorch file");
    let p = tmp.path().join("pickle_junk.pth");
    write(&p, b"\x80\x02\xfe\xfe\xfe\xfe");
    assert_weights_error(&p, "opcode");
    let p = tmp.path().join("empty.pt");
    write(&p, b"");
    assert_weights_error(&p, "empty");
    let p = tmp.path().join("missing.pth");
    assert_weights_error(&p, "cannot open");
    let p = tmp.path().join("params.npz");
    write(&p, b"PK\x03\x04");
    assert_weights_error(&p, "unsupported file type");
    let p = tmp.path().join("zipjunk.pth");
    write(&p, b"PK\x03\x04 and then nothing a zip reader wants");
    assert_weights_error(&p, "zip");
}

#[test]
fn every_truncation_of_the_test_files_is_a_weights_error() {
    let tmp = TempDir::new("trunc");
    for (name, step) in [
        ("legacy_format.pth", 1),
        ("tuple_legacy.pt", 1),
        ("nested_protocol1_legacy.pth", 1),
        ("zip_format.pth", 7),
        ("module_state_dict.pth", 5),
    ] {
        let bytes = std::fs::read(data_dir().join(name)).unwrap();
        let p = tmp.path().join(name);
        for cut in (0..bytes.len()).step_by(step) {
            write(&p, &bytes[..cut]);
            match load_state_dict(&p) {
                Ok(_) => panic!("{name} cut to {cut} of {} bytes loaded", bytes.len()),
                Err(e) => assert_eq!(e.kind, ErrorKind::Weights, "{name} cut to {cut}: {e}"),
            }
        }
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    // Flip each byte of the legacy file's pickle region in turn: the load may fail or (for bytes that do not
    // matter, e.g. inside a string) succeed, but it must never panic or abort.
    let tmp = TempDir::new("flip");
    let bytes = std::fs::read(data_dir().join("legacy_format.pth")).unwrap();
    let p = tmp.path().join("flip.pth");
    for i in 0..bytes.len().min(1600) {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        write(&p, &b);
        if let Err(e) = load_state_dict(&p) {
            assert_eq!(e.kind, ErrorKind::Weights, "byte {i}: {e}");
        }
    }
}

#[test]
fn broken_safetensors_are_weights_errors() {
    let tmp = TempDir::new("st-broken");
    // Header length far beyond the file.
    let p = tmp.path().join("huge_header.safetensors");
    let mut b = (1u64 << 40).to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    write(&p, &b);
    assert_weights_error(&p, "safetensors");
    // A header that is not JSON.
    let p = tmp.path().join("not_json.safetensors");
    let mut b = 12u64.to_le_bytes().to_vec();
    b.extend_from_slice(b"{not json!!}");
    write(&p, &b);
    assert_weights_error(&p, "safetensors");
    // A tensor whose data lies beyond the file.
    let p = tmp.path().join("offsets.safetensors");
    let header = br#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header);
    b.extend_from_slice(&[0u8; 8]);
    write(&p, &b);
    assert_weights_error(&p, "safetensors");
    // Shorter than the 8-byte length.
    let p = tmp.path().join("tiny.safetensors");
    write(&p, b"\x01\x02");
    assert_weights_error(&p, "safetensors");
    // A real file, truncated.
    let good = tmp.path().join("good.safetensors");
    Tensor::write_safetensors(&[("w", &Tensor::ones([4, 4], (Kind::Float, tch::Device::Cpu)))], &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let p = tmp.path().join("cut.safetensors");
    for cut in [0, 4, 9, bytes.len() / 2, bytes.len() - 1] {
        write(&p, &bytes[..cut]);
        assert_weights_error(&p, "safetensors");
    }
}

#[test]
fn forbidden_globals_are_refused_never_executed() {
    let tmp = TempDir::new("evil");
    // A bare pickle calling os.system, named .pth.
    let p = tmp.path().join("evil_plain.pth");
    write(&p, OS_SYSTEM_PICKLE);
    assert_weights_error(&p, "forbidden global os.system");
    // The same inside a well-formed legacy file (after the magic number, version and sys_info).
    let p = tmp.path().join("evil_legacy.pth");
    write(&p, &[LEGACY_HEADER, OS_SYSTEM_PICKLE].concat());
    assert_weights_error(&p, "forbidden global os.system");
    // And as the data.pkl of a zip-format file.
    let p = tmp.path().join("evil_zip.pth");
    make_zip(&p, &[("archive/data.pkl", OS_SYSTEM_PICKLE), ("archive/version", b"3\n")]);
    assert_weights_error(&p, "forbidden global os.system");
    // builtins.eval through STACK_GLOBAL (protocol 4), and an arbitrary class.
    let p = tmp.path().join("evil_eval.pth");
    write(&p, b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x041+1;\x85R.");
    assert_weights_error(&p, "forbidden global builtins.eval");
    let p = tmp.path().join("evil_class.pt");
    write(&p, &[LEGACY_HEADER, b"\x80\x02ctorch.nn.modules.linear\nLinear\nq\x00)\x81q\x01.".as_slice()].concat());
    assert_weights_error(&p, "forbidden global torch.nn.modules.linear.Linear");
}

#[test]
fn zip_files_with_missing_or_short_storages_are_weights_errors() {
    let tmp = TempDir::new("zipstore");
    // The committed file's data.pkl with its storage records left out, or cut short.
    let src = data_dir().join("zip_format.pth");
    let mut z = zip::ZipArchive::new(std::fs::File::open(&src).unwrap()).unwrap();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..z.len() {
        let mut e = z.by_index(i).unwrap();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        entries.push((e.name().to_string(), b));
    }
    let without: Vec<(&str, &[u8])> =
        entries.iter().filter(|(n, _)| !n.ends_with("data/0")).map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let p = tmp.path().join("no_storage.pth");
    make_zip(&p, &without);
    assert_weights_error(&p, "missing");
    let short: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), if n.ends_with("data/0") { &b[..b.len() - 4] } else { b.as_slice() }))
        .collect();
    let p = tmp.path().join("short_storage.pth");
    make_zip(&p, &short);
    assert_weights_error(&p, "bytes");
    // Rewritten with every record intact it loads again (the helper itself is sound).
    let all: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let p = tmp.path().join("rezipped.pth");
    make_zip(&p, &all);
    check_test_state_dict(&load_state_dict(&p).unwrap(), "rezipped.pth");
}

// ---------------------------------------------------------------------------------------------------------------
// Resolution order

const TEST_ALTS: &[&str] = &["foo.safetensors", "foo_alt.pth"];

fn test_file(url: &str) -> FileRef<'_> {
    FileRef { alternative_names: TEST_ALTS, ..FileRef::plain("foo-12345678.pth", url, "12345678") }
}

fn offline(weights: Option<&Path>, cache: Option<&Path>) -> SearchConfig {
    SearchConfig {
        weights_dir: weights.map(Path::to_path_buf),
        cache_dir: cache.map(Path::to_path_buf),
        offline: true,
        ..Default::default()
    }
}

#[test]
fn resolve_searches_weights_dir_subdirectories_alternatives_then_cache() {
    let tmp = TempDir::new("resolve");
    let (wd, cache) = (tmp.path().join("weights"), tmp.path().join("cache"));
    std::fs::create_dir_all(&wd).unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    let file = test_file("http://127.0.0.1:9/foo-12345678.pth");
    let cfg = offline(Some(&wd), Some(&cache));
    let found = |cfg: &SearchConfig| resolve_with(file, cfg).unwrap().unwrap();

    // Only in the cache (official name, then an alternative).
    write(&cache.join("foo_alt.pth"), b"x");
    assert_eq!(found(&cfg), cache.join("foo_alt.pth"));
    write(&cache.join("foo-12345678.pth"), b"x");
    assert_eq!(found(&cfg), cache.join("foo-12345678.pth"));
    // An alternative name in a subdirectory of the weights dir beats the cache.
    write(&wd.join("b").join("foo_alt.pth"), b"x");
    assert_eq!(found(&cfg), wd.join("b").join("foo_alt.pth"));
    // The first alternative beats the second.
    write(&wd.join("a").join("foo.safetensors"), b"x");
    assert_eq!(found(&cfg), wd.join("a").join("foo.safetensors"));
    // The official name in a subdirectory beats alternatives anywhere.
    write(&wd.join("b").join("foo-12345678.pth"), b"x");
    assert_eq!(found(&cfg), wd.join("b").join("foo-12345678.pth"));
    // The weights dir itself beats its subdirectories.
    write(&wd.join("foo-12345678.pth"), b"x");
    assert_eq!(found(&cfg), wd.join("foo-12345678.pth"));
    // Only immediate subdirectories are searched, and a directory with the file's name is not the file.
    let tmp2 = TempDir::new("resolve-deep");
    let wd2 = tmp2.path().join("w");
    write(&wd2.join("x").join("y").join("foo-12345678.pth"), b"x");
    std::fs::create_dir_all(wd2.join("foo.safetensors")).unwrap();
    let e = resolve_with(file, &offline(Some(&wd2), None)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Weights);
    // Without a weights dir, the cache still answers.
    assert_eq!(found(&offline(None, Some(&cache))), cache.join("foo-12345678.pth"));
}

#[test]
fn offline_and_missing_names_the_file_directories_and_url() {
    let tmp = TempDir::new("missing");
    let (wd, cache) = (tmp.path().join("weights"), tmp.path().join("cache"));
    std::fs::create_dir_all(wd.join("lpips")).unwrap();
    let url = "https://example.invalid/releases/foo-12345678.pth";
    let e = resolve_with(test_file(url), &offline(Some(&wd), Some(&cache))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Weights);
    for needle in [
        "foo-12345678.pth",
        "foo.safetensors",
        "foo_alt.pth",
        &wd.display().to_string(),
        &wd.join("lpips").display().to_string(),
        &cache.display().to_string(),
        url,
        "IQA_OFFLINE",
    ] {
        assert!(e.message.contains(needle), "{needle:?} missing from: {e}");
    }
    // No weights dir set: said so.
    let e = resolve_with(test_file(url), &offline(None, Some(&cache))).unwrap_err();
    assert!(e.message.contains("IQA_WEIGHTS_DIR (not set)") && e.message.contains(url), "{e}");
    // Nothing was created by the failed lookups.
    assert!(!cache.exists());
}

#[test]
fn a_file_without_a_known_checksum_is_never_downloaded() {
    let tmp = TempDir::new("nosha");
    let cache = tmp.path().join("cache");
    let file = FileRef::plain("x.mat", "http://127.0.0.1:9/x.mat", "");
    let cfg = SearchConfig { cache_dir: Some(cache.clone()), ..Default::default() };
    let e = resolve_with(file, &cfg).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Weights);
    assert!(e.message.contains("sha256") && e.message.contains("x.mat") && e.message.contains(file.url), "{e}");
    assert!(!cache.exists());
}

#[test]
fn key_and_shape_checks_name_the_file() {
    let tmp = TempDir::new("shapes");
    let wd = tmp.path().join("w");
    let st = wd.join("m").join("model.safetensors");
    std::fs::create_dir_all(st.parent().unwrap()).unwrap();
    Tensor::write_safetensors(&[("mu", &Tensor::zeros([3], (Kind::Double, tch::Device::Cpu)))], &st).unwrap();
    let file = FileRef {
        alternative_names: &["model.safetensors"],
        ..FileRef::plain("model.mat", "https://example.invalid/model.mat", "")
    };
    let cfg = offline(Some(&wd), None);
    let sd = weights::load_with(file, &cfg, &[("mu", &[3])]).unwrap();
    assert_eq!(sd["mu"].kind(), Kind::Double);
    let e = weights::load_with(file, &cfg, &[("mu", &[4])]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Weights);
    assert!(e.message.contains("'mu'") && e.message.contains("[3]") && e.message.contains("[4]"), "{e}");
    assert!(e.message.contains(&st.display().to_string()), "{e}");
    let e = weights::load_with(file, &cfg, &[("sigma", &[3])]).unwrap_err();
    assert!(e.message.contains("'sigma'") && e.message.contains("missing") && e.message.contains("mu"), "{e}");
    // The official .mat is read when it is there, and a broken one is an error naming it (not passed over).
    write(&wd.join("m").join("model.mat"), b"MATLAB 5.0 MAT-file");
    let e = weights::load_with(file, &cfg, &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Weights);
    assert!(e.message.contains("model.mat") && e.message.contains("128-byte MAT-file header"), "{e}");
}

// ---------------------------------------------------------------------------------------------------------------
// Built-in copies, the torch hub, pyiqa's formats

/// A config that finds nothing on disk: only built-in copies answer.
fn nowhere() -> SearchConfig {
    SearchConfig { offline: true, ..Default::default() }
}

#[test]
fn built_in_copies_load_with_nothing_on_disk() {
    let cfg = nowhere();
    for (file, keys) in [
        (&files::NIQE_PARAMS, &[("mu_pris_param", &[36][..]), ("cov_pris_param", &[36, 36][..])][..]),
        (&files::BRISQUE_SVM, &[("sv_coef", &[774][..]), ("sv", &[774, 36][..])][..]),
        (
            &files::ILNIQE_TEMPLATE,
            &[
                ("mu_pris_param", &[430][..]),
                ("cov_pris_param", &[430, 430][..]),
                ("mean_of_sample_data", &[468][..]),
                ("principle_vectors", &[468, 430][..]),
            ][..],
        ),
        (&files::DISTS_ALPHA_BETA, &[("alpha", &[1, 1475, 1, 1][..]), ("beta", &[1, 1475, 1, 1][..])][..]),
        (&files::LPIPS_V0_1_ALEX, &[("lin4.model.1.weight", &[1, 256, 1, 1][..])][..]),
        (&files::LPIPS_V0_1_VGG, &[("lin4.model.1.weight", &[1, 512, 1, 1][..])][..]),
        (&files::LPIPS_V0_1_SQUEEZE, &[("lin6.model.1.weight", &[1, 512, 1, 1][..])][..]),
    ] {
        assert!(matches!(weights::locate_with(file, &cfg), weights::Location::Builtin), "{}", file.official_name);
        assert_eq!(resolve_with(file, &cfg).unwrap(), None);
        weights::load_with(file, &cfg, keys).unwrap_or_else(|e| panic!("{e}"));
    }
    // The backbones are not built in: offline and nowhere, they are missing, and the message says from where.
    let weights::Location::Missing(e) = weights::locate_with(&files::VGG16, &cfg) else { panic!("VGG16 found") };
    assert!(e.message.contains("vgg16-397923af.pth") && e.message.contains(files::VGG16.url), "{e}");
}

/// The built-in copies are the shared folder's verified files, tensor for tensor (IL-NIQE's two parts together
/// are its one template file).
#[test]
fn built_in_copies_equal_the_shared_files() {
    let dir = shared_weights();
    for (file, shared) in [
        (&files::NIQE_PARAMS, "niqe/niqe_pris_params.safetensors"),
        (&files::BRISQUE_SVM, "brisque/brisque_live_svm.safetensors"),
        (&files::ILNIQE_TEMPLATE, "ilniqe/ILNIQE_templateModel.safetensors"),
        (&files::DISTS_ALPHA_BETA, "dists/dists_alpha_beta.safetensors"),
        (&files::LPIPS_V0_1_ALEX, "lpips/lpips_v0.1_alex_lin.safetensors"),
        (&files::LPIPS_V0_1_VGG, "lpips/lpips_v0.1_vgg_lin.safetensors"),
        (&files::LPIPS_V0_1_SQUEEZE, "lpips/lpips_v0.1_squeeze_lin.safetensors"),
    ] {
        let built_in = weights::load_with(file, &nowhere(), &[]).unwrap();
        assert_same(&built_in, &load_state_dict(&dir.join(shared)).unwrap(), shared);
    }
}

/// pyiqa's own files give the model of the built-in copy: the official IL-NIQE `.mat` (a compressed 1×4 cell),
/// NIQE's `.mat` layout (compressed doubles, 1×36 and 36×36) and BRISQUE's `torch.save((sv_coef, sv))`.
#[test]
fn pyiqa_format_files_give_the_built_in_model() {
    let tmp = TempDir::new("pyiqa-formats");
    let ilniqe = shared_weights().join("ilniqe/ILNIQE_templateModel.mat");
    for (file, source) in [
        (&files::ILNIQE_TEMPLATE, ilniqe),
        (&files::NIQE_PARAMS, data_dir().join("niqe_modelparameters.mat")),
        (&files::BRISQUE_SVM, data_dir().join("brisque_svm_weights.pth")),
    ] {
        let wd = tmp.path().join(file.official_name);
        std::fs::create_dir_all(&wd).unwrap();
        std::fs::copy(&source, wd.join(file.official_name)).unwrap();
        let cfg = offline(Some(&wd), None);
        assert_eq!(resolve_with(file, &cfg).unwrap(), Some(wd.join(file.official_name)));
        let built_in = weights::load_with(file, &nowhere(), &[]).unwrap();
        // The keys iqa uses, with the shapes the metrics ask for.
        let expected: Vec<(String, Vec<i64>)> =
            file.renames.iter().map(|(_, ours)| (ours.to_string(), built_in[*ours].size())).collect();
        let expected: Vec<(&str, &[i64])> = expected.iter().map(|(k, s)| (k.as_str(), s.as_slice())).collect();
        let from_pyiqa = weights::load_with(file, &cfg, &expected).unwrap_or_else(|e| panic!("{e}"));
        for (key, _) in &expected {
            let (a, b) = (&from_pyiqa[*key], &built_in[*key]);
            assert_eq!((a.kind(), a.size()), (b.kind(), b.size()), "{}: {key}", file.official_name);
            assert!(a.equal(b), "{}: {key} values differ", file.official_name);
        }
    }
}

#[test]
fn the_torch_hub_is_searched_after_the_built_in_copy_and_before_the_cache() {
    let tmp = TempDir::new("hub");
    let (wd, hub, cache) = (tmp.path().join("w"), tmp.path().join("hub"), tmp.path().join("cache"));
    let bytes = b"some bytes";
    let digest = {
        write(&tmp.path().join("x"), bytes);
        weights::sha256_file(&tmp.path().join("x")).unwrap()
    };
    let cfg = SearchConfig {
        weights_dir: Some(wd.clone()),
        torch_hub: Some(hub.clone()),
        cache_dir: Some(cache.clone()),
        offline: true,
    };
    let file =
        FileRef { alternative_names: &["f.safetensors"], ..FileRef::plain("f-1234.pth", "https://x/f", &digest) };
    write(&cache.join("f-1234.pth"), bytes);
    assert_eq!(resolve_with(file, &cfg).unwrap(), Some(cache.join("f-1234.pth")));
    // pyiqa's CLIP loader's folder, then torchvision's, then pyiqa's (which wins): official names only.
    write(&hub.join("clip").join("f-1234.pth"), bytes);
    assert_eq!(resolve_with(file, &cfg).unwrap(), Some(hub.join("clip").join("f-1234.pth")));
    write(&hub.join("checkpoints").join("f.safetensors"), bytes);
    assert_eq!(resolve_with(file, &cfg).unwrap(), Some(hub.join("clip").join("f-1234.pth")));
    write(&hub.join("checkpoints").join("f-1234.pth"), bytes);
    assert_eq!(resolve_with(file, &cfg).unwrap(), Some(hub.join("checkpoints").join("f-1234.pth")));
    write(&hub.join("pyiqa").join("f-1234.pth"), bytes);
    assert_eq!(resolve_with(file, &cfg).unwrap(), Some(hub.join("pyiqa").join("f-1234.pth")));
    // A built-in copy comes before the hub, IQA_WEIGHTS_DIR before both.
    let with_builtin = FileRef { builtin: &[weights::builtin::DISTS_ALPHA_BETA], ..file };
    assert_eq!(resolve_with(with_builtin, &cfg).unwrap(), None);
    write(&wd.join("f.safetensors"), bytes);
    assert_eq!(resolve_with(with_builtin, &cfg).unwrap(), Some(wd.join("f.safetensors")));

    // A file in the hub whose full sha256 is known is checked; one of another content is refused by name.
    let hub_file = hub.join("pyiqa").join("f-1234.pth");
    let no_wd = SearchConfig { weights_dir: None, ..cfg.clone() };
    write(&hub_file, b"other bytes");
    let e = weights::load_with(file, &no_wd, &[]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Weights);
    assert!(e.message.contains(&hub_file.display().to_string()) && e.message.contains(&digest), "{e}");
    // With only a digest prefix (torchvision's, which torch checked at download) the file is read as it is.
    let prefix = FileRef { sha256: &digest[..8], ..file };
    let e = weights::load_with(prefix, &no_wd, &[]).unwrap_err();
    assert!(e.message.contains("cannot load weights from") && !e.message.contains("sha256"), "{e}");
}

#[test]
fn locate_says_where_a_file_would_come_from() {
    let tmp = TempDir::new("locate");
    let cache = tmp.path().join("cache");
    let online = SearchConfig { cache_dir: Some(cache.clone()), ..Default::default() };
    let file = FileRef::plain("g-12345678.pth", "https://example.invalid/g-12345678.pth", "12345678");
    match weights::locate_with(file, &online) {
        weights::Location::Download { url, dir } => assert_eq!((url.as_str(), dir), (file.url, cache.clone())),
        other => panic!("{other:?}"),
    }
    let offline = SearchConfig { offline: true, ..online.clone() };
    let weights::Location::Missing(e) = weights::locate_with(file, &offline) else { panic!("not missing") };
    assert!(e.message.contains("IQA_OFFLINE=1") && e.message.contains(file.url), "{e}");
    let unverified = FileRef { sha256: "", ..file };
    let weights::Location::Missing(e) = weights::locate_with(unverified, &online) else { panic!("not missing") };
    assert!(e.message.contains("no verified sha256"), "{e}");
    write(&cache.join("g-12345678.pth"), b"x");
    assert!(
        matches!(weights::locate_with(file, &offline), weights::Location::Found(p) if p == cache.join("g-12345678.pth"))
    );
    assert!(!tmp.path().join("hub").exists(), "locating creates nothing");
}

// ---------------------------------------------------------------------------------------------------------------
// Downloads from a local HTTP server

enum Reply {
    /// Status, declared Content-Length, body bytes actually sent.
    Send(u16, usize, Vec<u8>),
}

/// Serves `replies` (one per connection, in order) on 127.0.0.1 from a thread; stops after the last one or after
/// 20 s, whichever comes first. Returns the base URL and the thread, which yields the request paths it saw.
fn serve(replies: Vec<Reply>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut paths = Vec::new();
        for reply in replies {
            let mut stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => return paths,
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16384 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req).lines().next().unwrap_or("").to_string();
            paths.push(line.split_whitespace().nth(1).unwrap_or("").to_string());
            let Reply::Send(status, declared, body) = reply;
            let reason = if status == 200 { "OK" } else { "Not Found" };
            let head = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Length: {declared}\r\n\
                 Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        paths
    });
    (base, handle)
}

fn online(cache: &Path) -> SearchConfig {
    SearchConfig { cache_dir: Some(cache.to_path_buf()), ..Default::default() }
}

#[test]
fn download_with_the_right_checksum_lands_in_the_cache_and_loads() {
    let src = data_dir().join("zip_format.pth");
    let body = std::fs::read(&src).unwrap();
    let sha = weights::sha256_file(&src).unwrap();
    let (base, server) =
        serve(vec![Reply::Send(200, body.len(), body.clone()), Reply::Send(200, body.len(), body.clone())]);
    let tmp = TempDir::new("dl-ok");
    let cache = tmp.path().join("cache");
    let url_full = format!("{base}/assets/testdl-full.pth");
    let url_prefix = format!("{base}/assets/testdl-prefix.pth");
    let full = FileRef::plain("testdl-full.pth", &url_full, &sha);
    let prefix = FileRef::plain("testdl-prefix.pth", &url_prefix, &sha[..8]);

    // Progress events for this test's files (the callback is process-wide; other tests' events are ignored).
    type Events = Arc<Mutex<Vec<(String, u64, Option<u64>)>>>;
    let events: Events = Arc::default();
    let sink = events.clone();
    weights::set_progress_callback(Some(Box::new(move |name, done, total| {
        if name.starts_with("testdl-") {
            sink.lock().unwrap().push((name.to_string(), done, total));
        }
    })));

    let p = resolve_with(full, &online(&cache)).unwrap().unwrap();
    assert_eq!(p, cache.join("testdl-full.pth"));
    check_test_state_dict(&load_state_dict(&p).unwrap(), "downloaded file");
    let p2 = resolve_with(prefix, &online(&cache)).unwrap().unwrap();
    assert_eq!(std::fs::read(&p2).unwrap(), body, "8-hex prefix accepted");
    let mut listing = dir_entries(&cache);
    listing.sort();
    assert_eq!(listing, ["testdl-full.pth", "testdl-prefix.pth"], "no temporary file left");
    assert_eq!(server.join().unwrap(), ["/assets/testdl-full.pth", "/assets/testdl-prefix.pth"]);

    // Found in the cache now: no request (the server has stopped), even when online.
    assert_eq!(resolve_with(full, &online(&cache)).unwrap(), Some(p));

    let ev: Vec<_> = events.lock().unwrap().iter().filter(|e| e.0 == "testdl-full.pth").cloned().collect();
    let n = body.len() as u64;
    assert_eq!(ev.first(), Some(&("testdl-full.pth".to_string(), 0, Some(n))), "start event: {ev:?}");
    assert_eq!(ev.last(), Some(&("testdl-full.pth".to_string(), n, Some(n))), "end event: {ev:?}");
    assert!(ev.windows(2).all(|w| w[0].1 <= w[1].1), "progress is monotonic: {ev:?}");
}

#[test]
fn download_with_a_wrong_checksum_leaves_nothing() {
    let body = std::fs::read(data_dir().join("legacy_format.pth")).unwrap();
    let (base, server) = serve(vec![Reply::Send(200, body.len(), body)]);
    let tmp = TempDir::new("dl-sha");
    let cache = tmp.path().join("cache");
    let url = format!("{base}/bad-sha.pth");
    let wrong = "0".repeat(64);
    let file = FileRef::plain("bad-sha.pth", &url, &wrong);
    let e = resolve_with(file, &online(&cache)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Weights);
    assert!(e.message.contains("sha256") && e.message.contains("mismatch") && e.message.contains(&wrong), "{e}");
    assert!(e.message.contains("bad-sha.pth") && e.message.contains(&url), "{e}");
    assert!(dir_entries(&cache).is_empty(), "left behind: {:?}", dir_entries(&cache));
    server.join().unwrap();
}

#[test]
fn truncated_download_leaves_nothing() {
    let body = std::fs::read(data_dir().join("zip_format.pth")).unwrap();
    let sha = weights::sha256_file(&data_dir().join("zip_format.pth")).unwrap();
    // Content-Length announces the whole file; only half is sent before the connection closes.
    let (base, server) = serve(vec![Reply::Send(200, body.len(), body[..body.len() / 2].to_vec())]);
    let tmp = TempDir::new("dl-trunc");
    let cache = tmp.path().join("cache");
    let url = format!("{base}/cut.pth");
    let file = FileRef::plain("cut.pth", &url, &sha);
    let e = resolve_with(file, &online(&cache)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Weights);
    assert!(e.message.contains("cut.pth") && e.message.contains("download failed"), "{e}");
    assert!(dir_entries(&cache).is_empty(), "left behind: {:?}", dir_entries(&cache));
    server.join().unwrap();
}

#[test]
fn http_error_status_is_a_weights_error() {
    let (base, server) = serve(vec![Reply::Send(404, 9, b"not found".to_vec())]);
    let tmp = TempDir::new("dl-404");
    let cache = tmp.path().join("cache");
    let url = format!("{base}/gone.pth");
    let file = FileRef::plain("gone.pth", &url, "12345678");
    let e = resolve_with(file, &online(&cache)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Weights);
    assert!(e.message.contains("404") && e.message.contains(&url), "{e}");
    assert!(dir_entries(&cache).is_empty(), "left behind: {:?}", dir_entries(&cache));
    server.join().unwrap();
}

/// A cache directory this process cannot write: 0555 for a normal user; for root, whom permissions do not stop,
/// /proc/self/fdinfo (a directory nobody can create files in).
fn unwritable_dir(tmp: &TempDir) -> PathBuf {
    let dir = tmp.path().join("read-only");
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(dir.join("probe"), b"x").is_ok() {
        return PathBuf::from("/proc/self/fdinfo");
    }
    dir
}

#[test]
fn read_only_cache_directory_is_a_weights_error_naming_it() {
    let body = std::fs::read(data_dir().join("zip_format.pth")).unwrap();
    let sha = weights::sha256_file(&data_dir().join("zip_format.pth")).unwrap();
    let (base, server) = serve(vec![Reply::Send(200, body.len(), body)]);
    let tmp = TempDir::new("dl-readonly");
    let cache = unwritable_dir(&tmp);
    let url = format!("{base}/ro.pth");
    let file = FileRef::plain("ro.pth", &url, &sha);
    let e = resolve_with(file, &online(&cache)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Weights);
    assert!(e.message.contains("ro.pth") && e.message.contains(&cache.display().to_string()), "{e}");
    let left: Vec<String> = dir_entries(&cache).into_iter().filter(|n| n.contains("ro.pth")).collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
    server.join().unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// The real files of the shared weights folder (IQA_WEIGHTS_DIR)

fn real_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("pth" | "pt" | "safetensors")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_real_file_loads() {
    let dir = shared_weights();
    let paths = real_files(&dir);
    assert!(paths.len() >= 20, "expected the 20 .pth/.pt/.safetensors files of the shared folder, found {paths:?}");
    for p in &paths {
        let sd = load_state_dict(p).unwrap_or_else(|e| panic!("{e}"));
        assert!(!sd.is_empty(), "{}", p.display());
        for (k, t) in &sd {
            assert_eq!(t.device(), tch::Device::Cpu, "{}: {k}", p.display());
            assert!(t.is_contiguous(), "{}: {k}", p.display());
        }
    }
}

#[test]
fn pth_and_safetensors_copies_are_identical() {
    let dir = shared_weights();
    let mut pairs = 0;
    for p in real_files(&dir) {
        if !matches!(p.extension().and_then(|e| e.to_str()), Some("pth" | "pt")) {
            continue;
        }
        let st = p.with_extension("safetensors");
        if !st.is_file() {
            continue;
        }
        let a = load_state_dict(&p).unwrap();
        let b = load_state_dict(&st).unwrap();
        assert_same(&a, &b, &format!("{} vs {}", p.display(), st.display()));
        pairs += 1;
    }
    assert_eq!(pairs, 7, "six LPIPS lin pairs and the DISTS pair");
}

/// (key, shape) for the LPIPS lin layers of a net (PROVENANCE.md).
fn lin_shapes(channels: &[i64]) -> Vec<(String, Vec<i64>)> {
    channels.iter().enumerate().map(|(k, &c)| (format!("lin{k}.model.1.weight"), vec![1, c, 1, 1])).collect()
}

fn load_expect(file: &weights::WeightFile, cfg: &SearchConfig, expected: &[(String, Vec<i64>)], kind: Kind) {
    let exp: Vec<(&str, &[i64])> = expected.iter().map(|(k, s)| (k.as_str(), s.as_slice())).collect();
    let sd = weights::load_with(file, cfg, &exp).unwrap_or_else(|e| panic!("{e}"));
    for (k, _) in expected {
        assert_eq!(sd[k].kind(), kind, "{}: {k}", file.official_name);
    }
}

#[test]
fn every_catalogued_file_resolves_offline_with_provenance_shapes() {
    let dir = shared_weights();
    let cfg = SearchConfig { weights_dir: Some(dir.clone()), offline: true, ..Default::default() };
    for f in files::ALL {
        let p = weights::resolve_with(*f, &cfg).unwrap_or_else(|e| panic!("{e}")).expect("found in the folder");
        assert!(p.starts_with(&dir), "{}", p.display());
    }
    let nets: [(&str, &[i64]); 3] = [
        ("alex", &[64, 192, 384, 256, 256]),
        ("vgg", &[64, 128, 256, 512, 512]),
        ("squeeze", &[64, 128, 256, 384, 384, 512, 512]),
    ];
    for ver in ["0.0", "0.1"] {
        for (net, ch) in nets {
            let f = files::lpips(ver, net).unwrap();
            load_expect(f, &cfg, &lin_shapes(ch), Kind::Float);
            assert_eq!(weights::load_with(f, &cfg, &[]).unwrap().len(), ch.len(), "no bias, nothing else");
        }
    }
    let ab = vec![("alpha".to_string(), vec![1, 1475, 1, 1]), ("beta".to_string(), vec![1, 1475, 1, 1])];
    load_expect(&files::DISTS_ALPHA_BETA, &cfg, &ab, Kind::Float);

    let convs = |layers: &[(usize, [i64; 4])]| -> Vec<(String, Vec<i64>)> {
        layers
            .iter()
            .flat_map(|(i, s)| {
                [(format!("features.{i}.weight"), s.to_vec()), (format!("features.{i}.bias"), vec![s[0]])]
            })
            .collect()
    };
    let alex = convs(&[
        (0, [64, 3, 11, 11]),
        (3, [192, 64, 5, 5]),
        (6, [384, 192, 3, 3]),
        (8, [256, 384, 3, 3]),
        (10, [256, 256, 3, 3]),
    ]);
    load_expect(&files::ALEXNET, &cfg, &alex, Kind::Float);
    let vgg_layers: Vec<(usize, [i64; 4])> = [
        (0, 3, 64),
        (2, 64, 64),
        (5, 64, 128),
        (7, 128, 128),
        (10, 128, 256),
        (12, 256, 256),
        (14, 256, 256),
        (17, 256, 512),
        (19, 512, 512),
        (21, 512, 512),
        (24, 512, 512),
        (26, 512, 512),
        (28, 512, 512),
    ]
    .iter()
    .map(|&(i, cin, cout)| (i, [cout, cin, 3, 3]))
    .collect();
    load_expect(&files::VGG16, &cfg, &convs(&vgg_layers), Kind::Float);
    assert_eq!(weights::load_with(&files::VGG16, &cfg, &[]).unwrap().len(), 26);
    let sq = weights::load_with(
        &files::SQUEEZENET1_1,
        &cfg,
        &[("features.0.weight", &[64, 3, 3, 3]), ("classifier.1.weight", &[1000, 512, 1, 1])],
    )
    .unwrap();
    assert_eq!(sq.len(), 52);

    let niqe = [("mu_pris_param".to_string(), vec![36]), ("cov_pris_param".to_string(), vec![36, 36])];
    load_expect(&files::NIQE_PARAMS, &cfg, &niqe, Kind::Double);
    let brisque = [("sv_coef".to_string(), vec![774]), ("sv".to_string(), vec![774, 36])];
    load_expect(&files::BRISQUE_SVM, &cfg, &brisque, Kind::Double);
    let ilniqe = [
        ("mu_pris_param".to_string(), vec![430]),
        ("cov_pris_param".to_string(), vec![430, 430]),
        ("mean_of_sample_data".to_string(), vec![468]),
        ("principle_vectors".to_string(), vec![468, 430]),
    ];
    load_expect(&files::ILNIQE_TEMPLATE, &cfg, &ilniqe, Kind::Double);
    // IL-NIQE's official name is the .mat in the folder: that is what was read.
    assert_eq!(
        weights::resolve_with(&files::ILNIQE_TEMPLATE, &cfg).unwrap(),
        Some(dir.join("ilniqe/ILNIQE_templateModel.mat"))
    );
}

#[test]
fn shared_pth_copies_match_the_catalogued_checksums() {
    // The shared .pth/.pt are byte copies of pyiqa's assets: their sha256 must be the catalogue's, which also
    // checks that the official names carry the digest's first 8 hex digits.
    let dir = shared_weights();
    let cfg = SearchConfig { weights_dir: Some(dir), offline: true, ..Default::default() };
    let mut checked = 0;
    for f in files::ALL {
        let Some(alt) = f.alternative_names.iter().find(|n| n.ends_with(".pth") || n.ends_with(".pt")) else {
            continue;
        };
        let file = FileRef::plain(alt, f.url, f.sha256);
        let p = weights::resolve_with(file, &cfg).unwrap().unwrap();
        assert_eq!(weights::sha256_file(&p).unwrap(), f.sha256, "{}", p.display());
        assert!(f.official_name.contains(&f.sha256[..8]), "{}", f.official_name);
        checked += 1;
    }
    assert_eq!(checked, 7);
    for f in [&files::ALEXNET, &files::VGG16, &files::SQUEEZENET1_1] {
        assert!(f.official_name.contains(f.sha256) && f.sha256.len() == 8, "{}", f.official_name);
        assert!(f.url.ends_with(f.official_name), "{}", f.url);
    }
}

#[test]
fn truncated_copies_of_a_real_pth_are_weights_errors() {
    let dir = shared_weights();
    let tmp = TempDir::new("real-trunc");
    for name in ["lpips/lpips_v0.1_alex_lin.pth", "dists/dists_alpha_beta.pt"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let p = tmp.path().join(Path::new(name).file_name().unwrap());
        for cut in (0..bytes.len()).step_by(61).chain([bytes.len() - 1]) {
            write(&p, &bytes[..cut]);
            let e = load_state_dict(&p).map(|_| ()).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Weights, "{name} cut to {cut}: {e}");
        }
    }
}

/// Each model-zoo file is downloaded from pyiqa's store under its own name, checked against the 8 hex digits of
/// sha256 its name carries (none: never downloaded).
#[test]
fn zoo_files_carry_their_checksum_prefix_and_url() {
    for f in files::ZOO {
        assert!(f.url.ends_with(&format!("/{}", f.official_name)), "{}", f.url);
        // OpenAI's CLIP store names the full sha256 in the URL's folder.
        if let Some(rest) = f.url.strip_prefix("https://openaipublic.azureedge.net/clip/models/") {
            assert_eq!(rest, format!("{}/{}", f.sha256, f.official_name));
            assert_eq!(f.sha256.len(), 64, "{}", f.official_name);
            continue;
        }
        // pyiqa's store, or torchvision's for the ImageNet backbones pyiqa's networks load through torchvision.
        let stores = [
            "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/",
            "https://download.pytorch.org/models/",
        ];
        assert!(stores.iter().any(|s| f.url.starts_with(s)), "{}", f.url);
        let stem = f.official_name.rsplit_once('.').unwrap().0;
        match stem.rsplit_once('-').map(|(_, tail)| tail) {
            Some(tail) if tail.len() == 8 && tail.bytes().all(|b| b.is_ascii_hexdigit()) => {
                assert_eq!(f.sha256, tail, "{}", f.official_name)
            }
            _ => assert_eq!(f.sha256, "", "{}: no checksum in the name", f.official_name),
        }
    }
}
