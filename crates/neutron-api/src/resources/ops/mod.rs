//! What several resources do to each other's objects, below the handlers: addresses
//! (`ipam`), ports the system makes and removes (`ports`, `dhcp`), floating IP
//! associations (`floating`), port forwardings (`forwarding`), the `deleting` mark
//! (`deleting`), the default security group and rule claims (`groups`), routes
//! (`routes`), subnet pool allocation (`pools`), the RBAC policies other resources write
//! (`rbac`), QoS policies of ports and networks (`qos`), a rule's content (`rules`), ports in trunks (`trunks`), DNS names (`dns`), datapath keys (here). Resource files import
//! these, never each other.

pub mod deleting;
pub mod dhcp;
pub mod dns;
pub mod floating;
pub mod forwarding;
pub mod groups;
pub mod ipam;
pub mod pools;
pub mod ports;
pub mod qos;
pub mod rbac;
pub mod routes;
pub mod rules;
pub mod trunks;

use crate::Api;
use crate::alloc::key_claim;
use crate::db::Txn;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use ipam::Allocation;
use nbdb::Revision;

/// What one attempt of a write builds: its transaction, and the values it reserved in
/// memory (addresses, keys, MACs), held until the commit so that concurrent requests of
/// this server pick others.
pub struct Plan<'a> {
    pub txn: Txn,
    pub alloc: Allocation<'a>,
}

impl<'a> Plan<'a> {
    pub fn new(api: &'a Api) -> Plan<'a> {
        Plan {
            txn: Txn::new(),
            alloc: Allocation::new(api),
        }
    }

    /// Commits the transaction, then lets the reservations go.
    pub async fn commit(self, api: &Api) -> ApiResult<Revision> {
        self.txn.commit(&api.db).await
    }
}

/// Allocates a datapath key of `kind` (`network`, `port`, `router`) up to `max` for
/// object `owner` and claims it in `plan`: the lowest free one, reused after deletes.
pub async fn pick_key(
    api: &Api,
    plan: &mut Plan<'_>,
    kind: &str,
    max: u128,
    owner: &str,
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
    plan.alloc.reservation.add(r);
    plan.txn.claim(&key_claim(kind, v), owner);
    Ok(v as u32)
}

/// Gives a datapath key back (its claim released in `txn`, the lowest free one reused).
pub fn release_key(api: &Api, txn: &mut Txn, kind: &str, key: u32) {
    txn.release(&key_claim(kind, u128::from(key)));
    api.alloc.freed(&format!("key/{kind}"), u128::from(key));
}

/// The smallest MTU a network with subnets of `ip_version` may have (RFC 791, RFC 8200).
pub fn min_mtu(ip_version: u8) -> u32 {
    if ip_version == 6 { 1280 } else { 68 }
}

/// Refuses (409, as Neutron) an MTU of `network_id` too small for a subnet of `ip_version`.
pub fn check_mtu_fits(network_id: &str, mtu: u32, ip_version: u8) -> ApiResult<()> {
    let min = min_mtu(ip_version);
    if mtu < min {
        return Err(ApiError::conflict(
            "NetworkMTUTooSmall",
            format!(
                "The MTU {mtu} of network {network_id} is below the minimum of {min} that IPv{ip_version} subnets need"
            ),
        ));
    }
    Ok(())
}
