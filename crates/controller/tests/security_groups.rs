//! Security groups on the fake switch (its conntrack model): rules by protocol, port and
//! prefix, remote groups as conjunctions, replies of accepted connections, two ports of one
//! network on one host (one zone, both sides' rules still apply), port security off, the
//! flushes a removed rule asks for, and flows growing with rules plus members.

mod support;

use controller::apps::{Desired, affected};
use controller::view::{View, written};
use fake_switch::Switch;
use model::{Direction, Port, SecurityGroupRule, Table, fixtures};
use openflow::ct_flush::CtFlush;
use std::net::{IpAddr, Ipv4Addr};
use support::mac;
use support::sim::Sim;

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

fn port(id: &str, n: u8, host: &str, groups: &[&str]) -> Port {
    Port {
        fixed_ips: vec![fixtures::fixed_ip("s", &ip(n).to_string())],
        security_groups: groups.iter().map(|g| g.to_string()).collect(),
        ..fixtures::port(id, "n", n.into(), host)
    }
}

fn udp_rule(id: &str, g: &str, min: u16, max: u16) -> SecurityGroupRule {
    SecurityGroupRule {
        protocol: Some("udp".into()),
        protocol_number: Some(17),
        port_range_min: Some(min),
        port_range_max: Some(max),
        ..fixtures::security_group_rule(id, g, Direction::Ingress)
    }
}

/// Ports a (5, "web"), b (6, "clients"), c (7, "other") plugged at OpenFlow ports 1-3; d
/// (8) plugged at 4 with port security off; r (9, "clients") on another host.
fn world() -> Sim {
    let mut sim = Sim::new("h", 0);
    sim.put(&fixtures::network("n", 9));
    for g in ["web", "clients", "other"] {
        sim.put(&fixtures::security_group(g));
        sim.put(&fixtures::security_group_rule(
            &format!("{g}-out"),
            g,
            Direction::Egress,
        ));
    }
    // web: udp 5353 from members of "clients"; udp 6000-6010 from 10.0.0.6 only.
    sim.put(&SecurityGroupRule {
        remote_group_id: Some("clients".into()),
        ..udp_rule("web-dns", "web", 5353, 5353)
    });
    sim.put(&SecurityGroupRule {
        remote_ip_prefix: Some("10.0.0.6/32".parse().unwrap()),
        ..udp_rule("web-range", "web", 6000, 6010)
    });
    let d = Port {
        port_security_enabled: false,
        ..port("d", 8, "", &[])
    };
    for (p, ofport) in [
        (port("a", 5, "", &["web"]), 1),
        (port("b", 6, "", &["clients"]), 2),
        (port("c", 7, "", &["other"]), 3),
        (d, 4),
    ] {
        sim.put(&p);
        sim.plug(&p.meta.id, ofport);
    }
    sim.put(&port("r", 9, "o", &["clients"]));
    sim
}

/// The connections the engine asked to flush since the last call (zones given back
/// aside).
fn cuts(sim: &mut Sim) -> Vec<CtFlush> {
    std::mem::take(&mut sim.flushes)
        .into_iter()
        .filter_map(|m| match m {
            openflow::Message::CtFlush(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// Writes `obj`; returns the flushes it asks for.
fn put<T: model::NbObject>(sim: &mut Sim, obj: &T) -> Vec<CtFlush> {
    cuts(sim);
    sim.put(obj);
    cuts(sim)
}

/// Deletes an object; returns the flushes it asks for.
fn delete(sim: &mut Sim, table: Table, id: &str) -> Vec<CtFlush> {
    cuts(sim);
    sim.delete(table, id);
    cuts(sim)
}

/// A UDP datagram from port n `from` to n `to`.
fn udp_frame(from: u8, to: u8, sport: u16, dport: u16) -> Vec<u8> {
    support::udp_frame(mac(from), mac(to), (ip(from), sport), (ip(to), dport))
}

/// Sends a UDP datagram in by `in_port`; returns the OpenFlow ports it left by.
fn udp(sim: &mut Sim, in_port: u32, from: u8, to: u8, sport: u16, dport: u16) -> Vec<u32> {
    sim.send(in_port, &udp_frame(from, to, sport, dport))
        .outcome
        .ports()
}

#[test]
fn a_remote_group_member_gets_in_and_a_non_member_does_not() {
    let mut sim = world();
    assert_eq!(udp(&mut sim, 2, 6, 5, 40000, 5353), [1], "b is in clients");
    assert!(udp(&mut sim, 3, 7, 5, 40000, 5353).is_empty(), "c is not");
    assert!(
        udp(&mut sim, 2, 6, 5, 40000, 5354).is_empty(),
        "the rule is for 5353 only"
    );
    // c joins clients: now it gets in.
    put(&mut sim, &port("c", 7, "h", &["other", "clients"]));
    assert_eq!(udp(&mut sim, 3, 7, 5, 40001, 5353), [1]);
    // ...and leaves again.
    put(&mut sim, &port("c", 7, "h", &["other"]));
    assert!(udp(&mut sim, 3, 7, 5, 40002, 5353).is_empty());
}

#[test]
fn prefixes_and_port_ranges() {
    let mut sim = world();
    for p in [6000, 6005, 6010] {
        assert_eq!(udp(&mut sim, 2, 6, 5, 41000, p), [1], "10.0.0.6 to {p}");
    }
    assert!(udp(&mut sim, 2, 6, 5, 41000, 6011).is_empty());
    assert!(
        udp(&mut sim, 3, 7, 5, 41000, 6005).is_empty(),
        "10.0.0.7 is outside the prefix"
    );
}

#[test]
fn replies_pass_and_new_connections_to_a_closed_port_do_not() {
    let mut sim = world();
    assert_eq!(udp(&mut sim, 2, 6, 5, 42000, 5353), [1]);
    // a answers b: b's group has no ingress rule, the reply passes anyway.
    assert_eq!(udp(&mut sim, 1, 5, 6, 5353, 42000), [2]);
    // a starting something towards b does not.
    assert!(udp(&mut sim, 1, 5, 6, 5353, 42001).is_empty());
    // Both ports are on this host in one network: one zone, one conntrack entry, and the
    // connection b started was accepted by b's egress and a's ingress rules both.
    let conns = sim.switch.conntrack().connections();
    let mark = |sport: u16| conns.iter().find(|k| k.orig.sport == sport).map(|k| k.mark);
    assert_eq!(mark(42000), Some(3), "both sides' bits: {conns:?}");
    // The one a started passed a's egress rules only: b's ingress never accepted it.
    assert_eq!(mark(5353), Some(1), "{conns:?}");
}

#[test]
fn port_security_off_bypasses_the_groups() {
    let mut sim = world();
    // d has no group at all and port security off: anything reaches it, untracked.
    assert_eq!(udp(&mut sim, 1, 5, 8, 1, 9999), [4]);
    assert_eq!(
        udp(&mut sim, 4, 8, 6, 1, 9999),
        Vec::<u32>::new(),
        "b still filters"
    );
    assert!(
        sim.switch.conntrack().connections().is_empty()
            || udp(&mut sim, 4, 8, 5, 1, 5353).is_empty()
    );
}

#[test]
fn removing_a_rule_asks_to_flush_what_it_allowed() {
    let mut sim = world();
    assert_eq!(udp(&mut sim, 2, 6, 5, 43000, 6005), [1]);
    assert_eq!(udp(&mut sim, 2, 6, 5, 43001, 5353), [1]);
    let zone = sim.core.host().zones["n"];
    let flushes = delete(&mut sim, Table::SecurityGroupRule, "web-range");
    // A short range: one flush per port.
    assert_eq!(flushes.len(), 11, "{flushes:?}");
    for f in &flushes {
        assert_eq!((f.zone, f.ip_proto), (Some(zone), 17));
        assert_eq!(f.orig.dst, Some(IpAddr::V4(ip(5))));
        assert_eq!(f.orig.src, Some(IpAddr::V4(ip(6))), "the /32 prefix");
    }
    // The entry they name is there; the other connection is not named by them.
    let named = |t: &fake_switch::conntrack::Tuple| {
        flushes.iter().any(|f| {
            t.proto == f.ip_proto
                && Some(t.dst) == f.orig.dst
                && Some(t.src) == f.orig.src
                && f.orig.dst_port.is_none_or(|p| p == t.dport)
        })
    };
    let conns = sim.switch.conntrack().connections().to_vec();
    assert_eq!(conns.iter().filter(|k| named(&k.orig)).count(), 1);
    assert!(
        conns
            .iter()
            .any(|k| !named(&k.orig) && k.orig.dport == 5353)
    );
    // Without the entry, the next datagram is a new connection: no rule lets it in.
    sim.switch.conntrack_mut().clear();
    assert!(udp(&mut sim, 2, 6, 5, 43000, 6005).is_empty());
    // Removing the remote group rule names each member it allowed (b here and r remote).
    let flushes = delete(&mut sim, Table::SecurityGroupRule, "web-dns");
    let srcs: Vec<_> = flushes.iter().map(|f| f.orig.src).collect();
    assert_eq!(
        srcs,
        [Some(IpAddr::V4(ip(6))), Some(IpAddr::V4(ip(9)))],
        "{flushes:?}"
    );
    assert!(flushes.iter().all(|f| f.orig.dst_port == Some(5353)));
    // A member leaving the group is a removal too.
    put(
        &mut sim,
        &SecurityGroupRule {
            remote_group_id: Some("clients".into()),
            ..udp_rule("web-dns", "web", 5353, 5353)
        },
    );
    let flushes = put(&mut sim, &port("r", 9, "o", &[]));
    assert_eq!(flushes.len(), 1, "{flushes:?}");
    assert_eq!(flushes[0].orig.src, Some(IpAddr::V4(ip(9))));
    // A group taken off a port: what it allowed goes (egress any, and b's way in).
    let flushes = put(&mut sim, &port("a", 5, "h", &[]));
    assert!(
        flushes
            .iter()
            .any(|f| f.orig.src == Some(IpAddr::V4(ip(5))) && f.ip_proto == 0),
        "egress: {flushes:?}"
    );
    assert!(
        flushes
            .iter()
            .any(|f| f.orig.dst == Some(IpAddr::V4(ip(5))) && f.orig.dst_port == Some(5353)),
        "ingress: {flushes:?}"
    );
}

#[test]
fn remote_group_flows_grow_with_rules_plus_members() {
    // `n` member ports (remote) and one local port with `r` rules naming their group.
    let count = |members: u8, rules: usize| {
        let mut sim = Sim::new("h", 0);
        sim.put(&fixtures::network("n", 9));
        for i in 0..rules {
            sim.put(&SecurityGroupRule {
                remote_group_id: Some("clients".into()),
                ..udp_rule(&format!("r{i}"), "web", 1000 + i as u16, 1000 + i as u16)
            });
        }
        sim.put(&port("a", 5, "", &["web"]));
        sim.plug("a", 1);
        for m in 0..members {
            sim.put(&port(&format!("m{m}"), 20 + m, "o", &["clients"]));
        }
        sim.core.desired().table().len()
    };
    let base = count(0, 0);
    let members_only = count(50, 1) - base;
    let rules_only = count(1, 20) - base;
    let both = count(50, 20) - base;
    // Each extra member adds one flow, each extra rule a few (clause 1, conj_id).
    assert!(
        both <= members_only + rules_only + 5,
        "50 members x 20 rules: {both} flows, not a product (members {members_only}, rules {rules_only})"
    );
    assert!(both < 200, "{both}");
}

#[test]
fn a_member_joining_a_group_recompiles_itself_alone() {
    // Twenty local ports in "clients", whose ingress rule admits the group's members.
    let rule = |max: u16| SecurityGroupRule {
        remote_group_id: Some("clients".into()),
        ..udp_rule("in", "clients", 53, max)
    };
    let mut view = View::new("h");
    view.apply(&written(&fixtures::network("n", 1), 1));
    view.apply(&written(&rule(53), 2));
    for n in 1..=20u8 {
        let p = port(&format!("p{n}"), n, "h", &["clients"]);
        view.apply(&written(&p, 2 + u64::from(n)));
    }
    let recompiled = |view: &View, touched: Vec<controller::view::Touched>| {
        touched
            .iter()
            .flat_map(|t| affected(view, t))
            .filter(|o| o.table == model::Table::Port)
            .map(|o| o.id)
            .collect::<std::collections::BTreeSet<String>>()
    };
    // One more member: only it (and what its network and routers hold) is recompiled.
    let touched = view.apply(&written(&port("new", 30, "h", &["clients"]), 30));
    assert_eq!(recompiled(&view, touched), ["new".to_string()].into());
    assert!(view.take_membership().contains("clients"));
    // A change of the rule itself recompiles every holder.
    let touched = view.apply(&written(&rule(54), 31));
    assert_eq!(recompiled(&view, touched).len(), 21);
}

#[test]
fn without_a_zone_ip_fails_closed_both_ways() {
    let mut sim = world();
    assert_eq!(
        udp(&mut sim, 2, 6, 5, 43000, 6005),
        [1],
        "allowed with the zone"
    );
    // The network's zone gone (as if never given): its conntrack flows go with it. The
    // engine gives a zone to every network with a port here (it has none to give only
    // after 65535 of them), so this state is made by hand: the host without zones,
    // compiled in full and loaded into a fresh switch.
    let mut host = sim.core.host().clone();
    host.zones.clear();
    let mut sw = Switch::new();
    support::install(&mut sw, &Desired::full(sim.core.view(), &host));
    let mut send = |in_port, from, to, sport, dport| {
        sw.process(in_port, &udp_frame(from, to, sport, dport))
            .ports()
    };
    assert!(send(2, 6, 5, 43001, 6005).is_empty(), "b to a: dropped");
    // a to d (port security off, which took it with the zone): a's way out is closed.
    assert!(send(1, 5, 8, 1, 9999).is_empty(), "a to d: dropped");
}
