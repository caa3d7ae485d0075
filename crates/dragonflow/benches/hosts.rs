//! Benchmark: many simulated hosts (issue 26). OVN's scale-test shape (20 ports a host,
//! groups of 50 hosts with a router and 10 networks each, a security group admitting its
//! own members; 1,000 hosts: 20,000 ports, 200 networks, 20 routers) against a real
//! server and store, with one `controller::simhost` per host in this process (the real core
//! and NB follower, a switch that counts). Measured per backend and host count: the time
//! until every port is ACTIVE, what each host holds, the time from a port create, a port
//! delete and a rule change to the last host that needs it, the hosts that received a
//! change they did not need, what the hosts asked of the store, and the time for every host
//! to follow again after the store restarts. Records in docs/benchmarks.md, with a plot of
//! latency against host count (docs/hosts-latency.svg).
//!
//! `cargo bench -p dragonflow --bench hosts`. Env: DF_HOSTS (10,100,300,1000),
//! DF_HOSTS_BACKENDS (embedded,pubsub,etcd,redis,zookeeper: embedded is the server's
//! stream, pubsub the server's zmq fan-out filled from that stream, the others hosts
//! reading the store directly), DF_HOSTS_WAVE (100 ports, and half as many
//! rules), DF_HOSTS_GAP_MS (50: the time between two changes of a wave).

#[path = "../tests/common/mod.rs"]
mod common;

use common::Server;
use common::hosts::{self, Hosts, Outcome, Shape};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use testbed::bench::{cpu_seconds, env, ms, percentile, rss_mib, write_section};
use testbed::{StoreKind, StoreServer};

/// What one run measured.
struct Run {
    backend: &'static str,
    shape: Shape,
    build: Duration,
    all_active: Duration,
    objects: (usize, usize, usize),
    flows: (usize, usize, usize),
    foreign: usize,
    rss_per_host: f64,
    create: Outcome,
    delete: Outcome,
    rules: Outcome,
    resync: Outcome,
    /// Per host, on average: reads, writes, watch streams.
    load: (f64, f64, f64),
    server_cpu: f64,
}

fn backends() -> Vec<&'static str> {
    let list = std::env::var("DF_HOSTS_BACKENDS")
        .unwrap_or_else(|_| "embedded,pubsub,etcd,redis,zookeeper".into());
    ["embedded", "pubsub", "etcd", "redis", "zookeeper"]
        .into_iter()
        .filter(|b| list.split(',').any(|x| x.trim() == *b))
        .collect()
}

fn counts() -> Vec<usize> {
    std::env::var("DF_HOSTS")
        .unwrap_or_else(|_| "10,100,300,1000".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect()
}

/// The fan-out's address for the `pubsub` backend (one run at a time).
fn pubsub_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("zmq://127.0.0.1:{}", l.local_addr().expect("addr").port())
    })
    .clone()
}

/// A store of `backend` (none: the server's embedded one) and a server on it.
fn start(backend: &str) -> (Option<StoreServer>, Server) {
    let kind = match backend {
        "etcd" => StoreKind::Etcd,
        "redis" => StoreKind::Redis,
        "zookeeper" => StoreKind::ZooKeeper,
        "pubsub" => {
            return (
                None,
                Server::start_unlimited_with(&["--pubsub", &pubsub_url()]),
            );
        }
        _ => return (None, Server::start_unlimited()),
    };
    let store = StoreServer::start(kind).expect("store");
    let srv = Server::start_on_unlimited(&store.url());
    (Some(store), srv)
}

fn run(backend: &'static str, n: usize, wave: usize) -> Run {
    let shape = Shape::ovn(n);
    let (mut store, mut srv) = start(backend);
    let t = Instant::now();
    let mut cloud = hosts::build(&srv, shape);
    let build = t.elapsed();
    println!(
        "{backend} {n} hosts: cloud made in {:.1} s",
        build.as_secs_f64()
    );
    let me = std::process::id();
    let rss0 = rss_mib(me);
    let t = Instant::now();
    let nb = store
        .as_ref()
        .map_or_else(|| srv.nb_url.clone(), StoreServer::url);
    let fanout = (backend == "pubsub").then(pubsub_url);
    let h = Hosts::start_with(&cloud, &nb, fanout.as_deref(), 2);
    let ports = shape.hosts * shape.ports_per_host;
    while hosts::active_ports(&srv) < ports {
        assert!(t.elapsed() < Duration::from_secs(1200), "ports not ACTIVE");
        std::thread::sleep(Duration::from_millis(500));
    }
    let all_active = t.elapsed();
    println!(
        "{backend} {n} hosts: {ports} ports ACTIVE in {:.1} s",
        all_active.as_secs_f64()
    );
    // Quiet: every host idle, and no change received for a second (the ACTIVE reports
    // of the others still reach each host after the API shows them all).
    let mut last = u64::MAX;
    let figures = loop {
        let f = h.figures();
        let received: u64 = f.iter().map(|f| f.changes).sum();
        if f.iter().all(|f| f.ready) && received == last {
            break f;
        }
        last = received;
        std::thread::sleep(Duration::from_secs(1));
    };
    println!(
        "{backend} {n} hosts: quiet after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let rss_per_host = (rss_mib(me) - rss0) / n as f64;
    let srv_pid = srv.pid().expect("server pid");
    let cpu0 = cpu_seconds(srv_pid);
    h.record(true);
    let gap = Duration::from_millis(env("DF_HOSTS_GAP_MS", 50) as u64);
    let created = hosts::create_ports(&srv, &mut cloud, &h, wave, gap);
    let create = hosts::settle(&h, shape, &created, Duration::from_secs(120));
    println!("{backend} {n} hosts: creates {}", cell(&create));
    let deleted = hosts::delete_ports(&srv, &h, &created, gap);
    let delete = hosts::settle(&h, shape, &deleted, Duration::from_secs(120));
    println!("{backend} {n} hosts: deletes {}", cell(&delete));
    let rule_ops = hosts::add_rules(&srv, &cloud, wave / 2, 1000, gap);
    let rules = hosts::settle(&h, shape, &rule_ops, Duration::from_secs(120));
    println!("{backend} {n} hosts: rules {}", cell(&rules));
    let server_cpu = cpu_seconds(srv_pid) - cpu0;
    // The store restarts (the embedded one with its server); once it is back, a rule per
    // group, timed from the store's return to the last host of the group having it.
    match store.as_mut() {
        Some(s) => s.restart().expect("store restart"),
        None => srv.restart(),
    }
    let back = Instant::now();
    let mut marks = hosts::add_rules(&srv, &cloud, cloud.groups.len(), 3000, Duration::ZERO);
    for m in &mut marks {
        m.at = back;
    }
    let resync = hosts::settle(&h, shape, &marks, Duration::from_secs(120));
    let after = h.figures();
    let load = (
        after.iter().map(|f| f.reads).sum::<u64>() as f64 / n as f64,
        after.iter().map(|f| f.writes).sum::<u64>() as f64 / n as f64,
        after.iter().map(|f| f.watches).sum::<u64>() as f64 / n as f64,
    );
    h.stop();
    drop(srv);
    drop(store);
    Run {
        backend,
        shape,
        build,
        all_active,
        objects: hosts::spread(figures.iter().map(|f| f.objects)),
        flows: hosts::spread(figures.iter().map(|f| f.flows)),
        foreign: hosts::foreign_networks(&figures).len(),
        rss_per_host,
        create,
        delete,
        rules,
        resync,
        load,
        server_cpu,
    }
}

/// `p50 / p99 / max` in ms, with the pairs never reached and received without need.
fn cell(o: &Outcome) -> String {
    let l = &o.latencies;
    let mut s = format!(
        "{:.0} / {:.0} / {:.0}",
        ms(percentile(l, 0.5)),
        ms(percentile(l, 0.99)),
        ms(l.last().copied().unwrap_or_default())
    );
    if o.missing > 0 {
        let _ = write!(s, " ({} never)", o.missing);
    }
    let _ = write!(
        s,
        " (on the host: {:.1} / {:.1})",
        ms(percentile(&o.on_host, 0.5)),
        ms(percentile(&o.on_host, 0.99))
    );
    s
}

fn table(runs: &[Run]) -> String {
    let mut out = String::from(
        "| backend | hosts | ports | cloud made | all ACTIVE | objects per host (min/median/max) | flows per host | hosts holding a foreign network | memory per host | port create → all needing hosts, ms (p50/p99/max; on the host p50/p99) | port delete | rule change | received without need | resync after store restart, ms (p50/p99/max) | reads / writes / watches per host | server CPU in the waves |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} s | {:.1} s | {} / {} / {} | {} / {} / {} | {} | {:.2} MiB | {} | {} | {} | {} | {} | {:.1} / {:.1} / {:.1} | {:.1} s |",
            r.backend,
            r.shape.hosts,
            r.shape.hosts * r.shape.ports_per_host,
            r.build.as_secs_f64(),
            r.all_active.as_secs_f64(),
            r.objects.0,
            r.objects.1,
            r.objects.2,
            r.flows.0,
            r.flows.1,
            r.flows.2,
            r.foreign,
            r.rss_per_host,
            cell(&r.create),
            cell(&r.delete),
            cell(&r.rules),
            r.create.unneeded + r.delete.unneeded + r.rules.unneeded,
            cell(&r.resync),
            r.load.0,
            r.load.1,
            r.load.2,
            r.server_cpu,
        );
    }
    out
}

/// Latency (port create to every needing host, p50 and p99) against host count, a line per
/// backend and percentile, on a log-scaled host axis.
fn svg(runs: &[Run]) -> String {
    let (w, h, left, bottom, top, right) = (640.0, 400.0, 60.0, 40.0, 30.0, 170.0);
    let max_ms = runs
        .iter()
        .map(|r| ms(percentile(&r.create.latencies, 0.99)))
        .fold(10.0_f64, f64::max)
        * 1.1;
    let (lo, hi) = (10f64.log10(), 1000f64.log10());
    let x = |n: usize| left + ((n as f64).log10() - lo) / (hi - lo) * (w - left - right);
    let y = |v: f64| h - bottom - v / max_ms * (h - bottom - top);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"18\">Port create to its flows on every host that needs them (ms)</text>\n<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    for n in [10, 100, 300, 1000] {
        let _ = writeln!(
            s,
            "<text x=\"{:.0}\" y=\"{}\" text-anchor=\"middle\">{n} hosts</text>",
            x(n),
            h - bottom + 18.0
        );
    }
    for i in 0..=4 {
        let v = max_ms * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.0}\" text-anchor=\"end\">{v:.0}</text>",
            left - 6.0,
            y(v) + 4.0
        );
    }
    let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    let mut legend = 0;
    for (bi, b) in backends().iter().enumerate() {
        for (p, dash) in [(0.5, ""), (0.99, " stroke-dasharray=\"5,3\"")] {
            let pts: Vec<String> = runs
                .iter()
                .filter(|r| r.backend == *b)
                .map(|r| {
                    format!(
                        "{:.1},{:.1}",
                        x(r.shape.hosts),
                        y(ms(percentile(&r.create.latencies, p)))
                    )
                })
                .collect();
            if pts.is_empty() {
                continue;
            }
            let c = colours[bi % colours.len()];
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
                pts.join(" ")
            );
            let ly = top + 16.0 * f64::from(legend);
            legend += 1;
            let _ = writeln!(
                s,
                "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\">{b} p{:.0}</text>",
                w - right + 10.0,
                w - right + 34.0,
                w - right + 40.0,
                ly + 4.0,
                p * 100.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn main() {
    let wave = env("DF_HOSTS_WAVE", 100);
    let mut runs = Vec::new();
    for b in backends() {
        for n in counts() {
            let r = run(b, n, wave);
            println!("{}", table(std::slice::from_ref(&r)));
            runs.push(r);
        }
    }
    let body = format!(
        "## Scale out: simulated hosts (issue 26)\n\n`cargo bench -p dragonflow --bench hosts`. One `controller::simhost` per host in the bench's process (the real core and NB follower, a switch that counts flows), all sharing this machine's 2 cores with the server and the store. 20 ports a host; groups of 50 hosts with a router joining 10 networks and a security group admitting its own members (remote group). The waves: {wave} port creates, {gap} ms apart (each plugged on its host when the API answers), their deletes, {} rule changes; a change has arrived on a host when its batch is compiled and committed (on the port's own host: when its ACTIVE status is written). Hosts that need a change: the hosts of its group, and no other. Memory per host is the process's resident growth over the hosts, divided by their number.\n\n{}\n![latency against hosts](hosts-latency.svg)\n\n",
        wave / 2,
        table(&runs),
        gap = env("DF_HOSTS_GAP_MS", 50)
    );
    write_section("hosts", &body);
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/hosts-latency.svg");
    if let Err(e) = std::fs::write(&path, svg(&runs)) {
        eprintln!("cannot write {}: {e}", path.display());
    }
}
