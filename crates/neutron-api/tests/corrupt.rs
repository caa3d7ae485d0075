//! A corrupt value in the store is reported with its key and skipped: listings, the store
//! snapshot and the watch stream go on; reading that one object is a 500 naming it.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use nbdb::{Expect, Op};
use neutron_api::nb_auth::{NbAuth, Principal};
use neutron_api::{Api, ApiConfig, nb_router, router};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn get(app: &axum::Router, uri: &str) -> (u16, Value) {
    get_as(app, uri, None).await
}

/// A GET with an NB bearer token.
async fn get_as(app: &axum::Router, uri: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = Request::builder().uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Body::empty()).expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn corrupt_records_are_skipped_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = nbdb::open(&format!(
        "embedded:{}",
        dir.path().join("nb.redb").display()
    ))
    .expect("store");
    let good = json!({"id": "good", "project_id": "default", "created_at": "t", "updated_at": "t",
        "admin_state_up": true, "mtu": 1400, "shared": false, "external": false,
        "port_security_enabled": true, "network_type": "geneve", "physical_network": null,
        "segmentation_id": 5, "subnets": [], "unique_key": 1});
    store
        .commit(vec![Op::put(
            "network",
            "good",
            good.to_string().into_bytes(),
            Expect::Absent,
        )])
        .await
        .expect("put");
    store
        .commit(vec![Op::put(
            "network",
            "bad",
            b"\xff{not json".to_vec(),
            Expect::Absent,
        )])
        .await
        .expect("put");
    let api = Api::new(
        store,
        ApiConfig {
            // These requests carry no project: they act as the default project's admin.
            noauth_default_admin: true,
            ..ApiConfig::default()
        }
        .check()
        .expect("config"),
    );
    let app = router(api.clone());
    let auth = NbAuth::new(b"a secret for the corrupt store test").expect("secret");
    let reader = auth.token(&Principal::Reader);
    let nb = nb_router(api, auth);
    let (st, v) = get(&app, "/v2.0/networks").await;
    assert_eq!(st, 200, "{v}");
    let ids: Vec<&str> = v["networks"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    assert_eq!(ids, ["good"]);
    let (st, v) = get(&app, "/v2.0/networks/bad").await;
    assert_eq!(st, 500);
    assert!(
        v["NeutronError"]["message"]
            .as_str()
            .expect("message")
            .contains("network/bad"),
        "{v}"
    );
    let (st, v) = get_as(&nb, "/nb/v1/snapshot", Some(&reader)).await;
    assert_eq!(st, 200);
    let ids: Vec<&str> = v["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, ["good"]);
}
