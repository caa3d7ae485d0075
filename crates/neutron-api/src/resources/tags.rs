//! The tag calls on every taggable resource: replace all, add one, check one, remove one,
//! remove all (`/v2.0/{collection}/{id}/tags[/{tag}]`).

use super::touch;
use crate::Api;
use crate::body::{JsonBody, bad_attr};
use crate::context::Context;
use crate::db::{Txn, retrying};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use model::{FloatingIp, Network, Port, Router, SecurityGroup, Subnet};
use serde_json::{Value, json};
use std::sync::Arc;

pub const MAX_TAG_LEN: usize = 255;

fn check_tag(t: &str) -> ApiResult<()> {
    if t.is_empty() || t.len() > MAX_TAG_LEN || t.contains(',') || t.contains('/') {
        return Err(bad_attr(
            "tags",
            format!("'{t}' is not a valid tag (1 to {MAX_TAG_LEN} characters, no ',' or '/')"),
        ));
    }
    Ok(())
}

/// Parses a list of tags (sorted, without duplicates).
pub fn parse_tags(v: &Value) -> ApiResult<Vec<String>> {
    let items = v
        .as_array()
        .ok_or_else(|| bad_attr("tags", format!("'{v}' is not a list")))?;
    let mut tags = Vec::new();
    for t in items {
        let t = t
            .as_str()
            .ok_or_else(|| bad_attr("tags", format!("'{t}' is not a string")))?;
        check_tag(t)?;
        tags.push(t.to_string());
    }
    tags.sort();
    tags.dedup();
    Ok(tags)
}

enum TagOp {
    Replace(Vec<String>),
    Add(String),
    Remove(String),
    Clear,
}

/// Applies `op` to the tags of object `id` of type `T`; returns the tags after it.
async fn change<T: super::Resource>(
    api: &Api,
    ctx: &Context,
    id: &str,
    op: &TagOp,
) -> ApiResult<Vec<String>> {
    retrying(|| async {
        // Tags are the object's: changing them is an update of it.
        let (mut obj, rev) = super::writable::<T>(api, ctx, id, "update", &[]).await?;
        let tags = &mut obj.meta_mut().tags;
        let before = tags.clone();
        match op {
            TagOp::Replace(new) => *tags = new.clone(),
            TagOp::Add(t) => {
                if !tags.contains(t) {
                    tags.push(t.clone());
                    tags.sort();
                }
            }
            TagOp::Remove(t) => {
                if !tags.contains(t) {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        "TagNotFound",
                        format!("Tag {t} could not be found for {} {id}.", T::KIND),
                    ));
                }
                tags.retain(|x| x != t);
            }
            TagOp::Clear => tags.clear(),
        }
        let after = tags.clone();
        if after != before {
            touch(obj.meta_mut());
            let mut txn = Txn::new();
            txn.update(&obj, rev);
            txn.commit(&api.db).await?;
        }
        Ok(after)
    })
    .await
}

async fn read<T: super::Resource>(api: &Api, ctx: &Context, id: &str) -> ApiResult<Vec<String>> {
    Ok(super::visible::<T>(api, ctx, id)
        .await?
        .0
        .meta()
        .tags
        .clone())
}

/// Dispatches on the collection name to the object type.
macro_rules! by_collection {
    ($coll:expr, $f:ident ( $($arg:expr),* )) => {
        match $coll {
            "networks" => $f::<Network>($($arg),*).await,
            "subnets" => $f::<Subnet>($($arg),*).await,
            "ports" => $f::<Port>($($arg),*).await,
            "routers" => $f::<Router>($($arg),*).await,
            "floatingips" => $f::<FloatingIp>($($arg),*).await,
            "security-groups" => $f::<SecurityGroup>($($arg),*).await,
            "subnetpools" => $f::<model::SubnetPool>($($arg),*).await,
            "policies" => $f::<model::QosPolicy>($($arg),*).await,
            "trunks" => $f::<model::Trunk>($($arg),*).await,
            other => Err(ApiError::new(StatusCode::NOT_FOUND, "HTTPNotFound", format!("The resource could not be found: {other} does not support tags"))),
        }
    };
}

pub async fn get_all(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((coll, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let tags = by_collection!(coll.as_str(), read(&api, &ctx, &id))?;
    Ok(Json(json!({"tags": tags})))
}

pub async fn replace_all(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((coll, id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let tags = body
        .get("tags")
        .ok_or_else(|| bad_attr("tags", "the body must be {\"tags\": [...]}"))?;
    let op = TagOp::Replace(parse_tags(tags)?);
    let tags = by_collection!(coll.as_str(), change(&api, &ctx, &id, &op))?;
    Ok(Json(json!({"tags": tags})))
}

pub async fn remove_all(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((coll, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    by_collection!(coll.as_str(), change(&api, &ctx, &id, &TagOp::Clear))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check_one(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((coll, id, tag)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let tags = by_collection!(coll.as_str(), read(&api, &ctx, &id))?;
    if tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "TagNotFound",
            format!("Tag {tag} could not be found for resource {id}."),
        ))
    }
}

pub async fn add_one(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((coll, id, tag)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    check_tag(&tag)?;
    by_collection!(
        coll.as_str(),
        change(&api, &ctx, &id, &TagOp::Add(tag.clone()))
    )?;
    Ok(StatusCode::CREATED.into_response())
}

pub async fn remove_one(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path((coll, id, tag)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    by_collection!(coll.as_str(), change(&api, &ctx, &id, &TagOp::Remove(tag)))?;
    Ok(StatusCode::NO_CONTENT)
}
