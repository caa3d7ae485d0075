//! neutron-fwaas's v2 API (`/v2.0/fwaas/...`, alias `fwaas_v2`): firewall rules
//! (`rules`), policies that order them with `insert_rule` and `remove_rule`
//! (`policies`), and groups that put an ingress and an egress policy on ports
//! (`groups`); each project's default group, made on first sight (`defaults`). The
//! validations and error types are neutron-fwaas's (`FirewallRuleNotFound`, ...).

pub mod defaults;
pub mod groups;
pub mod policies;
pub mod rules;

use crate::body::bad_attr;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use serde_json::Value;

/// 404 `<kind>` with neutron-fwaas's message.
fn not_found(kind: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, kind, message)
}

pub fn rule_not_found(id: &str) -> ApiError {
    not_found(
        "FirewallRuleNotFound",
        format!("Firewall rule {id} could not be found."),
    )
}

pub fn policy_not_found(id: &str) -> ApiError {
    not_found(
        "FirewallPolicyNotFound",
        format!("Firewall policy {id} could not be found."),
    )
}

/// A 400 of one of neutron-fwaas's `InvalidInput` subclasses.
fn invalid(kind: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(kind, message)
}

/// `FirewallDefaultParameterExists`: a reserved name for a new object.
fn reserved_name(name: &str, resource_type: &str) -> ApiError {
    ApiError::conflict(
        "FirewallDefaultParameterExists",
        format!(
            "Operation cannot be performed since '{name}' is a reserved name for {resource_type}."
        ),
    )
}

/// `FirewallDefaultObjectUpdateRestricted`: a change to a default object. (neutron-fwaas
/// says `Firewall Group` for default policies too.)
fn default_restricted(id: &str) -> ApiError {
    ApiError::conflict(
        "FirewallDefaultObjectUpdateRestricted",
        format!("Operation cannot be performed on default object '{id}' of type Firewall Group."),
    )
}

/// A `type:uuid_list` attribute: a list of distinct UUIDs (null reads as empty).
fn uuid_list(attr: &str, v: Option<Value>) -> ApiResult<Option<Vec<String>>> {
    let items = match v {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(vec![])),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(bad_attr(attr, format!("'{v}' is not a list"))),
    };
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for v in &items {
        match v.as_str() {
            Some(s) if model::is_uuid(s) && s.len() == 36 => out.push(s.to_string()),
            _ => {
                let shown = crate::body::show(v);
                return Err(bad_attr(attr, format!("'{shown}' is not a valid UUID")));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let dups: Vec<&str> = out
        .iter()
        .filter(|s| !seen.insert(s.as_str()))
        .map(String::as_str)
        .collect();
    if !dups.is_empty() {
        return Err(bad_attr(
            attr,
            format!("Duplicate items in the list: '{}'", dups.join(", ")),
        ));
    }
    Ok(Some(out))
}

/// A `type:uuid_or_none` attribute: `Some(None)` when given as null.
fn uuid_or_none(attr: &str, v: Option<Value>) -> ApiResult<Option<Option<String>>> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if model::is_uuid(&s) && s.len() == 36 => Ok(Some(Some(s))),
        Some(v) => {
            let shown = crate::body::show(&v);
            Err(bad_attr(attr, format!("'{shown}' is not a valid UUID")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uuid_lists_refuse_junk_and_duplicates() {
        let a = "0b6f5c1e-8c77-4f43-9d3e-6c3f0b3e2a11";
        assert_eq!(uuid_list("x", None).unwrap(), None);
        assert_eq!(uuid_list("x", Some(json!(null))).unwrap(), Some(vec![]));
        assert_eq!(
            uuid_list("x", Some(json!([a]))).unwrap(),
            Some(vec![a.into()])
        );
        let e = uuid_list("x", Some(json!([a, a]))).unwrap_err();
        assert!(e.message.contains("Duplicate items"), "{}", e.message);
        let e = uuid_list("x", Some(json!(["nope"]))).unwrap_err();
        assert!(
            e.message.contains("'nope' is not a valid UUID"),
            "{}",
            e.message
        );
        assert!(uuid_list("x", Some(json!("s"))).is_err());
        assert!(uuid_or_none("x", Some(json!(3))).is_err());
        assert_eq!(uuid_or_none("x", Some(json!(null))).unwrap(), Some(None));
    }
}
