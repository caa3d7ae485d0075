//! The DNS responder: a query punted by its port's flow ([`super`]) is answered from the
//! local view ([`super::names`]), back out of the asking port from the DNS address it was
//! sent to. Answers are at most 512 bytes (TC set when cut; no EDNS). A question that is
//! not an internal name becomes a [`Forward`] for the runtime, which asks the upstream
//! resolvers and hands their answer to [`relay`]; with no upstream it is REFUSED. Sans-IO.
//! A per-port token bucket keeps one VM from starving the others: past it, the port's
//! queries are dropped in the switch for a while (a one-off drop flow), logged once.

use super::names::{self, Resolution};
use crate::apps::rate::Limiter;
use crate::apps::{Handler, Host, Punted};
use crate::view::View;
use model::Port;
use openflow::action::{Action, port as of_port};
use openflow::flow::NO_BUFFER;
use openflow::packet::{PacketIn, PacketOut, PipelineFields};
use packet::dns::{self, Message, Response, rcode};
use packet::ethernet::{self, EtherType, EthernetRepr};
use packet::udp::UdpRepr;
use packet::{EthernetAddress, IpProtocol, ipv4, ipv6, udp};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The responder's settings (`dragonflow controller --domain`, `--dns-upstream`,
/// `--dns-rate-limit`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The internal domain (lowercase; a final dot or not).
    pub domain: String,
    /// Resolvers for every other name, tried in order; none: REFUSED.
    pub upstreams: Vec<SocketAddr>,
    /// Queries a port may send per second (and in a burst).
    pub rate_limit: u32,
    /// How long a port past its rate is blocked in the switch.
    pub block: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            domain: model::dns::DEFAULT_DOMAIN.into(),
            upstreams: Vec::new(),
            rate_limit: 100,
            block: Duration::from_secs(1),
        }
    }
}

/// What the responder did, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Internal names answered (names and no-data answers).
    pub answered: u64,
    /// Internal names that do not exist (for the asker).
    pub nxdomain: u64,
    /// Questions handed to the runtime for the upstream resolvers.
    pub forwarded: u64,
    /// Questions refused (not internal, and no upstream).
    pub refused: u64,
    /// Frames or messages that could not be read.
    pub malformed: u64,
    /// Queries with nothing to answer (no such local port, wrong in_port, a response).
    pub ignored: u64,
    /// Queries dropped by the flood guard.
    pub rate_limited: u64,
    /// Times a port was blocked in the switch.
    pub blocks: u64,
}

/// Where an answer goes: the asking port and the two ends of its query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    /// The asking port's OpenFlow port.
    pub ofport: u32,
    /// The VLAN the answer is tagged with (the asker is a trunk subport).
    pub vlan: Option<u16>,
    pub vm_mac: EthernetAddress,
    pub vm: SocketAddr,
    pub server_mac: EthernetAddress,
    pub server_ip: IpAddr,
    /// The largest answer the asker takes (its EDNS size, else 512; at most 1232).
    pub max_len: usize,
}

/// A question for the upstream resolvers, with where their answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The query as the VM sent it (its id kept: each forward has a socket of its own).
    pub query: Vec<u8>,
    pub upstreams: Vec<SocketAddr>,
    pub to: ReplyTo,
}

/// The responder's state: settings, counters, buckets, blocks.
#[derive(Debug)]
pub struct DnsResponder {
    pub config: Config,
    /// The domain as names end: lowercase with the final dot.
    domain: String,
    pub stats: Stats,
    limiter: Limiter<u32>,
    blocked_until: HashMap<u32, Instant>,
    /// Port ids by datapath key, as last found (checked against the view on every use).
    by_key: HashMap<u32, String>,
}

/// A query as read from its frame.
struct Query {
    vm_mac: EthernetAddress,
    vm: SocketAddr,
    server_ip: IpAddr,
    payload: Vec<u8>,
}

/// Ethernet, IPv4 or IPv6 (no extension headers, no fragments), UDP with a good checksum.
fn parse_frame(frame: &[u8]) -> packet::Result<Query> {
    let eth = ethernet::Frame::new_checked(frame)?;
    let e = EthernetRepr::parse(&eth)?;
    let (src, dst, l4) = match e.ethertype {
        EtherType::Ipv4 => {
            let ip = ipv4::Packet::new_checked(eth.payload())?;
            let r = ipv4::Ipv4Repr::parse(&ip)?;
            if r.protocol != IpProtocol::Udp || r.more_frags || r.frag_offset != 0 {
                return Err(packet::Error::Unsupported);
            }
            (
                IpAddr::V4(r.src_addr),
                IpAddr::V4(r.dst_addr),
                ip.payload().to_vec(),
            )
        }
        EtherType::Ipv6 => {
            let ip = ipv6::Packet::new_checked(eth.payload())?;
            let r = ipv6::Ipv6Repr::parse(&ip)?;
            if r.next_header != IpProtocol::Udp {
                return Err(packet::Error::Unsupported);
            }
            (
                IpAddr::V6(r.src_addr),
                IpAddr::V6(r.dst_addr),
                ip.payload().to_vec(),
            )
        }
        _ => return Err(packet::Error::Unsupported),
    };
    let u = udp::Packet::new_checked(&l4[..])?;
    let r = UdpRepr::parse(&u, &src, &dst)?;
    if r.dst_port != dns::PORT {
        return Err(packet::Error::Unsupported);
    }
    Ok(Query {
        vm_mac: e.src_addr,
        vm: SocketAddr::new(src, r.src_port),
        server_ip: dst,
        payload: r.payload.to_vec(),
    })
}

/// The frame carrying `payload` from the DNS address to the asker.
pub fn frame(to: &ReplyTo, payload: &[u8]) -> Vec<u8> {
    let src = to.server_ip;
    let dst = to.vm.ip();
    let udp = UdpRepr {
        src_port: dns::PORT,
        dst_port: to.vm.port(),
        payload,
    }
    .build(&src, &dst);
    let (ethertype, ip) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (
            EtherType::Ipv4,
            ipv4::Ipv4Repr::new(s, d, IpProtocol::Udp, udp.len()).build(&udp),
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => (
            EtherType::Ipv6,
            ipv6::Ipv6Repr::new(s, d, IpProtocol::Udp, udp.len(), 64).build(&udp),
        ),
        // A query's two ends are of one family.
        _ => return Vec::new(),
    };
    EthernetRepr {
        src_addr: to.server_mac,
        dst_addr: to.vm_mac,
        vlan: None,
        ethertype,
    }
    .build(&ip)
}

fn packet_out(to: &ReplyTo, payload: &[u8]) -> PacketOut {
    PacketOut {
        buffer_id: NO_BUFFER,
        in_port: of_port::CONTROLLER,
        actions: {
            let mut a = to
                .vlan
                .map(super::super::deliver::push_tag)
                .unwrap_or_default();
            a.push(Action::output(to.ofport));
            a
        },
        data: frame(to, payload),
    }
}

/// The upstream's `answer` to `f`, as the packet-out to the asker: only an answer to that
/// very query (response, same id and question); one larger than the asker takes becomes
/// an empty answer with TC set.
pub fn relay(f: &Forward, answer: &[u8]) -> Option<PacketOut> {
    if !answers(&f.query, answer) {
        return None;
    }
    let q = Message::parse(&f.query).ok()?;
    let a = Message::parse(answer).ok()?;
    if answer.len() <= f.to.max_len {
        return Some(packet_out(&f.to, answer));
    }
    let mut r = Response::to(&q, a.rcode());
    r.recursion_available = true;
    let mut bytes = r.build(f.to.max_len);
    if let Some(flags) = bytes.get_mut(2) {
        *flags |= 0x02;
    }
    Some(packet_out(&f.to, &bytes))
}

impl DnsResponder {
    pub fn new(config: Config) -> DnsResponder {
        let domain = model::dns::absolute(&config.domain.to_ascii_lowercase());
        DnsResponder {
            limiter: Limiter::new(config.rate_limit),
            domain,
            config,
            stats: Stats::default(),
            blocked_until: HashMap::new(),
            by_key: HashMap::new(),
        }
    }

    /// The local port with datapath key `key` (cached; checked against the view).
    fn local_port<'v>(&mut self, view: &'v View, key: u32) -> Option<&'v Port> {
        let ours = |p: &Port| p.unique_key == key && p.binding_host_id == view.chassis;
        if let Some(p) = self.by_key.get(&key).and_then(|id| view.ports.get(id))
            && ours(p)
        {
            return Some(p);
        }
        let p = view.ports.values().find(|p| ours(p))?;
        if self.by_key.len() > 65_536 {
            self.by_key.clear();
        }
        self.by_key.insert(key, p.meta.id.clone());
        Some(p)
    }

    /// Takes a token for port `key`; past the rate, the drop flows (once per block).
    // The refusal is the answer itself (a drop flow, at most), made once per packet-in:
    // boxing it would cost more than moving it.
    #[allow(clippy::result_large_err)]
    fn admit(&mut self, now: Instant, key: u32, port: Option<&Port>) -> Result<(), Punted> {
        if self.limiter.allow(key, now) {
            return Ok(());
        }
        self.stats.rate_limited += 1;
        if self.blocked_until.get(&key).is_some_and(|t| *t > now) {
            return Err(Punted::default());
        }
        if self.blocked_until.len() > 4096 {
            self.blocked_until.retain(|_, t| *t > now);
        }
        self.blocked_until.insert(key, now + self.config.block);
        self.stats.blocks += 1;
        let seconds = u16::try_from(self.config.block.as_secs()).unwrap_or(u16::MAX);
        tracing::warn!(port = ?port.map(|p| &p.meta.id), seconds, "DNS flood: the port's queries are dropped for a while");
        Err(Punted {
            flow_mods: super::block(key, seconds).into(),
            ..Punted::default()
        })
    }

    /// Answers one punted query; the asking port is the packet's reg6 (the flow's cookie
    /// names the network). Never panics, whatever the packet holds.
    pub fn handle(&mut self, view: &View, host: &Host, now: Instant, pi: &PacketIn) -> Punted {
        let key = pi.reg(6);
        let port = self.local_port(view, key);
        if let Err(blocked) = self.admit(now, key, port) {
            return blocked;
        }
        let Some(port) = port else {
            self.stats.ignored += 1;
            return Punted::default();
        };
        let vlan = host.subports.get(&port.meta.id).map(|w| w.vid);
        let Some(ofport) = host.door(&port.meta.id) else {
            self.stats.ignored += 1;
            return Punted::default();
        };
        if pi.in_port().is_some_and(|p| p != ofport) {
            self.stats.ignored += 1;
            return Punted::default();
        }
        let Ok(query) = parse_frame(&pi.data) else {
            self.stats.malformed += 1;
            return Punted::default();
        };
        let Some(server_mac) = super::server_addresses(view, &port.network_id)
            .into_iter()
            .find_map(|(ip, mac)| (ip == query.server_ip).then_some(mac))
        else {
            self.stats.ignored += 1;
            return Punted::default();
        };
        let msg = match Message::parse(&query.payload) {
            Ok(m) if !m.is_response() => m,
            Ok(_) => {
                self.stats.ignored += 1;
                return Punted::default();
            }
            Err(_) => {
                self.stats.malformed += 1;
                return Punted::default();
            }
        };
        let to = ReplyTo {
            ofport,
            vlan,
            vm_mac: query.vm_mac,
            vm: query.vm,
            server_mac: EthernetAddress(server_mac.0),
            server_ip: query.server_ip,
            max_len: usize::from(msg.edns_udp_size().unwrap_or(0)).clamp(dns::MAX_UDP_LEN, 1232),
        };
        match self.respond(view, port, &msg, dns::MAX_UDP_LEN) {
            Outcome::Reply(bytes) => Punted {
                packets: vec![packet_out(&to, &bytes)],
                ..Punted::default()
            },
            Outcome::Elsewhere => Punted {
                dns: vec![Forward {
                    query: query.payload,
                    upstreams: self.config.upstreams.clone(),
                    to,
                }],
                ..Punted::default()
            },
        }
    }

    /// The answer to query `msg` of `port`, at most `max_len` bytes (TC set when cut), or
    /// [`Outcome::Elsewhere`] for a name the upstream resolvers answer.
    fn respond(&mut self, view: &View, port: &Port, msg: &Message, max_len: usize) -> Outcome {
        let reply = |r: Response| Outcome::Reply(r.build(max_len));
        let mut r = Response::to(msg, rcode::NOERROR);
        r.recursion_available = !self.config.upstreams.is_empty();
        if msg.opcode() != 0 {
            r.rcode = rcode::NOTIMP;
            return reply(r);
        }
        let [question] = msg.questions.as_slice() else {
            r.rcode = rcode::FORMERR;
            self.stats.malformed += 1;
            return reply(r);
        };
        match names::resolve(view, &self.domain, port, question) {
            Resolution::Answer {
                rcode: code,
                answers,
            } => {
                if code == rcode::NXDOMAIN {
                    self.stats.nxdomain += 1;
                } else {
                    self.stats.answered += 1;
                }
                tracing::debug!(port = %port.meta.id, name = ?question.name.to_lowercase_dotted(), qtype = question.qtype, rcode = code, answers = answers.len(), "DNS answered");
                r.rcode = code;
                r.authoritative = true;
                r.answers = answers;
                reply(r)
            }
            Resolution::Elsewhere if self.config.upstreams.is_empty() => {
                self.stats.refused += 1;
                r.rcode = rcode::REFUSED;
                reply(r)
            }
            Resolution::Elsewhere => {
                self.stats.forwarded += 1;
                tracing::debug!(port = %port.meta.id, name = ?question.name.to_lowercase_dotted(), "DNS forwarded");
                Outcome::Elsewhere
            }
        }
    }

    /// Answers one query that came over TCP (its length prefix taken off) from the local
    /// port with key `key`: the key comes from the connection's source address, which the
    /// switch wrote (`apps::metadata`), never from the bytes. No size limit but the
    /// message's own (64 KiB); the rate is the port's, as over UDP, but past it the
    /// runtime closes the connection rather than blocking the port in the switch.
    pub fn answer_tcp(
        &mut self,
        view: &View,
        host: &Host,
        now: Instant,
        key: u32,
        query: &[u8],
    ) -> TcpAnswer {
        let Some(port) = crate::apps::metadata::serve::local_port(view, host, key) else {
            self.stats.ignored += 1;
            return TcpAnswer::Close;
        };
        if !self.limiter.allow(key, now) {
            self.stats.rate_limited += 1;
            return TcpAnswer::Close;
        }
        let msg = match Message::parse(query) {
            Ok(m) if !m.is_response() => m,
            Ok(_) => {
                self.stats.ignored += 1;
                return TcpAnswer::Close;
            }
            Err(_) => {
                self.stats.malformed += 1;
                return TcpAnswer::Close;
            }
        };
        match self.respond(view, port, &msg, usize::from(u16::MAX)) {
            Outcome::Reply(bytes) => TcpAnswer::Reply(bytes),
            Outcome::Elsewhere => TcpAnswer::Forward {
                query: query.to_vec(),
                upstreams: self.config.upstreams.clone(),
            },
        }
    }
}

/// What [`DnsResponder::respond`] decided.
enum Outcome {
    Reply(Vec<u8>),
    Elsewhere,
}

/// The answer to a query over TCP, for the runtime (`dns_tcp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpAnswer {
    /// The answer to write back.
    Reply(Vec<u8>),
    /// Ask the upstream resolvers (over TCP) and pass on what [`answers`] accepts.
    Forward {
        query: Vec<u8>,
        upstreams: Vec<SocketAddr>,
    },
    /// Nothing to answer (unknown asker, garbage, a response, past the rate): close.
    Close,
}

/// Whether `answer` answers `query`: a response with its id and question.
pub fn answers(query: &[u8], answer: &[u8]) -> bool {
    let (Ok(q), Ok(a)) = (Message::parse(query), Message::parse(answer)) else {
        return false;
    };
    a.is_response() && a.id == q.id && a.questions.first() == q.questions.first()
}

impl Handler for DnsResponder {
    fn packet_in(
        &mut self,
        view: &View,
        host: &mut Host,
        now: Instant,
        pi: &PacketIn,
        _network_key: u32,
    ) -> Punted {
        self.handle(view, host, now, pi)
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let s = &self.stats;
        vec![
            ("answered", s.answered),
            ("nxdomain", s.nxdomain),
            ("forwarded", s.forwarded),
            ("refused", s.refused),
            ("malformed", s.malformed),
            ("ignored", s.ignored),
            ("rate_limited", s.rate_limited),
            ("blocks", s.blocks),
        ]
    }
}
