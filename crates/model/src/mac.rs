//! Ethernet MAC addresses: parsing, display (`fa:16:3e:00:11:22`) and generation.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Neutron's default base for generated addresses (OpenStack OUI).
    pub const BASE: [u8; 3] = [0xfa, 0x16, 0x3e];

    /// A random address under `base` (the last three bytes random).
    pub fn random(base: [u8; 3]) -> MacAddr {
        let r = uuid::Uuid::new_v4();
        let b = r.as_bytes();
        MacAddr([base[0], base[1], base[2], b[0], b[1], b[2]])
    }

    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// True for an address a port may own: unicast and not all zeros.
    pub fn is_valid_unicast(&self) -> bool {
        !self.is_multicast() && !self.is_zero()
    }

    /// The EUI-64 interface identifier of this MAC (RFC 4291 appendix A), for SLAAC.
    pub fn eui64(&self) -> [u8; 8] {
        let m = self.0;
        [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMac;

impl fmt::Display for BadMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a MAC address")
    }
}

impl std::error::Error for BadMac {}

impl FromStr for MacAddr {
    type Err = BadMac;

    /// Accepts `aa:bb:cc:dd:ee:ff` and `aa-bb-cc-dd-ee-ff`, any case.
    fn from_str(s: &str) -> Result<MacAddr, BadMac> {
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for byte in &mut out {
            let p = parts.next().ok_or(BadMac)?;
            if p.len() != 2 {
                return Err(BadMac);
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| BadMac)?;
        }
        if parts.next().is_some() {
            return Err(BadMac);
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let m: MacAddr = "FA:16:3E:0a:0B:ff".parse().unwrap();
        assert_eq!(m.to_string(), "fa:16:3e:0a:0b:ff");
        assert_eq!("fa-16-3e-0a-0b-ff".parse::<MacAddr>().unwrap(), m);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "fa:16:3e",
            "fa:16:3e:0a:0b:ff:00",
            "fa:16:3e:0a:0b:fg",
            "fa:16:3e:a:0b:ff",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn random_is_unicast_under_base() {
        let m = MacAddr::random(MacAddr::BASE);
        assert_eq!(&m.0[..3], &MacAddr::BASE);
        assert!(m.is_valid_unicast());
    }

    #[test]
    fn eui64_flips_universal_bit() {
        let m: MacAddr = "fa:16:3e:11:22:33".parse().unwrap();
        assert_eq!(m.eui64(), [0xf8, 0x16, 0x3e, 0xff, 0xfe, 0x11, 0x22, 0x33]);
    }
}
