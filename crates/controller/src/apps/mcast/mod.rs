//! IGMP and MLD snooping, per network tagged `mcast_snoop` (`model::mcast`): membership
//! messages of local ports go to the controller ([`snoop`]), which keeps the local
//! listeners of each group in [`Host::mcast`] and writes this host's groups to the NB
//! store (`mcast_group`, one record per network, group and host). Each group with
//! listeners gets one OpenFlow group per (network, group): its local listeners, plus one
//! copy per other host with listeners (its tunnel); from tunnels, a second group with
//! the local listeners only. Link-local groups (224.0.0.0/24, ff02::/16) are always
//! flooded; other multicast nobody registered is dropped, or flooded on networks tagged
//! `mcast_flood_unregistered`.
//!
//! Flows go into L2 lookup (55) and the tunnel arrival table (100), between the unicast
//! entries (which match unicast MACs only) and the network's flood flow.

pub mod snoop;

use super::{App, Cx, Flow, Group, Handler, Host, Object, Owner, Settings, Sink, deliver, flow};
use crate::apps::here::is_local;
use crate::apps::l2::{flood_group, local_flood_group};
use crate::pipeline::{App as AppId, Cookie, reg, table};
use crate::reconcile::GroupBody;
use crate::view::{Touched, View};
use model::mcast::{FLOOD_UNREGISTERED_TAG, SNOOP_TAG};
use model::{Network, Table};
use openflow::Instruction;
use openflow::action::{Action, OFPCML_NO_BUFFER};
use openflow::flow::{Bucket, GroupType};
use openflow::oxm::Match;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

/// Membership messages to the controller.
const PRIO_PUNT: u16 = 90;
/// The flood guard's temporary drop of one port's membership messages, above the punt.
pub const PRIO_BLOCK: u16 = 95;
const PRIO_LINK_LOCAL: u16 = 80;
const PRIO_GROUP: u16 = 70;
const PRIO_UNREGISTERED: u16 = 60;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const IGMP: u8 = 2;
const ICMPV6: u8 = 58;
/// MLD query, v1 report, v1 done, v2 report.
pub const MLD_TYPES: [u8; 4] = [130, 131, 132, 143];

/// Group ids: `ALL | n` for a group's buckets to every listener, `LOCAL | n` for the
/// local listeners only (network flood groups use the low 25 bits).
const ALL: u32 = 0x4000_0000;
const LOCAL: u32 = 0x6000_0000;

/// What this host knows of multicast listeners: learnt from packets (not the store).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Local listeners of each (network id, group): port key → when it expires.
    pub members: BTreeMap<(String, IpAddr), BTreeMap<u32, Instant>>,
    /// The number of each (network id, group) that has a group here ([`assign_ids`]).
    pub ids: BTreeMap<(String, IpAddr), u32>,
}

/// Whether the network snoops.
pub fn snoops(net: &Network) -> bool {
    net.meta.tags.iter().any(|t| t == SNOOP_TAG)
}

fn floods_unregistered(net: &Network) -> bool {
    net.meta.tags.iter().any(|t| t == FLOOD_UNREGISTERED_TAG)
}

/// Whether this host snoops in `net`: it snoops and has a local port there.
pub fn active(view: &View, host: &Host, net: &Network) -> bool {
    snoops(net) && view.ports_of(&net.meta.id).any(|p| is_local(view, host, p))
}

/// The groups of `network` with listeners anywhere: this host's (learnt) and the other
/// hosts' (their records), with those hosts.
pub fn groups_of(view: &View, host: &Host, network: &str) -> BTreeMap<IpAddr, BTreeSet<String>> {
    let mut out: BTreeMap<IpAddr, BTreeSet<String>> = BTreeMap::new();
    for (g, _) in host
        .mcast
        .members
        .range((network.to_string(), IpAddr::V4(Ipv4Addr::UNSPECIFIED))..)
        .take_while(|((n, _), _)| n == network)
        .filter(|(_, m)| !m.is_empty())
        .map(|((_, g), m)| (g, m))
    {
        out.entry(*g).or_default();
    }
    for r in view.mcast_groups_of(network) {
        if r.chassis != view.chassis {
            out.entry(r.group).or_default().insert(r.chassis.clone());
        }
    }
    out
}

/// Gives a number to every (network, group) that needs an OpenFlow group here and takes
/// back the rest; returns the networks whose flows name a changed number.
pub fn assign_ids(view: &View, host: &mut Host) -> Vec<Touched> {
    let mut needed = BTreeSet::new();
    for net in view.networks.values() {
        if active(view, host, net) {
            for g in groups_of(view, host, &net.meta.id).into_keys() {
                needed.insert((net.meta.id.clone(), g));
            }
        }
    }
    let mut touched = BTreeSet::new();
    host.mcast.ids.retain(|k, _| {
        let keep = needed.contains(k);
        if !keep {
            touched.insert(k.0.clone());
        }
        keep
    });
    let mut used: BTreeSet<u32> = host.mcast.ids.values().copied().collect();
    let mut next = 1;
    for k in needed {
        if host.mcast.ids.contains_key(&k) {
            continue;
        }
        while used.contains(&next) {
            next += 1;
        }
        used.insert(next);
        touched.insert(k.0.clone());
        host.mcast.ids.insert(k, next);
    }
    touched
        .into_iter()
        .map(|id| Touched {
            table: Table::Network,
            id,
        })
        .collect()
}

fn multicast(g: &IpAddr) -> Match {
    match g {
        IpAddr::V4(a) => Match::new().eth_type(ETH_IPV4).ipv4_dst(*a),
        IpAddr::V6(a) => Match::new().eth_type(ETH_IPV6).ipv6_dst(*a),
    }
}

/// IGMP, and each MLD message type.
fn membership_matches() -> Vec<Match> {
    std::iter::once(Match::new().eth_type(ETH_IPV4).ip_proto(IGMP))
        .chain(MLD_TYPES.iter().map(|t| {
            Match::new()
                .eth_type(ETH_IPV6)
                .ip_proto(ICMPV6)
                .icmpv6_type(*t)
        }))
        .collect()
}

/// The flood guard's drops of the membership messages of port `port` in network `net`
/// for `seconds` (one-off flow-mods with a hard timeout; the reconciler never owns them).
pub fn block(net: u32, port: u32, seconds: u16) -> Vec<openflow::flow::FlowMod> {
    membership_matches()
        .into_iter()
        .map(|m| {
            let mut fm = openflow::flow::FlowMod::add(table::L2, PRIO_BLOCK);
            fm.cookie = Cookie {
                app: AppId::Mcast,
                key: port,
            }
            .encode();
            fm.hard_timeout = seconds.max(1);
            fm.match_ = m
                .metadata(u64::from(net))
                .masked(reg::SRC_PORT, port, u32::MAX);
            fm
        })
        .collect()
}

fn apply(actions: Vec<Action>) -> [Instruction; 1] {
    [Instruction::ApplyActions(actions)]
}

/// The flows of a network this host snoops in.
pub fn flows(view: &View, host: &Host, net: &Network) -> Vec<Flow> {
    if !active(view, host, net) {
        return Vec::new();
    }
    let key = net.unique_key;
    let f = |t: u8, prio: u16, m: Match, actions: Vec<Action>| {
        flow(
            t,
            prio,
            m.metadata(u64::from(key)),
            AppId::Mcast,
            key,
            apply(actions),
        )
    };
    let mut out: Vec<Flow> = membership_matches()
        .into_iter()
        .map(|m| {
            f(
                table::L2,
                PRIO_PUNT,
                m,
                vec![Action::controller(OFPCML_NO_BUFFER)],
            )
        })
        .collect();
    let link_local = [
        Match::new()
            .eth_type(ETH_IPV4)
            .ipv4_dst_prefix(Ipv4Addr::new(224, 0, 0, 0), 24),
        Match::new()
            .eth_type(ETH_IPV6)
            .ipv6_dst_prefix(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0), 16),
    ];
    let all_multicast = [
        Match::new()
            .eth_type(ETH_IPV4)
            .ipv4_dst_prefix(Ipv4Addr::new(224, 0, 0, 0), 4),
        Match::new()
            .eth_type(ETH_IPV6)
            .ipv6_dst_prefix(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
    ];
    let flood_unreg = floods_unregistered(net);
    for m in link_local {
        out.push(f(
            table::L2,
            PRIO_LINK_LOCAL,
            m.clone(),
            vec![Action::Group(flood_group(key))],
        ));
        out.push(f(
            table::FROM_TUNNEL,
            PRIO_LINK_LOCAL,
            m,
            vec![Action::Group(local_flood_group(key))],
        ));
    }
    for m in all_multicast {
        let (here, tunnel) = if flood_unreg {
            (
                vec![Action::Group(flood_group(key))],
                vec![Action::Group(local_flood_group(key))],
            )
        } else {
            (Vec::new(), Vec::new())
        };
        out.push(f(table::L2, PRIO_UNREGISTERED, m.clone(), here));
        out.push(f(table::FROM_TUNNEL, PRIO_UNREGISTERED, m, tunnel));
    }
    let local = local_listeners(view, host, net);
    for g in groups_of(view, host, &net.meta.id).into_keys() {
        let Some(n) = host.mcast.ids.get(&(net.meta.id.clone(), g)) else {
            continue;
        };
        out.push(f(
            table::L2,
            PRIO_GROUP,
            multicast(&g),
            vec![Action::Group(ALL | n)],
        ));
        // From another host: to the local listeners, none when there are none here.
        let from_tunnel = if local.get(&g).is_some_and(|l| !l.is_empty()) {
            vec![Action::Group(LOCAL | n)]
        } else {
            Vec::new()
        };
        out.push(f(
            table::FROM_TUNNEL,
            PRIO_GROUP,
            multicast(&g),
            from_tunnel,
        ));
    }
    out
}

/// The local ports listening to each group of `net` (plugged here, on that network).
fn local_listeners<'v>(
    view: &'v View,
    host: &Host,
    net: &Network,
) -> BTreeMap<IpAddr, Vec<&'v model::Port>> {
    let by_key: HashMap<u32, &model::Port> = view
        .ports_of(&net.meta.id)
        .filter(|p| host.plugged(&p.meta.id))
        .map(|p| (p.unique_key, p))
        .collect();
    host.mcast
        .members
        .range((net.meta.id.clone(), IpAddr::V4(Ipv4Addr::UNSPECIFIED))..)
        .take_while(|((n, _), _)| *n == net.meta.id)
        .map(|((_, g), m)| {
            (
                *g,
                m.keys().filter_map(|k| by_key.get(k).copied()).collect(),
            )
        })
        .collect()
}

/// The two OpenFlow groups of each group of `net` with listeners.
pub fn groups(view: &View, host: &Host, net: &Network) -> Vec<Group> {
    if !active(view, host, net) {
        return Vec::new();
    }
    let local = local_listeners(view, host, net);
    let mut out = Vec::new();
    for (g, hosts) in groups_of(view, host, &net.meta.id) {
        let Some(n) = host.mcast.ids.get(&(net.meta.id.clone(), g)) else {
            continue;
        };
        let here: Vec<Bucket> = local
            .get(&g)
            .into_iter()
            .flatten()
            .map(|p| deliver::local_bucket(p))
            .collect();
        let mut all = here.clone();
        all.extend(deliver::remote_buckets(
            view,
            host,
            net,
            hosts.iter().map(String::as_str),
        ));
        let group = |id: u32, buckets: Vec<Bucket>| Group {
            id,
            body: GroupBody {
                group_type: GroupType::All,
                buckets,
            },
        };
        out.push(group(ALL | n, all));
        out.push(group(LOCAL | n, here));
    }
    out
}

pub struct Mcast;

impl App for Mcast {
    fn id(&self) -> AppId {
        AppId::Mcast
    }

    fn tables(&self) -> &'static [u8] {
        &[table::L2, table::FROM_TUNNEL]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        if let Object::Network(n) = obj {
            out.extend(flows(cx.view, cx.host, n));
            for g in groups(cx.view, cx.host, n) {
                out.group(g);
            }
        }
    }

    /// Another host's record changes its network's groups (a record's id starts with
    /// its network's), and that host's tunnel endpoint their buckets; a port decides whether the network has a port here (L2 already
    /// recompiles the network for it).
    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        // A host that moves its tunnel endpoint: the groups with buckets to it.
        if changed.table == Table::Chassis {
            let nets: BTreeSet<&str> = view
                .mcast_groups
                .values()
                .filter(|r| r.chassis == changed.id)
                .map(|r| r.network_id.as_str())
                .collect();
            out.extend(nets.into_iter().map(|id| Touched {
                table: Table::Network,
                id: id.to_string(),
            }));
        }
        if changed.table == Table::McastGroup
            && let Some(net) = changed.id.split('/').next()
        {
            out.push(Touched {
                table: Table::Network,
                id: net.to_string(),
            });
        }
    }

    fn handler(&self, settings: &Settings) -> Option<Box<dyn Handler>> {
        Some(Box::new(snoop::Snoop::new(settings.mcast.clone())))
    }
}
