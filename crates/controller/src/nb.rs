//! The controller's link to the NB store: through the API server's NB listener (`http://…`,
//! with this host's token; the only way to the embedded store) or straight to etcd or
//! Redis (`etcd://…`, `redis://…`). Either way the controller reads snapshots and follows
//! changes limited to the topics it needs, looks up single objects, registers its chassis
//! and reports port bindings.

use model::{Chassis, Port, PortStatus};
use nbdb::remote::{Filter, Remote, RemoteWatch};
use nbdb::{Change, Expect, Op, Record, Revision, Snapshot, Store, StoreError, Watch};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Where the NB model comes from.
pub enum Nb {
    Server {
        remote: Remote,
        base: String,
        http: reqwest::Client,
    },
    /// A store read and written directly, and the server's NB listener if one was named
    /// (`--api`): the write that needs its allocation (a host's SNAT address) goes there.
    Store(Arc<dyn Store>, Option<Api>),
}

/// The server's NB listener for the writes only it can make: its URL and one client.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

/// An HTTP client with this host's token whose requests give up after a while: a request
/// the server never answers must not hold the controller.
fn client(token: Option<&str>) -> Result<reqwest::Client, String> {
    nbdb::remote::client_with_token(token)
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())
}

/// A change stream limited to some tables and topics.
pub enum NbWatch {
    Server(RemoteWatch),
    Store {
        watch: Watch,
        tables: BTreeSet<String>,
    },
}

impl NbWatch {
    /// The next change of a followed table and topic.
    pub async fn next(&mut self) -> Result<Change, StoreError> {
        match self {
            NbWatch::Server(w) => w.next().await,
            NbWatch::Store { watch, tables } => loop {
                let c = watch.next().await?;
                if tables.contains(&c.table) {
                    return Ok(c);
                }
            },
        }
    }
}

impl Nb {
    /// Connects to `url` (a server's NB listener is shown `token`); a store is checked
    /// reachable now, a server when first used.
    pub async fn connect(url: &str, api: Option<&str>, token: Option<&str>) -> Result<Nb, String> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(Nb::Server {
                remote: Remote::with_token(url, token),
                base: url.trim_end_matches('/').to_string(),
                http: client(token)?,
            });
        }
        if url.starts_with("embedded:") || !url.contains("://") {
            return Err(format!(
                "--nb {url}: the embedded store belongs to the API server; give the server's NB listener (http://HOST:9697)"
            ));
        }
        let api = match api {
            Some(a) => Some(Api {
                base: a.trim_end_matches('/').to_string(),
                http: client(token)?,
            }),
            None => None,
        };
        let store = nbdb::connect(url)
            .await
            .map_err(|e| format!("NB store {url}: {e}"))?;
        Ok(Nb::Store(store, api))
    }

    /// Everything of `tables` in `topics` (plus the topic-less objects), at one revision.
    pub async fn snapshot(
        &self,
        tables: &BTreeSet<String>,
        topics: &BTreeSet<String>,
    ) -> Result<Snapshot, StoreError> {
        match self {
            Nb::Server { remote, .. } => remote.snapshot(&filter(tables, topics)).await,
            Nb::Store(store, _) => {
                let mut snap = store.snapshot().await?;
                snap.records.retain(|r| {
                    tables.contains(&r.table) && r.topic.as_ref().is_none_or(|t| topics.contains(t))
                });
                Ok(snap)
            }
        }
    }

    /// The changes after `after` of `tables` in `topics` (plus the topic-less ones).
    pub fn watch(
        &self,
        after: Revision,
        tables: &BTreeSet<String>,
        topics: &BTreeSet<String>,
    ) -> NbWatch {
        match self {
            Nb::Server { remote, .. } => {
                NbWatch::Server(remote.watch(after, filter(tables, topics)))
            }
            Nb::Store(store, _) => NbWatch::Store {
                watch: Watch::new(store.clone(), after, Some(topics.iter().cloned().collect())),
                tables: tables.clone(),
            },
        }
    }

    /// One object, wherever its topic.
    pub async fn get(&self, table: &str, id: &str) -> Result<Option<Record>, StoreError> {
        match self {
            Nb::Server { remote, .. } => remote.get(table, id).await,
            Nb::Store(store, _) => store.get(table, id).await,
        }
    }

    /// Registers this host (its tunnel endpoint); waits for a server still starting.
    pub async fn register(&self, chassis: &Chassis) -> Result<(), String> {
        let Nb::Server { base, http, .. } = self else {
            return self.write_chassis(chassis).await;
        };
        let url = format!("{base}/nb/v1/chassis/{}", chassis.id);
        for attempt in 0..50 {
            match send_json(http.put(&url), &chassis_body(chassis)).await {
                Ok(()) => return Ok(()),
                // A refusal (a token for another host, or none) is final.
                Err(SendError::Status(e)) => return Err(format!("registering chassis: {e}")),
                Err(SendError::Unreachable(e)) if attempt < 49 => {
                    tracing::debug!(error = %e, "server not reachable yet");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(SendError::Unreachable(e)) => {
                    return Err(format!("registering chassis at {url}: {e}"));
                }
            }
        }
        Err("registering chassis: no answer".into())
    }

    /// Writes this host's chassis record once.
    pub async fn write_chassis(&self, chassis: &Chassis) -> Result<(), String> {
        match self {
            Nb::Server { base, http, .. } => {
                let url = format!("{base}/nb/v1/chassis/{}", chassis.id);
                Ok(send_json(http.put(&url), &chassis_body(chassis)).await?)
            }
            Nb::Store(store, _) => {
                let value = serde_json::to_vec(chassis).map_err(|e| e.to_string())?;
                store
                    .commit(vec![Op::put("chassis", &chassis.id, value, Expect::Any)])
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("registering chassis: {e}"))
            }
        }
    }

    /// Reports port `id` bound to `host` with `status`.
    pub async fn bind(&self, id: &str, host: &str, status: PortStatus) -> Result<(), String> {
        match self {
            Nb::Server { base, http, .. } => {
                let url = format!("{base}/nb/v1/ports/{id}/binding");
                let body = serde_json::json!({"host": host, "status": status.as_str()});
                Ok(send_json(http.put(&url), &body).await?)
            }
            Nb::Store(store, _) => {
                // Compare-and-set on the port's revision: an API update in between wins
                // and the binding is written again on top of it.
                for _ in 0..10 {
                    let Some(r) = store.get("port", id).await.map_err(|e| e.to_string())? else {
                        return Err(format!("port {id} is gone"));
                    };
                    let mut p: Port =
                        serde_json::from_slice(&r.value).map_err(|e| e.to_string())?;
                    p.binding_host_id = host.to_string();
                    p.status = status;
                    p.meta.updated_at = model::time::now();
                    p.meta.revision_number += 1;
                    let value = serde_json::to_vec(&p).map_err(|e| e.to_string())?;
                    let op = Op::put("port", id, value, Expect::Revision(r.revision))
                        .with_topic(r.topic.as_deref());
                    match store.commit(vec![op]).await {
                        Ok(_) => return Ok(()),
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Err(format!("port {id} keeps changing"))
            }
        }
    }

    /// Makes sure this host has its SNAT address port on external network `network`: the
    /// server's NB listener makes it (`PUT /nb/v1/snat/{network}`: an ordinary port through
    /// its IPAM and transaction, device owner `network:chassis_snat`, `device_id` = the
    /// chassis, bound here) or answers with the one it has, so a restarted controller keeps
    /// its address. Only this host's token is needed, no Neutron credentials.
    pub async fn ensure_snat_port(&self, network: &str, chassis: &str) -> Result<(), String> {
        let (base, http) = match self {
            Nb::Server { base, http, .. } => (base, http),
            Nb::Store(_, Some(api)) => (&api.base, &api.http),
            Nb::Store(_, None) => {
                return Err(
                    "SNAT addresses are allocated by the API server: give --api http://SERVER:9697 (its NB listener) with a store's --nb"
                        .into(),
                );
            }
        };
        let url = format!("{base}/nb/v1/snat/{network}");
        Ok(send_json(http.put(&url), &serde_json::json!({"host": chassis})).await?)
    }
}

fn chassis_body(chassis: &Chassis) -> serde_json::Value {
    serde_json::json!({"ip": chassis.ip, "tunnel_types": chassis.tunnel_types})
}

/// Why a request failed: no answer, or an answer other than 2xx.
enum SendError {
    Unreachable(String),
    Status(String),
}

impl From<SendError> for String {
    fn from(e: SendError) -> String {
        match e {
            SendError::Unreachable(e) | SendError::Status(e) => e,
        }
    }
}

/// Sends `body` as JSON; an answer other than 2xx is an error with its status and text.
async fn send_json(
    req: reqwest::RequestBuilder,
    body: &serde_json::Value,
) -> Result<(), SendError> {
    let r = req
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| SendError::Unreachable(e.to_string()))?;
    if r.status().is_success() {
        return Ok(());
    }
    Err(SendError::Status(format!(
        "HTTP {}: {}",
        r.status(),
        r.text().await.unwrap_or_default()
    )))
}

fn filter(tables: &BTreeSet<String>, topics: &BTreeSet<String>) -> Filter {
    Filter {
        topics: Some(topics.iter().cloned().collect()),
        tables: Some(tables.iter().cloned().collect()),
    }
}
