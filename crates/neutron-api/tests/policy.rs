//! The policy matrix, in process: five callers (admin; member and reader of the owning
//! project; member and reader of another project) × eight resources × create, list,
//! show, update and delete, each checked for Neutron's status (201/200/204, 403, 404),
//! and the error type of every refusal. Then what RBAC policies change.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use neutron_api::{Api, ApiConfig, router};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};
use tower::ServiceExt;

/// A project (ids are UUIDs, as RBAC targets must be) and its role.
#[derive(Clone, Copy, Debug)]
struct Who(&'static str, &'static str);

const P: &str = "11111111111111111111111111111111";
const Q: &str = "22222222222222222222222222222222";
const ADMIN: Who = Who("99999999999999999999999999999999", "admin");
const P_MEMBER: Who = Who(P, "member");
const P_READER: Who = Who(P, "reader");
const Q_MEMBER: Who = Who(Q, "member");
const Q_READER: Who = Who(Q, "reader");
const CALLERS: [Who; 5] = [ADMIN, P_MEMBER, P_READER, Q_MEMBER, Q_READER];

pub struct Cloud {
    app: axum::Router,
    _dir: tempfile::TempDir,
    counter: AtomicU32,
}

impl Cloud {
    fn new() -> Cloud {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = nbdb::open(&format!(
            "embedded:{}",
            dir.path().join("nb.redb").display()
        ))
        .expect("store");
        let config = ApiConfig::default().check().expect("config");
        Cloud {
            app: router(Api::new(store, config)),
            _dir: dir,
            counter: AtomicU32::new(1),
        }
    }

    fn next(&self) -> u32 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    async fn call(&self, who: Who, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("x-project-id", who.0)
            .header("x-roles", who.1)
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn made(&self, who: Who, collection: &str, body: Value) -> String {
        let (status, v) = self
            .call(who, "POST", &format!("/v2.0/{collection}"), Some(body))
            .await;
        assert_eq!(status, 201, "{collection} by {who:?}: {v}");
        let obj = v.as_object().and_then(|o| o.values().next()).expect("object");
        obj["id"].as_str().expect("id").to_string()
    }
}

/// P's network, subnet and security group, and the admin's external network.
struct World {
    network: String,
    group: String,
    external: String,
}

async fn world(c: &Cloud) -> World {
    let network = c.made(P_MEMBER, "networks", json!({"network": {"name": "n"}})).await;
    c.made(
        P_MEMBER,
        "subnets",
        json!({"subnet": {"network_id": network, "ip_version": 4, "cidr": "10.0.0.0/24"}}),
    )
    .await;
    let group = c
        .made(P_MEMBER, "security-groups", json!({"security_group": {"name": "g"}}))
        .await;
    let external = c
        .made(
            ADMIN,
            "networks",
            json!({"network": {"name": "ext", "router:external": true}}),
        )
        .await;
    c.made(
        ADMIN,
        "subnets",
        json!({"subnet": {"network_id": external, "ip_version": 4, "cidr": "203.0.113.0/24"}}),
    )
    .await;
    World {
        network,
        group,
        external,
    }
}

/// A fresh POST body of a resource (unique where uniqueness is checked).
fn body(c: &Cloud, w: &World, key: &str) -> Value {
    let n = c.next();
    match key {
        "network" => json!({"network": {"name": "x"}}),
        "subnet" => json!({"subnet": {"network_id": w.network, "ip_version": 4,
            "cidr": format!("10.{}.0.0/24", n % 250 + 1)}}),
        "port" => json!({"port": {"network_id": w.network}}),
        "router" => json!({"router": {"name": "r"}}),
        "floatingip" => json!({"floatingip": {"floating_network_id": w.external}}),
        "security_group" => json!({"security_group": {"name": "g2"}}),
        "security_group_rule" => json!({"security_group_rule": {
            "security_group_id": w.group, "direction": "ingress", "protocol": "tcp",
            "port_range_min": n, "port_range_max": n}}),
        _ => json!({"rbac_policy": {"object_type": "network", "object_id": w.network,
            "action": "access_as_shared", "target_tenant": format!("{n:032x}")}}),
    }
}

/// A PUT body that changes something.
fn change(key: &str) -> Value {
    let n = format!("{:032x}", 0xabc_u32);
    match key {
        "security_group_rule" | "floatingip" => json!({key: {"description": "d"}}),
        "rbac_policy" => json!({key: {"target_tenant": n}}),
        _ => json!({key: {"name": "changed"}}),
    }
}

const RESOURCES: [(&str, &str); 8] = [
    ("network", "networks"),
    ("subnet", "subnets"),
    ("port", "ports"),
    ("router", "routers"),
    ("floatingip", "floatingips"),
    ("security_group", "security-groups"),
    ("security_group_rule", "security-group-rules"),
    ("rbac_policy", "rbac-policies"),
];

/// The expected create status for each caller (admin, P member, P reader, Q member, Q
/// reader). As in Neutron, a subnet or port on a network Q may not use is 404 before
/// any role is looked at; a rule or policy on P's group or network is checked against
/// Q's role first (403 for its reader), and is 404 to its member.
fn create_expected(key: &str) -> [u16; 5] {
    match key {
        "subnet" | "port" => [201, 201, 403, 404, 404],
        "security_group_rule" | "rbac_policy" => [201, 201, 403, 404, 403],
        _ => [201, 201, 403, 201, 403],
    }
}

fn error_type(status: u16, v: &Value) -> String {
    if status < 400 {
        return String::new();
    }
    v["NeutronError"]["type"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn every_role_on_every_resource_gets_neutrons_answer() {
    let c = Cloud::new();
    let w = world(&c).await;
    let mut failures = Vec::new();
    for (key, path) in RESOURCES {
        let coll = format!("/v2.0/{path}");
        // Create, by each caller.
        for (who, want) in CALLERS.into_iter().zip(create_expected(key)) {
            let (status, v) = c.call(who, "POST", &coll, Some(body(&c, &w, key))).await;
            let kind = error_type(status, &v);
            let kind_ok = match status {
                403 => kind == "PolicyNotAuthorized",
                404 => kind.ends_with("NotFound"),
                _ => true,
            };
            if status != want || !kind_ok {
                failures.push(format!("create {key} as {who:?}: {status} (want {want}) {v}"));
            }
            if status == 403 {
                let msg = v["NeutronError"]["message"].as_str().unwrap_or_default();
                if !msg.ends_with("is disallowed by policy") {
                    failures.push(format!("create {key} as {who:?}: message {msg}"));
                }
            }
        }
        // List, show, update, delete of one of P's objects: one object per caller, so
        // each delete has its own.
        for (who, seen) in CALLERS.into_iter().zip([true, true, true, false, false]) {
            let id = c.made(P_MEMBER, path, body(&c, &w, key)).await;
            let uri = format!("{coll}/{id}");
            let (status, v) = c.call(who, "GET", &coll, None).await;
            let listed = v[format!("{}s", key).replace("policys", "policies")]
                .as_array()
                .is_some_and(|a| a.iter().any(|o| o["id"] == id));
            if status != 200 || listed != seen {
                failures.push(format!("list {key} as {who:?}: {status}, listed {listed}"));
            }
            let (show, update, delete) = match (seen, who.1) {
                (false, _) => (404, 404, 404),
                (true, "reader") => (200, 403, 403),
                _ => (200, 200, 204),
            };
            let (status, v) = c.call(who, "GET", &uri, None).await;
            if status != show {
                failures.push(format!("show {key} as {who:?}: {status} (want {show}) {v}"));
            }
            let (status, v) = c.call(who, "PUT", &uri, Some(change(key))).await;
            let kind = error_type(status, &v);
            if status != update || (status == 404 && !kind.ends_with("NotFound")) {
                failures.push(format!("update {key} as {who:?}: {status} (want {update}) {v}"));
            }
            let (status, v) = c.call(who, "DELETE", &uri, None).await;
            if status != delete {
                failures.push(format!("delete {key} as {who:?}: {status} (want {delete}) {v}"));
            }
            // A refused delete left it there.
            let (status, _) = c.call(P_MEMBER, "GET", &uri, None).await;
            let want = if delete == 204 { 404 } else { 200 };
            if status != want {
                failures.push(format!("{key} after delete as {who:?}: {status} (want {want})"));
            }
        }
    }
    assert!(failures.is_empty(), "{} wrong answers:\n{}", failures.len(), failures.join("\n"));
}
