//! The isolation holes of issue 15, tried as an attacker would, over real HTTP against a
//! real `dragonflow server`: a tenant cannot reach the NB store through the Neutron
//! listener; on the NB listener a request needs a token and a host's token writes only its
//! own chassis; a web page's cross-origin `text/plain` POST creates nothing; and a
//! controller whose chassis record is overwritten (with admin credentials, or directly in
//! the store) restores it within seconds.

mod common;

use common::Server;
use common::cloud::{two_hosts, two_hosts_on, wait_until};
use neutron_api::nb_auth::Principal;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

/// `dragonflow nb-token ARGS` with the server's secret, as the operator makes a token.
fn nb_token(srv: &Server, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .arg("nb-token")
        .arg("--secret-file")
        .arg(srv.secret_file())
        .args(args)
        .output()
        .expect("dragonflow nb-token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn neutron_error(got: &(u16, Value), status: u16, kind: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["NeutronError"]["type"], kind, "{}", got.1);
}

/// What the store holds of chassis `name`, read with the admin token.
fn chassis(srv: &Server, name: &str) -> Value {
    srv.nb_call("GET", &format!("/nb/v1/objects/chassis/{name}"), None)
        .1
}

#[test]
fn a_tenant_cannot_reach_the_store_through_the_neutron_listener() {
    // The server as an operator runs it: no implicit admin.
    let srv = Server::start_args(&[]);
    let admin_token = format!("Bearer {}", common::token(Principal::Admin));
    let who: [&[(&str, &str)]; 3] = [
        &[("X-Project-Id", "mallory")],
        &[("X-Project-Id", "mallory"), ("X-Roles", "admin")],
        &[("Authorization", &admin_token)],
    ];
    for headers in who {
        for (method, path, body) in [
            ("GET", "/nb/v1/snapshot", None),
            ("GET", "/nb/v1/revision", None),
            ("GET", "/nb/v1/watch?after=0", None),
            (
                "PUT",
                "/nb/v1/chassis/host-a",
                Some(json!({"ip": "203.0.113.66", "tunnel_types": ["geneve"]})),
            ),
        ] {
            let got = srv.call_as(method, path, body, headers);
            neutron_error(&got, 404, "HTTPNotFound");
        }
    }
    let got = srv.nb_call("GET", "/nb/v1/objects/chassis/host-a", None);
    neutron_error(&got, 404, "ObjectNotFound");
}

#[test]
fn the_nb_listener_needs_a_token_and_a_host_writes_only_its_own_chassis() {
    let srv = Server::start_args(&[]);
    let host_a = nb_token(&srv, &["--host", "host-a"]);
    let host_b = nb_token(&srv, &["--host", "host-b"]);
    let record = |ip: &str| Some(json!({"ip": ip, "tunnel_types": ["geneve"]}));
    let (st, v) = srv.nb_call_as(
        "PUT",
        "/nb/v1/chassis/host-a",
        record("192.0.2.1"),
        Some(&host_a),
    );
    assert_eq!(st, 200, "{v}");

    // host-b tries to draw host-a's tunnels to itself.
    let got = srv.nb_call_as(
        "PUT",
        "/nb/v1/chassis/host-a",
        record("192.0.2.2"),
        Some(&host_b),
    );
    neutron_error(&got, 403, "PolicyNotAuthorized");
    // It may read the store.
    let (st, snap) = srv.nb_call_as("GET", "/nb/v1/snapshot", None, Some(&host_b));
    assert_eq!(st, 200, "{snap}");
    assert!(
        snap["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "host-a"),
        "{snap}"
    );
    // Without a token, or with one of another secret, nothing at all.
    let forged = host_b.replacen("host-b", "host-a", 1);
    for token in [None, Some(forged.as_str()), Some("admin:00")] {
        for (method, path, body) in [
            ("GET", "/nb/v1/snapshot", None),
            ("GET", "/nb/v1/objects/chassis/host-a", None),
            ("PUT", "/nb/v1/chassis/host-a", record("192.0.2.2")),
        ] {
            let got = srv.nb_call_as(method, path, body, token);
            neutron_error(&got, 401, "HTTPUnauthorized");
        }
    }
    assert_eq!(chassis(&srv, "host-a")["value"]["ip"], "192.0.2.1");
    // The tokens `nb-token` makes are the ones the harness derives from the same secret.
    assert_eq!(host_b, common::host_token("host-b"));
    assert_eq!(
        nb_token(&srv, &["--admin"]),
        common::token(Principal::Admin)
    );
}

/// A POST as a web page in an operator's browser sends it to the API on loopback: no
/// preflight for `text/plain`.
fn browser_post(srv: &Server, body: &str) -> (u16, Option<String>, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let req = ureq::http::Request::builder()
        .method("POST")
        .uri(format!("{}/v2.0/networks", srv.url))
        .header("Origin", "http://attacker.example")
        .header("Content-Type", "text/plain;charset=UTF-8")
        .body(body.to_string())
        .expect("request");
    let mut resp = agent.run(req).expect("http");
    let acao = resp
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        resp.status().as_u16(),
        acao,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn a_web_page_cannot_create_objects_through_the_api() {
    let body = json!({"network": {"name": "from-a-web-page"}}).to_string();
    // Even with noauth_default_admin on (the sandbox), where no project means admin.
    let srv = Server::start();
    let (st, acao, v) = browser_post(&srv, &body);
    neutron_error(&(st, v), 415, "HTTPUnsupportedMediaType");
    assert_eq!(acao, None, "no CORS header");
    let (_, nets) = srv.call("GET", "/v2.0/networks", None);
    assert_eq!(nets["networks"], json!([]), "nothing was created");

    // Without it, the same request as JSON (a page cannot send that without a preflight)
    // and no project is refused too.
    let strict = Server::start_args(&[]);
    let got = strict.call(
        "POST",
        "/v2.0/networks",
        Some(serde_json::from_str(&body).unwrap()),
    );
    neutron_error(&got, 401, "HTTPUnauthorized");
    let got = strict.call("GET", "/v2.0/networks", None);
    neutron_error(&got, 401, "HTTPUnauthorized");
    assert_eq!(strict.call("GET", "/", None).0, 200, "discovery stays open");
    let got = strict.call_as("GET", "/v2.0/networks", None, &[("X-Project-Id", "p")]);
    assert_eq!(got.0, 200, "{}", got.1);
    assert_eq!(got.1["networks"], json!([]));
}

#[test]
fn a_controller_restores_its_chassis_record_overwritten_through_the_api() {
    if !testbed::require_root(
        "a_controller_restores_its_chassis_record_overwritten_through_the_api",
    ) {
        return;
    }
    let t = two_hosts();
    let net = t.srv.network("n", "10.0.0.0/24");
    let (a, ip_a) = t.vm(&net, 0);
    let (b, ip_b) = t.vm(&net, 1);
    assert!(a.pings(&ip_b), "{}", t.dumps());
    assert_eq!(chassis(&t.srv, "host-a")["value"]["ip"], "192.0.2.1");

    // An admin-credentialed write (a mistake, or a leaked admin token) moves host-a's
    // tunnel endpoint elsewhere.
    let (st, v) = t.srv.nb_call(
        "PUT",
        "/nb/v1/chassis/host-a",
        Some(json!({"ip": "192.0.2.99", "tunnel_types": ["geneve"]})),
    );
    assert_eq!(st, 200, "{v}");
    wait_until(
        "host-a to restore its chassis record",
        Duration::from_secs(5),
        || chassis(&t.srv, "host-a")["value"]["ip"] == "192.0.2.1",
    );
    assert_eq!(
        chassis(&t.srv, "host-a")["value"]["tunnel_types"],
        json!(["geneve", "vxlan", "gre"])
    );
    assert!(
        t.ctl[0].log().contains("restoring it"),
        "a warning: {}",
        t.ctl[0].log()
    );
    assert!(
        b.pings(&ip_a),
        "host-b tunnels to host-a again\n{}",
        t.dumps()
    );
}

#[test]
fn a_controller_restores_its_chassis_record_changed_in_the_store() {
    if !testbed::require_root("a_controller_restores_its_chassis_record_changed_in_the_store") {
        return;
    }
    let store = testbed::StoreServer::start(testbed::StoreKind::Redis).expect("redis");
    let srv = Server::start_on(&store.url());
    let t = two_hosts_on(srv, &store.url());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = rt.block_on(nbdb::connect(&store.url())).expect("store");
    let read = || {
        rt.block_on(db.get("chassis", "host-b"))
            .expect("read")
            .map(|r| serde_json::from_slice::<Value>(&r.value).expect("json"))
    };
    assert_eq!(read().expect("host-b registered")["ip"], "192.0.2.2");

    // Someone with the store's credentials deletes host-b's record, then rewrites it.
    let rev = rt
        .block_on(db.get("chassis", "host-b"))
        .unwrap()
        .unwrap()
        .revision;
    rt.block_on(db.commit(vec![nbdb::Op::delete(
        "chassis",
        "host-b",
        nbdb::Expect::Revision(rev),
    )]))
    .expect("delete");
    wait_until(
        "host-b to write its record back",
        Duration::from_secs(5),
        || read().is_some_and(|c| c["ip"] == "192.0.2.2"),
    );
    let wrong = json!({"id": "host-b", "ip": "192.0.2.66", "tunnel_types": ["geneve"]});
    rt.block_on(db.commit(vec![nbdb::Op::put(
        "chassis",
        "host-b",
        serde_json::to_vec(&wrong).unwrap(),
        nbdb::Expect::Any,
    )]))
    .expect("put");
    // Not at once: at most one rewrite a second.
    wait_until(
        "host-b to restore its record",
        Duration::from_secs(5),
        || read().is_some_and(|c| c["ip"] == "192.0.2.2"),
    );
    let log = t.ctl[1].log();
    assert!(log.contains("was deleted; restoring it"), "{log}");
    assert!(log.contains("changed by someone else"), "{log}");
}
