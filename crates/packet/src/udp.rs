//! UDP datagrams (RFC 768) with the checksum over the IPv4 or IPv6 pseudo-header.

use crate::checksum;
use crate::{Error, Result};
use std::net::IpAddr;

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;
const PROTOCOL: u8 = 17;

/// A view over a UDP datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking that `8 <= length <= buffer length`.
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
        let field = usize::from(self.len());
        if field < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < field {
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

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.u16_at(0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(2)
    }

    /// Length field (header + payload).
    pub fn len(&self) -> u16 {
        self.u16_at(4)
    }

    /// Whether the length field says there is no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum field (0 means "none" over IPv4).
    pub fn checksum(&self) -> u16 {
        self.u16_at(6)
    }

    /// The payload (up to the length field).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Whether the checksum is right. A zero checksum is accepted over IPv4 (no checksum)
    /// and rejected over IPv6, where it is mandatory.
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4() && dst.is_ipv4();
        }
        let data = &self.buffer.as_ref()[..usize::from(self.len())];
        !checksum::combine(&[
            checksum::pseudo_header(
                src,
                dst,
                PROTOCOL,
                u32::try_from(data.len()).unwrap_or(u32::MAX),
            ),
            checksum::data(data),
        ]) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Recomputes the checksum over the pseudo-header and the `len()` bytes.
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        let len = usize::from(self.len());
        let b = self.buffer.as_mut();
        b[6..8].copy_from_slice(&[0, 0]);
        let mut sum = checksum::with_pseudo_header(src, dst, PROTOCOL, &b[..len]);
        // A computed zero is sent as all ones, zero meaning "no checksum".
        if sum == 0 {
            sum = 0xffff;
        }
        b[6..8].copy_from_slice(&sum.to_be_bytes());
    }
}

/// A UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    /// Parses a checked datagram and verifies its checksum against `src` and `dst`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&'a T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) -> Result<UdpRepr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let buf: &'a T = packet.buffer;
        let b: &'a [u8] = buf.as_ref();
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload: &b[HEADER_LEN..usize::from(packet.len())],
        })
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram and its checksum into the first `buffer_len()` bytes of `packet`.
    /// Payloads longer than 65527 bytes are cut to fit the length field.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) {
        let payload = &self.payload[..self.payload.len().min(usize::from(u16::MAX) - HEADER_LEN)];
        // At most 65535: the payload was cut to fit above.
        let len = u16::try_from(HEADER_LEN + payload.len()).unwrap_or(u16::MAX);
        {
            let b = packet.buffer.as_mut();
            b[0..2].copy_from_slice(&self.src_port.to_be_bytes());
            b[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
            b[4..6].copy_from_slice(&len.to_be_bytes());
            b[HEADER_LEN..usize::from(len)].copy_from_slice(payload);
        }
        packet.fill_checksum(src, dst);
    }

    /// The datagram as bytes.
    pub fn build(&self, src: &IpAddr, dst: &IpAddr) -> Vec<u8> {
        let mut out = vec![0u8; self.buffer_len().min(usize::from(u16::MAX))];
        self.emit(&mut Packet::new_unchecked(&mut out[..]), src, dst);
        out
    }
}
