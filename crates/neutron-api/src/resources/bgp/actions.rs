//! A speaker's actions: `add_bgp_peer`/`remove_bgp_peer` (`{"bgp_peer_id": …}`),
//! `add_gateway_network`/`remove_gateway_network` (`{"network_id": …}`) and
//! `get_advertised_routes`. Answers and errors as upstream's plugin gives them.

use super::super::{touch, writable};
use crate::Api;
use crate::body::JsonBody;
use crate::context::Context;
use crate::db::{Txn, retrying};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use model::bgp::{World, advertised_routes};
use model::{BgpPeer, BgpSpeaker, Chassis, FloatingIp, Network, Port, Router, Subnet, SubnetPool};
use nbdb::Revision;
use serde_json::{Value, json};
use std::sync::Arc;

/// The id named by `key` in an action's body (upstream's `_get_id_for`).
fn id_in(body: &Value, key: &str) -> ApiResult<String> {
    let bad = |msg: String| {
        ApiError::bad_request("BadRequest", format!("Bad bgp-speaker request: {msg}."))
    };
    match body.get(key) {
        None => Err(bad(format!("{key} must be specified"))),
        Some(Value::String(s)) if model::is_uuid(s) => Ok(s.clone()),
        Some(v) => Err(bad(format!(
            "'{}' is not a valid UUID",
            crate::body::show(v)
        ))),
    }
}

/// Writes the changed speaker in `txn` (which may hold checks of what it now names).
async fn save(api: &Api, mut s: BgpSpeaker, rev: Revision, mut txn: Txn) -> ApiResult<()> {
    touch(&mut s.meta);
    txn.update(&s, rev);
    txn.commit(&api.db).await?;
    Ok(())
}

fn not_associated(kind: &str, what: &str, id: &str, speaker: &str) -> ApiError {
    let message = match kind {
        "BgpSpeakerPeerNotAssociated" => {
            format!("BGP peer {id} is not associated with BGP speaker {speaker}.")
        }
        _ => format!("{what} {id} is not associated with BGP speaker {speaker}."),
    };
    ApiError::new(StatusCode::NOT_FOUND, kind, message)
}

/// `PUT /v2.0/bgp-speakers/{id}/add_bgp_peer`: one peer address per speaker
/// (`DuplicateBgpPeerIpException`).
pub async fn add_bgp_peer(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let peer_id = id_in(&body, "bgp_peer_id")?;
    retrying(|| async {
        let (mut s, rev) = writable::<BgpSpeaker>(&api, &ctx, &id, "add_bgp_peer", &[]).await?;
        let Some((peer, peer_rev)) = api.db.get::<BgpPeer>(&peer_id).await? else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "BgpPeerNotFound",
                format!("BGP peer {peer_id} could not be found."),
            ));
        };
        if peer.deleting {
            return Err(ApiError::not_found("BgpPeer", &peer_id));
        }
        for other in &s.peers {
            let Some((o, _)) = api.db.get::<BgpPeer>(other).await? else {
                continue;
            };
            if o.peer_ip == peer.peer_ip {
                return Err(ApiError::conflict(
                    "DuplicateBgpPeerIpException",
                    format!(
                        "BGP Speaker {id} is already configured to peer with a BGP Peer at {}, it cannot peer with BGP Peer {peer_id}.",
                        peer.peer_ip
                    ),
                ));
            }
        }
        s.peers.push(peer_id.clone());
        let mut txn = Txn::new();
        txn.check::<BgpPeer>(&peer_id, peer_rev);
        save(&api, s, rev, txn).await
    })
    .await?;
    tracing::info!(%id, peer = %peer_id, "bgp_speaker add_bgp_peer");
    Ok(Json(json!({"bgp_peer_id": peer_id})))
}

/// `PUT /v2.0/bgp-speakers/{id}/remove_bgp_peer`. Upstream's plugin returns nothing, so
/// the answer is `null`.
pub async fn remove_bgp_peer(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let peer_id = id_in(&body, "bgp_peer_id")?;
    retrying(|| async {
        let (mut s, rev) = writable::<BgpSpeaker>(&api, &ctx, &id, "remove_bgp_peer", &[]).await?;
        let Some(i) = s.peers.iter().position(|p| p == &peer_id) else {
            return Err(not_associated(
                "BgpSpeakerPeerNotAssociated",
                "BGP peer",
                &peer_id,
                &id,
            ));
        };
        s.peers.remove(i);
        save(&api, s, rev, Txn::new()).await
    })
    .await?;
    tracing::info!(%id, peer = %peer_id, "bgp_speaker remove_bgp_peer");
    Ok(Json(Value::Null))
}

/// `PUT /v2.0/bgp-speakers/{id}/add_gateway_network`.
pub async fn add_gateway_network(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let net_id = id_in(&body, "network_id")?;
    retrying(|| async {
        let (mut s, rev) =
            writable::<BgpSpeaker>(&api, &ctx, &id, "add_gateway_network", &[]).await?;
        let Some((_, net_rev)) = api.db.get::<Network>(&net_id).await? else {
            return Err(ApiError::not_found("Network", &net_id));
        };
        if s.networks.contains(&net_id) {
            return Err(ApiError::conflict(
                "BgpSpeakerNetworkBindingError",
                format!("Network {net_id} is already bound to BgpSpeaker {id}."),
            ));
        }
        s.networks.push(net_id.clone());
        let mut txn = Txn::new();
        txn.check::<Network>(&net_id, net_rev);
        save(&api, s, rev, txn).await
    })
    .await?;
    tracing::info!(%id, network = %net_id, "bgp_speaker add_gateway_network");
    Ok(Json(json!({"network_id": net_id})))
}

/// `PUT /v2.0/bgp-speakers/{id}/remove_gateway_network`.
pub async fn remove_gateway_network(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let net_id = id_in(&body, "network_id")?;
    retrying(|| async {
        let (mut s, rev) =
            writable::<BgpSpeaker>(&api, &ctx, &id, "remove_gateway_network", &[]).await?;
        let Some(i) = s.networks.iter().position(|n| n == &net_id) else {
            return Err(not_associated(
                "BgpSpeakerNetworkNotAssociated",
                "Network",
                &net_id,
                &id,
            ));
        };
        s.networks.remove(i);
        save(&api, s, rev, Txn::new()).await
    })
    .await?;
    tracing::info!(%id, network = %net_id, "bgp_speaker remove_gateway_network");
    Ok(Json(json!({"network_id": net_id})))
}

/// `GET /v2.0/bgp-speakers/{id}/get_advertised_routes`:
/// `{"advertised_routes": [{"destination", "next_hop"}]}`.
pub async fn get_advertised_routes(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (s, _) = writable::<BgpSpeaker>(&api, &ctx, &id, "get_advertised_routes", &[]).await?;
    let routes = routes_of(&api, &s).await?;
    let list: Vec<Value> = routes
        .iter()
        .map(|(d, n)| json!({"destination": d.to_string(), "next_hop": n.to_string()}))
        .collect();
    Ok(Json(json!({"advertised_routes": list})))
}

/// Reads what the routes depend on and computes them.
async fn routes_of(
    api: &Api,
    s: &BgpSpeaker,
) -> ApiResult<std::collections::BTreeMap<ipnet::IpNet, std::net::IpAddr>> {
    async fn values<T: model::NbObject>(api: &Api) -> ApiResult<Vec<T>> {
        Ok(api
            .db
            .all::<T>()
            .await?
            .into_iter()
            .map(|(o, _)| o)
            .collect())
    }
    let subnets: Vec<Subnet> = values(api).await?;
    let pools: Vec<SubnetPool> = values(api).await?;
    let routers: Vec<Router> = values(api).await?;
    let mut fips: Vec<FloatingIp> = values(api).await?;
    fips.retain(|f| s.networks.contains(&f.floating_network_id));
    let mut ports = Vec::new();
    for f in &fips {
        let port = f.port_id.as_deref().or_else(|| {
            f.port_forwardings
                .first()
                .map(|p| p.internal_port_id.as_str())
        });
        if let Some(p) = port
            && let Some((p, _)) = api.db.get::<Port>(p).await?
        {
            ports.push(p);
        }
    }
    let chassis: Vec<Chassis> = api
        .db
        .store
        .list(model::Table::Chassis.name(), "")
        .await?
        .into_iter()
        .filter_map(|r| serde_json::from_slice(&r.value).ok())
        .collect();
    let dead_hosts: Vec<String> = crate::agents::all(api)
        .await?
        .into_iter()
        .filter(|a| !a.alive && a.heartbeat.report.binary == model::agent::CONTROLLER_BINARY)
        .map(|a| a.heartbeat.report.host)
        .collect();
    Ok(advertised_routes(
        s,
        &World {
            subnets: &subnets,
            pools: &pools,
            routers: &routers,
            floating_ips: &fips,
            ports: &ports,
            chassis: &chassis,
            dead_hosts: &dead_hosts,
        },
    ))
}
