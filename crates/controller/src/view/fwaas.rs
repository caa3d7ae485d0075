//! The view's firewall groups (FWaaS v2): which group holds each port, the policies and
//! rules those groups reach, and what the host follows for them. A port does not name its
//! group (the group lists its ports), so a host follows the project of each of its VM
//! ports (a group takes only ports its project sees) and of the routers it routes for
//! (followed already); the policies and rules of the groups that hold one of those ports
//! are looked up when missing (a shared policy or rule of another project) and their
//! projects followed from then on. Groups that hold no port of this host cost nothing
//! but their records.

use super::{Touched, View};
use model::{FirewallGroup, FirewallRule, NbObject, Port, Table};
use std::collections::BTreeSet;

/// Whether a port may stand in a group's `ports` as a VM port (the API takes
/// `compute:*` ports and router interfaces).
pub fn is_vm_port(p: &Port) -> bool {
    p.device_owner.starts_with("compute:")
}

impl View {
    /// The group that holds port `id`, if the view has it.
    pub fn fw_group_of(&self, id: &str) -> Option<&FirewallGroup> {
        self.fw_groups.get(self.fw_group_by_port.get(id)?)
    }

    /// The enabled and disabled rules of policy `id`, in its order (those the view lacks
    /// are skipped: they are being looked up).
    pub fn fw_rules_of(&self, id: &str) -> Vec<&FirewallRule> {
        self.fw_policies
            .get(id)
            .map(|p| {
                p.firewall_rules
                    .iter()
                    .filter_map(|r| self.fw_rules.get(r))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The ports of the groups that use policy `id`.
    pub fn fw_ports_of_policy(&self, id: &str) -> BTreeSet<String> {
        self.fw_groups
            .values()
            .filter(|g| {
                g.ingress_firewall_policy_id.as_deref() == Some(id)
                    || g.egress_firewall_policy_id.as_deref() == Some(id)
            })
            .flat_map(|g| g.ports.iter().cloned())
            .collect()
    }

    /// The ports of the groups whose policies hold rule `id`.
    pub fn fw_ports_of_rule(&self, id: &str) -> BTreeSet<String> {
        self.fw_policies
            .values()
            .filter(|p| p.firewall_rules.iter().any(|r| r == id))
            .flat_map(|p| self.fw_ports_of_policy(&p.meta.id))
            .collect()
    }

    /// The ports of group `id` (none if the view lacks it).
    pub(super) fn fw_group_ports(&self, id: &str) -> Vec<String> {
        self.fw_groups
            .get(id)
            .map(|g| g.ports.clone())
            .unwrap_or_default()
    }

    /// Sets group `id` (or removes it), keeping the index of ports by group.
    pub(super) fn set_fw_group(&mut self, id: &str, value: Option<&[u8]>) -> bool {
        for p in self.fw_group_ports(id) {
            if self.fw_group_by_port.get(&p).is_some_and(|g| g == id) {
                self.fw_group_by_port.remove(&p);
            }
        }
        let changed = super::set(&mut self.fw_groups, "firewall_group", id, value);
        for p in self.fw_group_ports(id) {
            self.fw_group_by_port.insert(p, id.to_string());
        }
        changed
    }

    /// The groups this host enforces: those holding a VM port bound here or an interface
    /// port of a router it routes for.
    pub fn fw_groups_here(&self) -> Vec<&FirewallGroup> {
        let mut ids: BTreeSet<&str> = self
            .local_ports()
            .filter_map(|p| self.fw_group_by_port.get(&p.meta.id))
            .map(String::as_str)
            .collect();
        for r in self.routers.values() {
            if crate::apps::here::routes_for(self, r) {
                ids.extend(
                    r.interfaces
                        .iter()
                        .filter_map(|i| self.fw_group_by_port.get(&i.port_id))
                        .map(String::as_str),
                );
            }
        }
        ids.into_iter()
            .filter_map(|id| self.fw_groups.get(id))
            .collect()
    }

    /// The FWaaS topics: the projects of the local VM ports, and of the policies and rules
    /// of the groups enforced here.
    pub(super) fn fw_topics(&self, topics: &mut BTreeSet<String>) {
        for p in self.local_ports().filter(|p| is_vm_port(p)) {
            topics.insert(p.meta.project_id.clone());
        }
        for g in self.fw_groups_here() {
            for pid in fw_policies(g) {
                if let Some(p) = self.fw_policies.get(pid) {
                    topics.insert(p.topic().to_string());
                    for r in self.fw_rules_of(pid) {
                        topics.insert(r.topic().to_string());
                    }
                }
            }
        }
    }

    /// The policies and rules of the groups enforced here that the view lacks.
    pub(super) fn fw_missing(&self, out: &mut BTreeSet<Touched>) {
        for g in self.fw_groups_here() {
            for pid in fw_policies(g) {
                let Some(p) = self.fw_policies.get(pid) else {
                    out.insert(Touched {
                        table: Table::FirewallPolicy,
                        id: pid.to_string(),
                    });
                    continue;
                };
                for r in &p.firewall_rules {
                    if !self.fw_rules.contains_key(r) {
                        out.insert(Touched {
                            table: Table::FirewallRule,
                            id: r.clone(),
                        });
                    }
                }
            }
        }
    }
}

/// A group's ingress and egress policy ids.
fn fw_policies(g: &FirewallGroup) -> impl Iterator<Item = &str> {
    [&g.ingress_firewall_policy_id, &g.egress_firewall_policy_id]
        .into_iter()
        .filter_map(|p| p.as_deref())
}
