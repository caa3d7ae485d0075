//! Floating IP associations as other resources see them: the claim that gives a fixed IP
//! at most one floating IP, dropping an association, and dropping every association of a
//! port that goes away, the router that reaches an external network from a subnet, and
//! the unassociated floating IPs that go with their network.

use crate::Api;
use crate::db::Txn;
use crate::error::ApiError;
use crate::error::ApiResult;
use crate::resources::touch;
use model::{FloatingIp, Router};
use nbdb::Revision;
use std::net::IpAddr;

/// The claim that gives fixed IP `ip` of `port` at most one floating IP.
pub fn assoc_claim(port: &str, ip: IpAddr) -> String {
    format!("fipassoc/{port}/{ip}")
}

/// Drops `fip`'s association (and its claim, within `txn`).
pub fn dissociate(txn: &mut Txn, fip: &mut FloatingIp) {
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

/// The floating IPs of external network `network_id` that no port uses: Neutron deletes
/// them with their network (an associated one keeps the network in use, and one with
/// port forwardings refuses to go, 409 as Neutron).
pub async fn unassociated_on(
    api: &Api,
    network_id: &str,
) -> ApiResult<Vec<(FloatingIp, Revision)>> {
    let fips: Vec<_> = api
        .db
        .all::<FloatingIp>()
        .await?
        .into_iter()
        .filter(|(f, _)| f.floating_network_id == network_id && f.port_id.is_none())
        .collect();
    match fips.iter().find(|(f, _)| !f.port_forwardings.is_empty()) {
        Some((f, _)) => Err(in_use_by_forwarding(&f.meta.id)),
        None => Ok(fips),
    }
}

/// Neutron's 409 for a floating IP that has port forwardings.
pub fn in_use_by_forwarding(fip: &str) -> ApiError {
    ApiError::conflict(
        "FipInUseByPortForwarding",
        format!("Floating IP {fip} in use by Port Forwarding resources."),
    )
}

/// The router with its gateway on external network `network_id` and an interface on
/// subnet `subnet_id`: the one a floating IP of that network reaches the subnet by.
pub async fn router_reaching(
    api: &Api,
    network_id: &str,
    subnet_id: &str,
) -> ApiResult<Option<(Router, Revision)>> {
    Ok(api.db.all::<Router>().await?.into_iter().find(|(r, _)| {
        r.external_gateway
            .as_ref()
            .is_some_and(|g| g.network_id == network_id)
            && r.interfaces.iter().any(|i| i.subnet_id == subnet_id)
    }))
}
