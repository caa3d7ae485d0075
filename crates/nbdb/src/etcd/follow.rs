//! The change follower: one long-lived watch over the prefix filling a buffer of recent
//! revisions, which `changes_since` reads instead of opening a watch of its own.

use super::{Shared, io, rev_of, watch_on};
use crate::{Change, Result, Revision};
use etcd_client::WatchOptions;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// The changes of every revision in `(from, head]` that changed something.
#[derive(Default)]
pub(super) struct Recent {
    pub(super) from: Revision,
    pub(super) head: Revision,
    pub(super) revisions: VecDeque<(Revision, Vec<Change>)>,
}

impl Shared {
    /// Changes after `after` from the follower's buffer, if it holds all of them up to
    /// `latest`.
    pub(super) fn buffered(
        &self,
        after: Revision,
        latest: Revision,
        limit: usize,
    ) -> Option<Vec<Change>> {
        let recent = self.recent.lock().ok()?;
        if recent.from > after || recent.head < latest {
            return None;
        }
        let start = recent.revisions.partition_point(|(r, _)| *r <= after);
        Some(
            recent
                .revisions
                .iter()
                .skip(start)
                .take(limit)
                .flat_map(|(_, changes)| changes.iter().cloned())
                .collect(),
        )
    }
}

/// Follows the prefix with one watch, buffering the changes of recent revisions and
/// raising the revision channel as each revision is seen whole; after any failure waits a
/// little and starts over from the current state (which also covers commits made while
/// the server was away).
pub(super) async fn follow(shared: Arc<Shared>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let started = tokio::time::Instant::now();
        if let Err(e) = follow_once(&shared).await {
            tracing::debug!(error = %e, "etcd change follower restarting");
        }
        // Back off only while reconnecting keeps failing.
        if started.elapsed() > Duration::from_secs(5) {
            delay = Duration::from_millis(100);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

async fn follow_once(shared: &Shared) -> Result<()> {
    let mut c = shared.client().await?;
    let resp = c
        .get(shared.marker(), None)
        .await
        .map_err(|e| shared.lost(&c, e))?;
    let ours = resp
        .kvs()
        .first()
        .map(|kv| rev_of(kv.mod_revision()))
        .unwrap_or(0);
    let now = resp.header().map(|h| h.revision()).unwrap_or(0);
    // Revisions in (ours, now] are not ours: the buffer is complete from `ours` on.
    if let Ok(mut recent) = shared.recent.lock() {
        *recent = Recent {
            from: ours,
            head: ours,
            revisions: VecDeque::new(),
        };
    }
    crate::bump(&shared.revision, ours);
    let opts = WatchOptions::new()
        .with_prefix()
        .with_prev_key()
        .with_start_revision(now + 1);
    let mut stream = watch_on(&c, &shared.prefix, opts)
        .await
        .map_err(|e| shared.lost(&c, e))?;
    let mut current = Vec::new();
    while let Some(resp) = stream.message().await.map_err(|e| shared.lost(&c, e))? {
        if resp.canceled() || resp.compact_revision() > 0 {
            return Err(io(format!("watch canceled: {}", resp.cancel_reason())));
        }
        for event in resp.events() {
            if let Some(change) = shared.change(event)? {
                current.push(change);
                continue;
            }
            let Some(kv) = event.kv() else { continue };
            // The marker closes a revision.
            let rev = rev_of(kv.mod_revision());
            if let Ok(mut recent) = shared.recent.lock() {
                if !current.is_empty() {
                    recent
                        .revisions
                        .push_back((rev, std::mem::take(&mut current)));
                }
                while recent.revisions.len() > shared.buffer {
                    if let Some((old, _)) = recent.revisions.pop_front() {
                        recent.from = old;
                    }
                }
                recent.head = rev;
            }
            crate::bump(&shared.revision, rev);
        }
    }
    Ok(())
}
