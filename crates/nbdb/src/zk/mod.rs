//! The ZooKeeper backend: objects as znodes, and the revisioned change log ZooKeeper does
//! not have, built from a revision counter and one log znode per revision.
//!
//! Under the base path (`/dragonflow` by default; see [`layout`]):
//! - `rev`: the latest revision (decimal);
//! - `o/<table>/<id>`: an object, [`crate::codec::encode_object`] (its revision inside);
//! - `log/<rev, 20 digits>`: the changes of one revision ([`crate::codec::encode_changes`]),
//!   empty for a commit that changed nothing: every revision has an entry, so a missing one
//!   means the log was trimmed past it;
//! - `trimmed`: the revision up to which the log was trimmed; `n/<name>`: counters;
//! - `l/<key>`: leases, time to live and value; `clock`: written to read the server's clock.
//!
//! A commit reads `rev` and the objects it touches, checks every expectation, then writes
//! one multi-op: `rev` set to the next revision *on the condition that its znode version is
//! the one read*, the objects, the counters and the log entry. Every commit moves `rev`, so
//! that one condition makes the multi fail if any commit came in between (then it is read
//! and tried again): commits are serialised by ZooKeeper itself, the log order is the
//! commit order, and the revision is known before the write, so objects carry it.
//! (A sequential znode's number is not: it is assigned at commit, and counts the deletions
//! of trimming too, which would leave gaps.)

mod commit;
pub mod layout;

use crate::codec;
use crate::{Change, Count, Op, Record, Result, Revision, Snapshot, Store, StoreError};
use async_trait::async_trait;
use layout::Layout;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use zookeeper_client as zk;

/// Settings beyond the URL.
#[derive(Clone, Debug)]
pub struct Options {
    /// About how many revisions the change log keeps.
    pub retention: u64,
    /// The ZooKeeper session timeout asked for (the server bounds it by its tick).
    pub session_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            retention: crate::embedded::DEFAULT_RETENTION,
            session_timeout: Duration::from_secs(10),
        }
    }
}

/// The log is trimmed each time the revision reaches a multiple of this.
const TRIM_STEP: u64 = 1000;
/// Requests of one batch of pipelined reads.
const BATCH: usize = 1000;
/// Longest wait for one operation before it is reported unavailable.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

const PERSISTENT: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

fn err(e: zk::Error) -> StoreError {
    match e {
        zk::Error::BadArguments(m) => StoreError::Invalid(format!("zookeeper: {m}")),
        e => StoreError::Unavailable(format!("zookeeper: {e}")),
    }
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(format!("zookeeper: {what}"))
}

/// The connection, shared with the change follower and the trimmer. A session that
/// expires (or closes) is replaced by a new one at the next operation; nothing of this
/// backend lives in a session (no ephemeral node, no watch that is not re-armed), and the
/// log is read by revision, so a watcher loses nothing: if the log was trimmed past it
/// meanwhile it gets [`StoreError::Compacted`] and takes a new snapshot.
struct Inner {
    hosts: String,
    layout: Layout,
    options: Options,
    client: tokio::sync::Mutex<Option<zk::Client>>,
    /// The skeleton nodes exist (made once per store).
    ready: std::sync::atomic::AtomicBool,
}

impl Inner {
    async fn client(&self) -> Result<zk::Client> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.state().is_terminated()
        {
            return Ok(c.clone());
        }
        let connect = zk::Client::connector()
            .with_session_timeout(self.options.session_timeout)
            .with_connection_timeout(Duration::from_secs(2))
            .with_fail_eagerly()
            .connect(&self.hosts);
        let c = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| StoreError::Unavailable(format!("zookeeper {}: no answer", self.hosts)))?
            .map_err(|e| StoreError::Unavailable(format!("zookeeper {}: {e}", self.hosts)))?;
        if !self.ready.load(std::sync::atomic::Ordering::Acquire) {
            // Parents first; a session's requests are handled in order.
            let skeleton = self.layout.skeleton();
            let made: Vec<_> = skeleton
                .iter()
                .map(|p| c.create(p, b"", &PERSISTENT))
                .collect();
            for m in made {
                match m.await {
                    Ok(_) | Err(zk::Error::NodeExists) => {}
                    Err(e) => return Err(err(e)),
                }
            }
            self.ready.store(true, std::sync::atomic::Ordering::Release);
        }
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn read_rev(&self, c: &zk::Client) -> Result<(Revision, i32)> {
        let (data, stat) = c.get_data(&self.layout.rev()).await.map_err(err)?;
        Ok((layout::decode_number("revision", &data)?, stat.version))
    }

    /// The first revision the log still holds.
    async fn oldest(&self, c: &zk::Client) -> Result<Revision> {
        let (data, _) = c.get_data(&self.layout.trimmed()).await.map_err(err)?;
        Ok(layout::decode_number::<Revision>("trim mark", &data)? + 1)
    }

    /// The entries of revisions `from..=to`, in order, until `limit` revisions with
    /// changes were read. A missing entry is a trimmed log.
    async fn read_log(
        &self,
        c: &zk::Client,
        from: Revision,
        to: Revision,
        limit: usize,
    ) -> Result<Vec<Change>> {
        let mut out = Vec::new();
        let mut revisions = 0;
        let mut at = from;
        let page = limit.clamp(8, 512) as u64;
        while at <= to {
            let end = to.min(at + page - 1);
            let reads: Vec<_> = (at..=end)
                .map(|r| (r, c.get_data(&self.layout.log(r))))
                .collect();
            for (r, read) in reads {
                match read.await {
                    Ok((data, _)) => {
                        let changes = codec::decode_changes(r, &data)
                            .map_err(|e| corrupt(format!("log entry {r}: {e}")))?;
                        if !changes.is_empty() {
                            out.extend(changes);
                            revisions += 1;
                            if revisions >= limit {
                                return Ok(out);
                            }
                        }
                    }
                    Err(zk::Error::NoNode) => {
                        return Err(StoreError::Compacted {
                            requested: r,
                            oldest: self.oldest(c).await?.max(r + 1),
                        });
                    }
                    Err(e) => return Err(err(e)),
                }
            }
            at = end + 1;
        }
        Ok(out)
    }

    /// Deletes the log entries up to `upto` and moves the trim mark there.
    async fn trim(&self, upto: Revision) -> Result<()> {
        let c = self.client().await?;
        let (data, stat) = c.get_data(&self.layout.trimmed()).await.map_err(err)?;
        let from: Revision = layout::decode_number::<Revision>("trim mark", &data)? + 1;
        let mut at = from;
        while at <= upto {
            let end = upto.min(at + BATCH as u64 - 1);
            let deletes: Vec<_> = (at..=end)
                .map(|r| c.delete(&self.layout.log(r), None))
                .collect();
            for d in deletes {
                match d.await {
                    Ok(()) | Err(zk::Error::NoNode) => {}
                    Err(e) => return Err(err(e)),
                }
            }
            at = end + 1;
        }
        if upto >= from {
            // Another trimmer that moved the mark first did the same work.
            match c
                .set_data(
                    &self.layout.trimmed(),
                    upto.to_string().as_bytes(),
                    Some(stat.version),
                )
                .await
            {
                Ok(_) | Err(zk::Error::BadVersion) => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok(())
    }

    /// The server's clock, in ms since the epoch: the `mtime` of a write.
    async fn now(&self, c: &zk::Client) -> Result<i64> {
        let stat = c
            .set_data(&self.layout.clock(), b"", None)
            .await
            .map_err(err)?;
        Ok(stat.mtime)
    }

    /// The leases at `keys` that exist, read in one pipeline after the server's clock.
    async fn read_leases(&self, c: &zk::Client, keys: Vec<String>) -> Result<Vec<crate::Lease>> {
        let now = self.now(c).await?;
        let reads: Vec<_> = keys
            .into_iter()
            .map(|k| {
                let read = c.get_data(&self.layout.lease(&k));
                (k, read)
            })
            .collect();
        let mut out = Vec::new();
        for (key, read) in reads {
            match read.await {
                Ok((data, stat)) => {
                    let (ttl, value) = layout::decode_lease(&data)
                        .map_err(|e| corrupt(format!("lease {key}: {e}")))?;
                    out.push(crate::Lease {
                        live: layout::lease_live(ttl, stat.mtime, now),
                        value: value.to_vec(),
                        key,
                    });
                }
                Err(zk::Error::NoNode) => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok(out)
    }

    /// The names under `path` that [`layout::escape`] made, unescaped and sorted; none if
    /// `path` does not exist.
    async fn children(&self, c: &zk::Client, path: &str) -> Result<Vec<String>> {
        let names = match c.list_children(path).await {
            Ok(n) => n,
            Err(zk::Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        let mut out: Vec<String> = names
            .iter()
            .filter_map(|n| {
                let s = layout::unescape(n);
                if s.is_none() {
                    tracing::warn!(path, node = %n, "foreign znode in the NB store ignored");
                }
                s
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// The objects at `keys` (table, id), read in pipelined batches; those gone since
    /// they were listed are left out, corrupt ones logged and left out.
    async fn read_objects(
        &self,
        c: &zk::Client,
        keys: Vec<(String, String)>,
    ) -> Result<Vec<Record>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH) {
            let reads: Vec<_> = chunk
                .iter()
                .map(|(t, i)| c.get_data(&self.layout.object(t, i)))
                .collect();
            for ((table, id), read) in chunk.iter().zip(reads) {
                match read.await {
                    Ok((data, _)) => {
                        out.extend(crate::keep(table, id, record(table, id, &data)));
                    }
                    Err(zk::Error::NoNode) => {}
                    Err(e) => return Err(err(e)),
                }
            }
        }
        Ok(out)
    }
}

fn record(table: &str, id: &str, data: &[u8]) -> Result<Option<Record>> {
    let o = codec::decode_object(data).map_err(|e| crate::with_key(e, table, id))?;
    Ok(Some(Record {
        table: table.into(),
        id: id.into(),
        revision: o.revision,
        topic: codec::topic_of(o.topic),
        value: o.value.to_vec(),
    }))
}

/// Runs one store operation with a deadline, so a server that is away reads as
/// unavailable instead of a hang.
async fn timed<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(OP_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("zookeeper: no answer".into())))
}

/// Keeps `tx` at the latest revision: reads `rev` with a watch, waits for the watch (or
/// 2 s, in case an event was lost to a reconnection), again; reconnects after failures.
async fn follow(inner: Arc<Inner>, tx: watch::Sender<Revision>) {
    loop {
        if let Err(e) = follow_once(&inner, &tx).await {
            tracing::debug!(error = %e, "zookeeper change follower restarting");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn follow_once(inner: &Inner, tx: &watch::Sender<Revision>) -> Result<()> {
    let c = inner.client().await?;
    loop {
        let (data, _, watcher) = c
            .get_and_watch_data(&inner.layout.rev())
            .await
            .map_err(err)?;
        crate::bump(tx, layout::decode_number("revision", &data)?);
        let _ = tokio::time::timeout(Duration::from_secs(2), watcher.changed()).await;
        if c.state().is_terminated() {
            return Err(StoreError::Unavailable("zookeeper session ended".into()));
        }
    }
}

/// A store on a ZooKeeper ensemble.
pub struct ZooKeeper {
    inner: Arc<Inner>,
    /// One commit of this client at a time: they would only make each other retry.
    commits: tokio::sync::Mutex<()>,
    revision: watch::Sender<Revision>,
    follower: tokio::task::AbortHandle,
}

impl std::fmt::Debug for ZooKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ZooKeeper({}{})",
            self.inner.hosts,
            self.inner.layout.base()
        )
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl ZooKeeper {
    /// A store on the ensemble `hosts` (`host:port,host:port`), under the base path
    /// `prefix` (e.g. `/dragonflow`). Connects lazily; must be called inside a tokio
    /// runtime.
    pub fn new(hosts: &str, prefix: &str, options: Options) -> Result<ZooKeeper> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Invalid("the zookeeper store needs a tokio runtime".into()))?;
        let layout = Layout::new(prefix)?;
        for h in hosts.split(',') {
            let port = h.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
            if h.is_empty() || !matches!(port, Some(Ok(_))) {
                return Err(StoreError::Invalid(format!(
                    "bad zookeeper host {h:?} (want HOST:PORT)"
                )));
            }
        }
        let inner = Arc::new(Inner {
            hosts: hosts.into(),
            layout,
            options,
            client: tokio::sync::Mutex::new(None),
            ready: false.into(),
        });
        let (tx, _) = watch::channel(0);
        let follower = handle
            .spawn(follow(inner.clone(), tx.clone()))
            .abort_handle();
        Ok(ZooKeeper {
            inner,
            commits: tokio::sync::Mutex::new(()),
            revision: tx,
            follower,
        })
    }

    /// Like [`ZooKeeper::new`], then checks the ensemble answers.
    pub async fn connect(hosts: &str, prefix: &str, options: Options) -> Result<ZooKeeper> {
        let store = ZooKeeper::new(hosts, prefix, options)?;
        store.revision().await?;
        Ok(store)
    }

    /// Drops change-log entries up to `revision` (what retention does over time).
    pub async fn trim(&self, revision: Revision) -> Result<()> {
        self.inner.trim(revision).await
    }

    /// Stores `data` as the object `table/id`, bypassing the layout (tests of
    /// [`StoreError::Corrupt`]).
    pub async fn put_raw(&self, table: &str, id: &str, data: &[u8]) -> Result<()> {
        let c = self.inner.client().await?;
        let l = &self.inner.layout;
        match c.create(&l.table(table), b"", &PERSISTENT).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(err(e)),
        }
        match c.create(&l.object(table, id), data, &PERSISTENT).await {
            Ok(_) => Ok(()),
            Err(zk::Error::NodeExists) => c
                .set_data(&l.object(table, id), data, None)
                .await
                .map(|_| ())
                .map_err(err),
            Err(e) => Err(err(e)),
        }
    }
}

#[async_trait]
impl Store for ZooKeeper {
    fn describe(&self) -> String {
        format!("zk:{}{}", self.inner.hosts, self.inner.layout.base())
    }

    async fn get(&self, table: &str, id: &str) -> Result<Option<Record>> {
        timed(async {
            let c = self.inner.client().await?;
            match c.get_data(&self.inner.layout.object(table, id)).await {
                Ok((data, _)) => record(table, id, &data),
                Err(zk::Error::NoNode) => Ok(None),
                Err(e) => Err(err(e)),
            }
        })
        .await
    }

    async fn list(&self, table: &str, prefix: &str) -> Result<Vec<Record>> {
        timed(async {
            let c = self.inner.client().await?;
            let ids = self
                .inner
                .children(&c, &self.inner.layout.table(table))
                .await?;
            let keys = ids
                .into_iter()
                .filter(|i| i.starts_with(prefix))
                .map(|i| (table.to_string(), i))
                .collect();
            self.inner.read_objects(&c, keys).await
        })
        .await
    }

    async fn commit_counted(&self, ops: Vec<Op>, counts: Vec<Count>) -> Result<Revision> {
        crate::counters::validate_commit(&ops, &counts)?;
        let _one = self.commits.lock().await;
        timed(async {
            for _ in 0..1000 {
                let c = self.inner.client().await?;
                if let commit::Attempt::Done(rev) = self.commit_once(&c, &ops, &counts).await? {
                    crate::bump(&self.revision, rev);
                    if rev % TRIM_STEP == 0 && rev > self.inner.options.retention {
                        let inner = self.inner.clone();
                        let upto = rev - self.inner.options.retention;
                        tokio::spawn(async move {
                            if let Err(e) = inner.trim(upto).await {
                                tracing::warn!(error = %e, "zookeeper change log not trimmed");
                            }
                        });
                    }
                    return Ok(rev);
                }
            }
            Err(StoreError::Unavailable(
                "zookeeper: commit lost to other commits 1000 times".into(),
            ))
        })
        .await
    }

    async fn counters(&self, prefix: &str) -> Result<Vec<(String, i64)>> {
        timed(async {
            let c = self.inner.client().await?;
            let names = self
                .inner
                .children(&c, &self.inner.layout.counters())
                .await?;
            let reads: Vec<_> = names
                .into_iter()
                .filter(|n| n.starts_with(prefix))
                .map(|n| {
                    let read = c.get_data(&self.inner.layout.counter(&n));
                    (n, read)
                })
                .collect();
            let mut out = Vec::new();
            for (name, read) in reads {
                match read.await {
                    Ok((data, _)) => {
                        let v: i64 = layout::decode_number(&format!("counter {name}"), &data)?;
                        if v != 0 {
                            out.push((name, v));
                        }
                    }
                    Err(zk::Error::NoNode) => {}
                    Err(e) => return Err(err(e)),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn revision(&self) -> Result<Revision> {
        timed(async {
            let c = self.inner.client().await?;
            Ok(self.inner.read_rev(&c).await?.0)
        })
        .await
    }

    async fn changes_since(&self, after: Revision, limit: usize) -> Result<Vec<Change>> {
        timed(async {
            let c = self.inner.client().await?;
            let (latest, _) = self.inner.read_rev(&c).await?;
            if latest < after {
                // The ensemble lost data (e.g. a wiped data dir): only a snapshot is right.
                return Err(StoreError::Compacted {
                    requested: after + 1,
                    oldest: latest + 1,
                });
            }
            self.inner
                .read_log(&c, after + 1, latest, limit.max(1))
                .await
        })
        .await
    }

    async fn put_lease(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<()> {
        let ttl_ms = ttl.map_or(0, |t| {
            u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        let data = layout::encode_lease(ttl_ms, &value);
        let path = self.inner.layout.lease(key);
        layout::check_size("a lease", layout::op_size(&path, data.len()))?;
        timed(async {
            let c = self.inner.client().await?;
            // The node's mtime, set by the server, is when the time to live starts.
            loop {
                match c.set_data(&path, &data, None).await {
                    Ok(_) => return Ok(()),
                    Err(zk::Error::NoNode) => {}
                    Err(e) => return Err(err(e)),
                }
                match c.create(&path, &data, &PERSISTENT).await {
                    Ok(_) => return Ok(()),
                    Err(zk::Error::NodeExists) => {}
                    Err(e) => return Err(err(e)),
                }
            }
        })
        .await
    }

    async fn get_lease(&self, key: &str) -> Result<Option<crate::Lease>> {
        timed(async {
            let c = self.inner.client().await?;
            Ok(self
                .inner
                .read_leases(&c, vec![key.to_string()])
                .await?
                .pop())
        })
        .await
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<crate::Lease>> {
        timed(async {
            let c = self.inner.client().await?;
            let keys = self
                .inner
                .children(&c, &self.inner.layout.leases())
                .await?
                .into_iter()
                .filter(|k| k.starts_with(prefix))
                .collect();
            self.inner.read_leases(&c, keys).await
        })
        .await
    }

    async fn delete_lease(&self, key: &str) -> Result<bool> {
        timed(async {
            let c = self.inner.client().await?;
            match c.delete(&self.inner.layout.lease(key), None).await {
                Ok(()) => Ok(true),
                Err(zk::Error::NoNode) => Ok(false),
                Err(e) => Err(err(e)),
            }
        })
        .await
    }

    fn subscribe(&self) -> watch::Receiver<Revision> {
        self.revision.subscribe()
    }

    /// Reads the revision, every object, the revision again, then replays the log between
    /// the two over what was read: each object was read at some revision in between, so
    /// the replay brings them all to the second one, without stopping writers.
    async fn snapshot(&self) -> Result<Snapshot> {
        timed(async {
            let inner = &self.inner;
            let c = inner.client().await?;
            let (first, _) = inner.read_rev(&c).await?;
            let tables = inner.children(&c, &inner.layout.tables()).await?;
            let mut keys = Vec::new();
            for t in &tables {
                let ids = inner.children(&c, &inner.layout.table(t)).await?;
                keys.extend(ids.into_iter().map(|i| (t.clone(), i)));
            }
            let records = inner.read_objects(&c, keys).await?;
            let (last, _) = inner.read_rev(&c).await?;
            let mut state: BTreeMap<(String, String), Record> = records
                .into_iter()
                .map(|r| ((r.table.clone(), r.id.clone()), r))
                .collect();
            if last > first {
                for ch in inner.read_log(&c, first + 1, last, usize::MAX).await? {
                    let key = (ch.table.clone(), ch.id.clone());
                    match ch.value {
                        Some(value) => {
                            state.insert(
                                key,
                                Record {
                                    table: ch.table,
                                    id: ch.id,
                                    revision: ch.revision,
                                    topic: ch.topic,
                                    value,
                                },
                            );
                        }
                        None => {
                            state.remove(&key);
                        }
                    }
                }
            }
            Ok(Snapshot {
                revision: last,
                records: state.into_values().collect(),
            })
        })
        .await
    }
}
