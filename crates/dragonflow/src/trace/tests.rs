//! The trace on a world made of fixtures: no store, no switch, the same compiler.

use super::explain::explain;
use super::frame::{self, Proto};
use super::world::World;
use controller::view::record;
use model::fixtures::{
    chassis, fixed_ip, network, port, security_group, security_group_rule, subnet,
};
use model::{Direction, NbObject};
use nbdb::Snapshot;

/// Client (a, on host-a, default-like group `out`) and server (b, on host-b, group `web`)
/// on network n; `web` admits tcp/22 when `open`.
fn snapshot(open: bool) -> Snapshot {
    let mut records = Vec::new();
    let mut put = |r: nbdb::Record| records.push(r);
    fn rec<T: NbObject>(o: &T) -> nbdb::Record {
        record(o, 1)
    }
    for c in [
        chassis("host-a", "192.0.2.1"),
        chassis("host-b", "192.0.2.2"),
    ] {
        put(nbdb::Record {
            table: model::Table::Chassis.name().into(),
            id: c.id.clone(),
            revision: 1,
            topic: None,
            value: serde_json::to_vec(&c).unwrap(),
        });
    }
    put(rec(&network("n", 1)));
    put(rec(&subnet("s", "n", "10.0.0.0/24")));
    let mut out = security_group("out");
    out.meta.name = "out".into();
    let mut web = security_group("web");
    web.meta.name = "web".into();
    put(rec(&out));
    put(rec(&web));
    put(rec(&security_group_rule(
        "out-egress",
        "out",
        Direction::Egress,
    )));
    if open {
        let mut r = security_group_rule("ssh", "web", Direction::Ingress);
        r.protocol = Some("tcp".into());
        r.protocol_number = Some(6);
        r.port_range_min = Some(22);
        r.port_range_max = Some(22);
        put(rec(&r));
    }
    let mut a = port("a", "n", 5, "host-a");
    a.meta.name = "client".into();
    a.fixed_ips = vec![fixed_ip("s", "10.0.0.5")];
    a.security_groups = vec!["out".into()];
    let mut b = port("b", "n", 6, "host-b");
    b.meta.name = "server".into();
    b.fixed_ips = vec![fixed_ip("s", "10.0.0.6")];
    b.security_groups = vec!["web".into()];
    put(rec(&a));
    put(rec(&b));
    Snapshot {
        revision: 1,
        records,
    }
}

fn run(open: bool, to: &str, proto: Option<Proto>) -> super::explain::Report {
    let snap = snapshot(open);
    let mut world = World::compile(&snap, None).expect("compile");
    let from = frame::find_port(&world.view, "client").expect("client");
    let host = world.host_of(&from).expect("host").chassis.id.clone();
    let ofport = world.hosts[&host].ofport_of("a").expect("plugged");
    let (dst, dport) = frame::parse_to(to).expect("to");
    let p = frame::probe(&world.view, from, dst, dport, proto).expect("probe");
    let bytes = frame::frame(&world.view, &p).expect("frame");
    let d = world.net.send(&host, ofport, &bytes);
    explain(&world, &host, Some(&p), &d)
}

#[test]
fn without_a_rule_the_receivers_group_is_named_as_the_drop() {
    let r = run(false, "10.0.0.6:22", None);
    assert_eq!(r.outcome, "dropped", "{r:?}");
    assert!(
        r.verdict.contains("security group web of port server")
            && r.verdict
                .contains("no ingress rule admits tcp/22 from 10.0.0.5")
            && r.verdict.contains("host-b"),
        "{}",
        r.verdict
    );
}

#[test]
fn with_the_rule_it_is_delivered_over_the_tunnel_and_the_rule_is_named() {
    let r = run(true, "10.0.0.6:22", None);
    assert_eq!(r.outcome, "delivered", "{r:?}");
    assert!(
        r.verdict
            .contains("delivered to server (b) on host-b via geneve"),
        "{}",
        r.verdict
    );
    assert!(
        r.steps.iter().any(|s| s.table_name == "ingress_sg"
            && s.owner
                .contains("admitted by security group web, rule ssh: ingress tcp 22-22")),
        "{r:?}"
    );
    assert_eq!(r.steps.first().map(|s| s.host.as_str()), Some("host-a"));
    assert!(r.steps.iter().any(|s| s.host == "host-b"));
    // Another port, and ICMP, which the rule does not admit.
    assert_eq!(run(true, "10.0.0.6:23", None).outcome, "dropped");
    assert_eq!(run(true, "10.0.0.6", Some(Proto::Icmp)).outcome, "dropped");
}

#[test]
fn bad_endpoints_are_errors_that_say_why() {
    let snap = snapshot(true);
    let world = World::compile(&snap, None).expect("compile");
    assert!(
        frame::find_port(&world.view, "nobody")
            .unwrap_err()
            .contains("no port")
    );
    assert!(frame::parse_to("10.0.0.6:notaport").is_err());
    let from = frame::find_port(&world.view, "10.0.0.5").expect("by address");
    let e = frame::probe(
        &world.view,
        from.clone(),
        "10.0.0.6".parse().unwrap(),
        None,
        Some(Proto::Udp),
    )
    .unwrap_err();
    assert!(e.contains("destination port"), "{e}");
    let e = frame::probe(
        &world.view,
        from,
        "2001:db8::1".parse().unwrap(),
        None,
        None,
    )
    .unwrap_err();
    assert!(e.contains("no IPv6 address"), "{e}");
    assert!(frame::parse_hex("zz").is_err());
    assert!(frame::parse_hex("é1").is_err());
    assert_eq!(frame::parse_hex("0a:0b").unwrap(), vec![10, 11]);
}

/// The server in firewall group `edge` with the ingress policy `in` of `rules`, of
/// no-ssh (r22: deny tcp/22) and r80 (allow tcp/80).
fn with_firewall(mut snap: Snapshot, rules: &[&str]) -> Snapshot {
    use model::fwaas::{FwAction, PortRange};
    use model::{FirewallGroup, FirewallPolicy, FirewallRule, fixtures::meta};
    let rule = |id: &str, port: u16, action: FwAction| FirewallRule {
        meta: meta(id),
        shared: false,
        protocol: Some("tcp".into()),
        ip_version: 4,
        source_ip_address: None,
        destination_ip_address: None,
        source_port: None,
        destination_port: Some(PortRange {
            min: port,
            max: port,
        }),
        action,
        enabled: true,
        deleting: false,
    };
    let mut no_ssh = rule("r22", 22, FwAction::Deny);
    no_ssh.meta.name = "no-ssh".into();
    snap.records.push(record(&no_ssh, 1));
    snap.records
        .push(record(&rule("r80", 80, FwAction::Allow), 1));
    let mut p = FirewallPolicy {
        meta: meta("in"),
        shared: false,
        audited: false,
        firewall_rules: rules.iter().map(|r| r.to_string()).collect(),
        deleting: false,
    };
    p.meta.name = "in".into();
    snap.records.push(record(&p, 1));
    let mut g = FirewallGroup {
        meta: meta("edge"),
        shared: false,
        admin_state_up: true,
        ingress_firewall_policy_id: Some("in".into()),
        egress_firewall_policy_id: None,
        ports: vec!["b".into()],
        is_default: false,
    };
    g.meta.name = "edge".into();
    snap.records.push(record(&g, 1));
    snap
}

#[test]
fn a_firewall_drop_names_its_group_and_the_rule_or_the_implicit_deny() {
    let run = |rules: &[&str]| {
        let snap = with_firewall(snapshot(true), rules);
        let mut world = World::compile(&snap, None).expect("compile");
        let from = frame::find_port(&world.view, "client").expect("client");
        let host = world.host_of(&from).expect("host").chassis.id.clone();
        let ofport = world.hosts[&host].ofport_of("a").expect("plugged");
        let (dst, dport) = frame::parse_to("10.0.0.6:22").expect("to");
        let p = frame::probe(&world.view, from, dst, dport, None).expect("probe");
        let bytes = frame::frame(&world.view, &p).expect("frame");
        let d = world.net.send(&host, ofport, &bytes);
        explain(&world, &host, Some(&p), &d)
    };
    // The security group admits 22; the firewall's first rule denies it.
    let r = run(&["r22", "r80"]);
    assert_eq!(r.outcome, "dropped", "{r:?}");
    assert!(
        r.verdict.contains("by firewall group edge of port b")
            && r.verdict
                .contains("rule no-ssh of ingress policy in says deny")
            && r.verdict.contains("host-b"),
        "{}",
        r.verdict
    );
    // With no rule for 22, the implicit deny.
    let r = run(&["r80"]);
    assert_eq!(r.outcome, "dropped", "{r:?}");
    assert!(
        r.verdict
            .contains("no rule of ingress policy in matches: the implicit deny"),
        "{}",
        r.verdict
    );
    assert_eq!(run(&[]).outcome, "dropped");
}

/// A datagram to a group is addressed to the group's MAC, not to a gateway (the network
/// has no router): an IPv4 group's low 23 bits, as the VM's kernel would send it.
#[test]
fn a_multicast_probe_is_sent_to_the_groups_mac() {
    let snap = snapshot(true);
    let world = World::compile(&snap, None).expect("compile");
    let from = frame::find_port(&world.view, "client").expect("client");
    let p = frame::probe(
        &world.view,
        from,
        "239.129.2.3".parse().unwrap(),
        Some(5001),
        Some(Proto::Udp),
    )
    .expect("probe");
    let bytes = frame::frame(&world.view, &p).expect("frame");
    assert_eq!(bytes[..6], [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]);
    let v6 = frame::Probe {
        dst: "ff1e::12:3456".parse().unwrap(),
        ..p
    };
    assert_eq!(
        frame::next_hop_mac(&world.view, &v6),
        Ok([0x33, 0x33, 0x00, 0x12, 0x34, 0x56])
    );
}
