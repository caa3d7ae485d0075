//! Availability zones (`availability_zone`, `network_availability_zone`,
//! `router_availability_zone`): the zones are the ones host controllers report in their
//! heartbeats; `GET /v2.0/availability_zones` lists each for networks and routers, and the
//! `availability_zone_hints` a network or router is created with must name known zones.
//! Hints are kept and shown but place nothing: there is no network node to place, every
//! host serves the networks and routers of its own ports.

use crate::Api;
use crate::agents;
use crate::body::{Attrs, bad_attr};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use model::agent::CONTROLLER_TYPE;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The attributes of a zone: the valid filters, sort keys and fields.
const ATTRS: &[&str] = &["name", "resource", "state"];

/// Neutron's limit on the hints together (`AZ_HINTS_DB_LEN`), as joined with commas.
const MAX_HINTS_LEN: usize = 255;

/// Each zone a controller reports, and whether one of its controllers there is alive and
/// administratively up (Neutron's `available`).
pub async fn zones(api: &Api) -> ApiResult<BTreeMap<String, bool>> {
    let mut out = BTreeMap::new();
    for a in agents::all(api).await? {
        let r = &a.heartbeat.report;
        let Some(zone) = r
            .availability_zone
            .as_ref()
            .filter(|_| r.agent_type == CONTROLLER_TYPE)
        else {
            continue;
        };
        *out.entry(zone.clone()).or_insert(false) |= a.alive && a.admin.admin_state_up;
    }
    Ok(out)
}

/// How long the zones with a live controller are reused: every network and router answer
/// shows them, and reading them is a scan of the agents' heartbeats.
const SERVING_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The zones a network or router is in: every zone with a live controller, since every
/// host serves what its ports need. Read at most once a [`SERVING_TTL`].
pub async fn serving(api: &Api) -> ApiResult<Vec<String>> {
    let now = std::time::Instant::now();
    if let Some((at, zones)) = api
        .serving_zones
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        && now.duration_since(*at) < SERVING_TTL
    {
        return Ok(zones.clone());
    }
    let fresh: Vec<String> = zones(api)
        .await?
        .into_iter()
        .filter_map(|(z, up)| up.then_some(z))
        .collect();
    *api.serving_zones.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, fresh.clone()));
    Ok(fresh)
}

/// Reads `availability_zone_hints` from a create body: a list of distinct strings whose
/// comma-joined length fits Neutron's column.
pub fn parse_hints(attrs: &mut Attrs) -> ApiResult<Vec<String>> {
    const KEY: &str = "availability_zone_hints";
    let hints = attrs.strings(KEY)?.unwrap_or_default();
    for (i, h) in hints.iter().enumerate() {
        if hints[..i].contains(h) {
            return Err(bad_attr(KEY, format!("Duplicate items in the list: '{h}'")));
        }
    }
    if hints.join(",").len() > MAX_HINTS_LEN {
        return Err(bad_attr(KEY, "Too many availability_zone_hints specified"));
    }
    Ok(hints)
}

/// Refuses hints naming a zone no controller reports (404 `AvailabilityZoneNotFound`, as
/// Neutron answers).
pub async fn check_hints(api: &Api, hints: &[String]) -> ApiResult<()> {
    if hints.is_empty() {
        return Ok(());
    }
    let known = zones(api).await?;
    match hints.iter().find(|h| !known.contains_key(*h)) {
        Some(h) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "AvailabilityZoneNotFound",
            format!("AvailabilityZone {h} could not be found."),
        )),
        None => Ok(()),
    }
}

/// Adds `availability_zones` (the zones serving it, `serving`) to each rendered item.
pub fn add_serving(items: &mut [Map<String, Value>], serving: &[String]) {
    for m in items {
        m.insert("availability_zones".into(), json!(serving));
    }
}

/// The zone listing: each zone once for networks and once for routers.
fn render(zones: &BTreeMap<String, bool>) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for (name, up) in zones {
        for resource in ["network", "router"] {
            let state = if *up { "available" } else { "unavailable" };
            let v = json!({"name": name, "resource": resource, "state": state});
            if let Value::Object(m) = v {
                out.push(m);
            }
        }
    }
    out
}

/// `GET /v2.0/availability_zones`: anyone may list them, as in Neutron.
pub async fn list(
    State(api): State<Arc<Api>>,
    _ctx: Context,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(q.as_deref(), ATTRS)?;
    let items = render(&zones(&api).await?);
    Ok(Json(query.respond(
        "availability_zones",
        &crate::resources::base_url(&headers),
        items,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_zone_is_listed_for_networks_and_routers_with_its_state() {
        let zones = BTreeMap::from([("az1".to_string(), true), ("nova".to_string(), false)]);
        let items = render(&zones);
        let got: Vec<(String, String, String)> = items
            .iter()
            .map(|m| {
                let s = |k: &str| m[k].as_str().unwrap().to_string();
                (s("name"), s("resource"), s("state"))
            })
            .collect();
        let want = [
            ("az1", "network", "available"),
            ("az1", "router", "available"),
            ("nova", "network", "unavailable"),
            ("nova", "router", "unavailable"),
        ];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0.as_str(), g.1.as_str(), g.2.as_str()), w);
        }
    }

    #[test]
    fn hints_must_be_distinct_strings_that_fit_the_column() {
        let parse = |v: Value| {
            let Value::Object(o) = json!({ "availability_zone_hints": v }) else {
                unreachable!()
            };
            parse_hints(&mut Attrs::from_map(o, "POST"))
        };
        assert_eq!(parse(json!(["a", "b"])).unwrap(), vec!["a", "b"]);
        assert!(parse(json!(null)).unwrap().is_empty());
        assert_eq!(
            parse(json!(["a", "a"])).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse(json!([1])).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse(json!("a")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let long: Vec<String> = (0..30).map(|i| format!("zone-{i:04}")).collect();
        assert_eq!(
            parse(json!(long)).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
