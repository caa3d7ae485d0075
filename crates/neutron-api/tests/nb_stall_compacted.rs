//! A slow watcher whose revision was compacted meanwhile: the NB listener (as
//! `nb_stream::serve` runs it, stall timeout 1 s) over an embedded store that keeps only
//! 50 revisions. The `RemoteWatch` stops reading while 2,200 revisions are written; when
//! it reads again it gets what its socket held, in order, then is told to take a new
//! snapshot (`StoreError::Compacted`, from the server's 410), never a gap. The stream ends
//! either way: cut for stalling, or because the server's own watch, which reads the log
//! only as fast as the watcher takes it, found its place compacted.

use nbdb::remote::Remote;
use nbdb::{Expect, Filter, Op, Store, StoreError};
use neutron_api::nb_auth::{NbAuth, Principal};
use neutron_api::{Api, ApiConfig, nb_router, nb_stream};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watcher_whose_revision_was_compacted_is_told_to_take_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        nbdb::embedded::Embedded::open_with_retention(dir.path().join("nb.redb"), 50)
            .expect("store"),
    );
    let put = |i: usize, value: Vec<u8>| {
        let store = store.clone();
        async move {
            let ops = (0..5)
                .map(|k| Op::put("blob", &format!("{i}-{k}"), value.clone(), Expect::Any))
                .collect();
            store.commit(ops).await.expect("commit")
        }
    };
    // About 2 kB a change: the sockets fill after a few thousand.
    let value = format!("{{\"pad\":\"{}\"}}", "x".repeat(2000)).into_bytes();
    let first = put(0, value.clone()).await;
    let api = Api::new(store.clone(), ApiConfig::default().check().expect("config"));
    let auth = NbAuth::new(b"a secret for the stall test").expect("secret");
    let token = auth.token(&Principal::Reader);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(nb_stream::serve(
        listener,
        nb_router(api, auth),
        Duration::from_secs(1),
        std::future::pending(),
    ));

    let mut w = Remote::with_token(&url, Some(&token)).watch(first - 1, Filter::default());
    let c = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("the first change")
        .expect("a change");
    assert_eq!(c.revision, first);
    // The watcher stops reading while the log moves on past its revision.
    for i in 1..=2_200 {
        put(i, value.clone()).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut last = c.revision;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(20), w.next()).await {
            Ok(Ok(c)) => {
                assert!(c.revision >= last, "in order: {} after {last}", c.revision);
                last = c.revision;
            }
            Ok(Err(e)) => break e,
            Err(_) => panic!("neither cut nor compacted: still at revision {last}"),
        }
    };
    assert!(
        matches!(end, StoreError::Compacted { .. }),
        "a new snapshot is asked for: {end}"
    );
    assert!(
        last < first + 2_200,
        "the watcher was cut before it had everything (at {last})"
    );
    assert!(w.resumes() >= 1, "the stream was cut and resumed");
}
