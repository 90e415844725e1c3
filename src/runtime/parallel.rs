//! The scheduling of iqa's own CPU kernels: pieces of an output slice spread over libtorch's OpenMP team.
use libc::{c_int, c_uint, c_void};
use once_cell::sync::OnceCell;
use parking_lot::Mutex;

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

/// Splits `planes` (consecutive planes of `plane_len` values) into bands of `band_len` values: band i holds the
/// i-th piece of every plane, so that one task of [`for_each_piece`] can fill the same rows of all planes.
pub fn bands_of_planes<T>(planes: &mut [T], plane_len: usize, band_len: usize) -> Vec<Vec<&mut [T]>> {
    let bands = plane_len.div_ceil(band_len.max(1));
    let mut pieces: Vec<_> = planes.chunks_mut(plane_len.max(1)).map(|p| p.chunks_mut(band_len.max(1))).collect();
    (0..bands).map(|_| pieces.iter_mut().filter_map(Iterator::next).collect()).collect()
}

/// [`for_each_piece`] for work that can fail (scratch it cannot allocate, say): every piece is offered to
/// `work`, and the first error is returned.
pub fn try_for_each_piece<T, F>(out: &mut [T], piece_len: usize, work: F) -> crate::error::Result<()>
where
    T: Send,
    F: Fn(usize, &mut [T]) -> crate::error::Result<()> + Sync,
{
    let first_error = Mutex::new(None);
    for_each_piece(out, piece_len, |i, piece| {
        if let Err(e) = work(i, piece) {
            first_error.lock().get_or_insert(e);
        }
    });
    first_error.into_inner().map_or(Ok(()), Err)
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
            // SAFETY: libgomp's team queries take no arguments and may be called from any team member.
            let (member, team) =
                unsafe { ((job.omp.thread_num)() as usize, ((job.omp.num_threads)() as usize).max(1)) };
            let pieces = job.len.div_ceil(job.piece_len);
            let per_member = pieces.div_ceil(team);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for index in member * per_member..((member + 1) * per_member).min(pieces) {
                    let start = index * job.piece_len;
                    let len = job.piece_len.min(job.len - start);
                    // SAFETY: `start + len <= job.len`, within the caller's slice, and no other member's
                    // run of pieces overlaps this one.
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

    /// A failing piece does not stop the others, and its error (the first, where several fail) is returned;
    /// scratch that cannot be allocated is such an error, not an abort.
    #[test]
    fn try_for_each_piece_runs_every_piece_and_returns_the_error() {
        use crate::error::{Error, ErrorKind};
        let mut out = vec![0u8; 64];
        let result = try_for_each_piece(&mut out, 8, |index, piece| {
            piece.fill(1);
            if index == 3 {
                return Err(Error::invalid("piece 3"));
            }
            Ok(())
        });
        assert_eq!(result.unwrap_err().message, "piece 3");
        assert!(out.iter().all(|&v| v == 1), "every piece ran");
        assert!(try_for_each_piece(&mut out, 8, |_, _| Ok(())).is_ok());
        let e = crate::runtime::zeroed::<f64>(usize::MAX / 4, "a test").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Runtime);
        assert!(e.message.starts_with("out of memory: ") && e.message.ends_with(" bytes for a test"), "{e}");
    }
}
