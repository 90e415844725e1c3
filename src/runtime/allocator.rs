//! How glibc's allocator keeps freed memory. By default it returns every freed block above 128 KiB to the
//! system and page-faults fresh zeroed pages for the next one: with tensors of megabytes, that was half of the
//! classical metrics' CPU time. iqa keeps blocks up to 480 MiB for reuse (at 64 MiB, MAD and IL-NIQE still
//! faulted in gigabytes per image); larger ones (deep metrics' first activations at 1080p) are returned, so
//! that retained memory does not raise peaks. The memory preset restores glibc's defaults. README, "Precision,
//! presets, threads", has the measurements.

/// Keep freed blocks for reuse (`true`) or return them at once (glibc's defaults).
pub fn keep_freed_memory(keep: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_TRIM_THRESHOLD: libc::c_int = -1;
        const M_MMAP_THRESHOLD: libc::c_int = -3;
        const MMAP_ABOVE: libc::c_int = 480 << 20;
        const TRIM_ABOVE: libc::c_int = 1 << 30;
        const GLIBC_DEFAULT: libc::c_int = 128 * 1024;
        let (mmap, trim) = if keep { (MMAP_ABOVE, TRIM_ABOVE) } else { (GLIBC_DEFAULT, GLIBC_DEFAULT) };
        // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
        unsafe {
            libc::mallopt(M_MMAP_THRESHOLD, mmap);
            libc::mallopt(M_TRIM_THRESHOLD, trim);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = keep;
}

/// A zeroed buffer of `len` values for `what`, or a runtime error when memory is short: Rust's own allocation
/// failure aborts the process, so scratch that scales with the image size is allocated through here.
pub fn zeroed<T: Clone + Default>(len: usize, what: &str) -> crate::error::Result<Vec<T>> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(len).map_err(|_| {
        let bytes = len.saturating_mul(std::mem::size_of::<T>());
        crate::error::Error::new(crate::error::ErrorKind::Runtime, format!("out of memory: {bytes} bytes for {what}"))
    })?;
    buffer.resize(len, T::default());
    Ok(buffer)
}
