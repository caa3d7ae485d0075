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
use ipnet::Ipv4Net;
use model::Port;
use openflow::Instruction;
use openflow::action::Action;
use openflow::nx::{Learn, LearnSpec, LearnSrc, Subfield, learn_flags};
use openflow::oxm::{Field, Match};
use std::net::Ipv4Addr;

/// The address VMs ask.
pub const IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
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
/// Learned reply flows go after this long without a packet.
pub const IDLE: u16 = 60;
/// ... or this long after a FIN or RST.
const FIN_IDLE: u16 = 2;

const PRIO_SERVICE: u16 = 100;
const PRIO_REQUEST: u16 = 100;
const PRIO_REPLY: u16 = 100;
const PRIO_ARP: u16 = 110;
const PRIO_DEFAULT: u16 = 1;
const ETH_IPV4: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const TCP: u8 = 6;

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

/// The reverse flow a request learns in table 40: replies to the port's address and this
/// TCP source port get the VM's addresses, port and network back.
fn learn(key: u32, net_key: u32, client: Ipv4Addr) -> Action {
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
            m(LearnSrc::Imm(ETH_IPV4.into()), Field::EthType),
            m(LearnSrc::Imm(TCP.into()), Field::IpProto),
            m(LearnSrc::Imm(u32::from(client).into()), Field::Ipv4Dst),
            m(f(Field::TcpSrc), Field::TcpDst),
            load(f(Field::EthDst), Field::EthSrc),
            load(f(Field::EthSrc), Field::EthDst),
            load(LearnSrc::Imm(u32::from(IP).into()), Field::Ipv4Src),
            load(f(Field::Ipv4Src), Field::Ipv4Dst),
            load(LearnSrc::Imm(key.into()), reg::DST_PORT),
            load(LearnSrc::Imm(net_key.into()), Field::Metadata),
        ],
    })
}

/// The request flow of a local port: learn the way back, rewrite the addresses, out to
/// the server. Nothing for a port whose key the range cannot hold, or before the internal
/// port is plugged.
pub fn compile(view: &View, host: &Host, p: &Port) -> Vec<Flow> {
    let side = &host.metadata;
    let (Some(ofport), Some(client)) = (side.ofport, client(side.range, p.unique_key)) else {
        return Vec::new();
    };
    if !is_local(view, host, p) || p.device_owner.starts_with("network:") {
        return Vec::new();
    }
    let Some(net) = view.networks.get(&p.network_id) else {
        return Vec::new();
    };
    vec![flow(
        table::METADATA,
        PRIO_REQUEST,
        requests().masked(reg::SRC_PORT, p.unique_key, u32::MAX),
        AppId::Metadata,
        p.unique_key,
        [Instruction::ApplyActions(vec![
            learn(p.unique_key, net.unique_key, client),
            Action::set_field(Field::Ipv4Src, u32::from(client)),
            Action::set_field(Field::Ipv4Dst, u32::from(server(side.range))),
            Action::set_field(Field::EthDst, mac_u128(MAC)),
            Action::output(ofport),
        ])],
    )]
}

/// Replies from the server: the learned flow restores the VM's side, then the port's
/// ingress security groups decide as for any reply.
fn replies(range: Ipv4Net, ofport: u32) -> Match {
    Match::new()
        .in_port(ofport)
        .eth_type(ETH_IPV4)
        .ip_proto(TCP)
        .ipv4_src(server(range))
        .tcp_src(PORT)
}

/// The flows every pipeline has: requests to table 35 (what no port's flow takes goes on
/// to L2), ARP for the metadata address answered, and, once the internal port is plugged,
/// the server's replies through table 40's learned flows to ingress.
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
    ];
    if let Some(ofport) = host.metadata.ofport {
        let range = host.metadata.range;
        out.push(flow(
            table::CLASSIFY,
            PRIO_REPLY,
            replies(range, ofport),
            AppId::Metadata,
            0,
            [Instruction::GotoTable(table::METADATA)],
        ));
        out.push(flow(
            table::METADATA,
            PRIO_REPLY,
            replies(range, ofport),
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
