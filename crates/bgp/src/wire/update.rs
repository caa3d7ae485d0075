//! The UPDATE message (RFC 4271 §4.3) and its path attributes, with MP_REACH_NLRI and
//! MP_UNREACH_NLRI for IPv6 (RFC 4760) and AS4_PATH (RFC 6793). The checks of §6.3 give
//! the NOTIFICATION a malformed UPDATE deserves.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    AFI_IPV4, AFI_IPV6, ATTRIBUTE_FLAGS_ERROR, ATTRIBUTE_LENGTH_ERROR, Codec,
    INVALID_NETWORK_FIELD, INVALID_NEXT_HOP, INVALID_ORIGIN, MALFORMED_AS_PATH,
    MALFORMED_ATTRIBUTE_LIST, MISSING_WELL_KNOWN, Notification, OPTIONAL_ATTRIBUTE_ERROR,
    UNRECOGNIZED_WELL_KNOWN, be16, be32,
};
use crate::prefix::Prefix;

const OPTIONAL: u8 = 0x80;
const TRANSITIVE: u8 = 0x40;
const PARTIAL: u8 = 0x20;
const EXTENDED: u8 = 0x10;

pub const ORIGIN: u8 = 1;
pub const AS_PATH: u8 = 2;
pub const NEXT_HOP: u8 = 3;
pub const MED: u8 = 4;
pub const LOCAL_PREF: u8 = 5;
pub const MP_REACH: u8 = 14;
pub const MP_UNREACH: u8 = 15;
pub const AS4_PATH: u8 = 17;

pub const ORIGIN_IGP: u8 = 0;

/// An AS_PATH segment: an AS_SET (type 1) or AS_SEQUENCE (type 2) and its AS numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsSegment {
    pub kind: u8,
    pub asns: Vec<u32>,
}

pub const AS_SET: u8 = 1;
pub const AS_SEQUENCE: u8 = 2;

/// One path attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attr {
    Origin(u8),
    AsPath(Vec<AsSegment>),
    NextHop(Ipv4Addr),
    Med(u32),
    LocalPref(u32),
    /// Reachable prefixes of another family (IPv6 here) and their next hop(s): a global
    /// address and, optionally, a link-local one.
    MpReach {
        afi: u16,
        safi: u8,
        next_hops: Vec<IpAddr>,
        nlri: Vec<Prefix>,
    },
    MpUnreach {
        afi: u16,
        safi: u8,
        withdrawn: Vec<Prefix>,
    },
    As4Path(Vec<AsSegment>),
    /// An attribute this speaker does not interpret (flags without the extended-length bit).
    Other {
        flags: u8,
        code: u8,
        value: Vec<u8>,
    },
}

impl Attr {
    pub fn code(&self) -> u8 {
        match self {
            Attr::Origin(_) => ORIGIN,
            Attr::AsPath(_) => AS_PATH,
            Attr::NextHop(_) => NEXT_HOP,
            Attr::Med(_) => MED,
            Attr::LocalPref(_) => LOCAL_PREF,
            Attr::MpReach { .. } => MP_REACH,
            Attr::MpUnreach { .. } => MP_UNREACH,
            Attr::As4Path(_) => AS4_PATH,
            Attr::Other { code, .. } => *code,
        }
    }

    fn flags(&self) -> u8 {
        match self {
            Attr::Origin(_) | Attr::AsPath(_) | Attr::NextHop(_) | Attr::LocalPref(_) => TRANSITIVE,
            Attr::Med(_) | Attr::MpReach { .. } | Attr::MpUnreach { .. } => OPTIONAL,
            Attr::As4Path(_) => OPTIONAL | TRANSITIVE,
            Attr::Other { flags, .. } => *flags & !EXTENDED,
        }
    }
}

/// An UPDATE: IPv4 withdrawals, path attributes, IPv4 NLRI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Prefix>,
    pub attrs: Vec<Attr>,
    pub nlri: Vec<Prefix>,
}

impl Update {
    /// An End-of-RIB marker (RFC 4724 §2): empty for IPv4, an empty MP_UNREACH otherwise.
    pub fn end_of_rib(afi: u16, safi: u8) -> Update {
        let mut u = Update::default();
        if afi != AFI_IPV4 {
            u.attrs.push(Attr::MpUnreach {
                afi,
                safi,
                withdrawn: Vec::new(),
            });
        }
        u
    }

    pub fn attr(&self, code: u8) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.code() == code)
    }

    pub(crate) fn parse(body: &[u8], codec: Codec) -> Result<Update, Notification> {
        let malformed = || Notification::update(MALFORMED_ATTRIBUTE_LIST, Vec::new());
        let wlen = usize::from(be16(body, 0).ok_or_else(malformed)?);
        let withdrawn = body.get(2..2 + wlen).ok_or_else(malformed)?;
        let alen = usize::from(be16(body, 2 + wlen).ok_or_else(malformed)?);
        let mut attrs_b = body.get(4 + wlen..4 + wlen + alen).ok_or_else(malformed)?;
        let nlri_b = &body[4 + wlen + alen..];
        let invalid_net = || Notification::update(INVALID_NETWORK_FIELD, Vec::new());
        let withdrawn = Prefix::parse_list(withdrawn, false).ok_or_else(invalid_net)?;
        let nlri = Prefix::parse_list(nlri_b, false).ok_or_else(invalid_net)?;
        let mut attrs: Vec<Attr> = Vec::new();
        let mut seen = [false; 256];
        while !attrs_b.is_empty() {
            let [flags, code, rest @ ..] = attrs_b else {
                return Err(malformed());
            };
            let (len, rest) = if flags & EXTENDED != 0 {
                let l = be16(rest, 0).ok_or_else(malformed)?;
                (usize::from(l), &rest[2..])
            } else {
                let (l, r) = rest.split_first().ok_or_else(malformed)?;
                (usize::from(*l), r)
            };
            let value = rest.get(..len).ok_or_else(malformed)?;
            let hdr = attrs_b.len() - rest.len();
            let whole = &attrs_b[..hdr + len];
            attrs_b = &rest[len..];
            if std::mem::replace(&mut seen[usize::from(*code)], true) {
                return Err(malformed());
            }
            attrs.push(parse_attr(*flags, *code, value, whole, codec)?);
        }
        if !nlri.is_empty() {
            for code in [ORIGIN, AS_PATH, NEXT_HOP] {
                if !seen[usize::from(code)] {
                    return Err(Notification::update(MISSING_WELL_KNOWN, [code]));
                }
            }
        } else if seen[usize::from(MP_REACH)] {
            for code in [ORIGIN, AS_PATH] {
                if !seen[usize::from(code)] {
                    return Err(Notification::update(MISSING_WELL_KNOWN, [code]));
                }
            }
        }
        Ok(Update {
            withdrawn,
            attrs,
            nlri,
        })
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>, codec: Codec) {
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        for p in &self.withdrawn {
            p.emit(out);
        }
        let wlen = (out.len() - at - 2) as u16;
        out[at..at + 2].copy_from_slice(&wlen.to_be_bytes());
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        for a in &self.attrs {
            emit_attr(a, out, codec);
        }
        let alen = (out.len() - at - 2) as u16;
        out[at..at + 2].copy_from_slice(&alen.to_be_bytes());
        for p in &self.nlri {
            p.emit(out);
        }
    }
}

fn parse_attr(
    flags: u8,
    code: u8,
    value: &[u8],
    whole: &[u8],
    codec: Codec,
) -> Result<Attr, Notification> {
    let well_known = matches!(code, ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF);
    let known_optional = matches!(code, MED | MP_REACH | MP_UNREACH | AS4_PATH);
    let flag_err = || Notification::update(ATTRIBUTE_FLAGS_ERROR, whole);
    let len_err = || Notification::update(ATTRIBUTE_LENGTH_ERROR, whole);
    if well_known && flags & (OPTIONAL | TRANSITIVE | PARTIAL) != TRANSITIVE {
        return Err(flag_err());
    }
    if known_optional && flags & OPTIONAL == 0 {
        return Err(flag_err());
    }
    if !well_known && !known_optional && flags & OPTIONAL == 0 {
        return Err(Notification::update(UNRECOGNIZED_WELL_KNOWN, whole));
    }
    let four = |v: &[u8]| be32(v, 0).filter(|_| v.len() == 4).ok_or_else(len_err);
    Ok(match code {
        ORIGIN => {
            let [o] = value else { return Err(len_err()) };
            if *o > 2 {
                return Err(Notification::update(INVALID_ORIGIN, whole));
            }
            Attr::Origin(*o)
        }
        AS_PATH => Attr::AsPath(
            parse_segments(value, codec.four_octet_as)
                .ok_or_else(|| Notification::update(MALFORMED_AS_PATH, Vec::new()))?,
        ),
        NEXT_HOP => {
            let nh = Ipv4Addr::from(four(value)?);
            if nh.is_unspecified() || nh.is_multicast() || nh.is_broadcast() {
                return Err(Notification::update(INVALID_NEXT_HOP, whole));
            }
            Attr::NextHop(nh)
        }
        MED => Attr::Med(four(value)?),
        LOCAL_PREF => Attr::LocalPref(four(value)?),
        AS4_PATH => Attr::As4Path(
            parse_segments(value, true)
                .ok_or_else(|| Notification::update(OPTIONAL_ATTRIBUTE_ERROR, whole))?,
        ),
        MP_REACH => parse_mp_reach(value)
            .ok_or_else(|| Notification::update(OPTIONAL_ATTRIBUTE_ERROR, whole))?,
        MP_UNREACH => {
            let opt_err = || Notification::update(OPTIONAL_ATTRIBUTE_ERROR, whole);
            let afi = be16(value, 0).ok_or_else(opt_err)?;
            let safi = *value.get(2).ok_or_else(opt_err)?;
            let withdrawn = family_prefixes(afi, &value[3..]).ok_or_else(opt_err)?;
            Attr::MpUnreach {
                afi,
                safi,
                withdrawn,
            }
        }
        _ => Attr::Other {
            flags: flags & !EXTENDED,
            code,
            value: value.to_vec(),
        },
    })
}

/// The NLRI of `afi` (IPv4 or IPv6); any other family's are not understood.
fn family_prefixes(afi: u16, b: &[u8]) -> Option<Vec<Prefix>> {
    match afi {
        AFI_IPV4 => Prefix::parse_list(b, false),
        AFI_IPV6 => Prefix::parse_list(b, true),
        _ => None,
    }
}

fn parse_mp_reach(v: &[u8]) -> Option<Attr> {
    let afi = be16(v, 0)?;
    let safi = *v.get(2)?;
    let nh_len = usize::from(*v.get(3)?);
    let nh = v.get(4..4 + nh_len)?;
    let next_hops = match (afi, nh_len) {
        (AFI_IPV4, 4) => vec![IpAddr::V4(Ipv4Addr::new(nh[0], nh[1], nh[2], nh[3]))],
        (AFI_IPV6, 16 | 32) => nh
            .chunks_exact(16)
            .map(|c| {
                let mut o = [0u8; 16];
                o.copy_from_slice(c);
                IpAddr::V6(Ipv6Addr::from(o))
            })
            .collect(),
        _ => return None,
    };
    // One reserved byte, then the NLRI.
    let nlri = family_prefixes(afi, v.get(5 + nh_len..)?)?;
    Some(Attr::MpReach {
        afi,
        safi,
        next_hops,
        nlri,
    })
}

fn parse_segments(mut b: &[u8], four: bool) -> Option<Vec<AsSegment>> {
    let width = if four { 4 } else { 2 };
    let mut out = Vec::new();
    while let [kind, count, rest @ ..] = b {
        if !matches!(*kind, AS_SET | AS_SEQUENCE) || *count == 0 {
            return None;
        }
        let n = usize::from(*count) * width;
        let asns = rest
            .get(..n)?
            .chunks_exact(width)
            .map(|c| {
                if four {
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                } else {
                    u32::from(u16::from_be_bytes([c[0], c[1]]))
                }
            })
            .collect();
        out.push(AsSegment { kind: *kind, asns });
        b = &rest[n..];
    }
    b.is_empty().then_some(out)
}

fn emit_segments(segs: &[AsSegment], four: bool, out: &mut Vec<u8>) {
    for s in segs {
        // A segment holds at most 255 AS numbers: longer ones continue in the next.
        for chunk in s.asns.chunks(255) {
            out.push(s.kind);
            out.push(chunk.len() as u8);
            for &a in chunk {
                if four {
                    out.extend_from_slice(&a.to_be_bytes());
                } else {
                    let a = u16::try_from(a).unwrap_or(super::AS_TRANS);
                    out.extend_from_slice(&a.to_be_bytes());
                }
            }
        }
    }
}

fn emit_attr(a: &Attr, out: &mut Vec<u8>, codec: Codec) {
    let mut v = Vec::new();
    match a {
        Attr::Origin(o) => v.push(*o),
        Attr::AsPath(segs) => emit_segments(segs, codec.four_octet_as, &mut v),
        Attr::As4Path(segs) => emit_segments(segs, true, &mut v),
        Attr::NextHop(nh) => v.extend_from_slice(&nh.octets()),
        Attr::Med(x) | Attr::LocalPref(x) => v.extend_from_slice(&x.to_be_bytes()),
        Attr::MpReach {
            afi,
            safi,
            next_hops,
            nlri,
        } => {
            v.extend_from_slice(&afi.to_be_bytes());
            v.push(*safi);
            let at = v.len();
            v.push(0);
            for nh in next_hops {
                match nh {
                    IpAddr::V4(a) => v.extend_from_slice(&a.octets()),
                    IpAddr::V6(a) => v.extend_from_slice(&a.octets()),
                }
            }
            v[at] = (v.len() - at - 1) as u8;
            v.push(0);
            for p in nlri {
                p.emit(&mut v);
            }
        }
        Attr::MpUnreach {
            afi,
            safi,
            withdrawn,
        } => {
            v.extend_from_slice(&afi.to_be_bytes());
            v.push(*safi);
            for p in withdrawn {
                p.emit(&mut v);
            }
        }
        Attr::Other { value, .. } => v.extend_from_slice(value),
    }
    let mut flags = a.flags();
    if v.len() > 255 {
        flags |= EXTENDED;
    }
    out.push(flags);
    out.push(a.code());
    if v.len() > 255 {
        out.extend_from_slice(&(v.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    } else {
        out.push(v.len() as u8);
    }
    out.extend_from_slice(&v);
}
