//! Group membership messages, IGMP (v1, v2, v3: RFC 1112, 2236, 3376) and MLD (v1, v2:
//! RFC 2710, 3810), read from a whole Ethernet frame into one [`Membership`] message, and
//! the general queries a snooping switch sends when no router does. Source lists of v3
//! and MLDv2 records are read for their count only: what a snooping switch needs is which
//! groups a host wants at all.
//!
//! Never panics on any bytes (fuzzed): every length is checked before it is read.

use crate::checksum;
use crate::ethernet::{EtherType, EthernetAddress, Frame};
use crate::{Error, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const IP_PROTO_IGMP: u8 = 2;
const IP_PROTO_ICMPV6: u8 = 58;
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_DEST_OPTS: u8 = 60;

const IGMP_QUERY: u8 = 0x11;
const IGMPV1_REPORT: u8 = 0x12;
const IGMPV2_REPORT: u8 = 0x16;
const IGMPV2_LEAVE: u8 = 0x17;
const IGMPV3_REPORT: u8 = 0x22;

const MLD_QUERY: u8 = 130;
const MLDV1_REPORT: u8 = 131;
const MLDV1_DONE: u8 = 132;
const MLDV2_REPORT: u8 = 143;

/// Record types of IGMPv3 and MLDv2 reports (the same numbers in both).
const MODE_IS_INCLUDE: u8 = 1;
const MODE_IS_EXCLUDE: u8 = 2;
const CHANGE_TO_INCLUDE: u8 = 3;
const CHANGE_TO_EXCLUDE: u8 = 4;
const ALLOW_NEW_SOURCES: u8 = 5;
const BLOCK_OLD_SOURCES: u8 = 6;

/// What a membership message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A query (from a router or another querier); `group` is `None` for a general one.
    Query {
        /// 1, 2 or 3 for IGMP; 1 or 2 for MLD.
        version: u8,
        /// The group of a group-specific query.
        group: Option<IpAddr>,
    },
    /// A report: the groups the host wants to receive, and those it no longer wants.
    Report {
        /// IGMP 1 to 3, MLD 1 or 2.
        version: u8,
        /// Groups the host listens to (again).
        joins: Vec<IpAddr>,
        /// Groups it left.
        leaves: Vec<IpAddr>,
    },
}

/// One membership message with who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The sender's Ethernet address.
    pub src_mac: EthernetAddress,
    /// The sender's IP address (0.0.0.0 or :: for a host with none yet).
    pub src_ip: IpAddr,
    /// What it says.
    pub message: Message,
}

fn be16(b: &[u8], at: usize) -> Result<u16> {
    match b.get(at..at + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(Error::Truncated),
    }
}

fn v4(b: &[u8], at: usize) -> Result<Ipv4Addr> {
    let s: [u8; 4] = b
        .get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::Truncated)?;
    Ok(Ipv4Addr::from(s))
}

fn v6(b: &[u8], at: usize) -> Result<Ipv6Addr> {
    let s: [u8; 16] = b
        .get(at..at + 16)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::Truncated)?;
    Ok(Ipv6Addr::from(s))
}

/// Reads the group records of an IGMPv3 (`addr_len` 4) or MLDv2 (16) report, starting at
/// `at` in `b`, into joins and leaves. A record that keeps or asks for some sources, or
/// excludes some, is a join; `TO_IN({})` / `IS_IN({})` is a leave; `BLOCK` changes nothing
/// for a switch that does not track sources.
fn records(
    b: &[u8],
    mut at: usize,
    count: u16,
    addr_len: usize,
) -> Result<(Vec<IpAddr>, Vec<IpAddr>)> {
    let (mut joins, mut leaves) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let head = b.get(at..at + 4).ok_or(Error::Truncated)?;
        let (kind, aux_words, sources) =
            (head[0], usize::from(head[1]), usize::from(be16(b, at + 2)?));
        let group = if addr_len == 4 {
            IpAddr::V4(v4(b, at + 4)?)
        } else {
            IpAddr::V6(v6(b, at + 4)?)
        };
        let len = 4 + addr_len + sources * addr_len + aux_words * 4;
        if b.len() < at + len {
            return Err(Error::Truncated);
        }
        at += len;
        match kind {
            MODE_IS_EXCLUDE | CHANGE_TO_EXCLUDE => joins.push(group),
            MODE_IS_INCLUDE | CHANGE_TO_INCLUDE | ALLOW_NEW_SOURCES if sources > 0 => {
                joins.push(group)
            }
            MODE_IS_INCLUDE | CHANGE_TO_INCLUDE => leaves.push(group),
            ALLOW_NEW_SOURCES | BLOCK_OLD_SOURCES => {}
            _ => return Err(Error::Malformed),
        }
    }
    Ok((joins, leaves))
}

/// Reads an IGMP message (the IPv4 payload).
pub fn parse_igmp(msg: &[u8]) -> Result<Message> {
    if msg.len() < 8 {
        return Err(Error::Truncated);
    }
    if checksum::data(msg) != 0xffff {
        return Err(Error::Checksum);
    }
    let group = v4(msg, 4)?;
    let one = |g: Ipv4Addr| vec![IpAddr::V4(g)];
    Ok(match msg[0] {
        IGMP_QUERY => Message::Query {
            // RFC 3376 7.1: 8 bytes is v1 (max resp 0) or v2; 12 or more is v3.
            version: match (msg.len(), msg[1]) {
                (8, 0) => 1,
                (8, _) => 2,
                (12.., _) => 3,
                _ => return Err(Error::Malformed),
            },
            group: (!group.is_unspecified()).then_some(IpAddr::V4(group)),
        },
        IGMPV1_REPORT | IGMPV2_REPORT => Message::Report {
            version: if msg[0] == IGMPV1_REPORT { 1 } else { 2 },
            joins: one(group),
            leaves: Vec::new(),
        },
        IGMPV2_LEAVE => Message::Report {
            version: 2,
            joins: Vec::new(),
            leaves: one(group),
        },
        IGMPV3_REPORT => {
            let (joins, leaves) = records(msg, 8, be16(msg, 6)?, 4)?;
            Message::Report {
                version: 3,
                joins,
                leaves,
            }
        }
        _ => return Err(Error::Unsupported),
    })
}

/// Reads an MLD message (the ICMPv6 message, checksum checked with the addresses).
pub fn parse_mld(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> Result<Message> {
    if msg.len() < 4 {
        return Err(Error::Truncated);
    }
    let len = u32::try_from(msg.len()).map_err(|_| Error::Malformed)?;
    let (s, d) = (IpAddr::V6(*src), IpAddr::V6(*dst));
    if checksum::combine(&[
        checksum::pseudo_header(&s, &d, IP_PROTO_ICMPV6, len),
        checksum::data(msg),
    ]) != 0xffff
    {
        return Err(Error::Checksum);
    }
    let group = |at| v6(msg, at).map(IpAddr::V6);
    Ok(match msg[0] {
        MLD_QUERY => {
            let g = v6(msg, 8)?;
            Message::Query {
                version: match msg.len() {
                    24 => 1,
                    28.. => 2,
                    _ => return Err(Error::Malformed),
                },
                group: (!g.is_unspecified()).then_some(IpAddr::V6(g)),
            }
        }
        MLDV1_REPORT => Message::Report {
            version: 1,
            joins: vec![group(8)?],
            leaves: Vec::new(),
        },
        MLDV1_DONE => Message::Report {
            version: 1,
            joins: Vec::new(),
            leaves: vec![group(8)?],
        },
        MLDV2_REPORT => {
            let (joins, leaves) = records(msg, 8, be16(msg, 6)?, 16)?;
            Message::Report {
                version: 2,
                joins,
                leaves,
            }
        }
        _ => return Err(Error::Unsupported),
    })
}

/// Reads the membership message of a whole Ethernet frame: IGMP in IPv4 (options such as
/// router alert skipped), or MLD in IPv6 after hop-by-hop and destination options.
pub fn parse_frame(data: &[u8]) -> Result<Membership> {
    let frame = Frame::new_checked(data)?;
    let src_mac = frame.src_addr();
    let ip = frame.payload();
    match frame.ethertype() {
        EtherType::Ipv4 => {
            let head = ip.get(..20).ok_or(Error::Truncated)?;
            let ihl = usize::from(head[0] & 0x0f) * 4;
            let total = usize::from(be16(ip, 2)?);
            if head[0] >> 4 != 4 || ihl < 20 || total < ihl || ip.len() < total {
                return Err(Error::Malformed);
            }
            if head[9] != IP_PROTO_IGMP {
                return Err(Error::Unsupported);
            }
            Ok(Membership {
                src_mac,
                src_ip: IpAddr::V4(v4(ip, 12)?),
                message: parse_igmp(&ip[ihl..total])?,
            })
        }
        EtherType::Ipv6 => {
            if ip.len() < 40 || ip[0] >> 4 != 6 {
                return Err(Error::Truncated);
            }
            let end = 40 + usize::from(be16(ip, 4)?);
            let ip = ip.get(..end).ok_or(Error::Truncated)?;
            let (src, dst) = (v6(ip, 8)?, v6(ip, 24)?);
            let (mut next, mut at) = (ip[6], 40);
            // At most a few extension headers before the ICMPv6 message.
            for _ in 0..4 {
                if next != IPV6_HOP_BY_HOP && next != IPV6_DEST_OPTS {
                    break;
                }
                let h = ip.get(at..at + 2).ok_or(Error::Truncated)?;
                next = h[0];
                at += (usize::from(h[1]) + 1) * 8;
            }
            if next != IP_PROTO_ICMPV6 {
                return Err(Error::Unsupported);
            }
            let msg = ip.get(at..).ok_or(Error::Truncated)?;
            Ok(Membership {
                src_mac,
                src_ip: IpAddr::V6(src),
                message: parse_mld(&src, &dst, msg)?,
            })
        }
        _ => Err(Error::Unsupported),
    }
}

/// The Ethernet multicast address of an IPv4 group (RFC 1112: the low 23 bits).
pub fn ipv4_multicast_mac(group: Ipv4Addr) -> EthernetAddress {
    let o = group.octets();
    EthernetAddress([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
}

fn ether(dst: EthernetAddress, src: EthernetAddress, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(dst.as_bytes());
    f.extend_from_slice(src.as_bytes());
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IGMPv3 general query (to 224.0.0.1, TTL 1, with the router alert option) from
/// `src_mac`/`src_ip`, asking for answers within `max_resp_ds` tenths of a second (up to
/// 12.7 s: the exponential encoding is not needed for a querier's usual 10 s).
pub fn igmp_general_query(src_mac: EthernetAddress, src_ip: Ipv4Addr, max_resp_ds: u8) -> Vec<u8> {
    let all_hosts = Ipv4Addr::new(224, 0, 0, 1);
    // IGMPv3 query: type, max resp code, checksum, group 0, S/QRV (robustness 2), QQIC
    // (125 s), no sources.
    let mut igmp = [
        IGMP_QUERY,
        max_resp_ds.min(127),
        0,
        0,
        0,
        0,
        0,
        0,
        2,
        125,
        0,
        0,
    ];
    let c = !checksum::data(&igmp);
    igmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total: u16 = 24 + 12;
    let mut ip = vec![0x46, 0xc0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 1, IP_PROTO_IGMP, 0, 0]);
    ip.extend_from_slice(&src_ip.octets());
    ip.extend_from_slice(&all_hosts.octets());
    // Router alert (RFC 2113).
    ip.extend_from_slice(&[0x94, 0x04, 0, 0]);
    let c = !checksum::data(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&igmp);
    ether(ipv4_multicast_mac(all_hosts), src_mac, 0x0800, &ip)
}

/// An MLDv2 general query (to ff02::1, hop limit 1, hop-by-hop router alert) from the
/// link-local `src_ip`, asking for answers within `max_resp_ms` milliseconds (up to
/// 32.767 s, the linear range of the code).
pub fn mld_general_query(src_mac: EthernetAddress, src_ip: Ipv6Addr, max_resp_ms: u16) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut mld = [0u8; 28];
    mld[0] = MLD_QUERY;
    mld[4..6].copy_from_slice(&max_resp_ms.min(0x7fff).to_be_bytes());
    mld[24] = 2; // robustness
    mld[25] = 125; // query interval
    let c = checksum::with_pseudo_header(
        &IpAddr::V6(src_ip),
        &IpAddr::V6(all_nodes),
        IP_PROTO_ICMPV6,
        &mld,
    );
    mld[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(8u16 + 28).to_be_bytes());
    ip.extend_from_slice(&[IPV6_HOP_BY_HOP, 1]);
    ip.extend_from_slice(&src_ip.octets());
    ip.extend_from_slice(&all_nodes.octets());
    // Hop-by-hop: next header ICMPv6, router alert (MLD), PadN of 0.
    ip.extend_from_slice(&[IP_PROTO_ICMPV6, 0, 5, 2, 0, 0, 1, 0]);
    ip.extend_from_slice(&mld);
    ether(
        EthernetAddress::ipv6_multicast(&all_nodes),
        src_mac,
        0x86dd,
        &ip,
    )
}

#[cfg(test)]
mod tests;
