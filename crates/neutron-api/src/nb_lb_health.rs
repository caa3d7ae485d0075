//! `PUT /nb/v1/lb-health` `{"host", "loadbalancer", "member", "operating_status"}`: the
//! host that checks a balancer member (the host its monitored address's port is bound to,
//! `controller::apps::lb::health`) says whether it is up (ONLINE) or down (ERROR). The
//! server sets the member's status and rolls the tree up (pool, listener, balancer) in one
//! compare-and-swap write, so every host's select group follows it. A host writes only the
//! members it checks; the admin any.

use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::nb_auth::Principal;
use axum::extract::State;
use axum::{Extension, Json};
use model::LoadBalancer;
use model::lb::operating;
use serde_json::{Value, json};
use std::sync::Arc;

pub async fn put_health(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<Json<Value>> {
    let field = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| ApiError::bad_request("HTTPBadRequest", format!("{k} is required")))
    };
    let (lb_id, member) = (field("loadbalancer")?, field("member")?);
    let up = match field("operating_status")?.as_str() {
        operating::ONLINE => true,
        operating::ERROR => false,
        other => {
            return Err(ApiError::bad_request(
                "HTTPBadRequest",
                format!("operating_status {other:?}: ONLINE or ERROR"),
            ));
        }
    };
    let host = match (&who, body.get("host").and_then(Value::as_str)) {
        (Principal::Host(me), None) => Some(me.clone()),
        (Principal::Host(me), Some(h)) if h == me => Some(me.clone()),
        (Principal::Admin, _) => None,
        _ => {
            tracing::warn!(principal = %who, "NB write refused: member health");
            return Err(ApiError::forbidden(format!(
                "{who} may not write the health of member {member}"
            )));
        }
    };
    let changed = crate::db::retrying(|| async {
        let Some((mut lb, rev)) = api.db.get::<LoadBalancer>(&lb_id).await? else {
            return Err(ApiError::not_found("LoadBalancer", &lb_id));
        };
        if lb.pool_of_member(&member).is_none() {
            return Err(ApiError::not_found("Member", &member));
        }
        if let Some(h) = &host {
            checks(&api, &lb, &member, h).await?;
        }
        let Some(changed) = lb.set_member_health(&member, up) else {
            return Err(ApiError::conflict(
                "HTTPConflict",
                format!("member {member} of {lb_id} has no health monitor"),
            ));
        };
        if !changed {
            return Ok(false);
        }
        save_as_checker(&api, lb, rev).await?;
        Ok(true)
    })
    .await?;
    if changed {
        tracing::info!(loadbalancer = %lb_id, %member, up, "member health written");
    }
    Ok(Json(json!({"member": member, "changed": changed})))
}

/// Refuses unless `host` checks `member`: the port holding its monitored address (on the
/// VIP's network, or on its own subnet's network behind a router) is bound to `host`.
async fn checks(api: &Api, lb: &LoadBalancer, member: &str, host: &str) -> ApiResult<()> {
    let Some(m) = lb
        .pools
        .iter()
        .flat_map(|p| &p.members)
        .find(|m| m.meta.id == member)
    else {
        return Err(ApiError::not_found("Member", member));
    };
    let (ports, subnets) = member_ports(api, lb).await?;
    if member_port(lb, m, &ports, &subnets).is_some_and(|p| p.binding_host_id == host) {
        Ok(())
    } else {
        tracing::warn!(%host, member, "NB write refused: member health from a host that does not check it");
        Err(ApiError::forbidden(format!(
            "host {host} does not check member {member}"
        )))
    }
}

/// Subnet id → network id, for the members' subnets.
pub type Subnets = std::collections::BTreeMap<String, String>;

/// What one pass over the balancers has read: subnets' networks and networks' ports, each
/// read once however many balancers share them.
#[derive(Default)]
struct Reads {
    subnets: Subnets,
    ports: std::collections::BTreeMap<String, Vec<model::Port>>,
}

/// The ports that may hold `lb`'s members: those of the VIP's network and of its members'
/// subnets' networks; and those subnets' networks.
pub async fn member_ports(api: &Api, lb: &LoadBalancer) -> ApiResult<(Vec<model::Port>, Subnets)> {
    member_ports_in(api, lb, &mut Reads::default()).await
}

/// [`member_ports`], reading only what `reads` does not hold yet.
async fn member_ports_in(
    api: &Api,
    lb: &LoadBalancer,
    reads: &mut Reads,
) -> ApiResult<(Vec<model::Port>, Subnets)> {
    let mut subnets = Subnets::new();
    for id in lb
        .pools
        .iter()
        .flat_map(|p| &p.members)
        .filter_map(|m| m.subnet_id.as_ref())
    {
        if !reads.subnets.contains_key(id)
            && let Some((s, _)) = api.db.get::<model::Subnet>(id).await?
        {
            reads.subnets.insert(id.clone(), s.network_id);
        }
        if let Some(n) = reads.subnets.get(id) {
            subnets.insert(id.clone(), n.clone());
        }
    }
    let mut networks: std::collections::BTreeSet<&str> =
        subnets.values().map(String::as_str).collect();
    networks.insert(&lb.vip_network_id);
    let mut ports = Vec::new();
    for n in networks {
        if !reads.ports.contains_key(n) {
            let records = api
                .db
                .store
                .list_topic(model::Table::Port.name(), n, false)
                .await?;
            let on_net = records
                .iter()
                .filter_map(|r| serde_json::from_slice::<model::Port>(&r.value).ok())
                .filter(|p| p.network_id == n)
                .collect();
            reads.ports.insert(n.to_string(), on_net);
        }
        ports.extend(reads.ports[n].iter().cloned());
    }
    Ok((ports, subnets))
}

/// The port holding member `m`'s monitored address: on the VIP's network, else on its
/// subnet's network (behind a router; addresses may repeat across networks).
pub fn member_port<'a>(
    lb: &LoadBalancer,
    m: &model::lb::Member,
    ports: &'a [model::Port],
    subnets: &Subnets,
) -> Option<&'a model::Port> {
    let addr = m.monitor_address.unwrap_or(m.address);
    let at = |net: &str| {
        ports
            .iter()
            .find(|p| p.network_id == net && p.fixed_ips.iter().any(|f| f.ip_address == addr))
    };
    at(&lb.vip_network_id).or_else(|| at(subnets.get(m.subnet_id.as_ref()?)?))
}

/// The monitored members of `lb` whose checker is gone: their port ([`member_port`]) is
/// bound to a host for which `live` is false. Their VM went with the host; nobody else
/// can reach them the way their checker did.
pub fn orphaned<'a>(
    lb: &'a LoadBalancer,
    ports: &[model::Port],
    subnets: &Subnets,
    live: impl Fn(&str) -> bool,
) -> Vec<&'a str> {
    let mut out = Vec::new();
    for pool in lb.pools.iter().filter(|p| p.healthmonitor.is_some()) {
        for m in pool.members.iter().filter(|m| m.admin_state_up) {
            if m.status.operating_status == operating::ERROR {
                continue;
            }
            let host = member_port(lb, m, ports, subnets)
                .map(|p| p.binding_host_id.as_str())
                .filter(|h| !h.is_empty());
            if host.is_some_and(|h| !live(h)) {
                out.push(m.meta.id.as_str());
            }
        }
    }
    out
}

/// Every `report_interval` until the server stops: members whose checking host's
/// controller lost its heartbeat lease are marked ERROR (their host comes back and its
/// checks bring them up again), and a VIP's floating IPs move to the first host by name
/// with a live controller and an ACTIVE port of the VIP network (`fip_holder`). Several
/// servers may do it at once: the writes are compare-and-swap and idempotent.
pub async fn sweep(api: Arc<Api>) {
    let mut tick = tokio::time::interval(api.config.report_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = api.stopped() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = sweep_once(&api).await {
            tracing::warn!(error = %e.message, "balancer sweep failed");
        }
    }
}

/// One pass of [`sweep`]: the changes it wrote (members marked ERROR, holders moved).
pub async fn sweep_once(api: &Api) -> ApiResult<usize> {
    let store = &api.db.store;
    let prefix = model::agent::key(model::agent::CONTROLLER_BINARY, "");
    let live: std::collections::BTreeSet<String> = store
        .leases(&prefix)
        .await?
        .into_iter()
        .filter(|l| l.live)
        .filter_map(|l| l.key.strip_prefix(&prefix).map(str::to_string))
        .collect();
    let mut written = 0;
    let mut reads = Reads::default();
    for (lb, _) in api.db.all::<LoadBalancer>().await? {
        let (ports, subnets) = member_ports_in(api, &lb, &mut reads).await?;
        // With no live host to hold them, the floating IPs stay where they were.
        let vip_net = ports.iter().filter(|p| p.network_id == lb.vip_network_id);
        let holder = model::lb::first_holder(vip_net, &lb.vip_port_id, |h| live.contains(h));
        if let Some(h) = holder.filter(|h| lb.fip_holder.as_deref() != Some(*h)) {
            let moved = write_as_checker(api, &lb.meta.id, |lb| {
                let changed = lb.fip_holder.as_deref() != Some(h);
                lb.fip_holder = Some(h.to_string());
                changed
            })
            .await?;
            if moved {
                written += 1;
                tracing::info!(loadbalancer = %lb.meta.id, from = ?lb.fip_holder, to = %h, "floating IP holder chosen");
            }
        }
        if !lb.pools.iter().any(|p| p.healthmonitor.is_some()) {
            continue;
        }
        let gone: Vec<String> = orphaned(&lb, &ports, &subnets, |h| live.contains(h))
            .into_iter()
            .map(str::to_string)
            .collect();
        for member in gone {
            let changed = write_as_checker(api, &lb.meta.id, |lb| {
                lb.set_member_health(&member, false) == Some(true)
            })
            .await?;
            if changed {
                written += 1;
                tracing::info!(loadbalancer = %lb.meta.id, %member, "member ERROR: its checking host is gone");
            }
        }
    }
    Ok(written)
}

/// Changes balancer `id` with `f` (true: it changed something) in one compare-and-swap
/// write, as a checker's write: no PENDING_* brought back. False when `f` changed nothing
/// or the balancer is gone.
async fn write_as_checker(
    api: &Api,
    id: &str,
    f: impl Fn(&mut LoadBalancer) -> bool,
) -> ApiResult<bool> {
    crate::db::retrying(|| async {
        let Some((mut lb, rev)) = api.db.get::<LoadBalancer>(id).await? else {
            return Ok(false);
        };
        if !f(&mut lb) {
            return Ok(false);
        }
        save_as_checker(api, lb, rev).await?;
        Ok(true)
    })
    .await
}

/// Writes `lb` if it is still at `rev`, as a checker's write: Octavia shows no PENDING_*
/// for a health change, so the last API change's marks go if the hosts realized it, and
/// this write does not bring them back.
async fn save_as_checker(api: &Api, lb: LoadBalancer, rev: nbdb::Revision) -> ApiResult<()> {
    let lb = crate::octavia::realized::shown(api, vec![(lb, rev)])
        .await?
        .remove(0)
        .0;
    Ok(crate::octavia::store_put(api, &lb, rev).await?)
}
