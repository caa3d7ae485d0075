//! Security group extensions on the fake switch (its conntrack model): rules whose remote
//! end is an address group (one match per prefix, recompiled when the group changes, the
//! flushes a prefix leaving asks for), and stateless groups (no conntrack: replies need
//! rules of their own; switching the group back restores stateful filtering).

mod support;

use model::{AddressGroup, Direction, Port, SecurityGroup, SecurityGroupRule, Table, fixtures};
use openflow::ct_flush::CtFlush;
use std::net::{IpAddr, Ipv4Addr};
use support::mac;
use support::sim::Sim;

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

fn port(id: &str, n: u8, groups: &[&str]) -> Port {
    Port {
        fixed_ips: vec![fixtures::fixed_ip("s", &ip(n).to_string())],
        security_groups: groups.iter().map(|g| g.to_string()).collect(),
        ..fixtures::port(id, "n", n.into(), "")
    }
}

fn udp_rule(id: &str, g: &str, direction: Direction, dport: u16) -> SecurityGroupRule {
    SecurityGroupRule {
        protocol: Some("udp".into()),
        protocol_number: Some(17),
        port_range_min: Some(dport),
        port_range_max: Some(dport),
        ..fixtures::security_group_rule(id, g, direction)
    }
}

fn address_group(id: &str, prefixes: &[&str]) -> AddressGroup {
    AddressGroup {
        meta: fixtures::meta(id),
        addresses: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
        deleting: false,
    }
}

/// Ports a (5, "web"), b (6, "clients"), c (7, "clients") plugged at OpenFlow ports 1-3;
/// "clients" lets everything out, "web" everything out and `web_in` in.
fn world(web: SecurityGroup, web_in: &[SecurityGroupRule]) -> Sim {
    let mut sim = Sim::new("h", 0);
    sim.put(&fixtures::network("n", 9));
    sim.put(&web);
    sim.put(&fixtures::security_group("clients"));
    for g in ["web", "clients"] {
        sim.put(&fixtures::security_group_rule(
            &format!("{g}-out"),
            g,
            Direction::Egress,
        ));
    }
    for r in web_in {
        sim.put(r);
    }
    for (p, ofport) in [
        (port("a", 5, &["web"]), 1),
        (port("b", 6, &["clients"]), 2),
        (port("c", 7, &["clients"]), 3),
    ] {
        sim.put(&p);
        sim.plug(&p.meta.id, ofport);
    }
    sim
}

/// Sends a UDP datagram from port n `from` (in by `in_port`) to n `to`; returns the
/// OpenFlow ports it left by.
fn udp(sim: &mut Sim, in_port: u32, from: u8, to: u8, sport: u16, dport: u16) -> Vec<u32> {
    let frame = support::udp_frame(mac(from), mac(to), (ip(from), sport), (ip(to), dport));
    sim.send(in_port, &frame).outcome.ports()
}

/// Writes `obj`; returns the flushes it asks for.
fn put<T: model::NbObject>(sim: &mut Sim, obj: &T) -> Vec<CtFlush> {
    sim.flushes.clear();
    sim.put(obj);
    std::mem::take(&mut sim.flushes)
        .into_iter()
        .filter_map(|m| match m {
            openflow::Message::CtFlush(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn from_group(ag: &str) -> SecurityGroupRule {
    SecurityGroupRule {
        remote_address_group_id: Some(ag.into()),
        ..udp_rule("web-in", "web", Direction::Ingress, 7000)
    }
}

#[test]
fn an_address_group_admits_its_prefixes_and_follows_their_changes() {
    let mut sim = world(fixtures::security_group("web"), &[from_group("ag")]);
    // The group is not known yet: the rule matches nothing.
    assert!(udp(&mut sim, 2, 6, 5, 40000, 7000).is_empty());
    sim.put(&address_group("ag", &["10.0.0.6/32", "2001:db8::/64"]));
    assert_eq!(
        udp(&mut sim, 2, 6, 5, 40001, 7000),
        [1],
        "b is in the group"
    );
    assert!(udp(&mut sim, 3, 7, 5, 40001, 7000).is_empty(), "c is not");
    assert!(
        udp(&mut sim, 2, 6, 5, 40002, 7001).is_empty(),
        "the rule's port only"
    );
    // c's address joins the group: c gets in without any change of the rule.
    put(
        &mut sim,
        &address_group("ag", &["10.0.0.6/32", "10.0.0.7/32"]),
    );
    assert_eq!(udp(&mut sim, 3, 7, 5, 40003, 7000), [1]);
    // b's leaves: what it was allowed is flushed, and it is refused from then on.
    let flushes = put(
        &mut sim,
        &address_group("ag", &["10.0.0.0/30", "10.0.0.7/32"]),
    );
    assert!(
        flushes
            .iter()
            .any(|f| f.orig.src == Some(IpAddr::V4(ip(6))) && f.orig.dst_port == Some(7000)),
        "{flushes:?}"
    );
    sim.switch.conntrack_mut().clear();
    assert!(udp(&mut sim, 2, 6, 5, 40004, 7000).is_empty());
    assert_eq!(udp(&mut sim, 3, 7, 5, 40005, 7000), [1]);
    // The rule gone: nothing from the group gets in.
    sim.delete(Table::SecurityGroupRule, "web-in");
    sim.switch.conntrack_mut().clear();
    assert!(udp(&mut sim, 3, 7, 5, 40006, 7000).is_empty());
}

#[test]
fn a_stateless_group_needs_rules_for_replies() {
    let stateless = SecurityGroup {
        stateful: false,
        ..fixtures::security_group("web")
    };
    let web_in = udp_rule("web-in", "web", Direction::Ingress, 5353);
    let mut sim = world(stateless.clone(), std::slice::from_ref(&web_in));
    assert_eq!(udp(&mut sim, 2, 6, 5, 42000, 5353), [1], "b to a: a rule");
    assert!(udp(&mut sim, 2, 6, 5, 42000, 5354).is_empty(), "no rule");
    // a answers b through its own egress rule (to anywhere); b's side is stateful.
    assert_eq!(udp(&mut sim, 1, 5, 6, 5353, 42000), [2]);
    // Without an egress rule, a's reply is refused: nothing remembers b's datagram.
    sim.delete(Table::SecurityGroupRule, "web-out");
    assert!(udp(&mut sim, 1, 5, 6, 5353, 42000).is_empty());
    // a's traffic never entered conntrack: the only entries are b's (stateful) side.
    let conns = sim.switch.conntrack().connections().to_vec();
    assert!(
        conns.iter().all(|k| k.orig.src == IpAddr::V4(ip(6))),
        "{conns:?}"
    );
    // Stateful again (the API allows it once no port holds the group; the datapath
    // follows either way): b's new datagram is committed and a's reply passes.
    sim.put(&fixtures::security_group("web"));
    assert_eq!(udp(&mut sim, 2, 6, 5, 42001, 5353), [1]);
    assert_eq!(udp(&mut sim, 1, 5, 6, 5353, 42001), [2]);
    // And stateless once more: the reply is refused again.
    sim.put(&stateless);
    assert_eq!(udp(&mut sim, 2, 6, 5, 42002, 5353), [1]);
    assert!(udp(&mut sim, 1, 5, 6, 5353, 42002).is_empty());
}

#[test]
fn a_stateless_group_with_a_remote_group_rule_accepts_without_commit() {
    let stateless = SecurityGroup {
        stateful: false,
        ..fixtures::security_group("web")
    };
    let from_clients = SecurityGroupRule {
        remote_group_id: Some("clients".into()),
        ..udp_rule("web-in", "web", Direction::Ingress, 5353)
    };
    let mut sim = world(stateless, &[from_clients]);
    assert_eq!(udp(&mut sim, 2, 6, 5, 43000, 5353), [1], "b is a member");
    // Nothing of a's side was committed: every entry is b's, with b's egress bit alone.
    let conns = sim.switch.conntrack().connections().to_vec();
    assert!(conns.iter().all(|k| k.mark == 1), "{conns:?}");
}
