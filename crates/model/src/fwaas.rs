//! Firewall as a service v2 (neutron-fwaas): rules, policies that order them, and
//! groups that apply an ingress and an egress policy to ports (router interfaces and VM
//! ports). Three tables, as in Neutron: a rule may sit in several policies and a policy
//! in several groups, so a host reads all three for the groups of its ports.

use crate::{Deletable, Meta, NbObject};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The name of a project's default group (and the prefix of its policies' names).
pub const DEFAULT_GROUP: &str = "default";
pub const DEFAULT_INGRESS_POLICY: &str = "default ingress";
pub const DEFAULT_EGRESS_POLICY: &str = "default egress";

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FwAction {
    Allow,
    Deny,
    /// Drop, and answer with a TCP RST or an ICMP port unreachable.
    Reject,
}

impl FwAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FwAction::Allow => "allow",
            FwAction::Deny => "deny",
            FwAction::Reject => "reject",
        }
    }

    pub fn parse(s: &str) -> Option<FwAction> {
        [FwAction::Allow, FwAction::Deny, FwAction::Reject]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// The protocols a rule may name (neutron-lib's `FW_PROTOCOL_VALUES`).
pub const FW_PROTOCOLS: [&str; 6] = ["dccp", "icmp", "ipv6-icmp", "sctp", "tcp", "udp"];

/// The IP protocol number of a protocol name of [`FW_PROTOCOLS`].
pub fn protocol_number(name: &str) -> Option<u8> {
    Some(match name {
        "dccp" => 33,
        "icmp" => 1,
        "ipv6-icmp" => 58,
        "sctp" => 132,
        "tcp" => 6,
        "udp" => 17,
        _ => return None,
    })
}

/// An inclusive port range (`min <= max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

impl PortRange {
    /// Neutron's rendering: `80`, or `8000:8080`.
    pub fn render(&self) -> String {
        if self.min == self.max {
            self.min.to_string()
        } else {
            format!("{}:{}", self.min, self.max)
        }
    }
}

/// An address or prefix of a rule, kept as the client wrote it (`10.0.0.1` stays
/// without `/32`, as neutron-fwaas keeps it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FwAddress {
    pub text: String,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRule {
    #[serde(flatten)]
    pub meta: Meta,
    pub shared: bool,
    /// A name of [`FW_PROTOCOLS`]; `None` matches every protocol.
    pub protocol: Option<String>,
    /// 4 or 6.
    pub ip_version: u8,
    pub source_ip_address: Option<FwAddress>,
    pub destination_ip_address: Option<FwAddress>,
    pub source_port: Option<PortRange>,
    pub destination_port: Option<PortRange>,
    pub action: FwAction,
    pub enabled: bool,
    /// Being deleted: no policy may take it (see `Deletable`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallPolicy {
    #[serde(flatten)]
    pub meta: Meta,
    pub shared: bool,
    /// Cleared by every change of the policy or of one of its rules.
    pub audited: bool,
    /// Rule ids in the order they are matched (first match wins).
    #[serde(default)]
    pub firewall_rules: Vec<String>,
    /// Being deleted: no group may take it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallGroup {
    #[serde(flatten)]
    pub meta: Meta,
    pub shared: bool,
    pub admin_state_up: bool,
    /// Applied to traffic going into what the port stands for: into the VM for a VM
    /// port, into the router from its interface's network for a router port.
    pub ingress_firewall_policy_id: Option<String>,
    pub egress_firewall_policy_id: Option<String>,
    /// Router interface ports and VM ports; a port is in at most one group.
    #[serde(default)]
    pub ports: Vec<String>,
    /// The project's default group (made on first sight, the admin's to delete).
    #[serde(default)]
    pub is_default: bool,
}

impl FirewallGroup {
    /// Neutron's status: no ports is `INACTIVE`, administratively down is `DOWN`.
    pub fn status(&self) -> &'static str {
        if self.ports.is_empty() {
            "INACTIVE"
        } else if !self.admin_state_up {
            "DOWN"
        } else {
            "ACTIVE"
        }
    }
}

macro_rules! fw_object {
    ($t:ty, $table:ident, $kind:literal) => {
        impl NbObject for $t {
            const TABLE: crate::Table = crate::Table::$table;
            const KIND: &'static str = $kind;
            fn meta(&self) -> &Meta {
                &self.meta
            }
            fn meta_mut(&mut self) -> &mut Meta {
                &mut self.meta
            }
        }
    };
}

fw_object!(FirewallRule, FirewallRule, "FirewallRule");
fw_object!(FirewallPolicy, FirewallPolicy, "FirewallPolicy");
fw_object!(FirewallGroup, FirewallGroup, "FirewallGroup");

impl Deletable for FirewallRule {
    fn deleting(&self) -> bool {
        self.deleting
    }
    fn set_deleting(&mut self, on: bool) {
        self.deleting = on;
    }
}

impl Deletable for FirewallPolicy {
    fn deleting(&self) -> bool {
        self.deleting
    }
    fn set_deleting(&mut self, on: bool) {
        self.deleting = on;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_round_trips_through_json() {
        let r = FirewallRule {
            meta: crate::fixtures::meta("r1"),
            shared: false,
            protocol: Some("tcp".into()),
            ip_version: 4,
            source_ip_address: Some(FwAddress {
                text: "10.0.0.1".into(),
                addr: "10.0.0.1".parse().unwrap(),
                prefix_len: 32,
            }),
            destination_ip_address: None,
            source_port: None,
            destination_port: Some(PortRange { min: 22, max: 23 }),
            action: FwAction::Reject,
            enabled: true,
            deleting: false,
        };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"action\":\"reject\""), "{j}");
        assert_eq!(serde_json::from_str::<FirewallRule>(&j).unwrap(), r);
        assert_eq!(r.destination_port.unwrap().render(), "22:23");
        assert_eq!(PortRange { min: 80, max: 80 }.render(), "80");
    }

    #[test]
    fn group_status_follows_ports_and_admin_state() {
        let mut g = FirewallGroup {
            meta: crate::fixtures::meta("g"),
            shared: false,
            admin_state_up: true,
            ingress_firewall_policy_id: None,
            egress_firewall_policy_id: None,
            ports: vec![],
            is_default: false,
        };
        assert_eq!(g.status(), "INACTIVE");
        g.ports.push("p".into());
        assert_eq!(g.status(), "ACTIVE");
        g.admin_state_up = false;
        assert_eq!(g.status(), "DOWN");
        for p in FW_PROTOCOLS {
            assert!(protocol_number(p).is_some());
        }
    }
}
