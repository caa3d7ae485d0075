//! Hairpin: a member that connects to its own balancer's VIP and is balanced to itself.
//! After the DNAT the packet would reach the member from its own address, which its
//! kernel drops as a martian; so, as OVN does, such a connection is also source-NATed to
//! the VIP, in a zone of its own ([`HAIRPIN_ZONE`]: a connection gets one NAT binding a
//! zone, and [`super::LB_ZONE`] has the DNAT). The member then sees the VIP connecting
//! (its ingress security groups must let the VIP in), and answers the VIP.
//!
//! - There, lb_out (23): source and destination the member's address, original
//!   destination (`ct_nw_dst`) the VIP → `ct(commit, zone=HAIRPIN_ZONE, nat(src=VIP))`
//!   → lb_hairpin (27) → L2.
//! - Back, services (20), in the member's own egress: from the member's address and port
//!   to the VIP → `ct(nat)` in the hairpin zone (the destination back to the member) →
//!   lb_hairpin (27), a reply: `ct(nat)` in the balancers' zone (the source back to the
//!   VIP and listener port) → lb_hairpin_reply (28): the VIP's MAC to the member's → L2,
//!   and into the member as the reply its egress connection expects.
//!
//! An IPv6 VIP's members get the same flows in IPv6 (`ct_ipv6_dst` for the original
//! destination).

use super::{AppId, ETH_IPV4, ETH_IPV6, eth_type_of, from_port, with_dst, with_src};
use crate::apps::{Flow, flow};
use crate::pipeline::table;
use model::LoadBalancer;
use model::lb::Protocol;
use openflow::Instruction;
use openflow::action::Action;
use openflow::nx::{Ct, CtZone, Nat, ct_flags, nat_flags};
use openflow::oxm::{Field, Match, OxmField, ct_state, mac_u128};
use std::net::{IpAddr, Ipv4Addr};

/// The conntrack zone of hairpin source NAT on every host.
pub const HAIRPIN_ZONE: u16 = 0xfff2;

/// Above the member flows of lb_out (100).
const PRIO_HAIRPIN: u16 = 110;
/// Above the VIP flows of services (150).
const PRIO_REPLY: u16 = 160;
const PRIO_DEFAULT: u16 = 1;

/// A member of the balancer: its address (of the VIP's family: `Ipv4Addr` or `Ipv6Addr`),
/// MAC and, for each listener that reaches it, the protocol and the member's port.
pub struct Member<A = Ipv4Addr> {
    pub addr: A,
    pub mac: [u8; 6],
    pub ports: Vec<(Protocol, u16)>,
}

/// The hairpin flows of balancer `lb` (VIP `vip`, network key `net`) for its members, of
/// the VIP's family.
pub fn flows<A: Copy + Into<IpAddr>>(
    lb: &LoadBalancer,
    vip: A,
    net: u32,
    members: &[Member<A>],
) -> Vec<Flow> {
    let key = lb.unique_key;
    let vip: IpAddr = vip.into();
    let on_net = || {
        Match::new()
            .metadata(u64::from(net))
            .eth_type(eth_type_of(vip))
    };
    // The connection's original destination (`ct_nw_dst` wants a valid one: +trk-inv).
    let to_vip = match vip {
        IpAddr::V4(v) => OxmField::masked(Field::CtNwDst, u32::from(v), u32::MAX),
        IpAddr::V6(v) => OxmField::masked(Field::CtIpv6Dst, u128::from(v), u128::MAX),
    };
    let mut out = Vec::new();
    for m in members {
        let addr: IpAddr = m.addr.into();
        // There: the member balanced to itself through this VIP.
        out.push(flow(
            table::LB_OUT,
            PRIO_HAIRPIN,
            with_dst(with_src(on_net(), addr), addr)
                .ct_state(ct_state::TRK, ct_state::TRK | ct_state::INV)
                .with(to_vip),
            AppId::Lb,
            key,
            [Instruction::ApplyActions(vec![
                // From the VIP (a frame from the member's own MAC is not for it).
                Action::set_field(Field::EthSrc, mac_u128(lb.vip_mac.0)),
                Action::set_field(Field::EthDst, mac_u128(m.mac)),
                not_from_here(),
                snat_to(vip),
            ])],
        ));
        // Back: the member's answers to the VIP from each port it serves on.
        for (proto, port) in &m.ports {
            out.push(flow(
                table::SERVICES,
                PRIO_REPLY,
                with_dst(from_port(with_src(on_net(), addr), *proto, *port), vip),
                AppId::Lb,
                key,
                [Instruction::ApplyActions(vec![Action::Ct(Ct {
                    zone: CtZone::Imm(HAIRPIN_ZONE),
                    recirc_table: table::LB_HAIRPIN,
                    actions: vec![Action::Nat(Nat::default())],
                    ..Ct::default()
                })])],
            ));
        }
        // Un-DNATed: from the VIP to the member, which sees the VIP's MAC answering.
        out.push(flow(
            table::LB_HAIRPIN_REPLY,
            PRIO_HAIRPIN,
            with_dst(with_src(on_net(), vip), addr),
            AppId::Lb,
            key,
            [
                Instruction::ApplyActions(vec![
                    Action::set_field(Field::EthSrc, mac_u128(lb.vip_mac.0)),
                    Action::set_field(Field::EthDst, mac_u128(m.mac)),
                    not_from_here(),
                ]),
                Instruction::GotoTable(table::L2),
            ],
        ));
    }
    out
}

/// OpenFlow drops an output to the port a packet came in by, and a hairpin goes back
/// to it: the packet forgets its in_port (as OVN's loopback flag does).
fn not_from_here() -> Action {
    Action::load(Field::NxmInPort, 0, 16, 0)
}

/// What every pipeline has: after the hairpin zone, a reply goes through the balancers'
/// zone to be un-DNATed, anything else (the way there) on to L2; what lb_hairpin_reply
/// cannot place is dropped.
pub fn base() -> Vec<Flow> {
    let reply = |eth| {
        flow(
            table::LB_HAIRPIN,
            PRIO_HAIRPIN,
            Match::new()
                .eth_type(eth)
                .ct_state(ct_state::TRK | ct_state::RPL, ct_state::TRK | ct_state::RPL),
            AppId::Lb,
            0,
            [Instruction::ApplyActions(vec![Action::Ct(Ct {
                zone: CtZone::Imm(super::LB_ZONE),
                recirc_table: table::LB_HAIRPIN_REPLY,
                actions: vec![Action::Nat(Nat::default())],
                ..Ct::default()
            })])],
        )
    };
    vec![
        reply(ETH_IPV4),
        reply(ETH_IPV6),
        flow(
            table::LB_HAIRPIN,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Lb,
            0,
            [Instruction::GotoTable(table::L2)],
        ),
        flow(
            table::LB_HAIRPIN_REPLY,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Lb,
            0,
            Vec::<Instruction>::new(),
        ),
    ]
}

/// The members of `lb` whose flows this host needs, from the listeners' pools: address
/// and port of each (those of the family `of` keeps), with its MAC from `mac_of`.
pub fn members<A: Ord + Copy>(
    lb: &LoadBalancer,
    of: impl Fn(IpAddr) -> Option<A>,
    mac_of: impl Fn(A) -> Option<[u8; 6]>,
) -> Vec<Member<A>> {
    let mut by_addr: std::collections::BTreeMap<A, Vec<(Protocol, u16)>> = Default::default();
    for l in &lb.listeners {
        let Some(pool) = super::serving(lb, l) else {
            continue;
        };
        for m in &pool.members {
            if let Some(a) = of(m.address) {
                let ports = by_addr.entry(a).or_default();
                if !ports.contains(&(l.protocol, m.protocol_port)) {
                    ports.push((l.protocol, m.protocol_port));
                }
            }
        }
    }
    by_addr
        .into_iter()
        .filter_map(|(addr, ports)| {
            Some(Member {
                addr,
                mac: mac_of(addr)?,
                ports,
            })
        })
        .collect()
}

/// Commits the connection in the hairpin zone with its source NATed to the VIP, then on to
/// [`table::LB_HAIRPIN`]: the members answer the VIP (a hairpin, or a floating IP's holder).
pub fn snat_to_vip(vip: Ipv4Addr) -> Action {
    snat_to(IpAddr::V4(vip))
}

/// [`snat_to_vip`] for a VIP of either family.
pub fn snat_to(vip: IpAddr) -> Action {
    Action::Ct(Ct {
        flags: ct_flags::COMMIT,
        zone: CtZone::Imm(HAIRPIN_ZONE),
        recirc_table: table::LB_HAIRPIN,
        alg: 0,
        actions: vec![Action::Nat(Nat {
            flags: nat_flags::SRC,
            addr_min: Some(vip),
            addr_max: Some(vip),
            ..Nat::default()
        })],
    })
}
