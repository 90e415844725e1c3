//! Pretrained weights: finding, downloading, verifying and loading every pretrained file the deep and classical
//! metrics need.
//!
//! - [`files`]: one [`WeightFile`] per pretrained file (official name, alternative names, URL, sha256).
//! - [`resolve_with`]: where the file is — `IQA_WEIGHTS_DIR` (and its immediate subdirectories), then the cache
//!   directory, then a verified download into the cache directory.
//! - [`load_state_dict`]: a `.safetensors` or PyTorch `.pth`/`.pt` (zip or legacy format) as named CPU tensors,
//!   read with a restricted unpickler that executes nothing.
//! - [`load`]: both, plus a check of the expected keys and shapes.
//!
//! Every failure is [`ErrorKind::Weights`] with a message naming the file (and, for a missing file, every place
//! searched and the URL to fetch it from).
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::settings;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

mod download;
pub mod files;
mod pickle;
#[cfg(test)]
mod tests;
mod torch_file;

pub use download::{set_progress_callback, ProgressCallback};

/// One pretrained file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeightFile {
    /// Official file name: pyiqa's release asset (e.g. "LPIPS_v0.1_alex-df73285e.pth", "DISTS_weights-f5e65c96.pth")
    /// or torchvision's ("alexnet-owt-7be5be79.pth", "vgg16-397923af.pth", "squeezenet1_1-b8a52dc0.pth").
    pub official_name: &'static str,
    /// Other names the same tensors may have in IQA_WEIGHTS_DIR (e.g. "lpips_v0.1_alex_lin.safetensors",
    /// "lpips_v0.1_alex_lin.pth", "alexnet_features_torchvision.safetensors"), tried after the official name.
    pub alternative_names: &'static [&'static str],
    /// Where the official file is downloaded from.
    pub url: &'static str,
    /// sha256 of the official file as lowercase hex: the full digest, or a prefix of at least 8 hex digits
    /// (torchvision only publishes the prefix in the file name). Checked on every download. Empty when no
    /// verified digest is known: such a file is never downloaded, only found.
    pub sha256: &'static str,
}

/// The same description borrowed for any lifetime: for files known only at run time (a test server's URL, a
/// user's own file). `&WeightFile` converts into it, so [`resolve_with`] and [`load_with`] take either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileRef<'a> {
    pub official_name: &'a str,
    pub alternative_names: &'a [&'a str],
    pub url: &'a str,
    pub sha256: &'a str,
}

impl From<&WeightFile> for FileRef<'static> {
    fn from(f: &WeightFile) -> Self {
        FileRef { official_name: f.official_name, alternative_names: f.alternative_names, url: f.url, sha256: f.sha256 }
    }
}

impl<'a> From<&FileRef<'a>> for FileRef<'a> {
    fn from(f: &FileRef<'a>) -> Self {
        *f
    }
}

impl FileRef<'_> {
    /// The official name, then the alternative names.
    fn names(&self) -> impl Iterator<Item = &str> + '_ {
        std::iter::once(self.official_name).chain(self.alternative_names.iter().copied())
    }
}

/// Where [`resolve_with`] looks, read from the environment by [`SearchConfig::from_env`]; tests build it directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchConfig {
    /// `IQA_WEIGHTS_DIR`: searched first, the directory itself and its immediate subdirectories.
    pub weights_dir: Option<PathBuf>,
    /// `IQA_CACHE_DIR`, else the platform cache directory + `iqa/weights`: searched second, downloads go here.
    pub cache_dir: Option<PathBuf>,
    /// `IQA_OFFLINE=1`: never download.
    pub offline: bool,
}

impl SearchConfig {
    /// Reads `IQA_WEIGHTS_DIR`, `IQA_CACHE_DIR` and `IQA_OFFLINE` (runtime::settings parses them).
    pub fn from_env() -> Result<Self> {
        Ok(SearchConfig {
            weights_dir: settings::weights_dir(),
            cache_dir: settings::cache_dir().or_else(Self::default_cache_dir),
            offline: settings::offline()?,
        })
    }

    /// The platform cache directory + `iqa/weights` (`~/.cache/iqa/weights` on Linux), if there is one.
    pub fn default_cache_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("iqa").join("weights"))
    }
}

/// Finds the file: 1. IQA_WEIGHTS_DIR (the directory itself and its immediate subdirectories; official name
/// first, then alternative names), 2. the cache dir (IQA_CACHE_DIR, else the platform cache dir + "iqa/weights"),
/// 3. a download of `url` into the cache dir (unless IQA_OFFLINE=1): streamed to a temporary file in the cache
/// dir, sha256-verified, then renamed into place (never a half file under the final name), with progress
/// reported. Errors are ErrorKind::Weights with a message naming the file, every directory searched, and the
/// URL to fetch it from.
/// Finds a file with explicit directories (see [`load`] for the order and the download).
#[cfg(test)]
pub fn resolve_with<'a>(file: impl Into<FileRef<'a>>, config: &SearchConfig) -> Result<PathBuf> {
    resolve_impl(file.into(), config, false)
}

/// Whether [`load_state_dict`] reads files of this name (by extension: `.safetensors`, `.pth`, `.pt`, `.bin`).
pub fn is_loadable(path: &Path) -> bool {
    matches!(extension(path).as_deref(), Some("safetensors" | "pth" | "pt" | "bin"))
}

fn extension(path: &Path) -> Option<String> {
    path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase())
}

/// The immediate subdirectories of `dir`, sorted by name (so the search order does not depend on the file
/// system); hidden ones are skipped.
fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn resolve_impl(file: FileRef<'_>, config: &SearchConfig, loadable_only: bool) -> Result<PathBuf> {
    let names: Vec<&str> = file.names().filter(|n| !loadable_only || is_loadable(Path::new(n))).collect();
    let mut searched = Vec::new();

    if let Some(dir) = &config.weights_dir {
        let mut dirs = vec![dir.clone()];
        dirs.extend(subdirectories(dir));
        for name in &names {
            for d in &dirs {
                let p = d.join(name);
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        if dir.is_dir() {
            let subs: Vec<String> = dirs[1..].iter().map(|d| d.display().to_string()).collect();
            searched.push(if subs.is_empty() {
                format!("IQA_WEIGHTS_DIR {} (no subdirectories)", dir.display())
            } else {
                format!("IQA_WEIGHTS_DIR {} and its subdirectories {}", dir.display(), subs.join(", "))
            });
        } else {
            searched.push(format!("IQA_WEIGHTS_DIR {} (not a directory)", dir.display()));
        }
    } else {
        searched.push("IQA_WEIGHTS_DIR (not set)".to_string());
    }

    if let Some(cache) = &config.cache_dir {
        for name in &names {
            let p = cache.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
        searched.push(format!("cache directory {}", cache.display()));
    } else {
        searched.push("cache directory (none: no platform cache directory and IQA_CACHE_DIR not set)".to_string());
    }

    let fail = |reason: &str| {
        let dest = match &config.cache_dir {
            Some(c) => format!("{} or IQA_WEIGHTS_DIR", c.display()),
            None => "IQA_WEIGHTS_DIR".to_string(),
        };
        let looked_for = names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
        Error::new(
            ErrorKind::Weights,
            format!(
                "pretrained file '{}' not found ({reason}); looked for {looked_for} in {}; download it from {} into {dest}",
                file.official_name,
                searched.join("; "),
                file.url
            ),
        )
    };
    if loadable_only && !is_loadable(Path::new(file.official_name)) {
        // Downloading the official file would not help: iqa cannot read its format (a MATLAB .mat).
        let alternatives = match names.is_empty() {
            true => "a .safetensors or .pth copy".to_string(),
            false => names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(" or "),
        };
        return Err(Error::new(
            ErrorKind::Weights,
            format!(
                "pretrained file '{}' is needed as {alternatives}, which iqa can read, and none was found; looked in {}. \
                 The official file ({}) is in a format iqa does not read; put {alternatives} into IQA_WEIGHTS_DIR",
                file.official_name,
                searched.join("; "),
                file.url
            ),
        ));
    }
    if config.offline {
        return Err(fail("downloads are off: IQA_OFFLINE=1"));
    }
    if file.sha256.is_empty() {
        return Err(fail("no verified sha256 is known for it, so iqa does not download it"));
    }
    let Some(cache) = &config.cache_dir else {
        return Err(fail("nowhere to download it to: set IQA_CACHE_DIR"));
    };
    download::download(file.url, file.official_name, file.sha256, cache)
        .map_err(|e| fail(&format!("the download failed: {e}")))
}

/// Reads a state dict: `.safetensors` (tch::Tensor::read_safetensors), or a PyTorch `.pth`/`.pt` in either the
/// legacy (pre-1.6, non-zip) torch.save format or the zip format, with a restricted unpickler written here:
/// it only understands the opcodes and the few globals a tensor state dict needs (collections.OrderedDict,
/// torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, torch.*Storage types, ...) and refuses
/// anything else — no code is ever executed. Tensors come back on the CPU with their stored dtype, shape,
/// strides/offset applied (contiguous). Nested dicts (e.g. {"state_dict": {...}} or {"params": {...}}) are
/// flattened with "." joined keys; lists and tuples by index ("0", "1", ...); values that are not tensors (an
/// `epoch` int, a name) are skipped. Corrupt, truncated or unsupported files are ErrorKind::Weights naming the
/// path and what is wrong — never a panic.
pub fn load_state_dict(path: &Path) -> Result<HashMap<String, Tensor>> {
    let result = match extension(path).as_deref() {
        Some("safetensors") => read_safetensors(path),
        Some("pth" | "pt" | "bin") => torch_file::read(path),
        _ => Err("unsupported file type: iqa reads .safetensors and PyTorch .pth/.pt/.bin files".to_string()),
    };
    let tensors = result
        .map_err(|e| Error::new(ErrorKind::Weights, format!("cannot load weights from '{}': {e}", path.display())))?;
    Ok(tensors.into_iter().collect())
}

fn read_safetensors(path: &Path) -> std::result::Result<Vec<(String, Tensor)>, String> {
    // tch returns errors for malformed files; the catch is a second line of defence so that a bug in a
    // dependency's parsing still surfaces as an error, not an abort of the host program.
    let read = std::panic::catch_unwind(|| Tensor::read_safetensors(path));
    match read {
        Ok(Ok(tensors)) => Ok(tensors),
        Ok(Err(e)) => {
            let text = e.to_string();
            // tch's message repeats the path; keep what is wrong.
            let first = text.lines().next().unwrap_or("").trim().to_string();
            Err(format!("not a valid safetensors file: {first}"))
        }
        Err(_) => Err("not a valid safetensors file (the parser panicked)".to_string()),
    }
}

/// Checks that every `(key, shape)` of `expected` is in `tensors` with that shape. `path` names the file in the
/// message.
pub fn check_shapes(path: &Path, tensors: &HashMap<String, Tensor>, expected: &[(&str, &[i64])]) -> Result<()> {
    for (key, shape) in expected {
        match tensors.get(*key) {
            None => {
                let mut keys: Vec<&str> = tensors.keys().map(String::as_str).collect();
                keys.sort_unstable();
                let more = if keys.len() > 12 { format!(", ... ({} in all)", keys.len()) } else { String::new() };
                keys.truncate(12);
                return Err(Error::new(
                    ErrorKind::Weights,
                    format!(
                        "'{}': key '{key}' (expected shape {shape:?}) is missing; the file has {}{more}",
                        path.display(),
                        keys.join(", ")
                    ),
                ));
            }
            Some(t) => {
                let found = t.size();
                if found.as_slice() != *shape {
                    return Err(Error::new(
                        ErrorKind::Weights,
                        format!("'{}': key '{key}' has shape {found:?}, expected {shape:?}", path.display()),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// resolve + load_state_dict, plus a check that `expected` (key, shape) pairs are present with those shapes
/// (ErrorKind::Weights naming the key, the expected and the found shape). Only names [`load_state_dict`] can
/// read are considered (an official `.mat` is passed over for a `.safetensors` alternative).
pub fn load(file: &WeightFile, expected: &[(&str, &[i64])]) -> Result<HashMap<String, Tensor>> {
    load_with(file, &SearchConfig::from_env()?, expected)
}

/// [`load`] with explicit directories instead of the environment.
pub fn load_with<'a>(
    file: impl Into<FileRef<'a>>,
    config: &SearchConfig,
    expected: &[(&str, &[i64])],
) -> Result<HashMap<String, Tensor>> {
    let path = resolve_impl(file.into(), config, true)?;
    let tensors = load_state_dict(&path)?;
    check_shapes(&path, &tensors, expected)?;
    Ok(tensors)
}

/// The sha256 of a file as lowercase hex.
#[cfg(test)]
pub fn sha256_file(path: &Path) -> Result<String> {
    download::sha256_file(path)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read '{}' for its sha256: {e}", path.display())))
}
