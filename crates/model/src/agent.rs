//! Agents: the heartbeat every controller and API server writes to the NB store's lease
//! space (`nbdb::Lease`, outside the revisioned model), and the admin's settings of an
//! agent. Plain data and the rule that carries an agent's identity from one heartbeat to
//! the next; the writes and the Neutron JSON live with their callers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `agent_type` of a host's local controller.
pub const CONTROLLER_TYPE: &str = "DF local controller";
/// `agent_type` of an API server.
pub const SERVER_TYPE: &str = "DF API server";
/// `binary` of a host's local controller.
pub const CONTROLLER_BINARY: &str = "dragonflow-controller";
/// `binary` of an API server.
pub const SERVER_BINARY: &str = "dragonflow-server";
/// The BGP speaker process (`dragonflow bgp`), as the agents API shows it.
pub const BGP_TYPE: &str = "DF BGP speaker";
pub const BGP_BINARY: &str = "dragonflow-bgp";
/// Where heartbeats live in the lease space.
pub const PREFIX: &str = "agent/";
/// Where the admin's settings live in the lease space (no time to live).
pub const ADMIN_PREFIX: &str = "agent-admin/";

/// What an agent says at every heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub agent_type: String,
    pub binary: String,
    pub host: String,
    pub topic: String,
    pub availability_zone: Option<String>,
    /// The agent's software version.
    pub version: String,
    /// When the agent's process started (RFC 3339).
    pub started_at: String,
    /// The NB revision whose changes its state fully reflects: a controller's switch holds
    /// the flows of every change up to it.
    pub applied_revision: u64,
    /// Agent-specific facts (tunnel types, bridge mappings, flows, devices).
    pub configurations: BTreeMap<String, serde_json::Value>,
    /// A controller's counts of the balancer listeners it balances for (Octavia's
    /// `/stats`, summed by the server); not part of the agents API.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lb_stats: crate::lb_stats::ByListener,
}

/// A stored heartbeat: the last report and what its writer adds to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The agent's id (a UUID), kept from its first heartbeat on.
    pub id: String,
    #[serde(flatten)]
    pub report: Report,
    /// The first heartbeat of this agent (RFC 3339).
    pub created_at: String,
    /// The last one, on the writer's clock (the server's, when it goes through one).
    pub heartbeat_timestamp: String,
}

/// What the admin sets on an agent (`PUT /v2.0/agents/ID`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminState {
    pub admin_state_up: bool,
    #[serde(default)]
    pub description: String,
}

impl Default for AdminState {
    fn default() -> AdminState {
        AdminState {
            admin_state_up: true,
            description: String::new(),
        }
    }
}

/// The lease key of the heartbeat of `binary` on `host`.
pub fn key(binary: &str, host: &str) -> String {
    format!("{PREFIX}{binary}/{host}")
}

/// The lease key of the admin's settings of `binary` on `host`.
pub fn admin_key(binary: &str, host: &str) -> String {
    format!("{ADMIN_PREFIX}{binary}/{host}")
}

impl Heartbeat {
    /// The heartbeat that follows `previous` (`None`: this agent's first): a new report at
    /// `now`, with the agent's id and creation time kept.
    pub fn next(previous: Option<Heartbeat>, report: Report, now: &str) -> Heartbeat {
        let (id, created_at) = match previous {
            Some(p) => (p.id, p.created_at),
            None => (crate::new_id(), now.to_string()),
        };
        Heartbeat {
            id,
            report,
            created_at,
            heartbeat_timestamp: now.to_string(),
        }
    }

    /// The key this heartbeat is stored under.
    pub fn key(&self) -> String {
        key(&self.report.binary, &self.report.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(rev: u64) -> Report {
        Report {
            agent_type: CONTROLLER_TYPE.into(),
            binary: CONTROLLER_BINARY.into(),
            host: "h1".into(),
            topic: "N/A".into(),
            availability_zone: None,
            version: "1".into(),
            started_at: "t0".into(),
            applied_revision: rev,
            configurations: BTreeMap::new(),
            lb_stats: Default::default(),
        }
    }

    #[test]
    fn an_agent_keeps_its_id_and_creation_time_across_heartbeats() {
        let first = Heartbeat::next(None, report(1), "t1");
        assert_eq!(first.created_at, "t1");
        assert!(crate::is_uuid(&first.id));
        let second = Heartbeat::next(Some(first.clone()), report(7), "t2");
        assert_eq!((&second.id, second.created_at.as_str()), (&first.id, "t1"));
        assert_eq!(second.heartbeat_timestamp, "t2");
        assert_eq!(second.report.applied_revision, 7);
        let json = serde_json::to_string(&second).unwrap();
        assert_eq!(serde_json::from_str::<Heartbeat>(&json).unwrap(), second);
        assert_eq!(second.key(), "agent/dragonflow-controller/h1");
        assert!(!admin_key("b", "h").starts_with(PREFIX));
    }
}
