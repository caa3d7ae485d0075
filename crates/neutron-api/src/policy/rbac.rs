//! RBAC grants: what the `rbac_policy` objects give a project (a network or security
//! group shared with it, a network it may use as external), and whether removing one
//! would take away access that is in use.

use crate::Api;
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use model::{Network, Port, RbacPolicy, Router};
use nbdb::Revision;
use std::collections::{HashMap, HashSet};

pub const SHARED: &str = "access_as_shared";
pub const EXTERNAL: &str = "access_as_external";
/// The target that means every project.
pub const WILDCARD: &str = "*";
pub const NETWORK: &str = "network";
pub const SECURITY_GROUP: &str = "security_group";
pub const QOS_POLICY: &str = "qos_policy";

/// The actions each object type takes, as Neutron's `rbac-policies`,
/// `rbac-security-groups` and `qos` extensions define them.
pub const ACTIONS: &[(&str, &[&str])] = &[
    (NETWORK, &[SHARED, EXTERNAL]),
    (SECURITY_GROUP, &[SHARED]),
    (QOS_POLICY, &[SHARED]),
];

/// One granting policy: its id, revision, and whether it is being deleted.
#[derive(Debug)]
struct Grant {
    id: String,
    rev: Revision,
    deleting: bool,
}

/// What the policies naming one project (or `*`) grant it: for each `(object id,
/// action)`, the policies that do, with their revisions and whether they are being
/// deleted.
#[derive(Debug, Default)]
pub struct Grants {
    granted: HashMap<(String, String), Vec<Grant>>,
}

impl Grants {
    pub fn from_policies<'a>(
        policies: impl IntoIterator<Item = (&'a RbacPolicy, Revision)>,
        project: &str,
    ) -> Grants {
        let mut granted: HashMap<(String, String), Vec<Grant>> = HashMap::new();
        for (p, rev) in policies {
            if p.target_tenant == WILDCARD || p.target_tenant == project {
                granted
                    .entry((p.object_id.clone(), p.action.clone()))
                    .or_default()
                    .push(Grant {
                        id: p.meta.id.clone(),
                        rev,
                        deleting: p.deleting,
                    });
            }
        }
        Grants { granted }
    }

    /// The grants of `ctx`'s project; none read when `needed` is false (the caller owns
    /// everything it looks at, or is admin).
    pub async fn load(api: &Api, ctx: &Context, needed: bool) -> ApiResult<Grants> {
        Grants::load_for(api, &ctx.project_id, needed && !ctx.is_admin).await
    }

    /// The grants of `project`.
    pub async fn load_for(api: &Api, project: &str, needed: bool) -> ApiResult<Grants> {
        if !needed {
            return Ok(Grants::default());
        }
        let all = api.db.all::<RbacPolicy>().await?;
        Ok(Grants::from_policies(
            all.iter().map(|(p, rev)| (p, *rev)),
            project,
        ))
    }

    /// Whether a policy grants `action` on the object (for reading it).
    pub fn has(&self, object_id: &str, action: &str) -> bool {
        self.granted
            .contains_key(&(object_id.to_string(), action.to_string()))
    }

    /// A policy granting `action` that is not being deleted, with its revision: what a
    /// new use of the object (a port, a gateway) relies on and checks at its commit.
    pub fn usable(&self, object_id: &str, action: &str) -> Option<(&str, Revision)> {
        self.granted
            .get(&(object_id.to_string(), action.to_string()))?
            .iter()
            .find(|g| !g.deleting)
            .map(|g| (g.id.as_str(), g.rev))
    }

    /// The network is shared with the project (`shared`, or a policy).
    pub fn shared_network(&self, n: &Network) -> bool {
        n.shared || self.has(&n.meta.id, SHARED)
    }

    /// The project may use the network as external (router gateways, floating IPs).
    pub fn external_network(&self, n: &Network) -> bool {
        n.external && self.has(&n.meta.id, EXTERNAL)
    }
}

/// The policies on one object.
pub async fn policies_on(
    api: &Api,
    object_id: &str,
) -> ApiResult<Vec<(RbacPolicy, nbdb::Revision)>> {
    let all = api.db.all::<RbacPolicy>().await?;
    Ok(all
        .into_iter()
        .filter(|(p, _)| p.object_id == object_id)
        .collect())
}

/// Which projects keep `action` on the object once `removed` is gone (or retargeted to
/// `new_target`): its owner and the other policies' targets. `None`: every project.
fn remaining(
    policies: &[RbacPolicy],
    removed: &RbacPolicy,
    new_target: Option<&str>,
    owner: &str,
) -> Option<HashSet<String>> {
    let mut keep: HashSet<String> = policies
        .iter()
        .filter(|p| p.meta.id != removed.meta.id && p.action == removed.action)
        .map(|p| p.target_tenant.clone())
        .chain(new_target.map(str::to_string))
        .collect();
    if keep.contains(WILDCARD) {
        return None;
    }
    keep.insert(owner.to_string());
    Some(keep)
}

pub fn in_use(object_id: &str, details: &str) -> ApiError {
    ApiError::conflict(
        "RbacPolicyInUse",
        format!(
            "RBAC policy on object {object_id} cannot be removed because other objects depend on it.\nDetails: {details}"
        ),
    )
}

/// Refuses (409 `RbacPolicyInUse`) to remove `removed` from the object owned by `owner`
/// (or to retarget it to `new_target`) while a project that would lose access has ports
/// on the network, routers with their gateway on it, or ports in the security group.
/// `policies` are all the object's policies, `removed` among them.
pub async fn check_removal(
    api: &Api,
    policies: &[RbacPolicy],
    removed: &RbacPolicy,
    new_target: Option<&str>,
    owner: &str,
) -> ApiResult<()> {
    if new_target == Some(removed.target_tenant.as_str()) || removed.target_tenant == owner {
        return Ok(());
    }
    if removed.object_type == QOS_POLICY {
        return check_qos_removal(api, policies, removed).await;
    }
    let Some(keep) = remaining(policies, removed, new_target, owner) else {
        return Ok(());
    };
    // Whom the policy served: one project, or (for `*`) everyone not kept otherwise.
    let loses = |project: &str| {
        !project.is_empty()
            && !keep.contains(project)
            && (removed.target_tenant == WILDCARD || removed.target_tenant == project)
    };
    let id = &removed.object_id;
    match (removed.object_type.as_str(), removed.action.as_str()) {
        (NETWORK, SHARED) => {
            let ports = api.db.all::<Port>().await?;
            if ports
                .iter()
                .any(|(p, _)| p.network_id == *id && loses(&p.meta.project_id))
            {
                return Err(in_use(
                    id,
                    &format!(
                        "Unable to reconfigure sharing settings for network {id}. Multiple tenants are using it."
                    ),
                ));
            }
        }
        (NETWORK, EXTERNAL) => {
            let routers = api.db.all::<Router>().await?;
            let attached =
                |r: &Router| (r.external_gateway.as_ref()).is_some_and(|g| g.network_id == *id);
            if routers
                .iter()
                .any(|(r, _)| attached(r) && loses(&r.meta.project_id))
            {
                return Err(in_use(
                    id,
                    "There are routers attached to this network that depend on this policy for access.",
                ));
            }
        }
        _ => {
            let ports = api.db.all::<Port>().await?;
            if ports.iter().any(|(p, _)| {
                p.security_groups.iter().any(|g| g == id) && loses(&p.meta.project_id)
            }) {
                return Err(in_use(
                    id,
                    &format!(
                        "Unable to reconfigure sharing settings for security group {id}. Multiple tenants are using it."
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Neutron's check for a QoS policy: the projects whose networks and ports use it
/// (its owner too) must keep access through the policies that remain (a retarget counts
/// as a removal, and the owner is not exempt).
async fn check_qos_removal(
    api: &Api,
    policies: &[RbacPolicy],
    removed: &RbacPolicy,
) -> ApiResult<()> {
    let others: Vec<&RbacPolicy> = policies
        .iter()
        .filter(|p| p.meta.id != removed.meta.id && p.action == SHARED)
        .collect();
    let id = &removed.object_id;
    let bound = crate::resources::ops::qos::bound_projects(api, id).await?;
    let target = &removed.target_tenant;
    let fails = if target != WILDCARD {
        !others.iter().any(|p| p.target_tenant == WILDCARD) && bound.contains(target)
    } else {
        bound
            .iter()
            .any(|b| !others.iter().any(|p| p.target_tenant == *b))
    };
    if fails {
        return Err(in_use(id, &format!("project_id={target}")));
    }
    Ok(())
}

/// The claim that makes a policy unique (409 `DuplicateRbacPolicy` otherwise).
pub fn claim(p: &RbacPolicy) -> String {
    format!(
        "rbac/{}/{}/{}/{}",
        p.object_type, p.object_id, p.action, p.target_tenant
    )
}

/// A new policy of the owner of object `object_id`: the `*` policies that `shared` and
/// `router:external` stand for.
pub fn wildcard(object_type: &str, object_id: &str, action: &str, project: &str) -> RbacPolicy {
    let now = model::time::now();
    RbacPolicy {
        meta: model::Meta {
            id: model::new_id(),
            project_id: project.to_string(),
            created_at: now.clone(),
            updated_at: now,
            ..model::Meta::default()
        },
        object_type: object_type.to_string(),
        object_id: object_id.to_string(),
        action: action.to_string(),
        target_tenant: WILDCARD.to_string(),
        deleting: false,
    }
}
