//! One conformance suite, run unchanged against every backend, each on its real server
//! (see `harness`): objects, expectations, atomicity, revisions, concurrency, snapshot +
//! watch, compaction, persistence, restarts and corrupt data.

mod harness;

use harness::{Backend, Kind};
use nbdb::{Change, Expect, Op, Revision, Store, StoreError, Watch};
use std::sync::Arc;
use std::time::Duration;

fn put(table: &str, id: &str, value: &str, expect: Expect) -> Op {
    Op::put(table, id, value.as_bytes().to_vec(), expect)
}

fn is_conflict(e: &StoreError, t: &str, i: &str) -> bool {
    matches!(e, StoreError::Conflict { table, id } if table == t && id == i)
}

/// The next change of a watch, retrying while the server is away, failing the test if
/// nothing comes within 20 s.
async fn next(w: &mut Watch) -> Change {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, w.next()).await {
            Err(_) => panic!("no change within 20 s (watch at {})", w.revision()),
            Ok(Ok(c)) => return c,
            Ok(Err(StoreError::Unavailable(_))) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Err(e)) => panic!("watch failed: {e}"),
        }
    }
}

/// Commits, retrying while the server is coming back.
async fn commit_retrying(s: &Arc<dyn Store>, ops: Vec<Op>) -> Revision {
    for _ in 0..200 {
        match s.commit(ops.clone()).await {
            Ok(r) => return r,
            Err(StoreError::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("commit: {e}"),
        }
    }
    panic!("store did not come back");
}

fn ids(records: &[nbdb::Record]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

async fn put_get_list_with_prefixes_and_order(b: &mut Backend) {
    let s = b.open().await;
    // Where revisions start is the backend's business (etcd starts at 1); from then on
    // they go up by one per commit.
    assert!(s.revision().await.unwrap() <= 1);
    let mut revs = std::collections::HashMap::new();
    for id in [
        "mac/x", "ip/s2/a", "b", "ip/s1/b", "a", "ip/s1/a", "ip/s10/a",
    ] {
        let r = s
            .commit(vec![put("claim", id, id, Expect::Absent)])
            .await
            .unwrap();
        revs.insert(id, r);
    }
    s.commit(vec![
        put("claimx", "a", "other", Expect::Absent).with_topic(Some("p1")),
    ])
    .await
    .unwrap();
    let all = s.list("claim", "").await.unwrap();
    assert_eq!(
        ids(&all),
        [
            "a", "b", "ip/s1/a", "ip/s1/b", "ip/s10/a", "ip/s2/a", "mac/x"
        ]
    );
    for r in &all {
        assert_eq!(r.table, "claim");
        assert_eq!(r.value, r.id.as_bytes());
        assert_eq!(r.revision, revs[r.id.as_str()]);
        assert_eq!(r.topic, None);
    }
    assert_eq!(
        ids(&s.list("claim", "ip/s1/").await.unwrap()),
        ["ip/s1/a", "ip/s1/b"]
    );
    assert_eq!(
        ids(&s.list("claim", "ip/s1").await.unwrap()),
        ["ip/s1/a", "ip/s1/b", "ip/s10/a"]
    );
    assert!(s.list("claim", "zzz").await.unwrap().is_empty());
    assert!(s.list("nothing", "").await.unwrap().is_empty());
    let x = s.list("claimx", "").await.unwrap();
    assert_eq!(x.len(), 1);
    assert_eq!(
        (x[0].value.as_slice(), x[0].topic.as_deref()),
        (&b"other"[..], Some("p1"))
    );
    let got = s.get("claim", "ip/s2/a").await.unwrap().unwrap();
    assert_eq!((got.table.as_str(), got.id.as_str()), ("claim", "ip/s2/a"));
    assert_eq!(got.revision, revs["ip/s2/a"]);
    assert!(s.get("claim", "ip/s3/a").await.unwrap().is_none());
    assert!(s.get("claimx", "b").await.unwrap().is_none());
    // Binary values survive untouched.
    let bin: Vec<u8> = (0..=255).collect();
    s.commit(vec![Op::put("blob", "x", bin.clone(), Expect::Any)])
        .await
        .unwrap();
    assert_eq!(s.get("blob", "x").await.unwrap().unwrap().value, bin);
    // By topic.
    s.commit(vec![
        put("topical", "a", "1", Expect::Absent).with_topic(Some("p1")),
        put("topical", "b", "2", Expect::Absent).with_topic(Some("p2")),
        put("topical", "c", "3", Expect::Absent),
    ])
    .await
    .unwrap();
    assert_eq!(
        ids(&s.list_topic("topical", "p1", false).await.unwrap()),
        ["a"]
    );
    assert_eq!(
        ids(&s.list_topic("topical", "p1", true).await.unwrap()),
        ["a", "c"]
    );
}

async fn every_expectation_on_put_delete_and_check(b: &mut Backend) {
    let s = b.open().await;
    let r1 = s
        .commit(vec![put("t", "a", "1", Expect::Absent)])
        .await
        .unwrap();
    let e = s
        .commit(vec![put("t", "a", "2", Expect::Absent)])
        .await
        .unwrap_err();
    assert!(is_conflict(&e, "t", "a"), "{e}");
    let e = s
        .commit(vec![put("t", "b", "1", Expect::Present)])
        .await
        .unwrap_err();
    assert!(is_conflict(&e, "t", "b"), "{e}");
    let e = s
        .commit(vec![put("t", "a", "2", Expect::Revision(r1 + 100))])
        .await
        .unwrap_err();
    assert!(is_conflict(&e, "t", "a"), "{e}");
    let e = s
        .commit(vec![put("t", "b", "2", Expect::Revision(r1))])
        .await
        .unwrap_err();
    assert!(is_conflict(&e, "t", "b"), "{e}");
    let r2 = s
        .commit(vec![put("t", "a", "2", Expect::Revision(r1))])
        .await
        .unwrap();
    let r3 = s
        .commit(vec![put("t", "a", "3", Expect::Present)])
        .await
        .unwrap();
    let r4 = s
        .commit(vec![put("t", "a", "4", Expect::Any)])
        .await
        .unwrap();
    assert!(r1 < r2 && r2 < r3 && r3 < r4);
    assert_eq!(s.get("t", "a").await.unwrap().unwrap().value, b"4");

    // Checks gate the commit without writing.
    let e = s
        .commit(vec![
            Op::check("t", "a", Expect::Revision(r3)),
            put("t", "c", "1", Expect::Any),
        ])
        .await
        .unwrap_err();
    assert!(is_conflict(&e, "t", "a"), "{e}");
    let e = s
        .commit(vec![
            Op::check("t", "a", Expect::Absent),
            put("t", "c", "1", Expect::Any),
        ])
        .await
        .unwrap_err();
    assert!(is_conflict(&e, "t", "a"), "{e}");
    let e = s
        .commit(vec![
            Op::check("t", "zz", Expect::Present),
            put("t", "c", "1", Expect::Any),
        ])
        .await
        .unwrap_err();
    assert!(is_conflict(&e, "t", "zz"), "{e}");
    assert!(s.get("t", "c").await.unwrap().is_none());
    let r5 = s
        .commit(vec![
            Op::check("t", "a", Expect::Revision(r4)),
            Op::check("t", "a2", Expect::Absent),
            Op::check("t", "x", Expect::Any),
            put("t", "c", "1", Expect::Any),
        ])
        .await
        .unwrap();
    let c = s.get("t", "c").await.unwrap().unwrap();
    assert_eq!(c.revision, r5);
    // The check did not rewrite `a`.
    assert_eq!(s.get("t", "a").await.unwrap().unwrap().revision, r4);

    // Deletions.
    let e = s
        .commit(vec![Op::delete("t", "a", Expect::Absent)])
        .await
        .unwrap_err();
    assert!(is_conflict(&e, "t", "a"), "{e}");
    let e = s
        .commit(vec![Op::delete("t", "nope", Expect::Present)])
        .await
        .unwrap_err();
    assert!(is_conflict(&e, "t", "nope"), "{e}");
    let e = s
        .commit(vec![Op::delete("t", "a", Expect::Revision(r3))])
        .await
        .unwrap_err();
    assert!(is_conflict(&e, "t", "a"), "{e}");
    assert!(s.get("t", "a").await.unwrap().is_some());
    s.commit(vec![Op::delete("t", "a", Expect::Revision(r4))])
        .await
        .unwrap();
    assert!(s.get("t", "a").await.unwrap().is_none());
    s.commit(vec![Op::delete("t", "c", Expect::Present)])
        .await
        .unwrap();
    // Deleting what is not there with no expectation is fine.
    s.commit(vec![Op::delete("t", "never", Expect::Any)])
        .await
        .unwrap();
    assert!(s.list("t", "").await.unwrap().is_empty());
    // A deleted object can be created again.
    s.commit(vec![put("t", "a", "again", Expect::Absent)])
        .await
        .unwrap();
    assert_eq!(s.get("t", "a").await.unwrap().unwrap().value, b"again");
}

async fn failed_transaction_writes_nothing_and_takes_no_revision(b: &mut Backend) {
    let s = b.open().await;
    s.commit(vec![put("claim", "ip/10.0.0.3", "p1", Expect::Absent)])
        .await
        .unwrap();
    let keep = s
        .commit(vec![put("port", "p0", "v0", Expect::Absent)])
        .await
        .unwrap();
    let before = s.revision().await.unwrap();
    let e = s
        .commit(vec![
            put("port", "p2", "x", Expect::Absent),
            Op::delete("port", "p0", Expect::Present),
            put("claim", "mac/aa", "p2", Expect::Absent),
            put("claim", "ip/10.0.0.3", "p2", Expect::Absent),
        ])
        .await
        .unwrap_err();
    assert!(is_conflict(&e, "claim", "ip/10.0.0.3"), "{e}");
    assert!(s.get("port", "p2").await.unwrap().is_none());
    assert!(s.get("claim", "mac/aa").await.unwrap().is_none());
    assert_eq!(s.get("port", "p0").await.unwrap().unwrap().revision, keep);
    assert_eq!(
        s.get("claim", "ip/10.0.0.3").await.unwrap().unwrap().value,
        b"p1"
    );
    assert_eq!(s.revision().await.unwrap(), before);
    assert!(s.changes_since(before, 10).await.unwrap().is_empty());
    // Malformed transactions are refused before anything happens.
    let e = s.commit(vec![]).await.unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    let e = s
        .commit(vec![
            put("port", "q", "1", Expect::Any),
            Op::delete("port", "q", Expect::Any),
        ])
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    assert_eq!(s.revision().await.unwrap(), before);
    // The next commit takes the very next revision, with all its ops.
    let r = s
        .commit(vec![
            put("port", "p2", "x", Expect::Absent),
            put("claim", "mac/aa", "p2", Expect::Absent),
        ])
        .await
        .unwrap();
    assert_eq!(r, before + 1);
    let ch = s.changes_since(before, 10).await.unwrap();
    let got: Vec<_> = ch
        .iter()
        .map(|c| (c.revision, c.table.as_str(), c.id.as_str()))
        .collect();
    assert_eq!(got, [(r, "port", "p2"), (r, "claim", "mac/aa")]);
}

async fn revisions_increase_by_one_per_commit(b: &mut Backend) {
    let s = b.open().await;
    let base = s.revision().await.unwrap();
    let mut last = base;
    for i in 0..30 {
        let ops = match i % 5 {
            0 => vec![put("r", &format!("k{i}"), "v", Expect::Absent)],
            1 => vec![put("r", "same", &i.to_string(), Expect::Any)],
            // Commits that change nothing still take a revision.
            2 => vec![Op::check("r", "same", Expect::Present)],
            3 => vec![Op::delete("r", "absent", Expect::Any)],
            _ => vec![
                put("r", &format!("m{i}"), "v", Expect::Absent),
                Op::delete("r", &format!("k{}", i - 4), Expect::Present),
            ],
        };
        let r = s.commit(ops).await.unwrap();
        assert_eq!(r, last + 1, "commit {i}");
        assert_eq!(s.revision().await.unwrap(), r);
        last = r;
    }
    assert_eq!(
        s.get("r", "same").await.unwrap().unwrap().revision,
        last - 3
    );
    // Only revisions that changed something show up in the log, in order.
    let ch = s.changes_since(0, 1000).await.unwrap();
    let revs: Vec<_> = ch.iter().map(|c| c.revision).collect();
    assert!(revs.windows(2).all(|w| w[0] <= w[1]), "{revs:?}");
    assert_eq!(ch.len(), 6 + 6 + 12);
    // `limit` counts revisions that have changes.
    let first2 = s.changes_since(base, 2).await.unwrap();
    assert_eq!(
        first2.iter().map(|c| c.revision).collect::<Vec<_>>(),
        [base + 1, base + 2]
    );
    let after2 = s.changes_since(base + 2, 1).await.unwrap();
    let want = [base + 5, base + 5];
    assert_eq!(after2.iter().map(|c| c.revision).collect::<Vec<_>>(), want);
    let multi = s.changes_since(last - 1, 1).await.unwrap();
    assert_eq!(multi.len(), 2, "both changes of one commit come together");
}

async fn concurrent_conflicting_commits_have_one_winner(b: &mut Backend) {
    let stores = [b.open().await, b.open().await];
    let mut tasks = Vec::new();
    for i in 0..40u8 {
        let s = stores[usize::from(i % 2)].clone();
        tasks.push(tokio::spawn(async move {
            s.commit(vec![
                Op::put("claim", "ip/s/10.0.0.9", vec![i], Expect::Absent),
                Op::put("port", &format!("p{i}"), vec![i], Expect::Absent),
            ])
            .await
        }));
    }
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(_) => winners.push(i),
            Err(e) => assert!(is_conflict(&e, "claim", "ip/s/10.0.0.9"), "{e}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let s = &stores[0];
    let claim = s.get("claim", "ip/s/10.0.0.9").await.unwrap().unwrap();
    assert_eq!(claim.value, [winners[0] as u8]);
    assert_eq!(
        ids(&s.list("port", "").await.unwrap()),
        [format!("p{}", winners[0])]
    );

    // Read-modify-write with compare-and-swap loses no update.
    s.commit(vec![put("counter", "c", "0", Expect::Absent)])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = stores[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let cur = s.get("counter", "c").await.unwrap().unwrap();
                let n: u32 = std::str::from_utf8(&cur.value).unwrap().parse().unwrap();
                let op = put(
                    "counter",
                    "c",
                    &(n + 1).to_string(),
                    Expect::Revision(cur.revision),
                );
                match s.commit(vec![op]).await {
                    Ok(_) => return,
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        stores[1].get("counter", "c").await.unwrap().unwrap().value,
        b"16"
    );
}

/// What a change looks like for comparing: (revision, table, id, topic, value).
type Seen = (Revision, String, String, Option<String>, Option<Vec<u8>>);

fn seen(c: &Change) -> Seen {
    (
        c.revision,
        c.table.clone(),
        c.id.clone(),
        c.topic.clone(),
        c.value.clone(),
    )
}

async fn snapshot_then_watch_sees_every_change_once_in_order(b: &mut Backend) {
    let s = b.open().await;
    let writer_store = b.open().await;
    let base = s.revision().await.unwrap();
    s.commit(vec![
        put("port", "a", "a0", Expect::Absent).with_topic(Some("p1")),
    ])
    .await
    .unwrap();
    s.commit(vec![
        put("port", "b", "b0", Expect::Absent).with_topic(Some("p2")),
    ])
    .await
    .unwrap();
    s.commit(vec![put("network", "g", "g0", Expect::Absent)])
        .await
        .unwrap();
    let snap = s.snapshot().await.unwrap();
    assert_eq!(snap.revision, base + 3);
    let mut in_snap: Vec<_> = snap
        .records
        .iter()
        .map(|r| {
            (
                r.table.as_str(),
                r.id.as_str(),
                r.topic.as_deref(),
                r.revision,
            )
        })
        .collect();
    in_snap.sort();
    assert_eq!(
        in_snap,
        [
            ("network", "g", None, base + 3),
            ("port", "a", Some("p1"), base + 1),
            ("port", "b", Some("p2"), base + 2)
        ]
    );
    let mut wakeups = s.subscribe();
    let mut all = Watch::new(s.clone(), snap.revision, None);
    let mut p2 = Watch::new(s.clone(), snap.revision, Some(vec!["p2".into()]));

    // A writer on another client, while the watchers wait.
    let writer = tokio::spawn(async move {
        let w = writer_store;
        let mut expected: Vec<Seen> = Vec::new();
        for i in 0..40u32 {
            let topic = match i % 3 {
                0 => Some("p1"),
                1 => Some("p2"),
                _ => None,
            };
            let id = format!("x{i}");
            let v = format!("v{i}");
            let ops = if i % 7 == 6 {
                // A deletion keeps the topic the object had.
                vec![
                    Op::delete("port", "b", Expect::Any),
                    put("port", &id, &v, Expect::Absent).with_topic(topic),
                ]
            } else {
                vec![put("port", &id, &v, Expect::Absent).with_topic(topic)]
            };
            let had_b = w.get("port", "b").await.unwrap().is_some();
            let rev = w.commit(ops.clone()).await.unwrap();
            for op in ops {
                match op {
                    Op::Delete { table, id, .. } if had_b => {
                        expected.push((rev, table, id, Some("p2".into()), None))
                    }
                    Op::Put {
                        table,
                        id,
                        value,
                        topic,
                        ..
                    } => expected.push((rev, table, id, topic, Some(value))),
                    _ => {}
                }
            }
            if i % 5 == 0 {
                tokio::task::yield_now().await;
            }
        }
        expected
    });
    let expected = writer.await.unwrap();
    // The writer used its own client: this one hears of its last commit all the same.
    let writer_last = expected.last().map(|e| e.0).unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        wakeups.wait_for(|r| *r >= writer_last),
    )
    .await
    .expect("subscribe() saw the other client's commits")
    .unwrap();
    assert!(
        expected.iter().any(|e| e.4.is_none()),
        "the writer deleted something"
    );
    let mut got_all = Vec::new();
    while got_all.len() < expected.len() {
        got_all.push(seen(&next(&mut all).await));
    }
    assert_eq!(got_all, expected);
    let want_p2: Vec<Seen> = expected
        .iter()
        .filter(|e| e.3.is_none() || e.3.as_deref() == Some("p2"))
        .cloned()
        .collect();
    let mut got_p2 = Vec::new();
    while got_p2.len() < want_p2.len() {
        got_p2.push(seen(&next(&mut p2).await));
    }
    assert_eq!(got_p2, want_p2);
    // Nothing more is pending: the next change is the next commit.
    let last = s
        .commit(vec![put("network", "end", "e", Expect::Absent)])
        .await
        .unwrap();
    assert_eq!(next(&mut all).await.revision, last);
    assert_eq!(next(&mut p2).await.revision, last);
    assert_eq!(all.revision(), last);

    // The snapshot plus the changes is the state now.
    let mut state: std::collections::BTreeMap<(String, String), Vec<u8>> = snap
        .records
        .iter()
        .map(|r| ((r.table.clone(), r.id.clone()), r.value.clone()))
        .collect();
    for c in s.changes_since(snap.revision, 10_000).await.unwrap() {
        match c.value {
            Some(v) => state.insert((c.table, c.id), v),
            None => state.remove(&(c.table, c.id)),
        };
    }
    let now = s.snapshot().await.unwrap();
    assert_eq!(now.revision, last);
    let now: std::collections::BTreeMap<_, _> = now
        .records
        .into_iter()
        .map(|r| ((r.table, r.id), r.value))
        .collect();
    assert_eq!(state, now);
}

async fn a_watcher_behind_compaction_gets_compacted(b: &mut Backend) {
    let s = b.open().await;
    let base = s.revision().await.unwrap();
    for i in 0..5 {
        s.commit(vec![put("t", &i.to_string(), "v", Expect::Any)])
            .await
            .unwrap();
    }
    // A watch that has not read anything yet (so nothing is buffered in it).
    let mut w = Watch::new(s.clone(), base + 2, None);
    b.force_compaction(&s).await;
    let now = s.revision().await.unwrap();
    let e = s.changes_since(0, 10).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Compacted { requested: 1, .. }),
        "{e}"
    );
    let e = w.next().await.unwrap_err();
    assert!(matches!(e, StoreError::Compacted { .. }), "{e}");
    // From a fresh snapshot everything works again.
    let snap = s.snapshot().await.unwrap();
    assert_eq!(snap.revision, now);
    assert!(s.changes_since(now, 10).await.unwrap().is_empty());
    let mut w = Watch::new(s.clone(), snap.revision, None);
    let r = s
        .commit(vec![put("t", "after", "v", Expect::Absent)])
        .await
        .unwrap();
    let c = next(&mut w).await;
    assert_eq!((c.revision, c.id.as_str()), (r, "after"));
}

async fn values_survive_reopening(b: &mut Backend) {
    let (r1, r2);
    {
        let s = b.open().await;
        r1 = s
            .commit(vec![
                put("network", "n", "1", Expect::Absent).with_topic(Some("p")),
            ])
            .await
            .unwrap();
        r2 = s
            .commit(vec![put("network", "m", "2", Expect::Absent)])
            .await
            .unwrap();
        s.commit(vec![Op::delete("network", "m", Expect::Present)])
            .await
            .unwrap();
    }
    let s = b.open().await;
    assert_eq!(s.revision().await.unwrap(), r2 + 1);
    let n = s.get("network", "n").await.unwrap().unwrap();
    assert_eq!(
        (n.value.as_slice(), n.revision, n.topic.as_deref()),
        (&b"1"[..], r1, Some("p"))
    );
    assert!(s.get("network", "m").await.unwrap().is_none());
    let ch = s.changes_since(0, 100).await.unwrap();
    let got: Vec<_> = ch
        .iter()
        .map(|c| (c.revision, c.id.as_str(), c.value.is_some()))
        .collect();
    assert_eq!(
        got,
        [(r1, "n", true), (r2, "m", true), (r2 + 1, "m", false)]
    );
    // Revisions go on from where they were.
    let r = s
        .commit(vec![put("network", "k", "3", Expect::Absent)])
        .await
        .unwrap();
    assert_eq!(r, r2 + 2);
}

async fn a_watch_resumes_from_its_revision_on_a_new_client(b: &mut Backend) {
    let at = {
        let s = b.open().await;
        let r = s
            .commit(vec![put("port", "a", "1", Expect::Absent)])
            .await
            .unwrap();
        s.commit(vec![put("port", "b", "1", Expect::Absent)])
            .await
            .unwrap();
        let mut w = Watch::new(s.clone(), r - 1, None);
        assert_eq!(next(&mut w).await.id, "a");
        assert_eq!(next(&mut w).await.id, "b");
        w.revision()
    };
    let s = b.open().await;
    let mut w = Watch::new(s.clone(), at, None);
    s.commit(vec![put("port", "c", "1", Expect::Absent)])
        .await
        .unwrap();
    let c = next(&mut w).await;
    assert_eq!((c.id.as_str(), c.revision), ("c", at + 1));
}

async fn a_watch_survives_a_server_restart(b: &mut Backend) {
    if b.kind == Kind::Embedded {
        return; // No server; see `a_watch_resumes_from_its_revision_on_a_new_client`.
    }
    let s = b.open().await;
    let r1 = s
        .commit(vec![put("port", "a", "1", Expect::Absent)])
        .await
        .unwrap();
    let mut w = Watch::new(s.clone(), 0, None);
    assert_eq!(next(&mut w).await.revision, r1);
    // The watch is waiting for the next change when the server goes away.
    let waiter = tokio::spawn(async move {
        let c = next(&mut w).await;
        (c.revision, c.id)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.restart().await;
    // Another client writes after the restart: only the change follower can wake `w`.
    let writer = b.open().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r2 = commit_retrying(&writer, vec![put("port", "b", "2", Expect::Absent)]).await;
    assert_eq!(r2, r1 + 1);
    let got = tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, (r2, "b".to_string()));
    // The original client works too, and what was written before the restart is kept.
    assert_eq!(s.get("port", "b").await.unwrap().unwrap().revision, r2);
    assert_eq!(s.get("port", "a").await.unwrap().unwrap().revision, r1);
}

/// 10,000 writes with the server restarted in the middle: a watcher attached throughout
/// sees every one exactly once, in order. (The embedded store has no server of its own;
/// its remote watchers are tested across a restart of `dragonflow server` instead.)
async fn a_burst_with_a_restart_in_the_middle_is_seen_exactly_once(b: &mut Backend) {
    if b.kind == Kind::Embedded {
        return;
    }
    const N: usize = 10_000;
    b.retention = 2 * N as u64;
    let s = b.open().await;
    let from = s.revision().await.unwrap();
    let mut w = Watch::new(s.clone(), from, None);
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(N);
        while seen.len() < N {
            let c = next(&mut w).await;
            seen.push((c.revision, c.id));
        }
        seen
    });
    let writer = b.open().await;
    for i in 0..N {
        if i == N / 2 {
            b.restart().await;
        }
        let id = format!("{i:05}");
        // A commit whose reply was lost in the restart may have gone through: "already
        // there" then means done, so no write is made twice.
        for attempt in 0.. {
            match writer
                .commit(vec![put("burst", &id, "v", Expect::Absent)])
                .await
            {
                Ok(_) => break,
                Err(StoreError::Conflict { .. }) if attempt > 0 => break,
                Err(StoreError::Unavailable(_)) if attempt < 300 => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("write {id}: {e}"),
            }
        }
    }
    let seen = tokio::time::timeout(Duration::from_secs(120), watcher)
        .await
        .expect("watcher finished")
        .expect("watcher");
    let ids: Vec<String> = seen.iter().map(|(_, id)| id.clone()).collect();
    let want: Vec<String> = (0..N).map(|i| format!("{i:05}")).collect();
    assert!(ids == want, "every write exactly once, in order");
    assert!(
        seen.windows(2).all(|p| p[0].0 < p[1].0),
        "revisions increase"
    );
}

async fn garbage_in_the_store_is_named_and_skipped(b: &mut Backend) {
    {
        let s = b.open().await;
        s.commit(vec![put("port", "good", "v", Expect::Absent)])
            .await
            .unwrap();
    }
    b.plant_garbage("port", "bad").await;
    let s = b.open().await;
    // Reading it is an error that names it; listings and snapshots skip it.
    let e = s.get("port", "bad").await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Corrupt(m) if m.contains("port/bad")),
        "{e}"
    );
    assert_eq!(ids(&s.list("port", "").await.unwrap()), ["good"]);
    let snap = s.snapshot().await.unwrap();
    assert!(snap.records.iter().any(|r| r.id == "good"));
    assert!(!snap.records.iter().any(|r| r.id == "bad"));
    // The rest of the store still works.
    assert_eq!(s.get("port", "good").await.unwrap().unwrap().value, b"v");
}

async fn a_commit_of_many_ops_is_atomic(b: &mut Backend) {
    let s = b.open().await;
    // etcd's default --max-txn-ops of 128 caps a commit at 127 ops (one write is ours).
    let n = 120;
    let ops: Vec<Op> = (0..n)
        .map(|i| put("bulk", &format!("{i:03}"), "v", Expect::Absent).with_topic(Some("p")))
        .collect();
    let r = s.commit(ops.clone()).await.unwrap();
    let all = s.list("bulk", "").await.unwrap();
    assert_eq!(all.len(), n);
    assert!(all.iter().all(|x| x.revision == r));
    assert_eq!(s.changes_since(r - 1, 1).await.unwrap().len(), n);
    // The same ops again plus a new one: the first conflict is named, nothing is written.
    let mut again = ops;
    again.truncate(n - 1);
    again.push(put("bulk", "new", "v", Expect::Absent));
    let e = s.commit(again).await.unwrap_err();
    assert!(is_conflict(&e, "bulk", "000"), "{e}");
    assert!(s.get("bulk", "new").await.unwrap().is_none());
    assert_eq!(s.revision().await.unwrap(), r);
}

async fn open_by_url(b: &mut Backend) {
    let url = b.url();
    let r = {
        let s = nbdb::connect(&url).await.unwrap();
        assert!(!s.describe().is_empty());
        s.commit(vec![put("network", "u", "1", Expect::Absent)])
            .await
            .unwrap()
    };
    let s = b.open().await;
    assert_eq!(s.get("network", "u").await.unwrap().unwrap().revision, r);
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        macro_rules! backend {
            ($kind:ident, $module:ident) => {
                mod $module {
                    $(
                        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                        async fn $name() {
                            let mut b = super::Backend::start(super::Kind::$kind).await;
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
    put_get_list_with_prefixes_and_order,
    every_expectation_on_put_delete_and_check,
    failed_transaction_writes_nothing_and_takes_no_revision,
    revisions_increase_by_one_per_commit,
    concurrent_conflicting_commits_have_one_winner,
    snapshot_then_watch_sees_every_change_once_in_order,
    a_watcher_behind_compaction_gets_compacted,
    values_survive_reopening,
    a_watch_resumes_from_its_revision_on_a_new_client,
    a_watch_survives_a_server_restart,
    a_burst_with_a_restart_in_the_middle_is_seen_exactly_once,
    garbage_in_the_store_is_named_and_skipped,
    a_commit_of_many_ops_is_atomic,
    open_by_url,
    filtered_snapshots_are_the_filtered_whole,
    leases_run_out_on_their_own_and_stay_out_of_the_model,
    a_watch_position_passes_the_changes_its_filter_leaves_out,
);

/// Leases (heartbeats): written and read back by prefix, live until their time to live
/// runs out on the store's clock (the value stays), renewed, deleted; never a change in
/// the log nor a commit of the model, and kept across a reopen.
async fn leases_run_out_on_their_own_and_stay_out_of_the_model(b: &mut Backend) {
    let s = b.open().await;
    let before = s.last_commit().await.unwrap();
    s.put_lease("agent/c/h1", b"one".to_vec(), Some(Duration::from_secs(2)))
        .await
        .unwrap();
    s.put_lease("agent/c/h2", b"two".to_vec(), None)
        .await
        .unwrap();
    s.put_lease("agent-admin/c/h1", b"adm".to_vec(), None)
        .await
        .unwrap();
    assert_eq!(
        s.last_commit().await.unwrap(),
        before,
        "no commit of the model"
    );
    assert!(s.changes_since(before, 10).await.unwrap().is_empty());
    let all = s.leases("agent/").await.unwrap();
    let seen: Vec<(&str, &[u8], bool)> = all
        .iter()
        .map(|l| (l.key.as_str(), l.value.as_slice(), l.live))
        .collect();
    assert_eq!(
        seen,
        [
            ("agent/c/h1", &b"one"[..], true),
            ("agent/c/h2", &b"two"[..], true)
        ]
    );
    assert_eq!(s.leases("agent-admin/").await.unwrap().len(), 1);
    assert!(s.get_lease("agent/c/h3").await.unwrap().is_none());
    // The store's clock runs it out (etcd checks leases about every half second).
    let start = tokio::time::Instant::now();
    loop {
        let l = s.get_lease("agent/c/h1").await.unwrap().expect("kept");
        if !l.live {
            assert_eq!(l.value, b"one", "the value outlives the lease");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(8), "h1 never ran out");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        start.elapsed() >= Duration::from_millis(1000),
        "ran out too early"
    );
    assert!(s.get_lease("agent/c/h2").await.unwrap().unwrap().live);
    // Renewed.
    s.put_lease("agent/c/h1", b"uno".to_vec(), Some(Duration::from_secs(30)))
        .await
        .unwrap();
    let l = s.get_lease("agent/c/h1").await.unwrap().unwrap();
    assert!(l.live && l.value == b"uno");
    // Kept across a reopen.
    drop(s);
    let s = b.open().await;
    assert!(s.get_lease("agent/c/h1").await.unwrap().unwrap().live);
    assert!(s.delete_lease("agent/c/h1").await.unwrap());
    assert!(!s.delete_lease("agent/c/h1").await.unwrap());
    assert_eq!(ids_of(&s.leases("agent/").await.unwrap()), ["agent/c/h2"]);
    assert_eq!(s.last_commit().await.unwrap(), before);
}

fn ids_of(leases: &[nbdb::Lease]) -> Vec<&str> {
    leases.iter().map(|l| l.key.as_str()).collect()
}

/// A watch limited to one topic reaches the store's last commit once it has read past
/// other topics' changes: a host that applied everything it was given is that far.
async fn a_watch_position_passes_the_changes_its_filter_leaves_out(b: &mut Backend) {
    let s = b.open().await;
    let start = s.last_commit().await.unwrap();
    let mut w = Watch::new(s.clone(), start, Some(vec!["mine".into()]));
    let mine = commit_retrying(
        &s,
        vec![put("network", "m", "1", Expect::Any).with_topic(Some("mine"))],
    )
    .await;
    let mut last = mine;
    for i in 0..5 {
        last = commit_retrying(
            &s,
            vec![put("network", &format!("o{i}"), "1", Expect::Any).with_topic(Some("other"))],
        )
        .await;
    }
    assert_eq!(next(&mut w).await.revision, mine);
    assert!(w.position() >= mine);
    // Nothing more for this watch; waiting for it reads past the others' changes.
    let _ = tokio::time::timeout(Duration::from_millis(1500), w.next()).await;
    assert_eq!(w.position(), last);
    assert_eq!(s.last_commit().await.unwrap(), last);
}

/// A filtered snapshot holds exactly what the whole snapshot holds within the filter, after
/// objects were created, moved between topics, made topic-less and deleted (what a topic
/// index must follow).
async fn filtered_snapshots_are_the_filtered_whole(b: &mut Backend) {
    use nbdb::Filter;
    use std::collections::BTreeSet;
    let s = b.open().await;
    let t = |v: &[&str]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<BTreeSet<String>>()
    };
    let mut ops = Vec::new();
    for i in 0..30 {
        let topic = format!("p{}", i % 3);
        for table in ["port", "network", "port-x"] {
            ops.push(put(table, &format!("{i:02}"), "v", Expect::Absent).with_topic(Some(&topic)));
        }
    }
    ops.push(put("chassis", "h1", "c", Expect::Absent));
    s.commit(ops).await.unwrap();
    // p0's port 00 moves to p1, 03 becomes topic-less, 06 goes; 01 is rewritten in place.
    s.commit(vec![
        put("port", "00", "w", Expect::Present).with_topic(Some("p1")),
        put("port", "03", "w", Expect::Present),
        Op::delete("port", "06", Expect::Present),
        put("port", "01", "w", Expect::Present).with_topic(Some("p1")),
    ])
    .await
    .unwrap();
    let whole = s.snapshot().await.unwrap();
    let key = |r: &nbdb::Record| {
        (
            r.table.clone(),
            r.id.clone(),
            r.topic.clone(),
            r.value.clone(),
        )
    };
    for f in [
        Filter::all(),
        Filter::new(&t(&["port"]), &t(&["p0"])),
        Filter::new(&t(&["port", "chassis", "port-x"]), &t(&["p0", "p1"])),
        Filter::new(&t(&["network"]), &t(&[])),
        Filter::new(&t(&[]), &t(&["p2"])),
        Filter {
            tables: None,
            topics: Some(t(&["p1"])),
        },
        Filter {
            tables: Some(t(&["port"])),
            topics: None,
        },
    ] {
        let got = s.snapshot_filtered(&f).await.unwrap();
        assert_eq!(got.revision, whole.revision, "{f:?}");
        let want: BTreeSet<_> = whole
            .records
            .iter()
            .filter(|r| f.admits(&r.table, r.topic.as_deref()))
            .map(key)
            .collect();
        let have: BTreeSet<_> = got.records.iter().map(key).collect();
        assert_eq!(have.len(), got.records.len(), "no record twice: {f:?}");
        assert_eq!(have, want, "{f:?}");
    }
    let p0 = Filter::new(&t(&["port"]), &t(&["p0"]));
    let ids: Vec<_> = s
        .snapshot_filtered(&p0)
        .await
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["03", "09", "12", "15", "18", "21", "24", "27"]);
}

/// Not part of the shared contract: etcd refuses commits beyond its txn size limit, and
/// that must read as a bad request, not as an outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_commit_beyond_its_size_limit_is_invalid() {
    let b = Backend::start(Kind::Etcd).await;
    let s = b.open().await;
    let ops: Vec<Op> = (0..200)
        .map(|i| put("bulk", &i.to_string(), "v", Expect::Any))
        .collect();
    let e = s.commit(ops).await.unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    assert!(s.list("bulk", "").await.unwrap().is_empty());
}

/// Not part of the shared contract: etcd sends a watcher that is behind up to 1000
/// revisions of history in one response, with the values before them; with large objects
/// that is past gRPC's 4 MiB default, and a host that far behind must still read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_history_in_responses_over_4_mib_is_read() {
    let b = Backend::start(Kind::Etcd).await;
    // Its buffer is the harness's retention: older changes come from etcd's history.
    let s = b.open().await;
    let base = s.revision().await.unwrap();
    let value = "v".repeat(12 * 1024);
    for i in 0..400u32 {
        let id = (i % 4).to_string();
        s.commit(vec![put("big", &id, &value, Expect::Any)])
            .await
            .unwrap();
    }
    // About 9 MB: 400 revisions, each with its value and the one before.
    let changes = s.changes_since(base, 1000).await.unwrap();
    assert_eq!(changes.len(), 400);
    assert!(
        changes
            .iter()
            .all(|c| c.value.as_deref() == Some(value.as_bytes()))
    );
}

/// Not part of the shared contract: ZooKeeper refuses a request over 1 MB (jute.maxbuffer)
/// by dropping the connection; the store refuses such a commit first, as a bad request, and
/// the connection and the store stay usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_values_near_its_request_limit_are_invalid() {
    let b = Backend::start(Kind::ZooKeeper).await;
    let s = b.open().await;
    let before = s.revision().await.unwrap();
    // Stored twice (object and log entry): 600 kB is over, 400 kB is under.
    let big = vec![7u8; 600 * 1024];
    let e = s
        .commit(vec![Op::put("blob", "big", big, Expect::Any)])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Invalid(m) if m.contains("jute.maxbuffer")),
        "{e}"
    );
    let e = s
        .put_lease("agent/big", vec![0; 1 << 20], None)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    assert_eq!(s.revision().await.unwrap(), before);
    assert!(s.get("blob", "big").await.unwrap().is_none());
    let ok = vec![9u8; 400 * 1024];
    let r = s
        .commit(vec![Op::put("blob", "ok", ok.clone(), Expect::Any)])
        .await
        .unwrap();
    assert_eq!(s.get("blob", "ok").await.unwrap().unwrap().value, ok);
    assert_eq!(s.changes_since(r - 1, 1).await.unwrap()[0].value, Some(ok));
}
