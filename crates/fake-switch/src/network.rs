//! Several simulated switches joined by patch links and tunnels, to follow a frame from
//! one host to another (a VM on host A to a VM on host B over Geneve/VXLAN).
//!
//! A tunnel output (a port registered with [`Network::add_tunnel_port`]) is delivered to the
//! host whose underlay IP equals the packet's `tun_dst`, arriving on that host's tunnel port
//! of the same type (hosts number their ports independently: a VXLAN packet must not
//! arrive on the Geneve port), else the one with the same number, else its first, with
//! `tun_id` and `tun_src` set. Output
//! to a linked port arrives at the other end of the link. Any other output leaves the
//! network (it reached a VM port) and is reported in [`Delivery::delivered`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;

use crate::fields::Packet;
use crate::switch::{PacketIn, Switch};

/// One host: a switch and its underlay address.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// The host's switch.
    pub switch: Switch,
    /// Underlay IPv4 address (tunnel endpoint).
    pub ip: u32,
    /// Ports that are tunnel ports.
    pub tunnel_ports: BTreeSet<u32>,
    /// The type (`geneve`, `vxlan`, ...) of the tunnel ports registered with one.
    pub tunnel_kinds: BTreeMap<u32, String>,
}

/// Where a frame ended up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// (host, port, frame) of frames that left the network by a non-link, non-tunnel port.
    pub delivered: Vec<(String, u32, Vec<u8>)>,
    /// (host, packet-in) of packets sent to a controller.
    pub to_controller: Vec<(String, PacketIn)>,
    /// (host, port, tun_dst) of tunnel outputs to an address no host has.
    pub lost: Vec<(String, u32, u32)>,
    /// Readable account of every hop.
    pub log: Vec<String>,
    /// Every switch traversal in order: the host and what its switch did (the flows hit,
    /// in `Outcome::trace`), for a step-by-step account such as `dragonflow trace`.
    pub hops: Vec<(String, crate::switch::Outcome)>,
}

impl Delivery {
    /// (host, port) of delivered frames.
    pub fn endpoints(&self) -> Vec<(String, u32)> {
        self.delivered
            .iter()
            .map(|(h, p, _)| (h.clone(), *p))
            .collect()
    }
}

/// Switches joined by links and tunnels.
#[derive(Debug, Clone, Default)]
pub struct Network {
    hosts: BTreeMap<String, Host>,
    links: BTreeMap<(String, u32), (String, u32)>,
}

/// Hops (switch traversals) per sent frame.
pub const MAX_HOPS: usize = 64;

impl Network {
    /// An empty network.
    pub fn new() -> Network {
        Network::default()
    }

    /// Adds (or replaces) a host with an empty switch.
    pub fn add_host(&mut self, name: &str, ip: Ipv4Addr) {
        self.hosts.insert(
            name.to_string(),
            Host {
                ip: u32::from(ip),
                ..Host::default()
            },
        );
    }

    /// Marks `port` of `host` as a tunnel port.
    pub fn add_tunnel_port(&mut self, host: &str, port: u32) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.tunnel_ports.insert(port);
        }
    }

    /// Marks `port` of `host` as a tunnel port of type `kind`: packets it sends arrive on
    /// the peer's port of the same type.
    pub fn add_tunnel_port_of(&mut self, host: &str, port: u32, kind: &str) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.tunnel_ports.insert(port);
            h.tunnel_kinds.insert(port, kind.to_string());
        }
    }

    /// Joins two ports (both directions).
    pub fn link(&mut self, a: &str, pa: u32, b: &str, pb: u32) {
        self.links.insert((a.to_string(), pa), (b.to_string(), pb));
        self.links.insert((b.to_string(), pb), (a.to_string(), pa));
    }

    /// A host's switch.
    pub fn switch(&self, host: &str) -> Option<&Switch> {
        self.hosts.get(host).map(|h| &h.switch)
    }

    /// A host's switch, to install flows.
    pub fn switch_mut(&mut self, host: &str) -> Option<&mut Switch> {
        self.hosts.get_mut(host).map(|h| &mut h.switch)
    }

    /// Sends a frame into `host` on `port` and follows it through links and tunnels.
    pub fn send(&mut self, host: &str, port: u32, frame: &[u8]) -> Delivery {
        let mut d = Delivery::default();
        let mut queue = VecDeque::new();
        queue.push_back((host.to_string(), Packet::new(port, frame)));
        let mut hops = 0;
        while let Some((name, pkt)) = queue.pop_front() {
            hops += 1;
            if hops > MAX_HOPS {
                d.log.push("hop limit reached".into());
                break;
            }
            let Some(h) = self.hosts.get_mut(&name) else {
                d.log.push(format!("no host {name}"));
                continue;
            };
            d.log.push(format!(
                "{name}: in_port {} tun_id {:#x}",
                pkt.in_port, pkt.tun_id
            ));
            let out = h.switch.process_packet(pkt);
            d.hops.push((name.clone(), out.clone()));
            let my_ip = h.ip;
            let my_tunnels = h.tunnel_ports.clone();
            let my_kinds = h.tunnel_kinds.clone();
            d.log
                .extend(out.log.iter().map(|l| format!("{name}:   {l}")));
            for pi in out.to_controller {
                d.to_controller.push((name.clone(), pi));
            }
            for o in out.outputs {
                if my_tunnels.contains(&o.port) {
                    let dst = self
                        .hosts
                        .iter()
                        .find(|(_, h)| h.ip == o.tun_dst && o.tun_dst != 0);
                    match dst {
                        Some((peer, ph)) => {
                            let same_kind = my_kinds.get(&o.port).and_then(|k| {
                                ph.tunnel_kinds
                                    .iter()
                                    .find(|(_, pk)| *pk == k)
                                    .map(|(p, _)| *p)
                            });
                            let in_port = match same_kind {
                                Some(p) => p,
                                None if ph.tunnel_ports.contains(&o.port) => o.port,
                                None => ph.tunnel_ports.first().copied().unwrap_or(o.port),
                            };
                            let p = Packet {
                                tun_id: o.tun_id,
                                tun_src: if o.tun_src != 0 { o.tun_src } else { my_ip },
                                tun_dst: o.tun_dst,
                                ..Packet::new(in_port, o.frame)
                            };
                            d.log
                                .push(format!("{name}: tunnel to {peer} tun_id {:#x}", o.tun_id));
                            queue.push_back((peer.clone(), p));
                        }
                        None => d.lost.push((name.clone(), o.port, o.tun_dst)),
                    }
                } else if let Some((peer, pp)) = self.links.get(&(name.clone(), o.port)) {
                    queue.push_back((peer.clone(), Packet::new(*pp, o.frame)));
                } else {
                    d.delivered.push((name.clone(), o.port, o.frame));
                }
            }
        }
        d
    }
}
