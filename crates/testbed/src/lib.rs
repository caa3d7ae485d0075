//! The lab: real Open vSwitch instances, network namespaces, veth pairs, VMs, etcd and Redis
//! servers, a Keystone, and the system tools that drive them, in two modes.
//!
//! - **Scoped**, for tests and benchmarks: [`Netns::new`], [`veth`], [`Ovs::start`],
//!   [`Vm::plug`], [`StoreServer::start`], [`EtcdCluster::start`],
//!   [`ZooKeeperEnsemble::start`]. Everything is torn down on drop. Each [`Ovs`] runs its
//!   own `ovsdb-server` and `ovs-vswitchd --disable-system` (userspace datapath) in a
//!   private directory given through `OVS_RUNDIR`/`OVS_LOGDIR`/`OVS_DBDIR`, so several
//!   instances coexist and nothing touches the machine's own OVS. Tests that need root call
//!   [`require_root`] and skip with a clear message.
//! - **Detached**, for the sandbox: a [`Detached`] lab names everything with one prefix and
//!   keeps every file under one directory; daemons run in their own process group with pid
//!   files; nothing is removed on drop, and [`Detached::sweep`] finds it all again by
//!   scanning, after a crash too.
//!
//! The lab knows Open vSwitch and Linux, not the controller or the Neutron API: which
//! bridges a host has, which daemons of ours run and with what flags is the caller's.

pub mod bench;
mod certs;
mod clusters;
mod detached;
pub mod keystone;
mod netns;
mod ovs;
mod process;
pub mod stores;
pub mod tempest;
mod vm;

pub use certs::Certs;
pub use clusters::{EtcdCluster, ZooKeeperEnsemble};
pub use detached::{Detached, Swept};
pub use netns::{Netns, veth};
pub use ovs::{Ovs, schema_path};
pub use process::{
    alive, have, ip, is_root, pids_in_ns, pids_mentioning, read_pid, run, spawn_detached, tail,
    terminate, wait_for,
};
pub use stores::{StoreKind, StoreServer};
pub use vm::Vm;

use std::process::Command;

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

/// A name unique to this process and call (namespaces, links: at most 15 bytes with a
/// short prefix).
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The lab's own tests on real OVS and namespaces (root; the `real_ovs` in their path puts
/// them in the real-OVS test step).
#[cfg(test)]
mod real_ovs {
    use super::*;
    use std::time::Duration;

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
