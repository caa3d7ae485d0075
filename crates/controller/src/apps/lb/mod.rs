//! Distributed L4 load balancing (Octavia, issue 23): every host with a port on a
//! balancer's VIP network balances its own ports' connections to the VIP, so there is no
//! balancer VM and no central hop.
//!
//! Out, after the client's egress security groups (which see the VIP):
//! - services (20): TCP/UDP to a listener's VIP and port (from an allowed CIDR) → 21;
//! - lb (21): `ct(nat)` in [`LB_ZONE`], so an established connection gets its member back
//!   → 22;
//! - lb_select (22): a new connection goes to the listener's select group: one bucket per
//!   member that takes traffic, weighted, each `ct(commit, nat(dst=member:port))` → 23
//!   (OVS hashes the 5-tuple with dp_hash); a known one (`+dnat`: table 21 found its
//!   member, replied or not) goes straight on to 23; a SOURCE_IP pool's listener first
//!   looks up the client's remembered member ([`affinity`]: tables 24 and 26);
//! - lb_out (23): to the member's MAC, then L2 (55) carries it as any frame to the member,
//!   whose ingress security groups see the client and the member's own address; a member
//!   on another network behind a router of the VIP's network goes to that router's MAC
//!   instead, and is routed there (its answer is routed back and un-NATed as any).
//!
//! Back, on the client's host: ingress conntrack (105) sends TCP/UDP from a member's
//! address and port through `ct(nat)` in [`LB_ZONE`] (un-DNAT: the source becomes the
//! VIP) to lb_reply (106), marked in [`reg::LB_FLAGS`] so that it is not taken twice, and
//! 106 resubmits it to 105, where the client's own ingress security groups see the VIP,
//! as a reply to what its egress allowed. A packet from a member that is not a balanced
//! connection comes out of `ct(nat)` unchanged and is filtered as ever.
//!
//! A member balanced to itself is source-NATed to the VIP as well ([`hairpin`]: tables
//! 23, 20, 27 and 28), and so is a connection that came in by a floating IP of the VIP
//! ([`fip`]: held by one host of the network, which the members' answers go back to).
//!
//! The VIP's ARP answer is the ARP responder's: the VIP port is a port of the network.
//! An IPv6 VIP balances over the pool's IPv6 members the same way (members of the other
//! family get nothing), with hairpin, SOURCE_IP persistence and health probes in IPv6;
//! floating IPs are IPv4 only (Neutron's are).

pub mod affinity;
pub mod fip;
pub mod hairpin;
pub mod health;
pub mod stats;

use super::{App, Cx, Flow, Group, Object, Owner, Sink, flow};
use crate::pipeline::{App as AppId, reg, table};
use crate::reconcile::GroupBody;
use crate::view::{Touched, View};
use model::LoadBalancer;
use model::lb::{Listener, Pool, Protocol};
use openflow::Instruction;
use openflow::action::Action;
use openflow::flow::{Bucket, GroupType};
use openflow::nx::{Ct, CtZone, Nat, ct_flags, nat_flags};
use openflow::oxm::{Field, Match, ct_state, mac_u128};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The conntrack zone of balanced connections on every host (north-south NAT has
/// 0xfff0; security groups allocate from the bottom).
pub const LB_ZONE: u16 = 0xfff1;
/// [`reg::LB_FLAGS`] bit: this packet already went through the reply un-NAT.
const UNNATTED: u32 = 1;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const PRIO_VIP: u16 = 150;
const PRIO_NEW: u16 = 100;
const PRIO_EST: u16 = 50;
const PRIO_MEMBER: u16 = 100;
/// Above every other ingress conntrack flow (the unfiltered ports' 210 included): a
/// reply must be un-NATed before anything reads its source.
const PRIO_REPLY: u16 = 220;
const PRIO_DEFAULT: u16 = 1;

/// Bit that sets balancer groups apart from network flood groups (keys use 24 bits,
/// bit 24 is the local-only flood group).
const GROUP_BIT: u32 = 1 << 25;

/// The select group of listener `index` of the balancer with key `key`.
pub fn group_id(key: u32, index: usize) -> u32 {
    GROUP_BIT | ((key & 0xffff) << 8) | (index as u32 & 0xff)
}

fn ipv4(a: IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

fn ipv6(a: IpAddr) -> Option<Ipv6Addr> {
    match a {
        IpAddr::V6(a) => Some(a),
        IpAddr::V4(_) => None,
    }
}

/// The Ethernet type of an address's family.
fn eth_type_of(a: IpAddr) -> u16 {
    if a.is_ipv4() { ETH_IPV4 } else { ETH_IPV6 }
}

/// `m` with destination address `a`, in its family's field.
fn with_dst(m: Match, a: IpAddr) -> Match {
    match a {
        IpAddr::V4(a) => m.ipv4_dst(a),
        IpAddr::V6(a) => m.ipv6_dst(a),
    }
}

/// `m` with source address `a`, in its family's field.
fn with_src(m: Match, a: IpAddr) -> Match {
    match a {
        IpAddr::V4(a) => m.ipv4_src(a),
        IpAddr::V6(a) => m.ipv6_src(a),
    }
}

/// The L4 match of a protocol: destination port `port`.
fn to_port(m: Match, proto: Protocol, port: u16) -> Match {
    let m = m.ip_proto(proto.number());
    match proto {
        Protocol::Tcp => m.tcp_dst(port),
        Protocol::Udp => m.udp_dst(port),
    }
}

/// The L4 match of a protocol: source port `port`.
fn from_port(m: Match, proto: Protocol, port: u16) -> Match {
    let m = m.ip_proto(proto.number());
    match proto {
        Protocol::Tcp => m.tcp_src(port),
        Protocol::Udp => m.udp_src(port),
    }
}

/// The match of a listener's connections: to its VIP and port on the VIP's network.
pub(crate) fn listener_match(net_key: u32, vip: IpAddr, l: &Listener) -> Match {
    let on_net = Match::new()
        .metadata(u64::from(net_key))
        .eth_type(eth_type_of(vip));
    to_port(with_dst(on_net, vip), l.protocol, l.protocol_port)
}

/// The matches into a listener (services, 20): [`listener_match`] from each of its
/// allowed sources (any, when it names none).
pub(crate) fn sources(net_key: u32, vip: IpAddr, l: &Listener) -> Vec<Match> {
    let vip_match = || listener_match(net_key, vip, l);
    if l.allowed_cidrs.is_empty() {
        return vec![vip_match()];
    }
    l.allowed_cidrs
        .iter()
        .filter_map(|c| match (c, vip) {
            (ipnet::IpNet::V4(c), IpAddr::V4(_)) => {
                Some(vip_match().ipv4_src_prefix(c.network(), c.prefix_len()))
            }
            (ipnet::IpNet::V6(c), IpAddr::V6(_)) => {
                Some(vip_match().ipv6_src_prefix(c.network(), c.prefix_len()))
            }
            _ => None,
        })
        .collect()
}

/// An un-NATed answer goes back to ingress conntrack (105), where the client's security
/// groups see it.
fn to_ingress_ct() -> Action {
    Action::Resubmit {
        in_port: 0xfff8,
        table: table::INGRESS_CT,
        ct: false,
    }
}

/// A new connection to member `addr:port`: committed in [`LB_ZONE`] with its destination
/// NATed, on to lb_out.
fn member_nat(addr: IpAddr, port: u16) -> Action {
    Action::Ct(Ct {
        flags: ct_flags::COMMIT,
        zone: CtZone::Imm(LB_ZONE),
        recirc_table: table::LB_OUT,
        alg: 0,
        actions: vec![Action::Nat(Nat {
            flags: nat_flags::DST,
            addr_min: Some(addr),
            addr_max: Some(addr),
            port_min: Some(port),
            port_max: Some(port),
        })],
    })
}

/// The listener's pool when the listener, the pool and the balancer are up.
fn serving<'a>(lb: &'a LoadBalancer, l: &Listener) -> Option<&'a Pool> {
    if !lb.admin_state_up || !l.admin_state_up {
        return None;
    }
    let pool = lb.pool(l.default_pool_id.as_deref()?)?;
    pool.admin_state_up.then_some(pool)
}

/// The MAC a balanced packet to member `addr` is sent to from the VIP's `network`: the
/// member's own port there, or else the VIP network's interface of the first router (by
/// id) that has an interface on the member's subnet. The router then routes it as any
/// packet (on this host: routing is distributed), and routes the member's answer back to
/// the client's network, where the answer is un-NATed as a local member's would be.
fn member_mac(view: &View, network: &str, ip: IpAddr) -> Option<[u8; 6]> {
    if let Some(p) = view
        .ports_of(network)
        .find(|p| p.fixed_ips.iter().any(|f| f.ip_address == ip))
    {
        return Some(p.mac_address.0);
    }
    router_between(view, network, ip).map(|(via, _)| via)
}

/// The first router (by id, up) with an interface on `network` and one on another network
/// whose subnet holds `ip`: the MACs of those two interfaces (`network`'s side, `ip`'s).
pub(crate) fn router_between(view: &View, network: &str, ip: IpAddr) -> Option<([u8; 6], [u8; 6])> {
    let mut routers: Vec<_> = view.routers.values().filter(|r| r.admin_state_up).collect();
    routers.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
    routers.into_iter().find_map(|r| {
        let via = r
            .interfaces
            .iter()
            .find(|i| i.network_id == network && i.ip_address.is_ipv4() == ip.is_ipv4())?;
        let reaches = r
            .interfaces
            .iter()
            .find(|i| i.network_id != network && i.cidr.contains(&ip))?;
        Some((via.mac_address.0, reaches.mac_address.0))
    })
}

/// Whether this host balances for the network: one of its ports there is plugged here.
fn here(cx: Cx<'_>, network: &str) -> bool {
    cx.view
        .ports_of(network)
        .any(|p| cx.host.plugged(&p.meta.id) && p.binding_host_id == cx.view.chassis)
}

/// The flows and groups of one balancer on this host.
pub fn compile(cx: Cx<'_>, lb: &LoadBalancer) -> (Vec<Flow>, Vec<Group>) {
    let (mut flows, mut groups) = (Vec::new(), Vec::new());
    let Some(net) = cx.view.networks.get(&lb.vip_network_id) else {
        return (flows, groups);
    };
    let vip = lb.vip_address;
    if !here(cx, &net.meta.id) {
        // Members on other networks bound here are still checked from here.
        return (health::flows(cx.view, cx.host, lb), groups);
    }
    let key = lb.unique_key;
    let on_net = || {
        Match::new()
            .metadata(u64::from(net.unique_key))
            .eth_type(eth_type_of(vip))
    };
    let mut members = std::collections::BTreeMap::new();
    for (i, l) in lb.listeners.iter().enumerate() {
        let Some(pool) = serving(lb, l) else {
            continue;
        };
        let vip_match = || listener_match(net.unique_key, vip, l);
        // Into the balancer, from the allowed sources only.
        for m in sources(net.unique_key, vip, l) {
            flows.push(flow(
                table::SERVICES,
                PRIO_VIP,
                m,
                AppId::Lb,
                key,
                [Instruction::GotoTable(table::LB)],
            ));
        }
        flows.push(flow(
            table::LB,
            PRIO_VIP,
            vip_match(),
            AppId::Lb,
            key,
            [Instruction::ApplyActions(vec![Action::Ct(Ct {
                zone: CtZone::Imm(LB_ZONE),
                recirc_table: table::LB_SELECT,
                actions: vec![Action::Nat(Nat::default())],
                ..Ct::default()
            })])],
        ));
        // A new connection picks a member (its client's remembered one, for SOURCE_IP).
        let gid = group_id(key, i);
        let affinity = pool.affinity(vip.is_ipv4());
        let pick = match affinity {
            Some(_) => affinity::lookup(vip.is_ipv4()),
            None => vec![Instruction::ApplyActions(vec![Action::Group(gid)])],
        };
        flows.push(flow(
            table::LB_SELECT,
            PRIO_NEW,
            vip_match().ct_state(
                ct_state::TRK | ct_state::NEW,
                ct_state::TRK | ct_state::NEW | ct_state::INV,
            ),
            AppId::Lb,
            key,
            pick,
        ));
        if let Some(a) = affinity {
            let (ipv4, proto) = (vip.is_ipv4(), l.protocol);
            flows.extend(affinity::select(
                key,
                &vip_match,
                proto,
                a,
                pool,
                (gid, ipv4),
            ));
        }
        // Every member that takes traffic is reached (a backup's connections made while
        // the others were down go on); new ones go to the serving ones.
        for m in pool.members.iter().filter(|m| m.takes_traffic()) {
            if m.address.is_ipv4() == vip.is_ipv4() {
                members.insert(m.address, ());
            }
        }
        let buckets = pool
            .serving(vip.is_ipv4())
            .into_iter()
            .map(|m| {
                let actions = match affinity {
                    Some(_) => affinity::bucket(m.address, m.protocol_port),
                    None => vec![member_nat(m.address, m.protocol_port)],
                };
                Bucket {
                    weight: m.weight,
                    ..Bucket::new(actions)
                }
            })
            .collect();
        // The answers of the listener's connections, after their un-NAT: counted
        // (`stats`), then to ingress conntrack as every answer.
        flows.push(flow(
            table::LB_REPLY,
            PRIO_VIP,
            stats::answer_match(net.unique_key, vip, l),
            AppId::Lb,
            key,
            [Instruction::ApplyActions(vec![to_ingress_ct()])],
        ));
        groups.push(Group {
            id: gid,
            body: GroupBody {
                group_type: GroupType::Select,
                buckets,
            },
        });
        // Replies from each member's address and port, un-NATed on the client's host.
        for m in pool.members.iter() {
            let addr = m.address;
            if addr.is_ipv4() != vip.is_ipv4() {
                continue;
            }
            if !first_with(cx.view, lb, addr, Some((l.protocol, m.protocol_port))) {
                continue;
            }
            flows.push(flow(
                table::INGRESS_CT,
                PRIO_REPLY,
                from_port(with_src(on_net(), addr), l.protocol, m.protocol_port).masked(
                    reg::LB_FLAGS,
                    0u32,
                    UNNATTED,
                ),
                AppId::Lb,
                key,
                [Instruction::ApplyActions(vec![
                    Action::load(reg::LB_FLAGS, 0, 1, u64::from(UNNATTED)),
                    Action::Ct(Ct {
                        zone: CtZone::Imm(LB_ZONE),
                        recirc_table: table::LB_REPLY,
                        actions: vec![Action::Nat(Nat::default())],
                        ..Ct::default()
                    }),
                ])],
            ));
        }
    }
    // To each member: by its port's MAC on the VIP's network, or by a router's (a member
    // the view cannot place is not reached).
    for addr in members.keys() {
        if !first_with(cx.view, lb, *addr, None) {
            continue;
        }
        let Some(mac) = member_mac(cx.view, &net.meta.id, *addr) else {
            continue;
        };
        flows.push(flow(
            table::LB_OUT,
            PRIO_MEMBER,
            with_dst(on_net(), *addr),
            AppId::Lb,
            key,
            [
                Instruction::ApplyActions(vec![Action::set_field(Field::EthDst, mac_u128(mac))]),
                Instruction::GotoTable(table::L2),
            ],
        ));
    }
    // A member balanced to itself, of the VIP's family; the VIP's floating IPs (Neutron's
    // are IPv4); the health probes' answers.
    let mac_of = |addr: IpAddr| {
        cx.view
            .ports_of(&net.meta.id)
            .find(|p| p.fixed_ips.iter().any(|f| f.ip_address == addr))
            .map(|p| p.mac_address.0)
    };
    match vip {
        IpAddr::V4(vip) => {
            let hairpinned = hairpin::members(lb, ipv4, |a| mac_of(a.into()));
            flows.extend(hairpin::flows(lb, vip, net.unique_key, &hairpinned));
            flows.extend(fip::flows(cx.view, cx.host, lb, vip, net, &hairpinned));
        }
        IpAddr::V6(vip) => {
            let hairpinned = hairpin::members(lb, ipv6, |a| mac_of(a.into()));
            flows.extend(hairpin::flows(lb, vip, net.unique_key, &hairpinned));
        }
    }
    flows.extend(health::flows(cx.view, cx.host, lb));
    (flows, groups)
}

/// What every pipeline has: a packet of a known connection (its member's NAT applied by
/// table 21: `+dnat`, whether a reply was seen yet or not) and related ones go on from
/// the select table; what
/// the balancer cannot place (invalid, a member with no port) is dropped; un-NATed
/// replies go back to ingress conntrack.
/// The shared flows of tables 21 to 28 and 106, on a host that follows a balancer: no
/// other flow leads there.
fn base(view: &View) -> Vec<Flow> {
    if view.loadbalancers.is_empty() {
        return Vec::new();
    }
    let mut out = affinity::base();
    out.extend(hairpin::base());
    out.extend([
        flow(
            table::LB_SELECT,
            PRIO_EST,
            Match::new().ct_state(
                ct_state::TRK | ct_state::DNAT,
                ct_state::TRK | ct_state::DNAT,
            ),
            AppId::Lb,
            0,
            [Instruction::GotoTable(table::LB_OUT)],
        ),
        flow(
            table::LB_SELECT,
            PRIO_EST,
            Match::new().ct_state(ct_state::TRK | ct_state::REL, ct_state::TRK | ct_state::REL),
            AppId::Lb,
            0,
            [Instruction::GotoTable(table::LB_OUT)],
        ),
        flow(
            table::LB_SELECT,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Lb,
            0,
            Vec::<Instruction>::new(),
        ),
        flow(
            table::LB,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Lb,
            0,
            Vec::<Instruction>::new(),
        ),
        flow(
            table::LB_OUT,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Lb,
            0,
            Vec::<Instruction>::new(),
        ),
        flow(
            table::LB_REPLY,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Lb,
            0,
            [Instruction::ApplyActions(vec![to_ingress_ct()])],
        ),
    ]);
    out
}

/// Whether `lb` is the one balancer of its network (the lowest id) that makes the flows
/// every balancer with member `addr` (on `port`, when given) would make alike: two
/// balancers may front the same member, and one flow has one owner, so the one that
/// owns it must not depend on which balancer changed last.
fn first_with(view: &View, lb: &LoadBalancer, addr: IpAddr, port: Option<(Protocol, u16)>) -> bool {
    let has = |other: &LoadBalancer| {
        other.vip_address.is_ipv4() == addr.is_ipv4()
            && other.listeners.iter().any(|l| {
                serving(other, l).is_some_and(|pool| {
                    pool.members.iter().any(|m| {
                        m.address == addr
                            && port.is_none_or(|(proto, p)| {
                                l.protocol == proto && m.protocol_port == p
                            })
                    })
                })
            })
    };
    !on_network(view, &lb.vip_network_id).any(|other| other.meta.id < lb.meta.id && has(other))
}

/// Whether a member of `lb` is (or is monitored) at one of `port`'s addresses.
fn has_member_at(lb: &LoadBalancer, port: &model::Port) -> bool {
    lb.pools.iter().flat_map(|p| &p.members).any(|m| {
        port.fixed_ips
            .iter()
            .any(|f| f.ip_address == m.address || Some(f.ip_address) == m.monitor_address)
    })
}

/// The balancers whose VIP is on `network`.
fn on_network<'a>(view: &'a View, network: &'a str) -> impl Iterator<Item = &'a LoadBalancer> {
    view.loadbalancers
        .values()
        .filter(move |lb| lb.vip_network_id == network)
}

pub struct Lb;

impl App for Lb {
    fn id(&self) -> AppId {
        AppId::Lb
    }

    fn tables(&self) -> &'static [u8] {
        &[
            table::PORT_SECURITY,
            table::SERVICES,
            table::LB,
            table::LB_SELECT,
            table::LB_OUT,
            table::LB_AFFINITY,
            table::LB_AFFINITY_SELECT,
            table::LB_HAIRPIN,
            table::LB_HAIRPIN_REPLY,
            table::INGRESS_NAT,
            table::INGRESS_SNAT,
            table::EGRESS_NAT,
            table::EGRESS_SNAT,
            table::EGRESS,
            table::FROM_TUNNEL,
            table::INGRESS_CT,
            table::LB_REPLY,
        ]
    }

    fn handler(&self, _settings: &super::Settings) -> Option<Box<dyn super::Handler>> {
        Some(Box::new(health::Checker::default()))
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.extend(base(cx.view)),
            Object::LoadBalancer(lb) => {
                let (flows, groups) = compile(cx, lb);
                out.extend(flows);
                for g in groups {
                    out.group(g);
                }
            }
            _ => {}
        }
    }

    /// A balancer reads its network's ports (which are here, members' MACs), the network
    /// itself, and the network's other balancers (which of them makes a shared member
    /// flow: [`first_with`]); a changed balancer touches every balancer (few per host).
    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        let network = match changed.table {
            model::Table::Network => Some(changed.id.as_str()),
            model::Table::Port => {
                // A member's port on another network (checked from its host): the
                // balancers with a member at one of its addresses, or all of them when
                // it is gone from the view (few balancers per host).
                let port = view.ports.get(&changed.id);
                out.extend(
                    view.loadbalancers
                        .values()
                        .filter(|lb| port.is_none_or(|p| has_member_at(lb, p)))
                        .map(|lb| Touched {
                            table: model::Table::LoadBalancer,
                            id: lb.meta.id.clone(),
                        }),
                );
                port.map(|p| p.network_id.as_str())
            }
            // A floating IP of a VIP, its router or a chassis (the holder's address) may
            // move the VIP's floating IP flows: few balancers per host, all of them.
            model::Table::FloatingIp | model::Table::Router | model::Table::Chassis => {
                out.extend(view.loadbalancers.keys().map(|id| Touched {
                    table: model::Table::LoadBalancer,
                    id: id.clone(),
                }));
                None
            }
            // The view no longer knows the network it was on, if it moved or went. The
            // first balancer here or the last brings or takes the shared flows.
            model::Table::LoadBalancer => {
                out.push(super::base_owner());
                out.extend(view.loadbalancers.keys().map(|id| Touched {
                    table: model::Table::LoadBalancer,
                    id: id.clone(),
                }));
                None
            }
            _ => None,
        };
        if let Some(n) = network {
            out.extend(on_network(view, n).map(|lb| Touched {
                table: model::Table::LoadBalancer,
                id: lb.meta.id.clone(),
            }));
        }
    }
}
