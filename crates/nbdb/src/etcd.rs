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

mod members;

use crate::codec::{decode_value, encode_value, topic_of};
use crate::{Change, Count, Expect, Op, Record, Result, Revision, Snapshot, Store, StoreError};
use async_trait::async_trait;
use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions,
};
pub use members::Access;
use members::{Members, Pinned};
use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
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

/// The changes of every revision in `(from, head]` that changed something.
#[derive(Default)]
struct Recent {
    from: Revision,
    head: Revision,
    revisions: VecDeque<(Revision, Vec<Change>)>,
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

    /// Changes after `after` from the follower's buffer, if it holds all of them up to
    /// `latest`.
    fn buffered(&self, after: Revision, latest: Revision, limit: usize) -> Option<Vec<Change>> {
        let recent = self.recent.lock().ok()?;
        if recent.from > after || recent.head < latest {
            return None;
        }
        let start = recent.revisions.partition_point(|(r, _)| *r <= after);
        Some(
            recent
                .revisions
                .iter()
                .skip(start)
                .take(limit)
                .flat_map(|(_, changes)| changes.iter().cloned())
                .collect(),
        )
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

    /// The compares and writes that move `counts` on from their current values. etcd has
    /// no arithmetic in a transaction, so a counter is read, then compared when written (a
    /// moved counter fails the txn, which is tried again). To keep concurrent commits off
    /// one key, a counter is [`SHARDS`] keys and an increment moves one picked at random:
    /// - without a limit (an unlimited quota, a delete) only that shard is compared;
    /// - with one, the room left under the limit is shared out: each other shard may have
    ///   grown by at most its share (compared by value, the values being encoded so that
    ///   byte order is numeric order) when this one commits, so the sum cannot pass the
    ///   limit; near the limit the share is 0 and every shard is compared exactly.
    async fn counted(&self, counts: &[Count]) -> Result<(Vec<Compare>, Vec<TxnOp>)> {
        let (mut compares, mut writes) = (Vec::new(), Vec::new());
        if counts.is_empty() {
            return Ok((compares, writes));
        }
        for count in counts {
            let name = count.name();
            let base = format!("{}/", self.shared.counter(name));
            let opts = GetOptions::new().with_range(prefix_end(base.as_bytes()));
            let resp = self
                .shared
                .members
                .get(base.clone().into_bytes(), Some(opts))
                .await?;
            let mut shards = [None; SHARDS];
            for kv in resp.kvs() {
                if let Some(i) = shard_of(&kv.key()[base.len()..]) {
                    shards[i] = Some((number(name, kv.value())?, kv.mod_revision()));
                }
            }
            let key = |i: usize| format!("{base}{i:02}");
            let unchanged = |i: usize| match shards[i] {
                Some((_, r)) => Compare::mod_revision(key(i), CompareOp::Equal, r),
                None => Compare::create_revision(key(i), CompareOp::Equal, 0),
            };
            match count {
                Count::Add { delta, limit, .. } => {
                    let i = (RandomState::new().hash_one(name) % SHARDS as u64) as usize;
                    let own = shards[i].map_or(0, |s| s.0);
                    compares.push(unchanged(i));
                    writes.push(TxnOp::put(
                        key(i),
                        encode_count(own.saturating_add(*delta)),
                        None,
                    ));
                    if let (Some(limit), true) = (limit, *delta > 0) {
                        let sum: i64 = shards.iter().flatten().map(|s| s.0).sum();
                        count.apply(sum)?;
                        let share = (limit - sum - delta) / (SHARDS as i64 - 1);
                        for j in (0..SHARDS).filter(|j| *j != i) {
                            compares.push(match shards[j] {
                                Some((v, _)) if share > 0 => Compare::value(
                                    key(j),
                                    CompareOp::Less,
                                    encode_count(v.saturating_add(share + 1)),
                                ),
                                _ => unchanged(j),
                            });
                        }
                    }
                }
                Count::Set { value, .. } => {
                    writes.push(TxnOp::put(key(0), encode_count(*value), None));
                    for i in (1..SHARDS).filter(|i| shards[*i].is_some()) {
                        writes.push(TxnOp::delete(key(i), None));
                    }
                }
            }
        }
        Ok((compares, writes))
    }
}

/// How many keys a counter is spread over (see [`Etcd::counted`]).
const SHARDS: usize = 16;

/// A counter shard's stored form: the value with its sign bit flipped, as 20 decimal
/// digits, so that comparing the bytes compares the numbers.
fn encode_count(v: i64) -> String {
    format!("{:020}", (v ^ i64::MIN) as u64)
}

/// A counter's stored value.
fn number(name: &str, bytes: &[u8]) -> Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|v| v.len() == 20)
        .and_then(|v| v.parse::<u64>().ok())
        .map(|v| (v as i64) ^ i64::MIN)
        .ok_or_else(|| StoreError::Corrupt(format!("counter {name} is not a number")))
}

/// The shard a counter key's last part names (`00` to `15`).
fn shard_of(rest: &[u8]) -> Option<usize> {
    let i: usize = std::str::from_utf8(rest).ok()?.parse().ok()?;
    (rest.len() == 2 && i < SHARDS).then_some(i)
}

fn conflict_on(table: &str, id: &str) -> StoreError {
    StoreError::Conflict {
        table: table.into(),
        id: id.into(),
    }
}

/// Follows the prefix with one watch, buffering the changes of recent revisions and
/// raising the revision channel as each revision is seen whole; after any failure waits a
/// little and starts over from the current state (which also covers commits made while
/// the server was away).
async fn follow(shared: Arc<Shared>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let started = tokio::time::Instant::now();
        if let Err(e) = follow_once(&shared).await {
            tracing::debug!(error = %e, "etcd change follower restarting");
        }
        // Back off only while reconnecting keeps failing.
        if started.elapsed() > Duration::from_secs(5) {
            delay = Duration::from_millis(100);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

async fn follow_once(shared: &Shared) -> Result<()> {
    let mut c = shared.client().await?;
    let resp = c
        .get(shared.marker(), None)
        .await
        .map_err(|e| shared.lost(&c, e))?;
    let ours = resp
        .kvs()
        .first()
        .map(|kv| rev_of(kv.mod_revision()))
        .unwrap_or(0);
    let now = resp.header().map(|h| h.revision()).unwrap_or(0);
    // Revisions in (ours, now] are not ours: the buffer is complete from `ours` on.
    if let Ok(mut recent) = shared.recent.lock() {
        *recent = Recent {
            from: ours,
            head: ours,
            revisions: VecDeque::new(),
        };
    }
    crate::bump(&shared.revision, ours);
    let opts = WatchOptions::new()
        .with_prefix()
        .with_prev_key()
        .with_start_revision(now + 1);
    let mut stream = c
        .watch(shared.prefix.clone(), Some(opts))
        .await
        .map_err(|e| shared.lost(&c, e))?;
    let mut current = Vec::new();
    while let Some(resp) = stream.message().await.map_err(|e| shared.lost(&c, e))? {
        if resp.canceled() || resp.compact_revision() > 0 {
            return Err(io(format!("watch canceled: {}", resp.cancel_reason())));
        }
        for event in resp.events() {
            if let Some(change) = shared.change(event)? {
                current.push(change);
                continue;
            }
            let Some(kv) = event.kv() else { continue };
            // The marker closes a revision.
            let rev = rev_of(kv.mod_revision());
            if let Ok(mut recent) = shared.recent.lock() {
                if !current.is_empty() {
                    recent
                        .revisions
                        .push_back((rev, std::mem::take(&mut current)));
                }
                while recent.revisions.len() > shared.buffer {
                    if let Some((old, _)) = recent.revisions.pop_front() {
                        recent.from = old;
                    }
                }
                recent.head = rev;
            }
            crate::bump(&shared.revision, rev);
        }
    }
    Ok(())
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
        let mut c = self.shared.client().await?;
        let mut stream = c
            .watch(self.shared.prefix.clone(), Some(opts))
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
    use super::{encode_count, number, prefix_end, shard_of};

    #[test]
    fn counter_values_sort_as_bytes_as_they_do_as_numbers() {
        let values = [i64::MIN, -5_000, -1, 0, 1, 9, 10, 499, 500, i64::MAX];
        for w in values.windows(2) {
            assert!(encode_count(w[0]) < encode_count(w[1]), "{w:?}");
        }
        for v in values {
            assert_eq!(number("c", encode_count(v).as_bytes()).unwrap(), v);
        }
        assert!(number("c", b"12").is_err());
        assert_eq!(shard_of(b"07"), Some(7));
        assert_eq!(shard_of(b"16"), None);
        assert_eq!(shard_of(b"7"), None);
    }

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/df/port/"), b"/df/port0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }
}
