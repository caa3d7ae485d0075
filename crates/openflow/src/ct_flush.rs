//! NXT_CT_FLUSH (OVS 3.1+): flush the conntrack entries of a zone that match a partial
//! tuple. The body is `ip_proto (u8), family (u8), 6 zero bytes` followed by properties:
//! the original-direction tuple (0), the reply-direction tuple (1) and the zone (2). A tuple
//! is a nested property list (4 bytes of padding after its header) of source (0) and
//! destination (1) addresses (16 bytes, IPv4 as `::ffff:a.b.c.d`), source (2) and
//! destination (3) ports, ICMP id (4), type (5) and code (6). A field left out matches any
//! value; OVS 3.1 compares ICMP id/type/code exactly when the protocol is ICMP.

use crate::buf::{Reader, pad_to_8, patch_u16, put_u8, put_u16};
use crate::error::{Error, Result};
use std::net::{IpAddr, Ipv6Addr};

/// Property types of the message.
mod prop {
    pub(super) const ORIG_TUPLE: u16 = 0;
    pub(super) const REPLY_TUPLE: u16 = 1;
    pub(super) const ZONE_ID: u16 = 2;
}

/// Property types inside a tuple.
mod tuple {
    pub(super) const SRC: u16 = 0;
    pub(super) const DST: u16 = 1;
    pub(super) const SRC_PORT: u16 = 2;
    pub(super) const DST_PORT: u16 = 3;
    pub(super) const ICMP_ID: u16 = 4;
    pub(super) const ICMP_TYPE: u16 = 5;
    pub(super) const ICMP_CODE: u16 = 6;
}

/// One direction's tuple; `None` fields are wildcards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CtTuple {
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// Transport source port.
    pub src_port: Option<u16>,
    /// Transport destination port.
    pub dst_port: Option<u16>,
    /// ICMP id.
    pub icmp_id: Option<u16>,
    /// ICMP type.
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
}

impl CtTuple {
    fn is_empty(&self) -> bool {
        *self == CtTuple::default()
    }

    fn encode(&self, ty: u16, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, ty);
        put_u16(out, 0);
        out.extend_from_slice(&[0; 4]);
        let addr = |out: &mut Vec<u8>, t: u16, a: IpAddr| {
            put_u16(out, t);
            put_u16(out, 20);
            let v6 = match a {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.extend_from_slice(&v6.octets());
            out.extend_from_slice(&[0; 4]);
        };
        // u16 properties are padded to 8 bytes and say so in their length (as OVS writes them).
        let u16p = |out: &mut Vec<u8>, t: u16, v: u16| {
            put_u16(out, t);
            put_u16(out, 8);
            put_u16(out, v);
            put_u16(out, 0);
        };
        let u8p = |out: &mut Vec<u8>, t: u16, v: u8| {
            put_u16(out, t);
            put_u16(out, 5);
            put_u8(out, v);
            out.extend_from_slice(&[0; 3]);
        };
        if let Some(a) = self.src {
            addr(out, tuple::SRC, a);
        }
        if let Some(a) = self.dst {
            addr(out, tuple::DST, a);
        }
        if let Some(p) = self.src_port {
            u16p(out, tuple::SRC_PORT, p);
        }
        if let Some(p) = self.dst_port {
            u16p(out, tuple::DST_PORT, p);
        }
        if let Some(v) = self.icmp_id {
            u16p(out, tuple::ICMP_ID, v);
        }
        if let Some(v) = self.icmp_type {
            u8p(out, tuple::ICMP_TYPE, v);
        }
        if let Some(v) = self.icmp_code {
            u8p(out, tuple::ICMP_CODE, v);
        }
        let len = crate::buf::field_len(out.len() - start);
        patch_u16(out, start + 2, len);
    }

    fn decode(body: &[u8]) -> Result<CtTuple> {
        let mut t = CtTuple::default();
        let mut r = Reader::new(body, "ct tuple");
        while !r.is_empty() {
            let (ty, v) = property(&mut r)?;
            let mut v = Reader::new(v, "ct tuple property");
            match ty {
                tuple::SRC | tuple::DST => {
                    let a = Ipv6Addr::from(v.array::<16>()?);
                    let a = a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4);
                    if ty == tuple::SRC {
                        t.src = Some(a);
                    } else {
                        t.dst = Some(a);
                    }
                }
                tuple::SRC_PORT => t.src_port = Some(v.u16()?),
                tuple::DST_PORT => t.dst_port = Some(v.u16()?),
                tuple::ICMP_ID => t.icmp_id = Some(v.u16()?),
                tuple::ICMP_TYPE => t.icmp_type = Some(v.u8()?),
                tuple::ICMP_CODE => t.icmp_code = Some(v.u8()?),
                _ => return Err(Error::BadValue("unknown ct tuple property")),
            }
        }
        Ok(t)
    }
}

/// Reads one property: its type and its value (without header or padding).
fn property<'a>(r: &mut Reader<'a>) -> Result<(u16, &'a [u8])> {
    let ty = r.u16()?;
    let len = usize::from(r.u16()?);
    if len < 4 {
        return Err(Error::BadValue("ct flush property length"));
    }
    let value = r.take(len - 4)?;
    // Padding to a multiple of 8 (the last property may end the message without it).
    let pad = crate::buf::round8(len) - len;
    r.skip(pad.min(r.remaining()))?;
    Ok((ty, value))
}

/// NXT_CT_FLUSH: the entries of `zone` (every zone when `None`) matching both tuples.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CtFlush {
    /// IP protocol (0: any).
    pub ip_proto: u8,
    /// Zone, if limited to one.
    pub zone: Option<u16>,
    /// Original-direction tuple.
    pub orig: CtTuple,
    /// Reply-direction tuple.
    pub reply: CtTuple,
}

impl CtFlush {
    /// Appends the body (after the experimenter header).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u8(out, self.ip_proto);
        // The family is implied by the addresses (OVS writes 0 too).
        put_u8(out, 0);
        out.extend_from_slice(&[0; 6]);
        if !self.orig.is_empty() {
            self.orig.encode(prop::ORIG_TUPLE, out);
        }
        if !self.reply.is_empty() {
            self.reply.encode(prop::REPLY_TUPLE, out);
        }
        if let Some(z) = self.zone {
            let start = out.len();
            put_u16(out, prop::ZONE_ID);
            put_u16(out, 8);
            put_u16(out, z);
            pad_to_8(out, start);
        }
    }

    /// Decodes the body (after the experimenter header).
    pub fn decode(r: &mut Reader<'_>) -> Result<CtFlush> {
        let ip_proto = r.u8()?;
        let _family = r.u8()?;
        r.skip(6)?;
        let mut f = CtFlush {
            ip_proto,
            ..CtFlush::default()
        };
        while !r.is_empty() {
            let (ty, v) = property(r)?;
            match ty {
                prop::ORIG_TUPLE | prop::REPLY_TUPLE => {
                    // Nested properties start after 4 bytes of padding.
                    let t = CtTuple::decode(v.get(4..).ok_or(Error::Truncated("ct tuple"))?)?;
                    if ty == prop::ORIG_TUPLE {
                        f.orig = t;
                    } else {
                        f.reply = t;
                    }
                }
                prop::ZONE_ID => f.zone = Some(Reader::new(v, "ct zone").u16()?),
                _ => return Err(Error::BadValue("unknown ct flush property")),
            }
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    #[test]
    fn bytes_as_ovs_ofctl_sends_them() {
        // `ovs-ofctl ct-flush br zone=5 'ct_nw_dst=10.9.0.2,ct_nw_proto=6,ct_tp_dst=22'`,
        // captured from ovs-ofctl 3.1 on a socket.
        let want = "04040048000000020000232000000020060000000000000000000028000000000001001400000000000000000000ffff0a0900020000000000030008001600000002000800050000";
        let m = Message::CtFlush(CtFlush {
            ip_proto: 6,
            zone: Some(5),
            orig: CtTuple {
                dst: Some("10.9.0.2".parse().unwrap()),
                dst_port: Some(22),
                ..CtTuple::default()
            },
            reply: CtTuple::default(),
        });
        let bytes = m.to_vec(2).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want);
        assert_eq!(Message::decode(&bytes), Ok((2, m)));
    }

    #[test]
    fn every_field_round_trips() {
        let m = Message::CtFlush(CtFlush {
            ip_proto: 58,
            zone: None,
            orig: CtTuple {
                src: Some("fd00::1".parse().unwrap()),
                dst: Some("fd00::2".parse().unwrap()),
                src_port: Some(1),
                dst_port: Some(2),
                icmp_id: Some(7),
                icmp_type: Some(128),
                icmp_code: Some(0),
            },
            reply: CtTuple {
                src: Some("10.0.0.1".parse().unwrap()),
                ..CtTuple::default()
            },
        });
        let bytes = m.to_vec(9).unwrap();
        assert_eq!(bytes.len() % 8, 0);
        assert_eq!(Message::decode(&bytes), Ok((9, m)));
        // Truncations never panic.
        for n in 0..bytes.len() {
            let mut b = bytes[..n].to_vec();
            if b.len() >= 4 {
                b[2..4].copy_from_slice(&crate::buf::field_len(n).to_be_bytes());
            }
            let _ = Message::decode(&b);
        }
    }
}
