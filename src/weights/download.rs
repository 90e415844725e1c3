//! Verified downloads into the cache directory, and download progress.
//!
//! A download streams into a temporary file in the cache directory (same file system, so the final rename is
//! atomic), hashing as it goes; only a complete transfer whose sha256 matches is renamed to the official name.
//! Any failure removes the temporary file. Downloads of the same file within the process are serialised, so two
//! threads asking for it fetch it once.
use once_cell::sync::Lazy;
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A download progress callback: `(file name, bytes done, total bytes if the server said)`. Called once at the
/// start (done = 0), as the transfer advances (every 1 %, or every MiB when the size is unknown), and once at
/// the end after the checksum matched (done = total = the file's size).
pub type ProgressCallback = Box<dyn Fn(&str, u64, Option<u64>) + Send + Sync>;

type SharedCallback = Arc<dyn Fn(&str, u64, Option<u64>) + Send + Sync>;

static PROGRESS: RwLock<Option<SharedCallback>> = RwLock::new(None);

/// Sets the process-wide download progress callback; `None` restores the default, which prints a line to stderr
/// at the start, every 10 % (every 8 MiB when the size is unknown) and at the end.
pub fn set_progress_callback(callback: Option<ProgressCallback>) {
    *PROGRESS.write() = callback.map(SharedCallback::from);
}

const MIB: u64 = 1 << 20;

fn human(bytes: u64) -> String {
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// Decides when to report, for the callback (fine steps) or the default stderr lines (coarse steps).
struct Progress {
    name: String,
    callback: Option<SharedCallback>,
    total: Option<u64>,
    step: u64,
    next: u64,
}

impl Progress {
    fn new(name: &str, url: &str, total: Option<u64>) -> Self {
        let callback = PROGRESS.read().clone();
        let step = match (total, callback.is_some()) {
            (Some(t), true) => (t / 100).max(1),
            (Some(t), false) => (t / 10).max(1),
            (None, true) => MIB,
            (None, false) => 8 * MIB,
        };
        let p = Progress { name: name.to_string(), callback, total, step, next: step };
        match &p.callback {
            Some(cb) => cb(&p.name, 0, total),
            None => eprintln!(
                "iqa: downloading {} from {url}{}",
                p.name,
                total.map(|t| format!(" ({})", human(t))).unwrap_or_default()
            ),
        }
        p
    }

    fn advance(&mut self, done: u64) {
        if done < self.next || self.total.is_some_and(|t| done >= t) {
            return; // the end is reported by `finish`, after the checksum
        }
        self.next = (done / self.step + 1) * self.step;
        match &self.callback {
            Some(cb) => cb(&self.name, done, self.total),
            None => match self.total {
                Some(t) => {
                    eprintln!("iqa: {}: {}% ({} of {})", self.name, done * 100 / t.max(1), human(done), human(t))
                }
                None => eprintln!("iqa: {}: {}", self.name, human(done)),
            },
        }
    }

    fn finish(&self, done: u64, path: &Path) {
        match &self.callback {
            Some(cb) => cb(&self.name, done, Some(done)),
            None => {
                eprintln!("iqa: {}: done, {}, sha256 verified, saved as {}", self.name, human(done), path.display())
            }
        }
    }
}

/// Removes the temporary file unless the download was committed.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// One lock per final path, so concurrent requests for the same file download it once.
static LOCKS: Lazy<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = Lazy::new(|| Mutex::new(HashMap::new()));
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn check_digest_spec(sha256: &str) -> Result<String, String> {
    let s = sha256.trim().to_ascii_lowercase();
    if s.len() < 8 || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("the expected sha256 {sha256:?} is not 8 to 64 hex digits"));
    }
    Ok(s)
}

/// Downloads `url` into `cache_dir/name`, verifying that its sha256 starts with `sha256`. Returns the final path.
pub(crate) fn download(url: &str, name: &str, sha256: &str, cache_dir: &Path) -> Result<PathBuf, String> {
    let expected = check_digest_spec(sha256)?;
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(format!("{name:?} is not a plain file name"));
    }
    let dest = cache_dir.join(name);
    let lock = LOCKS.lock().entry(dest.clone()).or_default().clone();
    let _guard = lock.lock();
    if dest.is_file() {
        return Ok(dest); // another thread got it while this one waited
    }

    // Nothing touches the disk until the server has answered.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| format!("GET {url}: {e}"))?;
    std::fs::create_dir_all(cache_dir)
        .map_err(|e| format!("cannot create the cache directory {}: {e}", cache_dir.display()))?;
    let tmp_path =
        cache_dir.join(format!(".{name}.{}.{}.part", std::process::id(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp_path)
        .map_err(|e| format!("cannot create {}: {e}", tmp_path.display()))?;
    let mut tmp = TempFile { path: tmp_path, keep: false };
    let mut out = file; // declared after the guard: closed before the guard removes the file
    let total = response.body().content_length();
    let mut reader = response.body_mut().as_reader();
    let mut progress = Progress::new(name, url, total);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
                return Err(format!("reading {url} failed after {done}{of} bytes: {e}"));
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| format!("cannot write {}: {e}", tmp.path.display()))?;
        done += n as u64;
        progress.advance(done);
    }
    if let Some(t) = total {
        if done != t {
            return Err(format!("truncated transfer: {done} of {t} bytes received from {url}"));
        }
    }
    out.sync_all().map_err(|e| format!("cannot write {}: {e}", tmp.path.display()))?;
    drop(out);
    let digest = hex(&hasher.finalize());
    if !digest.starts_with(&expected) {
        return Err(format!(
            "sha256 checksum mismatch for {url}: expected {expected}{}, got {digest}; the download was discarded",
            if expected.len() < 64 { "..." } else { "" }
        ));
    }
    std::fs::rename(&tmp.path, &dest)
        .map_err(|e| format!("cannot move {} to {}: {e}", tmp.path.display(), dest.display()))?;
    tmp.keep = true;
    progress.finish(done, &dest);
    Ok(dest)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_spec() {
        assert!(check_digest_spec("7be5be79").is_ok());
        assert!(check_digest_spec(&"a".repeat(64)).is_ok());
        assert_eq!(check_digest_spec("DF73285E").unwrap(), "df73285e");
        for bad in ["", "7be5be7", "xyz12345", &"a".repeat(65)] {
            assert!(check_digest_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn progress_steps() {
        // 1000 bytes with the default printer: a report at every 100 bytes, never at the end.
        let mut p = Progress { name: "x".into(), callback: None, total: Some(1000), step: 100, next: 100 };
        p.advance(50);
        assert_eq!(p.next, 100);
        p.advance(250);
        assert_eq!(p.next, 300);
        p.advance(1000);
        assert_eq!(p.next, 300);
    }
}
