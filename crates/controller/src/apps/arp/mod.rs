//! ARP responder: a request for any known port address in a network is answered in the
//! switch, so it is never flooded to other hosts. The request is turned into the reply in
//! place and sent back where it came from.

use super::{App, Cx, Flow, Object, Sink, flow};
use crate::pipeline::{App as AppId, table};
use crate::view::View;
use model::Port;
use openflow::Instruction;
use openflow::action::Action;
use openflow::oxm::{Field, Match};
use std::net::IpAddr;

const PRIO_ANSWER: u16 = 100;
const PRIO_DEFAULT: u16 = 1;
const ETH_TYPE_ARP: u16 = 0x0806;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

/// The actions that make the request a reply from `mac`/`ip`, sent back out its port.
pub fn answer(mac: [u8; 6], ip: std::net::Ipv4Addr) -> Vec<Action> {
    let mac_value = mac.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    vec![
        Action::move_field(Field::EthSrc, Field::EthDst, 48),
        Action::set_field(Field::EthSrc, mac_value),
        Action::set_field(Field::ArpOp, ARP_REPLY),
        Action::move_field(Field::ArpSha, Field::ArpTha, 48),
        Action::move_field(Field::ArpSpa, Field::ArpTpa, 32),
        Action::set_field(Field::ArpSha, mac_value),
        Action::set_field(Field::ArpSpa, u32::from(ip)),
    ]
}

/// One answer per IPv4 address of the port (fixed IPs; allowed address pairs are the
/// VM's own to answer), in the port's network.
pub fn compile(view: &View, p: &Port) -> Vec<Flow> {
    let Some(net) = view.networks.get(&p.network_id) else {
        return Vec::new();
    };
    p.fixed_ips
        .iter()
        .filter_map(|f| match f.ip_address {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .map(|ip| {
            flow(
                table::ARP,
                PRIO_ANSWER,
                Match::new()
                    .metadata(u64::from(net.unique_key))
                    .eth_type(ETH_TYPE_ARP)
                    .masked(Field::ArpOp, ARP_REQUEST, 0xffffu16)
                    .arp_tpa(ip),
                AppId::Arp,
                p.unique_key,
                [
                    Instruction::ApplyActions(answer(p.mac_address.0, ip)),
                    Instruction::GotoTable(table::REPLY),
                ],
            )
        })
        .collect()
}

/// ARP goes from the services table to the responder; a request for an address nobody
/// here knows goes on like any broadcast.
fn base() -> [Flow; 2] {
    [
        flow(
            table::SERVICES,
            PRIO_ANSWER,
            Match::new().eth_type(ETH_TYPE_ARP),
            AppId::Arp,
            0,
            [Instruction::GotoTable(table::ARP)],
        ),
        flow(
            table::ARP,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Arp,
            0,
            [Instruction::GotoTable(table::L2)],
        ),
    ]
}

pub struct Arp;

impl App for Arp {
    fn id(&self) -> AppId {
        AppId::Arp
    }

    fn tables(&self) -> &'static [u8] {
        &[table::SERVICES, table::ARP]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.extend(base()),
            Object::Port(p) => out.extend(compile(cx.view, p)),
            _ => {}
        }
    }
}
