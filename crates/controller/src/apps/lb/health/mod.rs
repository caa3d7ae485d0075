//! Health monitoring of balancer members (issue 23): every member is checked by the host
//! its port is bound to (deterministic, and the probes never cross a tunnel), from the
//! balancer's VIP, with no address of the tenant network taken. Probes are packet-outs
//! straight to the member's port (for a member on another network, behind a router of
//! the VIP's, as that router would deliver them: from its interface's MAC there, which
//! the member answers as its gateway; its host follows the VIP's network through that
//! router, so it has the balancer); the member answers the VIP (whose MAC the ARP
//! responder gives, or for an IPv6 VIP the ND responder: the VIP port is a port of the
//! network, answered on every host of it), and the punt flows here send that answer to
//! the controller in the member's
//! port-security table, before its egress conntrack (which never saw the probe) could
//! call it invalid. The conclusions go to the NB store as the member's operating status,
//! so every host's select group leaves a down member out (`Member::takes_traffic`).
//!
//! The state machine is [`monitor`], the packets [`probe`]; this module is the thin part
//! that finds the members to check in the view and turns probes into packet-outs.

pub mod monitor;
pub mod probe;

use super::super::punt::{Handler, Punted};
use super::super::rate::Limiter;
use super::super::{Flow, Host, flow};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::View;
use model::LoadBalancer;
use model::lb::{HealthMonitor, Member, operating};
use monitor::{Monitor, Params, Stored};
use openflow::Instruction;
use openflow::action::{Action, OFPCML_NO_BUFFER, port as of_port};
use openflow::oxm::{Field, Match};
use openflow::packet::{PacketIn, PacketOut, PipelineFields};
use probe::{Answer, Ends};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A conclusion for the NB store: member `member` of balancer `loadbalancer` is up
/// (ONLINE) or down (ERROR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberHealth {
    pub loadbalancer: String,
    pub member: String,
    pub up: bool,
}

/// Above port security's flows (its unfiltered ports' 200): answers to probes leave the
/// pipeline before egress conntrack.
const PRIO_ANSWER: u16 = 250;
const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_UNREACHABLE: u8 = 3;
const ICMPV6_UNREACHABLE: u8 = 1;
const ICMPV6_ECHO_REPLY: u8 = 129;
/// Answers one member may have punted a second (a member flooding the VIP with SYN-ACKs
/// costs the controller this much at most).
const ANSWERS_PER_SECOND: u32 = 50;

/// How a monitor probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Tcp,
    Ping,
    UdpConnect,
    Http { path: String, codes: String },
}

impl Kind {
    fn of(h: &HealthMonitor) -> Option<Kind> {
        Some(match h.kind.as_str() {
            "TCP" => Kind::Tcp,
            "PING" => Kind::Ping,
            "UDP-CONNECT" => Kind::UdpConnect,
            "HTTP" => Kind::Http {
                path: h.url_path.clone().unwrap_or_else(|| "/".into()),
                codes: h.expected_codes.clone().unwrap_or_else(|| "200".into()),
            },
            _ => return None,
        })
    }
}

/// One member this host checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub loadbalancer: String,
    pub member: String,
    pub kind: Kind,
    pub params: Params,
    pub stored: Stored,
    pub ends: Ends,
    /// The member port's key (reg6) and OpenFlow port.
    pub port_key: u32,
    pub ofport: u32,
}

fn params(h: &HealthMonitor) -> Params {
    Params {
        delay: Duration::from_secs(u64::from(h.delay)),
        timeout: Duration::from_secs(u64::from(h.timeout)),
        rise: h.max_retries,
        fall: h.max_retries_down,
        silence_ok: h.kind == "UDP-CONNECT",
    }
}

fn stored(m: &Member) -> Stored {
    match m.status.operating_status.as_str() {
        operating::ONLINE => Stored::Online,
        operating::ERROR => Stored::Error,
        _ => Stored::Unchecked,
    }
}

/// The members of `lb` this host checks: enabled members of enabled pools with an
/// enabled monitor, whose monitored address is of the VIP's family and a port bound and
/// plugged here, of the VIP's network or of one a router of the VIP's network reaches.
pub fn targets_of(view: &View, host: &Host, lb: &LoadBalancer) -> Vec<Target> {
    let mut out = Vec::new();
    let vip = lb.vip_address;
    if !lb.admin_state_up {
        return out;
    }
    for pool in lb.pools.iter().filter(|p| p.admin_state_up) {
        let Some(h) = pool.healthmonitor.as_ref().filter(|h| h.admin_state_up) else {
            continue;
        };
        let Some(kind) = Kind::of(h) else {
            continue;
        };
        for m in pool.members.iter().filter(|m| m.admin_state_up) {
            let addr = m.monitor_address.unwrap_or(m.address);
            if addr.is_ipv4() != vip.is_ipv4() {
                continue;
            }
            // A port of the VIP's network, answered from the VIP's MAC; else one on another
            // network behind a router of the VIP's, whose probes come as routed from that
            // router's interface there (the member answers its gateway).
            let with = |p: &&model::Port| p.fixed_ips.iter().any(|f| f.ip_address == addr);
            let (port, from_mac) = match view.ports_of(&lb.vip_network_id).find(with) {
                Some(p) => (p, lb.vip_mac.0),
                None => {
                    let Some((_, there)) = super::router_between(view, &lb.vip_network_id, addr)
                    else {
                        continue;
                    };
                    let Some(p) = view.local_ports().find(with) else {
                        continue;
                    };
                    (p, there)
                }
            };
            if port.binding_host_id != view.chassis {
                continue;
            }
            let Some(ofport) = host.ofports.get(&port.meta.id).copied() else {
                continue;
            };
            out.push(Target {
                loadbalancer: lb.meta.id.clone(),
                member: m.meta.id.clone(),
                kind: kind.clone(),
                params: params(h),
                stored: stored(m),
                ends: Ends {
                    vip,
                    vip_mac: from_mac,
                    member: addr,
                    member_mac: port.mac_address.0,
                    port: m.monitor_port.unwrap_or(m.protocol_port),
                },
                port_key: port.unique_key,
                ofport,
            });
        }
    }
    out
}

/// The punt flows of the members of `lb` this host checks: their answers to the VIP, by
/// protocol, from the member's port.
pub fn flows(view: &View, host: &Host, lb: &LoadBalancer) -> Vec<Flow> {
    let mut matches = std::collections::BTreeMap::new();
    for t in targets_of(view, host, lb) {
        let (vip, member) = (t.ends.vip, t.ends.member);
        let v6 = vip.is_ipv6();
        let base = || {
            let m = Match::new().masked(reg::SRC_PORT, t.port_key, u32::MAX);
            super::with_dst(
                super::with_src(m.eth_type(super::eth_type_of(vip)), member),
                vip,
            )
        };
        let icmp = |v4_type, v6_type| match v6 {
            false => base().ip_proto(ICMP).icmp_type(v4_type),
            true => base().ip_proto(ICMPV6).icmpv6_type(v6_type),
        };
        let wanted: Vec<Match> = match t.kind {
            // To a probe's source port only: a member's own (hairpinned) connections
            // with the VIP use ephemeral ports below it.
            Kind::Tcp | Kind::Http { .. } => {
                vec![base().ip_proto(TCP).tcp_src(t.ends.port).masked(
                    Field::TcpDst,
                    probe::PORT_BASE,
                    probe::PORT_BASE,
                )]
            }
            Kind::Ping => vec![icmp(ICMP_ECHO_REPLY, ICMPV6_ECHO_REPLY)],
            Kind::UdpConnect => vec![
                base().ip_proto(UDP).udp_src(t.ends.port).masked(
                    Field::UdpDst,
                    probe::PORT_BASE,
                    probe::PORT_BASE,
                ),
                icmp(ICMP_UNREACHABLE, ICMPV6_UNREACHABLE),
            ],
        };
        for m in wanted {
            // Matches sort by their encoding: two members on one address make one flow.
            let mut key = Vec::new();
            m.encode(&mut key);
            matches.entry(key).or_insert(m);
        }
    }
    matches
        .into_values()
        .map(|m| {
            flow(
                table::PORT_SECURITY,
                PRIO_ANSWER,
                m,
                AppId::Lb,
                lb.unique_key,
                [Instruction::ApplyActions(vec![Action::controller(
                    OFPCML_NO_BUFFER,
                )])],
            )
        })
        .collect()
}

/// A probe waiting for its answer.
#[derive(Debug, Clone)]
struct Session {
    member: String,
    isn: u32,
}

/// The packet-in side: the checks of this host's members.
pub struct Checker {
    monitor: Monitor<String>,
    sessions: HashMap<u16, Session>,
    /// Answers punted per member port, so a VM cannot keep the controller busy.
    limit: Limiter<u32>,
    probes: u64,
    answers: u64,
    dropped: u64,
    reports: u64,
}

impl Default for Checker {
    fn default() -> Checker {
        Checker {
            monitor: Monitor::default(),
            sessions: HashMap::new(),
            limit: Limiter::new(ANSWERS_PER_SECOND),
            probes: 0,
            answers: 0,
            dropped: 0,
            reports: 0,
        }
    }
}

/// A probe's initial sequence number (no secret needed: the member is the only one who
/// sees it, and it is the one being checked).
fn isn(token: u16) -> u32 {
    u32::from(token).wrapping_mul(2_654_435_761)
}

/// Whether `a` answers probe `token` of a check of kind `kind`.
fn answers(kind: &Kind, a: &Answer, token: u16) -> bool {
    let sport = probe::source_port(token);
    match (kind, a) {
        (Kind::Ping, Answer::Echo { token: got }) => *got == token,
        (Kind::Tcp, Answer::SynAck { port, .. } | Answer::Reset { port })
        | (
            Kind::Http { .. },
            Answer::SynAck { port, .. } | Answer::Reset { port } | Answer::Data { port, .. },
        )
        | (Kind::UdpConnect, Answer::PortUnreachable { port } | Answer::Datagram { port }) => {
            *port == sport
        }
        _ => false,
    }
}

fn out_to(ofport: u32, data: Vec<u8>) -> PacketOut {
    PacketOut {
        buffer_id: openflow::flow::NO_BUFFER,
        in_port: of_port::CONTROLLER,
        actions: vec![Action::output(ofport)],
        data,
    }
}

impl Checker {
    fn targets(view: &View, host: &Host) -> Vec<Target> {
        view.loadbalancers
            .values()
            .flat_map(|lb| targets_of(view, host, lb))
            .collect()
    }

    fn report(&mut self, targets: &[Target], member: &str, up: bool, out: &mut Punted) {
        if let Some(t) = targets.iter().find(|t| t.member == member) {
            self.reports += 1;
            tracing::info!(member, loadbalancer = %t.loadbalancer, up, "member health");
            out.health.push(MemberHealth {
                loadbalancer: t.loadbalancer.clone(),
                member: member.to_string(),
                up,
            });
        }
    }
}

impl Handler for Checker {
    fn packet_in(
        &mut self,
        view: &View,
        host: &mut Host,
        now: Instant,
        pi: &PacketIn,
        key: u32,
    ) -> Punted {
        let mut out = Punted::default();
        let Some(lb) = view.loadbalancers.values().find(|lb| lb.unique_key == key) else {
            return out;
        };
        let targets = targets_of(view, host, lb);
        let Some(in_port) = pi.in_port() else {
            return out;
        };
        let Some(first) = targets.iter().find(|t| t.ofport == in_port) else {
            return out;
        };
        if !self.limit.allow(first.port_key, now) {
            self.dropped += 1;
            return out;
        }
        // Several members may be checked through one port (its other addresses, other
        // ports of one address, one address in pools checked another way): the answer
        // names its own by address, port, kind and probe.
        let Some((t, answer, token)) =
            targets
                .iter()
                .filter(|c| c.ofport == in_port)
                .find_map(|c| {
                    let a = probe::answer(&pi.data, c.ends.vip, c.ends.member, c.ends.port)?;
                    let token = self.monitor.inflight(&c.member)?;
                    answers(&c.kind, &a, token).then_some((c, a, token))
                })
        else {
            return out;
        };
        self.answers += 1;
        let sport = probe::source_port(token);
        let ok = match (&t.kind, answer) {
            (Kind::Ping, Answer::Echo { token: got }) if got == token => Some(true),
            (Kind::Tcp, Answer::SynAck { port, ack, .. }) if port == sport => {
                out.packets.push(out_to(t.ofport, t.ends.rst(sport, ack)));
                Some(true)
            }
            (Kind::Tcp | Kind::Http { .. }, Answer::Reset { port }) if port == sport => Some(false),
            (Kind::Http { path, .. }, Answer::SynAck { port, seq, ack }) if port == sport => {
                let isn = self.sessions.get(&token).map(|s| s.isn);
                if isn.map(|i| i.wrapping_add(1)) == Some(ack) {
                    out.packets.push(out_to(
                        t.ofport,
                        t.ends.request(sport, ack, seq.wrapping_add(1), path),
                    ));
                }
                None
            }
            (Kind::Http { codes, path }, Answer::Data { port, status }) if port == sport => {
                let isn = self.sessions.get(&token).map_or(0, |s| s.isn);
                let sent = t.ends.http_get(path).len();
                // A request is a few hundred bytes (url_path is at most 2,048).
                let seq = isn.wrapping_add(1).wrapping_add(sent as u32);
                out.packets.push(out_to(t.ofport, t.ends.rst(sport, seq)));
                Some(status.is_some_and(|c| probe::expected(codes, c)))
            }
            (Kind::UdpConnect, Answer::PortUnreachable { port }) if port == sport => Some(false),
            (Kind::UdpConnect, Answer::Datagram { port }) if port == sport => Some(true),
            _ => None,
        };
        if let Some(ok) = ok {
            self.sessions.remove(&token);
            let member = t.member.clone();
            if let Some(r) = self.monitor.outcome(&member, token, ok, now) {
                self.report(&targets, &r.key, r.up, &mut out);
            }
        }
        out
    }

    fn tick(&mut self, view: &View, host: &mut Host, now: Instant) -> Punted {
        let mut out = Punted::default();
        let targets = Checker::targets(view, host);
        if targets.is_empty() && self.monitor.is_empty() {
            return out;
        }
        self.monitor.sync(
            targets
                .iter()
                .map(|t| (t.member.clone(), t.params, t.stored)),
            now,
        );
        let due = self.monitor.tick(now);
        for token in due.expired {
            self.sessions.remove(&token);
        }
        for (member, token) in due.start {
            let Some(t) = targets.iter().find(|t| t.member == member) else {
                continue;
            };
            let sport = probe::source_port(token);
            let data = match t.kind {
                Kind::Tcp | Kind::Http { .. } => t.ends.syn(sport, isn(token)),
                Kind::Ping => t.ends.echo(token),
                Kind::UdpConnect => t.ends.datagram(sport),
            };
            self.sessions.insert(
                token,
                Session {
                    member: member.clone(),
                    isn: isn(token),
                },
            );
            self.probes += 1;
            out.packets.push(out_to(t.ofport, data));
        }
        // Sessions of members no longer checked.
        self.sessions
            .retain(|tok, s| self.monitor.inflight(&s.member) == Some(*tok));
        for r in due.reports {
            self.report(&targets, &r.key, r.up, &mut out);
        }
        out
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("health_probes", self.probes),
            ("health_answers", self.answers),
            ("health_dropped", self.dropped),
            ("health_reports", self.reports),
            ("health_members", self.monitor.len() as u64),
        ]
    }
}
