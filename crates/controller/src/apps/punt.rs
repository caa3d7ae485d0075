//! Packets the switch sends to the controller (packet-ins). Each goes to the handler of the
//! app whose flow sent it, named by that flow's cookie, and comes back as packets to send,
//! flow-mods to apply at once (short-lived flows such as a flood guard's drop) and owners
//! to recompile when the handler learnt something the flows depend on (a next hop's MAC).
//! Sans-IO: the runtime does the sending.

use super::{APPS, Host, Owner};
use crate::pipeline::{App as AppId, Cookie};
use crate::view::View;
use openflow::flow::FlowMod;
use openflow::packet::{PacketIn, PacketOut};
use std::any::Any;
use std::time::Instant;

/// What answering one packet-in (or a tick) takes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Punted {
    pub packets: Vec<PacketOut>,
    pub flow_mods: Vec<FlowMod>,
    /// Owners whose flows follow what the handler learnt (in [`Host`]).
    pub recompile: Vec<Owner>,
    /// DNS questions for the upstream resolvers (I/O: the runtime asks them).
    pub dns: Vec<super::dns::responder::Forward>,
    /// This host's multicast groups of a network, to write to the NB store.
    pub mcast: Vec<(String, std::collections::BTreeSet<std::net::IpAddr>)>,
    /// Members whose health this host concluded, to write to the NB store (`lb::health`).
    pub health: Vec<super::lb::health::MemberHealth>,
}

impl Punted {
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
            && self.flow_mods.is_empty()
            && self.recompile.is_empty()
            && self.dns.is_empty()
            && self.mcast.is_empty()
            && self.health.is_empty()
    }

    pub fn append(&mut self, mut other: Punted) {
        self.packets.append(&mut other.packets);
        self.flow_mods.append(&mut other.flow_mods);
        self.recompile.append(&mut other.recompile);
        self.dns.append(&mut other.dns);
        self.mcast.append(&mut other.mcast);
        self.health.append(&mut other.health);
    }
}

/// An app's packet-in side: the state it keeps between packets (rate limits, counters,
/// what it learnt). Never fails: whatever a VM sends, a bad packet is dropped and counted.
pub trait Handler: Any + Send {
    /// One packet-in from a flow of this app whose cookie carries `key`.
    fn packet_in(
        &mut self,
        view: &View,
        host: &mut Host,
        now: Instant,
        pi: &PacketIn,
        key: u32,
    ) -> Punted;

    /// What the app sends on its own, called every 100 ms.
    fn tick(&mut self, _view: &View, _host: &mut Host, _now: Instant) -> Punted {
        Punted::default()
    }

    /// Its counters, by name (answered, dropped by the rate limit, ...).
    fn counters(&self) -> Vec<(&'static str, u64)>;
}

/// The handlers of every app that has one.
pub struct Punt {
    handlers: Vec<(AppId, Box<dyn Handler>)>,
    /// Packet-ins no handler wanted (an app without a handler, a foreign cookie).
    pub unhandled: u64,
}

impl Default for Punt {
    fn default() -> Punt {
        Punt::new(&super::Settings::default())
    }
}

impl Punt {
    pub fn new(settings: &super::Settings) -> Punt {
        Punt {
            handlers: APPS
                .iter()
                .filter_map(|a| Some((a.id(), a.handler(settings)?)))
                .collect(),
            unhandled: 0,
        }
    }

    /// Answers one packet-in.
    pub fn handle(&mut self, view: &View, host: &mut Host, now: Instant, pi: &PacketIn) -> Punted {
        let Some(c) = Cookie::decode(pi.cookie) else {
            self.unhandled += 1;
            tracing::debug!(cookie = pi.cookie, "packet-in from a flow that is not ours");
            return Punted::default();
        };
        match self.handlers.iter_mut().find(|(id, _)| *id == c.app) {
            Some((_, h)) => h.packet_in(view, host, now, pi, c.key),
            None => {
                self.unhandled += 1;
                tracing::debug!(app = ?c.app, table = pi.table_id, "packet-in with no handler");
                Punted::default()
            }
        }
    }

    /// What every handler sends on its own now.
    pub fn tick(&mut self, view: &View, host: &mut Host, now: Instant) -> Punted {
        let mut out = Punted::default();
        for (_, h) in &mut self.handlers {
            out.append(h.tick(view, host, now));
        }
        out
    }

    /// The handler of type `T`.
    pub fn get<T: Handler>(&self) -> Option<&T> {
        self.handlers
            .iter()
            .find_map(|(_, h)| (h.as_ref() as &dyn Any).downcast_ref::<T>())
    }

    pub fn get_mut<T: Handler>(&mut self) -> Option<&mut T> {
        self.handlers
            .iter_mut()
            .find_map(|(_, h)| (h.as_mut() as &mut dyn Any).downcast_mut::<T>())
    }

    /// Every handler's counters, with its app.
    pub fn counters(&self) -> Vec<(AppId, &'static str, u64)> {
        self.handlers
            .iter()
            .flat_map(|(id, h)| h.counters().into_iter().map(|(n, v)| (*id, n, v)))
            .collect()
    }
}

/// The app a packet-in came from, if its flow is ours.
pub fn app_of(pi: &PacketIn) -> Option<AppId> {
    Cookie::decode(pi.cookie).map(|c| c.app)
}
