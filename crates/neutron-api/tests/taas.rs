//! tap-as-a-service (`taas`, `taas-vlan-filter`), in process: the shapes and defaults of
//! tap services and tap flows, tap-as-a-service's refusals with its error types and
//! messages (a port of another project, a service of another project, bad directions
//! and VLAN filters), its cascades (a service's flows, a port's services and flows), and
//! what the hosts compile from (a service's own tunnel key, resolved into its flows).

mod common;

use common::{ADMIN, Cloud, OTHER, OWNER, READER, kind, message};
use model::{TapFlow, TapService};
use serde_json::{Value, json};

const SERVICES: &str = "/v2.0/taas/tap_services";
const FLOWS: &str = "/v2.0/taas/tap_flows";
/// What this server adds to upstream's attributes (docs/api.md).
const EXTRA: [&str; 3] = ["created_at", "updated_at", "revision_number"];

/// A network of p1 with a subnet, and `n` ports of p1 on it.
async fn ports(c: &Cloud, n: usize) -> Vec<String> {
    let net = c
        .made(ADMIN, "networks", json!({"network": {"project_id": "p1"}}))
        .await["id"]
        .clone();
    let body = json!({"subnet": {"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4}});
    c.made(OWNER, "subnets", body).await;
    let mut out = Vec::new();
    for _ in 0..n {
        let p = c
            .made(OWNER, "ports", json!({"port": {"network_id": net}}))
            .await;
        out.push(id(&p));
    }
    out
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn service(c: &Cloud, port: &str) -> String {
    let body = json!({"tap_service": {"name": "ts", "port_id": port}});
    id(&c.made(OWNER, "taas/tap_services", body).await)
}

async fn flow(c: &Cloud, service: &str, source: &str, direction: &str) -> String {
    let body = json!({"tap_flow": {"tap_service_id": service, "source_port": source,
        "direction": direction}});
    id(&c.made(OWNER, "taas/tap_flows", body).await)
}

async fn count(c: &Cloud, uri: &str, key: &str) -> usize {
    let (st, v) = c.call(OWNER, "GET", uri, None).await;
    assert_eq!(st, 200, "{v}");
    v[key].as_array().unwrap().len()
}

#[tokio::test]
async fn services_and_flows_have_upstreams_shape() {
    let c = Cloud::new();
    let p = ports(&c, 3).await;
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            SERVICES,
            json!({"tap_service": {"name": "ts", "description": "d", "port_id": p[0]}}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let s = &v["tap_service"];
    let mut keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    keys.retain(|k| !EXTRA.contains(k));
    keys.sort();
    assert_eq!(
        keys,
        [
            "description",
            "id",
            "name",
            "port_id",
            "project_id",
            "status",
            "tenant_id"
        ]
    );
    assert_eq!(
        (&s["status"], &s["port_id"]),
        (&json!("ACTIVE"), &json!(p[0]))
    );
    assert_eq!(s["tenant_id"], "p1");
    let sid = id(s);
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            FLOWS,
            json!({"tap_flow": {"tap_service_id": sid, "source_port": p[1], "direction": "BOTH"}}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let f = &v["tap_flow"];
    let mut keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    keys.retain(|k| !EXTRA.contains(k));
    keys.sort();
    assert_eq!(
        keys,
        [
            "description",
            "direction",
            "id",
            "name",
            "project_id",
            "source_port",
            "status",
            "tap_service_id",
            "tenant_id",
            "vlan_filter"
        ]
    );
    assert_eq!(f["vlan_filter"], Value::Null);
    assert_eq!((&f["name"], &f["description"]), (&json!(""), &json!("")));
    assert_eq!(f["status"], "ACTIVE");
    let fid = id(f);
    // What the hosts compile: the service's key, resolved into the flow.
    let stored_s = c.api.db.fetch::<TapService>(&sid).await.unwrap().0;
    let stored_f = c.api.db.fetch::<TapFlow>(&fid).await.unwrap().0;
    assert!(stored_s.tap_key.is_some());
    assert_eq!(stored_f.tap_key, stored_s.tap_key);
    assert_eq!(stored_f.service_port, p[0]);
    // A filter on the service; only name and description change.
    flow(&c, &sid, &p[2], "IN").await;
    let n = count(&c, &format!("{FLOWS}?source_port={}", p[2]), "tap_flows").await;
    assert_eq!(n, 1);
    let n = count(&c, &format!("{FLOWS}?tap_service_id={sid}"), "tap_flows").await;
    assert_eq!(n, 2);
    let uri = format!("{FLOWS}/{fid}");
    let (st, v) = c
        .send(OWNER, "PUT", &uri, json!({"tap_flow": {"name": "x"}}))
        .await;
    assert_eq!((st, &v["tap_flow"]["name"]), (200, &json!("x")), "{v}");
    let (st, v) = c
        .send(OWNER, "PUT", &uri, json!({"tap_flow": {"direction": "IN"}}))
        .await;
    assert_eq!((st, kind(&v)), (400, "HTTPBadRequest"), "{v}");
    let uri = format!("{SERVICES}/{sid}");
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"tap_service": {"port_id": p[1]}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (400, "HTTPBadRequest"), "{v}");
    // The extensions are announced.
    let (_, v) = c.call(OWNER, "GET", "/v2.0/extensions", None).await;
    let aliases: Vec<&str> = v["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["alias"].as_str())
        .collect();
    assert!(aliases.contains(&"taas") && aliases.contains(&"taas-vlan-filter"));
}

#[tokio::test]
async fn bad_input_gets_upstreams_errors() {
    let c = Cloud::new();
    let p = ports(&c, 2).await;
    let post = |uri: &'static str, body: Value| {
        let c = &c;
        async move { c.send(OWNER, "POST", uri, body).await }
    };
    let (st, v) = post(SERVICES, json!({"tap_service": {"name": "x"}})).await;
    assert_eq!((st, kind(&v)), (400, "HTTPBadRequest"));
    assert_eq!(
        message(&v),
        "Failed to parse request. Required attribute 'port_id' not specified"
    );
    let (st, v) = post(SERVICES, json!({"tap_service": {"port_id": "nope"}})).await;
    assert_eq!((st, kind(&v)), (400, "HTTPBadRequest"), "{v}");
    let ghost = "0b5cda3c-cf2f-4bd8-9d7c-3e7d3d1d6b5a";
    let (st, v) = post(SERVICES, json!({"tap_service": {"port_id": ghost}})).await;
    assert_eq!((st, kind(&v)), (404, "PortNotFound"), "{v}");
    // Another project's port: not found for a member, not theirs for an admin.
    let (st, v) = c
        .send(
            OTHER,
            "POST",
            SERVICES,
            json!({"tap_service": {"port_id": p[0]}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (404, "PortNotFound"), "{v}");
    let (st, v) = c
        .send(
            ADMIN,
            "POST",
            SERVICES,
            json!({"tap_service": {"port_id": p[0], "project_id": "p2"}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (403, "PortDoesNotBelongToTenant"), "{v}");
    assert_eq!(
        message(&v),
        "The specified port does not belong to the tenant"
    );
    let (st, v) = post(
        SERVICES,
        json!({"tap_service": {"port_id": p[0], "status": "DOWN"}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (400, "HTTPBadRequest"), "{v}");

    let sid = service(&c, &p[0]).await;
    let tf = |service: &str, source: &str, direction: Value, filter: Value| {
        json!({"tap_flow": {"tap_service_id": service, "source_port": source,
            "direction": direction, "vlan_filter": filter}})
    };
    let (st, v) = post(FLOWS, tf(ghost, &p[1], json!("IN"), Value::Null)).await;
    assert_eq!((st, kind(&v)), (404, "TapServiceNotFound"), "{v}");
    assert_eq!(message(&v), format!("Tap Service  {ghost} does not exist"));
    let (st, v) = post(FLOWS, tf(&sid, ghost, json!("IN"), Value::Null)).await;
    assert_eq!((st, kind(&v)), (404, "PortNotFound"), "{v}");
    let (st, v) = post(FLOWS, tf(&sid, &p[1], json!("in"), Value::Null)).await;
    assert_eq!((st, kind(&v)), (400, "HTTPBadRequest"), "{v}");
    assert!(
        message(&v).contains("'in' is not in ['IN', 'OUT', 'BOTH']"),
        "{v}"
    );
    let body = json!({"tap_flow": {"tap_service_id": sid, "source_port": p[1]}});
    let (st, v) = post(FLOWS, body).await;
    assert_eq!((st, kind(&v)), (400, "HTTPBadRequest"), "{v}");
    assert!(message(&v).contains("'direction' not specified"), "{v}");
    for bad in ["1-", "a", "1,,2", "5-2"] {
        let (st, v) = post(FLOWS, tf(&sid, &p[1], json!("IN"), json!(bad))).await;
        assert_eq!((st, kind(&v)), (400, "HTTPBadRequest"), "{bad}: {v}");
        assert!(message(&v).contains("is not a valid input"), "{v}");
    }
    let (st, v) = post(FLOWS, tf(&sid, &p[1], json!("OUT"), json!("4,6,10-13"))).await;
    assert_eq!(
        (st, &v["tap_flow"]["vlan_filter"]),
        (201, &json!("4,6,10-13"))
    );
    // A service of another project: not found for its member, not theirs for an admin.
    let (st, v) = c
        .send(
            OTHER,
            "POST",
            FLOWS,
            tf(&sid, &p[1], json!("IN"), Value::Null),
        )
        .await;
    assert_eq!((st, kind(&v)), (404, "TapServiceNotFound"), "{v}");
    let mut body = tf(&sid, &p[1], json!("IN"), Value::Null);
    body["tap_flow"]["project_id"] = json!("p2");
    let (st, v) = c.send(ADMIN, "POST", FLOWS, body).await;
    assert_eq!((st, kind(&v)), (403, "TapServiceNotBelongToTenant"), "{v}");
    assert_eq!(
        message(&v),
        "Specified Tap Service does not belong to the tenant"
    );
    // Unknown ids.
    let (st, v) = c
        .call(OWNER, "GET", &format!("{FLOWS}/{ghost}"), None)
        .await;
    assert_eq!((st, kind(&v)), (404, "TapFlowNotFound"));
    assert_eq!(message(&v), format!("Tap Flow  {ghost} does not exist"));
}

#[tokio::test]
async fn deletes_cascade_as_upstreams_plugin_does() {
    let c = Cloud::new();
    let p = ports(&c, 3).await;
    // Twice on one port and twice the same flow: upstream refuses neither.
    let s1 = service(&c, &p[0]).await;
    let s2 = service(&c, &p[0]).await;
    let k = |id: String| {
        let c = &c;
        async move { c.api.db.fetch::<TapService>(&id).await.unwrap().0.tap_key }
    };
    assert_ne!(k(s1.clone()).await, k(s2.clone()).await, "a key each");
    flow(&c, &s1, &p[1], "BOTH").await;
    flow(&c, &s1, &p[1], "BOTH").await;
    flow(&c, &s2, &p[2], "OUT").await;
    assert_eq!(count(&c, FLOWS, "tap_flows").await, 3);
    // A service goes with its flows.
    let (st, _) = c
        .call(OWNER, "DELETE", &format!("{SERVICES}/{s1}"), None)
        .await;
    assert_eq!(st, 204);
    assert_eq!(count(&c, FLOWS, "tap_flows").await, 1);
    // A source port goes with its flows; a service port with its services and theirs.
    flow(&c, &s2, &p[1], "IN").await;
    let (st, _) = c
        .call(OWNER, "DELETE", &format!("/v2.0/ports/{}", p[1]), None)
        .await;
    assert_eq!(st, 204);
    assert_eq!(count(&c, FLOWS, "tap_flows").await, 1);
    let (st, _) = c
        .call(OWNER, "DELETE", &format!("/v2.0/ports/{}", p[0]), None)
        .await;
    assert_eq!(st, 204);
    assert_eq!(count(&c, FLOWS, "tap_flows").await, 0);
    assert_eq!(count(&c, SERVICES, "tap_services").await, 0);
    // The keys were given back: a new service may take one again.
    let p2 = ports(&c, 1).await;
    service(&c, &p2[0]).await;
}

#[tokio::test]
async fn only_members_of_the_project_see_and_change_taps_as_upstreams_policy_says() {
    let c = Cloud::new();
    let p = ports(&c, 2).await;
    let sid = service(&c, &p[0]).await;
    let fid = flow(&c, &sid, &p[1], "OUT").await;
    for (uri, coll, key) in [
        (format!("{SERVICES}/{sid}"), SERVICES, "tap_services"),
        (format!("{FLOWS}/{fid}"), FLOWS, "tap_flows"),
    ] {
        // Upstream's get rule is admin or project member: a reader sees nothing.
        for (who, seen) in [
            (ADMIN, true),
            (OWNER, true),
            (READER, false),
            (OTHER, false),
        ] {
            let (st, v) = c.call(who, "GET", &uri, None).await;
            assert_eq!(st, if seen { 200 } else { 404 }, "{who:?} {uri}: {v}");
            let (_, v) = c.call(who, "GET", coll, None).await;
            let n = v[key].as_array().map_or(0, Vec::len);
            assert_eq!(n, usize::from(seen), "{who:?} lists {coll}: {v}");
        }
        let body = |k: &str| json!({ k: {"name": "n"} });
        let k = if coll == SERVICES {
            "tap_service"
        } else {
            "tap_flow"
        };
        let (st, _) = c.send(READER, "PUT", &uri, body(k)).await;
        assert_eq!(st, 404);
        let (st, _) = c.send(OTHER, "PUT", &uri, body(k)).await;
        assert_eq!(st, 404);
        let (st, v) = c.send(OWNER, "PUT", &uri, body(k)).await;
        assert_eq!(st, 200, "{v}");
    }
    // A reader may not create.
    let body = json!({"tap_service": {"port_id": p[1]}});
    let (st, v) = c.send(READER, "POST", SERVICES, body).await;
    assert_eq!((st, kind(&v)), (403, "PolicyNotAuthorized"), "{v}");
    let (st, _) = c
        .call(OTHER, "DELETE", &format!("{SERVICES}/{sid}"), None)
        .await;
    assert_eq!(st, 404);
}
