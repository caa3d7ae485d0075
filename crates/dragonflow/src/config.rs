//! The config file (TOML): `[server]` for the process, `[neutron]` for the API settings,
//! `[keystone_authtoken]` for Keystone when `[neutron] auth_strategy = "keystone"`, `[nova]`
//! for the port events sent to Nova, `[quotas]` for the default quotas.
//! Every key has a default, so the file is optional; flags override it.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct File {
    pub server: Server,
    pub neutron: neutron_api::ApiConfig,
    pub keystone_authtoken: neutron_api::keystone::KeystoneConfig,
    pub nova: neutron_api::nova::NovaConfig,
    pub quotas: neutron_api::config::QuotaConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    pub listen: Option<SocketAddr>,
    pub db: Option<String>,
    /// The NB store endpoints' own listener (hosts and tools; never tenants).
    pub nb_listen: Option<SocketAddr>,
    /// Publish-subscribe fan-out of the change stream (`--pubsub`; off when absent).
    pub pubsub: Option<String>,
    /// The Octavia (load-balancer) API's address (default 127.0.0.1:9876).
    pub octavia_listen: Option<SocketAddr>,
    /// The secret the NB tokens are derived from.
    pub nb_secret_file: Option<PathBuf>,
    /// Where Prometheus metrics are served (`/metrics`); none: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// Revisions the embedded store's change log keeps (`--nb-log-retention`).
    pub nb_log_retention: Option<u64>,
}

impl File {
    pub fn load(path: Option<&Path>) -> Result<File, String> {
        let Some(path) = path else {
            return Ok(File::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))
    }
}
