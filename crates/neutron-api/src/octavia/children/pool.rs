//! `/v2/lbaas/pools`: the members a listener balances over, and how it picks one.

use super::super::loadbalancers::{Q, new_meta, update_meta};
use super::super::render::{self, fields, select};
use super::super::wire::Body;
use super::super::{Fault, FaultResult, all, change, created_status, holder, may_read};
use super::list_nodes;
use crate::Api;
use crate::context::Context;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use model::lb::{Algorithm, Pool, Protocol, SessionPersistence, operating};
use serde_json::{Map, Value, json};
use std::net::IpAddr;
use std::sync::Arc;

const PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP", "UDP", "SCTP"];
const ALGORITHMS: &[&str] = &[
    "ROUND_ROBIN",
    "LEAST_CONNECTIONS",
    "SOURCE_IP",
    "SOURCE_IP_PORT",
];
const NOT_L4: &[&str] = &[
    "tls_container_ref",
    "ca_tls_container_ref",
    "crl_container_ref",
    "tls_enabled",
    "tls_ciphers",
    "tls_versions",
    "alpn_protocols",
    "healthmonitor",
    "members",
];

pub fn algorithm(name: &str) -> FaultResult<Algorithm> {
    match name {
        "ROUND_ROBIN" => Ok(Algorithm::RoundRobin),
        "SOURCE_IP_PORT" => Ok(Algorithm::SourceIpPort),
        "SOURCE_IP" => Ok(Algorithm::SourceIp),
        "LEAST_CONNECTIONS" => Err(Fault::unsupported(
            "lb_algorithm LEAST_CONNECTIONS: the switch cannot count the open connections \
             of members (use ROUND_ROBIN, SOURCE_IP_PORT or SOURCE_IP)",
        )),
        other => Err(Fault::unsupported(format!("lb_algorithm {other}"))),
    }
}

/// A `session_persistence` as sent (a PUT may leave any attribute out).
#[derive(Default)]
struct SpRequest {
    kind: Option<String>,
    cookie_name: Option<String>,
    timeout: Option<i64>,
    granularity: Option<IpAddr>,
}

/// Reads `session_persistence` with Octavia's WSME types. `Ok(None)` when absent,
/// `Ok(Some(None))` when null (cleared).
fn persistence(b: &mut Body) -> FaultResult<Option<Option<SpRequest>>> {
    if b.is_null("session_persistence") {
        b.ignore(&["session_persistence"]);
        return Ok(Some(None));
    }
    let Some(m) = b.object("session_persistence")? else {
        return Ok(None);
    };
    let mut sp = Body::from_map("session_persistence", m);
    let req = SpRequest {
        kind: sp.choice("type", &["SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"])?,
        cookie_name: sp.string("cookie_name", 255)?,
        timeout: sp.int("persistence_timeout", i64::MIN, i64::MAX)?,
        granularity: sp.ip("persistence_granularity")?,
    };
    sp.finish()?;
    Ok(Some(Some(req)))
}

/// Octavia's checks of a persistence request for a pool of `protocol` (the UDP rules,
/// then `validate.check_session_persistence`), then this provider's: SOURCE_IP only, a
/// granularity that is a netmask (of the VIP's family: [`check_family`]).
fn check_persistence(sp: &SpRequest, protocol: Protocol) -> FaultResult<()> {
    let kind = sp.kind.as_deref();
    let cookie = sp.cookie_name.as_deref().filter(|c| !c.is_empty());
    if protocol == Protocol::Udp {
        if kind == Some("SOURCE_IP") && cookie.is_some() {
            return Err(Fault::validation(
                "session_persistence SOURCE_IP type for UDP protocol only accepts: type, \
                 persistence_timeout, persistence_granularity.",
            ));
        }
        if cookie.is_some() {
            return Err(Fault::validation(
                "Cookie names are not supported for UDP pools.",
            ));
        }
        if let Some(k @ ("HTTP_COOKIE" | "APP_COOKIE")) = kind {
            return Err(Fault::validation(format!(
                "Session persistence of type {k} is not supported for UDP protocol pools."
            )));
        }
    } else if sp.timeout.is_some_and(|t| t != 0) || sp.granularity.is_some() {
        return Err(Fault::validation(
            "persistence_timeout and persistence_granularity is only for UDP protocol pools.",
        ));
    }
    if cookie.is_some() && kind != Some("APP_COOKIE") {
        return Err(Fault::validation(
            "Field \"cookie_name\" can only be specified with session persistence of type \
             \"APP_COOKIE\".",
        ));
    }
    if kind == Some("APP_COOKIE") && cookie.is_none() {
        return Err(Fault::validation(
            "Field \"cookie_name\" must be specified when using the \"APP_COOKIE\" session \
             persistence type.",
        ));
    }
    if let Some(k @ ("HTTP_COOKIE" | "APP_COOKIE")) = kind {
        return Err(Fault::unsupported(format!(
            "session_persistence {k}: this provider balances at L4 (TCP and UDP) and reads \
             no cookies; SOURCE_IP persistence is supported"
        )));
    }
    match sp.granularity {
        Some(g) if model::lb::granularity_len(g).is_none() => Err(Fault::unsupported(format!(
            "persistence_granularity {g}: the switch masks client addresses with a netmask \
             (as 255.255.255.0, or ffff:ffff:ffff:ffff:: for an IPv6 VIP)"
        ))),
        _ => Ok(()),
    }
}

/// This provider's check of a granularity against the balancer's VIP: the switch masks
/// the clients' addresses, which are of the VIP's family.
fn check_family(sp: Option<&SessionPersistence>, vip: IpAddr) -> FaultResult<()> {
    match sp.and_then(|sp| sp.persistence_granularity) {
        Some(g) if g.is_ipv4() != vip.is_ipv4() => {
            let (family, example) = if vip.is_ipv4() {
                ("IPv4", "255.255.255.0")
            } else {
                ("IPv6", "ffff:ffff:ffff:ffff::")
            };
            Err(Fault::unsupported(format!(
                "persistence_granularity {g}: the VIP {vip} is {family}, and so are its \
                 clients, whose addresses the switch masks with an {family} netmask (as \
                 {example})"
            )))
        }
        _ => Ok(()),
    }
}

/// The stored persistence after a request: a POST's as given, a PUT's merged into the
/// pool's (Octavia updates the attributes sent).
fn merge(
    old: Option<&SessionPersistence>,
    sp: SpRequest,
    protocol: Protocol,
) -> FaultResult<SessionPersistence> {
    check_persistence(&sp, protocol)?;
    let kind = match (sp.kind, old) {
        (Some(k), _) => k,
        (None, Some(o)) => o.kind.clone(),
        (None, None) => Body::required("type", None::<String>)?,
    };
    Ok(SessionPersistence {
        kind,
        persistence_timeout: sp
            .timeout
            .or_else(|| old.and_then(|o| o.persistence_timeout)),
        persistence_granularity: sp
            .granularity
            .or_else(|| old.and_then(|o| o.persistence_granularity)),
    })
}

pub async fn list(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Query(q): Q,
) -> FaultResult<Json<Value>> {
    list_nodes(&api, &ctx, &q, "pools", |lb| {
        lb.pools
            .iter()
            .map(|p| (p.meta.created_at.clone(), render::pool(lb, p)))
            .collect()
    })
    .await
}

pub async fn show(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    Query(q): Q,
) -> FaultResult<Json<Value>> {
    let (lb, _) = holder(&api, &id, "Pool").await?;
    let p = lb.pool(&id).ok_or_else(|| Fault::not_found("Pool", &id))?;
    may_read(&ctx, &lb.meta.project_id)?;
    Ok(Json(
        json!({"pool": select(render::pool(&lb, p), &fields(&q))}),
    ))
}

async fn answer(api: &Api, id: &str) -> FaultResult<Map<String, Value>> {
    let (lb, _) = holder(api, id, "Pool").await?;
    let p = lb.pool(id).ok_or_else(|| Fault::not_found("Pool", id))?;
    Ok(render::pool(&lb, p))
}

pub async fn create(
    State(api): State<Arc<Api>>,
    ctx: Context,
    body: Bytes,
) -> FaultResult<(StatusCode, Json<Value>)> {
    let mut b = Body::parse(&body, "pool")?;
    let meta = new_meta(&ctx, &mut b, true)?;
    let admin_state_up = b.bool("admin_state_up")?.unwrap_or(true);
    let listener_id = b.uuid("listener_id")?;
    let lb_id = b.uuid("loadbalancer_id")?;
    let proto = Body::required("protocol", b.choice("protocol", PROTOCOLS)?)?;
    let algo = Body::required("lb_algorithm", b.choice("lb_algorithm", ALGORITHMS)?)?;
    let sp = persistence(&mut b)?.flatten();
    b.refuse(NOT_L4)?;
    b.finish()?;
    let protocol = super::listener::protocol(&proto)?;
    let lb_algorithm = algorithm(&algo)?;
    let sp = sp.map(|sp| merge(None, sp, protocol)).transpose()?;
    // The balancer: named, or the listener's.
    let lb_id = match (lb_id, &listener_id) {
        (Some(id), _) => id,
        (None, Some(l)) => all(&api)
            .await?
            .into_iter()
            .find(|(lb, _)| lb.listener(l).is_some())
            .map(|(lb, _)| lb.meta.id)
            .ok_or_else(|| Fault::not_found("Listener", l))?,
        (None, None) => {
            return Err(Fault::validation(
                "Must provide at least one of: loadbalancer_id, listener_id",
            ));
        }
    };
    let pool = Pool {
        meta,
        status: created_status(operating::ONLINE),
        admin_state_up,
        protocol,
        lb_algorithm,
        session_persistence: sp,
        listener_id: listener_id.clone(),
        members: Vec::new(),
        healthmonitor: None,
    };
    let id = pool.meta.id.clone();
    change(&api, &ctx, &lb_id, "Load Balancer", |lb| {
        if lb.meta.id != lb_id {
            return Err(Fault::not_found("Load Balancer", &lb_id));
        }
        if pool.meta.project_id != lb.meta.project_id {
            return Err(Fault::forbidden());
        }
        check_family(pool.session_persistence.as_ref(), lb.vip_address)?;
        if let Some(lid) = &listener_id {
            let l = lb
                .listeners
                .iter_mut()
                .find(|l| l.meta.id == *lid)
                .ok_or_else(|| Fault::not_found("Listener", lid))?;
            if l.default_pool_id.is_some() {
                return Err(Fault::new(
                    StatusCode::CONFLICT,
                    "This listener already has a default pool",
                ));
            }
            if l.protocol != pool.protocol {
                return Err(Fault::validation(format!(
                    "The pool protocol '{}' is invalid while the listener protocol is '{}'.",
                    pool.protocol.as_str(),
                    l.protocol.as_str()
                )));
            }
            l.default_pool_id = Some(pool.meta.id.clone());
        }
        lb.pools.push(pool.clone());
        Ok(Value::Null)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"pool": answer(&api, &id).await?})),
    ))
}

pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    body: Bytes,
) -> FaultResult<Json<Value>> {
    change(&api, &ctx, &id, "Pool", |lb| {
        let mut b = Body::parse(&body, "pool")?;
        let vip = lb.vip_address;
        let p = lb
            .pool_mut(&id)
            .ok_or_else(|| Fault::not_found("Pool", &id))?;
        update_meta(&mut p.meta, &mut b, true)?;
        if let Some(up) = b.bool("admin_state_up")? {
            p.admin_state_up = up;
        }
        if let Some(a) = b.choice("lb_algorithm", ALGORITHMS)? {
            p.lb_algorithm = algorithm(&a)?;
        }
        if let Some(sp) = persistence(&mut b)? {
            p.session_persistence = sp
                .map(|sp| merge(p.session_persistence.as_ref(), sp, p.protocol))
                .transpose()?;
            check_family(p.session_persistence.as_ref(), vip)?;
        }
        b.refuse(NOT_L4)?;
        b.finish()?;
        Ok(Value::Null)
    })
    .await?;
    Ok(Json(json!({"pool": answer(&api, &id).await?})))
}

pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
) -> FaultResult<StatusCode> {
    change(&api, &ctx, &id, "Pool", |lb| {
        let before = lb.pools.len();
        lb.pools.retain(|p| p.meta.id != id);
        if lb.pools.len() == before {
            return Err(Fault::not_found("Pool", &id));
        }
        // Its members and monitor go with it; listeners lose their default pool.
        for l in &mut lb.listeners {
            if l.default_pool_id.as_deref() == Some(id.as_str()) {
                l.default_pool_id = None;
            }
        }
        Ok(Value::Null)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
