//! The controller's heartbeat: a task of its own (a slow store must not hold the event
//! loop) that writes this host's agent report every `report_interval`, and sooner (at most
//! once a second) when the revision the switch reflects moved on, so `dragonflow db wait`
//! learns it without waiting a whole interval. The runtime hands it what it reports
//! through a watch channel; the engine is not involved. The balancer listeners' counts
//! (`lb_stats`) ride along, and a new count is a reason to write too (they are counted
//! every few seconds only).

use crate::nb::Beats;
use model::agent::{self, Report};
use model::lb_stats::ByListener;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// What changes between heartbeats, as the runtime last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// The NB revision the switch reflects: every change up to it is installed.
    pub applied: u64,
    /// Flows this controller holds in the switch.
    pub flows: usize,
    /// Ports plugged here that the controller serves.
    pub devices: usize,
}

/// What does not change: who is reporting, and how often.
#[derive(Clone, Debug)]
pub struct Settings {
    pub host: String,
    pub tunnel_types: Vec<String>,
    pub bridge_mappings: Vec<(String, String)>,
    /// Open vSwitch's datapath (`system`, `netdev`): Nova's os-vif plugs VMs accordingly.
    pub datapath_type: String,
    pub report_interval: Duration,
    /// The heartbeat's time to live when written to a store directly (the server gives
    /// its own `agent_down_time` to those it writes).
    pub agent_down_time: Duration,
    /// The zone this host is in (`nova` unless configured).
    pub availability_zone: String,
}

/// The shortest gap between two heartbeats that only report a newer revision.
const EARLY: Duration = Duration::from_secs(1);

/// The report of `status`.
pub fn report(s: &Settings, started_at: &str, status: &Status, lb_stats: &ByListener) -> Report {
    let mut configurations = BTreeMap::new();
    configurations.insert("tunnel_types".into(), json!(s.tunnel_types));
    let mappings: BTreeMap<&str, &str> = s
        .bridge_mappings
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_str()))
        .collect();
    configurations.insert("bridge_mappings".into(), json!(mappings));
    configurations.insert("datapath_type".into(), json!(s.datapath_type));
    configurations.insert("model_version".into(), json!(model::version::MODEL_VERSION));
    configurations.insert("flows".into(), json!(status.flows));
    configurations.insert("devices".into(), json!(status.devices));
    Report {
        agent_type: agent::CONTROLLER_TYPE.into(),
        binary: agent::CONTROLLER_BINARY.into(),
        host: s.host.clone(),
        topic: "N/A".into(),
        availability_zone: Some(s.availability_zone.clone()),
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: started_at.into(),
        applied_revision: status.applied,
        configurations,
        lb_stats: lb_stats.clone(),
    }
}

/// Writes heartbeats until `status`'s sender is dropped.
pub async fn run(
    beats: Beats,
    s: Settings,
    mut status: watch::Receiver<Status>,
    mut lb_stats: watch::Receiver<ByListener>,
) {
    let started_at = model::time::now();
    // The revision the last heartbeat written carried.
    let mut reported: Option<u64> = None;
    let mut due = tokio::time::Instant::now();
    // Until the counts' sender is gone (the status one going ends the loop).
    let mut counting = true;
    // A count came that no heartbeat carried yet.
    let mut recount = false;
    loop {
        // The interval, or a newer revision than the one reported, whichever comes first.
        loop {
            let newer = reported.is_none_or(|r| status.borrow().applied > r);
            if newer || recount || tokio::time::Instant::now() >= due {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                changed = status.changed() => if changed.is_err() { return },
                // (`changed` marks the count seen: remember that it is new.)
                c = lb_stats.changed(), if counting => {
                    counting = c.is_ok();
                    recount = counting;
                }
            }
        }
        let current = status.borrow_and_update().clone();
        let counts = lb_stats.borrow_and_update().clone();
        recount = false;
        match beats
            .send(
                &report(&s, &started_at, &current, &counts),
                s.agent_down_time,
            )
            .await
        {
            Ok(()) => reported = Some(current.applied),
            Err(e) => tracing::warn!(error = %e, "heartbeat not written"),
        }
        due = tokio::time::Instant::now() + s.report_interval;
        // At most one heartbeat a second, however fast the revision moves.
        tokio::time::sleep(EARLY.min(s.report_interval)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn applied(store: &std::sync::Arc<dyn nbdb::Store>) -> Option<u64> {
        let l = store
            .get_lease(&agent::key(agent::CONTROLLER_BINARY, "h1"))
            .await
            .unwrap()?;
        let hb: agent::Heartbeat = serde_json::from_slice(&l.value).unwrap();
        assert!(l.live);
        Some(hb.report.applied_revision)
    }

    /// The first heartbeat goes out at once; a newer revision within about a second, long
    /// before the 30 s interval; nothing more when nothing changed; none after the runtime
    /// is gone.
    #[tokio::test]
    async fn a_newer_revision_is_reported_early_and_the_interval_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let store = nbdb::open(&format!("embedded:{}", dir.path().join("nb").display())).unwrap();
        let settings = Settings {
            host: "h1".into(),
            tunnel_types: vec!["geneve".into()],
            bridge_mappings: vec![("physnet1".into(), "br-ex".into())],
            datapath_type: "netdev".into(),
            report_interval: Duration::from_secs(30),
            agent_down_time: Duration::from_secs(75),
            availability_zone: "az1".into(),
        };
        let (tx, rx) = watch::channel(Status {
            applied: 4,
            flows: 10,
            devices: 1,
        });
        let (counts, counts_rx) = watch::channel(ByListener::new());
        let task = tokio::spawn(run(Beats::to_store(store.clone()), settings, rx, counts_rx));
        let wait_for = |want: u64| {
            let store = store.clone();
            async move {
                let start = tokio::time::Instant::now();
                while applied(&store).await != Some(want) {
                    assert!(
                        start.elapsed() < Duration::from_secs(3),
                        "never reported {want}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                start.elapsed()
            }
        };
        wait_for(4).await;
        let l = store
            .get_lease(&agent::key(agent::CONTROLLER_BINARY, "h1"))
            .await
            .unwrap()
            .unwrap();
        let hb: agent::Heartbeat = serde_json::from_slice(&l.value).unwrap();
        assert_eq!(hb.report.configurations["flows"], json!(10));
        assert_eq!(hb.report.configurations["datapath_type"], "netdev");
        assert_eq!(hb.report.availability_zone.as_deref(), Some("az1"));
        assert_eq!(
            hb.report.configurations["bridge_mappings"],
            json!({"physnet1": "br-ex"})
        );
        tx.send_modify(|s| s.applied = 9);
        let took = wait_for(9).await;
        assert!(took < Duration::from_millis(1500), "{took:?}");
        // A new count goes out well before the interval too, and the counts' sender
        // going first does not stop (nor spin) the loop.
        let stats = model::lb_stats::Stats {
            total_connections: 3,
            ..Default::default()
        };
        // (Sent while the loop waits, past its one-second pause after a write.)
        tokio::time::sleep(Duration::from_millis(1500)).await;
        counts.send_replace([("l1".to_string(), stats)].into());
        let start = tokio::time::Instant::now();
        loop {
            let l = store
                .get_lease(&agent::key(agent::CONTROLLER_BINARY, "h1"))
                .await
                .unwrap()
                .unwrap();
            let hb: agent::Heartbeat = serde_json::from_slice(&l.value).unwrap();
            if hb.report.lb_stats.get("l1") == Some(&stats) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "counts not reported"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(counts);
        tx.send_modify(|s| s.applied = 11);
        wait_for(11).await;
        drop(tx);
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .expect("the task ends with the runtime's sender")
            .unwrap();
    }
}
