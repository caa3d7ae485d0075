//! Service function chaining (networking-sfc, issue 24): classified traffic from a
//! chain's source port is steered through each port pair group in order, then delivered
//! to where it was going.
//!
//! - **Entry** (services, 20, [`PRIO_CLASSIFY`]: before L2, the load balancer's VIPs and
//!   the responders): on the source port's host, `reg6` = source port + the classifier's
//!   fields → the first hop's select group.
//! - **A hop's select group** (one per chain, hop and IP family): one bucket per pair,
//!   weighted; a pair on this host gets `reg7` = its ingress port and goes to dispatch
//!   (115): the service function sees the plain packet (correlation none); a pair on
//!   another host gets an MPLS label (chain id << 4 | hop, the IP family in the TC bits)
//!   and goes over the tunnel to that host.
//! - **Across hosts** (from_tunnel, 100, [`PRIO_LABEL`]): a label of a hop with a pair
//!   here is popped and goes to the hop's local-only group (never back into the
//!   underlay); any other MPLS frame is dropped ([`PRIO_MPLS_DROP`]).
//! - **Onward** (services, 20, [`onward_priority`]): what a pair's egress port sends that
//!   matches the chain's classifiers goes to the next hop's group, never the same hop's;
//!   after the last hop it goes on to L2 (55) and reaches its destination as any frame
//!   does. These flows sit above every entry and above the hops before them, so a frame
//!   out of a service function only moves forward, even when its port is also some
//!   chain's source: at most one pass through each of the 16 hops, never a loop.
//! - **Symmetric chains** (networking-sfc's reverse path): the answers, classified by the
//!   classifier [`Classifier::reversed`] (from the logical destination port to the source, prefixes
//!   and ports swapped), go through the groups in reverse order, entering each service
//!   function by its egress port and leaving by its ingress port; the same labels, the
//!   direction in the MPLS TC bits ([`tc`]) and in the group ids.
//!
//! The position in the chain is the label between hosts and the egress port on the
//! service function's host (correlation none: the service function keeps no label).
//! The API refuses a chain whose source is one of its service function ports.

use super::{App, Cx, Flow, Group, Object, Owner, Sink, deliver, flow, here};
use crate::pipeline::{App as AppId, reg, table};
use crate::reconcile::GroupBody;
use crate::view::{Touched, View};
use model::PortChain;
use model::sfc::{Classifier, Hop, HopPair, MAX_HOPS};
use openflow::Instruction;
use openflow::action::Action;
use openflow::flow::{Bucket, GroupType};
use openflow::oxm::{Field, Match, port_masks};
use std::collections::BTreeSet;

/// Classification in services (20): above the VIPs (150) and every responder.
pub const PRIO_CLASSIFY: u16 = 170;
/// What a service function sends on after hop h: [`onward_priority`], 171 to 186.
pub const PRIO_ONWARD: u16 = PRIO_CLASSIFY + 1;
/// Labelled frames from the tunnels (100): above the L2 lookup by MAC.
pub const PRIO_LABEL: u16 = 300;
/// Any other MPLS frame from a tunnel is dropped.
pub const PRIO_MPLS_DROP: u16 = 250;
/// MPLS unicast.
pub const ETH_MPLS: u16 = 0x8847;
const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;

/// Bit 28 sets chain groups apart (flood groups use 24 bits and bit 24, balancers
/// bit 25, multicast 0x4000_0000 and up); bit 27 marks the local-only copy.
const GROUP_BIT: u32 = 1 << 28;
const LOCAL_BIT: u32 = 1 << 27;

/// The select group of hop label `label` for one [`tc`] (IP family and direction);
/// `local_only` for the copy that serves labelled frames from the tunnel (this host's
/// pairs only).
pub fn group_id(label: u32, tc: u8, local_only: bool) -> u32 {
    GROUP_BIT
        | if local_only { LOCAL_BIT } else { 0 }
        | (u32::from(tc & 3) << 20)
        | (label & 0xf_ffff)
}

/// The MPLS TC bits: the IP family (bit 0), so the far end pops to the right ethertype,
/// and the direction (bit 1: a symmetric chain's reverse path), whose hops have the
/// same labels.
pub fn tc(v6: bool, reverse: bool) -> u8 {
    u8::from(v6) | u8::from(reverse) << 1
}

fn ethertype(v6: bool) -> u16 {
    if v6 { ETH_IPV6 } else { ETH_IPV4 }
}

/// The matches of a classifier's fields in network `net_key` (several when a port range
/// is not one aligned block); the logical source port is the caller's.
pub fn classifier_matches(net_key: u32, c: &Classifier, dst_mac: Option<[u8; 6]>) -> Vec<Match> {
    let v6 = c.is_ipv6();
    let mut m = Match::new()
        .metadata(u64::from(net_key))
        .eth_type(ethertype(v6));
    if let Some(mac) = dst_mac {
        m = m.eth_dst(mac);
    }
    for (p, src) in [
        (&c.source_ip_prefix, true),
        (&c.destination_ip_prefix, false),
    ] {
        m = match (p, src) {
            (Some(ipnet::IpNet::V4(n)), true) => m.ipv4_src_prefix(n.network(), n.prefix_len()),
            (Some(ipnet::IpNet::V4(n)), false) => m.ipv4_dst_prefix(n.network(), n.prefix_len()),
            (Some(ipnet::IpNet::V6(n)), true) => m.ipv6_src_prefix(n.network(), n.prefix_len()),
            (Some(ipnet::IpNet::V6(n)), false) => m.ipv6_dst_prefix(n.network(), n.prefix_len()),
            (None, _) => m,
        };
    }
    let (proto, fields) = match c.protocol.as_deref() {
        None => return vec![m],
        Some("tcp") => (6, Some((Field::TcpSrc, Field::TcpDst))),
        Some("udp") => (17, Some((Field::UdpSrc, Field::UdpDst))),
        Some("icmp") => (if v6 { 58 } else { 1 }, None),
        Some(_) => return vec![],
    };
    let m = m.ip_proto(proto);
    let Some((sf, df)) = fields else {
        return vec![m];
    };
    let blocks = |min: Option<u16>, max: Option<u16>| match (min, max) {
        (None, None) => vec![None],
        (a, b) => port_masks(a.unwrap_or(0), b.unwrap_or(u16::MAX))
            .into_iter()
            .map(Some)
            .collect(),
    };
    let srcs = blocks(c.source_port_range_min, c.source_port_range_max);
    let dsts = blocks(c.destination_port_range_min, c.destination_port_range_max);
    let mut out = Vec::new();
    for s in &srcs {
        for d in &dsts {
            let mut x = m.clone();
            if let Some((v, mask)) = s {
                x = x.masked(sf, *v, *mask);
            }
            if let Some((v, mask)) = d {
                x = x.masked(df, *v, *mask);
            }
            out.push(x);
        }
    }
    out
}

/// The flows every pipeline has: MPLS from a tunnel that no hop here takes is dropped.
fn base() -> Vec<Flow> {
    vec![flow(
        table::FROM_TUNNEL,
        PRIO_MPLS_DROP,
        Match::new().eth_type(ETH_MPLS),
        AppId::Sfc,
        0,
        [],
    )]
}

/// One direction of a chain: its hops with each pair's ports as traffic of this
/// direction enters and leaves the service function, and the classifiers that start it.
struct Direction {
    reverse: bool,
    path: Vec<Hop>,
    classifiers: Vec<Classifier>,
}

/// The forward direction, and for a symmetric chain the reverse one (networking-sfc's
/// reverse path): the groups in reverse order, each pair entered by its egress port and
/// left by its ingress port, classified by [`Classifier::reversed`].
fn directions(chain: &PortChain) -> Vec<Direction> {
    let mut out = vec![Direction {
        reverse: false,
        path: chain.path.clone(),
        classifiers: chain.classifiers.clone(),
    }];
    if chain.symmetric {
        let path = (chain.path.iter().rev())
            .map(|h| Hop {
                group: h.group.clone(),
                pairs: (h.pairs.iter())
                    .map(|p| HopPair {
                        ingress: p.egress.clone(),
                        egress: p.ingress.clone(),
                        ..p.clone()
                    })
                    .collect(),
            })
            .collect();
        out.push(Direction {
            reverse: true,
            path,
            classifiers: chain
                .classifiers
                .iter()
                .filter_map(Classifier::reversed)
                .collect(),
        });
    }
    out
}

/// The flows and groups of one chain on this host.
pub fn compile(cx: Cx<'_>, chain: &PortChain) -> (Vec<Flow>, Vec<Group>) {
    let mut out = (Vec::new(), Vec::new());
    if let Some(net) = cx.view.networks.get(&chain.network_id) {
        for dir in directions(chain) {
            compile_direction(cx, chain, net, &dir, &mut out);
        }
    }
    out
}

/// One direction of a chain, per IP family of its classifiers.
fn compile_direction(
    cx: Cx<'_>,
    chain: &PortChain,
    net: &model::Network,
    dir: &Direction,
    (flows, groups): &mut (Vec<Flow>, Vec<Group>),
) {
    let (view, host) = (cx.view, cx.host);
    let key = chain.chain_id;
    let local = |id: &str| view.ports.get(id).filter(|p| here::is_local(view, host, p));
    let dst_mac = |c: &Classifier| {
        let id = c.logical_destination_port.as_deref()?;
        view.ports.get(id).map(|p| p.mac_address.0)
    };
    let to_group = |gid: u32| vec![Instruction::ApplyActions(vec![Action::Group(gid)])];
    let families: BTreeSet<bool> = dir.classifiers.iter().map(Classifier::is_ipv6).collect();
    for v6 in families {
        let tc = tc(v6, dir.reverse);
        let mine: Vec<&Classifier> = (dir.classifiers.iter())
            .filter(|c| c.is_ipv6() == v6)
            .collect();
        // The hops whose full group (entry points here) or local-only group (pairs
        // here) this host needs.
        let mut full = BTreeSet::new();
        let mut local_only = BTreeSet::new();
        if !dir.path.is_empty() {
            for c in &mine {
                let Some(src) = c.logical_source_port.as_deref().and_then(local) else {
                    continue;
                };
                for m in classifier_matches(net.unique_key, c, dst_mac(c)) {
                    let m = m.reg(6, src.unique_key);
                    flows.push(flow(
                        table::SERVICES,
                        PRIO_CLASSIFY,
                        m,
                        AppId::Sfc,
                        key,
                        to_group(group_id(chain.label(0), tc, false)),
                    ));
                }
                full.insert(0);
            }
        }
        for (h, hop) in dir.path.iter().enumerate() {
            for pair in &hop.pairs {
                if local(&pair.ingress).is_some() {
                    local_only.insert(h);
                }
                let Some(egress) = local(&pair.egress) else {
                    continue;
                };
                let next = h + 1 < dir.path.len();
                for c in &mine {
                    for m in classifier_matches(net.unique_key, c, dst_mac(c)) {
                        let m = m.reg(6, egress.unique_key);
                        let ins = if next {
                            to_group(group_id(chain.label(h + 1), tc, false))
                        } else {
                            vec![Instruction::GotoTable(table::L2)]
                        };
                        flows.push(flow(
                            table::SERVICES,
                            onward_priority(h),
                            m,
                            AppId::Sfc,
                            key,
                            ins,
                        ));
                    }
                }
                if next {
                    full.insert(h + 1);
                }
            }
        }
        for h in full {
            let Some(hop) = dir.path.get(h) else {
                continue;
            };
            let label = chain.label(h);
            let buckets = (hop.pairs.iter())
                .filter_map(|pair| {
                    let port = view.ports.get(&pair.ingress)?;
                    let actions = if here::is_local(view, host, port) {
                        to_sf(port.unique_key)
                    } else {
                        let mut a = vec![
                            Action::PushMpls(ETH_MPLS),
                            Action::set_field(Field::MplsLabel, label),
                            Action::set_field(Field::MplsTc, tc),
                        ];
                        a.extend(deliver::to_chassis(view, host, net, &port.binding_host_id)?);
                        a
                    };
                    Some(weighted(pair.weight, actions))
                })
                .collect();
            groups.push(select(group_id(label, tc, false), buckets));
        }
        for h in local_only {
            let Some(hop) = dir.path.get(h) else {
                continue;
            };
            let label = chain.label(h);
            let buckets = (hop.pairs.iter())
                .filter_map(|pair| {
                    let port = local(&pair.ingress)?;
                    Some(weighted(pair.weight, to_sf(port.unique_key)))
                })
                .collect();
            let gid = group_id(label, tc, true);
            groups.push(select(gid, buckets));
            flows.push(flow(
                table::FROM_TUNNEL,
                PRIO_LABEL,
                Match::new()
                    .metadata(u64::from(net.unique_key))
                    .eth_type(ETH_MPLS)
                    .mpls_label(label)
                    .mpls_tc(tc),
                AppId::Sfc,
                key,
                [Instruction::ApplyActions(vec![
                    Action::PopMpls(ethertype(v6)),
                    Action::Group(gid),
                ])],
            ));
        }
    }
}

/// What a service function's egress port sends on after hop `h`: above every entry
/// ([`PRIO_CLASSIFY`]) and above the hops before, so a frame out of a service function
/// only ever moves forward, whatever else its port is (a classifier's source, a port of
/// an earlier hop): at most one pass through each hop, never a loop.
pub fn onward_priority(h: usize) -> u16 {
    PRIO_ONWARD + u16::try_from(h.min(MAX_HOPS - 1)).unwrap_or(0)
}

/// Straight to a service function's ingress port (dispatch): its security groups are
/// not asked, as networking-sfc's OVS driver does not ask them.
fn to_sf(key: u32) -> Vec<Action> {
    vec![
        Action::load(reg::DST_PORT, 0, 32, u64::from(key)),
        Action::resubmit_table(table::DISPATCH),
    ]
}

fn weighted(weight: u32, actions: Vec<Action>) -> Bucket {
    Bucket {
        weight: u16::try_from(weight).unwrap_or(u16::MAX),
        ..Bucket::new(actions)
    }
}

fn select(id: u32, buckets: Vec<Bucket>) -> Group {
    Group {
        id,
        body: GroupBody {
            group_type: GroupType::Select,
            buckets,
        },
    }
}

pub struct Sfc;

impl App for Sfc {
    fn id(&self) -> AppId {
        AppId::Sfc
    }

    fn tables(&self) -> &'static [u8] {
        &[table::SERVICES, table::FROM_TUNNEL]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.extend(base()),
            Object::PortChain(chain) => {
                let (flows, groups) = compile(cx, chain);
                out.extend(flows);
                for g in groups {
                    out.group(g);
                }
            }
            _ => {}
        }
    }

    /// A chain reads its ports (keys, MACs, where they are bound or plugged), its
    /// network and the other hosts' tunnel addresses: any of them changing recompiles
    /// every chain (a host has few).
    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        if matches!(
            changed.table,
            model::Table::Port | model::Table::Network | model::Table::Chassis
        ) {
            out.extend(view.port_chains.keys().map(|id| Touched {
                table: model::Table::SfcPortChain,
                id: id.clone(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_stay_apart_from_the_others() {
        let g = group_id(0xfffff, tc(true, true), true);
        assert_eq!(g, GROUP_BIT | LOCAL_BIT | 3 << 20 | 0xfffff);
        assert!(g < 0x4000_0000, "below the multicast groups");
        assert!(group_id(16, 0, false) > (1 << 25 | 0xffff << 8 | 0xff));
    }

    #[test]
    fn port_ranges_become_blocks() {
        let c = Classifier {
            ethertype: "IPv4".into(),
            protocol: Some("tcp".into()),
            destination_port_range_min: Some(80),
            destination_port_range_max: Some(81),
            source_port_range_min: Some(1000),
            source_port_range_max: Some(1001),
            ..Classifier::default()
        };
        assert_eq!(classifier_matches(1, &c, None).len(), 1);
        let c = Classifier {
            destination_port_range_max: Some(82),
            ..c
        };
        assert_eq!(classifier_matches(1, &c, None).len(), 2);
    }
}
