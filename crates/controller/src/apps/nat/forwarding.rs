//! Floating IP port forwarding on the internal port's host: arrivals for the floating
//! IP's `external_port`/protocol are destination-NATed by conntrack to the internal
//! address and port (same zone and `ct_mark` as a floating IP, so the way back in and the
//! replies' un-NAT are the floating IP's), and what the internal address sends from that
//! port leaves from the floating IP and external port.
//!
//! One address is answered (ARP) from one host: the host of the floating IP's first
//! forwarding's port. Forwardings to ports on other hosts carry no traffic (docs/api.md).

use super::{ETH_IPV4, Gateway, NAT_ZONE, PRIO_FIP, arp, gateway, leave, v4};
use crate::apps::{Flow, Host, flow, is_local};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::View;
use model::{FloatingIp, PfProtocol, PortForwarding};
use openflow::Instruction;
use openflow::action::Action;
use openflow::nx::{Ct, CtZone, Nat, ct_flags, nat_flags};
use openflow::oxm::{Field, Match};
use std::net::{IpAddr, Ipv4Addr};

/// Above a floating IP's flows (a floating IP has forwardings or a port, never both).
const PRIO_PF: u16 = PRIO_FIP + 10;

/// The match on a forwarding's transport end: `protocol` and its `port` as destination
/// (`dst`) or source.
fn transport(m: Match, protocol: PfProtocol, port: u16, dst: bool) -> Match {
    let m = m.ip_proto(protocol.number());
    match (protocol, dst) {
        (PfProtocol::Tcp, true) => m.tcp_dst(port),
        (PfProtocol::Tcp, false) => m.tcp_src(port),
        (PfProtocol::Udp, true) => m.udp_dst(port),
        (PfProtocol::Udp, false) => m.udp_src(port),
    }
}

/// `ct(commit, zone=NAT, nat(<flags>=addr:port), ct_mark=router, table=recirc)`.
fn ct_nat_port(flags: u16, addr: Ipv4Addr, port: u16, router: u32, recirc: u8) -> Action {
    Action::Ct(Ct {
        flags: ct_flags::COMMIT,
        zone: CtZone::Imm(NAT_ZONE),
        recirc_table: recirc,
        alg: 0,
        actions: vec![
            Action::Nat(Nat {
                flags,
                addr_min: Some(IpAddr::V4(addr)),
                addr_max: Some(IpAddr::V4(addr)),
                port_min: Some(port),
                port_max: Some(port),
            }),
            Action::set_field(Field::CtMark, router),
        ],
    })
}

/// A floating IP whose forwardings this host serves.
pub struct Held<'a> {
    pub fip: Ipv4Addr,
    /// The floating IP port's MAC.
    pub mac: [u8; 6],
    pub gateway: Gateway<'a>,
    /// The forwardings whose port is here, with that port's key.
    pub local: Vec<(&'a PortForwarding, u32)>,
}

/// The forwardings of `f` served from this host: it holds the address (its first
/// forwarding's port is here), its router leaves from here onto the floating IP's
/// network, and each forwarding's port is plugged here.
pub fn held<'a>(view: &'a View, host: &Host, f: &'a FloatingIp) -> Option<Held<'a>> {
    let here = |port_id: &str| {
        view.ports
            .get(port_id)
            .filter(|p| is_local(view, host, p) && host.plugged(&p.meta.id))
    };
    here(&f.port_forwardings.first()?.internal_port_id)?;
    let r = view.routers.get(f.router_id.as_ref()?)?;
    let gateway = gateway(view, host, r)?;
    if gateway.net.meta.id != f.floating_network_id {
        return None;
    }
    let local = (f.port_forwardings.iter())
        .filter_map(|pf| Some((pf, here(&pf.internal_port_id)?.unique_key)))
        .collect();
    Some(Held {
        fip: v4(&f.floating_ip_address)?,
        mac: view.ports.get(&f.floating_port_id)?.mac_address.0,
        gateway,
        local,
    })
}

/// The flows of floating IP `f`'s forwardings on this host (none unless it holds them):
/// ARP for the address; per forwarding, DNAT of arrivals to the internal end and the
/// internal end's traffic SNATed back to the external one; the way out by the address.
pub fn flows(view: &View, host: &Host, f: &FloatingIp) -> Vec<Flow> {
    let Some(Held {
        fip,
        mac,
        gateway: g,
        local: pfs,
    }) = held(view, host, f)
    else {
        return Vec::new();
    };
    let rkey = g.router.unique_key;
    let Some((_, first_key)) = pfs.first() else {
        return Vec::new();
    };
    let meta = u64::from(g.net.unique_key);
    let on_router = || Match::new().masked(reg::ROUTER, rkey, u32::MAX);
    let mut out = arp(host, g.net, fip, mac, *first_key);
    for (pf, key) in &pfs {
        let Some(internal) = v4(&pf.internal_ip_address) else {
            continue;
        };
        let to_fip = Match::new().metadata(meta).eth_type(ETH_IPV4).ipv4_dst(fip);
        out.push(flow(
            table::INGRESS_NAT,
            PRIO_PF,
            transport(to_fip, pf.protocol, pf.external_port, true),
            AppId::Nat,
            *key,
            [Instruction::ApplyActions(vec![ct_nat_port(
                nat_flags::DST,
                internal,
                pf.internal_port,
                rkey,
                table::INGRESS_SNAT,
            )])],
        ));
        let from_vm = on_router().eth_type(ETH_IPV4).ipv4_src(internal);
        out.push(flow(
            table::EGRESS_NAT,
            PRIO_PF,
            transport(from_vm, pf.protocol, pf.internal_port, false),
            AppId::Nat,
            *key,
            [Instruction::ApplyActions(vec![ct_nat_port(
                nat_flags::SRC,
                fip,
                pf.external_port,
                rkey,
                table::EGRESS_SNAT,
            )])],
        ));
    }
    out.push(flow(
        table::EGRESS_SNAT,
        PRIO_PF,
        on_router().eth_type(ETH_IPV4).ipv4_src(fip),
        AppId::Nat,
        *first_key,
        leave(&g, mac),
    ));
    out
}
