//! The switch: flow and group state, `process` (running a frame from table 0) and the
//! `Outcome` a test inspects.

use std::fmt;

use openflow::flow::{FlowMod, GroupMod};
use openflow::{Action, Instruction};

use crate::Error;
use crate::actions::Engine;
use crate::conntrack::Conntrack;
use crate::fields::Packet;
use crate::groups::Groups;
use crate::table::{Flow, Tables};

/// A frame leaving the switch by a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Port number (IN_PORT already resolved to the ingress port).
    pub port: u32,
    /// The frame as it leaves.
    pub frame: Vec<u8>,
    /// Tunnel id set at output (for tunnel ports).
    pub tun_id: u64,
    /// Tunnel source IPv4.
    pub tun_src: u32,
    /// Tunnel destination IPv4.
    pub tun_dst: u32,
    /// The full pipeline state at output.
    pub packet: Packet,
}

/// Packet-in reasons (OpenFlow 1.3).
pub mod reason {
    /// Table miss.
    pub const NO_MATCH: u8 = 0;
    /// output:CONTROLLER / controller action.
    pub const ACTION: u8 = 1;
    /// TTL expired (dec_ttl).
    pub const INVALID_TTL: u8 = 2;
}

/// A packet sent to the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    /// Reason ([`reason`]).
    pub reason: u8,
    /// Table of the flow that sent it.
    pub table: u8,
    /// Cookie of that flow.
    pub cookie: u64,
    /// controller2 userdata.
    pub userdata: Vec<u8>,
    /// controller2 pause.
    pub pause: bool,
    /// Controller id (controller / controller2).
    pub controller_id: u16,
    /// The frame.
    pub frame: Vec<u8>,
    /// Pipeline fields (in_port, metadata, registers, tunnel, conntrack).
    pub packet: Packet,
}

/// One flow hit during processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Table.
    pub table: u8,
    /// Priority of the flow hit.
    pub priority: u16,
    /// Its cookie.
    pub cookie: u64,
    /// Resubmit / recirculation depth.
    pub depth: u8,
}

/// What happened to a frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Frames sent out of ports, in order.
    pub outputs: Vec<Output>,
    /// Packets sent to the controller, in order.
    pub to_controller: Vec<PacketIn>,
    /// Flows hit, in order.
    pub trace: Vec<Step>,
    /// A readable account (lookups, misses, outputs, drops, conntrack).
    pub log: Vec<String>,
}

impl Outcome {
    /// Output ports in order.
    pub fn ports(&self) -> Vec<u32> {
        self.outputs.iter().map(|o| o.port).collect()
    }

    /// Frames output on `port`.
    pub fn frames_on(&self, port: u32) -> Vec<&[u8]> {
        self.outputs
            .iter()
            .filter(|o| o.port == port)
            .map(|o| o.frame.as_slice())
            .collect()
    }

    /// The only output (None when there are zero or several).
    pub fn single(&self) -> Option<&Output> {
        match self.outputs.as_slice() {
            [o] => Some(o),
            _ => None,
        }
    }

    /// Neither output nor packet-in.
    pub fn dropped(&self) -> bool {
        self.outputs.is_empty() && self.to_controller.is_empty()
    }

    /// Tables visited, in order.
    pub fn tables(&self) -> Vec<u8> {
        self.trace.iter().map(|s| s.table).collect()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.log {
            writeln!(f, "{l}")?;
        }
        write!(
            f,
            "=> outputs {:?}, {} packet-in(s)",
            self.ports(),
            self.to_controller.len()
        )
    }
}

/// The simulated switch.
#[derive(Debug, Clone, Default)]
pub struct Switch {
    pub(crate) tables: Tables,
    pub(crate) groups: Groups,
    pub(crate) conntrack: Conntrack,
}

impl Switch {
    /// An empty switch (every table misses: drop).
    pub fn new() -> Switch {
        Switch::default()
    }

    /// Applies a flow-mod as OVS would, refusing what OVS refuses (goto to an earlier or
    /// the same table, missing prerequisites, unknown groups, add to table 255).
    pub fn apply_flow_mod(&mut self, fm: &FlowMod) -> Result<(), Error> {
        Tables::validate(fm)?;
        self.tables.check_overlap(fm)?;
        if fm.command == openflow::flow::FlowModCommand::Add
            || matches!(
                fm.command,
                openflow::flow::FlowModCommand::Modify
                    | openflow::flow::FlowModCommand::ModifyStrict
            )
        {
            for i in &fm.instructions {
                if let Instruction::ApplyActions(a) | Instruction::WriteActions(a) = i {
                    self.check_actions(a)?;
                }
            }
        }
        self.tables.apply(fm);
        Ok(())
    }

    fn check_actions(&self, actions: &[Action]) -> Result<(), Error> {
        for a in actions {
            match a {
                Action::Group(g) if !self.groups.contains(*g) => {
                    return Err(Error::UnknownGroup(*g));
                }
                Action::Ct(ct) => self.check_actions(&ct.actions)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Applies several flow-mods, stopping at the first error.
    pub fn apply_flow_mods<'a>(
        &mut self,
        fms: impl IntoIterator<Item = &'a FlowMod>,
    ) -> Result<(), Error> {
        fms.into_iter().try_for_each(|fm| self.apply_flow_mod(fm))
    }

    /// Applies a group-mod (deleting a group also deletes the flows that use it).
    pub fn apply_group_mod(&mut self, gm: &GroupMod) -> Result<(), Error> {
        for b in &gm.buckets {
            self.check_actions(&b.actions)?;
        }
        for g in self.groups.apply(gm)? {
            self.tables.remove_group_users(g);
        }
        Ok(())
    }

    /// Flows of a table, highest priority first.
    pub fn flows(&self, table: u8) -> Vec<&Flow> {
        self.tables.flows(table)
    }

    /// All tables.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// All groups.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// The connection tracker.
    pub fn conntrack(&self) -> &Conntrack {
        &self.conntrack
    }

    /// The connection tracker, to flush it.
    pub fn conntrack_mut(&mut self) -> &mut Conntrack {
        &mut self.conntrack
    }

    /// Removes every flow, group and connection.
    pub fn clear(&mut self) {
        self.tables.clear();
        self.groups.clear();
        self.conntrack.clear();
    }

    /// Runs a frame received on `in_port` through the pipeline from table 0.
    pub fn process(&mut self, in_port: u32, frame: &[u8]) -> Outcome {
        self.process_packet(Packet::new(in_port, frame))
    }

    /// Runs a packet with preset pipeline fields (e.g. tun_id of a tunnel arrival) from
    /// table 0.
    pub fn process_packet(&mut self, pkt: Packet) -> Outcome {
        self.process_from(pkt, 0)
    }

    /// Executes a packet-out (actions on `data` from `in_port`; output:TABLE runs the
    /// pipeline from table 0, as OVS does).
    pub fn packet_out(&mut self, po: &openflow::packet::PacketOut) -> Outcome {
        let mut pkt = Packet::new(po.in_port, po.data.clone());
        let mut e = Engine::new(self);
        e.run_packet_out(&mut pkt, &po.actions);
        e.out
    }

    /// All flows, as text, one per line (table, priority, cookie, match, instructions).
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for f in self.tables.all() {
            s.push_str(&f.to_string());
            s.push('\n');
        }
        s
    }

    /// Runs a packet from `table` (as a packet-out to TABLE, or a resumed packet).
    pub fn process_from(&mut self, mut pkt: Packet, table: u8) -> Outcome {
        let mut e = Engine::new(self);
        e.run_with_recirculation(&mut pkt, table);
        e.out
    }
}
