//! Security groups as other resources see them: each project's `default` group, made on
//! first use with its standard rules, and the claim on a rule's content that keeps rules
//! unique (written with the rule, released with it or its group).

use crate::Api;
use crate::context::Context;
use crate::db::Txn;
use crate::error::ApiResult;
use crate::listing::Query;
use model::{Direction, EtherType, Meta, SecurityGroup, SecurityGroupRule};

/// A rule of `group` with no protocol, ports or prefix (the standard rules); its
/// project, timestamps and description from `meta_of`.
pub fn plain_rule(
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

/// The id of `project`'s default group, creating it (with its four rules) on first use.
pub async fn ensure_default(api: &Api, project: &str) -> ApiResult<String> {
    let claim = default_claim(project);
    loop {
        if let Some(id) = api.db.claim_owner(&claim).await? {
            return Ok(id);
        }
        let now = model::time::now();
        let meta = Meta {
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
        let mut txn = Txn::new();
        txn.create(&g);
        for et in [EtherType::IPv4, EtherType::IPv6] {
            let to_anywhere = plain_rule(&rule_meta, &id, Direction::Egress, et, None);
            add_rule(&mut txn, &to_anywhere);
            let from_members =
                plain_rule(&rule_meta, &id, Direction::Ingress, et, Some(id.clone()));
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

/// Writes a rule with the claim on its content that keeps rules unique.
pub fn add_rule(txn: &mut Txn, r: &SecurityGroupRule) {
    txn.create(r);
    txn.claim(&rule_fingerprint(r), &r.meta.id);
}

/// The claim id of a rule's content: `sgrule/<group>/<dir>/<ethertype>/<proto>/<min>/<max>/<remote>`.
pub fn rule_fingerprint(r: &SecurityGroupRule) -> String {
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
