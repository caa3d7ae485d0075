//! `/v2/lbaas/pools/{pool}/members`: the backends of a pool.

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
use model::lb::{Member, operating};
use serde_json::{Value, json};
use std::sync::Arc;

/// The heaviest weight Octavia takes.
pub const MAX_WEIGHT: i64 = 256;

fn monitor(b: &mut Body) -> FaultResult<(Option<std::net::IpAddr>, Option<u16>)> {
    let a = b.ip("monitor_address")?;
    let p = b.int("monitor_port", 1, 65535)?.map(|p| p as u16);
    Ok((a, p))
}

pub async fn list(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(pool): Path<String>,
    Query(q): Q,
) -> FaultResult<Json<Value>> {
    let (lb, _) = holder(&api, &pool, "Pool").await?;
    lb.pool(&pool)
        .ok_or_else(|| Fault::not_found("Pool", &pool))?;
    may_read(&ctx, &lb.meta.project_id)?;
    list_nodes(&api, &ctx, &q, "members", |l| {
        l.pool(&pool)
            .map(|p| {
                p.members
                    .iter()
                    .map(|m| (m.meta.created_at.clone(), render::member(m)))
                    .collect()
            })
            .unwrap_or_default()
    })
    .await
}

pub async fn show(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((pool, id)): Path<(String, String)>,
    Query(q): Q,
) -> FaultResult<Json<Value>> {
    let (lb, _) = holder(&api, &pool, "Pool").await?;
    let p = lb
        .pool(&pool)
        .ok_or_else(|| Fault::not_found("Pool", &pool))?;
    let m = p
        .members
        .iter()
        .find(|m| m.meta.id == id)
        .ok_or_else(|| Fault::not_found("Member", &id))?;
    may_read(&ctx, &lb.meta.project_id)?;
    Ok(Json(
        json!({"member": select(render::member(m), &fields(&q))}),
    ))
}

async fn answer(api: &Api, pool: &str, id: &str) -> FaultResult<Value> {
    let (lb, _) = holder(api, pool, "Pool").await?;
    lb.pool(pool)
        .and_then(|p| p.members.iter().find(|m| m.meta.id == id))
        .map(|m| json!({"member": render::member(m)}))
        .ok_or_else(|| Fault::not_found("Member", id))
}

pub async fn create(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(pool): Path<String>,
    body: Bytes,
) -> FaultResult<(StatusCode, Json<Value>)> {
    let mut b = Body::parse(&body, "member")?;
    let meta = new_meta(&ctx, &mut b, false)?;
    let admin_state_up = b.bool("admin_state_up")?.unwrap_or(true);
    let address = Body::required("address", b.ip("address")?)?;
    let port = Body::required("protocol_port", b.int("protocol_port", 1, 65535)?)?;
    let weight = b.int("weight", 0, MAX_WEIGHT)?.unwrap_or(1);
    let backup = b.bool("backup")?.unwrap_or(false);
    let subnet_id = b.uuid("subnet_id")?;
    let (monitor_address, monitor_port) = monitor(&mut b)?;
    b.refuse(&["request_sriov"])?;
    b.finish()?;
    if let Some(s) = &subnet_id {
        let Some((subnet, _)) = api.db.get::<model::Subnet>(s).await? else {
            return Err(Fault::new(
                StatusCode::BAD_REQUEST,
                format!("Subnet {s} not found."),
            ));
        };
        if !subnet.cidr.contains(&address) {
            return Err(Fault::validation(format!(
                "Member address {address} is not in subnet {s}."
            )));
        }
    }
    let m = Member {
        meta,
        status: created_status(operating::NO_MONITOR),
        admin_state_up,
        address,
        protocol_port: port as u16,
        weight: weight as u16,
        backup,
        subnet_id,
        monitor_address,
        monitor_port,
    };
    let id = m.meta.id.clone();
    change(&api, &ctx, &pool, "Pool", |lb| {
        if m.meta.project_id != lb.meta.project_id {
            return Err(Fault::forbidden());
        }
        if address.is_ipv4() != lb.vip_address.is_ipv4() {
            return Err(Fault::validation(format!(
                "Member address {address} IP version does not match the VIP {}.",
                lb.vip_address
            )));
        }
        let p = lb
            .pool_mut(&pool)
            .ok_or_else(|| Fault::not_found("Pool", &pool))?;
        if p
            .members
            .iter()
            .any(|o| o.address == m.address && o.protocol_port == m.protocol_port)
        {
            return Err(Fault::new(
                StatusCode::CONFLICT,
                format!(
                    "Another member on this pool is already using ip {} on protocol_port {}",
                    m.address, m.protocol_port
                ),
            ));
        }
        if p.members.len() >= crate::octavia::MAX_MEMBERS {
            return Err(Fault::validation(format!(
                "A pool holds at most {} members: the datapath's select group has one bucket per member.",
                crate::octavia::MAX_MEMBERS
            )));
        }
        p.members.push(m.clone());
        Ok(Value::Null)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(answer(&api, &pool, &id).await?)))
}

pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((pool, id)): Path<(String, String)>,
    body: Bytes,
) -> FaultResult<Json<Value>> {
    change(&api, &ctx, &pool, "Pool", |lb| {
        let mut b = Body::parse(&body, "member")?;
        let p = lb
            .pool_mut(&pool)
            .ok_or_else(|| Fault::not_found("Pool", &pool))?;
        let m = p
            .members
            .iter_mut()
            .find(|m| m.meta.id == id)
            .ok_or_else(|| Fault::not_found("Member", &id))?;
        update_meta(&mut m.meta, &mut b, false)?;
        if let Some(up) = b.bool("admin_state_up")? {
            m.admin_state_up = up;
        }
        if let Some(w) = b.int("weight", 0, MAX_WEIGHT)? {
            m.weight = w as u16;
        }
        if let Some(backup) = b.bool("backup")? {
            m.backup = backup;
        }
        if b.is_null("monitor_address") {
            m.monitor_address = None;
        }
        if b.is_null("monitor_port") {
            m.monitor_port = None;
        }
        let (a, port) = monitor(&mut b)?;
        if a.is_some() {
            m.monitor_address = a;
        }
        if port.is_some() {
            m.monitor_port = port;
        }
        b.finish()?;
        Ok(Value::Null)
    })
    .await?;
    Ok(Json(answer(&api, &pool, &id).await?))
}

pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((pool, id)): Path<(String, String)>,
) -> FaultResult<StatusCode> {
    change(&api, &ctx, &pool, "Pool", |lb| {
        let p = lb
            .pool_mut(&pool)
            .ok_or_else(|| Fault::not_found("Pool", &pool))?;
        let before = p.members.len();
        p.members.retain(|m| m.meta.id != id);
        if p.members.len() == before {
            return Err(Fault::not_found("Member", &id));
        }
        Ok(Value::Null)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
