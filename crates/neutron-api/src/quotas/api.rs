//! `/v2.0/quotas`: list the projects with limits of their own (admin), show, set (admin),
//! reset (admin), the details (`used`, `limit`, `reserved`) and the defaults, with
//! Neutron's answers, checks and errors.

use super::{Limits, MAX_LIMIT, QUOTA_TABLE, RESOURCES, UNLIMITED};
use crate::Api;
use crate::body::{Attrs, JsonBody, bad_attr, parse_bool, show};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nbdb::{Expect, Op};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// 403 `AdminRequired`, in Neutron's words.
fn admin_required(reason: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "AdminRequired",
        format!("User does not have admin privileges: {reason}."),
    )
}

/// Another project's quotas are the admin's (Neutron's `get_quota` rule).
fn may_read(ctx: &Context, project: &str) -> ApiResult<()> {
    if ctx.is_admin || ctx.project_id == project {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "(rule:get_quota) is disallowed by policy",
        ))
    }
}

fn one(limits: Map<String, Value>) -> Json<Value> {
    Json(json!({ "quota": limits }))
}

/// `GET /v2.0/quotas`: every project with limits of its own, with all its limits.
pub async fn list(State(api): State<Arc<Api>>, ctx: Context) -> ApiResult<Json<Value>> {
    if !ctx.is_admin {
        return Err(admin_required("Only admin can view or configure quota"));
    }
    let mut out = Vec::new();
    for r in api.db.store.list(QUOTA_TABLE, "").await? {
        let own: BTreeMap<String, i64> = serde_json::from_slice(&r.value).unwrap_or_default();
        let mut q = api.db.quotas.defaults.with(&own).to_json();
        q.insert("project_id".into(), r.id.clone().into());
        q.insert("tenant_id".into(), r.id.into());
        out.push(Value::Object(q));
    }
    Ok(Json(json!({ "quotas": out })))
}

/// `GET /v2.0/quotas/{project_id}`.
pub async fn show_one(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    may_read(&ctx, &project)?;
    Ok(one(api
        .db
        .quotas
        .limits(&api.db, &project)
        .await?
        .to_json()))
}

/// `GET /v2.0/quotas/{project_id}/default`.
pub async fn defaults(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    may_read(&ctx, &project)?;
    let mut q = api.db.quotas.defaults.to_json();
    q.insert("project_id".into(), project.clone().into());
    q.insert("tenant_id".into(), project.into());
    Ok(one(q))
}

/// `GET /v2.0/quotas/{project_id}/details`: `used`, `limit` and `reserved` (always 0:
/// usage moves with the create's own commit, so nothing is ever held in between).
pub async fn details(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    may_read(&ctx, &project)?;
    let limits = api.db.quotas.limits(&api.db, &project).await?;
    let used = api.db.quotas.used(&api.db, &project).await?;
    let q = RESOURCES
        .iter()
        .zip(limits.0.iter().zip(used))
        .map(|((r, _), (limit, used))| {
            (
                r.to_string(),
                json!({"used": used, "limit": limit, "reserved": 0}),
            )
        })
        .collect();
    Ok(one(q))
}

/// What a PUT asks: new limits, and whether to refuse one below the current usage.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct QuotaUpdate {
    pub limits: BTreeMap<String, i64>,
    pub check_limit: bool,
}

/// One limit: an integer (or its decimal string, as Neutron's `convert_to_int` takes)
/// from -1 to Neutron's maximum.
fn limit(resource: &str, v: &Value) -> ApiResult<i64> {
    // Python's int(): floats are truncated, booleans are 0 and 1.
    let n = match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.trunc() as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::bad_request(
            "HTTPBadRequest",
            format!(
                "Invalid input for operation: '{}' is not an integer.",
                show(v)
            ),
        )
    })?;
    if n < UNLIMITED {
        return Err(bad_attr(
            resource,
            format!("'{n}' is too small - must be at least '{UNLIMITED}'"),
        ));
    }
    if n > MAX_LIMIT {
        return Err(bad_attr(
            resource,
            format!("'{n}' is too large - must be no larger than '{MAX_LIMIT}'"),
        ));
    }
    Ok(n)
}

/// Reads `{"quota": {"network": 10, ...}}`: the counted resources, plus `force` (the
/// default anyway) and `check_limit`; anything else is unrecognized.
pub fn parse_update(body: Value) -> ApiResult<QuotaUpdate> {
    let mut attrs = Attrs::from_body(body, "quota", "PUT")?;
    let mut out = QuotaUpdate::default();
    for (r, _) in RESOURCES {
        if let Some(v) = attrs.take(r) {
            out.limits.insert(r.to_string(), limit(r, &v)?);
        }
    }
    for flag in ["force", "check_limit"] {
        if let Some(v) = attrs.take(flag) {
            let b = parse_bool(&v).ok_or_else(|| {
                bad_attr(
                    flag,
                    format!("'{}' cannot be converted to boolean", show(&v)),
                )
            })?;
            if flag == "check_limit" {
                out.check_limit = b;
            }
        }
    }
    attrs.finish()?;
    Ok(out)
}

/// `PUT /v2.0/quotas/{project_id}` (admin): sets limits of the project's own; answers
/// all its limits.
pub async fn update(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(project): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    if !ctx.is_admin {
        return Err(ApiError::forbidden(
            "(rule:update_quota) is disallowed by policy",
        ));
    }
    let req = parse_update(body)?;
    if req.check_limit {
        let used = api.db.quotas.used(&api.db, &project).await?;
        let unders: Vec<String> = RESOURCES
            .iter()
            .zip(used)
            .filter(|((r, _), used)| {
                req.limits
                    .get(*r)
                    .is_some_and(|l| *l != UNLIMITED && l < used)
            })
            .map(|((r, _), _)| format!("'{r}'"))
            .collect();
        if !unders.is_empty() {
            // A 400, as Neutron's quota-check-limit answers (its tests expect exactly it).
            return Err(ApiError::bad_request(
                "InvalidQuotaValue",
                format!(
                    "Change would make usage less than 0 for the following resources: [{}].",
                    unders.join(", ")
                ),
            ));
        }
    }
    if req.limits.is_empty() {
        // Nothing to set: no record either (the project stays out of the list).
        return Ok(one(api
            .db
            .quotas
            .limits(&api.db, &project)
            .await?
            .to_json()));
    }
    let limits: Limits = crate::db::retrying(|| async {
        let (mut own, expect) = match api.db.store.get(QUOTA_TABLE, &project).await? {
            Some(r) => (
                serde_json::from_slice(&r.value).unwrap_or_default(),
                Expect::Revision(r.revision),
            ),
            None => (BTreeMap::new(), Expect::Absent),
        };
        own.extend(req.limits.clone());
        let value = serde_json::to_vec(&own).unwrap_or_default();
        api.db
            .store
            .commit(vec![Op::put(QUOTA_TABLE, &project, value, expect)])
            .await?;
        Ok(api.db.quotas.defaults.with(&own))
    })
    .await?;
    tracing::info!(%project, "quota updated: {:?}", req.limits);
    Ok(one(limits.to_json()))
}

/// `DELETE /v2.0/quotas/{project_id}` (admin): back to the defaults.
pub async fn reset(
    State(api): State<Arc<Api>>,
    ctx: Context,
    Path(project): Path<String>,
) -> ApiResult<StatusCode> {
    if !ctx.is_admin {
        return Err(admin_required(
            "Only admin is authorized to access quotas for another tenant",
        ));
    }
    api.db
        .store
        .commit(vec![Op::delete(QUOTA_TABLE, &project, Expect::Any)])
        .await?;
    tracing::info!(%project, "quota reset to the defaults");
    Ok(StatusCode::NO_CONTENT)
}
