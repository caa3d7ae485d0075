//! What the app tests share: putting a compiled pipeline (groups, then flows) into a
//! fake switch, as the runtime's bundle would into a real one; a real Open vSwitch and a
//! session to it; the group "open" and ports in it; MACs and UDP frames; the pseudo-random
//! bytes the fuzz loops send.

#![allow(dead_code)]

pub mod fwaas;
pub mod lb;
pub mod sim;

use controller::apps::Desired;
use controller::reconcile::GroupDiff;
use controller::switch::Session;
use controller::view::record;
use fake_switch::Switch;
use model::{Direction, Port, fixtures};
use openflow::flow::FlowMod;
use packet::ethernet::{EtherType, EthernetAddress, EthernetRepr};
use packet::ipv4::Ipv4Repr;
use packet::udp::UdpRepr;
use std::net::{IpAddr, Ipv4Addr};

/// Installs everything `desired` holds into an empty `sw`.
pub fn install(sw: &mut Switch, desired: &Desired) {
    apply(
        sw,
        &desired.table().diff(&Default::default()),
        &desired.groups().diff(&Default::default()),
    );
}

/// Applies a change in the order the runtime's bundle does: new and changed groups, the
/// flows, then the groups no flow uses any more.
pub fn apply(sw: &mut Switch, flows: &[FlowMod], groups: &GroupDiff) {
    for g in &groups.before {
        sw.apply_group_mod(g)
            .unwrap_or_else(|e| panic!("{e}: {g:?}"));
    }
    for m in flows {
        sw.apply_flow_mod(m)
            .unwrap_or_else(|e| panic!("{e}: {m:?}"));
    }
    for g in &groups.after {
        sw.apply_group_mod(g)
            .unwrap_or_else(|e| panic!("{e}: {g:?}"));
    }
}

/// Group "open": everything in and out (ports with port security on and no group get
/// nothing, as in Neutron).
pub fn open_group() -> Vec<nbdb::Record> {
    let rule = fixtures::security_group_rule;
    vec![
        record(&fixtures::security_group("open"), 1),
        record(&rule("open-in", "open", Direction::Ingress), 1),
        record(&rule("open-out", "open", Direction::Egress), 1),
    ]
}

/// Port `id` of network "n" with key `n`, MAC fa:16:3e:00:00:n and address 10.0.0.n on
/// `host`, in group "open".
pub fn open_port(id: &str, n: u8, host: &str) -> Port {
    Port {
        fixed_ips: vec![fixtures::fixed_ip("s", &format!("10.0.0.{n}"))],
        security_groups: vec!["open".into()],
        ..fixtures::port(id, "n", n.into(), host)
    }
}

/// Puts group "open" and its two rules into the harness's store.
pub fn put_open_group(sim: &mut sim::Sim) {
    sim.put(&fixtures::security_group("open"));
    for (id, d) in [
        ("open-in", Direction::Ingress),
        ("open-out", Direction::Egress),
    ] {
        sim.put(&fixtures::security_group_rule(id, "open", d));
    }
}

/// The same stream of pseudo-random numbers every run (xorshift).
pub fn rng() -> impl FnMut() -> u64 {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// A real Open vSwitch with the integration bridge br-int (the real-switch tests run as
/// root only).
pub fn ovs() -> testbed::Ovs {
    let ovs = testbed::Ovs::start().expect("ovs");
    ovs.add_bridge("br-int").expect("bridge");
    ovs
}

/// An OpenFlow session to `ovs`'s br-int.
pub async fn session(ovs: &testbed::Ovs) -> Session<tokio::net::UnixStream> {
    Session::connect_unix(&ovs.mgmt_sock("br-int"))
        .await
        .expect("session")
}

/// The MAC fa:16:3e:00:00:n.
pub fn mac(n: u8) -> [u8; 6] {
    [0xfa, 0x16, 0x3e, 0, 0, n]
}

/// A UDP datagram (payload "hello", checksummed) from `src` to `dst` in an Ethernet frame
/// from MAC `from` to `to`.
/// [`udp_frame`] over IPv6 (hop limit 64).
pub fn udp6_frame(
    from: [u8; 6],
    to: [u8; 6],
    (src, sport): (std::net::Ipv6Addr, u16),
    (dst, dport): (std::net::Ipv6Addr, u16),
) -> Vec<u8> {
    let l4 = UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload: b"hello",
    }
    .build(&IpAddr::V6(src), &IpAddr::V6(dst));
    let ip =
        packet::ipv6::Ipv6Repr::new(src, dst, packet::IpProtocol::Udp, l4.len(), 64).build(&l4);
    EthernetRepr {
        src_addr: EthernetAddress(from),
        dst_addr: EthernetAddress(to),
        vlan: None,
        ethertype: EtherType::Ipv6,
    }
    .build(&ip)
}

pub fn udp_frame(
    from: [u8; 6],
    to: [u8; 6],
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
) -> Vec<u8> {
    let l4 = UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload: b"hello",
    }
    .build(&IpAddr::V4(src), &IpAddr::V4(dst));
    let ip = Ipv4Repr::new(src, dst, packet::IpProtocol::Udp, l4.len()).build(&l4);
    EthernetRepr {
        src_addr: EthernetAddress(from),
        dst_addr: EthernetAddress(to),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&ip)
}
