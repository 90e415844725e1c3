//! The safe Rust API: what the C layer wraps and what the CLI, tests and Rust users call.
use crate::cache;
use crate::error::{Error, ErrorKind, Result};
use crate::image::{decode_pair, frames_to_batch_tensor, to_batch_tensor, DecodedImage, Frame, Image, PixelFormat};
use crate::metrics::torchscript;
use crate::model::{MetricSpec, Model, ModelKey, Prepared};
use crate::registry;
use crate::runtime::{self, settings};
use crate::weights::{self, Location, SearchConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::{Device, Tensor};

pub use crate::cache::Stats as CacheStats;
pub use crate::metrics::torchscript::TorchScriptSpec;
pub use crate::model::Mode;
pub use crate::runtime::{DeviceRequest, Precision, Preset};
pub use crate::weights::ProgressCallback;

/// Options that select the model a handle uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Where the model runs.
    pub device: DeviceRequest,
    /// `None`: `IQA_PRECISION`, else fp32.
    pub precision: Option<Precision>,
}

/// Name, mode, direction and range of a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricInfo {
    /// pyiqa's name (or the TorchScript module's).
    pub name: String,
    /// Full-reference or no-reference.
    pub mode: Mode,
    /// Whether lower scores mean better quality.
    pub lower_better: bool,
    /// Rough range as pyiqa states it; NaN where unknown.
    pub score_range: (f64, f64),
}

/// A per-pixel map of a pair ([`Metric::score_map`]): `values` holds height×width floats, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityMap {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// Sizes a metric accepts: smallest (height, width), and the largest pixel count with the reason.
#[derive(Debug, Clone, Copy)]
struct SizeLimits {
    min: (u32, u32),
    max_pixels: Option<(u64, &'static str)>,
}

/// A metric handle: a strong reference to a shared model plus the options it was created with.
/// `Send + Sync`: one handle may score from many threads at once.
pub struct Metric {
    info: MetricInfo,
    key: ModelKey,
    limits: SizeLimits,
    /// Whether it scores images against captions (and only so).
    captioned: bool,
    /// Always `Some` until dropped (taken in `Drop` to hand it back to the cache).
    model: Option<Arc<dyn Model>>,
}

/// Where one pretrained file a metric needs comes from on this machine.
#[derive(Debug, Clone, PartialEq)]
pub enum FileSource {
    /// Built into the library.
    BuiltIn,
    /// Found at this path (`IQA_WEIGHTS_DIR`, torch.hub's pyiqa or checkpoints folder, or iqa's cache).
    Found(PathBuf),
    /// Not here: the first use downloads it from `url` (sha256-verified) into `into`.
    Download {
        /// The official URL.
        url: String,
        /// iqa's cache directory.
        into: PathBuf,
    },
    /// Not here and not downloadable now: the message names every place searched and where to get it.
    Missing(String),
}

/// One pretrained file and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct FileStatus {
    /// The official file name (pyiqa's or torchvision's).
    pub name: String,
    /// Where it comes from here.
    pub source: FileSource,
}

/// Whether a metric can be created here now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Everything it needs is built in or found.
    Ready,
    /// Creating it downloads a file first.
    Download,
    /// A file is missing and cannot be downloaded now (offline, or no verified checksum).
    Missing,
}

/// What [`metric_status`] says about a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricStatus {
    /// Name, mode, direction and range, as a handle would report them.
    pub info: MetricInfo,
    /// Whether it can be created here now.
    pub availability: Availability,
    /// The pretrained files it needs (none for most classical metrics).
    pub files: Vec<FileStatus>,
    /// The TorchScript module file, for a metric that is one.
    pub module: Option<PathBuf>,
    /// Whether it scores images against captions ([`Metric::takes_caption`]).
    pub takes_caption: bool,
}

impl MetricStatus {
    /// One line per file ("NAME: built in", "NAME: found at PATH", "NAME: will download from URL into DIR",
    /// "NAME: missing: WHY"), or what else the metric is made of.
    pub fn describe(&self) -> String {
        if let Some(module) = &self.module {
            return format!("TorchScript module {}", module.display());
        }
        if self.files.is_empty() {
            return "needs no pretrained file".to_string();
        }
        let line = |f: &FileStatus| match &f.source {
            FileSource::BuiltIn => format!("{}: built in", f.name),
            FileSource::Found(path) => format!("{}: found at {}", f.name, path.display()),
            FileSource::Download { url, into } => {
                format!("{}: will download from {url} into {}", f.name, into.display())
            }
            FileSource::Missing(why) => format!("{}: missing: {why}", f.name),
        };
        self.files.iter().map(line).collect::<Vec<_>>().join("\n")
    }
}

/// Whether the metric `name` can be created here, and for each pretrained file it needs, where that comes from
/// (built in, found at a path, to be downloaded from a URL, or missing), without creating it or downloading
/// anything. Unknown names are `UnknownMetric` (with the same message as [`create_metric`]); a malformed
/// `IQA_OFFLINE` is `InvalidArgument`.
pub fn metric_status(name: &str) -> Result<MetricStatus> {
    let spec = match registry::find_builtin(name) {
        Ok(spec) => spec,
        Err(not_builtin) => {
            let found = settings::weights_dir().and_then(|dir| torchscript::find_in(&dir, name));
            let Some((module, sidecar)) = found else { return Err(not_builtin) };
            let spec = TorchScriptSpec::from_sidecar(name, &sidecar)
                .map_err(|e| e.context(format_args!("metric '{name}'")))?;
            let info = MetricInfo {
                name: spec.name,
                mode: spec.mode,
                lower_better: spec.lower_better,
                score_range: spec.score_range,
            };
            return Ok(MetricStatus {
                info,
                availability: Availability::Ready,
                files: Vec::new(),
                module: Some(module),
                takes_caption: false,
            });
        }
    };
    let config = SearchConfig::from_env()?;
    let files: Vec<FileStatus> = spec
        .weights
        .iter()
        .map(|file| FileStatus {
            name: file.official_name.to_string(),
            source: match weights::locate_with(*file, &config) {
                Location::Builtin => FileSource::BuiltIn,
                Location::Found(path) => FileSource::Found(path),
                Location::Download { url, dir } => FileSource::Download { url, into: dir },
                Location::Missing(e) => FileSource::Missing(e.message),
            },
        })
        .collect();
    let availability = if files.iter().any(|f| matches!(f.source, FileSource::Missing(_))) {
        Availability::Missing
    } else if files.iter().any(|f| matches!(f.source, FileSource::Download { .. })) {
        Availability::Download
    } else {
        Availability::Ready
    };
    Ok(MetricStatus { info: spec_info(spec), availability, files, module: None, takes_caption: spec.captioned })
}

fn spec_info(spec: &MetricSpec) -> MetricInfo {
    MetricInfo {
        name: spec.name.to_string(),
        mode: spec.mode,
        lower_better: spec.lower_better,
        score_range: spec.score_range,
    }
}

/// pyiqa's own description of every metric it has (mode, direction, range), built into iqa or not: for listing
/// the names iqa does not build, which `scripts/export_torchscript.py NAME` turns into TorchScript modules.
pub fn pyiqa_catalogue() -> Vec<MetricInfo> {
    registry::pyiqa_entries()
        .map(|e| MetricInfo {
            name: e.name.to_string(),
            mode: e.mode,
            lower_better: e.lower_better,
            score_range: e.score_range,
        })
        .collect()
}

/// Names of every metric `create_metric` accepts.
pub fn metric_names() -> Vec<String> {
    registry::available_names()
}

/// Distinct models loaded (shared between handles) and metric handles alive, process-wide.
pub fn cache_stats() -> CacheStats {
    cache::stats()
}

/// CUDA devices this process can use (0 where libtorch's CUDA backend or a driver is missing).
pub fn cuda_device_count() -> usize {
    runtime::cuda_device_count()
}

/// Whether libtorch's CUDA backend is loaded in this process, or why not (no driver, `IQA_CUDA=0`, ...).
pub fn cuda_backend() -> std::result::Result<(), String> {
    runtime::load_cuda_backend()
}

/// Sets the process-wide download progress callback, `(file name, bytes done, total bytes if known)`;
/// `None` restores the default, a line on stderr every 10 %.
pub fn set_download_progress(callback: Option<ProgressCallback>) {
    crate::weights::set_progress_callback(callback)
}

/// The preset the process runs with now.
pub fn current_preset() -> Preset {
    runtime::current_settings().preset
}

/// The precision used where [`Options::precision`] is `None`: `IQA_PRECISION`, else the current preset's.
pub fn default_precision() -> Result<Precision> {
    runtime::init()?;
    runtime::default_precision()
}

/// Switches the process to a preset (see [`Preset`]); environment variables set explicitly still win.
pub fn set_preset(preset: Preset) -> Result<()> {
    runtime::init()?;
    runtime::apply_preset(preset)
}

/// Creates a handle for a pyiqa metric name, sharing the model with other handles of the same name and
/// model-relevant options. Built-in metrics come first; other names are looked up as TorchScript modules
/// (`NAME.pt` + `NAME.json`) in `IQA_WEIGHTS_DIR`.
pub fn create_metric(name: &str, options: &Options) -> Result<Metric> {
    runtime::init()?;
    match registry::find_builtin(name) {
        Ok(spec) => open_builtin(spec, options),
        Err(not_builtin) => {
            let found = settings::weights_dir().and_then(|dir| torchscript::find_in(&dir, name));
            let Some((module, sidecar)) = found else { return Err(not_builtin) };
            let spec = TorchScriptSpec::from_sidecar(name, &sidecar)
                .map_err(|e| e.context(format_args!("metric '{name}'")))?;
            create_torchscript(&module, &spec, options)
        }
    }
}

fn open_builtin(spec: &'static MetricSpec, options: &Options) -> Result<Metric> {
    let info = spec_info(spec);
    let limits = SizeLimits { min: spec.min_size, max_pixels: spec.max_pixels };
    let precision = |device, requested| spec.effective_precision(device, requested);
    open(info, spec.name.to_string(), limits, spec.captioned, options, precision, spec.build)
}

/// Creates a handle for the TorchScript module at `path`, described by
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
        SizeLimits { min: (1, 1), max_pixels: None },
        false,
        options,
        |_, p| p,
        |key| Ok(Arc::new(torchscript::load(&file, mode, key.device, key.precision)?) as Arc<dyn Model>),
    )
}

/// Resolves the options into a cache key (with the precision the model really runs in), acquires the shared
/// model (built by `build` if none is alive) and wraps it in a handle.
fn open(
    info: MetricInfo,
    model_name: String,
    limits: SizeLimits,
    captioned: bool,
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
    // Checked now so that a malformed IQA_CACHE_SIZE is an error here rather than ignored when the handle goes.
    runtime::cache_size()?;
    let key = ModelKey { name: model_name, device, precision };
    let model = cache::acquire(&key, cache::Kind::Model, || build(&key)).map_err(in_context)?;
    cache::handle_opened();
    Ok(Metric { info, key, limits, captioned, model: Some(model) })
}

/// What a batch of inputs gives the scoring: their sizes and their conversion to one tensor.
trait Pictures {
    /// "image" or "frame", in messages.
    const NOUN: &'static str;
    fn len(&self) -> usize;
    fn size(&self, index: usize) -> (u32, u32);
    /// The pictures at `indices` (of one size) as an N×3×H×W float32 tensor on `device`.
    fn tensor(&self, indices: &[usize], device: Device) -> Result<Tensor>;
}

impl Pictures for [Image<'_>] {
    const NOUN: &'static str = "image";
    fn len(&self) -> usize {
        <[Image<'_>]>::len(self)
    }
    fn size(&self, index: usize) -> (u32, u32) {
        (self[index].width(), self[index].height())
    }
    fn tensor(&self, indices: &[usize], device: Device) -> Result<Tensor> {
        to_batch_tensor(&indices.iter().map(|&i| self[i]).collect::<Vec<_>>(), device)
    }
}

impl Pictures for [Frame<'_>] {
    const NOUN: &'static str = "frame";
    fn len(&self) -> usize {
        <[Frame<'_>]>::len(self)
    }
    fn size(&self, index: usize) -> (u32, u32) {
        (self[index].width(), self[index].height())
    }
    fn tensor(&self, indices: &[usize], device: Device) -> Result<Tensor> {
        frames_to_batch_tensor(&indices.iter().map(|&i| self[i]).collect::<Vec<_>>(), device)
    }
}

fn check_same_size<P: Pictures + ?Sized>(index: usize, dists: &P, refs: &P) -> Result<()> {
    let ((dw, dh), (rw, rh)) = (dists.size(index), refs.size(index));
    if (dw, dh) != (rw, rh) {
        return Err(Error::shape(format!(
            "{} {index}: distorted {dw}x{dh} and reference {rw}x{rh} differ in size",
            P::NOUN
        )));
    }
    Ok(())
}

impl Drop for Metric {
    fn drop(&mut self) {
        if let Some(model) = self.model.take() {
            cache::release(&self.key, model, runtime::cache_size().unwrap_or(0));
        }
        cache::handle_closed();
    }
}

impl Metric {
    /// Name, mode, direction and range.
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
        if self.captioned {
            return Err(Error::invalid(
                "scores an image against a caption: give one (Metric::score_captioned, iqa_score_captioned, \
                 iqa score --caption)",
            ));
        }
        match (self.info.mode, has_ref) {
            (Mode::FullReference, false) => Err(Error::invalid("is full-reference: a reference image is required")),
            (Mode::NoReference, true) => Err(Error::invalid("is no-reference: pass no reference image (NULL)")),
            _ => Ok(()),
        }
    }

    fn check_size(&self, index: usize, width: i64, height: i64) -> Result<()> {
        let (min_h, min_w) = (self.limits.min.0 as i64, self.limits.min.1 as i64);
        if height < min_h || width < min_w {
            return Err(Error::shape(format!(
                "image {index} is {width}x{height}; this metric needs at least {min_w}x{min_h} pixels"
            )));
        }
        if let Some((max, why)) = self.limits.max_pixels {
            if (width * height) as u64 > max {
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
        self.check_batch(dists, refs)?;
        if self.key.device == Device::Cpu {
            if let Some(scores) = self.model().score_pixels(dists, refs) {
                return scores;
            }
        }
        self.forward_batch(dists, refs)
    }

    /// The checks every batch passes: not empty, a reference exactly for FR metrics, one per input, pairs of
    /// one size, sizes the metric accepts.
    fn check_batch<P: Pictures + ?Sized>(&self, dists: &P, refs: Option<&P>) -> Result<()> {
        if dists.len() == 0 {
            return Err(Error::invalid(format!("no {}s to score (count is 0)", P::NOUN)));
        }
        self.check_mode(refs.is_some())?;
        if let Some(refs) = refs {
            if refs.len() != dists.len() {
                return Err(Error::invalid(format!(
                    "{} distorted {noun}s but {} references",
                    dists.len(),
                    refs.len(),
                    noun = P::NOUN
                )));
            }
            for i in 0..dists.len() {
                check_same_size(i, dists, refs)?;
            }
        }
        for i in 0..dists.len() {
            let (w, h) = dists.size(i);
            self.check_size(i, w as i64, h as i64)?;
        }
        Ok(())
    }

    /// Scores checked inputs: one forward pass per distinct size (in chunks of the preset's batch limit).
    fn forward_batch<P: Pictures + ?Sized>(&self, dists: &P, refs: Option<&P>) -> Result<Vec<f64>> {
        let mut groups: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
        for i in 0..dists.len() {
            groups.entry(dists.size(i)).or_default().push(i);
        }
        let _no_grad = tch::no_grad_guard();
        let mut scores = vec![f64::NAN; dists.len()];
        let limit = runtime::current_settings().batch_limit.unwrap_or(usize::MAX);
        for indices in groups.values().flat_map(|group| group.chunks(limit)) {
            let dist = dists.tensor(indices, self.key.device)?;
            let reference = refs.map(|r| r.tensor(indices, self.key.device)).transpose()?;
            let out = self.forward_checked(&dist, reference.as_ref())?;
            for (&i, s) in indices.iter().zip(out) {
                scores[i] = s;
            }
        }
        Ok(scores)
    }

    /// Scores one video frame (and its reference frame for FR metrics): the metric's score on the frame's RGB
    /// conversion (see [`Frame::to_rgb_f32`]). Distorted and reference frames may differ in format.
    pub fn score_frame(&self, dist: &Frame<'_>, reference: Option<&Frame<'_>>) -> Result<f64> {
        let refs = reference.map(std::slice::from_ref);
        Ok(self.score_frames(std::slice::from_ref(dist), refs)?[0])
    }

    /// Scores many frames; frames of one size go through the model in one forward pass.
    pub fn score_frames(&self, dists: &[Frame<'_>], refs: Option<&[Frame<'_>]>) -> Result<Vec<f64>> {
        self.in_context((|| {
            self.check_batch(dists, refs)?;
            if let Some(scores) = self.score_frames_direct(dists, refs) {
                return scores;
            }
            self.forward_batch(dists, refs)
        })())
    }

    /// The model's own frame path ([`Model::score_frames`]) on checked frames, where it has one for them.
    pub(crate) fn score_frames_direct(
        &self,
        dists: &[Frame<'_>],
        refs: Option<&[Frame<'_>]>,
    ) -> Option<Result<Vec<f64>>> {
        if self.key.device != Device::Cpu {
            return None;
        }
        self.model().score_frames(dists, refs)
    }

    /// Whether this metric scores a `width`×`height` input, with a reference or not: the checks of
    /// [`Metric::score`] that do not need the pixels.
    pub(crate) fn check_input(&self, width: u32, height: u32, has_ref: bool) -> Result<()> {
        self.in_context(self.check_mode(has_ref).and_then(|()| self.check_size(0, width as i64, height as i64)))
    }

    fn forward_checked(&self, dist: &Tensor, reference: Option<&Tensor>) -> Result<Vec<f64>> {
        self.scores_of(self.model().forward(dist, reference)?, dist.size()[0] as usize)
    }

    /// A model's output for a batch of `n`, as n scores.
    fn scores_of(&self, out: Tensor, n: usize) -> Result<Vec<f64>> {
        let n = n as i64;
        let flat = out.f_reshape([-1])?;
        if flat.size()[0] != n {
            return Err(Error::new(
                ErrorKind::Runtime,
                format!("model returned {:?} scores for a batch of {n}", out.size()),
            ));
        }
        Ok(Vec::<f64>::try_from(&flat)?)
    }

    /// Scores N×3×H×W float tensors in 0..1 directly (tests and benchmarks that already hold tensors).
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

    /// The per-pixel map of one pair, for metrics that define one: the LPIPS family (a distance: each layer's
    /// distance upsampled to the image size and summed; its mean is close to the score), `ssim`/`ssimc` (the
    /// SSIM index, (W−10)×(H−10): its mean is the score), `psnr`/`psnry` (the squared error: its mean is the
    /// MSE, and the score 10·log10(1/(MSE + 1e-8))) and `gmsd` (the gradient magnitude similarity of the
    /// half-size luma: its standard deviation is the score). Other metrics are `InvalidArgument`.
    pub fn score_map(&self, dist: &Image<'_>, reference: &Image<'_>) -> Result<QualityMap> {
        self.in_context((|| {
            let map = self.map_capability()?;
            check_same_size(0, std::slice::from_ref(dist), std::slice::from_ref(reference))?;
            self.check_size(0, dist.width() as i64, dist.height() as i64)?;
            let (height, width) = map.map_size(dist.height() as i64, dist.width() as i64);
            let _no_grad = tch::no_grad_guard();
            let d = to_batch_tensor(std::slice::from_ref(dist), self.key.device)?;
            let r = to_batch_tensor(std::slice::from_ref(reference), self.key.device)?;
            let values = map.map(&d, &r)?;
            if values.size() != [1, 1, height, width] {
                return Err(Error::new(
                    ErrorKind::Runtime,
                    format!("map of shape {:?}, expected [1, 1, {height}, {width}]", values.size()),
                ));
            }
            let values = values.f_reshape([-1])?.f_to_kind(tch::Kind::Float)?;
            Ok(QualityMap { width: width as u32, height: height as u32, values: Vec::<f32>::try_from(&values)? })
        })())
    }

    /// The (width, height) of [`Metric::score_map`]'s map for an image of `width`×`height`: the image's own
    /// except for `ssim`/`ssimc` (10 fewer each way) and `gmsd` (half). `InvalidArgument` for metrics without
    /// a map.
    pub fn map_size(&self, width: u32, height: u32) -> Result<(u32, u32)> {
        let map = self.in_context(self.map_capability())?;
        let (h, w) = map.map_size(height as i64, width as i64);
        Ok((w.max(0) as u32, h.max(0) as u32))
    }

    fn map_capability(&self) -> Result<&dyn crate::model::DistanceMap> {
        self.model()
            .distance_map()
            .ok_or_else(|| Error::invalid("has no spatial map (supported: lpips*, ssim, ssimc, psnr, psnry, gmsd)"))
    }

    /// Decodes and scores image files (the reference only for FR metrics).
    pub fn score_files(&self, dist: &Path, reference: Option<&Path>) -> Result<f64> {
        self.in_context(self.check_mode(reference.is_some()))?;
        let (dist, reference) = decode_pair(dist, reference);
        let (dist, reference) = (dist?, reference.transpose()?);
        self.score(&dist.as_image(), reference.as_ref().map(|r| r.as_image()).as_ref())
    }

    /// Whether the metric scores an image against a caption (`clipscore`): then only the `*_captioned` methods
    /// score with it, and they score with no other metric.
    pub fn takes_caption(&self) -> bool {
        self.captioned
    }

    /// Scores one image against a caption (UTF-8 text of any length; CLIP reads its first 77 tokens).
    pub fn score_captioned(&self, image: &Image<'_>, caption: &str) -> Result<f64> {
        Ok(self.score_batch_captioned(std::slice::from_ref(image), &[caption])?[0])
    }

    /// Scores images against one caption each; images of one size go through the model in one forward pass.
    pub fn score_batch_captioned(&self, images: &[Image<'_>], captions: &[&str]) -> Result<Vec<f64>> {
        self.in_context((|| {
            if !self.captioned {
                return Err(Error::invalid("takes no caption: score it with score/score_batch"));
            }
            if images.is_empty() {
                return Err(Error::invalid("no images to score (count is 0)"));
            }
            if captions.len() != images.len() {
                return Err(Error::invalid(format!("{} images but {} captions", images.len(), captions.len())));
            }
            for (i, image) in images.iter().enumerate() {
                self.check_size(i, image.width() as i64, image.height() as i64)?;
            }
            let mut groups: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
            for (i, image) in images.iter().enumerate() {
                groups.entry((image.width(), image.height())).or_default().push(i);
            }
            let _no_grad = tch::no_grad_guard();
            let mut scores = vec![f64::NAN; images.len()];
            let limit = runtime::current_settings().batch_limit.unwrap_or(usize::MAX);
            for indices in groups.values().flat_map(|group| group.chunks(limit)) {
                let batch = images.tensor(indices, self.key.device)?;
                let texts: Vec<&str> = indices.iter().map(|&i| captions[i]).collect();
                let out = self.model().forward_captioned(&batch, &texts)?;
                for (&i, s) in indices.iter().zip(self.scores_of(out, indices.len())?) {
                    scores[i] = s;
                }
            }
            Ok(scores)
        })())
    }

    /// Decodes an image file and scores it against a caption.
    pub fn score_files_captioned(&self, path: &Path, caption: &str) -> Result<f64> {
        let image = self.in_context(crate::image::decode_file(path))?;
        self.score_captioned(&image.as_image(), caption)
    }

    /// Prepares `reference` for scoring many distorted images against it with this full-reference metric
    /// ([`Metric::score_with_reference`]): the pixels are copied (the caller's buffer may go) and checked, and
    /// the metric's share of the work on the reference (LPIPS' and DISTS' backbone activations, the reference
    /// moments of SSIM on the CPU, MAD's reference maps) is done now, once.
    pub fn prepare_reference(&self, reference: &Image<'_>) -> Result<PreparedReference> {
        self.in_context((|| {
            if self.info.mode != Mode::FullReference {
                return Err(Error::invalid("is no-reference: it has no reference to prepare"));
            }
            self.check_size(0, reference.width() as i64, reference.height() as i64)?;
            // The tensor conversion checks float pixels, so they are refused now rather than at each score.
            let model = self.model();
            let float =
                matches!(reference.format(), PixelFormat::RgbF32 | PixelFormat::GrayF32 | PixelFormat::RgbF32Planar);
            let prepared = if model.prepares_references() || float {
                let tensor = to_batch_tensor(std::slice::from_ref(reference), self.key.device)?;
                let _no_grad = tch::no_grad_guard();
                if model.prepares_references() {
                    model.prepare(&tensor)?
                } else {
                    None
                }
            } else {
                None
            };
            Ok(PreparedReference { key: self.key.clone(), pixels: DecodedImage::copy_of(reference), prepared })
        })())
    }

    /// Scores each of `dists` against a reference prepared by this metric (the same metric, device and
    /// precision): the scores of [`Metric::score`] on each pair alone.
    pub fn score_with_reference(&self, dists: &[Image<'_>], reference: &PreparedReference) -> Result<Vec<f64>> {
        self.in_context((|| {
            if reference.key != self.key {
                let describe = |k: &ModelKey| format!("'{}' on {:?} in {:?}", k.name, k.device, k.precision);
                return Err(Error::invalid(format!(
                    "the reference was prepared by {}, not by this handle's {}",
                    describe(&reference.key),
                    describe(&self.key)
                )));
            }
            let ref_image = reference.pixels.as_image();
            self.check_batch(dists, Some(&vec![ref_image; dists.len()]))?;
            // One image at a time, as each pair alone runs: some metrics' batches differ from their single
            // images in the last bits.
            let Some(prepared) = &reference.prepared else {
                let single =
                    |d: &Image<'_>| Ok(self.score_batch_inner(std::slice::from_ref(d), Some(&[ref_image]))?[0]);
                return dists.iter().map(single).collect();
            };
            if self.key.device == Device::Cpu {
                if let Some(scores) = self.model().score_pixels_prepared(dists, prepared) {
                    return scores;
                }
            }
            let _no_grad = tch::no_grad_guard();
            let limit = runtime::current_settings().batch_limit.unwrap_or(usize::MAX);
            let mut scores = Vec::with_capacity(dists.len());
            for chunk in dists.chunks(limit) {
                let tensor = to_batch_tensor(chunk, self.key.device)?;
                let out = self.model().forward_prepared(&tensor, prepared)?.f_reshape([-1])?;
                if out.size() != [chunk.len() as i64] {
                    return Err(Error::new(
                        ErrorKind::Runtime,
                        format!("model returned {:?} scores for a batch of {}", out.size(), chunk.len()),
                    ));
                }
                scores.extend(Vec::<f64>::try_from(&out)?);
            }
            Ok(scores)
        })())
    }
}

/// A reference image prepared once by a full-reference metric ([`Metric::prepare_reference`]), to score many
/// distorted images against (an encoder's quality ladder, a sweep of restorations): a copy of its pixels and
/// what the metric keeps of its work on them. Usable from many threads at once.
pub struct PreparedReference {
    key: ModelKey,
    pixels: DecodedImage,
    prepared: Option<Prepared>,
}

impl PreparedReference {
    /// The reference's width and height.
    pub fn size(&self) -> (u32, u32) {
        (self.pixels.as_image().width(), self.pixels.as_image().height())
    }

    /// The name of the metric that prepared it.
    pub fn metric_name(&self) -> &str {
        &self.key.name
    }

    /// Whether the metric kept work of its own (backbone activations, SSIM's moments, MAD's maps); otherwise
    /// scoring against it scores each pair as given, which saves the caller the reference's decoding only.
    pub fn keeps_work(&self) -> bool {
        self.prepared.is_some()
    }
}
