//! OpenFlow 1.3 and Nicira/OVS extension codec and framing, with no controller policy.
//!
//! Layout, one concern per module: [`buf`] (bounds-checked reading), [`header`] (the
//! 8-byte header, stream framing, xids), [`oxm`] (match fields), [`action`] and [`nx`]
//! (standard and Nicira actions), [`instruction`], [`message`] (the message enum and its
//! dispatch), [`flow`] (flow-mod, group-mod, meter-mod), [`packet`] (packet-in, packet-in2,
//! resume, packet-out), [`switch`] (hello, features, config, ports, role, async config),
//! [`multipart`] (with [`meter`] configs and stats), [`bundle`], [`errors`] (error type/code names).
//!
//! Decoding any byte string returns a value or an [`Error`]; it never panics.
//!
//! ```
//! use openflow::nx::{Ct, CtZone, Subfield, ct_flags};
//! use openflow::flow::FlowMod;
//! use openflow::{Action, Field, Instruction, Match, Message};
//!
//! // table=10, ip, reg6=5 → ct(commit, zone=reg6[0..15], table=15)
//! let fm = FlowMod {
//!     match_: Match::new().eth_type(0x0800).reg(6, 5),
//!     instructions: vec![Instruction::ApplyActions(vec![Action::Ct(Ct {
//!         flags: ct_flags::COMMIT,
//!         zone: CtZone::Field(Subfield::new(Field::Reg(6), 0, 16)),
//!         recirc_table: 15,
//!         ..Ct::default()
//!     })])],
//!     ..FlowMod::add(10, 100)
//! };
//! let mut buf = Vec::new();
//! Message::FlowMod(fm.clone()).encode(7, &mut buf)?;
//! Message::BarrierRequest.encode(8, &mut buf)?;
//!
//! // The receiving side: split the stream into frames and decode them.
//! let mut frames = openflow::FrameReader::new();
//! frames.extend(&buf);
//! let first = frames.next_frame()?.expect("a whole message");
//! assert_eq!(Message::decode(first)?, (7, Message::FlowMod(fm)));
//! # Ok::<(), openflow::Error>(())
//! ```

// Bytes from the switch: a narrowing cast must say what bounds it, and nothing is public
// that the crate's users cannot reach.
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]
#![warn(missing_docs)]

pub mod action;
pub mod buf;
pub mod bundle;
pub mod ct_flush;
pub mod error;
pub mod errors;
pub mod flow;
pub mod header;
pub mod instruction;
pub mod message;
pub mod meter;
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
