//! The change follower: keeps the store's revision channel at the latest revision, on a
//! connection of its own blocked on the change stream.

use crate::Revision;
use redis::{AsyncConnectionConfig, Client, Value};
use std::time::Duration;
use tokio::sync::watch;

/// Keeps `tx` at the latest revision: reads `rev`, then blocks on the stream for anything
/// newer; on failure reconnects after a short pause and reads `rev` again.
pub(super) async fn follow(client: Client, prefix: String, tx: watch::Sender<Revision>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let started = tokio::time::Instant::now();
        if let Err(e) = follow_once(&client, &prefix, &tx).await {
            tracing::debug!(error = %e, "redis change follower restarting");
        }
        // Back off only while reconnecting keeps failing.
        if started.elapsed() > Duration::from_secs(5) {
            delay = Duration::from_millis(100);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

pub(super) async fn follow_once(
    client: &Client,
    prefix: &str,
    tx: &watch::Sender<Revision>,
) -> redis::RedisResult<()> {
    // A connection of its own: a blocking XREAD would stall every request behind it.
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(10)));
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let rev_key = format!("{prefix}rev");
    let log = format!("{prefix}log");
    loop {
        let rev: Option<u64> = redis::cmd("GET")
            .arg(&rev_key)
            .query_async(&mut con)
            .await?;
        let rev = rev.unwrap_or(0);
        crate::bump(tx, rev);
        let _: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(2000)
            .arg("STREAMS")
            .arg(&log)
            .arg(format!("{rev}-0"))
            .query_async(&mut con)
            .await?;
    }
}
