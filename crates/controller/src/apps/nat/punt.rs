//! The controller's side of north-south NAT: it resolves the MAC of each external next hop
//! (ARP requests from this host's own external address, replies learnt from the packet-ins
//! of the external network), and announces by gratuitous ARP every floating IP (and SNAT
//! address) that starts living on this host, so the physical network's switches learn at
//! once where its MAC now is (a floating IP moved between hosts keeps its MAC).

use crate::apps::deliver::to_physical;
use crate::apps::here::{is_local, routes_for, serves};
use crate::apps::{Handler, Host, Punted, nat};

use crate::apps::nat::ipv6;
use crate::view::View;
use model::Network;
use openflow::action::port;
use openflow::flow::NO_BUFFER;
use openflow::oxm::Field;
use openflow::packet::{PacketIn, PacketOut, PipelineFields};
use packet::EthernetAddress;
use packet::arp::{self, ArpRepr, Operation};
use packet::ethernet::{EtherType, EthernetRepr, Frame};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// An unresolved next hop is asked again after this long.
const RETRY: Duration = Duration::from_secs(1);
/// When an address is announced, from the moment it lives here: three times, since the
/// host it left may still send a frame or two from its MAC (a reply in flight) after the
/// first announcement, teaching the physical switches the old place again.
const ANNOUNCE_AT: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(250),
    Duration::from_millis(1000),
];

/// What the host asked and announced; the next hops it learns go into [`Host::neighbours`].
#[derive(Debug, Default)]
pub struct NatPunt {
    asked: BTreeMap<(String, IpAddr), Instant>,
    /// (address, MAC, the port it serves) living here: since when, announcements sent.
    announced: BTreeMap<(Ipv4Addr, [u8; 6], String), (Instant, usize)>,
    /// ARP packet-ins that taught nothing (not a reply from a next hop, malformed).
    pub ignored: u64,
}

/// An ARP frame of `net`, from `src_mac`, as it leaves by the patch port.
fn arp_out(host: &Host, net: &Network, dst: [u8; 6], a: &ArpRepr) -> Option<PacketOut> {
    let actions = to_physical(host, net)?;
    let eth = EthernetRepr {
        src_addr: a.source_hardware_addr,
        dst_addr: EthernetAddress(dst),
        vlan: None,
        ethertype: EtherType::Arp,
    };
    let mut payload = [0u8; 28];
    a.emit(&mut arp::Packet::new_unchecked(&mut payload[..]));
    Some(PacketOut {
        buffer_id: NO_BUFFER,
        in_port: port::CONTROLLER,
        actions,
        data: eth.build(&payload),
    })
}

fn v4(ip: &IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(*a),
        IpAddr::V6(_) => None,
    }
}

/// This host's own address and MAC on external network `net`: its SNAT port, else a
/// floating IP of a local VM there.
fn own_address(view: &View, host: &Host, net: &str) -> Option<(Ipv4Addr, [u8; 6])> {
    if let Some(p) = nat::snat_port(view, net)
        && let Some(ip) = p.fixed_ips.iter().find_map(|f| v4(&f.ip_address))
    {
        return Some((ip, p.mac_address.0));
    }
    view.floating_ips
        .values()
        .filter(|f| f.floating_network_id == net)
        .filter(|f| {
            f.port_id
                .as_ref()
                .and_then(|p| view.ports.get(p))
                .is_some_and(|p| is_local(view, host, p))
        })
        .find_map(|f| {
            Some((
                v4(&f.floating_ip_address)?,
                view.ports.get(&f.floating_port_id)?.mac_address.0,
            ))
        })
}

impl NatPunt {
    /// An ARP frame from an external network: a reply from a next hop teaches its MAC.
    fn learn(&mut self, view: &View, host: &mut Host, pi: &PacketIn) -> Punted {
        if let Some(p) = ipv6::answer(view, host, pi) {
            return Punted {
                packets: vec![p],
                ..Punted::default()
            };
        }
        let learnt = (|| {
            let key = pi.field(Field::Metadata)? as u32;
            let net = view.networks.values().find(|n| n.unique_key == key)?;
            let frame = Frame::new_checked(&pi.data[..]).ok()?;
            if frame.ethertype() == EtherType::Ipv6 {
                return ipv6::learn(view, net, &pi.data);
            }
            if frame.ethertype() != EtherType::Arp {
                return None;
            }
            let a = ArpRepr::parse(&arp::Packet::new_checked(frame.payload()).ok()?).ok()?;
            if a.operation != Operation::Reply || !a.source_hardware_addr.is_unicast() {
                return None;
            }
            let sender = IpAddr::V4(a.source_protocol_addr);
            // Only the next hops of routers: nobody fills this map with other addresses.
            let wanted = view.routers.values().any(|r| {
                nat::nexthop(view, r)
                    .is_some_and(|(n, ip)| n.meta.id == net.meta.id && IpAddr::V4(ip) == sender)
            });
            wanted.then(|| ((net.meta.id.clone(), sender), a.source_hardware_addr.0))
        })();
        match learnt {
            Some((k, mac)) => {
                if host.neighbours.insert(k.clone(), mac) != Some(mac) {
                    tracing::info!(network = %k.0, ip = %k.1, mac = ?mac, "next hop learnt");
                    return Punted {
                        recompile: nat::north_south(view),
                        ..Punted::default()
                    };
                }
            }
            None => self.ignored += 1,
        }
        Punted::default()
    }

    /// What the host sends on its own now: ARP requests for unresolved next hops (once a
    /// second each) and gratuitous ARP for addresses that became this host's.
    fn send(&mut self, view: &View, host: &Host, now: Instant) -> Vec<PacketOut> {
        let mut out = Vec::new();
        let mut hops = BTreeSet::new();
        for r in view.routers.values() {
            if !r.admin_state_up || !routes_for(view, r) {
                continue;
            }
            if let Some((net, ip)) = nat::nexthop(view, r) {
                hops.insert((net.meta.id.clone(), ip));
            }
        }
        for (net_id, ip) in &hops {
            if host
                .neighbours
                .contains_key(&(net_id.clone(), IpAddr::V4(*ip)))
            {
                continue;
            }
            let k = (net_id.clone(), IpAddr::V4(*ip));
            if self
                .asked
                .get(&k)
                .is_some_and(|t| now.duration_since(*t) < RETRY)
            {
                continue;
            }
            let (Some(net), Some((src, mac))) =
                (view.networks.get(net_id), own_address(view, host, net_id))
            else {
                continue;
            };
            let req = ArpRepr {
                operation: Operation::Request,
                source_hardware_addr: EthernetAddress(mac),
                source_protocol_addr: src,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: *ip,
            };
            if let Some(p) = arp_out(host, net, [0xff; 6], &req) {
                out.push(p);
                self.asked.insert(k, now);
            }
        }
        let mut hops6 = BTreeSet::new();
        for (net, src, mac, ip) in ipv6::unresolved(view, host) {
            let k = (net.meta.id.clone(), IpAddr::V6(ip));
            hops6.insert(k.clone());
            if self
                .asked
                .get(&k)
                .is_some_and(|t| now.duration_since(*t) < RETRY)
            {
                continue;
            }
            if let Some(p) = ipv6::solicit(host, net, src, mac, ip) {
                out.push(p);
                self.asked.insert(k, now);
            }
        }
        self.asked.retain(|(n, ip), _| match ip {
            IpAddr::V4(a) => hops.contains(&(n.clone(), *a)),
            IpAddr::V6(_) => hops6.contains(&(n.clone(), *ip)),
        });

        // Gratuitous ARP for what lives here now.
        let mut here = BTreeSet::new();
        let mut nets = BTreeMap::new();
        for f in view.floating_ips.values() {
            if let Some(l) = nat::local_fip(view, host, f) {
                here.insert((l.fip, l.mac, l.vm.meta.id.clone()));
                nets.insert(l.fip, l.gateway.net.meta.id.clone());
            } else if let Some(h) = nat::forwarding::held(view, host, f)
                && let Some(first) = f.port_forwardings.first()
            {
                // Held for its port forwardings: it moves with the first one's port.
                here.insert((h.fip, h.mac, first.internal_port_id.clone()));
                nets.insert(h.fip, h.gateway.net.meta.id.clone());
            } else if let Some((fip, mac, net)) = crate::apps::lb::fip::held_here(view, host, f)
                && let Some(vip_port) = &f.port_id
            {
                // A balancer's VIP: it moves with the balancer's holder.
                here.insert((fip, mac, vip_port.clone()));
                nets.insert(fip, net.meta.id.clone());
            }
        }
        for net_id in hops.iter().map(|(n, _)| n) {
            if let Some(p) = nat::snat_port(view, net_id)
                && let Some(ip) = p.fixed_ips.iter().find_map(|f| v4(&f.ip_address))
                && view
                    .networks
                    .get(net_id)
                    .is_some_and(|n| serves(view, host, n))
            {
                here.insert((ip, p.mac_address.0, p.meta.id.clone()));
                nets.insert(ip, net_id.clone());
            }
        }
        self.announced.retain(|k, _| here.contains(k));
        for k in &here {
            let (since, sent) = self.announced.entry(k.clone()).or_insert((now, 0));
            if ANNOUNCE_AT
                .get(*sent)
                .is_none_or(|at| now.duration_since(*since) < *at)
            {
                continue;
            }
            *sent += 1;
            let (ip, mac, _) = k;
            let Some(net) = nets.get(ip).and_then(|n| view.networks.get(n)) else {
                continue;
            };
            let garp = ArpRepr {
                operation: Operation::Request,
                source_hardware_addr: EthernetAddress(*mac),
                source_protocol_addr: *ip,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: *ip,
            };
            if let Some(p) = arp_out(host, net, [0xff; 6], &garp) {
                tracing::info!(ip = %ip, "announcing");
                out.push(p);
            }
        }
        out
    }
}

impl Handler for NatPunt {
    fn packet_in(
        &mut self,
        view: &View,
        host: &mut Host,
        _now: Instant,
        pi: &PacketIn,
        _key: u32,
    ) -> Punted {
        self.learn(view, host, pi)
    }

    fn tick(&mut self, view: &View, host: &mut Host, now: Instant) -> Punted {
        Punted {
            packets: self.send(view, host, now),
            ..Punted::default()
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("ignored", self.ignored)]
    }
}
