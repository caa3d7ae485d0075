//! Benchmark: port creations as an outside client sees them. A release `dragonflow server`
//! (embedded store, durable commits, `--noauth-admin`, its default logging to a file) and
//! Debian's `wrk` load generator in a separate process, 16 keep-alive connections POSTing
//! `/v2.0/ports` (benches/wrk/post_port.lua) on one /12 subnet, round after round until the
//! store holds more than DF_WRK_PORTS ports. Each round reports wrk's own count and
//! latency percentiles, the server's CPU per create, and how busy the machine was (wrk,
//! the server and anyone else share its cores). Records in docs/benchmarks.md.
//!
//! `cargo bench -p dragonflow --bench api_wrk` (needs `wrk`, installed by scripts/setup).
//! Env: DF_WRK_PORTS (36000), DF_WRK_SECONDS per round (5), DF_WRK_CONNECTIONS (16),
//! DF_WRK_THREADS (2), DF_WRK_ROUNDS at most (40), DF_WRK_RECORD=0 to leave the docs alone.
//! With `DF_SERVER_LOG=info,nbdb=debug` each round also reports the embedded store's group
//! commits (from the server's log): how many, their size, and the writer thread's time.

#[path = "../tests/common/mod.rs"]
mod common;

use common::Server;
use serde_json::json;
use std::process::Command;
use testbed::bench::{cpu_seconds, env, write_section};

/// The machine's (busy, total) jiffies from /proc/stat, all cores.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let nums: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = nums.iter().sum();
    // idle and iowait are fields 4 and 5.
    let idle = nums.get(3).copied().unwrap_or(0) + nums.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// wrk's summary line (see post_port.lua) as `key=value` pairs.
fn summary(out: &str) -> Option<std::collections::HashMap<String, f64>> {
    let line = out.lines().find(|l| l.starts_with("DFWRK "))?;
    Some(
        line.split_whitespace()
            .skip(1)
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect(),
    )
}

/// `line` without its ANSI colour codes (the server colours its log even into a file).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

/// The embedded store's group commits in `log` (its `store batch committed` debug lines):
/// batches, mean jobs a batch, mean µs applying and committing one, and the writer's busy
/// seconds.
fn batches(log: &str) -> Option<(usize, f64, f64, f64, f64)> {
    let field = |l: &str, k: &str| -> Option<f64> {
        let v = l.split(&format!("{k}=")).nth(1)?;
        let v: String = v.chars().take_while(char::is_ascii_digit).collect();
        v.parse().ok()
    };
    let rows: Vec<(f64, f64, f64)> = log
        .lines()
        .filter(|l| l.contains("store batch committed"))
        .map(plain)
        .filter_map(|l| {
            Some((
                field(&l, "jobs")?,
                field(&l, "apply_us")?,
                field(&l, "commit_us")?,
            ))
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    let n = rows.len() as f64;
    let sum = |f: fn(&(f64, f64, f64)) -> f64| rows.iter().map(f).sum::<f64>();
    let (jobs, apply, commit) = (sum(|r| r.0), sum(|r| r.1), sum(|r| r.2));
    Some((
        rows.len(),
        jobs / n,
        apply / n,
        commit / n,
        (apply + commit) / 1e6,
    ))
}

struct Round {
    store_before: usize,
    creates: usize,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: usize,
    server_us_per_create: f64,
    machine_busy: f64,
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` passes nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("api_wrk: wrk is not installed (scripts/setup installs it); skipped");
        return;
    }
    let target = env("DF_WRK_PORTS", 36_000);
    let seconds = env("DF_WRK_SECONDS", 5);
    let conns = env("DF_WRK_CONNECTIONS", 16);
    let threads = env("DF_WRK_THREADS", 2);
    let max_rounds = env("DF_WRK_ROUNDS", 40);
    // Tens of thousands of ports in one project: no quota.
    let server = Server::start_unlimited();
    let pid = server.pid().expect("server pid");
    let net = server.network("wrk", "10.16.0.0/12");
    let net_id = net["id"].as_str().expect("network id").to_string();
    // Warm-up: the default security group and the first allocations.
    server.create("ports", "port", json!({"network_id": net_id}));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/wrk/post_port.lua");
    let url = format!("{}/v2.0/ports", server.url);

    let mut rounds = Vec::new();
    let mut store = 1;
    let mut log_seen = server.log().len();
    while store <= target && rounds.len() < max_rounds {
        let (cpu0, m0) = (cpu_seconds(pid), machine_jiffies());
        let out = Command::new("wrk")
            .args([
                "--latency",
                "-c",
                &conns.to_string(),
                "-t",
                &threads.to_string(),
            ])
            .args(["-d", &format!("{seconds}s"), "-s", script, &url])
            .env("DF_NETWORK_ID", &net_id)
            .output()
            .expect("run wrk");
        let (cpu1, m1) = (cpu_seconds(pid), machine_jiffies());
        let log = server.log();
        if let Some((n, jobs, apply, commit, busy)) = batches(log.get(log_seen..).unwrap_or("")) {
            println!(
                "  store: {n} group commits of {jobs:.1} creates, {apply:.0} µs applying + \
                 {commit:.0} µs committing each; the writer busy {busy:.2} s of {seconds} s"
            );
        }
        log_seen = log.len();
        let text = String::from_utf8_lossy(&out.stdout);
        let s = summary(&text).unwrap_or_else(|| {
            panic!(
                "no summary from wrk: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let requests = s["requests"] as usize;
        let errors = (s["status_errors"] + s["socket_errors"]) as usize;
        let creates = requests - errors.min(requests);
        let r = Round {
            store_before: store,
            creates,
            rate: creates as f64 / (s["duration_us"] / 1e6),
            p50_ms: s["p50_us"] / 1000.0,
            p99_ms: s["p99_us"] / 1000.0,
            max_ms: s["max_us"] / 1000.0,
            errors,
            server_us_per_create: (cpu1 - cpu0) * 1e6 / creates.max(1) as f64,
            machine_busy: (m1.0 - m0.0) as f64 / (m1.1 - m0.1).max(1) as f64,
        };
        println!(
            "round {}: store {} -> {}: {:.0} creates/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, \
             errors {}, server CPU {:.0} us a create, machine {:.0}% busy",
            rounds.len() + 1,
            store,
            store + creates,
            r.rate,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.errors,
            r.server_us_per_create,
            r.machine_busy * 100.0
        );
        store += creates;
        rounds.push(r);
        if creates == 0 {
            break;
        }
    }
    drop(server);
    if env("DF_WRK_RECORD", 1) == 0 {
        return;
    }
    let mut rows = String::new();
    for (i, r) in rounds.iter().enumerate() {
        rows.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.1} ms | {} | {:.0} µs | {:.0} % |\n",
            i + 1,
            r.store_before,
            r.creates,
            r.rate,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.errors,
            r.server_us_per_create,
            r.machine_busy * 100.0
        ));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let section = format!(
        "## API: port creation as an outside client sees it (wrk)\n\n\
         `cargo bench -p dragonflow --bench api_wrk`, {date}: Debian's `wrk` (`-c{conns} -t{threads} \
         -d{seconds}s --latency -s benches/wrk/post_port.lua`) POSTs `/v2.0/ports` on one /12 subnet \
         against a release `dragonflow server` (embedded store, durable group commits, \
         `--noauth-admin`, its default `info` log to a file), round after round until the store \
         holds more than {target} ports. Machine: {cores} cores ({cpu}), shared by wrk, the server \
         and other work (load average at the end: {load}). Creates per second and latency are \
         wrk's own (201 answers only; errors are any other answer); server CPU is the server \
         process's user + system time over the round divided by its creates; busy is the whole \
         machine's.\n\n\
         | round | ports in store before | creates | creates/s | p50 | p99 | max | errors | server CPU a create | machine busy |\n\
         |---|---|---|---|---|---|---|---|---|---|\n{rows}",
        date = model::time::now().get(..10).unwrap_or(""),
        cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
        load = load
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    write_section("api-wrk-port-create", &section);
}
