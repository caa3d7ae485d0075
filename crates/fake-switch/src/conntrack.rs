//! A small connection tracker: zones, commit, new/est/rel/rpl/inv/trk, ct_mark/ct_label,
//! and source/destination NAT to one address (or the first of a range) for IPv4 and IPv6.

use std::net::IpAddr;

use openflow::Field;
use openflow::nx::{Nat, nat_flags};
use openflow::oxm::ct_state::{DNAT, EST, INV, NEW, REL, RPL, SNAT, TRK};

use crate::fields::Packet;

/// The 5-tuple of a packet (for ICMP echo, the identifier is the source "port").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// IP protocol.
    pub proto: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (or ICMP id).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl Tuple {
    fn reversed(&self) -> Tuple {
        Tuple {
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

fn addr(pkt: &Packet, v4: Field, v6: Field) -> Option<IpAddr> {
    if let Some(a) = pkt.get(v4) {
        return Some(IpAddr::V4((a as u32).into()));
    }
    pkt.get(v6).map(|a| IpAddr::V6(a.into()))
}

/// The packet's tuple, or `None` when it is not a (complete) IP packet.
pub fn tuple_of(pkt: &Packet) -> Option<Tuple> {
    let src = addr(pkt, Field::Ipv4Src, Field::Ipv6Src)?;
    let dst = addr(pkt, Field::Ipv4Dst, Field::Ipv6Dst)?;
    let proto = pkt.get(Field::IpProto)? as u8;
    let p = |f: Field| pkt.get(f).map(|v| v as u16);
    let (sport, dport) = match proto {
        6 => (p(Field::TcpSrc)?, p(Field::TcpDst)?),
        17 => (p(Field::UdpSrc)?, p(Field::UdpDst)?),
        1 | 58 => {
            let lay = pkt.layout()?;
            let l4 = lay.l4?;
            let ty = crate::fields::be(&pkt.frame, l4, 1)? as u8;
            // Echo request/reply: the identifier, so both directions share a tuple pair.
            if matches!(ty, 0 | 8 | 128 | 129) {
                (crate::fields::be(&pkt.frame, l4 + 4, 2)? as u16, 0)
            } else {
                (0, 0)
            }
        }
        _ => (0, 0),
    };
    Some(Tuple {
        proto,
        src,
        dst,
        sport,
        dport,
    })
}

/// The tuple of the datagram quoted by an ICMP error, reversed into the direction of the
/// connection it belongs to.
fn icmp_error_inner(pkt: &Packet) -> Option<Tuple> {
    let lay = pkt.layout()?;
    let l4 = lay.l4?;
    let ty = crate::fields::be(&pkt.frame, l4, 1)? as u8;
    let is_err = match lay.proto {
        1 => matches!(ty, 3 | 11 | 12),
        58 => matches!(ty, 1..=4),
        _ => false,
    };
    if !is_err {
        return None;
    }
    // Build a fake frame holding the quoted datagram after an Ethernet header.
    let inner = pkt.frame.get(l4 + 8..)?;
    let mut frame = vec![0u8; 12];
    frame.extend_from_slice(&if lay.ip == 4 { 0x0800u16 } else { 0x86dd }.to_be_bytes());
    frame.extend_from_slice(inner);
    let t = tuple_of(&Packet::new(0, frame))?;
    Some(t)
}

/// One tracked connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    /// Zone.
    pub zone: u16,
    /// Original-direction tuple (before NAT).
    pub orig: Tuple,
    /// Expected reply tuple (after NAT).
    pub reply: Tuple,
    /// ct_mark.
    pub mark: u32,
    /// ct_label.
    pub label: u128,
    /// A reply has been seen.
    pub seen_reply: bool,
    /// NAT applied: SNAT and/or DNAT bits.
    pub nat: u32,
}

/// The connection table.
#[derive(Debug, Clone, Default)]
pub struct Conntrack {
    conns: Vec<Conn>,
}

/// What the ct action asked for.
pub(crate) struct CtRequest<'a> {
    pub zone: u16,
    pub commit: bool,
    pub nat: Option<&'a Nat>,
    /// (field, value, mask) writes to ct_mark / ct_label from the exec list.
    pub sets: Vec<(Field, u128, u128)>,
}

impl Conntrack {
    /// The committed connections.
    pub fn connections(&self) -> &[Conn] {
        &self.conns
    }

    /// Forgets every connection.
    pub fn clear(&mut self) {
        self.conns.clear();
    }

    /// Runs the packet through the tracker: sets ct_state/zone/mark/label, commits, NATs.
    pub(crate) fn execute(&mut self, pkt: &mut Packet, req: &CtRequest<'_>) {
        pkt.ct_zone = req.zone;
        pkt.ct_mark = 0;
        pkt.ct_label = 0;
        pkt.ct_orig = None;
        let Some(t) = tuple_of(pkt) else {
            pkt.ct_state = TRK | INV;
            return;
        };
        let found = self
            .conns
            .iter()
            .position(|c| c.zone == req.zone && (c.orig == t || c.reply == t));
        let (idx, reply_dir) = match found {
            Some(i) => {
                let c = &mut self.conns[i];
                let rpl = c.reply == t && c.orig != t;
                if rpl {
                    c.seen_reply = true;
                    pkt.ct_state = TRK | EST | RPL;
                } else {
                    pkt.ct_state = TRK | if c.seen_reply { EST } else { NEW };
                }
                (Some(i), rpl)
            }
            None => {
                if let Some(inner) = icmp_error_inner(pkt)
                    && self.conns.iter().any(|c| {
                        c.zone == req.zone
                            && (c.orig == inner
                                || c.reply == inner
                                || c.orig == inner.reversed()
                                || c.reply == inner.reversed())
                    })
                {
                    pkt.ct_state = TRK | REL;
                    return;
                }
                // A TCP segment that does not open a connection is invalid without one.
                let flags = pkt.get(Field::TcpFlags).unwrap_or(0x002);
                if t.proto == 6 && flags & 0x017 != 0x002 {
                    pkt.ct_state = TRK | INV;
                    return;
                }
                pkt.ct_state = TRK | NEW;
                if req.commit {
                    let (reply, nat) = nat_reply(&t, req.nat);
                    self.conns.push(Conn {
                        zone: req.zone,
                        orig: t,
                        reply,
                        mark: 0,
                        label: 0,
                        seen_reply: false,
                        nat,
                    });
                    (Some(self.conns.len() - 1), false)
                } else {
                    (None, false)
                }
            }
        };
        pkt.ct_orig = Some(idx.and_then(|i| self.conns.get(i)).map_or(t, |c| c.orig));
        let Some(i) = idx else {
            for (f, v, m) in &req.sets {
                pkt.set_masked(*f, *v, *m);
            }
            return;
        };
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        if req.commit {
            for (f, v, m) in &req.sets {
                match f {
                    Field::CtMark => c.mark = ((u128::from(c.mark) & !m) | (v & m)) as u32,
                    Field::CtLabel => c.label = (c.label & !m) | (v & m),
                    _ => {}
                }
            }
        }
        pkt.ct_mark = c.mark;
        pkt.ct_label = c.label;
        if req.nat.is_some() && c.nat != 0 {
            let c = c.clone();
            apply_nat(pkt, &c, reply_dir);
            pkt.ct_state |= c.nat;
        }
    }
}

fn nat_reply(t: &Tuple, nat: Option<&Nat>) -> (Tuple, u32) {
    let Some(n) = nat else {
        return (t.reversed(), 0);
    };
    let Some(a) = n.addr_min else {
        return (t.reversed(), 0);
    };
    if a.is_ipv4() != t.src.is_ipv4() {
        return (t.reversed(), 0);
    }
    let port_nat = matches!(t.proto, 6 | 17);
    let mut x = *t;
    let bits = if n.flags & nat_flags::SRC != 0 {
        x.src = a;
        if let (Some(p), true) = (n.port_min, port_nat) {
            x.sport = p;
        }
        SNAT
    } else if n.flags & nat_flags::DST != 0 {
        x.dst = a;
        if let (Some(p), true) = (n.port_min, port_nat) {
            x.dport = p;
        }
        DNAT
    } else {
        0
    };
    (x.reversed(), bits)
}

fn set_addr(pkt: &mut Packet, src: bool, a: IpAddr) {
    let f = match (a, src) {
        (IpAddr::V4(_), true) => Field::Ipv4Src,
        (IpAddr::V4(_), false) => Field::Ipv4Dst,
        (IpAddr::V6(_), true) => Field::Ipv6Src,
        (IpAddr::V6(_), false) => Field::Ipv6Dst,
    };
    let v = match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    pkt.set(f, v);
}

fn set_port(pkt: &mut Packet, proto: u8, src: bool, p: u16) {
    let f = match (proto, src) {
        (6, true) => Field::TcpSrc,
        (6, false) => Field::TcpDst,
        (17, true) => Field::UdpSrc,
        (17, false) => Field::UdpDst,
        _ => return,
    };
    pkt.set(f, u128::from(p));
}

/// Rewrites the packet as the connection's NAT requires in this direction.
fn apply_nat(pkt: &mut Packet, c: &Conn, reply_dir: bool) {
    // Translated original tuple = reversed reply tuple.
    let xl = c.reply.reversed();
    if !reply_dir {
        if c.nat & SNAT != 0 {
            set_addr(pkt, true, xl.src);
            set_port(pkt, xl.proto, true, xl.sport);
        }
        if c.nat & DNAT != 0 {
            set_addr(pkt, false, xl.dst);
            set_port(pkt, xl.proto, false, xl.dport);
        }
    } else {
        if c.nat & SNAT != 0 {
            set_addr(pkt, false, c.orig.src);
            set_port(pkt, c.orig.proto, false, c.orig.sport);
        }
        if c.nat & DNAT != 0 {
            set_addr(pkt, true, c.orig.dst);
            set_port(pkt, c.orig.proto, true, c.orig.dport);
        }
    }
}
