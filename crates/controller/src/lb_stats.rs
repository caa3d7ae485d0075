//! The runtime's side of the balancer listeners' statistics (`apps::lb::stats`): every
//! few seconds, while this host follows a balancer, the counted flows' stats from the
//! switch (one request, answered between batches) and then, in a task of its own (a slow
//! `ovs-appctl` must not hold the event loop), the open connections from ovs-vswitchd's
//! conntrack; the counts go to the heartbeat, which writes them when they change.

use crate::apps::lb::stats::{self, Counted, Endpoint};
use crate::switch::Session;
use crate::view::View;
use model::lb_stats::ByListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// Counts and hands over; one at a time.
pub struct Collector {
    /// ovs-vswitchd's control socket (None: open connections are not counted).
    target: Option<PathBuf>,
    tx: Arc<watch::Sender<ByListener>>,
    /// A conntrack count still running: the next round is skipped rather than queued.
    busy: Arc<AtomicBool>,
}

impl Collector {
    /// For the switch whose bridge management socket is `openflow`.
    pub fn new(openflow: &Path) -> (Collector, watch::Receiver<ByListener>) {
        let (tx, rx) = watch::channel(ByListener::new());
        let target = unixctl_target(openflow);
        if target.is_none() {
            tracing::warn!(
                dir = ?openflow.parent(),
                "no ovs-vswitchd control socket beside the bridge's: balancer listeners' \
                 active connections are not counted"
            );
        }
        let collector = Collector {
            target,
            tx: Arc::new(tx),
            busy: Arc::new(AtomicBool::new(false)),
        };
        (collector, rx)
    }

    /// One round: the flows' counters now, the conntrack count in the background.
    pub async fn collect<S>(&self, session: &mut Session<S>, view: &View)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        if view.loadbalancers.is_empty() {
            if !self.tx.borrow().is_empty() {
                self.tx.send_replace(ByListener::new());
            }
            return;
        }
        if self.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let counted = Counted::of(view);
        let flows = match session.flow_stats(stats::request()).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "balancer flow stats not read");
                self.busy.store(false, Ordering::Release);
                return;
            }
        };
        let mut counts = counted.tally(&flows);
        let (target, tx, busy) = (self.target.clone(), self.tx.clone(), self.busy.clone());
        let endpoints = counted.endpoints;
        tokio::spawn(async move {
            if let Some(t) = target {
                match open_connections(&t, &endpoints).await {
                    Ok(active) => {
                        for (listener, n) in active {
                            if let Some(s) = counts.get_mut(&listener) {
                                s.active_connections = n;
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "balancer connections not counted"),
                }
            }
            tx.send_if_modified(|old| {
                let changed = *old != counts;
                if changed {
                    *old = counts;
                }
                changed
            });
            busy.store(false, Ordering::Release);
        });
    }
}

/// ovs-vswitchd's control socket in the directory of the bridge's management socket:
/// `ovs-vswitchd.ctl` (a daemon started with `--unixctl` there) or OVS's own
/// `ovs-vswitchd.PID.ctl`.
fn unixctl_target(openflow: &Path) -> Option<PathBuf> {
    let dir = openflow.parent()?;
    let plain = dir.join("ovs-vswitchd.ctl");
    if plain.exists() {
        return Some(plain);
    }
    let pid = std::fs::read_to_string(dir.join("ovs-vswitchd.pid")).ok()?;
    let by_pid = dir.join(format!("ovs-vswitchd.{}.ctl", pid.trim()));
    by_pid.exists().then_some(by_pid)
}

/// Runs `ovs-appctl dpctl/dump-conntrack` on the balancers' zone and counts per listener.
async fn open_connections(
    target: &Path,
    endpoints: &[Endpoint],
) -> Result<std::collections::HashMap<String, u64>, String> {
    let out = tokio::process::Command::new("ovs-appctl")
        .arg("-t")
        .arg(target)
        .args(stats::conntrack_command())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(5), out)
        .await
        .map_err(|_| "ovs-appctl took over 5 s".to_string())?
        .map_err(|e| format!("ovs-appctl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ovs-appctl: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(stats::active(&text, endpoints))
}
