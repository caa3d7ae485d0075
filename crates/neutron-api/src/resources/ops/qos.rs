//! QoS policies as ports and networks use them: attaching a policy (visible to the
//! caller, not being deleted, its revision checked at the commit), detaching one (only
//! by a caller that may see it), the project's default policy for a new network, and a
//! policy's `shared` kept equal to its `*` RBAC policy.

use super::Plan;
use super::deleting::not_deleting;
use crate::Api;
use crate::body::{Attrs, bad_attr};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::policy::rbac::{Grants, SHARED, WILDCARD};
use model::{Network, Port, QosPolicy, RbacPolicy};

/// The RBAC object type of QoS policies.
pub use crate::policy::rbac::QOS_POLICY;

/// The claim that keeps one default policy per project.
pub fn default_claim(project: &str) -> String {
    format!("qos-default/{project}")
}

/// Whether `ctx` may use (and see) policy `p`: admin, its owner, or shared with it.
pub fn accessible(ctx: &Context, grants: &Grants, p: &QosPolicy) -> bool {
    ctx.is_admin
        || p.meta.project_id == ctx.project_id
        || p.shared
        || grants.has(&p.meta.id, SHARED)
}

/// `qos_policy_id` in a POST or PUT: `Some(None)` for null (or empty), else a UUID.
pub fn parse_id(attrs: &mut Attrs) -> ApiResult<Option<Option<String>>> {
    let Some(v) = attrs.string_or_null("qos_policy_id")? else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(Some(None));
    }
    if !model::is_uuid(&v) {
        return Err(bad_attr(
            "qos_policy_id",
            format!("'{v}' is not a valid UUID"),
        ));
    }
    Ok(Some(Some(v)))
}

/// Attaches policy `id` for `ctx`: 404 `QosPolicyNotFound` when it does not exist or
/// `ctx` may not use it (as Neutron looks it up with the caller's context). The commit
/// checks the policy's revision (and any RBAC policy it relies on), so a delete that
/// marked it meanwhile makes this write retry and refuse.
pub async fn attach(api: &Api, plan: &mut Plan<'_>, ctx: &Context, id: &str) -> ApiResult<()> {
    let not_found = || ApiError::not_found("QosPolicy", id);
    let Some((p, rev)) = api.db.get::<QosPolicy>(id).await? else {
        return Err(not_found());
    };
    if !ctx.is_admin && p.meta.project_id != ctx.project_id {
        let grants = Grants::load_for(api, &ctx.project_id, true).await?;
        match grants.usable(id, SHARED) {
            Some((rbac, rrev)) => plan.txn.check::<RbacPolicy>(rbac, rrev),
            None => return Err(not_found()),
        }
    }
    not_deleting(&p)?;
    plan.txn.check::<QosPolicy>(id, rev);
    Ok(())
}

/// Detaches policy `old`: refused (403 `PolicyRemoveAuthorizationError`) when `ctx` may
/// not see it, as in Neutron. A policy that is gone detaches freely.
pub async fn detach(api: &Api, ctx: &Context, old: &str) -> ApiResult<()> {
    let Some((p, _)) = api.db.get::<QosPolicy>(old).await? else {
        return Ok(());
    };
    let grants = Grants::load(api, ctx, p.meta.project_id != ctx.project_id).await?;
    if accessible(ctx, &grants, &p) {
        return Ok(());
    }
    Err(ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "PolicyRemoveAuthorizationError",
        format!("Failed to remove provided policy {old} because you are not authorized."),
    ))
}

/// Changes the policy of a port or network (`current`) to `new` for `ctx`.
pub async fn change(
    api: &Api,
    plan: &mut Plan<'_>,
    ctx: &Context,
    current: &mut Option<String>,
    new: Option<String>,
) -> ApiResult<()> {
    if *current == new {
        return Ok(());
    }
    if let Some(old) = current.as_deref() {
        detach(api, ctx, old).await?;
    }
    if let Some(id) = new.as_deref() {
        attach(api, plan, ctx, id).await?;
    }
    *current = new;
    Ok(())
}

/// The policy of a new network: the one asked for, else the project's default.
pub async fn for_new_network(
    api: &Api,
    plan: &mut Plan<'_>,
    ctx: &Context,
    project: &str,
    asked: Option<&str>,
) -> ApiResult<Option<String>> {
    let id = match asked {
        Some(id) => Some(id.to_string()),
        None => api.db.claim_owner(&default_claim(project)).await?,
    };
    if let Some(id) = id.as_deref() {
        attach(api, plan, ctx, id).await?;
    }
    Ok(id)
}

/// The first network or port that uses policy `id`, as Neutron names it in
/// `QosPolicyInUse`.
pub async fn user(api: &Api, id: &str) -> ApiResult<Option<(&'static str, String)>> {
    let nets = api.db.all::<Network>().await?;
    if let Some((n, _)) = nets
        .iter()
        .find(|(n, _)| n.qos_policy_id.as_deref() == Some(id))
    {
        return Ok(Some(("network", n.meta.id.clone())));
    }
    let ports = api.db.all::<Port>().await?;
    Ok(ports
        .iter()
        .find(|(p, _)| p.qos_policy_id.as_deref() == Some(id))
        .map(|(p, _)| ("port", p.meta.id.clone())))
}

/// The projects whose networks or ports use policy `id` (Neutron's bound projects).
pub async fn bound_projects(api: &Api, id: &str) -> ApiResult<Vec<String>> {
    let mut out: Vec<String> = (api.db.all::<Network>().await?)
        .into_iter()
        .filter(|(n, _)| n.qos_policy_id.as_deref() == Some(id))
        .map(|(n, _)| n.meta.project_id)
        .collect();
    out.extend(
        (api.db.all::<Port>().await?)
            .into_iter()
            .filter(|(p, _)| p.qos_policy_id.as_deref() == Some(id))
            .map(|(p, _)| p.meta.project_id),
    );
    out.sort();
    out.dedup();
    Ok(out)
}

/// Keeps a policy's `shared` equal to "has a `*` shared RBAC policy" once the object's
/// policies are `after`; written (or checked) at its revision either way.
pub async fn sync_shared(
    api: &Api,
    plan: &mut Plan<'_>,
    id: &str,
    after: &[RbacPolicy],
) -> ApiResult<()> {
    let (mut p, rev) = api.db.fetch::<QosPolicy>(id).await?;
    let shared = after
        .iter()
        .any(|r| r.action == SHARED && r.target_tenant == WILDCARD);
    if shared != p.shared {
        p.shared = shared;
        super::super::touch(&mut p.meta);
    }
    plan.txn.update(&p, rev);
    Ok(())
}

/// The policies of the networks of `ports` (`qos_network_policy_id`): one read per
/// network of a short listing, one read of every network for a long one.
pub async fn network_policies(
    api: &Api,
    ports: &[Port],
) -> ApiResult<std::collections::HashMap<String, String>> {
    let nets: std::collections::BTreeSet<&str> =
        ports.iter().map(|p| p.network_id.as_str()).collect();
    let policy = |n: Network| n.qos_policy_id.map(|q| (n.meta.id, q));
    if nets.len() > 16 {
        let all = api.db.all::<Network>().await?;
        return Ok(all.into_iter().filter_map(|(n, _)| policy(n)).collect());
    }
    let mut out = std::collections::HashMap::new();
    for id in nets {
        if let Some((n, _)) = api.db.get::<Network>(id).await? {
            out.extend(policy(n));
        }
    }
    Ok(out)
}
