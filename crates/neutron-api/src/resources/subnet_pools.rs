//! `/v2.0/subnetpools` (`subnet_allocation`, `default-subnetpools`): pools of prefixes
//! that subnets take their CIDRs from (`ops::pools` allocates them), their prefix-length
//! bounds, per-project prefix quota, the default pool of each IP version, the address
//! scope they belong to; and `add_prefixes`/`remove_prefixes` (`subnetpool-prefix-ops`).

use super::lifecycle::Lifecycle;
use super::ops::Plan;
use super::ops::deleting::not_deleting;
use super::ops::pools::{allocations, compact, covers, overlaps, subtract};
use super::{Resource, touch, writable};
use crate::Api;
use crate::body::{Attrs, JsonBody, bad_attr};
use crate::context::Context;
use crate::db::retrying;
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use axum::Json;
use axum::extract::{Path, State};
use ipnet::IpNet;
use model::pools::default_pool_claim;
use model::{AddressScope, Meta, NbObject, SubnetPool};
use serde_json::{Map, Value, json};
use std::sync::Arc;

impl Resource for SubnetPool {
    const COLLECTION: &'static str = "subnetpools";
    const RESOURCE: &'static str = "subnetpool";
    const OWN_ATTRS: &'static [&'static str] = &[
        "ip_version",
        "prefixes",
        "default_prefixlen",
        "min_prefixlen",
        "max_prefixlen",
        "default_quota",
        "shared",
        "is_default",
        "address_scope_id",
    ];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("ip_version".into(), json!(self.ip_version));
        let prefixes: Vec<String> = self.prefixes.iter().map(ToString::to_string).collect();
        m.insert("prefixes".into(), json!(prefixes));
        // Strings, as Neutron renders them.
        m.insert(
            "default_prefixlen".into(),
            json!(self.default_prefixlen.to_string()),
        );
        m.insert(
            "min_prefixlen".into(),
            json!(self.min_prefixlen.to_string()),
        );
        m.insert(
            "max_prefixlen".into(),
            json!(self.max_prefixlen.to_string()),
        );
        m.insert("default_quota".into(), json!(self.default_quota));
        m.insert("shared".into(), json!(self.shared));
        m.insert("is_default".into(), json!(self.is_default));
        m.insert("address_scope_id".into(), json!(self.address_scope_id));
    }

    /// A shared pool is every project's to read and allocate from.
    async fn targets(_api: &Api, _ctx: &Context, objs: &[SubnetPool]) -> ApiResult<Vec<Target>> {
        Ok(objs
            .iter()
            .map(|p| Target {
                shared: p.shared,
                ..Target::project(&p.meta.project_id)
            })
            .collect())
    }
}

/// Prefix-length bounds as requested (`None`: keep, or Neutron's default).
#[derive(Default)]
pub struct Bounds {
    min: Option<u8>,
    max: Option<u8>,
    default: Option<u8>,
}

/// A POST's or PUT's own attributes (a PUT leaves out what it does not change).
pub struct PoolRequest {
    prefixes: Option<Vec<IpNet>>,
    bounds: Bounds,
    default_quota: Option<Option<u32>>,
    shared: Option<bool>,
    is_default: Option<bool>,
    address_scope_id: Option<Option<String>>,
}

fn prefix_len(attrs: &mut Attrs, key: &str) -> ApiResult<Option<u8>> {
    match attrs.u32(key)? {
        None => Ok(None),
        Some(n) => u8::try_from(n)
            .map(Some)
            .map_err(|_| bad_attr(key, format!("'{n}' is not a valid prefix length"))),
    }
}

/// A pool's prefixes: CIDRs (host bits allowed, as `netaddr` reads them), one IP version.
fn parse_prefixes(key: &str, items: Vec<Value>) -> ApiResult<Vec<IpNet>> {
    let nets = items
        .iter()
        .map(|v| {
            v.as_str()
                .filter(|s| s.contains('/'))
                .and_then(|s| s.parse::<IpNet>().ok())
                .ok_or_else(|| {
                    bad_attr(
                        key,
                        format!("'{}' is not a valid IP subnet", crate::body::show(v)),
                    )
                })
        })
        .collect::<ApiResult<Vec<IpNet>>>()?;
    let Some(first) = nets.first() else {
        return Err(ApiError::bad_request(
            "EmptySubnetPoolPrefixList",
            "Empty subnet pool prefix list.",
        ));
    };
    if nets
        .iter()
        .any(|n| n.addr().is_ipv4() != first.addr().is_ipv4())
    {
        return Err(prefix_version_mismatch());
    }
    Ok(compact(&nets))
}

fn prefix_version_mismatch() -> ApiError {
    ApiError::bad_request(
        "PrefixVersionMismatch",
        "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
    )
}

fn version_of(prefixes: &[IpNet]) -> u8 {
    if prefixes.first().is_some_and(|p| p.addr().is_ipv6()) {
        6
    } else {
        4
    }
}

fn illegal_bounds(kind: &str, len: u8, base: &str, base_len: u8) -> ApiError {
    ApiError::bad_request(
        "IllegalSubnetPoolPrefixBounds",
        format!("Illegal prefix bounds: {kind}={len}, {base}={base_len}."),
    )
}

/// Neutron's `SubnetPoolHelper` checks of the bounds of a pool of `ip_version`.
fn check_bounds(ip_version: u8, min: u8, max: u8, default: u8) -> ApiResult<()> {
    let bits = if ip_version == 6 { 128 } else { 32 };
    if min > max {
        return Err(illegal_bounds("min_prefixlen", min, "max_prefixlen", max));
    }
    if max > bits {
        return Err(illegal_bounds("max_prefixlen", max, "ip_version_max", bits));
    }
    if default < min {
        return Err(illegal_bounds(
            "default_prefixlen",
            default,
            "min_prefixlen",
            min,
        ));
    }
    if default > max {
        return Err(illegal_bounds(
            "default_prefixlen",
            default,
            "max_prefixlen",
            max,
        ));
    }
    Ok(())
}

fn parse_request(attrs: &mut Attrs) -> ApiResult<PoolRequest> {
    let prefixes = attrs
        .list("prefixes")?
        .map(|items| parse_prefixes("prefixes", items))
        .transpose()?;
    let bounds = Bounds {
        min: prefix_len(attrs, "min_prefixlen")?,
        max: prefix_len(attrs, "max_prefixlen")?,
        default: prefix_len(attrs, "default_prefixlen")?,
    };
    let address_scope_id = match attrs.take("address_scope_id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if model::is_uuid(&s) => Some(Some(s)),
        Some(v) => {
            return Err(bad_attr(
                "address_scope_id",
                format!("'{}' is not a valid UUID", crate::body::show(&v)),
            ));
        }
    };
    Ok(PoolRequest {
        prefixes,
        bounds,
        default_quota: attrs.u32_or_null("default_quota")?,
        shared: attrs.bool("shared")?,
        is_default: attrs.bool("is_default")?,
        address_scope_id,
    })
}

/// Checks that `pool` may be in its address scope, as `ctx`: a scope `ctx` sees (404
/// otherwise) and owns (admins aside), of the pool's IP version, with no other pool in it
/// overlapping the pool's prefixes. The scope is written unchanged into `plan`: its
/// compare-and-swap orders the pools joining it, so two cannot overlap by racing.
async fn check_scope(
    api: &Api,
    ctx: &Context,
    pool: &SubnetPool,
    plan: &mut Plan<'_>,
) -> ApiResult<()> {
    let Some(scope_id) = &pool.address_scope_id else {
        return Ok(());
    };
    let id = &pool.meta.id;
    let (scope, rev) = super::visible::<AddressScope>(api, ctx, scope_id).await?;
    not_deleting(&scope)?;
    if !ctx.is_admin && scope.meta.project_id != ctx.project_id {
        return Err(ApiError::bad_request(
            "IllegalSubnetPoolAssociationToAddressScope",
            format!(
                "Illegal subnetpool association: subnetpool {id} cannot be associated with address scope {scope_id}."
            ),
        ));
    }
    if scope.ip_version != pool.ip_version {
        return Err(ApiError::bad_request(
            "IllegalSubnetPoolIpVersionAssociationToAddressScope",
            format!(
                "Illegal subnetpool association: subnetpool {id} cannot associate with address scope {scope_id} because subnetpool ip_version is not {}.",
                scope.ip_version
            ),
        ));
    }
    for (other, _) in api.db.all::<SubnetPool>().await? {
        if other.meta.id != *id
            && other.address_scope_id.as_ref() == Some(scope_id)
            && overlaps(&other.prefixes, &pool.prefixes)
        {
            return Err(ApiError::conflict(
                "AddressScopePrefixConflict",
                "Failed to associate address scope: subnetpools within an address scope must have unique prefixes.",
            ));
        }
    }
    plan.txn.update(&scope, rev);
    Ok(())
}

/// A pool in a scope of another project is that project's to change (Neutron's
/// `_check_subnetpool_update_allowed`).
async fn check_update_allowed(api: &Api, ctx: &Context, pool: &SubnetPool) -> ApiResult<()> {
    let Some(scope_id) = &pool.address_scope_id else {
        return Ok(());
    };
    if ctx.is_admin {
        return Ok(());
    }
    if let Some((scope, _)) = api.db.get::<AddressScope>(scope_id).await?
        && scope.meta.project_id != ctx.project_id
    {
        return Err(ApiError::bad_request(
            "IllegalSubnetPoolUpdate",
            format!(
                "Illegal subnetpool update : subnetpool {} cannot be updated when associated with shared address scope {scope_id}.",
                pool.meta.id
            ),
        ));
    }
    Ok(())
}

/// Makes `pool` the default of its IP version (`on`) or not, in `plan`.
fn set_default(pool: &mut SubnetPool, on: bool, plan: &mut Plan<'_>) {
    let claim = default_pool_claim(pool.ip_version);
    if on && !pool.is_default {
        plan.txn.claim_requested(
            &claim,
            &pool.meta.id,
            ApiError::invalid(
                "A default subnetpool for this IP family has already been set. Only one default may exist per IP family",
            ),
        );
    } else if !on && pool.is_default {
        plan.txn.release(&claim);
    }
    pool.is_default = on;
}

impl Lifecycle for SubnetPool {
    type Create = PoolRequest;
    type Update = PoolRequest;
    const PUT_READ_ONLY: &'static [&'static str] = &["shared", "ip_version"];
    const POST_FORBIDDEN: &'static [&'static str] = &["ip_version"];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<PoolRequest> {
        let req = parse_request(attrs)?;
        let Some(prefixes) = &req.prefixes else {
            return Err(bad_attr("prefixes", "prefixes is required"));
        };
        let v = version_of(prefixes);
        let (min, max, default) = create_bounds(v, &req.bounds);
        check_bounds(v, min, max, default)?;
        Ok(req)
    }

    async fn plan_create(
        api: &Api,
        ctx: &Context,
        meta: Meta,
        req: &PoolRequest,
        plan: &mut Plan<'_>,
    ) -> ApiResult<SubnetPool> {
        let prefixes = req.prefixes.clone().unwrap_or_default();
        let ip_version = version_of(&prefixes);
        let (min, max, default) = create_bounds(ip_version, &req.bounds);
        let mut pool = SubnetPool {
            meta,
            ip_version,
            prefixes,
            default_prefixlen: default,
            min_prefixlen: min,
            max_prefixlen: max,
            default_quota: req.default_quota.flatten(),
            shared: req.shared.unwrap_or(false),
            is_default: false,
            address_scope_id: req.address_scope_id.clone().flatten(),
            deleting: false,
        };
        check_scope(api, ctx, &pool, plan).await?;
        set_default(&mut pool, req.is_default.unwrap_or(false), plan);
        Ok(pool)
    }

    fn parse_update(
        _ctx: &Context,
        _pool: &SubnetPool,
        attrs: &mut Attrs,
    ) -> ApiResult<PoolRequest> {
        parse_request(attrs)
    }

    async fn plan_update(
        api: &Api,
        ctx: &Context,
        pool: &mut SubnetPool,
        req: PoolRequest,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        check_update_allowed(api, ctx, pool).await?;
        if let Some(new) = req.prefixes {
            set_prefixes(pool, new)?;
        }
        let min = req.bounds.min.unwrap_or(pool.min_prefixlen);
        let max = req.bounds.max.unwrap_or(pool.max_prefixlen);
        let default = req.bounds.default.unwrap_or(pool.default_prefixlen);
        check_bounds(pool.ip_version, min, max, default)?;
        (
            pool.min_prefixlen,
            pool.max_prefixlen,
            pool.default_prefixlen,
        ) = (min, max, default);
        if let Some(q) = req.default_quota {
            pool.default_quota = q;
        }
        if let Some(s) = req.address_scope_id {
            pool.address_scope_id = s;
        }
        check_scope(api, ctx, pool, plan).await?;
        if let Some(on) = req.is_default {
            set_default(pool, on, plan);
        }
        Ok(())
    }

    fn deleting_mark(&mut self) -> Option<&mut bool> {
        Some(&mut self.deleting)
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        pool: &SubnetPool,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if !allocations(api, &pool.meta.id).await?.is_empty() {
            return Err(ApiError::bad_request(
                "SubnetPoolDeleteError",
                "Unable to delete subnet pool: Subnet pool has existing allocations.",
            ));
        }
        if pool.is_default {
            plan.txn.release(&default_pool_claim(pool.ip_version));
        }
        Ok(())
    }

    fn summary(&self) -> String {
        let p: Vec<String> = self.prefixes.iter().map(ToString::to_string).collect();
        format!("({})", p.join(", "))
    }
}

/// A new pool's bounds: Neutron's defaults (min /8 or /64, max the address length,
/// default the min) for what the request leaves out.
fn create_bounds(ip_version: u8, b: &Bounds) -> (u8, u8, u8) {
    let (min_default, bits) = if ip_version == 6 { (64, 128) } else { (8, 32) };
    let min = b.min.unwrap_or(min_default);
    (min, b.max.unwrap_or(bits), b.default.unwrap_or(min))
}

fn illegal_prefix_update(msg: &str) -> ApiError {
    ApiError::bad_request(
        "IllegalSubnetPoolPrefixUpdate",
        format!("Illegal update to prefixes: {msg}."),
    )
}

/// Replaces a pool's prefixes with `new` (compacted): they may grow, never shrink.
fn set_prefixes(pool: &mut SubnetPool, new: Vec<IpNet>) -> ApiResult<()> {
    if version_of(&new) != pool.ip_version {
        return Err(prefix_version_mismatch());
    }
    if !covers(&new, &pool.prefixes) {
        return Err(illegal_prefix_update(
            "Existing prefixes must be a subset of the new prefixes",
        ));
    }
    pool.prefixes = new;
    Ok(())
}

/// The `prefixes` of an `add_prefixes`/`remove_prefixes` body: a non-empty list of CIDRs
/// of the pool's IP version.
fn operation_prefixes(body: &Value, pool: &SubnetPool) -> ApiResult<Vec<IpNet>> {
    let invalid = || ApiError::bad_request("HTTPBadRequest", "Request body contains invalid data");
    let items = body
        .get("prefixes")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(invalid)?;
    let nets = parse_prefixes("prefixes", items.clone()).map_err(|_| invalid())?;
    if version_of(&nets) != pool.ip_version {
        return Err(prefix_version_mismatch());
    }
    Ok(nets)
}

async fn prefix_op(
    api: &Api,
    ctx: &Context,
    id: &str,
    body: &Value,
    add: bool,
) -> ApiResult<SubnetPool> {
    let action = if add {
        "add_prefixes"
    } else {
        "remove_prefixes"
    };
    retrying(|| async {
        let (mut pool, rev) = writable::<SubnetPool>(api, ctx, id, action, &[]).await?;
        let nets = operation_prefixes(body, &pool)?;
        check_update_allowed(api, ctx, &pool).await?;
        let mut plan = Plan::new(api);
        if add {
            let mut all = pool.prefixes.clone();
            all.extend(nets);
            pool.prefixes = compact(&all);
            check_scope(api, ctx, &pool, &mut plan).await?;
        } else {
            let in_use: Vec<IpNet> = (allocations(api, id).await?)
                .into_iter()
                .map(|(c, _)| c)
                .collect();
            if overlaps(&in_use, &nets) {
                return Err(illegal_prefix_update(
                    "Cannot remove prefixes in use by subnets of the pool",
                ));
            }
            pool.prefixes = subtract(&pool.prefixes, &nets);
            if pool.prefixes.is_empty() {
                return Err(ApiError::bad_request(
                    "EmptySubnetPoolPrefixList",
                    "Empty subnet pool prefix list.",
                ));
            }
        }
        touch(pool.meta_mut());
        // Its compare-and-swap orders this against allocations from the pool: none can
        // take a prefix being removed.
        plan.txn.update(&pool, rev);
        plan.commit(api).await?;
        Ok(pool)
    })
    .await
}

fn prefixes_answer(pool: &SubnetPool) -> Json<Value> {
    let p: Vec<String> = pool.prefixes.iter().map(ToString::to_string).collect();
    Json(json!({ "prefixes": p }))
}

/// `PUT /v2.0/subnetpools/{id}/add_prefixes`.
pub async fn add_prefixes(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let pool = prefix_op(&api, &ctx, &id, &body, true).await?;
    tracing::info!(%id, "subnetpool prefixes added {}", pool.summary());
    Ok(prefixes_answer(&pool))
}

/// `PUT /v2.0/subnetpools/{id}/remove_prefixes`.
pub async fn remove_prefixes(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let pool = prefix_op(&api, &ctx, &id, &body, false).await?;
    tracing::info!(%id, "subnetpool prefixes removed {}", pool.summary());
    Ok(prefixes_answer(&pool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_neutrons_checks() {
        assert!(check_bounds(4, 8, 32, 8).is_ok());
        assert_eq!(
            check_bounds(4, 30, 28, 29).unwrap_err().kind,
            "IllegalSubnetPoolPrefixBounds"
        );
        assert!(check_bounds(4, 8, 33, 8).is_err());
        assert!(check_bounds(6, 64, 128, 48).is_err());
        assert!(check_bounds(6, 48, 64, 70).is_err());
        assert_eq!(create_bounds(6, &Bounds::default()), (64, 128, 64));
    }

    #[test]
    fn prefixes_are_compacted_and_of_one_version() {
        let p =
            parse_prefixes("prefixes", vec![json!("10.0.0.5/24"), json!("10.0.1.0/24")]).unwrap();
        assert_eq!(p, vec!["10.0.0.0/23".parse::<IpNet>().unwrap()]);
        let e =
            parse_prefixes("prefixes", vec![json!("10.0.0.0/24"), json!("fd00::/64")]).unwrap_err();
        assert_eq!(e.kind, "PrefixVersionMismatch");
        assert_eq!(
            parse_prefixes("prefixes", vec![]).unwrap_err().kind,
            "EmptySubnetPoolPrefixList"
        );
        assert!(parse_prefixes("prefixes", vec![json!("10.0.0.1")]).is_err());
    }
}
