//! `/v2.0/ports`: ports with IPAM, MAC allocation, security groups, allowed address pairs,
//! port security, binding attributes and extra DHCP options.

use super::ipam::{self, Allocation, network_subnets, parse_fixed_ips};
use super::{check_if_match, new_meta, read_only, render_meta, touch, update_meta};
use crate::Api;
use crate::alloc::{key_claim, mac_claim};
use crate::body::{Attrs, JsonBody, bad_attr, parse_cidr, render_ip_or_cidr};
use crate::context::Context;
use crate::db::{Txn, retrying};
use crate::error::{ApiError, ApiResult};
use crate::resources::{floatingips, networks, security_groups};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use model::{AddressPair, ExtraDhcpOpt, MacAddr, Network, Port, PortStatus, SecurityGroup, owner};
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
    "network_id",
    "admin_state_up",
    "mac_address",
    "fixed_ips",
    "device_id",
    "device_owner",
    "status",
    "security_groups",
    "allowed_address_pairs",
    "port_security_enabled",
    "binding:host_id",
    "binding:vif_type",
    "binding:vif_details",
    "binding:vnic_type",
    "binding:profile",
    "extra_dhcp_opts",
];

/// Largest datapath key of a port (reg6/reg7 are 32 bits; the top bit is kept free).
pub const MAX_KEY: u128 = 0x7fff_ffff;

pub fn render(p: &Port) -> Map<String, Value> {
    let mut m = render_meta(&p.meta, true);
    let bound = !p.binding_host_id.is_empty();
    m.insert("network_id".into(), json!(p.network_id));
    m.insert("admin_state_up".into(), json!(p.admin_state_up));
    m.insert("mac_address".into(), json!(p.mac_address));
    m.insert("fixed_ips".into(), json!(p.fixed_ips));
    m.insert("device_id".into(), json!(p.device_id));
    m.insert("device_owner".into(), json!(p.device_owner));
    m.insert("status".into(), json!(p.status.as_str()));
    m.insert("security_groups".into(), json!(p.security_groups));
    m.insert(
        "allowed_address_pairs".into(),
        Value::Array(
            p.allowed_address_pairs
                .iter()
                .map(|a| json!({"ip_address": render_ip_or_cidr(&a.ip_address), "mac_address": a.mac_address}))
                .collect(),
        ),
    );
    m.insert(
        "port_security_enabled".into(),
        json!(p.port_security_enabled),
    );
    m.insert("binding:host_id".into(), json!(p.binding_host_id));
    m.insert(
        "binding:vif_type".into(),
        json!(if bound { "ovs" } else { "unbound" }),
    );
    m.insert(
        "binding:vif_details".into(),
        if bound {
            json!({"port_filter": true, "connectivity": "l2"})
        } else {
            json!({})
        },
    );
    m.insert("binding:vnic_type".into(), json!(p.binding_vnic_type));
    m.insert("binding:profile".into(), json!(p.binding_profile));
    m.insert("extra_dhcp_opts".into(), json!(p.extra_dhcp_opts));
    debug_assert_eq!(m.len(), ATTRS.len());
    m
}

impl super::Resource for Port {
    const COLLECTION: &'static str = "ports";
    const RESOURCE: &'static str = "port";
    const ATTRS: &'static [&'static str] = ATTRS;
    fn render(&self) -> Map<String, Value> {
        render(self)
    }
}

fn parse_pairs(items: Vec<Value>, port_mac: MacAddr) -> ApiResult<Vec<AddressPair>> {
    let mut out: Vec<AddressPair> = Vec::new();
    for item in items {
        let Value::Object(mut o) = item else {
            return Err(bad_attr(
                "allowed_address_pairs",
                "each pair must be a dictionary",
            ));
        };
        let ip = o
            .remove("ip_address")
            .ok_or_else(|| bad_attr("allowed_address_pairs", "ip_address is required"))?;
        let ip_address = parse_cidr("allowed_address_pairs", &ip)?;
        let mac_address = match o.remove("mac_address") {
            None | Some(Value::Null) => port_mac,
            Some(v) => v
                .as_str()
                .and_then(|s| s.parse::<MacAddr>().ok())
                .filter(MacAddr::is_valid_unicast)
                .ok_or_else(|| {
                    bad_attr(
                        "allowed_address_pairs",
                        format!("'{v}' is not a valid MAC address"),
                    )
                })?,
        };
        if let Some(k) = o.keys().next() {
            return Err(bad_attr(
                "allowed_address_pairs",
                format!("unrecognized key '{k}'"),
            ));
        }
        let pair = AddressPair {
            ip_address,
            mac_address,
        };
        if out.contains(&pair) {
            return Err(ApiError::bad_request(
                "DuplicateAddressPairInRequest",
                format!(
                    "Request contains duplicate address pair: mac_address {mac_address} ip_address {ip_address}."
                ),
            ));
        }
        out.push(pair);
    }
    Ok(out)
}

/// Merges `extra_dhcp_opts` from a request into `current` (a null value removes an option).
fn merge_dhcp_opts(current: &mut Vec<ExtraDhcpOpt>, items: Vec<Value>) -> ApiResult<()> {
    for item in items {
        let name = item
            .get("opt_name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let Some(name) = name else {
            return Err(bad_attr("extra_dhcp_opts", "each option needs an opt_name"));
        };
        let ip_version = match item.get("ip_version") {
            None | Some(Value::Null) => 4,
            Some(v) if v == &json!(4) || v == &json!("4") => 4,
            Some(v) if v == &json!(6) || v == &json!("6") => 6,
            Some(v) => {
                return Err(bad_attr(
                    "extra_dhcp_opts",
                    format!("ip_version '{v}' is not 4 or 6"),
                ));
            }
        };
        if let Some(k) = item.as_object().and_then(|o| {
            o.keys()
                .find(|k| !["opt_name", "opt_value", "ip_version"].contains(&k.as_str()))
        }) {
            return Err(bad_attr(
                "extra_dhcp_opts",
                format!("unrecognized key '{k}'"),
            ));
        }
        current.retain(|o| !(o.opt_name == name && o.ip_version == ip_version));
        match item.get("opt_value") {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) => current.push(ExtraDhcpOpt {
                opt_name: name.into(),
                opt_value: v.clone(),
                ip_version,
            }),
            Some(v) => {
                return Err(bad_attr(
                    "extra_dhcp_opts",
                    format!("opt_value '{v}' is not a string"),
                ));
            }
        }
    }
    Ok(())
}

async fn check_groups(
    api: &Api,
    ctx: &Context,
    project: &str,
    ids: &[String],
    txn: &mut Txn,
) -> ApiResult<()> {
    for id in ids {
        let Some((sg, rev)) = api.db.get::<SecurityGroup>(id).await? else {
            return Err(ApiError::not_found("SecurityGroup", id));
        };
        if !ctx.is_admin && sg.meta.project_id != project {
            return Err(ApiError::not_found("SecurityGroup", id));
        }
        super::not_deleting(&sg)?;
        txn.check::<SecurityGroup>(id, rev);
    }
    Ok(())
}

fn check_port_security(p: &Port) -> ApiResult<()> {
    if !p.port_security_enabled {
        if !p.security_groups.is_empty() {
            return Err(ApiError::conflict(
                "PortSecurityPortHasSecurityGroup",
                "Port has security group associated. Cannot disable port security or ip address until security group is removed",
            ));
        }
        if !p.allowed_address_pairs.is_empty() {
            return Err(ApiError::conflict(
                "AddressPairAndPortSecurityRequired",
                "Port Security must be enabled in order to have allowed address pairs on a port.",
            ));
        }
    }
    Ok(())
}

fn mac_in_use(network: &str, mac: MacAddr) -> ApiError {
    ApiError::conflict(
        "MacAddressInUse",
        format!(
            "Unable to complete operation for network {network}. The mac address {mac} is in use."
        ),
    )
}

/// What a port being created by the system (router interface, gateway, floating IP) needs.
pub struct SystemPort<'a> {
    pub network: &'a Network,
    pub project_id: String,
    pub device_owner: &'static str,
    pub device_id: String,
    pub fixed_ips: Option<Vec<ipam::IpRequest>>,
}

/// Builds a system-owned port into `txn` (addresses and MAC claimed) and returns it.
pub async fn build_system_port<'a>(
    api: &'a Api,
    txn: &mut Txn,
    alloc: &mut Allocation<'a>,
    sp: SystemPort<'_>,
) -> ApiResult<Port> {
    let id = model::new_id();
    let subnets = network_subnets(api, sp.network).await?;
    let (mac, r) = api
        .alloc
        .pick_mac(&api.db, api.config.mac_base)
        .await?
        .ok_or_else(|| ApiError::retry("mac"))?;
    alloc.reservation.add(r);
    let fixed_ips = alloc
        .assign(txn, sp.network, &subnets, (&id, mac), sp.fixed_ips, &[])
        .await?;
    if fixed_ips.is_empty() {
        return Err(ipam::exhausted(&sp.network.meta.id));
    }
    let unique_key = networks::pick_key(api, "port", MAX_KEY, &mut alloc.reservation).await?;
    let now = model::time::now();
    let port = Port {
        meta: model::Meta {
            id: id.clone(),
            project_id: sp.project_id,
            created_at: now.clone(),
            updated_at: now,
            ..Default::default()
        },
        network_id: sp.network.meta.id.clone(),
        admin_state_up: true,
        mac_address: mac,
        fixed_ips,
        security_groups: vec![],
        allowed_address_pairs: vec![],
        port_security_enabled: false,
        device_owner: sp.device_owner.into(),
        device_id: sp.device_id,
        binding_host_id: String::new(),
        binding_profile: Default::default(),
        binding_vnic_type: "normal".into(),
        extra_dhcp_opts: vec![],
        status: PortStatus::Active,
        unique_key,
    };
    txn.create(&port);
    txn.claim(&mac_claim(&mac), &id);
    txn.claim(&key_claim("port", u128::from(unique_key)), &id);
    Ok(port)
}

/// Removes a port and its claims within `txn`.
pub fn remove_port(api: &Api, txn: &mut Txn, p: &Port, rev: nbdb::Revision) {
    txn.delete::<Port>(&p.meta.id, rev);
    txn.release(&mac_claim(&p.mac_address));
    txn.release(&key_claim("port", u128::from(p.unique_key)));
    ipam::release(api, txn, &p.fixed_ips);
    api.alloc.freed("key/port", u128::from(p.unique_key));
}

pub async fn create(
    State(api): State<Arc<Api>>,
    ctx: Context,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let p = retrying(|| create_once(&api, &ctx, body.clone())).await?;
    tracing::info!(port = %p.meta.id, network = %p.network_id, mac = %p.mac_address, ips = ?p.fixed_ips.iter().map(|f| f.ip_address).collect::<Vec<_>>(), "port created");
    Ok((StatusCode::CREATED, Json(json!({"port": render(&p)}))))
}

async fn create_once(api: &Api, ctx: &Context, body: Value) -> ApiResult<Port> {
    let mut attrs = Attrs::from_body(body, "port", "POST")?;
    attrs.forbid(&[
        "id",
        "status",
        "created_at",
        "updated_at",
        "revision_number",
        "binding:vif_type",
        "binding:vif_details",
    ])?;
    let meta = new_meta(ctx, &mut attrs)?;
    let network_id = attrs
        .string("network_id")?
        .ok_or_else(|| bad_attr("network_id", "network_id is required"))?;
    let mut sg_ids: Vec<String> = security_groups_from(&mut attrs)?.unwrap_or_default();
    let (network, net_rev) = api.db.fetch::<Network>(&network_id).await?;
    if !networks::usable(ctx, &network) {
        return Err(ApiError::not_found("Network", &network_id));
    }
    super::not_deleting(&network)?;
    let id = meta.id.clone();
    let mut txn = Txn::new();
    txn.check::<Network>(&network_id, net_rev);
    let mut alloc = Allocation::new(api);
    let mac = match attrs.mac("mac_address")? {
        Some(mac) => {
            let claim = mac_claim(&mac);
            if api.db.claim_owner(&claim).await?.is_some() {
                return Err(mac_in_use(&network_id, mac));
            }
            alloc.reservation.add(
                api.alloc
                    .reserve(claim.clone())
                    .ok_or_else(|| mac_in_use(&network_id, mac))?,
            );
            txn.claim_requested(&claim, &id, mac_in_use(&network_id, mac));
            mac
        }
        None => {
            let (mac, r) = api
                .alloc
                .pick_mac(&api.db, api.config.mac_base)
                .await?
                .ok_or_else(|| ApiError::retry("mac"))?;
            alloc.reservation.add(r);
            txn.claim(&mac_claim(&mac), &id);
            mac
        }
    };
    let device_owner = attrs.string("device_owner")?.unwrap_or_default();
    let device_id = attrs.string("device_id")?.unwrap_or_default();
    check_router_device(api, ctx, &device_owner, &device_id, &meta.project_id).await?;
    let port_security_enabled = attrs
        .bool("port_security_enabled")?
        .unwrap_or(network.port_security_enabled);
    let explicit_groups = attrs.has("security_groups") || !sg_ids.is_empty();
    if !explicit_groups && port_security_enabled && !device_owner.starts_with("network:") {
        sg_ids = vec![security_groups::ensure_default(api, &meta.project_id).await?];
    }
    check_groups(api, ctx, &meta.project_id, &sg_ids, &mut txn).await?;
    let pairs = parse_pairs(
        attrs.list("allowed_address_pairs")?.unwrap_or_default(),
        mac,
    )?;
    let mut extra_dhcp_opts = Vec::new();
    merge_dhcp_opts(
        &mut extra_dhcp_opts,
        attrs.list("extra_dhcp_opts")?.unwrap_or_default(),
    )?;
    let binding_host_id = attrs.string("binding:host_id")?.unwrap_or_default();
    let binding_profile = attrs
        .object("binding:profile")?
        .unwrap_or_default()
        .into_iter()
        .collect();
    let binding_vnic_type = attrs
        .string("binding:vnic_type")?
        .unwrap_or_else(|| "normal".into());
    if binding_vnic_type != "normal" {
        return Err(bad_attr(
            "binding:vnic_type",
            format!("'{binding_vnic_type}' is not supported (only 'normal')"),
        ));
    }
    let admin_state_up = attrs.bool("admin_state_up")?.unwrap_or(true);
    let requests = attrs.list("fixed_ips")?.map(parse_fixed_ips).transpose()?;
    attrs.finish()?;
    let subnets = network_subnets(api, &network).await?;
    let fixed_ips = alloc
        .assign(&mut txn, &network, &subnets, (&id, mac), requests, &[])
        .await?;
    let unique_key = networks::pick_key(api, "port", MAX_KEY, &mut alloc.reservation).await?;
    txn.claim(&key_claim("port", u128::from(unique_key)), &id);
    let port = Port {
        meta,
        network_id,
        admin_state_up,
        mac_address: mac,
        fixed_ips,
        security_groups: sg_ids,
        allowed_address_pairs: pairs,
        port_security_enabled,
        device_owner,
        device_id,
        binding_host_id,
        binding_profile,
        binding_vnic_type,
        extra_dhcp_opts,
        status: PortStatus::Down,
        unique_key,
    };
    check_port_security(&port)?;
    txn.create(&port);
    txn.commit(&api.db).await?;
    Ok(port)
}

/// Neutron's `_enforce_device_owner_not_router_intf_or_device_id`: a non-admin's port may
/// not pose as an interface of another project's router (which would route into it).
async fn check_router_device(
    api: &Api,
    ctx: &Context,
    device_owner: &str,
    device_id: &str,
    project: &str,
) -> ApiResult<()> {
    if ctx.is_admin
        || device_id.is_empty()
        || !owner::ROUTER_INTERFACE_OWNERS.contains(&device_owner)
    {
        return Ok(());
    }
    match api.db.get::<model::Router>(device_id).await? {
        Some((r, _)) if r.meta.project_id != project => Err(ApiError::conflict(
            "DeviceIDNotOwnedByTenant",
            format!(
                "The following device_id {device_id} is not owned by your tenant or matches another tenants router."
            ),
        )),
        _ => Ok(()),
    }
}

/// This host's SNAT address port on external network `network_id`: the one it has, or a
/// new one made like any port (its IPAM, one transaction), bound to `host`, with no
/// project (a system port, as router gateways). Returns whether it was made.
pub async fn ensure_chassis_snat(
    api: &Api,
    network_id: &str,
    host: &str,
) -> ApiResult<(Port, bool)> {
    let (network, _) = api.db.fetch::<Network>(network_id).await?;
    if !network.external {
        return Err(ApiError::invalid(format!(
            "network {network_id} is not an external network"
        )));
    }
    let mine = |p: &Port| {
        p.network_id == network_id && p.device_owner == owner::CHASSIS_SNAT && p.device_id == host
    };
    if let Some((p, _)) = api
        .db
        .all::<Port>()
        .await?
        .into_iter()
        .find(|(p, _)| mine(p))
    {
        return Ok((p, false));
    }
    let ctx = Context {
        project_id: String::new(),
        is_admin: true,
    };
    let body = json!({"port": {
        "network_id": network_id,
        "name": format!("snat-{host}"),
        "device_owner": owner::CHASSIS_SNAT,
        "device_id": host,
        "binding:host_id": host,
    }});
    let p = retrying(|| create_once(api, &ctx, body.clone())).await?;
    tracing::info!(port = %p.meta.id, network = %network_id, %host, ips = ?p.fixed_ips.iter().map(|f| f.ip_address).collect::<Vec<_>>(), "SNAT port created");
    Ok((p, true))
}

fn security_groups_from(attrs: &mut Attrs) -> ApiResult<Option<Vec<String>>> {
    let Some(mut ids) = attrs.strings("security_groups")? else {
        return Ok(None);
    };
    ids.sort();
    ids.dedup();
    Ok(Some(ids))
}

pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let p = retrying(|| update_once(&api, &ctx, &id, &headers, body.clone())).await?;
    tracing::info!(port = %p.meta.id, "port updated");
    Ok(Json(json!({"port": render(&p)})))
}

async fn update_once(
    api: &Api,
    ctx: &Context,
    id: &str,
    headers: &HeaderMap,
    body: Value,
) -> ApiResult<Port> {
    let (mut p, rev) = super::visible::<Port>(api, ctx, id).await?;
    check_if_match(headers, &p.meta)?;
    let mut attrs = Attrs::from_body(body, "port", "PUT")?;
    update_meta(&mut p.meta, &mut attrs)?;
    for k in [
        "network_id",
        "status",
        "binding:vif_type",
        "binding:vif_details",
    ] {
        if attrs.has(k) {
            return Err(read_only(k));
        }
    }
    let mut txn = Txn::new();
    let mut alloc = Allocation::new(api);
    let new_groups = security_groups_from(&mut attrs)?;
    if let Some(mac) = attrs.mac("mac_address")?
        && mac != p.mac_address
    {
        if !p.binding_host_id.is_empty() {
            return Err(ApiError::conflict(
                "PortBound",
                format!("Unable to complete operation on port {id}, port is already bound"),
            ));
        }
        let claim = mac_claim(&mac);
        if api.db.claim_owner(&claim).await?.is_some() {
            return Err(mac_in_use(&p.network_id, mac));
        }
        txn.claim_requested(&claim, id, mac_in_use(&p.network_id, mac));
        txn.release(&mac_claim(&p.mac_address));
        p.mac_address = mac;
    }
    if let Some(v) = attrs.bool("admin_state_up")? {
        p.admin_state_up = v;
    }
    let owner = attrs.string("device_owner")?;
    let device = attrs.string("device_id")?;
    if owner.is_some() || device.is_some() {
        p.device_owner = owner.unwrap_or(p.device_owner);
        p.device_id = device.unwrap_or(p.device_id);
        check_router_device(api, ctx, &p.device_owner, &p.device_id, &p.meta.project_id).await?;
    }
    if let Some(v) = attrs.bool("port_security_enabled")? {
        p.port_security_enabled = v;
    }
    if let Some(groups) = new_groups {
        check_groups(api, ctx, &p.meta.project_id, &groups, &mut txn).await?;
        p.security_groups = groups;
    }
    if let Some(items) = attrs.list("allowed_address_pairs")? {
        p.allowed_address_pairs = parse_pairs(items, p.mac_address)?;
    }
    if let Some(items) = attrs.list("extra_dhcp_opts")? {
        merge_dhcp_opts(&mut p.extra_dhcp_opts, items)?;
    }
    if let Some(h) = attrs.string_or_null("binding:host_id")? {
        p.binding_host_id = h;
    }
    if let Some(prof) = attrs.object("binding:profile")? {
        p.binding_profile = prof.into_iter().collect();
    }
    if let Some(v) = attrs.string("binding:vnic_type")?
        && v != "normal"
    {
        return Err(bad_attr(
            "binding:vnic_type",
            format!("'{v}' is not supported (only 'normal')"),
        ));
    }
    if let Some(items) = attrs.list("fixed_ips")? {
        let requests = parse_fixed_ips(items)?;
        let (network, net_rev) = api.db.fetch::<Network>(&p.network_id).await?;
        txn.check::<Network>(&network.meta.id, net_rev);
        let subnets = network_subnets(api, &network).await?;
        let new_ips = alloc
            .assign(
                &mut txn,
                &network,
                &subnets,
                (id, p.mac_address),
                Some(requests),
                &p.fixed_ips,
            )
            .await?;
        let dropped: Vec<_> = p
            .fixed_ips
            .iter()
            .filter(|f| !new_ips.contains(f))
            .cloned()
            .collect();
        if !dropped.is_empty() && owner::is_system(&p.device_owner) && p.device_owner != owner::DHCP
        {
            return Err(ApiError::conflict(
                "PortInUse",
                format!(
                    "Port {id} is owned by {}: change its addresses through the router or floating IP API",
                    p.device_owner
                ),
            ));
        }
        ipam::release(api, &mut txn, &dropped);
        p.fixed_ips = new_ips;
    }
    attrs.finish()?;
    check_port_security(&p)?;
    touch(&mut p.meta);
    txn.update(&p, rev);
    txn.commit(&api.db).await?;
    Ok(p)
}

pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    retrying(|| async {
        let (p, rev) = super::visible::<Port>(&api, &ctx, &id).await?;
        check_if_match(&headers, &p.meta)?;
        if owner::is_system(&p.device_owner) && p.device_owner != owner::DHCP {
            return Err(ApiError::conflict(
                "L3PortInUse",
                format!(
                    "Port {id} cannot be deleted directly via the port API: has device owner {}.",
                    p.device_owner
                ),
            ));
        }
        let mut txn = Txn::new();
        floatingips::disassociate_port(&api, &mut txn, &id).await?;
        remove_port(&api, &mut txn, &p, rev);
        txn.commit(&api.db).await?;
        Ok(())
    })
    .await?;
    tracing::info!(port = %id, "port deleted");
    Ok(StatusCode::NO_CONTENT)
}
