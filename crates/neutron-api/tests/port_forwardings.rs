//! Floating IP port forwarding through the API, in process: the lifecycle and what the
//! floating IP shows, Neutron's refusals (duplicates, ranges, addresses, associations both
//! ways), what goes with a port or its address, and concurrent creates racing for one
//! external port.

mod common;

use common::{ADMIN, Cloud, OTHER, OWNER, READER};
use serde_json::{Value, json};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// The owner's network and subnet joined by a router to the external network.
struct World {
    network: String,
    external: String,
    router: String,
}

async fn world(c: &Cloud) -> World {
    let network = id(&c.made(OWNER, "networks", json!({"network": {}})).await);
    let subnet = id(&c
        .made(
            OWNER,
            "subnets",
            json!({"subnet": {"network_id": network, "ip_version": 4, "cidr": "10.0.0.0/24"}}),
        )
        .await);
    let external = id(&c
        .made(
            ADMIN,
            "networks",
            json!({"network": {"router:external": true}}),
        )
        .await);
    c.made(
        ADMIN,
        "subnets",
        json!({"subnet": {"network_id": external, "ip_version": 4, "cidr": "203.0.113.0/24"}}),
    )
    .await;
    let router = id(&c
        .made(
            OWNER,
            "routers",
            json!({"router": {"external_gateway_info": {"network_id": external}}}),
        )
        .await);
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/routers/{router}/add_router_interface"),
            json!({"subnet_id": subnet}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    World {
        network,
        external,
        router,
    }
}

impl World {
    async fn port(&self, c: &Cloud) -> (String, String) {
        let p = c
            .made(
                OWNER,
                "ports",
                json!({"port": {"network_id": self.network}}),
            )
            .await;
        let ip = p["fixed_ips"][0]["ip_address"].as_str().expect("ip");
        (id(&p), ip.to_string())
    }

    async fn fip(&self, c: &Cloud) -> String {
        id(&c
            .made(
                OWNER,
                "floatingips",
                json!({"floatingip": {"floating_network_id": self.external}}),
            )
            .await)
    }
}

fn pf(port: &str, ip: &str, internal: u32, external: u32, proto: &str) -> Value {
    json!({"port_forwarding": {
        "internal_port_id": port, "internal_ip_address": ip,
        "internal_port": internal, "external_port": external, "protocol": proto,
    }})
}

fn pfs(fip: &str) -> String {
    format!("/v2.0/floatingips/{fip}/port_forwardings")
}

#[tokio::test]
async fn lifecycle_and_what_the_floating_ip_shows() {
    let c = Cloud::new();
    let w = world(&c).await;
    let (port, ip) = w.port(&c).await;
    let fip = w.fip(&c).await;
    let (st, v) = c
        .call(OWNER, "GET", &format!("/v2.0/floatingips/{fip}"), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(v["floatingip"]["port_forwardings"], json!([]));
    assert_eq!(v["floatingip"]["status"], "DOWN");
    // The tag routes of floating IPs still answer beside the forwardings'.
    let tag = format!("/v2.0/floatingips/{fip}/tags/red");
    assert_eq!(c.call(OWNER, "PUT", &tag, None).await.0, 201);
    assert_eq!(c.call(OWNER, "GET", &tag, None).await.0, 204);

    let mut body = pf(&port, &ip, 22, 2222, "tcp");
    body["port_forwarding"]["description"] = json!("ssh");
    let made = c.made(OWNER, &pfs(&fip)[6..], body).await;
    let pf_id = id(&made);
    assert_eq!(made["internal_port"], 22);
    assert_eq!(made["external_port"], 2222);
    assert_eq!(made["protocol"], "tcp");
    assert_eq!(made["internal_ip_address"], ip.as_str());
    assert_eq!(made["internal_port_id"], port.as_str());
    assert_eq!(made["description"], "ssh");
    assert!(made.get("project_id").is_none(), "{made}");

    let (st, v) = c
        .call(OWNER, "GET", &format!("{}/{pf_id}", pfs(&fip)), None)
        .await;
    assert_eq!((st, &v["port_forwarding"]), (200, &made));
    let (st, v) = c.call(OWNER, "GET", &pfs(&fip), None).await;
    assert_eq!((st, &v["port_forwardings"]), (200, &json!([made])));
    let (_, v) = c
        .call(
            OWNER,
            "GET",
            &format!("{}?external_port=9", pfs(&fip)),
            None,
        )
        .await;
    assert_eq!(v["port_forwardings"], json!([]));
    let (_, v) = c
        .call(OWNER, "GET", &format!("/v2.0/floatingips/{fip}"), None)
        .await;
    let f = &v["floatingip"];
    assert_eq!(f["router_id"], w.router.as_str());
    assert_eq!(f["port_id"], Value::Null);
    assert_eq!(f["status"], "ACTIVE");
    assert_eq!(
        f["port_forwardings"],
        json!([{"id": pf_id, "internal_port_id": port, "internal_ip_address": ip,
                "internal_port": 22, "external_port": 2222, "protocol": "tcp"}])
    );

    let (st, v) = c
        .call(
            OWNER,
            "PUT",
            &format!("{}/{pf_id}", pfs(&fip)),
            Some(json!({"port_forwarding": {"internal_port": 3333}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["port_forwarding"]["internal_port"], 3333);
    assert_eq!(v["port_forwarding"]["external_port"], 2222);

    // A floating IP with forwardings cannot go, nor take a port.
    let (st, v) = c
        .call(OWNER, "DELETE", &format!("/v2.0/floatingips/{fip}"), None)
        .await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["NeutronError"]["type"], "FipInUseByPortForwarding");
    let (other, _) = w.port(&c).await;
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/floatingips/{fip}"),
            json!({"floatingip": {"port_id": other}}),
        )
        .await;
    assert_eq!(st, 409, "{v}");
    // The router that reaches them keeps its gateway.
    let (st, _) = c
        .call(
            OWNER,
            "PUT",
            &format!("/v2.0/routers/{}", w.router),
            Some(json!({"router": {"external_gateway_info": {}}})),
        )
        .await;
    assert_eq!(st, 409);

    let (st, _) = c
        .call(OWNER, "DELETE", &format!("{}/{pf_id}", pfs(&fip)), None)
        .await;
    assert_eq!(st, 204);
    let (st, _) = c
        .call(OWNER, "GET", &format!("{}/{pf_id}", pfs(&fip)), None)
        .await;
    assert_eq!(st, 404);
    let (_, v) = c
        .call(OWNER, "GET", &format!("/v2.0/floatingips/{fip}"), None)
        .await;
    assert_eq!(v["floatingip"]["router_id"], Value::Null);
    assert_eq!(v["floatingip"]["port_forwardings"], json!([]));
    let (st, _) = c
        .call(OWNER, "DELETE", &format!("/v2.0/floatingips/{fip}"), None)
        .await;
    assert_eq!(st, 204);
    let (st, v) = c.call(OWNER, "GET", &pfs(&fip), None).await;
    assert_eq!(st, 404, "{v}");
}

#[tokio::test]
async fn neutron_refusals() {
    let c = Cloud::new();
    let w = world(&c).await;
    let (p1, ip1) = w.port(&c).await;
    let (p2, ip2) = w.port(&c).await;
    let fip = w.fip(&c).await;
    let post = |body: Value| {
        let c = &c;
        let uri = pfs(&fip);
        async move { c.send(OWNER, "POST", &uri, body).await }
    };
    assert_eq!(post(pf(&p1, &ip1, 1111, 2222, "tcp")).await.0, 201);
    // The same external port and protocol, or the same internal end: 400.
    assert_eq!(post(pf(&p2, &ip2, 3333, 2222, "tcp")).await.0, 400);
    assert_eq!(post(pf(&p1, &ip1, 1111, 5555, "tcp")).await.0, 400);
    // Another protocol is another forwarding.
    assert_eq!(post(pf(&p2, &ip2, 3333, 2222, "udp")).await.0, 201);
    for bad in [
        pf(&p1, &ip1, 4444, 333333, "tcp"),
        pf(&p1, &ip1, 444444, 3333, "tcp"),
        pf(&p1, &ip1, 0, 3333, "tcp"),
        pf(&p1, &ip1, 4444, 3333, "icmp"),
        pf(&p1, &ip2, 4444, 3333, "tcp"),
        pf(&p1, "10.0.0.250", 4444, 3333, "tcp"),
        pf(&p1, "not-an-ip", 4444, 3333, "tcp"),
        json!({"port_forwarding": {"internal_port_id": p1, "internal_port": 1, "external_port": 2, "protocol": "tcp"}}),
    ] {
        let (st, v) = post(bad.clone()).await;
        assert_eq!(st, 400, "{bad}: {v}");
    }
    let (st, _) = post(pf("nope", &ip1, 4444, 3333, "tcp")).await;
    assert_eq!(st, 404);
    // Updates are checked as creates.
    let (_, v) = c.call(OWNER, "GET", &pfs(&fip), None).await;
    let first = id(&v["port_forwardings"][0]);
    for bad in [
        json!({"external_port": 108343}),
        json!({"internal_port": 108343}),
        json!({"external_port": 2222, "protocol": "udp"}),
    ] {
        let (st, v) = c
            .call(
                OWNER,
                "PUT",
                &format!("{}/{first}", pfs(&fip)),
                Some(json!({"port_forwarding": bad})),
            )
            .await;
        assert_eq!(st, 400, "{v}");
    }

    // An associated floating IP takes no forwarding (409), and a port's address with a
    // floating IP none either (409).
    let (p3, ip3) = w.port(&c).await;
    let assoc = id(&c
        .made(
            OWNER,
            "floatingips",
            json!({"floatingip": {"floating_network_id": w.external, "port_id": p3}}),
        )
        .await);
    let (st, v) = c
        .call(
            OWNER,
            "POST",
            &pfs(&assoc),
            Some(pf(&p1, &ip1, 7, 7, "tcp")),
        )
        .await;
    assert_eq!(st, 409, "{v}");
    let (st, v) = post(pf(&p3, &ip3, 7, 7, "tcp")).await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["NeutronError"]["type"], "PortHasBindingFloatingIP");
    // And an address with forwardings takes no floating IP.
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            "/v2.0/floatingips",
            json!({"floatingip": {"floating_network_id": w.external, "port_id": p1}}),
        )
        .await;
    assert_eq!(st, 400, "{v}");

    // Another project sees no floating IP; a reader may not write.
    let (st, _) = c.call(OTHER, "GET", &pfs(&fip), None).await;
    assert_eq!(st, 404);
    let (st, _) = c
        .call(OTHER, "POST", &pfs(&fip), Some(pf(&p1, &ip1, 8, 8, "tcp")))
        .await;
    assert_eq!(st, 404);
    let (st, _) = c.call(READER, "GET", &pfs(&fip), None).await;
    assert_eq!(st, 200);
    let (st, v) = c
        .call(READER, "POST", &pfs(&fip), Some(pf(&p1, &ip1, 8, 8, "tcp")))
        .await;
    assert_eq!(st, 403, "{v}");
}

#[tokio::test]
async fn forwardings_go_with_their_port_or_address() {
    let c = Cloud::new();
    let w = world(&c).await;
    let (port, ip) = w.port(&c).await;
    let fip = w.fip(&c).await;
    c.made(OWNER, &pfs(&fip)[6..], pf(&port, &ip, 22, 2222, "tcp"))
        .await;
    let (st, _) = c
        .call(OWNER, "DELETE", &format!("/v2.0/ports/{port}"), None)
        .await;
    assert_eq!(st, 204);
    let (_, v) = c
        .call(OWNER, "GET", &format!("/v2.0/floatingips/{fip}"), None)
        .await;
    assert_eq!(v["floatingip"]["port_forwardings"], json!([]));
    assert_eq!(v["floatingip"]["router_id"], Value::Null);

    // Its claims went too: the same external port is free, the floating IP associable.
    let (port, ip) = w.port(&c).await;
    c.made(OWNER, &pfs(&fip)[6..], pf(&port, &ip, 22, 2222, "tcp"))
        .await;
    // A new address for the port: the forwarding to the old one goes.
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &format!("/v2.0/ports/{port}"),
            json!({"port": {"fixed_ips": [{"ip_address": "10.0.0.200"}]}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = c.call(OWNER, "GET", &pfs(&fip), None).await;
    assert_eq!(v["port_forwardings"], json!([]));
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/floatingips/{fip}"),
            json!({"floatingip": {"port_id": port}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_for_one_external_port_make_one() {
    let c = std::sync::Arc::new(Cloud::new());
    let w = world(&c).await;
    let fip = w.fip(&c).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (port, ip) = w.port(&c).await;
        let c = c.clone();
        let uri = pfs(&fip);
        tasks.push(tokio::spawn(async move {
            c.call(OWNER, "POST", &uri, Some(pf(&port, &ip, 80, 8080, "tcp")))
                .await
                .0
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.expect("task"));
    }
    codes.sort();
    assert_eq!(codes, [201, 400, 400, 400, 400, 400]);
    let (_, v) = c.call(OWNER, "GET", &pfs(&fip), None).await;
    assert_eq!(v["port_forwardings"].as_array().map(Vec::len), Some(1));
}
