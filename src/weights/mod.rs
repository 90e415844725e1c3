//! Pretrained weights: finding, downloading, verifying and loading every pretrained file the deep and classical
//! metrics need.
//!
//! - [`files`]: one [`WeightFile`] per pretrained file (official name, alternative names, URL, sha256, built-in
//!   copy, key renames); [`builtin`]: the copies built into the library.
//! - [`locate_with`]: where the file is — `IQA_WEIGHTS_DIR` (and its immediate subdirectories), the built-in
//!   copy, torch.hub's `pyiqa` and `checkpoints` folders, iqa's cache directory, else a verified download.
//! - [`load_state_dict`]: a `.safetensors`, PyTorch `.pth`/`.pt` (zip or legacy format, read with a restricted
//!   unpickler that executes nothing) or MATLAB `.mat` ([`mat`]) as named CPU tensors.
//! - [`load`]: all of it, plus a check of the expected keys and shapes.
//!
//! Every failure is [`ErrorKind::Weights`] with a message naming the file (and, for a missing file, every place
//! searched and the URL to fetch it from).
use crate::error::{Error, ErrorKind, Result};
use crate::runtime::settings;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

pub mod builtin;
mod download;
pub mod files;
pub mod mat;
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
    /// (torchvision only publishes the prefix in the file name). Checked on every download, and (full digests)
    /// on files found in the torch hub. Empty when no verified digest is known: such a file is never
    /// downloaded, only found.
    pub sha256: &'static str,
    /// The copy built into the library ([`builtin`]): safetensors parts whose tensors together are the file's,
    /// under iqa's key names. Empty when there is none.
    pub builtin: &'static [&'static [u8]],
    /// Keys of the official file that iqa names otherwise: (official key, iqa's key). A renamed tensor whose
    /// shape differs from the expected one only by dimensions of size 1 is reshaped (MATLAB stores a vector
    /// as a 1×N or N×1 matrix).
    pub renames: &'static [(&'static str, &'static str)],
}

/// The same description borrowed for any lifetime: for files known only at run time (a test server's URL, a
/// user's own file). `&WeightFile` converts into it, so [`locate_with`] and [`load_with`] take either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileRef<'a> {
    pub official_name: &'a str,
    pub alternative_names: &'a [&'a str],
    pub url: &'a str,
    pub sha256: &'a str,
    pub builtin: &'a [&'a [u8]],
    pub renames: &'a [(&'a str, &'a str)],
}

impl From<&WeightFile> for FileRef<'static> {
    fn from(f: &WeightFile) -> Self {
        FileRef {
            official_name: f.official_name,
            alternative_names: f.alternative_names,
            url: f.url,
            sha256: f.sha256,
            builtin: f.builtin,
            renames: f.renames,
        }
    }
}

impl<'a> From<&FileRef<'a>> for FileRef<'a> {
    fn from(f: &FileRef<'a>) -> Self {
        *f
    }
}

impl<'a> FileRef<'a> {
    /// A file with no alternative names, no built-in copy and no renamed keys.
    #[cfg(test)]
    pub fn plain(official_name: &'a str, url: &'a str, sha256: &'a str) -> Self {
        FileRef { official_name, alternative_names: &[], url, sha256, builtin: &[], renames: &[] }
    }

    /// The official name, then the alternative names.
    fn names(&self) -> impl Iterator<Item = &str> + '_ {
        std::iter::once(self.official_name).chain(self.alternative_names.iter().copied())
    }
}

/// Where [`locate_with`] looks, read from the environment by [`SearchConfig::from_env`]; tests build it directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchConfig {
    /// `IQA_WEIGHTS_DIR`: searched first, the directory itself and its immediate subdirectories.
    pub weights_dir: Option<PathBuf>,
    /// torch.hub's directory (`$TORCH_HOME/hub`, default `~/.cache/torch/hub`): its `pyiqa` folder (pyiqa's
    /// downloads) and `checkpoints` folder (torchvision's) are searched after the built-in copies.
    pub torch_hub: Option<PathBuf>,
    /// `IQA_CACHE_DIR`, else `~/.cache/iqa/weights`: searched last, downloads go here.
    pub cache_dir: Option<PathBuf>,
    /// `IQA_OFFLINE=1`: never download.
    pub offline: bool,
}

impl SearchConfig {
    /// Reads `IQA_WEIGHTS_DIR`, `TORCH_HOME`, `IQA_CACHE_DIR`, `IQA_OFFLINE` (and `XDG_CACHE_HOME`, `HOME` for the
    /// defaults; runtime::settings parses them).
    pub fn from_env() -> Result<Self> {
        Ok(SearchConfig {
            weights_dir: settings::weights_dir(),
            torch_hub: settings::torch_hub_dir(),
            cache_dir: settings::cache_dir().or_else(|| settings::cache_home().map(|c| c.join("iqa").join("weights"))),
            offline: settings::offline()?,
        })
    }
}

/// Which folder a file was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `IQA_WEIGHTS_DIR` or one of its immediate subdirectories.
    WeightsDir,
    /// torch.hub's `pyiqa` or `checkpoints` folder.
    TorchHub,
    /// iqa's cache directory (where iqa's downloads land).
    Cache,
}

/// Where a file comes from on this machine, as [`locate_with`] finds it (nothing is downloaded).
#[derive(Debug, Clone)]
pub enum Location {
    /// The copy built into the library.
    Builtin,
    /// A file on disk.
    Found(PathBuf),
    /// Not here; the first use will download `url` into `dir` (sha256-verified).
    Download { url: String, dir: PathBuf },
    /// Not here and not downloadable now: the error names the file, every place searched and the URL.
    Missing(Error),
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

/// The first of `names` that is a file in one of `dirs` (names in order, each through every dir).
fn first_file<'n>(names: impl IntoIterator<Item = &'n str>, dirs: &[PathBuf]) -> Option<PathBuf> {
    names.into_iter().flat_map(|name| dirs.iter().map(move |d| d.join(name))).find(|p| p.is_file())
}

/// Finds a file without downloading it. The order, and why:
/// 1. `IQA_WEIGHTS_DIR` (the directory and its immediate subdirectories; official name first, then the
///    alternative names): a user who sets it means those files, so they win even over the built-in copy.
/// 2. The copy built into the library: verified when it was committed, no I/O.
/// 3. torch.hub's `pyiqa`, `checkpoints` and `clip` folders (official names only: that is how pyiqa, torchvision
///    and pyiqa's CLIP loader save them), so that a machine where pyiqa has run works offline at once.
/// 4. iqa's cache directory (official names first).
/// 5. Otherwise the first use downloads it into the cache ([`Location::Download`]), if it may.
pub fn locate_with<'a>(file: impl Into<FileRef<'a>>, config: &SearchConfig) -> Location {
    let file = file.into();
    match search(file, config) {
        Search::Builtin => Location::Builtin,
        Search::Found(path, _) => Location::Found(path),
        Search::NotFound(searched) => match (refusal(file, config), &config.cache_dir) {
            (None, Some(cache)) => Location::Download { url: file.url.to_string(), dir: cache.clone() },
            (reason, _) => Location::Missing(missing(file, config, &searched, reason.unwrap_or_default())),
        },
    }
}

/// What [`search`] found: the built-in copy, a file, or nothing (with the places searched, for the message).
enum Search {
    Builtin,
    Found(PathBuf, Place),
    NotFound(Vec<String>),
}

/// Steps 1–4 of [`locate_with`].
fn search(file: FileRef<'_>, config: &SearchConfig) -> Search {
    let mut searched = Vec::new();

    if let Some(dir) = &config.weights_dir {
        let mut dirs = vec![dir.clone()];
        dirs.extend(subdirectories(dir));
        if let Some(p) = first_file(file.names(), &dirs) {
            return Search::Found(p, Place::WeightsDir);
        }
        searched.push(if !dir.is_dir() {
            format!("IQA_WEIGHTS_DIR {} (not a directory)", dir.display())
        } else if dirs.len() == 1 {
            format!("IQA_WEIGHTS_DIR {} (no subdirectories)", dir.display())
        } else {
            let subs: Vec<String> = dirs[1..].iter().map(|d| d.display().to_string()).collect();
            format!("IQA_WEIGHTS_DIR {} and its subdirectories {}", dir.display(), subs.join(", "))
        });
    } else {
        searched.push("IQA_WEIGHTS_DIR (not set)".to_string());
    }

    if !file.builtin.is_empty() {
        return Search::Builtin;
    }

    if let Some(hub) = &config.torch_hub {
        // pyiqa's zoo, torchvision's checkpoints, and OpenAI's CLIP files as pyiqa's CLIP loader keeps them.
        let dirs = [hub.join("pyiqa"), hub.join("checkpoints"), hub.join("clip")];
        if let Some(p) = first_file([file.official_name], &dirs) {
            return Search::Found(p, Place::TorchHub);
        }
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        searched.push(format!("the torch hub's {}", shown.join(", ")));
    } else {
        searched.push("the torch hub (none: TORCH_HOME, XDG_CACHE_HOME and HOME are not set)".to_string());
    }

    if let Some(cache) = &config.cache_dir {
        if let Some(p) = first_file(file.names(), std::slice::from_ref(cache)) {
            return Search::Found(p, Place::Cache);
        }
        searched.push(format!("cache directory {}", cache.display()));
    } else {
        searched.push("cache directory (none: IQA_CACHE_DIR, XDG_CACHE_HOME and HOME are not set)".to_string());
    }

    Search::NotFound(searched)
}

/// Why a file that is not here cannot be downloaded now, if it cannot.
fn refusal(file: FileRef<'_>, config: &SearchConfig) -> Option<&'static str> {
    if config.offline {
        Some("downloads are off: IQA_OFFLINE=1")
    } else if file.sha256.is_empty() {
        Some("no verified sha256 is known for it, so iqa does not download it")
    } else if config.cache_dir.is_none() {
        Some("nowhere to download it to: set IQA_CACHE_DIR")
    } else {
        None
    }
}

/// The error for a file that is not here: its name, every name and place searched, and where to get it.
fn missing(file: FileRef<'_>, config: &SearchConfig, searched: &[String], reason: &str) -> Error {
    let dest = match &config.cache_dir {
        Some(c) => format!("{} or IQA_WEIGHTS_DIR", c.display()),
        None => "IQA_WEIGHTS_DIR".to_string(),
    };
    let looked_for = file.names().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
    Error::new(
        ErrorKind::Weights,
        format!(
            "pretrained file '{}' not found ({reason}); looked for {looked_for} in {}; download it from {} into {dest}",
            file.official_name,
            searched.join("; "),
            file.url
        ),
    )
}

/// Finds the file (see [`locate_with`]), downloading it into the cache if that is where it must come from:
/// streamed to a temporary file in the cache dir, sha256-verified, then renamed into place (never a half file
/// under the final name), with progress reported. `None` is the built-in copy.
fn fetch(file: FileRef<'_>, config: &SearchConfig) -> Result<Option<(PathBuf, Place)>> {
    match search(file, config) {
        Search::Builtin => Ok(None),
        Search::Found(path, place) => Ok(Some((path, place))),
        Search::NotFound(searched) => {
            if let Some(reason) = refusal(file, config) {
                return Err(missing(file, config, &searched, reason));
            }
            let cache = config.cache_dir.as_deref().expect("refusal() checked that there is a cache dir");
            download::download(file.url, file.official_name, file.sha256, cache)
                .map(|path| Some((path, Place::Cache)))
                .map_err(|e| missing(file, config, &searched, &format!("the download failed: {e}")))
        }
    }
}

/// The path [`load_with`] would read (`None`: the built-in copy), downloading the file if needed.
#[cfg(test)]
pub fn resolve_with<'a>(file: impl Into<FileRef<'a>>, config: &SearchConfig) -> Result<Option<PathBuf>> {
    Ok(fetch(file.into(), config)?.map(|(path, _)| path))
}

/// Reads a state dict: `.safetensors`, a PyTorch `.pth`/`.pt` in either the legacy (pre-1.6, non-zip)
/// torch.save format or the zip format, or a MATLAB level-5 `.mat` ([`mat`]). PyTorch files go through a
/// restricted unpickler written here: it only understands the opcodes and the few globals a tensor state dict
/// needs (collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter,
/// torch.*Storage types, ...) and refuses anything else — no code is ever executed. Tensors come back on the CPU
/// with their stored dtype, shape, strides/offset applied (contiguous). Nested dicts (e.g. {"state_dict": {...}})
/// are flattened with "." joined keys; lists, tuples and MATLAB cell arrays by index ("0", "1", ...); values
/// that are not tensors (an `epoch` int, a name) are skipped; MATLAB struct fields are read as `struct.field`
/// and `struct.k` (k-th field). MATLAB arrays keep their shape
/// (row-major tensors of the column-major data), doubles as float64, singles as float32. Corrupt, truncated or
/// unsupported files are ErrorKind::Weights naming the path and what is wrong — never a panic.
pub fn load_state_dict(path: &Path) -> Result<HashMap<String, Tensor>> {
    let read_bytes = |read: fn(&[u8]) -> Read| {
        std::fs::read(path).map_err(|e| format!("cannot read it: {e}")).and_then(|bytes| read(&bytes))
    };
    let result = match extension(path).as_deref() {
        Some("safetensors") => read_bytes(read_safetensors),
        Some("pth" | "pt" | "bin") => torch_file::read(path),
        Some("mat") => read_bytes(read_mat),
        _ => Err("unsupported file type: iqa reads .safetensors, PyTorch .pth/.pt/.bin and MATLAB .mat files".into()),
    };
    let tensors = result
        .map_err(|e| Error::new(ErrorKind::Weights, format!("cannot load weights from '{}': {e}", path.display())))?;
    Ok(tensors.into_iter().collect())
}

/// Named tensors read from a file, or what is wrong with it.
type Read = std::result::Result<Vec<(String, Tensor)>, String>;

/// The tensors of a safetensors file's bytes.
pub(crate) fn read_safetensors(bytes: &[u8]) -> Read {
    // The safetensors crate checks every offset and size; the catch is a second line of defence so that a bug
    // in a dependency's parsing still surfaces as an error, not an abort of the host program.
    std::panic::catch_unwind(|| {
        let file =
            safetensors::SafeTensors::deserialize(bytes).map_err(|e| format!("not a valid safetensors file: {e}"))?;
        file.tensors()
            .into_iter()
            .map(|(name, view)| {
                let tensor = Tensor::try_from(view).map_err(|e| format!("tensor '{name}': {e}"))?;
                Ok((name, tensor))
            })
            .collect()
    })
    .unwrap_or_else(|_| Err("not a valid safetensors file (the parser panicked)".to_string()))
}

/// The numeric arrays of a MAT-file as tensors; cell items as `name.i`, struct fields as `name.field` and
/// `name.k`.
fn read_mat(bytes: &[u8]) -> Read {
    fn add(name: String, value: mat::MatValue, out: &mut Vec<(String, Tensor)>) -> std::result::Result<(), String> {
        match value {
            mat::MatValue::Numeric { dims, single, data } => {
                // Column-major data of dims (d0, d1, ...) is the row-major tensor of the reversed dims, transposed.
                let reversed: Vec<i64> = dims.iter().rev().map(|&d| d as i64).collect();
                let order: Vec<i64> = (0..dims.len() as i64).rev().collect();
                let kind = if single { tch::Kind::Float } else { tch::Kind::Double };
                let tensor = (|| {
                    Tensor::f_from_slice(&data)?
                        .f_reshape(&reversed)?
                        .f_permute(&order)?
                        .f_contiguous()?
                        .f_to_kind(kind)
                })()
                .map_err(|e| format!("'{name}': {e}"))?;
                out.push((name, tensor));
            }
            mat::MatValue::Cell { items, .. } => {
                for (i, item) in items.into_iter().enumerate() {
                    add(format!("{name}.{i}"), item, out)?;
                }
            }
            mat::MatValue::Struct { dims, fields, items } => {
                // Each field as `name.field` and, as the same tensors, `name.k` for the k-th field: pyiqa reads
                // some MAT structs by position (NRQM's forests). Elements of a struct array as `name.i.field`.
                let elements = dims.iter().product::<usize>();
                for (i, item) in items.into_iter().enumerate() {
                    let (element, k) = (i / fields.len(), i % fields.len());
                    let prefix = if elements == 1 { name.clone() } else { format!("{name}.{element}") };
                    let (by_name, by_position) = (format!("{prefix}.{}", fields[k]), format!("{prefix}.{k}"));
                    let first = out.len();
                    add(by_name.clone(), item, out)?;
                    let aliases: Vec<(String, Tensor)> = out[first..]
                        .iter()
                        .map(|(key, t)| (key.replacen(&by_name, &by_position, 1), t.shallow_clone()))
                        .collect();
                    out.extend(aliases);
                }
            }
            mat::MatValue::Unsupported { .. } => {}
        }
        Ok(())
    }
    let mut out = Vec::new();
    for (name, value) in mat::read(bytes)? {
        add(name, value, &mut out)?;
    }
    Ok(out)
}

/// Checks that every `(key, shape)` of `expected` is in `tensors` with that shape. `source` names the file in
/// the message.
pub fn check_shapes(source: &str, tensors: &HashMap<String, Tensor>, expected: &[(&str, &[i64])]) -> Result<()> {
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
                        "'{source}': key '{key}' (expected shape {shape:?}) is missing; the file has {}{more}",
                        keys.join(", ")
                    ),
                ));
            }
            Some(t) => {
                let found = t.size();
                if found.as_slice() != *shape {
                    return Err(Error::new(
                        ErrorKind::Weights,
                        format!("'{source}': key '{key}' has shape {found:?}, expected {shape:?}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Renames the official file's keys to iqa's ([`WeightFile::renames`]), reshaping a renamed tensor to its
/// expected shape where the two differ only by dimensions of size 1.
fn apply_renames(tensors: &mut HashMap<String, Tensor>, renames: &[(&str, &str)], expected: &[(&str, &[i64])]) {
    let squeezed = |shape: &[i64]| shape.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
    for &(official, ours) in renames {
        if tensors.contains_key(ours) {
            continue;
        }
        let Some(mut tensor) = tensors.remove(official) else { continue };
        if let Some((_, shape)) = expected.iter().find(|(key, _)| *key == ours) {
            if squeezed(&tensor.size()) == squeezed(shape) {
                tensor = tensor.reshape(*shape);
            }
        }
        tensors.insert(ours.to_string(), tensor);
    }
}

/// The file's tensors from wherever [`locate_with`] finds it (downloading it if it must), with iqa's key names
/// ([`WeightFile::renames`]), checked against `expected` (key, shape) pairs (ErrorKind::Weights naming the key,
/// the expected and the found shape). A file found in the torch hub whose full sha256 is known is checked
/// against it first: pyiqa saves its downloads unchecked. (torchvision's files there carry the first 8 hex
/// digits of their sha256 in their names, which torch checked when it downloaded them.)
pub fn load(file: &WeightFile, expected: &[(&str, &[i64])]) -> Result<HashMap<String, Tensor>> {
    load_with(file, &SearchConfig::from_env()?, expected)
}

/// [`load`] with explicit directories instead of the environment.
pub fn load_with<'a>(
    file: impl Into<FileRef<'a>>,
    config: &SearchConfig,
    expected: &[(&str, &[i64])],
) -> Result<HashMap<String, Tensor>> {
    let file = file.into();
    let (source, mut tensors) = match fetch(file, config)? {
        None => (format!("built-in {}", file.official_name), builtin::read(file.builtin, file.official_name)?),
        Some((path, place)) => {
            if place == Place::TorchHub && file.sha256.len() == 64 {
                verify(&path, file.sha256)?;
            }
            (path.display().to_string(), load_state_dict(&path)?)
        }
    };
    apply_renames(&mut tensors, file.renames, expected);
    check_shapes(&source, &tensors, expected)?;
    Ok(tensors)
}

/// Checks a file's sha256 against the full digest `expected`.
fn verify(path: &Path, expected: &str) -> Result<()> {
    let found = download::sha256_file(path)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read '{}' for its sha256: {e}", path.display())))?;
    if found != expected {
        return Err(Error::new(
            ErrorKind::Weights,
            format!(
                "'{}' has sha256 {found}, expected {expected}: it is not the file of that name iqa knows; \
                 delete it (it will be downloaded again) or put the right file into IQA_WEIGHTS_DIR",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The sha256 of a file as lowercase hex.
#[cfg(test)]
pub fn sha256_file(path: &Path) -> Result<String> {
    download::sha256_file(path)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read '{}' for its sha256: {e}", path.display())))
}
