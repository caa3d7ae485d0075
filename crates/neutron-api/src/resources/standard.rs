//! Neutron's standard attributes (id, name, description, project, tags, timestamps,
//! revision), declared once: which a resource has, reading them from a request, the
//! read-only ones, `touch`, `If-Match`, and their JSON.

use super::tags;
use crate::body::{Attrs, bad_attr};
use crate::context::Context;
use crate::error::{ApiError, ApiResult};
use axum::http::{HeaderMap, StatusCode};
use model::Meta;
use serde_json::{Map, Value, json};

/// Every standard attribute, in the order they are rendered and listed.
const ALL: [&str; 9] = [
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

/// Set by the server only: refused in a POST, read-only in a PUT.
const SERVER_SET: [&str; 4] = ["id", "created_at", "updated_at", "revision_number"];

/// Which of the optional standard attributes a resource has (floating IPs have no name,
/// security group rules neither name nor tags, RBAC policies only id and project); the
/// others every resource has.
#[derive(Clone, Copy, Debug)]
pub struct Standard {
    pub name: bool,
    pub tags: bool,
    /// description, timestamps and revision number.
    pub described: bool,
}

impl Standard {
    pub const ALL: Standard = Standard {
        name: true,
        tags: true,
        described: true,
    };

    /// id and project only (RBAC policies).
    pub const BARE: Standard = Standard {
        name: false,
        tags: false,
        described: false,
    };

    pub fn has(self, attr: &str) -> bool {
        match attr {
            "name" => self.name,
            "tags" => self.tags,
            "description" | "created_at" | "updated_at" | "revision_number" => self.described,
            a => ALL.contains(&a),
        }
    }

    /// The standard attributes of the resource, in order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        ALL.into_iter().filter(move |a| self.has(a))
    }
}

/// Standard attributes for a new object, read from a POST. `name` is read (and dropped)
/// even where the resource has none, as it always was; `tags` likewise.
pub fn new_meta(ctx: &Context, std: Standard, attrs: &mut Attrs) -> ApiResult<Meta> {
    attrs.forbid(&SERVER_SET)?;
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
        // A 400, as neutron-lib's `_validate_privileges` answers it.
        return Err(ApiError::bad_request(
            "HTTPBadRequest",
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
        ));
    }
    let now = model::time::now();
    let tags = match attrs.take("tags") {
        Some(v) => tags::parse_tags(&v)?,
        None => Vec::new(),
    };
    let name = attrs.string("name")?.unwrap_or_default();
    Ok(Meta {
        unknown: Default::default(),
        id: model::new_id(),
        name: if std.name { name } else { String::new() },
        description: if std.described {
            attrs.string("description")?.unwrap_or_default()
        } else {
            String::new()
        },
        project_id,
        tags,
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    })
}

/// Applies name/description from a PUT and refuses read-only standard attributes. A
/// resource without a name leaves `name` unread (an unrecognized attribute).
pub fn update_meta(meta: &mut Meta, std: Standard, attrs: &mut Attrs) -> ApiResult<()> {
    for k in SERVER_SET.iter().chain(&["project_id", "tenant_id"]) {
        if attrs.has(k) {
            return Err(read_only(k));
        }
    }
    if std.name
        && let Some(n) = attrs.string("name")?
    {
        meta.name = n;
    }
    if std.described
        && let Some(d) = attrs.string("description")?
    {
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
            // Any integer, as Neutron reads it: a negative one simply never matches.
            let n: i64 = n
                .trim()
                .parse()
                .map_err(|_| bad_attr("If-Match", "revision_number must be an integer"))?;
            if u64::try_from(n).ok() != Some(meta.revision_number) {
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

/// The standard attributes the resource has, as Neutron JSON.
pub fn render(meta: &Meta, std: Standard) -> Map<String, Value> {
    let mut m = Map::new();
    for a in std.names() {
        let v = match a {
            "id" => json!(meta.id),
            "name" => json!(meta.name),
            "description" => json!(meta.description),
            "project_id" | "tenant_id" => json!(meta.project_id),
            "tags" => json!(meta.tags),
            "created_at" => json!(meta.created_at),
            "updated_at" => json!(meta.updated_at),
            _ => json!(meta.revision_number),
        };
        m.insert(a.into(), v);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_without_name_or_tags_render_without_them() {
        let meta = model::Meta::default();
        let rule = Standard {
            name: false,
            tags: false,
            described: true,
        };
        let m = render(&meta, rule);
        assert!(!m.contains_key("name") && !m.contains_key("tags"));
        assert_eq!(m.len(), 7);
        assert_eq!(render(&meta, Standard::ALL).len(), ALL.len());
        assert_eq!(rule.names().count(), 7);
    }
}
