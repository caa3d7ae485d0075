//! Real Open vSwitch instances and network namespaces for tests.
//!
//! Each [`Ovs`] runs its own `ovsdb-server` and `ovs-vswitchd --disable-system` (userspace
//! datapath) in a private directory given through `OVS_RUNDIR`/`OVS_LOGDIR`/`OVS_DBDIR`, so
//! several instances coexist and nothing touches the machine's own OVS. Everything is torn
//! down on drop. Tests that need root call [`require_root`] and skip with a clear message.

pub mod bench;
pub mod stores;

pub use stores::{StoreKind, StoreServer};

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// True when running as root (needed for OVS and namespaces).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// True when the Open vSwitch binaries are installed.
pub fn have_ovs() -> bool {
    Command::new("ovs-vswitchd")
        .arg("--version")
        .output()
        .is_ok()
}

/// Returns false (and says why on stderr) when a real-OVS test cannot run here.
///
/// Only a missing root is a reason to skip; a root machine without OVS is a broken
/// set-up and fails loudly, so CI cannot silently skip the real tests.
pub fn require_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("SKIP {test}: needs root (real Open vSwitch and network namespaces)");
        return false;
    }
    assert!(
        have_ovs(),
        "{test}: Open vSwitch is not installed; run scripts/setup first"
    );
    true
}

fn run(mut cmd: Command) -> io::Result<String> {
    let shown = format!("{cmd:?}");
    let out: Output = cmd.output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `name` (removing a leftover of the same name first) with `lo` up.
    pub fn new(name: &str) -> io::Result<Netns> {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        let mut c = Command::new("ip");
        c.args(["netns", "add", name]);
        run(c)?;
        let ns = Netns {
            name: name.to_string(),
        };
        ns.exec(["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs a command inside the namespace and returns its stdout.
    pub fn exec<I, S>(&self, argv: I) -> io::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(self.command(argv))
    }

    /// A command that will run inside the namespace.
    pub fn command<I, S>(&self, argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(argv);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Creates a veth pair `a`/`b`, puts `a` into namespace `ns_a` (if given) and `b` into
/// `ns_b` (if given). Both ends are left down. The pair is made under temporary names and
/// renamed where it lands, so `a` may be `eth0` without touching the machine's own `eth0`.
pub fn veth(a: &str, ns_a: Option<&Netns>, b: &str, ns_b: Option<&Netns>) -> io::Result<()> {
    let tmp_a = unique_name("vta");
    let tmp_b = unique_name("vtb");
    let mut c = Command::new("ip");
    c.args([
        "link", "add", &tmp_a, "type", "veth", "peer", "name", &tmp_b,
    ]);
    run(c)?;
    for (tmp, dev, ns) in [(&tmp_a, a, ns_a), (&tmp_b, b, ns_b)] {
        let mut c = Command::new("ip");
        if let Some(ns) = ns {
            c.args(["link", "set", tmp, "netns", ns.name()]);
            run(c)?;
            c = Command::new("ip");
            c.args(["-n", ns.name()]);
        }
        c.args(["link", "set", tmp, "name", dev]);
        run(c)?;
    }
    Ok(())
}

/// A private Open vSwitch: ovsdb-server plus ovs-vswitchd on the userspace datapath.
#[derive(Debug)]
pub struct Ovs {
    dir: tempfile::TempDir,
    netns: Option<String>,
    /// The namespace [`Ovs::start`] made for this instance; removed after the daemons stop.
    own_ns: Option<Netns>,
}

/// A namespace name unique to this process and call.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Ovs {
    /// Starts OVS in a network namespace of its own. Two userspace datapaths in one
    /// namespace clash (each opens a tap device named `ovs-netdev`), so tests that run in
    /// parallel must not share one.
    pub fn start() -> io::Result<Ovs> {
        let ns = Netns::new(&unique_name("tb"))?;
        let mut ovs = Self::start_in(Some(ns.name().to_string()))?;
        ovs.own_ns = Some(ns);
        Ok(ovs)
    }

    /// Starts OVS in the caller's namespace (reachable over loopback TCP). Do not add
    /// netdev bridges to such an instance while another one may run (see [`Ovs::start`]).
    pub fn start_here() -> io::Result<Ovs> {
        Self::start_in(None)
    }

    /// Starts OVS inside network namespace `ns` (the "host").
    pub fn start_in_netns(ns: &Netns) -> io::Result<Ovs> {
        Self::start_in(Some(ns.name().to_string()))
    }

    /// The namespace the daemons run in (None: the caller's).
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The namespace [`Ovs::start`] made, where ports for its bridges must live.
    pub fn own_netns(&self) -> Option<&Netns> {
        self.own_ns.as_ref()
    }

    fn start_in(netns: Option<String>) -> io::Result<Ovs> {
        // Short path: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new().prefix("ovs-").tempdir_in("/tmp")?;
        let ovs = Ovs {
            dir,
            netns,
            own_ns: None,
        };
        let d = ovs.dir().to_path_buf();
        let db = d.join("conf.db");
        let mut c = ovs.cmd("ovsdb-tool");
        c.arg("create").arg(&db).arg(schema_path());
        run(c)?;
        ovs.start_ovsdb()?;
        ovs.vsctl(["--no-wait", "init"])?;
        ovs.start_vswitchd()?;
        Ok(ovs)
    }

    /// The private directory (OVS_RUNDIR, OVS_LOGDIR and OVS_DBDIR).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The ovsdb-server unix socket.
    pub fn db_sock(&self) -> PathBuf {
        self.dir().join("db.sock")
    }

    /// The management socket of `bridge`, where `ovs-ofctl` and controllers connect.
    pub fn mgmt_sock(&self, bridge: &str) -> PathBuf {
        self.dir().join(format!("{bridge}.mgmt"))
    }

    /// A command for an OVS tool with this instance's environment (and namespace).
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

    /// Runs `ovs-vsctl` against this instance.
    pub fn vsctl<I, S>(&self, args: I) -> io::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.cmd("ovs-vsctl");
        c.arg(format!("--db=unix:{}", self.db_sock().display()))
            .arg("--timeout=10")
            .args(args);
        run(c)
    }

    /// Runs `ovs-ofctl -O OpenFlow13` against this instance.
    pub fn ofctl<I, S>(&self, args: I) -> io::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.cmd("ovs-ofctl");
        c.args(["-O", "OpenFlow13"]).args(args);
        run(c)
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
        run(c)
    }

    /// Brings up `dev`, the host end of a VM's interface in this instance's namespace, with
    /// no address at all (IPv6 off, so not even a link-local one), as a hypervisor's VM
    /// ports are. With the userspace datapath, OVS checks every output it translates for a
    /// tunnel endpoint by scanning all the addresses in its namespace: addressed VM ports
    /// make each translation and revalidation cost grow with the ports (see
    /// docs/operations.md, "Userspace datapath").
    pub fn vm_port_up(&self, dev: &str) -> io::Result<()> {
        run({
            let mut c = self.cmd("sysctl");
            c.args(["-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=1")]);
            c
        })?;
        run({
            let mut c = self.cmd("ip");
            c.args(["link", "set", dev, "up"]);
            c
        })
        .map(|_| ())
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
        run(self.daemon("ovs-vswitchd", &[&db, "--disable-system"])).map(|_| ())
    }

    fn start_ovsdb(&self) -> io::Result<()> {
        let db = self.dir().join("conf.db").display().to_string();
        let sock = format!("--remote=punix:{}", self.db_sock().display());
        let args = [
            &db,
            &sock,
            "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
        ];
        run(self.daemon("ovsdb-server", &args)).map(|_| ())
    }

    /// An OVS daemon detached with its pid file, control socket and log in the directory.
    fn daemon(&self, name: &str, args: &[&str]) -> Command {
        let d = self.dir();
        let mut c = self.cmd(name);
        c.args(args)
            .arg(format!(
                "--pidfile={}",
                d.join(format!("{name}.pid")).display()
            ))
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
        let pidfile = self.dir().join(format!("{name}.pid"));
        if let Ok(pid) = std::fs::read_to_string(&pidfile) {
            let pid = pid.trim().to_string();
            let _ = Command::new("kill").arg(&pid).output();
            wait_for(Duration::from_secs(5), || {
                !Path::new(&format!("/proc/{pid}")).exists()
            });
            let _ = Command::new("kill").args(["-9", &pid]).output();
            let _ = std::fs::remove_file(pidfile);
        }
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        self.stop_daemon("ovs-vswitchd");
        self.stop_daemon("ovsdb-server");
    }
}

fn schema_path() -> &'static str {
    "/usr/share/openvswitch/vswitch.ovsschema"
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ovs_starts_and_takes_a_bridge() {
        if !require_root("ovs_starts_and_takes_a_bridge") {
            return;
        }
        let ovs = Ovs::start().expect("start ovs");
        ovs.add_bridge("br-test").expect("add bridge");
        let flows = ovs.ofctl(["dump-flows", "br-test"]).expect("dump-flows");
        assert!(flows.contains("OFPST_FLOW reply"), "{flows}");
        let dir = ovs.dir().to_path_buf();
        drop(ovs);
        assert!(!dir.exists(), "directory left behind");
    }

    #[test]
    fn a_vm_port_carries_no_address() {
        if !require_root("a_vm_port_carries_no_address") {
            return;
        }
        let ovs = Ovs::start().expect("start ovs");
        ovs.add_bridge("br-int").expect("add bridge");
        let vm = Vm::plug(&ovs, "br-int", "p-1", "fa:16:3e:00:00:01", "10.9.0.1/24").expect("plug");
        // The VM's side keeps its addresses (IPv6 link-local included, once DAD starts).
        let ip = |args: &[&str]| {
            let out = ovs.cmd("ip").args(args).output().expect("ip");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert!(ip(&["-o", "link", "show", "tapp1"]).contains("state UP"));
        // Give the kernel the time it would take to add a link-local address.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(ip(&["-o", "addr", "show", "dev", "tapp1"]), "");
        assert!(
            vm.ns
                .exec(["ip", "-o", "addr", "show", "dev", "eth0"])
                .unwrap()
                .contains("10.9.0.1/24")
        );
    }

    #[test]
    fn ovs_runs_inside_a_namespace() {
        if !require_root("ovs_runs_inside_a_namespace") {
            return;
        }
        let ns = Netns::new(&unique_name("tbh")).expect("netns");
        let ovs = Ovs::start_in_netns(&ns).expect("start ovs");
        ovs.add_bridge("br-int").expect("add bridge");
        veth("tb-vm1", None, "tb-vm1-h", Some(&ns)).expect("veth");
        ovs.vsctl(["add-port", "br-int", "tb-vm1-h"])
            .expect("add-port");
        let ports = ovs.vsctl(["list-ports", "br-int"]).expect("list-ports");
        assert_eq!(ports.trim(), "tb-vm1-h");
        let _ = Command::new("ip").args(["link", "del", "tb-vm1"]).output();
    }
}

/// A VM: a namespace whose `eth0` is plugged into a bridge of an [`Ovs`].
#[derive(Debug)]
pub struct Vm {
    pub ns: Netns,
    /// The OpenFlow port OVS gave its interface.
    pub ofport: u32,
}

impl Vm {
    /// Plugs a new VM into `bridge` of `ovs` as Neutron port `iface_id`, with `mac` and
    /// `cidr` (e.g. `10.0.0.5/24`) on its `eth0` (checksum offload off, as the userspace
    /// datapath needs).
    pub fn plug(ovs: &Ovs, bridge: &str, iface_id: &str, mac: &str, cidr: &str) -> io::Result<Vm> {
        let ns = Netns::new(&unique_name("vm"))?;
        let tap = format!(
            "tap{}",
            &iface_id
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(11)
                .collect::<String>()
        );
        veth("eth0", Some(&ns), &tap, ovs.own_netns())?;
        ns.exec(["ip", "link", "set", "eth0", "address", mac])?;
        ns.exec(["ip", "addr", "add", cidr, "dev", "eth0"])?;
        ns.exec(["ip", "link", "set", "eth0", "up"])?;
        let _ = ns.exec(["ethtool", "-K", "eth0", "tx", "off"]);
        ovs.vm_port_up(&tap)?;
        ovs.vsctl([
            "add-port",
            bridge,
            &tap,
            "--",
            "set",
            "Interface",
            &tap,
            &format!("external_ids:iface-id={iface_id}"),
        ])?;
        let ofport = ovs
            .vsctl(["get", "Interface", &tap, "ofport"])?
            .trim()
            .parse()
            .map_err(|_| io::Error::other(format!("{tap}: no ofport")))?;
        Ok(Vm { ns, ofport })
    }

    /// Plugs a new VM with `mac` and no address on its `eth0` (for DHCP clients): as
    /// [`Vm::plug`], then the placeholder address taken off again.
    pub fn plug_unaddressed(ovs: &Ovs, bridge: &str, iface_id: &str, mac: &str) -> io::Result<Vm> {
        let vm = Vm::plug(ovs, bridge, iface_id, mac, "192.0.0.8/32")?;
        vm.ns.exec(["ip", "-4", "addr", "flush", "dev", "eth0"])?;
        Ok(vm)
    }

    /// True when `ip` answers a ping (the neighbour cache flushed first, so an earlier
    /// failed ARP does not hold the attempt back).
    pub fn pings(&self, ip: &str) -> bool {
        let _ = self.ns.exec(["ip", "neigh", "flush", "dev", "eth0"]);
        self.ns
            .exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", ip])
            .is_ok()
    }
}
