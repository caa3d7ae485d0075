//! The DHCPv4 responder: a VM's request, punted by its port's flow ([`super`]), is
//! answered from the local view with the port's Neutron configuration, from the network's
//! DHCP port (its MAC, and its address in the client's subnet). No leases are kept: the
//! address is the port's, so every answer is computed afresh (an address changed through
//! the API is NAKed at the next renewal and the new one offered). A per-port token bucket
//! guards the controller from a flooding VM: past it, a drop flow with a hard timeout
//! blocks the port's DHCP in the switch for a while, logged once per block.

use crate::apps::here::LocalPorts;
use crate::apps::rate::{Admit, FloodGuard};
use crate::apps::{Handler, Host, Punted};
use crate::view::View;
use model::{ExtraDhcpOpt, MacAddr, Network, Port, Subnet, owner};
use openflow::action::port as of_port;
use openflow::flow::NO_BUFFER;
use openflow::oxm::Field;
use openflow::packet::{PacketIn, PacketOut};
use packet::EthernetAddress;
use packet::dhcpv4::{self, ClasslessRoute, DhcpRepr, MessageType, Op};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// The responder's settings (`dragonflow controller --dhcp-*`, `--dns-servers`, `--domain`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Requests a port may send per second (and in a burst); 0 turns the guard off.
    pub rate_limit: u32,
    /// How long a port past its rate is blocked in the switch.
    pub block: Duration,
    /// DNS servers for subnets that name none; with none either, the DHCP port's address,
    /// where internal DNS answers (`apps::dns`).
    pub dns_servers: Vec<Ipv4Addr>,
    /// Lease time; renewal (T1) at half of it, rebinding (T2) at seven eighths.
    pub lease_seconds: u32,
    /// Domain name (option 15); empty: none.
    pub domain: String,
    /// Whether this host serves the metadata service: then option 121 carries the route
    /// to 169.254.169.254 where Neutron's DHCP agent puts it ([`metadata_route`]).
    pub metadata_route: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            rate_limit: 3,
            block: Duration::from_secs(100),
            dns_servers: Vec::new(),
            lease_seconds: 86_400,
            domain: "openstacklocal".into(),
            metadata_route: true,
        }
    }
}

/// What the responder did, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub offers: u64,
    pub acks: u64,
    pub naks: u64,
    pub releases: u64,
    pub declines: u64,
    /// Requests that could not be parsed (or were not DHCP client requests).
    pub malformed: u64,
    /// Requests with nothing to answer (no such local port, no DHCP subnet or DHCP port,
    /// a REQUEST for another server, an unknown message type).
    pub ignored: u64,
    /// Requests dropped by the flood guard.
    pub rate_limited: u64,
    /// Times a port was blocked in the switch.
    pub blocks: u64,
}

/// The responder's state: settings, counters and the per-port buckets.
#[derive(Debug, Default)]
pub struct Dhcp {
    pub config: Config,
    pub stats: Stats,
    guard: FloodGuard,
    ports: LocalPorts,
}

/// An answer: the reply and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub dhcp: DhcpRepr,
    pub server_mac: MacAddr,
    pub server_ip: Ipv4Addr,
}

/// What a port gets on its network: its address in a DHCP-enabled subnet and the DHCP
/// port's address there.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub network: &'a Network,
    pub subnet: &'a Subnet,
    pub ip: Ipv4Addr,
    pub server_ip: Ipv4Addr,
    pub server_mac: MacAddr,
    /// No router interface holds the subnet's gateway address (Neutron's "isolated").
    pub isolated: bool,
}

/// The port's lease: its first IPv4 address on a DHCP-enabled subnet of its network that
/// has a DHCP port address.
pub fn lease<'a>(view: &'a View, port: &Port) -> Option<Lease<'a>> {
    let network = view.networks.get(&port.network_id)?;
    port.fixed_ips.iter().find_map(|f| {
        let IpAddr::V4(ip) = f.ip_address else {
            return None;
        };
        let subnet = view
            .subnets
            .get(&f.subnet_id)
            .filter(|s| s.enable_dhcp && network.subnets.contains(&s.meta.id))?;
        let (server_mac, server_ip) = view
            .ports_of(&network.meta.id)
            .filter(|d| is_dhcp_port(network, d))
            .find_map(|d| {
                d.fixed_ips.iter().find_map(|g| match g.ip_address {
                    IpAddr::V4(a) if g.subnet_id == f.subnet_id => Some((d.mac_address, a)),
                    _ => None,
                })
            })?;
        let isolated = !view.ports_of(&network.meta.id).any(|r| {
            r.device_owner.starts_with("network:router_interface")
                && r.fixed_ips.iter().any(|g| {
                    g.subnet_id == subnet.meta.id && Some(g.ip_address) == subnet.gateway_ip
                })
        });
        Some(Lease {
            network,
            subnet,
            ip,
            server_ip,
            server_mac,
            isolated,
        })
    })
}

/// Whether `d` is the network's DHCP port: owned by `network:dhcp` and by the network's
/// project (a tenant sharing the network cannot make its own port the server).
pub fn is_dhcp_port(network: &Network, d: &Port) -> bool {
    d.device_owner == owner::DHCP && d.meta.project_id == network.meta.project_id
}

fn mask(prefix_len: u8) -> Ipv4Addr {
    Ipv4Addr::from(
        u32::MAX
            .checked_shl(32 - u32::from(prefix_len))
            .unwrap_or(0),
    )
}

const METADATA_IP: Ipv4Addr = crate::apps::metadata::IP;

/// Where the route to 169.254.169.254/32 goes, by the rule of Neutron's DHCP agent with
/// `enable_isolated_metadata`: an isolated subnet by the DHCP port's address, a routed one
/// with a gateway by the gateway. This host's switch takes the requests before L2 and L3
/// either way; the route only makes the VM send them (a subnet with a router and no
/// gateway gets none, as in Neutron: its VMs reach the address by their own routes).
pub fn metadata_route(l: &Lease<'_>, gateway: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
    if l.isolated {
        Some(l.server_ip)
    } else {
        gateway
    }
}

/// The configuration options of a reply to `port` (with lease times unless `inform`).
fn configure(r: &mut DhcpRepr, cfg: &Config, l: &Lease<'_>, port: &Port, inform: bool) {
    let v4 = |a: &IpAddr| match a {
        IpAddr::V4(a) => Some(*a),
        IpAddr::V6(_) => None,
    };
    r.subnet_mask = Some(mask(l.subnet.cidr.prefix_len()));
    let gateway = l.subnet.gateway_ip.as_ref().and_then(v4);
    r.router = gateway.into_iter().collect();
    r.dns_servers = l.subnet.dns_nameservers.iter().filter_map(v4).collect();
    if r.dns_servers.is_empty() {
        r.dns_servers = cfg.dns_servers.clone();
    }
    if r.dns_servers.is_empty() {
        // As Neutron's dnsmasq offers itself: this host's controller answers DNS at the
        // DHCP port's address (`apps::dns`).
        r.dns_servers = vec![l.server_ip];
    }
    r.domain_name = (!cfg.domain.is_empty()).then(|| cfg.domain.clone());
    // The address's name from the port's dns_assignment: its dns_name (the host label of
    // a fully qualified one) or host-<address>, as Neutron's dnsmasq hands it out.
    let name = match port.dns_name.split('.').next() {
        Some(label) if !label.is_empty() => label.to_string(),
        _ => model::dns::default_hostname(IpAddr::V4(l.ip)),
    };
    r.hostname = Some(name);
    r.interface_mtu = (l.network.mtu >= 68).then(|| l.network.mtu.min(65_535) as u16);
    if !inform {
        set_lease_time(r, cfg.lease_seconds);
    }
    // With option 121 present a client ignores option 3 (RFC 3442): the default route
    // goes in too.
    let mut routes: Vec<ClasslessRoute> = l
        .subnet
        .host_routes
        .iter()
        .filter_map(|h| match (h.destination, h.nexthop) {
            (ipnet::IpNet::V4(d), IpAddr::V4(via)) => {
                Some(ClasslessRoute::new(d.network(), d.prefix_len(), via))
            }
            _ => None,
        })
        .collect();
    if cfg.metadata_route
        && let Some(via) = metadata_route(l, gateway)
        && !routes
            .iter()
            .any(|r| r.prefix_len == 32 && r.destination == METADATA_IP)
    {
        routes.push(ClasslessRoute::new(METADATA_IP, 32, via));
    }
    if !routes.is_empty() {
        if let Some(gw) = gateway
            && !routes.iter().any(|r| r.prefix_len == 0)
        {
            routes.push(ClasslessRoute::new(Ipv4Addr::UNSPECIFIED, 0, gw));
        }
        r.classless_routes = routes;
    }
    for opt in port.extra_dhcp_opts.iter().filter(|o| o.ip_version == 4) {
        if !extra_option(r, opt) {
            tracing::debug!(port = %port.meta.id, name = %opt.opt_name, value = %opt.opt_value, "extra_dhcp_opt not understood; left out");
        }
    }
    // An empty `router` option says "no default route": option 121 must not bring it back.
    if r.router.is_empty() {
        r.classless_routes.retain(|c| c.prefix_len != 0);
    }
}

fn set_lease_time(r: &mut DhcpRepr, seconds: u32) {
    r.lease_time = Some(seconds);
    r.renewal_time = Some(seconds / 2);
    r.rebinding_time = Some((u64::from(seconds) * 7 / 8) as u32);
}

/// dnsmasq's option names, as Neutron's `extra_dhcp_opts` use them.
const OPTION_NAMES: &[(&str, u8)] = &[
    ("netmask", 1),
    ("router", 3),
    ("dns-server", 6),
    ("log-server", 7),
    ("hostname", 12),
    ("domain-name", 15),
    ("mtu", 26),
    ("ntp-server", 42),
    ("netbios-ns", 44),
    ("lease-time", 51),
    ("tftp-server", 66),
    ("bootfile-name", 67),
    ("classless-static-route", 121),
    ("tftp-server-address", 150),
];

fn ip_list(v: &str) -> Option<Vec<Ipv4Addr>> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

fn routes(v: &str) -> Option<Vec<ClasslessRoute>> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if !parts.len().is_multiple_of(2) {
        return None;
    }
    parts
        .chunks_exact(2)
        .map(|c| {
            let net: ipnet::Ipv4Net = c[0].parse().ok()?;
            Some(ClasslessRoute::new(
                net.network(),
                net.prefix_len(),
                c[1].parse().ok()?,
            ))
        })
        .collect()
}

/// Applies one `extra_dhcp_opt` (name or number, dnsmasq's `option:` prefix allowed) over
/// the computed options; false when it is not understood.
fn extra_option(r: &mut DhcpRepr, opt: &ExtraDhcpOpt) -> bool {
    let name = opt.opt_name.trim();
    let name = name.strip_prefix("option:").unwrap_or(name);
    let value = opt.opt_value.trim();
    if name == "server-ip-address" {
        return value.parse().map(|a| r.server_ip = a).is_ok();
    }
    let code = match name.parse::<u8>() {
        Ok(c) => c,
        Err(_) => match OPTION_NAMES.iter().find(|(n, _)| *n == name) {
            Some((_, c)) => *c,
            None => return false,
        },
    };
    let text = || (!value.is_empty()).then(|| value.to_string());
    match code {
        dhcpv4::code::PAD
        | dhcpv4::code::END
        | dhcpv4::code::MESSAGE_TYPE
        | dhcpv4::code::SERVER_IDENTIFIER
        | dhcpv4::code::OVERLOAD => false,
        dhcpv4::code::SUBNET_MASK => value.parse().map(|a| r.subnet_mask = Some(a)).is_ok(),
        // An empty router or DNS list takes the option away (Neutron's way to say "no
        // default route").
        dhcpv4::code::ROUTER => ip_list(value).map(|l| r.router = l).is_some(),
        dhcpv4::code::DNS_SERVERS => ip_list(value).map(|l| r.dns_servers = l).is_some(),
        dhcpv4::code::HOSTNAME => text().map(|t| r.hostname = Some(t)).is_some(),
        dhcpv4::code::DOMAIN_NAME => text().map(|t| r.domain_name = Some(t)).is_some(),
        dhcpv4::code::INTERFACE_MTU => value
            .parse::<u16>()
            .ok()
            .filter(|m| *m >= 68)
            .map(|m| r.interface_mtu = Some(m))
            .is_some(),
        dhcpv4::code::LEASE_TIME => value
            .parse::<u32>()
            .map(|t| {
                if r.lease_time.is_some() {
                    set_lease_time(r, t)
                }
            })
            .is_ok(),
        dhcpv4::code::CLASSLESS_STATIC_ROUTE => {
            routes(value).map(|l| r.classless_routes = l).is_some()
        }
        other => {
            let bytes = match ip_list(value) {
                Some(l) if !l.is_empty() => l.iter().flat_map(|a| a.octets()).collect(),
                _ => value.as_bytes().to_vec(),
            };
            r.other_options.retain(|(c, _)| *c != other);
            r.other_options.push((other, bytes));
            true
        }
    }
}

/// The answer to `req` from `port` (a local port), or `None` when there is none to give.
pub fn answer(view: &View, cfg: &Config, port: &Port, req: &DhcpRepr) -> Option<Reply> {
    let l = lease(view, port)?;
    let reply = |t: MessageType, yiaddr: Ipv4Addr| {
        let mut r = DhcpRepr::reply_to(req, t, yiaddr, l.server_ip);
        if t != MessageType::Nak {
            configure(
                &mut r,
                cfg,
                &l,
                port,
                req.message_type == MessageType::Inform,
            );
        }
        r
    };
    let dhcp = match req.message_type {
        MessageType::Discover => reply(MessageType::Offer, l.ip),
        MessageType::Request => {
            // A client that chose another server's offer: not ours to answer.
            if req.server_identifier.is_some_and(|s| s != l.server_ip) {
                return None;
            }
            let wanted = req
                .requested_ip
                .or((!req.client_ip.is_unspecified()).then_some(req.client_ip));
            if wanted == Some(l.ip) {
                reply(MessageType::Ack, l.ip)
            } else {
                reply(MessageType::Nak, Ipv4Addr::UNSPECIFIED)
            }
        }
        MessageType::Inform => reply(MessageType::Ack, Ipv4Addr::UNSPECIFIED),
        _ => return None,
    };
    Some(Reply {
        dhcp,
        server_mac: l.server_mac,
        server_ip: l.server_ip,
    })
}

impl Dhcp {
    pub fn new(config: Config) -> Dhcp {
        Dhcp {
            config,
            ..Dhcp::default()
        }
    }

    /// Answers one punted request from the port with key `key`. Never panics, whatever
    /// the packet holds.
    pub fn handle(
        &mut self,
        view: &View,
        host: &Host,
        now: Instant,
        pi: &PacketIn,
        key: u32,
    ) -> Punted {
        let port = self.local_port(view, key);
        if let Err(blocked) = self.admit(now, key, port) {
            return blocked;
        }
        let Some(port) = port else {
            self.stats.ignored += 1;
            return Punted::default();
        };
        // The packet-out goes back to the port the request came in by, which must be the
        // port the flow was for.
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
        let req = match dhcpv4::parse_frame(&pi.data) {
            Ok(f) if f.dhcp.op == Op::Request && f.dst_port == dhcpv4::SERVER_PORT => f.dhcp,
            Ok(_) => return self.malformed(port, "not a client request"),
            Err(e) => return self.malformed(port, &e.to_string()),
        };
        match req.message_type {
            MessageType::Release => {
                self.stats.releases += 1;
                tracing::debug!(port = %port.meta.id, "DHCP release");
                return Punted::default();
            }
            MessageType::Decline => {
                // Someone else holds the port's address: worth an operator's look.
                self.stats.declines += 1;
                tracing::warn!(port = %port.meta.id, ip = ?req.requested_ip, "DHCP decline: the address is in use by another machine");
                return Punted::default();
            }
            _ => {}
        }
        let Some(reply) = answer(view, &self.config, port, &req) else {
            self.stats.ignored += 1;
            return Punted::default();
        };
        let frame = match dhcpv4::reply_frame(
            &reply.dhcp,
            EthernetAddress(reply.server_mac.0),
            reply.server_ip,
            None,
        ) {
            Ok(f) => f,
            Err(_) => {
                // Relayed requests (giaddr set) are not for an on-link server.
                self.stats.ignored += 1;
                return Punted::default();
            }
        };
        match reply.dhcp.message_type {
            MessageType::Offer => self.stats.offers += 1,
            MessageType::Nak => {
                self.stats.naks += 1;
                tracing::info!(port = %port.meta.id, requested = ?req.requested_ip.unwrap_or(req.client_ip), "DHCP NAK: not the port's address");
            }
            _ => self.stats.acks += 1,
        }
        tracing::debug!(port = %port.meta.id, request = ?req.message_type, reply = ?reply.dhcp.message_type, ip = %reply.dhcp.your_ip, "DHCP answered");
        Punted {
            packets: vec![PacketOut {
                buffer_id: NO_BUFFER,
                in_port: of_port::CONTROLLER,
                actions: out,
                data: frame,
            }],
            ..Punted::default()
        }
    }

    fn local_port<'v>(&mut self, view: &'v View, key: u32) -> Option<&'v Port> {
        self.ports.get(view, key)
    }

    fn malformed(&mut self, port: &Port, why: &str) -> Punted {
        self.stats.malformed += 1;
        // Logged at 1, 2, 4, 8, ... so a VM sending garbage cannot fill the log.
        if self.stats.malformed.is_power_of_two() {
            tracing::warn!(port = %port.meta.id, why, total = self.stats.malformed, "malformed DHCP packets dropped");
        }
        Punted::default()
    }

    /// The flood guard: a token bucket per port (`rate_limit` per second, as many in a
    /// burst). A port past it is blocked in the switch for `block`; what reaches us
    /// meanwhile (sent before the drop flow was in) is dropped here.
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
            Admit::Block(seconds) => seconds,
        };
        self.stats.rate_limited += 1;
        self.stats.blocks += 1;
        tracing::warn!(
            port = port.map(|p| p.meta.id.as_str()).unwrap_or("?"),
            port_key = key,
            rate = self.config.rate_limit,
            seconds,
            "DHCP flood: the port's DHCP is blocked in the switch"
        );
        Err(Punted {
            flow_mods: vec![super::block(key, seconds)],
            ..Punted::default()
        })
    }
}

impl Handler for Dhcp {
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
            ("offers", s.offers),
            ("acks", s.acks),
            ("naks", s.naks),
            ("releases", s.releases),
            ("declines", s.declines),
            ("malformed", s.malformed),
            ("ignored", s.ignored),
            ("rate_limited", s.rate_limited),
            ("blocks", s.blocks),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(name: &str, value: &str) -> ExtraDhcpOpt {
        ExtraDhcpOpt {
            opt_name: name.into(),
            opt_value: value.into(),
            ip_version: 4,
        }
    }

    #[test]
    fn extra_options_by_name_and_number() {
        let mut r = DhcpRepr::new(
            Op::Reply,
            MessageType::Ack,
            1,
            EthernetAddress([2, 0, 0, 0, 0, 1]),
        );
        r.router = vec![Ipv4Addr::new(10, 0, 0, 1)];
        assert!(extra_option(&mut r, &opt("router", "")));
        assert!(r.router.is_empty(), "an empty router option removes it");
        assert!(extra_option(&mut r, &opt("dns-server", "1.1.1.1, 8.8.8.8")));
        assert_eq!(
            r.dns_servers,
            [Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(8, 8, 8, 8)]
        );
        assert!(extra_option(&mut r, &opt("mtu", "1450")));
        assert_eq!(r.interface_mtu, Some(1450));
        assert!(extra_option(&mut r, &opt("bootfile-name", "pxelinux.0")));
        assert!(extra_option(&mut r, &opt("option:150", "10.0.0.9")));
        assert!(extra_option(&mut r, &opt("server-ip-address", "10.0.0.9")));
        assert_eq!(r.server_ip, Ipv4Addr::new(10, 0, 0, 9));
        assert!(extra_option(
            &mut r,
            &opt("classless-static-route", "192.168.0.0/16,10.0.0.1")
        ));
        assert_eq!(r.classless_routes.len(), 1);
        assert_eq!(
            r.other_options,
            [(67, b"pxelinux.0".to_vec()), (150, vec![10, 0, 0, 9]),]
        );
        for bad in [
            opt("no-such-option", "1"),
            opt("53", "5"),
            opt("mtu", "big"),
            opt("router", "not-an-ip"),
            opt("classless-static-route", "10.0.0.0/8"),
            opt("999", "x"),
        ] {
            let before = r.clone();
            assert!(!extra_option(&mut r, &bad), "{bad:?}");
            assert_eq!(r, before, "{bad:?} changed nothing");
        }
        // The reply still builds.
        assert!(r.build().len() >= dhcpv4::MIN_MESSAGE_LEN);
    }

    #[test]
    fn masks() {
        assert_eq!(mask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(mask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(mask(32), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn the_bucket_admits_the_rate_then_blocks_once_until_the_block_ends() {
        let mut d = Dhcp::new(Config {
            block: Duration::from_secs(10),
            ..Config::default()
        });
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(d.admit(t0, 7, None).is_ok(), "request {i} of the burst");
        }
        let blocked = d.admit(t0, 7, None).unwrap_err();
        assert_eq!(blocked.flow_mods.len(), 1);
        assert_eq!(blocked.flow_mods[0].hard_timeout, 10);
        // Another port is not affected.
        assert!(d.admit(t0, 8, None).is_ok());
        // While blocked: dropped, and no second flow-mod.
        for s in 1..10 {
            let p = d.admit(t0 + Duration::from_secs(s), 7, None).unwrap_err();
            assert!(p.flow_mods.is_empty());
        }
        assert_eq!(d.stats.blocks, 1);
        assert!(d.admit(t0 + Duration::from_secs(10), 7, None).is_ok());
        // A steady 2/s passes forever.
        let mut t = t0 + Duration::from_secs(20);
        for _ in 0..100 {
            t += Duration::from_millis(500);
            assert!(d.admit(t, 7, None).is_ok());
        }
        assert_eq!(d.stats.blocks, 1);
    }
}
