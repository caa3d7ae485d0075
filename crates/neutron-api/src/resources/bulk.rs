//! Bulk create: `POST /v2.0/<collection>` with `{"<collection>": [{...}, ...]}`, all or
//! nothing, as Neutron's emulated bulk does it: every item is parsed and allowed before
//! anything is written; then they are created one by one, and when one fails the ones
//! already made are deleted again and the failure is the answer.

use super::lifecycle::{Lifecycle, create_parsed, delete_one, parse_create};
use super::{Resource, attrs};
use crate::Api;
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use crate::listing::Query;
use crate::policy;
use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

/// Most objects one bulk request may create.
pub const MAX_ITEMS: usize = 1000;

/// The body key of a bulk request: the collection, with underscores.
fn key<T: Resource>() -> String {
    T::COLLECTION.replace('-', "_")
}

/// The items of a bulk body, or None when `body` is a single object's.
pub fn items<T: Resource>(body: &Value) -> ApiResult<Option<Vec<Value>>> {
    let key = key::<T>();
    let Some(outer) = body.as_object() else {
        return Ok(None);
    };
    let Some(list) = outer.get(&key) else {
        return Ok(None);
    };
    if outer.len() != 1 {
        return Err(ApiError::bad_request(
            "HTTPBadRequest",
            "Bulk operation or extra keys in body are not supported",
        ));
    }
    let Value::Array(list) = list else {
        return Err(ApiError::bad_request(
            "HTTPBadRequest",
            format!("'{key}' must be a list"),
        ));
    };
    if list.is_empty() {
        return Err(ApiError::bad_request(
            "HTTPBadRequest",
            "Resources required",
        ));
    }
    if list.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(
            "HTTPBadRequest",
            format!("at most {MAX_ITEMS} {key} in one request"),
        ));
    }
    Ok(Some(list.clone()))
}

/// Creates every item or none; answers 201 with them, in order.
pub async fn create<T: Lifecycle>(
    api: &Api,
    ctx: &Context,
    items: Vec<Value>,
    query: Option<&str>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        // Neutron takes an item either bare or wrapped in the resource's key (tempest's
        // clients send `{"security_groups": [{"security_group": {...}}]}`).
        let wrapped = item
            .as_object()
            .is_some_and(|o| o.contains_key(T::RESOURCE));
        let body = if wrapped {
            item
        } else {
            json!({ T::RESOURCE: item })
        };
        let present = policy::request_attrs(&body, T::RESOURCE);
        let (meta, req) = parse_create::<T>(ctx, body)?;
        let target = T::create_target(api, ctx, &meta, &req).await?;
        let present: Vec<&str> = present.iter().map(String::as_str).collect();
        policy::enforce(ctx, T::RESOURCE, "create", &target, &present)?;
        parsed.push((meta, req));
    }
    let mut made: Vec<T> = Vec::with_capacity(parsed.len());
    for (meta, req) in &parsed {
        match create_parsed::<T>(api, ctx, meta.clone(), req).await {
            Ok(obj) => made.push(obj),
            Err(e) => {
                undo(api, ctx, &made).await;
                return Err(e);
            }
        }
    }
    tracing::info!(count = made.len(), "{} created in bulk", T::RESOURCE);
    let q = Query::parse(query, &attrs::<T>()).unwrap_or_default();
    let rendered: Vec<Value> = T::render_all(api, &made)
        .await?
        .into_iter()
        .map(|mut item: Map<String, Value>| {
            policy::hide(ctx, T::RESOURCE, &mut item);
            Value::Object(q.project(item))
        })
        .collect();
    Ok((StatusCode::CREATED, Json(json!({ key::<T>(): rendered }))))
}

/// Deletes what a failed bulk request made, newest first.
async fn undo<T: Lifecycle>(api: &Api, ctx: &Context, made: &[T]) {
    for obj in made.iter().rev() {
        let id = &obj.meta().id;
        if let Err(e) = delete_one::<T>(api, ctx, id, &HeaderMap::new()).await {
            tracing::error!(%id, error = %e.message, "a failed bulk create could not remove its {}", T::RESOURCE);
        }
    }
}
