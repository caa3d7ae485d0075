//! FWaaS on router interface ports, where the router's traffic is: routing happens on the
//! sender's host, so what enters a router by an interface is routed on the host of a
//! port of that interface's network, and what the router sends out by it arrives at the
//! host of a port of that network. The ingress policy is enforced where the router
//! routes (router_fw_in 56, between L2 and L3: reg5 = the router, metadata = the
//! interface's network, eth_dst = its MAC), the egress policy where the packet arrives
//! (router_fw_out 111, after the destination's security groups: metadata = the network,
//! eth_src = the interface's MAC, which routing wrote). Both sides of one interface are
//! thus on the hosts of its network's ports, which see every connection through it both
//! ways, in one conntrack zone of the router's on each (given with the networks' zones,
//! under [`zone_key`]): a reply is `+est+rpl` where its request was committed, whichever
//! host routed which way.

use super::{enforce, filters, policy_of, router_side};
use crate::apps::here::routes_for;
use crate::apps::{Flow, Host, flow};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::View;
use model::{Direction, Port, Router, owner};
use openflow::Instruction;
use openflow::oxm::Match;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// The router's own addresses, above its interfaces' ct() flows in router_fw_in.
const PRIO_OWN: u16 = 110;

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

/// What is addressed to the router itself (ping to the gateway; its addresses on every
/// interface) goes on to L3 unfiltered, as neutron-fwaas's iptables driver filters only
/// what the router forwards.
fn to_the_router(r: &Router, m: &Match, key: u32) -> Vec<Flow> {
    let mut own: Vec<IpAddr> = r.interfaces.iter().map(|i| i.ip_address).collect();
    own.extend(
        r.interfaces
            .iter()
            .filter(|i| i.ip_address.is_ipv6())
            .map(|i| IpAddr::V6(packet::ipv6::link_local(i.mac_address.0))),
    );
    own.sort();
    own.dedup();
    own.into_iter()
        .map(|ip| {
            let m = match ip {
                IpAddr::V4(a) => m.clone().eth_type(0x0800).ipv4_dst(a),
                IpAddr::V6(a) => m.clone().eth_type(0x86dd).ipv6_dst(a),
            };
            flow(
                table::ROUTER_FW_IN,
                PRIO_OWN,
                m,
                AppId::Fwaas,
                key,
                [Instruction::GotoTable(table::L3)],
            )
        })
        .collect()
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
            let m = Match::new().metadata(u64::from(net.unique_key));
            let m = match d {
                Direction::Ingress => m
                    .masked(reg::ROUTER, key, u32::MAX)
                    .eth_dst(i.mac_address.0),
                // From another host reg5 is not carried: the MAC says the router.
                Direction::Egress => m.eth_src(i.mac_address.0),
            };
            if d == Direction::Ingress {
                out.extend(to_the_router(r, &m, key));
            }
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
