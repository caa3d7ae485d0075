//! The fan-out against a real store and real sockets: a publisher that loses every Nth
//! message (`?drop_every=N`) and a subscriber that must still see every change within its
//! filter exactly once, each topic in revision order, over ZeroMQ and over Redis pub/sub;
//! a subscription that follows a growing set of topics; compaction surfacing as from any
//! watch.

use nbdb::pubsub::transport::Subscription;
use nbdb::pubsub::{Endpoint, PubsubWatch, publish};
use nbdb::{Change, Embedded, Expect, Filter, Op, Revision, Source, Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn store(dir: &tempfile::TempDir, retention: u64) -> Arc<dyn Store> {
    Arc::new(Embedded::open_with_retention(dir.path().join("nb.redb"), retention).expect("store"))
}

/// Writes `n` revisions: puts and deletes on topics a..d and topic-less objects, some
/// revisions with two changes on one topic, some with two topics.
async fn write(store: &Arc<dyn Store>, n: usize) {
    let topics = ["a", "b", "c", "d"];
    for i in 0..n {
        let t = topics[i % 4];
        let mut ops = vec![
            Op::put(
                "obj",
                &format!("o{}", i % 50),
                format!("{i}").into_bytes(),
                Expect::Any,
            )
            .with_topic(Some(t)),
        ];
        match i % 10 {
            3 => ops.push(
                Op::put("obj", &format!("x{i}"), b"1".to_vec(), Expect::Any).with_topic(Some(t)),
            ),
            5 => ops.push(
                Op::put("obj", &format!("y{i}"), b"2".to_vec(), Expect::Any)
                    .with_topic(Some(topics[(i + 1) % 4])),
            ),
            7 => ops.push(Op::put(
                "chassis",
                &format!("h{}", i % 5),
                b"3".to_vec(),
                Expect::Any,
            )),
            9 if i > 10 => ops.push(Op::delete("obj", &format!("x{}", i - 6), Expect::Any)),
            _ => {}
        }
        store.commit(ops).await.expect("commit");
        if i % 200 == 0 {
            // Now and then a pause: the subscriber is not always behind.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

type Key = (Revision, String, String, bool);

fn key(c: &Change) -> Key {
    (c.revision, c.table.clone(), c.id.clone(), c.value.is_some())
}

/// Every change within `filter` after `after`, in the store's order.
async fn expected(store: &Arc<dyn Store>, after: Revision, filter: &Filter) -> Vec<Change> {
    store
        .changes_since(after, 1_000_000)
        .await
        .expect("log")
        .into_iter()
        .filter(|c| filter.admits(&c.table, c.topic.as_deref()))
        .collect()
}

/// Reads `w` until it has handed out `n` changes, then a little longer (nothing more may
/// come).
async fn collect(w: &mut PubsubWatch, n: usize) -> Vec<Change> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    while seen.len() < n {
        match tokio::time::timeout_at(deadline, w.next()).await {
            Ok(Ok(c)) => seen.push(c),
            Ok(Err(e)) => panic!("watch failed: {e}"),
            Err(_) => panic!("{} of {n} changes after 45 s ({:?})", seen.len(), w.stats()),
        }
    }
    if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_millis(2500), w.next()).await {
        seen.push(c);
    }
    seen
}

/// Exactly the expected changes, once each, each topic's (and the topic-less ones') in
/// the store's order.
fn check(seen: &[Change], want: &[Change]) {
    let by_topic = |cs: &[Change]| {
        let mut m: BTreeMap<Option<String>, Vec<Key>> = BTreeMap::new();
        for c in cs {
            m.entry(c.topic.clone()).or_default().push(key(c));
        }
        m
    };
    let mut a: Vec<Key> = seen.iter().map(key).collect();
    let mut b: Vec<Key> = want.iter().map(key).collect();
    a.sort();
    b.sort();
    let missing = b.iter().filter(|k| !a.contains(k)).count();
    assert_eq!(
        a.len(),
        b.len(),
        "{missing} missing; every change exactly once"
    );
    assert!(a == b, "the same changes");
    assert!(
        by_topic(seen) == by_topic(want),
        "each topic in revision order"
    );
}

async fn lossy_follow(transport: &str, port_url: String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(&dir, 100_000);
    write(&store, 20).await;
    let ep = Endpoint::parse(&format!("{port_url}?drop_every=7")).expect("endpoint");
    publish::start(store.clone(), &ep).await.expect("publisher");
    let after = store.revision().await.expect("revision");
    write(&store, 30).await; // before the subscriber: read from the store
    let sub = Subscription::start(&Endpoint::parse(&port_url).expect("endpoint"));
    let source: Arc<dyn Source> = Arc::new(store.clone());
    let filter = Filter::new(&set(&["obj", "chassis"]), &set(&["a", "b"]));
    let mut w = PubsubWatch::new(&sub, source, after, filter.clone());
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { write(&store, 2400).await })
    };
    writer.await.expect("writer");
    let want = expected(&store, after, &filter).await;
    assert!(want.len() > 1500, "{}", want.len());
    let seen = collect(&mut w, want.len()).await;
    check(&seen, &want);
    let st = w.stats();
    eprintln!("{transport}: {} changes, {st:?}", seen.len());
    assert!(
        st.from_messages > want.len() as u64 / 2,
        "mostly from messages: {st:?}"
    );
    assert!(st.gaps > 10, "the losses were noticed and filled: {st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zmq_every_change_once_and_in_order_though_every_7th_message_is_lost() {
    lossy_follow("zmq", format!("zmq://127.0.0.1:{}", free_port())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_every_change_once_and_in_order_though_every_7th_message_is_lost() {
    let redis = testbed::StoreServer::start(testbed::StoreKind::Redis).expect("redis-server");
    lossy_follow("redis", redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_watch_with_more_topics_gets_them_from_the_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(&dir, 100_000);
    let url = format!("zmq://127.0.0.1:{}", free_port());
    publish::start(store.clone(), &Endpoint::parse(&url).unwrap())
        .await
        .unwrap();
    let sub = Subscription::start(&Endpoint::parse(&url).unwrap());
    let source: Arc<dyn Source> = Arc::new(store.clone());
    let tables = set(&["obj", "chassis"]);
    let a = Filter::new(&tables, &set(&["a"]));
    let mut w = PubsubWatch::new(&sub, source.clone(), 0, a.clone());
    write(&store, 200).await;
    let want = expected(&store, 0, &a).await;
    check(&collect(&mut w, want.len()).await, &want);
    // The host now follows b too: a new watch from where the old one stood.
    let at = w.position();
    assert_eq!(at, store.revision().await.unwrap());
    let ab = Filter::new(&tables, &set(&["a", "b"]));
    let mut w = PubsubWatch::new(&sub, source, at, ab.clone());
    // Subscribed by the time ticks come: then written, then read from messages.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = tokio::time::timeout(Duration::from_millis(1200), w.next()).await;
    write(&store, 200).await;
    let want = expected(&store, at, &ab).await;
    let seen = collect(&mut w, want.len()).await;
    check(&seen, &want);
    let st = w.stats();
    assert!(
        seen.iter().any(|c| c.topic.as_deref() == Some("b")),
        "b's changes came"
    );
    assert!(st.from_messages >= want.len() as u64 / 2, "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_compacted_away_surfaces_as_compacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A short log: a subscriber far behind cannot be filled.
    let store = store(&dir, 10);
    let url = format!("zmq://127.0.0.1:{}", free_port());
    publish::start(store.clone(), &Endpoint::parse(&url).unwrap())
        .await
        .unwrap();
    write(&store, 3000).await;
    let sub = Subscription::start(&Endpoint::parse(&url).unwrap());
    let source: Arc<dyn Source> = Arc::new(store.clone());
    let mut w = PubsubWatch::new(&sub, source, 1, Filter::all());
    let r = tokio::time::timeout(Duration::from_secs(20), w.next()).await;
    assert!(
        matches!(r, Ok(Err(StoreError::Compacted { .. }))),
        "{:?}",
        r.map(|r| r.map(|c| c.revision))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_publisher_and_the_writes_while_it_was_down_are_filled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(&dir, 100_000);
    let url = format!("zmq://127.0.0.1:{}", free_port());
    let ep = Endpoint::parse(&url).unwrap();
    let publisher = publish::start(store.clone(), &ep).await.unwrap();
    let sub = Subscription::start(&ep);
    let source: Arc<dyn Source> = Arc::new(store.clone());
    let filter = Filter::new(&set(&["obj", "chassis"]), &set(&["a", "c"]));
    let mut w = PubsubWatch::new(&sub, source, 0, filter.clone());
    // Reads all along, as a host does.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            match w.next().await {
                Ok(c) => {
                    if tx.send(c).is_err() {
                        return w.stats();
                    }
                }
                Err(e) => panic!("watch failed: {e}"),
            }
        }
    });
    write(&store, 300).await;
    // The publisher goes away; writes go on; a new one starts on the same address.
    publisher.abort();
    tokio::time::sleep(Duration::from_millis(300)).await;
    write(&store, 300).await;
    let mut again = None;
    for _ in 0..50 {
        match publish::start(store.clone(), &ep).await {
            Ok(p) => {
                again = Some(p);
                break;
            }
            // The old socket may take a moment to close.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let _again = again.expect("the publisher restarted");
    write(&store, 300).await;
    let want = expected(&store, 0, &filter).await;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    while seen.len() < want.len() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(c)) => seen.push(c),
            _ => panic!("{} of {} changes after 45 s", seen.len(), want.len()),
        }
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    while let Ok(c) = rx.try_recv() {
        seen.push(c);
    }
    check(&seen, &want);
    drop(rx);
    write(&store, 1).await; // wakes the reader, which then stops
    let st = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("reader stops")
        .expect("reader");
    eprintln!("restart: {} changes, {st:?}", seen.len());
    assert!(
        st.from_messages > 0 && (st.gaps > 0 || st.catch_ups > 1),
        "{st:?}"
    );
}
