//! Benchmark: the load heartbeats put on the NB store. 1,000 simulated controllers each
//! report every 30 s (Neutron's default `report_interval`), spread evenly over the
//! interval, through the server's write (`neutron_api::agents::beat::write`: read the
//! previous heartbeat, write the new one with its lease). Per backend: the writes per
//! second sustained and their latency, the burst of every controller reporting at once
//! (a restarted server), the bytes heartbeats add to the store, and the revisions they
//! take (none: they are leases, outside the model and its change log).
//!
//! `cargo bench -p dragonflow --bench heartbeats`; a quick run in a debug build:
//! `HEARTBEAT_AGENTS=20 HEARTBEAT_INTERVAL=1 HEARTBEAT_ROUNDS=2 cargo test -p dragonflow
//! --bench heartbeats`. `HEARTBEAT_BACKENDS=embedded,etcd,redis` picks the backends.

use model::agent::{self, Report};
use nbdb::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testbed::bench::{env, ms, percentile, write_section};

/// A backend under test: its name, an open store, and how to read its size on disk.
struct Backend {
    name: String,
    store: Arc<dyn Store>,
    file: Option<std::path::PathBuf>,
    _guard: Box<dyn std::any::Any>,
}

fn server(rt: &tokio::runtime::Runtime, kind: testbed::StoreKind) -> Backend {
    let srv = testbed::StoreServer::start(kind).expect("store server");
    let url = srv.url();
    // A just-started etcd may not have elected itself yet.
    let store = (0..100)
        .find_map(|_| match rt.block_on(nbdb::connect(&url)) {
            Ok(s) => Some(s),
            Err(_) => {
                std::thread::sleep(Duration::from_millis(100));
                None
            }
        })
        .expect("connect");
    Backend {
        name: format!("{kind:?}").to_lowercase(),
        store,
        file: None,
        _guard: Box::new(srv),
    }
}

fn embedded() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nb.redb");
    let store = nbdb::open(&format!("embedded:{}", path.display())).expect("open");
    Backend {
        name: "embedded".into(),
        store,
        file: Some(path),
        _guard: Box::new(dir),
    }
}

/// What controller `i` reports, as `controller::heartbeat::report` makes it.
fn report(i: usize, applied: u64) -> Report {
    let mut configurations = BTreeMap::new();
    configurations.insert("tunnel_types".into(), serde_json::json!(["geneve"]));
    configurations.insert(
        "bridge_mappings".into(),
        serde_json::json!({"physnet1": "br-ex"}),
    );
    configurations.insert("flows".into(), serde_json::json!(1200 + i));
    configurations.insert("devices".into(), serde_json::json!(40));
    Report {
        agent_type: agent::CONTROLLER_TYPE.into(),
        binary: agent::CONTROLLER_BINARY.into(),
        host: format!("compute-{i:04}"),
        topic: "N/A".into(),
        availability_zone: None,
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: "2026-12-02T10:00:00Z".into(),
        applied_revision: applied,
        configurations,
        lb_stats: Default::default(),
    }
}

const TTL: Duration = Duration::from_secs(75);

/// Every controller at once: how fast the store takes a whole cloud's heartbeats.
async fn burst(store: &Arc<dyn Store>, agents: usize) -> (f64, Vec<Duration>) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..agents)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                neutron_api::agents::beat::write(store.as_ref(), report(i, 1), TTL)
                    .await
                    .expect("heartbeat");
                t.elapsed()
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(agents);
    for t in tasks {
        lat.push(t.await.expect("writer"));
    }
    let rate = agents as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    (rate, lat)
}

/// `rounds` report intervals with each controller at its own offset in the interval.
async fn steady(
    store: &Arc<dyn Store>,
    agents: usize,
    interval: Duration,
    rounds: usize,
) -> (f64, Vec<Duration>, usize) {
    let start = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..agents)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let offset = interval.mul_f64(i as f64 / agents as f64);
                let mut lat = Vec::with_capacity(rounds);
                let mut late = 0;
                for r in 0..rounds {
                    let due = start + offset + interval * u32::try_from(r).unwrap_or(0);
                    if tokio::time::Instant::now() > due + Duration::from_millis(100) {
                        late += 1;
                    }
                    tokio::time::sleep_until(due).await;
                    let t = Instant::now();
                    neutron_api::agents::beat::write(store.as_ref(), report(i, r as u64), TTL)
                        .await
                        .expect("heartbeat");
                    lat.push(t.elapsed());
                }
                (lat, late)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut late = 0;
    for t in tasks {
        let (l, n) = t.await.expect("controller");
        lat.extend(l);
        late += n;
    }
    let rate = lat.len() as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    (rate, lat, late)
}

fn file_size(b: &Backend) -> Option<u64> {
    b.file
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
}

fn main() {
    let agents = env("HEARTBEAT_AGENTS", 1000);
    let interval = Duration::from_secs(env("HEARTBEAT_INTERVAL", 30) as u64);
    let rounds = env("HEARTBEAT_ROUNDS", 2);
    let backends =
        std::env::var("HEARTBEAT_BACKENDS").unwrap_or_else(|_| "embedded,etcd,redis".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    for name in backends.split(',').filter(|b| !b.is_empty()) {
        let b = match name {
            "embedded" => embedded(),
            "etcd" => server(&rt, testbed::StoreKind::Etcd),
            "redis" => server(&rt, testbed::StoreKind::Redis),
            other => panic!("unknown backend {other}"),
        };
        let store = b.store.clone();
        let commit_before = rt.block_on(store.last_commit()).expect("revision");
        let size_before = file_size(&b);
        let (burst_rate, burst_lat) = rt.block_on(burst(&store, agents));
        let size_first = file_size(&b);
        let (rate, lat, late) = rt.block_on(steady(&store, agents, interval, rounds));
        let size_after = file_size(&b);
        let commit_after = rt.block_on(store.last_commit()).expect("revision");
        let leases = rt.block_on(store.leases(agent::PREFIX)).expect("leases");
        assert_eq!(leases.len(), agents, "one heartbeat per controller");
        assert!(leases.iter().all(|l| l.live), "every controller alive");
        let value_bytes: usize = leases.iter().map(|l| l.value.len() + l.key.len()).sum();
        let expected = agents as f64 / interval.as_secs_f64();
        let disk = match (size_before, size_first, size_after) {
            (Some(a), Some(f), Some(z)) => format!(
                "file {:.1} KiB after the first round (+{:.1} KiB), +{:.1} KiB over {rounds} more rounds",
                f as f64 / 1024.0,
                f.saturating_sub(a) as f64 / 1024.0,
                z.saturating_sub(f) as f64 / 1024.0
            ),
            _ => "on the server (not measured here)".into(),
        };
        let line = format!(
            "| {} | {agents} | {:.1} (expected {expected:.1}) | {:.2} / {:.2} ms | {late} | {:.0}/s, p99 {:.1} ms | {:.1} KiB ({} B each) | {disk} | {} |",
            b.name,
            rate,
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            burst_rate,
            ms(percentile(&burst_lat, 0.99)),
            value_bytes as f64 / 1024.0,
            value_bytes / agents.max(1),
            commit_after - commit_before,
        );
        println!("{line}");
        rows.push(line);
    }
    let body = format!(
        "## Service health: heartbeat load on the store\n\n\
         `cargo bench -p dragonflow --bench heartbeats` (release): {agents} simulated controllers, each reporting every {} s ({rounds} rounds), spread \
         evenly over the interval, through the server's write (read the previous heartbeat, \
         write the new one with a 75 s lease).\n\n\
         | backend | controllers | writes/s sustained | latency p50 / p99 | late writes | all at once | live data (keys + values) | on disk | revisions taken |\n\
         |---|---|---|---|---|---|---|---|---|\n{}\n",
        interval.as_secs(),
        rows.join("\n")
    );
    if cfg!(debug_assertions) {
        println!("(a debug build: not recorded)");
    } else {
        write_section("heartbeats", &body);
    }
}
