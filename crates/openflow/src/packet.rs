//! Packet-in, Nicira packet-in2 / resume, and packet-out bodies.

use crate::action::{Action, decode_actions, encode_actions};
use crate::buf::{Reader, patch_u16, put_u8, put_u16, put_u32, put_u64, put_zeros};
use crate::error::{Error, Result};
use crate::nx::{prop_u8, prop_u32, prop_u64, put_prop, put_prop_u64, read_prop};
use crate::oxm::{Field, Match, decode_oxms};

/// Packet-in reasons.
pub mod reason {
    /// No matching flow (table miss).
    pub const NO_MATCH: u8 = 0;
    /// An output-to-controller action.
    pub const ACTION: u8 = 1;
    /// Invalid TTL.
    pub const INVALID_TTL: u8 = 2;
}

/// OFPT_PACKET_IN (OpenFlow 1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PacketIn {
    /// Buffer id (0xffffffff = not buffered).
    pub buffer_id: u32,
    /// Full length of the frame.
    pub total_len: u16,
    /// Why it was sent ([`reason`]).
    pub reason: u8,
    /// Table of the flow that sent it.
    pub table_id: u8,
    /// Cookie of that flow.
    pub cookie: u64,
    /// Pipeline fields (in_port, registers, metadata, tunnel, ct).
    pub match_: Match,
    /// The frame (possibly truncated).
    pub data: Vec<u8>,
}

/// Convenience accessors for pipeline fields carried in a packet-in match.
pub trait PipelineFields {
    /// The match carrying the fields.
    fn fields(&self) -> &Match;

    /// Value of `field` (unmasked), if present.
    fn field(&self, field: Field) -> Option<u128> {
        self.fields().get(field).map(|f| f.value)
    }

    /// in_port.
    fn in_port(&self) -> Option<u32> {
        self.field(Field::InPort)
            .and_then(|v| u32::try_from(v).ok())
    }

    /// reg`n` (0 when absent: OVS omits zero registers).
    fn reg(&self, n: u8) -> u32 {
        // A register is 32 bits wide: its value always fits.
        self.field(Field::Reg(n))
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    }

    /// metadata (0 when absent).
    fn metadata(&self) -> u64 {
        self.field(Field::Metadata)
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0)
    }
}

impl PipelineFields for PacketIn {
    fn fields(&self) -> &Match {
        &self.match_
    }
}

impl PacketIn {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.buffer_id);
        put_u16(out, self.total_len);
        put_u8(out, self.reason);
        put_u8(out, self.table_id);
        put_u64(out, self.cookie);
        self.match_.encode(out);
        put_zeros(out, 2);
        out.extend_from_slice(&self.data);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let buffer_id = r.u32()?;
        let total_len = r.u16()?;
        let reason = r.u8()?;
        let table_id = r.u8()?;
        let cookie = r.u64()?;
        let match_ = Match::decode(r)?;
        r.skip(2)?;
        Ok(PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id,
            cookie,
            match_,
            data: r.take_rest().to_vec(),
        })
    }
}

const PINT_PACKET: u16 = 0;
const PINT_FULL_LEN: u16 = 1;
const PINT_BUFFER_ID: u16 = 2;
const PINT_TABLE_ID: u16 = 3;
const PINT_COOKIE: u16 = 4;
const PINT_REASON: u16 = 5;
const PINT_METADATA: u16 = 6;
const PINT_USERDATA: u16 = 7;
const PINT_CONTINUATION: u16 = 8;

/// NXT_PACKET_IN2 (also the body of NXT_RESUME, which sends the same properties back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PacketIn2 {
    /// The frame (possibly truncated).
    pub packet: Vec<u8>,
    /// Full length when `packet` was truncated.
    pub full_len: Option<u32>,
    /// Buffer id when buffered.
    pub buffer_id: Option<u32>,
    /// Table of the flow that sent it.
    pub table_id: Option<u8>,
    /// Cookie of that flow.
    pub cookie: Option<u64>,
    /// Reason ([`reason`]).
    pub reason: Option<u8>,
    /// Pipeline fields.
    pub metadata: Match,
    /// Userdata from the controller2 action.
    pub userdata: Option<Vec<u8>>,
    /// Opaque continuation (paused pipelines), sent back verbatim in NXT_RESUME.
    pub continuation: Option<Vec<u8>>,
}

impl PipelineFields for PacketIn2 {
    fn fields(&self) -> &Match {
        &self.metadata
    }
}

impl PacketIn2 {
    /// The NXT_RESUME body for this paused packet-in2: the same properties without userdata
    /// (userdata belongs to packet-in2 only). `None` when the pipeline was not paused.
    pub fn to_resume(&self) -> Option<PacketIn2> {
        self.continuation.as_ref()?;
        Some(PacketIn2 {
            userdata: None,
            ..self.clone()
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_prop(out, PINT_PACKET, &self.packet);
        if let Some(v) = self.full_len {
            put_prop(out, PINT_FULL_LEN, &v.to_be_bytes());
        }
        if let Some(v) = self.buffer_id {
            put_prop(out, PINT_BUFFER_ID, &v.to_be_bytes());
        }
        if let Some(v) = self.table_id {
            put_prop(out, PINT_TABLE_ID, &[v]);
        }
        if let Some(v) = self.cookie {
            put_prop_u64(out, PINT_COOKIE, v);
        }
        if let Some(v) = self.reason {
            put_prop(out, PINT_REASON, &[v]);
        }
        let start = out.len();
        put_u16(out, PINT_METADATA);
        put_u16(out, 0);
        self.metadata.encode_oxms(out);
        let len = out.len() - start;
        patch_u16(out, start + 2, crate::buf::field_len(len));
        crate::buf::pad_to_8(out, start);
        if let Some(u) = &self.userdata {
            put_prop(out, PINT_USERDATA, u);
        }
        if let Some(c) = &self.continuation {
            put_prop(out, PINT_CONTINUATION, c);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let mut p = PacketIn2::default();
        while !r.is_empty() {
            let (ty, v) = read_prop(r)?;
            match ty {
                PINT_PACKET => p.packet = v.to_vec(),
                PINT_FULL_LEN => p.full_len = Some(prop_u32(v)?),
                PINT_BUFFER_ID => p.buffer_id = Some(prop_u32(v)?),
                PINT_TABLE_ID => p.table_id = Some(prop_u8(v)?),
                PINT_COOKIE => p.cookie = Some(prop_u64(v)?),
                PINT_REASON => p.reason = Some(prop_u8(v)?),
                PINT_METADATA => {
                    p.metadata = Match {
                        fields: decode_oxms(v)?,
                    }
                }
                PINT_USERDATA => p.userdata = Some(v.to_vec()),
                PINT_CONTINUATION => p.continuation = Some(v.to_vec()),
                _ => return Err(Error::Unsupported("packet-in2 property")),
            }
        }
        Ok(p)
    }
}

/// OFPT_PACKET_OUT.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PacketOut {
    /// Buffered packet, or 0xffffffff to send `data`.
    pub buffer_id: u32,
    /// Input port the packet is considered to come from (CONTROLLER if none).
    pub in_port: u32,
    /// Actions to apply.
    pub actions: Vec<Action>,
    /// The frame.
    pub data: Vec<u8>,
}

impl PacketOut {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.buffer_id);
        put_u32(out, self.in_port);
        let at = out.len();
        put_u16(out, 0);
        put_zeros(out, 6);
        let start = out.len();
        encode_actions(&self.actions, out);
        let alen = out.len() - start;
        patch_u16(out, at, crate::buf::field_len(alen));
        out.extend_from_slice(&self.data);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let buffer_id = r.u32()?;
        let in_port = r.u32()?;
        let alen = usize::from(r.u16()?);
        r.skip(6)?;
        let actions = decode_actions(r.take(alen)?)?;
        Ok(PacketOut {
            buffer_id,
            in_port,
            actions,
            data: r.take_rest().to_vec(),
        })
    }
}
