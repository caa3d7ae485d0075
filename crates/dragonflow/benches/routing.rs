//! Routed against switched throughput between VMs on one host (iperf3 over real OVS, the
//! userspace datapath), and the flows a router interface costs. Records its figures in
//! docs/benchmarks.md. Needs root: `cargo bench -p dragonflow --bench routing`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::Server;
use common::cloud::{Controller, addr, wait_until};
use serde_json::{Value, json};
use std::time::Duration;
use testbed::bench::write_section;

const SECONDS: &str = "5";
const ROUNDS: usize = 5;

fn plug(srv: &Server, ovs: &testbed::Ovs, net: &Value) -> (testbed::Vm, String) {
    let p = srv.create("ports", "port", json!({"network_id": net["id"]}));
    let (mac, ip) = addr(&p);
    let id = p["id"].as_str().unwrap().to_string();
    let vm = testbed::Vm::plug(ovs, "br-int", &id, &mac, &format!("{ip}/24")).expect("plug");
    wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
        srv.call("GET", &format!("/v2.0/ports/{id}"), None).1["port"]["status"] == "ACTIVE"
    });
    (vm, ip)
}

/// Flows of the router app (cookie app byte 8) in br-int.
fn router_flows(ovs: &testbed::Ovs) -> usize {
    ovs.ofctl(["--no-stats", "dump-flows", "br-int"])
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("cookie=0x8000000"))
        .count()
}

/// iperf3 TCP throughput from `client` to `server_ip` (served by `server`), in Gbit/s.
fn iperf(client: &testbed::Vm, server: &testbed::Vm, server_ip: &str) -> f64 {
    let mut s = server
        .ns
        .command(["iperf3", "-s", "-1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("iperf3 server");
    std::thread::sleep(Duration::from_millis(300));
    let out = client
        .ns
        .command(["iperf3", "-c", server_ip, "-t", SECONDS, "-J"])
        .output()
        .expect("iperf3 client");
    let _ = s.kill();
    let _ = s.wait();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
        / 1e9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if !testbed::require_root("routing benchmark") {
        return;
    }
    let srv = Server::start();
    let ovs = testbed::Ovs::start().expect("ovs");
    let _ctl = Controller::start(&srv, &ovs, "host-a", "192.0.2.1");
    let net = |name: &str, cidr: &str| {
        let n = srv.create("networks", "network", json!({"name": name}));
        let s = srv.create(
            "subnets",
            "subnet",
            json!({"network_id": n["id"], "ip_version": 4, "cidr": cidr}),
        );
        (n, s)
    };
    let (n1, s1) = net("net1", "10.0.1.0/24");
    let (n2, s2) = net("net2", "10.0.2.0/24");
    let (a, _) = plug(&srv, &ovs, &n1);
    let (b, ip_b) = plug(&srv, &ovs, &n1);
    let (c, ip_c) = plug(&srv, &ovs, &n2);
    let r = srv.create("routers", "router", json!({"name": "r"}));
    let rid = r["id"].as_str().unwrap();
    let before = router_flows(&ovs);
    let mut per_iface = Vec::new();
    for s in [&s1, &s2] {
        let (st, body) = srv.call(
            "PUT",
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            Some(json!({"subnet_id": s["id"]})),
        );
        assert_eq!(st, 200, "{body}");
        let prev = per_iface.last().copied().unwrap_or(before);
        std::thread::sleep(Duration::from_secs(1));
        per_iface.push(router_flows(&ovs));
        println!(
            "router flows after an interface: {}",
            per_iface.last().unwrap_or(&prev)
        );
    }
    for (vm, s) in [(&a, &s1), (&c, &s2)] {
        let gw = s["gateway_ip"].as_str().unwrap();
        vm.ns
            .exec(["ip", "route", "add", "default", "via", gw])
            .expect("route");
    }
    wait_until("routing", Duration::from_secs(20), || a.pings(&ip_c));
    assert!(a.pings(&ip_b));
    let (mut switched, mut routed) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        switched.push(iperf(&a, &b, &ip_b));
        routed.push(iperf(&a, &c, &ip_c));
    }
    let (sw, rt) = (median(switched.clone()), median(routed.clone()));
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (sw_best, rt_best) = (best(&switched), best(&routed));
    let pct = |a: f64, b: f64| if b > 0.0 { a / b * 100.0 } else { 0.0 };
    let (ratio, ratio_best) = (pct(rt, sw), pct(rt_best, sw_best));
    let rounds = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("switched {switched:?} Gbit/s, routed {routed:?} Gbit/s");
    println!("routed/switched: median {ratio:.1} %, best {ratio_best:.1} %");
    let section = format!(
        "## Routing: routed against switched throughput, flows per router interface\n\n\
         `cargo bench -p dragonflow --bench routing`: one host (real OVS, userspace datapath), \
         iperf3 TCP for {SECONDS} s between two VMs on one network (switched) and between \
         VMs on two networks joined by a router (routed, same host), {ROUNDS} alternating \
         rounds. The userspace datapath between namespaces caps absolute figures; the \
         ratio is the measure (target: routed at least 90 % of switched). The machine's 2 \
         cores are shared with other work (builds), which can only lower a round, so the \
         best round of each is given next to the median.\n\n\
         | measure | median | best |\n|---|---|---|\n\
         | switched (Gbit/s) | {sw:.2} | {sw_best:.2} |\n\
         | routed (Gbit/s) | {rt:.2} | {rt_best:.2} |\n\
         | routed / switched | {ratio:.1} % | {ratio_best:.1} % |\n\n\
         Rounds (Gbit/s): switched {}; routed {}.\n\n\
         | flows | count |\n|---|---|\n\
         | router flows, 1 interface (net1: 2 VM ports) | {} |\n\
         | router flows, 2 interfaces (+ net2: 1 VM port) | {} |\n\n\
         An interface costs 3 flows (its MAC in L2, its own address, the unreachable \
         catch-all of its subnet) plus one host route per VM address in its subnet; a \
         router also has 3 per address family (TTL 0, TTL 1, no route) and one on to its \
         prefix routes, and one per extra route.\n",
        rounds(&switched),
        rounds(&routed),
        per_iface[0] - before,
        per_iface[1] - before
    );
    write_section("routing", &section);
}
