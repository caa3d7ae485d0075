//! IPv6 neighbour discovery responder, in the switch as ARP's is: a Neighbour Solicitation
//! for any known address of a network (VM ports' fixed IPs; router interfaces' fixed IPs
//! and link-local address) is turned into the Neighbour Advertisement in place and sent
//! back out of the asking port, so ND for a known address never floods and never reaches
//! the controller. The rewrite needs OVS 2.11+'s `nd_reserved` (the R/S/O flags) and
//! `nd_options_type` (the solicitation's source link-layer option becomes the target
//! link-layer option; its address is written through `nd_sll` before the type changes,
//! since OVS allows `nd_tll` only on a message that already is an advertisement).
//! DAD probes (from `::`) are never answered: the VM is checking its own address. A
//! solicitation without a source link-layer option (a unicast reachability probe) goes
//! on to its target, which answers it itself.

use super::{App, Cx, Flow, Object, Sink, flow};
use crate::apps::here::is_router_port;
use crate::pipeline::{App as AppId, table};
use crate::view::View;
use model::Port;
use openflow::Instruction;
use openflow::action::Action;
use openflow::oxm::{Field, Match, mac_u128};
use std::net::{IpAddr, Ipv6Addr};

const PRIO_ANSWER: u16 = 100;
const PRIO_NO_SLL: u16 = 150;
const PRIO_DAD: u16 = 200;
const ETH_IPV6: u16 = 0x86dd;
const PROTO_ICMPV6: u8 = 58;
/// ICMPv6 Neighbour Solicitation.
pub const NS: u8 = 135;
/// ICMPv6 Neighbour Advertisement.
pub const NA: u8 = 136;
/// The NA's flags in its first reserved word: Router, Solicited, Override.
const FLAG_ROUTER: u32 = 0x8000_0000;
const FLAG_SOLICITED: u32 = 0x4000_0000;
const FLAG_OVERRIDE: u32 = 0x2000_0000;
/// The target link-layer address option.
const OPT_TARGET_LLADDR: u8 = 2;

fn ns() -> Match {
    Match::new()
        .eth_type(ETH_IPV6)
        .ip_proto(PROTO_ICMPV6)
        .icmpv6_type(NS)
}

/// The flows every pipeline has: NS from SERVICES to the ND table; DAD probes,
/// solicitations without a source link-layer option and those for unknown targets go on
/// to L2.
pub fn base() -> Vec<Flow> {
    let to_l2 = |prio: u16, m: Match| {
        flow(
            table::ND,
            prio,
            m,
            AppId::Nd,
            0,
            [Instruction::GotoTable(table::L2)],
        )
    };
    vec![
        flow(
            table::SERVICES,
            PRIO_ANSWER,
            ns(),
            AppId::Nd,
            0,
            [Instruction::GotoTable(table::ND)],
        ),
        to_l2(PRIO_DAD, ns().ipv6_src(Ipv6Addr::UNSPECIFIED)),
        to_l2(
            PRIO_NO_SLL,
            ns().with(openflow::oxm::OxmField::new(Field::NdSll, 0u64)),
        ),
        to_l2(1, Match::new()),
        // Every advertisement made in the ND table: its target link-layer address is the
        // Ethernet source the answer was given, and it goes back where it came from.
        flow(
            table::ND_REPLY,
            PRIO_ANSWER,
            Match::new()
                .eth_type(ETH_IPV6)
                .ip_proto(PROTO_ICMPV6)
                .icmpv6_type(NA),
            AppId::Nd,
            0,
            [
                Instruction::ApplyActions(vec![Action::move_field(
                    Field::EthSrc,
                    Field::NdTll,
                    48,
                )]),
                Instruction::GotoTable(table::REPLY),
            ],
        ),
    ]
}

/// The actions that make a solicitation for `target` the advertisement "`target` is at
/// `mac`", from the target to the solicitor (the option's address is [`table::ND_REPLY`]'s
/// to write).
pub fn answer(mac: [u8; 6], target: Ipv6Addr, router: bool) -> Vec<Action> {
    let mac = mac_u128(mac);
    let flags = FLAG_SOLICITED | FLAG_OVERRIDE | if router { FLAG_ROUTER } else { 0 };
    vec![
        Action::move_field(Field::EthSrc, Field::EthDst, 48),
        Action::set_field(Field::EthSrc, mac),
        Action::move_field(Field::Ipv6Src, Field::Ipv6Dst, 128),
        Action::set_field(Field::Ipv6Src, u128::from(target)),
        Action::set_field(Field::NdReserved, flags),
        Action::set_field(Field::NdOptionsType, OPT_TARGET_LLADDR),
        Action::set_field(Field::Icmpv6Type, NA),
    ]
}

/// The addresses the switch answers for a port: its IPv6 fixed IPs, and a router
/// interface's link-local address (the RAs it sends come from there).
pub fn addresses(p: &Port) -> Vec<Ipv6Addr> {
    let mut out: Vec<Ipv6Addr> = p
        .fixed_ips
        .iter()
        .filter_map(|f| match f.ip_address {
            IpAddr::V6(ip) => Some(ip),
            IpAddr::V4(_) => None,
        })
        .collect();
    if is_router_port(p) && !out.is_empty() {
        out.push(packet::ipv6::link_local(p.mac_address.0));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// One answer per address of the port, in the port's network.
pub fn compile(view: &View, p: &Port) -> Vec<Flow> {
    let Some(net) = view.networks.get(&p.network_id) else {
        return Vec::new();
    };
    let router = is_router_port(p);
    addresses(p)
        .into_iter()
        .map(|ip| {
            flow(
                table::ND,
                PRIO_ANSWER,
                ns().metadata(u64::from(net.unique_key)).nd_target(ip),
                AppId::Nd,
                p.unique_key,
                [
                    Instruction::ApplyActions(answer(p.mac_address.0, ip, router)),
                    Instruction::GotoTable(table::ND_REPLY),
                ],
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
        &[table::SERVICES, table::ND, table::ND_REPLY]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.extend(base()),
            Object::Port(p) => out.extend(compile(cx.view, p)),
            _ => {}
        }
    }
}
