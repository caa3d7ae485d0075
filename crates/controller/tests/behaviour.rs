//! The apps' flows on the fake switch: which port a frame leaves by, what is dropped, what
//! the switch answers itself.

mod support;

use controller::apps::{Desired, Host};
use controller::view::{View, record};
use fake_switch::Switch;
use model::fixtures;
use packet::arp::{self, ArpRepr, Operation};
use packet::ethernet::{EtherType, EthernetRepr};
use packet::ipv4::Ipv4Repr;
use packet::{EthernetAddress, IpProtocol};
use std::net::Ipv4Addr;
use support::{open_group, open_port};

/// Ports a (5) and b (6) on this host at OpenFlow ports 1 and 2; c (7) on another host.
fn switch() -> Switch {
    let net = fixtures::network("n", 9);
    let mut view = View::new("h");
    view.load(&nbdb::Snapshot {
        revision: 4,
        records: vec![
            record(&net, 1),
            record(&open_port("a", 5, "h"), 2),
            record(&open_port("b", 6, "h"), 3),
            record(&open_port("c", 7, "o"), 4),
            nbdb::Record {
                table: "chassis".into(),
                id: "o".into(),
                revision: 4,
                topic: None,
                value: serde_json::to_vec(&fixtures::chassis("o", &OTHER_HOST.to_string()))
                    .unwrap(),
            },
            open_group()[0].clone(),
            open_group()[1].clone(),
            open_group()[2].clone(),
        ],
    });
    let mut host = Host {
        ofports: [("a".to_string(), 1), ("b".to_string(), 2)]
            .into_iter()
            .collect(),
        tunnels: [("geneve".to_string(), TUNNEL)].into(),
        ..Host::default()
    };
    controller::apps::security_groups::assign_zones(&view, &mut host);
    let mut sw = Switch::new();
    support::install(&mut sw, &Desired::full(&view, &host));
    sw
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
    let mut sw = switch();
    let out = sw.process(
        1,
        &udp_frame(5, 6, Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 6)),
    );
    assert_eq!(out.ports(), vec![2], "{out}");
    let back = sw.process(
        2,
        &udp_frame(6, 5, Ipv4Addr::new(10, 0, 0, 6), Ipv4Addr::new(10, 0, 0, 5)),
    );
    assert_eq!(back.ports(), vec![1], "{back}");
}

#[test]
fn spoofed_sources_are_dropped() {
    let mut sw = switch();
    let wrong_ip = sw.process(
        1,
        &udp_frame(
            5,
            6,
            Ipv4Addr::new(10, 0, 0, 66),
            Ipv4Addr::new(10, 0, 0, 6),
        ),
    );
    assert!(wrong_ip.dropped(), "{wrong_ip}");
    let wrong_mac = sw.process(
        1,
        &udp_frame(
            66,
            6,
            Ipv4Addr::new(10, 0, 0, 5),
            Ipv4Addr::new(10, 0, 0, 6),
        ),
    );
    assert!(wrong_mac.dropped(), "{wrong_mac}");
    // b's own address from a's port is spoofing too.
    let as_b = sw.process(
        1,
        &udp_frame(6, 6, Ipv4Addr::new(10, 0, 0, 6), Ipv4Addr::new(10, 0, 0, 6)),
    );
    assert!(as_b.dropped(), "{as_b}");
}

#[test]
fn arp_for_a_remote_port_is_answered_by_the_switch() {
    let mut sw = switch();
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
    let out = sw.process(1, &frame);
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
    let mut sw = switch();
    // Nobody here knows 10.0.0.99: the request is flooded.
    let out = sw.process(1, &arp_request(5, Ipv4Addr::new(10, 0, 0, 99)));
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
    let mut sw = switch();
    let mut pkt = fake_switch::Packet::new(TUNNEL, arp_request(7, Ipv4Addr::new(10, 0, 0, 99)));
    pkt.tun_id = 9;
    let out = sw.process_packet(pkt);
    let mut ports = out.ports();
    ports.sort_unstable();
    assert_eq!(ports, vec![1, 2], "never back into the underlay: {out}");
    // A frame for another network's key is not taken in at all.
    let mut other = fake_switch::Packet::new(TUNNEL, arp_request(7, Ipv4Addr::new(10, 0, 0, 99)));
    other.tun_id = 10;
    assert!(sw.process_packet(other).dropped());
}
