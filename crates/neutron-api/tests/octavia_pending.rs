//! PENDING_* provisioning statuses (issue 23), in process: a change reads PENDING_CREATE or
//! PENDING_UPDATE while a live controller with a port on the VIP network has not applied
//! the balancer's revision (its heartbeat says which it has), and ACTIVE once it has; a
//! host whose controller is not alive, or a network with no bound port, holds nothing.

mod common;

use common::{ADMIN, Cloud, OWNER, id};
use model::agent::{self, Heartbeat, Report};
use serde_json::{Value, json};
use std::time::Duration;

/// A network with a subnet and a port bound to `host` when given: the subnet's id.
async fn net(c: &Cloud, host: Option<&str>) -> String {
    let (n, s) = c.lb_net().await;
    if let Some(host) = host {
        c.made(
            ADMIN,
            "ports",
            json!({"port": {"network_id": n["id"], "project_id": "p1", "binding:host_id": host}}),
        )
        .await;
    }
    id(&s)
}

/// `host`'s controller says it applied `applied` (alive for `ttl`).
async fn beat(c: &Cloud, host: &str, applied: u64, ttl: Duration) {
    counted(c, host, applied, ttl, Default::default()).await
}

/// [`beat`], with the listeners' counts `lb_stats`.
async fn counted(
    c: &Cloud,
    host: &str,
    applied: u64,
    ttl: Duration,
    lb_stats: model::lb_stats::ByListener,
) {
    let report = Report {
        agent_type: agent::CONTROLLER_TYPE.into(),
        binary: agent::CONTROLLER_BINARY.into(),
        host: host.into(),
        topic: "N/A".into(),
        availability_zone: None,
        version: "1".into(),
        started_at: "2026-12-04T00:00:00Z".into(),
        applied_revision: applied,
        configurations: Default::default(),
        lb_stats,
    };
    let hb = Heartbeat::next(None, report, "2026-12-04T00:00:00Z");
    c.api
        .db
        .store
        .put_lease(&hb.key(), serde_json::to_vec(&hb).unwrap(), Some(ttl))
        .await
        .unwrap();
}

async fn last_commit(c: &Cloud) -> u64 {
    c.api.db.store.last_commit().await.unwrap()
}

async fn get(c: &Cloud, path: &str) -> Value {
    let (st, v) = c.lb(OWNER, "GET", path, None).await;
    assert_eq!(st, 200, "{path}: {v}");
    v.as_object().unwrap().values().next().unwrap().clone()
}

const LIVE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_change_is_pending_until_the_host_with_a_port_there_applied_it() {
    let c = Cloud::new();
    let subnet = net(&c, Some("host-a")).await;
    beat(&c, "host-a", last_commit(&c).await, LIVE).await;
    let lb = c
        .lb_made(
            "/v2/lbaas/loadbalancers",
            json!({"loadbalancer": {"vip_subnet_id": subnet}}),
        )
        .await;
    assert_eq!(lb["provisioning_status"], "PENDING_CREATE", "{lb}");
    let lb_path = format!("/v2/lbaas/loadbalancers/{}", id(&lb));
    assert_eq!(
        get(&c, &lb_path).await["provisioning_status"],
        "PENDING_CREATE"
    );
    // host-a applied it.
    beat(&c, "host-a", last_commit(&c).await, LIVE).await;
    assert_eq!(get(&c, &lb_path).await["provisioning_status"], "ACTIVE");

    // A listener: it is PENDING_CREATE and its balancer PENDING_UPDATE, in the answer,
    // the show and the status tree, until host-a applied it.
    let l = c.lb_made("/v2/lbaas/listeners",
        json!({"listener": {"loadbalancer_id": id(&lb), "protocol": "TCP", "protocol_port": 80}}),
    )
    .await;
    assert_eq!(l["provisioning_status"], "PENDING_CREATE", "{l}");
    let l_path = format!("/v2/lbaas/listeners/{}", id(&l));
    assert_eq!(
        get(&c, &l_path).await["provisioning_status"],
        "PENDING_CREATE"
    );
    assert_eq!(
        get(&c, &lb_path).await["provisioning_status"],
        "PENDING_UPDATE"
    );
    let tree = get(&c, &format!("{lb_path}/status")).await;
    assert_eq!(
        tree["loadbalancer"]["listeners"][0]["provisioning_status"], "PENDING_CREATE",
        "{tree}"
    );
    // A change is not refused while pending (unlike Octavia's 409: see docs/api.md).
    let (st, v) = c
        .lb(
            OWNER,
            "PUT",
            &l_path,
            Some(json!({"listener": {"name": "web"}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["listener"]["provisioning_status"], "PENDING_UPDATE",
        "{v}"
    );
    beat(&c, "host-a", last_commit(&c).await, LIVE).await;
    assert_eq!(get(&c, &l_path).await["provisioning_status"], "ACTIVE");
    assert_eq!(get(&c, &lb_path).await["provisioning_status"], "ACTIVE");
    let (_, v) = c.lb(OWNER, "GET", "/v2/lbaas/listeners", None).await;
    assert_eq!(v["listeners"][0]["provisioning_status"], "ACTIVE", "{v}");

    // The next change marks only what it changed: the listener it created before stays
    // ACTIVE while the pool is PENDING_CREATE.
    let pool = c.lb_made("/v2/lbaas/pools",
        json!({"pool": {"listener_id": id(&l), "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}),
    )
    .await;
    assert_eq!(pool["provisioning_status"], "PENDING_CREATE", "{pool}");
    let tree = get(&c, &format!("{lb_path}/status")).await;
    let tree = &tree["loadbalancer"];
    assert_eq!(tree["provisioning_status"], "PENDING_UPDATE", "{tree}");
    assert_eq!(
        tree["listeners"][0]["provisioning_status"], "ACTIVE",
        "{tree}"
    );
    assert_eq!(
        tree["pools"][0]["provisioning_status"], "PENDING_CREATE",
        "{tree}"
    );
}

#[tokio::test]
async fn with_no_live_controller_on_the_network_a_change_reads_active() {
    // No port bound anywhere: nothing to wait for.
    let c = Cloud::new();
    let subnet = net(&c, None).await;
    beat(&c, "host-a", 0, LIVE).await;
    let lb = c
        .lb_made(
            "/v2/lbaas/loadbalancers",
            json!({"loadbalancer": {"vip_subnet_id": subnet}}),
        )
        .await;
    assert_eq!(lb["provisioning_status"], "ACTIVE", "{lb}");

    // A port bound to a host whose controller's lease ran out: it holds nothing.
    let c = Cloud::new();
    let subnet = net(&c, Some("host-b")).await;
    beat(&c, "host-b", 0, Duration::from_millis(1)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lb = c
        .lb_made(
            "/v2/lbaas/loadbalancers",
            json!({"loadbalancer": {"vip_subnet_id": subnet}}),
        )
        .await;
    assert_eq!(lb["provisioning_status"], "ACTIVE", "{lb}");
    let lb_path = format!("/v2/lbaas/loadbalancers/{}", id(&lb));
    assert_eq!(get(&c, &lb_path).await["provisioning_status"], "ACTIVE");
    // Its controller comes back behind: pending again until it catches up.
    beat(&c, "host-b", 0, LIVE).await;
    assert_eq!(
        get(&c, &lb_path).await["provisioning_status"],
        "PENDING_CREATE"
    );
}

#[tokio::test]
async fn a_health_change_does_not_bring_back_a_realized_changes_marks() {
    let c = Cloud::new();
    let (n, s) = c.lb_net().await;
    c.made(
        ADMIN,
        "ports",
        json!({"port": {"network_id": n["id"], "project_id": "p1",
            "fixed_ips": [{"subnet_id": s["id"], "ip_address": "10.9.0.11"}],
            "binding:host_id": "host-a"}}),
    )
    .await;
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
    let m = c
        .lb_made(
            &format!("/v2/lbaas/pools/{}/members", id(&pool)),
            json!({"member": {"address": "10.9.0.11", "protocol_port": 80}}),
        )
        .await;
    c.lb_made("/v2/lbaas/healthmonitors",
        json!({"healthmonitor": {"pool_id": id(&pool), "type": "TCP", "delay": 2, "timeout": 1, "max_retries": 1}}),
    )
    .await;
    // host-a applied all of it.
    beat(&c, "host-a", last_commit(&c).await, LIVE).await;
    let lb_path = format!("/v2/lbaas/loadbalancers/{}", id(&lb));
    assert_eq!(get(&c, &lb_path).await["provisioning_status"], "ACTIVE");
    // Its checker writes the member's health; host-a has not applied that write yet.
    let (st, v) = c
        .nb(
            neutron_api::nb_auth::Principal::Host("host-a".into()),
            "PUT",
            "/nb/v1/lb-health",
            Some(json!({"loadbalancer": id(&lb), "member": id(&m), "operating_status": "ONLINE"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let tree = get(&c, &format!("{lb_path}/status")).await;
    let tree = &tree["loadbalancer"];
    assert_eq!(tree["provisioning_status"], "ACTIVE", "{tree}");
    assert_eq!(
        tree["listeners"][0]["pools"][0]["health_monitor"]["provisioning_status"], "ACTIVE",
        "{tree}"
    );
    assert_eq!(
        tree["listeners"][0]["pools"][0]["members"][0]["operating_status"], "ONLINE",
        "{tree}"
    );
}

/// `/stats` sums what the live controllers counted for the balancer's listeners: a
/// listener's own `/stats` has its part, another balancer's listener is not counted, and
/// a host whose heartbeat ran out takes its counts with it.
#[tokio::test]
async fn stats_sum_the_live_hosts_counts_of_the_balancers_listeners() {
    use model::lb_stats::Stats;
    let c = Cloud::new();
    let subnet = net(&c, None).await;
    let made = |port: u16| {
        let c = &c;
        let subnet = subnet.clone();
        async move {
            let lb = c
                .lb_made(
                    "/v2/lbaas/loadbalancers",
                    json!({"loadbalancer": {"vip_subnet_id": subnet}}),
                )
                .await;
            let l = c.lb_made("/v2/lbaas/listeners",
                json!({"listener": {"loadbalancer_id": id(&lb), "protocol": "TCP", "protocol_port": port}}),
            )
            .await;
            (id(&lb), id(&l))
        }
    };
    let (lb, l1) = made(80).await;
    let l2 = id(&c
        .lb_made(
            "/v2/lbaas/listeners",
            json!({"listener": {"loadbalancer_id": lb, "protocol": "UDP", "protocol_port": 53}}),
        )
        .await);
    let (_, other) = made(81).await;
    let s = |bytes_in, total, active| Stats {
        bytes_in,
        bytes_out: bytes_in * 2,
        active_connections: active,
        total_connections: total,
        request_errors: 0,
    };
    let rev = last_commit(&c).await;
    counted(
        &c,
        "host-a",
        rev,
        LIVE,
        [
            (l1.clone(), s(100, 3, 1)),
            (l2.clone(), s(10, 1, 0)),
            (other.clone(), s(7, 7, 7)),
        ]
        .into(),
    )
    .await;
    counted(&c, "host-b", rev, LIVE, [(l1.clone(), s(50, 2, 2))].into()).await;
    counted(
        &c,
        "host-c",
        rev,
        Duration::from_millis(1),
        [(l1.clone(), s(1000, 1000, 1000))].into(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let want = |bytes_in: u64, total: u64, active: u64| {
        json!({"bytes_in": bytes_in, "bytes_out": bytes_in * 2, "active_connections": active,
            "total_connections": total, "request_errors": 0})
    };
    assert_eq!(
        get(&c, &format!("/v2/lbaas/loadbalancers/{lb}/stats")).await,
        want(160, 6, 3)
    );
    assert_eq!(
        get(&c, &format!("/v2/lbaas/listeners/{l1}/stats")).await,
        want(150, 5, 3)
    );
    assert_eq!(
        get(&c, &format!("/v2/lbaas/listeners/{l2}/stats")).await,
        want(10, 1, 0)
    );
    let (st, _) = c
        .lb(OWNER, "GET", "/v2/lbaas/listeners/nope/stats", None)
        .await;
    assert_eq!(st, 404);
}
