//! Flow-mod, group-mod, meter-mod and flow-removed bodies.

use crate::action::{Action, decode_actions, encode_actions, port};
use crate::buf::{Reader, patch_u16, put_u8, put_u16, put_u32, put_u64, put_zeros};
use crate::error::{Error, Result};
use crate::instruction::{Instruction, decode_instructions, encode_instructions};
use crate::oxm::Match;

/// `buffer_id` meaning "no buffered packet".
pub const NO_BUFFER: u32 = 0xffff_ffff;
/// Group id wildcard (deletes, stats).
pub const OFPG_ANY: u32 = 0xffff_ffff;
/// Group id meaning all groups (group delete).
pub const OFPG_ALL: u32 = 0xffff_fffc;
/// Table id meaning all tables (flow delete, stats).
pub const OFPTT_ALL: u8 = 0xff;

/// Flow-mod command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowModCommand {
    /// Add a flow.
    Add,
    /// Modify matching flows.
    Modify,
    /// Modify the flow with exactly this match and priority.
    ModifyStrict,
    /// Delete matching flows.
    Delete,
    /// Delete the flow with exactly this match and priority.
    DeleteStrict,
}

impl FlowModCommand {
    fn to_u8(self) -> u8 {
        self as u8
    }
    fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            0 => Self::Add,
            1 => Self::Modify,
            2 => Self::ModifyStrict,
            3 => Self::Delete,
            4 => Self::DeleteStrict,
            _ => return Err(Error::BadValue("flow-mod command")),
        })
    }
}

/// Flow-mod flags.
pub mod flow_flags {
    /// Send flow-removed when the flow expires or is deleted.
    pub const SEND_FLOW_REM: u16 = 1;
    /// Refuse overlapping flows.
    pub const CHECK_OVERLAP: u16 = 2;
    /// Reset counters on modify.
    pub const RESET_COUNTS: u16 = 4;
    /// Do not count packets.
    pub const NO_PKT_COUNTS: u16 = 8;
    /// Do not count bytes.
    pub const NO_BYT_COUNTS: u16 = 16;
}

/// OFPT_FLOW_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowMod {
    /// Cookie (add) or cookie to match under `cookie_mask` (modify/delete).
    pub cookie: u64,
    /// Cookie bits that must match (modify/delete).
    pub cookie_mask: u64,
    /// Table (255 = all, deletes only).
    pub table_id: u8,
    /// Command.
    pub command: FlowModCommand,
    /// Idle timeout in seconds (0 = none).
    pub idle_timeout: u16,
    /// Hard timeout in seconds (0 = none).
    pub hard_timeout: u16,
    /// Priority.
    pub priority: u16,
    /// Buffered packet to apply the flow to.
    pub buffer_id: u32,
    /// Deletes: only flows that output to this port.
    pub out_port: u32,
    /// Deletes: only flows that output to this group.
    pub out_group: u32,
    /// [`flow_flags`] bits.
    pub flags: u16,
    /// The match.
    pub match_: Match,
    /// Instructions.
    pub instructions: Vec<Instruction>,
}

impl FlowMod {
    /// An `add` in `table` at `priority` with an empty match and no instructions.
    pub fn add(table_id: u8, priority: u16) -> Self {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id,
            command: FlowModCommand::Add,
            idle_timeout: 0,
            hard_timeout: 0,
            priority,
            buffer_id: NO_BUFFER,
            out_port: port::ANY,
            out_group: OFPG_ANY,
            flags: 0,
            match_: Match::new(),
            instructions: Vec::new(),
        }
    }

    /// A `delete` in `table` (255 = all) of flows matching `m`.
    pub fn delete(table_id: u8, m: Match) -> Self {
        FlowMod {
            command: FlowModCommand::Delete,
            match_: m,
            ..FlowMod::add(table_id, 0)
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.cookie);
        put_u64(out, self.cookie_mask);
        put_u8(out, self.table_id);
        put_u8(out, self.command.to_u8());
        put_u16(out, self.idle_timeout);
        put_u16(out, self.hard_timeout);
        put_u16(out, self.priority);
        put_u32(out, self.buffer_id);
        put_u32(out, self.out_port);
        put_u32(out, self.out_group);
        put_u16(out, self.flags);
        put_zeros(out, 2);
        self.match_.encode(out);
        encode_instructions(&self.instructions, out);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let cookie = r.u64()?;
        let cookie_mask = r.u64()?;
        let table_id = r.u8()?;
        let command = FlowModCommand::from_u8(r.u8()?)?;
        let idle_timeout = r.u16()?;
        let hard_timeout = r.u16()?;
        let priority = r.u16()?;
        let buffer_id = r.u32()?;
        let out_port = r.u32()?;
        let out_group = r.u32()?;
        let flags = r.u16()?;
        r.skip(2)?;
        let match_ = Match::decode(r)?;
        let instructions = decode_instructions(r.take_rest())?;
        Ok(FlowMod {
            cookie,
            cookie_mask,
            table_id,
            command,
            idle_timeout,
            hard_timeout,
            priority,
            buffer_id,
            out_port,
            out_group,
            flags,
            match_,
            instructions,
        })
    }
}

/// Group-mod command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupModCommand {
    /// Add a group.
    Add,
    /// Replace a group's buckets.
    Modify,
    /// Delete a group.
    Delete,
}

/// Group type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// Every bucket (flooding).
    All,
    /// One bucket chosen by hash and weight.
    Select,
    /// One bucket.
    Indirect,
    /// First live bucket.
    FastFailover,
}

impl GroupType {
    fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            0 => GroupType::All,
            1 => GroupType::Select,
            2 => GroupType::Indirect,
            3 => GroupType::FastFailover,
            _ => return Err(Error::BadValue("group type")),
        })
    }
}

/// A group bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bucket {
    /// Weight (select groups).
    pub weight: u16,
    /// Port whose liveness matters (fast failover), or ANY.
    pub watch_port: u32,
    /// Group whose liveness matters, or ANY.
    pub watch_group: u32,
    /// Actions.
    pub actions: Vec<Action>,
}

impl Bucket {
    /// A bucket with these actions, weight 0 and no watch.
    pub fn new(actions: Vec<Action>) -> Self {
        Bucket {
            weight: 0,
            watch_port: port::ANY,
            watch_group: OFPG_ANY,
            actions,
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0);
        put_u16(out, self.weight);
        put_u32(out, self.watch_port);
        put_u32(out, self.watch_group);
        put_zeros(out, 4);
        encode_actions(&self.actions, out);
        let len = out.len() - start;
        patch_u16(out, start, crate::buf::field_len(len));
    }

    pub(crate) fn decode_list(buf: &[u8]) -> Result<Vec<Bucket>> {
        let mut r = Reader::new(buf, "bucket");
        let mut v = Vec::new();
        while !r.is_empty() {
            let len = usize::from(r.peek_u16()?);
            if len < 16 {
                return Err(Error::BadLength("bucket"));
            }
            let mut b = Reader::new(r.take(len)?, "bucket");
            b.skip(2)?;
            let weight = b.u16()?;
            let watch_port = b.u32()?;
            let watch_group = b.u32()?;
            b.skip(4)?;
            v.push(Bucket {
                weight,
                watch_port,
                watch_group,
                actions: decode_actions(b.rest())?,
            });
        }
        Ok(v)
    }
}

/// OFPT_GROUP_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupMod {
    /// Command.
    pub command: GroupModCommand,
    /// Group type.
    pub group_type: GroupType,
    /// Group id.
    pub group_id: u32,
    /// Buckets.
    pub buckets: Vec<Bucket>,
}

impl GroupMod {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.command as u16);
        put_u8(out, self.group_type as u8);
        put_u8(out, 0);
        put_u32(out, self.group_id);
        for b in &self.buckets {
            b.encode(out);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let command = match r.u16()? {
            0 => GroupModCommand::Add,
            1 => GroupModCommand::Modify,
            2 => GroupModCommand::Delete,
            _ => return Err(Error::BadValue("group-mod command")),
        };
        let group_type = GroupType::from_u8(r.u8()?)?;
        r.skip(1)?;
        let group_id = r.u32()?;
        Ok(GroupMod {
            command,
            group_type,
            group_id,
            buckets: Bucket::decode_list(r.rest())?,
        })
    }
}

/// A group description (group-desc multipart reply entry).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupDesc {
    /// Group type.
    pub group_type: GroupType,
    /// Group id.
    pub group_id: u32,
    /// Buckets.
    pub buckets: Vec<Bucket>,
}

impl GroupDesc {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u16(out, 0);
        put_u8(out, self.group_type as u8);
        put_u8(out, 0);
        put_u32(out, self.group_id);
        for b in &self.buckets {
            b.encode(out);
        }
        let len = out.len() - start;
        patch_u16(out, start, crate::buf::field_len(len));
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let len = usize::from(r.peek_u16()?);
        if len < 8 {
            return Err(Error::BadLength("group desc"));
        }
        let mut b = Reader::new(r.take(len)?, "group desc");
        b.skip(2)?;
        let group_type = GroupType::from_u8(b.u8()?)?;
        b.skip(1)?;
        let group_id = b.u32()?;
        Ok(GroupDesc {
            group_type,
            group_id,
            buckets: Bucket::decode_list(b.rest())?,
        })
    }
}

/// A meter band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeterBand {
    /// Drop above `rate`.
    Drop {
        /// Rate (kb/s or packets/s per the meter flags).
        rate: u32,
        /// Burst size.
        burst: u32,
    },
    /// Raise the drop precedence above `rate`.
    DscpRemark {
        /// Rate.
        rate: u32,
        /// Burst size.
        burst: u32,
        /// Precedence increase.
        prec_level: u8,
    },
}

/// Meter-mod command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeterModCommand {
    /// Add a meter.
    Add,
    /// Modify a meter.
    Modify,
    /// Delete a meter.
    Delete,
}

/// Meter flags.
pub mod meter_flags {
    /// Rate in kb/s.
    pub const KBPS: u16 = 1;
    /// Rate in packets/s.
    pub const PKTPS: u16 = 2;
    /// Use the burst size.
    pub const BURST: u16 = 4;
    /// Collect statistics.
    pub const STATS: u16 = 8;
}

/// OFPT_METER_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterMod {
    /// Command.
    pub command: MeterModCommand,
    /// [`meter_flags`] bits.
    pub flags: u16,
    /// Meter id.
    pub meter_id: u32,
    /// Bands.
    pub bands: Vec<MeterBand>,
}

impl MeterMod {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.command as u16);
        put_u16(out, self.flags);
        put_u32(out, self.meter_id);
        for b in &self.bands {
            crate::meter::encode_band(b, out);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let command = match r.u16()? {
            0 => MeterModCommand::Add,
            1 => MeterModCommand::Modify,
            2 => MeterModCommand::Delete,
            _ => return Err(Error::BadValue("meter-mod command")),
        };
        let flags = r.u16()?;
        let meter_id = r.u32()?;
        let mut bands = Vec::new();
        while !r.is_empty() {
            bands.push(crate::meter::decode_band(r)?);
        }
        Ok(MeterMod {
            command,
            flags,
            meter_id,
            bands,
        })
    }
}

/// OFPT_FLOW_REMOVED.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowRemoved {
    /// Cookie.
    pub cookie: u64,
    /// Priority.
    pub priority: u16,
    /// Reason (0 idle timeout, 1 hard timeout, 2 delete, 3 group delete).
    pub reason: u8,
    /// Table.
    pub table_id: u8,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// Idle timeout.
    pub idle_timeout: u16,
    /// Hard timeout.
    pub hard_timeout: u16,
    /// Packets matched.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
    /// The match.
    pub match_: Match,
}

impl FlowRemoved {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.cookie);
        put_u16(out, self.priority);
        put_u8(out, self.reason);
        put_u8(out, self.table_id);
        put_u32(out, self.duration_sec);
        put_u32(out, self.duration_nsec);
        put_u16(out, self.idle_timeout);
        put_u16(out, self.hard_timeout);
        put_u64(out, self.packet_count);
        put_u64(out, self.byte_count);
        self.match_.encode(out);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(FlowRemoved {
            cookie: r.u64()?,
            priority: r.u16()?,
            reason: r.u8()?,
            table_id: r.u8()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
            idle_timeout: r.u16()?,
            hard_timeout: r.u16()?,
            packet_count: r.u64()?,
            byte_count: r.u64()?,
            match_: Match::decode(r)?,
        })
    }
}
