//! The default external network (`is_default`), in process: admin only, one at a time,
//! only an external network, and its `*` access_as_external policy cannot be removed.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use neutron_api::{Api, ApiConfig, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const ADMIN: (&str, &str) = ("99999999999999999999999999999999", "admin");
const MEMBER: (&str, &str) = ("11111111111111111111111111111111", "member");

async fn call(
    app: &axum::Router,
    who: (&str, &str),
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header("x-project-id", who.0)
        .header("x-roles", who.1)
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn kind(v: &Value) -> &str {
    v["NeutronError"]["type"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn one_external_network_is_the_default_and_stays_shared_with_everyone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = nbdb::open(&format!(
        "embedded:{}",
        dir.path().join("nb.redb").display()
    ))
    .expect("store");
    let app = router(Api::new(
        store,
        ApiConfig::default().check().expect("config"),
    ));
    let mut ext = Vec::new();
    for name in ["public", "public2", "internal"] {
        let body = json!({"network": {"name": name, "router:external": name != "internal"}});
        let (st, v) = call(&app, ADMIN, "POST", "/v2.0/networks", Some(body)).await;
        assert_eq!(st, 201, "{v}");
        assert_eq!(v["network"]["is_default"], json!(false));
        ext.push(format!(
            "/v2.0/networks/{}",
            v["network"]["id"].as_str().unwrap()
        ));
    }
    let default = json!({"network": {"is_default": true}});
    let (st, v) = call(&app, MEMBER, "PUT", &ext[0], Some(default.clone())).await;
    assert!(st == 403 || st == 404, "a member may not: {st} {v}");
    let (st, v) = call(&app, ADMIN, "PUT", &ext[0], Some(default.clone())).await;
    assert_eq!(
        (st, &v["network"]["is_default"]),
        (200, &json!(true)),
        "{v}"
    );
    let (st, v) = call(&app, ADMIN, "PUT", &ext[1], Some(default.clone())).await;
    assert_eq!((st, kind(&v)), (409, "DefaultExternalNetworkExists"), "{v}");
    // An internal network is never the default (Neutron ignores the attribute there).
    let (st, v) = call(&app, ADMIN, "PUT", &ext[2], Some(default.clone())).await;
    assert_eq!(
        (st, &v["network"]["is_default"]),
        (200, &json!(false)),
        "{v}"
    );

    let id = ext[0].rsplit('/').next().unwrap();
    let q = format!("/v2.0/rbac-policies?object_id={id}&action=access_as_external&target_tenant=*");
    let (_, v) = call(&app, ADMIN, "GET", &q, None).await;
    let policy = format!(
        "/v2.0/rbac-policies/{}",
        v["rbac_policies"][0]["id"].as_str().unwrap()
    );
    let (st, v) = call(&app, ADMIN, "DELETE", &policy, None).await;
    assert_eq!((st, kind(&v)), (409, "RbacPolicyInUse"), "{v}");

    // No longer the default: the policy may go, and another network may be the default.
    let off = json!({"network": {"is_default": false}});
    assert_eq!(call(&app, ADMIN, "PUT", &ext[0], Some(off)).await.0, 200);
    assert_eq!(call(&app, ADMIN, "DELETE", &policy, None).await.0, 204);
    let (st, v) = call(&app, ADMIN, "PUT", &ext[1], Some(default)).await;
    assert_eq!(
        (st, &v["network"]["is_default"]),
        (200, &json!(true)),
        "{v}"
    );
}
