//! The Octavia v2 API (`load-balancer` service, issue 23): the L4 subset a distributed
//! provider honours, on its own listener, with Octavia's error bodies
//! (`{"faultcode", "faultstring", "debuginfo"}`) and status codes. A load balancer and
//! its whole tree are one NB object (`model::LoadBalancer`); a child (listener, pool,
//! member, health monitor) is found by scanning the balancers, and every change is one
//! compare-and-swap write of its balancer.

pub mod children;
pub mod loadbalancers;
pub mod realized;
pub mod render;
pub mod stats;
pub mod wire;

use crate::Api;
use crate::context::Context;
use crate::error::ApiError;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use model::LoadBalancer;
use model::lb::provisioning;
use nbdb::{Expect, Op, Revision, StoreError};
use serde_json::Value;
use std::sync::Arc;

/// The most members of a pool: OVS select groups take up to 256 buckets, one per member.
pub const MAX_MEMBERS: usize = 256;

/// An Octavia API failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub status: StatusCode,
    pub message: String,
    /// A lost compare-and-swap: the change is tried again.
    retry: bool,
}

pub type FaultResult<T> = Result<T, Fault>;

impl Fault {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Fault {
        Fault {
            status,
            message: message.into(),
            retry: false,
        }
    }

    /// `NotFound`: "`<Resource> <id> not found.`" (404).
    pub fn not_found(resource: &str, id: &str) -> Fault {
        Fault::new(StatusCode::NOT_FOUND, format!("{resource} {id} not found."))
    }

    /// `ValidationException` (400).
    pub fn validation(detail: impl std::fmt::Display) -> Fault {
        Fault::new(
            StatusCode::BAD_REQUEST,
            format!("Validation failure: {detail}"),
        )
    }

    /// `ProviderUnsupportedOptionError` (501), as Octavia answers what a provider driver
    /// refuses.
    pub fn unsupported(what: impl std::fmt::Display) -> Fault {
        Fault::new(
            StatusCode::NOT_IMPLEMENTED,
            format!(
                "Provider '{}' does not support a requested option: {what}",
                model::lb::PROVIDER
            ),
        )
    }

    /// `PolicyForbidden` (403).
    pub fn forbidden() -> Fault {
        Fault::new(
            StatusCode::FORBIDDEN,
            "Policy does not allow this request to be performed.",
        )
    }
}

impl From<ApiError> for Fault {
    fn from(e: ApiError) -> Fault {
        Fault {
            status: e.status,
            message: e.message,
            retry: e.retry,
        }
    }
}

impl From<StoreError> for Fault {
    fn from(e: StoreError) -> Fault {
        ApiError::from(e).into()
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        let code = if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), "{}", self.message);
            "Server"
        } else {
            tracing::info!(status = self.status.as_u16(), "{}", self.message);
            "Client"
        };
        let body = serde_json::json!({
            "faultcode": code, "faultstring": self.message, "debuginfo": null
        });
        (self.status, axum::Json(body)).into_response()
    }
}

/// May `ctx` read objects of `project`? (Octavia's default policy: a reader of the
/// project, or an admin.)
pub fn may_read(ctx: &Context, project: &str) -> FaultResult<()> {
    if ctx.is_admin || (ctx.is_reader() && ctx.project_id == project) {
        Ok(())
    } else {
        Err(Fault::forbidden())
    }
}

/// May `ctx` change objects of `project`? (a member of the project, or an admin).
pub fn may_write(ctx: &Context, project: &str) -> FaultResult<()> {
    if ctx.is_admin || (ctx.is_member() && ctx.project_id == project) {
        Ok(())
    } else {
        Err(Fault::forbidden())
    }
}

/// Every load balancer with its revision, as it reads now ([`realized`]).
pub async fn all(api: &Api) -> FaultResult<Vec<(LoadBalancer, Revision)>> {
    Ok(realized::shown(api, api.db.all::<LoadBalancer>().await?).await?)
}

/// The balancer whose tree holds `id` (a listener, pool, member or monitor), as it reads
/// now, or the Octavia 404 for `resource`.
pub async fn holder(api: &Api, id: &str, resource: &str) -> FaultResult<(LoadBalancer, Revision)> {
    let found = stored(api, id, resource).await?;
    Ok(realized::shown(api, vec![found]).await?.remove(0))
}

/// The balancer whose tree holds `id` as stored (its nodes' marks of the last change).
async fn stored(api: &Api, id: &str, resource: &str) -> FaultResult<(LoadBalancer, Revision)> {
    if let Some(found) = api.db.get::<LoadBalancer>(id).await? {
        return Ok(found);
    }
    api.db
        .all::<LoadBalancer>()
        .await?
        .into_iter()
        .find(|(lb, _)| lb.holds(id))
        .ok_or_else(|| Fault::not_found(resource, id))
}

/// Changes the balancer holding `id` with `f`: the caller must be allowed to write its
/// project, and the change is one compare-and-swap write (retried when another change
/// won the race). The balancer and node `id` read PENDING_UPDATE until hosts realize it
/// ([`realized`]); unlike Octavia, a change while PENDING_* is not refused (409): each is
/// one write of the whole tree, with nothing in flight to protect. `f` returns the
/// answer's body, taken from the changed tree (ACTIVE when no host needs the change).
pub async fn change<F>(
    api: &Api,
    ctx: &Context,
    id: &str,
    resource: &str,
    mut f: F,
) -> FaultResult<Value>
where
    F: FnMut(&mut LoadBalancer) -> FaultResult<Value>,
{
    for _ in 0..20 {
        let (mut lb, rev) = stored(api, id, resource).await?;
        may_write(ctx, &lb.meta.project_id)?;
        realized::mark_update(&mut lb, id);
        let mut answer = f(&mut lb)?;
        lb.roll_up();
        lb.meta.touch();
        match save(api, &lb, rev).await {
            Err(e) if e.retry => continue,
            other => other?,
        }
        if !realized::will_pend(api, &lb.vip_network_id).await? {
            realized::settle_json(&mut answer);
        }
        return Ok(answer);
    }
    Err(ApiError::retry(&format!("load balancer {id}")).into())
}

/// Writes `lb` if it is still at `rev`.
pub async fn save(api: &Api, lb: &LoadBalancer, rev: Revision) -> FaultResult<()> {
    Ok(store_put(api, lb, rev).await?)
}

/// The store write of [`save`] (also the hosts' health writes'): `lb` in its VIP
/// network's topic, if it is still at `rev`.
pub async fn store_put(api: &Api, lb: &LoadBalancer, rev: Revision) -> Result<(), StoreError> {
    let value = serde_json::to_vec(lb).map_err(|e| StoreError::Invalid(e.to_string()))?;
    api.db
        .store
        .commit(vec![
            Op::put(
                model::Table::LoadBalancer.name(),
                &lb.meta.id,
                value,
                Expect::Revision(rev),
            )
            .with_topic(Some(&lb.vip_network_id)),
        ])
        .await?;
    Ok(())
}

/// A new node's status: PENDING_CREATE until realized ([`realized`]).
pub fn created_status(operating: &str) -> model::lb::Status {
    model::lb::Status {
        provisioning_status: provisioning::PENDING_CREATE.into(),
        operating_status: operating.into(),
    }
}

/// Octavia's routes: the API under `/v2` and, as Octavia serves it too, `/v2.0` (where
/// python-octaviaclient sends every request).
pub fn router(api: Arc<Api>) -> Router {
    let mut r = Router::new()
        .route("/", get(loadbalancers::versions))
        .route("/v2", get(loadbalancers::versions))
        .route("/v2.0", get(loadbalancers::versions));
    for base in ["/v2", "/v2.0"] {
        r = lbaas(r, base);
    }
    let r = r.fallback(loadbalancers::not_found).with_state(api);
    crate::limited(r)
}

/// The `lbaas` collections under `base`.
fn lbaas(r: Router<Arc<Api>>, base: &str) -> Router<Arc<Api>> {
    use children::{hm, listener, member, pool};
    use loadbalancers as lbs;
    r.route(&format!("{base}/lbaas/providers"), get(lbs::providers))
        .route(
            &format!("{base}/lbaas/providers/{{name}}/flavor_capabilities"),
            get(lbs::capabilities),
        )
        .route(
            &format!("{base}/lbaas/providers/{{name}}/availability_zone_capabilities"),
            get(lbs::capabilities),
        )
        .route(
            &format!("{base}/lbaas/loadbalancers"),
            get(lbs::list).post(lbs::create),
        )
        .route(
            &format!("{base}/lbaas/loadbalancers/{{id}}"),
            get(lbs::show).put(lbs::update).delete(lbs::delete),
        )
        .route(
            &format!("{base}/lbaas/loadbalancers/{{id}}/status"),
            get(lbs::status),
        )
        .route(
            &format!("{base}/lbaas/loadbalancers/{{id}}/stats"),
            get(lbs::stats),
        )
        .route(
            &format!("{base}/lbaas/loadbalancers/{{id}}/failover"),
            put(lbs::failover),
        )
        .route(
            &format!("{base}/lbaas/listeners"),
            get(listener::list).post(listener::create),
        )
        .route(
            &format!("{base}/lbaas/listeners/{{id}}"),
            get(listener::show)
                .put(listener::update)
                .delete(listener::delete),
        )
        .route(
            &format!("{base}/lbaas/listeners/{{id}}/stats"),
            get(listener::stats),
        )
        .route(
            &format!("{base}/lbaas/pools"),
            get(pool::list).post(pool::create),
        )
        .route(
            &format!("{base}/lbaas/pools/{{id}}"),
            get(pool::show).put(pool::update).delete(pool::delete),
        )
        .route(
            &format!("{base}/lbaas/pools/{{id}}/members"),
            get(member::list).post(member::create),
        )
        .route(
            &format!("{base}/lbaas/pools/{{pool}}/members/{{id}}"),
            get(member::show).put(member::update).delete(member::delete),
        )
        .route(
            &format!("{base}/lbaas/healthmonitors"),
            get(hm::list).post(hm::create),
        )
        .route(
            &format!("{base}/lbaas/healthmonitors/{{id}}"),
            get(hm::show).put(hm::update).delete(hm::delete),
        )
        .route(
            &format!("{base}/lbaas/l7policies"),
            get(lbs::empty_l7).post(lbs::no_l7),
        )
        .route(
            &format!("{base}/lbaas/l7policies/{{id}}"),
            get(lbs::no_l7).put(lbs::no_l7),
        )
        .route(
            &format!("{base}/lbaas/l7policies/{{id}}/rules"),
            get(lbs::no_l7).post(lbs::no_l7),
        )
        .route(&format!("{base}/lbaas/quotas"), get(lbs::empty_quotas))
}
