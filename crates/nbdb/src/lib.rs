//! The NB store: revisioned objects, multi-key transactions with compare-and-swap, and a
//! change log from which every change can be replayed in revision order.
//!
//! Every committed transaction gets the next global revision; each object remembers the
//! revision that last wrote it (its `mod_revision`), which is what compare-and-swap checks.
//! Backends implement [`Store`]; the API server and the controllers only see that trait.

pub mod codec;
pub mod counters;
pub mod embedded;
pub mod etcd;
pub mod pubsub;
pub mod redis;
pub mod remote;
pub mod source;
pub mod tls;
pub mod url;
pub mod zk;

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

pub use counters::Count;
pub use embedded::Embedded;
pub use etcd::Etcd;
pub use redis::Redis;
pub use source::{Changes, Filter, Source};
pub use zk::ZooKeeper;

/// A global store revision. 0 means "nothing written yet".
pub type Revision = u64;

/// One stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub table: String,
    pub id: String,
    /// The revision of the transaction that last wrote this object.
    pub revision: Revision,
    /// The distribution topic (the owning project), `None` for objects every host gets.
    pub topic: Option<String>,
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
        /// See [`Record::topic`].
        topic: Option<String>,
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
            topic: None,
        }
    }

    /// Sets the topic of a put (no effect on other ops).
    pub fn with_topic(mut self, t: Option<&str>) -> Op {
        if let Op::Put { topic, .. } = &mut self {
            *topic = t.filter(|t| !t.is_empty()).map(str::to_string);
        }
        self
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
    /// The object's topic (for a deletion: the topic it had).
    pub topic: Option<String>,
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
    /// A [`Count`] with a limit would have taken its counter above it; nothing was written.
    #[error("counter {counter} is at its limit")]
    OverLimit { counter: String },
    /// The backend failed (I/O, connection, ...).
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A liveness record (an agent's heartbeat): a value under a key, outside the revisioned
/// model. Writing one takes no revision and adds nothing to the change log, so a thousand
/// hosts reporting every 30 s wake no watcher. It is *live* until its time to live runs
/// out, on the store's clock: etcd's own lease, Redis's key expiry, the embedded store's
/// deadline (the server's clock). The value outlives it, so a dead agent can be shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub value: Vec<u8>,
    pub live: bool,
}

/// Names the object in a decoding error, so an operator can find and repair it.
pub(crate) fn with_key(e: StoreError, table: &str, id: &str) -> StoreError {
    match e {
        StoreError::Corrupt(m) => StoreError::Corrupt(format!("{table}/{id}: {m}")),
        other => other,
    }
}

/// A decoded record for a listing or a snapshot. One that cannot be decoded is logged with
/// its key and left out, so a corrupt object never takes a whole listing down.
pub(crate) fn keep(table: &str, id: &str, r: Result<Option<Record>>) -> Option<Record> {
    match r {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(table, id, error = %e, "corrupt object in the NB store skipped");
            None
        }
    }
}

/// The interface every backend implements.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short description for logs, e.g. `embedded:/var/lib/dragonflow/nb.redb`.
    fn describe(&self) -> String;

    async fn get(&self, table: &str, id: &str) -> Result<Option<Record>>;

    /// Every object of `table` whose id starts with `prefix`, ordered by id.
    async fn list(&self, table: &str, prefix: &str) -> Result<Vec<Record>>;

    /// Every object of `table` distributed under `topic` (and, with `with_global`, those
    /// with no topic), ordered by id.
    async fn list_topic(&self, table: &str, topic: &str, with_global: bool) -> Result<Vec<Record>> {
        let all = self.list(table, "").await?;
        Ok(all
            .into_iter()
            .filter(|r| match &r.topic {
                Some(t) => t == topic,
                None => with_global,
            })
            .collect())
    }

    /// Applies all ops atomically if every expectation holds; returns the new revision.
    async fn commit(&self, ops: Vec<Op>) -> Result<Revision> {
        self.commit_counted(ops, Vec::new()).await
    }

    /// Like [`Store::commit`], and changes counters in the same transaction: the commit
    /// fails with [`StoreError::OverLimit`] (nothing written) when a limited increment
    /// would exceed its limit. `ops` may be empty when `counts` is not.
    async fn commit_counted(&self, ops: Vec<Op>, counts: Vec<Count>) -> Result<Revision>;

    /// Every counter whose name starts with `prefix`, ordered by name (never-set and
    /// zero counters may be left out).
    async fn counters(&self, prefix: &str) -> Result<Vec<(String, i64)>>;

    /// The latest committed revision.
    async fn revision(&self) -> Result<Revision>;

    /// Changes with revision > `after`, in revision order, of at most `limit` revisions
    /// (revisions that changed nothing, e.g. a commit of checks only, do not count, so a
    /// caller always makes progress).
    async fn changes_since(&self, after: Revision, limit: usize) -> Result<Vec<Change>>;

    /// The revision of the last commit to the model: [`Store::revision`], except where
    /// the backend's revision also counts other writes (etcd: its leases and other
    /// prefixes). What a host that has applied every change has reached.
    async fn last_commit(&self) -> Result<Revision> {
        self.revision().await
    }

    /// Writes `value` under `key` in the lease space, live for `ttl` from now (`None`:
    /// until deleted). See [`Lease`].
    async fn put_lease(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<()>;

    /// One lease, live or not.
    async fn get_lease(&self, key: &str) -> Result<Option<Lease>>;

    /// Every lease whose key starts with `prefix`, ordered by key.
    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>>;

    /// Removes a lease; whether there was one.
    async fn delete_lease(&self, key: &str) -> Result<bool>;

    /// A receiver that sees the latest revision each time something commits.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<Revision>;

    /// Every object of every table, consistent at one revision.
    async fn snapshot(&self) -> Result<Snapshot>;

    /// The objects within `filter` (topic-less ones pass any topic limit), consistent at
    /// one revision, ordered by table and id. Backends override this to read
    /// only what the filter asks for; this default reads everything and filters.
    async fn snapshot_filtered(&self, filter: &Filter) -> Result<Snapshot> {
        let mut snap = self.snapshot().await?;
        snap.records
            .retain(|r| filter.admits(&r.table, r.topic.as_deref()));
        Ok(snap)
    }
}

/// Whether an object last written at `current` (`None`: absent) meets `expect`.
pub(crate) fn expect_holds(expect: Expect, current: Option<Revision>) -> bool {
    match (expect, current) {
        (Expect::Any, _) | (Expect::Absent, None) | (Expect::Present, Some(_)) => true,
        (Expect::Revision(want), Some(have)) => want == have,
        _ => false,
    }
}

/// Rejects transactions no backend can apply: empty, a key twice, or a table name that
/// cannot be told apart from the id in a `table/id` key.
pub(crate) fn validate(ops: &[Op]) -> Result<()> {
    if ops.is_empty() {
        return Err(StoreError::Invalid("empty transaction".into()));
    }
    let mut seen = std::collections::HashSet::new();
    for op in ops {
        let (table, id) = op.key();
        if table.is_empty() || table.contains('/') {
            return Err(StoreError::Invalid(format!("bad table name {table:?}")));
        }
        if !seen.insert((table, id)) {
            return Err(StoreError::Invalid(format!("{table}/{id} appears twice")));
        }
    }
    Ok(())
}

/// Raises a revision channel to `rev` (never lowers it, never wakes for nothing).
pub(crate) fn bump(tx: &tokio::sync::watch::Sender<Revision>, rev: Revision) {
    tx.send_if_modified(|cur| {
        let newer = rev > *cur;
        if newer {
            *cur = rev;
        }
        newer
    });
}

/// All objects at one revision: where a watcher starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub revision: Revision,
    pub records: Vec<Record>,
}

/// Follows the change log of a store from a revision: every change exactly once, in
/// revision order, optionally only those within a [`Filter`].
pub struct Watch {
    store: Arc<dyn Store>,
    after: Revision,
    filter: Filter,
    pending: std::collections::VecDeque<Change>,
    wakeups: tokio::sync::watch::Receiver<Revision>,
}

impl Watch {
    /// Changes after revision `after`, of these topics (plus the topic-less ones; `None`:
    /// all topics).
    pub fn new(store: Arc<dyn Store>, after: Revision, topics: Option<Vec<String>>) -> Watch {
        let filter = Filter {
            tables: None,
            topics: topics.map(|t| t.into_iter().collect()),
        };
        Watch::filtered(store, after, filter)
    }

    /// Changes after revision `after` within `filter`.
    pub fn filtered(store: Arc<dyn Store>, after: Revision, filter: Filter) -> Watch {
        let wakeups = store.subscribe();
        Watch {
            store,
            after,
            filter,
            pending: Default::default(),
            wakeups,
        }
    }

    /// The revision of the last change handed out (or the starting point).
    pub fn revision(&self) -> Revision {
        self.after
    }

    /// The revision up to which every change within the filter has been handed out: past
    /// the changes the filter left out too, and up to the last commit once nothing is left
    /// (what a host that applied everything it was given has reached).
    pub fn position(&self) -> Revision {
        match self.pending.front() {
            Some(c) => c.revision.saturating_sub(1),
            None => self.after,
        }
    }

    fn wanted(&self, c: &Change) -> bool {
        self.filter.admits(&c.table, c.topic.as_deref())
    }

    /// The next change; waits for one. Fails with [`StoreError::Compacted`] when the log
    /// no longer reaches back to where this watch stands (take a new snapshot). After any
    /// other error (e.g. the server is down) the watch is intact: call `next` again later
    /// and it resumes where it stood, nothing lost or repeated.
    pub async fn next(&mut self) -> Result<Change> {
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Ok(c);
            }
            // Read before the log: a commit after this read wakes the wait below.
            let known = *self.wakeups.borrow_and_update();
            let batch = self.store.changes_since(self.after, 256).await?;
            if batch.is_empty() {
                // Nothing up to `known` is left to hand out: that far is seen.
                self.after = self.after.max(known);
                if self.wakeups.changed().await.is_err() {
                    return Err(StoreError::Unavailable("store closed".into()));
                }
                continue;
            }
            for c in batch {
                self.after = self.after.max(c.revision);
                if self.wanted(&c) {
                    self.pending.push_back(c);
                }
            }
        }
    }
}

/// Opens a store from a `--db` URL:
/// - `embedded:PATH` (or a bare path): a redb file in this process;
/// - `etcd://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][/PREFIX]`: etcd v3, keys under
///   `/PREFIX/` (default `/dragonflow/`), as USER when its authentication is on;
/// - `redis://[[USER]:PASSWORD@]HOST:PORT[/DB]`: Redis, keys under `dragonflow:`;
/// - `etcds://…` and `rediss://…`: the same over TLS, with `?ca=PATH` (the CA that signs
///   the server's certificate; default: the system's roots) and `&cert=PATH&key=PATH` (the
///   client's own, for a server that asks for one);
/// - `zk://HOST:PORT[,HOST:PORT...][/PREFIX]`: ZooKeeper, znodes under `/PREFIX`
///   (default `/dragonflow`).
///
/// etcd, Redis and ZooKeeper connect lazily (the first operation connects, and every operation
/// reconnects after a failure), so this stays synchronous; it must be called inside a
/// tokio runtime for them because their change follower is a background task. Use
/// [`connect`] to fail fast when the server is unreachable.
pub fn open(url: &str) -> Result<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("embedded:") {
        return Ok(Arc::new(Embedded::open(path)?));
    }
    let etcd = (url.strip_prefix("etcd://").map(|r| (r, false)))
        .or_else(|| url.strip_prefix("etcds://").map(|r| (r, true)));
    if let Some((rest, secure)) = etcd {
        let (user, rest) = url::credentials(rest);
        let (rest, paths) = tls::split(rest, secure)?;
        let tls = secure.then(|| paths.read()).transpose()?;
        let scheme = if secure { "https" } else { "http" };
        let (hosts, prefix) = match rest.split_once('/') {
            Some((h, p)) if !p.trim_matches('/').is_empty() => {
                (h, format!("/{}/", p.trim_matches('/')))
            }
            Some((h, _)) => (h, etcd::DEFAULT_PREFIX.to_string()),
            None => (rest, etcd::DEFAULT_PREFIX.to_string()),
        };
        let endpoints: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("{scheme}://{h}"))
            .collect();
        if endpoints.is_empty() {
            return Err(StoreError::Invalid(format!(
                "no etcd host in {:?}",
                url::redacted(url)
            )));
        }
        return Ok(Arc::new(Etcd::with_access(
            endpoints,
            &prefix,
            etcd::DEFAULT_BUFFER,
            etcd::Access { user, tls },
        )?));
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        let secure = url.starts_with("rediss://");
        let (plain, paths) = tls::split(url, secure)?;
        let options = redis::Options {
            tls: secure.then(|| paths.read()).transpose()?,
            ..redis::Options::default()
        };
        return Ok(Arc::new(Redis::new(plain, options)?));
    }
    if let Some(rest) = url.strip_prefix("zk://") {
        let (hosts, prefix) = match rest.split_once('/') {
            Some((h, p)) if !p.trim_matches('/').is_empty() => {
                (h, format!("/{}", p.trim_matches('/')))
            }
            Some((h, _)) => (h, zk::layout::DEFAULT_PREFIX.to_string()),
            None => (rest, zk::layout::DEFAULT_PREFIX.to_string()),
        };
        if hosts.is_empty() {
            return Err(StoreError::Invalid(format!("no zookeeper host in {url:?}")));
        }
        return Ok(Arc::new(ZooKeeper::new(
            hosts,
            &prefix,
            zk::Options::default(),
        )?));
    }
    if url.contains("://") {
        return Err(StoreError::Invalid(format!(
            "unsupported store URL {url:?} (supported: embedded:PATH, etcd[s]://HOST:PORT[/PREFIX], \
             redis[s]://HOST:PORT[/DB], zk://HOST:PORT[,...][/PREFIX])"
        )));
    }
    Ok(Arc::new(Embedded::open(url)?))
}

/// Like [`open`], then reads the revision once so an unreachable server is reported now.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    let store = open(url)?;
    store.revision().await?;
    Ok(store)
}

/// The file of an embedded store's URL (`embedded:PATH` or a bare path); none for a
/// networked store.
pub fn embedded_path(url: &str) -> Option<&str> {
    match url.strip_prefix("embedded:") {
        Some(path) => Some(path),
        None => (!url.contains("://")).then_some(url),
    }
}

/// Like [`connect`], for an embedded store whose change log keeps the last `retention`
/// revisions (instead of [`embedded::DEFAULT_RETENTION`]). Refused for the other stores:
/// their history is trimmed by their own settings (etcd's compaction).
pub async fn connect_with_retention(url: &str, retention: u64) -> Result<Arc<dyn Store>> {
    let Some(path) = embedded_path(url) else {
        return Err(StoreError::Invalid(format!(
            "a log retention is the embedded store's, not {}'s (etcd: its own \
             --auto-compaction-retention)",
            url.split("://").next().unwrap_or(url)
        )));
    };
    Ok(Arc::new(Embedded::open_with_retention(path, retention)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_name_the_backend_and_its_place() {
        let s = open("etcd://127.0.0.1:1/cloud-a/").unwrap();
        assert_eq!(s.describe(), "etcd:http://127.0.0.1:1/cloud-a/");
        let s = open("etcd://h1:1,h2:2").unwrap();
        assert_eq!(s.describe(), "etcd:http://h1:1,http://h2:2/dragonflow/");
        let s = open("redis://127.0.0.1:1/3").unwrap();
        assert!(
            s.describe().starts_with("redis:redis://127.0.0.1:1/3"),
            "{}",
            s.describe()
        );
        let s = open("zk://h1:2181,h2:2181/cloud-a/").unwrap();
        assert_eq!(s.describe(), "zk:h1:2181,h2:2181/cloud-a");
        let s = open("zk://127.0.0.1:1").unwrap();
        assert_eq!(s.describe(), "zk:127.0.0.1:1/dragonflow");
        for bad in [
            "etcd:///x",
            "zookeeper://h:1",
            "redis://h:notaport",
            "zk:///x",
            "zk://h",
            "zk://h:1,,h:2",
            "zk://h:1/a/../b",
        ] {
            assert!(matches!(open(bad), Err(StoreError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn remote_backends_outside_a_runtime_are_an_error_not_a_panic() {
        assert!(matches!(
            open("etcd://127.0.0.1:1"),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            open("redis://127.0.0.1:1"),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            open("zk://127.0.0.1:1"),
            Err(StoreError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn connect_reports_an_unreachable_server() {
        // Port 1 on loopback: nothing listens there.
        let e = connect("redis://127.0.0.1:1").await.err().unwrap();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
        let e = connect("etcd://127.0.0.1:1").await.err().unwrap();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
        let e = connect("zk://127.0.0.1:1").await.err().unwrap();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
    }

    #[test]
    fn transactions_are_validated() {
        assert!(validate(&[]).is_err());
        let p = |t: &str, i: &str| Op::put(t, i, vec![], Expect::Any);
        assert!(validate(&[p("a", "x"), p("a", "y"), p("b", "x")]).is_ok());
        assert!(validate(&[p("a", "x"), Op::check("a", "x", Expect::Any)]).is_err());
        assert!(validate(&[p("", "x")]).is_err());
        assert!(validate(&[p("a/b", "x")]).is_err());
    }
}
