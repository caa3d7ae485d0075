//! The probes' packets, sans-IO: what the checking host sends a member (from the
//! balancer's VIP: an address the network already gave the balancer, so the member
//! answers it as any neighbour, through the ARP or ND responder) and what the member's
//! answer means, in IPv4 or IPv6 (the VIP's family). Replies are untrusted bytes from a
//! VM: nothing here panics on them.
//!
//! - TCP: SYN; a SYN-ACK is up (the half-open connection is reset), a RST down.
//! - HTTP: SYN, then the GET on the SYN-ACK; the status line of the answer against the
//!   expected codes; then a RST.
//! - PING: an ICMP or ICMPv6 echo request; its echo reply is up.
//! - UDP-CONNECT: an empty datagram; an ICMP (ICMPv6) port unreachable quoting it is
//!   down, any answer or silence until the timeout up (Octavia's meaning).
//!
//! An IPv6 answer is read only when its transport header follows the fixed header (no
//! extension headers): a member answering a probe sends none.

use packet::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};
use packet::icmpv4::{self, Icmpv4Repr};
use packet::icmpv6::{self, Icmpv6Repr};
use packet::ip::IpProtocol;
use packet::ipv4::{self, Ipv4Repr};
use packet::ipv6::{self, Ipv6Repr};
use packet::tcp::{self, Flags, TcpRepr};
use packet::udp::{self, UdpRepr};
use std::net::IpAddr;

/// Probes come from these source ports (TCP, UDP): above Linux's ephemeral range
/// (32768–60999), so a member's own connections to the VIP never look like answers.
pub const PORT_BASE: u16 = 0xf000;

/// The source port of probe `token`.
pub fn source_port(token: u16) -> u16 {
    PORT_BASE | (token & 0x0fff)
}

/// Who talks: the balancer's VIP and the member's monitored address (of the VIP's
/// family) and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    pub vip: IpAddr,
    pub vip_mac: [u8; 6],
    pub member: IpAddr,
    pub member_mac: [u8; 6],
    pub port: u16,
}

impl Ends {
    fn frame(&self, protocol: IpProtocol, l4: &[u8]) -> Vec<u8> {
        let (ip, ethertype) = match (self.vip, self.member) {
            (IpAddr::V4(vip), IpAddr::V4(member)) => (
                Ipv4Repr::new(vip, member, protocol, l4.len()).build(l4),
                EtherType::Ipv4,
            ),
            (vip, member) => (
                Ipv6Repr::new(v6(vip), v6(member), protocol, l4.len(), HOP_LIMIT).build(l4),
                EtherType::Ipv6,
            ),
        };
        EthernetRepr {
            src_addr: EthernetAddress(self.vip_mac),
            dst_addr: EthernetAddress(self.member_mac),
            vlan: None,
            ethertype,
        }
        .build(&ip)
    }

    fn tcp(&self, sport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let seg = TcpRepr {
            src_port: sport,
            dst_port: self.port,
            seq_number: seq,
            ack_number: ack,
            flags: Flags(flags),
            window_len: 65535,
            urgent_at: 0,
            payload,
        }
        .build(&self.vip, &self.member);
        self.frame(IpProtocol::Tcp, &seg)
    }

    /// The SYN that opens a TCP or HTTP probe.
    pub fn syn(&self, sport: u16, isn: u32) -> Vec<u8> {
        self.tcp(sport, isn, 0, Flags::SYN, &[])
    }

    /// The request of an HTTP probe, acknowledging the SYN-ACK (`seq`, `ack`: ours).
    pub fn request(&self, sport: u16, seq: u32, ack: u32, path: &str) -> Vec<u8> {
        let req = self.http_get(path);
        self.tcp(sport, seq, ack, Flags::ACK | Flags::PSH, req.as_bytes())
    }

    /// An HTTP probe's request.
    pub fn http_get(&self, path: &str) -> String {
        let host = match self.member {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        format!(
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: dragonflow-health\r\nConnection: close\r\n\r\n"
        )
    }

    /// The RST that ends a probe's connection.
    pub fn rst(&self, sport: u16, seq: u32) -> Vec<u8> {
        self.tcp(sport, seq, 0, Flags::RST, &[])
    }

    /// A PING probe's echo request.
    pub fn echo(&self, token: u16) -> Vec<u8> {
        let (ident, seq_no, data) = (ECHO_IDENT, token, &b"dragonflow-health"[..]);
        match (self.vip, self.member) {
            (IpAddr::V4(_), IpAddr::V4(_)) => {
                let msg = Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                }
                .build();
                self.frame(IpProtocol::Icmp, &msg)
            }
            (vip, member) => {
                let msg = Icmpv6Repr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                }
                .build(&v6(vip), &v6(member));
                self.frame(IpProtocol::Icmpv6, &msg)
            }
        }
    }

    /// A UDP-CONNECT probe's datagram.
    pub fn datagram(&self, sport: u16) -> Vec<u8> {
        let d = UdpRepr {
            src_port: sport,
            dst_port: self.port,
            payload: &[],
        }
        .build(&self.vip, &self.member);
        self.frame(IpProtocol::Udp, &d)
    }
}

/// The hop limit of IPv6 probes (as Linux's default).
const HOP_LIMIT: u8 = 64;

/// An address as IPv6 (an IPv4 one mapped: only for mixed ends, which no target has).
fn v6(a: IpAddr) -> std::net::Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// The echo identifier of every PING probe (the sequence number is the token).
pub const ECHO_IDENT: u16 = 0xdf1b;

/// What a member's packet to the VIP says of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A SYN-ACK to source port `port`: `seq` is the member's, `ack` acknowledges ours.
    SynAck { port: u16, seq: u32, ack: u32 },
    /// A RST to `port`: the member's port is closed.
    Reset { port: u16 },
    /// Data on the connection of `port`: the HTTP status code when it starts with one.
    Data { port: u16, status: Option<u16> },
    /// The echo reply of probe `token`.
    Echo { token: u16 },
    /// An ICMP port unreachable quoting a datagram from `port`.
    PortUnreachable { port: u16 },
    /// A UDP answer to `port`.
    Datagram { port: u16 },
}

/// What `frame` (from the member at `member`, to `vip`) answers, if it answers a probe.
pub fn answer(frame: &[u8], vip: IpAddr, member: IpAddr, port: u16) -> Option<Answer> {
    let eth = Frame::new_checked(frame).ok()?;
    match (eth.ethertype(), vip, member) {
        (EtherType::Ipv4, IpAddr::V4(vip), IpAddr::V4(member)) => {
            let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
            let repr = Ipv4Repr::parse(&ip).ok()?;
            if repr.src_addr != member
                || repr.dst_addr != vip
                || repr.more_frags
                || repr.frag_offset != 0
            {
                return None;
            }
            let body = ip.payload().get(..repr.payload_len)?;
            match repr.protocol {
                IpProtocol::Icmp => icmp4(body, vip, member, port),
                p => transport(p, body, (vip.into(), member.into()), port),
            }
        }
        (EtherType::Ipv6, IpAddr::V6(vip6), IpAddr::V6(member6)) => {
            let ip = ipv6::Packet::new_checked(eth.payload()).ok()?;
            let repr = Ipv6Repr::parse(&ip).ok()?;
            if repr.src_addr != member6 || repr.dst_addr != vip6 {
                return None;
            }
            let body = ip.payload().get(..repr.payload_len)?;
            match repr.next_header {
                IpProtocol::Icmpv6 => icmp6(body, vip6, member6, port),
                p => transport(p, body, (vip, member), port),
            }
        }
        _ => None,
    }
}

/// A TCP or UDP answer (`body`: the IP payload) from `member` to `vip`.
fn transport(
    protocol: IpProtocol,
    body: &[u8],
    (vip, member): (IpAddr, IpAddr),
    port: u16,
) -> Option<Answer> {
    match protocol {
        IpProtocol::Tcp => {
            let p = tcp::Packet::new_checked(body).ok()?;
            let seg = TcpRepr::parse(&p, &member, &vip).ok()?;
            if seg.src_port != port || seg.dst_port & PORT_BASE != PORT_BASE {
                return None;
            }
            let f = seg.flags;
            let port = seg.dst_port;
            if f.has(Flags::RST) {
                Some(Answer::Reset { port })
            } else if f.has(Flags::SYN) && f.has(Flags::ACK) {
                Some(Answer::SynAck {
                    port,
                    seq: seg.seq_number,
                    ack: seg.ack_number,
                })
            } else if !seg.payload.is_empty() {
                Some(Answer::Data {
                    port,
                    status: status_code(seg.payload),
                })
            } else {
                None
            }
        }
        IpProtocol::Udp => {
            let p = udp::Packet::new_checked(body).ok()?;
            let d = UdpRepr::parse(&p, &member, &vip).ok()?;
            (d.src_port == port && d.dst_port & PORT_BASE == PORT_BASE)
                .then_some(Answer::Datagram { port: d.dst_port })
        }
        _ => None,
    }
}

/// The answer a quoted UDP header `l4` (of our datagram to the member's `port`) gives.
fn quoted_udp(l4: &[u8], port: u16) -> Option<Answer> {
    let sport = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
    let dport = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
    (dport == port && sport & PORT_BASE == PORT_BASE)
        .then_some(Answer::PortUnreachable { port: sport })
}

fn icmp4(
    body: &[u8],
    vip: std::net::Ipv4Addr,
    member: std::net::Ipv4Addr,
    port: u16,
) -> Option<Answer> {
    let p = icmpv4::Packet::new_checked(body).ok()?;
    match Icmpv4Repr::parse(&p).ok()? {
        Icmpv4Repr::EchoReply { ident, seq_no, .. } if ident == ECHO_IDENT => {
            Some(Answer::Echo { token: seq_no })
        }
        Icmpv4Repr::DstUnreachable {
            code: icmpv4::unreachable::PORT,
            data,
            ..
        } => {
            // The quoted datagram: ours, from the VIP to the member's port.
            let q = ipv4::Packet::new_checked(data).ok()?;
            if q.src_addr() != vip || q.dst_addr() != member || q.protocol() != IpProtocol::Udp {
                return None;
            }
            quoted_udp(q.payload(), port)
        }
        _ => None,
    }
}

fn icmp6(
    body: &[u8],
    vip: std::net::Ipv6Addr,
    member: std::net::Ipv6Addr,
    port: u16,
) -> Option<Answer> {
    let p = icmpv6::Packet::new_checked(body).ok()?;
    match Icmpv6Repr::parse(&p, &member, &vip).ok()? {
        Icmpv6Repr::EchoReply { ident, seq_no, .. } if ident == ECHO_IDENT => {
            Some(Answer::Echo { token: seq_no })
        }
        Icmpv6Repr::DstUnreachable {
            code: icmpv6::unreachable::PORT,
            data,
        } => {
            // The quoted packet (fixed header, then UDP): ours, to the member's port.
            let q = ipv6::Packet::new_checked(data).ok()?;
            if q.src_addr() != vip || q.dst_addr() != member || q.next_header() != IpProtocol::Udp {
                return None;
            }
            quoted_udp(q.payload(), port)
        }
        _ => None,
    }
}

/// The status code of an HTTP answer's first bytes (`HTTP/1.x NNN ...`).
pub fn status_code(data: &[u8]) -> Option<u16> {
    let rest = data.strip_prefix(b"HTTP/")?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let code = rest.get(sp + 1..sp + 4)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Whether `code` is one of Octavia's `expected_codes`: `200`, `200,202` or `200-204`.
pub fn expected(codes: &str, code: u16) -> bool {
    codes.split(',').any(|c| match c.trim().split_once('-') {
        Some((lo, hi)) => match (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
            (Ok(lo), Ok(hi)) => (lo..=hi).contains(&code),
            _ => false,
        },
        None => c.trim().parse::<u16>() == Ok(code),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    const MEMBER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);

    fn ends() -> Ends {
        Ends {
            vip: VIP.into(),
            vip_mac: [2, 0, 0, 0, 0, 100],
            member: MEMBER.into(),
            member_mac: [2, 0, 0, 0, 0, 5],
            port: 80,
        }
    }

    /// The member's side: `frame` turned around (addresses swapped), with `l4` as the
    /// member's answer.
    fn from_member(protocol: IpProtocol, l4: &[u8]) -> Vec<u8> {
        let ip = Ipv4Repr::new(MEMBER, VIP, protocol, l4.len()).build(l4);
        EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 5]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 100]),
            vlan: None,
            ethertype: EtherType::Ipv4,
        }
        .build(&ip)
    }

    fn member_tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let seg = TcpRepr {
            src_port: sport,
            dst_port: dport,
            seq_number: 7000,
            ack_number: 1001,
            flags: Flags(flags),
            window_len: 100,
            urgent_at: 0,
            payload,
        }
        .build(&IpAddr::V4(MEMBER), &IpAddr::V4(VIP));
        from_member(IpProtocol::Tcp, &seg)
    }

    #[test]
    fn a_syn_is_a_valid_segment_from_the_vip() {
        let f = ends().syn(source_port(3), 1000);
        let eth = Frame::new_checked(&f[..]).unwrap();
        assert_eq!(eth.dst_addr(), EthernetAddress([2, 0, 0, 0, 0, 5]));
        let ip = ipv4::Packet::new_checked(eth.payload()).unwrap();
        let r = Ipv4Repr::parse(&ip).unwrap();
        assert_eq!((r.src_addr, r.dst_addr), (VIP, MEMBER));
        let p = tcp::Packet::new_checked(ip.payload()).unwrap();
        let seg = TcpRepr::parse(&p, &IpAddr::V4(VIP), &IpAddr::V4(MEMBER)).unwrap();
        assert_eq!((seg.src_port, seg.dst_port), (0xf003, 80));
        assert!(seg.flags.has(Flags::SYN) && !seg.flags.has(Flags::ACK));
    }

    #[test]
    fn syn_ack_reset_and_data_are_told_apart() {
        let port = source_port(3);
        assert_eq!(
            answer(
                &member_tcp(80, port, Flags::SYN | Flags::ACK, b""),
                VIP.into(),
                MEMBER.into(),
                80
            ),
            Some(Answer::SynAck {
                port,
                seq: 7000,
                ack: 1001
            })
        );
        assert_eq!(
            answer(
                &member_tcp(80, port, Flags::RST | Flags::ACK, b""),
                VIP.into(),
                MEMBER.into(),
                80
            ),
            Some(Answer::Reset { port })
        );
        assert_eq!(
            answer(
                &member_tcp(80, port, Flags::ACK | Flags::PSH, b"HTTP/1.0 503 Busy\r\n"),
                VIP.into(),
                MEMBER.into(),
                80
            ),
            Some(Answer::Data {
                port,
                status: Some(503)
            })
        );
        // Not from the monitored port, not to a probe's port, not from the member.
        assert_eq!(
            answer(
                &member_tcp(81, port, Flags::RST, b""),
                VIP.into(),
                MEMBER.into(),
                80
            ),
            None
        );
        assert_eq!(
            answer(
                &member_tcp(80, 40000, Flags::RST, b""),
                VIP.into(),
                MEMBER.into(),
                80
            ),
            None
        );
        assert_eq!(
            answer(
                &member_tcp(80, port, Flags::RST, b""),
                VIP.into(),
                Ipv4Addr::new(10, 0, 0, 6).into(),
                80
            ),
            None
        );
    }

    #[test]
    fn echo_replies_and_port_unreachables() {
        let reply = icmpv4::echo_reply(&ipv4_of(&ends().echo(9))).unwrap();
        // echo_reply answers from the member (the request's destination).
        let frame = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 5]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 100]),
            vlan: None,
            ethertype: EtherType::Ipv4,
        }
        .build(&reply);
        assert_eq!(
            answer(&frame, VIP.into(), MEMBER.into(), 80),
            Some(Answer::Echo { token: 9 })
        );
        let dgram = ipv4_of(&ends().datagram(source_port(4)));
        let unreach =
            icmpv4::dst_unreachable(&dgram, icmpv4::unreachable::PORT, 0, MEMBER).unwrap();
        let frame = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 5]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 100]),
            vlan: None,
            ethertype: EtherType::Ipv4,
        }
        .build(&unreach);
        assert_eq!(
            answer(&frame, VIP.into(), MEMBER.into(), 80),
            Some(Answer::PortUnreachable {
                port: source_port(4)
            })
        );
    }

    fn ipv4_of(frame: &[u8]) -> Vec<u8> {
        Frame::new_checked(frame).unwrap().payload().to_vec()
    }

    #[test]
    fn garbage_is_no_answer() {
        for n in 0..200 {
            let mut f = member_tcp(80, source_port(1), Flags::SYN | Flags::ACK, b"");
            f.truncate(n % (f.len() + 1));
            let _ = answer(&f, VIP.into(), MEMBER.into(), 80);
        }
        assert_eq!(answer(&[0xff; 60], VIP.into(), MEMBER.into(), 80), None);
    }

    const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);
    const MEMBER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5);

    fn ends6() -> Ends {
        Ends {
            vip: VIP6.into(),
            member: MEMBER6.into(),
            ..ends()
        }
    }

    /// An IPv6 packet from the member to the VIP in a frame.
    fn frame6(ip: &[u8]) -> Vec<u8> {
        EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 5]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 100]),
            vlan: None,
            ethertype: EtherType::Ipv6,
        }
        .build(ip)
    }

    fn answer6(frame: &[u8]) -> Option<Answer> {
        answer(frame, VIP6.into(), MEMBER6.into(), 80)
    }

    fn member6_tcp(dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let seg = TcpRepr {
            src_port: 80,
            dst_port: dport,
            seq_number: 7000,
            ack_number: 1001,
            flags: Flags(flags),
            window_len: 100,
            urgent_at: 0,
            payload,
        }
        .build(&MEMBER6.into(), &VIP6.into());
        frame6(&Ipv6Repr::new(MEMBER6, VIP6, IpProtocol::Tcp, seg.len(), 64).build(&seg))
    }

    #[test]
    fn ipv6_probes_are_valid_and_their_answers_read() {
        // The SYN: from the VIP's address and MAC, a TCP segment whose checksum holds.
        let f = ends6().syn(source_port(3), 1000);
        let eth = Frame::new_checked(&f[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Ipv6);
        let ip = ipv6::Packet::new_checked(eth.payload()).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP6, MEMBER6));
        let p = tcp::Packet::new_checked(ip.payload()).unwrap();
        let seg = TcpRepr::parse(&p, &VIP6.into(), &MEMBER6.into()).unwrap();
        assert_eq!((seg.src_port, seg.dst_port), (0xf003, 80));
        assert!(ends6().http_get("/").contains("Host: [fd00::5]\r\n"));
        let port = source_port(3);
        assert_eq!(
            answer6(&member6_tcp(port, Flags::SYN | Flags::ACK, b"")),
            Some(Answer::SynAck {
                port,
                seq: 7000,
                ack: 1001
            })
        );
        assert_eq!(
            answer6(&member6_tcp(port, Flags::RST, b"")),
            Some(Answer::Reset { port })
        );
        assert_eq!(
            answer6(&member6_tcp(port, Flags::ACK, b"HTTP/1.0 200 OK\r\n")),
            Some(Answer::Data {
                port,
                status: Some(200)
            })
        );
        // The member's echo reply (ICMPv6), and its port unreachable quoting our datagram.
        let request = ipv6_of(&ends6().echo(9));
        assert_eq!(
            answer6(&frame6(&icmpv6::echo_reply(&request).unwrap())),
            Some(Answer::Echo { token: 9 })
        );
        let dgram = ipv6_of(&ends6().datagram(source_port(4)));
        let unreach = icmpv6::dst_unreachable(&dgram, icmpv6::unreachable::PORT, MEMBER6).unwrap();
        assert_eq!(
            answer6(&frame6(&unreach)),
            Some(Answer::PortUnreachable {
                port: source_port(4)
            })
        );
        // Another code, another address, the other family: no answer.
        let other = icmpv6::dst_unreachable(&dgram, icmpv6::unreachable::ADDRESS, MEMBER6).unwrap();
        assert_eq!(answer6(&frame6(&other)), None);
        let f = member6_tcp(port, Flags::RST, b"");
        assert_eq!(
            answer(&f, VIP6.into(), Ipv6Addr::LOCALHOST.into(), 80),
            None
        );
        assert_eq!(answer(&f, VIP.into(), MEMBER.into(), 80), None);
        for n in 0..f.len() {
            assert_eq!(answer6(&f[..n]), None, "cut at {n}");
        }
    }

    fn ipv6_of(frame: &[u8]) -> Vec<u8> {
        Frame::new_checked(frame).unwrap().payload().to_vec()
    }

    #[test]
    fn status_lines_and_expected_codes() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 404"), Some(404));
        assert_eq!(status_code(b"HTTP/1.0 20"), None);
        assert_eq!(status_code(b"SSH-2.0"), None);
        assert!(expected("200", 200));
        assert!(!expected("200", 201));
        assert!(expected("200,202", 202));
        assert!(expected("200-204", 203));
        assert!(!expected("200-204", 301));
        assert!(!expected("x-y", 200));
    }
}
