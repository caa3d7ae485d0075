//! The metadata service's flows (tables 35 and 40), with no agent and no namespace: TCP to
//! 169.254.169.254:80 from a local VM port is sent to this host's controller, which serves
//! HTTP on an OVS internal port of br-int ([`PORT_NAME`]).
//!
//! Who asks is decided by the switch, never by the VM: one flow per IP family in table 35,
//! shared by every local port, writes reg6 (the port key, which classification set from
//! the `in_port`) into the source address ([`client`]: the range's network with the key
//! in its host bits, in [`HostSide::range`]), and the server's address as the
//! destination. The same flow learns the reverse flow into table 40 (idle timeout
//! [`IDLE`], gone a few seconds after a FIN), which puts the VM's address, MAC, port and
//! network back on the replies; those then go through the port's ingress security groups
//! (table 105) as any reply does. A port's learned flows are deleted when it leaves
//! ([`forget`]).
//! The server ([`serve`]) maps the source address back to the port key, and the key to
//! the port in the view. A VM that forges its source address or MAC changes nothing: the
//! rewrite only reads reg6.

pub mod content;
pub mod serve;

use super::{App, Cx, Flow, Host, Object, Sink, flow};
use crate::pipeline::{App as AppId, Cookie, reg, table};
use ipnet::{Ipv4Net, Ipv6Net};
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
/// The server's replies in table 35: above the request flows and their exclusions (a
/// reply has no port in reg6).
const PRIO_REPLY_IN: u16 = 120;
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

/// The server's address: the range's last host address. The addresses below it stand
/// for port keys, the key in the host bits (see [`host_bits`]), so that the switch can
/// write a key into an address with one `move`.
pub fn server(range: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(range.broadcast()).wrapping_sub(1))
}

/// How many low bits of an address in `range` hold a port key.
pub fn host_bits(range: Ipv4Net) -> u16 {
    32 - u16::from(range.prefix_len())
}

/// The address that stands for port `key`: the range's network with the key in its host
/// bits (none when the range is too small for it, or the key would be the server's or
/// the broadcast address).
pub fn client(range: Ipv4Net, key: u32) -> Option<Ipv4Addr> {
    let a = u32::from(range.network()).checked_add(key)?;
    (key > 0 && a < u32::from(server(range))).then(|| Ipv4Addr::from(a))
}

/// The port key an address stands for (the inverse of [`client`]).
pub fn key_of(range: Ipv4Net, a: Ipv4Addr) -> Option<u32> {
    let key = u32::from(a).checked_sub(u32::from(range.network()))?;
    (client(range, key) == Some(a)).then_some(key)
}

/// The server's IPv6 address: just above the 32 bits of port keys.
pub fn server6() -> Ipv6Addr {
    Ipv6Addr::from(u128::from(RANGE6.network()) + (1 << 32))
}

/// The IPv6 address that stands for port `key`: the prefix with the key in the low 32
/// bits.
pub fn client6(key: u32) -> Option<Ipv6Addr> {
    (key > 0).then(|| Ipv6Addr::from(u128::from(RANGE6.network()) + u128::from(key)))
}

/// The port key an IPv6 address stands for (the inverse of [`client6`]).
pub fn key_of6(a: Ipv6Addr) -> Option<u32> {
    let d = u128::from(a).checked_sub(u128::from(RANGE6.network()))?;
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

/// One IP family's fields, and where port keys go in its addresses.
#[derive(Clone, Copy)]
struct Family {
    eth: u16,
    src: Field,
    dst: Field,
    /// The field's width in bits.
    width: u16,
    /// The prefix port keys are written into (host bits zero).
    base: u128,
    /// How many low bits hold the key.
    key_bits: u16,
    /// The server's address.
    server: u128,
}

fn v4(range: Ipv4Net) -> Family {
    Family {
        eth: ETH_IPV4,
        src: Field::Ipv4Src,
        dst: Field::Ipv4Dst,
        width: 32,
        base: u32::from(range.network()).into(),
        key_bits: host_bits(range),
        server: u32::from(server(range)).into(),
    }
}

fn v6() -> Family {
    Family {
        eth: ETH_IPV6,
        src: Field::Ipv6Src,
        dst: Field::Ipv6Dst,
        width: 128,
        base: u128::from(RANGE6.network()),
        key_bits: 32,
        server: u128::from(server6()),
    }
}

/// The reverse flow a request learns in table 40: replies to the port's address (the
/// family's prefix with reg6 in its key bits) from the service's TCP port to this
/// connection's source port get the VM's addresses (the address it asked, whichever
/// service that was), port (reg6 into reg7) and network back. Read before the request's
/// addresses are rewritten.
fn learn(fam: Family) -> Action {
    let m = |src, dst| LearnSpec::Match { src, dst };
    let load = |src, dst| LearnSpec::Load { src, dst };
    let f = |field| LearnSrc::Field(sub(field));
    let mut specs = vec![
        m(LearnSrc::Imm(fam.eth.into()), sub(Field::EthType)),
        m(LearnSrc::Imm(TCP.into()), sub(Field::IpProto)),
    ];
    if fam.key_bits < fam.width {
        specs.push(m(
            LearnSrc::Imm(fam.base >> fam.key_bits),
            Subfield::new(fam.dst, fam.key_bits, fam.width - fam.key_bits),
        ));
    }
    specs.extend([
        m(
            LearnSrc::Field(Subfield::new(reg::SRC_PORT, 0, fam.key_bits.min(32))),
            Subfield::new(fam.dst, 0, fam.key_bits.min(32)),
        ),
        m(f(Field::TcpSrc), sub(Field::TcpDst)),
        m(f(Field::TcpDst), sub(Field::TcpSrc)),
        load(f(Field::EthDst), sub(Field::EthSrc)),
        load(f(Field::EthSrc), sub(Field::EthDst)),
        load(f(fam.dst), sub(fam.src)),
        load(f(fam.src), sub(fam.dst)),
        load(f(reg::SRC_PORT), sub(reg::DST_PORT)),
        load(f(Field::Metadata), sub(Field::Metadata)),
    ]);
    Action::Learn(Learn {
        idle_timeout: IDLE,
        hard_timeout: 0,
        priority: PRIO_REPLY,
        cookie: Cookie {
            app: AppId::Metadata,
            key: 0,
        }
        .encode(),
        flags: learn_flags::DELETE_LEARNED,
        table_id: table::METADATA_REPLY,
        fin_idle_timeout: FIN_IDLE,
        fin_hard_timeout: 0,
        specs,
    })
}

/// The request flows, one per IP family and shared by every local port (reg6 is the
/// asking port's key, set by classification from the `in_port`): learn the way back, write
/// the key into the source address, the server's as the destination, out to the server.
/// They match any TCP that reached table 35: only the services table (metadata) and the
/// DNS table (DNS over TCP to the network's DNS address) send it there, and the
/// destination port is kept, so the server's listener on that port answers. A key the
/// IPv4 range cannot hold (too large, or the server's or the broadcast address) goes on
/// to L2 as before the internal port is plugged.
fn requests_flows(side: &HostSide, ofport: u32) -> Vec<Flow> {
    let to_l2 = |m: Match| {
        flow(
            table::METADATA,
            PRIO_REQUEST + 1,
            m,
            AppId::Metadata,
            0,
            [Instruction::GotoTable(table::L2)],
        )
    };
    let fam4 = v4(side.range);
    let keys4 = u32::try_from(1u64 << fam4.key_bits.min(32)).unwrap_or(0);
    let mut out = vec![to_l2(Match::new().masked(reg::SRC_PORT, 0u32, u32::MAX))];
    for key in [keys4.wrapping_sub(2), keys4.wrapping_sub(1)] {
        out.push(to_l2(
            Match::new()
                .masked(reg::SRC_PORT, key, u32::MAX)
                .eth_type(ETH_IPV4),
        ));
    }
    for fam in [fam4, v6()] {
        let m = Match::new().eth_type(fam.eth).ip_proto(TCP);
        let m = if fam.key_bits < 32 {
            m.masked(reg::SRC_PORT, 0u32, !(keys4.wrapping_sub(1)))
        } else {
            m
        };
        out.push(flow(
            table::METADATA,
            PRIO_REQUEST,
            m,
            AppId::Metadata,
            0,
            [Instruction::ApplyActions(vec![
                learn(fam),
                Action::set_field(fam.src, fam.base),
                Action::RegMove {
                    src: Subfield::new(reg::SRC_PORT, 0, fam.key_bits.min(32)),
                    dst: Subfield::new(fam.src, 0, fam.key_bits.min(32)),
                },
                Action::set_field(fam.dst, fam.server),
                Action::set_field(Field::EthDst, mac_u128(MAC)),
                Action::output(ofport),
            ])],
        ));
    }
    out
}

/// The learned reply flows of port `key` (both families), deleted when the port leaves
/// this host or the store: the shared request flows cannot take them with them, and a
/// later port with the same key must not get the replies of an old connection.
pub fn forget(range: Ipv4Net, key: u32) -> Vec<openflow::flow::FlowMod> {
    let mut out = Vec::new();
    let delete = |m: Match| openflow::flow::FlowMod {
        command: openflow::flow::FlowModCommand::Delete,
        match_: m,
        ..openflow::flow::FlowMod::add(table::METADATA_REPLY, 0)
    };
    if let Some(a) = client(range, key) {
        out.push(delete(Match::new().eth_type(ETH_IPV4).ipv4_dst(a)));
    }
    if let Some(a) = client6(key) {
        out.push(delete(Match::new().eth_type(ETH_IPV6).ipv6_dst(a)));
    }
    out
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
        out.extend(requests_flows(&host.metadata, ofport));
        let range = host.metadata.range;
        for fam in [v4(range), v6()] {
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
                    PRIO_REPLY_IN,
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
        if let Object::Base = obj {
            out.extend(base(cx.host));
        }
    }
}

#[cfg(test)]
mod tests;
