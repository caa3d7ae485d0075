//! FWaaS fixtures for the tests: rules, policies and groups as the API stores them, TCP
//! segments, and what the controller answered.

use fake_switch::Outcome;
use model::fwaas::{FwAction, PortRange};
use model::{FirewallGroup, FirewallPolicy, FirewallRule, fixtures};
use packet::ethernet::{EtherType, EthernetRepr, Frame};
use packet::ipv4::{Ipv4Repr, Packet as Ipv4Packet};
use packet::tcp::{Flags, Packet as TcpPacket, TcpRepr};
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv4Addr};

/// A rule of project p: `proto` (any: `None`) to destination port `port`.
pub fn rule(id: &str, proto: Option<&str>, port: Option<u16>, action: FwAction) -> FirewallRule {
    FirewallRule {
        meta: fixtures::meta(id),
        shared: false,
        protocol: proto.map(str::to_string),
        ip_version: 4,
        source_ip_address: None,
        destination_ip_address: None,
        source_port: None,
        destination_port: port.map(|p| PortRange { min: p, max: p }),
        action,
        enabled: true,
        deleting: false,
    }
}

/// A policy of project p with these rules in this order.
pub fn policy(id: &str, rules: &[&str]) -> FirewallPolicy {
    FirewallPolicy {
        meta: fixtures::meta(id),
        shared: false,
        audited: false,
        firewall_rules: rules.iter().map(|r| r.to_string()).collect(),
        deleting: false,
    }
}

/// A group of project p, up.
pub fn group(
    id: &str,
    ingress: Option<&str>,
    egress: Option<&str>,
    ports: &[&str],
) -> FirewallGroup {
    FirewallGroup {
        meta: fixtures::meta(id),
        shared: false,
        admin_state_up: true,
        ingress_firewall_policy_id: ingress.map(str::to_string),
        egress_firewall_policy_id: egress.map(str::to_string),
        ports: ports.iter().map(|p| p.to_string()).collect(),
        is_default: false,
    }
}

/// A TCP segment with `flags` from (MAC `from`, `src`:`sport`) to (MAC `to`, `dst`:`dport`).
pub fn tcp_frame(
    (from, src, sport): ([u8; 6], Ipv4Addr, u16),
    (to, dst, dport): ([u8; 6], Ipv4Addr, u16),
    flags: u8,
) -> Vec<u8> {
    let seg = TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq_number: 1000,
        ack_number: if flags & Flags::ACK != 0 { 1 } else { 0 },
        flags: Flags(flags),
        window_len: 1000,
        urgent_at: 0,
        payload: &[],
    }
    .build(&IpAddr::V4(src), &IpAddr::V4(dst));
    let ip = Ipv4Repr::new(src, dst, IpProtocol::Tcp, seg.len()).build(&seg);
    EthernetRepr {
        src_addr: EthernetAddress(from),
        dst_addr: EthernetAddress(to),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&ip)
}

/// The controller's answers, by port: (port, IP protocol, source, TCP flags if TCP).
pub fn answers(outcomes: &[Outcome]) -> Vec<(u32, IpProtocol, Ipv4Addr, Option<u8>)> {
    outcomes
        .iter()
        .flat_map(|a| a.outputs.iter())
        .map(|o| {
            let eth = Frame::new_checked(o.frame.as_slice()).expect("ethernet");
            let ip = Ipv4Packet::new_checked(eth.payload()).expect("ipv4");
            let flags = (ip.protocol() == IpProtocol::Tcp)
                .then(|| TcpPacket::new_checked(ip.payload()).expect("tcp").flags().0);
            (o.port, ip.protocol(), ip.src_addr(), flags)
        })
        .collect()
}
