//! `/v2/lbaas/listeners`: TCP and UDP listeners on the VIP.

use super::super::loadbalancers::{Q, new_meta, update_meta};
use super::super::render::{self, fields, select};
use super::super::wire::Body;
use super::super::{Fault, FaultResult, change, created_status, holder, may_read};
use super::list_nodes;
use crate::Api;
use crate::context::Context;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use model::LoadBalancer;
use model::lb::{Listener, Protocol, operating};
use serde_json::{Value, json};
use std::sync::Arc;

/// Every protocol Octavia names; only TCP and UDP are balanced here.
const PROTOCOLS: &[&str] = &[
    "HTTP",
    "HTTPS",
    "TCP",
    "TERMINATED_HTTPS",
    "UDP",
    "SCTP",
    "PROMETHEUS",
];

/// What only TLS or L7 listeners use.
const NOT_L4: &[&str] = &[
    "default_tls_container_ref",
    "sni_container_refs",
    "l7policies",
    "insert_headers",
    "client_ca_tls_container_ref",
    "client_crl_container_ref",
    "tls_ciphers",
    "tls_versions",
    "alpn_protocols",
    "hsts_max_age",
    "hsts_include_subdomains",
    "hsts_preload",
    "default_pool",
];

/// Proxy timeouts: accepted and kept by Octavia's amphora driver; a switch does not
/// proxy, so they are read and ignored (docs/api.md).
const TIMEOUTS: &[&str] = &[
    "timeout_client_data",
    "timeout_member_connect",
    "timeout_member_data",
    "timeout_tcp_inspect",
];

/// The most listeners a balancer: its groups' ids hold the listener's index in 8 bits.
pub const MAX_LISTENERS: usize = 256;

pub fn protocol(name: &str) -> FaultResult<Protocol> {
    match name {
        "TCP" => Ok(Protocol::Tcp),
        "UDP" => Ok(Protocol::Udp),
        other => Err(Fault::unsupported(format!(
            "protocol {other}: this provider balances TCP and UDP only (no TLS, HTTP or L7)"
        ))),
    }
}

fn client_auth(b: &mut Body) -> FaultResult<()> {
    match b.choice("client_authentication", &["NONE", "OPTIONAL", "MANDATORY"])? {
        None => Ok(()),
        Some(v) if v == "NONE" => Ok(()),
        Some(_) => Err(Fault::unsupported(
            "client_authentication: this provider does no TLS",
        )),
    }
}

/// Checks `allowed_cidrs` against the VIP's family (Octavia's rule).
/// `connection_limit` -1 (none) only: each client's host balances its own connections,
/// so no one place counts a listener's (OVS counts connections per conntrack zone and
/// host); a limit the datapath cannot honour is refused, as Octavia refuses a provider's
/// unsupported option, rather than stored and ignored.
fn unlimited(limit: Option<i64>) -> FaultResult<()> {
    match limit {
        Some(l) if l != -1 => Err(Fault::unsupported(
            "connection_limit: a distributed load balancer has no one place that counts a listener's connections",
        )),
        _ => Ok(()),
    }
}

fn check_cidrs(lb: &LoadBalancer, cidrs: &[ipnet::IpNet]) -> FaultResult<()> {
    for c in cidrs {
        if c.addr().is_ipv4() != lb.vip_address.is_ipv4() {
            return Err(Fault::validation(format!(
                "CIDR {c} IP version incompatible with VIP {} IP version.",
                lb.vip_address
            )));
        }
    }
    Ok(())
}

/// Checks that `pool` may be `l`'s default pool.
fn check_default_pool(lb: &LoadBalancer, l: &Listener, pool: &str) -> FaultResult<()> {
    let p = lb
        .pool(pool)
        .ok_or_else(|| Fault::new(StatusCode::BAD_REQUEST, format!("Pool {pool} not found.")))?;
    if p.protocol != l.protocol {
        return Err(Fault::validation(format!(
            "The pool protocol '{}' is invalid while the listener protocol is '{}'.",
            p.protocol.as_str(),
            l.protocol.as_str()
        )));
    }
    Ok(())
}

pub async fn list(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Query(q): Q,
) -> FaultResult<Json<Value>> {
    list_nodes(&api, &ctx, &q, "listeners", |lb| {
        lb.listeners
            .iter()
            .map(|l| (l.meta.created_at.clone(), render::listener(lb, l)))
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
    let (lb, _) = holder(&api, &id, "Listener").await?;
    let l = lb
        .listener(&id)
        .ok_or_else(|| Fault::not_found("Listener", &id))?;
    may_read(&ctx, &lb.meta.project_id)?;
    Ok(Json(
        json!({"listener": select(render::listener(&lb, l), &fields(&q))}),
    ))
}

pub async fn create(
    State(api): State<Arc<Api>>,
    ctx: Context,
    body: Bytes,
) -> FaultResult<(StatusCode, Json<Value>)> {
    let mut b = Body::parse(&body, "listener")?;
    let meta = new_meta(&ctx, &mut b, true)?;
    let admin_state_up = b.bool("admin_state_up")?.unwrap_or(true);
    let proto = Body::required("protocol", b.choice("protocol", PROTOCOLS)?)?;
    let port = Body::required("protocol_port", b.int("protocol_port", 1, 65535)?)?;
    let limit = b.int("connection_limit", -1, i64::from(i32::MAX))?;
    let connection_limit = limit.unwrap_or(-1);
    let default_pool_id = b.uuid("default_pool_id")?;
    let lb_id = Body::required("loadbalancer_id", b.uuid("loadbalancer_id")?)?;
    let allowed_cidrs = b.cidrs("allowed_cidrs")?.unwrap_or_default();
    client_auth(&mut b)?;
    b.refuse(NOT_L4)?;
    b.ignore(TIMEOUTS);
    b.finish()?;
    let protocol = protocol(&proto)?;
    unlimited(limit)?;
    let l = Listener {
        meta,
        status: created_status(operating::ONLINE),
        admin_state_up,
        protocol,
        protocol_port: port as u16,
        connection_limit,
        allowed_cidrs,
        default_pool_id,
    };
    let id = l.meta.id.clone();
    let v = change(&api, &ctx, &lb_id, "Load Balancer", |lb| {
        if lb.meta.id != lb_id {
            return Err(Fault::not_found("Load Balancer", &lb_id));
        }
        if l.meta.project_id != lb.meta.project_id {
            return Err(Fault::forbidden());
        }
        if lb
            .listeners
            .iter()
            .any(|o| o.protocol == l.protocol && o.protocol_port == l.protocol_port)
        {
            return Err(Fault::new(
                StatusCode::CONFLICT,
                format!(
                    "Another Listener on this Load Balancer is already using protocol {} and protocol_port {}",
                    l.protocol.as_str(),
                    l.protocol_port
                ),
            ));
        }
        if lb.listeners.len() >= MAX_LISTENERS {
            return Err(Fault::validation(format!(
                "A load balancer holds at most {MAX_LISTENERS} listeners."
            )));
        }
        check_cidrs(lb, &l.allowed_cidrs)?;
        if let Some(p) = &l.default_pool_id {
            check_default_pool(lb, &l, p)?;
        }
        lb.listeners.push(l.clone());
        Ok(Value::Null)
    })
    .await;
    v?;
    answer(&api, &id, StatusCode::CREATED).await
}

async fn answer(api: &Api, id: &str, code: StatusCode) -> FaultResult<(StatusCode, Json<Value>)> {
    let (lb, _) = holder(api, id, "Listener").await?;
    let l = lb
        .listener(id)
        .ok_or_else(|| Fault::not_found("Listener", id))?;
    Ok((code, Json(json!({"listener": render::listener(&lb, l)}))))
}

pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    body: Bytes,
) -> FaultResult<Json<Value>> {
    change(&api, &ctx, &id, "Listener", |lb| {
        let mut b = Body::parse(&body, "listener")?;
        let i = lb
            .listeners
            .iter()
            .position(|l| l.meta.id == id)
            .ok_or_else(|| Fault::not_found("Listener", &id))?;
        let mut l = lb.listeners[i].clone();
        update_meta(&mut l.meta, &mut b, true)?;
        if let Some(up) = b.bool("admin_state_up")? {
            l.admin_state_up = up;
        }
        let limit = b.int("connection_limit", -1, i64::from(i32::MAX))?;
        if let Some(c) = limit {
            l.connection_limit = c;
        }
        if b.is_null("default_pool_id") {
            l.default_pool_id = None;
        }
        if let Some(p) = b.uuid("default_pool_id")? {
            check_default_pool(lb, &l, &p)?;
            l.default_pool_id = Some(p);
        }
        if b.is_null("allowed_cidrs") {
            l.allowed_cidrs.clear();
        }
        if let Some(c) = b.cidrs("allowed_cidrs")? {
            check_cidrs(lb, &c)?;
            l.allowed_cidrs = c;
        }
        client_auth(&mut b)?;
        b.refuse(NOT_L4)?;
        b.ignore(TIMEOUTS);
        b.finish()?;
        unlimited(limit)?;
        lb.listeners[i] = l;
        Ok(Value::Null)
    })
    .await?;
    Ok(answer(&api, &id, StatusCode::OK).await?.1)
}

pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
) -> FaultResult<StatusCode> {
    change(&api, &ctx, &id, "Listener", |lb| {
        let before = lb.listeners.len();
        lb.listeners.retain(|l| l.meta.id != id);
        if lb.listeners.len() == before {
            return Err(Fault::not_found("Listener", &id));
        }
        // A pool made for this listener stays, no longer its default (as in Octavia).
        for p in &mut lb.pools {
            if p.listener_id.as_deref() == Some(id.as_str()) {
                p.listener_id = None;
            }
        }
        Ok(Value::Null)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Its statistics summed over the hosts (`octavia::stats`).
pub async fn stats(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
) -> FaultResult<Json<Value>> {
    let (lb, _) = holder(&api, &id, "Listener").await?;
    lb.listener(&id)
        .ok_or_else(|| Fault::not_found("Listener", &id))?;
    may_read(&ctx, &lb.meta.project_id)?;
    Ok(Json(crate::octavia::stats::of(&api, &[id.as_str()]).await?))
}
