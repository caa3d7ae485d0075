//! IPv6 neighbour discovery responder: a Neighbour Solicitation for any known port address
//! in a network (VM ports and router interfaces) goes to the controller, which answers
//! with the Neighbour Advertisement ([`punt`]), so ND for a known address never floods.
//! The answer is built by the controller rather than rewritten in the switch: turning an
//! NS into an NA in place needs the ND flags and option-type fields, which this codec does
//! not carry. DAD probes (from `::`) are never answered: the VM is checking its own address.

pub mod punt;

use super::{App, Cx, Flow, Handler, Object, Settings, Sink, flow};
use crate::pipeline::{App as AppId, table};
use crate::view::View;
use model::Port;
use openflow::Instruction;
use openflow::action::{Action, OFPCML_NO_BUFFER};
use openflow::oxm::Match;
use std::net::IpAddr;

const PRIO_ANSWER: u16 = 100;
const PRIO_DAD: u16 = 200;
const ETH_IPV6: u16 = 0x86dd;
const PROTO_ICMPV6: u8 = 58;
/// ICMPv6 Neighbour Solicitation.
pub const NS: u8 = 135;

fn ns() -> Match {
    Match::new()
        .eth_type(ETH_IPV6)
        .ip_proto(PROTO_ICMPV6)
        .icmpv6_type(NS)
}

/// The flows every pipeline has: NS from SERVICES to the ND table; DAD probes and
/// solicitations for unknown targets go on to L2.
pub fn base() -> Vec<Flow> {
    vec![
        flow(
            table::SERVICES,
            PRIO_ANSWER,
            ns(),
            AppId::Nd,
            0,
            [Instruction::GotoTable(table::ND)],
        ),
        flow(
            table::ND,
            PRIO_DAD,
            ns().ipv6_src(std::net::Ipv6Addr::UNSPECIFIED),
            AppId::Nd,
            0,
            [Instruction::GotoTable(table::L2)],
        ),
        flow(
            table::ND,
            1,
            Match::new(),
            AppId::Nd,
            0,
            [Instruction::GotoTable(table::L2)],
        ),
    ]
}

/// One punt per IPv6 fixed address of the port, in the port's network.
pub fn compile(view: &View, p: &Port) -> Vec<Flow> {
    let Some(net) = view.networks.get(&p.network_id) else {
        return Vec::new();
    };
    p.fixed_ips
        .iter()
        .filter_map(|f| match f.ip_address {
            IpAddr::V6(ip) => Some(ip),
            IpAddr::V4(_) => None,
        })
        .map(|ip| {
            flow(
                table::ND,
                PRIO_ANSWER,
                ns().metadata(u64::from(net.unique_key)).nd_target(ip),
                AppId::Nd,
                p.unique_key,
                [Instruction::ApplyActions(vec![Action::controller(
                    OFPCML_NO_BUFFER,
                )])],
            )
        })
        .collect()
}

pub struct Nd;

impl App for Nd {
    fn id(&self) -> AppId {
        AppId::Nd
    }

    fn tables(&self) -> &'static [u8] {
        &[table::SERVICES, table::ND]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.extend(base()),
            Object::Port(p) => out.extend(compile(cx.view, p)),
            _ => {}
        }
    }

    fn handler(&self, _settings: &Settings) -> Option<Box<dyn Handler>> {
        Some(Box::new(punt::NdPunt::default()))
    }
}
