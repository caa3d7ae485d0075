//! Security groups: stateful filtering of local ports with conntrack in tables 10/15
//! (egress) and 105/110 (ingress), remote groups as conjunctive flows, the per-host
//! conntrack zone of each network, and the conntrack flushes that cut connections a
//! removed rule allowed.
//!
//! Every IP packet of a port with port security on goes through `ct()` in the zone of its
//! network (the zone is loaded into [`ZONE_REG`] first so that commits can name it).
//! Replies (`+est+rpl`), related packets and connections this side already accepted pass;
//! invalid ones are dropped; anything else must match a rule, which commits it. Egress and
//! ingress share the zone, so a connection between two ports of one network on one host is
//! one conntrack entry seen twice: the side that accepted it sets its bit in `ct_mark`
//! ([`MARK_EGRESS`], [`MARK_INGRESS`]), and the other side still checks its own rules
//! until it has set its bit too.
//!
//! Remote groups: a rule `R` with `remote_group_id = G` is a two-clause conjunction: clause
//! 1 is "the local port holding R's group, and R's protocol and ports" (flows owned by that
//! port), clause 2 is "the remote end is a member of G" (flows owned by each member port,
//! one per address, with one conjunction action per rule that names G). The flows grow
//! with rules plus members, not with their product; a member joining or leaving
//! recompiles only that member, and what a departed member was allowed is cut once per
//! group ([`Cuts::update`]).
//!
//! An address alone does not make a member: projects overlap, and a VM on a shared
//! network may hold another project's member address as an allowed address pair. Clause 2
//! matches where a member's packets can really be: on the member's network (metadata) from
//! its own MAC, or on another network of a router it sits behind, from that router's MAC
//! there (routing happens on the member's host, which rewrites the source MAC). The
//! routed half is owned by the router ([`router`]). Replies keep working by conntrack;
//! only the first packet of a connection is matched here.
//!
//! Address groups and stateless groups: see [`address_groups`] and [`stateless`].

mod address_groups;
mod cuts;
mod stateless;
mod zones;

pub use cuts::Cuts;
pub use zones::{ZoneChanges, assign_zones};

use super::here::routes_for;
use super::{App, Cx, Flow, Host, Object, Owner, Sink, flow};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::{Touched, View};
use ipnet::IpNet;
use model::{Direction, EtherType, MacAddr, Network, Port, Router, SecurityGroupRule, Table};
use openflow::Instruction;
use openflow::action::Action;
use openflow::nx::{Ct, CtZone, Subfield, ct_flags};
use openflow::oxm::{Field, Match, OxmField, ct_state};
use std::collections::{BTreeSet, HashMap};

/// The register that carries the conntrack zone from the ct() flows to the commits.
pub const ZONE_REG: Field = reg::CT_ZONE;
/// `ct_mark` bit: the egress rules of the source accepted the connection.
pub const MARK_EGRESS: u32 = 1;
/// `ct_mark` bit: the ingress rules of the destination accepted the connection.
pub const MARK_INGRESS: u32 = 2;

/// A local port with port security off, in: above everything conntrack does.
const PRIO_UNFILTERED: u16 = 210;
const PRIO_BYPASS: u16 = 200;
const PRIO_INVALID: u16 = 200;
const PRIO_REPLY: u16 = 190;
const PRIO_ACCEPTED: u16 = 180;
const PRIO_CT: u16 = 100;
/// A stateless port's IP traffic past conntrack ([`stateless::bypass`]): above the
/// network's ct() flows, below what is never tracked (ND, DHCP).
const PRIO_STATELESS: u16 = 150;
const _: () = assert!(PRIO_CT < PRIO_STATELESS && PRIO_STATELESS < PRIO_BYPASS);
const PRIO_RULE: u16 = 100;
/// Conjunctive flows and their `conj_id` flows: below the plain rules, so that the two
/// never overlap at one priority.
const PRIO_CONJ: u16 = 90;
const PRIO_FAIL_CLOSED: u16 = 2;
const PRIO_DEFAULT: u16 = 1;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
pub(super) const TCP: u8 = 6;
pub(super) const UDP: u8 = 17;
pub(super) const SCTP: u8 = 132;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

fn eth(e: EtherType) -> u16 {
    match e {
        EtherType::IPv4 => ETH_IPV4,
        EtherType::IPv6 => ETH_IPV6,
    }
}

fn family(a: &IpNet) -> EtherType {
    match a {
        IpNet::V4(_) => EtherType::IPv4,
        IpNet::V6(_) => EtherType::IPv6,
    }
}

/// Where a direction's flows go: (sg table, next table, port register, mark bit). What
/// the groups accept goes on to the firewall groups' tables (`apps::fwaas`): a packet
/// must pass both.
fn dir_tables(d: Direction) -> (u8, u8, Field, u32) {
    match d {
        Direction::Egress => (
            table::EGRESS_SG,
            table::EGRESS_FW,
            reg::SRC_PORT,
            MARK_EGRESS,
        ),
        Direction::Ingress => (
            table::INGRESS_SG,
            table::ROUTER_FW_OUT,
            reg::DST_PORT,
            MARK_INGRESS,
        ),
    }
}

/// A local port whose traffic the security groups filter: bound and plugged here, with
/// port security on, in a network with a zone. Returns its zone.
pub(super) fn filtered(view: &View, host: &Host, p: &Port) -> Option<u16> {
    if p.binding_host_id != view.chassis || !host.plugged(&p.meta.id) || !p.port_security_enabled {
        return None;
    }
    host.zones.get(&p.network_id).copied()
}

/// The conjunction id of a remote-group rule: a hash of its id (ids are UUIDs; a
/// collision would merge two rules' clauses, so the table of rules in use is small
/// against 2^32).
pub fn conj_id(rule_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in rule_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

pub use openflow::oxm::port_masks;

/// The protocol and port part of a rule, as the matches it needs (several for a port
/// range that is not one aligned block). Empty when the rule can never match.
fn l4_matches(r: &SecurityGroupRule) -> Vec<Match> {
    let base = Match::new().eth_type(eth(r.ethertype));
    let Some(proto) = r.protocol_number else {
        return vec![base];
    };
    let base = base.ip_proto(proto);
    match proto {
        TCP | UDP => {
            let field = if proto == TCP {
                Field::TcpDst
            } else {
                Field::UdpDst
            };
            match (r.port_range_min, r.port_range_max) {
                (Some(min), max) => {
                    let max = max.unwrap_or(min);
                    if min <= 1 && max == u16::MAX {
                        return vec![base];
                    }
                    port_masks(min, max)
                        .into_iter()
                        .map(|(v, m)| base.clone().masked(field, v, m))
                        .collect()
                }
                _ => vec![base],
            }
        }
        ICMP | ICMPV6 => {
            let (tf, cf) = if proto == ICMP {
                (Field::Icmpv4Type, Field::Icmpv4Code)
            } else {
                (Field::Icmpv6Type, Field::Icmpv6Code)
            };
            let mut m = base;
            // Type and code beyond 255 (refused by the API) match nothing rather than all.
            if let Some(t) = r.port_range_min {
                let Ok(t) = u8::try_from(t) else {
                    return Vec::new();
                };
                m = m.with(OxmField::new(tf, t));
                if let Some(c) = r.port_range_max {
                    let Ok(c) = u8::try_from(c) else {
                        return Vec::new();
                    };
                    m = m.with(OxmField::new(cf, c));
                }
            }
            vec![m]
        }
        _ => vec![base],
    }
}

/// A remote address (or prefix) in the direction's remote field.
fn remote(m: Match, d: Direction, a: IpNet) -> Match {
    match (d, a) {
        (Direction::Ingress, IpNet::V4(n)) => m.ipv4_src_prefix(n.addr(), n.prefix_len()),
        (Direction::Egress, IpNet::V4(n)) => m.ipv4_dst_prefix(n.addr(), n.prefix_len()),
        (Direction::Ingress, IpNet::V6(n)) => m.ipv6_src_prefix(n.addr(), n.prefix_len()),
        (Direction::Egress, IpNet::V6(n)) => m.ipv6_dst_prefix(n.addr(), n.prefix_len()),
    }
}

/// The addresses of a port as a remote group member, each with the MAC it is sent from:
/// fixed IPs (the port's MAC) and allowed address pairs (the pair's).
pub(super) fn addresses(p: &Port) -> Vec<(IpNet, MacAddr)> {
    let mut out: Vec<(IpNet, MacAddr)> = p
        .fixed_ips
        .iter()
        .map(|f| (IpNet::from(f.ip_address), p.mac_address))
        .chain(
            p.allowed_address_pairs
                .iter()
                .map(|a| (a.ip_address.trunc(), a.mac_address)),
        )
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Clause 2 of every rule naming one of `groups` as its remote group, for a member with
/// `addrs` seen in the network with key `net_key`: from each address's own MAC, or from
/// `via` (a router's MAC on that network) for routed packets. The MAC is the source for
/// ingress rules and the destination for egress ones.
fn member_clauses(
    conj: &mut Merged,
    view: &View,
    groups: &[String],
    addrs: &[(IpNet, MacAddr)],
    net_key: u32,
    via: Option<MacAddr>,
) {
    for g in groups {
        for r in view.rules.values() {
            if r.remote_group_id.as_deref() != Some(g.as_str()) {
                continue;
            }
            let (t, _, _, _) = dir_tables(r.direction);
            for (a, mac) in addrs.iter().filter(|(a, _)| family(a) == r.ethertype) {
                let mac = via.unwrap_or(*mac).0;
                let m = Match::new()
                    .metadata(u64::from(net_key))
                    .eth_type(eth(r.ethertype));
                let m = match r.direction {
                    Direction::Ingress => m.eth_src(mac),
                    Direction::Egress => m.eth_dst(mac),
                };
                conj.add(
                    t,
                    PRIO_CONJ,
                    remote(m, r.direction, *a),
                    Action::Conjunction {
                        id: conj_id(&r.meta.id),
                        clause: 1,
                        n_clauses: 2,
                    },
                );
            }
        }
    }
}

/// Commit in the zone held by [`ZONE_REG`], setting this side's mark bit; then go on.
fn accept(d: Direction) -> Vec<Instruction> {
    let (_, next, _, mark) = dir_tables(d);
    vec![
        Instruction::ApplyActions(vec![Action::Ct(Ct {
            flags: ct_flags::COMMIT,
            zone: CtZone::Field(Subfield::new(ZONE_REG, 0, 16)),
            actions: vec![Action::RegLoad2(OxmField::masked(
                Field::CtMark,
                u128::from(mark),
                u128::from(mark),
            ))],
            ..Ct::default()
        })]),
        Instruction::GotoTable(next),
    ]
}

/// Flows with the same key merged: their actions (conjunctions) concatenated, in the order
/// the keys first came.
#[derive(Default)]
struct Merged {
    order: Vec<super::FlowKey>,
    actions: HashMap<super::FlowKey, Vec<Action>>,
}

impl Merged {
    fn add(&mut self, t: u8, prio: u16, m: Match, a: Action) {
        let key = super::FlowKey::new(t, prio, m);
        let entry = self.actions.entry(key.clone()).or_default();
        if entry.is_empty() {
            self.order.push(key);
        }
        if !entry.contains(&a) {
            entry.push(a);
        }
    }

    fn flows(mut self, key: u32) -> Vec<Flow> {
        self.order
            .into_iter()
            .filter_map(|k| {
                let a = self.actions.remove(&k)?;
                Some(super::keyed_flow(
                    k,
                    AppId::SecurityGroup,
                    key,
                    [Instruction::ApplyActions(a)],
                ))
            })
            .collect()
    }
}

/// The rules that apply to a port, each once, in a stable order.
pub(super) fn rules_of_port<'a>(view: &'a View, p: &Port) -> Vec<&'a SecurityGroupRule> {
    let mut rules: Vec<&SecurityGroupRule> = p
        .security_groups
        .iter()
        .flat_map(|g| view.rules_of(g))
        .collect();
    rules.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
    rules.dedup_by(|a, b| a.meta.id == b.meta.id);
    rules
}

/// The security group flows a port owns: for a filtered local port its ct() flows and its
/// rules (clause 1 of its remote-group rules); for any port that is a member of a group
/// named as remote group by a rule, clause 2 of those rules.
pub fn port(view: &View, host: &Host, p: &Port) -> Vec<Flow> {
    let key = p.unique_key;
    let mut out = Vec::new();
    let mut conj = Merged::default();
    // A local port with port security off is not tracked: its traffic in passes conntrack
    // (everything else in a network with a zone goes through ct(), and fails closed
    // without one).
    if !p.port_security_enabled && host.plugged(&p.meta.id) && p.binding_host_id == view.chassis {
        out.push(flow(
            table::INGRESS_CT,
            PRIO_UNFILTERED,
            Match::new().masked(reg::DST_PORT, key, u32::MAX),
            AppId::SecurityGroup,
            key,
            // Past the groups, not past the firewall of the router it may come from.
            [Instruction::GotoTable(table::ROUTER_FW_OUT)],
        ));
    }
    if filtered(view, host, p).is_some() {
        let tracked = stateless::tracked(view, p);
        if !tracked {
            out.extend(stateless::bypass(key));
        }
        for r in rules_of_port(view, p) {
            let (t, _, preg, _) = dir_tables(r.direction);
            let mine = |m: Match| m.masked(preg, key, u32::MAX);
            if r.remote_group_id.is_some() {
                let id = conj_id(&r.meta.id);
                for m in l4_matches(r) {
                    conj.add(
                        t,
                        PRIO_CONJ,
                        mine(m),
                        Action::Conjunction {
                            id,
                            clause: 0,
                            n_clauses: 2,
                        },
                    );
                }
                continue;
            }
            let remotes = address_groups::remotes(view, r);
            for m in l4_matches(r) {
                for rem in &remotes {
                    let m = match rem {
                        Some(prefix) if prefix.prefix_len() > 0 => {
                            remote(m.clone(), r.direction, *prefix)
                        }
                        _ => m.clone(),
                    };
                    out.push(flow(
                        t,
                        PRIO_RULE,
                        mine(m),
                        AppId::SecurityGroup,
                        key,
                        stateless::pass(r.direction, tracked),
                    ));
                }
            }
        }
    }
    // Clause 2: this port's addresses on its own network, for every rule naming one of its
    // groups (whether or not a local port holds the rule's group: then clause 1 is missing
    // and they are inert, but they depend on this port, its network and the rules alone).
    let addrs = addresses(p);
    if let Some(net) = view.networks.get(&p.network_id)
        && !addrs.is_empty()
    {
        member_clauses(
            &mut conj,
            view,
            &p.security_groups,
            &addrs,
            net.unique_key,
            None,
        );
    }
    out.extend(conj.flows(key));
    out
}

/// Clause 2 for the members behind router `r`: a member on one of its networks as it is
/// seen on each of the router's other networks (from the router's MAC there).
pub fn router(view: &View, r: &Router) -> Vec<Flow> {
    let mut conj = Merged::default();
    for from in &r.interfaces {
        for m in view.ports_of(&from.network_id) {
            if m.security_groups.is_empty() {
                continue;
            }
            let addrs = addresses(m);
            for to in r
                .interfaces
                .iter()
                .filter(|i| i.network_id != from.network_id)
            {
                if let Some(net) = view.networks.get(&to.network_id) {
                    member_clauses(
                        &mut conj,
                        view,
                        &m.security_groups,
                        &addrs,
                        net.unique_key,
                        Some(to.mac_address),
                    );
                }
            }
        }
    }
    conj.flows(r.unique_key)
}

/// The conntrack flows of a network with a zone on this host: its local ports' IP traffic,
/// out (after port security) and in, goes through ct() in that zone (loaded into
/// [`ZONE_REG`] for the commits) and on to the rules. One set per network rather than per
/// port: every way into these tables sets the network in metadata.
pub fn network(_view: &View, host: &Host, net: &Network) -> Vec<Flow> {
    let Some(zone) = host.zones.get(&net.meta.id) else {
        return Vec::new();
    };
    let key = net.unique_key;
    let mut out = Vec::new();
    for (t, sg) in [
        (table::EGRESS_CT, table::EGRESS_SG),
        (table::INGRESS_CT, table::INGRESS_SG),
    ] {
        for et in [ETH_IPV4, ETH_IPV6] {
            out.push(flow(
                t,
                PRIO_CT,
                Match::new().metadata(u64::from(key)).eth_type(et),
                AppId::SecurityGroup,
                key,
                [Instruction::ApplyActions(vec![
                    Action::load(ZONE_REG, 0, 32, u64::from(*zone)),
                    Action::Ct(Ct {
                        zone: CtZone::Field(Subfield::new(ZONE_REG, 0, 16)),
                        recirc_table: sg,
                        ..Ct::default()
                    }),
                ])],
            ));
        }
    }
    out
}

/// The `conj_id` flow of a remote-group rule: a packet that met both clauses is accepted
/// (committed unless the rule's group is stateless).
pub fn rule(view: &View, r: &SecurityGroupRule) -> Vec<Flow> {
    if r.remote_group_id.is_none() {
        return Vec::new();
    }
    let id = conj_id(&r.meta.id);
    let (t, _, _, _) = dir_tables(r.direction);
    vec![flow(
        t,
        PRIO_CONJ,
        // ct() needs the IP version in the match.
        Match::new().conj_id(id).eth_type(eth(r.ethertype)),
        AppId::SecurityGroup,
        id,
        stateless::pass(
            r.direction,
            stateless::group_tracked(view, &r.security_group_id),
        ),
    )]
}

/// The flows every pipeline has: what is never tracked (ARP goes on by the tables' default
/// flows; neighbour discovery, DHCP), what passes on its conntrack state alone, and the
/// fail-closed drops.
pub fn base() -> Vec<Flow> {
    let mut out = Vec::new();
    let f = |t: u8, prio: u16, m: Match, next: Option<u8>| {
        flow(
            t,
            prio,
            m,
            AppId::SecurityGroup,
            0,
            next.map(Instruction::GotoTable)
                .into_iter()
                .collect::<Vec<_>>(),
        )
    };
    // Neighbour discovery (RS, RA, NS, NA), MLD (query, report, done, v2 report) and DHCP
    // (v4 and v6) are never tracked: DHCP requests out and replies in pass as in Neutron,
    // and ND and MLD are what the kernel's conntrack leaves untracked (OVS's userspace
    // conntrack calls MLD invalid, which would keep multicast listeners from ever being
    // heard).
    for (t, next) in [
        (table::EGRESS_CT, table::SERVICES),
        (table::INGRESS_CT, table::DISPATCH),
    ] {
        for ty in [130u8, 131, 132, 133, 134, 135, 136, 143] {
            out.push(f(
                t,
                PRIO_BYPASS,
                Match::new()
                    .eth_type(ETH_IPV6)
                    .ip_proto(ICMPV6)
                    .icmpv6_type(ty),
                Some(next),
            ));
        }
    }
    let udp = |et: u16, src: u16, dst: u16| {
        Match::new()
            .eth_type(et)
            .ip_proto(UDP)
            .udp_src(src)
            .udp_dst(dst)
    };
    // DHCPv4 and DHCPv6: requests out, replies in.
    for (t, next, (c4, s4), (c6, s6)) in [
        (table::EGRESS_CT, table::SERVICES, (68, 67), (546, 547)),
        (table::INGRESS_CT, table::DISPATCH, (67, 68), (547, 546)),
    ] {
        out.push(f(t, PRIO_BYPASS, udp(ETH_IPV4, c4, s4), Some(next)));
        out.push(f(t, PRIO_BYPASS, udp(ETH_IPV6, c6, s6), Some(next)));
    }
    // What is not IP (ARP) is not tracked: straight on.
    out.push(f(
        table::EGRESS_CT,
        PRIO_DEFAULT,
        Match::new(),
        Some(table::SERVICES),
    ));
    out.push(f(
        table::INGRESS_CT,
        PRIO_DEFAULT,
        Match::new(),
        Some(table::DISPATCH),
    ));
    // IP that no ct() flow took (its network has no zone here) and no port security bypass
    // let through: dropped.
    for t in [table::EGRESS_CT, table::INGRESS_CT] {
        for et in [ETH_IPV4, ETH_IPV6] {
            out.push(f(t, PRIO_FAIL_CLOSED, Match::new().eth_type(et), None));
        }
    }
    for d in [Direction::Egress, Direction::Ingress] {
        let (t, next, _, mark) = dir_tables(d);
        let st = |v: u32, m: u32| Match::new().ct_state(v, m);
        use ct_state::{EST, INV, REL, RPL, TRK};
        out.push(f(t, PRIO_INVALID, st(TRK | INV, TRK | INV), None));
        out.push(f(
            t,
            PRIO_REPLY,
            st(TRK | EST | RPL, TRK | EST | RPL | INV),
            Some(next),
        ));
        out.push(f(t, PRIO_REPLY, st(TRK | REL, TRK | REL | INV), Some(next)));
        out.push(f(
            t,
            PRIO_ACCEPTED,
            st(TRK | EST, TRK | EST | RPL | INV).masked(Field::CtMark, mark, mark),
            Some(next),
        ));
    }
    out
}

/// Owners whose flows a changed security group decides (its rules, or the rules naming it):
/// the ports holding it (their rules, and as members their clause-2 flows of the rules
/// naming it), its rules (their `conj_id` flows) and the routers on those ports' networks (clause 2 of routed members). Who the members are decides no other port's flows: a member joining or
/// leaving is compiled as a port, and what it leaves behind is cut by [`Cuts::update`].
pub fn affected_by_group(view: &View, group: &str) -> Vec<Owner> {
    let mut out: Vec<Owner> = view
        .ports_in_group(group)
        .map(|p| Touched {
            table: Table::Port,
            id: p.meta.id.clone(),
        })
        .collect();
    // Routers hold the clause 2 of members behind them ([`router`]).
    let networks: BTreeSet<&str> = view
        .ports_in_group(group)
        .map(|p| p.network_id.as_str())
        .collect();
    // The `conj_id` flows of its rules commit or not as the group is stateful.
    out.extend(view.rules_of(group).map(|r| Touched {
        table: Table::SecurityGroupRule,
        id: r.meta.id.clone(),
    }));
    out.extend(
        view.routers
            .values()
            .filter(|r| {
                r.interfaces
                    .iter()
                    .any(|i| networks.contains(i.network_id.as_str()))
            })
            .map(|r| Touched {
                table: Table::Router,
                id: r.meta.id.clone(),
            }),
    );
    out
}

pub struct SecurityGroups;

impl App for SecurityGroups {
    fn id(&self) -> AppId {
        AppId::SecurityGroup
    }

    fn tables(&self) -> &'static [u8] {
        &[
            table::EGRESS_CT,
            table::EGRESS_SG,
            table::INGRESS_CT,
            table::INGRESS_SG,
        ]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        let (view, host) = (cx.view, cx.host);
        match obj {
            Object::Base => out.extend(base()),
            Object::Port(p) => out.extend(port(view, host, p)),
            Object::Network(n) => out.extend(network(view, host, n)),
            Object::Router(r) if routes_for(view, r) => out.extend(router(view, r)),
            Object::Rule(r) => out.extend(rule(view, r)),
            _ => {}
        }
    }

    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        if changed.table == Table::SecurityGroup {
            out.extend(affected_by_group(view, &changed.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_become_aligned_blocks() {
        assert_eq!(port_masks(22, 22), [(22, 0xffff)]);
        assert_eq!(port_masks(0, 65535), [(0, 0)]);
        assert_eq!(port_masks(8080, 8083), [(8080, 0xfffc)]);
        // Every port of a range is covered by exactly one block, and nothing else is.
        for (lo, hi) in [
            (1u16, 65535u16),
            (1000, 1999),
            (5, 9),
            (65535, 65535),
            (3, 3),
        ] {
            let blocks = port_masks(lo, hi);
            for p in [
                0u16, 1, 2, 3, 4, 5, 9, 10, 999, 1000, 1999, 2000, 65534, 65535,
            ] {
                let n = blocks.iter().filter(|(v, m)| p & m == *v).count();
                assert_eq!(n, usize::from(p >= lo && p <= hi), "{p} in {lo}..={hi}");
            }
        }
        assert!(port_masks(1, 65535).len() <= 16);
    }
}
