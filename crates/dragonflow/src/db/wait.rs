//! `dragonflow db revision` and `dragonflow db wait`: the store's revision after a change,
//! and waiting until the hosts' controllers have applied it (realized state), read from
//! their heartbeats (`GET /nb/v1/agents`, or the store's lease space).

use serde_json::Value;
use std::time::{Duration, Instant};

/// One host's controller as its heartbeat says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub host: String,
    pub alive: bool,
    pub applied: u64,
}

/// The realized state: the store's last commit and every controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Realized {
    pub last_commit: u64,
    pub hosts: Vec<Host>,
}

impl Realized {
    /// From `GET /nb/v1/agents` (or the same built from a store); API servers left out.
    pub fn from_json(v: &Value) -> Result<Realized, String> {
        let last_commit = v["last_commit"]
            .as_u64()
            .ok_or_else(|| format!("no last_commit in {v}"))?;
        let hosts = v["agents"]
            .as_array()
            .ok_or_else(|| format!("no agents in {v}"))?
            .iter()
            .filter(|a| a["binary"] == model::agent::CONTROLLER_BINARY)
            .map(|a| Host {
                host: a["host"].as_str().unwrap_or_default().to_string(),
                alive: a["alive"].as_bool().unwrap_or(false),
                applied: a["applied_revision"].as_u64().unwrap_or(0),
            })
            .collect();
        Ok(Realized { last_commit, hosts })
    }
}

/// What a wait found at one look: done (the hosts that were waited for), or the hosts
/// still behind, each with why.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Done(Vec<String>),
    Behind(Vec<String>),
}

/// Whether `hosts` (`None`: every live controller) have applied `revision`. A revision
/// past the store's last commit (etcd counts other writes too) is reached at the last
/// commit: nothing of the model changed after it.
pub fn judge(r: &Realized, revision: u64, hosts: Option<&[String]>) -> Verdict {
    let target = revision.min(r.last_commit);
    let named: Vec<String> = match hosts {
        Some(h) => h.to_vec(),
        None => r
            .hosts
            .iter()
            .filter(|h| h.alive)
            .map(|h| h.host.clone())
            .collect(),
    };
    let mut behind = Vec::new();
    for name in &named {
        match r.hosts.iter().find(|h| &h.host == name) {
            None => behind.push(format!("{name} (no controller heartbeat)")),
            Some(h) if !h.alive => behind.push(format!("{name} (not alive, at {})", h.applied)),
            Some(h) if h.applied < target => behind.push(format!("{name} (at {})", h.applied)),
            Some(_) => {}
        }
    }
    if behind.is_empty() {
        Verdict::Done(named)
    } else {
        Verdict::Behind(behind)
    }
}

/// Polls `look` until `judge` says done, or fails after `timeout` naming the hosts behind.
pub fn wait(
    mut look: impl FnMut() -> Result<Realized, String>,
    revision: u64,
    hosts: Option<&[String]>,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let start = Instant::now();
    loop {
        let verdict = look().map(|r| judge(&r, revision, hosts));
        match verdict {
            Ok(Verdict::Done(h)) => return Ok(h),
            Ok(Verdict::Behind(b)) if start.elapsed() >= timeout => {
                return Err(format!(
                    "revision {revision} not applied after {} s on: {}",
                    timeout.as_secs_f64(),
                    b.join(", ")
                ));
            }
            Err(e) if start.elapsed() >= timeout => {
                return Err(format!("revision {revision}: {e}"));
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Realized {
        let h = |n: &str, alive, applied| Host {
            host: n.into(),
            alive,
            applied,
        };
        Realized {
            last_commit: 20,
            hosts: vec![h("a", true, 20), h("b", true, 12), h("c", false, 5)],
        }
    }

    #[test]
    fn every_live_host_by_default_the_named_ones_otherwise() {
        let r = state();
        assert_eq!(
            judge(&r, 12, None),
            Verdict::Done(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            judge(&r, 15, None),
            Verdict::Behind(vec!["b (at 12)".into()])
        );
        let named = ["a".to_string(), "c".to_string(), "d".to_string()];
        assert_eq!(
            judge(&r, 1, Some(&named)),
            Verdict::Behind(vec![
                "c (not alive, at 5)".into(),
                "d (no controller heartbeat)".into()
            ])
        );
        // A revision past the last commit is reached at the last commit.
        assert_eq!(
            judge(&r, 99, Some(&["a".to_string()])),
            Verdict::Done(vec!["a".into()])
        );
    }

    #[test]
    fn a_timeout_names_the_hosts_behind() {
        let e = wait(|| Ok(state()), 15, None, Duration::ZERO).unwrap_err();
        assert!(e.contains("revision 15") && e.contains("b (at 12)"), "{e}");
        let e = wait(|| Err("down".into()), 1, None, Duration::ZERO).unwrap_err();
        assert!(e.contains("down"), "{e}");
    }

    #[test]
    fn the_listener_answer_is_read_and_servers_left_out() {
        let v = serde_json::json!({"last_commit": 9, "agents": [
            {"host": "a", "binary": "dragonflow-controller", "alive": true, "applied_revision": 9},
            {"host": "s", "binary": "dragonflow-server", "alive": true, "applied_revision": 9},
        ]});
        let r = Realized::from_json(&v).unwrap();
        assert_eq!(r.hosts.len(), 1);
        assert!(Realized::from_json(&serde_json::json!({})).is_err());
    }
}
