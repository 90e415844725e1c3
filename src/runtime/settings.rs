//! Every environment variable iqa reads, parsed here with one policy: unset or empty means the default, and
//! a value that does not parse is an error naming the variable and the values it accepts. Also the presets
//! and the process-wide settings they select.
use crate::error::{Error, Result};
use std::path::PathBuf;

/// Numeric precision of inference. Metrics whose scores move under reduced precision stay in fp32/fp64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// float32 (float64 where a metric needs it): pyiqa's numbers.
    #[default]
    Fp32,
    /// IEEE half precision for the metrics that honour it (GPU only; fp32 on the CPU).
    Fp16,
    /// bfloat16 for the metrics that honour it.
    Bf16,
}

impl Precision {
    /// Parses `fp32`/`float32`, `fp16`/`float16`/`half`, `bf16`/`bfloat16` (any case).
    pub fn parse(text: &str) -> Option<Precision> {
        match text.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Some(Precision::Fp32),
            "fp16" | "float16" | "half" => Some(Precision::Fp16),
            "bf16" | "bfloat16" => Some(Precision::Bf16),
            _ => None,
        }
    }
}

/// Where a metric runs, as requested by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceRequest {
    /// CUDA when usable, else CPU; `IQA_DEVICE` overrides it.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The CUDA device of this index.
    Cuda(usize),
}

impl DeviceRequest {
    /// Parses `auto`, `cpu`, `cuda` (= `cuda:0`), `gpu`, `cuda:N`.
    pub fn parse(text: &str) -> Option<DeviceRequest> {
        let text = text.trim().to_ascii_lowercase();
        match text.as_str() {
            "cpu" => Some(DeviceRequest::Cpu),
            "cuda" | "gpu" => Some(DeviceRequest::Cuda(0)),
            "auto" => Some(DeviceRequest::Auto),
            _ => text.strip_prefix("cuda:").and_then(|n| n.parse().ok()).map(DeviceRequest::Cuda),
        }
    }
}

/// A named set of runtime settings (`IQA_PRESET`, `iqa_set_preset`). Environment variables set explicitly
/// (`IQA_PRECISION`, `IQA_NUM_THREADS`, `IQA_CACHE_SIZE`) override what a preset says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// The default: fp32 everywhere, every core, no model kept after its last handle, whole batches per
    /// forward pass, freed buffers kept for reuse by the allocator.
    #[default]
    Accuracy,
    /// As `accuracy`, plus bf16 for the metrics whose scores it moves by less than 1e-3, and the 4 most
    /// recently freed models kept loaded.
    Speed,
    /// Lowest peak memory: fp32, one image per forward pass, memory handed back to the system when freed.
    Memory,
}

impl Preset {
    /// Parses `accuracy`, `speed`, `memory` (any case).
    pub fn parse(text: &str) -> Option<Preset> {
        match text.trim().to_ascii_lowercase().as_str() {
            "accuracy" => Some(Preset::Accuracy),
            "speed" => Some(Preset::Speed),
            "memory" => Some(Preset::Memory),
            _ => None,
        }
    }
}

/// What a preset sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub preset: Preset,
    pub precision: Precision,
    pub cache_size: usize,
    /// Most images per forward pass (`None`: a whole same-size group at once).
    pub batch_limit: Option<usize>,
}

impl Settings {
    pub const fn of(preset: Preset) -> Settings {
        match preset {
            Preset::Accuracy => Settings { preset, precision: Precision::Fp32, cache_size: 0, batch_limit: None },
            Preset::Speed => Settings { preset, precision: Precision::Bf16, cache_size: 4, batch_limit: None },
            Preset::Memory => Settings { preset, precision: Precision::Fp32, cache_size: 0, batch_limit: Some(1) },
        }
    }
}

/// Whether libtorch's CUDA backend may be loaded (`IQA_CUDA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CudaPolicy {
    /// Load it where a CUDA driver is present (the default).
    Auto,
    /// Never load it.
    Off,
    /// Load it even without a driver (tests check that it registers).
    Force,
}

/// A variable's value: `None` when unset or blank; an error naming the variable when it is not Unicode or
/// `parse` refuses it.
fn parse_var<T>(name: &str, accepted: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<Option<T>> {
    let refuse = |value: &str| Error::invalid(format!("{name}={value:?} is not valid; accepted: {accepted}"));
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(refuse(&v.to_string_lossy())),
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => parse(v.trim()).map(Some).ok_or_else(|| refuse(&v)),
    }
}

fn parse_switch(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// `IQA_DEVICE`: what AUTO means.
pub fn device() -> Result<Option<DeviceRequest>> {
    parse_var("IQA_DEVICE", "auto, cpu, cuda, cuda:N", DeviceRequest::parse)
}

/// `IQA_PRESET`.
pub fn preset() -> Result<Option<Preset>> {
    parse_var("IQA_PRESET", "accuracy, speed, memory", Preset::parse)
}

/// `IQA_PRECISION`: the default precision over the preset's.
pub fn precision() -> Result<Option<Precision>> {
    parse_var("IQA_PRECISION", "fp32, fp16, bf16", Precision::parse)
}

/// `IQA_NUM_THREADS`: CPU threads.
pub fn num_threads() -> Result<Option<usize>> {
    parse_var("IQA_NUM_THREADS", "a positive integer", |v| v.parse().ok().filter(|n| *n > 0))
}

/// `IQA_CACHE_SIZE`: how many recently freed models stay loaded.
pub fn cache_size() -> Result<Option<usize>> {
    parse_var("IQA_CACHE_SIZE", "a non-negative integer", |v| v.parse().ok())
}

/// `IQA_CUDA`.
pub fn cuda_policy() -> Result<CudaPolicy> {
    let policy =
        parse_var("IQA_CUDA", "auto, 0 (or off, no, false), force", |v| match v.to_ascii_lowercase().as_str() {
            "auto" => Some(CudaPolicy::Auto),
            "force" => Some(CudaPolicy::Force),
            other => parse_switch(other).filter(|on| !on).map(|_| CudaPolicy::Off),
        })?;
    Ok(policy.unwrap_or(CudaPolicy::Auto))
}

/// `IQA_OFFLINE`: never download weights.
pub fn offline() -> Result<bool> {
    Ok(parse_var("IQA_OFFLINE", "1, 0, true, false, yes, no, on, off", parse_switch)?.unwrap_or(false))
}

/// Parses every variable, so that a malformed one is reported at the first metric whether or not that metric
/// reads it.
pub fn check_all() -> Result<()> {
    device()?;
    preset()?;
    precision()?;
    num_threads()?;
    cache_size()?;
    cuda_policy()?;
    offline()?;
    Ok(())
}

/// A directory variable (`IQA_WEIGHTS_DIR`, `IQA_CACHE_DIR`): any non-empty path.
fn path_var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// `IQA_WEIGHTS_DIR`: searched first for pretrained files and TorchScript modules.
pub fn weights_dir() -> Option<PathBuf> {
    path_var("IQA_WEIGHTS_DIR")
}

/// `IQA_CACHE_DIR`: where downloaded weights are kept.
pub fn cache_dir() -> Option<PathBuf> {
    path_var("IQA_CACHE_DIR")
}

/// The user's home directory: `HOME`, else the system's record of the user.
pub fn home_dir() -> Option<PathBuf> {
    path_var("HOME").or_else(std::env::home_dir)
}

/// A leading `~` or `~/` replaced by the home directory, as Python's `os.path.expanduser` does.
fn expand_home(path: PathBuf) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => home_dir().map_or(path.clone(), |home| home.join(rest)),
        Err(_) => path,
    }
}

/// The user's cache directory: `XDG_CACHE_HOME`, else `~/.cache` (the default of both torch.hub and iqa's
/// download cache).
pub fn cache_home() -> Option<PathBuf> {
    path_var("XDG_CACHE_HOME").map(expand_home).or_else(|| home_dir().map(|home| home.join(".cache")))
}

/// torch.hub's directory as `torch.hub.get_dir()` computes it: `$TORCH_HOME/hub`, else
/// `$XDG_CACHE_HOME/torch/hub`, else `~/.cache/torch/hub`. pyiqa downloads into its `pyiqa` folder,
/// torchvision into its `checkpoints` folder.
pub fn torch_hub_dir() -> Option<PathBuf> {
    let torch_home = path_var("TORCH_HOME").map(expand_home).or_else(|| cache_home().map(|c| c.join("torch")));
    torch_home.map(|t| t.join("hub"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers_accept_their_documented_values() {
        assert_eq!(Precision::parse(" BF16 "), Some(Precision::Bf16));
        assert_eq!(Precision::parse("half"), Some(Precision::Fp16));
        assert_eq!(Precision::parse("fp64"), None);
        assert_eq!(DeviceRequest::parse("cuda:3"), Some(DeviceRequest::Cuda(3)));
        assert_eq!(DeviceRequest::parse("gpu"), Some(DeviceRequest::Cuda(0)));
        assert_eq!(DeviceRequest::parse("cuda:x"), None);
        assert_eq!(Preset::parse("Memory"), Some(Preset::Memory));
        assert_eq!(parse_switch("off"), Some(false));
        assert_eq!(parse_switch("2"), None);
    }

    #[test]
    fn a_leading_tilde_is_the_home_directory() {
        let home = home_dir().expect("a home directory");
        assert_eq!(expand_home(PathBuf::from("~/x/y")), home.join("x/y"));
        assert_eq!(expand_home(PathBuf::from("~")), home);
        assert_eq!(expand_home(PathBuf::from("/a/~/b")), PathBuf::from("/a/~/b"));
        assert_eq!(expand_home(PathBuf::from("~user/b")), PathBuf::from("~user/b"));
    }
}
