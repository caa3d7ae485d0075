//! The Redis backend: objects as hashes, a sorted set per table for ordered listing, a
//! revision counter and a stream holding the changes of every revision.
//!
//! Keys, all under a prefix (`dragonflow:` by default):
//! - `o:<table>/<id>`: hash `r` (revision that wrote it), `t` (topic, "" for none), `v`;
//! - `t:<table>`: sorted set of the table's ids, all scores 0 so ZRANGEBYLEX orders them;
//! - `tables`: set of table names (what a snapshot walks);
//! - `i:<topic>/<table>`: set of the table's ids under that topic ("" for none), what a
//!   snapshot of a few topics reads; `topicidx` is set once it holds every object (a store
//!   written before it existed is indexed by the first such snapshot);
//! - `rev`: the latest revision;
//! - `log`: stream with one entry per revision, id `<rev>-0`, fields `p`/`d` (put/delete,
//!   value = table), `i` (id), `t` (topic), `v` (value, puts only); `n` for a revision that
//!   changed nothing. Every revision has an entry, so a gap at the start of a read means
//!   the stream was trimmed past it.
//!
//! - leases ([`crate::Lease`]), outside the revisions and the stream: `lv:<key>` (the
//!   value), `ll:<key>` (present while live: Redis's own expiry, `PX`, is the time to
//!   live), `leases` (sorted set of their keys).
//!
//! A commit is one Lua script: it checks every expectation before writing anything, then
//! bumps the counter, writes the objects and appends the stream entry. Redis runs a script
//! alone, so readers never see half a commit. (The entry's fields go through Lua's
//! `unpack`, which caps a commit at about 1000 ops.)

mod follow;
mod reply;
mod scripts;

use crate::{Change, Count, Op, Record, Result, Revision, Snapshot, Store, StoreError};
use async_trait::async_trait;
use follow::follow;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};
use reply::{array, bytes, corrupt, entry_changes, err, number, record, snapshot_reply, string};
use scripts::{COMMIT, LIST, SNAPSHOT, SNAPSHOT_TOPICS};
use std::time::Duration;
use tokio::sync::watch;

/// Settings beyond the URL.
#[derive(Clone, Debug)]
pub struct Options {
    /// Prepended to every key.
    pub prefix: String,
    /// About how many revisions the change stream keeps (`XADD MAXLEN ~`).
    pub retention: u64,
    /// The CA and client certificate of a `rediss://` server (`None`: plain, or TLS with
    /// the system's roots).
    pub tls: Option<crate::tls::Tls>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            prefix: "dragonflow:".into(),
            retention: crate::embedded::DEFAULT_RETENTION,
            tls: None,
        }
    }
}

/// A store on one Redis server.
pub struct Redis {
    url: String,
    options: Options,
    conn: ConnectionManager,
    commit: Script,
    list: Script,
    snapshot: Script,
    snapshot_topics: Script,
    revision: watch::Sender<Revision>,
    follower: tokio::task::AbortHandle,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Redis({} {})",
            crate::url::redacted(&self.url),
            self.options.prefix
        )
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl Redis {
    /// A store on the Redis server at `url` (`redis://host:port[/db]`). Connects lazily;
    /// must be called inside a tokio runtime.
    pub fn new(url: &str, options: Options) -> Result<Redis> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Invalid("the redis store needs a tokio runtime".into()))?;
        let client = crate::tls::redis_client(url, options.tls.as_ref())
            .map_err(|e| StoreError::Invalid(format!("{}: {e}", crate::url::redacted(url))))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            // Scripts over big tables (snapshots) can take a while.
            .set_response_timeout(Some(Duration::from_secs(30)))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(err)?;
        let (tx, _) = watch::channel(0);
        let follower = handle
            .spawn(follow(client, options.prefix.clone(), tx.clone()))
            .abort_handle();
        Ok(Redis {
            url: url.into(),
            options,
            conn,
            commit: Script::new(COMMIT),
            list: Script::new(LIST),
            snapshot: Script::new(SNAPSHOT),
            snapshot_topics: Script::new(SNAPSHOT_TOPICS),
            revision: tx,
            follower,
        })
    }

    /// Like [`Redis::new`], then checks the server answers.
    pub async fn connect(url: &str, options: Options) -> Result<Redis> {
        let store = Redis::new(url, options)?;
        store.revision().await?;
        Ok(store)
    }

    fn key(&self, table: &str, id: &str) -> String {
        format!("{}o:{table}/{id}", self.options.prefix)
    }

    /// Replaces an object's hash with the given raw fields, bypassing the layout (tests of
    /// [`StoreError::Corrupt`]).
    pub async fn put_raw(&self, table: &str, id: &str, fields: &[(&str, &[u8])]) -> Result<()> {
        let mut con = self.conn.clone();
        let key = self.key(table, id);
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(&key).ignore();
        let mut hset = redis::cmd("HSET");
        hset.arg(&key);
        for (f, v) in fields {
            hset.arg(*f).arg(*v);
        }
        pipe.add_command(hset).ignore();
        pipe.cmd("ZADD")
            .arg(format!("{}t:{table}", self.options.prefix))
            .arg(0)
            .arg(id)
            .ignore();
        pipe.cmd("SADD")
            .arg(format!("{}tables", self.options.prefix))
            .arg(table)
            .ignore();
        pipe.query_async::<()>(&mut con).await.map_err(err)
    }
}

impl Redis {
    /// The leases at `keys` (those that exist), each with whether it is live, read in one
    /// round trip.
    async fn read_leases(&self, keys: Vec<String>) -> Result<Vec<crate::Lease>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let p = &self.options.prefix;
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("GET").arg(format!("{p}lv:{k}"));
            pipe.cmd("EXISTS").arg(format!("{p}ll:{k}"));
        }
        let replies: Vec<Value> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map_err(err)?;
        if replies.len() != keys.len() * 2 {
            return Err(corrupt("lease read answered oddly"));
        }
        let mut out = Vec::new();
        for (key, r) in keys.into_iter().zip(replies.chunks(2)) {
            if let Some(value) = bytes(&r[0])? {
                out.push(crate::Lease {
                    key,
                    value,
                    live: number(&r[1])? > 0,
                });
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Store for Redis {
    fn describe(&self) -> String {
        format!(
            "redis:{} {}",
            crate::url::redacted(&self.url),
            self.options.prefix
        )
    }

    async fn get(&self, table: &str, id: &str) -> Result<Option<Record>> {
        let mut con = self.conn.clone();
        let reply: Vec<Value> = redis::cmd("HMGET")
            .arg(self.key(table, id))
            .arg("r")
            .arg("t")
            .arg("v")
            .query_async(&mut con)
            .await
            .map_err(err)?;
        let [r, t, v] = reply.as_slice() else {
            return Err(corrupt("bad HMGET reply"));
        };
        record(table, id.into(), r, t, v).map_err(|e| crate::with_key(e, table, id))
    }

    async fn list(&self, table: &str, prefix: &str) -> Result<Vec<Record>> {
        let (min, max) = if prefix.is_empty() {
            (b"-".to_vec(), b"+".to_vec())
        } else {
            // No UTF-8 string has a 0xff byte, so it bounds every id with the prefix.
            let mut max = format!("({prefix}").into_bytes();
            max.push(0xff);
            (format!("[{prefix}").into_bytes(), max)
        };
        let mut con = self.conn.clone();
        let reply: Value = self
            .list
            .arg(&self.options.prefix)
            .arg(table)
            .arg(min)
            .arg(max)
            .invoke_async(&mut con)
            .await
            .map_err(err)?;
        let items = array(reply)?;
        let mut out = Vec::with_capacity(items.len() / 4);
        for chunk in items.chunks(4) {
            let [id, r, t, v] = chunk else {
                return Err(corrupt("bad list reply"));
            };
            let id = string(id)?;
            out.extend(crate::keep(table, &id, record(table, id.clone(), r, t, v)));
        }
        Ok(out)
    }

    async fn commit_counted(&self, ops: Vec<Op>, counts: Vec<Count>) -> Result<Revision> {
        crate::counters::validate_commit(&ops, &counts)?;
        let mut inv = self.commit.prepare_invoke();
        inv.arg(&self.options.prefix)
            .arg(self.options.retention.max(1))
            .arg(ops.len());
        for op in &ops {
            let (table, id) = op.key();
            let (kind, topic, value): (&str, &str, &[u8]) = match op {
                Op::Put { topic, value, .. } => ("p", topic.as_deref().unwrap_or(""), value),
                Op::Delete { .. } => ("d", "", &[]),
                Op::Check { .. } => ("c", "", &[]),
            };
            let (e, r) = match op.expect() {
                crate::Expect::Any => ("a", 0),
                crate::Expect::Absent => ("A", 0),
                crate::Expect::Present => ("P", 0),
                crate::Expect::Revision(r) => ("R", r),
            };
            inv.arg(kind)
                .arg(table)
                .arg(id)
                .arg(e)
                .arg(r)
                .arg(topic)
                .arg(value);
        }
        for c in &counts {
            let (kind, v, limit) = match c {
                Count::Add { delta, limit, .. } => ("a", *delta, limit.map(|l| l.to_string())),
                Count::Set { value, .. } => ("s", *value, None),
            };
            inv.arg(kind)
                .arg(c.name())
                .arg(v)
                .arg(limit.unwrap_or_default());
        }
        let mut con = self.conn.clone();
        let (ok, n): (i64, u64) = inv.invoke_async(&mut con).await.map_err(err)?;
        if ok == 1 {
            crate::bump(&self.revision, n);
            return Ok(n);
        }
        if ok == 2 {
            let c = usize::try_from(n)
                .ok()
                .and_then(|i| counts.get(i))
                .ok_or_else(|| corrupt("commit script named no counter"))?;
            return Err(StoreError::OverLimit {
                counter: c.name().to_string(),
            });
        }
        let (table, id) = usize::try_from(n)
            .ok()
            .and_then(|i| ops.get(i))
            .map(Op::key)
            .ok_or_else(|| corrupt("commit script named no op"))?;
        Err(StoreError::Conflict {
            table: table.into(),
            id: id.into(),
        })
    }

    async fn put_lease(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<()> {
        let p = &self.options.prefix;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(format!("{p}lv:{key}"))
            .arg(value)
            .ignore();
        let mut live = redis::cmd("SET");
        live.arg(format!("{p}ll:{key}")).arg(1);
        if let Some(t) = ttl {
            live.arg("PX")
                .arg(u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        pipe.add_command(live).ignore();
        pipe.cmd("ZADD")
            .arg(format!("{p}leases"))
            .arg(0)
            .arg(key)
            .ignore();
        pipe.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(err)
    }

    async fn get_lease(&self, key: &str) -> Result<Option<crate::Lease>> {
        Ok(self.read_leases(vec![key.to_string()]).await?.pop())
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<crate::Lease>> {
        let keys: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{}leases", self.options.prefix))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(err)?;
        let keys = keys.into_iter().filter(|k| k.starts_with(prefix)).collect();
        self.read_leases(keys).await
    }

    async fn delete_lease(&self, key: &str) -> Result<bool> {
        let p = &self.options.prefix;
        let (gone, _, _): (u64, u64, u64) = redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(format!("{p}lv:{key}"))
            .cmd("DEL")
            .arg(format!("{p}ll:{key}"))
            .cmd("ZREM")
            .arg(format!("{p}leases"))
            .arg(key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(err)?;
        Ok(gone > 0)
    }

    async fn counters(&self, prefix: &str) -> Result<Vec<(String, i64)>> {
        let mut con = self.conn.clone();
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(format!("{}n", self.options.prefix))
            .query_async(&mut con)
            .await
            .map_err(err)?;
        let mut out = Vec::new();
        for (name, v) in all.into_iter().filter(|(n, _)| n.starts_with(prefix)) {
            let v = v
                .parse()
                .map_err(|_| corrupt(&format!("counter {name} is not a number")))?;
            out.push((name, v));
        }
        out.sort();
        Ok(out)
    }

    async fn revision(&self) -> Result<Revision> {
        let mut con = self.conn.clone();
        let rev: Option<Value> = redis::cmd("GET")
            .arg(format!("{}rev", self.options.prefix))
            .query_async(&mut con)
            .await
            .map_err(err)?;
        rev.as_ref().map(number).transpose().map(|r| r.unwrap_or(0))
    }

    async fn changes_since(&self, after: Revision, limit: usize) -> Result<Vec<Change>> {
        let mut con = self.conn.clone();
        let rev_key = format!("{}rev", self.options.prefix);
        let log = format!("{}log", self.options.prefix);
        let mut out = Vec::new();
        let mut revisions = 0;
        let mut from = after + 1;
        let page = limit.clamp(1, 1000);
        loop {
            // One MULTI so the revision and the entries agree.
            let (latest, entries): (Option<Value>, Value) = redis::pipe()
                .atomic()
                .cmd("GET")
                .arg(&rev_key)
                .cmd("XRANGE")
                .arg(&log)
                .arg(format!("{from}-0"))
                .arg("+")
                .arg("COUNT")
                .arg(page)
                .query_async(&mut con)
                .await
                .map_err(err)?;
            let latest = latest.as_ref().map(number).transpose()?.unwrap_or(0);
            let entries = array(entries)?;
            if latest < from {
                // Nothing newer. A revision behind `after` means the server lost data
                // (e.g. restarted without persistence): only a new snapshot is right.
                if latest < after {
                    return Err(StoreError::Compacted {
                        requested: after + 1,
                        oldest: latest + 1,
                    });
                }
                return Ok(out);
            }
            let n = entries.len();
            let mut expected = from;
            for entry in entries {
                let (rev, changes) = entry_changes(entry)?;
                if rev != expected {
                    return Err(StoreError::Compacted {
                        requested: expected,
                        oldest: rev,
                    });
                }
                expected += 1;
                if !changes.is_empty() {
                    out.extend(changes);
                    revisions += 1;
                    if revisions >= limit {
                        return Ok(out);
                    }
                }
            }
            if n == 0 {
                // Newer revisions exist but the stream holds none of them.
                return Err(StoreError::Compacted {
                    requested: from,
                    oldest: latest + 1,
                });
            }
            if n < page {
                return Ok(out);
            }
            from = expected;
        }
    }

    fn subscribe(&self) -> watch::Receiver<Revision> {
        self.revision.subscribe()
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let mut con = self.conn.clone();
        let reply: Value = self
            .snapshot
            .arg(&self.options.prefix)
            .invoke_async(&mut con)
            .await
            .map_err(err)?;
        snapshot_reply(reply)
    }

    /// Topics are read from the topic index, tables from their own sets: the script
    /// touches only the objects asked for.
    async fn snapshot_filtered(&self, filter: &crate::Filter) -> Result<Snapshot> {
        let Some(topics) = &filter.topics else {
            let mut snap = self.snapshot().await?;
            snap.records.retain(|r| filter.admits(&r.table, None));
            return Ok(snap);
        };
        let tables: Vec<&String> = filter.tables.iter().flatten().collect();
        if filter.tables.is_some() && tables.is_empty() {
            return Ok(Snapshot {
                revision: self.revision().await?,
                records: vec![],
            });
        }
        let mut con = self.conn.clone();
        let mut call = self.snapshot_topics.prepare_invoke();
        call.arg(&self.options.prefix)
            .arg(tables.len())
            .arg(&tables);
        // "" is the topic-less objects' set, which every topic limit admits.
        call.arg("")
            .arg(topics.iter().filter(|t| !t.is_empty()).collect::<Vec<_>>());
        let reply: Value = call.invoke_async(&mut con).await.map_err(err)?;
        snapshot_reply(reply)
    }
}

/// Tools for tests and operations that go around the [`Store`] interface.
impl Redis {
    /// Drops change-stream entries up to `revision` (what retention does over time).
    pub async fn trim(&self, revision: Revision) -> Result<()> {
        let mut con = self.conn.clone();
        redis::cmd("XTRIM")
            .arg(format!("{}log", self.options.prefix))
            .arg("MINID")
            .arg(format!("{}-0", revision + 1))
            .query_async::<()>(&mut con)
            .await
            .map_err(err)
    }
}
