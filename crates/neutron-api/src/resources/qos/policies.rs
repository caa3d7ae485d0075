//! `/v2.0/qos/policies`: QoS policies with their rules shown inline, `shared` as their
//! `*` RBAC policy (`ops::rbac`), one `is_default` per project (a claim), and refused
//! deletes while a network or port uses them.

use super::super::Resource;
use super::super::lifecycle::Lifecycle;
use super::super::ops::qos::{QOS_POLICY, accessible, default_claim, user};
use super::super::ops::{Plan, rbac as ops_rbac};
use super::rules::render_in_policy;
use crate::Api;
use crate::body::Attrs;
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::policy::rbac::{Grants, SHARED, WILDCARD, check_removal, policies_on};
use model::{Meta, QosPolicy, RbacPolicy};
use serde_json::{Map, Value, json};

impl Resource for QosPolicy {
    const COLLECTION: &'static str = "policies";
    const RESOURCE: &'static str = "policy";
    const PATH: Option<&'static str> = Some("qos/policies");
    const OWN_ATTRS: &'static [&'static str] = &["shared", "rules", "is_default"];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("shared".into(), json!(self.shared));
        let rules = self
            .rules
            .iter()
            .map(|r| render_in_policy(&self.meta.id, r));
        m.insert("rules".into(), Value::Array(rules.collect()));
        m.insert("is_default".into(), json!(self.is_default));
    }

    /// Shared with the caller: `*`, or an RBAC policy naming its project.
    async fn targets(api: &Api, ctx: &Context, objs: &[QosPolicy]) -> ApiResult<Vec<Target>> {
        let needed = objs.iter().any(|p| p.meta.project_id != ctx.project_id);
        let grants = Grants::load(api, ctx, needed).await?;
        Ok(objs
            .iter()
            .map(|p| Target {
                shared: p.shared || grants.has(&p.meta.id, SHARED),
                ..Target::project(&p.meta.project_id)
            })
            .collect())
    }

    /// A policy shared with the caller's project by an RBAC policy says `shared: true`
    /// to it, as in Neutron.
    async fn readable(api: &Api, ctx: &Context, objs: Vec<QosPolicy>) -> ApiResult<Vec<QosPolicy>> {
        let needed = objs.iter().any(|p| p.meta.project_id != ctx.project_id);
        let grants = Grants::load(api, ctx, needed).await?;
        let targets = Self::targets(api, ctx, &objs).await?;
        Ok(objs
            .into_iter()
            .zip(targets)
            .filter(|(_, t)| crate::policy::allowed(ctx, "policy", "get", t))
            .map(|(mut p, _)| {
                if !ctx.is_admin && p.meta.project_id != ctx.project_id {
                    p.shared = accessible(ctx, &grants, &p);
                }
                p
            })
            .collect())
    }
}

/// A POST's or PUT's own attributes.
pub struct PolicyRequest {
    shared: Option<bool>,
    is_default: Option<bool>,
}

fn default_exists(project: &str) -> ApiError {
    ApiError::conflict(
        "QoSPolicyDefaultAlreadyExists",
        format!("A default QoS policy exists for project {project}."),
    )
}

/// Makes `p` its project's default, or no longer: one per project, by a claim.
fn set_default(plan: &mut Plan<'_>, p: &mut QosPolicy, want: bool) {
    let claim = default_claim(&p.meta.project_id);
    if want && !p.is_default {
        let err = default_exists(&p.meta.project_id);
        plan.txn.claim_requested(&claim, &p.meta.id, err);
    } else if !want && p.is_default {
        plan.txn.release(&claim);
    }
    p.is_default = want;
}

impl Lifecycle for QosPolicy {
    type Create = PolicyRequest;
    type Update = PolicyRequest;
    const POST_FORBIDDEN: &'static [&'static str] = &["rules"];
    const PUT_READ_ONLY: &'static [&'static str] = &["rules"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<PolicyRequest> {
        Ok(PolicyRequest {
            shared: attrs.bool("shared")?,
            is_default: attrs.bool("is_default")?,
        })
    }

    async fn plan_create(
        _api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &PolicyRequest,
        plan: &mut Plan<'_>,
    ) -> ApiResult<QosPolicy> {
        let shared = req.shared.unwrap_or(false);
        if shared {
            ops_rbac::add_wildcard(plan, QOS_POLICY, &meta.id, SHARED, &meta.project_id);
        }
        let mut p = QosPolicy {
            meta,
            shared,
            is_default: false,
            rules: vec![],
            deleting: false,
        };
        set_default(plan, &mut p, req.is_default.unwrap_or(false));
        Ok(p)
    }

    fn parse_update(ctx: &Context, _: &QosPolicy, attrs: &mut Attrs) -> ApiResult<PolicyRequest> {
        Self::parse_create(ctx, attrs)
    }

    async fn plan_update(
        api: &Api,
        _ctx: &Context,
        p: &mut QosPolicy,
        req: PolicyRequest,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if let Some(shared) = req.shared.filter(|s| *s != p.shared) {
            let id = p.meta.id.clone();
            let on = policies_on(api, &id).await?;
            let wildcard = on
                .iter()
                .find(|(r, _)| r.action == SHARED && r.target_tenant == WILDCARD);
            match (shared, wildcard) {
                (true, None) => {
                    ops_rbac::add_wildcard(plan, QOS_POLICY, &id, SHARED, &p.meta.project_id)
                }
                (false, Some((r, rev))) => {
                    let all: Vec<RbacPolicy> = on.iter().map(|(r, _)| r.clone()).collect();
                    check_removal(api, &all, r, None, &p.meta.project_id).await?;
                    ops_rbac::remove(plan, r, *rev);
                }
                _ => {}
            }
            p.shared = shared;
        }
        if let Some(want) = req.is_default {
            set_default(plan, p, want);
        }
        Ok(())
    }

    fn deleting_mark(&mut self) -> Option<&mut bool> {
        Some(&mut self.deleting)
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        p: &QosPolicy,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        let id = &p.meta.id;
        if let Some((kind, object)) = user(api, id).await? {
            return Err(ApiError::conflict(
                "QosPolicyInUse",
                format!("QoS Policy {id} is used by {kind} {object}."),
            ));
        }
        if p.is_default {
            plan.txn.release(&default_claim(&p.meta.project_id));
        }
        ops_rbac::remove_all(api, plan, id).await
    }

    fn summary(&self) -> String {
        let types: Vec<&str> = self.rules.iter().map(|r| r.kind.type_name()).collect();
        format!("(rules {types:?})")
    }
}
