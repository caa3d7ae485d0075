//! The policy matrix, in process: five callers (admin; member and reader of the owning
//! project; member and reader of another project) × nine resources × create, list,
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
    store: std::sync::Arc<dyn nbdb::Store>,
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
            app: router(Api::new(store.clone(), config)),
            store,
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
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn made(&self, who: Who, collection: &str, body: Value) -> String {
        let (status, v) = self
            .call(who, "POST", &format!("/v2.0/{collection}"), Some(body))
            .await;
        assert_eq!(status, 201, "{collection} by {who:?}: {v}");
        let obj = v
            .as_object()
            .and_then(|o| o.values().next())
            .expect("object");
        obj["id"].as_str().expect("id").to_string()
    }
}

/// P's network, subnet and security group, and the admin's external network.
struct World {
    network: String,
    group: String,
    external: String,
    /// P's ports, each the parent of at most one trunk.
    ports: Vec<String>,
}

async fn world(c: &Cloud) -> World {
    let network = c
        .made(P_MEMBER, "networks", json!({"network": {"name": "n"}}))
        .await;
    c.made(
        P_MEMBER,
        "subnets",
        json!({"subnet": {"network_id": network, "ip_version": 4, "cidr": "10.0.0.0/24"}}),
    )
    .await;
    let group = c
        .made(
            P_MEMBER,
            "security-groups",
            json!({"security_group": {"name": "g"}}),
        )
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
    let mut ports = Vec::new();
    for _ in 0..PARENTS {
        let body = json!({"port": {"network_id": network}});
        ports.push(c.made(P_MEMBER, "ports", body).await);
    }
    World {
        network,
        group,
        external,
        ports,
    }
}

/// Ports made for trunks: more than the trunk row creates.
const PARENTS: usize = 16;

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
        "subnetpool" => {
            json!({"subnetpool": {"name": "p", "prefixes": [format!("10.{}.0.0/16", n % 250 + 1)]}})
        }
        "address_scope" => json!({"address_scope": {"name": "s", "ip_version": 4}}),
        "address_group" => json!({"address_group": {"name": "a",
            "addresses": [format!("10.{}.0.0/16", n % 250)]}}),
        "trunk" => json!({"trunk": {"port_id": w.ports[n as usize % PARENTS]}}),
        "firewall_rule" => json!({"firewall_rule": {"protocol": "tcp",
            "destination_port": format!("{}", n % 60000 + 1)}}),
        "firewall_policy" => json!({"firewall_policy": {"name": "fp"}}),
        "firewall_group" => json!({"firewall_group": {"name": "fg"}}),
        "port_pair_group" => json!({"port_pair_group": {}}),
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

const RESOURCES: [(&str, &str); 16] = [
    ("network", "networks"),
    ("subnet", "subnets"),
    ("port", "ports"),
    ("router", "routers"),
    ("floatingip", "floatingips"),
    ("security_group", "security-groups"),
    ("security_group_rule", "security-group-rules"),
    ("rbac_policy", "rbac-policies"),
    ("subnetpool", "subnetpools"),
    ("address_scope", "address-scopes"),
    ("address_group", "address-groups"),
    ("trunk", "trunks"),
    ("firewall_rule", "fwaas/firewall_rules"),
    ("firewall_policy", "fwaas/firewall_policies"),
    ("firewall_group", "fwaas/firewall_groups"),
    ("port_pair_group", "sfc/port_pair_groups"),
];

/// The expected create status for each caller (admin, P member, P reader, Q member, Q
/// reader). As in Neutron, a subnet or port on a network Q may not use is 404 before
/// any role is looked at; a rule or policy on P's group or network is checked against
/// Q's role first (403 for its reader), and is 404 to its member.
fn create_expected(key: &str) -> [u16; 5] {
    match key {
        "subnet" | "port" => [201, 201, 403, 404, 404],
        // Q's member may create trunks, but not on P's port, which it cannot see.
        "trunk" => [201, 201, 403, 404, 403],
        "security_group_rule" | "rbac_policy" => [201, 201, 403, 404, 403],
        _ => [201, 201, 403, 201, 403],
    }
}

fn error_type(status: u16, v: &Value) -> String {
    if status < 400 {
        return String::new();
    }
    v["NeutronError"]["type"]
        .as_str()
        .unwrap_or_default()
        .to_string()
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
                failures.push(format!(
                    "create {key} as {who:?}: {status} (want {want}) {v}"
                ));
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
                failures.push(format!(
                    "update {key} as {who:?}: {status} (want {update}) {v}"
                ));
            }
            let (status, v) = c.call(who, "DELETE", &uri, None).await;
            if status != delete {
                failures.push(format!(
                    "delete {key} as {who:?}: {status} (want {delete}) {v}"
                ));
            }
            // A refused delete left it there.
            let (status, _) = c.call(P_MEMBER, "GET", &uri, None).await;
            let want = if delete == 204 { 404 } else { 200 };
            if status != want {
                failures.push(format!(
                    "{key} after delete as {who:?}: {status} (want {want})"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} wrong answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn kind(v: &Value) -> &str {
    v["NeutronError"]["type"].as_str().unwrap_or_default()
}

async fn policy_on(
    c: &Cloud,
    who: Who,
    object_type: &str,
    id: &str,
    action: &str,
    target: &str,
) -> (u16, Value) {
    let body = json!({"rbac_policy": {"object_type": object_type, "object_id": id,
        "action": action, "target_tenant": target}});
    c.call(who, "POST", "/v2.0/rbac-policies", Some(body)).await
}

#[tokio::test]
async fn a_network_shared_with_one_project_is_its_to_use_until_the_policy_goes() {
    let c = Cloud::new();
    let w = world(&c).await;
    let net = format!("/v2.0/networks/{}", w.network);
    // Not shared yet: Q sees nothing and may not put a port there.
    assert_eq!(c.call(Q_MEMBER, "GET", &net, None).await.0, 404);
    let port = json!({"port": {"network_id": w.network}});
    let (st, v) = c
        .call(Q_MEMBER, "POST", "/v2.0/ports", Some(port.clone()))
        .await;
    assert_eq!((st, kind(&v)), (404, "NetworkNotFound"), "{v}");

    // P shares it with Q (P is the owner: no admin needed for one project).
    let (st, v) = policy_on(&c, P_MEMBER, "network", &w.network, "access_as_shared", Q).await;
    assert_eq!(st, 201, "{v}");
    let rbac = v["rbac_policy"].clone();
    assert_eq!(rbac["target_tenant"], Q);
    assert_eq!(rbac["project_id"], P);
    assert_eq!(rbac["object_type"], "network");
    let policy_uri = format!("/v2.0/rbac-policies/{}", rbac["id"].as_str().unwrap());
    // The same policy again is a conflict.
    let (st, v) = policy_on(&c, P_MEMBER, "network", &w.network, "access_as_shared", Q).await;
    assert_eq!((st, kind(&v)), (409, "DuplicateRbacPolicy"), "{v}");

    // Q sees the network as shared, and its subnet; the owner still sees it unshared.
    let (st, v) = c.call(Q_READER, "GET", &net, None).await;
    assert_eq!((st, &v["network"]["shared"]), (200, &json!(true)), "{v}");
    assert_eq!(
        c.call(P_MEMBER, "GET", &net, None).await.1["network"]["shared"],
        false
    );
    let (_, v) = c
        .call(Q_READER, "GET", "/v2.0/networks?shared=true", None)
        .await;
    assert_eq!(v["networks"].as_array().map(Vec::len), Some(1), "{v}");
    let uri = format!("/v2.0/subnets?network_id={}", w.network);
    let (_, v) = c.call(Q_READER, "GET", &uri, None).await;
    assert_eq!(v["subnets"].as_array().map(Vec::len), Some(1), "{v}");
    // The policy is P's: Q does not see it.
    assert_eq!(c.call(Q_MEMBER, "GET", &policy_uri, None).await.0, 404);
    // Q may put a port there, but not a subnet, and may not change the network.
    let (st, v) = c
        .call(Q_MEMBER, "POST", "/v2.0/ports", Some(port.clone()))
        .await;
    assert_eq!(st, 201, "{v}");
    let q_port = format!("/v2.0/ports/{}", v["port"]["id"].as_str().unwrap());
    let (st, v) = c
        .call(Q_READER, "POST", "/v2.0/ports", Some(port.clone()))
        .await;
    assert_eq!((st, kind(&v)), (403, "PolicyNotAuthorized"), "{v}");
    let subnet =
        json!({"subnet": {"network_id": w.network, "ip_version": 4, "cidr": "10.9.0.0/24"}});
    let (st, v) = c
        .call(Q_MEMBER, "POST", "/v2.0/subnets", Some(subnet))
        .await;
    assert_eq!(
        (st, v["NeutronError"]["message"].as_str()),
        (403, Some("rule:create_subnet is disallowed by policy")),
        "{v}"
    );
    let (st, _) = c
        .call(
            Q_MEMBER,
            "PUT",
            &net,
            Some(json!({"network": {"name": "mine"}})),
        )
        .await;
    assert_eq!(st, 403);
    // A port on the network is also its owner's to see, but not to give a floating IP.
    assert_eq!(c.call(P_READER, "GET", &q_port, None).await.0, 200);
    let q_port_id = q_port.rsplit('/').next().unwrap();
    let fip = json!({"floatingip": {"floating_network_id": w.external, "port_id": q_port_id}});
    let (st, v) = c
        .call(P_MEMBER, "POST", "/v2.0/floatingips", Some(fip))
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["NeutronError"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("owned by a different tenant"),
        "{v}"
    );

    // While Q has a port there, the policy stays: not removed, not retargeted.
    let (st, v) = c.call(P_MEMBER, "DELETE", &policy_uri, None).await;
    assert_eq!((st, kind(&v)), (409, "RbacPolicyInUse"), "{v}");
    assert!(
        v["NeutronError"]["message"]
            .as_str()
            .unwrap()
            .contains("Details: Unable to reconfigure sharing settings"),
        "{v}"
    );
    // The refused delete left the policy usable (its mark cleared).
    let (st, v) = c
        .call(Q_MEMBER, "POST", "/v2.0/ports", Some(port.clone()))
        .await;
    assert_eq!(st, 201, "after a refused delete: {v}");
    let again = format!("/v2.0/ports/{}", v["port"]["id"].as_str().unwrap());
    assert_eq!(c.call(Q_MEMBER, "DELETE", &again, None).await.0, 204);
    let other = format!("{:032x}", 77);
    let retarget = json!({"rbac_policy": {"target_tenant": other}});
    let (st, v) = c
        .call(P_MEMBER, "PUT", &policy_uri, Some(retarget.clone()))
        .await;
    assert_eq!((st, kind(&v)), (409, "RbacPolicyInUse"), "{v}");
    // Only an admin shares with everyone.
    let star = json!({"rbac_policy": {"target_tenant": "*"}});
    let (st, v) = c.call(P_MEMBER, "PUT", &policy_uri, Some(star)).await;
    assert_eq!(
        (st, v["NeutronError"]["message"].as_str()),
        (
            403,
            Some(
                "(rule:update_rbac_policy and rule:update_rbac_policy:target_tenant) is disallowed by policy"
            )
        ),
        "{v}"
    );
    // A `*` policy by the admin covers Q: then P's own policy may go.
    let (st, v) = c
        .call(
            ADMIN,
            "PUT",
            &net,
            Some(json!({"network": {"shared": true}})),
        )
        .await;
    assert_eq!((st, &v["network"]["shared"]), (200, &json!(true)), "{v}");
    let (_, v) = c
        .call(
            ADMIN,
            "GET",
            &format!(
                "/v2.0/rbac-policies?object_id={}&target_tenant=*",
                w.network
            ),
            None,
        )
        .await;
    assert_eq!(
        v["rbac_policies"].as_array().map(Vec::len),
        Some(1),
        "shared=true is a * policy: {v}"
    );
    assert_eq!(c.call(P_MEMBER, "DELETE", &policy_uri, None).await.0, 204);
    // Unsharing now would strand Q's port.
    let (st, v) = c
        .call(
            ADMIN,
            "PUT",
            &net,
            Some(json!({"network": {"shared": false}})),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "InvalidSharedSetting"), "{v}");
    assert_eq!(c.call(Q_MEMBER, "DELETE", &q_port, None).await.0, 204);
    let (st, v) = c
        .call(
            ADMIN,
            "PUT",
            &net,
            Some(json!({"network": {"shared": false}})),
        )
        .await;
    assert_eq!((st, &v["network"]["shared"]), (200, &json!(false)), "{v}");
    let (_, v) = c
        .call(
            ADMIN,
            "GET",
            &format!("/v2.0/rbac-policies?object_id={}", w.network),
            None,
        )
        .await;
    assert_eq!(v["rbac_policies"], json!([]), "{v}");
    // Gone for Q again.
    assert_eq!(c.call(Q_MEMBER, "GET", &net, None).await.0, 404);
}

#[tokio::test]
async fn rbac_requests_are_validated_as_neutron_does() {
    let c = Cloud::new();
    let w = world(&c).await;
    let cases = [
        (
            json!({"object_type": "bgpvpn", "object_id": w.network, "action": "access_as_shared", "target_tenant": Q}),
            400,
            "InvalidInput",
        ),
        (
            json!({"object_type": "qos_policy", "object_id": w.network, "action": "access_as_shared", "target_tenant": Q}),
            404,
            "QosPolicyNotFound",
        ),
        (
            json!({"object_type": "security_group", "object_id": w.group, "action": "access_as_external", "target_tenant": Q}),
            400,
            "InvalidActionForType",
        ),
        (
            json!({"object_type": "network", "object_id": w.network, "action": "access_as_shared", "target_tenant": "not a project"}),
            400,
            "HTTPBadRequest",
        ),
        (
            json!({"object_type": "network", "object_id": w.network, "action": "access_as_shared"}),
            400,
            "HTTPBadRequest",
        ),
        (
            json!({"object_type": "network", "object_id": "5a3c1b0e-0000-4000-8000-000000000000", "action": "access_as_shared", "target_tenant": Q}),
            404,
            "NetworkNotFound",
        ),
        (
            json!({"object_type": "network", "object_id": w.network, "action": "access_as_shared", "target_tenant": "*"}),
            403,
            "PolicyNotAuthorized",
        ),
        (
            json!({"object_type": "network", "object_id": w.network, "action": "access_as_shared", "target_tenant": Q, "bogus": 1}),
            400,
            "HTTPBadRequest",
        ),
    ];
    for (body, status, want) in cases {
        let (st, v) = c
            .call(
                P_MEMBER,
                "POST",
                "/v2.0/rbac-policies",
                Some(json!({"rbac_policy": body})),
            )
            .await;
        assert_eq!((st, kind(&v)), (status, want), "{body}: {v}");
    }
    // Another project's network: not seen, 404; shared with it but not its own: 400.
    let (st, v) = policy_on(&c, Q_MEMBER, "network", &w.network, "access_as_shared", Q).await;
    assert_eq!((st, kind(&v)), (404, "NetworkNotFound"), "{v}");
    let (st, _) = policy_on(&c, ADMIN, "network", &w.network, "access_as_shared", Q).await;
    assert_eq!(st, 201);
    let (st, v) = policy_on(
        &c,
        Q_MEMBER,
        "network",
        &w.network,
        "access_as_shared",
        &format!("{:032x}", 5),
    )
    .await;
    assert_eq!((st, kind(&v)), (400, "InvalidInput"), "{v}");
    // The extensions are listed.
    let (_, v) = c.call(Q_READER, "GET", "/v2.0/extensions", None).await;
    let aliases: Vec<&str> = v["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["alias"].as_str())
        .collect();
    assert!(
        aliases.contains(&"rbac-policies") && aliases.contains(&"rbac-security-groups"),
        "{aliases:?}"
    );
}

#[tokio::test]
async fn a_shared_security_group_is_usable_in_the_targets_ports() {
    let c = Cloud::new();
    let w = world(&c).await;
    let q_net = c
        .made(Q_MEMBER, "networks", json!({"network": {"name": "q"}}))
        .await;
    c.made(
        Q_MEMBER,
        "subnets",
        json!({"subnet": {"network_id": q_net, "ip_version": 4, "cidr": "10.5.0.0/24"}}),
    )
    .await;
    let port = json!({"port": {"network_id": q_net, "security_groups": [w.group]}});
    let (st, v) = c
        .call(Q_MEMBER, "POST", "/v2.0/ports", Some(port.clone()))
        .await;
    assert_eq!((st, kind(&v)), (404, "SecurityGroupNotFound"), "{v}");
    let (st, v) = policy_on(
        &c,
        P_MEMBER,
        "security_group",
        &w.group,
        "access_as_shared",
        Q,
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let policy_uri = format!(
        "/v2.0/rbac-policies/{}",
        v["rbac_policy"]["id"].as_str().unwrap()
    );
    let (st, v) = c
        .call(
            Q_READER,
            "GET",
            &format!("/v2.0/security-groups/{}", w.group),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = c.call(Q_MEMBER, "POST", "/v2.0/ports", Some(port)).await;
    assert_eq!(st, 201, "{v}");
    // Its rules stay P's.
    let rule =
        json!({"security_group_rule": {"security_group_id": w.group, "direction": "ingress"}});
    let (st, v) = c
        .call(Q_MEMBER, "POST", "/v2.0/security-group-rules", Some(rule))
        .await;
    assert_eq!((st, kind(&v)), (403, "PolicyNotAuthorized"), "{v}");
    let (st, v) = c.call(P_MEMBER, "DELETE", &policy_uri, None).await;
    assert_eq!((st, kind(&v)), (409, "RbacPolicyInUse"), "{v}");
}

#[tokio::test]
async fn external_networks_are_opened_per_project_and_shared_subnets_take_router_interfaces() {
    let c = Cloud::new();
    let w = world(&c).await;
    let p_router = c
        .made(
            P_MEMBER,
            "routers",
            json!({"router": {"name": "rp",
        "external_gateway_info": {"network_id": w.external}}}),
        )
        .await;
    // The * external policy the admin's router:external made serves P's router.
    let (_, v) = c
        .call(
            ADMIN,
            "GET",
            &format!("/v2.0/rbac-policies?object_id={}", w.external),
            None,
        )
        .await;
    let star = v["rbac_policies"][0].clone();
    assert_eq!(
        (&star["action"], &star["target_tenant"]),
        (&json!("access_as_external"), &json!("*")),
        "{v}"
    );
    let star_uri = format!("/v2.0/rbac-policies/{}", star["id"].as_str().unwrap());
    let (st, v) = c.call(ADMIN, "DELETE", &star_uri, None).await;
    assert_eq!((st, kind(&v)), (409, "RbacPolicyInUse"), "{v}");
    // Open it to P alone: then the * policy may go, and Q no longer sees it.
    let (st, _) = policy_on(&c, ADMIN, "network", &w.external, "access_as_external", P).await;
    assert_eq!(st, 201);
    assert_eq!(c.call(ADMIN, "DELETE", &star_uri, None).await.0, 204);
    let fip = json!({"floatingip": {"floating_network_id": w.external}});
    assert_eq!(
        c.call(P_MEMBER, "POST", "/v2.0/floatingips", Some(fip.clone()))
            .await
            .0,
        201
    );
    let (st, v) = c
        .call(Q_MEMBER, "POST", "/v2.0/floatingips", Some(fip))
        .await;
    assert_eq!((st, kind(&v)), (404, "NetworkNotFound"), "{v}");
    let (_, v) = c
        .call(
            ADMIN,
            "GET",
            &format!("/v2.0/networks/{}", w.external),
            None,
        )
        .await;
    assert_eq!(v["network"]["router:external"], true, "still external: {v}");
    let _ = p_router;

    // A router of Q on a subnet of P's network shared with Q (Neutron allows it).
    let (st, _) = policy_on(&c, P_MEMBER, "network", &w.network, "access_as_shared", Q).await;
    assert_eq!(st, 201);
    let uri = format!("/v2.0/subnets?network_id={}", w.network);
    let (_, v) = c.call(Q_READER, "GET", &uri, None).await;
    let subnet = v["subnets"][0]["id"].as_str().unwrap().to_string();
    let q_router = c
        .made(Q_MEMBER, "routers", json!({"router": {"name": "rq"}}))
        .await;
    let (st, v) = c
        .call(
            Q_MEMBER,
            "PUT",
            &format!("/v2.0/routers/{q_router}/add_router_interface"),
            Some(json!({"subnet_id": subnet})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // A reader may not.
    let (st, v) = c
        .call(
            Q_READER,
            "PUT",
            &format!("/v2.0/routers/{q_router}/remove_router_interface"),
            Some(json!({"subnet_id": subnet})),
        )
        .await;
    assert_eq!((st, kind(&v)), (403, "PolicyNotAuthorized"), "{v}");
}

#[tokio::test]
async fn provider_and_binding_attributes_are_the_admins_to_see() {
    let c = Cloud::new();
    let w = world(&c).await;
    let port = c
        .made(
            P_MEMBER,
            "ports",
            json!({"port": {"network_id": w.network}}),
        )
        .await;
    let (_, v) = c
        .call(P_MEMBER, "GET", &format!("/v2.0/ports/{port}"), None)
        .await;
    let p = v["port"].as_object().expect("port");
    for a in [
        "binding:host_id",
        "binding:profile",
        "binding:vif_type",
        "binding:vif_details",
    ] {
        assert!(!p.contains_key(a), "{a} shown to a member: {v}");
    }
    assert!(
        p.contains_key("binding:vnic_type") && p.contains_key("mac_address"),
        "{v}"
    );
    let (_, v) = c
        .call(ADMIN, "GET", &format!("/v2.0/ports/{port}"), None)
        .await;
    assert_eq!(v["port"]["binding:vif_type"], "unbound", "{v}");
    let (_, v) = c.call(P_READER, "GET", "/v2.0/networks", None).await;
    let n = v["networks"][0].as_object().expect("network");
    assert!(
        !n.contains_key("provider:network_type") && n.contains_key("mtu"),
        "{v}"
    );
    let (_, v) = c
        .call(ADMIN, "GET", &format!("/v2.0/networks/{}", w.network), None)
        .await;
    assert_eq!(v["network"]["provider:network_type"], "geneve", "{v}");
    // Setting one is refused to a member, naming both rules.
    let body = json!({"port": {"network_id": w.network, "binding:host_id": "h"}});
    let (st, v) = c.call(P_MEMBER, "POST", "/v2.0/ports", Some(body)).await;
    assert_eq!(
        (st, v["NeutronError"]["message"].as_str()),
        (
            403,
            Some("(rule:create_port and rule:create_port:binding:host_id) is disallowed by policy")
        ),
        "{v}"
    );
}

#[tokio::test]
async fn a_policy_being_deleted_takes_no_new_users() {
    let c = Cloud::new();
    let w = world(&c).await;
    let (st, v) = policy_on(&c, P_MEMBER, "network", &w.network, "access_as_shared", Q).await;
    assert_eq!(st, 201, "{v}");
    let id = v["rbac_policy"]["id"].as_str().unwrap().to_string();
    // Another server has started deleting it: set its mark as that delete would.
    let rec = c
        .store
        .get("rbac_policy", &id)
        .await
        .expect("get")
        .expect("present");
    let mut stored: Value = serde_json::from_slice(&rec.value).expect("json");
    stored["deleting"] = json!(true);
    let op = nbdb::Op::put(
        "rbac_policy",
        &id,
        stored.to_string().into_bytes(),
        nbdb::Expect::Revision(rec.revision),
    )
    .with_topic(rec.topic.as_deref());
    c.store.commit(vec![op]).await.expect("mark");
    // Q still sees the network, but may not start using it.
    assert_eq!(
        c.call(
            Q_READER,
            "GET",
            &format!("/v2.0/networks/{}", w.network),
            None
        )
        .await
        .0,
        200
    );
    let port = json!({"port": {"network_id": w.network}});
    let (st, v) = c.call(Q_MEMBER, "POST", "/v2.0/ports", Some(port)).await;
    assert_eq!((st, kind(&v)), (404, "NetworkNotFound"), "{v}");
    // The mark is not shown, and the delete goes through.
    let uri = format!("/v2.0/rbac-policies/{id}");
    let (_, v) = c.call(P_MEMBER, "GET", &uri, None).await;
    assert!(v["rbac_policy"].get("deleting").is_none(), "{v}");
    assert_eq!(c.call(P_MEMBER, "DELETE", &uri, None).await.0, 204);
}
