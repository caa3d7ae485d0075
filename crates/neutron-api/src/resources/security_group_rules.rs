//! `/v2.0/security-group-rules`: a group's rules (direction, ethertype, protocol, port or
//! ICMP range, remote prefix or group), unique by content (`ops::groups`).

use super::lifecycle::Lifecycle;
use super::ops::Plan;
use super::ops::deleting::not_deleting;
use super::ops::groups::{ensure_default, rule_fingerprint};
use super::{Resource, Standard, visible, writable};
use crate::Api;
use crate::body::{Attrs, bad_attr, parse_cidr, show};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use ipnet::IpNet;
use model::{Direction, EtherType, Meta, SecurityGroup, SecurityGroupRule};
use serde_json::{Map, Value, json};

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

/// Protocols whose rules may name a port range.
const PORT_PROTOCOLS: [u8; 5] = [6, 17, 33, 132, 136];

impl Resource for SecurityGroupRule {
    const COLLECTION: &'static str = "security_group_rules";
    const RESOURCE: &'static str = "security_group_rule";
    const STANDARD: Standard = Standard {
        name: false,
        tags: false,
        described: true,
    };
    const OWN_ATTRS: &'static [&'static str] = &[
        "security_group_id",
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "remote_group_id",
    ];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("security_group_id".into(), json!(self.security_group_id));
        m.insert("direction".into(), json!(self.direction));
        m.insert("ethertype".into(), json!(self.ethertype));
        m.insert("protocol".into(), json!(self.protocol));
        m.insert("port_range_min".into(), json!(self.port_range_min));
        m.insert("port_range_max".into(), json!(self.port_range_max));
        m.insert(
            "remote_ip_prefix".into(),
            json!(self.remote_ip_prefix.map(|p| p.to_string())),
        );
        m.insert("remote_group_id".into(), json!(self.remote_group_id));
    }

    async fn before_list(api: &Api, ctx: &Context) -> ApiResult<()> {
        ensure_default(api, &ctx.project_id).await.map(drop)
    }
}

/// A POST's own attributes: the rule's content, checked.
pub struct NewRule {
    security_group_id: String,
    direction: Direction,
    ethertype: EtherType,
    protocol: Option<String>,
    protocol_number: Option<u8>,
    port_range_min: Option<u16>,
    port_range_max: Option<u16>,
    remote_ip_prefix: Option<IpNet>,
    remote_group_id: Option<String>,
}

impl Lifecycle for SecurityGroupRule {
    type Create = NewRule;
    /// Only the description changes (a standard attribute).
    type Update = ();

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewRule> {
        let security_group_id = attrs
            .string("security_group_id")?
            .ok_or_else(|| bad_attr("security_group_id", "security_group_id is required"))?;
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
        let min = attrs.u32_or_null("port_range_min")?.flatten();
        let max = attrs.u32_or_null("port_range_max")?.flatten();
        let (port_range_min, port_range_max) = port_range(protocol_number, min, max)?;
        let remote_ip_prefix = remote_prefix(attrs.take("remote_ip_prefix"), ethertype)?;
        let remote_group_id = attrs
            .string_or_null("remote_group_id")?
            .filter(|s| !s.is_empty());
        if remote_group_id.is_some() && remote_ip_prefix.is_some() {
            return Err(ApiError::bad_request(
                "SecurityGroupRemoteGroupAndRemoteIpPrefix",
                "Only remote_ip_prefix or remote_group_id may be provided.",
            ));
        }
        Ok(NewRule {
            security_group_id,
            direction,
            ethertype,
            protocol,
            protocol_number,
            port_range_min,
            port_range_max,
            remote_ip_prefix,
            remote_group_id,
        })
    }

    async fn plan_create(
        api: &Api,
        ctx: &Context,
        mut meta: Meta,
        req: &NewRule,
        plan: &mut Plan<'_>,
    ) -> ApiResult<SecurityGroupRule> {
        let group_id = &req.security_group_id;
        // Adding a rule changes the group: a group shared with the caller is not its own.
        let (group, grev) = writable::<SecurityGroup>(api, ctx, group_id, "update", &[]).await?;
        not_deleting(&group)?;
        plan.txn.check::<SecurityGroup>(group_id, grev);
        if let Some(rg) = &req.remote_group_id {
            let (remote, rrev) = visible::<SecurityGroup>(api, ctx, rg).await?;
            not_deleting(&remote)?;
            if rg != group_id {
                plan.txn.check::<SecurityGroup>(rg, rrev);
            }
        }
        // A rule belongs to its group's project, whoever adds it.
        meta.project_id = group.meta.project_id;
        let r = SecurityGroupRule {
            meta,
            security_group_id: group_id.clone(),
            direction: req.direction,
            ethertype: req.ethertype,
            protocol: req.protocol.clone(),
            protocol_number: req.protocol_number,
            port_range_min: req.port_range_min,
            port_range_max: req.port_range_max,
            remote_ip_prefix: req.remote_ip_prefix,
            remote_group_id: req.remote_group_id.clone(),
        };
        // The claim on the rule's content names the rule that already has it, and makes
        // duplicates impossible even under concurrency.
        let exists = |id: &str| {
            ApiError::conflict(
                "SecurityGroupRuleExists",
                format!("Security group rule already exists. Rule id is {id}."),
            )
        };
        let fingerprint = rule_fingerprint(&r);
        if let Some(dup) = api.db.claim_owner(&fingerprint).await? {
            return Err(exists(&dup));
        }
        (plan.txn).claim_requested(&fingerprint, &r.meta.id, exists("(created meanwhile)"));
        Ok(r)
    }

    fn parse_update(_: &Context, _: &SecurityGroupRule, _: &mut Attrs) -> ApiResult<()> {
        Ok(())
    }

    async fn plan_update(
        _api: &Api,
        _ctx: &Context,
        _r: &mut SecurityGroupRule,
        _req: (),
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        Ok(())
    }

    async fn plan_delete(
        _api: &Api,
        _ctx: &Context,
        r: &SecurityGroupRule,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        plan.txn.release(&rule_fingerprint(r));
        Ok(())
    }
}

fn parse_protocol(v: Value, ethertype: EtherType) -> ApiResult<(Option<String>, Option<u8>)> {
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
    if ethertype == EtherType::IPv4 && number == 58 {
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

/// The port range of TCP-like protocols, or the type and code of ICMP.
fn port_range(
    protocol: Option<u8>,
    min: Option<u32>,
    max: Option<u32>,
) -> ApiResult<(Option<u16>, Option<u16>)> {
    match (protocol, min, max) {
        (_, None, None) => Ok((None, None)),
        (_, None, Some(_)) => Err(ApiError::bad_request(
            "SecurityGroupMissingIcmpType",
            "port_range_max requires port_range_min",
        )),
        (Some(p), Some(a), b) if PORT_PROTOCOLS.contains(&p) => {
            let b = b.unwrap_or(a);
            if a == 0 || a > b || b > 65535 {
                return Err(ApiError::bad_request(
                    "SecurityGroupInvalidPortRange",
                    "For TCP/UDP protocols, port_range_min must be <= port_range_max and within 1..65535",
                ));
            }
            Ok((Some(a as u16), Some(b as u16)))
        }
        (Some(1 | 58), Some(t), c) => {
            if t > 255 || c.is_some_and(|c| c > 255) {
                return Err(ApiError::bad_request(
                    "SecurityGroupInvalidIcmpValue",
                    "Invalid value for ICMP: type and code must be within 0..255",
                ));
            }
            Ok((Some(t as u16), c.map(|c| c as u16)))
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
    // Neutron accepts host bits and normalises the prefix.
    let s = v.as_str().ok_or_else(|| {
        bad_attr(
            "remote_ip_prefix",
            format!("'{v}' is not a valid IP prefix"),
        )
    })?;
    let net = s
        .parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| parse_cidr("remote_ip_prefix", &v))?;
    if (ethertype == EtherType::IPv4) != matches!(net, IpNet::V4(_)) {
        return Err(ApiError::bad_request(
            "SecurityGroupRuleParameterConflict",
            format!("Conflicting value ethertype {ethertype:?} for CIDR {net}"),
        ));
    }
    Ok(Some(net))
}
