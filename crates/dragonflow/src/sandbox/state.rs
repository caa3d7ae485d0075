//! The sandbox's place and state file: its prefix and directory (the detached lab), and
//! what `up` made (namespaces, processes, OVS directories, the server's address, the VMs
//! and the last checks), so `status`, `exec` and `down` find it. Written after every step,
//! so a crashed `up` still leaves an accurate record.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a sandbox keeps everything (one at a time per machine). `/run` is a tmpfs: a
/// reboot, which also removes the namespaces, clears it too.
pub const DIR: &str = "/run/dragonflow-sandbox";

/// Prefix of every namespace (`dfsb-…`), and of every link made in the machine's own
/// namespace.
pub const PREFIX: &str = "dfsb";

pub fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

/// The server's NB secret; host tokens are derived from it.
pub fn nb_secret() -> PathBuf {
    dir().join("nb-secret")
}

/// The NB admin token, for `dragonflow db --nb-token-file`.
pub fn nb_admin_token() -> PathBuf {
    dir().join("nb-admin-token")
}

/// The sandbox's detached lab: what it makes is named with [`PREFIX`], lives under
/// [`DIR`] and outlives `up`.
pub fn lab() -> testbed::Detached {
    testbed::Detached::new(PREFIX, Path::new(DIR))
}

fn file() -> PathBuf {
    dir().join("state.json")
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct State {
    /// The API server's URL.
    pub url: String,
    /// The store: embedded, etcd or redis.
    pub db: String,
    /// The `--nb` the controllers follow.
    pub nb: String,
    /// The server's NB listener (`/nb/v1`: controllers, `dragonflow db`).
    #[serde(default)]
    pub nb_url: String,
    /// Every namespace made, in order.
    pub namespaces: Vec<String>,
    /// Every detached process: (what, pid).
    pub processes: Vec<(String, u32)>,
    pub hosts: Vec<Host>,
    pub vms: Vec<Vm>,
    /// The outside host's address on the external network.
    pub outside_ip: String,
    /// The results of the last checks.
    pub checks: Vec<CheckResult>,
    /// True once `up` finished.
    pub ready: bool,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    pub ns: String,
    /// The OVS directory (OVS_RUNDIR/LOGDIR/DBDIR).
    pub ovs_dir: PathBuf,
    /// Tunnel (underlay) address.
    pub ip: String,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Vm {
    pub name: String,
    pub ns: String,
    /// Index into `hosts`.
    pub host: usize,
    pub project: String,
    pub network: String,
    pub port_id: String,
    pub mac: String,
    /// The address Neutron assigned.
    pub ip: String,
    pub prefix_len: u8,
    pub gateway: String,
    pub floating_ip: Option<String>,
    /// How the VM got its address: "dhcp" or "static".
    pub addressing: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub pass: bool,
    pub seconds: f64,
    pub detail: String,
}

impl State {
    /// The state file of the running (or crashed) sandbox, if any.
    pub fn load() -> Option<State> {
        let text = std::fs::read_to_string(file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save(&self) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let tmp = dir().join("state.json.tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, file()).map_err(|e| format!("cannot write the state file: {e}"))
    }

    pub fn vm(&self, name: &str) -> Option<&Vm> {
        self.vms.iter().find(|v| v.name == name)
    }
}
