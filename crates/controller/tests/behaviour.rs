//! The apps' flows on the fake switch: which port a frame leaves by, what is dropped, what
//! the switch answers itself.

mod support;

use model::fixtures;
use packet::arp::{self, ArpRepr, Operation};
use packet::ethernet::{EtherType, EthernetRepr};
use packet::ipv4::Ipv4Repr;
use packet::{EthernetAddress, IpProtocol};
use std::net::Ipv4Addr;
use support::open_port;
use support::sim::Sim;

/// Ports a (5) and b (6) plugged here at OpenFlow ports 1 and 2; c (7) on another host.
fn world() -> Sim {
    let mut sim = Sim::new("h", TUNNEL);
    sim.chassis("o", &OTHER_HOST.to_string());
    sim.put(&fixtures::network("n", 9));
    support::put_open_group(&mut sim);
    for (id, n, ofport) in [("a", 5, 1), ("b", 6, 2)] {
        sim.put(&open_port(id, n, ""));
        sim.plug(id, ofport);
    }
    sim.put(&open_port("c", 7, "o"));
    sim
}

/// The other host's tunnel address, and this host's Geneve port.
const OTHER_HOST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const TUNNEL: u32 = 10;
fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([0xfa, 0x16, 0x3e, 0, 0, n])
}

fn udp_frame(src_mac: u8, dst_mac: u8, src_ip: Ipv4Addr, dst_ip: Ipv4Addr) -> Vec<u8> {
    let payload = [0u8; 12];
    let ip = Ipv4Repr::new(src_ip, dst_ip, IpProtocol::Udp, payload.len()).build(&payload);
    EthernetRepr {
        src_addr: mac(src_mac),
        dst_addr: mac(dst_mac),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&ip)
}

#[test]
fn unicast_to_a_local_port_leaves_by_its_port() {
    let mut sim = world();
    let out = sim
        .send(
            1,
            &udp_frame(5, 6, Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 6)),
        )
        .outcome;
    assert_eq!(out.ports(), vec![2], "{out}");
    let back = sim
        .send(
            2,
            &udp_frame(6, 5, Ipv4Addr::new(10, 0, 0, 6), Ipv4Addr::new(10, 0, 0, 5)),
        )
        .outcome;
    assert_eq!(back.ports(), vec![1], "{back}");
}

#[test]
fn spoofed_sources_are_dropped() {
    let mut sim = world();
    let wrong_ip = sim
        .send(
            1,
            &udp_frame(
                5,
                6,
                Ipv4Addr::new(10, 0, 0, 66),
                Ipv4Addr::new(10, 0, 0, 6),
            ),
        )
        .outcome;
    assert!(wrong_ip.dropped(), "{wrong_ip}");
    let wrong_mac = sim
        .send(
            1,
            &udp_frame(
                66,
                6,
                Ipv4Addr::new(10, 0, 0, 5),
                Ipv4Addr::new(10, 0, 0, 6),
            ),
        )
        .outcome;
    assert!(wrong_mac.dropped(), "{wrong_mac}");
    // b's own address from a's port is spoofing too.
    let as_b = sim
        .send(
            1,
            &udp_frame(6, 6, Ipv4Addr::new(10, 0, 0, 6), Ipv4Addr::new(10, 0, 0, 6)),
        )
        .outcome;
    assert!(as_b.dropped(), "{as_b}");
}

#[test]
fn arp_for_a_remote_port_is_answered_by_the_switch() {
    let mut sim = world();
    let req = ArpRepr {
        operation: Operation::Request,
        source_hardware_addr: mac(5),
        source_protocol_addr: Ipv4Addr::new(10, 0, 0, 5),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: Ipv4Addr::new(10, 0, 0, 7),
    };
    let mut body = vec![0u8; req.buffer_len()];
    req.emit(&mut arp::Packet::new_unchecked(&mut body[..]));
    let frame = EthernetRepr {
        src_addr: mac(5),
        dst_addr: EthernetAddress::BROADCAST,
        vlan: None,
        ethertype: EtherType::Arp,
    }
    .build(&body);
    let out = sim.send(1, &frame).outcome;
    assert_eq!(
        out.ports(),
        vec![1],
        "the answer goes back where the request came from: {out}"
    );
    let reply = &out.outputs[0].frame;
    let eth =
        EthernetRepr::parse(&packet::ethernet::Frame::new_checked(&reply[..]).expect("frame"))
            .expect("eth");
    assert_eq!((eth.src_addr, eth.dst_addr), (mac(7), mac(5)));
    let a = ArpRepr::parse(&arp::Packet::new_checked(&reply[14..]).expect("arp")).expect("arp");
    assert_eq!(a.operation, Operation::Reply);
    assert_eq!(
        (a.source_hardware_addr, a.source_protocol_addr),
        (mac(7), Ipv4Addr::new(10, 0, 0, 7))
    );
    assert_eq!(
        (a.target_hardware_addr, a.target_protocol_addr),
        (mac(5), Ipv4Addr::new(10, 0, 0, 5))
    );
}

fn arp_request(from: u8, for_ip: Ipv4Addr) -> Vec<u8> {
    let req = ArpRepr {
        operation: Operation::Request,
        source_hardware_addr: mac(from),
        source_protocol_addr: Ipv4Addr::new(10, 0, 0, from),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: for_ip,
    };
    let mut body = vec![0u8; req.buffer_len()];
    req.emit(&mut arp::Packet::new_unchecked(&mut body[..]));
    EthernetRepr {
        src_addr: mac(from),
        dst_addr: EthernetAddress::BROADCAST,
        vlan: None,
        ethertype: EtherType::Arp,
    }
    .build(&body)
}

#[test]
fn a_broadcast_reaches_the_other_local_ports_and_each_other_host_once() {
    let mut sim = world();
    // Nobody here knows 10.0.0.99: the request is flooded.
    let out = sim
        .send(1, &arp_request(5, Ipv4Addr::new(10, 0, 0, 99)))
        .outcome;
    let mut ports = out.ports();
    ports.sort_unstable();
    assert_eq!(
        ports,
        vec![2, TUNNEL],
        "not back to a, once to b and the other host: {out}"
    );
    let tunnelled = out
        .outputs
        .iter()
        .find(|o| o.port == TUNNEL)
        .expect("tunnel copy");
    assert_eq!(tunnelled.tun_id, 9, "the network's segmentation id");
    assert_eq!(tunnelled.tun_dst, u32::from(OTHER_HOST));
}

#[test]
fn a_broadcast_from_the_tunnel_goes_to_local_ports_only() {
    let mut sim = world();
    let mut pkt = fake_switch::Packet::new(TUNNEL, arp_request(7, Ipv4Addr::new(10, 0, 0, 99)));
    pkt.tun_id = 9;
    let out = sim.send_packet(pkt).outcome;
    let mut ports = out.ports();
    ports.sort_unstable();
    assert_eq!(ports, vec![1, 2], "never back into the underlay: {out}");
    // A frame for another network's key is not taken in at all.
    let mut other = fake_switch::Packet::new(TUNNEL, arp_request(7, Ipv4Addr::new(10, 0, 0, 99)));
    other.tun_id = 10;
    assert!(sim.send_packet(other).outcome.dropped());
}

/// A frame from port `a` (MAC 5) to `dst`: IPv4 or IPv6 with `l4` as payload, maybe tagged.
fn frame_from_a(dst: EthernetAddress, ip: Vec<u8>, v6: bool, vlan: Option<u16>) -> Vec<u8> {
    EthernetRepr {
        src_addr: mac(5),
        dst_addr: dst,
        vlan: vlan.map(|vid| packet::ethernet::VlanTag {
            pcp: 0,
            dei: false,
            vid,
        }),
        ethertype: if v6 { EtherType::Ipv6 } else { EtherType::Ipv4 },
    }
    .build(&ip)
}

/// A UDP header (checksum 0) and 12 bytes of payload.
fn udp(src: u16, dst: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&src.to_be_bytes());
    u.extend_from_slice(&dst.to_be_bytes());
    u.extend_from_slice(&20u16.to_be_bytes());
    u.extend_from_slice(&[0; 14]);
    u
}

fn v4(l4: &[u8]) -> Vec<u8> {
    Ipv4Repr::new(
        Ipv4Addr::new(10, 0, 0, 5),
        Ipv4Addr::new(10, 0, 0, 6),
        IpProtocol::Udp,
        l4.len(),
    )
    .build(l4)
}

/// From a's link-local address (its MAC's EUI-64) to `dst`.
fn v6(dst: std::net::Ipv6Addr, next: IpProtocol, l4: &[u8]) -> Vec<u8> {
    let src: std::net::Ipv6Addr = "fe80::f816:3eff:fe00:5".parse().unwrap();
    packet::ipv6::Ipv6Repr::new(src, dst, next, l4.len(), 255).build(l4)
}

#[test]
fn an_access_port_takes_no_tagged_frame() {
    let mut sim = world();
    let plain = sim
        .send(1, &frame_from_a(mac(6), v4(&udp(4000, 9999)), false, None))
        .outcome;
    assert_eq!(plain.ports(), vec![2], "{plain}");
    for vid in [100, 0] {
        let tagged = sim
            .send(
                1,
                &frame_from_a(mac(6), v4(&udp(4000, 9999)), false, Some(vid)),
            )
            .outcome;
        assert!(tagged.dropped(), "VLAN {vid}: {tagged}");
        let flood = sim
            .send(
                1,
                &frame_from_a(
                    EthernetAddress([0xff; 6]),
                    v4(&udp(4000, 9999)),
                    false,
                    Some(vid),
                ),
            )
            .outcome;
        assert!(flood.dropped(), "a tagged broadcast: {flood}");
    }
}

#[test]
fn a_vm_is_neither_a_dhcp_server_nor_a_router() {
    let mut sim = world();
    let to_b = sim
        .send(1, &frame_from_a(mac(6), v4(&udp(68, 67)), false, None))
        .outcome;
    assert!(!to_b.dropped(), "a client's datagram goes on: {to_b}");
    let offer = sim
        .send(1, &frame_from_a(mac(6), v4(&udp(67, 68)), false, None))
        .outcome;
    assert!(offer.dropped(), "DHCP server traffic: {offer}");
    let all_nodes: std::net::Ipv6Addr = "ff02::1".parse().unwrap();
    let b_ll: std::net::Ipv6Addr = "fe80::f816:3eff:fe00:6".parse().unwrap();
    let advertise = sim
        .send(
            1,
            &frame_from_a(
                mac(6),
                v6(b_ll, IpProtocol::Udp, &udp(547, 546)),
                true,
                None,
            ),
        )
        .outcome;
    assert!(advertise.dropped(), "DHCPv6 server traffic: {advertise}");
    // ICMPv6 type, code and checksum (unchecked by the switch), then the message body.
    for ty in [134u8, 137] {
        let mut icmp = vec![ty, 0, 0, 0];
        icmp.extend_from_slice(&[0; 36]);
        let out = sim
            .send(
                1,
                &frame_from_a(
                    EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
                    v6(all_nodes, IpProtocol::Icmpv6, &icmp),
                    true,
                    None,
                ),
            )
            .outcome;
        assert!(out.dropped(), "ICMPv6 type {ty}: {out}");
    }
    // A router solicitation is the VM's to send.
    let mut rs = vec![133u8, 0, 0, 0];
    rs.extend_from_slice(&[0; 4]);
    let all_routers: std::net::Ipv6Addr = "ff02::2".parse().unwrap();
    let out = sim
        .send(
            1,
            &frame_from_a(
                EthernetAddress([0x33, 0x33, 0, 0, 0, 2]),
                v6(all_routers, IpProtocol::Icmpv6, &rs),
                true,
                None,
            ),
        )
        .outcome;
    assert!(!out.dropped(), "router solicitation: {out}");
}
