//! Port security: a local port may send only from its own MAC and addresses (fixed IPs
//! and allowed address pairs), including in ARP and neighbour discovery, and never as a
//! router or a DHCP server (router advertisements, redirects, DHCP and DHCPv6 server
//! replies are dropped, as in Neutron); anything else it sends is dropped. With
//! `port_security_enabled = false` everything passes.

use super::{App, Cx, Flow, Host, Object, Sink, flow};
use crate::pipeline::{App as AppId, table};
use crate::view::View;
use ipnet::IpNet;
use model::{MacAddr, Port};
use openflow::Instruction;
use openflow::oxm::{Field, Match};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A port with port security off: above the drops every other port gets.
const PRIO_UNFILTERED: u16 = 200;
/// What no filtered port may send, whatever its addresses: above its allowances.
const PRIO_NEVER: u16 = 150;
const PRIO_ALLOW: u16 = 100;
const PRIO_DHCP: u16 = 90;
const PRIO_DROP: u16 = 10;
const PRIO_DEFAULT: u16 = 1;
const ETH_IPV4: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const ETH_IPV6: u16 = 0x86dd;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
const ND_RS: u8 = 133;
const ND_RA: u8 = 134;
const ND_NS: u8 = 135;
const ND_REDIRECT: u8 = 137;

fn from_port(key: u32) -> Match {
    Match::new().masked(Field::Reg(6), key, u32::MAX)
}

/// The IPv6 link-local address of a MAC (fe80::/64 with its EUI-64).
pub fn link_local(mac: MacAddr) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b[0] = 0xfe;
    b[1] = 0x80;
    b[8..].copy_from_slice(&mac.eui64());
    Ipv6Addr::from(b)
}

/// What a port may send from: (MAC, address or prefix).
fn allowed(p: &Port) -> Vec<(MacAddr, IpNet)> {
    let mut out: Vec<(MacAddr, IpNet)> = p
        .fixed_ips
        .iter()
        .map(|f| (p.mac_address, IpNet::from(f.ip_address)))
        .collect();
    out.push((
        p.mac_address,
        IpNet::from(IpAddr::V6(link_local(p.mac_address))),
    ));
    for pair in &p.allowed_address_pairs {
        out.push((pair.mac_address, pair.ip_address));
        if let IpNet::V6(_) = pair.ip_address {
            continue;
        }
        out.push((
            pair.mac_address,
            IpNet::from(IpAddr::V6(link_local(pair.mac_address))),
        ));
    }
    out.sort();
    out.dedup();
    out
}

/// The flows of table 1 for a local port.
pub fn compile(_view: &View, host: &Host, p: &Port) -> Vec<Flow> {
    if !host.plugged(&p.meta.id) {
        return Vec::new();
    }
    let key = p.unique_key;
    let on = |m: Match, prio: u16| {
        flow(
            table::PORT_SECURITY,
            prio,
            m,
            AppId::PortSecurity,
            key,
            // Security groups (conntrack) apply to ports with port security only.
            [Instruction::GotoTable(if p.port_security_enabled {
                table::EGRESS_CT
            } else {
                table::SERVICES
            })],
        )
    };
    if !p.port_security_enabled {
        return vec![on(from_port(key), PRIO_UNFILTERED)];
    }
    let mut out = Vec::new();
    for (mac, net) in allowed(p) {
        let m = from_port(key).eth_src(mac.0);
        match net {
            IpNet::V4(n) => {
                let ip = |m: Match| {
                    m.eth_type(ETH_IPV4)
                        .ipv4_src_prefix(n.addr(), n.prefix_len())
                };
                out.push(on(ip(m.clone()), PRIO_ALLOW));
                out.push(on(
                    m.eth_type(ETH_ARP).arp_sha(mac.0).masked(
                        Field::ArpSpa,
                        u32::from(n.addr()),
                        prefix_mask_v4(n.prefix_len()),
                    ),
                    PRIO_ALLOW,
                ));
            }
            IpNet::V6(n) => {
                let v = u128::from(n.addr());
                let mask = if n.prefix_len() == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(n.prefix_len()))
                };
                out.push(on(
                    m.eth_type(ETH_IPV6).masked(Field::Ipv6Src, v, mask),
                    PRIO_ALLOW,
                ));
            }
        }
    }
    // DHCP discovery from no address; IPv6 duplicate address detection and router
    // solicitation from ::. Not MLD reports from :: (Neutron allows them): two flows more
    // per port for reports the kernel sends again from its link-local address, and MLD is
    // flooded anyway; snooping will want them.
    let own = from_port(key).eth_src(p.mac_address.0);
    out.push(on(
        own.clone()
            .eth_type(ETH_IPV4)
            .ipv4_src_prefix(Ipv4Addr::UNSPECIFIED, 32)
            .ip_proto(UDP)
            .udp_dst(67),
        PRIO_DHCP,
    ));
    for ty in [ND_NS, ND_RS] {
        out.push(on(
            own.clone()
                .eth_type(ETH_IPV6)
                .ipv6_src(Ipv6Addr::UNSPECIFIED)
                .ip_proto(ICMPV6)
                .icmpv6_type(ty),
            PRIO_DHCP,
        ));
    }
    // Everything else the port sends is dropped.
    out.push(flow(
        table::PORT_SECURITY,
        PRIO_DROP,
        from_port(key),
        AppId::PortSecurity,
        key,
        vec![],
    ));
    out
}

/// What no port with port security may send, whatever its addresses: router
/// advertisements and redirects (a VM posing as the router), DHCP and DHCPv6 server
/// replies (a VM posing as the DHCP server). Shared by every port: table 1 only sees
/// traffic from local ports, and ports with port security off pass above these.
pub fn base() -> Vec<Flow> {
    let drop = |m: Match| {
        flow(
            table::PORT_SECURITY,
            PRIO_NEVER,
            m,
            AppId::PortSecurity,
            0,
            vec![],
        )
    };
    let mut out: Vec<Flow> = [ND_RA, ND_REDIRECT]
        .into_iter()
        .map(|ty| {
            drop(
                Match::new()
                    .eth_type(ETH_IPV6)
                    .ip_proto(ICMPV6)
                    .icmpv6_type(ty),
            )
        })
        .collect();
    for (et, server, client) in [(ETH_IPV4, 67, 68), (ETH_IPV6, 547, 546)] {
        out.push(drop(
            Match::new()
                .eth_type(et)
                .ip_proto(UDP)
                .udp_src(server)
                .udp_dst(client),
        ));
    }
    // Traffic of a port no flow here knows (not yet compiled) goes on, as before port
    // security: the port's own flows decide once they are in.
    out.push(flow(
        table::PORT_SECURITY,
        PRIO_DEFAULT,
        Match::new(),
        AppId::PortSecurity,
        0,
        [Instruction::GotoTable(table::SERVICES)],
    ));
    out
}

fn prefix_mask_v4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

pub struct PortSecurity;

impl App for PortSecurity {
    fn id(&self) -> AppId {
        AppId::PortSecurity
    }

    fn tables(&self) -> &'static [u8] {
        &[table::PORT_SECURITY]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.extend(base()),
            Object::Port(p) => out.extend(compile(cx.view, cx.host, p)),
            _ => {}
        }
    }
}
