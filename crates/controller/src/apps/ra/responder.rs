//! The router advertisements this host sends, to its own ports only: the answer to a
//! port's router solicitation (punted by [`super`]), and the unsolicited ones every local
//! port gets on its own schedule, driven by the engine's tick (sans-IO: time comes in).
//! A port's first RA goes out on the tick after it appears (so a booting VM need not
//! wait for its solicitation's round trip), the next ones at random intervals: the first
//! three within 16 s (RFC 4861 6.2.4), then uniformly between Neutron's minimum and
//! maximum intervals. The randomness is a hash of the port's key and its count of RAs,
//! so ports never send in step and a test can replay it.

use super::advert::{self, MAX_INTERVAL, MIN_INTERVAL};
use crate::apps::here::is_router_port;
use crate::apps::rate::Limiter;
use crate::apps::{Handler, Host, Punted, deliver};
use crate::view::View;
use openflow::action::{Action, port};
use openflow::flow::NO_BUFFER;
use openflow::packet::{PacketIn, PacketOut, PipelineFields};
use packet::icmpv6::{self, Icmpv6Repr};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Solicitations answered per second per asking port (and burst).
const RATE: u32 = 10;
/// How long a port past that rate has its solicitations dropped in the switch.
pub const BLOCK_SECONDS: u16 = 10;
/// RAs sent at the shorter initial intervals (MAX_INITIAL_RTR_ADVERTISEMENTS).
const INITIAL: u32 = 3;
/// Bounds of the initial intervals (the RFC's cap is 16 s).
const INITIAL_MIN: u64 = 4;
const INITIAL_MAX: u64 = 16;
/// How often the set of local ports is looked at again even if nothing seemed to change.
const RESYNC: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Solicitations answered.
    pub answered: u64,
    /// Solicitations over the per-port rate.
    pub limited: u64,
    /// Times a port was blocked in the switch for going over it.
    pub blocks: u64,
    /// Punted frames that were not a valid solicitation, or from a port with no router
    /// advertising on its network.
    pub ignored: u64,
    /// Unsolicited RAs sent (one per port and router interface).
    pub unsolicited: u64,
}

#[derive(Debug)]
struct Local {
    id: String,
    /// How its RAs reach it (`deliver::to_local`: a trunk subport's are tagged).
    out: Vec<Action>,
    next: Instant,
    sent: u32,
}

#[derive(Debug)]
pub struct Ra {
    limiter: Limiter<u32>,
    /// Local ports on advertising networks, by port key.
    ports: HashMap<u32, Local>,
    synced: Option<(u64, usize, Instant)>,
    /// Ports blocked in the switch, until when.
    blocked: HashMap<u32, Instant>,
    pub stats: Stats,
}

impl Default for Ra {
    fn default() -> Self {
        Ra {
            limiter: Limiter::new(RATE),
            ports: HashMap::new(),
            synced: None,
            blocked: HashMap::new(),
            stats: Stats::default(),
        }
    }
}

/// A number in `[lo, hi]` seconds drawn from the port key and the count (splitmix64).
pub fn jittered(key: u32, sent: u32, lo: u64, hi: u64) -> Duration {
    let mut z = (u64::from(key) << 32 | u64::from(sent)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let span_ms = (hi - lo) * 1000;
    Duration::from_millis(lo * 1000 + z % (span_ms + 1))
}

/// The wait after a port's `sent`-th RA.
pub fn interval(key: u32, sent: u32) -> Duration {
    if sent <= INITIAL {
        jittered(key, sent, INITIAL_MIN, INITIAL_MAX)
    } else {
        jittered(key, sent, MIN_INTERVAL, MAX_INTERVAL)
    }
}

/// The RA frames for a port's network, each sent with `out`.
fn packets(view: &View, network_id: &str, out: &[Action]) -> Vec<PacketOut> {
    let Some(net) = view.networks.get(network_id) else {
        return Vec::new();
    };
    advert::adverts(view, net)
        .into_iter()
        .map(|(mac, ra)| PacketOut {
            buffer_id: NO_BUFFER,
            in_port: port::CONTROLLER,
            actions: out.to_vec(),
            data: ra.multicast_frame(mac),
        })
        .collect()
}

impl Ra {
    /// Brings the set of local ports on advertising networks up to date with the view:
    /// a new port is due at once, a gone one forgotten.
    fn sync(&mut self, view: &View, host: &Host, now: Instant) {
        let mark = (view.revision, host.ofports.len() + host.subports.len());
        if let Some((rev, n, at)) = self.synced
            && (rev, n) == mark
            && now.saturating_duration_since(at) < RESYNC
        {
            return;
        }
        self.synced = Some((mark.0, mark.1, now));
        let mut keep = HashMap::with_capacity(self.ports.len());
        for id in host.ofports.keys().chain(host.subports.keys()) {
            let (Some(p), Some(out)) = (view.ports.get(id), deliver::to_local(host, id)) else {
                continue;
            };
            if is_router_port(p) || !advert::network_advertises(view, &p.network_id) {
                continue;
            }
            let l = match self.ports.remove(&p.unique_key) {
                Some(l) if l.id == *id && l.out == out => l,
                _ => Local {
                    id: id.clone(),
                    out,
                    next: now,
                    sent: 0,
                },
            };
            keep.insert(p.unique_key, l);
        }
        self.ports = keep;
    }

    /// The unsolicited RAs due at `now`.
    pub fn unsolicited(&mut self, view: &View, host: &Host, now: Instant) -> Vec<PacketOut> {
        self.sync(view, host, now);
        let mut out = Vec::new();
        for (key, l) in &mut self.ports {
            if l.next > now {
                continue;
            }
            let Some(p) = view.ports.get(&l.id) else {
                continue;
            };
            let sent = packets(view, &p.network_id, &l.out);
            self.stats.unsolicited += sent.len() as u64;
            out.extend(sent);
            l.sent = l.sent.saturating_add(1);
            l.next = now + interval(*key, l.sent);
        }
        out
    }

    fn answer(
        &mut self,
        view: &View,
        host: &Host,
        now: Instant,
        pi: &PacketIn,
        key: u32,
    ) -> Punted {
        let in_port = pi.in_port();
        let is_rs = icmpv6::parse_frame(&pi.data)
            .is_ok_and(|f| matches!(f.icmpv6, Icmpv6Repr::RouterSolicit { .. }));
        let port = match self.ports.get(&key) {
            Some(l) => view.ports.get(&l.id),
            None => view.ports.values().find(|p| p.unique_key == key),
        };
        let (Some(in_port), true, Some(p)) = (in_port, is_rs, port) else {
            self.stats.ignored += 1;
            return Punted::default();
        };
        let packets = packets(view, &p.network_id, &deliver::back(host, key, in_port));
        if packets.is_empty() {
            self.stats.ignored += 1;
            return Punted::default();
        }
        if !self.limiter.allow(key, now) {
            // Past the rate: the switch drops the port's solicitations for a while (what
            // was already on its way meanwhile is dropped here), so a flooding VM costs
            // the controller nothing.
            self.stats.limited += 1;
            if self.blocked.get(&key).is_some_and(|until| now < *until) {
                return Punted::default();
            }
            if self.blocked.len() > 4096 {
                self.blocked.retain(|_, until| now < *until);
            }
            self.blocked
                .insert(key, now + Duration::from_secs(BLOCK_SECONDS.into()));
            self.stats.blocks += 1;
            tracing::warn!(port = %p.meta.id, seconds = BLOCK_SECONDS, "RS flood: the port's solicitations are blocked in the switch");
            return Punted {
                flow_mods: vec![super::block(key, BLOCK_SECONDS)],
                ..Punted::default()
            };
        }
        self.stats.answered += 1;
        Punted {
            packets,
            ..Punted::default()
        }
    }
}

impl Handler for Ra {
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

    fn tick(&mut self, view: &View, host: &Host, now: Instant) -> Punted {
        Punted {
            packets: self.unsolicited(view, host, now),
            ..Punted::default()
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("answered", self.stats.answered),
            ("limited", self.stats.limited),
            ("blocks", self.stats.blocks),
            ("ignored", self.stats.ignored),
            ("unsolicited", self.stats.unsolicited),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_jittered_within_their_bounds() {
        let mut seen = std::collections::BTreeSet::new();
        for key in 1..200 {
            for sent in 1..=INITIAL {
                let d = interval(key, sent);
                assert!(d >= Duration::from_secs(4) && d <= Duration::from_secs(16));
                seen.insert(d);
            }
            let d = interval(key, INITIAL + 1);
            assert!(d >= Duration::from_secs(30) && d <= Duration::from_secs(100));
        }
        assert!(seen.len() > 500, "ports do not send in step");
        assert_eq!(interval(7, 9), interval(7, 9), "replayable");
    }
}
