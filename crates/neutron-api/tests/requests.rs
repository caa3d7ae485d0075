//! What a Neutron request must carry, in process: a JSON body (a `text/plain` POST, which
//! a web page may send cross-origin without a preflight, is refused), a project unless the
//! operator turned on `noauth_default_admin`, sane limits; and every refusal is a Neutron
//! error body. Also Neutron's `DeviceIDNotOwnedByTenant` and `limit` checks.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use neutron_api::{Api, ApiConfig, router};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Answer {
    status: u16,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn send(app: &axum::Router, req: Request<Body>) -> Answer {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer {
        status,
        headers,
        body,
    }
}

/// A JSON request, as `project` (admin with `admin`) or with no project header.
fn json_req(
    method: &str,
    uri: &str,
    body: Option<Value>,
    project: Option<(&str, bool)>,
) -> Request<Body> {
    let mut r = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some((p, admin)) = project {
        r = r.header("x-project-id", p);
        if admin {
            r = r.header("x-roles", "admin");
        }
    }
    r.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request")
}

fn app(noauth_default_admin: bool) -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = nbdb::open(&format!(
        "embedded:{}",
        dir.path().join("nb.redb").display()
    ))
    .expect("store");
    let config = ApiConfig {
        noauth_default_admin,
        ..ApiConfig::default()
    };
    (
        router(Api::new(store, config.check().expect("config"))),
        dir,
    )
}

/// Asserts a Neutron error body of `kind` with `status`.
fn neutron_error(a: &Answer, status: u16, kind: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["NeutronError"]["type"], kind, "{}", a.body);
    assert!(
        a.body["NeutronError"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        a.body
    );
    assert_eq!(a.body["NeutronError"]["detail"], "", "{}", a.body);
}

async fn count_networks(app: &axum::Router) -> usize {
    let a = send(
        app,
        json_req("GET", "/v2.0/networks", None, Some(("p", true))),
    )
    .await;
    a.body["networks"].as_array().expect("networks").len()
}

#[tokio::test]
async fn a_cross_origin_text_plain_post_is_refused_and_no_cors_header_is_sent() {
    // Even where a request without a project would act as admin, a browser's "simple"
    // cross-origin POST (text/plain, no preflight) creates nothing.
    let (app, _dir) = app(true);
    let body = json!({"network": {"name": "evil"}}).to_string();
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut r = Request::builder()
            .method("POST")
            .uri("/v2.0/networks")
            .header("origin", "http://evil.example");
        if let Some(t) = content_type {
            r = r.header("content-type", t);
        }
        let a = send(&app, r.body(Body::from(body.clone())).unwrap()).await;
        neutron_error(&a, 415, "HTTPUnsupportedMediaType");
        assert!(
            a.headers.get("access-control-allow-origin").is_none(),
            "{content_type:?}: {:?}",
            a.headers
        );
    }
    assert_eq!(count_networks(&app).await, 0, "nothing was created");
    // A preflight is not answered with permissions either.
    let pre = Request::builder()
        .method("OPTIONS")
        .uri("/v2.0/networks")
        .header("origin", "http://evil.example")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    let a = send(&app, pre).await;
    assert!(a.status >= 400, "{}", a.status);
    assert!(
        a.headers
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-")),
        "{:?}",
        a.headers
    );
    // A client that names no type and is no web page (tempest's PUTs) is read as JSON.
    let r = Request::builder()
        .method("POST")
        .uri("/v2.0/networks")
        .body(Body::from(
            json!({"network": {"name": "untyped"}}).to_string(),
        ))
        .unwrap();
    let a = send(&app, r).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["network"]["name"], "untyped");
    let id = a.body["network"]["id"].as_str().unwrap().to_string();
    let r = Request::builder()
        .method("DELETE")
        .uri(format!("/v2.0/networks/{id}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, r).await.status, 204);
    // JSON with parameters, and bodiless calls, still work.
    let r = Request::builder()
        .method("POST")
        .uri("/v2.0/networks")
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(Body::from(body))
        .unwrap();
    let a = send(&app, r).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert!(a.headers.get("access-control-allow-origin").is_none());
    let id = a.body["network"]["id"].as_str().unwrap().to_string();
    let bare = |method: &str, uri: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap()
    };
    let tag = format!("/v2.0/networks/{id}/tags/red");
    assert_eq!(send(&app, bare("PUT", &tag)).await.status, 201);
    assert_eq!(send(&app, bare("GET", &tag)).await.status, 204);
    let net = format!("/v2.0/networks/{id}");
    assert_eq!(send(&app, bare("DELETE", &net)).await.status, 204);
}

#[tokio::test]
async fn without_noauth_default_admin_a_request_without_a_project_is_401() {
    let (app, _dir) = app(false);
    let body = Some(json!({"network": {"name": "n"}}));
    let a = send(&app, json_req("POST", "/v2.0/networks", body.clone(), None)).await;
    neutron_error(&a, 401, "HTTPUnauthorized");
    neutron_error(
        &send(&app, json_req("GET", "/v2.0/networks", None, None)).await,
        401,
        "HTTPUnauthorized",
    );
    // Version discovery stays open.
    for uri in ["/", "/v2.0", "/v2.0/"] {
        let a = send(&app, json_req("GET", uri, None, None)).await;
        assert_eq!(a.status, 200, "{uri}: {}", a.body);
    }
    // A project still works, and is not admin without the role.
    let a = send(
        &app,
        json_req("POST", "/v2.0/networks", body, Some(("alice", false))),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["network"]["project_id"], "alice");
    let provider = Some(json!({"network": {"provider:network_type": "vxlan"}}));
    neutron_error(
        &send(
            &app,
            json_req("POST", "/v2.0/networks", provider, Some(("alice", false))),
        )
        .await,
        403,
        "PolicyNotAuthorized",
    );
    assert_eq!(count_networks(&app).await, 1);
}

#[tokio::test]
async fn limits_and_malformed_urls_get_neutron_error_bodies() {
    let (app, _dir) = app(true);
    // limit=-1 is a 400 in Neutron's words; limit=0 means no limit.
    let a = send(&app, json_req("GET", "/v2.0/networks?limit=-1", None, None)).await;
    neutron_error(&a, 400, "BadRequest");
    assert_eq!(
        a.body["NeutronError"]["message"],
        "Bad limit request: Limit must be an integer 0 or greater and not '-1'."
    );
    neutron_error(
        &send(&app, json_req("GET", "/v2.0/ports?limit=x", None, None)).await,
        400,
        "BadRequest",
    );
    assert_eq!(
        send(&app, json_req("GET", "/v2.0/networks?limit=0", None, None))
            .await
            .status,
        200
    );
    // An id that is not UTF-8 once percent-decoded.
    for uri in [
        "/v2.0/networks/%FF%FE",
        "/v2.0/ports/%C3%28/tags",
        "/v2.0/routers/%80/add_router_interface",
    ] {
        let method = if uri.ends_with("interface") {
            "PUT"
        } else {
            "GET"
        };
        let a = send(&app, json_req(method, uri, Some(json!({})), None)).await;
        neutron_error(&a, 400, "HTTPBadRequest");
    }
    // A query string longer than the limit.
    let long = format!("/v2.0/networks?name={}", "a".repeat(9000));
    neutron_error(
        &send(&app, json_req("GET", &long, None, None)).await,
        414,
        "HTTPRequestURITooLong",
    );
    // A body over the limit, announced or streamed.
    let big = format!(
        "{{\"network\": {{\"name\": \"{}\"}}}}",
        "a".repeat(neutron_api::body::MAX_BODY_BYTES)
    );
    let a = send(
        &app,
        json_req("POST", "/v2.0/networks", None, None).map(|_| Body::from(big.clone())),
    )
    .await;
    neutron_error(&a, 413, "HTTPRequestEntityTooLarge");
    let chunks = futures_chunks(big);
    let r = Request::builder()
        .method("POST")
        .uri("/v2.0/networks")
        .header("content-type", "application/json")
        .body(chunks)
        .unwrap();
    neutron_error(&send(&app, r).await, 413, "HTTPRequestEntityTooLarge");
    assert_eq!(count_networks(&app).await, 0);
}

/// `text` as a streamed body with no length announced.
fn futures_chunks(text: String) -> Body {
    let parts: Vec<Result<axum::body::Bytes, std::io::Error>> = text
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(axum::body::Bytes::copy_from_slice(c)))
        .collect();
    Body::from_stream(futures_util::stream::iter(parts))
}

#[tokio::test]
async fn a_port_may_not_pose_as_another_projects_router_interface() {
    let (app, _dir) = app(false);
    fn as_(p: &str) -> Option<(&str, bool)> {
        Some((p, false))
    }
    let create = |coll: &str, what: &str, attrs: Value, who: Option<(&str, bool)>| {
        json_req(
            "POST",
            &format!("/v2.0/{coll}"),
            Some(json!({ what: attrs })),
            who,
        )
    };
    let bob_router = send(
        &app,
        create("routers", "router", json!({"name": "rb"}), as_("bob")),
    )
    .await;
    assert_eq!(bob_router.status, 201, "{}", bob_router.body);
    let rb = bob_router.body["router"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let alice_router = send(
        &app,
        create("routers", "router", json!({"name": "ra"}), as_("alice")),
    )
    .await;
    let ra = alice_router.body["router"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let net = send(
        &app,
        create("networks", "network", json!({"name": "n"}), as_("alice")),
    )
    .await;
    let net = net.body["network"]["id"].as_str().unwrap().to_string();
    let port = |device: &str, owner: &str| json!({"network_id": net, "device_owner": owner, "device_id": device});

    let a = send(
        &app,
        create(
            "ports",
            "port",
            port(&rb, "network:router_interface"),
            as_("alice"),
        ),
    )
    .await;
    neutron_error(&a, 409, "DeviceIDNotOwnedByTenant");
    assert_eq!(
        a.body["NeutronError"]["message"],
        format!(
            "The following device_id {rb} is not owned by your tenant or matches another tenants router."
        )
    );
    // Its own router, another owner, or an id that is no router: allowed, as in Neutron.
    for (device, owner) in [
        (ra.as_str(), "network:router_interface"),
        (rb.as_str(), "compute:nova"),
        ("not-a-router", "network:router_interface"),
    ] {
        let a = send(
            &app,
            create("ports", "port", port(device, owner), as_("alice")),
        )
        .await;
        assert_eq!(a.status, 201, "{device} {owner}: {}", a.body);
    }
    // Nor by an update.
    let a = send(
        &app,
        create("ports", "port", json!({"network_id": net}), as_("alice")),
    )
    .await;
    let id = a.body["port"]["id"].as_str().unwrap().to_string();
    let upd =
        json!({"port": {"device_owner": "network:router_interface_distributed", "device_id": rb}});
    let a = send(
        &app,
        json_req(
            "PUT",
            &format!("/v2.0/ports/{id}"),
            Some(upd.clone()),
            as_("alice"),
        ),
    )
    .await;
    neutron_error(&a, 409, "DeviceIDNotOwnedByTenant");
    // The admin may.
    let a = send(
        &app,
        json_req(
            "PUT",
            &format!("/v2.0/ports/{id}"),
            Some(upd),
            Some(("admin", true)),
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = send(
        &app,
        create(
            "ports",
            "port",
            port(&rb, "network:router_interface"),
            Some(("alice", true)),
        ),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
}
