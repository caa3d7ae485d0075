//! Floating IP port forwardings as other resources see them: the claims that keep them
//! unique, the shared claim that keeps a fixed IP either forwarded to or associated with
//! a floating IP (never both), and dropping the forwardings of a port or of addresses
//! that go away.

use crate::Api;
use crate::db::Txn;
use crate::error::{ApiError, ApiResult};
use crate::resources::touch;
use model::{FloatingIp, PfProtocol, PortForwarding};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// The claim that gives a floating IP's `external_port`/`protocol` one forwarding.
pub fn external_claim(fip: &str, protocol: PfProtocol, port: u16) -> String {
    format!("pfext/{fip}/{}/{port}", protocol.as_str())
}

/// The claim that gives an internal address, port number and protocol one forwarding.
pub fn internal_claim(port_id: &str, ip: IpAddr, protocol: PfProtocol, port: u16) -> String {
    format!("pfint/{port_id}/{ip}/{}/{port}", protocol.as_str())
}

/// The claim held while fixed IP `ip` of `port_id` has forwardings: rewritten by every
/// change of them, checked absent by a floating IP association (and the association's
/// own claim checked absent by a new forwarding), so the two never race past each other.
pub fn address_claim(port_id: &str, ip: IpAddr) -> String {
    format!("pfaddr/{port_id}/{ip}")
}

/// Refuses to associate a floating IP with `ip` of `port_id` while it has forwardings
/// (Neutron refuses it for distributed routers, which every router is here).
pub async fn check_not_forwarded(
    api: &Api,
    txn: &mut Txn,
    port_id: &str,
    ip: IpAddr,
) -> ApiResult<()> {
    let claim = address_claim(port_id, ip);
    if api.db.claim_revision(&claim).await?.is_some() {
        return Err(ApiError::bad_request(
            "PortHasPortForwarding",
            format!(
                "Cannot associate floating IP to port {port_id} because it already has a port forwarding defined."
            ),
        ));
    }
    txn.check_unclaimed(&claim);
    Ok(())
}

/// Takes the unique claims of forwarding `pf` of floating IP `fip`, of its `external`
/// and `internal` ends (a duplicate is Neutron's 400).
pub fn claim(txn: &mut Txn, fip: &str, pf: &PortForwarding, external: bool, internal: bool) {
    if external {
        txn.claim_requested(
            &external_claim(fip, pf.protocol, pf.external_port),
            &pf.id,
            duplicate(&format!(
                "{{'floatingip_id': '{fip}', 'external_port': {}}}",
                pf.external_port
            )),
        );
    }
    if internal {
        let int = internal_claim(
            &pf.internal_port_id,
            pf.internal_ip_address,
            pf.protocol,
            pf.internal_port,
        );
        txn.claim_requested(
            &int,
            &pf.id,
            duplicate(&format!(
                "{{'internal_port_id': '{}', 'internal_ip_address': '{}', 'internal_port': {}}}",
                pf.internal_port_id, pf.internal_ip_address, pf.internal_port
            )),
        );
    }
}

/// Releases the unique claims of the `external` and `internal` ends of forwarding `pf`
/// of floating IP `fip`.
pub fn release(txn: &mut Txn, fip: &str, pf: &PortForwarding, external: bool, internal: bool) {
    if external {
        txn.release(&external_claim(fip, pf.protocol, pf.external_port));
    }
    if internal {
        txn.release(&internal_claim(
            &pf.internal_port_id,
            pf.internal_ip_address,
            pf.protocol,
            pf.internal_port,
        ));
    }
}

/// Neutron's answer to a forwarding that repeats another's external or internal end.
pub fn duplicate(values: &str) -> ApiError {
    ApiError::bad_request(
        "BadRequest",
        format!(
            "Bad port_forwarding request: A duplicate port forwarding entry with same attributes already exists, conflicting values are {values}."
        ),
    )
}

/// Rewrites the address claims of `addrs` (internal port, IP) to match the forwardings
/// there will be once `changed` (new versions of floating IPs, in this transaction) are
/// written: held while any forwarding uses the address, removed after the last.
pub async fn sync_address_claims(
    api: &Api,
    txn: &mut Txn,
    changed: &[&FloatingIp],
    addrs: &BTreeSet<(String, IpAddr)>,
) -> ApiResult<()> {
    if addrs.is_empty() {
        return Ok(());
    }
    let stored = api.db.all::<FloatingIp>().await?;
    let after = stored
        .iter()
        .map(|(f, _)| f)
        .filter(|f| !changed.iter().any(|c| c.meta.id == f.meta.id))
        .chain(changed.iter().copied());
    let used: BTreeSet<(&str, IpAddr)> = after
        .flat_map(|f| f.port_forwardings.iter())
        .map(|pf| (pf.internal_port_id.as_str(), pf.internal_ip_address))
        .collect();
    for (port, ip) in addrs {
        let claim = address_claim(port, *ip);
        let rev = api.db.claim_revision(&claim).await?;
        txn.shared_claim(&claim, port, rev, used.contains(&(port.as_str(), *ip)));
    }
    Ok(())
}

/// Drops (within `txn`) the forwardings to port `port_id` whose address is not in
/// `kept`: the port goes away (`kept` empty) or loses addresses, as Neutron does. A
/// floating IP left without forwardings no longer has a router.
pub async fn drop_for_port(
    api: &Api,
    txn: &mut Txn,
    port_id: &str,
    addrs: &[IpAddr],
    kept: &[IpAddr],
) -> ApiResult<()> {
    let mut changed = Vec::new();
    for (mut f, rev) in api.db.all::<FloatingIp>().await? {
        let (gone, stay): (Vec<_>, Vec<_>) = f.port_forwardings.drain(..).partition(|pf| {
            pf.internal_port_id == port_id && !kept.contains(&pf.internal_ip_address)
        });
        f.port_forwardings = stay;
        if gone.is_empty() {
            continue;
        }
        for pf in &gone {
            release(txn, &f.meta.id, pf, true, true);
        }
        if f.port_forwardings.is_empty() {
            f.router_id = None;
        }
        touch(&mut f.meta);
        txn.update(&f, rev);
        changed.push(f);
    }
    // Every dropped address, forwarded or not: a forwarding made meanwhile conflicts.
    let affected: BTreeSet<(String, IpAddr)> = addrs
        .iter()
        .filter(|ip| ip.is_ipv4() && !kept.contains(ip))
        .map(|ip| (port_id.to_string(), *ip))
        .collect();
    let changed: Vec<&FloatingIp> = changed.iter().collect();
    sync_address_claims(api, txn, &changed, &affected).await
}
