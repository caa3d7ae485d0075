//! DHCPv6 (RFC 8415): the client/server message header and its options, the typed ones a
//! Neutron DHCPv6 responder reads or writes (client and server identifiers, IA_NA with its
//! addresses and status, option request, elapsed time, rapid commit, preference, status
//! code, DNS servers and domain search list of RFC 3646), any other option kept as raw
//! `(code, bytes)` so `extra_dhcp_opts` can be emitted, and a reply frame builder.
//!
//! Parsing is strict: a known option with a wrong length, a DUID outside 3..=130 bytes, a
//! status message that is not UTF-8, a domain name that is not plain labels, or a second
//! instance of a single-instance option makes the whole message [`Error::Malformed`], so
//! a reply is only ever built from options that were understood (nothing malformed is
//! echoed). Relay messages are [`Error::Unsupported`].

use crate::ethernet::{EtherType, EthernetAddress, EthernetRepr, VlanTag};
use crate::ip::IpProtocol;
use crate::ipv6::{self, Ipv6Repr};
use crate::udp::{self, UdpRepr};
use crate::{Error, Result, ethernet};
use std::net::{IpAddr, Ipv6Addr};

/// UDP port of DHCPv6 clients.
pub const CLIENT_PORT: u16 = 546;
/// UDP port of DHCPv6 servers and relays.
pub const SERVER_PORT: u16 = 547;
/// All_DHCP_Relay_Agents_and_Servers (ff02::1:2), where clients send.
pub const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// Header length: message type and transaction id.
pub const HEADER_LEN: usize = 4;
/// Longest DUID, type code included (RFC 8415 11.1: at most 128 octets after the type).
pub const MAX_DUID_LEN: usize = 130;
/// Hop limit of the replies.
pub const HOP_LIMIT: u8 = 64;

/// Option codes.
pub mod code {
    /// Client identifier (a DUID).
    pub const CLIENTID: u16 = 1;
    /// Server identifier (a DUID).
    pub const SERVERID: u16 = 2;
    /// Identity association for non-temporary addresses.
    pub const IA_NA: u16 = 3;
    /// Identity association for temporary addresses.
    pub const IA_TA: u16 = 4;
    /// An address inside an IA.
    pub const IAADDR: u16 = 5;
    /// Option request.
    pub const ORO: u16 = 6;
    /// Server preference.
    pub const PREFERENCE: u16 = 7;
    /// Elapsed time.
    pub const ELAPSED_TIME: u16 = 8;
    /// Relay message.
    pub const RELAY_MSG: u16 = 9;
    /// Authentication.
    pub const AUTH: u16 = 11;
    /// Server unicast.
    pub const UNICAST: u16 = 12;
    /// Status code.
    pub const STATUS_CODE: u16 = 13;
    /// Rapid commit.
    pub const RAPID_COMMIT: u16 = 14;
    /// Interface id (relays).
    pub const INTERFACE_ID: u16 = 18;
    /// Reconfigure message.
    pub const RECONF_MSG: u16 = 19;
    /// Reconfigure accept.
    pub const RECONF_ACCEPT: u16 = 20;
    /// Recursive DNS servers (RFC 3646).
    pub const DNS_SERVERS: u16 = 23;
    /// Domain search list (RFC 3646).
    pub const DOMAIN_LIST: u16 = 24;
    /// Identity association for prefix delegation.
    pub const IA_PD: u16 = 25;
    /// A prefix inside an IA_PD.
    pub const IAPREFIX: u16 = 26;
    /// Information refresh time.
    pub const INFORMATION_REFRESH_TIME: u16 = 32;
    /// Client FQDN (RFC 4704): the client's name, and who updates the DNS.
    pub const CLIENT_FQDN: u16 = 39;
}

/// The flags of the Client FQDN option (RFC 4704 4.1).
pub mod fqdn_flag {
    /// S: the server updates the AAAA record (the client asks, the server answers).
    pub const S: u8 = 0x01;
    /// O: the server overrode the client's S.
    pub const O: u8 = 0x02;
    /// N: the server should not update any record.
    pub const N: u8 = 0x04;
}

/// Status codes (option 13).
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0;
    /// Failure, reason unspecified.
    pub const UNSPEC_FAIL: u16 = 1;
    /// The server has no addresses for the IA.
    pub const NO_ADDRS_AVAIL: u16 = 2;
    /// The client's binding for the IA is unknown.
    pub const NO_BINDING: u16 = 3;
    /// The addresses are not on the client's link.
    pub const NOT_ON_LINK: u16 = 4;
    /// Send with multicast.
    pub const USE_MULTICAST: u16 = 5;
}

/// Message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 1.
    Solicit,
    /// 2.
    Advertise,
    /// 3.
    Request,
    /// 4.
    Confirm,
    /// 5.
    Renew,
    /// 6.
    Rebind,
    /// 7.
    Reply,
    /// 8.
    Release,
    /// 9.
    Decline,
    /// 10.
    Reconfigure,
    /// 11.
    InformationRequest,
    /// 12.
    RelayForw,
    /// 13.
    RelayRepl,
    /// Anything else.
    Unknown(u8),
}

const TYPES: [MessageType; 13] = [
    MessageType::Solicit,
    MessageType::Advertise,
    MessageType::Request,
    MessageType::Confirm,
    MessageType::Renew,
    MessageType::Rebind,
    MessageType::Reply,
    MessageType::Release,
    MessageType::Decline,
    MessageType::Reconfigure,
    MessageType::InformationRequest,
    MessageType::RelayForw,
    MessageType::RelayRepl,
];

impl From<u8> for MessageType {
    fn from(v: u8) -> Self {
        match v {
            1..=13 => TYPES[usize::from(v - 1)],
            other => MessageType::Unknown(other),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(v: MessageType) -> u8 {
        match v {
            MessageType::Unknown(other) => other,
            t => TYPES
                .iter()
                .position(|k| *k == t)
                .and_then(|i| u8::try_from(i + 1).ok())
                .unwrap_or(0),
        }
    }
}

impl MessageType {
    /// Whether a client sends it to a server (the messages a server answers or takes).
    pub fn from_client(self) -> bool {
        matches!(
            self,
            MessageType::Solicit
                | MessageType::Request
                | MessageType::Confirm
                | MessageType::Renew
                | MessageType::Rebind
                | MessageType::Release
                | MessageType::Decline
                | MessageType::InformationRequest
        )
    }
}

/// A view over a DHCPv6 client/server message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking that the header fits.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The length check of [`Packet::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Message type.
    pub fn msg_type(&self) -> MessageType {
        MessageType::from(self.buffer.as_ref()[0])
    }

    /// Transaction id (24 bits).
    pub fn transaction_id(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([0, b[1], b[2], b[3]])
    }

    /// The options' bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// The options, one `(code, data)` at a time; an option running past the end is an
    /// error (and ends the iteration).
    pub fn option_iter(&self) -> OptionIter<'_> {
        OptionIter {
            data: self.options(),
        }
    }
}

/// Iterates over `(code, data)` options (the message's, or an IA's or IAADDR's own).
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    data: &'a [u8],
}

impl<'a> OptionIter<'a> {
    /// Options encoded in `data`.
    pub fn new(data: &'a [u8]) -> OptionIter<'a> {
        OptionIter { data }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<(u16, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        let item = match self.data {
            [c0, c1, l0, l1, rest @ ..] => {
                let len = usize::from(u16::from_be_bytes([*l0, *l1]));
                match rest.get(..len) {
                    Some(v) => {
                        let code = u16::from_be_bytes([*c0, *c1]);
                        self.data = &rest[len..];
                        return Some(Ok((code, v)));
                    }
                    None => Err(Error::Truncated),
                }
            }
            _ => Err(Error::Truncated),
        };
        self.data = &[];
        Some(item)
    }
}

/// A status code option: the code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusCode {
    /// One of [`status`].
    pub code: u16,
    /// UTF-8 text.
    pub message: String,
}

impl StatusCode {
    /// A status with its message.
    pub fn new(code: u16, message: &str) -> StatusCode {
        StatusCode {
            code,
            message: message.to_string(),
        }
    }

    fn parse(v: &[u8]) -> Result<StatusCode> {
        let [c0, c1, text @ ..] = v else {
            return Err(Error::Malformed);
        };
        Ok(StatusCode {
            code: u16::from_be_bytes([*c0, *c1]),
            message: String::from_utf8(text.to_vec()).map_err(|_| Error::Malformed)?,
        })
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = self.code.to_be_bytes().to_vec();
        out.extend_from_slice(self.message.as_bytes());
        out
    }
}

/// An address of an IA (IAADDR option).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IaAddress {
    /// The address.
    pub addr: Ipv6Addr,
    /// Preferred lifetime, seconds.
    pub preferred: u32,
    /// Valid lifetime, seconds.
    pub valid: u32,
    /// Its status, if any.
    pub status: Option<StatusCode>,
}

/// An identity association for non-temporary addresses (IA_NA option).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IaNa {
    /// The client's id for the IA, echoed by the server.
    pub iaid: u32,
    /// Renewal time, seconds.
    pub t1: u32,
    /// Rebinding time, seconds.
    pub t2: u32,
    /// Its addresses.
    pub addresses: Vec<IaAddress>,
    /// Its status, if any.
    pub status: Option<StatusCode>,
}

fn u32_at(v: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]])
}

fn addr_at(v: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&v[at..at + 16]);
    Ipv6Addr::from(o)
}

/// The status in `opts` (at most one); other options there are skipped.
fn sub_status(opts: &[u8]) -> Result<Option<StatusCode>> {
    let mut status = None;
    for o in OptionIter::new(opts) {
        let (c, v) = o.map_err(|_| Error::Malformed)?;
        if c == code::STATUS_CODE {
            if status.is_some() {
                return Err(Error::Malformed);
            }
            status = Some(StatusCode::parse(v)?);
        }
    }
    Ok(status)
}

impl IaNa {
    fn parse(v: &[u8]) -> Result<IaNa> {
        if v.len() < 12 {
            return Err(Error::Malformed);
        }
        let mut ia = IaNa {
            iaid: u32_at(v, 0),
            t1: u32_at(v, 4),
            t2: u32_at(v, 8),
            addresses: Vec::new(),
            status: None,
        };
        for o in OptionIter::new(&v[12..]) {
            let (c, v) = o.map_err(|_| Error::Malformed)?;
            match c {
                code::IAADDR => {
                    if v.len() < 24 {
                        return Err(Error::Malformed);
                    }
                    ia.addresses.push(IaAddress {
                        addr: addr_at(v, 0),
                        preferred: u32_at(v, 16),
                        valid: u32_at(v, 20),
                        status: sub_status(&v[24..])?,
                    });
                }
                code::STATUS_CODE => {
                    if ia.status.is_some() {
                        return Err(Error::Malformed);
                    }
                    ia.status = Some(StatusCode::parse(v)?);
                }
                _ => {}
            }
        }
        Ok(ia)
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + 28 * self.addresses.len());
        for n in [self.iaid, self.t1, self.t2] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        for a in &self.addresses {
            let mut v = a.addr.octets().to_vec();
            v.extend_from_slice(&a.preferred.to_be_bytes());
            v.extend_from_slice(&a.valid.to_be_bytes());
            if let Some(s) = &a.status {
                put(&mut v, code::STATUS_CODE, &s.bytes());
            }
            put(&mut out, code::IAADDR, &v);
        }
        if let Some(s) = &self.status {
            put(&mut out, code::STATUS_CODE, &s.bytes());
        }
        out
    }
}

/// A DUID-LL (type 3) of an Ethernet address: what servers built from a MAC use.
pub fn duid_ll(mac: EthernetAddress) -> Vec<u8> {
    let mut d = vec![0, 3, 0, 1];
    d.extend_from_slice(mac.as_bytes());
    d
}

/// Whether `c` may stand in a domain label this crate reads or writes (letters, digits,
/// hyphen and underscore).
fn label_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// `name` in DNS wire format (uncompressed, RFC 1035 3.1), or `None` if it is not a name
/// of plain labels of 1..=63 bytes and at most 255 bytes in all. A trailing dot is allowed.
pub fn encode_domain(name: &str) -> Option<Vec<u8>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        let l = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..=63).contains(l))?;
        if !label.bytes().all(label_char) {
            return None;
        }
        out.push(l);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    (out.len() <= 255).then_some(out)
}

/// Reads the labels of one name at the start of `v` (uncompressed, RFC 1035 3.1): the
/// dotted name, what follows it, and whether it ended with the root label (a zero byte)
/// rather than with the data (a partial name, RFC 4704 4.2).
fn read_name(mut v: &[u8]) -> Result<(String, &[u8], bool)> {
    let mut name = String::new();
    let start = v.len();
    let mut terminated = false;
    while let Some((&len, rest)) = v.split_first() {
        v = rest;
        if len == 0 {
            terminated = true;
            break;
        }
        // Compression pointers (0xc0) and anything above 63 are not labels here.
        let label = v
            .get(..usize::from(len))
            .filter(|_| len <= 63)
            .ok_or(Error::Malformed)?;
        if !label.iter().copied().all(label_char) {
            return Err(Error::Malformed);
        }
        if !name.is_empty() {
            name.push('.');
        }
        // Checked ASCII above.
        name.push_str(std::str::from_utf8(label).map_err(|_| Error::Malformed)?);
        v = &v[usize::from(len)..];
    }
    // A partial name must still fit once completed with the root label.
    if start - v.len() + usize::from(!terminated) > 255 {
        return Err(Error::Malformed);
    }
    Ok((name, v, terminated))
}

/// The names of a domain search list option.
pub fn parse_domains(mut v: &[u8]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    while !v.is_empty() {
        let (name, rest, terminated) = read_name(v)?;
        if name.is_empty() || !terminated {
            return Err(Error::Malformed);
        }
        v = rest;
        out.push(name);
    }
    Ok(out)
}

/// The Client FQDN option (RFC 4704): flags and a name, fully qualified (written with a
/// trailing dot), partial (no trailing dot: the server completes it) or empty (the
/// client asks the server for one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFqdn {
    /// [`fqdn_flag`] bits; the must-be-zero bits are dropped on parse.
    pub flags: u8,
    /// The name, dotted.
    pub name: String,
}

impl ClientFqdn {
    /// Parses the option's data.
    pub fn parse(v: &[u8]) -> Result<ClientFqdn> {
        let (&flags, rest) = v.split_first().ok_or(Error::Malformed)?;
        let (mut name, left, terminated) = read_name(rest)?;
        // The root alone, or anything after the root label, is not a client's name.
        if !left.is_empty() || (terminated && name.is_empty()) {
            return Err(Error::Malformed);
        }
        if terminated {
            name.push('.');
        }
        Ok(ClientFqdn {
            flags: flags & (fqdn_flag::S | fqdn_flag::O | fqdn_flag::N),
            name,
        })
    }

    /// The option's data, or `None` when the name does not encode ([`encode_domain`]).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        let mut out = vec![self.flags];
        if self.name.is_empty() {
            return Some(out);
        }
        let mut wire = encode_domain(&self.name)?;
        if !self.name.ends_with('.') {
            // Partial: no root label.
            wire.pop();
        }
        out.extend_from_slice(&wire);
        Some(out)
    }
}

/// Appends option `code` with `data` to `out`; data longer than an option can hold is
/// left out (no panic).
fn put(out: &mut Vec<u8>, code: u16, data: &[u8]) {
    let Ok(len) = u16::try_from(data.len()) else {
        return;
    };
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
}

/// The high-level contents of a client/server message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dhcpv6Repr {
    /// Message type (`None` only while being built; parse always sets it).
    pub message_type: Option<MessageType>,
    /// Transaction id (24 bits; emit keeps the low 24).
    pub transaction_id: u32,
    /// Client identifier: the DUID, 3..=130 bytes.
    pub client_id: Option<Vec<u8>>,
    /// Server identifier: the DUID, 3..=130 bytes.
    pub server_id: Option<Vec<u8>>,
    /// The IA_NAs, in order.
    pub ia_na: Vec<IaNa>,
    /// Option request: the codes the client wants.
    pub oro: Vec<u16>,
    /// Elapsed time, hundredths of a second.
    pub elapsed_time: Option<u16>,
    /// Rapid commit asked for (client) or done (server).
    pub rapid_commit: bool,
    /// Server preference.
    pub preference: Option<u8>,
    /// The message's status.
    pub status: Option<StatusCode>,
    /// Recursive DNS servers (option 23).
    pub dns_servers: Vec<Ipv6Addr>,
    /// Domain search list (option 24).
    pub domain_list: Vec<String>,
    /// Client FQDN (option 39).
    pub client_fqdn: Option<ClientFqdn>,
    /// Any other option, raw, in order (IA_TA and IA_PD among them).
    pub other_options: Vec<(u16, Vec<u8>)>,
}

fn once<T>(slot: &mut Option<T>, v: T) -> Result<()> {
    if slot.is_some() {
        return Err(Error::Malformed);
    }
    *slot = Some(v);
    Ok(())
}

fn duid(v: &[u8]) -> Result<Vec<u8>> {
    if (3..=MAX_DUID_LEN).contains(&v.len()) {
        Ok(v.to_vec())
    } else {
        Err(Error::Malformed)
    }
}

impl Dhcpv6Repr {
    /// An empty message of type `t`.
    pub fn new(t: MessageType, transaction_id: u32) -> Dhcpv6Repr {
        Dhcpv6Repr {
            message_type: Some(t),
            transaction_id: transaction_id & 0x00ff_ffff,
            ..Dhcpv6Repr::default()
        }
    }

    /// Parses a checked message (relay messages are not supported).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Dhcpv6Repr> {
        packet.check_len()?;
        let t = packet.msg_type();
        if matches!(t, MessageType::RelayForw | MessageType::RelayRepl) {
            return Err(Error::Unsupported);
        }
        let mut r = Dhcpv6Repr::new(t, packet.transaction_id());
        let (mut status, mut elapsed, mut pref) = (None, None, None);
        let (mut dns, mut domains, mut oro, mut fqdn) = (None, None, None, None);
        for o in packet.option_iter() {
            let (c, v) = o.map_err(|_| Error::Malformed)?;
            match c {
                code::CLIENTID => once(&mut r.client_id, duid(v)?)?,
                code::SERVERID => once(&mut r.server_id, duid(v)?)?,
                code::IA_NA => r.ia_na.push(IaNa::parse(v)?),
                code::ORO => {
                    if v.len() % 2 != 0 {
                        return Err(Error::Malformed);
                    }
                    let codes = v
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    once(&mut oro, codes)?;
                }
                code::ELAPSED_TIME => match v {
                    [a, b] => once(&mut elapsed, u16::from_be_bytes([*a, *b]))?,
                    _ => return Err(Error::Malformed),
                },
                code::PREFERENCE => match v {
                    [p] => once(&mut pref, *p)?,
                    _ => return Err(Error::Malformed),
                },
                code::RAPID_COMMIT => {
                    if !v.is_empty() || r.rapid_commit {
                        return Err(Error::Malformed);
                    }
                    r.rapid_commit = true;
                }
                code::STATUS_CODE => once(&mut status, StatusCode::parse(v)?)?,
                code::DNS_SERVERS => {
                    if v.len() % 16 != 0 {
                        return Err(Error::Malformed);
                    }
                    let list = (0..v.len() / 16).map(|i| addr_at(v, i * 16)).collect();
                    once(&mut dns, list)?;
                }
                code::DOMAIN_LIST => once(&mut domains, parse_domains(v)?)?,
                code::CLIENT_FQDN => once(&mut fqdn, ClientFqdn::parse(v)?)?,
                code::IA_TA if v.len() < 4 => return Err(Error::Malformed),
                code::IA_PD if v.len() < 12 => return Err(Error::Malformed),
                other => r.other_options.push((other, v.to_vec())),
            }
        }
        r.status = status;
        r.elapsed_time = elapsed;
        r.preference = pref;
        r.dns_servers = dns.unwrap_or_default();
        r.domain_list = domains.unwrap_or_default();
        r.oro = oro.unwrap_or_default();
        r.client_fqdn = fqdn;
        Ok(r)
    }

    /// Whether the message holds an IA of any kind (IA_NA, IA_TA, IA_PD).
    pub fn has_ia(&self) -> bool {
        !self.ia_na.is_empty()
            || self
                .other_options
                .iter()
                .any(|(c, _)| *c == code::IA_TA || *c == code::IA_PD)
    }

    /// The message as bytes: header, then the options in a fixed order (identifiers,
    /// status, IAs, the rest). Domain names that do not encode ([`encode_domain`]) and
    /// options too long for their length field are left out.
    pub fn build(&self) -> Vec<u8> {
        let t = u8::from(self.message_type.unwrap_or(MessageType::Unknown(0)));
        let xid = self.transaction_id.to_be_bytes();
        let mut out = vec![t, xid[1], xid[2], xid[3]];
        if let Some(d) = &self.client_id {
            put(&mut out, code::CLIENTID, d);
        }
        if let Some(d) = &self.server_id {
            put(&mut out, code::SERVERID, d);
        }
        if let Some(s) = &self.status {
            put(&mut out, code::STATUS_CODE, &s.bytes());
        }
        for ia in &self.ia_na {
            put(&mut out, code::IA_NA, &ia.bytes());
        }
        if !self.oro.is_empty() {
            let v: Vec<u8> = self.oro.iter().flat_map(|c| c.to_be_bytes()).collect();
            put(&mut out, code::ORO, &v);
        }
        if let Some(e) = self.elapsed_time {
            put(&mut out, code::ELAPSED_TIME, &e.to_be_bytes());
        }
        if let Some(p) = self.preference {
            put(&mut out, code::PREFERENCE, &[p]);
        }
        if self.rapid_commit {
            put(&mut out, code::RAPID_COMMIT, &[]);
        }
        if !self.dns_servers.is_empty() {
            let v: Vec<u8> = self.dns_servers.iter().flat_map(|a| a.octets()).collect();
            put(&mut out, code::DNS_SERVERS, &v);
        }
        let domains: Vec<u8> = self
            .domain_list
            .iter()
            .filter_map(|d| encode_domain(d))
            .flatten()
            .collect();
        if !domains.is_empty() {
            put(&mut out, code::DOMAIN_LIST, &domains);
        }
        if let Some(v) = self.client_fqdn.as_ref().and_then(ClientFqdn::bytes) {
            put(&mut out, code::CLIENT_FQDN, &v);
        }
        for (c, v) in &self.other_options {
            put(&mut out, *c, v);
        }
        out
    }

    /// The length of [`Dhcpv6Repr::build`]'s output.
    pub fn buffer_len(&self) -> usize {
        self.build().len()
    }

    /// Writes the message into the first `buffer_len()` bytes of `packet`'s buffer.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let bytes = self.build();
        let b = packet.buffer.as_mut();
        let n = bytes.len().min(b.len());
        b[..n].copy_from_slice(&bytes[..n]);
    }

    /// A server's answer to `req`: type `t`, the client's transaction id and client
    /// identifier, and `server_id`. The rest is the caller's to fill in.
    pub fn reply_to(req: &Dhcpv6Repr, t: MessageType, server_id: &[u8]) -> Dhcpv6Repr {
        Dhcpv6Repr {
            client_id: req.client_id.clone(),
            server_id: Some(server_id.to_vec()),
            ..Dhcpv6Repr::new(t, req.transaction_id)
        }
    }
}

/// A DHCPv6 message in an Ethernet/IPv6/UDP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFrame {
    /// The Ethernet header.
    pub ethernet: EthernetRepr,
    /// The IPv6 header.
    pub ipv6: Ipv6Repr,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// The message.
    pub dhcp: Dhcpv6Repr,
}

/// Parses a whole frame: Ethernet, IPv6 with UDP as its next header (no extension
/// headers), a UDP checksum that holds, and the message.
pub fn parse_frame(frame: &[u8]) -> Result<ParsedFrame> {
    let eth = ethernet::Frame::new_checked(frame)?;
    let ethernet = EthernetRepr::parse(&eth)?;
    if ethernet.ethertype != EtherType::Ipv6 {
        return Err(Error::Unsupported);
    }
    let ip = ipv6::Packet::new_checked(eth.payload())?;
    let ipv6 = Ipv6Repr::parse(&ip)?;
    if ipv6.next_header != IpProtocol::Udp {
        return Err(Error::Unsupported);
    }
    let u = udp::Packet::new_checked(ip.payload())?;
    let udp = UdpRepr::parse(&u, &IpAddr::V6(ipv6.src_addr), &IpAddr::V6(ipv6.dst_addr))?;
    let dhcp = Dhcpv6Repr::parse(&Packet::new_checked(udp.payload)?)?;
    Ok(ParsedFrame {
        ethernet,
        ipv6,
        src_port: udp.src_port,
        dst_port: udp.dst_port,
        dhcp,
    })
}

/// A server's reply in a frame: from `server` (MAC and link-local address), UDP 547 to
/// 546, to the client's MAC and the address its message came from.
pub fn reply_frame(
    reply: &Dhcpv6Repr,
    server: (EthernetAddress, Ipv6Addr),
    client: (EthernetAddress, Ipv6Addr),
    vlan: Option<VlanTag>,
) -> Vec<u8> {
    let body = reply.build();
    let (src, dst) = (IpAddr::V6(server.1), IpAddr::V6(client.1));
    let udp = UdpRepr {
        src_port: SERVER_PORT,
        dst_port: CLIENT_PORT,
        payload: &body,
    }
    .build(&src, &dst);
    let ip = Ipv6Repr::new(server.1, client.1, IpProtocol::Udp, 0, HOP_LIMIT).build(&udp);
    EthernetRepr {
        src_addr: server.0,
        dst_addr: client.0,
        vlan,
        ethertype: EtherType::Ipv6,
    }
    .build(&ip)
}
