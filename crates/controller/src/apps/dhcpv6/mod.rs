//! DHCPv6 punting: for a local port whose network has a DHCPv6 subnet (DHCP enabled,
//! address mode `dhcpv6-stateful` or `dhcpv6-stateless`), its DHCPv6 client messages (UDP
//! 546 → 547) go to this host's controller (table 31, cookie `AppId::Dhcpv6` + port key),
//! which answers them ([`responder`]). Other networks' messages go on to L2, so a tenant's
//! own DHCPv6 server still works there. Where this controller serves DHCPv6 it is the only
//! server: DHCPv6 server traffic (547 → 546) towards its filtered local ports is dropped
//! (its own replies are packet-outs straight to the port).

pub mod responder;

use super::{App, Cx, Flow, Handler, Host, Object, Owner, Settings, Sink, flow};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::{Touched, View};
use model::{Subnet, Table};
use openflow::Instruction;
use openflow::action::{Action, OFPCML_NO_BUFFER};
use openflow::oxm::Match;
use packet::dhcpv6::{CLIENT_PORT, SERVER_PORT};

/// The per-port punt flow.
pub const PRIO_PUNT: u16 = 100;
/// The flood guard's temporary drop flow, above the punt flow.
pub const PRIO_BLOCK: u16 = 200;
/// In ingress conntrack: as DHCPv4's, above the untracked DHCP replies (200), below ports
/// with port security off (210).
const PRIO_NO_OTHER_SERVER: u16 = 205;
/// In the services table, beside DHCPv4's entry.
const PRIO_SERVICE: u16 = 100;
const PRIO_DEFAULT: u16 = 1;
const ETH_IPV6: u16 = 0x86dd;
const UDP: u8 = 17;

/// The address modes this controller serves DHCPv6 for (slaac needs none).
pub fn is_dhcpv6(s: &Subnet) -> bool {
    s.ip_version == 6
        && s.enable_dhcp
        && matches!(
            s.ipv6_address_mode.as_deref(),
            Some("dhcpv6-stateful") | Some("dhcpv6-stateless")
        )
}

/// The network's DHCPv6 subnets (only those it lists, as DHCPv4's check).
pub fn subnets<'a>(view: &'a View, network_id: &str) -> Vec<&'a Subnet> {
    view.networks
        .get(network_id)
        .map(|n| {
            n.subnets
                .iter()
                .filter_map(|s| view.subnets.get(s))
                .filter(|s| is_dhcpv6(s))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the network has a subnet this controller serves DHCPv6 for.
pub fn network_has_dhcpv6(view: &View, network_id: &str) -> bool {
    !subnets(view, network_id).is_empty()
}

/// DHCPv6 client messages (UDP 546 → 547).
fn client_messages() -> Match {
    Match::new()
        .eth_type(ETH_IPV6)
        .ip_proto(UDP)
        .udp_src(CLIENT_PORT)
        .udp_dst(SERVER_PORT)
}

/// DHCPv6 client messages from the port with key `key`.
pub fn requests_from(key: u32) -> Match {
    Match::new()
        .masked(reg::SRC_PORT, key, u32::MAX)
        .eth_type(ETH_IPV6)
        .ip_proto(UDP)
        .udp_src(CLIENT_PORT)
        .udp_dst(SERVER_PORT)
}

/// The punt flow of a local port. (Port security needs nothing more: clients speak from
/// their link-local address, which table 1 allows, and table 10 passes 546 → 547
/// untracked.)
pub fn compile(view: &View, host: &Host, p: &model::Port) -> Vec<Flow> {
    if p.binding_host_id != view.chassis
        || !host.plugged(&p.meta.id)
        || !network_has_dhcpv6(view, &p.network_id)
    {
        return Vec::new();
    }
    vec![flow(
        table::DHCPV6,
        PRIO_PUNT,
        requests_from(p.unique_key),
        AppId::Dhcpv6,
        p.unique_key,
        [Instruction::ApplyActions(vec![Action::controller(
            OFPCML_NO_BUFFER,
        )])],
    )]
}

/// The flow of a served network with local ports: DHCPv6 server traffic from anyone else
/// (a VM with port security off, a server on a provider network) does not reach the
/// filtered local ports.
pub fn network(view: &View, host: &Host, net: &model::Network) -> Vec<Flow> {
    if !host.zones.contains_key(&net.meta.id) || !network_has_dhcpv6(view, &net.meta.id) {
        return Vec::new();
    }
    vec![flow(
        table::INGRESS_CT,
        PRIO_NO_OTHER_SERVER,
        Match::new()
            .metadata(u64::from(net.unique_key))
            .eth_type(ETH_IPV6)
            .ip_proto(UDP)
            .udp_src(SERVER_PORT)
            .udp_dst(CLIENT_PORT),
        AppId::Dhcpv6,
        net.unique_key,
        vec![],
    )]
}

/// The flood guard's drop for the port with key `key`, for `seconds` (a one-off flow-mod
/// with a hard timeout: the switch removes it itself; the reconciler never owns it).
pub fn block(key: u32, seconds: u16) -> openflow::flow::FlowMod {
    let mut fm = openflow::flow::FlowMod::add(table::DHCPV6, PRIO_BLOCK);
    fm.cookie = crate::pipeline::Cookie {
        app: AppId::Dhcpv6,
        key,
    }
    .encode();
    fm.hard_timeout = seconds.max(1);
    fm.match_ = requests_from(key);
    fm
}

/// DHCPv6 client messages go from the services table to table 31, which punts those of
/// ports on served networks; the rest go on to L2 like any multicast.
fn base() -> [Flow; 2] {
    [
        flow(
            table::SERVICES,
            PRIO_SERVICE,
            client_messages(),
            AppId::Dhcpv6,
            0,
            [Instruction::GotoTable(table::DHCPV6)],
        ),
        flow(
            table::DHCPV6,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Dhcpv6,
            0,
            [Instruction::GotoTable(table::L2)],
        ),
    ]
}

pub struct Dhcpv6;

impl App for Dhcpv6 {
    fn id(&self) -> AppId {
        AppId::Dhcpv6
    }

    fn tables(&self) -> &'static [u8] {
        &[table::SERVICES, table::DHCPV6, table::INGRESS_CT]
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
        // A subnet's mode or enable_dhcp decides its network's and ports' flows, as for
        // DHCPv4 (whose list of them is the same).
        if changed.table == Table::Subnet {
            out.extend(super::dhcp::affected_by_subnet(view, &changed.id));
        }
    }

    fn handler(&self, settings: &Settings) -> Option<Box<dyn Handler>> {
        Some(Box::new(responder::Dhcpv6::new(responder::Config::from(
            &settings.dhcp,
        ))))
    }
}
