//! `/v2.0/security-groups` and `/v2.0/security-group-rules`: groups (with each project's
//! `default` group, created on first use with the standard rules) and their rules.

use super::{base_url, check_if_match, new_meta, one, render_meta, touch, update_meta};
use crate::Api;
use crate::body::{Attrs, JsonBody, bad_attr, parse_cidr, show};
use crate::context::Context;
use crate::db::{Txn, retrying};
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use ipnet::IpNet;
use model::{Direction, EtherType, Meta, Port, SecurityGroup, SecurityGroupRule};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub const GROUP_ATTRS: &[&str] = &[
    "id",
    "name",
    "description",
    "project_id",
    "tenant_id",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
    "security_group_rules",
    "stateful",
];

pub const RULE_ATTRS: &[&str] = &[
    "id",
    "description",
    "project_id",
    "tenant_id",
    "created_at",
    "updated_at",
    "revision_number",
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
];

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

pub fn render_rule(r: &SecurityGroupRule) -> Map<String, Value> {
    let mut m = render_meta(&r.meta, false);
    m.remove("tags");
    m.insert("security_group_id".into(), json!(r.security_group_id));
    m.insert("direction".into(), json!(r.direction));
    m.insert("ethertype".into(), json!(r.ethertype));
    m.insert("protocol".into(), json!(r.protocol));
    m.insert("port_range_min".into(), json!(r.port_range_min));
    m.insert("port_range_max".into(), json!(r.port_range_max));
    m.insert(
        "remote_ip_prefix".into(),
        json!(r.remote_ip_prefix.map(|p| p.to_string())),
    );
    m.insert("remote_group_id".into(), json!(r.remote_group_id));
    debug_assert_eq!(m.len(), RULE_ATTRS.len());
    m
}

pub fn render_group(g: &SecurityGroup, rules: &[SecurityGroupRule]) -> Map<String, Value> {
    let mut m = render_meta(&g.meta, true);
    let rules: Vec<Value> = rules
        .iter()
        .filter(|r| r.security_group_id == g.meta.id)
        .map(|r| Value::Object(render_rule(r)))
        .collect();
    m.insert("security_group_rules".into(), Value::Array(rules));
    m.insert("stateful".into(), json!(g.stateful));
    debug_assert_eq!(m.len(), GROUP_ATTRS.len());
    m
}

fn rule(
    meta_of: &Meta,
    group: &str,
    direction: Direction,
    ethertype: EtherType,
    remote_group: Option<String>,
) -> SecurityGroupRule {
    SecurityGroupRule {
        meta: Meta {
            id: model::new_id(),
            name: String::new(),
            ..meta_of.clone()
        },
        security_group_id: group.into(),
        direction,
        ethertype,
        protocol: None,
        protocol_number: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: remote_group,
    }
}

fn group_meta(project: &str, name: &str, description: &str) -> Meta {
    let now = model::time::now();
    Meta {
        id: model::new_id(),
        name: name.into(),
        description: description.into(),
        project_id: project.into(),
        tags: vec![],
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    }
}

/// The id of `project`'s default group, creating it (with its four rules) on first use.
pub async fn ensure_default(api: &Api, project: &str) -> ApiResult<String> {
    let claim = format!("defaultsg/{project}");
    loop {
        if let Some(id) = api.db.claim_owner(&claim).await? {
            return Ok(id);
        }
        let meta = group_meta(project, "default", "Default security group");
        let g = SecurityGroup {
            meta: meta.clone(),
            stateful: true,
            is_default: true,
            deleting: false,
        };
        let id = g.meta.id.clone();
        let mut rule_meta = meta.clone();
        rule_meta.description = String::new();
        let mut txn = Txn::new();
        txn.create(&g);
        for et in [EtherType::IPv4, EtherType::IPv6] {
            add_rule(
                &mut txn,
                &rule(&rule_meta, &id, Direction::Egress, et, None),
            );
            let from_members = rule(&rule_meta, &id, Direction::Ingress, et, Some(id.clone()));
            add_rule(&mut txn, &from_members);
        }
        txn.claim(&claim, &id);
        match txn.commit(&api.db).await {
            Ok(_) => {
                tracing::info!(project, group = %id, "default security group created");
                return Ok(id);
            }
            // Another request created it first: read its id.
            Err(e) if e.retry => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn all_rules(api: &Api) -> ApiResult<Vec<SecurityGroupRule>> {
    Ok(api
        .db
        .all::<SecurityGroupRule>()
        .await?
        .into_iter()
        .map(|(r, _)| r)
        .collect())
}

pub async fn list_groups(
    State(api): State<Arc<Api>>,
    ctx: Context,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(q.as_deref(), GROUP_ATTRS)?;
    ensure_default(&api, &ctx.project_id).await?;
    let rules = all_rules(&api).await?;
    let items = api
        .db
        .all::<SecurityGroup>()
        .await?
        .into_iter()
        .filter(|(g, _)| ctx.owns(&g.meta.project_id))
        .map(|(g, _)| render_group(&g, &rules))
        .collect();
    Ok(Json(query.respond(
        "security_groups",
        &base_url(&headers),
        items,
    )?))
}

pub async fn show_group(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let (g, _) = super::visible::<SecurityGroup>(&api, &ctx, &id).await?;
    let rules = all_rules(&api).await?;
    Ok(Json(one(
        "security_group",
        render_group(&g, &rules),
        q.as_deref(),
        GROUP_ATTRS,
    )?))
}

pub async fn create_group(
    State(api): State<Arc<Api>>,
    ctx: Context,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut attrs = Attrs::from_body(body, "security_group", "POST")?;
    attrs.forbid(&[
        "id",
        "security_group_rules",
        "created_at",
        "updated_at",
        "revision_number",
    ])?;
    let meta = new_meta(&ctx, &mut attrs)?;
    let stateful = attrs.bool("stateful")?.unwrap_or(true);
    attrs.finish()?;
    if meta.name == "default" {
        return Err(ApiError::conflict(
            "SecurityGroupDefaultAlreadyExists",
            "Default security group already exists.",
        ));
    }
    ensure_default(&api, &meta.project_id).await?;
    let g = SecurityGroup {
        meta: meta.clone(),
        stateful,
        is_default: false,
        deleting: false,
    };
    let mut rule_meta = meta;
    rule_meta.description = String::new();
    rule_meta.tags.clear();
    let rules: Vec<_> = [EtherType::IPv4, EtherType::IPv6]
        .into_iter()
        .map(|et| rule(&rule_meta, &g.meta.id, Direction::Egress, et, None))
        .collect();
    let mut txn = Txn::new();
    txn.create(&g);
    for r in &rules {
        add_rule(&mut txn, r);
    }
    txn.commit(&api.db).await?;
    tracing::info!(group = %g.meta.id, "security group created");
    Ok((
        StatusCode::CREATED,
        Json(json!({"security_group": render_group(&g, &rules)})),
    ))
}

pub async fn update_group(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let g = retrying(|| async {
        let (mut g, rev) = super::visible::<SecurityGroup>(&api, &ctx, &id).await?;
        check_if_match(&headers, &g.meta)?;
        let mut attrs = Attrs::from_body(body.clone(), "security_group", "PUT")?;
        update_meta(&mut g.meta, &mut attrs)?;
        if let Some(s) = attrs.bool("stateful")? {
            g.stateful = s;
        }
        attrs.finish()?;
        if g.is_default && g.meta.name != "default" {
            return Err(ApiError::conflict(
                "SecurityGroupCannotUpdateDefault",
                "Updating default security group name not allowed.",
            ));
        }
        touch(&mut g.meta);
        let mut txn = Txn::new();
        txn.update(&g, rev);
        txn.commit(&api.db).await?;
        Ok(g)
    })
    .await?;
    let rules = all_rules(&api).await?;
    Ok(Json(json!({"security_group": render_group(&g, &rules)})))
}

pub async fn delete_group(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    retrying(|| async {
        let (mut g, rev) = super::visible::<SecurityGroup>(&api, &ctx, &id).await?;
        check_if_match(&headers, &g.meta)?;
        if g.is_default && !ctx.is_admin {
            return Err(ApiError::conflict(
                "SecurityGroupCannotRemoveDefault",
                "Insufficient rights for removing default security group.",
            ));
        }
        let rev = super::mark_deleting(&api, &mut g, rev).await?;
        if api
            .db
            .all::<Port>()
            .await?
            .iter()
            .any(|(p, _)| p.security_groups.contains(&id))
        {
            super::unmark_deleting(&api, &mut g, rev).await;
            return Err(ApiError::conflict(
                "SecurityGroupInUse",
                format!("Security Group {id} in use."),
            ));
        }
        let mut txn = Txn::new();
        txn.delete::<SecurityGroup>(&id, rev);
        // Rules of the group, and rules elsewhere that name it as their remote group.
        for (r, rrev) in api.db.all::<SecurityGroupRule>().await? {
            if r.security_group_id == id || r.remote_group_id.as_deref() == Some(id.as_str()) {
                txn.delete::<SecurityGroupRule>(&r.meta.id, rrev);
                txn.release(&rule_fingerprint(&r));
            }
        }
        if g.is_default {
            txn.release(&format!("defaultsg/{}", g.meta.project_id));
        }
        txn.commit(&api.db).await?;
        Ok(())
    })
    .await?;
    tracing::info!(group = %id, "security group deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_rules(
    State(api): State<Arc<Api>>,
    ctx: Context,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(q.as_deref(), RULE_ATTRS)?;
    ensure_default(&api, &ctx.project_id).await?;
    let items = all_rules(&api)
        .await?
        .iter()
        .filter(|r| ctx.owns(&r.meta.project_id))
        .map(render_rule)
        .collect();
    Ok(Json(query.respond(
        "security_group_rules",
        &base_url(&headers),
        items,
    )?))
}

pub async fn show_rule(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let (r, _) = super::visible::<SecurityGroupRule>(&api, &ctx, &id).await?;
    Ok(Json(one(
        "security_group_rule",
        render_rule(&r),
        q.as_deref(),
        RULE_ATTRS,
    )?))
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

fn port_value(attrs: &mut Attrs, key: &str) -> ApiResult<Option<u32>> {
    Ok(attrs.u32_or_null(key)?.flatten())
}

pub async fn create_rule(
    State(api): State<Arc<Api>>,
    ctx: Context,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut attrs = Attrs::from_body(body, "security_group_rule", "POST")?;
    attrs.forbid(&["id", "created_at", "updated_at", "revision_number"])?;
    let group_id = attrs
        .string("security_group_id")?
        .ok_or_else(|| bad_attr("security_group_id", "security_group_id is required"))?;
    let (group, grev) = super::visible::<SecurityGroup>(&api, &ctx, &group_id).await?;
    super::not_deleting(&group)?;
    let mut meta = new_meta(&ctx, &mut attrs)?;
    meta.project_id = group.meta.project_id.clone();
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
    let min = port_value(&mut attrs, "port_range_min")?;
    let max = port_value(&mut attrs, "port_range_max")?;
    let (port_range_min, port_range_max) = match (protocol_number, min, max) {
        (_, None, None) => (None, None),
        (_, None, Some(_)) => {
            return Err(ApiError::bad_request(
                "SecurityGroupMissingIcmpType",
                "port_range_max requires port_range_min",
            ));
        }
        (Some(p), Some(a), b) if PORT_PROTOCOLS.contains(&p) => {
            let b = b.unwrap_or(a);
            if a == 0 || a > b || b > 65535 {
                return Err(ApiError::bad_request(
                    "SecurityGroupInvalidPortRange",
                    "For TCP/UDP protocols, port_range_min must be <= port_range_max and within 1..65535",
                ));
            }
            (Some(a as u16), Some(b as u16))
        }
        (Some(1 | 58), Some(t), c) => {
            if t > 255 || c.is_some_and(|c| c > 255) {
                return Err(ApiError::bad_request(
                    "SecurityGroupInvalidIcmpValue",
                    "Invalid value for ICMP: type and code must be within 0..255",
                ));
            }
            (Some(t as u16), c.map(|c| c as u16))
        }
        _ => {
            return Err(ApiError::bad_request(
                "SecurityGroupInvalidPortRange",
                "Port ranges are only valid for tcp, udp, sctp, dccp, udplite, icmp and icmpv6",
            ));
        }
    };
    let remote_ip_prefix = match attrs.take("remote_ip_prefix") {
        None | Some(Value::Null) => None,
        Some(v) => {
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
            Some(net)
        }
    };
    let remote_group_id = attrs
        .string_or_null("remote_group_id")?
        .filter(|s| !s.is_empty());
    if remote_group_id.is_some() && remote_ip_prefix.is_some() {
        return Err(ApiError::bad_request(
            "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            "Only remote_ip_prefix or remote_group_id may be provided.",
        ));
    }
    attrs.finish()?;
    let mut txn = Txn::new();
    txn.check::<SecurityGroup>(&group_id, grev);
    if let Some(rg) = &remote_group_id {
        let (remote, rrev) = super::visible::<SecurityGroup>(&api, &ctx, rg).await?;
        super::not_deleting(&remote)?;
        if rg != &group_id {
            txn.check::<SecurityGroup>(rg, rrev);
        }
    }
    let r = SecurityGroupRule {
        meta,
        security_group_id: group_id.clone(),
        direction,
        ethertype,
        protocol,
        protocol_number,
        port_range_min,
        port_range_max,
        remote_ip_prefix,
        remote_group_id,
    };
    // The claim on the rule's content names the rule that already has it, and makes
    // duplicates impossible even under concurrency.
    let exists = |id: &str| {
        ApiError::conflict(
            "SecurityGroupRuleExists",
            format!("Security group rule already exists. Rule id is {id}."),
        )
    };
    if let Some(dup) = api.db.claim_owner(&rule_fingerprint(&r)).await? {
        return Err(exists(&dup));
    }
    txn.claim_requested(
        &rule_fingerprint(&r),
        &r.meta.id,
        exists("(created meanwhile)"),
    );
    txn.create(&r);
    txn.commit(&api.db).await?;
    tracing::info!(rule = %r.meta.id, group = %group_id, "security group rule created");
    Ok((
        StatusCode::CREATED,
        Json(json!({"security_group_rule": render_rule(&r)})),
    ))
}

/// Writes a rule with the claim on its content that keeps rules unique.
fn add_rule(txn: &mut Txn, r: &SecurityGroupRule) {
    txn.create(r);
    txn.claim(&rule_fingerprint(r), &r.meta.id);
}

/// The claim id of a rule's content: `sgrule/<group>/<dir>/<ethertype>/<proto>/<min>/<max>/<remote>`.
fn rule_fingerprint(r: &SecurityGroupRule) -> String {
    fn opt<T: ToString>(v: Option<T>) -> String {
        v.map(|v| v.to_string()).unwrap_or_else(|| "any".into())
    }
    let remote = match (&r.remote_ip_prefix, &r.remote_group_id) {
        (Some(p), _) => format!("ip:{p}"),
        (_, Some(g)) => format!("group:{g}"),
        _ => "any".into(),
    };
    format!(
        "sgrule/{}/{:?}/{:?}/{}/{}/{}/{remote}",
        r.security_group_id,
        r.direction,
        r.ethertype,
        opt(r.protocol_number),
        opt(r.port_range_min),
        opt(r.port_range_max),
    )
}

pub async fn update_rule(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let r = retrying(|| async {
        let (mut r, rev) = super::visible::<SecurityGroupRule>(&api, &ctx, &id).await?;
        let mut attrs = Attrs::from_body(body.clone(), "security_group_rule", "PUT")?;
        if let Some(d) = attrs.string("description")? {
            r.meta.description = d;
        }
        attrs.finish()?;
        touch(&mut r.meta);
        let mut txn = Txn::new();
        txn.update(&r, rev);
        txn.commit(&api.db).await?;
        Ok(r)
    })
    .await?;
    Ok(Json(json!({"security_group_rule": render_rule(&r)})))
}

pub async fn delete_rule(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    retrying(|| async {
        let (r, rev) = super::visible::<SecurityGroupRule>(&api, &ctx, &id).await?;
        let mut txn = Txn::new();
        txn.delete::<SecurityGroupRule>(&id, rev);
        txn.release(&rule_fingerprint(&r));
        txn.commit(&api.db).await?;
        Ok(())
    })
    .await?;
    tracing::info!(rule = %id, "security group rule deleted");
    Ok(StatusCode::NO_CONTENT)
}
