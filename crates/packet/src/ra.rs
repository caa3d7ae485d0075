//! Router advertisements as a router sends them (RFC 4861 4.2) with every option a host
//! configures itself from: source link-layer address, MTU, prefix information and
//! recursive DNS servers (RDNSS, RFC 8106). [`crate::icmpv6`] parses the ICMPv6 family
//! and skips RDNSS; this module is the full RA, parsed and built, and the whole frame a
//! router interface sends to all nodes.

use crate::ethernet::{EtherType, EthernetAddress, EthernetRepr};
use crate::icmpv6::{self, ALL_NODES, ND_HOP_LIMIT, Packet, PrefixInfo, RA_MANAGED, RA_OTHER};
use crate::ip::IpProtocol;
use crate::ipv6::{self, Ipv6Repr};
use crate::{Error, Result};
use std::net::Ipv6Addr;

/// Length of the fixed part of a router advertisement.
pub const FIXED_LEN: usize = 16;
const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_PREFIX_INFO: u8 = 3;
const OPT_MTU: u8 = 5;
const OPT_RDNSS: u8 = 25;
/// At most this many addresses are kept from (and put in) one RDNSS option: an option
/// length byte allows 127, more than any host uses.
pub const MAX_RDNSS: usize = 16;

/// Recursive DNS servers (RFC 8106 5.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rdnss {
    /// Seconds the servers may be used.
    pub lifetime: u32,
    /// The servers, in order of preference.
    pub servers: Vec<Ipv6Addr>,
}

/// A router advertisement and the options this crate knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RouterAdvert {
    /// Cur Hop Limit for the hosts' own packets (0: unspecified).
    pub cur_hop_limit: u8,
    /// M: addresses from DHCPv6.
    pub managed: bool,
    /// O: other configuration (DNS, ...) from DHCPv6.
    pub other: bool,
    /// Seconds the sender may be a default router (0: it is not one).
    pub router_lifetime: u16,
    /// Reachable time in ms (0: unspecified).
    pub reachable_time: u32,
    /// Retransmission timer in ms (0: unspecified).
    pub retrans_time: u32,
    /// Source link-layer address option.
    pub source_lladdr: Option<EthernetAddress>,
    /// MTU option.
    pub mtu: Option<u32>,
    /// Prefix information options.
    pub prefixes: Vec<PrefixInfo>,
    /// The first RDNSS option (empty servers: none).
    pub rdnss: Option<Rdnss>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(o)
}

impl RouterAdvert {
    /// Parses an ICMPv6 message (exactly the IPv6 payload) sent from `src` to `dst`: type
    /// 134, code 0, right checksum; options as RFC 4861 4.6 requires (no zero length, none
    /// past the end). Unknown options are skipped; a malformed known one fails the parse.
    pub fn parse(msg: &[u8], src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<RouterAdvert> {
        if msg.len() < FIXED_LEN {
            return Err(Error::Truncated);
        }
        let p = Packet::new_checked(msg)?;
        if p.msg_type() != icmpv6::msg_type::ROUTER_ADVERT {
            return Err(Error::Unsupported);
        }
        if p.msg_code() != 0 {
            return Err(Error::Malformed);
        }
        if !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let mut ra = RouterAdvert {
            cur_hop_limit: msg[4],
            managed: msg[5] & RA_MANAGED != 0,
            other: msg[5] & RA_OTHER != 0,
            router_lifetime: u16::from_be_bytes([msg[6], msg[7]]),
            reachable_time: u32_at(msg, 8),
            retrans_time: u32_at(msg, 12),
            ..RouterAdvert::default()
        };
        let mut rest = &msg[FIXED_LEN..];
        while !rest.is_empty() {
            let [ty, units, ..] = *rest else {
                return Err(Error::Truncated);
            };
            let len = usize::from(units) * 8;
            if len == 0 {
                return Err(Error::Malformed);
            }
            let o = rest.get(..len).ok_or(Error::Truncated)?;
            match ty {
                OPT_SOURCE_LLADDR if len == 8 && ra.source_lladdr.is_none() => {
                    ra.source_lladdr = EthernetAddress::from_bytes(&o[2..8]);
                }
                OPT_MTU => {
                    if len != 8 {
                        return Err(Error::Malformed);
                    }
                    ra.mtu.get_or_insert(u32_at(o, 4));
                }
                OPT_PREFIX_INFO => {
                    if len != 32 {
                        return Err(Error::Malformed);
                    }
                    ra.prefixes.push(PrefixInfo {
                        prefix_len: o[2],
                        on_link: o[3] & 0x80 != 0,
                        autonomous: o[3] & 0x40 != 0,
                        valid_lifetime: u32_at(o, 4),
                        preferred_lifetime: u32_at(o, 8),
                        prefix: addr_at(o, 16),
                    });
                }
                OPT_RDNSS => {
                    // RFC 8106 5.1: length 3 + 2 per address, at least one address.
                    if len < 24 || (len - 8) % 16 != 0 {
                        return Err(Error::Malformed);
                    }
                    if ra.rdnss.is_none() {
                        ra.rdnss = Some(Rdnss {
                            lifetime: u32_at(o, 4),
                            servers: (8..len)
                                .step_by(16)
                                .take(MAX_RDNSS)
                                .map(|at| addr_at(o, at))
                                .collect(),
                        });
                    }
                }
                _ => {}
            }
            rest = &rest[len..];
        }
        Ok(ra)
    }

    fn rdnss_servers(&self) -> &[Ipv6Addr] {
        match &self.rdnss {
            Some(r) => &r.servers[..r.servers.len().min(MAX_RDNSS)],
            None => &[],
        }
    }

    /// Length of the message, options included.
    pub fn buffer_len(&self) -> usize {
        let dns = self.rdnss_servers().len();
        FIXED_LEN
            + if self.source_lladdr.is_some() { 8 } else { 0 }
            + if self.mtu.is_some() { 8 } else { 0 }
            + 32 * self.prefixes.len()
            + if dns > 0 { 8 + 16 * dns } else { 0 }
    }

    /// The message as bytes, checksummed for `src` and `dst`.
    pub fn build(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> Vec<u8> {
        let mut b = vec![0u8; self.buffer_len()];
        b[0] = icmpv6::msg_type::ROUTER_ADVERT;
        b[4] = self.cur_hop_limit;
        b[5] = if self.managed { RA_MANAGED } else { 0 } | if self.other { RA_OTHER } else { 0 };
        b[6..8].copy_from_slice(&self.router_lifetime.to_be_bytes());
        b[8..12].copy_from_slice(&self.reachable_time.to_be_bytes());
        b[12..16].copy_from_slice(&self.retrans_time.to_be_bytes());
        let mut at = FIXED_LEN;
        if let Some(mac) = self.source_lladdr {
            b[at..at + 2].copy_from_slice(&[OPT_SOURCE_LLADDR, 1]);
            b[at + 2..at + 8].copy_from_slice(&mac.0);
            at += 8;
        }
        if let Some(mtu) = self.mtu {
            b[at..at + 2].copy_from_slice(&[OPT_MTU, 1]);
            b[at + 4..at + 8].copy_from_slice(&mtu.to_be_bytes());
            at += 8;
        }
        for p in &self.prefixes {
            let o = &mut b[at..at + 32];
            o[..4].copy_from_slice(&[
                OPT_PREFIX_INFO,
                4,
                p.prefix_len,
                (u8::from(p.on_link) << 7) | (u8::from(p.autonomous) << 6),
            ]);
            o[4..8].copy_from_slice(&p.valid_lifetime.to_be_bytes());
            o[8..12].copy_from_slice(&p.preferred_lifetime.to_be_bytes());
            o[16..32].copy_from_slice(&p.prefix.octets());
            at += 32;
        }
        let dns = self.rdnss_servers();
        if let Some(r) = self.rdnss.as_ref().filter(|_| !dns.is_empty()) {
            // At most MAX_RDNSS (16) addresses: 1 + 2 * 16 units fits the length byte.
            let units = u8::try_from(1 + 2 * dns.len()).unwrap_or(u8::MAX);
            b[at..at + 2].copy_from_slice(&[OPT_RDNSS, units]);
            b[at + 4..at + 8].copy_from_slice(&r.lifetime.to_be_bytes());
            at += 8;
            for s in dns {
                b[at..at + 16].copy_from_slice(&s.octets());
                at += 16;
            }
        }
        Packet::new_unchecked(&mut b[..]).fill_checksum(src, dst);
        b
    }

    /// The whole frame a router interface with MAC `mac` sends: from its link-local
    /// address, hop limit 255, to `dst` (all-nodes unless answering one host's
    /// solicitation by unicast) at `dst_mac`.
    pub fn frame(&self, mac: EthernetAddress, dst: Ipv6Addr, dst_mac: EthernetAddress) -> Vec<u8> {
        let src = ipv6::link_local(mac.0);
        let body = self.build(&src, &dst);
        let ip = Ipv6Repr::new(src, dst, IpProtocol::Icmpv6, body.len(), ND_HOP_LIMIT);
        EthernetRepr {
            src_addr: mac,
            dst_addr: dst_mac,
            vlan: None,
            ethertype: EtherType::Ipv6,
        }
        .build(&ip.build(&body))
    }

    /// [`RouterAdvert::frame`] to all nodes.
    pub fn multicast_frame(&self, mac: EthernetAddress) -> Vec<u8> {
        self.frame(mac, ALL_NODES, EthernetAddress::ipv6_multicast(&ALL_NODES))
    }
}

/// Parses a whole Ethernet frame carrying a router advertisement (hop limit 255, ICMPv6
/// right after the fixed IPv6 header), as a host would accept it.
pub fn parse_frame(frame: &[u8]) -> Result<(EthernetRepr, Ipv6Repr, RouterAdvert)> {
    let eth = crate::ethernet::Frame::new_checked(frame)?;
    let e = EthernetRepr::parse(&eth)?;
    if e.ethertype != EtherType::Ipv6 {
        return Err(Error::Unsupported);
    }
    let ip_bytes = frame.get(eth.header_len()..).ok_or(Error::Truncated)?;
    let ip = ipv6::Packet::new_checked(ip_bytes)?;
    let i = Ipv6Repr::parse(&ip)?;
    if i.next_header != IpProtocol::Icmpv6 {
        return Err(Error::Unsupported);
    }
    if i.hop_limit != ND_HOP_LIMIT {
        return Err(Error::Malformed);
    }
    let body = ip_bytes
        .get(ipv6::HEADER_LEN..ipv6::HEADER_LEN + i.payload_len)
        .ok_or(Error::Truncated)?;
    let ra = RouterAdvert::parse(body, &i.src_addr, &i.dst_addr)?;
    Ok((e, i, ra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RouterAdvert {
        RouterAdvert {
            cur_hop_limit: 64,
            managed: false,
            other: true,
            router_lifetime: 300,
            source_lladdr: Some(EthernetAddress([0xfa, 0x16, 0x3e, 1, 2, 3])),
            mtu: Some(1400),
            prefixes: vec![PrefixInfo {
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                valid_lifetime: 86400,
                preferred_lifetime: 14400,
                prefix: "2001:db8:1::".parse().unwrap(),
            }],
            rdnss: Some(Rdnss {
                lifetime: 200,
                servers: vec![
                    "2001:db8::53".parse().unwrap(),
                    "2001:db8::54".parse().unwrap(),
                ],
            }),
            ..RouterAdvert::default()
        }
    }

    #[test]
    fn round_trips_with_every_option_and_the_rfc_8106_layout() {
        let ra = sample();
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let b = ra.build(&src, &ALL_NODES);
        assert_eq!(b.len(), 16 + 8 + 8 + 32 + 8 + 32);
        // RDNSS: type 25, length 5 (units of 8 bytes), reserved, lifetime, addresses.
        assert_eq!(&b[64..72], &[25, 5, 0, 0, 0, 0, 0, 200]);
        assert_eq!(b[5], RA_OTHER);
        assert_eq!(RouterAdvert::parse(&b, &src, &ALL_NODES).unwrap(), ra);
        // The ICMPv6 parser sees the same RA and skips RDNSS.
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(matches!(
            icmpv6::Icmpv6Repr::parse(&p, &src, &ALL_NODES),
            Ok(icmpv6::Icmpv6Repr::RouterAdvert {
                mtu: Some(1400),
                ..
            })
        ));
    }

    #[test]
    fn the_frame_is_from_the_eui64_link_local_with_hop_limit_255() {
        let mac = EthernetAddress([0xfa, 0x16, 0x3e, 1, 2, 3]);
        let (e, ip, ra) = parse_frame(&sample().multicast_frame(mac)).unwrap();
        assert_eq!(e.src_addr, mac);
        assert_eq!(e.dst_addr, EthernetAddress([0x33, 0x33, 0, 0, 0, 1]));
        assert_eq!(
            ip.src_addr,
            "fe80::f816:3eff:fe01:203".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(ip.hop_limit, 255);
        assert_eq!(ra, sample());
    }

    #[test]
    fn bad_options_and_checksums_are_refused() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let good = sample().build(&src, &ALL_NODES);
        let refix = |mut b: Vec<u8>| {
            Packet::new_unchecked(&mut b[..]).fill_checksum(&src, &ALL_NODES);
            b
        };
        let mut bad = good.clone();
        bad[20] ^= 1;
        assert_eq!(
            RouterAdvert::parse(&bad, &src, &ALL_NODES),
            Err(Error::Checksum)
        );
        // A zero-length option.
        let mut zero = good.clone();
        zero[17] = 0;
        assert_eq!(
            RouterAdvert::parse(&refix(zero), &src, &ALL_NODES),
            Err(Error::Malformed)
        );
        // An RDNSS option with no address (length 1).
        let mut b = good[..64].to_vec();
        b.extend_from_slice(&[25, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            RouterAdvert::parse(&refix(b), &src, &ALL_NODES),
            Err(Error::Malformed)
        );
        // An option running past the end.
        let mut b = good[..64].to_vec();
        b.extend_from_slice(&[25, 5, 0, 0]);
        assert_eq!(
            RouterAdvert::parse(&refix(b), &src, &ALL_NODES),
            Err(Error::Truncated)
        );
        // Not an RA.
        assert_eq!(
            RouterAdvert::parse(&[133, 0, 0, 0, 0, 0, 0, 0], &src, &ALL_NODES),
            Err(Error::Truncated)
        );
    }
}
