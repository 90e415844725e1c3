//! The metric catalogue (pyiqa names → mode, lower_better, score range, how to build) and the weak-reference
//! cache of built models shared by every handle.
use crate::catalogue::PYIQA_METRICS;
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::torchscript;
use crate::metrics::{
    brisque, cw_ssim::CwSsim, dists, entropy::Entropy, fsim::Fsim, gmsd::Gmsd, ilniqe, lpips, mad::Mad, niqe,
    nlpd::Nlpd, piqe::Piqe, psnr::Psnr, ssim, vif::Vif, vsi::Vsi, Model,
};
use crate::runtime::{self, Precision};
use once_cell::sync::Lazy;
use parking_lot::ReentrantMutex;
use std::any::Any;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use tch::Device;

/// Full-reference (dist + ref) or no-reference (dist only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    FullReference,
    NoReference,
}

/// What pyiqa's default config says about a metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatalogueEntry {
    pub name: &'static str,
    pub mode: Mode,
    pub lower_better: bool,
    /// Rough range as pyiqa states it; NaN where it states none.
    pub score_range: (f64, f64),
}

/// Everything a builder needs to know; each field is part of the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelKey {
    pub name: String,
    pub device: Device,
    pub precision: Precision,
}

type Builder = fn(&ModelKey) -> Result<Arc<dyn Model>>;

/// Metrics implemented natively, by pyiqa name. Their metadata comes from the catalogue.
const NATIVE: &[(&str, Builder)] = &[
    ("psnr", |_| Ok(Arc::new(Psnr { luma_only: false }))),
    ("psnry", |_| Ok(Arc::new(Psnr { luma_only: true }))),
    ("ssim", |k| Ok(Arc::new(ssim::Ssim::new(true, k.device)?))),
    ("ssimc", |k| Ok(Arc::new(ssim::Ssim::new(false, k.device)?))),
    ("ms_ssim", |k| Ok(Arc::new(ssim::MsSsim::new(k.device)?))),
    ("entropy", |_| Ok(Arc::new(Entropy))),
    ("lpips", |k| lpips::build(k, "alex", false)),
    ("lpips-vgg", |k| lpips::build(k, "vgg", false)),
    ("lpips+", |k| lpips::build(k, "alex", true)),
    ("lpips-vgg+", |k| lpips::build(k, "vgg", true)),
    ("lpips-squeeze", |k| lpips::build(k, "squeeze", false)),
    ("dists", dists::build),
    ("cw_ssim", |k| Ok(Arc::new(CwSsim::new(k.device)?))),
    ("fsim", |_| Ok(Arc::new(Fsim::default()))),
    ("vsi", |_| Ok(Arc::new(Vsi))),
    ("niqe", niqe::build),
    ("ilniqe", ilniqe::build),
    ("brisque", brisque::build),
    ("piqe", |k| Ok(Arc::new(Piqe::new(k.device)?))),
    ("gmsd", |k| Ok(Arc::new(Gmsd::new(k.device)?))),
    ("vif", |k| Ok(Arc::new(Vif::new(k.device)?))),
    ("nlpd", |k| Ok(Arc::new(Nlpd::new(k.device)?))),
    ("mad", |_| Ok(Arc::new(Mad::default()))),
];

/// Metrics that honour fp16/bf16: those whose scores reduced precision moves by less than 1e-3 (measured by
/// scripts/benchmark.py --precision-check; BENCHMARKS.md). Every other metric runs in its own precision
/// (fp32/fp64) whatever is asked, and shares the fp32 model.
const REDUCED_PRECISION_OK: &[&str] = &["lpips", "lpips-vgg", "lpips+", "lpips-vgg+", "lpips-squeeze", "dists"];

/// The precision a metric really runs in on `device` when `requested`: fp32 where reduced precision would
/// move its scores by 1e-3 or more, and fp16 on the CPU (no faster than fp32 there) as fp32.
pub fn effective_precision(name: &str, device: Device, requested: Precision) -> Precision {
    if !REDUCED_PRECISION_OK.contains(&name) {
        return Precision::Fp32;
    }
    match (requested, device) {
        (Precision::Fp16, Device::Cpu) => Precision::Fp32,
        (p, _) => p,
    }
}

/// Metrics iqa adds to pyiqa's catalogue (same conventions).
const IQA_EXTRAS: &[CatalogueEntry] = &[
    // LPIPS over SqueezeNet 1.1: pyiqa builds it with create_metric('lpips', net='squeeze') but has no name for it.
    CatalogueEntry { name: "lpips-squeeze", mode: Mode::FullReference, lower_better: true, score_range: (0.0, 1.0) },
];

/// Names of the metrics built into iqa, in catalogue order.
pub fn native_names() -> &'static [&'static str] {
    static NAMES: Lazy<Vec<&'static str>> = Lazy::new(|| NATIVE.iter().map(|(n, _)| *n).collect());
    &NAMES
}

/// The directory searched for TorchScript modules (`NAME.pt` + `NAME.json`): `IQA_WEIGHTS_DIR`.
pub fn torchscript_dir() -> Option<PathBuf> {
    std::env::var_os("IQA_WEIGHTS_DIR").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Every metric name `create_metric` accepts now: the built-in ones, then the TorchScript modules found in
/// `IQA_WEIGHTS_DIR` (sorted) whose names are not built in.
pub fn available_names() -> Vec<String> {
    let mut names: Vec<String> = native_names().iter().map(|n| n.to_string()).collect();
    if let Some(dir) = torchscript_dir() {
        let found = torchscript::discover(&dir);
        names.extend(found.into_iter().filter(|n| !native_names().contains(&n.as_str())));
    }
    names
}

fn catalogue_entry(name: &str) -> Option<&'static CatalogueEntry> {
    PYIQA_METRICS.iter().chain(IQA_EXTRAS).find(|e| e.name == name)
}

/// A metric that can be built: its pyiqa metadata and builder.
pub struct NativeMetric {
    pub entry: &'static CatalogueEntry,
    builder: Builder,
}

/// Looks a metric name up; unknown names and pyiqa metrics iqa does not implement are told apart.
pub fn find_native(name: &str) -> Result<NativeMetric> {
    let builder = NATIVE.iter().find(|(n, _)| *n == name).map(|(_, b)| *b);
    match (catalogue_entry(name), builder) {
        (Some(entry), Some(builder)) => Ok(NativeMetric { entry, builder }),
        (Some(_), None) => Err(Error::new(
            ErrorKind::UnknownMetric,
            format!(
                "metric '{name}' exists in pyiqa but is not built into iqa; available: {}",
                available_names().join(", ")
            ),
        )),
        (None, _) => Err(Error::new(
            ErrorKind::UnknownMetric,
            format!("unknown metric '{name}'; available: {}", available_names().join(", ")),
        )),
    }
}

impl NativeMetric {
    pub fn build(&self, key: &ModelKey) -> Result<Arc<dyn Model>> {
        (self.builder)(key)
    }
}

/// A weak reference to anything shared through the cache (metric models, backbones), type-erased.
trait CacheEntry: Send + Sync {
    fn alive(&self) -> bool;
    fn as_any(&self) -> &dyn Any;
}

impl<T: ?Sized + Send + Sync + 'static> CacheEntry for Weak<T> {
    fn alive(&self) -> bool {
        self.strong_count() > 0
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct Cache {
    /// Everything built and possibly still alive. Metric models are keyed by their metric name; shared parts
    /// (backbones) by a name of their own, and are not counted as models.
    live: HashMap<ModelKey, (Box<dyn CacheEntry>, bool)>,
    /// Recently released metric models kept alive (front = most recent), at most `runtime::cache_size()`.
    recently_freed: VecDeque<(ModelKey, Arc<dyn Model>)>,
}

/// Re-entrant: a model build (under the lock, so that nothing is built twice) acquires its shared parts.
/// The RefCell is never borrowed across a build.
static CACHE: Lazy<ReentrantMutex<RefCell<Cache>>> =
    Lazy::new(|| ReentrantMutex::new(RefCell::new(Cache { live: HashMap::new(), recently_freed: VecDeque::new() })));
static HANDLES: AtomicUsize = AtomicUsize::new(0);

impl Cache {
    fn get<T: ?Sized + Send + Sync + 'static>(&self, key: &ModelKey) -> Option<Arc<T>> {
        self.live.get(key)?.0.as_any().downcast_ref::<Weak<T>>()?.upgrade()
    }

    fn insert<T: ?Sized + Send + Sync + 'static>(&mut self, key: &ModelKey, value: &Arc<T>, counted: bool) {
        self.live.retain(|_, (w, _)| w.alive());
        self.live.insert(key.clone(), (Box::new(Arc::downgrade(value)), counted));
    }
}

/// The shared metric model for `key`, built by `build` only if no handle (and no recently freed entry) holds
/// one. Builds run under the cache lock so that two threads never build the same model twice.
pub fn acquire(key: &ModelKey, build: impl FnOnce() -> Result<Arc<dyn Model>>) -> Result<Arc<dyn Model>> {
    let guard = CACHE.lock();
    {
        let mut cache = guard.borrow_mut();
        cache.recently_freed.retain(|(k, _)| k != key);
        if let Some(model) = cache.get::<dyn Model>(key) {
            return Ok(model);
        }
    }
    let model = build()?;
    guard.borrow_mut().insert(key, &model, true);
    Ok(model)
}

/// A part shared between metric models (a backbone), built once per key while any model holds it.
pub fn acquire_shared<T: Send + Sync + 'static>(key: &ModelKey, build: impl FnOnce() -> Result<T>) -> Result<Arc<T>> {
    let guard = CACHE.lock();
    if let Some(part) = guard.borrow().get::<T>(key) {
        return Ok(part);
    }
    let part = Arc::new(build()?);
    guard.borrow_mut().insert(key, &part, false);
    Ok(part)
}

/// Called when a handle lets go of its model: keeps it among the recently freed when it was the last user and
/// `IQA_CACHE_SIZE` allows, so that re-creating it is instant.
pub fn release(key: &ModelKey, model: Arc<dyn Model>) {
    let keep = runtime::cache_size();
    let guard = CACHE.lock();
    let mut cache = guard.borrow_mut();
    if keep > 0 && Arc::strong_count(&model) == 1 {
        cache.recently_freed.retain(|(k, _)| k != key);
        cache.recently_freed.push_front((key.clone(), model));
        cache.recently_freed.truncate(keep);
    } else {
        drop(model);
    }
    cache.live.retain(|_, (w, _)| w.alive());
}

/// How many live shared parts (e.g. "backbone/vgg") are loaded, over all devices and precisions.
pub fn shared_part_count(name: &str) -> usize {
    let guard = CACHE.lock();
    let cache = guard.borrow();
    cache.live.iter().filter(|(k, (w, counted))| !*counted && k.name == name && w.alive()).count()
}

pub(crate) fn handle_opened() {
    HANDLES.fetch_add(1, Ordering::SeqCst);
}

pub(crate) fn handle_closed() {
    HANDLES.fetch_sub(1, Ordering::SeqCst);
}

/// Distinct models loaded (shared between handles) and metric handles alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    pub models_alive: usize,
    pub handles_alive: usize,
}

pub fn cache_stats() -> CacheStats {
    let guard = CACHE.lock();
    let cache = guard.borrow();
    CacheStats {
        models_alive: cache.live.values().filter(|(w, counted)| *counted && w.alive()).count(),
        handles_alive: HANDLES.load(Ordering::SeqCst),
    }
}
