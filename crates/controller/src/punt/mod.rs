//! Packets the switch sends to the controller (packet-ins). Each goes to the app whose
//! flow sent it, named by that flow's cookie, and comes back as packets to send and
//! flow-mods to apply at once (short-lived flows such as a flood guard's drop). Sans-IO:
//! the runtime does the sending.

pub mod dhcp;
pub mod l3;
pub mod nat;
pub mod nd;
pub mod rate;

use crate::apps::Host;
use crate::pipeline::{App, Cookie};
use crate::view::View;
use openflow::flow::FlowMod;
use openflow::packet::{PacketIn, PacketOut};
use std::time::Instant;

/// What answering one packet-in takes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Punted {
    pub packets: Vec<PacketOut>,
    pub flow_mods: Vec<FlowMod>,
}

/// The state the packet handlers keep between packets (rate limits, counters).
#[derive(Debug, Default)]
pub struct Punt {
    /// Packet-ins no handler wanted (an app without a handler, a foreign cookie).
    pub unhandled: u64,
    /// Router answers (ICMP errors and echo).
    pub l3: l3::L3Punt,
    /// Neighbour advertisements.
    pub nd: nd::NdPunt,
    /// The DHCP responder.
    pub dhcp: dhcp::Dhcp,
    /// External next hops and announcements (north-south NAT).
    pub nat: nat::NatPunt,
}

impl Punt {
    /// Answers one packet-in. Never fails: whatever a VM sends, a bad packet is dropped
    /// (and counted by the app that owns it).
    pub fn handle(&mut self, view: &View, host: &Host, now: Instant, pi: &PacketIn) -> Punted {
        let _ = (view, host, now);
        if let Some(c) = Cookie::decode(pi.cookie)
            && c.app == App::Dhcp
        {
            return self.dhcp.handle(view, host, now, pi, c.key);
        }
        match Cookie::decode(pi.cookie).map(|c| c.app) {
            Some(App::L3) => self.l3.handle(view, now, pi),
            Some(App::Nd) => self.nd.handle(view, now, pi),
            Some(App::Nat) => self.nat.handle(view, pi),
            Some(app) => {
                self.unhandled += 1;
                tracing::debug!(?app, table = pi.table_id, "packet-in with no handler");
                Punted::default()
            }
            None => {
                self.unhandled += 1;
                tracing::debug!(cookie = pi.cookie, "packet-in from a flow that is not ours");
                Punted::default()
            }
        }
    }
}

/// The app a packet-in came from, if its flow is ours.
pub fn app_of(pi: &PacketIn) -> Option<App> {
    Cookie::decode(pi.cookie).map(|c| c.app)
}
