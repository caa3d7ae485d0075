//! Error types: transport and protocol failures, and OVSDB errors decoded into typed kinds.

use serde_json::Value as Json;

use crate::framing::FramingError;
use crate::value::ValueError;

/// The kind of an OVSDB error object (`{"error": "<kind>", "details": ...}`), RFC 7047 3.1
/// and 5.2, plus the ones ovsdb-server adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// `"referential integrity violation"`: a strong reference points to a missing row, or a
    /// row still strongly referenced would be deleted.
    ReferentialIntegrityViolation,
    /// `"constraint violation"`: e.g. a value out of the column's type or an index collision.
    ConstraintViolation,
    /// `"resources exhausted"`.
    ResourcesExhausted,
    /// `"I/O error"`.
    IoError,
    /// `"duplicate uuid-name"`.
    DuplicateUuidName,
    /// `"domain error"`: arithmetic error in a mutation.
    DomainError,
    /// `"range error"`: a mutation result out of range.
    RangeError,
    /// `"timed out"`: a `wait` operation timed out.
    TimedOut,
    /// `"not supported"`.
    NotSupported,
    /// `"aborted"`: an `abort` operation or a failed earlier operation.
    Aborted,
    /// `"not owner"`.
    NotOwner,
    /// `"syntax error"`, `"unknown column"`, `"unknown table"` and similar request errors.
    Syntax(String),
    /// Any other error string.
    Other(String),
}

impl ErrorKind {
    /// Classifies an `error` string.
    pub fn from_wire(s: &str) -> ErrorKind {
        match s {
            "referential integrity violation" => ErrorKind::ReferentialIntegrityViolation,
            "constraint violation" => ErrorKind::ConstraintViolation,
            "resources exhausted" => ErrorKind::ResourcesExhausted,
            "I/O error" => ErrorKind::IoError,
            "duplicate uuid-name" => ErrorKind::DuplicateUuidName,
            "domain error" => ErrorKind::DomainError,
            "range error" => ErrorKind::RangeError,
            "timed out" => ErrorKind::TimedOut,
            "not supported" => ErrorKind::NotSupported,
            "aborted" => ErrorKind::Aborted,
            "not owner" => ErrorKind::NotOwner,
            s if s.starts_with("syntax error") || s.starts_with("unknown ") => {
                ErrorKind::Syntax(s.to_string())
            }
            s => ErrorKind::Other(s.to_string()),
        }
    }
}

/// An OVSDB error object, as found in a JSON-RPC `error` or in a transaction result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}{}", details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct OvsdbError {
    /// The `error` string as sent.
    pub error: String,
    /// The classified kind of `error`.
    pub kind: ErrorKind,
    /// The optional human-readable `details`.
    pub details: Option<String>,
}

impl OvsdbError {
    /// Decodes `{"error": "...", "details": "..."}`; a bare string is accepted as the error.
    /// Returns `None` when `j` holds no error (e.g. `null`).
    pub fn from_json(j: &Json) -> Option<OvsdbError> {
        let (error, details) = match j {
            Json::Null => return None,
            Json::String(s) => (s.clone(), None),
            Json::Object(o) => {
                let error = match o.get("error")? {
                    Json::String(s) => s.clone(),
                    Json::Null => return None,
                    other => other.to_string(),
                };
                let details = o.get("details").and_then(|d| match d {
                    Json::String(s) => Some(s.clone()),
                    Json::Null => None,
                    other => Some(other.to_string()),
                });
                (error, details)
            }
            other => (other.to_string(), None),
        };
        Some(OvsdbError {
            kind: ErrorKind::from_wire(&error),
            error,
            details,
        })
    }
}

/// Everything that can go wrong talking to ovsdb-server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed target string.
    #[error("bad target {0:?} (want unix:PATH or tcp:IP:PORT)")]
    BadTarget(String),
    /// Socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The connection closed (or was closed by the inactivity probe) before an answer came.
    #[error("connection to ovsdb-server lost")]
    Disconnected,
    /// The byte stream could not be framed.
    #[error("framing: {0}")]
    Framing(#[from] FramingError),
    /// The server sent something that does not follow the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A value in a reply could not be decoded.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The server answered a request with a JSON-RPC error.
    #[error("rpc error: {0}")]
    Rpc(OvsdbError),
    /// A transaction failed: `op` is the index of the failing operation, or `None` when the
    /// error came at commit (the extra result after all operations).
    #[error("transaction failed at {}: {error}", op.map(|i| format!("operation {i}")).unwrap_or_else(|| "commit".into()))]
    Transaction {
        /// Index of the failing operation in the request, `None` for a commit error.
        op: Option<usize>,
        /// The decoded error.
        error: OvsdbError,
    },
    /// The schema lacks a table or column the caller needs.
    #[error("schema: {0}")]
    Schema(String),
    /// A request the caller made is invalid (e.g. unknown bridge).
    #[error("{0}")]
    Invalid(String),
    /// A wait for a condition ran out of time.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl Error {
    /// The OVSDB error kind when this is a transaction or RPC error.
    pub fn ovsdb_kind(&self) -> Option<&ErrorKind> {
        match self {
            Error::Transaction { error, .. } | Error::Rpc(error) => Some(&error.kind),
            _ => None,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_error_objects() {
        let e = OvsdbError::from_json(&json!({
            "error": "constraint violation",
            "details": "ofport_request 70000 out of range"
        }))
        .expect("error");
        assert_eq!(e.kind, ErrorKind::ConstraintViolation);
        assert_eq!(
            e.details.as_deref(),
            Some("ofport_request 70000 out of range")
        );
        assert_eq!(
            e.to_string(),
            "constraint violation: ofport_request 70000 out of range"
        );

        let e = OvsdbError::from_json(&json!({"error": "referential integrity violation"}))
            .expect("error");
        assert_eq!(e.kind, ErrorKind::ReferentialIntegrityViolation);
        assert_eq!(e.details, None);

        let e = OvsdbError::from_json(&json!("unknown method")).expect("error");
        assert_eq!(e.kind, ErrorKind::Syntax("unknown method".into()));
        let e = OvsdbError::from_json(&json!({"error": 5})).expect("error");
        assert_eq!(e.kind, ErrorKind::Other("5".into()));

        assert_eq!(OvsdbError::from_json(&json!(null)), None);
        assert_eq!(OvsdbError::from_json(&json!({"uuid": ["uuid", "x"]})), None);
        assert_eq!(OvsdbError::from_json(&json!({"error": null})), None);
    }
}
