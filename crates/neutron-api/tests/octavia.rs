//! The Octavia v2 API (issue 23), in process: a balancer's tree built node by node with
//! its VIP port allocated on the Neutron side, the status tree, listings, cascade delete,
//! and Octavia's refusals with its status codes and `faultstring`s.

mod common;

use common::{ADMIN, Cloud, OTHER, OWNER, READER, id};
use serde_json::{Value, json};

fn fault(v: &Value) -> &str {
    v["faultstring"].as_str().unwrap_or_default()
}

/// A network with one IPv4 subnet of project p1: (network, subnet).
async fn net(c: &Cloud) -> (String, String) {
    let (n, s) = c.lb_net().await;
    (
        n["id"].as_str().unwrap().into(),
        s["id"].as_str().unwrap().into(),
    )
}

#[tokio::test]
async fn a_balancer_is_built_node_by_node_and_cascade_deleted_with_its_vip_port() {
    let c = Cloud::new();
    let (n, s) = net(&c).await;
    let lb = c
        .lb_made(
            "/v2/lbaas/loadbalancers",
            json!({"loadbalancer": {"name": "web", "vip_subnet_id": s, "tags": ["t"]}}),
        )
        .await;
    assert_eq!(lb["provisioning_status"], "ACTIVE", "{lb}");
    assert_eq!(lb["operating_status"], "ONLINE");
    assert_eq!(lb["provider"], "dragonflow");
    assert_eq!(lb["vip_network_id"], n.as_str());
    assert_eq!(lb["project_id"], "p1");
    let vip = lb["vip_address"].as_str().unwrap();
    assert!(vip.starts_with("10.9.0."), "{vip}");
    // The VIP port is a Neutron port of the balancer's project, with the VIP.
    let port_id = lb["vip_port_id"].as_str().unwrap();
    let (st, p) = c
        .call(OWNER, "GET", &format!("/v2.0/ports/{port_id}"), None)
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["port"]["device_owner"], "Octavia");
    assert_eq!(p["port"]["fixed_ips"][0]["ip_address"], vip);
    let lb_id = id(&lb);

    let l = c
        .lb_made(
            "/v2/lbaas/listeners",
            json!({"listener": {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80,
            "allowed_cidrs": ["10.0.0.0/8"], "timeout_client_data": 1000}}),
        )
        .await;
    assert_eq!(l["connection_limit"], -1);
    assert_eq!(l["default_pool_id"], Value::Null);
    assert_eq!(l["loadbalancers"][0]["id"], lb_id.as_str());
    assert_eq!(l["allowed_cidrs"], json!(["10.0.0.0/8"]));
    let pool = c.lb_made("/v2/lbaas/pools",
        json!({"pool": {"listener_id": l["id"], "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN",
            "session_persistence": null}}),
    )
    .await;
    assert_eq!(pool["listeners"][0]["id"], l["id"]);
    assert_eq!(pool["session_persistence"], Value::Null);
    let pool_id = id(&pool);
    let members = format!("/v2/lbaas/pools/{pool_id}/members");
    let m1 = c
        .lb_made(
            &members,
            json!({"member": {"address": "10.9.0.10", "protocol_port": 8080, "subnet_id": s}}),
        )
        .await;
    assert_eq!(m1["weight"], 1);
    assert_eq!(m1["operating_status"], "NO_MONITOR");
    let m2 = c
        .lb_made(
            &members,
            json!({"member": {"address": "10.9.0.11", "protocol_port": 8080, "weight": 3}}),
        )
        .await;
    let hm = c
        .lb_made(
            "/v2/lbaas/healthmonitors",
            json!({"healthmonitor": {"pool_id": pool_id, "type": "HTTP", "delay": 2, "timeout": 1,
            "max_retries": 2}}),
        )
        .await;
    assert_eq!(hm["http_method"], "GET");
    assert_eq!(hm["url_path"], "/");
    assert_eq!(hm["expected_codes"], "200");
    assert_eq!(hm["max_retries_down"], 3);

    // The listener now names its pool; the balancer lists its children.
    let (_, v) = c
        .lb(
            OWNER,
            "GET",
            &format!("/v2/lbaas/listeners/{}", id(&l)),
            None,
        )
        .await;
    assert_eq!(v["listener"]["default_pool_id"], pool_id.as_str());
    // An update may say "no limit", not set one.
    let l_path = format!("/v2/lbaas/listeners/{}", id(&l));
    let limit = |n: i64| json!({"listener": {"connection_limit": n}});
    let (st, v) = c.lb(OWNER, "PUT", &l_path, Some(limit(10))).await;
    assert_eq!(st, 501, "{v}");
    let (st, v) = c.lb(OWNER, "PUT", &l_path, Some(limit(-1))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["listener"]["connection_limit"], -1);
    let (_, v) = c
        .lb(
            OWNER,
            "GET",
            &format!("/v2/lbaas/loadbalancers/{lb_id}"),
            None,
        )
        .await;
    assert_eq!(v["loadbalancer"]["listeners"][0]["id"], l["id"]);
    assert_eq!(v["loadbalancer"]["pools"][0]["id"], pool_id.as_str());
    let (_, v) = c
        .lb(OWNER, "GET", &format!("/v2/lbaas/pools/{pool_id}"), None)
        .await;
    assert_eq!(v["pool"]["healthmonitor_id"], hm["id"]);
    assert_eq!(v["pool"]["members"].as_array().unwrap().len(), 2);

    // The status tree.
    let (st, v) = c
        .lb(
            OWNER,
            "GET",
            &format!("/v2/lbaas/loadbalancers/{lb_id}/status"),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let t = &v["statuses"]["loadbalancer"];
    assert_eq!(
        t["listeners"][0]["pools"][0]["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        t["listeners"][0]["pools"][0]["health_monitor"]["type"],
        "HTTP"
    );

    // Updates.
    let (st, v) = c
        .lb(
            OWNER,
            "PUT",
            &format!("{members}/{}", id(&m2)),
            Some(json!({"member": {"weight": 0, "name": "drain"}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["member"]["weight"], 0);
    assert_eq!(v["member"]["name"], "drain");
    let (st, v) = c
        .lb(
            OWNER,
            "PUT",
            &format!("/v2/lbaas/loadbalancers/{lb_id}"),
            Some(json!({"loadbalancer": {"admin_state_up": false}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["loadbalancer"]["operating_status"], "OFFLINE");

    // Listings with filters and fields; another project sees nothing.
    let (_, v) = c.lb(OWNER, "GET", "/v2/lbaas/members?x=1", None).await;
    assert_eq!(v["faultstring"], "The resource could not be found.");
    let (_, v) = c
        .lb(
            OWNER,
            "GET",
            &format!("{members}?address=10.9.0.10&fields=id"),
            None,
        )
        .await;
    assert_eq!(v["members"], json!([{"id": m1["id"]}]));
    let (_, v) = c.lb(OTHER, "GET", "/v2/lbaas/loadbalancers", None).await;
    assert_eq!(v["loadbalancers"], json!([]));
    let (_, v) = c
        .lb(READER, "GET", "/v2/lbaas/loadbalancers?tags=t", None)
        .await;
    assert_eq!(v["loadbalancers"].as_array().unwrap().len(), 1);

    // A balancer with children goes only with cascade; its VIP port goes with it.
    let uri = format!("/v2/lbaas/loadbalancers/{lb_id}");
    let (st, v) = c.lb(OWNER, "DELETE", &uri, None).await;
    assert_eq!(st, 400);
    assert_eq!(
        fault(&v),
        format!("Validation failure: Cannot delete Load Balancer {lb_id} - it has children")
    );
    let (st, _) = c
        .lb(OWNER, "DELETE", &format!("{uri}?cascade=true"), None)
        .await;
    assert_eq!(st, 204);
    let (st, v) = c.lb(OWNER, "GET", &uri, None).await;
    assert_eq!(st, 404);
    assert_eq!(fault(&v), format!("Load Balancer {lb_id} not found."));
    assert_eq!(v["faultcode"], "Client");
    let (st, _) = c
        .call(OWNER, "GET", &format!("/v2.0/ports/{port_id}"), None)
        .await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn octavia_refusals_have_octavia_codes_and_words() {
    let c = Cloud::new();
    let (n, s) = net(&c).await;
    // The VIP: one of port, network or subnet.
    let (st, v) = c
        .lb(
            OWNER,
            "POST",
            "/v2/lbaas/loadbalancers",
            Some(json!({"loadbalancer": {}})),
        )
        .await;
    assert_eq!(st, 400);
    assert!(
        fault(&v).starts_with("Validation failure: VIP must contain one of"),
        "{v}"
    );
    let (st, v) = c
        .lb(
            OWNER,
            "POST",
            "/v2/lbaas/loadbalancers",
            Some(json!({"loadbalancer": {"vip_network_id": n, "provider": "amphora"}})),
        )
        .await;
    assert_eq!((st, fault(&v)), (400, "Provider 'amphora' is not enabled."));
    let (st, v) = c
        .lb(
            OWNER,
            "POST",
            "/v2/lbaas/loadbalancers",
            Some(json!({"loadbalancer": {"vip_network_id": n, "bogus": 1}})),
        )
        .await;
    assert_eq!(st, 400);
    assert!(
        fault(&v).contains("Unknown attribute for argument loadbalancer: bogus"),
        "{v}"
    );
    let (st, v) = c
        .lb(
            OWNER,
            "POST",
            "/v2/lbaas/loadbalancers",
            Some(json!({"loadbalancer": {"vip_subnet_id": "not-a-uuid"}})),
        )
        .await;
    assert_eq!(st, 400);
    assert!(
        fault(&v).starts_with("Invalid input for field/attribute vip_subnet_id"),
        "{v}"
    );
    // A reader may not create; another project may not see.
    let (st, _) = c
        .lb(
            READER,
            "POST",
            "/v2/lbaas/loadbalancers",
            Some(json!({"loadbalancer": {"vip_network_id": n}})),
        )
        .await;
    assert_eq!(st, 403);
    let lb = c
        .lb_made(
            "/v2/lbaas/loadbalancers",
            json!({"loadbalancer": {"vip_network_id": n, "vip_address": "10.9.0.50"}}),
        )
        .await;
    assert_eq!(lb["vip_address"], "10.9.0.50");
    assert_eq!(lb["vip_subnet_id"], s.as_str());
    let lb_id = id(&lb);
    let (st, v) = c
        .lb(
            OTHER,
            "GET",
            &format!("/v2/lbaas/loadbalancers/{lb_id}"),
            None,
        )
        .await;
    assert_eq!(
        (st, fault(&v)),
        (403, "Policy does not allow this request to be performed.")
    );
    let (st, _) = c
        .lb(
            ADMIN,
            "GET",
            &format!("/v2/lbaas/loadbalancers/{lb_id}"),
            None,
        )
        .await;
    assert_eq!(st, 200);

    // Listeners: L4 only, one per protocol and port, mandatory port.
    let listeners = "/v2/lbaas/listeners";
    let post = |body: Value| {
        let c = &c;
        async move {
            c.lb(OWNER, "POST", listeners, Some(json!({"listener": body})))
                .await
        }
    };
    let (st, v) =
        post(json!({"loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80})).await;
    assert_eq!(st, 501);
    assert!(
        fault(&v).starts_with("Provider 'dragonflow' does not support a requested option"),
        "{v}"
    );
    // A connection limit is not counted anywhere: refused, but -1 (none) is fine, and
    // a value out of range is WSME's 400 first.
    let (st, v) = post(
        json!({"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80,
        "connection_limit": 100}),
    )
    .await;
    assert_eq!(st, 501, "{v}");
    assert!(fault(&v).contains("connection_limit"), "{v}");
    let (st, v) = post(
        json!({"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80,
        "connection_limit": -2}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) =
        post(json!({"loadbalancer_id": lb_id, "protocol": "QUIC", "protocol_port": 80})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = post(json!({"loadbalancer_id": lb_id, "protocol": "TCP"})).await;
    assert_eq!(st, 400);
    assert!(fault(&v).ends_with("Mandatory field missing."), "{v}");
    let (st, v) =
        post(json!({"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 70000})).await;
    assert_eq!(st, 400);
    assert!(
        fault(&v).contains("Value should be lower or equal to 65535"),
        "{v}"
    );
    let (st, v) = post(
        json!({"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80,
        "default_tls_container_ref": "x"}),
    )
    .await;
    assert_eq!(st, 501, "{v}");
    let (st, v) = post(
        json!({"loadbalancer_id": lb_id, "protocol": "UDP", "protocol_port": 53,
        "allowed_cidrs": ["2001:db8::/64"]}),
    )
    .await;
    assert_eq!(st, 400);
    assert!(fault(&v).contains("IP version incompatible"), "{v}");
    let (st, l) =
        post(json!({"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80})).await;
    assert_eq!(st, 201, "{l}");
    let (st, v) =
        post(json!({"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80})).await;
    assert_eq!(
        (st, fault(&v)),
        (
            409,
            "Another Listener on this Load Balancer is already using protocol TCP and protocol_port 80"
        )
    );
    let (st, _) =
        post(json!({"loadbalancer_id": lb_id, "protocol": "UDP", "protocol_port": 80})).await;
    assert_eq!(st, 201);
    let l_id = l["listener"]["id"].as_str().unwrap().to_string();

    // Pools: algorithms the switch honours, SOURCE_IP persistence only.
    let pools = "/v2/lbaas/pools";
    let pool = |body: Value| {
        let c = &c;
        async move {
            c.lb(OWNER, "POST", pools, Some(json!({"pool": body})))
                .await
        }
    };
    let (st, v) = pool(json!({"loadbalancer_id": lb_id, "protocol": "TCP",
        "lb_algorithm": "LEAST_CONNECTIONS"}))
    .await;
    assert_eq!(st, 501);
    assert!(fault(&v).contains("LEAST_CONNECTIONS"), "{v}");
    let (st, v) = pool(
        json!({"loadbalancer_id": lb_id, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN",
        "session_persistence": {"type": "HTTP_COOKIE"}}),
    )
    .await;
    assert_eq!(st, 501, "{v}");
    assert!(
        fault(&v).contains("HTTP_COOKIE: this provider balances at L4"),
        "{v}"
    );
    let (st, v) = pool(
        json!({"loadbalancer_id": lb_id, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN",
        "session_persistence": {"type": "BOGUS"}}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = pool(json!({"protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"})).await;
    assert_eq!(
        (st, fault(&v)),
        (
            400,
            "Validation failure: Must provide at least one of: loadbalancer_id, listener_id"
        )
    );
    let (st, v) =
        pool(json!({"listener_id": l_id, "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN"})).await;
    assert_eq!(st, 400);
    assert!(
        fault(&v).contains("The pool protocol 'UDP' is invalid"),
        "{v}"
    );
    let (st, p) =
        pool(json!({"listener_id": l_id, "protocol": "TCP", "lb_algorithm": "SOURCE_IP_PORT"}))
            .await;
    assert_eq!(st, 201, "{p}");
    let (st, v) =
        pool(json!({"listener_id": l_id, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"})).await;
    assert_eq!(
        (st, fault(&v)),
        (409, "This listener already has a default pool")
    );
    let p_id = p["pool"]["id"].as_str().unwrap().to_string();

    // Members: weight range, duplicates, family, backup.
    let members = format!("/v2/lbaas/pools/{p_id}/members");
    let member = |body: Value| {
        let (c, members) = (&c, members.clone());
        async move {
            c.lb(OWNER, "POST", &members, Some(json!({"member": body})))
                .await
        }
    };
    let (st, v) = member(json!({"address": "10.9.0.7", "protocol_port": 80, "weight": 257})).await;
    assert_eq!(st, 400);
    assert!(
        fault(&v).contains("Value should be lower or equal to 256"),
        "{v}"
    );
    let (st, v) = member(json!({"address": "10.9.0.300", "protocol_port": 80})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = member(json!({"address": "2001:db8::7", "protocol_port": 80})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = member(json!({"address": "10.9.0.8", "protocol_port": 80, "backup": true})).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["member"]["backup"], true, "{v}");
    let (st, v) =
        member(json!({"address": "10.9.0.7", "protocol_port": 80, "backup": "yes"})).await;
    assert_eq!(st, 400, "{v}");
    let (st, _) = member(json!({"address": "10.9.0.7", "protocol_port": 80})).await;
    assert_eq!(st, 201);
    let (st, v) = member(json!({"address": "10.9.0.7", "protocol_port": 80})).await;
    assert_eq!(
        (st, fault(&v)),
        (
            409,
            "Another member on this pool is already using ip 10.9.0.7 on protocol_port 80"
        )
    );
    let (st, v) = c
        .lb(OWNER, "GET", &format!("{members}/{lb_id}"), None)
        .await;
    assert_eq!(
        (st, fault(&v).to_string()),
        (404, format!("Member {lb_id} not found."))
    );

    // Health monitors: one per pool, the types the checker knows, pool protocol.
    let hm = |body: Value| {
        let c = &c;
        async move {
            c.lb(
                OWNER,
                "POST",
                "/v2/lbaas/healthmonitors",
                Some(json!({"healthmonitor": body})),
            )
            .await
        }
    };
    let base = json!({"pool_id": p_id, "delay": 1, "timeout": 1, "max_retries": 1});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let (st, v) = hm(with("type", json!("TLS-HELLO"))).await;
    assert_eq!(st, 501, "{v}");
    let (st, v) = hm(with("type", json!("UDP-CONNECT"))).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = hm(
        json!({"pool_id": p_id, "type": "TCP", "delay": 1, "timeout": 1,
        "max_retries": 11}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = hm(
        json!({"pool_id": p_id, "type": "HTTP", "delay": 1, "timeout": 1,
        "max_retries": 1, "expected_codes": "2000"}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = hm(
        json!({"pool_id": p_id, "type": "TCP", "delay": 1, "timeout": 1,
        "max_retries": 1, "url_path": "/x"}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, _) = hm(with("type", json!("TCP"))).await;
    assert_eq!(st, 201);
    let (st, v) = hm(with("type", json!("PING"))).await;
    assert_eq!(
        (st, fault(&v)),
        (409, "This pool already has a health monitor")
    );

    // No L7; statistics (none counted: no host reports); failover by an admin only;
    // one provider.
    let (st, _) = c
        .lb(OWNER, "POST", "/v2/lbaas/l7policies", Some(json!({})))
        .await;
    assert_eq!(st, 501);
    let stats = format!("/v2/lbaas/loadbalancers/{lb_id}/stats");
    let (st, v) = c.lb(OWNER, "GET", &stats, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        json!({"stats": {"bytes_in": 0, "bytes_out": 0, "active_connections": 0,
            "total_connections": 0, "request_errors": 0}})
    );
    let (st, _) = c.lb(OTHER, "GET", &stats, None).await;
    assert_eq!(st, 403);
    let failover = format!("/v2/lbaas/loadbalancers/{lb_id}/failover");
    let (st, _) = c.lb(OWNER, "PUT", &failover, None).await;
    assert_eq!(st, 403);
    let before = c
        .api
        .db
        .get::<model::LoadBalancer>(&lb_id)
        .await
        .unwrap()
        .unwrap()
        .0;
    let (st, _) = c.lb(ADMIN, "PUT", &failover, None).await;
    assert_eq!(st, 202);
    let after = c
        .api
        .db
        .get::<model::LoadBalancer>(&lb_id)
        .await
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(after.failovers, before.failovers + 1);
    let (st, _) = c
        .lb(ADMIN, "PUT", "/v2/lbaas/loadbalancers/nope/failover", None)
        .await;
    assert_eq!(st, 404);
    let (st, v) = c.lb(OWNER, "GET", "/v2/lbaas/providers", None).await;
    assert_eq!(st, 200);
    assert_eq!(v["providers"][0]["name"], "dragonflow");
    // Another project may not add to this balancer.
    let (st, _) = c
        .lb(
            OTHER,
            "POST",
            listeners,
            Some(
                json!({"listener": {"loadbalancer_id": lb_id, "protocol": "TCP",
                "protocol_port": 81}}),
            ),
        )
        .await;
    assert_eq!(st, 403);
}

#[tokio::test]
async fn the_api_is_served_under_v2_0_too_as_octaviaclient_asks() {
    let c = Cloud::new();
    let (_, s) = net(&c).await;
    // python-octaviaclient appends /v2.0 to the catalog's endpoint.
    let (st, v) = c
        .lb(
            OWNER,
            "POST",
            "/v2.0/lbaas/loadbalancers",
            Some(json!({"loadbalancer": {"vip_subnet_id": s}})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let id = id(&v["loadbalancer"]);
    for path in ["/v2/lbaas/loadbalancers/", "/v2.0/lbaas/loadbalancers/"] {
        let (st, v) = c.lb(OWNER, "GET", &format!("{path}{id}"), None).await;
        assert_eq!(st, 200, "{path}: {v}");
    }
    let (st, _) = c.lb(OWNER, "GET", "/v2.1/lbaas/loadbalancers", None).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn source_ip_algorithm_and_persistence_are_stored_and_shown_as_octavia() {
    let c = Cloud::new();
    let (n, _) = net(&c).await;
    let lb = c
        .lb_made(
            "/v2/lbaas/loadbalancers",
            json!({"loadbalancer": {"vip_network_id": n}}),
        )
        .await;
    let lb_id = id(&lb);
    let pools = "/v2/lbaas/pools";
    let pool = |body: Value| {
        let c = &c;
        async move {
            c.lb(OWNER, "POST", pools, Some(json!({"pool": body})))
                .await
        }
    };
    let sp = |v: Value| {
        json!({"loadbalancer_id": lb_id, "protocol": "TCP",
        "lb_algorithm": "ROUND_ROBIN", "session_persistence": v})
    };
    let udp = |v: Value| {
        json!({"loadbalancer_id": lb_id, "protocol": "UDP",
        "lb_algorithm": "ROUND_ROBIN", "session_persistence": v})
    };

    // lb_algorithm SOURCE_IP.
    let (st, p) =
        pool(json!({"loadbalancer_id": lb_id, "protocol": "TCP", "lb_algorithm": "SOURCE_IP"}))
            .await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["pool"]["lb_algorithm"], "SOURCE_IP");
    assert_eq!(p["pool"]["session_persistence"], Value::Null);

    // SOURCE_IP persistence on TCP: every attribute shown, the unset ones null.
    let (st, p) = pool(sp(json!({"type": "SOURCE_IP"}))).await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(
        p["pool"]["session_persistence"],
        json!({"type": "SOURCE_IP", "cookie_name": null, "persistence_timeout": null,
            "persistence_granularity": null})
    );
    let tcp_id = id(&p["pool"]);

    // Octavia's checks, in its order and words.
    for (body, detail) in [
        (
            sp(json!({"type": "SOURCE_IP", "persistence_timeout": 60})),
            "persistence_timeout and persistence_granularity is only for UDP protocol pools.",
        ),
        (
            sp(json!({"type": "SOURCE_IP", "cookie_name": "c"})),
            "Field \"cookie_name\" can only be specified with session persistence of type \"APP_COOKIE\".",
        ),
        (
            sp(json!({"type": "APP_COOKIE"})),
            "Field \"cookie_name\" must be specified when using the \"APP_COOKIE\" session persistence type.",
        ),
        (
            udp(json!({"type": "HTTP_COOKIE"})),
            "Session persistence of type HTTP_COOKIE is not supported for UDP protocol pools.",
        ),
    ] {
        let (st, v) = pool(body.clone()).await;
        assert_eq!(
            (st, fault(&v)),
            (400, format!("Validation failure: {detail}").as_str()),
            "{body}"
        );
    }
    let (st, v) = pool(sp(json!({"type": "APP_COOKIE", "cookie_name": "c"}))).await;
    assert_eq!(st, 501, "{v}");
    assert!(fault(&v).contains("this provider balances at L4"), "{v}");
    let (st, v) = pool(udp(json!({"type": "SOURCE_IP", "cookie_name": "c"}))).await;
    assert_eq!(st, 400, "{v}");
    assert!(
        fault(&v).contains("only accepts: type, persistence_timeout"),
        "{v}"
    );
    let (st, v) = pool(sp(json!({"persistence_timeout": 60}))).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = pool(sp(json!({"type": "SOURCE_IP", "bogus": 1}))).await;
    assert_eq!(st, 400, "{v}");
    assert!(fault(&v).contains("Unknown attribute"), "{v}");
    let (st, v) = pool(udp(
        json!({"type": "SOURCE_IP", "persistence_timeout": "x"}),
    ))
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = pool(udp(
        json!({"type": "SOURCE_IP", "persistence_granularity": "255.0.255.0"}),
    ))
    .await;
    assert_eq!(st, 501, "{v}");

    // UDP: a timeout and a granularity, shown back; a PUT updates what it names.
    let (st, p) = pool(udp(json!({"type": "SOURCE_IP", "persistence_timeout": 60,
        "persistence_granularity": "255.255.255.0"})))
    .await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(
        p["pool"]["session_persistence"],
        json!({"type": "SOURCE_IP", "cookie_name": null, "persistence_timeout": 60,
            "persistence_granularity": "255.255.255.0"})
    );
    let udp_path = format!("{pools}/{}", id(&p["pool"]));
    let (st, p) = c
        .lb(
            OWNER,
            "PUT",
            &udp_path,
            Some(json!({"pool": {"session_persistence": {"persistence_timeout": 120}}})),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(
        p["pool"]["session_persistence"],
        json!({"type": "SOURCE_IP", "cookie_name": null, "persistence_timeout": 120,
            "persistence_granularity": "255.255.255.0"})
    );
    let (st, p) = c.lb(OWNER, "GET", &udp_path, None).await;
    assert_eq!(st, 200);
    assert_eq!(p["pool"]["session_persistence"]["persistence_timeout"], 120);

    // A TCP pool's persistence cleared with null, set again; its algorithm changed.
    let tcp_path = format!("{pools}/{tcp_id}");
    let put = |body: Value| {
        let (c, path) = (&c, tcp_path.clone());
        async move { c.lb(OWNER, "PUT", &path, Some(json!({"pool": body}))).await }
    };
    let (st, p) = put(json!({"session_persistence": null})).await;
    assert_eq!((st, &p["pool"]["session_persistence"]), (200, &Value::Null));
    let (st, v) = put(json!({"session_persistence": {"persistence_timeout": 5}})).await;
    assert_eq!(st, 400, "{v}");
    let (st, p) =
        put(json!({"session_persistence": {"type": "SOURCE_IP"}, "lb_algorithm": "SOURCE_IP"}))
            .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["pool"]["session_persistence"]["type"], "SOURCE_IP");
    assert_eq!(p["pool"]["lb_algorithm"], "SOURCE_IP");
}

#[tokio::test]
async fn a_granularity_is_a_netmask_of_the_vips_family() {
    let c = Cloud::new();
    let (n, s4) = net(&c).await;
    let s6 = c
        .made(
            OWNER,
            "subnets",
            json!({"subnet": {"network_id": n, "cidr": "fd00:9::/64", "ip_version": 6}}),
        )
        .await;
    let balancer = |subnet: String| {
        let c = &c;
        async move {
            id(&c
                .lb_made(
                    "/v2/lbaas/loadbalancers",
                    json!({"loadbalancer": {"vip_subnet_id": subnet}}),
                )
                .await)
        }
    };
    let (lb4, lb6) = (balancer(s4).await, balancer(id(&s6)).await);
    let pool = |lb: &str, g: &str| {
        let (c, body) = (
            &c,
            json!({"pool": {"loadbalancer_id": lb, "protocol": "UDP", "lb_algorithm": "SOURCE_IP",
                "session_persistence": {"type": "SOURCE_IP", "persistence_granularity": g}}}),
        );
        async move { c.lb(OWNER, "POST", "/v2/lbaas/pools", Some(body)).await }
    };
    // An IPv6 VIP's clients are masked with an IPv6 netmask, shown back as given.
    let (st, p) = pool(&lb6, "ffff:ffff:ffff:ffff::").await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(
        p["pool"]["session_persistence"]["persistence_granularity"],
        "ffff:ffff:ffff:ffff::"
    );
    // A netmask of the other family, or one with holes: Octavia's answer for an option
    // the provider does not support.
    for (lb, g, says) in [
        (&lb6, "255.255.255.0", "is IPv6"),
        (&lb4, "ffff:ffff:ffff:ffff::", "is IPv4"),
        (&lb6, "ffff::ffff", "with a netmask"),
    ] {
        let (st, v) = pool(lb, g).await;
        assert_eq!(st, 501, "{g}: {v}");
        assert!(
            fault(&v).starts_with("Provider 'dragonflow' does not support a requested option")
                && fault(&v).contains(says),
            "{g}: {v}"
        );
    }
    // A PUT is checked against the VIP too.
    let (st, p) = pool(&lb6, "ffff:ffff:ffff:ff00::").await;
    assert_eq!(st, 201, "{p}");
    let path = format!("/v2/lbaas/pools/{}", id(&p["pool"]));
    let (st, v) = c
        .lb(
            OWNER,
            "PUT",
            &path,
            Some(
                json!({"pool": {"session_persistence": {"persistence_granularity": "255.0.0.0"}}}),
            ),
        )
        .await;
    assert_eq!(st, 501, "{v}");
    let (_, p) = c.lb(OWNER, "GET", &path, None).await;
    assert_eq!(
        p["pool"]["session_persistence"]["persistence_granularity"], "ffff:ffff:ffff:ff00::",
        "unchanged"
    );
}
