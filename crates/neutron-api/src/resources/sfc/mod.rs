//! networking-sfc's API (`/v2.0/sfc/...`, extensions `sfc` and `flow_classifier`): port
//! pairs, port pair groups, flow classifiers and port chains, one file each, and here
//! what they share: networking-sfc's error types, reading UUIDs, and resolving a chain's
//! path and classifiers into the chain object the hosts compile (`model::sfc`).

pub mod flow_classifiers;
pub mod port_chains;
pub mod port_pair_groups;
pub mod port_pairs;

use crate::Api;
use crate::body::{Attrs, bad_attr, show};
use crate::error::{ApiError, ApiResult};
use model::sfc::{Hop, HopPair};
use model::{FlowClassifier, PortChain, PortPair, PortPairGroup};
use serde_json::Value;

/// networking-sfc's `InvalidInput` subclasses: 400 with their own type and message.
pub(crate) fn invalid(kind: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(kind, message)
}

/// networking-sfc's `InUse` subclasses: 409.
pub(crate) fn in_use(kind: &str, message: impl Into<String>) -> ApiError {
    ApiError::conflict(kind, message)
}

fn uuid_value(key: &str, v: Value) -> ApiResult<String> {
    match v {
        Value::String(s) if model::is_uuid(&s) => Ok(s),
        v => Err(bad_attr(key, format!("'{}' is not a valid UUID", show(&v)))),
    }
}

/// A UUID attribute (`type:uuid`).
pub(crate) fn uuid(attrs: &mut Attrs, key: &str) -> ApiResult<Option<String>> {
    attrs.take(key).map(|v| uuid_value(key, v)).transpose()
}

/// A UUID attribute that may be null (`type:uuid_or_none`).
pub(crate) fn uuid_or_null(attrs: &mut Attrs, key: &str) -> ApiResult<Option<String>> {
    match attrs.take(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => uuid_value(key, v).map(Some),
    }
}

/// A required attribute (Neutron's wording when it is missing).
pub(crate) fn required<T>(v: Option<T>, key: &str) -> ApiResult<T> {
    v.ok_or_else(|| {
        ApiError::bad_request(
            "HTTPBadRequest",
            format!("Failed to parse request. Required attribute '{key}' not specified"),
        )
    })
}

/// A list of UUIDs (`type:uuid_list`; null reads as empty), without duplicates.
pub(crate) fn uuid_list(attrs: &mut Attrs, key: &str) -> ApiResult<Option<Vec<String>>> {
    let Some(items) = attrs.list(key)? else {
        return Ok(None);
    };
    let mut out: Vec<String> = Vec::new();
    for v in items {
        let id = uuid_value(key, v)?;
        if out.contains(&id) {
            return Err(bad_attr(
                key,
                format!("Duplicate items in the list: '{id}'"),
            ));
        }
        out.push(id);
    }
    Ok(Some(out))
}

/// The resolved path of a chain through `groups` (in order): each group's pairs with
/// their ports and weights. Pairs that are gone are left out.
pub(crate) async fn resolve_path(api: &Api, groups: &[PortPairGroup]) -> ApiResult<Vec<Hop>> {
    let mut path = Vec::new();
    for g in groups {
        let mut pairs = Vec::new();
        for id in &g.port_pairs {
            if let Some((pp, _)) = api.db.get::<PortPair>(id).await? {
                pairs.push(HopPair {
                    id: pp.meta.id,
                    ingress: pp.ingress,
                    egress: pp.egress,
                    weight: pp.weight,
                });
            }
        }
        path.push(Hop {
            group: g.meta.id.clone(),
            pairs,
        });
    }
    Ok(path)
}

/// The chains using group `g`, with their revisions, their paths rebuilt as `g` now is:
/// a group's change is written into its chains in the same transaction.
pub(crate) async fn chains_with_group(
    api: &Api,
    g: &PortPairGroup,
) -> ApiResult<Vec<(PortChain, nbdb::Revision)>> {
    let mut out = Vec::new();
    for id in &g.chains {
        let Some((mut chain, rev)) = api.db.get::<PortChain>(id).await? else {
            continue;
        };
        let mut groups = Vec::new();
        for gid in &chain.port_pair_groups {
            if *gid == g.meta.id {
                groups.push(g.clone());
            } else if let Some((other, _)) = api.db.get::<PortPairGroup>(gid).await? {
                groups.push(other);
            }
        }
        chain.path = resolve_path(api, &groups).await?;
        port_chains::check_ports(&chain)?;
        out.push((chain, rev));
    }
    Ok(out)
}

/// Every classifier with its revision.
pub(crate) async fn all_classifiers(api: &Api) -> ApiResult<Vec<(FlowClassifier, nbdb::Revision)>> {
    api.db.all::<FlowClassifier>().await
}
