//! The Neutron resources: one file per resource (its request types, validation and
//! JSON), the [`Resource`] trait with the generic list and show, the generic write
//! lifecycle (`lifecycle`), the standard attributes (`standard`), and below them the
//! operations several resources share (`ops`). A resource file imports `ops`, never
//! another resource file.

pub mod address_groups;
pub mod address_scopes;
pub mod bgp;
pub mod bulk;
pub mod default_sg_rules;
pub mod floatingips;
pub mod lifecycle;
pub mod networks;
pub mod ops;
pub mod port_forwardings;
pub mod ports;
pub mod qos;
pub mod rbac_policies;
pub mod routers;
pub mod security_group_rules;
pub mod security_groups;
pub mod sfc;
pub mod standard;
pub mod subnet_pools;
pub mod subnets;
pub mod tags;
pub mod trunks;

pub use standard::{Standard, touch};

use crate::Api;
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use crate::policy::{self, Target};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use model::NbObject;
use serde_json::{Map, Value, json};
use std::future::Future;
use std::sync::Arc;

/// A Neutron resource as it is read: its names, attributes, JSON and who sees it. The
/// writes are [`lifecycle::Lifecycle`].
pub trait Resource: NbObject {
    /// `networks`: the collection's name in URLs and list bodies.
    const COLLECTION: &'static str;
    /// `network`: the key of a single object's body (and of a request's).
    const RESOURCE: &'static str;
    /// The standard attributes it has (all of them unless said otherwise).
    const STANDARD: Standard = Standard::ALL;
    /// Its path under `/v2.0` when it is not [`Resource::COLLECTION`] (`qos/policies`).
    const PATH: Option<&'static str> = None;
    /// Its own attributes, after the standard ones: with them, the valid filters, sort
    /// keys and fields.
    const OWN_ATTRS: &'static [&'static str];

    /// Adds the object's own attributes to its standard ones in `m`.
    fn render_own(&self, m: &mut Map<String, Value>);

    /// What the policy checks of each of `objs` are made against (default: its
    /// project). Override when they need other objects: a subnet's or port's network
    /// owner, whether an RBAC policy shares the object with `ctx`'s project.
    fn targets(
        _api: &Api,
        _ctx: &Context,
        objs: &[Self],
    ) -> impl Future<Output = ApiResult<Vec<Target>>> + Send {
        let out = objs
            .iter()
            .map(|o| Target::project(&o.meta().project_id))
            .collect();
        async move { Ok(out) }
    }

    /// The objects of `objs` that `ctx` may read (the policy's `get`), as `ctx` sees
    /// them. Override to change how they look (a network shared with the caller says
    /// `shared`).
    fn readable(
        api: &Api,
        ctx: &Context,
        objs: Vec<Self>,
    ) -> impl Future<Output = ApiResult<Vec<Self>>> + Send {
        async move {
            let targets = Self::targets(api, ctx, &objs).await?;
            Ok(objs
                .into_iter()
                .zip(targets)
                .filter(|(_, t)| policy::allowed(ctx, Self::RESOURCE, "get", t))
                .map(|(o, _)| o)
                .collect())
        }
    }

    /// The JSON of `objs`. Override when it shows other objects (a group's rules): they
    /// are read once for a whole listing.
    fn render_all(
        _api: &Api,
        objs: &[Self],
    ) -> impl Future<Output = ApiResult<Vec<Map<String, Value>>>> + Send {
        let out = objs.iter().map(render).collect();
        async move { Ok(out) }
    }

    /// Attributes a listing may filter on that answers do not show (Neutron's
    /// `is_visible: False` ones, such as a subnet's `shared`).
    const FILTER_ONLY: &'static [&'static str] = &[];

    /// Adds the [`Resource::FILTER_ONLY`] attributes to `items` (rendered from `objs`,
    /// in order) for a listing that filters on them.
    fn filter_values(
        _api: &Api,
        _ctx: &Context,
        _objs: &[Self],
        _items: &mut [Map<String, Value>],
    ) -> impl Future<Output = ApiResult<()>> + Send {
        async { Ok(()) }
    }

    /// Runs before a listing with its query (the default security group appears on
    /// first sight).
    fn before_list(
        _api: &Api,
        _ctx: &Context,
        _query: &Query,
    ) -> impl Future<Output = ApiResult<()>> + Send {
        async { Ok(()) }
    }
}

/// Every attribute of `T`: the standard ones it has, then its own.
pub fn attrs<T: Resource>() -> Vec<&'static str> {
    T::STANDARD
        .names()
        .chain(T::OWN_ATTRS.iter().copied())
        .collect()
}

/// The Neutron JSON of one object.
pub fn render<T: Resource>(obj: &T) -> Map<String, Value> {
    let mut m = standard::render(obj.meta(), T::STANDARD);
    obj.render_own(&mut m);
    debug_assert_eq!(m.len(), T::STANDARD.names().count() + T::OWN_ATTRS.len());
    m
}

/// The base URL of this server as the client reached it (for pagination links).
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:9696");
    format!("http://{host}")
}

/// `{"<resource>": {...}}` with `fields=` applied.
pub fn one<T: Resource>(item: Map<String, Value>, query: Option<&str>) -> Value {
    let q = Query::parse(query, &attrs::<T>()).unwrap_or_default();
    json!({ T::RESOURCE: Value::Object(q.project(item)) })
}

/// Fetches an object `ctx` may read, else 404: an object the caller may not see is not
/// disclosed.
pub async fn visible<T: Resource>(
    api: &Api,
    ctx: &Context,
    id: &str,
) -> ApiResult<(T, nbdb::Revision)> {
    writable::<T>(api, ctx, id, "get", &[]).await
}

/// Fetches an object for `action` (with the request's attributes `attrs`, for their
/// own rules): 404 when `ctx` may not see it, 403 when it may see but not do this.
/// What writes start from.
pub async fn writable<T: Resource>(
    api: &Api,
    ctx: &Context,
    id: &str,
    action: &str,
    attrs: &[&str],
) -> ApiResult<(T, nbdb::Revision)> {
    let (obj, rev) = api.db.fetch::<T>(id).await?;
    let target = T::targets(api, ctx, std::slice::from_ref(&obj))
        .await?
        .pop()
        .unwrap_or_default();
    policy::enforce_on(ctx, T::RESOURCE, T::KIND, id, action, &target, attrs)?;
    Ok((obj, rev))
}

/// `GET /v2.0/<collection>`.
pub async fn list<T: Resource>(
    State(api): State<Arc<Api>>,
    ctx: Context,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let mut names = attrs::<T>();
    names.extend_from_slice(T::FILTER_ONLY);
    let mut query = Query::parse(q.as_deref(), &names)?;
    query.hidden = T::FILTER_ONLY.to_vec();
    query.path = T::PATH;
    T::before_list(&api, &ctx, &query).await?;
    let all: Vec<T> = api
        .db
        .all::<T>()
        .await?
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    let marker_obj =
        (query.marker.as_ref()).and_then(|m| all.iter().find(|o| o.meta().id == *m).cloned());
    let seen = T::readable(&api, &ctx, all).await?;
    if let Some(m) = marker_obj.filter(|m| !seen.iter().any(|o| o.meta().id == m.meta().id)) {
        let mut item = T::render_all(&api, std::slice::from_ref(&m)).await?;
        query.hidden_marker = item.pop();
    }
    let mut items = T::render_all(&api, &seen).await?;
    for item in &mut items {
        policy::hide(&ctx, T::RESOURCE, item);
    }
    if T::FILTER_ONLY.iter().any(|a| query.filters_on(a)) {
        T::filter_values(&api, &ctx, &seen, &mut items).await?;
    }
    Ok(Json(query.respond(
        T::COLLECTION,
        &base_url(&headers),
        items,
    )?))
}

/// `GET /v2.0/<collection>/<id>`.
pub async fn show<T: Resource>(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let (o, _) = api.db.fetch::<T>(&id).await?;
    let Some(o) = T::readable(&api, &ctx, vec![o]).await?.pop() else {
        return Err(ApiError::not_found(T::KIND, &id));
    };
    let item = T::render_all(&api, std::slice::from_ref(&o)).await?;
    let mut item = item.into_iter().next().unwrap_or_default();
    policy::hide(&ctx, T::RESOURCE, &mut item);
    Ok(Json(one::<T>(item, q.as_deref())))
}
