//! Property tests: `parse(emit(repr)) == repr` for every Repr, and arbitrary or mutated
//! bytes never panic any view, parser or builder.

use packet::dhcpv4::{self, ClasslessRoute, DhcpRepr, MessageType, Op};
use packet::ethernet::{self, EtherType, EthernetRepr, VlanTag};
use packet::icmpv4::{self, Icmpv4Repr};
use packet::icmpv6::{self, Icmpv6Repr, PrefixInfo};
use packet::ipv4::{self, Ipv4Repr};
use packet::ipv6::{self, Ipv6Repr};
use packet::tcp::{self, Flags, TcpRepr};
use packet::udp::{self, UdpRepr};
use packet::{EthernetAddress, IpProtocol, arp};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn mac() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

fn ip_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (v4(), v4()).prop_map(|(a, b)| (IpAddr::V4(a), IpAddr::V4(b))),
        (v6(), v6()).prop_map(|(a, b)| (IpAddr::V6(a), IpAddr::V6(b))),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn ethernet_repr() -> impl Strategy<Value = EthernetRepr> {
    let vlan = proptest::option::of(
        (0..8u8, any::<bool>(), 0..4096u16).prop_map(|(pcp, dei, vid)| VlanTag { pcp, dei, vid }),
    );
    (mac(), mac(), vlan, any::<u16>())
        .prop_filter("0x8100 without a tag reads as a tag", |(_, _, v, t)| {
            v.is_some() || *t != 0x8100
        })
        .prop_map(|(src_addr, dst_addr, vlan, t)| EthernetRepr {
            src_addr,
            dst_addr,
            vlan,
            ethertype: EtherType::from(t),
        })
}

fn dhcp_repr() -> impl Strategy<Value = DhcpRepr> {
    const TYPED: [u8; 18] = [
        0, 1, 3, 6, 12, 15, 26, 50, 51, 52, 53, 54, 55, 58, 59, 61, 121, 255,
    ];
    let header = (
        any::<bool>(),
        any::<u8>(),
        any::<u32>(),
        any::<u16>(),
        any::<bool>(),
        v4(),
        v4(),
        v4(),
        v4(),
        mac(),
        any::<u8>(),
    );
    let route = (v4(), 0..=32u8, v4()).prop_map(|(d, l, g)| ClasslessRoute::new(d, l, g));
    let text = "[a-z0-9.-]{1,40}";
    let opts1 = (
        proptest::option::of(v4()),
        proptest::option::of(v4()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..20)),
        proptest::option::of(v4()),
        proptest::collection::vec(v4(), 0..70),
        proptest::collection::vec(v4(), 0..4),
        proptest::option::of(text),
    );
    let opts2 = (
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(route, 0..5),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 1..20)),
        proptest::option::of(text),
        proptest::collection::btree_map(
            any::<u8>().prop_filter("untyped", |c| !TYPED.contains(c)),
            bytes(300),
            0..4,
        ),
    );
    (header, opts1, opts2).prop_map(|(h, o1, o2)| {
        let mut d = DhcpRepr::new(
            if h.0 { Op::Request } else { Op::Reply },
            MessageType::from(h.10),
            h.2,
            h.9,
        );
        (
            d.hops,
            d.secs,
            d.broadcast,
            d.client_ip,
            d.your_ip,
            d.server_ip,
            d.relay_agent_ip,
        ) = (h.1, h.3, h.4, h.5, h.6, h.7, h.8);
        (
            d.requested_ip,
            d.server_identifier,
            d.parameter_request_list,
            d.subnet_mask,
            d.router,
            d.dns_servers,
            d.domain_name,
        ) = o1;
        (
            d.lease_time,
            d.renewal_time,
            d.rebinding_time,
            d.interface_mtu,
            d.classless_routes,
            d.client_identifier,
            d.hostname,
        ) = (o2.0, o2.1, o2.2, o2.3, o2.4, o2.5, o2.6);
        d.other_options = o2.7.into_iter().collect();
        d
    })
}

/// The owned parameters of an ICMPv4 message; the data is generated beside it.
#[derive(Debug, Clone)]
struct Icmpv4Shape(u8, u16, u16, u8);

fn icmpv4_shape() -> impl Strategy<Value = Icmpv4Shape> {
    (0..4u8, any::<u16>(), any::<u16>(), any::<u8>())
        .prop_map(|(k, a, b, c)| Icmpv4Shape(k, a, b, c))
}

fn icmpv4_repr<'a>(s: &Icmpv4Shape, data: &'a [u8]) -> Icmpv4Repr<'a> {
    let Icmpv4Shape(k, a, b, code) = *s;
    match k {
        0 => Icmpv4Repr::EchoRequest {
            ident: a,
            seq_no: b,
            data,
        },
        1 => Icmpv4Repr::EchoReply {
            ident: a,
            seq_no: b,
            data,
        },
        2 => Icmpv4Repr::DstUnreachable {
            code,
            next_hop_mtu: b,
            data,
        },
        _ => Icmpv4Repr::TimeExceeded { code, data },
    }
}

/// The owned parameters of an ICMPv6 message.
#[derive(Debug, Clone)]
struct Icmpv6Shape {
    kind: u8,
    nums: (u16, u16, u8, u32, u32),
    lladdr: Option<EthernetAddress>,
    mtu: Option<u32>,
    prefix_info: Vec<PrefixInfo>,
    target_addr: Ipv6Addr,
    flags: (bool, bool, bool, u8),
}

fn icmpv6_shape() -> impl Strategy<Value = Icmpv6Shape> {
    let prefix = (
        any::<u8>(),
        any::<bool>(),
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
        v6(),
    )
        .prop_map(|(l, o, a, v, p, x)| PrefixInfo {
            prefix_len: l,
            on_link: o,
            autonomous: a,
            valid_lifetime: v,
            preferred_lifetime: p,
            prefix: x,
        });
    let unicast = v6().prop_filter("NS targets are not multicast", |a| !a.is_multicast());
    (
        0..9u8,
        (
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            any::<u32>(),
            any::<u32>(),
        ),
        proptest::option::of(mac()),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(prefix, 0..3),
        unicast,
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            prop_oneof![Just(0u8), Just(0x40), Just(0x80), Just(0xc0)],
        ),
    )
        .prop_map(
            |(kind, nums, lladdr, mtu, prefix_info, target_addr, flags)| Icmpv6Shape {
                kind,
                nums,
                lladdr,
                mtu,
                prefix_info,
                target_addr,
                flags,
            },
        )
}

fn icmpv6_repr<'a>(s: &Icmpv6Shape, data: &'a [u8]) -> Icmpv6Repr<'a> {
    let (a, b, code, x, y) = s.nums;
    let (router, solicited, override_, flags) = s.flags;
    let (lladdr, target_addr) = (s.lladdr, s.target_addr);
    match s.kind {
        0 => Icmpv6Repr::EchoRequest {
            ident: a,
            seq_no: b,
            data,
        },
        1 => Icmpv6Repr::EchoReply {
            ident: a,
            seq_no: b,
            data,
        },
        2 => Icmpv6Repr::DstUnreachable { code, data },
        3 => Icmpv6Repr::PacketTooBig { mtu: x, data },
        4 => Icmpv6Repr::TimeExceeded { code, data },
        5 => Icmpv6Repr::RouterSolicit { lladdr },
        6 => Icmpv6Repr::RouterAdvert {
            hop_limit: code,
            flags,
            router_lifetime: a,
            reachable_time: x,
            retrans_time: y,
            lladdr,
            mtu: s.mtu,
            prefix_info: s.prefix_info.clone(),
        },
        7 => Icmpv6Repr::NeighborSolicit {
            target_addr,
            lladdr,
        },
        _ => Icmpv6Repr::NeighborAdvert {
            router,
            solicited,
            override_,
            target_addr,
            lladdr,
        },
    }
}

proptest! {
    #[test]
    fn ethernet_round_trip(repr in ethernet_repr(), payload in bytes(64)) {
        let frame = repr.build(&payload);
        let view = ethernet::Frame::new_checked(&frame[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&view).unwrap(), repr);
        prop_assert_eq!(view.payload(), &payload[..]);
    }

    #[test]
    fn arp_round_trip(op in any::<u16>(), sha in mac(), spa in v4(), tha in mac(), tpa in v4()) {
        let repr = arp::ArpRepr {
            operation: arp::Operation::from(op),
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: tha,
            target_protocol_addr: tpa,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut arp::Packet::new_unchecked(&mut buf[..]));
        prop_assert_eq!(arp::ArpRepr::parse(&arp::Packet::new_checked(&buf[..]).unwrap()).unwrap(), repr);
    }

    #[test]
    fn ipv4_round_trip(
        src in v4(), dst in v4(), proto in any::<u8>(), payload_len in 0..2000usize, ttl in any::<u8>(),
        tos in any::<u8>(), ident in any::<u16>(), df in any::<bool>(), mf in any::<bool>(), off in 0..8192u16,
    ) {
        let repr = Ipv4Repr {
            src_addr: src, dst_addr: dst, protocol: IpProtocol::from(proto), payload_len, ttl, tos, ident,
            dont_frag: df, more_frags: mf, frag_offset: off * 8,
        };
        let mut buf = vec![0u8; repr.buffer_len() + payload_len];
        repr.emit(&mut ipv4::Packet::new_unchecked(&mut buf[..]));
        prop_assert_eq!(Ipv4Repr::parse(&ipv4::Packet::new_checked(&buf[..]).unwrap()).unwrap(), repr);
    }

    #[test]
    fn ipv6_round_trip(src in v6(), dst in v6(), nh in any::<u8>(), payload_len in 0..2000usize, hop in any::<u8>(), tc in any::<u8>(), fl in 0..(1u32 << 20)) {
        let repr = Ipv6Repr {
            src_addr: src, dst_addr: dst, next_header: IpProtocol::from(nh), payload_len, hop_limit: hop,
            traffic_class: tc, flow_label: fl,
        };
        let mut buf = vec![0u8; repr.buffer_len() + payload_len];
        repr.emit(&mut ipv6::Packet::new_unchecked(&mut buf[..]));
        prop_assert_eq!(Ipv6Repr::parse(&ipv6::Packet::new_checked(&buf[..]).unwrap()).unwrap(), repr);
    }

    #[test]
    fn udp_round_trip((src, dst) in ip_pair(), sp in any::<u16>(), dp in any::<u16>(), payload in bytes(600)) {
        let repr = UdpRepr { src_port: sp, dst_port: dp, payload: &payload };
        let buf = repr.build(&src, &dst);
        prop_assert_eq!(buf.len(), repr.buffer_len());
        let view = udp::Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(UdpRepr::parse(&view, &src, &dst).unwrap(), repr);
    }

    #[test]
    fn tcp_round_trip(
        (src, dst) in ip_pair(), sp in any::<u16>(), dp in any::<u16>(), seq in any::<u32>(), ack in any::<u32>(),
        flags in any::<u8>(), win in any::<u16>(), urg in any::<u16>(), payload in bytes(600),
    ) {
        let repr = TcpRepr {
            src_port: sp, dst_port: dp, seq_number: seq, ack_number: ack, flags: Flags(flags),
            window_len: win, urgent_at: urg, payload: &payload,
        };
        let buf = repr.build(&src, &dst);
        let view = tcp::Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(TcpRepr::parse(&view, &src, &dst).unwrap(), repr);
    }

    #[test]
    fn icmpv4_round_trip(shape in icmpv4_shape(), data in bytes(600)) {
        let repr = icmpv4_repr(&shape, &data);
        let buf = repr.build();
        prop_assert_eq!(buf.len(), repr.buffer_len());
        prop_assert_eq!(&buf[8..], &data[..]);
        let view = icmpv4::Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Icmpv4Repr::parse(&view).unwrap(), repr);
    }

    #[test]
    fn icmpv6_round_trip(src in v6(), dst in v6(), shape in icmpv6_shape(), data in bytes(600)) {
        let repr = icmpv6_repr(&shape, &data);
        let buf = repr.build(&src, &dst);
        prop_assert_eq!(buf.len(), repr.buffer_len());
        let view = icmpv6::Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Icmpv6Repr::parse(&view, &src, &dst).unwrap(), repr);
    }

    #[test]
    fn dhcp_round_trip(repr in dhcp_repr()) {
        let buf = repr.build();
        prop_assert_eq!(buf.len(), repr.buffer_len());
        prop_assert!(buf.len() >= dhcpv4::MIN_MESSAGE_LEN);
        let view = dhcpv4::Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(DhcpRepr::parse(&view).unwrap(), repr);
    }

    #[test]
    fn dhcp_reply_frame_round_trip(repr in dhcp_repr(), server_mac in mac(), server_ip in v4()) {
        let repr = DhcpRepr { relay_agent_ip: Ipv4Addr::UNSPECIFIED, ..repr };
        let frame = dhcpv4::reply_frame(&repr, server_mac, server_ip, None).unwrap();
        prop_assert_eq!(dhcpv4::parse_frame(&frame).unwrap().dhcp, repr);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn random_bytes_never_panic(data in bytes(1600)) {
        exercise(&data);
    }

    #[test]
    fn mutated_captures_never_panic(index in any::<prop::sample::Index>(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6), cut in any::<prop::sample::Index>()) {
        let corpus = corpus();
        let mut frame = corpus[index.index(corpus.len())].clone();
        for (at, byte) in edits {
            let i = at.index(frame.len());
            frame[i] = byte;
        }
        frame.truncate(cut.index(frame.len() + 1));
        exercise(&frame);
    }
}

/// Every captured frame of the pcap fixtures.
fn corpus() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pcap") {
            let data = std::fs::read(path).unwrap();
            let mut at = 24;
            while at + 16 <= data.len() {
                let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
                out.push(data[at + 16..at + 16 + caplen].to_vec());
                at += 16 + caplen;
            }
        }
    }
    out
}

/// Feeds `data` to every view, accessor, parser and builder, as a whole frame and as each
/// protocol's own bytes. Panicking is the only failure.
fn exercise(data: &[u8]) {
    let (a4, b4) = (
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    );
    let (a6, b6) = (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
    let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);

    if let Ok(f) = ethernet::Frame::new_checked(data) {
        let _ = (
            f.dst_addr(),
            f.src_addr(),
            f.vlan(),
            f.ethertype(),
            f.payload(),
            EthernetRepr::parse(&f),
        );
        exercise_l3(f.payload());
    }
    exercise_l3(data);
    let _ = icmpv6::parse_frame(data);
    let _ = icmpv6::neighbor_advert_reply(data, mac, true);
    let _ = dhcpv4::parse_frame(data);

    if let Ok(p) = arp::Packet::new_checked(data) {
        let _ = (
            p.hardware_type(),
            p.protocol_type(),
            p.operation(),
            p.source_hardware_addr(),
            p.source_protocol_addr(),
        );
        let _ = (p.target_hardware_addr(), p.target_protocol_addr());
        if let Ok(r) = arp::ArpRepr::parse(&p) {
            let _ = arp::reply_frame(&r, mac, None);
        }
    }
    for (s, d) in [(a4, b4), (IpAddr::V6(a6), IpAddr::V6(b6))] {
        if let Ok(p) = udp::Packet::new_checked(data) {
            let _ = (
                p.src_port(),
                p.dst_port(),
                p.len(),
                p.checksum(),
                p.payload(),
                UdpRepr::parse(&p, &s, &d),
            );
        }
        if let Ok(p) = tcp::Packet::new_checked(data) {
            let _ = (
                p.src_port(),
                p.dst_port(),
                p.seq_number(),
                p.ack_number(),
                p.flags(),
                p.window_len(),
            );
            let _ = (p.checksum(), p.urgent_at(), p.options(), p.payload());
            if let Ok(r) = TcpRepr::parse(&p, &s, &d) {
                let _ = r.rst_reply();
            }
        }
    }
    if let Ok(p) = icmpv4::Packet::new_checked(data) {
        let _ = (
            p.msg_type(),
            p.msg_code(),
            p.checksum(),
            p.echo_ident(),
            p.echo_seq_no(),
            p.next_hop_mtu(),
            p.data(),
        );
        let _ = Icmpv4Repr::parse(&p);
    }
    if let Ok(p) = icmpv6::Packet::new_checked(data) {
        let _ = (
            p.msg_type(),
            p.msg_code(),
            p.checksum(),
            p.echo_ident(),
            p.echo_seq_no(),
            p.pkt_too_big_mtu(),
        );
        let _ = (
            p.cur_hop_limit(),
            p.flags(),
            p.router_lifetime(),
            p.reachable_time(),
            p.retrans_time(),
            p.target_addr(),
            p.body(),
        );
        let _ = Icmpv6Repr::parse(&p, &a6, &b6);
    }
    if let Ok(p) = dhcpv4::Packet::new_checked(data) {
        let _ = (
            p.op(),
            p.hops(),
            p.transaction_id(),
            p.secs(),
            p.flags(),
            p.client_ip(),
            p.your_ip(),
            p.server_ip(),
        );
        let _ = (
            p.relay_agent_ip(),
            p.client_hardware_addr(),
            p.magic_cookie(),
            p.option_iter().count(),
        );
        if let Ok(r) = DhcpRepr::parse(&p) {
            let _ = dhcpv4::reply_frame(&r, mac, Ipv4Addr::new(10, 0, 0, 1), None);
        }
    }
    let _ = dhcpv4::parse_classless_routes(data);
}

fn exercise_l3(data: &[u8]) {
    if let Ok(p) = ipv4::Packet::new_checked(data) {
        let _ = (
            p.version(),
            p.tos(),
            p.ident(),
            p.dont_frag(),
            p.more_frags(),
            p.frag_offset(),
            p.ttl(),
            p.protocol(),
        );
        let _ = (
            p.checksum(),
            p.src_addr(),
            p.dst_addr(),
            p.header(),
            p.payload(),
            Ipv4Repr::parse(&p),
        );
    }
    if let Ok(p) = ipv6::Packet::new_checked(data) {
        let _ = (
            p.version(),
            p.traffic_class(),
            p.flow_label(),
            p.next_header(),
            p.hop_limit(),
            p.src_addr(),
            p.dst_addr(),
        );
        let _ = (p.payload(), Ipv6Repr::parse(&p));
    }
    let _ = icmpv4::time_exceeded(data, 0, Ipv4Addr::new(10, 0, 0, 1));
    let _ = icmpv4::dst_unreachable(data, 4, 1400, Ipv4Addr::new(10, 0, 0, 1));
    let _ = icmpv4::echo_reply(data);
    let _ = icmpv6::time_exceeded(data, 0, Ipv6Addr::LOCALHOST);
    let _ = icmpv6::dst_unreachable(data, 4, Ipv6Addr::LOCALHOST);
    let _ = icmpv6::packet_too_big(data, 1280, Ipv6Addr::LOCALHOST);
    let _ = icmpv6::echo_reply(data);
    let _ = tcp::rst_packet(data);
}
