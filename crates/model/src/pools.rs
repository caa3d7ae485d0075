//! Subnet pools and address scopes: where subnets get their CIDRs from, and the scopes
//! in which pools' prefixes must not overlap. Only the API server reads them (hosts
//! ignore both tables); a subnet names its pool (`Subnet::subnetpool_id`) and the
//! pool's allocations are claims (`pool/<pool>/<cidr>`), written with the subnet.

use crate::{Deletable, Meta, NbObject};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A Neutron subnet pool: prefixes (kept compacted: sorted, merged, none inside
/// another) that subnets are carved from, with bounds on their prefix lengths.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetPool {
    #[serde(flatten)]
    pub meta: Meta,
    pub ip_version: u8,
    pub prefixes: Vec<IpNet>,
    pub default_prefixlen: u8,
    pub min_prefixlen: u8,
    pub max_prefixlen: u8,
    /// Per-project limit on the addresses (IPv4) or /64s (IPv6) taken from the pool.
    pub default_quota: Option<u32>,
    pub shared: bool,
    /// The pool `use_default_subnetpool` picks for its IP version (one per version).
    pub is_default: bool,
    pub address_scope_id: Option<String>,
    /// Set while a delete checks that no subnet uses the pool any more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

/// A Neutron address scope: pools in it have unique prefixes. No standard attributes
/// besides name and project, as in Neutron.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressScope {
    #[serde(flatten)]
    pub meta: Meta,
    pub ip_version: u8,
    pub shared: bool,
    /// Set while a delete checks that no pool is in the scope any more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

impl NbObject for SubnetPool {
    const TABLE: crate::Table = crate::Table::SubnetPool;
    const KIND: &'static str = "SubnetPool";
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }
}

impl NbObject for AddressScope {
    const TABLE: crate::Table = crate::Table::AddressScope;
    const KIND: &'static str = "AddressScope";
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }
}

impl Deletable for SubnetPool {
    fn deleting(&self) -> bool {
        self.deleting
    }
    fn set_deleting(&mut self, on: bool) {
        self.deleting = on;
    }
}

impl Deletable for AddressScope {
    fn deleting(&self) -> bool {
        self.deleting
    }
    fn set_deleting(&mut self, on: bool) {
        self.deleting = on;
    }
}

/// The claim of `cidr` allocated from pool `pool` (owner: the subnet).
pub fn allocation_claim(pool: &str, cidr: &IpNet) -> String {
    format!("pool/{pool}/{cidr}")
}

/// The claim that makes a pool the default one of `ip_version` (owner: the pool).
pub fn default_pool_claim(ip_version: u8) -> String {
    format!("default-pool/{ip_version}")
}
