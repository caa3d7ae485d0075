//! Ports the system makes and removes for other resources: router interfaces and
//! gateways, floating IP ports, DHCP ports, each host's SNAT port; and removing any port
//! with what it holds (addresses, MAC, key).

use super::ipam::{self, IpRequest, network_subnets};
use super::{Plan, deleting, pick_key, release_key};
use crate::Api;
use crate::alloc::mac_claim;
use crate::db::{Txn, retrying};
use crate::error::{ApiError, ApiResult};
use model::{MacAddr, Network, Port, PortStatus, Subnet, owner};
use nbdb::Revision;

/// Largest datapath key of a port (reg6/reg7 are 32 bits; the top bit is kept free).
pub const MAX_KEY: u128 = 0x7fff_ffff;

/// Which addresses a system port gets.
pub enum Addresses<'s> {
    /// As asked (`None`: Neutron's defaults); a port left with none is refused.
    Requested(Option<Vec<IpRequest>>),
    /// Neutron's defaults, possibly none (a network with no subnet yet).
    Defaults,
    /// The next free address of one subnet, which may not be stored yet.
    On(&'s Subnet),
}

/// What a port being created by the system needs.
pub struct SystemPort<'s> {
    pub network: &'s Network,
    pub project_id: String,
    pub device_owner: &'static str,
    pub device_id: String,
    pub addresses: Addresses<'s>,
}

/// Builds a system-owned port (active, no port security) with its addresses, MAC and key
/// claimed in `plan`. The caller writes it (`plan.txn.create`), after any change.
pub async fn build_system_port(
    api: &Api,
    plan: &mut Plan<'_>,
    sp: SystemPort<'_>,
) -> ApiResult<Port> {
    let id = model::new_id();
    let network = sp.network;
    let mac = pick_mac(api, plan, &id).await?;
    let fixed_ips = match sp.addresses {
        Addresses::On(subnet) => {
            let f = plan
                .alloc
                .automatic(&mut plan.txn, subnet, mac, &id)
                .await?;
            vec![f.ok_or_else(|| ipam::exhausted(&network.meta.id))?]
        }
        Addresses::Requested(requests) => {
            let subnets = network_subnets(api, network).await?;
            let ips = (plan.alloc)
                .assign(&mut plan.txn, network, &subnets, (&id, mac), requests, &[])
                .await?;
            if ips.is_empty() {
                return Err(ipam::exhausted(&network.meta.id));
            }
            ips
        }
        Addresses::Defaults => {
            let subnets = network_subnets(api, network).await?;
            (plan.alloc)
                .assign(&mut plan.txn, network, &subnets, (&id, mac), None, &[])
                .await?
        }
    };
    let unique_key = pick_key(api, plan, "port", MAX_KEY, &id).await?;
    let now = model::time::now();
    Ok(Port {
        meta: model::Meta {
            id,
            project_id: sp.project_id,
            created_at: now.clone(),
            updated_at: now,
            ..Default::default()
        },
        network_id: network.meta.id.clone(),
        admin_state_up: true,
        mac_address: mac,
        fixed_ips,
        security_groups: vec![],
        allowed_address_pairs: vec![],
        port_security_enabled: false,
        device_owner: sp.device_owner.into(),
        device_id: sp.device_id,
        binding_host_id: String::new(),
        binding_profile: Default::default(),
        binding_vnic_type: "normal".into(),
        binding_failed: false,
        extra_dhcp_opts: vec![],
        status: PortStatus::Active,
        unique_key,
        dns_domain: Default::default(),
        instance_metadata: None,
        dns_name: Default::default(),
        qos_policy_id: None,
    })
}

/// A free MAC under the configured base for port `owner`, claimed in `plan`.
pub async fn pick_mac(api: &Api, plan: &mut Plan<'_>, owner: &str) -> ApiResult<MacAddr> {
    let (mac, r) = api
        .alloc
        .pick_mac(&api.db, api.config.mac_base)
        .await?
        .ok_or_else(|| ApiError::retry("mac"))?;
    plan.alloc.reservation.add(r);
    plan.txn.claim(&mac_claim(&mac), owner);
    Ok(mac)
}

/// Removes a port and its claims within `txn`. Floating IPs associated with it are the
/// caller's (`floating::disassociate_port`).
pub fn remove_port(api: &Api, txn: &mut Txn, p: &Port, rev: Revision) {
    txn.delete(p, rev);
    release_claims(api, txn, p);
}

/// Releases what a port being deleted holds: its addresses, MAC and key.
pub fn release_claims(api: &Api, txn: &mut Txn, p: &Port) {
    txn.release(&mac_claim(&p.mac_address));
    release_key(api, txn, "port", p.unique_key);
    ipam::release(api, txn, &p.fixed_ips);
}

/// Removes the port `id` if it is still there (a gateway's, an interface's, a floating
/// IP's).
pub async fn remove_port_by_id(api: &Api, txn: &mut Txn, id: &str) -> ApiResult<()> {
    if let Some((p, rev)) = api.db.get::<Port>(id).await? {
        remove_port(api, txn, &p, rev);
        // A router interface leaves its firewall group with it, and its taps go.
        crate::fwaas::groups::forget_port(api, id, txn).await?;
        crate::taas::forget_port(api, id, txn).await?;
    }
    Ok(())
}

/// This host's SNAT address port on external network `network_id`: the one it has, or a
/// new one with the network's default addresses, bound to `host`, with no project (a
/// system port, as router gateways). Returns whether it was made.
pub async fn ensure_chassis_snat(
    api: &Api,
    network_id: &str,
    host: &str,
) -> ApiResult<(Port, bool)> {
    let (network, _) = api.db.fetch::<Network>(network_id).await?;
    if !network.external {
        return Err(ApiError::invalid(format!(
            "network {network_id} is not an external network"
        )));
    }
    let mine = |p: &Port| {
        p.network_id == network_id && p.device_owner == owner::CHASSIS_SNAT && p.device_id == host
    };
    if let Some((p, _)) = api
        .db
        .all::<Port>()
        .await?
        .into_iter()
        .find(|(p, _)| mine(p))
    {
        return Ok((p, false));
    }
    let p = retrying(|| async {
        let (network, nrev) = api.db.fetch::<Network>(network_id).await?;
        deleting::not_deleting(&network)?;
        let mut plan = Plan::new(api);
        plan.txn.check::<Network>(network_id, nrev);
        let sp = SystemPort {
            network: &network,
            project_id: String::new(),
            device_owner: owner::CHASSIS_SNAT,
            device_id: host.to_string(),
            addresses: Addresses::Defaults,
        };
        let mut p = build_system_port(api, &mut plan, sp).await?;
        // Like a port the host asked for: named, bound, down until its flows are in.
        p.meta.name = format!("snat-{host}");
        p.binding_host_id = host.to_string();
        p.port_security_enabled = network.port_security_enabled;
        p.status = PortStatus::Down;
        plan.txn.create(&p);
        plan.commit(api).await?;
        Ok(p)
    })
    .await?;
    tracing::info!(port = %p.meta.id, network = %network_id, %host, ips = ?p.fixed_ips.iter().map(|f| f.ip_address).collect::<Vec<_>>(), "SNAT port created");
    Ok((p, true))
}
