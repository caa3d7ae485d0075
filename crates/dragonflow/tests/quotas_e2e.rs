//! Quotas on every store backend, through real servers: 100 concurrent network creates of
//! one project against a quota of 10 leave exactly 10, every other one a 409 `OverQuota`;
//! with etcd and Redis the creates are split over two servers on the one store. Deletes
//! give the room back.

mod common;

use common::Server;
use serde_json::{Value, json};
use testbed::{StoreKind, StoreServer};

const TENANT: &[(&str, &str)] = &[("X-Project-Id", "q")];

fn used(srv: &Server) -> Value {
    let (st, v) = srv.call_as("GET", "/v2.0/quotas/q/details", None, TENANT);
    assert_eq!(st, 200, "{v}");
    v["quota"]["network"]["used"].clone()
}

fn hundred_creates_against_ten(servers: &[&Server]) {
    let a = servers[0];
    let (st, v) = a.call(
        "PUT",
        "/v2.0/quotas/q",
        Some(json!({"quota": {"network": 10}})),
    );
    assert_eq!(st, 200, "{v}");
    let results: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let srv = servers[i % servers.len()];
                s.spawn(move || {
                    let body = json!({"network": {"name": format!("n{i}")}});
                    srv.call_as("POST", "/v2.0/networks", Some(body), TENANT)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    let created = results.iter().filter(|(st, _)| *st == 201).count();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|(st, _)| *st == 409)
        .map(|(_, v)| v)
        .collect();
    assert_eq!((created, refused.len()), (10, 90), "{results:?}");
    for v in refused {
        assert_eq!(
            v["NeutronError"],
            json!({"type": "OverQuota", "detail": "",
                   "message": "Quota exceeded for resources: ['network']."})
        );
    }
    let (_, v) = a.call_as("GET", "/v2.0/networks", None, TENANT);
    let nets = v["networks"].as_array().expect("networks").clone();
    assert_eq!(nets.len(), 10);
    assert_eq!(used(a), 10);
    // A delete gives one back, on whichever server.
    let last = servers[servers.len() - 1];
    let id = nets[0]["id"].as_str().expect("id");
    let (st, _) = last.call_as("DELETE", &format!("/v2.0/networks/{id}"), None, TENANT);
    assert_eq!(st, 204);
    assert_eq!(used(a), 9);
    let body = || Some(json!({"network": {"name": "again"}}));
    assert_eq!(a.call_as("POST", "/v2.0/networks", body(), TENANT).0, 201);
    assert_eq!(
        last.call_as("POST", "/v2.0/networks", body(), TENANT).0,
        409
    );
    assert_eq!(used(last), 10);
}

fn on(kind: StoreKind) {
    let store = StoreServer::start(kind).expect("store server (scripts/setup)");
    let (a, b) = (
        Server::start_on(&store.url()),
        Server::start_on(&store.url()),
    );
    hundred_creates_against_ten(&[&a, &b]);
}

#[test]
fn embedded_refuses_past_the_quota_exactly() {
    let srv = Server::start();
    hundred_creates_against_ten(&[&srv]);
}

#[test]
fn etcd_refuses_past_the_quota_exactly_across_two_servers() {
    on(StoreKind::Etcd);
}

#[test]
fn redis_refuses_past_the_quota_exactly_across_two_servers() {
    on(StoreKind::Redis);
}
