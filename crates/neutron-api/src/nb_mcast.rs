//! `PUT /nb/v1/mcast/{network}` `{"host": .., "groups": [..]}`: a host says which
//! multicast groups of a network its ports listen to (IGMP/MLD snooping); the server makes
//! that host's records (`mcast_group`, one per group) say exactly that, in one
//! transaction. A host writes only its own, and joins only networks it has a port bound
//! on (its membership draws the network's multicast traffic to it); leaving is always
//! allowed. The admin names any host.

use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::nb_auth::Principal;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use nbdb::{Expect, Op};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

/// Most groups one host may hold in one network (a VM cannot fill the store).
pub const MAX_GROUPS: usize = 1024;

pub async fn put_mcast(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(network): Path<String>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<Json<Value>> {
    let asked = body.get("host").and_then(Value::as_str);
    let host = match (&who, asked) {
        (Principal::Host(me), None) => me.clone(),
        (Principal::Host(me), Some(h)) if h == me => me.clone(),
        (Principal::Admin, Some(h)) if !h.is_empty() => h.to_string(),
        _ => {
            tracing::warn!(principal = %who, "NB write refused: multicast groups");
            return Err(ApiError::forbidden(format!(
                "{who} may not write the multicast groups of {:?}",
                asked.unwrap_or_default()
            )));
        }
    };
    let bad = || ApiError::bad_request("HTTPBadRequest", "groups must be multicast addresses");
    let groups: BTreeSet<IpAddr> = body
        .get("groups")
        .and_then(Value::as_array)
        .ok_or_else(bad)?
        .iter()
        .map(|g| g.as_str().and_then(|s| s.parse().ok()).ok_or_else(bad))
        .collect::<ApiResult<_>>()?;
    if groups.len() > MAX_GROUPS || !groups.iter().all(model::mcast::snoopable) {
        return Err(bad());
    }
    let store = &api.db.store;
    if !groups.is_empty() {
        let ports = store
            .list_topic(model::Table::Port.name(), &network, false)
            .await?;
        let bound_here = ports.iter().any(|r| {
            serde_json::from_slice::<model::Port>(&r.value)
                .is_ok_and(|p| p.binding_host_id == host && p.network_id == network)
        });
        if !bound_here {
            return Err(ApiError::conflict(
                "HTTPConflict",
                format!("host {host} has no port on network {network}"),
            ));
        }
    }
    let table = model::Table::McastGroup.name();
    let existing: Vec<String> = store
        .list(table, &model::mcast::prefix(&network, &host))
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let (puts, deletes) = model::mcast::plan(&network, &host, &groups, &existing);
    let mut ops = Vec::with_capacity(puts.len() + deletes.len());
    for g in &puts {
        let value = serde_json::to_vec(g).map_err(|e| ApiError::internal(e.to_string()))?;
        ops.push(Op::put(table, &g.id, value, Expect::Any).with_topic(Some(network.as_str())));
    }
    ops.extend(deletes.iter().map(|id| Op::delete(table, id, Expect::Any)));
    if !ops.is_empty() {
        store.commit(ops).await?;
        tracing::info!(%host, %network, joined = puts.len(), left = deletes.len(), "multicast groups");
    }
    Ok(Json(json!({"groups": groups})))
}
