//! The decode error type shared by every codec in this crate.

use std::fmt;

/// Why a byte string could not be decoded (or a value could not be encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input ended before the structure did (`what` names the structure).
    Truncated(&'static str),
    /// A length field is inconsistent with the data or the rules (`what` names it).
    BadLength(&'static str),
    /// The OpenFlow version in a header is not 1.3 (carries the version found).
    BadVersion(u8),
    /// A field holds a value that the format forbids.
    BadValue(&'static str),
    /// Well-formed, but a kind this crate does not decode (`what` names it).
    Unsupported(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated(w) => write!(f, "truncated {w}"),
            Error::BadLength(w) => write!(f, "bad length in {w}"),
            Error::BadVersion(v) => write!(f, "unsupported OpenFlow version 0x{v:02x}"),
            Error::BadValue(w) => write!(f, "bad value in {w}"),
            Error::Unsupported(w) => write!(f, "unsupported {w}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
