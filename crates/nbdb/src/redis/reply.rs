//! Reading Redis replies: records, stream entries and snapshots out of `Value`s, and
//! Redis errors as store errors.

use crate::{Change, Record, Result, Revision, Snapshot, StoreError};
use redis::Value;

pub(super) fn err(e: redis::RedisError) -> StoreError {
    let msg = e.to_string();
    if msg.contains("WRONGTYPE") {
        StoreError::Corrupt(format!("redis: {msg}"))
    } else {
        StoreError::Unavailable(format!("redis: {msg}"))
    }
}

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("redis: {what}"))
}

/// A reply element as bytes; `None` for nil.
pub(super) fn bytes(v: &Value) -> Result<Option<Vec<u8>>> {
    match v {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(b.clone())),
        Value::SimpleString(s) => Ok(Some(s.clone().into_bytes())),
        Value::Int(i) => Ok(Some(i.to_string().into_bytes())),
        Value::Okay => Ok(Some(b"OK".to_vec())),
        _ => Err(corrupt("unexpected reply shape")),
    }
}

pub(super) fn string(v: &Value) -> Result<String> {
    let b = bytes(v)?.ok_or_else(|| corrupt("missing string"))?;
    String::from_utf8(b).map_err(|_| corrupt("string is not UTF-8"))
}

pub(super) fn number(v: &Value) -> Result<u64> {
    match bytes(v)? {
        None => Ok(0),
        Some(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("bad number")),
    }
}

pub(super) fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        _ => Err(corrupt("expected an array reply")),
    }
}

/// A record from the (r, t, v) of a hash; `None` if the hash does not exist.
pub(super) fn record(
    table: &str,
    id: String,
    r: &Value,
    t: &Value,
    v: &Value,
) -> Result<Option<Record>> {
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
pub(super) fn entry_changes(entry: Value) -> Result<(Revision, Vec<Change>)> {
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

/// The records of a SNAPSHOT (or SNAPSHOT_TOPICS) reply.
pub(super) fn snapshot_reply(reply: Value) -> Result<Snapshot> {
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
