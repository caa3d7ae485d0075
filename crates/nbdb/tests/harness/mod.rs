//! Starts each backend's real server for a test (etcd, redis-server, ZooKeeper: own temp dir, free
//! loopback ports, killed on drop) and does what the `Store` interface cannot: restart the
//! server, force log compaction, plant garbage bytes.

use nbdb::{Embedded, Etcd, Expect, Op, Redis, Store, ZooKeeper};
use std::path::PathBuf;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Embedded,
    Etcd,
    Redis,
    ZooKeeper,
}

/// Revisions the embedded store and Redis keep in their logs during tests: small, so a
/// test can push a watcher off the end.
pub const RETENTION: u64 = 100;

pub struct Backend {
    pub kind: Kind,
    /// How many revisions the embedded and Redis logs (and the etcd client's buffer) keep,
    /// for stores opened from now on.
    pub retention: u64,
    dir: tempfile::TempDir,
    server: Option<testbed::StoreServer>,
    /// The open embedded store, if any: its file can be opened only once at a time.
    embedded: std::sync::Mutex<Weak<dyn Store>>,
}

fn tempdir() -> tempfile::TempDir {
    // tmpfs when there is one (etcd fsyncs every commit), unless NBDB_TEST_DIR names
    // another place (e.g. a disk, to measure with real fsyncs).
    let dir = std::env::var("NBDB_TEST_DIR").unwrap_or_else(|_| "/dev/shm".into());
    tempfile::tempdir_in(dir)
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir")
}

impl Backend {
    pub async fn start(kind: Kind) -> Backend {
        let server = match kind {
            Kind::Embedded => None,
            Kind::Etcd => Some(testbed::StoreServer::start(testbed::StoreKind::Etcd)),
            Kind::Redis => Some(testbed::StoreServer::start(testbed::StoreKind::Redis)),
            Kind::ZooKeeper => Some(testbed::StoreServer::start(testbed::StoreKind::ZooKeeper)),
        };
        let b = Backend {
            kind,
            retention: RETENTION,
            dir: tempdir(),
            server: server
                .map(|s| s.expect("the suite needs etcd-server, redis-server and zookeeper")),
            embedded: std::sync::Mutex::new(Weak::<Embedded>::new()),
        };
        b.wait_ready().await;
        b
    }

    fn port(&self) -> u16 {
        self.server.as_ref().map(|s| s.port()).unwrap_or_default()
    }

    fn db_path(&self) -> PathBuf {
        self.dir.path().join("nb.redb")
    }

    fn etcd_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    pub fn url(&self) -> String {
        match self.kind {
            Kind::Embedded => format!("embedded:{}", self.db_path().display()),
            Kind::Etcd => format!("etcd://127.0.0.1:{}/conformance", self.port()),
            Kind::Redis => format!("redis://127.0.0.1:{}/0", self.port()),
            Kind::ZooKeeper => format!("zk://127.0.0.1:{}/conformance", self.port()),
        }
    }

    fn zk_hosts(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    fn zk_options(&self) -> nbdb::zk::Options {
        nbdb::zk::Options {
            retention: self.retention,
            ..Default::default()
        }
    }

    async fn zk(&self) -> ZooKeeper {
        ZooKeeper::connect(&self.zk_hosts(), "/conformance", self.zk_options())
            .await
            .expect("zookeeper client")
    }

    fn redis_options(&self) -> nbdb::redis::Options {
        nbdb::redis::Options {
            retention: self.retention,
            ..nbdb::redis::Options::default()
        }
    }

    /// A new client of the store. For the embedded store: the instance already open, or
    /// the file opened again once a previous instance has let go of it.
    pub async fn open(&self) -> Arc<dyn Store> {
        match self.kind {
            Kind::Embedded => {
                if let Some(s) = self.embedded.lock().expect("lock").upgrade() {
                    return s;
                }
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    match Embedded::open_with_retention(self.db_path(), self.retention) {
                        Ok(s) => {
                            let s: Arc<dyn Store> = Arc::new(s);
                            *self.embedded.lock().expect("lock") = Arc::downgrade(&s);
                            return s;
                        }
                        Err(e) if Instant::now() > deadline => panic!("reopen: {e}"),
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            }
            Kind::Etcd => Arc::new(
                Etcd::connect(
                    vec![self.etcd_endpoint()],
                    "/conformance/",
                    self.retention as usize,
                )
                .await
                .expect("etcd client"),
            ),
            Kind::Redis => Arc::new(
                Redis::connect(&self.url(), self.redis_options())
                    .await
                    .expect("redis client"),
            ),
            Kind::ZooKeeper => Arc::new(self.zk().await),
        }
    }

    /// Waits until the server answers its protocol, not only its port.
    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ping().await {
            assert!(
                Instant::now() < deadline,
                "{:?} server not ready",
                self.kind
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn ping(&self) -> bool {
        match self.kind {
            Kind::Embedded => true,
            Kind::Etcd => {
                let Ok(mut c) = etcd_client::Client::connect([self.etcd_endpoint()], None).await
                else {
                    return false;
                };
                matches!(
                    tokio::time::timeout(Duration::from_secs(2), c.get("ping", None)).await,
                    Ok(Ok(_))
                )
            }
            Kind::Redis => {
                let Ok(client) = redis::Client::open(self.url()) else {
                    return false;
                };
                let Ok(mut con) = client.get_multiplexed_async_connection().await else {
                    return false;
                };
                redis::cmd("PING")
                    .query_async::<String>(&mut con)
                    .await
                    .is_ok()
            }
            Kind::ZooKeeper => {
                let Ok(s) = ZooKeeper::new(&self.zk_hosts(), "/conformance", self.zk_options())
                else {
                    return false;
                };
                s.revision().await.is_ok()
            }
        }
    }

    /// Stops the server gracefully (data kept on disk) and starts it again on the same
    /// ports and data.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.as_mut() {
            tokio::task::block_in_place(|| server.restart()).expect("server restart");
        }
        self.wait_ready().await;
    }

    /// Pushes every revision up to now out of the store's change log.
    pub async fn force_compaction(&self, store: &Arc<dyn Store>) {
        // The embedded store trims in steps (of 1000 at most) beyond its retention; the etcd client
        // keeps a buffer as long as the retention.
        let mut tasks = Vec::new();
        for chunk in 0..12u32 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..100u32 {
                    let id = format!("{chunk}-{i}");
                    s.commit(vec![Op::put("filler", &id, vec![], Expect::Any)])
                        .await
                        .expect("filler");
                }
            }));
        }
        for t in tasks {
            t.await.expect("filler task");
        }
        let now = store.revision().await.expect("revision");
        match self.kind {
            Kind::Embedded => {}
            Kind::Etcd => {
                let admin = Etcd::connect(
                    vec![self.etcd_endpoint()],
                    "/conformance/",
                    self.retention as usize,
                )
                .await
                .expect("etcd admin");
                admin.compact(now).await.expect("compact");
            }
            Kind::Redis => {
                let admin = Redis::connect(&self.url(), self.redis_options())
                    .await
                    .expect("redis admin");
                admin.trim(now).await.expect("trim");
            }
            Kind::ZooKeeper => self.zk().await.trim(now).await.expect("trim"),
        }
    }

    /// Stores bytes that are not a valid object under `table/id`. The store must be
    /// closed for the embedded backend (the file is locked while open).
    pub async fn plant_garbage(&self, table: &str, id: &str) {
        match self.kind {
            Kind::Embedded => {
                const OBJECTS: redb::TableDefinition<'_, &str, &[u8]> =
                    redb::TableDefinition::new("objects");
                let deadline = Instant::now() + Duration::from_secs(10);
                let db = loop {
                    match redb::Database::create(self.db_path()) {
                        Ok(db) => break db,
                        Err(e) if Instant::now() > deadline => panic!("open redb: {e}"),
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                };
                let txn = db.begin_write().expect("write txn");
                {
                    let mut t = txn.open_table(OBJECTS).expect("objects");
                    let key = format!("{table}/{id}");
                    t.insert(key.as_str(), &b"\x01\x02\x03"[..])
                        .expect("insert");
                }
                txn.commit().expect("commit");
            }
            Kind::Etcd => {
                let admin = Etcd::connect(
                    vec![self.etcd_endpoint()],
                    "/conformance/",
                    self.retention as usize,
                )
                .await
                .expect("etcd admin");
                admin
                    .put_raw(table, id, b"\xff\xff\xff\x7fgarbage".to_vec())
                    .await
                    .expect("put raw");
            }
            Kind::Redis => {
                let admin = Redis::connect(&self.url(), self.redis_options())
                    .await
                    .expect("redis admin");
                admin
                    .put_raw(table, id, &[("r", b"not-a-number"), ("v", b"x")])
                    .await
                    .expect("put raw");
            }
            Kind::ZooKeeper => self
                .zk()
                .await
                .put_raw(table, id, b"\x01\x02\x03")
                .await
                .expect("put raw"),
        }
    }
}
