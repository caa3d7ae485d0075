//! The etcd v3 backend: objects as keys under a prefix, etcd's own revisions, its watch as
//! the change log.
//!
//! Layout: `<prefix><table>/<id>` holds `codec::encode_value(topic, value)`, and every
//! commit also writes `<prefix>/commit` as its last operation. That marker makes each of
//! our commits take exactly one etcd revision (a commit of checks only, or of deletions of
//! absent keys, would otherwise take none), tells the latest revision of *this* store
//! apart from writes to other prefixes, and ends each revision's events in a watch, so a
//! reader knows when it has seen a revision whole.
//!
//! `changes_since` is served from a buffer of recent revisions that the background
//! follower fills from one long-lived watch over the prefix. A new etcd watch from an old
//! revision is only synced by the server every 100 ms, which would be the latency of every
//! step of a [`crate::Watch`]; the buffer makes a step one small read. Watchers further
//! behind than the buffer, or during a reconnect, get a watch of their own from history.
//! `revision()` is etcd's header revision (also counting writes outside the prefix).
//!
//! Leases ([`crate::Lease`]) live beside the prefix, never under it (so the follower never
//! sees them): `<prefix>.leases/v/<key>` holds the value and `<prefix>.leases/live/<key>`
//! is attached to an etcd lease of the time to live, so etcd itself drops it when the
//! writer stops renewing: liveness is etcd's clock, not the writer's.

mod counters;
mod follow;
mod members;

use crate::codec::{decode_value, encode_value, topic_of};
use crate::{Change, Count, Expect, Op, Record, Result, Revision, Snapshot, Store, StoreError};
use async_trait::async_trait;
use counters::{number, shard_of};
use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions,
};
use follow::{Recent, follow};
pub use members::Access;
use members::{Members, Pinned};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Where objects live unless the URL names another prefix.
pub const DEFAULT_PREFIX: &str = "/dragonflow/";
/// Keys per range request: keeps every response well under gRPC's 4 MiB message limit.
const PAGE: i64 = 500;

/// Revisions of changes the follower keeps for `changes_since` by default.
pub const DEFAULT_BUFFER: usize = 4096;

/// A store on an etcd v3 cluster.
pub struct Etcd {
    shared: Arc<Shared>,
    follower: tokio::task::AbortHandle,
}

/// What the store and its follower task share.
struct Shared {
    members: Members,
    prefix: String,
    /// The last revision the follower has seen whole (in `recent`).
    revision: watch::Sender<Revision>,
    recent: Mutex<Recent>,
    buffer: usize,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.shared;
        write!(f, "Etcd({}{})", s.members.endpoints().join(","), s.prefix)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

fn io<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Unavailable(format!("etcd: {e}"))
}

/// The largest watch response taken. etcd sends a watcher that is behind up to 1000
/// revisions of history in one response, with the values before them, which with large
/// objects is well past tonic's 4 MiB default (a host 5,000 revisions of 5 kB ports
/// behind got 10 MB and was refused for ever); etcd's own Go client allows 2 GiB.
const WATCH_MAX_MESSAGE: usize = i32::MAX as usize;

/// A watch of `key` on `c` that takes responses up to [`WATCH_MAX_MESSAGE`].
async fn watch_on(
    c: &etcd_client::Client,
    key: &str,
    opts: WatchOptions,
) -> std::result::Result<etcd_client::WatchStream, etcd_client::Error> {
    c.watch_client()
        .max_decoding_message_size(WATCH_MAX_MESSAGE)
        .watch(key, Some(opts))
        .await
}

fn rev_of(r: i64) -> Revision {
    u64::try_from(r).unwrap_or(0)
}

/// The smallest key greater than every key starting with `key` (etcd's "range_end").
fn prefix_end(key: &[u8]) -> Vec<u8> {
    let mut end = key.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Etcd {
    /// A store on the etcd cluster at `endpoints` (`http://host:port`), keys under
    /// `prefix`. Connects lazily; must be called inside a tokio runtime.
    pub fn new(endpoints: Vec<String>, prefix: &str) -> Result<Etcd> {
        Etcd::with_buffer(endpoints, prefix, DEFAULT_BUFFER)
    }

    /// Like [`Etcd::new`], keeping the changes of `buffer` recent revisions in memory.
    /// A watcher further behind reads etcd's history (which etcd compacts on its own
    /// schedule, then the watcher gets [`StoreError::Compacted`]).
    pub fn with_buffer(endpoints: Vec<String>, prefix: &str, buffer: usize) -> Result<Etcd> {
        Etcd::with_access(endpoints, prefix, buffer, Access::default())
    }

    /// Like [`Etcd::with_buffer`], with credentials and TLS (`https://` endpoints).
    pub fn with_access(
        endpoints: Vec<String>,
        prefix: &str,
        buffer: usize,
        access: Access,
    ) -> Result<Etcd> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Invalid("the etcd store needs a tokio runtime".into()))?;
        let prefix = if prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        let (tx, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            members: Members::new(endpoints, access),
            prefix,
            revision: tx,
            recent: Mutex::new(Recent::default()),
            buffer,
        });
        let follower = handle.spawn(follow(shared.clone())).abort_handle();
        Ok(Etcd { shared, follower })
    }

    /// Like [`Etcd::with_buffer`], then checks the cluster answers.
    pub async fn connect(endpoints: Vec<String>, prefix: &str, buffer: usize) -> Result<Etcd> {
        let store = Etcd::with_buffer(endpoints, prefix, buffer)?;
        store.revision().await?;
        Ok(store)
    }
}

impl Shared {
    async fn client(&self) -> Result<Pinned> {
        self.members.client().await
    }

    /// The error of a request through `c` (see [`Members::lost`]).
    fn lost(&self, c: &Pinned, e: etcd_client::Error) -> StoreError {
        self.members.lost(c, e)
    }

    fn key(&self, table: &str, id: &str) -> String {
        format!("{}{table}/{id}", self.prefix)
    }

    fn marker(&self) -> String {
        format!("{}/commit", self.prefix)
    }

    /// Where lease `key`'s value (`v`) or liveness (`live`) is kept: beside the prefix.
    fn lease_key(&self, part: &str, key: &str) -> String {
        format!("{}.leases/{part}/{key}", self.prefix.trim_end_matches('/'))
    }

    /// A counter's keys start with this (`/dragonflow#n/<name>` for `/dragonflow/`, each
    /// shard `/<NN>` after it): beside the prefix, not under it, so the follower's watch,
    /// listings and snapshots never see them.
    fn counter(&self, name: &str) -> String {
        format!("{}#n/{name}", self.prefix.trim_end_matches('/'))
    }

    /// `(table, id)` of a key under the prefix; `None` for the commit marker.
    fn split_key<'k>(&self, key: &'k [u8]) -> Result<Option<(&'k str, &'k str)>> {
        let rest = key
            .strip_prefix(self.prefix.as_bytes())
            .ok_or_else(|| StoreError::Corrupt("key outside the store prefix".into()))?;
        let rest = std::str::from_utf8(rest)
            .map_err(|_| StoreError::Corrupt("stored key is not UTF-8".into()))?;
        if rest.starts_with('/') {
            return Ok(None);
        }
        rest.split_once('/')
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("stored key {rest:?} has no table")))
    }

    fn record(&self, kv: &KeyValue) -> Result<Option<Record>> {
        let Some((table, id)) = self.split_key(kv.key())? else {
            return Ok(None);
        };
        let (topic, value) = decode_value(kv.value())?;
        Ok(Some(Record {
            table: table.into(),
            id: id.into(),
            revision: rev_of(kv.mod_revision()),
            topic: topic_of(topic),
            value: value.to_vec(),
        }))
    }

    /// The change an event stands for; `None` for the commit marker.
    fn change(&self, event: &etcd_client::Event) -> Result<Option<Change>> {
        let Some(kv) = event.kv() else {
            return Ok(None);
        };
        let Some((table, id)) = self.split_key(kv.key())? else {
            return Ok(None);
        };
        let (topic, value) = match event.event_type() {
            EventType::Put => {
                let (topic, value) = decode_value(kv.value())?;
                (topic_of(topic), Some(value.to_vec()))
            }
            // A deletion carries the topic the object had.
            EventType::Delete => match event.prev_kv() {
                Some(prev) => (topic_of(decode_value(prev.value())?.0), None),
                None => (None, None),
            },
        };
        Ok(Some(Change {
            revision: rev_of(kv.mod_revision()),
            table: table.into(),
            id: id.into(),
            topic,
            value,
        }))
    }
}

impl Etcd {
    /// Every record with a key in `[start, end)`, page by page, all at one revision.
    async fn range(&self, start: Vec<u8>, end: Vec<u8>) -> Result<(Revision, Vec<Record>)> {
        self.range_at(start, end, 0).await
    }

    /// Like [`Etcd::range`], at revision `at` (0: the latest).
    async fn range_at(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        mut at: i64,
    ) -> Result<(Revision, Vec<Record>)> {
        let mut from = start;
        let mut out = Vec::new();
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if at > 0 {
                opts = opts.with_revision(at);
            }
            let resp = self.shared.members.get(from.clone(), Some(opts)).await?;
            if at == 0 {
                at = resp.header().map(|h| h.revision()).unwrap_or(0);
            }
            for kv in resp.kvs() {
                let key = String::from_utf8_lossy(kv.key());
                out.extend(crate::keep("", &key, self.shared.record(kv)));
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => return Ok((rev_of(at), out)),
            }
        }
    }

    /// One attempt of a commit: `None` when only a counter moved since it was read.
    async fn try_commit(&self, ops: &[Op], counts: &[Count]) -> Result<Option<Revision>> {
        let (mut compares, mut writes) = self.counted(counts).await?;
        let mut reads = Vec::new();
        for op in ops {
            let (table, id) = op.key();
            let key = self.shared.key(table, id);
            match op.expect() {
                Expect::Any => {}
                Expect::Absent => {
                    compares.push(Compare::create_revision(key.clone(), CompareOp::Equal, 0))
                }
                Expect::Present => {
                    compares.push(Compare::create_revision(key.clone(), CompareOp::Greater, 0))
                }
                Expect::Revision(r) => compares.push(Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    i64::try_from(r).unwrap_or(i64::MAX),
                )),
            }
            match op {
                Op::Put { value, topic, .. } => writes.push(TxnOp::put(
                    key.clone(),
                    encode_value(topic.as_deref().unwrap_or(""), value),
                    None,
                )),
                Op::Delete { .. } => writes.push(TxnOp::delete(key.clone(), None)),
                Op::Check { .. } => {}
            }
            reads.push(TxnOp::get(key, Some(GetOptions::new().with_keys_only())));
        }
        // Last, so a watcher that sees it knows the revision is complete.
        writes.push(TxnOp::put(self.shared.marker(), Vec::new(), None));
        let txn = Txn::new().when(compares).and_then(writes).or_else(reads);
        let mut c = self.shared.client().await?;
        let resp = c.txn(txn).await.map_err(|e| {
            let msg = e.to_string();
            // etcd caps each branch of a txn (--max-txn-ops, 128 by default), so a commit
            // holds at most that many ops less one (the marker).
            if msg.contains("too many operations") {
                StoreError::Invalid(format!("transaction too large for etcd: {msg}"))
            } else {
                self.shared.lost(&c, e)
            }
        })?;
        if !resp.succeeded() {
            return match Self::conflict(ops, &resp.op_responses()) {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        Ok(Some(rev_of(
            resp.header().map(|h| h.revision()).unwrap_or(0),
        )))
    }

    /// The revision of our last commit (from the marker) and etcd's current revision.
    async fn latest(&self) -> Result<(Revision, Revision)> {
        let marker = self.shared.marker().into_bytes();
        let resp = self.shared.members.get(marker, None).await?;
        let ours = resp.kvs().first().map(|kv| rev_of(kv.mod_revision()));
        let now = resp.header().map(|h| rev_of(h.revision())).unwrap_or(0);
        Ok((ours.unwrap_or(0), now.max(ours.unwrap_or(0))))
    }

    /// Finds the op whose expectation failed from the state read by the failed txn;
    /// `None` when every op's held (a counter moved since it was read).
    fn conflict(ops: &[Op], responses: &[TxnOpResponse]) -> Option<StoreError> {
        for (op, resp) in ops.iter().zip(responses) {
            let current = match resp {
                TxnOpResponse::Get(g) => g.kvs().first().map(|kv| rev_of(kv.mod_revision())),
                _ => continue,
            };
            if !crate::expect_holds(op.expect(), current) {
                let (table, id) = op.key();
                return Some(conflict_on(table, id));
            }
        }
        None
    }
}

fn conflict_on(table: &str, id: &str) -> StoreError {
    StoreError::Conflict {
        table: table.into(),
        id: id.into(),
    }
}

impl Etcd {
    /// The leases at `key` (with `prefix`: every one whose key starts with it), read with
    /// their liveness in one transaction.
    async fn leases_at(&self, key: &str, prefix: bool) -> Result<Vec<crate::Lease>> {
        let (v, live) = (
            self.shared.lease_key("v", key),
            self.shared.lease_key("live", key),
        );
        let opts = |keys_only: bool| {
            let o = if prefix {
                GetOptions::new().with_prefix()
            } else {
                GetOptions::new()
            };
            if keys_only { o.with_keys_only() } else { o }
        };
        let txn = Txn::new().and_then(vec![
            TxnOp::get(v.clone(), Some(opts(false))),
            TxnOp::get(live.clone(), Some(opts(true))),
        ]);
        let resp = self.shared.members.read(txn).await?;
        let ops = resp.op_responses();
        let (Some(TxnOpResponse::Get(values)), Some(TxnOpResponse::Get(lives))) =
            (ops.first(), ops.get(1))
        else {
            return Err(StoreError::Corrupt(
                "etcd: lease read answered oddly".into(),
            ));
        };
        let strip = |k: &[u8], root: &str| -> Option<String> {
            let rest = k.strip_prefix(root.strip_suffix(key).unwrap_or(root).as_bytes())?;
            String::from_utf8(rest.to_vec()).ok()
        };
        let live: std::collections::BTreeSet<String> = lives
            .kvs()
            .iter()
            .filter_map(|kv| strip(kv.key(), &live))
            .collect();
        Ok(values
            .kvs()
            .iter()
            .filter_map(|kv| {
                let k = strip(kv.key(), &v)?;
                Some(crate::Lease {
                    live: live.contains(&k),
                    key: k,
                    value: kv.value().to_vec(),
                })
            })
            .collect())
    }
}

#[async_trait]
impl Store for Etcd {
    fn describe(&self) -> String {
        format!(
            "etcd:{}{}",
            self.shared.members.endpoints().join(","),
            self.shared.prefix
        )
    }

    async fn get(&self, table: &str, id: &str) -> Result<Option<Record>> {
        let key = self.shared.key(table, id).into_bytes();
        let resp = self.shared.members.get(key, None).await?;
        match resp.kvs().first() {
            Some(kv) => self
                .shared
                .record(kv)
                .map_err(|e| crate::with_key(e, table, id)),
            None => Ok(None),
        }
    }

    async fn list(&self, table: &str, prefix: &str) -> Result<Vec<Record>> {
        let start = self.shared.key(table, prefix).into_bytes();
        let end = prefix_end(&start);
        Ok(self.range(start, end).await?.1)
    }

    async fn commit_counted(&self, ops: Vec<Op>, counts: Vec<Count>) -> Result<Revision> {
        crate::counters::validate_commit(&ops, &counts)?;
        // Lost races on counters alone are tried again here; a bound keeps a pathological
        // case from spinning forever (the caller then sees an ordinary conflict).
        for _ in 0..1000 {
            if let Some(rev) = self.try_commit(&ops, &counts).await? {
                return Ok(rev);
            }
        }
        let name = counts.first().map(Count::name).unwrap_or_default();
        Err(conflict_on("#n", name))
    }

    async fn counters(&self, prefix: &str) -> Result<Vec<(String, i64)>> {
        let start = self.shared.counter(prefix).into_bytes();
        let base = self.shared.counter("").len();
        let opts = GetOptions::new().with_range(prefix_end(&start));
        let resp = self.shared.members.get(start, Some(opts)).await?;
        // `<name>/<shard>`: the shards of one counter are added up.
        let mut out: std::collections::BTreeMap<String, i64> = Default::default();
        for kv in resp.kvs() {
            let rest = kv.key().get(base..).unwrap_or_default();
            let Some((name, shard)) = rest.len().checked_sub(3).map(|n| rest.split_at(n)) else {
                continue;
            };
            if shard.first() != Some(&b'/') || shard_of(&shard[1..]).is_none() {
                continue;
            }
            let name = String::from_utf8_lossy(name).into_owned();
            let v = number(&name, kv.value())?;
            *out.entry(name).or_default() += v;
        }
        Ok(out.into_iter().filter(|(_, v)| *v != 0).collect())
    }

    async fn revision(&self) -> Result<Revision> {
        Ok(self.latest().await?.1)
    }

    async fn last_commit(&self) -> Result<Revision> {
        Ok(self.latest().await?.0)
    }

    async fn put_lease(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<()> {
        let mut c = self.shared.client().await?;
        let live = match ttl {
            // etcd counts whole seconds (and raises a lease below its minimum to it).
            Some(t) => {
                let secs = i64::try_from(t.as_millis().div_ceil(1000))
                    .unwrap_or(i64::MAX)
                    .max(1);
                let lease = c
                    .lease_grant(secs, None)
                    .await
                    .map_err(|e| self.shared.lost(&c, e))?;
                Some(PutOptions::new().with_lease(lease.id()))
            }
            None => None,
        };
        let txn = Txn::new().and_then(vec![
            TxnOp::put(self.shared.lease_key("v", key), value, None),
            TxnOp::put(self.shared.lease_key("live", key), Vec::new(), live),
        ]);
        c.txn(txn).await.map_err(|e| self.shared.lost(&c, e))?;
        Ok(())
    }

    async fn get_lease(&self, key: &str) -> Result<Option<crate::Lease>> {
        Ok(self.leases_at(key, false).await?.pop())
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<crate::Lease>> {
        self.leases_at(prefix, true).await
    }

    async fn delete_lease(&self, key: &str) -> Result<bool> {
        let txn = Txn::new().and_then(vec![
            TxnOp::delete(self.shared.lease_key("v", key), None),
            TxnOp::delete(self.shared.lease_key("live", key), None),
        ]);
        let resp = {
            let mut c = self.shared.client().await?;
            c.txn(txn).await.map_err(|e| self.shared.lost(&c, e))?
        };
        Ok(resp
            .op_responses()
            .first()
            .is_some_and(|r| matches!(r, TxnOpResponse::Delete(d) if d.deleted() > 0)))
    }

    async fn changes_since(&self, after: Revision, limit: usize) -> Result<Vec<Change>> {
        let latest = self.latest().await?.0;
        if latest <= after || limit == 0 {
            return Ok(Vec::new());
        }
        // The follower usually has it already, or within a moment.
        let mut seen = self.shared.revision.subscribe();
        let caught_up =
            tokio::time::timeout(Duration::from_millis(500), seen.wait_for(|r| *r >= latest))
                .await
                .is_ok_and(|r| r.is_ok());
        if caught_up && let Some(changes) = self.shared.buffered(after, latest, limit) {
            return Ok(changes);
        }
        let opts = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_start_revision(i64::try_from(after + 1).unwrap_or(i64::MAX));
        let c = self.shared.client().await?;
        let mut stream = watch_on(&c, &self.shared.prefix, opts)
            .await
            .map_err(|e| self.shared.lost(&c, e))?;
        let mut out = Vec::new();
        let mut current = Vec::new();
        let mut revisions = 0;
        while let Some(resp) = stream
            .message()
            .await
            .map_err(|e| self.shared.lost(&c, e))?
        {
            if resp.compact_revision() > 0 {
                return Err(StoreError::Compacted {
                    requested: after + 1,
                    oldest: rev_of(resp.compact_revision()),
                });
            }
            if resp.canceled() {
                return Err(io(format!("watch canceled: {}", resp.cancel_reason())));
            }
            for event in resp.events() {
                if let Some(change) = self.shared.change(event)? {
                    current.push(change);
                    continue;
                }
                let Some(kv) = event.kv() else { continue };
                // The marker closes a revision.
                if !current.is_empty() {
                    revisions += 1;
                    out.append(&mut current);
                }
                if rev_of(kv.mod_revision()) >= latest || revisions >= limit {
                    return Ok(out);
                }
            }
        }
        Err(io("watch stream ended"))
    }

    fn subscribe(&self) -> watch::Receiver<Revision> {
        self.shared.revision.subscribe()
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let start = self.shared.prefix.as_bytes().to_vec();
        let end = prefix_end(&start);
        let (revision, records) = self.range(start, end).await?;
        Ok(Snapshot { revision, records })
    }

    /// Each table asked for is a key range of its own, all read at one revision. Topics
    /// are filtered here: etcd keeps no topic index (a transaction cannot read an
    /// object's old topic to move its index entry), so a topic limit saves the wire, not
    /// the range read.
    async fn snapshot_filtered(&self, filter: &crate::Filter) -> Result<Snapshot> {
        let Some(tables) = &filter.tables else {
            let mut snap = self.snapshot().await?;
            snap.records
                .retain(|r| filter.admits(&r.table, r.topic.as_deref()));
            return Ok(snap);
        };
        let (mut at, mut records) = (0, Vec::new());
        if tables.is_empty() {
            at = self.latest().await?.1;
        }
        for table in tables {
            let start = self.shared.key(table, "").into_bytes();
            let end = prefix_end(&start);
            let (rev, got) = self
                .range_at(start, end, i64::try_from(at).unwrap_or(i64::MAX))
                .await?;
            at = rev;
            records.extend(
                got.into_iter()
                    .filter(|r| filter.admits(&r.table, r.topic.as_deref())),
            );
        }
        Ok(Snapshot {
            revision: at,
            records,
        })
    }
}

/// Tools for tests and operations that go around the [`Store`] interface.
impl Etcd {
    /// Compacts etcd's history up to `revision`: watchers behind it get `Compacted`.
    pub async fn compact(&self, revision: Revision) -> Result<()> {
        self.shared
            .client()
            .await?
            .compact(i64::try_from(revision).unwrap_or(i64::MAX), None)
            .await
            .map_err(io)?;
        Ok(())
    }

    /// Writes raw bytes under an object's key, bypassing the encoding (tests of
    /// [`StoreError::Corrupt`]).
    pub async fn put_raw(&self, table: &str, id: &str, bytes: Vec<u8>) -> Result<()> {
        self.shared
            .client()
            .await?
            .put(self.shared.key(table, id), bytes, None)
            .await
            .map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/df/port/"), b"/df/port0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }
}
