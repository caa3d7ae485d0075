//! The packet of a trace, in Neutron terms: which port sends it (by id, name or fixed IP),
//! to which address and port, and the frame the VM would put on the wire for it (its own
//! MAC and address; the destination's MAC on the same network, else its gateway's).

use controller::apps::metadata;
use controller::view::View;
use model::Port;
use packet::IpProtocol;
use packet::ethernet::{EtherType, EthernetAddress, EthernetRepr, VlanTag};
use packet::icmpv4::Icmpv4Repr;
use packet::icmpv6::Icmpv6Repr;
use packet::ipv4::Ipv4Repr;
use packet::ipv6::Ipv6Repr;
use packet::tcp::{Flags, TcpRepr};
use packet::udp::UdpRepr;
use std::net::{IpAddr, SocketAddr};

/// The protocol of the traced packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }
}

/// What a trace sends.
#[derive(Debug, Clone)]
pub struct Probe {
    pub from: Port,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Proto,
    /// TCP/UDP destination port (0 for ICMP).
    pub dport: u16,
    pub sport: u16,
    /// The port on the same network that has the destination address, if any.
    pub to_port: Option<Port>,
    /// The VLAN of a trunk's subport: its VM sends tagged frames on the parent's port.
    pub vlan: Option<u16>,
}

/// The VLAN a trunk subport's frames carry on its parent's port (`None` for any other
/// port: it sends untagged on its own).
fn subport_vlan(view: &View, port: &Port) -> Option<u16> {
    let trunk = view.trunk_of(&port.meta.id)?;
    if trunk.port_id == port.meta.id {
        return None;
    }
    trunk.vlan_of(&port.meta.id)
}

/// The source port the VM's client would use: DHCP's and DHCPv6's are fixed (the switch
/// takes their requests by both ports), any other an ephemeral one.
fn client_port(proto: Proto, dport: Option<u16>) -> u16 {
    match (proto, dport) {
        (Proto::Udp, Some(67)) => 68,
        (Proto::Udp, Some(547)) => 546,
        _ => 40000,
    }
}

/// Finds a port by id, name or fixed IP; a name or address several ports share is an error
/// that names them.
pub fn find_port(view: &View, what: &str) -> Result<Port, String> {
    if let Some(p) = view.ports.get(what) {
        return Ok(p.clone());
    }
    let ip: Option<IpAddr> = what.parse().ok();
    let found: Vec<&Port> = view
        .ports
        .values()
        .filter(|p| {
            p.meta.name == what
                || ip.is_some_and(|ip| p.fixed_ips.iter().any(|f| f.ip_address == ip))
        })
        .collect();
    match found.as_slice() {
        [p] => Ok((*p).clone()),
        [] => Err(format!("no port has the id, name or fixed IP {what}")),
        many => Err(format!(
            "{what} names {} ports ({}): give a port id",
            many.len(),
            many.iter()
                .map(|p| p.meta.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Parses `IP`, `IP:PORT` or `[IPv6]:PORT`.
pub fn parse_to(to: &str) -> Result<(IpAddr, Option<u16>), String> {
    if let Ok(ip) = to.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    to.parse::<SocketAddr>()
        .map(|s| (s.ip(), Some(s.port())))
        .map_err(|_| format!("--to {to}: expected IP, IP:PORT or [IPv6]:PORT"))
}

/// The probe: the sender's first address of the destination's family, the destination's
/// port on the sender's network if it has one there.
pub fn probe(
    view: &View,
    from: Port,
    dst: IpAddr,
    dport: Option<u16>,
    proto: Option<Proto>,
) -> Result<Probe, String> {
    let src = from
        .fixed_ips
        .iter()
        .map(|f| f.ip_address)
        .find(|ip| ip.is_ipv4() == dst.is_ipv4())
        .ok_or_else(|| {
            format!(
                "port {} has no IPv{} address to send from",
                from.meta.id,
                if dst.is_ipv4() { 4 } else { 6 }
            )
        })?;
    let proto = proto.unwrap_or(if dport.is_some() {
        Proto::Tcp
    } else {
        Proto::Icmp
    });
    if proto != Proto::Icmp && dport.is_none() {
        return Err(format!(
            "--proto {}: give the destination port (--to IP:PORT)",
            proto.as_str()
        ));
    }
    let to_port = view
        .ports_of(&from.network_id)
        .find(|p| p.fixed_ips.iter().any(|f| f.ip_address == dst))
        .cloned();
    let vlan = subport_vlan(view, &from);
    Ok(Probe {
        from,
        src,
        dst,
        proto,
        dport: dport.unwrap_or(0),
        sport: client_port(proto, dport),
        to_port,
        vlan,
    })
}

/// The MAC the sender addresses: the broadcast's, a multicast group's own (RFC 1112,
/// RFC 2464), the metadata address's, the destination port's on its own network, else the
/// router interface that is the gateway of the sender's subnet.
pub fn next_hop_mac(view: &View, p: &Probe) -> Result<[u8; 6], String> {
    match p.dst {
        // A DHCP client's request before it has (or when it renews without) a server.
        IpAddr::V4(d) if d.is_broadcast() => return Ok([0xff; 6]),
        IpAddr::V4(d) if d.is_multicast() => {
            let o = d.octets();
            return Ok([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]);
        }
        IpAddr::V6(d) if d.is_multicast() => {
            let o = d.octets();
            return Ok([0x33, 0x33, o[12], o[13], o[14], o[15]]);
        }
        // The metadata address, on-link: the switch answers ARP and ND for it with its MAC.
        IpAddr::V4(d) if d == metadata::IP => return Ok(metadata::MAC),
        IpAddr::V6(d) if d == metadata::IP6 => return Ok(metadata::MAC),
        _ => {}
    }
    if let Some(to) = &p.to_port {
        return Ok(to.mac_address.0);
    }
    let subnet = p
        .from
        .fixed_ips
        .iter()
        .find(|f| f.ip_address == p.src)
        .and_then(|f| view.subnets.get(&f.subnet_id));
    let gw = subnet.and_then(|s| s.gateway_ip).ok_or_else(|| {
        format!(
            "{} is not on the sender's network and its subnet has no gateway",
            p.dst
        )
    })?;
    view.routers
        .values()
        .flat_map(|r| r.interfaces.iter())
        .find(|i| i.network_id == p.from.network_id && i.ip_address == gw)
        .map(|i| i.mac_address.0)
        .ok_or_else(|| {
            format!(
                "{} is not on the sender's network, and its gateway {gw} is no router's interface",
                p.dst
            )
        })
}

/// The frame the sender's VM would send.
pub fn frame(view: &View, p: &Probe) -> Result<Vec<u8>, String> {
    let dst_mac = next_hop_mac(view, p)?;
    let payload = b"dragonflow trace";
    let (ethertype, ip) = match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let (proto, l4) = match p.proto {
                Proto::Icmp => (
                    IpProtocol::Icmp,
                    Icmpv4Repr::EchoRequest {
                        ident: 1,
                        seq_no: 1,
                        data: payload,
                    }
                    .build(),
                ),
                Proto::Tcp => (IpProtocol::Tcp, tcp(p).build(&p.src, &p.dst)),
                Proto::Udp => (IpProtocol::Udp, udp(p, payload).build(&p.src, &p.dst)),
            };
            let ip = Ipv4Repr::new(s, d, proto, l4.len()).build(&l4);
            (EtherType::Ipv4, ip)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let (proto, l4) = match p.proto {
                Proto::Icmp => (
                    IpProtocol::Icmpv6,
                    Icmpv6Repr::EchoRequest {
                        ident: 1,
                        seq_no: 1,
                        data: payload,
                    }
                    .build(&s, &d),
                ),
                Proto::Tcp => (IpProtocol::Tcp, tcp(p).build(&p.src, &p.dst)),
                Proto::Udp => (IpProtocol::Udp, udp(p, payload).build(&p.src, &p.dst)),
            };
            let ip = Ipv6Repr::new(s, d, proto, l4.len(), 64).build(&l4);
            (EtherType::Ipv6, ip)
        }
        _ => return Err("source and destination of different IP versions".into()),
    };
    Ok(EthernetRepr {
        src_addr: EthernetAddress(p.from.mac_address.0),
        dst_addr: EthernetAddress(dst_mac),
        vlan: p.vlan.map(|vid| VlanTag {
            pcp: 0,
            dei: false,
            vid,
        }),
        ethertype,
    }
    .build(&ip))
}

fn tcp(p: &Probe) -> TcpRepr<'static> {
    TcpRepr {
        src_port: p.sport,
        dst_port: p.dport,
        seq_number: 1,
        ack_number: 0,
        flags: Flags(Flags::SYN),
        window_len: 64240,
        urgent_at: 0,
        payload: &[],
    }
}

fn udp<'a>(p: &Probe, payload: &'a [u8]) -> UdpRepr<'a> {
    UdpRepr {
        src_port: p.sport,
        dst_port: p.dport,
        payload,
    }
}

/// The frame as hex (`--frame` takes it back).
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if !s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("--frame: only hex digits (and spaces or colons) are allowed".into());
    }
    if !s.len().is_multiple_of(2) {
        return Err("--frame: an odd number of hex digits".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("--frame: bad hex at {i}"))
        })
        .collect()
}
