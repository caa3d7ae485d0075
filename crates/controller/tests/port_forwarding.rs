//! Floating IP port forwarding on the fake switch: arrivals for a forwarded external port
//! reach the internal address and port, the replies leave from the floating IP and
//! external port, other ports of the address go nowhere, and a forwarding to a port on
//! another host is not served here.
//!
//! Router r (key 7) joins net1 (10.0.1.0/24, geneve) and has its gateway on `ext` (flat on
//! physnet1, 203.0.113.0/24, next hop 203.0.113.1). Local VMs a (10.0.1.5, port 1) and b
//! (10.0.1.6, port 2); c (10.0.1.7) is on host h2. Floating IP 203.0.113.40 forwards UDP
//! 2222 to a:22 and UDP 5353 to b:53, and UDP 7000 to c:7.

mod support;

use controller::apps::Settings;
use controller::apps::nat::CHASSIS_SNAT;
use model::{
    ExternalGateway, FloatingIp, MacAddr, Network, NetworkType, PfProtocol, Port, PortForwarding,
    Router, RouterInterface, Subnet, fixtures, owner,
};
use packet::arp::{self, ArpRepr, Operation};
use packet::ethernet::{EtherType, EthernetRepr, Frame};
use packet::ipv4::Ipv4Repr;
use packet::{EthernetAddress, ipv4, udp};
use std::net::Ipv4Addr;
use support::mac;
use support::sim::Sim;

const PATCH: u32 = 50;
const OUTSIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const FIP_MAC: u8 = 40;

fn network(id: &str, key: u32, t: NetworkType) -> Network {
    Network {
        external: id == "ext",
        port_security_enabled: false,
        network_type: t,
        physical_network: t.is_provider().then(|| "physnet1".to_string()),
        segmentation_id: Some(100 + key),
        ..fixtures::network(id, key)
    }
}

fn port(id: &str, net: &str, n: u8, ip: &str, host: &str) -> Port {
    Port {
        fixed_ips: vec![fixtures::fixed_ip(&format!("s-{net}"), ip)],
        port_security_enabled: false,
        ..fixtures::port(id, net, n.into(), host)
    }
}

fn forwarding(id: &str, port: &str, ip: &str, internal: u16, external: u16) -> PortForwarding {
    PortForwarding {
        id: id.into(),
        internal_port_id: port.into(),
        internal_ip_address: ip.parse().unwrap(),
        internal_port: internal,
        external_port: external,
        protocol: PfProtocol::Udp,
        description: String::new(),
    }
}

fn fip(pfs: Vec<PortForwarding>) -> FloatingIp {
    FloatingIp {
        meta: fixtures::meta("fip"),
        floating_network_id: "ext".into(),
        floating_ip_address: "203.0.113.40".parse().unwrap(),
        floating_subnet_id: "s-ext".into(),
        floating_port_id: "fip-port".into(),
        port_id: None,
        fixed_ip_address: None,
        router_id: Some("r".into()),
        port_forwardings: pfs,
    }
}

fn all_forwardings() -> Vec<PortForwarding> {
    vec![
        forwarding("pf-a", "a", "10.0.1.5", 22, 2222),
        forwarding("pf-b", "b", "10.0.1.6", 53, 5353),
        forwarding("pf-c", "c", "10.0.1.7", 7, 7000),
    ]
}

/// The world with the next hop known, and `pfs` on the floating IP.
fn world(pfs: Vec<PortForwarding>) -> Sim {
    let mut sim = Sim::with("h", 99, &[("physnet1", PATCH)], &Settings::default());
    sim.put(&network("net1", 1, NetworkType::Geneve));
    sim.put(&network("ext", 10, NetworkType::Flat));
    sim.put(&Subnet {
        enable_dhcp: false,
        ..fixtures::subnet("s-ext", "ext", "203.0.113.0/24")
    });
    sim.put(&Router {
        external_gateway: Some(ExternalGateway {
            network_id: "ext".into(),
            enable_snat: true,
            external_fixed_ips: vec![fixtures::fixed_ip("s-ext", "203.0.113.2")],
            port_id: "gw".into(),
        }),
        interfaces: vec![RouterInterface {
            port_id: "r1".into(),
            subnet_id: "s-net1".into(),
            network_id: "net1".into(),
            ip_address: "10.0.1.1".parse().unwrap(),
            cidr: "10.0.1.0/24".parse().unwrap(),
            mac_address: MacAddr(mac(201)),
        }],
        ..fixtures::router("r", 7)
    });
    sim.chassis("h2", "192.0.2.2");
    for (id, n, ip, host, ofport) in [
        ("a", 5, "10.0.1.5", "h", Some(1)),
        ("b", 6, "10.0.1.6", "h", Some(2)),
        ("c", 7, "10.0.1.7", "h2", None),
    ] {
        sim.put(&port(id, "net1", n, ip, host));
        if let Some(o) = ofport {
            sim.plug(id, o);
        }
    }
    sim.put(&Port {
        device_owner: owner::ROUTER_INTERFACE.into(),
        device_id: "r".into(),
        ..port("r1", "net1", 201, "10.0.1.1", "")
    });
    sim.put(&Port {
        device_owner: CHASSIS_SNAT.into(),
        device_id: "h".into(),
        ..port("snat-h", "ext", 20, "203.0.113.20", "h")
    });
    sim.put(&Port {
        device_owner: owner::FLOATING_IP.into(),
        ..port("fip-port", "ext", FIP_MAC, "203.0.113.40", "")
    });
    sim.put(&fip(pfs));
    sim.send(PATCH, &next_hop_reply());
    sim
}

/// The next hop's ARP reply to this host's SNAT address (it learns the next hop's MAC).
fn next_hop_reply() -> Vec<u8> {
    let reply = ArpRepr {
        operation: Operation::Reply,
        source_hardware_addr: EthernetAddress(OUTSIDE_MAC),
        source_protocol_addr: "203.0.113.1".parse().unwrap(),
        target_hardware_addr: EthernetAddress(mac(20)),
        target_protocol_addr: "203.0.113.20".parse().unwrap(),
    };
    let mut p = [0u8; 28];
    reply.emit(&mut arp::Packet::new_unchecked(&mut p[..]));
    EthernetRepr {
        src_addr: EthernetAddress(OUTSIDE_MAC),
        dst_addr: EthernetAddress(mac(20)),
        vlan: None,
        ethertype: EtherType::Arp,
    }
    .build(&p)
}

fn arp_request(target: &str) -> Vec<u8> {
    let a = ArpRepr {
        operation: Operation::Request,
        source_hardware_addr: EthernetAddress(OUTSIDE_MAC),
        source_protocol_addr: "203.0.113.1".parse().unwrap(),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target.parse().unwrap(),
    };
    let mut p = [0u8; 28];
    a.emit(&mut arp::Packet::new_unchecked(&mut p[..]));
    EthernetRepr {
        src_addr: EthernetAddress(OUTSIDE_MAC),
        dst_addr: EthernetAddress([0xff; 6]),
        vlan: None,
        ethertype: EtherType::Arp,
    }
    .build(&p)
}

fn udp_frame(src: &str, dst: &str, sport: u16, dport: u16, from: [u8; 6], to: [u8; 6]) -> Vec<u8> {
    let ip = |a: &str| a.parse().unwrap();
    support::udp_frame(from, to, (ip(src), sport), (ip(dst), dport))
}

/// (eth, ip, udp source port, udp destination port) of a frame.
fn parsed(frame: &[u8]) -> (EthernetRepr, Ipv4Repr, u16, u16) {
    let f = Frame::new_checked(frame).unwrap();
    let e = EthernetRepr::parse(&f).unwrap();
    let ip_bytes = &frame[f.header_len()..];
    let ip = Ipv4Repr::parse(&ipv4::Packet::new_checked(ip_bytes).unwrap()).unwrap();
    let u = udp::Packet::new_checked(&ip_bytes[20..]).unwrap();
    (e, ip, u.src_port(), u.dst_port())
}

const OUTSIDE: &str = "198.18.0.9";

/// From the outside to the floating IP's UDP `port`.
fn inbound(sim: &mut Sim, sport: u16, port: u16) -> fake_switch::Outcome {
    let f = udp_frame(
        OUTSIDE,
        "203.0.113.40",
        sport,
        port,
        OUTSIDE_MAC,
        mac(FIP_MAC),
    );
    sim.send(PATCH, &f).outcome
}

#[test]
fn a_forwarded_port_reaches_its_internal_end_and_the_reply_leaves_by_the_floating_ip() {
    let mut sim = world(all_forwardings());
    for (ext, ofport, ip, internal, vm_mac) in [
        (2222, 1, "10.0.1.5", 22, mac(5)),
        (5353, 2, "10.0.1.6", 53, mac(6)),
    ] {
        let ins = inbound(&mut sim, 40000, ext);
        assert_eq!(ins.ports(), vec![ofport], "{ext}: {ins}");
        let (e, h, sport, dport) = parsed(&ins.outputs[0].frame);
        assert_eq!(h.src_addr, OUTSIDE.parse::<Ipv4Addr>().unwrap());
        assert_eq!(h.dst_addr, ip.parse::<Ipv4Addr>().unwrap());
        assert_eq!((sport, dport), (40000, internal));
        assert_eq!(e.dst_addr.0, vm_mac);
        // The answer leaves from the floating IP and the external port.
        let reply = udp_frame(ip, OUTSIDE, internal, 40000, vm_mac, mac(201));
        let out = sim.send(ofport, &reply).outcome;
        assert_eq!(out.ports(), vec![PATCH], "{out}");
        let (e, h, sport, dport) = parsed(&out.outputs[0].frame);
        assert_eq!(h.src_addr, Ipv4Addr::new(203, 0, 113, 40));
        assert_eq!((sport, dport), (ext, 40000));
        assert_eq!(e.src_addr.0, mac(FIP_MAC), "the floating IP's MAC");
        assert_eq!(e.dst_addr.0, OUTSIDE_MAC);
    }
}

#[test]
fn other_ports_of_the_address_and_other_hosts_forwardings_go_nowhere() {
    let mut sim = world(all_forwardings());
    for port in [22, 2223, 7000] {
        let out = inbound(&mut sim, 40000, port);
        assert!(out.ports().is_empty(), "{port}: {out}");
    }
    // A VM's other traffic leaves by this host's SNAT address as before.
    let f = udp_frame("10.0.1.5", OUTSIDE, 4000, 53, mac(5), mac(201));
    let out = sim.send(1, &f).outcome;
    assert_eq!(out.ports(), vec![PATCH], "{out}");
    assert_eq!(
        parsed(&out.outputs[0].frame).1.src_addr,
        Ipv4Addr::new(203, 0, 113, 20)
    );
}

#[test]
fn the_address_is_answered_by_the_host_of_the_first_forwarding_only() {
    let mut sim = world(all_forwardings());
    let out = sim.send(PATCH, &arp_request("203.0.113.40")).outcome;
    assert_eq!(out.ports(), vec![PATCH], "{out}");
    let f = Frame::new_checked(&out.outputs[0].frame[..]).unwrap();
    let r = ArpRepr::parse(&arp::Packet::new_checked(f.payload()).unwrap()).unwrap();
    assert_eq!(r.source_hardware_addr.0, mac(FIP_MAC));
    // When the first forwarding's port is on h2, h2 holds the address: nothing here.
    let mut pfs = all_forwardings();
    pfs.rotate_right(1);
    let mut sim = world(pfs);
    let out = sim.send(PATCH, &arp_request("203.0.113.40")).outcome;
    assert!(!out.ports().contains(&PATCH), "{out}");
    let out = inbound(&mut sim, 40000, 2222);
    assert!(out.ports().is_empty(), "{out}");
}

#[test]
fn forwardings_removed_take_their_flows() {
    let mut sim = world(all_forwardings());
    assert_eq!(inbound(&mut sim, 1, 2222).ports(), vec![1]);
    sim.put(&fip(vec![forwarding("pf-b", "b", "10.0.1.6", 53, 5353)]));
    assert!(inbound(&mut sim, 2, 2222).ports().is_empty());
    assert_eq!(inbound(&mut sim, 3, 5353).ports(), vec![2]);
    sim.put(&fip(Vec::new()));
    assert!(inbound(&mut sim, 4, 5353).ports().is_empty());
    sim.check();
}
