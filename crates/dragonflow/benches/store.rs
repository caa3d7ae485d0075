//! Benchmark: the NB store's write throughput and write-to-delivery latency through
//! `Watch`, at 1, 10 and 100 concurrent watchers, per backend. Prints the figures and
//! records them in docs/benchmarks.md.
//!
//! `cargo bench -p dragonflow --bench store`

use nbdb::{Expect, Op, Store, Watch};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testbed::bench::{ms, percentile, write_section};

const WRITES_THROUGHPUT: usize = 5000;
const WRITERS: usize = 16;
const WRITES_LATENCY: usize = 500;

/// A backend under test: its name and an open store.
struct Backend {
    name: String,
    store: Arc<dyn Store>,
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
        _guard: Box::new(srv),
    }
}

fn embedded() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = nbdb::open(&format!(
        "embedded:{}",
        dir.path().join("nb.redb").display()
    ))
    .expect("open");
    Backend {
        name: "embedded".into(),
        store,
        _guard: Box::new(dir),
    }
}

fn put(id: String, value: Vec<u8>) -> Op {
    Op::put("bench", &id, value, Expect::Any).with_topic(Some("p"))
}

async fn throughput(store: &Arc<dyn Store>) -> f64 {
    let start = Instant::now();
    let per = WRITES_THROUGHPUT / WRITERS;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    store
                        .commit(vec![put(format!("t{w}-{i}"), vec![0; 200])])
                        .await
                        .expect("commit");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    (per * WRITERS) as f64 / start.elapsed().as_secs_f64()
}

/// p50 and p99 from a commit starting to each watcher receiving it.
async fn delivery(store: &Arc<dyn Store>, watchers: usize) -> (Duration, Duration) {
    let base = Instant::now();
    let from = store.revision().await.expect("revision");
    let tasks: Vec<_> = (0..watchers)
        .map(|_| {
            let mut w = Watch::new(store.clone(), from, None);
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(WRITES_LATENCY);
                while lat.len() < WRITES_LATENCY {
                    let c = w.next().await.expect("watch");
                    let sent = c
                        .value
                        .as_deref()
                        .and_then(|v| v.get(..8))
                        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
                    if let Some(sent) = sent {
                        lat.push(base.elapsed().saturating_sub(Duration::from_nanos(sent)));
                    }
                }
                lat
            })
        })
        .collect();
    for i in 0..WRITES_LATENCY {
        let sent = base.elapsed().as_nanos() as u64;
        store
            .commit(vec![put(format!("l{i}"), sent.to_le_bytes().to_vec())])
            .await
            .expect("commit");
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("watcher"));
    }
    all.sort();
    (percentile(&all, 0.5), percentile(&all, 0.99))
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = String::new();
    let backends = [
        embedded(),
        server(&rt, testbed::StoreKind::Etcd),
        server(&rt, testbed::StoreKind::Redis),
    ];
    for backend in backends {
        let store = backend.store.clone();
        let rate = rt.block_on(throughput(&store));
        println!(
            "{}: {rate:.0} writes/s ({WRITERS} concurrent writers)",
            backend.name
        );
        let mut cells = Vec::new();
        for watchers in [1, 10, 100] {
            let (p50, p99) = rt.block_on(delivery(&store, watchers));
            println!(
                "{}: {watchers} watchers: write-to-delivery p50 {:.2} ms, p99 {:.2} ms",
                backend.name,
                ms(p50),
                ms(p99)
            );
            cells.push(format!("{:.2} / {:.2}", ms(p50), ms(p99)));
        }
        rows.push_str(&format!(
            "| {} | {rate:.0} | {} |\n",
            backend.name,
            cells.join(" | ")
        ));
    }
    let section = format!(
        "## NB store: writes and write-to-delivery latency\n\n\
         `cargo bench -p dragonflow --bench store`: throughput of {WRITES_THROUGHPUT} single-object commits by {WRITERS} \
         concurrent writers (durable commits); then {WRITES_LATENCY} sequential commits while 1, 10 or 100 `Watch`ers \
         follow the change log, latency from the start of each commit to its delivery to each watcher (p50 / p99, ms). \
         Target for the embedded store: p99 under 5 ms with 100 watchers. The embedded store writes to the disk; \
         the etcd and Redis servers keep their data on tmpfs (etcd fsyncs every commit), on loopback.\n\n\
         | backend | writes/s | 1 watcher | 10 watchers | 100 watchers |\n|---|---|---|---|---|\n{rows}"
    );
    write_section("store", &section);
}
