//! Flow tables: storing flows, flow-mod semantics (add/replace, modify, delete, strict
//! variants, cookie masks, out_port) and the per-table lookup including conjunctions.

use std::collections::BTreeMap;

use openflow::action::port;
use openflow::flow::{FlowMod, FlowModCommand, OFPG_ANY, OFPTT_ALL};
use openflow::{Action, Field, Instruction, Match, OxmField};

use crate::Error;
use crate::fields::Packet;

/// One installed flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// Table id.
    pub table: u8,
    /// Priority.
    pub priority: u16,
    /// Cookie.
    pub cookie: u64,
    /// Match.
    pub match_: Match,
    /// Instructions.
    pub instructions: Vec<Instruction>,
    /// Installation order (ties between equal priorities go to the oldest flow).
    pub(crate) seq: u64,
    /// The match, canonical (for strict comparisons).
    pub(crate) canon: Canon,
    /// Whether the flow's actions are conjunction clauses.
    pub(crate) conj: bool,
}

impl Flow {
    /// All actions of the flow (apply and write), for inspection.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.instructions.iter().flat_map(|i| match i {
            Instruction::ApplyActions(a) | Instruction::WriteActions(a) => a.as_slice(),
            _ => &[],
        })
    }

    /// A flow whose actions are conjunction(...) clauses.
    pub fn is_conjunctive(&self) -> bool {
        self.conj
    }

    fn has_conjunction(&self) -> bool {
        self.actions()
            .any(|a| matches!(a, Action::Conjunction { .. }))
    }

    fn outputs_to(&self, p: u32) -> bool {
        p == port::ANY
            || self.actions().any(|a| match a {
                Action::Output { port, .. } => *port == p,
                Action::Controller { .. } | Action::Controller2(_) => p == port::CONTROLLER,
                _ => false,
            })
    }

    fn uses_group(&self, g: u32) -> bool {
        g == OFPG_ANY || self.actions().any(|a| *a == Action::Group(g))
    }
}

impl std::fmt::Display for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "table={}, priority={}, cookie={:#x}",
            self.table, self.priority, self.cookie
        )?;
        for e in &self.match_.fields {
            match e.mask {
                Some(m) => write!(f, ", {}={:#x}/{:#x}", e.field.name(), e.value, m)?,
                None => write!(f, ", {}={:#x}", e.field.name(), e.value)?,
            }
        }
        write!(f, " actions={:?}", self.instructions)
    }
}

/// Whether two matches can both match one packet (same priority overlap check).
fn overlaps(a: &Match, b: &Match) -> bool {
    a.fields.iter().all(|x| {
        b.fields.iter().filter(|y| y.field == x.field).all(|y| {
            let full = x.field.full_mask();
            let m = x.mask.unwrap_or(full) & y.mask.unwrap_or(full);
            x.value & m == y.value & m
        })
    })
}

/// A match in canonical form: values masked, full masks dropped, entries sorted.
pub(crate) type Canon = Vec<(Field, u128, Option<u128>)>;

/// The canonical form of a match (two matches that select the same packets in the same way
/// compare equal whatever the order of their entries).
pub(crate) fn canonical(m: &Match) -> Canon {
    let mut v: Canon = m
        .fields
        .iter()
        .map(|f| {
            let full = f.field.full_mask();
            let mask = f.mask.map(|m| m & full).filter(|&m| m != full);
            let value = f.value & mask.unwrap_or(full);
            (f.field, value, mask)
        })
        .collect();
    v.sort_by_key(|(f, v, m)| (f.header(), f.experimenter(), *v, *m));
    v
}

/// Whether the flow's match is at least as specific as `m` (non-strict modify/delete).
fn covered_by(flow: &Match, m: &Match) -> bool {
    m.fields.iter().all(|want| {
        let full = want.field.full_mask();
        let wmask = want.mask.unwrap_or(full) & full;
        if wmask == 0 {
            return true;
        }
        flow.fields.iter().any(|have| {
            have.field == want.field && {
                let hmask = have.mask.unwrap_or(full) & full;
                hmask & wmask == wmask && (have.value & wmask) == (want.value & wmask)
            }
        })
    })
}

/// Whether one match entry accepts the packet (`fired` = conjunction ids that fired).
fn entry_matches(e: &OxmField, pkt: &Packet, fired: &[u32]) -> bool {
    if e.field == Field::ConjId {
        return fired.iter().any(|&id| u128::from(id) == e.value);
    }
    let Some(v) = pkt.get(e.field) else {
        return false;
    };
    let mask = e.mask.unwrap_or(u128::MAX);
    v & mask == e.value & mask
}

/// Whether a match accepts the packet.
pub fn matches(m: &Match, pkt: &Packet, fired: &[u32]) -> bool {
    m.fields.iter().all(|e| entry_matches(e, pkt, fired))
}

/// All flow tables.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    tables: BTreeMap<u8, Vec<Flow>>,
    seq: u64,
}

impl Tables {
    /// Flows of one table, highest priority first.
    pub fn flows(&self, table: u8) -> Vec<&Flow> {
        let mut v: Vec<&Flow> = self
            .tables
            .get(&table)
            .map(|t| t.iter().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.seq.cmp(&b.seq)));
        v
    }

    /// Every flow, by table, highest priority first.
    pub fn all(&self) -> Vec<&Flow> {
        self.tables.keys().flat_map(|&t| self.flows(t)).collect()
    }

    /// Number of flows in all tables.
    pub fn len(&self) -> usize {
        self.tables.values().map(Vec::len).sum()
    }

    /// No flows at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn clear(&mut self) {
        self.tables.clear();
    }

    /// Removes flows that send to group `g` (OpenFlow 1.3 semantics of a group delete).
    pub(crate) fn remove_group_users(&mut self, g: u32) {
        for t in self.tables.values_mut() {
            t.retain(|f| g == OFPG_ANY || !f.uses_group(g));
        }
    }

    /// Checks a flow-mod's instructions (goto tables must be later, as OVS requires).
    pub(crate) fn validate(fm: &FlowMod) -> Result<(), Error> {
        if fm.table_id == OFPTT_ALL && matches!(fm.command, FlowModCommand::Add) {
            return Err(Error::BadTable(fm.table_id));
        }
        fm.match_
            .check_prerequisites()
            .map_err(Error::Prerequisite)?;
        for i in &fm.instructions {
            match i {
                Instruction::GotoTable(t) if *t <= fm.table_id || *t == OFPTT_ALL => {
                    return Err(Error::GotoBackward {
                        table: fm.table_id,
                        goto: *t,
                    });
                }
                Instruction::Unknown { ty, .. } => {
                    return Err(Error::Unsupported(format!("instruction type {ty}")));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// OFPFF_CHECK_OVERLAP: refuses an add overlapping a flow of the same priority.
    pub(crate) fn check_overlap(&self, fm: &FlowMod) -> Result<(), Error> {
        if fm.flags & openflow::flow::flow_flags::CHECK_OVERLAP == 0
            || fm.command != FlowModCommand::Add
        {
            return Ok(());
        }
        let clash = self.tables.get(&fm.table_id).is_some_and(|t| {
            t.iter()
                .any(|f| f.priority == fm.priority && overlaps(&f.match_, &fm.match_))
        });
        if clash {
            return Err(Error::Overlap);
        }
        Ok(())
    }

    /// Applies a flow-mod that has been validated.
    pub(crate) fn apply(&mut self, fm: &FlowMod) {
        let cookie_ok = |f: &Flow| f.cookie & fm.cookie_mask == fm.cookie & fm.cookie_mask;
        let in_table = |t: u8| fm.table_id == OFPTT_ALL || fm.table_id == t;
        let canon = canonical(&fm.match_);
        match fm.command {
            FlowModCommand::Add => {
                self.seq += 1;
                let mut flow = Flow {
                    table: fm.table_id,
                    priority: fm.priority,
                    cookie: fm.cookie,
                    match_: fm.match_.clone(),
                    instructions: fm.instructions.clone(),
                    seq: self.seq,
                    canon: Vec::new(),
                    conj: false,
                };
                flow.conj = flow.has_conjunction();
                let t = self.tables.entry(fm.table_id).or_default();
                if let Some(old) = t
                    .iter_mut()
                    .find(|f| f.priority == fm.priority && f.canon == canon)
                {
                    // Replacement keeps the flow's place among equal priorities.
                    old.cookie = flow.cookie;
                    old.instructions = flow.instructions;
                    old.match_ = flow.match_;
                    old.conj = flow.conj;
                } else {
                    flow.canon = canon;
                    t.push(flow);
                }
            }
            FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
                let strict = fm.command == FlowModCommand::ModifyStrict;
                for (&tid, t) in self.tables.iter_mut() {
                    if !in_table(tid) {
                        continue;
                    }
                    for f in t.iter_mut() {
                        let hit = if strict {
                            f.priority == fm.priority && f.canon == canon
                        } else {
                            covered_by(&f.match_, &fm.match_)
                        };
                        if hit && cookie_ok(f) {
                            f.instructions = fm.instructions.clone();
                            f.conj = f.has_conjunction();
                        }
                    }
                }
            }
            FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
                let strict = fm.command == FlowModCommand::DeleteStrict;
                for (&tid, t) in self.tables.iter_mut() {
                    if !in_table(tid) {
                        continue;
                    }
                    t.retain(|f| {
                        let hit = if strict {
                            f.priority == fm.priority && f.canon == canon
                        } else {
                            covered_by(&f.match_, &fm.match_)
                        };
                        !(hit
                            && cookie_ok(f)
                            && f.outputs_to(fm.out_port)
                            && f.uses_group(fm.out_group))
                    });
                }
            }
        }
    }

    /// The flow a packet hits in `table`, conjunctions resolved (OVS semantics: a flow
    /// matching `conj_id=N` is a candidate when every clause of conjunction N matches).
    pub fn lookup(&self, table: u8, pkt: &Packet) -> Option<&Flow> {
        let flows = self.tables.get(&table)?;
        // (id, priority) -> (n_clauses, clauses seen as a bit set). As in OVS, clauses of
        // one id at different priorities are different conjunctions.
        let mut conj: BTreeMap<(u32, u16), (u8, u128)> = BTreeMap::new();
        for f in flows.iter().filter(|f| f.is_conjunctive()) {
            if !matches(&f.match_, pkt, &[]) {
                continue;
            }
            for a in f.actions() {
                if let Action::Conjunction {
                    id,
                    clause,
                    n_clauses,
                } = *a
                {
                    let e = conj.entry((id, f.priority)).or_insert((n_clauses, 0));
                    e.1 |= 1u128.checked_shl(u32::from(clause)).unwrap_or(0);
                }
            }
        }
        let fired: Vec<u32> = conj
            .iter()
            .filter(|(_, (n, seen))| {
                *n > 0 && *n <= 128 && {
                    let all = openflow::oxm::low_bits(u32::from(*n));
                    seen & all == all
                }
            })
            .map(|(&(id, _), _)| id)
            .collect();
        flows
            .iter()
            .filter(|f| !f.is_conjunctive() && matches(&f.match_, pkt, &fired))
            .min_by(|a, b| b.priority.cmp(&a.priority).then(a.seq.cmp(&b.seq)))
    }

    /// Adds a flow without validation (learned flows).
    pub(crate) fn add_unchecked(&mut self, fm: &FlowMod) {
        self.apply(fm);
    }
}
