//! Byte-level tests against real Linux traffic captured between network namespaces by
//! `tests/fixtures/capture.sh` (pcap files next to it, captured with TX checksum offload off,
//! so every checksum in them is final and tcpdump verified them all).

use packet::ethernet::{EtherType, EthernetRepr, Frame};
use packet::icmpv4::{self, Icmpv4Repr};
use packet::icmpv6::{self, Icmpv6Repr};
use packet::ipv4::{self, Ipv4Repr};
use packet::ipv6::{self, Ipv6Repr};
use packet::{Error, EthernetAddress, IpProtocol, arp, dhcpv4, tcp, udp};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const MAC_A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x0a]);
const MAC_B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x0b]);
const IP_A: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const IP6_A: Ipv6Addr = Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, 0, 1);
const IP6_B: Ipv6Addr = Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, 0, 2);

/// The Ethernet frames of a classic little-endian pcap file.
fn frames(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/tests/fixtures/{name}.pcap", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(&path).unwrap();
    assert_eq!(
        &data[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "{path}: not a LE microsecond pcap"
    );
    assert_eq!(
        u32::from_le_bytes(data[20..24].try_into().unwrap()),
        1,
        "link type Ethernet"
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(data[at + 16..at + 16 + caplen].to_vec());
        at += 16 + caplen;
    }
    out
}

/// The first frame carrying an ICMPv6 message of type `ty` right after the IPv6 header
/// (router solicitations come whenever the link comes up, so order is not fixed).
fn icmp6_frame(frames: &[Vec<u8>], ty: u8) -> Vec<u8> {
    frames
        .iter()
        .find(|f| f.len() > 54 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == ty)
        .unwrap_or_else(|| panic!("no ICMPv6 type {ty} in the capture"))
        .clone()
}

fn eth(frame: &[u8]) -> (EthernetRepr, &[u8]) {
    let f = Frame::new_checked(frame).unwrap();
    let repr = EthernetRepr::parse(&f).unwrap();
    (repr, &frame[f.header_len()..])
}

fn ipv4_of(frame: &[u8]) -> (Ipv4Repr, &[u8]) {
    let (e, payload) = eth(frame);
    assert_eq!(e.ethertype, EtherType::Ipv4);
    let p = ipv4::Packet::new_checked(payload).unwrap();
    let repr = Ipv4Repr::parse(&p).unwrap();
    // The capture's header is exactly what the Repr emits (no options here).
    assert_eq!(repr.build(p.payload()), p.packet());
    (repr, &payload[p.header_len()..usize::from(p.total_len())])
}

fn ipv6_of(frame: &[u8]) -> (Ipv6Repr, &[u8]) {
    let (e, payload) = eth(frame);
    assert_eq!(e.ethertype, EtherType::Ipv6);
    let p = ipv6::Packet::new_checked(payload).unwrap();
    let repr = Ipv6Repr::parse(&p).unwrap();
    assert_eq!(repr.build(p.payload()), p.packet());
    (
        repr,
        &payload[ipv6::HEADER_LEN..ipv6::HEADER_LEN + repr.payload_len],
    )
}

fn icmp6<'a>(repr: &Ipv6Repr, body: &'a [u8]) -> Icmpv6Repr<'a> {
    let p = icmpv6::Packet::new_checked(body).unwrap();
    Icmpv6Repr::parse(&p, &repr.src_addr, &repr.dst_addr).unwrap()
}

#[test]
fn arp_request_reply_and_ping() {
    let f = frames("arp_ping");
    assert_eq!(f.len(), 4);
    let (e, payload) = eth(&f[0]);
    assert_eq!(
        (e.src_addr, e.dst_addr, e.vlan, e.ethertype),
        (MAC_A, EthernetAddress::BROADCAST, None, EtherType::Arp)
    );
    let req = arp::ArpRepr::parse(&arp::Packet::new_checked(payload).unwrap()).unwrap();
    assert_eq!(req.operation, arp::Operation::Request);
    assert_eq!(
        (
            req.source_hardware_addr,
            req.source_protocol_addr,
            req.target_protocol_addr
        ),
        (MAC_A, IP_A, IP_B)
    );
    // Our responder's answer is byte for byte the one Linux sent.
    assert_eq!(arp::reply_frame(&req, MAC_B, None).unwrap(), f[1]);
    // Re-emitting the parsed request gives the captured bytes.
    let mut buf = [0u8; 28];
    req.emit(&mut arp::Packet::new_unchecked(&mut buf[..]));
    assert_eq!(&buf[..], payload);

    let (ip, body) = ipv4_of(&f[2]);
    assert_eq!(
        (ip.src_addr, ip.dst_addr, ip.protocol, ip.ttl, ip.dont_frag),
        (IP_A, IP_B, IpProtocol::Icmp, 64, true)
    );
    let p = icmpv4::Packet::new_checked(body).unwrap();
    let Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data,
    } = Icmpv4Repr::parse(&p).unwrap()
    else {
        panic!()
    };
    assert_eq!((seq_no, data.len()), (1, 24));
    assert_eq!(
        Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data
        }
        .build(),
        body
    );

    // Echo reply: the ICMP message equals Linux's; the IP header differs only in ident/DF.
    let (_, payload) = eth(&f[2]);
    let reply = icmpv4::echo_reply(&payload[..ip.payload_len + 20]).unwrap();
    let (linux_ip, linux_icmp) = ipv4_of(&f[3]);
    assert_eq!(&reply[20..], linux_icmp);
    let ours = Ipv4Repr::parse(&ipv4::Packet::new_checked(&reply[..]).unwrap()).unwrap();
    assert_eq!(
        (ours.src_addr, ours.dst_addr),
        (linux_ip.src_addr, linux_ip.dst_addr)
    );
}

#[test]
fn router_solicitation() {
    // rs.pcap holds the solicitation sent when the link came up.
    let f = &icmp6_frame(&frames("rs"), 133);
    let parsed = icmpv6::parse_frame(f).unwrap();
    assert_eq!(
        parsed.icmpv6,
        Icmpv6Repr::RouterSolicit {
            lladdr: Some(MAC_A)
        }
    );
    assert_eq!(parsed.ipv6.dst_addr, "ff02::2".parse::<Ipv6Addr>().unwrap());
    assert_eq!(
        parsed.ethernet.dst_addr,
        EthernetAddress::ipv6_multicast(&parsed.ipv6.dst_addr)
    );
    let (ip, body) = ipv6_of(f);
    assert_eq!(parsed.icmpv6.build(&ip.src_addr, &ip.dst_addr), body);
}

#[test]
fn neighbor_solicitation_and_advertisement() {
    let all = frames("ping6_nd");
    let f = [135, 136, 128, 129].map(|t| icmp6_frame(&all, t));
    let ns = icmpv6::parse_frame(&f[0]).unwrap();
    assert_eq!(
        ns.icmpv6,
        Icmpv6Repr::NeighborSolicit {
            target_addr: IP6_B,
            lladdr: Some(MAC_A)
        }
    );
    assert_eq!(ns.ipv6.hop_limit, 255);
    let na = icmpv6::parse_frame(&f[1]).unwrap();
    assert_eq!(
        na.icmpv6,
        Icmpv6Repr::NeighborAdvert {
            router: true,
            solicited: true,
            override_: true,
            target_addr: IP6_B,
            lladdr: Some(MAC_B)
        }
    );
    // B forwards, so Linux set the R flag; our NA builder gives the same frame byte for byte.
    assert_eq!(
        icmpv6::neighbor_advert_reply(&f[0], MAC_B, true).unwrap(),
        f[1]
    );
    // A hop limit other than 255 makes ND messages invalid.
    let mut forwarded = f[0].clone();
    forwarded[14 + 7] = 254;
    assert_eq!(
        icmpv6::parse_frame(&forwarded).unwrap_err(),
        Error::Malformed
    );
    // Any flipped bit is caught by the checksum.
    let mut corrupt = f[0].clone();
    corrupt[70] ^= 0x10;
    assert_eq!(icmpv6::parse_frame(&corrupt).unwrap_err(), Error::Checksum);
}

#[test]
fn ping6_echo() {
    let all = frames("ping6_nd");
    let f = [135, 136, 128, 129].map(|t| icmp6_frame(&all, t));
    let (ip, body) = ipv6_of(&f[2]);
    let Icmpv6Repr::EchoRequest { seq_no, data, .. } = icmp6(&ip, body) else {
        panic!()
    };
    assert_eq!((seq_no, data.len()), (1, 24));
    let (_, payload) = eth(&f[2]);
    let reply = icmpv6::echo_reply(payload).unwrap();
    let (_, linux_body) = ipv6_of(&f[3]);
    assert_eq!(&reply[40..], linux_body);
}

#[test]
fn ipv4_time_exceeded() {
    let f = frames("ttl4");
    let (_, original) = eth(&f[0]);
    let (linux_ip, linux_icmp) = ipv4_of(&f[1]);
    assert_eq!(linux_ip.tos, 0xc0);
    let p = icmpv4::Packet::new_checked(linux_icmp).unwrap();
    let Icmpv4Repr::TimeExceeded { code: 0, data } = Icmpv4Repr::parse(&p).unwrap() else {
        panic!()
    };
    assert_eq!(data, original); // Linux quotes the whole 84-byte datagram.

    let ours = icmpv4::time_exceeded(original, icmpv4::time_exceeded::TTL, IP_B).unwrap();
    let ip = ipv4::Packet::new_checked(&ours[..]).unwrap();
    let repr = Ipv4Repr::parse(&ip).unwrap();
    assert_eq!(
        (repr.src_addr, repr.dst_addr, repr.tos, repr.protocol),
        (IP_B, IP_A, 0xc0, IpProtocol::Icmp)
    );
    let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(
        Icmpv4Repr::parse(&icmp).unwrap(),
        Icmpv4Repr::TimeExceeded {
            code: 0,
            data: &original[..28]
        }
    );
    // Never an error about an error.
    assert_eq!(
        icmpv4::time_exceeded(&ours, 0, IP_B).unwrap_err(),
        Error::Unsupported
    );
}

#[test]
fn ipv6_time_exceeded_matches_linux() {
    let f = frames("hop6");
    let (_, original) = eth(&f[0]);
    let (linux_ip, linux_icmp) = ipv6_of(&f[1]);
    let ours = icmpv6::time_exceeded(original, icmpv6::time_exceeded::HOP_LIMIT, IP6_B).unwrap();
    // Linux quotes the whole packet too (it fits in 1280): the ICMPv6 bytes are identical.
    assert_eq!(&ours[40..], linux_icmp);
    let repr = Ipv6Repr::parse(&ipv6::Packet::new_checked(&ours[..]).unwrap()).unwrap();
    assert_eq!(
        (repr.src_addr, repr.dst_addr),
        (linux_ip.src_addr, linux_ip.dst_addr)
    );
    assert_eq!(
        icmp6(&linux_ip, linux_icmp),
        Icmpv6Repr::TimeExceeded {
            code: 0,
            data: original
        }
    );
}

#[test]
fn ipv6_errors_quote_at_most_1280_bytes() {
    let payload = vec![0x55u8; 3000];
    let ip = Ipv6Repr::new(IP6_A, IP6_B, IpProtocol::Udp, 0, 64).build(&payload);
    let err = icmpv6::packet_too_big(&ip, 1400, IP6_B).unwrap();
    assert_eq!(err.len(), 1280);
    let err = icmpv6::dst_unreachable(&ip, icmpv6::unreachable::PORT, IP6_B).unwrap();
    assert_eq!(err.len(), 1280);
    assert_eq!(&err[48..], &ip[..1232]);
}

#[test]
fn udp_and_port_unreachable_v4() {
    let f = frames("udp4_unreach");
    let (ip, body) = ipv4_of(&f[0]);
    let (src, dst) = (IpAddr::V4(ip.src_addr), IpAddr::V4(ip.dst_addr));
    let p = udp::Packet::new_checked(body).unwrap();
    assert_eq!((p.dst_port(), p.payload()), (9999, &b"hello\n"[..]));
    let repr = udp::UdpRepr::parse(&p, &src, &dst).unwrap();
    assert_eq!(repr.build(&src, &dst), body);
    // Any change to the pseudo-header breaks the checksum.
    let other = IpAddr::V4(Ipv4Addr::new(10, 9, 0, 3));
    assert_eq!(
        udp::UdpRepr::parse(&p, &src, &other).unwrap_err(),
        Error::Checksum
    );

    let (_, linux_icmp) = ipv4_of(&f[1]);
    let p = icmpv4::Packet::new_checked(linux_icmp).unwrap();
    let (_, original) = eth(&f[0]);
    assert_eq!(
        Icmpv4Repr::parse(&p).unwrap(),
        Icmpv4Repr::DstUnreachable {
            code: icmpv4::unreachable::PORT,
            next_hop_mtu: 0,
            data: original
        }
    );
    let ours = icmpv4::dst_unreachable(original, icmpv4::unreachable::PORT, 0, IP_B).unwrap();
    let icmp = icmpv4::Packet::new_checked(&ours[20..]).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!(icmp.data(), &original[..28]);
}

#[test]
fn udp_and_port_unreachable_v6() {
    let all = frames("udp6_unreach");
    let udp_frame = all
        .iter()
        .find(|f| f.len() > 54 && f[20] == 17)
        .unwrap()
        .clone();
    let f = [udp_frame, icmp6_frame(&all, 1)];
    let (ip, body) = ipv6_of(&f[0]);
    let (src, dst) = (IpAddr::V6(ip.src_addr), IpAddr::V6(ip.dst_addr));
    let repr = udp::UdpRepr::parse(&udp::Packet::new_checked(body).unwrap(), &src, &dst).unwrap();
    assert_eq!(repr.build(&src, &dst), body);
    // Zero means "no checksum" over IPv4 only.
    let mut zero = body.to_vec();
    zero[6..8].copy_from_slice(&[0, 0]);
    assert_eq!(
        udp::UdpRepr::parse(&udp::Packet::new_checked(&zero[..]).unwrap(), &src, &dst).unwrap_err(),
        Error::Checksum
    );

    let (_, original) = eth(&f[0]);
    let (_, linux_icmp) = ipv6_of(&f[1]);
    let ours = icmpv6::dst_unreachable(original, icmpv6::unreachable::PORT, IP6_B).unwrap();
    assert_eq!(&ours[40..], linux_icmp);
}

#[test]
fn tcp_rst_v4_matches_linux() {
    let f = frames("tcp_rst");
    let (ip, seg) = ipv4_of(&f[0]);
    let p = tcp::Packet::new_checked(seg).unwrap();
    let syn = tcp::TcpRepr::parse(&p, &IpAddr::V4(ip.src_addr), &IpAddr::V4(ip.dst_addr)).unwrap();
    assert_eq!(syn.flags, tcp::Flags(tcp::Flags::SYN));
    assert_eq!(
        (p.header_len(), p.options().len(), p.dst_port()),
        (40, 20, 9998)
    );
    let (_, original) = eth(&f[0]);
    let (ethertype, rst) = tcp::rst_packet(original).unwrap();
    assert_eq!(ethertype, EtherType::Ipv4);
    // The segment is byte for byte the RST Linux sent (checksum included).
    let (_, linux_rst) = ipv4_of(&f[1]);
    assert_eq!(&rst[20..], linux_rst);
    // A RST is never answered.
    assert_eq!(tcp::rst_packet(&rst).unwrap_err(), Error::Unsupported);
}

#[test]
fn tcp_rst_v6_matches_linux() {
    let f = frames("tcp6_rst");
    let (_, original) = eth(&f[0]);
    let (ethertype, rst) = tcp::rst_packet(original).unwrap();
    assert_eq!(ethertype, EtherType::Ipv6);
    let (linux_ip, linux_rst) = ipv6_of(&f[1]);
    assert_eq!(&rst[40..], linux_rst);
    let p = tcp::Packet::new_checked(linux_rst).unwrap();
    let repr = tcp::TcpRepr::parse(
        &p,
        &IpAddr::V6(linux_ip.src_addr),
        &IpAddr::V6(linux_ip.dst_addr),
    )
    .unwrap();
    assert_eq!(repr.flags, tcp::Flags(tcp::Flags::RST | tcp::Flags::ACK));
}

#[test]
fn dhclient_discover() {
    let f = frames("dhcp_discover");
    assert!(!f.is_empty());
    let parsed = dhcpv4::parse_frame(&f[0]).unwrap();
    assert_eq!((parsed.src_port, parsed.dst_port), (68, 67));
    assert_eq!(parsed.ipv4.dst_addr, Ipv4Addr::BROADCAST);
    let d = &parsed.dhcp;
    assert_eq!(
        (d.op, d.message_type),
        (dhcpv4::Op::Request, dhcpv4::MessageType::Discover)
    );
    assert_eq!(d.client_hardware_addr, MAC_A);
    assert_eq!(d.hostname.as_deref(), Some("vm"));
    let prl = d.parameter_request_list.as_ref().unwrap();
    assert_eq!(prl.len(), 13);
    for wanted in [1, 3, 6, 15, 26, 121] {
        assert!(prl.contains(&wanted), "dhclient asks for option {wanted}");
    }
    assert!(d.other_options.is_empty(), "{:?}", d.other_options);
    let (_, udp_payload) = {
        let (_, body) = ipv4_of(&f[0]);
        (0, body[8..].to_vec())
    };
    let view = dhcpv4::Packet::new_checked(&udp_payload[..]).unwrap();
    assert_eq!(view.transaction_id(), d.transaction_id);
    let rebuilt = d.build();
    assert_eq!(
        dhcpv4::DhcpRepr::parse(&dhcpv4::Packet::new_checked(&rebuilt[..]).unwrap()).unwrap(),
        *d
    );
    // Same fixed header; dhclient pads to 300 bytes as we do.
    assert_eq!(rebuilt.len(), udp_payload.len());
    assert_eq!(&rebuilt[..240], &udp_payload[..240]);
}
