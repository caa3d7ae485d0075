//! The router's answers that the switch cannot give: ICMP time exceeded for TTL 1, echo
//! replies from the router's own addresses, port unreachable for other traffic to them,
//! and host/network unreachable for destinations with no port or no route. Each router
//! port answers at most `rate` errors a second (echo replies get ten times that), so a VM
//! cannot make its controller work without limit: past the rate, the answer is dropped and
//! a drop flow for that sender's flood (its port, the destination, and the TTL for expiry)
//! is put above the punting flows for one second, so the excess stays in the switch.

use super::router_by_key;
use crate::apps::rate::Limiter;
use crate::apps::{Handler, Host, Punted};
use crate::pipeline::{App, Cookie, reg, table};
use crate::view::View;
use model::{Router, RouterInterface};
use openflow::action::port;
use openflow::flow::{FlowMod, NO_BUFFER};
use openflow::oxm::{Field, Match, OxmField};
use openflow::packet::{PacketIn, PacketOut, PipelineFields};
use packet::ethernet::{self, EtherType, EthernetRepr};
use packet::{EthernetAddress, IpProtocol, icmpv4, icmpv6, ipv4, ipv6};
use std::net::IpAddr;
use std::time::Instant;

/// Default errors per second per router port.
pub const DEFAULT_RATE: u32 = 3;
/// The flood guard: above every L3 flow, for this many seconds.
const GUARD_PRIORITY: u16 = 400;
const GUARD_SECONDS: u16 = 1;

/// What a router sends back, before the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Echo,
    Error,
}

#[derive(Debug)]
pub struct L3Punt {
    errors: Limiter<String>,
    echoes: Limiter<String>,
    /// Answers sent.
    pub answered: u64,
    /// Answers the rate limit held back.
    pub limited: u64,
    /// Packet-ins that deserved no answer (malformed, errors about errors, unknown router).
    pub ignored: u64,
}

impl Default for L3Punt {
    fn default() -> Self {
        L3Punt::new(DEFAULT_RATE)
    }
}

impl L3Punt {
    /// `rate` ICMP errors a second per router port.
    pub fn new(rate: u32) -> L3Punt {
        L3Punt {
            errors: Limiter::new(rate),
            echoes: Limiter::new(rate.saturating_mul(10)),
            answered: 0,
            limited: 0,
            ignored: 0,
        }
    }

    fn handle(&mut self, view: &View, host: &Host, now: Instant, pi: &PacketIn) -> Punted {
        match self.answer(view, pi) {
            Some(Answer {
                iface_port,
                kind,
                frame,
                out_port,
                guard,
            }) => {
                let limiter = match kind {
                    Kind::Echo => &mut self.echoes,
                    Kind::Error => &mut self.errors,
                };
                if !limiter.allow(iface_port, now) {
                    self.limited += 1;
                    return Punted {
                        flow_mods: vec![FlowMod {
                            cookie: Cookie {
                                app: App::L3,
                                key: pi.reg(5),
                            }
                            .encode(),
                            hard_timeout: GUARD_SECONDS,
                            match_: guard,
                            instructions: Vec::new(),
                            ..FlowMod::add(table::L3, GUARD_PRIORITY)
                        }],
                        ..Punted::default()
                    };
                }
                self.answered += 1;
                Punted {
                    packets: vec![PacketOut {
                        buffer_id: NO_BUFFER,
                        in_port: port::CONTROLLER,
                        // Back the way it came: tagged again for a trunk subport.
                        actions: super::super::deliver::back(host, pi.reg(6), out_port),
                        data: frame,
                    }],
                    ..Punted::default()
                }
            }
            None => {
                self.ignored += 1;
                Punted::default()
            }
        }
    }

    /// The answer to one punted frame.
    fn answer(&self, view: &View, pi: &PacketIn) -> Option<Answer> {
        let in_port = pi.in_port()?;
        let router = router_by_key(view, pi.reg(5))?;
        let eth = ethernet::Frame::new_checked(pi.data.as_slice()).ok()?;
        let repr = EthernetRepr::parse(&eth).ok()?;
        let ip = eth.payload();
        let (kind, iface, reply) = match repr.ethertype {
            EtherType::Ipv4 => v4(router, repr.dst_addr, ip)?,
            EtherType::Ipv6 => v6(router, repr.dst_addr, ip)?,
            _ => return None,
        };
        // What the flood guard matches: this sender, this destination, and the TTL when
        // it is the TTL that made the packet come here.
        let mut guard = Match::new()
            .masked(reg::ROUTER, pi.reg(5), u32::MAX)
            .masked(reg::SRC_PORT, pi.reg(6), u32::MAX);
        guard = match ipv4::Packet::new_checked(ip) {
            Ok(p) if repr.ethertype == EtherType::Ipv4 => {
                let g = guard.eth_type(0x0800);
                let g = if p.ttl() <= 1 {
                    g.with(OxmField::new(Field::IpTtl, u128::from(p.ttl())))
                } else {
                    g
                };
                g.ipv4_dst(p.dst_addr())
            }
            _ => match ipv6::Packet::new_checked(ip) {
                Ok(p) => {
                    let g = guard.eth_type(0x86dd);
                    let g = if p.hop_limit() <= 1 {
                        g.with(OxmField::new(Field::IpTtl, u128::from(p.hop_limit())))
                    } else {
                        g
                    };
                    g.ipv6_dst(p.dst_addr())
                }
                Err(_) => return None,
            },
        };
        let frame = EthernetRepr {
            src_addr: EthernetAddress(iface.mac_address.0),
            dst_addr: repr.src_addr,
            vlan: None,
            ethertype: repr.ethertype,
        }
        .build(&reply);
        Some(Answer {
            iface_port: iface.port_id.clone(),
            kind,
            frame,
            out_port: in_port,
            guard,
        })
    }
}

/// The answer to one punted frame, before the rate limit.
struct Answer {
    /// The router port it counts against.
    iface_port: String,
    kind: Kind,
    frame: Vec<u8>,
    /// The port the frame came in by, where the answer goes.
    out_port: u32,
    /// The match of the flood guard, should the port be over its rate.
    guard: Match,
}

/// The interface a frame came to (by its MAC) with an address of the family `v6`; or, for
/// a network with subnets of both families on separate interfaces, one on the same network.
fn ingress(router: &Router, mac: EthernetAddress, v6: bool) -> Option<&RouterInterface> {
    let family = |i: &&RouterInterface| i.ip_address.is_ipv6() == v6;
    let by_mac = router
        .interfaces
        .iter()
        .find(|i| i.mac_address.0 == mac.0)?;
    if family(&by_mac) {
        return Some(by_mac);
    }
    router
        .interfaces
        .iter()
        .filter(family)
        .find(|i| i.network_id == by_mac.network_id)
}

/// An address of the router's: an interface's, or the link-local address of an IPv6
/// interface (its router advertisements come from there).
fn is_own(router: &Router, ip: IpAddr) -> bool {
    router.interfaces.iter().any(|i| {
        i.ip_address == ip
            || (i.ip_address.is_ipv6()
                && ip == IpAddr::V6(packet::ipv6::link_local(i.mac_address.0)))
    })
}

fn attached(router: &Router, ip: IpAddr) -> bool {
    router.interfaces.iter().any(|i| i.cidr.contains(&ip))
}

fn v4<'a>(
    router: &'a Router,
    mac: EthernetAddress,
    ip: &[u8],
) -> Option<(Kind, &'a RouterInterface, Vec<u8>)> {
    let pkt = ipv4::Packet::new_checked(ip).ok()?;
    let iface = ingress(router, mac, false)?;
    let IpAddr::V4(from) = iface.ip_address else {
        return None;
    };
    let dst = pkt.dst_addr();
    if is_own(router, IpAddr::V4(dst)) {
        return match pkt.protocol() {
            IpProtocol::Icmp => Some((Kind::Echo, iface, icmpv4::echo_reply(ip).ok()?)),
            IpProtocol::Udp | IpProtocol::Tcp => Some((
                Kind::Error,
                iface,
                icmpv4::dst_unreachable(ip, icmpv4::unreachable::PORT, 0, dst).ok()?,
            )),
            _ => None,
        };
    }
    let reply = if pkt.ttl() <= 1 {
        icmpv4::time_exceeded(ip, icmpv4::time_exceeded::TTL, from)
    } else if attached(router, IpAddr::V4(dst)) {
        icmpv4::dst_unreachable(ip, icmpv4::unreachable::HOST, 0, from)
    } else {
        icmpv4::dst_unreachable(ip, icmpv4::unreachable::NET, 0, from)
    };
    Some((Kind::Error, iface, reply.ok()?))
}

fn v6<'a>(
    router: &'a Router,
    mac: EthernetAddress,
    ip: &[u8],
) -> Option<(Kind, &'a RouterInterface, Vec<u8>)> {
    let pkt = ipv6::Packet::new_checked(ip).ok()?;
    let iface = ingress(router, mac, true)?;
    let IpAddr::V6(from) = iface.ip_address else {
        return None;
    };
    let dst = pkt.dst_addr();
    if is_own(router, IpAddr::V6(dst)) {
        return match pkt.next_header() {
            IpProtocol::Icmpv6 => Some((Kind::Echo, iface, icmpv6::echo_reply(ip).ok()?)),
            IpProtocol::Udp | IpProtocol::Tcp => Some((
                Kind::Error,
                iface,
                icmpv6::dst_unreachable(ip, icmpv6::unreachable::PORT, dst).ok()?,
            )),
            _ => None,
        };
    }
    let reply = if pkt.hop_limit() <= 1 {
        icmpv6::time_exceeded(ip, 0, from)
    } else if attached(router, IpAddr::V6(dst)) {
        icmpv6::dst_unreachable(ip, icmpv6::unreachable::ADDRESS, from)
    } else {
        icmpv6::dst_unreachable(ip, icmpv6::unreachable::NO_ROUTE, from)
    };
    Some((Kind::Error, iface, reply.ok()?))
}
impl Handler for L3Punt {
    fn packet_in(
        &mut self,
        view: &View,
        host: &mut Host,
        now: Instant,
        pi: &PacketIn,
        _key: u32,
    ) -> Punted {
        self.handle(view, host, now, pi)
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("answered", self.answered),
            ("limited", self.limited),
            ("ignored", self.ignored),
        ]
    }
}
