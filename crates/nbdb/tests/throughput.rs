//! Commit and replay throughput of every backend on its real server. Not a timed test:
//! ignored by default, prints figures. Run with
//! `cargo nextest run -p nbdb --run-ignored only --no-capture throughput`.

#[allow(dead_code)] // The conformance suite uses the rest of the harness.
mod harness;

use harness::{Backend, Kind};
use nbdb::{Count, Expect, Op};
use std::time::Instant;

async fn measure(kind: Kind) {
    let mut b = Backend::start(kind).await;
    b.retention = 100_000;
    let s = b.open().await;
    let base = s.revision().await.unwrap();
    let value = vec![b'x'; 512];

    let n = 300;
    let t = Instant::now();
    for i in 0..n {
        s.commit(vec![Op::put(
            "port",
            &format!("s{i}"),
            value.clone(),
            Expect::Absent,
        )])
        .await
        .unwrap();
    }
    let sequential = f64::from(n) / t.elapsed().as_secs_f64();

    let (tasks, each) = (16, 100);
    let t = Instant::now();
    let mut handles = Vec::new();
    for k in 0..tasks {
        let s = s.clone();
        let value = value.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..each {
                let ops = vec![
                    Op::put("port", &format!("c{k}-{i}"), value.clone(), Expect::Absent),
                    Op::put("claim", &format!("ip/{k}-{i}"), vec![], Expect::Absent),
                ];
                s.commit(ops).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let concurrent = f64::from(tasks * each) / t.elapsed().as_secs_f64();

    // The same with quota usage: every commit also moves one project's counter (the
    // worst case: all tasks on one counter), without a limit (an unlimited quota) and with
    // one that never binds (a finite quota).
    let mut counted = Vec::new();
    for (round, limit) in [None, Some(1_000_000)].into_iter().enumerate() {
        let t = Instant::now();
        let mut handles = Vec::new();
        for k in 0..tasks {
            let s = s.clone();
            let value = value.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..each {
                    let id = format!("q{round}-{k}-{i}");
                    let ops = vec![
                        Op::put("port", &id, value.clone(), Expect::Absent),
                        Op::put("claim", &format!("ip/{id}"), vec![], Expect::Absent),
                    ];
                    let counts = vec![Count::add("p/port", 1, limit)];
                    s.commit_counted(ops, counts).await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        counted.push(f64::from(tasks * each) / t.elapsed().as_secs_f64());
    }

    let t = Instant::now();
    let mut after = base;
    let mut changes = 0;
    loop {
        let batch = s.changes_since(after, 256).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.revision;
        changes += batch.len();
    }
    let replay = changes as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    let snap = s.snapshot().await.unwrap();
    let snapshot_ms = t.elapsed().as_secs_f64() * 1000.0;

    // Commit-to-watcher latency, the watcher on its own client.
    let watcher = b.open().await;
    let mut w = nbdb::Watch::new(watcher, s.revision().await.unwrap(), None);
    let rounds = 100;
    let t = Instant::now();
    for i in 0..rounds {
        s.commit(vec![Op::put("lat", &i.to_string(), vec![], Expect::Any)])
            .await
            .unwrap();
        w.next().await.unwrap();
    }
    let latency_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);

    println!(
        "{kind:?}: {sequential:.0} commits/s one at a time, {concurrent:.0} commits/s from \
         {tasks} tasks (2 puts each), {:.0} and {:.0} commits/s with one counter of \
         all tasks moved by each (no limit, a limit), replay {replay:.0} changes/s, snapshot of {} objects \
         in {snapshot_ms:.1} ms, commit + watch round {latency_ms:.2} ms",
        counted[0],
        counted[1],
        snap.records.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures"]
async fn throughput_zookeeper() {
    measure(Kind::ZooKeeper).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures"]
async fn throughput() {
    for kind in [Kind::Embedded, Kind::Etcd, Kind::Redis, Kind::ZooKeeper] {
        measure(kind).await;
    }
}
