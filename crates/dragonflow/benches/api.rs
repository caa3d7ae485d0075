//! Benchmark: port creations through the HTTP API of a real `dragonflow server` (release
//! build, embedded store, durable commits) by clients in this process, on a fresh store with
//! the server logging at `warn` (what an outside client sees of a grown store: `api_wrk`).
//! Prints creates per second and latency percentiles, and records them in
//! docs/benchmarks.md.
//!
//! `cargo bench -p dragonflow --bench api` (env: DF_BENCH_PORTS, DF_BENCH_CLIENTS).

use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testbed::bench::{env, ms, percentile, write_section};

fn post(agent: &ureq::Agent, url: &str, body: &Value) -> Value {
    let mut resp = agent.post(url).send_json(body).expect("POST");
    assert_eq!(resp.status().as_u16(), 201);
    resp.body_mut().read_json().expect("json")
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` passes nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let ports = env("DF_BENCH_PORTS", 5000);
    let clients = env("DF_BENCH_CLIENTS", 16);
    let dir = tempfile::tempdir().expect("tempdir");
    let free = || {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let (addr, nb_addr) = (free(), free());
    // The clients send no project: they act as the default project's admin, with no
    // quota (thousands of ports in one project).
    let conf = dir.path().join("unlimited.toml");
    std::fs::write(&conf, testbed::bench::UNLIMITED_QUOTAS).expect("config");
    let mut server = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .arg("--config")
        .arg(&conf)
        .args(["server", "--noauth-admin", "--listen", &addr.to_string()])
        .args(["--nb-listen", &nb_addr.to_string(), "--db"])
        .arg(format!("embedded:{}", dir.path().join("nb.redb").display()))
        .env("DRAGONFLOW_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .expect("server");
    let base = format!("http://{addr}/v2.0");
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let start = Instant::now();
    while agent.get(&format!("http://{addr}/")).call().is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let net = post(
        &agent,
        &format!("{base}/networks"),
        &json!({"network": {"name": "bench"}}),
    );
    let net_id = net["network"]["id"].as_str().expect("id").to_string();
    post(
        &agent,
        &format!("{base}/subnets"),
        &json!({"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "10.128.0.0/16"}}),
    );
    // Warm-up: the default security group and the first allocations.
    post(
        &agent,
        &format!("{base}/ports"),
        &json!({"port": {"network_id": net_id}}),
    );

    let per_client = ports / clients;
    let began = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let (base, net_id) = (&base, &net_id);
                s.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                    let body = json!({"port": {"network_id": net_id}});
                    (0..per_client)
                        .map(|_| {
                            let t = Instant::now();
                            post(&agent, &format!("{base}/ports"), &body);
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect()
    });
    let wall = began.elapsed();
    let _ = server.kill();
    let _ = server.wait();
    latencies.sort();
    let n = latencies.len();
    let rate = n as f64 / wall.as_secs_f64();
    let (p50, p99, max) = (
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[n - 1],
    );
    println!(
        "port creates: {n} by {clients} clients in {:.2} s",
        wall.as_secs_f64()
    );
    println!(
        "rate: {rate:.0} creates/s   p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        ms(p50),
        ms(p99),
        ms(max)
    );

    let section = format!(
        "## API: port creation by the bench's own clients (embedded store)\n\n\
         `cargo bench -p dragonflow --bench api`: {n} `POST /v2.0/ports` on one /16 subnet by {clients} concurrent \
         keep-alive HTTP clients (threads of the bench process) against a release `dragonflow server` on the same \
         2-core machine (clients and server share the cores), embedded store with durable (fsync) group commits, a \
         fresh store, the server's log at `warn`. Each create allocates an IP, a MAC and a port key, and assigns the \
         project's default security group. Not what an outside client sees of a grown store: see the `api_wrk` \
         section.\n\n\
         | measure | value | target |\n|---|---|---|\n\
         | port creates per second | {rate:.0} | >= 1000 |\n\
         | p50 latency | {:.2} ms | |\n\
         | p99 latency | {:.2} ms | < 20 ms |\n\
         | max latency | {:.2} ms | |\n",
        ms(p50),
        ms(p99),
        ms(max)
    );
    write_section("api-port-create", &section);
}
