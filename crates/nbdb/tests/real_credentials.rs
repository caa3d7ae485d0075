//! Store credentials against real servers: an etcd with its authentication on (a root
//! user with a password, enabled through etcd's own auth API) and a Redis with
//! `requirepass`. The right credentials in the `--db` URL commit, read and watch; a wrong
//! password or none is refused with an error that names the cause and never the password;
//! what the store says of itself (the agents API shows it) hides the password.

use nbdb::{Expect, Op, Store, Watch};
use std::sync::Arc;
use std::time::Duration;
use testbed::stores::{StoreKind, StoreServer};

const PASSWORD: &str = "s3cr%t@x";
/// The password as a URL carries it.
const IN_URL: &str = "s3cr%25t%40x";

/// A put, read back by a snapshot, and seen by a watch started before it.
async fn works(store: &Arc<dyn Store>) {
    let before = store.revision().await.expect("revision");
    let mut watch = Watch::new(store.clone(), before, None);
    let rev = store
        .commit(vec![Op::put("t", "a", b"1".to_vec(), Expect::Any)])
        .await
        .expect("commit");
    let snap = store.snapshot().await.expect("snapshot");
    assert!(snap.records.iter().any(|r| r.table == "t" && r.id == "a"));
    let c = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("a change within 10 s")
        .expect("the change");
    assert_eq!(
        (c.table.as_str(), c.id.as_str(), c.revision),
        ("t", "a", rev)
    );
}

fn refused(r: Result<Arc<dyn Store>, nbdb::StoreError>) -> String {
    match r {
        Ok(_) => panic!("connected without the right credentials"),
        Err(e) => {
            let e = e.to_string();
            assert!(!e.contains("s3cr"), "the password leaked: {e}");
            e
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_with_authentication_takes_the_urls_user_and_password() {
    let srv = StoreServer::start(StoreKind::Etcd).expect("etcd");
    let endpoint = format!("http://127.0.0.1:{}", srv.port());
    let mut admin = etcd_client::Client::connect([endpoint.as_str()], None)
        .await
        .expect("etcd client");
    admin.user_add("root", PASSWORD, None).await.expect("user");
    // etcd makes the root role with authentication; older ones want it made first.
    let _ = admin.role_add("root").await;
    admin
        .user_grant_role("root", "root")
        .await
        .expect("root role");
    admin.auth_enable().await.expect("auth enable");

    let hosts = format!("127.0.0.1:{}", srv.port());
    let store = nbdb::connect(&format!("etcd://root:{IN_URL}@{hosts}/df"))
        .await
        .expect("connect with the right password");
    works(&store).await;
    assert!(!store.describe().contains("s3cr"), "{}", store.describe());

    let e = refused(nbdb::connect(&format!("etcd://root:wrong-password@{hosts}/df")).await);
    assert!(
        e.contains("refused the credentials of user \"root\""),
        "{e}"
    );
    assert!(!e.contains("wrong-password"), "{e}");
    let e = refused(nbdb::connect(&format!("etcd://{hosts}/df")).await);
    assert!(e.contains("user name is empty"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_a_password_takes_the_urls_password() {
    let srv = StoreServer::start_redis_with_password(PASSWORD).expect("redis");
    let port = srv.port();
    let url = format!("redis://:{IN_URL}@127.0.0.1:{port}/0");
    let store = nbdb::connect(&url)
        .await
        .expect("connect with the password");
    works(&store).await;
    assert!(!store.describe().contains("s3cr"), "{}", store.describe());

    let e = refused(nbdb::connect(&format!("redis://127.0.0.1:{port}/0")).await);
    assert!(e.contains("NOAUTH") || e.contains("uthentication"), "{e}");
    let e = refused(nbdb::connect(&format!("redis://:nope@127.0.0.1:{port}/0")).await);
    assert!(
        e.contains("WRONGPASS") || e.contains("uthentication"),
        "{e}"
    );
}
