//! OVN 23.03 beside Dragonflow in the scale bench, where its Debian packages are installed
//! (`ovn-central`, `ovn-host`): its own NB and SB databases (`ovsdb-server`), `ovn-northd`,
//! and one `ovn-controller` per host on that host's OVS (userspace datapath, Geneve on the
//! same underlay). The topology goes in through `ovn-nbctl` in one transaction; a port is
//! up when OVN says so (`Logical_Switch_Port.up`, set once its flows are in).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether OVN's binaries are here.
pub fn available() -> bool {
    Command::new("ovn-northd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A child process ended when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// OVN's central part: the NB and SB databases and ovn-northd, in a directory of its own.
pub struct Central {
    dir: tempfile::TempDir,
    procs: Vec<Proc>,
}

fn wait_for_path(p: &Path) {
    let start = Instant::now();
    while !p.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} never came",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(c: &mut Command) -> String {
    let out = c.output().expect("run");
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Central {
    pub fn start() -> Central {
        let dir = tempfile::Builder::new()
            .prefix("ovn-")
            .tempdir_in("/tmp")
            .expect("dir");
        let mut procs = Vec::new();
        for db in ["nb", "sb"] {
            let file = dir.path().join(format!("{db}.db"));
            run(Command::new("ovsdb-tool")
                .arg("create")
                .arg(&file)
                .arg(format!("/usr/share/ovn/ovn-{db}.ovsschema")));
            let sock = dir.path().join(format!("{db}.sock"));
            let child = Command::new("ovsdb-server")
                .arg(&file)
                .arg(format!("--remote=punix:{}", sock.display()))
                .arg(format!(
                    "--unixctl={}",
                    dir.path().join(format!("{db}.ctl")).display()
                ))
                .arg(format!(
                    "--log-file={}",
                    dir.path().join(format!("{db}.log")).display()
                ))
                .arg(format!(
                    "--pidfile={}",
                    dir.path().join(format!("{db}.pid")).display()
                ))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("ovsdb-server");
            procs.push(Proc(child));
            wait_for_path(&sock);
        }
        let c = Central { dir, procs };
        let northd = Command::new("ovn-northd")
            .arg(format!("--ovnnb-db=unix:{}", c.nb().display()))
            .arg(format!("--ovnsb-db=unix:{}", c.sb().display()))
            .arg(format!(
                "--unixctl={}",
                c.dir.path().join("northd.ctl").display()
            ))
            .arg(format!(
                "--log-file={}",
                c.dir.path().join("northd.log").display()
            ))
            .arg(format!(
                "--pidfile={}",
                c.dir.path().join("northd.pid").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ovn-northd");
        let mut c = c;
        c.procs.push(Proc(northd));
        c
    }

    pub fn nb(&self) -> PathBuf {
        self.dir.path().join("nb.sock")
    }

    pub fn sb(&self) -> PathBuf {
        self.dir.path().join("sb.sock")
    }

    /// ovn-northd's pid.
    pub fn northd_pid(&self) -> u32 {
        self.procs.last().expect("northd").0.id()
    }

    /// `ovn-nbctl` with `args` (several commands joined by `--`).
    pub fn nbctl<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        run(Command::new("ovn-nbctl")
            .arg(format!("--db=unix:{}", self.nb().display()))
            .arg("--timeout=600")
            .args(args))
    }

    /// The logical switch ports that are up.
    pub fn up(&self) -> std::collections::BTreeSet<String> {
        self.nbctl(&[
            "--format=csv",
            "--no-headings",
            "--columns=name,up",
            "list",
            "Logical_Switch_Port",
        ])
        .lines()
        .filter_map(|l| {
            let (name, up) = l.split_once(',')?;
            (up.trim() == "true").then(|| name.trim_matches('"').to_string())
        })
        .collect()
    }
}

/// `ovn-controller` for host `name` (tunnel address `ip`) on `ovs`, which it takes over
/// (it makes br-int, netdev).
pub fn controller(ovs: &testbed::Ovs, central: &Central, name: &str, ip: &str) -> (Child, u32) {
    ovs.vsctl([
        "set".to_string(),
        "open".into(),
        ".".into(),
        format!("external_ids:system-id={name}"),
        format!("external_ids:ovn-remote=unix:{}", central.sb().display()),
        "external_ids:ovn-encap-type=geneve".into(),
        format!("external_ids:ovn-encap-ip={ip}"),
        "external_ids:ovn-bridge-datapath-type=netdev".into(),
    ])
    .expect("ovn external_ids");
    let log = ovs.dir().join("ovn-controller.log");
    // ovn-controller keeps its control socket in OVN_RUNDIR (not OVS_RUNDIR, and it takes
    // no --unixctl): the host's own directory.
    let child = ovs
        .cmd("ovn-controller")
        .env("OVN_RUNDIR", ovs.dir())
        .arg(format!("unix:{}", ovs.db_sock().display()))
        .arg(format!("--log-file={}", log.display()))
        .arg("--no-chdir")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ovn-controller");
    let start = Instant::now();
    while ovs.vsctl(["br-exists", "br-int"]).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "ovn-controller made no br-int: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // `ip netns exec` execs ovn-controller itself: the child's pid is its pid.
    let pid = child.id();
    (child, pid)
}

/// The topology as ovn-nbctl commands: routers, networks (a /24 each, joined to router
/// `i mod routers`), and `ports` port names with their MAC and address.
pub fn topology(
    n_routers: usize,
    n_nets: usize,
    ports: &[(String, String, String, usize)],
) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut cmd = |parts: &[&str]| {
        if !a.is_empty() {
            a.push("--".into());
        }
        a.extend(parts.iter().map(|s| s.to_string()));
    };
    for r in 0..n_routers {
        cmd(&["lr-add", &format!("r{r}")]);
    }
    for i in 0..n_nets {
        let (n, r) = (format!("n{i}"), format!("r{}", i % n_routers));
        let lrp = format!("{r}-{n}");
        let mac = format!("02:00:00:{:02x}:{:02x}:01", i / 256, i % 256);
        cmd(&["ls-add", &n]);
        cmd(&[
            "lrp-add",
            &r,
            &lrp,
            &mac,
            &format!("10.{}.{}.1/24", i / 256, i % 256),
        ]);
        let lsp = format!("{n}-{r}");
        cmd(&["lsp-add", &n, &lsp]);
        cmd(&["lsp-set-type", &lsp, "router"]);
        cmd(&["lsp-set-addresses", &lsp, "router"]);
        cmd(&["lsp-set-options", &lsp, &format!("router-port={lrp}")]);
    }
    for (name, mac, ip, net) in ports {
        cmd(&["lsp-add", &format!("n{net}"), name]);
        cmd(&["lsp-set-addresses", name, &format!("{mac} {ip}")]);
    }
    a
}
