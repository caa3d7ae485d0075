//! Benchmark: many ports wired at once, in the shape of OVN's own scale test. Routers
//! joining networks (one /24 each, DHCP off), ports with port security off made through the
//! API, then each host's ports plugged by ONE `ovs-vsctl` as OVS internal ports with their
//! `iface-id`, and timed until the controllers have reported every port ACTIVE. Also: the
//! controllers' and the server's CPU seconds over that time and their resident memory, the
//! flows per host, the wire latency of a single port on the loaded host, and a controller
//! restart to ready. Real `dragonflow server` and controllers (release builds), real OVS
//! (userspace datapath), embedded store. Records in docs/benchmarks.md.
//!
//! `cargo bench -p dragonflow --bench scale` (as root). Env: DF_SCALE_PORTS (500),
//! DF_SCALE_NETWORKS (50), DF_SCALE_ROUTERS (10), DF_SCALE_HOSTS (1); the second
//! shape is 2000, 100, 20, 3.

#[path = "../tests/common/mod.rs"]
mod common;
mod vm;

use common::Server;
use common::cloud::{Controller, addr, underlay, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use testbed::bench::{ms, percentile, write_section};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 are 11 and 12 after the state (field 3 is index 0 here).
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory of a process, MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// The ports a controller's log reports ACTIVE.
fn active_in(log: &str, into: &mut BTreeSet<String>) {
    for l in log.lines().filter(|l| l.contains("status=\"ACTIVE\"")) {
        if let Some(p) = l
            .split("port=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        {
            into.insert(p.to_string());
        }
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !testbed::is_root() {
        eprintln!("scale: needs root (namespaces, OVS); skipped");
        return;
    }
    let n_ports = env("DF_SCALE_PORTS", 500);
    let n_nets = env("DF_SCALE_NETWORKS", 50).max(1);
    let n_routers = env("DF_SCALE_ROUTERS", 10).max(1);
    let n_hosts = env("DF_SCALE_HOSTS", 1).max(1);
    let srv = Server::start();
    // The hosts, joined by one underlay (a Linux bridge in a namespace of its own).
    let wire = testbed::Netns::new(&testbed::unique_name("ul")).expect("underlay ns");
    wire.exec(["ip", "link", "add", "ul", "type", "bridge"])
        .expect("bridge");
    wire.exec(["ip", "link", "set", "ul", "up"])
        .expect("bridge up");
    let mut ovs = Vec::new();
    let mut ctl = Vec::new();
    for h in 0..n_hosts {
        let o = testbed::Ovs::start().expect("ovs");
        let end = format!("h{h}");
        testbed::veth("ul0", o.own_netns(), &end, Some(&wire)).expect("underlay wire");
        wire.exec(["ip", "link", "set", &end, "master", "ul", "up"])
            .expect("attach");
        let ip = format!("192.0.2.{}", h + 1);
        underlay(&o, "ul0", &format!("{ip}/24"));
        ctl.push(Controller::start(&srv, &o, &format!("host-{h}"), &ip));
        ovs.push(o);
    }

    // The topology, through the API.
    let routers: Vec<Value> = (0..n_routers)
        .map(|r| srv.create("routers", "router", json!({"name": format!("r{r}")})))
        .collect();
    let mut nets = Vec::new();
    for i in 0..n_nets {
        let net = srv.create("networks", "network", json!({"name": format!("n{i}")}));
        let sub = srv.create(
            "subnets",
            "subnet",
            json!({"network_id": net["id"], "ip_version": 4, "enable_dhcp": false,
                   "cidr": format!("10.{}.{}.0/24", i / 256, i % 256)}),
        );
        let (st, v) = srv.call(
            "PUT",
            &format!(
                "/v2.0/routers/{}/add_router_interface",
                id(&routers[i % n_routers])
            ),
            Some(json!({"subnet_id": sub["id"]})),
        );
        assert_eq!(st, 200, "{v}");
        nets.push(net);
    }
    // The VM that single ports ping later, on network 0 of host 0, and its port.
    let target = srv.create(
        "ports",
        "port",
        json!({"network_id": nets[0]["id"], "port_security_enabled": false}),
    );
    let (target_mac, target_ip) = addr(&target);
    let (target_vm, tap) = vm::make(&ovs[0], &target_mac, &target_ip, 24);
    vm::plug(&ovs[0], &tap, &id(&target));
    let made = Instant::now();
    let ports: Vec<String> = (0..n_ports)
        .map(|j| {
            id(&srv.create(
                "ports",
                "port",
                json!({"network_id": nets[j % n_nets]["id"], "port_security_enabled": false}),
            ))
        })
        .collect();
    println!(
        "scale: {n_routers} routers, {n_nets} networks, {n_ports} ports made through the API in {:.1} s",
        made.elapsed().as_secs_f64()
    );
    wait_until("the target port ACTIVE", Duration::from_secs(30), || {
        let mut seen = BTreeSet::new();
        active_in(&ctl[0].log(), &mut seen);
        seen.contains(&id(&target))
    });

    // Timed: every host's ports plugged by one ovs-vsctl each, until every one is ACTIVE.
    let pids: Vec<u32> = ctl.iter().map(|c| c.0.id()).collect();
    let server_pid = srv.pid().expect("server pid");
    let cpu0: Vec<f64> = pids.iter().map(|p| cpu_seconds(*p)).collect();
    let server_cpu0 = cpu_seconds(server_pid);
    let start = Instant::now();
    std::thread::scope(|s| {
        for (h, o) in ovs.iter().enumerate() {
            let mine: Vec<(usize, &String)> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| j % n_hosts == h)
                .collect();
            s.spawn(move || {
                let mut args: Vec<String> = Vec::new();
                for (j, p) in mine {
                    let name = format!("sp{j}");
                    args.extend(
                        [
                            "--",
                            "add-port",
                            "br-int",
                            &name,
                            "--",
                            "set",
                            "Interface",
                            &name,
                            "type=internal",
                        ]
                        .map(str::to_string),
                    );
                    args.push(format!("external_ids:iface-id={p}"));
                }
                o.vsctl(&args).expect("ovs-vsctl add-port");
            });
        }
    });
    let plugged = start.elapsed();
    let want: BTreeSet<String> = ports.iter().cloned().collect();
    let mut active = BTreeSet::new();
    let limit = Duration::from_secs(900);
    while start.elapsed() < limit {
        active.clear();
        for c in &ctl {
            active_in(&c.log(), &mut active);
        }
        if want.is_subset(&active) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let all_active = start.elapsed();
    let missing = want.difference(&active).count();
    assert_eq!(missing, 0, "{missing} ports never reported ACTIVE");
    let ctl_cpu: f64 = pids
        .iter()
        .zip(&cpu0)
        .map(|(p, c0)| cpu_seconds(*p) - c0)
        .sum();
    let server_cpu = cpu_seconds(server_pid) - server_cpu0;
    let ctl_rss: Vec<f64> = pids.iter().map(|p| rss_mib(*p)).collect();
    let server_rss = rss_mib(server_pid);
    let flows: Vec<usize> = ovs
        .iter()
        .map(|o| {
            o.ofctl(["dump-flows", "br-int"])
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("cookie="))
                .count()
        })
        .collect();

    // One port at a time on the loaded host 0: create, plug, first reply.
    let mut wires = Vec::new();
    let mut plugs = Vec::new();
    let mut vms = Vec::new();
    for i in 0..20 {
        let mac = format!("fa:16:3e:5c:00:{i:02x}");
        let ip = format!("10.0.0.{}", 200 + i);
        let (ns, tap) = vm::make(&ovs[0], &mac, &ip, 24);
        let t0 = Instant::now();
        let p = srv.create(
            "ports",
            "port",
            json!({"network_id": nets[0]["id"], "port_security_enabled": false,
                   "mac_address": mac, "fixed_ips": [{"ip_address": ip}]}),
        );
        vm::plug(&ovs[0], &tap, &id(&p));
        plugs.push(t0.elapsed());
        assert!(
            vm::first_reply(&ns, &target_ip, t0, Duration::from_secs(10)),
            "a single port on the loaded host never reached the target"
        );
        wires.push(t0.elapsed());
        vms.push(ns);
    }
    wires.sort();
    plugs.sort();
    let (w50, w99) = (ms(percentile(&wires, 0.5)), ms(percentile(&wires, 0.99)));
    // Of that, the create call and `ovs-vsctl add-port` (OVS reconfiguring a bridge with
    // every port on it).
    let (p50, p99) = (ms(percentile(&plugs, 0.5)), ms(percentile(&plugs, 0.99)));

    // Host 0's controller restarted with every port in place: until it is ready again.
    let restart = {
        let (name, ip) = ("host-0", "192.0.2.1");
        drop(ctl.remove(0));
        let t0 = Instant::now();
        let c = Controller::start(&srv, &ovs[0], name, ip);
        wait_until(
            "the restarted controller ready",
            Duration::from_secs(300),
            || c.log().contains("controller ready"),
        );
        let took = t0.elapsed();
        ctl.insert(0, c);
        took
    };
    drop(target_vm);

    let per_port = all_active.as_secs_f64() * 1000.0 / n_ports as f64;
    println!(
        "scale: {n_ports} ports on {n_hosts} host(s): all ACTIVE in {:.2} s ({per_port:.2} ms a port; plugging took {:.2} s)",
        all_active.as_secs_f64(),
        plugged.as_secs_f64()
    );
    println!(
        "scale: CPU controllers {ctl_cpu:.2} s, server {server_cpu:.2} s; resident controllers {ctl_rss:.1?} MiB, server {server_rss:.1} MiB; flows per host {flows:?}"
    );
    println!(
        "scale: single port on the loaded host p50 {w50:.1} ms, p99 {w99:.1} ms (create + ovs-vsctl add-port alone: {p50:.1} / {p99:.1} ms); controller restart to ready {:.2} s",
        restart.as_secs_f64()
    );
    let shape = format!("{n_ports}-{n_hosts}");
    write_section(
        &format!("scale-{shape}"),
        &format!(
            "## Scale: {n_ports} ports, {n_nets} networks, {n_routers} routers, {n_hosts} host(s)\n\n\
             `DF_SCALE_PORTS={n_ports} DF_SCALE_NETWORKS={n_nets} DF_SCALE_ROUTERS={n_routers} DF_SCALE_HOSTS={n_hosts} cargo bench -p dragonflow --bench scale` (as root): OVN's scale-test shape. Each network a /24 with DHCP off, joined to router `i mod {n_routers}`; ports with port security off made through the API; then each host's ports plugged by one `ovs-vsctl` as OVS internal ports with their `iface-id`. Release server (embedded store) and controllers, real OVS (userspace datapath), on this 2-core machine.\n\n\
             | measure | value |\n|---|---|\n\
             | plugging (`ovs-vsctl`) | {:.2} s |\n\
             | until every port is ACTIVE | {:.2} s ({per_port:.2} ms a port) |\n\
             | controller CPU over that time (all hosts) | {ctl_cpu:.2} s |\n\
             | API server CPU over that time | {server_cpu:.2} s |\n\
             | resident memory: controllers | {} MiB |\n\
             | resident memory: server | {server_rss:.1} MiB |\n\
             | flows per host | {} |\n\
             | a single port on the loaded host, create to first reply, p50 / p99 (20 ports) | {w50:.1} / {w99:.1} ms |\n\
             | of which the create call and `ovs-vsctl add-port` | {p50:.1} / {p99:.1} ms |\n\
             | a controller restart with every port in place, to ready | {:.2} s |\n",
            plugged.as_secs_f64(),
            all_active.as_secs_f64(),
            ctl_rss
                .iter()
                .map(|r| format!("{r:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            flows
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            restart.as_secs_f64(),
        ),
    );
}
