//! The metric catalogue (pyiqa names → mode, lower_better, score range, how to build) and the weak-reference
//! cache of built models shared by every handle.
use crate::catalogue::PYIQA_METRICS;
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{entropy::Entropy, psnr::Psnr, ssim, Model};
use crate::runtime::{self, Precision};
use once_cell::sync::Lazy;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
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
];

/// Names of the metrics that can be created, in catalogue order.
pub fn available_names() -> &'static [&'static str] {
    static NAMES: Lazy<Vec<&'static str>> = Lazy::new(|| NATIVE.iter().map(|(n, _)| *n).collect());
    &NAMES
}

fn catalogue_entry(name: &str) -> Option<&'static CatalogueEntry> {
    PYIQA_METRICS.iter().find(|e| e.name == name)
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

struct Cache {
    /// Every model built and possibly still alive.
    live: HashMap<ModelKey, Weak<dyn Model>>,
    /// Recently released models kept alive (front = most recent), at most `runtime::cache_size()`.
    recently_freed: VecDeque<(ModelKey, Arc<dyn Model>)>,
}

static CACHE: Lazy<Mutex<Cache>> =
    Lazy::new(|| Mutex::new(Cache { live: HashMap::new(), recently_freed: VecDeque::new() }));
static HANDLES: AtomicUsize = AtomicUsize::new(0);

/// The shared model for `key`, built by `build` only if no handle (and no recently freed entry) holds one.
/// Builds run under the cache lock so that two threads never build the same model twice.
pub fn acquire(key: &ModelKey, build: impl FnOnce() -> Result<Arc<dyn Model>>) -> Result<Arc<dyn Model>> {
    let mut cache = CACHE.lock();
    cache.recently_freed.retain(|(k, _)| k != key);
    if let Some(model) = cache.live.get(key).and_then(Weak::upgrade) {
        return Ok(model);
    }
    let model = build()?;
    cache.live.retain(|_, w| w.strong_count() > 0);
    cache.live.insert(key.clone(), Arc::downgrade(&model));
    Ok(model)
}

/// Called when a handle lets go of its model: keeps it among the recently freed when it was the last user and
/// `IQA_CACHE_SIZE` allows, so that re-creating it is instant.
pub fn release(key: &ModelKey, model: Arc<dyn Model>) {
    let keep = runtime::cache_size();
    let mut cache = CACHE.lock();
    if keep > 0 && Arc::strong_count(&model) == 1 {
        cache.recently_freed.retain(|(k, _)| k != key);
        cache.recently_freed.push_front((key.clone(), model));
        cache.recently_freed.truncate(keep);
    } else {
        drop(model);
    }
    cache.live.retain(|_, w| w.strong_count() > 0);
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
    let cache = CACHE.lock();
    CacheStats {
        models_alive: cache.live.values().filter(|w| w.strong_count() > 0).count(),
        handles_alive: HANDLES.load(Ordering::SeqCst),
    }
}
