//! Process-wide runtime settings: device choice (CUDA really loaded), CPU threads, precision, and the
//! environment variables that configure them.
use crate::error::{Error, ErrorKind, Result};
use libc::{c_int, c_uint, c_void};
use once_cell::sync::OnceCell;
use parking_lot::Mutex;
use tch::Device;

/// Where a metric runs, as requested by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceRequest {
    /// CUDA when usable, else CPU; `IQA_DEVICE` overrides it.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

/// Numeric precision of inference. Metrics whose scores move under reduced precision stay in fp32/fp64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    #[default]
    Fp32,
    Fp16,
    Bf16,
}

impl Precision {
    pub fn parse(text: &str) -> Option<Precision> {
        match text.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Some(Precision::Fp32),
            "fp16" | "float16" | "half" => Some(Precision::Fp16),
            "bf16" | "bfloat16" => Some(Precision::Bf16),
            _ => None,
        }
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses `cpu`, `cuda`, `cuda:N`.
pub fn parse_device(text: &str) -> Option<DeviceRequest> {
    let text = text.trim().to_ascii_lowercase();
    match text.as_str() {
        "cpu" => Some(DeviceRequest::Cpu),
        "cuda" | "gpu" => Some(DeviceRequest::Cuda(0)),
        "auto" => Some(DeviceRequest::Auto),
        _ => text.strip_prefix("cuda:").and_then(|n| n.parse().ok()).map(DeviceRequest::Cuda),
    }
}

/// The default precision: `IQA_PRECISION`, else the preset's.
pub fn default_precision() -> Result<Precision> {
    match env_nonempty("IQA_PRECISION") {
        None => Ok(settings().precision),
        Some(v) => Precision::parse(&v)
            .ok_or_else(|| Error::invalid(format!("IQA_PRECISION={v:?} is not one of fp32, fp16, bf16"))),
    }
}

/// Whether libtorch's CUDA backend (libtorch_cuda.so) is loaded, and why not where it is not.
///
/// It is loaded on first need, and only where a CUDA driver (libcuda.so.1) can be loaded too: linking it
/// unconditionally cost every process ~130 ms at start-up on machines without a GPU. `IQA_CUDA=0` never loads
/// it; `IQA_CUDA=force` loads it even without a driver (tests use this to check that it registers).
pub fn load_cuda_backend() -> std::result::Result<(), String> {
    static LOADED: OnceCell<std::result::Result<(), String>> = OnceCell::new();
    LOADED
        .get_or_init(|| {
            let setting = env_nonempty("IQA_CUDA").map(|v| v.trim().to_ascii_lowercase());
            match setting.as_deref() {
                Some("0" | "off" | "no" | "false") => return Err("IQA_CUDA turns CUDA off".into()),
                Some("force") => {}
                _ => {
                    if let Err(e) = dlopen("libcuda.so.1", libc::RTLD_LAZY | libc::RTLD_LOCAL) {
                        return Err(format!("no CUDA driver ({e})"));
                    }
                }
            }
            // Found through libiqa's RUNPATH (the libtorch it was built against), else next to that libtorch.
            let fallback = concat!(env!("IQA_LIBTORCH_LIB_DIR"), "/libtorch_cuda.so");
            dlopen("libtorch_cuda.so", libc::RTLD_NOW | libc::RTLD_GLOBAL)
                .or_else(|_| dlopen(fallback, libc::RTLD_NOW | libc::RTLD_GLOBAL))
                .map_err(|e| format!("libtorch_cuda.so could not be loaded ({e})"))
        })
        .clone()
}

/// Loads a shared library for the life of the process.
fn dlopen(name: &str, flags: libc::c_int) -> std::result::Result<(), String> {
    let c = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: a valid NUL-terminated name; the handle is deliberately never closed.
    let handle = unsafe { libc::dlopen(c.as_ptr(), flags) };
    if handle.is_null() {
        // SAFETY: dlerror returns NULL or a valid C string owned by libc.
        let err = unsafe { libc::dlerror() };
        let text = if err.is_null() {
            "unknown error".to_string()
        } else {
            unsafe { std::ffi::CStr::from_ptr(err) }.to_string_lossy().into_owned()
        };
        return Err(text);
    }
    Ok(())
}

/// Number of CUDA devices libtorch can use (0 where its CUDA backend cannot be loaded).
pub fn cuda_device_count() -> usize {
    static COUNT: OnceCell<usize> = OnceCell::new();
    *COUNT.get_or_init(|| {
        if load_cuda_backend().is_err() {
            return 0;
        }
        if tch::Cuda::is_available() {
            tch::Cuda::device_count().max(0) as usize
        } else {
            0
        }
    })
}

/// Turns a request into a concrete device: AUTO → `IQA_DEVICE` if set → CUDA when usable → CPU.
pub fn resolve_device(request: DeviceRequest) -> Result<Device> {
    let request = match request {
        DeviceRequest::Auto => match env_nonempty("IQA_DEVICE") {
            None => DeviceRequest::Auto,
            Some(v) => parse_device(&v)
                .ok_or_else(|| Error::invalid(format!("IQA_DEVICE={v:?} is not one of cpu, cuda, cuda:N")))?,
        },
        r => r,
    };
    match request {
        DeviceRequest::Cpu => Ok(Device::Cpu),
        DeviceRequest::Auto => Ok(if cuda_device_count() > 0 { Device::Cuda(0) } else { Device::Cpu }),
        DeviceRequest::Cuda(index) => {
            let count = cuda_device_count();
            if index < count {
                Ok(Device::Cuda(index))
            } else if count == 0 {
                let why = load_cuda_backend().err().unwrap_or_else(|| "libtorch found no GPU".into());
                Err(Error::new(
                    ErrorKind::Device,
                    format!("CUDA device {index} requested, but CUDA is not available in this process: {why}"),
                ))
            } else {
                Err(Error::new(
                    ErrorKind::Device,
                    format!("CUDA device {index} requested, but only {count} CUDA device(s) are available"),
                ))
            }
        }
    }
}

/// A named set of runtime settings (`IQA_PRESET`, [`apply_preset`]). Environment variables set explicitly
/// (`IQA_PRECISION`, `IQA_NUM_THREADS`, `IQA_CACHE_SIZE`) override what a preset says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// The default: fp32 everywhere, every core, no model kept after its last handle, whole batches per
    /// forward pass, freed buffers kept for reuse by the allocator.
    #[default]
    Accuracy,
    /// As `accuracy`, plus bf16 for the metrics whose scores it moves by less than 1e-3 (where the hardware
    /// runs bf16 faster), and the 4 most recently freed models kept loaded.
    Speed,
    /// Lowest peak memory: fp32, one image per forward pass, and memory handed back to the system as soon as it
    /// is freed.
    Memory,
}

impl Preset {
    pub fn parse(text: &str) -> Option<Preset> {
        match text.trim().to_ascii_lowercase().as_str() {
            "accuracy" => Some(Preset::Accuracy),
            "speed" => Some(Preset::Speed),
            "memory" => Some(Preset::Memory),
            _ => None,
        }
    }
}

/// What the current preset sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub preset: Preset,
    pub precision: Precision,
    pub cache_size: usize,
    /// Most images per forward pass (`None`: a whole same-size group at once).
    pub batch_limit: Option<usize>,
}

impl Settings {
    fn of(preset: Preset) -> Settings {
        match preset {
            Preset::Accuracy => Settings { preset, precision: Precision::Fp32, cache_size: 0, batch_limit: None },
            Preset::Speed => Settings { preset, precision: Precision::Bf16, cache_size: 4, batch_limit: None },
            Preset::Memory => Settings { preset, precision: Precision::Fp32, cache_size: 0, batch_limit: Some(1) },
        }
    }
}

static SETTINGS: parking_lot::RwLock<Settings> = parking_lot::RwLock::new(Settings {
    preset: Preset::Accuracy,
    precision: Precision::Fp32,
    cache_size: 0,
    batch_limit: None,
});

/// The settings of the current preset (before environment overrides).
pub fn settings() -> Settings {
    *SETTINGS.read()
}

/// Switches the process to `preset`: default precision, CPU threads, model cache size, batch policy and how
/// the allocator keeps freed memory. Handles already created keep their precision.
pub fn apply_preset(preset: Preset) -> Result<()> {
    *SETTINGS.write() = Settings::of(preset);
    match env_nonempty("IQA_NUM_THREADS") {
        Some(v) => {
            let n: i32 = v
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::invalid(format!("IQA_NUM_THREADS={v:?} is not a positive integer")))?;
            tch::set_num_threads(n);
        }
        None => tch::set_num_threads(std::thread::available_parallelism().map_or(1, |n| n.get()) as i32),
    }
    tune_allocator(preset != Preset::Memory);
    Ok(())
}

/// glibc returns every freed block above 128 KiB to the system and maps fresh zeroed pages for the next one:
/// with tensors of megabytes, page faults were half of the classical metrics' time (ssim at 1080p: 200 ms →
/// 105 ms, vif 1.8 s → 0.95 s). Blocks up to 480 MiB are reused from the heap: at 64 MiB MAD and IL-NIQE
/// faulted in 11 GB and 1.8 GB per 512×384 image (their float64 temporaries are hundreds of MB); above it
/// (VGG16's first-stage activations at 1080p, 530 MB) blocks are mapped and unmapped, so that retained memory
/// does not raise deep metrics' peaks. The memory preset restores glibc's defaults (each call then starts from
/// fresh pages).
fn tune_allocator(keep_freed: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_TRIM_THRESHOLD: libc::c_int = -1;
        const M_MMAP_THRESHOLD: libc::c_int = -3;
        const MMAP_ABOVE: libc::c_int = 480 << 20;
        const TRIM_ABOVE: libc::c_int = 1 << 30;
        let (mmap, trim) = if keep_freed { (MMAP_ABOVE, TRIM_ABOVE) } else { (128 * 1024, 128 * 1024) };
        // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
        unsafe {
            libc::mallopt(M_MMAP_THRESHOLD, mmap);
            libc::mallopt(M_TRIM_THRESHOLD, trim);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = keep_freed;
}

/// Threads for iqa's own CPU loops: libtorch's intra-op thread count (what IQA_NUM_THREADS and the presets set),
/// so that they use the cores a forward pass would.
pub fn worker_threads() -> usize {
    (tch::get_num_threads().max(1) as usize).min(64)
}

/// Runs `work(index, piece)` over the `piece_len`-sized pieces of `out` (the last may be shorter) on up to
/// [`worker_threads`] threads, each taking a contiguous run of pieces: the scheduling of iqa's own CPU
/// kernels. The threads are libtorch's OpenMP team where libgomp is loaded (as with PyPI's torch): separate
/// threads would compete for the cores with that team's threads, which keep spinning for a while after every
/// libtorch operation (MAD at 512×384: 552 ms with scoped threads, 304 ms on the team). Otherwise scoped
/// threads. A panic in `work` is carried over to the caller in both cases.
pub fn for_each_piece<T: Send, F: Fn(usize, &mut [T]) + Sync>(out: &mut [T], piece_len: usize, work: F) {
    let piece_len = piece_len.max(1);
    let pieces = out.len().div_ceil(piece_len);
    let threads = worker_threads().min(pieces);
    if threads <= 1 {
        out.chunks_mut(piece_len).enumerate().for_each(|(i, piece)| work(i, piece));
        return;
    }
    if let Some(omp) = OpenMp::get() {
        return omp.for_each_piece(out, piece_len, threads, &work);
    }
    let per_thread = pieces.div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        for (run, run_out) in out.chunks_mut(per_thread * piece_len).enumerate() {
            scope.spawn(move || {
                for (i, piece) in run_out.chunks_mut(piece_len).enumerate() {
                    work(run * per_thread + i, piece);
                }
            });
        }
    });
}

/// libgomp's entry points, found in the libgomp that libtorch loaded: `GOMP_parallel` (what GCC emits for
/// `#pragma omp parallel`; a stable ABI) and the team queries.
struct OpenMp {
    parallel: GompParallel,
    thread_num: OmpQuery,
    num_threads: OmpQuery,
}

type GompParallel = unsafe extern "C" fn(unsafe extern "C" fn(*mut c_void), *mut c_void, c_uint, c_uint);
type OmpQuery = unsafe extern "C" fn() -> c_int;

/// One [`for_each_piece`] call as the team's threads see it.
struct TeamJob<'a, T, F> {
    out: *mut T,
    len: usize,
    piece_len: usize,
    work: &'a F,
    omp: &'a OpenMp,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl OpenMp {
    fn get() -> Option<&'static OpenMp> {
        static OPENMP: OnceCell<Option<OpenMp>> = OnceCell::new();
        OPENMP
            .get_or_init(|| {
                // SAFETY: RTLD_NOLOAD only looks the library up; the symbols, when present, have these
                // signatures (libgomp's ABI), and the library stays loaded (libtorch depends on it).
                unsafe {
                    let lib = libc::dlopen(c"libgomp.so.1".as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD);
                    if lib.is_null() {
                        return None;
                    }
                    let symbol = |name: &std::ffi::CStr| {
                        let f = libc::dlsym(lib, name.as_ptr());
                        (!f.is_null()).then_some(f)
                    };
                    Some(OpenMp {
                        parallel: std::mem::transmute::<*mut c_void, GompParallel>(symbol(c"GOMP_parallel")?),
                        thread_num: std::mem::transmute::<*mut c_void, OmpQuery>(symbol(c"omp_get_thread_num")?),
                        num_threads: std::mem::transmute::<*mut c_void, OmpQuery>(symbol(c"omp_get_num_threads")?),
                    })
                }
            })
            .as_ref()
    }

    fn for_each_piece<T: Send, F: Fn(usize, &mut [T]) + Sync>(
        &self,
        out: &mut [T],
        piece_len: usize,
        threads: usize,
        work: &F,
    ) {
        unsafe extern "C" fn member<T: Send, F: Fn(usize, &mut [T]) + Sync>(data: *mut c_void) {
            // SAFETY: `data` is the TeamJob below, alive until GOMP_parallel returns; each member takes its
            // own contiguous run of pieces, so the slices it makes do not overlap another member's.
            let job = unsafe { &*(data as *const TeamJob<T, F>) };
            let (member, team) =
                unsafe { ((job.omp.thread_num)() as usize, ((job.omp.num_threads)() as usize).max(1)) };
            let pieces = job.len.div_ceil(job.piece_len);
            let per_member = pieces.div_ceil(team);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for index in member * per_member..((member + 1) * per_member).min(pieces) {
                    let start = index * job.piece_len;
                    let len = job.piece_len.min(job.len - start);
                    let piece = unsafe { std::slice::from_raw_parts_mut(job.out.add(start), len) };
                    (job.work)(index, piece);
                }
            }));
            if let Err(payload) = outcome {
                job.panic.lock().get_or_insert(payload);
            }
        }
        let job =
            TeamJob { out: out.as_mut_ptr(), len: out.len(), piece_len, work, omp: self, panic: Mutex::new(None) };
        // SAFETY: `member` matches GOMP_parallel's callback type and only reads `job`, which outlives the call
        // (GOMP_parallel returns when every member has finished); `out` stays borrowed mutably meanwhile.
        unsafe { (self.parallel)(member::<T, F>, &job as *const TeamJob<T, F> as *mut c_void, threads as c_uint, 0) };
        if let Some(payload) = job.panic.into_inner() {
            std::panic::resume_unwind(payload);
        }
    }
}

/// One-time process set-up before the first metric: `IQA_PRESET` (default accuracy), then `IQA_NUM_THREADS`.
pub fn init() -> Result<()> {
    static INIT: OnceCell<()> = OnceCell::new();
    INIT.get_or_try_init(|| {
        let preset = match env_nonempty("IQA_PRESET") {
            None => Preset::Accuracy,
            Some(v) => Preset::parse(&v)
                .ok_or_else(|| Error::invalid(format!("IQA_PRESET={v:?} is not one of speed, memory, accuracy")))?,
        };
        apply_preset(preset)
    })
    .copied()
}

/// `IQA_CACHE_SIZE`, else the preset's: how many recently freed models stay loaded.
pub fn cache_size() -> usize {
    env_nonempty("IQA_CACHE_SIZE").and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| settings().cache_size)
}

/// A tensor that is only ever read after construction, shared between threads.
///
/// `tch::Tensor` is `Send` but not `Sync`. Read-only use from several threads is safe in libtorch (ops on a
/// const tensor allocate new outputs; the storage refcount is atomic), and this wrapper only hands out `&Tensor`
/// for such use: no in-place op is ever applied to model constants.
pub struct FrozenTensor(tch::Tensor);

// SAFETY: see the type's documentation; the tensor is never mutated after construction.
unsafe impl Sync for FrozenTensor {}

impl FrozenTensor {
    pub fn new(t: tch::Tensor) -> Self {
        FrozenTensor(t)
    }
}

impl std::ops::Deref for FrozenTensor {
    type Target = tch::Tensor;
    fn deref(&self) -> &tch::Tensor {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every piece is visited once with its index and length (the last one shorter) on this machine's team,
    /// and a panic in one piece reaches the caller. (The thread count is left alone: other tests compare
    /// libtorch reductions, whose rounding depends on it.)
    #[test]
    fn for_each_piece_visits_every_piece_once_and_carries_panics() {
        let mut out = vec![(usize::MAX, 0usize); 103];
        for_each_piece(&mut out, 10, |index, piece| {
            let len = piece.len();
            piece.iter_mut().for_each(|v| *v = (index, len));
        });
        for (i, &(index, len)) in out.iter().enumerate() {
            assert_eq!((index, len), (i / 10, if i >= 100 { 3 } else { 10 }), "element {i}");
        }
        let caught = std::panic::catch_unwind(|| {
            let mut out = vec![0u8; 64];
            for_each_piece(&mut out, 8, |index, _| assert!(index != 5, "piece 5"));
        });
        let message = caught.expect_err("the panic reaches the caller");
        assert_eq!(message.downcast_ref::<&str>().copied(), Some("piece 5"));
    }
}
