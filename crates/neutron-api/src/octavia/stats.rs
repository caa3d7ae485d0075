//! `/stats` of a balancer and of a listener: the sum of what every live controller
//! counted for the listeners (`lb_stats` in its heartbeat, counted every
//! `--lb-stats-interval` seconds). A host whose controller is gone takes its counts with
//! it, and a host's counts start again when its flows are installed again (a restart
//! keeps them: flows survive it).

use crate::Api;
use model::agent::{self, Heartbeat};
use model::lb_stats::{ByListener, Stats, sum};
use nbdb::StoreError;
use serde_json::{Value, json};

/// Every live controller's counts.
async fn reported(api: &Api) -> Result<Vec<ByListener>, StoreError> {
    Ok(api
        .db
        .store
        .leases(agent::PREFIX)
        .await?
        .into_iter()
        .filter(|l| l.live)
        .filter_map(|l| serde_json::from_slice::<Heartbeat>(&l.value).ok())
        .filter(|h| h.report.binary == agent::CONTROLLER_BINARY)
        .map(|h| h.report.lb_stats)
        .collect())
}

/// Octavia's `{"stats": …}` of the listeners `ids`, summed over the hosts.
pub async fn of(api: &Api, ids: &[&str]) -> Result<Value, StoreError> {
    let hosts = reported(api).await?;
    Ok(render(sum(&hosts, ids)))
}

fn render(s: Stats) -> Value {
    json!({"stats": {
        "bytes_in": s.bytes_in,
        "bytes_out": s.bytes_out,
        "active_connections": s.active_connections,
        "total_connections": s.total_connections,
        "request_errors": s.request_errors,
    }})
}
