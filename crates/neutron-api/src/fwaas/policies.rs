//! `/v2.0/fwaas/firewall_policies`: ordered rule lists (first match wins), `audited`
//! (cleared by any change that does not set it), `shared` (only with shared rules), and
//! the `insert_rule` / `remove_rule` actions, checked as neutron-fwaas checks them.

use super::rules::{FW_STANDARD, fetch as fetch_rule};
use super::{default_restricted, defaults, invalid, reserved_name, rule_not_found, uuid_list};
use crate::Api;
use crate::body::{Attrs, JsonBody};
use crate::context::Context;
use crate::db::retrying;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use crate::policy::Target;
use crate::resources::lifecycle::Lifecycle;
use crate::resources::ops::{Plan, deleting};
use crate::resources::{Resource, Standard, render, touch, writable};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use model::fwaas::{DEFAULT_EGRESS_POLICY, DEFAULT_INGRESS_POLICY};
use model::{FirewallGroup, FirewallPolicy, FirewallRule, Meta};
use serde_json::{Map, Value, json};
use std::sync::Arc;

impl Resource for FirewallPolicy {
    const COLLECTION: &'static str = "firewall_policies";
    const RESOURCE: &'static str = "firewall_policy";
    const PATH: Option<&'static str> = Some("fwaas/firewall_policies");
    const STANDARD: Standard = FW_STANDARD;
    const OWN_ATTRS: &'static [&'static str] = &["shared", "firewall_rules", "audited"];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("shared".into(), json!(self.shared));
        m.insert("firewall_rules".into(), json!(self.firewall_rules));
        m.insert("audited".into(), json!(self.audited));
    }

    async fn targets(
        _api: &Api,
        _ctx: &Context,
        objs: &[FirewallPolicy],
    ) -> ApiResult<Vec<Target>> {
        Ok(objs
            .iter()
            .map(|p| Target {
                shared: p.shared,
                ..Target::project(&p.meta.project_id)
            })
            .collect())
    }

    async fn before_list(api: &Api, ctx: &Context, query: &Query) -> ApiResult<()> {
        defaults::ensure_listed(api, ctx, query).await
    }
}

/// A POST's or PUT's own attributes.
pub struct PolicyRequest {
    shared: Option<bool>,
    audited: Option<bool>,
    firewall_rules: Option<Vec<String>>,
}

fn is_default_name(name: &str) -> bool {
    name == DEFAULT_INGRESS_POLICY || name == DEFAULT_EGRESS_POLICY
}

fn parse(attrs: &mut Attrs) -> ApiResult<PolicyRequest> {
    Ok(PolicyRequest {
        shared: attrs.bool("shared")?,
        audited: attrs.bool("audited")?,
        firewall_rules: uuid_list("firewall_rules", attrs.take("firewall_rules"))?,
    })
}

/// neutron-fwaas's checks of a policy's new rule list: each rule exists; a shared
/// policy takes only shared rules (`FirewallRuleSharingConflict`); another project's
/// rule must be shared (`FirewallRuleConflict`). Each rule's revision is checked at
/// commit, so a rule deleted meanwhile makes the write retry.
async fn check_rules(
    api: &Api,
    ctx: &Context,
    p: &FirewallPolicy,
    shared_given: bool,
    ids: &[String],
    plan: &mut Plan<'_>,
) -> ApiResult<()> {
    for id in ids {
        let (r, rev) = fetch_rule(api, ctx, id).await?;
        deleting::not_deleting(&r)?;
        if shared_given || p.shared {
            if p.shared && !r.shared {
                return Err(sharing_conflict(&p.meta.id, id));
            }
        } else if !r.shared && r.meta.project_id != p.meta.project_id {
            return Err(rule_conflict(&r));
        }
        plan.txn.check::<FirewallRule>(id, rev);
    }
    Ok(())
}

fn sharing_conflict(policy: &str, rule: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "FirewallRuleSharingConflict",
        format!(
            "Operation cannot be performed since firewall policy {policy} could not find the \
             firewall rule {rule}. Please confirm if the firewall rule exists and is shared."
        ),
    )
}

fn rule_conflict(r: &FirewallRule) -> ApiError {
    ApiError::conflict(
        "FirewallRuleConflict",
        format!(
            "Operation cannot be performed since firewall rule {} is not shared and belongs \
             to another project {}.",
            r.meta.id, r.meta.project_id
        ),
    )
}

fn in_use(id: &str) -> ApiError {
    ApiError::conflict(
        "FirewallPolicyInUse",
        format!("Firewall policy {id} is being used."),
    )
}

/// The groups that use policy `id`, ingress or egress.
pub async fn users(api: &Api, id: &str) -> ApiResult<Vec<FirewallGroup>> {
    Ok((api.db.all::<FirewallGroup>().await?)
        .into_iter()
        .map(|(g, _)| g)
        .filter(|g| {
            g.ingress_firewall_policy_id.as_deref() == Some(id)
                || g.egress_firewall_policy_id.as_deref() == Some(id)
        })
        .collect())
}

impl Lifecycle for FirewallPolicy {
    type Create = PolicyRequest;
    type Update = PolicyRequest;

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<PolicyRequest> {
        parse(attrs)
    }

    async fn plan_create(
        api: &Api,
        ctx: &Context,
        meta: Meta,
        req: &PolicyRequest,
        plan: &mut Plan<'_>,
    ) -> ApiResult<FirewallPolicy> {
        if is_default_name(&meta.name) {
            return Err(reserved_name(&meta.name, "Firewall Policy"));
        }
        let mut p = FirewallPolicy {
            meta,
            shared: req.shared.unwrap_or(false),
            audited: req.audited.unwrap_or(false),
            firewall_rules: vec![],
            deleting: false,
        };
        let rules = req.firewall_rules.clone().unwrap_or_default();
        check_rules(api, ctx, &p, true, &rules, plan).await?;
        p.firewall_rules = rules;
        Ok(p)
    }

    fn parse_update(
        _ctx: &Context,
        _: &FirewallPolicy,
        attrs: &mut Attrs,
    ) -> ApiResult<PolicyRequest> {
        parse(attrs)
    }

    async fn plan_update(
        api: &Api,
        ctx: &Context,
        p: &mut FirewallPolicy,
        req: PolicyRequest,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        // neutron-fwaas looks at the stored policy: a default one is never changed.
        let (stored, _) = api.db.fetch::<FirewallPolicy>(&p.meta.id).await?;
        if is_default_name(&stored.meta.name) {
            return Err(default_restricted(&p.meta.id));
        }
        if req.shared == Some(false)
            && (users(api, &p.meta.id).await?)
                .iter()
                .any(|g| g.meta.project_id != p.meta.project_id)
        {
            return Err(in_use(&p.meta.id));
        }
        if let Some(shared) = req.shared {
            p.shared = shared;
        }
        match &req.firewall_rules {
            Some(rules) => {
                check_rules(api, ctx, p, req.shared.is_some(), rules, plan).await?;
                p.firewall_rules = rules.clone();
            }
            None if req.shared == Some(true) => {
                for id in &p.firewall_rules {
                    let (r, _) = fetch_rule(api, ctx, id).await?;
                    if !r.shared {
                        return Err(ApiError::conflict(
                            "FirewallPolicySharingConflict",
                            format!(
                                "Operation cannot be performed. Before sharing firewall policy \
                                 {}, share associated firewall rule {id}.",
                                p.meta.id
                            ),
                        ));
                    }
                }
            }
            None => {}
        }
        p.audited = req.audited.unwrap_or(false);
        Ok(())
    }

    fn deleting_mark(&mut self) -> Option<&mut bool> {
        Some(&mut self.deleting)
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        p: &FirewallPolicy,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if !users(api, &p.meta.id).await?.is_empty() {
            return Err(in_use(&p.meta.id));
        }
        Ok(())
    }

    fn summary(&self) -> String {
        format!("({} rules)", self.firewall_rules.len())
    }
}

/// The body of `insert_rule` / `remove_rule` (not wrapped in a resource key).
struct RuleInfo {
    rule: String,
    before: Option<String>,
    after: Option<String>,
}

fn rule_info(body: &Value) -> ApiResult<RuleInfo> {
    let missing = || {
        invalid(
            "FirewallRuleInfoMissing",
            "Missing rule info argument for insert/remove rule operation.",
        )
    };
    let m = body.as_object().ok_or_else(missing)?;
    let rule = m.get("firewall_rule_id").ok_or_else(missing)?;
    let rule = match rule.as_str() {
        Some(s) if model::is_uuid(s) && s.len() == 36 => s.to_string(),
        _ => return Err(rule_not_found(&crate::body::show(rule))),
    };
    // An empty or null reference means "none", as in neutron-fwaas.
    let reference = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Ok(RuleInfo {
        rule,
        before: reference("insert_before"),
        after: reference("insert_after"),
    })
}

fn not_associated(rule: &str, policy: &str) -> ApiError {
    invalid(
        "FirewallRuleNotAssociatedWithPolicy",
        format!("Firewall rule {rule} is not associated with firewall policy {policy}."),
    )
}

/// The policy's JSON, unwrapped, as neutron-fwaas answers its actions.
async fn answer(api: &Api, p: &FirewallPolicy) -> ApiResult<Json<Value>> {
    let item = FirewallPolicy::render_all(api, std::slice::from_ref(p)).await?;
    Ok(Json(Value::Object(
        item.into_iter().next().unwrap_or_else(|| render(p)),
    )))
}

/// `PUT /v2.0/fwaas/firewall_policies/{id}/insert_rule`: `insert_before` wins over
/// `insert_after`; with neither the rule goes first.
pub async fn insert_rule(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let info = rule_info(&body)?;
    let p = retrying(|| async {
        let (mut p, rev) = writable::<FirewallPolicy>(&api, &ctx, &id, "insert_rule", &[]).await?;
        if p.firewall_rules.contains(&info.rule) {
            return Err(ApiError::conflict(
                "FirewallRuleAlreadyAssociated",
                format!(
                    "Operation cannot be performed since firewall rule {} is already associated \
                     with firewall policy {id}.",
                    info.rule
                ),
            ));
        }
        let (r, rrev) = fetch_rule(&api, &ctx, &info.rule).await?;
        deleting::not_deleting(&r)?;
        if !r.shared && r.meta.project_id != p.meta.project_id {
            return Err(rule_conflict(&r));
        }
        let at = match (&info.before, &info.after) {
            (Some(b), _) => p.firewall_rules.iter().position(|x| x == b),
            (None, Some(a)) => p.firewall_rules.iter().position(|x| x == a).map(|i| i + 1),
            (None, None) => Some(0),
        };
        let Some(at) = at else {
            let reference = info.before.as_ref().or(info.after.as_ref());
            return Err(not_associated(reference.map_or("", |s| s), &id));
        };
        p.firewall_rules.insert(at, info.rule.clone());
        p.audited = false;
        touch(&mut p.meta);
        let mut plan = Plan::new(&api);
        plan.txn.check::<FirewallRule>(&info.rule, rrev);
        plan.txn.update(&p, rev);
        plan.commit(&api).await?;
        Ok(p)
    })
    .await?;
    tracing::info!(%id, rule = %info.rule, rules = p.firewall_rules.len(), "firewall policy insert_rule");
    answer(&api, &p).await
}

/// `PUT /v2.0/fwaas/firewall_policies/{id}/remove_rule`.
pub async fn remove_rule(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let info = rule_info(&body)?;
    let p = retrying(|| async {
        let (mut p, rev) = writable::<FirewallPolicy>(&api, &ctx, &id, "remove_rule", &[]).await?;
        if api.db.get::<FirewallRule>(&info.rule).await?.is_none() {
            return Err(rule_not_found(&info.rule));
        }
        let Some(i) = p.firewall_rules.iter().position(|x| *x == info.rule) else {
            return Err(not_associated(&info.rule, &id));
        };
        p.firewall_rules.remove(i);
        p.audited = false;
        touch(&mut p.meta);
        let mut plan = Plan::new(&api);
        plan.txn.update(&p, rev);
        plan.commit(&api).await?;
        Ok(p)
    })
    .await?;
    tracing::info!(%id, rule = %info.rule, rules = p.firewall_rules.len(), "firewall policy remove_rule");
    answer(&api, &p).await
}
