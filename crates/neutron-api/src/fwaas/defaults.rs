//! Each project's default firewall group, as neutron-fwaas makes it on first sight (a
//! listing of any FWaaS collection, or the project's first group): four rules (ingress
//! IPv4 and IPv6 deny, egress IPv4 and IPv6 allow), a `default ingress` and a
//! `default egress` policy holding them, and the group `default` with no ports, written
//! in one transaction under a claim so that two servers make it once.

use super::rules::blank;
use crate::Api;
use crate::context::Context;
use crate::db::Txn;
use crate::error::ApiResult;
use crate::listing::Query;
use crate::resources::ops::groups::listed_project;
use model::fwaas::{DEFAULT_EGRESS_POLICY, DEFAULT_GROUP, DEFAULT_INGRESS_POLICY, FwAction};
use model::{FirewallGroup, FirewallPolicy, Meta};

/// The claim of `project`'s default group.
pub fn default_claim(project: &str) -> String {
    format!("defaultfwg/{project}")
}

/// Makes sure of the default group of the project a listing is about.
pub async fn ensure_listed(api: &Api, ctx: &Context, query: &Query) -> ApiResult<()> {
    let project = listed_project(ctx, query);
    if project.is_empty() {
        return Ok(());
    }
    ensure_default(api, &project).await.map(drop)
}

fn meta(project: &str, name: &str, description: &str) -> Meta {
    let now = model::time::now();
    Meta {
        unknown: Default::default(),
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

/// The id of `project`'s default group, made on first use.
pub async fn ensure_default(api: &Api, project: &str) -> ApiResult<String> {
    let claim = default_claim(project);
    loop {
        if let Some(id) = api.db.claim_owner(&claim).await? {
            return Ok(id);
        }
        let mut txn = Txn::new();
        let mut policy = |name: &str, description: &str, action: FwAction| {
            let rules: Vec<String> = [4u8, 6]
                .into_iter()
                .map(|v| {
                    let dir = if action == FwAction::Allow {
                        "egress"
                    } else {
                        "ingress"
                    };
                    let ipv = if v == 4 { "ipv4" } else { "ipv6" };
                    let mut r = blank(meta(
                        project,
                        &format!("default {dir} {ipv}"),
                        &format!("default {dir} rule for IPv{v}"),
                    ));
                    r.ip_version = v;
                    r.action = action;
                    txn.create(&r);
                    r.meta.id
                })
                .collect();
            let p = FirewallPolicy {
                meta: meta(project, name, description),
                shared: false,
                audited: false,
                firewall_rules: rules,
                deleting: false,
            };
            txn.create(&p);
            p.meta.id
        };
        let ingress = policy(
            DEFAULT_INGRESS_POLICY,
            "Ingress firewall policy",
            FwAction::Deny,
        );
        let egress = policy(
            DEFAULT_EGRESS_POLICY,
            "Egress firewall policy",
            FwAction::Allow,
        );
        let g = FirewallGroup {
            meta: meta(project, DEFAULT_GROUP, "Default firewall group"),
            shared: false,
            admin_state_up: true,
            ingress_firewall_policy_id: Some(ingress),
            egress_firewall_policy_id: Some(egress),
            ports: vec![],
            is_default: true,
        };
        txn.create(&g);
        txn.claim(&claim, &g.meta.id);
        match txn.commit(&api.db).await {
            Ok(_) => {
                tracing::info!(project, group = %g.meta.id, "default firewall group created");
                return Ok(g.meta.id);
            }
            Err(e) if e.retry => continue,
            Err(e) => return Err(e),
        }
    }
}
