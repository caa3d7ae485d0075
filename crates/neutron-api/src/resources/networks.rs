//! `/v2.0/networks`: networks with MTU, sharing, `router:external`, port security and the
//! provider attributes; segmentation ids are claimed from the configured ranges.

use super::Resource;
use super::lifecycle::Lifecycle;
use super::ops::{
    Plan, check_mtu_fits, floating, ipam, pick_key, ports::remove_port, qos as ops_qos,
    rbac as ops_rbac, release_key,
};
use crate::Api;
use crate::availability_zones;
use crate::body::{Attrs, bad_attr};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::policy::rbac::{EXTERNAL, Grants, NETWORK, SHARED};
use axum::http::StatusCode;
use model::{Meta, Network, NetworkType, Port, Subnet, owner};
use serde_json::{Map, Value, json};

/// Largest datapath key of a network (the metadata register keeps it small).
pub const MAX_KEY: u128 = 0x00ff_ffff;

impl Resource for Network {
    const COLLECTION: &'static str = "networks";
    const RESOURCE: &'static str = "network";
    const OWN_ATTRS: &'static [&'static str] = &[
        "admin_state_up",
        "status",
        "mtu",
        "shared",
        "router:external",
        "port_security_enabled",
        "provider:network_type",
        "provider:physical_network",
        "provider:segmentation_id",
        "subnets",
        "availability_zone_hints",
        "availability_zones",
        "is_default",
        "ipv4_address_scope",
        "ipv6_address_scope",
        "dns_domain",
        "qos_policy_id",
    ];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert("admin_state_up".into(), json!(self.admin_state_up));
        m.insert("status".into(), json!("ACTIVE"));
        m.insert("mtu".into(), json!(self.mtu));
        m.insert("shared".into(), json!(self.shared));
        m.insert("router:external".into(), json!(self.external));
        m.insert(
            "port_security_enabled".into(),
            json!(self.port_security_enabled),
        );
        m.insert(
            "provider:network_type".into(),
            json!(self.network_type.as_str()),
        );
        m.insert(
            "provider:physical_network".into(),
            json!(self.physical_network),
        );
        m.insert(
            "provider:segmentation_id".into(),
            json!(self.segmentation_id),
        );
        m.insert("subnets".into(), json!(self.subnets));
        m.insert(
            "availability_zone_hints".into(),
            json!(self.availability_zone_hints),
        );
        // Filled in by `render_all`, which reads the zones once for a whole listing.
        m.insert("availability_zones".into(), json!([]));
        m.insert("is_default".into(), json!(self.is_default));
        m.insert("dns_domain".into(), json!(self.dns_domain));
        m.insert("qos_policy_id".into(), json!(self.qos_policy_id));
        // Its subnets' pools' scopes, filled in by `render_all`.
        m.insert("ipv4_address_scope".into(), Value::Null);
        m.insert("ipv6_address_scope".into(), Value::Null);
    }

    async fn render_all(api: &Api, objs: &[Network]) -> ApiResult<Vec<Map<String, Value>>> {
        let scopes = super::ops::pools::network_scopes(api, objs).await?;
        let serving = availability_zones::serving(api).await?;
        Ok(objs
            .iter()
            .zip(scopes)
            .map(|(n, [v4, v6])| {
                let mut m = super::render(n);
                m.insert("ipv4_address_scope".into(), json!(v4));
                m.insert("ipv6_address_scope".into(), json!(v6));
                m.insert("availability_zones".into(), json!(serving));
                m
            })
            .collect())
    }

    /// Shared with the caller: `shared`, or an RBAC policy (shared or external).
    async fn targets(api: &Api, ctx: &Context, objs: &[Network]) -> ApiResult<Vec<Target>> {
        let needed = objs.iter().any(|n| n.meta.project_id != ctx.project_id);
        let grants = Grants::load(api, ctx, needed).await?;
        Ok(objs.iter().map(|n| network_target(&grants, n)).collect())
    }

    /// A network shared with the caller's project by a policy says `shared: true` to it,
    /// as in Neutron.
    async fn readable(api: &Api, ctx: &Context, objs: Vec<Network>) -> ApiResult<Vec<Network>> {
        let needed = objs.iter().any(|n| n.meta.project_id != ctx.project_id);
        let grants = Grants::load(api, ctx, needed).await?;
        Ok(objs
            .into_iter()
            .filter(|n| crate::policy::allowed(ctx, "network", "get", &network_target(&grants, n)))
            .map(|mut n| {
                n.shared = grants.shared_network(&n);
                n
            })
            .collect())
    }
}

/// The claim that keeps a single default external network.
const DEFAULT_EXTERNAL: &str = "default-external-network";

/// Makes `n` the default external network, or no longer (Neutron's `is_default`, which
/// `auto-allocated-topology` reads): only an external network can be, and only one at a
/// time (409 `DefaultExternalNetworkExists`, decided by a claim in the same write).
fn set_default(plan: &mut Plan<'_>, n: &mut Network, want: bool) {
    let want = want && n.external;
    if want && !n.is_default {
        plan.txn.claim_requested(
            DEFAULT_EXTERNAL,
            &n.meta.id,
            ApiError::conflict(
                "DefaultExternalNetworkExists",
                format!(
                    "Unable to set network {} as default: another external network is the default one.",
                    n.meta.id
                ),
            ),
        );
    } else if !want && n.is_default {
        plan.txn.release(DEFAULT_EXTERNAL);
    }
    n.is_default = want;
}

/// The policy target of a network for a project with `grants`.
pub fn network_target(grants: &Grants, n: &Network) -> Target {
    Target {
        project_id: n.meta.project_id.clone(),
        network_owner: Some(n.meta.project_id.clone()),
        shared: grants.shared_network(n) || grants.external_network(n),
        wildcard: false,
    }
}

/// A POST's own attributes.
pub struct NewNetwork {
    admin_state_up: bool,
    shared: bool,
    external: bool,
    port_security_enabled: bool,
    mtu: Option<u32>,
    availability_zone_hints: Vec<String>,
    segment: SegmentRequest,
    dns_domain: String,
    qos_policy_id: Option<String>,
}

/// The provider attributes of a POST (admin only); all `None` for a tenant network.
struct SegmentRequest {
    network_type: Option<NetworkType>,
    physical_network: Option<String>,
    segmentation_id: Option<u32>,
}

/// A PUT's own attributes.
pub struct NetworkUpdate {
    admin_state_up: Option<bool>,
    shared: Option<bool>,
    external: Option<bool>,
    port_security_enabled: Option<bool>,
    mtu: Option<u32>,
    is_default: Option<bool>,
    dns_domain: Option<String>,
    qos_policy_id: Option<Option<String>>,
}

impl Lifecycle for Network {
    type Create = NewNetwork;
    type Update = NetworkUpdate;
    const POST_FORBIDDEN: &'static [&'static str] = &["status", "subnets", "availability_zones"];
    const PUT_READ_ONLY: &'static [&'static str] = &[
        "status",
        "subnets",
        "availability_zone_hints",
        "availability_zones",
        "provider:network_type",
        "provider:physical_network",
        "provider:segmentation_id",
    ];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewNetwork> {
        let admin_state_up = attrs.bool("admin_state_up")?.unwrap_or(true);
        let shared = attrs.bool("shared")?.unwrap_or(false);
        let external = attrs.bool("router:external")?.unwrap_or(false);
        let port_security_enabled = attrs.bool("port_security_enabled")?.unwrap_or(true);
        let mtu = attrs.u32("mtu")?;
        let availability_zone_hints = availability_zones::parse_hints(attrs)?;
        let network_type = attrs.string("provider:network_type")?;
        let physical_network = attrs
            .string_or_null("provider:physical_network")?
            .filter(|p| !p.is_empty());
        let segmentation_id = attrs.u32_or_null("provider:segmentation_id")?.flatten();
        let explicit =
            network_type.is_some() || physical_network.is_some() || segmentation_id.is_some();
        let network_type = match network_type {
            Some(t) => Some(NetworkType::parse(&t).ok_or_else(|| {
                bad_attr(
                    "provider:network_type",
                    format!("network type '{t}' is not supported"),
                )
            })?),
            None if explicit => {
                return Err(bad_attr(
                    "provider:network_type",
                    "provider:network_type is required",
                ));
            }
            None => None,
        };
        Ok(NewNetwork {
            admin_state_up,
            shared,
            external,
            port_security_enabled,
            mtu,
            availability_zone_hints,
            dns_domain: super::ops::dns::domain(attrs)?.unwrap_or_default(),
            qos_policy_id: ops_qos::parse_id(attrs)?.flatten(),
            segment: SegmentRequest {
                network_type,
                physical_network,
                segmentation_id,
            },
        })
    }

    async fn plan_create(
        api: &Api,
        ctx: &Context,
        meta: Meta,
        req: &NewNetwork,
        plan: &mut Plan<'_>,
    ) -> ApiResult<Network> {
        availability_zones::check_hints(api, &req.availability_zone_hints).await?;
        let seg = choose_segment(api, &req.segment, plan, &meta.id).await?;
        let mtu = check_mtu(api, seg.network_type, req.mtu)?;
        let unique_key = pick_key(api, plan, "network", MAX_KEY, &meta.id).await?;
        let qos = req.qos_policy_id.as_deref();
        let qos_policy_id = ops_qos::for_new_network(api, plan, ctx, &meta.project_id, qos).await?;
        // `shared` and `router:external` are the `*` policies, as in Neutron.
        for (on, action) in [(req.shared, SHARED), (req.external, EXTERNAL)] {
            if on {
                ops_rbac::add_wildcard(plan, NETWORK, &meta.id, action, &meta.project_id);
            }
        }
        Ok(Network {
            meta,
            admin_state_up: req.admin_state_up,
            mtu,
            shared: req.shared,
            external: req.external,
            port_security_enabled: req.port_security_enabled,
            network_type: seg.network_type,
            physical_network: seg.physical_network,
            segmentation_id: seg.segmentation_id,
            subnets: vec![],
            unique_key,
            deleting: false,
            availability_zone_hints: req.availability_zone_hints.clone(),
            is_default: false,
            dns_domain: req.dns_domain.clone(),
            qos_policy_id,
        })
    }

    fn parse_update(_ctx: &Context, _: &Network, attrs: &mut Attrs) -> ApiResult<NetworkUpdate> {
        let admin_state_up = attrs.bool("admin_state_up")?;
        let shared = attrs.bool("shared")?;
        let external = attrs.bool("router:external")?;
        Ok(NetworkUpdate {
            admin_state_up,
            shared,
            external,
            port_security_enabled: attrs.bool("port_security_enabled")?,
            mtu: attrs.u32("mtu")?,
            is_default: attrs.bool("is_default")?,
            dns_domain: super::ops::dns::domain(attrs)?,
            qos_policy_id: ops_qos::parse_id(attrs)?,
        })
    }

    async fn plan_update(
        api: &Api,
        ctx: &Context,
        n: &mut Network,
        req: NetworkUpdate,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        n.dns_domain = req.dns_domain.unwrap_or(std::mem::take(&mut n.dns_domain));
        if req.mtu.is_some() {
            n.mtu = check_mtu(api, n.network_type, req.mtu)?;
            for (s, _) in ipam::network_subnets(api, n).await? {
                check_mtu_fits(&n.meta.id, n.mtu, s.ip_version)?;
            }
        }
        n.admin_state_up = req.admin_state_up.unwrap_or(n.admin_state_up);
        if let Some(shared) = req.shared {
            ops_rbac::set_network_shared(api, plan, n, shared).await?;
        }
        if let Some(external) = req.external {
            ops_rbac::set_network_external(api, plan, n, external).await?;
        }
        set_default(plan, n, req.is_default.unwrap_or(n.is_default));
        n.port_security_enabled = req.port_security_enabled.unwrap_or(n.port_security_enabled);
        if let Some(qos) = req.qos_policy_id {
            ops_qos::change(api, plan, ctx, &mut n.qos_policy_id, qos).await?;
        }
        Ok(())
    }

    fn deleting_mark(&mut self) -> Option<&mut bool> {
        Some(&mut self.deleting)
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        n: &Network,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        let id = &n.meta.id;
        let fips = floating::unassociated_on(api, id).await?;
        let ports = api.db.all::<Port>().await?;
        let on_it = |p: &Port| p.network_id == *id;
        // What goes with the network: its DHCP port and the ports of its unassociated
        // floating IPs.
        let goes = |p: &Port| {
            p.device_owner == owner::DHCP
                || fips.iter().any(|(f, _)| f.floating_port_id == p.meta.id)
        };
        if ports.iter().any(|(p, _)| on_it(p) && !goes(p)) {
            return Err(ApiError::conflict(
                "NetworkInUse",
                format!(
                    "Unable to complete operation on network {id}. There are one or more ports still in use on the network."
                ),
            ));
        }
        ops_rbac::remove_all(api, plan, id).await?;
        let txn = &mut plan.txn;
        if n.is_default {
            txn.release(DEFAULT_EXTERNAL);
        }
        release_key(api, txn, "network", n.unique_key);
        txn.release(&seg_claim(
            n.network_type,
            n.physical_network.as_deref(),
            n.segmentation_id,
        ));
        // The DHCP port, unassociated floating IPs and the subnets go with their network,
        // as in Neutron.
        for (p, prev) in ports.iter().filter(|(p, _)| on_it(p) && goes(p)) {
            remove_port(api, txn, p, *prev);
        }
        for (f, frev) in &fips {
            txn.delete(f, *frev);
        }
        for sid in &n.subnets {
            if let Some((s, srev)) = api.db.get::<Subnet>(sid).await? {
                txn.delete(&s, srev);
                super::ops::pools::release(txn, &s);
            }
        }
        Ok(())
    }

    fn summary(&self) -> String {
        format!(
            "({}, segment {:?})",
            self.network_type.as_str(),
            self.segmentation_id
        )
    }
}

/// The MTU asked for (at most what the network type carries), or that maximum.
fn check_mtu(api: &Api, t: NetworkType, mtu: Option<u32>) -> ApiResult<u32> {
    let max = api.config.max_mtu(t);
    match mtu {
        // Neutron takes any non-negative MTU up to the maximum; the minimum of each IP
        // version is checked against the network's subnets (`check_mtu_fits`).
        Some(m) if m > max => Err(ApiError::invalid(format!(
            "Requested MTU is too big, maximum is {max}"
        ))),
        Some(m) => Ok(m),
        None => Ok(max),
    }
}

/// The segment a new network gets: explicit provider attributes (admin) or a tenant segment.
pub(crate) struct Segment {
    network_type: NetworkType,
    physical_network: Option<String>,
    pub(crate) segmentation_id: Option<u32>,
}

pub(crate) fn seg_claim(t: NetworkType, physnet: Option<&str>, id: Option<u32>) -> String {
    match (physnet, id) {
        (Some(p), Some(i)) => format!("seg/{}/{p}/{i}", t.as_str()),
        (Some(p), None) => format!("seg/{}/{p}", t.as_str()),
        (None, Some(i)) => format!("seg/{}/{i}", t.as_str()),
        (None, None) => format!("seg/{}", t.as_str()),
    }
}

/// Claims the segment the user asked for in `plan` (409 `kind` when it is taken).
async fn claim_requested(
    api: &Api,
    plan: &mut Plan<'_>,
    owner: &str,
    seg: Segment,
    kind: &str,
    taken: String,
) -> ApiResult<Segment> {
    let claim = seg_claim(
        seg.network_type,
        seg.physical_network.as_deref(),
        seg.segmentation_id,
    );
    if api.db.claim_owner(&claim).await?.is_some() {
        return Err(ApiError::conflict(kind, taken));
    }
    plan.txn.claim_requested(
        &claim,
        owner,
        ApiError::conflict("SegmentInUse", "The requested segment is already in use"),
    );
    Ok(seg)
}

/// Picks a free segmentation id of type `t` (on `physnet`) in `ranges` and claims it.
pub(crate) async fn claim_free(
    api: &Api,
    plan: &mut Plan<'_>,
    owner: &str,
    t: NetworkType,
    physnet: Option<&str>,
    ranges: &[(u128, u128)],
) -> ApiResult<Option<Segment>> {
    let space = match physnet {
        Some(p) => format!("seg/{}/{p}", t.as_str()),
        None => format!("seg/{}", t.as_str()),
    };
    let picked = (api.alloc)
        .pick(&api.db, &space, ranges, |v| {
            seg_claim(t, physnet, Some(v as u32))
        })
        .await?;
    let Some((v, r)) = picked else {
        return Ok(None);
    };
    plan.alloc.reservation.add(r);
    let id = v as u32;
    plan.txn.claim(&seg_claim(t, physnet, Some(id)), owner);
    Ok(Some(Segment {
        network_type: t,
        physical_network: physnet.map(str::to_string),
        segmentation_id: Some(id),
    }))
}

async fn choose_segment(
    api: &Api,
    req: &SegmentRequest,
    plan: &mut Plan<'_>,
    owner: &str,
) -> ApiResult<Segment> {
    let cfg = &api.config;
    let network_type = req.network_type.unwrap_or(cfg.tenant_network_type);
    let (physnet, segid) = (req.physical_network.clone(), req.segmentation_id);
    if let Some(p) = &physnet {
        if !network_type.is_provider() {
            return Err(ApiError::invalid(format!(
                "provider:physical_network specified for {} network",
                network_type.as_str()
            )));
        }
        if !cfg.physical_networks.contains(p) {
            return Err(ApiError::invalid(format!(
                "physical_network '{p}' unknown for {} provider network",
                network_type.as_str()
            )));
        }
    }
    let seg = |physical_network, segmentation_id| Segment {
        network_type,
        physical_network,
        segmentation_id,
    };
    match network_type {
        NetworkType::Local => Ok(seg(None, None)),
        NetworkType::Flat => {
            let p = physnet.ok_or_else(|| {
                ApiError::invalid("provider:physical_network required for flat provider network")
            })?;
            if segid.is_some() {
                return Err(ApiError::invalid(
                    "provider:segmentation_id specified for flat provider network",
                ));
            }
            let taken =
                format!("Unable to create the flat network. Physical network {p} is in use.");
            claim_requested(
                api,
                plan,
                owner,
                seg(Some(p), None),
                "FlatNetworkInUse",
                taken,
            )
            .await
        }
        NetworkType::Vlan => {
            if let Some(id) = segid {
                let p = physnet.ok_or_else(|| {
                    ApiError::invalid(
                        "provider:physical_network required for vlan provider network",
                    )
                })?;
                if !(1..=4094).contains(&id) {
                    return Err(ApiError::invalid(format!(
                        "segmentation_id {id} out of range (1 through 4094)"
                    )));
                }
                let taken = format!(
                    "Unable to create the network. The VLAN {id} on physical network {p} is in use."
                );
                return claim_requested(
                    api,
                    plan,
                    owner,
                    seg(Some(p), Some(id)),
                    "VlanIdInUse",
                    taken,
                )
                .await;
            }
            // Without an explicit physical network, pick one that has a tenant VLAN range.
            for (p, a, b) in &cfg.vlan_ranges {
                if physnet.as_ref().is_some_and(|want| want != p) {
                    continue;
                }
                let range = [(u128::from(*a), u128::from(*b))];
                if let Some(s) = claim_free(api, plan, owner, network_type, Some(p), &range).await?
                {
                    return Ok(s);
                }
            }
            Err(no_segments())
        }
        t => {
            if let Some(id) = segid {
                if id == 0 || id >= 1 << 24 {
                    return Err(ApiError::invalid(format!(
                        "segmentation_id {id} out of range"
                    )));
                }
                let taken = format!("Unable to create the network. The tunnel ID {id} is in use.");
                return claim_requested(
                    api,
                    plan,
                    owner,
                    seg(None, Some(id)),
                    "TunnelIdInUse",
                    taken,
                )
                .await;
            }
            let ranges: Vec<(u128, u128)> = cfg
                .vni_ranges
                .iter()
                .map(|(a, b)| (u128::from(*a), u128::from(*b)))
                .collect();
            claim_free(api, plan, owner, t, None, &ranges)
                .await?
                .ok_or_else(no_segments)
        }
    }
}

fn no_segments() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "NoNetworkAvailable",
        "Unable to create the network. No tenant network is available for allocation.",
    )
}
