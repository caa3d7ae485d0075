//! What a router interface advertises on a network, read from the view, as Neutron's
//! radvd configuration says it: M/O flags by `ipv6_ra_mode`, one prefix per subnet
//! (autonomous for slaac and dhcpv6-stateless), the network's MTU, the subnets' IPv6
//! `dns_nameservers` as RDNSS, and a router lifetime of 0 when the router has no way out
//! (no gateway and no IPv6 default route), so hosts do not pick it as default router.

use crate::apps::here::routers_on;
use crate::view::View;
use ipnet::IpNet;
use model::{Network, Router, Subnet};
use packet::EthernetAddress;
use packet::icmpv6::PrefixInfo;
use packet::ra::{MAX_RDNSS, Rdnss, RouterAdvert};
use std::net::IpAddr;

/// Neutron's `min_rtr_adv_interval` and `max_rtr_adv_interval` (seconds).
pub const MIN_INTERVAL: u64 = 30;
pub const MAX_INTERVAL: u64 = 100;
/// radvd's defaults from those: AdvDefaultLifetime 3 × max, and AdvRDNSSLifetime as
/// radvd 2.19 really sends it, the max interval (its manual says twice that; the wire, and
/// the reference test in ipv6_e2e.rs, say otherwise), and its prefix lifetimes.
const ROUTER_LIFETIME: u16 = 3 * MAX_INTERVAL as u16;
const RDNSS_LIFETIME: u32 = MAX_INTERVAL as u32;
const VALID_LIFETIME: u32 = 86_400;
const PREFERRED_LIFETIME: u32 = 14_400;
/// Hop limit hosts are told to use (radvd's AdvCurHopLimit).
const CUR_HOP_LIMIT: u8 = 64;
/// IPv6's minimum link MTU: below it the MTU option is left out, as Neutron does.
const MIN_MTU: u32 = 1280;

pub const SLAAC: &str = "slaac";
pub const STATELESS: &str = "dhcpv6-stateless";
pub const STATEFUL: &str = "dhcpv6-stateful";

/// The subnet's RA mode, for IPv6 subnets that have one.
pub fn ra_mode(s: &Subnet) -> Option<&str> {
    (s.ip_version == 6)
        .then_some(s.ipv6_ra_mode.as_deref())
        .flatten()
}

/// Whether a subnet of the network has routers advertise (its ports' solicitations are
/// then the controller's to answer). Only subnets the network lists count, as for DHCP.
pub fn network_advertises(view: &View, network_id: &str) -> bool {
    view.networks.get(network_id).is_some_and(|n| {
        n.subnets
            .iter()
            .any(|s| view.subnets.get(s).and_then(ra_mode).is_some())
    })
}

/// Whether the router has a way out: a gateway, or an IPv6 default route.
fn default_router(r: &Router) -> bool {
    r.external_gateway.is_some()
        || r.routes
            .iter()
            .any(|h| matches!(h.destination, IpNet::V6(n) if n.prefix_len() == 0))
}

/// The advertisements sent on network `net`: one per router interface (by MAC) with at
/// least one subnet in an RA mode, with every such subnet of that interface.
pub fn adverts(view: &View, net: &Network) -> Vec<(EthernetAddress, RouterAdvert)> {
    let mut out: Vec<(EthernetAddress, RouterAdvert)> = Vec::new();
    for r in routers_on(view, &net.meta.id).filter(|r| r.admin_state_up) {
        for i in r.interfaces.iter().filter(|i| i.network_id == net.meta.id) {
            let Some((s, mode)) = view
                .subnets
                .get(&i.subnet_id)
                .and_then(|s| Some((s, ra_mode(s)?)))
            else {
                continue;
            };
            let IpNet::V6(cidr) = s.cidr else { continue };
            let mac = EthernetAddress(i.mac_address.0);
            let at = match out.iter().position(|(m, _)| *m == mac) {
                Some(at) => at,
                None => {
                    out.push((mac, base(net, r, mac)));
                    out.len() - 1
                }
            };
            let ra = &mut out[at].1;
            ra.managed |= mode == STATEFUL;
            ra.other |= mode == STATEFUL || mode == STATELESS;
            ra.prefixes.push(PrefixInfo {
                prefix_len: cidr.prefix_len(),
                on_link: true,
                autonomous: mode == SLAAC || mode == STATELESS,
                valid_lifetime: VALID_LIFETIME,
                preferred_lifetime: PREFERRED_LIFETIME,
                prefix: cidr.network(),
            });
            let dns = &mut ra.rdnss.get_or_insert_with(|| Rdnss {
                lifetime: RDNSS_LIFETIME,
                servers: Vec::new(),
            });
            for d in &s.dns_nameservers {
                if let IpAddr::V6(d) = d
                    && !dns.servers.contains(d)
                    && dns.servers.len() < MAX_RDNSS
                {
                    dns.servers.push(*d);
                }
            }
        }
    }
    for (_, ra) in &mut out {
        if ra.rdnss.as_ref().is_some_and(|d| d.servers.is_empty()) {
            ra.rdnss = None;
        }
    }
    out
}

fn base(net: &Network, r: &Router, mac: EthernetAddress) -> RouterAdvert {
    RouterAdvert {
        cur_hop_limit: CUR_HOP_LIMIT,
        router_lifetime: if default_router(r) {
            ROUTER_LIFETIME
        } else {
            0
        },
        source_lladdr: Some(mac),
        mtu: (net.mtu >= MIN_MTU).then_some(net.mtu),
        ..RouterAdvert::default()
    }
}
