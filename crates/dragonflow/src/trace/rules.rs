//! Which security group rules admit a traced packet: the rules of a port's groups
//! evaluated on the probe as Neutron defines them, so that a trace names the rule that let
//! it through (the switch's rule flows are owned by the port they were compiled for).

use super::frame::{Probe, Proto};
use controller::view::View;
use model::{Direction, EtherType, SecurityGroupRule};
use std::net::IpAddr;

/// ICMP echo request's type, IPv4 and IPv6 (what an `icmp` probe sends).
const ECHO_V4: u16 = 8;
const ECHO_V6: u16 = 128;

/// The rules of `port`'s groups in `direction` that admit the probe (for ingress, from
/// its source; for egress, to its destination).
pub fn admitting<'a>(
    view: &'a View,
    port: &str,
    direction: Direction,
    p: &Probe,
) -> Vec<&'a SecurityGroupRule> {
    let Some(port) = view.ports.get(port) else {
        return Vec::new();
    };
    let peer = match direction {
        Direction::Ingress => p.src,
        Direction::Egress => p.dst,
    };
    port.security_groups
        .iter()
        .flat_map(|g| view.rules_of(g))
        .filter(|r| r.direction == direction && admits(view, r, p, peer))
        .collect()
}

fn admits(view: &View, r: &SecurityGroupRule, p: &Probe, peer: IpAddr) -> bool {
    let family = match r.ethertype {
        EtherType::IPv4 => peer.is_ipv4(),
        EtherType::IPv6 => peer.is_ipv6(),
    };
    let proto = match p.proto {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Icmp if peer.is_ipv4() => 1,
        Proto::Icmp => 58,
    };
    let protocol = r.protocol_number.is_none_or(|n| n == proto);
    let ports = match p.proto {
        Proto::Tcp | Proto::Udp => {
            r.port_range_min.is_none_or(|lo| p.dport >= lo)
                && r.port_range_max.is_none_or(|hi| p.dport <= hi)
        }
        // For ICMP the range is the type and the code; the probe is an echo request.
        Proto::Icmp => {
            let echo = if peer.is_ipv4() { ECHO_V4 } else { ECHO_V6 };
            r.port_range_min.is_none_or(|t| t == echo) && r.port_range_max.is_none_or(|c| c == 0)
        }
    };
    let remote = match (
        &r.remote_ip_prefix,
        &r.remote_group_id,
        &r.remote_address_group_id,
    ) {
        (Some(net), _, _) => net.trunc().contains(&peer),
        (None, Some(g), _) => view
            .ports_in_group(g)
            .any(|q| q.fixed_ips.iter().any(|f| f.ip_address == peer)),
        (None, None, Some(ag)) => view
            .address_groups
            .get(ag)
            .is_some_and(|a| a.addresses.iter().any(|n| n.trunc().contains(&peer))),
        (None, None, None) => true,
    };
    family && protocol && ports && remote
}

/// A rule as a reader knows it: `web: ingress tcp 22-22 from 0.0.0.0/0 (id)`.
pub fn describe(view: &View, r: &SecurityGroupRule) -> String {
    let group = view
        .security_groups
        .get(&r.security_group_id)
        .map_or(r.security_group_id.as_str(), |g| g.meta.name.as_str());
    let dir = match r.direction {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    };
    let proto = r.protocol.as_deref().unwrap_or("any");
    let ports = match (r.port_range_min, r.port_range_max) {
        (Some(lo), Some(hi)) => format!(" {lo}-{hi}"),
        (Some(lo), None) => format!(" {lo}"),
        _ => String::new(),
    };
    let peer = match (
        &r.remote_ip_prefix,
        &r.remote_group_id,
        &r.remote_address_group_id,
    ) {
        (Some(n), _, _) => n.to_string(),
        (None, Some(g), _) => format!(
            "group {}",
            view.security_groups
                .get(g)
                .map_or(g.as_str(), |g| g.meta.name.as_str())
        ),
        (None, None, Some(a)) => format!("address group {a}"),
        (None, None, None) => "anywhere".into(),
    };
    let word = match r.direction {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    format!(
        "security group {group}, rule {}: {dir} {proto}{ports} {word} {peer}",
        r.meta.id
    )
}
