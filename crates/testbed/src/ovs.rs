//! A private Open vSwitch: its own `ovsdb-server` and `ovs-vswitchd --disable-system`
//! (userspace datapath) with sockets, pid files, database and logs in one directory given
//! through `OVS_RUNDIR`/`OVS_LOGDIR`/`OVS_DBDIR`, in a network namespace of its own or the
//! caller's; the OVS tools run against it; bridges and the ports a hypervisor would make.

use crate::netns::Netns;
use crate::process::{read_pid, run, wait_for};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The two OVS daemons, in the order they start.
const DAEMONS: [&str; 2] = ["ovsdb-server", "ovs-vswitchd"];

/// A private Open vSwitch instance. Started by [`Ovs::start`], [`Ovs::start_here`] or
/// [`Ovs::start_in_netns`], it lives in a temporary directory and is stopped and removed on
/// drop; started by [`Ovs::start_kept`] or named by [`Ovs::attach`], it keeps running.
#[derive(Debug)]
pub struct Ovs {
    dir: Dir,
    netns: Option<String>,
    /// The namespace [`Ovs::start`] made for this instance; removed after the daemons stop.
    own_ns: Option<Netns>,
}

/// Where an instance keeps its files: a temporary directory (removed with it) or one the
/// caller owns.
#[derive(Debug)]
enum Dir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Ovs {
    /// Starts OVS in a network namespace of its own. Two userspace datapaths in one
    /// namespace clash (each opens a tap device named `ovs-netdev`), so tests that run in
    /// parallel must not share one.
    pub fn start() -> io::Result<Ovs> {
        let ns = Netns::new(&crate::unique_name("tb"))?;
        let mut ovs = Self::start_temp(Some(ns.name().to_string()))?;
        ovs.own_ns = Some(ns);
        Ok(ovs)
    }

    /// Starts OVS in the caller's namespace (reachable over loopback TCP). Do not add
    /// netdev bridges to such an instance while another one may run (see [`Ovs::start`]).
    pub fn start_here() -> io::Result<Ovs> {
        Self::start_temp(None)
    }

    /// Starts OVS inside network namespace `ns` (the "host").
    pub fn start_in_netns(ns: &Netns) -> io::Result<Ovs> {
        Self::start_temp(Some(ns.name().to_string()))
    }

    /// Starts OVS inside `ns` with its files in `dir` (created), detached: the daemons
    /// keep running when the value is dropped and after this process ends (stop them by
    /// their pid files, [`Ovs::pids`]).
    pub fn start_kept(ns: &Netns, dir: &Path) -> io::Result<Ovs> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let ovs = Self::attach(Some(ns.name()), dir);
        ovs.init()?;
        Ok(ovs)
    }

    /// The instance whose files are in `dir`, running in namespace `netns` (None: the
    /// caller's), started earlier by this process or another; never stopped by this value.
    pub fn attach(netns: Option<&str>, dir: &Path) -> Ovs {
        Ovs {
            dir: Dir::Kept(dir.to_path_buf()),
            netns: netns.map(str::to_string),
            own_ns: None,
        }
    }

    fn start_temp(netns: Option<String>) -> io::Result<Ovs> {
        // Short path: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new().prefix("ovs-").tempdir_in("/tmp")?;
        let ovs = Ovs {
            dir: Dir::Temp(dir),
            netns,
            own_ns: None,
        };
        ovs.init()?;
        Ok(ovs)
    }

    /// A new database, then both daemons.
    fn init(&self) -> io::Result<()> {
        run(self
            .cmd("ovsdb-tool")
            .arg("create")
            .arg(self.dir().join("conf.db"))
            .arg(schema_path()))?;
        self.start_ovsdb()?;
        self.vsctl(["--no-wait", "init"])?;
        self.start_vswitchd()
    }

    /// The namespace the daemons run in (None: the caller's).
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The namespace [`Ovs::start`] made, where ports for its bridges must live.
    pub fn own_netns(&self) -> Option<&Netns> {
        self.own_ns.as_ref()
    }

    /// The private directory (OVS_RUNDIR, OVS_LOGDIR and OVS_DBDIR).
    pub fn dir(&self) -> &Path {
        match &self.dir {
            Dir::Temp(t) => t.path(),
            Dir::Kept(p) => p,
        }
    }

    /// The ovsdb-server unix socket.
    pub fn db_sock(&self) -> PathBuf {
        self.dir().join("db.sock")
    }

    /// The management socket of `bridge`, where `ovs-ofctl` and controllers connect.
    pub fn mgmt_sock(&self, bridge: &str) -> PathBuf {
        self.dir().join(format!("{bridge}.mgmt"))
    }

    /// The daemons that run, with their pids (from their pid files).
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        DAEMONS
            .iter()
            .filter_map(|d| Some((*d, read_pid(&self.pid_file(d))?)))
            .collect()
    }

    fn pid_file(&self, daemon: &str) -> PathBuf {
        self.dir().join(format!("{daemon}.pid"))
    }

    /// A command for an OVS tool (or any program) with this instance's environment, in
    /// its namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        };
        let d = self.dir();
        c.env("OVS_RUNDIR", d)
            .env("OVS_LOGDIR", d)
            .env("OVS_DBDIR", d);
        c
    }

    /// `ovs-vsctl ARGS` against this instance, as a command not yet run.
    pub fn vsctl_cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.cmd("ovs-vsctl");
        c.arg(format!("--db=unix:{}", self.db_sock().display()))
            .arg("--timeout=10")
            .args(args);
        c
    }

    /// Runs `ovs-vsctl` against this instance.
    pub fn vsctl<I, S>(&self, args: I) -> io::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(&mut self.vsctl_cmd(args))
    }

    /// Runs `ovs-ofctl -O OpenFlow13` against this instance.
    pub fn ofctl<I, S>(&self, args: I) -> io::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.cmd("ovs-ofctl").args(["-O", "OpenFlow13"]).args(args))
    }

    /// Runs `ovs-appctl` against ovs-vswitchd.
    pub fn appctl<I, S>(&self, args: I) -> io::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.cmd("ovs-appctl");
        c.arg("-t")
            .arg(self.dir().join("ovs-vswitchd.ctl"))
            .args(args);
        run(&mut c)
    }

    /// `ip ARGS` in this instance's namespace.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        run(self.cmd("ip").args(args))
    }

    /// Brings up `dev`, the host end of a VM's interface in this instance's namespace, with
    /// no address at all (IPv6 off, so not even a link-local one), as a hypervisor's VM
    /// ports are. With the userspace datapath, OVS checks every output it translates for a
    /// tunnel endpoint by scanning all the addresses in its namespace: addressed VM ports
    /// make each translation and revalidation cost grow with the ports (see
    /// docs/operations.md, "Userspace datapath").
    pub fn vm_port_up(&self, dev: &str) -> io::Result<()> {
        run(self
            .cmd("sysctl")
            .args(["-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=1")]))?;
        self.ip(&["link", "set", dev, "up"]).map(|_| ())
    }

    /// Adds a netdev bridge (fail_mode secure, OpenFlow 1.3) and waits for its mgmt socket.
    pub fn add_bridge(&self, name: &str) -> io::Result<()> {
        self.vsctl([
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
            "fail_mode=secure",
            "protocols=OpenFlow13",
        ])?;
        wait_for(Duration::from_secs(10), || self.mgmt_sock(name).exists())
            .then_some(())
            .ok_or_else(|| io::Error::other(format!("bridge {name}: no mgmt socket")))
    }

    /// Adds `bridge`, a netdev bridge in OVS's default (standalone, NORMAL) mode holding
    /// the NIC `nic` of this instance's namespace, both up, and `cidr` on the bridge if
    /// given: a host's underlay (`br-phy`, carrying the tunnel address, as the userspace
    /// datapath needs) or its bridge to a physical network (`br-ex`).
    pub fn add_nic_bridge(&self, bridge: &str, nic: &str, cidr: Option<&str>) -> io::Result<()> {
        self.vsctl([
            "add-br",
            bridge,
            "--",
            "set",
            "bridge",
            bridge,
            "datapath_type=netdev",
        ])?;
        self.vsctl(["add-port", bridge, nic])?;
        self.ip(&["link", "set", nic, "up"])?;
        if let Some(cidr) = cidr {
            self.ip(&["addr", "add", cidr, "dev", bridge])?;
        }
        self.ip(&["link", "set", bridge, "up"]).map(|_| ())
    }

    /// Restarts ovsdb-server on the same database file (for reconnect tests).
    pub fn restart_ovsdb(&self) -> io::Result<()> {
        self.stop_daemon("ovsdb-server");
        self.start_ovsdb()
    }

    /// Restarts ovs-vswitchd (its flows are lost; bridges and ports come back from the
    /// database).
    pub fn restart_vswitchd(&self) -> io::Result<()> {
        self.stop_daemon("ovs-vswitchd");
        self.start_vswitchd()
    }

    fn start_vswitchd(&self) -> io::Result<()> {
        let db = format!("unix:{}", self.db_sock().display());
        run(&mut self.daemon("ovs-vswitchd", &[&db, "--disable-system"])).map(|_| ())
    }

    fn start_ovsdb(&self) -> io::Result<()> {
        let db = self.dir().join("conf.db").display().to_string();
        let sock = format!("--remote=punix:{}", self.db_sock().display());
        let args = [
            &db,
            &sock,
            "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
        ];
        run(&mut self.daemon("ovsdb-server", &args)).map(|_| ())
    }

    /// An OVS daemon detached (its own session) with its pid file, control socket and log
    /// in the directory.
    fn daemon(&self, name: &str, args: &[&str]) -> Command {
        let d = self.dir();
        let mut c = self.cmd(name);
        c.args(args)
            .arg(format!("--pidfile={}", self.pid_file(name).display()))
            .arg(format!(
                "--unixctl={}",
                d.join(format!("{name}.ctl")).display()
            ))
            .arg(format!(
                "--log-file={}",
                d.join(format!("{name}.log")).display()
            ))
            .arg("--detach");
        c
    }

    fn stop_daemon(&self, name: &str) {
        let pidfile = self.pid_file(name);
        if let Some(pid) = read_pid(&pidfile) {
            crate::terminate(&[pid], Duration::from_secs(5));
            let _ = std::fs::remove_file(pidfile);
        }
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        if matches!(self.dir, Dir::Temp(_)) {
            for d in DAEMONS.iter().rev() {
                self.stop_daemon(d);
            }
        }
    }
}

/// The Open_vSwitch schema the packages install.
pub fn schema_path() -> &'static str {
    "/usr/share/openvswitch/vswitch.ovsschema"
}
