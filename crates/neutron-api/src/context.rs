//! The request context: who is calling. Under `auth_strategy = keystone` it is the one
//! the Keystone middleware ([`crate::keystone`]) put on the request from a validated token,
//! and nothing a client sends. Under `noauth` the project comes from the `X-Project-Id`
//! header (roles from `X-Roles`, none meaning `member`). A request without one is refused (401), unless
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
    /// `X-Roles` under noauth (`member` when it names none). `crate::policy` reads them.
    pub roles: Vec<String>,
}

impl Context {
    /// True when this caller acts for `project_id`, or is admin.
    pub fn owns(&self, project_id: &str) -> bool {
        self.is_admin || self.project_id == project_id
    }

    fn has_role(&self, role: &str) -> bool {
        // oslo.policy compares role names without case.
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }

    /// May write in its project: `member` (or `admin`, which implies it, as Keystone's
    /// default implied roles say).
    pub fn is_member(&self) -> bool {
        self.is_admin || self.has_role("member") || self.has_role("admin")
    }

    /// May read its project: `reader`, or a role that implies it.
    pub fn is_reader(&self) -> bool {
        self.is_member() || self.has_role("reader")
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
                // No roles is a member, as it always was under noauth.
                let roles = if roles.is_empty() {
                    vec!["member".to_string()]
                } else {
                    roles
                };
                Ok(Context {
                    project_id: p.to_string(),
                    is_admin: roles.iter().any(|r| r == "admin"),
                    roles,
                })
            }
            None if api.config.noauth_default_admin => Ok(Context {
                project_id: api.config.default_project.clone(),
                is_admin: true,
                roles: vec!["admin".into(), "member".into(), "reader".into()],
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
