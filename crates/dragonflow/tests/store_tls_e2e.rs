//! The store over TLS (`etcds://`, `rediss://`): a real etcd and a real Redis that speak only
//! TLS and ask every client for a certificate of their CA. A server and two hosts'
//! controllers (following the store directly) run a cloud whose VMs ping across hosts; a
//! client without a certificate, trusting another CA, or speaking plain text gets nothing.

mod common;

use nbdb::{Expect, Op};
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// `nbdb::connect` of `url` fails, quickly and with an error (never a hang or a panic).
fn refused(rt: &tokio::runtime::Runtime, url: &str) -> String {
    let started = Instant::now();
    let r = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), nbdb::connect(url)).await
    });
    let e = match r {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(_)) => panic!("{url}: connected"),
        Err(_) => panic!("{url}: no answer in 20 s"),
    };
    assert!(started.elapsed() < Duration::from_secs(15), "{url}: {e}");
    e
}

fn a_cloud_runs_on_a_tls_only_store(kind: testbed::StoreKind) {
    let store = testbed::StoreServer::start_tls(kind).expect("store over TLS");
    let url = store.url();
    let certs = store.certs().expect("certs").clone();
    let rt = runtime();
    // The store itself: a write and its read, over TLS with the client's certificate.
    let db = rt.block_on(nbdb::connect(&url)).expect("connect over TLS");
    rt.block_on(db.commit(vec![Op::put("t", "x", b"1".to_vec(), Expect::Absent)]))
        .expect("commit");
    let got = rt.block_on(db.get("t", "x")).expect("get").expect("stored");
    assert_eq!(got.value, b"1");

    // Nothing for a client that does not hold the right certificates.
    let (secure, plain) = match kind {
        testbed::StoreKind::Etcd => ("etcds", "etcd"),
        _ => ("rediss", "redis"),
    };
    let db_part = if secure == "rediss" { "/0" } else { "" };
    let base = format!("127.0.0.1:{}{db_part}", store.port());
    let no_client_cert = format!("{secure}://{base}?ca={}", certs.ca.display());
    refused(&rt, &no_client_cert);
    refused(&rt, &format!("{plain}://{base}"));
    let other = tempfile::tempdir().expect("tempdir");
    let other = testbed::Certs::make(other.path()).expect("another CA");
    refused(&rt, &format!("{secure}://{base}{}", other.query()));
    // A TLS option on a plain URL is a mistake, said at once.
    let e = refused(&rt, &format!("{plain}://{base}{}", certs.query()));
    assert!(e.contains("TLS scheme"), "{e}");

    // A cloud on it: the server, and controllers that follow the store themselves.
    common::cloud::vms_ping_on_store(&url);
}

#[test]
fn a_cloud_runs_on_etcd_over_tls_with_client_certificates() {
    if !testbed::require_root("a_cloud_runs_on_etcd_over_tls_with_client_certificates") {
        return;
    }
    a_cloud_runs_on_a_tls_only_store(testbed::StoreKind::Etcd);
}

#[test]
fn a_cloud_runs_on_redis_over_tls_with_client_certificates() {
    if !testbed::require_root("a_cloud_runs_on_redis_over_tls_with_client_certificates") {
        return;
    }
    a_cloud_runs_on_a_tls_only_store(testbed::StoreKind::Redis);
}
