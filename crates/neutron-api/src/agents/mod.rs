//! The `/v2.0/agents` resource (Neutron's `agent` extension): every host's controller and
//! every API server, read from their heartbeats in the store's lease space, `alive` while
//! the lease is. List (Neutron's filters, sorting, pages), show, update (`admin_state_up`,
//! `description`) and delete; admin-only as in Neutron. [`live_controller`] tells port
//! binding whether a host has a live controller. The heartbeat writes are in [`beat`].

pub mod beat;

use crate::Api;
use crate::body::{Attrs, JsonBody, bad_attr};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use model::agent::{self, AdminState, Heartbeat};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every attribute of an agent, in Neutron's names: the valid filters, sort keys, fields.
pub const ATTRS: &[&str] = &[
    "id",
    "agent_type",
    "binary",
    "host",
    "topic",
    "availability_zone",
    "admin_state_up",
    "alive",
    "heartbeat_timestamp",
    "started_at",
    "created_at",
    "description",
    "configurations",
    "resources_synced",
];

/// The attributes an update may change.
const WRITABLE: &[&str] = &["admin_state_up", "description"];

/// Neutron's limit on a description.
const MAX_DESCRIPTION: usize = 255;

/// One agent as the API shows it.
#[derive(Clone, Debug)]
pub struct Agent {
    pub heartbeat: Heartbeat,
    pub admin: AdminState,
    pub alive: bool,
}

impl Agent {
    fn admin_key(&self) -> String {
        agent::admin_key(&self.heartbeat.report.binary, &self.heartbeat.report.host)
    }
}

/// Neutron shows an agent's times as `2026-12-02 15:04:05` (UTC, no zone).
fn neutron_time(rfc3339: &str) -> String {
    rfc3339.trim_end_matches('Z').replacen('T', " ", 1)
}

/// The Neutron JSON of an agent.
pub fn render(a: &Agent) -> Map<String, Value> {
    let r = &a.heartbeat.report;
    let mut configurations: Map<String, Value> = r.configurations.clone().into_iter().collect();
    configurations.insert("version".into(), json!(r.version));
    configurations.insert("nb_revision".into(), json!(r.applied_revision));
    let v = json!({
        "id": a.heartbeat.id,
        "agent_type": r.agent_type,
        "binary": r.binary,
        "host": r.host,
        "topic": r.topic,
        "availability_zone": r.availability_zone,
        "admin_state_up": a.admin.admin_state_up,
        "alive": a.alive,
        "heartbeat_timestamp": neutron_time(&a.heartbeat.heartbeat_timestamp),
        "started_at": neutron_time(&r.started_at),
        "created_at": neutron_time(&a.heartbeat.created_at),
        // Neutron's agents have no description until one is set: null.
        "description": (!a.admin.description.is_empty()).then_some(&a.admin.description),
        "configurations": configurations,
        "resources_synced": Value::Null,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Every agent, ordered by its lease key (binary, host). A heartbeat that cannot be read is
/// logged with its key and left out.
pub async fn all(api: &Api) -> ApiResult<Vec<Agent>> {
    let store = &api.db.store;
    let admin: BTreeMap<String, AdminState> = store
        .leases(agent::ADMIN_PREFIX)
        .await?
        .into_iter()
        .filter_map(|l| Some((l.key, serde_json::from_slice(&l.value).ok()?)))
        .collect();
    let mut out = Vec::new();
    for lease in store.leases(agent::PREFIX).await? {
        let heartbeat: Heartbeat = match serde_json::from_slice(&lease.value) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(key = %lease.key, error = %e, "unreadable agent heartbeat skipped");
                continue;
            }
        };
        let key = agent::admin_key(&heartbeat.report.binary, &heartbeat.report.host);
        out.push(Agent {
            admin: admin.get(&key).cloned().unwrap_or_default(),
            heartbeat,
            alive: lease.live,
        });
    }
    Ok(out)
}

/// Whether `host` has a live controller (its heartbeat lease has not run out): what port
/// binding asks before binding a port there.
pub async fn live_controller(api: &Api, host: &str) -> ApiResult<bool> {
    let key = agent::key(agent::CONTROLLER_BINARY, host);
    Ok(api.db.store.get_lease(&key).await?.is_some_and(|l| l.live))
}

/// The datapath type (`system`, `netdev`) each of `hosts`' controllers reports, for the
/// hosts whose controller reports one.
pub async fn datapath_types<'a>(
    api: &Api,
    hosts: impl IntoIterator<Item = &'a str>,
) -> ApiResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for host in hosts {
        let key = agent::key(agent::CONTROLLER_BINARY, host);
        let Some(lease) = api.db.store.get_lease(&key).await? else {
            continue;
        };
        let Ok(hb) = serde_json::from_slice::<Heartbeat>(&lease.value) else {
            continue;
        };
        if let Some(dp) = hb
            .report
            .configurations
            .get("datapath_type")
            .and_then(Value::as_str)
        {
            out.insert(host.to_string(), dp.to_string());
        }
    }
    Ok(out)
}

/// Neutron hides agents from non-admins: an object they may not see is "not found".
fn hidden() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "HTTPNotFound",
        "The resource could not be found.",
    )
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "AgentNotFound",
        format!("Agent {id} could not be found"),
    )
}

/// The agent `id`, for an admin; 404 otherwise.
async fn find(api: &Api, ctx: &Context, id: &str) -> ApiResult<Agent> {
    if !ctx.is_admin {
        return Err(hidden());
    }
    all(api)
        .await?
        .into_iter()
        .find(|a| a.heartbeat.id == id)
        .ok_or_else(|| not_found(id))
}

/// `GET /v2.0/agents`: every agent for an admin; an empty list for anyone else (Neutron
/// drops the objects its policy does not let the caller see).
pub async fn list(
    State(api): State<Arc<Api>>,
    ctx: Context,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(q.as_deref(), ATTRS)?;
    let items = if ctx.is_admin {
        all(&api).await?.iter().map(render).collect()
    } else {
        Vec::new()
    };
    Ok(Json(query.respond(
        "agents",
        &crate::resources::base_url(&headers),
        items,
    )?))
}

/// `GET /v2.0/agents/{id}`.
pub async fn show(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let a = find(&api, &ctx, &id).await?;
    let query = Query::parse(q.as_deref(), ATTRS)?;
    Ok(Json(json!({"agent": query.project(render(&a))})))
}

/// `PUT /v2.0/agents/{id}` `{"agent": {"admin_state_up": .., "description": ..}}`.
pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let mut a = find(&api, &ctx, &id).await?;
    let mut attrs = Attrs::from_body(body, "agent", "PUT")?;
    for attr in ATTRS.iter().filter(|a| !WRITABLE.contains(a)) {
        if attrs.has(attr) {
            return Err(crate::resources::standard::read_only(attr));
        }
    }
    if let Some(up) = attrs.bool("admin_state_up")? {
        a.admin.admin_state_up = up;
    }
    if let Some(d) = attrs.string_or_null("description")? {
        if d.chars().count() > MAX_DESCRIPTION {
            return Err(bad_attr(
                "description",
                format!("'{d}' exceeds maximum length of {MAX_DESCRIPTION}"),
            ));
        }
        a.admin.description = d;
    }
    attrs.finish()?;
    let value = serde_json::to_vec(&a.admin).map_err(|e| ApiError::internal(e.to_string()))?;
    api.db.store.put_lease(&a.admin_key(), value, None).await?;
    tracing::info!(agent = %id, host = %a.heartbeat.report.host, admin_state_up = a.admin.admin_state_up, "agent updated");
    Ok(Json(json!({"agent": render(&a)})))
}

/// `DELETE /v2.0/agents/{id}`: the agent's heartbeat and settings go. As in Neutron, a
/// live agent may be deleted too; it comes back (with a new id) at its next heartbeat.
pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let a = find(&api, &ctx, &id).await?;
    api.db.store.delete_lease(&a.heartbeat.key()).await?;
    api.db.store.delete_lease(&a.admin_key()).await?;
    tracing::info!(agent = %id, host = %a.heartbeat.report.host, alive = a.alive, "agent deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_as_neutron_shows_an_agents() {
        assert_eq!(neutron_time("2026-12-02T15:04:05Z"), "2026-12-02 15:04:05");
    }
}
