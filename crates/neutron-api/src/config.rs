//! The API server's settings: the default project, network types, segmentation ranges,
//! physical networks, MTUs and how requests authenticate. Read from the config file's
//! `[neutron]` table (Keystone's own settings: `[keystone_authtoken]`, [`crate::keystone`];
//! the default quotas: `[quotas]`, [`QuotaConfig`]).

use model::NetworkType;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// `noauth` (the project from `X-Project-Id`) or `keystone` (from a validated
    /// `X-Auth-Token`; see `[keystone_authtoken]`).
    pub auth_strategy: String,
    /// The project (and admin) of requests that carry no `X-Project-Id`, when
    /// `noauth_default_admin` is on.
    pub default_project: String,
    /// A request without `X-Project-Id` acts as the default project's admin (otherwise it
    /// is refused with 401). For a single-operator cloud on a trusted host only.
    pub noauth_default_admin: bool,
    /// The type of networks created without provider attributes.
    pub tenant_network_type: String,
    /// Ranges (`min:max`) of tunnel ids for geneve, vxlan and gre networks.
    pub vni_ranges: Vec<String>,
    /// `physnet:min:max` ranges of VLAN ids for tenant VLAN networks.
    pub vlan_ranges: Vec<String>,
    /// Physical networks that provider (flat/vlan) networks may use.
    pub physical_networks: Vec<String>,
    /// MTU of the underlay and of physical networks.
    pub global_physnet_mtu: u32,
    /// First three bytes of generated MAC addresses.
    pub mac_base: String,
    /// Seconds between this server's own heartbeats (Neutron's `report_interval`).
    pub report_interval: u64,
    /// Seconds after its last heartbeat that an agent is taken as down: the time to live
    /// of the heartbeats written through this server (Neutron's `agent_down_time`).
    pub agent_down_time: u64,
    /// The domain of internal DNS names (`dns_assignment`'s FQDNs; Neutron's
    /// `dns_domain`). The controllers' `--domain` should name the same.
    pub dns_domain: String,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            auth_strategy: "noauth".into(),
            default_project: "default".into(),
            noauth_default_admin: false,
            tenant_network_type: "geneve".into(),
            vni_ranges: vec!["1:65535".into()],
            vlan_ranges: vec![],
            physical_networks: vec!["physnet1".into()],
            global_physnet_mtu: 1500,
            mac_base: "fa:16:3e".into(),
            report_interval: 30,
            agent_down_time: 75,
            dns_domain: model::dns::DEFAULT_DOMAIN.into(),
        }
    }
}

/// Who a request is: see [`crate::context`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthStrategy {
    NoAuth,
    Keystone,
}

/// The checked form of [`ApiConfig`].
#[derive(Clone, Debug)]
pub struct Settings {
    pub auth_strategy: AuthStrategy,
    pub default_project: String,
    pub noauth_default_admin: bool,
    pub tenant_network_type: NetworkType,
    pub vni_ranges: Vec<(u32, u32)>,
    pub vlan_ranges: Vec<(String, u32, u32)>,
    pub physical_networks: Vec<String>,
    pub global_physnet_mtu: u32,
    pub mac_base: [u8; 3],
    pub report_interval: std::time::Duration,
    pub agent_down_time: std::time::Duration,
    /// The domain of internal names, lowercase, without the trailing dot.
    pub dns_domain: String,
    /// The quotas of projects that have none of their own (`[quotas]`).
    pub quotas: crate::quotas::Limits,
}

/// `[quotas]`: the default limits, with Neutron's option names and defaults; -1 is
/// unlimited.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    pub quota_network: i64,
    pub quota_subnet: i64,
    pub quota_port: i64,
    pub quota_router: i64,
    pub quota_floatingip: i64,
    pub quota_security_group: i64,
    pub quota_security_group_rule: i64,
    pub quota_rbac_policy: i64,
}

impl Default for QuotaConfig {
    fn default() -> QuotaConfig {
        let [n, s, p, r, f, g, gr, rbac] = crate::quotas::Limits::default().0;
        QuotaConfig {
            quota_network: n,
            quota_subnet: s,
            quota_port: p,
            quota_router: r,
            quota_floatingip: f,
            quota_security_group: g,
            quota_security_group_rule: gr,
            quota_rbac_policy: rbac,
        }
    }
}

impl QuotaConfig {
    pub fn check(&self) -> Result<crate::quotas::Limits, String> {
        let l = [
            self.quota_network,
            self.quota_subnet,
            self.quota_port,
            self.quota_router,
            self.quota_floatingip,
            self.quota_security_group,
            self.quota_security_group_rule,
            self.quota_rbac_policy,
        ];
        for ((r, _), v) in crate::quotas::RESOURCES.iter().zip(l) {
            if !(-1..=crate::quotas::MAX_LIMIT).contains(&v) {
                return Err(format!(
                    "quota_{r} = {v}: must be -1 (unlimited) or 0 to {}",
                    crate::quotas::MAX_LIMIT
                ));
            }
        }
        Ok(crate::quotas::Limits(l))
    }
}

fn range(s: &str, max: u32) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("range {s:?} is not min:max"))?;
    let a: u32 = a
        .trim()
        .parse()
        .map_err(|_| format!("range {s:?}: bad minimum"))?;
    let b: u32 = b
        .trim()
        .parse()
        .map_err(|_| format!("range {s:?}: bad maximum"))?;
    if a == 0 || a > b || b > max {
        return Err(format!("range {s:?} must satisfy 1 <= min <= max <= {max}"));
    }
    Ok((a, b))
}

impl ApiConfig {
    pub fn check(&self) -> Result<Settings, String> {
        let auth_strategy = match self.auth_strategy.as_str() {
            "noauth" => AuthStrategy::NoAuth,
            "keystone" => AuthStrategy::Keystone,
            s => return Err(format!("auth_strategy {s:?} must be noauth or keystone")),
        };
        if auth_strategy == AuthStrategy::Keystone && self.noauth_default_admin {
            return Err("noauth_default_admin cannot be on with auth_strategy = keystone".into());
        }
        let tenant_network_type = NetworkType::parse(&self.tenant_network_type)
            .filter(|t| t.is_tunnel() || *t == NetworkType::Vlan)
            .ok_or_else(|| {
                format!(
                    "tenant_network_type {:?} must be geneve, vxlan, gre or vlan",
                    self.tenant_network_type
                )
            })?;
        let vni_ranges = self
            .vni_ranges
            .iter()
            .map(|r| range(r, (1 << 24) - 1))
            .collect::<Result<Vec<_>, _>>()?;
        let vlan_ranges = self
            .vlan_ranges
            .iter()
            .map(|r| {
                let (net, rest) = r
                    .split_once(':')
                    .ok_or_else(|| format!("vlan range {r:?} is not physnet:min:max"))?;
                let (a, b) = range(rest, 4094)?;
                Ok((net.to_string(), a, b))
            })
            .collect::<Result<Vec<_>, String>>()?;
        for (net, _, _) in &vlan_ranges {
            if !self.physical_networks.contains(net) {
                return Err(format!("vlan range on unknown physical network {net:?}"));
            }
        }
        let base: Vec<u8> = self
            .mac_base
            .split(':')
            .map(|b| u8::from_str_radix(b, 16))
            .collect::<Result<_, _>>()
            .map_err(|_| format!("mac_base {:?} is not three hex bytes", self.mac_base))?;
        let mac_base: [u8; 3] = base
            .try_into()
            .map_err(|_| format!("mac_base {:?} is not three hex bytes", self.mac_base))?;
        if mac_base[0] & 1 == 1 {
            return Err("mac_base must be unicast".into());
        }
        if !(1280..=9216).contains(&self.global_physnet_mtu) {
            return Err("global_physnet_mtu must be within 1280..=9216".into());
        }
        if self.report_interval == 0 || self.agent_down_time == 0 {
            return Err("report_interval and agent_down_time must be at least 1 s".into());
        }
        if self.agent_down_time < 2 * self.report_interval {
            // Neutron's advice: one lost heartbeat should not make an agent look down.
            tracing::warn!(
                report_interval = self.report_interval,
                agent_down_time = self.agent_down_time,
                "agent_down_time is under twice report_interval: one late heartbeat shows an agent down"
            );
        }
        let dns_domain = self.dns_domain.to_lowercase();
        let dns_domain = dns_domain
            .strip_suffix('.')
            .unwrap_or(&dns_domain)
            .to_string();
        if !dns_domain.is_empty() {
            model::dns::validate_domain(&format!("{dns_domain}."))
                .map_err(|e| format!("dns_domain: {e}"))?;
        }
        if tenant_network_type == NetworkType::Vlan && vlan_ranges.is_empty() {
            return Err("tenant_network_type vlan needs vlan_ranges".into());
        }
        Ok(Settings {
            auth_strategy,
            default_project: self.default_project.clone(),
            noauth_default_admin: self.noauth_default_admin,
            tenant_network_type,
            vni_ranges,
            vlan_ranges,
            physical_networks: self.physical_networks.clone(),
            global_physnet_mtu: self.global_physnet_mtu,
            mac_base,
            report_interval: std::time::Duration::from_secs(self.report_interval),
            agent_down_time: std::time::Duration::from_secs(self.agent_down_time),
            dns_domain,
            quotas: crate::quotas::Limits::default(),
        })
    }
}

impl Settings {
    /// Bytes a network type adds around a VM's frame on the underlay. Geneve keeps room
    /// for options: 1400 is what works through the userspace datapath with a 1500 underlay.
    pub fn overhead(t: NetworkType) -> u32 {
        match t {
            NetworkType::Geneve => 100,
            NetworkType::Vxlan => 50,
            NetworkType::Gre => 42,
            NetworkType::Vlan | NetworkType::Flat | NetworkType::Local => 0,
        }
    }

    /// The largest MTU a network of type `t` can have.
    pub fn max_mtu(&self, t: NetworkType) -> u32 {
        self.global_physnet_mtu - Self::overhead(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_check() {
        let s = ApiConfig::default().check().unwrap();
        assert_eq!(s.tenant_network_type, NetworkType::Geneve);
        assert_eq!(s.max_mtu(NetworkType::Geneve), 1400);
        assert_eq!(s.mac_base, [0xfa, 0x16, 0x3e]);
    }

    #[test]
    fn quotas_default_to_neutrons_and_refuse_below_minus_one() {
        let l = QuotaConfig::default().check().unwrap();
        assert_eq!(l.0, [100, 100, 500, 10, 50, 10, 100, 10]);
        assert_eq!(ApiConfig::default().check().unwrap().quotas, l);
        let c: QuotaConfig =
            serde_json::from_str(r#"{"quota_port": -1, "quota_network": 3}"#).unwrap();
        let l = c.check().unwrap();
        assert_eq!(
            (l.get("port"), l.get("network"), l.get("router")),
            (-1, 3, 10)
        );
        let c = QuotaConfig {
            quota_router: -2,
            ..QuotaConfig::default()
        };
        assert!(c.check().unwrap_err().contains("quota_router"));
        assert!(serde_json::from_str::<QuotaConfig>(r#"{"quota_volume": 1}"#).is_err());
    }

    #[test]
    fn bad_ranges_are_refused() {
        let c = ApiConfig {
            vni_ranges: vec!["5:1".into()],
            ..ApiConfig::default()
        };
        assert!(c.check().is_err());
        let c = ApiConfig {
            vlan_ranges: vec!["nope:1:10".into()],
            ..ApiConfig::default()
        };
        assert!(c.check().is_err());
        let c = ApiConfig {
            mac_base: "fb:16:3e".into(),
            ..ApiConfig::default()
        };
        assert!(c.check().is_err());
    }

    #[test]
    fn auth_strategy_is_noauth_or_keystone_never_with_a_default_admin() {
        let s = ApiConfig::default().check().unwrap();
        assert_eq!(s.auth_strategy, AuthStrategy::NoAuth);
        let c = ApiConfig {
            auth_strategy: "keystone".into(),
            ..ApiConfig::default()
        };
        assert_eq!(c.check().unwrap().auth_strategy, AuthStrategy::Keystone);
        let c = ApiConfig {
            auth_strategy: "keystone".into(),
            noauth_default_admin: true,
            ..ApiConfig::default()
        };
        assert!(c.check().is_err());
        let c = ApiConfig {
            auth_strategy: "ldap".into(),
            ..ApiConfig::default()
        };
        assert!(c.check().is_err());
    }
}
