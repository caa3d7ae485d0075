//! The nodes below a load balancer: listeners, pools, members and health monitors, each
//! read from and written into its balancer's one NB object.

pub mod hm;
pub mod listener;
pub mod member;
pub mod pool;

use super::render::{fields, matches, select};
use super::{FaultResult, all, may_read};
use crate::Api;
use crate::context::Context;
use axum::Json;
use model::LoadBalancer;
use serde_json::{Map, Value, json};

/// A listing of `collection`: the nodes `nodes` finds in each balancer `ctx` may read
/// (each with its creation time, the listing's order), filtered by the query.
pub async fn list_nodes<F>(
    api: &Api,
    ctx: &Context,
    q: &[(String, String)],
    collection: &str,
    nodes: F,
) -> FaultResult<Json<Value>>
where
    F: Fn(&LoadBalancer) -> Vec<(String, Map<String, Value>)>,
{
    let f = fields(q);
    let mut out = Vec::new();
    for (lb, _) in all(api).await? {
        if may_read(ctx, &lb.meta.project_id).is_err() {
            continue;
        }
        for (at, m) in nodes(&lb) {
            if matches(&m, q) {
                out.push((at, select(m, &f)));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let items: Vec<Value> = out.into_iter().map(|(_, v)| v).collect();
    Ok(Json(json!({
        collection: items,
        format!("{collection}_links"): [],
    })))
}
