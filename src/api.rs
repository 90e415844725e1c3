//! The safe Rust API: what the C layer wraps and what the CLI, tests and Rust users call.
use crate::error::{Error, Result};
use crate::image::{decode_file, to_batch_tensor, Image};
use crate::metrics::torchscript::{self, TorchScriptSpec};
use crate::metrics::Model;
use crate::registry::{self, Mode, ModelKey};
use crate::runtime::{self, DeviceRequest, Precision};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tch::{Device, Tensor};

/// Options that select the model a handle uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    pub device: DeviceRequest,
    /// `None`: `IQA_PRECISION`, else fp32.
    pub precision: Option<Precision>,
}

/// Name, mode, direction and range of a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricInfo {
    pub name: String,
    pub mode: Mode,
    pub lower_better: bool,
    pub score_range: (f64, f64),
}

/// A metric handle: a strong reference to a shared model plus the options it was created with.
/// `Send + Sync`: one handle may score from many threads at once.
pub struct Metric {
    info: MetricInfo,
    key: ModelKey,
    /// Always `Some` until dropped (taken in `Drop` to hand it back to the cache).
    model: Option<Arc<dyn Model>>,
}

/// Names of every metric `create_metric` accepts.
pub fn metric_names() -> Vec<String> {
    registry::available_names()
}

pub use registry::{cache_stats, CacheStats};

/// Switches the process to a preset (see [`runtime::Preset`]); environment variables set explicitly still win.
pub fn set_preset(preset: runtime::Preset) -> Result<()> {
    runtime::init()?;
    runtime::apply_preset(preset)
}

/// Creates a handle for a pyiqa metric name, sharing the model with other handles of the same name and
/// model-relevant options. Built-in metrics come first; other names are looked up as TorchScript modules
/// (`NAME.pt` + `NAME.json`) in `IQA_WEIGHTS_DIR`.
pub fn create_metric(name: &str, options: &Options) -> Result<Metric> {
    runtime::init()?;
    match registry::find_native(name) {
        Ok(native) => {
            let entry = native.entry;
            let info = MetricInfo {
                name: entry.name.to_string(),
                mode: entry.mode,
                lower_better: entry.lower_better,
                score_range: entry.score_range,
            };
            let precision = |device, requested| registry::effective_precision(name, device, requested);
            open(info, name.to_string(), options, precision, |key| native.build(key))
        }
        Err(not_native) => {
            let found = registry::torchscript_dir().and_then(|dir| torchscript::find_in(&dir, name));
            let Some((module, sidecar)) = found else { return Err(not_native) };
            let spec = TorchScriptSpec::from_sidecar(name, &sidecar)
                .map_err(|e| e.context(format_args!("metric '{name}'")))?;
            create_torchscript(&module, &spec, options)
        }
    }
}

/// Creates a handle for the TorchScript module at `path` (see [`crate::metrics::torchscript`]), described by
/// `spec`. Handles of the same file and model-relevant options share one loaded module.
pub fn create_torchscript(path: &Path, spec: &TorchScriptSpec, options: &Options) -> Result<Metric> {
    runtime::init()?;
    let info = MetricInfo {
        name: spec.name.clone(),
        mode: spec.mode,
        lower_better: spec.lower_better,
        score_range: spec.score_range,
    };
    // One file, one model, whatever names handles give it.
    let file = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mode = spec.mode;
    // The module is the user's: the precision asked for is the precision it runs in.
    open(
        info,
        format!("torchscript:{}", file.display()),
        options,
        |_, p| p,
        |key| Ok(Arc::new(torchscript::load(&file, mode, key.device, key.precision)?) as Arc<dyn Model>),
    )
}

/// Resolves the options into a cache key (with the precision the model really runs in), acquires the shared model (built by `build` if none is alive) and
/// wraps it in a handle.
fn open(
    info: MetricInfo,
    model_name: String,
    options: &Options,
    precision: impl FnOnce(Device, Precision) -> Precision,
    build: impl FnOnce(&ModelKey) -> Result<Arc<dyn Model>>,
) -> Result<Metric> {
    let name = info.name.clone();
    let in_context = |e: Error| e.context(format_args!("metric '{name}'"));
    let device = runtime::resolve_device(options.device).map_err(in_context)?;
    let requested = match options.precision {
        Some(p) => p,
        None => runtime::default_precision()?,
    };
    let precision = precision(device, requested);
    let key = ModelKey { name: model_name, device, precision };
    let model = registry::acquire(&key, || build(&key)).map_err(in_context)?;
    registry::handle_opened();
    Ok(Metric { info, key, model: Some(model) })
}

fn check_same_size(index: usize, dist: &Image<'_>, reference: &Image<'_>) -> Result<()> {
    if (dist.width(), dist.height()) != (reference.width(), reference.height()) {
        return Err(Error::shape(format!(
            "image {index}: distorted {}x{} and reference {}x{} differ in size",
            dist.width(),
            dist.height(),
            reference.width(),
            reference.height()
        )));
    }
    Ok(())
}

impl Drop for Metric {
    fn drop(&mut self) {
        if let Some(model) = self.model.take() {
            registry::release(&self.key, model);
        }
        registry::handle_closed();
    }
}

impl Metric {
    pub fn info(&self) -> &MetricInfo {
        &self.info
    }

    /// The device this handle's model runs on.
    pub fn device(&self) -> Device {
        self.key.device
    }

    /// The precision this handle's model runs in (fp32 for metrics that do not honour reduced precision).
    pub fn precision(&self) -> Precision {
        self.key.precision
    }

    /// Whether two handles use one loaded model (same metric or module file and model-relevant options).
    pub fn shares_model_with(&self, other: &Metric) -> bool {
        match (&self.model, &other.model) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    fn model(&self) -> &dyn Model {
        self.model.as_deref().expect("model present until drop")
    }

    fn in_context<T>(&self, r: Result<T>) -> Result<T> {
        r.map_err(|e| e.context(format_args!("metric '{}'", self.info.name)))
    }

    /// Scores one image (and its reference for FR metrics).
    pub fn score(&self, dist: &Image<'_>, reference: Option<&Image<'_>>) -> Result<f64> {
        let refs = reference.map(std::slice::from_ref);
        Ok(self.score_batch(std::slice::from_ref(dist), refs)?[0])
    }

    /// Scores many images; images of one size go through the model in one forward pass.
    pub fn score_batch(&self, dists: &[Image<'_>], refs: Option<&[Image<'_>]>) -> Result<Vec<f64>> {
        self.in_context(self.score_batch_inner(dists, refs))
    }

    fn check_mode(&self, has_ref: bool) -> Result<()> {
        match (self.info.mode, has_ref) {
            (Mode::FullReference, false) => Err(Error::invalid("is full-reference: a reference image is required")),
            (Mode::NoReference, true) => Err(Error::invalid("is no-reference: pass no reference image (NULL)")),
            _ => Ok(()),
        }
    }

    fn check_size(&self, index: usize, width: i64, height: i64) -> Result<()> {
        let (min_h, min_w) = self.model().min_size();
        if height < min_h || width < min_w {
            return Err(Error::shape(format!(
                "image {index} is {width}x{height}; this metric needs at least {min_w}x{min_h} pixels"
            )));
        }
        if let Some((max, why)) = self.model().max_pixels() {
            if width * height > max {
                return Err(Error::shape(format!(
                    "image {index} is {width}x{height} ({:.1} MP); this metric scores at most {:.1} MP: {why}; \
                     downscale or crop it",
                    (width * height) as f64 / 1e6,
                    max as f64 / 1e6
                )));
            }
        }
        Ok(())
    }

    fn score_batch_inner(&self, dists: &[Image<'_>], refs: Option<&[Image<'_>]>) -> Result<Vec<f64>> {
        if dists.is_empty() {
            return Err(Error::invalid("no images to score (count is 0)"));
        }
        self.check_mode(refs.is_some())?;
        if let Some(refs) = refs {
            if refs.len() != dists.len() {
                return Err(Error::invalid(format!("{} distorted images but {} references", dists.len(), refs.len())));
            }
            for (i, (d, r)) in dists.iter().zip(refs).enumerate() {
                check_same_size(i, d, r)?;
            }
        }
        for (i, d) in dists.iter().enumerate() {
            self.check_size(i, d.width() as i64, d.height() as i64)?;
        }
        if self.key.device == Device::Cpu {
            if let Some(scores) = self.model().score_pixels(dists, refs) {
                return scores;
            }
        }
        // One forward pass per distinct size (in chunks of the preset's batch limit).
        let mut groups: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
        for (i, d) in dists.iter().enumerate() {
            groups.entry((d.width(), d.height())).or_default().push(i);
        }
        let _no_grad = tch::no_grad_guard();
        let mut scores = vec![f64::NAN; dists.len()];
        let limit = runtime::settings().batch_limit.unwrap_or(usize::MAX);
        for indices in groups.values().flat_map(|group| group.chunks(limit)) {
            let pick = |set: &[Image<'_>]| {
                to_batch_tensor(&indices.iter().map(|&i| set[i]).collect::<Vec<_>>(), self.key.device)
            };
            let dist = pick(dists)?;
            let reference = refs.map(pick).transpose()?;
            let out = self.forward_checked(&dist, reference.as_ref())?;
            for (&i, s) in indices.iter().zip(out) {
                scores[i] = s;
            }
        }
        Ok(scores)
    }

    fn forward_checked(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Vec<f64>> {
        let n = dist.size()[0];
        let out = self.model().forward(dist, reference)?;
        let flat = out.f_reshape([-1])?;
        if flat.size()[0] != n {
            return Err(Error::new(
                crate::error::ErrorKind::Runtime,
                format!("model returned {:?} scores for a batch of {n}", out.size()),
            ));
        }
        Ok(Vec::<f64>::try_from(&flat)?)
    }

    /// Scores N×3×H×W float tensors in [0,1] directly (tests and benchmarks that already hold tensors).
    pub fn score_tensors(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Vec<f64>> {
        self.in_context((|| {
            self.check_mode(reference.is_some())?;
            let size = dist.size();
            if size.len() != 4 || size[1] != 3 {
                return Err(Error::invalid(format!("expected an N×3×H×W tensor, got {size:?}")));
            }
            if let Some(r) = reference {
                if r.size() != size {
                    return Err(Error::shape(format!("distorted {size:?} and reference {:?} differ", r.size())));
                }
            }
            self.check_size(0, size[3], size[2])?;
            let _no_grad = tch::no_grad_guard();
            let dist = dist.f_to_device(self.key.device)?.f_to_kind(tch::Kind::Float)?;
            let reference =
                reference.map(|r| r.f_to_device(self.key.device)?.f_to_kind(tch::Kind::Float)).transpose()?;
            self.forward_checked(&dist, reference.as_ref())
        })())
    }

    /// A per-pixel distance map of one pair, height×width values in row-major order (larger = more different),
    /// for metrics that define one: the LPIPS family (its spatial map: each layer's distance upsampled to the
    /// image size and summed). Other metrics are `InvalidArgument`.
    pub fn score_map(&self, dist: &Image<'_>, reference: &Image<'_>) -> Result<Vec<f32>> {
        self.in_context((|| {
            let lpips =
                self.model().as_lpips().ok_or_else(|| Error::invalid("has no spatial map (supported: lpips*)"))?;
            check_same_size(0, dist, reference)?;
            self.check_size(0, dist.width() as i64, dist.height() as i64)?;
            let _no_grad = tch::no_grad_guard();
            let d = to_batch_tensor(std::slice::from_ref(dist), self.key.device)?;
            let r = to_batch_tensor(std::slice::from_ref(reference), self.key.device)?;
            let map = lpips.distance_map(&d, &r)?.f_reshape([-1])?.f_to_kind(tch::Kind::Float)?;
            Ok(Vec::<f32>::try_from(&map)?)
        })())
    }

    /// Decodes and scores image files (the reference only for FR metrics).
    pub fn score_files(&self, dist: &Path, reference: Option<&Path>) -> Result<f64> {
        self.in_context(self.check_mode(reference.is_some()))?;
        let dist = decode_file(dist)?;
        let reference = reference.map(decode_file).transpose()?;
        self.score(&dist.as_image(), reference.as_ref().map(|r| r.as_image()).as_ref())
    }
}
