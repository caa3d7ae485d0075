//! The host's local view of the NB model: the objects its ports need, kept up to date from
//! the store's snapshot and change stream, with the indexes the apps look things up by.
//! Sans-IO: changes go in, the keys of what changed come out.

use model::{
    AddressGroup, Chassis, FloatingIp, McastGroup, NbObject, Network, Port, QosPolicy, Router,
    SecurityGroup, SecurityGroupRule, Subnet, Table, Trunk,
};
use model::{FirewallGroup, FirewallPolicy, FirewallRule, LoadBalancer, TapFlow, TapService};
use nbdb::{Change, Record, Revision, Snapshot};
use std::collections::{BTreeMap, BTreeSet};

/// One object that changed (was added, updated or removed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Touched {
    pub table: Table,
    pub id: String,
}

/// The objects of one table by id.
pub type Objects<T> = BTreeMap<String, T>;

/// Everything this host knows of the NB model.
#[derive(Debug, Default)]
pub struct View {
    /// This host's chassis name (ports with this `binding:host_id` are local).
    pub chassis: String,
    pub revision: Revision,
    pub networks: Objects<Network>,
    pub subnets: Objects<Subnet>,
    pub ports: Objects<Port>,
    pub routers: Objects<Router>,
    pub floating_ips: Objects<FloatingIp>,
    pub security_groups: Objects<SecurityGroup>,
    pub rules: Objects<SecurityGroupRule>,
    pub address_groups: Objects<AddressGroup>,
    pub chassis_by_name: Objects<Chassis>,
    /// Trunks of the followed networks' parent ports.
    pub trunks: Objects<Trunk>,
    /// Multicast group memberships of the followed networks, by `network/chassis/group`.
    pub mcast_groups: Objects<McastGroup>,
    /// QoS policies of local ports and of their networks (followed by their project).
    pub qos_policies: Objects<QosPolicy>,
    /// The trunk of each port in one (parent or subport).
    trunk_by_port: BTreeMap<String, String>,
    /// Load balancers with their VIP on a followed network.
    pub loadbalancers: Objects<LoadBalancer>,
    /// Port chains on a followed network (service function chaining).
    pub port_chains: Objects<model::PortChain>,
    /// FWaaS v2: rules, policies and groups of the followed projects (`fwaas`).
    pub fw_rules: Objects<FirewallRule>,
    pub fw_policies: Objects<FirewallPolicy>,
    pub fw_groups: Objects<FirewallGroup>,
    /// Tap services on followed networks and tap flows from them (`taas`).
    pub tap_services: Objects<TapService>,
    pub tap_flows: Objects<TapFlow>,
    /// The firewall group of each port in one.
    fw_group_by_port: BTreeMap<String, String>,
    /// Ports of each network.
    ports_by_network: BTreeMap<String, BTreeSet<String>>,
    /// Ports holding each security group.
    ports_by_group: BTreeMap<String, BTreeSet<String>>,
    /// Rules of each security group.
    rules_by_group: BTreeMap<String, BTreeSet<String>>,
    /// Groups whose members changed (joined, left or changed address) since
    /// [`View::take_membership`].
    membership: BTreeSet<String>,
    /// Topics added by [`View::merge`], at the snapshot's revision: the stream, resumed
    /// from before it, brings their older changes again, which the snapshot already holds.
    merged_at: BTreeMap<String, Revision>,
}

fn decode<T: serde::de::DeserializeOwned>(table: &str, id: &str, value: &[u8]) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(v) => Some(v),
        Err(e) => {
            // One bad object must not stop the host: it is skipped, and named.
            tracing::error!(table, id, error = %e, "undecodable NB object skipped");
            None
        }
    }
}

fn set<T: serde::de::DeserializeOwned>(
    map: &mut Objects<T>,
    table: &str,
    id: &str,
    value: Option<&[u8]>,
) -> bool {
    match value {
        Some(v) => match decode(table, id, v) {
            Some(obj) => {
                map.insert(id.to_string(), obj);
                true
            }
            None => map.remove(id).is_some(),
        },
        None => map.remove(id).is_some(),
    }
}

impl View {
    pub fn new(chassis: &str) -> View {
        View {
            chassis: chassis.to_string(),
            ..View::default()
        }
    }

    /// Replaces the whole view with a snapshot; returns every object that differs.
    pub fn load(&mut self, snap: &Snapshot) -> Vec<Touched> {
        let mut fresh = View::new(&self.chassis);
        for r in &snap.records {
            fresh.set(&r.table, &r.id, Some(&r.value));
        }
        fresh.revision = snap.revision;
        let mut touched = self.differences(&fresh);
        // The groups of changed rules, before and after, and the groups whose members
        // changed (as `apply` reports them); the ports of changed trunks and firewall
        // groups, before and after.
        let mut groups = BTreeSet::new();
        let mut ports = BTreeSet::new();
        fresh.membership = std::mem::take(&mut self.membership);
        for t in &touched {
            match t.table {
                Table::SecurityGroupRule => {
                    groups.extend(self.rule_groups(&t.id));
                    groups.extend(fresh.rule_groups(&t.id));
                }
                Table::AddressGroup => groups.extend(fresh.groups_naming_address_group(&t.id)),
                Table::Trunk => {
                    ports.extend(self.trunk_ports(&t.id));
                    ports.extend(fresh.trunk_ports(&t.id));
                }
                // A port's firewall flows follow its group (`fwaas`).
                Table::FirewallGroup => {
                    ports.extend(self.fw_group_ports(&t.id));
                    ports.extend(fresh.fw_group_ports(&t.id));
                }
                // A port's copies follow the tap flows from it and the services on it.
                Table::TapFlow | Table::TapService => {
                    ports.extend(self.tap_port(t.table, &t.id));
                    ports.extend(fresh.tap_port(t.table, &t.id));
                }
                Table::Port => fresh.membership.extend(membership_changes(
                    self.ports.get(&t.id),
                    fresh.ports.get(&t.id),
                )),
                _ => {}
            }
        }
        touched.extend(groups.into_iter().map(|id| Touched {
            table: Table::SecurityGroup,
            id,
        }));
        touched.extend(ports.into_iter().map(|id| Touched {
            table: Table::Port,
            id,
        }));
        *self = fresh;
        touched
    }

    /// Applies one change from the stream; returns what it touched (nothing for tables the
    /// controller does not use, such as claims). A port that leaves a network touches that
    /// network too; a rule touches its group and the group it names as remote (their
    /// holders' and members' flows follow it). A port joining or leaving a group touches
    /// no group: no other port's flows depend on who the members are, only what their
    /// connections may be cut for (see [`View::take_membership`]).
    pub fn apply(&mut self, c: &Change) -> Vec<Touched> {
        self.revision = self.revision.max(c.revision);
        if !self.merged_at.is_empty() {
            let merged = c
                .topic
                .as_ref()
                .and_then(|t| self.merged_at.get(t))
                .is_some_and(|at| c.revision <= *at);
            let now = self.revision;
            // Past a snapshot's revision the stream brings only what it did not hold.
            self.merged_at.retain(|_, at| *at >= now);
            if merged {
                return Vec::new();
            }
        }
        self.put(c.revision, &c.table, &c.id, c.value.as_deref())
    }

    /// Adds a snapshot of topics the view did not hold (`new`; its other objects, which the
    /// stream keeps current, are left as they are); returns what it added.
    pub fn merge(&mut self, snap: &Snapshot, new: &BTreeSet<String>) -> Vec<Touched> {
        let revision = self.revision;
        let mut touched = Vec::new();
        for r in &snap.records {
            if r.topic.as_ref().is_some_and(|t| new.contains(t)) {
                touched.extend(self.put(snap.revision, &r.table, &r.id, Some(&r.value)));
            }
        }
        // The rest of the view is only as current as the stream that kept it.
        self.revision = revision;
        self.merged_at
            .extend(new.iter().map(|t| (t.clone(), snap.revision)));
        touched
    }

    /// Sets (or, without a value, removes) one object; returns what that touched.
    fn put(
        &mut self,
        revision: Revision,
        name: &str,
        id: &str,
        value: Option<&[u8]>,
    ) -> Vec<Touched> {
        self.revision = self.revision.max(revision);
        let Some(table) = Table::from_name(name) else {
            return Vec::new();
        };
        let old_port = (table == Table::Port)
            .then(|| self.ports.get(id).cloned())
            .flatten();
        let rule_groups_before = self.rule_groups(id);
        let trunk_ports_before = self.trunk_ports(id);
        let fw_ports_before = match table {
            Table::FirewallGroup => self.fw_group_ports(id),
            _ => Vec::new(),
        };
        let tap_port_before = self.tap_port(table, id);
        if !self.set(name, id, value) {
            return Vec::new();
        }
        let mut out = vec![Touched {
            table,
            id: id.to_string(),
        }];
        match table {
            Table::Port => {
                if let Some(n) = old_port.as_ref().map(|p| &p.network_id)
                    && self.ports.get(id).is_none_or(|p| p.network_id != *n)
                {
                    out.push(Touched {
                        table: Table::Network,
                        id: n.clone(),
                    });
                }
                // A DHCP port's addresses are in its network's other ports' flows (their
                // renewals reach it): once it is gone, moved or renumbered, those ports
                // are recompiled from here, where the old port is still known.
                if let Some(old) = old_port.as_ref().filter(|o| {
                    o.device_owner == model::owner::DHCP
                        && self.ports.get(id).is_none_or(|p| {
                            p.device_owner != o.device_owner
                                || p.network_id != o.network_id
                                || p.fixed_ips != o.fixed_ips
                        })
                }) {
                    out.extend(self.ports_of(&old.network_id).map(|p| Touched {
                        table: Table::Port,
                        id: p.meta.id.clone(),
                    }));
                }
                let changed = membership_changes(old_port.as_ref(), self.ports.get(id));
                self.membership.extend(changed);
            }
            Table::SecurityGroupRule => {
                let groups: BTreeSet<String> = rule_groups_before
                    .into_iter()
                    .chain(self.rule_groups(id))
                    .collect();
                out.extend(groups.into_iter().map(|id| Touched {
                    table: Table::SecurityGroup,
                    id,
                }));
            }
            // Its parent's and subports' flows (and which subports are wired) follow it.
            Table::Trunk => {
                let ports: BTreeSet<String> = trunk_ports_before
                    .into_iter()
                    .chain(self.trunk_ports(id))
                    .collect();
                out.extend(ports.into_iter().map(|id| Touched {
                    table: Table::Port,
                    id,
                }));
            }
            // The ports it held and holds: their firewall flows follow it.
            Table::FirewallGroup => {
                let ports: BTreeSet<String> = fw_ports_before
                    .into_iter()
                    .chain(self.fw_group_ports(id))
                    .collect();
                out.extend(ports.into_iter().map(|id| Touched {
                    table: Table::Port,
                    id,
                }));
            }
            // The source port of a flow, the port of a service: they compile the copies.
            Table::TapFlow | Table::TapService => {
                out.extend(self.tap_ports_touched(table, id, tap_port_before));
            }
            // Its addresses are matched in the rules that name it: their groups change.
            Table::AddressGroup => {
                out.extend(
                    self.groups_naming_address_group(id)
                        .into_iter()
                        .map(|id| Touched {
                            table: Table::SecurityGroup,
                            id,
                        }),
                );
            }
            _ => {}
        }
        out
    }

    /// The ports of trunk `id` (parent first), if the view holds it.
    fn trunk_ports(&self, id: &str) -> Vec<String> {
        self.trunks
            .get(id)
            .map(|t| {
                std::iter::once(t.port_id.clone())
                    .chain(t.sub_ports.iter().map(|s| s.port_id.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The trunk port `id` is in (as its parent or a subport).
    pub fn trunk_of(&self, id: &str) -> Option<&Trunk> {
        self.trunks.get(self.trunk_by_port.get(id)?)
    }

    /// The groups with a rule whose remote end is address group `ag`.
    fn groups_naming_address_group(&self, ag: &str) -> BTreeSet<String> {
        self.rules
            .values()
            .filter(|r| r.remote_address_group_id.as_deref() == Some(ag))
            .map(|r| r.security_group_id.clone())
            .collect()
    }

    /// The groups whose members changed since the last call: what conntrack cuts follow
    /// (`security_groups::Cuts`).
    pub fn take_membership(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.membership)
    }

    /// A rule's group and remote group.
    fn rule_groups(&self, id: &str) -> BTreeSet<String> {
        self.rules
            .get(id)
            .map(|r| {
                std::iter::once(r.security_group_id.clone())
                    .chain(r.remote_group_id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn set(&mut self, table: &str, id: &str, value: Option<&[u8]>) -> bool {
        match Table::from_name(table) {
            Some(Table::Network) => set(&mut self.networks, table, id, value),
            Some(Table::Subnet) => set(&mut self.subnets, table, id, value),
            Some(Table::Port) => {
                if let Some(old) = self.ports.get(id)
                    && let Some(s) = self.ports_by_network.get_mut(&old.network_id)
                {
                    s.remove(id);
                }
                if let Some(old) = self.ports.get(id) {
                    for g in &old.security_groups {
                        if let Some(s) = self.ports_by_group.get_mut(g) {
                            s.remove(id);
                        }
                    }
                }
                let changed = set(&mut self.ports, table, id, value);
                if let Some(p) = self.ports.get(id) {
                    self.ports_by_network
                        .entry(p.network_id.clone())
                        .or_default()
                        .insert(id.to_string());
                    for g in &p.security_groups {
                        self.ports_by_group
                            .entry(g.clone())
                            .or_default()
                            .insert(id.to_string());
                    }
                }
                changed
            }
            Some(Table::Router) => set(&mut self.routers, table, id, value),
            Some(Table::FloatingIp) => set(&mut self.floating_ips, table, id, value),
            Some(Table::SecurityGroup) => set(&mut self.security_groups, table, id, value),
            Some(Table::SecurityGroupRule) => {
                if let Some(old) = self.rules.get(id)
                    && let Some(s) = self.rules_by_group.get_mut(&old.security_group_id)
                {
                    s.remove(id);
                }
                let changed = set(&mut self.rules, table, id, value);
                if let Some(r) = self.rules.get(id) {
                    self.rules_by_group
                        .entry(r.security_group_id.clone())
                        .or_default()
                        .insert(id.to_string());
                }
                changed
            }
            Some(Table::Chassis) => set(&mut self.chassis_by_name, table, id, value),
            Some(Table::LoadBalancer) => set(&mut self.loadbalancers, table, id, value),
            Some(Table::SfcPortChain) => set(&mut self.port_chains, table, id, value),
            Some(Table::AddressGroup) => set(&mut self.address_groups, table, id, value),
            Some(Table::McastGroup) => set(&mut self.mcast_groups, table, id, value),
            Some(Table::Trunk) => {
                for p in self.trunk_ports(id) {
                    if self.trunk_by_port.get(&p).is_some_and(|t| t == id) {
                        self.trunk_by_port.remove(&p);
                    }
                }
                let changed = set(&mut self.trunks, table, id, value);
                for p in self.trunk_ports(id) {
                    self.trunk_by_port.insert(p, id.to_string());
                }
                changed
            }
            Some(Table::QosPolicy) => set(&mut self.qos_policies, table, id, value),
            Some(Table::FirewallRule) => set(&mut self.fw_rules, table, id, value),
            Some(Table::FirewallPolicy) => set(&mut self.fw_policies, table, id, value),
            Some(Table::FirewallGroup) => self.set_fw_group(id, value),
            Some(Table::TapService) => set(&mut self.tap_services, table, id, value),
            Some(Table::TapFlow) => set(&mut self.tap_flows, table, id, value),
            Some(
                Table::Claim
                | Table::RbacPolicy
                | Table::SubnetPool
                | Table::AddressScope
                | Table::DefaultSecurityGroupRule
                | Table::BgpSpeaker
                | Table::BgpPeer
                | Table::SfcPortPair
                | Table::SfcPortPairGroup
                | Table::SfcFlowClassifier,
            )
            | None => false,
        }
    }

    /// Objects present in only one of the views, or different in both.
    fn differences(&self, other: &View) -> Vec<Touched> {
        fn diff<T: PartialEq>(
            table: Table,
            a: &Objects<T>,
            b: &Objects<T>,
            out: &mut Vec<Touched>,
        ) {
            let ids: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for id in ids {
                if a.get(id) != b.get(id) {
                    out.push(Touched {
                        table,
                        id: id.clone(),
                    });
                }
            }
        }
        let mut out = Vec::new();
        diff(Table::Network, &self.networks, &other.networks, &mut out);
        diff(Table::Subnet, &self.subnets, &other.subnets, &mut out);
        diff(Table::Port, &self.ports, &other.ports, &mut out);
        diff(Table::Router, &self.routers, &other.routers, &mut out);
        diff(
            Table::FloatingIp,
            &self.floating_ips,
            &other.floating_ips,
            &mut out,
        );
        diff(
            Table::SecurityGroup,
            &self.security_groups,
            &other.security_groups,
            &mut out,
        );
        diff(
            Table::SecurityGroupRule,
            &self.rules,
            &other.rules,
            &mut out,
        );
        diff(
            Table::AddressGroup,
            &self.address_groups,
            &other.address_groups,
            &mut out,
        );
        diff(
            Table::Chassis,
            &self.chassis_by_name,
            &other.chassis_by_name,
            &mut out,
        );
        diff(Table::Trunk, &self.trunks, &other.trunks, &mut out);
        diff(
            Table::McastGroup,
            &self.mcast_groups,
            &other.mcast_groups,
            &mut out,
        );
        diff(
            Table::LoadBalancer,
            &self.loadbalancers,
            &other.loadbalancers,
            &mut out,
        );
        diff(
            Table::QosPolicy,
            &self.qos_policies,
            &other.qos_policies,
            &mut out,
        );
        diff(
            Table::SfcPortChain,
            &self.port_chains,
            &other.port_chains,
            &mut out,
        );
        diff(
            Table::FirewallRule,
            &self.fw_rules,
            &other.fw_rules,
            &mut out,
        );
        diff(
            Table::FirewallPolicy,
            &self.fw_policies,
            &other.fw_policies,
            &mut out,
        );
        diff(
            Table::FirewallGroup,
            &self.fw_groups,
            &other.fw_groups,
            &mut out,
        );
        diff(
            Table::TapService,
            &self.tap_services,
            &other.tap_services,
            &mut out,
        );
        diff(Table::TapFlow, &self.tap_flows, &other.tap_flows, &mut out);
        out
    }

    /// The multicast group memberships of a network (every host's).
    pub fn mcast_groups_of<'a>(
        &'a self,
        network: &str,
    ) -> impl Iterator<Item = &'a McastGroup> + use<'a> {
        let prefix = format!("{network}/");
        self.mcast_groups
            .range(prefix.clone()..)
            .take_while(move |(id, _)| id.starts_with(&prefix))
            .map(|(_, r)| r)
    }

    /// The ports of a network.
    pub fn ports_of(&self, network: &str) -> impl Iterator<Item = &Port> {
        self.ports_by_network
            .get(network)
            .into_iter()
            .flatten()
            .filter_map(|id| self.ports.get(id))
    }

    /// The ports holding a security group.
    pub fn ports_in_group(&self, group: &str) -> impl Iterator<Item = &Port> {
        self.ports_by_group
            .get(group)
            .into_iter()
            .flatten()
            .filter_map(|id| self.ports.get(id))
    }

    /// The rules of a security group.
    pub fn rules_of(&self, group: &str) -> impl Iterator<Item = &SecurityGroupRule> {
        self.rules_by_group
            .get(group)
            .into_iter()
            .flatten()
            .filter_map(|id| self.rules.get(id))
    }

    /// The QoS policy that applies to a port: its own, else its network's.
    pub fn qos_policy_of<'a>(&'a self, p: &'a Port) -> Option<&'a str> {
        p.qos_policy_id.as_deref().or_else(|| {
            self.networks
                .get(&p.network_id)
                .and_then(|n| n.qos_policy_id.as_deref())
        })
    }

    /// Ports bound to this host.
    pub fn local_ports(&self) -> impl Iterator<Item = &Port> {
        self.ports
            .values()
            .filter(|p| p.binding_host_id == self.chassis)
    }

    /// The topics this host must follow: the networks of its ports (everything on them
    /// comes with the network's topic), the projects of their security groups and of the
    /// groups those name as remote groups, and, through the routers on those networks, the
    /// routers' projects and the networks behind them.
    pub fn topics(&self) -> BTreeSet<String> {
        let mut topics = BTreeSet::new();
        let mut networks: BTreeSet<&str> = BTreeSet::new();
        for p in self.local_ports() {
            networks.insert(&p.network_id);
            // A trunk's parent here brings its subports' networks: they are wired here.
            if let Some(t) = self.trunk_of(&p.meta.id).filter(|t| t.port_id == p.meta.id) {
                networks.extend(t.sub_ports.iter().map(|s| s.network_id.as_str()));
            }
            if let Some(q) = self
                .qos_policy_of(p)
                .and_then(|id| self.qos_policies.get(id))
            {
                topics.insert(q.topic().to_string());
            }
            for g in &p.security_groups {
                if let Some(sg) = self.security_groups.get(g) {
                    topics.insert(sg.topic().to_string());
                }
                for r in self.rules_of(g) {
                    if let Some(rg) = r
                        .remote_group_id
                        .as_ref()
                        .and_then(|id| self.security_groups.get(id))
                    {
                        topics.insert(rg.topic().to_string());
                    }
                    if let Some(ag) = r
                        .remote_address_group_id
                        .as_ref()
                        .and_then(|id| self.address_groups.get(id))
                    {
                        topics.insert(ag.topic().to_string());
                    }
                }
            }
        }
        let mut behind: Vec<String> = Vec::new();
        for r in self.routers.values() {
            if r.interfaces
                .iter()
                .any(|i| networks.contains(i.network_id.as_str()))
            {
                topics.insert(r.topic().to_string());
                behind.extend(r.interfaces.iter().map(|i| i.network_id.clone()));
                // The external network of its gateway: floating IP and SNAT ports live there.
                behind.extend(r.external_gateway.iter().map(|g| g.network_id.clone()));
            }
        }
        topics.extend(networks.into_iter().map(str::to_string));
        topics.extend(behind);
        self.fw_topics(&mut topics);
        self.taas_topics(&mut topics);
        topics.retain(|t| !t.is_empty());
        topics
    }

    /// Objects the host's ports refer to that are not in the view: their topics are not
    /// followed yet, so the host looks them up to learn them (security groups of local
    /// ports, their remote groups and address groups, routers with an interface on a local port's network).
    pub fn missing(&self) -> Vec<Touched> {
        let mut out = BTreeSet::new();
        let mut networks: BTreeSet<&str> = BTreeSet::new();
        for p in self.local_ports() {
            networks.insert(&p.network_id);
            if let Some(q) = self.qos_policy_of(p)
                && !self.qos_policies.contains_key(q)
            {
                out.insert(Touched {
                    table: Table::QosPolicy,
                    id: q.to_string(),
                });
            }
            for g in &p.security_groups {
                if !self.security_groups.contains_key(g) {
                    out.insert(Touched {
                        table: Table::SecurityGroup,
                        id: g.clone(),
                    });
                }
                for r in self.rules_of(g) {
                    if let Some(rg) = &r.remote_group_id
                        && !self.security_groups.contains_key(rg)
                    {
                        out.insert(Touched {
                            table: Table::SecurityGroup,
                            id: rg.clone(),
                        });
                    }
                    if let Some(ag) = &r.remote_address_group_id
                        && !self.address_groups.contains_key(ag)
                    {
                        out.insert(Touched {
                            table: Table::AddressGroup,
                            id: ag.clone(),
                        });
                    }
                }
            }
        }
        self.fw_missing(&mut out);
        for n in networks {
            for p in self.ports_of(n) {
                if p.device_owner == model::owner::ROUTER_INTERFACE
                    && !p.device_id.is_empty()
                    && !self.routers.contains_key(&p.device_id)
                {
                    out.insert(Touched {
                        table: Table::Router,
                        id: p.device_id.clone(),
                    });
                }
            }
        }
        out.into_iter().collect()
    }
}

/// The store record of an NB object, for tests and tools.
pub fn record<T: NbObject>(obj: &T, revision: Revision) -> Record {
    Record {
        table: T::TABLE.name().into(),
        id: obj.meta().id.clone(),
        revision,
        topic: Some(obj.topic().to_string()),
        value: serde_json::to_vec(obj).unwrap_or_default(),
    }
}

/// The groups whose members a port's change changes: those it joined or left, or all of
/// its groups when its addresses changed.
fn membership_changes(before: Option<&Port>, after: Option<&Port>) -> BTreeSet<String> {
    let groups = |p: Option<&Port>| -> BTreeSet<String> {
        p.map(|p| p.security_groups.iter().cloned().collect())
            .unwrap_or_default()
    };
    let (was, is) = (groups(before), groups(after));
    let moved = match (before, after) {
        (Some(b), Some(a)) => {
            b.fixed_ips != a.fixed_ips || b.allowed_address_pairs != a.allowed_address_pairs
        }
        _ => false,
    };
    if moved {
        was.union(&is).cloned().collect()
    } else {
        was.symmetric_difference(&is).cloned().collect()
    }
}

/// The change that writes `obj` at `revision`, as the store's stream carries it.
pub fn written<T: NbObject>(obj: &T, revision: Revision) -> Change {
    let r = record(obj, revision);
    Change {
        revision,
        table: r.table,
        id: r.id,
        topic: r.topic,
        value: Some(r.value),
    }
}

/// The change that removes object `id` of `table` at `revision`.
pub fn removed(table: &str, id: &str, revision: Revision) -> Change {
    Change {
        revision,
        table: table.into(),
        id: id.into(),
        topic: None,
        value: None,
    }
}

mod fwaas;
pub use fwaas::is_vm_port;
mod taas;

#[cfg(test)]
mod tests;
