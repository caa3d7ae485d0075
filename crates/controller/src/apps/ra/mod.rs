//! Router advertisements, answered by each host's controller for its own ports (no radvd,
//! no agent): a router solicitation (ICMPv6 133) goes from the services table to table
//! 46, which sends those of local ports on networks with a subnet in an `ipv6_ra_mode` to
//! the controller (cookie `App::Ra` + port key); [`responder`] answers with the RA of
//! every router interface on the network ([`advert`]) out of the asking port, and sends
//! the unsolicited ones to local ports only. Solicitations on other networks go on to L2
//! (a tenant's own router in a VM still works there).

pub mod advert;
pub mod responder;

use super::{App, Cx, Flow, Handler, Host, Object, Owner, Settings, Sink, flow};
use crate::apps::here::is_router_port;
use crate::pipeline::{App as AppId, reg, table};
use crate::view::{Touched, View};
use model::{Port, Table};
use openflow::Instruction;
use openflow::action::{Action, OFPCML_NO_BUFFER};
use openflow::oxm::Match;

const PRIO_PUNT: u16 = 100;
/// The flood guard's temporary drop flow, above the punt flow.
pub const PRIO_BLOCK: u16 = 200;
/// In the services table, beside ND's entry (which matches type 135 only).
const PRIO_SERVICE: u16 = 100;
const PRIO_DEFAULT: u16 = 1;
const ETH_IPV6: u16 = 0x86dd;
const ICMPV6: u8 = 58;
/// ICMPv6 Router Solicitation.
pub const RS: u8 = 133;

fn rs() -> Match {
    Match::new()
        .eth_type(ETH_IPV6)
        .ip_proto(ICMPV6)
        .icmpv6_type(RS)
}

/// Router solicitations from the port with key `key`.
pub fn solicitations_from(key: u32) -> Match {
    rs().masked(reg::SRC_PORT, key, u32::MAX)
}

/// The flood guard's drop of the solicitations of the port with key `key`, for `seconds`
/// (a one-off flow-mod with a hard timeout: the switch removes it itself; the reconciler
/// never owns it).
pub fn block(key: u32, seconds: u16) -> openflow::flow::FlowMod {
    let mut fm = openflow::flow::FlowMod::add(table::RA, PRIO_BLOCK);
    fm.cookie = crate::pipeline::Cookie {
        app: AppId::Ra,
        key,
    }
    .encode();
    fm.hard_timeout = seconds.max(1);
    fm.match_ = solicitations_from(key);
    fm
}

/// RS from the services table to table 46; what no port flow takes goes on to L2.
fn base() -> [Flow; 2] {
    [
        flow(
            table::SERVICES,
            PRIO_SERVICE,
            rs(),
            AppId::Ra,
            0,
            [Instruction::GotoTable(table::RA)],
        ),
        flow(
            table::RA,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Ra,
            0,
            [Instruction::GotoTable(table::L2)],
        ),
    ]
}

/// The punt of a local port's solicitations, if its network advertises.
pub fn compile(view: &View, host: &Host, p: &Port) -> Option<Flow> {
    if !host.plugged(&p.meta.id)
        || is_router_port(p)
        || !advert::network_advertises(view, &p.network_id)
    {
        return None;
    }
    Some(flow(
        table::RA,
        PRIO_PUNT,
        solicitations_from(p.unique_key),
        AppId::Ra,
        p.unique_key,
        [Instruction::ApplyActions(vec![Action::controller(
            OFPCML_NO_BUFFER,
        )])],
    ))
}

pub struct Ra;

impl App for Ra {
    fn id(&self) -> AppId {
        AppId::Ra
    }

    fn tables(&self) -> &'static [u8] {
        &[table::SERVICES, table::RA]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.extend(base()),
            Object::Port(p) => out.extend(compile(cx.view, cx.host, p)),
            _ => {}
        }
    }

    /// A subnet's RA mode decides its network's ports' punts.
    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        if changed.table == Table::Subnet {
            out.extend(super::dhcp::affected_by_subnet(view, &changed.id));
        }
    }

    fn handler(&self, _settings: &Settings) -> Option<Box<dyn Handler>> {
        Some(Box::new(responder::Ra::default()))
    }
}
