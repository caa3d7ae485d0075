//! Routing and neighbour discovery on the fake switch: which port a routed frame leaves by
//! and as what, what the switch sends to the controller, and what the controller answers.
//!
//! Router r (key 7) joins net1 (10.0.1.0/24 and fd00:1::/64) and net2 (10.0.2.0/24).
//! Local VMs: a (10.0.1.5, fd00:1::5) at port 1, b (10.0.2.5) at port 2; c (10.0.2.6) is on
//! host o, reached by the geneve tunnel at port 99.

mod support;

use controller::apps::l3::punt::L3Punt;
use controller::apps::{Punt, Settings};
use controller::pipeline::{App, Cookie};
use fake_switch::Outcome;
use model::{HostRoute, MacAddr, Network, Port, Router, RouterInterface, fixtures, owner};
use openflow::oxm::{Field, Match, OxmField};
use openflow::packet::PacketIn;
use packet::ethernet::{EtherType, EthernetRepr, Frame};
use packet::icmpv6::{self, Icmpv6Repr};
use packet::ipv4::Ipv4Repr;
use packet::ipv6::Ipv6Repr;
use packet::{EthernetAddress, IpProtocol, icmpv4, ipv4, ipv6};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use support::mac;
use support::sim::Sim;

const ROUTER_KEY: u32 = 7;

fn network(id: &str, key: u32) -> Network {
    Network {
        segmentation_id: Some(100 + key),
        ..fixtures::network(id, key)
    }
}

fn port(id: &str, net: &str, n: u8, host: &str, ips: &[&str]) -> Port {
    Port {
        fixed_ips: ips.iter().map(|ip| fixtures::fixed_ip("s", ip)).collect(),
        port_security_enabled: false,
        ..fixtures::port(id, net, n.into(), host)
    }
}

fn router_port(id: &str, net: &str, n: u8, ip: &str) -> Port {
    Port {
        device_owner: owner::ROUTER_INTERFACE.into(),
        device_id: "r".into(),
        ..port(id, net, n, "", &[ip])
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

fn router(routes: Vec<HostRoute>) -> Router {
    Router {
        routes,
        interfaces: vec![
            iface("r1", "net1", 201, "10.0.1.1", "10.0.1.0/24"),
            iface("r1v6", "net1", 203, "fd00:1::1", "fd00:1::/64"),
            iface("r2", "net2", 202, "10.0.2.1", "10.0.2.0/24"),
        ],
        ..fixtures::router("r", ROUTER_KEY)
    }
}

/// Ports a and b plugged here at OpenFlow ports 1 and 2, c on host o; the router `r`.
fn world(r: Router) -> Sim {
    let mut sim = Sim::new("h", 99);
    sim.chassis("o", "192.0.2.2");
    sim.put(&network("net1", 1));
    sim.put(&network("net2", 2));
    // As Neutron makes them: the router before its interfaces' ports.
    sim.put(&r);
    sim.put(&router_port("r1", "net1", 201, "10.0.1.1"));
    sim.put(&router_port("r1v6", "net1", 203, "fd00:1::1"));
    sim.put(&router_port("r2", "net2", 202, "10.0.2.1"));
    let local: [(&str, &str, u8, &[&str], u32); 2] = [
        ("a", "net1", 5, &["10.0.1.5", "fd00:1::5"], 1),
        ("b", "net2", 6, &["10.0.2.5"], 2),
    ];
    for (id, net, n, ips, ofport) in local {
        sim.put(&port(id, net, n, "", ips));
        sim.plug(id, ofport);
    }
    sim.put(&port("c", "net2", 8, "o", &["10.0.2.6"]));
    sim
}

/// Sends `frame` in by `port`: what the switch did, and what the controller's packet-outs
/// did.
fn send(sim: &mut Sim, port: u32, frame: &[u8]) -> (Outcome, Vec<Outcome>) {
    let sent = sim.send(port, frame);
    (sent.outcome, sent.answers)
}

fn eth(src: [u8; 6], dst: [u8; 6], et: EtherType, payload: &[u8]) -> Vec<u8> {
    EthernetRepr {
        src_addr: EthernetAddress(src),
        dst_addr: EthernetAddress(dst),
        vlan: None,
        ethertype: et,
    }
    .build(payload)
}

fn udp4(src: &str, dst: &str, ttl: u8, to_mac: [u8; 6]) -> Vec<u8> {
    let payload = [0u8; 12];
    let mut ip = Ipv4Repr::new(
        src.parse().unwrap(),
        dst.parse().unwrap(),
        IpProtocol::Udp,
        payload.len(),
    );
    ip.ttl = ttl;
    eth(mac(5), to_mac, EtherType::Ipv4, &ip.build(&payload))
}

fn ip_of(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

fn headers(frame: &[u8]) -> (EthernetRepr, Ipv4Repr) {
    let e = EthernetRepr::parse(&Frame::new_checked(frame).unwrap()).unwrap();
    let ip = Ipv4Repr::parse(&ipv4::Packet::new_checked(ip_of(frame)).unwrap()).unwrap();
    (e, ip)
}

#[test]
fn routing_between_two_local_networks_rewrites_macs_and_ttl_and_stays_on_the_host() {
    let mut sim = world(router(vec![]));
    let (out, _) = send(&mut sim, 1, &udp4("10.0.1.5", "10.0.2.5", 64, mac(201)));
    assert_eq!(out.ports(), vec![2], "{out}");
    let (e, ip) = headers(&out.outputs[0].frame);
    assert_eq!(e.src_addr.0, mac(202), "source MAC: the interface on net2");
    assert_eq!(e.dst_addr.0, mac(6), "destination MAC: b's");
    assert_eq!(ip.ttl, 63);
    assert!(
        ipv4::Packet::new_checked(ip_of(&out.outputs[0].frame))
            .unwrap()
            .verify_checksum()
    );
    // And back.
    let mut back = udp4("10.0.2.5", "10.0.1.5", 64, mac(202));
    back[6..12].copy_from_slice(&mac(6));
    let (out, _) = send(&mut sim, 2, &back);
    assert_eq!(out.ports(), vec![1], "{out}");
    assert!(
        out.trace
            .iter()
            .any(|s| Cookie::decode(s.cookie).is_some_and(|k| k.app == App::L3)),
        "routed by L3 flows"
    );
}

#[test]
fn routing_to_a_remote_port_enters_the_tunnel_of_the_destination_network() {
    let mut sim = world(router(vec![]));
    let (out, _) = send(&mut sim, 1, &udp4("10.0.1.5", "10.0.2.6", 64, mac(201)));
    let o = out.single().unwrap_or_else(|| panic!("{out}"));
    assert_eq!(o.port, 99);
    assert_eq!(o.tun_id, 102, "net2's segmentation id");
    assert_eq!(o.tun_dst, u32::from(Ipv4Addr::new(192, 0, 2, 2)));
    let (e, _) = headers(&o.frame);
    assert_eq!((e.src_addr.0, e.dst_addr.0), (mac(202), mac(8)));
}

#[test]
fn ttl_one_gets_time_exceeded_from_the_ingress_interface() {
    let mut sim = world(router(vec![]));
    let sent = udp4("10.0.1.5", "10.0.2.5", 1, mac(201));
    let (out, answers) = send(&mut sim, 1, &sent);
    assert!(out.outputs.is_empty(), "not forwarded: {out}");
    assert_eq!(answers.len(), 1, "{out}");
    assert_eq!(answers[0].ports(), vec![1], "{}", answers[0]);
    let reply = &answers[0].outputs[0].frame;
    let (e, ip) = headers(reply);
    assert_eq!((e.src_addr.0, e.dst_addr.0), (mac(201), mac(5)));
    assert_eq!(ip.src_addr, Ipv4Addr::new(10, 0, 1, 1));
    assert_eq!(ip.dst_addr, Ipv4Addr::new(10, 0, 1, 5));
    let icmp = &ip_of(reply)[20..];
    assert_eq!(
        (icmp[0], icmp[1]),
        (icmpv4::msg_type::TIME_EXCEEDED, icmpv4::time_exceeded::TTL)
    );
}

#[test]
fn the_router_answers_ping_and_arp_for_its_addresses() {
    let mut sim = world(router(vec![]));
    // ARP for the gateway: answered by the switch with the interface's MAC.
    let req = packet::arp::ArpRepr {
        operation: packet::arp::Operation::Request,
        source_hardware_addr: EthernetAddress(mac(5)),
        source_protocol_addr: Ipv4Addr::new(10, 0, 1, 5),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: Ipv4Addr::new(10, 0, 1, 1),
    };
    let mut body = vec![0u8; req.buffer_len()];
    req.emit(&mut packet::arp::Packet::new_unchecked(&mut body[..]));
    let (out, _) = send(&mut sim, 1, &eth(mac(5), [0xff; 6], EtherType::Arp, &body));
    assert_eq!(out.ports(), vec![1], "{out}");
    assert_eq!(&out.outputs[0].frame[6..12], &mac(201));
    // Echo to the other interface's address, TTL 1: still answered (it is the router's).
    let echo = icmpv4::Icmpv4Repr::EchoRequest {
        ident: 9,
        seq_no: 1,
        data: b"hello",
    }
    .build();
    let mut ip = Ipv4Repr::new(
        Ipv4Addr::new(10, 0, 1, 5),
        Ipv4Addr::new(10, 0, 2, 1),
        IpProtocol::Icmp,
        echo.len(),
    );
    ip.ttl = 1;
    let frame = eth(mac(5), mac(201), EtherType::Ipv4, &ip.build(&echo));
    let (_, answers) = send(&mut sim, 1, &frame);
    assert_eq!(answers.len(), 1);
    let reply = &answers[0].outputs[0].frame;
    let (_, rip) = headers(reply);
    assert_eq!(
        (rip.src_addr, rip.dst_addr),
        (Ipv4Addr::new(10, 0, 2, 1), Ipv4Addr::new(10, 0, 1, 5))
    );
    assert_eq!(ip_of(reply)[20], icmpv4::msg_type::ECHO_REPLY);
}

#[test]
fn unknown_destinations_are_unreachable_host_or_network() {
    let mut sim = world(router(vec![]));
    for (dst, code) in [
        ("10.0.2.99", icmpv4::unreachable::HOST),
        ("192.168.7.7", icmpv4::unreachable::NET),
    ] {
        let (out, answers) = send(&mut sim, 1, &udp4("10.0.1.5", dst, 64, mac(201)));
        assert!(out.outputs.is_empty(), "{out}");
        let reply = &answers
            .first()
            .unwrap_or_else(|| panic!("{dst}: {out}"))
            .outputs[0]
            .frame;
        let icmp = &ip_of(reply)[20..];
        assert_eq!(
            (icmp[0], icmp[1]),
            (icmpv4::msg_type::DST_UNREACHABLE, code),
            "{dst}"
        );
    }
}

#[test]
fn errors_are_rate_limited_per_router_port() {
    let mut sim = world(router(vec![]));
    let sent = udp4("10.0.1.5", "10.0.2.5", 1, mac(201));
    let outcomes: Vec<_> = (0..20).map(|_| send(&mut sim, 1, &sent)).collect();
    let answered = outcomes.iter().filter(|(_, a)| !a.is_empty()).count();
    assert_eq!(answered, 3, "3 a second by default");
    // The fourth is held back and puts a guard in the switch: the rest never reach the
    // controller.
    assert_eq!(sim.handler::<L3Punt>().limited, 1);
    assert!(
        outcomes[4..]
            .iter()
            .all(|(o, _)| o.dropped() && o.to_controller.is_empty()),
        "{}",
        outcomes[4].0
    );
    // The guard is narrow: the same sender's traffic with a live TTL is still routed.
    let (routed, _) = send(&mut sim, 1, &udp4("10.0.1.5", "10.0.2.5", 64, mac(201)));
    assert_eq!(routed.ports(), vec![2], "{routed}");
    // A second later the guard has expired (the switch dropped it), and it answers again.
    sim.wait(Duration::from_secs(1));
    assert_eq!(send(&mut sim, 1, &sent).1.len(), 1);
    // The handlers started again with another rate.
    *sim.core.punt_mut() = Punt::new(&Settings {
        icmp_rate: 1,
        ..Settings::default()
    });
    let a = (0..3)
        .filter(|_| !send(&mut sim, 1, &sent).1.is_empty())
        .count();
    assert_eq!(a, 1, "the rate is configurable");
}

#[test]
fn an_extra_route_goes_to_its_next_hop() {
    let route = HostRoute {
        destination: "10.9.0.0/16".parse().unwrap(),
        nexthop: "10.0.2.5".parse().unwrap(),
    };
    let mut sim = world(router(vec![route]));
    let (out, _) = send(&mut sim, 1, &udp4("10.0.1.5", "10.9.3.4", 64, mac(201)));
    assert_eq!(out.ports(), vec![2], "{out}");
    let (e, ip) = headers(&out.outputs[0].frame);
    assert_eq!((e.src_addr.0, e.dst_addr.0), (mac(202), mac(6)));
    assert_eq!(
        ip.dst_addr,
        Ipv4Addr::new(10, 9, 3, 4),
        "the destination is kept"
    );
}

#[test]
fn removing_an_interface_stops_routing_to_its_network() {
    let mut sim = world(router(vec![]));
    let mut r = router(vec![]);
    r.interfaces.retain(|i| i.network_id != "net2");
    sim.put(&r);
    let (out, answers) = send(&mut sim, 1, &udp4("10.0.1.5", "10.0.2.5", 64, mac(201)));
    assert!(out.outputs.is_empty(), "{out}");
    let icmp = &ip_of(&answers[0].outputs[0].frame)[20..];
    assert_eq!((icmp[0], icmp[1]), (3, icmpv4::unreachable::NET));
}

fn ns_frame(src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let ns = Icmpv6Repr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(EthernetAddress(mac(5))),
    };
    let seg = target.segments();
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | (seg[6] & 0xff), seg[7]);
    let ip = Ipv6Repr::new(src, group, IpProtocol::Icmpv6, 0, 255);
    icmpv6::build_frame(
        EthernetAddress(mac(5)),
        EthernetAddress::ipv6_multicast(&group),
        None,
        &ip,
        &ns,
    )
}

#[test]
fn neighbour_solicitations_for_known_addresses_are_answered_never_flooded() {
    let mut sim = world(router(vec![]));
    let a: Ipv6Addr = "fd00:1::5".parse().unwrap();
    let gw: Ipv6Addr = "fd00:1::1".parse().unwrap();
    // Answered by the switch itself: back out of the asking port, never to the controller.
    let (out, answers) = send(&mut sim, 1, &ns_frame(a, gw));
    assert!(out.to_controller.is_empty() && answers.is_empty(), "{out}");
    assert_eq!(out.ports(), vec![1], "not flooded: {out}");
    let na = icmpv6::parse_frame(&out.outputs[0].frame).expect("an NA, checksum and all");
    assert_eq!(na.ethernet.dst_addr, EthernetAddress(mac(5)));
    assert_eq!(na.ethernet.src_addr, EthernetAddress(mac(203)));
    assert_eq!(na.ipv6.src_addr, gw);
    match na.icmpv6 {
        Icmpv6Repr::NeighborAdvert {
            router,
            solicited,
            target_addr,
            lladdr,
            ..
        } => {
            assert!(router && solicited, "from a router interface, solicited");
            assert_eq!(target_addr, gw);
            assert_eq!(lladdr, Some(EthernetAddress(mac(203))));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(na.ipv6.dst_addr, a);
    // The router's link-local address (where its RAs come from) is answered too; a VM's
    // address without the router flag.
    let ll = ipv6::link_local(mac(203));
    let (out, _) = send(&mut sim, 1, &ns_frame(a, ll));
    assert_eq!(out.ports(), vec![1], "{out}");
    let na = icmpv6::parse_frame(&out.outputs[0].frame).expect("an NA");
    assert!(
        matches!(na.icmpv6, Icmpv6Repr::NeighborAdvert { router: true, target_addr, .. } if target_addr == ll)
    );
    let (out, _) = send(&mut sim, 1, &ns_frame(gw, a));
    let na = icmpv6::parse_frame(&out.outputs[0].frame).expect("an NA");
    assert!(
        matches!(na.icmpv6, Icmpv6Repr::NeighborAdvert { router: false, solicited: true, lladdr: Some(m), .. } if m == EthernetAddress(mac(5))),
        "{:?}",
        na.icmpv6
    );
    // DAD for the same address is not answered by us (it goes on to L2).
    let (out, answers) = send(&mut sim, 1, &ns_frame(Ipv6Addr::UNSPECIFIED, gw));
    assert!(answers.is_empty() && out.to_controller.is_empty(), "{out}");
    // An unknown target goes on to L2 as before.
    let (out, _) = send(&mut sim, 1, &ns_frame(a, "fd00:1::99".parse().unwrap()));
    assert!(out.to_controller.is_empty(), "{out}");
}

#[test]
fn ipv6_is_routed_with_the_hop_limit_decremented() {
    let mut sim = world(router(vec![]));
    // b gets an IPv6 address on a second IPv6 subnet of net2 behind the router.
    let mut r = router(vec![]);
    r.interfaces
        .push(iface("r2v6", "net2", 204, "fd00:2::1", "fd00:2::/64"));
    let b = port("b", "net2", 6, "h", &["10.0.2.5", "fd00:2::5"]);
    sim.put(&r);
    sim.put(&b);
    sim.put(&router_port("r2v6", "net2", 204, "fd00:2::1"));
    let echo = icmpv6::Icmpv6Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: b"x",
    };
    let (src, dst): (Ipv6Addr, Ipv6Addr) =
        ("fd00:1::5".parse().unwrap(), "fd00:2::5".parse().unwrap());
    let ip = Ipv6Repr::new(src, dst, IpProtocol::Icmpv6, 0, 64);
    let frame = icmpv6::build_frame(
        EthernetAddress(mac(5)),
        EthernetAddress(mac(203)),
        None,
        &ip,
        &echo,
    );
    let (out, _) = send(&mut sim, 1, &frame);
    assert_eq!(out.ports(), vec![2], "{out}");
    let f = &out.outputs[0].frame;
    assert_eq!((&f[6..12], &f[0..6]), (&mac(204)[..], &mac(6)[..]));
    let got = ipv6::Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(got.hop_limit(), 63);
    assert_eq!(IpAddr::V6(got.dst_addr()), IpAddr::V6(dst));
}

/// Every router and ND flow is taken by a real Open vSwitch, and reads back equal (or the
/// reconciler would rewrite them forever).
#[tokio::test]
async fn a_real_switch_takes_every_router_flow_and_reads_it_back_equal() {
    if !testbed::require_root("a_real_switch_takes_every_router_flow_and_reads_it_back_equal") {
        return;
    }
    let route = HostRoute {
        destination: "10.9.0.0/16".parse().unwrap(),
        nexthop: "10.0.2.5".parse().unwrap(),
    };
    let sim = world(router(vec![route]));
    let ovs = support::ovs();
    let mut s = support::session(&ovs).await;
    let want = sim.core.desired();
    s.commit_with_groups(&want.groups().diff(&Default::default()), &[])
        .await
        .expect("groups");
    // One flow at a time first, so that a refusal names its flow.
    for m in want.table().diff(&Default::default()) {
        if let Err(e) = s.commit(std::slice::from_ref(&m)).await {
            panic!("refused: {e}\n{m:?}");
        }
    }
    let got = s.dump_flows().await.expect("dump");
    let left = want.table().diff(&got);
    assert!(left.is_empty(), "read back differs: {left:?}");
}

/// Whatever a VM sends, the router and ND handlers answer or drop it; they never panic.
/// Random bytes, and valid frames (NS, TTL 1, echo to the router) with random bytes changed.
#[test]
fn punted_garbage_never_panics_the_handlers() {
    let mut sim = world(router(vec![]));
    let mut rnd = support::rng();
    let a: Ipv6Addr = "fd00:1::5".parse().unwrap();
    let valid = [
        ns_frame(a, "fd00:1::1".parse().unwrap()),
        udp4("10.0.1.5", "10.0.2.5", 1, mac(201)),
        udp4("10.0.1.5", "10.0.1.1", 64, mac(201)),
        udp4("10.0.1.5", "192.168.1.1", 64, mac(201)),
    ];
    let mut answered = 0;
    for i in 0..20_000u32 {
        // A new second every 100 packets, so the rate limit lets some through.
        if i > 0 && i % 100 == 0 {
            sim.wait(Duration::from_secs(1));
        }
        let mut frame = if i % 2 == 0 {
            valid[(rnd() % valid.len() as u64) as usize].clone()
        } else {
            (0..rnd() % 200).map(|_| rnd() as u8).collect()
        };
        for _ in 0..rnd() % 4 {
            if !frame.is_empty() {
                let at = (rnd() % frame.len() as u64) as usize;
                frame[at] = rnd() as u8;
            }
        }
        if rnd().is_multiple_of(8) {
            frame.truncate((rnd() % 80) as usize);
        }
        // ND is answered in the switch now; the other IPv6 handler is RA's.
        let app = if rnd().is_multiple_of(2) {
            App::L3
        } else {
            App::Ra
        };
        let pi = PacketIn {
            buffer_id: u32::MAX,
            total_len: frame.len() as u16,
            reason: 1,
            table_id: 60,
            cookie: Cookie {
                app,
                key: ROUTER_KEY,
            }
            .encode(),
            match_: Match::new()
                .in_port(1)
                .metadata(1)
                .with(OxmField::new(Field::Reg(5), u128::from(ROUTER_KEY)))
                .with(OxmField::new(Field::Reg(6), 5u32)),
            data: frame,
        };
        answered += sim.packet_in(pi).packets.len();
    }
    assert!(answered > 0, "valid frames among them were answered");
}

/// A router written to the store after the port of its interface (a resync that writes the
/// ports table before the routers table) is not found at its first look-up; it is looked
/// up again while it is missing, and its project is followed once it exists.
#[test]
fn a_router_written_after_its_interface_port_is_followed() {
    let mut sim = Sim::new("h", 99);
    sim.put(&network("net1", 1));
    sim.put(&port("a", "net1", 5, "", &["10.0.1.5"]));
    sim.plug("a", 1);
    sim.put(&router_port("r1", "net1", 201, "10.0.1.1"));
    sim.put(&router(vec![]));
    sim.wait(Duration::from_secs(5));
    assert!(
        sim.core.view().routers.contains_key("r"),
        "the router is never followed"
    );
}
