//! Dragonflow's logical model: the northbound (NB) objects that the API server writes and
//! the local controllers compile, with no I/O and no knowledge of the Neutron JSON.
//!
//! Every object is stored as JSON in its own table of the NB store (see [`Table`]); objects
//! that the datapath must name (networks, ports, routers) carry a small `unique_key`
//! allocated by the server, which becomes the metadata/register value in flows.

pub mod agent;
pub mod bgp;
pub mod dns;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod fwaas;
pub mod instance;
pub mod lb;
pub mod lb_stats;
pub mod mac;
pub mod mcast;
pub mod nova;
pub mod objects;
pub mod pools;
pub mod qos;
pub mod sfc;
pub mod taas;
pub mod time;
pub mod trunk;
pub mod version;

pub use bgp::{BgpPeer, BgpSpeaker};
pub use fwaas::{FirewallGroup, FirewallPolicy, FirewallRule};
pub use lb::LoadBalancer;
pub use mac::MacAddr;
pub use mcast::McastGroup;
pub use objects::*;
pub use pools::{AddressScope, SubnetPool};
pub use qos::{QosDirection, QosPolicy, QosRule, QosRuleKind};
pub use sfc::{FlowClassifier, PortChain, PortPair, PortPairGroup};
pub use taas::{TapDirection, TapFlow, TapService};
pub use trunk::{SubPort, Trunk};

/// The NB store tables, one per object kind, plus the claims table that makes allocations
/// (IPs, MACs, unique keys, segmentation ids) unique across API servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Network,
    Subnet,
    Port,
    Router,
    FloatingIp,
    SecurityGroup,
    SecurityGroupRule,
    Chassis,
    /// RBAC policies: a network or security group shared with a project (or `*`).
    RbacPolicy,
    /// Subnet pools and address scopes (`pools`): the API server's only.
    SubnetPool,
    AddressScope,
    /// Address groups: prefixes that security group rules name as their remote end.
    AddressGroup,
    /// Templates of the rules a new security group gets (only the API server reads them).
    DefaultSecurityGroupRule,
    /// QoS policies with their rules (`qos`).
    QosPolicy,
    /// Trunks (VLAN-aware VMs): a parent port and its subports.
    Trunk,
    /// Multicast group memberships by host (IGMP/MLD snooping), written by the hosts.
    McastGroup,
    /// Load balancers (Octavia), each with its whole tree.
    LoadBalancer,
    /// FWaaS v2 rules, policies and groups (`fwaas`).
    FirewallRule,
    FirewallPolicy,
    FirewallGroup,
    /// BGP speakers and peers (neutron-dynamic-routing), read by `dragonflow bgp`.
    BgpSpeaker,
    BgpPeer,
    /// Service function chaining (`sfc`): port pairs, port pair groups and flow
    /// classifiers are the API server's; port chains carry what the hosts compile.
    SfcPortPair,
    SfcPortPairGroup,
    SfcFlowClassifier,
    SfcPortChain,
    /// Tap as a service (`taas`): tap services and the tap flows into them.
    TapService,
    TapFlow,
    /// `ip/<subnet>/<addr>`, `mac/<mac>`, `key/<kind>/<n>`, `seg/<type>/<n>` → owner id.
    Claim,
}

impl Table {
    pub const ALL: [Table; 29] = [
        Table::Network,
        Table::Subnet,
        Table::Port,
        Table::Router,
        Table::FloatingIp,
        Table::SecurityGroup,
        Table::SecurityGroupRule,
        Table::Chassis,
        Table::RbacPolicy,
        Table::SubnetPool,
        Table::AddressScope,
        Table::AddressGroup,
        Table::DefaultSecurityGroupRule,
        Table::QosPolicy,
        Table::Trunk,
        Table::McastGroup,
        Table::LoadBalancer,
        Table::FirewallRule,
        Table::FirewallPolicy,
        Table::FirewallGroup,
        Table::BgpSpeaker,
        Table::BgpPeer,
        Table::SfcPortPair,
        Table::SfcPortPairGroup,
        Table::SfcFlowClassifier,
        Table::SfcPortChain,
        Table::TapService,
        Table::TapFlow,
        Table::Claim,
    ];

    /// The table's name in the store.
    pub fn name(self) -> &'static str {
        match self {
            Table::Network => "network",
            Table::Subnet => "subnet",
            Table::Port => "port",
            Table::Router => "router",
            Table::FloatingIp => "floatingip",
            Table::SecurityGroup => "secgroup",
            Table::SecurityGroupRule => "secgroup_rule",
            Table::Chassis => "chassis",
            Table::RbacPolicy => "rbac_policy",
            Table::SubnetPool => "subnetpool",
            Table::AddressScope => "address_scope",
            Table::AddressGroup => "address_group",
            Table::DefaultSecurityGroupRule => "default_secgroup_rule",
            Table::QosPolicy => "qos_policy",
            Table::Trunk => "trunk",
            Table::McastGroup => "mcast_group",
            Table::LoadBalancer => "loadbalancer",
            Table::FirewallRule => "firewall_rule",
            Table::FirewallPolicy => "firewall_policy",
            Table::FirewallGroup => "firewall_group",
            Table::BgpSpeaker => "bgp_speaker",
            Table::BgpPeer => "bgp_peer",
            Table::SfcPortPair => "sfc_port_pair",
            Table::SfcPortPairGroup => "sfc_port_pair_group",
            Table::SfcFlowClassifier => "sfc_flow_classifier",
            Table::SfcPortChain => "sfc_port_chain",
            Table::TapService => "tap_service",
            Table::TapFlow => "tap_flow",
            Table::Claim => "claim",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A new random object id (UUID v4, as Neutron uses).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// True when `s` is a UUID in any accepted spelling.
pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}
