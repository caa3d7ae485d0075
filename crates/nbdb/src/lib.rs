//! The NB store: revisioned objects, multi-key transactions with compare-and-swap, and a
//! change log from which every change can be replayed in revision order.
//!
//! Every committed transaction gets the next global revision; each object remembers the
//! revision that last wrote it (its `mod_revision`), which is what compare-and-swap checks.
//! Backends implement [`Store`]; the API server and the controllers only see that trait.

pub mod codec;
pub mod embedded;

use async_trait::async_trait;
use std::sync::Arc;

pub use embedded::Embedded;

/// A global store revision. 0 means "nothing written yet".
pub type Revision = u64;

/// One stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub table: String,
    pub id: String,
    /// The revision of the transaction that last wrote this object.
    pub revision: Revision,
    pub value: Vec<u8>,
}

/// What a transaction expects of an object before it may commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Any,
    Absent,
    Present,
    /// The object exists and was last written at exactly this revision.
    Revision(Revision),
}

/// One step of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put {
        table: String,
        id: String,
        value: Vec<u8>,
        expect: Expect,
    },
    Delete {
        table: String,
        id: String,
        expect: Expect,
    },
    /// Writes nothing; only makes the commit conditional on the object's state.
    Check {
        table: String,
        id: String,
        expect: Expect,
    },
}

impl Op {
    pub fn put(table: &str, id: &str, value: Vec<u8>, expect: Expect) -> Op {
        Op::Put {
            table: table.into(),
            id: id.into(),
            value,
            expect,
        }
    }

    pub fn delete(table: &str, id: &str, expect: Expect) -> Op {
        Op::Delete {
            table: table.into(),
            id: id.into(),
            expect,
        }
    }

    pub fn check(table: &str, id: &str, expect: Expect) -> Op {
        Op::Check {
            table: table.into(),
            id: id.into(),
            expect,
        }
    }

    pub fn key(&self) -> (&str, &str) {
        match self {
            Op::Put { table, id, .. }
            | Op::Delete { table, id, .. }
            | Op::Check { table, id, .. } => (table, id),
        }
    }

    pub fn expect(&self) -> Expect {
        match self {
            Op::Put { expect, .. } | Op::Delete { expect, .. } | Op::Check { expect, .. } => {
                *expect
            }
        }
    }
}

/// One change in the log: a put (with the new value) or a deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub revision: Revision,
    pub table: String,
    pub id: String,
    /// `None` for a deletion.
    pub value: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A precondition did not hold; nothing was written.
    #[error("conflict on {table}/{id}")]
    Conflict { table: String, id: String },
    /// The transaction itself is malformed (e.g. the same key twice).
    #[error("invalid transaction: {0}")]
    Invalid(String),
    /// The change log no longer holds revisions this old; take a new snapshot.
    #[error("revision {requested} was compacted (oldest kept: {oldest})")]
    Compacted {
        requested: Revision,
        oldest: Revision,
    },
    /// Stored bytes that cannot be decoded.
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    /// The backend failed (I/O, connection, ...).
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The interface every backend implements.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short description for logs, e.g. `embedded:/var/lib/dragonflow/nb.redb`.
    fn describe(&self) -> String;

    async fn get(&self, table: &str, id: &str) -> Result<Option<Record>>;

    /// Every object of `table` whose id starts with `prefix`, ordered by id.
    async fn list(&self, table: &str, prefix: &str) -> Result<Vec<Record>>;

    /// Applies all ops atomically if every expectation holds; returns the new revision.
    async fn commit(&self, ops: Vec<Op>) -> Result<Revision>;

    /// The latest committed revision.
    async fn revision(&self) -> Result<Revision>;

    /// Changes with revision > `after`, in revision order, at most `limit` revisions.
    async fn changes_since(&self, after: Revision, limit: usize) -> Result<Vec<Change>>;

    /// A receiver that sees the latest revision each time something commits.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<Revision>;
}

/// Opens a store from a `--db` URL: `embedded:PATH` (or a bare path).
pub fn open(url: &str) -> Result<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("embedded:") {
        return Ok(Arc::new(Embedded::open(path)?));
    }
    if url.contains("://") {
        return Err(StoreError::Invalid(format!(
            "unsupported store URL {url:?} (supported: embedded:PATH)"
        )));
    }
    Ok(Arc::new(Embedded::open(url)?))
}
