//! The server's publisher: follows the store's whole change stream once, from the
//! revision it starts at, and publishes each revision's changes per channel, with a
//! sweep every second (tails of quiet channels, a tick).

use super::Endpoint;
use super::seq::Sequencer;
use super::transport::Publisher;
use crate::{Change, Filter, Store, StoreError, Watch};
use std::sync::Arc;
use std::time::Duration;

/// How often tails and ticks are sent.
pub const SWEEP: Duration = Duration::from_secs(1);

/// Opens the publishing socket (so a bad address fails the server's start) and spawns
/// the loop that feeds it; aborting the returned handle stops it (and closes the socket).
pub async fn start(
    store: Arc<dyn Store>,
    ep: &Endpoint,
) -> Result<tokio::task::AbortHandle, String> {
    let publisher = Publisher::open(ep).await?;
    Ok(tokio::spawn(run(store, publisher)).abort_handle())
}

async fn run(store: Arc<dyn Store>, mut out: Publisher) {
    let mut start = loop {
        match store.revision().await {
            Ok(r) => break r,
            Err(e) => {
                tracing::warn!(error = %e, "pubsub: cannot read the store's revision; retrying");
                tokio::time::sleep(SWEEP).await;
            }
        }
    };
    tracing::info!(revision = start, "pubsub: publishing the change stream");
    let mut seq = Sequencer::new(start);
    let mut watch = Watch::filtered(store.clone(), start, Filter::all());
    let mut revision: Vec<Change> = Vec::new();
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            c = watch.next() => match c {
                Ok(c) => {
                    let rev = c.revision;
                    if revision.first().is_some_and(|p| p.revision != rev) {
                        publish(&mut out, &mut seq, std::mem::take(&mut revision)).await;
                    }
                    revision.push(c);
                    // Once the watch is past it, the revision is whole: publish it.
                    if watch.position() >= rev {
                        publish(&mut out, &mut seq, std::mem::take(&mut revision)).await;
                    }
                }
                Err(StoreError::Compacted { .. }) => {
                    // Fell behind the log: start over from now; each channel's next
                    // message links back to here, so subscribers fill what was skipped.
                    start = store.revision().await.unwrap_or(start);
                    tracing::warn!(revision = start, "pubsub: the publisher fell behind the log; starting over");
                    seq = Sequencer::new(start);
                    watch = Watch::filtered(store.clone(), start, Filter::all());
                    revision.clear();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pubsub: reading the change stream failed; retrying");
                    tokio::time::sleep(SWEEP).await;
                }
            },
            _ = sweep.tick() => {
                seq.reached(watch.position());
                for m in seq.sweep() {
                    out.send(&m).await;
                }
            }
        }
    }
}

async fn publish(out: &mut Publisher, seq: &mut Sequencer, changes: Vec<Change>) {
    let Some(rev) = changes.first().map(|c| c.revision) else {
        return;
    };
    for m in seq.revision(rev, changes) {
        out.send(&m).await;
    }
}
