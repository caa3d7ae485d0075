//! The pipeline engine: table lookups, instructions in OpenFlow order, apply-actions in
//! order, the action set at the end, resubmit, groups, conntrack recirculation, learn, and
//! the step / depth limits that keep any flow table from looping forever.

use openflow::action::port;
use openflow::flow::{FlowMod, GroupType};
use openflow::nx::{Ct, CtZone, Learn, LearnSpec, LearnSrc, ct_flags};
use openflow::oxm::low_bits;
use openflow::{Action, Field, Instruction, Match, OxmField};

use crate::conntrack::CtRequest;
use crate::fields::Packet;
use crate::groups::select_bucket;
use crate::switch::{Outcome, Output, PacketIn, Step, Switch, reason};

/// Lookups (including group buckets) per processed frame.
pub const MAX_STEPS: usize = 4096;
/// Nesting of resubmits, groups and recirculations.
pub const MAX_DEPTH: u8 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctl {
    /// Keep going.
    Go,
    /// The table missed.
    Miss,
    /// exit: stop the actions, still run the action set.
    Exit,
    /// Stop everything (TTL expired, pause, limits).
    Drop,
}

#[derive(Debug, Clone, Copy, Default)]
struct Cur {
    table: u8,
    cookie: u64,
}

pub(crate) struct Engine<'a> {
    sw: &'a mut Switch,
    pub(crate) out: Outcome,
    steps: usize,
    cur: Cur,
    /// Running a packet-out: output to TABLE submits the packet to table 0.
    pub(crate) packet_out: bool,
    /// Recirculations (ct with a table) waiting for the current pass to finish, as in the
    /// datapath: (packet, table, depth).
    pending: std::collections::VecDeque<(Packet, u8, u8)>,
}

fn ins_rank(i: &Instruction) -> u8 {
    match i {
        Instruction::Meter(_) => 0,
        Instruction::ApplyActions(_) => 1,
        Instruction::ClearActions => 2,
        Instruction::WriteActions(_) => 3,
        Instruction::WriteMetadata { .. } => 4,
        Instruction::GotoTable(_) => 5,
        Instruction::Unknown { .. } => 6,
    }
}

/// Action-set slot (one action per slot; later writes replace) and execution rank.
fn set_slot(a: &Action) -> (u8, String) {
    match a {
        Action::PopVlan | Action::PopMpls(_) => (1, String::new()),
        Action::PushMpls(_) => (2, "mpls".into()),
        Action::PushVlan(_) => (2, String::new()),
        Action::DecNwTtl | Action::DecTtlCntIds(_) => (3, String::new()),
        Action::SetField(f) | Action::RegLoad2(f) => (4, format!("{:?}", f.field)),
        Action::RegLoad { dst, .. } => (4, format!("{:?}", dst.field)),
        Action::SetQueue(_) => (5, String::new()),
        Action::Group(_) => (6, String::new()),
        Action::Output { .. } | Action::OutputReg { .. } => (7, String::new()),
        other => (8, format!("{other:?}")),
    }
}

fn merge_action_set(aset: &mut Vec<Action>, new: &[Action]) {
    for a in new {
        let slot = set_slot(a);
        aset.retain(|b| set_slot(b) != slot);
        aset.push(a.clone());
    }
}

impl<'a> Engine<'a> {
    pub(crate) fn new(sw: &'a mut Switch) -> Engine<'a> {
        Engine {
            sw,
            out: Outcome::default(),
            steps: 0,
            cur: Cur::default(),
            packet_out: false,
            pending: std::collections::VecDeque::new(),
        }
    }

    fn log(&mut self, depth: u8, msg: String) {
        let indent = "  ".repeat(usize::from(depth.min(16)));
        self.out.log.push(format!("{indent}{msg}"));
    }

    /// Runs a packet from `table`, then every recirculation it causes, in order.
    pub(crate) fn run_with_recirculation(&mut self, pkt: &mut Packet, table: u8) {
        self.run_pipeline(pkt, table, 0);
        self.drain_recirculation();
    }

    pub(crate) fn drain_recirculation(&mut self) {
        while let Some((mut p, t, depth)) = self.pending.pop_front() {
            if self.steps > MAX_STEPS {
                self.log(
                    0,
                    format!(
                        "step limit: {} recirculation(s) dropped",
                        self.pending.len() + 1
                    ),
                );
                self.pending.clear();
                break;
            }
            self.log(
                depth,
                format!("recirculated packet: table {t}, ct_state {:#x}", p.ct_state),
            );
            self.run_pipeline(&mut p, t, depth);
        }
    }

    /// Runs a whole pipeline pass (own action set) starting at `table`.
    pub(crate) fn run_pipeline(&mut self, pkt: &mut Packet, table: u8, depth: u8) {
        let mut aset = Vec::new();
        match self.run_from(pkt, &mut aset, table, depth) {
            Ctl::Go | Ctl::Exit => {
                if !aset.is_empty() {
                    aset.sort_by_key(|a| set_slot(a).0);
                    if aset.iter().any(|a| matches!(a, Action::Group(_))) {
                        aset.retain(|a| {
                            !matches!(a, Action::Output { .. } | Action::OutputReg { .. })
                        });
                    }
                    self.log(depth, format!("action set: {aset:?}"));
                    let mut scratch = Vec::new();
                    let _ = self.exec_list(pkt, &mut scratch, &aset, depth);
                }
            }
            Ctl::Miss => self.log(depth, "drop (table miss)".into()),
            Ctl::Drop => self.log(depth, "drop".into()),
        }
    }

    fn tick(&mut self, depth: u8) -> bool {
        self.steps += 1;
        if self.steps > MAX_STEPS || depth > MAX_DEPTH {
            self.log(depth, "limit reached (steps or depth): dropped".into());
            return false;
        }
        true
    }

    fn run_from(
        &mut self,
        pkt: &mut Packet,
        aset: &mut Vec<Action>,
        mut table: u8,
        depth: u8,
    ) -> Ctl {
        loop {
            if !self.tick(depth) {
                return Ctl::Drop;
            }
            let Some(flow) = self.sw.tables.lookup(table, pkt).cloned() else {
                self.log(depth, format!("table {table}: miss"));
                return Ctl::Miss;
            };
            self.out.trace.push(Step {
                table,
                priority: flow.priority,
                cookie: flow.cookie,
                depth,
            });
            self.log(
                depth,
                format!(
                    "table {table}: priority {} cookie {:#x} match {:?}",
                    flow.priority, flow.cookie, flow.match_.fields
                ),
            );
            self.cur = Cur {
                table,
                cookie: flow.cookie,
            };
            let mut ins: Vec<&Instruction> = flow.instructions.iter().collect();
            ins.sort_by_key(|i| ins_rank(i));
            let mut goto = None;
            for i in ins {
                match i {
                    Instruction::ApplyActions(a) => {
                        let c = self.exec_list(pkt, aset, a, depth);
                        if c != Ctl::Go {
                            return c;
                        }
                    }
                    Instruction::ClearActions => aset.clear(),
                    Instruction::WriteActions(a) => merge_action_set(aset, a),
                    Instruction::WriteMetadata { metadata, mask } => {
                        pkt.metadata = (pkt.metadata & !mask) | (metadata & mask);
                    }
                    Instruction::GotoTable(t) => goto = Some(*t),
                    Instruction::Meter(_) | Instruction::Unknown { .. } => {}
                }
            }
            match goto {
                Some(t) if t > table => table = t,
                _ => return Ctl::Go,
            }
        }
    }

    fn packet_in(
        &mut self,
        pkt: &Packet,
        why: u8,
        userdata: Vec<u8>,
        pause: bool,
        controller_id: u16,
        depth: u8,
    ) {
        self.log(
            depth,
            format!("packet-in reason {why} userdata {userdata:02x?}"),
        );
        self.out.to_controller.push(PacketIn {
            reason: why,
            table: self.cur.table,
            cookie: self.cur.cookie,
            userdata,
            pause,
            controller_id,
            frame: pkt.frame.clone(),
            packet: pkt.clone(),
        });
    }

    fn output(&mut self, pkt: &Packet, p: u32, depth: u8) {
        let p = match p {
            port::CONTROLLER => {
                self.packet_in(pkt, reason::ACTION, Vec::new(), false, 0, depth);
                return;
            }
            port::IN_PORT => pkt.in_port,
            port::TABLE if self.packet_out => {
                self.log(
                    depth,
                    "output:TABLE (packet-out): pipeline from table 0".into(),
                );
                let mut p = pkt.clone();
                self.run_pipeline(&mut p, 0, depth.saturating_add(1));
                return;
            }
            port::TABLE | port::ANY => {
                self.log(depth, format!("output to {p:#x} ignored"));
                return;
            }
            p if p == pkt.in_port => {
                self.log(
                    depth,
                    format!("output:{p} skipped (it is the in_port; use IN_PORT)"),
                );
                return;
            }
            p => p,
        };
        self.log(depth, format!("output:{p}"));
        self.out.outputs.push(Output {
            port: p,
            frame: pkt.frame.clone(),
            tun_id: pkt.tun_id,
            tun_src: pkt.tun_src,
            tun_dst: pkt.tun_dst,
            packet: pkt.clone(),
        });
    }

    /// Runs a packet-out's action list.
    pub(crate) fn run_packet_out(&mut self, pkt: &mut Packet, actions: &[Action]) {
        self.packet_out = true;
        self.log(
            0,
            format!("packet-out in_port {:#x}: {actions:?}", pkt.in_port),
        );
        let mut scratch = Vec::new();
        let _ = self.exec_list(pkt, &mut scratch, actions, 0);
        self.drain_recirculation();
    }

    fn exec_list(
        &mut self,
        pkt: &mut Packet,
        aset: &mut Vec<Action>,
        actions: &[Action],
        depth: u8,
    ) -> Ctl {
        for a in actions {
            match a {
                Action::Output { port, .. } => self.output(pkt, *port, depth),
                Action::OutputReg { src, .. } => match pkt.get_subfield(src) {
                    Some(p) => self.output(pkt, p as u32, depth),
                    None => self.log(depth, format!("output_reg {src:?}: no such field")),
                },
                Action::Group(g) => {
                    let c = self.group(pkt, *g, depth);
                    if c == Ctl::Drop {
                        return c;
                    }
                }
                Action::SetField(f) => self.set(pkt, f.field, f.value, u128::MAX, depth),
                Action::RegLoad2(f) => {
                    self.set(pkt, f.field, f.value, f.mask.unwrap_or(u128::MAX), depth)
                }
                Action::RegLoad { dst, value } => {
                    if !pkt.set_subfield(dst, u128::from(*value)) {
                        self.log(depth, format!("load to {dst:?} not applicable"));
                    }
                }
                Action::RegMove { src, dst } => {
                    let moved = pkt
                        .get_subfield(src)
                        .is_some_and(|v| src.n_bits == dst.n_bits && pkt.set_subfield(dst, v));
                    if !moved {
                        self.log(depth, format!("move {src:?} -> {dst:?} not applicable"));
                    }
                }
                Action::PushVlan(tpid) => pkt.push_vlan(*tpid),
                Action::PopVlan => pkt.pop_vlan(),
                Action::PushMpls(ethertype) => pkt.push_mpls(*ethertype),
                Action::PopMpls(ethertype) => pkt.pop_mpls(*ethertype),
                Action::DecNwTtl | Action::DecTtlCntIds(_) => {
                    if !pkt.dec_ttl() {
                        self.log(depth, "dec_ttl: TTL expired".into());
                        self.packet_in(pkt, reason::INVALID_TTL, Vec::new(), false, 0, depth);
                        return Ctl::Drop;
                    }
                }
                Action::Resubmit { in_port, table, .. } => {
                    let t = if *table == 255 {
                        self.cur.table
                    } else {
                        *table
                    };
                    let saved_port = pkt.in_port;
                    if *in_port != 0xfff8 {
                        pkt.in_port = u32::from(*in_port);
                    }
                    let saved = self.cur;
                    self.log(depth, format!("resubmit(,{t})"));
                    let c = self.run_from(pkt, aset, t, depth.saturating_add(1));
                    pkt.in_port = saved_port;
                    self.cur = saved;
                    if matches!(c, Ctl::Drop | Ctl::Exit) {
                        return c;
                    }
                }
                Action::Ct(ct) => self.ct(pkt, ct, depth),
                Action::CtClear => {
                    pkt.ct_state = 0;
                    pkt.ct_zone = 0;
                    pkt.ct_mark = 0;
                    pkt.ct_label = 0;
                    pkt.ct_orig = None;
                }
                Action::Learn(l) => self.learn(pkt, l, depth),
                Action::Controller {
                    controller_id,
                    reason,
                    ..
                } => self.packet_in(pkt, *reason, Vec::new(), false, *controller_id, depth),
                Action::Controller2(c) => {
                    self.packet_in(
                        pkt,
                        c.reason,
                        c.userdata.clone(),
                        c.pause,
                        c.controller_id,
                        depth,
                    );
                    if c.pause {
                        return Ctl::Drop;
                    }
                }
                Action::Exit => return Ctl::Exit,
                Action::Note(_)
                | Action::SetQueue(_)
                | Action::FinTimeout { .. }
                | Action::Conjunction { .. }
                | Action::Nat(_) => {}
                other => self.log(depth, format!("action not simulated: {other:?}")),
            }
        }
        Ctl::Go
    }

    fn set(&mut self, pkt: &mut Packet, f: Field, v: u128, mask: u128, depth: u8) {
        if !pkt.set_masked(f, v, mask) {
            self.log(depth, format!("set_field {} not applicable", f.name()));
        }
    }

    fn group(&mut self, pkt: &Packet, g: u32, depth: u8) -> Ctl {
        if !self.tick(depth.saturating_add(1)) {
            return Ctl::Drop;
        }
        let Some(grp) = self.sw.groups.get(g).cloned() else {
            self.log(depth, format!("group {g}: no such group"));
            return Ctl::Go;
        };
        let buckets: Vec<_> = match grp.group_type {
            GroupType::All => grp.buckets.iter().collect(),
            GroupType::Select => select_bucket(&grp.buckets, pkt).into_iter().collect(),
            GroupType::Indirect | GroupType::FastFailover => {
                grp.buckets.first().into_iter().collect()
            }
        };
        self.log(
            depth,
            format!(
                "group {g} ({:?}): {} bucket(s)",
                grp.group_type,
                buckets.len()
            ),
        );
        for b in buckets {
            let mut p = pkt.clone();
            let mut scratch = Vec::new();
            // OVS runs a bucket as an action set, which has no learn: it is dropped.
            let actions: Vec<Action> = b
                .actions
                .iter()
                .filter(|a| !matches!(a, Action::Learn(_)))
                .cloned()
                .collect();
            if actions.len() < b.actions.len() {
                self.log(
                    depth,
                    format!("group {g}: learn in a bucket, dropped as OVS does"),
                );
            }
            if self.exec_list(&mut p, &mut scratch, &actions, depth.saturating_add(1)) == Ctl::Drop
                && self.steps > MAX_STEPS
            {
                return Ctl::Drop;
            }
        }
        Ctl::Go
    }

    fn ct(&mut self, pkt: &mut Packet, ct: &Ct, depth: u8) {
        let zone = match ct.zone {
            CtZone::Imm(z) => z,
            CtZone::Field(sf) => pkt.get_subfield(&sf).unwrap_or(0) as u16,
        };
        let mut nat = None;
        let mut sets = Vec::new();
        for a in &ct.actions {
            match a {
                Action::Nat(n) => nat = Some(n),
                Action::SetField(f) => sets.push((f.field, f.value, u128::MAX)),
                Action::RegLoad2(f) => sets.push((f.field, f.value, f.mask.unwrap_or(u128::MAX))),
                Action::RegLoad { dst, value } => {
                    let ofs = u32::from(dst.ofs);
                    sets.push((
                        dst.field,
                        u128::from(*value).checked_shl(ofs).unwrap_or(0),
                        low_bits(u32::from(dst.n_bits))
                            .checked_shl(ofs)
                            .unwrap_or(0),
                    ));
                }
                _ => {}
            }
        }
        let req = CtRequest {
            zone,
            commit: ct.flags & ct_flags::COMMIT != 0,
            nat,
            sets,
        };
        let mut p = pkt.clone();
        self.sw.conntrack.execute(&mut p, &req);
        self.log(
            depth,
            format!(
                "ct(zone={zone}{}{}): ct_state={:#x} ct_mark={:#x}",
                if req.commit { ",commit" } else { "" },
                if nat.is_some() { ",nat" } else { "" },
                p.ct_state,
                p.ct_mark
            ),
        );
        if ct.recirc_table != 255 {
            self.log(
                depth,
                format!("recirculate to table {} (after this pass)", ct.recirc_table),
            );
            self.pending
                .push_back((p, ct.recirc_table, depth.saturating_add(1)));
        } else if nat.is_some() {
            pkt.frame = p.frame;
        }
    }

    fn learn(&mut self, pkt: &Packet, l: &Learn, depth: u8) {
        let mut m = Match::new();
        let mut actions = Vec::new();
        for spec in &l.specs {
            let value = |src: &LearnSrc| match src {
                LearnSrc::Imm(v) => Some(*v),
                LearnSrc::Field(sf) => pkt.get_subfield(sf),
            };
            match spec {
                LearnSpec::Match { src, dst } => {
                    let Some(v) = value(src) else { continue };
                    let ofs = u32::from(dst.ofs);
                    let mask = low_bits(u32::from(dst.n_bits))
                        .checked_shl(ofs)
                        .unwrap_or(0);
                    let v = v.checked_shl(ofs).unwrap_or(0) & mask;
                    let full = dst.field.full_mask();
                    if let Some(e) = m.fields.iter_mut().find(|e| e.field == dst.field) {
                        let old_mask = e.mask.unwrap_or(full);
                        let nm = old_mask | mask;
                        e.value = (e.value & !mask) | v;
                        e.mask = (nm & full != full).then_some(nm);
                    } else {
                        m.fields.push(OxmField {
                            field: dst.field,
                            value: v,
                            mask: (mask & full != full).then_some(mask),
                        });
                    }
                }
                LearnSpec::Load { src, dst } => {
                    let Some(v) = value(src) else { continue };
                    let ofs = u32::from(dst.ofs);
                    let mask = low_bits(u32::from(dst.n_bits))
                        .checked_shl(ofs)
                        .unwrap_or(0);
                    actions.push(Action::RegLoad2(OxmField::masked(
                        dst.field,
                        v.checked_shl(ofs).unwrap_or(0),
                        mask,
                    )));
                }
                LearnSpec::Output { src } => {
                    if let Some(p) = pkt.get_subfield(src) {
                        actions.push(Action::output(p as u32));
                    }
                }
            }
        }
        let fm = FlowMod {
            cookie: l.cookie,
            match_: m,
            instructions: vec![Instruction::ApplyActions(actions)],
            ..FlowMod::add(l.table_id, l.priority)
        };
        if l.table_id == 255 {
            return;
        }
        self.log(
            depth,
            format!(
                "learn: table {} priority {} {:?}",
                l.table_id, l.priority, fm.match_.fields
            ),
        );
        self.sw.tables.add_unchecked(&fm);
    }
}
