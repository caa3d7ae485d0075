//! The detached lab: namespaces, veths, OVS instances, VMs, stores and daemons that outlive
//! the process that made them (the sandbox). Every name starts with one prefix and every
//! file is under one directory, so what a state file forgot (after a crash) is found again
//! by scanning, and [`Detached::sweep`] removes it all. Nothing is removed on drop.

use crate::netns::{self, Netns, veth_via};
use crate::ovs::Ovs;
use crate::process::{pids_in_ns, pids_mentioning, terminate};
use crate::stores::{StoreKind, StoreServer};
use crate::vm::Vm;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A detached lab: namespaces `PREFIX-NAME`, temporary links `PREFIXNa`/`PREFIXNb` in the
/// machine's namespace, files under `dir`.
#[derive(Debug, Clone)]
pub struct Detached {
    prefix: String,
    dir: PathBuf,
}

/// What [`Detached::sweep`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub processes: usize,
    pub namespaces: usize,
    /// Veth halves left in the machine's namespace (a crash between a pair's creation and
    /// its move).
    pub links: usize,
    /// Whether the directory existed.
    pub dir: bool,
}

impl Swept {
    pub fn is_empty(&self) -> bool {
        *self == Swept::default()
    }
}

impl Detached {
    /// A lab whose names start with `prefix` (short: link names have 15 bytes) and whose
    /// files are under `dir` (made on first use).
    pub fn new(prefix: &str, dir: &Path) -> Detached {
        Detached {
            prefix: prefix.to_string(),
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The name of the lab's namespace `name`: `PREFIX-NAME`.
    pub fn ns_name(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// Creates the namespace `PREFIX-NAME` (lo up), kept.
    pub fn netns(&self, name: &str) -> io::Result<Netns> {
        Netns::create_kept(&self.ns_name(name))
    }

    /// Makes the directory (and its parents) and returns it.
    pub fn mkdir(&self, sub: &str) -> io::Result<PathBuf> {
        let d = self.dir.join(sub);
        std::fs::create_dir_all(&d)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", d.display())))?;
        Ok(d)
    }

    /// Temporary names for a veth pair, with the prefix so that [`Detached::sweep`] finds
    /// a half a crash left behind.
    fn tmp_names(&self) -> (String, String) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        (
            format!("{}{n}a", self.prefix),
            format!("{}{n}b", self.prefix),
        )
    }

    /// A veth pair: `a` in `ns_a`, `b` in `ns_b`, both up.
    pub fn veth(&self, a: &str, ns_a: &Netns, b: &str, ns_b: &Netns) -> io::Result<()> {
        veth_via(
            self.tmp_names(),
            (a, Some(ns_a.name())),
            (b, Some(ns_b.name())),
        )?;
        ns_a.ip(["link", "set", a, "up"])?;
        ns_b.ip(["link", "set", b, "up"]).map(|_| ())
    }

    /// Starts OVS in `ns` with its files in `DIR/NAME`, detached ([`Ovs::start_kept`]).
    pub fn ovs(&self, ns: &Netns, name: &str) -> io::Result<Ovs> {
        Ovs::start_kept(ns, &self.dir.join(name))
    }

    /// Plugs the kept namespace `PREFIX-NAME` (created) as a VM into `bridge` of `ovs`
    /// with no address, as `Vm::plug` does; stays plugged.
    pub fn vm(
        &self,
        name: &str,
        ovs: &Ovs,
        bridge: &str,
        iface_id: &str,
        mac: &str,
    ) -> io::Result<Vm> {
        let ns = self.netns(name)?;
        Vm::plug_into(Some(self.tmp_names()), ns, ovs, bridge, iface_id, mac, None)
    }

    /// Starts an etcd or Redis server with its data in `DIR/SUB` and its output in `log`,
    /// detached ([`StoreServer::start_kept`]).
    pub fn store(&self, kind: StoreKind, sub: &str, log: &Path) -> io::Result<StoreServer> {
        StoreServer::start_kept(kind, &self.dir.join(sub), log)
    }

    /// The lab's namespaces that exist now.
    pub fn namespaces(&self) -> Vec<String> {
        netns::namespaces_with_prefix(&format!("{}-", self.prefix))
    }

    /// The lab's links left in the machine's namespace.
    pub fn stray_links(&self) -> Vec<String> {
        netns::links_with_prefix(&self.prefix)
    }

    /// True when anything of the lab exists: its directory, a namespace or a stray link.
    pub fn exists(&self) -> bool {
        self.dir.exists() || !self.namespaces().is_empty() || !self.stray_links().is_empty()
    }

    /// Removes everything of the lab, from what the caller recorded (`pids`, `namespaces`)
    /// and by scanning (the lab's namespaces and every process inside them, every process
    /// whose command line points into the directory, stray links, `/etc/netns` entries):
    /// processes get SIGTERM, then SIGKILL after 5 s; then the namespaces, the links and
    /// the directory go. Idempotent; fails only if a namespace or the directory stays.
    pub fn sweep(&self, pids: &[u32], namespaces: &[String]) -> io::Result<Swept> {
        let mut pids: Vec<u32> = pids.iter().copied().filter(|&p| crate::alive(p)).collect();
        let mut nss = self.namespaces();
        for ns in namespaces {
            if !nss.contains(ns) && Path::new("/run/netns").join(ns).exists() {
                nss.push(ns.clone());
            }
        }
        for ns in &nss {
            pids.extend(pids_in_ns(ns));
        }
        let dir = self.dir.display().to_string();
        pids.extend(pids_mentioning(&dir));
        pids.sort_unstable();
        pids.dedup();
        terminate(&pids, Duration::from_secs(5));
        // Processes that started while the others were stopping (none expected).
        terminate(&pids_mentioning(&dir), Duration::from_secs(2));
        for ns in &nss {
            netns::delete(ns);
        }
        for e in netns::etc_entries_with_prefix(&format!("{}-", self.prefix)) {
            netns::delete(&e);
        }
        let links = self.stray_links();
        for l in &links {
            let _ = crate::process::ip(["link", "del", l]);
        }
        let had_dir = self.dir.exists();
        if had_dir {
            std::fs::remove_dir_all(&self.dir)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot remove {dir}: {e}")))?;
        }
        let left = self.namespaces();
        if !left.is_empty() {
            return Err(io::Error::other(format!(
                "namespaces still present: {}",
                left.join(", ")
            )));
        }
        Ok(Swept {
            processes: pids.len(),
            namespaces: nss.len(),
            links: links.len(),
            dir: had_dir,
        })
    }
}

/// On real OVS and namespaces (root; `real_ovs` puts it in the real-OVS test step).
#[cfg(test)]
mod real_ovs {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_detached_lab_outlives_its_values_and_a_sweep_finds_it_all() {
        if !crate::require_root("a_detached_lab_outlives_its_values_and_a_sweep_finds_it_all") {
            return;
        }
        // Ends with a letter, so no other process's lab shares the prefix.
        let prefix = format!("t{}x", std::process::id());
        let lab = Detached::new(&prefix, &PathBuf::from(format!("/tmp/{prefix}")));
        let host = lab.netns("h").expect("netns");
        let ovs = lab.ovs(&host, "h").expect("ovs");
        ovs.add_bridge("br-int").expect("br-int");
        let vm = lab
            .vm("vm", &ovs, "br-int", "port-1", "fa:16:3e:00:00:07")
            .expect("vm");
        assert!(vm.ofport > 0);
        let wire = lab.netns("w").expect("wire");
        lab.veth("va", &host, "vb", &wire).expect("veth");
        assert!(
            host.ip(["-o", "link", "show", "va"])
                .unwrap()
                .contains("UP")
        );
        // A stray half in the machine's namespace, and a process that only the directory
        // it names ties to the lab.
        let stray = format!("{prefix}99a");
        crate::ip([
            "link",
            "add",
            &stray,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{prefix}99b"),
        ])
        .expect("stray veth");
        let logs = lab.mkdir("logs").expect("dir");
        let sleeper = crate::spawn_detached(
            Command::new("tail").arg("-f").arg(logs.join("tail.log")),
            &logs.join("tail.log"),
        )
        .expect("spawn");
        let ovs_pids: Vec<u32> = ovs.pids().iter().map(|(_, p)| *p).collect();
        assert_eq!(ovs_pids.len(), 2);
        drop((vm, ovs, host, wire));

        // Nothing went with the values.
        let mut names = lab.namespaces();
        names.sort();
        assert_eq!(
            names,
            [lab.ns_name("h"), lab.ns_name("vm"), lab.ns_name("w")]
        );
        assert!(ovs_pids.iter().all(|&p| crate::alive(p)) && crate::alive(sleeper));
        assert!(lab.exists());

        // Nothing recorded: the sweep finds it all by scanning.
        let swept = lab.sweep(&[], &[]).expect("sweep");
        assert_eq!(swept.namespaces, 3, "{swept:?}");
        assert!(
            swept.processes >= 3 && swept.links >= 1 && swept.dir,
            "{swept:?}"
        );
        assert!(lab.namespaces().is_empty() && lab.stray_links().is_empty());
        assert!(!ovs_pids.iter().any(|&p| crate::alive(p)) && !crate::alive(sleeper));
        assert!(!lab.exists());
        assert!(lab.sweep(&[], &[]).expect("again").is_empty());
    }
}
