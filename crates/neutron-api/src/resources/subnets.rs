//! `/v2.0/subnets`: IPv4 and IPv6 subnets with pools, gateway, DHCP settings, DNS servers,
//! host routes and IPv6 modes. A subnet's addresses are claimed per address by ports.

use super::{base_url, check_if_match, new_meta, one, read_only, render_meta, touch, update_meta};
use crate::Api;
use crate::alloc::ip_to_u128;
use crate::body::{self, Attrs, JsonBody, bad_attr, parse_cidr, parse_ip};
use crate::context::Context;
use crate::db::{Txn, retrying};
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use crate::resources::ipam::Allocation;
use crate::resources::{ipam, networks, ports};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use ipnet::IpNet;
use model::{AllocationPool, HostRoute, Network, Port, PortStatus, Subnet, Table, owner};
use serde_json::{Map, Value, json};
use std::net::IpAddr;
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
    "ip_version",
    "cidr",
    "gateway_ip",
    "allocation_pools",
    "enable_dhcp",
    "dns_nameservers",
    "host_routes",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "subnetpool_id",
];

const IPV6_MODES: [&str; 3] = ["slaac", "dhcpv6-stateful", "dhcpv6-stateless"];

pub fn render(s: &Subnet) -> Map<String, Value> {
    let mut m = render_meta(&s.meta, true);
    m.insert("network_id".into(), json!(s.network_id));
    m.insert("ip_version".into(), json!(s.ip_version));
    m.insert("cidr".into(), json!(s.cidr.to_string()));
    m.insert("gateway_ip".into(), json!(s.gateway_ip));
    m.insert("allocation_pools".into(), json!(s.allocation_pools));
    m.insert("enable_dhcp".into(), json!(s.enable_dhcp));
    m.insert("dns_nameservers".into(), json!(s.dns_nameservers));
    m.insert("host_routes".into(), json!(render_routes(&s.host_routes)));
    m.insert("ipv6_ra_mode".into(), json!(s.ipv6_ra_mode));
    m.insert("ipv6_address_mode".into(), json!(s.ipv6_address_mode));
    m.insert("subnetpool_id".into(), Value::Null);
    debug_assert_eq!(m.len(), ATTRS.len());
    m
}

pub fn render_routes(routes: &[HostRoute]) -> Vec<Value> {
    routes
        .iter()
        .map(|r| json!({"destination": r.destination.to_string(), "nexthop": r.nexthop}))
        .collect()
}

/// A subnet is visible with its network.
async fn usable(api: &Api, ctx: &Context, s: &Subnet) -> ApiResult<bool> {
    if ctx.owns(&s.meta.project_id) {
        return Ok(true);
    }
    Ok(api
        .db
        .get::<Network>(&s.network_id)
        .await?
        .is_some_and(|(n, _)| networks::usable(ctx, &n)))
}

pub async fn list(
    State(api): State<Arc<Api>>,
    ctx: Context,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(q.as_deref(), ATTRS)?;
    let mut items = Vec::new();
    for (s, _) in api.db.all::<Subnet>().await? {
        if usable(&api, &ctx, &s).await? {
            items.push(render(&s));
        }
    }
    Ok(Json(query.respond(
        "subnets",
        &base_url(&headers),
        items,
    )?))
}

pub async fn show(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let (s, _) = api.db.fetch::<Subnet>(&id).await?;
    if !usable(&api, &ctx, &s).await? {
        return Err(ApiError::not_found("Subnet", &id));
    }
    Ok(Json(one("subnet", render(&s), q.as_deref(), ATTRS)?))
}

fn same_family(a: &IpAddr, net: &IpNet) -> bool {
    a.is_ipv4() == matches!(net, IpNet::V4(_))
}

/// Default pool: every host address except network, broadcast (IPv4) and the gateway.
fn default_pools(cidr: &IpNet, gateway: Option<IpAddr>) -> Vec<AllocationPool> {
    let v6 = matches!(cidr, IpNet::V6(_));
    let first = ip_to_u128(cidr.network()) + 1;
    let last = ip_to_u128(cidr.broadcast()) - u128::from(!v6);
    let to_ip = |v| crate::alloc::u128_to_ip(v, v6);
    let mut pools = Vec::new();
    match gateway
        .map(ip_to_u128)
        .filter(|g| (first..=last).contains(g))
    {
        Some(g) => {
            if g > first {
                pools.push((first, g - 1));
            }
            if g < last {
                pools.push((g + 1, last));
            }
        }
        None => pools.push((first, last)),
    }
    pools
        .into_iter()
        .map(|(a, b)| AllocationPool {
            start: to_ip(a),
            end: to_ip(b),
        })
        .collect()
}

fn parse_pools(items: Vec<Value>, cidr: &IpNet) -> ApiResult<Vec<AllocationPool>> {
    let mut pools = Vec::new();
    for item in items {
        let start = item.get("start").and_then(parse_ip);
        let end = item.get("end").and_then(parse_ip);
        let (Some(start), Some(end)) = (start, end) else {
            return Err(bad_attr(
                "allocation_pools",
                format!("'{item}' needs a valid start and end"),
            ));
        };
        let inside = |ip: &IpAddr| {
            cidr.contains(ip) && *ip != cidr.network() && (ip.is_ipv6() || *ip != cidr.broadcast())
        };
        if !inside(&start) || !inside(&end) || ip_to_u128(start) > ip_to_u128(end) {
            return Err(ApiError::bad_request(
                "InvalidAllocationPool",
                format!("The allocation pool {start}-{end} spans beyond the subnet cidr {cidr}."),
            ));
        }
        pools.push(AllocationPool { start, end });
    }
    let mut sorted: Vec<_> = pools
        .iter()
        .map(|p| (ip_to_u128(p.start), ip_to_u128(p.end)))
        .collect();
    sorted.sort();
    if sorted.windows(2).any(|w| w[1].0 <= w[0].1) {
        return Err(ApiError::bad_request(
            "OverlappingAllocationPools",
            "Found overlapping allocation pools",
        ));
    }
    Ok(pools)
}

fn gateway_in_pools(gw: Option<IpAddr>, pools: &[AllocationPool]) -> ApiResult<()> {
    if let Some(g) = gw {
        let gv = ip_to_u128(g);
        if pools
            .iter()
            .any(|p| (ip_to_u128(p.start)..=ip_to_u128(p.end)).contains(&gv))
        {
            return Err(ApiError::conflict(
                "GatewayConflictWithAllocationPools",
                format!("Gateway ip {g} conflicts with allocation pool"),
            ));
        }
    }
    Ok(())
}

fn check_gateway(gw: Option<IpAddr>, cidr: &IpNet) -> ApiResult<()> {
    if let Some(g) = gw
        && (!cidr.contains(&g) || g == cidr.network() || (g.is_ipv4() && g == cidr.broadcast()))
    {
        return Err(ApiError::bad_request(
            "InvalidInput",
            format!("Invalid input for operation: Gateway is not valid on subnet {cidr}."),
        ));
    }
    Ok(())
}

fn parse_nameservers(items: Vec<Value>, cidr: &IpNet) -> ApiResult<Vec<IpAddr>> {
    let mut out: Vec<IpAddr> = Vec::new();
    for v in items {
        let ip = parse_ip(&v).ok_or_else(|| {
            bad_attr(
                "dns_nameservers",
                format!("'{}' is not a valid nameserver", body::show(&v)),
            )
        })?;
        if out.contains(&ip) {
            return Err(bad_attr(
                "dns_nameservers",
                format!("Duplicate nameserver '{ip}'"),
            ));
        }
        if !same_family(&ip, cidr) {
            return Err(bad_attr(
                "dns_nameservers",
                format!("'{ip}' is not of the subnet's IP version"),
            ));
        }
        out.push(ip);
    }
    Ok(out)
}

/// Parses `[{"destination", "nexthop"}]` (host routes and router routes).
pub fn parse_routes(
    attr: &str,
    items: Vec<Value>,
    family: Option<&IpNet>,
) -> ApiResult<Vec<HostRoute>> {
    let mut out: Vec<HostRoute> = Vec::new();
    for item in items {
        let dest = item
            .get("destination")
            .ok_or_else(|| bad_attr(attr, "each route needs a destination"))?;
        let destination = parse_cidr(attr, dest)?;
        let nexthop = item
            .get("nexthop")
            .and_then(parse_ip)
            .ok_or_else(|| bad_attr(attr, format!("'{item}' needs a valid nexthop")))?;
        if destination.addr().is_ipv4() != nexthop.is_ipv4()
            || family.is_some_and(|f| !same_family(&nexthop, f))
        {
            return Err(bad_attr(
                attr,
                format!("route {destination} via {nexthop} mixes IP versions"),
            ));
        }
        let r = HostRoute {
            destination,
            nexthop,
        };
        if out.contains(&r) {
            return Err(bad_attr(
                attr,
                format!("duplicate route {destination} via {nexthop}"),
            ));
        }
        out.push(r);
    }
    Ok(out)
}

fn ipv6_mode(attrs: &mut Attrs, key: &str, version: u8) -> ApiResult<Option<String>> {
    let v = attrs.string_or_null(key)?.filter(|m| !m.is_empty());
    if let Some(m) = &v {
        if !IPV6_MODES.contains(&m.as_str()) {
            return Err(bad_attr(key, format!("'{m}' is not in {IPV6_MODES:?}")));
        }
        if version != 6 {
            return Err(ApiError::invalid(format!(
                "{key} set to '{m}' with ip_version set to '{version}' is not valid"
            )));
        }
    }
    Ok(v)
}

pub async fn create(
    State(api): State<Arc<Api>>,
    ctx: Context,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let s = retrying(|| create_once(&api, &ctx, body.clone())).await?;
    tracing::info!(subnet = %s.meta.id, cidr = %s.cidr, network = %s.network_id, "subnet created");
    Ok((StatusCode::CREATED, Json(json!({"subnet": render(&s)}))))
}

async fn create_once(api: &Api, ctx: &Context, body: Value) -> ApiResult<Subnet> {
    let mut attrs = Attrs::from_body(body, "subnet", "POST")?;
    attrs.forbid(&["id", "created_at", "updated_at", "revision_number"])?;
    let meta = new_meta(ctx, &mut attrs)?;
    let network_id = attrs
        .string("network_id")?
        .ok_or_else(|| bad_attr("network_id", "network_id is required"))?;
    let (mut network, net_rev) = api.db.fetch::<Network>(&network_id).await?;
    if !ctx.owns(&network.meta.project_id) {
        return Err(ApiError::not_found("Network", &network_id));
    }
    super::not_deleting(&network)?;
    for k in ["subnetpool_id", "segment_id"] {
        if let Some(v) = attrs.take(k)
            && !v.is_null()
        {
            return Err(bad_attr(k, "subnet pools and segments are not supported"));
        }
    }
    if let Some(v) = attrs.take("use_default_subnet_pool")
        && v != json!(false)
    {
        return Err(bad_attr(
            "use_default_subnet_pool",
            "subnet pools are not supported",
        ));
    }
    if let Some(st) = attrs.list("service_types")?
        && !st.is_empty()
    {
        return Err(bad_attr("service_types", "service types are not supported"));
    }
    let version = attrs
        .u32("ip_version")?
        .ok_or_else(|| bad_attr("ip_version", "ip_version is required"))?;
    if version != 4 && version != 6 {
        return Err(bad_attr(
            "ip_version",
            format!("'{version}' is not in [4, 6]"),
        ));
    }
    let version = version as u8;
    let cidr_v = attrs
        .take("cidr")
        .ok_or_else(|| bad_attr("cidr", "cidr is required (subnet pools are not supported)"))?;
    let cidr = parse_cidr("cidr", &cidr_v)?;
    if (version == 4) != matches!(cidr, IpNet::V4(_)) {
        return Err(ApiError::invalid(format!(
            "Cidr {cidr} does not match ip_version {version}"
        )));
    }
    let max_prefix = if version == 4 { 30 } else { 126 };
    if cidr.prefix_len() > max_prefix {
        return Err(ApiError::invalid(format!(
            "cidr {cidr} is too small: the prefix must be at most /{max_prefix}"
        )));
    }
    let gateway_ip = match attrs.ip_or_null("gateway_ip")? {
        Some(g) => g,
        None => Some(crate::alloc::u128_to_ip(
            ip_to_u128(cidr.network()) + 1,
            version == 6,
        )),
    };
    check_gateway(gateway_ip, &cidr)?;
    let allocation_pools = match attrs.list("allocation_pools")? {
        Some(items) if !items.is_empty() => parse_pools(items, &cidr)?,
        _ => default_pools(&cidr, gateway_ip),
    };
    gateway_in_pools(gateway_ip, &allocation_pools)?;
    let enable_dhcp = attrs.bool("enable_dhcp")?.unwrap_or(true);
    let dns_nameservers =
        parse_nameservers(attrs.list("dns_nameservers")?.unwrap_or_default(), &cidr)?;
    let host_routes = parse_routes(
        "host_routes",
        attrs.list("host_routes")?.unwrap_or_default(),
        Some(&cidr),
    )?;
    let ipv6_ra_mode = ipv6_mode(&mut attrs, "ipv6_ra_mode", version)?;
    let ipv6_address_mode = ipv6_mode(&mut attrs, "ipv6_address_mode", version)?;
    if let (Some(ra), Some(am)) = (&ipv6_ra_mode, &ipv6_address_mode)
        && ra != am
    {
        return Err(ApiError::invalid(format!(
            "ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{am}' is not valid"
        )));
    }
    attrs.finish()?;
    let subnet = Subnet {
        meta,
        network_id: network_id.clone(),
        ip_version: version,
        cidr,
        gateway_ip,
        allocation_pools,
        enable_dhcp,
        dns_nameservers,
        host_routes,
        ipv6_ra_mode,
        ipv6_address_mode,
        deleting: false,
    };
    if subnet.is_auto_address() && cidr.prefix_len() != 64 {
        return Err(ApiError::invalid(format!(
            "Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64"
        )));
    }
    for (other, _) in crate::resources::ipam::network_subnets(api, &network).await? {
        if other.cidr.contains(&cidr.network()) || cidr.contains(&other.cidr.network()) {
            return Err(ApiError::conflict(
                "SubnetOverlap",
                format!(
                    "Requested subnet with cidr: {cidr} for network: {network_id} overlaps with another subnet ({} of subnet {})",
                    other.cidr, other.meta.id
                ),
            ));
        }
    }
    // The network's subnet list changes too; its compare-and-swap orders concurrent subnet
    // creations on one network, so the overlap check above cannot be raced.
    network.subnets.push(subnet.meta.id.clone());
    let mut txn = Txn::new();
    txn.create(&subnet);
    txn.update(&network, net_rev);
    let mut alloc = Allocation::new(api);
    if subnet.enable_dhcp {
        dhcp_join(api, &mut txn, &mut alloc, &network, &subnet).await?;
    }
    txn.commit(&api.db).await?;
    Ok(subnet)
}

pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let s = retrying(|| async {
        let (mut s, rev) = api.db.fetch::<Subnet>(&id).await?;
        if !ctx.owns(&s.meta.project_id) {
            return Err(ApiError::not_found("Subnet", &id));
        }
        check_if_match(&headers, &s.meta)?;
        let mut attrs = Attrs::from_body(body.clone(), "subnet", "PUT")?;
        update_meta(&mut s.meta, &mut attrs)?;
        for k in [
            "cidr",
            "ip_version",
            "network_id",
            "ipv6_ra_mode",
            "ipv6_address_mode",
            "subnetpool_id",
        ] {
            if attrs.has(k) {
                return Err(read_only(k));
            }
        }
        if let Some(g) = attrs.ip_or_null("gateway_ip")? {
            check_gateway(g, &s.cidr)?;
            s.gateway_ip = g;
        }
        if let Some(items) = attrs.list("allocation_pools")? {
            s.allocation_pools = if items.is_empty() {
                default_pools(&s.cidr, s.gateway_ip)
            } else {
                parse_pools(items, &s.cidr)?
            };
        }
        gateway_in_pools(s.gateway_ip, &s.allocation_pools)?;
        let had_dhcp = s.enable_dhcp;
        if let Some(v) = attrs.bool("enable_dhcp")? {
            s.enable_dhcp = v;
        }
        if let Some(items) = attrs.list("dns_nameservers")? {
            s.dns_nameservers = parse_nameservers(items, &s.cidr)?;
        }
        if let Some(items) = attrs.list("host_routes")? {
            s.host_routes = parse_routes("host_routes", items, Some(&s.cidr))?;
        }
        attrs.finish()?;
        touch(&mut s.meta);
        let mut txn = Txn::new();
        txn.update(&s, rev);
        let mut alloc = Allocation::new(&api);
        match (had_dhcp, s.enable_dhcp) {
            (false, true) => {
                let (network, nrev) = api.db.fetch::<Network>(&s.network_id).await?;
                txn.check::<Network>(&network.meta.id, nrev);
                dhcp_join(&api, &mut txn, &mut alloc, &network, &s).await?;
            }
            (true, false) => dhcp_leave(&api, &mut txn, &s).await?,
            _ => {}
        }
        txn.commit(&api.db).await?;
        Ok(s)
    })
    .await?;
    tracing::info!(subnet = %s.meta.id, "subnet updated");
    Ok(Json(json!({"subnet": render(&s)})))
}

pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    retrying(|| async {
        let (mut s, rev) = api.db.fetch::<Subnet>(&id).await?;
        if !ctx.owns(&s.meta.project_id) {
            return Err(ApiError::not_found("Subnet", &id));
        }
        check_if_match(&headers, &s.meta)?;
        let rev = super::mark_deleting(&api, &mut s, rev).await?;
        let dhcp = dhcp_port(&api, &s.network_id).await?;
        let dhcp_id = dhcp.as_ref().map(|(p, _)| serde_json::to_vec(&p.meta.id).unwrap_or_default());
        let claims = api.db.store.list(Table::Claim.name(), &format!("ip/{id}/")).await?;
        // The DHCP port's address goes with the subnet.
        if claims.iter().any(|c| Some(&c.value) != dhcp_id.as_ref()) {
            super::unmark_deleting(&api, &mut s, rev).await;
            return Err(ApiError::conflict(
                "SubnetInUse",
                format!("Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."),
            ));
        }
        let mut txn = Txn::new();
        txn.delete::<Subnet>(&id, rev);
        dhcp_leave(&api, &mut txn, &s).await?;
        if let Some((mut n, nrev)) = api.db.get::<Network>(&s.network_id).await? {
            n.subnets.retain(|x| *x != id);
            txn.update(&n, nrev);
        }
        txn.commit(&api.db).await?;
        Ok(())
    })
    .await?;
    tracing::info!(subnet = %id, "subnet deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The device id of the DHCP port the server makes for a network (ports a user makes with
/// device owner `network:dhcp` are not it).
fn dhcp_device_id(network_id: &str) -> String {
    format!("dhcp-{network_id}")
}

/// The network's DHCP port (device owner `network:dhcp`), if it has one.
pub async fn dhcp_port(api: &Api, network_id: &str) -> ApiResult<Option<(Port, nbdb::Revision)>> {
    Ok(api.db.all::<Port>().await?.into_iter().find(|(p, _)| {
        p.network_id == network_id
            && p.device_owner == owner::DHCP
            && p.device_id == dhcp_device_id(network_id)
    }))
}

/// Gives the network's DHCP port an address on `subnet` (DHCP just enabled there), creating
/// the port for the network's first DHCP subnet. Everything goes into `txn`, so the subnet
/// and its DHCP address are written together or not at all.
async fn dhcp_join<'a>(
    api: &'a Api,
    txn: &mut Txn,
    alloc: &mut Allocation<'a>,
    network: &Network,
    subnet: &Subnet,
) -> ApiResult<()> {
    match dhcp_port(api, &network.meta.id).await? {
        Some((mut p, prev)) => {
            if p.fixed_ips.iter().any(|f| f.subnet_id == subnet.meta.id) {
                return Ok(());
            }
            let Some(f) = alloc
                .automatic(txn, subnet, p.mac_address, &p.meta.id)
                .await?
            else {
                return Err(ipam::exhausted(&network.meta.id));
            };
            p.fixed_ips.push(f);
            touch(&mut p.meta);
            txn.update(&p, prev);
        }
        None => {
            let id = model::new_id();
            let (mac, r) = api
                .alloc
                .pick_mac(&api.db, api.config.mac_base)
                .await?
                .ok_or_else(|| ApiError::retry("mac"))?;
            alloc.reservation.add(r);
            let Some(f) = alloc.automatic(txn, subnet, mac, &id).await? else {
                return Err(ipam::exhausted(&network.meta.id));
            };
            let unique_key =
                networks::pick_key(api, "port", ports::MAX_KEY, &mut alloc.reservation).await?;
            let now = model::time::now();
            let port = Port {
                meta: model::Meta {
                    id: id.clone(),
                    // The network's project, as in Neutron: the port is listed (and
                    // distributed) with the network's other ports.
                    project_id: network.meta.project_id.clone(),
                    created_at: now.clone(),
                    updated_at: now,
                    ..Default::default()
                },
                network_id: network.meta.id.clone(),
                admin_state_up: true,
                mac_address: mac,
                fixed_ips: vec![f],
                security_groups: vec![],
                allowed_address_pairs: vec![],
                port_security_enabled: false,
                device_owner: owner::DHCP.into(),
                device_id: dhcp_device_id(&network.meta.id),
                binding_host_id: String::new(),
                binding_profile: Default::default(),
                binding_vnic_type: "normal".into(),
                extra_dhcp_opts: vec![],
                status: PortStatus::Active,
                unique_key,
            };
            txn.create(&port);
            txn.claim(&crate::alloc::mac_claim(&mac), &id);
            txn.claim(
                &crate::alloc::key_claim("port", u128::from(unique_key)),
                &id,
            );
        }
    }
    Ok(())
}

/// Takes the DHCP port's address on `subnet` away (DHCP disabled there, or the subnet
/// deleted); the port goes with its last address.
async fn dhcp_leave(api: &Api, txn: &mut Txn, subnet: &Subnet) -> ApiResult<()> {
    let Some((mut p, prev)) = dhcp_port(api, &subnet.network_id).await? else {
        return Ok(());
    };
    let (gone, kept): (Vec<_>, Vec<_>) = p
        .fixed_ips
        .iter()
        .cloned()
        .partition(|f| f.subnet_id == subnet.meta.id);
    if gone.is_empty() {
        return Ok(());
    }
    if kept.is_empty() {
        ports::remove_port(api, txn, &p, prev);
    } else {
        ipam::release(api, txn, &gone);
        p.fixed_ips = kept;
        touch(&mut p.meta);
        txn.update(&p, prev);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pools_skip_gateway_network_and_broadcast() {
        let cidr: IpNet = "10.0.0.0/24".parse().unwrap();
        let p = default_pools(&cidr, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            p,
            [AllocationPool {
                start: "10.0.0.2".parse().unwrap(),
                end: "10.0.0.254".parse().unwrap()
            }]
        );
        let p = default_pools(&cidr, Some("10.0.0.100".parse().unwrap()));
        assert_eq!(p.len(), 2);
        let v6: IpNet = "fd00::/64".parse().unwrap();
        let p = default_pools(&v6, None);
        assert_eq!(p[0].start.to_string(), "fd00::1");
        assert_eq!(p[0].end.to_string(), "fd00::ffff:ffff:ffff:ffff");
    }

    #[test]
    fn overlapping_pools_refused() {
        let cidr: IpNet = "10.0.0.0/24".parse().unwrap();
        let r = parse_pools(
            vec![
                json!({"start": "10.0.0.2", "end": "10.0.0.20"}),
                json!({"start": "10.0.0.20", "end": "10.0.0.30"}),
            ],
            &cidr,
        );
        assert!(r.is_err());
        let r = parse_pools(
            vec![json!({"start": "10.0.0.2", "end": "10.0.1.20"})],
            &cidr,
        );
        assert!(r.is_err());
    }
}
