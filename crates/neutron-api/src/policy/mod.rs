//! Neutron's default policy (the secure-RBAC defaults: `admin`, `member` and `reader`
//! roles, scoped to a project): which caller may do what, written once as a table
//! ([`RULES`], [`ATTR_RULES`]) that the generic handlers ask; and the RBAC grants
//! ([`rbac`]) that share networks and security groups with other projects.
//! docs/api.md shows the table as [`markdown`] renders it (a test keeps them equal).

pub mod rbac;
mod table;

pub use table::{ATTR_RULES, RULES};

use crate::context::Context;
use crate::error::{ApiError, ApiResult};

/// Who a rule lets through. "Project" is the object's project; "network owner" the
/// project of the network the object is on (a subnet's, a port's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The `admin` role.
    Admin,
    /// Admin, or a member of the project.
    ProjectMember,
    /// Admin, or a reader (or member) of the project.
    ProjectReader,
    /// Admin, a reader of the project or of the network owner, or anyone the object is
    /// shared with (`shared`, an RBAC policy, an external network).
    ProjectReaderOrShared,
    /// Admin, or a member of the network owner.
    NetOwnerMember,
    /// Admin, or a member of the network owner or of a project the network is shared with.
    NetOwnerMemberOrShared,
    /// Admin, or a member of the project or of the network owner.
    ProjectOrNetOwnerMember,
    /// Admin, or a reader of the project or of the network owner.
    ProjectOrNetOwnerReader,
    /// Admin, or an RBAC target other than `*`.
    NotWildcard,
}

impl Rule {
    /// The rule in words, for docs/api.md.
    pub fn text(self) -> &'static str {
        match self {
            Rule::Admin => "admin",
            Rule::ProjectMember => "admin or project member",
            Rule::ProjectReader => "admin or project reader",
            Rule::ProjectReaderOrShared => {
                "admin, project or network owner reader, or shared with the project"
            }
            Rule::NetOwnerMember => "admin or network owner member",
            Rule::NetOwnerMemberOrShared => {
                "admin, network owner member, or member of a project the network is shared with"
            }
            Rule::ProjectOrNetOwnerMember => "admin, project member or network owner member",
            Rule::ProjectOrNetOwnerReader => "admin, project reader or network owner reader",
            Rule::NotWildcard => "admin, or a target other than `*`",
        }
    }

    /// Whether `ctx` passes this rule on `target`.
    pub fn allows(self, ctx: &Context, t: &Target) -> bool {
        if ctx.is_admin {
            return true;
        }
        let project = ctx.project_id == t.project_id;
        let net_owner = t.network_owner.as_deref() == Some(ctx.project_id.as_str());
        match self {
            Rule::Admin => false,
            Rule::ProjectMember => project && ctx.is_member(),
            Rule::ProjectReader => project && ctx.is_reader(),
            Rule::ProjectReaderOrShared => (project || net_owner) && ctx.is_reader() || t.shared,
            Rule::NetOwnerMember => net_owner && ctx.is_member(),
            Rule::NetOwnerMemberOrShared => (net_owner || t.shared) && ctx.is_member(),
            Rule::ProjectOrNetOwnerMember => (project || net_owner) && ctx.is_member(),
            Rule::ProjectOrNetOwnerReader => (project || net_owner) && ctx.is_reader(),
            Rule::NotWildcard => !t.wildcard,
        }
    }
}

/// What a rule is checked against: the object (or the one a request would make).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    pub project_id: String,
    /// The project of the object's network (subnets and ports).
    pub network_owner: Option<String>,
    /// Shared with the caller's project (for ports: its network, `access_as_shared`).
    pub shared: bool,
    /// An RBAC policy whose target is `*`.
    pub wildcard: bool,
}

impl Target {
    pub fn project(project_id: &str) -> Target {
        Target {
            project_id: project_id.to_string(),
            ..Target::default()
        }
    }
}

/// The rule of `action` (`create`, `get`, `update`, `delete`, or a member action such
/// as `add_router_interface`) on `resource`; a missing row is admin only.
pub fn rule(resource: &str, action: &str) -> Rule {
    RULES
        .iter()
        .find(|(r, a, _)| *r == resource && *a == action)
        .map_or(Rule::Admin, |(_, _, rule)| *rule)
}

/// Whether `ctx` may `action` `resource` `target`, attributes aside.
pub fn allowed(ctx: &Context, resource: &str, action: &str, target: &Target) -> bool {
    rule(resource, action).allows(ctx, target)
}

/// Checks `action` on `resource` and the rules of the request's attributes `attrs`
/// (those with a rule of their own), as Neutron does: 403 `PolicyNotAuthorized` naming
/// every rule checked, `rule:create_network` or `(rule:create_network and
/// rule:create_network:shared)`.
pub fn enforce(
    ctx: &Context,
    resource: &str,
    action: &str,
    target: &Target,
    attrs: &[&str],
) -> ApiResult<()> {
    let attr_rules: Vec<(&str, Rule)> = ATTR_RULES
        .iter()
        .filter(|(r, a, attr, _)| *r == resource && *a == action && attrs.contains(attr))
        .map(|(_, _, attr, rule)| (*attr, *rule))
        .collect();
    let ok = allowed(ctx, resource, action, target)
        && attr_rules.iter().all(|(_, rule)| rule.allows(ctx, target));
    if ok {
        return Ok(());
    }
    let main = format!("rule:{action}_{resource}");
    let message = if attr_rules.is_empty() {
        main
    } else {
        let parts: Vec<String> = std::iter::once(main)
            .chain(
                attr_rules
                    .iter()
                    .map(|(attr, _)| format!("rule:{action}_{resource}:{attr}")),
            )
            .collect();
        format!("({})", parts.join(" and "))
    };
    Err(ApiError::forbidden(format!(
        "{message} is disallowed by policy"
    )))
}

/// For a write to an existing object: 404 when the caller may not even see it (as
/// Neutron hides another project's objects), 403 when it may see but not `action` it.
pub fn enforce_on(
    ctx: &Context,
    resource: &str,
    kind: &str,
    id: &str,
    action: &str,
    target: &Target,
    attrs: &[&str],
) -> ApiResult<()> {
    if !allowed(ctx, resource, "get", target) {
        return Err(ApiError::not_found(kind, id));
    }
    enforce(ctx, resource, action, target, attrs)
}

/// Removes from `item` (an object of `resource` as rendered) the attributes `ctx` may
/// not see: those with a `get` rule it fails. Those rules look at no object (they are
/// all admin-only), so one answer holds for a whole listing.
pub fn hide(ctx: &Context, resource: &str, item: &mut serde_json::Map<String, serde_json::Value>) {
    for (r, a, attr, rule) in ATTR_RULES {
        if *r == resource && *a == "get" && !rule.allows(ctx, &Target::default()) {
            item.remove(*attr);
        }
    }
}

/// The attributes a request body `{"<resource>": {...}}` sets, as the rules name them:
/// each key, and `key:inner` for the keys of an object or of a list of objects in it
/// (`fixed_ips:ip_address`). Anything that is not an object sets nothing.
pub fn request_attrs(body: &serde_json::Value, resource: &str) -> Vec<String> {
    use serde_json::Value;
    let Some(Value::Object(m)) = body.get(resource) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in m {
        out.push(k.clone());
        let inner: Vec<&serde_json::Map<String, Value>> = match v {
            Value::Object(o) => vec![o],
            Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
            _ => vec![],
        };
        for o in inner {
            out.extend(o.keys().map(|i| format!("{k}:{i}")));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The tables as markdown: the rules of each resource's actions, then the attribute
/// rules. docs/api.md carries this text between its `policy table` markers.
pub fn markdown() -> String {
    let mut out = String::from("| resource | action | who may |\n|---|---|---|\n");
    for (r, a, rule) in RULES {
        out.push_str(&format!("| {r} | {a} | {} |\n", rule.text()));
    }
    out.push_str(
        "\n| resource | action | attribute | who may set it (`get`: see it) |\n|---|---|---|---|\n",
    );
    for (r, a, attr, rule) in ATTR_RULES {
        out.push_str(&format!("| {r} | {a} | `{attr}` | {} |\n", rule.text()));
    }
    out
}

#[cfg(test)]
mod tests;
