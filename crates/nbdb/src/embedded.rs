//! The embedded backend: a redb file inside the server process, with group commit.
//!
//! One writer thread owns all writes. It drains every transaction queued while the previous
//! batch was being made durable and applies them in one redb write transaction (each with
//! its own preconditions and its own revision), so a burst of concurrent API calls costs one
//! fsync instead of one each. Reads go straight to redb's MVCC snapshots from any thread.

mod leases;

use crate::codec::{LogEntry, decode_changes, decode_object, encode_changes, encode_object};
use crate::{Change, Count, Filter, Op, Record, Result, Revision, Snapshot, Store, StoreError};
use async_trait::async_trait;
use leases::LEASES;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use tokio::sync::{oneshot, watch};

/// `table/id` → encoded object (revision + value).
const OBJECTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("objects");
/// revision → encoded changes of that revision.
const CHANGES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("changes");
/// `revision`, `oldest_change`, `topic_index` (1 once the index is complete) → u64.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// The topic index, written in the same transaction as the objects: `topic NUL table/id`
/// → () for each object with a topic, and `NUL table` → () for each table that has (or
/// had) topic-less objects, which a topic-limited snapshot reads whole. Topic-less objects
/// are not indexed one by one: most are claims, three to a port create, and an index
/// entry each cost the create path a B-tree insert each.
const TOPICS: TableDefinition<'_, &str, ()> = TableDefinition::new("topics");
/// Counters ([`Count`]) → value; a counter at 0 has no entry.
const COUNTERS: TableDefinition<'_, &str, i64> = TableDefinition::new("counters");

/// How many revisions of the change log are kept for watchers that resume.
pub const DEFAULT_RETENTION: u64 = 100_000;

/// How far past its retention the log may grow before it is trimmed (back to the
/// retention): trimming is a range delete, done in steps rather than on every commit. A
/// tenth of the retention, between 1 and 1000, so a small retention (in tests, or a
/// store short of disk) is not dwarfed by the step: the log holds between `retention`
/// and `retention + trim_step(retention)` revisions.
pub fn trim_step(retention: u64) -> u64 {
    (retention / 10).clamp(1, 1000)
}
/// The most transactions folded into one durable commit.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Revision>>;

/// What the writer thread is asked to do: a commit, or a lease write (which shares the
/// batch's durable commit but takes no revision).
enum Job {
    Commit(Vec<Op>, Vec<Count>, Reply),
    /// `Some((deadline, value))` puts, `None` deletes; answers whether one was there.
    Lease(
        String,
        Option<(u64, Vec<u8>)>,
        oneshot::Sender<Result<bool>>,
    ),
}

/// The embedded, file-backed store.
pub struct Embedded {
    path: PathBuf,
    db: Arc<Database>,
    writer: mpsc::Sender<Job>,
    revision: watch::Receiver<Revision>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Embedded({})", self.path.display())
    }
}

fn io<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn object_key(table: &str, id: &str) -> String {
    format!("{table}/{id}")
}

/// The topic index entry of the object at `key` (`table/id`).
fn topic_key(topic: &str, key: &str) -> String {
    format!("{topic}\0{key}")
}

/// The version of the topic index's layout; an index of another is built anew.
const TOPIC_INDEX: u64 = 2;

/// Indexes `key`'s object under `topic` ("": marks its table as holding topic-less ones).
fn index(topics: &mut redb::Table<'_, &str, ()>, topic: &str, key: &str) -> Result<()> {
    if !topic.is_empty() {
        topics
            .insert(topic_key(topic, key).as_str(), ())
            .map_err(io)?;
        return Ok(());
    }
    let table = key.split_once('/').map_or(key, |(t, _)| t);
    let mark = topic_key("", table);
    // Looked up first: a put of an unchanged mark would still dirty a page.
    if topics.get(mark.as_str()).map_err(io)?.is_none() {
        topics.insert(mark.as_str(), ()).map_err(io)?;
    }
    Ok(())
}

/// Indexes every object once: a store file written before this index layout.
fn build_topic_index(txn: &redb::WriteTransaction) -> Result<()> {
    let mut meta = txn.open_table(META).map_err(io)?;
    if meta.get("topic_index").map_err(io)?.map(|v| v.value()) == Some(TOPIC_INDEX) {
        return Ok(());
    }
    let objects = txn.open_table(OBJECTS).map_err(io)?;
    let mut topics = txn.open_table(TOPICS).map_err(io)?;
    topics.retain(|_, _| false).map_err(io)?;
    for entry in objects.iter().map_err(io)? {
        let (k, v) = entry.map_err(io)?;
        // An undecodable object is reported when it is read; it is left out of the index.
        if let Ok(o) = decode_object(v.value()) {
            index(&mut topics, o.topic, k.value())?;
        }
    }
    meta.insert("topic_index", TOPIC_INDEX).map_err(io)?;
    Ok(())
}

impl Embedded {
    /// Opens (or creates) the store file at `path`, creating parent directories.
    pub fn open(path: impl AsRef<Path>) -> Result<Embedded> {
        Self::open_with_retention(path, DEFAULT_RETENTION)
    }

    /// Opens the store keeping the last `retention` revisions of the change log (at least
    /// 1; see [`trim_step`] for how many more it holds between trims).
    pub fn open_with_retention(path: impl AsRef<Path>, retention: u64) -> Result<Embedded> {
        if retention == 0 {
            return Err(StoreError::Invalid(
                "the change log's retention must be at least 1 revision".into(),
            ));
        }
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| io(format!("cannot create {}: {e}", dir.display())))?;
        }
        let db = Database::create(&path).map_err(|e| io(format!("{}: {e}", path.display())))?;
        // Make sure every table exists so readers never see "table missing".
        let txn = db.begin_write().map_err(io)?;
        let revision = {
            txn.open_table(OBJECTS).map_err(io)?;
            txn.open_table(CHANGES).map_err(io)?;
            txn.open_table(TOPICS).map_err(io)?;
            txn.open_table(LEASES).map_err(io)?;
            txn.open_table(COUNTERS).map_err(io)?;
            build_topic_index(&txn)?;
            let meta = txn.open_table(META).map_err(io)?;
            meta.get("revision")
                .map_err(io)?
                .map(|v| v.value())
                .unwrap_or(0)
        };
        txn.commit().map_err(io)?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel();
        let (rev_tx, rev_rx) = watch::channel(revision);
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("nbdb-writer".into())
            .spawn(move || writer_loop(&writer_db, rx, rev_tx, revision, retention))
            .map_err(io)?;
        tracing::info!(path = %path.display(), revision, "embedded store open");
        Ok(Embedded {
            path,
            db,
            writer: tx,
            revision: rev_rx,
        })
    }
}

fn writer_loop(
    db: &Database,
    rx: mpsc::Receiver<Job>,
    rev_tx: watch::Sender<Revision>,
    mut revision: Revision,
    retention: u64,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(req) => batch.push(req),
                Err(_) => break,
            }
        }
        let (results, new_revision) = match apply_batch(db, &batch, revision, retention) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "store commit failed");
                let msg = e.to_string();
                for job in batch {
                    let e = StoreError::Unavailable(msg.clone());
                    match job {
                        Job::Commit(_, _, reply) => drop(reply.send(Err(e))),
                        Job::Lease(_, _, reply) => drop(reply.send(Err(e))),
                    }
                }
                continue;
            }
        };
        revision = new_revision;
        rev_tx.send_replace(revision);
        for (job, result) in batch.into_iter().zip(results) {
            match (job, result) {
                (Job::Commit(_, _, reply), Done::Commit(r)) => drop(reply.send(r)),
                (Job::Lease(_, _, reply), Done::Lease(r)) => drop(reply.send(r)),
                _ => {}
            }
        }
    }
}

/// What a job of a batch came to.
enum Done {
    Commit(Result<Revision>),
    Lease(Result<bool>),
}

type BatchResult = (Vec<Done>, Revision);

fn apply_batch(
    db: &Database,
    batch: &[Job],
    mut revision: Revision,
    retention: u64,
) -> Result<BatchResult> {
    let start = std::time::Instant::now();
    let txn = db.begin_write().map_err(io)?;
    let mut results = Vec::with_capacity(batch.len());
    {
        let mut objects = txn.open_table(OBJECTS).map_err(io)?;
        let mut changes = txn.open_table(CHANGES).map_err(io)?;
        let mut topics = txn.open_table(TOPICS).map_err(io)?;
        let mut leases = txn.open_table(LEASES).map_err(io)?;
        let mut counters = txn.open_table(COUNTERS).map_err(io)?;
        for job in batch {
            let (ops, counts) = match job {
                Job::Commit(ops, counts, _) => (ops, counts),
                Job::Lease(key, value, _) => {
                    let had = match value {
                        Some((deadline, v)) => {
                            let mut bytes = deadline.to_be_bytes().to_vec();
                            bytes.extend_from_slice(v);
                            leases.insert(key.as_str(), bytes.as_slice()).map_err(io)?
                        }
                        None => leases.remove(key.as_str()).map_err(io)?,
                    };
                    results.push(Done::Lease(Ok(had.is_some())));
                    continue;
                }
            };
            let mut tables = Tables {
                objects: &mut objects,
                changes: &mut changes,
                topics: &mut topics,
                counters: &mut counters,
            };
            results.push(Done::Commit(
                apply_one(&mut tables, ops, counts, revision + 1).map(|()| {
                    revision += 1;
                    revision
                }),
            ));
        }
        let mut meta = txn.open_table(META).map_err(io)?;
        meta.insert("revision", revision).map_err(io)?;
        let oldest = meta
            .get("oldest_change")
            .map_err(io)?
            .map(|v| v.value())
            .unwrap_or(1);
        // Trim the change log in steps, not on every commit.
        if revision > oldest + retention + trim_step(retention) {
            let keep_from = revision - retention;
            changes.retain_in(..keep_from, |_, _| false).map_err(io)?;
            meta.insert("oldest_change", keep_from).map_err(io)?;
        }
    }
    let applied = start.elapsed();
    txn.commit().map_err(io)?;
    // What a burst's latency is made of: the batch's size, applying it, making it durable.
    tracing::debug!(
        jobs = batch.len(),
        apply_us = applied.as_micros() as u64,
        commit_us = (start.elapsed() - applied).as_micros() as u64,
        "store batch committed"
    );
    Ok((results, revision))
}

/// The tables a commit writes.
struct Tables<'a, 't> {
    objects: &'a mut redb::Table<'t, &'static str, &'static [u8]>,
    changes: &'a mut redb::Table<'t, u64, &'static [u8]>,
    topics: &'a mut redb::Table<'t, &'static str, ()>,
    counters: &'a mut redb::Table<'t, &'static str, i64>,
}

fn apply_one(
    t: &mut Tables<'_, '_>,
    ops: &[Op],
    counts: &[Count],
    revision: Revision,
) -> Result<()> {
    let Tables {
        objects,
        changes,
        topics,
        counters,
    } = t;
    // The topic each existing object has (`None`: absent), for the deletion events and
    // the topic index.
    let mut old_topics: Vec<Option<String>> = Vec::with_capacity(ops.len());
    for op in ops {
        // `Embedded::commit` validated the ops (no key twice) before queueing them.
        let (table, id) = op.key();
        let key = object_key(table, id);
        let current = match objects.get(key.as_str()).map_err(io)? {
            Some(v) => {
                let o = decode_object(v.value())?;
                Some((o.revision, o.topic.to_string()))
            }
            None => None,
        };
        if !crate::expect_holds(op.expect(), current.as_ref().map(|c| c.0)) {
            return Err(StoreError::Conflict {
                table: table.into(),
                id: id.into(),
            });
        }
        old_topics.push(current.map(|c| c.1));
    }
    // Counters are checked with the expectations, before anything is written: the one
    // writer thread makes the read and the write a single step.
    let mut counted = Vec::with_capacity(counts.len());
    for c in counts {
        let current = counters.get(c.name()).map_err(io)?.map_or(0, |v| v.value());
        counted.push((c.name(), c.apply(current)?));
    }
    for (name, value) in counted {
        if value == 0 {
            counters.remove(name).map_err(io)?;
        } else {
            counters.insert(name, value).map_err(io)?;
        }
    }
    let mut log = Vec::new();
    for (op, old_topic) in ops.iter().zip(&old_topics) {
        match op {
            Op::Put {
                table,
                id,
                value,
                topic,
                ..
            } => {
                let key = object_key(table, id);
                let topic = topic.as_deref().unwrap_or("");
                objects
                    .insert(
                        key.as_str(),
                        encode_object(revision, topic, value).as_slice(),
                    )
                    .map_err(io)?;
                if old_topic.as_deref() != Some(topic) {
                    if let Some(old) = old_topic.as_deref().filter(|t| !t.is_empty()) {
                        topics.remove(topic_key(old, &key).as_str()).map_err(io)?;
                    }
                    index(topics, topic, &key)?;
                }
                log.push(LogEntry {
                    table,
                    id,
                    topic,
                    value: Some(value),
                });
            }
            Op::Delete { table, id, .. } => {
                let key = object_key(table, id);
                if let Some(old) = old_topic
                    && objects.remove(key.as_str()).map_err(io)?.is_some()
                {
                    if !old.is_empty() {
                        topics.remove(topic_key(old, &key).as_str()).map_err(io)?;
                    }
                    log.push(LogEntry {
                        table,
                        id,
                        topic: old,
                        value: None,
                    });
                }
            }
            Op::Check { .. } => {}
        }
    }
    changes
        .insert(revision, encode_changes(&log).as_slice())
        .map_err(io)?;
    Ok(())
}

fn record(table: &str, id: String, bytes: &[u8]) -> Result<Record> {
    let o = decode_object(bytes)?;
    Ok(Record {
        table: table.into(),
        id,
        revision: o.revision,
        topic: (!o.topic.is_empty()).then(|| o.topic.to_string()),
        value: o.value.to_vec(),
    })
}

impl Embedded {
    async fn lease_job(&self, key: &str, value: Option<(u64, Vec<u8>)>) -> Result<bool> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Lease(key.to_string(), value, tx))
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?
    }
}

#[async_trait]
impl Store for Embedded {
    fn describe(&self) -> String {
        format!("embedded:{}", self.path.display())
    }

    // Reads are served from redb's page cache and are short; they run on the caller's task.
    async fn get(&self, table: &str, id: &str) -> Result<Option<Record>> {
        let txn = self.db.begin_read().map_err(io)?;
        let objects = txn.open_table(OBJECTS).map_err(io)?;
        let key = object_key(table, id);
        let Some(v) = objects.get(key.as_str()).map_err(io)? else {
            return Ok(None);
        };
        record(table, id.into(), v.value())
            .map(Some)
            .map_err(|e| crate::with_key(e, table, id))
    }

    async fn list(&self, table: &str, prefix: &str) -> Result<Vec<Record>> {
        let txn = self.db.begin_read().map_err(io)?;
        let objects = txn.open_table(OBJECTS).map_err(io)?;
        let start = object_key(table, prefix);
        let mut out = Vec::new();
        for entry in objects.range(start.as_str()..).map_err(io)? {
            let (k, v) = entry.map_err(io)?;
            let Some(id) = k.value().strip_prefix(start.as_str()) else {
                break;
            };
            let id = format!("{prefix}{id}");
            let r = record(table, id.clone(), v.value()).map(Some);
            out.extend(crate::keep(table, &id, r));
        }
        Ok(out)
    }

    async fn commit_counted(&self, ops: Vec<Op>, counts: Vec<Count>) -> Result<Revision> {
        crate::counters::validate_commit(&ops, &counts)?;
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Commit(ops, counts, tx))
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?
    }

    async fn put_lease(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<std::time::Duration>,
    ) -> Result<()> {
        self.lease_job(key, Some((leases::deadline(ttl), value)))
            .await
            .map(drop)
    }

    async fn get_lease(&self, key: &str) -> Result<Option<crate::Lease>> {
        leases::get(&self.db, key)
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<crate::Lease>> {
        leases::list(&self.db, prefix)
    }

    async fn delete_lease(&self, key: &str) -> Result<bool> {
        self.lease_job(key, None).await
    }

    async fn counters(&self, prefix: &str) -> Result<Vec<(String, i64)>> {
        let txn = self.db.begin_read().map_err(io)?;
        let counters = txn.open_table(COUNTERS).map_err(io)?;
        let mut out = Vec::new();
        for entry in counters.range(prefix..).map_err(io)? {
            let (k, v) = entry.map_err(io)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_string(), v.value()));
        }
        Ok(out)
    }

    async fn revision(&self) -> Result<Revision> {
        Ok(*self.revision.borrow())
    }

    async fn changes_since(&self, after: Revision, limit: usize) -> Result<Vec<Change>> {
        let txn = self.db.begin_read().map_err(io)?;
        let meta = txn.open_table(META).map_err(io)?;
        let oldest = meta
            .get("oldest_change")
            .map_err(io)?
            .map(|v| v.value())
            .unwrap_or(1);
        if after + 1 < oldest {
            return Err(StoreError::Compacted {
                requested: after + 1,
                oldest,
            });
        }
        let changes = txn.open_table(CHANGES).map_err(io)?;
        let mut out = Vec::new();
        let mut revisions = 0;
        for entry in changes.range(after + 1..).map_err(io)? {
            if revisions >= limit {
                break;
            }
            let (k, v) = entry.map_err(io)?;
            let batch = decode_changes(k.value(), v.value())?;
            if !batch.is_empty() {
                revisions += 1;
                out.extend(batch);
            }
        }
        Ok(out)
    }

    fn subscribe(&self) -> watch::Receiver<Revision> {
        self.revision.clone()
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let txn = self.db.begin_read().map_err(io)?;
        let meta = txn.open_table(META).map_err(io)?;
        let revision = meta
            .get("revision")
            .map_err(io)?
            .map(|v| v.value())
            .unwrap_or(0);
        let objects = txn.open_table(OBJECTS).map_err(io)?;
        let mut records = Vec::new();
        for entry in objects.iter().map_err(io)? {
            let (k, v) = entry.map_err(io)?;
            records.extend(keyed_record(k.value(), v.value())?);
        }
        Ok(Snapshot { revision, records })
    }

    /// Tables are key ranges of the objects; topics are read from the topic index, then
    /// each of their objects by key: the cost follows what is asked, not the store's size.
    async fn snapshot_filtered(&self, filter: &Filter) -> Result<Snapshot> {
        let txn = self.db.begin_read().map_err(io)?;
        let meta = txn.open_table(META).map_err(io)?;
        let revision = meta
            .get("revision")
            .map_err(io)?
            .map(|v| v.value())
            .unwrap_or(0);
        let objects = txn.open_table(OBJECTS).map_err(io)?;
        let table_prefixes: Vec<String> = match &filter.tables {
            Some(ts) => ts.iter().map(|t| format!("{t}/")).collect(),
            None => vec![String::new()],
        };
        let mut records = Vec::new();
        let Some(wanted) = &filter.topics else {
            for prefix in &table_prefixes {
                for entry in objects.range(prefix.as_str()..).map_err(io)? {
                    let (k, v) = entry.map_err(io)?;
                    if !k.value().starts_with(prefix.as_str()) {
                        break;
                    }
                    records.extend(keyed_record(k.value(), v.value())?);
                }
            }
            return Ok(Snapshot { revision, records });
        };
        let index = txn.open_table(TOPICS).map_err(io)?;
        // Tables holding topic-less objects (which every topic limit admits) are read
        // whole; the others through the index, topic by topic.
        let mut whole = std::collections::BTreeSet::new();
        for entry in index.range("\0"..).map_err(io)? {
            let (k, _) = entry.map_err(io)?;
            let Some(table) = k.value().strip_prefix('\0') else {
                break;
            };
            if filter.tables.as_ref().is_none_or(|ts| ts.contains(table)) {
                whole.insert(format!("{table}/"));
            }
        }
        for prefix in &whole {
            for entry in objects.range(prefix.as_str()..).map_err(io)? {
                let (k, v) = entry.map_err(io)?;
                if !k.value().starts_with(prefix.as_str()) {
                    break;
                }
                let r = keyed_record(k.value(), v.value())?;
                records.extend(r.filter(|r| filter.admits(&r.table, r.topic.as_deref())));
            }
        }
        let mut keys = Vec::new();
        for topic in wanted.iter().filter(|t| !t.is_empty()) {
            for prefix in &table_prefixes {
                let start = topic_key(topic, prefix);
                for entry in index.range(start.as_str()..).map_err(io)? {
                    let (k, _) = entry.map_err(io)?;
                    let Some(key) = k.value().strip_prefix(&format!("{topic}\0")) else {
                        break;
                    };
                    if !key.starts_with(prefix.as_str()) {
                        break;
                    }
                    let table = key.split_once('/').map_or(key, |(t, _)| t);
                    if !whole.contains(&format!("{table}/")) {
                        keys.push(key.to_string());
                    }
                }
            }
        }
        for key in keys {
            if let Some(v) = objects.get(key.as_str()).map_err(io)? {
                records.extend(keyed_record(&key, v.value())?);
            }
        }
        // The order of a whole snapshot: by `table/id`.
        records.sort_unstable_by(|a, b| (&a.table, &a.id).cmp(&(&b.table, &b.id)));
        Ok(Snapshot { revision, records })
    }
}

/// The record stored under `table/id`, `None` (logged) if its bytes cannot be decoded.
fn keyed_record(key: &str, bytes: &[u8]) -> Result<Option<Record>> {
    let (table, id) = key
        .split_once('/')
        .ok_or_else(|| StoreError::Corrupt(format!("bad key {key:?}")))?;
    let r = record(table, id.to_string(), bytes).map(Some);
    Ok(crate::keep(table, id, r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Expect;

    fn store() -> (tempfile::TempDir, Embedded) {
        let dir = tempfile::tempdir().unwrap();
        let s = Embedded::open(dir.path().join("nb.redb")).unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn put_get_list_delete() {
        let (_d, s) = store();
        let r1 = s
            .commit(vec![Op::put("port", "a", b"1".to_vec(), Expect::Absent)])
            .await
            .unwrap();
        let r2 = s
            .commit(vec![Op::put("port", "b", b"2".to_vec(), Expect::Absent)])
            .await
            .unwrap();
        assert!(r2 > r1);
        s.commit(vec![Op::put("portx", "c", b"3".to_vec(), Expect::Absent)])
            .await
            .unwrap();
        let got = s.get("port", "a").await.unwrap().unwrap();
        assert_eq!((got.revision, got.value.as_slice()), (r1, &b"1"[..]));
        let ids: Vec<_> = s
            .list("port", "")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        s.commit(vec![Op::delete("port", "a", Expect::Revision(r1))])
            .await
            .unwrap();
        assert!(s.get("port", "a").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn failed_precondition_writes_nothing() {
        let (_d, s) = store();
        s.commit(vec![Op::put(
            "claim",
            "ip/s/10.0.0.3",
            b"p1".to_vec(),
            Expect::Absent,
        )])
        .await
        .unwrap();
        let err = s
            .commit(vec![
                Op::put("port", "p2", b"x".to_vec(), Expect::Absent),
                Op::put("claim", "ip/s/10.0.0.3", b"p2".to_vec(), Expect::Absent),
            ])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        assert!(s.get("port", "p2").await.unwrap().is_none());
        let rev = s.revision().await.unwrap();
        assert_eq!(rev, 1, "a failed transaction takes no revision");
    }

    #[tokio::test]
    async fn prefix_listing_stops_at_prefix() {
        let (_d, s) = store();
        for id in ["ip/s1/a", "ip/s1/b", "ip/s2/a", "mac/x"] {
            s.commit(vec![Op::put("claim", id, vec![], Expect::Absent)])
                .await
                .unwrap();
        }
        let ids: Vec<_> = s
            .list("claim", "ip/s1/")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["ip/s1/a", "ip/s1/b"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_claims_have_one_winner() {
        let (_d, s) = store();
        let s = Arc::new(s);
        let mut tasks = Vec::new();
        for i in 0..50 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.commit(vec![Op::put(
                    "claim",
                    "key/port/1",
                    vec![i],
                    Expect::Absent,
                )])
                .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 1);
    }

    #[tokio::test]
    async fn changes_replay_in_order_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nb.redb");
        {
            let s = Embedded::open(&path).unwrap();
            s.commit(vec![Op::put("network", "n", b"1".to_vec(), Expect::Absent)])
                .await
                .unwrap();
            s.commit(vec![Op::put(
                "network",
                "n",
                b"2".to_vec(),
                Expect::Present,
            )])
            .await
            .unwrap();
            s.commit(vec![Op::delete("network", "n", Expect::Present)])
                .await
                .unwrap();
        }
        // The writer thread holds the database until its channel closes.
        let s = loop {
            match Embedded::open(&path) {
                Ok(s) => break s,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        assert_eq!(s.revision().await.unwrap(), 3);
        let ch = s.changes_since(0, 100).await.unwrap();
        let vals: Vec<_> = ch.iter().map(|c| (c.revision, c.value.clone())).collect();
        assert_eq!(
            vals,
            [
                (1, Some(b"1".to_vec())),
                (2, Some(b"2".to_vec())),
                (3, None)
            ]
        );
        assert_eq!(s.changes_since(2, 100).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn old_changes_are_compacted_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let s = Embedded::open_with_retention(dir.path().join("nb.redb"), 10).unwrap();
        for i in 0..1100u32 {
            s.commit(vec![Op::put("t", &i.to_string(), vec![], Expect::Absent)])
                .await
                .unwrap();
        }
        let err = s.changes_since(0, 10).await.unwrap_err();
        assert!(matches!(err, StoreError::Compacted { .. }), "{err}");
        assert_eq!(s.changes_since(1095, 10).await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn a_small_retention_is_kept_to_within_its_trim_step() {
        let dir = tempfile::tempdir().unwrap();
        let s = Embedded::open_with_retention(dir.path().join("nb.redb"), 100).unwrap();
        for i in 0..1000u32 {
            s.commit(vec![Op::put("t", &i.to_string(), vec![], Expect::Absent)])
                .await
                .unwrap();
        }
        // The last 100 revisions are always there; at most 10 (the step) more.
        assert_eq!(s.changes_since(900, 1000).await.unwrap().len(), 100);
        let err = s.changes_since(1000 - 100 - 10 - 1, 10).await.unwrap_err();
        assert!(matches!(err, StoreError::Compacted { .. }), "{err}");
        assert_eq!(
            (trim_step(100_000), trim_step(100), trim_step(5)),
            (1000, 10, 1)
        );
        assert!(Embedded::open_with_retention(dir.path().join("zero.redb"), 0).is_err());
    }

    #[tokio::test]
    async fn a_store_written_before_the_topic_index_is_indexed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nb.redb");
        {
            let s = Embedded::open(&path).unwrap();
            for (id, topic) in [("a", Some("p1")), ("b", Some("p2")), ("g", None)] {
                s.commit(vec![
                    Op::put("port", id, b"1".to_vec(), Expect::Absent).with_topic(topic),
                ])
                .await
                .unwrap();
            }
        }
        // Make it a file of before the index: no index table, no marker.
        let db = loop {
            match Database::create(&path) {
                Ok(db) => break db,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(TOPICS).unwrap());
        txn.open_table(META).unwrap().remove("topic_index").unwrap();
        txn.commit().unwrap();
        drop(db);
        let s = Embedded::open(&path).unwrap();
        let f = Filter::new(&["port".into()].into(), &["p1".into()].into());
        let ids: Vec<_> = (s.snapshot_filtered(&f).await.unwrap().records)
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["a", "g"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watch_follows_commits_with_topics_and_snapshot_matches() {
        let dir = tempfile::tempdir().unwrap();
        let s: Arc<dyn Store> = Arc::new(Embedded::open(dir.path().join("nb.redb")).unwrap());
        let put = |id: &str, topic: Option<&str>| {
            Op::put("port", id, id.as_bytes().to_vec(), Expect::Any).with_topic(topic)
        };
        s.commit(vec![put("a", Some("p1"))]).await.unwrap();
        let snap = s.snapshot().await.unwrap();
        assert_eq!(snap.revision, 1);
        assert_eq!(snap.records[0].topic.as_deref(), Some("p1"));
        let mut w = crate::Watch::new(s.clone(), snap.revision, Some(vec!["p2".into()]));
        let writer = {
            let s = s.clone();
            tokio::spawn(async move {
                s.commit(vec![put("b", Some("p1"))]).await.unwrap();
                s.commit(vec![put("c", Some("p2"))]).await.unwrap();
                s.commit(vec![put("g", None)]).await.unwrap();
                s.commit(vec![Op::delete("port", "c", Expect::Present)])
                    .await
                    .unwrap();
            })
        };
        let mut got = Vec::new();
        for _ in 0..3 {
            let c = w.next().await.unwrap();
            got.push((c.revision, c.id, c.value.is_some()));
        }
        writer.await.unwrap();
        // p1's change is not delivered; the global one is; the deletion keeps its topic.
        assert_eq!(
            got,
            [
                (3, "c".into(), true),
                (4, "g".into(), true),
                (5, "c".into(), false)
            ]
        );
    }
}
