//! ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861): echo, destination unreachable,
//! packet too big, time exceeded, router/neighbor solicitation and advertisement with
//! link-layer address, MTU and prefix information options. The checksum covers the IPv6
//! pseudo-header. Builders answer neighbor solicitations and quote offending packets.

use crate::checksum;
use crate::ethernet::{self, EtherType, EthernetAddress, EthernetRepr, VlanTag};
use crate::ip::IpProtocol;
use crate::ipv6::{self, Ipv6Repr};
use crate::{Error, Result};
use std::net::{IpAddr, Ipv6Addr};

/// Length of the common header (type, code, checksum, 4 bytes of message body).
pub const HEADER_LEN: usize = 8;
const PROTOCOL: u8 = 58;
/// Hop limit required on every Neighbor Discovery message.
pub const ND_HOP_LIMIT: u8 = 255;
/// All-nodes link-local multicast group.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Message types handled here.
pub mod msg_type {
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Router solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router advertisement.
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// Destination unreachable codes.
pub mod unreachable {
    /// No route to destination.
    pub const NO_ROUTE: u8 = 0;
    /// Administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 1;
    /// Address unreachable.
    pub const ADDRESS: u8 = 3;
    /// Port unreachable.
    pub const PORT: u8 = 4;
    /// Reject route to destination.
    pub const REJECT_ROUTE: u8 = 6;
}

/// Time exceeded codes.
pub mod time_exceeded {
    /// Hop limit exceeded in transit.
    pub const HOP_LIMIT: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

mod opt {
    pub(super) const SOURCE_LLADDR: u8 = 1;
    pub(super) const TARGET_LLADDR: u8 = 2;
    pub(super) const PREFIX_INFO: u8 = 3;
    pub(super) const MTU: u8 = 5;
}

fn min_len(msg_type: u8) -> usize {
    match msg_type {
        msg_type::ROUTER_ADVERT => 16,
        msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT => 24,
        _ => HEADER_LEN,
    }
}

fn body_start(msg_type: u8) -> usize {
    min_len(msg_type)
}

/// A view over an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking it holds the fixed part of its message type (8 bytes; 16 for
    /// a router advertisement; 24 for neighbor solicitations and advertisements).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The length check of [`Packet::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN || b.len() < min_len(b[0]) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn u16_at(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.b()[at], self.b()[at + 1]])
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = self.b();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.b()[0]
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.b()[1]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(2)
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        self.u16_at(4)
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        self.u16_at(6)
    }

    /// MTU of a packet-too-big message.
    pub fn pkt_too_big_mtu(&self) -> u32 {
        self.u32_at(4)
    }

    /// Current hop limit advertised by a router advertisement.
    pub fn cur_hop_limit(&self) -> u8 {
        self.b()[4]
    }

    /// Flags byte: M/O for router advertisements, R/S/O for neighbor advertisements.
    pub fn flags(&self) -> u8 {
        self.b()[if self.msg_type() == msg_type::NEIGHBOR_ADVERT {
            4
        } else {
            5
        }]
    }

    /// Router lifetime (seconds) of a router advertisement.
    pub fn router_lifetime(&self) -> u16 {
        self.u16_at(6)
    }

    /// Reachable time (ms) of a router advertisement; 0 for other types.
    pub fn reachable_time(&self) -> u32 {
        if self.msg_type() == msg_type::ROUTER_ADVERT {
            self.u32_at(8)
        } else {
            0
        }
    }

    /// Retransmission timer (ms) of a router advertisement; 0 for other types.
    pub fn retrans_time(&self) -> u32 {
        if self.msg_type() == msg_type::ROUTER_ADVERT {
            self.u32_at(12)
        } else {
            0
        }
    }

    /// Target address of a neighbor solicitation or advertisement (unspecified otherwise).
    pub fn target_addr(&self) -> Ipv6Addr {
        match self.msg_type() {
            msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT => {
                let mut o = [0u8; 16];
                o.copy_from_slice(&self.b()[8..24]);
                Ipv6Addr::from(o)
            }
            _ => Ipv6Addr::UNSPECIFIED,
        }
    }

    /// Bytes after the fixed part of the message: echo data, the quoted packet, or the
    /// Neighbor Discovery options.
    pub fn body(&self) -> &[u8] {
        &self.b()[body_start(self.msg_type())..]
    }

    /// Whether the checksum over the pseudo-header and the whole buffer is right.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum::with_pseudo_header(&IpAddr::V6(*src), &IpAddr::V6(*dst), PROTOCOL, self.b()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Recomputes the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let b = self.buffer.as_mut();
        b[2..4].copy_from_slice(&[0, 0]);
        let sum = checksum::with_pseudo_header(&IpAddr::V6(*src), &IpAddr::V6(*dst), PROTOCOL, b);
        b[2..4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// A prefix information option of a router advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixInfo {
    /// Prefix length.
    pub prefix_len: u8,
    /// L flag: the prefix is on-link.
    pub on_link: bool,
    /// A flag: usable for stateless address autoconfiguration.
    pub autonomous: bool,
    /// Valid lifetime in seconds.
    pub valid_lifetime: u32,
    /// Preferred lifetime in seconds.
    pub preferred_lifetime: u32,
    /// The prefix.
    pub prefix: Ipv6Addr,
}

/// Router advertisement flag: addresses via DHCPv6.
pub const RA_MANAGED: u8 = 0x80;
/// Router advertisement flag: other configuration via DHCPv6.
pub const RA_OTHER: u8 = 0x40;

/// An ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Icmpv6Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// One of [`mod@unreachable`].
        code: u8,
        /// As much of the offending packet as fits.
        data: &'a [u8],
    },
    /// Packet too big.
    PacketTooBig {
        /// MTU of the next hop.
        mtu: u32,
        /// As much of the offending packet as fits.
        data: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// One of [`mod@time_exceeded`].
        code: u8,
        /// As much of the offending packet as fits.
        data: &'a [u8],
    },
    /// Router solicitation.
    RouterSolicit {
        /// Source link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
    /// Router advertisement.
    RouterAdvert {
        /// Current hop limit (0: unspecified).
        hop_limit: u8,
        /// [`RA_MANAGED`] / [`RA_OTHER`] bits.
        flags: u8,
        /// Router lifetime in seconds (0: not a default router).
        router_lifetime: u16,
        /// Reachable time in ms.
        reachable_time: u32,
        /// Retransmission timer in ms.
        retrans_time: u32,
        /// Source link-layer address option.
        lladdr: Option<EthernetAddress>,
        /// MTU option.
        mtu: Option<u32>,
        /// Prefix information options.
        prefix_info: Vec<PrefixInfo>,
    },
    /// Neighbor solicitation.
    NeighborSolicit {
        /// The address being resolved.
        target_addr: Ipv6Addr,
        /// Source link-layer address option (absent in DAD probes).
        lladdr: Option<EthernetAddress>,
    },
    /// Neighbor advertisement.
    NeighborAdvert {
        /// R flag: the sender is a router.
        router: bool,
        /// S flag: in answer to a solicitation.
        solicited: bool,
        /// O flag: override cached entries.
        override_: bool,
        /// The address advertised.
        target_addr: Ipv6Addr,
        /// Target link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
}

#[derive(Default)]
struct NdOptions {
    source_lladdr: Option<EthernetAddress>,
    target_lladdr: Option<EthernetAddress>,
    mtu: Option<u32>,
    prefix_info: Vec<PrefixInfo>,
}

fn parse_options(mut data: &[u8]) -> Result<NdOptions> {
    let mut out = NdOptions::default();
    while !data.is_empty() {
        let [ty, units, ..] = *data else {
            return Err(Error::Truncated);
        };
        let len = usize::from(units) * 8;
        if len == 0 {
            // RFC 4861 4.6: a zero-length option must cause the packet to be discarded.
            return Err(Error::Malformed);
        }
        let opt = data.get(..len).ok_or(Error::Truncated)?;
        match ty {
            opt::SOURCE_LLADDR | opt::TARGET_LLADDR if len == 8 => {
                let mac = EthernetAddress::from_bytes(&opt[2..]);
                let slot = if ty == opt::SOURCE_LLADDR {
                    &mut out.source_lladdr
                } else {
                    &mut out.target_lladdr
                };
                slot.get_or_insert(mac.ok_or(Error::Truncated)?);
            }
            opt::MTU if len == 8 => {
                out.mtu
                    .get_or_insert(u32::from_be_bytes([opt[4], opt[5], opt[6], opt[7]]));
            }
            opt::PREFIX_INFO => {
                if len != 32 {
                    return Err(Error::Malformed);
                }
                let mut prefix = [0u8; 16];
                prefix.copy_from_slice(&opt[16..32]);
                out.prefix_info.push(PrefixInfo {
                    prefix_len: opt[2],
                    on_link: opt[3] & 0x80 != 0,
                    autonomous: opt[3] & 0x40 != 0,
                    valid_lifetime: u32::from_be_bytes([opt[4], opt[5], opt[6], opt[7]]),
                    preferred_lifetime: u32::from_be_bytes([opt[8], opt[9], opt[10], opt[11]]),
                    prefix: Ipv6Addr::from(prefix),
                });
            }
            // Unknown options (and link-layer addresses of other link types) are skipped.
            _ => {}
        }
        data = &data[len..];
    }
    Ok(out)
}

fn emit_lladdr(buf: &mut [u8], ty: u8, mac: &EthernetAddress) -> usize {
    buf[0] = ty;
    buf[1] = 1;
    buf[2..8].copy_from_slice(&mac.0);
    8
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses a checked message (the buffer must be exactly the IPv6 payload) and verifies
    /// the checksum against the IPv6 source and destination. Neighbor Discovery messages
    /// must have code 0; other message types are `Unsupported`. The hop limit of 255 that
    /// ND requires is an IPv6 header field: check it on the [`Ipv6Repr`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) -> Result<Icmpv6Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let buf: &'a T = packet.buffer;
        let b: &'a [u8] = buf.as_ref();
        let (ty, code) = (packet.msg_type(), packet.msg_code());
        let body = &b[body_start(ty)..];
        let nd = matches!(ty, 133..=136);
        if nd && code != 0 {
            return Err(Error::Malformed);
        }
        Ok(match ty {
            msg_type::ECHO_REQUEST if code == 0 => Icmpv6Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: body,
            },
            msg_type::ECHO_REPLY if code == 0 => Icmpv6Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: body,
            },
            msg_type::DST_UNREACHABLE => Icmpv6Repr::DstUnreachable { code, data: body },
            msg_type::PACKET_TOO_BIG if code == 0 => Icmpv6Repr::PacketTooBig {
                mtu: packet.pkt_too_big_mtu(),
                data: body,
            },
            msg_type::TIME_EXCEEDED => Icmpv6Repr::TimeExceeded { code, data: body },
            msg_type::ROUTER_SOLICIT => Icmpv6Repr::RouterSolicit {
                lladdr: parse_options(body)?.source_lladdr,
            },
            msg_type::ROUTER_ADVERT => {
                let o = parse_options(body)?;
                Icmpv6Repr::RouterAdvert {
                    hop_limit: packet.cur_hop_limit(),
                    flags: packet.flags() & (RA_MANAGED | RA_OTHER),
                    router_lifetime: packet.router_lifetime(),
                    reachable_time: packet.reachable_time(),
                    retrans_time: packet.retrans_time(),
                    lladdr: o.source_lladdr,
                    mtu: o.mtu,
                    prefix_info: o.prefix_info,
                }
            }
            msg_type::NEIGHBOR_SOLICIT => {
                let target_addr = packet.target_addr();
                if target_addr.is_multicast() {
                    return Err(Error::Malformed);
                }
                Icmpv6Repr::NeighborSolicit {
                    target_addr,
                    lladdr: parse_options(body)?.source_lladdr,
                }
            }
            msg_type::NEIGHBOR_ADVERT => {
                let f = packet.flags();
                Icmpv6Repr::NeighborAdvert {
                    router: f & 0x80 != 0,
                    solicited: f & 0x40 != 0,
                    override_: f & 0x20 != 0,
                    target_addr: packet.target_addr(),
                    lladdr: parse_options(body)?.target_lladdr,
                }
            }
            _ => return Err(Error::Unsupported),
        })
    }

    /// Length of the message, options included.
    pub fn buffer_len(&self) -> usize {
        let ll = |l: &Option<EthernetAddress>| if l.is_some() { 8 } else { 0 };
        match self {
            Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. }
            | Icmpv6Repr::DstUnreachable { data, .. }
            | Icmpv6Repr::PacketTooBig { data, .. }
            | Icmpv6Repr::TimeExceeded { data, .. } => HEADER_LEN + data.len(),
            Icmpv6Repr::RouterSolicit { lladdr } => HEADER_LEN + ll(lladdr),
            Icmpv6Repr::RouterAdvert {
                lladdr,
                mtu,
                prefix_info,
                ..
            } => 16 + ll(lladdr) + if mtu.is_some() { 8 } else { 0 } + 32 * prefix_info.len(),
            Icmpv6Repr::NeighborSolicit { lladdr, .. }
            | Icmpv6Repr::NeighborAdvert { lladdr, .. } => 24 + ll(lladdr),
        }
    }

    /// Writes the message into a buffer of exactly `buffer_len()` bytes and fills the
    /// checksum for the given IPv6 source and destination.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) {
        {
            let b = packet.buffer.as_mut();
            b[2..4].copy_from_slice(&[0, 0]);
            let mut put_data = |ty: u8, code: u8, rest: [u8; 4], data: &[u8]| {
                b[0] = ty;
                b[1] = code;
                b[4..8].copy_from_slice(&rest);
                b[HEADER_LEN..HEADER_LEN + data.len()].copy_from_slice(data);
            };
            let echo = |ident: u16, seq: u16| {
                let (i, s) = (ident.to_be_bytes(), seq.to_be_bytes());
                [i[0], i[1], s[0], s[1]]
            };
            match self {
                Icmpv6Repr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                } => put_data(msg_type::ECHO_REQUEST, 0, echo(*ident, *seq_no), data),
                Icmpv6Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                } => put_data(msg_type::ECHO_REPLY, 0, echo(*ident, *seq_no), data),
                Icmpv6Repr::DstUnreachable { code, data } => {
                    put_data(msg_type::DST_UNREACHABLE, *code, [0; 4], data)
                }
                Icmpv6Repr::PacketTooBig { mtu, data } => {
                    put_data(msg_type::PACKET_TOO_BIG, 0, mtu.to_be_bytes(), data)
                }
                Icmpv6Repr::TimeExceeded { code, data } => {
                    put_data(msg_type::TIME_EXCEEDED, *code, [0; 4], data)
                }
                Icmpv6Repr::RouterSolicit { lladdr } => {
                    b[0] = msg_type::ROUTER_SOLICIT;
                    b[1] = 0;
                    b[4..8].copy_from_slice(&[0; 4]);
                    if let Some(mac) = lladdr {
                        emit_lladdr(&mut b[8..], opt::SOURCE_LLADDR, mac);
                    }
                }
                Icmpv6Repr::RouterAdvert {
                    hop_limit,
                    flags,
                    router_lifetime,
                    reachable_time,
                    retrans_time,
                    lladdr,
                    mtu,
                    prefix_info,
                } => {
                    b[0] = msg_type::ROUTER_ADVERT;
                    b[1] = 0;
                    b[4] = *hop_limit;
                    b[5] = *flags;
                    b[6..8].copy_from_slice(&router_lifetime.to_be_bytes());
                    b[8..12].copy_from_slice(&reachable_time.to_be_bytes());
                    b[12..16].copy_from_slice(&retrans_time.to_be_bytes());
                    let mut at = 16;
                    if let Some(mac) = lladdr {
                        at += emit_lladdr(&mut b[at..], opt::SOURCE_LLADDR, mac);
                    }
                    if let Some(mtu) = mtu {
                        b[at..at + 4].copy_from_slice(&[opt::MTU, 1, 0, 0]);
                        b[at + 4..at + 8].copy_from_slice(&mtu.to_be_bytes());
                        at += 8;
                    }
                    for p in prefix_info {
                        let o = &mut b[at..at + 32];
                        o[0] = opt::PREFIX_INFO;
                        o[1] = 4;
                        o[2] = p.prefix_len;
                        o[3] = (u8::from(p.on_link) << 7) | (u8::from(p.autonomous) << 6);
                        o[4..8].copy_from_slice(&p.valid_lifetime.to_be_bytes());
                        o[8..12].copy_from_slice(&p.preferred_lifetime.to_be_bytes());
                        o[12..16].copy_from_slice(&[0; 4]);
                        o[16..32].copy_from_slice(&p.prefix.octets());
                        at += 32;
                    }
                }
                Icmpv6Repr::NeighborSolicit {
                    target_addr,
                    lladdr,
                } => {
                    b[0] = msg_type::NEIGHBOR_SOLICIT;
                    b[1] = 0;
                    b[4..8].copy_from_slice(&[0; 4]);
                    b[8..24].copy_from_slice(&target_addr.octets());
                    if let Some(mac) = lladdr {
                        emit_lladdr(&mut b[24..], opt::SOURCE_LLADDR, mac);
                    }
                }
                Icmpv6Repr::NeighborAdvert {
                    router,
                    solicited,
                    override_,
                    target_addr,
                    lladdr,
                } => {
                    b[0] = msg_type::NEIGHBOR_ADVERT;
                    b[1] = 0;
                    b[4..8].copy_from_slice(&[
                        (u8::from(*router) << 7)
                            | (u8::from(*solicited) << 6)
                            | (u8::from(*override_) << 5),
                        0,
                        0,
                        0,
                    ]);
                    b[8..24].copy_from_slice(&target_addr.octets());
                    if let Some(mac) = lladdr {
                        emit_lladdr(&mut b[24..], opt::TARGET_LLADDR, mac);
                    }
                }
            }
        }
        packet.fill_checksum(src, dst);
    }

    /// The message as bytes, checksummed for `src` and `dst`.
    pub fn build(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> Vec<u8> {
        let mut out = vec![0u8; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut out[..]), src, dst);
        out
    }
}

/// The parts of a received Ethernet + IPv6 + ICMPv6 frame a responder needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFrame<'a> {
    /// Ethernet header.
    pub ethernet: EthernetRepr,
    /// IPv6 header.
    pub ipv6: Ipv6Repr,
    /// The ICMPv6 message.
    pub icmpv6: Icmpv6Repr<'a>,
}

/// Parses a whole Ethernet frame carrying ICMPv6 directly after the fixed IPv6 header.
/// Neighbor Discovery messages whose hop limit is not 255 are `Malformed` (RFC 4861 7.1.1:
/// they may have been forwarded from off-link).
pub fn parse_frame(frame: &[u8]) -> Result<ParsedFrame<'_>> {
    let eth = ethernet::Frame::new_checked(frame)?;
    let ethernet = EthernetRepr::parse(&eth)?;
    if ethernet.ethertype != EtherType::Ipv6 {
        return Err(Error::Unsupported);
    }
    let ip_bytes: &[u8] = frame.get(eth.header_len()..).ok_or(Error::Truncated)?;
    let ip = ipv6::Packet::new_checked(ip_bytes)?;
    let ipv6 = Ipv6Repr::parse(&ip)?;
    if ipv6.next_header != IpProtocol::Icmpv6 {
        return Err(Error::Unsupported);
    }
    let body = ip_bytes
        .get(ipv6::HEADER_LEN..ipv6::HEADER_LEN + ipv6.payload_len)
        .ok_or(Error::Truncated)?;
    parse_icmp(ethernet, ipv6, body)
}

fn parse_icmp(ethernet: EthernetRepr, ipv6: Ipv6Repr, body: &[u8]) -> Result<ParsedFrame<'_>> {
    let packet = Packet::new_checked(body)?;
    let repr = Icmpv6Repr::parse(&packet, &ipv6.src_addr, &ipv6.dst_addr)?;
    if matches!(
        repr,
        Icmpv6Repr::RouterSolicit { .. }
            | Icmpv6Repr::RouterAdvert { .. }
            | Icmpv6Repr::NeighborSolicit { .. }
            | Icmpv6Repr::NeighborAdvert { .. }
    ) && ipv6.hop_limit != ND_HOP_LIMIT
    {
        return Err(Error::Malformed);
    }
    Ok(ParsedFrame {
        ethernet,
        ipv6,
        icmpv6: repr,
    })
}

/// Builds a whole Ethernet + IPv6 + ICMPv6 frame.
pub fn build_frame(
    eth_src: EthernetAddress,
    eth_dst: EthernetAddress,
    vlan: Option<VlanTag>,
    ip: &Ipv6Repr,
    icmp: &Icmpv6Repr<'_>,
) -> Vec<u8> {
    let body = icmp.build(&ip.src_addr, &ip.dst_addr);
    let ip = Ipv6Repr {
        next_header: IpProtocol::Icmpv6,
        ..*ip
    };
    let eth = EthernetRepr {
        src_addr: eth_src,
        dst_addr: eth_dst,
        vlan,
        ethertype: EtherType::Ipv6,
    };
    eth.build(&ip.build(&body))
}

/// Answers the neighbor solicitation frame `ns_frame` for its target address with "target
/// is at `mac`": the NA is sent from the target address, unicast to the solicitor, solicited
/// and with the override flag; `router` sets the R flag (router interfaces). A DAD probe
/// (unspecified source) is answered to all-nodes, unsolicited, as RFC 4861 7.2.4 says.
/// Fails with `Unsupported` if the frame is not a neighbor solicitation.
pub fn neighbor_advert_reply(
    ns_frame: &[u8],
    mac: EthernetAddress,
    router: bool,
) -> Result<Vec<u8>> {
    let parsed = parse_frame(ns_frame)?;
    let Icmpv6Repr::NeighborSolicit {
        target_addr,
        lladdr,
    } = parsed.icmpv6
    else {
        return Err(Error::Unsupported);
    };
    let src = parsed.ipv6.src_addr;
    let dad = src.is_unspecified();
    if dad && lladdr.is_some() {
        // RFC 4861 7.1.1: a DAD probe must not carry a source link-layer address.
        return Err(Error::Malformed);
    }
    let (dst_ip, dst_mac) = if dad {
        (ALL_NODES, EthernetAddress::ipv6_multicast(&ALL_NODES))
    } else {
        (src, lladdr.unwrap_or(parsed.ethernet.src_addr))
    };
    let na = Icmpv6Repr::NeighborAdvert {
        router,
        solicited: !dad,
        override_: true,
        target_addr,
        lladdr: Some(mac),
    };
    let ip = Ipv6Repr::new(target_addr, dst_ip, IpProtocol::Icmpv6, 0, ND_HOP_LIMIT);
    Ok(build_frame(mac, dst_mac, parsed.ethernet.vlan, &ip, &na))
}

/// The part of `original` (a whole IPv6 packet) an ICMPv6 error quotes: as much as keeps
/// the error within the 1280-byte minimum MTU (RFC 4443 2.4(c)), after checking that it
/// deserves an error: not an ICMPv6 error itself, not from an unspecified or multicast
/// source, and not to a multicast destination unless `to_multicast_ok` (packet too big).
pub fn quote(original: &[u8], to_multicast_ok: bool) -> Result<(Ipv6Repr, &[u8])> {
    let ip = ipv6::Packet::new_checked(original)?;
    let repr = Ipv6Repr::parse(&ip)?;
    if repr.src_addr.is_unspecified()
        || repr.src_addr.is_multicast()
        || (repr.dst_addr.is_multicast() && !to_multicast_ok)
    {
        return Err(Error::Unsupported);
    }
    if repr.next_header == IpProtocol::Icmpv6 {
        // Types below 128 are errors (RFC 4443 2.1): never answer an error with an error.
        match ip.payload().first() {
            Some(&t) if t >= 128 => {}
            _ => return Err(Error::Unsupported),
        }
    }
    let max = ipv6::MIN_MTU - ipv6::HEADER_LEN - HEADER_LEN;
    let packet = ip.packet();
    let end = packet.len().min(max);
    Ok((repr, &original[..end]))
}

fn error_packet(
    original: &[u8],
    src: Ipv6Addr,
    to_multicast_ok: bool,
    make: impl FnOnce(&[u8]) -> Icmpv6Repr<'_>,
) -> Result<Vec<u8>> {
    let (orig, quoted) = quote(original, to_multicast_ok)?;
    let icmp = make(quoted).build(&src, &orig.src_addr);
    Ok(Ipv6Repr::new(src, orig.src_addr, IpProtocol::Icmpv6, icmp.len(), 64).build(&icmp))
}

/// Builds the IPv6 packet (from `src` to the original sender) carrying a time-exceeded
/// error about `original`, a whole IPv6 packet.
pub fn time_exceeded(original: &[u8], code: u8, src: Ipv6Addr) -> Result<Vec<u8>> {
    error_packet(original, src, false, |data| Icmpv6Repr::TimeExceeded {
        code,
        data,
    })
}

/// Builds the IPv6 packet carrying a destination-unreachable error about `original`.
pub fn dst_unreachable(original: &[u8], code: u8, src: Ipv6Addr) -> Result<Vec<u8>> {
    error_packet(original, src, false, |data| Icmpv6Repr::DstUnreachable {
        code,
        data,
    })
}

/// Builds the IPv6 packet carrying a packet-too-big error about `original`.
pub fn packet_too_big(original: &[u8], mtu: u32, src: Ipv6Addr) -> Result<Vec<u8>> {
    error_packet(original, src, true, |data| Icmpv6Repr::PacketTooBig {
        mtu,
        data,
    })
}

/// Builds the echo reply (an IPv6 packet) to the echo request in `request`, a whole IPv6
/// packet addressed to one of the router's own (unicast) addresses.
pub fn echo_reply(request: &[u8]) -> Result<Vec<u8>> {
    let ip = ipv6::Packet::new_checked(request)?;
    let repr = Ipv6Repr::parse(&ip)?;
    if repr.next_header != IpProtocol::Icmpv6 || repr.dst_addr.is_multicast() {
        return Err(Error::Unsupported);
    }
    let payload = ip.payload();
    let icmp = Packet::new_checked(payload)?;
    match Icmpv6Repr::parse(&icmp, &repr.src_addr, &repr.dst_addr)? {
        Icmpv6Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } => {
            let reply = Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            }
            .build(&repr.dst_addr, &repr.src_addr);
            Ok(
                Ipv6Repr::new(repr.dst_addr, repr.src_addr, IpProtocol::Icmpv6, 0, 64)
                    .build(&reply),
            )
        }
        _ => Err(Error::Unsupported),
    }
}
