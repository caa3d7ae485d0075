//! What the metadata service says about one port, in the formats cloud-init and cirros
//! read: OpenStack's `meta_data.json` and `network_data.json` (as Nova writes them) and
//! the EC2 tree. Pure functions of the port and the view.

use crate::view::View;
use model::{Port, Subnet};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the instance is, with no Nova: the port's `device_id` (the port's id when it has
/// none), named by its `dns_name`, else its name, else `host-<address>`.
pub struct Instance<'a> {
    pub port: &'a Port,
    pub uuid: &'a str,
    pub name: String,
    /// The host label (no domain).
    pub label: String,
    /// `label.domain`, as Nova's hostname with a `dhcp_domain`.
    pub hostname: String,
    pub availability_zone: &'a str,
}

impl<'a> Instance<'a> {
    pub fn of(port: &'a Port, domain: &str, availability_zone: &'a str) -> Instance<'a> {
        let uuid = if port.device_id.is_empty() {
            port.meta.id.as_str()
        } else {
            port.device_id.as_str()
        };
        let dns_label = port.dns_name.split('.').next().unwrap_or("");
        let label = if !dns_label.is_empty() {
            dns_label.to_string()
        } else if let Some(l) = sanitize(&port.meta.name) {
            l
        } else {
            let ip = first_v4(port)
                .map(IpAddr::V4)
                .or_else(|| port.fixed_ips.first().map(|f| f.ip_address));
            ip.map(model::dns::default_hostname)
                .unwrap_or_else(|| format!("host-{}", &port.meta.id[..port.meta.id.len().min(8)]))
        };
        let name = if !port.meta.name.is_empty() {
            port.meta.name.clone()
        } else {
            label.clone()
        };
        let domain = domain.trim_end_matches('.');
        let hostname = if domain.is_empty() {
            label.clone()
        } else {
            format!("{label}.{domain}")
        };
        Instance {
            port,
            uuid,
            name,
            label,
            hostname,
            availability_zone,
        }
    }
}

/// A port name as a host label, as Nova makes a hostname from a display name: lower case,
/// letters, digits and hyphens, at most 63.
fn sanitize(name: &str) -> Option<String> {
    let s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s = s.trim_matches('-');
    let s = &s[..s.len().min(63)];
    let s = s.trim_end_matches('-');
    (!s.is_empty()).then(|| s.to_string())
}

/// The port's first IPv4 address.
pub fn first_v4(p: &Port) -> Option<Ipv4Addr> {
    p.fixed_ips.iter().find_map(|f| match f.ip_address {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    })
}

/// `meta_data.json`.
pub fn meta_data(i: &Instance<'_>) -> Value {
    let m = i.port.instance_metadata.clone().unwrap_or_default();
    let keys: Vec<Value> = m
        .public_keys
        .iter()
        .map(|(name, data)| json!({"name": name, "type": "ssh", "data": data}))
        .collect();
    json!({
        "uuid": i.uuid,
        "name": i.name,
        "hostname": i.hostname,
        "launch_index": 0,
        "availability_zone": i.availability_zone,
        "project_id": i.port.meta.project_id,
        "public_keys": m.public_keys,
        "keys": keys,
        "meta": m.meta,
        "devices": [],
    })
}

/// The link's name, as Nova's: `tap` and the start of the port id.
fn link_id(p: &Port) -> String {
    format!("tap{}", &p.meta.id[..p.meta.id.len().min(11)])
}

fn netmask(prefix: u8, v6: bool) -> String {
    if v6 {
        let bits = if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(prefix))
        };
        Ipv6Addr::from(bits).to_string()
    } else {
        let bits = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        };
        Ipv4Addr::from(bits).to_string()
    }
}

/// Nova's network type of an address in `s`.
fn net_type(s: &Subnet) -> String {
    if s.ip_version == 4 {
        return if s.enable_dhcp { "ipv4_dhcp" } else { "ipv4" }.into();
    }
    match s.ipv6_address_mode.as_deref() {
        Some("slaac") => "ipv6_slaac".into(),
        Some(m @ ("dhcpv6-stateful" | "dhcpv6-stateless")) if s.enable_dhcp => format!("ipv6_{m}"),
        _ => "ipv6".into(),
    }
}

/// The DNS servers of a subnet as DHCP hands them out: its own, else the network's DHCP
/// port's address (internal DNS answers there).
fn dns_of(view: &View, p: &Port, s: &Subnet) -> Vec<IpAddr> {
    if !s.dns_nameservers.is_empty() {
        return s.dns_nameservers.clone();
    }
    view.ports_of(&p.network_id)
        .filter(|d| d.device_owner == model::owner::DHCP)
        .flat_map(|d| d.fixed_ips.iter())
        .filter(|f| f.subnet_id == s.meta.id)
        .map(|f| f.ip_address)
        .take(1)
        .collect()
}

/// `network_data.json`: one link (the port), one network per fixed IP, the DNS services.
pub fn network_data(view: &View, p: &Port) -> Value {
    let link = link_id(p);
    let mtu = view.networks.get(&p.network_id).map(|n| n.mtu);
    let mut services: Vec<Value> = Vec::new();
    let mut networks = Vec::new();
    for (n, f) in p.fixed_ips.iter().enumerate() {
        let Some(s) = view.subnets.get(&f.subnet_id) else {
            continue;
        };
        let v6 = s.ip_version == 6;
        let default = if v6 { "::" } else { "0.0.0.0" };
        let mut routes: Vec<Value> = Vec::new();
        if let Some(gw) = s.gateway_ip {
            routes.push(json!({"network": default, "netmask": default, "gateway": gw.to_string()}));
        }
        for h in &s.host_routes {
            if h.destination.addr().is_ipv6() == v6 {
                routes.push(json!({
                    "network": h.destination.network().to_string(),
                    "netmask": netmask(h.destination.prefix_len(), v6),
                    "gateway": h.nexthop.to_string(),
                }));
            }
        }
        let dns: Vec<Value> = dns_of(view, p, s)
            .into_iter()
            .map(|a| json!({"type": "dns", "address": a.to_string()}))
            .collect();
        for d in &dns {
            if !services.contains(d) {
                services.push(d.clone());
            }
        }
        networks.push(json!({
            "id": format!("network{n}"),
            "type": net_type(s),
            "link": link,
            "ip_address": f.ip_address.to_string(),
            "netmask": netmask(s.cidr.prefix_len(), v6),
            "routes": routes,
            "network_id": p.network_id,
            "services": dns,
        }));
    }
    json!({
        "links": [{
            "id": link,
            "vif_id": p.meta.id,
            "type": "ovs",
            "mtu": mtu,
            "ethernet_mac_address": p.mac_address.to_string(),
        }],
        "networks": networks,
        "services": services,
    })
}

/// The EC2 instance id: `i-` and the port key in 8 hex digits, as Nova's `i-%08x`.
pub fn ec2_instance_id(p: &Port) -> String {
    format!("i-{:08x}", p.unique_key)
}

/// The names of the port's security groups the view holds.
pub fn security_groups(view: &View, p: &Port) -> Vec<String> {
    p.security_groups
        .iter()
        .filter_map(|id| view.security_groups.get(id))
        .map(|g| g.meta.name.clone())
        .collect()
}
