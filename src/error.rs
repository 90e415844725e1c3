//! One error type for the whole crate. Its kind maps 1:1 onto the C `IqaStatus`.
use std::fmt;

/// What went wrong, in the categories a caller can act on (the C status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A bad argument: NULL pointer, bad enum value or size, NaN/Inf in float pixels, malformed setting.
    InvalidArgument,
    /// A name that is neither built in nor a TorchScript module found.
    UnknownMetric,
    /// A file missing or unreadable.
    Io,
    /// A corrupt, truncated, unsupported or over-limit image or stream.
    Decode,
    /// Sizes that do not fit: a pair of different sizes, an image too small or too large for the metric.
    ShapeMismatch,
    /// Pretrained weights missing, corrupt, of the wrong shapes, or failing their checksum.
    Weights,
    /// The requested device is not available.
    Device,
    /// A libtorch error or out of memory.
    Runtime,
    /// An internal bug caught at the C boundary.
    Panic,
}

/// An error with its kind and a message that names what failed (file, metric, sizes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The category (the C status).
    pub kind: ErrorKind,
    /// What failed, in words a user can act on (`iqa_last_error`).
    pub message: String,
}

/// `std::result::Result` with iqa's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    /// An [`ErrorKind::InvalidArgument`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    /// An [`ErrorKind::ShapeMismatch`] error.
    pub fn shape(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ShapeMismatch, message)
    }
    /// Prefixes the message with where it happened ("metric 'ssim': ...").
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

/// The text a panic carried (`panic!` with a literal or a formatted message), if any.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied())
}

/// Runs `body`; a panic in it becomes an [`ErrorKind::Panic`] error, so that none crosses the C boundary or
/// kills a worker thread silently.
pub(crate) fn catch_panics<T>(body: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic_text(panic.as_ref()).unwrap_or("unknown panic");
        Err(Error::new(ErrorKind::Panic, format!("internal error (please report it): {what}")))
    })
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// libtorch failures (C++ exceptions surfaced by tch's `f_*` calls): out of memory, bad shapes deep inside a
/// model. Shape problems are meant to be caught before reaching libtorch, so these are runtime errors.
impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        let text = e.to_string();
        // libtorch appends a long C++ backtrace; the first line is what a user can act on.
        let first = text.lines().next().unwrap_or("").trim();
        Error::new(ErrorKind::Runtime, format!("libtorch error: {first}"))
    }
}
