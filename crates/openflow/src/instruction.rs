//! Instructions (`ofp_instruction_*`) of OpenFlow 1.3 flow-mods.

use crate::action::{Action, decode_actions, encode_actions};
use crate::buf::{Reader, patch_u16, put_u8, put_u16, put_u32, put_u64, put_zeros};
use crate::error::{Error, Result};

const GOTO_TABLE: u16 = 1;
const WRITE_METADATA: u16 = 2;
const WRITE_ACTIONS: u16 = 3;
const APPLY_ACTIONS: u16 = 4;
const CLEAR_ACTIONS: u16 = 5;
const METER: u16 = 6;

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Instruction {
    /// Continue in a later table.
    GotoTable(u8),
    /// Write the metadata register under a mask.
    WriteMetadata {
        /// Value.
        metadata: u64,
        /// Bits to write.
        mask: u64,
    },
    /// Merge actions into the action set.
    WriteActions(Vec<Action>),
    /// Apply actions now.
    ApplyActions(Vec<Action>),
    /// Clear the action set.
    ClearActions,
    /// Apply a meter.
    Meter(u32),
    /// An instruction this crate does not decode (type and body after the length).
    Unknown {
        /// Instruction type.
        ty: u16,
        /// Raw body.
        data: Vec<u8>,
    },
}

impl Instruction {
    /// Appends the instruction.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            Instruction::GotoTable(t) => {
                put_u16(out, GOTO_TABLE);
                put_u16(out, 8);
                put_u8(out, *t);
                put_zeros(out, 3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                put_u16(out, WRITE_METADATA);
                put_u16(out, 24);
                put_zeros(out, 4);
                put_u64(out, *metadata);
                put_u64(out, *mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                let ty = if matches!(self, Instruction::WriteActions(_)) {
                    WRITE_ACTIONS
                } else {
                    APPLY_ACTIONS
                };
                put_u16(out, ty);
                put_u16(out, 0);
                put_zeros(out, 4);
                encode_actions(a, out);
                let len = out.len() - start;
                patch_u16(out, start + 2, crate::buf::field_len(len));
            }
            Instruction::ClearActions => {
                put_u16(out, CLEAR_ACTIONS);
                put_u16(out, 8);
                put_zeros(out, 4);
            }
            Instruction::Meter(m) => {
                put_u16(out, METER);
                put_u16(out, 8);
                put_u32(out, *m);
            }
            Instruction::Unknown { ty, data } => {
                put_u16(out, *ty);
                put_u16(out, crate::buf::field_len(4 + data.len()));
                out.extend_from_slice(data);
            }
        }
    }

    /// Reads one instruction.
    pub fn decode(r: &mut Reader<'_>) -> Result<Instruction> {
        let ty = r.peek_u16()?;
        let len = usize::from(
            r.clone()
                .array::<4>()
                .map(|a| u16::from_be_bytes([a[2], a[3]]))?,
        );
        if len < 8 || len % 8 != 0 {
            return Err(Error::BadLength("instruction"));
        }
        let mut b = Reader::new(r.take(len)?, "instruction");
        b.skip(4)?;
        Ok(match ty {
            GOTO_TABLE => Instruction::GotoTable(b.u8()?),
            WRITE_METADATA => {
                b.skip(4)?;
                Instruction::WriteMetadata {
                    metadata: b.u64()?,
                    mask: b.u64()?,
                }
            }
            WRITE_ACTIONS | APPLY_ACTIONS => {
                b.skip(4)?;
                let a = decode_actions(b.take_rest())?;
                if ty == WRITE_ACTIONS {
                    Instruction::WriteActions(a)
                } else {
                    Instruction::ApplyActions(a)
                }
            }
            CLEAR_ACTIONS => Instruction::ClearActions,
            METER => Instruction::Meter(b.u32()?),
            _ => Instruction::Unknown {
                ty,
                data: b.take_rest().to_vec(),
            },
        })
    }
}

/// Appends instructions.
pub fn encode_instructions(ins: &[Instruction], out: &mut Vec<u8>) {
    for i in ins {
        i.encode(out);
    }
}

/// Decodes instructions until `buf` is exhausted.
pub fn decode_instructions(buf: &[u8]) -> Result<Vec<Instruction>> {
    let mut r = Reader::new(buf, "instructions");
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(Instruction::decode(&mut r)?);
    }
    Ok(v)
}
