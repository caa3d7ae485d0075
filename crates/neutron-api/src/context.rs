//! The request context: who is calling. There is no Keystone: the project comes from the
//! `X-Project-Id` header (admin with `X-Roles: admin`). A request without one is refused
//! (401), unless the operator turned on `noauth_default_admin`: then it acts for the
//! configured default project as admin (a single-operator cloud, as the sandbox is).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use std::sync::Arc;

use crate::Api;
use crate::error::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub project_id: String,
    pub is_admin: bool,
}

impl Context {
    /// True when this caller may see an object owned by `project_id`.
    pub fn owns(&self, project_id: &str) -> bool {
        self.is_admin || self.project_id == project_id
    }
}

impl FromRequestParts<Arc<Api>> for Context {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Context, ApiError> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let project = header("x-project-id").or_else(|| header("x-tenant-id"));
        match project {
            Some(p) => Ok(Context {
                project_id: p.to_string(),
                is_admin: header("x-roles")
                    .map(|r| r.split(',').any(|r| r.trim() == "admin"))
                    .unwrap_or(false),
            }),
            None if api.config.noauth_default_admin => Ok(Context {
                project_id: api.config.default_project.clone(),
                is_admin: true,
            }),
            // Keystone's wording for a request without credentials.
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "HTTPUnauthorized",
                "The request you have made requires authentication: send X-Project-Id \
                 (or run the server with noauth_default_admin for a single-operator cloud).",
            )),
        }
    }
}
