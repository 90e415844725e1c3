//! The weak-reference cache of built models and of the parts they share (backbones): anything built once per
//! [`ModelKey`] and alive while someone holds it. It knows no metric: values are type-erased `Arc`s.
use crate::model::ModelKey;
use once_cell::sync::Lazy;
use parking_lot::ReentrantMutex;
use std::any::Any;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// A weak reference to anything shared through the cache, type-erased.
trait Entry: Send + Sync {
    fn alive(&self) -> bool;
    fn as_any(&self) -> &dyn Any;
}

impl<T: ?Sized + Send + Sync + 'static> Entry for Weak<T> {
    fn alive(&self) -> bool {
        self.strong_count() > 0
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Whether an entry is a metric model (counted in [`Stats::models_alive`]) or a part models share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Model,
    SharedPart,
}

struct Cache {
    /// Everything built and possibly still alive.
    live: HashMap<ModelKey, (Box<dyn Entry>, Kind)>,
    /// Recently released models kept alive (front = most recent), at most the configured number.
    recently_freed: VecDeque<(ModelKey, Box<dyn Any + Send + Sync>)>,
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

    fn insert<T: ?Sized + Send + Sync + 'static>(&mut self, key: &ModelKey, value: &Arc<T>, kind: Kind) {
        self.live.retain(|_, (w, _)| w.alive());
        self.live.insert(key.clone(), (Box::new(Arc::downgrade(value)), kind));
    }
}

/// The value for `key`, built by `build` only if nobody (and no recently freed entry) holds one. Builds run
/// under the cache lock, so that two threads never build the same value twice.
pub fn acquire<T, E>(key: &ModelKey, kind: Kind, build: impl FnOnce() -> Result<Arc<T>, E>) -> Result<Arc<T>, E>
where
    T: ?Sized + Send + Sync + 'static,
{
    let guard = CACHE.lock();
    {
        let mut cache = guard.borrow_mut();
        cache.recently_freed.retain(|(k, _)| k != key);
        if let Some(value) = cache.get::<T>(key) {
            return Ok(value);
        }
    }
    let value = build()?;
    guard.borrow_mut().insert(key, &value, kind);
    Ok(value)
}

/// Called when a handle lets go of its model: keeps it among the `keep` most recently freed when it was the
/// last user, so that re-creating it is instant.
pub fn release<T: ?Sized + Send + Sync + 'static>(key: &ModelKey, value: Arc<T>, keep: usize) {
    let guard = CACHE.lock();
    let mut cache = guard.borrow_mut();
    if keep > 0 && Arc::strong_count(&value) == 1 {
        cache.recently_freed.retain(|(k, _)| k != key);
        cache.recently_freed.push_front((key.clone(), Box::new(value)));
        cache.recently_freed.truncate(keep);
    } else {
        drop(value);
    }
    cache.live.retain(|_, (w, _)| w.alive());
}

pub fn handle_opened() {
    HANDLES.fetch_add(1, Ordering::SeqCst);
}

pub fn handle_closed() {
    HANDLES.fetch_sub(1, Ordering::SeqCst);
}

/// Distinct models loaded (shared between handles) and metric handles alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Distinct metric models loaded (parts they share, such as backbones, are not counted).
    pub models_alive: usize,
    /// Metric handles not yet dropped.
    pub handles_alive: usize,
    /// Parts loaded once and shared by several models (backbones such as VGG16).
    pub shared_parts_alive: usize,
}

pub fn stats() -> Stats {
    let guard = CACHE.lock();
    let cache = guard.borrow();
    let alive = |kind| cache.live.values().filter(|(w, k)| *k == kind && w.alive()).count();
    Stats {
        models_alive: alive(Kind::Model),
        handles_alive: HANDLES.load(Ordering::SeqCst),
        shared_parts_alive: alive(Kind::SharedPart),
    }
}
