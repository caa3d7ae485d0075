//! Match fields (OXM/NXM TLVs), the `ofp_match` structure and OXM prerequisites.
//!
//! One [`Field`] names a packet or pipeline field, whatever header carries it. OVS accepts
//! NXM headers (classes 0x0000/0x0001) inside OpenFlow 1.3 OXM matches, so a field is encoded
//! with the header OVS itself uses for OpenFlow 1.3 (OXM when the field has one, NXM
//! otherwise), and decoding accepts both spellings. Values are kept right-aligned in a `u128`
//! (no field used here is wider than 128 bits).

use crate::buf::{Reader, put_u16, put_u32, put_zeros};
use crate::error::{Error, Result};

/// OXM class of the OpenFlow basic fields.
pub const OXM_CLASS_BASIC: u16 = 0x8000;
/// OXM class of OVS's 64-bit packet registers (xregs).
pub const OXM_CLASS_PKT_REG: u16 = 0x8001;
/// NXM class of the old OpenFlow 1.0 fields.
pub const NXM_CLASS_OF: u16 = 0x0000;
/// NXM class of Nicira fields (registers, conntrack, tunnel metadata).
pub const NXM_CLASS_NX: u16 = 0x0001;
/// OXM experimenter class (followed by a 32-bit experimenter id).
pub const OXM_CLASS_EXPERIMENTER: u16 = 0xffff;
/// Ericsson's OXM class, which OVS 2.11+ uses for the ND reserved and option-type fields.
pub const ERICOXM_CLASS_OF: u16 = 0x1000;

/// `vlan_vid` bit meaning "a VLAN tag is present".
pub const OFPVID_PRESENT: u16 = 0x1000;

/// ct_state bits (NXM_NX_CT_STATE).
pub mod ct_state {
    /// New connection.
    pub const NEW: u32 = 0x01;
    /// Established connection.
    pub const EST: u32 = 0x02;
    /// Related to an established connection.
    pub const REL: u32 = 0x04;
    /// Reply direction.
    pub const RPL: u32 = 0x08;
    /// Invalid.
    pub const INV: u32 = 0x10;
    /// Tracked (went through ct()).
    pub const TRK: u32 = 0x20;
    /// Source NAT applied.
    pub const SNAT: u32 = 0x40;
    /// Destination NAT applied.
    pub const DNAT: u32 = 0x80;
}

/// A match or pipeline field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// OpenFlow ingress port (32 bits, OXM).
    InPort,
    /// The 16-bit NXM_OF_IN_PORT (used in learn specs and register moves).
    NxmInPort,
    /// Pipeline metadata (64 bits).
    Metadata,
    /// Ethernet destination.
    EthDst,
    /// Ethernet source.
    EthSrc,
    /// Ethernet type.
    EthType,
    /// VLAN id with [`OFPVID_PRESENT`] (13 bits).
    VlanVid,
    /// VLAN priority (3 bits).
    VlanPcp,
    /// IP DSCP (6 bits, the upper bits of ToS).
    IpDscp,
    /// IP ECN (2 bits).
    IpEcn,
    /// IP protocol.
    IpProto,
    /// IPv4 source.
    Ipv4Src,
    /// IPv4 destination.
    Ipv4Dst,
    /// TCP source port.
    TcpSrc,
    /// TCP destination port.
    TcpDst,
    /// UDP source port.
    UdpSrc,
    /// UDP destination port.
    UdpDst,
    /// ICMPv4 type.
    Icmpv4Type,
    /// ICMPv4 code.
    Icmpv4Code,
    /// ARP opcode.
    ArpOp,
    /// ARP sender protocol address.
    ArpSpa,
    /// ARP target protocol address.
    ArpTpa,
    /// ARP sender hardware address.
    ArpSha,
    /// ARP target hardware address.
    ArpTha,
    /// IPv6 source.
    Ipv6Src,
    /// IPv6 destination.
    Ipv6Dst,
    /// ICMPv6 type.
    Icmpv6Type,
    /// ICMPv6 code.
    Icmpv6Code,
    /// Neighbour discovery target.
    NdTarget,
    /// ND source link-layer address.
    NdSll,
    /// ND target link-layer address.
    NdTll,
    /// The 32 bits after an ND message's checksum (an NA's R/S/O flags), OVS 2.11+.
    NdReserved,
    /// The type of an ND message's first option (1: SLL, 2: TLL), OVS 2.11+.
    NdOptionsType,
    /// MPLS label (20 bits), OXM_OF_MPLS_LABEL.
    MplsLabel,
    /// MPLS traffic class (3 bits), OXM_OF_MPLS_TC.
    MplsTc,
    /// MPLS bottom of stack (1 bit), OXM_OF_MPLS_BOS.
    MplsBos,
    /// Tunnel id (VNI / key), OXM_OF_TUNNEL_ID.
    TunId,
    /// 32-bit register `reg0`..`reg15`.
    Reg(u8),
    /// 64-bit register `xreg0`..`xreg7` (pairs of regs).
    XReg(u8),
    /// 128-bit register `xxreg0`..`xxreg3`.
    XxReg(u8),
    /// Tunnel outer IPv4 source.
    TunIpv4Src,
    /// Tunnel outer IPv4 destination.
    TunIpv4Dst,
    /// Tunnel flags (bit 0: OAM).
    TunFlags,
    /// Conntrack state ([`ct_state`] bits).
    CtState,
    /// Conntrack zone.
    CtZone,
    /// Conntrack mark.
    CtMark,
    /// Conntrack label (128 bits).
    CtLabel,
    /// Conntrack original-direction protocol.
    CtNwProto,
    /// Conntrack original-direction IPv4 source.
    CtNwSrc,
    /// Conntrack original-direction IPv4 destination.
    CtNwDst,
    /// Conntrack original-direction IPv6 source.
    CtIpv6Src,
    /// Conntrack original-direction IPv6 destination.
    CtIpv6Dst,
    /// Conntrack original-direction transport source port.
    CtTpSrc,
    /// Conntrack original-direction transport destination port.
    CtTpDst,
    /// Packet mark (skb mark).
    PktMark,
    /// IP TTL / hop limit.
    IpTtl,
    /// IP fragment bits.
    IpFrag,
    /// TCP flags (12 bits).
    TcpFlags,
    /// Recirculation id (read-only, seen in packet-ins).
    RecircId,
    /// Datapath hash (read-only).
    DpHash,
    /// Conjunction id (match only).
    ConjId,
    /// A field this crate does not name: its header, kept so decoding never fails on it.
    Unknown {
        /// OXM/NXM class.
        class: u16,
        /// Field number (7 bits).
        field: u8,
        /// Experimenter id when `class` is 0xffff, else 0.
        experimenter: u32,
        /// Value length in bytes.
        len: u8,
    },
}

use Field::*;

impl Field {
    /// (class, field number, value length in bytes) of the header OVS uses in OpenFlow 1.3.
    pub fn header(&self) -> (u16, u8, u8) {
        let b = OXM_CLASS_BASIC;
        let nx = NXM_CLASS_NX;
        match *self {
            InPort => (b, 0, 4),
            NxmInPort => (NXM_CLASS_OF, 0, 2),
            Metadata => (b, 2, 8),
            EthDst => (b, 3, 6),
            EthSrc => (b, 4, 6),
            EthType => (b, 5, 2),
            VlanVid => (b, 6, 2),
            VlanPcp => (b, 7, 1),
            IpDscp => (b, 8, 1),
            IpEcn => (b, 9, 1),
            IpProto => (b, 10, 1),
            Ipv4Src => (b, 11, 4),
            Ipv4Dst => (b, 12, 4),
            TcpSrc => (b, 13, 2),
            TcpDst => (b, 14, 2),
            UdpSrc => (b, 15, 2),
            UdpDst => (b, 16, 2),
            Icmpv4Type => (b, 19, 1),
            Icmpv4Code => (b, 20, 1),
            ArpOp => (b, 21, 2),
            ArpSpa => (b, 22, 4),
            ArpTpa => (b, 23, 4),
            ArpSha => (b, 24, 6),
            ArpTha => (b, 25, 6),
            Ipv6Src => (b, 26, 16),
            Ipv6Dst => (b, 27, 16),
            Icmpv6Type => (b, 29, 1),
            Icmpv6Code => (b, 30, 1),
            NdTarget => (b, 31, 16),
            NdSll => (b, 32, 6),
            NdTll => (b, 33, 6),
            NdReserved => (ERICOXM_CLASS_OF, 1, 4),
            NdOptionsType => (ERICOXM_CLASS_OF, 2, 1),
            MplsLabel => (b, 34, 4),
            MplsTc => (b, 35, 1),
            MplsBos => (b, 36, 1),
            TunId => (b, 38, 8),
            Reg(n) => (nx, n, 4),
            XReg(n) => (OXM_CLASS_PKT_REG, n, 8),
            XxReg(n) => (nx, 111u8.wrapping_add(n), 16),
            TunIpv4Src => (nx, 31, 4),
            TunIpv4Dst => (nx, 32, 4),
            PktMark => (nx, 33, 4),
            TcpFlags => (nx, 34, 2),
            DpHash => (nx, 35, 4),
            RecircId => (nx, 36, 4),
            ConjId => (nx, 37, 4),
            IpFrag => (nx, 26, 1),
            IpTtl => (nx, 29, 1),
            TunFlags => (nx, 104, 2),
            CtState => (nx, 105, 4),
            CtZone => (nx, 106, 2),
            CtMark => (nx, 107, 4),
            CtLabel => (nx, 108, 16),
            CtNwProto => (nx, 119, 1),
            CtNwSrc => (nx, 120, 4),
            CtNwDst => (nx, 121, 4),
            CtIpv6Src => (nx, 122, 16),
            CtIpv6Dst => (nx, 123, 16),
            CtTpSrc => (nx, 124, 2),
            CtTpDst => (nx, 125, 2),
            Unknown {
                class, field, len, ..
            } => (class, field, len),
        }
    }

    /// Experimenter id carried after the header (only for class 0xffff).
    pub fn experimenter(&self) -> Option<u32> {
        match *self {
            Unknown {
                class: OXM_CLASS_EXPERIMENTER,
                experimenter,
                ..
            } => Some(experimenter),
            _ => None,
        }
    }

    /// Value length in bytes.
    pub fn byte_len(&self) -> u8 {
        self.header().2
    }

    /// Width of the field in bits (e.g. 12+1 for vlan_vid, 6 for ip_dscp).
    pub fn bits(&self) -> u16 {
        match self {
            VlanVid => 13,
            VlanPcp => 3,
            MplsLabel => 20,
            MplsTc => 3,
            MplsBos => 1,
            IpDscp => 6,
            IpEcn => 2,
            IpFrag => 2,
            TunFlags => 1,
            TcpFlags => 12,
            _ => u16::from(self.byte_len()) * 8,
        }
    }

    /// Whether OVS accepts a mask on this field.
    pub fn maskable(&self) -> bool {
        !matches!(
            self,
            InPort
                | NxmInPort
                | VlanPcp
                | MplsLabel
                | MplsTc
                | MplsBos
                | IpDscp
                | IpEcn
                | IpProto
                | Icmpv4Type
                | Icmpv4Code
                | Icmpv6Type
                | Icmpv6Code
                | NdReserved
                | NdOptionsType
                | ArpOp
                | EthType
                | CtZone
                | CtNwProto
                | IpTtl
                | RecircId
        )
    }

    /// Maps a wire header (class, field number, experimenter) to a field; `len` is the value
    /// length (without mask). Unknown headers map to [`Field::Unknown`].
    pub fn from_header(class: u16, field: u8, experimenter: u32, len: u8) -> Field {
        let f = match (class, field) {
            (OXM_CLASS_BASIC, n) => match n {
                0 => Some(InPort),
                2 => Some(Metadata),
                3 => Some(EthDst),
                4 => Some(EthSrc),
                5 => Some(EthType),
                6 => Some(VlanVid),
                7 => Some(VlanPcp),
                8 => Some(IpDscp),
                9 => Some(IpEcn),
                10 => Some(IpProto),
                11 => Some(Ipv4Src),
                12 => Some(Ipv4Dst),
                13 => Some(TcpSrc),
                14 => Some(TcpDst),
                15 => Some(UdpSrc),
                16 => Some(UdpDst),
                19 => Some(Icmpv4Type),
                20 => Some(Icmpv4Code),
                21 => Some(ArpOp),
                22 => Some(ArpSpa),
                23 => Some(ArpTpa),
                24 => Some(ArpSha),
                25 => Some(ArpTha),
                26 => Some(Ipv6Src),
                27 => Some(Ipv6Dst),
                29 => Some(Icmpv6Type),
                30 => Some(Icmpv6Code),
                31 => Some(NdTarget),
                32 => Some(NdSll),
                33 => Some(NdTll),
                34 => Some(MplsLabel),
                35 => Some(MplsTc),
                36 => Some(MplsBos),
                38 => Some(TunId),
                _ => None,
            },
            (OXM_CLASS_PKT_REG, n) if n < 8 => Some(XReg(n)),
            (ERICOXM_CLASS_OF, 1) => Some(NdReserved),
            (ERICOXM_CLASS_OF, 2) => Some(NdOptionsType),
            // Old NXM_OF_* spellings of basic fields.
            (NXM_CLASS_OF, n) => match n {
                0 => Some(NxmInPort),
                1 => Some(EthDst),
                2 => Some(EthSrc),
                3 => Some(EthType),
                6 => Some(IpProto),
                7 => Some(Ipv4Src),
                8 => Some(Ipv4Dst),
                9 => Some(TcpSrc),
                10 => Some(TcpDst),
                11 => Some(UdpSrc),
                12 => Some(UdpDst),
                13 => Some(Icmpv4Type),
                14 => Some(Icmpv4Code),
                15 => Some(ArpOp),
                16 => Some(ArpSpa),
                17 => Some(ArpTpa),
                _ => None,
            },
            (NXM_CLASS_NX, n) => match n {
                0..=15 => Some(Reg(n)),
                16 => Some(TunId),
                17 => Some(ArpSha),
                18 => Some(ArpTha),
                19 => Some(Ipv6Src),
                20 => Some(Ipv6Dst),
                21 => Some(Icmpv6Type),
                22 => Some(Icmpv6Code),
                23 => Some(NdTarget),
                24 => Some(NdSll),
                25 => Some(NdTll),
                26 => Some(IpFrag),
                29 => Some(IpTtl),
                31 => Some(TunIpv4Src),
                32 => Some(TunIpv4Dst),
                33 => Some(PktMark),
                34 => Some(TcpFlags),
                35 => Some(DpHash),
                36 => Some(RecircId),
                37 => Some(ConjId),
                104 => Some(TunFlags),
                105 => Some(CtState),
                106 => Some(CtZone),
                107 => Some(CtMark),
                108 => Some(CtLabel),
                111..=114 => Some(XxReg(n - 111)),
                119 => Some(CtNwProto),
                120 => Some(CtNwSrc),
                121 => Some(CtNwDst),
                122 => Some(CtIpv6Src),
                123 => Some(CtIpv6Dst),
                124 => Some(CtTpSrc),
                125 => Some(CtTpDst),
                _ => None,
            },
            _ => None,
        };
        match f {
            // A known header with an unexpected length is kept raw rather than misread.
            Some(f) if f.byte_len() == len => f,
            _ => Unknown {
                class,
                field,
                experimenter: if class == OXM_CLASS_EXPERIMENTER {
                    experimenter
                } else {
                    0
                },
                len,
            },
        }
    }

    /// Writes the bare 4- (or 8-) byte header, as used by NXM actions (no mask).
    pub fn put_header(&self, out: &mut Vec<u8>) {
        self.put_header_with(out, false);
    }

    fn put_header_with(&self, out: &mut Vec<u8>, masked: bool) {
        let (class, field, len) = self.header();
        let exp = self.experimenter();
        let mut l = u32::from(len) * if masked { 2 } else { 1 };
        if exp.is_some() {
            l += 4;
        }
        let h = (u32::from(class) << 16)
            | (u32::from(field & 0x7f) << 9)
            | (u32::from(masked) << 8)
            | (l & 0xff);
        put_u32(out, h);
        if let Some(e) = exp {
            put_u32(out, e);
        }
    }

    /// Reads a bare header (as in NXM actions); returns the field and whether it had the
    /// has-mask bit.
    pub fn read_header(r: &mut Reader<'_>) -> Result<(Field, bool)> {
        let h = r.u32()?;
        let class = (h >> 16) as u16;
        let field = ((h >> 9) & 0x7f) as u8;
        let masked = h & 0x100 != 0;
        let mut len = (h & 0xff) as u8;
        let mut exp = 0;
        if class == OXM_CLASS_EXPERIMENTER {
            exp = r.u32()?;
            len = len
                .checked_sub(4)
                .ok_or(Error::BadLength("OXM experimenter header"))?;
        }
        if masked {
            if !len.is_multiple_of(2) {
                return Err(Error::BadLength("masked OXM field"));
            }
            len /= 2;
        }
        Ok((Field::from_header(class, field, exp, len), masked))
    }

    /// Size of the bare header on the wire.
    pub fn header_len(&self) -> usize {
        if self.experimenter().is_some() { 8 } else { 4 }
    }

    /// A value with every bit of the field set (used as an exact mask).
    pub fn full_mask(&self) -> u128 {
        ones(u32::from(self.byte_len()) * 8)
    }
}

/// OVS's names of the named fields (see `ovs-fields(7)`).
const NAMES: &[(Field, &str)] = &[
    (InPort, "in_port"),
    (NxmInPort, "in_port_nxm"),
    (Metadata, "metadata"),
    (EthDst, "eth_dst"),
    (EthSrc, "eth_src"),
    (EthType, "eth_type"),
    (VlanVid, "vlan_vid"),
    (VlanPcp, "vlan_pcp"),
    (MplsLabel, "mpls_label"),
    (MplsTc, "mpls_tc"),
    (MplsBos, "mpls_bos"),
    (IpDscp, "ip_dscp"),
    (IpEcn, "nw_ecn"),
    (IpProto, "nw_proto"),
    (Ipv4Src, "ip_src"),
    (Ipv4Dst, "ip_dst"),
    (TcpSrc, "tcp_src"),
    (TcpDst, "tcp_dst"),
    (UdpSrc, "udp_src"),
    (UdpDst, "udp_dst"),
    (Icmpv4Type, "icmp_type"),
    (Icmpv4Code, "icmp_code"),
    (ArpOp, "arp_op"),
    (ArpSpa, "arp_spa"),
    (ArpTpa, "arp_tpa"),
    (ArpSha, "arp_sha"),
    (ArpTha, "arp_tha"),
    (Ipv6Src, "ipv6_src"),
    (Ipv6Dst, "ipv6_dst"),
    (Icmpv6Type, "icmpv6_type"),
    (Icmpv6Code, "icmpv6_code"),
    (NdTarget, "nd_target"),
    (NdSll, "nd_sll"),
    (NdTll, "nd_tll"),
    (NdReserved, "nd_reserved"),
    (NdOptionsType, "nd_options_type"),
    (TunId, "tun_id"),
    (TunIpv4Src, "tun_src"),
    (TunIpv4Dst, "tun_dst"),
    (TunFlags, "tun_flags"),
    (CtState, "ct_state"),
    (CtZone, "ct_zone"),
    (CtMark, "ct_mark"),
    (CtLabel, "ct_label"),
    (CtNwProto, "ct_nw_proto"),
    (CtNwSrc, "ct_nw_src"),
    (CtNwDst, "ct_nw_dst"),
    (CtIpv6Src, "ct_ipv6_src"),
    (CtIpv6Dst, "ct_ipv6_dst"),
    (CtTpSrc, "ct_tp_src"),
    (CtTpDst, "ct_tp_dst"),
    (PktMark, "pkt_mark"),
    (IpTtl, "nw_ttl"),
    (IpFrag, "ip_frag"),
    (TcpFlags, "tcp_flags"),
    (RecircId, "recirc_id"),
    (DpHash, "dp_hash"),
    (ConjId, "conj_id"),
];

impl Field {
    /// The field's OVS name (`reg6`, `tun_id`, `ct_state`, ...); unknown fields are shown
    /// by their header.
    pub fn name(&self) -> String {
        match *self {
            Reg(n) => format!("reg{n}"),
            XReg(n) => format!("xreg{n}"),
            XxReg(n) => format!("xxreg{n}"),
            Unknown {
                class,
                field,
                experimenter,
                len,
            } => {
                format!("oxm(0x{class:04x},{field},exp=0x{experimenter:x},len={len})")
            }
            f => NAMES
                .iter()
                .find(|(k, _)| *k == f)
                .map_or_else(String::new, |(_, n)| (*n).to_string()),
        }
    }

    /// The field with this OVS name, if this crate knows it.
    pub fn from_name(name: &str) -> Option<Field> {
        let indexed = |prefix: &str, max: u8, mk: fn(u8) -> Field| {
            name.strip_prefix(prefix)
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| *n < max)
                .map(mk)
        };
        indexed("xxreg", 4, XxReg)
            .or_else(|| indexed("xreg", 8, XReg))
            .or_else(|| indexed("reg", 16, Reg))
            .or_else(|| NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f))
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// `name=0xvalue` or `name=0xvalue/0xmask`.
impl std::fmt::Display for OxmField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=0x{:x}", self.field, self.value)?;
        if let Some(m) = self.mask {
            write!(f, "/0x{m:x}")?;
        }
        Ok(())
    }
}

/// A value with the `n` low bits set (a mask for an `n`-bit field or subfield).
pub fn low_bits(n: u32) -> u128 {
    ones(n)
}

/// `n` low bits set.
pub(crate) fn ones(n: u32) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// Writes the low `len` bytes of `v`, big-endian.
pub(crate) fn put_value(out: &mut Vec<u8>, v: u128, len: u8) {
    let b = v.to_be_bytes();
    let n = usize::from(len).min(16);
    out.extend_from_slice(b.get(16 - n..).unwrap_or(&[]));
    if usize::from(len) > 16 {
        put_zeros(out, usize::from(len) - 16);
    }
}

/// Reads `len` (≤ 16) big-endian bytes into a right-aligned value.
pub(crate) fn read_value(r: &mut Reader<'_>, len: usize) -> Result<u128> {
    if len > 16 {
        return Err(Error::Unsupported("field wider than 128 bits"));
    }
    Ok(r.take(len)?
        .iter()
        .fold(0u128, |a, &b| (a << 8) | u128::from(b)))
}

/// One match entry (or set-field value): a field, its value and an optional mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OxmField {
    /// Which field.
    pub field: Field,
    /// Value, right-aligned.
    pub value: u128,
    /// Bitwise mask (1 = bit must match), if any.
    pub mask: Option<u128>,
}

impl OxmField {
    /// An exact match / value.
    pub fn new(field: Field, value: impl Into<u128>) -> Self {
        OxmField {
            field,
            value: value.into(),
            mask: None,
        }
    }

    /// A masked match.
    pub fn masked(field: Field, value: impl Into<u128>, mask: impl Into<u128>) -> Self {
        OxmField {
            field,
            value: value.into(),
            mask: Some(mask.into()),
        }
    }

    /// Encoded size in bytes.
    pub fn wire_len(&self) -> usize {
        let l = usize::from(self.field.byte_len());
        self.field.header_len() + if self.mask.is_some() { 2 * l } else { l }
    }

    /// Appends the TLV.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.field.put_header_with(out, self.mask.is_some());
        let len = self.field.byte_len();
        put_value(out, self.value, len);
        if let Some(m) = self.mask {
            put_value(out, m, len);
        }
    }

    /// Reads one TLV.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let (field, masked) = Field::read_header(r)?;
        let len = usize::from(field.byte_len());
        let value = read_value(r, len)?;
        let mask = if masked {
            Some(read_value(r, len)?)
        } else {
            None
        };
        Ok(OxmField { field, value, mask })
    }
}

/// Reads OXM TLVs until `buf` is exhausted.
pub fn decode_oxms(buf: &[u8]) -> Result<Vec<OxmField>> {
    let mut r = Reader::new(buf, "OXM field");
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(OxmField::decode(&mut r)?);
    }
    Ok(v)
}

/// An OpenFlow 1.3 match (`ofp_match` of type OXM): an ordered list of fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Match {
    /// The entries, in wire order.
    pub fields: Vec<OxmField>,
}

macro_rules! exact_setters {
    ($($(#[$m:meta])* $name:ident: $field:expr, $ty:ty;)*) => {
        $( $(#[$m])* pub fn $name(mut self, v: $ty) -> Self {
            self.fields.push(OxmField::new($field, u128::from(v)));
            self
        } )*
    };
}

impl Match {
    /// The empty match (matches everything).
    pub fn new() -> Self {
        Match::default()
    }

    /// Adds an entry.
    pub fn with(mut self, f: OxmField) -> Self {
        self.fields.push(f);
        self
    }

    /// Adds a masked entry.
    pub fn masked(mut self, field: Field, value: impl Into<u128>, mask: impl Into<u128>) -> Self {
        self.fields.push(OxmField::masked(field, value, mask));
        self
    }

    exact_setters! {
        /// in_port.
        in_port: InPort, u32;
        /// metadata.
        metadata: Metadata, u64;
        /// eth_type.
        eth_type: EthType, u16;
        /// ip_proto.
        ip_proto: IpProto, u8;
        /// tcp_dst.
        tcp_dst: TcpDst, u16;
        /// udp_dst.
        udp_dst: UdpDst, u16;
        /// udp_src.
        udp_src: UdpSrc, u16;
        /// arp_op.
        arp_op: ArpOp, u16;
        /// tun_id.
        tun_id: TunId, u64;
        /// ct_zone.
        ct_zone: CtZone, u16;
        /// icmpv6_type.
        icmpv6_type: Icmpv6Type, u8;
        /// tcp_src.
        tcp_src: TcpSrc, u16;
        /// icmp_type (ICMPv4).
        icmp_type: Icmpv4Type, u8;
        /// icmp_code (ICMPv4).
        icmp_code: Icmpv4Code, u8;
        /// vlan_vid (include [`OFPVID_PRESENT`] to match tagged frames).
        vlan_vid: VlanVid, u16;
        /// mpls_label (needs eth_type 0x8847).
        mpls_label: MplsLabel, u32;
        /// mpls_tc (needs eth_type 0x8847).
        mpls_tc: MplsTc, u8;
        /// conj_id.
        conj_id: ConjId, u32;
        /// ct_mark (exact).
        ct_mark: CtMark, u32;
        /// pkt_mark (exact).
        pkt_mark: PktMark, u32;
    }

    /// ipv6_src.
    pub fn ipv6_src(self, a: std::net::Ipv6Addr) -> Self {
        self.with(OxmField::new(Ipv6Src, u128::from(a)))
    }

    /// ipv6_dst.
    pub fn ipv6_dst(self, a: std::net::Ipv6Addr) -> Self {
        self.with(OxmField::new(Ipv6Dst, u128::from(a)))
    }

    /// nd_target.
    pub fn nd_target(self, a: std::net::Ipv6Addr) -> Self {
        self.with(OxmField::new(NdTarget, u128::from(a)))
    }

    /// arp_spa.
    pub fn arp_spa(self, a: std::net::Ipv4Addr) -> Self {
        self.with(OxmField::new(ArpSpa, u32::from(a)))
    }

    /// arp_tpa.
    pub fn arp_tpa(self, a: std::net::Ipv4Addr) -> Self {
        self.with(OxmField::new(ArpTpa, u32::from(a)))
    }

    /// arp_sha.
    pub fn arp_sha(self, mac: [u8; 6]) -> Self {
        self.with(OxmField::new(ArpSha, mac_u128(mac)))
    }

    /// ipv4_src under a prefix length (e.g. a subnet).
    pub fn ipv4_src_prefix(self, a: std::net::Ipv4Addr, prefix: u8) -> Self {
        self.masked(Ipv4Src, u32::from(a), prefix_mask(prefix, 32))
    }

    /// ipv4_dst under a prefix length.
    pub fn ipv4_dst_prefix(self, a: std::net::Ipv4Addr, prefix: u8) -> Self {
        self.masked(Ipv4Dst, u32::from(a), prefix_mask(prefix, 32))
    }

    /// ipv6_src under a prefix length.
    pub fn ipv6_src_prefix(self, a: std::net::Ipv6Addr, prefix: u8) -> Self {
        self.masked(Ipv6Src, u128::from(a), prefix_mask(prefix, 128))
    }

    /// ipv6_dst under a prefix length.
    pub fn ipv6_dst_prefix(self, a: std::net::Ipv6Addr, prefix: u8) -> Self {
        self.masked(Ipv6Dst, u128::from(a), prefix_mask(prefix, 128))
    }

    /// eth_dst.
    pub fn eth_dst(self, mac: [u8; 6]) -> Self {
        self.with(OxmField::new(EthDst, mac_u128(mac)))
    }

    /// eth_src.
    pub fn eth_src(self, mac: [u8; 6]) -> Self {
        self.with(OxmField::new(EthSrc, mac_u128(mac)))
    }

    /// ipv4_src.
    pub fn ipv4_src(self, a: std::net::Ipv4Addr) -> Self {
        self.with(OxmField::new(Ipv4Src, u32::from(a)))
    }

    /// ipv4_dst.
    pub fn ipv4_dst(self, a: std::net::Ipv4Addr) -> Self {
        self.with(OxmField::new(Ipv4Dst, u32::from(a)))
    }

    /// reg`n` (exact).
    pub fn reg(self, n: u8, v: u32) -> Self {
        self.with(OxmField::new(Reg(n), v))
    }

    /// ct_state with mask.
    pub fn ct_state(self, v: u32, mask: u32) -> Self {
        self.masked(CtState, v, mask)
    }

    /// The entry for `field`, if present.
    pub fn get(&self, field: Field) -> Option<&OxmField> {
        self.fields.iter().find(|f| f.field == field)
    }

    /// Length of the OXM TLVs (without the 4-byte ofp_match header and padding).
    pub fn oxm_len(&self) -> usize {
        self.fields.iter().map(OxmField::wire_len).sum()
    }

    /// Appends just the OXM TLVs (as in packet-in2 metadata properties).
    pub fn encode_oxms(&self, out: &mut Vec<u8>) {
        for f in &self.fields {
            f.encode(out);
        }
    }

    /// Appends the `ofp_match` (type OXM), padded to 8 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 1); // OFPMT_OXM
        put_u16(out, crate::buf::field_len(4 + self.oxm_len()));
        self.encode_oxms(out);
        crate::buf::pad_to_8(out, start);
    }

    /// Encoded size of the `ofp_match` including padding.
    pub fn wire_len(&self) -> usize {
        crate::buf::round8(4 + self.oxm_len())
    }

    /// Reads an `ofp_match` (and its padding) from `r`.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let ty = r.u16()?;
        let len = usize::from(r.u16()?);
        if ty != 1 {
            return Err(Error::Unsupported("ofp_match type other than OXM"));
        }
        let body_len = len.checked_sub(4).ok_or(Error::BadLength("ofp_match"))?;
        let body = r.take(body_len)?;
        r.skip(crate::buf::round8(len) - len)?;
        Ok(Match {
            fields: decode_oxms(body)?,
        })
    }

    /// Checks OpenFlow prerequisites (e.g. `ipv4_src` needs `eth_type=0x0800`): returns
    /// the first field whose prerequisite is missing.
    pub fn check_prerequisites(&self) -> std::result::Result<(), Field> {
        let exact = |f: Field| self.get(f).filter(|e| e.mask.is_none()).map(|e| e.value);
        let eth = exact(EthType);
        let proto = exact(IpProto);
        let is_ip = matches!(eth, Some(0x0800) | Some(0x86dd));
        let is4 = eth == Some(0x0800);
        let is6 = eth == Some(0x86dd);
        for e in &self.fields {
            let ok = match e.field {
                IpDscp | IpEcn | IpProto | IpTtl | IpFrag => is_ip,
                Ipv4Src | Ipv4Dst => is4,
                Ipv6Src | Ipv6Dst => is6,
                ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => eth == Some(0x0806),
                TcpSrc | TcpDst | TcpFlags => is_ip && proto == Some(6),
                UdpSrc | UdpDst => is_ip && proto == Some(17),
                Icmpv4Type | Icmpv4Code => is4 && proto == Some(1),
                Icmpv6Type | Icmpv6Code => is6 && proto == Some(58),
                NdTarget => {
                    is6 && proto == Some(58) && matches!(exact(Icmpv6Type), Some(135) | Some(136))
                }
                NdSll => is6 && proto == Some(58) && exact(Icmpv6Type) == Some(135),
                NdTll => is6 && proto == Some(58) && exact(Icmpv6Type) == Some(136),
                NdReserved | NdOptionsType => {
                    is6 && proto == Some(58) && matches!(exact(Icmpv6Type), Some(135) | Some(136))
                }
                MplsLabel | MplsTc | MplsBos => matches!(eth, Some(0x8847) | Some(0x8848)),
                VlanPcp => self
                    .get(VlanVid)
                    .is_some_and(|v| v.value & u128::from(OFPVID_PRESENT) != 0),
                _ => true,
            };
            if !ok {
                return Err(e.field);
            }
        }
        Ok(())
    }
}

/// `[min, max]` as (value, mask) pairs of a 16-bit field (a port range as the
/// fewest aligned value/mask blocks).
pub fn port_masks(min: u16, max: u16) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let (mut lo, hi) = (u32::from(min), u32::from(max));
    while lo <= hi {
        let mut size: u32 = if lo == 0 {
            1 << 16
        } else {
            lo & lo.wrapping_neg()
        };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        let value = u16::try_from(lo).unwrap_or(u16::MAX);
        let mask = u16::try_from(!(size - 1) & 0xffff).unwrap_or(0);
        out.push((value, mask));
        lo += size;
    }
    out
}

/// The mask of a `prefix`-bit prefix of a `width`-bit address (prefix clamped to width).
pub fn prefix_mask(prefix: u8, width: u32) -> u128 {
    let p = u32::from(prefix).min(width);
    ones(width) & !ones(width - p)
}

/// A MAC address as a right-aligned value.
pub fn mac_u128(mac: [u8; 6]) -> u128 {
    mac.iter().fold(0u128, |a, &b| (a << 8) | u128::from(b))
}

/// A right-aligned value as a MAC address (low 48 bits).
pub fn u128_mac(v: u128) -> [u8; 6] {
    let b = v.to_be_bytes();
    let mut m = [0u8; 6];
    m.copy_from_slice(b.get(10..16).unwrap_or(&[0; 6]));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(f: OxmField) -> Vec<u8> {
        let mut v = Vec::new();
        f.encode(&mut v);
        v
    }

    #[test]
    fn encodes_nxm_and_oxm_headers() {
        // NXM_NX_REG6 = 5: class 0x0001, field 6, length 4.
        assert_eq!(
            bytes(OxmField::new(Reg(6), 5u32)),
            [0x00, 0x01, 0x0c, 0x04, 0, 0, 0, 5]
        );
        // OXM_OF_IN_PORT = 1.
        assert_eq!(
            bytes(OxmField::new(InPort, 1u32)),
            [0x80, 0x00, 0x00, 0x04, 0, 0, 0, 1]
        );
        // Masked eth_dst: has-mask bit and doubled length.
        assert_eq!(
            bytes(OxmField::masked(
                EthDst,
                mac_u128([1, 0, 0, 0, 0, 0]),
                mac_u128([1, 0, 0, 0, 0, 0])
            )),
            [0x80, 0x00, 0x07, 0x0c, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
        );
        // xreg0 lives in the packet-register class 0x8001.
        assert_eq!(
            bytes(OxmField::new(XReg(0), 1u64)),
            [0x80, 0x01, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        // ct_state is NXM_NX 105.
        assert_eq!(
            bytes(OxmField::masked(CtState, 0x21u32, 0x21u32)),
            [0x00, 0x01, 0xd3, 0x08, 0, 0, 0, 0x21, 0, 0, 0, 0x21]
        );
    }

    #[test]
    fn decodes_old_nxm_spellings_and_keeps_unknown_fields() {
        // NXM_OF_ETH_SRC (class 0, field 2) is eth_src.
        let f = decode_oxms(&[0x00, 0x00, 0x04, 0x06, 1, 2, 3, 4, 5, 6]).expect("decode");
        assert_eq!(f, vec![OxmField::new(EthSrc, mac_u128([1, 2, 3, 4, 5, 6]))]);
        // An experimenter field (class 0xffff) is kept with its experimenter id.
        let f = decode_oxms(&[0xff, 0xff, 0x02, 0x06, 0x00, 0x00, 0x23, 0x20, 0xab, 0xcd])
            .expect("decode");
        assert_eq!(
            f[0].field,
            Unknown {
                class: 0xffff,
                field: 1,
                experimenter: 0x2320,
                len: 2
            }
        );
        assert_eq!(f[0].value, 0xabcd);
        let mut again = Vec::new();
        f[0].encode(&mut again);
        assert_eq!(
            again,
            [0xff, 0xff, 0x02, 0x06, 0x00, 0x00, 0x23, 0x20, 0xab, 0xcd]
        );
    }

    #[test]
    fn match_is_padded_to_eight_bytes() {
        let m = Match::new().in_port(1);
        let mut v = Vec::new();
        m.encode(&mut v);
        assert_eq!(v, [0, 1, 0, 12, 0x80, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(Match::decode(&mut Reader::new(&v, "match")), Ok(m));
        // The empty match is 4 bytes of header plus 4 of padding.
        let mut v = Vec::new();
        Match::new().encode(&mut v);
        assert_eq!(v, [0, 1, 0, 4, 0, 0, 0, 0]);
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix_mask(24, 32), 0xffff_ff00);
        assert_eq!(prefix_mask(0, 32), 0);
        assert_eq!(prefix_mask(40, 32), 0xffff_ffff);
        assert_eq!(prefix_mask(64, 128), u128::MAX << 64);
        let m = Match::new().ipv4_dst_prefix([10, 0, 1, 0].into(), 24);
        assert_eq!(
            m.fields,
            vec![OxmField::masked(Ipv4Dst, 0x0a00_0100u32, 0xffff_ff00u32)]
        );
    }

    #[test]
    fn prerequisites() {
        let ok = Match::new().eth_type(0x0800).ip_proto(6).tcp_dst(80);
        assert_eq!(ok.check_prerequisites(), Ok(()));
        assert_eq!(Match::new().tcp_dst(80).check_prerequisites(), Err(TcpDst));
        assert_eq!(
            Match::new()
                .eth_type(0x86dd)
                .ipv4_src([1, 2, 3, 4].into())
                .check_prerequisites(),
            Err(Ipv4Src)
        );
        let nd = Match::new()
            .eth_type(0x86dd)
            .ip_proto(58)
            .icmpv6_type(135)
            .with(OxmField::new(NdSll, 1u8));
        assert_eq!(nd.check_prerequisites(), Ok(()));
        let bad_nd = Match::new()
            .eth_type(0x86dd)
            .ip_proto(58)
            .icmpv6_type(136)
            .with(OxmField::new(NdSll, 1u8));
        assert_eq!(bad_nd.check_prerequisites(), Err(NdSll));
        assert_eq!(
            Match::new().reg(6, 1).metadata(3).check_prerequisites(),
            Ok(())
        );
    }

    #[test]
    fn names_round_trip() {
        for (f, n) in NAMES {
            assert_eq!(Field::from_name(n), Some(*f));
            assert_eq!(f.name(), *n);
        }
        assert_eq!(Field::from_name("reg15"), Some(Reg(15)));
        assert_eq!(Field::from_name("reg16"), None);
        assert_eq!(Field::from_name("xreg7"), Some(XReg(7)));
        assert_eq!(Field::from_name("xxreg3"), Some(XxReg(3)));
        assert_eq!(
            OxmField::masked(Reg(6), 5u32, 0xffu32).to_string(),
            "reg6=0x5/0xff"
        );
        assert_eq!(OxmField::new(TunId, 0x64u64).to_string(), "tun_id=0x64");
    }

    #[test]
    fn truncated_fields_are_errors() {
        assert!(decode_oxms(&[0x80, 0x00, 0x00, 0x04, 0, 0]).is_err());
        assert!(decode_oxms(&[0x80, 0x00]).is_err());
        // Experimenter header whose length cannot hold the experimenter id.
        assert!(decode_oxms(&[0xff, 0xff, 0x00, 0x02, 0, 0, 0x23, 0x20]).is_err());
        // Odd masked length.
        assert!(decode_oxms(&[0x80, 0x00, 0x01, 0x03, 0, 0, 0]).is_err());
    }
}
