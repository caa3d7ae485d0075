//! Subnet pool arithmetic and allocation: prefix sets (compacted, subtracted, compared)
//! as Neutron's `netaddr.IPSet` does them, the choice of a subnet's CIDR from a pool
//! (Neutron's best fit), the per-project prefix quota, and the claims and pool write that
//! make two concurrent allocations never overlap (docs/architecture.md).

use super::Plan;
use crate::Api;
use crate::alloc::{ip_to_u128, u128_to_ip};
use crate::body::{Attrs, bad_attr};
use crate::context::Context;
use crate::db::Txn;
use crate::error::{ApiError, ApiResult};
use crate::resources::Resource;
use crate::resources::ops::deleting::not_deleting;
use ipnet::IpNet;
use model::pools::{allocation_claim, default_pool_claim};
use model::{NbObject, Network, Subnet, SubnetPool, Table};
use serde_json::Value;
use std::collections::HashMap;

/// An inclusive range of addresses as integers.
type Span = (u128, u128);

fn span(n: &IpNet) -> Span {
    let n = n.trunc();
    (ip_to_u128(n.network()), ip_to_u128(n.broadcast()))
}

/// Sorted, with overlapping and adjacent ranges joined.
fn merged(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_unstable();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for (a, b) in spans {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The fewest CIDRs that cover `spans` exactly, in address order.
fn cidrs(spans: &[Span], v6: bool) -> Vec<IpNet> {
    let bits: u32 = if v6 { 128 } else { 32 };
    let mut out = Vec::new();
    for &(mut start, end) in spans {
        loop {
            let width = end - start;
            // The largest block that starts at `start` and ends by `end`: log2(width + 1).
            let fits = if width == u128::MAX {
                128
            } else {
                127 - (width + 1).leading_zeros()
            };
            let host = fits.min(start.trailing_zeros()).min(bits);
            let len = u8::try_from(bits - host).unwrap_or(0);
            if let Ok(net) = IpNet::new(u128_to_ip(start, v6), len) {
                out.push(net);
            }
            match start.checked_add(1u128.checked_shl(host).unwrap_or(0)) {
                Some(next) if host < 128 && next <= end && next != 0 => start = next,
                _ => break,
            }
        }
    }
    out
}

fn is_v6(nets: &[IpNet]) -> bool {
    matches!(nets.first(), Some(IpNet::V6(_)))
}

/// `nets` as Neutron stores a pool's prefixes: host bits cleared, sorted, merged.
pub fn compact(nets: &[IpNet]) -> Vec<IpNet> {
    cidrs(&merged(nets.iter().map(span).collect()), is_v6(nets))
}

/// The addresses of `a` that are not in `b`, as CIDRs in address order.
pub fn subtract(a: &[IpNet], b: &[IpNet]) -> Vec<IpNet> {
    let holes = merged(b.iter().map(span).collect());
    let mut left = Vec::new();
    for (mut start, end) in merged(a.iter().map(span).collect()) {
        let mut whole = true;
        for &(h0, h1) in &holes {
            if h1 < start || h0 > end {
                continue;
            }
            if h0 > start {
                left.push((start, h0 - 1));
            }
            match h1.checked_add(1) {
                Some(n) if n <= end => start = n,
                _ => {
                    whole = false;
                    break;
                }
            }
        }
        if whole {
            left.push((start, end));
        }
    }
    cidrs(&left, is_v6(a))
}

/// Whether any address is in both `a` and `b`.
pub fn overlaps(a: &[IpNet], b: &[IpNet]) -> bool {
    a.iter().any(|x| {
        let (a0, a1) = span(x);
        b.iter().any(|y| {
            let (b0, b1) = span(y);
            a0 <= b1 && b0 <= a1
        })
    })
}

/// Whether every address of `inner` is in `outer`.
pub fn covers(outer: &[IpNet], inner: &[IpNet]) -> bool {
    subtract(inner, outer).is_empty()
}

/// The CIDR of length `len` Neutron allocates from `prefixes` with `used` taken: the
/// first block of the smallest free prefix that holds one.
pub fn best_fit(prefixes: &[IpNet], used: &[IpNet], len: u8) -> Option<IpNet> {
    let mut free = subtract(prefixes, used);
    // Stable: among free prefixes of one length, the lowest address first.
    free.sort_by_key(|n| std::cmp::Reverse(n.prefix_len()));
    let block = free.into_iter().find(|n| n.prefix_len() <= len)?;
    IpNet::new(block.network(), len).ok()
}

/// How much of a pool's quota a CIDR of length `len` takes, in addresses (saturating);
/// `quota_in_addresses` turns a quota into the same unit.
pub fn addresses(ip_version: u8, len: u8) -> u128 {
    let bits: u32 = if ip_version == 6 { 128 } else { 32 };
    1u128
        .checked_shl(bits.saturating_sub(u32::from(len)))
        .unwrap_or(u128::MAX)
}

/// A pool's `default_quota` in addresses: IPv4 counts addresses, IPv6 counts /64s.
pub fn quota_in_addresses(ip_version: u8, quota: u32) -> u128 {
    let unit = if ip_version == 6 { 1u128 << 64 } else { 1 };
    u128::from(quota).saturating_mul(unit)
}

/// What a subnet create asks of pools: a pool by id or the default one, and a length.
#[derive(Debug, Default)]
pub struct PoolRequest {
    pub subnetpool_id: Option<String>,
    pub use_default: bool,
    pub prefixlen: Option<u8>,
}

impl PoolRequest {
    fn wanted(&self) -> bool {
        self.subnetpool_id.is_some() || self.use_default
    }
}

/// Neutron's `BadRequest` on subnets.
pub fn bad_subnet_request(msg: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("BadRequest", format!("Bad subnets request: {msg}."))
}

/// Reads `subnetpool_id`, `use_default_subnetpool` and `prefixlen` of a subnet POST.
pub fn parse_request(attrs: &mut Attrs, has_cidr: bool) -> ApiResult<PoolRequest> {
    let subnetpool_id = match attrs.take("subnetpool_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if model::is_uuid(&s) => Some(s),
        Some(v) => {
            return Err(bad_attr(
                "subnetpool_id",
                format!("'{}' is not a valid UUID", crate::body::show(&v)),
            ));
        }
    };
    let use_default = attrs.bool("use_default_subnetpool")?.unwrap_or(false);
    let prefixlen = match attrs.u32_or_null("prefixlen")?.flatten() {
        Some(n) if n <= 128 => Some(n as u8),
        Some(n) => {
            return Err(bad_attr(
                "prefixlen",
                format!("'{n}' is not a valid prefix length"),
            ));
        }
        None => None,
    };
    if subnetpool_id.is_some() && use_default {
        return Err(bad_subnet_request(
            "subnetpool_id and use_default_subnetpool cannot both be specified",
        ));
    }
    let req = PoolRequest {
        subnetpool_id,
        use_default,
        prefixlen,
    };
    if !has_cidr && !req.wanted() {
        return Err(bad_subnet_request(
            "a subnetpool must be specified in the absence of a cidr",
        ));
    }
    Ok(req)
}

/// The CIDRs allocated from pool `id` with the subnets holding them (its claims).
pub async fn allocations(api: &Api, id: &str) -> ApiResult<Vec<(IpNet, String)>> {
    let prefix = format!("pool/{id}/");
    let claims = api.db.store.list(Table::Claim.name(), &prefix).await?;
    Ok(claims
        .into_iter()
        .filter_map(|c| {
            let cidr = c.id.strip_prefix(&prefix)?.parse().ok()?;
            Some((cidr, serde_json::from_slice(&c.value).unwrap_or_default()))
        })
        .collect())
}

/// The pool `id` as `ctx` may use it (404 when it may not see it), not being deleted.
async fn usable_pool(
    api: &Api,
    ctx: &Context,
    id: &str,
) -> ApiResult<(SubnetPool, nbdb::Revision)> {
    let (pool, rev) = api.db.fetch::<SubnetPool>(id).await?;
    if SubnetPool::readable(api, ctx, vec![pool.clone()])
        .await?
        .is_empty()
    {
        return Err(ApiError::not_found(SubnetPool::KIND, id));
    }
    not_deleting(&pool)?;
    Ok((pool, rev))
}

/// Subnets of one IP version on a network all come from the same pool (or none), as in
/// Neutron. `others` are the network's other subnets.
pub fn check_affinity(others: &[Subnet], ip_version: u8, pool: Option<&str>) -> ApiResult<()> {
    if others
        .iter()
        .any(|s| s.ip_version == ip_version && s.subnetpool_id.as_deref() != pool)
    {
        return Err(ApiError::bad_request(
            "NetworkSubnetPoolAffinityError",
            "Subnets hosted on the same network must be allocated from the same subnet pool.",
        ));
    }
    Ok(())
}

/// The pool a subnet create uses, if any: the one named, or the default of `ip_version`.
pub async fn requested_pool(
    api: &Api,
    ctx: &Context,
    req: &PoolRequest,
    ip_version: u8,
) -> ApiResult<Option<(SubnetPool, nbdb::Revision)>> {
    let id = match (&req.subnetpool_id, req.use_default) {
        (Some(id), _) => id.clone(),
        (None, true) => api
            .db
            .claim_owner(&default_pool_claim(ip_version))
            .await?
            .ok_or_else(|| {
                bad_subnet_request(format!("No default subnetpool found for IPv{ip_version}"))
            })?,
        (None, false) => return Ok(None),
    };
    let (pool, rev) = usable_pool(api, ctx, &id).await?;
    if pool.ip_version != ip_version {
        return Err(bad_subnet_request(format!(
            "Cannot allocate IPv{ip_version} subnet from IPv{} subnet pool",
            pool.ip_version
        )));
    }
    Ok(Some((pool, rev)))
}

fn allocation_error(status_conflict: bool, msg: &str) -> ApiError {
    let message = format!("Failed to allocate subnet: {msg}.");
    if status_conflict {
        ApiError::conflict("SubnetAllocationError", message)
    } else {
        ApiError::bad_request("SubnetAllocationError", message)
    }
}

/// Picks the subnet's CIDR from `pool` (`cidr` when the request named one) for project
/// `project`, and puts its claim and the pool's compare-and-swap into `plan`: an
/// allocation that raced another one on the same pool fails its commit and is retried
/// against the new allocations.
pub async fn allocate(
    api: &Api,
    plan: &mut Plan<'_>,
    (pool, rev): (&SubnetPool, nbdb::Revision),
    cidr: Option<IpNet>,
    prefixlen: Option<u8>,
    project: &str,
    subnet_id: &str,
) -> ApiResult<IpNet> {
    let len = cidr.map_or(prefixlen.unwrap_or(pool.default_prefixlen), |c| {
        c.prefix_len()
    });
    if len > pool.max_prefixlen {
        return Err(ApiError::bad_request(
            "MaxPrefixSubnetAllocationError",
            format!(
                "Unable to allocate subnet with prefix length {len}, maximum allowed prefix is {}.",
                pool.max_prefixlen
            ),
        ));
    }
    if len < pool.min_prefixlen {
        return Err(ApiError::bad_request(
            "MinPrefixSubnetAllocationError",
            format!(
                "Unable to allocate subnet with prefix length {len}, minimum allowed prefix is {}.",
                pool.min_prefixlen
            ),
        ));
    }
    let taken = allocations(api, &pool.meta.id).await?;
    if let Some(quota) = pool.default_quota {
        check_quota(api, pool, quota, &taken, project, len).await?;
    }
    let used: Vec<IpNet> = taken.iter().map(|(c, _)| *c).collect();
    let chosen = match cidr {
        Some(c) if !covers(&pool.prefixes, &[c]) => {
            return Err(allocation_error(
                false,
                "Cannot allocate requested subnet from the available set of prefixes",
            ));
        }
        Some(c) if overlaps(&used, &[c]) => {
            return Err(allocation_error(
                true,
                "Cannot allocate requested subnet from the available set of prefixes",
            ));
        }
        Some(c) => c,
        None => best_fit(&pool.prefixes, &used, len).ok_or_else(|| {
            allocation_error(
                true,
                &format!("Insufficient prefix space to allocate subnet size /{len}"),
            )
        })?,
    };
    // Unchanged, but written: its revision orders this allocation against every other
    // one from the pool (and against the pool's updates and delete).
    plan.txn.update(pool, rev);
    plan.txn
        .claim(&allocation_claim(&pool.meta.id, &chosen), subnet_id);
    Ok(chosen)
}

/// Neutron's per-project prefix quota of a pool: the project's subnets from it, plus the
/// new one of length `len`, within `quota` (IPv4 addresses or IPv6 /64s).
async fn check_quota(
    api: &Api,
    pool: &SubnetPool,
    quota: u32,
    taken: &[(IpNet, String)],
    project: &str,
    len: u8,
) -> ApiResult<()> {
    let v = pool.ip_version;
    let mut used = addresses(v, len);
    for (cidr, subnet) in taken {
        if let Some((s, _)) = api.db.get::<Subnet>(subnet).await?
            && s.meta.project_id == project
        {
            used = used.saturating_add(addresses(v, cidr.prefix_len()));
        }
    }
    if used > quota_in_addresses(v, quota) {
        return Err(ApiError::conflict(
            "SubnetPoolQuotaExceeded",
            "Per-tenant subnet pool prefix quota exceeded.",
        ));
    }
    Ok(())
}

/// Gives a deleted subnet's CIDR back to its pool (in the subnet's delete, or its
/// network's).
pub fn release(txn: &mut Txn, subnet: &Subnet) {
    if let Some(pool) = &subnet.subnetpool_id {
        txn.release(&allocation_claim(pool, &subnet.cidr));
    }
}

/// Each network's `ipv4_address_scope` and `ipv6_address_scope`: the scope of the pool
/// its subnets of that version come from (Neutron's address-scope extension).
pub async fn network_scopes(api: &Api, nets: &[Network]) -> ApiResult<Vec<[Option<String>; 2]>> {
    let scoped: HashMap<String, String> = (api.db.all::<SubnetPool>().await?)
        .into_iter()
        .filter_map(|(p, _)| Some((p.meta.id, p.address_scope_id?)))
        .collect();
    if scoped.is_empty() {
        return Ok(vec![[None, None]; nets.len()]);
    }
    let subnets: HashMap<String, Subnet> = (api.db.all::<Subnet>().await?)
        .into_iter()
        .map(|(s, _)| (s.meta.id.clone(), s))
        .collect();
    Ok(nets
        .iter()
        .map(|n| {
            let scope_of = |v: u8| {
                n.subnets
                    .iter()
                    .filter_map(|id| subnets.get(id))
                    .filter(|s| s.ip_version == v)
                    .find_map(|s| scoped.get(s.subnetpool_id.as_deref()?).cloned())
            };
            [scope_of(4), scope_of(6)]
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn strs(n: &[IpNet]) -> Vec<String> {
        n.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn compaction_merges_neighbours_and_drops_contained_prefixes() {
        let c = compact(&nets(&[
            "10.0.1.0/24",
            "10.0.0.0/24",
            "10.0.0.128/25",
            "10.2.0.0/16",
        ]));
        assert_eq!(strs(&c), ["10.0.0.0/23", "10.2.0.0/16"]);
        let c = compact(&nets(&["10.11.12.13/24"]));
        assert_eq!(strs(&c), ["10.11.12.0/24"]);
        let c = compact(&nets(&["::/0"]));
        assert_eq!(strs(&c), ["::/0"]);
        let c = compact(&nets(&["0.0.0.0/1", "128.0.0.0/1"]));
        assert_eq!(strs(&c), ["0.0.0.0/0"]);
    }

    #[test]
    fn subtraction_leaves_the_rest_as_cidrs() {
        let d = subtract(&nets(&["10.0.0.0/24"]), &nets(&["10.0.0.0/26"]));
        assert_eq!(strs(&d), ["10.0.0.64/26", "10.0.0.128/25"]);
        assert!(subtract(&nets(&["10.0.0.0/24"]), &nets(&["10.0.0.0/16"])).is_empty());
        let d = subtract(&nets(&["::/0"]), &nets(&["8000::/1"]));
        assert_eq!(strs(&d), ["::/1"]);
    }

    #[test]
    fn best_fit_takes_the_smallest_free_block_first() {
        let pool = nets(&["10.0.0.0/16", "192.168.0.0/24"]);
        let got = best_fit(&pool, &[], 28).unwrap();
        assert_eq!(got.to_string(), "192.168.0.0/28");
        let got = best_fit(&pool, &nets(&["192.168.0.0/28"]), 28).unwrap();
        assert_eq!(got.to_string(), "192.168.0.16/28");
        assert_eq!(best_fit(&pool, &[], 8), None);
        let got = best_fit(&pool, &nets(&["192.168.0.0/24"]), 24).unwrap();
        assert_eq!(got.to_string(), "10.0.0.0/24");
    }

    #[test]
    fn quota_counts_ipv4_addresses_and_ipv6_slash_64s() {
        assert_eq!(addresses(4, 30), 4);
        assert_eq!(quota_in_addresses(4, 4), 4);
        assert_eq!(addresses(6, 64), quota_in_addresses(6, 1));
        assert_eq!(addresses(6, 0), u128::MAX);
    }

    #[test]
    fn a_subnet_of_another_pool_on_the_network_is_refused() {
        let mut s: Subnet = serde_json::from_value(serde_json::json!({
            "id": "s", "project_id": "p", "created_at": "t", "updated_at": "t",
            "network_id": "n", "ip_version": 4, "cidr": "10.0.0.0/24", "gateway_ip": null,
            "allocation_pools": [], "enable_dhcp": false, "dns_nameservers": [],
            "host_routes": [], "ipv6_ra_mode": null, "ipv6_address_mode": null,
        }))
        .unwrap();
        assert!(check_affinity(std::slice::from_ref(&s), 4, Some("p")).is_err());
        assert!(check_affinity(std::slice::from_ref(&s), 6, Some("p")).is_ok());
        s.subnetpool_id = Some("p".into());
        assert!(check_affinity(std::slice::from_ref(&s), 4, Some("p")).is_ok());
        assert!(check_affinity(std::slice::from_ref(&s), 4, None).is_err());
    }

    fn v4net() -> impl Strategy<Value = IpNet> {
        (any::<u32>(), 8u8..=32).prop_map(|(a, l)| {
            IpNet::new(std::net::Ipv4Addr::from(a).into(), l)
                .unwrap()
                .trunc()
        })
    }

    proptest! {
        /// Allocating again and again from a pool hands out disjoint CIDRs inside it
        /// until it is full, and the compacted prefixes cover exactly the same addresses.
        #[test]
        fn allocations_are_disjoint_and_inside_the_pool(
            prefixes in prop::collection::vec(v4net(), 1..4),
            lens in prop::collection::vec(20u8..=32, 1..24),
        ) {
            let pool = compact(&prefixes);
            prop_assert!(covers(&pool, &prefixes) && covers(&prefixes, &pool));
            prop_assert!(pool.windows(2).all(|w| !overlaps(&w[..1], &w[1..])));
            let mut used: Vec<IpNet> = Vec::new();
            for len in lens {
                if let Some(c) = best_fit(&pool, &used, len) {
                    prop_assert_eq!(c.prefix_len(), len);
                    prop_assert!(covers(&pool, &[c]), "{} outside {:?}", c, pool);
                    prop_assert!(!overlaps(&used, &[c]), "{} overlaps {:?}", c, used);
                    used.push(c);
                } else {
                    // Full for this length: no free block of it is left.
                    let free = subtract(&pool, &used);
                    prop_assert!(free.iter().all(|f| f.prefix_len() > len));
                }
            }
        }
    }
}
