//! The database schema as far as a client needs it (RFC 7047 section 3.2): tables, and for
//! each column its type (key/value atomic types, min/max), to fill in default values omitted
//! by `update2` and to apply `update2` "modify" diffs, whose meaning depends on the type.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::value::{Atom, Uuid, Value};

/// An atomic type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicType {
    /// `integer`
    Integer,
    /// `real`
    Real,
    /// `boolean`
    Boolean,
    /// `string`
    String,
    /// `uuid`
    Uuid,
}

impl AtomicType {
    fn parse(j: &Json) -> Result<AtomicType> {
        // A base type is either the bare name or an object with a "type" member.
        let name = match j {
            Json::String(s) => s.as_str(),
            Json::Object(o) => o.get("type").and_then(Json::as_str).unwrap_or(""),
            _ => "",
        };
        Ok(match name {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            _ => return Err(Error::Schema(format!("bad base type {j}"))),
        })
    }

    /// The default atom of this type (0, 0.0, false, "", all-zero uuid).
    pub fn default_atom(self) -> Atom {
        match self {
            AtomicType::Integer => Atom::Integer(0),
            AtomicType::Real => Atom::Real(0.0),
            AtomicType::Boolean => Atom::Boolean(false),
            AtomicType::String => Atom::String(String::new()),
            AtomicType::Uuid => Atom::Uuid(Uuid::nil()),
        }
    }
}

/// A column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// Type of the key (or of the single atom / set elements).
    pub key: AtomicType,
    /// Type of map values; `Some` makes the column a map.
    pub value: Option<AtomicType>,
    /// Minimum number of elements (0 or 1).
    pub min: u64,
    /// Maximum number of elements; `None` for `"unlimited"`.
    pub max: Option<u64>,
}

impl ColumnType {
    fn parse(j: &Json) -> Result<ColumnType> {
        if let Json::String(_) = j {
            return Ok(ColumnType {
                key: AtomicType::parse(j)?,
                value: None,
                min: 1,
                max: Some(1),
            });
        }
        let o = j
            .as_object()
            .ok_or_else(|| Error::Schema(format!("bad column type {j}")))?;
        let key = AtomicType::parse(o.get("key").unwrap_or(&Json::Null))?;
        let value = o.get("value").map(AtomicType::parse).transpose()?;
        let min = o.get("min").and_then(Json::as_u64).unwrap_or(1);
        let max = match o.get("max") {
            None => Some(1),
            Some(Json::String(s)) if s == "unlimited" => None,
            Some(m) => Some(
                m.as_u64()
                    .ok_or_else(|| Error::Schema(format!("bad max {m}")))?,
            ),
        };
        Ok(ColumnType {
            key,
            value,
            min,
            max,
        })
    }

    /// True for map columns.
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }

    /// True when the column holds at most one element (scalar or optional): an `update2`
    /// modify then carries the new value rather than a difference.
    pub fn is_single(&self) -> bool {
        !self.is_map() && self.max == Some(1)
    }

    /// The column's default value: the default atom for a required scalar, else empty.
    pub fn default_value(&self) -> Value {
        if self.is_map() {
            Value::Map(BTreeMap::new())
        } else if self.min == 1 && self.max == Some(1) {
            Value::Atom(self.key.default_atom())
        } else {
            Value::empty_set()
        }
    }
}

/// One table: its columns by name (not including `_uuid` and `_version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// Column types.
    pub columns: BTreeMap<String, ColumnType>,
    /// Root tables keep unreferenced rows; others are garbage-collected.
    pub is_root: bool,
}

/// A database schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Database name, e.g. `Open_vSwitch`.
    pub name: String,
    /// Schema version string.
    pub version: String,
    /// Tables by name.
    pub tables: BTreeMap<String, TableSchema>,
}

impl Schema {
    /// Decodes the result of `get_schema`.
    pub fn from_json(j: &Json) -> Result<Schema> {
        let name = j
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| Error::Schema("schema without name".into()))?
            .to_string();
        let version = j
            .get("version")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let mut tables = BTreeMap::new();
        let ts = j
            .get("tables")
            .and_then(Json::as_object)
            .ok_or_else(|| Error::Schema("schema without tables".into()))?;
        for (tname, t) in ts {
            let mut columns = BTreeMap::new();
            let cs = t
                .get("columns")
                .and_then(Json::as_object)
                .ok_or_else(|| Error::Schema(format!("table {tname} without columns")))?;
            for (cname, c) in cs {
                let ty = c
                    .get("type")
                    .ok_or_else(|| Error::Schema(format!("column {tname}.{cname} untyped")))?;
                columns.insert(cname.clone(), ColumnType::parse(ty)?);
            }
            let is_root = t.get("isRoot").and_then(Json::as_bool).unwrap_or(false);
            tables.insert(tname.clone(), TableSchema { columns, is_root });
        }
        Ok(Schema {
            name,
            version,
            tables,
        })
    }

    /// The type of `table.column`.
    pub fn column(&self, table: &str, column: &str) -> Option<&ColumnType> {
        self.tables.get(table)?.columns.get(column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_installed_vswitch_schema() {
        let text = std::fs::read_to_string("/usr/share/openvswitch/vswitch.ovsschema");
        let Ok(text) = text else {
            // The schema file comes with Open vSwitch; without it there is nothing to read.
            eprintln!("SKIP: no vswitch.ovsschema");
            return;
        };
        let j: Json = serde_json::from_str(&text).expect("json");
        let s = Schema::from_json(&j).expect("schema");
        assert_eq!(s.name, "Open_vSwitch");
        let ofport = s.column("Interface", "ofport").expect("ofport");
        assert!(ofport.is_single() && ofport.min == 0);
        assert_eq!(ofport.default_value(), Value::empty_set());
        let name = s.column("Interface", "name").expect("name");
        assert_eq!(name.default_value(), Value::string(""));
        let ext = s.column("Interface", "external_ids").expect("ext");
        assert!(ext.is_map());
        let ports = s.column("Bridge", "ports").expect("ports");
        assert_eq!(ports.max, None);
        assert!(s.tables["Open_vSwitch"].is_root);
        assert!(!s.tables["Port"].is_root);
    }
}
