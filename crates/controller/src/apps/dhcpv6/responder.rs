//! The DHCPv6 responder (RFC 8415): a VM's message, punted by its port's flow ([`super`]),
//! is answered from the local view. As for DHCPv4, no leases are kept: the binding of a
//! port is its Neutron fixed IPs on the network's `dhcpv6-stateful` subnets, computed
//! afresh for every message, so an address changed through the API is given at the next
//! Renew (the old one with lifetimes 0). Stateless subnets get configuration only
//! (Information-request).
//!
//! - **Server identity.** The network's DHCP port (device owner `network:dhcp`, the
//!   network's project) is the server: its MAC is the replies' source, its EUI-64
//!   link-local address their source address, and its DUID-LL (type 3, hardware type 1,
//!   that MAC) the Server Identifier. One DHCP port per network makes the DUID stable per
//!   network for the port's life. No DHCP port: no answers (as DHCPv4).
//! - **Lifetimes.** Preferred = `--dhcp-lease-seconds` (DHCPv4's lease, default one day),
//!   valid = twice that, T1 = ½ and T2 = 0.8 of the preferred lifetime (RFC 8415 21.4's
//!   recommendation): the client renews well before its address is deprecated, and an
//!   address stays valid for a lease's time after renewals stop (a controller away).
//! - **Checks and answers** are the protocol's, in `packet::dhcpv6_server` (RFC 8415 16
//!   and 18.3): no Client Identifier (but Information-request) or a Server Identifier
//!   where none may be (Solicit, Confirm, Rebind) drops the message; Request, Renew,
//!   Release and Decline must name this server; an Information-request naming another
//!   server or holding an IA is dropped. This module only works out the port's binding.
//!
//! Replies go back out of the port the message came in by, from the server's link-local
//! address to the address and MAC the message came from, UDP 547 → 546. The flood guard is
//! DHCPv4's ([`FloodGuard`], same settings), blocking the port in table 31.

use crate::apps::here::LocalPorts;
use crate::apps::port_security::link_local;
use crate::apps::rate::{Admit, FloodGuard};
use crate::apps::{Handler, Host, Punted};
use crate::view::View;
use model::{ExtraDhcpOpt, MacAddr, Port, Subnet};
use openflow::action::port as of_port;
use openflow::flow::NO_BUFFER;
use openflow::oxm::Field;
use openflow::packet::{PacketIn, PacketOut};
use packet::EthernetAddress;
use packet::dhcpv6::{self, Dhcpv6Repr, MessageType, code, encode_domain};
use packet::dhcpv6_server::{self as server_core, Binding, Lifetimes, Options};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// The responder's settings, taken from DHCPv4's (`--dhcp-rate-limit`,
/// `--dhcp-block-seconds`, `--dhcp-lease-seconds`, `--domain`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Messages a port may send per second (and in a burst); 0 turns the guard off.
    pub rate_limit: u32,
    /// How long a port past its rate is blocked in the switch.
    pub block: Duration,
    /// The preferred lifetime; valid is twice it, T1 half, T2 0.8 of it.
    pub lease_seconds: u32,
    /// The domain search list's default entry (option 24); empty: none.
    pub domain: String,
}

impl From<&crate::apps::dhcp::responder::Config> for Config {
    fn from(c: &crate::apps::dhcp::responder::Config) -> Config {
        Config {
            rate_limit: c.rate_limit,
            block: c.block,
            lease_seconds: c.lease_seconds,
            domain: c.domain.clone(),
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config::from(&crate::apps::dhcp::responder::Config::default())
    }
}

/// What the responder did, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub advertises: u64,
    /// Replies of every kind (to Request, Renew, Rebind, Confirm, Release, Decline,
    /// Information-request, rapid-commit Solicit).
    pub replies: u64,
    pub releases: u64,
    pub declines: u64,
    /// Messages that could not be parsed (or were not DHCPv6 client messages).
    pub malformed: u64,
    /// Messages with nothing to answer (no such local port, no DHCPv6 subnet or DHCP
    /// port, another server's, missing identifiers).
    pub ignored: u64,
    /// Messages dropped by the flood guard.
    pub rate_limited: u64,
    /// Times a port was blocked in the switch.
    pub blocks: u64,
}

/// The server of a network: the DHCP port's MAC, its link-local address and DUID-LL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub mac: MacAddr,
    pub link_local: Ipv6Addr,
    pub duid: Vec<u8>,
}

/// The server of the port's network, if it has a DHCP port.
pub fn server(view: &View, network_id: &str) -> Option<Server> {
    let network = view.networks.get(network_id)?;
    let d = view
        .ports_of(network_id)
        .find(|d| crate::apps::dhcp::responder::is_dhcp_port(network, d))?;
    Some(Server {
        mac: d.mac_address,
        link_local: link_local(d.mac_address),
        duid: dhcpv6::duid_ll(EthernetAddress(d.mac_address.0)),
    })
}

/// An answer and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub dhcp: Dhcpv6Repr,
    pub server: Server,
}

/// The lifetimes for `cfg`: preferred = the lease, valid twice it, T1 ½, T2 0.8 of it.
pub fn lifetimes(cfg: &Config) -> Lifetimes {
    let p = cfg.lease_seconds.max(1);
    Lifetimes {
        preferred: p,
        valid: p.saturating_mul(2),
        t1: p / 2,
        // At most 0.8 × u32::MAX.
        t2: (u64::from(p) * 4 / 5) as u32,
    }
}

/// The port's binding: its IPv6 addresses on the network's stateful DHCPv6 subnets.
pub fn addresses(view: &View, port: &Port) -> Vec<Ipv6Addr> {
    let stateful: Vec<&Subnet> = super::subnets(view, &port.network_id)
        .into_iter()
        .filter(|s| s.ipv6_address_mode.as_deref() == Some("dhcpv6-stateful"))
        .collect();
    port.fixed_ips
        .iter()
        .filter(|f| stateful.iter().any(|s| s.meta.id == f.subnet_id))
        .filter_map(|f| match f.ip_address {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        })
        .collect()
}

/// The domain search list of the port (option 24). The hook for the DNS work: today the
/// controller's `--domain`; a network's `dns_domain` belongs here once the model has it.
pub fn domain_search(_view: &View, _port: &Port, cfg: &Config) -> Vec<String> {
    [&cfg.domain]
        .into_iter()
        .filter(|d| encode_domain(d).is_some())
        .cloned()
        .collect()
}

/// The port's name for the Client FQDN option: the `dns_assignment` name of the address
/// DHCPv6 gives it (its first IPv6 address when it gets none: stateless), as dnsmasq
/// hands out the names of Neutron's host file. A name that does not encode: none.
pub fn fqdn(view: &View, cfg: &Config, port: &Port) -> Option<String> {
    let names = model::dns::assignment(port, &cfg.domain);
    let given = addresses(view, port);
    names
        .iter()
        .find(|a| matches!(a.ip_address, IpAddr::V6(ip) if given.contains(&ip)))
        .or_else(|| names.iter().find(|a| a.ip_address.is_ipv6()))
        .map(|a| a.fqdn.clone())
        .filter(|n| encode_domain(n).is_some())
}

/// The configuration options of a reply to `port`: DNS servers of its DHCPv6 subnets (the
/// ones it has an address on, else all of the network's), the domain search list, then
/// its `extra_dhcp_opts` of version 6 over them.
pub fn options(view: &View, cfg: &Config, port: &Port) -> Options {
    let mut o = Options::default();
    let all = super::subnets(view, &port.network_id);
    let mine: Vec<&Subnet> = all
        .iter()
        .copied()
        .filter(|s| port.fixed_ips.iter().any(|f| f.subnet_id == s.meta.id))
        .collect();
    let from = if mine.is_empty() { all } else { mine };
    for s in from {
        for d in &s.dns_nameservers {
            if let IpAddr::V6(a) = d
                && !o.dns_servers.contains(a)
            {
                o.dns_servers.push(*a);
            }
        }
    }
    o.domain_list = domain_search(view, port, cfg);
    o.fqdn = fqdn(view, cfg, port);
    for opt in port.extra_dhcp_opts.iter().filter(|o| o.ip_version == 6) {
        if !extra_option(&mut o, opt) {
            tracing::debug!(port = %port.meta.id, name = %opt.opt_name, value = %opt.opt_value, "extra_dhcp_opt (IPv6) not understood; left out");
        }
    }
    o
}

/// dnsmasq's DHCPv6 option names, as Neutron's `extra_dhcp_opts` use them.
const OPTION_NAMES: &[(&str, u16)] = &[
    ("dns-server", code::DNS_SERVERS),
    ("domain-search", code::DOMAIN_LIST),
    ("sntp-server", 31),
    ("information-refresh-time", code::INFORMATION_REFRESH_TIME),
    ("ntp-server", 56),
    ("bootfile-url", 59),
];

/// A comma list of IPv6 addresses, dnsmasq's brackets allowed (`[2001:db8::1]`).
fn ip_list(v: &str) -> Option<Vec<Ipv6Addr>> {
    v.split(',')
        .map(|s| s.trim().trim_start_matches('[').trim_end_matches(']'))
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

/// Applies one `extra_dhcp_opt` (name or number, dnsmasq's `option6:` prefix allowed)
/// over the computed options; false when it is not understood.
fn extra_option(r: &mut Options, opt: &ExtraDhcpOpt) -> bool {
    let name = opt.opt_name.trim();
    let name = name
        .strip_prefix("option6:")
        .or_else(|| name.strip_prefix("option:"))
        .unwrap_or(name);
    let value = opt.opt_value.trim();
    let c = match name.parse::<u16>() {
        Ok(c) => c,
        Err(_) => match OPTION_NAMES.iter().find(|(n, _)| *n == name) {
            Some((_, c)) => *c,
            None => return false,
        },
    };
    if server_core::server_only(c) {
        return false;
    }
    let bytes = match c {
        // An empty list takes the option away.
        code::DNS_SERVERS => return ip_list(value).map(|l| r.dns_servers = l).is_some(),
        code::DOMAIN_LIST => {
            let names: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if names.iter().any(|n| encode_domain(n).is_none()) {
                return false;
            }
            r.domain_list = names;
            return true;
        }
        code::INFORMATION_REFRESH_TIME => match value.parse::<u32>() {
            Ok(t) => t.to_be_bytes().to_vec(),
            Err(_) => return false,
        },
        // NTP servers (RFC 5908): one server-address suboption (1) per address.
        56 => match ip_list(value) {
            Some(l) if !l.is_empty() => l
                .iter()
                .flat_map(|a| [&[0u8, 1, 0, 16][..], &a.octets()].concat())
                .collect(),
            _ => return false,
        },
        _ => match ip_list(value) {
            Some(l) if !l.is_empty() => l.iter().flat_map(|a| a.octets()).collect(),
            _ => value.as_bytes().to_vec(),
        },
    };
    if bytes.len() > usize::from(u16::MAX) {
        return false;
    }
    r.other.retain(|(o, _)| *o != c);
    r.other.push((c, bytes));
    true
}

/// The answer to `req` from `port` (a local port), or `None` when there is none to give:
/// the port's binding from the view, answered by [`server_core::answer`].
pub fn answer(view: &View, cfg: &Config, port: &Port, req: &Dhcpv6Repr) -> Option<Reply> {
    let nets = super::subnets(view, &port.network_id);
    if nets.is_empty() {
        return None;
    }
    let server = server(view, &port.network_id)?;
    let links: Vec<(Ipv6Addr, u8)> = nets
        .iter()
        .filter_map(|s| match s.cidr {
            ipnet::IpNet::V6(n) => Some((n.network(), n.prefix_len())),
            ipnet::IpNet::V4(_) => None,
        })
        .collect();
    let addresses = addresses(view, port);
    let options = options(view, cfg, port);
    let binding = Binding {
        server_id: &server.duid,
        addresses: &addresses,
        links: &links,
        lifetimes: lifetimes(cfg),
        options: &options,
    };
    let dhcp = server_core::answer(&binding, req)?;
    Some(Reply { dhcp, server })
}

impl Dhcpv6 {
    pub fn new(config: Config) -> Dhcpv6 {
        Dhcpv6 {
            config,
            ..Dhcpv6::default()
        }
    }

    /// Answers one punted message from the port with key `key`. Never panics, whatever
    /// the packet holds.
    pub fn handle(
        &mut self,
        view: &View,
        host: &Host,
        now: Instant,
        pi: &PacketIn,
        key: u32,
    ) -> Punted {
        let port = self.ports.get(view, key);
        if let Err(blocked) = self.admit(now, key, port) {
            return blocked;
        }
        let Some(port) = port else {
            self.stats.ignored += 1;
            return Punted::default();
        };
        // The reply goes back to the port the message came in by, which must be the port
        // the flow was for.
        let (Some(ofport), Some(out)) = (
            host.door(&port.meta.id),
            super::super::deliver::to_local(host, &port.meta.id),
        ) else {
            self.stats.ignored += 1;
            return Punted::default();
        };
        if pi
            .match_
            .get(Field::InPort)
            .is_some_and(|f| f.value != u128::from(ofport))
        {
            self.stats.ignored += 1;
            return Punted::default();
        }
        let frame = match dhcpv6::parse_frame(&pi.data) {
            Ok(f)
                if f.src_port == dhcpv6::CLIENT_PORT
                    && f.dst_port == dhcpv6::SERVER_PORT
                    && f.dhcp.message_type.is_some_and(MessageType::from_client)
                    && f.ethernet.src_addr.is_unicast()
                    && !f.ipv6.src_addr.is_unspecified()
                    && !f.ipv6.src_addr.is_multicast() =>
            {
                f
            }
            Ok(_) => return self.malformed(port, "not a DHCPv6 client message"),
            Err(e) => return self.malformed(port, &e.to_string()),
        };
        let req = &frame.dhcp;
        let Some(reply) = answer(view, &self.config, port, req) else {
            self.stats.ignored += 1;
            tracing::debug!(port = %port.meta.id, request = ?req.message_type, "DHCPv6 message not answered");
            return Punted::default();
        };
        match req.message_type {
            Some(MessageType::Release) => {
                self.stats.releases += 1;
                tracing::debug!(port = %port.meta.id, "DHCPv6 release");
            }
            Some(MessageType::Decline) => {
                // Someone else holds the port's address: worth an operator's look.
                self.stats.declines += 1;
                tracing::warn!(port = %port.meta.id, "DHCPv6 decline: the address is in use by another machine");
            }
            _ => {}
        }
        if reply.dhcp.message_type == Some(MessageType::Advertise) {
            self.stats.advertises += 1;
        } else {
            self.stats.replies += 1;
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            let given: Vec<String> = reply
                .dhcp
                .ia_na
                .iter()
                .flat_map(|ia| &ia.addresses)
                .filter(|a| a.valid > 0)
                .map(|a| a.addr.to_string())
                .collect();
            tracing::debug!(port = %port.meta.id, request = ?req.message_type, reply = ?reply.dhcp.message_type, addresses = %given.join(","), "DHCPv6 answered");
        }
        let data = dhcpv6::reply_frame(
            &reply.dhcp,
            (EthernetAddress(reply.server.mac.0), reply.server.link_local),
            (frame.ethernet.src_addr, frame.ipv6.src_addr),
            None,
        );
        Punted {
            packets: vec![PacketOut {
                buffer_id: NO_BUFFER,
                in_port: of_port::CONTROLLER,
                actions: out,
                data,
            }],
            ..Punted::default()
        }
    }

    fn malformed(&mut self, port: &Port, why: &str) -> Punted {
        self.stats.malformed += 1;
        // Logged at 1, 2, 4, 8, ... so a VM sending garbage cannot fill the log.
        if self.stats.malformed.is_power_of_two() {
            tracing::warn!(port = %port.meta.id, why, total = self.stats.malformed, "malformed DHCPv6 packets dropped");
        }
        Punted::default()
    }

    /// DHCPv4's flood guard with DHCPv6's block flow.
    // The refusal is the answer itself (a drop flow, at most), made once per packet-in:
    // boxing it would cost more than moving it.
    #[allow(clippy::result_large_err)]
    fn admit(&mut self, now: Instant, key: u32, port: Option<&Port>) -> Result<(), Punted> {
        let seconds = match self
            .guard
            .admit(now, key, self.config.rate_limit, self.config.block)
        {
            Admit::Pass => return Ok(()),
            Admit::Dropped => {
                self.stats.rate_limited += 1;
                return Err(Punted::default());
            }
            Admit::Block(s) => s,
        };
        self.stats.rate_limited += 1;
        self.stats.blocks += 1;
        tracing::warn!(
            port = port.map(|p| p.meta.id.as_str()).unwrap_or("?"),
            port_key = key,
            rate = self.config.rate_limit,
            seconds,
            "DHCPv6 flood: the port's DHCPv6 is blocked in the switch"
        );
        Err(Punted {
            flow_mods: vec![super::block(key, seconds)],
            ..Punted::default()
        })
    }
}

/// The responder's state: settings, counters, the flood guard and the port cache.
#[derive(Debug, Default)]
pub struct Dhcpv6 {
    pub config: Config,
    pub stats: Stats,
    guard: FloodGuard,
    ports: LocalPorts,
}

impl Handler for Dhcpv6 {
    fn packet_in(
        &mut self,
        view: &View,
        host: &mut Host,
        now: Instant,
        pi: &PacketIn,
        key: u32,
    ) -> Punted {
        self.handle(view, host, now, pi, key)
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let s = &self.stats;
        vec![
            ("advertises", s.advertises),
            ("replies", s.replies),
            ("releases", s.releases),
            ("declines", s.declines),
            ("malformed", s.malformed),
            ("ignored", s.ignored),
            ("rate_limited", s.rate_limited),
            ("blocks", s.blocks),
        ]
    }
}
