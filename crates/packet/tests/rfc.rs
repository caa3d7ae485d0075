//! Hand-assembled byte arrays from the RFCs and the behaviour of the reply builders.

use packet::dhcpv4::{self, ClasslessRoute, DhcpRepr, MessageType, Op};
use packet::ethernet::{EtherType, EthernetRepr, VlanTag};
use packet::icmpv4::{self, Icmpv4Repr};
use packet::icmpv6::{self, Icmpv6Repr, PrefixInfo};
use packet::ipv4::{self, Ipv4Repr};
use packet::ipv6::Ipv6Repr;
use packet::tcp::{Flags, TcpRepr};
use packet::{Error, EthernetAddress, IpProtocol, arp};
use std::net::{Ipv4Addr, Ipv6Addr};

const CLIENT: EthernetAddress = EthernetAddress([0xfa, 0x16, 0x3e, 0, 0, 1]);
const SERVER: EthernetAddress = EthernetAddress([0xfa, 0x16, 0x3e, 0, 0, 2]);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn rfc3442_destination_descriptors() {
    // The table of RFC 3442 section 3, each followed by a 4-byte router.
    let cases: [(&str, u8, &[u8]); 7] = [
        ("0.0.0.0", 0, &[0]),
        ("10.0.0.0", 8, &[8, 10]),
        ("10.0.0.0", 24, &[24, 10, 0, 0]),
        ("10.17.0.0", 16, &[16, 10, 17]),
        ("10.27.129.0", 24, &[24, 10, 27, 129]),
        ("10.229.0.128", 25, &[25, 10, 229, 0, 128]),
        ("10.198.122.47", 32, &[32, 10, 198, 122, 47]),
    ];
    for (dst, len, descriptor) in cases {
        let route = ClasslessRoute::new(ip(dst), len, ip("192.168.0.1"));
        let mut wire = descriptor.to_vec();
        wire.extend_from_slice(&[192, 168, 0, 1]);
        assert_eq!(dhcpv4::emit_classless_routes(&[route]), wire, "{dst}/{len}");
        assert_eq!(dhcpv4::parse_classless_routes(&wire).unwrap(), vec![route]);
    }
    // Host bits are cleared; widths over 32 and short descriptors are refused.
    assert_eq!(
        ClasslessRoute::new(ip("10.1.2.3"), 16, ip("0.0.0.0")).destination,
        ip("10.1.0.0")
    );
    assert_eq!(
        dhcpv4::parse_classless_routes(&[33, 1, 2, 3, 4, 5, 0, 0, 0, 0]),
        Err(Error::Malformed)
    );
    assert_eq!(
        dhcpv4::parse_classless_routes(&[24, 10, 0, 0, 1, 2]),
        Err(Error::Truncated)
    );
}

#[test]
fn ipv4_header_checksum() {
    // A classic worked example: the checksum of this header is 0xb861.
    let header = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    let mut packet = header.to_vec();
    packet.resize(0x73, 0);
    let p = ipv4::Packet::new_checked(&packet[..]).unwrap();
    assert!(p.verify_checksum());
    let repr = Ipv4Repr::parse(&p).unwrap();
    assert_eq!(
        (repr.protocol, repr.payload_len, repr.dont_frag),
        (IpProtocol::Udp, 0x73 - 20, true)
    );
    let mut out = [0u8; 20];
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
    assert_eq!(out, header);
    packet[10] ^= 1;
    assert_eq!(
        Ipv4Repr::parse(&ipv4::Packet::new_checked(&packet[..]).unwrap()),
        Err(Error::Checksum)
    );
    // IHL below 5 or a total length beyond the buffer is refused by new_checked.
    packet[0] = 0x44;
    assert_eq!(
        ipv4::Packet::new_checked(&packet[..]).unwrap_err(),
        Error::Malformed
    );
    assert_eq!(
        ipv4::Packet::new_checked(&header[..]).unwrap_err(),
        Error::Truncated
    );
}

#[test]
fn arp_builder_rules() {
    let req = arp::ArpRepr {
        operation: arp::Operation::Request,
        source_hardware_addr: CLIENT,
        source_protocol_addr: ip("10.0.0.5"),
        target_hardware_addr: EthernetAddress::default(),
        target_protocol_addr: ip("10.0.0.1"),
    };
    let vlan = Some(VlanTag {
        pcp: 0,
        dei: false,
        vid: 42,
    });
    let frame = arp::reply_frame(&req, SERVER, vlan).unwrap();
    assert_eq!(frame.len(), 18 + 28);
    assert_eq!(&frame[12..18], &[0x81, 0x00, 0x00, 42, 0x08, 0x06]);
    let reply = arp::ArpRepr::parse(&arp::Packet::new_checked(&frame[18..]).unwrap()).unwrap();
    assert_eq!(reply.operation, arp::Operation::Reply);
    assert_eq!(
        (reply.source_hardware_addr, reply.source_protocol_addr),
        (SERVER, ip("10.0.0.1"))
    );
    assert_eq!(
        (reply.target_hardware_addr, reply.target_protocol_addr),
        (CLIENT, ip("10.0.0.5"))
    );
    // No answer to replies or gratuitous ARP.
    assert!(arp::reply_frame(&reply, SERVER, None).is_none());
    let gratuitous = arp::ArpRepr {
        target_protocol_addr: req.source_protocol_addr,
        ..req
    };
    assert!(gratuitous.reply(SERVER).is_none());
    // Non-Ethernet/IPv4 ARP is viewable but not parsed.
    let mut odd = [0u8; 28];
    odd[1] = 6; // IEEE 802 hardware
    odd[2..6].copy_from_slice(&[0x08, 0x00, 6, 4]);
    assert_eq!(
        arp::ArpRepr::parse(&arp::Packet::new_checked(&odd[..]).unwrap()),
        Err(Error::Unsupported)
    );
}

#[test]
fn dad_probe_is_answered_to_all_nodes() {
    let target: Ipv6Addr = "fd00::10".parse().unwrap();
    let solicited_node: Ipv6Addr = "ff02::1:ff00:10".parse().unwrap();
    let ns = Icmpv6Repr::NeighborSolicit {
        target_addr: target,
        lladdr: None,
    };
    let ip = Ipv6Repr::new(
        Ipv6Addr::UNSPECIFIED,
        solicited_node,
        IpProtocol::Icmpv6,
        0,
        255,
    );
    let frame = icmpv6::build_frame(
        CLIENT,
        EthernetAddress::ipv6_multicast(&solicited_node),
        None,
        &ip,
        &ns,
    );
    let na = icmpv6::neighbor_advert_reply(&frame, SERVER, false).unwrap();
    let parsed = icmpv6::parse_frame(&na).unwrap();
    assert_eq!(
        parsed.ethernet.dst_addr,
        EthernetAddress([0x33, 0x33, 0, 0, 0, 1])
    );
    assert_eq!(
        (
            parsed.ipv6.src_addr,
            parsed.ipv6.dst_addr,
            parsed.ipv6.hop_limit
        ),
        (target, icmpv6::ALL_NODES, 255)
    );
    assert_eq!(
        parsed.icmpv6,
        Icmpv6Repr::NeighborAdvert {
            router: false,
            solicited: false,
            override_: true,
            target_addr: target,
            lladdr: Some(SERVER)
        }
    );
    // Only solicitations are answered.
    assert_eq!(
        icmpv6::neighbor_advert_reply(&na, SERVER, false),
        Err(Error::Unsupported)
    );
}

#[test]
fn router_advertisement_options() {
    let src: Ipv6Addr = "fe80::1".parse().unwrap();
    let ra = Icmpv6Repr::RouterAdvert {
        hop_limit: 64,
        flags: icmpv6::RA_OTHER,
        router_lifetime: 1800,
        reachable_time: 0,
        retrans_time: 0,
        lladdr: Some(SERVER),
        mtu: Some(1400),
        prefix_info: vec![PrefixInfo {
            prefix_len: 64,
            on_link: true,
            autonomous: true,
            valid_lifetime: 86400,
            preferred_lifetime: 14400,
            prefix: "fd00:1::".parse().unwrap(),
        }],
    };
    let bytes = ra.build(&src, &icmpv6::ALL_NODES);
    assert_eq!(bytes.len(), 16 + 8 + 8 + 32);
    assert_eq!(
        &bytes[..8],
        &[134, 0, bytes[2], bytes[3], 64, 0x40, 0x07, 0x08]
    );
    assert_eq!(&bytes[16..24], &[1, 1, 0xfa, 0x16, 0x3e, 0, 0, 2]);
    assert_eq!(&bytes[24..32], &[5, 1, 0, 0, 0, 0, 0x05, 0x78]);
    assert_eq!(&bytes[32..36], &[3, 4, 64, 0xc0]);
    let p = icmpv6::Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(Icmpv6Repr::parse(&p, &src, &icmpv6::ALL_NODES).unwrap(), ra);
    // A zero-length option invalidates the message (RFC 4861 4.6).
    let mut bad = bytes.clone();
    bad[17] = 0;
    let mut p = icmpv6::Packet::new_unchecked(&mut bad[..]);
    p.fill_checksum(&src, &icmpv6::ALL_NODES);
    assert_eq!(
        Icmpv6Repr::parse(
            &icmpv6::Packet::new_checked(&bad[..]).unwrap(),
            &src,
            &icmpv6::ALL_NODES
        ),
        Err(Error::Malformed)
    );
}

#[test]
fn icmpv4_error_rules() {
    let udp = [0u8; 30];
    let orig = Ipv4Repr::new(ip("10.0.0.5"), ip("10.1.0.9"), IpProtocol::Udp, 0).build(&udp);
    let err = icmpv4::dst_unreachable(
        &orig,
        icmpv4::unreachable::FRAG_NEEDED,
        1400,
        ip("10.0.0.1"),
    )
    .unwrap();
    let p = icmpv4::Packet::new_checked(&err[20..]).unwrap();
    assert_eq!(
        Icmpv4Repr::parse(&p).unwrap(),
        Icmpv4Repr::DstUnreachable {
            code: 4,
            next_hop_mtu: 1400,
            data: &orig[..28]
        }
    );
    // The MTU field is zero for other codes.
    let err =
        icmpv4::dst_unreachable(&orig, icmpv4::unreachable::HOST, 1400, ip("10.0.0.1")).unwrap();
    assert_eq!(
        icmpv4::Packet::new_checked(&err[20..])
            .unwrap()
            .next_hop_mtu(),
        0
    );
    // Not about broadcasts, multicasts or non-first fragments.
    for bad in [
        Ipv4Repr {
            dst_addr: Ipv4Addr::BROADCAST,
            ..Ipv4Repr::new(ip("10.0.0.5"), ip("0.0.0.0"), IpProtocol::Udp, 0)
        },
        Ipv4Repr::new(ip("10.0.0.5"), ip("224.0.0.251"), IpProtocol::Udp, 0),
        Ipv4Repr::new(ip("0.0.0.0"), ip("10.0.0.1"), IpProtocol::Udp, 0),
        Ipv4Repr {
            frag_offset: 1480,
            ..Ipv4Repr::new(ip("10.0.0.5"), ip("10.1.0.9"), IpProtocol::Udp, 0)
        },
    ] {
        assert_eq!(
            icmpv4::time_exceeded(&bad.build(&udp), 0, ip("10.0.0.1")),
            Err(Error::Unsupported),
            "{bad:?}"
        );
    }
    // A short original is quoted whole.
    let short = Ipv4Repr::new(ip("10.0.0.5"), ip("10.1.0.9"), IpProtocol::Udp, 0).build(&[1, 2, 3]);
    let err = icmpv4::time_exceeded(&short, 0, ip("10.0.0.1")).unwrap();
    assert_eq!(&err[28..], &short[..]);
}

#[test]
fn tcp_rst_rules() {
    let base = TcpRepr {
        src_port: 40000,
        dst_port: 22,
        seq_number: 1000,
        ack_number: 5000,
        flags: Flags(Flags::ACK | Flags::PSH),
        window_len: 100,
        urgent_at: 0,
        payload: b"abc",
    };
    // With ACK: RST with seq = their ack and no ACK.
    let rst = base.rst_reply().unwrap();
    assert_eq!(
        (rst.src_port, rst.dst_port, rst.seq_number, rst.flags),
        (22, 40000, 5000, Flags(Flags::RST))
    );
    // Without ACK: seq 0, ack = seq + length (SYN and FIN count one each).
    let syn = TcpRepr {
        flags: Flags(Flags::SYN | Flags::FIN),
        ..base
    };
    let rst = syn.rst_reply().unwrap();
    assert_eq!(
        (rst.seq_number, rst.ack_number, rst.flags),
        (0, 1005, Flags(Flags::RST | Flags::ACK))
    );
    assert!(
        TcpRepr {
            flags: Flags(Flags::RST),
            ..base
        }
        .rst_reply()
        .is_none()
    );
}

fn discover(broadcast: bool) -> DhcpRepr {
    let mut d = DhcpRepr::new(Op::Request, MessageType::Discover, 0x1234_5678, CLIENT);
    d.broadcast = broadcast;
    d.client_identifier = Some(vec![1, 0xfa, 0x16, 0x3e, 0, 0, 1]);
    d.parameter_request_list = Some(vec![1, 3, 6, 15, 26, 121]);
    d
}

fn offer(request: &DhcpRepr) -> DhcpRepr {
    let mut o = DhcpRepr::reply_to(request, MessageType::Offer, ip("10.0.0.5"), ip("10.0.0.2"));
    o.subnet_mask = Some(ip("255.255.255.0"));
    o.router = vec![ip("10.0.0.1")];
    o.dns_servers = vec![ip("8.8.8.8"), ip("1.1.1.1")];
    o.domain_name = Some("openstacklocal".into());
    o.hostname = Some("host-10-0-0-5".into());
    o.lease_time = Some(86400);
    o.renewal_time = Some(43200);
    o.rebinding_time = Some(75600);
    o.interface_mtu = Some(1400);
    o.classless_routes = vec![
        ClasslessRoute::new(ip("169.254.169.254"), 32, ip("10.0.0.2")),
        ClasslessRoute::new(ip("0.0.0.0"), 0, ip("10.0.0.1")),
    ];
    // extra_dhcp_opts: TFTP server name and bootfile name.
    o.other_options = vec![(66, b"10.0.0.3".to_vec()), (67, b"pxelinux.0".to_vec())];
    o
}

#[test]
fn dhcp_offer_bytes_and_round_trip() {
    let req = discover(false);
    let o = offer(&req);
    let bytes = o.build();
    assert_eq!(bytes[0], 2);
    assert_eq!(&bytes[4..8], &[0x12, 0x34, 0x56, 0x78]);
    assert_eq!(&bytes[16..20], &[10, 0, 0, 5]);
    assert_eq!(&bytes[236..243], &[99, 130, 83, 99, 53, 1, 2]);
    let find = |code: u8| -> Vec<u8> {
        let p = dhcpv4::Packet::new_checked(&bytes[..]).unwrap();
        p.option_iter()
            .map(|o| o.unwrap())
            .find(|(c, _)| *c == code)
            .unwrap()
            .1
            .to_vec()
    };
    assert_eq!(find(54), [10, 0, 0, 2]);
    assert_eq!(find(26), [0x05, 0x78]);
    assert_eq!(find(51), 86400u32.to_be_bytes());
    assert_eq!(
        find(121),
        [32, 169, 254, 169, 254, 10, 0, 0, 2, 0, 10, 0, 0, 1]
    );
    assert_eq!(find(61), [1, 0xfa, 0x16, 0x3e, 0, 0, 1]);
    assert_eq!(find(67), b"pxelinux.0");
    assert_eq!(
        DhcpRepr::parse(&dhcpv4::Packet::new_checked(&bytes[..]).unwrap()).unwrap(),
        o
    );
}

#[test]
fn dhcp_reply_destinations() {
    let server_ip = ip("10.0.0.2");
    let dest = |reply: &DhcpRepr| {
        let frame = dhcpv4::reply_frame(reply, SERVER, server_ip, None).unwrap();
        let parsed = dhcpv4::parse_frame(&frame).unwrap();
        assert_eq!((parsed.src_port, parsed.dst_port), (67, 68));
        assert_eq!(parsed.ipv4.src_addr, server_ip);
        assert_eq!(&parsed.dhcp, reply);
        (parsed.ethernet.dst_addr, parsed.ipv4.dst_addr)
    };
    assert_eq!(dest(&offer(&discover(false))), (CLIENT, ip("10.0.0.5")));
    assert_eq!(
        dest(&offer(&discover(true))),
        (EthernetAddress::BROADCAST, Ipv4Addr::BROADCAST)
    );
    let mut renewing = discover(false);
    renewing.message_type = MessageType::Request;
    renewing.client_ip = ip("10.0.0.5");
    let ack = DhcpRepr::reply_to(&renewing, MessageType::Ack, ip("10.0.0.5"), server_ip);
    assert_eq!(dest(&ack), (CLIENT, ip("10.0.0.5")));
    let nak = DhcpRepr::reply_to(
        &renewing,
        MessageType::Nak,
        Ipv4Addr::UNSPECIFIED,
        server_ip,
    );
    assert_eq!(
        dest(&nak),
        (EthernetAddress::BROADCAST, Ipv4Addr::BROADCAST)
    );
    let mut relayed = discover(false);
    relayed.relay_agent_ip = ip("10.9.9.9");
    let o = offer(&relayed);
    assert_eq!(
        dhcpv4::reply_frame(&o, SERVER, server_ip, None),
        Err(Error::Unsupported)
    );
    // VLAN-tagged frames parse too.
    let tagged = dhcpv4::reply_frame(
        &offer(&discover(false)),
        SERVER,
        server_ip,
        Some(VlanTag {
            pcp: 0,
            dei: false,
            vid: 7,
        }),
    )
    .unwrap();
    let parsed = dhcpv4::parse_frame(&tagged).unwrap();
    assert_eq!(parsed.ethernet.vlan.map(|v| v.vid), Some(7));
    assert_eq!(
        parsed.ethernet,
        EthernetRepr {
            ethertype: EtherType::Ipv4,
            ..parsed.ethernet
        }
    );
}

#[test]
fn dhcp_option_edge_cases() {
    let base = discover(false).build();
    let with_options = |opts: &[u8]| {
        let mut b = base[..240].to_vec();
        b.extend_from_slice(opts);
        b
    };
    let parse = |b: &[u8]| DhcpRepr::parse(&dhcpv4::Packet::new_checked(b).unwrap());
    // Long options are split on emit and concatenated on parse (RFC 3396).
    let mut big = discover(false);
    big.other_options = vec![(224, (0..=255u8).chain(0..100).collect())];
    let bytes = big.build();
    assert_eq!(parse(&bytes).unwrap(), big);
    // Overload is refused; a missing message type or bad cookie is malformed.
    assert_eq!(
        parse(&with_options(&[53, 1, 1, 52, 1, 3, 255])),
        Err(Error::Unsupported)
    );
    assert_eq!(
        parse(&with_options(&[12, 2, b'v', b'm', 255])),
        Err(Error::Malformed)
    );
    let mut bad_cookie = bytes.clone();
    bad_cookie[236] = 0;
    assert_eq!(parse(&bad_cookie), Err(Error::Malformed));
    // A truncated option is refused; pads are skipped; the end option stops parsing.
    assert_eq!(
        parse(&with_options(&[53, 1, 1, 12, 5, b'a'])),
        Err(Error::Truncated)
    );
    let d = parse(&with_options(&[0, 0, 53, 1, 3, 0, 255, 12, 9])).unwrap();
    assert_eq!((d.message_type, d.hostname), (MessageType::Request, None));
    // Undecodable typed options are kept raw instead of failing the message.
    let d = parse(&with_options(&[
        53, 1, 1, 12, 2, 0xff, 0xfe, 50, 3, 1, 2, 3, 255,
    ]))
    .unwrap();
    assert_eq!(
        d.other_options,
        vec![(12, vec![0xff, 0xfe]), (50, vec![1, 2, 3])]
    );
    // Too short for the fixed header.
    assert_eq!(
        dhcpv4::Packet::new_checked(&bytes[..239]).unwrap_err(),
        Error::Truncated
    );
}
