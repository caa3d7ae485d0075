//! `/v2.0/routers`: routers with an external gateway (SNAT, external fixed IPs), extra
//! routes, and interfaces added and removed by subnet or by port.

use super::ipam::{Allocation, IpRequest, parse_fixed_ips};
use super::ports::{SystemPort, build_system_port, remove_port};
use super::subnets::{parse_routes, render_routes};
use super::{check_if_match, new_meta, read_only, render_meta, touch, update_meta};
use crate::Api;
use crate::alloc::key_claim;
use crate::body::{Attrs, JsonBody, bad_attr};
use crate::context::Context;
use crate::db::{Txn, retrying};
use crate::error::{ApiError, ApiResult};
use crate::resources::networks;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use model::{ExternalGateway, FloatingIp, Network, Port, Router, RouterInterface, Subnet, owner};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub const ATTRS: &[&str] = &[
    "id",
    "name",
    "description",
    "project_id",
    "tenant_id",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
    "admin_state_up",
    "status",
    "external_gateway_info",
    "routes",
];

/// Largest datapath key of a router (reg5).
pub const MAX_KEY: u128 = 0x00ff_ffff;

pub fn render(r: &Router) -> Map<String, Value> {
    let mut m = render_meta(&r.meta, true);
    m.insert("admin_state_up".into(), json!(r.admin_state_up));
    m.insert("status".into(), json!("ACTIVE"));
    m.insert(
        "external_gateway_info".into(),
        match &r.external_gateway {
            Some(g) => json!({"network_id": g.network_id, "enable_snat": g.enable_snat, "external_fixed_ips": g.external_fixed_ips}),
            None => Value::Null,
        },
    );
    m.insert("routes".into(), json!(render_routes(&r.routes)));
    debug_assert_eq!(m.len(), ATTRS.len());
    m
}

impl super::Resource for Router {
    const COLLECTION: &'static str = "routers";
    const RESOURCE: &'static str = "router";
    const ATTRS: &'static [&'static str] = ATTRS;
    fn render(&self) -> Map<String, Value> {
        render(self)
    }
}

/// A requested external gateway: network, SNAT mode, and optionally its addresses.
type GatewayRequest = (String, bool, Option<Vec<IpRequest>>);

/// Parses `external_gateway_info`: `None` when absent, `Some(None)` to clear it.
fn parse_gateway(attrs: &mut Attrs) -> ApiResult<Option<Option<GatewayRequest>>> {
    match attrs.take("external_gateway_info") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Object(o)) if o.is_empty() => Ok(Some(None)),
        Some(Value::Object(o)) => {
            let mut g = Attrs::from_map(o, "PUT");
            let net = g
                .string("network_id")?
                .ok_or_else(|| bad_attr("external_gateway_info", "network_id is required"))?;
            let snat = g.bool("enable_snat")?.unwrap_or(true);
            let ips = g
                .list("external_fixed_ips")?
                .map(parse_fixed_ips)
                .transpose()?;
            g.finish()?;
            Ok(Some(Some((net, snat, ips))))
        }
        Some(v) => Err(bad_attr(
            "external_gateway_info",
            format!("'{v}' is not a dictionary"),
        )),
    }
}

/// Creates the gateway port of `router` on the external network into `txn`.
async fn build_gateway<'a>(
    api: &'a Api,
    txn: &mut Txn,
    alloc: &mut Allocation<'a>,
    router: &Router,
    (network_id, enable_snat, ips): GatewayRequest,
) -> ApiResult<ExternalGateway> {
    let (network, nrev) = api.db.fetch::<Network>(&network_id).await?;
    if !network.external {
        return Err(ApiError::bad_request(
            "BadRequest",
            format!("Bad router request: Network {network_id} is not a valid external network."),
        ));
    }
    super::not_deleting(&network)?;
    txn.check::<Network>(&network_id, nrev);
    let port = build_system_port(
        api,
        txn,
        alloc,
        SystemPort {
            network: &network,
            project_id: String::new(),
            device_owner: owner::ROUTER_GATEWAY,
            device_id: router.meta.id.clone(),
            fixed_ips: ips,
        },
    )
    .await?;
    Ok(ExternalGateway {
        network_id,
        enable_snat,
        external_fixed_ips: port.fixed_ips.clone(),
        port_id: port.meta.id,
    })
}

async fn remove_gateway(api: &Api, txn: &mut Txn, router: &Router) -> ApiResult<()> {
    let Some(gw) = &router.external_gateway else {
        return Ok(());
    };
    if api
        .db
        .all::<FloatingIp>()
        .await?
        .iter()
        .any(|(f, _)| f.router_id.as_deref() == Some(router.meta.id.as_str()))
    {
        return Err(ApiError::conflict(
            "RouterExternalGatewayInUseByFloatingIp",
            format!(
                "Gateway cannot be updated for router {}, since a gateway to external network {} is required by one or more floating IPs.",
                router.meta.id, gw.network_id
            ),
        ));
    }
    if let Some((p, prev)) = api.db.get::<Port>(&gw.port_id).await? {
        remove_port(api, txn, &p, prev);
    }
    Ok(())
}

/// Every next hop must sit on one of the router's subnets (interfaces or gateway).
async fn check_routes(api: &Api, router: &Router) -> ApiResult<()> {
    let mut cidrs: Vec<ipnet::IpNet> = router.interfaces.iter().map(|i| i.cidr).collect();
    if let Some(gw) = &router.external_gateway {
        for f in &gw.external_fixed_ips {
            if let Some((s, _)) = api.db.get::<Subnet>(&f.subnet_id).await? {
                cidrs.push(s.cidr);
            }
        }
    }
    for r in &router.routes {
        if !cidrs.iter().any(|c| c.contains(&r.nexthop)) {
            return Err(ApiError::bad_request(
                "InvalidRoutes",
                format!(
                    "Invalid format for routes: {{'destination': '{}', 'nexthop': '{}'}}, the nexthop is not connected with router",
                    r.destination, r.nexthop
                ),
            ));
        }
    }
    Ok(())
}

pub async fn create(
    State(api): State<Arc<Api>>,
    ctx: Context,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let r = retrying(|| async {
        let mut attrs = Attrs::from_body(body.clone(), "router", "POST")?;
        attrs.forbid(&[
            "id",
            "status",
            "routes",
            "created_at",
            "updated_at",
            "revision_number",
        ])?;
        let meta = new_meta(&ctx, &mut attrs)?;
        let admin_state_up = attrs.bool("admin_state_up")?.unwrap_or(true);
        let gateway = parse_gateway(&mut attrs)?.flatten();
        for k in ["distributed", "ha"] {
            if let Some(v) = attrs.bool(k)?
                && v != (k == "distributed")
            {
                return Err(bad_attr(
                    k,
                    "routers are always distributed and never HA-pair based",
                ));
            }
        }
        attrs.finish()?;
        let mut txn = Txn::new();
        let mut alloc = Allocation::new(&api);
        let unique_key =
            networks::pick_key(&api, "router", MAX_KEY, &mut alloc.reservation).await?;
        let mut r = Router {
            meta,
            admin_state_up,
            external_gateway: None,
            routes: vec![],
            interfaces: vec![],
            unique_key,
        };
        if let Some(g) = gateway {
            r.external_gateway = Some(build_gateway(&api, &mut txn, &mut alloc, &r, g).await?);
        }
        txn.claim(&key_claim("router", u128::from(unique_key)), &r.meta.id);
        txn.create(&r);
        txn.commit(&api.db).await?;
        Ok(r)
    })
    .await?;
    tracing::info!(router = %r.meta.id, gateway = ?r.external_gateway.as_ref().map(|g| &g.network_id), "router created");
    Ok((StatusCode::CREATED, Json(json!({"router": render(&r)}))))
}

pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let r = retrying(|| async {
        let (mut r, rev) = super::visible::<Router>(&api, &ctx, &id).await?;
        check_if_match(&headers, &r.meta)?;
        let mut attrs = Attrs::from_body(body.clone(), "router", "PUT")?;
        update_meta(&mut r.meta, &mut attrs)?;
        if attrs.has("status") {
            return Err(read_only("status"));
        }
        let mut txn = Txn::new();
        let mut alloc = Allocation::new(&api);
        if let Some(v) = attrs.bool("admin_state_up")? {
            r.admin_state_up = v;
        }
        if let Some(items) = attrs.list("routes")? {
            r.routes = parse_routes("routes", items, None)?;
        }
        match parse_gateway(&mut attrs)? {
            None => {}
            Some(None) => {
                remove_gateway(&api, &mut txn, &r).await?;
                r.external_gateway = None;
            }
            Some(Some((net, snat, ips))) => {
                let same_net = r
                    .external_gateway
                    .as_ref()
                    .is_some_and(|g| g.network_id == net);
                if same_net && ips.is_none() {
                    // Only the SNAT mode changes; the gateway port stays.
                    if let Some(g) = r.external_gateway.as_mut() {
                        g.enable_snat = snat;
                    }
                } else {
                    remove_gateway(&api, &mut txn, &r).await?;
                    r.external_gateway = Some(
                        build_gateway(&api, &mut txn, &mut alloc, &r, (net, snat, ips)).await?,
                    );
                }
            }
        }
        attrs.finish()?;
        check_routes(&api, &r).await?;
        touch(&mut r.meta);
        txn.update(&r, rev);
        txn.commit(&api.db).await?;
        Ok(r)
    })
    .await?;
    tracing::info!(router = %r.meta.id, "router updated");
    Ok(Json(json!({"router": render(&r)})))
}

pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    retrying(|| async {
        let (r, rev) = super::visible::<Router>(&api, &ctx, &id).await?;
        check_if_match(&headers, &r.meta)?;
        if !r.interfaces.is_empty() {
            return Err(ApiError::conflict(
                "RouterInUse",
                format!("Router {id} still has ports"),
            ));
        }
        let mut txn = Txn::new();
        remove_gateway(&api, &mut txn, &r).await?;
        txn.delete::<Router>(&id, rev);
        txn.release(&key_claim("router", u128::from(r.unique_key)));
        txn.commit(&api.db).await?;
        api.alloc.freed("key/router", u128::from(r.unique_key));
        Ok(())
    })
    .await?;
    tracing::info!(router = %id, "router deleted");
    Ok(StatusCode::NO_CONTENT)
}

fn interface_body(r: &Router, i: &RouterInterface) -> Value {
    json!({
        "id": r.meta.id, "tenant_id": r.meta.project_id, "project_id": r.meta.project_id,
        "port_id": i.port_id, "subnet_id": i.subnet_id, "subnet_ids": [i.subnet_id],
        "network_id": i.network_id,
    })
}

/// `{"subnet_id": ..}` or `{"port_id": ..}` from an interface request.
fn interface_target(body: Value) -> ApiResult<(Option<String>, Option<String>)> {
    let Value::Object(o) = body else {
        return Err(ApiError::bad_request(
            "HTTPBadRequest",
            "Resource body required",
        ));
    };
    let mut a = Attrs::from_map(o, "PUT");
    let subnet = a.string("subnet_id")?;
    let port = a.string("port_id")?;
    a.finish()?;
    Ok((subnet, port))
}

pub async fn add_interface(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let (subnet_id, port_id) = interface_target(body)?;
    let (r, iface) = retrying(|| async {
        let (mut r, rev) = super::visible::<Router>(&api, &ctx, &id).await?;
        let mut txn = Txn::new();
        let mut alloc = Allocation::new(&api);
        let (port, subnet) = match (&subnet_id, &port_id) {
            (Some(_), Some(_)) => return Err(ApiError::bad_request("BadRequest", "Bad router request: Cannot specify both subnet-id and port-id")),
            (None, None) => return Err(ApiError::bad_request("BadRequest", "Bad router request: Either subnet_id or port_id must be specified")),
            (Some(sid), None) => {
                let (subnet, _) = super::visible::<Subnet>(&api, &ctx, sid).await?;
                let gw = subnet.gateway_ip.ok_or_else(|| {
                    ApiError::bad_request("BadRequest", format!("Bad router request: Subnet {sid} does not have a gateway IP."))
                })?;
                let (network, _) = api.db.fetch::<Network>(&subnet.network_id).await?;
                // `build_system_port` checks the subnet's revision with the address.
                super::not_deleting(&subnet)?;
                let port = build_system_port(&api, &mut txn, &mut alloc, SystemPort {
                    network: &network,
                    project_id: r.meta.project_id.clone(),
                    device_owner: owner::ROUTER_INTERFACE,
                    device_id: r.meta.id.clone(),
                    fixed_ips: Some(vec![IpRequest { subnet_id: Some(sid.clone()), ip: Some(gw) }]),
                })
                .await?;
                (port, subnet)
            }
            (None, Some(pid)) => {
                let (mut port, prev) = super::visible::<Port>(&api, &ctx, pid).await?;
                if !port.device_id.is_empty() || !port.device_owner.is_empty() {
                    return Err(ApiError::conflict("PortInUse", format!("Unable to complete operation on port {pid} for network {}. Port already has an attached device {}.", port.network_id, port.device_id)));
                }
                let [fixed] = port.fixed_ips.as_slice() else {
                    return Err(ApiError::bad_request("BadRequest", "Bad router request: Router port must have exactly one fixed IP"));
                };
                let (subnet, srev) = api.db.fetch::<Subnet>(&fixed.subnet_id).await?;
                super::not_deleting(&subnet)?;
                txn.check::<Subnet>(&subnet.meta.id, srev);
                port.device_owner = owner::ROUTER_INTERFACE.into();
                port.device_id = r.meta.id.clone();
                port.security_groups.clear();
                port.allowed_address_pairs.clear();
                port.port_security_enabled = false;
                port.status = model::PortStatus::Active;
                touch(&mut port.meta);
                txn.update(&port, prev);
                (port, subnet)
            }
        };
        for other in &r.interfaces {
            if other.cidr.contains(&subnet.cidr.network()) || subnet.cidr.contains(&other.cidr.network()) {
                return Err(ApiError::conflict(
                    "SubnetOverlap",
                    format!("Cidr {} of subnet {} overlaps with cidr {} of subnet {} on router {}", subnet.cidr, subnet.meta.id, other.cidr, other.subnet_id, r.meta.id),
                ));
            }
        }
        let ip = port.fixed_ips.first().map(|f| f.ip_address).ok_or_else(|| ApiError::internal("router port without address"))?;
        let iface = RouterInterface {
            port_id: port.meta.id.clone(),
            subnet_id: subnet.meta.id.clone(),
            network_id: subnet.network_id.clone(),
            ip_address: ip,
            cidr: subnet.cidr,
            mac_address: port.mac_address,
        };
        r.interfaces.push(iface.clone());
        touch(&mut r.meta);
        txn.update(&r, rev);
        txn.commit(&api.db).await?;
        Ok((r, iface))
    })
    .await?;
    tracing::info!(router = %r.meta.id, subnet = %iface.subnet_id, port = %iface.port_id, "router interface added");
    Ok(Json(interface_body(&r, &iface)))
}

pub async fn remove_interface(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let (subnet_id, port_id) = interface_target(body)?;
    let (r, iface) = retrying(|| async {
        let (mut r, rev) = super::visible::<Router>(&api, &ctx, &id).await?;
        let found = r.interfaces.iter().position(|i| {
            subnet_id.as_ref().is_none_or(|s| *s == i.subnet_id) && port_id.as_ref().is_none_or(|p| *p == i.port_id)
        });
        let Some(pos) = found.filter(|_| subnet_id.is_some() || port_id.is_some()) else {
            return Err(match (&subnet_id, &port_id) {
                (Some(s), None) => ApiError::new(StatusCode::NOT_FOUND, "RouterInterfaceNotFoundForSubnet", format!("Router {id} has no interface on subnet {s}")),
                (_, Some(p)) => ApiError::new(StatusCode::NOT_FOUND, "RouterInterfaceNotFound", format!("Router {id} does not have an interface with id {p}")),
                (None, None) => ApiError::bad_request("BadRequest", "Bad router request: Either subnet_id or port_id must be specified"),
            });
        };
        let iface = r.interfaces.remove(pos);
        if let Some(route) = r.routes.iter().find(|rt| iface.cidr.contains(&rt.nexthop)) {
            return Err(ApiError::conflict(
                "RouterInterfaceInUseByRoute",
                format!("Router interface for subnet {} on router {id} cannot be deleted, as it is required by one or more routes ({} via {}).", iface.subnet_id, route.destination, route.nexthop),
            ));
        }
        let fips = api.db.all::<FloatingIp>().await?;
        if fips.iter().any(|(f, _)| f.router_id.as_deref() == Some(id.as_str()) && f.fixed_ip_address.is_some_and(|ip| iface.cidr.contains(&ip))) {
            return Err(ApiError::conflict(
                "RouterInterfaceInUseByFloatingIP",
                format!("Router interface for subnet {} on router {id} cannot be deleted, as it is required by one or more floating IPs.", iface.subnet_id),
            ));
        }
        let mut txn = Txn::new();
        if let Some((p, prev)) = api.db.get::<Port>(&iface.port_id).await? {
            remove_port(&api, &mut txn, &p, prev);
        }
        touch(&mut r.meta);
        txn.update(&r, rev);
        txn.commit(&api.db).await?;
        Ok((r, iface))
    })
    .await?;
    tracing::info!(router = %r.meta.id, subnet = %iface.subnet_id, port = %iface.port_id, "router interface removed");
    Ok(Json(interface_body(&r, &iface)))
}

async fn change_routes(
    api: &Api,
    ctx: &Context,
    id: &str,
    body: Value,
    add: bool,
) -> ApiResult<Router> {
    retrying(|| async {
        let (mut r, rev) = super::visible::<Router>(api, ctx, id).await?;
        let mut attrs = Attrs::from_body(body.clone(), "router", "PUT")?;
        let routes = parse_routes("routes", attrs.list("routes")?.unwrap_or_default(), None)?;
        attrs.finish()?;
        for route in routes {
            let present = r.routes.contains(&route);
            if add && !present {
                r.routes.push(route);
            } else if !add {
                r.routes.retain(|x| *x != route);
            }
        }
        check_routes(api, &r).await?;
        touch(&mut r.meta);
        let mut txn = Txn::new();
        txn.update(&r, rev);
        txn.commit(&api.db).await?;
        Ok(r)
    })
    .await
}

pub async fn add_extraroutes(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let r = change_routes(&api, &ctx, &id, body, true).await?;
    Ok(Json(json!({"router": render(&r)})))
}

pub async fn remove_extraroutes(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let r = change_routes(&api, &ctx, &id, body, false).await?;
    Ok(Json(json!({"router": render(&r)})))
}
