//! Desired and installed flows and groups, and the difference between them as flow-mods
//! and group-mods: the controller sends only what differs, after a change and after
//! reconnecting to a switch whose state survived (fail_mode secure).

use openflow::Instruction;
use openflow::flow::{Bucket, FlowMod, FlowModCommand, GroupMod, GroupModCommand, GroupType};
use openflow::oxm::Match;
use std::collections::{BTreeMap, HashMap};

/// What identifies a flow in OpenFlow: table, priority and match (strict semantics).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub table: u8,
    pub priority: u16,
    /// In canonical field order, so equal matches compare equal however they were built
    /// (OVS reports fields in its own order).
    pub match_: Match,
}

impl FlowKey {
    pub fn new(table: u8, priority: u16, m: Match) -> FlowKey {
        FlowKey {
            table,
            priority,
            match_: canonical(m),
        }
    }

    fn sort_key(&self) -> (u8, std::cmp::Reverse<u16>, Vec<u8>) {
        let mut bytes = Vec::new();
        self.match_.encode_oxms(&mut bytes);
        (self.table, std::cmp::Reverse(self.priority), bytes)
    }
}

/// The match with its fields in one order (by their OXM header), masks normalised away
/// when they are full. `eth_type` and `ip_proto` come first: OVS checks each field's
/// prerequisites as it reads it, and Nicira fields (whose headers sort before the standard
/// ones) such as `nw_ttl`, `ip_frag` or `tcp_flags` need them ahead.
pub fn canonical(mut m: Match) -> Match {
    for f in &mut m.fields {
        if f.mask == Some(f.field.full_mask()) {
            f.mask = None;
        }
    }
    let prerequisite_rank = |f: &openflow::oxm::Field| match f {
        openflow::oxm::Field::EthType => 0,
        openflow::oxm::Field::IpProto => 1,
        _ => 2,
    };
    m.fields
        .sort_by_key(|f| (prerequisite_rank(&f.field), f.field.header()));
    m
}

/// What a flow does, and who made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowBody {
    pub cookie: u64,
    pub instructions: Vec<Instruction>,
}

/// A set of flows keyed by table, priority and match: the desired state the apps compiled,
/// or the state read back from a switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowTable {
    flows: HashMap<FlowKey, FlowBody>,
}

impl FlowTable {
    pub fn new() -> FlowTable {
        FlowTable::default()
    }

    /// Adds or replaces a flow; returns the body it replaced.
    pub fn insert(&mut self, key: FlowKey, body: FlowBody) -> Option<FlowBody> {
        self.flows.insert(key, body)
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<FlowBody> {
        self.flows.remove(key)
    }

    pub fn get(&self, key: &FlowKey) -> Option<&FlowBody> {
        self.flows.get(key)
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, &FlowBody)> {
        self.flows.iter()
    }

    /// The flow-mods that turn `installed` into `self`: an add for every flow missing or
    /// different (an add with the same table, priority and match replaces the flow, cookie
    /// included), a strict delete for every flow that should not be there. Adds come
    /// first, each group in table and priority order, so the result is deterministic.
    pub fn diff(&self, installed: &FlowTable) -> Vec<FlowMod> {
        let mut adds: Vec<(&FlowKey, &FlowBody)> = self
            .flows
            .iter()
            .filter(|(k, b)| installed.flows.get(*k) != Some(*b))
            .collect();
        adds.sort_by_cached_key(|(k, _)| k.sort_key());
        let mut deletes: Vec<&FlowKey> = installed
            .flows
            .keys()
            .filter(|k| !self.flows.contains_key(*k))
            .collect();
        deletes.sort_by_cached_key(|k| k.sort_key());
        let add = adds.into_iter().map(|(k, b)| FlowMod {
            cookie: b.cookie,
            match_: k.match_.clone(),
            instructions: b.instructions.clone(),
            ..FlowMod::add(k.table, k.priority)
        });
        let delete = deletes.into_iter().map(|k| FlowMod {
            command: FlowModCommand::DeleteStrict,
            match_: k.match_.clone(),
            ..FlowMod::add(k.table, k.priority)
        });
        add.chain(delete).collect()
    }

    /// [`FlowTable::diff`] limited to `keys` (the flows that may have changed), in the
    /// same order.
    pub fn diff_keys<'a>(
        &self,
        installed: &FlowTable,
        keys: impl Iterator<Item = &'a FlowKey>,
    ) -> Vec<FlowMod> {
        let mut want = FlowTable::new();
        let mut have = FlowTable::new();
        for k in keys {
            if let Some(b) = self.flows.get(k) {
                want.insert(k.clone(), b.clone());
            }
            if let Some(b) = installed.flows.get(k) {
                have.insert(k.clone(), b.clone());
            }
        }
        want.diff(&have)
    }

    /// Applies flow-mods as a switch would (adds and strict deletes only): what the
    /// installed table becomes after [`FlowTable::diff`] is sent.
    pub fn apply(&mut self, mods: &[FlowMod]) {
        for m in mods {
            let key = FlowKey::new(m.table_id, m.priority, m.match_.clone());
            match m.command {
                FlowModCommand::Add => {
                    self.insert(
                        key,
                        FlowBody {
                            cookie: m.cookie,
                            instructions: m.instructions.clone(),
                        },
                    );
                }
                FlowModCommand::DeleteStrict => {
                    self.remove(&key);
                }
                _ => {}
            }
        }
    }
}

/// What a group is: its type and buckets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupBody {
    pub group_type: GroupType,
    pub buckets: Vec<Bucket>,
}

/// Groups by id: desired, or read back from a switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupTable {
    groups: BTreeMap<u32, GroupBody>,
}

/// The group-mods that turn one group table into another, split by when they may be sent:
/// a group must exist before a flow points at it and may go only once no flow does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupDiff {
    /// Adds and modifies: before the flow-mods.
    pub before: Vec<GroupMod>,
    /// Deletes: after the flow-mods.
    pub after: Vec<GroupMod>,
}

impl GroupDiff {
    pub fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }

    pub fn len(&self) -> usize {
        self.before.len() + self.after.len()
    }
}

impl GroupTable {
    pub fn insert(&mut self, id: u32, body: GroupBody) -> Option<GroupBody> {
        self.groups.insert(id, body)
    }

    pub fn remove(&mut self, id: u32) -> Option<GroupBody> {
        self.groups.remove(&id)
    }

    pub fn get(&self, id: u32) -> Option<&GroupBody> {
        self.groups.get(&id)
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &GroupBody)> {
        self.groups.iter().map(|(id, b)| (*id, b))
    }

    /// The group-mods that turn `installed` into `self`.
    pub fn diff(&self, installed: &GroupTable) -> GroupDiff {
        let mut d = GroupDiff::default();
        for (id, body) in &self.groups {
            let command = match installed.groups.get(id) {
                None => GroupModCommand::Add,
                Some(b) if b != body => GroupModCommand::Modify,
                Some(_) => continue,
            };
            d.before.push(GroupMod {
                command,
                group_type: body.group_type,
                group_id: *id,
                buckets: body.buckets.clone(),
            });
        }
        for (id, body) in &installed.groups {
            if !self.groups.contains_key(id) {
                d.after.push(GroupMod {
                    command: GroupModCommand::Delete,
                    group_type: body.group_type,
                    group_id: *id,
                    buckets: Vec::new(),
                });
            }
        }
        d
    }

    /// [`GroupTable::diff`] limited to the groups `ids`.
    pub fn diff_ids(&self, installed: &GroupTable, ids: impl Iterator<Item = u32>) -> GroupDiff {
        let mut want = GroupTable::default();
        let mut have = GroupTable::default();
        for id in ids {
            if let Some(b) = self.groups.get(&id) {
                want.insert(id, b.clone());
            }
            if let Some(b) = installed.groups.get(&id) {
                have.insert(id, b.clone());
            }
        }
        want.diff(&have)
    }

    /// Applies group-mods as a switch would.
    pub fn apply(&mut self, mods: &[GroupMod]) {
        for m in mods {
            match m.command {
                GroupModCommand::Add | GroupModCommand::Modify => {
                    self.groups.insert(
                        m.group_id,
                        GroupBody {
                            group_type: m.group_type,
                            buckets: m.buckets.clone(),
                        },
                    );
                }
                GroupModCommand::Delete => {
                    self.groups.remove(&m.group_id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::action::Action;
    use openflow::oxm::Field;

    fn flow(table: u8, prio: u16, port: u32, out: u32) -> (FlowKey, FlowBody) {
        (
            FlowKey::new(
                table,
                prio,
                Match::new()
                    .in_port(port)
                    .masked(Field::Metadata, 7u64, u64::MAX),
            ),
            FlowBody {
                cookie: u64::from(port),
                instructions: vec![Instruction::ApplyActions(vec![Action::output(out)])],
            },
        )
    }

    #[test]
    fn equal_tables_need_nothing() {
        let mut a = FlowTable::new();
        let (k, b) = flow(0, 100, 1, 2);
        a.insert(k, b);
        assert!(a.diff(&a.clone()).is_empty());
    }

    #[test]
    fn field_order_and_full_masks_do_not_matter() {
        let x = FlowKey::new(
            0,
            1,
            Match::new()
                .in_port(3)
                .masked(Field::Metadata, 7u64, u64::MAX),
        );
        let y = FlowKey::new(
            0,
            1,
            Match::new()
                .masked(Field::Metadata, 7u64, u64::MAX)
                .in_port(3),
        );
        let z = FlowKey::new(0, 1, Match::new().in_port(3).metadata(7));
        assert_eq!(x, y);
        assert_eq!(x, z);
    }

    #[test]
    fn adds_changes_and_deletes() {
        let mut installed = FlowTable::new();
        let mut desired = FlowTable::new();
        let (k1, b1) = flow(0, 100, 1, 2);
        let (k2, b2) = flow(0, 100, 2, 3);
        let (k3, b3) = flow(55, 10, 3, 4);
        installed.insert(k1.clone(), b1.clone());
        installed.insert(k2.clone(), b2);
        desired.insert(k1, b1);
        let (_, b2_new) = flow(0, 100, 2, 9);
        desired.insert(k2, b2_new);
        desired.insert(k3, b3);
        let mods = desired.diff(&installed);
        assert_eq!(mods.len(), 2, "{mods:?}");
        assert!(mods.iter().all(|m| m.command == FlowModCommand::Add));
        let mut gone = desired.clone();
        let (k4, b4) = flow(0, 200, 4, 4);
        installed.insert(k4, b4);
        let mods = gone.diff(&installed);
        assert_eq!(
            mods.last().map(|m| m.command),
            Some(FlowModCommand::DeleteStrict)
        );
        installed.apply(&mods);
        assert_eq!(installed, gone);
        gone.remove(&FlowKey::new(0, 100, Match::new().in_port(1).metadata(7)));
        assert_eq!(gone.len(), 2);
    }

    #[test]
    fn applying_the_diff_always_converges() {
        // Pseudo-random tables from a fixed seed: the switch ends equal to the desired set.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % u64::from(n)) as u32
        };
        for _ in 0..200 {
            let mut installed = FlowTable::new();
            let mut desired = FlowTable::new();
            for _ in 0..rnd(20) {
                let (k, b) = flow(rnd(3) as u8 * 5, 100 + rnd(3) as u16, rnd(8), rnd(4));
                installed.insert(k, b);
            }
            for _ in 0..rnd(20) {
                let (k, b) = flow(rnd(3) as u8 * 5, 100 + rnd(3) as u16, rnd(8), rnd(4));
                desired.insert(k, b);
            }
            let mods = desired.diff(&installed);
            installed.apply(&mods);
            assert_eq!(installed, desired);
            assert!(desired.diff(&installed).is_empty());
        }
    }

    #[test]
    fn group_diff_adds_before_and_deletes_after() {
        let body = |out: u32| GroupBody {
            group_type: GroupType::All,
            buckets: vec![Bucket::new(vec![Action::output(out)])],
        };
        let mut installed = GroupTable::default();
        installed.insert(1, body(1));
        installed.insert(2, body(2));
        let mut desired = GroupTable::default();
        desired.insert(1, body(9));
        desired.insert(3, body(3));
        let d = desired.diff(&installed);
        let cmds = |v: &[GroupMod]| {
            v.iter()
                .map(|m| (m.command, m.group_id))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            cmds(&d.before),
            vec![(GroupModCommand::Modify, 1), (GroupModCommand::Add, 3)]
        );
        assert_eq!(cmds(&d.after), vec![(GroupModCommand::Delete, 2)]);
        installed.apply(&d.before);
        installed.apply(&d.after);
        assert_eq!(installed, desired);
        assert!(desired.diff(&installed).is_empty());
    }
}
