//! Floating IP associations as other resources see them: the claim that gives a fixed IP
//! at most one floating IP, dropping an association, and dropping every association of a
//! port that goes away, and the unassociated floating IPs that go with their network.

use crate::Api;
use crate::db::Txn;
use crate::error::ApiResult;
use crate::resources::touch;
use model::FloatingIp;
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
/// them with their network (an associated one keeps the network in use).
pub async fn unassociated_on(
    api: &Api,
    network_id: &str,
) -> ApiResult<Vec<(FloatingIp, Revision)>> {
    Ok(api
        .db
        .all::<FloatingIp>()
        .await?
        .into_iter()
        .filter(|(f, _)| f.floating_network_id == network_id && f.port_id.is_none())
        .collect())
}
