//! Random quota request bodies and project ids, in process: parsing never panics and
//! accepts only limits from -1 to Neutron's maximum for the eight resources; through the
//! API every PUT is a 200 or a Neutron 400, never a 5xx, and afterwards the project's
//! quotas are exactly the defaults with the accepted bodies' limits on top.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use neutron_api::quotas::{Limits, MAX_LIMIT, RESOURCES, api::parse_update};
use neutron_api::{Api, ApiConfig, router};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use tower::ServiceExt;

const KEYS: &[&str] = &[
    "network",
    "subnet",
    "port",
    "router",
    "floatingip",
    "security_group",
    "security_group_rule",
    "force",
    "check_limit",
    "volumes",
    "project_id",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-3i64..20).prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[ -~]{0,12}".prop_map(Value::from),
        (-3i64..20).prop_map(|n| Value::from(n.to_string())),
        Just(json!(2147483648u64)),
        Just(json!(u64::MAX)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// A quota body: mostly `{"quota": {...}}` with random keys, sometimes anything at all.
fn body() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::collection::vec((prop::sample::select(KEYS), leaf()), 0..6).prop_map(|kv| {
            let m: Map<String, Value> = kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            json!({ "quota": m })
        }),
        1 => value(),
    ]
}

async fn send(app: &axum::Router, method: &str, uri: &str, body: String) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header("x-project-id", "admin")
        .header("x-roles", "admin")
        .body(Body::from(body))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn parsing_accepts_only_valid_limits(b in body()) {
        if let Ok(req) = parse_update(b.clone()) {
            for (k, v) in &req.limits {
                prop_assert!(RESOURCES.iter().any(|(r, _)| r == k), "{k} from {b}");
                prop_assert!((-1..=MAX_LIMIT).contains(v), "{k} = {v} from {b}");
            }
        }
    }

    #[test]
    fn puts_are_200_or_400_and_what_was_accepted_is_what_shows(
        bodies in prop::collection::vec(body(), 1..6),
        project in "[ -~]{1,20}",
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = nbdb::open(&format!("embedded:{}", dir.path().join("nb.redb").display())).expect("store");
            let app = router(Api::new(store, ApiConfig::default().check().expect("config")));
            let path: String = form_urlencoded::byte_serialize(project.as_bytes()).collect();
            let uri = format!("/v2.0/quotas/{path}");
            let mut want: BTreeMap<String, i64> = BTreeMap::new();
            for b in bodies {
                let (st, v) = send(&app, "PUT", &uri, b.to_string()).await;
                prop_assert!(st == 200 || st == 400, "{st}: {b} -> {v}");
                if st == 400 {
                    prop_assert!(v["NeutronError"]["type"].is_string(), "{v}");
                    prop_assert!(parse_update(b.clone()).is_err(), "the API refused what parses: {b}");
                } else {
                    let req = parse_update(b.clone()).expect("accepted by the API");
                    want.extend(req.limits);
                }
            }
            let (st, v) = send(&app, "GET", &uri, String::new()).await;
            prop_assert_eq!(st, 200, "{}", v);
            let expected = Value::Object(Limits::default().with(&want).to_json());
            prop_assert_eq!(&v["quota"], &expected);
            Ok::<(), TestCaseError>(())
        })?;
    }
}
