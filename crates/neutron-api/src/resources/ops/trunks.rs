//! Ports in trunks, as other resources see them: each port of a trunk (parent or
//! subport) holds the claim `trunkport/<port>` naming its trunk, so a port is in one
//! trunk at most, and a port delete refuses while it is in one (as Neutron's
//! `PortInUseAsTrunkParent`, `PortInUseAsSubPort`), race-free.

use crate::Api;
use crate::db::Txn;
use crate::error::{ApiError, ApiResult};
use model::Trunk;

/// The claim a port in a trunk holds.
pub fn port_claim(port_id: &str) -> String {
    format!("trunkport/{port_id}")
}

/// Refuses (409) to delete a port that is in a trunk; otherwise makes `txn` commit only
/// if no trunk takes it meanwhile.
pub async fn check_port_free(api: &Api, txn: &mut Txn, port_id: &str) -> ApiResult<()> {
    let claim = port_claim(port_id);
    if let Some(trunk_id) = api.db.claim_owner(&claim).await? {
        let parent = api
            .db
            .get::<Trunk>(&trunk_id)
            .await?
            .is_some_and(|(t, _)| t.port_id == port_id);
        return Err(if parent {
            ApiError::conflict(
                "PortInUseAsTrunkParent",
                format!("Port {port_id} is currently a parent port for trunk {trunk_id}."),
            )
        } else {
            ApiError::conflict(
                "PortInUseAsSubPort",
                format!("Port {port_id} is currently a subport for trunk {trunk_id}."),
            )
        });
    }
    txn.check_unclaimed(&claim);
    Ok(())
}
