//! `/v2/lbaas/loadbalancers` (with `/status`, `/stats`, `/failover`), `/v2/lbaas/providers`,
//! the version document, and the refusals of what an L4 provider does not do (L7).
//! Creating a balancer allocates its VIP port through the Neutron side (IPAM, policy,
//! quotas), then writes the balancer; a failed write gives the port back.

use super::render::{self, fields, matches, select};
use super::wire::Body;
use super::{Fault, FaultResult, all, change, created_status, may_read, may_write};
use crate::Api;
use crate::context::Context;
use crate::resources::lifecycle;
use crate::resources::ops::{Plan, pick_key, release_key};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use model::lb::{PROVIDER, VIP_OWNER, operating};
use model::{LoadBalancer, Meta, Port, Subnet};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;

pub type Q = Query<Vec<(String, String)>>;

/// The datapath key of a balancer names its flows (cookie) and groups.
const KEY_KIND: &str = "loadbalancer";
/// Balancer keys use 16 bits (a group id is the key and a listener's index).
const MAX_KEY: u128 = 0xffff;

/// The standard attributes of a new node: name, description, tags and the project
/// (another project's only for an admin).
pub fn new_meta(ctx: &Context, b: &mut Body, description: bool) -> FaultResult<Meta> {
    let name = b.string("name", 255)?.unwrap_or_default();
    let description = if description {
        b.string("description", 255)?.unwrap_or_default()
    } else {
        String::new()
    };
    let tags = b.tags()?.unwrap_or_default();
    let project = b.string("project_id", 36)?;
    let tenant = b.string("tenant_id", 36)?;
    let project_id = project.or(tenant).unwrap_or_else(|| ctx.project_id.clone());
    if project_id != ctx.project_id && !ctx.is_admin {
        return Err(Fault::forbidden());
    }
    let now = model::time::now();
    Ok(Meta {
        unknown: Default::default(),
        id: model::new_id(),
        name,
        description,
        project_id,
        tags,
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    })
}

/// Applies a PUT's name, description and tags.
pub fn update_meta(meta: &mut Meta, b: &mut Body, description: bool) -> FaultResult<()> {
    if let Some(n) = b.string("name", 255)? {
        meta.name = n;
    }
    if description && let Some(d) = b.string("description", 255)? {
        meta.description = d;
    }
    if let Some(t) = b.tags()? {
        meta.tags = t;
    }
    meta.updated_at = model::time::now();
    Ok(())
}

/// `GET /` and `/v2`: the one version served.
pub async fn versions() -> Json<Value> {
    Json(json!({"versions": [{
        "id": "v2.0", "status": "CURRENT", "updated": "2023-06-15T00:00:00Z",
        "links": [{"rel": "self", "href": "/v2"}],
    }]}))
}

pub async fn not_found() -> Fault {
    Fault::new(StatusCode::NOT_FOUND, "The resource could not be found.")
}

/// L7 policies and rules: this provider balances at L4.
pub async fn no_l7() -> Fault {
    Fault::unsupported("L7 policies and rules: this provider balances at L4 (TCP and UDP)")
}

/// `GET /v2/lbaas/l7policies`: there are never any.
pub async fn empty_l7() -> Json<Value> {
    Json(json!({"l7policies": [], "l7policies_links": []}))
}

/// `GET /v2/lbaas/quotas`: no Octavia quotas (the Neutron port quota holds VIPs).
pub async fn empty_quotas() -> Json<Value> {
    Json(json!({"quotas": [], "quotas_links": []}))
}

pub async fn providers() -> Json<Value> {
    Json(json!({"providers": [{
        "name": PROVIDER,
        "description": "Dragonflow distributed L4 load balancer: each client's host balances its own connections in Open vSwitch",
    }]}))
}

/// `GET /providers/{name}/…_capabilities`: none (no flavors or zones).
pub async fn capabilities(Path(name): Path<String>) -> FaultResult<Json<Value>> {
    if name != PROVIDER {
        return Err(Fault::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("Provider '{name}' was not found."),
        ));
    }
    Ok(Json(
        json!({"flavor_capabilities": [], "availability_zone_capabilities": []}),
    ))
}

pub async fn list(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Query(q): Q,
) -> FaultResult<Json<Value>> {
    let f = fields(&q);
    let mut out: Vec<(String, Value)> = Vec::new();
    for (lb, _) in all(&api).await? {
        if may_read(&ctx, &lb.meta.project_id).is_err() {
            continue;
        }
        let m = render::loadbalancer(&lb);
        if matches(&m, &q) {
            out.push((lb.meta.created_at.clone(), select(m, &f)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let items: Vec<Value> = out.into_iter().map(|(_, v)| v).collect();
    Ok(Json(
        json!({"loadbalancers": items, "loadbalancers_links": []}),
    ))
}

pub async fn show(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    Query(q): Q,
) -> FaultResult<Json<Value>> {
    let (lb, _) = fetch(&api, &id).await?;
    may_read(&ctx, &lb.meta.project_id)?;
    Ok(Json(
        json!({"loadbalancer": select(render::loadbalancer(&lb), &fields(&q))}),
    ))
}

async fn fetch(api: &Api, id: &str) -> FaultResult<(LoadBalancer, nbdb::Revision)> {
    let found = api
        .db
        .get::<LoadBalancer>(id)
        .await?
        .ok_or_else(|| Fault::not_found("Load Balancer", id))?;
    Ok(super::realized::shown(api, vec![found]).await?.remove(0))
}

/// Where the VIP goes: its subnet, network, address and, when the client named a port,
/// that port.
struct Vip {
    subnet: Subnet,
    address: Option<IpAddr>,
    port: Option<Port>,
}

async fn resolve_vip(
    api: &Api,
    port_id: Option<String>,
    subnet_id: Option<String>,
    network_id: Option<String>,
    address: Option<IpAddr>,
) -> FaultResult<Vip> {
    let invalid = |what: &str, id: &str| {
        Fault::new(StatusCode::BAD_REQUEST, format!("{what} {id} not found."))
    };
    if let Some(pid) = port_id {
        let (port, _) = api
            .db
            .get::<Port>(&pid)
            .await?
            .ok_or_else(|| invalid("Port", &pid))?;
        if network_id.as_ref().is_some_and(|n| *n != port.network_id) {
            return Err(Fault::validation(
                "vip_network_id does not match the network of vip_port_id.",
            ));
        }
        let ip = port
            .fixed_ips
            .iter()
            .find(|f| subnet_id.as_ref().is_none_or(|s| *s == f.subnet_id))
            .ok_or_else(|| Fault::validation("Port has no fixed IPs."))?;
        let (subnet, _) = api.db.fetch::<Subnet>(&ip.subnet_id).await?;
        return Ok(Vip {
            subnet,
            address: Some(ip.ip_address),
            port: Some(port),
        });
    }
    if let Some(sid) = subnet_id {
        let (subnet, _) = api
            .db
            .get::<Subnet>(&sid)
            .await?
            .ok_or_else(|| invalid("Subnet", &sid))?;
        if network_id.as_ref().is_some_and(|n| *n != subnet.network_id) {
            return Err(Fault::validation(
                "vip_subnet_id does not belong to vip_network_id.",
            ));
        }
        return Ok(Vip {
            subnet,
            address,
            port: None,
        });
    }
    let Some(nid) = network_id else {
        return Err(Fault::new(
            StatusCode::BAD_REQUEST,
            "Validation failure: VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.",
        ));
    };
    if api.db.get::<model::Network>(&nid).await?.is_none() {
        return Err(invalid("Network", &nid));
    }
    // The subnet holding the requested address, else the first IPv4 one (as Octavia).
    let mut subnets: Vec<Subnet> = api
        .db
        .all::<Subnet>()
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .filter(|s| s.network_id == nid)
        .collect();
    subnets.sort_by(|a, b| {
        (a.ip_version, &a.meta.created_at).cmp(&(b.ip_version, &b.meta.created_at))
    });
    let subnet = match address {
        Some(a) => subnets
            .into_iter()
            .find(|s| s.cidr.contains(&a))
            .ok_or_else(|| Fault::validation(format!("No subnet of network {nid} holds {a}.")))?,
        None => subnets
            .into_iter()
            .next()
            .ok_or_else(|| Fault::validation("Supplied network does not contain a subnet."))?,
    };
    Ok(Vip {
        subnet,
        address,
        port: None,
    })
}

/// Makes the VIP port through the Neutron side, as `ctx` for `project`.
async fn create_vip_port(
    api: &Api,
    ctx: &Context,
    lb_id: &str,
    project: &str,
    vip: &Vip,
) -> FaultResult<Port> {
    let mut ip = json!({"subnet_id": vip.subnet.meta.id});
    if let Some(a) = vip.address {
        ip["ip_address"] = json!(a.to_string());
    }
    let body = json!({"port": {
        "name": format!("octavia-lb-{lb_id}"),
        "network_id": vip.subnet.network_id,
        "fixed_ips": [ip],
        "device_owner": VIP_OWNER,
        "device_id": format!("lb-{lb_id}"),
        "project_id": project,
    }});
    let (meta, req) = lifecycle::parse_create::<Port>(ctx, body)?;
    Ok(lifecycle::create_parsed::<Port>(api, ctx, meta, &req).await?)
}

/// Deletes a VIP port this server made (as admin: the balancer's delete was allowed).
async fn delete_vip_port(api: &Api, id: &str) {
    let admin = Context {
        project_id: String::new(),
        is_admin: true,
        roles: vec!["admin".into()],
    };
    if let Err(e) = lifecycle::delete_one::<Port>(api, &admin, id, &HeaderMap::new()).await
        && e.status != StatusCode::NOT_FOUND
    {
        tracing::warn!(port = %id, "cannot delete the VIP port: {}", e.message);
    }
}

pub async fn create(
    State(api): State<Arc<Api>>,
    ctx: Context,
    body: Bytes,
) -> FaultResult<(StatusCode, Json<Value>)> {
    let mut b = Body::parse(&body, "loadbalancer")?;
    let meta = new_meta(&ctx, &mut b, true)?;
    let admin_state_up = b.bool("admin_state_up")?.unwrap_or(true);
    let vip_address = b.ip("vip_address")?;
    let vip_port_id = b.uuid("vip_port_id")?;
    let vip_subnet_id = b.uuid("vip_subnet_id")?;
    let vip_network_id = b.uuid("vip_network_id")?;
    if let Some(p) = b.string("provider", 64)?
        && p != PROVIDER
    {
        return Err(Fault::new(
            StatusCode::BAD_REQUEST,
            format!("Provider '{p}' is not enabled."),
        ));
    }
    b.refuse(&[
        "listeners",
        "pools",
        "flavor_id",
        "availability_zone",
        "vip_qos_policy_id",
        "vip_sg_ids",
        "additional_vips",
    ])?;
    b.finish()?;
    may_write(&ctx, &meta.project_id)?;
    let vip = resolve_vip(
        &api,
        vip_port_id,
        vip_subnet_id,
        vip_network_id,
        vip_address,
    )
    .await?;
    if let Some(p) = &vip.port {
        may_write(&ctx, &p.meta.project_id)?;
    }
    let (port, owned) = match vip.port.clone() {
        Some(p) => (p, false),
        None => (
            create_vip_port(&api, &ctx, &meta.id, &meta.project_id, &vip).await?,
            true,
        ),
    };
    let address = vip
        .address
        .or_else(|| port.fixed_ips.first().map(|f| f.ip_address))
        .ok_or_else(|| Fault::validation("The VIP port has no address."))?;
    let lb = LoadBalancer {
        meta,
        status: created_status(operating::ONLINE),
        admin_state_up,
        provider: PROVIDER.into(),
        vip_address: address,
        vip_port_id: port.meta.id.clone(),
        vip_subnet_id: vip.subnet.meta.id.clone(),
        vip_network_id: vip.subnet.network_id.clone(),
        vip_mac: port.mac_address,
        vip_port_owned: owned,
        unique_key: 0,
        listeners: Vec::new(),
        pools: Vec::new(),
        failovers: 0,
        fip_holder: None,
    };
    let mut lb = lb;
    lb.roll_up();
    let written = crate::db::retrying(|| async {
        let mut lb = lb.clone();
        let mut plan = Plan::new(&api);
        lb.unique_key = pick_key(&api, &mut plan, KEY_KIND, MAX_KEY, &lb.meta.id).await?;
        plan.txn.create(&lb);
        plan.commit(&api).await?;
        Ok(lb)
    })
    .await;
    let lb = match written {
        Ok(lb) => lb,
        Err(e) => {
            if owned {
                delete_vip_port(&api, &lb.vip_port_id).await;
            }
            return Err(e.into());
        }
    };
    tracing::info!(id = %lb.meta.id, vip = %lb.vip_address, "loadbalancer created");
    let mut answer = json!({"loadbalancer": render::loadbalancer(&lb)});
    if !super::realized::will_pend(&api, &lb.vip_network_id).await? {
        super::realized::settle_json(&mut answer);
    }
    Ok((StatusCode::CREATED, Json(answer)))
}

pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    body: Bytes,
) -> FaultResult<Json<Value>> {
    let v = change(&api, &ctx, &id, "Load Balancer", |lb| {
        if lb.meta.id != id {
            return Err(Fault::not_found("Load Balancer", &id));
        }
        let mut b = Body::parse(&body, "loadbalancer")?;
        update_meta(&mut lb.meta, &mut b, true)?;
        if let Some(up) = b.bool("admin_state_up")? {
            lb.admin_state_up = up;
        }
        b.refuse(&["vip_qos_policy_id", "vip_sg_ids"])?;
        b.finish()?;
        Ok(Value::Null)
    })
    .await;
    v?;
    let (lb, _) = fetch(&api, &id).await?;
    Ok(Json(json!({"loadbalancer": render::loadbalancer(&lb)})))
}

pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    Query(q): Q,
) -> FaultResult<StatusCode> {
    let cascade = q
        .iter()
        .any(|(k, v)| k == "cascade" && v.eq_ignore_ascii_case("true"));
    let (lb, rev) = fetch(&api, &id).await?;
    may_write(&ctx, &lb.meta.project_id)?;
    if !cascade && (!lb.listeners.is_empty() || !lb.pools.is_empty()) {
        return Err(Fault::validation(format!(
            "Cannot delete Load Balancer {id} - it has children"
        )));
    }
    let mut plan = Plan::new(&api);
    plan.txn.delete(&lb, rev);
    release_key(&api, &mut plan.txn, KEY_KIND, lb.unique_key);
    plan.commit(&api).await?;
    if lb.vip_port_owned {
        delete_vip_port(&api, &lb.vip_port_id).await;
    }
    tracing::info!(%id, "loadbalancer deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn status(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
) -> FaultResult<Json<Value>> {
    let (lb, _) = fetch(&api, &id).await?;
    may_read(&ctx, &lb.meta.project_id)?;
    Ok(Json(render::status_tree(&lb)))
}

/// The sum of its listeners' statistics over the hosts ([`super::stats`]).
pub async fn stats(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
) -> FaultResult<Json<Value>> {
    let (lb, _) = fetch(&api, &id).await?;
    may_read(&ctx, &lb.meta.project_id)?;
    let ids: Vec<&str> = lb.listeners.iter().map(|l| l.meta.id.as_str()).collect();
    Ok(Json(super::stats::of(&api, &ids).await?))
}

/// There is no amphora to replace: every host that balances for the VIP reads its
/// switch back and repairs what differs from the compiled flows and groups. 202; the
/// balancer reads PENDING_UPDATE until they have. Admin only, as Octavia's default
/// policy has it (a member gets 403, as for another project's balancer).
pub async fn failover(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
) -> FaultResult<StatusCode> {
    let (lb, _) = fetch(&api, &id).await?;
    if !ctx.is_admin {
        return Err(Fault::forbidden());
    }
    change(&api, &ctx, &lb.meta.id, "Load Balancer", |lb| {
        lb.failovers = lb.failovers.saturating_add(1);
        Ok(Value::Null)
    })
    .await?;
    tracing::info!(%id, "loadbalancer failover: the hosts read their switches back");
    Ok(StatusCode::ACCEPTED)
}
