//! The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-headers used by UDP, TCP and
//! ICMPv6.

use std::net::IpAddr;

/// Sums `data` as big-endian 16-bit words (an odd last byte is padded with zero), folded to
/// 16 bits but not complemented, so partial sums can be combined.
pub fn data(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    fold(acc)
}

/// Ones-complement sum of partial sums.
pub fn combine(parts: &[u16]) -> u16 {
    fold(parts.iter().map(|&p| u64::from(p)).sum())
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // Folded into 16 bits by the loop above.
    u16::try_from(acc).unwrap_or(u16::MAX)
}

/// Partial sum of the pseudo-header for `protocol` carrying `length` bytes.
///
/// IPv4 addresses give the RFC 768/793 pseudo-header, IPv6 ones the RFC 8200 one. If the two
/// addresses are of different families the IPv4 one is taken as IPv4-mapped IPv6.
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: u8, length: u32) -> u16 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // An IPv4 datagram is at most 65535 bytes long.
            let len = u16::try_from(length).unwrap_or(u16::MAX).to_be_bytes();
            let mut buf = [0u8; 12];
            buf[0..4].copy_from_slice(&s.octets());
            buf[4..8].copy_from_slice(&d.octets());
            buf[9] = protocol;
            buf[10..12].copy_from_slice(&len);
            self::data(&buf)
        }
        _ => {
            let to6 = |a: &IpAddr| match a {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => *a,
            };
            let mut buf = [0u8; 40];
            buf[0..16].copy_from_slice(&to6(src).octets());
            buf[16..32].copy_from_slice(&to6(dst).octets());
            buf[32..36].copy_from_slice(&length.to_be_bytes());
            buf[39] = protocol;
            self::data(&buf)
        }
    }
}

/// The checksum field value for `data` preceded by the pseudo-header: complemented sum.
pub fn with_pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: u8, data: &[u8]) -> u16 {
    !combine(&[
        pseudo_header(
            src,
            dst,
            protocol,
            u32::try_from(data.len()).unwrap_or(u32::MAX),
        ),
        self::data(data),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x6834);
    }
}
