//! North-south NAT on the VM's own host: a router with a gateway on an external (provider)
//! network sends what it cannot route inside to the outside, source-NATed by conntrack
//! either to the VM's floating IP or, for VMs without one, to this host's own SNAT address
//! on that network (a port the controller asks the API for, device owner
//! [`CHASSIS_SNAT`]); arrivals for a floating IP are destination-NATed to the VM and
//! routed to it. Every connection is committed in [`NAT_ZONE`] with the router's key in
//! `ct_mark`, so return traffic (and ICMP errors about it, which conntrack translates
//! inside and out) finds its router. ARP for a floating IP or SNAT address is answered on
//! the external network only by the host that holds it.
//!
//! Tables: L3_ROUTES (default route of a router with a gateway) → EGRESS_NAT (ct nat,
//! commit) → EGRESS_SNAT (after recirculation: external MACs, external network) → EGRESS →
//! PROVIDER; and from the patch port: INGRESS_NAT (ct nat; ARP) → INGRESS_SNAT (after
//! recirculation: the router by ct_mark) → L3. A floating IP's port forwardings use the
//! same tables (`forwarding`).

pub mod forwarding;
pub mod ipv6;
pub mod punt;

use super::deliver::{patch_port, to_physical};
use super::here::{routes_for, serves};
use super::{App, Cx, Flow, Handler, Host, Object, Owner, Settings, Sink, flow, is_local};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::{Touched, View};
use model::{FloatingIp, Network, Port, Router, Table};
use openflow::Instruction;
use openflow::action::{Action, OFPCML_NO_BUFFER, port};
use openflow::nx::{Ct, CtZone, Nat, ct_flags, nat_flags};
use openflow::oxm::{Field, Match};
use std::net::{IpAddr, Ipv4Addr};

/// The conntrack zone of north-south NAT on every host. Security groups allocate their
/// per-network zones from the bottom of the 16-bit space; this one sits at the top, apart.
pub const NAT_ZONE: u16 = 0xfff0;

/// The device owner of a host's SNAT address port on an external network (one per host
/// and external network, `device_id` = the chassis name).
pub use model::owner::CHASSIS_SNAT;

/// A floating IP's own flows, above the router's SNAT to the host address.
const PRIO_FIP: u16 = 100;
const PRIO_SNAT: u16 = 10;
/// The router's default route through its gateway: just below a /0 extra route (1000), so
/// a route the user gives wins, and below every attached subnet.
const PRIO_DEFAULT_ROUTE: u16 = 999;
const PRIO_ARP: u16 = 200;

const ETH_IPV4: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

/// `ct_state` bits.
const CT_TRK: u32 = 0x20;

fn mac_u128(mac: [u8; 6]) -> u128 {
    openflow::oxm::mac_u128(mac)
}

fn v4(ip: &IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(*a),
        IpAddr::V6(_) => None,
    }
}

/// What a router needs to reach the outside from this host.
pub struct Gateway<'a> {
    pub router: &'a Router,
    pub net: &'a Network,
    /// The next hop on the external network (its subnet's gateway) and its MAC.
    pub nexthop: Ipv4Addr,
    pub nexthop_mac: [u8; 6],
}

/// The next hop of a router's gateway: the gateway address of the external subnet its
/// gateway address is on.
pub fn nexthop<'a>(view: &'a View, r: &Router) -> Option<(&'a Network, Ipv4Addr)> {
    let gw = r.external_gateway.as_ref()?;
    let net = view.networks.get(&gw.network_id)?;
    gw.external_fixed_ips
        .iter()
        .filter_map(|f| view.subnets.get(&f.subnet_id))
        .find_map(|s| s.gateway_ip.as_ref().and_then(v4))
        .map(|ip| (net, ip))
}

/// The router's way out from this host: it routes here, its gateway network is a provider
/// network mapped here, and the next hop's MAC is known.
pub fn gateway<'a>(view: &'a View, host: &Host, r: &'a Router) -> Option<Gateway<'a>> {
    if !r.admin_state_up || !routes_for(view, r) {
        return None;
    }
    let (net, nh) = nexthop(view, r)?;
    patch_port(host, net)?;
    let mac = host
        .neighbours
        .get(&(net.meta.id.clone(), IpAddr::V4(nh)))?;
    Some(Gateway {
        router: r,
        net,
        nexthop: nh,
        nexthop_mac: *mac,
    })
}

/// This host's SNAT address port on external network `net`.
pub fn snat_port<'a>(view: &'a View, net: &str) -> Option<&'a Port> {
    view.ports_of(net)
        .filter(|p| p.device_owner == CHASSIS_SNAT && p.device_id == view.chassis)
        .min_by(|a, b| a.meta.id.cmp(&b.meta.id))
}

/// The external networks on which this host needs an SNAT address it does not have yet.
pub fn snat_ports_wanted(view: &View, host: &Host) -> Vec<String> {
    let mut out: Vec<String> = view
        .routers
        .values()
        .filter(|r| r.admin_state_up && routes_for(view, r))
        .filter_map(|r| {
            // IPv4 SNAT needs the address; IPv6 routing needs the port's MAC.
            let snat = r.external_gateway.as_ref().is_some_and(|g| g.enable_snat);
            snat.then(|| nexthop(view, r).map(|(n, _)| n))
                .flatten()
                .or_else(|| ipv6::uplink(view, r).map(|u| u.net))
        })
        .filter(|net| patch_port(host, net).is_some())
        .filter(|net| snat_port(view, &net.meta.id).is_none())
        .map(|net| net.meta.id.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn ct_nat(flags: u16, addr: Ipv4Addr, router: u32, recirc: u8) -> Action {
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
                ..Nat::default()
            }),
            Action::set_field(Field::CtMark, router),
        ],
    })
}

/// After source NAT: out of the router onto the external network, to the next hop.
pub fn leave(g: &Gateway<'_>, src_mac: [u8; 6]) -> Vec<Instruction> {
    vec![
        Instruction::ApplyActions(vec![
            Action::DecNwTtl,
            Action::set_field(Field::EthSrc, mac_u128(src_mac)),
            Action::set_field(Field::EthDst, mac_u128(g.nexthop_mac)),
            Action::load(reg::DST_PORT, 0, 32, 0),
        ]),
        Instruction::WriteMetadata {
            metadata: u64::from(g.net.unique_key),
            mask: u64::MAX,
        },
        Instruction::GotoTable(table::EGRESS),
    ]
}

/// On the external network from the patch port: a request for `ip` is answered with
/// `mac` back out the patch port (tagged again).
fn arp(host: &Host, net: &Network, ip: Ipv4Addr, mac: [u8; 6], key: u32) -> Vec<Flow> {
    arp_as(AppId::Nat, host, net, ip, mac, key)
}

/// [`arp`] with the cookie of `app` (a floating IP held for another app's object).
pub fn arp_as(
    app: AppId,
    host: &Host,
    net: &Network,
    ip: Ipv4Addr,
    mac: [u8; 6],
    key: u32,
) -> Vec<Flow> {
    let Some(out) = to_physical(host, net) else {
        return Vec::new();
    };
    let meta = u64::from(net.unique_key);
    let on = |op: u16| {
        Match::new()
            .metadata(meta)
            .eth_type(ETH_ARP)
            .masked(Field::ArpOp, op, 0xffffu16)
            .arp_tpa(ip)
    };
    let mut answer = vec![
        Action::move_field(Field::EthSrc, Field::EthDst, 48),
        Action::set_field(Field::EthSrc, mac_u128(mac)),
        Action::set_field(Field::ArpOp, ARP_REPLY),
        Action::move_field(Field::ArpSha, Field::ArpTha, 48),
        Action::move_field(Field::ArpSpa, Field::ArpTpa, 32),
        Action::set_field(Field::ArpSha, mac_u128(mac)),
        Action::set_field(Field::ArpSpa, u32::from(ip)),
    ];
    // The way out to the physical network, but back through the port it came in by.
    answer.extend(out.into_iter().map(|a| match a {
        Action::Output { .. } => Action::output(port::IN_PORT),
        a => a,
    }));
    vec![flow(
        table::INGRESS_NAT,
        PRIO_ARP,
        on(ARP_REQUEST),
        app,
        key,
        [Instruction::ApplyActions(answer)],
    )]
}

/// An external network this host serves: ARP replies arriving on it are copied to the
/// controller (which learns the next hops' MACs from them) and go on as usual.
pub fn network(view: &View, host: &Host, net: &Network) -> Vec<Flow> {
    if !net.external || !serves(view, host, net) {
        return Vec::new();
    }
    let mut out = ipv6::network(net);
    out.push(flow(
        table::INGRESS_NAT,
        PRIO_ARP,
        Match::new()
            .metadata(u64::from(net.unique_key))
            .eth_type(ETH_ARP)
            .masked(Field::ArpOp, ARP_REPLY, 0xffffu16),
        AppId::Nat,
        net.unique_key,
        vec![
            Instruction::ApplyActions(vec![Action::controller(OFPCML_NO_BUFFER)]),
            Instruction::GotoTable(table::FROM_TUNNEL),
        ],
    ));
    out
}

/// A router's north-south flows on this host: its default route to egress NAT, SNAT to
/// this host's address (when SNAT is on), and the way back in for its connections.
pub fn router(view: &View, host: &Host, r: &Router) -> Vec<Flow> {
    let Some(g) = gateway(view, host, r) else {
        return Vec::new();
    };
    let key = r.unique_key;
    let on_router = || Match::new().masked(reg::ROUTER, key, u32::MAX);
    let mut out = vec![
        flow(
            table::L3_ROUTES,
            PRIO_DEFAULT_ROUTE,
            on_router().eth_type(ETH_IPV4),
            AppId::Nat,
            key,
            [Instruction::GotoTable(table::EGRESS_NAT)],
        ),
        // Back in (after un-NAT): the connection's router routes it to the VM.
        flow(
            table::INGRESS_SNAT,
            PRIO_FIP,
            Match::new()
                .metadata(u64::from(g.net.unique_key))
                .eth_type(ETH_IPV4)
                .ct_state(CT_TRK, CT_TRK)
                .masked(Field::CtMark, key, u32::MAX),
            AppId::Nat,
            key,
            vec![
                Instruction::ApplyActions(vec![Action::load(reg::ROUTER, 0, 32, u64::from(key))]),
                Instruction::GotoTable(table::L3),
            ],
        ),
    ];
    let snat = r
        .external_gateway
        .as_ref()
        .is_some_and(|gw| gw.enable_snat)
        .then(|| snat_port(view, &g.net.meta.id))
        .flatten()
        .and_then(|p| Some((p, p.fixed_ips.iter().find_map(|f| v4(&f.ip_address))?)));
    if let Some((p, ip)) = snat {
        out.push(flow(
            table::EGRESS_NAT,
            PRIO_SNAT,
            on_router().eth_type(ETH_IPV4),
            AppId::Nat,
            key,
            [Instruction::ApplyActions(vec![ct_nat(
                nat_flags::SRC,
                ip,
                key,
                table::EGRESS_SNAT,
            )])],
        ));
        out.push(flow(
            table::EGRESS_SNAT,
            PRIO_SNAT,
            on_router().eth_type(ETH_IPV4).ipv4_src(ip),
            AppId::Nat,
            key,
            leave(&g, p.mac_address.0),
        ));
    }
    out
}

/// This host's SNAT address port: ARP for it on the external network, and arrivals for it
/// un-NATed (replies to connections this host made; anything else matches no connection
/// and is dropped after ingress SNAT).
pub fn port(view: &View, host: &Host, p: &Port) -> Vec<Flow> {
    if p.device_owner != CHASSIS_SNAT
        || p.device_id != view.chassis
        || snat_port(view, &p.network_id).map(|s| &s.meta.id) != Some(&p.meta.id)
    {
        return Vec::new();
    }
    let Some(net) = view.networks.get(&p.network_id) else {
        return Vec::new();
    };
    if !serves(view, host, net) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for ip in p.fixed_ips.iter().filter_map(|f| v4(&f.ip_address)) {
        out.extend(arp(host, net, ip, p.mac_address.0, p.unique_key));
        out.push(flow(
            table::INGRESS_NAT,
            PRIO_SNAT,
            Match::new()
                .metadata(u64::from(net.unique_key))
                .eth_type(ETH_IPV4)
                .ipv4_dst(ip),
            AppId::Nat,
            p.unique_key,
            [Instruction::ApplyActions(vec![Action::Ct(Ct {
                flags: 0,
                zone: CtZone::Imm(NAT_ZONE),
                recirc_table: table::INGRESS_SNAT,
                alg: 0,
                actions: vec![Action::Nat(Nat::default())],
            })])],
        ));
    }
    out
}

/// The parts of an associated floating IP whose VM is on this host.
pub struct LocalFip<'a> {
    pub fip: Ipv4Addr,
    pub fixed: Ipv4Addr,
    pub mac: [u8; 6],
    pub vm: &'a Port,
    pub gateway: Gateway<'a>,
}

/// The floating IP, if it is associated to a port on this host whose router reaches out
/// from here.
pub fn local_fip<'a>(view: &'a View, host: &Host, f: &'a FloatingIp) -> Option<LocalFip<'a>> {
    let vm = view.ports.get(f.port_id.as_ref()?)?;
    if !is_local(view, host, vm) || !host.plugged(&vm.meta.id) {
        return None;
    }
    let r = view.routers.get(f.router_id.as_ref()?)?;
    let g = gateway(view, host, r)?;
    if g.net.meta.id != f.floating_network_id {
        return None;
    }
    let mac = view.ports.get(&f.floating_port_id)?.mac_address.0;
    Some(LocalFip {
        fip: v4(&f.floating_ip_address)?,
        fixed: v4(f.fixed_ip_address.as_ref()?)?,
        mac,
        vm,
        gateway: g,
    })
}

/// A floating IP of a VM on this host: ARP for it on the external network, DNAT of
/// arrivals to the VM, SNAT of the VM's way out to it.
pub fn floating_ip(view: &View, host: &Host, f: &FloatingIp) -> Vec<Flow> {
    let Some(l) = local_fip(view, host, f) else {
        return Vec::new();
    };
    let g = &l.gateway;
    let rkey = g.router.unique_key;
    let key = l.vm.unique_key;
    let meta = u64::from(g.net.unique_key);
    let mut out = arp(host, g.net, l.fip, l.mac, key);
    out.push(flow(
        table::INGRESS_NAT,
        PRIO_FIP,
        Match::new()
            .metadata(meta)
            .eth_type(ETH_IPV4)
            .ipv4_dst(l.fip),
        AppId::Nat,
        key,
        [Instruction::ApplyActions(vec![ct_nat(
            nat_flags::DST,
            l.fixed,
            rkey,
            table::INGRESS_SNAT,
        )])],
    ));
    let on_router = || Match::new().masked(reg::ROUTER, rkey, u32::MAX);
    out.push(flow(
        table::EGRESS_NAT,
        PRIO_FIP,
        on_router().eth_type(ETH_IPV4).ipv4_src(l.fixed),
        AppId::Nat,
        key,
        [Instruction::ApplyActions(vec![ct_nat(
            nat_flags::SRC,
            l.fip,
            rkey,
            table::EGRESS_SNAT,
        )])],
    ));
    out.push(flow(
        table::EGRESS_SNAT,
        PRIO_FIP,
        on_router().eth_type(ETH_IPV4).ipv4_src(l.fip),
        AppId::Nat,
        key,
        leave(g, l.mac),
    ));
    out
}

/// The north-south owners: provider networks (whether this host serves one follows its
/// ports and routers), floating IPs (whose flows follow their port, router and networks),
/// routers with a gateway, and load balancers (a floating IP on a VIP is compiled with
/// its balancer, and needs the router's next hop as a floating IP does). Few per host, so
/// any change that may move them (a next hop learnt) recompiles them all.
pub fn north_south(view: &View) -> Vec<Owner> {
    view.networks
        .values()
        .filter(|n| n.network_type.is_provider())
        .map(|n| Touched {
            table: Table::Network,
            id: n.meta.id.clone(),
        })
        .chain(view.floating_ips.keys().map(|id| Touched {
            table: Table::FloatingIp,
            id: id.clone(),
        }))
        .chain(
            view.routers
                .values()
                .filter(|r| r.external_gateway.is_some())
                .map(|r| Touched {
                    table: Table::Router,
                    id: r.meta.id.clone(),
                }),
        )
        .chain(view.loadbalancers.keys().map(|id| Touched {
            table: Table::LoadBalancer,
            id: id.clone(),
        }))
        .collect()
}

pub struct NorthSouth;

impl App for NorthSouth {
    fn id(&self) -> AppId {
        AppId::Nat
    }

    fn tables(&self) -> &'static [u8] {
        &[
            table::INGRESS_NAT,
            table::INGRESS_SNAT,
            table::L3_ROUTES,
            table::EGRESS_NAT,
            table::EGRESS_SNAT,
        ]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        let (view, host) = (cx.view, cx.host);
        match obj {
            Object::Port(p) => out.extend(port(view, host, p)),
            Object::Network(n) => out.extend(network(view, host, n)),
            Object::Router(r) => {
                out.extend(router(view, host, r));
                out.extend(ipv6::router(view, host, r));
            }
            Object::FloatingIp(f) => {
                out.extend(floating_ip(view, host, f));
                out.extend(forwarding::flows(view, host, f));
            }
            _ => {}
        }
    }

    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        if !matches!(
            changed.table,
            Table::Network | Table::Port | Table::Router | Table::FloatingIp | Table::Subnet
        ) {
            return;
        }
        out.extend(north_south(view));
        // The SNAT address port of this host is compiled as a port; it follows its
        // network's routers.
        out.extend(
            view.ports
                .values()
                .filter(|p| p.device_owner == CHASSIS_SNAT && p.device_id == view.chassis)
                .map(|p| Touched {
                    table: Table::Port,
                    id: p.meta.id.clone(),
                }),
        );
    }

    fn handler(&self, _settings: &Settings) -> Option<Box<dyn Handler>> {
        Some(Box::new(punt::NatPunt::default()))
    }
}
