//! The firewall groups' part of a trace: which group dropped a packet, with which policy,
//! and which of its rules decided (or the implicit deny), by the same compiler the
//! controller uses (`apps::fwaas::matches`).

use super::frame::{Probe, Proto};
use controller::apps::fwaas::{matches, policy_of};
use controller::pipeline::table as t;
use controller::view::View;
use model::Direction;
use openflow::oxm::{Field, Match};
use std::net::IpAddr;

/// The packet's header fields as a match, for `matches::decide`.
fn fields(p: &Probe) -> Match {
    let m = match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Match::new()
            .eth_type(0x0800)
            .ipv4_src_prefix(s, 32)
            .ipv4_dst_prefix(d, 32),
        (s, d) => {
            let (IpAddr::V6(s), IpAddr::V6(d)) = (s, d) else {
                return Match::new();
            };
            Match::new()
                .eth_type(0x86dd)
                .ipv6_src_prefix(s, 128)
                .ipv6_dst_prefix(d, 128)
        }
    };
    let v6 = p.dst.is_ipv6();
    match p.proto {
        Proto::Tcp => m
            .ip_proto(6)
            .masked(Field::TcpSrc, p.sport, 0xffffu16)
            .masked(Field::TcpDst, p.dport, 0xffffu16),
        Proto::Udp => m
            .ip_proto(17)
            .masked(Field::UdpSrc, p.sport, 0xffffu16)
            .masked(Field::UdpDst, p.dport, 0xffffu16),
        Proto::Icmp => m.ip_proto(if v6 { 58 } else { 1 }),
    }
}

/// The interface port of a router on `network` that is in a firewall group.
fn interface_on(view: &View, network: &str) -> Option<String> {
    view.routers
        .values()
        .flat_map(|r| r.interfaces.iter())
        .filter(|i| i.network_id == network)
        .find(|i| view.fw_group_of(&i.port_id).is_some())
        .map(|i| i.port_id.clone())
}

/// Why the packet was dropped in firewall rules table `table` on `host`, if it was one.
pub fn dropped(
    view: &View,
    probe: Option<&Probe>,
    receiver: Option<String>,
    (host, table): (&str, u8),
    what: &str,
) -> Option<String> {
    let (port, dir, place) = match table {
        t::EGRESS_FW_RULES => (
            probe.map(|p| p.from.meta.id.clone()),
            Direction::Egress,
            "port",
        ),
        t::INGRESS_FW_RULES => (receiver.clone(), Direction::Ingress, "port"),
        t::ROUTER_FW_IN_RULES => (
            probe.and_then(|p| interface_on(view, &p.from.network_id)),
            Direction::Ingress,
            "router interface",
        ),
        t::ROUTER_FW_OUT_RULES => (
            receiver
                .and_then(|r| view.ports.get(&r))
                .and_then(|r| interface_on(view, &r.network_id)),
            Direction::Egress,
            "router interface",
        ),
        _ => return None,
    };
    let port = port?;
    let g = view.fw_group_of(&port)?;
    let name = |n: &str, id: &str| {
        if n.is_empty() {
            id.to_string()
        } else {
            n.to_string()
        }
    };
    let dir_s = match dir {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    };
    let why = match (policy_of(g, dir), probe) {
        (Some(pid), Some(p)) if g.admin_state_up => {
            let entries = matches::compile(&view.fw_rules_of(pid));
            let policy = view
                .fw_policies
                .get(pid)
                .map_or(pid.to_string(), |x| name(&x.meta.name, pid));
            match matches::decide(&entries, &fields(p)) {
                Some((rule, a)) => {
                    let r = view
                        .fw_rules
                        .get(rule)
                        .map_or(rule.to_string(), |x| name(&x.meta.name, rule));
                    format!("rule {r} of {dir_s} policy {policy} says {}", a.as_str())
                }
                None => format!("no rule of {dir_s} policy {policy} matches: the implicit deny"),
            }
        }
        (_, _) if !g.admin_state_up => "the group is administratively down".to_string(),
        _ => format!("its {dir_s} policy"),
    };
    Some(format!(
        "{what}: dropped on {host} by firewall group {} of {place} {port} ({why})",
        name(&g.meta.name, &g.meta.id)
    ))
}
