//! Every resource through the generic lifecycle, in process: create, show, update,
//! delete; a bad value (400), another project's object (404 on show, update and delete),
//! `If-Match` on a moved-on revision (412), a read-only attribute (400). One table, one
//! row per resource.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use neutron_api::{Api, ApiConfig, router};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Who calls: a project, and whether as admin.
#[derive(Clone, Copy)]
struct Who(&'static str, bool);

const OWNER: Who = Who("p1", false);
const OTHER: Who = Who("p2", false);
const ADMIN: Who = Who("admin", true);

struct Cloud {
    app: axum::Router,
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
        let config = ApiConfig::default().check().expect("config");
        Cloud {
            app: router(Api::new(store, config)),
            _dir: dir,
        }
    }

    async fn call(
        &self,
        who: Who,
        method: &str,
        uri: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (u16, Value) {
        let mut r = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("x-project-id", who.0);
        if who.1 {
            r = r.header("x-roles", "admin");
        }
        if let Some(m) = if_match {
            r = r.header("if-match", m);
        }
        let req = r
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

    /// Creates `body` under `collection` and returns the new object's id.
    async fn made(&self, who: Who, collection: &str, body: Value) -> String {
        let (status, v) = self
            .call(
                who,
                "POST",
                &format!("/v2.0/{collection}"),
                Some(body),
                None,
            )
            .await;
        assert_eq!(status, 201, "{collection}: {v}");
        let obj = v
            .as_object()
            .and_then(|o| o.values().next())
            .expect("object");
        obj["id"].as_str().expect("id").to_string()
    }
}

/// What the other rows refer to: a network and subnet of the owner, an external network
/// with a subnet, and a router joining them (floating IPs need one).
struct World {
    network: String,
    subnet: String,
    external: String,
    group: String,
    /// A port of the owner (a trunk's parent).
    port: String,
}

async fn world(c: &Cloud) -> World {
    let network = c
        .made(OWNER, "networks", json!({"network": {"name": "n"}}))
        .await;
    let subnet = c
        .made(
            OWNER,
            "subnets",
            json!({"subnet": {"network_id": network, "ip_version": 4, "cidr": "10.0.0.0/24"}}),
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
    let group = c
        .made(
            OWNER,
            "security-groups",
            json!({"security_group": {"name": "g"}}),
        )
        .await;
    let port = c
        .made(OWNER, "ports", json!({"port": {"network_id": network}}))
        .await;
    World {
        network,
        subnet,
        external,
        group,
        port,
    }
}

/// One resource's row of the table.
struct Row {
    /// URL collection and body key.
    path: &'static str,
    key: &'static str,
    /// A valid POST body of the owner.
    create: Value,
    /// A POST body with one bad value, and the error type it gets.
    invalid: (Value, &'static str),
    /// An attribute a PUT changes, to what.
    change: (&'static str, Value),
    /// An attribute a PUT may not change.
    read_only: (&'static str, Value),
}

fn rows(w: &World) -> Vec<Row> {
    vec![
        Row {
            path: "networks",
            key: "network",
            create: json!({"network": {"name": "a", "mtu": 1300}}),
            invalid: (
                json!({"network": {"admin_state_up": "maybe"}}),
                "HTTPBadRequest",
            ),
            change: ("mtu", json!(1200)),
            read_only: ("status", json!("DOWN")),
        },
        Row {
            path: "subnets",
            key: "subnet",
            create: json!({"subnet": {"network_id": w.network, "ip_version": 4, "cidr": "10.1.0.0/24"}}),
            invalid: (
                json!({"subnet": {"network_id": w.network, "ip_version": 4, "cidr": "10.1.0.1/24"}}),
                "HTTPBadRequest",
            ),
            change: ("dns_nameservers", json!(["10.1.0.53"])),
            read_only: ("cidr", json!("10.2.0.0/24")),
        },
        Row {
            path: "ports",
            key: "port",
            create: json!({"port": {"network_id": w.network, "fixed_ips": [{"subnet_id": w.subnet}]}}),
            invalid: (
                json!({"port": {"network_id": w.network, "mac_address": "01:00:5e:00:00:01"}}),
                "HTTPBadRequest",
            ),
            change: ("security_groups", json!([w.group])),
            read_only: ("network_id", json!(w.network)),
        },
        Row {
            path: "routers",
            key: "router",
            create: json!({"router": {"name": "r", "external_gateway_info": {"network_id": w.external}}}),
            invalid: (json!({"router": {"distributed": false}}), "HTTPBadRequest"),
            change: ("admin_state_up", json!(false)),
            read_only: ("status", json!("DOWN")),
        },
        Row {
            path: "floatingips",
            key: "floatingip",
            create: json!({"floatingip": {"floating_network_id": w.external}}),
            invalid: (
                json!({"floatingip": {"floating_network_id": w.external, "floating_ip_address": "203.0.113"}}),
                "HTTPBadRequest",
            ),
            change: ("description", json!("the web server's")),
            read_only: ("floating_ip_address", json!("203.0.113.99")),
        },
        Row {
            path: "security-groups",
            key: "security_group",
            create: json!({"security_group": {"name": "web", "stateful": false}}),
            invalid: (
                json!({"security_group": {"stateful": "sometimes"}}),
                "HTTPBadRequest",
            ),
            change: ("name", json!("www")),
            read_only: ("id", json!("x")),
        },
        Row {
            path: "security-group-rules",
            key: "security_group_rule",
            create: json!({"security_group_rule": {"security_group_id": w.group, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}}),
            invalid: (
                json!({"security_group_rule": {"security_group_id": w.group, "direction": "sideways"}}),
                "HTTPBadRequest",
            ),
            change: ("description", json!("ssh")),
            read_only: ("created_at", json!("2020-01-01T00:00:00Z")),
        },
        Row {
            path: "address-groups",
            key: "address_group",
            create: json!({"address_group": {"name": "admins", "addresses": ["10.9.0.0/24"]}}),
            invalid: (
                json!({"address_group": {"addresses": ["10.9.0.1"]}}),
                "HTTPBadRequest",
            ),
            change: ("name", json!("ops")),
            read_only: ("addresses", json!(["10.8.0.0/24"])),
        },
        Row {
            path: "trunks",
            key: "trunk",
            create: json!({"trunk": {"port_id": w.port, "name": "t"}}),
            invalid: (
                json!({"trunk": {"port_id": w.port, "sub_ports": {"port_id": w.port}}}),
                "HTTPBadRequest",
            ),
            change: ("name", json!("t2")),
            read_only: ("port_id", json!(w.port)),
        },
        Row {
            path: "fwaas/firewall_rules",
            key: "firewall_rule",
            create: json!({"firewall_rule": {"protocol": "tcp", "destination_port": "22"}}),
            invalid: (
                json!({"firewall_rule": {"destination_port": "22"}}),
                "FirewallRuleWithPortWithoutProtocolInvalid",
            ),
            change: ("action", json!("reject")),
            read_only: ("firewall_policy_id", json!(null)),
        },
        Row {
            path: "fwaas/firewall_policies",
            key: "firewall_policy",
            create: json!({"firewall_policy": {"name": "fp", "audited": true}}),
            invalid: (
                json!({"firewall_policy": {"firewall_rules": ["nope"]}}),
                "HTTPBadRequest",
            ),
            change: ("audited", json!(true)),
            read_only: ("id", json!("x")),
        },
        Row {
            path: "fwaas/firewall_groups",
            key: "firewall_group",
            create: json!({"firewall_group": {"name": "fg"}}),
            invalid: (
                json!({"firewall_group": {"admin_state_up": "maybe"}}),
                "HTTPBadRequest",
            ),
            change: ("admin_state_up", json!(false)),
            read_only: ("status", json!("ACTIVE")),
        },
    ]
}

#[tokio::test]
async fn every_resource_lives_through_one_lifecycle() {
    let c = Cloud::new();
    let w = world(&c).await;
    for row in rows(&w) {
        let (path, key) = (row.path, row.key);
        let id = c.made(OWNER, path, row.create.clone()).await;
        let uri = format!("/v2.0/{path}/{id}");

        let (status, v) = c.call(OWNER, "GET", &uri, None, None).await;
        assert_eq!(status, 200, "{path}: {v}");
        assert_eq!(v[key]["revision_number"], 0, "{path}: {v}");
        let (status, v) = c
            .call(OWNER, "GET", &format!("{uri}?fields=id"), None, None)
            .await;
        assert_eq!(
            (status, v[key].as_object().map(|o| o.len())),
            (200, Some(1))
        );

        // Invalid input is refused before anything is written.
        let (status, v) = c
            .call(
                OWNER,
                "POST",
                &format!("/v2.0/{path}"),
                Some(row.invalid.0),
                None,
            )
            .await;
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(v["NeutronError"]["type"], row.invalid.1, "{path}: {v}");

        // Another project's object does not exist for the caller.
        let not_found = format!("{}NotFound", kind_of(key));
        for (method, body) in [
            ("GET", None),
            ("PUT", Some(json!({key: {"description": "x"}}))),
            ("DELETE", None),
        ] {
            let (status, v) = c.call(OTHER, method, &uri, body, None).await;
            assert_eq!(status, 404, "{path} {method}: {v}");
            assert_eq!(v["NeutronError"]["type"], not_found, "{path} {method}: {v}");
        }

        // An update at the revision it read; then one at a revision that moved on.
        let (attr, value) = row.change;
        let body = json!({key: {attr: value.clone()}});
        let (status, v) = c
            .call(
                OWNER,
                "PUT",
                &uri,
                Some(body.clone()),
                Some("revision_number=0"),
            )
            .await;
        assert_eq!(status, 200, "{path}: {v}");
        assert_eq!(v[key][attr], value, "{path}: {v}");
        assert_eq!(v[key]["revision_number"], 1, "{path}: {v}");
        let (status, v) = c
            .call(OWNER, "PUT", &uri, Some(body), Some("revision_number=0"))
            .await;
        assert_eq!(status, 412, "{path}: {v}");
        assert_eq!(v["NeutronError"]["type"], "RevisionNumberConstraintFailed");
        let (status, v) = c.call(OWNER, "GET", &uri, None, None).await;
        assert_eq!(status, 200, "{path}: {v}");
        let body = json!({key: {attr: value.clone()}});
        let (status, _) = c
            .call(OWNER, "PUT", &uri, Some(body), Some("revision_number=-1"))
            .await;
        assert_eq!(status, 412, "{path}: a revision that can never be");

        let (attr, value) = row.read_only;
        let (status, v) = c
            .call(OWNER, "PUT", &uri, Some(json!({key: {attr: value}})), None)
            .await;
        assert_eq!(status, 400, "{path} {attr}: {v}");
        let (_, v) = c.call(OWNER, "GET", &uri, None, None).await;
        assert_eq!(
            v[key]["revision_number"], 1,
            "{path}: a refused PUT wrote: {v}"
        );

        let (status, v) = c
            .call(OWNER, "DELETE", &uri, None, Some("revision_number=0"))
            .await;
        assert_eq!(status, 412, "{path}: {v}");
        let (status, v) = c
            .call(OWNER, "DELETE", &uri, None, Some("revision_number=1"))
            .await;
        assert_eq!(status, 204, "{path}: {v}");
        let (status, _) = c.call(OWNER, "GET", &uri, None, None).await;
        assert_eq!(status, 404, "{path}");
    }
}

/// Neutron's name of a resource in error types (`floatingip` → `FloatingIP`).
fn kind_of(key: &str) -> &'static str {
    match key {
        "network" => "Network",
        "subnet" => "Subnet",
        "port" => "Port",
        "router" => "Router",
        "floatingip" => "FloatingIP",
        "security_group" => "SecurityGroup",
        "address_group" => "AddressGroup",
        "trunk" => "Trunk",
        "firewall_rule" => "FirewallRule",
        "firewall_policy" => "FirewallPolicy",
        "firewall_group" => "FirewallGroup",
        _ => "SecurityGroupRule",
    }
}

#[tokio::test]
async fn a_refused_delete_leaves_the_object_usable() {
    // The deleting mark is cleared when the object turns out to be in use.
    let c = Cloud::new();
    let w = world(&c).await;
    c.made(
        OWNER,
        "ports",
        json!({"port": {"network_id": w.network, "security_groups": [w.group]}}),
    )
    .await;
    for (path, id, kind) in [
        ("networks", &w.network, "NetworkInUse"),
        ("subnets", &w.subnet, "SubnetInUse"),
        ("security-groups", &w.group, "SecurityGroupInUse"),
    ] {
        let uri = format!("/v2.0/{path}/{id}");
        let (status, v) = c.call(OWNER, "DELETE", &uri, None, None).await;
        assert_eq!(
            (status, &v["NeutronError"]["type"]),
            (409, &json!(kind)),
            "{v}"
        );
    }
    let (status, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": w.network, "security_groups": [w.group]}})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{v}");
}

#[tokio::test]
async fn attributes_a_resource_does_not_have_are_refused() {
    let c = Cloud::new();
    let w = world(&c).await;
    let fip = c
        .made(
            OWNER,
            "floatingips",
            json!({"floatingip": {"floating_network_id": w.external}}),
        )
        .await;
    let (status, v) = c
        .call(
            OWNER,
            "PUT",
            &format!("/v2.0/floatingips/{fip}"),
            Some(json!({"floatingip": {"name": "x"}})),
            None,
        )
        .await;
    assert_eq!(status, 400, "a floating IP has no name: {v}");
    let (status, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"status": "DOWN"}})),
            None,
        )
        .await;
    assert_eq!(status, 400, "status is the server's: {v}");
}

#[tokio::test]
async fn no_group_but_the_default_one_is_called_default() {
    let c = Cloud::new();
    let w = world(&c).await;
    let uri = format!("/v2.0/security-groups/{}", w.group);
    let (status, v) = c
        .call(
            OWNER,
            "PUT",
            &uri,
            Some(json!({"security_group": {"name": "default"}})),
            None,
        )
        .await;
    assert_eq!(
        (status, &v["NeutronError"]["type"]),
        (409, &json!("SecurityGroupDefaultAlreadyExists")),
        "{v}"
    );
    let (_, v) = c.call(OWNER, "GET", &uri, None, None).await;
    assert_ne!(v["security_group"]["name"], "default", "nothing written");
}

#[tokio::test]
async fn a_port_asked_with_no_groups_has_none() {
    let c = Cloud::new();
    let w = world(&c).await;
    let (status, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": w.network, "security_groups": []}})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["port"]["security_groups"], json!([]), "{v}");
    let (_, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": w.network}})),
            None,
        )
        .await;
    assert_eq!(
        v["port"]["security_groups"].as_array().map(Vec::len),
        Some(1),
        "{v}"
    );
}

#[tokio::test]
async fn an_empty_floating_ip_update_dissociates_it_and_a_description_does_not() {
    let c = Cloud::new();
    let w = world(&c).await;
    let router = c
        .made(
            OWNER,
            "routers",
            json!({"router": {"external_gateway_info": {"network_id": w.external}}}),
        )
        .await;
    let (status, v) = c
        .call(
            OWNER,
            "PUT",
            &format!("/v2.0/routers/{router}/add_router_interface"),
            Some(json!({"subnet_id": w.subnet})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let port = c
        .made(OWNER, "ports", json!({"port": {"network_id": w.network}}))
        .await;
    let fip = c
        .made(
            OWNER,
            "floatingips",
            json!({"floatingip": {"floating_network_id": w.external, "port_id": port}}),
        )
        .await;
    let uri = format!("/v2.0/floatingips/{fip}");
    let put = |body: Value| c.call(OWNER, "PUT", &uri, Some(body), None);
    let (status, v) = put(json!({"floatingip": {"description": "d"}})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["floatingip"]["port_id"], json!(port), "kept: {v}");
    let (status, v) = put(json!({"floatingip": {}})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["floatingip"]["port_id"], Value::Null, "dissociated: {v}");
    assert_eq!(v["floatingip"]["fixed_ip_address"], Value::Null, "{v}");
}

#[tokio::test]
async fn subnets_filter_on_shared_without_showing_it() {
    let c = Cloud::new();
    let w = world(&c).await;
    let shared = c
        .made(
            ADMIN,
            "networks",
            json!({"network": {"name": "s", "shared": true}}),
        )
        .await;
    let shared_subnet = c
        .made(
            ADMIN,
            "subnets",
            json!({"subnet": {"network_id": shared, "ip_version": 4, "cidr": "10.9.0.0/24"}}),
        )
        .await;
    let ids = |v: &Value| -> Vec<String> {
        v["subnets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert!(s.get("shared").is_none(), "shared is not shown: {s}");
                s["id"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let (status, v) = c
        .call(OWNER, "GET", "/v2.0/subnets?shared=True", None, None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(ids(&v), std::slice::from_ref(&shared_subnet));
    let (_, v) = c
        .call(OWNER, "GET", "/v2.0/subnets?shared=False", None, None)
        .await;
    let own = ids(&v);
    assert!(
        own.contains(&w.subnet) && !own.contains(&shared_subnet),
        "{own:?}"
    );
    let (_, v) = c
        .call(
            OWNER,
            "GET",
            &format!("/v2.0/subnets/{shared_subnet}"),
            None,
            None,
        )
        .await;
    assert!(v["subnet"].get("shared").is_none(), "{v}");
}

#[tokio::test]
async fn bulk_creates_are_all_or_nothing() {
    let c = Cloud::new();
    let w = world(&c).await;
    let count = |v: &Value, key: &str| v[key].as_array().map(Vec::len).unwrap_or(0);
    let (status, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/networks",
            Some(json!({"networks": [{"name": "b1"}, {"name": "b2"}]})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(count(&v, "networks"), 2, "{v}");
    assert_eq!(v["networks"][1]["name"], "b2");
    let (status, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_groups": [{"name": "s1"}, {"name": "s2"}]})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(count(&v, "security_groups"), 2, "{v}");

    let uri = format!("/v2.0/ports?network_id={}", w.network);
    let ports = || async { count(&c.call(OWNER, "GET", &uri, None, None).await.1, "ports") };
    let before = ports().await;
    // A bad item: nothing is written.
    let (status, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/ports",
            Some(json!({"ports": [{"network_id": w.network}, {"network_id": w.network, "mac_address": "nope"}]})),
            None,
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(ports().await, before, "nothing written");
    // An item that fails when written (the same address twice): the first goes again.
    let ip = json!([{"subnet_id": w.subnet, "ip_address": "10.0.0.77"}]);
    let (status, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/ports",
            Some(json!({"ports": [{"network_id": w.network, "fixed_ips": ip}, {"network_id": w.network, "fixed_ips": ip}]})),
            None,
        )
        .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(ports().await, before, "the first port was removed again");
    let (status, _) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/ports",
            Some(json!({"ports": []})),
            None,
        )
        .await;
    assert_eq!(status, 400, "an empty bulk");
}

#[tokio::test]
async fn a_port_names_each_group_once() {
    let c = Cloud::new();
    let w = world(&c).await;
    let (status, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": w.network, "security_groups": [w.group, w.group]}})),
            None,
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["NeutronError"]["message"]
            .as_str()
            .unwrap()
            .contains("Duplicate"),
        "{v}"
    );
}

#[tokio::test]
async fn a_childs_change_moves_its_parents_revision() {
    let c = Cloud::new();
    let w = world(&c).await;
    let rev = |v: &Value, key: &str| v[key]["revision_number"].as_u64().unwrap();
    let group_uri = format!("/v2.0/security-groups/{}", w.group);
    let before = rev(
        &c.call(OWNER, "GET", &group_uri, None, None).await.1,
        "security_group",
    );
    let rule = c
        .made(
            OWNER,
            "security-group-rules",
            json!({"security_group_rule": {"security_group_id": w.group, "direction": "ingress", "protocol": "udp"}}),
        )
        .await;
    let after_add = rev(
        &c.call(OWNER, "GET", &group_uri, None, None).await.1,
        "security_group",
    );
    assert!(after_add > before, "{before} -> {after_add}");
    let (st, _) = c
        .call(
            OWNER,
            "DELETE",
            &format!("/v2.0/security-group-rules/{rule}"),
            None,
            None,
        )
        .await;
    assert_eq!(st, 204);
    let after_del = rev(
        &c.call(OWNER, "GET", &group_uri, None, None).await.1,
        "security_group",
    );
    assert!(after_del > after_add, "{after_add} -> {after_del}");

    let net_uri = format!("/v2.0/networks/{}", w.network);
    let before = rev(
        &c.call(OWNER, "GET", &net_uri, None, None).await.1,
        "network",
    );
    let (st, v) = c
        .call(
            OWNER,
            "PUT",
            &format!("/v2.0/subnets/{}", w.subnet),
            Some(json!({"subnet": {"name": "renamed"}})),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let after = rev(
        &c.call(OWNER, "GET", &net_uri, None, None).await.1,
        "network",
    );
    assert!(after > before, "{before} -> {after}");
}

#[tokio::test]
async fn a_gateway_a_router_holds_does_not_move() {
    let c = Cloud::new();
    let net = c
        .made(OWNER, "networks", json!({"network": {"name": "g"}}))
        .await;
    let subnet = c
        .made(
            OWNER,
            "subnets",
            json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.5.0.0/24",
                "allocation_pools": [{"start": "10.5.0.10", "end": "10.5.0.20"}]}}),
        )
        .await;
    let router = c
        .made(OWNER, "routers", json!({"router": {"name": "r"}}))
        .await;
    let (st, v) = c
        .call(
            OWNER,
            "PUT",
            &format!("/v2.0/routers/{router}/add_router_interface"),
            Some(json!({"subnet_id": subnet})),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = c
        .call(
            OWNER,
            "PUT",
            &format!("/v2.0/subnets/{subnet}"),
            Some(json!({"subnet": {"gateway_ip": "10.5.0.254"}})),
            None,
        )
        .await;
    assert_eq!(
        (st, &v["NeutronError"]["type"]),
        (409, &json!("GatewayIpInUse")),
        "{v}"
    );
}

#[tokio::test]
async fn subnets_show_and_filter_on_their_networks_router_external() {
    let c = Cloud::new();
    let w = world(&c).await;
    let (st, v) = c
        .call(
            ADMIN,
            "GET",
            "/v2.0/subnets?router%3Aexternal=True",
            None,
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let subnets = v["subnets"].as_array().unwrap();
    assert_eq!(subnets.len(), 1, "{v}");
    assert_eq!(subnets[0]["network_id"], json!(w.external));
    assert_eq!(subnets[0]["router:external"], true);
    let (_, v) = c
        .call(
            OWNER,
            "GET",
            &format!("/v2.0/subnets/{}", w.subnet),
            None,
            None,
        )
        .await;
    assert_eq!(v["subnet"]["router:external"], false, "{v}");
}
