//! DHCP punting: for a local port whose network has a DHCP-enabled IPv4 subnet, its DHCP
//! requests go to this host's controller (table 30, cookie `AppId::Dhcp` + port key), which
//! answers them ([`responder`]). Ports of networks without DHCP fall through to L2, so a
//! DHCP server the tenant runs in a VM still works there. Where this controller serves
//! DHCP, it is the only server: DHCP server traffic towards its filtered local ports is
//! dropped (its own replies are packet-outs straight to the port).

pub mod responder;

use super::{App, Cx, Flow, Handler, Host, Object, Owner, Settings, Sink, flow};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::{Touched, View};
use model::{Port, Table, owner};
use openflow::Instruction;
use openflow::action::{Action, OFPCML_NO_BUFFER};
use openflow::oxm::{Field, Match};
use std::net::{IpAddr, Ipv4Addr};

/// The per-port punt flow.
pub const PRIO_PUNT: u16 = 100;
/// The flood guard's temporary drop flow, above the punt flow.
pub const PRIO_BLOCK: u16 = 200;
/// In port security: above the 0.0.0.0 DHCP allowance (90), below nothing that matters.
const PRIO_PORT_SECURITY: u16 = 95;
/// In ingress conntrack: above the untracked DHCP replies (200), below ports with port
/// security off (210).
const PRIO_NO_OTHER_SERVER: u16 = 205;
/// In the services table, beside the other services' entries.
const PRIO_SERVICE: u16 = 100;
const PRIO_DEFAULT: u16 = 1;
const ETH_IPV4: u16 = 0x0800;
const UDP: u8 = 17;
const ETH_ARP: u16 = 0x0806;
const ARP_REQUEST: u16 = 1;

/// DHCP requests (UDP to port 67) from the port with key `key`.
pub fn requests_from(key: u32) -> Match {
    Match::new()
        .masked(reg::SRC_PORT, key, u32::MAX)
        .eth_type(ETH_IPV4)
        .ip_proto(UDP)
        .udp_dst(packet::dhcpv4::SERVER_PORT)
}

/// Whether the port's network has an IPv4 subnet with DHCP enabled. Only subnets the
/// network lists count, so a subnet being created or deleted is seen consistently
/// whichever of the two changes (subnet, network) arrives first.
pub fn network_has_dhcp(view: &View, network_id: &str) -> bool {
    view.networks.get(network_id).is_some_and(|n| {
        n.subnets.iter().any(|s| {
            view.subnets
                .get(s)
                .is_some_and(|s| s.enable_dhcp && s.ip_version == 4)
        })
    })
}

/// The DHCP flows of a local port.
pub fn compile(view: &View, host: &Host, p: &Port) -> Vec<Flow> {
    if p.binding_host_id != view.chassis
        || !host.plugged(&p.meta.id)
        || !network_has_dhcp(view, &p.network_id)
    {
        return Vec::new();
    }
    let key = p.unique_key;
    let mut out = vec![flow(
        table::DHCP,
        PRIO_PUNT,
        requests_from(key),
        AppId::Dhcp,
        key,
        [Instruction::ApplyActions(vec![Action::controller(
            OFPCML_NO_BUFFER,
        )])],
    )];
    if p.port_security_enabled {
        // A client renewing from an address the port no longer has (its fixed IP was
        // changed through the API) must still reach us to be told NAK; the request only
        // goes to the controller, so this opens nothing else.
        out.push(flow(
            table::PORT_SECURITY,
            PRIO_PORT_SECURITY,
            Match::new()
                .masked(Field::Reg(6), key, u32::MAX)
                .eth_src(p.mac_address.0)
                .eth_type(ETH_IPV4)
                .ip_proto(UDP)
                .udp_src(packet::dhcpv4::CLIENT_PORT)
                .udp_dst(packet::dhcpv4::SERVER_PORT),
            AppId::Dhcp,
            key,
            [Instruction::GotoTable(table::SERVICES)],
        ));
        // For that renewal (unicast) the client first asks for the server's MAC from
        // its old address: requests for the DHCP port's addresses go on to the ARP
        // responder, which answers them in place.
        for ip in server_ips(view, &p.network_id) {
            out.push(flow(
                table::PORT_SECURITY,
                PRIO_PORT_SECURITY,
                Match::new()
                    .masked(Field::Reg(6), key, u32::MAX)
                    .eth_src(p.mac_address.0)
                    .eth_type(ETH_ARP)
                    .arp_op(ARP_REQUEST)
                    .arp_tpa(ip),
                AppId::Dhcp,
                key,
                [Instruction::GotoTable(table::SERVICES)],
            ));
        }
    }
    out
}

/// The flow of a network with a DHCP-enabled subnet and local ports: DHCP server traffic
/// from anyone else (a VM with port security off, a server on a provider network) does
/// not reach the filtered local ports.
pub fn network(view: &View, host: &Host, net: &model::Network) -> Vec<Flow> {
    if !host.zones.contains_key(&net.meta.id) || !network_has_dhcp(view, &net.meta.id) {
        return Vec::new();
    }
    vec![flow(
        table::INGRESS_CT,
        PRIO_NO_OTHER_SERVER,
        Match::new()
            .metadata(u64::from(net.unique_key))
            .eth_type(ETH_IPV4)
            .ip_proto(UDP)
            .udp_src(packet::dhcpv4::SERVER_PORT)
            .udp_dst(packet::dhcpv4::CLIENT_PORT),
        AppId::Dhcp,
        net.unique_key,
        vec![],
    )]
}

/// The IPv4 addresses of the network's DHCP port.
fn server_ips(view: &View, network_id: &str) -> Vec<Ipv4Addr> {
    let Some(network) = view.networks.get(network_id) else {
        return Vec::new();
    };
    let mut ips: Vec<Ipv4Addr> = view
        .ports_of(network_id)
        .filter(|d| responder::is_dhcp_port(network, d))
        .flat_map(|d| &d.fixed_ips)
        .filter_map(|f| match f.ip_address {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .collect();
    ips.sort_unstable();
    ips.dedup();
    ips
}

/// The owners a changed port affects beyond itself: a DHCP port's addresses are in the
/// port security flows of its network's local ports.
pub fn affected_by_port(view: &View, port_id: &str) -> Vec<Owner> {
    match view.ports.get(port_id) {
        Some(d) if d.device_owner == owner::DHCP => view
            .ports_of(&d.network_id)
            .filter(|p| p.meta.id != port_id)
            .map(|p| Touched {
                table: Table::Port,
                id: p.meta.id.clone(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The owners a changed subnet affects: its network and the network's ports (the one it
/// names, and any network still listing it, for a subnet that is gone).
pub fn affected_by_subnet(view: &View, subnet_id: &str) -> Vec<Owner> {
    let mut nets: Vec<&str> = view
        .networks
        .values()
        .filter(|n| n.subnets.iter().any(|s| s == subnet_id))
        .map(|n| n.meta.id.as_str())
        .collect();
    if let Some(s) = view.subnets.get(subnet_id) {
        nets.push(&s.network_id);
    }
    nets.sort_unstable();
    nets.dedup();
    nets.into_iter()
        .flat_map(|n| {
            std::iter::once(Touched {
                table: Table::Network,
                id: n.to_string(),
            })
            .chain(view.ports_of(n).map(|p| Touched {
                table: Table::Port,
                id: p.meta.id.clone(),
            }))
        })
        .collect()
}

/// The flood guard's drop for the port with key `key`, for `seconds` (a one-off flow-mod
/// with a hard timeout: the switch removes it itself; the reconciler never owns it).
pub fn block(key: u32, seconds: u16) -> openflow::flow::FlowMod {
    let mut fm = openflow::flow::FlowMod::add(table::DHCP, PRIO_BLOCK);
    fm.cookie = crate::pipeline::Cookie {
        app: AppId::Dhcp,
        key,
    }
    .encode();
    fm.hard_timeout = seconds.max(1);
    fm.match_ = requests_from(key);
    fm
}

/// DHCP requests go from the services table to the DHCP table, which punts those of ports
/// with DHCP; with no DHCP here (enable_dhcp off), a request goes on like any broadcast.
fn base() -> [Flow; 2] {
    [
        flow(
            table::SERVICES,
            PRIO_SERVICE,
            Match::new()
                .eth_type(ETH_IPV4)
                .ip_proto(UDP)
                .udp_dst(packet::dhcpv4::SERVER_PORT),
            AppId::Dhcp,
            0,
            [Instruction::GotoTable(table::DHCP)],
        ),
        flow(
            table::DHCP,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Dhcp,
            0,
            [Instruction::GotoTable(table::L2)],
        ),
    ]
}

pub struct Dhcp;

impl App for Dhcp {
    fn id(&self) -> AppId {
        AppId::Dhcp
    }

    fn tables(&self) -> &'static [u8] {
        &[
            table::PORT_SECURITY,
            table::SERVICES,
            table::DHCP,
            table::INGRESS_CT,
        ]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.extend(base()),
            Object::Port(p) => out.extend(compile(cx.view, cx.host, p)),
            Object::Network(n) => out.extend(network(cx.view, cx.host, n)),
            _ => {}
        }
    }

    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        match changed.table {
            Table::Port => out.extend(affected_by_port(view, &changed.id)),
            Table::Subnet => out.extend(affected_by_subnet(view, &changed.id)),
            _ => {}
        }
    }

    fn handler(&self, settings: &Settings) -> Option<Box<dyn Handler>> {
        Some(Box::new(responder::Dhcp::new(settings.dhcp.clone())))
    }
}
