//! Real etcd, Redis and ZooKeeper servers on free loopback ports: for tests and benchmarks each in its
//! own temp dir and killed on drop (their data survives [`StoreServer::restart`]); for the
//! sandbox detached, in a directory it owns, left running.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Etcd,
    Redis,
    /// A standalone ZooKeeper (Debian's `zookeeper`, run with `java`).
    ZooKeeper,
}

/// A running etcd or redis-server.
#[derive(Debug)]
pub struct StoreServer {
    pub kind: StoreKind,
    dir: Dir,
    /// Client port, and etcd's peer port.
    ports: (u16, u16),
    child: Option<Child>,
    /// Redis's `requirepass`, when it asks for one.
    password: Option<String>,
    /// TLS only, with client certificates required (etcd and Redis).
    tls: Option<crate::Certs>,
}

/// Where the data lives: a temp dir, removed with the server (scoped), or a directory of
/// the caller's with the server's output in `log` (detached).
#[derive(Debug)]
enum Dir {
    Temp(tempfile::TempDir),
    Kept { dir: PathBuf, log: PathBuf },
}

pub(crate) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl StoreServer {
    /// Starts a server; data goes to tmpfs when there is one (etcd fsyncs every commit).
    pub fn start(kind: StoreKind) -> io::Result<StoreServer> {
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
        Self::start_in(kind, Dir::Temp(dir), None)
    }

    /// A Redis that asks every client for `password` (`requirepass`).
    pub fn start_redis_with_password(password: &str) -> io::Result<StoreServer> {
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
        Self::start_in(StoreKind::Redis, Dir::Temp(dir), Some(password.to_string()))
    }

    /// An etcd or Redis that speaks only TLS and asks every client for a certificate of
    /// its own CA ([`StoreServer::certs`]); [`StoreServer::url`] presents one.
    pub fn start_tls(kind: StoreKind) -> io::Result<StoreServer> {
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
        let certs = crate::Certs::make(&dir.path().join("certs"))?;
        let mut s = StoreServer {
            kind,
            dir: Dir::Temp(dir),
            ports: (free_port()?, free_port()?),
            child: None,
            password: None,
            tls: Some(certs),
        };
        for _ in 0..3 {
            if s.spawn()? {
                return Ok(s);
            }
            s.ports = (free_port()?, free_port()?);
        }
        Err(io::Error::other(format!(
            "{kind:?} TLS server did not start"
        )))
    }

    /// The certificates of a [`StoreServer::start_tls`] server.
    pub fn certs(&self) -> Option<&crate::Certs> {
        self.tls.as_ref()
    }

    /// Starts a server detached (its own process group) with its data in `dir` (created)
    /// and its output in `log`: it keeps running when the value is dropped and after this
    /// process ends ([`StoreServer::pid`]). etcd compacts its history hourly.
    pub fn start_kept(kind: StoreKind, dir: &Path, log: &Path) -> io::Result<StoreServer> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let dir = Dir::Kept {
            dir: dir.to_path_buf(),
            log: log.to_path_buf(),
        };
        Self::start_in(kind, dir, None)
    }

    fn start_in(kind: StoreKind, dir: Dir, password: Option<String>) -> io::Result<StoreServer> {
        let mut s = StoreServer {
            kind,
            dir,
            ports: (free_port()?, free_port()?),
            child: None,
            password,
            tls: None,
        };
        // Another test may take a probed port before the server binds it: try new ones.
        for _ in 0..3 {
            if s.spawn()? {
                return Ok(s);
            }
            s.ports = (free_port()?, free_port()?);
        }
        Err(io::Error::other(format!("{kind:?} server did not start")))
    }

    /// The URL `dragonflow` and `nbdb::open` take.
    pub fn url(&self) -> String {
        if let Some(certs) = &self.tls {
            return match self.kind {
                StoreKind::Etcd => format!("etcds://127.0.0.1:{}{}", self.ports.0, certs.query()),
                _ => format!("rediss://127.0.0.1:{}/0{}", self.ports.0, certs.query()),
            };
        }
        match self.kind {
            StoreKind::Etcd => format!("etcd://127.0.0.1:{}", self.ports.0),
            StoreKind::Redis => format!("redis://127.0.0.1:{}/0", self.ports.0),
            StoreKind::ZooKeeper => format!("zk://127.0.0.1:{}", self.ports.0),
        }
    }

    /// The client port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.ports.0
    }

    /// The server's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) -> io::Result<bool> {
        let (client, peer) = self.ports;
        let dir = match &self.dir {
            Dir::Temp(t) => t.path(),
            Dir::Kept { dir, .. } => dir,
        };
        let mut cmd = match self.kind {
            StoreKind::Etcd => {
                let purl = format!("http://127.0.0.1:{peer}");
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                let mut c = etcd(
                    "test",
                    &dir.join("etcd"),
                    (client, peer),
                    &format!("test={purl}"),
                    scheme,
                );
                if let Some(t) = &self.tls {
                    c.arg("--cert-file").arg(&t.server_cert);
                    c.arg("--key-file").arg(&t.server_key);
                    c.arg("--trusted-ca-file").arg(&t.ca);
                    c.arg("--client-cert-auth");
                }
                if matches!(self.dir, Dir::Kept { .. }) {
                    c.args(["--auto-compaction-retention", "1"]);
                }
                c
            }
            StoreKind::Redis => {
                let mut c = Command::new("redis-server");
                match &self.tls {
                    None => c.args(["--port", &client.to_string()]),
                    Some(t) => c
                        .args(["--port", "0", "--tls-port", &client.to_string()])
                        .arg("--tls-cert-file")
                        .arg(&t.server_cert)
                        .arg("--tls-key-file")
                        .arg(&t.server_key)
                        .arg("--tls-ca-cert-file")
                        .arg(&t.ca)
                        .args(["--tls-auth-clients", "yes"]),
                };
                c.args(["--bind", "127.0.0.1"]);
                c.arg("--dir").arg(dir);
                c.args(["--save", "", "--appendonly", "yes", "--daemonize", "no"]);
                c.arg("--logfile").arg(dir.join("redis.log"));
                if let Some(p) = &self.password {
                    c.args(["--requirepass", p]);
                }
                c
            }
            StoreKind::ZooKeeper => zookeeper(dir, client)?,
        };
        let missing = |e: io::Error| {
            io::Error::other(format!(
                "cannot start {:?} ({e}): install etcd-server, redis-server and zookeeper \
                 (scripts/setup)",
                self.kind
            ))
        };
        let child = match &self.dir {
            Dir::Temp(_) => cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(missing)?,
            Dir::Kept { log, .. } => crate::process::spawn_detached_child(&mut cmd, log)?,
        };
        self.child = Some(child);
        match listening(&mut self.child, client, Duration::from_secs(30)) {
            Some(up) => Ok(up),
            None => {
                let log = match &self.dir {
                    Dir::Temp(_) => String::new(),
                    Dir::Kept { log, .. } => format!(": {}", crate::tail(log, 3)),
                };
                Err(io::Error::other(format!(
                    "{:?} server not listening after 30 s{log}",
                    self.kind
                )))
            }
        }
    }

    /// Stops the server gracefully (data kept) and starts it again on the same ports.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        if self.spawn()? {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "{:?} server did not restart",
                self.kind
            )))
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }
}

/// Waits until `port` on 127.0.0.1 accepts connections: `Some(true)`; the child exited
/// first (taken out of `child`, e.g. its port was taken): `Some(false)`; timeout: `None`.
pub(crate) fn listening(child: &mut Option<Child>, port: u16, within: Duration) -> Option<bool> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(c) = child.as_mut()
            && let Ok(Some(_)) = c.try_wait()
        {
            *child = None;
            return Some(false);
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(true);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// An etcd member `name` with its data in `data`, on `(client, peer)` ports of
/// 127.0.0.1, in the cluster `initial_cluster` (`name=http://…,…`), serving clients on
/// `client_scheme` (`http`, or `https` with the caller's certificate flags).
pub(crate) fn etcd(
    name: &str,
    data: &Path,
    (client, peer): (u16, u16),
    initial_cluster: &str,
    client_scheme: &str,
) -> Command {
    let (curl, purl) = (
        format!("{client_scheme}://127.0.0.1:{client}"),
        format!("http://127.0.0.1:{peer}"),
    );
    let mut c = Command::new("etcd");
    c.arg("--name").arg(name).arg("--data-dir").arg(data);
    c.args([
        "--listen-client-urls",
        &curl,
        "--advertise-client-urls",
        &curl,
    ]);
    c.args([
        "--listen-peer-urls",
        &purl,
        "--initial-advertise-peer-urls",
        &purl,
    ]);
    c.arg("--initial-cluster").arg(initial_cluster);
    c.args(["--logger", "zap", "--log-level", "error"]);
    c
}

/// Debian's ZooKeeper jar: its manifest names the libraries it needs.
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";

/// A standalone ZooKeeper on `port` with its data under `dir`: `ZooKeeperServerMain` with a
/// small config (below).
fn zookeeper(dir: &Path, port: u16) -> io::Result<Command> {
    let data = dir.join("zookeeper");
    std::fs::create_dir_all(&data)?;
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, zookeeper_cfg(&data, port))?;
    zookeeper_java("org.apache.zookeeper.server.ZooKeeperServerMain", &cfg)
}

/// A ZooKeeper config with no admin server, a short tick (sessions of 1 to 10 s), and the
/// `ruok` and `srvr` words.
pub(crate) fn zookeeper_cfg(data: &Path, port: u16) -> String {
    format!(
        "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
         maxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=ruok,srvr\n",
        data.display()
    )
}

/// ZooKeeper's `main` class on config `cfg`, with a small log preallocation (tmpfs) and
/// the JVM tuned to start fast (about 2 s here).
pub(crate) fn zookeeper_java(main: &str, cfg: &Path) -> io::Result<Command> {
    if !Path::new(ZOOKEEPER_JAR).exists() {
        return Err(io::Error::other(format!(
            "{ZOOKEEPER_JAR} missing: install zookeeper (scripts/setup)"
        )));
    }
    let mut c = Command::new("java");
    c.args([
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Xms32m",
        "-Xmx256m",
        "-Dzookeeper.admin.enableServer=false",
        "-Dzookeeper.preAllocSize=4096",
        "-cp",
        ZOOKEEPER_JAR,
        main,
    ]);
    c.arg(cfg);
    Ok(c)
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        if matches!(self.dir, Dir::Kept { .. }) {
            return;
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
