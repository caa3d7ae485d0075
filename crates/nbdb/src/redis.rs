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

use crate::{Change, Count, Op, Record, Result, Revision, Snapshot, Store, StoreError};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Client, Script, Value};
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

/// ARGV: prefix, retention, number of ops, then 7 per op: kind (p/d/c), table, id,
/// expectation (a: any, A: absent, P: present, R: revision), expected revision, topic,
/// value; then 4 per counter change: kind (a: add, s: set), name, delta or value, limit
/// ('' for none). Counters live in the hash `<prefix>n`.
/// Returns {1, revision}, {0, index of the op whose expectation failed} or {2, index of
/// the counter that would pass its limit}.
const COMMIT: &str = r#"
local p = ARGV[1]
local n = tonumber(ARGV[3])
local nc = (#ARGV - 3 - n * 7) / 4
local old = {}
for i = 0, n - 1 do
  local b = 4 + i * 7
  local key = p .. 'o:' .. ARGV[b + 1] .. '/' .. ARGV[b + 2]
  local cur = redis.call('HMGET', key, 'r', 't')
  local e = ARGV[b + 3]
  local exists = cur[1] ~= false
  local ok = e == 'a' or (e == 'A' and not exists) or (e == 'P' and exists)
    or (e == 'R' and exists and cur[1] == ARGV[b + 4])
  if not ok then return {0, i} end
  old[i] = {exists, cur[2] or ''}
end
local counted = {}
for j = 0, nc - 1 do
  local b = 4 + n * 7 + j * 4
  local v = tonumber(ARGV[b + 2])
  if ARGV[b] == 'a' then
    local next = tonumber(redis.call('HGET', p .. 'n', ARGV[b + 1]) or '0') + v
    if v > 0 and ARGV[b + 3] ~= '' and next > tonumber(ARGV[b + 3]) then return {2, j} end
    v = next
  end
  counted[j] = v
end
for j = 0, nc - 1 do
  local name = ARGV[4 + n * 7 + j * 4 + 1]
  if counted[j] == 0 then
    redis.call('HDEL', p .. 'n', name)
  else
    redis.call('HSET', p .. 'n', name, string.format('%d', counted[j]))
  end
end
local rev = redis.call('INCR', p .. 'rev')
local f = {}
for i = 0, n - 1 do
  local b = 4 + i * 7
  local kind, tbl, id = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local key = p .. 'o:' .. tbl .. '/' .. id
  if kind == 'p' then
    redis.call('HSET', key, 'r', rev, 't', ARGV[b + 5], 'v', ARGV[b + 6])
    redis.call('ZADD', p .. 't:' .. tbl, 0, id)
    redis.call('SADD', p .. 'tables', tbl)
    if not old[i][1] or old[i][2] ~= ARGV[b + 5] then
      if old[i][1] then redis.call('SREM', p .. 'i:' .. old[i][2] .. '/' .. tbl, id) end
      redis.call('SADD', p .. 'i:' .. ARGV[b + 5] .. '/' .. tbl, id)
    end
    for _, x in ipairs({'p', tbl, 'i', id, 't', ARGV[b + 5], 'v', ARGV[b + 6]}) do f[#f + 1] = x end
  elseif kind == 'd' and old[i][1] then
    redis.call('DEL', key)
    redis.call('ZREM', p .. 't:' .. tbl, id)
    redis.call('SREM', p .. 'i:' .. old[i][2] .. '/' .. tbl, id)
    for _, x in ipairs({'d', tbl, 'i', id, 't', old[i][2]}) do f[#f + 1] = x end
  end
end
if #f == 0 then f = {'n', ''} end
redis.call('XADD', p .. 'log', 'MAXLEN', '~', ARGV[2], rev .. '-0', unpack(f))
return {1, rev}
"#;

/// ARGV: prefix, table, min, max (ZRANGEBYLEX bounds). Returns id, r, t, v per object.
const LIST: &str = r#"
local p, tbl = ARGV[1], ARGV[2]
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYLEX', p .. 't:' .. tbl, ARGV[3], ARGV[4])) do
  local h = redis.call('HMGET', p .. 'o:' .. tbl .. '/' .. id, 'r', 't', 'v')
  for _, x in ipairs({id, h[1], h[2], h[3]}) do out[#out + 1] = x end
end
return out
"#;

/// ARGV: prefix. Returns the revision, then table, id, r, t, v per object.
const SNAPSHOT: &str = r#"
local p = ARGV[1]
local out = {redis.call('GET', p .. 'rev') or '0'}
local tables = redis.call('SMEMBERS', p .. 'tables')
table.sort(tables)
for _, tbl in ipairs(tables) do
  for _, id in ipairs(redis.call('ZRANGE', p .. 't:' .. tbl, 0, -1)) do
    local h = redis.call('HMGET', p .. 'o:' .. tbl .. '/' .. id, 'r', 't', 'v')
    for _, x in ipairs({tbl, id, h[1], h[2], h[3]}) do out[#out + 1] = x end
  end
end
return out
"#;

/// ARGV: prefix, the number of tables (0: every table), the tables, then the topics ("" for
/// the topic-less objects). Returns what SNAPSHOT does, for those tables and topics only,
/// read from the topic index.
const SNAPSHOT_TOPICS: &str = r#"
local p, nt = ARGV[1], tonumber(ARGV[2])
if redis.call('EXISTS', p .. 'topicidx') == 0 then
  for _, tbl in ipairs(redis.call('SMEMBERS', p .. 'tables')) do
    for _, id in ipairs(redis.call('ZRANGE', p .. 't:' .. tbl, 0, -1)) do
      local t = redis.call('HGET', p .. 'o:' .. tbl .. '/' .. id, 't')
      if t then redis.call('SADD', p .. 'i:' .. t .. '/' .. tbl, id) end
    end
  end
  redis.call('SET', p .. 'topicidx', '1')
end
local tables = {}
if nt == 0 then
  tables = redis.call('SMEMBERS', p .. 'tables')
else
  for i = 1, nt do tables[i] = ARGV[2 + i] end
end
table.sort(tables)
local out = {redis.call('GET', p .. 'rev') or '0'}
for _, tbl in ipairs(tables) do
  local ids = {}
  for i = 3 + nt, #ARGV do
    for _, id in ipairs(redis.call('SMEMBERS', p .. 'i:' .. ARGV[i] .. '/' .. tbl)) do
      ids[#ids + 1] = id
    end
  end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local h = redis.call('HMGET', p .. 'o:' .. tbl .. '/' .. id, 'r', 't', 'v')
    for _, x in ipairs({tbl, id, h[1], h[2], h[3]}) do out[#out + 1] = x end
  end
end
return out
"#;

fn err(e: redis::RedisError) -> StoreError {
    let msg = e.to_string();
    if msg.contains("WRONGTYPE") {
        StoreError::Corrupt(format!("redis: {msg}"))
    } else {
        StoreError::Unavailable(format!("redis: {msg}"))
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("redis: {what}"))
}

/// A reply element as bytes; `None` for nil.
fn bytes(v: &Value) -> Result<Option<Vec<u8>>> {
    match v {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(b.clone())),
        Value::SimpleString(s) => Ok(Some(s.clone().into_bytes())),
        Value::Int(i) => Ok(Some(i.to_string().into_bytes())),
        Value::Okay => Ok(Some(b"OK".to_vec())),
        _ => Err(corrupt("unexpected reply shape")),
    }
}

fn string(v: &Value) -> Result<String> {
    let b = bytes(v)?.ok_or_else(|| corrupt("missing string"))?;
    String::from_utf8(b).map_err(|_| corrupt("string is not UTF-8"))
}

fn number(v: &Value) -> Result<u64> {
    match bytes(v)? {
        None => Ok(0),
        Some(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("bad number")),
    }
}

fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        _ => Err(corrupt("expected an array reply")),
    }
}

/// A record from the (r, t, v) of a hash; `None` if the hash does not exist.
fn record(table: &str, id: String, r: &Value, t: &Value, v: &Value) -> Result<Option<Record>> {
    let Some(rev) = bytes(r)? else {
        return Ok(None);
    };
    let revision = std::str::from_utf8(&rev)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(&format!("bad revision of {table}/{id}")))?;
    let topic = string(t).map_err(|_| corrupt(&format!("bad topic of {table}/{id}")))?;
    let value = bytes(v)?.ok_or_else(|| corrupt(&format!("{table}/{id} has no value")))?;
    Ok(Some(Record {
        table: table.into(),
        id,
        revision,
        topic: crate::codec::topic_of(&topic),
        value,
    }))
}

/// The revision of a stream id `<rev>-0`.
fn stream_rev(id: &Value) -> Result<Revision> {
    let id = string(id)?;
    id.split_once('-')
        .and_then(|(r, _)| r.parse().ok())
        .ok_or_else(|| corrupt(&format!("bad stream id {id:?}")))
}

/// The changes of one stream entry (`[id, [field, value, ...]]`).
fn entry_changes(entry: Value) -> Result<(Revision, Vec<Change>)> {
    let mut parts = array(entry)?.into_iter();
    let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
        return Err(corrupt("bad stream entry"));
    };
    let revision = stream_rev(&id)?;
    let fields = array(fields)?;
    let mut out: Vec<Change> = Vec::new();
    for pair in fields.chunks(2) {
        let [name, value] = pair else {
            return Err(corrupt("odd stream entry"));
        };
        let name = string(name)?;
        match name.as_str() {
            "p" | "d" => out.push(Change {
                revision,
                table: string(value)?,
                id: String::new(),
                topic: None,
                value: (name == "p").then(Vec::new),
            }),
            "n" => {}
            _ => {
                let last = out
                    .last_mut()
                    .ok_or_else(|| corrupt("stream field before a change"))?;
                match name.as_str() {
                    "i" => last.id = string(value)?,
                    "t" => last.topic = crate::codec::topic_of(&string(value)?),
                    "v" => last.value = bytes(value)?,
                    _ => return Err(corrupt("unknown stream field")),
                }
            }
        }
    }
    Ok((revision, out))
}

/// Keeps `tx` at the latest revision: reads `rev`, then blocks on the stream for anything
/// newer; on failure reconnects after a short pause and reads `rev` again.
async fn follow(client: Client, prefix: String, tx: watch::Sender<Revision>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let started = tokio::time::Instant::now();
        if let Err(e) = follow_once(&client, &prefix, &tx).await {
            tracing::debug!(error = %e, "redis change follower restarting");
        }
        // Back off only while reconnecting keeps failing.
        if started.elapsed() > Duration::from_secs(5) {
            delay = Duration::from_millis(100);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

async fn follow_once(
    client: &Client,
    prefix: &str,
    tx: &watch::Sender<Revision>,
) -> redis::RedisResult<()> {
    // A connection of its own: a blocking XREAD would stall every request behind it.
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(10)));
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let rev_key = format!("{prefix}rev");
    let log = format!("{prefix}log");
    loop {
        let rev: Option<u64> = redis::cmd("GET")
            .arg(&rev_key)
            .query_async(&mut con)
            .await?;
        let rev = rev.unwrap_or(0);
        crate::bump(tx, rev);
        let _: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(2000)
            .arg("STREAMS")
            .arg(&log)
            .arg(format!("{rev}-0"))
            .query_async(&mut con)
            .await?;
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

/// The records of a SNAPSHOT (or SNAPSHOT_TOPICS) reply.
fn snapshot_reply(reply: Value) -> Result<Snapshot> {
    let mut items = array(reply)?.into_iter();
    let revision = number(
        &items
            .next()
            .ok_or_else(|| corrupt("empty snapshot reply"))?,
    )?;
    let items: Vec<Value> = items.collect();
    let mut records = Vec::with_capacity(items.len() / 5);
    for chunk in items.chunks(5) {
        let [table, id, r, t, v] = chunk else {
            return Err(corrupt("bad snapshot reply"));
        };
        let (table, id) = (string(table)?, string(id)?);
        records.extend(crate::keep(
            &table,
            &id,
            record(&table, id.clone(), r, t, v),
        ));
    }
    Ok(Snapshot { revision, records })
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
