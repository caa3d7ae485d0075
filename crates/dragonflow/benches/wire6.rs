//! Benchmark: wire latency of a new IPv6-only port against a new IPv4 port, in one run.
//! For each of 50 pairs, alternately an IPv4 port on an IPv4 network and an IPv6-only port
//! on an IPv6 network (static addresses: the VM has its address, as `wire`'s VMs do), the
//! time from the port create call, plus plugging the VM's interface into br-int, to the
//! VM's first ping reply from a VM already on its network (IPv4: ARP answered by the
//! switch, then the echo; IPv6: NS answered by the switch, then the echo). p50, p99 and
//! the ratio. Real `dragonflow server` and `dragonflow controller`, a real OVS (userspace
//! datapath), embedded store. Records in docs/benchmarks.md (`wire-latency-ipv6`).
//!
//! `cargo bench -p dragonflow --bench wire6` (env: DF_BENCH_PORTS, pairs, default 50).
//! Needs root.

#[path = "../tests/common/mod.rs"]
mod common;
mod vm;

use common::Server;
use common::cloud::{Controller, wait_until};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use testbed::bench::{ms, percentile, write_section};

/// A network with one subnet, and the VM already on it that the new ones ping.
struct Side {
    net: Value,
    target_ip: String,
    _target: testbed::Vm,
    samples: Vec<Duration>,
}

fn side(srv: &Server, ovs: &testbed::Ovs, name: &str, subnet: Value, v6: bool) -> Side {
    let net = srv.create("networks", "network", json!({"name": name}));
    let mut subnet = subnet;
    subnet["network_id"] = net["id"].clone();
    srv.create("subnets", "subnet", subnet);
    let target = srv.create("ports", "port", json!({"network_id": net["id"]}));
    let (mac, ip) = common::cloud::addr(&target);
    let cidr = if v6 {
        format!("{ip}/64")
    } else {
        format!("{ip}/16")
    };
    let vm = testbed::Vm::plug(ovs, "br-int", target["id"].as_str().unwrap(), &mac, &cidr)
        .expect("plug target");
    let id = target["id"].as_str().unwrap().to_string();
    wait_until("the target port ACTIVE", Duration::from_secs(20), || {
        srv.call("GET", &format!("/v2.0/ports/{id}"), None).1["port"]["status"] == "ACTIVE"
    });
    if v6 {
        wait_until(
            "the target's address past DAD",
            Duration::from_secs(10),
            || {
                vm.ns
                    .exec(["ip", "-6", "addr", "show", "dev", "eth0", "scope", "global"])
                    .is_ok_and(|s| s.contains("inet6") && !s.contains("tentative"))
            },
        );
    }
    Side {
        net,
        target_ip: ip,
        _target: vm,
        samples: Vec::new(),
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !testbed::is_root() {
        eprintln!("wire6: needs root (namespaces, OVS); skipped");
        return;
    }
    let n: usize = std::env::var("DF_BENCH_PORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let srv = Server::start_unlimited();
    let ovs = testbed::Ovs::start().expect("ovs");
    let ctl = Controller::start(&srv, &ovs, "host-a", "192.0.2.1");
    let mut v4 = side(
        &srv,
        &ovs,
        "wire4",
        json!({"ip_version": 4, "cidr": "10.0.0.0/16"}),
        false,
    );
    let mut v6 = side(
        &srv,
        &ovs,
        "wire6",
        json!({"ip_version": 6, "cidr": "fd00:77::/64"}),
        true,
    );
    let mut vms = Vec::new();
    for i in 0..2 * n {
        // Alternately, and each family first in every other pair, so that the ports
        // already on br-int (which slow every new one down) weigh the same on both.
        let ipv6 = (i % 2 == 1) ^ ((i / 2) % 2 == 1);
        let k = i / 2;
        let mac = format!(
            "fa:16:3e:{}:{:02x}:{:02x}",
            if ipv6 { "66" } else { "44" },
            k / 256,
            k % 256
        );
        let (s, ip) = if ipv6 {
            (&mut v6, format!("fd00:77::1:{:x}", k + 1))
        } else {
            (&mut v4, format!("10.0.{}.{}", 1 + k / 250, 1 + k % 250))
        };
        let (ns, tap) = if ipv6 {
            vm::make6(&ovs, &mac, &ip)
        } else {
            vm::make(&ovs, &mac, &ip, 16)
        };
        let t0 = Instant::now();
        let port = srv.create(
            "ports",
            "port",
            json!({"network_id": s.net["id"], "mac_address": mac,
                   "fixed_ips": [{"ip_address": ip}]}),
        );
        vm::plug(&ovs, &tap, port["id"].as_str().unwrap());
        let ok = vm::first_reply(&ns, &s.target_ip, t0, Duration::from_secs(10));
        assert!(
            ok,
            "{ip} never reached {}\n{}\n{}",
            s.target_ip,
            ovs.ofctl(["dump-flows", "br-int"]).unwrap_or_default(),
            ctl.log()
        );
        s.samples.push(t0.elapsed());
        vms.push(ns);
    }
    let stats = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        (
            ms(percentile(&v, 0.5)),
            ms(percentile(&v, 0.99)),
            ms(*v.last().unwrap()),
        )
    };
    let (p50_4, p99_4, max_4) = stats(&v4.samples);
    let (p50_6, p99_6, max_6) = stats(&v6.samples);
    let (r50, r99) = (p50_6 / p50_4, p99_6 / p99_4);
    println!("IPv4: p50 {p50_4:.1} ms, p99 {p99_4:.1} ms, max {max_4:.1} ms");
    println!("IPv6: p50 {p50_6:.1} ms, p99 {p99_6:.1} ms, max {max_6:.1} ms");
    println!("IPv6 / IPv4: p50 {r50:.2}, p99 {r99:.2}");
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_string();
    write_section(
        "wire-latency-ipv6",
        &format!(
            "## Controller: wire latency of a new IPv6-only port, against IPv4\n\n\
             `cargo bench -p dragonflow --bench wire6` (as root; {profile} build): one host (real OVS, userspace datapath) with `dragonflow server` (embedded store) and `dragonflow controller`, an IPv4 network (10.0.0.0/16) and an IPv6 network (fd00:77::/64, no RA mode: the VMs have their addresses) with a VM each. {n} ports of each family, alternately (each first in every other pair, so the ports already on br-int weigh the same on both): `POST /v2.0/ports` with the MAC and address of a VM namespace that already exists, `ovs-vsctl add-port` with its `iface-id`, then `ping` every 2 ms to the network's first VM until the first reply. IPv4 resolves the target by ARP, IPv6 by a neighbour solicitation, both answered by the switch (the VM asks again every 10 ms). All ports hold the default security group. Machine load (1 min) when recorded: {load}.\n\n\
             | measure | IPv4 | IPv6-only | IPv6 / IPv4 |\n|---|---|---|---|\n\
             | wire latency p50 | {p50_4:.1} ms | {p50_6:.1} ms | {r50:.2} |\n\
             | wire latency p99 | {p99_4:.1} ms | {p99_6:.1} ms | {r99:.2} |\n\
             | wire latency max | {max_4:.1} ms | {max_6:.1} ms | |\n\n\
             The issue's target: IPv6 within 20 % of IPv4. The absolute figures follow the machine's load, not the family: compare the ratio (and `--bench wire`'s IPv4 figures run beside it).\n\n"
        ),
    );
}
