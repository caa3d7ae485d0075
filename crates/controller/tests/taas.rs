//! Tap as a service on the fake switch (issue 24): a tap flow's copies reach the tap
//! service port on this host or, over the tunnel with the service's own key, on another
//! one; the original frame goes on unchanged; copies bypass the service port's filters;
//! a service port that is also a source gets a bounded number of copies (no loop); a
//! deleted flow stops the copies and leaves nothing behind.

mod support;

use controller::apps::Settings;
use controller::apps::taas::group_id;
use model::{Network, Port, TapDirection, TapFlow, TapService, fixtures};
use std::net::Ipv4Addr;
use support::sim::Sim;
use support::{mac, open_port, put_open_group, udp_frame};

const A: u32 = 1;
const B: u32 = 2;
const S: u32 = 3;
const TUNNEL: u32 = 100;
/// The tap service's tunnel key (never a network's: the server claims it as one).
const KEY: u32 = 4242;
const TAAS_APP: u64 = 22;

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

/// The tap service port: port security on and no security group, so nothing addressed
/// to it gets in; only copies do.
fn service_port(host: &str) -> Port {
    Port {
        security_groups: vec![],
        ..open_port("s", 11, host)
    }
}

fn service() -> TapService {
    TapService {
        meta: fixtures::meta("ts"),
        port_id: "s".into(),
        network_id: "n".into(),
        tap_key: Some(KEY),
        status: "ACTIVE".into(),
    }
}

fn tap(id: &str, source: &str, direction: TapDirection) -> TapFlow {
    TapFlow {
        meta: fixtures::meta(id),
        tap_service_id: "ts".into(),
        source_port: source.into(),
        direction,
        vlan_filter: None,
        status: "ACTIVE".into(),
        network_id: "n".into(),
        service_port: "s".into(),
        service_network: "n".into(),
        tap_key: Some(KEY),
    }
}

/// Host `name` of network n: a (.5) and b (.6) on h, the service port s (.11) on
/// `service_host`; the ports of `name` plugged.
fn host(name: &str, service_host: &str) -> Sim {
    let mut sim = Sim::with(name, TUNNEL, &[], &Settings::default());
    sim.chassis(if name == "h" { "o" } else { "h" }, "192.0.2.2");
    put_open_group(&mut sim);
    sim.put(&Network {
        subnets: vec!["s".into()],
        ..fixtures::network("n", 1)
    });
    sim.put(&fixtures::subnet("s", "n", "10.0.0.0/24"));
    sim.put(&open_port("a", 5, "h"));
    sim.put(&open_port("b", 6, "h"));
    sim.put(&open_port("c", 7, "o"));
    sim.put(&service_port(service_host));
    for (id, ofport, on) in [("a", A, "h"), ("b", B, "h"), ("s", S, service_host)] {
        if on == name {
            sim.plug(id, ofport);
        }
    }
    sim
}

fn a_to_b() -> Vec<u8> {
    udp_frame(mac(5), mac(6), (ip(5), 1000), (ip(6), 7000))
}

fn b_to_a() -> Vec<u8> {
    udp_frame(mac(6), mac(5), (ip(6), 7000), (ip(5), 1000))
}

/// The tap app's flows and groups on `sim`.
fn tap_flows(sim: &Sim) -> usize {
    (0..=255u8)
        .map(|t| {
            sim.switch
                .flows(t)
                .into_iter()
                .filter(|f| f.cookie >> 56 == TAAS_APP)
                .count()
        })
        .sum()
}

fn tap_groups(sim: &Sim) -> usize {
    [true, false]
        .into_iter()
        .filter(|i| sim.switch.groups().get(group_id(5, *i).unwrap()).is_some())
        .count()
}

#[test]
fn both_directions_are_copied_to_a_service_port_on_this_host() {
    let mut sim = host("h", "h");
    // Nothing gets into s by itself (no security group lets it).
    let to_s = udp_frame(mac(5), mac(11), (ip(5), 1000), (ip(11), 7000));
    assert!(sim.send(A, &to_s).frames().is_empty());
    sim.put(&service());
    sim.put(&tap("tf", "a", TapDirection::Both));
    sim.check();
    // The request (OUT of a) and the reply (IN to a): each reaches its destination once,
    // unchanged, and s gets one copy of each, unchanged.
    assert_eq!(
        sim.send(A, &a_to_b()).frames(),
        vec![(S, a_to_b()), (B, a_to_b())]
    );
    assert_eq!(
        sim.send(B, &b_to_a()).frames(),
        vec![(S, b_to_a()), (A, b_to_a())]
    );
    assert_eq!(
        tap_flows(&sim),
        3,
        "one flow per direction, the service's arrival"
    );
    assert_eq!(tap_groups(&sim), 2, "one group per direction");
    // The flow goes: no copy, nothing of it left.
    sim.delete(model::Table::TapFlow, "tf");
    sim.check();
    assert_eq!(sim.send(A, &a_to_b()).frames(), vec![(B, a_to_b())]);
    assert_eq!(sim.send(B, &b_to_a()).frames(), vec![(A, b_to_a())]);
    assert_eq!(tap_flows(&sim), 1, "the service's arrival");
    assert_eq!(tap_groups(&sim), 0);
}

#[test]
fn in_means_towards_the_vm_and_out_from_it() {
    let mut sim = host("h", "h");
    sim.put(&service());
    sim.put(&tap("tf", "a", TapDirection::In));
    assert_eq!(sim.send(A, &a_to_b()).frames(), vec![(B, a_to_b())]);
    assert_eq!(
        sim.send(B, &b_to_a()).frames(),
        vec![(S, b_to_a()), (A, b_to_a())]
    );
    sim.put(&tap("tf", "a", TapDirection::Out));
    sim.check();
    assert_eq!(
        sim.send(A, &a_to_b()).frames(),
        vec![(S, a_to_b()), (B, a_to_b())]
    );
    assert_eq!(sim.send(B, &b_to_a()).frames(), vec![(A, b_to_a())]);
}

#[test]
fn copies_cross_hosts_with_the_services_own_key_and_skip_its_filters() {
    let mut h = host("h", "o");
    let mut o = host("o", "o");
    for sim in [&mut h, &mut o] {
        sim.put(&service());
        sim.put(&tap("tf", "a", TapDirection::Both));
        sim.check();
    }
    let sent = h.send(A, &a_to_b());
    let outs = &sent.outcome.outputs;
    assert_eq!(outs.len(), 2, "{:?}", sent.frames());
    let copy = outs.iter().find(|o| o.port == TUNNEL).expect("a copy");
    assert_eq!(
        copy.tun_id,
        u64::from(KEY),
        "the service's key, not the network's"
    );
    assert_eq!(copy.tun_dst, u32::from(Ipv4Addr::new(192, 0, 2, 2)));
    assert_eq!(copy.frame, a_to_b(), "unchanged");
    assert!(outs.iter().any(|o| o.port == B && o.frame == a_to_b()));
    // A reply to a from c on o arrives by the tunnel: its copy goes back into it (the
    // port it came in by), to s's host.
    let c_to_a = udp_frame(mac(7), mac(5), (ip(7), 7000), (ip(5), 1000));
    let mut pkt = fake_switch::Packet::new(TUNNEL, c_to_a.clone());
    pkt.tun_id = 1;
    let sent = h.send_packet(pkt);
    let outs = &sent.outcome.outputs;
    assert_eq!(outs.len(), 2, "{:?}", sent.outcome.log);
    assert!(outs.iter().any(|o| o.port == A && o.frame == c_to_a));
    let back = outs.iter().find(|o| o.port == TUNNEL).expect("the copy");
    assert_eq!((back.tun_id, &back.frame), (u64::from(KEY), &c_to_a));
    // On o: what comes with the key goes to s alone, past its port security and groups
    // (a frame from a to b's MAC is not s's).
    let mut pkt = fake_switch::Packet::new(TUNNEL, copy.frame.clone());
    pkt.tun_id = u64::from(KEY);
    assert_eq!(o.send_packet(pkt).frames(), vec![(S, a_to_b())]);
    // The same frame with the network's key is an ordinary arrival: not s's.
    let mut pkt = fake_switch::Packet::new(TUNNEL, copy.frame.clone());
    pkt.tun_id = 1;
    assert!(o.send_packet(pkt).frames().iter().all(|(p, _)| *p != S));
    assert_eq!(tap_flows(&o), 1, "the service's arrival");
    // The service goes (and its flows with it, as the server deletes them).
    o.delete(model::Table::TapFlow, "tf");
    o.delete(model::Table::TapService, "ts");
    o.check();
    assert_eq!(tap_flows(&o), 0);
    let mut pkt = fake_switch::Packet::new(TUNNEL, a_to_b());
    pkt.tun_id = u64::from(KEY);
    assert!(o.send_packet(pkt).frames().is_empty());
}

#[test]
fn a_service_port_that_is_also_a_source_gets_bounded_copies() {
    let mut sim = host("h", "h");
    sim.put(&service());
    // s taps itself both ways, and a taps into s too: any loop would show here.
    sim.put(&tap("self", "s", TapDirection::Both));
    sim.put(&tap("tf", "a", TapDirection::Both));
    sim.put(&tap("tf2", "a", TapDirection::Both));
    sim.check();
    // What s sends: its copy back to it, once (made at the door, before s's own
    // filters, which let nothing out of it).
    let s_to_b = udp_frame(mac(11), mac(6), (ip(11), 1), (ip(6), 7000));
    let sent = sim.send(S, &s_to_b);
    assert_eq!(sent.frames(), vec![(S, s_to_b)]);
    // a to b: one copy to s although two flows say so.
    assert_eq!(
        sim.send(A, &a_to_b()).frames(),
        vec![(S, a_to_b()), (B, a_to_b())]
    );
    // Copies are never copied: s gets a's frame once by a's tap and nothing more, and
    // the switch's step count stays small.
    let sent = sim.send(A, &a_to_b());
    assert!(sent.outcome.trace.len() < 40, "{:?}", sent.outcome.log);
}

/// Flows per tap flow (docs/benchmarks.md): `DF_TAAS_FIGURES=1` prints them.
#[test]
fn flows_per_tap_flow() {
    let mut sim = host("h", "h");
    sim.put(&service());
    let base = tap_flows(&sim);
    let mut figures = Vec::new();
    for d in [TapDirection::In, TapDirection::Out, TapDirection::Both] {
        sim.put(&tap("tf", "a", d));
        let n = tap_flows(&sim) - base;
        figures.push((d.as_str(), n, tap_groups(&sim)));
        sim.delete(model::Table::TapFlow, "tf");
    }
    assert_eq!(figures, [("IN", 1, 1), ("OUT", 1, 1), ("BOTH", 2, 2)]);
    assert_eq!(base, 1, "the service port's arrival from the tunnel");
    if std::env::var_os("DF_TAAS_FIGURES").is_some() {
        println!("flows per tap flow (flows, groups): {figures:?}; per service: {base}");
    }
}
