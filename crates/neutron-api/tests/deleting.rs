//! The `deleting` mark: while a delete checks that nothing refers to an object, no API
//! server makes a new reference to it.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use nbdb::{Expect, Op};
use neutron_api::{Api, ApiConfig, router};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(app: &axum::Router, method: &str, uri: &str, body: Value) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn marked_objects_take_no_new_references() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = nbdb::open(&format!(
        "embedded:{}",
        dir.path().join("nb.redb").display()
    ))
    .expect("store");
    let app = router(Api::new(
        store.clone(),
        ApiConfig {
            // These requests carry no project: they act as the default project's admin.
            noauth_default_admin: true,
            ..ApiConfig::default()
        }
        .check()
        .expect("config"),
    ));
    let (_, net) = call(
        &app,
        "POST",
        "/v2.0/networks",
        json!({"network": {"name": "n"}}),
    )
    .await;
    let net_id = net["network"]["id"].as_str().expect("id").to_string();
    let (_, sg) = call(
        &app,
        "POST",
        "/v2.0/security-groups",
        json!({"security_group": {"name": "g"}}),
    )
    .await;
    let sg_id = sg["security_group"]["id"].as_str().expect("id").to_string();
    // Another server has started deleting both: set their marks as it would.
    for (table, id) in [("network", &net_id), ("secgroup", &sg_id)] {
        let rec = store.get(table, id).await.expect("get").expect("present");
        let mut v: Value = serde_json::from_slice(&rec.value).expect("json");
        v["deleting"] = json!(true);
        let op = Op::put(
            table,
            id,
            v.to_string().into_bytes(),
            Expect::Revision(rec.revision),
        )
        .with_topic(rec.topic.as_deref());
        store.commit(vec![op]).await.expect("mark");
    }
    let (st, v) = call(
        &app,
        "POST",
        "/v2.0/ports",
        json!({"port": {"network_id": net_id}}),
    )
    .await;
    assert_eq!(
        (st, v["NeutronError"]["type"].as_str()),
        (409, Some("ResourceBeingDeleted")),
        "{v}"
    );
    let sub = json!({"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "10.0.0.0/24"}});
    let (st, _) = call(&app, "POST", "/v2.0/subnets", sub).await;
    assert_eq!(st, 409);
    let rule = json!({"security_group_rule": {"security_group_id": sg_id, "direction": "ingress"}});
    let (st, _) = call(&app, "POST", "/v2.0/security-group-rules", rule).await;
    assert_eq!(st, 409);
    // The mark is not shown to API users, and the delete itself goes through.
    let (_, shown) = call(
        &app,
        "GET",
        &format!("/v2.0/networks/{net_id}"),
        Value::Null,
    )
    .await;
    assert!(shown["network"].get("deleting").is_none(), "{shown}");
    let (st, _) = call(
        &app,
        "DELETE",
        &format!("/v2.0/networks/{net_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(st, 204);
}
