//! TCP segment headers (RFC 9293): ports, sequence numbers, flags and checksum, enough to
//! recognise a segment and answer it with a RST. Options are skipped on parse and never
//! emitted.

use crate::checksum;
use crate::ethernet::EtherType;
use crate::ip::IpProtocol;
use crate::{Error, Result, ipv4, ipv6};
use std::net::IpAddr;

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// The data offset field of a header with no options: its length in 32-bit words.
const DATA_OFFSET: u8 = 5;
const PROTOCOL: u8 = 6;

/// TCP flag bits as found in byte 13 of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;

    /// Whether every bit of `bits` is set.
    pub fn has(&self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

/// A view over a TCP segment.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking that `20 <= header_len <= buffer length`.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The length checks of [`Packet::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.header_len() < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < self.header_len() {
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

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.u16_at(0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(2)
    }

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        self.u32_at(4)
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        self.u32_at(8)
    }

    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[12] >> 4) * 4
    }

    /// Flags.
    pub fn flags(&self) -> Flags {
        Flags(self.b()[13])
    }

    /// Window.
    pub fn window_len(&self) -> u16 {
        self.u16_at(14)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(16)
    }

    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        self.u16_at(18)
    }

    /// Options bytes.
    pub fn options(&self) -> &[u8] {
        &self.b()[HEADER_LEN..self.header_len()]
    }

    /// Bytes after the header (the whole rest of the buffer: the view does not know the IP
    /// payload length, so give it exactly the IP payload).
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }

    /// Whether the checksum over the pseudo-header and the whole buffer is right.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        checksum::with_pseudo_header(src, dst, PROTOCOL, self.b()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Recomputes the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        let b = self.buffer.as_mut();
        b[16..18].copy_from_slice(&[0, 0]);
        let sum = checksum::with_pseudo_header(src, dst, PROTOCOL, b);
        b[16..18].copy_from_slice(&sum.to_be_bytes());
    }
}

/// A TCP segment (without options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number.
    pub ack_number: u32,
    /// Flags.
    pub flags: Flags,
    /// Window.
    pub window_len: u16,
    /// Urgent pointer.
    pub urgent_at: u16,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Parses a checked segment (the buffer must be exactly the IP payload) and verifies its
    /// checksum.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) -> Result<TcpRepr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let buf: &'a T = packet.buffer;
        let b: &'a [u8] = buf.as_ref();
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_at: packet.urgent_at(),
            payload: &b[packet.header_len()..],
        })
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the segment into a buffer of exactly `buffer_len()` bytes (the checksum covers
    /// the whole buffer).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) {
        {
            let b = packet.buffer.as_mut();
            b[0..2].copy_from_slice(&self.src_port.to_be_bytes());
            b[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
            b[4..8].copy_from_slice(&self.seq_number.to_be_bytes());
            b[8..12].copy_from_slice(&self.ack_number.to_be_bytes());
            b[12] = DATA_OFFSET << 4;
            b[13] = self.flags.0;
            b[14..16].copy_from_slice(&self.window_len.to_be_bytes());
            b[18..20].copy_from_slice(&self.urgent_at.to_be_bytes());
            b[HEADER_LEN..HEADER_LEN + self.payload.len()].copy_from_slice(self.payload);
        }
        packet.fill_checksum(src, dst);
    }

    /// The segment as bytes.
    pub fn build(&self, src: &IpAddr, dst: &IpAddr) -> Vec<u8> {
        let mut out = vec![0u8; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut out[..]), src, dst);
        out
    }

    /// Sequence space the segment occupies: payload plus one each for SYN and FIN.
    pub fn segment_len(&self) -> u32 {
        let mut n = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        if self.flags.has(Flags::SYN) {
            n = n.wrapping_add(1);
        }
        if self.flags.has(Flags::FIN) {
            n = n.wrapping_add(1);
        }
        n
    }

    /// The RST that refuses this segment (RFC 9293 section 3.10.7.1); `None` if it is itself
    /// a RST, which must never be answered.
    pub fn rst_reply(&self) -> Option<TcpRepr<'static>> {
        if self.flags.has(Flags::RST) {
            return None;
        }
        let (seq_number, ack_number, flags) = if self.flags.has(Flags::ACK) {
            (self.ack_number, 0, Flags::RST)
        } else {
            (
                0,
                self.seq_number.wrapping_add(self.segment_len()),
                Flags::RST | Flags::ACK,
            )
        };
        Some(TcpRepr {
            src_port: self.dst_port,
            dst_port: self.src_port,
            seq_number,
            ack_number,
            flags: Flags(flags),
            window_len: 0,
            urgent_at: 0,
            payload: &[],
        })
    }
}

/// Builds the IP packet (IPv4 or IPv6, as the original) carrying the RST that refuses the TCP
/// segment in `original`, an IP packet whose checksums are verified. Used for security-group
/// "reject". Fails with `Unsupported` for a non-TCP packet, a fragment or a RST.
pub fn rst_packet(original: &[u8]) -> Result<(EtherType, Vec<u8>)> {
    let version = original.first().ok_or(Error::Truncated)? >> 4;
    if version == 4 {
        let ip = ipv4::Packet::new_checked(original)?;
        let repr = ipv4::Ipv4Repr::parse(&ip)?;
        if repr.protocol != IpProtocol::Tcp || repr.more_frags || repr.frag_offset != 0 {
            return Err(Error::Unsupported);
        }
        let (src, dst) = (IpAddr::V4(repr.src_addr), IpAddr::V4(repr.dst_addr));
        let seg_buf = ip.payload();
        let seg = Packet::new_checked(seg_buf)?;
        let rst = TcpRepr::parse(&seg, &src, &dst)?
            .rst_reply()
            .ok_or(Error::Unsupported)?;
        let bytes = rst.build(&dst, &src);
        let out =
            ipv4::Ipv4Repr::new(repr.dst_addr, repr.src_addr, IpProtocol::Tcp, 0).build(&bytes);
        Ok((EtherType::Ipv4, out))
    } else if version == 6 {
        let ip = ipv6::Packet::new_checked(original)?;
        let repr = ipv6::Ipv6Repr::parse(&ip)?;
        if repr.next_header != IpProtocol::Tcp {
            return Err(Error::Unsupported);
        }
        let (src, dst) = (IpAddr::V6(repr.src_addr), IpAddr::V6(repr.dst_addr));
        let seg_buf = ip.payload();
        let seg = Packet::new_checked(seg_buf)?;
        let rst = TcpRepr::parse(&seg, &src, &dst)?
            .rst_reply()
            .ok_or(Error::Unsupported)?;
        let bytes = rst.build(&dst, &src);
        let out =
            ipv6::Ipv6Repr::new(repr.dst_addr, repr.src_addr, IpProtocol::Tcp, 0, 64).build(&bytes);
        Ok((EtherType::Ipv6, out))
    } else {
        Err(Error::Malformed)
    }
}
