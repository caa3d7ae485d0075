//! `dragonflow server --pubsub` and a host that follows it (`Nb::with_pubsub`, as
//! `dragonflow controller --pubsub` does): while 2,400 ports are created on four networks
//! and the publisher loses every 5th message (`?drop_every=5`), a host following two of
//! the networks sees exactly the changes a host reading the server's NB stream sees, each
//! once, each network's in order, most of them from the messages.

mod common;

use common::Server;
use controller::nb::Nb;
use nbdb::Change;
use neutron_api::nb_auth::Principal;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const PORTS_PER_NETWORK: usize = 600;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

type Key = (u64, String, String, bool);

fn key(c: &Change) -> Key {
    (c.revision, c.table.clone(), c.id.clone(), c.value.is_some())
}

fn tables() -> BTreeSet<String> {
    model::Table::ALL
        .iter()
        .map(|t| t.name().to_string())
        .collect()
}

/// Every change of a watch until `done` says so, then 2.5 s more, in which nothing may
/// come.
async fn follow(
    w: &mut nbdb::Changes,
    mut done: impl FnMut(&nbdb::Changes, usize) -> bool,
) -> Vec<Change> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while !done(w, seen.len()) {
        // Bounded waits: `done` may change its mind while nothing comes.
        match tokio::time::timeout(Duration::from_millis(200), w.next()).await {
            Ok(Ok(c)) => seen.push(c),
            Ok(Err(e)) => panic!("watch failed: {e}"),
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "{} changes after 180 s, at {}",
                seen.len(),
                w.position()
            ),
        }
    }
    if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_millis(2500), w.next()).await {
        seen.push(c);
    }
    seen
}

#[test]
fn a_host_on_the_fan_out_sees_every_change_once_though_messages_are_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("unlimited.toml");
    std::fs::write(&conf, testbed::bench::UNLIMITED_QUOTAS).expect("config");
    let pubsub = format!("zmq://127.0.0.1:{}", free_port());
    let srv = Server::start_args(&[
        "--noauth-admin",
        "--config",
        conf.to_str().expect("path"),
        "--pubsub",
        &format!("{pubsub}?drop_every=5"),
    ]);
    let nets: Vec<String> = (0..4)
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
    let revision = || {
        srv.nb_call("GET", "/nb/v1/revision", None).1["revision"]
            .as_u64()
            .expect("revision")
    };
    let after = revision();
    let followed: BTreeSet<String> = nets[..2].iter().cloned().collect();
    let token = common::token(Principal::Reader);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // The host subscribes before the burst and reads all along; it stops once it has as
    // many changes as the reference.
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
    let host = {
        let (nb_url, token, pubsub) = (srv.nb_url.clone(), token.clone(), pubsub.clone());
        let (followed, count) = (followed.clone(), count.clone());
        rt.spawn(async move {
            let nb = Nb::connect(&nb_url, None, Some(&token))
                .await
                .expect("nb")
                .with_pubsub(&pubsub)
                .expect("pubsub");
            let mut w = nb.watch(after, &tables(), &followed);
            let seen = follow(&mut w, |_, n| {
                n >= count.load(std::sync::atomic::Ordering::Acquire)
            })
            .await;
            let nbdb::Changes::Pubsub(p) = &w else {
                panic!("not a pubsub watch")
            };
            (seen, p.stats())
        })
    };
    std::thread::scope(|s| {
        for net in &nets {
            let url = srv.url.clone();
            s.spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                for i in 0..PORTS_PER_NETWORK {
                    let body = json!({"port": {"network_id": net, "name": format!("p{i}")}});
                    let r = agent.post(&format!("{url}/v2.0/ports")).send_json(&body);
                    assert!(matches!(&r, Ok(r) if r.status().as_u16() == 201), "{r:?}");
                }
            });
        }
    });
    let last = revision();
    let reference = rt.block_on(async {
        let nb = Nb::connect(&srv.nb_url, None, Some(&token))
            .await
            .expect("nb");
        let mut w = nb.watch(after, &tables(), &followed);
        follow(&mut w, |w, _| w.position() >= last).await
    });
    assert!(
        reference.len() >= 2 * PORTS_PER_NETWORK,
        "{}",
        reference.len()
    );
    count.store(reference.len(), std::sync::atomic::Ordering::Release);
    let (seen, stats) = rt.block_on(host).expect("host");
    eprintln!("{} changes, {stats:?}", seen.len());
    let (mut a, mut b): (Vec<Key>, Vec<Key>) = (
        seen.iter().map(key).collect(),
        reference.iter().map(key).collect(),
    );
    a.sort();
    b.sort();
    assert_eq!(a.len(), b.len(), "every change exactly once");
    assert!(a == b, "the same changes");
    let by_topic = |cs: &[Change]| {
        let mut m: BTreeMap<Option<String>, Vec<Key>> = BTreeMap::new();
        for c in cs {
            m.entry(c.topic.clone()).or_default().push(key(c));
        }
        m
    };
    assert!(
        by_topic(&seen) == by_topic(&reference),
        "each network's changes in order"
    );
    assert!(stats.gaps > 10, "losses were filled: {stats:?}");
    assert!(
        stats.from_messages as usize > reference.len() / 2,
        "mostly from messages: {stats:?}"
    );
}
