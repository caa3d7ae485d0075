//! A remote watcher follows the embedded store through the server's HTTP stream while a
//! burst of 10,000 writes runs and the server is restarted in the middle: afterwards it has
//! seen every change exactly once, in order (the same sequence as a watcher that never
//! lost its connection).

mod common;

use common::Server;
use nbdb::Filter;
use nbdb::remote::Remote;
use neutron_api::nb_auth::Principal;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

type Seen = Vec<(u64, String, String, bool)>;

/// Collects every change after `after` up to revision `until` (read from the channel).
fn collect(url: String, after: u64, until: std::sync::mpsc::Receiver<u64>) -> Seen {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let token = common::token(Principal::Reader);
        let mut w = Remote::with_token(&url, Some(&token)).watch(after, Filter::default());
        let mut seen = Vec::new();
        let mut target = None;
        loop {
            match tokio::time::timeout(Duration::from_millis(300), w.next()).await {
                Ok(Ok(c)) => seen.push((c.revision, c.table, c.id, c.value.is_some())),
                Ok(Err(e)) => panic!("watch failed: {e}"),
                // Quiet: done once the last revision (all its changes) has come.
                Err(_) => {
                    if target.is_none() {
                        target = until.try_recv().ok();
                    }
                    if target.is_some_and(|t| w.revision() >= t) {
                        return seen;
                    }
                }
            }
        }
    })
}

#[test]
fn remote_watch_survives_a_server_restart_during_a_burst() {
    // 10,000 networks in one project: past the default network quota.
    let mut srv = Server::start_unlimited();
    let (url, nb_url) = (srv.url.clone(), srv.nb_url.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let watcher = {
        let nb_url = nb_url.clone();
        std::thread::spawn(move || collect(nb_url, 0, rx))
    };
    const WRITES: usize = 10_000;
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for w in 0..8 {
            let (url, done) = (&url, &done);
            s.spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                let mut i = 0;
                while i < WRITES / 8 {
                    let body = json!({"network": {"name": format!("w{w}-{i}")}});
                    match agent.post(&format!("{url}/v2.0/networks")).send_json(&body) {
                        Ok(r) if r.status().as_u16() == 201 => {
                            i += 1;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        // The server is restarting: try again.
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            });
        }
        let start = Instant::now();
        while done.load(Ordering::Relaxed) < WRITES / 2 {
            assert!(start.elapsed() < Duration::from_secs(120), "writes stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
        srv.restart();
    });
    let (_, v) = srv.nb_call("GET", "/nb/v1/revision", None);
    let last = v["revision"].as_u64().expect("revision");
    tx.send(last).expect("send");
    let seen = watcher.join().expect("watcher");
    // The reference: one uninterrupted watch of the same history.
    let (tx2, rx2) = std::sync::mpsc::channel();
    tx2.send(last).expect("send");
    let reference = collect(nb_url, 0, rx2);
    assert!(
        reference.len() >= WRITES * 3,
        "each network write is 3 changes: {}",
        reference.len()
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "in revision order"
    );
    assert_eq!(seen.len(), reference.len(), "every change exactly once");
    assert!(
        seen == reference,
        "the same sequence as an uninterrupted watcher"
    );
}
