//! TorchScript-backed metrics: modules exported from pyiqa's model zoo (scripts/export_torchscript.py) whose
//! `forward` takes N×3×H×W float32 tensors in [0,1] (dist, and ref for FR metrics) and returns N scores.
//! Everything else (resizing, normalisation, crops) lives inside the module.
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Mode, Model};
use crate::runtime::Precision;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use tch::{CModule, Device, Kind, Tensor};

/// What a module does and how to read its scores: the C `IqaTorchScriptSpec`, or a module's `NAME.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchScriptSpec {
    /// What [`crate::Metric::info`] reports.
    pub name: String,
    /// FR: `forward(dist, ref)`; NR: `forward(dist)`.
    pub mode: Mode,
    /// Whether lower scores mean better quality.
    pub lower_better: bool,
    /// NaN where unknown.
    pub score_range: (f64, f64),
}

impl TorchScriptSpec {
    /// Reads a sidecar `{"mode": "FR" | "NR", "lower_better": false, "score_range": [0.0, 1.0]}` (score_range
    /// optional; other keys are ignored). The metric is named `name`.
    pub fn from_sidecar(name: &str, sidecar: &Path) -> Result<Self> {
        let bad = |what: String| Error::new(ErrorKind::Weights, format!("sidecar {}: {what}", sidecar.display()));
        let text = std::fs::read_to_string(sidecar)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read sidecar {}: {e}", sidecar.display())))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let mode = match json.get("mode").and_then(|m| m.as_str()) {
            Some("FR") => Mode::FullReference,
            Some("NR") => Mode::NoReference,
            _ => return Err(bad("\"mode\" must be \"FR\" or \"NR\"".into())),
        };
        let lower_better = match json.get("lower_better") {
            Some(v) => v.as_bool().ok_or_else(|| bad("\"lower_better\" must be true or false".into()))?,
            None => false,
        };
        let score_range = match json.get("score_range") {
            None | Some(serde_json::Value::Null) => (f64::NAN, f64::NAN),
            Some(v) => match v.as_array().map(|a| a.iter().map(|x| x.as_f64()).collect::<Vec<_>>()).as_deref() {
                Some([Some(lo), Some(hi)]) => (*lo, *hi),
                _ => return Err(bad("\"score_range\" must be [min, max]".into())),
            },
        };
        Ok(TorchScriptSpec { name: name.to_string(), mode, lower_better, score_range })
    }
}

/// The module file and sidecar of the metric `name` in `dir` (`NAME.pt` + `NAME.json`), if both exist.
pub fn find_in(dir: &Path, name: &str) -> Option<(PathBuf, PathBuf)> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return None;
    }
    let module = dir.join(format!("{name}.pt"));
    let sidecar = dir.join(format!("{name}.json"));
    (module.is_file() && sidecar.is_file()).then_some((module, sidecar))
}

/// Names of the modules in `dir` that have a sidecar, sorted.
pub fn discover(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "pt").then_some(())?;
            let name = path.file_stem()?.to_str()?.to_string();
            find_in(dir, &name).map(|_| name)
        })
        .collect();
    names.sort();
    names
}

/// `torch::jit::load` goes through process-wide registries (class types, the compilation unit): loads are
/// serialised.
static LOAD_LOCK: Mutex<()> = Mutex::new(());

/// A loaded module, in eval mode, on its device, in its precision.
pub struct TorchScriptModel {
    module: CModule,
    /// The dtype inputs are given in (the module's parameters were converted to it at load).
    input_kind: Kind,
}

/// Loads the module at `path` for `mode` on `device`. A missing file is an IO error; a file that is not a
/// TorchScript archive, or whose `forward` takes the wrong number of images for `mode`, a weights error: both
/// at creation, not at the first score.
pub fn load(path: &Path, mode: Mode, device: Device, precision: Precision) -> Result<TorchScriptModel> {
    let what = || format!("TorchScript module {}", path.display());
    if !path.is_file() {
        return Err(Error::new(ErrorKind::Io, format!("{} not found (or not a file)", what())));
    }
    let mut module = {
        let _serialised = LOAD_LOCK.lock();
        CModule::load_on_device(path, device).map_err(|e| {
            let first = e.to_string().lines().next().unwrap_or("").trim().to_string();
            Error::new(ErrorKind::Weights, format!("{} is not a loadable TorchScript archive: {first}", what()))
        })?
    };
    module.f_set_eval()?;
    let input_kind = match precision {
        Precision::Fp32 => Kind::Float,
        Precision::Fp16 => Kind::Half,
        Precision::Bf16 => Kind::BFloat16,
    };
    if input_kind != Kind::Float {
        module.to(device, input_kind, false);
    }
    let model = TorchScriptModel { module, input_kind };
    model.check_arity(mode).map_err(|e| e.context(what()))?;
    Ok(model)
}

impl TorchScriptModel {
    /// Calls `forward` with as many empty tensors as `mode` passes images: libtorch checks the arguments
    /// against the schema before running any of the body, so a wrong count is told apart from the body
    /// failing on empty input (which is expected and ignored).
    fn check_arity(&self, mode: Mode) -> Result<()> {
        let count = match mode {
            Mode::FullReference => 2,
            Mode::NoReference => 1,
        };
        let empty = Tensor::f_zeros([0, 3, 0, 0], (self.input_kind, Device::Cpu))?;
        let args: Vec<&Tensor> = std::iter::repeat_n(&empty, count).collect();
        let _no_grad = tch::no_grad_guard();
        match self.module.forward_ts(&args) {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = e.to_string();
                let lower = text.to_ascii_lowercase();
                if lower.contains("expected at most") || lower.contains("missing value for argument") {
                    let declaration = text
                        .lines()
                        .find_map(|l| l.split_once("Declaration:").map(|(_, d)| d.trim().to_string()))
                        .unwrap_or_default();
                    let wanted = match mode {
                        Mode::FullReference => "forward(dist, ref) for an FR metric",
                        Mode::NoReference => "forward(dist) for an NR metric",
                    };
                    Err(Error::new(ErrorKind::Weights, format!("its {declaration} does not take {wanted}")))
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl Model for TorchScriptModel {
    fn forward(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Tensor> {
        let dist = dist.f_to_kind(self.input_kind)?;
        let reference = reference.map(|r| r.f_to_kind(self.input_kind)).transpose()?;
        let out = match &reference {
            Some(r) => self.module.forward_ts(&[&dist, r]),
            None => self.module.forward_ts(&[&dist]),
        }?;
        Ok(out.f_to_kind(Kind::Double)?)
    }
}
