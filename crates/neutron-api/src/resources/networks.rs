//! `/v2.0/networks`: networks with MTU, sharing, `router:external`, port security and the
//! provider attributes; segmentation ids are claimed from the configured ranges.

use super::{check_if_match, new_meta, read_only, render_meta, touch, update_meta, visible};
use crate::Api;
use crate::alloc::{Reservation, key_claim};
use crate::body::{Attrs, JsonBody, bad_attr};
use crate::config::Settings;
use crate::context::Context;
use crate::db::{Txn, retrying};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use model::{Network, NetworkType, Port, Subnet, owner};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub const ATTRS: &[&str] = &[
    "id",
    "name",
    "description",
    "project_id",
    "tenant_id",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
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
];

/// Largest datapath key of a network (the metadata register keeps it small).
pub const MAX_KEY: u128 = 0x00ff_ffff;

pub fn render(n: &Network) -> Map<String, Value> {
    let mut m = render_meta(&n.meta, true);
    m.insert("admin_state_up".into(), json!(n.admin_state_up));
    m.insert("status".into(), json!("ACTIVE"));
    m.insert("mtu".into(), json!(n.mtu));
    m.insert("shared".into(), json!(n.shared));
    m.insert("router:external".into(), json!(n.external));
    m.insert(
        "port_security_enabled".into(),
        json!(n.port_security_enabled),
    );
    m.insert(
        "provider:network_type".into(),
        json!(n.network_type.as_str()),
    );
    m.insert(
        "provider:physical_network".into(),
        json!(n.physical_network),
    );
    m.insert("provider:segmentation_id".into(), json!(n.segmentation_id));
    m.insert("subnets".into(), json!(n.subnets));
    debug_assert_eq!(m.len(), ATTRS.len());
    m
}

/// A network a caller may use: its own, shared or external ones.
pub fn usable(ctx: &Context, n: &Network) -> bool {
    ctx.owns(&n.meta.project_id) || n.shared || n.external
}

impl super::Resource for Network {
    const COLLECTION: &'static str = "networks";
    const RESOURCE: &'static str = "network";
    const ATTRS: &'static [&'static str] = ATTRS;
    fn render(&self) -> Map<String, Value> {
        render(self)
    }
    fn visible_to(&self, ctx: &Context) -> bool {
        usable(ctx, self)
    }
}

/// The segment a new network gets: explicit provider attributes (admin) or a tenant segment.
struct Segment {
    network_type: NetworkType,
    physical_network: Option<String>,
    segmentation_id: Option<u32>,
    /// The claim that makes the segment unique, and whether the user asked for it.
    claim: Option<(String, bool)>,
}

fn seg_claim(t: NetworkType, physnet: Option<&str>, id: Option<u32>) -> String {
    match (physnet, id) {
        (Some(p), Some(i)) => format!("seg/{}/{p}/{i}", t.as_str()),
        (Some(p), None) => format!("seg/{}/{p}", t.as_str()),
        (None, Some(i)) => format!("seg/{}/{i}", t.as_str()),
        (None, None) => format!("seg/{}", t.as_str()),
    }
}

async fn choose_segment<'a>(
    api: &'a Api,
    ctx: &Context,
    attrs: &mut Attrs,
    res: &mut Reservation<'a>,
) -> ApiResult<Segment> {
    let cfg: &Settings = &api.config;
    let ntype = attrs.string("provider:network_type")?;
    let physnet = attrs
        .string_or_null("provider:physical_network")?
        .filter(|p| !p.is_empty());
    let segid = attrs.u32_or_null("provider:segmentation_id")?.flatten();
    let explicit = ntype.is_some() || physnet.is_some() || segid.is_some();
    if explicit && !ctx.is_admin {
        return Err(ApiError::forbidden(
            "(rule:create_network:provider:network_type) is disallowed by policy",
        ));
    }
    let network_type = match ntype {
        Some(t) => NetworkType::parse(&t).ok_or_else(|| {
            bad_attr(
                "provider:network_type",
                format!("network type '{t}' is not supported"),
            )
        })?,
        None if explicit => {
            return Err(bad_attr(
                "provider:network_type",
                "provider:network_type is required",
            ));
        }
        None => cfg.tenant_network_type,
    };
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
    match network_type {
        NetworkType::Local => Ok(Segment {
            network_type,
            physical_network: None,
            segmentation_id: None,
            claim: None,
        }),
        NetworkType::Flat => {
            let p = physnet.ok_or_else(|| {
                ApiError::invalid("provider:physical_network required for flat provider network")
            })?;
            if segid.is_some() {
                return Err(ApiError::invalid(
                    "provider:segmentation_id specified for flat provider network",
                ));
            }
            let claim = seg_claim(network_type, Some(&p), None);
            if api.db.claim_owner(&claim).await?.is_some() {
                return Err(ApiError::conflict(
                    "FlatNetworkInUse",
                    format!("Unable to create the flat network. Physical network {p} is in use."),
                ));
            }
            Ok(Segment {
                network_type,
                physical_network: Some(p),
                segmentation_id: None,
                claim: Some((claim, true)),
            })
        }
        NetworkType::Vlan => {
            // Without an explicit physical network, pick one that has a tenant VLAN range.
            let ranges: Vec<&(String, u32, u32)> = cfg
                .vlan_ranges
                .iter()
                .filter(|(n, _, _)| physnet.as_ref().is_none_or(|p| p == n))
                .collect();
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
                let claim = seg_claim(network_type, Some(&p), Some(id));
                if api.db.claim_owner(&claim).await?.is_some() {
                    return Err(ApiError::conflict(
                        "VlanIdInUse",
                        format!(
                            "Unable to create the network. The VLAN {id} on physical network {p} is in use."
                        ),
                    ));
                }
                return Ok(Segment {
                    network_type,
                    physical_network: Some(p),
                    segmentation_id: Some(id),
                    claim: Some((claim, true)),
                });
            }
            for (p, a, b) in ranges {
                let picked = api
                    .alloc
                    .pick(
                        &api.db,
                        &format!("seg/vlan/{p}"),
                        &[(u128::from(*a), u128::from(*b))],
                        |v| seg_claim(NetworkType::Vlan, Some(p), Some(v as u32)),
                    )
                    .await?;
                if let Some((v, r)) = picked {
                    res.add(r);
                    let id = v as u32;
                    return Ok(Segment {
                        network_type,
                        physical_network: Some(p.clone()),
                        segmentation_id: Some(id),
                        claim: Some((seg_claim(network_type, Some(p), Some(id)), false)),
                    });
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
                let claim = seg_claim(t, None, Some(id));
                if api.db.claim_owner(&claim).await?.is_some() {
                    return Err(ApiError::conflict(
                        "TunnelIdInUse",
                        format!("Unable to create the network. The tunnel ID {id} is in use."),
                    ));
                }
                return Ok(Segment {
                    network_type: t,
                    physical_network: None,
                    segmentation_id: Some(id),
                    claim: Some((claim, true)),
                });
            }
            let ranges: Vec<(u128, u128)> = cfg
                .vni_ranges
                .iter()
                .map(|(a, b)| (u128::from(*a), u128::from(*b)))
                .collect();
            let picked = api
                .alloc
                .pick(&api.db, &format!("seg/{}", t.as_str()), &ranges, |v| {
                    seg_claim(t, None, Some(v as u32))
                })
                .await?;
            let (v, r) = picked.ok_or_else(no_segments)?;
            res.add(r);
            let id = v as u32;
            Ok(Segment {
                network_type: t,
                physical_network: None,
                segmentation_id: Some(id),
                claim: Some((seg_claim(t, None, Some(id)), false)),
            })
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

/// Allocates the network's datapath key (lowest free, reused after deletes).
pub async fn pick_key<'a>(
    api: &'a Api,
    kind: &str,
    max: u128,
    res: &mut Reservation<'a>,
) -> ApiResult<u32> {
    let (v, r) = api
        .alloc
        .pick(&api.db, &format!("key/{kind}"), &[(1, max)], |v| {
            key_claim(kind, v)
        })
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "KeysExhausted",
                format!("No {kind} key is free"),
            )
        })?;
    res.add(r);
    Ok(v as u32)
}

pub async fn create(
    State(api): State<Arc<Api>>,
    ctx: Context,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let n = retrying(|| create_once(&api, &ctx, body.clone())).await?;
    tracing::info!(network = %n.meta.id, r#type = n.network_type.as_str(), segment = ?n.segmentation_id, "network created");
    Ok((StatusCode::CREATED, Json(json!({"network": render(&n)}))))
}

async fn create_once(api: &Api, ctx: &Context, body: Value) -> ApiResult<Network> {
    let mut attrs = Attrs::from_body(body, "network", "POST")?;
    attrs.forbid(&[
        "id",
        "status",
        "subnets",
        "created_at",
        "updated_at",
        "revision_number",
    ])?;
    let meta = new_meta(ctx, &mut attrs)?;
    let admin_state_up = attrs.bool("admin_state_up")?.unwrap_or(true);
    let shared = attrs.bool("shared")?.unwrap_or(false);
    let external = attrs.bool("router:external")?.unwrap_or(false);
    if (shared || external) && !ctx.is_admin {
        return Err(ApiError::forbidden(
            "(rule:create_network:shared) is disallowed by policy",
        ));
    }
    let port_security_enabled = attrs.bool("port_security_enabled")?.unwrap_or(true);
    let mtu = attrs.u32("mtu")?;
    // Accepted for compatibility when empty; availability zones are not implemented.
    if let Some(az) = attrs.list("availability_zone_hints")?
        && !az.is_empty()
    {
        return Err(bad_attr(
            "availability_zone_hints",
            "availability zones are not supported",
        ));
    }
    let mut res = api.alloc.reservation();
    let seg = choose_segment(api, ctx, &mut attrs, &mut res).await?;
    attrs.finish()?;
    let max = api.config.max_mtu(seg.network_type);
    let mtu = match mtu {
        Some(m) if m < 68 || m > max => {
            return Err(ApiError::invalid(format!(
                "Requested MTU is too big (or small), maximum is {max}"
            )));
        }
        Some(m) => m,
        None => max,
    };
    let unique_key = pick_key(api, "network", MAX_KEY, &mut res).await?;
    let n = Network {
        meta,
        admin_state_up,
        mtu,
        shared,
        external,
        port_security_enabled,
        network_type: seg.network_type,
        physical_network: seg.physical_network,
        segmentation_id: seg.segmentation_id,
        subnets: vec![],
        unique_key,
        deleting: false,
    };
    let mut txn = Txn::new();
    txn.create(&n);
    txn.claim(&key_claim("network", u128::from(unique_key)), &n.meta.id);
    if let Some((claim, requested)) = &seg.claim {
        if *requested {
            txn.claim_requested(
                claim,
                &n.meta.id,
                ApiError::conflict("SegmentInUse", "The requested segment is already in use"),
            );
        } else {
            txn.claim(claim, &n.meta.id);
        }
    }
    txn.commit(&api.db).await?;
    Ok(n)
}

pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let n = retrying(|| async {
        let (mut n, rev) = visible::<Network>(&api, &ctx, &id).await?;
        check_if_match(&headers, &n.meta)?;
        let mut attrs = Attrs::from_body(body.clone(), "network", "PUT")?;
        update_meta(&mut n.meta, &mut attrs)?;
        for k in [
            "status",
            "subnets",
            "provider:network_type",
            "provider:physical_network",
            "provider:segmentation_id",
        ] {
            if attrs.has(k) {
                return Err(read_only(k));
            }
        }
        if let Some(v) = attrs.bool("admin_state_up")? {
            n.admin_state_up = v;
        }
        if let Some(v) = attrs.bool("shared")? {
            if !ctx.is_admin && v {
                return Err(ApiError::forbidden(
                    "(rule:update_network:shared) is disallowed by policy",
                ));
            }
            n.shared = v;
        }
        if let Some(v) = attrs.bool("router:external")? {
            if !ctx.is_admin {
                return Err(ApiError::forbidden(
                    "(rule:update_network:router:external) is disallowed by policy",
                ));
            }
            n.external = v;
        }
        if let Some(v) = attrs.bool("port_security_enabled")? {
            n.port_security_enabled = v;
        }
        if let Some(m) = attrs.u32("mtu")? {
            let max = api.config.max_mtu(n.network_type);
            if m < 68 || m > max {
                return Err(ApiError::invalid(format!(
                    "Requested MTU is too big (or small), maximum is {max}"
                )));
            }
            n.mtu = m;
        }
        attrs.finish()?;
        touch(&mut n.meta);
        let mut txn = Txn::new();
        txn.update(&n, rev);
        txn.commit(&api.db).await?;
        Ok(n)
    })
    .await?;
    tracing::info!(network = %n.meta.id, "network updated");
    Ok(Json(json!({"network": render(&n)})))
}

pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    retrying(|| async {
        let (mut n, rev) = visible::<Network>(&api, &ctx, &id).await?;
        check_if_match(&headers, &n.meta)?;
        let rev = super::mark_deleting(&api, &mut n, rev).await?;
        let ports = api.db.all::<Port>().await?;
        if ports.iter().any(|(p, _)| p.network_id == id && p.device_owner != owner::DHCP) {
            super::unmark_deleting(&api, &mut n, rev).await;
            return Err(ApiError::conflict(
                "NetworkInUse",
                format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network."),
            ));
        }
        let mut txn = Txn::new();
        txn.delete::<Network>(&id, rev);
        txn.release(&key_claim("network", u128::from(n.unique_key)));
        txn.release(&seg_claim(n.network_type, n.physical_network.as_deref(), n.segmentation_id));
        // The DHCP port goes with its network, as in Neutron.
        for (p, prev) in ports.iter().filter(|(p, _)| p.network_id == id && p.device_owner == owner::DHCP) {
            super::ports::remove_port(&api, &mut txn, p, *prev);
        }
        // Subnets go with their network, as in Neutron.
        for sid in &n.subnets {
            if let Some((_, srev)) = api.db.get::<Subnet>(sid).await? {
                txn.delete::<Subnet>(sid, srev);
            }
        }
        txn.commit(&api.db).await?;
        api.alloc.freed("key/network", u128::from(n.unique_key));
        Ok(())
    })
    .await?;
    tracing::info!(network = %id, "network deleted");
    Ok(StatusCode::NO_CONTENT)
}
