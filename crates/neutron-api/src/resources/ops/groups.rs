//! Security groups as other resources see them: each project's `default` group, made on
//! first use, the rules a new group gets from the templates (`default_sg_rules`; Neutron's
//! four legacy rules until an admin changes them), and the claim on a rule's content that
//! keeps rules unique (written with the rule, released with it or its group).

use super::rules::content_key;
use crate::Api;
use crate::context::Context;
use crate::db::Txn;
use crate::error::ApiResult;
use crate::listing::Query;
use model::{
    DefaultSecurityGroupRule, Direction, EtherType, Meta, SecurityGroup, SecurityGroupRule,
};

/// The claim that says the legacy templates were written (once per store).
const TEMPLATES_CLAIM: &str = "sgtemplates/seeded";

/// `remote_group_id` of a template: the new group itself.
pub const PARENT: &str = "PARENT";

/// The claim of `project`'s default group.
pub fn default_claim(project: &str) -> String {
    format!("defaultsg/{project}")
}

/// The project whose default group a listing makes sure of: an admin's `project_id`
/// (or `tenant_id`) filter names it, as in Neutron (so an admin sees, and a quota counts,
/// the group a project will have); anyone else's own.
pub fn listed_project(ctx: &Context, query: &Query) -> String {
    let named = ["project_id", "tenant_id"].iter().find_map(|k| {
        query
            .filters
            .iter()
            .find(|(f, _)| f == k)
            .and_then(|(_, v)| v.first().cloned())
    });
    match named {
        Some(p) if ctx.is_admin && !p.is_empty() => p,
        _ => ctx.project_id.clone(),
    }
}

/// The id of `project`'s default group, creating it (with the templates' rules for
/// default groups) on first use.
pub async fn ensure_default(api: &Api, project: &str) -> ApiResult<String> {
    let claim = default_claim(project);
    loop {
        if let Some(id) = api.db.claim_owner(&claim).await? {
            return Ok(id);
        }
        let now = model::time::now();
        let meta = Meta {
            unknown: Default::default(),
            id: model::new_id(),
            name: "default".into(),
            description: "Default security group".into(),
            project_id: project.into(),
            tags: vec![],
            created_at: now.clone(),
            updated_at: now,
            revision_number: 0,
        };
        let g = SecurityGroup {
            meta: meta.clone(),
            stateful: true,
            is_default: true,
            deleting: false,
        };
        let id = g.meta.id.clone();
        let rule_meta = Meta {
            description: String::new(),
            ..meta
        };
        let templates = templates(api).await?;
        let mut txn = Txn::new();
        txn.create(&g);
        for r in rules_from(&templates, &rule_meta, &id, true) {
            add_rule(&mut txn, &r);
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

/// Writes a rule with the claim on its content that keeps rules unique.
pub fn add_rule(txn: &mut Txn, r: &SecurityGroupRule) {
    txn.create(r);
    txn.claim(&rule_fingerprint(r), &r.meta.id);
}

/// The claim id of a rule's content: `sgrule/<group>/<content>` (`rules::content_key`).
pub fn rule_fingerprint(r: &SecurityGroupRule) -> String {
    format!(
        "sgrule/{}/{}",
        r.security_group_id,
        content_key(&super::rules::content_of_rule(r))
    )
}

/// The rule templates, writing Neutron's legacy four (egress to anywhere for every group,
/// ingress from members for default groups) the first time they are read: in Neutron
/// they are rows its database migration writes, which an admin may delete.
pub async fn templates(api: &Api) -> ApiResult<Vec<(DefaultSecurityGroupRule, nbdb::Revision)>> {
    loop {
        if api.db.claim_owner(TEMPLATES_CLAIM).await?.is_some() {
            return api.db.all::<DefaultSecurityGroupRule>().await;
        }
        let mut txn = Txn::new();
        for t in legacy_templates() {
            txn.create(&t);
            for c in super::rules::template_claims(&t) {
                txn.claim(&c, &t.meta.id);
            }
        }
        txn.claim(TEMPLATES_CLAIM, "legacy");
        match txn.commit(&api.db).await {
            Ok(_) => continue,
            Err(e) if e.retry => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Neutron's legacy templates (its migration's descriptions).
fn legacy_templates() -> Vec<DefaultSecurityGroupRule> {
    let now = model::time::now();
    let mut out = Vec::new();
    for et in [EtherType::IPv4, EtherType::IPv6] {
        for (direction, remote, non_default, what) in [
            (Direction::Egress, None, true, "egress"),
            (
                Direction::Ingress,
                Some(PARENT.to_string()),
                false,
                "ingress",
            ),
        ] {
            out.push(DefaultSecurityGroupRule {
                meta: Meta {
                    id: model::new_id(),
                    description: format!("Legacy default SG rule for {what} traffic"),
                    created_at: now.clone(),
                    updated_at: now.clone(),
                    ..Meta::default()
                },
                direction,
                ethertype: et,
                protocol: None,
                protocol_number: None,
                port_range_min: None,
                port_range_max: None,
                remote_ip_prefix: None,
                remote_group_id: remote,
                remote_address_group_id: None,
                used_in_default_sg: true,
                used_in_non_default_sg: non_default,
            });
        }
    }
    out
}

/// The rules group `group` gets from `templates` (those for default groups when
/// `default`), with their project and timestamps from `meta_of`.
pub fn rules_from(
    templates: &[(DefaultSecurityGroupRule, nbdb::Revision)],
    meta_of: &Meta,
    group: &str,
    default: bool,
) -> Vec<SecurityGroupRule> {
    templates
        .iter()
        .map(|(t, _)| t)
        .filter(|t| {
            if default {
                t.used_in_default_sg
            } else {
                t.used_in_non_default_sg
            }
        })
        .map(|t| SecurityGroupRule {
            meta: Meta {
                id: model::new_id(),
                name: String::new(),
                ..meta_of.clone()
            },
            security_group_id: group.into(),
            direction: t.direction,
            ethertype: t.ethertype,
            protocol: t.protocol.clone(),
            protocol_number: t.protocol_number,
            port_range_min: t.port_range_min,
            port_range_max: t.port_range_max,
            remote_ip_prefix: t.remote_ip_prefix,
            remote_group_id: t.remote_group_id.as_ref().map(|g| {
                if g == PARENT {
                    group.to_string()
                } else {
                    g.clone()
                }
            }),
            remote_address_group_id: t.remote_address_group_id.clone(),
        })
        .collect()
}
