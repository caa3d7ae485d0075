//! The conformance suite's counters (`nbdb::Count`, quota usage), run unchanged against
//! every backend on its real server (see `harness`): counters move only with their
//! commit, a limited increment is checked inside the store's write transaction (exact
//! under concurrency), and counters stay out of listings, snapshots and the change log.

// The rest of the harness (compaction, garbage) serves the main suite.
#[allow(dead_code)]
mod harness;

use harness::Backend;
use nbdb::{Count, Expect, Op, Store, StoreError};
use std::sync::Arc;

fn put(table: &str, id: &str) -> Op {
    Op::put(table, id, id.as_bytes().to_vec(), Expect::Absent)
}

fn is_over(e: &StoreError, name: &str) -> bool {
    matches!(e, StoreError::OverLimit { counter } if counter == name)
}

async fn counters(s: &Arc<dyn Store>, prefix: &str) -> Vec<(String, i64)> {
    s.counters(prefix).await.unwrap()
}

async fn counters_move_with_their_commit_only(b: &mut Backend) {
    let s = b.open().await;
    let add = |d: i64, l: Option<i64>| vec![Count::add("p/network", d, l)];
    s.commit_counted(vec![put("network", "a")], add(1, Some(2)))
        .await
        .unwrap();
    s.commit_counted(vec![put("network", "b")], add(1, Some(2)))
        .await
        .unwrap();
    assert_eq!(counters(&s, "p/").await, [("p/network".to_string(), 2)]);
    // At the limit: refused, and nothing of the commit is written.
    let rev = s.revision().await.unwrap();
    let e = s
        .commit_counted(vec![put("network", "c")], add(1, Some(2)))
        .await
        .unwrap_err();
    assert!(is_over(&e, "p/network"), "{e}");
    assert!(s.get("network", "c").await.unwrap().is_none());
    assert_eq!(
        s.revision().await.unwrap(),
        rev,
        "a refused commit takes no revision"
    );
    // A failed expectation leaves the counters alone.
    let e = s
        .commit_counted(vec![put("network", "a")], add(1, None))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    assert_eq!(counters(&s, "p/").await, [("p/network".to_string(), 2)]);
    // The limit lowered below the count: increments refused, decrements go through.
    let e = s
        .commit_counted(vec![put("network", "c")], add(1, Some(1)))
        .await
        .unwrap_err();
    assert!(is_over(&e, "p/network"), "{e}");
    s.commit_counted(
        vec![Op::delete("network", "a", Expect::Present)],
        add(-1, Some(1)),
    )
    .await
    .unwrap();
    assert_eq!(counters(&s, "p/").await, [("p/network".to_string(), 1)]);
    // Several counters in one commit, all or nothing; and a commit of counters alone.
    let e = s
        .commit_counted(
            vec![put("port", "x")],
            vec![
                Count::add("p/port", 1, Some(5)),
                Count::add("p2/port", 1, Some(0)),
            ],
        )
        .await
        .unwrap_err();
    assert!(is_over(&e, "p2/port"), "{e}");
    assert_eq!(counters(&s, "p/").await, [("p/network".to_string(), 1)]);
    s.commit_counted(
        vec![],
        vec![Count::set("p/port", 7), Count::set("p2/port", 3)],
    )
    .await
    .unwrap();
    assert_eq!(
        counters(&s, "p").await,
        [
            ("p/network".to_string(), 1),
            ("p/port".to_string(), 7),
            ("p2/port".to_string(), 3)
        ]
    );
    assert_eq!(counters(&s, "p2/").await, [("p2/port".to_string(), 3)]);
    // A counter back at zero is gone (or reads 0).
    s.commit_counted(vec![], vec![Count::add("p2/port", -3, None)])
        .await
        .unwrap();
    assert!(
        counters(&s, "p2/").await.iter().all(|(_, v)| *v == 0),
        "{:?}",
        counters(&s, "p2/").await
    );
    // Invalid: the same counter twice, or nothing at all.
    let twice = vec![Count::add("q", 1, None), Count::set("q", 1)];
    assert!(matches!(
        s.commit_counted(vec![put("t", "1")], twice).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.commit_counted(vec![], vec![]).await,
        Err(StoreError::Invalid(_))
    ));
    // Counters are no objects: not in snapshots, listings or the change log.
    let snap = s.snapshot().await.unwrap();
    let tables: std::collections::BTreeSet<_> =
        snap.records.iter().map(|r| r.table.as_str()).collect();
    assert_eq!(tables, ["network"].into(), "{tables:?}");
    for c in s.changes_since(0, 1000).await.unwrap() {
        assert!(c.table == "network", "{c:?}");
    }
}

async fn concurrent_limited_increments_stop_exactly_at_the_limit(b: &mut Backend) {
    let stores = [b.open().await, b.open().await];
    let mut tasks = Vec::new();
    for i in 0..100usize {
        let s = stores[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            s.commit_counted(
                vec![put("network", &format!("n{i:03}"))],
                vec![Count::add("p/network", 1, Some(10))],
            )
            .await
        }));
    }
    let (mut ok, mut over) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) if is_over(&e, "p/network") => over += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, over), (10, 90));
    let s = &stores[1];
    assert_eq!(s.list("network", "").await.unwrap().len(), 10);
    assert_eq!(counters(s, "p/").await, [("p/network".to_string(), 10)]);
}

/// Far from the limit, and then up to it: exactly the limit's worth go through (etcd
/// shares the room left among its counter's shards while there is room, then compares
/// exactly), with unlimited increments of the same counter from elsewhere mixed in.
async fn a_roomy_limit_holds_under_concurrency_up_to_the_last_one(b: &mut Backend) {
    let stores = [b.open().await, b.open().await];
    s_commit(&stores[0], "pre", Count::add("p/port", 5, None))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200usize {
        let s = stores[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            s_commit(&s, &format!("r{i:03}"), Count::add("p/port", 1, Some(60))).await
        }));
    }
    let (mut ok, mut over) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) if is_over(&e, "p/port") => over += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, over), (55, 145));
    assert_eq!(
        counters(&stores[1], "p/").await,
        [("p/port".to_string(), 60)]
    );
}

async fn s_commit(s: &Arc<dyn Store>, id: &str, c: Count) -> Result<u64, StoreError> {
    s.commit_counted(vec![put("port", id)], vec![c]).await
}

async fn counters_survive_reopening_and_a_restart(b: &mut Backend) {
    {
        let s = b.open().await;
        s.commit_counted(vec![put("port", "a")], vec![Count::add("p/port", 4, None)])
            .await
            .unwrap();
    }
    b.restart().await;
    let s = b.open().await;
    let mut got = Vec::new();
    for _ in 0..100 {
        match s.counters("p/").await {
            Ok(c) => {
                got = c;
                break;
            }
            Err(StoreError::Unavailable(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, [("p/port".to_string(), 4)]);
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        macro_rules! backend {
            ($kind:ident, $module:ident) => {
                mod $module {
                    $(
                        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                        async fn $name() {
                            let mut b = super::Backend::start(super::harness::Kind::$kind).await;
                            super::$name(&mut b).await;
                        }
                    )*
                }
            };
        }
        backend!(Embedded, embedded);
        backend!(Etcd, etcd);
        backend!(Redis, redis);
        backend!(ZooKeeper, zookeeper);
    };
}

conformance!(
    counters_move_with_their_commit_only,
    concurrent_limited_increments_stop_exactly_at_the_limit,
    a_roomy_limit_holds_under_concurrency_up_to_the_last_one,
    counters_survive_reopening_and_a_restart,
);
