//! Nova's port handshake, the sending half: the `[nova]` settings and the task that
//! delivers the outbox (`model::nova`) to Nova's `POST /os-server-external-events`, with
//! the server's Keystone service token, and deletes what Nova took. Events are written in
//! the same transaction as the port change that makes them, so they survive a server
//! restart; a failed send keeps them and backs off (doubling up to a minute).
//!
//! Every API server runs a sender: with several, an event may reach Nova twice (Nova
//! ignores an event nobody waits for), never zero times.

pub mod answer;

use crate::keystone::Keystone;
use answer::Outcome;
use model::nova::{Event, OUTBOX, Outbox};
use nbdb::{Expect, Op, Record, Store};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The `[nova]` table of the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NovaConfig {
    /// Nova's compute endpoint, with its version (`http://nova:8774/v2.1`). Empty: no
    /// Nova; events are dropped as they come.
    pub url: String,
    /// Neutron's switch: tell Nova when its ports turn ACTIVE, go DOWN or are deleted.
    pub notify_nova_on_port_status_changes: bool,
    /// Seconds between sends: the events of that time go in one request (Neutron's name).
    pub send_events_interval: u64,
    /// Seconds to wait for Nova.
    pub http_timeout: u64,
}

impl Default for NovaConfig {
    fn default() -> NovaConfig {
        NovaConfig {
            url: String::new(),
            notify_nova_on_port_status_changes: true,
            send_events_interval: 2,
            http_timeout: 10,
        }
    }
}

/// Records handled in one round (each holds the events of one transaction).
const RECORDS_PER_ROUND: usize = 100;
/// Longest pause after failed sends.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Delivers the outbox; see the module's text.
pub struct Sender {
    store: Arc<dyn Store>,
    /// `…/os-server-external-events`, or None when events are dropped.
    url: Option<String>,
    interval: Duration,
    http: reqwest::Client,
    keystone: Option<Arc<Keystone>>,
}

impl NovaConfig {
    /// Checks the settings; `keystone` gives the token (None under noauth: sent without).
    pub fn sender(
        &self,
        store: Arc<dyn Store>,
        keystone: Option<Arc<Keystone>>,
    ) -> Result<Sender, String> {
        let url = self.url.trim().trim_end_matches('/');
        let url = if url.is_empty() || !self.notify_nova_on_port_status_changes {
            None
        } else if url.starts_with("http://") && url.len() > "http://".len() {
            Some(format!("{url}/os-server-external-events"))
        } else {
            return Err(format!(
                "url {:?} must be an http:// URL (https is not built in)",
                self.url
            ));
        };
        if !(1..=3600).contains(&self.send_events_interval) {
            return Err("send_events_interval must be within 1..=3600 seconds".into());
        }
        let timeout = Duration::from_secs(self.http_timeout.clamp(1, 300));
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot make the Nova HTTP client: {e}"))?;
        Ok(Sender {
            store,
            url,
            interval: Duration::from_secs(self.send_events_interval),
            http,
            keystone,
        })
    }
}

/// What one round did.
enum Round {
    /// Nothing waiting, or all handled.
    Done,
    /// Events kept for later.
    Failed,
}

impl Sender {
    /// Sends until `stopped` resolves.
    pub async fn run(self, stopped: impl std::future::Future<Output = ()>) {
        match &self.url {
            Some(url) => {
                tracing::info!(%url, keystone = self.keystone.is_some(), "sending port events to Nova")
            }
            None => tracing::info!(
                "no [nova] url (or notifications off): port events for Nova are dropped"
            ),
        }
        tokio::pin!(stopped);
        let mut pause = self.interval;
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = match self.round().await {
                Round::Done => self.interval,
                Round::Failed => (pause * 2).min(MAX_BACKOFF),
            };
        }
    }

    async fn round(&self) -> Round {
        let mut records = match self.store.list(OUTBOX, "").await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the Nova outbox");
                return Round::Failed;
            }
        };
        if records.is_empty() {
            return Round::Done;
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        records.truncate(RECORDS_PER_ROUND);
        let events: Vec<Event> = records.iter().flat_map(read_record).collect();
        let Some(url) = &self.url else {
            tracing::debug!(events = events.len(), "port events dropped: no Nova");
            return self.forget(&records).await;
        };
        if events.is_empty() {
            return self.forget(&records).await;
        }
        let mut rejected = None;
        for _ in 0..2 {
            let outcome = match self.post(url, &events, rejected.as_deref()).await {
                Ok((status, body, token)) => {
                    rejected = token;
                    answer::judge(status, &body)
                }
                Err(e) => Outcome::Later(e),
            };
            match outcome {
                Outcome::Delivered { refused } => {
                    for (tag, why) in &refused {
                        tracing::warn!(port = %tag, "Nova refused a port event: {why}");
                    }
                    tracing::info!(
                        events = events.len(),
                        refused = refused.len(),
                        "port events sent to Nova"
                    );
                    return self.forget(&records).await;
                }
                // Once more with a new token.
                Outcome::Unauthorized if self.keystone.is_some() => continue,
                Outcome::Unauthorized => {
                    tracing::warn!(
                        "Nova refused the events without a token (auth_strategy is noauth): kept"
                    );
                    return Round::Failed;
                }
                Outcome::Later(why) => {
                    tracing::warn!(
                        events = events.len(),
                        "Nova did not take the port events, kept for later: {why}"
                    );
                    return Round::Failed;
                }
                Outcome::Rejected(why) => {
                    tracing::error!(
                        events = events.len(),
                        "Nova rejected the port events, dropped: {why}"
                    );
                    return self.forget(&records).await;
                }
            }
        }
        tracing::warn!("Nova refuses our new service token too: events kept");
        Round::Failed
    }

    /// One POST; the token used comes back, so a 401 can ask Keystone for a new one.
    async fn post(
        &self,
        url: &str,
        events: &[Event],
        rejected: Option<&str>,
    ) -> Result<(u16, Vec<u8>, Option<String>), String> {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-openstack-nova-api-version", "2.1")
            .body(serde_json::json!({ "events": events }).to_string());
        let mut token = None;
        if let Some(ks) = &self.keystone {
            let t = ks.service_token(rejected).await?;
            req = req.header("x-auth-token", &t);
            token = Some(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("Nova unreachable: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("Nova's answer was cut: {e}"))?;
        Ok((status, body.to_vec(), token))
    }

    /// Deletes handled records (one transaction).
    async fn forget(&self, records: &[Record]) -> Round {
        let ops = records
            .iter()
            .map(|r| Op::delete(OUTBOX, &r.id, Expect::Any))
            .collect();
        match self.store.commit(ops).await {
            Ok(_) => Round::Done,
            Err(e) => {
                tracing::warn!(error = %e, "cannot clear sent port events (they may be sent again)");
                Round::Failed
            }
        }
    }
}

/// The events of a record; a record that cannot be read is logged and yields none (it is
/// deleted with the rest: it can never be sent).
fn read_record(r: &Record) -> Vec<Event> {
    match serde_json::from_slice::<Outbox>(&r.value) {
        Ok(o) => o.events,
        Err(e) => {
            tracing::error!(id = %r.id, error = %e, "unreadable Nova outbox record dropped");
            Vec::new()
        }
    }
}
