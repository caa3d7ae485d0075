//! The plugin's own part of a CNI network configuration: which Neutron network and groups
//! a container's port gets, how to reach the API, and where Open vSwitch is. Pure: parsed
//! from the fields the CNI specification leaves to the plugin.

use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// How the plugin authenticates to the API, as the `openstack` CLI would.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "strategy", rename_all = "lowercase", deny_unknown_fields)]
pub enum Auth {
    /// A server run with `auth_strategy = noauth`: the project (and roles) named in
    /// headers, as the CLI's `--os-auth-type none` with `X-Project-Id`.
    Noauth {
        project_id: String,
        #[serde(default = "member")]
        roles: String,
    },
    /// Keystone v3 password authentication, scoped to a project.
    Keystone {
        auth_url: String,
        username: String,
        password: String,
        project_name: String,
        #[serde(default = "default_domain")]
        user_domain_name: String,
        #[serde(default = "default_domain")]
        project_domain_name: String,
    },
}

fn member() -> String {
    "member".into()
}

fn default_domain() -> String {
    "Default".into()
}

/// The API server and its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// The Neutron endpoint, e.g. `http://controller:9696`.
    pub url: String,
    pub auth: Auth,
}

/// What the network configuration says beyond the specification's own fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub api: Api,
    /// The Neutron network's name or id.
    pub network: String,
    /// One subnet of it (name or id) to take the address from; else Neutron's choice.
    #[serde(default)]
    pub subnet: Option<String>,
    /// Security groups by name or id; absent: the project's default group.
    #[serde(default)]
    pub security_groups: Option<Vec<String>>,
    /// The integration bridge.
    #[serde(default = "br_int")]
    pub bridge: String,
    /// Open vSwitch's database, as `ovs-vsctl --db` takes it.
    #[serde(default = "ovsdb")]
    pub ovsdb: String,
    /// The network namespace Open vSwitch runs in, when not the plugin's own (OVS in a
    /// namespace of its own, as on a test bed): the host end of the veth goes there.
    #[serde(default)]
    pub ovs_netns: Option<String>,
    /// The binding host: the `--chassis` name of this host's controller; else the host name.
    #[serde(default)]
    pub host: Option<String>,
    /// How long ADD waits for the port to turn ACTIVE (its flows in) before failing.
    #[serde(default = "wait_seconds")]
    pub wait_active_seconds: u64,
    /// Nested mode: this "host" is a VM whose port is a trunk's parent, and `bridge`,
    /// `ovsdb` and `ovs_netns` name the VM's own Open vSwitch.
    #[serde(default)]
    pub nested: Option<Nested>,
}

/// Nested mode (Kuryr's nested VLAN driver): each container's port is a subport of the
/// VM's trunk on a VLAN of its own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nested {
    /// The VM's interface that is its trunk parent port (found by its MAC), and a trunk
    /// port of the VM's bridge.
    #[serde(default = "eth0")]
    pub link_iface: String,
}

fn eth0() -> String {
    "eth0".into()
}

fn br_int() -> String {
    "br-int".into()
}

fn ovsdb() -> String {
    "unix:/var/run/openvswitch/db.sock".into()
}

fn wait_seconds() -> u64 {
    30
}

impl Config {
    /// The plugin's fields of a network configuration (what the CNI library left in its
    /// `custom` map: everything the specification does not name). Unknown fields are refused, so a typo is not silently a default.
    pub fn from_custom(custom: &HashMap<String, Value>) -> Result<Config, String> {
        let map: serde_json::Map<String, Value> =
            custom.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let cfg: Config = serde_json::from_value(Value::Object(map))
            .map_err(|e| format!("dragonflow network configuration: {e}"))?;
        if cfg.network.trim().is_empty() {
            return Err("dragonflow network configuration: `network` is empty".into());
        }
        if let Some(n) = &cfg.nested
            && !super::link::is_ifname(&n.link_iface)
        {
            return Err(format!(
                "dragonflow network configuration: `nested.link_iface` {:?} is not an interface name",
                n.link_iface
            ));
        }
        if !(1..=600).contains(&cfg.wait_active_seconds) {
            return Err(format!(
                "dragonflow network configuration: `wait_active_seconds` must be 1 to 600, not {}",
                cfg.wait_active_seconds
            ));
        }
        Ok(cfg)
    }

    pub fn wait_active(&self) -> Duration {
        Duration::from_secs(self.wait_active_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn custom(v: Value) -> HashMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn minimal_noauth_config_takes_defaults() {
        let c = Config::from_custom(&custom(json!({
            "api": {"url": "http://127.0.0.1:9696", "auth": {"strategy": "noauth", "project_id": "p1"}},
            "network": "pods"
        })))
        .unwrap();
        assert_eq!(c.bridge, "br-int");
        assert_eq!(c.ovsdb, "unix:/var/run/openvswitch/db.sock");
        assert_eq!(c.wait_active(), Duration::from_secs(30));
        assert_eq!(
            c.api.auth,
            Auth::Noauth {
                project_id: "p1".into(),
                roles: "member".into()
            }
        );
        assert!(c.security_groups.is_none() && c.subnet.is_none() && c.host.is_none());
        assert!(c.nested.is_none());
    }

    #[test]
    fn nested_mode_defaults_its_link_to_eth0() {
        let api =
            json!({"url": "http://n:9696", "auth": {"strategy": "noauth", "project_id": "p"}});
        let c = Config::from_custom(&custom(
            json!({"api": api, "network": "pods", "nested": {}}),
        ))
        .unwrap();
        assert_eq!(c.nested.unwrap().link_iface, "eth0");
        let c = Config::from_custom(&custom(
            json!({"api": api, "network": "pods", "nested": {"link_iface": "ens3"}}),
        ))
        .unwrap();
        assert_eq!(c.nested.unwrap().link_iface, "ens3");
    }

    #[test]
    fn keystone_config_defaults_its_domains() {
        let c = Config::from_custom(&custom(json!({
            "api": {"url": "http://n:9696", "auth": {"strategy": "keystone", "auth_url": "http://k:5000/v3",
                "username": "u", "password": "pw", "project_name": "demo"}},
            "network": "pods", "security_groups": ["web"], "host": "host-a"
        })))
        .unwrap();
        let Auth::Keystone {
            user_domain_name,
            project_domain_name,
            ..
        } = c.api.auth
        else {
            panic!("keystone expected");
        };
        assert_eq!(
            (user_domain_name.as_str(), project_domain_name.as_str()),
            ("Default", "Default")
        );
        assert_eq!(c.security_groups.unwrap(), ["web"]);
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        let api =
            json!({"url": "http://n:9696", "auth": {"strategy": "noauth", "project_id": "p"}});
        for (v, want) in [
            (json!({"network": "x"}), "missing field `api`"),
            (json!({"api": api, "network": ""}), "`network` is empty"),
            (
                json!({"api": api, "network": "x", "brigde": "br-int"}),
                "unknown field `brigde`",
            ),
            (
                json!({"api": api, "network": "x", "wait_active_seconds": 0}),
                "1 to 600",
            ),
            (
                json!({"api": {"url": "u", "auth": {"strategy": "kerberos"}}, "network": "x"}),
                "unknown variant",
            ),
            (json!({"api": api, "network": 7}), "invalid type"),
            (
                json!({"api": api, "network": "x", "nested": {"link": "eth0"}}),
                "unknown field `link`",
            ),
            (
                json!({"api": api, "network": "x", "nested": {"link_iface": "a b/c"}}),
                "not an interface name",
            ),
        ] {
            let e = Config::from_custom(&custom(v)).unwrap_err();
            assert!(e.contains(want), "{e} should say {want}");
        }
    }
}
