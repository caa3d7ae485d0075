//! The NB store served over HTTP by the server: snapshot, and a watch that streams every
//! change after a revision, filtered by topic (a network, or a project) and table.

mod common;

use common::Server;
use neutron_api::nb_auth::Principal;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};

#[test]
fn snapshot_then_watch_sees_later_changes_of_its_topics_only() {
    let srv = Server::start();
    let alice = [("X-Project-Id", "alice")];
    let bob = [("X-Project-Id", "bob")];
    let network = |name: &str, who: &[(&str, &str)]| {
        let (st, n) = srv.call_as(
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"name": name}})),
            who,
        );
        assert_eq!(st, 201, "{n}");
        n["network"]["id"].as_str().unwrap().to_string()
    };
    let (a, b) = (network("a", &alice), network("b", &bob));
    let (_, snap) = srv.nb_call("GET", "/nb/v1/snapshot?tables=network", None);
    let rev = snap["revision"].as_u64().expect("revision");
    let records = snap["records"].as_array().expect("records");
    assert_eq!(records.len(), 2, "{snap}");
    let rec_a = records.iter().find(|r| r["id"] == a.as_str()).expect("a");
    assert_eq!(rec_a["value"]["name"], "a");
    assert_eq!(rec_a["topic"], a.as_str(), "a network is its own topic");

    // Everything on network a comes with a's topic, whoever creates it.
    let url = format!(
        "{}/nb/v1/watch?after={rev}&topics={a}&tables=port",
        srv.nb_url
    );
    let resp = ureq::get(&url)
        .header(
            "Authorization",
            &format!("Bearer {}", common::token(Principal::Reader)),
        )
        .call()
        .expect("watch");
    let mut lines = BufReader::new(resp.into_body().into_reader()).lines();
    srv.call_as(
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"network_id": b}})),
        &bob,
    );
    let (st, pa) = srv.call(
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"network_id": a}})),
    );
    assert_eq!(st, 201, "{pa}");
    let id = pa["port"]["id"].as_str().unwrap().to_string();
    srv.call("DELETE", &format!("/v2.0/ports/{id}"), None);
    let mut next = || -> Value {
        loop {
            let l = lines.next().expect("stream open").expect("line");
            if l.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&l).expect("json line");
            // Progress lines say how far the stream read past other topics' changes.
            if nbdb::source::wire::progress(&v).is_none() {
                return v;
            }
        }
    };
    let c1 = next();
    assert_eq!(
        c1["id"],
        id.as_str(),
        "the port on b is not delivered: {c1}"
    );
    assert!(c1["revision"].as_u64().unwrap() > rev);
    let c2 = next();
    assert_eq!(
        (c2["id"].as_str(), &c2["value"]),
        (Some(id.as_str()), &Value::Null),
        "deletion: {c2}"
    );
    assert_eq!(c2["topic"], a.as_str(), "a deletion carries its topic");

    // One object by id, with its topic (how a host learns what to follow).
    let (st, one) = srv.nb_call("GET", &format!("/nb/v1/objects/network/{b}"), None);
    assert_eq!(st, 200, "{one}");
    assert_eq!(
        (one["topic"].as_str(), &one["value"]["name"]),
        (Some(b.as_str()), &json!("b"))
    );
    let (st, none) = srv.nb_call("GET", "/nb/v1/objects/network/nope", None);
    assert_eq!(st, 404, "{none}");
}

#[test]
fn watch_parameters_are_checked() {
    let srv = Server::start();
    assert_eq!(srv.nb_call("GET", "/nb/v1/watch", None).0, 400);
    assert_eq!(srv.nb_call("GET", "/nb/v1/watch?after=x", None).0, 400);
    assert_eq!(srv.nb_call("GET", "/nb/v1/snapshot?colour=1", None).0, 400);
    let (st, v) = srv.nb_call("GET", "/nb/v1/revision", None);
    assert_eq!(st, 200);
    assert!(v["revision"].is_u64());
}

#[test]
fn controllers_register_chassis_and_report_port_bindings() {
    let srv = Server::start();
    let (st, c) = srv.nb_call(
        "PUT",
        "/nb/v1/chassis/host-a",
        Some(json!({"ip": "192.0.2.10", "tunnel_types": ["geneve", "vxlan"]})),
    );
    assert_eq!(st, 200, "{c}");
    let (_, snap) = srv.nb_call("GET", "/nb/v1/snapshot?tables=chassis", None);
    assert_eq!(snap["records"][0]["value"]["ip"], "192.0.2.10", "{snap}");
    assert_eq!(
        srv.nb_call("PUT", "/nb/v1/chassis/host-b", Some(json!({"ip": "nope"})))
            .0,
        400
    );
    assert_eq!(
        srv.nb_call(
            "PUT",
            "/nb/v1/chassis/host-b",
            Some(json!({"ip": "192.0.2.11", "tunnel_types": ["vlan"]}))
        )
        .0,
        400
    );

    let net = srv.create("networks", "network", json!({"name": "n"}));
    let port = srv.create("ports", "port", json!({"network_id": net["id"]}));
    let id = port["id"].as_str().unwrap();
    assert_eq!(port["status"], "DOWN");
    let (st, v) = srv.nb_call(
        "PUT",
        &format!("/nb/v1/ports/{id}/binding"),
        Some(json!({"host": "host-a", "status": "ACTIVE"})),
    );
    assert_eq!(st, 200, "{v}");
    let (_, shown) = srv.call("GET", &format!("/v2.0/ports/{id}"), None);
    assert_eq!(shown["port"]["status"], "ACTIVE");
    assert_eq!(shown["port"]["binding:host_id"], "host-a");
    assert_eq!(shown["port"]["binding:vif_type"], "ovs");
    assert_eq!(
        srv.nb_call(
            "PUT",
            &format!("/nb/v1/ports/{id}/binding"),
            Some(json!({"status": "UP"}))
        )
        .0,
        400
    );
    assert_eq!(
        srv.nb_call(
            "PUT",
            "/nb/v1/ports/9d2c6b03-7d84-4dd9-94d6-c628a39a039e/binding",
            Some(json!({"status": "DOWN"}))
        )
        .0,
        404
    );
}
