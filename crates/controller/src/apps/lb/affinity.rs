//! SOURCE_IP affinity (`lb_algorithm` SOURCE_IP or `session_persistence` SOURCE_IP): one
//! client address keeps one member, on the model of OVN's load-balancer affinity.
//!
//! - lb_select (22), a new connection to such a listener: clears [`reg::LB_MEMBER_ADDR`]
//!   and [`reg::LB_MEMBER_PORT`], resubmits to lb_affinity (24), goes to
//!   lb_affinity_select (26);
//! - lb_affinity (24) holds only learned flows: (network, client address under the
//!   granularity's mask, VIP, protocol, VIP port) → load the remembered member's address
//!   and port; none (yet, or expired): the registers stay 0;
//! - lb_affinity_select (26): one flow per member that takes traffic, matching its address
//!   and port in the registers → learn it into 24 (with the pool's idle timeout: the
//!   memory is refreshed, or replaced) and `ct(commit, nat(dst=member))` as a plain bucket
//!   would; the rest (no memory, or a member gone, disabled or marked down) → the select
//!   group, whose buckets only load their member into the registers and resubmit to 26.
//!
//! The learn is in a flow, not in the buckets: OVS runs a bucket as an action set, which
//! keeps set-field and load actions and one final `ct`, `resubmit`, `group` or `output`,
//! and silently drops a `learn`. The member is remembered by address and port, not by its
//! place in the pool, so that removing another member moves no client. Learned flows live
//! in the switch only: a controller resync deletes what it did not make, and the next
//! connection picks and learns again.
//!
//! An IPv6 VIP's listeners do the same with the client's IPv6 address (under an IPv6
//! netmask) and the member's IPv6 address in [`reg::LB_MEMBER_ADDR6`] (128 bits: reg2
//! holds only an IPv4 one).

use super::{PRIO_NEW, member_nat};
use crate::apps::{Flow, flow};
use crate::pipeline::{App as AppId, Cookie, reg, table};
use model::lb::{Member, Pool, Protocol};
use openflow::Instruction;
use openflow::action::Action;
use openflow::nx::{Learn, LearnSpec, LearnSrc, Subfield};
use openflow::oxm::{Field, Match, OxmField};
use std::net::IpAddr;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
/// Below the per-member flows of 26: a listener's fallback to its group.
const PRIO_GROUP: u16 = 50;
const PRIO_DEFAULT: u16 = 1;

/// Loads member address `addr` into its family's register (0: clears it).
fn load_member(addr: IpAddr) -> Action {
    match addr {
        IpAddr::V4(a) => Action::load(reg::LB_MEMBER_ADDR, 0, 32, u32::from(a).into()),
        // NXAST_REG_LOAD carries 64 bits at most: the 128-bit register takes REG_LOAD2.
        IpAddr::V6(a) => Action::RegLoad2(OxmField::new(reg::LB_MEMBER_ADDR6, u128::from(a))),
    }
}

/// The unspecified address of the VIP's family (`ipv4` or not): no member.
fn none(ipv4: bool) -> IpAddr {
    if ipv4 {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    }
}

/// The actions of lb_select's new-connection flow of an affinity listener of an IPv4
/// VIP (`ipv4`) or an IPv6 one.
pub fn lookup(ipv4: bool) -> Vec<Instruction> {
    vec![
        Instruction::ApplyActions(vec![
            load_member(none(ipv4)),
            Action::load(reg::LB_MEMBER_PORT, 0, 32, 0),
            Action::resubmit_table(table::LB_AFFINITY),
        ]),
        Instruction::GotoTable(table::LB_AFFINITY_SELECT),
    ]
}

/// The bucket of member `addr:port` of an affinity listener's group: the choice into the
/// registers, then lb_affinity_select's flow of that member learns and NATs it.
pub fn bucket(addr: IpAddr, port: u16) -> Vec<Action> {
    vec![
        load_member(addr),
        Action::load(reg::LB_MEMBER_PORT, 0, 32, port.into()),
        Action::resubmit_table(table::LB_AFFINITY_SELECT),
    ]
}

/// The learn action of member `addr:port`: remember it for this client (under a `/prefix`
/// mask), VIP and VIP port, for `idle` seconds. The client and VIP are of the member's
/// family.
fn learn(key: u32, proto: Protocol, (idle, prefix): (u16, u8), addr: IpAddr, port: u16) -> Action {
    let sub = Subfield::whole;
    let m = |src, dst| LearnSpec::Match { src, dst };
    let f = |field| LearnSrc::Field(sub(field));
    let l4 = match proto {
        Protocol::Tcp => Field::TcpDst,
        Protocol::Udp => Field::UdpDst,
    };
    let (eth, src, dst, reg, member) = match addr {
        IpAddr::V4(a) => (
            ETH_IPV4,
            Field::Ipv4Src,
            Field::Ipv4Dst,
            reg::LB_MEMBER_ADDR,
            u128::from(u32::from(a)),
        ),
        IpAddr::V6(a) => (
            ETH_IPV6,
            Field::Ipv6Src,
            Field::Ipv6Dst,
            reg::LB_MEMBER_ADDR6,
            u128::from(a),
        ),
    };
    let mut specs = vec![
        m(f(Field::Metadata), sub(Field::Metadata)),
        m(LearnSrc::Imm(eth.into()), sub(Field::EthType)),
        m(LearnSrc::Imm(proto.number().into()), sub(Field::IpProto)),
    ];
    // A /0 granularity is every client on one member: no source match at all.
    let bits = src.bits();
    let prefix = u16::from(prefix).min(bits);
    if prefix > 0 {
        let src = Subfield::new(src, bits - prefix, prefix);
        specs.push(m(LearnSrc::Field(src), src));
    }
    specs.extend([
        m(f(dst), sub(dst)),
        m(f(l4), sub(l4)),
        LearnSpec::Load {
            src: LearnSrc::Imm(member),
            dst: sub(reg),
        },
        LearnSpec::Load {
            src: LearnSrc::Imm(port.into()),
            dst: Subfield::new(reg::LB_MEMBER_PORT, 0, 16),
        },
    ]);
    Action::Learn(Learn {
        idle_timeout: idle,
        priority: PRIO_NEW,
        cookie: Cookie {
            app: AppId::Lb,
            key,
        }
        .encode(),
        table_id: table::LB_AFFINITY,
        specs,
        ..Learn::default()
    })
}

/// lb_affinity_select's flows of one listener (`vip` matches its VIP and port): each
/// member of the pool that takes traffic and is of the VIP's family (`ipv4` or not), by
/// the registers, learned and NATed; the rest to the group `gid`.
pub fn select(
    key: u32,
    vip: &dyn Fn() -> Match,
    proto: Protocol,
    affinity: (u16, u8),
    pool: &Pool,
    (gid, ipv4): (u32, bool),
) -> Vec<Flow> {
    let mut out: Vec<Flow> = pool
        .serving(ipv4)
        .into_iter()
        .map(|m: &Member| {
            let held = match m.address {
                IpAddr::V4(a) => vip().masked(reg::LB_MEMBER_ADDR, u32::from(a), u32::MAX),
                IpAddr::V6(a) => vip().masked(reg::LB_MEMBER_ADDR6, u128::from(a), u128::MAX),
            };
            flow(
                table::LB_AFFINITY_SELECT,
                PRIO_NEW,
                held.masked(reg::LB_MEMBER_PORT, u32::from(m.protocol_port), u32::MAX),
                AppId::Lb,
                key,
                [Instruction::ApplyActions(vec![
                    learn(key, proto, affinity, m.address, m.protocol_port),
                    member_nat(m.address, m.protocol_port),
                ])],
            )
        })
        .collect();
    out.push(flow(
        table::LB_AFFINITY_SELECT,
        PRIO_GROUP,
        vip(),
        AppId::Lb,
        key,
        [Instruction::ApplyActions(vec![Action::Group(gid)])],
    ));
    out
}

/// What every pipeline has: a lookup that finds nothing leaves the registers at 0, and
/// what lb_affinity_select cannot place is dropped.
pub fn base() -> Vec<Flow> {
    vec![
        flow(
            table::LB_AFFINITY,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Lb,
            0,
            Vec::<Instruction>::new(),
        ),
        flow(
            table::LB_AFFINITY_SELECT,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Lb,
            0,
            Vec::<Instruction>::new(),
        ),
    ]
}
