//! A balancer's operator calls end to end (issue 23), two hosts with real OVS: `/stats`
//! counts what real connections through the VIP did (bytes both ways, connections in
//! all, and one held open while it is open), and `/failover` repairs a host whose
//! balancer group was deleted behind its controller's back (`ovs-ofctl del-groups`, which
//! takes the flows that use it too): the VIP does not answer, then does again. A backup
//! member answers only while the other one is down.

mod common;

use common::backends::{
    Proc, balancer, curl, first_subnet, octavia as lb, octavia_made as made, serve, tally,
};
use common::cloud::{two_hosts, wait_until};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

/// Holds one TCP connection to `vip:80` open for `secs` seconds after a request.
const HOLD: &str = r#"
import http.client, sys, time
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5)
c.request("GET", "/"); c.getresponse().read()
time.sleep(float(sys.argv[2]))
"#;

/// The select groups on a host's br-int (a balancer's listeners).
fn select_groups(ovs: &testbed::Ovs) -> Vec<String> {
    ovs.ofctl(["-O", "OpenFlow13", "dump-groups", "br-int"])
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("type=select"))
        .filter_map(|l| {
            l.split(',')
                .find_map(|f| f.trim().strip_prefix("group_id="))
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn stats_count_real_connections_and_a_failover_repairs_a_broken_host() {
    let t = two_hosts();
    let srv = &t.srv;
    let net = srv.network("opsnet", "10.52.0.0/24");
    let subnet = first_subnet(srv, &net);
    let (client, _) = t.vm(&net, 0);
    let mut kept: Vec<(testbed::Vm, Proc)> = Vec::new();
    let mut ips = Vec::new();
    for (name, host) in [("m1", 0), ("m2", 1)] {
        let (vm, ip) = t.vm(&net, host);
        let server = serve(&vm, name);
        kept.push((vm, server));
        ips.push(ip);
    }
    for ip in &ips {
        wait_until("a member to serve", Duration::from_secs(20), || {
            curl(&client, &format!("http://{ip}:8000/")).is_some()
        });
    }
    let bal = balancer(srv, &subnet, "ops", 80, json!({}));
    for ip in &ips {
        made(
            srv,
            &bal.members,
            json!({"member": {"address": ip, "protocol_port": 8000, "subnet_id": subnet}}),
        );
    }
    let lb_path = format!("/v2/lbaas/loadbalancers/{}", bal.id);
    let active = || {
        let (st, v) = lb(srv, "GET", &lb_path, None);
        st == 200 && v["loadbalancer"]["provisioning_status"] == "ACTIVE"
    };
    wait_until("the balancer to be ACTIVE", Duration::from_secs(20), active);
    let url = format!("http://{}/", bal.vip);
    for i in 0..10 {
        assert!(curl(&client, &url).is_some(), "request {i}: {}", t.dumps());
    }

    // Counted on host A (the client's), reported within the 10 s count interval.
    let stats = |path: &str| {
        let (st, v) = lb(srv, "GET", &format!("{path}/stats"), None);
        assert_eq!(st, 200, "{v}");
        v["stats"].clone()
    };
    let listener = format!(
        "/v2/lbaas/listeners/{}",
        bal.pool["listeners"][0]["id"].as_str().expect("listener")
    );
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().expect("a count");
    wait_until(
        "the connections to be counted",
        Duration::from_secs(30),
        || n(&stats(&lb_path), "total_connections") >= 10,
    );
    let s = stats(&lb_path);
    // A SYN sent again before its answer is new to conntrack too: at most a few more.
    assert!((10..=12).contains(&n(&s, "total_connections")), "{s}");
    // Ten requests of at least 60 bytes in (SYN, request, ACKs, FIN) and answers out.
    assert!(n(&s, "bytes_in") >= 600, "{s}");
    assert!(n(&s, "bytes_out") >= 600, "{s}");
    assert_eq!(n(&s, "request_errors"), 0);
    assert_eq!(
        stats(&listener),
        s,
        "one listener: the balancer's stats are its own"
    );

    // A connection held open is counted as active while it is.
    let mut hold = client
        .ns
        .command([&common::backends::python(), "-c", HOLD, &bal.vip, "25"]);
    let mut hold = hold
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("a held connection");
    let counted = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        n(&stats(&lb_path), "active_connections") >= 1
    });
    assert!(
        counted,
        "the open connection is not counted: {}\n{}",
        t.ovs[0]
            .appctl(["dpctl/dump-conntrack", "zone=65521"])
            .unwrap_or_else(|e| e.to_string()),
        t.ctl[0].log()
    );
    let _ = hold.kill();
    let _ = hold.wait();

    // Host A's balancer group goes behind its controller's back (and with it the flows
    // that use it): new connections through the VIP get nowhere.
    let groups = select_groups(&t.ovs[0]);
    assert_eq!(
        groups.len(),
        1,
        "one listener, one select group: {groups:?}"
    );
    t.ovs[0]
        .ofctl([
            "-O",
            "OpenFlow13",
            "del-groups",
            "br-int",
            &format!("group_id={}", groups[0]),
        ])
        .expect("del-groups");
    assert!(curl(&client, &url).is_none(), "answered without its group");
    // A failover is an admin's; the host reads its switch back and repairs it.
    let (st, v) = lb(srv, "PUT", &format!("{lb_path}/failover"), None);
    assert_eq!(st, 202, "{v}");
    wait_until(
        "the repaired VIP to answer",
        Duration::from_secs(20),
        || curl(&client, &url).is_some(),
    );
    assert_eq!(select_groups(&t.ovs[0]), groups, "the same group again");
    wait_until(
        "the balancer to be ACTIVE again",
        Duration::from_secs(20),
        active,
    );
    assert!(
        t.ctl[0].log().contains("balancer failover"),
        "the controller says why it read its switch back"
    );
    drop(kept);
}

#[test]
fn a_backup_member_answers_only_while_the_other_is_down() {
    let t = two_hosts();
    let srv = &t.srv;
    let net = srv.network("bknet", "10.57.0.0/24");
    let subnet = first_subnet(srv, &net);
    let (client, client_ip) = t.vm(&net, 0);
    let (vm1, ip1) = t.vm(&net, 0);
    let (vm2, ip2) = t.vm(&net, 1);
    let m1 = serve(&vm1, "m1");
    let _m2 = serve(&vm2, "m2");
    for ip in [&ip1, &ip2] {
        wait_until("a member to serve", Duration::from_secs(20), || {
            curl(&client, &format!("http://{ip}:8000/")).is_some()
        });
    }
    let bal = balancer(srv, &subnet, "bk", 80, json!({}));
    let first = made(
        srv,
        &bal.members,
        json!({"member": {"address": ip1, "protocol_port": 8000, "subnet_id": subnet}}),
    );
    made(
        srv,
        &bal.members,
        json!({"member": {"address": ip2, "protocol_port": 8000, "subnet_id": subnet,
            "backup": true}}),
    );
    made(
        srv,
        "/v2/lbaas/healthmonitors",
        json!({"healthmonitor": {"pool_id": bal.pool["id"], "type": "TCP", "delay": 1,
            "timeout": 1, "max_retries": 1, "max_retries_down": 2}}),
    );
    let m1_path = format!("{}/{}", bal.members, first["id"].as_str().expect("id"));
    let m1_is = |want: &str| {
        let (_, v) = lb(srv, "GET", &m1_path, None);
        v["member"]["operating_status"] == want
    };
    wait_until("m1 ONLINE", Duration::from_secs(20), || m1_is("ONLINE"));
    let url = format!("http://{}/", bal.vip);
    wait_until("the VIP to answer", Duration::from_secs(20), || {
        curl(&client, &url).is_some()
    });
    let only = |who: &str| std::collections::BTreeMap::from([(who.to_string(), 10)]);
    assert_eq!(
        tally(&client, &url, 10),
        only("m1"),
        "the backup gets nothing"
    );
    drop(m1);
    wait_until("m1 ERROR", Duration::from_secs(20), || m1_is("ERROR"));
    assert_eq!(
        tally(&client, &url, 10),
        only("m2"),
        "the backup takes over"
    );
    // m1 out, the backup (host b) in the VIP's buckets, as OVS takes it.
    let r = common::trace::delivered(srv, &t.ovs[0], &client_ip, &format!("{}:80", bal.vip), None);
    assert!(r.verdict.contains("host-b"), "to the backup: {}", r.out);
    let _m1 = serve(&vm1, "m1");
    wait_until("m1 ONLINE again", Duration::from_secs(20), || {
        m1_is("ONLINE")
    });
    assert_eq!(tally(&client, &url, 10), only("m1"), "back to m1");
}
