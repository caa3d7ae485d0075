//! The write lifecycle every resource shares: the generic `create`, `update` and `delete`
//! handlers do the preamble once (body, standard and read-only attributes, visibility,
//! `If-Match`, the `deleting` mark, retries on lost races, touch, commit, log, render);
//! a resource only parses its typed requests and plans its transaction
//! ([`Lifecycle`]).

use super::ops::Plan;
use super::ops::deleting;
use super::standard::{self, check_if_match, read_only, touch};
use super::{Resource, one, writable};
use crate::Api;
use crate::body::{Attrs, JsonBody};
use crate::context::Context;
use crate::db::retrying;
use crate::error::ApiResult;
use crate::policy::{self, Target};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use model::Meta;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;

/// A resource that is created, updated and deleted through the generic handlers. Each
/// step gets a typed request, parsed from the body before anything is written, and adds
/// its writes and claims to a [`Plan`]; the handler writes the object itself.
pub trait Lifecycle: Resource {
    /// A POST's own attributes (the standard ones are read by the handler).
    type Create: Send + Sync;
    /// A PUT's own attributes.
    type Update: Send;
    /// Attributes only the server sets, beyond the standard ones: refused in a POST.
    const POST_FORBIDDEN: &'static [&'static str] = &[];
    /// Attributes a PUT may not change, beyond the standard ones.
    const PUT_READ_ONLY: &'static [&'static str] = &[];

    /// Reads a POST's attributes (types, ranges, admin-only ones). Runs once per request.
    fn parse_create(ctx: &Context, attrs: &mut Attrs) -> ApiResult<Self::Create>;

    /// The new object with standard attributes `meta`, its claims and the other writes
    /// in `plan`. Runs again when the commit loses a race.
    fn plan_create<'a>(
        api: &'a Api,
        ctx: &Context,
        meta: Meta,
        req: &Self::Create,
        plan: &mut Plan<'a>,
    ) -> impl Future<Output = ApiResult<Self>> + Send;

    /// What a PUT with no attributes at all means (default: nothing): an attribute and
    /// value read as if the client had sent them.
    fn blank_update() -> Option<(&'static str, Value)> {
        None
    }

    /// What the policy's `create` rule is checked against (default: the new object's
    /// project). Ports and subnets add their network (404 when the caller may not use
    /// it), RBAC policies their target.
    fn create_target(
        _api: &Api,
        _ctx: &Context,
        meta: &Meta,
        _req: &Self::Create,
    ) -> impl Future<Output = ApiResult<Target>> + Send {
        let t = Target::project(&meta.project_id);
        async move { Ok(t) }
    }

    /// Reads a PUT's attributes, knowing the object they change.
    fn parse_update(ctx: &Context, current: &Self, attrs: &mut Attrs) -> ApiResult<Self::Update>;

    /// Applies `req` to `obj`, with the other writes and claims in `plan`.
    fn plan_update<'a>(
        api: &'a Api,
        ctx: &Context,
        obj: &mut Self,
        req: Self::Update,
        plan: &mut Plan<'a>,
    ) -> impl Future<Output = ApiResult<()>> + Send;

    /// Refuses a delete before anything is written (default: none).
    fn check_delete(&self, _ctx: &Context) -> ApiResult<()> {
        Ok(())
    }

    /// The `deleting` mark of an object others refer to (see `ops::deleting`): when
    /// `Some`, the delete marks it before [`Lifecycle::plan_delete`] looks for users,
    /// and clears it again when that refuses.
    fn deleting_mark(&mut self) -> Option<&mut bool> {
        None
    }

    /// What goes with the object (its claims, dependents), or why it cannot go yet.
    fn plan_delete<'a>(
        api: &'a Api,
        ctx: &Context,
        obj: &Self,
        plan: &mut Plan<'a>,
    ) -> impl Future<Output = ApiResult<()>> + Send;

    /// What the log line of a change says besides the id (default: nothing).
    fn summary(&self) -> String {
        String::new()
    }
}

fn log<T: Lifecycle>(obj: &T, verb: &str) {
    tracing::info!(id = %obj.meta().id, "{} {verb} {}", T::RESOURCE, obj.summary());
}

/// The body of a write's answer: `{"<resource>": {...}}`, as `ctx` may see it, with
/// `fields=` applied.
async fn answer<T: Lifecycle>(
    api: &Api,
    ctx: &Context,
    obj: T,
    query: Option<&str>,
) -> ApiResult<Json<Value>> {
    let item = T::render_all(api, std::slice::from_ref(&obj)).await?;
    let mut item = item.into_iter().next().unwrap_or_default();
    policy::hide(ctx, T::RESOURCE, &mut item);
    Ok(Json(one::<T>(item, query)))
}

/// Parses a POST body: the standard attributes, then the resource's own.
pub fn parse_create<T: Lifecycle>(ctx: &Context, body: Value) -> ApiResult<(Meta, T::Create)> {
    let mut attrs = Attrs::from_body(body, T::RESOURCE, "POST")?;
    let meta = standard::new_meta(ctx, T::STANDARD, &mut attrs)?;
    attrs.forbid(T::POST_FORBIDDEN)?;
    let req = T::parse_create(ctx, &mut attrs)?;
    attrs.finish()?;
    Ok((meta, req))
}

/// Creates an object from a parsed request, retrying lost races; logs it.
pub async fn create_parsed<T: Lifecycle>(
    api: &Api,
    ctx: &Context,
    meta: Meta,
    req: &T::Create,
) -> ApiResult<T> {
    let obj = retrying(|| async {
        let mut plan = Plan::new(api);
        let obj = T::plan_create(api, ctx, meta.clone(), req, &mut plan).await?;
        plan.txn.create(&obj);
        plan.txn.within_quota(&obj);
        plan.commit(api).await?;
        Ok(obj)
    })
    .await?;
    log(&obj, "created");
    Ok(obj)
}

/// `POST /v2.0/<collection>`.
pub async fn create<T: Lifecycle>(
    State(api): State<Arc<Api>>,
    ctx: Context,
    RawQuery(q): RawQuery,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if let Some(items) = super::bulk::items::<T>(&body)? {
        return super::bulk::create::<T>(&api, &ctx, items, q.as_deref()).await;
    }
    let present = policy::request_attrs(&body, T::RESOURCE);
    let (meta, req) = parse_create::<T>(&ctx, body)?;
    let target = T::create_target(&api, &ctx, &meta, &req).await?;
    let present: Vec<&str> = present.iter().map(String::as_str).collect();
    policy::enforce(&ctx, T::RESOURCE, "create", &target, &present)?;
    let obj = create_parsed::<T>(&api, &ctx, meta, &req).await?;
    Ok((
        StatusCode::CREATED,
        answer(&api, &ctx, obj, q.as_deref()).await?,
    ))
}

/// `PUT /v2.0/<collection>/<id>`.
pub async fn update<T: Lifecycle>(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let present = policy::request_attrs(&body, T::RESOURCE);
    let present: Vec<&str> = present.iter().map(String::as_str).collect();
    // Neutron refuses a read-only attribute before it looks the object up.
    if let Some(k) = T::PUT_READ_ONLY.iter().find(|k| present.contains(k)) {
        return Err(read_only(k));
    }
    // So is a name or description Neutron would not take (too long, not a string): 400
    // even for an object the caller cannot see.
    {
        let mut attrs = Attrs::from_body(body.clone(), T::RESOURCE, "PUT")?;
        for k in ["name", "description"] {
            if T::STANDARD.has(k) {
                attrs.string(k)?;
            }
        }
    }
    let obj = retrying(|| async {
        let (mut obj, rev) = writable::<T>(&api, &ctx, &id, "update", &present).await?;
        check_if_match(&headers, obj.meta())?;
        let mut attrs = Attrs::from_body(body.clone(), T::RESOURCE, "PUT")?;
        if attrs.is_empty()
            && let Some((k, v)) = T::blank_update()
        {
            attrs.set(k, v);
        }
        standard::update_meta(obj.meta_mut(), T::STANDARD, &mut attrs)?;
        if let Some(k) = T::PUT_READ_ONLY.iter().find(|k| attrs.has(k)) {
            return Err(read_only(k));
        }
        let req = T::parse_update(&ctx, &obj, &mut attrs)?;
        attrs.finish()?;
        let mut plan = Plan::new(&api);
        T::plan_update(&api, &ctx, &mut obj, req, &mut plan).await?;
        touch(obj.meta_mut());
        plan.txn.update(&obj, rev);
        plan.commit(&api).await?;
        Ok(obj)
    })
    .await?;
    log(&obj, "updated");
    answer(&api, &ctx, obj, q.as_deref()).await
}

/// `DELETE /v2.0/<collection>/<id>`.
pub async fn delete<T: Lifecycle>(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    delete_one::<T>(&api, &ctx, &id, &headers).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the object `id` as `ctx` (honouring `If-Match` in `headers`), retrying lost
/// races; logs it.
pub async fn delete_one<T: Lifecycle>(
    api: &Api,
    ctx: &Context,
    id: &str,
    headers: &HeaderMap,
) -> ApiResult<()> {
    retrying(|| async {
        let (mut obj, rev) = writable::<T>(api, ctx, id, "delete", &[]).await?;
        check_if_match(headers, obj.meta())?;
        obj.check_delete(ctx)?;
        let rev = deleting::mark(api, &mut obj, rev, T::deleting_mark).await?;
        let mut plan = Plan::new(api);
        if let Err(e) = T::plan_delete(api, ctx, &obj, &mut plan).await {
            // Refused (in use): the object stays, usable again. A lost race keeps the
            // mark for the next attempt.
            if !e.retry {
                deleting::unmark(api, &mut obj, rev, T::deleting_mark).await;
            }
            return Err(e);
        }
        plan.txn.delete(&obj, rev);
        plan.commit(api).await?;
        Ok(())
    })
    .await?;
    tracing::info!(%id, "{} deleted", T::RESOURCE);
    Ok(())
}
