//! The REST API over HTTP against a real server process: Neutron error bodies for bad
//! input, nothing half written, concurrency, persistence, listing, tags and discovery.

mod common;

use common::Server;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Asserts a Neutron error body with `status` and `kind`.
fn assert_error(got: (u16, Value), status: u16, kind: &str) {
    let (st, body) = got;
    assert_eq!(st, status, "{body}");
    let e = &body["NeutronError"];
    assert_eq!(e["type"], kind, "{body}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(e["detail"], "", "{body}");
}

fn net_with_subnet(srv: &Server, cidr: &str) -> (String, String) {
    let n = srv.create("networks", "network", json!({"name": "n"}));
    let s = srv.create(
        "subnets",
        "subnet",
        json!({"network_id": n["id"], "ip_version": 4, "cidr": cidr}),
    );
    (
        n["id"].as_str().unwrap().into(),
        s["id"].as_str().unwrap().into(),
    )
}

fn count(srv: &Server, coll: &str) -> usize {
    srv.call("GET", &format!("/v2.0/{coll}"), None).1[coll.replace('-', "_")]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn bad_requests_are_400_with_neutron_bodies() {
    let srv = Server::start();
    let (net, sub) = net_with_subnet(&srv, "10.0.0.0/24");
    let post = |coll: &str, body: Value| srv.call("POST", &format!("/v2.0/{coll}"), Some(body));
    assert_error(
        post(
            "subnets",
            json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/33"}}),
        ),
        400,
        "HTTPBadRequest",
    );
    assert_error(
        post(
            "subnets",
            json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.1.0.1/24"}}),
        ),
        400,
        "HTTPBadRequest",
    );
    assert_error(
        post(
            "subnets",
            json!({"subnet": {"network_id": net, "ip_version": 6, "cidr": "10.1.0.0/24"}}),
        ),
        400,
        "InvalidInput",
    );
    assert_error(
        post(
            "subnets",
            json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.2.0.0/24", "gateway_ip": "10.2.0.300"}}),
        ),
        400,
        "HTTPBadRequest",
    );
    assert_error(
        post(
            "ports",
            json!({"port": {"network_id": net, "mac_address": "zz:16:3e:00:00:01"}}),
        ),
        400,
        "HTTPBadRequest",
    );
    assert_error(
        post(
            "ports",
            json!({"port": {"network_id": net, "mac_address": "01:00:5e:00:00:01"}}),
        ),
        400,
        "HTTPBadRequest",
    );
    assert_error(
        post(
            "ports",
            json!({"port": {"network_id": net, "fixed_ips": [{"subnet_id": sub, "ip_address": "10.9.0.5"}]}}),
        ),
        400,
        "InvalidIpForSubnet",
    );
    assert_error(
        post(
            "ports",
            json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "not-an-ip"}]}}),
        ),
        400,
        "HTTPBadRequest",
    );
    assert_error(
        post(
            "ports",
            json!({"port": {"network_id": net, "color": "red"}}),
        ),
        400,
        "HTTPBadRequest",
    );
    assert_error(
        post(
            "networks",
            json!({"network": {"admin_state_up": "perhaps"}}),
        ),
        400,
        "HTTPBadRequest",
    );
    assert_error(post("networks", json!({"nets": {}})), 400, "HTTPBadRequest");
    assert_error(
        srv.call("GET", "/v2.0/networks?colour=blue", None),
        400,
        "HTTPBadRequest",
    );
    assert_error(
        srv.call("GET", "/v2.0/networks?sort_key=colour", None),
        400,
        "HTTPBadRequest",
    );
    assert_error(
        srv.call(
            "PUT",
            &format!("/v2.0/networks/{net}"),
            Some(json!({"network": {"provider:segmentation_id": 5}})),
        ),
        400,
        "HTTPBadRequest",
    );
    // Malformed JSON.
    let (st, body) = srv.call(
        "POST",
        "/v2.0/networks",
        Some(Value::String("{not json".into())),
    );
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        count(&srv, "ports"),
        1,
        "no failed request left a port behind (the one is the subnet's DHCP port)"
    );
}

#[test]
fn unknown_ids_are_404() {
    let srv = Server::start();
    let id = "9d2c6b03-7d84-4dd9-94d6-c628a39a039e";
    for (coll, kind) in [
        ("networks", "NetworkNotFound"),
        ("subnets", "SubnetNotFound"),
        ("ports", "PortNotFound"),
        ("routers", "RouterNotFound"),
        ("floatingips", "FloatingIPNotFound"),
        ("security-groups", "SecurityGroupNotFound"),
        ("security-group-rules", "SecurityGroupRuleNotFound"),
    ] {
        assert_error(
            srv.call("GET", &format!("/v2.0/{coll}/{id}"), None),
            404,
            kind,
        );
        assert_error(
            srv.call("DELETE", &format!("/v2.0/{coll}/{id}"), None),
            404,
            kind,
        );
    }
    assert_error(srv.call("GET", "/v2.0/widgets", None), 404, "HTTPNotFound");
    assert_error(
        srv.call(
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": id}})),
        ),
        404,
        "NetworkNotFound",
    );
}

#[test]
fn conflicts_are_409_and_write_nothing() {
    let srv = Server::start();
    let (net, sub) = net_with_subnet(&srv, "10.0.0.0/29");
    let p = srv.create(
        "ports",
        "port",
        json!({"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.3"}]}),
    );
    // Same address again.
    let taken = srv.call(
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.3"}]}})),
    );
    assert_error(taken, 409, "IpAddressAlreadyAllocated");
    // A request whose second address is taken must not keep its first one.
    let half = json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.4"}, {"ip_address": "10.0.0.3"}]}});
    assert_error(
        srv.call("POST", "/v2.0/ports", Some(half)),
        409,
        "IpAddressAlreadyAllocated",
    );
    srv.create(
        "ports",
        "port",
        json!({"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.4"}]}),
    );
    // The same MAC.
    let mac = p["mac_address"].clone();
    assert_error(
        srv.call(
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": net, "mac_address": mac}})),
        ),
        409,
        "MacAddressInUse",
    );
    // Overlapping subnet on the same network.
    let overlap = json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/16"}});
    assert_error(
        srv.call("POST", "/v2.0/subnets", Some(overlap)),
        400,
        "InvalidInput",
    );
    // The /29 pool holds .2 to .6, the subnet's DHCP port has .2: two left (.5 .6), then
    // it is exhausted.
    for _ in 0..2 {
        srv.create("ports", "port", json!({"network_id": net}));
    }
    let full = srv.call(
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"network_id": net}})),
    );
    assert_error(full, 409, "IpAddressGenerationFailure");
    assert_eq!(count(&srv, "ports"), 5);
    // In use.
    assert_error(
        srv.call("DELETE", &format!("/v2.0/networks/{net}"), None),
        409,
        "NetworkInUse",
    );
    assert_error(
        srv.call("DELETE", &format!("/v2.0/subnets/{sub}"), None),
        409,
        "SubnetInUse",
    );
    // Overlapping subnets on one router.
    let (_, sub_b) = net_with_subnet(&srv, "10.5.0.0/24");
    let (_, sub_c) = net_with_subnet(&srv, "10.5.0.0/25");
    let r = srv.create("routers", "router", json!({"name": "r"}));
    let rid = r["id"].as_str().unwrap();
    let add = |s: &str| {
        srv.call(
            "PUT",
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            Some(json!({"subnet_id": s})),
        )
    };
    assert_eq!(add(&sub_b).0, 200);
    assert_error(add(&sub_c), 400, "BadRequest");
    assert_error(
        srv.call("DELETE", &format!("/v2.0/routers/{rid}"), None),
        409,
        "RouterInUse",
    );
    // A router interface port cannot be deleted through the port API.
    let iface = srv
        .call("GET", &format!("/v2.0/ports?device_id={rid}"), None)
        .1["ports"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_error(
        srv.call("DELETE", &format!("/v2.0/ports/{iface}"), None),
        409,
        "L3PortInUse",
    );
}

#[test]
fn concurrent_port_creations_get_distinct_addresses() {
    let srv = Server::start();
    let (net, _) = net_with_subnet(&srv, "10.10.0.0/24");
    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| s.spawn(|| srv.create("ports", "port", json!({"network_id": net}))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let ips: HashSet<String> = results
        .iter()
        .map(|p| {
            p["fixed_ips"][0]["ip_address"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let macs: HashSet<String> = results
        .iter()
        .map(|p| p["mac_address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ips.len(), 100, "distinct IPs");
    assert_eq!(macs.len(), 100, "distinct MACs");
    // And the subnet's DHCP port.
    assert_eq!(count(&srv, "ports"), 101);
}

#[test]
fn data_survives_a_restart() {
    let mut srv = Server::start();
    let (net, _) = net_with_subnet(&srv, "10.20.0.0/24");
    let p = srv.create("ports", "port", json!({"network_id": net, "name": "keep"}));
    srv.restart();
    let (st, got) = srv.call(
        "GET",
        &format!("/v2.0/ports/{}", p["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(st, 200);
    assert_eq!(got["port"], p);
    // Allocation state survived too: the next port does not get the same address.
    let q = srv.create("ports", "port", json!({"network_id": net}));
    assert_ne!(
        q["fixed_ips"][0]["ip_address"],
        p["fixed_ips"][0]["ip_address"]
    );
}

#[test]
fn listing_filters_fields_sorting_and_pages() {
    let srv = Server::start();
    for i in 0..7 {
        srv.create(
            "networks",
            "network",
            json!({"name": format!("net{i}"), "mtu": 1300 + i, "shared": i % 2 == 0}),
        );
    }
    let (_, v) = srv.call(
        "GET",
        "/v2.0/networks?shared=true&fields=name&fields=id&sort_key=name&sort_dir=desc",
        None,
    );
    let names: Vec<&str> = v["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["net6", "net4", "net2", "net0"]);
    assert_eq!(v["networks"][0].as_object().unwrap().len(), 2);
    let (_, v) = srv.call("GET", "/v2.0/networks?name=net1&name=net3", None);
    assert_eq!(v["networks"].as_array().unwrap().len(), 2);
    // Walk the pages through the next links.
    let mut seen = Vec::new();
    let mut path = "/v2.0/networks?limit=3&sort_key=mtu".to_string();
    loop {
        let (st, v) = srv.call("GET", &path, None);
        assert_eq!(st, 200, "{v}");
        seen.extend(
            v["networks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["mtu"].as_u64().unwrap()),
        );
        let next = v["networks_links"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["rel"] == "next"))
            .cloned();
        match next {
            Some(l) => {
                path = l["href"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches(&srv.url)
                    .to_string()
            }
            None => break,
        }
    }
    assert_eq!(seen, (1300..1307).collect::<Vec<u64>>());
}

#[test]
fn tags_calls() {
    let srv = Server::start();
    let n = srv.create("networks", "network", json!({"name": "t"}));
    let base = format!("/v2.0/networks/{}/tags", n["id"].as_str().unwrap());
    let (st, v) = srv.call("PUT", &base, Some(json!({"tags": ["b", "a"]})));
    assert_eq!((st, v), (200, json!({"tags": ["a", "b"]})));
    assert_eq!(srv.call("PUT", &format!("{base}/c"), None).0, 201);
    assert_eq!(srv.call("GET", &format!("{base}/c"), None).0, 204);
    assert_error(
        srv.call("GET", &format!("{base}/zz"), None),
        404,
        "TagNotFound",
    );
    assert_eq!(srv.call("DELETE", &format!("{base}/a"), None).0, 204);
    assert_eq!(srv.call("GET", &base, None).1, json!({"tags": ["b", "c"]}));
    assert_eq!(srv.call("DELETE", &base, None).0, 204);
    assert_eq!(srv.call("GET", &base, None).1, json!({"tags": []}));
    let (_, shown) = srv.call(
        "GET",
        &format!("/v2.0/networks/{}", n["id"].as_str().unwrap()),
        None,
    );
    assert!(
        shown["network"]["revision_number"].as_u64().unwrap() >= 4,
        "each tag change is a revision"
    );
}

#[test]
fn projects_if_match_and_discovery() {
    let srv = Server::start();
    let alice = [("X-Project-Id", "alice")];
    let bob = [("X-Project-Id", "bob")];
    let (st, n) = srv.call_as(
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {"name": "a"}})),
        &alice,
    );
    assert_eq!(st, 201);
    let id = n["network"]["id"].as_str().unwrap();
    assert_eq!(n["network"]["project_id"], "alice");
    assert_error(
        srv.call_as("GET", &format!("/v2.0/networks/{id}"), None, &bob),
        404,
        "NetworkNotFound",
    );
    assert_eq!(
        srv.call_as("GET", "/v2.0/networks", None, &bob).1["networks"],
        json!([])
    );
    let provider = json!({"network": {"provider:network_type": "vxlan"}});
    assert_error(
        srv.call_as("POST", "/v2.0/networks", Some(provider), &bob),
        403,
        "PolicyNotAuthorized",
    );
    // If-Match on the revision.
    let stale = [("If-Match", "revision_number=7")];
    let upd = json!({"network": {"name": "b"}});
    assert_eq!(
        srv.call_as(
            "PUT",
            &format!("/v2.0/networks/{id}"),
            Some(upd.clone()),
            &stale
        )
        .0,
        412
    );
    assert_eq!(
        srv.call_as(
            "PUT",
            &format!("/v2.0/networks/{id}"),
            Some(upd),
            &[("If-Match", "revision_number=0")]
        )
        .0,
        200
    );
    // Discovery.
    let (_, v) = srv.call("GET", "/", None);
    assert_eq!(v["versions"][0]["id"], "v2.0");
    let (_, v) = srv.call("GET", "/v2.0/extensions", None);
    let aliases: Vec<&str> = v["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["alias"].as_str().unwrap())
        .collect();
    for a in [
        "router",
        "security-group",
        "provider",
        "external-net",
        "standard-attr-tag",
        "pagination",
        "sorting",
        "subnet_allocation",
        "availability_zone",
        "floating-ip-port-forwarding",
        "address-group",
        "dns-integration",
        "dns-domain-ports",
        "trunk",
        "trunk-details",
        "sfc",
        "flow_classifier",
        "qos",
        "qos-bw-limit-direction",
        "qos-default",
        "qos-rule-type-details",
        "qos-rules-alias",
        "qos-port-network-policy",
    ] {
        assert!(aliases.contains(&a), "{a} missing from {aliases:?}");
    }
    for a in ["dvr", "l3-ha", "metering", "segment"] {
        assert!(!aliases.contains(&a), "{a} is not implemented");
    }
    assert_eq!(srv.call("GET", "/v2.0/extensions/router", None).0, 200);
    assert_error(
        srv.call("GET", "/v2.0/extensions/metering", None),
        404,
        "ExtensionNotFound",
    );
}
