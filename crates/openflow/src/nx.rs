//! Nicira (OVS) extension actions: bodies after `type=0xffff, len, vendor=0x2320`.
//!
//! Layouts follow OVS's `nx_action_*` structures; encoders choose the same subtypes OVS
//! itself emits for OpenFlow 1.3 so that a flow dumped back compares equal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::action::{Action, decode_actions_at, encode_actions};
use crate::buf::{Reader, pad_to_8, patch_u16, put_u8, put_u16, put_u32, put_u64, put_zeros};
use crate::error::{Error, Result};
use crate::oxm::{Field, OxmField, put_value, read_value};

/// NXAST_* subtypes.
pub mod subtype {
    #![allow(missing_docs)]
    pub const RESUBMIT: u16 = 1;
    pub const REG_MOVE: u16 = 6;
    pub const REG_LOAD: u16 = 7;
    pub const NOTE: u16 = 8;
    pub const MULTIPATH: u16 = 10;
    pub const RESUBMIT_TABLE: u16 = 14;
    pub const OUTPUT_REG: u16 = 15;
    pub const LEARN: u16 = 16;
    pub const EXIT: u16 = 17;
    pub const FIN_TIMEOUT: u16 = 19;
    pub const CONTROLLER: u16 = 20;
    pub const DEC_TTL_CNT_IDS: u16 = 21;
    pub const REG_LOAD2: u16 = 33;
    pub const CONJUNCTION: u16 = 34;
    pub const CT: u16 = 35;
    pub const NAT: u16 = 36;
    pub const CONTROLLER2: u16 = 37;
    pub const CT_CLEAR: u16 = 43;
    pub const RESUBMIT_TABLE_CT: u16 = 44;
}

/// A bit range of a field: `field[ofs..ofs+n_bits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subfield {
    /// The field.
    pub field: Field,
    /// First bit (0 = least significant).
    pub ofs: u16,
    /// Number of bits (1..=field width).
    pub n_bits: u16,
}

impl Subfield {
    /// The whole field.
    pub fn whole(field: Field) -> Self {
        Subfield {
            field,
            ofs: 0,
            n_bits: field.bits(),
        }
    }

    /// `field[ofs..ofs+n_bits]`.
    pub fn new(field: Field, ofs: u16, n_bits: u16) -> Self {
        Subfield { field, ofs, n_bits }
    }

    /// `(ofs << 6) | (n_bits - 1)`, as NXM actions pack it.
    pub fn ofs_nbits(&self) -> u16 {
        (self.ofs << 6) | (self.n_bits.wrapping_sub(1) & 0x3f)
    }

    fn from_ofs_nbits(field: Field, v: u16) -> Self {
        Subfield {
            field,
            ofs: v >> 6,
            n_bits: (v & 0x3f) + 1,
        }
    }
}

/// Conntrack zone: an immediate or a subfield (e.g. `NXM_NX_REG6[0..15]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtZone {
    /// zone=N.
    Imm(u16),
    /// zone=field[..].
    Field(Subfield),
}

/// ct flags.
pub mod ct_flags {
    /// Commit the connection.
    pub const COMMIT: u16 = 1;
    /// Force: end an existing connection in the other direction.
    pub const FORCE: u16 = 2;
}

/// The ct() action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ct {
    /// [`ct_flags`] bits.
    pub flags: u16,
    /// Zone.
    pub zone: CtZone,
    /// Table to recirculate to (255 = none).
    pub recirc_table: u8,
    /// ALG port (0 = none; 21 ftp, 69 tftp).
    pub alg: u16,
    /// Actions executed on commit (set_field of ct_mark/ct_label, nat).
    pub actions: Vec<Action>,
}

impl Default for Ct {
    fn default() -> Self {
        Ct {
            flags: 0,
            zone: CtZone::Imm(0),
            recirc_table: 255,
            alg: 0,
            actions: Vec::new(),
        }
    }
}

/// nat flags.
pub mod nat_flags {
    /// Source NAT.
    pub const SRC: u16 = 1;
    /// Destination NAT.
    pub const DST: u16 = 2;
    /// Persistent mapping.
    pub const PERSISTENT: u16 = 4;
    /// Hash the port choice.
    pub const PROTO_HASH: u16 = 8;
    /// Random port choice.
    pub const PROTO_RANDOM: u16 = 16;
}

/// The nat() action (inside ct).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Nat {
    /// [`nat_flags`] bits.
    pub flags: u16,
    /// Lowest address of the range.
    pub addr_min: Option<IpAddr>,
    /// Highest address of the range.
    pub addr_max: Option<IpAddr>,
    /// Lowest port.
    pub port_min: Option<u16>,
    /// Highest port.
    pub port_max: Option<u16>,
}

/// Source of a learn spec: a subfield of the packet or an immediate value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnSrc {
    /// Copy from this subfield (its n_bits must equal the destination's).
    Field(Subfield),
    /// An immediate value (right-aligned).
    Imm(u128),
}

/// One flow-mod spec of a learn action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnSpec {
    /// Add a match on `dst` in the learned flow.
    Match {
        /// Value source.
        src: LearnSrc,
        /// Matched subfield (gives n_bits).
        dst: Subfield,
    },
    /// Add a load action to the learned flow.
    Load {
        /// Value source.
        src: LearnSrc,
        /// Loaded subfield (gives n_bits).
        dst: Subfield,
    },
    /// Add output to the port held in `src`.
    Output {
        /// Subfield with the port.
        src: Subfield,
    },
}

/// learn flags.
pub mod learn_flags {
    /// Send flow-removed for learned flows.
    pub const SEND_FLOW_REM: u16 = 1;
    /// Delete learned flows when the learning flow goes.
    pub const DELETE_LEARNED: u16 = 2;
}

/// The learn() action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Learn {
    /// Idle timeout of learned flows.
    pub idle_timeout: u16,
    /// Hard timeout of learned flows.
    pub hard_timeout: u16,
    /// Priority of learned flows.
    pub priority: u16,
    /// Cookie of learned flows.
    pub cookie: u64,
    /// [`learn_flags`] bits.
    pub flags: u16,
    /// Table to add learned flows to.
    pub table_id: u8,
    /// fin_idle_timeout of learned flows.
    pub fin_idle_timeout: u16,
    /// fin_hard_timeout of learned flows.
    pub fin_hard_timeout: u16,
    /// The flow-mod specs.
    pub specs: Vec<LearnSpec>,
}

/// The controller2 action (NXAST_CONTROLLER2); defaults as OVS's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Controller2 {
    /// Bytes of the packet to send (65535 = all).
    pub max_len: u16,
    /// Controller connection id.
    pub controller_id: u16,
    /// Packet-in reason (1 = action).
    pub reason: u8,
    /// Opaque bytes echoed in the packet-in2 userdata.
    pub userdata: Vec<u8>,
    /// Pause the pipeline (resumable with NXT_RESUME).
    pub pause: bool,
    /// Meter id (0 = none).
    pub meter_id: u32,
}

impl Default for Controller2 {
    fn default() -> Self {
        Controller2 {
            max_len: 0xffff,
            controller_id: 0,
            reason: 1,
            userdata: Vec::new(),
            pause: false,
            meter_id: 0,
        }
    }
}

/// The multipath action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Multipath {
    /// NX_HASH_FIELDS_* selector.
    pub fields: u16,
    /// Hash basis.
    pub basis: u16,
    /// NX_MP_ALG_* algorithm.
    pub algorithm: u16,
    /// Number of links minus one.
    pub max_link: u16,
    /// Algorithm argument.
    pub arg: u32,
    /// Where the chosen link goes.
    pub dst: Subfield,
}

const C2_MAX_LEN: u16 = 0;
const C2_CONTROLLER_ID: u16 = 1;
const C2_REASON: u16 = 2;
const C2_USERDATA: u16 = 3;
const C2_PAUSE: u16 = 4;
const C2_METER_ID: u16 = 5;

/// Appends a property `type, len, payload` padded to 8 bytes (OpenFlow property format).
pub(crate) fn put_prop(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let start = out.len();
    put_u16(out, ty);
    put_u16(out, crate::buf::field_len(4 + payload.len()));
    out.extend_from_slice(payload);
    pad_to_8(out, start);
}

/// Reads one property: (type, payload); skips its padding.
pub(crate) fn read_prop<'a>(r: &mut Reader<'a>) -> Result<(u16, &'a [u8])> {
    let ty = r.u16()?;
    let len = usize::from(r.u16()?);
    let plen = len.checked_sub(4).ok_or(Error::BadLength("property"))?;
    let payload = r.take(plen)?;
    let pad = crate::buf::round8(len) - len;
    // The last property of a message may legitimately omit trailing padding.
    r.skip(pad.min(r.remaining()))?;
    Ok((ty, payload))
}

pub(crate) fn prop_u8(p: &[u8]) -> Result<u8> {
    Reader::new(p, "property").u8()
}
pub(crate) fn prop_u16(p: &[u8]) -> Result<u16> {
    Reader::new(p, "property").u16()
}
pub(crate) fn prop_u32(p: &[u8]) -> Result<u32> {
    Reader::new(p, "property").u32()
}
/// 64-bit properties carry 4 bytes of padding first so that the value is 8-aligned
/// (OVS's layout); a bare 8-byte payload is accepted too.
pub(crate) fn prop_u64(p: &[u8]) -> Result<u64> {
    let mut r = Reader::new(p, "property");
    if p.len() == 12 {
        r.skip(4)?;
    }
    r.u64()
}

/// Appends a 64-bit property in OVS's aligned layout (4 zero bytes, then the value).
pub(crate) fn put_prop_u64(out: &mut Vec<u8>, ty: u16, v: u64) {
    let mut payload = [0u8; 12];
    payload[4..].copy_from_slice(&v.to_be_bytes());
    put_prop(out, ty, &payload);
}

/// Writes the subtype and body of Nicira action `a` (after the vendor id).
pub(crate) fn encode_body(a: &Action, out: &mut Vec<u8>) {
    use subtype::*;
    match a {
        Action::Resubmit { in_port, table, ct } => {
            put_u16(
                out,
                if *ct {
                    RESUBMIT_TABLE_CT
                } else {
                    RESUBMIT_TABLE
                },
            );
            put_u16(out, *in_port);
            put_u8(out, *table);
            put_zeros(out, 3);
        }
        Action::RegMove { src, dst } => {
            put_u16(out, REG_MOVE);
            put_u16(out, src.n_bits);
            put_u16(out, src.ofs);
            put_u16(out, dst.ofs);
            src.field.put_header(out);
            dst.field.put_header(out);
        }
        Action::RegLoad { dst, value } => {
            put_u16(out, REG_LOAD);
            put_u16(out, dst.ofs_nbits());
            dst.field.put_header(out);
            put_u64(out, *value);
        }
        Action::RegLoad2(f) => {
            put_u16(out, REG_LOAD2);
            f.encode(out);
        }
        Action::OutputReg { src, max_len } => {
            put_u16(out, OUTPUT_REG);
            put_u16(out, src.ofs_nbits());
            src.field.put_header(out);
            put_u16(out, *max_len);
            put_zeros(out, 6);
        }
        Action::Note(bytes) => {
            put_u16(out, NOTE);
            out.extend_from_slice(bytes);
        }
        Action::Exit => {
            put_u16(out, EXIT);
        }
        Action::CtClear => {
            put_u16(out, CT_CLEAR);
        }
        Action::FinTimeout { idle, hard } => {
            put_u16(out, FIN_TIMEOUT);
            put_u16(out, *idle);
            put_u16(out, *hard);
        }
        Action::Controller {
            max_len,
            controller_id,
            reason,
        } => {
            put_u16(out, CONTROLLER);
            put_u16(out, *max_len);
            put_u16(out, *controller_id);
            put_u8(out, *reason);
            put_u8(out, 0);
        }
        Action::DecTtlCntIds(ids) => {
            put_u16(out, DEC_TTL_CNT_IDS);
            put_u16(out, crate::buf::field_len(ids.len()));
            put_zeros(out, 4);
            for id in ids {
                put_u16(out, *id);
            }
        }
        Action::Conjunction {
            id,
            clause,
            n_clauses,
        } => {
            put_u16(out, CONJUNCTION);
            put_u8(out, *clause);
            put_u8(out, *n_clauses);
            put_u32(out, *id);
        }
        Action::Multipath(m) => {
            put_u16(out, MULTIPATH);
            put_u16(out, m.fields);
            put_u16(out, m.basis);
            put_u16(out, 0);
            put_u16(out, m.algorithm);
            put_u16(out, m.max_link);
            put_u32(out, m.arg);
            put_u16(out, 0);
            put_u16(out, m.dst.ofs_nbits());
            m.dst.field.put_header(out);
        }
        Action::Controller2(c) => {
            put_u16(out, CONTROLLER2);
            put_zeros(out, 6);
            if c.max_len != 0xffff {
                put_prop(out, C2_MAX_LEN, &c.max_len.to_be_bytes());
            }
            if c.controller_id != 0 {
                put_prop(out, C2_CONTROLLER_ID, &c.controller_id.to_be_bytes());
            }
            if c.reason != 1 {
                put_prop(out, C2_REASON, &[c.reason]);
            }
            if !c.userdata.is_empty() {
                put_prop(out, C2_USERDATA, &c.userdata);
            }
            if c.pause {
                put_prop(out, C2_PAUSE, &[]);
            }
            if c.meter_id != 0 {
                put_prop(out, C2_METER_ID, &c.meter_id.to_be_bytes());
            }
        }
        Action::Ct(ct) => {
            put_u16(out, CT);
            put_u16(out, ct.flags);
            match ct.zone {
                CtZone::Imm(z) => {
                    put_u32(out, 0);
                    put_u16(out, z);
                }
                CtZone::Field(sf) => {
                    sf.field.put_header(out);
                    put_u16(out, sf.ofs_nbits());
                }
            }
            put_u8(out, ct.recirc_table);
            put_zeros(out, 3);
            put_u16(out, ct.alg);
            encode_actions(&ct.actions, out);
        }
        Action::Nat(n) => {
            put_u16(out, NAT);
            put_zeros(out, 2);
            put_u16(out, n.flags);
            let at = out.len();
            put_u16(out, 0);
            let mut present = 0u16;
            if let Some(IpAddr::V4(a)) = n.addr_min {
                out.extend_from_slice(&a.octets());
                present |= 1;
            }
            if let Some(IpAddr::V4(a)) = n.addr_max {
                out.extend_from_slice(&a.octets());
                present |= 2;
            }
            if let Some(IpAddr::V6(a)) = n.addr_min {
                out.extend_from_slice(&a.octets());
                present |= 4;
            }
            if let Some(IpAddr::V6(a)) = n.addr_max {
                out.extend_from_slice(&a.octets());
                present |= 8;
            }
            if let Some(p) = n.port_min {
                put_u16(out, p);
                present |= 16;
            }
            if let Some(p) = n.port_max {
                put_u16(out, p);
                present |= 32;
            }
            patch_u16(out, at, present);
        }
        Action::Learn(l) => {
            put_u16(out, LEARN);
            put_u16(out, l.idle_timeout);
            put_u16(out, l.hard_timeout);
            put_u16(out, l.priority);
            put_u64(out, l.cookie);
            put_u16(out, l.flags);
            put_u8(out, l.table_id);
            put_u8(out, 0);
            put_u16(out, l.fin_idle_timeout);
            put_u16(out, l.fin_hard_timeout);
            for spec in &l.specs {
                encode_learn_spec(spec, out);
            }
        }
        // Non-Nicira variants never reach here (Action::encode handles them).
        _ => {}
    }
}

fn encode_learn_spec(spec: &LearnSpec, out: &mut Vec<u8>) {
    let (src, dst, dst_bits, n_bits) = match spec {
        LearnSpec::Match { src, dst } => (Some(*src), Some(*dst), 0u16, dst.n_bits),
        LearnSpec::Load { src, dst } => (Some(*src), Some(*dst), 1 << 11, dst.n_bits),
        LearnSpec::Output { src } => (Some(LearnSrc::Field(*src)), None, 2 << 11, src.n_bits),
    };
    let src_bit = if matches!(src, Some(LearnSrc::Imm(_))) {
        1 << 13
    } else {
        0
    };
    put_u16(out, src_bit | dst_bits | (n_bits & 0x3ff));
    match src {
        Some(LearnSrc::Field(sf)) => {
            sf.field.put_header(out);
            put_u16(out, sf.ofs);
        }
        Some(LearnSrc::Imm(v)) => {
            let bytes = 2 * usize::from(n_bits).div_ceil(16);
            if bytes > 16 {
                put_zeros(out, bytes - 16);
            }
            put_value(out, v, u8::try_from(bytes.min(16)).unwrap_or(16));
        }
        None => {}
    }
    if let Some(d) = dst {
        d.field.put_header(out);
        put_u16(out, d.ofs);
    }
}

fn read_subfield(r: &mut Reader<'_>) -> Result<Subfield> {
    let (field, _) = Field::read_header(r)?;
    let ofs = r.u16()?;
    Ok(Subfield {
        field,
        ofs,
        n_bits: 0,
    })
}

fn decode_learn(a: &mut Reader<'_>) -> Result<Learn> {
    let mut l = Learn {
        idle_timeout: a.u16()?,
        hard_timeout: a.u16()?,
        priority: a.u16()?,
        cookie: a.u64()?,
        flags: a.u16()?,
        table_id: a.u8()?,
        ..Learn::default()
    };
    a.skip(1)?;
    l.fin_idle_timeout = a.u16()?;
    l.fin_hard_timeout = a.u16()?;
    while a.remaining() >= 2 {
        let h = a.u16()?;
        if h == 0 {
            break;
        }
        let n_bits = h & 0x3ff;
        // Reserved bits set, or a zero-width spec, would not survive re-encoding (and mean
        // nothing): refuse them rather than misread them.
        if n_bits == 0 || h & 0xc400 != 0 {
            return Err(Error::BadValue("learn spec header"));
        }
        let imm = h & (1 << 13) != 0;
        let dst_type = (h >> 11) & 3;
        let src = if imm {
            let bytes = 2 * usize::from(n_bits).div_ceil(16);
            let raw = a.take(bytes)?;
            let (hi, lo) = raw.split_at(bytes.saturating_sub(16));
            if hi.iter().any(|&b| b != 0) {
                return Err(Error::Unsupported("learn immediate wider than 128 bits"));
            }
            LearnSrc::Imm(read_value(
                &mut Reader::new(lo, "learn immediate"),
                lo.len(),
            )?)
        } else {
            let mut sf = read_subfield(a)?;
            sf.n_bits = n_bits;
            LearnSrc::Field(sf)
        };
        let spec = match dst_type {
            0 | 1 => {
                let mut dst = read_subfield(a)?;
                dst.n_bits = n_bits;
                if dst_type == 0 {
                    LearnSpec::Match { src, dst }
                } else {
                    LearnSpec::Load { src, dst }
                }
            }
            2 => match src {
                LearnSrc::Field(sf) => LearnSpec::Output { src: sf },
                LearnSrc::Imm(_) => return Err(Error::BadValue("learn output from immediate")),
            },
            _ => return Err(Error::BadValue("learn spec destination")),
        };
        l.specs.push(spec);
    }
    if a.take_rest().iter().any(|&b| b != 0) {
        return Err(Error::BadValue("learn trailing bytes"));
    }
    Ok(l)
}

fn decode_ip(a: &mut Reader<'_>, v6: bool) -> Result<IpAddr> {
    Ok(if v6 {
        IpAddr::V6(Ipv6Addr::from(a.array::<16>()?))
    } else {
        IpAddr::V4(Ipv4Addr::from(a.array::<4>()?))
    })
}

/// Decodes a Nicira action body (reader positioned at the subtype).
pub(crate) fn decode_body(a: &mut Reader<'_>, depth: u8) -> Result<Action> {
    use subtype::*;
    let st = a.u16()?;
    Ok(match st {
        RESUBMIT | RESUBMIT_TABLE | RESUBMIT_TABLE_CT => {
            let in_port = a.u16()?;
            let table = a.u8()?;
            Action::Resubmit {
                in_port,
                table: if st == RESUBMIT { 255 } else { table },
                ct: st == RESUBMIT_TABLE_CT,
            }
        }
        REG_MOVE => {
            let n_bits = a.u16()?;
            let src_ofs = a.u16()?;
            let dst_ofs = a.u16()?;
            let (sf, _) = Field::read_header(a)?;
            let (df, _) = Field::read_header(a)?;
            Action::RegMove {
                src: Subfield {
                    field: sf,
                    ofs: src_ofs,
                    n_bits,
                },
                dst: Subfield {
                    field: df,
                    ofs: dst_ofs,
                    n_bits,
                },
            }
        }
        REG_LOAD => {
            let on = a.u16()?;
            let (f, _) = Field::read_header(a)?;
            let value = a.u64()?;
            Action::RegLoad {
                dst: Subfield::from_ofs_nbits(f, on),
                value,
            }
        }
        REG_LOAD2 => Action::RegLoad2(OxmField::decode(a)?),
        OUTPUT_REG => {
            let on = a.u16()?;
            let (f, _) = Field::read_header(a)?;
            let max_len = a.u16()?;
            Action::OutputReg {
                src: Subfield::from_ofs_nbits(f, on),
                max_len,
            }
        }
        NOTE => Action::Note(a.take_rest().to_vec()),
        EXIT => Action::Exit,
        CT_CLEAR => Action::CtClear,
        FIN_TIMEOUT => Action::FinTimeout {
            idle: a.u16()?,
            hard: a.u16()?,
        },
        CONTROLLER => Action::Controller {
            max_len: a.u16()?,
            controller_id: a.u16()?,
            reason: a.u8()?,
        },
        DEC_TTL_CNT_IDS => {
            let n = a.u16()?;
            a.skip(4)?;
            let ids = (0..n).map(|_| a.u16()).collect::<Result<Vec<_>>>()?;
            Action::DecTtlCntIds(ids)
        }
        CONJUNCTION => {
            let clause = a.u8()?;
            let n_clauses = a.u8()?;
            let id = a.u32()?;
            Action::Conjunction {
                id,
                clause,
                n_clauses,
            }
        }
        MULTIPATH => {
            let fields = a.u16()?;
            let basis = a.u16()?;
            a.skip(2)?;
            let algorithm = a.u16()?;
            let max_link = a.u16()?;
            let arg = a.u32()?;
            a.skip(2)?;
            let on = a.u16()?;
            let (f, _) = Field::read_header(a)?;
            Action::Multipath(Multipath {
                fields,
                basis,
                algorithm,
                max_link,
                arg,
                dst: Subfield::from_ofs_nbits(f, on),
            })
        }
        CONTROLLER2 => {
            a.skip(6)?;
            let mut c = Controller2::default();
            while !a.is_empty() {
                let (ty, p) = read_prop(a)?;
                match ty {
                    C2_MAX_LEN => c.max_len = prop_u16(p)?,
                    C2_CONTROLLER_ID => c.controller_id = prop_u16(p)?,
                    C2_REASON => c.reason = prop_u8(p)?,
                    C2_USERDATA => c.userdata = p.to_vec(),
                    C2_PAUSE => c.pause = true,
                    C2_METER_ID => c.meter_id = prop_u32(p)?,
                    _ => return Err(Error::Unsupported("controller2 property")),
                }
            }
            Action::Controller2(c)
        }
        CT => {
            let flags = a.u16()?;
            let zone_src = a.peek_u32()?;
            let zone = if zone_src == 0 {
                a.skip(4)?;
                CtZone::Imm(a.u16()?)
            } else {
                let (f, _) = Field::read_header(a)?;
                CtZone::Field(Subfield::from_ofs_nbits(f, a.u16()?))
            };
            let recirc_table = a.u8()?;
            a.skip(3)?;
            let alg = a.u16()?;
            let actions = decode_actions_at(a.take_rest(), depth + 1)?;
            Action::Ct(Ct {
                flags,
                zone,
                recirc_table,
                alg,
                actions,
            })
        }
        NAT => {
            a.skip(2)?;
            let flags = a.u16()?;
            let present = a.u16()?;
            if present & 3 != 0 && present & 12 != 0 {
                return Err(Error::BadValue("nat range with both IPv4 and IPv6"));
            }
            let mut n = Nat {
                flags,
                ..Nat::default()
            };
            if present & 1 != 0 {
                n.addr_min = Some(decode_ip(a, false)?);
            }
            if present & 2 != 0 {
                n.addr_max = Some(decode_ip(a, false)?);
            }
            if present & 4 != 0 {
                n.addr_min = Some(decode_ip(a, true)?);
            }
            if present & 8 != 0 {
                n.addr_max = Some(decode_ip(a, true)?);
            }
            if present & 16 != 0 {
                n.port_min = Some(a.u16()?);
            }
            if present & 32 != 0 {
                n.port_max = Some(a.u16()?);
            }
            Action::Nat(n)
        }
        LEARN => Action::Learn(decode_learn(a)?),
        _ => {
            // Keep it raw: subtype followed by the rest of the body.
            let mut data = st.to_be_bytes().to_vec();
            data.extend_from_slice(a.take_rest());
            Action::Experimenter {
                experimenter: crate::action::NX_VENDOR_ID,
                data,
            }
        }
    })
}
