//! Desired and installed flows, groups and meters, and the difference between them as
//! flow-mods, group-mods and meter-mods: the controller sends only what differs, after a
//! change and after reconnecting to a switch whose state survived (fail_mode secure).

use openflow::Instruction;
use openflow::flow::{
    Bucket, FlowMod, FlowModCommand, GroupMod, GroupModCommand, GroupType, MeterBand, MeterMod,
    MeterModCommand,
};
use openflow::oxm::Match;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::{Arc, LazyLock};

/// The hasher of the flow tables: fast on short byte strings, seeded per process (keys
/// carry addresses that tenants choose).
pub type Hasher = foldhash::fast::RandomState;

/// What identifies a flow in OpenFlow: table, priority and match (strict semantics).
///
/// The match is held encoded (OXM TLVs in canonical order): a controller keeps a hundred
/// thousand of these, and the bytes are a fifth of the decoded fields' size, compare as
/// plain memory and sort for a deterministic diff. The bytes are shared (an owner's list
/// and the changes name the same key) and the hash is computed once.
#[derive(Debug, Clone)]
pub struct FlowKey {
    table: u8,
    priority: u16,
    hash: u64,
    oxms: Arc<[u8]>,
}

/// The seed of [`FlowKey`] hashes: per process, since keys carry addresses that tenants
/// choose.
static KEY_SEED: LazyLock<Hasher> = LazyLock::new(Hasher::default);

impl FlowKey {
    pub fn new(table: u8, priority: u16, m: Match) -> FlowKey {
        let m = canonical(m);
        encoded(
            |buf| m.encode_oxms(buf),
            |oxms| FlowKey {
                table,
                priority,
                hash: KEY_SEED.hash_one((table, priority, oxms)),
                oxms: oxms.into(),
            },
        )
    }

    pub fn table(&self) -> u8 {
        self.table
    }

    pub fn priority(&self) -> u16 {
        self.priority
    }

    /// The match, decoded (in canonical field order).
    pub fn match_(&self) -> Match {
        Match {
            // The bytes were encoded from a `Match` here: they always decode.
            fields: openflow::oxm::decode_oxms(&self.oxms).unwrap_or_default(),
        }
    }

    fn sort_key(&self) -> (u8, std::cmp::Reverse<u16>, &[u8]) {
        (self.table, std::cmp::Reverse(self.priority), &self.oxms)
    }
}

/// Encodes with `encode` into a buffer kept per thread and makes `make` of the bytes: one
/// exact allocation per key or body, where growing a fresh vector took several.
fn encoded<T>(encode: impl FnOnce(&mut Vec<u8>), make: impl FnOnce(&[u8]) -> T) -> T {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        encode(buf);
        make(buf)
    })
}

impl PartialEq for FlowKey {
    fn eq(&self, other: &FlowKey) -> bool {
        self.hash == other.hash
            && self.table == other.table
            && self.priority == other.priority
            && self.oxms == other.oxms
    }
}

impl Eq for FlowKey {}

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
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

/// What a flow does, and who made it. The instructions are held encoded, as the match is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowBody {
    pub cookie: u64,
    instructions: Box<[u8]>,
}

impl FlowBody {
    pub fn new(cookie: u64, instructions: &[Instruction]) -> FlowBody {
        encoded(
            |buf| openflow::instruction::encode_instructions(instructions, buf),
            |bytes| FlowBody {
                cookie,
                instructions: bytes.into(),
            },
        )
    }

    /// The instructions, decoded.
    pub fn instructions(&self) -> Vec<Instruction> {
        // Encoded here from instructions: they always decode.
        openflow::instruction::decode_instructions(&self.instructions).unwrap_or_default()
    }
}

/// A flow in a table, with the owner that compiled it (0 in a table read from a switch).
#[derive(Debug, Clone)]
struct Entry {
    body: FlowBody,
    owner: u32,
}

/// A set of flows keyed by table, priority and match: the desired state the apps compiled,
/// or the state read back from a switch.
#[derive(Debug, Clone, Default)]
pub struct FlowTable {
    flows: HashMap<FlowKey, Entry, Hasher>,
}

/// Tables are equal when they hold the same flows, whoever compiled them.
impl PartialEq for FlowTable {
    fn eq(&self, other: &FlowTable) -> bool {
        self.flows.len() == other.flows.len()
            && self
                .flows
                .iter()
                .all(|(k, e)| other.flows.get(k).is_some_and(|o| o.body == e.body))
    }
}

impl Eq for FlowTable {}

impl FlowTable {
    pub fn new() -> FlowTable {
        FlowTable::default()
    }

    /// Adds or replaces a flow; returns the body it replaced.
    pub fn insert(&mut self, key: FlowKey, body: FlowBody) -> Option<FlowBody> {
        self.insert_owned(key, body, 0).map(|(b, _)| b)
    }

    /// Adds or replaces the flow `owner` compiled; returns the body it replaced and its
    /// owner.
    pub(crate) fn insert_owned(
        &mut self,
        key: FlowKey,
        body: FlowBody,
        owner: u32,
    ) -> Option<(FlowBody, u32)> {
        self.flows
            .insert(key, Entry { body, owner })
            .map(|e| (e.body, e.owner))
    }

    /// The owner of the flow at `key`.
    pub(crate) fn owner(&self, key: &FlowKey) -> Option<u32> {
        self.flows.get(key).map(|e| e.owner)
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<FlowBody> {
        self.flows.remove(key).map(|e| e.body)
    }

    pub fn get(&self, key: &FlowKey) -> Option<&FlowBody> {
        self.flows.get(key).map(|e| &e.body)
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Makes room for `n` more flows.
    pub fn reserve(&mut self, n: usize) {
        self.flows.reserve(n);
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, &FlowBody)> {
        self.flows.iter().map(|(k, e)| (k, &e.body))
    }

    /// What turns `installed` into `self`: every flow missing or different is set (an add
    /// with the same table, priority and match replaces the flow, cookie included), every
    /// flow that should not be there is deleted. In [`sort_changes`] order.
    pub fn changes<'a>(&'a self, installed: &'a FlowTable) -> Vec<Change<'a>> {
        let adds = self
            .iter()
            .filter(|(k, b)| installed.get(k) != Some(*b))
            .map(|(k, b)| (k, Some(b)));
        let deletes = installed
            .flows
            .keys()
            .filter(|k| !self.flows.contains_key(*k))
            .map(|k| (k, None));
        let mut changes: Vec<_> = adds.chain(deletes).collect();
        sort_changes(&mut changes);
        changes
    }

    /// [`FlowTable::changes`] as flow-mods.
    pub fn diff(&self, installed: &FlowTable) -> Vec<FlowMod> {
        self.changes(installed).iter().map(flow_mod).collect()
    }

    /// Applies flow-mods as a switch would (adds and strict deletes only): what the
    /// installed table becomes after [`FlowTable::diff`] is sent.
    pub fn apply(&mut self, mods: &[FlowMod]) {
        for m in mods {
            let key = FlowKey::new(m.table_id, m.priority, m.match_.clone());
            match m.command {
                FlowModCommand::Add => {
                    self.insert(key, FlowBody::new(m.cookie, &m.instructions));
                }
                FlowModCommand::DeleteStrict => {
                    self.remove(&key);
                }
                _ => {}
            }
        }
    }
}

/// One flow to set (`Some`: an add, which replaces it) or to delete (`None`).
pub type Change<'a> = (&'a FlowKey, Option<&'a FlowBody>);

/// Puts changes in the order they are sent: adds first, then deletes, each in table,
/// priority and match order, so the result is deterministic.
pub fn sort_changes(changes: &mut [Change<'_>]) {
    changes.sort_unstable_by(|(a, x), (b, y)| {
        (x.is_none(), a.sort_key()).cmp(&(y.is_none(), b.sort_key()))
    });
}

/// The flow-mod of one change: an add, or a strict delete.
pub fn flow_mod((k, b): &Change<'_>) -> FlowMod {
    match b {
        Some(b) => FlowMod {
            cookie: b.cookie,
            match_: k.match_(),
            instructions: b.instructions(),
            ..FlowMod::add(k.table(), k.priority())
        },
        None => FlowMod {
            command: FlowModCommand::DeleteStrict,
            match_: k.match_(),
            ..FlowMod::add(k.table(), k.priority())
        },
    }
}

/// What a group is: its type and buckets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupBody {
    pub group_type: GroupType,
    pub buckets: Vec<Bucket>,
}

/// What a meter is: its flags and bands.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterBody {
    pub flags: u16,
    pub bands: Vec<MeterBand>,
}

/// Groups and meters by id, the switch state flows point at: desired, or read back from a
/// switch. (Meters ride with groups: both must exist before a flow names them and may go
/// only once no flow does.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupTable {
    groups: BTreeMap<u32, GroupBody>,
    meters: BTreeMap<u32, MeterBody>,
}

/// The group-mods and meter-mods that turn one group table into another, split by when
/// they may be sent: a group or meter must exist before a flow points at it and may go
/// only once no flow does (OVS deletes the flows of a deleted meter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupDiff {
    /// Adds and modifies: before the flow-mods.
    pub before: Vec<GroupMod>,
    /// Deletes: after the flow-mods.
    pub after: Vec<GroupMod>,
    /// Meter adds and modifies: before the flow-mods. A modify keeps the meter's flows
    /// (and the connections through them): how a rule change reaches a port.
    pub meters_before: Vec<MeterMod>,
    /// Meter deletes: after the flow-mods.
    pub meters_after: Vec<MeterMod>,
}

impl GroupDiff {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.before.len() + self.after.len() + self.meters_before.len() + self.meters_after.len()
    }
}

/// The meter-mod that makes meter `id` what `now` is (`before`: what it was), if any.
pub fn meter_mod(id: u32, before: Option<&MeterBody>, now: Option<&MeterBody>) -> Option<MeterMod> {
    let (command, body) = match (before, now) {
        (b, Some(n)) if b != Some(n) => (
            if b.is_some() {
                MeterModCommand::Modify
            } else {
                MeterModCommand::Add
            },
            n.clone(),
        ),
        (Some(_), None) => (
            MeterModCommand::Delete,
            MeterBody {
                flags: 0,
                bands: Vec::new(),
            },
        ),
        _ => return None,
    };
    Some(MeterMod {
        command,
        flags: body.flags,
        meter_id: id,
        bands: body.bands,
    })
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

    pub fn insert_meter(&mut self, id: u32, body: MeterBody) -> Option<MeterBody> {
        self.meters.insert(id, body)
    }

    pub fn remove_meter(&mut self, id: u32) -> Option<MeterBody> {
        self.meters.remove(&id)
    }

    pub fn meter(&self, id: u32) -> Option<&MeterBody> {
        self.meters.get(&id)
    }

    pub fn meters(&self) -> impl Iterator<Item = (u32, &MeterBody)> {
        self.meters.iter().map(|(id, b)| (*id, b))
    }

    /// Applies meter-mods as a switch would.
    pub fn apply_meters(&mut self, mods: &[MeterMod]) {
        for m in mods {
            match m.command {
                MeterModCommand::Add | MeterModCommand::Modify => {
                    self.meters.insert(
                        m.meter_id,
                        MeterBody {
                            flags: m.flags,
                            bands: m.bands.clone(),
                        },
                    );
                }
                MeterModCommand::Delete => {
                    self.meters.remove(&m.meter_id);
                }
            }
        }
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
        let ids: std::collections::BTreeSet<u32> = self
            .meters
            .keys()
            .chain(installed.meters.keys())
            .copied()
            .collect();
        for id in ids {
            let m = meter_mod(id, installed.meters.get(&id), self.meters.get(&id));
            match m {
                Some(m) if m.command == MeterModCommand::Delete => d.meters_after.push(m),
                Some(m) => d.meters_before.push(m),
                None => {}
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
            FlowBody::new(
                u64::from(port),
                &[Instruction::ApplyActions(vec![Action::output(out)])],
            ),
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
