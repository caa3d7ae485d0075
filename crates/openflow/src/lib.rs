//! OpenFlow 1.3 and Nicira/OVS extension codec and framing, with no controller policy.
//!
//! Layout, one concern per module: [`buf`] (bounds-checked reading), [`header`] (the
//! 8-byte header, stream framing, xids), [`oxm`] (match fields), [`action`] and [`nx`]
//! (standard and Nicira actions), [`instruction`], [`message`] (the message enum and its
//! dispatch), [`flow`] (flow-mod, group-mod, meter-mod), [`packet`] (packet-in, packet-in2,
//! resume, packet-out), [`switch`] (hello, features, config, ports, role, async config),
//! [`multipart`], [`bundle`], [`errors`] (error type/code names).
//!
//! Decoding any byte string returns a value or an [`Error`]; it never panics.

#![warn(missing_docs)]

pub mod action;
pub mod buf;
pub mod bundle;
pub mod error;
pub mod errors;
pub mod flow;
pub mod header;
pub mod instruction;
pub mod message;
pub mod multipart;
pub mod nx;
pub mod oxm;
pub mod packet;
pub mod switch;

pub use action::Action;
pub use error::{Error, Result};
pub use header::{FrameReader, Header, XidAllocator};
pub use instruction::Instruction;
pub use message::Message;
pub use oxm::{Field, Match, OxmField};
