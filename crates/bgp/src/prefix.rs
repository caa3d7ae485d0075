//! An IP prefix (address and length, host bits cleared) and its NLRI encoding
//! (RFC 4271 §4.3: a length byte and the fewest bytes that hold it).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 prefix with its host bits cleared, so equal networks compare equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// The prefix of `addr`/`len` (host bits cleared), or `None` when `len` is too long.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        let addr = match addr {
            IpAddr::V4(a) => {
                if len > 32 {
                    return None;
                }
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                if len > 128 {
                    return None;
                }
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Some(Prefix { addr, len })
    }

    /// A host route: /32 or /128.
    pub fn host(addr: IpAddr) -> Prefix {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Prefix { addr, len }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    #[allow(clippy::len_without_is_empty)] // a prefix length, not a collection's
    pub fn len(&self) -> u8 {
        self.len
    }

    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// Bytes of the NLRI encoding: the length byte and the significant address bytes.
    pub fn wire_len(&self) -> usize {
        1 + usize::from(self.len).div_ceil(8)
    }

    /// Appends the NLRI encoding.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.len);
        let n = usize::from(self.len).div_ceil(8);
        match self.addr {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..n]),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..n]),
        }
    }

    /// Reads a list of NLRI of one family filling `buf`; `None` when a length is longer
    /// than the family's address or runs past the end (the caller's NOTIFICATION).
    pub fn parse_list(mut buf: &[u8], ipv6: bool) -> Option<Vec<Prefix>> {
        let max = if ipv6 { 128 } else { 32 };
        let mut out = Vec::new();
        while let Some((&len, rest)) = buf.split_first() {
            if len > max {
                return None;
            }
            let n = usize::from(len).div_ceil(8);
            let bytes = rest.get(..n)?;
            let addr = if ipv6 {
                let mut o = [0u8; 16];
                o[..n].copy_from_slice(bytes);
                IpAddr::V6(Ipv6Addr::from(o))
            } else {
                let mut o = [0u8; 4];
                o[..n].copy_from_slice(bytes);
                IpAddr::V4(Ipv4Addr::from(o))
            };
            out.push(Prefix::new(addr, len)?);
            buf = &rest[n..];
        }
        Some(out)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = String;

    /// `a.b.c.d/len` or `addr/len` (IPv6); a bare address is a host route.
    fn from_str(s: &str) -> Result<Prefix, String> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("'{s}' is not a prefix"))?;
        match l {
            None => Ok(Prefix::host(addr)),
            Some(l) => {
                let len: u8 = l.parse().map_err(|_| format!("'{s}' is not a prefix"))?;
                Prefix::new(addr, len).ok_or_else(|| format!("'{s}' is not a prefix"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_bits_are_cleared_and_encoding_is_minimal() {
        let p: Prefix = "10.1.2.3/24".parse().unwrap();
        assert_eq!(p.to_string(), "10.1.2.0/24");
        let mut b = Vec::new();
        p.emit(&mut b);
        assert_eq!(b, [24, 10, 1, 2]);
        let d: Prefix = "0.0.0.0/0".parse().unwrap();
        let mut b = Vec::new();
        d.emit(&mut b);
        assert_eq!(b, [0]);
        let v6: Prefix = "2001:db8:1::/48".parse().unwrap();
        let mut b = Vec::new();
        v6.emit(&mut b);
        assert_eq!(b, [48, 0x20, 0x01, 0x0d, 0xb8, 0, 1]);
        assert_eq!(v6.wire_len(), 7);
    }

    #[test]
    fn lists_parse_and_refuse_bad_lengths() {
        let l = Prefix::parse_list(&[24, 10, 1, 2, 32, 192, 0, 2, 7, 0], false).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[1].to_string(), "192.0.2.7/32");
        assert_eq!(l[2].to_string(), "0.0.0.0/0");
        assert_eq!(Prefix::parse_list(&[33, 1, 2, 3, 4, 5], false), None);
        assert_eq!(Prefix::parse_list(&[24, 10, 1], false), None);
        assert_eq!(Prefix::parse_list(&[129], true), None);
        assert!(Prefix::parse_list(&[], true).unwrap().is_empty());
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        assert!("x/3".parse::<Prefix>().is_err());
    }
}
