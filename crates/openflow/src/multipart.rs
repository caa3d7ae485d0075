//! Multipart (stats) requests and replies: desc, flow and aggregate stats, port desc, group
//! desc. Other types are kept raw.

use crate::action::port;
use crate::buf::{Reader, patch_u16, put_u8, put_u16, put_u32, put_u64, put_zeros};
use crate::error::{Error, Result};
use crate::flow::{GroupDesc, OFPG_ANY, OFPTT_ALL};
use crate::instruction::{Instruction, decode_instructions, encode_instructions};
use crate::meter::{MeterConfig, MeterStats};
use crate::oxm::Match;
use crate::switch::Port;

/// Multipart types.
pub mod mp_type {
    #![allow(missing_docs)]
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const GROUP_DESC: u16 = 7;
    pub const METER: u16 = 9;
    pub const METER_CONFIG: u16 = 10;
    pub const PORT_DESC: u16 = 13;
}

/// Reply flag: more replies follow.
pub const OFPMPF_REPLY_MORE: u16 = 1;

/// Flow stats request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowStatsRequest {
    /// Table (255 = all).
    pub table_id: u8,
    /// Only flows outputting to this port (ANY = no filter).
    pub out_port: u32,
    /// Only flows outputting to this group (ANY = no filter).
    pub out_group: u32,
    /// Cookie to match under `cookie_mask`.
    pub cookie: u64,
    /// Cookie bits that must match.
    pub cookie_mask: u64,
    /// Flows whose match is a superset of this one.
    pub match_: Match,
}

impl Default for FlowStatsRequest {
    fn default() -> Self {
        FlowStatsRequest {
            table_id: OFPTT_ALL,
            out_port: port::ANY,
            out_group: OFPG_ANY,
            cookie: 0,
            cookie_mask: 0,
            match_: Match::new(),
        }
    }
}

/// One flow in a flow stats reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowStats {
    /// Table.
    pub table_id: u8,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond that.
    pub duration_nsec: u32,
    /// Priority.
    pub priority: u16,
    /// Idle timeout.
    pub idle_timeout: u16,
    /// Hard timeout.
    pub hard_timeout: u16,
    /// Flow-mod flags.
    pub flags: u16,
    /// Cookie.
    pub cookie: u64,
    /// Packets.
    pub packet_count: u64,
    /// Bytes.
    pub byte_count: u64,
    /// Match.
    pub match_: Match,
    /// Instructions.
    pub instructions: Vec<Instruction>,
}

impl FlowStats {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0);
        put_u8(out, self.table_id);
        put_u8(out, 0);
        put_u32(out, self.duration_sec);
        put_u32(out, self.duration_nsec);
        put_u16(out, self.priority);
        put_u16(out, self.idle_timeout);
        put_u16(out, self.hard_timeout);
        put_u16(out, self.flags);
        put_zeros(out, 4);
        put_u64(out, self.cookie);
        put_u64(out, self.packet_count);
        put_u64(out, self.byte_count);
        self.match_.encode(out);
        encode_instructions(&self.instructions, out);
        let len = out.len() - start;
        patch_u16(out, start, crate::buf::field_len(len));
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let len = usize::from(r.peek_u16()?);
        if len < 48 {
            return Err(Error::BadLength("flow stats"));
        }
        let mut b = Reader::new(r.take(len)?, "flow stats");
        b.skip(2)?;
        let table_id = b.u8()?;
        b.skip(1)?;
        let duration_sec = b.u32()?;
        let duration_nsec = b.u32()?;
        let priority = b.u16()?;
        let idle_timeout = b.u16()?;
        let hard_timeout = b.u16()?;
        let flags = b.u16()?;
        b.skip(4)?;
        let cookie = b.u64()?;
        let packet_count = b.u64()?;
        let byte_count = b.u64()?;
        let match_ = Match::decode(&mut b)?;
        let instructions = decode_instructions(b.rest())?;
        Ok(FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie,
            packet_count,
            byte_count,
            match_,
            instructions,
        })
    }
}

/// Aggregate flow statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AggregateStats {
    /// Packets matched by the selected flows.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
    /// Number of selected flows.
    pub flow_count: u32,
}

/// Switch description strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Desc {
    /// Manufacturer.
    pub mfr_desc: String,
    /// Hardware.
    pub hw_desc: String,
    /// Software.
    pub sw_desc: String,
    /// Serial number.
    pub serial_num: String,
    /// Datapath description.
    pub dp_desc: String,
}

fn put_str(out: &mut Vec<u8>, s: &str, n: usize) {
    let b = s.as_bytes();
    let k = b.len().min(n - 1);
    out.extend_from_slice(b.get(..k).unwrap_or(&[]));
    put_zeros(out, n - k);
}

fn get_str(r: &mut Reader<'_>, n: usize) -> Result<String> {
    let raw = r.take(n)?;
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    Ok(String::from_utf8_lossy(raw.get(..end).unwrap_or(&[])).into_owned())
}

/// A multipart request body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MultipartRequest {
    /// Switch description.
    Desc,
    /// Flow stats.
    Flow(FlowStatsRequest),
    /// Aggregate stats of the flows selected like a flow stats request.
    Aggregate(FlowStatsRequest),
    /// Group descriptions.
    GroupDesc,
    /// Port descriptions.
    PortDesc,
    /// Statistics of one meter, or of all ([`crate::meter::OFPM_ALL`]).
    MeterStats(u32),
    /// Configuration of one meter, or of all.
    MeterConfig(u32),
    /// Another type, raw body.
    Other {
        /// Multipart type.
        ty: u16,
        /// Raw body.
        body: Vec<u8>,
    },
}

impl MultipartRequest {
    fn ty(&self) -> u16 {
        match self {
            MultipartRequest::Desc => mp_type::DESC,
            MultipartRequest::Flow(_) => mp_type::FLOW,
            MultipartRequest::Aggregate(_) => mp_type::AGGREGATE,
            MultipartRequest::GroupDesc => mp_type::GROUP_DESC,
            MultipartRequest::PortDesc => mp_type::PORT_DESC,
            MultipartRequest::MeterStats(_) => mp_type::METER,
            MultipartRequest::MeterConfig(_) => mp_type::METER_CONFIG,
            MultipartRequest::Other { ty, .. } => *ty,
        }
    }

    pub(crate) fn encode(&self, flags: u16, out: &mut Vec<u8>) {
        put_u16(out, self.ty());
        put_u16(out, flags);
        put_zeros(out, 4);
        match self {
            MultipartRequest::Flow(f) | MultipartRequest::Aggregate(f) => {
                put_u8(out, f.table_id);
                put_zeros(out, 3);
                put_u32(out, f.out_port);
                put_u32(out, f.out_group);
                put_zeros(out, 4);
                put_u64(out, f.cookie);
                put_u64(out, f.cookie_mask);
                f.match_.encode(out);
            }
            MultipartRequest::MeterStats(id) | MultipartRequest::MeterConfig(id) => {
                put_u32(out, *id);
                put_zeros(out, 4);
            }
            MultipartRequest::Other { body, .. } => out.extend_from_slice(body),
            _ => {}
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<(u16, Self)> {
        let ty = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        let body = match ty {
            mp_type::DESC => MultipartRequest::Desc,
            mp_type::GROUP_DESC => MultipartRequest::GroupDesc,
            mp_type::PORT_DESC => MultipartRequest::PortDesc,
            mp_type::METER | mp_type::METER_CONFIG => {
                let id = r.u32()?;
                r.skip(4)?;
                if ty == mp_type::METER {
                    MultipartRequest::MeterStats(id)
                } else {
                    MultipartRequest::MeterConfig(id)
                }
            }
            mp_type::FLOW | mp_type::AGGREGATE => {
                let table_id = r.u8()?;
                r.skip(3)?;
                let out_port = r.u32()?;
                let out_group = r.u32()?;
                r.skip(4)?;
                let cookie = r.u64()?;
                let cookie_mask = r.u64()?;
                let match_ = Match::decode(r)?;
                let req = FlowStatsRequest {
                    table_id,
                    out_port,
                    out_group,
                    cookie,
                    cookie_mask,
                    match_,
                };
                if ty == mp_type::FLOW {
                    MultipartRequest::Flow(req)
                } else {
                    MultipartRequest::Aggregate(req)
                }
            }
            _ => MultipartRequest::Other {
                ty,
                body: r.take_rest().to_vec(),
            },
        };
        Ok((flags, body))
    }
}

/// A multipart reply body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MultipartReply {
    /// Switch description.
    Desc(Desc),
    /// Flow stats.
    Flow(Vec<FlowStats>),
    /// Aggregate stats.
    Aggregate(AggregateStats),
    /// Group descriptions.
    GroupDesc(Vec<GroupDesc>),
    /// Port descriptions.
    PortDesc(Vec<Port>),
    /// Meter statistics.
    MeterStats(Vec<MeterStats>),
    /// Meter configurations.
    MeterConfig(Vec<MeterConfig>),
    /// Another type, raw body.
    Other {
        /// Multipart type.
        ty: u16,
        /// Raw body.
        body: Vec<u8>,
    },
}

impl MultipartReply {
    fn ty(&self) -> u16 {
        match self {
            MultipartReply::Desc(_) => mp_type::DESC,
            MultipartReply::Flow(_) => mp_type::FLOW,
            MultipartReply::Aggregate(_) => mp_type::AGGREGATE,
            MultipartReply::GroupDesc(_) => mp_type::GROUP_DESC,
            MultipartReply::PortDesc(_) => mp_type::PORT_DESC,
            MultipartReply::MeterStats(_) => mp_type::METER,
            MultipartReply::MeterConfig(_) => mp_type::METER_CONFIG,
            MultipartReply::Other { ty, .. } => *ty,
        }
    }

    pub(crate) fn encode(&self, flags: u16, out: &mut Vec<u8>) {
        put_u16(out, self.ty());
        put_u16(out, flags);
        put_zeros(out, 4);
        match self {
            MultipartReply::Desc(d) => {
                put_str(out, &d.mfr_desc, 256);
                put_str(out, &d.hw_desc, 256);
                put_str(out, &d.sw_desc, 256);
                put_str(out, &d.serial_num, 32);
                put_str(out, &d.dp_desc, 256);
            }
            MultipartReply::Flow(v) => v.iter().for_each(|f| f.encode(out)),
            MultipartReply::Aggregate(a) => {
                put_u64(out, a.packet_count);
                put_u64(out, a.byte_count);
                put_u32(out, a.flow_count);
                put_zeros(out, 4);
            }
            MultipartReply::GroupDesc(v) => v.iter().for_each(|g| g.encode(out)),
            MultipartReply::PortDesc(v) => v.iter().for_each(|p| p.encode(out)),
            MultipartReply::MeterStats(v) => v.iter().for_each(|m| m.encode(out)),
            MultipartReply::MeterConfig(v) => v.iter().for_each(|m| m.encode(out)),
            MultipartReply::Other { body, .. } => out.extend_from_slice(body),
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<(u16, Self)> {
        let ty = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        let body = match ty {
            mp_type::DESC => MultipartReply::Desc(Desc {
                mfr_desc: get_str(r, 256)?,
                hw_desc: get_str(r, 256)?,
                sw_desc: get_str(r, 256)?,
                serial_num: get_str(r, 32)?,
                dp_desc: get_str(r, 256)?,
            }),
            mp_type::FLOW => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(FlowStats::decode(r)?);
                }
                MultipartReply::Flow(v)
            }
            mp_type::AGGREGATE => MultipartReply::Aggregate(AggregateStats {
                packet_count: r.u64()?,
                byte_count: r.u64()?,
                flow_count: r.u32()?,
            }),
            mp_type::GROUP_DESC => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(GroupDesc::decode(r)?);
                }
                MultipartReply::GroupDesc(v)
            }
            mp_type::PORT_DESC => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(Port::decode(r)?);
                }
                MultipartReply::PortDesc(v)
            }
            mp_type::METER => {
                MultipartReply::MeterStats(crate::meter::decode_stats(r.take_rest())?)
            }
            mp_type::METER_CONFIG => {
                MultipartReply::MeterConfig(crate::meter::decode_configs(r.take_rest())?)
            }
            _ => MultipartReply::Other {
                ty,
                body: r.take_rest().to_vec(),
            },
        };
        Ok((flags, body))
    }
}
