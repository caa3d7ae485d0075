//! A deterministic, in-memory OpenFlow 1.3 + Nicira pipeline simulator for behaviour tests.
//!
//! Install flows and groups with the `openflow` crate's types, send a frame, and ask what
//! happened: which ports it left by (and as what bytes), what the controller received,
//! and which flows it hit.
//!
//! ```
//! use fake_switch::Switch;
//! use openflow::flow::FlowMod;
//! use openflow::{Action, Instruction, Match};
//!
//! let mut sw = Switch::new();
//! sw.apply_flow_mod(&FlowMod {
//!     match_: Match::new().in_port(1),
//!     instructions: vec![Instruction::ApplyActions(vec![Action::output(2)])],
//!     ..FlowMod::add(0, 100)
//! })?;
//! let frame = [0xffu8; 60];
//! let out = sw.process(1, &frame);
//! assert_eq!(out.ports(), vec![2]);
//! assert!(sw.process(3, &frame).dropped());
//! # Ok::<(), fake_switch::Error>(())
//! ```
//!
//! Modules: [`fields`] (the packet model, reading and writing fields), [`table`] (flows,
//! flow-mod semantics, lookup and conjunctions), [`groups`], [`conntrack`], `actions` (the
//! engine), [`switch`] (the switch and the outcome) and [`network`] (several switches
//! joined by links and tunnels).

#![warn(missing_docs)]

mod actions;
pub mod conntrack;
pub mod fields;
pub mod groups;
pub mod network;
pub mod switch;
pub mod table;

pub use actions::{MAX_DEPTH, MAX_STEPS};
pub use conntrack::{Conn, Conntrack, Tuple};
pub use fields::Packet;
pub use groups::{Group, Groups};
pub use network::{Delivery, Host, Network};
pub use switch::{Outcome, Output, PacketIn, Step, Switch, reason};
pub use table::{Flow, Tables};

use std::fmt;

/// Why a flow-mod or group-mod was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// goto_table to a table that is not later than the flow's own.
    GotoBackward {
        /// The flow's table.
        table: u8,
        /// The goto target.
        goto: u8,
    },
    /// Bad table id for this command.
    BadTable(u8),
    /// A match field whose prerequisite is missing.
    Prerequisite(openflow::Field),
    /// Group-mod add of an existing group.
    GroupExists(u32),
    /// Reference to (or modify of) a group that does not exist.
    UnknownGroup(u32),
    /// An invalid group (bad id, indirect without exactly one bucket).
    BadGroup(u32),
    /// An add with CHECK_OVERLAP overlaps a flow of the same priority.
    Overlap,
    /// Something the simulator does not accept.
    Unsupported(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::GotoBackward { table, goto } => {
                write!(f, "table {table}: goto_table:{goto} is not a later table")
            }
            Error::BadTable(t) => write!(f, "bad table id {t}"),
            Error::Prerequisite(fl) => write!(f, "prerequisite missing for {}", fl.name()),
            Error::GroupExists(g) => write!(f, "group {g} exists"),
            Error::UnknownGroup(g) => write!(f, "group {g} does not exist"),
            Error::BadGroup(g) => write!(f, "invalid group {g}"),
            Error::Overlap => write!(f, "overlapping flow (check_overlap)"),
            Error::Unsupported(s) => write!(f, "unsupported: {s}"),
        }
    }
}

impl std::error::Error for Error {}
