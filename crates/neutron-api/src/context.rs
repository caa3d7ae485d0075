//! The request context: who is calling. Under `auth_strategy = keystone` it is the one
//! the Keystone middleware ([`crate::keystone`]) put on the request from a validated token,
//! and nothing a client sends. Under `noauth` the project comes from the `X-Project-Id`
//! header (admin with `X-Roles: admin`). A request without one is refused (401), unless
//! the operator turned on `noauth_default_admin`: then it acts for the configured default
//! project as admin (a single-operator cloud, as the sandbox is).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use std::sync::Arc;

use crate::Api;
use crate::config::AuthStrategy;
use crate::error::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub project_id: String,
    pub is_admin: bool,
    /// Role names (`admin`, `member`, `reader`, ...): the token's under Keystone,
    /// `X-Roles` under noauth. For the policy work to come; `is_admin` decides today.
    pub roles: Vec<String>,
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
        if let Some(c) = parts.extensions.get::<Context>() {
            return Ok(c.clone());
        }
        if api.config.auth_strategy == AuthStrategy::Keystone {
            // Only reached if a route escaped the middleware: refuse rather than trust
            // headers.
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "HTTPUnauthorized",
                "The request you have made requires authentication.",
            ));
        }
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
            Some(p) => {
                let roles: Vec<String> = header("x-roles")
                    .map(|r| {
                        r.split(',')
                            .map(|r| r.trim().to_string())
                            .filter(|r| !r.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Context {
                    project_id: p.to_string(),
                    is_admin: roles.iter().any(|r| r == "admin"),
                    roles,
                })
            }
            None if api.config.noauth_default_admin => Ok(Context {
                project_id: api.config.default_project.clone(),
                is_admin: true,
                roles: vec!["admin".into()],
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
