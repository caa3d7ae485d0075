//! Service function chaining on the fake switch (issue 24): classified datagrams from
//! the source port go through the service function (on this host, or on another one
//! behind an MPLS label over the tunnel), come back out of its egress port and reach
//! their destination; other traffic goes straight; a group spreads flows over its pairs
//! by weight; a chain deleted leaves nothing behind.

mod support;

use controller::apps::Settings;
use controller::apps::sfc::{ETH_MPLS, group_id};
use model::sfc::{Classifier, Hop, HopPair};
use model::{Network, Port, PortChain, fixtures};
use std::net::Ipv4Addr;
use support::sim::Sim;
use support::{mac, open_port, put_open_group, udp_frame};

const A: u32 = 1;
const B: u32 = 2;
const SF_IN: u32 = 3;
const SF_OUT: u32 = 4;
const SF2_IN: u32 = 5;
const SF2_OUT: u32 = 6;
const TUNNEL: u32 = 100;
const CHAIN_ID: u32 = 7;

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

/// A service function port: no port security (it forwards others' frames).
fn sf_port(id: &str, n: u8, host: &str) -> Port {
    Port {
        port_security_enabled: false,
        security_groups: vec![],
        ..open_port(id, n, host)
    }
}

fn pair(id: &str, ingress: &str, egress: &str, weight: u32) -> HopPair {
    HopPair {
        id: id.into(),
        ingress: ingress.into(),
        egress: egress.into(),
        weight,
    }
}

/// Chain 7 on network n: UDP to port 7000 from port "a" through `pairs` (one hop).
fn chain(pairs: Vec<HopPair>) -> PortChain {
    PortChain {
        meta: fixtures::meta("pc"),
        chain_id: CHAIN_ID,
        port_pair_groups: vec!["g".into()],
        flow_classifiers: vec!["fc".into()],
        correlation: "mpls".into(),
        symmetric: false,
        network_id: "n".into(),
        path: vec![Hop {
            group: "g".into(),
            pairs,
        }],
        classifiers: vec![Classifier {
            id: "fc".into(),
            ethertype: "IPv4".into(),
            protocol: Some("udp".into()),
            destination_port_range_min: Some(7000),
            destination_port_range_max: Some(7000),
            logical_source_port: Some("a".into()),
            ..Classifier::default()
        }],
    }
}

/// Host `name` of network n (10.0.0.0/24): a (.5) and b (.6) on h, the service
/// function sf (.11 in, .12 out) on h, sf2 (.13 in, .14 out) on o; the ports of
/// `name` plugged.
fn host(name: &str) -> Sim {
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
    sim.put(&sf_port("sf-in", 11, "h"));
    sim.put(&sf_port("sf-out", 12, "h"));
    sim.put(&sf_port("sf2-in", 13, "o"));
    sim.put(&sf_port("sf2-out", 14, "o"));
    for (id, ofport) in [
        ("a", A),
        ("b", B),
        ("sf-in", SF_IN),
        ("sf-out", SF_OUT),
        ("sf2-in", SF2_IN),
        ("sf2-out", SF2_OUT),
    ] {
        if id.starts_with("sf2") == (name == "o") {
            sim.plug(id, ofport);
        }
    }
    sim
}

/// A datagram from a (.5) to b (.6), to UDP port `dport` from `sport`.
fn a_to_b(sport: u16, dport: u16) -> Vec<u8> {
    udp_frame(mac(5), mac(6), (ip(5), sport), (ip(6), dport))
}

fn no_chain_left(sim: &Sim) {
    for t in 0..=255u8 {
        let left: Vec<_> = sim
            .switch
            .flows(t)
            .into_iter()
            .filter(|f| f.cookie >> 56 == 20 && f.cookie & 0xffff_ffff == u64::from(CHAIN_ID))
            .collect();
        assert!(left.is_empty(), "table {t}: {left:?}");
    }
    for local in [false, true] {
        for tc in 0..4 {
            for hop in 0..2 {
                let g = group_id(CHAIN_ID << 4 | hop, tc, local);
                assert!(sim.switch.groups().get(g).is_none(), "group {g:#x} stayed");
            }
        }
    }
}

#[test]
fn classified_traffic_goes_through_the_service_function_on_this_host() {
    let mut sim = host("h");
    sim.put(&chain(vec![pair("pp", "sf-in", "sf-out", 1)]));
    let f = a_to_b(1000, 7000);
    let out = sim.send(A, &f).frames();
    assert_eq!(
        out,
        vec![(SF_IN, f.clone())],
        "to the SF's ingress, unchanged"
    );
    // The service function bridges it out of its egress port: on to b, not back in.
    let out = sim.send(SF_OUT, &f).frames();
    assert_eq!(out, vec![(B, f.clone())], "delivered to its destination");
    // Unclassified: straight to b.
    let other = a_to_b(1000, 7001);
    assert_eq!(sim.send(A, &other).frames(), vec![(B, other.clone())]);
    // From b (not the chain's source): straight.
    let back = udp_frame(mac(6), mac(5), (ip(6), 1000), (ip(5), 7000));
    assert_eq!(sim.send(B, &back).frames(), vec![(A, back.clone())]);
    // The chain goes: the direct path, and nothing of the chain stays.
    sim.delete(model::Table::SfcPortChain, "pc");
    assert_eq!(sim.send(A, &f).frames(), vec![(B, f.clone())]);
    no_chain_left(&sim);
}

#[test]
fn a_service_function_on_another_host_is_reached_with_an_mpls_label() {
    let mut h = host("h");
    let mut o = host("o");
    let c = chain(vec![pair("pp2", "sf2-in", "sf2-out", 1)]);
    h.put(&c);
    o.put(&c);
    let f = a_to_b(1000, 7000);
    let sent = h.send(A, &f);
    let out = sent.frames();
    assert_eq!(out.len(), 1, "{out:?}");
    let (port, labelled) = &out[0];
    assert_eq!(*port, TUNNEL);
    assert_eq!(u16::from_be_bytes([labelled[12], labelled[13]]), ETH_MPLS);
    let lse = u32::from_be_bytes([labelled[14], labelled[15], labelled[16], labelled[17]]);
    assert_eq!(lse >> 12, CHAIN_ID << 4, "chain id and hop 0 in the label");
    assert_eq!((lse >> 9) & 7, 0, "IPv4 in the TC bits");
    assert_eq!(lse >> 8 & 1, 1, "bottom of stack");
    assert_eq!(&labelled[18..], &f[14..], "the packet behind the label");
    // On o, from the tunnel: the label popped, to the SF's ingress port.
    let mut pkt = fake_switch::Packet::new(TUNNEL, labelled.clone());
    pkt.tun_id = 1;
    let out = o.send_packet(pkt).frames();
    assert_eq!(out, vec![(SF2_IN, f.clone())], "the plain packet");
    // A label no hop of o takes is dropped, not delivered by its MAC.
    let mut stray = labelled.clone();
    stray[14] ^= 0x80;
    let mut pkt = fake_switch::Packet::new(TUNNEL, stray);
    pkt.tun_id = 1;
    assert!(o.send_packet(pkt).frames().is_empty());
    // Out of sf2's egress port: the last hop, so on to b's host as any frame.
    let out = o.send(SF2_OUT, &f).frames();
    assert_eq!(out, vec![(TUNNEL, f.clone())]);
    // Deleting the chain on both hosts leaves nothing.
    h.delete(model::Table::SfcPortChain, "pc");
    o.delete(model::Table::SfcPortChain, "pc");
    assert_eq!(h.send(A, &f).frames(), vec![(B, f.clone())]);
    no_chain_left(&h);
    no_chain_left(&o);
}

#[test]
fn a_group_spreads_flows_over_its_pairs_by_weight() {
    let mut sim = host("h");
    sim.put(&chain(vec![
        pair("pp", "sf-in", "sf-out", 1),
        pair("pp2", "sf2-in", "sf2-out", 3),
    ]));
    let (mut here, mut there) = (0, 0);
    for sport in 1000..1200u16 {
        let out = sim.send(A, &a_to_b(sport, 7000)).frames();
        assert_eq!(out.len(), 1, "one copy: {out:?}");
        match out[0].0 {
            SF_IN => here += 1,
            TUNNEL => there += 1,
            p => panic!("to {p}"),
        }
        // The same flow again: the same pair.
        let again = sim.send(A, &a_to_b(sport, 7000)).frames();
        assert_eq!(again[0].0, out[0].0, "flow {sport} moved");
    }
    assert!(
        here > 20 && there > here,
        "weights 1:3: {here} here, {there} there"
    );
}

/// What a bump-in-the-wire service function does: a frame out to `from` (its entry port
/// in this direction) comes back in by `to`.
const WIRE: [(u32, u32); 4] = [
    (SF_IN, SF_OUT),
    (SF_OUT, SF_IN),
    (SF2_IN, SF2_OUT),
    (SF2_OUT, SF2_IN),
];

/// Sends `f` from `port` on `sim`, then plays every service function it reaches until the
/// frame leaves by another port (a VM or the tunnel): that port and the service
/// function ports it passed. Panics past 8 passes (a loop).
fn through(sim: &mut Sim, port: u32, f: &[u8]) -> (u32, Vec<u32>) {
    let mut passed = Vec::new();
    let mut out = sim.send(port, f).frames();
    for _ in 0..8 {
        assert_eq!(out.len(), 1, "one copy: {out:?}");
        let (p, frame) = out.remove(0);
        let Some((_, back)) = WIRE.iter().find(|(to, _)| *to == p) else {
            return (p, passed);
        };
        passed.push(p);
        out = sim.send(*back, &frame).frames();
    }
    panic!("looped through {passed:?}");
}

#[test]
fn a_service_function_port_that_is_also_a_source_never_loops() {
    // The API refuses it; the datapath holds anyway: what the service function sends
    // on after its hop is never classified into the chain again.
    let mut sim = host("h");
    let mut c = chain(vec![pair("pp", "sf-in", "sf-out", 1)]);
    let mut again = c.classifiers[0].clone();
    again.id = "fc2".into();
    again.logical_source_port = Some("sf-out".into());
    c.classifiers.push(again);
    sim.put(&c);
    let f = a_to_b(1000, 7000);
    assert_eq!(through(&mut sim, A, &f), (B, vec![SF_IN]), "once through");
    // A port of two hops: out of it after either, the frame only goes forward.
    let mut sim = host("h");
    let mut c = chain(vec![pair("pp", "sf-in", "sf-out", 1)]);
    c.path.push(Hop {
        group: "g2".into(),
        pairs: vec![pair("pp2", "sf2-in", "sf-out", 1)],
    });
    sim.put(&c);
    let (to, passed) = through(&mut sim, A, &f);
    assert_eq!(to, B, "{passed:?}");
    assert!(passed.len() <= 2, "{passed:?}");
    // A second chain whose source is the first one's service function egress port, with
    // the same classifier: out of that port, the first chain's frame goes on (one flow
    // wins whatever the order the chains came in), not into the second chain.
    let mut sim = host("h");
    let first = chain(vec![pair("pp", "sf-in", "sf-out", 1)]);
    let mut second = chain(vec![pair("pp2", "sf2-in", "sf2-out", 1)]);
    second.meta = fixtures::meta("pc2");
    second.chain_id = CHAIN_ID + 1;
    second.classifiers[0].logical_source_port = Some("sf-out".into());
    sim.put(&second);
    sim.put(&first);
    assert_eq!(through(&mut sim, A, &f), (B, vec![SF_IN]), "once through");
    sim.delete(model::Table::SfcPortChain, "pc");
    sim.put(&first);
    assert_eq!(through(&mut sim, A, &f), (B, vec![SF_IN]), "once through");
}

/// Chain 7 through sf (on h) then sf2 (on o), symmetric: UDP to 7000 from a to b.
fn symmetric_chain() -> PortChain {
    let mut c = chain(vec![pair("pp", "sf-in", "sf-out", 1)]);
    c.path.push(Hop {
        group: "g2".into(),
        pairs: vec![pair("pp2", "sf2-in", "sf2-out", 1)],
    });
    c.symmetric = true;
    c.classifiers[0].logical_destination_port = Some("b".into());
    c
}

/// The label stack entry of an MPLS frame: (label, tc).
fn lse(frame: &[u8]) -> (u32, u32) {
    assert_eq!(u16::from_be_bytes([frame[12], frame[13]]), ETH_MPLS);
    let lse = u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]]);
    (lse >> 12, (lse >> 9) & 7)
}

/// A frame that came over the tunnel.
fn from_tunnel(sim: &mut Sim, frame: &[u8]) -> (u32, Vec<u8>) {
    let mut pkt = fake_switch::Packet::new(TUNNEL, frame.to_vec());
    pkt.tun_id = 1;
    let out = sim.send_packet(pkt).frames();
    assert_eq!(out.len(), 1, "{out:?}");
    out[0].clone()
}

#[test]
fn a_symmetric_chain_takes_the_answers_back_through_its_functions_in_reverse() {
    let mut h = host("h");
    let mut o = host("o");
    let c = symmetric_chain();
    h.put(&c);
    o.put(&c);
    // Forward: sf on h, then sf2 on o (hop 1 in the label), then b.
    let f = a_to_b(1000, 7000);
    assert_eq!(h.send(A, &f).frames(), vec![(SF_IN, f.clone())]);
    let out = h.send(SF_OUT, &f).frames();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].0, lse(&out[0].1)), (TUNNEL, (CHAIN_ID << 4 | 1, 0)));
    assert_eq!(from_tunnel(&mut o, &out[0].1), (SF2_IN, f.clone()));
    assert_eq!(o.send(SF2_OUT, &f).frames(), vec![(TUNNEL, f.clone())]);
    // The answer, b to a from port 7000: sf2 first (entered by its egress port, the
    // reverse direction in the TC bits), then sf (by its egress port too), then a.
    let back = udp_frame(mac(6), mac(5), (ip(6), 7000), (ip(5), 1000));
    let out = h.send(B, &back).frames();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].0, lse(&out[0].1)), (TUNNEL, (CHAIN_ID << 4, 2)));
    assert_eq!(from_tunnel(&mut o, &out[0].1), (SF2_OUT, back.clone()));
    let out = o.send(SF2_IN, &back).frames();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].0, lse(&out[0].1)), (TUNNEL, (CHAIN_ID << 4 | 1, 2)));
    assert_eq!(from_tunnel(&mut h, &out[0].1), (SF_OUT, back.clone()));
    assert_eq!(h.send(SF_IN, &back).frames(), vec![(A, back.clone())]);
    // Only the answer: b to a to another port, or from another port, goes straight.
    let other = udp_frame(mac(6), mac(5), (ip(6), 7001), (ip(5), 1000));
    assert_eq!(h.send(B, &other).frames(), vec![(A, other.clone())]);
    // Not symmetric: the answer goes straight.
    let plain = PortChain {
        symmetric: false,
        ..c.clone()
    };
    h.put(&plain);
    assert_eq!(h.send(B, &back).frames(), vec![(A, back.clone())]);
    h.delete(model::Table::SfcPortChain, "pc");
    o.delete(model::Table::SfcPortChain, "pc");
    no_chain_left(&h);
    no_chain_left(&o);
}

#[test]
fn a_symmetric_chain_on_one_host_needs_no_tunnel() {
    let mut sim = host("h");
    let mut c = chain(vec![pair("pp", "sf-in", "sf-out", 1)]);
    c.symmetric = true;
    c.classifiers[0].logical_destination_port = Some("b".into());
    sim.put(&c);
    let f = a_to_b(1000, 7000);
    assert_eq!(through(&mut sim, A, &f), (B, vec![SF_IN]));
    let back = udp_frame(mac(6), mac(5), (ip(6), 7000), (ip(5), 1000));
    assert_eq!(through(&mut sim, B, &back), (A, vec![SF_OUT]));
}
