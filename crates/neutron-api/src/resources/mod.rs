//! One module per Neutron resource, plus what they share: standard attributes (name,
//! description, project, tags, timestamps, revision), visibility, `If-Match`, and the
//! list/show plumbing.

pub mod floatingips;
pub mod ipam;
pub mod networks;
pub mod ports;
pub mod routers;
pub mod security_groups;
pub mod subnets;
pub mod tags;

use crate::Api;
use crate::body::{Attrs, bad_attr};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use model::{Deletable, Meta, NbObject};
use nbdb::Revision;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Attributes every standard-attribute resource renders.
pub const META_ATTRS: &[&str] = &[
    "id",
    "name",
    "description",
    "project_id",
    "tenant_id",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

/// Standard attributes for a new object, read from the request.
pub fn new_meta(ctx: &Context, attrs: &mut Attrs) -> ApiResult<Meta> {
    let project_id = attrs.string("project_id")?;
    let tenant_id = attrs.string("tenant_id")?;
    if let (Some(p), Some(t)) = (&project_id, &tenant_id)
        && p != t
    {
        return Err(ApiError::bad_request(
            "HTTPBadRequest",
            "'project_id' and 'tenant_id' do not match",
        ));
    }
    let project_id = project_id
        .or(tenant_id)
        .unwrap_or_else(|| ctx.project_id.clone());
    if project_id != ctx.project_id && !ctx.is_admin {
        return Err(ApiError::forbidden(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
        ));
    }
    let now = model::time::now();
    let tags = match attrs.take("tags") {
        Some(v) => tags::parse_tags(&v)?,
        None => Vec::new(),
    };
    Ok(Meta {
        id: model::new_id(),
        name: attrs.string("name")?.unwrap_or_default(),
        description: attrs.string("description")?.unwrap_or_default(),
        project_id,
        tags,
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    })
}

/// Applies name/description from an update and refuses read-only standard attributes.
pub fn update_meta(meta: &mut Meta, attrs: &mut Attrs) -> ApiResult<()> {
    for k in [
        "id",
        "project_id",
        "tenant_id",
        "created_at",
        "updated_at",
        "revision_number",
    ] {
        if attrs.has(k) {
            return Err(read_only(k));
        }
    }
    if let Some(n) = attrs.string("name")? {
        meta.name = n;
    }
    if let Some(d) = attrs.string("description")? {
        meta.description = d;
    }
    Ok(())
}

pub fn read_only(attr: &str) -> ApiError {
    ApiError::bad_request(
        "HTTPBadRequest",
        format!("Cannot update read-only attribute {attr}"),
    )
}

/// Marks an object as changed: new `updated_at`, next `revision_number`.
pub fn touch(meta: &mut Meta) {
    meta.touch();
}

/// Honours `If-Match: revision_number=N` (412 when the object moved on).
pub fn check_if_match(headers: &HeaderMap, meta: &Meta) -> ApiResult<()> {
    let Some(v) = headers.get("if-match").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    for cond in v.split(',') {
        if let Some(n) = cond.trim().strip_prefix("revision_number=") {
            let n: u64 = n
                .parse()
                .map_err(|_| bad_attr("If-Match", "revision_number must be an integer"))?;
            if n != meta.revision_number {
                return Err(ApiError::new(
                    StatusCode::PRECONDITION_FAILED,
                    "RevisionNumberConstraintFailed",
                    format!(
                        "Constrained to {n}, but current revision is {}",
                        meta.revision_number
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The standard attributes as Neutron JSON.
pub fn render_meta(meta: &Meta, with_name: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(meta.id));
    if with_name {
        m.insert("name".into(), json!(meta.name));
    }
    m.insert("description".into(), json!(meta.description));
    m.insert("project_id".into(), json!(meta.project_id));
    m.insert("tenant_id".into(), json!(meta.project_id));
    m.insert("tags".into(), json!(meta.tags));
    m.insert("created_at".into(), json!(meta.created_at));
    m.insert("updated_at".into(), json!(meta.updated_at));
    m.insert("revision_number".into(), json!(meta.revision_number));
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
pub fn one(
    resource: &str,
    item: Map<String, Value>,
    query: Option<&str>,
    attrs: &[&str],
) -> ApiResult<Value> {
    let q = Query::parse(query, attrs).unwrap_or_default();
    Ok(json!({ resource: Value::Object(q.project(item)) }))
}

/// Fetches an object visible to `ctx`, else 404 (an object of another project is not
/// disclosed).
pub async fn visible<T: NbObject>(
    api: &crate::Api,
    ctx: &Context,
    id: &str,
) -> ApiResult<(T, nbdb::Revision)> {
    let (obj, rev) = api.db.fetch::<T>(id).await?;
    if !ctx.owns(&obj.meta().project_id) {
        return Err(ApiError::not_found(T::KIND, id));
    }
    Ok((obj, rev))
}

/// A resource whose collection and single-object GETs are the generic ones below.
pub trait Resource: NbObject {
    /// `networks`: the collection's name in URLs and list bodies.
    const COLLECTION: &'static str;
    /// `network`: the key of a single object's body.
    const RESOURCE: &'static str;
    /// Every attribute the JSON has: the valid filters, sort keys and fields.
    const ATTRS: &'static [&'static str];
    fn render(&self) -> Map<String, Value>;
    /// Whether `ctx` may see this object (default: its own project's, or admin).
    fn visible_to(&self, ctx: &Context) -> bool {
        ctx.owns(&self.meta().project_id)
    }
}

/// `GET /v2.0/<collection>`.
pub async fn list<T: Resource>(
    State(api): State<Arc<Api>>,
    ctx: Context,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(q.as_deref(), T::ATTRS)?;
    let items = api
        .db
        .all::<T>()
        .await?
        .into_iter()
        .filter(|(o, _)| o.visible_to(&ctx))
        .map(|(o, _)| o.render())
        .collect();
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
    if !o.visible_to(&ctx) {
        return Err(ApiError::not_found(T::KIND, &id));
    }
    Ok(Json(one(T::RESOURCE, o.render(), q.as_deref(), T::ATTRS)?))
}

/// Refuses to make a new reference to an object that is being deleted.
pub fn not_deleting<T: Deletable>(obj: &T) -> ApiResult<()> {
    if obj.deleting() {
        return Err(ApiError::conflict(
            "ResourceBeingDeleted",
            format!("{} {} is being deleted", T::KIND, obj.meta().id),
        ));
    }
    Ok(())
}

/// First step of deleting an object others refer to: the `deleting` mark, written with
/// compare-and-swap. Creates on any API server that read the object before the mark fail
/// their revision check and retry; those after it refuse. So once this returns, the
/// in-use check sees every reference there will ever be. Returns the new revision.
pub async fn mark_deleting<T: Deletable>(
    api: &Api,
    obj: &mut T,
    rev: Revision,
) -> ApiResult<Revision> {
    if obj.deleting() {
        return Ok(rev);
    }
    obj.set_deleting(true);
    let mut txn = crate::db::Txn::new();
    txn.update(obj, rev);
    txn.commit(&api.db).await
}

/// Clears the mark when the delete is refused (the object is in use).
pub async fn unmark_deleting<T: Deletable>(api: &Api, obj: &mut T, rev: Revision) {
    obj.set_deleting(false);
    let mut txn = crate::db::Txn::new();
    txn.update(obj, rev);
    if let Err(e) = txn.commit(&api.db).await {
        // Harmless: a later delete of it proceeds, and creates report the mark clearly.
        tracing::warn!(id = %obj.meta().id, "could not clear the deleting mark: {e}");
    }
}
