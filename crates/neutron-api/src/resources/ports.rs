//! `/v2.0/ports`: ports with IPAM, MAC allocation, security groups, allowed address pairs,
//! port security, binding attributes and extra DHCP options.

use super::Resource;
use super::lifecycle::Lifecycle;
use super::ops::deleting::not_deleting;
use super::ops::ipam::{self, IpRequest, network_subnets, parse_fixed_ips};
use super::ops::ports::{MAX_KEY, pick_mac, release_claims};
use super::ops::{
    Plan, dns, floating, forwarding, groups, pick_key, qos, rbac as ops_rbac, trunks,
};
use crate::Api;
use crate::agents;
use crate::alloc::mac_claim;
use crate::body::{Attrs, bad_attr, parse_cidr, render_ip_or_cidr};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::policy::Target;
use crate::policy::rbac::SHARED;
use ipnet::IpNet;
use model::instance::InstanceMetadata;
use model::{
    AddressPair, ExtraDhcpOpt, MacAddr, Meta, Network, Port, PortStatus, SecurityGroup, owner,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The datapath type a host's controller does not report: the kernel's.
const DEFAULT_DATAPATH: &str = "system";

impl Resource for Port {
    const COLLECTION: &'static str = "ports";
    const RESOURCE: &'static str = "port";
    const OWN_ATTRS: &'static [&'static str] = &[
        "network_id",
        "admin_state_up",
        "mac_address",
        "fixed_ips",
        "device_id",
        "device_owner",
        "status",
        "security_groups",
        "allowed_address_pairs",
        "port_security_enabled",
        "binding:host_id",
        "binding:vif_type",
        "binding:vif_details",
        "binding:vnic_type",
        "binding:profile",
        "extra_dhcp_opts",
        "dns_name",
        "dns_domain",
        "dns_assignment",
        "qos_policy_id",
        "qos_network_policy_id",
        "instance_metadata",
    ];

    fn render_own(&self, m: &mut Map<String, Value>) {
        let p = self;
        let bound = !p.binding_host_id.is_empty();
        m.insert("network_id".into(), json!(p.network_id));
        m.insert("admin_state_up".into(), json!(p.admin_state_up));
        m.insert("mac_address".into(), json!(p.mac_address));
        m.insert("fixed_ips".into(), json!(p.fixed_ips));
        m.insert("device_id".into(), json!(p.device_id));
        m.insert("device_owner".into(), json!(p.device_owner));
        m.insert("status".into(), json!(p.status.as_str()));
        m.insert("security_groups".into(), json!(p.security_groups));
        let pairs = p.allowed_address_pairs.iter().map(|a| {
            json!({"ip_address": render_ip_or_cidr(&a.ip_address), "mac_address": a.mac_address})
        });
        m.insert("allowed_address_pairs".into(), pairs.collect());
        m.insert(
            "port_security_enabled".into(),
            json!(p.port_security_enabled),
        );
        m.insert("binding:host_id".into(), json!(p.binding_host_id));
        let vif_type = match (bound, p.binding_failed) {
            (false, _) => "unbound",
            (true, true) => "binding_failed",
            (true, false) => "ovs",
        };
        m.insert("binding:vif_type".into(), json!(vif_type));
        m.insert(
            "binding:vif_details".into(),
            if vif_type == "ovs" {
                // As ML2's Open vSwitch driver presents a port to Nova's os-vif: plugged
                // straight into br-int (no hybrid bridge: the controller filters). The
                // datapath is the host's, from its controller's heartbeat (`render_all`).
                json!({"port_filter": true, "ovs_hybrid_plug": false,
                       "datapath_type": DEFAULT_DATAPATH, "bridge_name": "br-int",
                       "connectivity": "l2"})
            } else {
                json!({})
            },
        );
        m.insert("binding:vnic_type".into(), json!(p.binding_vnic_type));
        m.insert("binding:profile".into(), json!(p.binding_profile));
        m.insert("extra_dhcp_opts".into(), json!(p.extra_dhcp_opts));
        m.insert("dns_name".into(), json!(p.dns_name));
        m.insert("dns_domain".into(), json!(p.dns_domain));
        // Under the configured domain: `render_all` writes it again with the server's.
        m.insert(
            "dns_assignment".into(),
            dns::assignment(p, model::dns::DEFAULT_DOMAIN),
        );
        m.insert("qos_policy_id".into(), json!(p.qos_policy_id));
        // Its network's, filled in by `render_all`.
        m.insert("qos_network_policy_id".into(), Value::Null);
        m.insert("instance_metadata".into(), json!(p.instance_metadata));
    }

    /// Bound ports show their host's datapath type, as its controller reports it: one
    /// heartbeat read per host of the listing.
    async fn render_all(api: &Api, objs: &[Port]) -> ApiResult<Vec<Map<String, Value>>> {
        let hosts: std::collections::BTreeSet<&str> = objs
            .iter()
            .filter(|p| !p.binding_host_id.is_empty() && !p.binding_failed)
            .map(|p| p.binding_host_id.as_str())
            .collect();
        let datapaths = agents::datapath_types(api, hosts).await?;
        let net_policies = qos::network_policies(api, objs).await?;
        let mut trunks = super::trunks::trunk_details(api, objs).await?;
        Ok(objs
            .iter()
            .map(|p| {
                let mut m = super::render(p);
                if m.contains_key("dns_assignment") {
                    let a = dns::assignment(p, &api.config.dns_domain);
                    m.insert("dns_assignment".into(), a);
                }
                if let (Some(dp), Some(Value::Object(d))) = (
                    datapaths.get(p.binding_host_id.as_str()),
                    m.get_mut("binding:vif_details"),
                ) && d.contains_key("datapath_type")
                {
                    d.insert("datapath_type".into(), json!(dp));
                }
                let net_policy = net_policies.get(p.network_id.as_str());
                m.insert("qos_network_policy_id".into(), json!(net_policy));
                // `trunk-details`: parents only (others have no such key, as in Neutron).
                if let Some(t) = trunks.remove(&p.meta.id) {
                    m.insert("trunk_details".into(), t);
                }
                m
            })
            .collect())
    }

    /// A port is also its network owner's to see and delete, and its network owner's
    /// attribute rules (`fixed_ips:ip_address`) apply to the caller's own ports too.
    async fn targets(api: &Api, ctx: &Context, objs: &[Port]) -> ApiResult<Vec<Target>> {
        let mut wanted: Vec<&str> = objs.iter().map(|p| p.network_id.as_str()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut owners = std::collections::HashMap::new();
        if ctx.is_admin {
            // The admin passes every rule: no owner needed.
        } else if wanted.len() <= 8 {
            for id in wanted {
                if let Some((n, _)) = api.db.get::<Network>(id).await? {
                    owners.insert(n.meta.id, n.meta.project_id);
                }
            }
        } else {
            owners = (api.db.all::<Network>().await?)
                .into_iter()
                .map(|(n, _)| (n.meta.id, n.meta.project_id))
                .collect();
        }
        Ok(objs
            .iter()
            .map(|p| Target {
                network_owner: owners.get(&p.network_id).cloned(),
                ..Target::project(&p.meta.project_id)
            })
            .collect())
    }
}

/// `instance_metadata`: absent (None), null or `{}` (Some(None): none), or an object with
/// `user_data` (base64), `public_keys` and `meta` within Nova's limits.
fn instance_metadata(attrs: &mut Attrs) -> ApiResult<Option<Option<InstanceMetadata>>> {
    const ATTR: &str = "instance_metadata";
    match attrs.take(ATTR) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v @ Value::Object(_)) => {
            let m: InstanceMetadata =
                serde_json::from_value(deny_unknown(&v)?).map_err(|e| bad_attr(ATTR, e))?;
            m.validate().map_err(|e| bad_attr(ATTR, e))?;
            Ok(Some((m != InstanceMetadata::default()).then_some(m)))
        }
        Some(other) => Err(bad_attr(
            ATTR,
            format!("{} is not a dictionary", crate::body::show(&other)),
        )),
    }
}

/// The object itself, once checked to hold only the known keys.
fn deny_unknown(v: &Value) -> ApiResult<Value> {
    if let Value::Object(o) = v
        && let Some(k) = o
            .keys()
            .find(|k| !["user_data", "public_keys", "meta"].contains(&k.as_str()))
    {
        return Err(bad_attr(
            "instance_metadata",
            format!("unknown key {k:?} (user_data, public_keys, meta)"),
        ));
    }
    Ok(v.clone())
}

/// An allowed address pair as asked: without a MAC it takes the port's.
type PairRequest = (IpNet, Option<MacAddr>);

/// A POST's own attributes.
pub struct NewPort {
    network_id: String,
    mac_address: Option<MacAddr>,
    /// `None`: the project's default group, when the port has port security.
    security_groups: Option<Vec<String>>,
    device_owner: String,
    device_id: String,
    port_security_enabled: Option<bool>,
    pairs: Vec<PairRequest>,
    extra_dhcp_opts: Vec<ExtraDhcpOpt>,
    binding_host_id: String,
    binding_profile: BTreeMap<String, Value>,
    admin_state_up: bool,
    fixed_ips: Option<Vec<IpRequest>>,
    dns_name: String,
    dns_domain: String,
    qos_policy_id: Option<String>,
    instance_metadata: Option<InstanceMetadata>,
}

/// A PUT's own attributes.
pub struct PortUpdate {
    security_groups: Option<Vec<String>>,
    mac_address: Option<MacAddr>,
    admin_state_up: Option<bool>,
    device_owner: Option<String>,
    device_id: Option<String>,
    port_security_enabled: Option<bool>,
    pairs: Option<Vec<PairRequest>>,
    extra_dhcp_opts: Option<Vec<ExtraDhcpOpt>>,
    binding_host_id: Option<String>,
    binding_profile: Option<BTreeMap<String, Value>>,
    fixed_ips: Option<Vec<IpRequest>>,
    dns_name: Option<String>,
    dns_domain: Option<String>,
    qos_policy_id: Option<Option<String>>,
    /// `Some(None)`: cleared (null).
    instance_metadata: Option<Option<InstanceMetadata>>,
}

impl Lifecycle for Port {
    type Create = NewPort;
    type Update = PortUpdate;
    const POST_FORBIDDEN: &'static [&'static str] = &[
        "status",
        "binding:vif_type",
        "binding:vif_details",
        "dns_assignment",
        "qos_network_policy_id",
    ];
    const PUT_READ_ONLY: &'static [&'static str] = &[
        "network_id",
        "status",
        "binding:vif_type",
        "binding:vif_details",
        "dns_assignment",
        "qos_network_policy_id",
    ];

    async fn create_target(
        api: &Api,
        ctx: &Context,
        meta: &Meta,
        req: &NewPort,
    ) -> ApiResult<Target> {
        ops_rbac::on_network(api, ctx, &meta.project_id, &req.network_id).await
    }

    fn parse_create(_ctx: &Context, attrs: &mut Attrs) -> ApiResult<NewPort> {
        let network_id = attrs
            .string("network_id")?
            .ok_or_else(|| bad_attr("network_id", "network_id is required"))?;
        // None means the default group; an empty list, none at all (as in Neutron).
        let security_groups = security_groups_from(attrs)?;
        let mut extra_dhcp_opts = Vec::new();
        merge_dhcp_opts(
            &mut extra_dhcp_opts,
            attrs.list("extra_dhcp_opts")?.unwrap_or_default(),
        )?;
        let binding_profile = attrs.object("binding:profile")?.unwrap_or_default();
        vnic_type(attrs)?;
        Ok(NewPort {
            network_id,
            mac_address: attrs.mac("mac_address")?,
            security_groups,
            device_owner: attrs.string("device_owner")?.unwrap_or_default(),
            device_id: attrs.string("device_id")?.unwrap_or_default(),
            port_security_enabled: attrs.bool("port_security_enabled")?,
            pairs: parse_pairs(attrs.list("allowed_address_pairs")?.unwrap_or_default())?,
            extra_dhcp_opts,
            binding_host_id: attrs.string("binding:host_id")?.unwrap_or_default(),
            binding_profile: binding_profile.into_iter().collect(),
            admin_state_up: attrs.bool("admin_state_up")?.unwrap_or(true),
            fixed_ips: attrs.list("fixed_ips")?.map(parse_fixed_ips).transpose()?,
            dns_name: dns::name(attrs)?.unwrap_or_default(),
            dns_domain: dns::domain(attrs)?.unwrap_or_default(),
            qos_policy_id: qos::parse_id(attrs)?.flatten(),
            instance_metadata: instance_metadata(attrs)?.flatten(),
        })
    }

    async fn plan_create(
        api: &Api,
        ctx: &Context,
        meta: Meta,
        req: &NewPort,
        plan: &mut Plan<'_>,
    ) -> ApiResult<Port> {
        let network_id = &req.network_id;
        let (network, net_rev) = api.db.fetch::<Network>(network_id).await?;
        not_deleting(&network)?;
        ops_rbac::use_network(api, plan, ctx, &meta.project_id, &network).await?;
        let id = meta.id.clone();
        plan.txn.check::<Network>(network_id, net_rev);
        let mac = match req.mac_address {
            Some(mac) => {
                let claim = mac_claim(&mac);
                if api.db.claim_owner(&claim).await?.is_some() {
                    return Err(mac_in_use(network_id, mac));
                }
                let reserved = api.alloc.reserve(claim.clone());
                plan.alloc
                    .reservation
                    .add(reserved.ok_or_else(|| mac_in_use(network_id, mac))?);
                plan.txn
                    .claim_requested(&claim, &id, mac_in_use(network_id, mac));
                mac
            }
            None => pick_mac(api, plan, &id).await?,
        };
        let project = &meta.project_id;
        check_router_device(api, ctx, &req.device_owner, &req.device_id, project).await?;
        let port_security_enabled = req
            .port_security_enabled
            .unwrap_or(network.port_security_enabled);
        let security_groups = match &req.security_groups {
            Some(ids) => ids.clone(),
            None if port_security_enabled && !req.device_owner.starts_with("network:") => {
                vec![groups::ensure_default(api, project).await?]
            }
            None => vec![],
        };
        check_groups(api, ctx, project, &security_groups, plan).await?;
        let subnets = network_subnets(api, &network).await?;
        let requests = req.fixed_ips.clone();
        let fixed_ips = (plan.alloc)
            .assign(&mut plan.txn, &network, &subnets, (&id, mac), requests, &[])
            .await?;
        let unique_key = pick_key(api, plan, "port", MAX_KEY, &id).await?;
        let mut port = Port {
            meta,
            network_id: network_id.clone(),
            admin_state_up: req.admin_state_up,
            mac_address: mac,
            fixed_ips,
            security_groups,
            allowed_address_pairs: resolve_pairs(&req.pairs, mac)?,
            port_security_enabled,
            device_owner: req.device_owner.clone(),
            device_id: req.device_id.clone(),
            binding_host_id: req.binding_host_id.clone(),
            binding_profile: req.binding_profile.clone(),
            binding_vnic_type: "normal".into(),
            binding_failed: !req.binding_host_id.is_empty()
                && !agents::live_controller(api, &req.binding_host_id).await?,
            extra_dhcp_opts: req.extra_dhcp_opts.clone(),
            status: PortStatus::Down,
            unique_key,
            dns_domain: req.dns_domain.clone(),
            dns_name: String::new(),
            qos_policy_id: None,
            instance_metadata: req.instance_metadata.clone(),
        };
        let asked = req.qos_policy_id.clone();
        qos::change(api, plan, ctx, &mut port.qos_policy_id, asked).await?;
        dns::set_name(api, &mut port, req.dns_name.clone())?;
        check_port_security(&port)?;
        Ok(port)
    }

    fn parse_update(_ctx: &Context, p: &Port, attrs: &mut Attrs) -> ApiResult<PortUpdate> {
        let extra_dhcp_opts = match attrs.list("extra_dhcp_opts")? {
            Some(items) => {
                let mut opts = p.extra_dhcp_opts.clone();
                merge_dhcp_opts(&mut opts, items)?;
                Some(opts)
            }
            None => None,
        };
        let binding_profile = attrs.object("binding:profile")?;
        vnic_type(attrs)?;
        Ok(PortUpdate {
            security_groups: security_groups_from(attrs)?,
            mac_address: attrs.mac("mac_address")?,
            admin_state_up: attrs.bool("admin_state_up")?,
            device_owner: attrs.string("device_owner")?,
            device_id: attrs.string("device_id")?,
            port_security_enabled: attrs.bool("port_security_enabled")?,
            pairs: attrs
                .list("allowed_address_pairs")?
                .map(parse_pairs)
                .transpose()?,
            extra_dhcp_opts,
            binding_host_id: attrs.string_or_null("binding:host_id")?,
            binding_profile: binding_profile.map(|prof| prof.into_iter().collect()),
            fixed_ips: attrs.list("fixed_ips")?.map(parse_fixed_ips).transpose()?,
            dns_name: dns::name(attrs)?,
            dns_domain: dns::domain(attrs)?,
            qos_policy_id: qos::parse_id(attrs)?,
            instance_metadata: instance_metadata(attrs)?,
        })
    }

    async fn plan_update(
        api: &Api,
        ctx: &Context,
        p: &mut Port,
        req: PortUpdate,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        let id = p.meta.id.clone();
        if let Some(mac) = req.mac_address
            && mac != p.mac_address
        {
            if !p.binding_host_id.is_empty() {
                return Err(ApiError::conflict(
                    "PortBound",
                    format!("Unable to complete operation on port {id}, port is already bound"),
                ));
            }
            let claim = mac_claim(&mac);
            if api.db.claim_owner(&claim).await?.is_some() {
                return Err(mac_in_use(&p.network_id, mac));
            }
            let txn = &mut plan.txn;
            txn.claim_requested(&claim, &id, mac_in_use(&p.network_id, mac));
            txn.release(&mac_claim(&p.mac_address));
            p.mac_address = mac;
        }
        p.admin_state_up = req.admin_state_up.unwrap_or(p.admin_state_up);
        if req.device_owner.is_some() || req.device_id.is_some() {
            p.device_owner = req.device_owner.unwrap_or(p.device_owner.clone());
            p.device_id = req.device_id.unwrap_or(p.device_id.clone());
            check_router_device(api, ctx, &p.device_owner, &p.device_id, &p.meta.project_id)
                .await?;
        }
        p.port_security_enabled = req.port_security_enabled.unwrap_or(p.port_security_enabled);
        if let Some(groups) = req.security_groups {
            check_groups(api, ctx, &p.meta.project_id, &groups, plan).await?;
            p.security_groups = groups;
        }
        if let Some(pairs) = &req.pairs {
            p.allowed_address_pairs = resolve_pairs(pairs, p.mac_address)?;
        }
        p.extra_dhcp_opts = req.extra_dhcp_opts.unwrap_or(p.extra_dhcp_opts.clone());
        if let Some(host) = req.binding_host_id {
            // Bound (again) by the API: as ML2, it fails where no agent could bind it.
            p.binding_failed = !host.is_empty() && !agents::live_controller(api, &host).await?;
            p.binding_host_id = host;
        }
        p.binding_profile = req.binding_profile.unwrap_or(p.binding_profile.clone());
        if let Some(name) = req.dns_name {
            dns::set_name(api, p, name)?;
        }
        p.dns_domain = req.dns_domain.unwrap_or(std::mem::take(&mut p.dns_domain));
        if let Some(policy) = req.qos_policy_id {
            qos::change(api, plan, ctx, &mut p.qos_policy_id, policy).await?;
        }
        if let Some(m) = req.instance_metadata {
            p.instance_metadata = m;
        }
        if let Some(requests) = req.fixed_ips {
            let (network, net_rev) = api.db.fetch::<Network>(&p.network_id).await?;
            plan.txn.check::<Network>(&network.meta.id, net_rev);
            let subnets = network_subnets(api, &network).await?;
            let owner = (id.as_str(), p.mac_address);
            let new_ips = (plan.alloc)
                .assign(
                    &mut plan.txn,
                    &network,
                    &subnets,
                    owner,
                    Some(requests),
                    &p.fixed_ips,
                )
                .await?;
            let dropped: Vec<_> = (p.fixed_ips.iter())
                .filter(|f| !new_ips.contains(f))
                .cloned()
                .collect();
            if !dropped.is_empty()
                && owner::is_system(&p.device_owner)
                && p.device_owner != owner::DHCP
            {
                return Err(ApiError::conflict(
                    "PortInUse",
                    format!(
                        "Port {id} is owned by {}: change its addresses through the router or floating IP API",
                        p.device_owner
                    ),
                ));
            }
            ipam::release(api, &mut plan.txn, &dropped);
            // Forwardings to an address the port no longer has go, as in Neutron.
            let dropped: Vec<_> = dropped.iter().map(|f| f.ip_address).collect();
            let kept: Vec<_> = new_ips.iter().map(|f| f.ip_address).collect();
            if !dropped.is_empty() {
                forwarding::drop_for_port(api, &mut plan.txn, &id, &dropped, &kept).await?;
            }
            p.fixed_ips = new_ips;
        }
        check_port_security(p)
    }

    fn check_delete(&self, _ctx: &Context) -> ApiResult<()> {
        if owner::is_system(&self.device_owner) && self.device_owner != owner::DHCP {
            return Err(ApiError::conflict(
                "L3PortInUse",
                format!(
                    "Port {} cannot be deleted directly via the port API: has device owner {}.",
                    self.meta.id, self.device_owner
                ),
            ));
        }
        Ok(())
    }

    async fn plan_delete(
        api: &Api,
        _ctx: &Context,
        p: &Port,
        plan: &mut Plan<'_>,
    ) -> ApiResult<()> {
        trunks::check_port_free(api, &mut plan.txn, &p.meta.id).await?;
        floating::disassociate_port(api, &mut plan.txn, &p.meta.id).await?;
        let addrs: Vec<_> = p.fixed_ips.iter().map(|f| f.ip_address).collect();
        forwarding::drop_for_port(api, &mut plan.txn, &p.meta.id, &addrs, &[]).await?;
        release_claims(api, &mut plan.txn, p);
        crate::fwaas::groups::forget_port(api, &p.meta.id, &mut plan.txn).await?;
        crate::taas::forget_port(api, &p.meta.id, &mut plan.txn).await?;
        plan.txn
            .nova_events(model::nova::on_delete(p).into_iter().collect());
        Ok(())
    }

    fn summary(&self) -> String {
        let ips: Vec<_> = self.fixed_ips.iter().map(|f| f.ip_address).collect();
        format!(
            "(network {}, MAC {}, addresses {ips:?})",
            self.network_id, self.mac_address
        )
    }
}

/// Only `normal` ports (no SR-IOV, no direct).
fn vnic_type(attrs: &mut Attrs) -> ApiResult<()> {
    match attrs.string("binding:vnic_type")? {
        Some(v) if v != "normal" => Err(bad_attr(
            "binding:vnic_type",
            format!("'{v}' is not supported (only 'normal')"),
        )),
        _ => Ok(()),
    }
}

fn parse_pairs(items: Vec<Value>) -> ApiResult<Vec<PairRequest>> {
    let mut out = Vec::new();
    for item in items {
        let Value::Object(mut o) = item else {
            return Err(bad_attr(
                "allowed_address_pairs",
                "each pair must be a dictionary",
            ));
        };
        let ip = o
            .remove("ip_address")
            .ok_or_else(|| bad_attr("allowed_address_pairs", "ip_address is required"))?;
        let ip_address = parse_cidr("allowed_address_pairs", &ip)?;
        let mac_address = match o.remove("mac_address") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(|s| s.parse::<MacAddr>().ok())
                    .filter(MacAddr::is_valid_unicast)
                    .ok_or_else(|| {
                        bad_attr(
                            "allowed_address_pairs",
                            format!("'{v}' is not a valid MAC address"),
                        )
                    })?,
            ),
        };
        if let Some(k) = o.keys().next() {
            return Err(bad_attr(
                "allowed_address_pairs",
                format!("unrecognized key '{k}'"),
            ));
        }
        out.push((ip_address, mac_address));
    }
    Ok(out)
}

/// The pairs with the port's MAC where none was given; no pair twice.
fn resolve_pairs(pairs: &[PairRequest], port_mac: MacAddr) -> ApiResult<Vec<AddressPair>> {
    let mut out: Vec<AddressPair> = Vec::new();
    for (ip_address, mac) in pairs {
        let pair = AddressPair {
            ip_address: *ip_address,
            mac_address: mac.unwrap_or(port_mac),
        };
        if out.contains(&pair) {
            return Err(ApiError::bad_request(
                "DuplicateAddressPairInRequest",
                format!(
                    "Request contains duplicate address pair: mac_address {} ip_address {ip_address}.",
                    pair.mac_address
                ),
            ));
        }
        out.push(pair);
    }
    Ok(out)
}

/// Merges `extra_dhcp_opts` from a request into `current` (a null value removes an option).
fn merge_dhcp_opts(current: &mut Vec<ExtraDhcpOpt>, items: Vec<Value>) -> ApiResult<()> {
    for item in items {
        let name = item
            .get("opt_name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let Some(name) = name else {
            return Err(bad_attr("extra_dhcp_opts", "each option needs an opt_name"));
        };
        let ip_version = match item.get("ip_version") {
            None | Some(Value::Null) => 4,
            Some(v) if v == &json!(4) || v == &json!("4") => 4,
            Some(v) if v == &json!(6) || v == &json!("6") => 6,
            Some(v) => {
                return Err(bad_attr(
                    "extra_dhcp_opts",
                    format!("ip_version '{v}' is not 4 or 6"),
                ));
            }
        };
        if let Some(k) = item.as_object().and_then(|o| {
            o.keys()
                .find(|k| !["opt_name", "opt_value", "ip_version"].contains(&k.as_str()))
        }) {
            return Err(bad_attr(
                "extra_dhcp_opts",
                format!("unrecognized key '{k}'"),
            ));
        }
        current.retain(|o| !(o.opt_name == name && o.ip_version == ip_version));
        match item.get("opt_value") {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) => current.push(ExtraDhcpOpt {
                opt_name: name.into(),
                opt_value: v.clone(),
                ip_version,
            }),
            Some(v) => {
                return Err(bad_attr(
                    "extra_dhcp_opts",
                    format!("opt_value '{v}' is not a string"),
                ));
            }
        }
    }
    Ok(())
}

/// The groups exist, are the project's or shared with it by an RBAC policy (any, for an
/// admin), are not being deleted, and stay so until the commit.
async fn check_groups(
    api: &Api,
    ctx: &Context,
    project: &str,
    ids: &[String],
    plan: &mut Plan<'_>,
) -> ApiResult<()> {
    let mut kinds = std::collections::BTreeSet::new();
    for id in ids {
        let Some((sg, rev)) = api.db.get::<SecurityGroup>(id).await? else {
            return Err(ApiError::not_found("SecurityGroup", id));
        };
        if !ctx.is_admin
            && sg.meta.project_id != project
            && !ops_rbac::rely_on(api, plan, project, id, SHARED).await?
        {
            return Err(ApiError::not_found("SecurityGroup", id));
        }
        not_deleting(&sg)?;
        plan.txn.check::<SecurityGroup>(id, rev);
        kinds.insert(sg.stateful);
    }
    // Conntrack is on or off for the whole port (Neutron refuses the mix).
    if kinds.len() > 1 {
        return Err(ApiError::conflict(
            "SecurityGroupConflict",
            "Error Cannot apply both stateful and stateless security groups on the same port at the same time. while attempting the operation.",
        ));
    }
    Ok(())
}

fn check_port_security(p: &Port) -> ApiResult<()> {
    if !p.port_security_enabled {
        if !p.security_groups.is_empty() {
            return Err(ApiError::conflict(
                "PortSecurityPortHasSecurityGroup",
                "Port has security group associated. Cannot disable port security or ip address until security group is removed",
            ));
        }
        if !p.allowed_address_pairs.is_empty() {
            return Err(ApiError::conflict(
                "AddressPairAndPortSecurityRequired",
                "Port Security must be enabled in order to have allowed address pairs on a port.",
            ));
        }
    }
    Ok(())
}

fn mac_in_use(network: &str, mac: MacAddr) -> ApiError {
    ApiError::conflict(
        "MacAddressInUse",
        format!(
            "Unable to complete operation for network {network}. The mac address {mac} is in use."
        ),
    )
}

/// Neutron's `_enforce_device_owner_not_router_intf_or_device_id`: a non-admin's port may
/// not pose as an interface of another project's router (which would route into it).
async fn check_router_device(
    api: &Api,
    ctx: &Context,
    device_owner: &str,
    device_id: &str,
    project: &str,
) -> ApiResult<()> {
    if ctx.is_admin
        || device_id.is_empty()
        || !owner::ROUTER_INTERFACE_OWNERS.contains(&device_owner)
    {
        return Ok(());
    }
    match api.db.get::<model::Router>(device_id).await? {
        Some((r, _)) if r.meta.project_id != project => Err(ApiError::conflict(
            "DeviceIDNotOwnedByTenant",
            format!(
                "The following device_id {device_id} is not owned by your tenant or matches another tenants router."
            ),
        )),
        _ => Ok(()),
    }
}

/// The requested groups, sorted and without duplicates.
fn security_groups_from(attrs: &mut Attrs) -> ApiResult<Option<Vec<String>>> {
    let Some(mut ids) = attrs.strings("security_groups")? else {
        return Ok(None);
    };
    ids.sort();
    let n = ids.len();
    ids.dedup();
    if ids.len() != n {
        return Err(bad_attr("security_groups", "Duplicate items in the list"));
    }
    Ok(Some(ids))
}
