//! `/v2.0/network-ip-availabilities` (the `network-ip-availability` extension): per
//! network and subnet, how many addresses the allocation pools hold and how many ports
//! use. Read-only and admin-only (Neutron's default policy); the used count is the
//! subnet's address claims, the same records that keep two ports off one address.

use crate::Api;
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use crate::resources::base_url;
use crate::resources::ops::ipam;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use model::{Network, Subnet, Table};
use serde_json::{Map, Value, json};
use std::sync::Arc;

const COLLECTION: &str = "network_ip_availabilities";
const ATTRS: &[&str] = &[
    "network_id",
    "network_name",
    "project_id",
    "tenant_id",
    "total_ips",
    "used_ips",
    "subnet_ip_availability",
    "ip_version",
];

/// Addresses in a subnet's pools (saturating: an IPv6 /63 holds more than JSON's
/// integers that clients read exactly).
fn total(subnet: &Subnet) -> u64 {
    let sum: u128 = ipam::pool_ranges(subnet)
        .iter()
        .map(|(a, b)| b.saturating_sub(*a) + 1)
        .fold(0u128, u128::saturating_add);
    u64::try_from(sum).unwrap_or(u64::MAX)
}

async fn used(api: &Api, subnet: &Subnet) -> ApiResult<u64> {
    let prefix = format!("ip/{}/", subnet.meta.id);
    let claims = api.db.store.list(Table::Claim.name(), &prefix).await?;
    Ok(claims.len() as u64)
}

/// One network's entry; `ip_version` is a filter only (on its subnets).
async fn entry(api: &Api, n: &Network, ip_version: Option<u8>) -> ApiResult<Map<String, Value>> {
    let mut subnets = Vec::new();
    let (mut net_total, mut net_used) = (0u64, 0u64);
    for (s, _) in ipam::network_subnets(api, n).await? {
        if ip_version.is_some_and(|v| v != s.ip_version) {
            continue;
        }
        let (t, u) = (total(&s), used(api, &s).await?);
        net_total = net_total.saturating_add(t);
        net_used += u;
        subnets.push(json!({
            "subnet_id": s.meta.id, "subnet_name": s.meta.name, "cidr": s.cidr.to_string(),
            "ip_version": s.ip_version, "total_ips": t, "used_ips": u,
        }));
    }
    let project = &n.meta.project_id;
    let v = json!({
        "network_id": n.meta.id, "network_name": n.meta.name,
        "project_id": project, "tenant_id": project,
        "total_ips": net_total, "used_ips": net_used,
        "subnet_ip_availability": subnets,
    });
    Ok(v.as_object().cloned().unwrap_or_default())
}

/// The `ip_version` filter, which narrows the subnets counted rather than matching an
/// attribute of the entry.
fn take_ip_version(q: &mut Query) -> ApiResult<Option<u8>> {
    let Some(i) = q.filters.iter().position(|(k, _)| k == "ip_version") else {
        return Ok(None);
    };
    let (_, values) = q.filters.remove(i);
    match values.first().map(String::as_str) {
        Some("4") => Ok(Some(4)),
        Some("6") => Ok(Some(6)),
        other => Err(ApiError::bad_request(
            "HTTPBadRequest",
            format!(
                "Invalid input for ip_version: {}",
                other.unwrap_or_default()
            ),
        )),
    }
}

/// `GET /v2.0/network-ip-availabilities`: every network for an admin; nothing for
/// anyone else (Neutron filters out what policy hides).
pub async fn list(
    State(api): State<Arc<Api>>,
    ctx: Context,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let mut query = Query::parse(q.as_deref(), ATTRS)?;
    let ip_version = take_ip_version(&mut query)?;
    let mut items = Vec::new();
    if ctx.is_admin {
        for (n, _) in api.db.all::<Network>().await? {
            items.push(entry(&api, &n, ip_version).await?);
        }
    }
    Ok(Json(query.respond(
        COLLECTION,
        &base_url(&headers),
        items,
    )?))
}

/// `GET /v2.0/network-ip-availabilities/{network_id}` (admin; 404 for anyone else, as
/// for a network they cannot see).
pub async fn show(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(q.as_deref(), ATTRS)?;
    let found = match ctx.is_admin {
        true => api.db.get::<Network>(&id).await?,
        false => None,
    };
    let Some((n, _)) = found else {
        return Err(ApiError::not_found("Network", &id));
    };
    let item = query.project(entry(&api, &n, None).await?);
    Ok(Json(json!({ "network_ip_availability": item })))
}
