//! Health checking end to end (issue 23): two hosts with real OVS, a balancer over three
//! HTTP members (one on the client's host, two on the other) checked by an HTTP monitor
//! through the Octavia API. Each member's own host probes it from the VIP; killing one
//! member's server turns it ERROR and the balancer DEGRADED, after which 30 of 30
//! requests succeed (from the other two); restarting it brings it back ONLINE. The
//! detection and recovery times are printed. An IPv6 VIP's members are checked in IPv6
//! (HTTP, PING, UDP-CONNECT). A member on another network, behind a router, is checked by
//! its own host too (which has no port on the VIP's network).

mod common;

use common::Server;
use common::backends::{
    balancer, curl, first_subnet, octavia as lb, octavia_made as made, serve, serve_on, serve_udp,
    tally,
};
use common::cloud::{TwoHosts, two_hosts, wait_until};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The balancer's status tree: its own operating status and each member's, by id.
fn statuses(srv: &Server, lb_id: &str) -> (String, BTreeMap<String, String>) {
    let (st, v) = lb(
        srv,
        "GET",
        &format!("/v2/lbaas/loadbalancers/{lb_id}/status"),
        None,
    );
    assert_eq!(st, 200, "{v}");
    let tree = &v["statuses"]["loadbalancer"];
    let members = tree["listeners"][0]["pools"][0]["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["id"].as_str().unwrap_or_default().to_string(),
                m["operating_status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    (
        tree["operating_status"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        members,
    )
}

/// Waits until member `id` is `want`; how long it took.
fn until_member(t: &TwoHosts, lb_id: &str, id: &str, want: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (_, members) = statuses(&t.srv, lb_id);
        if members.get(id).map(String::as_str) == Some(want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "member {id} not {want} after {within:?}: {members:?}\n{}\n{}",
            t.srv.log_tail(),
            t.dumps()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_dead_member_goes_error_and_comes_back_online() {
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("lbhnet", "10.51.0.0/24");
    let subnet = first_subnet(srv, &net);
    let (client, client_ip) = t.vm(&net, 0);
    let (m1, ip1) = t.vm(&net, 0);
    let (m2, ip2) = t.vm(&net, 1);
    let (m3, ip3) = t.vm(&net, 1);
    let mut servers = vec![
        Some(serve(&m1, "m1")),
        Some(serve(&m2, "m2")),
        Some(serve(&m3, "m3")),
    ];
    for ip in [&ip1, &ip2, &ip3] {
        wait_until("a member to serve", Duration::from_secs(20), || {
            curl(&client, &format!("http://{ip}:8000/")).is_some()
        });
    }
    let bal = balancer(srv, &subnet, "web", 80, json!({}));
    let (lb_id, vip) = (bal.id.clone(), bal.vip.clone());
    let pool = &bal.pool;
    let pool_id = pool["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for ip in [&ip1, &ip2, &ip3] {
        let m = made(
            srv,
            &format!("/v2/lbaas/pools/{pool_id}/members"),
            json!({"member": {"address": ip, "protocol_port": 8000, "subnet_id": subnet}}),
        );
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    let (delay, timeout, rise, fall) = (1u64, 1u64, 2u64, 2u64);
    made(
        srv,
        "/v2/lbaas/healthmonitors",
        json!({"healthmonitor": {"pool_id": pool_id, "type": "HTTP", "delay": delay,
            "timeout": timeout, "max_retries": rise, "max_retries_down": fall,
            "url_path": "/", "expected_codes": "200"}}),
    );
    // Every member is checked by its own host and comes up.
    for id in &ids {
        until_member(&t, &lb_id, id, "ONLINE", Duration::from_secs(20));
    }
    assert_eq!(statuses(srv, &lb_id).0, "ONLINE");
    let url = format!("http://{vip}/");
    wait_until("the VIP to answer", Duration::from_secs(20), || {
        curl(&client, &url).is_some()
    });
    let seen = tally(&client, &url, 30);
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["m1", "m2", "m3"],
        "every member answers: {seen:?}"
    );

    // m2 (on the other host) dies.
    servers[1] = None;
    let took_down = until_member(&t, &lb_id, &ids[1], "ERROR", Duration::from_secs(30));
    let (overall, members) = statuses(srv, &lb_id);
    assert_eq!(overall, "DEGRADED", "{members:?}");
    assert_eq!(members[&ids[0]], "ONLINE");
    assert_eq!(members[&ids[2]], "ONLINE");
    let seen = tally(&client, &url, 30);
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["m1", "m3"],
        "30 of 30 from the live members: {seen:?}\n{}",
        t.dumps()
    );

    // m1 (on the client's host) dies too, then both come back.
    servers[0] = None;
    let took_down_local = until_member(&t, &lb_id, &ids[0], "ERROR", Duration::from_secs(30));
    let seen = tally(&client, &url, 10);
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), ["m3"], "{seen:?}");
    // The dead members out of the VIP's buckets: to m3 on host b, as OVS takes it.
    let r = common::trace::delivered(srv, &t.ovs[0], &client_ip, &format!("{vip}:80"), None);
    assert!(r.verdict.contains("host-b"), "only m3 is alive: {}", r.out);
    servers[0] = Some(serve(&m1, "m1"));
    servers[1] = Some(serve(&m2, "m2"));
    let took_up = until_member(&t, &lb_id, &ids[1], "ONLINE", Duration::from_secs(30));
    until_member(&t, &lb_id, &ids[0], "ONLINE", Duration::from_secs(30));
    assert_eq!(statuses(srv, &lb_id).0, "ONLINE");
    wait_until(
        "every member to answer again",
        Duration::from_secs(20),
        || tally(&client, &url, 12).len() == 3,
    );
    println!(
        "health (HTTP, delay {delay} s, timeout {timeout} s, max_retries {rise}, \
         max_retries_down {fall}): member down seen ERROR after {:.1} s (remote host) / \
         {:.1} s (client's host), back ONLINE after {:.1} s; bound delay x (retries_down - 1) \
         + timeout = {} s, + 1 s for the server to start",
        took_down.as_secs_f64(),
        took_down_local.as_secs_f64(),
        took_up.as_secs_f64(),
        delay * (fall - 1) + timeout
    );
    drop(servers);
    drop(m3);
}

/// Members of an IPv6 VIP are checked in IPv6 from the VIP by their own hosts: HTTP (a
/// dead server goes ERROR and leaves the pool, back ONLINE once it serves again), PING
/// (ICMPv6 echo) and, on a UDP listener, UDP-CONNECT (the member with no server answers
/// an ICMPv6 port unreachable: ERROR). Each member resolves the VIP by neighbour
/// discovery on its own host to answer.
#[test]
fn an_ipv6_vips_members_are_checked_in_ipv6() {
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("lbh6", "fd00:58::/64");
    let subnet = first_subnet(srv, &net);
    let (client, client_ip) = t.vm(&net, 0);
    let (m1, ip1) = t.vm(&net, 0);
    let (m2, ip2) = t.vm(&net, 1);
    let mut servers = vec![
        Some(serve_on(&m1, "m1", "::")),
        Some(serve_on(&m2, "m2", "::")),
    ];
    for ip in [&ip1, &ip2] {
        wait_until("a member to serve", Duration::from_secs(30), || {
            curl(&client, &format!("http://[{ip}]:8000/")).is_some()
        });
    }
    let bal = balancer(srv, &subnet, "web6", 80, json!({}));
    assert!(bal.vip.contains(':'), "{}", bal.vip);
    let lb_id = bal.id.clone();
    let mut ids = Vec::new();
    for ip in [&ip1, &ip2] {
        let m = made(
            srv,
            &bal.members,
            json!({"member": {"address": ip, "protocol_port": 8000, "subnet_id": subnet}}),
        );
        ids.push(m["id"].as_str().unwrap().to_string());
    }
    let monitor = |kind: &str, pool: &serde_json::Value| {
        let mut hm = json!({"pool_id": pool["id"], "type": kind, "delay": 1, "timeout": 1,
            "max_retries": 2, "max_retries_down": 2});
        if kind == "HTTP" {
            hm["url_path"] = json!("/");
        }
        made(
            srv,
            "/v2/lbaas/healthmonitors",
            json!({ "healthmonitor": hm }),
        )
    };
    let hm = monitor("HTTP", &bal.pool);
    for id in &ids {
        until_member(&t, &lb_id, id, "ONLINE", Duration::from_secs(20));
    }
    // Each member's host answers its neighbour solicitations for the VIP in the switch.
    for h in 0..2 {
        let nd = t.ovs[h]
            .ofctl(["-O", "OpenFlow13", "dump-flows", "br-int", "table=45"])
            .unwrap_or_default();
        assert!(nd.contains(&format!("nd_target={}", bal.vip)), "{nd}");
    }
    // m2 (on the other host) dies: ERROR, and the VIP answers from m1 only.
    servers[1] = None;
    let took_down = until_member(&t, &lb_id, &ids[1], "ERROR", Duration::from_secs(30));
    assert_eq!(statuses(srv, &lb_id).0, "DEGRADED");
    let url = format!("http://[{}]/", bal.vip);
    let seen = tally(&client, &url, 20);
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["m1"],
        "20 of 20 from the live member: {seen:?}\n{}",
        t.dumps()
    );
    // m2 (host b) out of the IPv6 VIP's buckets: to m1 on host a, as OVS takes it.
    let r = common::trace::delivered(
        srv,
        &t.ovs[0],
        &client_ip,
        &format!("[{}]:80", bal.vip),
        None,
    );
    assert!(!r.verdict.contains("host-b"), "m2 is down: {}", r.out);
    servers[1] = Some(serve_on(&m2, "m2", "::"));
    let took_up = until_member(&t, &lb_id, &ids[1], "ONLINE", Duration::from_secs(30));

    // PING: the HTTP monitor replaced; both members answer ICMPv6 echoes.
    let (st, v) = lb(
        srv,
        "DELETE",
        &format!("/v2/lbaas/healthmonitors/{}", hm["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(st, 204, "{v}");
    for id in &ids {
        until_member(&t, &lb_id, id, "NO_MONITOR", Duration::from_secs(10));
    }
    monitor("PING", &bal.pool);
    for id in &ids {
        until_member(&t, &lb_id, id, "ONLINE", Duration::from_secs(20));
    }

    // UDP-CONNECT on a UDP listener: m1 serves UDP, m2 answers an ICMPv6 port
    // unreachable.
    let _udp = serve_udp(&m1, "m1", "::", 9999);
    let listener = made(
        srv,
        "/v2/lbaas/listeners",
        json!({"listener": {"loadbalancer_id": lb_id, "protocol": "UDP", "protocol_port": 53}}),
    );
    let pool = made(
        srv,
        "/v2/lbaas/pools",
        json!({"pool": {"listener_id": listener["id"], "protocol": "UDP",
            "lb_algorithm": "ROUND_ROBIN"}}),
    );
    let pool_id = pool["id"].as_str().unwrap();
    let mut udp_ids = Vec::new();
    for ip in [&ip1, &ip2] {
        let m = made(
            srv,
            &format!("/v2/lbaas/pools/{pool_id}/members"),
            json!({"member": {"address": ip, "protocol_port": 9999, "subnet_id": subnet}}),
        );
        udp_ids.push(m["id"].as_str().unwrap().to_string());
    }
    monitor("UDP-CONNECT", &pool);
    let member_status = |id: &str| {
        let (st, v) = lb(
            srv,
            "GET",
            &format!("/v2/lbaas/pools/{pool_id}/members/{id}"),
            None,
        );
        assert_eq!(st, 200, "{v}");
        v["member"]["operating_status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    wait_until(
        "m1 ONLINE and m2 ERROR by UDP-CONNECT",
        Duration::from_secs(30),
        || member_status(&udp_ids[0]) == "ONLINE" && member_status(&udp_ids[1]) == "ERROR",
    );
    println!(
        "health of an IPv6 VIP's members (HTTP, delay 1 s, timeout 1 s, retries 2/2): \
         ERROR after {:.1} s, back ONLINE after {:.1} s",
        took_down.as_secs_f64(),
        took_up.as_secs_f64()
    );
    drop(servers);
}

#[test]
fn a_member_behind_a_router_is_checked_by_its_own_host() {
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("hvipnet", "10.55.0.0/24");
    let far = srv.network("hfarnet", "10.56.0.0/24");
    let (subnet, far_subnet) = (first_subnet(srv, &net), first_subnet(srv, &far));
    common::backends::router_on(srv, "hlbr", &[&subnet, &far_subnet]);
    let (client, _) = t.vm(&net, 0);
    // Host b has a port on the member's network only.
    let (remote, remote_ip) = t.vm(&far, 1);
    for (vm, gw) in [(&client, "10.55.0.1"), (&remote, "10.56.0.1")] {
        vm.ns
            .exec(["ip", "route", "add", "default", "via", gw])
            .expect("default route");
    }
    let server = serve(&remote, "far");
    let bal = balancer(srv, &subnet, "routedhm", 80, json!({}));
    let m = made(
        srv,
        &bal.members,
        json!({"member": {"address": remote_ip, "protocol_port": 8000, "subnet_id": far_subnet}}),
    );
    let id = m["id"].as_str().unwrap().to_string();
    made(
        srv,
        "/v2/lbaas/healthmonitors",
        json!({"healthmonitor": {"pool_id": bal.pool["id"], "type": "HTTP", "delay": 1,
            "timeout": 1, "max_retries": 2, "max_retries_down": 2,
            "url_path": "/", "expected_codes": "200"}}),
    );
    let up = until_member(&t, &bal.id, &id, "ONLINE", Duration::from_secs(30));
    assert!(
        t.ctl[1].log().contains("member health"),
        "host b concluded: {}",
        t.ctl[1].log()
    );
    let url = format!("http://{}/", bal.vip);
    wait_until("the far member to answer", Duration::from_secs(20), || {
        curl(&client, &url).as_deref() == Some("far")
    });
    // Its server dies: ERROR, the balancer ERROR too (its only member); back ONLINE.
    drop(server);
    let down = until_member(&t, &bal.id, &id, "ERROR", Duration::from_secs(30));
    assert_ne!(statuses(srv, &bal.id).0, "ONLINE");
    let _server = serve(&remote, "far");
    let again = until_member(&t, &bal.id, &id, "ONLINE", Duration::from_secs(30));
    eprintln!(
        "member behind a router: ONLINE after {:.1} s, ERROR {:.1} s after its server died, ONLINE {:.1} s after it came back",
        up.as_secs_f64(),
        down.as_secs_f64(),
        again.as_secs_f64()
    );
}
