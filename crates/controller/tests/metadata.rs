//! The metadata service's flows on the fake switch: a VM's request leaves by the internal
//! port with the source rewritten to the address of its port key (whatever source it
//! forged), and the server's reply comes back to that VM, restored, by the flow the
//! request learned.

mod support;

use controller::apps::metadata::{self, DEFAULT_RANGE, MAC, PORT_NAME, client, server};
use model::{MacAddr, Network, Port, PortStatus, fixtures, owner};
use packet::ethernet::{EtherType, EthernetRepr};
use packet::ipv4::Ipv4Repr;
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv4Addr};
use support::sim::Sim;

const MD_OFPORT: u32 = 50;

fn mac(n: u8) -> MacAddr {
    MacAddr([0xfa, 0x16, 0x3e, 0, 0, n])
}

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

fn port(id: &str, n: u8, device_owner: &str) -> Port {
    Port {
        fixed_ips: vec![fixtures::fixed_ip("s", &ip(n).to_string())],
        // Filtering is security groups' own test; here frames go straight to services.
        port_security_enabled: false,
        security_groups: vec![],
        device_owner: device_owner.into(),
        status: PortStatus::Active,
        ..fixtures::port(id, "n", n.into(), "")
    }
}

/// Network n with the DHCP port d (10.0.0.2), VM ports a (10.0.0.5, key 5, OpenFlow port
/// 1) and b (10.0.0.6, key 6, port 2) plugged here, and the internal port.
fn world() -> Sim {
    let mut sim = Sim::new("h", 0);
    sim.put(&Network {
        subnets: vec!["s".into()],
        port_security_enabled: false,
        ..fixtures::network("n", 9)
    });
    sim.put(&fixtures::subnet("s", "n", "10.0.0.0/24"));
    sim.put(&port("d", 2, owner::DHCP));
    for (id, n, ofport) in [("a", 5, 1), ("b", 6, 2)] {
        sim.put(&port(id, n, ""));
        sim.plug(id, ofport);
    }
    sim.plug_named(PORT_NAME, MD_OFPORT);
    sim
}

/// A TCP segment in a frame.
fn tcp(eth: (MacAddr, [u8; 6]), src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), flags: u8) -> Vec<u8> {
    let mut seg = vec![0u8; 20];
    seg[0..2].copy_from_slice(&src.1.to_be_bytes());
    seg[2..4].copy_from_slice(&dst.1.to_be_bytes());
    seg[4..8].copy_from_slice(&1000u32.to_be_bytes());
    seg[12] = 5 << 4;
    seg[13] = flags;
    seg[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut p = packet::tcp::Packet::new_unchecked(&mut seg[..]);
    p.fill_checksum(&IpAddr::V4(src.0), &IpAddr::V4(dst.0));
    let ipv4 = Ipv4Repr::new(src.0, dst.0, IpProtocol::Tcp, seg.len()).build(&seg);
    EthernetRepr {
        src_addr: EthernetAddress(eth.0.0),
        dst_addr: EthernetAddress(eth.1),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&ipv4)
}

/// (eth dst, eth src, ip src, ip dst, tcp src, tcp dst) of a frame.
fn fields(f: &[u8]) -> ([u8; 6], [u8; 6], Ipv4Addr, Ipv4Addr, u16, u16) {
    let a = |o: usize| Ipv4Addr::new(f[o], f[o + 1], f[o + 2], f[o + 3]);
    (
        f[0..6].try_into().unwrap(),
        f[6..12].try_into().unwrap(),
        a(26),
        a(30),
        u16::from_be_bytes([f[34], f[35]]),
        u16::from_be_bytes([f[36], f[37]]),
    )
}

const SYN: u8 = 0x02;
const SYN_ACK: u8 = 0x12;

#[test]
fn a_request_reaches_the_server_as_its_port_and_the_reply_finds_the_vm() {
    let mut sim = world();
    let router_mac = mac(2).0; // sent to the DHCP port's MAC, as its route says
    let syn = tcp(
        (mac(5), router_mac),
        (ip(5), 40000),
        (metadata::IP, 80),
        SYN,
    );
    let out = sim.send(1, &syn).frames();
    let [(port, f)] = out.as_slice() else {
        panic!("one frame out: {out:?}");
    };
    assert_eq!(*port, MD_OFPORT, "to the internal port");
    let me = client(DEFAULT_RANGE, 5).unwrap();
    let srv = server(DEFAULT_RANGE);
    assert_eq!(fields(f), (MAC, mac(5).0, me, srv, 40000, 80));

    // The server answers the address of key 5: the VM gets it from 169.254.169.254.
    let synack = tcp((MacAddr(MAC), MAC), (srv, 80), (me, 40000), SYN_ACK);
    let out = sim.send(MD_OFPORT, &synack).frames();
    let [(port, f)] = out.as_slice() else {
        panic!("one frame out: {out:?}");
    };
    assert_eq!(*port, 1, "back to the VM that asked");
    assert_eq!(
        fields(f),
        (mac(5).0, router_mac, metadata::IP, ip(5), 80, 40000)
    );

    // A reply for a connection nobody opened (another TCP port) goes nowhere.
    let stray = tcp((MacAddr(MAC), MAC), (srv, 80), (me, 40001), SYN_ACK);
    assert!(sim.send(MD_OFPORT, &stray).frames().is_empty());
}

/// A SYN from port `n` at `ofport` to the metadata address; it learns its way back.
fn ask(sim: &mut Sim, n: u8, ofport: u32, sport: u16) {
    let syn = tcp((mac(n), mac(2).0), (ip(n), sport), (metadata::IP, 80), SYN);
    assert_eq!(sim.send(ofport, &syn).frames().len(), 1, "to the server");
}

/// The learned reply flows of the port with key `n`.
fn learned(sim: &Sim, n: u8) -> usize {
    let me = u128::from(u32::from(client(DEFAULT_RANGE, n.into()).unwrap()));
    sim.switch
        .flows(40)
        .iter()
        .filter(|f| f.match_.fields.iter().any(|m| m.value == me))
        .count()
}

#[test]
fn a_port_that_leaves_takes_its_learned_replies_and_no_one_elses() {
    // The request flows are shared by every port, so a port's learned replies cannot go
    // with its own flows: a later port given the same key must not get them.
    let mut sim = world();
    ask(&mut sim, 5, 1, 40000);
    ask(&mut sim, 5, 1, 40001);
    ask(&mut sim, 6, 2, 40000);
    assert_eq!((learned(&sim, 5), learned(&sim, 6)), (2, 1));
    sim.unplug("a");
    assert_eq!((learned(&sim, 5), learned(&sim, 6)), (0, 1), "unplugged");
    // Deleted from the store while still plugged.
    sim.delete(model::Table::Port, "b");
    assert_eq!(learned(&sim, 6), 0, "deleted");
}

#[test]
fn a_vm_forging_another_vms_addresses_is_still_itself() {
    let mut sim = world();
    // b (port security off) sends as a: a's MAC and address.
    let syn = tcp((mac(5), MAC), (ip(5), 40000), (metadata::IP, 80), SYN);
    let out = sim.send(2, &syn).frames();
    let [(port, f)] = out.as_slice() else {
        panic!("one frame out: {out:?}");
    };
    assert_eq!(*port, MD_OFPORT);
    let b = client(DEFAULT_RANGE, 6).unwrap();
    assert_eq!(fields(f).2, b, "the source names b's port, not a's");
    // The reply goes back to b, the port that sent it.
    let srv = server(DEFAULT_RANGE);
    let synack = tcp((MacAddr(MAC), MAC), (srv, 80), (b, 40000), SYN_ACK);
    let out = sim.send(MD_OFPORT, &synack).frames();
    assert_eq!(out.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [2]);
}

#[test]
fn the_metadata_address_is_answered_by_arp_and_nothing_flows_before_the_internal_port() {
    let mut sim = Sim::new("h", 0);
    sim.put(&Network {
        subnets: vec!["s".into()],
        port_security_enabled: false,
        ..fixtures::network("n", 9)
    });
    sim.put(&fixtures::subnet("s", "n", "10.0.0.0/24"));
    sim.put(&port("a", 5, ""));
    sim.plug("a", 1);
    let syn = tcp((mac(5), MAC), (ip(5), 40000), (metadata::IP, 80), SYN);
    let out = sim.send(1, &syn).frames();
    assert!(
        out.iter().all(|(p, _)| *p != MD_OFPORT),
        "no internal port yet: {out:?}"
    );
    sim.plug_named(PORT_NAME, MD_OFPORT);
    assert_eq!(sim.send(1, &syn).frames()[0].0, MD_OFPORT);
    // ARP for 169.254.169.254 is answered with the metadata MAC.
    let req = packet::arp::ArpRepr {
        operation: packet::arp::Operation::Request,
        source_hardware_addr: EthernetAddress(mac(5).0),
        source_protocol_addr: ip(5),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: metadata::IP,
    };
    let mut body = vec![0u8; req.buffer_len()];
    req.emit(&mut packet::arp::Packet::new_unchecked(&mut body[..]));
    let frame = EthernetRepr {
        src_addr: EthernetAddress(mac(5).0),
        dst_addr: EthernetAddress::BROADCAST,
        vlan: None,
        ethertype: EtherType::Arp,
    }
    .build(&body);
    let out = sim.send(1, &frame).frames();
    let [(1, reply)] = out.as_slice() else {
        panic!("the answer back out of the port: {out:?}");
    };
    assert_eq!(&reply[6..12], &MAC, "from the metadata MAC");
    assert_eq!(&reply[22..28], &MAC, "sha");
    assert_eq!(&reply[28..32], &metadata::IP.octets(), "spa");
}

#[test]
fn dns_over_tcp_to_the_dns_address_rides_the_same_way_and_never_mixes_with_metadata() {
    let mut sim = world();
    let dns = ip(2); // the DHCP port's address: the network's DNS address
    let srv = server(DEFAULT_RANGE);
    let me = client(DEFAULT_RANGE, 5).unwrap();
    // One source port, two services: DNS and metadata.
    let syn = tcp((mac(5), mac(2).0), (ip(5), 40000), (dns, 53), SYN);
    let out = sim.send(1, &syn).frames();
    let [(port, f)] = out.as_slice() else {
        panic!("one frame out: {out:?}");
    };
    assert_eq!(*port, MD_OFPORT, "to the internal port");
    assert_eq!(fields(f), (MAC, mac(5).0, me, srv, 40000, 53));
    let syn = tcp((mac(5), MAC), (ip(5), 40000), (metadata::IP, 80), SYN);
    assert_eq!(sim.send(1, &syn).frames()[0].0, MD_OFPORT);

    // Each answer comes back from the address the VM asked.
    let synack = tcp((MacAddr(MAC), MAC), (srv, 53), (me, 40000), SYN_ACK);
    let out = sim.send(MD_OFPORT, &synack).frames();
    let [(port, f)] = out.as_slice() else {
        panic!("one frame out: {out:?}");
    };
    assert_eq!(*port, 1);
    assert_eq!(fields(f), (mac(5).0, mac(2).0, dns, ip(5), 53, 40000));
    let synack = tcp((MacAddr(MAC), MAC), (srv, 80), (me, 40000), SYN_ACK);
    let out = sim.send(MD_OFPORT, &synack).frames();
    assert_eq!(fields(&out[0].1).2, metadata::IP);

    // TCP 53 to another address is not ours: it goes on as any packet.
    let syn = tcp((mac(5), mac(6).0), (ip(5), 40001), (ip(6), 53), SYN);
    let out = sim.send(1, &syn).frames();
    assert!(out.iter().all(|(p, _)| *p != MD_OFPORT), "{out:?}");
}

/// A TCP segment over IPv6 in a frame.
fn tcp6(
    eth: ([u8; 6], [u8; 6]),
    src: (std::net::Ipv6Addr, u16),
    dst: (std::net::Ipv6Addr, u16),
    flags: u8,
) -> Vec<u8> {
    let mut seg = vec![0u8; 20];
    seg[0..2].copy_from_slice(&src.1.to_be_bytes());
    seg[2..4].copy_from_slice(&dst.1.to_be_bytes());
    seg[12] = 5 << 4;
    seg[13] = flags;
    seg[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut p = packet::tcp::Packet::new_unchecked(&mut seg[..]);
    p.fill_checksum(&IpAddr::V6(src.0), &IpAddr::V6(dst.0));
    let ip = packet::ipv6::Ipv6Repr::new(src.0, dst.0, IpProtocol::Tcp, seg.len(), 64).build(&seg);
    EthernetRepr {
        src_addr: EthernetAddress(eth.0),
        dst_addr: EthernetAddress(eth.1),
        vlan: None,
        ethertype: EtherType::Ipv6,
    }
    .build(&ip)
}

/// (eth dst, eth src, ip src, ip dst, tcp src, tcp dst) of an IPv6 frame.
fn fields6(
    f: &[u8],
) -> (
    [u8; 6],
    [u8; 6],
    std::net::Ipv6Addr,
    std::net::Ipv6Addr,
    u16,
    u16,
) {
    let a = |o: usize| std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&f[o..o + 16]).unwrap());
    (
        f[0..6].try_into().unwrap(),
        f[6..12].try_into().unwrap(),
        a(22),
        a(38),
        u16::from_be_bytes([f[54], f[55]]),
        u16::from_be_bytes([f[56], f[57]]),
    )
}

#[test]
fn over_ipv6_a_request_to_fe80_a9fe_a9fe_reaches_the_server_as_its_port_and_back() {
    let mut sim = world();
    let ll = |n: u8| packet::ipv6::link_local(mac(n).0);
    // b forges a's link-local address and MAC: the switch still names b.
    for (ofport, key) in [(1u32, 5u32), (2, 6)] {
        let syn = tcp6((mac(5).0, MAC), (ll(5), 40000), (metadata::IP6, 80), SYN);
        let out = sim.send(ofport, &syn).frames();
        let [(port, f)] = out.as_slice() else {
            panic!("one frame out: {out:?}");
        };
        assert_eq!(*port, MD_OFPORT);
        let me = metadata::client6(key).unwrap();
        assert_eq!(
            fields6(f),
            (MAC, mac(5).0, me, metadata::server6(), 40000, 80)
        );
        let synack = tcp6((MAC, MAC), (metadata::server6(), 80), (me, 40000), SYN_ACK);
        let out = sim.send(MD_OFPORT, &synack).frames();
        let [(port, f)] = out.as_slice() else {
            panic!("one frame out: {out:?}");
        };
        assert_eq!(*port, ofport, "back to the port that asked");
        assert_eq!(fields6(f), (mac(5).0, MAC, metadata::IP6, ll(5), 80, 40000));
    }
}
