//! The request context: who is calling. There is no Keystone: the project comes from the
//! `X-Project-Id` header (admin with `X-Roles: admin`), else from the configured default,
//! which is an admin (a single-operator cloud, as the sandbox is).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::convert::Infallible;
use std::sync::Arc;

use crate::Api;

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
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Context, Infallible> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let project = header("x-project-id").or_else(|| header("x-tenant-id"));
        Ok(match project {
            Some(p) => Context {
                project_id: p.to_string(),
                is_admin: header("x-roles")
                    .map(|r| r.split(',').any(|r| r.trim() == "admin"))
                    .unwrap_or(false),
            },
            None => Context {
                project_id: api.config.default_project.clone(),
                is_admin: true,
            },
        })
    }
}
