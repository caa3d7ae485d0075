//! The packet model: frame bytes plus pipeline state, and reading/writing every OXM field.
//!
//! Header fields are read from the frame at the moment of the lookup (so a rewrite is seen
//! by later tables). A field whose header is absent (ipv4_src of an ARP frame, tcp_dst of a
//! UDP datagram, anything of a truncated frame) reads as `None` and never matches, which
//! gives the OpenFlow prerequisites for free. Writing a header field rewrites the frame and
//! recomputes the IPv4 header checksum and the TCP/UDP/ICMP checksums.

use openflow::Field;
use openflow::nx::Subfield;
use openflow::oxm::{OFPVID_PRESENT, low_bits};

/// A packet travelling through the pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packet {
    /// The Ethernet frame.
    pub frame: Vec<u8>,
    /// Ingress port.
    pub in_port: u32,
    /// The metadata register.
    pub metadata: u64,
    /// reg0..reg15 (xregN = reg2N:reg2N+1, xxregN = reg4N..reg4N+3, most significant first).
    pub regs: [u32; 16],
    /// Tunnel id (VNI / key).
    pub tun_id: u64,
    /// Tunnel source IPv4 address.
    pub tun_src: u32,
    /// Tunnel destination IPv4 address.
    pub tun_dst: u32,
    /// Conntrack state bits (`openflow::oxm::ct_state`).
    pub ct_state: u32,
    /// Conntrack zone.
    pub ct_zone: u16,
    /// Conntrack mark.
    pub ct_mark: u32,
    /// Conntrack label.
    pub ct_label: u128,
    /// Packet mark.
    pub pkt_mark: u32,
    /// Original-direction tuple of the packet's connection (ct_nw_* / ct_tp_* fields),
    /// once it has been through conntrack.
    pub ct_orig: Option<crate::conntrack::Tuple>,
}

/// Where the headers of a frame are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub vlan: bool,
    pub eth_type: u16,
    pub l3: usize,
    /// 4 or 6 when a complete IP header is present.
    pub ip: u8,
    pub proto: u8,
    /// Where `proto` is read from (IPv6: the last extension header's next header).
    pub proto_at: usize,
    /// Offset of the L4 header (not for non-first fragments).
    pub l4: Option<usize>,
    /// End of the IP datagram within the frame.
    pub ip_end: usize,
    /// IPv4 fragment (first or later).
    pub frag: bool,
}

pub(crate) fn be(frame: &[u8], off: usize, len: usize) -> Option<u128> {
    let s = frame.get(off..off.checked_add(len)?)?;
    Some(s.iter().fold(0u128, |a, &b| (a << 8) | u128::from(b)))
}

pub(crate) fn put(frame: &mut [u8], off: usize, len: usize, v: u128) -> bool {
    let Some(end) = off.checked_add(len) else {
        return false;
    };
    let Some(s) = frame.get_mut(off..end) else {
        return false;
    };
    for (i, b) in s.iter_mut().enumerate() {
        let shift = 8 * (len - 1 - i);
        *b = (v.checked_shr(shift as u32).unwrap_or(0) & 0xff) as u8;
    }
    true
}

impl Layout {
    pub(crate) fn is_mpls(&self) -> bool {
        matches!(self.eth_type, 0x8847 | 0x8848)
    }

    pub(crate) fn of(frame: &[u8]) -> Option<Layout> {
        let mut eth_type = be(frame, 12, 2)? as u16;
        let mut l3 = 14;
        let mut vlan = false;
        if eth_type == 0x8100 || eth_type == 0x88a8 {
            eth_type = be(frame, 16, 2)? as u16;
            l3 = 18;
            vlan = true;
        }
        let mut lay = Layout {
            vlan,
            eth_type,
            l3,
            ip: 0,
            proto: 0,
            proto_at: 0,
            l4: None,
            ip_end: frame.len(),
            frag: false,
        };
        match eth_type {
            0x0800 => {
                let b0 = be(frame, l3, 1)? as u8;
                let ihl = usize::from(b0 & 0xf) * 4;
                if b0 >> 4 != 4 || ihl < 20 || frame.len() < l3 + ihl {
                    return Some(lay);
                }
                lay.ip = 4;
                lay.proto = be(frame, l3 + 9, 1)? as u8;
                let total = be(frame, l3 + 2, 2)? as usize;
                lay.ip_end = (l3 + total.max(ihl)).min(frame.len());
                let frag = be(frame, l3 + 6, 2)? as u16;
                lay.frag = frag & 0x3fff != 0;
                if frag & 0x1fff == 0 {
                    lay.l4 = Some(l3 + ihl);
                }
            }
            0x86dd => {
                if frame.len() < l3 + 40 || be(frame, l3, 1)? as u8 >> 4 != 6 {
                    return Some(lay);
                }
                lay.ip = 6;
                lay.proto = be(frame, l3 + 6, 1)? as u8;
                let plen = be(frame, l3 + 4, 2)? as usize;
                lay.ip_end = (l3 + 40 + plen).min(frame.len());
                // As OVS (parse_ipv6_ext_hdrs): hop-by-hop, routing and destination
                // options headers are skipped, so ip_proto is the upper layer's (MLD
                // comes after a hop-by-hop router alert).
                let mut at = l3 + 40;
                lay.proto_at = l3 + 6;
                for _ in 0..4 {
                    if !matches!(lay.proto, 0 | 43 | 60) {
                        break;
                    }
                    lay.proto_at = at;
                    lay.proto = be(frame, at, 1)? as u8;
                    at += (be(frame, at + 1, 1)? as usize + 1) * 8;
                }
                lay.l4 = Some(at);
            }
            _ => {}
        }
        Some(lay)
    }

    fn arp(&self, frame: &[u8]) -> Option<usize> {
        let a = self.l3;
        (self.eth_type == 0x0806
            && be(frame, a, 2)? == 1
            && be(frame, a + 2, 2)? == 0x0800
            && be(frame, a + 4, 2)? == 0x0604
            && frame.len() >= a + 28)
            .then_some(a)
    }

    fn l4_of(&self, proto: u8, need: usize, frame: &[u8]) -> Option<usize> {
        let l4 = self.l4?;
        (self.proto == proto && frame.len() >= l4 + need && self.ip != 0).then_some(l4)
    }

    /// Offset of the ND options and the ND type, for NS/NA messages.
    fn nd(&self, frame: &[u8]) -> Option<(usize, u8)> {
        let l4 = self.l4_of(58, 24, frame)?;
        if self.ip != 6 {
            return None;
        }
        let ty = be(frame, l4, 1)? as u8;
        (matches!(ty, 135 | 136) && be(frame, l4 + 1, 1)? == 0).then_some((l4, ty))
    }

    fn nd_option(&self, frame: &[u8], want: u8) -> Option<usize> {
        let (l4, _) = self.nd(frame)?;
        let mut o = l4 + 24;
        while o + 8 <= self.ip_end {
            let ty = be(frame, o, 1)? as u8;
            let len = usize::from(be(frame, o + 1, 1)? as u8) * 8;
            if len == 0 {
                return None;
            }
            if ty == want && len >= 8 {
                return Some(o + 2);
            }
            o += len;
        }
        None
    }
}

/// Where a header field lives in the frame: (offset, byte length, shift, bits).
fn locate(frame: &[u8], f: Field) -> Option<(usize, usize, u32, u32)> {
    use Field::*;
    let l = Layout::of(frame)?;
    let whole = |off: usize, len: usize| Some((off, len, 0u32, (len * 8) as u32));
    let v4 = l.ip == 4;
    let v6 = l.ip == 6;
    match f {
        EthDst => whole(0, 6),
        EthSrc => whole(6, 6),
        VlanPcp if l.vlan => Some((14, 1, 5, 3)),
        // The outer label stack entry: label(20) tc(3) bos(1) ttl(8).
        MplsLabel if l.is_mpls() => Some((l.l3, 4, 12, 20)),
        MplsTc if l.is_mpls() => Some((l.l3, 4, 9, 3)),
        MplsBos if l.is_mpls() => Some((l.l3, 4, 8, 1)),
        // IPv6: the upper layer's, past extension headers (`Layout::proto_at`).
        IpProto if l.ip != 0 => whole(if v4 { l.l3 + 9 } else { l.proto_at }, 1),
        IpTtl if l.ip != 0 => whole(l.l3 + if v4 { 8 } else { 7 }, 1),
        IpDscp if v4 => Some((l.l3 + 1, 1, 2, 6)),
        IpEcn if v4 => Some((l.l3 + 1, 1, 0, 2)),
        IpDscp if v6 => Some((l.l3, 2, 6, 6)),
        IpEcn if v6 => Some((l.l3, 2, 4, 2)),
        Ipv4Src if v4 => whole(l.l3 + 12, 4),
        Ipv4Dst if v4 => whole(l.l3 + 16, 4),
        Ipv6Src if v6 => whole(l.l3 + 8, 16),
        Ipv6Dst if v6 => whole(l.l3 + 24, 16),
        TcpSrc => whole(l.l4_of(6, 20, frame)?, 2),
        TcpDst => whole(l.l4_of(6, 20, frame)? + 2, 2),
        TcpFlags => Some((l.l4_of(6, 20, frame)? + 12, 2, 0, 12)),
        UdpSrc => whole(l.l4_of(17, 8, frame)?, 2),
        UdpDst => whole(l.l4_of(17, 8, frame)? + 2, 2),
        Icmpv4Type if v4 => whole(l.l4_of(1, 4, frame)?, 1),
        Icmpv4Code if v4 => whole(l.l4_of(1, 4, frame)? + 1, 1),
        Icmpv6Type if v6 => whole(l.l4_of(58, 4, frame)?, 1),
        Icmpv6Code if v6 => whole(l.l4_of(58, 4, frame)? + 1, 1),
        NdTarget => whole(l.nd(frame)?.0 + 8, 16),
        NdReserved => whole(l.nd(frame)?.0 + 4, 4),
        // The first option's type byte, as OVS reads it (0 when there is no option).
        NdOptionsType => {
            let at = l.nd(frame)?.0 + 24;
            (at < l.ip_end)
                .then_some((at, 1, 0, 8))
                .or(Some((0, 0, 0, 0)))
        }
        ArpOp => whole(l.arp(frame)? + 6, 2),
        ArpSha => whole(l.arp(frame)? + 8, 6),
        ArpSpa => whole(l.arp(frame)? + 14, 4),
        ArpTha => whole(l.arp(frame)? + 18, 6),
        ArpTpa => whole(l.arp(frame)? + 24, 4),
        _ => None,
    }
}

impl Packet {
    /// A packet arriving on `in_port` with every pipeline field zero.
    pub fn new(in_port: u32, frame: impl Into<Vec<u8>>) -> Packet {
        Packet {
            frame: frame.into(),
            in_port,
            ..Packet::default()
        }
    }

    pub(crate) fn layout(&self) -> Option<Layout> {
        Layout::of(&self.frame)
    }

    /// The value of a field, right-aligned; `None` when the packet does not have it.
    pub fn get(&self, f: Field) -> Option<u128> {
        use Field::*;
        let r = |n: u8| self.regs.get(usize::from(n)).map(|&v| u128::from(v));
        Some(match f {
            InPort | NxmInPort => u128::from(self.in_port),
            Metadata => u128::from(self.metadata),
            Reg(n) => r(n)?,
            XReg(n) => (r(n.checked_mul(2)?)? << 32) | r(n * 2 + 1)?,
            XxReg(n) => {
                let b = n.checked_mul(4)?;
                (r(b)? << 96) | (r(b + 1)? << 64) | (r(b + 2)? << 32) | r(b + 3)?
            }
            TunId => u128::from(self.tun_id),
            TunIpv4Src => u128::from(self.tun_src),
            TunIpv4Dst => u128::from(self.tun_dst),
            TunFlags | RecircId | DpHash => 0,
            CtState => u128::from(self.ct_state),
            CtZone => u128::from(self.ct_zone),
            CtMark => u128::from(self.ct_mark),
            CtLabel => self.ct_label,
            PktMark => u128::from(self.pkt_mark),
            CtNwProto => u128::from(self.ct_orig?.proto),
            CtNwSrc | CtNwDst | CtIpv6Src | CtIpv6Dst => {
                let t = self.ct_orig?;
                let a = if matches!(f, CtNwSrc | CtIpv6Src) {
                    t.src
                } else {
                    t.dst
                };
                match (a, f) {
                    (std::net::IpAddr::V4(a), CtNwSrc | CtNwDst) => u128::from(u32::from(a)),
                    (std::net::IpAddr::V6(a), CtIpv6Src | CtIpv6Dst) => u128::from(a),
                    _ => return None,
                }
            }
            CtTpSrc | CtTpDst => {
                let t = self.ct_orig?;
                if !matches!(t.proto, 6 | 17 | 132) {
                    return None;
                }
                u128::from(if f == CtTpSrc { t.sport } else { t.dport })
            }
            _ => return self.get_header(f),
        })
    }

    fn get_header(&self, f: Field) -> Option<u128> {
        use Field::*;
        let l = self.layout()?;
        match f {
            EthType => return Some(u128::from(l.eth_type)),
            VlanVid => {
                return Some(if l.vlan {
                    (be(&self.frame, 14, 2)? & 0xfff) | u128::from(OFPVID_PRESENT)
                } else {
                    0
                });
            }
            IpFrag if l.ip == 4 => {
                let fr = be(&self.frame, l.l3 + 6, 2)?;
                return Some(match (l.frag, fr & 0x1fff != 0) {
                    (false, _) => 0,
                    (true, false) => 1,
                    (true, true) => 3,
                });
            }
            IpFrag if l.ip == 6 => return Some(0),
            NdSll | NdTll => {
                let (_, ty) = l.nd(&self.frame)?;
                let (want_ty, opt) = if f == NdSll { (135, 1) } else { (136, 2) };
                if ty != want_ty {
                    return None;
                }
                return Some(match l.nd_option(&self.frame, opt) {
                    Some(o) => be(&self.frame, o, 6)?,
                    None => 0,
                });
            }
            _ => {}
        }
        let (off, len, shift, bits) = locate(&self.frame, f)?;
        Some((be(&self.frame, off, len)? >> shift) & low_bits(bits))
    }

    /// Reads bits `ofs..ofs+n_bits` of a field.
    pub fn get_subfield(&self, sf: &Subfield) -> Option<u128> {
        let v = self.get(sf.field)?;
        Some(v.checked_shr(u32::from(sf.ofs)).unwrap_or(0) & low_bits(u32::from(sf.n_bits)))
    }

    /// Writes `value` into bits `ofs..ofs+n_bits` of a field; false if it cannot be written.
    pub fn set_subfield(&mut self, sf: &Subfield, value: u128) -> bool {
        let n = u32::from(sf.n_bits);
        let ofs = u32::from(sf.ofs);
        if n == 0 || ofs + n > u32::from(sf.field.bits()).max(1) {
            return false;
        }
        let mask = low_bits(n).checked_shl(ofs).unwrap_or(0);
        let v = value.checked_shl(ofs).unwrap_or(0);
        self.set_masked(sf.field, v, mask)
    }

    /// Sets the bits of a field selected by `mask` (a whole-field write when `mask` is all
    /// ones); false when the packet has no such field or it is read-only.
    pub fn set_masked(&mut self, f: Field, value: u128, mask: u128) -> bool {
        use Field::*;
        let Some(old) = self.get(f) else {
            return false;
        };
        let new = (old & !mask) | (value & mask);
        let reg = |regs: &mut [u32; 16], n: usize, v: u128| {
            if let Some(r) = regs.get_mut(n) {
                *r = (v & 0xffff_ffff) as u32;
            }
        };
        match f {
            InPort | NxmInPort => self.in_port = new as u32,
            Metadata => self.metadata = new as u64,
            Reg(n) => reg(&mut self.regs, usize::from(n), new),
            XReg(n) => {
                let b = usize::from(n) * 2;
                reg(&mut self.regs, b, new >> 32);
                reg(&mut self.regs, b + 1, new);
            }
            XxReg(n) => {
                let b = usize::from(n) * 4;
                for i in 0..4 {
                    reg(&mut self.regs, b + i, new >> (96 - 32 * i));
                }
            }
            TunId => self.tun_id = new as u64,
            TunIpv4Src => self.tun_src = new as u32,
            TunIpv4Dst => self.tun_dst = new as u32,
            CtState => self.ct_state = new as u32,
            CtZone => self.ct_zone = new as u16,
            CtMark => self.ct_mark = new as u32,
            CtLabel => self.ct_label = new,
            PktMark => self.pkt_mark = new as u32,
            TunFlags | RecircId | DpHash | EthType | IpFrag | CtNwProto | CtNwSrc | CtNwDst
            | CtIpv6Src | CtIpv6Dst | CtTpSrc | CtTpDst => return false,
            VlanVid => {
                if !self.layout().is_some_and(|l| l.vlan) {
                    return false;
                }
                let Some(tci) = be(&self.frame, 14, 2) else {
                    return false;
                };
                let tci = (tci & 0xf000) | (new & 0xfff);
                return put(&mut self.frame, 14, 2, tci);
            }
            NdSll | NdTll => {
                let Some(l) = self.layout() else { return false };
                let opt = if f == NdSll { 1 } else { 2 };
                let Some(o) = l.nd_option(&self.frame, opt) else {
                    return false;
                };
                if !put(&mut self.frame, o, 6, new) {
                    return false;
                }
                self.fix_checksums();
                return true;
            }
            _ => {
                let Some((off, len, shift, bits)) = locate(&self.frame, f) else {
                    return false;
                };
                let Some(cur) = be(&self.frame, off, len) else {
                    return false;
                };
                let fm = low_bits(bits) << shift;
                let v = (cur & !fm) | ((new << shift) & fm);
                if !put(&mut self.frame, off, len, v) {
                    return false;
                }
                self.fix_checksums();
            }
        }
        true
    }

    /// Sets a whole field.
    pub fn set(&mut self, f: Field, value: u128) -> bool {
        self.set_masked(f, value, u128::MAX)
    }

    /// Pushes an 802.1Q tag (copying the outer VID/PCP, if any, as OpenFlow 1.3 does).
    pub(crate) fn push_vlan(&mut self, tpid: u16) {
        if self.frame.len() < 14 {
            return;
        }
        let tci = if Layout::of(&self.frame).is_some_and(|l| l.vlan) {
            be(&self.frame, 14, 2).unwrap_or(0) as u16
        } else {
            0
        };
        let mut tag = Vec::with_capacity(4);
        tag.extend_from_slice(&tpid.to_be_bytes());
        tag.extend_from_slice(&tci.to_be_bytes());
        self.frame.splice(12..12, tag);
    }

    /// Pushes an MPLS label stack entry (label 0, TC 0, the IP TTL or 64) after the L2
    /// header, as OVS's push_mpls does; the frame's ethertype becomes `ethertype`.
    pub(crate) fn push_mpls(&mut self, ethertype: u16) {
        let Some(l) = self.layout() else { return };
        let bos: u32 = if l.is_mpls() { 0 } else { 1 };
        let ttl = u32::try_from(self.get(Field::IpTtl).unwrap_or(64)).unwrap_or(64);
        let lse = (bos << 8) | (ttl & 0xff);
        self.frame.splice(l.l3..l.l3, lse.to_be_bytes());
        put(&mut self.frame, l.l3 - 2, 2, u128::from(ethertype));
    }

    /// Pops the outer MPLS label stack entry; the frame's ethertype becomes `ethertype`.
    pub(crate) fn pop_mpls(&mut self, ethertype: u16) {
        let Some(l) = self.layout().filter(Layout::is_mpls) else {
            return;
        };
        if self.frame.len() < l.l3 + 4 {
            return;
        }
        self.frame.drain(l.l3..l.l3 + 4);
        put(&mut self.frame, l.l3 - 2, 2, u128::from(ethertype));
    }

    pub(crate) fn pop_vlan(&mut self) {
        if Layout::of(&self.frame).is_some_and(|l| l.vlan) && self.frame.len() >= 16 {
            self.frame.drain(12..16);
        }
    }

    /// Decrements the IP TTL / hop limit: false when it has expired (was 0 or 1). Non-IP
    /// packets are left alone.
    pub(crate) fn dec_ttl(&mut self) -> bool {
        let Some(ttl) = self.get(Field::IpTtl) else {
            return true;
        };
        if ttl <= 1 {
            return false;
        }
        self.set(Field::IpTtl, ttl - 1)
    }

    /// Recomputes the IPv4 header checksum and the L4 checksum.
    pub(crate) fn fix_checksums(&mut self) {
        let Some(l) = self.layout() else { return };
        let f = &mut self.frame;
        if l.ip == 4 {
            let ihl = usize::from(f.get(l.l3).copied().unwrap_or(0) & 0xf) * 4;
            put(f, l.l3 + 10, 2, 0);
            let c = f.get(l.l3..l.l3 + ihl).map(|h| !fold(sum(h, 0)));
            if let Some(c) = c {
                put(f, l.l3 + 10, 2, u128::from(c));
            }
        }
        if l.ip == 0 || l.frag {
            return;
        }
        let Some(l4) = l.l4 else { return };
        if l4 > l.ip_end {
            return;
        }
        let ck = match l.proto {
            6 => 16,
            17 => 6,
            1 if l.ip == 4 => 2,
            58 if l.ip == 6 => 2,
            _ => return,
        };
        if l4 + ck + 2 > l.ip_end {
            return;
        }
        if l.proto == 17 && l.ip == 4 && be(f, l4 + 6, 2) == Some(0) {
            return;
        }
        put(f, l4 + ck, 2, 0);
        let seg_len = l.ip_end - l4;
        let mut s = 0u32;
        if l.proto != 1 {
            let (a, n) = if l.ip == 4 { (12, 8) } else { (8, 32) };
            if let Some(addrs) = f.get(l.l3 + a..l.l3 + a + n) {
                s = sum(addrs, s);
            }
            s = s.wrapping_add(u32::from(l.proto));
            s = s
                .wrapping_add((seg_len & 0xffff) as u32)
                .wrapping_add((seg_len >> 16) as u32);
        }
        let Some(seg) = f.get(l4..l.ip_end) else {
            return;
        };
        let mut c = !fold(sum(seg, s));
        if l.proto == 17 && c == 0 {
            c = 0xffff;
        }
        put(f, l4 + ck, 2, u128::from(c));
    }
}

fn sum(data: &[u8], mut s: u32) -> u32 {
    let mut it = data.chunks(2);
    for c in &mut it {
        let w = match c {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        s = fold32(s.wrapping_add(u32::from(w)));
    }
    s
}

fn fold32(s: u32) -> u32 {
    (s & 0xffff) + (s >> 16)
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ipv4_udp(frag: u16) -> Vec<u8> {
        ipv4_udp_ck(frag, 1)
    }

    fn ipv4_udp_ck(frag: u16, ck: u8) -> Vec<u8> {
        let mut p = vec![0x45, 0xb8, 0, 28, 0, 1];
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend_from_slice(&[0x04, 0xd2, 0, 53, 0, 8, 0, ck]);
        let mut pkt = Packet::new(1, eth(0x0800, &p));
        pkt.fix_checksums();
        pkt.frame
    }

    fn ones_sum_ok(data: &[u8]) -> bool {
        fold(sum(data, 0)) == 0xffff
    }

    #[test]
    fn registers_have_xreg_and_xxreg_views() {
        let mut p = Packet::new(1, vec![]);
        assert!(p.set(Field::XReg(0), 0x1122_3344_5566_7788));
        assert_eq!(p.regs[0..2], [0x1122_3344, 0x5566_7788]);
        assert!(p.set(Field::XxReg(1), 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10));
        assert_eq!(
            p.regs[4..8],
            [0x0102_0304, 0x0506_0708, 0x090a_0b0c, 0x0d0e_0f10]
        );
        assert_eq!(p.get(Field::XReg(2)), Some(0x0102_0304_0506_0708));
        assert!(p.set_subfield(&Subfield::new(Field::Reg(9), 8, 8), 0xab));
        assert_eq!(p.regs[9], 0xab00);
        assert_eq!(
            p.get_subfield(&Subfield::new(Field::Reg(9), 12, 4)),
            Some(0xa)
        );
        assert!(!p.set_subfield(&Subfield::new(Field::Reg(9), 30, 8), 1));
        assert_eq!(p.get(Field::Reg(16)), None);
        assert_eq!(p.get(Field::XReg(8)), None);
        // No frame: no header field.
        assert_eq!(p.get(Field::EthType), None);
    }

    #[test]
    fn fields_follow_prerequisites() {
        let p = Packet::new(1, ipv4_udp(0));
        assert_eq!(p.get(Field::EthType), Some(0x0800));
        assert_eq!(p.get(Field::VlanVid), Some(0));
        assert_eq!(p.get(Field::IpProto), Some(17));
        assert_eq!(p.get(Field::IpDscp), Some(0x2e));
        assert_eq!(p.get(Field::Ipv4Dst), Some(0x0a00_0002));
        assert_eq!(p.get(Field::UdpSrc), Some(1234));
        assert_eq!(p.get(Field::UdpDst), Some(53));
        assert_eq!(p.get(Field::TcpDst), None);
        assert_eq!(p.get(Field::Ipv6Src), None);
        assert_eq!(p.get(Field::ArpSpa), None);
        assert_eq!(p.get(Field::IpFrag), Some(0));
        // A later fragment has no L4 fields.
        let p = Packet::new(1, ipv4_udp(0x0010));
        assert_eq!(p.get(Field::UdpDst), None);
        assert_eq!(p.get(Field::IpFrag), Some(3));
        // Truncated frames have nothing past what is there.
        let p = Packet::new(1, ipv4_udp(0)[..30].to_vec());
        assert_eq!(p.get(Field::EthType), Some(0x0800));
        assert_eq!(p.get(Field::Ipv4Src), None);
        let p = Packet::new(1, vec![0; 13]);
        assert_eq!(p.get(Field::EthDst), None);
    }

    #[test]
    fn vlan_tagged_frames() {
        let inner = ipv4_udp(0);
        let mut p = Packet::new(1, inner.clone());
        p.push_vlan(0x8100);
        assert!(p.set(Field::VlanVid, 0x1005));
        assert!(p.set(Field::VlanPcp, 3));
        assert_eq!(p.get(Field::VlanVid), Some(0x1005));
        assert_eq!(p.get(Field::VlanPcp), Some(3));
        assert_eq!(p.get(Field::EthType), Some(0x0800));
        assert_eq!(p.get(Field::UdpDst), Some(53));
        assert_eq!(&p.frame[12..16], &[0x81, 0, 0x60, 0x05]);
        p.pop_vlan();
        assert_eq!(p.frame, inner);
        // vlan fields of an untagged frame cannot be set.
        assert!(!p.set(Field::VlanVid, 0x1005));
        assert_eq!(p.get(Field::VlanPcp), None);
    }

    #[test]
    fn header_writes_fix_checksums() {
        let mut p = Packet::new(1, ipv4_udp(0));
        assert!(ones_sum_ok(&p.frame[14..34]));
        assert!(p.set(Field::Ipv4Dst, 0xc0a8_0001));
        assert!(p.set(Field::UdpSrc, 999));
        assert!(p.set_masked(Field::IpDscp, 0, 0x3f));
        assert_eq!(p.get(Field::IpDscp), Some(0));
        assert!(ones_sum_ok(&p.frame[14..34]));
        // UDP: pseudo-header + segment sums to 0xffff.
        let mut s = sum(&p.frame[26..34], 0);
        s = s.wrapping_add(17 + 8);
        assert_eq!(fold(sum(&p.frame[34..42], s)), 0xffff);
        assert!(p.dec_ttl());
        assert_eq!(p.get(Field::IpTtl), Some(63));
        assert!(ones_sum_ok(&p.frame[14..34]));
        assert!(!p.set(Field::EthType, 0x86dd));
        // A zero UDP checksum over IPv4 means "none" and stays zero.
        let mut p = Packet::new(1, ipv4_udp_ck(0, 0));
        assert!(p.set(Field::UdpDst, 54));
        assert_eq!(&p.frame[40..42], &[0, 0]);
    }

    #[test]
    fn ipv6_neighbour_solicitation() {
        let target: u128 = 0xfe80_0000_0000_0000_0000_0000_0000_0001;
        let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&target.to_be_bytes());
        icmp.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 7]);
        let mut ip = vec![0x60, 0, 0, 0, 0, icmp.len() as u8, 58, 255];
        ip.extend_from_slice(&0xfe80_0000_0000_0000_0000_0000_0000_0002u128.to_be_bytes());
        ip.extend_from_slice(&0xff02_0000_0000_0000_0000_0001_ff00_0001u128.to_be_bytes());
        ip.extend_from_slice(&icmp);
        let mut p = Packet::new(1, eth(0x86dd, &ip));
        assert_eq!(p.get(Field::IpProto), Some(58));
        assert_eq!(p.get(Field::Icmpv6Type), Some(135));
        assert_eq!(p.get(Field::NdTarget), Some(target));
        assert_eq!(p.get(Field::NdSll), Some(0x0200_0000_0007));
        assert_eq!(p.get(Field::NdTll), None);
        assert_eq!(p.get(Field::Icmpv4Type), None);
        assert!(p.set(Field::NdSll, 0x0200_0000_0008));
        assert_eq!(p.get(Field::NdSll), Some(0x0200_0000_0008));
        assert!(p.set(Field::Ipv6Src, 1));
        assert_eq!(p.get(Field::Ipv6Src), Some(1));
        assert_eq!(p.get(Field::IpTtl), Some(255));
        // Into an advertisement, as the ND responder's flows do it: flags, option type,
        // message type; then the target link-layer address is the TLL option's.
        assert_eq!(p.get(Field::NdReserved), Some(0));
        assert_eq!(p.get(Field::NdOptionsType), Some(1));
        assert!(p.set(Field::NdReserved, 0x6000_0000));
        assert!(p.set(Field::NdOptionsType, 2));
        assert!(p.set(Field::Icmpv6Type, 136));
        assert_eq!(p.get(Field::NdSll), None);
        assert_eq!(p.get(Field::NdTll), Some(0x0200_0000_0008));
        assert!(p.set(Field::NdTll, 0x0200_0000_0009));
        let l4 = 14 + 40;
        assert_eq!(&p.frame[l4 + 4..l4 + 8], &[0x60, 0, 0, 0]);
        assert_eq!(&p.frame[l4 + 24..l4 + 32], &[2, 1, 2, 0, 0, 0, 0, 9]);
    }

    #[test]
    fn arp_fields() {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1];
        a.extend_from_slice(&[0; 6]);
        a.extend_from_slice(&[10, 0, 0, 2]);
        let mut p = Packet::new(1, eth(0x0806, &a));
        assert_eq!(p.get(Field::ArpOp), Some(1));
        assert_eq!(p.get(Field::ArpSha), Some(0x0200_0000_0001));
        assert_eq!(p.get(Field::ArpSpa), Some(0x0a00_0001));
        assert_eq!(p.get(Field::ArpTpa), Some(0x0a00_0002));
        assert_eq!(p.get(Field::Ipv4Src), None);
        assert!(p.set(Field::ArpOp, 2));
        assert_eq!(p.frame[21], 2);
    }
}
