//! The measurement behind `--pubsub`'s default (docs/operations.md, "Publish-subscribe
//! fan-out"): `DF_PUBSUB_HOSTS` hosts (default 1,000), each following one of 100
//! networks, while ports are created on all of them; once with every host on the
//! server's NB stream, once with every host on the fan-out (zmq). It reports how long the
//! hosts took to see every port and the server's CPU time. Ignored by default (minutes,
//! thousands of sockets): `cargo test -p dragonflow --test pubsub_scale -- --ignored
//! --nocapture`.

mod common;

use common::Server;
use nbdb::pubsub::PubsubWatch;
use nbdb::pubsub::transport::Subscription;
use nbdb::remote::Remote;
use nbdb::{Changes, Filter, Source};
use neutron_api::nb_auth::Principal;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const NETWORKS: usize = 100;
const PORTS: usize = 2_000;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The server's CPU time (user + system), from /proc.
fn cpu(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split(' ').filter_map(|x| x.parse().ok()).collect();
    // Fields 14 and 15 (utime, stime): 10 and 11 of the numbers after the state.
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// What one run measured.
#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Run {
    ports_per_s: f64,
    converged: Duration,
    server_cpu: Duration,
    hosts_cpu: Duration,
    gaps: u64,
}

fn run(pubsub: bool, hosts: usize) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("unlimited.toml");
    std::fs::write(&conf, testbed::bench::UNLIMITED_QUOTAS).expect("config");
    let url = format!("zmq://127.0.0.1:{}", free_port());
    let mut args = vec!["--noauth-admin", "--config", conf.to_str().expect("path")];
    if pubsub {
        args.extend(["--pubsub", &url]);
    }
    let srv = Server::start_args(&args);
    let nets: Vec<String> = (0..NETWORKS)
        .map(|i| {
            let (code, v) = srv.call(
                "POST",
                "/v2.0/networks",
                Some(json!({"network": {"name": format!("n{i}")}})),
            );
            assert_eq!(code, 201, "{v}");
            v["network"]["id"].as_str().expect("id").to_string()
        })
        .collect();
    let (_, v) = srv.nb_call("GET", "/nb/v1/revision", None);
    let after = v["revision"].as_u64().expect("revision");
    let token = common::token(Principal::Reader);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let seen = Arc::new(AtomicUsize::new(0));
    let gaps = Arc::new(AtomicUsize::new(0));
    let want_each = PORTS / NETWORKS;
    for h in 0..hosts {
        let (nb_url, token, url, net) = (
            srv.nb_url.clone(),
            token.clone(),
            url.clone(),
            nets[h % NETWORKS].clone(),
        );
        let (seen, gaps) = (seen.clone(), gaps.clone());
        rt.spawn(async move {
            let source: Arc<dyn Source> = Arc::new(Remote::with_token(&nb_url, Some(&token)));
            let filter = Filter::new(&["port".to_string()].into(), &BTreeSet::from([net.clone()]));
            let mut w = if pubsub {
                let sub = Subscription::start(&nbdb::pubsub::Endpoint::parse(&url).unwrap());
                Changes::Pubsub(Box::new(PubsubWatch::new(&sub, source, after, filter)))
            } else {
                source.watch(after, filter)
            };
            let mut n = 0;
            while n < want_each {
                match w.next().await {
                    Ok(c) if c.topic.as_deref() == Some(&net) => n += 1,
                    Ok(_) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            if let Changes::Pubsub(p) = &w {
                gaps.fetch_add(p.stats().gaps as usize, Ordering::Relaxed);
            }
            seen.fetch_add(1, Ordering::Relaxed);
            // Stay connected (as a host would) until the runtime goes.
            std::future::pending::<()>().await;
        });
    }
    // Let every host connect and settle.
    std::thread::sleep(Duration::from_secs(5 + hosts as u64 / 200));
    let pid = srv.pid().expect("pid").to_string();
    let (cpu0, hosts0) = (cpu(&pid), cpu("self"));
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..4 {
            let (url, nets) = (srv.url.clone(), &nets);
            s.spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                for i in (w..PORTS).step_by(4) {
                    let body = json!({"port": {"network_id": nets[i % NETWORKS], "name": format!("p{i}")}});
                    let r = agent.post(&format!("{url}/v2.0/ports")).send_json(&body);
                    assert!(matches!(&r, Ok(r) if r.status().as_u16() == 201), "{r:?}");
                }
            });
        }
    });
    let written = start.elapsed();
    while seen.load(Ordering::Relaxed) < hosts {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "hosts did not converge: {} of {hosts}",
            seen.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let converged = start.elapsed();
    let (server_cpu, hosts_cpu) = (cpu(&pid) - cpu0, cpu("self") - hosts0);
    eprintln!(
        "{} hosts, {}: {PORTS} ports written in {written:.1?}, every host had its ports after {converged:.1?}; server CPU {server_cpu:.1?}, hosts' CPU {hosts_cpu:.1?}; gaps filled {}",
        hosts,
        if pubsub { "pubsub (zmq)" } else { "NB stream" },
        gaps.load(Ordering::Relaxed)
    );
    rt.shutdown_background();
    Run {
        ports_per_s: PORTS as f64 / written.as_secs_f64(),
        converged,
        server_cpu,
        hosts_cpu,
        gaps: gaps.load(Ordering::Relaxed) as u64,
    }
}

#[test]
#[ignore = "a measurement: minutes and thousands of sockets"]
fn fan_out_against_the_nb_stream() {
    let hosts = std::env::var("DF_PUBSUB_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let stream = run(false, hosts);
    let fan_out = run(true, hosts);
    eprintln!("{hosts} hosts\n  NB stream: {stream:?}\n  fan-out:   {fan_out:?}");
}
