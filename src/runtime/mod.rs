//! Process-wide runtime: device choice ([`device`]), the environment and presets ([`settings`]), iqa's CPU
//! scheduling ([`parallel`]), the allocator policy ([`allocator`]) and what probing libtorch found
//! ([`probe`]).
pub mod allocator;
pub mod device;
pub mod parallel;
pub mod probe;
pub mod settings;

pub use allocator::zeroed;
pub use device::{cuda_device_count, load_cuda_backend, resolve_device};
pub use parallel::{bands_of_planes, for_each_piece, try_for_each_piece, worker_threads};
pub use probe::{bits_differing, Probed};
pub use settings::{DeviceRequest, Precision, Preset, Settings};

use crate::error::Result;
use once_cell::sync::OnceCell;

static SETTINGS: parking_lot::RwLock<Settings> = parking_lot::RwLock::new(Settings::of(Preset::Accuracy));

/// The settings of the current preset (before environment overrides).
pub fn current_settings() -> Settings {
    *SETTINGS.read()
}

/// Switches the process to `preset`: default precision, CPU threads, model cache size, batch policy and how
/// the allocator keeps freed memory. Handles already created keep their precision.
pub fn apply_preset(preset: Preset) -> Result<()> {
    let threads = settings::num_threads()?;
    *SETTINGS.write() = Settings::of(preset);
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    tch::set_num_threads(threads.min(i32::MAX as usize) as i32);
    allocator::keep_freed_memory(preset != Preset::Memory);
    Ok(())
}

/// One-time process set-up before the first metric: every variable checked, then `IQA_PRESET` (default
/// accuracy) and `IQA_NUM_THREADS` applied.
pub fn init() -> Result<()> {
    static INIT: OnceCell<()> = OnceCell::new();
    INIT.get_or_try_init(|| {
        settings::check_all()?;
        apply_preset(settings::preset()?.unwrap_or_default())
    })
    .copied()
}

/// The default precision: `IQA_PRECISION`, else the preset's.
pub fn default_precision() -> Result<Precision> {
    Ok(settings::precision()?.unwrap_or_else(|| current_settings().precision))
}

/// How many recently freed models stay loaded: `IQA_CACHE_SIZE`, else the preset's.
pub fn cache_size() -> Result<usize> {
    Ok(settings::cache_size()?.unwrap_or_else(|| current_settings().cache_size))
}
