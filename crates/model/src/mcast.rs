//! Multicast group memberships learnt by IGMP and MLD snooping: which hosts have local
//! ports listening to a group of a network, so that every host sends the group's traffic
//! to those hosts only. Written by the hosts themselves (through the server's NB listener),
//! one record per (network, group, host): each record has one writer, so hosts never race.
//! The snooping itself is per network, set by a tag (Neutron has no attribute for it).

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The network tag that turns IGMP/MLD snooping on (OVN's `mcast_snoop`).
pub const SNOOP_TAG: &str = "mcast_snoop";
/// The network tag that floods multicast to groups nobody joined (OVN's
/// `mcast_flood_unregistered`); without it a snooping network drops such traffic.
pub const FLOOD_UNREGISTERED_TAG: &str = "mcast_flood_unregistered";

/// One host's membership in one group of one network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct McastGroup {
    /// [`McastGroup::key`] of the three fields below.
    pub id: String,
    pub network_id: String,
    /// The multicast group (IPv4 224.0.0.0/4 or IPv6 ff00::/8).
    pub group: IpAddr,
    /// The host (chassis name) with members.
    pub chassis: String,
}

impl McastGroup {
    pub fn new(network_id: &str, group: IpAddr, chassis: &str) -> McastGroup {
        McastGroup {
            id: McastGroup::key(network_id, group, chassis),
            network_id: network_id.to_string(),
            group,
            chassis: chassis.to_string(),
        }
    }

    /// The record's id: `network/chassis/group`.
    pub fn key(network_id: &str, group: IpAddr, chassis: &str) -> String {
        format!("{network_id}/{chassis}/{group}")
    }
}

/// Whether snooping may track `group`: a multicast address outside the link-local scopes
/// that are always flooded (224.0.0.0/24, ff02::/16) and the node-local ff01::/16.
pub fn snoopable(group: &IpAddr) -> bool {
    match group {
        IpAddr::V4(a) => a.is_multicast() && a.octets()[..3] != [224, 0, 0],
        IpAddr::V6(a) => a.is_multicast() && !matches!(a.segments()[0], 0xff01 | 0xff02),
    }
}

/// What makes a host's records of a network say `groups`: the records to put and the ids
/// to delete, given the ids it has now (`network/chassis/...`).
pub fn plan(
    network_id: &str,
    chassis: &str,
    groups: &std::collections::BTreeSet<IpAddr>,
    existing: &[String],
) -> (Vec<McastGroup>, Vec<String>) {
    let wanted: std::collections::BTreeMap<String, IpAddr> = groups
        .iter()
        .filter(|g| snoopable(g))
        .map(|g| (McastGroup::key(network_id, *g, chassis), *g))
        .collect();
    let puts = wanted
        .iter()
        .filter(|(id, _)| !existing.contains(id))
        .map(|(_, g)| McastGroup::new(network_id, *g, chassis))
        .collect();
    let deletes = existing
        .iter()
        .filter(|id| !wanted.contains_key(*id))
        .cloned()
        .collect();
    (puts, deletes)
}

/// The id prefix of a host's records in a network.
pub fn prefix(network_id: &str, chassis: &str) -> String {
    format!("{network_id}/{chassis}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_groups_are_not_snooped() {
        for (g, want) in [
            ("239.1.1.1", true),
            ("224.0.1.1", true),
            ("224.0.0.251", false),
            ("10.0.0.1", false),
            ("ff15::1", true),
            ("ff02::fb", false),
            ("ff01::1", false),
            ("fe80::1", false),
        ] {
            assert_eq!(snoopable(&g.parse().unwrap()), want, "{g}");
        }
    }
}
