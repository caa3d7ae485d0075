//! Load balancers (Octavia v2's L4 subset, issue 23): one NB object per load balancer
//! holding its whole tree (listeners, pools, members, health monitors), so a host compiles
//! a balancer from one object and a change of any part is one compare-and-swap write.

use crate::{Meta, NbObject};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The `provider` this server implements (and the only one it lists).
pub const PROVIDER: &str = "dragonflow";
/// The device owner of a VIP port (Octavia's).
pub const VIP_OWNER: &str = "Octavia";

/// Octavia's `provisioning_status` values used here.
pub mod provisioning {
    pub const ACTIVE: &str = "ACTIVE";
    pub const PENDING_CREATE: &str = "PENDING_CREATE";
    pub const PENDING_UPDATE: &str = "PENDING_UPDATE";
    pub const PENDING_DELETE: &str = "PENDING_DELETE";
    pub const ERROR: &str = "ERROR";
}

/// Octavia's `operating_status` values.
pub mod operating {
    pub const ONLINE: &str = "ONLINE";
    pub const OFFLINE: &str = "OFFLINE";
    pub const DEGRADED: &str = "DEGRADED";
    pub const ERROR: &str = "ERROR";
    pub const NO_MONITOR: &str = "NO_MONITOR";
}

/// The status pair every node of the tree carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub provisioning_status: String,
    pub operating_status: String,
}

/// L4 protocols a distributed balancer carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }

    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// How a pool picks a member for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// A hash of the 5-tuple (the select group's dp_hash): each new connection anew.
    #[serde(rename = "SOURCE_IP_PORT")]
    SourceIpPort,
    /// Served as SOURCE_IP_PORT: a hash spreads new connections as evenly over time.
    #[serde(rename = "ROUND_ROBIN")]
    RoundRobin,
    /// One client address, one member: the first connection's member is remembered (as
    /// SOURCE_IP session persistence, with its default idle timeout).
    #[serde(rename = "SOURCE_IP")]
    SourceIp,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::SourceIpPort => "SOURCE_IP_PORT",
            Algorithm::RoundRobin => "ROUND_ROBIN",
            Algorithm::SourceIp => "SOURCE_IP",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    // Status first: `Meta` keeps whatever is left (see `Meta::unknown`).
    #[serde(flatten)]
    pub status: Status,
    #[serde(flatten)]
    pub meta: Meta,
    pub admin_state_up: bool,
    pub protocol: Protocol,
    pub protocol_port: u16,
    /// -1: no limit.
    pub connection_limit: i64,
    #[serde(default)]
    pub allowed_cidrs: Vec<IpNet>,
    pub default_pool_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    // Status first: `Meta` keeps whatever is left (see `Meta::unknown`).
    #[serde(flatten)]
    pub status: Status,
    #[serde(flatten)]
    pub meta: Meta,
    pub admin_state_up: bool,
    pub protocol: Protocol,
    pub lb_algorithm: Algorithm,
    /// How a client stays on its member (SOURCE_IP only: the API refuses cookies).
    pub session_persistence: Option<SessionPersistence>,
    /// The listener the pool was created for (its default pool), if any.
    pub listener_id: Option<String>,
    #[serde(default)]
    pub members: Vec<Member>,
    pub healthmonitor: Option<HealthMonitor>,
}

/// Octavia's `session_persistence` of a pool, as given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPersistence {
    /// `SOURCE_IP` (the only type an L4 provider honours).
    #[serde(rename = "type")]
    pub kind: String,
    /// Seconds a client's member is remembered after its last new connection (UDP pools
    /// only, as Octavia's); `None`: [`DEFAULT_PERSISTENCE_TIMEOUT`].
    #[serde(default)]
    pub persistence_timeout: Option<i64>,
    /// The netmask applied to the client's address (UDP pools only, as Octavia's).
    #[serde(default)]
    pub persistence_granularity: Option<IpAddr>,
}

/// Octavia's default SOURCE_IP persistence timeout (seconds).
pub const DEFAULT_PERSISTENCE_TIMEOUT: u16 = 360;

impl Pool {
    /// The members new connections go to, of the VIP's family (`ipv4` or not): those that
    /// take traffic, the backup ones only while no other does (Octavia's `backup`).
    pub fn serving(&self, ipv4: bool) -> Vec<&Member> {
        let up: Vec<&Member> = self
            .members
            .iter()
            .filter(|m| m.takes_traffic() && m.address.is_ipv4() == ipv4)
            .collect();
        if up.iter().any(|m| !m.backup) {
            up.into_iter().filter(|m| !m.backup).collect()
        } else {
            up
        }
    }

    /// When the pool keeps a client on one member: `Some((idle timeout in seconds, client
    /// prefix length))` for `lb_algorithm` SOURCE_IP or `session_persistence` SOURCE_IP,
    /// for clients of an IPv4 VIP (`ipv4`) or an IPv6 one. A timeout of 0 or less is the
    /// default (as Octavia's drivers read it), more than 65535 s is 65535 (OpenFlow's
    /// limit); a granularity that is not a netmask of the VIP's family is the whole
    /// address (32 or 128 bits).
    pub fn affinity(&self, ipv4: bool) -> Option<(u16, u8)> {
        let sp = self
            .session_persistence
            .as_ref()
            .filter(|sp| sp.kind == "SOURCE_IP");
        if sp.is_none() && self.lb_algorithm != Algorithm::SourceIp {
            return None;
        }
        let timeout = match sp.and_then(|sp| sp.persistence_timeout) {
            Some(t) if t > 0 => u16::try_from(t).unwrap_or(u16::MAX),
            _ => DEFAULT_PERSISTENCE_TIMEOUT,
        };
        let whole = if ipv4 { 32 } else { 128 };
        let prefix = sp
            .and_then(|sp| sp.persistence_granularity)
            .filter(|g| g.is_ipv4() == ipv4)
            .and_then(granularity_len)
            .unwrap_or(whole);
        Some((timeout, prefix))
    }
}

/// The prefix length of a contiguous IPv4 netmask (`None` for one with holes).
pub fn netmask_len(mask: u32) -> Option<u8> {
    let len = mask.leading_ones();
    (mask.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

/// The prefix length of a contiguous netmask of either family (`ffff:ffff:ffff:ffff::`
/// is 64); `None` for one with holes.
pub fn granularity_len(mask: IpAddr) -> Option<u8> {
    match mask {
        IpAddr::V4(m) => netmask_len(u32::from(m)),
        IpAddr::V6(m) => {
            let m = u128::from(m);
            let len = m.leading_ones();
            (m.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    // Status first: `Meta` keeps whatever is left (see `Meta::unknown`).
    #[serde(flatten)]
    pub status: Status,
    #[serde(flatten)]
    pub meta: Meta,
    pub admin_state_up: bool,
    pub address: IpAddr,
    pub protocol_port: u16,
    /// 0..=256; 0 takes no new connections.
    pub weight: u16,
    pub backup: bool,
    pub subnet_id: Option<String>,
    pub monitor_address: Option<IpAddr>,
    pub monitor_port: Option<u16>,
}

impl Member {
    /// True when new connections may go to it: enabled, weighted, and not marked down by
    /// a health monitor.
    pub fn takes_traffic(&self) -> bool {
        self.admin_state_up && self.weight > 0 && self.status.operating_status != operating::ERROR
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthMonitor {
    // Status first: `Meta` keeps whatever is left (see `Meta::unknown`).
    #[serde(flatten)]
    pub status: Status,
    #[serde(flatten)]
    pub meta: Meta,
    pub admin_state_up: bool,
    /// `TCP`, `UDP-CONNECT`, `PING` or `HTTP`.
    #[serde(rename = "type")]
    pub kind: String,
    pub delay: u32,
    pub timeout: u32,
    pub max_retries: u8,
    pub max_retries_down: u8,
    /// HTTP only.
    pub http_method: Option<String>,
    pub url_path: Option<String>,
    pub expected_codes: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancer {
    // Status first: `Meta` keeps whatever is left (see `Meta::unknown`).
    #[serde(flatten)]
    pub status: Status,
    #[serde(flatten)]
    pub meta: Meta,
    pub admin_state_up: bool,
    pub provider: String,
    pub vip_address: IpAddr,
    pub vip_port_id: String,
    pub vip_subnet_id: String,
    pub vip_network_id: String,
    /// The VIP port's MAC: the ARP and ND responders answer with it.
    pub vip_mac: crate::MacAddr,
    /// The VIP port was made for this balancer (and goes with it); false when the client
    /// named its own port.
    #[serde(default)]
    pub vip_port_owned: bool,
    /// Datapath key (16 bits): the cookie and group ids of its flows.
    pub unique_key: u32,
    #[serde(default)]
    pub listeners: Vec<Listener>,
    #[serde(default)]
    pub pools: Vec<Pool>,
    /// Failovers asked for (`PUT …/failover`): each one makes the hosts that follow the
    /// balancer read their switch back and repair what differs from the compiled flows.
    #[serde(default)]
    pub failovers: u64,
    /// The host that holds the VIP's floating IPs, as the server chose it among the hosts
    /// with a live controller (`None`: not chosen yet; the hosts then take the first by
    /// name with an ACTIVE port of the VIP network, as the server would).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fip_holder: Option<String>,
}

impl LoadBalancer {
    pub fn listener(&self, id: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.meta.id == id)
    }

    pub fn pool(&self, id: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.meta.id == id)
    }

    pub fn pool_mut(&mut self, id: &str) -> Option<&mut Pool> {
        self.pools.iter_mut().find(|p| p.meta.id == id)
    }

    /// The pool holding member `id`.
    pub fn pool_of_member(&self, id: &str) -> Option<&Pool> {
        self.pools
            .iter()
            .find(|p| p.members.iter().any(|m| m.meta.id == id))
    }

    /// The pool holding health monitor `id`.
    pub fn pool_of_monitor(&self, id: &str) -> Option<&Pool> {
        self.pools
            .iter()
            .find(|p| p.healthmonitor.as_ref().is_some_and(|h| h.meta.id == id))
    }

    /// The listeners whose default pool is `pool`.
    pub fn listeners_of(&self, pool: &str) -> impl Iterator<Item = &Listener> {
        self.listeners
            .iter()
            .filter(move |l| l.default_pool_id.as_deref() == Some(pool))
    }

    /// True when this balancer holds `id` anywhere in its tree.
    pub fn holds(&self, id: &str) -> bool {
        self.meta.id == id
            || self.listener(id).is_some()
            || self.pool(id).is_some()
            || self.pool_of_member(id).is_some()
            || self.pool_of_monitor(id).is_some()
    }

    /// Sets member `id`'s operating status from a health check (ONLINE or ERROR) and rolls
    /// the tree up. `None`: no such member, or its pool has no monitor (a check that raced
    /// the monitor's removal must not bring back a status nobody keeps); `Some(false)`:
    /// it already said so.
    pub fn set_member_health(&mut self, id: &str, up: bool) -> Option<bool> {
        let status = if up {
            operating::ONLINE
        } else {
            operating::ERROR
        };
        let pool = self
            .pools
            .iter_mut()
            .find(|p| p.members.iter().any(|m| m.meta.id == id))?;
        pool.healthmonitor.as_ref()?;
        let m = pool.members.iter_mut().find(|m| m.meta.id == id)?;
        if m.status.operating_status == status {
            return Some(false);
        }
        m.status.operating_status = status.into();
        self.roll_up();
        Some(true)
    }

    /// Recomputes every operating status from the members' (Octavia's roll-up): a pool is
    /// ONLINE when all its enabled members are, DEGRADED when some are down, ERROR when all
    /// are; a listener follows its default pool, the balancer its worst listener.
    pub fn roll_up(&mut self) {
        use operating::*;
        for p in &mut self.pools {
            let enabled: Vec<&Member> = p.members.iter().filter(|m| m.admin_state_up).collect();
            let down = enabled
                .iter()
                .filter(|m| m.status.operating_status == ERROR)
                .count();
            p.status.operating_status = if !p.admin_state_up {
                OFFLINE
            } else if down == 0 {
                ONLINE
            } else if down == enabled.len() {
                ERROR
            } else {
                DEGRADED
            }
            .into();
        }
        let pools = self.pools.clone();
        for l in &mut self.listeners {
            let pool = l
                .default_pool_id
                .as_deref()
                .and_then(|id| pools.iter().find(|p| p.meta.id == id));
            l.status.operating_status = if !l.admin_state_up {
                OFFLINE.into()
            } else {
                match pool.map(|p| p.status.operating_status.as_str()) {
                    Some(ERROR) => ERROR.into(),
                    Some(DEGRADED) => DEGRADED.into(),
                    _ => ONLINE.into(),
                }
            };
        }
        let worst = |s: &str| match s {
            ERROR => 2,
            DEGRADED => 1,
            _ => 0,
        };
        let w = self
            .listeners
            .iter()
            .map(|l| worst(&l.status.operating_status))
            .max()
            .unwrap_or(0);
        self.status.operating_status = if !self.admin_state_up {
            OFFLINE
        } else {
            [ONLINE, DEGRADED, DEGRADED][w]
        }
        .into();
    }
}

/// The host that holds a VIP's floating IPs, among the ports of its network (`ports`):
/// the first by name that an ACTIVE port other than the VIP's is bound to, of the hosts
/// `live` accepts. ACTIVE: plugged there, so that host compiles the balancer.
pub fn first_holder<'a>(
    ports: impl IntoIterator<Item = &'a crate::Port>,
    vip_port_id: &str,
    live: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    ports
        .into_iter()
        .filter(|p| {
            p.meta.id != vip_port_id
                && !p.binding_host_id.is_empty()
                && p.status == crate::PortStatus::Active
                && live(&p.binding_host_id)
        })
        .map(|p| p.binding_host_id.as_str())
        .min()
}

impl NbObject for LoadBalancer {
    const TABLE: crate::Table = crate::Table::LoadBalancer;
    const KIND: &'static str = "LoadBalancer";
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }
    /// The VIP's network: the hosts of its ports (its clients) follow it.
    fn topic(&self) -> &str {
        &self.vip_network_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks_of_either_family_give_their_prefix_length() {
        let len = |s: &str| granularity_len(s.parse().unwrap());
        assert_eq!(len("255.255.255.0"), Some(24));
        assert_eq!(len("0.0.0.0"), Some(0));
        assert_eq!(len("255.0.255.0"), None);
        assert_eq!(len("ffff:ffff:ffff:ffff::"), Some(64));
        assert_eq!(len("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Some(128));
        assert_eq!(len("::"), Some(0));
        assert_eq!(len("ffff::ffff"), None);
    }
}
