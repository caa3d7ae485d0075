//! Network namespaces and veth pairs: making them, running commands inside, finding them
//! again by a name prefix, removing them (with their `/etc/netns/NAME` entries).

use crate::process::{ip, run};
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A network namespace. Made by [`Netns::new`] it is deleted on drop (tests); made by
/// [`Netns::create_kept`] or named by [`Netns::attach`] it is left alone (the sandbox).
#[derive(Debug)]
pub struct Netns {
    name: String,
    keep: bool,
}

impl Netns {
    /// Creates namespace `name` (removing a leftover of the same name first) with `lo` up;
    /// deleted on drop.
    pub fn new(name: &str) -> io::Result<Netns> {
        delete(name);
        Self::create(name, false)
    }

    /// Creates namespace `name` with `lo` up and keeps it when the value is dropped. Fails
    /// if it exists.
    pub fn create_kept(name: &str) -> io::Result<Netns> {
        Self::create(name, true)
    }

    /// The namespace `name`, made earlier (by this process or another); kept on drop.
    pub fn attach(name: &str) -> Netns {
        Netns {
            name: name.to_string(),
            keep: true,
        }
    }

    fn create(name: &str, keep: bool) -> io::Result<Netns> {
        ip(["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
            keep,
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
        run(&mut self.command(argv))
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

    /// `ip ARGS` inside the namespace.
    pub fn ip<I, S>(&self, args: I) -> io::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Makes the namespace's own `/etc/netns/NAME/resolv.conf` (empty) unless it exists,
    /// and returns its path. `ip netns exec` bind-mounts it over `/etc/resolv.conf`, so a
    /// DHCP client's script writes there instead of the machine's file: make it before
    /// any DHCP client runs in the namespace.
    pub fn resolv_conf(&self) -> io::Result<PathBuf> {
        let etc = etc_dir(&self.name);
        std::fs::create_dir_all(&etc)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", etc.display())))?;
        let file = etc.join("resolv.conf");
        if !file.exists() {
            std::fs::write(&file, "")
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
        }
        Ok(file)
    }

    /// ISC `dhclient -v -pf PIDFILE -lf LEASES ARGS -sf /sbin/dhclient-script DEV` in the
    /// namespace (and a UTS namespace of its own), not yet run; the namespace's own resolv.conf is made first
    /// ([`Netns::resolv_conf`]), so the client never writes the machine's.
    pub fn dhclient(
        &self,
        dev: &str,
        pidfile: &Path,
        leases: &Path,
        args: &[&str],
    ) -> io::Result<Command> {
        self.resolv_conf()?;
        // In a UTS namespace of its own, as a real VM's: DHCP hands out a host name
        // (option 12), which dhclient-script sets when the machine's is `localhost`.
        let mut c = self.command(["unshare", "--uts", "dhclient", "-v", "-pf"]);
        c.arg(pidfile).arg("-lf").arg(leases).args(args);
        c.args(["-sf", "/sbin/dhclient-script", dev]);
        Ok(c)
    }

    /// True when the namespace outlives this value.
    pub fn kept(&self) -> bool {
        self.keep
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.keep {
            delete(&self.name);
        }
    }
}

/// The namespace's own files, bind-mounted by `ip netns exec`.
fn etc_dir(name: &str) -> PathBuf {
    PathBuf::from("/etc/netns").join(name)
}

/// Deletes namespace `name` (if it exists) and its `/etc/netns/NAME` directory. Processes
/// still inside keep running (stop them first: [`crate::pids_in_ns`]).
pub fn delete(name: &str) {
    let _ = ip(["netns", "del", name]);
    let _ = std::fs::remove_dir_all(etc_dir(name));
}

/// The namespaces whose name starts with `prefix`.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    ip(["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// `/etc/netns` entries whose name starts with `prefix` (left behind by namespaces that
/// are gone).
pub fn etc_entries_with_prefix(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/etc/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Links in this process's namespace whose name starts with `prefix`.
pub fn links_with_prefix(prefix: &str) -> Vec<String> {
    ip(["-o", "link", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Creates a veth pair `a`/`b`, puts `a` into namespace `ns_a` (if given) and `b` into
/// `ns_b` (if given). Both ends are left down. The pair is made under temporary names and
/// renamed where it lands, so `a` may be `eth0` without touching the machine's own `eth0`.
pub fn veth(a: &str, ns_a: Option<&Netns>, b: &str, ns_b: Option<&Netns>) -> io::Result<()> {
    let tmp = (crate::unique_name("vta"), crate::unique_name("vtb"));
    veth_via(tmp, (a, ns_a.map(Netns::name)), (b, ns_b.map(Netns::name)))
}

/// [`veth`] with the temporary names `tmp` (what a crash between the creation and the move
/// leaves in this process's namespace).
pub(crate) fn veth_via(
    tmp: (String, String),
    a: (&str, Option<&str>),
    b: (&str, Option<&str>),
) -> io::Result<()> {
    ip([
        "link", "add", &tmp.0, "type", "veth", "peer", "name", &tmp.1,
    ])?;
    for (tmp, (dev, ns)) in [(&tmp.0, a), (&tmp.1, b)] {
        let mut c = Command::new("ip");
        if let Some(ns) = ns {
            ip(["link", "set", tmp, "netns", ns])?;
            c.args(["-n", ns]);
        }
        run(c.args(["link", "set", tmp, "name", dev]))?;
    }
    Ok(())
}
