//! Real etcd clusters and ZooKeeper ensembles of several members on loopback (each member
//! its own ports and data dir, in one temp dir), for tests that kill a member: killed on
//! drop.

use crate::stores::{etcd, free_port, listening, zookeeper_cfg, zookeeper_java};
use serde_json::Value;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A running etcd cluster.
#[derive(Debug)]
pub struct EtcdCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
}

#[derive(Debug)]
struct Member {
    name: String,
    client: u16,
    /// etcd's peer port, ZooKeeper's quorum port.
    peer: u16,
    /// ZooKeeper's leader election port.
    election: u16,
    child: Option<Child>,
}

impl Member {
    fn new(name: String) -> io::Result<Member> {
        Ok(Member {
            name,
            client: free_port()?,
            peer: free_port()?,
            election: free_port()?,
            child: None,
        })
    }

    /// Kills the member with SIGKILL (no clean shutdown), as a crash would.
    fn kill(&mut self) -> io::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }
}

impl EtcdCluster {
    /// Starts `n` members and waits until each is healthy (the cluster has a leader).
    /// Data goes to tmpfs when there is one (etcd fsyncs every commit).
    pub fn start(n: usize) -> io::Result<EtcdCluster> {
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
        let mut c = EtcdCluster {
            dir,
            members: Vec::new(),
        };
        // Another test may take a probed port before a member binds it: try new ones.
        for attempt in 0..3 {
            c.kill_all();
            c.members = (0..n)
                .map(|i| Member::new(format!("m{i}-{attempt}")))
                .collect::<io::Result<_>>()?;
            if c.spawn()? {
                return Ok(c);
            }
        }
        Err(io::Error::other("etcd cluster did not start"))
    }

    /// Spawns every member (a new cluster needs a quorum of them up to elect a leader),
    /// then waits for each to report itself healthy. False when one exited meanwhile.
    fn spawn(&mut self) -> io::Result<bool> {
        let initial = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        for m in &mut self.members {
            let data = self.dir.path().join(&m.name);
            let mut cmd = etcd(&m.name, &data, (m.client, m.peer), &initial, "http");
            cmd.args(["--initial-cluster-token", "testbed"]);
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| io::Error::other(format!("cannot start etcd ({e}): scripts/setup")))?;
            m.child = Some(child);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            match listening(&mut m.child, m.client, Duration::from_secs(30)) {
                Some(true) => {}
                Some(false) => return Ok(false),
                None => return Err(io::Error::other("etcd member not listening after 30 s")),
            }
            // The client port is bound before the member has joined a cluster.
            while !self.healthy(i) {
                if Instant::now() > deadline {
                    return Err(io::Error::other("etcd cluster not healthy after 30 s"));
                }
                if let Some(Ok(Some(_))) = self.members[i].child.as_mut().map(Child::try_wait) {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(true)
    }

    /// The URL `dragonflow` and `nbdb::open` take, listing every member.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client))
            .collect();
        format!("etcd://{}", hosts.join(","))
    }

    /// Member `i`'s client port.
    pub fn port(&self, i: usize) -> u16 {
        self.members[i].client
    }

    /// True when member `i` answers `/health` with a leader.
    pub fn healthy(&self, i: usize) -> bool {
        let url = format!("http://127.0.0.1:{}/health", self.members[i].client);
        agent()
            .get(&url)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|v| v["health"] == "true")
    }

    /// The index of the member that is the leader, as the live members report it
    /// (`etcdctl endpoint status` asks the same: the maintenance status of each).
    pub fn leader(&self) -> Option<usize> {
        let ids: Vec<Option<(String, String)>> = self
            .members
            .iter()
            .map(|m| {
                let url = format!("http://127.0.0.1:{}/v3/maintenance/status", m.client);
                let text = agent()
                    .post(&url)
                    .send("{}")
                    .ok()?
                    .body_mut()
                    .read_to_string()
                    .ok()?;
                let v: Value = serde_json::from_str(&text).ok()?;
                // uint64s are JSON strings in etcd's gateway.
                let id = v["header"]["member_id"].as_str()?.to_string();
                let leader = v["leader"].as_str()?.to_string();
                Some((id, leader))
            })
            .collect();
        let leader = ids.iter().flatten().map(|(_, l)| l).next()?;
        ids.iter()
            .position(|m| m.as_ref().is_some_and(|(id, _)| id == leader))
    }

    /// Kills member `i` with SIGKILL (no clean shutdown), as a crash would.
    pub fn kill(&mut self, i: usize) -> io::Result<()> {
        self.members[i].kill()
    }

    fn kill_all(&mut self) {
        for m in &mut self.members {
            let _ = m.kill();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into()
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// A running ZooKeeper ensemble (`QuorumPeerMain`, Debian's `zookeeper`).
#[derive(Debug)]
pub struct ZooKeeperEnsemble {
    dir: tempfile::TempDir,
    members: Vec<Member>,
}

impl ZooKeeperEnsemble {
    /// Starts `n` members and waits until each serves (in a quorum, as leader or follower).
    pub fn start(n: usize) -> io::Result<ZooKeeperEnsemble> {
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
        let mut z = ZooKeeperEnsemble {
            dir,
            members: Vec::new(),
        };
        // As for etcd: a probed port may be taken before the member binds it.
        for attempt in 0..3 {
            z.kill_all();
            z.members = (1..=n)
                .map(|i| Member::new(format!("zk{i}-{attempt}")))
                .collect::<io::Result<_>>()?;
            if z.spawn()? {
                return Ok(z);
            }
        }
        Err(io::Error::other("ZooKeeper ensemble did not start"))
    }

    fn spawn(&mut self) -> io::Result<bool> {
        let servers: String = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| format!("server.{}=127.0.0.1:{}:{}\n", i + 1, m.peer, m.election))
            .collect();
        for (i, m) in self.members.iter_mut().enumerate() {
            let data = self.dir.path().join(&m.name);
            std::fs::create_dir_all(&data)?;
            std::fs::write(data.join("myid"), format!("{}\n", i + 1))?;
            let cfg = data.join("zoo.cfg");
            let quorum = "initLimit=20\nsyncLimit=10\n";
            std::fs::write(&cfg, zookeeper_cfg(&data, m.client) + quorum + &servers)?;
            let mut cmd =
                zookeeper_java("org.apache.zookeeper.server.quorum.QuorumPeerMain", &cfg)?;
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| io::Error::other(format!("cannot start java ({e}): scripts/setup")))?;
            m.child = Some(child);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            match listening(&mut m.child, m.client, Duration::from_secs(60)) {
                Some(true) => {}
                Some(false) => return Ok(false),
                None => return Err(io::Error::other("ZooKeeper not listening after 60 s")),
            }
            while self.mode(i).is_none() {
                if Instant::now() > deadline {
                    return Err(io::Error::other(
                        "ZooKeeper ensemble not serving after 60 s",
                    ));
                }
                if let Some(Ok(Some(_))) = self.members[i].child.as_mut().map(Child::try_wait) {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(true)
    }

    /// The URL `dragonflow` and `nbdb::open` take, listing every member.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client))
            .collect();
        format!("zk://{}", hosts.join(","))
    }

    /// Member `i`'s mode (`leader`, `follower`) from its `srvr` word; None when it does
    /// not serve.
    fn mode(&self, i: usize) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.members[i].client)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"srvr").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let mode = out.lines().find_map(|l| l.strip_prefix("Mode: "))?;
        Some(mode.trim().to_string())
    }

    /// The index of the member that is the leader.
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len()).find(|&i| self.mode(i).as_deref() == Some("leader"))
    }

    /// Kills member `i` with SIGKILL (no clean shutdown), as a crash would.
    pub fn kill(&mut self, i: usize) -> io::Result<()> {
        self.members[i].kill()
    }

    fn kill_all(&mut self) {
        for m in &mut self.members {
            let _ = m.kill();
        }
    }
}

impl Drop for ZooKeeperEnsemble {
    fn drop(&mut self) {
        self.kill_all();
    }
}
