//! Neighbour Advertisements for the solicitations `apps::nd` punts: the target is a known
//! address of the network (the frame's metadata), answered with its port's MAC (with the
//! router flag for router interfaces), back out of the port that asked. Rate limited per
//! asking port, generously: ND is on every first packet.

use crate::apps::here::is_router_port;
use crate::apps::rate::Limiter;
use crate::apps::{Handler, Host, Punted};
use crate::view::View;
use openflow::action::{Action, port};
use openflow::flow::NO_BUFFER;
use openflow::packet::{PacketIn, PacketOut, PipelineFields};
use packet::EthernetAddress;
use packet::icmpv6::{self, Icmpv6Repr};
use std::net::IpAddr;
use std::time::Instant;

/// Answers per second per asking port.
const RATE: u32 = 100;

#[derive(Debug)]
pub struct NdPunt {
    limiter: Limiter<u32>,
    pub answered: u64,
    pub limited: u64,
    pub ignored: u64,
}

impl Default for NdPunt {
    fn default() -> Self {
        NdPunt {
            limiter: Limiter::new(RATE),
            answered: 0,
            limited: 0,
            ignored: 0,
        }
    }
}

impl Handler for NdPunt {
    fn packet_in(
        &mut self,
        view: &View,
        _host: &mut Host,
        now: Instant,
        pi: &PacketIn,
        _key: u32,
    ) -> Punted {
        let Some((frame, in_port)) = answer(view, pi) else {
            self.ignored += 1;
            return Punted::default();
        };
        if !self.limiter.allow(in_port, now) {
            self.limited += 1;
            return Punted::default();
        }
        self.answered += 1;
        Punted {
            packets: vec![PacketOut {
                buffer_id: NO_BUFFER,
                in_port: port::CONTROLLER,
                actions: vec![Action::output(in_port)],
                data: frame,
            }],
            ..Punted::default()
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("answered", self.answered),
            ("limited", self.limited),
            ("ignored", self.ignored),
        ]
    }
}

fn answer(view: &View, pi: &PacketIn) -> Option<(Vec<u8>, u32)> {
    let in_port = pi.in_port()?;
    let parsed = icmpv6::parse_frame(&pi.data).ok()?;
    let Icmpv6Repr::NeighborSolicit { target_addr, .. } = parsed.icmpv6 else {
        return None;
    };
    if parsed.ipv6.src_addr.is_unspecified() {
        // DAD: the VM is testing its own address; the switch should not have sent it.
        return None;
    }
    let key = u32::try_from(pi.metadata()).ok()?;
    let net = view.networks.values().find(|n| n.unique_key == key)?;
    let owner = view.ports_of(&net.meta.id).find(|p| {
        p.fixed_ips
            .iter()
            .any(|f| f.ip_address == IpAddr::V6(target_addr))
    })?;
    let frame = icmpv6::neighbor_advert_reply(
        &pi.data,
        EthernetAddress(owner.mac_address.0),
        is_router_port(owner),
    )
    .ok()?;
    Some((frame, in_port))
}
