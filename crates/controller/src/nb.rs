//! The controller's link to the NB store: through the API server's NB listener (`http://…`,
//! with this host's token; the only way to the embedded store) or straight to etcd, Redis
//! or ZooKeeper (`etcd://…`, `redis://…`, `zk://…`). Either way the controller reads snapshots and follows
//! changes limited to the topics it needs, looks up single objects, registers its chassis,
//! reports port bindings and writes its heartbeat ([`Beats`]).
//! With [`Nb::with_pubsub`] the change stream comes from the server's publish-subscribe
//! fan-out instead, every loss filled from the same source (`nbdb::pubsub`).

use crate::engine;
use model::{Chassis, Port, PortStatus};
use nbdb::pubsub::PubsubWatch;
use nbdb::pubsub::transport::Subscription;
use nbdb::remote::Remote;
use nbdb::{Changes, Expect, Filter, Op, Record, Revision, Snapshot, Source, Store, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Where the NB model comes from and where this host's few writes go.
pub struct Nb {
    /// Snapshots, the change stream and look-ups: the server's NB listener or a store.
    source: Arc<dyn Source>,
    writes: Writes,
    /// The fan-out the change stream comes from instead, filled from `source`.
    pubsub: Option<Subscription>,
}

/// Where this host's writes (its chassis record, bindings, its SNAT address) go.
enum Writes {
    /// The server's NB listener: its URL and one client with this host's token.
    Server(Api),
    /// A store written directly, and the server's NB listener if one was named (`--api`):
    /// the write that needs its allocation (a host's SNAT address) goes there.
    Store(Arc<dyn Store>, Option<Api>),
}

/// The server's NB listener: its URL and one client.
#[derive(Clone)]
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(base: &str, token: Option<&str>) -> Result<Api, String> {
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            http: client(token)?,
        })
    }
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
pub type NbWatch = Changes;

impl Nb {
    /// Connects to `url` (a server's NB listener is shown `token`); a store is checked
    /// reachable now, a server when first used.
    pub async fn connect(url: &str, api: Option<&str>, token: Option<&str>) -> Result<Nb, String> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(Nb {
                source: Arc::new(Remote::with_token(url, token)),
                writes: Writes::Server(Api::new(url, token)?),
                pubsub: None,
            });
        }
        if url.starts_with("embedded:") || !url.contains("://") {
            return Err(format!(
                "--nb {url}: the embedded store belongs to the API server; give the server's NB listener (http://HOST:9697)"
            ));
        }
        let api = api.map(|a| Api::new(a, token)).transpose()?;
        let store = nbdb::connect(url)
            .await
            .map_err(|e| format!("NB store {}: {e}", nbdb::url::redacted(url)))?;
        Ok(Nb {
            source: Arc::new(store.clone()),
            writes: Writes::Store(store, api),
            pubsub: None,
        })
    }

    /// The change stream from a publish-subscribe fan-out (`zmq://HOST:PORT`,
    /// `redis://HOST:PORT`; see `nbdb::pubsub`), every loss filled from this `Nb`'s
    /// source; snapshots and look-ups stay with the source. Subscribes now, in the
    /// background (call inside a tokio runtime).
    pub fn with_pubsub(mut self, url: &str) -> Result<Nb, String> {
        let ep = nbdb::pubsub::Endpoint::parse(url)?;
        self.pubsub = Some(Subscription::start(&ep));
        Ok(self)
    }

    /// Where this host's heartbeats go, for a task of their own.
    pub fn beats(&self) -> Beats {
        match &self.writes {
            Writes::Server(api) => Beats(BeatsTo::Server(api.clone())),
            Writes::Store(store, _) => Beats(BeatsTo::Store(store.clone())),
        }
    }

    /// Everything of `tables` in `topics` (plus the topic-less objects), at one revision.
    pub async fn snapshot(
        &self,
        tables: &BTreeSet<String>,
        topics: &BTreeSet<String>,
    ) -> Result<Snapshot, StoreError> {
        self.source.snapshot(&Filter::new(tables, topics)).await
    }

    /// The changes after `after` of `tables` in `topics` (plus the topic-less ones).
    pub fn watch(
        &self,
        after: Revision,
        tables: &BTreeSet<String>,
        topics: &BTreeSet<String>,
    ) -> NbWatch {
        let filter = Filter::new(tables, topics);
        match &self.pubsub {
            Some(sub) => Changes::Pubsub(Box::new(PubsubWatch::new(
                sub,
                self.source.clone(),
                after,
                filter,
            ))),
            None => self.source.watch(after, filter),
        }
    }

    /// One object, wherever its topic.
    pub async fn get(&self, table: &str, id: &str) -> Result<Option<Record>, StoreError> {
        self.source.get(table, id).await
    }

    /// Many objects at once, in order.
    pub async fn get_many(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<Option<Record>>, StoreError> {
        self.source.get_many(keys).await
    }

    /// Answers what the core asked to read ([`engine::Read`]), as the event that hands it
    /// back: the topic of each object looked up, or a snapshot of `tables` in its topics.
    pub async fn answer(&self, tables: &BTreeSet<String>, read: engine::Read) -> engine::Event {
        use crate::engine::{Event, Read};
        match read {
            Read::Lookups(objects) => {
                let keys: Vec<(String, String)> = objects
                    .iter()
                    .map(|t| (t.table.name().to_string(), t.id.clone()))
                    .collect();
                let answers: Vec<Result<Option<String>, String>> = match self.get_many(&keys).await
                {
                    Ok(records) => records
                        .into_iter()
                        .map(|r| Ok(r.and_then(|r| r.topic)))
                        .collect(),
                    Err(e) => vec![Err(format!("NB look-up: {e}")); objects.len()],
                };
                Event::LookedUp(objects.into_iter().zip(answers).collect())
            }
            Read::Snapshot(topics) => Event::Snapshot(
                self.snapshot(tables, &topics)
                    .await
                    .map_err(|e| format!("NB snapshot: {e}")),
            ),
        }
    }

    /// Writes the statuses the core reported ([`engine::Effects::reports`]) for `host`, as
    /// the event that hands the store's answers back.
    pub async fn report(&self, host: &str, reports: Vec<(String, PortStatus)>) -> engine::Event {
        let answers = self.bind_many(host, &reports).await;
        engine::Event::Reported(
            reports
                .into_iter()
                .zip(answers)
                .map(|((id, status), r)| (id, status, r))
                .collect(),
        )
    }

    /// The store's NB model version (`model::version`), or why this build cannot follow it:
    /// more than one version step away either way.
    pub async fn model_version(&self) -> Result<u32, String> {
        use model::version::{KEY, TABLE};
        let marker = self
            .source
            .get(TABLE, KEY)
            .await
            .map_err(|e| format!("reading the NB model version: {e}"))?;
        let version = model::version::stored(marker.as_ref().map(|r| r.value.as_slice()))?;
        model::version::check(version)?;
        Ok(version)
    }

    /// Registers this host (its tunnel endpoint); waits for a server still starting.
    pub async fn register(&self, chassis: &Chassis) -> Result<(), String> {
        let Writes::Server(Api { base, http }) = &self.writes else {
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
        match &self.writes {
            Writes::Server(Api { base, http }) => {
                let url = format!("{base}/nb/v1/chassis/{}", chassis.id);
                Ok(send_json(http.put(&url), &chassis_body(chassis)).await?)
            }
            Writes::Store(store, _) => {
                let value = serde_json::to_vec(chassis).map_err(|e| e.to_string())?;
                store
                    .commit(vec![Op::put("chassis", &chassis.id, value, Expect::Any)])
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("registering chassis: {e}"))
            }
        }
    }

    /// Reports many ports bound to `host`, each with its status, in as few writes as the
    /// backend allows (one request to a server; a transaction per hundred ports to a
    /// store); the result of each, in order.
    pub async fn bind_many(
        &self,
        host: &str,
        ports: &[(String, PortStatus)],
    ) -> Vec<Result<(), String>> {
        match &self.writes {
            Writes::Server(Api { base, http }) => {
                let body = serde_json::json!({"bindings": ports
                    .iter()
                    .map(|(id, st)| serde_json::json!({"port": id, "host": host, "status": st.as_str()}))
                    .collect::<Vec<_>>()});
                match post_bindings(http, &format!("{base}/nb/v1/bindings"), &body).await {
                    Ok(results) if results.len() == ports.len() => results,
                    Ok(_) => vec![Err("the server answered for other ports".into()); ports.len()],
                    Err(e) => vec![Err(e); ports.len()],
                }
            }
            Writes::Store(store, _) => {
                let mut out = Vec::with_capacity(ports.len());
                for chunk in ports.chunks(BINDINGS_PER_TXN) {
                    out.extend(bind_in_store(store, host, chunk).await);
                }
                out
            }
        }
    }

    /// Makes this host's records of `network` say it listens to exactly `groups`
    /// (IGMP/MLD snooping): `PUT /nb/v1/mcast/{network}` to a server, or the same
    /// records put and deleted in one transaction in a store.
    pub async fn set_mcast(
        &self,
        network: &str,
        chassis: &str,
        groups: &BTreeSet<std::net::IpAddr>,
    ) -> Result<(), String> {
        match &self.writes {
            Writes::Server(Api { base, http }) => {
                let url = format!("{base}/nb/v1/mcast/{network}");
                let body = serde_json::json!({"host": chassis, "groups": groups});
                Ok(send_json(http.put(&url), &body).await?)
            }
            Writes::Store(store, _) => {
                let table = model::Table::McastGroup.name();
                let existing: Vec<String> = store
                    .list(table, &model::mcast::prefix(network, chassis))
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                let (puts, deletes) = model::mcast::plan(network, chassis, groups, &existing);
                let mut ops = Vec::new();
                for g in &puts {
                    let value = serde_json::to_vec(g).map_err(|e| e.to_string())?;
                    ops.push(Op::put(table, &g.id, value, Expect::Any).with_topic(Some(network)));
                }
                ops.extend(deletes.iter().map(|id| Op::delete(table, id, Expect::Any)));
                if ops.is_empty() {
                    return Ok(());
                }
                store
                    .commit(ops)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Writes a member's health as this host's check concluded it: through the server
    /// (which checks that this host is the member's checker), or straight into the
    /// balancer's object with a compare-and-swap.
    pub async fn set_member_health(
        &self,
        chassis: &str,
        h: &crate::apps::lb::health::MemberHealth,
    ) -> Result<(), String> {
        let status = if h.up {
            model::lb::operating::ONLINE
        } else {
            model::lb::operating::ERROR
        };
        match &self.writes {
            Writes::Server(Api { base, http }) => {
                let url = format!("{base}/nb/v1/lb-health");
                let body = serde_json::json!({
                    "host": chassis,
                    "loadbalancer": h.loadbalancer,
                    "member": h.member,
                    "operating_status": status,
                });
                Ok(send_json(http.put(&url), &body).await?)
            }
            Writes::Store(store, _) => {
                let table = model::Table::LoadBalancer.name();
                for _ in 0..20 {
                    let Some(r) = store
                        .get(table, &h.loadbalancer)
                        .await
                        .map_err(|e| e.to_string())?
                    else {
                        return Ok(());
                    };
                    let mut lb: model::LoadBalancer =
                        serde_json::from_slice(&r.value).map_err(|e| e.to_string())?;
                    if lb.set_member_health(&h.member, h.up) != Some(true) {
                        return Ok(());
                    }
                    let value = serde_json::to_vec(&lb).map_err(|e| e.to_string())?;
                    let op = Op::put(table, &lb.meta.id, value, Expect::Revision(r.revision))
                        .with_topic(Some(&lb.vip_network_id));
                    match store.commit(vec![op]).await {
                        Err(StoreError::Conflict { .. }) => continue,
                        other => return other.map(|_| ()).map_err(|e| e.to_string()),
                    }
                }
                Err(format!("member {}: lost the race 20 times", h.member))
            }
        }
    }

    /// Makes sure this host has its SNAT address port on external network `network`: the
    /// server's NB listener makes it (`PUT /nb/v1/snat/{network}`: an ordinary port through
    /// its IPAM and transaction, device owner `network:chassis_snat`, `device_id` = the
    /// chassis, bound here) or answers with the one it has, so a restarted controller keeps
    /// its address. Only this host's token is needed, no Neutron credentials.
    pub async fn ensure_snat_port(&self, network: &str, chassis: &str) -> Result<(), String> {
        let Api { base, http } = match &self.writes {
            Writes::Server(api) | Writes::Store(_, Some(api)) => api,
            Writes::Store(_, None) => {
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

/// Where this host's heartbeats go: the server's NB listener (which stamps them with its
/// clock and gives them its `agent_down_time` to live), or the store itself.
#[derive(Clone)]
pub struct Beats(BeatsTo);

#[derive(Clone)]
enum BeatsTo {
    Server(Api),
    Store(Arc<dyn Store>),
}

impl Beats {
    /// Heartbeats written to `store` directly.
    pub fn to_store(store: Arc<dyn Store>) -> Beats {
        Beats(BeatsTo::Store(store))
    }

    /// Writes one heartbeat; `ttl` is its time to live when written to a store directly.
    pub async fn send(&self, report: &model::agent::Report, ttl: Duration) -> Result<(), String> {
        match &self.0 {
            BeatsTo::Server(Api { base, http }) => {
                let url = format!("{base}/nb/v1/agents/{}", report.host);
                let body = serde_json::to_value(report).map_err(|e| e.to_string())?;
                Ok(send_json(http.put(&url), &body).await?)
            }
            BeatsTo::Store(store) => {
                // As the server writes it (`neutron_api::agents::beat::write`): the id and
                // creation time carried over, this host's clock, the store's lease.
                let key = model::agent::key(&report.binary, &report.host);
                let previous = store
                    .get_lease(&key)
                    .await
                    .map_err(|e| e.to_string())?
                    .and_then(|l| serde_json::from_slice(&l.value).ok());
                let hb =
                    model::agent::Heartbeat::next(previous, report.clone(), &model::time::now());
                let value = serde_json::to_vec(&hb).map_err(|e| e.to_string())?;
                store
                    .put_lease(&key, value, Some(ttl))
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// Bindings written to a store in one transaction at most (etcd takes 127 operations).
const BINDINGS_PER_TXN: usize = 100;

/// Sends many bindings to the server; the result of each.
async fn post_bindings(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<Vec<Result<(), String>>, String> {
    let r = http
        .put(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let text = r.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {text}"));
    }
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(v["results"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| match r["ok"].as_bool() {
                    Some(true) => Ok(()),
                    _ => Err(r["error"].as_str().unwrap_or("refused").to_string()),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Binds ports in one compare-and-set transaction on their revisions; if another write
/// got in between, each port is bound on its own.
async fn bind_in_store(
    store: &Arc<dyn Store>,
    host: &str,
    ports: &[(String, PortStatus)],
) -> Vec<Result<(), String>> {
    let mut ops = Vec::with_capacity(ports.len() + 1);
    let mut out: Vec<Result<(), String>> = Vec::with_capacity(ports.len());
    let mut events = Vec::new();
    for (id, status) in ports {
        match store.get("port", id).await {
            Ok(Some(r)) => match serde_json::from_slice::<Port>(&r.value) {
                // Old news (unbound or moved since): nothing to write.
                Ok(p) if !p.report_applies(host, *status) => out.push(Ok(())),
                Ok(mut p) => {
                    events.extend(p.bind(host, *status));
                    match serde_json::to_vec(&p) {
                        Ok(value) => {
                            ops.push(
                                Op::put("port", id, value, Expect::Revision(r.revision))
                                    .with_topic(r.topic.as_deref()),
                            );
                            out.push(Ok(()));
                        }
                        Err(e) => out.push(Err(e.to_string())),
                    }
                }
                Err(e) => out.push(Err(e.to_string())),
            },
            Ok(None) => out.push(Err(format!("port {id} is gone"))),
            Err(e) => out.push(Err(e.to_string())),
        }
    }
    if ops.is_empty() {
        return out;
    }
    ops.extend(nova_outbox(events));
    match store.commit(ops).await {
        Ok(_) => out,
        Err(StoreError::Conflict { .. }) => {
            // Someone wrote one of them meanwhile: one by one, each with its own retries.
            let mut again = Vec::with_capacity(ports.len());
            for ((id, status), r) in ports.iter().zip(out) {
                again.push(match r {
                    Ok(()) => bind_one(store, id, host, *status).await,
                    Err(e) => Err(e),
                });
            }
            again
        }
        Err(e) => vec![Err(e.to_string()); ports.len()],
    }
}

/// Binds one port with compare-and-set on its revision: an API update in between wins, and
/// the binding is written again on top of it.
async fn bind_one(
    store: &Arc<dyn Store>,
    id: &str,
    host: &str,
    status: PortStatus,
) -> Result<(), String> {
    for _ in 0..10 {
        let Some(r) = store.get("port", id).await.map_err(|e| e.to_string())? else {
            return Err(format!("port {id} is gone"));
        };
        let mut p: Port = serde_json::from_slice(&r.value).map_err(|e| e.to_string())?;
        if !p.report_applies(host, status) {
            return Ok(());
        }
        let event = p.bind(host, status);
        let value = serde_json::to_vec(&p).map_err(|e| e.to_string())?;
        let op =
            Op::put("port", id, value, Expect::Revision(r.revision)).with_topic(r.topic.as_deref());
        let ops = std::iter::once(op)
            .chain(nova_outbox(event.into_iter().collect()))
            .collect();
        match store.commit(ops).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("port {id} keeps changing"))
}

/// The outbox record of the Nova events a binding transaction sends (see `model::nova`).
fn nova_outbox(events: Vec<model::nova::Event>) -> Option<Op> {
    let (key, value) = model::nova::Outbox::record(events)?;
    Some(Op::put(model::nova::OUTBOX, &key, value, Expect::Absent))
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
