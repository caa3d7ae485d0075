//! `/v2.0/subnets`: IPv4 and IPv6 subnets with pools, gateway, DHCP settings, DNS servers,
//! host routes and IPv6 modes. A subnet's addresses are claimed per address by ports.

use super::Resource;
use super::lifecycle::Lifecycle;
use super::ops::deleting::not_deleting;
use super::ops::routes::{parse_routes, render_routes, same_family};
use super::ops::{Plan, dhcp, ipam, pools, rbac as ops_rbac};
use crate::Api;
use crate::alloc::{ip_to_u128, u128_to_ip};
use crate::body::{self, Attrs, bad_attr, parse_cidr, parse_ip};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::policy::rbac::Grants;
use ipnet::IpNet;
use model::{AllocationPool, HostRoute, Meta, Network, Port, Subnet, Table, owner};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::IpAddr;

const IPV6_MODES: [&str; 3] = ["slaac", "dhcpv6-stateful", "dhcpv6-stateless"];

impl Resource for Subnet {
    const COLLECTION: &'static str = "subnets";
    const RESOURCE: &'static str = "subnet";
    const OWN_ATTRS: &'static [&'static str] = &[
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
        "router:external",
    ];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("network_id".into(), json!(self.network_id));
        m.insert("ip_version".into(), json!(self.ip_version));
        m.insert("cidr".into(), json!(self.cidr.to_string()));
        m.insert("gateway_ip".into(), json!(self.gateway_ip));
        m.insert("allocation_pools".into(), json!(self.allocation_pools));
        m.insert("enable_dhcp".into(), json!(self.enable_dhcp));
        m.insert("dns_nameservers".into(), json!(self.dns_nameservers));
        m.insert(
            "host_routes".into(),
            json!(render_routes(&self.host_routes)),
        );
        m.insert("ipv6_ra_mode".into(), json!(self.ipv6_ra_mode));
        m.insert("ipv6_address_mode".into(), json!(self.ipv6_address_mode));
        m.insert("subnetpool_id".into(), json!(self.subnetpool_id));
        // Its network's, filled in by `render_all` (the subnet-external-network extension).
        m.insert("router:external".into(), json!(false));
    }

    async fn render_all(api: &Api, objs: &[Subnet]) -> ApiResult<Vec<Map<String, Value>>> {
        let mut external: HashMap<&str, bool> = HashMap::new();
        for s in objs {
            if !external.contains_key(s.network_id.as_str()) {
                let ext = api
                    .db
                    .get::<Network>(&s.network_id)
                    .await?
                    .is_some_and(|(n, _)| n.external);
                external.insert(&s.network_id, ext);
            }
        }
        Ok(objs
            .iter()
            .map(|s| {
                let mut m = super::render(s);
                let ext = external
                    .get(s.network_id.as_str())
                    .copied()
                    .unwrap_or(false);
                m.insert("router:external".into(), json!(ext));
                m
            })
            .collect())
    }

    /// A subnet is seen with its network (shared and external ones too), and is its
    /// network owner's to change.
    /// A subnet is `shared` when its network is shared with the caller (a filter only, as
    /// in Neutron).
    const FILTER_ONLY: &'static [&'static str] = &["shared"];

    async fn filter_values(
        api: &Api,
        ctx: &Context,
        objs: &[Subnet],
        items: &mut [Map<String, Value>],
    ) -> ApiResult<()> {
        let grants = Grants::load(api, ctx, true).await?;
        let shared: HashMap<String, bool> = (api.db.all::<Network>().await?)
            .into_iter()
            .map(|(n, _)| (n.meta.id.clone(), grants.shared_network(&n)))
            .collect();
        for (s, item) in objs.iter().zip(items.iter_mut()) {
            let v = shared.get(&s.network_id).copied().unwrap_or(false);
            item.insert("shared".into(), json!(v));
        }
        Ok(())
    }

    async fn targets(api: &Api, ctx: &Context, objs: &[Subnet]) -> ApiResult<Vec<Target>> {
        if ctx.is_admin || objs.iter().all(|s| s.meta.project_id == ctx.project_id) {
            // A subnet is its network owner's.
            return Ok(objs
                .iter()
                .map(|s| Target {
                    network_owner: Some(s.meta.project_id.clone()),
                    ..Target::project(&s.meta.project_id)
                })
                .collect());
        }
        let grants = Grants::load(api, ctx, true).await?;
        let networks: HashMap<String, Network> = (api.db.all::<Network>().await?)
            .into_iter()
            .map(|(n, _)| (n.meta.id.clone(), n))
            .collect();
        Ok(objs
            .iter()
            .map(|s| {
                let n = networks.get(&s.network_id);
                Target {
                    project_id: s.meta.project_id.clone(),
                    network_owner: n.map(|n| n.meta.project_id.clone()),
                    shared: n
                        .is_some_and(|n| grants.shared_network(n) || grants.external_network(n)),
                    wildcard: false,
                }
            })
            .collect())
    }
}

/// A POST's own attributes.
pub struct NewSubnet {
    network_id: String,
    ip_version: u8,
    /// None: allocated from the pool (`pool`), with the gateway asked for (`gateway`).
    cidr: Option<IpNet>,
    pool: pools::PoolRequest,
    gateway: Option<Option<IpAddr>>,
    gateway_ip: Option<IpAddr>,
    allocation_pools: Vec<AllocationPool>,
    enable_dhcp: bool,
    dns_nameservers: Vec<IpAddr>,
    host_routes: Vec<HostRoute>,
    ipv6_ra_mode: Option<String>,
    ipv6_address_mode: Option<String>,
}

/// A PUT's own attributes, checked against the subnet's CIDR.
pub struct SubnetUpdate {
    gateway_ip: Option<Option<IpAddr>>,
    allocation_pools: Option<Vec<AllocationPool>>,
    enable_dhcp: Option<bool>,
    dns_nameservers: Option<Vec<IpAddr>>,
    host_routes: Option<Vec<HostRoute>>,
}

impl Lifecycle for Subnet {
    type Create = NewSubnet;
    type Update = SubnetUpdate;
    const PUT_READ_ONLY: &'static [&'static str] = &[
        "cidr",
        "ip_version",
        "network_id",
        "ipv6_ra_mode",
        "ipv6_address_mode",
        "subnetpool_id",
    ];

    async fn create_target(
        api: &Api,
        ctx: &Context,
        meta: &Meta,
        req: &NewSubnet,
    ) -> ApiResult<Target> {
        ops_rbac::on_network(api, ctx, &meta.project_id, &req.network_id).await
    }

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewSubnet> {
        let network_id = attrs
            .string("network_id")?
            .ok_or_else(|| bad_attr("network_id", "network_id is required"))?;
        if let Some(v) = attrs.take("segment_id")
            && !v.is_null()
        {
            return Err(bad_attr("segment_id", "segments are not supported"));
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
        let cidr = match attrs.take("cidr") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_cidr("cidr", &v)?),
        };
        let pool = pools::parse_request(attrs, cidr.is_some())?;
        let gateway = attrs.ip_or_null("gateway_ip")?;
        let requested_pools = attrs.list("allocation_pools")?.unwrap_or_default();
        let (gateway_ip, allocation_pools) = match cidr {
            Some(cidr) => layout(version, cidr, gateway, requested_pools)?,
            None if !requested_pools.is_empty() => {
                return Err(pools::bad_subnet_request(
                    "allocation_pools allowed only for specific subnet requests.",
                ));
            }
            None => (None, Vec::new()),
        };
        let enable_dhcp = attrs.bool("enable_dhcp")?.unwrap_or(true);
        // Only the address family matters to these, known before a pool gives the CIDR.
        let family = IpNet::from(if version == 4 {
            IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED)
        });
        let dns_nameservers =
            parse_nameservers(attrs.list("dns_nameservers")?.unwrap_or_default(), &family)?;
        let host_routes = parse_routes(
            "host_routes",
            attrs.list("host_routes")?.unwrap_or_default(),
            Some(&family),
        )?;
        let ipv6_ra_mode = ipv6_mode(attrs, "ipv6_ra_mode", version)?;
        let ipv6_address_mode = ipv6_mode(attrs, "ipv6_address_mode", version)?;
        // Neutron's order: DHCP first, then the pair, then (with the CIDR) EUI-64's /64.
        if (ipv6_ra_mode.is_some() || ipv6_address_mode.is_some()) && !enable_dhcp {
            return Err(ApiError::invalid(
                "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False",
            ));
        }
        if let (Some(ra), Some(am)) = (&ipv6_ra_mode, &ipv6_address_mode)
            && ra != am
        {
            return Err(ApiError::invalid(format!(
                "ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{am}' is not valid. If both attributes are set, they must be the same value"
            )));
        }
        Ok(NewSubnet {
            network_id,
            ip_version: version,
            cidr,
            pool,
            gateway,
            gateway_ip,
            allocation_pools,
            enable_dhcp,
            dns_nameservers,
            host_routes,
            ipv6_ra_mode,
            ipv6_address_mode,
        })
    }

    async fn plan_create(
        api: &Api,
        ctx: &Context,
        meta: Meta,
        req: &NewSubnet,
        plan: &mut Plan<'_>,
    ) -> ApiResult<Subnet> {
        let network_id = &req.network_id;
        let (mut network, net_rev) = api.db.fetch::<Network>(network_id).await?;
        not_deleting(&network)?;
        super::ops::check_mtu_fits(network_id, network.mtu, req.ip_version)?;
        let others: Vec<Subnet> = (ipam::network_subnets(api, &network).await?)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let pool = pools::requested_pool(api, ctx, &req.pool, req.ip_version).await?;
        let pool_id = pool.as_ref().map(|(p, _)| p.meta.id.clone());
        pools::check_affinity(&others, req.ip_version, pool_id.as_deref())?;
        let (cidr, gateway_ip, allocation_pools) = match (&pool, req.cidr) {
            (Some((p, rev)), asked) => {
                let (id, project) = (&meta.id, &meta.project_id);
                let prefixlen = req.pool.prefixlen;
                let cidr =
                    pools::allocate(api, plan, (p, *rev), asked, prefixlen, project, id).await?;
                match asked {
                    Some(_) => (cidr, req.gateway_ip, req.allocation_pools.clone()),
                    None => {
                        let (g, a) = layout(req.ip_version, cidr, req.gateway, Vec::new())?;
                        (cidr, g, a)
                    }
                }
            }
            (None, Some(c)) => (c, req.gateway_ip, req.allocation_pools.clone()),
            (None, None) => {
                return Err(pools::bad_subnet_request(
                    "a subnetpool must be specified in the absence of a cidr",
                ));
            }
        };
        let subnet = Subnet {
            meta,
            network_id: network_id.clone(),
            ip_version: req.ip_version,
            cidr,
            gateway_ip,
            allocation_pools,
            enable_dhcp: req.enable_dhcp,
            dns_nameservers: req.dns_nameservers.clone(),
            host_routes: req.host_routes.clone(),
            ipv6_ra_mode: req.ipv6_ra_mode.clone(),
            ipv6_address_mode: req.ipv6_address_mode.clone(),
            subnetpool_id: pool_id,
            deleting: false,
        };
        if subnet.is_auto_address() && cidr.prefix_len() != 64 {
            return Err(ApiError::invalid(format!(
                "Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64"
            )));
        }
        for other in &others {
            if other.cidr.contains(&cidr.network()) || cidr.contains(&other.cidr.network()) {
                // Neutron's InvalidInput (400): clients retry on exactly this message.
                tracing::debug!(%cidr, other = %other.cidr, subnet = %other.meta.id, "subnet overlap");
                return Err(ApiError::bad_request(
                    "InvalidInput",
                    format!(
                        "Invalid input for operation: Requested subnet with cidr: {cidr} for network: {network_id} overlaps with another subnet."
                    ),
                ));
            }
        }
        // The network's subnet list changes too; its compare-and-swap orders concurrent
        // subnet creations on one network, so the overlap check above cannot be raced.
        network.subnets.push(subnet.meta.id.clone());
        // A child's change is its parent's too (Neutron's revision plugin).
        network.meta.touch();
        plan.txn.update(&network, net_rev);
        if subnet.enable_dhcp {
            dhcp::join(api, plan, &network, &subnet).await?;
        }
        Ok(subnet)
    }

    fn parse_update(_ctx: &Context, s: &Subnet, attrs: &mut Attrs) -> ApiResult<SubnetUpdate> {
        let gateway_ip = attrs.ip_or_null("gateway_ip")?;
        if let Some(g) = gateway_ip {
            check_gateway(g, &s.cidr)?;
        }
        let gateway = gateway_ip.unwrap_or(s.gateway_ip);
        let allocation_pools = match attrs.list("allocation_pools")? {
            Some(items) if items.is_empty() => Some(default_pools(&s.cidr, gateway)),
            Some(items) => Some(parse_pools(items, &s.cidr)?),
            None => None,
        };
        gateway_in_pools(
            gateway,
            allocation_pools.as_deref().unwrap_or(&s.allocation_pools),
        )?;
        let enable_dhcp = attrs.bool("enable_dhcp")?;
        if enable_dhcp == Some(false) && (s.ipv6_ra_mode.is_some() || s.ipv6_address_mode.is_some())
        {
            return Err(ApiError::invalid(
                "Cannot disable enable_dhcp with ipv6 attributes set",
            ));
        }
        let dns_nameservers = (attrs.list("dns_nameservers")?)
            .map(|items| parse_nameservers(items, &s.cidr))
            .transpose()?;
        let host_routes = (attrs.list("host_routes")?)
            .map(|items| parse_routes("host_routes", items, Some(&s.cidr)))
            .transpose()?;
        Ok(SubnetUpdate {
            gateway_ip,
            allocation_pools,
            enable_dhcp,
            dns_nameservers,
            host_routes,
        })
    }

    async fn plan_update(
        api: &Api,
        _ctx: &Context,
        s: &mut Subnet,
        req: SubnetUpdate,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        let had_dhcp = s.enable_dhcp;
        if let Some(new) = req.gateway_ip
            && new != s.gateway_ip
            && let Some(old) = s.gateway_ip
        {
            gateway_not_held(api, &s.meta.id, old).await?;
        }
        s.gateway_ip = req.gateway_ip.unwrap_or(s.gateway_ip);
        s.allocation_pools = req.allocation_pools.unwrap_or(s.allocation_pools.clone());
        s.enable_dhcp = req.enable_dhcp.unwrap_or(s.enable_dhcp);
        s.dns_nameservers = req.dns_nameservers.unwrap_or(s.dns_nameservers.clone());
        s.host_routes = req.host_routes.unwrap_or(s.host_routes.clone());
        // A child's change is its parent's too (Neutron's revision plugin); the write
        // also orders this update against others on the network.
        let (mut network, nrev) = api.db.fetch::<Network>(&s.network_id).await?;
        network.meta.touch();
        plan.txn.update(&network, nrev);
        match (had_dhcp, s.enable_dhcp) {
            (false, true) => {
                dhcp::join(api, plan, &network, s).await?;
            }
            (true, false) => dhcp::leave(api, &mut plan.txn, s).await?,
            _ => {}
        }
        Ok(())
    }

    fn deleting_mark(&mut self) -> Option<&mut bool> {
        Some(&mut self.deleting)
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        s: &Subnet,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        let id = &s.meta.id;
        let dhcp = dhcp::dhcp_port(api, &s.network_id).await?;
        let dhcp_id = dhcp
            .as_ref()
            .map(|(p, _)| serde_json::to_vec(&p.meta.id).unwrap_or_default());
        let claims = (api.db.store)
            .list(Table::Claim.name(), &format!("ip/{id}/"))
            .await?;
        let in_use = || {
            ApiError::conflict(
                "SubnetInUse",
                format!(
                    "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."
                ),
            )
        };
        // The DHCP port's address goes with the subnet; so do the addresses of a SLAAC or
        // DHCPv6-stateless subnet, which ports hold only because it exists (as in
        // Neutron), except a router interface's.
        let mut holders: Vec<String> = claims
            .iter()
            .filter(|c| Some(&c.value) != dhcp_id.as_ref())
            .map(|c| serde_json::from_slice(&c.value).unwrap_or_default())
            .collect();
        holders.sort();
        holders.dedup();
        if !holders.is_empty() && !s.is_auto_address() {
            return Err(in_use());
        }
        for port_id in holders {
            let Some((mut p, prev)) = api.db.get::<Port>(&port_id).await? else {
                return Err(ApiError::retry(&format!("port {port_id}")));
            };
            if owner::ROUTER_INTERFACE_OWNERS.contains(&p.device_owner.as_str()) {
                return Err(in_use());
            }
            let (gone, kept) = p.fixed_ips.into_iter().partition(|f| f.subnet_id == *id);
            p.fixed_ips = kept;
            let gone: Vec<model::FixedIp> = gone;
            ipam::release(api, &mut plan.txn, &gone);
            p.meta.touch();
            plan.txn.update(&p, prev);
        }
        dhcp::leave(api, &mut plan.txn, s).await?;
        pools::release(&mut plan.txn, s);
        if let Some((mut n, nrev)) = api.db.get::<Network>(&s.network_id).await? {
            n.subnets.retain(|x| x != id);
            n.meta.touch();
            plan.txn.update(&n, nrev);
        }
        Ok(())
    }

    fn summary(&self) -> String {
        format!("({} on network {})", self.cidr, self.network_id)
    }
}

/// The gateway (`gateway`: as asked, `None` for the first address) and allocation pools
/// (`requested`, or all host addresses but the gateway) of a subnet on `cidr`.
fn layout(
    version: u8,
    cidr: IpNet,
    gateway: Option<Option<IpAddr>>,
    requested: Vec<Value>,
) -> ApiResult<(Option<IpAddr>, Vec<AllocationPool>)> {
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
    let gateway_ip = match gateway {
        Some(g) => g,
        None => Some(u128_to_ip(ip_to_u128(cidr.network()) + 1, version == 6)),
    };
    check_gateway(gateway_ip, &cidr)?;
    let allocation_pools = if requested.is_empty() {
        default_pools(&cidr, gateway_ip)
    } else {
        parse_pools(requested, &cidr)?
    };
    gateway_in_pools(gateway_ip, &allocation_pools)?;
    Ok((gateway_ip, allocation_pools))
}

/// Default pool: every host address except network, broadcast (IPv4) and the gateway.
fn default_pools(cidr: &IpNet, gateway: Option<IpAddr>) -> Vec<AllocationPool> {
    let v6 = matches!(cidr, IpNet::V6(_));
    let first = ip_to_u128(cidr.network()) + 1;
    let last = ip_to_u128(cidr.broadcast()) - u128::from(!v6);
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
            start: u128_to_ip(a, v6),
            end: u128_to_ip(b, v6),
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

fn ipv6_mode(attrs: &mut Attrs, key: &str, version: u8) -> ApiResult<Option<String>> {
    let v = attrs.string_or_null(key)?.filter(|m| !m.is_empty());
    if let Some(m) = &v {
        if !IPV6_MODES.contains(&m.as_str()) {
            return Err(bad_attr(key, format!("'{m}' is not in {IPV6_MODES:?}")));
        }
        if version != 6 {
            return Err(ApiError::invalid(format!(
                "{key} is not valid when ip_version is {version}"
            )));
        }
    }
    Ok(v)
}

/// 409 when a router interface holds the subnet's gateway address `ip` (it cannot move
/// under the router).
async fn gateway_not_held(api: &Api, subnet_id: &str, ip: IpAddr) -> ApiResult<()> {
    let Some(owner) = api
        .db
        .claim_owner(&crate::alloc::ip_claim(subnet_id, ip))
        .await?
    else {
        return Ok(());
    };
    match api.db.get::<model::Port>(&owner).await? {
        Some((p, _)) if p.device_owner.starts_with("network:router_interface") => {
            Err(ApiError::conflict(
                "GatewayIpInUse",
                format!(
                    "Current gateway ip {ip} already in use by port {owner}. Unable to update."
                ),
            ))
        }
        _ => Ok(()),
    }
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
