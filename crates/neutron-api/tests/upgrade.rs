//! A rolling upgrade, the API server's side: objects that a newer server wrote with fields
//! this one does not know keep those fields through this server's updates and through a
//! host's binding report, and the API never shows them. The fields are grafted into the
//! stored JSON as a server of the next model version would write them.

mod common;

use common::{ADMIN, Cloud, OWNER, id};
use nbdb::{Expect, Op};
use neutron_api::nb_auth::Principal;
use serde_json::{Value, json};

/// What a newer model added: a field of its own at the object's top level.
fn future() -> Value {
    json!({"x": [1, 2], "note": "written by the next model"})
}

/// The stored JSON of `table/id`, and its topic.
async fn stored_with_topic(c: &Cloud, table: &str, id: &str) -> (Value, Option<String>) {
    let r = c.api.db.store.get(table, id).await.unwrap();
    let r = r.expect("stored");
    (serde_json::from_slice(&r.value).unwrap(), r.topic)
}

async fn stored(c: &Cloud, table: &str, id: &str) -> Value {
    stored_with_topic(c, table, id).await.0
}

/// Rewrites `table/id` with `edit` applied to its stored JSON, keeping its topic.
async fn graft(c: &Cloud, table: &str, id: &str, edit: impl FnOnce(&mut Value)) {
    let (mut v, topic) = stored_with_topic(c, table, id).await;
    edit(&mut v);
    let op = Op::put(table, id, serde_json::to_vec(&v).unwrap(), Expect::Any)
        .with_topic(topic.as_deref());
    c.api.db.store.commit(vec![op]).await.unwrap();
}

fn add_future(v: &mut Value) {
    v["future_field"] = future();
}

#[tokio::test]
async fn fields_of_a_newer_model_survive_updates_and_bindings_and_stay_out_of_the_api() {
    let c = Cloud::new();
    let net = c
        .made(OWNER, "networks", json!({"network": {"name": "n"}}))
        .await;
    c.made(
        OWNER,
        "subnets",
        json!({"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}}),
    )
    .await;
    let port = c
        .made(OWNER, "ports", json!({"port": {"network_id": net["id"]}}))
        .await;
    let (net_id, port_id) = (id(&net), id(&port));
    graft(&c, "network", &net_id, add_future).await;
    graft(&c, "port", &port_id, add_future).await;

    // This server's update of each: its change is in, the newer field kept.
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/networks/{net_id}"),
            json!({"network": {"name": "renamed"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(v["network"].get("future_field").is_none(), "shown: {v}");
    let n = stored(&c, "network", &net_id).await;
    assert_eq!(
        (&n["name"], &n["future_field"]),
        (&json!("renamed"), &future())
    );

    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/ports/{port_id}"),
            json!({"port": {"name": "p", "device_id": "vm1", "device_owner": "compute:nova"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // A host reports the port bound and up through the NB listener.
    let (st, v) = c
        .nb(
            Principal::Host("host-a".into()),
            "PUT",
            "/nb/v1/bindings",
            Some(json!({"bindings": [{"port": port_id, "host": "host-a", "status": "ACTIVE"}]})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let p = stored(&c, "port", &port_id).await;
    assert_eq!(p["name"], "p");
    assert_eq!(p["status"], "ACTIVE", "{p}");
    assert_eq!(p["future_field"], future(), "{p}");
    let (_, v) = c
        .call(OWNER, "GET", &format!("/v2.0/ports/{port_id}"), None)
        .await;
    assert_eq!(v["port"]["status"], "ACTIVE");
    assert!(v["port"].get("future_field").is_none(), "shown: {v}");
    // A listing reads the same objects: it shows nothing either.
    let (_, v) = c.call(ADMIN, "GET", "/v2.0/networks", None).await;
    assert!(!v.to_string().contains("future_field"), "{v}");
}

/// The balancer is one stored tree: each of its nodes keeps a newer model's fields.
#[tokio::test]
async fn a_balancer_tree_keeps_a_newer_models_fields_at_every_level() {
    let c = Cloud::new();
    let (_, s) = c.lb_net().await;
    let lb = c
        .lb_made(
            "/v2/lbaas/loadbalancers",
            json!({"loadbalancer": {"name": "web", "vip_subnet_id": s["id"]}}),
        )
        .await;
    let l = c
        .lb_made(
            "/v2/lbaas/listeners",
            json!({"listener": {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 80}}),
        )
        .await;
    let pool = c
        .lb_made(
            "/v2/lbaas/pools",
            json!({"pool": {"listener_id": l["id"], "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}),
        )
        .await;
    let members = format!("/v2/lbaas/pools/{}/members", id(&pool));
    let m = c
        .lb_made(
            &members,
            json!({"member": {"address": "10.9.0.10", "protocol_port": 8080}}),
        )
        .await;
    let lb_id = id(&lb);
    graft(&c, "loadbalancer", &lb_id, |v| {
        add_future(v);
        add_future(&mut v["listeners"][0]);
        add_future(&mut v["pools"][0]);
        add_future(&mut v["pools"][0]["members"][0]);
    })
    .await;
    let (st, v) = c
        .lb(
            OWNER,
            "PUT",
            &format!("{members}/{}", id(&m)),
            Some(json!({"member": {"weight": 7}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(v["member"].get("future_field").is_none(), "shown: {v}");
    let t = stored(&c, "loadbalancer", &lb_id).await;
    assert_eq!(t["pools"][0]["members"][0]["weight"], 7, "{t}");
    for (what, node) in [
        ("balancer", &t),
        ("listener", &t["listeners"][0]),
        ("pool", &t["pools"][0]),
        ("member", &t["pools"][0]["members"][0]),
    ] {
        assert_eq!(node["future_field"], future(), "{what}: {t}");
    }
    // Each key once: the status fields are not also taken for unknown ones.
    let raw = c.api.db.store.get("loadbalancer", &lb_id).await.unwrap();
    let text = String::from_utf8(raw.unwrap().value).unwrap();
    assert_eq!(text.matches("\"provisioning_status\"").count(), 4, "{text}");
    let (_, v) = c
        .lb(
            OWNER,
            "GET",
            &format!("/v2/lbaas/loadbalancers/{lb_id}"),
            None,
        )
        .await;
    assert!(!v.to_string().contains("future_field"), "{v}");
}
