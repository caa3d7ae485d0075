//! `/v2.0/address-groups` (Neutron's `address-group`): named sets of prefixes that
//! security group rules name as their remote end (`remote_address_group_id`), with the
//! `add_addresses` and `remove_addresses` actions. Hosts expand the rules naming a group
//! into one match per prefix (the controller's `security_groups::address_groups`).

use super::lifecycle::Lifecycle;
use super::ops::Plan;
use super::{Resource, Standard, one, render, touch, writable};
use crate::Api;
use crate::body::{Attrs, JsonBody, bad_attr};
use crate::context::Context;
use crate::db::retrying;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use ipnet::IpNet;
use model::{AddressGroup, Meta, SecurityGroupRule};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

impl Resource for AddressGroup {
    const COLLECTION: &'static str = "address_groups";
    const RESOURCE: &'static str = "address_group";
    const STANDARD: Standard = Standard {
        name: true,
        tags: false,
        described: true,
    };
    const OWN_ATTRS: &'static [&'static str] = &["addresses"];

    fn render_own(&self, m: &mut Map<String, Value>) {
        let a: Vec<String> = self.addresses.iter().map(|a| a.to_string()).collect();
        m.insert("addresses".into(), json!(a));
    }
}

/// A POST's own attribute.
pub struct NewGroup {
    addresses: Vec<IpNet>,
}

impl Lifecycle for AddressGroup {
    type Create = NewGroup;
    /// Name and description only: the addresses change through the actions.
    type Update = ();
    const PUT_READ_ONLY: &'static [&'static str] = &["addresses"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewGroup> {
        Ok(NewGroup {
            addresses: parse_addresses(attrs, false)?.unwrap_or_default(),
        })
    }

    async fn plan_create(
        _api: &Api,
        _ctx: &Context,
        meta: Meta,
        req: &NewGroup,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<AddressGroup> {
        Ok(AddressGroup {
            meta,
            addresses: normal(req.addresses.iter().copied()),
            deleting: false,
        })
    }

    fn parse_update(_: &Context, _: &AddressGroup, _: &mut Attrs) -> ApiResult<()> {
        Ok(())
    }

    async fn plan_update(
        _api: &Api,
        _ctx: &Context,
        _g: &mut AddressGroup,
        _req: (),
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        Ok(())
    }

    fn deleting_mark(&mut self) -> Option<&mut bool> {
        Some(&mut self.deleting)
    }

    /// Refused while a rule names it: the rule would match nothing, silently.
    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        g: &AddressGroup,
        _plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        let id = &g.meta.id;
        let rules = api.db.all::<SecurityGroupRule>().await?;
        if rules
            .iter()
            .any(|(r, _)| r.remote_address_group_id.as_ref() == Some(id))
        {
            return Err(ApiError::conflict(
                "AddressGroupInUse",
                format!("Address group {id} is in use on one or more security group rules."),
            ));
        }
        Ok(())
    }

    fn summary(&self) -> String {
        format!("{} addresses", self.addresses.len())
    }
}

/// `addresses`: a list of CIDRs; host bits are cleared. A bare address is refused at
/// create (Neutron's `type:subnet_list`) but is its /32 or /128 in the actions (which
/// Neutron reads with `netaddr.IPNetwork`).
fn parse_addresses(attrs: &mut Attrs, bare_ok: bool) -> ApiResult<Option<Vec<IpNet>>> {
    let Some(items) = attrs.list("addresses")? else {
        return Ok(None);
    };
    items
        .iter()
        .map(|v| {
            v.as_str()
                .and_then(|s| match s.parse::<IpNet>() {
                    Ok(n) => Some(n),
                    Err(_) if bare_ok => s.parse::<std::net::IpAddr>().ok().map(IpNet::from),
                    Err(_) => None,
                })
                .map(|n| n.trunc())
                .ok_or_else(|| {
                    bad_attr(
                        "addresses",
                        format!("'{}' is not a valid IP subnet", crate::body::show(v)),
                    )
                })
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

/// Sorted, without duplicates.
fn normal(a: impl IntoIterator<Item = IpNet>) -> Vec<IpNet> {
    a.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
}

fn listed(a: &[IpNet]) -> String {
    let v: Vec<String> = a.iter().map(|a| a.to_string()).collect();
    format!("{v:?}")
}

/// `PUT /v2.0/address-groups/{id}/add_addresses` and `remove_addresses`: adding one
/// already there is a 400 (`AddressesAlreadyExist`), removing one that is not a 404
/// (`AddressesNotFound`), nothing changed either way.
async fn change(
    api: &Api,
    ctx: &Context,
    id: &str,
    body: Value,
    add: bool,
) -> ApiResult<Json<Value>> {
    let action = if add {
        "add_addresses"
    } else {
        "remove_addresses"
    };
    // Neutron reads `{"addresses": [...]}` (its client sends that); the body wrapped in
    // `address_group`, as other actions take theirs, is accepted too.
    let mut attrs = match body {
        Value::Object(m) if !m.contains_key(AddressGroup::RESOURCE) => Attrs::from_map(m, "PUT"),
        body => Attrs::from_body(body, AddressGroup::RESOURCE, "PUT")?,
    };
    let given = parse_addresses(&mut attrs, true)?
        .ok_or_else(|| bad_attr("addresses", "addresses is required"))?;
    attrs.finish()?;
    let given = normal(given);
    let g = retrying(|| async {
        let (mut g, rev) = writable::<AddressGroup>(api, ctx, id, action, &[]).await?;
        let (present, absent): (Vec<IpNet>, Vec<IpNet>) =
            given.iter().partition(|a| g.addresses.contains(a));
        if add && !present.is_empty() {
            return Err(ApiError::bad_request(
                "AddressesAlreadyExist",
                format!(
                    "Addresses {} already exist in the address group {id}.",
                    listed(&present)
                ),
            ));
        }
        if !add && !absent.is_empty() {
            return Err(ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "AddressesNotFound",
                format!(
                    "Addresses {} not found in the address group {id}.",
                    listed(&absent)
                ),
            ));
        }
        g.addresses = if add {
            normal(g.addresses.iter().chain(&given).copied())
        } else {
            g.addresses.retain(|a| !given.contains(a));
            g.addresses.clone()
        };
        touch(&mut g.meta);
        let mut plan = Plan::new(api);
        plan.txn.update(&g, rev);
        plan.commit(api).await?;
        Ok(g)
    })
    .await?;
    tracing::info!(%id, "address group {action} {}", g.addresses.len());
    Ok(Json(one::<AddressGroup>(render(&g), None)))
}

pub async fn add_addresses(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    change(&api, &ctx, &id, body, true).await
}

pub async fn remove_addresses(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    change(&api, &ctx, &id, body, false).await
}
