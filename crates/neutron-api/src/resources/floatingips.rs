//! `/v2.0/floatingips`: addresses allocated from an external network's subnet, associated
//! with a port's fixed IP; the router is derived from the topology.

use super::ipam::{Allocation, IpRequest};
use super::ports::{SystemPort, build_system_port, remove_port};
use super::{check_if_match, new_meta, read_only, render_meta, touch, update_meta};
use crate::Api;
use crate::body::{Attrs, JsonBody, bad_attr};
use crate::context::Context;
use crate::db::{Txn, retrying};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use model::{FloatingIp, Network, Port, Router, owner};
use serde_json::{Map, Value, json};
use std::net::IpAddr;
use std::sync::Arc;

pub const ATTRS: &[&str] = &[
    "id",
    "description",
    "project_id",
    "tenant_id",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
    "floating_network_id",
    "floating_ip_address",
    "router_id",
    "port_id",
    "fixed_ip_address",
    "status",
];

pub fn render(f: &FloatingIp) -> Map<String, Value> {
    let mut m = render_meta(&f.meta, false);
    m.insert("floating_network_id".into(), json!(f.floating_network_id));
    m.insert("floating_ip_address".into(), json!(f.floating_ip_address));
    m.insert("router_id".into(), json!(f.router_id));
    m.insert("port_id".into(), json!(f.port_id));
    m.insert("fixed_ip_address".into(), json!(f.fixed_ip_address));
    m.insert(
        "status".into(),
        json!(if f.port_id.is_some() {
            "ACTIVE"
        } else {
            "DOWN"
        }),
    );
    debug_assert_eq!(m.len(), ATTRS.len());
    m
}

fn assoc_claim(port: &str, ip: IpAddr) -> String {
    format!("fipassoc/{port}/{ip}")
}

impl super::Resource for FloatingIp {
    const COLLECTION: &'static str = "floatingips";
    const RESOURCE: &'static str = "floatingip";
    const ATTRS: &'static [&'static str] = ATTRS;
    fn render(&self) -> Map<String, Value> {
        render(self)
    }
}

/// Binds `fip` to `port_id` (and one of its IPv4 addresses), deriving the router.
async fn associate(
    api: &Api,
    ctx: &Context,
    txn: &mut Txn,
    fip: &mut FloatingIp,
    port_id: &str,
    fixed: Option<IpAddr>,
) -> ApiResult<()> {
    let (port, prev) = super::visible::<Port>(api, ctx, port_id).await?;
    if owner::is_system(&port.device_owner) {
        return Err(ApiError::bad_request(
            "BadRequest",
            format!(
                "Bad floatingip request: Port {port_id} is owned by {} and cannot have a floating IP.",
                port.device_owner
            ),
        ));
    }
    let v4: Vec<_> = port
        .fixed_ips
        .iter()
        .filter(|f| f.ip_address.is_ipv4())
        .collect();
    let chosen = match fixed {
        Some(ip) => *v4.iter().find(|f| f.ip_address == ip).ok_or_else(|| {
            ApiError::bad_request(
                "BadRequest",
                format!("Bad floatingip request: Port {port_id} does not have fixed ip {ip}."),
            )
        })?,
        None => match v4.as_slice() {
            [one] => *one,
            [] => {
                return Err(ApiError::bad_request(
                    "BadRequest",
                    format!(
                        "Bad floatingip request: Port {port_id} does not have any IPv4 address."
                    ),
                ));
            }
            _ => {
                return Err(ApiError::bad_request(
                    "BadRequest",
                    format!(
                        "Bad floatingip request: Port {port_id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP."
                    ),
                ));
            }
        },
    };
    let routers = api.db.all::<Router>().await?;
    let router = routers.iter().find(|(r, _)| {
        r.external_gateway
            .as_ref()
            .is_some_and(|g| g.network_id == fip.floating_network_id)
            && r.interfaces.iter().any(|i| i.subnet_id == chosen.subnet_id)
    });
    let Some((router, rrev)) = router else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ExternalGatewayForFloatingIPNotFound",
            format!(
                "External network {} is not reachable from subnet {}. Therefore, cannot associate Port {port_id} with a Floating IP.",
                fip.floating_network_id, chosen.subnet_id
            ),
        ));
    };
    txn.check::<Port>(port_id, prev);
    txn.check::<Router>(&router.meta.id, *rrev);
    let ip = chosen.ip_address;
    txn.claim_requested(
        &assoc_claim(port_id, ip),
        &fip.meta.id,
        ApiError::conflict(
            "FloatingIPPortAlreadyAssociated",
            format!("Cannot associate floating IP {} ({}) with port {port_id} using fixed IP {ip}, as that fixed IP already has a floating IP on external network {}.", fip.floating_ip_address, fip.meta.id, fip.floating_network_id),
        ),
    );
    fip.port_id = Some(port_id.to_string());
    fip.fixed_ip_address = Some(ip);
    fip.router_id = Some(router.meta.id.clone());
    Ok(())
}

fn dissociate(txn: &mut Txn, fip: &mut FloatingIp) {
    if let (Some(p), Some(ip)) = (&fip.port_id, fip.fixed_ip_address) {
        txn.release(&assoc_claim(p, ip));
    }
    fip.port_id = None;
    fip.fixed_ip_address = None;
    fip.router_id = None;
}

/// Disassociates every floating IP of a port that is going away (within `txn`).
pub async fn disassociate_port(api: &Api, txn: &mut Txn, port_id: &str) -> ApiResult<()> {
    for (mut f, rev) in api.db.all::<FloatingIp>().await? {
        if f.port_id.as_deref() == Some(port_id) {
            dissociate(txn, &mut f);
            touch(&mut f.meta);
            txn.update(&f, rev);
        }
    }
    Ok(())
}

fn port_and_ip(attrs: &mut Attrs) -> ApiResult<(Option<Option<String>>, Option<IpAddr>)> {
    let port = match attrs.take("port_id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s)),
        Some(v) => return Err(bad_attr("port_id", format!("'{v}' is not a valid port id"))),
    };
    let fixed = attrs.ip_or_null("fixed_ip_address")?.flatten();
    Ok((port, fixed))
}

pub async fn create(
    State(api): State<Arc<Api>>,
    ctx: Context,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let f = retrying(|| async {
        let mut attrs = Attrs::from_body(body.clone(), "floatingip", "POST")?;
        attrs.forbid(&[
            "id",
            "status",
            "router_id",
            "created_at",
            "updated_at",
            "revision_number",
        ])?;
        let mut meta = new_meta(&ctx, &mut attrs)?;
        meta.name.clear();
        let net_id = attrs
            .string("floating_network_id")?
            .ok_or_else(|| bad_attr("floating_network_id", "floating_network_id is required"))?;
        let address = attrs.ip_or_null("floating_ip_address")?.flatten();
        let subnet = attrs.string_or_null("subnet_id")?.filter(|s| !s.is_empty());
        let (port, fixed) = port_and_ip(&mut attrs)?;
        attrs.finish()?;
        let (network, nrev) = api.db.fetch::<Network>(&net_id).await?;
        if !network.external {
            return Err(ApiError::bad_request(
                "BadRequest",
                format!(
                    "Bad floatingip request: Network {net_id} is not a valid external network."
                ),
            ));
        }
        super::not_deleting(&network)?;
        let mut txn = Txn::new();
        txn.check::<Network>(&net_id, nrev);
        let mut alloc = Allocation::new(&api);
        let request = match (subnet, address) {
            (None, None) => {
                // Any IPv4 subnet of the external network.
                let subnets = super::ipam::network_subnets(&api, &network).await?;
                let v4: Vec<_> = subnets
                    .iter()
                    .filter(|(s, _)| s.ip_version == 4)
                    .map(|(s, _)| s.meta.id.clone())
                    .collect();
                let mut found = None;
                for sid in v4 {
                    let mut trial = Txn::new();
                    let mut trial_alloc = Allocation::new(&api);
                    let req = vec![IpRequest {
                        subnet_id: Some(sid.clone()),
                        ip: None,
                    }];
                    if trial_alloc
                        .assign(
                            &mut trial,
                            &network,
                            &subnets,
                            ("probe", model::MacAddr::default()),
                            Some(req),
                            &[],
                        )
                        .await
                        .is_ok()
                    {
                        found = Some(sid);
                        break;
                    }
                }
                let sid = found.ok_or_else(|| super::ipam::exhausted(&net_id))?;
                vec![IpRequest {
                    subnet_id: Some(sid),
                    ip: None,
                }]
            }
            (s, a) => vec![IpRequest {
                subnet_id: s,
                ip: a,
            }],
        };
        let fid = meta.id.clone();
        let fport = build_system_port(
            &api,
            &mut txn,
            &mut alloc,
            SystemPort {
                network: &network,
                project_id: String::new(),
                device_owner: owner::FLOATING_IP,
                device_id: fid.clone(),
                fixed_ips: Some(request),
            },
        )
        .await?;
        let first = fport
            .fixed_ips
            .first()
            .cloned()
            .ok_or_else(|| ApiError::internal("floating IP port without address"))?;
        let mut f = FloatingIp {
            meta,
            floating_network_id: net_id.clone(),
            floating_ip_address: first.ip_address,
            floating_subnet_id: first.subnet_id,
            floating_port_id: fport.meta.id.clone(),
            port_id: None,
            fixed_ip_address: None,
            router_id: None,
        };
        if let Some(Some(p)) = port {
            associate(&api, &ctx, &mut txn, &mut f, &p, fixed).await?;
        }
        txn.create(&f);
        txn.commit(&api.db).await?;
        Ok(f)
    })
    .await?;
    tracing::info!(floatingip = %f.meta.id, address = %f.floating_ip_address, port = ?f.port_id, "floating IP created");
    Ok((StatusCode::CREATED, Json(json!({"floatingip": render(&f)}))))
}

pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let f = retrying(|| async {
        let (mut f, rev) = super::visible::<FloatingIp>(&api, &ctx, &id).await?;
        check_if_match(&headers, &f.meta)?;
        let mut attrs = Attrs::from_body(body.clone(), "floatingip", "PUT")?;
        update_meta(&mut f.meta, &mut attrs)?;
        for k in [
            "floating_ip_address",
            "floating_network_id",
            "router_id",
            "status",
        ] {
            if attrs.has(k) {
                return Err(read_only(k));
            }
        }
        let (port, fixed) = port_and_ip(&mut attrs)?;
        attrs.finish()?;
        let mut txn = Txn::new();
        match port {
            None if fixed.is_some() => {
                return Err(bad_attr(
                    "fixed_ip_address",
                    "fixed_ip_address needs port_id",
                ));
            }
            None => {}
            Some(p) => {
                let same = p.is_some()
                    && p == f.port_id
                    && (fixed.is_none() || fixed == f.fixed_ip_address);
                if !same {
                    dissociate(&mut txn, &mut f);
                    if let Some(p) = p {
                        associate(&api, &ctx, &mut txn, &mut f, &p, fixed).await?;
                    }
                }
            }
        }
        touch(&mut f.meta);
        txn.update(&f, rev);
        txn.commit(&api.db).await?;
        Ok(f)
    })
    .await?;
    tracing::info!(floatingip = %f.meta.id, port = ?f.port_id, fixed = ?f.fixed_ip_address, "floating IP updated");
    Ok(Json(json!({"floatingip": render(&f)})))
}

pub async fn delete(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    retrying(|| async {
        let (mut f, rev) = super::visible::<FloatingIp>(&api, &ctx, &id).await?;
        check_if_match(&headers, &f.meta)?;
        let mut txn = Txn::new();
        dissociate(&mut txn, &mut f);
        txn.delete::<FloatingIp>(&id, rev);
        if let Some((p, prev)) = api.db.get::<Port>(&f.floating_port_id).await? {
            remove_port(&api, &mut txn, &p, prev);
        }
        txn.commit(&api.db).await?;
        Ok(())
    })
    .await?;
    tracing::info!(floatingip = %id, "floating IP deleted");
    Ok(StatusCode::NO_CONTENT)
}
