//! The content of a security group rule as a request gives it (direction, ethertype,
//! protocol, port or ICMP range, remote prefix, group or address group), checked as
//! Neutron checks it: shared by the rules and their templates (default rules).

use crate::body::{Attrs, bad_attr, parse_cidr, show};
use crate::error::{ApiError, ApiResult};
use ipnet::IpNet;
use model::{DefaultSecurityGroupRule, Direction, EtherType, SecurityGroupRule};
use serde_json::{Value, json};

/// A rule's content, parsed and checked on its own (the objects it names are checked
/// by the caller).
#[derive(Clone, Debug)]
pub struct RuleContent {
    pub direction: Direction,
    pub ethertype: EtherType,
    pub protocol: Option<String>,
    pub protocol_number: Option<u8>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    /// As given (host bits kept): Neutron shows it so, and its normalised form apart.
    pub remote_ip_prefix: Option<IpNet>,
    pub remote_group_id: Option<String>,
    pub remote_address_group_id: Option<String>,
}

/// Reads a rule's content from a POST.
pub fn parse_content(attrs: &mut Attrs) -> ApiResult<RuleContent> {
    let direction = match attrs.string("direction")?.as_deref() {
        Some("ingress") => Direction::Ingress,
        Some("egress") => Direction::Egress,
        Some(d) => {
            return Err(bad_attr(
                "direction",
                format!("'{d}' is not in ['ingress', 'egress']"),
            ));
        }
        None => return Err(bad_attr("direction", "direction is required")),
    };
    let ethertype = match attrs.string("ethertype")?.as_deref() {
        None | Some("IPv4") => EtherType::IPv4,
        Some("IPv6") => EtherType::IPv6,
        Some(e) => {
            return Err(bad_attr(
                "ethertype",
                format!("'{e}' is not in ['IPv4', 'IPv6']"),
            ));
        }
    };
    let (protocol, protocol_number) =
        parse_protocol(attrs.take("protocol").unwrap_or(Value::Null), ethertype)?;
    let min = port_value(attrs.take("port_range_min"))?;
    let max = port_value(attrs.take("port_range_max"))?;
    let (port_range_min, port_range_max) = port_range(protocol_number, min, max)?;
    let remote_ip_prefix = remote_prefix(attrs.take("remote_ip_prefix"), ethertype)?;
    let remote_group_id = attrs
        .string_or_null("remote_group_id")?
        .filter(|s| !s.is_empty());
    let remote_address_group_id = attrs
        .string_or_null("remote_address_group_id")?
        .filter(|s| !s.is_empty());
    let remotes = [
        remote_ip_prefix.is_some(),
        remote_group_id.is_some(),
        remote_address_group_id.is_some(),
    ];
    if remotes.iter().filter(|r| **r).count() > 1 {
        // Neutron's own exception when the address group is one of them.
        return Err(if remote_address_group_id.is_some() {
            ApiError::bad_request(
                "SecurityGroupMultipleRemoteEntites",
                "Only one of remote_ip_prefix, remote_group_id or remote_address_group_id may be provided.",
            )
        } else {
            ApiError::bad_request(
                "SecurityGroupRemoteGroupAndRemoteIpPrefix",
                "Only remote_ip_prefix or remote_group_id may be provided.",
            )
        });
    }
    Ok(RuleContent {
        direction,
        ethertype,
        protocol,
        protocol_number,
        port_range_min,
        port_range_max,
        remote_ip_prefix,
        remote_group_id,
        remote_address_group_id,
    })
}

/// `normalized_cidr`: the prefix with its host bits cleared.
pub fn normalized(p: &Option<IpNet>) -> Value {
    json!(p.map(|p| p.trunc().to_string()))
}

/// The key of a rule's content (what makes two rules the same): `<dir>/<ethertype>/
/// <proto>/<min>/<max>/<remote>`, the prefix normalised as Neutron compares them.
pub fn content_key(c: &RuleContent) -> String {
    fn opt<T: ToString>(v: Option<T>) -> String {
        v.map(|v| v.to_string()).unwrap_or_else(|| "any".into())
    }
    let remote = match (
        &c.remote_ip_prefix,
        &c.remote_group_id,
        &c.remote_address_group_id,
    ) {
        (Some(p), _, _) => format!("ip:{}", p.trunc()),
        (_, Some(g), _) => format!("group:{g}"),
        (_, _, Some(a)) => format!("ag:{a}"),
        _ => "any".into(),
    };
    format!(
        "{:?}/{:?}/{}/{}/{}/{remote}",
        c.direction,
        c.ethertype,
        opt(c.protocol_number),
        opt(c.port_range_min),
        opt(c.port_range_max),
    )
}

/// The content of a stored rule.
pub fn content_of_rule(r: &SecurityGroupRule) -> RuleContent {
    RuleContent {
        direction: r.direction,
        ethertype: r.ethertype,
        protocol: r.protocol.clone(),
        protocol_number: r.protocol_number,
        port_range_min: r.port_range_min,
        port_range_max: r.port_range_max,
        remote_ip_prefix: r.remote_ip_prefix,
        remote_group_id: r.remote_group_id.clone(),
        remote_address_group_id: r.remote_address_group_id.clone(),
    }
}

/// The content of a stored template.
pub fn content_of_template(t: &DefaultSecurityGroupRule) -> RuleContent {
    RuleContent {
        direction: t.direction,
        ethertype: t.ethertype,
        protocol: t.protocol.clone(),
        protocol_number: t.protocol_number,
        port_range_min: t.port_range_min,
        port_range_max: t.port_range_max,
        remote_ip_prefix: t.remote_ip_prefix,
        remote_group_id: t.remote_group_id.clone(),
        remote_address_group_id: t.remote_address_group_id.clone(),
    }
}

/// The claims that keep templates unique: one per kind of group a template is used in,
/// so that two templates of one content may exist only for different kinds (Neutron's
/// duplicate check).
pub fn template_claims(t: &DefaultSecurityGroupRule) -> Vec<String> {
    let key = content_key(&content_of_template(t));
    [
        (t.used_in_default_sg, "default"),
        (t.used_in_non_default_sg, "other"),
    ]
    .into_iter()
    .filter(|(used, _)| *used)
    .map(|(_, kind)| format!("sgtemplate/{kind}/{key}"))
    .collect()
}

/// IP protocol names Neutron accepts, with their numbers.
const PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("icmp", 1),
    ("icmpv6", 58),
    ("igmp", 2),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// Protocols that exist only over IPv6 (refused in IPv4 rules, by name or number):
/// ipv6-encap, ipv6-route, ipv6-frag, ipv6-icmp, ipv6-nonxt, ipv6-opts.
const IPV6_ONLY: [u8; 6] = [41, 43, 44, 58, 59, 60];

/// Protocols whose rules may name a port range.
const PORT_PROTOCOLS: [u8; 5] = [6, 17, 33, 132, 136];

pub fn parse_protocol(v: Value, ethertype: EtherType) -> ApiResult<(Option<String>, Option<u8>)> {
    let text = match &v {
        Value::Null => return Ok((None, None)),
        Value::String(s) => s.to_ascii_lowercase(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(bad_attr(
                "protocol",
                format!("'{v}' is not a protocol name or number"),
            ));
        }
    };
    if text == "any" || text.is_empty() {
        return Ok((None, None));
    }
    let number = match PROTOCOLS.iter().find(|(n, _)| *n == text) {
        Some((_, n)) => *n,
        None => text.parse::<u8>().map_err(|_| {
            ApiError::bad_request("SecurityGroupRuleInvalidProtocol", format!("Security group rule protocol {} not supported. Only protocol values {:?} and integer representations [0 to 255] are supported.", show(&v), PROTOCOLS.iter().map(|p| p.0).collect::<Vec<_>>()))
        })?,
    };
    if ethertype == EtherType::IPv4 && IPV6_ONLY.contains(&number) {
        return Err(ApiError::bad_request(
            "SecurityGroupEthertypeConflictWithProtocol",
            format!("Ethertype IPv4 is not supported by protocol {text}."),
        ));
    }
    let number = if ethertype == EtherType::IPv6 && number == 1 {
        58
    } else {
        number
    };
    Ok((Some(text), Some(number)))
}

/// A port bound as given: an integer (or its string) within 0..=65535, or absent/null.
fn port_value(v: Option<Value>) -> ApiResult<Option<u32>> {
    let v = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let n = match &v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (0..=65535).contains(&n) => Ok(Some(n as u32)),
        _ => Err(ApiError::bad_request(
            "SecurityGroupInvalidPortValue",
            format!("Invalid value for port {}", crate::body::show(&v)),
        )),
    }
}

/// The port range of TCP-like protocols, or the type and code of ICMP, checked as
/// Neutron checks them (and with its messages, which clients match on).
fn port_range(
    protocol: Option<u8>,
    min: Option<u32>,
    max: Option<u32>,
) -> ApiResult<(Option<u16>, Option<u16>)> {
    let invalid_range = || {
        ApiError::bad_request(
            "SecurityGroupInvalidPortRange",
            "For TCP/UDP protocols, port_range_min must be <= port_range_max",
        )
    };
    match (protocol, min, max) {
        (_, None, None) => Ok((None, None)),
        (None, _, _) => Err(ApiError::bad_request(
            "SecurityGroupProtocolRequiredWithPorts",
            "Must also specify protocol if port range is given.",
        )),
        (Some(p), a, b) if PORT_PROTOCOLS.contains(&p) => match (a, b) {
            (Some(0), _) | (_, Some(0)) => Err(ApiError::bad_request(
                "SecurityGroupInvalidPortValue",
                "Invalid value for port 0",
            )),
            (Some(a), Some(b)) if a <= b => Ok((Some(a as u16), Some(b as u16))),
            _ => Err(invalid_range()),
        },
        (Some(1 | 58), t, c) => {
            for (field, attr, v) in [("type", "port_range_min", t), ("code", "port_range_max", c)] {
                if let Some(v) = v.filter(|v| *v > 255) {
                    return Err(ApiError::bad_request(
                        "SecurityGroupInvalidIcmpValue",
                        format!(
                            "Invalid value for ICMP {field} ({attr}): {v}. It must be 0 to 255."
                        ),
                    ));
                }
            }
            match (t, c) {
                (None, Some(c)) => Err(ApiError::bad_request(
                    "SecurityGroupMissingIcmpType",
                    format!(
                        "ICMP code (port-range-max) {c} is provided but ICMP type (port-range-min) is missing."
                    ),
                )),
                (t, c) => Ok((t.map(|t| t as u16), c.map(|c| c as u16))),
            }
        }
        _ => Err(ApiError::bad_request(
            "SecurityGroupInvalidPortRange",
            "Port ranges are only valid for tcp, udp, sctp, dccp, udplite, icmp and icmpv6",
        )),
    }
}

/// `remote_ip_prefix`, of the rule's ethertype.
fn remote_prefix(v: Option<Value>, ethertype: EtherType) -> ApiResult<Option<IpNet>> {
    let v = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    // Neutron accepts host bits: it keeps the prefix as given and shows it normalised
    // apart (`normalized_cidr`).
    let s = v.as_str().ok_or_else(|| {
        bad_attr(
            "remote_ip_prefix",
            format!("'{v}' is not a valid IP prefix"),
        )
    })?;
    let net = s
        .parse::<IpNet>()
        .or_else(|_| parse_cidr("remote_ip_prefix", &v))?;
    if (ethertype == EtherType::IPv4) != matches!(net, IpNet::V4(_)) {
        return Err(ApiError::bad_request(
            "SecurityGroupRuleParameterConflict",
            format!("Conflicting value ethertype {ethertype:?} for CIDR {net}"),
        ));
    }
    Ok(Some(net))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message of the error a (protocol, min, max) gets, as given in JSON.
    fn refusal(protocol: Option<u8>, min: Value, max: Value) -> String {
        let r = port_value(Some(min))
            .and_then(|a| Ok((a, port_value(Some(max))?)))
            .and_then(|(a, b)| port_range(protocol, a, b));
        match r {
            Ok(v) => panic!("accepted: {v:?}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn ipv6_only_protocols_are_refused_in_ipv4_rules() {
        for p in [
            "ipv6-encap",
            "ipv6-frag",
            "ipv6-icmp",
            "ipv6-nonxt",
            "ipv6-opts",
            "ipv6-route",
            "icmpv6",
        ] {
            let e = parse_protocol(json!(p), EtherType::IPv4).unwrap_err();
            assert_eq!(e.kind, "SecurityGroupEthertypeConflictWithProtocol", "{p}");
            assert!(parse_protocol(json!(p), EtherType::IPv6).is_ok(), "{p}");
        }
        for n in [41, 43, 44, 58, 59, 60] {
            assert!(parse_protocol(json!(n), EtherType::IPv4).is_err(), "{n}");
        }
        assert!(parse_protocol(json!("tcp"), EtherType::IPv4).is_ok());
    }

    #[test]
    fn port_ranges_are_refused_with_neutrons_messages() {
        let tcp = Some(6);
        let icmp = Some(1);
        let cases = [
            (tcp, json!(-16), json!(80), "Invalid value for port -16"),
            (
                tcp,
                json!(80),
                json!(79),
                "port_range_min must be <= port_range_max",
            ),
            (tcp, json!(80), json!(65536), "Invalid value for port 65536"),
            (
                tcp,
                json!(null),
                json!(6),
                "port_range_min must be <= port_range_max",
            ),
            (tcp, json!(-16), json!(65536), "Invalid value for port"),
            (tcp, json!(0), json!(80), "Invalid value for port 0"),
            (tcp, json!("x"), json!(80), "Invalid value for port x"),
            (icmp, json!(1), json!(256), "Invalid value for ICMP code"),
            (icmp, json!(-1), json!(25), "Invalid value"),
            (
                icmp,
                json!(null),
                json!(6),
                "ICMP type (port-range-min) is missing",
            ),
            (icmp, json!(300), json!(1), "Invalid value for ICMP type"),
            (None, json!(22), json!(22), "Must also specify protocol"),
        ];
        for (p, a, b, want) in cases {
            let got = refusal(p, a.clone(), b.clone());
            assert!(got.contains(want), "{p:?} {a} {b}: {got}");
        }
        assert_eq!(
            port_range(tcp, Some(22), Some(22)).unwrap(),
            (Some(22), Some(22))
        );
        assert_eq!(port_value(Some(json!("8080"))).unwrap(), Some(8080));
        assert_eq!(port_range(icmp, Some(8), None).unwrap(), (Some(8), None));
        assert_eq!(port_range(tcp, None, None).unwrap(), (None, None));
    }
}
