//! Benchmark: port creations through Keystone auth (a real Keystone, warm token cache)
//! against noauth, in the same run on the same machine: creates per second and latency
//! percentiles of each, recorded in docs/benchmarks.md.
//!
//! `cargo bench -p dragonflow --bench keystone` (env: DF_BENCH_PORTS, DF_BENCH_CLIENTS;
//! needs Keystone from scripts/setup).

use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testbed::bench::{env, ms, percentile, write_section};
use testbed::keystone::{Keystone, NEUTRON_PASSWORD};

/// Who a client is: a Keystone token, or (noauth) a member of a project by its headers.
#[derive(Clone)]
enum Auth {
    Token(String),
    Member(String),
}

fn post(agent: &ureq::Agent, url: &str, auth: &Auth, body: &Value) -> Value {
    let mut req = agent.post(url);
    req = match auth {
        Auth::Token(t) => req.header("x-auth-token", t),
        // The same caller as the token's: a member of the project, so the policy does
        // the same work in both modes.
        Auth::Member(p) => req
            .header("x-project-id", p)
            .header("x-roles", "member,reader"),
    };
    let mut resp = req.send_json(body).expect("POST");
    assert_eq!(resp.status().as_u16(), 201);
    resp.body_mut().read_json().expect("json")
}

/// A release server on its own store; `config` is the config file's text.
fn server(dir: &std::path::Path, name: &str, config: &str, args: &[&str]) -> (Child, String) {
    let free = || {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let (addr, nb_addr) = (free(), free());
    let conf = dir.join(format!("{name}.toml"));
    std::fs::write(&conf, config).expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .arg("--config")
        .arg(&conf)
        .args(["server", "--listen", &addr.to_string()])
        .args(["--nb-listen", &nb_addr.to_string(), "--db"])
        .arg(format!(
            "embedded:{}",
            dir.join(format!("{name}.redb")).display()
        ))
        .args(args)
        .env("DRAGONFLOW_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .expect("server");
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let start = Instant::now();
    while agent.get(&format!("http://{addr}/")).call().is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, format!("http://{addr}/v2.0"))
}

struct Run {
    rate: f64,
    latencies: Vec<Duration>,
}

/// `ports` creates by one client per identity, after a warm-up call each.
fn run(base: &str, tokens: &[Auth], ports: usize) -> Run {
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let t0 = &tokens[0];
    let net = post(
        &agent,
        &format!("{base}/networks"),
        t0,
        &json!({"network": {"name": "bench"}}),
    );
    let net_id = net["network"]["id"].as_str().expect("id").to_string();
    post(
        &agent,
        &format!("{base}/subnets"),
        t0,
        &json!({"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "10.128.0.0/16"}}),
    );
    let per_client = ports / tokens.len();
    let body = json!({"port": {"network_id": net_id}});
    let barrier = std::sync::Barrier::new(tokens.len() + 1);
    let mut began = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = tokens
            .iter()
            .map(|t| {
                let (base, body, barrier) = (&base, &body, &barrier);
                s.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                    let url = format!("{base}/ports");
                    // Warm: the token's verdict cached, the connection open.
                    post(&agent, &url, t, body);
                    barrier.wait();
                    (0..per_client)
                        .map(|_| {
                            let t0 = Instant::now();
                            post(&agent, &url, t, body);
                            t0.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        barrier.wait();
        began = Instant::now();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect()
    });
    let wall = began.elapsed();
    latencies.sort();
    Run {
        rate: latencies.len() as f64 / wall.as_secs_f64(),
        latencies,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` passes nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let ports = env("DF_BENCH_PORTS", 3000);
    let clients = env("DF_BENCH_CLIENTS", 16);
    let ks = Keystone::start(Duration::from_secs(3600)).expect("Keystone (scripts/setup)");
    let project = ks.project("bench").expect("project");
    ks.user("bencher", "bench-pw", &project, &["member"])
        .expect("user");
    let dir = tempfile::tempdir().expect("tempdir");
    // Thousands of ports in one project: no quota, in both modes.
    let unlimited = testbed::bench::UNLIMITED_QUOTAS;
    let (mut noauth, noauth_url) = server(dir.path(), "noauth", unlimited, &[]);
    let config = format!(
        "{unlimited}\n[neutron]\nauth_strategy = \"keystone\"\n\n[keystone_authtoken]\n\
         auth_url = \"{}/v3\"\nusername = \"neutron\"\npassword = \"{NEUTRON_PASSWORD}\"\n\
         project_name = \"service\"\n",
        ks.url()
    );
    let (mut keystone, keystone_url) = server(dir.path(), "keystone", &config, &[]);
    // One token per client, as many clients of one project would have.
    let tokens: Vec<Auth> = (0..clients)
        .map(|_| Auth::Token(ks.token("bencher", "bench-pw", "bench").expect("token")))
        .collect();
    let none: Vec<Auth> = vec![Auth::Member(project.clone()); clients];
    // Alternating rounds, so a neighbour's load falls on both alike.
    let mut results: [(Vec<f64>, Vec<Duration>); 2] = Default::default();
    for round in 0..2 {
        for (i, (url, toks)) in [(&noauth_url, &none), (&keystone_url, &tokens)]
            .into_iter()
            .enumerate()
        {
            let r = run(url, toks, ports / 2);
            println!(
                "round {round} {}: {:.0} creates/s p99 {:.2} ms",
                ["noauth", "keystone"][i],
                r.rate,
                ms(percentile(&r.latencies, 0.99))
            );
            results[i].0.push(r.rate);
            results[i].1.extend(r.latencies);
        }
    }
    let _ = (noauth.kill(), keystone.kill());
    let _ = (noauth.wait(), keystone.wait());
    let validations: usize = ks.validations().values().sum();
    let mut rows = String::new();
    let mut rates = [0.0; 2];
    for (i, (r, l)) in results.iter_mut().enumerate() {
        l.sort();
        rates[i] = r.iter().sum::<f64>() / r.len() as f64;
        rows.push_str(&format!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms |\n",
            ["noauth", "keystone (warm cache)"][i],
            rates[i],
            ms(percentile(l, 0.50)),
            ms(percentile(l, 0.99)),
            ms(l[l.len() - 1])
        ));
    }
    let ratio = rates[1] / rates[0] * 100.0;
    println!(
        "keystone/noauth: {ratio:.1} % of the throughput; Keystone validations: {validations}"
    );
    let section = format!(
        "## API: port creation through Keystone auth\n\n\
         `cargo bench -p dragonflow --bench keystone`: {ports} `POST /v2.0/ports` per mode in two alternating rounds, \
         by {clients} concurrent keep-alive clients, against two release `dragonflow server`s in the same run \
         (embedded store each): one with `auth_strategy = keystone` behind a real Keystone (gunicorn, sqlite, Fernet \
         tokens; one token per client, its verdict cached by a first call), one with noauth whose clients name the \
         same project as members (`X-Project-Id`, `X-Roles: member,reader`), so the policy does the same work in \
         both. Keystone saw \
         {validations} validations in all.\n\n\
         | mode | creates per second | p50 | p99 | max |\n|---|---|---|---|---|\n{rows}\n\
         Keystone's throughput is {ratio:.1} % of noauth's (target >= 90 %; p99 target < 20 ms).\n"
    );
    write_section("api-keystone", &section);
}
