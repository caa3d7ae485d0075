//! ICMPv4 (RFC 792): echo, destination unreachable and time exceeded, with builders for the
//! errors a distributed router sends (quoting the offending datagram's header + 8 bytes).

use crate::checksum;
use crate::ip::IpProtocol;
use crate::ipv4::{self, Ipv4Repr};
use crate::{Error, Result};
use std::net::Ipv4Addr;

/// Length of the ICMP header (type, code, checksum, 4 bytes of rest-of-header).
pub const HEADER_LEN: usize = 8;

/// Message types handled here.
pub mod msg_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
}

/// Destination unreachable codes.
pub mod unreachable {
    /// Network unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set (carries the next-hop MTU).
    pub const FRAG_NEEDED: u8 = 4;
    /// Communication administratively prohibited (RFC 1812).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Time exceeded codes.
pub mod time_exceeded {
    /// TTL exceeded in transit.
    pub const TTL: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// A view over an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The length check of [`Packet::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[1]
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

    /// Next-hop MTU of a "fragmentation needed" message (RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        self.u16_at(6)
    }

    /// Everything after the 8-byte header (echo data or the quoted datagram).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum over the whole buffer is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Recomputes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        let b = self.buffer.as_mut();
        b[2..4].copy_from_slice(&[0, 0]);
        let sum = !checksum::data(b);
        b[2..4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// An ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr<'a> {
    /// Echo request (ping).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data echoed back.
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
        /// Next-hop MTU (meaningful for `FRAG_NEEDED`, else 0).
        next_hop_mtu: u16,
        /// The quoted original datagram (IP header + at least 8 bytes).
        data: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// One of [`mod@time_exceeded`].
        code: u8,
        /// The quoted original datagram.
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a checked message (the buffer must be exactly the IP payload); other message
    /// types are `Unsupported`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Icmpv4Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        let buf: &'a T = packet.buffer;
        let b: &'a [u8] = buf.as_ref();
        let data = &b[HEADER_LEN..];
        match (packet.msg_type(), packet.msg_code()) {
            (msg_type::ECHO_REQUEST, 0) => Ok(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (msg_type::ECHO_REPLY, 0) => Ok(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (msg_type::DST_UNREACHABLE, code) => Ok(Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu: packet.next_hop_mtu(),
                data,
            }),
            (msg_type::TIME_EXCEEDED, code) => Ok(Icmpv4Repr::TimeExceeded { code, data }),
            _ => Err(Error::Unsupported),
        }
    }

    fn data(&self) -> &'a [u8] {
        match *self {
            Icmpv4Repr::EchoRequest { data, .. }
            | Icmpv4Repr::EchoReply { data, .. }
            | Icmpv4Repr::DstUnreachable { data, .. }
            | Icmpv4Repr::TimeExceeded { data, .. } => data,
        }
    }

    /// Header plus data.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the message into a buffer of exactly `buffer_len()` bytes (the checksum covers
    /// the whole buffer).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let (ty, code, rest) = match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. } => {
                (msg_type::ECHO_REQUEST, 0, [ident, seq_no])
            }
            Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                (msg_type::ECHO_REPLY, 0, [ident, seq_no])
            }
            Icmpv4Repr::DstUnreachable {
                code, next_hop_mtu, ..
            } => (msg_type::DST_UNREACHABLE, code, [0, next_hop_mtu]),
            Icmpv4Repr::TimeExceeded { code, .. } => (msg_type::TIME_EXCEEDED, code, [0, 0]),
        };
        let data = self.data();
        {
            let b = packet.buffer.as_mut();
            b[0] = ty;
            b[1] = code;
            b[4..6].copy_from_slice(&rest[0].to_be_bytes());
            b[6..8].copy_from_slice(&rest[1].to_be_bytes());
            b[HEADER_LEN..HEADER_LEN + data.len()].copy_from_slice(data);
        }
        packet.fill_checksum();
    }

    /// The message as bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut out[..]));
        out
    }
}

/// The part of `original` an ICMP error quotes: its IP header and the first 8 bytes of its
/// payload (RFC 792), after checking that `original` deserves an error at all (RFC 1122
/// 3.2.2 / RFC 1812 4.3.2.7): not an ICMP error itself, not a non-first fragment, not from
/// or to a broadcast/multicast/unspecified address.
pub fn quote(original: &[u8]) -> Result<(Ipv4Repr, &[u8])> {
    let ip = ipv4::Packet::new_checked(original)?;
    let repr = Ipv4Repr::parse(&ip)?;
    let bad_src = repr.src_addr.is_unspecified()
        || repr.src_addr.is_broadcast()
        || repr.src_addr.is_multicast()
        || repr.src_addr.is_loopback();
    if bad_src
        || repr.dst_addr.is_broadcast()
        || repr.dst_addr.is_multicast()
        || repr.frag_offset != 0
    {
        return Err(Error::Unsupported);
    }
    if repr.protocol == IpProtocol::Icmp {
        // Errors about echo requests/replies are fine; errors about errors (or unknown
        // types, which may be errors) are not.
        match ip.payload().first() {
            Some(&msg_type::ECHO_REQUEST) | Some(&msg_type::ECHO_REPLY) => {}
            _ => return Err(Error::Unsupported),
        }
    }
    let end = (ip.header_len() + 8).min(usize::from(ip.total_len()));
    Ok((repr, &original[..end]))
}

fn error_packet(
    original: &[u8],
    src: Ipv4Addr,
    make: impl FnOnce(&[u8]) -> Icmpv4Repr<'_>,
) -> Result<Vec<u8>> {
    let (orig, quoted) = quote(original)?;
    let icmp = make(quoted).build();
    let mut ip = Ipv4Repr::new(src, orig.src_addr, IpProtocol::Icmp, icmp.len());
    // RFC 1812 4.3.2.5: ICMP errors are sent with precedence 6 (as Linux does: tos 0xc0).
    ip.tos = 0xc0;
    Ok(ip.build(&icmp))
}

/// Builds the IPv4 packet (from `src`, typically the router interface, to the original
/// sender) carrying a time-exceeded error about `original` (a whole IPv4 packet).
pub fn time_exceeded(original: &[u8], code: u8, src: Ipv4Addr) -> Result<Vec<u8>> {
    error_packet(original, src, |data| Icmpv4Repr::TimeExceeded {
        code,
        data,
    })
}

/// Builds the IPv4 packet carrying a destination-unreachable error about `original`.
/// `next_hop_mtu` is only sent with code `FRAG_NEEDED`.
pub fn dst_unreachable(
    original: &[u8],
    code: u8,
    next_hop_mtu: u16,
    src: Ipv4Addr,
) -> Result<Vec<u8>> {
    let next_hop_mtu = if code == unreachable::FRAG_NEEDED {
        next_hop_mtu
    } else {
        0
    };
    error_packet(original, src, |data| Icmpv4Repr::DstUnreachable {
        code,
        next_hop_mtu,
        data,
    })
}

/// Builds the echo reply (an IPv4 packet) to the echo request in `request`, a whole IPv4
/// packet addressed to one of the router's own addresses.
pub fn echo_reply(request: &[u8]) -> Result<Vec<u8>> {
    let ip = ipv4::Packet::new_checked(request)?;
    let repr = Ipv4Repr::parse(&ip)?;
    if repr.protocol != IpProtocol::Icmp || repr.more_frags || repr.frag_offset != 0 {
        return Err(Error::Unsupported);
    }
    let payload = ip.payload();
    let icmp = Packet::new_checked(payload)?;
    match Icmpv4Repr::parse(&icmp)? {
        Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } => {
            let reply = Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            }
            .build();
            Ok(Ipv4Repr::new(repr.dst_addr, repr.src_addr, IpProtocol::Icmp, 0).build(&reply))
        }
        _ => Err(Error::Unsupported),
    }
}
