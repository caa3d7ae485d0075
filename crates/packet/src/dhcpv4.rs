//! DHCPv4 (RFC 2131/2132): the BOOTP header, magic cookie and options, the typed options a
//! Neutron DHCP responder needs (RFC 3442 classless static routes included), any other option
//! kept as raw `(code, bytes)` so `extra_dhcp_opts` can be emitted, and a reply builder.
//!
//! Options longer than 255 bytes are split into consecutive instances on emit and
//! concatenated on parse (RFC 3396). Option overload (option 52) is rejected.

use crate::ethernet::{self, EtherType, EthernetAddress, EthernetRepr, VlanTag};
use crate::ip::IpProtocol;
use crate::ipv4::{self, Ipv4Repr};
use crate::udp::{self, UdpRepr};
use crate::{Error, Result};
use std::net::{IpAddr, Ipv4Addr};

/// UDP port of DHCP servers.
pub const SERVER_PORT: u16 = 67;
/// UDP port of DHCP clients.
pub const CLIENT_PORT: u16 = 68;
/// The magic cookie 99.130.83.99 that starts the options.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Offset of the options (fixed BOOTP header plus cookie).
pub const OPTIONS_OFFSET: usize = 240;
/// Minimum BOOTP message length (RFC 951); some clients drop shorter replies.
pub const MIN_MESSAGE_LEN: usize = 300;

/// Option codes.
pub mod code {
    /// Pad.
    pub const PAD: u8 = 0;
    /// Subnet mask.
    pub const SUBNET_MASK: u8 = 1;
    /// Routers.
    pub const ROUTER: u8 = 3;
    /// Domain name servers.
    pub const DNS_SERVERS: u8 = 6;
    /// Host name.
    pub const HOSTNAME: u8 = 12;
    /// Domain name.
    pub const DOMAIN_NAME: u8 = 15;
    /// Interface MTU.
    pub const INTERFACE_MTU: u8 = 26;
    /// Requested IP address.
    pub const REQUESTED_IP: u8 = 50;
    /// IP address lease time.
    pub const LEASE_TIME: u8 = 51;
    /// Option overload (rejected).
    pub const OVERLOAD: u8 = 52;
    /// DHCP message type.
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier.
    pub const SERVER_IDENTIFIER: u8 = 54;
    /// Parameter request list.
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Renewal (T1) time.
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding (T2) time.
    pub const REBINDING_TIME: u8 = 59;
    /// Client identifier.
    pub const CLIENT_IDENTIFIER: u8 = 61;
    /// Classless static routes (RFC 3442).
    pub const CLASSLESS_STATIC_ROUTE: u8 = 121;
    /// End.
    pub const END: u8 = 255;
}

/// BOOTP op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// BOOTREQUEST (client to server).
    Request,
    /// BOOTREPLY (server to client).
    Reply,
}

/// DHCP message type (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 1.
    Discover,
    /// 2.
    Offer,
    /// 3.
    Request,
    /// 4.
    Decline,
    /// 5.
    Ack,
    /// 6.
    Nak,
    /// 7.
    Release,
    /// 8.
    Inform,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1 => MessageType::Discover,
            2 => MessageType::Offer,
            3 => MessageType::Request,
            4 => MessageType::Decline,
            5 => MessageType::Ack,
            6 => MessageType::Nak,
            7 => MessageType::Release,
            8 => MessageType::Inform,
            other => MessageType::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(v: MessageType) -> u8 {
        match v {
            MessageType::Discover => 1,
            MessageType::Offer => 2,
            MessageType::Request => 3,
            MessageType::Decline => 4,
            MessageType::Ack => 5,
            MessageType::Nak => 6,
            MessageType::Release => 7,
            MessageType::Inform => 8,
            MessageType::Unknown(other) => other,
        }
    }
}

/// A view over a DHCP message (BOOTP header, cookie, options).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking it holds the 236-byte header and the cookie.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The length check of [`Packet::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < OPTIONS_OFFSET {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// BOOTP op (1 request, 2 reply).
    pub fn op(&self) -> u8 {
        self.b()[0]
    }

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u8 {
        self.b()[1]
    }

    /// Hardware address length (6 for Ethernet).
    pub fn hardware_len(&self) -> u8 {
        self.b()[2]
    }

    /// Relay hops.
    pub fn hops(&self) -> u8 {
        self.b()[3]
    }

    /// Transaction id.
    pub fn transaction_id(&self) -> u32 {
        let b = self.b();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    /// Seconds since the client began.
    pub fn secs(&self) -> u16 {
        u16::from_be_bytes([self.b()[8], self.b()[9]])
    }

    /// Flags field.
    pub fn flags(&self) -> u16 {
        u16::from_be_bytes([self.b()[10], self.b()[11]])
    }

    /// Broadcast flag: the client cannot receive unicast before it is configured.
    pub fn broadcast(&self) -> bool {
        self.flags() & 0x8000 != 0
    }

    /// ciaddr.
    pub fn client_ip(&self) -> Ipv4Addr {
        ip_at(self.b(), 12)
    }

    /// yiaddr.
    pub fn your_ip(&self) -> Ipv4Addr {
        ip_at(self.b(), 16)
    }

    /// siaddr.
    pub fn server_ip(&self) -> Ipv4Addr {
        ip_at(self.b(), 20)
    }

    /// giaddr.
    pub fn relay_agent_ip(&self) -> Ipv4Addr {
        ip_at(self.b(), 24)
    }

    /// The first six bytes of chaddr.
    pub fn client_hardware_addr(&self) -> EthernetAddress {
        let b = self.b();
        EthernetAddress([b[28], b[29], b[30], b[31], b[32], b[33]])
    }

    /// The four bytes where the magic cookie belongs.
    pub fn magic_cookie(&self) -> [u8; 4] {
        let b = self.b();
        [b[236], b[237], b[238], b[239]]
    }

    /// The raw options area (after the cookie).
    pub fn options(&self) -> &[u8] {
        &self.b()[OPTIONS_OFFSET..]
    }

    /// Iterates over the options as `(code, data)`, skipping pads and stopping at the end
    /// option. A truncated option yields one `Err(Truncated)` and ends the iteration.
    pub fn option_iter(&self) -> OptionIter<'_> {
        OptionIter {
            data: self.options(),
        }
    }
}

/// Iterator over raw DHCP options; see [`Packet::option_iter`].
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    data: &'a [u8],
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<(u8, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match *self.data {
                [] | [code::END, ..] => {
                    self.data = &[];
                    return None;
                }
                [code::PAD, ..] => self.data = &self.data[1..],
                [code, len, ..] => {
                    let end = 2 + usize::from(len);
                    let Some(value) = self.data.get(2..end) else {
                        self.data = &[];
                        return Some(Err(Error::Truncated));
                    };
                    self.data = &self.data[end..];
                    return Some(Ok((code, value)));
                }
                [_] => {
                    self.data = &[];
                    return Some(Err(Error::Truncated));
                }
            }
        }
    }
}

/// One RFC 3442 classless static route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClasslessRoute {
    /// Destination network (host bits zero).
    pub destination: Ipv4Addr,
    /// Prefix length (0..=32).
    pub prefix_len: u8,
    /// Next hop (0.0.0.0 for an on-link route).
    pub gateway: Ipv4Addr,
}

impl ClasslessRoute {
    /// A route to `destination/prefix_len` (host bits cleared, prefix capped at 32).
    pub fn new(destination: Ipv4Addr, prefix_len: u8, gateway: Ipv4Addr) -> ClasslessRoute {
        let prefix_len = prefix_len.min(32);
        let mask = if prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix_len))
        };
        ClasslessRoute {
            destination: Ipv4Addr::from(u32::from(destination) & mask),
            prefix_len,
            gateway,
        }
    }

    fn significant_octets(prefix_len: u8) -> usize {
        usize::from(prefix_len).div_ceil(8)
    }
}

/// Decodes the value of option 121.
pub fn parse_classless_routes(mut data: &[u8]) -> Result<Vec<ClasslessRoute>> {
    let mut out = Vec::new();
    if data.is_empty() {
        return Err(Error::Malformed);
    }
    while let [width, rest @ ..] = data {
        if *width > 32 {
            return Err(Error::Malformed);
        }
        let n = ClasslessRoute::significant_octets(*width);
        let dst = rest.get(..n).ok_or(Error::Truncated)?;
        let gw = rest.get(n..n + 4).ok_or(Error::Truncated)?;
        let mut o = [0u8; 4];
        o[..n].copy_from_slice(dst);
        out.push(ClasslessRoute::new(
            Ipv4Addr::from(o),
            *width,
            Ipv4Addr::new(gw[0], gw[1], gw[2], gw[3]),
        ));
        data = &rest[n + 4..];
    }
    Ok(out)
}

/// Encodes routes as the value of option 121.
pub fn emit_classless_routes(routes: &[ClasslessRoute]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in routes {
        let r = ClasslessRoute::new(r.destination, r.prefix_len, r.gateway);
        out.push(r.prefix_len);
        out.extend_from_slice(
            &r.destination.octets()[..ClasslessRoute::significant_octets(r.prefix_len)],
        );
        out.extend_from_slice(&r.gateway.octets());
    }
    out
}

/// A DHCP message.
///
/// List options (`router`, `dns_servers`, `classless_routes`) are absent when empty. An
/// option whose contents do not decode (wrong length, hostname not UTF-8, ...) is kept raw
/// in `other_options` rather than failing the whole message; so are all options without a
/// field here. On emit, `other_options` follow the typed options: do not repeat a typed
/// option's code there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DhcpRepr {
    /// BOOTREQUEST or BOOTREPLY.
    pub op: Op,
    /// Relay hops.
    pub hops: u8,
    /// Transaction id.
    pub transaction_id: u32,
    /// Seconds elapsed.
    pub secs: u16,
    /// Broadcast flag.
    pub broadcast: bool,
    /// ciaddr.
    pub client_ip: Ipv4Addr,
    /// yiaddr.
    pub your_ip: Ipv4Addr,
    /// siaddr.
    pub server_ip: Ipv4Addr,
    /// giaddr.
    pub relay_agent_ip: Ipv4Addr,
    /// chaddr.
    pub client_hardware_addr: EthernetAddress,
    /// Option 53.
    pub message_type: MessageType,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_identifier: Option<Ipv4Addr>,
    /// Option 55.
    pub parameter_request_list: Option<Vec<u8>>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3.
    pub router: Vec<Ipv4Addr>,
    /// Option 6.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain_name: Option<String>,
    /// Option 51, seconds.
    pub lease_time: Option<u32>,
    /// Option 58 (T1), seconds.
    pub renewal_time: Option<u32>,
    /// Option 59 (T2), seconds.
    pub rebinding_time: Option<u32>,
    /// Option 26.
    pub interface_mtu: Option<u16>,
    /// Option 121.
    pub classless_routes: Vec<ClasslessRoute>,
    /// Option 61.
    pub client_identifier: Option<Vec<u8>>,
    /// Option 12.
    pub hostname: Option<String>,
    /// Every other option, in order of first appearance.
    pub other_options: Vec<(u8, Vec<u8>)>,
}

fn ip4(v: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from)
}

fn u32_of(v: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(v).ok().map(u32::from_be_bytes)
}

fn ip_list(v: &[u8]) -> Option<Vec<Ipv4Addr>> {
    if v.is_empty() || !v.len().is_multiple_of(4) {
        return None;
    }
    Some(v.chunks_exact(4).filter_map(ip4).collect())
}

fn text(v: &[u8]) -> Option<String> {
    if v.is_empty() {
        return None;
    }
    String::from_utf8(v.to_vec()).ok()
}

impl DhcpRepr {
    /// A message with no options but the message type.
    pub fn new(
        op: Op,
        message_type: MessageType,
        transaction_id: u32,
        client_hardware_addr: EthernetAddress,
    ) -> DhcpRepr {
        DhcpRepr {
            op,
            hops: 0,
            transaction_id,
            secs: 0,
            broadcast: false,
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            client_hardware_addr,
            message_type,
            requested_ip: None,
            server_identifier: None,
            parameter_request_list: None,
            subnet_mask: None,
            router: Vec::new(),
            dns_servers: Vec::new(),
            domain_name: None,
            lease_time: None,
            renewal_time: None,
            rebinding_time: None,
            interface_mtu: None,
            classless_routes: Vec::new(),
            client_identifier: None,
            hostname: None,
            other_options: Vec::new(),
        }
    }

    /// Parses a checked message. Requires an Ethernet client (htype 1, hlen 6), the magic
    /// cookie and a message type option; option overload is `Unsupported`.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<DhcpRepr> {
        packet.check_len()?;
        let op = match packet.op() {
            1 => Op::Request,
            2 => Op::Reply,
            _ => return Err(Error::Malformed),
        };
        if packet.magic_cookie() != MAGIC_COOKIE {
            return Err(Error::Malformed);
        }
        if packet.hardware_type() != 1 || packet.hardware_len() != 6 {
            return Err(Error::Unsupported);
        }
        // Gather options, concatenating repeated codes (RFC 3396), in first-seen order.
        let mut options: Vec<(u8, Vec<u8>)> = Vec::new();
        for item in packet.option_iter() {
            let (c, v) = item?;
            match options.iter_mut().find(|(k, _)| *k == c) {
                Some((_, acc)) => acc.extend_from_slice(v),
                None => options.push((c, v.to_vec())),
            }
        }
        let mut repr = DhcpRepr::new(
            op,
            MessageType::Unknown(0),
            packet.transaction_id(),
            packet.client_hardware_addr(),
        );
        repr.hops = packet.hops();
        repr.secs = packet.secs();
        repr.broadcast = packet.broadcast();
        repr.client_ip = packet.client_ip();
        repr.your_ip = packet.your_ip();
        repr.server_ip = packet.server_ip();
        repr.relay_agent_ip = packet.relay_agent_ip();
        let mut message_type = None;
        for (c, v) in options {
            let typed = match c {
                code::OVERLOAD => return Err(Error::Unsupported),
                code::MESSAGE_TYPE => match *v {
                    [t] => message_type.replace(MessageType::from(t)).is_none(),
                    _ => false,
                },
                code::REQUESTED_IP => ip4(&v).map(|a| repr.requested_ip = Some(a)).is_some(),
                code::SERVER_IDENTIFIER => {
                    ip4(&v).map(|a| repr.server_identifier = Some(a)).is_some()
                }
                code::PARAMETER_REQUEST_LIST if !v.is_empty() => {
                    repr.parameter_request_list = Some(v.clone());
                    true
                }
                code::SUBNET_MASK => ip4(&v).map(|a| repr.subnet_mask = Some(a)).is_some(),
                code::ROUTER => ip_list(&v).map(|l| repr.router = l).is_some(),
                code::DNS_SERVERS => ip_list(&v).map(|l| repr.dns_servers = l).is_some(),
                code::DOMAIN_NAME => text(&v).map(|s| repr.domain_name = Some(s)).is_some(),
                code::HOSTNAME => text(&v).map(|s| repr.hostname = Some(s)).is_some(),
                code::LEASE_TIME => u32_of(&v).map(|t| repr.lease_time = Some(t)).is_some(),
                code::RENEWAL_TIME => u32_of(&v).map(|t| repr.renewal_time = Some(t)).is_some(),
                code::REBINDING_TIME => u32_of(&v).map(|t| repr.rebinding_time = Some(t)).is_some(),
                code::INTERFACE_MTU => <[u8; 2]>::try_from(&v[..])
                    .ok()
                    .map(|m| repr.interface_mtu = Some(u16::from_be_bytes(m)))
                    .is_some(),
                code::CLASSLESS_STATIC_ROUTE => parse_classless_routes(&v)
                    .ok()
                    .map(|r| repr.classless_routes = r)
                    .is_some(),
                code::CLIENT_IDENTIFIER if !v.is_empty() => {
                    repr.client_identifier = Some(v.clone());
                    true
                }
                _ => false,
            };
            if !typed {
                repr.other_options.push((c, v));
            }
        }
        repr.message_type = message_type.ok_or(Error::Malformed)?;
        Ok(repr)
    }

    /// The options in emission order, as `(code, value)`.
    fn option_list(&self) -> Vec<(u8, Vec<u8>)> {
        let mut o: Vec<(u8, Vec<u8>)> = vec![(code::MESSAGE_TYPE, vec![self.message_type.into()])];
        let ip = |a: &Ipv4Addr| a.octets().to_vec();
        let list = |l: &[Ipv4Addr]| l.iter().flat_map(|a| a.octets()).collect::<Vec<u8>>();
        if let Some(a) = &self.server_identifier {
            o.push((code::SERVER_IDENTIFIER, ip(a)));
        }
        if let Some(a) = &self.requested_ip {
            o.push((code::REQUESTED_IP, ip(a)));
        }
        if let Some(c) = &self.client_identifier {
            o.push((code::CLIENT_IDENTIFIER, c.clone()));
        }
        if let Some(l) = &self.parameter_request_list {
            o.push((code::PARAMETER_REQUEST_LIST, l.clone()));
        }
        if let Some(t) = self.lease_time {
            o.push((code::LEASE_TIME, t.to_be_bytes().to_vec()));
        }
        if let Some(t) = self.renewal_time {
            o.push((code::RENEWAL_TIME, t.to_be_bytes().to_vec()));
        }
        if let Some(t) = self.rebinding_time {
            o.push((code::REBINDING_TIME, t.to_be_bytes().to_vec()));
        }
        if let Some(a) = &self.subnet_mask {
            o.push((code::SUBNET_MASK, ip(a)));
        }
        if !self.router.is_empty() {
            o.push((code::ROUTER, list(&self.router)));
        }
        if !self.dns_servers.is_empty() {
            o.push((code::DNS_SERVERS, list(&self.dns_servers)));
        }
        if let Some(d) = &self.domain_name {
            o.push((code::DOMAIN_NAME, d.as_bytes().to_vec()));
        }
        if let Some(h) = &self.hostname {
            o.push((code::HOSTNAME, h.as_bytes().to_vec()));
        }
        if let Some(m) = self.interface_mtu {
            o.push((code::INTERFACE_MTU, m.to_be_bytes().to_vec()));
        }
        if !self.classless_routes.is_empty() {
            o.push((
                code::CLASSLESS_STATIC_ROUTE,
                emit_classless_routes(&self.classless_routes),
            ));
        }
        o.extend(
            self.other_options
                .iter()
                .filter(|(c, _)| *c != code::PAD && *c != code::END)
                .cloned(),
        );
        o
    }

    fn options_len(options: &[(u8, Vec<u8>)]) -> usize {
        // Each started 255-byte chunk costs a 2-byte header; an empty option still takes 2.
        options
            .iter()
            .map(|(_, v)| v.len() + 2 * v.len().div_ceil(255).max(1))
            .sum::<usize>()
            + 1
    }

    /// Length of the message: header, cookie, options and end, padded to 300 bytes.
    pub fn buffer_len(&self) -> usize {
        (OPTIONS_OFFSET + Self::options_len(&self.option_list())).max(MIN_MESSAGE_LEN)
    }

    /// Writes the message into the first `buffer_len()` bytes of `packet` (unused bytes are
    /// zeroed: sname, file and the padding after the end option).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let options = self.option_list();
        let total = (OPTIONS_OFFSET + Self::options_len(&options)).max(MIN_MESSAGE_LEN);
        let b = &mut packet.buffer.as_mut()[..total];
        b.fill(0);
        b[0] = match self.op {
            Op::Request => 1,
            Op::Reply => 2,
        };
        b[1] = 1;
        b[2] = 6;
        b[3] = self.hops;
        b[4..8].copy_from_slice(&self.transaction_id.to_be_bytes());
        b[8..10].copy_from_slice(&self.secs.to_be_bytes());
        b[10..12].copy_from_slice(&(u16::from(self.broadcast) << 15).to_be_bytes());
        b[12..16].copy_from_slice(&self.client_ip.octets());
        b[16..20].copy_from_slice(&self.your_ip.octets());
        b[20..24].copy_from_slice(&self.server_ip.octets());
        b[24..28].copy_from_slice(&self.relay_agent_ip.octets());
        b[28..34].copy_from_slice(&self.client_hardware_addr.0);
        b[236..240].copy_from_slice(&MAGIC_COOKIE);
        let mut at = OPTIONS_OFFSET;
        for (c, v) in &options {
            let mut chunks = v.chunks(255).peekable();
            if chunks.peek().is_none() {
                b[at] = *c;
                b[at + 1] = 0;
                at += 2;
            }
            for chunk in chunks {
                b[at] = *c;
                // Chunks are at most 255 bytes long.
                b[at + 1] = u8::try_from(chunk.len()).unwrap_or(u8::MAX);
                b[at + 2..at + 2 + chunk.len()].copy_from_slice(chunk);
                at += 2 + chunk.len();
            }
        }
        b[at] = code::END;
    }

    /// The message as bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut out[..]));
        out
    }

    /// A reply skeleton for `request`: BOOTREPLY with its transaction id, flags, relay
    /// address, client hardware address and client identifier (echoed, RFC 6842), the given
    /// type and yiaddr, and `server_identifier` set. Fill in the configuration options.
    pub fn reply_to(
        request: &DhcpRepr,
        message_type: MessageType,
        your_ip: Ipv4Addr,
        server_identifier: Ipv4Addr,
    ) -> DhcpRepr {
        let mut r = DhcpRepr::new(
            Op::Reply,
            message_type,
            request.transaction_id,
            request.client_hardware_addr,
        );
        r.broadcast = request.broadcast;
        r.relay_agent_ip = request.relay_agent_ip;
        r.client_ip = if message_type == MessageType::Ack {
            request.client_ip
        } else {
            Ipv4Addr::UNSPECIFIED
        };
        r.your_ip = your_ip;
        r.server_identifier = Some(server_identifier);
        r.client_identifier = request.client_identifier.clone();
        r
    }
}

/// A DHCP message received in an Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFrame {
    /// Ethernet header.
    pub ethernet: EthernetRepr,
    /// IPv4 header.
    pub ipv4: Ipv4Repr,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// The DHCP message.
    pub dhcp: DhcpRepr,
}

/// Parses a whole Ethernet + IPv4 + UDP + DHCP frame (checksums verified; fragments are
/// `Unsupported`).
pub fn parse_frame(frame: &[u8]) -> Result<ParsedFrame> {
    let eth = ethernet::Frame::new_checked(frame)?;
    let ethernet = EthernetRepr::parse(&eth)?;
    if ethernet.ethertype != EtherType::Ipv4 {
        return Err(Error::Unsupported);
    }
    let ip = ipv4::Packet::new_checked(eth.payload())?;
    let ipv4 = Ipv4Repr::parse(&ip)?;
    if ipv4.protocol != IpProtocol::Udp || ipv4.more_frags || ipv4.frag_offset != 0 {
        return Err(Error::Unsupported);
    }
    let u = udp::Packet::new_checked(ip.payload())?;
    let udp = UdpRepr::parse(&u, &IpAddr::V4(ipv4.src_addr), &IpAddr::V4(ipv4.dst_addr))?;
    let dhcp = DhcpRepr::parse(&Packet::new_checked(udp.payload)?)?;
    Ok(ParsedFrame {
        ethernet,
        ipv4,
        src_port: udp.src_port,
        dst_port: udp.dst_port,
        dhcp,
    })
}

/// Builds the Ethernet frame carrying `reply` from the server (`server_mac`, `server_ip`,
/// port 67) to the client (port 68), addressed as RFC 2131 4.1 says: NAKs are broadcast;
/// a client with a `client_ip` gets unicast there; a client that set the broadcast flag
/// gets a broadcast; otherwise unicast to `your_ip` at `client_hardware_addr`. Replies via
/// a relay (`relay_agent_ip` set) are `Unsupported`: this server is always on-link.
pub fn reply_frame(
    reply: &DhcpRepr,
    server_mac: EthernetAddress,
    server_ip: Ipv4Addr,
    vlan: Option<VlanTag>,
) -> Result<Vec<u8>> {
    if !reply.relay_agent_ip.is_unspecified() {
        return Err(Error::Unsupported);
    }
    let (dst_mac, dst_ip) = if reply.message_type == MessageType::Nak {
        (EthernetAddress::BROADCAST, Ipv4Addr::BROADCAST)
    } else if !reply.client_ip.is_unspecified() {
        (reply.client_hardware_addr, reply.client_ip)
    } else if reply.broadcast || reply.your_ip.is_unspecified() {
        (EthernetAddress::BROADCAST, Ipv4Addr::BROADCAST)
    } else {
        (reply.client_hardware_addr, reply.your_ip)
    };
    let dhcp = reply.build();
    let udp = UdpRepr {
        src_port: SERVER_PORT,
        dst_port: CLIENT_PORT,
        payload: &dhcp,
    }
    .build(&IpAddr::V4(server_ip), &IpAddr::V4(dst_ip));
    let ip = Ipv4Repr::new(server_ip, dst_ip, IpProtocol::Udp, 0).build(&udp);
    let eth = EthernetRepr {
        src_addr: server_mac,
        dst_addr: dst_mac,
        vlan,
        ethertype: EtherType::Ipv4,
    };
    Ok(eth.build(&ip))
}
