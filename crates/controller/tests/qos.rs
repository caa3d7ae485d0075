//! QoS on the fake switch, through the engine: a port's DSCP mark on the frames it sends
//! (its own policy, else its network's), its meters committed with its flows, a rule
//! change as a meter modify, and everything gone with the policy.

mod support;

use controller::apps::Settings;
use controller::apps::qos::meter_id;
use model::{
    Network, Port, PortStatus, QosDirection, QosPolicy, QosRule, QosRuleKind, Table, fixtures,
};
use openflow::flow::MeterBand;
use packet::ethernet::{EtherType, EthernetRepr};
use packet::ipv4::Ipv4Repr;
use packet::udp::UdpRepr;
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv4Addr};
use support::sim::Sim;

const A: u32 = 1;
const B: u32 = 2;

fn mac(n: u8) -> [u8; 6] {
    [0xfa, 0x16, 0x3e, 0, 0, n]
}

fn port(id: &str, n: u8) -> Port {
    Port {
        mac_address: model::MacAddr(mac(n)),
        fixed_ips: vec![fixtures::fixed_ip("s1", &format!("10.1.0.{n}"))],
        status: PortStatus::Down,
        security_groups: vec!["open".into()],
        ..fixtures::port(id, "n1", n.into(), "")
    }
}

fn policy(id: &str, rules: Vec<QosRuleKind>) -> QosPolicy {
    QosPolicy {
        meta: fixtures::meta(id),
        shared: false,
        is_default: false,
        rules: rules
            .into_iter()
            .enumerate()
            .map(|(i, kind)| QosRule {
                id: format!("{id}-{i}"),
                kind,
            })
            .collect(),
        deleting: false,
    }
}

fn limit(max_kbps: u32, direction: QosDirection) -> QosRuleKind {
    QosRuleKind::BandwidthLimit {
        max_kbps,
        max_burst_kbps: 0,
        direction,
    }
}

fn world() -> Sim {
    let mut sim = Sim::with("h", 100, &[], &Settings::default());
    sim.put(&fixtures::security_group("open"));
    for (r, d) in [
        ("in", model::Direction::Ingress),
        ("out", model::Direction::Egress),
    ] {
        sim.put(&fixtures::security_group_rule(r, "open", d));
    }
    sim.put(&Network {
        subnets: vec!["s1".into()],
        ..fixtures::network("n1", 1)
    });
    sim.put(&fixtures::subnet("s1", "n1", "10.1.0.0/24"));
    sim.put(&port("a", 3));
    sim.put(&port("b", 4));
    sim.plug("a", A);
    sim.plug("b", B);
    sim
}

/// A UDP frame from port a to port b.
fn a_to_b() -> Vec<u8> {
    let (sip, dip) = (Ipv4Addr::new(10, 1, 0, 3), Ipv4Addr::new(10, 1, 0, 4));
    let udp = UdpRepr {
        src_port: 4000,
        dst_port: 5000,
        payload: b"qos",
    }
    .build(&IpAddr::V4(sip), &IpAddr::V4(dip));
    let ip = Ipv4Repr::new(sip, dip, IpProtocol::Udp, udp.len()).build(&udp);
    EthernetRepr {
        src_addr: EthernetAddress(mac(3)),
        dst_addr: EthernetAddress(mac(4)),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&ip)
}

/// The DSCP of the frame a sends that reaches b.
fn dscp_at_b(sim: &mut Sim) -> u8 {
    let out = sim.send(A, &a_to_b());
    let frames = out.frames();
    assert_eq!(frames.len(), 1, "{:?}", out.outcome.log);
    assert_eq!(frames[0].0, B);
    // Ethernet (14 bytes), then the IPv4 header's second byte: DSCP and ECN.
    frames[0].1[15] >> 2
}

fn meter_rate(sim: &Sim, id: u32) -> Option<u32> {
    sim.core
        .desired()
        .groups()
        .meter(id)
        .map(|m| match m.bands[..] {
            [MeterBand::Drop { rate, .. }] => rate,
            _ => panic!("{m:?}"),
        })
}

#[test]
fn a_port_policy_marks_and_meters_and_goes_away() {
    let mut sim = world();
    assert_eq!(dscp_at_b(&mut sim), 0);
    sim.put(&policy(
        "q",
        vec![
            QosRuleKind::DscpMarking { dscp_mark: 46 },
            limit(10_000, QosDirection::Egress),
            limit(5_000, QosDirection::Ingress),
        ],
    ));
    sim.put(&Port {
        qos_policy_id: Some("q".into()),
        ..port("a", 3)
    });
    sim.check();
    assert_eq!(dscp_at_b(&mut sim), 46, "EF: tos 0xb8");
    let (eg, ing) = (
        meter_id(3, QosDirection::Egress).unwrap(),
        meter_id(3, QosDirection::Ingress).unwrap(),
    );
    assert_eq!(meter_rate(&sim, eg), Some(10_000));
    assert_eq!(meter_rate(&sim, ing), Some(5_000));
    // A rule change: the same meter, a new rate (a modify when committed).
    sim.put(&policy(
        "q",
        vec![
            QosRuleKind::DscpMarking { dscp_mark: 10 },
            limit(20_000, QosDirection::Egress),
        ],
    ));
    sim.check();
    assert_eq!(dscp_at_b(&mut sim), 10);
    assert_eq!(meter_rate(&sim, eg), Some(20_000));
    assert_eq!(meter_rate(&sim, ing), None, "no ingress limit any more");
    // The policy off the port: no mark, no meter.
    sim.put(&port("a", 3));
    sim.check();
    assert_eq!(dscp_at_b(&mut sim), 0);
    assert_eq!(meter_rate(&sim, eg), None);
}

#[test]
fn a_network_policy_applies_to_ports_without_their_own() {
    let mut sim = world();
    sim.put(&policy(
        "net",
        vec![QosRuleKind::DscpMarking { dscp_mark: 26 }],
    ));
    sim.put(&policy(
        "own",
        vec![QosRuleKind::DscpMarking { dscp_mark: 46 }],
    ));
    sim.put(&Network {
        subnets: vec!["s1".into()],
        qos_policy_id: Some("net".into()),
        ..fixtures::network("n1", 1)
    });
    sim.check();
    assert_eq!(dscp_at_b(&mut sim), 26, "the network's");
    sim.put(&Port {
        qos_policy_id: Some("own".into()),
        ..port("a", 3)
    });
    sim.check();
    assert_eq!(dscp_at_b(&mut sim), 46, "the port's own wins");
    // The network's policy deleted (the API refuses while in use; the host copes).
    sim.put(&port("a", 3));
    sim.delete(Table::QosPolicy, "net");
    sim.check();
    assert_eq!(dscp_at_b(&mut sim), 0);
}
