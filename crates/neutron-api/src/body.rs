//! Request bodies: the JSON extractor (malformed JSON is a Neutron 400, not axum's text; a
//! body of another declared type than `application/json` a 415; one over [`MAX_BODY_BYTES`] a 413) and a
//! reader that takes attributes one by one, validates their types, and rejects whatever is
//! left over as unrecognized.

use crate::error::{ApiError, ApiResult};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use ipnet::IpNet;
use model::MacAddr;
use serde_json::{Map, Value};
use std::net::IpAddr;

/// Longest name or description Neutron accepts.
pub const MAX_NAME_LEN: usize = 255;

/// The largest request body read (axum's default, kept explicit so the 413 can say it;
/// oslo.middleware's `max_request_body_size` in front of Neutron is 112 KiB).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// A JSON request body (possibly empty).
pub struct JsonBody(pub Value);

/// Whether the body may be read as JSON: it says `application/json` (any parameters), or
/// says nothing and comes from no web page (no `Origin`), as Neutron's own test clients
/// send their PUTs. A page's `fetch` of an untyped blob also says nothing, and needs no
/// CORS preflight: its `Origin` keeps it out.
fn is_json(headers: &HeaderMap) -> bool {
    match headers.get(CONTENT_TYPE) {
        None => !headers.contains_key(axum::http::header::ORIGIN),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")),
    }
}

/// 413 in oslo.middleware's words (Neutron's request size limiter).
pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "HTTPRequestEntityTooLarge",
        format!("Request is too large. Larger than max_request_body_size ({MAX_BODY_BYTES})."),
    )
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody, ApiError> {
        let json = is_json(req.headers());
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request("HTTPBadRequest", e.body_text())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Value::Null));
        }
        // Only JSON is read: a `text/plain` or form POST is what a web page may send to
        // another origin without asking (no CORS preflight), so it must not act.
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "HTTPUnsupportedMediaType",
                format!(
                    "The request media type {} is not supported by this server.",
                    content_type.as_deref().unwrap_or("(none)")
                ),
            ));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::bad_request("HTTPBadRequest", format!("Malformed request body: {e}"))
        })
    }
}

/// 400 in Neutron's wording for one attribute.
pub fn bad_attr(attr: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        "HTTPBadRequest",
        format!("Invalid input for {attr}. Reason: {reason}."),
    )
}

/// The attributes of one resource in a request body, consumed as they are read.
#[derive(Debug)]
pub struct Attrs {
    map: Map<String, Value>,
    method: &'static str,
}

impl Attrs {
    /// Unwraps `{"<resource>": {...}}`.
    pub fn from_body(body: Value, resource: &str, method: &'static str) -> ApiResult<Attrs> {
        let Value::Object(mut outer) = body else {
            return Err(ApiError::bad_request(
                "HTTPBadRequest",
                "Resource body required",
            ));
        };
        match outer.remove(resource) {
            Some(Value::Object(map)) if outer.is_empty() => Ok(Attrs { map, method }),
            Some(Value::Object(_)) => Err(ApiError::bad_request(
                "HTTPBadRequest",
                "Bulk operation or extra keys in body are not supported",
            )),
            Some(_) => Err(ApiError::bad_request(
                "HTTPBadRequest",
                format!("Body of '{resource}' must be a JSON object"),
            )),
            None => Err(ApiError::bad_request(
                "HTTPBadRequest",
                format!("Unable to find '{resource}' in request body"),
            )),
        }
    }

    /// An empty attribute set (for tests and internal callers).
    pub fn from_map(map: Map<String, Value>, method: &'static str) -> Attrs {
        Attrs { map, method }
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// True when no attribute is left (or none was given).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Sets an attribute as if the client had sent it.
    pub fn set(&mut self, key: &str, value: Value) {
        self.map.insert(key.to_string(), value);
    }

    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// Rejects attributes that may not be set by this method (read-only ones).
    pub fn forbid(&mut self, keys: &[&str]) -> ApiResult<()> {
        for k in keys {
            if self.map.contains_key(*k) {
                return Err(ApiError::bad_request(
                    "HTTPBadRequest",
                    format!("Attribute '{k}' not allowed in {}", self.method),
                ));
            }
        }
        Ok(())
    }

    /// Fails with "Unrecognized attribute(s)" when anything was not consumed.
    pub fn finish(self) -> ApiResult<()> {
        if self.map.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<_> = self.map.keys().cloned().collect();
        keys.sort();
        Err(ApiError::bad_request(
            "HTTPBadRequest",
            format!("Unrecognized attribute(s) '{}'", keys.join(", ")),
        ))
    }

    pub fn string(&mut self, key: &str) -> ApiResult<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.len() <= MAX_NAME_LEN => Ok(Some(s)),
            Some(Value::String(s)) => Err(bad_attr(
                key,
                format!("'{s}' exceeds maximum length of {MAX_NAME_LEN}"),
            )),
            Some(v) => Err(bad_attr(key, format!("'{v}' is not a valid string"))),
        }
    }

    /// A string that may also be null (null reads as empty).
    pub fn string_or_null(&mut self, key: &str) -> ApiResult<Option<String>> {
        if matches!(self.map.get(key), Some(Value::Null)) {
            self.take(key);
            return Ok(Some(String::new()));
        }
        self.string(key)
    }

    pub fn bool(&mut self, key: &str) -> ApiResult<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => parse_bool(&v)
                .map(Some)
                .ok_or_else(|| bad_attr(key, format!("'{v}' is not a valid boolean value"))),
        }
    }

    pub fn u32(&mut self, key: &str) -> ApiResult<Option<u32>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => parse_u32(&v)
                .map(Some)
                .ok_or_else(|| bad_attr(key, format!("'{v}' is not an integer"))),
        }
    }

    /// An integer or null: `Some(None)` when given as null.
    pub fn u32_or_null(&mut self, key: &str) -> ApiResult<Option<Option<u32>>> {
        match self.map.get(key) {
            Some(Value::Null) => {
                self.take(key);
                Ok(Some(None))
            }
            _ => Ok(self.u32(key)?.map(Some)),
        }
    }

    /// An IP address or null: `Some(None)` when given as null.
    pub fn ip_or_null(&mut self, key: &str) -> ApiResult<Option<Option<IpAddr>>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => parse_ip(&v)
                .map(|ip| Some(Some(ip)))
                .ok_or_else(|| bad_attr(key, format!("'{}' is not a valid IP address", show(&v)))),
        }
    }

    pub fn mac(&mut self, key: &str) -> ApiResult<Option<MacAddr>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .and_then(|s| s.parse::<MacAddr>().ok())
                .filter(MacAddr::is_valid_unicast)
                .map(Some)
                .ok_or_else(|| bad_attr(key, format!("'{}' is not a valid MAC address", show(&v)))),
        }
    }

    /// A list (null reads as empty).
    pub fn list(&mut self, key: &str) -> ApiResult<Option<Vec<Value>>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(Vec::new())),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(bad_attr(key, format!("'{v}' is not a list"))),
        }
    }

    /// A list of strings.
    pub fn strings(&mut self, key: &str) -> ApiResult<Option<Vec<String>>> {
        let Some(items) = self.list(key)? else {
            return Ok(None);
        };
        items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                v => Err(bad_attr(key, format!("'{v}' is not a valid string"))),
            })
            .collect::<ApiResult<Vec<_>>>()
            .map(Some)
    }

    /// A JSON object (null reads as empty).
    pub fn object(&mut self, key: &str) -> ApiResult<Option<Map<String, Value>>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(Map::new())),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(v) => Err(bad_attr(key, format!("'{v}' is not a dictionary"))),
        }
    }
}

/// A value shown in a message without JSON quotes.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

pub fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => parse_bool_str(s),
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

pub fn parse_bool_str(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_u32(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn parse_ip(v: &Value) -> Option<IpAddr> {
    v.as_str().and_then(|s| s.parse().ok())
}

/// A CIDR whose host bits are zero, or the error text Neutron gives.
pub fn parse_cidr(attr: &str, v: &Value) -> ApiResult<IpNet> {
    let s = v
        .as_str()
        .ok_or_else(|| bad_attr(attr, format!("'{v}' is not a valid IP subnet")))?;
    let net: IpNet = match s.parse() {
        Ok(n) => n,
        Err(_) => match s.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => return Err(bad_attr(attr, format!("'{s}' is not a valid IP subnet"))),
        },
    };
    if net.network() != net.addr() {
        return Err(bad_attr(
            attr,
            format!(
                "'{s}' isn't a recognized IP subnet cidr, '{}' is recommended",
                net.trunc()
            ),
        ));
    }
    Ok(net)
}

/// Renders a prefix the way users wrote it: a full-length prefix as a bare address.
pub fn render_ip_or_cidr(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_attributes_are_rejected() {
        let mut a = Attrs::from_body(
            json!({"network": {"name": "n", "bogus": 1}}),
            "network",
            "POST",
        )
        .unwrap();
        assert_eq!(a.string("name").unwrap().as_deref(), Some("n"));
        let e = a.finish().unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.message.contains("bogus"), "{}", e.message);
    }

    #[test]
    fn types_are_checked() {
        let mut a = Attrs::from_map(
            json!({"admin_state_up": "maybe", "mac_address": "01:00:5e:00:00:01", "ip": "10.0.0.300"})
                .as_object()
                .cloned()
                .unwrap(),
            "POST",
        );
        assert!(a.bool("admin_state_up").is_err());
        assert!(a.mac("mac_address").is_err(), "multicast MAC refused");
        assert!(a.ip_or_null("ip").is_err());
    }

    #[test]
    fn cidr_with_host_bits_is_refused_with_a_hint() {
        let e = parse_cidr("cidr", &json!("10.0.0.1/24")).unwrap_err();
        assert!(e.message.contains("10.0.0.0/24"), "{}", e.message);
        assert!(parse_cidr("cidr", &json!("10.0.0.0/33")).is_err());
        assert_eq!(
            parse_cidr("cidr", &json!("fd00::/64")).unwrap().to_string(),
            "fd00::/64"
        );
    }

    #[test]
    fn wrong_envelope_is_a_400() {
        assert!(Attrs::from_body(json!([1]), "port", "POST").is_err());
        assert!(Attrs::from_body(json!({"ports": {}}), "port", "POST").is_err());
        assert!(Attrs::from_body(json!({"port": 3}), "port", "POST").is_err());
    }
}
