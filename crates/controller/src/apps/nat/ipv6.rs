//! IPv6 north-south: routed, never NATed, as in Neutron. A router whose gateway holds an
//! IPv6 address on an external subnet sends its tenants' IPv6 traffic for the outside to
//! that subnet's `gateway_ip`, and takes in what the outside routes to its tenant prefixes
//! through its gateway address (the outside needs that route: Neutron leaves it to the
//! operator or to BGP).
//!
//! Distributed like the rest: every host that routes for the router does it for its own
//! VMs. On the wire each host uses its own MAC on the external network (that of its
//! host port there, the [`CHASSIS_SNAT`](super::CHASSIS_SNAT) port, asked for as soon as a
//! routed router has an IPv6 gateway), never the router's gateway MAC: one MAC sent from
//! several hosts would make the physical switches flap and, once aged out, flood return
//! traffic to every host (each delivering a copy). Each such host answers a solicitation
//! for the router's gateway address with its own MAC, as for an anycast address (RFC 4861
//! 7.2.7: override flag clear), so the outside keeps the first answer and sends all
//! inbound traffic for the router's prefixes to that host, which routes it to the VM's
//! host over the tunnel like any routed packet.
//!
//! Tables: INGRESS_NAT (NS for the gateway address answered by flows; NS without a source
//! link-layer option and NAs to the controller; arrivals for the router's prefixes to L3),
//! L3_ROUTES (the default route and extra routes to next hops on the external subnet:
//! straight to EGRESS, no conntrack).

use super::snat_port;
use crate::apps::deliver::{patch_port, to_physical};
use crate::apps::here::routes_for;
use crate::apps::{Flow, Host, flow};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::View;
use ipnet::IpNet;
use model::{Network, Router};
use openflow::Instruction;
use openflow::action::{Action, OFPCML_NO_BUFFER, port};
use openflow::flow::NO_BUFFER;
use openflow::oxm::{Field, Match, OxmField, mac_u128};
use openflow::packet::{PacketIn, PacketOut, PipelineFields};
use packet::icmpv6::{self, Icmpv6Repr};
use packet::ipv6::Ipv6Repr;
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv6Addr};

const ETH_IPV6: u16 = 0x86dd;
const PROTO_ICMPV6: u8 = 58;
const NS: u8 = 135;
const NA: u8 = 136;
/// NA flags (first reserved word): Router and Solicited; never Override (anycast).
const NA_FLAGS: u32 = 0x8000_0000 | 0x4000_0000;
const OPT_TARGET_LLADDR: u8 = 2;

/// In INGRESS_NAT, beside ARP's 200: a DAD probe for the gateway address is left alone, one
/// without a source link-layer option goes to the controller, the rest is answered here.
const PRIO_NS_DAD: u16 = 203;
const PRIO_NS_NO_SLL: u16 = 202;
const PRIO_NS: u16 = 201;
/// Advertisements from the external network are copied to the controller (next hops).
const PRIO_NA: u16 = 200;
/// Arrivals for a router's prefix: longest prefix first, above the network's default.
const PRIO_IN: u16 = 100;
/// The default route, as IPv4's: just below a /0 extra route (1000).
const PRIO_DEFAULT_ROUTE: u16 = 999;
/// Extra routes, as the L3 app's: `PRIO_PREFIX + 2 * length`.
const PRIO_PREFIX: u16 = 1000;

fn v6(ip: &IpAddr) -> Option<Ipv6Addr> {
    match ip {
        IpAddr::V6(a) => Some(*a),
        IpAddr::V4(_) => None,
    }
}

/// A router's IPv6 gateway: its external network, its address on an IPv6 external
/// subnet, and that subnet (whose `gateway_ip` is the next hop, and whose prefix holds the
/// next hops of extra routes to the outside).
pub struct Uplink<'a> {
    pub net: &'a Network,
    pub addr: Ipv6Addr,
    pub cidr: IpNet,
    pub nexthop: Option<Ipv6Addr>,
}

/// The router's IPv6 gateway address and subnet, if it has one.
pub fn uplink<'a>(view: &'a View, r: &Router) -> Option<Uplink<'a>> {
    let gw = r.external_gateway.as_ref()?;
    let net = view.networks.get(&gw.network_id)?;
    gw.external_fixed_ips.iter().find_map(|f| {
        let addr = v6(&f.ip_address)?;
        let s = view.subnets.get(&f.subnet_id)?;
        Some(Uplink {
            net,
            addr,
            cidr: s.cidr,
            nexthop: s.gateway_ip.as_ref().and_then(v6),
        })
    })
}

/// The addresses on the external subnet the router sends to: the subnet's gateway (its
/// default route) and the next hops of its IPv6 extra routes there.
pub fn nexthops(up: &Uplink<'_>, r: &Router) -> Vec<Ipv6Addr> {
    let mut out: Vec<Ipv6Addr> = up.nexthop.into_iter().collect();
    out.extend(
        r.routes
            .iter()
            .filter(|rt| up.cidr.contains(&rt.nexthop))
            .filter_map(|rt| v6(&rt.nexthop)),
    );
    out.sort_unstable();
    out.dedup();
    out
}

/// The router's IPv6 way out from this host: it routes here, the external network is
/// mapped here, and this host has its own port (MAC) there.
pub fn here<'a>(view: &'a View, host: &Host, r: &Router) -> Option<(Uplink<'a>, [u8; 6])> {
    if !r.admin_state_up || !routes_for(view, r) {
        return None;
    }
    let up = uplink(view, r)?;
    patch_port(host, up.net)?;
    let mac = snat_port(view, &up.net.meta.id)?.mac_address.0;
    Some((up, mac))
}

fn ns(meta: u64, target: Ipv6Addr) -> Match {
    Match::new()
        .metadata(meta)
        .eth_type(ETH_IPV6)
        .ip_proto(PROTO_ICMPV6)
        .icmpv6_type(NS)
        .nd_target(target)
}

/// Out of the router onto the external network, to the next hop at `nh_mac`.
fn leave(net: &Network, mac: [u8; 6], nh_mac: [u8; 6]) -> Vec<Instruction> {
    vec![
        Instruction::ApplyActions(vec![
            Action::DecNwTtl,
            Action::set_field(Field::EthSrc, mac_u128(mac)),
            Action::set_field(Field::EthDst, mac_u128(nh_mac)),
            Action::load(reg::DST_PORT, 0, 32, 0),
        ]),
        Instruction::WriteMetadata {
            metadata: u64::from(net.unique_key),
            mask: u64::MAX,
        },
        Instruction::GotoTable(table::EGRESS),
    ]
}

/// The router's IPv6 north-south flows on this host.
pub fn router(view: &View, host: &Host, r: &Router) -> Vec<Flow> {
    let Some((up, mac)) = here(view, host, r) else {
        return Vec::new();
    };
    let key = r.unique_key;
    let meta = u64::from(up.net.unique_key);
    let on_router = || Match::new().masked(reg::ROUTER, key, u32::MAX);
    let mut out = Vec::new();

    // Neighbour solicitations for the gateway address, from the outside.
    out.push(flow(
        table::INGRESS_NAT,
        PRIO_NS_DAD,
        ns(meta, up.addr).ipv6_src(Ipv6Addr::UNSPECIFIED),
        AppId::Nat,
        key,
        [Instruction::GotoTable(table::FROM_TUNNEL)],
    ));
    out.push(flow(
        table::INGRESS_NAT,
        PRIO_NS_NO_SLL,
        ns(meta, up.addr).with(OxmField::new(Field::NdSll, 0u64)),
        AppId::Nat,
        key,
        [Instruction::ApplyActions(vec![Action::controller(
            OFPCML_NO_BUFFER,
        )])],
    ));
    if let Some(physical) = to_physical(host, up.net) {
        let mut answer = vec![
            Action::move_field(Field::EthSrc, Field::EthDst, 48),
            Action::set_field(Field::EthSrc, mac_u128(mac)),
            Action::move_field(Field::Ipv6Src, Field::Ipv6Dst, 128),
            Action::set_field(Field::Ipv6Src, u128::from(up.addr)),
            Action::set_field(Field::NdReserved, NA_FLAGS),
            Action::set_field(Field::NdOptionsType, OPT_TARGET_LLADDR),
            Action::set_field(Field::Icmpv6Type, NA),
        ];
        // The tag back on (VLAN); INGRESS_SNAT writes the option's address (OVS takes
        // `nd_tll` only on what already is an advertisement) and sends it back out of the
        // port it came in by.
        answer.extend(
            physical
                .into_iter()
                .filter(|a| !matches!(a, Action::Output { .. })),
        );
        out.push(flow(
            table::INGRESS_NAT,
            PRIO_NS,
            ns(meta, up.addr),
            AppId::Nat,
            key,
            [
                Instruction::ApplyActions(answer),
                Instruction::GotoTable(table::INGRESS_SNAT),
            ],
        ));
    }

    // In: what the outside sends to this host's MAC for the router's prefixes (its IPv6
    // subnets and the destinations of its extra routes inside) is routed by it.
    let mut inside: Vec<IpNet> = r
        .interfaces
        .iter()
        .map(|i| i.cidr)
        .filter(|c| matches!(c, IpNet::V6(_)))
        .collect();
    inside.extend(
        r.routes
            .iter()
            .filter(|rt| matches!(rt.destination, IpNet::V6(_)) && !up.cidr.contains(&rt.nexthop))
            .map(|rt| rt.destination),
    );
    for c in inside {
        let IpNet::V6(n) = c else { continue };
        out.push(flow(
            table::INGRESS_NAT,
            PRIO_IN + u16::from(n.prefix_len()),
            Match::new()
                .metadata(meta)
                .eth_dst(mac)
                .eth_type(ETH_IPV6)
                .ipv6_dst_prefix(n.network(), n.prefix_len()),
            AppId::Nat,
            key,
            vec![
                Instruction::ApplyActions(vec![Action::load(reg::ROUTER, 0, 32, u64::from(key))]),
                Instruction::GotoTable(table::L3),
            ],
        ));
    }

    // Out: the default route to the subnet's gateway, extra routes to their next hops on
    // the external subnet; each once its MAC is known.
    let nh_mac = |ip: Ipv6Addr| {
        host.neighbours
            .get(&(up.net.meta.id.clone(), IpAddr::V6(ip)))
            .copied()
    };
    if let Some(m) = up.nexthop.and_then(nh_mac) {
        out.push(flow(
            table::L3_ROUTES,
            PRIO_DEFAULT_ROUTE,
            on_router().eth_type(ETH_IPV6),
            AppId::Nat,
            key,
            leave(up.net, mac, m),
        ));
    }
    for rt in &r.routes {
        let (IpNet::V6(d), Some(nh)) = (rt.destination, v6(&rt.nexthop)) else {
            continue;
        };
        if !up.cidr.contains(&rt.nexthop) {
            continue;
        }
        let Some(m) = nh_mac(nh) else { continue };
        out.push(flow(
            table::L3_ROUTES,
            PRIO_PREFIX + 2 * u16::from(d.prefix_len()),
            on_router()
                .eth_type(ETH_IPV6)
                .ipv6_dst_prefix(d.network(), d.prefix_len()),
            AppId::Nat,
            key,
            leave(up.net, mac, m),
        ));
    }
    out
}

/// On an external network this host serves: advertisements from the outside are copied to
/// the controller (it learns its IPv6 next hops from them) and go on as usual; those made
/// in INGRESS_NAT get their target link-layer address and go back out.
pub fn network(net: &Network) -> Vec<Flow> {
    let na = || {
        Match::new()
            .metadata(u64::from(net.unique_key))
            .eth_type(ETH_IPV6)
            .ip_proto(PROTO_ICMPV6)
            .icmpv6_type(NA)
    };
    vec![
        flow(
            table::INGRESS_NAT,
            PRIO_NA,
            na(),
            AppId::Nat,
            net.unique_key,
            vec![
                Instruction::ApplyActions(vec![Action::controller(OFPCML_NO_BUFFER)]),
                Instruction::GotoTable(table::FROM_TUNNEL),
            ],
        ),
        flow(
            table::INGRESS_SNAT,
            PRIO_NA,
            na(),
            AppId::Nat,
            net.unique_key,
            [Instruction::ApplyActions(vec![
                Action::move_field(Field::EthSrc, Field::NdTll, 48),
                Action::output(openflow::action::port::IN_PORT),
            ])],
        ),
    ]
}

/// The controller's part, for [`super::punt::NatPunt`]: the next hop MACs it learns and
/// the solicitations it sends and answers.
///
/// The MAC an advertisement from external network `net` teaches: only for an address that
/// is some router's IPv6 next hop there, so nobody fills the map with other addresses.
pub fn learn(view: &View, net: &Network, frame: &[u8]) -> Option<((String, IpAddr), [u8; 6])> {
    let f = icmpv6::parse_frame(frame).ok()?;
    let Icmpv6Repr::NeighborAdvert {
        target_addr,
        lladdr,
        ..
    } = f.icmpv6
    else {
        return None;
    };
    let mac = lladdr.unwrap_or(f.ethernet.src_addr);
    if !mac.is_unicast() {
        return None;
    }
    let wanted = view.routers.values().any(|r| {
        uplink(view, r)
            .is_some_and(|u| u.net.meta.id == net.meta.id && nexthops(&u, r).contains(&target_addr))
    });
    wanted.then(|| ((net.meta.id.clone(), IpAddr::V6(target_addr)), mac.0))
}

/// A solicitation without a source link-layer option (a reachability probe, unicast to
/// this host's MAC) for a router's gateway address: the flows cannot write the answer's
/// option, so the controller answers.
pub fn answer(view: &View, host: &Host, pi: &PacketIn) -> Option<PacketOut> {
    let key = pi.field(Field::Metadata)? as u32;
    let net = view.networks.values().find(|n| n.unique_key == key)?;
    let f = icmpv6::parse_frame(&pi.data).ok()?;
    let Icmpv6Repr::NeighborSolicit { target_addr, .. } = f.icmpv6 else {
        return None;
    };
    let mac = view.routers.values().find_map(|r| {
        let (up, mac) = here(view, host, r)?;
        (up.net.meta.id == net.meta.id && up.addr == target_addr).then_some(mac)
    })?;
    let data = icmpv6::neighbor_advert_reply(&pi.data, EthernetAddress(mac), true).ok()?;
    Some(PacketOut {
        buffer_id: NO_BUFFER,
        in_port: port::CONTROLLER,
        actions: to_physical(host, net)?,
        data,
    })
}

/// The next hops this host sends to and does not know the MAC of: (external network,
/// router's gateway address, this host's MAC there, next hop).
pub fn unresolved<'a>(
    view: &'a View,
    host: &Host,
) -> Vec<(&'a Network, Ipv6Addr, [u8; 6], Ipv6Addr)> {
    let mut out: Vec<(&Network, Ipv6Addr, [u8; 6], Ipv6Addr)> = Vec::new();
    for r in view.routers.values() {
        let Some((up, mac)) = here(view, host, r) else {
            continue;
        };
        for nh in nexthops(&up, r) {
            let known = host
                .neighbours
                .contains_key(&(up.net.meta.id.clone(), IpAddr::V6(nh)));
            if !known
                && !out
                    .iter()
                    .any(|(n, _, _, h)| n.meta.id == up.net.meta.id && *h == nh)
            {
                out.push((up.net, up.addr, mac, nh));
            }
        }
    }
    out
}

/// The solicited-node multicast address of `ip` (RFC 4291 2.7.1).
fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// A solicitation for `target` from `src` at `mac`, out of the patch port of `net`.
pub fn solicit(
    host: &Host,
    net: &Network,
    src: Ipv6Addr,
    mac: [u8; 6],
    target: Ipv6Addr,
) -> Option<PacketOut> {
    let dst = solicited_node(target);
    let ns = Icmpv6Repr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(EthernetAddress(mac)),
    };
    let ip = Ipv6Repr::new(src, dst, IpProtocol::Icmpv6, 0, 255);
    Some(PacketOut {
        buffer_id: NO_BUFFER,
        in_port: port::CONTROLLER,
        actions: to_physical(host, net)?,
        data: icmpv6::build_frame(
            EthernetAddress(mac),
            EthernetAddress::ipv6_multicast(&dst),
            None,
            &ip,
            &ns,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solicited_node_address() {
        let ip: Ipv6Addr = "2001:db8::1:2345:6789".parse().unwrap();
        assert_eq!(
            solicited_node(ip),
            "ff02::1:ff45:6789".parse::<Ipv6Addr>().unwrap()
        );
    }
}
