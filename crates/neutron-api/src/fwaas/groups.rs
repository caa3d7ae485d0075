//! `/v2.0/fwaas/firewall_groups`: an ingress and an egress policy on a set of ports
//! (router interfaces, and bound VM ports), each port in one group at most (a claim per
//! port); the status follows the ports and `admin_state_up`. The project's default
//! group is made on first sight (`defaults`) and only an admin deletes it.

use super::rules::FW_STANDARD;
use super::{default_restricted, defaults, reserved_name, uuid_list, uuid_or_none};
use crate::Api;
use crate::body::Attrs;
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use crate::policy::Target;
use crate::resources::lifecycle::Lifecycle;
use crate::resources::ops::{Plan, deleting};
use crate::resources::{Resource, Standard, visible};
use axum::http::StatusCode;
use model::fwaas::DEFAULT_GROUP;
use model::{FirewallGroup, FirewallPolicy, Meta, Port, owner};
use serde_json::{Map, Value, json};

impl Resource for FirewallGroup {
    const COLLECTION: &'static str = "firewall_groups";
    const RESOURCE: &'static str = "firewall_group";
    const PATH: Option<&'static str> = Some("fwaas/firewall_groups");
    const STANDARD: Standard = FW_STANDARD;
    const OWN_ATTRS: &'static [&'static str] = &[
        "admin_state_up",
        "status",
        "shared",
        "ports",
        "ingress_firewall_policy_id",
        "egress_firewall_policy_id",
    ];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("admin_state_up".into(), json!(self.admin_state_up));
        m.insert("status".into(), json!(self.status()));
        m.insert("shared".into(), json!(self.shared));
        m.insert("ports".into(), json!(self.ports));
        let ingress = &self.ingress_firewall_policy_id;
        m.insert("ingress_firewall_policy_id".into(), json!(ingress));
        let egress = &self.egress_firewall_policy_id;
        m.insert("egress_firewall_policy_id".into(), json!(egress));
    }

    async fn targets(_api: &Api, _ctx: &Context, objs: &[FirewallGroup]) -> ApiResult<Vec<Target>> {
        Ok(objs
            .iter()
            .map(|g| Target {
                shared: g.shared,
                ..Target::project(&g.meta.project_id)
            })
            .collect())
    }

    async fn before_list(api: &Api, ctx: &Context, query: &Query) -> ApiResult<()> {
        defaults::ensure_listed(api, ctx, query).await
    }
}

/// A POST's or PUT's own attributes (`Some(None)`: a policy given as null).
#[derive(Clone)]
pub struct GroupRequest {
    admin_state_up: Option<bool>,
    shared: Option<bool>,
    ports: Option<Vec<String>>,
    ingress: Option<Option<String>>,
    egress: Option<Option<String>>,
}

fn parse(attrs: &mut Attrs) -> ApiResult<GroupRequest> {
    Ok(GroupRequest {
        admin_state_up: attrs.bool("admin_state_up")?,
        shared: attrs.bool("shared")?,
        ports: uuid_list("ports", attrs.take("ports"))?,
        ingress: uuid_or_none(
            "ingress_firewall_policy_id",
            attrs.take("ingress_firewall_policy_id"),
        )?,
        egress: uuid_or_none(
            "egress_firewall_policy_id",
            attrs.take("egress_firewall_policy_id"),
        )?,
    })
}

/// The claim that puts `port` in one group at most.
pub fn port_claim(port: &str) -> String {
    format!("fwgport/{port}")
}

fn port_in_use(port: &str) -> ApiError {
    ApiError::conflict(
        "FirewallGroupPortInUse",
        format!("Port(s) ['{port}'] provided already associated with other firewall group(s)."),
    )
}

/// neutron-fwaas's checks of a group's policy: it exists, and another project's policy
/// is shared (`FirewallPolicyConflict`, a 404). Its revision is checked at commit.
async fn check_policy(
    api: &Api,
    g: &FirewallGroup,
    id: &str,
    plan: &mut Plan<'_>,
) -> ApiResult<()> {
    let Some((p, rev)) = api.db.get::<FirewallPolicy>(id).await? else {
        return Err(super::policy_not_found(id));
    };
    deleting::not_deleting(&p)?;
    if p.meta.project_id != g.meta.project_id && !p.shared {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "FirewallPolicyConflict",
            format!(
                "Operation cannot be performed since firewall policy {id} for your project could \
                 not be found. Please confirm if the firewall policy exists and is shared."
            ),
        ));
    }
    plan.txn.check::<FirewallPolicy>(id, rev);
    Ok(())
}

/// A port a group may take: a router interface, or a bound VM port; one the caller
/// cannot see is not found.
async fn check_port(api: &Api, ctx: &Context, id: &str) -> ApiResult<()> {
    let (p, _) = visible::<Port>(api, ctx, id).await?;
    if owner::ROUTER_INTERFACE_OWNERS.contains(&p.device_owner.as_str()) {
        return Ok(());
    }
    if p.device_owner.starts_with("compute:") {
        if p.binding_host_id.is_empty() || p.binding_failed {
            return Err(ApiError::conflict(
                "FirewallGroupPortNotSupported",
                format!("Port {id} is not supported by firewall driver 'dragonflow'."),
            ));
        }
        return Ok(());
    }
    Err(ApiError::conflict(
        "FirewallGroupPortInvalid",
        format!("Port {id} of firewall group is invalid."),
    ))
}

/// Applies `req` to `g`: checks the policies and new ports, claims the ports it takes
/// and releases the ones it drops.
async fn apply(
    api: &Api,
    ctx: &Context,
    g: &mut FirewallGroup,
    req: GroupRequest,
    plan: &mut Plan<'_>,
) -> ApiResult<()> {
    if let Some(v) = req.admin_state_up {
        g.admin_state_up = v;
    }
    if let Some(v) = req.shared {
        g.shared = v;
    }
    if let Some(v) = req.ingress {
        g.ingress_firewall_policy_id = v;
    }
    if let Some(v) = req.egress {
        g.egress_firewall_policy_id = v;
    }
    let mut ids: Vec<String> = [&g.ingress_firewall_policy_id, &g.egress_firewall_policy_id]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    ids.dedup();
    for id in &ids {
        check_policy(api, g, id, plan).await?;
    }
    if let Some(ports) = req.ports {
        for p in &ports {
            check_port(api, ctx, p).await?;
        }
        for gone in g.ports.iter().filter(|p| !ports.contains(p)) {
            plan.txn.release(&port_claim(gone));
        }
        for new in ports.iter().filter(|p| !g.ports.contains(p)) {
            let claim = port_claim(new);
            plan.txn
                .claim_requested(&claim, &g.meta.id, port_in_use(new));
        }
        g.ports = ports;
    }
    Ok(())
}

impl Lifecycle for FirewallGroup {
    type Create = GroupRequest;
    type Update = GroupRequest;
    const POST_FORBIDDEN: &'static [&'static str] = &["status"];
    const PUT_READ_ONLY: &'static [&'static str] = &["status"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<GroupRequest> {
        parse(attrs)
    }

    async fn plan_create(
        api: &Api,
        ctx: &Context,
        meta: Meta,
        req: &GroupRequest,
        plan: &mut Plan<'_>,
    ) -> ApiResult<FirewallGroup> {
        if meta.name == DEFAULT_GROUP {
            return Err(reserved_name(&meta.name, "Firewall Group"));
        }
        defaults::ensure_default(api, &meta.project_id).await?;
        let mut g = FirewallGroup {
            meta,
            shared: false,
            admin_state_up: true,
            ingress_firewall_policy_id: None,
            egress_firewall_policy_id: None,
            ports: vec![],
            is_default: false,
        };
        apply(api, ctx, &mut g, req.clone(), plan).await?;
        Ok(g)
    }

    fn parse_update(
        _ctx: &Context,
        _: &FirewallGroup,
        attrs: &mut Attrs,
    ) -> ApiResult<GroupRequest> {
        parse(attrs)
    }

    /// A default group keeps its name; only an admin changes its description, state
    /// or policies (as neutron-fwaas, which looks at what the request sets).
    async fn plan_update(
        api: &Api,
        ctx: &Context,
        g: &mut FirewallGroup,
        req: GroupRequest,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        let (stored, _) = api.db.fetch::<FirewallGroup>(&g.meta.id).await?;
        if g.meta.name == DEFAULT_GROUP && stored.meta.name != DEFAULT_GROUP {
            return Err(reserved_name(DEFAULT_GROUP, "Firewall Group"));
        }
        if stored.is_default {
            let renamed = g.meta.name != stored.meta.name;
            let others = g.meta.description != stored.meta.description
                || req.admin_state_up.is_some()
                || req.ingress.is_some()
                || req.egress.is_some();
            if renamed || (others && !ctx.is_admin) {
                return Err(default_restricted(&g.meta.id));
            }
        }
        apply(api, ctx, g, req, plan).await
    }

    async fn plan_delete(
        api: &Api,
        ctx: &Context,
        g: &FirewallGroup,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if !g.ports.is_empty() {
            return Err(ApiError::conflict(
                "FirewallGroupInUse",
                format!("Firewall group {} is still active.", g.meta.id),
            ));
        }
        if !g.is_default {
            return Ok(());
        }
        if !ctx.is_admin {
            return Err(ApiError::conflict(
                "FirewallGroupCannotRemoveDefault",
                "Deleting default firewall group not allowed.",
            ));
        }
        // The admin deletes a default group with its two policies (not their rules), and
        // the project gets a new one on next sight.
        let mut ids: Vec<&String> = [&g.ingress_firewall_policy_id, &g.egress_firewall_policy_id]
            .into_iter()
            .flatten()
            .collect();
        ids.dedup();
        for id in ids {
            if let Some((p, rev)) = api.db.get::<FirewallPolicy>(id).await? {
                plan.txn.delete(&p, rev);
            }
        }
        plan.txn
            .release(&defaults::default_claim(&g.meta.project_id));
        Ok(())
    }

    fn summary(&self) -> String {
        format!("({} ports, {})", self.ports.len(), self.status())
    }
}

/// Drops a deleted port from its group (neutron-fwaas deletes the association with the
/// port): the group and the port's claim, in the port delete's transaction.
pub async fn forget_port(api: &Api, port: &str, txn: &mut crate::db::Txn) -> ApiResult<()> {
    let Some(gid) = api.db.claim_owner(&port_claim(port)).await? else {
        return Ok(());
    };
    if let Some((mut g, rev)) = api.db.get::<FirewallGroup>(&gid).await? {
        g.ports.retain(|p| p != port);
        crate::resources::touch(&mut g.meta);
        txn.update(&g, rev);
    }
    txn.release(&port_claim(port));
    Ok(())
}
