//! The agents API in process, on an embedded store: heartbeats written through the NB
//! listener (a host only for itself), `/v2.0/agents` for the admin (list with Neutron's
//! filters, show, update, delete) and for nobody else, liveness running out with the
//! lease, `live_controller`, and random bodies never answered with a 500.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use neutron_api::nb_auth::{NbAuth, Principal};
use neutron_api::{Api, ApiConfig, nb_router, router};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

struct Cloud {
    api: Arc<Api>,
    neutron: axum::Router,
    nb: axum::Router,
    auth: NbAuth,
    _dir: tempfile::TempDir,
}

impl Cloud {
    /// Agents are down one second after their last heartbeat.
    fn new() -> Cloud {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = nbdb::open(&format!(
            "embedded:{}",
            dir.path().join("nb.redb").display()
        ))
        .expect("store");
        let config = ApiConfig {
            agent_down_time: 1,
            report_interval: 1,
            ..ApiConfig::default()
        };
        let api = Api::new(store, config.check().expect("config"));
        let auth = NbAuth::new(b"the operator's secret, 32 bytes!").expect("secret");
        Cloud {
            neutron: router(api.clone()),
            nb: nb_router(api.clone(), auth.clone()),
            api,
            auth,
            _dir: dir,
        }
    }

    fn token(&self, who: Principal) -> String {
        self.auth.token(&who)
    }

    /// A heartbeat of host `host`'s controller, with its own token.
    async fn beat(&self, host: &str, applied: u64) -> (u16, Value) {
        let t = self.token(Principal::Host(host.into()));
        nb(
            self,
            "PUT",
            &format!("/nb/v1/agents/{host}"),
            Some(report(host, applied)),
            &t,
        )
        .await
    }

    async fn admin(&self, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        call(
            &self.neutron,
            method,
            uri,
            body,
            &[("x-project-id", "p"), ("x-roles", "admin")],
        )
        .await
    }

    async fn member(&self, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        call(&self.neutron, method, uri, body, &[("x-project-id", "p")]).await
    }
}

fn report(host: &str, applied: u64) -> Value {
    json!({
        "agent_type": "DF local controller", "binary": "dragonflow-controller",
        "host": host, "topic": "N/A", "availability_zone": null, "version": "0.1.0",
        "started_at": "2026-12-02T10:00:00Z", "applied_revision": applied,
        "configurations": {"tunnel_types": ["geneve"], "bridge_mappings": {}, "flows": 12, "devices": 2},
    })
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut r = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let req = r
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

async fn nb(c: &Cloud, method: &str, uri: &str, body: Option<Value>, token: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    call(&c.nb, method, uri, body, &[("authorization", &auth)]).await
}

fn hosts(v: &Value) -> Vec<&str> {
    v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["host"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_reports_only_for_itself() {
    let c = Cloud::new();
    assert_eq!(c.beat("h1", 3).await.0, 200);
    let h1 = c.token(Principal::Host("h1".into()));
    // Another host's name, in the path or in the report.
    let (s, v) = nb(&c, "PUT", "/nb/v1/agents/h2", Some(report("h2", 1)), &h1).await;
    assert_eq!(
        (s, v["NeutronError"]["type"].as_str()),
        (403, Some("PolicyNotAuthorized"))
    );
    assert_eq!(
        nb(&c, "PUT", "/nb/v1/agents/h1", Some(report("h2", 1)), &h1)
            .await
            .0,
        403
    );
    // Posing as an API server.
    let mut server = report("h1", 1);
    server["binary"] = json!("dragonflow-server");
    assert_eq!(
        nb(&c, "PUT", "/nb/v1/agents/h1", Some(server.clone()), &h1)
            .await
            .0,
        403
    );
    let reader = c.token(Principal::Reader);
    assert_eq!(
        nb(
            &c,
            "PUT",
            "/nb/v1/agents/h1",
            Some(report("h1", 1)),
            &reader
        )
        .await
        .0,
        403
    );
    let admin = c.token(Principal::Admin);
    assert_eq!(
        nb(&c, "PUT", "/nb/v1/agents/h1", Some(server), &admin)
            .await
            .0,
        200
    );
    // A malformed report is a 400, not a 500.
    let (s, v) = nb(
        &c,
        "PUT",
        "/nb/v1/agents/h1",
        Some(json!({"host": "h1"})),
        &h1,
    )
    .await;
    assert_eq!(s, 400, "{v}");
    // Without a token nothing is written.
    let (s, _) = call(&c.nb, "PUT", "/nb/v1/agents/h1", Some(report("h1", 1)), &[]).await;
    assert_eq!(s, 401);
    // Any token reads the realized state.
    let (s, v) = nb(&c, "GET", "/nb/v1/agents", None, &reader).await;
    assert_eq!(s, 200);
    let controllers: Vec<&Value> = v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["binary"] == "dragonflow-controller")
        .collect();
    assert_eq!(controllers.len(), 1, "{v}");
    assert_eq!(controllers[0]["applied_revision"], 3);
    assert_eq!(controllers[0]["alive"], true);
    assert!(v["last_commit"].is_u64(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_lists_shows_updates_and_deletes_agents() {
    let c = Cloud::new();
    assert_eq!(c.beat("h1", 3).await.0, 200);
    assert_eq!(c.beat("h2", 4).await.0, 200);
    let (s, v) = c.admin("GET", "/v2.0/agents", None).await;
    assert_eq!((s, hosts(&v)), (200, vec!["h1", "h2"]), "{v}");
    let a = v["agents"][0].as_object().unwrap();
    let mut keys: Vec<&str> = a.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "admin_state_up",
            "agent_type",
            "alive",
            "availability_zone",
            "binary",
            "configurations",
            "created_at",
            "description",
            "heartbeat_timestamp",
            "host",
            "id",
            "resources_synced",
            "started_at",
            "topic"
        ]
    );
    assert_eq!(a["agent_type"], "DF local controller");
    assert_eq!(a["binary"], "dragonflow-controller");
    assert_eq!(a["alive"], true);
    assert_eq!(a["admin_state_up"], true);
    assert_eq!(a["description"], Value::Null, "none set");
    assert_eq!(a["started_at"], "2026-12-02 10:00:00");
    let ts = a["heartbeat_timestamp"].as_str().unwrap();
    assert!(ts.len() == 19 && ts.as_bytes()[10] == b' ', "{ts}");
    assert_eq!(a["configurations"]["devices"], 2);
    assert_eq!(a["configurations"]["nb_revision"], 3);
    let id = a["id"].as_str().unwrap().to_string();

    // Filters, fields, sorting.
    let (_, v) = c.admin("GET", "/v2.0/agents?host=h2", None).await;
    assert_eq!(hosts(&v), ["h2"]);
    let (_, v) = c
        .admin(
            "GET",
            "/v2.0/agents?agent_type=DF%20local%20controller&alive=True",
            None,
        )
        .await;
    assert_eq!(hosts(&v), ["h1", "h2"]);
    let (_, v) = c
        .admin(
            "GET",
            "/v2.0/agents?sort_key=host&sort_dir=desc&fields=host",
            None,
        )
        .await;
    assert_eq!(v, json!({"agents": [{"host": "h2"}, {"host": "h1"}]}));
    let (s, v) = c.admin("GET", "/v2.0/agents?bogus=1", None).await;
    assert_eq!(
        (s, v["NeutronError"]["type"].as_str()),
        (400, Some("HTTPBadRequest"))
    );

    // Show and update.
    let (s, v) = c.admin("GET", &format!("/v2.0/agents/{id}"), None).await;
    assert_eq!((s, v["agent"]["host"].as_str()), (200, Some("h1")));
    let body = json!({"agent": {"admin_state_up": false, "description": "draining"}});
    let (s, v) = c
        .admin("PUT", &format!("/v2.0/agents/{id}"), Some(body))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["agent"]["admin_state_up"], false);
    // The setting survives the agent's next heartbeat.
    assert_eq!(c.beat("h1", 5).await.0, 200);
    let (_, v) = c
        .admin("GET", "/v2.0/agents?admin_state_up=False", None)
        .await;
    assert_eq!(hosts(&v), ["h1"]);
    assert_eq!(v["agents"][0]["description"], "draining");
    assert_eq!(v["agents"][0]["id"], id.as_str(), "the id is kept");
    assert_eq!(v["agents"][0]["configurations"]["nb_revision"], 5);
    for (body, message) in [
        (
            json!({"agent": {"host": "x"}}),
            "Cannot update read-only attribute host",
        ),
        (
            json!({"agent": {"alive": false}}),
            "Cannot update read-only attribute alive",
        ),
        (
            json!({"agent": {"bogus": 1}}),
            "Unrecognized attribute(s) 'bogus'",
        ),
        (
            json!({"agent": {"admin_state_up": "maybe"}}),
            "admin_state_up",
        ),
        (
            json!({"agent": {"description": "d".repeat(256)}}),
            "exceeds maximum length of 255",
        ),
    ] {
        let (s, v) = c
            .admin("PUT", &format!("/v2.0/agents/{id}"), Some(body.clone()))
            .await;
        let m = v["NeutronError"]["message"].as_str().unwrap_or_default();
        assert!(s == 400 && m.contains(message), "{body}: {s} {v}");
    }

    // Unknown ids.
    let (s, v) = c.admin("GET", "/v2.0/agents/nope", None).await;
    assert_eq!(
        (s, &v["NeutronError"]["type"], &v["NeutronError"]["message"]),
        (
            404,
            &json!("AgentNotFound"),
            &json!("Agent nope could not be found")
        )
    );
    assert_eq!(c.admin("DELETE", "/v2.0/agents/nope", None).await.0, 404);

    // Delete: gone, with its settings; its next heartbeat makes a new agent.
    assert_eq!(
        c.admin("DELETE", &format!("/v2.0/agents/{id}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        c.admin("GET", &format!("/v2.0/agents/{id}"), None).await.0,
        404
    );
    let (_, v) = c.admin("GET", "/v2.0/agents", None).await;
    assert_eq!(hosts(&v), ["h2"]);
    assert_eq!(c.beat("h1", 6).await.0, 200);
    let (_, v) = c.admin("GET", "/v2.0/agents?host=h1", None).await;
    assert_ne!(v["agents"][0]["id"], id.as_str());
    assert_eq!(v["agents"][0]["admin_state_up"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_hidden_from_non_admins() {
    let c = Cloud::new();
    assert_eq!(c.beat("h1", 1).await.0, 200);
    let (_, v) = c.admin("GET", "/v2.0/agents", None).await;
    let id = v["agents"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = c.member("GET", "/v2.0/agents", None).await;
    assert_eq!((s, v), (200, json!({"agents": []})));
    let path = format!("/v2.0/agents/{id}");
    for (method, body) in [
        ("GET", None),
        ("PUT", Some(json!({"agent": {"admin_state_up": false}}))),
        ("DELETE", None),
    ] {
        let (s, v) = c.member(method, &path, body).await;
        assert_eq!(
            (s, v["NeutronError"]["type"].as_str()),
            (404, Some("HTTPNotFound")),
            "{method}"
        );
    }
    let (_, v) = c.admin("GET", &path, None).await;
    assert_eq!(v["agent"]["admin_state_up"], true, "nothing changed");
    // The extension is listed.
    let (_, v) = c.member("GET", "/v2.0/extensions", None).await;
    assert!(
        v["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["alias"] == "agent"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_is_down_once_its_lease_runs_out_and_back_with_its_next_heartbeat() {
    let c = Cloud::new();
    assert!(
        !neutron_api::agents::live_controller(&c.api, "h1")
            .await
            .unwrap()
    );
    assert_eq!(c.beat("h1", 1).await.0, 200);
    assert!(
        neutron_api::agents::live_controller(&c.api, "h1")
            .await
            .unwrap()
    );
    assert!(
        !neutron_api::agents::live_controller(&c.api, "h2")
            .await
            .unwrap()
    );
    // agent_down_time is 1 s.
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert!(
        !neutron_api::agents::live_controller(&c.api, "h1")
            .await
            .unwrap()
    );
    let (_, v) = c.admin("GET", "/v2.0/agents?alive=False", None).await;
    assert_eq!(hosts(&v), ["h1"], "shown, as dead");
    assert_eq!(c.beat("h1", 2).await.0, 200);
    assert!(
        neutron_api::agents::live_controller(&c.api, "h1")
            .await
            .unwrap()
    );
    let (_, v) = c.admin("GET", "/v2.0/agents?alive=True", None).await;
    assert_eq!(hosts(&v), ["h1"]);
}

/// Zones come from the controllers' heartbeats: listed for networks and routers, named as
/// hints on create (an unknown one is 404, a change later is refused), and a network or
/// router shows the zones with a live controller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_zones_are_the_ones_controllers_report() {
    let c = Cloud::new();
    let t = c.token(Principal::Host("h1".into()));
    let mut r = report("h1", 1);
    r["availability_zone"] = json!("az1");
    assert_eq!(nb(&c, "PUT", "/nb/v1/agents/h1", Some(r), &t).await.0, 200);
    let (st, v) = c.member("GET", "/v2.0/availability_zones", None).await;
    assert_eq!(st, 200, "{v}");
    let mut got: Vec<String> = v["availability_zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| format!("{} {} {}", z["name"], z["resource"], z["state"]))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            r#""az1" "network" "available""#,
            r#""az1" "router" "available""#
        ]
    );
    let (_, v) = c
        .member("GET", "/v2.0/availability_zones?resource=router", None)
        .await;
    assert_eq!(v["availability_zones"].as_array().unwrap().len(), 1);

    for (coll, key) in [("networks", "network"), ("routers", "router")] {
        let (st, v) = c
            .member(
                "POST",
                &format!("/v2.0/{coll}"),
                Some(json!({ key: {"availability_zone_hints": ["az2"]} })),
            )
            .await;
        assert_eq!(
            (st, v["NeutronError"]["type"].as_str()),
            (404, Some("AvailabilityZoneNotFound")),
            "{v}"
        );
        let (st, v) = c
            .member(
                "POST",
                &format!("/v2.0/{coll}"),
                Some(json!({ key: {"availability_zone_hints": ["az1"]} })),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        assert_eq!(v[key]["availability_zone_hints"], json!(["az1"]));
        assert_eq!(v[key]["availability_zones"], json!(["az1"]));
        let id = v[key]["id"].as_str().unwrap();
        let (st, v) = c
            .member(
                "PUT",
                &format!("/v2.0/{coll}/{id}"),
                Some(json!({ key: {"availability_zone_hints": []} })),
            )
            .await;
        assert_eq!(st, 400, "{v}");
    }
    let (_, v) = c.member("GET", "/v2.0/networks", None).await;
    assert_eq!(v["networks"].as_array().unwrap().len(), 1, "{v}");
    // Once the zone's only controller is down, nothing serves there.
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let (_, v) = c.member("GET", "/v2.0/routers", None).await;
    assert_eq!(v["routers"][0]["availability_zones"], json!([]), "{v}");
    let (_, v) = c
        .member("GET", "/v2.0/availability_zones?state=unavailable", None)
        .await;
    assert_eq!(v["availability_zones"].as_array().unwrap().len(), 2, "{v}");
}

/// A JSON value of a few levels, from the shapes a report or an update is made of.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z/ ]{0,12}".prop_map(Value::from),
        Just(json!("h1")),
        Just(json!("dragonflow-controller")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "agent_type",
                    "binary",
                    "host",
                    "topic",
                    "availability_zone",
                    "version",
                    "started_at",
                    "applied_revision",
                    "configurations",
                    "admin_state_up",
                    "description",
                    "agent",
                    "alive",
                    "x",
                ])
                .prop_map(str::to_string),
                inner,
                0..8,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random reports and updates: a success or a Neutron error, never a 500 or a panic.
    #[test]
    fn random_reports_and_updates_never_fail_the_server(report in value(), update in value()) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let c = Cloud::new();
        rt.block_on(async {
            let h1 = c.token(Principal::Host("h1".into()));
            let (s, v) = nb(&c, "PUT", "/nb/v1/agents/h1", Some(report), &h1).await;
            prop_assert!(s == 200 || s == 400 || s == 403, "{s} {v}");
            prop_assert_eq!(c.beat("h1", 1).await.0, 200);
            let (_, v) = c.admin("GET", "/v2.0/agents", None).await;
            let id = v["agents"][0]["id"].as_str().unwrap_or_default().to_string();
            let (s, v) = c.admin("PUT", &format!("/v2.0/agents/{id}"), Some(update)).await;
            prop_assert!(s == 200 || s == 400, "{s} {v}");
            prop_assert!(v.get("NeutronError").is_some() || v.get("agent").is_some(), "{v}");
            Ok(())
        })?;
    }
}
