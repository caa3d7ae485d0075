//! `/v2.0/security-groups`: groups with their rules shown inline; each project's
//! `default` group appears on first sight (`ops::groups`) and is the admin's to delete.

use super::lifecycle::Lifecycle;
use super::ops::groups::{
    add_rule, default_claim, ensure_default, listed_project, rule_fingerprint, rules_from,
    templates,
};
use super::ops::{Plan, rbac as ops_rbac};
use super::{Resource, render};
use crate::Api;
use crate::body::Attrs;
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use crate::policy::Target;
use crate::policy::rbac::{Grants, SHARED};
use model::{Meta, Port, SecurityGroup, SecurityGroupRule};
use serde_json::{Map, Value, json};

impl Resource for SecurityGroup {
    const COLLECTION: &'static str = "security_groups";
    const RESOURCE: &'static str = "security_group";
    const OWN_ATTRS: &'static [&'static str] = &["security_group_rules", "stateful"];

    /// The rules are filled in by [`Resource::render_all`], which reads them.
    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("security_group_rules".into(), json!([]));
        m.insert("stateful".into(), json!(self.stateful));
    }

    async fn render_all(api: &Api, groups: &[SecurityGroup]) -> ApiResult<Vec<Map<String, Value>>> {
        let rules: Vec<_> = (api.db.all::<SecurityGroupRule>().await?)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        Ok(groups
            .iter()
            .map(|g| {
                let mut m = render(g);
                let mine = rules.iter().filter(|r| r.security_group_id == g.meta.id);
                let mine = mine.map(|r| Value::Object(render(r))).collect();
                m.insert("security_group_rules".into(), Value::Array(mine));
                m
            })
            .collect())
    }

    /// Shared with the caller's project by an RBAC policy: seen, and usable in its ports.
    async fn targets(api: &Api, ctx: &Context, objs: &[SecurityGroup]) -> ApiResult<Vec<Target>> {
        let needed = objs.iter().any(|g| g.meta.project_id != ctx.project_id);
        let grants = Grants::load(api, ctx, needed).await?;
        Ok(objs
            .iter()
            .map(|g| Target {
                shared: grants.has(&g.meta.id, SHARED),
                ..Target::project(&g.meta.project_id)
            })
            .collect())
    }

    async fn before_list(api: &Api, ctx: &Context, query: &Query) -> ApiResult<()> {
        ensure_default(api, &listed_project(ctx, query))
            .await
            .map(drop)
    }
}

/// A POST's or PUT's own attribute.
pub struct GroupRequest {
    stateful: Option<bool>,
}

impl Lifecycle for SecurityGroup {
    type Create = GroupRequest;
    type Update = GroupRequest;
    const POST_FORBIDDEN: &'static [&'static str] = &["security_group_rules"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<GroupRequest> {
        Ok(GroupRequest {
            stateful: attrs.bool("stateful")?,
        })
    }

    async fn plan_create(
        api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &GroupRequest,
        plan: &mut Plan<'_>,
    ) -> ApiResult<SecurityGroup> {
        if meta.name == "default" {
            return Err(ApiError::conflict(
                "SecurityGroupDefaultAlreadyExists",
                "Default security group already exists.",
            ));
        }
        ensure_default(api, &meta.project_id).await?;
        // The templates' rules for other groups (by default: everything out).
        let rule_meta = Meta {
            description: String::new(),
            tags: vec![],
            ..meta.clone()
        };
        for r in rules_from(&templates(api).await?, &rule_meta, &meta.id, false) {
            add_rule(&mut plan.txn, &r);
            // Its rules must fit the rule quota too: Neutron refuses the group otherwise.
            plan.txn.within_quota(&r);
        }
        Ok(SecurityGroup {
            meta,
            stateful: req.stateful.unwrap_or(true),
            is_default: false,
            deleting: false,
        })
    }

    fn parse_update(
        ctx: &Context,
        _: &SecurityGroup,
        attrs: &mut Attrs,
    ) -> ApiResult<GroupRequest> {
        Self::parse_create(ctx, attrs)
    }

    async fn plan_update(
        api: &Api,
        _ctx: &Context,
        g: &mut SecurityGroup,
        req: GroupRequest,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        // A port's groups are all stateful or all stateless (`ports`), so a group in use
        // keeps its kind, as in Neutron. A port taking the group meanwhile checks the
        // group's revision, which this update moves.
        if let Some(stateful) = req.stateful.filter(|s| *s != g.stateful) {
            let id = &g.meta.id;
            let ports = api.db.all::<Port>().await?;
            if ports.iter().any(|(p, _)| p.security_groups.contains(id)) {
                return Err(ApiError::conflict(
                    "SecurityGroupInUse",
                    format!("Security Group {id} in use."),
                ));
            }
            g.stateful = stateful;
        }
        if g.is_default && g.meta.name != "default" {
            return Err(ApiError::conflict(
                "SecurityGroupCannotUpdateDefault",
                "Updating default security group name not allowed.",
            ));
        }
        // Only the project's own default group is called `default`.
        if !g.is_default && g.meta.name == "default" {
            return Err(ApiError::conflict(
                "SecurityGroupDefaultAlreadyExists",
                "Default security group already exists.",
            ));
        }
        Ok(())
    }

    fn check_delete(&self, ctx: &Context) -> ApiResult<()> {
        if self.is_default && !ctx.is_admin {
            return Err(ApiError::conflict(
                "SecurityGroupCannotRemoveDefault",
                "Insufficient rights for removing default security group.",
            ));
        }
        Ok(())
    }

    fn deleting_mark(&mut self) -> Option<&mut bool> {
        Some(&mut self.deleting)
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        g: &SecurityGroup,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        let id = &g.meta.id;
        let ports = api.db.all::<Port>().await?;
        if ports.iter().any(|(p, _)| p.security_groups.contains(id)) {
            return Err(ApiError::conflict(
                "SecurityGroupInUse",
                format!("Security Group {id} in use."),
            ));
        }
        // Rules of the group, and rules elsewhere that name it as their remote group.
        for (r, rrev) in api.db.all::<SecurityGroupRule>().await? {
            if r.security_group_id == *id || r.remote_group_id.as_ref() == Some(id) {
                plan.txn.delete(&r, rrev);
                plan.txn.release(&rule_fingerprint(&r));
            }
        }
        if g.is_default {
            plan.txn.release(&default_claim(&g.meta.project_id));
        }
        ops_rbac::remove_all(api, plan, id).await
    }
}
