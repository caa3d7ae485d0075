//! The metadata service's flows (tables 35 and 40), with no agent and no namespace: TCP to
//! 169.254.169.254:80 from a local VM port is sent to this host's controller, which serves
//! HTTP on an OVS internal port of br-int ([`PORT_NAME`]).
//!
//! Who asks is decided by the switch, never by the VM: the port's own flow in table 35
//! (matched on reg6, which classification set from the `in_port`) rewrites the source
//! address to one that encodes the port key ([`client`]: the server's address plus the
//! key, in [`HostSide::range`]), and the destination to the server's. The same flow
//! learns the reverse flow into table 40 (idle timeout [`IDLE`], gone a few seconds after
//! a FIN), which puts the VM's address, MAC, port and network back on the replies; those
//! then go through the port's ingress security groups (table 105) as any reply does.
//! The server ([`serve`]) maps the source address back to the port key, and the key to
//! the port in the view. A VM that forges its source address or MAC changes nothing: the
//! rewrite only reads reg6.

pub mod content;
pub mod serve;

use super::{App, Cx, Flow, Host, Object, Sink, flow, is_local};
use crate::pipeline::{App as AppId, Cookie, reg, table};
use crate::view::View;
use ipnet::{Ipv4Net, Ipv6Net};
use model::Port;
use openflow::Instruction;
use openflow::action::Action;
use openflow::nx::{Learn, LearnSpec, LearnSrc, Subfield, learn_flags};
use openflow::oxm::{Field, Match};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address VMs ask.
pub const IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// The address IPv6 VMs ask (link-local, so on every network, with or without an IPv6
/// subnet; answered by ND in the switch).
pub const IP6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0xa9fe, 0xa9fe);
/// The port VMs ask.
pub const PORT: u16 = 80;
/// The MAC of the metadata address (ARP answers) and of the internal port.
pub const MAC: [u8; 6] = [0x02, 0xa9, 0xfe, 0xa9, 0xfe, 0xfe];
/// br-int's internal port the server listens behind.
pub const PORT_NAME: &str = "df-metadata";
/// The default range of the server's address (its first) and of the addresses that
/// encode port keys: RFC 2544's benchmarking block, routed nowhere.
pub const DEFAULT_RANGE: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(198, 18, 0, 0), 15) {
    Ok(n) => n,
    Err(_) => panic!("a valid prefix"),
};
/// The server's IPv6 address (the prefix's first) and the addresses that encode port keys
/// for IPv6 requests: RFC 5180's benchmarking block, routed nowhere, as the IPv4 range.
pub const RANGE6: Ipv6Net = match Ipv6Net::new(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48) {
    Ok(n) => n,
    Err(_) => panic!("a valid prefix"),
};
/// Learned reply flows go after this long without a packet.
pub const IDLE: u16 = 60;
/// ... or this long after a FIN or RST.
const FIN_IDLE: u16 = 2;

const PRIO_SERVICE: u16 = 100;
const PRIO_REQUEST: u16 = 100;
const PRIO_REPLY: u16 = 100;
const PRIO_ARP: u16 = 110;
const PRIO_ND: u16 = 110;
const PRIO_DEFAULT: u16 = 1;
const ETH_IPV4: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const ETH_IPV6: u16 = 0x86dd;
const TCP: u8 = 6;
const ICMPV6: u8 = 58;

/// What this host's side of the service is: the internal port's OpenFlow port (once
/// plugged) and the address range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSide {
    pub ofport: Option<u32>,
    pub range: Ipv4Net,
}

impl Default for HostSide {
    fn default() -> HostSide {
        HostSide {
            ofport: None,
            range: DEFAULT_RANGE,
        }
    }
}

/// The server's address: the range's first host address.
pub fn server(range: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(range.network()).wrapping_add(1))
}

/// The address that stands for port `key` (none when the range is too small for it).
pub fn client(range: Ipv4Net, key: u32) -> Option<Ipv4Addr> {
    let a = u32::from(server(range)).checked_add(key)?;
    (key > 0 && a < u32::from(range.broadcast())).then(|| Ipv4Addr::from(a))
}

/// The port key an address stands for (the inverse of [`client`]).
pub fn key_of(range: Ipv4Net, a: Ipv4Addr) -> Option<u32> {
    let key = u32::from(a).checked_sub(u32::from(server(range)))?;
    (client(range, key) == Some(a)).then_some(key)
}

/// The server's IPv6 address.
pub fn server6() -> Ipv6Addr {
    Ipv6Addr::from(u128::from(RANGE6.network()) + 1)
}

/// The IPv6 address that stands for port `key`.
pub fn client6(key: u32) -> Option<Ipv6Addr> {
    (key > 0).then(|| Ipv6Addr::from(u128::from(server6()) + u128::from(key)))
}

/// The port key an IPv6 address stands for (the inverse of [`client6`]).
pub fn key_of6(a: Ipv6Addr) -> Option<u32> {
    let d = u128::from(a).checked_sub(u128::from(server6()))?;
    u32::try_from(d).ok().filter(|k| *k > 0)
}

/// The port key a connection's source address stands for, either family.
pub fn key_of_ip(range: Ipv4Net, a: IpAddr) -> Option<u32> {
    match a {
        IpAddr::V4(a) => key_of(range, a),
        IpAddr::V6(a) => key_of6(a),
    }
}

fn mac_u128(m: [u8; 6]) -> u128 {
    m.iter().fold(0, |acc, b| (acc << 8) | u128::from(*b))
}

fn sub(field: Field) -> Subfield {
    Subfield::whole(field)
}

/// A request from a VM: TCP to the metadata address and port.
fn requests() -> Match {
    Match::new()
        .eth_type(ETH_IPV4)
        .ip_proto(TCP)
        .ipv4_dst(IP)
        .tcp_dst(PORT)
}

/// The same over IPv6, to [`IP6`].
fn requests6() -> Match {
    Match::new()
        .eth_type(ETH_IPV6)
        .ip_proto(TCP)
        .ipv6_dst(IP6)
        .tcp_dst(PORT)
}

/// One IP family's fields.
#[derive(Clone, Copy)]
struct Family {
    eth: u16,
    src: Field,
    dst: Field,
}

const V4: Family = Family {
    eth: ETH_IPV4,
    src: Field::Ipv4Src,
    dst: Field::Ipv4Dst,
};
const V6: Family = Family {
    eth: ETH_IPV6,
    src: Field::Ipv6Src,
    dst: Field::Ipv6Dst,
};

/// The reverse flow a request learns in table 40: replies to the port's address (`client`)
/// from the service's TCP port to this connection's source port get the VM's addresses
/// (the address it asked, whichever service that was), port and network back.
fn learn(key: u32, net_key: u32, fam: Family, client: u128) -> Action {
    let m = |src, dst| LearnSpec::Match { src, dst: sub(dst) };
    let load = |src, dst| LearnSpec::Load { src, dst: sub(dst) };
    let f = |field| LearnSrc::Field(sub(field));
    Action::Learn(Learn {
        idle_timeout: IDLE,
        hard_timeout: 0,
        priority: PRIO_REPLY,
        cookie: Cookie {
            app: AppId::Metadata,
            key,
        }
        .encode(),
        flags: learn_flags::DELETE_LEARNED,
        table_id: table::METADATA_REPLY,
        fin_idle_timeout: FIN_IDLE,
        fin_hard_timeout: 0,
        specs: vec![
            m(LearnSrc::Imm(fam.eth.into()), Field::EthType),
            m(LearnSrc::Imm(TCP.into()), Field::IpProto),
            m(LearnSrc::Imm(client), fam.dst),
            m(f(Field::TcpSrc), Field::TcpDst),
            m(f(Field::TcpDst), Field::TcpSrc),
            load(f(Field::EthDst), Field::EthSrc),
            load(f(Field::EthSrc), Field::EthDst),
            load(f(fam.dst), fam.src),
            load(f(fam.src), fam.dst),
            load(LearnSrc::Imm(key.into()), reg::DST_PORT),
            load(LearnSrc::Imm(net_key.into()), Field::Metadata),
        ],
    })
}

/// The request flows of a local port, one per IP family: learn the way back, rewrite the
/// addresses, out to the server. They match any TCP of the port that reached table 35:
/// only the services table (metadata) and the DNS table (DNS over TCP to the network's
/// DNS address) send it there, and the destination port is kept, so the server's listener
/// on that port answers. Nothing for a port whose key the range cannot hold, or before
/// the internal port is plugged.
pub fn compile(view: &View, host: &Host, p: &Port) -> Vec<Flow> {
    let side = &host.metadata;
    let (Some(ofport), Some(client), Some(client6)) = (
        side.ofport,
        client(side.range, p.unique_key),
        client6(p.unique_key),
    ) else {
        return Vec::new();
    };
    if !is_local(view, host, p) || p.device_owner.starts_with("network:") {
        return Vec::new();
    }
    let Some(net) = view.networks.get(&p.network_id) else {
        return Vec::new();
    };
    let per_family = |fam: Family, client: u128, server: u128| {
        flow(
            table::METADATA,
            PRIO_REQUEST,
            Match::new()
                .masked(reg::SRC_PORT, p.unique_key, u32::MAX)
                .eth_type(fam.eth)
                .ip_proto(TCP),
            AppId::Metadata,
            p.unique_key,
            [Instruction::ApplyActions(vec![
                learn(p.unique_key, net.unique_key, fam, client),
                Action::set_field(fam.src, client),
                Action::set_field(fam.dst, server),
                Action::set_field(Field::EthDst, mac_u128(MAC)),
                Action::output(ofport),
            ])],
        )
    };
    vec![
        per_family(
            V4,
            u32::from(client).into(),
            u32::from(server(side.range)).into(),
        ),
        per_family(V6, u128::from(client6), u128::from(server6())),
    ]
}

/// Replies from the server (one family, one service port): the learned flow restores the
/// VM's side, then the port's ingress security groups decide as for any reply.
fn replies(range: Ipv4Net, ofport: u32, fam: Family, service: u16) -> Match {
    let m = Match::new().in_port(ofport).eth_type(fam.eth).ip_proto(TCP);
    let m = if fam.eth == ETH_IPV4 {
        m.ipv4_src(server(range))
    } else {
        m.ipv6_src(server6())
    };
    m.tcp_src(service)
}

/// The services the server answers on its internal port: metadata (HTTP) and DNS over TCP.
const SERVICES: [u16; 2] = [PORT, packet::dns::PORT];

/// The flows every pipeline has: requests to table 35 (what no port's flow takes goes on
/// to L2), ARP and ND for the metadata addresses answered, and, once the internal port is
/// plugged, the server's replies through table 40's learned flows to ingress.
pub fn base(host: &Host) -> Vec<Flow> {
    let mut out = vec![
        flow(
            table::SERVICES,
            PRIO_SERVICE,
            requests(),
            AppId::Metadata,
            0,
            [Instruction::GotoTable(table::METADATA)],
        ),
        flow(
            table::SERVICES,
            PRIO_SERVICE,
            requests6(),
            AppId::Metadata,
            0,
            [Instruction::GotoTable(table::METADATA)],
        ),
        flow(
            table::METADATA,
            PRIO_DEFAULT,
            Match::new(),
            AppId::Metadata,
            0,
            [Instruction::GotoTable(table::L2)],
        ),
        flow(
            table::ARP,
            PRIO_ARP,
            Match::new()
                .eth_type(ETH_ARP)
                .masked(Field::ArpOp, 1u16, 0xffffu16)
                .arp_tpa(IP),
            AppId::Metadata,
            0,
            // The reply table sends it back out of the asking port (tagged for a subport).
            [
                Instruction::ApplyActions(super::arp::answer(MAC, IP)),
                Instruction::GotoTable(table::REPLY),
            ],
        ),
        // In every network, as ARP's: the ND table's DAD and no-SLL flows stay above.
        flow(
            table::ND,
            PRIO_ND,
            Match::new()
                .eth_type(ETH_IPV6)
                .ip_proto(ICMPV6)
                .icmpv6_type(super::nd::NS)
                .nd_target(IP6),
            AppId::Metadata,
            0,
            [
                Instruction::ApplyActions(super::nd::answer(MAC, IP6, false)),
                Instruction::GotoTable(table::ND_REPLY),
            ],
        ),
    ];
    if let Some(ofport) = host.metadata.ofport {
        let range = host.metadata.range;
        for fam in [V4, V6] {
            for service in SERVICES {
                out.push(flow(
                    table::CLASSIFY,
                    PRIO_REPLY,
                    replies(range, ofport, fam, service),
                    AppId::Metadata,
                    0,
                    [Instruction::GotoTable(table::METADATA)],
                ));
                out.push(flow(
                    table::METADATA,
                    PRIO_REPLY,
                    replies(range, ofport, fam, service),
                    AppId::Metadata,
                    0,
                    [
                        Instruction::ApplyActions(vec![
                            Action::resubmit_table(table::METADATA_REPLY),
                            // No learned flow (expired): reg7 stays 0 and ingress drops it.
                        ]),
                        Instruction::GotoTable(table::INGRESS_CT),
                    ],
                ));
            }
        }
    }
    out
}

pub struct Metadata;

impl App for Metadata {
    fn id(&self) -> AppId {
        AppId::Metadata
    }

    fn tables(&self) -> &'static [u8] {
        &[
            table::CLASSIFY,
            table::SERVICES,
            table::ARP,
            table::METADATA,
            table::ND,
        ]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.extend(base(cx.host)),
            Object::Port(p) => out.extend(compile(cx.view, cx.host, p)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
