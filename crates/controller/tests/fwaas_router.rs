//! FWaaS v2 on router interface ports, on the fake switch: enforced on the host that
//! routes (the sender's), the ingress policy on what enters the router by the interface,
//! the egress policy on what it sends out by it; replies pass; the security groups of
//! the ports still apply; a rule inserted first opens what a later one denied.
//!
//! Router r (key 7) joins net1 (10.0.1.0/24, interface MAC …:c9) and net2 (10.0.2.0/24,
//! …:ca); a (10.0.1.5) at OpenFlow port 1, b (10.0.2.5) at port 2, both in group "open".

mod support;

use controller::apps::fwaas::reject::Reject;
use model::fwaas::FwAction;
use model::{Direction, MacAddr, Network, Port, Router, RouterInterface, fixtures, owner};
use packet::IpProtocol;
use packet::tcp::Flags;
use std::net::Ipv4Addr;
use support::fwaas::{self, group, policy, rule};
use support::sim::{Sent, Sim};
use support::{mac, put_open_group, udp_frame};

const A: u32 = 1;
const B: u32 = 2;
const R1: u8 = 201;
const R2: u8 = 202;

fn network(id: &str, key: u32) -> Network {
    Network {
        segmentation_id: Some(100 + key),
        ..fixtures::network(id, key)
    }
}

fn vm(id: &str, net: &str, n: u8, ip: &str, groups: &[&str]) -> Port {
    Port {
        fixed_ips: vec![fixtures::fixed_ip("s", ip)],
        device_owner: "compute:nova".into(),
        security_groups: groups.iter().map(|g| g.to_string()).collect(),
        ..fixtures::port(id, net, n.into(), "h")
    }
}

fn router_port(id: &str, net: &str, n: u8, ip: &str) -> Port {
    Port {
        fixed_ips: vec![fixtures::fixed_ip("s", ip)],
        device_owner: owner::ROUTER_INTERFACE.into(),
        device_id: "r".into(),
        ..fixtures::port(id, net, n.into(), "")
    }
}

fn iface(port: &str, net: &str, n: u8, ip: &str, cidr: &str) -> RouterInterface {
    RouterInterface {
        port_id: port.into(),
        subnet_id: format!("s-{port}"),
        network_id: net.into(),
        ip_address: ip.parse().unwrap(),
        cidr: cidr.parse().unwrap(),
        mac_address: MacAddr(mac(n)),
    }
}

/// The router, a and b; group fwr on r1 (net1's interface) with the ingress policy
/// [deny tcp/22, reject tcp/23, allow any].
fn world() -> Sim {
    let mut sim = Sim::new("h", 0);
    sim.put(&network("net1", 1));
    sim.put(&network("net2", 2));
    put_open_group(&mut sim);
    sim.put(&Router {
        interfaces: vec![
            iface("r1", "net1", R1, "10.0.1.1", "10.0.1.0/24"),
            iface("r2", "net2", R2, "10.0.2.1", "10.0.2.0/24"),
        ],
        ..fixtures::router("r", 7)
    });
    sim.put(&router_port("r1", "net1", R1, "10.0.1.1"));
    sim.put(&router_port("r2", "net2", R2, "10.0.2.1"));
    for (p, ofport) in [
        (vm("a", "net1", 5, "10.0.1.5", &["open"]), A),
        (vm("b", "net2", 6, "10.0.2.5", &["open"]), B),
    ] {
        sim.put(&p);
        sim.plug(&p.meta.id, ofport);
    }
    sim.put(&rule("deny22", Some("tcp"), Some(22), FwAction::Deny));
    sim.put(&rule("rej23", Some("tcp"), Some(23), FwAction::Reject));
    sim.put(&rule("any", None, None, FwAction::Allow));
    sim.put(&policy("in", &["deny22", "rej23", "any"]));
    sim.put(&group("fwr", Some("in"), None, &["r1"]));
    sim
}

fn a_ip() -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 1, 5)
}

fn b_ip() -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 2, 5)
}

/// A segment from a to b by the router (to r1's MAC).
fn a_to_b(sim: &mut Sim, sport: u16, dport: u16, flags: u8) -> Sent {
    let f = fwaas::tcp_frame((mac(5), a_ip(), sport), (mac(R1), b_ip(), dport), flags);
    sim.send(A, &f)
}

/// b's answer by the router (to r2's MAC).
fn b_to_a(sim: &mut Sim, sport: u16, dport: u16, flags: u8) -> Sent {
    let f = fwaas::tcp_frame((mac(6), b_ip(), sport), (mac(R2), a_ip(), dport), flags);
    sim.send(B, &f)
}

fn reached(s: &Sent) -> Vec<u32> {
    s.outcome.ports()
}

#[test]
fn an_interfaces_ingress_policy_filters_what_enters_the_router() {
    let mut sim = world();
    assert!(reached(&a_to_b(&mut sim, 40000, 22, Flags::SYN)).is_empty());
    let s = a_to_b(&mut sim, 40001, 23, Flags::SYN);
    assert!(reached(&s).is_empty());
    assert_eq!(
        fwaas::answers(&s.answers),
        [(A, IpProtocol::Tcp, b_ip(), Some(Flags::RST | Flags::ACK))],
        "refused as if by b, back out of a's port"
    );
    assert_eq!(reached(&a_to_b(&mut sim, 40002, 80, Flags::SYN)), [B]);
    // The reply goes back through r1's egress side: no egress policy there, and it is
    // the reply of what its ingress policy allowed.
    assert_eq!(
        reached(&b_to_a(&mut sim, 80, 40002, Flags::SYN | Flags::ACK)),
        [A]
    );
    // b starting something towards a enters by r2, which has no group, and leaves by
    // r1, which has no egress policy; a's reply, entering by r1, is a reply there.
    assert_eq!(reached(&b_to_a(&mut sim, 40003, 22, Flags::SYN)), [A]);
    assert_eq!(
        reached(&a_to_b(&mut sim, 22, 40003, Flags::SYN | Flags::ACK)),
        [B]
    );
    assert_eq!(sim.handler::<Reject>().answered, 1);
    // Only the implicit deny into the router by r1: a starts nothing, but b still does,
    // and gets a's answers.
    sim.put(&policy("in", &[]));
    assert!(reached(&a_to_b(&mut sim, 40004, 80, Flags::SYN)).is_empty());
    assert_eq!(reached(&b_to_a(&mut sim, 40005, 80, Flags::SYN)), [A]);
    assert_eq!(
        reached(&a_to_b(&mut sim, 80, 40005, Flags::SYN | Flags::ACK)),
        [B]
    );
    // What is addressed to the router itself is not forwarded, and not filtered: a
    // datagram to its address on net1 gets L3's port unreachable.
    let gw = Ipv4Addr::new(10, 0, 1, 1);
    let s = sim.send(A, &udp_frame(mac(5), mac(R1), (a_ip(), 40006), (gw, 7)));
    assert_eq!(
        fwaas::answers(&s.answers),
        [(A, IpProtocol::Icmp, gw, None)],
        "{:?}",
        s.outcome
    );
}

#[test]
fn an_interfaces_egress_policy_filters_what_the_router_sends_out_by_it() {
    let mut sim = world();
    sim.put(&rule("rej25", Some("tcp"), Some(25), FwAction::Reject));
    sim.put(&policy("out", &["rej25", "any"]));
    sim.put(&group("fwr2", None, Some("out"), &["r2"]));
    let s = a_to_b(&mut sim, 40000, 25, Flags::SYN);
    assert!(reached(&s).is_empty());
    assert_eq!(
        fwaas::answers(&s.answers),
        [(A, IpProtocol::Tcp, b_ip(), Some(Flags::RST | Flags::ACK))],
        "routed back to a"
    );
    assert_eq!(reached(&a_to_b(&mut sim, 40001, 80, Flags::SYN)), [B]);
    // Both interfaces' policies apply: r1's ingress still denies 22.
    assert!(reached(&a_to_b(&mut sim, 40002, 22, Flags::SYN)).is_empty());
}

#[test]
fn security_groups_still_apply_and_an_inserted_rule_opens() {
    let mut sim = world();
    sim.put(&fixtures::security_group("closed"));
    sim.put(&fixtures::security_group_rule(
        "closed-out",
        "closed",
        Direction::Egress,
    ));
    sim.put(&vm("b", "net2", 6, "10.0.2.5", &["closed"]));
    assert!(
        reached(&a_to_b(&mut sim, 40000, 80, Flags::SYN)).is_empty(),
        "b's group lets nothing in"
    );
    sim.put(&vm("b", "net2", 6, "10.0.2.5", &["open"]));
    sim.put(&rule("allow22", Some("tcp"), Some(22), FwAction::Allow));
    let commits = sim.commits;
    sim.put(&policy("in", &["allow22", "deny22", "rej23", "any"]));
    assert_eq!(sim.commits, commits + 1);
    assert_eq!(reached(&a_to_b(&mut sim, 40001, 22, Flags::SYN)), [B]);
    // The group off the interface: nothing filtered there any more.
    sim.put(&group("fwr", Some("in"), None, &[]));
    assert_eq!(reached(&a_to_b(&mut sim, 40002, 23, Flags::SYN)), [B]);
    assert!(
        sim.core
            .host()
            .zones
            .keys()
            .all(|k| !k.starts_with("router/")),
        "the router's firewall zone given back"
    );
}
