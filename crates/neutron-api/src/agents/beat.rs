//! Heartbeats: the one write of an agent's report into the lease space (the agent's id and
//! creation time carried over), the NB listener's endpoints for it (a host reports only
//! for itself), the read `dragonflow db wait` makes, and the API server's own heartbeat.

use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::nb_auth::Principal;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use model::agent::{self, Heartbeat, Report};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Writes `report` as its agent's heartbeat, live for `ttl`, stamped with this process's
/// clock; returns what was stored.
pub async fn write(
    store: &dyn nbdb::Store,
    report: Report,
    ttl: Duration,
) -> nbdb::Result<Heartbeat> {
    let key = agent::key(&report.binary, &report.host);
    // The previous heartbeat gives the agent's id and creation time; one that cannot be
    // read starts the agent afresh rather than stopping its heartbeats.
    let previous = store
        .get_lease(&key)
        .await?
        .and_then(|l| serde_json::from_slice(&l.value).ok());
    let hb = Heartbeat::next(previous, report, &model::time::now());
    let value = serde_json::to_vec(&hb).map_err(|e| nbdb::StoreError::Invalid(e.to_string()))?;
    store.put_lease(&key, value, Some(ttl)).await?;
    Ok(hb)
}

/// The longest string a report may carry in a field (a host name is at most 255).
const MAX_FIELD: usize = 255;
/// The largest `configurations` a report may carry, as JSON.
const MAX_CONFIGURATIONS: usize = 16 * 1024;
/// The most balancer listeners a report may count (a balancer has at most 256).
const MAX_LB_STATS: usize = 16 * 1024;

/// A report as a host sends it, checked: known fields of the right types and sizes.
pub fn parse_report(body: Value) -> ApiResult<Report> {
    let bad = |m: String| ApiError::bad_request("HTTPBadRequest", m);
    let report: Report =
        serde_json::from_value(body).map_err(|e| bad(format!("bad agent report: {e}")))?;
    let fields = [
        ("agent_type", &report.agent_type),
        ("binary", &report.binary),
        ("host", &report.host),
        ("topic", &report.topic),
        ("version", &report.version),
        ("started_at", &report.started_at),
    ];
    for (name, v) in fields {
        if v.len() > MAX_FIELD {
            return Err(bad(format!("{name} is longer than {MAX_FIELD} bytes")));
        }
    }
    if report.host.is_empty() || report.host.contains('/') {
        return Err(bad("host must be a non-empty name without '/'".into()));
    }
    if report.binary.is_empty() || report.binary.contains('/') {
        return Err(bad("binary must be a non-empty name without '/'".into()));
    }
    if report
        .availability_zone
        .as_ref()
        .is_some_and(|z| z.len() > MAX_FIELD)
    {
        return Err(bad(format!(
            "availability_zone is longer than {MAX_FIELD} bytes"
        )));
    }
    let size = serde_json::to_vec(&report.configurations).map_or(usize::MAX, |v| v.len());
    if size > MAX_CONFIGURATIONS {
        return Err(bad(format!(
            "configurations are larger than {MAX_CONFIGURATIONS} bytes"
        )));
    }
    if report.lb_stats.len() > MAX_LB_STATS || report.lb_stats.keys().any(|k| k.len() > MAX_FIELD) {
        return Err(bad(format!(
            "lb_stats counts more than {MAX_LB_STATS} listeners or has a long id"
        )));
    }
    Ok(report)
}

/// `PUT /nb/v1/agents/{host}` with a [`Report`]: a host's controller reports. A host
/// token reports only as a controller or BGP speaker on its own host; the admin token as anyone; the
/// reader token never. The heartbeat lives for the server's `agent_down_time`, and is
/// stamped with the server's clock.
pub async fn put(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(host): Path<String>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<Json<Value>> {
    let report = parse_report(body)?;
    let allowed = match &who {
        Principal::Admin => report.host == host,
        Principal::Host(me) => {
            *me == host
                && report.host == host
                && (report.binary == agent::CONTROLLER_BINARY || report.binary == agent::BGP_BINARY)
        }
        Principal::Reader => false,
    };
    if !allowed {
        tracing::warn!(principal = %who, host = %report.host, binary = %report.binary, "agent report refused");
        return Err(ApiError::forbidden(format!(
            "{who} may not report for {} on {:?}",
            report.binary, report.host
        )));
    }
    let hb = write(api.db.store.as_ref(), report, api.config.agent_down_time).await?;
    tracing::debug!(host = %hb.report.host, applied = hb.report.applied_revision, "agent heartbeat");
    Ok(Json(json!({"agent": {"id": hb.id}})))
}

/// Every agent's realized state, for `dragonflow db wait`: the revision of the store's
/// last commit, and each agent's host, binary, liveness and applied revision.
pub async fn realized(api: &Api) -> ApiResult<Value> {
    let last_commit = api.db.store.last_commit().await?;
    let agents: Vec<Value> = super::all(api)
        .await?
        .iter()
        .map(|a| {
            let r = &a.heartbeat.report;
            json!({
                "host": r.host,
                "binary": r.binary,
                "alive": a.alive,
                "applied_revision": r.applied_revision,
                "heartbeat_timestamp": a.heartbeat.heartbeat_timestamp,
            })
        })
        .collect();
    Ok(json!({"last_commit": last_commit, "agents": agents}))
}

/// `GET /nb/v1/agents`: [`realized`], for any token.
pub async fn get(State(api): State<Arc<Api>>) -> ApiResult<Json<Value>> {
    Ok(Json(realized(&api).await?))
}

/// The API server's own heartbeat, every `report_interval` until the server stops: an
/// agent `DF API server` on `host`, whose applied revision is the store's last commit
/// (it reads the store itself).
pub async fn serve(api: Arc<Api>, host: String) {
    let started_at = model::time::now();
    let mut tick = tokio::time::interval(api.config.report_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = api.stopped() => return,
            _ = tick.tick() => {}
        }
        let store = api.db.store.clone();
        let applied = match store.last_commit().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "no heartbeat: the store's revision is unreadable");
                continue;
            }
        };
        let mut configurations = std::collections::BTreeMap::new();
        configurations.insert("nb_store".to_string(), json!(store.describe()));
        let report = Report {
            agent_type: agent::SERVER_TYPE.into(),
            binary: agent::SERVER_BINARY.into(),
            host: host.clone(),
            topic: "N/A".into(),
            availability_zone: None,
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: started_at.clone(),
            applied_revision: applied,
            configurations,
            lb_stats: Default::default(),
        };
        if let Err(e) = write(store.as_ref(), report, api.config.agent_down_time).await {
            tracing::warn!(error = %e, "server heartbeat not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Value {
        json!({
            "agent_type": agent::CONTROLLER_TYPE, "binary": agent::CONTROLLER_BINARY,
            "host": "h1", "topic": "N/A", "availability_zone": null, "version": "1",
            "started_at": "2026-12-02T00:00:00Z", "applied_revision": 3,
            "configurations": {"devices": 2},
        })
    }

    #[test]
    fn a_report_is_checked_field_by_field() {
        assert_eq!(parse_report(report()).unwrap().applied_revision, 3);
        let with = |k: &str, v: Value| {
            let mut r = report();
            r[k] = v;
            parse_report(r)
        };
        assert!(with("host", json!("")).is_err());
        assert!(with("host", json!("a/b")).is_err());
        assert!(with("host", json!("x".repeat(300))).is_err());
        assert!(with("applied_revision", json!(-1)).is_err());
        assert!(with("applied_revision", json!("7")).is_err());
        assert!(with("configurations", json!([1])).is_err());
        let big: serde_json::Map<String, Value> = (0..2000)
            .map(|i| (format!("k{i}"), json!("vvvvvvvv")))
            .collect();
        assert!(with("configurations", Value::Object(big)).is_err());
        assert!(parse_report(json!([])).is_err());
        assert!(parse_report(json!({"host": "h"})).is_err());
    }
}
