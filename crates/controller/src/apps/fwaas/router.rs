//! FWaaS on router interface ports: enforced where the router routes, which is every
//! host with a port on one of its networks (routing happens on the sender's host). The
//! ingress policy of an interface filters what enters the router from its network
//! (router_fw_in 56, between L2 and L3: metadata = its network, eth_dst = its MAC); the
//! egress policy what the router sends into that network (router_fw_out 72, after the
//! route rewrote the packet: metadata = its network, eth_src = its MAC). Both in one
//! conntrack zone of the router's on this host (given with the networks' zones, under
//! [`zone_key`]), so a reply is `+est+rpl` at every interface its request passed.

use super::{enforce, filters, policy_of, router_side};
use crate::apps::here::routes_for;
use crate::apps::{Flow, Host};
use crate::pipeline::reg;
use crate::view::View;
use model::{Direction, Port, Router, owner};
use openflow::oxm::Match;
use std::collections::BTreeSet;

/// Whether `p` is a router's interface port.
pub fn is_interface(p: &Port) -> bool {
    owner::ROUTER_INTERFACE_OWNERS.contains(&p.device_owner.as_str())
}

/// The key of router `id`'s firewall zone in `Host::zones` (network ids are UUIDs: no
/// network has this one).
pub fn zone_key(id: &str) -> String {
    format!("router/{id}")
}

/// Whether this host enforces a firewall group for router `r`: it routes for it and one
/// of its interfaces is in a group.
pub fn enforced(view: &View, r: &Router) -> bool {
    r.admin_state_up
        && r.interfaces
            .iter()
            .any(|i| view.fw_group_of(&i.port_id).is_some_and(filters))
        && routes_for(view, r)
}

/// The firewall flows of router `r` on this host (owner: the router).
pub fn compile(view: &View, host: &Host, r: &Router) -> Vec<Flow> {
    if !enforced(view, r) {
        return Vec::new();
    }
    let zone = host.zones.get(&zone_key(&r.meta.id)).copied();
    let key = r.unique_key;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for i in &r.interfaces {
        // A port with several subnets is several interfaces of one MAC.
        if !seen.insert(i.port_id.as_str()) {
            continue;
        }
        let (Some(g), Some(net)) = (
            view.fw_group_of(&i.port_id).filter(|g| filters(g)),
            view.networks.get(&i.network_id),
        ) else {
            continue;
        };
        for d in [Direction::Ingress, Direction::Egress] {
            let m = Match::new()
                .masked(reg::ROUTER, key, u32::MAX)
                .metadata(u64::from(net.unique_key));
            let m = match d {
                Direction::Ingress => m.eth_dst(i.mac_address.0),
                Direction::Egress => m.eth_src(i.mac_address.0),
            };
            let pid = policy_of(g, d);
            out.extend(enforce(
                view,
                (router_side(d), &m),
                zone,
                pid,
                g.admin_state_up,
                key,
            ));
        }
    }
    out
}
