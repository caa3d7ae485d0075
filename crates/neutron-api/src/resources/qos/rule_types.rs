//! `/v2.0/qos/rule-types`: the rule types this backend enforces (`qos`), and for admins
//! each type's driver with the parameters it takes (`qos-rule-type-details`).

use super::rules::TYPES;
use crate::Api;
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use model::qos::VALID_DSCP_MARKS;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The driver name rule type details show.
const DRIVER: &str = "dragonflow";

fn range(name: &str) -> Value {
    json!({"parameter_name": name, "parameter_type": "range",
           "parameter_range": {"start": 0, "end": i32::MAX}})
}

fn direction() -> Value {
    json!({"parameter_name": "direction", "parameter_type": "choices",
           "parameter_values": ["ingress", "egress"]})
}

/// What the driver takes for rule type `name`.
fn parameters(name: &str) -> Vec<Value> {
    match name {
        "bandwidth_limit" => vec![range("max_kbps"), range("max_burst_kbps"), direction()],
        "dscp_marking" => vec![json!({"parameter_name": "dscp_mark",
            "parameter_type": "choices", "parameter_values": VALID_DSCP_MARKS})],
        _ => vec![range("min_kbps"), direction()],
    }
}

/// `GET /v2.0/qos/rule-types`: any caller with a role (Neutron's `role:reader`).
pub async fn list(
    State(_api): State<Arc<Api>>,
    _ctx: Context,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    // `all_supported` and `all_rules` (qos-rule-type-filter) are not offered; the
    // types listed are the ones enforced here, whatever they ask.
    let query = Query::parse(q.as_deref(), &["type"])?;
    let items: Vec<Map<String, Value>> = TYPES
        .iter()
        .map(|t| {
            let mut m = Map::new();
            m.insert("type".into(), json!(t.name));
            m
        })
        .collect();
    Ok(Json(query.respond(
        "rule_types",
        &super::super::base_url(&headers),
        items,
    )?))
}

/// `GET /v2.0/qos/rule-types/{type}`: admins only (403 `NotAuthorized`, as the QoS
/// plugin answers others), 404 for a type not implemented here.
pub async fn show(
    State(_api): State<Arc<Api>>,
    ctx: Context,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    if !ctx.is_admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "NotAuthorized",
            "Not authorized.",
        ));
    }
    let Some(t) = TYPES.iter().find(|t| t.name == name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "QosRuleTypeNotFound",
            format!("QoS rule type {name} could not be found."),
        ));
    };
    Ok(Json(json!({"rule_type": {
        "type": t.name,
        "drivers": [{"name": DRIVER, "supported_parameters": parameters(t.name)}],
    }})))
}
