//! Real etcd and Redis servers for tests and benchmarks: each in its own temp dir on free
//! loopback ports, killed on drop. Their data survives [`StoreServer::restart`].

use std::io;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Etcd,
    Redis,
}

/// A running etcd or redis-server.
#[derive(Debug)]
pub struct StoreServer {
    pub kind: StoreKind,
    dir: tempfile::TempDir,
    /// Client port, and etcd's peer port.
    ports: (u16, u16),
    child: Option<Child>,
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl StoreServer {
    /// Starts a server; data goes to tmpfs when there is one (etcd fsyncs every commit).
    pub fn start(kind: StoreKind) -> io::Result<StoreServer> {
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
        let mut s = StoreServer {
            kind,
            dir,
            ports: (free_port()?, free_port()?),
            child: None,
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
        match self.kind {
            StoreKind::Etcd => format!("etcd://127.0.0.1:{}", self.ports.0),
            StoreKind::Redis => format!("redis://127.0.0.1:{}/0", self.ports.0),
        }
    }

    /// The client port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.ports.0
    }

    fn spawn(&mut self) -> io::Result<bool> {
        let (client, peer) = self.ports;
        let dir = self.dir.path();
        let mut cmd = match self.kind {
            StoreKind::Etcd => {
                let (curl, purl) = (
                    format!("http://127.0.0.1:{client}"),
                    format!("http://127.0.0.1:{peer}"),
                );
                let mut c = Command::new("etcd");
                c.arg("--name")
                    .arg("test")
                    .arg("--data-dir")
                    .arg(dir.join("etcd"));
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
                c.arg("--initial-cluster").arg(format!("test={purl}"));
                c.args(["--logger", "zap", "--log-level", "error"]);
                c
            }
            StoreKind::Redis => {
                let mut c = Command::new("redis-server");
                c.args(["--port", &client.to_string(), "--bind", "127.0.0.1"]);
                c.arg("--dir").arg(dir);
                c.args(["--save", "", "--appendonly", "yes", "--daemonize", "no"]);
                c.arg("--logfile").arg(dir.join("redis.log"));
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().map_err(|e| {
            io::Error::other(format!(
                "cannot start {:?} ({e}): install etcd-server and redis-server (scripts/setup)",
                self.kind
            ))
        })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                self.child = None;
                return Ok(false);
            }
            if TcpStream::connect(("127.0.0.1", client)).is_ok() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(io::Error::other(format!(
            "{:?} server not listening after 30 s",
            self.kind
        )))
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

impl Drop for StoreServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
