//! Distributed routing: every host routes its own VMs' traffic for the routers of their
//! networks. A frame to a router interface's MAC leaves L2 for L3 with the router key in
//! reg5; L3 (table 60) has one host route per port of the router's networks (decrement
//! TTL, source MAC = the interface on the destination's network, destination MAC = the
//! port's, metadata = its network, reg7 = its key) and sends everything else to L3_ROUTES
//! (table 65), which holds the router's extra routes and its attached subnets by longest
//! prefix. What the switch cannot answer (TTL 0 or 1 matched explicitly, since OVS does
//! not send dec_ttl's INVALID_TTL packet-ins by default; echo to the router; unreachable
//! destinations) goes to the controller, which answers ([`punt`]).

pub mod punt;

use super::here::{is_router_port, on_gateway_subnet, routers_on, routes_for as wanted};
use super::{App, Cx, Flow, Handler, Object, Owner, Settings, Sink, flow};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::{Touched, View};
use ipnet::IpNet;
use model::{Port, Router, RouterInterface, Table};
use openflow::Instruction;
use openflow::action::{Action, OFPCML_NO_BUFFER};
use openflow::oxm::{Field, Match};
use std::net::IpAddr;

/// To the router's own addresses: above the TTL check, so a ping to the router with TTL 1
/// works.
const PRIO_OWN: u16 = 300;
/// TTL (hop limit) 0 or 1: time exceeded, before any routing.
const PRIO_TTL: u16 = 200;
/// A port's address: exact, so above every prefix.
const PRIO_HOST: u16 = 100;
/// The router's other destinations go on to the prefix routes.
const PRIO_TO_ROUTES: u16 = 1;
/// Prefix routes: `PRIO_PREFIX + 2 * length`, plus one for an attached subnet (connected
/// wins over an extra route of the same length).
const PRIO_PREFIX: u16 = 1000;
/// Nothing matches: no route (network unreachable).
const PRIO_NO_ROUTE: u16 = 1;
/// The router MAC in L2.
const PRIO_L2: u16 = 100;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;

fn eth_type(ip: &IpAddr) -> u16 {
    match ip {
        IpAddr::V4(_) => ETH_IPV4,
        IpAddr::V6(_) => ETH_IPV6,
    }
}

fn dst_exact(m: Match, ip: &IpAddr) -> Match {
    match ip {
        IpAddr::V4(a) => m.eth_type(ETH_IPV4).ipv4_dst(*a),
        IpAddr::V6(a) => m.eth_type(ETH_IPV6).ipv6_dst(*a),
    }
}

fn dst_prefix(m: Match, net: &IpNet) -> Match {
    match net {
        IpNet::V4(n) => m
            .eth_type(ETH_IPV4)
            .ipv4_dst_prefix(n.network(), n.prefix_len()),
        IpNet::V6(n) => m
            .eth_type(ETH_IPV6)
            .ipv6_dst_prefix(n.network(), n.prefix_len()),
    }
}

fn mac_u128(mac: [u8; 6]) -> u128 {
    openflow::oxm::mac_u128(mac)
}

/// The whole frame to the controller (the flow's cookie names the router).
fn punt() -> Vec<Instruction> {
    vec![Instruction::ApplyActions(vec![Action::controller(
        OFPCML_NO_BUFFER,
    )])]
}

/// The router whose key is `key`, if this view has it.
pub fn router_by_key(view: &View, key: u32) -> Option<&Router> {
    view.routers.values().find(|r| r.unique_key == key)
}

/// Where a routed packet goes: to `p` at `ip` on the network of interface `i`.
fn deliver(view: &View, i: &RouterInterface, p: &Port) -> Option<Vec<Instruction>> {
    let net = view.networks.get(&p.network_id)?;
    Some(vec![
        Instruction::ApplyActions(vec![
            Action::DecNwTtl,
            Action::set_field(Field::EthSrc, mac_u128(i.mac_address.0)),
            Action::set_field(Field::EthDst, mac_u128(p.mac_address.0)),
            Action::load(reg::DST_PORT, 0, 32, u64::from(p.unique_key)),
        ]),
        Instruction::WriteMetadata {
            metadata: u64::from(net.unique_key),
            mask: u64::MAX,
        },
        Instruction::GotoTable(table::EGRESS),
    ])
}

/// The port of the router's networks that holds `ip` (a VM, not the router itself).
fn port_at<'a>(
    view: &'a View,
    r: &'a Router,
    ip: IpAddr,
) -> Option<(&'a RouterInterface, &'a Port)> {
    r.interfaces
        .iter()
        .filter(|i| i.cidr.contains(&ip))
        .find_map(|i| {
            view.ports_of(&i.network_id)
                .filter(|p| !is_router_port(p))
                .find(|p| p.fixed_ips.iter().any(|f| f.ip_address == ip))
                .map(|p| (i, p))
        })
}

/// All flows of one router, on a host that needs it.
pub fn compile(view: &View, r: &Router) -> Vec<Flow> {
    if !r.admin_state_up || !wanted(view, r) {
        return Vec::new();
    }
    let key = r.unique_key;
    let on_router = || Match::new().masked(reg::ROUTER, key, u32::MAX);
    let mut out = Vec::new();
    let mut families = std::collections::BTreeSet::new();
    let mut linklocals = Vec::new();
    for i in &r.interfaces {
        let Some(net) = view.networks.get(&i.network_id) else {
            continue;
        };
        families.insert(eth_type(&i.ip_address));
        // L2: the interface's MAC in its network is the way into the router.
        out.push(flow(
            table::L2,
            PRIO_L2,
            Match::new()
                .metadata(u64::from(net.unique_key))
                .eth_dst(i.mac_address.0),
            AppId::L3,
            key,
            vec![
                Instruction::ApplyActions(vec![Action::load(reg::ROUTER, 0, 32, u64::from(key))]),
                // By the firewall of the interface (`apps::fwaas::router`), on to L3.
                Instruction::GotoTable(table::ROUTER_FW_IN),
            ],
        ));
        // The router's own address: echo, and unreachable ports, from the controller. An
        // IPv6 interface's link-local address too (once per MAC: a port may hold several
        // subnets).
        let mut own = vec![i.ip_address];
        let ll = IpAddr::V6(packet::ipv6::link_local(i.mac_address.0));
        if i.ip_address.is_ipv6() && !linklocals.contains(&ll) {
            linklocals.push(ll);
            own.push(ll);
        }
        for ip in own {
            out.push(flow(
                table::L3,
                PRIO_OWN,
                dst_exact(on_router(), &ip),
                AppId::L3,
                key,
                punt(),
            ));
        }
        // Host routes to every VM port of the interface's subnet.
        for p in view.ports_of(&i.network_id).filter(|p| !is_router_port(p)) {
            for f in p
                .fixed_ips
                .iter()
                .filter(|f| i.cidr.contains(&f.ip_address))
            {
                if let Some(instructions) = deliver(view, i, p) {
                    out.push(flow(
                        table::L3,
                        PRIO_HOST,
                        dst_exact(on_router(), &f.ip_address),
                        AppId::L3,
                        key,
                        instructions,
                    ));
                }
            }
        }
        // The rest of the subnet: nobody there (host unreachable), by the controller.
        out.push(flow(
            table::L3_ROUTES,
            PRIO_PREFIX + 2 * u16::from(i.cidr.prefix_len()) + 1,
            dst_prefix(on_router(), &i.cidr),
            AppId::L3,
            key,
            punt(),
        ));
    }
    for et in families {
        // TTL (hop limit) 0 or 1: time exceeded, before any routing.
        for ttl in [0u8, 1] {
            out.push(flow(
                table::L3,
                PRIO_TTL,
                on_router()
                    .eth_type(et)
                    .with(openflow::oxm::OxmField::new(Field::IpTtl, u128::from(ttl))),
                AppId::L3,
                key,
                punt(),
            ));
        }
        out.push(flow(
            table::L3_ROUTES,
            PRIO_NO_ROUTE,
            on_router().eth_type(et),
            AppId::L3,
            key,
            punt(),
        ));
    }
    if !r.interfaces.is_empty() {
        out.push(flow(
            table::L3,
            PRIO_TO_ROUTES,
            on_router(),
            AppId::L3,
            key,
            [Instruction::GotoTable(table::L3_ROUTES)],
        ));
    }
    // Extra routes: to the next hop's port, like a host route to it.
    for route in &r.routes {
        let prio = PRIO_PREFIX + 2 * u16::from(route.destination.prefix_len());
        let m = dst_prefix(on_router(), &route.destination);
        if eth_type(&route.nexthop) != eth_type(&route.destination.network()) {
            continue;
        }
        // IPv6 next hops outside are north-south's (apps::nat::ipv6).
        if route.nexthop.is_ipv6() && on_gateway_subnet(view, r, &route.nexthop) {
            continue;
        }
        let instructions = port_at(view, r, route.nexthop)
            .and_then(|(i, p)| deliver(view, i, p))
            // A next hop with no port (yet): unreachable, answered by the controller.
            .unwrap_or_else(punt);
        out.push(flow(
            table::L3_ROUTES,
            prio,
            m,
            AppId::L3,
            key,
            instructions,
        ));
    }
    // Two interfaces never share a subnet (the API refuses overlaps), but a route may
    // repeat another one's prefix: keep the first of equal keys.
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert(f.key.clone()));
    out
}

pub struct L3;

impl App for L3 {
    fn id(&self) -> AppId {
        AppId::L3
    }

    fn tables(&self) -> &'static [u8] {
        &[table::L2, table::L3, table::L3_ROUTES]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        if let Object::Router(r) = obj {
            out.extend(compile(cx.view, r));
        }
    }

    /// A router's flows follow its networks and their ports (host routes, and whether this
    /// host routes for it at all).
    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        let network = match changed.table {
            Table::Network => Some(changed.id.as_str()),
            Table::Port => view.ports.get(&changed.id).map(|p| p.network_id.as_str()),
            _ => None,
        };
        if let Some(n) = network {
            out.extend(routers_on(view, n).map(|r| Touched {
                table: Table::Router,
                id: r.meta.id.clone(),
            }));
        }
    }

    fn handler(&self, settings: &Settings) -> Option<Box<dyn Handler>> {
        Some(Box::new(punt::L3Punt::new(settings.icmp_rate)))
    }
}
