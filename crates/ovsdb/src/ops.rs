//! Typed `transact` operations (RFC 7047 section 5.2) and decoding of their results.
//!
//! A transaction is a list of [`Operation`]s applied atomically. The reply has one result per
//! operation; when one fails, its result holds the error and the following are `null`. An
//! extra result after the last operation reports a commit-time error (e.g. a referential
//! integrity violation). [`decode_results`] turns both into [`Error::Transaction`].

use serde_json::{Map, Value as Json, json};

use crate::error::{Error, OvsdbError, Result};
use crate::value::{Row, Uuid, Value, row_from_json, row_to_json};

/// A condition function (RFC 7047 5.1, `<function>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `includes`
    Includes,
    /// `excludes`
    Excludes,
}

impl Function {
    fn as_str(self) -> &'static str {
        match self {
            Function::Lt => "<",
            Function::Le => "<=",
            Function::Eq => "==",
            Function::Ne => "!=",
            Function::Ge => ">=",
            Function::Gt => ">",
            Function::Includes => "includes",
            Function::Excludes => "excludes",
        }
    }
}

/// A condition `[column, function, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Column name (`_uuid` included).
    pub column: String,
    /// Comparison.
    pub function: Function,
    /// Value compared with.
    pub value: Value,
}

impl Condition {
    /// `column == value`.
    pub fn eq(column: &str, value: impl Into<Value>) -> Condition {
        Condition {
            column: column.to_string(),
            function: Function::Eq,
            value: value.into(),
        }
    }

    /// `_uuid == uuid`.
    pub fn uuid(uuid: &Uuid) -> Condition {
        Condition::eq("_uuid", uuid.clone())
    }

    /// The wire form.
    pub fn to_json(&self) -> Json {
        json!([self.column, self.function.as_str(), self.value.to_json()])
    }
}

/// A mutator (RFC 7047 5.1, `<mutator>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutator {
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// `/=`
    Div,
    /// `%=`
    Mod,
    /// `insert` (into a set or map)
    Insert,
    /// `delete` (from a set or map; for a map, by key set or by key/value pairs)
    Delete,
}

impl Mutator {
    fn as_str(self) -> &'static str {
        match self {
            Mutator::Add => "+=",
            Mutator::Sub => "-=",
            Mutator::Mul => "*=",
            Mutator::Div => "/=",
            Mutator::Mod => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        }
    }
}

/// A mutation `[column, mutator, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// Column name.
    pub column: String,
    /// What to do.
    pub mutator: Mutator,
    /// Operand.
    pub value: Value,
}

impl Mutation {
    /// A mutation of `column`.
    pub fn new(column: &str, mutator: Mutator, value: impl Into<Value>) -> Mutation {
        Mutation {
            column: column.to_string(),
            mutator,
            value: value.into(),
        }
    }

    /// The wire form.
    pub fn to_json(&self) -> Json {
        json!([self.column, self.mutator.as_str(), self.value.to_json()])
    }
}

/// How a `wait` compares the selected rows with the given ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitUntil {
    /// Until the selected rows equal `rows`.
    Equal,
    /// Until they differ.
    NotEqual,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Inserts a row; `uuid_name` lets later operations refer to it as a named-uuid.
    Insert {
        /// Table name.
        table: String,
        /// Column values (omitted columns take defaults).
        row: Row,
        /// Name usable as `["named-uuid", name]` in this transaction.
        uuid_name: Option<String>,
    },
    /// Selects rows.
    Select {
        /// Table name.
        table: String,
        /// All must hold.
        conditions: Vec<Condition>,
        /// Columns to return (`None`: all).
        columns: Option<Vec<String>>,
    },
    /// Sets columns of matching rows.
    Update {
        /// Table name.
        table: String,
        /// All must hold.
        conditions: Vec<Condition>,
        /// New column values.
        row: Row,
    },
    /// Mutates columns of matching rows.
    Mutate {
        /// Table name.
        table: String,
        /// All must hold.
        conditions: Vec<Condition>,
        /// Mutations applied in order.
        mutations: Vec<Mutation>,
    },
    /// Deletes matching rows.
    Delete {
        /// Table name.
        table: String,
        /// All must hold.
        conditions: Vec<Condition>,
    },
    /// Waits (at most `timeout_ms`; 0 = check once) until the selection compares with `rows`;
    /// used to verify that what was read has not changed before committing.
    Wait {
        /// Table name.
        table: String,
        /// All must hold.
        conditions: Vec<Condition>,
        /// Columns compared.
        columns: Vec<String>,
        /// Comparison.
        until: WaitUntil,
        /// Expected rows (only `columns`).
        rows: Vec<Row>,
        /// Milliseconds; `None` waits forever.
        timeout_ms: Option<u64>,
    },
    /// Commits (optionally durably) at this point.
    Commit {
        /// Wait for the disk.
        durable: bool,
    },
    /// Aborts the transaction (always fails with "aborted").
    Abort,
    /// A comment logged by the server.
    Comment(String),
    /// Asserts that this client owns `lock`.
    Assert {
        /// Lock name.
        lock: String,
    },
}

impl Operation {
    /// An insert without a uuid-name.
    pub fn insert(table: &str, row: Row) -> Operation {
        Operation::Insert {
            table: table.to_string(),
            row,
            uuid_name: None,
        }
    }

    /// An insert that later operations can reference as `["named-uuid", name]`.
    pub fn insert_named(table: &str, row: Row, name: &str) -> Operation {
        Operation::Insert {
            table: table.to_string(),
            row,
            uuid_name: Some(name.to_string()),
        }
    }

    /// A select of `columns` (all when `None`).
    pub fn select(table: &str, conditions: Vec<Condition>, columns: Option<&[&str]>) -> Operation {
        Operation::Select {
            table: table.to_string(),
            conditions,
            columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    /// An update.
    pub fn update(table: &str, conditions: Vec<Condition>, row: Row) -> Operation {
        Operation::Update {
            table: table.to_string(),
            conditions,
            row,
        }
    }

    /// A mutate.
    pub fn mutate(table: &str, conditions: Vec<Condition>, mutations: Vec<Mutation>) -> Operation {
        Operation::Mutate {
            table: table.to_string(),
            conditions,
            mutations,
        }
    }

    /// A delete.
    pub fn delete(table: &str, conditions: Vec<Condition>) -> Operation {
        Operation::Delete {
            table: table.to_string(),
            conditions,
        }
    }

    /// The wire form.
    pub fn to_json(&self) -> Json {
        let conds = |c: &[Condition]| Json::Array(c.iter().map(Condition::to_json).collect());
        let mut o = Map::new();
        let op = match self {
            Operation::Insert {
                table,
                row,
                uuid_name,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("row".into(), row_to_json(row));
                if let Some(n) = uuid_name {
                    o.insert("uuid-name".into(), json!(n));
                }
                "insert"
            }
            Operation::Select {
                table,
                conditions,
                columns,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conds(conditions));
                if let Some(c) = columns {
                    o.insert("columns".into(), json!(c));
                }
                "select"
            }
            Operation::Update {
                table,
                conditions,
                row,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conds(conditions));
                o.insert("row".into(), row_to_json(row));
                "update"
            }
            Operation::Mutate {
                table,
                conditions,
                mutations,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conds(conditions));
                o.insert(
                    "mutations".into(),
                    Json::Array(mutations.iter().map(Mutation::to_json).collect()),
                );
                "mutate"
            }
            Operation::Delete { table, conditions } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conds(conditions));
                "delete"
            }
            Operation::Wait {
                table,
                conditions,
                columns,
                until,
                rows,
                timeout_ms,
            } => {
                if let Some(t) = timeout_ms {
                    o.insert("timeout".into(), json!(t));
                }
                o.insert("table".into(), json!(table));
                o.insert("where".into(), conds(conditions));
                o.insert("columns".into(), json!(columns));
                let until = match until {
                    WaitUntil::Equal => "==",
                    WaitUntil::NotEqual => "!=",
                };
                o.insert("until".into(), json!(until));
                o.insert(
                    "rows".into(),
                    Json::Array(rows.iter().map(row_to_json).collect()),
                );
                "wait"
            }
            Operation::Commit { durable } => {
                o.insert("durable".into(), json!(durable));
                "commit"
            }
            Operation::Abort => "abort",
            Operation::Comment(c) => {
                o.insert("comment".into(), json!(c));
                "comment"
            }
            Operation::Assert { lock } => {
                o.insert("lock".into(), json!(lock));
                "assert"
            }
        };
        o.insert("op".into(), json!(op));
        Json::Object(o)
    }
}

/// The params of a `transact` request on database `db`.
pub fn transact_params(db: &str, ops: &[Operation]) -> Json {
    let mut p = vec![json!(db)];
    p.extend(ops.iter().map(Operation::to_json));
    Json::Array(p)
}

/// The result of one successful operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpResult {
    /// The new row's uuid (insert).
    pub uuid: Option<Uuid>,
    /// The selected rows (select).
    pub rows: Option<Vec<Row>>,
    /// Rows matched (update, mutate, delete).
    pub count: Option<u64>,
}

/// Decodes a `transact` result for `n_ops` operations; the first error becomes
/// [`Error::Transaction`].
pub fn decode_results(n_ops: usize, result: &Json) -> Result<Vec<OpResult>> {
    let arr = result
        .as_array()
        .ok_or_else(|| Error::Protocol(format!("transact result is not an array: {result}")))?;
    // Errors first, so a commit error (extra element) or a failed op is reported even if
    // other elements were malformed.
    for (i, r) in arr.iter().enumerate() {
        if let Some(error) = r.get("error").and_then(|_| OvsdbError::from_json(r)) {
            return Err(Error::Transaction {
                op: (i < n_ops).then_some(i),
                error,
            });
        }
    }
    if arr.len() < n_ops {
        return Err(Error::Protocol(format!(
            "transact returned {} results for {n_ops} operations",
            arr.len()
        )));
    }
    arr.iter()
        .take(n_ops)
        .map(|r| {
            let mut out = OpResult::default();
            if let Some(u) = r.get("uuid") {
                match crate::value::Atom::from_json(u)? {
                    crate::value::Atom::Uuid(u) => out.uuid = Some(u),
                    _ => return Err(Error::Protocol(format!("bad uuid in result: {u}"))),
                }
            }
            if let Some(rows) = r.get("rows") {
                let rows = rows
                    .as_array()
                    .ok_or_else(|| Error::Protocol("rows is not an array".into()))?;
                out.rows = Some(rows.iter().map(row_from_json).collect::<Result<_, _>>()?);
            }
            out.count = r.get("count").and_then(Json::as_u64);
            Ok(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn row(pairs: &[(&str, Value)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn encodes_operations_as_in_rfc7047() {
        let ops = vec![
            Operation::insert_named(
                "Bridge",
                row(&[
                    ("name", Value::from("br0")),
                    (
                        "ports",
                        Value::set([crate::value::Atom::NamedUuid("p".into())]),
                    ),
                ]),
                "br",
            ),
            Operation::select(
                "Bridge",
                vec![Condition::eq("name", "br0")],
                Some(&["_uuid"]),
            ),
            Operation::update(
                "Bridge",
                vec![Condition::eq("name", "br0")],
                row(&[("fail_mode", Value::from("secure"))]),
            ),
            Operation::mutate(
                "Open_vSwitch",
                vec![],
                vec![Mutation::new("next_cfg", Mutator::Add, 1i64)],
            ),
            Operation::delete("Bridge", vec![Condition::eq("name", "br0")]),
            Operation::Wait {
                table: "Bridge".into(),
                conditions: vec![Condition::eq("name", "br0")],
                columns: vec!["name".into()],
                until: WaitUntil::Equal,
                rows: vec![row(&[("name", Value::from("br0"))])],
                timeout_ms: Some(0),
            },
            Operation::Commit { durable: false },
            Operation::Abort,
            Operation::Comment("ovs-vsctl: add-br br0".into()),
            Operation::Assert { lock: "l".into() },
        ];
        let expected = json!(["Open_vSwitch",
            {"op": "insert", "table": "Bridge", "uuid-name": "br",
             "row": {"name": "br0", "ports": ["set", [["named-uuid", "p"]]]}},
            {"op": "select", "table": "Bridge", "where": [["name", "==", "br0"]],
             "columns": ["_uuid"]},
            {"op": "update", "table": "Bridge", "where": [["name", "==", "br0"]],
             "row": {"fail_mode": "secure"}},
            {"op": "mutate", "table": "Open_vSwitch", "where": [],
             "mutations": [["next_cfg", "+=", 1]]},
            {"op": "delete", "table": "Bridge", "where": [["name", "==", "br0"]]},
            {"op": "wait", "timeout": 0, "table": "Bridge", "where": [["name", "==", "br0"]],
             "columns": ["name"], "until": "==", "rows": [{"name": "br0"}]},
            {"op": "commit", "durable": false},
            {"op": "abort"},
            {"op": "comment", "comment": "ovs-vsctl: add-br br0"},
            {"op": "assert", "lock": "l"}
        ]);
        assert_eq!(transact_params("Open_vSwitch", &ops), expected);
    }

    #[test]
    fn decodes_results_and_errors() {
        let u = "36bd7e32-9a3c-4d43-a7ee-ef7a5e50b46c";
        let ok = json!([{"uuid": ["uuid", u]}, {"rows": [{"name": "br0"}]}, {"count": 1}, {}]);
        let r = decode_results(4, &ok).expect("ok");
        assert_eq!(r[0].uuid.as_ref().map(Uuid::as_str), Some(u));
        assert_eq!(r[1].rows.as_ref().map(Vec::len), Some(1));
        assert_eq!(r[2].count, Some(1));

        let failed = json!([{"count": 1},
            {"error": "constraint violation", "details": "bad value"}, null]);
        match decode_results(3, &failed) {
            Err(Error::Transaction { op: Some(1), error }) => {
                assert_eq!(error.kind, ErrorKind::ConstraintViolation);
                assert_eq!(error.details.as_deref(), Some("bad value"));
            }
            other => panic!("unexpected {other:?}"),
        }

        let commit = json!([{"uuid": ["uuid", u]},
            {"error": "referential integrity violation", "details": "x"}]);
        match decode_results(1, &commit) {
            Err(Error::Transaction { op: None, error }) => {
                assert_eq!(error.kind, ErrorKind::ReferentialIntegrityViolation)
            }
            other => panic!("unexpected {other:?}"),
        }

        assert!(matches!(
            decode_results(2, &json!([{}])),
            Err(Error::Protocol(_))
        ));
        assert!(decode_results(1, &json!({"a": 1})).is_err());
        assert!(decode_results(1, &json!([{"uuid": 5}])).is_err());
    }
}
