//! `/v2.0/routers`: routers with an external gateway (SNAT, external fixed IPs), extra
//! routes, and interfaces added and removed by subnet or by port.

use super::lifecycle::Lifecycle;
use super::ops::deleting::not_deleting;
use super::ops::ipam::{IpRequest, parse_fixed_ips};
use super::ops::ports::{Addresses, SystemPort, build_system_port, remove_port_by_id};
use super::ops::rbac::{external_for, rely_on, use_network};
use super::ops::routes::{parse_routes, render_routes};
use super::ops::{Plan, pick_key, release_key};
use super::{Resource, one, render, touch, visible, writable};
use crate::Api;
use crate::availability_zones;
use crate::body::{Attrs, JsonBody, bad_attr};
use crate::context::Context;
use crate::db::retrying;
use crate::error::{ApiError, ApiResult};
use crate::policy::rbac::EXTERNAL;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use model::{
    ExternalGateway, FloatingIp, HostRoute, Meta, Network, Port, Router, RouterInterface, Subnet,
    owner,
};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Largest datapath key of a router (reg5).
pub const MAX_KEY: u128 = 0x00ff_ffff;

impl Resource for Router {
    const COLLECTION: &'static str = "routers";
    const RESOURCE: &'static str = "router";
    const OWN_ATTRS: &'static [&'static str] = &[
        "admin_state_up",
        "status",
        "external_gateway_info",
        "routes",
        "availability_zone_hints",
        "availability_zones",
        "flavor_id",
    ];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("admin_state_up".into(), json!(self.admin_state_up));
        m.insert("status".into(), json!("ACTIVE"));
        let gateway = match &self.external_gateway {
            Some(g) => {
                json!({"network_id": g.network_id, "enable_snat": g.enable_snat, "external_fixed_ips": g.external_fixed_ips})
            }
            None => Value::Null,
        };
        m.insert("external_gateway_info".into(), gateway);
        m.insert("routes".into(), json!(render_routes(&self.routes)));
        m.insert(
            "availability_zone_hints".into(),
            json!(self.availability_zone_hints),
        );
        // Filled in by `render_all`, which reads the zones once for a whole listing.
        m.insert("availability_zones".into(), json!([]));
        // There are no router flavors (`flavors` is not built): every router has none.
        m.insert("flavor_id".into(), Value::Null);
    }

    async fn render_all(api: &Api, objs: &[Router]) -> ApiResult<Vec<Map<String, Value>>> {
        let mut items: Vec<_> = objs.iter().map(super::render).collect();
        availability_zones::add_serving(&mut items, &availability_zones::serving(api).await?);
        Ok(items)
    }
}

/// A requested external gateway: network, SNAT mode, and optionally its addresses.
#[derive(Clone)]
pub struct GatewayRequest {
    network_id: String,
    enable_snat: bool,
    fixed_ips: Option<Vec<IpRequest>>,
}

/// A POST's own attributes.
pub struct NewRouter {
    admin_state_up: bool,
    gateway: Option<GatewayRequest>,
    availability_zone_hints: Vec<String>,
}

/// A PUT's own attributes; `gateway` is `Some(None)` to clear it.
pub struct RouterUpdate {
    admin_state_up: Option<bool>,
    routes: Option<Vec<HostRoute>>,
    gateway: Option<Option<GatewayRequest>>,
}

impl Lifecycle for Router {
    type Create = NewRouter;
    type Update = RouterUpdate;
    const POST_FORBIDDEN: &'static [&'static str] = &["status", "routes", "availability_zones"];
    const PUT_READ_ONLY: &'static [&'static str] = &[
        "status",
        "availability_zone_hints",
        "availability_zones",
        "flavor_id",
    ];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewRouter> {
        let admin_state_up = attrs.bool("admin_state_up")?.unwrap_or(true);
        let gateway = parse_gateway(attrs)?.flatten();
        // `flavor_id` names a flavor, and none exists (Neutron's answer for an unknown one).
        if let Some(f) = attrs.string_or_null("flavor_id")?.filter(|f| !f.is_empty()) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "FlavorNotFound",
                format!("Flavor {f} could not be found."),
            ));
        }
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
        Ok(NewRouter {
            admin_state_up,
            gateway,
            availability_zone_hints: availability_zones::parse_hints(attrs)?,
        })
    }

    async fn plan_create(
        api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &NewRouter,
        plan: &mut Plan<'_>,
    ) -> ApiResult<Router> {
        availability_zones::check_hints(api, &req.availability_zone_hints).await?;
        let unique_key = pick_key(api, plan, "router", MAX_KEY, &meta.id).await?;
        let mut r = Router {
            meta,
            admin_state_up: req.admin_state_up,
            external_gateway: None,
            routes: vec![],
            interfaces: vec![],
            unique_key,
            availability_zone_hints: req.availability_zone_hints.clone(),
        };
        if let Some(g) = &req.gateway {
            r.external_gateway = Some(build_gateway(api, plan, &r, g.clone()).await?);
        }
        Ok(r)
    }

    fn parse_update(_: &Context, _: &Router, attrs: &mut Attrs) -> ApiResult<RouterUpdate> {
        Ok(RouterUpdate {
            admin_state_up: attrs.bool("admin_state_up")?,
            routes: (attrs.list("routes")?)
                .map(|items| parse_routes("routes", items, None))
                .transpose()?,
            gateway: parse_gateway(attrs)?,
        })
    }

    async fn plan_update(
        api: &Api,
        _ctx: &Context,
        r: &mut Router,
        req: RouterUpdate,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        r.admin_state_up = req.admin_state_up.unwrap_or(r.admin_state_up);
        r.routes = req.routes.unwrap_or(r.routes.clone());
        match req.gateway {
            None => {}
            Some(None) => {
                remove_gateway(api, plan, r).await?;
                r.external_gateway = None;
            }
            Some(Some(g)) => {
                let same_net =
                    (r.external_gateway.as_ref()).is_some_and(|old| old.network_id == g.network_id);
                match r.external_gateway.as_mut() {
                    // Only the SNAT mode changes; the gateway port stays.
                    Some(old) if same_net && g.fixed_ips.is_none() => {
                        old.enable_snat = g.enable_snat
                    }
                    _ => {
                        remove_gateway(api, plan, r).await?;
                        r.external_gateway = Some(build_gateway(api, plan, r, g).await?);
                    }
                }
            }
        }
        check_routes(api, r).await
    }

    fn check_delete(&self, _ctx: &Context) -> ApiResult<()> {
        if !self.interfaces.is_empty() {
            return Err(ApiError::conflict(
                "RouterInUse",
                format!("Router {} still has ports", self.meta.id),
            ));
        }
        Ok(())
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        r: &Router,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        remove_gateway(api, plan, r).await?;
        release_key(api, &mut plan.txn, "router", r.unique_key);
        Ok(())
    }

    fn summary(&self) -> String {
        let gateway = self.external_gateway.as_ref().map(|g| &g.network_id);
        format!("(gateway {gateway:?})")
    }
}

/// Parses `external_gateway_info`: `None` when absent, `Some(None)` to clear it.
fn parse_gateway(attrs: &mut Attrs) -> ApiResult<Option<Option<GatewayRequest>>> {
    match attrs.take("external_gateway_info") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Object(o)) if o.is_empty() => Ok(Some(None)),
        Some(Value::Object(o)) => {
            let mut g = Attrs::from_map(o, "PUT");
            let network_id = g
                .string("network_id")?
                .ok_or_else(|| bad_attr("external_gateway_info", "network_id is required"))?;
            let enable_snat = g.bool("enable_snat")?.unwrap_or(true);
            let fixed_ips = g
                .list("external_fixed_ips")?
                .map(parse_fixed_ips)
                .transpose()?;
            g.finish()?;
            Ok(Some(Some(GatewayRequest {
                network_id,
                enable_snat,
                fixed_ips,
            })))
        }
        Some(v) => Err(bad_attr(
            "external_gateway_info",
            format!("'{v}' is not a dictionary"),
        )),
    }
}

/// Creates the gateway port of `router` on the external network into `plan`.
async fn build_gateway(
    api: &Api,
    plan: &mut Plan<'_>,
    router: &Router,
    req: GatewayRequest,
) -> ApiResult<ExternalGateway> {
    let network_id = req.network_id;
    let (network, nrev) = external_for(api, &router.meta.project_id, &network_id).await?;
    let project = &router.meta.project_id;
    if network.external
        && !project.is_empty()
        && network.meta.project_id != *project
        && !rely_on(api, plan, project, &network_id, EXTERNAL).await?
    {
        return Err(ApiError::not_found("Network", &network_id));
    }
    if !network.external {
        return Err(ApiError::bad_request(
            "BadRequest",
            format!("Bad router request: Network {network_id} is not a valid external network."),
        ));
    }
    not_deleting(&network)?;
    plan.txn.check::<Network>(&network_id, nrev);
    let sp = SystemPort {
        network: &network,
        project_id: String::new(),
        device_owner: owner::ROUTER_GATEWAY,
        device_id: router.meta.id.clone(),
        // An external network with no subnet yet gives a gateway without addresses, as
        // in Neutron; one whose subnets are full is still refused.
        addresses: match req.fixed_ips {
            None if network.subnets.is_empty() => Addresses::Defaults,
            asked => Addresses::Requested(asked),
        },
    };
    let port = build_system_port(api, plan, sp).await?;
    plan.txn.create(&port);
    Ok(ExternalGateway {
        network_id,
        enable_snat: req.enable_snat,
        external_fixed_ips: port.fixed_ips.clone(),
        port_id: port.meta.id,
    })
}

async fn remove_gateway(api: &Api, plan: &mut Plan<'_>, router: &Router) -> ApiResult<()> {
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
    remove_port_by_id(api, &mut plan.txn, &gw.port_id).await
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
    // Neutron validates both as UUIDs before looking anything up (400, not 404).
    for (attr, v) in [("subnet_id", &subnet), ("port_id", &port)] {
        if let Some(v) = v.as_deref().filter(|v| !model::is_uuid(v)) {
            return Err(bad_attr(attr, format!("'{v}' is not a valid UUID")));
        }
    }
    Ok((subnet, port))
}

fn bad_router_request(why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("BadRequest", format!("Bad router request: {why}"))
}

/// The port and subnet of a new interface: a new system port at the subnet's gateway
/// address, or the user's port (with one fixed IP) taken over.
async fn interface_port(
    api: &Api,
    ctx: &Context,
    plan: &mut Plan<'_>,
    r: &Router,
    target: (&Option<String>, &Option<String>),
) -> ApiResult<(Port, Subnet)> {
    match target {
        (Some(_), Some(_)) => Err(bad_router_request(
            "Cannot specify both subnet-id and port-id",
        )),
        (None, None) => Err(bad_router_request(
            "Either subnet_id or port_id must be specified",
        )),
        (Some(sid), None) => {
            let (subnet, _) = visible::<Subnet>(api, ctx, sid).await?;
            let gw = subnet.gateway_ip.ok_or_else(|| {
                bad_router_request(format!("Subnet {sid} does not have a gateway IP."))
            })?;
            let (network, _) = api.db.fetch::<Network>(&subnet.network_id).await?;
            // `build_system_port` checks the subnet's revision with the address.
            not_deleting(&subnet)?;
            // On another project's network only through a shared policy, which must
            // still be there at the commit.
            use_network(api, plan, ctx, &r.meta.project_id, &network).await?;
            let at_gateway = IpRequest {
                subnet_id: Some(sid.clone()),
                ip: Some(gw),
            };
            let sp = SystemPort {
                network: &network,
                project_id: r.meta.project_id.clone(),
                device_owner: owner::ROUTER_INTERFACE,
                device_id: r.meta.id.clone(),
                addresses: Addresses::Requested(Some(vec![at_gateway])),
            };
            let port = build_system_port(api, plan, sp).await?;
            plan.txn.create(&port);
            Ok((port, subnet))
        }
        (None, Some(pid)) => {
            let (mut port, prev) = writable::<Port>(api, ctx, pid, "update", &[]).await?;
            // Seen as its network's owner is not enough: the port must be the router's
            // project's (Neutron's check).
            if !ctx.is_admin && port.meta.project_id != r.meta.project_id {
                return Err(bad_router_request(format!(
                    "Cannot add interface using port {pid} of another tenant"
                )));
            }
            if !port.device_id.is_empty() || !port.device_owner.is_empty() {
                return Err(ApiError::conflict(
                    "PortInUse",
                    format!(
                        "Unable to complete operation on port {pid} for network {}. Port already has an attached device {}.",
                        port.network_id, port.device_id
                    ),
                ));
            }
            let [fixed] = port.fixed_ips.as_slice() else {
                return Err(bad_router_request(
                    "Router port must have exactly one fixed IP",
                ));
            };
            let (subnet, srev) = api.db.fetch::<Subnet>(&fixed.subnet_id).await?;
            not_deleting(&subnet)?;
            plan.txn.check::<Subnet>(&subnet.meta.id, srev);
            port.device_owner = owner::ROUTER_INTERFACE.into();
            port.device_id = r.meta.id.clone();
            port.security_groups.clear();
            port.allowed_address_pairs.clear();
            port.port_security_enabled = false;
            port.status = model::PortStatus::Active;
            touch(&mut port.meta);
            plan.txn.update(&port, prev);
            Ok((port, subnet))
        }
    }
}

pub async fn add_interface(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let (subnet_id, port_id) = interface_target(body)?;
    let (r, iface) = retrying(|| async {
        let (mut r, rev) = writable::<Router>(&api, &ctx, &id, "add_router_interface", &[]).await?;
        let mut plan = Plan::new(&api);
        let (port, subnet) =
            interface_port(&api, &ctx, &mut plan, &r, (&subnet_id, &port_id)).await?;
        for other in &r.interfaces {
            if other.cidr.contains(&subnet.cidr.network())
                || subnet.cidr.contains(&other.cidr.network())
            {
                return Err(ApiError::bad_request(
                    "BadRequest",
                    format!(
                        "Bad router request: Cidr {} of subnet {} overlaps with cidr {} of subnet {}.",
                        subnet.cidr, subnet.meta.id, other.cidr, other.subnet_id
                    ),
                ));
            }
        }
        let ip = port
            .fixed_ips
            .first()
            .map(|f| f.ip_address)
            .ok_or_else(|| ApiError::internal("router port without address"))?;
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
        plan.txn.update(&r, rev);
        plan.commit(&api).await?;
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
        let (mut r, rev) = writable::<Router>(&api, &ctx, &id, "remove_router_interface", &[]).await?;
        let found = r.interfaces.iter().position(|i| {
            subnet_id.as_ref().is_none_or(|s| *s == i.subnet_id) && port_id.as_ref().is_none_or(|p| *p == i.port_id)
        });
        let Some(pos) = found.filter(|_| subnet_id.is_some() || port_id.is_some()) else {
            return Err(match (&subnet_id, &port_id) {
                (Some(s), None) => ApiError::new(StatusCode::NOT_FOUND, "RouterInterfaceNotFoundForSubnet", format!("Router {id} has no interface on subnet {s}")),
                (_, Some(p)) => ApiError::new(StatusCode::NOT_FOUND, "RouterInterfaceNotFound", format!("Router {id} does not have an interface with id {p}")),
                (None, None) => bad_router_request("Either subnet_id or port_id must be specified"),
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
        let uses = |f: &FloatingIp| f.fixed_ip_address.iter().chain(f.port_forwardings.iter().map(|pf| &pf.internal_ip_address)).any(|ip| iface.cidr.contains(ip));
        if fips.iter().any(|(f, _)| f.router_id.as_deref() == Some(id.as_str()) && uses(f)) {
            return Err(ApiError::conflict(
                "RouterInterfaceInUseByFloatingIP",
                format!("Router interface for subnet {} on router {id} cannot be deleted, as it is required by one or more floating IPs.", iface.subnet_id),
            ));
        }
        let mut plan = Plan::new(&api);
        remove_port_by_id(&api, &mut plan.txn, &iface.port_id).await?;
        touch(&mut r.meta);
        plan.txn.update(&r, rev);
        plan.commit(&api).await?;
        Ok((r, iface))
    })
    .await?;
    tracing::info!(router = %r.meta.id, subnet = %iface.subnet_id, port = %iface.port_id, "router interface removed");
    Ok(Json(interface_body(&r, &iface)))
}

/// `add_extraroutes` and `remove_extraroutes`.
async fn change_routes(
    api: &Api,
    ctx: &Context,
    id: &str,
    body: Value,
    add: bool,
) -> ApiResult<Json<Value>> {
    let r = retrying(|| async {
        let action = if add {
            "add_extraroutes"
        } else {
            "remove_extraroutes"
        };
        let (mut r, rev) = writable::<Router>(api, ctx, id, action, &[]).await?;
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
        let mut plan = Plan::new(api);
        plan.txn.update(&r, rev);
        plan.commit(api).await?;
        Ok(r)
    })
    .await?;
    Ok(Json(one::<Router>(render(&r), None)))
}

pub async fn add_extraroutes(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    change_routes(&api, &ctx, &id, body, true).await
}

pub async fn remove_extraroutes(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    change_routes(&api, &ctx, &id, body, false).await
}
