//! What the HTTP layer refuses before a handler runs (a URL over [`MAX_URL_BYTES`], and
//! axum's own rejections such as a path that is not UTF-8), answered with a Neutron error
//! body like every other failure, never axum's plain text.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The longest path and query accepted: eventlet's request line limit, which Neutron
/// clients (python-neutronclient splits longer filter lists) are written for.
pub const MAX_URL_BYTES: usize = 8192;

/// Refuses a URL over [`MAX_URL_BYTES`] with 414.
pub async fn check_url(req: Request, next: Next) -> Response {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > MAX_URL_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "HTTPRequestURITooLong",
            format!("The request URL is {len} bytes long, more than the {MAX_URL_BYTES} allowed."),
        )
        .into_response();
    }
    next.run(req).await
}

/// Neutron's exception type for an HTTP status that only axum produces.
fn kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "HTTPBadRequest",
        401 => "HTTPUnauthorized",
        403 => "HTTPForbidden",
        404 => "HTTPNotFound",
        405 => "HTTPMethodNotAllowed",
        406 => "HTTPNotAcceptable",
        408 => "HTTPRequestTimeout",
        409 => "HTTPConflict",
        411 => "HTTPLengthRequired",
        413 => "HTTPRequestEntityTooLarge",
        414 => "HTTPRequestURITooLong",
        415 => "HTTPUnsupportedMediaType",
        422 => "HTTPUnprocessableEntity",
        s if s >= 500 => "HTTPInternalServerError",
        _ => "HTTPClientError",
    }
}

/// Turns an error answer that is not JSON (an axum rejection: a path parameter that is
/// not UTF-8, a missing or unreadable header) into a Neutron error body with the same
/// status. Answers that are JSON already pass unchanged.
pub async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let json = resp
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let message = if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("Error").to_string()
    } else {
        text.trim().to_string()
    };
    ApiError::new(status, kind(status), message).into_response()
}
