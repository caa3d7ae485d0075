//! A corrupt value in the store is reported with its key and skipped: listings, the store
//! snapshot and the watch stream go on; reading that one object is a 500 naming it.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use nbdb::{Expect, Op};
use neutron_api::{Api, ApiConfig, router};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn get(app: &axum::Router, uri: &str) -> (u16, Value) {
    let req = Request::builder()
        .uri(uri)
        .body(Body::empty())
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
    let app = router(Api::new(
        store,
        ApiConfig::default().check().expect("config"),
    ));
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
    let (st, v) = get(&app, "/nb/v1/snapshot").await;
    assert_eq!(st, 200);
    let ids: Vec<&str> = v["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, ["good"]);
}
