//! The answers of a `reject` rule: a TCP segment is refused with a RST, anything else with
//! an ICMP (or ICMPv6) port unreachable, both from the address it was sent to (as if the
//! destination refused it, as iptables' REJECT does), at most [`DEFAULT_RATE`] a second
//! per port (per router for its interfaces) so a VM cannot make its controller answer
//! without limit (past it, the packet is only dropped). Errors about errors are never
//! sent (the `packet` builders refuse).
//!
//! A VM's egress, or a router interface's ingress (the sender is on this host: routing
//! happens on the sender's host): the answer goes straight back out of the port it came
//! in by. A VM's ingress: it enters the pipeline as if the VM sent it (reg6 = its port,
//! metadata = its network) at services (20), past its security groups and firewall,
//! which already had their say on the refused packet, and reaches the sender as any
//! frame does (over a tunnel, through a router). A router interface's egress (checked
//! where the packet arrives): it enters L3 (60) on the router (reg5) in the network it
//! was going to, and is routed back to the sender.

use crate::apps::rate::Limiter;
use crate::apps::{Handler, Host, Punted, deliver};
use crate::pipeline::{reg, table};
use crate::view::View;
use openflow::action::{Action, port};
use openflow::flow::NO_BUFFER;
use openflow::oxm::Field;
use openflow::packet::{PacketIn, PacketOut, PipelineFields};
use packet::ethernet::{self, EtherType, EthernetRepr};
use packet::{IpProtocol, icmpv4, icmpv6, ipv4, ipv6, tcp};
use std::time::Instant;

/// Answers per second per port (per router for its interfaces: the flow's cookie key).
pub const DEFAULT_RATE: u32 = 10;

#[derive(Debug)]
pub struct Reject {
    limit: Limiter<u32>,
    /// RSTs and port unreachables sent.
    pub answered: u64,
    /// Answers the rate limit held back.
    pub limited: u64,
    /// Packet-ins that deserved no answer (malformed, a RST, an ICMP error).
    pub ignored: u64,
}

impl Reject {
    pub fn new(rate: u32) -> Reject {
        Reject {
            limit: Limiter::new(rate),
            answered: 0,
            limited: 0,
            ignored: 0,
        }
    }
}

/// The IP packet that refuses `ip` (of `ethertype`), from its destination to its source.
pub fn refusal(ethertype: EtherType, ip: &[u8]) -> Option<Vec<u8>> {
    // The IP version must be the frame's (the RST builder goes by the version alone).
    let version = ip.first()? >> 4;
    match ethertype {
        EtherType::Ipv4 if version != 4 => None,
        EtherType::Ipv6 if version != 6 => None,
        EtherType::Ipv4 => {
            let p = ipv4::Packet::new_checked(ip).ok()?;
            if p.protocol() == IpProtocol::Tcp {
                return tcp::rst_packet(ip).ok().map(|(_, b)| b);
            }
            icmpv4::dst_unreachable(ip, icmpv4::unreachable::PORT, 0, p.dst_addr()).ok()
        }
        EtherType::Ipv6 => {
            let p = ipv6::Packet::new_checked(ip).ok()?;
            if p.next_header() == IpProtocol::Tcp {
                return tcp::rst_packet(ip).ok().map(|(_, b)| b);
            }
            if p.next_header() == IpProtocol::Icmpv6 && ip.get(40).is_some_and(|t| *t < 128) {
                // An ICMPv6 error (types below 128) is never answered.
                return None;
            }
            icmpv6::dst_unreachable(ip, icmpv6::unreachable::PORT, p.dst_addr()).ok()
        }
        _ => None,
    }
}

impl Reject {
    fn answer(&self, host: &Host, pi: &PacketIn, key: u32) -> Option<PacketOut> {
        let eth = ethernet::Frame::new_checked(pi.data.as_slice()).ok()?;
        let repr = EthernetRepr::parse(&eth).ok()?;
        let reply = refusal(repr.ethertype, eth.payload())?;
        let frame = EthernetRepr {
            src_addr: repr.dst_addr,
            dst_addr: repr.src_addr,
            vlan: None,
            ethertype: repr.ethertype,
        }
        .build(&reply);
        let actions = match pi.table_id {
            // From a port of this host (a VM's way out, or into a router: routing happens
            // on the sender's host): straight back.
            table::EGRESS_FW_RULES | table::ROUTER_FW_IN_RULES => {
                deliver::back(host, pi.reg(6), pi.in_port()?)
            }
            // To a VM: as if it answered, past its security groups and firewall.
            table::INGRESS_FW_RULES => vec![
                Action::load(reg::SRC_PORT, 0, 32, u64::from(key)),
                Action::set_field(Field::Metadata, pi.metadata()),
                Action::resubmit_table(table::SERVICES),
            ],
            // Out of a router, arrived at its destination's host: routed back from the
            // network it was going to, by the router's L3 (past the interface's own
            // ingress policy, which would see an answer to what it never saw).
            table::ROUTER_FW_OUT_RULES => vec![
                Action::load(reg::ROUTER, 0, 32, u64::from(key)),
                Action::set_field(Field::Metadata, pi.metadata()),
                Action::resubmit_table(table::L3),
            ],
            _ => return None,
        };
        Some(PacketOut {
            buffer_id: NO_BUFFER,
            in_port: port::CONTROLLER,
            actions,
            data: frame,
        })
    }
}

impl Handler for Reject {
    fn packet_in(
        &mut self,
        _view: &View,
        host: &mut Host,
        now: Instant,
        pi: &PacketIn,
        key: u32,
    ) -> Punted {
        let Some(out) = self.answer(host, pi, key) else {
            self.ignored += 1;
            return Punted::default();
        };
        if !self.limit.allow(key, now) {
            self.limited += 1;
            return Punted::default();
        }
        self.answered += 1;
        Punted {
            packets: vec![out],
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

#[cfg(test)]
mod tests {
    use super::*;
    use packet::tcp::{Flags, TcpRepr};
    use std::net::{IpAddr, Ipv4Addr};

    fn syn(flags: u8) -> Vec<u8> {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 6));
        let seg = TcpRepr {
            src_port: 40000,
            dst_port: 23,
            seq_number: 7,
            ack_number: 0,
            flags: Flags(flags),
            window_len: 100,
            urgent_at: 0,
            payload: &[],
        }
        .build(&IpAddr::V4(a), &IpAddr::V4(b));
        ipv4::Ipv4Repr::new(a, b, IpProtocol::Tcp, seg.len()).build(&seg)
    }

    #[test]
    fn a_syn_gets_a_rst_from_where_it_went_and_a_rst_gets_nothing() {
        let out = refusal(EtherType::Ipv4, &syn(Flags::SYN)).expect("a RST");
        let ip = ipv4::Packet::new_checked(&out[..]).unwrap();
        assert_eq!(ip.src_addr(), Ipv4Addr::new(10, 0, 0, 6));
        assert_eq!(ip.protocol(), IpProtocol::Tcp);
        assert_eq!(refusal(EtherType::Ipv4, &syn(Flags::RST)), None);
        // An IPv4 packet in an IPv6 frame is no IPv6 packet.
        assert_eq!(refusal(EtherType::Ipv6, &syn(Flags::SYN)), None);
    }

    /// Found by the fuzz target `fwaas_refusal`: an IPv6 packet in an IPv4 frame was
    /// answered with an IPv6 RST (the RST builder goes by the version nibble).
    #[test]
    fn the_ip_version_must_be_the_frames() {
        let data = [
            0x66, 0x88, 0x00, 0x21, 0x00, 0x23, 0x06, 0x66, 0x01, 0x06, 0x88, 0x00, 0x21, 0x00,
            0x23, 0x06, 0x66, 0x01, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28, 0xe5, 0xe5, 0x3a,
            0x35, 0x00, 0x88, 0x01, 0x80, 0xac, 0x29, 0x08, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x28, 0x01, 0x30, 0x88, 0x80, 0x29, 0x00, 0xd4,
            0x00, 0x29, 0xff, 0xff, 0xff, 0xff, 0x4c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x2d, 0x2d, 0xff, 0x00, 0x00, 0x10, 0x00, 0x00, 0x29, 0x8e,
        ];
        assert_eq!(refusal(EtherType::Ipv4, &data), None);
    }
}
