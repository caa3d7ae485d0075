//! The NB store over HTTP, for controllers and `dragonflow db` when the store is embedded
//! in the server (nothing else can open its file): the current revision, a snapshot, and a
//! streaming watch from a revision as newline-delimited JSON. Served on its own listener,
//! every request authenticated by [`crate::nb_auth`].
//!
//! `GET /nb/v1/revision`, `GET /nb/v1/snapshot[?topics=..][&tables=..]`,
//! `GET /nb/v1/objects/TABLE/ID`,
//! `GET /nb/v1/watch?after=R[&topics=a,b][&tables=port,network]`; and the writes a
//! controller makes: `PUT /nb/v1/chassis/{name}`, `PUT /nb/v1/ports/{id}/binding` and
//! `PUT /nb/v1/snat/{network}`. Any valid token reads; a host writes only its own chassis,
//! the bindings of ports it takes or holds, and its own SNAT port; the admin writes
//! anything; the reader nothing. A watch whose `after` was compacted away gets 410 and
//! takes a new snapshot. A blank line is sent every 15 s of silence so dead connections
//! are noticed, and `{"progress": R}` after half a second without a change to send when
//! the watch has read past changes its filter left out (see `nbdb::remote`).

use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::nb_auth::Principal;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use nbdb::source::wire;
use nbdb::{Filter, StoreError, Watch};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const HEARTBEAT: Duration = Duration::from_secs(15);
/// After this long without a change to send, a watch whose filter left changes out says
/// how far it has read (`{"progress": R}`): a host's realized revision goes on past
/// other projects' changes.
const PROGRESS: Duration = Duration::from_millis(500);

/// The filter (and `after`) of a request's query string; a bad one is a 400.
fn params(raw: Option<&str>, with_after: bool) -> ApiResult<(Filter, Option<u64>)> {
    Filter::from_query(raw.unwrap_or(""), with_after)
        .map_err(|e| ApiError::bad_request("HTTPBadRequest", e))
}

pub async fn revision(State(api): State<Arc<Api>>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"revision": api.db.store.revision().await?})))
}

/// A snapshot's answer, serialised straight from the stored bytes.
#[derive(serde::Serialize)]
struct SnapshotBody<'a> {
    revision: u64,
    records: Vec<wire::RawRecord<'a>>,
}

pub async fn snapshot(State(api): State<Arc<Api>>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let (filter, _) = params(q.as_deref(), false)?;
    // The store reads only the tables and topics asked for (see `Store::snapshot_filtered`).
    let snap = api.db.store.snapshot_filtered(&filter).await?;
    let body = SnapshotBody {
        revision: snap.revision,
        records: snap.records.iter().filter_map(wire::raw_record).collect(),
    };
    Ok(Json(body).into_response())
}

/// `GET /nb/v1/objects/{table}/{id}`: one object, as a snapshot record (a host looks up a
/// port plugged on it before it follows that port's project).
pub async fn object(
    State(api): State<Arc<Api>>,
    Path((table, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let missing = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "ObjectNotFound",
            format!("no {table} {id}"),
        )
    };
    let r = api.db.store.get(&table, &id).await?.ok_or_else(missing)?;
    let raw = wire::raw_record(&r).ok_or_else(missing)?;
    Ok(Json(raw).into_response())
}

/// Objects one look-up may ask for.
const MAX_LOOKUPS: usize = 20_000;

/// `POST /nb/v1/lookup` `{"objects": [{"table": .., "id": ..}, ..]}`: many objects in one
/// request, as snapshot records in the order asked, `null` for those that do not exist (a
/// host that plugged hundreds of ports at once looks them all up together).
pub async fn lookup(
    State(api): State<Arc<Api>>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<Response> {
    let objects = body
        .get("objects")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("HTTPBadRequest", "objects must be a list"))?;
    if objects.len() > MAX_LOOKUPS {
        return Err(ApiError::bad_request(
            "HTTPBadRequest",
            format!("at most {MAX_LOOKUPS} objects in one look-up"),
        ));
    }
    // Each object is read by its key, and its stored JSON copied through unparsed.
    let mut found = Vec::with_capacity(objects.len());
    for o in objects {
        let field = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let (Some(table), Some(id)) = (field("table"), field("id")) else {
            return Err(ApiError::bad_request(
                "HTTPBadRequest",
                "each object names its table and id",
            ));
        };
        found.push(api.db.store.get(table, id).await?);
    }
    #[derive(serde::Serialize)]
    struct LookupBody<'a> {
        records: Vec<Option<wire::RawRecord<'a>>>,
    }
    let records = found
        .iter()
        .map(|r| r.as_ref().and_then(wire::raw_record))
        .collect();
    Ok(Json(LookupBody { records }).into_response())
}

pub async fn watch(State(api): State<Arc<Api>>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let (filter, after) = params(q.as_deref(), true)?;
    let after = after
        .ok_or_else(|| ApiError::bad_request("HTTPBadRequest", "after=REVISION is required"))?;
    // Fail now, with a status, if the log no longer reaches back that far.
    match api.db.store.changes_since(after, 1).await {
        Err(StoreError::Compacted { requested, oldest }) => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "Compacted",
                format!(
                    "revision {requested} was compacted (oldest kept: {oldest}); take a new snapshot"
                ),
            ));
        }
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    let w = Watch::filtered(api.db.store.clone(), after, filter);
    // The stream's state: the watch, the position last told, when a line was last sent.
    let state = (w, api, after, tokio::time::Instant::now());
    let stream = futures_util::stream::unfold(state, |(mut w, api, told, sent)| async move {
        loop {
            let next = tokio::select! {
                _ = api.stopped() => return None,
                n = tokio::time::timeout(PROGRESS, w.next()) => n,
            };
            let now = tokio::time::Instant::now();
            let line = match next {
                Err(_) if w.position() > told => {
                    let at = w.position();
                    let mut line = wire::progress_line(at).to_string().into_bytes();
                    line.push(b'\n');
                    return Some((Ok(Bytes::from(line)), (w, api, at, now)));
                }
                Err(_) if now.duration_since(sent) >= HEARTBEAT => Bytes::from_static(b"\n"),
                Err(_) => continue,
                Ok(Err(e)) => {
                    // The stream ends; the client resumes from its last revision.
                    tracing::warn!(error = %e, "watch stream ended");
                    return None;
                }
                Ok(Ok(c)) => {
                    let Some(v) = wire::change(&c) else { continue };
                    let mut line = v.to_string().into_bytes();
                    line.push(b'\n');
                    Bytes::from(line)
                }
            };
            return Some((Ok::<Bytes, std::io::Error>(line), (w, api, told, now)));
        }
    });
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// 403 for a write the caller's token does not allow.
fn refused(p: &Principal, what: impl std::fmt::Display) -> ApiError {
    tracing::warn!(principal = %p, "NB write refused: {what}");
    ApiError::forbidden(format!("{p} may not {what}"))
}

/// `PUT /nb/v1/chassis/{name}` `{"ip": .., "tunnel_types": [..]}`: a controller registers
/// its host (topic-less, so every host learns every tunnel endpoint). Every host tunnels
/// to the address written here, so only that host (or the admin) may write it.
pub async fn put_chassis(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<Json<Value>> {
    match &who {
        Principal::Admin => {}
        Principal::Host(me) if *me == name => {}
        _ => return Err(refused(&who, format_args!("write chassis {name}"))),
    }
    let ip = body
        .get("ip")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<std::net::IpAddr>().ok())
        .ok_or_else(|| ApiError::bad_request("HTTPBadRequest", "ip must be an IP address"))?;
    let tunnel_types = body
        .get("tunnel_types")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|t| {
                    t.as_str()
                        .and_then(model::NetworkType::parse)
                        .filter(|t| t.is_tunnel())
                })
                .collect::<Option<Vec<_>>>()
        })
        .unwrap_or(Some(vec![]))
        .ok_or_else(|| {
            ApiError::bad_request(
                "HTTPBadRequest",
                "tunnel_types must be geneve, vxlan or gre",
            )
        })?;
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::bad_request("HTTPBadRequest", "bad chassis name"));
    }
    let chassis = model::Chassis {
        id: name.clone(),
        ip,
        tunnel_types,
    };
    let value = serde_json::to_vec(&chassis).map_err(|e| ApiError::internal(e.to_string()))?;
    api.db
        .store
        .commit(vec![nbdb::Op::put(
            model::Table::Chassis.name(),
            &name,
            value,
            nbdb::Expect::Any,
        )])
        .await?;
    tracing::info!(chassis = %name, %ip, "chassis registered");
    Ok(Json(json!({"chassis": chassis})))
}

/// Whether `who` may set the binding of a port bound to `current` to `wanted` (`None`:
/// only its status). A host binds ports to itself (a VM plugged there, moved there), and
/// changes or clears the binding of a port only while that port is its own.
fn may_bind(who: &Principal, current: &str, wanted: Option<&str>) -> bool {
    match who {
        Principal::Admin => true,
        Principal::Reader => false,
        Principal::Host(me) => match wanted {
            Some(h) if h == me => true,
            Some("") | None => current == me,
            Some(_) => false,
        },
    }
}

/// `PUT /nb/v1/ports/{id}/binding` `{"host": .., "status": "ACTIVE"|"DOWN"}`: the
/// controller that plugged a port binds it and reports its state (ACTIVE once its flows
/// are confirmed installed).
pub async fn put_binding(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<Json<Value>> {
    if who == Principal::Reader {
        return Err(refused(&who, format_args!("bind port {id}")));
    }
    let host = body.get("host").and_then(Value::as_str).map(str::to_string);
    let status = status_of(body.get("status"))?;
    let port = crate::db::retrying(|| async {
        let (mut p, rev) = api.db.fetch::<model::Port>(&id).await?;
        if !may_bind(&who, &p.binding_host_id, host.as_deref()) {
            return Err(refused(
                &who,
                format_args!(
                    "bind port {id} (bound to {:?}) to {:?}",
                    p.binding_host_id,
                    host.as_deref().unwrap_or(&p.binding_host_id)
                ),
            ));
        }
        let h = host.clone().unwrap_or_else(|| p.binding_host_id.clone());
        if !p.report_applies(&h, status) {
            return Ok(p);
        }
        let event = p.bind(&h, status);
        let mut txn = crate::db::Txn::new();
        txn.update(&p, rev);
        txn.nova_events(event.into_iter().collect());
        txn.commit(&api.db).await?;
        Ok(p)
    })
    .await?;
    tracing::info!(port = %id, host = %port.binding_host_id, status = port.status.as_str(), "port binding reported");
    Ok(Json(json!({"port": crate::resources::render(&port)})))
}

/// A binding as a request names it: the port, its host (`None`: unchanged), its status.
type Binding = (String, Option<String>, model::PortStatus);

fn status_of(v: Option<&Value>) -> ApiResult<model::PortStatus> {
    match v.and_then(Value::as_str) {
        Some("ACTIVE") => Ok(model::PortStatus::Active),
        Some("DOWN") => Ok(model::PortStatus::Down),
        Some("BUILD") => Ok(model::PortStatus::Build),
        Some("ERROR") => Ok(model::PortStatus::Error),
        _ => Err(ApiError::bad_request(
            "HTTPBadRequest",
            "status must be ACTIVE, DOWN, BUILD or ERROR",
        )),
    }
}

/// Bindings written in one transaction at most: etcd takes at most 127 operations in one.
const BINDINGS_PER_TXN: usize = 100;
/// Bindings one request may carry.
const MAX_BINDINGS: usize = 20_000;

/// `PUT /nb/v1/bindings` `{"bindings": [{"port": .., "host": .., "status": ..}, ..]}`: the
/// bindings and statuses of many ports in one request (a host that plugged hundreds of
/// ports at once reports them together), written a hundred to a transaction. Each port is
/// checked as `put_binding` checks it; the answer says, port by port, what was written
/// (`{"results": [{"port": .., "ok": true} | {"port": .., "error": ..}]}`).
pub async fn put_bindings(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<Json<Value>> {
    if who == Principal::Reader {
        return Err(refused(&who, "bind ports"));
    }
    let items = body
        .get("bindings")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("HTTPBadRequest", "bindings must be a list"))?;
    if items.len() > MAX_BINDINGS {
        return Err(ApiError::bad_request(
            "HTTPBadRequest",
            format!("at most {MAX_BINDINGS} bindings in one request"),
        ));
    }
    let mut wanted: Vec<Binding> = Vec::with_capacity(items.len());
    for item in items {
        let port = item
            .get("port")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ApiError::bad_request("HTTPBadRequest", "each binding names a port"))?;
        let host = item.get("host").and_then(Value::as_str).map(str::to_string);
        wanted.push((port.to_string(), host, status_of(item.get("status"))?));
    }
    let mut results = Vec::with_capacity(wanted.len());
    for chunk in wanted.chunks(BINDINGS_PER_TXN) {
        results.extend(bind_chunk(&api, &who, chunk).await?);
    }
    let written = results.iter().filter(|r| r["ok"] == true).count();
    tracing::info!(principal = %who, ports = results.len(), written, "port bindings reported");
    Ok(Json(json!({ "results": results })))
}

/// One transaction's worth of bindings: what may be written is, all at once; a port that
/// is gone or not the caller's to bind is answered as such.
async fn bind_chunk(api: &Api, who: &Principal, chunk: &[Binding]) -> ApiResult<Vec<Value>> {
    crate::db::retrying(|| async {
        let mut txn = crate::db::Txn::new();
        let mut results = Vec::with_capacity(chunk.len());
        let mut events = Vec::new();
        for (id, host, status) in chunk {
            let Some((mut p, rev)) = api.db.get::<model::Port>(id).await? else {
                results.push(json!({"port": id, "error": "no such port"}));
                continue;
            };
            if !may_bind(who, &p.binding_host_id, host.as_deref()) {
                let e = refused(who, format_args!("bind port {id}"));
                results.push(json!({"port": id, "error": e.message}));
                continue;
            }
            let h = host.clone().unwrap_or_else(|| p.binding_host_id.clone());
            if !p.report_applies(&h, *status) {
                results.push(json!({"port": id, "ok": true}));
                continue;
            }
            events.extend(p.bind(&h, *status));
            txn.update(&p, rev);
            results.push(json!({"port": id, "ok": true}));
        }
        txn.nova_events(events);
        if !txn.is_empty() {
            txn.commit(&api.db).await?;
        }
        Ok(results)
    })
    .await
}

/// `PUT /nb/v1/snat/{network}` `{"host": ..}`: the calling host's SNAT address port on
/// external network `network`, made by the ports resource if it has none yet (201) or
/// the one it has (200). A host asks only for itself (`host` may be left out); the admin
/// names the host.
pub async fn put_snat(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(network): Path<String>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let asked = body.get("host").and_then(Value::as_str);
    let host = match (&who, asked) {
        (Principal::Host(me), None) => me.clone(),
        (Principal::Host(me), Some(h)) if h == me => me.clone(),
        (Principal::Admin, Some(h)) if !h.is_empty() => h.to_string(),
        (Principal::Admin, _) => {
            return Err(ApiError::bad_request(
                "HTTPBadRequest",
                "host is required with the admin token",
            ));
        }
        _ => {
            return Err(refused(
                &who,
                format_args!("make the SNAT port of {:?}", asked.unwrap_or_default()),
            ));
        }
    };
    let (port, created) =
        crate::resources::ops::ports::ensure_chassis_snat(&api, &network, &host).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"port": crate::resources::render(&port)})),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_binds_to_itself_and_releases_only_its_own() {
        let me = Principal::Host("a".into());
        assert!(may_bind(&me, "", Some("a")), "a new port plugged here");
        assert!(may_bind(&me, "b", Some("a")), "a VM moved here");
        assert!(may_bind(&me, "a", None), "status of its own port");
        assert!(may_bind(&me, "a", Some("")), "releasing its own port");
        assert!(!may_bind(&me, "b", None), "status of another host's port");
        assert!(
            !may_bind(&me, "b", Some("")),
            "releasing another host's port"
        );
        assert!(
            !may_bind(&me, "", Some("b")),
            "binding a port to another host"
        );
        assert!(!may_bind(&Principal::Reader, "", Some("a")));
        assert!(may_bind(&Principal::Admin, "b", Some("c")));
    }
}
