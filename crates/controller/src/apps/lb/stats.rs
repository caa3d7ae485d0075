//! Statistics of the listeners this host balances for (Octavia's `/stats`), read from
//! counters the switch keeps anyway: bytes in from a listener's flows into the balancer
//! (services, 20), connections from its new-connection flow (lb_select, 22: conntrack
//! sends a connection's first packet there once), bytes out from its flow in lb_reply
//! (106, the answers after their un-NAT), and the connections open now from the
//! conntrack entries of the balancers' zone (`ovs-appctl dpctl/dump-conntrack`, parsed
//! by [`active`]). Pure: the runtime asks the switch and runs the command.

use super::{LB_ZONE, PRIO_NEW, PRIO_VIP, from_port, listener_match, serving, sources};
use crate::pipeline::{App as AppId, Cookie, table};
use crate::reconcile::FlowKey;
use crate::view::View;
use model::lb::Protocol;
use model::lb_stats::ByListener;
use openflow::multipart::{FlowStats, FlowStatsRequest};
use openflow::oxm::{Match, ct_state};
use std::collections::HashMap;
use std::net::IpAddr;

/// The answers of a listener's connections after their un-NAT: from its VIP and port.
pub(crate) fn answer_match(net_key: u32, vip: IpAddr, l: &model::lb::Listener) -> Match {
    let on_net = Match::new()
        .metadata(u64::from(net_key))
        .eth_type(super::eth_type_of(vip));
    from_port(super::with_src(on_net, vip), l.protocol, l.protocol_port)
}

/// The flow stats request for every flow of the balancer app (few: the counted ones
/// among them are found by [`Counted::tally`]).
pub fn request() -> FlowStatsRequest {
    FlowStatsRequest {
        cookie: Cookie {
            app: AppId::Lb,
            key: 0,
        }
        .encode(),
        cookie_mask: Cookie::APP_MASK,
        ..FlowStatsRequest::default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counter {
    BytesIn,
    Connections,
    BytesOut,
}

/// A listener's connections as conntrack shows them: protocol, VIP and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub listener: String,
    pub protocol: Protocol,
    pub vip: IpAddr,
    pub port: u16,
}

/// Which flow counts what for which listener, as the balancers in the view compile them.
#[derive(Debug, Default)]
pub struct Counted {
    flows: HashMap<FlowKey, (String, Counter)>,
    /// Every balanced listener, for the conntrack count.
    pub endpoints: Vec<Endpoint>,
}

impl Counted {
    /// The counted flows of every listener that balances in `view`.
    pub fn of(view: &View) -> Counted {
        let mut out = Counted::default();
        for lb in view.loadbalancers.values() {
            let Some(net) = view.networks.get(&lb.vip_network_id) else {
                continue;
            };
            let (key, vip) = (net.unique_key, lb.vip_address);
            for l in &lb.listeners {
                if serving(lb, l).is_none() {
                    continue;
                }
                let id = &l.meta.id;
                let mut add = |t, prio, m, c| {
                    out.flows.insert(FlowKey::new(t, prio, m), (id.clone(), c));
                };
                for m in sources(key, vip, l) {
                    add(table::SERVICES, PRIO_VIP, m, Counter::BytesIn);
                }
                let new = listener_match(key, vip, l).ct_state(
                    ct_state::TRK | ct_state::NEW,
                    ct_state::TRK | ct_state::NEW | ct_state::INV,
                );
                add(table::LB_SELECT, PRIO_NEW, new, Counter::Connections);
                let answers = answer_match(key, vip, l);
                add(table::LB_REPLY, PRIO_VIP, answers, Counter::BytesOut);
                out.endpoints.push(Endpoint {
                    listener: id.clone(),
                    protocol: l.protocol,
                    vip,
                    port: l.protocol_port,
                });
            }
        }
        out
    }

    /// Each listener's counts from the switch's flow stats (a listener with no flow here
    /// is left out: this host does not balance for it).
    pub fn tally(&self, stats: &[FlowStats]) -> ByListener {
        let mut out = ByListener::new();
        for f in stats {
            let k = FlowKey::new(f.table_id, f.priority, f.match_.clone());
            let Some((id, c)) = self.flows.get(&k) else {
                continue;
            };
            let s = out.entry(id.clone()).or_default();
            match c {
                Counter::BytesIn => s.bytes_in = s.bytes_in.saturating_add(f.byte_count),
                Counter::Connections => {
                    s.total_connections = s.total_connections.saturating_add(f.packet_count)
                }
                Counter::BytesOut => s.bytes_out = s.bytes_out.saturating_add(f.byte_count),
            }
        }
        out
    }
}

/// The arguments of the `ovs-appctl` command whose output [`active`] reads.
pub fn conntrack_command() -> [String; 2] {
    ["dpctl/dump-conntrack".into(), format!("zone={LB_ZONE}")]
}

/// The connections open now per listener, from `ovs-appctl dpctl/dump-conntrack` lines
/// (`tcp,orig=(src=…,dst=…,sport=…,dport=…),reply=(…),zone=…,protoinfo=(state=…)`):
/// entries of the balancers' zone whose original direction goes to a listener's VIP and
/// port; a TCP one only while it is being opened or established (not closing, not in
/// TIME_WAIT). A line it cannot read is skipped.
pub fn active(dump: &str, endpoints: &[Endpoint]) -> HashMap<String, u64> {
    // Looked up per line: a busy host's dump has many lines, and it may balance for many
    // listeners.
    let by_target: HashMap<(Protocol, IpAddr, u16), &str> = endpoints
        .iter()
        .map(|ep| ((ep.protocol, ep.vip, ep.port), ep.listener.as_str()))
        .collect();
    let mut out = HashMap::new();
    for line in dump.lines() {
        let Some(e) = Entry::parse(line) else {
            continue;
        };
        if e.zone != LB_ZONE || !e.open {
            continue;
        }
        if let Some(listener) = by_target.get(&(e.protocol, e.dst, e.dport)) {
            *out.entry(listener.to_string()).or_insert(0) += 1;
        }
    }
    out
}

/// What [`active`] reads of one conntrack entry.
struct Entry {
    protocol: Protocol,
    dst: IpAddr,
    dport: u16,
    zone: u16,
    open: bool,
}

impl Entry {
    fn parse(line: &str) -> Option<Entry> {
        let line = line.trim();
        let (proto, rest) = line.split_once(',')?;
        let protocol = match proto {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => return None,
        };
        let orig = rest.strip_prefix("orig=(")?;
        let (orig, rest) = orig.split_once(')')?;
        let field = |fields: &str, name: &str| {
            fields
                .split(',')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let dst = field(orig, "dst")?.parse().ok()?;
        let dport = field(orig, "dport")?.parse().ok()?;
        // The zone is printed when it is not 0.
        let zone = match field(rest, "zone") {
            Some(z) => z.parse().ok()?,
            None => 0,
        };
        let open = match protocol {
            Protocol::Udp => true,
            Protocol::Tcp => {
                let state = rest
                    .split_once("state=")
                    .map(|(_, s)| s.trim_end_matches(')'))
                    .unwrap_or("");
                matches!(state, "ESTABLISHED" | "SYN_SENT" | "SYN_RECV" | "SYN_SENT2")
            }
        };
        Some(Entry {
            protocol,
            dst,
            dport,
            zone,
            open,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(listener: &str, protocol: Protocol, vip: &str, port: u16) -> Endpoint {
        Endpoint {
            listener: listener.into(),
            protocol,
            vip: vip.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn open_connections_of_the_balancers_zone_are_counted_per_listener() {
        let dump = "\
tcp,orig=(src=10.0.0.5,dst=10.0.0.100,sport=40000,dport=80),reply=(src=10.0.0.11,dst=10.0.0.5,sport=8080,dport=40000),zone=65521,protoinfo=(state=ESTABLISHED)
tcp,orig=(src=10.0.0.6,dst=10.0.0.100,sport=40001,dport=80),reply=(src=10.0.0.12,dst=10.0.0.6,sport=8080,dport=40001),zone=65521,protoinfo=(state=TIME_WAIT)
tcp,orig=(src=10.0.0.7,dst=10.0.0.100,sport=40002,dport=80),reply=(src=10.0.0.12,dst=10.0.0.7,sport=8080,dport=40002),zone=65521,protoinfo=(state=SYN_SENT)
tcp,orig=(src=10.0.0.5,dst=10.0.0.100,sport=40003,dport=80),reply=(src=10.0.0.100,dst=10.0.0.5,sport=80,dport=40003),zone=7,protoinfo=(state=ESTABLISHED)
udp,orig=(src=10.0.0.5,dst=10.0.0.100,sport=5000,dport=53),reply=(src=10.0.0.11,dst=10.0.0.5,sport=53,dport=5000),zone=65521
udp,orig=(src=2001:db8::5,dst=2001:db8::100,sport=5000,dport=53),reply=(src=2001:db8::11,dst=2001:db8::5,sport=53,dport=5000),zone=65521
icmp,orig=(src=10.0.0.5,dst=10.0.0.100,id=1,type=8,code=0),reply=(src=10.0.0.100,dst=10.0.0.5,id=1,type=0,code=0),zone=65521
garbage
tcp,orig=(src=10.0.0.5,dst=not-an-ip,sport=1,dport=80),zone=65521,protoinfo=(state=ESTABLISHED)
";
        let eps = [
            ep("web", Protocol::Tcp, "10.0.0.100", 80),
            ep("dns", Protocol::Udp, "10.0.0.100", 53),
            ep("dns6", Protocol::Udp, "2001:db8::100", 53),
            ep("idle", Protocol::Tcp, "10.0.0.100", 443),
        ];
        let got = active(dump, &eps);
        assert_eq!(
            got.get("web"),
            Some(&2),
            "established and opening, not TIME_WAIT nor zone 7"
        );
        assert_eq!(got.get("dns"), Some(&1));
        assert_eq!(got.get("dns6"), Some(&1));
        assert_eq!(got.get("idle"), None);
    }

    #[test]
    fn any_line_is_read_without_panicking() {
        for line in [
            "",
            ",",
            "tcp,",
            "tcp,orig=(",
            "tcp,orig=()",
            "udp,orig=(dst=1.2.3.4,dport=99999)",
        ] {
            assert!(active(line, &[ep("x", Protocol::Tcp, "1.2.3.4", 1)]).is_empty());
        }
    }
}
