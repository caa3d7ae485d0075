//! Member health from the hosts that check them (issue 23), in process: the host a
//! member's port is bound to writes ONLINE or ERROR through the NB routes
//! (`/nb/v1/lb-health`), the tree rolls up (pool and listener ERROR, balancer DEGRADED),
//! the Octavia API shows it; another host, the reader and a member without a monitor are
//! refused.

mod common;

use common::{ADMIN, Cloud, OWNER, id};
use neutron_api::nb_auth::Principal;
use serde_json::{Value, json};

/// A balancer with a TCP listener and pool over two members on ports bound to host-a
/// and host-b: (balancer, pool, [member on a, member on b]).
async fn world(c: &Cloud) -> (String, String, [String; 2]) {
    let (n, s) = c.lb_net().await;
    let mut members = Vec::new();
    for (host, ip) in [("host-a", "10.9.0.11"), ("host-b", "10.9.0.12")] {
        let p = c
            .made(
                ADMIN,
                "ports",
                json!({"port": {"network_id": n["id"], "project_id": "p1",
                    "fixed_ips": [{"subnet_id": s["id"], "ip_address": ip}],
                    "binding:host_id": host}}),
            )
            .await;
        assert_eq!(p["binding:host_id"], host, "{p}");
        members.push(ip);
    }
    let lb = c
        .lb_made(
            "/v2/lbaas/loadbalancers",
            json!({"loadbalancer": {"vip_subnet_id": s["id"]}}),
        )
        .await;
    let l = c.lb_made("/v2/lbaas/listeners",
        json!({"listener": {"loadbalancer_id": id(&lb), "protocol": "TCP", "protocol_port": 80}}),
    )
    .await;
    let pool = c.lb_made("/v2/lbaas/pools",
        json!({"pool": {"listener_id": id(&l), "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}),
    )
    .await;
    let mut ids = Vec::new();
    for ip in members {
        let m = c
            .lb_made(
                &format!("/v2/lbaas/pools/{}/members", id(&pool)),
                json!({"member": {"address": ip, "protocol_port": 80, "subnet_id": s["id"]}}),
            )
            .await;
        ids.push(id(&m));
    }
    (id(&lb), id(&pool), [ids[0].clone(), ids[1].clone()])
}

async fn health(c: &Cloud, who: Principal, lb: &str, member: &str, status: &str) -> (u16, Value) {
    c.nb(
        who,
        "PUT",
        "/nb/v1/lb-health",
        Some(json!({"loadbalancer": lb, "member": member, "operating_status": status})),
    )
    .await
}

async fn status(c: &Cloud, lb: &str) -> Value {
    let (st, v) = c
        .lb(
            OWNER,
            "GET",
            &format!("/v2/lbaas/loadbalancers/{lb}/status"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["statuses"]["loadbalancer"].clone()
}

#[tokio::test]
async fn the_checking_host_writes_member_health_and_the_tree_rolls_up() {
    let c = Cloud::new();
    let (lb, pool, [a, b]) = world(&c).await;
    let host_a = || Principal::Host("host-a".into());
    // No monitor yet: nothing to keep a status.
    let (st, v) = health(&c, host_a(), &lb, &a, "ERROR").await;
    assert_eq!(st, 409, "{v}");
    c.lb_made("/v2/lbaas/healthmonitors",
        json!({"healthmonitor": {"pool_id": pool, "type": "TCP", "delay": 2, "timeout": 1, "max_retries": 1}}),
    )
    .await;
    // Only the member's own host (or the admin) writes it.
    for who in [Principal::Host("host-b".into()), Principal::Reader] {
        let (st, v) = health(&c, who, &lb, &a, "ERROR").await;
        assert_eq!(st, 403, "{v}");
    }
    let (st, v) = health(&c, host_a(), &lb, &a, "DEGRADED").await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = health(&c, host_a(), &lb, &a, "ERROR").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["changed"], true);
    let tree = status(&c, &lb).await;
    assert_eq!(tree["operating_status"], "DEGRADED", "{tree}");
    let listener = &tree["listeners"][0];
    let p = &listener["pools"][0];
    assert_eq!(p["operating_status"], "DEGRADED", "{tree}");
    let m = |id: &str| {
        p["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()["operating_status"]
            .clone()
    };
    assert_eq!(m(&a), "ERROR");
    assert_eq!(m(&b), "NO_MONITOR");
    // Both down: the pool is ERROR, the balancer still DEGRADED (Octavia's roll-up).
    let (st, _) = health(&c, Principal::Host("host-b".into()), &lb, &b, "ERROR").await;
    assert_eq!(st, 200);
    let tree = status(&c, &lb).await;
    assert_eq!(
        tree["listeners"][0]["pools"][0]["operating_status"], "ERROR",
        "{tree}"
    );
    assert_eq!(tree["listeners"][0]["operating_status"], "ERROR", "{tree}");
    // Written again: no change, no write.
    let (st, v) = health(&c, host_a(), &lb, &a, "ERROR").await;
    assert_eq!((st, &v["changed"]), (200, &json!(false)));
    // Back up.
    for (h, m) in [("host-a", &a), ("host-b", &b)] {
        let (st, _) = health(&c, Principal::Host(h.into()), &lb, m, "ONLINE").await;
        assert_eq!(st, 200);
    }
    let tree = status(&c, &lb).await;
    assert_eq!(tree["operating_status"], "ONLINE", "{tree}");
    let (st, v) = health(&c, Principal::Admin, &lb, "no-such-member", "ONLINE").await;
    assert_eq!(st, 404, "{v}");
}

#[tokio::test]
async fn members_of_a_host_whose_controller_is_gone_are_marked_error() {
    let c = Cloud::new();
    let (lb, pool, [a, b]) = world(&c).await;
    c.lb_made("/v2/lbaas/healthmonitors",
        json!({"healthmonitor": {"pool_id": pool, "type": "PING", "delay": 2, "timeout": 1, "max_retries": 1}}),
    )
    .await;
    // host-a's controller is alive, host-b's is not (no heartbeat at all).
    let key = model::agent::key(model::agent::CONTROLLER_BINARY, "host-a");
    c.api
        .db
        .store
        .put_lease(
            &key,
            b"{}".to_vec(),
            Some(std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let (st, _) = health(&c, Principal::Host("host-a".into()), &lb, &a, "ONLINE").await;
    assert_eq!(st, 200);
    let marked = neutron_api::nb_lb_health::sweep_once(&c.api).await.unwrap();
    assert_eq!(marked, 1);
    let tree = status(&c, &lb).await;
    let members = &tree["listeners"][0]["pools"][0]["members"];
    let of = |id: &str| {
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()["operating_status"]
            .clone()
    };
    assert_eq!(
        (of(&a), of(&b)),
        (json!("ONLINE"), json!("ERROR")),
        "{tree}"
    );
    assert_eq!(tree["operating_status"], "DEGRADED");
    // Nothing more to do on the next pass.
    assert_eq!(
        neutron_api::nb_lb_health::sweep_once(&c.api).await.unwrap(),
        0
    );
}

/// A VIP's floating IPs are held by the first host by name with a live controller and an
/// ACTIVE port of the VIP network: the sweep writes it, moves it when that host's
/// controller is gone, leaves it when no live host is left, and brings it back.
#[tokio::test]
async fn the_floating_ip_holder_is_the_first_live_host_and_moves_when_it_dies() {
    use std::time::Duration;
    let c = Cloud::new();
    let (lb, _, _) = world(&c).await;
    let (st, v) = c
        .lb(OWNER, "GET", &format!("/v2/lbaas/loadbalancers/{lb}"), None)
        .await;
    assert_eq!(st, 200, "{v}");
    let vip_port = v["loadbalancer"]["vip_port_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, ports) = c.call(ADMIN, "GET", "/v2.0/ports", None).await;
    for p in ports["ports"].as_array().unwrap() {
        let host = p["binding:host_id"].as_str().unwrap_or("");
        if host.is_empty() || p["id"] == vip_port.as_str() {
            continue;
        }
        let (st, v) = c
            .nb(
                Principal::Host(host.into()),
                "PUT",
                &format!("/nb/v1/ports/{}/binding", id(p)),
                Some(json!({"host": host, "status": "ACTIVE"})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    let beat = |host: &'static str, ttl: Duration| {
        let c = &c;
        async move {
            let key = model::agent::key(model::agent::CONTROLLER_BINARY, host);
            c.api
                .db
                .store
                .put_lease(&key, b"{}".to_vec(), Some(ttl))
                .await
                .unwrap();
        }
    };
    let holder = || async {
        let (lb, _) = c
            .api
            .db
            .get::<model::LoadBalancer>(&lb)
            .await
            .unwrap()
            .unwrap();
        lb.fip_holder
    };
    let sweep = || neutron_api::nb_lb_health::sweep_once(&c.api);
    // No live controller yet: nobody chosen.
    assert_eq!(sweep().await.unwrap(), 0);
    assert_eq!(holder().await, None);
    beat("host-a", Duration::from_millis(300)).await;
    beat("host-b", Duration::from_secs(60)).await;
    assert_eq!(sweep().await.unwrap(), 1);
    assert_eq!(holder().await.as_deref(), Some("host-a"));
    assert_eq!(sweep().await.unwrap(), 0, "nothing more to write");
    // host-a's heartbeat runs out: host-b takes over.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(sweep().await.unwrap(), 1);
    assert_eq!(holder().await.as_deref(), Some("host-b"));
    // host-a is back: the first by name again.
    beat("host-a", Duration::from_secs(60)).await;
    sweep().await.unwrap();
    assert_eq!(holder().await.as_deref(), Some("host-a"));
}
