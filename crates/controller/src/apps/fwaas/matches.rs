//! A firewall policy as matches: each enabled rule, in policy order, becomes the matches
//! it needs (one per block of its port ranges: a range that is not one aligned block
//! takes several), all at one priority, each rule below the one before it, so the first
//! rule that matches decides. Below the last rule, the caller's table miss is the
//! policy's implicit deny.

use crate::apps::security_groups::port_masks;
use model::FirewallRule;
use model::fwaas::{FwAction, FwAddress, PortRange, protocol_number};
use openflow::oxm::{Field, Match};

/// The priority of a policy's first rule; each next rule is one lower.
pub const PRIO_FIRST: u16 = 30_000;
/// At most this many rules per policy (the priorities stay above 1, the implicit deny's).
pub const MAX_RULES: usize = 29_000;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const TCP: u8 = 6;
const UDP: u8 = 17;

/// One compiled rule: its priority, the matches, and what a match does.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub rule_id: String,
    pub priority: u16,
    pub matches: Vec<Match>,
    pub action: FwAction,
}

fn prefix(m: Match, a: &FwAddress, src: bool) -> Match {
    match (a.addr, src) {
        (std::net::IpAddr::V4(v), true) => m.ipv4_src_prefix(v, a.prefix_len),
        (std::net::IpAddr::V4(v), false) => m.ipv4_dst_prefix(v, a.prefix_len),
        (std::net::IpAddr::V6(v), true) => m.ipv6_src_prefix(v, a.prefix_len),
        (std::net::IpAddr::V6(v), false) => m.ipv6_dst_prefix(v, a.prefix_len),
    }
}

/// `(value, mask)` blocks of a range, or one "any" block.
fn blocks(r: Option<PortRange>) -> Vec<Option<(u16, u16)>> {
    match r {
        None => vec![None],
        Some(PortRange {
            min: 0,
            max: u16::MAX,
        }) => vec![None],
        Some(r) if r.min > r.max => vec![],
        Some(r) => port_masks(r.min, r.max).into_iter().map(Some).collect(),
    }
}

/// The matches of one rule: its IP version, protocol, prefixes and port blocks. Empty
/// when it can match nothing (an address of the other version, which the API refuses).
pub fn rule_matches(r: &FirewallRule) -> Vec<Match> {
    let v6 = r.ip_version == 6;
    let addrs = [&r.source_ip_address, &r.destination_ip_address];
    if addrs
        .iter()
        .filter_map(|a| a.as_ref())
        .any(|a| a.addr.is_ipv6() != v6)
    {
        return vec![];
    }
    let mut base = Match::new().eth_type(if v6 { ETH_IPV6 } else { ETH_IPV4 });
    let proto = r.protocol.as_deref().and_then(protocol_number);
    if r.protocol.is_some() && proto.is_none() {
        return vec![];
    }
    // `icmp` in an IPv6 rule means ICMPv6, as neutron-fwaas's drivers read it.
    let proto = match proto {
        Some(1) if v6 => Some(58),
        p => p,
    };
    if let Some(p) = proto {
        base = base.ip_proto(p);
    }
    if let Some(a) = &r.source_ip_address {
        base = prefix(base, a, true);
    }
    if let Some(a) = &r.destination_ip_address {
        base = prefix(base, a, false);
    }
    let (src_f, dst_f) = match proto {
        Some(TCP) => (Field::TcpSrc, Field::TcpDst),
        Some(UDP) => (Field::UdpSrc, Field::UdpDst),
        // Ports only come with TCP or UDP (the API refuses the rest).
        _ if r.source_port.is_some() || r.destination_port.is_some() => return vec![],
        _ => return vec![base],
    };
    let mut out = Vec::new();
    for s in blocks(r.source_port) {
        for d in blocks(r.destination_port) {
            let mut m = base.clone();
            if let Some((v, mask)) = s {
                m = m.masked(src_f, v, mask);
            }
            if let Some((v, mask)) = d {
                m = m.masked(dst_f, v, mask);
            }
            out.push(m);
        }
    }
    out
}

/// A policy's enabled rules, in order, as entries with falling priorities; disabled
/// rules keep no priority (a rule enabled later moves the ones after it down, all in
/// the same bundle).
pub fn compile(rules: &[&FirewallRule]) -> Vec<Entry> {
    rules
        .iter()
        .filter(|r| r.enabled)
        .take(MAX_RULES)
        .enumerate()
        .map(|(i, r)| Entry {
            rule_id: r.meta.id.clone(),
            priority: PRIO_FIRST - i as u16,
            matches: rule_matches(r),
            action: r.action,
        })
        .collect()
}

/// What the policy does to a packet with these header fields, as the compiled entries
/// decide it (the highest-priority entry with a matching match; none: the implicit
/// deny). For tests and `dragonflow trace`.
pub fn decide<'a>(entries: &'a [Entry], packet: &Match) -> Option<(&'a str, FwAction)> {
    entries
        .iter()
        .find(|e| e.matches.iter().any(|m| covers(m, packet)))
        .map(|e| (e.rule_id.as_str(), e.action))
}

/// True when every field of `m` matches the same field of `packet` under its mask.
fn covers(m: &Match, packet: &Match) -> bool {
    m.fields.iter().all(|f| {
        packet.get(f.field).is_some_and(|p| {
            let mask = f.mask.unwrap_or(u128::MAX);
            (p.value & mask) == (f.value & mask)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Meta;

    fn rule(
        id: &str,
        proto: Option<&str>,
        dport: Option<(u16, u16)>,
        action: FwAction,
    ) -> FirewallRule {
        FirewallRule {
            meta: Meta {
                id: id.into(),
                ..Meta::default()
            },
            shared: false,
            protocol: proto.map(str::to_string),
            ip_version: 4,
            source_ip_address: None,
            destination_ip_address: None,
            source_port: None,
            destination_port: dport.map(|(min, max)| PortRange { min, max }),
            action,
            enabled: true,
            deleting: false,
        }
    }

    fn tcp_to(port: u16) -> Match {
        Match::new()
            .eth_type(ETH_IPV4)
            .ip_proto(TCP)
            .masked(Field::TcpSrc, 40000u16, 0xffffu16)
            .masked(Field::TcpDst, port, 0xffffu16)
    }

    #[test]
    fn first_match_wins_and_the_rest_is_denied() {
        let deny22 = rule("deny22", Some("tcp"), Some((22, 22)), FwAction::Deny);
        let rej23 = rule("rej23", Some("tcp"), Some((23, 23)), FwAction::Reject);
        let any = rule("any", None, None, FwAction::Allow);
        let e = compile(&[&deny22, &rej23, &any]);
        assert_eq!(e.len(), 3);
        assert!(e[0].priority > e[1].priority && e[1].priority > e[2].priority);
        assert_eq!(decide(&e, &tcp_to(22)), Some(("deny22", FwAction::Deny)));
        assert_eq!(decide(&e, &tcp_to(23)), Some(("rej23", FwAction::Reject)));
        assert_eq!(decide(&e, &tcp_to(80)), Some(("any", FwAction::Allow)));
        // Inserting allow tcp/22 first opens 22; reordering is a new priority list.
        let allow22 = rule("allow22", Some("tcp"), Some((22, 22)), FwAction::Allow);
        let e = compile(&[&allow22, &deny22, &rej23, &any]);
        assert_eq!(decide(&e, &tcp_to(22)), Some(("allow22", FwAction::Allow)));
        // Without the final allow, the implicit deny: nothing decides.
        let e = compile(&[&deny22]);
        assert_eq!(decide(&e, &tcp_to(80)), None);
    }

    #[test]
    fn ranges_prefixes_and_disabled_rules() {
        let mut r = rule("web", Some("tcp"), Some((8000, 8080)), FwAction::Allow);
        r.source_ip_address = Some(FwAddress {
            text: "10.0.0.0/24".into(),
            addr: "10.0.0.0".parse().unwrap(),
            prefix_len: 24,
        });
        let ms = rule_matches(&r);
        assert_eq!(ms.len(), port_masks(8000, 8080).len());
        let e = compile(&[&r]);
        let from = |src: &str, port: u16| {
            let ip: std::net::Ipv4Addr = src.parse().unwrap();
            tcp_to(port).masked(Field::Ipv4Src, u32::from(ip), u32::MAX)
        };
        assert!(decide(&e, &from("10.0.0.9", 8000)).is_some());
        assert!(decide(&e, &from("10.0.0.9", 8080)).is_some());
        assert!(decide(&e, &from("10.0.0.9", 8081)).is_none());
        assert!(decide(&e, &from("10.0.1.9", 8040)).is_none());
        r.enabled = false;
        assert!(compile(&[&r]).is_empty());
        // An IPv6 rule with an IPv4 prefix can match nothing.
        r.enabled = true;
        r.ip_version = 6;
        assert!(rule_matches(&r).is_empty());
    }
}
