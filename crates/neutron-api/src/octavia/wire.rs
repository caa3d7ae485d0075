//! Reading Octavia request bodies as its WSME types do: the root key, unknown attributes,
//! types, ranges and mandatory fields, each refused with WSME's 400 wording.

use super::{Fault, FaultResult};
use axum::http::StatusCode;
use ipnet::IpNet;
use serde_json::{Map, Value};
use std::net::IpAddr;

/// The attributes of one request object (`{"<root>": {...}}`), read one by one; whatever
/// is left at [`Body::finish`] is an unknown attribute.
pub struct Body {
    root: &'static str,
    attrs: Map<String, Value>,
}

fn invalid(name: &str, value: &Value, why: &str) -> Fault {
    let shown = match value {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    Fault::new(
        StatusCode::BAD_REQUEST,
        format!("Invalid input for field/attribute {name}. Value: '{shown}'. {why}"),
    )
}

impl Body {
    /// Parses the bytes of a request and takes the object under `root`.
    pub fn parse(bytes: &[u8], root: &'static str) -> FaultResult<Body> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| {
            Fault::new(
                StatusCode::BAD_REQUEST,
                format!("Invalid JSON in the request body: {e}"),
            )
        })?;
        let Value::Object(mut top) = v else {
            return Err(Fault::new(
                StatusCode::BAD_REQUEST,
                "The request body must be a JSON object.",
            ));
        };
        match top.remove(root) {
            Some(Value::Object(attrs)) if top.is_empty() => Ok(Body { root, attrs }),
            Some(v) if top.is_empty() => Err(invalid(root, &v, "Invalid input.")),
            _ => {
                let mut keys: Vec<&String> = top.keys().collect();
                keys.sort();
                Err(Fault::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Missing argument: \"{root}\"{}",
                        if keys.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "; unknown: {}",
                                keys.iter()
                                    .map(|k| k.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    ),
                ))
            }
        }
    }

    /// A nested object's attributes (e.g. `session_persistence`).
    pub fn from_map(root: &'static str, attrs: Map<String, Value>) -> Body {
        Body { root, attrs }
    }

    /// True when the client sent the attribute (even as null).
    pub fn has(&self, name: &str) -> bool {
        self.attrs.contains_key(name)
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        match self.attrs.remove(name) {
            Some(Value::Null) | None => None,
            Some(v) => Some(v),
        }
    }

    /// True when the attribute was sent as `null` (clearing it, in a PUT).
    pub fn is_null(&self, name: &str) -> bool {
        matches!(self.attrs.get(name), Some(Value::Null))
    }

    pub fn string(&mut self, name: &str, max: usize) -> FaultResult<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s)),
            Some(v @ Value::String(_)) => Err(invalid(
                name,
                &v,
                &format!("Value should have a maximum character requirement of {max}"),
            )),
            Some(v) => Err(invalid(name, &v, "Wrong type. Expected 'str'")),
        }
    }

    pub fn bool(&mut self, name: &str) -> FaultResult<Option<bool>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            // WSME takes the usual spellings of a boolean.
            Some(Value::String(s)) if matches!(s.to_lowercase().as_str(), "true" | "1") => {
                Ok(Some(true))
            }
            Some(Value::String(s)) if matches!(s.to_lowercase().as_str(), "false" | "0") => {
                Ok(Some(false))
            }
            Some(v) => Err(invalid(name, &v, "Wrong type. Expected 'bool'")),
        }
    }

    /// An integer within `min..=max`.
    pub fn int(&mut self, name: &str, min: i64, max: i64) -> FaultResult<Option<i64>> {
        let v = match self.take(name) {
            None => return Ok(None),
            Some(v) => v,
        };
        let n = match &v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        let Some(n) = n else {
            return Err(invalid(name, &v, "unable to convert to int"));
        };
        if n < min {
            return Err(invalid(
                name,
                &v,
                &format!("Value should be greater or equal to {min}"),
            ));
        }
        if n > max {
            return Err(invalid(
                name,
                &v,
                &format!("Value should be lower or equal to {max}"),
            ));
        }
        Ok(Some(n))
    }

    /// A UUID.
    pub fn uuid(&mut self, name: &str) -> FaultResult<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) if model::is_uuid(&s) => Ok(Some(s)),
            Some(v) => Err(invalid(name, &v, "Invalid UUID value")),
        }
    }

    pub fn ip(&mut self, name: &str) -> FaultResult<Option<IpAddr>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => match s.parse() {
                Ok(a) => Ok(Some(a)),
                Err(_) => Err(invalid(
                    name,
                    &Value::String(s.clone()),
                    "Value should be IPv4 or IPv6 format",
                )),
            },
            Some(v) => Err(invalid(name, &v, "Value should be IPv4 or IPv6 format")),
        }
    }

    /// One of `options` (an enum).
    pub fn choice(&mut self, name: &str, options: &[&str]) -> FaultResult<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) if options.contains(&s.as_str()) => Ok(Some(s)),
            Some(v) => Err(invalid(
                name,
                &v,
                &format!("Value should be one of: {}", options.join(", ")),
            )),
        }
    }

    pub fn tags(&mut self) -> FaultResult<Option<Vec<String>>> {
        match self.take("tags") {
            None => Ok(None),
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for t in &a {
                    match t {
                        Value::String(s) if s.chars().count() <= 255 => out.push(s.clone()),
                        _ => return Err(invalid("tags", t, "Wrong type. Expected 'str'")),
                    }
                }
                out.sort();
                out.dedup();
                Ok(Some(out))
            }
            Some(v) => Err(invalid("tags", &v, "Wrong type. Expected '[str]'")),
        }
    }

    pub fn cidrs(&mut self, name: &str) -> FaultResult<Option<Vec<IpNet>>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for c in &a {
                    let net = c.as_str().and_then(|s| {
                        s.parse::<IpNet>()
                            .ok()
                            .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
                    });
                    match net {
                        Some(n) => out.push(n.trunc()),
                        None => return Err(invalid(name, c, "Value should be CIDR format")),
                    }
                }
                out.sort();
                out.dedup();
                Ok(Some(out))
            }
            Some(v) => Err(invalid(name, &v, "Wrong type. Expected '[str]'")),
        }
    }

    /// A nested object (e.g. `session_persistence`), or None.
    pub fn object(&mut self, name: &str) -> FaultResult<Option<Map<String, Value>>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(v) => Err(invalid(name, &v, "Wrong type. Expected 'dict'")),
        }
    }

    /// A value that must be given.
    pub fn required<T>(name: &str, v: Option<T>) -> FaultResult<T> {
        v.ok_or_else(|| invalid(name, &Value::Null, "Mandatory field missing."))
    }

    /// Refuses attributes this provider cannot honour (TLS, L7, …) when they carry a
    /// value other than their neutral one.
    pub fn refuse(&mut self, names: &[&str]) -> FaultResult<()> {
        for n in names {
            match self.attrs.remove(*n) {
                None | Some(Value::Null) | Some(Value::Bool(false)) => {}
                Some(Value::Array(a)) if a.is_empty() => {}
                Some(Value::Object(o)) if o.is_empty() => {}
                Some(_) => {
                    return Err(Fault::unsupported(format!(
                        "{n}: this provider balances at L4 (TCP and UDP) and does no TLS or L7"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Drops attributes that are accepted and ignored (documented in docs/api.md).
    pub fn ignore(&mut self, names: &[&str]) {
        for n in names {
            self.attrs.remove(*n);
        }
    }

    /// Refuses what was not read: WSME's "Unknown attribute".
    pub fn finish(self) -> FaultResult<()> {
        if self.attrs.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<&String> = self.attrs.keys().collect();
        keys.sort();
        Err(Fault::new(
            StatusCode::BAD_REQUEST,
            format!(
                "Invalid input for field/attribute {}. Value: '{}'. Unknown attribute for argument {}: {}",
                self.root,
                Value::Object(self.attrs.clone()),
                self.root,
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}
