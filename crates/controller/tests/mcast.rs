//! IGMP/MLD snooping on the fake switch: reports from local ports reach the controller,
//! which registers the port and writes this host's record to the store; the group's
//! traffic goes to its listeners and to the hosts whose records say they have some, and
//! to nobody else; leaves and aging take a port out; link-local groups are flooded;
//! unregistered groups dropped or flooded by the network's tags; a querier runs until a
//! router queries; a port flooding reports is blocked in the switch.
//!
//! Network n (key 1, VNI 1, tag `mcast_snoop`) with local VMs a, b, c at OpenFlow ports
//! 1, 2, 3 (10.0.0.1-3, group "open") and d on host o (192.0.2.2); this host h has its
//! Geneve port at 99.

mod support;

use controller::apps::Settings;
use controller::apps::mcast::snoop::{Config, Snoop};
use model::{McastGroup, Network, Table, fixtures};
use packet::EthernetAddress;
use packet::checksum;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use support::sim::Sim;
use support::{mac, open_port, put_open_group, udp_frame};

const TUNNEL: u32 = 99;
const G: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);

fn settings() -> Settings {
    Settings {
        mcast: Config {
            rate: 20,
            block: Duration::from_secs(10),
            query_interval: Duration::from_secs(4),
            response: Duration::from_secs(1),
        },
        ..Settings::default()
    }
}

fn network(tags: &[&str]) -> Network {
    let mut n = Network {
        subnets: vec!["s".into()],
        ..fixtures::network("n", 1)
    };
    n.meta.tags = tags.iter().map(|t| t.to_string()).collect();
    n
}

fn world(tags: &[&str]) -> Sim {
    let mut sim = Sim::with("h", TUNNEL, &[], &settings());
    sim.chassis("o", "192.0.2.2");
    sim.put(&network(tags));
    sim.put(&fixtures::subnet("s", "n", "10.0.0.0/24"));
    put_open_group(&mut sim);
    for (id, n) in [("a", 1u8), ("b", 2), ("c", 3)] {
        sim.put(&open_port(id, n, "h"));
        sim.plug(id, n.into());
    }
    sim.put(&open_port("d", 4, "o"));
    sim
}

/// An IGMP message from VM `n` (10.0.0.n) to `dst`.
fn igmp(n: u8, dst: Ipv4Addr, mut msg: Vec<u8>) -> Vec<u8> {
    let c = !checksum::data(&msg);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    let total = u16::try_from(24 + msg.len()).unwrap();
    let mut ip = vec![0x46, 0xc0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 1, 2, 0, 0, 10, 0, 0, n]);
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&[0x94, 4, 0, 0]);
    let c = !checksum::data(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&msg);
    let mut f = packet::mcast::ipv4_multicast_mac(dst).0.to_vec();
    f.extend_from_slice(&mac(n));
    f.extend_from_slice(&[8, 0]);
    f.extend_from_slice(&ip);
    f
}

/// An IGMPv3 report from VM `n`: one record of `kind` (4 join, 3 leave) for `g`.
fn v3_report(n: u8, kind: u8, g: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![0x22, 0, 0, 0, 0, 0, 0, 1, kind, 0, 0, 0];
    m.extend_from_slice(&g.octets());
    igmp(n, Ipv4Addr::new(224, 0, 0, 22), m)
}

fn v2_leave(n: u8, g: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![0x17, 0, 0, 0];
    m.extend_from_slice(&g.octets());
    igmp(n, Ipv4Addr::new(224, 0, 0, 2), m)
}

/// A UDP datagram from VM `n` to group `g`.
fn to_group(n: u8, g: Ipv4Addr) -> Vec<u8> {
    udp_frame(
        mac(n),
        packet::mcast::ipv4_multicast_mac(g).0,
        (Ipv4Addr::new(10, 0, 0, n), 5000),
        (g, 5001),
    )
}

fn ports(sim: &mut Sim, from: u8, frame: &[u8]) -> Vec<u32> {
    let out = sim.send(from.into(), frame).outcome;
    let mut p = out.ports();
    p.sort_unstable();
    p
}

fn records(sim: &Sim) -> Vec<String> {
    sim.stored(Table::McastGroup)
}

#[test]
fn a_join_brings_the_group_to_its_listener_only_and_is_written_to_the_store() {
    let mut sim = world(&["mcast_snoop"]);
    assert_eq!(
        ports(&mut sim, 3, &to_group(3, G)),
        Vec::<u32>::new(),
        "nobody joined: dropped"
    );
    let sent = sim.send(1, &v3_report(1, 4, G));
    assert_eq!(sent.outcome.to_controller.len(), 1, "the report is punted");
    assert!(
        sent.outcome.outputs.is_empty(),
        "and not flooded (hosts would suppress theirs)"
    );
    assert_eq!(sim.handler::<Snoop>().stats.joins, 1);
    assert_eq!(ports(&mut sim, 3, &to_group(3, G)), vec![1]);
    sim.wait(Duration::from_millis(200));
    assert_eq!(
        records(&sim),
        vec![format!("n/h/{G}")],
        "this host's record"
    );
    // Another host with listeners gets one copy through its tunnel.
    sim.put_mcast(&McastGroup::new("n", IpAddr::V4(G), "o"));
    let out = sim.send(3, &to_group(3, G)).outcome;
    let mut got: Vec<(u32, u32)> = out.outputs.iter().map(|o| (o.port, o.tun_dst)).collect();
    got.sort_unstable();
    assert_eq!(
        got,
        vec![(1, 0), (TUNNEL, u32::from(Ipv4Addr::new(192, 0, 2, 2)))]
    );
    // Another group is still nobody's.
    assert!(ports(&mut sim, 3, &to_group(3, Ipv4Addr::new(239, 1, 1, 2))).is_empty());
}

#[test]
fn a_leave_takes_the_port_out_at_once_and_the_record_goes() {
    let mut sim = world(&["mcast_snoop"]);
    sim.send(1, &v3_report(1, 4, G));
    sim.send(2, &v3_report(2, 4, G));
    assert_eq!(ports(&mut sim, 3, &to_group(3, G)), vec![1, 2]);
    sim.send(2, &v2_leave(2, G));
    assert_eq!(ports(&mut sim, 3, &to_group(3, G)), vec![1]);
    // IGMPv3 TO_IN({}) leaves too.
    sim.send(1, &v3_report(1, 3, G));
    assert!(ports(&mut sim, 3, &to_group(3, G)).is_empty());
    sim.wait(Duration::from_secs(3));
    assert!(records(&sim).is_empty(), "{:?}", records(&sim));
}

#[test]
fn listeners_age_out_without_reports() {
    let mut sim = world(&["mcast_snoop"]);
    sim.send(1, &v3_report(1, 4, G));
    // Timeout: 2 x 4 s + 1 s.
    sim.wait(Duration::from_secs(8));
    assert_eq!(ports(&mut sim, 3, &to_group(3, G)), vec![1]);
    sim.wait(Duration::from_millis(1200));
    assert!(ports(&mut sim, 3, &to_group(3, G)).is_empty());
    assert_eq!(sim.handler::<Snoop>().stats.expired, 1);
}

#[test]
fn link_local_groups_are_flooded_and_unregistered_ones_by_tag() {
    let mut sim = world(&["mcast_snoop"]);
    sim.put_mcast(&McastGroup::new("n", IpAddr::V4(G), "o"));
    let mdns = Ipv4Addr::new(224, 0, 0, 251);
    assert_eq!(ports(&mut sim, 3, &to_group(3, mdns)), vec![1, 2, TUNNEL]);
    let unreg = Ipv4Addr::new(239, 9, 9, 9);
    assert!(ports(&mut sim, 3, &to_group(3, unreg)).is_empty());
    sim.put(&network(&["mcast_flood_unregistered", "mcast_snoop"]));
    assert_eq!(ports(&mut sim, 3, &to_group(3, unreg)), vec![1, 2, TUNNEL]);
    // A network that does not snoop floods everything, as before.
    sim.put(&network(&[]));
    assert_eq!(ports(&mut sim, 3, &to_group(3, G)), vec![1, 2, TUNNEL]);
}

#[test]
fn from_the_tunnel_only_local_listeners_get_the_group() {
    let mut sim = world(&["mcast_snoop"]);
    let from_tunnel = |sim: &mut Sim| {
        let mut pkt = fake_switch::Packet::new(TUNNEL, to_group(4, G));
        pkt.tun_id = 1;
        let mut p = sim.send_packet(pkt).outcome.ports();
        p.sort_unstable();
        p
    };
    assert!(from_tunnel(&mut sim).is_empty());
    sim.send(2, &v3_report(2, 4, G));
    assert_eq!(
        from_tunnel(&mut sim),
        vec![2],
        "never back into the underlay"
    );
}

#[test]
fn the_querier_queries_every_local_port_until_a_router_does() {
    let mut sim = world(&["mcast_snoop"]);
    let queries =
        |p: &[controller::apps::Punted]| -> usize { p.iter().map(|x| x.packets.len()).sum() };
    let first = sim.wait(Duration::from_millis(300));
    // One IGMP and one MLD general query to each of the three ports.
    assert_eq!(queries(&first), 6);
    for q in first.iter().flat_map(|p| &p.packets) {
        let m = packet::mcast::parse_frame(&q.data).expect("a query");
        assert!(matches!(
            m.message,
            packet::mcast::Message::Query { group: None, .. }
        ));
    }
    assert_eq!(
        queries(&sim.wait(Duration::from_secs(4))),
        6,
        "one round per interval"
    );
    // A router in VM c queries: its query reaches a and b, and ours stop.
    let q = vec![0x11, 100, 0, 0, 0, 0, 0, 0, 2, 125, 0, 0];
    let sent = sim.send(3, &igmp(3, Ipv4Addr::new(224, 0, 0, 1), q));
    let mut to: Vec<u32> = sent.answers.iter().flat_map(|a| a.ports()).collect();
    to.sort_unstable();
    assert_eq!(to, vec![1, 2]);
    assert_eq!(queries(&sim.wait(Duration::from_secs(8))), 0);
}

#[test]
fn a_port_flooding_reports_is_blocked_in_the_switch() {
    let mut sim = world(&["mcast_snoop"]);
    for i in 0..60u8 {
        sim.send(1, &v3_report(1, 4, Ipv4Addr::new(239, 2, 0, i)));
    }
    let s = &sim.handler::<Snoop>().stats;
    assert_eq!(s.blocks, 1);
    assert!(s.joins <= 21, "{s:?}");
    // Blocked: its reports no longer reach the controller; another port's still do.
    assert!(
        sim.send(1, &v3_report(1, 4, G))
            .outcome
            .to_controller
            .is_empty()
    );
    assert_eq!(
        sim.send(2, &v3_report(2, 4, G)).outcome.to_controller.len(),
        1
    );
    // The block ends with its hard timeout.
    sim.wait(Duration::from_secs(11));
    assert_eq!(
        sim.send(1, &v3_report(1, 4, G)).outcome.to_controller.len(),
        1
    );
}

#[test]
fn mld_reports_register_ipv6_groups() {
    let mut sim = world(&["mcast_snoop"]);
    // The default group's IPv6 egress rule.
    sim.put(&model::SecurityGroupRule {
        ethertype: model::EtherType::IPv6,
        ..fixtures::security_group_rule("open-out6", "open", model::Direction::Egress)
    });
    let g6: Ipv6Addr = "ff15::1234".parse().unwrap();
    let src = packet::ipv6::link_local(mac(1));
    let dst: Ipv6Addr = "ff02::16".parse().unwrap();
    let mut m = vec![143, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0];
    m.extend_from_slice(&g6.octets());
    let c = checksum::with_pseudo_header(&IpAddr::V6(src), &IpAddr::V6(dst), 58, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&u16::try_from(8 + m.len()).unwrap().to_be_bytes());
    ip.extend_from_slice(&[0, 1]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&[58, 0, 5, 2, 0, 0, 1, 0]);
    ip.extend_from_slice(&m);
    let mut f = EthernetAddress::ipv6_multicast(&dst).0.to_vec();
    f.extend_from_slice(&mac(1));
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&ip);
    let out = sim.send(1, &f).outcome;
    assert_eq!(out.to_controller.len(), 1, "{out}");
    sim.wait(Duration::from_millis(200));
    assert_eq!(records(&sim), vec![format!("n/h/{g6}")]);
}
