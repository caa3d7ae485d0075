//! The snooping side of [`super`]: membership messages punted from local ports (read by
//! `packet::mcast`), each port held to a rate by the [`FloodGuard`] (past it, the port's
//! messages are dropped in the switch for a while); listeners kept with their expiry in
//! [`Host::mcast`]; this host's groups written to the NB store when they differ from its
//! records there; and a querier per network when no router on it queries. Sans-IO: time
//! comes in, packets and writes go out.
//!
//! A leave (IGMPv2 leave, a v3 `TO_IN({})`, an MLD done) removes its port at once: a
//! port is one host, whose kernel reports a leave only when its last listener is gone.

use super::{State, active, block, groups_of};
use crate::apps::rate::{Admit, FloodGuard};
use crate::apps::{Host, Punted, deliver};
use crate::view::{Touched, View};
use model::Table;
use openflow::action::port;
use openflow::flow::NO_BUFFER;
use openflow::packet::{PacketIn, PacketOut, PipelineFields};
use packet::EthernetAddress;
use packet::mcast::{self, Message};
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// The snooping settings (from the controller's command line).
#[derive(Debug, Clone)]
pub struct Config {
    /// Membership messages a port may send a second (and in a burst); 0: no limit.
    pub rate: u32,
    /// How long a port past that rate has its messages dropped in the switch.
    pub block: Duration,
    /// The querier's interval between general queries (RFC 3376's 125 s by default).
    pub query_interval: Duration,
    /// The maximum response time asked in queries (10 s).
    pub response: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            rate: 20,
            block: Duration::from_secs(10),
            query_interval: Duration::from_secs(125),
            response: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// How long a listener is kept without a report: robustness (2) × query interval +
    /// response time (RFC 3376 8.4).
    pub fn membership_timeout(&self) -> Duration {
        self.query_interval * 2 + self.response
    }

    /// How long another querier's query silences ours (RFC 3376 8.5).
    fn other_querier(&self) -> Duration {
        self.query_interval * 2 + self.response / 2
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub reports: u64,
    pub joins: u64,
    pub leaves: u64,
    pub queries_seen: u64,
    pub queries_sent: u64,
    pub limited: u64,
    pub blocks: u64,
    /// Punted frames that were no valid membership message, or from no local port.
    pub ignored: u64,
    pub expired: u64,
    /// Writes of this host's groups to the NB store.
    pub writes: u64,
}

#[derive(Debug)]
struct Querier {
    next: Instant,
    /// A router (or another querier) queried on the network: ours is quiet until then.
    other_until: Option<Instant>,
}

pub struct Snoop {
    config: Config,
    guard: FloodGuard,
    queriers: HashMap<String, Querier>,
    /// The groups last written for each network, and when (a write is sent again only
    /// after a while, if the store still says otherwise).
    written: HashMap<String, (BTreeSet<IpAddr>, Instant)>,
    started: Option<Instant>,
    pub stats: Stats,
}

/// How long a write of this host's groups is given to come back through the stream.
const WRITE_AGAIN: Duration = Duration::from_secs(3);

impl Snoop {
    pub fn new(config: Config) -> Snoop {
        Snoop {
            config,
            guard: FloodGuard::default(),
            queriers: HashMap::new(),
            written: HashMap::new(),
            started: None,
            stats: Stats::default(),
        }
    }

    fn answer(
        &mut self,
        view: &View,
        host: &mut Host,
        now: Instant,
        pi: &PacketIn,
        key: u32,
    ) -> Punted {
        let src = pi.reg(6);
        let net = view.networks.values().find(|n| n.unique_key == key);
        let port = net.and_then(|n| {
            view.ports_of(&n.meta.id)
                .find(|p| p.unique_key == src && host.plugged(&p.meta.id))
        });
        let (Some(net), Some(port)) = (net, port) else {
            self.stats.ignored += 1;
            return Punted::default();
        };
        match self
            .guard
            .admit(now, src, self.config.rate, self.config.block)
        {
            Admit::Pass => {}
            Admit::Dropped => {
                self.stats.limited += 1;
                return Punted::default();
            }
            Admit::Block(seconds) => {
                self.stats.limited += 1;
                self.stats.blocks += 1;
                tracing::warn!(port = %port.meta.id, seconds, "IGMP/MLD flood: the port's membership messages are blocked in the switch");
                return Punted {
                    flow_mods: block(key, src, seconds),
                    ..Punted::default()
                };
            }
        }
        let Ok(m) = mcast::parse_frame(&pi.data) else {
            self.stats.ignored += 1;
            return Punted::default();
        };
        let network = net.meta.id.clone();
        match m.message {
            Message::Query { .. } => {
                // A router in a VM queries: our querier keeps quiet, and its query reaches
                // this host's other ports (other hosts run their own querier).
                self.stats.queries_seen += 1;
                let q = self.queriers.entry(network.clone()).or_insert(Querier {
                    next: now,
                    other_until: None,
                });
                q.other_until = Some(now + self.config.other_querier());
                let host: &Host = host;
                let packets = view
                    .ports_of(&network)
                    .filter(|p| p.unique_key != src)
                    .filter_map(|p| deliver::to_local(host, &p.meta.id))
                    .map(|actions| PacketOut {
                        buffer_id: NO_BUFFER,
                        in_port: port::CONTROLLER,
                        actions,
                        data: pi.data.clone(),
                    })
                    .collect();
                Punted {
                    packets,
                    ..Punted::default()
                }
            }
            Message::Report { joins, leaves, .. } => {
                self.stats.reports += 1;
                let until = now + self.config.membership_timeout();
                let mut changed = false;
                for g in joins.into_iter().filter(model::mcast::snoopable) {
                    let m = host.mcast.members.entry((network.clone(), g)).or_default();
                    changed |= m.insert(src, until).is_none();
                    self.stats.joins += 1;
                }
                for g in leaves.into_iter().filter(model::mcast::snoopable) {
                    if let Some(m) = host.mcast.members.get_mut(&(network.clone(), g)) {
                        changed |= m.remove(&src).is_some();
                    }
                    self.stats.leaves += 1;
                }
                host.mcast.members.retain(|_, m| !m.is_empty());
                Punted {
                    recompile: if changed {
                        vec![Touched {
                            table: Table::Network,
                            id: network,
                        }]
                    } else {
                        Vec::new()
                    },
                    ..Punted::default()
                }
            }
        }
    }

    /// Forgets listeners past their time, gone from this host, or on networks that no
    /// longer snoop here; the networks whose groups changed.
    fn expire(&mut self, view: &View, host: &mut Host, now: Instant) -> Vec<Touched> {
        let mut touched = BTreeSet::new();
        let state: &mut State = &mut host.mcast;
        for ((network, _), m) in state.members.iter_mut() {
            let live = view.networks.get(network).is_some_and(|n| {
                super::snoops(n)
                    && view.ports_of(network).any(|p| {
                        host.ofports.contains_key(&p.meta.id)
                            || host.subports.contains_key(&p.meta.id)
                    })
            });
            let before = m.len();
            m.retain(|key, until| {
                live && *until > now
                    && view.ports_of(network).any(|p| {
                        p.unique_key == *key
                            && (host.ofports.contains_key(&p.meta.id)
                                || host.subports.contains_key(&p.meta.id))
                    })
            });
            if m.len() != before {
                self.stats.expired += (before - m.len()) as u64;
                touched.insert(network.clone());
            }
        }
        state.members.retain(|_, m| !m.is_empty());
        touched
            .into_iter()
            .map(|id| Touched {
                table: Table::Network,
                id,
            })
            .collect()
    }

    /// General queries to the local ports of each snooping network no router queries on.
    fn query(&mut self, view: &View, host: &Host, now: Instant) -> Vec<PacketOut> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for net in view.networks.values().filter(|n| active(view, host, n)) {
            seen.insert(net.meta.id.clone());
            let q = self.queriers.entry(net.meta.id.clone()).or_insert(Querier {
                next: now,
                other_until: None,
            });
            if q.next > now || q.other_until.is_some_and(|t| t > now) {
                continue;
            }
            q.next = now + self.config.query_interval;
            let k = net.unique_key.to_be_bytes();
            let mac = EthernetAddress([0x02, 0xdf, 0x6d, k[1], k[2], k[3]]);
            let v4 = net
                .subnets
                .iter()
                .filter_map(|s| view.subnets.get(s)?.gateway_ip)
                .find_map(|ip| match ip {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                })
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            let resp = self.config.response;
            let frames = [
                mcast::igmp_general_query(
                    mac,
                    v4,
                    u8::try_from(resp.as_millis() / 100).unwrap_or(u8::MAX),
                ),
                mcast::mld_general_query(
                    mac,
                    packet::ipv6::link_local(mac.0),
                    u16::try_from(resp.as_millis()).unwrap_or(u16::MAX),
                ),
            ];
            for p in view.ports_of(&net.meta.id) {
                let Some(actions) = deliver::to_local(host, &p.meta.id) else {
                    continue;
                };
                for f in &frames {
                    self.stats.queries_sent += 1;
                    out.push(PacketOut {
                        buffer_id: NO_BUFFER,
                        in_port: port::CONTROLLER,
                        actions: actions.clone(),
                        data: f.clone(),
                    });
                }
            }
        }
        self.queriers.retain(|n, _| seen.contains(n));
        out
    }

    /// The networks whose groups in the store differ from this host's listeners, with
    /// the groups to write. A host that just started waits for the answers to its first
    /// queries before it takes records away.
    fn writes(
        &mut self,
        view: &View,
        host: &Host,
        now: Instant,
    ) -> Vec<(String, BTreeSet<IpAddr>)> {
        let started = *self.started.get_or_insert(now);
        let settled =
            now.saturating_duration_since(started) > self.config.response + Duration::from_secs(1);
        let mut networks: BTreeSet<String> = view
            .mcast_groups
            .values()
            .filter(|r| r.chassis == view.chassis)
            .map(|r| r.network_id.clone())
            .collect();
        networks.extend(host.mcast.members.keys().map(|(n, _)| n.clone()));
        let mut out = Vec::new();
        for network in networks {
            let wanted: BTreeSet<IpAddr> = if view
                .networks
                .get(&network)
                .is_some_and(|n| active(view, host, n))
            {
                host.mcast
                    .members
                    .iter()
                    .filter(|((n, _), m)| *n == network && !m.is_empty())
                    .map(|((_, g), _)| *g)
                    .collect()
            } else {
                BTreeSet::new()
            };
            let have: BTreeSet<IpAddr> = view
                .mcast_groups_of(&network)
                .filter(|r| r.chassis == view.chassis)
                .map(|r| r.group)
                .collect();
            if wanted == have || (!settled && !have.is_subset(&wanted)) {
                self.written.remove(&network);
                continue;
            }
            if self.written.get(&network).is_some_and(|(w, at)| {
                *w == wanted && now.saturating_duration_since(*at) < WRITE_AGAIN
            }) {
                continue;
            }
            self.stats.writes += 1;
            self.written.insert(network.clone(), (wanted.clone(), now));
            out.push((network, wanted));
        }
        out
    }
}

impl crate::apps::Handler for Snoop {
    fn packet_in(
        &mut self,
        view: &View,
        host: &mut Host,
        now: Instant,
        pi: &PacketIn,
        key: u32,
    ) -> Punted {
        self.answer(view, host, now, pi, key)
    }

    fn tick(&mut self, view: &View, host: &mut Host, now: Instant) -> Punted {
        let recompile = self.expire(view, host, now);
        Punted {
            packets: self.query(view, host, now),
            recompile,
            mcast: self.writes(view, host, now),
            ..Punted::default()
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let s = &self.stats;
        vec![
            ("reports", s.reports),
            ("joins", s.joins),
            ("leaves", s.leaves),
            ("queries_seen", s.queries_seen),
            ("queries_sent", s.queries_sent),
            ("limited", s.limited),
            ("blocks", s.blocks),
            ("ignored", s.ignored),
            ("expired", s.expired),
            ("writes", s.writes),
        ]
    }
}

/// The groups of `network` this host's flows send to, for tools and tests.
pub fn listened(view: &View, host: &Host, network: &str) -> BTreeSet<IpAddr> {
    groups_of(view, host, network).into_keys().collect()
}
