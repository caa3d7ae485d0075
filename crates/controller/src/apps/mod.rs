//! The apps: pure functions from the local view (and the host's port numbers) to the flows
//! and groups they want. Every flow and group is compiled for one owner, the NB object it
//! comes from, so a change recompiles only the owners it affects; `Desired` keeps them by
//! owner.

pub mod arp;
pub mod dhcp;
pub mod l2;
pub mod l3;
pub mod nat;
pub mod nd;
pub mod port_security;
pub mod ports;
pub mod provider;
pub mod security_groups;
pub mod tunnel;

use crate::pipeline::{App, Cookie, may_goto, table};
use crate::reconcile::{
    FlowBody, FlowKey, FlowTable, GroupBody, GroupDiff, GroupTable, Hasher, flow_mod, sort_changes,
};
use crate::view::{Touched, View};
use model::Table;
use openflow::Instruction;
use openflow::flow::{FlowMod, GroupMod, GroupModCommand};
use openflow::oxm::Match;
use std::collections::{BTreeMap, HashMap};

/// What the host knows that the NB store does not: the OpenFlow port each plugged VM
/// interface got (from the OVSDB Interface watcher, by `iface-id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Host {
    /// Hashed, not ordered: every app of every local port looks its port up here.
    pub ofports: HashMap<String, u32, Hasher>,
    /// The OpenFlow port of this host's tunnel port of each type (`geneve`, `vxlan`, ...).
    pub tunnels: BTreeMap<String, u32>,
    /// The conntrack zone of each network with a local port, allocated on this host
    /// (`security_groups::assign_zones`).
    pub zones: BTreeMap<String, u16>,
    /// The OpenFlow port of the patch port to each mapped physical network's bridge.
    pub provider_ports: BTreeMap<String, u32>,
    /// MACs of next hops on external networks, by (network id, address), learnt from ARP.
    pub neighbours: BTreeMap<(String, std::net::IpAddr), [u8; 6]>,
}

/// The object a flow was compiled for.
pub type Owner = Touched;

/// One desired flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub key: FlowKey,
    pub body: FlowBody,
}

/// One desired group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: u32,
    pub body: GroupBody,
}

/// A flow in `table` at `priority`, cookie naming `app` and the object `key`.
pub fn flow(
    table: u8,
    priority: u16,
    m: Match,
    app: App,
    key: u32,
    instructions: impl AsRef<[Instruction]>,
) -> Flow {
    keyed_flow(FlowKey::new(table, priority, m), app, key, instructions)
}

/// [`flow`] with its key already made.
/// (Instructions by reference: an array made on the stack does as well as a vector.)
pub fn keyed_flow(
    flow_key: FlowKey,
    app: App,
    key: u32,
    instructions: impl AsRef<[Instruction]>,
) -> Flow {
    Flow {
        key: flow_key,
        body: FlowBody::new(Cookie { app, key }.encode(), instructions.as_ref()),
    }
}

/// Whether port `p` is this host's: plugged here (what the datapath knows, before the
/// binding has made its round trip through the store) or bound here.
pub fn is_local(view: &View, host: &Host, p: &model::Port) -> bool {
    host.ofports.contains_key(&p.meta.id) || p.binding_host_id == view.chassis
}

/// The owner of the flows every pipeline has whatever the topology.
pub fn base_owner() -> Owner {
    Touched {
        table: Table::Chassis,
        id: String::new(),
    }
}

/// All flows of one owner.
pub fn compile(view: &View, host: &Host, owner: &Owner) -> Vec<Flow> {
    match owner.table {
        Table::Chassis if owner.id.is_empty() => {
            let mut out = ports::base();
            out.extend(port_security::base());
            out.extend(nd::base());
            out.extend(security_groups::base());
            out
        }
        Table::Port => view
            .ports
            .get(&owner.id)
            .map(|p| {
                let mut out = ports::compile(view, host, p);
                out.extend(l2::compile(view, p));
                out.extend(arp::compile(view, p));
                out.extend(nd::compile(view, p));
                out.extend(port_security::compile(view, host, p));
                out.extend(tunnel::port(view, host, p));
                out.extend(dhcp::compile(view, host, p));
                out.extend(security_groups::port(view, host, p));
                out.extend(provider::port(view, host, p));
                out.extend(nat::port(view, host, p));
                out
            })
            .unwrap_or_default(),
        Table::Network => view
            .networks
            .get(&owner.id)
            .map(|n| {
                let mut out = tunnel::network(view, host, n);
                out.extend(l2::network(view, host, n));
                out.extend(provider::network(view, host, n));
                out.extend(nat::network(view, host, n));
                out.extend(security_groups::network(view, host, n));
                out.extend(dhcp::network(view, host, n));
                out
            })
            .unwrap_or_default(),
        Table::Router => view
            .routers
            .get(&owner.id)
            .map(|r| {
                let mut out = l3::compile(view, r);
                out.extend(nat::router(view, host, r));
                if l3::wanted(view, r) {
                    out.extend(security_groups::router(view, r));
                }
                out
            })
            .unwrap_or_default(),
        Table::FloatingIp => view
            .floating_ips
            .get(&owner.id)
            .map(|f| nat::floating_ip(view, host, f))
            .unwrap_or_default(),
        Table::SecurityGroupRule => view
            .rules
            .get(&owner.id)
            .map(security_groups::rule)
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// All groups of one owner.
pub fn compile_groups(view: &View, host: &Host, owner: &Owner) -> Vec<Group> {
    match owner.table {
        Table::Network => view
            .networks
            .get(&owner.id)
            .map(|n| l2::groups(view, host, n))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Every owner the view has flows for.
pub fn owners(view: &View) -> Vec<Owner> {
    std::iter::once(base_owner())
        .chain(view.networks.keys().map(|id| Touched {
            table: Table::Network,
            id: id.clone(),
        }))
        .chain(view.ports.keys().map(|id| Touched {
            table: Table::Port,
            id: id.clone(),
        }))
        .chain(view.routers.keys().map(|id| Touched {
            table: Table::Router,
            id: id.clone(),
        }))
        .chain(view.rules.keys().map(|id| Touched {
            table: Table::SecurityGroupRule,
            id: id.clone(),
        }))
        .chain(view.floating_ips.keys().map(|id| Touched {
            table: Table::FloatingIp,
            id: id.clone(),
        }))
        .collect()
}

/// The north-south owners: provider networks (whether this host serves one follows its
/// ports and routers) and floating IPs (whose flows follow their port, router and
/// networks). Few per host, so any change that may move them recompiles them all.
pub fn north_south(view: &View) -> Vec<Owner> {
    view.networks
        .values()
        .filter(|n| n.network_type.is_provider())
        .map(|n| Touched {
            table: Table::Network,
            id: n.meta.id.clone(),
        })
        .chain(view.floating_ips.keys().map(|id| Touched {
            table: Table::FloatingIp,
            id: id.clone(),
        }))
        .chain(
            view.routers
                .values()
                .filter(|r| r.external_gateway.is_some())
                .map(|r| Touched {
                    table: Table::Router,
                    id: r.meta.id.clone(),
                }),
        )
        .collect()
}

/// The owners that depend on what the host learnt of next hops' MACs.
pub fn neighbour_owners(view: &View) -> Vec<Owner> {
    north_south(view)
}

/// The owners whose flows depend on a changed object (the object itself among them).
pub fn affected(view: &View, touched: &Touched) -> Vec<Owner> {
    let mut out = affected_here(view, touched);
    if matches!(
        touched.table,
        Table::Network | Table::Port | Table::Router | Table::FloatingIp | Table::Subnet
    ) {
        out.extend(north_south(view));
        // The SNAT address port of this host is compiled as a port; it follows its
        // network's routers.
        out.extend(
            view.ports
                .values()
                .filter(|p| p.device_owner == nat::CHASSIS_SNAT && p.device_id == view.chassis)
                .map(|p| Touched {
                    table: Table::Port,
                    id: p.meta.id.clone(),
                }),
        );
    }
    out
}

fn affected_here(view: &View, touched: &Touched) -> Vec<Owner> {
    match touched.table {
        // A network's key and its ports' places in L2 come from it.
        Table::Network => std::iter::once(touched.clone())
            .chain(view.ports_of(&touched.id).map(|p| Touched {
                table: Table::Port,
                id: p.meta.id.clone(),
            }))
            .chain(routers_on(view, &touched.id))
            .collect(),
        // A port also decides whether its network has a port here (tunnel arrivals); the
        // view reports the network it left as touched too.
        Table::Port => {
            let mut out = vec![touched.clone()];
            out.extend(dhcp::affected_by_port(view, &touched.id));
            if let Some(p) = view.ports.get(&touched.id) {
                out.push(Touched {
                    table: Table::Network,
                    id: p.network_id.clone(),
                });
                out.extend(routers_on(view, &p.network_id));
            }
            out
        }
        // The ports bound to a chassis tunnel to its address, and their networks flood to it.
        Table::Chassis => {
            let bound = view
                .ports
                .values()
                .filter(|p| p.binding_host_id == touched.id);
            let networks: std::collections::BTreeSet<&str> =
                bound.clone().map(|p| p.network_id.as_str()).collect();
            bound
                .map(|p| Touched {
                    table: Table::Port,
                    id: p.meta.id.clone(),
                })
                .chain(networks.into_iter().map(|n| Touched {
                    table: Table::Network,
                    id: n.to_string(),
                }))
                .collect()
        }
        // A router's flows are all its own (its interfaces and routes are in it).
        Table::Router => vec![touched.clone()],
        // Whether a network has DHCP decides its local ports' DHCP flows.
        Table::Subnet => dhcp::affected_by_subnet(view, &touched.id),
        // A rule's conj_id flow; the view also reports the groups it belongs to and names.
        Table::SecurityGroupRule => vec![touched.clone()],
        Table::SecurityGroup => security_groups::affected_by_group(view, &touched.id),
        Table::FloatingIp => vec![touched.clone()],
        _ => Vec::new(),
    }
}

/// The routers with an interface on `network`, as owners (their host routes and whether
/// this host needs them follow the network's ports).
fn routers_on(view: &View, network: &str) -> Vec<Owner> {
    l3::routers_on(view, network)
        .map(|r| Touched {
            table: Table::Router,
            id: r.meta.id.clone(),
        })
        .collect()
}

/// What one owner compiled: its number in the flow table and the keys of its flows and
/// groups.
#[derive(Debug, Clone)]
struct Held {
    id: u32,
    keys: Vec<FlowKey>,
    groups: Vec<u32>,
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
            untracked: false,
        }
    }
}

impl Desired {
    /// Replaces the flows and groups of `owner` (none: the owner is gone). Group ids are
    /// network and router keys: one owner each.
    fn replace(&mut self, owner: &Owner, flows: Vec<Flow>, groups: Vec<Group>) {
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
                held.id
            }
            None => self.free_ids.pop().unwrap_or_else(|| {
                self.next_id += 1;
                self.next_id - 1
            }),
        };
        if flows.is_empty() && groups.is_empty() {
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
        self.by_owner.insert(
            owner.clone(),
            Held {
                id,
                keys,
                groups: ids,
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

    /// Recompiles `owners` (those [`affected`] by a change) from the view.
    pub fn update(&mut self, view: &View, host: &Host, owners: impl IntoIterator<Item = Owner>) {
        for o in owners {
            let flows = compile(view, host, &o);
            let groups = compile_groups(view, host, &o);
            self.replace(&o, flows, groups);
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
                let flows = compile(view, host, &o);
                let groups = compile_groups(view, host, &o);
                (o, flows, groups)
            })
            .collect();
        d.table
            .reserve(compiled.iter().map(|(_, f, _)| f.len()).sum());
        d.by_owner.reserve(compiled.len());
        for (o, flows, groups) in compiled {
            d.replace(&o, flows, groups);
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
        let dirty = std::mem::take(&mut self.dirty);
        let mut changes: Vec<_> = dirty
            .iter()
            .filter_map(|(k, before)| {
                let now = self.table.get(k);
                (now != before.as_ref()).then_some((k, now))
            })
            .collect();
        sort_changes(&mut changes);
        let mut groups = GroupDiff::default();
        for (id, before) in std::mem::take(&mut self.dirty_groups) {
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
        (changes.iter().map(flow_mod).collect(), groups)
    }

    /// Forgets the changes: the switch is to be brought up to date by comparing
    /// everything (after reading it back).
    pub fn forget_changes(&mut self) {
        self.dirty.clear();
        self.dirty_groups.clear();
    }
}

/// Checks a group against the pipeline declaration: a bucket may only resubmit to a
/// declared table.
pub fn check_group(g: &Group) -> Result<(), String> {
    for b in &g.body.buckets {
        for a in &b.actions {
            if let openflow::Action::Resubmit { table: t, .. } = a
                && table(*t).is_none()
            {
                return Err(format!("group {} resubmits to undeclared table {t}", g.id));
            }
        }
    }
    Ok(())
}

/// Checks a flow against the pipeline declaration: its table exists and every goto is
/// to a table it may continue to.
pub fn check(f: &Flow) -> Result<(), String> {
    let t = f.key.table();
    if table(t).is_none() {
        return Err(format!("flow in undeclared table {t}"));
    }
    for i in &f.body.instructions() {
        if let Instruction::GotoTable(n) = i
            && !may_goto(t, *n)
        {
            return Err(format!("table {t} may not go to table {n}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{removed, written};
    use model::fixtures::{self, network};
    use model::{Network, NetworkType, Port};
    use nbdb::Change;

    /// Port `id` with key `key` and MAC fa:16:3e:00:00:`mac`.
    fn port(id: &str, net: &str, host: &str, key: u32, mac: u8) -> Port {
        Port {
            unique_key: key,
            ..fixtures::port(id, net, mac.into(), host)
        }
    }

    fn subnet(id: &str, net: &str, enable_dhcp: bool) -> model::Subnet {
        model::Subnet {
            gateway_ip: None,
            enable_dhcp,
            ..fixtures::subnet(id, net, "10.0.0.0/24")
        }
    }

    /// Rule `r<n>` of group `g<g>`: kinds of rule by `kind` (remote group `g<kind>` for
    /// the first three).
    fn sg_rule(n: u64, g: u64, kind: u64) -> model::SecurityGroupRule {
        let direction = if n.is_multiple_of(2) {
            model::Direction::Ingress
        } else {
            model::Direction::Egress
        };
        model::SecurityGroupRule {
            protocol: Some("tcp".into()),
            protocol_number: Some(6),
            port_range_min: Some(20 + n as u16),
            port_range_max: Some(30),
            remote_ip_prefix: (kind == 3).then(|| "10.0.0.0/24".parse().unwrap()),
            remote_group_id: (kind < 3).then(|| format!("g{kind}")),
            ..fixtures::security_group_rule(&format!("r{n}"), &format!("g{g}"), direction)
        }
    }

    #[test]
    fn every_flow_fits_the_pipeline() {
        let mut v = View::new("h");
        v.apply(&written(&network("n", 1), 1));
        v.apply(&written(&port("a", "n", "h", 1, 1), 2));
        v.apply(&written(&port("b", "n", "other", 2, 2), 3));
        let host = Host {
            ofports: [("a".to_string(), 5)].into_iter().collect(),
            ..Host::default()
        };
        let d = Desired::full(&v, &host);
        assert!(d.table().len() >= 6, "{:?}", d.table());
        assert_eq!(d.groups().len(), 2, "the network's two flood groups");
        for (id, body) in d.groups().iter() {
            check_group(&Group {
                id,
                body: body.clone(),
            })
            .unwrap();
        }
        for (key, body) in d.table().iter() {
            check(&Flow {
                key: key.clone(),
                body: body.clone(),
            })
            .unwrap();
        }
        // The remote port has an L2 entry but no classification or dispatch.
        let remote_flows = compile(
            &v,
            &host,
            &Touched {
                table: Table::Port,
                id: "b".into(),
            },
        );
        assert_eq!(remote_flows.len(), 1);
        assert_eq!(remote_flows[0].key.table(), table::L2);
    }

    /// The port's address in network `n<k>` (10.0.k.0/24; n3 is another project's 10.0.0.0/24,
    /// overlapping n0), as the API would give it.
    fn with_address(mut p: Port, k: u64, n: u64) -> Port {
        p.fixed_ips = vec![fixtures::fixed_ip(
            &format!("s{k}"),
            &format!("10.0.{}.{}", k % 3, 10 + n),
        )];
        p
    }

    /// Router r0 or r1 with interfaces on some of n0..n2 and maybe an extra route.
    fn random_router(rnd: &mut impl FnMut(u64) -> u64) -> model::Router {
        let which = rnd(2);
        let interfaces = (0..3u64)
            .filter(|_| rnd(2) == 0)
            .map(|k| model::RouterInterface {
                port_id: format!("rp{which}-{k}"),
                subnet_id: format!("s{k}"),
                network_id: format!("n{k}"),
                ip_address: format!("10.0.{k}.1").parse().unwrap(),
                cidr: format!("10.0.{k}.0/24").parse().unwrap(),
                mac_address: model::MacAddr([0xfa, 0x16, 0x3f, which as u8, k as u8, 1]),
            })
            .collect();
        let routes = (rnd(2) == 0)
            .then(|| model::HostRoute {
                destination: "10.9.0.0/16".parse().unwrap(),
                nexthop: format!("10.0.{}.{}", rnd(3), 10 + rnd(12)).parse().unwrap(),
            })
            .into_iter()
            .collect();
        // Sometimes a gateway on the external network, with or without SNAT.
        let external_gateway = (rnd(2) == 0).then(|| model::ExternalGateway {
            network_id: "ext".into(),
            enable_snat: rnd(2) == 0,
            external_fixed_ips: vec![fixtures::fixed_ip(
                "sext",
                &format!("203.0.113.{}", 2 + which),
            )],
            port_id: format!("gw{which}"),
        });
        model::Router {
            external_gateway,
            routes,
            interfaces,
            ..fixtures::router(&format!("r{which}"), 50 + which as u32)
        }
    }

    /// A switch that is sent only what changed since the last time.
    #[derive(Default)]
    struct Sent {
        flows: FlowTable,
        groups: GroupTable,
    }

    impl Sent {
        fn follow(&mut self, d: &mut Desired) {
            let (mods, groups) = d.take_changes();
            self.flows.apply(&mods);
            self.groups.apply(&groups.before);
            self.groups.apply(&groups.after);
            assert_eq!(&self.flows, d.table(), "flows sent by difference");
            assert_eq!(&self.groups, d.groups(), "groups sent by difference");
        }
    }

    #[test]
    fn incremental_equals_full_after_random_changes() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut v = View::new("h");
        let mut host = Host {
            tunnels: [("geneve".to_string(), 99)].into(),
            provider_ports: [("physnet1".to_string(), 77)].into(),
            neighbours: [(
                ("ext".to_string(), "203.0.113.1".parse().unwrap()),
                [2, 0, 0, 0, 0, 1],
            )]
            .into(),
            ..Host::default()
        };
        // The external network (flat on physnet1), its subnet, and this host's SNAT port.
        let ext = Network {
            external: true,
            network_type: NetworkType::Flat,
            physical_network: Some("physnet1".into()),
            segmentation_id: None,
            ..network("ext", 40)
        };
        v.apply(&written(&ext, 900));
        let sext = model::Subnet {
            enable_dhcp: false,
            ..fixtures::subnet("sext", "ext", "203.0.113.0/24")
        };
        v.apply(&written(&sext, 901));
        let mut snat = port("snat-h", "ext", "h", 90, 90);
        snat.device_owner = nat::CHASSIS_SNAT.into();
        snat.device_id = "h".into();
        snat.fixed_ips = vec![fixtures::fixed_ip("sext", "203.0.113.20")];
        v.apply(&written(&snat, 902));
        let mut fip_ports = 0;
        for (rev, name) in [(1000, "h"), (1001, "o")] {
            let c = fixtures::chassis(name, "192.0.2.1");
            v.apply(&Change {
                revision: rev,
                table: "chassis".into(),
                id: name.into(),
                topic: None,
                value: Some(serde_json::to_vec(&c).unwrap()),
            });
        }
        let mut d = Desired::default();
        d.update(&v, &host, owners(&v));
        // A switch kept up to date with only what changed ends equal to the desired state.
        let mut sent = Sent::default();
        sent.follow(&mut d);
        let mut routed = 0;
        let (mut seen_clauses, mut seen_rule) = ([false; 2], false);
        let mut nated = 0;
        // Port keys, MACs and port numbers are unique per port, as the API and OVS make them.
        for rev in 1..1000 {
            let n = rnd(12);
            let id = format!("x{n}");
            // n3 overlaps n0: the same addresses on two networks, as two projects have them.
            let k = rnd(4);
            let net = format!("n{k}");
            let change = match rnd(17) {
                // Floating IPs come, move between ports and routers, and go.
                14 => {
                    let f = model::FloatingIp {
                        meta: fixtures::meta(&format!("f{}", rnd(3))),
                        floating_network_id: "ext".into(),
                        floating_ip_address: format!("203.0.113.{}", 30 + n).parse().unwrap(),
                        floating_subnet_id: "sext".into(),
                        floating_port_id: format!("fp{n}"),
                        port_id: Some(id.clone()),
                        fixed_ip_address: Some(
                            format!("10.0.{}.{}", k % 3, 10 + n).parse().unwrap(),
                        ),
                        router_id: Some(format!("r{}", rnd(2))),
                    };
                    let mut fp = port(&format!("fp{n}"), "ext", "", 60 + n as u32, 60 + n as u8);
                    fp.device_owner = model::owner::FLOATING_IP.into();
                    fip_ports += 1;
                    let touched = v.apply(&written(&fp, rev));
                    let todo: Vec<Owner> = touched.iter().flat_map(|t| affected(&v, t)).collect();
                    d.update(&v, &host, todo);
                    written(&f, rev)
                }
                15 => removed("floatingip", &format!("f{}", rnd(3)), rev),
                // Routers come and go with interfaces on random networks and a route.
                6 => written(&random_router(&mut rnd), rev),
                7 => removed("router", &format!("r{}", rnd(2)), rev),
                // Security group rules come and go; ports hold random groups (below).
                12 => written(&sg_rule(rnd(6), rnd(3), rnd(4)), rev),
                13 => removed("secgroup_rule", &format!("r{}", rnd(6)), rev),
                // Network keys (and segmentation ids) are unique and never change.
                0 => written(&network(&net, 1 + k as u32), rev),
                1 => removed("network", &net, rev),
                2 | 3 => {
                    let mut p = with_address(
                        port(
                            &id,
                            &net,
                            if rnd(2) == 0 { "h" } else { "o" },
                            1 + n as u32,
                            n as u8,
                        ),
                        k,
                        n,
                    );
                    p.security_groups = (0..3)
                        .filter(|_| rnd(2) == 0)
                        .map(|g| format!("g{g}"))
                        .collect();
                    p.port_security_enabled = rnd(4) != 0;
                    // Sometimes another port's address (of this network or an overlapping
                    // one) as an allowed address pair, as a VM on a shared network may claim.
                    if rnd(3) == 0 {
                        p.allowed_address_pairs = vec![model::AddressPair {
                            ip_address: format!("10.0.{}.{}/32", rnd(3), 10 + rnd(12))
                                .parse()
                                .unwrap(),
                            mac_address: p.mac_address,
                        }];
                    }
                    written(&p, rev)
                }
                4 => removed("port", &id, rev),
                // The other host moves its tunnel endpoint (or registers anew).
                5 => {
                    let c = fixtures::chassis("o", &format!("192.0.2.{}", 10 + rnd(3)));
                    Change {
                        revision: rev,
                        table: "chassis".into(),
                        id: "o".into(),
                        topic: None,
                        value: Some(serde_json::to_vec(&c).unwrap()),
                    }
                }
                // DHCP flows follow the network's subnets and their enable_dhcp.
                8 => written(&subnet(&format!("s{k}"), &net, rnd(2) == 0), rev),
                9 => removed("subnet", &format!("s{k}"), rev),
                10 => written(
                    &Network {
                        subnets: vec![format!("s{k}")],
                        ..network(&net, 1 + k as u32)
                    },
                    rev,
                ),
                // A DHCP port: its addresses are in its network's local ports' flows.
                11 => written(
                    &Port {
                        device_owner: model::owner::DHCP.into(),
                        // Addresses are unique per network, as the API makes them.
                        fixed_ips: vec![fixtures::fixed_ip(
                            &format!("s{k}"),
                            &format!("10.0.{k}.{}", 100 + n),
                        )],
                        ..port(&id, &net, "", 1 + n as u32, n as u8)
                    },
                    rev,
                ),
                _ => {
                    // The interface is plugged or unplugged on this host.
                    if rnd(2) == 0 {
                        host.ofports.insert(id.clone(), 100 + n as u32);
                    } else {
                        host.ofports.remove(&id);
                    }
                    let t = Touched {
                        table: Table::Port,
                        id,
                    };
                    let mut todo = affected(&v, &t);
                    todo.extend(security_groups::assign_zones(&v, &mut host).touched);
                    d.update(&v, &host, todo);
                    sent.follow(&mut d);
                    let full = Desired::full(&v, &host);
                    assert_eq!(d.table(), full.table(), "after host change at {rev}");
                    assert_eq!(
                        d.groups(),
                        full.groups(),
                        "groups after host change at {rev}"
                    );
                    continue;
                }
            };
            let mut todo: Vec<Owner> = v
                .apply(&change)
                .iter()
                .flat_map(|t| affected(&v, t))
                .collect();
            todo.push(base_owner());
            todo.extend(security_groups::assign_zones(&v, &mut host).touched);
            d.update(&v, &host, todo);
            sent.follow(&mut d);
            let full = Desired::full(&v, &host);
            assert!(
                d.table() == full.table(),
                "after change {rev} ({} {}): to reach a full compile: {:?}",
                change.table,
                change.id,
                full.table().diff(d.table())
            );
            // The changes reach conjunctions (both clauses) and plain rule flows.
            for (k, b) in d.table().iter() {
                if let Some(Instruction::ApplyActions(a)) = b.instructions().first() {
                    for act in a {
                        if let openflow::Action::Conjunction { clause, .. } = act {
                            seen_clauses[usize::from(*clause).min(1)] = true;
                        }
                    }
                }
                seen_rule |= k.table() == table::INGRESS_SG && k.priority() == 100;
            }
            assert_eq!(
                d.groups(),
                full.groups(),
                "groups after change {rev}: {change:?}"
            );
            routed += d
                .table()
                .iter()
                .filter(|(k, _)| k.table() == table::L3)
                .count();
            nated += d
                .table()
                .iter()
                .filter(|(k, _)| k.table() == table::EGRESS_NAT)
                .count();
        }
        assert!(routed > 500, "routers were exercised: {routed}");
        assert!(
            seen_clauses == [true, true] && seen_rule,
            "security groups exercised: clauses {seen_clauses:?}, rule {seen_rule}"
        );
        assert!(fip_ports > 10, "floating IPs were exercised: {fip_ports}");
        assert!(nated > 50, "north-south flows were exercised: {nated}");
    }
}
