//! The Lua scripts the store runs on the server: a commit, a listing and snapshots, each
//! read or written whole because Redis runs a script alone.

/// ARGV: prefix, retention, number of ops, then 7 per op: kind (p/d/c), table, id,
/// expectation (a: any, A: absent, P: present, R: revision), expected revision, topic,
/// value; then 4 per counter change: kind (a: add, s: set), name, delta or value, limit
/// ('' for none). Counters live in the hash `<prefix>n`.
/// Returns {1, revision}, {0, index of the op whose expectation failed} or {2, index of
/// the counter that would pass its limit}.
pub(super) const COMMIT: &str = r#"
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
pub(super) const LIST: &str = r#"
local p, tbl = ARGV[1], ARGV[2]
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYLEX', p .. 't:' .. tbl, ARGV[3], ARGV[4])) do
  local h = redis.call('HMGET', p .. 'o:' .. tbl .. '/' .. id, 'r', 't', 'v')
  for _, x in ipairs({id, h[1], h[2], h[3]}) do out[#out + 1] = x end
end
return out
"#;

/// ARGV: prefix. Returns the revision, then table, id, r, t, v per object.
pub(super) const SNAPSHOT: &str = r#"
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
pub(super) const SNAPSHOT_TOPICS: &str = r#"
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
