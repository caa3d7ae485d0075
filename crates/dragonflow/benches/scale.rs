//! Benchmark: many ports wired at once, in the shape of OVN's own scale test, and OVN
//! 23.03 in the same shape in the same run where it is installed. Routers joining networks
//! (one /24 each, DHCP off), ports with port security off, then each host's ports plugged by
//! ONE `ovs-vsctl` as OVS internal ports with their `iface-id`, timed until every port is up
//! (Dragonflow: reported ACTIVE; OVN: `Logical_Switch_Port.up`). Also: the host agents' and
//! the central part's CPU seconds over that time (Dragonflow's controllers and server; OVN's
//! ovn-controllers and ovn-northd) and their resident memory, the flows per host, the wire
//! latency of a single port on the loaded host, and (Dragonflow) a controller restart to
//! ready. Release builds, real OVS (userspace datapath), embedded store. Records in
//! docs/benchmarks.md.
//!
//! `cargo bench -p dragonflow --bench scale` (as root). Env: DF_SCALE_PORTS (500),
//! DF_SCALE_NETWORKS (50), DF_SCALE_ROUTERS (10), DF_SCALE_HOSTS (1); the second
//! shape is 2000, 100, 20, 3. DF_SCALE_OVN=0 leaves OVN out; DF_BENCH_LOG prints host 0's
//! controller log after the batch (with DF_TEST_LOG=debug, the time of each step).

#[path = "../tests/common/mod.rs"]
mod common;
mod ovn;
mod vm;

use common::Server;
use common::cloud::{Controller, underlay, wait_until};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use testbed::bench::{cpu_seconds, env, ms, percentile, rss_mib, write_section};

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

#[derive(Clone, Copy)]
struct Shape {
    ports: usize,
    nets: usize,
    routers: usize,
    hosts: usize,
}

impl Shape {
    /// Port `j`'s network, MAC and address (the same in both runs).
    fn port(&self, j: usize) -> (usize, String, String) {
        let net = j % self.nets;
        let k = 10 + j / self.nets;
        (
            net,
            format!("fa:16:3e:{:02x}:{:02x}:{:02x}", net / 256, net % 256, k),
            format!("10.{}.{}.{k}", net / 256, net % 256),
        )
    }
}

/// One row of the table: its figure from one run's figures.
type Row<'a> = (&'static str, Box<dyn Fn(&Figures) -> String + 'a>);

/// What one run measured.
struct Figures {
    plugged: Duration,
    all_up: Duration,
    agents_cpu: f64,
    central_cpu: f64,
    agents_rss: Vec<f64>,
    central_rss: f64,
    flows: Vec<usize>,
    /// A single port on the loaded host: create to first reply, and create + plug alone.
    wire: (f64, f64),
    plug: (f64, f64),
    restart: Option<Duration>,
}

/// `n` hosts (an OVS each, in a namespace of its own) joined by one underlay: a Linux
/// bridge in a namespace; host h at 192.0.2.(h+1) on its br-phy.
fn hosts(n: usize) -> (testbed::Netns, Vec<testbed::Ovs>) {
    let wire = testbed::Netns::new(&testbed::unique_name("ul")).expect("underlay ns");
    wire.exec(["ip", "link", "add", "ul", "type", "bridge"])
        .expect("bridge");
    wire.exec(["ip", "link", "set", "ul", "up"])
        .expect("bridge up");
    let mut ovs = Vec::new();
    for h in 0..n {
        let o = testbed::Ovs::start().expect("ovs");
        let end = format!("h{h}");
        testbed::veth("ul0", o.own_netns(), &end, Some(&wire)).expect("underlay wire");
        wire.exec(["ip", "link", "set", &end, "master", "ul", "up"])
            .expect("attach");
        underlay(&o, "ul0", &format!("{}/24", host_ip(h)));
        ovs.push(o);
    }
    (wire, ovs)
}

fn host_ip(h: usize) -> String {
    format!("192.0.2.{}", h + 1)
}

/// Each host's ports plugged by one `ovs-vsctl` (all hosts at once): port `j` goes to host
/// `j mod hosts` as internal port `sp<j>` with `iface-id` `ids[j]`. How long it took.
fn plug_all(ovs: &[testbed::Ovs], ids: &[String]) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for (h, o) in ovs.iter().enumerate() {
            let mine: Vec<(usize, &String)> = ids
                .iter()
                .enumerate()
                .filter(|(j, _)| j % ovs.len() == h)
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
    start.elapsed()
}

fn flows(ovs: &[testbed::Ovs]) -> Vec<usize> {
    ovs.iter()
        .map(|o| {
            o.ofctl(["dump-flows", "br-int"])
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("cookie="))
                .count()
        })
        .collect()
}

/// How many flows each table of `ovs`'s br-int holds (for `DF_BENCH_LOG`).
fn flows_per_table(ovs: &testbed::Ovs) -> BTreeMap<u8, usize> {
    let mut per = BTreeMap::new();
    for l in ovs
        .ofctl(["dump-flows", "br-int"])
        .unwrap_or_default()
        .lines()
    {
        if let Some(t) = l.split("table=").nth(1).and_then(|r| r.split(',').next()) {
            *per.entry(t.parse().unwrap_or(255)).or_insert(0) += 1;
        }
    }
    per
}

/// 20 single ports on host 0's network 0, one at a time: `make(i, mac, ip)` creates the
/// port and returns its iface-id; each is plugged into a VM that pings `target`. p50 and
/// p99 of create to first reply, and of create + plug alone.
fn single_ports(
    ovs: &testbed::Ovs,
    target: &str,
    mut make: impl FnMut(usize, &str, &str) -> String,
) -> ((f64, f64), (f64, f64)) {
    let (mut wires, mut plugs, mut vms) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..20 {
        let mac = format!("fa:16:3e:5c:00:{i:02x}");
        let ip = format!("10.0.0.{}", 200 + i);
        let (ns, tap) = vm::make(ovs, &mac, &ip, 24);
        let t0 = Instant::now();
        let iface = make(i, &mac, &ip);
        vm::plug(ovs, &tap, &iface);
        plugs.push(t0.elapsed());
        assert!(
            vm::first_reply(&ns, target, t0, Duration::from_secs(10)),
            "a single port on the loaded host never reached the target"
        );
        wires.push(t0.elapsed());
        if std::env::var_os("DF_BENCH_LOG").is_some() {
            eprintln!(
                "single port {i}: plugged {:?}, first reply {:?}",
                plugs[i], wires[i]
            );
        }
        vms.push(ns);
    }
    wires.sort();
    plugs.sort();
    let p = |v: &[Duration]| (ms(percentile(v, 0.5)), ms(percentile(v, 0.99)));
    (p(&wires), p(&plugs))
}

/// Waits until `up()` holds every port of `want`.
fn wait_all_up(start: Instant, want: &BTreeSet<String>, mut up: impl FnMut() -> BTreeSet<String>) {
    let limit = Duration::from_secs(900);
    let mut seen = BTreeSet::new();
    while start.elapsed() < limit {
        seen = up();
        if want.is_subset(&seen) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} ports never came up", want.difference(&seen).count());
}

fn ours(shape: Shape) -> Figures {
    // Up to thousands of ports in one project: no quota.
    let srv = Server::start_unlimited();
    let (_wire, ovs) = hosts(shape.hosts);
    let mut ctl: Vec<Controller> = ovs
        .iter()
        .enumerate()
        .map(|(h, o)| Controller::start(&srv, o, &format!("host-{h}"), &host_ip(h)))
        .collect();
    let routers: Vec<Value> = (0..shape.routers)
        .map(|r| srv.create("routers", "router", json!({"name": format!("r{r}")})))
        .collect();
    let mut nets = Vec::new();
    for i in 0..shape.nets {
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
                id(&routers[i % shape.routers])
            ),
            Some(json!({"subnet_id": sub["id"]})),
        );
        assert_eq!(st, 200, "{v}");
        nets.push(net);
    }
    let port = |net: &Value, mac: &str, ip: &str| {
        id(&srv.create(
            "ports",
            "port",
            json!({"network_id": net["id"], "port_security_enabled": false,
                   "mac_address": mac, "fixed_ips": [{"ip_address": ip}]}),
        ))
    };
    // The VM that single ports ping later, on network 0 of host 0.
    let (target_ip, target_mac) = ("10.0.0.250", "fa:16:3e:5c:01:00");
    let target = port(&nets[0], target_mac, target_ip);
    let (_target_vm, tap) = vm::make(&ovs[0], target_mac, target_ip, 24);
    vm::plug(&ovs[0], &tap, &target);
    let ids: Vec<String> = (0..shape.ports)
        .map(|j| {
            let (net, mac, ip) = shape.port(j);
            port(&nets[net], &mac, &ip)
        })
        .collect();
    wait_until("the target port ACTIVE", Duration::from_secs(30), || {
        let mut seen = BTreeSet::new();
        active_in(&ctl[0].log(), &mut seen);
        seen.contains(&target)
    });

    let pids: Vec<u32> = ctl.iter().map(|c| c.0.id()).collect();
    let server_pid = srv.pid().expect("server pid");
    let cpu0: f64 = pids.iter().map(|p| cpu_seconds(*p)).sum();
    let server_cpu0 = cpu_seconds(server_pid);
    let start = Instant::now();
    let plugged = plug_all(&ovs, &ids);
    wait_all_up(start, &ids.iter().cloned().collect(), || {
        let mut seen = BTreeSet::new();
        for c in &ctl {
            active_in(&c.log(), &mut seen);
        }
        seen
    });
    let all_up = start.elapsed();
    let agents_cpu = pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - cpu0;
    let central_cpu = cpu_seconds(server_pid) - server_cpu0;
    let agents_rss = pids.iter().map(|p| rss_mib(*p)).collect();
    let central_rss = rss_mib(server_pid);
    let flows = flows(&ovs);
    let (wire, plug) = single_ports(&ovs[0], target_ip, |_, mac, ip| port(&nets[0], mac, ip));
    if std::env::var_os("DF_BENCH_LOG").is_some() {
        eprintln!("{}", ctl[0].log());
        eprintln!("flows per table on host 0: {:?}", flows_per_table(&ovs[0]));
    }
    // Host 0's controller restarted with every port in place: until it is ready again.
    drop(ctl.remove(0));
    let t0 = Instant::now();
    let c = Controller::start(&srv, &ovs[0], "host-0", &host_ip(0));
    wait_until(
        "the restarted controller ready",
        Duration::from_secs(300),
        || c.log().contains("controller ready"),
    );
    let restart = Some(t0.elapsed());
    Figures {
        plugged,
        all_up,
        agents_cpu,
        central_cpu,
        agents_rss,
        central_rss,
        flows,
        wire,
        plug,
        restart,
    }
}

fn theirs(shape: Shape) -> Figures {
    let central = ovn::Central::start();
    let (_wire, ovs) = hosts(shape.hosts);
    let agents: Vec<(std::process::Child, u32)> = ovs
        .iter()
        .enumerate()
        .map(|(h, o)| ovn::controller(o, &central, &format!("host-{h}"), &host_ip(h)))
        .collect();
    let ports: Vec<(String, String, String, usize)> = (0..shape.ports)
        .map(|j| {
            let (net, mac, ip) = shape.port(j);
            (format!("p{j}"), mac, ip, net)
        })
        .chain(std::iter::once((
            "target".to_string(),
            "fa:16:3e:5c:01:00".to_string(),
            "10.0.0.250".to_string(),
            0,
        )))
        .collect();
    central.nbctl(&ovn::topology(shape.routers, shape.nets, &ports));
    let (_target_vm, tap) = vm::make(&ovs[0], "fa:16:3e:5c:01:00", "10.0.0.250", 24);
    vm::plug(&ovs[0], &tap, "target");
    wait_until("the target port up", Duration::from_secs(60), || {
        central.up().contains("target")
    });
    let ids: Vec<String> = (0..shape.ports).map(|j| format!("p{j}")).collect();
    let pids: Vec<u32> = agents.iter().map(|(_, p)| *p).collect();
    let northd = central.northd_pid();
    let cpu0: f64 = pids.iter().map(|p| cpu_seconds(*p)).sum();
    let northd_cpu0 = cpu_seconds(northd);
    let start = Instant::now();
    let plugged = plug_all(&ovs, &ids);
    wait_all_up(start, &ids.iter().cloned().collect(), || central.up());
    let all_up = start.elapsed();
    let agents_cpu = pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - cpu0;
    let central_cpu = cpu_seconds(northd) - northd_cpu0;
    let agents_rss = pids.iter().map(|p| rss_mib(*p)).collect();
    let central_rss = rss_mib(northd);
    let flows = flows(&ovs);
    let (wire, plug) = single_ports(&ovs[0], "10.0.0.250", |i, mac, ip| {
        let name = format!("single{i}");
        central.nbctl(&[
            "lsp-add",
            "n0",
            &name,
            "--",
            "lsp-set-addresses",
            &name,
            &format!("{mac} {ip}"),
        ]);
        name
    });
    for (mut c, _) in agents {
        let _ = c.kill();
        let _ = c.wait();
    }
    Figures {
        plugged,
        all_up,
        agents_cpu,
        central_cpu,
        agents_rss,
        central_rss,
        flows,
        wire,
        plug,
        restart: None,
    }
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|r| format!("{r:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !testbed::is_root() {
        eprintln!("scale: needs root (namespaces, OVS); skipped");
        return;
    }
    let shape = Shape {
        ports: env("DF_SCALE_PORTS", 500),
        nets: env("DF_SCALE_NETWORKS", 50).max(1),
        routers: env("DF_SCALE_ROUTERS", 10).max(1),
        hosts: env("DF_SCALE_HOSTS", 1).max(1),
    };
    let with_ovn = ovn::available() && std::env::var("DF_SCALE_OVN").as_deref() != Ok("0");
    let df = ours(shape);
    let ov = with_ovn.then(|| theirs(shape));
    let Shape {
        ports,
        nets,
        routers,
        hosts,
    } = shape;
    let per_port = |f: &Figures| f.all_up.as_secs_f64() * 1000.0 / ports as f64;
    for (who, f) in std::iter::once(("dragonflow", &df)).chain(ov.as_ref().map(|f| ("ovn", f))) {
        println!(
            "scale {who}: {ports} ports on {hosts} host(s): all up in {:.2} s ({:.2} ms a port; plugging {:.2} s); CPU agents {:.2} s, central {:.2} s; resident agents [{}] MiB, central {:.1} MiB; flows {:?}; single port p50 {:.1} / p99 {:.1} ms (create + plug {:.1} / {:.1})",
            f.all_up.as_secs_f64(),
            per_port(f),
            f.plugged.as_secs_f64(),
            f.agents_cpu,
            f.central_cpu,
            list(&f.agents_rss),
            f.central_rss,
            f.flows,
            f.wire.0,
            f.wire.1,
            f.plug.0,
            f.plug.1
        );
    }
    let col = |f: Option<&Figures>, g: &dyn Fn(&Figures) -> String| {
        f.map(g).unwrap_or_else(|| "(not installed)".into())
    };
    let rows: Vec<Row<'_>> = vec![
        (
            "plugging (`ovs-vsctl`)",
            Box::new(|f| format!("{:.2} s", f.plugged.as_secs_f64())),
        ),
        (
            "until every port is up",
            Box::new(|f| {
                format!(
                    "{:.2} s ({:.2} ms a port)",
                    f.all_up.as_secs_f64(),
                    per_port(f)
                )
            }),
        ),
        (
            "host agents' CPU over that time (Dragonflow controllers / ovn-controllers)",
            Box::new(|f| format!("{:.2} s", f.agents_cpu)),
        ),
        (
            "central CPU over that time (API server / ovn-northd)",
            Box::new(|f| format!("{:.2} s", f.central_cpu)),
        ),
        (
            "resident memory: host agents",
            Box::new(|f| format!("{} MiB", list(&f.agents_rss))),
        ),
        (
            "resident memory: central",
            Box::new(|f| format!("{:.1} MiB", f.central_rss)),
        ),
        (
            "flows per host",
            Box::new(|f| {
                f.flows
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
        ),
        (
            "a single port on the loaded host, create to first reply, p50 / p99 (20 ports)",
            Box::new(|f| format!("{:.1} / {:.1} ms", f.wire.0, f.wire.1)),
        ),
        (
            "of which the create and `ovs-vsctl add-port`",
            Box::new(|f| format!("{:.1} / {:.1} ms", f.plug.0, f.plug.1)),
        ),
        (
            "a host agent restarted with every port in place, to ready",
            Box::new(|f| {
                f.restart
                    .map(|r| format!("{:.2} s", r.as_secs_f64()))
                    .unwrap_or_else(|| "—".into())
            }),
        ),
    ];
    let mut table = String::from("| measure | Dragonflow | OVN 23.03 |\n|---|---|---|\n");
    for (what, g) in &rows {
        table += &format!(
            "| {what} | {} | {} |\n",
            g(&df),
            col(ov.as_ref(), g.as_ref())
        );
    }
    write_section(
        &format!("scale-{ports}-{hosts}"),
        &format!(
            "## Scale: {ports} ports, {nets} networks, {routers} routers, {hosts} host(s), beside OVN\n\n\
             `DF_SCALE_PORTS={ports} DF_SCALE_NETWORKS={nets} DF_SCALE_ROUTERS={routers} DF_SCALE_HOSTS={hosts} cargo bench -p dragonflow --bench scale` (as root): OVN's scale-test shape, both systems in one run on this 2-core machine, one after the other on fresh OVS instances. Each network a /24 with DHCP off, joined to router `i mod {routers}`; ports with port security off (Dragonflow: made through its API; OVN: through `ovn-nbctl`, in one transaction), then each host's ports plugged by one `ovs-vsctl` as OVS internal ports with their `iface-id`. A port is up when Dragonflow's controller reports it ACTIVE (its flows committed), and when OVN sets `Logical_Switch_Port.up` (its flows installed). Release Dragonflow (embedded store); OVN 23.03 from Debian with `ovn-bridge-datapath-type=netdev`.\n\n{table}",
        ),
    );
}
