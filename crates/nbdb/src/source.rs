//! One way to read the NB model, whoever holds it: a store opened in this process, or a
//! server's NB listener over HTTP ([`crate::remote`]). The filter (tables, topics) and the
//! wire form of records and changes are declared once here, and both ends of the HTTP
//! stream use them.

use crate::remote::{Remote, RemoteWatch};
use crate::{Change, Record, Result, Revision, Snapshot, Store, StoreError, Watch};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What a snapshot or a watch is limited to. `None`: no limit. Objects with no topic
/// (chassis, claims) pass any topic limit: every host needs them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub tables: Option<BTreeSet<String>>,
    pub topics: Option<BTreeSet<String>>,
}

impl Filter {
    /// Everything.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// These tables, in these topics.
    pub fn new(tables: &BTreeSet<String>, topics: &BTreeSet<String>) -> Filter {
        Filter {
            tables: Some(tables.clone()),
            topics: Some(topics.clone()),
        }
    }

    /// Whether an object of `table` under `topic` passes.
    pub fn admits(&self, table: &str, topic: Option<&str>) -> bool {
        self.tables.as_ref().is_none_or(|ts| ts.contains(table))
            && match (&self.topics, topic) {
                (None, _) | (_, None) => true,
                (Some(ts), Some(t)) => ts.contains(t),
            }
    }

    /// The query string form: `tables=a,b&topics=x,y` (empty for no limit).
    pub fn to_query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [("tables", &self.tables), ("topics", &self.topics)] {
            if let Some(v) = v {
                let joined: Vec<&str> = v.iter().map(String::as_str).collect();
                parts.push(format!("{k}={}", joined.join(",")));
            }
        }
        parts.join("&")
    }

    /// Reads `tables` and `topics` out of a query string, and `after` when `with_after`;
    /// anything else is an error naming the parameter.
    pub fn from_query(
        raw: &str,
        with_after: bool,
    ) -> std::result::Result<(Filter, Option<Revision>), String> {
        let mut f = Filter::default();
        let mut after = None;
        let list = |v: &str| -> BTreeSet<String> {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            match k.as_ref() {
                "after" if with_after => {
                    after = Some(
                        v.parse()
                            .map_err(|_| format!("after={v} is not a revision"))?,
                    );
                }
                "topics" => f.topics = Some(list(&v)),
                "tables" => f.tables = Some(list(&v)),
                other => return Err(format!("unknown parameter {other}")),
            }
        }
        Ok((f, after))
    }
}

/// The wire form of records and changes: one JSON object each, the stored value inline.
pub mod wire {
    use super::*;

    /// The stored JSON value; one that is not JSON is reported with its key and left out
    /// (`None`), so one corrupt object never stops a reader.
    fn value(table: &str, id: &str, bytes: Option<&[u8]>) -> Option<Value> {
        let Some(b) = bytes else {
            return Some(Value::Null);
        };
        match serde_json::from_slice(b) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(table, id, error = %e, "corrupt value in the NB store skipped");
                None
            }
        }
    }

    /// A snapshot record as the server sends it: the stored JSON value is checked and
    /// copied through as it is, never parsed into a tree and serialised again.
    #[derive(serde::Serialize)]
    pub struct RawRecord<'a> {
        pub table: &'a str,
        pub id: &'a str,
        pub revision: Revision,
        pub topic: Option<&'a str>,
        pub value: &'a serde_json::value::RawValue,
    }

    /// [`record`] without the parse: `None` (logged) when the value is not JSON.
    pub fn raw_record(r: &Record) -> Option<RawRecord<'_>> {
        match serde_json::from_slice(&r.value) {
            Ok(value) => Some(RawRecord {
                table: &r.table,
                id: &r.id,
                revision: r.revision,
                topic: r.topic.as_deref(),
                value,
            }),
            Err(e) => {
                tracing::error!(table = %r.table, id = %r.id, error = %e, "corrupt value in the NB store skipped");
                None
            }
        }
    }

    /// A snapshot record.
    pub fn record(r: &Record) -> Option<Value> {
        let value = value(&r.table, &r.id, Some(&r.value))?;
        Some(
            json!({"table": r.table, "id": r.id, "revision": r.revision, "topic": r.topic, "value": value}),
        )
    }

    /// A change (a deleted object's value is null).
    pub fn change(c: &Change) -> Option<Value> {
        let value = value(&c.table, &c.id, c.value.as_deref())?;
        Some(
            json!({"revision": c.revision, "table": c.table, "id": c.id, "topic": c.topic, "value": value}),
        )
    }

    /// A progress line: `{"progress": R}`, every change within the watch's filter up to
    /// `R` was sent (the filter left the rest out).
    pub fn progress_line(revision: Revision) -> Value {
        json!({ "progress": revision })
    }

    /// The revision of a progress line; `None` for anything else.
    pub fn progress(v: &Value) -> Option<Revision> {
        v.as_object()
            .filter(|o| o.len() == 1)?
            .get("progress")?
            .as_u64()
    }

    /// Decodes one item (a change or a record).
    pub fn parse(v: &Value) -> Result<Change> {
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| StoreError::Corrupt(format!("stream item without {k}: {v}")))
        };
        let revision = v
            .get("revision")
            .and_then(Value::as_u64)
            .ok_or_else(|| StoreError::Corrupt(format!("stream item without revision: {v}")))?;
        let topic = v.get("topic").and_then(Value::as_str).map(str::to_string);
        let value = match v.get("value") {
            None | Some(Value::Null) => None,
            Some(x) => Some(serde_json::to_vec(x).map_err(|e| StoreError::Corrupt(e.to_string()))?),
        };
        Ok(Change {
            revision,
            table: field("table")?,
            id: field("id")?,
            topic,
            value,
        })
    }

    /// A snapshot record from a decoded item.
    pub fn into_record(c: Change) -> Record {
        Record {
            table: c.table,
            id: c.id,
            revision: c.revision,
            topic: c.topic,
            value: c.value.unwrap_or_default(),
        }
    }
}

/// Where the NB model is read from.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// Everything within `filter`, at one revision.
    async fn snapshot(&self, filter: &Filter) -> Result<Snapshot>;
    /// The changes within `filter` after revision `after`, each once, in order.
    fn watch(&self, after: Revision, filter: Filter) -> Changes;
    /// One object, whatever its topic; `None` when there is no such object.
    async fn get(&self, table: &str, id: &str) -> Result<Option<Record>>;
    /// Many objects at once (one request to a server), in order.
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Record>>> {
        let mut out = Vec::with_capacity(keys.len());
        for (table, id) in keys {
            out.push(self.get(table, id).await?);
        }
        Ok(out)
    }
}

/// A change stream from a [`Source`].
pub enum Changes {
    Store(Watch),
    Remote(RemoteWatch),
    /// From the publish-subscribe fan-out, filled from one of the others.
    Pubsub(Box<crate::pubsub::PubsubWatch>),
}

impl Changes {
    /// The next change; see [`Watch::next`] and [`RemoteWatch::next`] for what a failure
    /// means ([`StoreError::Compacted`]: take a new snapshot).
    pub async fn next(&mut self) -> Result<Change> {
        match self {
            Changes::Store(w) => w.next().await,
            Changes::Remote(w) => w.next().await,
            // Boxed: a pubsub watch fills its gaps from a `Changes` of its own.
            Changes::Pubsub(w) => Box::pin(w.next()).await,
        }
    }

    /// The revision up to which every change within the filter has been handed out (see
    /// [`Watch::position`], [`RemoteWatch::position`]).
    pub fn position(&self) -> Revision {
        match self {
            Changes::Store(w) => w.position(),
            Changes::Remote(w) => w.position(),
            Changes::Pubsub(w) => w.position(),
        }
    }
}

#[async_trait::async_trait]
impl Source for Arc<dyn Store> {
    async fn snapshot(&self, filter: &Filter) -> Result<Snapshot> {
        Store::snapshot_filtered(self.as_ref(), filter).await
    }

    fn watch(&self, after: Revision, filter: Filter) -> Changes {
        Changes::Store(Watch::filtered(self.clone(), after, filter))
    }

    async fn get(&self, table: &str, id: &str) -> Result<Option<Record>> {
        Store::get(self.as_ref(), table, id).await
    }
}

#[async_trait::async_trait]
impl Source for Remote {
    async fn snapshot(&self, filter: &Filter) -> Result<Snapshot> {
        Remote::snapshot(self, filter).await
    }

    fn watch(&self, after: Revision, filter: Filter) -> Changes {
        Changes::Remote(Remote::watch(self, after, filter))
    }

    async fn get(&self, table: &str, id: &str) -> Result<Option<Record>> {
        Remote::get(self, table, id).await
    }

    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Record>>> {
        Remote::get_many(self, keys).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_filter_admits_its_tables_and_topics_and_every_topicless_object() {
        let f = Filter::new(&set(&["port", "chassis"]), &set(&["n1"]));
        assert!(f.admits("port", Some("n1")));
        assert!(!f.admits("port", Some("n2")));
        assert!(!f.admits("router", Some("n1")));
        assert!(f.admits("chassis", None));
        assert!(Filter::all().admits("anything", Some("any")));
        let none = Filter::new(&set(&["port"]), &set(&[]));
        assert!(!none.admits("port", Some("n1")) && none.admits("port", None));
    }

    #[test]
    fn a_filter_goes_through_its_query_string_unchanged() {
        for f in [
            Filter::all(),
            Filter::new(&set(&["port", "network"]), &set(&["a", "b"])),
            Filter::new(&set(&["port"]), &set(&[])),
        ] {
            let (back, after) = Filter::from_query(&f.to_query(), false).unwrap();
            assert_eq!((back, after), (f.clone(), None), "{}", f.to_query());
        }
        let (_, after) = Filter::from_query("after=7&tables=port", true).unwrap();
        assert_eq!(after, Some(7));
        assert!(Filter::from_query("after=7", false).is_err());
        assert!(Filter::from_query("after=x", true).is_err());
        assert!(Filter::from_query("bogus=1", true).is_err());
    }

    #[test]
    fn changes_and_records_go_through_the_wire_unchanged() {
        let c = Change {
            revision: 9,
            table: "port".into(),
            id: "p".into(),
            topic: Some("n".into()),
            value: Some(br#"{"a":1}"#.to_vec()),
        };
        assert_eq!(wire::parse(&wire::change(&c).unwrap()).unwrap(), c);
        let gone = Change {
            value: None,
            ..c.clone()
        };
        assert_eq!(wire::parse(&wire::change(&gone).unwrap()).unwrap(), gone);
        let r = wire::into_record(c.clone());
        assert_eq!(
            wire::into_record(wire::parse(&wire::record(&r).unwrap()).unwrap()),
            r
        );
        // The raw form reads back as the parsed one.
        let raw = serde_json::to_value(wire::raw_record(&r).unwrap()).unwrap();
        assert_eq!(raw, wire::record(&r).unwrap());
        assert!(
            wire::raw_record(&Record {
                value: b"{".to_vec(),
                ..r.clone()
            })
            .is_none()
        );
        // A value that is not JSON is left out, not sent broken.
        let bad = Change {
            value: Some(b"\xff".to_vec()),
            ..c
        };
        assert_eq!(wire::change(&bad), None);
    }
}
