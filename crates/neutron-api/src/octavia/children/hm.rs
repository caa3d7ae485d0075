//! `/v2/lbaas/healthmonitors`: one per pool; TCP, UDP-CONNECT, PING and HTTP GET.

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
use model::lb::{HealthMonitor, Protocol, operating};
use serde_json::{Value, json};
use std::sync::Arc;

const TYPES: &[&str] = &[
    "HTTP",
    "HTTPS",
    "PING",
    "TCP",
    "TLS-HELLO",
    "UDP-CONNECT",
    "SCTP",
];
const METHODS: &[&str] = &[
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];
const MAX_INT: i64 = 2_147_483_647;

/// Octavia's `expected_codes`: `200`, `200,202` or `200-204`, codes within 100..=599.
fn check_codes(codes: &str) -> FaultResult<()> {
    let code = |s: &str| s.parse::<u16>().ok().filter(|c| (100..=599).contains(c));
    let ok = match codes.split_once('-') {
        Some((a, b)) => matches!((code(a), code(b)), (Some(a), Some(b)) if a <= b),
        None => codes.split(',').all(|c| code(c).is_some()),
    };
    if ok {
        Ok(())
    } else {
        Err(Fault::new(
            StatusCode::BAD_REQUEST,
            format!(
                "Invalid input for field/attribute expected_codes. Value: '{codes}'. Value should match the pattern ^(\\d{{3}}(\\s*,\\s*\\d{{3}})*)$|^(\\d{{3}}-\\d{{3}})$"
            ),
        ))
    }
}

fn check_path(path: &str) -> FaultResult<()> {
    if path.starts_with('/') && !path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(Fault::new(
            StatusCode::BAD_REQUEST,
            format!(
                "Invalid input for field/attribute url_path. Value: '{path}'. Not a valid URL path"
            ),
        ))
    }
}

pub async fn list(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Query(q): Q,
) -> FaultResult<Json<Value>> {
    list_nodes(&api, &ctx, &q, "healthmonitors", |lb| {
        lb.pools
            .iter()
            .filter_map(|p| {
                let h = p.healthmonitor.as_ref()?;
                Some((h.meta.created_at.clone(), render::healthmonitor(p, h)))
            })
            .collect()
    })
    .await
}

async fn find(api: &Api, id: &str) -> FaultResult<(model::LoadBalancer, Value)> {
    let (lb, _) = holder(api, id, "Health Monitor").await?;
    let p = lb
        .pool_of_monitor(id)
        .ok_or_else(|| Fault::not_found("Health Monitor", id))?;
    let h = p.healthmonitor.as_ref().expect("pool_of_monitor found it");
    let v = Value::Object(render::healthmonitor(p, h));
    Ok((lb, v))
}

pub async fn show(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    Query(q): Q,
) -> FaultResult<Json<Value>> {
    let (lb, v) = find(&api, &id).await?;
    may_read(&ctx, &lb.meta.project_id)?;
    let Value::Object(m) = v else {
        return Err(Fault::not_found("Health Monitor", &id));
    };
    Ok(Json(json!({"healthmonitor": select(m, &fields(&q))})))
}

pub async fn create(
    State(api): State<Arc<Api>>,
    ctx: Context,
    body: Bytes,
) -> FaultResult<(StatusCode, Json<Value>)> {
    let mut b = Body::parse(&body, "healthmonitor")?;
    let meta = new_meta(&ctx, &mut b, false)?;
    let admin_state_up = b.bool("admin_state_up")?.unwrap_or(true);
    let pool_id = Body::required("pool_id", b.uuid("pool_id")?)?;
    let kind = Body::required("type", b.choice("type", TYPES)?)?;
    let delay = Body::required("delay", b.int("delay", 0, MAX_INT)?)?;
    let timeout = Body::required("timeout", b.int("timeout", 0, MAX_INT)?)?;
    let max_retries = Body::required("max_retries", b.int("max_retries", 1, 10)?)?;
    let max_retries_down = b.int("max_retries_down", 1, 10)?.unwrap_or(3);
    let http_method = b.choice("http_method", METHODS)?;
    let url_path = b.string("url_path", 2048)?;
    let expected_codes = b.string("expected_codes", 64)?;
    b.refuse(&["http_version", "domain_name"])?;
    b.finish()?;
    if !["TCP", "UDP-CONNECT", "PING", "HTTP"].contains(&kind.as_str()) {
        return Err(Fault::unsupported(format!(
            "health monitor type {kind}: this provider checks with TCP, UDP-CONNECT, PING and HTTP"
        )));
    }
    let http = kind == "HTTP";
    if !http && (http_method.is_some() || url_path.is_some() || expected_codes.is_some()) {
        return Err(Fault::validation(format!(
            "http_method, url_path and expected_codes are only for HTTP health monitors, not {kind}."
        )));
    }
    if http_method.as_deref().is_some_and(|m| m != "GET") {
        return Err(Fault::unsupported("http_method: only GET"));
    }
    if let Some(p) = &url_path {
        check_path(p)?;
    }
    if let Some(c) = &expected_codes {
        check_codes(c)?;
    }
    let h = HealthMonitor {
        meta,
        status: created_status(operating::ONLINE),
        admin_state_up,
        kind: kind.clone(),
        delay: delay as u32,
        timeout: timeout as u32,
        max_retries: max_retries as u8,
        max_retries_down: max_retries_down as u8,
        http_method: http.then(|| http_method.unwrap_or_else(|| "GET".into())),
        url_path: http.then(|| url_path.unwrap_or_else(|| "/".into())),
        expected_codes: http.then(|| expected_codes.unwrap_or_else(|| "200".into())),
    };
    let id = h.meta.id.clone();
    change(&api, &ctx, &pool_id, "Pool", |lb| {
        if h.meta.project_id != lb.meta.project_id {
            return Err(Fault::forbidden());
        }
        let p = lb
            .pool_mut(&pool_id)
            .ok_or_else(|| Fault::not_found("Pool", &pool_id))?;
        if p.healthmonitor.is_some() {
            return Err(Fault::new(
                StatusCode::CONFLICT,
                "This pool already has a health monitor",
            ));
        }
        if h.kind == "UDP-CONNECT" && p.protocol != Protocol::Udp {
            return Err(Fault::validation(format!(
                "The associated pool protocol is {}, so only a HTTP, PING, TCP health monitor is supported.",
                p.protocol.as_str()
            )));
        }
        p.healthmonitor = Some(h.clone());
        Ok(Value::Null)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"healthmonitor": find(&api, &id).await?.1})),
    ))
}

pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    body: Bytes,
) -> FaultResult<Json<Value>> {
    change(&api, &ctx, &id, "Health Monitor", |lb| {
        let mut b = Body::parse(&body, "healthmonitor")?;
        let h = lb
            .pools
            .iter_mut()
            .filter_map(|p| p.healthmonitor.as_mut())
            .find(|h| h.meta.id == id)
            .ok_or_else(|| Fault::not_found("Health Monitor", &id))?;
        update_meta(&mut h.meta, &mut b, false)?;
        if let Some(up) = b.bool("admin_state_up")? {
            h.admin_state_up = up;
        }
        if let Some(d) = b.int("delay", 0, MAX_INT)? {
            h.delay = d as u32;
        }
        if let Some(t) = b.int("timeout", 0, MAX_INT)? {
            h.timeout = t as u32;
        }
        if let Some(r) = b.int("max_retries", 1, 10)? {
            h.max_retries = r as u8;
        }
        if let Some(r) = b.int("max_retries_down", 1, 10)? {
            h.max_retries_down = r as u8;
        }
        let http = h.kind == "HTTP";
        let method = b.choice("http_method", METHODS)?;
        let path = b.string("url_path", 2048)?;
        let codes = b.string("expected_codes", 64)?;
        b.refuse(&["http_version", "domain_name"])?;
        b.finish()?;
        if !http && (method.is_some() || path.is_some() || codes.is_some()) {
            return Err(Fault::validation(format!(
                "http_method, url_path and expected_codes are only for HTTP health monitors, not {}.",
                h.kind
            )));
        }
        if method.as_deref().is_some_and(|m| m != "GET") {
            return Err(Fault::unsupported("http_method: only GET"));
        }
        if let Some(p) = path {
            check_path(&p)?;
            h.url_path = Some(p);
        }
        if let Some(c) = codes {
            check_codes(&c)?;
            h.expected_codes = Some(c);
        }
        Ok(Value::Null)
    })
    .await?;
    Ok(Json(json!({"healthmonitor": find(&api, &id).await?.1})))
}

pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
) -> FaultResult<StatusCode> {
    change(&api, &ctx, &id, "Health Monitor", |lb| {
        let p = lb
            .pools
            .iter_mut()
            .find(|p| p.healthmonitor.as_ref().is_some_and(|h| h.meta.id == id))
            .ok_or_else(|| Fault::not_found("Health Monitor", &id))?;
        p.healthmonitor = None;
        // Unchecked again: nobody marks its members.
        for m in &mut p.members {
            m.status.operating_status = operating::NO_MONITOR.into();
        }
        Ok(Value::Null)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
