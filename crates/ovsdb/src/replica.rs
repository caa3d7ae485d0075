//! The local replica of monitored tables and the decoding of monitor updates into typed
//! row changes: `<table-updates>` (`monitor`, old/new) and `<table-updates2>` (`monitor_cond`,
//! initial/insert/modify/delete, where "modify" carries a difference whose meaning depends on
//! the column type, see ovsdb-server(7)). Pure data, no I/O, so it is tested on literal JSON.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::schema::{ColumnType, Schema};
use crate::value::{Row, Uuid, Value, row_from_json};

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The row appeared.
    Insert,
    /// Some monitored column changed.
    Modify,
    /// The row went away.
    Delete,
}

/// One row change, with full rows (all monitored columns) before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    /// Table name.
    pub table: String,
    /// Row uuid.
    pub uuid: Uuid,
    /// Insert, modify or delete.
    pub kind: ChangeKind,
    /// The row before (modify, delete).
    pub old: Option<Row>,
    /// The row after (insert, modify).
    pub new: Option<Row>,
}

/// Rows of the monitored tables, by table then uuid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replica {
    tables: BTreeMap<String, BTreeMap<Uuid, Row>>,
}

/// Which columns a table's monitor covers (`None`: all of the schema's).
pub type MonitoredColumns = BTreeMap<String, Option<Vec<String>>>;

impl Replica {
    /// An empty replica.
    pub fn new() -> Replica {
        Replica::default()
    }

    /// The rows of `table`.
    pub fn table(&self, table: &str) -> Option<&BTreeMap<Uuid, Row>> {
        self.tables.get(table)
    }

    /// One row.
    pub fn row(&self, table: &str, uuid: &Uuid) -> Option<&Row> {
        self.tables.get(table)?.get(uuid)
    }

    /// All rows, by table.
    pub fn tables(&self) -> &BTreeMap<String, BTreeMap<Uuid, Row>> {
        &self.tables
    }

    /// Number of rows over all tables.
    pub fn len(&self) -> usize {
        self.tables.values().map(BTreeMap::len).sum()
    }

    /// True when no row is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes `table` present (empty) so that it is listed even with no rows.
    pub fn ensure_table(&mut self, table: &str) {
        self.tables.entry(table.to_string()).or_default();
    }

    fn set(&mut self, table: &str, uuid: Uuid, row: Option<Row>) -> Option<Row> {
        let t = self.tables.entry(table.to_string()).or_default();
        match row {
            Some(r) => t.insert(uuid, r),
            None => t.remove(&uuid),
        }
    }

    /// Replaces the whole content with `other` and returns the changes that turn the old
    /// content into the new one (used after a reconnect so consumers see only differences).
    pub fn replace_with(&mut self, other: Replica) -> Vec<RowChange> {
        let mut changes = Vec::new();
        let names: std::collections::BTreeSet<String> = self
            .tables
            .keys()
            .chain(other.tables.keys())
            .cloned()
            .collect();
        let empty = BTreeMap::new();
        for name in names {
            let old = self.tables.get(&name).unwrap_or(&empty);
            let new = other.tables.get(&name).unwrap_or(&empty);
            for (u, o) in old {
                match new.get(u) {
                    None => changes.push(RowChange {
                        table: name.clone(),
                        uuid: u.clone(),
                        kind: ChangeKind::Delete,
                        old: Some(o.clone()),
                        new: None,
                    }),
                    Some(n) if n != o => changes.push(RowChange {
                        table: name.clone(),
                        uuid: u.clone(),
                        kind: ChangeKind::Modify,
                        old: Some(o.clone()),
                        new: Some(n.clone()),
                    }),
                    Some(_) => {}
                }
            }
            for (u, n) in new {
                if !old.contains_key(u) {
                    changes.push(RowChange {
                        table: name.clone(),
                        uuid: u.clone(),
                        kind: ChangeKind::Insert,
                        old: None,
                        new: Some(n.clone()),
                    });
                }
            }
        }
        self.tables = other.tables;
        changes
    }

    /// Applies `<table-updates>` (method `update`, reply of `monitor`).
    pub fn apply_update(
        &mut self,
        schema: &Schema,
        cols: &MonitoredColumns,
        updates: &Json,
    ) -> Result<Vec<RowChange>> {
        let mut changes = Vec::new();
        for (table, rows) in objects(updates, "table-updates")? {
            for (uuid, ru) in objects(rows, "table-update")? {
                let uuid = Uuid::parse(uuid)?;
                let old_json = ru.get("old").filter(|j| !j.is_null());
                let new_json = ru.get("new").filter(|j| !j.is_null());
                let prev = self.row(table, &uuid).cloned();
                match (new_json, prev) {
                    (None, prev) => {
                        // A delete: prefer what we held, else what the server sent as old.
                        let old = match prev {
                            Some(p) => Some(p),
                            None => old_json.map(row_from_json).transpose()?,
                        };
                        self.set(table, uuid.clone(), None);
                        changes.push(RowChange {
                            table: table.clone(),
                            uuid,
                            kind: ChangeKind::Delete,
                            old,
                            new: None,
                        });
                    }
                    (Some(n), prev) => {
                        let mut row = prev
                            .clone()
                            .unwrap_or_else(|| defaults(schema, cols, table));
                        row.extend(row_from_json(n)?);
                        self.set(table, uuid.clone(), Some(row.clone()));
                        let kind = if prev.is_some() {
                            ChangeKind::Modify
                        } else {
                            ChangeKind::Insert
                        };
                        changes.push(RowChange {
                            table: table.clone(),
                            uuid,
                            kind,
                            old: prev,
                            new: Some(row),
                        });
                    }
                }
            }
        }
        Ok(changes)
    }

    /// Applies `<table-updates2>` (method `update2`, reply of `monitor_cond`).
    pub fn apply_update2(
        &mut self,
        schema: &Schema,
        cols: &MonitoredColumns,
        updates: &Json,
    ) -> Result<Vec<RowChange>> {
        let mut changes = Vec::new();
        for (table, rows) in objects(updates, "table-updates2")? {
            for (uuid, ru) in objects(rows, "table-update2")? {
                let uuid = Uuid::parse(uuid)?;
                let o = ru
                    .as_object()
                    .ok_or_else(|| Error::Protocol(format!("bad row-update2 {ru}")))?;
                let prev = self.row(table, &uuid).cloned();
                if let Some(r) = o.get("initial").or_else(|| o.get("insert")) {
                    let mut row = defaults(schema, cols, table);
                    row.extend(row_from_json(r)?);
                    self.set(table, uuid.clone(), Some(row.clone()));
                    changes.push(RowChange {
                        table: table.clone(),
                        uuid,
                        kind: if prev.is_some() {
                            ChangeKind::Modify
                        } else {
                            ChangeKind::Insert
                        },
                        old: prev,
                        new: Some(row),
                    });
                } else if let Some(diff) = o.get("modify") {
                    let Some(old) = prev else {
                        return Err(Error::Protocol(format!(
                            "modify of unknown row {table} {uuid}"
                        )));
                    };
                    let mut row = old.clone();
                    for (col, d) in row_from_json(diff)? {
                        let ty = schema.column(table, &col);
                        let cur = row.remove(&col);
                        row.insert(col, apply_diff(ty, cur, d));
                    }
                    self.set(table, uuid.clone(), Some(row.clone()));
                    changes.push(RowChange {
                        table: table.clone(),
                        uuid,
                        kind: ChangeKind::Modify,
                        old: Some(old),
                        new: Some(row),
                    });
                } else if o.contains_key("delete") {
                    self.set(table, uuid.clone(), None);
                    changes.push(RowChange {
                        table: table.clone(),
                        uuid,
                        kind: ChangeKind::Delete,
                        old: prev,
                        new: None,
                    });
                } else {
                    return Err(Error::Protocol(format!("bad row-update2 {ru}")));
                }
            }
        }
        Ok(changes)
    }
}

fn objects<'a>(j: &'a Json, what: &str) -> Result<&'a serde_json::Map<String, Json>> {
    j.as_object()
        .ok_or_else(|| Error::Protocol(format!("{what} is not an object")))
}

/// A row with every monitored column at its default (update2 omits default values).
fn defaults(schema: &Schema, cols: &MonitoredColumns, table: &str) -> Row {
    let Some(t) = schema.tables.get(table) else {
        return Row::new();
    };
    match cols.get(table).and_then(Option::as_ref) {
        Some(names) => names
            .iter()
            .filter_map(|c| Some((c.clone(), t.columns.get(c)?.default_value())))
            .collect(),
        None => t
            .columns
            .iter()
            .map(|(c, ty)| (c.clone(), ty.default_value()))
            .collect(),
    }
}

/// Applies an update2 "modify" difference to a column value.
fn apply_diff(ty: Option<&ColumnType>, cur: Option<Value>, diff: Value) -> Value {
    match (ty, cur) {
        // Single-valued columns (and columns we know nothing about) carry the new value.
        (None, _) | (_, None) => diff,
        (Some(t), Some(_)) if t.is_single() => diff,
        (Some(t), Some(cur)) if t.is_map() => {
            let mut m = match cur {
                Value::Map(m) => m,
                _ => BTreeMap::new(),
            };
            if let Value::Map(d) = diff {
                for (k, v) in d {
                    // Same pair present: removed. Key absent or other value: set to v.
                    if m.get(&k) == Some(&v) {
                        m.remove(&k);
                    } else {
                        m.insert(k, v);
                    }
                }
            }
            Value::Map(m)
        }
        (Some(_), Some(cur)) => {
            // Sets: symmetric difference.
            let mut s: std::collections::BTreeSet<_> =
                cur.elements().into_iter().cloned().collect();
            for a in diff.elements() {
                if !s.remove(a) {
                    s.insert(a.clone());
                }
            }
            Value::Set(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const U1: &str = "11111111-1111-1111-1111-111111111111";
    const U2: &str = "22222222-2222-2222-2222-222222222222";

    fn schema() -> Schema {
        Schema::from_json(&json!({
            "name": "T", "version": "1",
            "tables": {"Interface": {"columns": {
                "name": {"type": "string"},
                "ofport": {"type": {"key": "integer", "min": 0, "max": 1}},
                "external_ids": {"type": {"key": "string", "value": "string",
                                          "min": 0, "max": "unlimited"}},
                "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}}
            }}}
        }))
        .expect("schema")
    }

    fn all() -> MonitoredColumns {
        [("Interface".to_string(), None)].into_iter().collect()
    }

    #[test]
    fn update2_initial_modify_delete() {
        let s = schema();
        let mut r = Replica::new();
        let ch = r
            .apply_update2(
                &s,
                &all(),
                &json!({"Interface": {
                U1: {"initial": {"name": "p1", "tags": ["set", ["a", "b"]],
                                 "external_ids": ["map", [["iface-id", "x"], ["k", "v"]]]}}}}),
            )
            .expect("initial");
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].kind, ChangeKind::Insert);
        let u1 = Uuid::parse(U1).expect("u");
        let row = r.row("Interface", &u1).expect("row");
        // Omitted columns take their defaults.
        assert_eq!(row["ofport"], Value::empty_set());

        let ch = r
            .apply_update2(&s, &all(), &json!({"Interface": {
                U1: {"modify": {"ofport": 3, "tags": ["set", ["b", "c"]],
                                "external_ids": ["map", [["iface-id", "y"], ["k", "v"], ["n", "1"]]]}}}}))
            .expect("modify");
        assert_eq!(ch[0].kind, ChangeKind::Modify);
        let row = r.row("Interface", &u1).expect("row");
        assert_eq!(row["ofport"], Value::from(3i64));
        assert_eq!(row["tags"], Value::set(["a", "c"]));
        assert_eq!(
            row["external_ids"],
            Value::string_map([("iface-id", "y"), ("n", "1")])
        );
        assert_eq!(
            ch[0].old.as_ref().map(|o| o["ofport"].clone()),
            Some(Value::empty_set())
        );

        let ch = r
            .apply_update2(&s, &all(), &json!({"Interface": {U1: {"delete": null}}}))
            .expect("delete");
        assert_eq!(ch[0].kind, ChangeKind::Delete);
        assert_eq!(
            ch[0].old.as_ref().map(|o| o["name"].clone()),
            Some(Value::from("p1"))
        );
        assert!(r.is_empty());

        // A modify of a row never seen is a protocol error, not a panic.
        assert!(
            r.apply_update2(&s, &all(), &json!({"Interface": {U2: {"modify": {}}}}))
                .is_err()
        );
        assert!(r.apply_update2(&s, &all(), &json!([1])).is_err());
        assert!(
            r.apply_update2(
                &s,
                &all(),
                &json!({"Interface": {"not-a-uuid": {"delete": null}}})
            )
            .is_err()
        );
    }

    #[test]
    fn update_old_new_and_resync_diff() {
        let s = schema();
        let mut r = Replica::new();
        r.apply_update(
            &s,
            &all(),
            &json!({"Interface": {
            U1: {"new": {"name": "p1", "ofport": ["set", []]}},
            U2: {"new": {"name": "p2"}}}}),
        )
        .expect("insert");
        let ch = r
            .apply_update(
                &s,
                &all(),
                &json!({"Interface": {
                U1: {"old": {"ofport": ["set", []]}, "new": {"name": "p1", "ofport": 5}}}}),
            )
            .expect("modify");
        assert_eq!(ch[0].kind, ChangeKind::Modify);
        assert_eq!(
            ch[0].new.as_ref().map(|n| n["ofport"].clone()),
            Some(Value::from(5i64))
        );

        // Resync: p2 vanished, p1 changed, p3 appeared.
        let mut fresh = Replica::new();
        fresh
            .apply_update(
                &s,
                &all(),
                &json!({"Interface": {
                U1: {"new": {"name": "p1", "ofport": 6}},
                "33333333-3333-3333-3333-333333333333": {"new": {"name": "p3"}}}}),
            )
            .expect("fresh");
        let ch = r.replace_with(fresh.clone());
        let kinds: Vec<_> = ch.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            vec![ChangeKind::Modify, ChangeKind::Delete, ChangeKind::Insert]
        );
        assert_eq!(r, fresh);
        assert!(r.replace_with(fresh).is_empty());
    }
}
