//! `/v2.0/rbac-policies`: sharing a network (`access_as_shared`, `access_as_external`), a
//! security group or a QoS policy (`access_as_shared`) with one project or with every one
//! (`*`). A network's and QoS policy's `shared` and a network's `router:external` are
//! their `*` policies (`ops::rbac`, `ops::qos`); what a
//! policy grants is read by `crate::policy::rbac`.

use super::lifecycle::Lifecycle;
use super::ops::{Plan, qos as ops_qos, rbac as ops_rbac};
use super::{Resource, Standard, visible};
use crate::Api;
use crate::body::{Attrs, bad_attr};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::policy::rbac::{
    ACTIONS, EXTERNAL, NETWORK, QOS_POLICY, SHARED, WILDCARD, check_removal, policies_on,
};
use crate::policy::{self, Target};
use model::{Meta, Network, QosPolicy, RbacPolicy, SecurityGroup};
use serde_json::{Map, Value, json};

impl Resource for RbacPolicy {
    const COLLECTION: &'static str = "rbac_policies";
    const RESOURCE: &'static str = "rbac_policy";
    const STANDARD: Standard = Standard::BARE;
    const OWN_ATTRS: &'static [&'static str] =
        &["object_type", "object_id", "action", "target_tenant"];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("object_type".into(), json!(self.object_type));
        m.insert("object_id".into(), json!(self.object_id));
        m.insert("action".into(), json!(self.action));
        m.insert("target_tenant".into(), json!(self.target_tenant));
    }
}

/// A POST's own attributes.
pub struct NewPolicy {
    object_type: String,
    object_id: String,
    action: String,
    target_tenant: String,
}

fn required(attrs: &mut Attrs, key: &str) -> ApiResult<String> {
    attrs.string(key)?.ok_or_else(|| {
        ApiError::bad_request(
            "HTTPBadRequest",
            format!("Failed to parse request. Required attribute '{key}' not specified"),
        )
    })
}

/// `*` or a project id (a UUID, with or without dashes, as Keystone's are).
fn target_tenant(attrs: &mut Attrs) -> ApiResult<Option<String>> {
    let Some(t) = attrs.string("target_tenant")? else {
        return Ok(None);
    };
    if t != WILDCARD && !model::is_uuid(&t) {
        return Err(bad_attr(
            "target_tenant",
            format!("'{t}' is not a valid target project ID; expected a UUID or '*'"),
        ));
    }
    Ok(Some(t))
}

/// The object a policy is on, as `ctx` may see it: 404 when it does not exist or is not
/// visible to the caller, 400 when the caller sees it (shared) but does not own it.
async fn check_object(api: &Api, ctx: &Context, object_type: &str, id: &str) -> ApiResult<()> {
    let (owner, what) = if object_type == NETWORK {
        let (n, _) = visible::<Network>(api, ctx, id).await?;
        (n.meta.project_id, "networks")
    } else if object_type == QOS_POLICY {
        let (p, _) = visible::<QosPolicy>(api, ctx, id).await?;
        (p.meta.project_id, "objects")
    } else {
        let (g, _) = visible::<SecurityGroup>(api, ctx, id).await?;
        (g.meta.project_id, "objects")
    };
    if !ctx.is_admin && owner != ctx.project_id {
        return Err(ApiError::invalid(format!(
            "Only admins can manipulate policies on {what} they do not own"
        )));
    }
    Ok(())
}

/// The owner of the object a policy is on; `None` when the object is gone (its
/// policies go with it, so only a policy left by an interrupted delete).
async fn object_owner(api: &Api, p: &RbacPolicy) -> ApiResult<Option<String>> {
    Ok(if p.object_type == NETWORK {
        (api.db.get::<Network>(&p.object_id).await?).map(|(n, _)| n.meta.project_id)
    } else if p.object_type == QOS_POLICY {
        (api.db.get::<QosPolicy>(&p.object_id).await?).map(|(q, _)| q.meta.project_id)
    } else {
        (api.db.get::<SecurityGroup>(&p.object_id).await?).map(|(g, _)| g.meta.project_id)
    })
}

fn kind(p: &RbacPolicy) -> &'static str {
    if p.object_type == NETWORK {
        "Network"
    } else if p.object_type == QOS_POLICY {
        "QosPolicy"
    } else {
        "SecurityGroup"
    }
}

/// Keeps a network's `shared` and `router:external` in step with its policies: a `*`
/// shared policy is `shared`; an external policy makes it external, as in Neutron.
async fn sync_network(
    api: &Api,
    plan: &mut Plan<'_>,
    id: &str,
    after: &[RbacPolicy],
) -> ApiResult<()> {
    let (mut n, rev) = api.db.fetch::<Network>(id).await?;
    let shared = after
        .iter()
        .any(|p| p.action == SHARED && p.target_tenant == WILDCARD);
    let external = n.external || after.iter().any(|p| p.action == EXTERNAL);
    if (shared, external) != (n.shared, n.external) {
        n.shared = shared;
        n.external = external;
        super::touch(&mut n.meta);
    }
    // Written (or checked) at its revision either way, so a port create that read the
    // network before this change retries and sees the new policies.
    plan.txn.update(&n, rev);
    Ok(())
}

impl Lifecycle for RbacPolicy {
    type Create = NewPolicy;
    type Update = String;
    const PUT_READ_ONLY: &'static [&'static str] = &["object_type", "object_id", "action"];

    /// The policy's rules are checked before its object, as in Neutron.
    async fn create_target(
        _api: &Api,
        _ctx: &Context,
        meta: &Meta,
        req: &NewPolicy,
    ) -> ApiResult<Target> {
        Ok(Target {
            wildcard: req.target_tenant == WILDCARD,
            ..Target::project(&meta.project_id)
        })
    }

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewPolicy> {
        let raw_type = required(attrs, "object_type")?;
        let object_type = raw_type.trim().to_lowercase();
        let Some((_, actions)) = ACTIONS.iter().find(|(t, _)| *t == object_type) else {
            return Err(ApiError::invalid(format!(
                "'{raw_type}' is not a valid RBAC object type"
            )));
        };
        let object_id = required(attrs, "object_id")?;
        if !model::is_uuid(&object_id) {
            return Err(bad_attr(
                "object_id",
                format!("'{object_id}' is not a valid UUID"),
            ));
        }
        let action = required(attrs, "action")?;
        if !actions.contains(&action.as_str()) {
            return Err(ApiError::bad_request(
                "InvalidActionForType",
                format!(
                    "Invalid action '{action}' for object type '{object_type}'. Valid actions: {actions:?}"
                ),
            ));
        }
        let target_tenant = target_tenant(attrs)?.ok_or_else(|| {
            ApiError::bad_request(
                "HTTPBadRequest",
                "Failed to parse request. Required attribute 'target_tenant' not specified",
            )
        })?;
        Ok(NewPolicy {
            object_type,
            object_id,
            action,
            target_tenant,
        })
    }

    async fn plan_create(
        api: &Api,
        ctx: &Context,
        meta: Meta,
        req: &NewPolicy,
        plan: &mut Plan<'_>,
    ) -> ApiResult<RbacPolicy> {
        check_object(api, ctx, &req.object_type, &req.object_id).await?;
        let p = RbacPolicy {
            meta,
            object_type: req.object_type.clone(),
            object_id: req.object_id.clone(),
            action: req.action.clone(),
            target_tenant: req.target_tenant.clone(),
            deleting: false,
        };
        // The policy itself is written by the handler; its claim makes it unique.
        plan.txn.claim_requested(
            &crate::policy::rbac::claim(&p),
            &p.meta.id,
            ops_rbac::duplicate(),
        );
        if p.object_type == NETWORK {
            let mut after: Vec<RbacPolicy> = policies_on(api, &p.object_id)
                .await?
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            after.push(p.clone());
            sync_network(api, plan, &p.object_id, &after).await?;
        } else if p.object_type == QOS_POLICY {
            let mut after: Vec<RbacPolicy> = (policies_on(api, &p.object_id).await?)
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            after.push(p.clone());
            ops_qos::sync_shared(api, plan, &p.object_id, &after).await?;
        } else {
            let (_, rev) = api.db.fetch::<SecurityGroup>(&p.object_id).await?;
            plan.txn.check::<SecurityGroup>(&p.object_id, rev);
        }
        Ok(p)
    }

    fn parse_update(ctx: &Context, p: &RbacPolicy, attrs: &mut Attrs) -> ApiResult<String> {
        let new = target_tenant(attrs)?.unwrap_or_else(|| p.target_tenant.clone());
        // The attribute rule is checked against the new value, as in Neutron.
        let target = Target {
            wildcard: new == WILDCARD,
            ..Target::project(&p.meta.project_id)
        };
        policy::enforce(ctx, "rbac_policy", "update", &target, &["target_tenant"])?;
        Ok(new)
    }

    async fn plan_update(
        api: &Api,
        _ctx: &Context,
        p: &mut RbacPolicy,
        new: String,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if new == p.target_tenant {
            return Ok(());
        }
        let on: Vec<RbacPolicy> = (policies_on(api, &p.object_id).await?)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        let Some(owner) = object_owner(api, p).await? else {
            return Err(ApiError::not_found(kind(p), &p.object_id));
        };
        check_removal(api, &on, p, Some(&new), &owner).await?;
        plan.txn.release(&crate::policy::rbac::claim(p));
        p.target_tenant = new;
        plan.txn.claim_requested(
            &crate::policy::rbac::claim(p),
            &p.meta.id,
            ops_rbac::duplicate(),
        );
        if p.object_type == NETWORK {
            let after: Vec<RbacPolicy> = on
                .into_iter()
                .map(|o| if o.meta.id == p.meta.id { p.clone() } else { o })
                .collect();
            sync_network(api, plan, &p.object_id, &after).await?;
        } else if p.object_type == QOS_POLICY {
            let after: Vec<RbacPolicy> = on
                .into_iter()
                .map(|o| if o.meta.id == p.meta.id { p.clone() } else { o })
                .collect();
            ops_qos::sync_shared(api, plan, &p.object_id, &after).await?;
        }
        Ok(())
    }

    /// Marked before the in-use check: a port create that relied on the policy either
    /// committed before (and is seen) or fails its check of the policy and retries.
    fn deleting_mark(&mut self) -> Option<&mut bool> {
        Some(&mut self.deleting)
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        p: &RbacPolicy,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        let on: Vec<RbacPolicy> = (policies_on(api, &p.object_id).await?)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        plan.txn.release(&crate::policy::rbac::claim(p));
        let Some(owner) = object_owner(api, p).await? else {
            return Ok(());
        };
        if p.object_type == NETWORK && p.action == EXTERNAL && p.target_tenant == WILDCARD {
            let (n, _) = api.db.fetch::<Network>(&p.object_id).await?;
            if n.is_default {
                return Err(crate::policy::rbac::in_use(
                    &p.object_id,
                    "Default external networks must be shared to everyone.",
                ));
            }
        }
        check_removal(api, &on, p, None, &owner).await?;
        if p.object_type == NETWORK {
            let after: Vec<RbacPolicy> =
                on.into_iter().filter(|o| o.meta.id != p.meta.id).collect();
            let (mut n, rev) = api.db.fetch::<Network>(&p.object_id).await?;
            n.shared = after
                .iter()
                .any(|o| o.action == SHARED && o.target_tenant == WILDCARD);
            // The last external policy gone, the network is internal again (Neutron).
            if p.action == EXTERNAL && !after.iter().any(|o| o.action == EXTERNAL) {
                let mut trial = n.clone();
                trial.external = true;
                ops_rbac::set_network_external(api, &mut Plan::new(api), &mut trial, false).await?;
                n.external = false;
            }
            super::touch(&mut n.meta);
            plan.txn.update(&n, rev);
        } else if p.object_type == QOS_POLICY {
            let after: Vec<RbacPolicy> =
                on.into_iter().filter(|o| o.meta.id != p.meta.id).collect();
            ops_qos::sync_shared(api, plan, &p.object_id, &after).await?;
        }
        Ok(())
    }

    fn summary(&self) -> String {
        format!(
            "({} {} {} to {})",
            self.object_type, self.object_id, self.action, self.target_tenant
        )
    }
}
