//! One error type for the whole crate. Its kind maps 1:1 onto the C `IqaStatus`.
use std::fmt;

/// What went wrong, in the categories a caller can act on (the C status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidArgument,
    UnknownMetric,
    Io,
    Decode,
    ShapeMismatch,
    Weights,
    Device,
    Runtime,
    Panic,
}

/// An error with its kind and a message that names what failed (file, metric, sizes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn shape(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ShapeMismatch, message)
    }
    /// Prefixes the message with where it happened ("metric 'ssim': ...").
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
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
