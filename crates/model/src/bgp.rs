//! BGP dynamic routing (neutron-dynamic-routing): speakers and peers, and the routes a
//! speaker advertises, computed from the model as Neutron does, so the API's
//! `get_advertised_routes` and the speaker process (`dragonflow bgp`) cannot disagree.
//!
//! - Tenant subnets behind a router whose gateway is on one of the speaker's gateway
//!   networks, via the router's gateway address of the speaker's IP version, when the
//!   subnet's address scope is one of the gateway networks' subnets' scopes.
//! - Floating IPs on those networks as host routes (/32) via the underlay address of the
//!   host where the fixed port is bound: DNAT happens there (distributed, like Neutron's
//!   DVR host routes), not on a network node. A floating IP whose port is unbound, whose
//!   host is unknown, or whose host's controller is dead (its heartbeat ran out: the host
//!   is down, and its DNAT with it), is not advertised.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{Chassis, Deletable, FloatingIp, Meta, NbObject, Port, Router, Subnet, SubnetPool};

/// A BGP speaker: the routes of its gateway networks, to its peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpSpeaker {
    #[serde(flatten)]
    pub meta: Meta,
    pub ip_version: u8,
    pub local_as: u32,
    pub advertise_floating_ip_host_routes: bool,
    pub advertise_tenant_networks: bool,
    /// Peer ids, in the order they were added.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Gateway network ids, in the order they were added.
    #[serde(default)]
    pub networks: Vec<String>,
}

/// A BGP peer: where a speaker connects and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpPeer {
    #[serde(flatten)]
    pub meta: Meta,
    pub peer_ip: IpAddr,
    pub remote_as: u32,
    /// `none` or `md5`.
    pub auth_type: String,
    #[serde(default)]
    pub password: Option<String>,
    /// Set while a delete takes it out of the speakers that name it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

impl NbObject for BgpSpeaker {
    const TABLE: crate::Table = crate::Table::BgpSpeaker;
    const KIND: &'static str = "BgpSpeaker";
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }
}

impl NbObject for BgpPeer {
    const TABLE: crate::Table = crate::Table::BgpPeer;
    const KIND: &'static str = "BgpPeer";
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }
}

impl Deletable for BgpPeer {
    fn deleting(&self) -> bool {
        self.deleting
    }
    fn set_deleting(&mut self, on: bool) {
        self.deleting = on;
    }
}

/// What the routes are computed from (any superset of the relevant objects will do).
#[derive(Clone, Copy, Debug, Default)]
pub struct World<'a> {
    pub subnets: &'a [Subnet],
    pub pools: &'a [SubnetPool],
    pub routers: &'a [Router],
    pub floating_ips: &'a [FloatingIp],
    pub ports: &'a [Port],
    pub chassis: &'a [Chassis],
    /// Hosts whose controller's heartbeat ran out (a host with no heartbeat at all is not
    /// among them: only a controller known to have died takes its routes away).
    pub dead_hosts: &'a [String],
}

/// The routes `speaker` advertises: destination → next hop.
pub fn advertised_routes(speaker: &BgpSpeaker, w: &World<'_>) -> BTreeMap<IpNet, IpAddr> {
    let v6 = speaker.ip_version == 6;
    let of_version = |a: &IpAddr| a.is_ipv6() == v6;
    let networks: BTreeSet<&str> = speaker.networks.iter().map(String::as_str).collect();
    let scope_of_pool: HashMap<&str, &str> = w
        .pools
        .iter()
        .filter_map(|p| Some((p.meta.id.as_str(), p.address_scope_id.as_deref()?)))
        .collect();
    let scope_of = |s: &Subnet| {
        s.subnetpool_id
            .as_deref()
            .and_then(|p| scope_of_pool.get(p).copied())
    };
    let subnets: HashMap<&str, &Subnet> =
        w.subnets.iter().map(|s| (s.meta.id.as_str(), s)).collect();
    let mut out = BTreeMap::new();
    if speaker.advertise_tenant_networks {
        // The scopes of the gateway networks' subnets of the speaker's version.
        let scopes: BTreeSet<&str> = w
            .subnets
            .iter()
            .filter(|s| networks.contains(s.network_id.as_str()))
            .filter(|s| (s.ip_version == 6) == v6)
            .filter_map(scope_of)
            .collect();
        for r in w.routers {
            let Some(gw) = &r.external_gateway else {
                continue;
            };
            if !networks.contains(gw.network_id.as_str()) {
                continue;
            }
            let Some(next_hop) = gw
                .external_fixed_ips
                .iter()
                .map(|f| f.ip_address)
                .find(of_version)
            else {
                continue;
            };
            for i in &r.interfaces {
                let Some(s) = subnets.get(i.subnet_id.as_str()) else {
                    continue;
                };
                if (s.ip_version == 6) != v6 {
                    continue;
                }
                if scope_of(s).is_some_and(|sc| scopes.contains(sc)) {
                    out.insert(s.cidr.trunc(), next_hop);
                }
            }
        }
    }
    if speaker.advertise_floating_ip_host_routes {
        let ports: HashMap<&str, &Port> = w.ports.iter().map(|p| (p.meta.id.as_str(), p)).collect();
        let hosts: HashMap<&str, IpAddr> =
            w.chassis.iter().map(|c| (c.id.as_str(), c.ip)).collect();
        for f in w.floating_ips {
            if !networks.contains(f.floating_network_id.as_str())
                || !of_version(&f.floating_ip_address)
            {
                continue;
            }
            // The host of the port behind it: the associated port, or a port forwarding's.
            let port = f.port_id.as_deref().or_else(|| {
                f.port_forwardings
                    .first()
                    .map(|p| p.internal_port_id.as_str())
            });
            let Some(host) = port
                .and_then(|p| ports.get(p))
                .map(|p| p.binding_host_id.as_str())
                .filter(|h| !h.is_empty())
            else {
                continue;
            };
            if w.dead_hosts.iter().any(|d| d == host) {
                continue;
            }
            let Some(&next_hop) = hosts.get(host).filter(|ip| of_version(ip)) else {
                continue;
            };
            out.insert(IpNet::from(f.floating_ip_address), next_hop);
        }
    }
    out
}

#[cfg(test)]
mod tests;
