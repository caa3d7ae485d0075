//! Benchmark: wire latency. For each of 50 ports, the time from the port create call, plus
//! plugging the VM's interface into br-int, to the VM's first successful ping of a VM
//! already on the network; p50 and p99. Real `dragonflow server` and `dragonflow
//! controller` (release builds), a real OVS (userspace datapath), embedded store. Also
//! splits each sample into stages (the create call, `ovs-vsctl add-port`, the port reported
//! ACTIVE by the controller once its flows are committed, as its log says, and the first
//! reply) and counts the host's flows and groups. Records in docs/benchmarks.md.
//!
//! `cargo bench -p dragonflow --bench wire` (env: DF_BENCH_PORTS, default 50; DF_BENCH_VERBOSE
//! prints each port's stages, DF_BENCH_LOG the controller's log). Needs root.

#[path = "../tests/common/mod.rs"]
mod common;
mod vm;

use common::Server;
use common::cloud::{Controller, wait_until};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};
use testbed::bench::{log_time, ms, percentile, write_section};

/// When each step of one sample ended, from the create call.
struct Stages {
    created: Duration,
    plugged: Duration,
    active: Duration,
    reply: Duration,
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !testbed::is_root() {
        eprintln!("wire: needs root (namespaces, OVS); skipped");
        return;
    }
    let n: usize = std::env::var("DF_BENCH_PORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    // DF_BENCH_PORTS may pass the default port quota: no quota.
    let srv = Server::start_unlimited();
    let ovs = testbed::Ovs::start().expect("ovs");
    let ctl = Controller::start(&srv, &ovs, "host-a", "192.0.2.1");
    let net = srv.create("networks", "network", json!({"name": "wire"}));
    srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/16"}),
    );
    // The VM every new one pings.
    let target = srv.create("ports", "port", json!({"network_id": net["id"]}));
    let (target_mac, target_ip) = common::cloud::addr(&target);
    let _target_vm = testbed::Vm::plug(
        &ovs,
        "br-int",
        target["id"].as_str().unwrap(),
        &target_mac,
        &format!("{target_ip}/16"),
    )
    .expect("plug target");
    let tid = target["id"].as_str().unwrap().to_string();
    wait_until("the target port ACTIVE", Duration::from_secs(20), || {
        srv.call("GET", &format!("/v2.0/ports/{tid}"), None).1["port"]["status"] == "ACTIVE"
    });

    let mut samples = Vec::with_capacity(n);
    let mut stages = Vec::with_capacity(n);
    let mut made = Vec::with_capacity(n);
    let mut vms = Vec::new();
    for i in 0..n {
        // The VM exists before its port, with the MAC and address it will be given (as
        // Nova boots an instance for a port): what is timed is Neutron and the wire.
        let mac = format!("fa:16:3e:77:{:02x}:{:02x}", i / 256, i % 256);
        let ip = format!("10.0.{}.{}", 1 + i / 250, 1 + i % 250);
        let (ns, tap) = vm::make(&ovs, &mac, &ip, 16);

        let (t0, wall0) = (Instant::now(), SystemTime::now());
        let port = srv.create(
            "ports",
            "port",
            json!({"network_id": net["id"], "mac_address": mac, "fixed_ips": [{"ip_address": ip}]}),
        );
        let id = port["id"].as_str().unwrap().to_string();
        let t_created = t0.elapsed();
        vm::plug(&ovs, &tap, &id);
        let t_plugged = t0.elapsed();
        let ok = vm::first_reply(&ns, &target_ip, t0, Duration::from_secs(10));
        let dt = t0.elapsed();
        assert!(
            ok,
            "port {i} never reached the target\n{}\n{}",
            ovs.ofctl(["dump-flows", "br-int"]).unwrap_or_default(),
            ctl.log()
        );
        samples.push(dt);
        stages.push(Stages {
            created: t_created,
            plugged: t_plugged,
            active: Duration::ZERO,
            reply: dt,
        });
        made.push((id, wall0));
        vms.push(ns);
    }
    // When the controller reported each port ACTIVE (after its flows were committed), from
    // its log, on the same clock as the samples' starts. The last port's report may still
    // be on its way (the ping can beat it).
    let needles: Vec<String> = made
        .iter()
        .map(|(id, _)| format!("port={id} status=\"ACTIVE\""))
        .collect();
    wait_until(
        "every port reported ACTIVE",
        Duration::from_secs(10),
        || {
            let log = ctl.log();
            needles.iter().all(|n| log.contains(n.as_str()))
        },
    );
    let log = ctl.log();
    for (s, (id, wall0)) in stages.iter_mut().zip(&made) {
        let needle = format!("port={id} status=\"ACTIVE\"");
        s.active = log
            .lines()
            .find(|l| l.contains(&needle))
            .and_then(log_time)
            .and_then(|t| t.duration_since(*wall0).ok())
            .expect("the port's ACTIVE report in the controller's log");
    }
    if std::env::var("DF_BENCH_VERBOSE").is_ok() {
        for (i, s) in stages.iter().enumerate() {
            eprintln!(
                "port {i}: created {:.1} ms, plugged {:.1} ms, ACTIVE {:.1} ms, first reply {:.1} ms",
                ms(s.created),
                ms(s.plugged),
                ms(s.active),
                ms(s.reply)
            );
        }
    }
    if std::env::var("DF_BENCH_LOG").is_ok() {
        eprintln!("{log}");
    }
    // The first and the last ten ports: how the time grows as br-int gains ports.
    let median_of = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        ms(percentile(&v, 0.5))
    };
    let k = n.min(10);
    let (first, last) = (median_of(&samples[..k]), median_of(&samples[n - k..]));
    let plug_first = median_of(&stages[..k].iter().map(|s| s.plugged).collect::<Vec<_>>());
    let plug_last = median_of(
        &stages[n - k..]
            .iter()
            .map(|s| s.plugged)
            .collect::<Vec<_>>(),
    );
    // Each stage over all ports: p50 / p99 of the time from the start to its end, and of
    // the time from ACTIVE to the first reply (the datapath's part).
    let p50_p99 = |f: &dyn Fn(&Stages) -> Duration| {
        let mut v: Vec<Duration> = stages.iter().map(f).collect();
        v.sort();
        format!(
            "{:.1} / {:.1}",
            ms(percentile(&v, 0.5)),
            ms(percentile(&v, 0.99))
        )
    };
    let st_created = p50_p99(&|s| s.created);
    let st_plugged = p50_p99(&|s| s.plugged);
    let st_active = p50_p99(&|s| s.active);
    let st_reply = p50_p99(&|s| s.reply);
    let st_after = p50_p99(&|s| s.reply.saturating_sub(s.active));
    // The revalidators' last pass over the datapath flows: it is what removes the drop
    // flow cached for a new port's first packets once its flows are in.
    let upcall = ovs.appctl(["upcall/show"]).unwrap_or_default();
    let grab = |key: &str| {
        upcall
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim_start_matches([' ', ':']).trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    // "(current 512) (avg 498) (max 530) (limit 69000)": the current count.
    let dp_flows = grab("flows")
        .split_whitespace()
        .nth(1)
        .map(|c| c.trim_end_matches(')').to_string())
        .unwrap_or_else(|| "?".into());
    let dump = grab("dump duration");
    let mut sorted = samples.clone();
    sorted.sort();
    let flows = ovs
        .ofctl(["dump-flows", "br-int"])
        .expect("dump-flows")
        .lines()
        .filter(|l| l.contains("cookie="))
        .count();
    let groups = ovs
        .ofctl(["dump-groups", "br-int"])
        .expect("dump-groups")
        .lines()
        .filter(|l| l.contains("group_id="))
        .count();
    let ports = n + 1;
    let (p50, p99, max) = (
        ms(percentile(&sorted, 0.50)),
        ms(percentile(&sorted, 0.99)),
        ms(*sorted.last().unwrap()),
    );
    println!("wire latency over {n} ports: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms");
    println!("flows on the host with {ports} ports on one network: {flows} ({groups} groups)");
    println!(
        "p50 / p99 ms: created {st_created}, plugged {st_plugged}, ACTIVE {st_active}, first reply {st_reply}; ACTIVE to reply {st_after}"
    );
    println!("datapath flows {dp_flows}, revalidator dump duration {dump}");
    let kernel = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    write_section(
        "wire-latency",
        &format!(
            "## Controller: wire latency and flows per host\n\n\
             `cargo bench -p dragonflow --bench wire` (as root): one host (real OVS, userspace datapath, kernel {kernel}) with a release `dragonflow server` (embedded store) and `dragonflow controller`. For each of {n} ports: `POST /v2.0/ports` with the MAC and address of a VM namespace that already exists, `ovs-vsctl add-port` of its interface with the port's `iface-id`, then `ping` every 2 ms from the VM to a VM already on the network until the first reply (the VM asks ARP again every 10 ms, which the kernel's timer ticks make 12–16 ms). Timed from the create call to that reply: the API, the store, the stream, the interface watcher, the binding, compiling, the bundle commit, the datapath, ARP and the echo. All ports hold the default security group (conntrack). The VM interfaces' host ends carry no address, as a hypervisor's do (docs/operations.md, \"Userspace datapath\").\n\n\
             | measure | value | target |\n|---|---|---|\n\
             | wire latency p50 | {p50:.1} ms | |\n\
             | wire latency p99 | {p99:.1} ms | < 100 ms |\n\
             | wire latency max | {max:.1} ms | |\n\
             | flows on the host, {ports} local ports on one network | {flows} ({:.1} per port) | |\n\
             | groups on the host | {groups} (the network's two flood groups) | |\n\n\
             Where the time goes: p50 / p99 over the {n} ports of the time from the create call until\n\n\
             | until | ms | whose time |\n|---|---|---|\n\
             | the create call is answered | {st_created} | the API server and its store |\n\
             | `ovs-vsctl add-port` returns | {st_plugged} | OVS: ovsdb-server, then ovs-vswitchd adding the port (a reconfiguration that visits every port) |\n\
             | the controller reports the port ACTIVE (its flows committed) | {st_active} | the controller, from the OVSDB event on; its bundle commit waits for ovs-vswitchd's main loop |\n\
             | the first echo reply | {st_reply} | |\n\
             | (from ACTIVE to the first reply) | {st_after} | the datapath and the VM: an ARP sent before the port's flows were in met no flow, and the drop flow cached for it stays until a revalidator pass (the last one: {dump} over {dp_flows} datapath flows); then the VM's next ARP and the echo |\n\n\
             The time grows with the ports already on br-int: median {first:.1} ms over the first {k} ports, {last:.1} ms over the last {k}; of that, create + `ovs-vsctl add-port` alone took {plug_first:.1} ms and {plug_last:.1} ms.\n",
            flows as f64 / ports as f64
        ),
    );
}
