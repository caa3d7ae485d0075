//! The NB objects: networks, subnets, ports, routers, floating IPs, security groups and
//! their rules, chassis. Plain data with serde; validation lives in the API layer, which
//! is the only writer.

use crate::MacAddr;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Attributes every Neutron "standard attribute" resource has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub project_id: String,
    /// Kept sorted and without duplicates.
    #[serde(default)]
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Bumped on every update of the object (Neutron's `revision_number`).
    #[serde(default)]
    pub revision_number: u64,
    /// The object's fields that a newer model wrote and this one does not know, written
    /// back as they were. Every object flattens its `Meta` after any other flattened
    /// struct, so only the object's leftovers land here.
    #[serde(
        flatten,
        default,
        skip_serializing_if = "crate::version::Unknown::is_empty"
    )]
    pub unknown: crate::version::Unknown,
}

impl Meta {
    /// Marks an update: a new `updated_at` and the next `revision_number`.
    pub fn touch(&mut self) {
        self.updated_at = crate::time::now();
        self.revision_number += 1;
    }
}

/// How a network's traffic is carried between hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkType {
    Geneve,
    Vxlan,
    Gre,
    Vlan,
    Flat,
    Local,
}

impl NetworkType {
    pub const ALL: [NetworkType; 6] = [
        NetworkType::Geneve,
        NetworkType::Vxlan,
        NetworkType::Gre,
        NetworkType::Vlan,
        NetworkType::Flat,
        NetworkType::Local,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NetworkType::Geneve => "geneve",
            NetworkType::Vxlan => "vxlan",
            NetworkType::Gre => "gre",
            NetworkType::Vlan => "vlan",
            NetworkType::Flat => "flat",
            NetworkType::Local => "local",
        }
    }

    pub fn parse(s: &str) -> Option<NetworkType> {
        NetworkType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Tunnelled types carry a VNI/key; vlan carries a tag; flat and local carry nothing.
    pub fn is_tunnel(self) -> bool {
        matches!(
            self,
            NetworkType::Geneve | NetworkType::Vxlan | NetworkType::Gre
        )
    }

    /// True for types that live on a physical network (provider networks).
    pub fn is_provider(self) -> bool {
        matches!(self, NetworkType::Vlan | NetworkType::Flat)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    #[serde(flatten)]
    pub meta: Meta,
    pub admin_state_up: bool,
    pub mtu: u32,
    pub shared: bool,
    /// Neutron's `router:external`.
    pub external: bool,
    pub port_security_enabled: bool,
    pub network_type: NetworkType,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<u32>,
    /// Ids of the network's subnets, in creation order.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// Datapath key (metadata value in flows).
    pub unique_key: u32,
    /// Set while a delete checks that nothing refers to the object any more: creates that
    /// would refer to it refuse, and ones racing the mark fail their compare-and-swap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
    /// Neutron's `availability_zone_hints`: kept and shown, placing nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub availability_zone_hints: Vec<String>,
    /// The default external network (Neutron's `is_default`; only an external one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_default: bool,
    /// `dns_domain` (`dns-integration`): kept and shown, see [`crate::dns`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dns_domain: String,
    /// The QoS policy of the network's ports that have none of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_policy_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPool {
    pub start: IpAddr,
    pub end: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    pub destination: IpNet,
    pub nexthop: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    #[serde(flatten)]
    pub meta: Meta,
    pub network_id: String,
    pub ip_version: u8,
    pub cidr: IpNet,
    pub gateway_ip: Option<IpAddr>,
    pub allocation_pools: Vec<AllocationPool>,
    pub enable_dhcp: bool,
    pub dns_nameservers: Vec<IpAddr>,
    pub host_routes: Vec<HostRoute>,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
    /// The subnet pool its CIDR was allocated from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnetpool_id: Option<String>,
    /// Set while a delete checks that nothing refers to the object any more: creates that
    /// would refer to it refuse, and ones racing the mark fail their compare-and-swap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

impl Subnet {
    /// True when addresses are derived from the MAC (SLAAC or DHCPv6-stateless), as
    /// Neutron's `is_auto_address_subnet` says: either mode counts, so a subnet whose only
    /// mode is `ipv6_ra_mode: slaac` gets EUI-64 addresses too.
    pub fn is_auto_address(&self) -> bool {
        let auto = |m: &Option<String>| matches!(m.as_deref(), Some("slaac" | "dhcpv6-stateless"));
        auto(&self.ipv6_address_mode) || auto(&self.ipv6_ra_mode)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPair {
    /// An address or a CIDR.
    pub ip_address: IpNet,
    pub mac_address: MacAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraDhcpOpt {
    pub opt_name: String,
    pub opt_value: String,
    pub ip_version: u8,
}

/// Port operational state, reported by the controller that binds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PortStatus {
    Down,
    Build,
    Active,
    /// Plugged and bound, but the switch refused its flows (the controller's log names
    /// the flow).
    Error,
}

impl PortStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PortStatus::Down => "DOWN",
            PortStatus::Build => "BUILD",
            PortStatus::Active => "ACTIVE",
            PortStatus::Error => "ERROR",
        }
    }
}

/// Device owners with a meaning for the system.
pub mod owner {
    pub const ROUTER_INTERFACE: &str = "network:router_interface";
    pub const ROUTER_GATEWAY: &str = "network:router_gateway";
    pub const FLOATING_IP: &str = "network:floatingip";
    pub const DHCP: &str = "network:dhcp";
    /// A host's SNAT address on an external network (`device_id`: the chassis).
    pub const CHASSIS_SNAT: &str = "network:chassis_snat";
    /// Neutron's router interface owners: ports that name a router in `device_id`.
    pub const ROUTER_INTERFACE_OWNERS: [&str; 3] = [
        ROUTER_INTERFACE,
        "network:ha_router_replicated_interface",
        "network:router_interface_distributed",
    ];

    /// Ports the system creates and deletes itself, not through the port API.
    pub fn is_system(owner: &str) -> bool {
        matches!(
            owner,
            ROUTER_INTERFACE | ROUTER_GATEWAY | FLOATING_IP | DHCP
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    #[serde(flatten)]
    pub meta: Meta,
    pub network_id: String,
    pub admin_state_up: bool,
    pub mac_address: MacAddr,
    pub fixed_ips: Vec<FixedIp>,
    pub security_groups: Vec<String>,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub port_security_enabled: bool,
    pub device_owner: String,
    pub device_id: String,
    /// `binding:host_id`: the chassis the port is (to be) bound on; empty when unbound.
    pub binding_host_id: String,
    pub binding_profile: BTreeMap<String, serde_json::Value>,
    pub binding_vnic_type: String,
    /// Bound through the API to a host with no live controller (`binding:vif_type`
    /// `binding_failed`, as ML2 answers when no agent can bind it); cleared when a
    /// controller binds the port.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binding_failed: bool,
    pub extra_dhcp_opts: Vec<ExtraDhcpOpt>,
    pub status: PortStatus,
    /// Datapath key (reg6/reg7 value in flows).
    pub unique_key: u32,
    /// `dns_name` (lowercase; empty: `host-<address>`), see [`crate::dns`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dns_name: String,
    /// `dns_domain` (`dns-domain-ports`): kept and shown; internal names use the
    /// configured domain, as in Neutron without an external DNS service.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dns_domain: String,
    /// The port's own QoS policy (else its network's applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_policy_id: Option<String>,
    /// What the metadata service serves the VM beyond the port (user data, keys,
    /// properties), see [`crate::instance`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_metadata: Option<crate::instance::InstanceMetadata>,
}

impl Port {
    /// Whether a report of `status` from `host` is news: DOWN bound to a host the port is
    /// no longer bound to is not (it was unbound or moved since the host last saw it, e.g.
    /// a subport taken out of its trunk), and must not bind it back. A release (DOWN, no
    /// host) always applies.
    pub fn report_applies(&self, host: &str, status: PortStatus) -> bool {
        status != PortStatus::Down || host.is_empty() || self.binding_host_id == host
    }

    /// The port bound to `host` with `status`, as the host that plugged it reports it: the
    /// same write whether it goes through a server or straight to the store. Returns the
    /// event Nova must hear of, which goes into the same transaction (see [`crate::nova`]).
    #[must_use = "the Nova event belongs in the same transaction"]
    pub fn bind(&mut self, host: &str, status: PortStatus) -> Option<crate::nova::Event> {
        let old = self.status;
        self.binding_host_id = host.to_string();
        self.binding_failed = false;
        self.status = status;
        self.meta.touch();
        crate::nova::on_status(self, old)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalGateway {
    pub network_id: String,
    pub enable_snat: bool,
    pub external_fixed_ips: Vec<FixedIp>,
    /// The gateway port on the external network.
    pub port_id: String,
}

/// A router's leg on one subnet: the interface port and its address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterInterface {
    pub port_id: String,
    pub subnet_id: String,
    pub network_id: String,
    pub ip_address: IpAddr,
    pub cidr: IpNet,
    pub mac_address: MacAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Router {
    #[serde(flatten)]
    pub meta: Meta,
    pub admin_state_up: bool,
    pub external_gateway: Option<ExternalGateway>,
    pub routes: Vec<HostRoute>,
    pub interfaces: Vec<RouterInterface>,
    /// Datapath key (reg5 value in flows).
    pub unique_key: u32,
    /// Neutron's `availability_zone_hints`: kept and shown, placing nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub availability_zone_hints: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingIp {
    #[serde(flatten)]
    pub meta: Meta,
    pub floating_network_id: String,
    pub floating_ip_address: IpAddr,
    pub floating_subnet_id: String,
    /// The port on the external network that holds the address.
    pub floating_port_id: String,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<IpAddr>,
    pub router_id: Option<String>,
    /// Its port forwardings, in creation order: a floating IP has these or a port, never
    /// both (`router_id` is then the router that reaches their ports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_forwardings: Vec<PortForwarding>,
}

/// The transport protocol of a port forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PfProtocol {
    Tcp,
    Udp,
}

impl PfProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            PfProtocol::Tcp => "tcp",
            PfProtocol::Udp => "udp",
        }
    }

    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            PfProtocol::Tcp => 6,
            PfProtocol::Udp => 17,
        }
    }
}

/// Neutron's floating IP port forwarding: `external_port`/`protocol` of the floating IP
/// go to `internal_ip_address:internal_port` of port `internal_port_id`. Kept inside its
/// floating IP, so a host receives them with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortForwarding {
    pub id: String,
    pub internal_port_id: String,
    pub internal_ip_address: IpAddr,
    pub internal_port: u16,
    pub external_port: u16,
    pub protocol: PfProtocol,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    #[serde(flatten)]
    pub meta: Meta,
    pub stateful: bool,
    /// The project's `default` group (cannot be deleted).
    pub is_default: bool,
    /// Set while a delete checks that nothing refers to the object any more: creates that
    /// would refer to it refuse, and ones racing the mark fail their compare-and-swap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EtherType {
    IPv4,
    IPv6,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    #[serde(flatten)]
    pub meta: Meta,
    pub security_group_id: String,
    pub direction: Direction,
    pub ethertype: EtherType,
    /// As the user gave it (a name such as `tcp` or a number); `None` means any.
    pub protocol: Option<String>,
    /// IP protocol number, resolved from `protocol`.
    pub protocol_number: Option<u8>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    /// As the user gave it (host bits kept, Neutron's `remote_ip_prefix`); matched
    /// truncated (its `normalized_cidr`).
    pub remote_ip_prefix: Option<IpNet>,
    pub remote_group_id: Option<String>,
    /// The address group whose addresses are the remote end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address_group_id: Option<String>,
}

/// A named set of prefixes that rules name as their remote end
/// (`remote_address_group_id`); hosts expand such a rule into one match per prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressGroup {
    #[serde(flatten)]
    pub meta: Meta,
    /// Normalised (host bits cleared), sorted, without duplicates.
    pub addresses: Vec<IpNet>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

/// A template of the rules new security groups get (Neutron's
/// `security-groups-default-rules`). Only the API server reads them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultSecurityGroupRule {
    #[serde(flatten)]
    pub meta: Meta,
    pub direction: Direction,
    pub ethertype: EtherType,
    pub protocol: Option<String>,
    pub protocol_number: Option<u8>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    pub remote_ip_prefix: Option<IpNet>,
    /// A group id, or `PARENT`: the new group itself.
    pub remote_group_id: Option<String>,
    pub remote_address_group_id: Option<String>,
    pub used_in_default_sg: bool,
    pub used_in_non_default_sg: bool,
}

/// A Neutron RBAC policy: `object_type` `object_id` is granted `action`
/// (`access_as_shared`, `access_as_external`) to project `target_tenant` (or `*`, every
/// project). Only the API server uses them (hosts ignore the table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RbacPolicy {
    #[serde(flatten)]
    pub meta: Meta,
    /// `network` or `security_group`.
    pub object_type: String,
    pub object_id: String,
    pub action: String,
    pub target_tenant: String,
    /// Set while a delete checks that no project still relies on the policy: new uses
    /// refuse it, and ones racing the mark fail their compare-and-swap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

/// A compute host running a local controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chassis {
    pub id: String,
    pub ip: IpAddr,
    pub tunnel_types: Vec<NetworkType>,
}

/// An NB object with Neutron's standard attributes, stored in its own table.
pub trait NbObject:
    Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static
{
    const TABLE: crate::Table;
    /// The Neutron resource name used in error types (`Network` → `NetworkNotFound`).
    const KIND: &'static str;
    fn meta(&self) -> &Meta;
    fn meta_mut(&mut self) -> &mut Meta;
    /// The distribution topic: a host follows the topics its ports reach. A network and
    /// everything on it (subnets, ports, whoever owns them) share the network's id, so a
    /// host with a port on a network sees all of it; the rest go by project.
    fn topic(&self) -> &str {
        &self.meta().project_id
    }
}

macro_rules! nb_object {
    ($t:ty, $table:ident, $kind:literal) => {
        nb_object!($t, $table, $kind, |o| &o.meta.project_id);
    };
    ($t:ty, $table:ident, $kind:literal, $topic:expr) => {
        impl NbObject for $t {
            const TABLE: crate::Table = crate::Table::$table;
            const KIND: &'static str = $kind;
            fn meta(&self) -> &Meta {
                &self.meta
            }
            fn meta_mut(&mut self) -> &mut Meta {
                &mut self.meta
            }
            fn topic(&self) -> &str {
                let f: fn(&$t) -> &str = $topic;
                f(self)
            }
        }
    };
}

/// Objects that other objects refer to, deleted only after a `deleting` mark.
pub trait Deletable: NbObject {
    fn deleting(&self) -> bool;
    fn set_deleting(&mut self, on: bool);
}

macro_rules! deletable {
    ($($t:ty),*) => {$(
        impl Deletable for $t {
            fn deleting(&self) -> bool {
                self.deleting
            }
            fn set_deleting(&mut self, on: bool) {
                self.deleting = on;
            }
        }
    )*};
}

deletable!(Network, Subnet, SecurityGroup, RbacPolicy, AddressGroup);

nb_object!(Network, Network, "Network", |n| &n.meta.id);
nb_object!(Subnet, Subnet, "Subnet", |s| &s.network_id);
nb_object!(Port, Port, "Port", |p| &p.network_id);
nb_object!(Router, Router, "Router");
nb_object!(FloatingIp, FloatingIp, "FloatingIP");
nb_object!(SecurityGroup, SecurityGroup, "SecurityGroup");
nb_object!(SecurityGroupRule, SecurityGroupRule, "SecurityGroupRule");
nb_object!(RbacPolicy, RbacPolicy, "RbacPolicy");
nb_object!(AddressGroup, AddressGroup, "AddressGroup");
nb_object!(
    DefaultSecurityGroupRule,
    DefaultSecurityGroupRule,
    "DefaultSecurityGroupRule"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_round_trips_through_json() {
        let n = Network {
            meta: Meta {
                created_at: "t".into(),
                updated_at: "t".into(),
                ..crate::fixtures::meta("n1")
            },
            segmentation_id: Some(7),
            ..crate::fixtures::network("n1", 1)
        };
        let j = serde_json::to_string(&n).unwrap();
        assert!(j.contains("\"network_type\":\"geneve\""), "{j}");
        assert_eq!(serde_json::from_str::<Network>(&j).unwrap(), n);
    }
}
