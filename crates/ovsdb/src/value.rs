//! Typed OVSDB values (RFC 7047 section 5.1) and their JSON wire forms.
//!
//! An [`Atom`] is an integer, real, boolean, string, uuid or named-uuid; a [`Value`] is an atom,
//! a set of atoms or a map between atoms. Sets and maps are kept sorted (`BTreeSet`/`BTreeMap`)
//! so that equality is set equality whatever order the server used. On the wire a set of one
//! element may be sent as the bare atom; [`Value`]'s `PartialEq` treats the two as equal.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Value as Json, json};

/// Error decoding a value from JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad OVSDB value: {0}")]
pub struct ValueError(pub String);

/// A row UUID in its canonical text form (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower case).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(String);

impl Uuid {
    /// Parses the canonical 36-character form (any case).
    pub fn parse(s: &str) -> Result<Uuid, ValueError> {
        let ok = s.len() == 36
            && s.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        if ok {
            Ok(Uuid(s.to_ascii_lowercase()))
        } else {
            Err(ValueError(format!("not a uuid: {s:?}")))
        }
    }

    /// The all-zero uuid (the default of uuid columns).
    pub fn nil() -> Uuid {
        Uuid("00000000-0000-0000-0000-000000000000".to_string())
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One OVSDB atom.
#[derive(Debug, Clone)]
pub enum Atom {
    /// 64-bit integer.
    Integer(i64),
    /// Real (never NaN on a valid wire: JSON has no NaN).
    Real(f64),
    /// Boolean.
    Boolean(bool),
    /// UTF-8 string.
    String(String),
    /// Reference to a row by UUID.
    Uuid(Uuid),
    /// Reference to a row inserted earlier in the same transaction (`uuid-name`).
    NamedUuid(String),
}

impl Atom {
    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) => 3,
            Atom::Uuid(_) => 4,
            Atom::NamedUuid(_) => 5,
        }
    }

    /// A string atom.
    pub fn string(s: impl Into<String>) -> Atom {
        Atom::String(s.into())
    }

    /// The string, if this is a string atom.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer atom.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The uuid, if this is a uuid atom.
    pub fn as_uuid(&self) -> Option<&Uuid> {
        match self {
            Atom::Uuid(u) => Some(u),
            _ => None,
        }
    }

    /// The JSON wire form.
    pub fn to_json(&self) -> Json {
        match self {
            Atom::Integer(i) => json!(i),
            Atom::Real(r) => json!(r),
            Atom::Boolean(b) => json!(b),
            Atom::String(s) => json!(s),
            Atom::Uuid(u) => json!(["uuid", u.as_str()]),
            Atom::NamedUuid(n) => json!(["named-uuid", n]),
        }
    }

    /// Decodes an atom from its wire form.
    pub fn from_json(j: &Json) -> Result<Atom, ValueError> {
        match j {
            Json::Bool(b) => Ok(Atom::Boolean(*b)),
            Json::String(s) => Ok(Atom::String(s.clone())),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Atom::Integer(i))
                } else if n.is_u64() {
                    Err(ValueError(format!("integer out of range: {n}")))
                } else {
                    n.as_f64()
                        .map(Atom::Real)
                        .ok_or_else(|| ValueError(format!("bad number {n}")))
                }
            }
            Json::Array(a) => match a.as_slice() {
                [Json::String(tag), Json::String(s)] if tag == "uuid" => {
                    Ok(Atom::Uuid(Uuid::parse(s)?))
                }
                [Json::String(tag), Json::String(s)] if tag == "named-uuid" => {
                    Ok(Atom::NamedUuid(s.clone()))
                }
                _ => Err(ValueError(format!("not an atom: {j}"))),
            },
            _ => Err(ValueError(format!("not an atom: {j}"))),
        }
    }
}

impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Atom {}
impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            (Atom::Real(a), Atom::Real(b)) => a.total_cmp(b),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            (Atom::String(a), Atom::String(b)) => a.cmp(b),
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Atom {
        Atom::String(s.to_string())
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Atom {
        Atom::String(s)
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Atom {
        Atom::Integer(i)
    }
}
impl From<bool> for Atom {
    fn from(b: bool) -> Atom {
        Atom::Boolean(b)
    }
}
impl From<Uuid> for Atom {
    fn from(u: Uuid) -> Atom {
        Atom::Uuid(u)
    }
}

/// An OVSDB value: a single atom, a set or a map.
#[derive(Debug, Clone)]
pub enum Value {
    /// A bare atom (also how the server sends a set of exactly one element).
    Atom(Atom),
    /// A set of atoms.
    Set(BTreeSet<Atom>),
    /// A map from key atoms to value atoms.
    Map(BTreeMap<Atom, Atom>),
}

impl Value {
    /// The empty set (the value of an empty optional or set column).
    pub fn empty_set() -> Value {
        Value::Set(BTreeSet::new())
    }

    /// A string atom.
    pub fn string(s: impl Into<String>) -> Value {
        Value::Atom(Atom::String(s.into()))
    }

    /// A set from atoms.
    pub fn set<A: Into<Atom>>(items: impl IntoIterator<Item = A>) -> Value {
        Value::Set(items.into_iter().map(Into::into).collect())
    }

    /// A string-to-string map (e.g. `external_ids`, `options`, `other_config`).
    pub fn string_map<K: Into<String>, V: Into<String>>(
        items: impl IntoIterator<Item = (K, V)>,
    ) -> Value {
        Value::Map(
            items
                .into_iter()
                .map(|(k, v)| (Atom::String(k.into()), Atom::String(v.into())))
                .collect(),
        )
    }

    /// The elements, seeing a bare atom as a one-element set and a map as empty.
    pub fn elements(&self) -> Vec<&Atom> {
        match self {
            Value::Atom(a) => vec![a],
            Value::Set(s) => s.iter().collect(),
            Value::Map(_) => Vec::new(),
        }
    }

    /// The single atom of a scalar or one-element set.
    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            Value::Atom(a) => Some(a),
            Value::Set(s) if s.len() == 1 => s.iter().next(),
            _ => None,
        }
    }

    /// The string of a scalar (or one-element set) string.
    pub fn as_str(&self) -> Option<&str> {
        self.as_atom().and_then(Atom::as_str)
    }

    /// The integer of a scalar (or one-element set) integer.
    pub fn as_integer(&self) -> Option<i64> {
        self.as_atom().and_then(Atom::as_integer)
    }

    /// The uuids held (scalar or set).
    pub fn uuids(&self) -> Vec<&Uuid> {
        self.elements()
            .into_iter()
            .filter_map(Atom::as_uuid)
            .collect()
    }

    /// The string elements held (scalar or set).
    pub fn strings(&self) -> Vec<&str> {
        self.elements()
            .into_iter()
            .filter_map(Atom::as_str)
            .collect()
    }

    /// A string-to-string map, skipping non-string pairs (empty for non-maps).
    pub fn as_string_map(&self) -> BTreeMap<String, String> {
        match self {
            Value::Map(m) => m
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// The JSON wire form (a set is always sent in its `["set",[...]]` form).
    pub fn to_json(&self) -> Json {
        match self {
            Value::Atom(a) => a.to_json(),
            Value::Set(s) => json!(["set", s.iter().map(Atom::to_json).collect::<Vec<_>>()]),
            Value::Map(m) => json!([
                "map",
                m.iter()
                    .map(|(k, v)| json!([k.to_json(), v.to_json()]))
                    .collect::<Vec<_>>()
            ]),
        }
    }

    /// Decodes a value from its wire form.
    pub fn from_json(j: &Json) -> Result<Value, ValueError> {
        if let Json::Array(a) = j {
            match a.as_slice() {
                [Json::String(tag), Json::Array(items)] if tag == "set" => {
                    return items
                        .iter()
                        .map(Atom::from_json)
                        .collect::<Result<_, _>>()
                        .map(Value::Set);
                }
                [Json::String(tag), Json::Array(pairs)] if tag == "map" => {
                    let mut m = BTreeMap::new();
                    for p in pairs {
                        match p.as_array().map(Vec::as_slice) {
                            Some([k, v]) => {
                                m.insert(Atom::from_json(k)?, Atom::from_json(v)?);
                            }
                            _ => return Err(ValueError(format!("bad map pair: {p}"))),
                        }
                    }
                    return Ok(Value::Map(m));
                }
                _ => {}
            }
        }
        Atom::from_json(j).map(Value::Atom)
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Atom(a), Value::Atom(b)) => a == b,
            (Value::Set(a), Value::Set(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::Atom(a), Value::Set(s)) | (Value::Set(s), Value::Atom(a)) => {
                s.len() == 1 && s.iter().next() == Some(a)
            }
            // An empty map and an empty set are the same empty wire value.
            (Value::Map(m), Value::Set(s)) | (Value::Set(s), Value::Map(m)) => {
                m.is_empty() && s.is_empty()
            }
            _ => false,
        }
    }
}

impl From<Atom> for Value {
    fn from(a: Atom) -> Value {
        Value::Atom(a)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::string(s)
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::string(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Atom(Atom::Integer(i))
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Atom(Atom::Boolean(b))
    }
}
impl From<Uuid> for Value {
    fn from(u: Uuid) -> Value {
        Value::Atom(Atom::Uuid(u))
    }
}

/// A row: column name to value (only the columns that were sent or selected).
pub type Row = BTreeMap<String, Value>;

/// Encodes a row to its wire form.
pub fn row_to_json(row: &Row) -> Json {
    Json::Object(row.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// Decodes a row from its wire form.
pub fn row_from_json(j: &Json) -> Result<Row, ValueError> {
    let obj = j
        .as_object()
        .ok_or_else(|| ValueError(format!("row is not an object: {j}")))?;
    obj.iter()
        .map(|(k, v)| Ok((k.clone(), Value::from_json(v)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const U: &str = "36bd7e32-9a3c-4d43-a7ee-ef7a5e50b46c";

    #[test]
    fn wire_forms_from_rfc() {
        let u = Uuid::parse(U).expect("uuid");
        assert_eq!(Atom::Uuid(u.clone()).to_json(), json!(["uuid", U]));
        assert_eq!(
            Atom::NamedUuid("row1".into()).to_json(),
            json!(["named-uuid", "row1"])
        );
        assert_eq!(Value::set([1i64, 2]).to_json(), json!(["set", [1, 2]]));
        assert_eq!(
            Value::string_map([("iface-id", "p1")]).to_json(),
            json!(["map", [["iface-id", "p1"]]])
        );
        assert_eq!(Value::empty_set().to_json(), json!(["set", []]));
        assert_eq!(
            Value::from_json(&json!(["set", [["uuid", U]]])).expect("set"),
            Value::from(u)
        );
    }

    #[test]
    fn bad_wire_forms_are_errors() {
        for j in [
            json!(null),
            json!({}),
            json!(["uuid", "nope"]),
            json!(["set", [[1, 2]]]),
            json!(["map", [[1]]]),
            json!(["map", 3]),
            json!(18446744073709551615u64),
            json!(["frob", 1]),
        ] {
            assert!(Value::from_json(&j).is_err(), "{j}");
        }
    }

    #[test]
    fn set_equality_ignores_order_and_singleton_form() {
        let a = Value::from_json(&json!(["set", ["b", "a"]])).expect("a");
        let b = Value::from_json(&json!(["set", ["a", "b"]])).expect("b");
        assert_eq!(a, b);
        assert_eq!(Value::from("x"), Value::set(["x"]));
        assert_ne!(Value::from("x"), Value::set(["x", "y"]));
        assert_eq!(Value::empty_set(), Value::Map(BTreeMap::new()));
    }

    fn atom() -> impl Strategy<Value = Atom> {
        prop_oneof![
            any::<i64>().prop_map(Atom::Integer),
            (-1e12f64..1e12).prop_map(Atom::Real),
            any::<bool>().prop_map(Atom::Boolean),
            ".{0,12}".prop_map(Atom::String),
            any::<u128>().prop_map(|n| {
                let h = format!("{n:032x}");
                Atom::Uuid(
                    Uuid::parse(&format!(
                        "{}-{}-{}-{}-{}",
                        &h[0..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..32]
                    ))
                    .expect("uuid"),
                )
            }),
            "[a-z][a-z0-9_]{0,8}".prop_map(Atom::NamedUuid),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            atom().prop_map(Value::Atom),
            proptest::collection::btree_set(atom(), 0..6).prop_map(Value::Set),
            proptest::collection::btree_map(atom(), atom(), 0..6).prop_map(Value::Map),
        ]
    }

    proptest! {
        #[test]
        fn value_round_trips(v in value()) {
            let j = v.to_json();
            let text = serde_json::to_string(&j).expect("encode");
            let back: Json = serde_json::from_str(&text).expect("decode text");
            prop_assert_eq!(Value::from_json(&back).expect("decode value"), v);
        }

        #[test]
        fn arbitrary_json_never_panics(s in "[\\[\\]\"a-z0-9,.:{}-]{0,40}") {
            if let Ok(j) = serde_json::from_str::<Json>(&s) {
                let _ = Value::from_json(&j);
                let _ = row_from_json(&j);
            }
        }
    }
}
