//! `/v2.0/security-group-rules`: a group's rules (their content is checked in
//! `ops::rules`), unique by content (`ops::groups`).

use super::lifecycle::Lifecycle;
use super::ops::Plan;
use super::ops::deleting::not_deleting;
use super::ops::groups::{ensure_default, listed_project, rule_fingerprint};
use super::ops::rules::{RuleContent, normalized, parse_content};
use super::{Resource, Standard, visible, writable};
use crate::Api;
use crate::body::{Attrs, bad_attr};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use model::{AddressGroup, Meta, SecurityGroup, SecurityGroupRule};
use serde_json::{Map, Value, json};

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
        "normalized_cidr",
        "remote_group_id",
        "remote_address_group_id",
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
        m.insert("normalized_cidr".into(), normalized(&self.remote_ip_prefix));
        m.insert("remote_group_id".into(), json!(self.remote_group_id));
        m.insert(
            "remote_address_group_id".into(),
            json!(self.remote_address_group_id),
        );
    }

    async fn before_list(api: &Api, ctx: &Context, query: &Query) -> ApiResult<()> {
        ensure_default(api, &listed_project(ctx, query))
            .await
            .map(drop)
    }
}

/// A POST's own attributes: the rule's group and content, checked.
pub struct NewRule {
    security_group_id: String,
    content: RuleContent,
}

impl Lifecycle for SecurityGroupRule {
    type Create = NewRule;
    /// Only the description changes (a standard attribute).
    type Update = ();
    const POST_FORBIDDEN: &'static [&'static str] = &["normalized_cidr"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewRule> {
        let security_group_id = attrs
            .string("security_group_id")?
            .ok_or_else(|| bad_attr("security_group_id", "security_group_id is required"))?;
        Ok(NewRule {
            security_group_id,
            content: parse_content(attrs)?,
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
        let c = &req.content;
        // Adding a rule changes the group: a group shared with the caller is not its own.
        let (group, grev) = writable::<SecurityGroup>(api, ctx, group_id, "update", &[]).await?;
        not_deleting(&group)?;
        touch_group(api, plan, group_id, grev).await?;
        if let Some(rg) = &c.remote_group_id {
            let (remote, rrev) = visible::<SecurityGroup>(api, ctx, rg).await?;
            not_deleting(&remote)?;
            if rg != group_id {
                plan.txn.check::<SecurityGroup>(rg, rrev);
            }
        }
        // The address group stays until no rule names it (its delete checks, under the
        // `deleting` mark this revision check races).
        if let Some(ag) = &c.remote_address_group_id {
            let (remote, rev) = visible::<AddressGroup>(api, ctx, ag).await?;
            not_deleting(&remote)?;
            plan.txn.check::<AddressGroup>(ag, rev);
        }
        // A rule belongs to its group's project, whoever adds it.
        meta.project_id = group.meta.project_id;
        let r = SecurityGroupRule {
            meta,
            security_group_id: group_id.clone(),
            direction: c.direction,
            ethertype: c.ethertype,
            protocol: c.protocol.clone(),
            protocol_number: c.protocol_number,
            port_range_min: c.port_range_min,
            port_range_max: c.port_range_max,
            remote_ip_prefix: c.remote_ip_prefix,
            remote_group_id: c.remote_group_id.clone(),
            remote_address_group_id: c.remote_address_group_id.clone(),
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
        api: &Api,
        _ctx: &Context,
        r: &SecurityGroupRule,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        plan.txn.release(&rule_fingerprint(r));
        // The group may be going too (its rules go with it): then it is not touched.
        if let Some((_, grev)) = api.db.get::<SecurityGroup>(&r.security_group_id).await? {
            touch_group(api, plan, &r.security_group_id, grev).await?;
        }
        Ok(())
    }
}

/// A rule's change is its group's too (Neutron's revision plugin): the group's revision
/// moves in the same transaction, written as stored (not as the caller sees it), and only
/// if it is still at `rev`.
async fn touch_group(
    api: &Api,
    plan: &mut Plan<'_>,
    id: &str,
    rev: nbdb::Revision,
) -> ApiResult<()> {
    let (mut group, now) = api.db.fetch::<SecurityGroup>(id).await?;
    if now != rev {
        return Err(ApiError::retry(&format!("security group {id}")));
    }
    group.meta.touch();
    plan.txn.update(&group, rev);
    Ok(())
}
