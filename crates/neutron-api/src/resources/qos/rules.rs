//! A QoS policy's rules: `/v2.0/qos/policies/{id}/{bandwidth_limit,dscp_marking,
//! minimum_bandwidth}_rules[/{rule}]`, and the same rules by id alone
//! (`/v2.0/qos/alias-<type>-rules/{rule}`, `qos-rules-alias`). Rules live inside their
//! policy: each write is one compare-and-swap of the policy, so concurrent writers retry.

use super::super::{base_url, touch, visible};
use crate::Api;
use crate::body::{Attrs, JsonBody, bad_attr};
use crate::context::Context;
use crate::db::{Txn, retrying};
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use crate::policy::{self, Target};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use model::qos::VALID_DSCP_MARKS;
use model::{QosDirection, QosPolicy, QosRule, QosRuleKind};
use nbdb::Revision;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Neutron's `DB_INTEGER_MAX_VALUE`: the largest rate a rule takes.
const MAX_RATE: u32 = i32::MAX as u32;

/// One rule type's names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RuleType {
    /// `bandwidth_limit`.
    pub name: &'static str,
    /// The attributes of its JSON, after `id`.
    attrs: &'static [&'static str],
}

pub const BANDWIDTH_LIMIT: RuleType = RuleType {
    name: "bandwidth_limit",
    attrs: &["id", "max_kbps", "max_burst_kbps", "direction"],
};
pub const DSCP_MARKING: RuleType = RuleType {
    name: "dscp_marking",
    attrs: &["id", "dscp_mark"],
};
pub const MINIMUM_BANDWIDTH: RuleType = RuleType {
    name: "minimum_bandwidth",
    attrs: &["id", "min_kbps", "direction"],
};
/// The rule types this backend implements, as `/v2.0/qos/rule-types` lists them.
pub const TYPES: [RuleType; 3] = [BANDWIDTH_LIMIT, DSCP_MARKING, MINIMUM_BANDWIDTH];

impl RuleType {
    /// `bandwidth_limit_rule`: the key of one rule's body.
    fn resource(self) -> String {
        format!("{}_rule", self.name)
    }

    /// The type of a sub-collection (`bandwidth_limit_rules`) or 404.
    fn from_collection(coll: &str) -> ApiResult<RuleType> {
        TYPES
            .into_iter()
            .find(|t| coll.strip_suffix("_rules") == Some(t.name))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "HTTPNotFound",
                    "The resource could not be found.",
                )
            })
    }

    /// The type of an alias collection (`alias-bandwidth-limit-rules`) or 404.
    fn from_alias(coll: &str) -> ApiResult<RuleType> {
        let name = coll.strip_prefix("alias-").unwrap_or("").replace('-', "_");
        Self::from_collection(&name)
    }

    fn is(self, kind: &QosRuleKind) -> bool {
        kind.type_name() == self.name
    }
}

/// A rule's JSON as its own resource: `id` and its type's attributes.
pub fn render(r: &QosRule) -> Map<String, Value> {
    let v = match &r.kind {
        QosRuleKind::BandwidthLimit {
            max_kbps,
            max_burst_kbps,
            direction,
        } => json!({"id": r.id, "max_kbps": max_kbps, "max_burst_kbps": max_burst_kbps,
                    "direction": direction.as_str()}),
        QosRuleKind::DscpMarking { dscp_mark } => json!({"id": r.id, "dscp_mark": dscp_mark}),
        QosRuleKind::MinimumBandwidth {
            min_kbps,
            direction,
        } => json!({"id": r.id, "min_kbps": min_kbps, "direction": direction.as_str()}),
    };
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A rule's JSON inside its policy's `rules`: with its `type` and `qos_policy_id`.
pub fn render_in_policy(policy_id: &str, r: &QosRule) -> Value {
    let mut m = render(r);
    m.insert("type".into(), json!(r.kind.type_name()));
    m.insert("qos_policy_id".into(), json!(policy_id));
    Value::Object(m)
}

fn required<T>(v: Option<T>, key: &str) -> ApiResult<T> {
    v.ok_or_else(|| {
        ApiError::bad_request(
            "HTTPBadRequest",
            format!("Failed to parse request. Required attribute '{key}' not specified"),
        )
    })
}

fn rate(attrs: &mut Attrs, key: &str) -> ApiResult<Option<u32>> {
    match attrs.take(key) {
        None => Ok(None),
        Some(v) => {
            let n = match &v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| bad_attr(key, format!("'{v}' is not an integer")))?;
            if n < 0 {
                return Err(bad_attr(
                    key,
                    format!("'{n}' is too small - must be at least '0'"),
                ));
            }
            if n > i64::from(MAX_RATE) {
                return Err(bad_attr(
                    key,
                    format!("'{n}' is too large - must be no larger than '{MAX_RATE}'"),
                ));
            }
            Ok(Some(n as u32))
        }
    }
}

fn direction(attrs: &mut Attrs) -> ApiResult<Option<QosDirection>> {
    match attrs.string("direction")? {
        None => Ok(None),
        Some(d) => QosDirection::parse(&d).map(Some).ok_or_else(|| {
            bad_attr(
                "direction",
                format!("'{d}' is not in ('ingress', 'egress')"),
            )
        }),
    }
}

fn dscp(attrs: &mut Attrs) -> ApiResult<Option<u8>> {
    let Some(v) = attrs.take("dscp_mark") else {
        return Ok(None);
    };
    let n = match &v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.and_then(|n| u8::try_from(n).ok())
        .filter(|n| VALID_DSCP_MARKS.contains(n))
        .map(Some)
        .ok_or_else(|| bad_attr("dscp_mark", format!("{v} is not in {VALID_DSCP_MARKS:?}")))
}

/// Reads a POST (no `old`) or PUT (over `old`) body of a rule of type `t`.
fn parse(
    t: RuleType,
    body: Value,
    method: &'static str,
    old: Option<&QosRuleKind>,
) -> ApiResult<QosRuleKind> {
    let key = t.resource();
    let mut attrs = Attrs::from_body(body, &key, method)?;
    attrs.forbid(&["id"])?;
    // Accepted and dropped, as in Neutron (rules have no project of their own).
    for k in ["project_id", "tenant_id"] {
        attrs.take(k);
    }
    let kind = match (t.name, old) {
        ("bandwidth_limit", old) => {
            let (k0, b0, d0) = match old {
                Some(QosRuleKind::BandwidthLimit {
                    max_kbps,
                    max_burst_kbps,
                    direction,
                }) => (Some(*max_kbps), *max_burst_kbps, *direction),
                _ => (None, 0, QosDirection::Egress),
            };
            let max_kbps = rate(&mut attrs, "max_kbps")?.or(k0);
            QosRuleKind::BandwidthLimit {
                max_burst_kbps: rate(&mut attrs, "max_burst_kbps")?.unwrap_or(b0),
                direction: direction(&mut attrs)?.unwrap_or(d0),
                max_kbps: required(max_kbps, "max_kbps")?,
            }
        }
        ("dscp_marking", old) => {
            let m0 = match old {
                Some(QosRuleKind::DscpMarking { dscp_mark }) => Some(*dscp_mark),
                _ => None,
            };
            QosRuleKind::DscpMarking {
                dscp_mark: required(dscp(&mut attrs)?.or(m0), "dscp_mark")?,
            }
        }
        (_, old) => {
            let (k0, d0) = match old {
                Some(QosRuleKind::MinimumBandwidth {
                    min_kbps,
                    direction,
                }) => (Some(*min_kbps), *direction),
                _ => (None, QosDirection::Egress),
            };
            let min_kbps = rate(&mut attrs, "min_kbps")?.or(k0);
            QosRuleKind::MinimumBandwidth {
                direction: direction(&mut attrs)?.unwrap_or(d0),
                min_kbps: required(min_kbps, "min_kbps")?,
            }
        }
    };
    attrs.finish()?;
    Ok(kind)
}

/// Refuses a rule that conflicts with the policy's others (except `own`): one per type
/// and direction (409 `QoSRulesConflict`), and a minimum above the limit of the same
/// direction or a limit below its minimum (409 `QoSRuleParameterConflict`).
fn check_conflicts(p: &QosPolicy, kind: &QosRuleKind, own: Option<&str>) -> ApiResult<()> {
    let id = &p.meta.id;
    for r in p.rules.iter().filter(|r| Some(r.id.as_str()) != own) {
        if r.kind.duplicates(kind) {
            return Err(ApiError::conflict(
                "QoSRulesConflict",
                format!(
                    "Rule {} conflicts with rule {} which already exists in QoS Policy {id}.",
                    kind.type_name(),
                    r.id
                ),
            ));
        }
        if r.kind.direction().is_none() || r.kind.direction() != kind.direction() {
            continue;
        }
        let clash = match (&r.kind, kind) {
            (
                QosRuleKind::MinimumBandwidth { min_kbps, .. },
                QosRuleKind::BandwidthLimit { max_kbps, .. },
            ) if min_kbps > max_kbps => Some((*max_kbps, *min_kbps)),
            (
                QosRuleKind::BandwidthLimit { max_kbps, .. },
                QosRuleKind::MinimumBandwidth { min_kbps, .. },
            ) if min_kbps > max_kbps => Some((*min_kbps, *max_kbps)),
            _ => None,
        };
        if let Some((value, existing)) = clash {
            return Err(ApiError::conflict(
                "QoSRuleParameterConflict",
                format!(
                    "Unable to add the rule with value {value} to the policy {id} as the existing rule of type {} has value {existing}.",
                    r.kind.type_name()
                ),
            ));
        }
    }
    Ok(())
}

fn rule_not_found(rule: &str, policy: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "QosRuleNotFound",
        format!("QoS rule {rule} for policy {policy} could not be found."),
    )
}

/// The policy `id` for `action` on its rules of type `t` (policy rule
/// `<action>_policy_<type>_rule`): 404 when `ctx` may not see it, 403 when it may see
/// but not do this.
async fn policy_for(
    api: &Api,
    ctx: &Context,
    id: &str,
    t: RuleType,
    action: &str,
    prefix: &str,
) -> ApiResult<(QosPolicy, Revision)> {
    let (p, rev) = visible::<QosPolicy>(api, ctx, id).await?;
    let target = Target::project(&p.meta.project_id);
    policy::enforce(
        ctx,
        &format!("{prefix}_{}", t.resource()),
        action,
        &target,
        &[],
    )?;
    Ok((p, rev))
}

fn position(p: &QosPolicy, t: RuleType, rule: &str) -> ApiResult<usize> {
    (p.rules.iter())
        .position(|r| r.id == rule && t.is(&r.kind))
        .ok_or_else(|| rule_not_found(rule, &p.meta.id))
}

fn one(t: RuleType, key: &str, r: &QosRule, query: Option<&str>) -> ApiResult<Json<Value>> {
    let q = Query::parse(query, t.attrs)?;
    Ok(Json(json!({ key: Value::Object(q.project(render(r))) })))
}

/// `GET /v2.0/qos/policies/{id}/{type}_rules`.
pub async fn list(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((policy_id, coll)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let t = RuleType::from_collection(&coll)?;
    let query = Query::parse(q.as_deref(), t.attrs)?;
    let (p, _) = policy_for(&api, &ctx, &policy_id, t, "get", "policy").await?;
    let items = (p.rules.iter())
        .filter(|r| t.is(&r.kind))
        .map(render)
        .collect();
    Ok(Json(query.respond(&coll, &base_url(&headers), items)?))
}

/// `GET /v2.0/qos/policies/{id}/{type}_rules/{rule}`.
pub async fn show(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((policy_id, coll, rule)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let t = RuleType::from_collection(&coll)?;
    let (p, _) = policy_for(&api, &ctx, &policy_id, t, "get", "policy").await?;
    let pos = position(&p, t, &rule)?;
    one(t, &t.resource(), &p.rules[pos], q.as_deref())
}

/// `POST /v2.0/qos/policies/{id}/{type}_rules`: admin only by default, refused (403)
/// before the policy is looked up, as in Neutron.
pub async fn create(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((policy_id, coll)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let t = RuleType::from_collection(&coll)?;
    let kind = parse(t, body, "POST", None)?;
    let resource = format!("policy_{}", t.resource());
    policy::enforce(
        &ctx,
        &resource,
        "create",
        &Target::project(&ctx.project_id),
        &[],
    )?;
    let rule = QosRule {
        id: model::new_id(),
        kind,
    };
    retrying(|| async {
        let (mut p, rev) = policy_for(&api, &ctx, &policy_id, t, "create", "policy").await?;
        check_conflicts(&p, &rule.kind, None)?;
        p.rules.push(rule.clone());
        touch(&mut p.meta);
        let mut txn = Txn::new();
        txn.update(&p, rev);
        txn.commit(&api.db).await
    })
    .await?;
    tracing::info!(id = %rule.id, policy = %policy_id, "QoS rule created ({:?})", rule.kind);
    Ok((
        StatusCode::CREATED,
        one(t, &t.resource(), &rule, q.as_deref())?,
    ))
}

/// Changes rule `rule` of type `t` in policy `policy_id` (found by the rule alone when
/// `None`) with `body`, or deletes it.
async fn write(
    api: &Api,
    ctx: &Context,
    policy_id: Option<&str>,
    t: RuleType,
    rule: &str,
    body: Option<&Value>,
    prefix: &str,
) -> ApiResult<Option<QosRule>> {
    let action = if body.is_some() { "update" } else { "delete" };
    retrying(|| async {
        let pid = match policy_id {
            Some(p) => p.to_string(),
            None => holder(api, t, rule).await?,
        };
        let (mut p, rev) = policy_for(api, ctx, &pid, t, action, prefix).await?;
        let pos = position(&p, t, rule)?;
        let out = match body {
            Some(b) => {
                let method = "PUT";
                let kind = parse(t, b.clone(), method, Some(&p.rules[pos].kind))?;
                check_conflicts(&p, &kind, Some(rule))?;
                p.rules[pos].kind = kind;
                Some(p.rules[pos].clone())
            }
            None => {
                p.rules.remove(pos);
                None
            }
        };
        touch(&mut p.meta);
        let mut txn = Txn::new();
        txn.update(&p, rev);
        txn.commit(&api.db).await?;
        Ok(out)
    })
    .await
}

/// The policy holding rule `rule` of type `t`, or 404 `QosRuleNotFound`.
async fn holder(api: &Api, t: RuleType, rule: &str) -> ApiResult<String> {
    let all = api.db.all::<QosPolicy>().await?;
    all.iter()
        .find(|(p, _)| p.rules.iter().any(|r| r.id == rule && t.is(&r.kind)))
        .map(|(p, _)| p.meta.id.clone())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "QosRuleNotFound",
                format!("QoS rule {rule} could not be found."),
            )
        })
}

/// `PUT /v2.0/qos/policies/{id}/{type}_rules/{rule}`.
pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((policy_id, coll, rule)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let t = RuleType::from_collection(&coll)?;
    let r = write(
        &api,
        &ctx,
        Some(&policy_id),
        t,
        &rule,
        Some(&body),
        "policy",
    )
    .await?;
    let r = r.ok_or_else(|| rule_not_found(&rule, &policy_id))?;
    tracing::info!(id = %rule, policy = %policy_id, "QoS rule updated ({:?})", r.kind);
    one(t, &t.resource(), &r, q.as_deref())
}

/// `DELETE /v2.0/qos/policies/{id}/{type}_rules/{rule}`.
pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((policy_id, coll, rule)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let t = RuleType::from_collection(&coll)?;
    write(&api, &ctx, Some(&policy_id), t, &rule, None, "policy").await?;
    tracing::info!(id = %rule, policy = %policy_id, "QoS rule deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2.0/qos/alias-<type>-rules/{rule}`.
pub async fn alias_show(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((coll, rule)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let t = RuleType::from_alias(&coll)?;
    let pid = holder(&api, t, &rule).await?;
    let (p, _) = policy_for(&api, &ctx, &pid, t, "get", "alias").await?;
    let pos = position(&p, t, &rule)?;
    one(
        t,
        &format!("alias_{}", t.resource()),
        &p.rules[pos],
        q.as_deref(),
    )
}

/// `PUT /v2.0/qos/alias-<type>-rules/{rule}`: the body is keyed `alias_<type>_rule`.
pub async fn alias_update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((coll, rule)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let t = RuleType::from_alias(&coll)?;
    let alias = format!("alias_{}", t.resource());
    // The same attributes as the policy's own rule, under the alias's key.
    let inner = body.get(&alias).cloned().ok_or_else(|| {
        ApiError::bad_request(
            "HTTPBadRequest",
            format!("Unable to find '{alias}' in request body"),
        )
    })?;
    let body = json!({ t.resource(): inner });
    let r = write(&api, &ctx, None, t, &rule, Some(&body), "alias").await?;
    let r = r.ok_or_else(|| rule_not_found(&rule, ""))?;
    one(t, &alias, &r, q.as_deref())
}

/// `DELETE /v2.0/qos/alias-<type>-rules/{rule}`.
pub async fn alias_delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((coll, rule)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let t = RuleType::from_alias(&coll)?;
    write(&api, &ctx, None, t, &rule, None, "alias").await?;
    Ok(StatusCode::NO_CONTENT)
}
