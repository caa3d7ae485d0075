//! `/v2.0/default-security-group-rules` (Neutron's `security-groups-default-rules`): the
//! templates of the rules new security groups get, the admin's to create and delete,
//! everyone's to read. Groups are made from them in `ops::groups`; Neutron's four legacy
//! templates are written the first time they are read.

use super::lifecycle::Lifecycle;
use super::ops::Plan;
use super::ops::groups::templates;
use super::ops::rules::{RuleContent, parse_content, template_claims};
use super::{Resource, Standard};
use crate::Api;
use crate::body::Attrs;
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use crate::policy::Target;
use model::{DefaultSecurityGroupRule, Meta};
use serde_json::{Map, Value, json};

impl Resource for DefaultSecurityGroupRule {
    const COLLECTION: &'static str = "default_security_group_rules";
    const RESOURCE: &'static str = "default_security_group_rule";
    const STANDARD: Standard = Standard {
        name: false,
        tags: false,
        described: true,
    };
    const OWN_ATTRS: &'static [&'static str] = &[
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "remote_group_id",
        "remote_address_group_id",
        "used_in_default_sg",
        "used_in_non_default_sg",
    ];

    fn render_own(&self, m: &mut Map<String, Value>) {
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
        m.insert(
            "remote_address_group_id".into(),
            json!(self.remote_address_group_id),
        );
        m.insert("used_in_default_sg".into(), json!(self.used_in_default_sg));
        m.insert(
            "used_in_non_default_sg".into(),
            json!(self.used_in_non_default_sg),
        );
    }

    /// Templates belong to no project: every caller reads them as its own (the policy
    /// table makes writing them the admin's).
    async fn targets(
        _api: &Api,
        ctx: &Context,
        objs: &[DefaultSecurityGroupRule],
    ) -> ApiResult<Vec<Target>> {
        Ok(objs
            .iter()
            .map(|_| Target::project(&ctx.project_id))
            .collect())
    }

    async fn before_list(api: &Api, _ctx: &Context, _query: &Query) -> ApiResult<()> {
        templates(api).await.map(drop)
    }
}

/// A POST's own attributes.
pub struct NewTemplate {
    content: RuleContent,
    used_in_default_sg: bool,
    used_in_non_default_sg: bool,
}

impl Lifecycle for DefaultSecurityGroupRule {
    type Create = NewTemplate;
    /// Templates do not change (Neutron allows no PUT of their attributes).
    type Update = ();
    const PUT_READ_ONLY: &'static [&'static str] = &[
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "remote_group_id",
        "remote_address_group_id",
        "used_in_default_sg",
        "used_in_non_default_sg",
    ];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewTemplate> {
        Ok(NewTemplate {
            content: parse_content(attrs)?,
            used_in_default_sg: attrs.bool("used_in_default_sg")?.unwrap_or(false),
            used_in_non_default_sg: attrs.bool("used_in_non_default_sg")?.unwrap_or(true),
        })
    }

    async fn plan_create(
        api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &NewTemplate,
        plan: &mut Plan<'_>,
    ) -> ApiResult<DefaultSecurityGroupRule> {
        // The legacy ones first: a template made before them could duplicate one.
        templates(api).await?;
        let c = &req.content;
        let t = DefaultSecurityGroupRule {
            meta,
            direction: c.direction,
            ethertype: c.ethertype,
            protocol: c.protocol.clone(),
            protocol_number: c.protocol_number,
            port_range_min: c.port_range_min,
            port_range_max: c.port_range_max,
            remote_ip_prefix: c.remote_ip_prefix,
            remote_group_id: c.remote_group_id.clone(),
            remote_address_group_id: c.remote_address_group_id.clone(),
            used_in_default_sg: req.used_in_default_sg,
            used_in_non_default_sg: req.used_in_non_default_sg,
        };
        let exists = |id: &str| {
            ApiError::conflict(
                "DefaultSecurityGroupRuleExists",
                format!("Default Security group rule already exists. Rule id is {id}."),
            )
        };
        for claim in template_claims(&t) {
            if let Some(dup) = api.db.claim_owner(&claim).await? {
                return Err(exists(&dup));
            }
            (plan.txn).claim_requested(&claim, &t.meta.id, exists("(created meanwhile)"));
        }
        Ok(t)
    }

    fn parse_update(_: &Context, _: &DefaultSecurityGroupRule, _: &mut Attrs) -> ApiResult<()> {
        Ok(())
    }

    async fn plan_update(
        _api: &Api,
        _ctx: &Context,
        _t: &mut DefaultSecurityGroupRule,
        _req: (),
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        Ok(())
    }

    /// Groups made from it keep their rules.
    async fn plan_delete(
        _api: &Api,
        _ctx: &Context,
        t: &DefaultSecurityGroupRule,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        for claim in template_claims(t) {
            plan.txn.release(&claim);
        }
        Ok(())
    }
}
