//! Cutting connections: what each filtered local port allowed when the switch was last
//! told, and the conntrack flushes for what a change no longer allows.

use super::address_groups::remotes;
use super::{SCTP, TCP, UDP, addresses, filtered, rules_of_port};
use crate::apps::{Host, Owner};
use crate::view::View;
use ipnet::IpNet;
use model::{Direction, EtherType, Port, Table};
use openflow::ct_flush::{CtFlush, CtTuple};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// What one rule lets a port exchange: the unit whose disappearance cuts connections. A
/// remote group stays a group here (its members are kept once per group in [`Cuts`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Allow {
    direction: u8,
    proto: Option<u8>,
    ports: Option<(u16, u16)>,
    remote: Option<IpNet>,
    group: Option<String>,
    ipv6: bool,
}

/// What a filtered local port allows, and where its connections live.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortAllows {
    zone: u16,
    addrs: Vec<IpAddr>,
    allows: BTreeSet<Allow>,
}

fn allows_of(view: &View, host: &Host, p: &Port) -> Option<PortAllows> {
    let zone = filtered(view, host, p)?;
    // An address group's prefixes are one allowance each, as the flows have them: a
    // prefix leaving the group is an allowance gone.
    let allows = rules_of_port(view, p)
        .into_iter()
        .flat_map(|r| {
            let remotes = match r.remote_group_id {
                Some(_) => vec![None],
                None => remotes(view, r),
            };
            remotes.into_iter().map(move |remote| Allow {
                direction: match r.direction {
                    Direction::Egress => 0,
                    Direction::Ingress => 1,
                },
                proto: r.protocol_number,
                ports: r.port_range_min.map(|m| (m, r.port_range_max.unwrap_or(m))),
                remote,
                group: r.remote_group_id.clone(),
                ipv6: r.ethertype == EtherType::IPv6,
            })
        })
        .collect();
    Some(PortAllows {
        zone,
        addrs: p.fixed_ips.iter().map(|f| f.ip_address).collect(),
        allows,
    })
}

/// The addresses of a group's members.
fn members(view: &View, group: &str) -> BTreeSet<IpNet> {
    view.ports_in_group(group)
        .flat_map(addresses)
        .map(|(a, _)| a)
        .collect()
}

/// The conntrack entries of `port` that `gone` allowed, as flush requests: the port's
/// address on its side of the original tuple, the remote host address when there is one,
/// the protocol and single destination port when the flush can say so. OVS 3.1 compares
/// ICMP fields exactly, so ICMP and other protocols flush by addresses alone; a flush may
/// take connections that remaining rules still allow, which then start again as new ones
/// (through the rules) on their next packet.
fn flushes_for(pa: &PortAllows, gone: &Allow, out: &mut BTreeSet<CtFlush>) {
    for addr in pa.addrs.iter().filter(|a| a.is_ipv6() == gone.ipv6) {
        let host_remote = gone
            .remote
            .filter(|r| r.prefix_len() == r.max_prefix_len())
            .map(|r| r.addr());
        // A short port range is flushed port by port; a long one by protocol.
        let (proto, dst_ports): (u8, Vec<Option<u16>>) = match (gone.proto, gone.ports) {
            (Some(p @ (TCP | UDP | SCTP)), Some((lo, hi)))
                if u32::from(hi) + 1 - u32::from(lo) <= MAX_PORTS_FLUSHED =>
            {
                (p, (lo..=hi).map(Some).collect())
            }
            (Some(p @ (TCP | UDP | SCTP)), _) => (p, vec![None]),
            _ => (0, vec![None]),
        };
        for dst_port in dst_ports {
            let orig = if gone.direction == 1 {
                CtTuple {
                    src: host_remote,
                    dst: Some(*addr),
                    dst_port,
                    ..CtTuple::default()
                }
            } else {
                CtTuple {
                    src: Some(*addr),
                    dst: host_remote,
                    dst_port,
                    ..CtTuple::default()
                }
            };
            out.insert(CtFlush {
                ip_proto: proto,
                zone: Some(pa.zone),
                orig,
                reply: CtTuple::default(),
            });
        }
    }
}

/// Beyond this many remote addresses lost by one rule (a remote group rule removed), the
/// flush names the port's side only: fewer messages, a few more connections restarted.
const MAX_REMOTES_FLUSHED: usize = 8;

/// Lost allowances, with those that differ only by many remote addresses merged into one
/// without remote.
fn coarsen<'a>(gone: impl Iterator<Item = &'a Allow>) -> Vec<Allow> {
    let mut by_kind: BTreeMap<Allow, Vec<&Allow>> = BTreeMap::new();
    for a in gone {
        by_kind
            .entry(Allow {
                remote: None,
                ..a.clone()
            })
            .or_default()
            .push(a);
    }
    let mut out = Vec::new();
    for (kind, all) in by_kind {
        if all.len() > MAX_REMOTES_FLUSHED {
            out.push(kind);
        } else {
            out.extend(all.into_iter().cloned());
        }
    }
    out
}

/// Port ranges up to this long are flushed port by port.
const MAX_PORTS_FLUSHED: u32 = 32;

/// What the filtered local ports allowed when the switch was last told, and the members
/// of the remote groups they name; [`Self::update`] returns the flushes for what they no
/// longer allow.
#[derive(Debug, Default)]
pub struct Cuts {
    ports: BTreeMap<String, PortAllows>,
    members: BTreeMap<String, BTreeSet<IpNet>>,
}

impl Cuts {
    /// Recomputes the ports among `owners` (and forgets ports that are gone or no longer
    /// filtered) and the members of the groups in `membership` (those whose members
    /// changed: [`View::take_membership`]); returns the conntrack flushes for the
    /// allowances lost: rules gone, and members gone from the remote groups of the rules
    /// that stay.
    pub fn update<'a>(
        &mut self,
        view: &View,
        host: &Host,
        owners: impl IntoIterator<Item = &'a Owner>,
        membership: &BTreeSet<String>,
    ) -> Vec<CtFlush> {
        let mut out = BTreeSet::new();
        // Members gone from a group: what every port naming it allowed them, once per group
        // rather than per holder, and only when someone left.
        for g in membership {
            let Some(old) = self.members.get_mut(g) else {
                continue;
            };
            let new = members(view, g);
            let departed: Vec<IpNet> = old.difference(&new).copied().collect();
            *old = new;
            if departed.is_empty() {
                continue;
            }
            for pa in self.ports.values() {
                let lost: Vec<Allow> = pa
                    .allows
                    .iter()
                    .filter(|a| a.group.as_ref() == Some(g))
                    .flat_map(|a| {
                        departed
                            .iter()
                            .filter(|ip| ip.addr().is_ipv6() == a.ipv6)
                            .map(|ip| Allow {
                                remote: Some(*ip),
                                group: None,
                                ..a.clone()
                            })
                    })
                    .collect();
                for gone in coarsen(lost.iter()) {
                    flushes_for(pa, &gone, &mut out);
                }
            }
        }
        let ids: BTreeSet<&str> = owners
            .into_iter()
            .filter(|o| o.table == Table::Port)
            .map(|o| o.id.as_str())
            .collect();
        let mut fresh: BTreeMap<String, BTreeSet<IpNet>> = BTreeMap::new();
        let empty = BTreeSet::new();
        for id in ids {
            let now = view.ports.get(id).and_then(|p| allows_of(view, host, p));
            if let Some(now) = &now {
                for g in now.allows.iter().filter_map(|a| a.group.as_ref()) {
                    if !fresh.contains_key(g) {
                        fresh.insert(g.clone(), members(view, g));
                    }
                }
            }
            match (self.ports.get(id), now) {
                (Some(before), Some(now)) => {
                    // Same place: flush what it lost. Moved (zone or addresses changed): its
                    // old connections can not be reached by the new flows anyway.
                    if before.zone == now.zone && before.addrs == now.addrs {
                        let mut lost = Vec::new();
                        for a in &before.allows {
                            let kept = now.allows.contains(a);
                            let Some(g) = &a.group else {
                                if !kept {
                                    lost.push(a.clone());
                                }
                                continue;
                            };
                            let old = self.members.get(g).unwrap_or(&empty);
                            if !fresh.contains_key(g) {
                                fresh.insert(g.clone(), members(view, g));
                            }
                            let new = fresh.get(g).unwrap_or(&empty);
                            for ip in old.iter().filter(|ip| ip.addr().is_ipv6() == a.ipv6) {
                                if !kept || !new.contains(ip) {
                                    lost.push(Allow {
                                        remote: Some(*ip),
                                        group: None,
                                        ..a.clone()
                                    });
                                }
                            }
                        }
                        for gone in coarsen(lost.iter()) {
                            flushes_for(before, &gone, &mut out);
                        }
                    }
                    self.ports.insert(id.to_string(), now);
                }
                (_, Some(now)) => {
                    self.ports.insert(id.to_string(), now);
                }
                (_, None) => {
                    self.ports.remove(id);
                }
            }
        }
        self.members.extend(fresh);
        out.into_iter().collect()
    }

    /// Forgets everything (after the switch lost its state).
    pub fn clear(&mut self) {
        self.ports.clear();
        self.members.clear();
    }
}
