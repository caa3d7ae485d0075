//! `/v2.0/floatingips/{id}/port_forwardings`: Neutron's floating IP port forwarding
//! (list, create, show, update, delete), a sub-resource kept inside its floating IP. Each
//! write is one compare-and-swap of the floating IP with the claims that keep forwardings
//! unique (`ops::forwarding`), so concurrent writers on any server retry or lose cleanly.

use super::ops::floating::{assoc_claim, router_reaching};
use super::ops::forwarding::{self, duplicate, internal_claim};
use super::{base_url, touch, visible};
use crate::Api;
use crate::body::{Attrs, JsonBody, bad_attr};
use crate::context::Context;
use crate::db::{Txn, retrying};
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use crate::policy::{self, Target};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use model::{FloatingIp, PfProtocol, Port, PortForwarding, Router};
use nbdb::Revision;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

/// The key of one forwarding's body.
const RESOURCE: &str = "port_forwarding";
const COLLECTION: &str = "port_forwardings";
/// The policy's resource name (`create_floatingip_port_forwarding`, ...).
const POLICY: &str = "floatingip_port_forwarding";
const KIND: &str = "PortForwarding";
/// Its attributes: the valid filters, sort keys and fields.
const ATTRS: &[&str] = &[
    "id",
    "internal_port_id",
    "internal_ip_address",
    "internal_port",
    "external_port",
    "protocol",
    "description",
];

/// A forwarding's Neutron JSON.
pub fn render(pf: &PortForwarding) -> Map<String, Value> {
    let v = json!({
        "id": pf.id,
        "internal_port_id": pf.internal_port_id,
        "internal_ip_address": pf.internal_ip_address,
        "internal_port": pf.internal_port,
        "external_port": pf.external_port,
        "protocol": pf.protocol.as_str(),
        "description": pf.description,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The attributes a POST or PUT gives (all of them for a POST).
#[derive(Default)]
struct Request {
    internal_port_id: Option<String>,
    internal_ip_address: Option<IpAddr>,
    internal_port: Option<u16>,
    external_port: Option<u16>,
    protocol: Option<PfProtocol>,
    description: Option<String>,
}

fn port_number(attrs: &mut Attrs, key: &str) -> ApiResult<Option<u16>> {
    match attrs.u32(key)? {
        None => Ok(None),
        Some(n) => u16::try_from(n)
            .ok()
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| bad_attr(key, format!("{n} is not in range 1 through 65535"))),
    }
}

fn parse(ctx: &Context, body: Value, method: &'static str) -> ApiResult<Request> {
    let mut attrs = Attrs::from_body(body, RESOURCE, method)?;
    attrs.forbid(&["id"])?;
    if method == "POST" {
        // A forwarding is its floating IP's project's: one named must be the caller's
        // (or any, for an admin), as for every other resource.
        for key in ["project_id", "tenant_id"] {
            if let Some(p) = attrs.string(key)?
                && p != ctx.project_id
                && !ctx.is_admin
            {
                return Err(ApiError::bad_request(
                    "HTTPBadRequest",
                    "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
                ));
            }
        }
    } else {
        attrs.forbid(&["project_id", "tenant_id"])?;
    }
    let protocol = match attrs.string("protocol")? {
        None => None,
        Some(p) => Some(match p.to_ascii_lowercase().as_str() {
            "tcp" | "6" => PfProtocol::Tcp,
            "udp" | "17" => PfProtocol::Udp,
            _ => {
                return Err(bad_attr(
                    "protocol",
                    format!("'{p}' is not in ['tcp', 'udp']"),
                ));
            }
        }),
    };
    let internal_ip_address = match attrs.ip_or_null("internal_ip_address")? {
        Some(None) => {
            return Err(bad_attr(
                "internal_ip_address",
                "'None' is not a valid IP address",
            ));
        }
        other => other.flatten(),
    };
    let req = Request {
        internal_port_id: attrs.string("internal_port_id")?,
        internal_ip_address,
        internal_port: port_number(&mut attrs, "internal_port")?,
        external_port: port_number(&mut attrs, "external_port")?,
        protocol,
        description: attrs.string("description")?,
    };
    attrs.finish()?;
    Ok(req)
}

fn required<T>(v: Option<T>, key: &str) -> ApiResult<T> {
    v.ok_or_else(|| {
        ApiError::bad_request(
            "HTTPBadRequest",
            format!("Failed to parse request. Required attribute '{key}' not specified"),
        )
    })
}

fn bad_pf(msg: String) -> ApiError {
    ApiError::bad_request("BadRequest", format!("Bad port_forwarding request: {msg}"))
}

/// The floating IP `id` for `action` on its forwardings: 404 when `ctx` may not see it.
async fn fip_for(
    api: &Api,
    ctx: &Context,
    id: &str,
    action: &str,
    attrs: &[&str],
) -> ApiResult<(FloatingIp, Revision)> {
    let (f, rev) = visible::<FloatingIp>(api, ctx, id).await?;
    policy::enforce(
        ctx,
        POLICY,
        action,
        &Target::project(&f.meta.project_id),
        attrs,
    )?;
    Ok((f, rev))
}

fn position(f: &FloatingIp, id: &str) -> ApiResult<usize> {
    (f.port_forwardings.iter())
        .position(|p| p.id == id)
        .ok_or_else(|| ApiError::not_found(KIND, id))
}

/// Checks forwarding `pf` for floating IP `f` (replacing `old`, if an update) and adds
/// its checks and claims to `txn`: its port and address, the router that reaches them
/// (which becomes the floating IP's), and that nothing else uses its ends.
async fn place(
    api: &Api,
    ctx: &Context,
    txn: &mut Txn,
    f: &mut FloatingIp,
    pf: &PortForwarding,
    old: Option<&PortForwarding>,
) -> ApiResult<()> {
    let others: Vec<&PortForwarding> = (f.port_forwardings.iter())
        .filter(|p| Some(p.id.as_str()) != old.map(|o| o.id.as_str()))
        .collect();
    if let Some(o) = others
        .iter()
        .find(|o| o.external_port == pf.external_port && o.protocol == pf.protocol)
    {
        return Err(duplicate(&format!(
            "{{'floatingip_id': '{}', 'external_port': {}}}",
            f.meta.id, o.external_port
        )));
    }
    let port_id = &pf.internal_port_id;
    let (port, prev) = visible::<Port>(api, ctx, port_id).await?;
    if !ctx.is_admin && port.meta.project_id != f.meta.project_id {
        return Err(bad_pf(format!(
            "Port {port_id} is owned by a different project than floating IP {}.",
            f.meta.id
        )));
    }
    let v4: Vec<_> = (port.fixed_ips.iter())
        .filter(|x| x.ip_address.is_ipv4())
        .collect();
    if v4.is_empty() {
        return Err(bad_pf(format!(
            "Requested internal port {port_id} must allocate an IPv4 address at least."
        )));
    }
    let ip = pf.internal_ip_address;
    let Some(fixed) = v4.iter().find(|x| x.ip_address == ip) else {
        let ips: Vec<String> = v4.iter().map(|x| x.ip_address.to_string()).collect();
        return Err(bad_pf(format!(
            "Requested internal IP address {ip} is not suitable for internal neutron port {port_id}, as its fixed_ips are {ips:?}"
        )));
    };
    let Some((router, rrev)) =
        router_reaching(api, &f.floating_network_id, &fixed.subnet_id).await?
    else {
        return Err(bad_pf(format!(
            "External network {} is not reachable from subnet {}. Cannot set Port forwarding for port {port_id} with Floating IP {}",
            f.floating_network_id, fixed.subnet_id, f.meta.id
        )));
    };
    if let Some(r) = f.router_id.as_ref().filter(|_| !others.is_empty())
        && *r != router.meta.id
    {
        return Err(bad_pf(format!(
            "The Floating IP {} had been set on router {r}, the internal Neutron port {port_id} can not reach it",
            f.meta.id
        )));
    }
    let assoc = assoc_claim(port_id, ip);
    if api.db.claim_owner(&assoc).await?.is_some() {
        return Err(ApiError::conflict(
            "PortHasBindingFloatingIP",
            format!(
                "Cannot create port forwarding to floating IP {} ({}) with port {port_id} using fixed IP {ip}, as that port already has a binding floating IP.",
                f.floating_ip_address, f.meta.id
            ),
        ));
    }
    let int = internal_claim(port_id, ip, pf.protocol, pf.internal_port);
    let same_int = old.is_some_and(|o| {
        internal_claim(
            &o.internal_port_id,
            o.internal_ip_address,
            o.protocol,
            o.internal_port,
        ) == int
    });
    if !same_int && api.db.claim_owner(&int).await?.is_some() {
        return Err(duplicate(&format!(
            "{{'internal_port_id': '{port_id}', 'internal_ip_address': '{ip}', 'internal_port': {}}}",
            pf.internal_port
        )));
    }
    txn.check_unclaimed(&assoc);
    txn.check::<Port>(port_id, prev);
    txn.check::<Router>(&router.meta.id, rrev);
    // Only the ends that move change claims: a claim released and taken again in one
    // transaction would conflict with itself.
    let ext_moves =
        old.is_none_or(|o| o.external_port != pf.external_port || o.protocol != pf.protocol);
    if let Some(o) = old {
        forwarding::release(txn, &f.meta.id, o, ext_moves, !same_int);
    }
    forwarding::claim(txn, &f.meta.id, pf, ext_moves, !same_int);
    f.router_id = Some(router.meta.id.clone());
    Ok(())
}

/// The addresses whose shared claim a change from `old` to `new` moves.
fn addresses(
    old: Option<&PortForwarding>,
    new: Option<&PortForwarding>,
) -> BTreeSet<(String, IpAddr)> {
    let at = |p: &PortForwarding| (p.internal_port_id.clone(), p.internal_ip_address);
    let (o, n) = (old.map(at), new.map(at));
    if o == n {
        return BTreeSet::new();
    }
    o.into_iter().chain(n).collect()
}

/// `{"port_forwarding": {...}}` with `fields=` applied.
fn one(pf: &PortForwarding, query: Option<&str>) -> ApiResult<Json<Value>> {
    let q = Query::parse(query, ATTRS)?;
    Ok(Json(
        json!({ RESOURCE: Value::Object(q.project(render(pf))) }),
    ))
}

/// `GET /v2.0/floatingips/{id}/port_forwardings`.
pub async fn list(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(fip_id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(q.as_deref(), ATTRS)?;
    let (f, _) = fip_for(&api, &ctx, &fip_id, "get", &[]).await?;
    let items = f.port_forwardings.iter().map(render).collect();
    Ok(Json(query.respond(
        COLLECTION,
        &base_url(&headers),
        items,
    )?))
}

/// `GET /v2.0/floatingips/{id}/port_forwardings/{pf}`.
pub async fn show(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((fip_id, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let (f, _) = fip_for(&api, &ctx, &fip_id, "get", &[]).await?;
    let pos = position(&f, &id)?;
    one(&f.port_forwardings[pos], q.as_deref())
}

/// `POST /v2.0/floatingips/{id}/port_forwardings`.
pub async fn create(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(fip_id): Path<String>,
    RawQuery(q): RawQuery,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let present = policy::request_attrs(&body, RESOURCE);
    let present: Vec<&str> = present.iter().map(String::as_str).collect();
    let req = parse(&ctx, body, "POST")?;
    let pf = PortForwarding {
        id: model::new_id(),
        internal_port_id: required(req.internal_port_id, "internal_port_id")?,
        internal_ip_address: required(req.internal_ip_address, "internal_ip_address")?,
        internal_port: required(req.internal_port, "internal_port")?,
        external_port: required(req.external_port, "external_port")?,
        protocol: required(req.protocol, "protocol")?,
        description: req.description.unwrap_or_default(),
    };
    retrying(|| async {
        let (mut f, rev) = fip_for(&api, &ctx, &fip_id, "create", &present).await?;
        if f.port_id.is_some() {
            return Err(ApiError::conflict(
                "FloatingIPPortAlreadyAssociated",
                format!(
                    "Cannot associate floating IP {} ({}) with port {} using fixed IP {}, as that fixed IP already has a floating IP on external network {}.",
                    f.floating_ip_address,
                    f.meta.id,
                    pf.internal_port_id,
                    pf.internal_ip_address,
                    f.floating_network_id
                ),
            ));
        }
        let mut txn = Txn::new();
        place(&api, &ctx, &mut txn, &mut f, &pf, None).await?;
        f.port_forwardings.push(pf.clone());
        touch(&mut f.meta);
        txn.update(&f, rev);
        let addrs = addresses(None, Some(&pf));
        forwarding::sync_address_claims(&api, &mut txn, &[&f], &addrs).await?;
        txn.commit(&api.db).await
    })
    .await?;
    tracing::info!(id = %pf.id, fip = %fip_id, "port forwarding created ({} {} -> {}:{} on port {})",
        pf.protocol.as_str(), pf.external_port, pf.internal_ip_address, pf.internal_port, pf.internal_port_id);
    Ok((StatusCode::CREATED, one(&pf, q.as_deref())?))
}

/// `PUT /v2.0/floatingips/{id}/port_forwardings/{pf}`.
pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((fip_id, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let present = policy::request_attrs(&body, RESOURCE);
    let present: Vec<&str> = present.iter().map(String::as_str).collect();
    let req = parse(&ctx, body, "PUT")?;
    let pf = retrying(|| async {
        let (mut f, rev) = fip_for(&api, &ctx, &fip_id, "update", &present).await?;
        let pos = position(&f, &id)?;
        let old = f.port_forwardings[pos].clone();
        let pf = PortForwarding {
            id: old.id.clone(),
            internal_port_id: req
                .internal_port_id
                .clone()
                .unwrap_or(old.internal_port_id.clone()),
            internal_ip_address: req.internal_ip_address.unwrap_or(old.internal_ip_address),
            internal_port: req.internal_port.unwrap_or(old.internal_port),
            external_port: req.external_port.unwrap_or(old.external_port),
            protocol: req.protocol.unwrap_or(old.protocol),
            description: req.description.clone().unwrap_or(old.description.clone()),
        };
        let mut txn = Txn::new();
        place(&api, &ctx, &mut txn, &mut f, &pf, Some(&old)).await?;
        f.port_forwardings[pos] = pf.clone();
        touch(&mut f.meta);
        txn.update(&f, rev);
        let addrs = addresses(Some(&old), Some(&pf));
        forwarding::sync_address_claims(&api, &mut txn, &[&f], &addrs).await?;
        txn.commit(&api.db).await?;
        Ok(pf)
    })
    .await?;
    tracing::info!(id = %pf.id, fip = %fip_id, "port forwarding updated");
    one(&pf, q.as_deref())
}

/// `DELETE /v2.0/floatingips/{id}/port_forwardings/{pf}`.
pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((fip_id, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    retrying(|| async {
        let (mut f, rev) = fip_for(&api, &ctx, &fip_id, "delete", &[]).await?;
        let pos = position(&f, &id)?;
        let old = f.port_forwardings.remove(pos);
        let mut txn = Txn::new();
        forwarding::release(&mut txn, &f.meta.id, &old, true, true);
        if f.port_forwardings.is_empty() {
            f.router_id = None;
        }
        touch(&mut f.meta);
        txn.update(&f, rev);
        let addrs = addresses(Some(&old), None);
        forwarding::sync_address_claims(&api, &mut txn, &[&f], &addrs).await?;
        txn.commit(&api.db).await
    })
    .await?;
    tracing::info!(%id, fip = %fip_id, "port forwarding deleted");
    Ok(StatusCode::NO_CONTENT)
}
