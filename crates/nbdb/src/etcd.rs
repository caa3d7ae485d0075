//! The etcd v3 backend: objects as keys under a prefix, etcd's own revisions, its watch as
//! the change log.
//!
//! Layout: `<prefix><table>/<id>` holds `codec::encode_value(topic, value)`, and every
//! commit also writes `<prefix>/commit` as its last operation. That marker makes each of
//! our commits take exactly one etcd revision (a commit of checks only, or of deletions of
//! absent keys, would otherwise take none), tells the latest revision of *this* store
//! apart from writes to other prefixes, and ends each revision's events in a watch, so a
//! reader knows when it has seen a revision whole.

use crate::codec::{decode_value, encode_value, topic_of};
use crate::{Change, Expect, Op, Record, Result, Revision, Snapshot, Store, StoreError};
use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KeyValue, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OnceCell, watch};

/// Where objects live unless the URL names another prefix.
pub const DEFAULT_PREFIX: &str = "/dragonflow/";
/// Keys per range request: keeps every response well under gRPC's 4 MiB message limit.
const PAGE: i64 = 500;

/// A store on an etcd v3 cluster.
pub struct Etcd {
    endpoints: Vec<String>,
    prefix: String,
    client: Arc<OnceCell<Client>>,
    revision: watch::Sender<Revision>,
    follower: tokio::task::AbortHandle,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Etcd({}{})", self.endpoints.join(","), self.prefix)
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

async fn connect(endpoints: &[String]) -> Result<Client> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        // Detects a dead server under a long-lived watch stream.
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
        .with_keep_alive_while_idle(true);
    Client::connect(endpoints, Some(options)).await.map_err(io)
}

impl Etcd {
    /// A store on the etcd cluster at `endpoints` (`http://host:port`), keys under
    /// `prefix`. Connects lazily; must be called inside a tokio runtime.
    pub fn new(endpoints: Vec<String>, prefix: &str) -> Result<Etcd> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Invalid("the etcd store needs a tokio runtime".into()))?;
        let prefix = if prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        let client = Arc::new(OnceCell::new());
        let (tx, _) = watch::channel(0);
        let follower = handle
            .spawn(follow(
                endpoints.clone(),
                prefix.clone(),
                client.clone(),
                tx.clone(),
            ))
            .abort_handle();
        Ok(Etcd {
            endpoints,
            prefix,
            client,
            revision: tx,
            follower,
        })
    }

    /// Like [`Etcd::new`], then checks the cluster answers.
    pub async fn connect(endpoints: Vec<String>, prefix: &str) -> Result<Etcd> {
        let store = Etcd::new(endpoints, prefix)?;
        store.revision().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<Client> {
        client(&self.endpoints, &self.client).await
    }

    fn key(&self, table: &str, id: &str) -> String {
        format!("{}{table}/{id}", self.prefix)
    }

    fn marker(&self) -> String {
        format!("{}/commit", self.prefix)
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

    /// Every record with a key in `[start, end)`, page by page, all at one revision.
    async fn range(&self, start: Vec<u8>, end: Vec<u8>) -> Result<(Revision, Vec<Record>)> {
        let mut c = self.client().await?;
        let mut at = 0;
        let mut from = start;
        let mut out = Vec::new();
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if at > 0 {
                opts = opts.with_revision(at);
            }
            let resp = c.get(from.clone(), Some(opts)).await.map_err(io)?;
            if at == 0 {
                at = resp.header().map(|h| h.revision()).unwrap_or(0);
            }
            for kv in resp.kvs() {
                if let Some(r) = self.record(kv)? {
                    out.push(r);
                }
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

    /// The revision of our last commit (from the marker) and etcd's current revision.
    async fn latest(&self) -> Result<(Revision, Revision)> {
        let resp = self
            .client()
            .await?
            .get(self.marker(), None)
            .await
            .map_err(io)?;
        let ours = resp.kvs().first().map(|kv| rev_of(kv.mod_revision()));
        let now = resp.header().map(|h| rev_of(h.revision())).unwrap_or(0);
        Ok((ours.unwrap_or(0), now.max(ours.unwrap_or(0))))
    }

    /// Finds the op whose expectation failed from the state read by the failed txn.
    fn conflict(ops: &[Op], responses: &[TxnOpResponse]) -> StoreError {
        for (op, resp) in ops.iter().zip(responses) {
            let current = match resp {
                TxnOpResponse::Get(g) => g.kvs().first().map(|kv| rev_of(kv.mod_revision())),
                _ => continue,
            };
            if !crate::expect_holds(op.expect(), current) {
                let (table, id) = op.key();
                return conflict_on(table, id);
            }
        }
        // The state changed again between the compare and the read: still a conflict.
        let (table, id) = ops.first().map(Op::key).unwrap_or(("", ""));
        conflict_on(table, id)
    }
}

fn conflict_on(table: &str, id: &str) -> StoreError {
    StoreError::Conflict {
        table: table.into(),
        id: id.into(),
    }
}

async fn client(endpoints: &[String], cell: &OnceCell<Client>) -> Result<Client> {
    // The client reconnects by itself once built; only building it can fail here.
    cell.get_or_try_init(|| connect(endpoints)).await.cloned()
}

/// Keeps `tx` at the latest revision of the store: reads it, then follows the prefix with
/// a watch; after any failure waits a little and starts over (this also covers commits
/// made while the server was away).
async fn follow(
    endpoints: Vec<String>,
    prefix: String,
    cell: Arc<OnceCell<Client>>,
    tx: watch::Sender<Revision>,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        match follow_once(&endpoints, &prefix, &cell, &tx).await {
            Ok(()) => delay = Duration::from_millis(100),
            Err(e) => {
                tracing::debug!(error = %e, "etcd change follower restarting");
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
        tokio::time::sleep(delay).await;
    }
}

async fn follow_once(
    endpoints: &[String],
    prefix: &str,
    cell: &OnceCell<Client>,
    tx: &watch::Sender<Revision>,
) -> Result<()> {
    let mut c = client(endpoints, cell).await?;
    let marker = format!("{prefix}/commit");
    let resp = c.get(marker, None).await.map_err(io)?;
    let latest = resp
        .kvs()
        .first()
        .map(|kv| rev_of(kv.mod_revision()))
        .unwrap_or(0);
    crate::bump(tx, latest);
    let start = resp.header().map(|h| h.revision()).unwrap_or(0) + 1;
    let opts = WatchOptions::new()
        .with_start_revision(start)
        .with_filters([etcd_client::WatchFilterType::NoDelete]);
    let mut stream = c
        .watch(format!("{prefix}/commit"), Some(opts))
        .await
        .map_err(io)?;
    while let Some(resp) = stream.message().await.map_err(io)? {
        if resp.canceled() {
            return Err(io(format!("watch canceled: {}", resp.cancel_reason())));
        }
        if let Some(rev) = resp
            .events()
            .iter()
            .filter_map(|e| e.kv())
            .map(|kv| kv.mod_revision())
            .max()
        {
            crate::bump(tx, rev_of(rev));
        }
    }
    Ok(())
}

#[async_trait]
impl Store for Etcd {
    fn describe(&self) -> String {
        format!("etcd:{}{}", self.endpoints.join(","), self.prefix)
    }

    async fn get(&self, table: &str, id: &str) -> Result<Option<Record>> {
        let resp = self
            .client()
            .await?
            .get(self.key(table, id), None)
            .await
            .map_err(io)?;
        match resp.kvs().first() {
            Some(kv) => self.record(kv),
            None => Ok(None),
        }
    }

    async fn list(&self, table: &str, prefix: &str) -> Result<Vec<Record>> {
        let start = self.key(table, prefix).into_bytes();
        let end = prefix_end(&start);
        Ok(self.range(start, end).await?.1)
    }

    async fn commit(&self, ops: Vec<Op>) -> Result<Revision> {
        crate::validate(&ops)?;
        let mut compares = Vec::new();
        let mut writes = Vec::new();
        let mut reads = Vec::new();
        for op in &ops {
            let (table, id) = op.key();
            let key = self.key(table, id);
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
        writes.push(TxnOp::put(self.marker(), Vec::new(), None));
        let txn = Txn::new().when(compares).and_then(writes).or_else(reads);
        let resp = self.client().await?.txn(txn).await.map_err(|e| {
            let msg = e.to_string();
            // etcd caps the ops of one txn (--max-txn-ops, 128 by default); each of ours
            // costs a compare, a write and a read.
            if msg.contains("too many operations") {
                StoreError::Invalid(format!("transaction too large for etcd: {msg}"))
            } else {
                io(e)
            }
        })?;
        if !resp.succeeded() {
            return Err(Self::conflict(&ops, &resp.op_responses()));
        }
        let rev = rev_of(resp.header().map(|h| h.revision()).unwrap_or(0));
        crate::bump(&self.revision, rev);
        Ok(rev)
    }

    async fn revision(&self) -> Result<Revision> {
        Ok(self.latest().await?.1)
    }

    async fn changes_since(&self, after: Revision, limit: usize) -> Result<Vec<Change>> {
        let latest = self.latest().await?.0;
        if latest <= after || limit == 0 {
            return Ok(Vec::new());
        }
        let opts = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_start_revision(i64::try_from(after + 1).unwrap_or(i64::MAX));
        let mut stream = self
            .client()
            .await?
            .watch(self.prefix.clone(), Some(opts))
            .await
            .map_err(io)?;
        let mut out = Vec::new();
        let mut current = Vec::new();
        let mut revisions = 0;
        while let Some(resp) = stream.message().await.map_err(io)? {
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
                let Some(kv) = event.kv() else { continue };
                let revision = rev_of(kv.mod_revision());
                let Some((table, id)) = self.split_key(kv.key())? else {
                    // The marker closes a revision.
                    if !current.is_empty() {
                        revisions += 1;
                        out.append(&mut current);
                    }
                    if revision >= latest || revisions >= limit {
                        return Ok(out);
                    }
                    continue;
                };
                let change = match event.event_type() {
                    EventType::Put => {
                        let (topic, value) = decode_value(kv.value())?;
                        Change {
                            revision,
                            table: table.into(),
                            id: id.into(),
                            topic: topic_of(topic),
                            value: Some(value.to_vec()),
                        }
                    }
                    EventType::Delete => {
                        let topic = match event.prev_kv() {
                            Some(prev) => topic_of(decode_value(prev.value())?.0),
                            None => None,
                        };
                        Change {
                            revision,
                            table: table.into(),
                            id: id.into(),
                            topic,
                            value: None,
                        }
                    }
                };
                current.push(change);
            }
        }
        Err(io("watch stream ended"))
    }

    fn subscribe(&self) -> watch::Receiver<Revision> {
        self.revision.subscribe()
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let start = self.prefix.as_bytes().to_vec();
        let end = prefix_end(&start);
        let (revision, records) = self.range(start, end).await?;
        Ok(Snapshot { revision, records })
    }
}

/// Tools for tests and operations that go around the [`Store`] interface.
impl Etcd {
    /// Compacts etcd's history up to `revision`: watchers behind it get `Compacted`.
    pub async fn compact(&self, revision: Revision) -> Result<()> {
        self.client()
            .await?
            .compact(i64::try_from(revision).unwrap_or(i64::MAX), None)
            .await
            .map_err(io)?;
        Ok(())
    }

    /// Writes raw bytes under an object's key, bypassing the encoding (tests of
    /// [`StoreError::Corrupt`]).
    pub async fn put_raw(&self, table: &str, id: &str, bytes: Vec<u8>) -> Result<()> {
        self.client()
            .await?
            .put(self.key(table, id), bytes, None)
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
