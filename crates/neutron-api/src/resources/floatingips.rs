//! `/v2.0/floatingips`: addresses allocated from an external network's subnet, associated
//! with a port's fixed IP; the router is derived from the topology.

use super::lifecycle::Lifecycle;
use super::ops::Plan;
use super::ops::deleting::not_deleting;
use super::ops::floating::{assoc_claim, dissociate, in_use_by_forwarding, router_reaching};
use super::ops::forwarding::check_not_forwarded;
use super::ops::ipam::{self, IpRequest};
use super::ops::ports::{Addresses, SystemPort, build_system_port, remove_port_by_id};
use super::{Resource, Standard, visible};
use crate::Api;
use crate::body::{Attrs, bad_attr};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use model::{FloatingIp, Meta, Network, Port, Router, owner};
use serde_json::{Map, Value, json};
use std::net::IpAddr;

impl Resource for FloatingIp {
    const COLLECTION: &'static str = "floatingips";
    const RESOURCE: &'static str = "floatingip";
    const STANDARD: Standard = Standard {
        name: false,
        tags: true,
        described: true,
    };
    const OWN_ATTRS: &'static [&'static str] = &[
        "floating_network_id",
        "floating_ip_address",
        "router_id",
        "port_id",
        "fixed_ip_address",
        "status",
        "port_forwardings",
    ];

    fn render_own(&self, m: &mut Map<String, Value>) {
        m.insert(
            "floating_network_id".into(),
            json!(self.floating_network_id),
        );
        m.insert(
            "floating_ip_address".into(),
            json!(self.floating_ip_address),
        );
        m.insert("router_id".into(), json!(self.router_id));
        m.insert("port_id".into(), json!(self.port_id));
        m.insert("fixed_ip_address".into(), json!(self.fixed_ip_address));
        // `expose-port-forwarding-in-fip` with `floating-ip-port-forwarding-detail`.
        let pfs: Vec<Value> = (self.port_forwardings.iter())
            .map(|pf| {
                json!({
                    "id": pf.id,
                    "internal_port_id": pf.internal_port_id,
                    "internal_ip_address": pf.internal_ip_address,
                    "internal_port": pf.internal_port,
                    "external_port": pf.external_port,
                    "protocol": pf.protocol.as_str(),
                })
            })
            .collect();
        m.insert("port_forwardings".into(), Value::Array(pfs));
        let status = if self.port_id.is_some() || !self.port_forwardings.is_empty() {
            "ACTIVE"
        } else {
            "DOWN"
        };
        m.insert("status".into(), json!(status));
    }
}

/// A POST's own attributes.
pub struct NewFloatingIp {
    network_id: String,
    address: Option<IpAddr>,
    subnet_id: Option<String>,
    port: Association,
}

/// `port_id` and `fixed_ip_address` as asked: `port_id` absent (`None`), null
/// (`Some(None)`) or a port.
pub struct Association {
    port_id: Option<Option<String>>,
    fixed_ip: Option<IpAddr>,
}

impl Lifecycle for FloatingIp {
    type Create = NewFloatingIp;
    type Update = Association;
    const POST_FORBIDDEN: &'static [&'static str] = &["status", "router_id", "port_forwardings"];
    const PUT_READ_ONLY: &'static [&'static str] = &[
        "floating_ip_address",
        "floating_network_id",
        "router_id",
        "status",
        "port_forwardings",
    ];

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewFloatingIp> {
        Ok(NewFloatingIp {
            network_id: attrs.string("floating_network_id")?.ok_or_else(|| {
                bad_attr("floating_network_id", "floating_network_id is required")
            })?,
            address: attrs.ip_or_null("floating_ip_address")?.flatten(),
            subnet_id: attrs.string_or_null("subnet_id")?.filter(|s| !s.is_empty()),
            port: association(attrs)?,
        })
    }

    async fn plan_create(
        api: &Api,
        ctx: &Context,
        meta: Meta,
        req: &NewFloatingIp,
        plan: &mut Plan<'_>,
    ) -> ApiResult<FloatingIp> {
        let net_id = &req.network_id;
        let (network, nrev) = super::ops::rbac::external_for(api, &meta.project_id, net_id).await?;
        if !network.external {
            return Err(ApiError::bad_request(
                "BadRequest",
                format!(
                    "Bad floatingip request: Network {net_id} is not a valid external network."
                ),
            ));
        }
        not_deleting(&network)?;
        plan.txn.check::<Network>(net_id, nrev);
        let subnet_id = match (&req.subnet_id, req.address) {
            (None, None) => Some(v4_subnet_with_room(api, &network).await?),
            (s, _) => s.clone(),
        };
        let request = vec![IpRequest {
            subnet_id,
            ip: req.address,
        }];
        let sp = SystemPort {
            network: &network,
            project_id: String::new(),
            device_owner: owner::FLOATING_IP,
            device_id: meta.id.clone(),
            addresses: Addresses::Requested(Some(request)),
        };
        let fport = build_system_port(api, plan, sp).await?;
        plan.txn.create(&fport);
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
            port_forwardings: Vec::new(),
        };
        if let Some(Some(p)) = &req.port.port_id {
            associate(api, ctx, plan, &mut f, p, req.port.fixed_ip).await?;
        }
        Ok(f)
    }

    /// Neutron's legacy rule, which clients rely on: an empty update dissociates.
    fn blank_update() -> Option<(&'static str, Value)> {
        Some(("port_id", Value::Null))
    }

    fn parse_update(_: &Context, _: &FloatingIp, attrs: &mut Attrs) -> ApiResult<Association> {
        let a = association(attrs)?;
        if a.port_id.is_none() && a.fixed_ip.is_some() {
            return Err(bad_attr(
                "fixed_ip_address",
                "fixed_ip_address needs port_id",
            ));
        }
        Ok(a)
    }

    async fn plan_update(
        api: &Api,
        ctx: &Context,
        f: &mut FloatingIp,
        req: Association,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        let Some(port) = req.port_id else {
            return Ok(());
        };
        // Only a free floating IP takes forwardings, and one with forwardings no port
        // (a dissociation of it changes nothing).
        if !f.port_forwardings.is_empty() {
            return match port {
                Some(_) => Err(in_use_by_forwarding(&f.meta.id)),
                None => Ok(()),
            };
        }
        let fixed = req.fixed_ip;
        let same =
            port.is_some() && port == f.port_id && (fixed.is_none() || fixed == f.fixed_ip_address);
        if !same {
            dissociate(&mut plan.txn, f);
            if let Some(p) = port {
                associate(api, ctx, plan, f, &p, fixed).await?;
            }
        }
        Ok(())
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        f: &FloatingIp,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        if !f.port_forwardings.is_empty() {
            return Err(in_use_by_forwarding(&f.meta.id));
        }
        dissociate(&mut plan.txn, &mut f.clone());
        remove_port_by_id(api, &mut plan.txn, &f.floating_port_id).await
    }

    fn summary(&self) -> String {
        format!(
            "({} on port {:?}, fixed IP {:?})",
            self.floating_ip_address, self.port_id, self.fixed_ip_address
        )
    }
}

fn association(attrs: &mut Attrs) -> ApiResult<Association> {
    let port_id = match attrs.take("port_id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s)),
        Some(v) => return Err(bad_attr("port_id", format!("'{v}' is not a valid port id"))),
    };
    let fixed_ip = attrs.ip_or_null("fixed_ip_address")?.flatten();
    Ok(Association { port_id, fixed_ip })
}

/// Any IPv4 subnet of the external network that has a free address.
async fn v4_subnet_with_room(api: &Api, network: &Network) -> ApiResult<String> {
    let subnets = ipam::network_subnets(api, network).await?;
    for (s, _) in subnets.iter().filter(|(s, _)| s.ip_version == 4) {
        let mut trial = Plan::new(api);
        let req = vec![IpRequest {
            subnet_id: Some(s.meta.id.clone()),
            ip: None,
        }];
        let probe = ("probe", model::MacAddr::default());
        let assigned = (trial.alloc)
            .assign(&mut trial.txn, network, &subnets, probe, Some(req), &[])
            .await;
        if assigned.is_ok() {
            return Ok(s.meta.id.clone());
        }
    }
    Err(ipam::exhausted(&network.meta.id))
}

/// Binds `fip` to `port_id` (and one of its IPv4 addresses), deriving the router.
async fn associate(
    api: &Api,
    ctx: &Context,
    plan: &mut Plan<'_>,
    fip: &mut FloatingIp,
    port_id: &str,
    fixed: Option<IpAddr>,
) -> ApiResult<()> {
    let (port, prev) = visible::<Port>(api, ctx, port_id).await?;
    // A network owner sees other projects' ports on its network; it may not give them
    // its floating IPs (Neutron's wording).
    if !ctx.is_admin && port.meta.project_id != fip.meta.project_id {
        return Err(ApiError::bad_request(
            "BadRequest",
            format!(
                "Bad floatingip request: Cannot create floating IP and bind it to Port {port_id}, since that port is owned by a different tenant."
            ),
        ));
    }
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
    let bad =
        |why: String| ApiError::bad_request("BadRequest", format!("Bad floatingip request: {why}"));
    let chosen = match (fixed, v4.as_slice()) {
        (Some(ip), _) => *v4
            .iter()
            .find(|f| f.ip_address == ip)
            .ok_or_else(|| bad(format!("Port {port_id} does not have fixed ip {ip}.")))?,
        (None, [one]) => *one,
        (None, []) => {
            return Err(bad(format!(
                "Port {port_id} does not have any IPv4 address."
            )));
        }
        (None, _) => {
            return Err(bad(format!(
                "Port {port_id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP."
            )));
        }
    };
    let router = router_reaching(api, &fip.floating_network_id, &chosen.subnet_id).await?;
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
    let txn = &mut plan.txn;
    txn.check::<Port>(port_id, prev);
    txn.check::<Router>(&router.meta.id, rrev);
    let ip = chosen.ip_address;
    check_not_forwarded(api, txn, port_id, ip).await?;
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
