//! Benchmark: containers through `dragonflow-cni`. For each of 100 pods, the time from the
//! plugin's ADD being executed (as a runtime executes it) to the pod's first ping reply from
//! a pod already on the network, p50 and p99, and the ADD alone; then ADDs per second with
//! 10 running at once. Real `dragonflow server` and `dragonflow controller` (release
//! builds), a real OVS (userspace datapath), embedded store. Records in docs/benchmarks.md.
//!
//! `cargo bench -p dragonflow --bench cni` (env: DF_BENCH_PODS, default 100;
//! DF_BENCH_CONCURRENT_PODS, default 50). Needs root and containernetworking-plugins.

#[path = "../tests/common/mod.rs"]
mod common;
mod vm;

use common::Server;
use common::cloud::Controller;
use common::cni::{Plugin, pod};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testbed::bench::{env, ms, percentile, write_section};

fn conf(srv: &Server, ovs: &testbed::Ovs, project: &str) -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "pods", "type": "dragonflow-cni",
        "api": {"url": srv.url, "auth": {"strategy": "noauth", "project_id": project}},
        "network": "pods",
        "ovsdb": format!("unix:{}", ovs.db_sock().display()),
        "ovs_netns": ovs.netns().expect("host namespace"),
        "host": "host-a",
    })
}

fn address(r: &Value) -> String {
    let a = r["ips"][0]["address"].as_str().expect("an address");
    a.split('/').next().unwrap().to_string()
}

fn p50_p99(v: &mut [Duration]) -> (f64, f64) {
    v.sort();
    (ms(percentile(v, 0.5)), ms(percentile(v, 0.99)))
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !testbed::is_root() {
        eprintln!("cni: needs root (namespaces, OVS); skipped");
        return;
    }
    let n = env("DF_BENCH_PODS", 100);
    let burst = env("DF_BENCH_CONCURRENT_PODS", 50);
    let srv = Server::start_unlimited();
    let ovs = testbed::Ovs::start().expect("ovs");
    let _ctl = Controller::start(&srv, &ovs, "host-a", "192.0.2.1");
    let net = srv.create("networks", "network", json!({"name": "pods"}));
    srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/16"}),
    );
    let project = net["project_id"].as_str().unwrap().to_string();
    let c = conf(&srv, &ovs, &project);
    let mut plugin = Plugin::install();
    plugin.verbose = false;

    // The pod every new one pings.
    let (_target_ns, target_path) = pod();
    let (ok, r) = plugin.exec("ADD", "target", &target_path, &c);
    assert!(ok, "target: {r}");
    let target = address(&r);

    let mut adds = Vec::with_capacity(n);
    let mut replies = Vec::with_capacity(n);
    let mut pods = Vec::with_capacity(n);
    for i in 0..n {
        let (ns, path) = pod();
        let t0 = Instant::now();
        let (ok, r) = plugin.exec("ADD", &format!("seq-{i}"), &path, &c);
        assert!(ok, "pod {i}: {r}");
        adds.push(t0.elapsed());
        assert!(
            vm::first_reply(&ns, &target, t0, Duration::from_secs(10)),
            "pod {i} never reached the target"
        );
        replies.push(t0.elapsed());
        pods.push(ns);
    }
    let (add50, add99) = p50_p99(&mut adds);
    let (rep50, rep99) = p50_p99(&mut replies);
    println!(
        "ADD to first reply over {n} pods: p50 {rep50:.1} ms, p99 {rep99:.1} ms (ADD alone {add50:.1} / {add99:.1})"
    );

    // 10 ADDs at a time until `burst` pods are up.
    let paths: Vec<(testbed::Netns, PathBuf)> = (0..burst).map(|_| pod()).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..10 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((_, path)) = paths.get(i) else { break };
                    let (ok, r) = plugin.exec("ADD", &format!("par-{i}"), path, &c);
                    assert!(ok, "concurrent pod {i}: {r}");
                }
            });
        }
    });
    let elapsed = t0.elapsed();
    let rate = burst as f64 / elapsed.as_secs_f64();
    println!(
        "{burst} ADDs, 10 at a time: {:.2} s, {rate:.1} ADDs/s",
        elapsed.as_secs_f64()
    );

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_string();
    write_section(
        "cni",
        &format!(
            "## Containers: `dragonflow-cni` ADD to first packet\n\n\
             `cargo bench -p dragonflow --bench cni` (as root): one host (real OVS, userspace datapath) with a release `dragonflow server` (embedded store, noauth) and `dragonflow controller`. The plugin is executed as a runtime executes it (`dragonflow-cni` in a CNI_PATH directory, the `CNI_*` environment, the configuration on stdin), each pod a namespace whose loopback the reference `loopback` plugin set up. For each of {n} pods in turn: ADD (find or create the port, make and plug the veth, wait for ACTIVE), then `ping` every 2 ms from the pod to a pod already on the network until the first reply; timed from executing ADD. Then {burst} pods ADDed 10 at a time. Load average of the 2-core machine at the end: {load}.\n\n\
             | measure | value | target |\n|---|---|---|\n\
             | ADD to first reply, p50 | {rep50:.1} ms | |\n\
             | ADD to first reply, p99 | {rep99:.1} ms | < 200 ms |\n\
             | ADD alone (answered once ACTIVE), p50 / p99 | {add50:.1} / {add99:.1} ms | |\n\
             | ADDs per second, 10 at a time ({burst} pods) | {rate:.1} | |\n"
        ),
    );
}
