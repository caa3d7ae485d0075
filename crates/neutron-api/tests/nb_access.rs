//! Who may call the NB store endpoints, in process: the Neutron router never serves
//! `/nb/v1`; on the NB router every request needs a token of the server's secret, any
//! token reads, a host writes only its own chassis, the bindings of ports it takes or
//! holds and its own SNAT port, the reader writes nothing and the admin anything.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use neutron_api::nb_auth::{NbAuth, Principal};
use neutron_api::{Api, ApiConfig, nb_router, router};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Cloud {
    neutron: axum::Router,
    nb: axum::Router,
    auth: NbAuth,
    _dir: tempfile::TempDir,
}

impl Cloud {
    fn new() -> Cloud {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = nbdb::open(&format!(
            "embedded:{}",
            dir.path().join("nb.redb").display()
        ))
        .expect("store");
        let api = Api::new(store, ApiConfig::default().check().expect("config"));
        let auth = NbAuth::new(b"the operator's secret, 32 bytes!").expect("secret");
        Cloud {
            neutron: router(api.clone()),
            nb: nb_router(api, auth.clone()),
            auth,
            _dir: dir,
        }
    }

    fn token(&self, who: Principal) -> String {
        self.auth.token(&who)
    }

    fn host(&self, name: &str) -> String {
        self.token(Principal::Host(name.into()))
    }
}

/// A call with JSON `body` and these headers; the status and the JSON answer.
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

/// A call to the NB router with `token`.
async fn nb(c: &Cloud, method: &str, uri: &str, body: Option<Value>, token: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    call(&c.nb, method, uri, body, &[("authorization", &auth)]).await
}

const ADMIN: &[(&str, &str)] = &[("x-project-id", "ops"), ("x-roles", "admin")];

fn error_type(v: &Value) -> &str {
    v["NeutronError"]["type"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_neutron_listener_never_serves_the_store() {
    let c = Cloud::new();
    let chassis = Some(json!({"ip": "203.0.113.66", "tunnel_types": ["geneve"]}));
    for headers in [
        &[("x-project-id", "mallory")][..],
        ADMIN,
        &[(
            "authorization",
            &*format!("Bearer {}", c.token(Principal::Admin)),
        )][..],
    ] {
        for (method, uri, body) in [
            ("GET", "/nb/v1/snapshot", None),
            ("GET", "/nb/v1/revision", None),
            ("GET", "/nb/v1/watch?after=0", None),
            ("GET", "/nb/v1/objects/chassis/host-a", None),
            ("PUT", "/nb/v1/chassis/host-a", chassis.clone()),
        ] {
            let (st, v) = call(&c.neutron, method, uri, body, headers).await;
            assert_eq!(
                (st, error_type(&v)),
                (404, "HTTPNotFound"),
                "{method} {uri}: {v}"
            );
        }
    }
    let (_, snap) = nb(&c, "GET", "/nb/v1/snapshot", None, &c.host("x")).await;
    assert_eq!(snap["records"], json!([]), "nothing was written");
}

#[tokio::test]
async fn nb_requests_need_a_valid_token() {
    let c = Cloud::new();
    let other = NbAuth::new(b"another cloud's secret, 32 bytes").expect("secret");
    let forged = c.host("host-a").replacen("host-a", "host-b", 1);
    let wrong_secret = format!("Bearer {}", other.token(&Principal::Admin));
    let forged = format!("Bearer {forged}");
    for headers in [
        &[][..],
        &[("authorization", wrong_secret.as_str())][..],
        &[("authorization", forged.as_str())][..],
        &[("authorization", "Basic YWRtaW46YWRtaW4=")][..],
        &[("x-project-id", "admin"), ("x-roles", "admin")][..],
    ] {
        for (method, uri) in [
            ("GET", "/nb/v1/snapshot"),
            ("GET", "/nb/v1/revision"),
            ("PUT", "/nb/v1/chassis/host-b"),
            ("GET", "/nb/v1/no-such-thing"),
        ] {
            let body = Some(json!({"ip": "192.0.2.9"}));
            let (st, v) = call(&c.nb, method, uri, body, headers).await;
            assert_eq!(
                (st, error_type(&v)),
                (401, "HTTPUnauthorized"),
                "{method} {uri} {headers:?}: {v}"
            );
        }
    }
    // The scheme is case-insensitive; any valid token reads.
    let lower = format!("bearer {}", c.token(Principal::Reader));
    let (st, _) = call(
        &c.nb,
        "GET",
        "/nb/v1/revision",
        None,
        &[("authorization", &lower)],
    )
    .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn a_host_writes_only_its_own_chassis_and_bindings() {
    let c = Cloud::new();
    let (a, b) = (c.host("host-a"), c.host("host-b"));
    let reader = c.token(Principal::Reader);
    let chassis = |ip: &str| Some(json!({"ip": ip, "tunnel_types": ["geneve"]}));
    let (st, _) = nb(&c, "PUT", "/nb/v1/chassis/host-a", chassis("192.0.2.1"), &a).await;
    assert_eq!(st, 200);
    for (token, who) in [(&b, "host-b"), (&reader, "reader")] {
        let (st, v) = nb(
            &c,
            "PUT",
            "/nb/v1/chassis/host-a",
            chassis("203.0.113.66"),
            token,
        )
        .await;
        assert_eq!(
            (st, error_type(&v)),
            (403, "PolicyNotAuthorized"),
            "{who}: {v}"
        );
    }
    let (_, got) = nb(&c, "GET", "/nb/v1/objects/chassis/host-a", None, &b).await;
    assert_eq!(
        got["value"]["ip"], "192.0.2.1",
        "host-b reads, and changed nothing"
    );
    let (st, _) = nb(
        &c,
        "PUT",
        "/nb/v1/chassis/host-a",
        chassis("192.0.2.10"),
        &c.token(Principal::Admin),
    )
    .await;
    assert_eq!(st, 200, "the admin repairs");

    // Bindings.
    let (_, net) = call(
        &c.neutron,
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {"name": "n"}})),
        ADMIN,
    )
    .await;
    let (_, port) = call(
        &c.neutron,
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"network_id": net["network"]["id"]}})),
        ADMIN,
    )
    .await;
    let uri = format!(
        "/nb/v1/ports/{}/binding",
        port["port"]["id"].as_str().unwrap()
    );
    let bind = |host: &str, status: &str| Some(json!({"host": host, "status": status}));
    let status_only = Some(json!({"status": "DOWN"}));
    let bound_to = |v: &Value| {
        v["port"]["binding:host_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (st, v) = nb(&c, "PUT", &uri, bind("host-a", "ACTIVE"), &b).await;
    assert_eq!(st, 403, "host-b binds a port to host-a: {v}");
    let (st, v) = nb(&c, "PUT", &uri, bind("host-b", "ACTIVE"), &reader).await;
    assert_eq!(st, 403, "the reader: {v}");
    let (st, v) = nb(&c, "PUT", &uri, bind("host-a", "ACTIVE"), &a).await;
    assert_eq!((st, bound_to(&v)), (200, "host-a".into()), "{v}");
    for body in [status_only.clone(), bind("", "DOWN")] {
        let (st, v) = nb(&c, "PUT", &uri, body, &b).await;
        assert_eq!(st, 403, "host-b touches host-a's port: {v}");
    }
    let (st, _) = nb(&c, "PUT", &uri, status_only.clone(), &a).await;
    assert_eq!(st, 200, "its own port's status");
    // A VM moved to host-b: host-b takes the port; host-a may no longer touch it.
    let (st, v) = nb(&c, "PUT", &uri, bind("host-b", "ACTIVE"), &b).await;
    assert_eq!((st, bound_to(&v)), (200, "host-b".into()), "{v}");
    let (st, _) = nb(&c, "PUT", &uri, bind("", "DOWN"), &a).await;
    assert_eq!(st, 403);
    let (st, v) = nb(&c, "PUT", &uri, bind("", "DOWN"), &b).await;
    assert_eq!(
        (st, bound_to(&v)),
        (200, String::new()),
        "host-b releases its own: {v}"
    );
}

#[tokio::test]
async fn a_host_gets_its_own_snat_port_and_no_other() {
    let c = Cloud::new();
    let (a, b) = (c.host("host-a"), c.host("host-b"));
    let admin = c.token(Principal::Admin);
    let ext = json!({"network": {"name": "public", "router:external": true,
        "provider:network_type": "flat", "provider:physical_network": "physnet1"}});
    let (st, ext) = call(&c.neutron, "POST", "/v2.0/networks", Some(ext), ADMIN).await;
    assert_eq!(st, 201, "{ext}");
    let ext = ext["network"]["id"].as_str().unwrap().to_string();
    let subnet = json!({"subnet": {"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"}});
    let (st, _) = call(&c.neutron, "POST", "/v2.0/subnets", Some(subnet), ADMIN).await;
    assert_eq!(st, 201);
    let uri = format!("/nb/v1/snat/{ext}");

    let (st, p) = nb(&c, "PUT", &uri, None, &a).await;
    assert_eq!(st, 201, "{p}");
    let p = &p["port"];
    assert_eq!(
        (
            &p["device_owner"],
            &p["device_id"],
            &p["binding:host_id"],
            &p["network_id"]
        ),
        (
            &json!("network:chassis_snat"),
            &json!("host-a"),
            &json!("host-a"),
            &json!(ext)
        )
    );
    let (st, again) = nb(&c, "PUT", &uri, Some(json!({"host": "host-a"})), &a).await;
    assert_eq!((st, &again["port"]["id"]), (200, &p["id"]), "the same port");
    let (st, v) = nb(&c, "PUT", &uri, Some(json!({"host": "host-b"})), &a).await;
    assert_eq!(st, 403, "host-a asks for host-b's: {v}");
    let (st, v) = nb(&c, "PUT", &uri, None, &c.token(Principal::Reader)).await;
    assert_eq!(st, 403, "{v}");
    let (st, v) = nb(&c, "PUT", &uri, None, &admin).await;
    assert_eq!(st, 400, "the admin names the host: {v}");
    let (st, v) = nb(&c, "PUT", &uri, Some(json!({"host": "host-c"})), &admin).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = nb(&c, "PUT", &uri, None, &b).await;
    assert_eq!(st, 201, "{v}");
    let (_, ports) = call(
        &c.neutron,
        "GET",
        "/v2.0/ports?device_owner=network:chassis_snat",
        None,
        ADMIN,
    )
    .await;
    assert_eq!(ports["ports"].as_array().unwrap().len(), 3, "{ports}");

    // Only external networks, and ones that exist.
    let (_, tenant) = call(
        &c.neutron,
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {}})),
        ADMIN,
    )
    .await;
    let tenant = tenant["network"]["id"].as_str().unwrap();
    let (st, v) = nb(&c, "PUT", &format!("/nb/v1/snat/{tenant}"), None, &a).await;
    assert_eq!((st, error_type(&v)), (400, "InvalidInput"), "{v}");
    let (st, v) = nb(&c, "PUT", "/nb/v1/snat/no-such-network", None, &a).await;
    assert_eq!((st, error_type(&v)), (404, "NetworkNotFound"), "{v}");
}

#[tokio::test]
async fn a_host_reports_many_bindings_in_one_request_and_only_its_own_are_written() {
    let c = Cloud::new();
    let (a, b) = (c.host("host-a"), c.host("host-b"));
    let (_, net) = call(
        &c.neutron,
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {"name": "n"}})),
        ADMIN,
    )
    .await;
    let mut ids = Vec::new();
    // More than one transaction's worth (a hundred to a transaction).
    for _ in 0..130 {
        let (st, port) = call(
            &c.neutron,
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": net["network"]["id"]}})),
            ADMIN,
        )
        .await;
        assert_eq!(st, 201, "{port}");
        ids.push(port["port"]["id"].as_str().unwrap().to_string());
    }
    // host-b holds the last one.
    let last = ids.last().unwrap().clone();
    let (st, v) = nb(
        &c,
        "PUT",
        &format!("/nb/v1/ports/{last}/binding"),
        Some(json!({"host": "host-b", "status": "ACTIVE"})),
        &b,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    // host-a may take any port (a VM plugged or moved there), but not bind one to host-b.
    let mut bindings: Vec<Value> = ids
        .iter()
        .map(|id| json!({"port": id, "host": "host-a", "status": "ACTIVE"}))
        .collect();
    if let Some(b) = bindings.last_mut() {
        b["host"] = json!("host-b");
    }
    bindings.push(json!({"port": "no-such-port", "host": "host-a", "status": "ACTIVE"}));
    let body = Some(json!({ "bindings": bindings }));
    let (st, v) = nb(
        &c,
        "PUT",
        "/nb/v1/bindings",
        body.clone(),
        &c.token(Principal::Reader),
    )
    .await;
    assert_eq!(st, 403, "the reader writes nothing: {v}");
    let (st, v) = nb(&c, "PUT", "/nb/v1/bindings", body, &a).await;
    assert_eq!(st, 200, "{v}");
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), ids.len() + 1);
    let ok = |i: usize| results[i]["ok"] == true;
    assert!((0..ids.len() - 1).all(ok), "every port free to take: {v}");
    assert!(
        !ok(ids.len() - 1),
        "host-b's port: {}",
        results[ids.len() - 1]
    );
    assert!(!ok(ids.len()), "a port that does not exist");
    for (i, id) in ids.iter().enumerate() {
        let (_, p) = call(&c.neutron, "GET", &format!("/v2.0/ports/{id}"), None, ADMIN).await;
        let (host, status) = if i + 1 == ids.len() {
            ("host-b", "ACTIVE")
        } else {
            ("host-a", "ACTIVE")
        };
        assert_eq!(p["port"]["binding:host_id"], host, "{p}");
        assert_eq!(p["port"]["status"], status);
    }
    let (st, v) = nb(
        &c,
        "PUT",
        "/nb/v1/bindings",
        Some(json!({"bindings": [{"port": ids[0], "status": "SLEEPING"}]})),
        &a,
    )
    .await;
    assert_eq!(st, 400, "a bad status refuses the whole request: {v}");
}

#[tokio::test]
async fn many_objects_are_looked_up_in_one_request_in_order() {
    let c = Cloud::new();
    let reader = c.token(Principal::Reader);
    let (_, net) = call(
        &c.neutron,
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {"name": "n"}})),
        ADMIN,
    )
    .await;
    let net_id = net["network"]["id"].as_str().unwrap().to_string();
    let (_, port) = call(
        &c.neutron,
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"network_id": net_id}})),
        ADMIN,
    )
    .await;
    let port_id = port["port"]["id"].as_str().unwrap().to_string();
    let body = json!({"objects": [
        {"table": "port", "id": port_id},
        {"table": "port", "id": "not-there"},
        {"table": "network", "id": net_id},
    ]});
    let (st, v) = nb(&c, "POST", "/nb/v1/lookup", Some(body), &reader).await;
    assert_eq!(st, 200, "{v}");
    let r = v["records"].as_array().expect("records");
    assert_eq!(r.len(), 3);
    assert_eq!(r[0]["id"], port_id.as_str());
    assert_eq!(
        r[0]["topic"],
        net_id.as_str(),
        "a port's topic is its network"
    );
    assert!(r[1].is_null(), "{v}");
    assert_eq!(
        (r[2]["table"].as_str(), r[2]["id"].as_str()),
        (Some("network"), Some(net_id.as_str()))
    );
    let (st, _) = nb(
        &c,
        "POST",
        "/nb/v1/lookup",
        Some(json!({"objects": [{"id": "x"}]})),
        &reader,
    )
    .await;
    assert_eq!(st, 400, "an object with no table");
    let (st, _) = call(
        &c.nb,
        "POST",
        "/nb/v1/lookup",
        Some(json!({"objects": []})),
        &[],
    )
    .await;
    assert_eq!(st, 401, "no token");
}
