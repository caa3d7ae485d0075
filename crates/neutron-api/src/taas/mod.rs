//! tap-as-a-service's API (`/v2.0/taas/...`, aliases `taas` and `taas-vlan-filter`): tap
//! services (`services`: the port copies are delivered to) and tap flows (`flows`: which
//! port's traffic, which direction). The validations and error types are
//! tap-as-a-service's (`TapServiceNotFound`, `PortDoesNotBelongToTenant`, ...); as its
//! plugin does, deleting a service deletes its flows, and deleting a port deletes the
//! services on it and the flows from it.

pub mod flows;
pub mod services;

use crate::Api;
use crate::db::Txn;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use model::{TapFlow, TapService};

/// name and description, no tags. (Description comes with timestamps and revision
/// numbers here, which tap-as-a-service's resources lack: extra attributes, no others.)
pub(crate) const TAAS_STANDARD: crate::resources::Standard = crate::resources::Standard {
    name: true,
    tags: false,
    described: true,
};

/// What tap-as-a-service's status is once a host can compile the object: the store is
/// the only agent (no RPC round trip that would leave it `DOWN` first).
pub(crate) const ACTIVE: &str = "ACTIVE";

/// `NotAuthorized` subclasses (403) with tap-as-a-service's message.
pub(crate) fn not_authorized(kind: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, kind, message)
}

/// The claim of a tap service's tunnel key (a segmentation id of its network's type).
pub(crate) fn key_claim(net: &model::Network, key: u32) -> String {
    crate::resources::networks::seg_claim(net.network_type, None, Some(key))
}

/// Deletes within `txn` the flows into tap service `id` (tap-as-a-service's cascade).
pub(crate) async fn delete_flows_into(api: &Api, id: &str, txn: &mut Txn) -> ApiResult<()> {
    for (f, rev) in api.db.all::<TapFlow>().await? {
        if f.tap_service_id == id {
            txn.delete(&f, rev);
        }
    }
    Ok(())
}

/// What goes with a deleted port (tap-as-a-service's `handle_delete_port`): the tap
/// services on it with their flows, and the flows from it.
pub async fn forget_port(api: &Api, port: &str, txn: &mut Txn) -> ApiResult<()> {
    let services: Vec<_> = api
        .db
        .all::<TapService>()
        .await?
        .into_iter()
        .filter(|(s, _)| s.port_id == port)
        .collect();
    let gone: Vec<&str> = services.iter().map(|(s, _)| s.meta.id.as_str()).collect();
    for (f, rev) in api.db.all::<TapFlow>().await? {
        if f.source_port == port || gone.contains(&f.tap_service_id.as_str()) {
            txn.delete(&f, rev);
        }
    }
    for (s, rev) in &services {
        services::release(api, txn, s).await?;
        txn.delete(s, *rev);
    }
    Ok(())
}
