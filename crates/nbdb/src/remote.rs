//! The NB store as a server exposes it over HTTP (`/nb/v1` on its NB listener, see the API
//! server): a client for hosts that cannot open the store themselves, which is always the
//! case for the embedded store. Every request carries the host's bearer token. A
//! [`RemoteWatch`] resumes from its last revision after the connection or the server goes
//! away, so nothing is lost or seen twice across a restart, or after the server cut a
//! watcher that took nothing for its stall timeout (a stopped or overloaded host).

use crate::source::{Filter, wire};
use crate::{Change, Record, Result, Revision, Snapshot, StoreError};
use serde_json::Value;
use std::time::Duration;

/// How long a snapshot or a lookup may take before the server is taken as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A watch stream silent this long is dead (the server sends a blank line every 15 s),
/// e.g. its server's host went away without a reset: reconnect.
const SILENT: Duration = Duration::from_secs(45);

/// A server's store endpoints, e.g. `http://127.0.0.1:9696`.
#[derive(Clone, Debug)]
pub struct Remote {
    base: String,
    client: reqwest::Client,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// An HTTP client that sends `token` (if any) as `Authorization: Bearer` on every request.
pub fn client_with_token(token: Option<&str>) -> reqwest::ClientBuilder {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = token
        && let Ok(mut v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
    {
        v.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    reqwest::Client::builder().default_headers(headers)
}

impl Remote {
    /// The endpoints at `base`, without a token.
    pub fn new(base: &str) -> Remote {
        Remote::with_token(base, None)
    }

    /// The endpoints at `base`, every request with `token`.
    pub fn with_token(base: &str, token: Option<&str>) -> Remote {
        Remote {
            base: base.trim_end_matches('/').to_string(),
            // Without TLS, building a client fails only as `Client::new` would: by panicking.
            client: client_with_token(token).build().expect("an HTTP client"),
        }
    }

    /// A JSON document from the server; `None` for 404.
    async fn get_json(&self, url: &str) -> Result<Option<Value>> {
        let resp = self
            .client
            .get(url)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(unavailable)?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(unavailable(format!("{url}: HTTP {}", resp.status())));
        }
        let body = resp.bytes().await.map_err(unavailable)?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("{url}: {e}")))
    }

    /// All objects (within `filter`) at one revision.
    pub async fn snapshot(&self, filter: &Filter) -> Result<Snapshot> {
        let url = format!("{}/nb/v1/snapshot?{}", self.base, filter.to_query());
        let v = self
            .get_json(&url)
            .await?
            .ok_or_else(|| unavailable(format!("{url}: HTTP 404")))?;
        let revision = v
            .get("revision")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        let records = v
            .get("records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|item| wire::parse(item).map(wire::into_record))
            .collect::<Result<_>>()?;
        Ok(Snapshot { revision, records })
    }

    /// One object, `None` when there is no such object.
    pub async fn get(&self, table: &str, id: &str) -> Result<Option<Record>> {
        let url = format!("{}/nb/v1/objects/{table}/{id}", self.base);
        match self.get_json(&url).await? {
            Some(v) => wire::parse(&v).map(|c| Some(wire::into_record(c))),
            None => Ok(None),
        }
    }

    /// Many objects in one request (`POST /nb/v1/lookup`), in order; `None` for those that
    /// do not exist.
    pub async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Record>>> {
        let url = format!("{}/nb/v1/lookup", self.base);
        let body = serde_json::json!({"objects": keys
            .iter()
            .map(|(t, id)| serde_json::json!({"table": t, "id": id}))
            .collect::<Vec<_>>()});
        let resp = self
            .client
            .post(&url)
            .timeout(REQUEST_TIMEOUT)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(unavailable)?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("{url}: HTTP {}", resp.status())));
        }
        let bytes = resp.bytes().await.map_err(unavailable)?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("{url}: {e}")))?;
        let records = v
            .get("records")
            .and_then(Value::as_array)
            .ok_or_else(|| StoreError::Corrupt(format!("{url}: no records")))?;
        if records.len() != keys.len() {
            return Err(StoreError::Corrupt(format!(
                "{url}: {} records for {} objects",
                records.len(),
                keys.len()
            )));
        }
        records
            .iter()
            .map(|r| match r {
                Value::Null => Ok(None),
                r => wire::parse(r).map(|c| Some(wire::into_record(c))),
            })
            .collect()
    }

    /// Follows the change stream from after `after`.
    pub fn watch(&self, after: Revision, filter: Filter) -> RemoteWatch {
        RemoteWatch {
            remote: self.clone(),
            filter,
            last: after,
            seen_in_last: 0,
            skip: 0,
            progress: after,
            resp: None,
            buf: Vec::new(),
            backoff: Duration::from_millis(50),
            resumes: 0,
        }
    }
}

/// A change stream from a server that survives disconnections.
pub struct RemoteWatch {
    remote: Remote,
    filter: Filter,
    /// The revision of the last change handed out, and how many of its changes were.
    last: Revision,
    seen_in_last: usize,
    /// Changes of revision `last` to pass over after a reconnect (already handed out).
    skip: usize,
    /// The server's word that everything within the filter up to here was sent.
    progress: Revision,
    resp: Option<reqwest::Response>,
    buf: Vec<u8>,
    backoff: Duration,
    /// Streams that ended and were resumed.
    resumes: u64,
}

/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl RemoteWatch {
    /// The revision of the last change handed out (or the starting point).
    pub fn revision(&self) -> Revision {
        self.last
    }

    /// The revision up to which every change within the filter has been handed out: the
    /// server's progress lines carry it past the changes the filter leaves out. Until one
    /// comes, the last revision handed out counts as possibly incomplete.
    pub fn position(&self) -> Revision {
        if self.progress >= self.last {
            self.progress
        } else {
            self.last.saturating_sub(1)
        }
    }

    /// How many times the stream ended (the server cut it, restarted, went silent) and was
    /// resumed from the last revision.
    pub fn resumes(&self) -> u64 {
        self.resumes
    }

    async fn connect(&mut self) -> Result<reqwest::Response> {
        // A revision's changes come together; if only some of the last one were handed
        // out, ask for it again and pass over those.
        let after = if self.seen_in_last > 0 {
            self.last - 1
        } else {
            self.last
        };
        self.skip = self.seen_in_last;
        loop {
            let url = format!(
                "{}/nb/v1/watch?after={after}&{}",
                self.remote.base,
                self.filter.to_query()
            );
            match self.remote.client.get(&url).send().await {
                Ok(r) if r.status().is_success() => {
                    self.backoff = Duration::from_millis(50);
                    if self.resumes > 0 {
                        tracing::info!(revision = after, "NB watch resumed after its revision");
                    }
                    return Ok(r);
                }
                Ok(r) if r.status() == reqwest::StatusCode::GONE => {
                    tracing::warn!(
                        revision = after,
                        "NB watch: the server's log no longer reaches back to this revision; taking a new snapshot"
                    );
                    return Err(StoreError::Compacted {
                        requested: after + 1,
                        oldest: 0,
                    });
                }
                Ok(r) => tracing::warn!(%url, status = %r.status(), "watch refused; retrying"),
                Err(e) => tracing::debug!(%url, error = %e, "watch connection failed; retrying"),
            }
            tokio::time::sleep(self.backoff).await;
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The next change, reconnecting (and resuming after the last revision seen) as often
    /// as needed. Fails only with [`StoreError::Compacted`] (take a new snapshot) or on a
    /// malformed stream.
    pub async fn next(&mut self) -> Result<Change> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = &line[..line.len() - 1];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue; // heartbeat
                }
                let v: Value = serde_json::from_slice(line)
                    .map_err(|e| StoreError::Corrupt(format!("bad watch line: {e}")))?;
                if let Some(p) = wire::progress(&v) {
                    self.progress = self.progress.max(p);
                    continue;
                }
                let c = wire::parse(&v)?;
                let revision = c.revision;
                if revision < self.last || (revision == self.last && self.skip > 0) {
                    self.skip = self.skip.saturating_sub(1);
                    continue; // handed out before the reconnect
                }
                if revision == self.last {
                    self.seen_in_last += 1;
                } else {
                    (self.last, self.seen_in_last, self.skip) = (revision, 1, 0);
                }
                return Ok(c);
            }
            let resp = match self.resp.as_mut() {
                Some(r) => r,
                None => {
                    let r = self.connect().await?;
                    self.resp.insert(r)
                }
            };
            match tokio::time::timeout(SILENT, resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.extend_from_slice(&bytes),
                ended => {
                    // The stream ended: drop any partial line and resume where we are.
                    let why = match ended {
                        Err(_) => "silent".to_string(),
                        Ok(Err(e)) => e.to_string(),
                        Ok(_) => "closed".to_string(),
                    };
                    tracing::info!(
                        revision = self.last,
                        why,
                        "NB watch stream ended; resuming after its revision"
                    );
                    self.resp = None;
                    self.buf.clear();
                    self.resumes += 1;
                }
            }
        }
    }
}
