//! Builders of NB objects for tests and benches (feature `fixtures`; always in this crate's
//! own tests): plain values with the defaults most tests want, which a test adjusts with
//! struct-update syntax (`Port { port_security_enabled: false, ..fixtures::port("a", "n",
//! 5, "h") }`).
//! Addresses are given as text and panic when they do not parse.

use crate::{
    Chassis, Direction, EtherType, FixedIp, MacAddr, Meta, Network, NetworkType, Port, PortStatus,
    Router, SecurityGroup, SecurityGroupRule, Subnet,
};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn addr(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("not an address: {s:?}: {e}"))
}

/// Object `id` of project `p`, with no name, tags or timestamps.
pub fn meta(id: &str) -> Meta {
    Meta {
        id: id.into(),
        project_id: "p".into(),
        ..Meta::default()
    }
}

/// A Geneve network whose segmentation id is its unique key: admin up, port security on,
/// MTU 1400, not shared or external, no subnets.
pub fn network(id: &str, unique_key: u32) -> Network {
    Network {
        meta: meta(id),
        admin_state_up: true,
        mtu: 1400,
        shared: false,
        external: false,
        port_security_enabled: true,
        network_type: NetworkType::Geneve,
        physical_network: None,
        segmentation_id: Some(unique_key),
        subnets: vec![],
        unique_key,
        deleting: false,
        availability_zone_hints: vec![],
        is_default: false,
        dns_domain: Default::default(),
        qos_policy_id: None,
    }
}

/// `fa:16:3e` (Neutron's base MAC) followed by the low 24 bits of `n`.
pub fn mac(n: u32) -> MacAddr {
    MacAddr([0xfa, 0x16, 0x3e, (n >> 16) as u8, (n >> 8) as u8, n as u8])
}

/// Port `id` on `network_id` bound to `host` (empty: unbound), with unique key `n` and MAC
/// [`mac`]`(n)`: admin up, port security on, no addresses, groups or owner, a normal vNIC,
/// status DOWN.
pub fn port(id: &str, network_id: &str, n: u32, host: &str) -> Port {
    Port {
        meta: meta(id),
        network_id: network_id.into(),
        admin_state_up: true,
        mac_address: mac(n),
        fixed_ips: vec![],
        security_groups: vec![],
        allowed_address_pairs: vec![],
        port_security_enabled: true,
        device_owner: String::new(),
        device_id: String::new(),
        binding_host_id: host.into(),
        binding_profile: Default::default(),
        binding_vnic_type: "normal".into(),
        binding_failed: false,
        extra_dhcp_opts: vec![],
        status: PortStatus::Down,
        unique_key: n,
        dns_domain: Default::default(),
        instance_metadata: None,
        dns_name: Default::default(),
        qos_policy_id: None,
    }
}

/// Address `ip` on subnet `subnet_id`.
pub fn fixed_ip(subnet_id: &str, ip: &str) -> FixedIp {
    FixedIp {
        subnet_id: subnet_id.into(),
        ip_address: addr(ip),
    }
}

/// Subnet `id` of `network_id` on `cidr`, as Neutron makes one by default: the gateway is
/// the first address, DHCP on; no pools, DNS servers, routes or IPv6 modes.
pub fn subnet(id: &str, network_id: &str, cidr: &str) -> Subnet {
    let cidr: IpNet = cidr
        .parse()
        .unwrap_or_else(|e| panic!("not a CIDR: {cidr:?}: {e}"));
    let first = match cidr.network() {
        IpAddr::V4(a) => Ipv4Addr::from(u32::from(a) + 1).into(),
        IpAddr::V6(a) => Ipv6Addr::from(u128::from(a) + 1).into(),
    };
    Subnet {
        meta: meta(id),
        network_id: network_id.into(),
        ip_version: if cidr.addr().is_ipv4() { 4 } else { 6 },
        cidr,
        gateway_ip: Some(first),
        allocation_pools: vec![],
        enable_dhcp: true,
        dns_nameservers: vec![],
        host_routes: vec![],
        ipv6_ra_mode: None,
        ipv6_address_mode: None,
        subnetpool_id: None,
        deleting: false,
    }
}

/// Router `id`: admin up, no gateway, routes or interfaces.
pub fn router(id: &str, unique_key: u32) -> Router {
    Router {
        meta: meta(id),
        admin_state_up: true,
        external_gateway: None,
        routes: vec![],
        interfaces: vec![],
        unique_key,
        availability_zone_hints: vec![],
    }
}

/// Security group `id`: stateful, not the project's default.
pub fn security_group(id: &str) -> SecurityGroup {
    SecurityGroup {
        meta: meta(id),
        stateful: true,
        is_default: false,
        deleting: false,
    }
}

/// Rule `id` of group `security_group_id`: IPv4, any protocol and port, from or to
/// anywhere.
pub fn security_group_rule(
    id: &str,
    security_group_id: &str,
    direction: Direction,
) -> SecurityGroupRule {
    SecurityGroupRule {
        meta: meta(id),
        security_group_id: security_group_id.into(),
        direction,
        ethertype: EtherType::IPv4,
        protocol: None,
        protocol_number: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: None,
        remote_address_group_id: None,
    }
}

/// Chassis `id` with tunnel endpoint `ip`, Geneve only.
pub fn chassis(id: &str, ip: &str) -> Chassis {
    Chassis {
        id: id.into(),
        ip: addr(ip),
        tunnel_types: vec![NetworkType::Geneve],
    }
}
