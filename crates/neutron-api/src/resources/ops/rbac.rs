//! RBAC policies as other resources write them: the `*` policies that a network's
//! `shared` and `router:external` stand for, and the policies that go with a deleted
//! network or security group.

use super::Plan;
use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::policy::rbac::{self, EXTERNAL, NETWORK, SHARED, WILDCARD, check_removal, policies_on};
use model::{Network, Port, RbacPolicy, owner};

/// Adds the `*` policy of `action` on the object to `plan` (with its uniqueness claim).
pub fn add_wildcard(plan: &mut Plan<'_>, object_type: &str, id: &str, action: &str, project: &str) {
    add(plan, &rbac::wildcard(object_type, id, action, project));
}

/// Adds a new policy to `plan`; a duplicate is 409 `DuplicateRbacPolicy`.
pub fn add(plan: &mut Plan<'_>, p: &RbacPolicy) {
    plan.txn
        .claim_requested(&rbac::claim(p), &p.meta.id, duplicate());
    plan.txn.create(p);
}

pub fn duplicate() -> ApiError {
    ApiError::conflict(
        "DuplicateRbacPolicy",
        "An RBAC policy already exists with those values.",
    )
}

/// Deletes a policy (and its claim) in `plan`.
pub fn remove(plan: &mut Plan<'_>, p: &RbacPolicy, rev: nbdb::Revision) {
    plan.txn.release(&rbac::claim(p));
    plan.txn.delete(p, rev);
}

/// Every policy on an object that is being deleted goes with it.
pub async fn remove_all(api: &Api, plan: &mut Plan<'_>, object_id: &str) -> ApiResult<()> {
    for (p, rev) in policies_on(api, object_id).await? {
        remove(plan, &p, rev);
    }
    Ok(())
}

/// `shared` on a network: adds or removes its `*` `access_as_shared` policy. Unsharing a
/// network other projects have ports on (and no policy of their own for) is 409
/// `InvalidSharedSetting`, as in Neutron.
pub async fn set_network_shared(
    api: &Api,
    plan: &mut Plan<'_>,
    n: &mut Network,
    shared: bool,
) -> ApiResult<()> {
    let id = n.meta.id.clone();
    let policies = policies_on(api, &id).await?;
    let wildcard = policies
        .iter()
        .find(|(p, _)| p.action == SHARED && p.target_tenant == WILDCARD);
    match (shared, wildcard) {
        (true, None) => add_wildcard(plan, NETWORK, &id, SHARED, &n.meta.project_id),
        (false, Some((p, rev))) => {
            let all: Vec<RbacPolicy> = policies.iter().map(|(p, _)| p.clone()).collect();
            if check_removal(api, &all, p, None, &n.meta.project_id)
                .await
                .is_err()
            {
                return Err(ApiError::conflict(
                    "InvalidSharedSetting",
                    format!(
                        "Unable to reconfigure sharing settings for network {id}. Multiple tenants are using it."
                    ),
                ));
            }
            remove(plan, p, *rev);
        }
        _ => {}
    }
    n.shared = shared;
    Ok(())
}

/// `router:external` on a network: making it external adds the `*`
/// `access_as_external` policy; making it internal removes every such policy, refused
/// (409 `ExternalNetworkInUse`) while a router has its gateway there.
pub async fn set_network_external(
    api: &Api,
    plan: &mut Plan<'_>,
    n: &mut Network,
    external: bool,
) -> ApiResult<()> {
    if external == n.external {
        return Ok(());
    }
    let id = n.meta.id.clone();
    if external {
        add_wildcard(plan, NETWORK, &id, EXTERNAL, &n.meta.project_id);
    } else {
        let ports = api.db.all::<Port>().await?;
        if ports
            .iter()
            .any(|(p, _)| p.network_id == id && p.device_owner == owner::ROUTER_GATEWAY)
        {
            return Err(ApiError::conflict(
                "ExternalNetworkInUse",
                format!(
                    "External network {id} cannot be updated to be non-external, since it has existing gateway ports."
                ),
            ));
        }
        for (p, rev) in policies_on(api, &id).await? {
            if p.action == EXTERNAL {
                remove(plan, &p, rev);
            }
        }
    }
    n.external = external;
    Ok(())
}

/// The policy target of a new subnet or port of `project` on network `network_id`:
/// 404 `NetworkNotFound` unless the caller is admin, owns the network or has it shared
/// with it (Neutron's `_validate_network_tenant_ownership`: an external network alone
/// does not let another project put ports on it).
pub async fn on_network(
    api: &Api,
    ctx: &crate::context::Context,
    project: &str,
    network_id: &str,
) -> ApiResult<crate::policy::Target> {
    let (n, _) = api.db.fetch::<Network>(network_id).await?;
    let owner = n.meta.project_id.clone();
    let grants = rbac::Grants::load(api, ctx, owner != ctx.project_id).await?;
    let shared = grants.shared_network(&n);
    if !ctx.is_admin && owner != ctx.project_id && !shared {
        return Err(ApiError::not_found("Network", network_id));
    }
    Ok(crate::policy::Target {
        project_id: project.to_string(),
        network_owner: Some(owner),
        shared,
        wildcard: false,
    })
}

/// A network that project `project` (a router's, a floating IP's) may use as external:
/// its own, or one an `access_as_external` policy opens to it. One it cannot see is 404
/// `NetworkNotFound` (not disclosed); one it sees but that is internal (shared) is
/// returned for the caller to refuse with its own message.
pub async fn external_for(
    api: &Api,
    project: &str,
    network_id: &str,
) -> ApiResult<(Network, nbdb::Revision)> {
    let (n, rev) = api.db.fetch::<Network>(network_id).await?;
    if n.meta.project_id == project || project.is_empty() {
        return Ok((n, rev));
    }
    let grants = rbac::Grants::load_for(api, project, true).await?;
    if !grants.external_network(&n) && !grants.shared_network(&n) {
        return Err(ApiError::not_found("Network", network_id));
    }
    Ok((n, rev))
}

/// A new use of object `object_id` by project `project` that only a policy allows (a
/// port on a network shared with it, a router gateway, a shared group in its port):
/// checks in `plan` that a granting policy is still there at the commit, so a delete
/// that marks it (`Lifecycle::deleting_mark`) makes this create retry and see the
/// mark. False when no policy that is not being deleted grants `action`.
pub async fn rely_on(
    api: &Api,
    plan: &mut Plan<'_>,
    project: &str,
    object_id: &str,
    action: &str,
) -> ApiResult<bool> {
    let grants = rbac::Grants::load_for(api, project, true).await?;
    match grants.usable(object_id, action) {
        Some((id, rev)) => {
            plan.txn.check::<RbacPolicy>(id, rev);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// A port or router interface of `project` on network `n`: its owner's, or relying on a
/// shared policy (else 404 `NetworkNotFound`). A `shared` network with no policy object
/// (written before policies existed) is taken as shared with everyone.
pub async fn use_network(
    api: &Api,
    plan: &mut Plan<'_>,
    ctx: &crate::context::Context,
    project: &str,
    n: &Network,
) -> ApiResult<()> {
    if ctx.is_admin || n.meta.project_id == project {
        return Ok(());
    }
    if rely_on(api, plan, project, &n.meta.id, SHARED).await? {
        return Ok(());
    }
    if n.shared && policies_on(api, &n.meta.id).await?.is_empty() {
        return Ok(());
    }
    Err(ApiError::not_found("Network", &n.meta.id))
}
