//! The desired flows, groups and meters, kept by owner (the NB object they were compiled for),
//! and what changed since the switch was last told: the controller's whole flow state.

use super::{Compiled, Host, Meter, Owner, compile_owner, owners};
use crate::reconcile::{
    FlowBody, FlowKey, FlowTable, GroupBody, GroupDiff, GroupTable, Hasher, MeterBody, flow_mod,
    meter_mod, sort_changes,
};
use crate::view::View;
use openflow::flow::{FlowMod, GroupMod, GroupModCommand, MeterModCommand};
use std::collections::{BTreeMap, HashMap};

/// What one owner compiled: its number in the flow table and the keys of its flows and
/// groups.
#[derive(Debug, Clone)]
struct Held {
    id: u32,
    keys: Vec<FlowKey>,
    groups: Vec<u32>,
    meters: Vec<u32>,
}

/// The desired flows and groups, by owner, and what changed since the switch was last
/// told.
#[derive(Debug, Clone)]
pub struct Desired {
    by_owner: HashMap<Owner, Held, Hasher>,
    /// Owner numbers free for reuse; 0 is never given (it marks flows read from a switch).
    free_ids: Vec<u32>,
    next_id: u32,
    table: FlowTable,
    groups: GroupTable,
    /// Each flow changed since [`Desired::take_changes`], with what it was before the first
    /// change (`None`: absent): what a switch that held the previous state needs to be told,
    /// without keeping a copy of the switch.
    dirty: HashMap<FlowKey, Option<FlowBody>, Hasher>,
    dirty_groups: BTreeMap<u32, Option<GroupBody>>,
    dirty_meters: BTreeMap<u32, Option<MeterBody>>,
    /// Set while compiling from scratch: everything changes, nothing is worth recording.
    untracked: bool,
}

impl Default for Desired {
    fn default() -> Desired {
        Desired {
            by_owner: HashMap::default(),
            free_ids: Vec::new(),
            next_id: 1,
            table: FlowTable::default(),
            groups: GroupTable::default(),
            dirty: HashMap::default(),
            dirty_groups: BTreeMap::new(),
            dirty_meters: BTreeMap::new(),
            untracked: false,
        }
    }
}

impl Desired {
    /// Replaces the flows and groups of `owner` (none: the owner is gone). Group ids are
    /// network and router keys: one owner each.
    fn replace(&mut self, owner: &Owner, c: Compiled) {
        let Compiled {
            flows,
            groups,
            meters,
        } = c;
        let id = match self.by_owner.remove(owner) {
            Some(held) => {
                for key in held.keys {
                    if self.table.owner(&key) == Some(held.id) {
                        let before = self.table.remove(&key);
                        self.note(key, before);
                    }
                }
                for g in held.groups {
                    let before = self.groups.remove(g);
                    self.note_group(g, before);
                }
                for m in held.meters {
                    let before = self.groups.remove_meter(m);
                    self.note_meter(m, before);
                }
                held.id
            }
            None => self.free_ids.pop().unwrap_or_else(|| {
                self.next_id += 1;
                self.next_id - 1
            }),
        };
        if flows.is_empty() && groups.is_empty() && meters.is_empty() {
            self.free_ids.push(id);
            return;
        }
        let mut keys = Vec::with_capacity(flows.len());
        for f in flows {
            keys.push(f.key.clone());
            let noted = (!self.untracked).then(|| f.key.clone());
            let before = match self.table.insert_owned(f.key, f.body, id) {
                Some((body, other)) => {
                    // Keys, MACs and port numbers are unique, so two owners never want one
                    // flow; if they do, it is a bug worth seeing in the log.
                    if other != id {
                        let other = self.by_owner.iter().find(|(_, h)| h.id == other);
                        let key = keys.last();
                        tracing::warn!(?other, ?owner, ?key, "two owners compiled the same flow");
                    }
                    Some(body)
                }
                None => None,
            };
            if let Some(key) = noted {
                self.note(key, before);
            }
        }
        let ids = groups.iter().map(|g| g.id).collect();
        for g in groups {
            let before = self.groups.insert(g.id, g.body);
            self.note_group(g.id, before);
        }
        let meter_ids = meters.iter().map(|m| m.id).collect();
        for Meter { id: m, body } in meters {
            let before = self.groups.insert_meter(m, body);
            self.note_meter(m, before);
        }
        self.by_owner.insert(
            owner.clone(),
            Held {
                id,
                keys,
                groups: ids,
                meters: meter_ids,
            },
        );
    }

    /// Records what the flow at `key` was before its first change since the switch was
    /// last told.
    fn note(&mut self, key: FlowKey, before: Option<FlowBody>) {
        if !self.untracked && !self.dirty.contains_key(&key) {
            self.dirty.insert(key, before);
        }
    }

    fn note_group(&mut self, id: u32, before: Option<GroupBody>) {
        if !self.untracked {
            self.dirty_groups.entry(id).or_insert(before);
        }
    }

    fn note_meter(&mut self, id: u32, before: Option<MeterBody>) {
        if !self.untracked {
            self.dirty_meters.entry(id).or_insert(before);
        }
    }

    /// Recompiles `owners` (those [`super::affected`] by a change) from the view.
    pub fn update(&mut self, view: &View, host: &Host, owners: impl IntoIterator<Item = Owner>) {
        for o in owners {
            let c = compile_owner(view, host, &o);
            self.replace(&o, c);
        }
    }

    /// Compiles everything from scratch.
    pub fn full(view: &View, host: &Host) -> Desired {
        // Everything changes: a switch is brought to it by a full comparison, not by a list
        // of every key.
        let mut d = Desired {
            untracked: true,
            ..Desired::default()
        };
        // Compiled first and counted, so the table is sized once instead of growing (and
        // rehashing) through a hundred thousand inserts.
        let compiled: Vec<_> = owners(view)
            .into_iter()
            .map(|o| {
                let c = compile_owner(view, host, &o);
                (o, c)
            })
            .collect();
        d.table
            .reserve(compiled.iter().map(|(_, c)| c.flows.len()).sum());
        d.by_owner.reserve(compiled.len());
        for (o, c) in compiled {
            d.replace(&o, c);
        }
        d.untracked = false;
        d
    }

    pub fn table(&self) -> &FlowTable {
        &self.table
    }

    pub fn groups(&self) -> &GroupTable {
        &self.groups
    }

    /// The flow-mods and group-mods that bring a switch that held the desired state as of
    /// the last call up to date, from what changed since alone; forgets the changes.
    pub fn take_changes(&mut self) -> (Vec<FlowMod>, GroupDiff) {
        let changes = self.changes();
        self.forget_changes();
        changes
    }

    /// [`Desired::take_changes`], keeping the changes: a commit the switch refuses is made
    /// again from them, less what was left out.
    pub fn changes(&self) -> (Vec<FlowMod>, GroupDiff) {
        let mut changes: Vec<_> = self
            .dirty
            .iter()
            .filter_map(|(k, before)| {
                let now = self.table.get(k);
                (now != before.as_ref()).then_some((k, now))
            })
            .collect();
        sort_changes(&mut changes);
        let mut groups = GroupDiff::default();
        for (&id, before) in &self.dirty_groups {
            match (before, self.groups.get(id)) {
                (before, Some(now)) if before.as_ref() != Some(now) => {
                    groups.before.push(GroupMod {
                        command: if before.is_some() {
                            GroupModCommand::Modify
                        } else {
                            GroupModCommand::Add
                        },
                        group_type: now.group_type,
                        group_id: id,
                        buckets: now.buckets.clone(),
                    })
                }
                (Some(before), None) => groups.after.push(GroupMod {
                    command: GroupModCommand::Delete,
                    group_type: before.group_type,
                    group_id: id,
                    buckets: Vec::new(),
                }),
                _ => {}
            }
        }
        for (&id, before) in &self.dirty_meters {
            match meter_mod(id, before.as_ref(), self.groups.meter(id)) {
                Some(m) if m.command == MeterModCommand::Delete => groups.meters_after.push(m),
                Some(m) => groups.meters_before.push(m),
                None => {}
            }
        }
        (changes.iter().map(flow_mod).collect(), groups)
    }

    /// Forgets the changes: the switch is to be brought up to date by comparing
    /// everything (after reading it back).
    pub fn forget_changes(&mut self) {
        self.dirty.clear();
        self.dirty_groups.clear();
        self.dirty_meters.clear();
    }

    /// The owner of the desired flow at `key`. (A walk over the owners: asked only when
    /// the switch refuses a flow.)
    pub fn owner_of(&self, key: &FlowKey) -> Option<&Owner> {
        let id = self.table.owner(key)?;
        self.by_owner
            .iter()
            .find_map(|(o, h)| (h.id == id).then_some(o))
    }

    /// The owner of the desired group `id`.
    pub fn owner_of_group(&self, id: u32) -> Option<&Owner> {
        self.by_owner
            .iter()
            .find_map(|(o, h)| h.groups.contains(&id).then_some(o))
    }

    /// Leaves `owner`'s flows and groups out (as if it compiled none), until it is
    /// compiled again.
    pub fn drop_owner(&mut self, owner: &Owner) {
        self.replace(owner, Compiled::default());
    }

    /// Forgets the change of one flow: the switch is taken to hold what it held.
    pub fn forget_change(&mut self, key: &FlowKey) {
        self.dirty.remove(key);
    }

    /// Forgets the change of one group.
    pub fn forget_group_change(&mut self, id: u32) {
        self.dirty_groups.remove(&id);
    }
}
