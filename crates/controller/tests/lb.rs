//! Distributed load balancing on the fake switch (issue 23): a client's datagrams to the
//! VIP are spread over the members (a local one and one behind the tunnel), one
//! connection stays on its member, replies come back from the VIP, members that take no
//! traffic get none, an established connection survives a member added, the VIP is
//! answered by ARP in the switch, a SOURCE_IP pool keeps each client on one member, and a
//! member balanced to itself (hairpin) is source-NATed to the VIP both ways; an IPv6 VIP
//! does the same (balancing, hairpin, SOURCE_IP persistence under an IPv6 granularity).

mod support;

use model::lb::{LoadBalancer, Member};
use model::{Network, Port, fixtures};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use support::lb::*;
use support::sim::Sim;
use support::{mac, open_port, udp_frame, udp6_frame};

#[test]
fn connections_spread_over_members_and_stay_on_theirs() {
    let mut sim = world(vec![member("m1", 11, 1), member("m2", 12, 1)]);
    let mut seen: BTreeMap<Ipv4Addr, usize> = BTreeMap::new();
    let mut first = BTreeMap::new();
    for sport in 1000..1064u16 {
        let out = to_vip(&mut sim, sport);
        assert_eq!(out.len(), 1, "one copy, to one member: {out:?}");
        let (port, addr, dport, eth) = out[0];
        assert_eq!(dport, 5353, "the member's port");
        match addr.octets()[3] {
            11 => {
                assert_eq!(port, LOCAL_MEMBER);
                assert_eq!(eth, mac(11));
            }
            12 => {
                assert_eq!(port, TUNNEL);
                assert_eq!(eth, mac(12));
            }
            _ => panic!("to {addr}"),
        }
        *seen.entry(addr).or_default() += 1;
        first.insert(sport, addr);
    }
    assert_eq!(seen.len(), 2, "both members get connections: {seen:?}");
    assert!(seen.values().all(|n| *n >= 16), "roughly even: {seen:?}");
    // The same connection again: the same member, whatever the hash would say now.
    for sport in 1000..1016u16 {
        let out = to_vip(&mut sim, sport);
        assert_eq!(out[0].1, first[&sport], "connection {sport} moved");
    }
}

#[test]
fn replies_come_back_from_the_vip() {
    let mut sim = world(vec![member("m1", 11, 1)]);
    let out = to_vip(&mut sim, 4000);
    assert_eq!(out[0].0, LOCAL_MEMBER);
    let reply = udp_frame(
        mac(11),
        mac(5),
        (Ipv4Addr::new(10, 0, 0, 11), 5353),
        (CLIENT_IP, 4000),
    );
    let frames = sim.send(LOCAL_MEMBER, &reply).frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].0, CLIENT);
    assert_eq!(src(&frames[0].1), (VIP, 53), "un-NATed to the VIP");
    // A datagram from the member that no balanced connection explains is left alone
    // (and filtered as ever: the open group lets it in).
    let direct = udp_frame(
        mac(11),
        mac(5),
        (Ipv4Addr::new(10, 0, 0, 11), 5353),
        (CLIENT_IP, 4001),
    );
    let frames = sim.send(LOCAL_MEMBER, &direct).frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(src(&frames[0].1), (Ipv4Addr::new(10, 0, 0, 11), 5353));
}

#[test]
fn members_that_take_no_traffic_get_none_and_established_connections_stay() {
    let mut down = member("m2", 12, 1);
    down.admin_state_up = false;
    let mut sim = world(vec![member("m1", 11, 1), down, member("m3", 13, 0)]);
    for sport in 2000..2032u16 {
        let out = to_vip(&mut sim, sport);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].1,
            Ipv4Addr::new(10, 0, 0, 11),
            "only m1 takes traffic"
        );
    }
    // m2 comes up (a bucket added): established connections stay on m1, new ones spread.
    sim.put(&balancer(vec![member("m1", 11, 1), member("m2", 12, 1)]));
    for sport in 2000..2032u16 {
        assert_eq!(to_vip(&mut sim, sport)[0].1, Ipv4Addr::new(10, 0, 0, 11));
    }
    let fresh: Vec<Ipv4Addr> = (3000..3032u16).map(|s| to_vip(&mut sim, s)[0].1).collect();
    assert!(fresh.contains(&Ipv4Addr::new(10, 0, 0, 12)), "{fresh:?}");
    // The balancer goes: the VIP is no longer balanced, and nothing of it stays.
    sim.delete(model::Table::LoadBalancer, "lb");
    assert!(to_vip(&mut sim, 5000).is_empty(), "nothing answers the VIP");
    for t in 0..=255u8 {
        assert!(
            !sim.switch
                .flows(t)
                .iter()
                .any(|f| f.cookie >> 56 == 17 && f.cookie & 0xffff_ffff == 7),
            "a flow of the balancer stayed in table {t}"
        );
    }
    assert!(
        sim.switch
            .groups()
            .get(controller::apps::lb::group_id(7, 0))
            .is_none()
    );
}

fn arp_request(from: [u8; 6], ip: Ipv4Addr, for_ip: Ipv4Addr) -> Vec<u8> {
    use packet::EthernetAddress;
    use packet::arp::{self, ArpRepr, Operation};
    use packet::ethernet::{EtherType, EthernetRepr};
    let req = ArpRepr {
        operation: Operation::Request,
        source_hardware_addr: EthernetAddress(from),
        source_protocol_addr: ip,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: for_ip,
    };
    let mut body = vec![0u8; req.buffer_len()];
    req.emit(&mut arp::Packet::new_unchecked(&mut body[..]));
    EthernetRepr {
        src_addr: EthernetAddress(from),
        dst_addr: EthernetAddress::BROADCAST,
        vlan: None,
        ethertype: EtherType::Arp,
    }
    .build(&body)
}

#[test]
fn the_vip_is_answered_by_arp_and_a_disabled_balancer_compiles_nothing() {
    let mut sim = world(vec![member("m1", 11, 1)]);
    let frames = sim
        .send(CLIENT, &arp_request(mac(5), CLIENT_IP, VIP))
        .frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(
        &frames[0].1[22..28],
        &fixtures::mac(100).0,
        "the VIP port's MAC"
    );
    let mut off = balancer(vec![member("m1", 11, 1)]);
    off.admin_state_up = false;
    sim.put(&off);
    assert!(to_vip(&mut sim, 6000).is_empty());
}

/// The balancer with SOURCE_IP session persistence (`timeout`, when given).
fn sticky(members: Vec<Member>, timeout: Option<i64>) -> LoadBalancer {
    let mut lb = balancer(members);
    lb.pools[0].lb_algorithm = model::lb::Algorithm::RoundRobin;
    lb.pools[0].session_persistence = Some(model::lb::SessionPersistence {
        kind: "SOURCE_IP".into(),
        persistence_timeout: timeout,
        persistence_granularity: None,
    });
    lb
}

/// The member (last octet) every one of `n` new connections of client 10.0.0.`last`
/// reached, each from another source port; panics when they went to different members.
fn pinned(sim: &mut Sim, ofport: u32, last: u8, ports: std::ops::Range<u16>) -> u8 {
    let got: std::collections::BTreeSet<u8> = ports
        .map(|sport| {
            let out = from_client(sim, ofport, last, sport);
            assert_eq!(out.len(), 1, "one copy, to one member: {out:?}");
            out[0].1.octets()[3]
        })
        .collect();
    assert_eq!(got.len(), 1, "client .{last} went to members {got:?}");
    got.into_iter().next().unwrap_or_default()
}

/// Client port c2 (10.0.0.6) on host h, plugged at OpenFlow port 3.
const CLIENT2: u32 = 3;

#[test]
fn source_ip_persistence_keeps_each_client_on_one_member() {
    let mut sim = world(vec![member("m1", 11, 1), member("m2", 12, 1)]);
    sim.put(&open_port("c2", 6, "h"));
    sim.plug("c2", CLIENT2);
    sim.put(&sticky(
        vec![member("m1", 11, 1), member("m2", 12, 1)],
        None,
    ));
    // Many new connections (another source port each): one member per client.
    let first = pinned(&mut sim, CLIENT, 5, 7000..7048);
    let second = pinned(&mut sim, CLIENT2, 6, 7000..7048);
    assert!([11, 12].contains(&first) && [11, 12].contains(&second));
    // The memory is a flow learned in 24 with Octavia's default idle timeout.
    assert_eq!(learn_timeouts(&sim), [360, 360]);
    assert_eq!(sim.switch.flows(24).len(), 3, "two learned, one default");
    // Its member disabled: the client moves to the other, and stays there once it is
    // back (the new choice replaced the memory).
    let other = if first == 11 { 12 } else { 11 };
    let with = |down: Option<u8>| {
        [("m1", 11), ("m2", 12)]
            .into_iter()
            .map(|(id, last)| {
                let mut m = member(id, last, 1);
                m.admin_state_up = Some(last) != down;
                m
            })
            .collect::<Vec<_>>()
    };
    sim.put(&sticky(with(Some(first)), Some(30)));
    assert_eq!(pinned(&mut sim, CLIENT, 5, 7100..7132), other);
    sim.put(&sticky(with(None), Some(30)));
    assert_eq!(pinned(&mut sim, CLIENT, 5, 7200..7232), other);
    // A hash of the 5-tuple again (SOURCE_IP_PORT): the same client spreads over both.
    sim.put(&balancer(vec![member("m1", 11, 1), member("m2", 12, 1)]));
    let spread: std::collections::BTreeSet<Ipv4Addr> =
        (7300..7364u16).map(|s| to_vip(&mut sim, s)[0].1).collect();
    assert_eq!(spread.len(), 2, "{spread:?}");
}

#[test]
fn source_ip_algorithm_and_a_timeout_are_honoured_and_round_robin_learns_nothing() {
    let mut lb = balancer(vec![member("m1", 11, 1), member("m2", 12, 1)]);
    lb.pools[0].lb_algorithm = model::lb::Algorithm::SourceIp;
    let mut sim = world(vec![member("m1", 11, 1), member("m2", 12, 1)]);
    sim.put(&lb);
    pinned(&mut sim, CLIENT, 5, 8000..8048);
    // A UDP pool's persistence_timeout is the learned flows' idle timeout.
    sim.put(&sticky(
        vec![member("m1", 11, 1), member("m2", 12, 1)],
        Some(42),
    ));
    assert_eq!(learn_timeouts(&sim), [42, 42]);
    // ROUND_ROBIN: buckets without learn, nothing learned, connections spread.
    let mut rr = balancer(vec![member("m1", 11, 1), member("m2", 12, 1)]);
    rr.pools[0].lb_algorithm = model::lb::Algorithm::RoundRobin;
    let mut sim = world(vec![member("m1", 11, 1), member("m2", 12, 1)]);
    sim.put(&rr);
    let spread: std::collections::BTreeSet<Ipv4Addr> =
        (8100..8164u16).map(|s| to_vip(&mut sim, s)[0].1).collect();
    assert_eq!(spread.len(), 2, "{spread:?}");
    assert_eq!(sim.switch.flows(24).len(), 1, "only the default");
    assert!(learn_timeouts(&sim).is_empty());
}

/// The idle timeouts of the learn actions of table 26 (one per member flow), into 24.
fn learn_timeouts(sim: &Sim) -> Vec<u16> {
    sim.switch
        .flows(26)
        .iter()
        .flat_map(|f| f.instructions.iter())
        .flat_map(|i| match i {
            openflow::Instruction::ApplyActions(a) => a.clone(),
            _ => Vec::new(),
        })
        .filter_map(|a| match a {
            openflow::action::Action::Learn(l) if l.table_id == 24 => Some(l.idle_timeout),
            _ => None,
        })
        .collect()
}

/// A frame's IPv4 source and destination (address, UDP port).
fn ends(frame: &[u8]) -> ((Ipv4Addr, u16), (Ipv4Addr, u16)) {
    let (a, p, _) = dst(frame);
    (src(frame), (a, p))
}

#[test]
fn a_member_balanced_to_itself_sees_the_vip_and_its_answer_comes_back_from_the_vip() {
    let mut sim = world(vec![member("m1", 11, 1)]);
    let m1 = Ipv4Addr::new(10, 0, 0, 11);
    // m1 to its own VIP: back to m1, from the VIP (not from itself: a martian).
    let out = sim
        .send(
            LOCAL_MEMBER,
            &udp_frame(mac(11), fixtures::mac(100).0, (m1, 7000), (VIP, 53)),
        )
        .frames();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, LOCAL_MEMBER, "back out of the port it came in by");
    assert_eq!(ends(&out[0].1), ((VIP, 7000), (m1, 5353)));
    assert_eq!(
        &out[0].1[6..12],
        &fixtures::mac(100).0,
        "from the VIP's MAC"
    );
    // Its answer to the VIP comes back to it from the VIP's listener port.
    let out = sim
        .send(
            LOCAL_MEMBER,
            &udp_frame(mac(11), fixtures::mac(100).0, (m1, 5353), (VIP, 7000)),
        )
        .frames();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, LOCAL_MEMBER);
    assert_eq!(ends(&out[0].1), ((VIP, 53), (m1, 7000)));
    // Another client is not source-NATed.
    assert_eq!(
        ends(&client_frame(&mut sim, 7002)),
        ((CLIENT_IP, 7002), (m1, 5353))
    );
}

/// The one frame a datagram of the client from `sport` to the VIP becomes.
fn client_frame(sim: &mut Sim, sport: u16) -> Vec<u8> {
    let f = udp_frame(mac(5), fixtures::mac(100).0, (CLIENT_IP, sport), (VIP, 53));
    let mut frames = sim.send(CLIENT, &f).frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    frames.remove(0).1
}

/// Network n2 (10.0.2.0/24) joined to n by router r: member m3 (10.0.2.13) on n2, on host
/// o. The router is put after the balancer, as when an interface is added later.
fn routed_world() -> Sim {
    use model::{MacAddr, Router, RouterInterface, owner};
    let mut m3 = member("m3", 13, 1);
    m3.address = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 13));
    let mut sim = world(vec![m3]);
    sim.put(&Network {
        subnets: vec!["s2".into()],
        ..fixtures::network("n2", 2)
    });
    sim.put(&fixtures::subnet("s2", "n2", "10.0.2.0/24"));
    sim.put(&Port {
        fixed_ips: vec![fixtures::fixed_ip("s2", "10.0.2.13")],
        security_groups: vec!["open".into()],
        ..fixtures::port("m3", "n2", 13, "o")
    });
    let iface = |port: &str, net: &str, n: u8, ip: &str, cidr: &str| RouterInterface {
        port_id: port.into(),
        subnet_id: if net == "n" { "s" } else { "s2" }.into(),
        network_id: net.into(),
        ip_address: ip.parse().unwrap(),
        cidr: cidr.parse().unwrap(),
        mac_address: MacAddr(mac(n)),
    };
    let interfaces = vec![
        iface("r1", "n", 201, "10.0.0.1", "10.0.0.0/24"),
        iface("r2", "n2", 202, "10.0.2.1", "10.0.2.0/24"),
    ];
    for i in &interfaces {
        let n = i.mac_address.0[5];
        sim.put(&Port {
            fixed_ips: vec![fixtures::fixed_ip(&i.subnet_id, &i.ip_address.to_string())],
            device_owner: owner::ROUTER_INTERFACE.into(),
            device_id: "r".into(),
            ..fixtures::port(&i.port_id, &i.network_id, n.into(), "")
        });
    }
    sim.put(&Router {
        interfaces,
        ..fixtures::router("r", 9)
    });
    sim
}

#[test]
fn a_member_on_another_network_is_routed_to_and_its_answer_un_natted() {
    let mut sim = routed_world();
    let datagram = udp_frame(mac(5), fixtures::mac(100).0, (CLIENT_IP, 4100), (VIP, 53));
    let out = sim.send(CLIENT, &datagram).outcome;
    assert_eq!(out.ports(), vec![TUNNEL], "to host o: {out}");
    let o = &out.outputs[0];
    let (addr, port, eth) = dst(&o.frame);
    assert_eq!((addr, port), (Ipv4Addr::new(10, 0, 2, 13), 5353), "DNATed");
    assert_eq!(eth, mac(13), "routed: to the member's MAC");
    assert_eq!(o.frame[6..12], mac(202), "from the router's n2 interface");
    assert_eq!(o.tun_id, 2, "in n2's tunnel key");
    // The member's answer, routed on its host back into n, comes by tunnel and is
    // un-NATed to the VIP before the client sees it.
    let answer = udp_frame(
        mac(201),
        mac(5),
        (Ipv4Addr::new(10, 0, 2, 13), 5353),
        (CLIENT_IP, 4100),
    );
    let mut pkt = fake_switch::Packet::new(TUNNEL, answer);
    pkt.tun_id = 1;
    let frames = sim.send_packet(pkt).frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].0, CLIENT);
    assert_eq!(src(&frames[0].1), (VIP, 53), "un-NATed to the VIP");
}

/// The IPv6 source and destination (address, UDP port) of a frame.
fn ends6(frame: &[u8]) -> ((Ipv6Addr, u16), (Ipv6Addr, u16)) {
    let ip = &frame[14..];
    let a = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&ip[o..o + 16]).unwrap());
    let p = |o: usize| u16::from_be_bytes([ip[40 + o], ip[41 + o]]);
    ((a(8), p(0)), (a(24), p(2)))
}

/// fd00::`last`.
fn six(last: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, last)
}

/// A member at fd00::`last`.
fn member6(id: &str, last: u8, weight: u16) -> Member {
    Member {
        address: IpAddr::V6(six(last.into())),
        ..member(id, last, weight)
    }
}

/// The world with IPv6 too (subnet s6, fd00::/64: every port also has fd00::its number,
/// the security group lets IPv6 in and out), and `lb` moved to the VIP fd00::100.
fn world6(lb: LoadBalancer) -> Sim {
    let mut sim = world(vec![]);
    for (id, d) in [
        ("open6-in", model::Direction::Ingress),
        ("open6-out", model::Direction::Egress),
    ] {
        sim.put(&model::SecurityGroupRule {
            ethertype: model::EtherType::IPv6,
            ..fixtures::security_group_rule(id, "open", d)
        });
    }
    sim.put(&Network {
        subnets: vec!["s".into(), "s6".into()],
        ..fixtures::network("n", 1)
    });
    sim.put(&fixtures::subnet("s6", "n", "fd00::/64"));
    for (id, n, host) in [
        ("c", 5u8, "h"),
        ("m1", 11, "h"),
        ("m2", 12, "o"),
        ("c2", 6, "h"),
    ] {
        let mut p = open_port(id, n, host);
        p.fixed_ips
            .push(fixtures::fixed_ip("s6", &six(n.into()).to_string()));
        sim.put(&p);
    }
    sim.plug("c2", CLIENT2);
    sim.put(&Port {
        fixed_ips: vec![fixtures::fixed_ip("s6", &six(0x100).to_string())],
        device_owner: "Octavia".into(),
        ..fixtures::port("vip", "n", 100, "")
    });
    sim.put(&at_vip6(lb));
    sim
}

/// `lb` moved to the VIP fd00::100.
fn at_vip6(mut lb: LoadBalancer) -> LoadBalancer {
    lb.vip_address = IpAddr::V6(six(0x100));
    lb.vip_subnet_id = "s6".into();
    lb
}

/// An IPv6 address and UDP port.
type End6 = (Ipv6Addr, u16);

/// A datagram to the IPv6 VIP from fd00::`last` on OpenFlow port `ofport`, from `sport`:
/// where it went, as (OpenFlow port, its source and destination).
fn from_client6(sim: &mut Sim, ofport: u32, last: u8, sport: u16) -> Vec<(u32, End6, End6)> {
    let f = udp6_frame(
        mac(last),
        fixtures::mac(100).0,
        (six(last.into()), sport),
        (six(0x100), 53),
    );
    sim.send(ofport, &f)
        .frames()
        .into_iter()
        .map(|(port, fr)| {
            let (from, to) = ends6(&fr);
            (port, from, to)
        })
        .collect()
}

#[test]
fn an_ipv6_vip_balances_over_ipv6_members_and_answers_come_back_from_it() {
    let (vip, client) = (six(0x100), six(5));
    let mut sim = world6(balancer(vec![member6("m1", 11, 1), member6("m2", 12, 1)]));
    let mut seen = BTreeMap::new();
    for sport in 2000..2032u16 {
        let f = udp6_frame(mac(5), fixtures::mac(100).0, (client, sport), (vip, 53));
        let sent = sim.send(CLIENT, &f);
        let frames = sent.frames();
        assert_eq!(frames.len(), 1, "{}", sent.outcome);
        let (port, frame) = &frames[0];
        let (from, to) = ends6(frame);
        assert_eq!(from, (client, sport));
        assert_eq!(to.1, 5353, "the member's port");
        let want = if to.0 == six(11) {
            LOCAL_MEMBER
        } else {
            TUNNEL
        };
        assert!(to.0 == six(11) || to.0 == six(12), "to {to:?}");
        assert_eq!(*port, want);
        *seen.entry(to.0).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "both members: {seen:?}");
    // m1's answer to one of its connections is un-NATed to the VIP.
    let sport = (2000..2032u16)
        .find(|&p| {
            let f = udp6_frame(mac(5), fixtures::mac(100).0, (client, p), (vip, 53));
            ends6(&sim.send(CLIENT, &f).frames()[0].1).1.0 == six(11)
        })
        .expect("a connection to m1");
    let answer = udp6_frame(mac(11), mac(5), (six(11), 5353), (client, sport));
    let sent = sim.send(LOCAL_MEMBER, &answer).frames();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, CLIENT);
    assert_eq!(
        ends6(&sent[0].1),
        ((vip, 53), (client, sport)),
        "un-NATed to the VIP"
    );
}

#[test]
fn an_ipv6_member_balanced_to_itself_sees_the_vip_and_its_answer_comes_back_from_it() {
    let mut sim = world6(balancer(vec![member6("m1", 11, 1)]));
    let (vip, m1) = (six(0x100), six(11));
    let f = udp6_frame(mac(11), fixtures::mac(100).0, (m1, 7000), (vip, 53));
    let out = sim.send(LOCAL_MEMBER, &f).frames();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, LOCAL_MEMBER, "back out of the port it came in by");
    assert_eq!(ends6(&out[0].1), ((vip, 7000), (m1, 5353)), "from the VIP");
    assert_eq!(&out[0].1[6..12], &fixtures::mac(100).0, "the VIP's MAC");
    // Its answer to the VIP comes back to it from the VIP's listener port.
    let f = udp6_frame(mac(11), fixtures::mac(100).0, (m1, 5353), (vip, 7000));
    let out = sim.send(LOCAL_MEMBER, &f).frames();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, LOCAL_MEMBER);
    assert_eq!(ends6(&out[0].1), ((vip, 53), (m1, 7000)));
    // Another client is not source-NATed.
    let out = from_client6(&mut sim, CLIENT, 5, 7002);
    assert_eq!(
        out.iter().map(|o| (o.1, o.2)).collect::<Vec<_>>(),
        [((six(5), 7002), (m1, 5353))]
    );
}

/// The member (last group) every new connection of client fd00::`last` from `ports`
/// reached; panics when they went to different members.
fn pinned6(sim: &mut Sim, ofport: u32, last: u8, ports: std::ops::Range<u16>) -> u16 {
    let got: std::collections::BTreeSet<u16> = ports
        .map(|sport| {
            let out = from_client6(sim, ofport, last, sport);
            assert_eq!(out.len(), 1, "one copy, to one member: {out:?}");
            out[0].2.0.segments()[7]
        })
        .collect();
    assert_eq!(
        got.len(),
        1,
        "client fd00::{last:x} went to members {got:?}"
    );
    got.into_iter().next().unwrap_or_default()
}

#[test]
fn source_ip_persistence_keeps_each_ipv6_client_on_one_member_under_its_granularity() {
    let members = || vec![member6("m1", 11, 1), member6("m2", 12, 1)];
    let mut sim = world6(sticky(members(), Some(60)));
    let first = pinned6(&mut sim, CLIENT, 5, 7000..7048);
    let second = pinned6(&mut sim, CLIENT2, 6, 7000..7048);
    assert!([11, 12].contains(&first) && [11, 12].contains(&second));
    assert_eq!(learn_timeouts(&sim), [60, 60]);
    assert_eq!(sim.switch.flows(24).len(), 3, "two learned, one default");
    // Its member disabled: the client moves to the other and stays there.
    let mut lb = sticky(members(), Some(60));
    let gone = usize::from(first == 12);
    lb.pools[0].members[gone].admin_state_up = false;
    sim.put(&at_vip6(lb));
    let moved = pinned6(&mut sim, CLIENT, 5, 7100..7132);
    assert_ne!(moved, first);
    // A /64 granularity: both clients (one /64) are one memory, on one member.
    for seed in 0..4u16 {
        let mut lb = sticky(members(), None);
        lb.pools[0].session_persistence = Some(model::lb::SessionPersistence {
            kind: "SOURCE_IP".into(),
            persistence_timeout: None,
            persistence_granularity: Some("ffff:ffff:ffff:ffff::".parse().unwrap()),
        });
        let mut sim = world6(lb);
        let base = 7200 + seed * 100;
        let a = pinned6(&mut sim, CLIENT, 5, base..base + 16);
        assert_eq!(pinned6(&mut sim, CLIENT2, 6, base..base + 16), a);
        assert_eq!(sim.switch.flows(24).len(), 2, "one learned, one default");
    }
}
