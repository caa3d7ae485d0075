//! Internal DNS, answered on the VM's own host with no agent: the services table sends UDP
//! to port 53 to the DNS table (32), where queries to a network's DNS address (the DHCP
//! port's addresses, which DHCP hands out as the DNS server when the subnet names none)
//! go to this host's controller (cookie `AppId::Dns` + network key; the asking port is
//! reg6, set at classification: only local VM ports' frames pass table 20). The flows are
//! the network's, so a DHCP port that changes or goes recompiles one owner. The
//! [`responder`] answers the names of the ports the asker may see ([`names`]) and hands
//! the rest to the runtime to forward upstream. Anything else goes on to L2.

pub mod names;
pub mod responder;
pub mod tcp;

use super::{App, Cx, Flow, Handler, Host, Object, Owner, Settings, Sink, flow, is_local};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::{Touched, View};
use model::{Network, Port, Table, owner};
use openflow::Instruction;
use openflow::action::{Action, OFPCML_NO_BUFFER};
use openflow::oxm::Match;
use std::net::IpAddr;

/// The punt flows.
pub const PRIO_PUNT: u16 = 100;
/// The flood guard's temporary drop, above the punt flows.
pub const PRIO_BLOCK: u16 = 200;
/// In the services table, beside the other services' entries.
const PRIO_SERVICE: u16 = 100;
const PRIO_DEFAULT: u16 = 1;
const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const UDP: u8 = 17;
const TCP: u8 = 6;

/// Whether `d` is the network's DHCP port, whose addresses are the network's DNS
/// addresses: owned by `network:dhcp` and by the network's project (a tenant sharing the
/// network cannot make its port the resolver).
pub fn is_dns_port(network: &Network, d: &Port) -> bool {
    d.device_owner == owner::DHCP && d.meta.project_id == network.meta.project_id
}

/// The network's DNS addresses (its DHCP port's), sorted.
pub fn server_addresses(view: &View, network_id: &str) -> Vec<(IpAddr, model::MacAddr)> {
    let Some(network) = view.networks.get(network_id) else {
        return Vec::new();
    };
    let mut out: Vec<_> = view
        .ports_of(network_id)
        .filter(|d| is_dns_port(network, d))
        .flat_map(|d| d.fixed_ips.iter().map(|f| (f.ip_address, d.mac_address)))
        .collect();
    out.sort_unstable();
    out.dedup_by_key(|(ip, _)| *ip);
    out
}

/// Queries on the network with key `key` to `server` (UDP, port 53).
pub fn queries_to(key: u32, server: IpAddr) -> Match {
    let m = Match::new().metadata(u64::from(key));
    let m = match server {
        IpAddr::V4(a) => m.eth_type(ETH_IPV4).ip_proto(UDP).ipv4_dst(a),
        IpAddr::V6(a) => m.eth_type(ETH_IPV6).ip_proto(UDP).ipv6_dst(a),
    };
    m.udp_dst(packet::dns::PORT)
}

/// Queries over TCP on the network with key `key` to `server`, port 53.
pub fn tcp_to(key: u32, server: IpAddr) -> Match {
    let m = Match::new().metadata(u64::from(key));
    let m = match server {
        IpAddr::V4(a) => m.eth_type(ETH_IPV4).ip_proto(TCP).ipv4_dst(a),
        IpAddr::V6(a) => m.eth_type(ETH_IPV6).ip_proto(TCP).ipv6_dst(a),
    };
    m.tcp_dst(packet::dns::PORT)
}

/// The DNS flows of a network with a local port, per DNS address: UDP punted; TCP to the
/// metadata table, whose per-port flows take it to this host's server (DNS over TCP, the
/// fallback for truncated answers) the way they take metadata requests, learning the way
/// back, so the answers pass the port's ingress conntrack and security groups.
pub fn compile(view: &View, host: &Host, net: &Network) -> Vec<Flow> {
    if !view.ports_of(&net.meta.id).any(|p| is_local(view, host, p)) {
        return Vec::new();
    }
    let key = net.unique_key;
    server_addresses(view, &net.meta.id)
        .into_iter()
        .flat_map(|(ip, _)| {
            [
                flow(
                    table::DNS,
                    PRIO_PUNT,
                    queries_to(key, ip),
                    AppId::Dns,
                    key,
                    [Instruction::ApplyActions(vec![Action::controller(
                        OFPCML_NO_BUFFER,
                    )])],
                ),
                flow(
                    table::DNS,
                    PRIO_PUNT,
                    tcp_to(key, ip),
                    AppId::Dns,
                    key,
                    [Instruction::GotoTable(table::METADATA)],
                ),
            ]
        })
        .collect()
}

/// The flood guard's drops of every query of the port with key `key` (reg6; IPv4 and IPv6),
/// for `seconds` (one-off flow-mods with a hard timeout, never owned by the reconciler).
pub fn block(key: u32, seconds: u16) -> [openflow::flow::FlowMod; 2] {
    [ETH_IPV4, ETH_IPV6].map(|eth| {
        let mut fm = openflow::flow::FlowMod::add(table::DNS, PRIO_BLOCK);
        fm.cookie = crate::pipeline::Cookie {
            app: AppId::Dns,
            key,
        }
        .encode();
        fm.hard_timeout = seconds.max(1);
        fm.match_ = Match::new()
            .masked(reg::SRC_PORT, key, u32::MAX)
            .eth_type(eth)
            .ip_proto(UDP)
            .udp_dst(packet::dns::PORT);
        fm
    })
}

/// UDP and TCP to port 53 go from the services table to the DNS table; what no network's
/// flow takes there (a query to another resolver) goes on to L2.
fn base() -> Vec<Flow> {
    let mut out: Vec<Flow> = [ETH_IPV4, ETH_IPV6]
        .into_iter()
        .flat_map(|eth| {
            [
                Match::new()
                    .eth_type(eth)
                    .ip_proto(UDP)
                    .udp_dst(packet::dns::PORT),
                Match::new()
                    .eth_type(eth)
                    .ip_proto(TCP)
                    .tcp_dst(packet::dns::PORT),
            ]
        })
        .map(|m| {
            flow(
                table::SERVICES,
                PRIO_SERVICE,
                m,
                AppId::Dns,
                0,
                [Instruction::GotoTable(table::DNS)],
            )
        })
        .collect();
    out.push(flow(
        table::DNS,
        PRIO_DEFAULT,
        Match::new(),
        AppId::Dns,
        0,
        [Instruction::GotoTable(table::L2)],
    ));
    out
}

/// The owner a changed port affects: its network, whose flows name the DHCP port's
/// addresses and depend on whether a local port is there (a port that left a network
/// touches that network itself, `View::put`).
fn affected_by_port(view: &View, port_id: &str) -> Option<Owner> {
    view.ports.get(port_id).map(|p| Touched {
        table: Table::Network,
        id: p.network_id.clone(),
    })
}

pub struct Dns;

impl App for Dns {
    fn id(&self) -> AppId {
        AppId::Dns
    }

    fn tables(&self) -> &'static [u8] {
        &[table::SERVICES, table::DNS]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.extend(base()),
            Object::Network(n) => out.extend(compile(cx.view, cx.host, n)),
            _ => {}
        }
    }

    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        if changed.table == Table::Port {
            out.extend(affected_by_port(view, &changed.id));
        }
    }

    fn handler(&self, settings: &Settings) -> Option<Box<dyn Handler>> {
        Some(Box::new(responder::DnsResponder::new(settings.dns.clone())))
    }
}
