//! The NB store over HTTP, for controllers and `dragonflow db` when the store is embedded
//! in the server (nothing else can open its file): the current revision, a snapshot, and a
//! streaming watch from a revision as newline-delimited JSON. Served on its own listener,
//! every request authenticated by [`crate::nb_auth`].
//!
//! `GET /nb/v1/revision`, `GET /nb/v1/snapshot[?topics=..][&tables=..]`,
//! `GET /nb/v1/objects/TABLE/ID`,
//! `GET /nb/v1/watch?after=R[&topics=a,b][&tables=port,network]`; and the writes a
//! controller makes: `PUT /nb/v1/chassis/{name}`, `PUT /nb/v1/ports/{id}/binding` and
//! `PUT /nb/v1/snat/{network}`. Any valid token reads; a host writes only its own chassis,
//! the bindings of ports it takes or holds, and its own SNAT port; the admin writes
//! anything; the reader nothing. A watch whose `after` was compacted away gets 410 and
//! takes a new snapshot. A blank line is sent every 15 s of silence so dead connections
//! are noticed, and `{"progress": R}` after half a second without a change to send when
//! the watch has read past changes its filter left out (see `nbdb::remote`).
//!
//! A watch is fed with backpressure: its changes are read from the store's log only as
//! fast as the connection takes them (one line waits at a time), and a watcher that takes
//! nothing for the stall timeout (`--nb-stall-timeout`, [`DEFAULT_STALL_TIMEOUT`]) is
//! disconnected with a reset, its queued bytes dropped; it resumes from its last revision
//! (or takes a new snapshot when that was compacted). Cutting the connection needs the
//! listener's help: [`serve`] wraps each accepted socket so a watch can cut its own.

use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::nb_auth::Principal;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::FutureExt as _;
use nbdb::source::wire;
use nbdb::{Filter, StoreError, Watch};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

const HEARTBEAT: Duration = Duration::from_secs(15);
/// After this long without a change to send, a watch whose filter left changes out says
/// how far it has read (`{"progress": R}`): a host's realized revision goes on past
/// other projects' changes.
const PROGRESS: Duration = Duration::from_millis(500);
/// A chunk of changes grows to about this many bytes at most.
const CHUNK: usize = 64 * 1024;

/// The filter (and `after`) of a request's query string; a bad one is a 400.
fn params(raw: Option<&str>, with_after: bool) -> ApiResult<(Filter, Option<u64>)> {
    Filter::from_query(raw.unwrap_or(""), with_after)
        .map_err(|e| ApiError::bad_request("HTTPBadRequest", e))
}

pub async fn revision(State(api): State<Arc<Api>>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"revision": api.db.store.revision().await?})))
}

/// A snapshot's answer, serialised straight from the stored bytes.
#[derive(serde::Serialize)]
struct SnapshotBody<'a> {
    revision: u64,
    records: Vec<wire::RawRecord<'a>>,
}

pub async fn snapshot(State(api): State<Arc<Api>>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let (filter, _) = params(q.as_deref(), false)?;
    // The store reads only the tables and topics asked for (see `Store::snapshot_filtered`).
    let snap = api.db.store.snapshot_filtered(&filter).await?;
    let body = SnapshotBody {
        revision: snap.revision,
        records: snap.records.iter().filter_map(wire::raw_record).collect(),
    };
    Ok(Json(body).into_response())
}

/// `GET /nb/v1/objects/{table}/{id}`: one object, as a snapshot record (a host looks up a
/// port plugged on it before it follows that port's project).
pub async fn object(
    State(api): State<Arc<Api>>,
    Path((table, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let missing = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "ObjectNotFound",
            format!("no {table} {id}"),
        )
    };
    let r = api.db.store.get(&table, &id).await?.ok_or_else(missing)?;
    let raw = wire::raw_record(&r).ok_or_else(missing)?;
    Ok(Json(raw).into_response())
}

/// Objects one look-up may ask for.
const MAX_LOOKUPS: usize = 20_000;

/// `POST /nb/v1/lookup` `{"objects": [{"table": .., "id": ..}, ..]}`: many objects in one
/// request, as snapshot records in the order asked, `null` for those that do not exist (a
/// host that plugged hundreds of ports at once looks them all up together).
pub async fn lookup(
    State(api): State<Arc<Api>>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<Response> {
    let objects = body
        .get("objects")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("HTTPBadRequest", "objects must be a list"))?;
    if objects.len() > MAX_LOOKUPS {
        return Err(ApiError::bad_request(
            "HTTPBadRequest",
            format!("at most {MAX_LOOKUPS} objects in one look-up"),
        ));
    }
    // Each object is read by its key, and its stored JSON copied through unparsed.
    let mut found = Vec::with_capacity(objects.len());
    for o in objects {
        let field = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let (Some(table), Some(id)) = (field("table"), field("id")) else {
            return Err(ApiError::bad_request(
                "HTTPBadRequest",
                "each object names its table and id",
            ));
        };
        found.push(api.db.store.get(table, id).await?);
    }
    #[derive(serde::Serialize)]
    struct LookupBody<'a> {
        records: Vec<Option<wire::RawRecord<'a>>>,
    }
    let records = found
        .iter()
        .map(|r| r.as_ref().and_then(wire::raw_record))
        .collect();
    Ok(Json(LookupBody { records }).into_response())
}

pub async fn watch(
    State(api): State<Arc<Api>>,
    who: Option<Extension<Principal>>,
    conn: Option<Extension<ConnectInfo<Conn>>>,
    stall: Option<Extension<StallTimeout>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let (filter, after) = params(q.as_deref(), true)?;
    let after = after
        .ok_or_else(|| ApiError::bad_request("HTTPBadRequest", "after=REVISION is required"))?;
    // Fail now, with a status, if the log no longer reaches back that far.
    match api.db.store.changes_since(after, 1).await {
        Err(StoreError::Compacted { requested, oldest }) => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "Compacted",
                format!(
                    "revision {requested} was compacted (oldest kept: {oldest}); take a new snapshot"
                ),
            ));
        }
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    // One line waits for the connection at a time: the watch reads the log no faster
    // than the watcher takes it, so nothing piles up here for a slow one.
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let feed = Feed {
        watch: Watch::filtered(api.db.store.clone(), after, filter),
        api,
        tx,
        stall: stall.map_or(DEFAULT_STALL_TIMEOUT, |s| s.0.0),
        who: who.map_or_else(|| "unknown".into(), |w| w.0.to_string()),
        conn: conn.map(|c| c.0.0),
    };
    tokio::spawn(feed.run(after));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        let line = rx.recv().await?;
        Some((Ok::<Bytes, std::io::Error>(line), rx))
    });
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(body))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// How long a watcher may take nothing before it is disconnected.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The stall timeout of a listener's watches (a request extension; see [`serve`]).
#[derive(Clone, Copy, Debug)]
pub struct StallTimeout(pub Duration);

/// One watch's writer: reads the log, hands lines to the connection, and cuts a
/// connection that takes nothing for `stall`.
struct Feed {
    watch: Watch,
    api: Arc<Api>,
    tx: mpsc::Sender<Bytes>,
    stall: Duration,
    who: String,
    conn: Option<Conn>,
}

impl Feed {
    async fn run(mut self, after: u64) {
        // The position last told, the revision the connection last took, when a line
        // was last sent.
        let (mut told, mut taken, mut sent) = (after, after, tokio::time::Instant::now());
        loop {
            let next = tokio::select! {
                _ = self.api.stopped() => return,
                // The watcher went away (its body was dropped).
                _ = self.tx.closed() => return,
                n = tokio::time::timeout(PROGRESS, self.watch.next()) => n,
            };
            let now = tokio::time::Instant::now();
            let (line, at) = match next {
                Err(_) if self.watch.position() > told => {
                    told = self.watch.position();
                    let mut line = wire::progress_line(told).to_string().into_bytes();
                    line.push(b'\n');
                    (Bytes::from(line), told)
                }
                Err(_) if now.duration_since(sent) >= HEARTBEAT => {
                    (Bytes::from_static(b"\n"), taken)
                }
                Err(_) => continue,
                Ok(Err(e)) => {
                    // The stream ends; the client resumes from its last revision.
                    tracing::warn!(error = %e, principal = %self.who, "watch stream ended");
                    return;
                }
                Ok(Ok(c)) => {
                    // The changes the watch already holds go out with it, as one chunk:
                    // one write for a burst, and the host takes them as one batch.
                    let mut chunk = Vec::new();
                    let mut at = c.revision;
                    let mut next = Some(c);
                    while let Some(c) = next.take() {
                        at = c.revision;
                        if let Some(v) = wire::change(&c) {
                            chunk.extend_from_slice(v.to_string().as_bytes());
                            chunk.push(b'\n');
                        }
                        if chunk.len() >= CHUNK {
                            break;
                        }
                        next = match self.watch.next().now_or_never() {
                            Some(Ok(c)) => Some(c),
                            // An error shows again on the next read, after this chunk.
                            Some(Err(_)) | None => None,
                        };
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    (Bytes::from(chunk), at)
                }
            };
            let sending = tokio::select! {
                _ = self.api.stopped() => return,
                r = self.tx.send_timeout(line, self.stall) => r,
            };
            match sending {
                Ok(()) => (taken, sent) = (at, now),
                Err(mpsc::error::SendTimeoutError::Closed(_)) => return,
                Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                    let peer = self.conn.as_ref().map(|c| c.peer.to_string());
                    tracing::warn!(
                        principal = %self.who,
                        peer = peer.as_deref().unwrap_or("-"),
                        revision = taken,
                        stall_timeout_s = self.stall.as_secs_f64(),
                        "NB watcher took nothing for the stall timeout: disconnected (it resumes after its revision)"
                    );
                    if let Some(c) = &self.conn {
                        c.cut.cut();
                    }
                    return;
                }
            }
        }
    }
}

/// Serves `app` (the NB router) on `listener` until `stop`: every connection can be cut
/// by its own watch ([`Conn`]), and watches stall out after `stall`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stall: Duration,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(Extension(StallTimeout(stall)));
    axum::serve(
        NbListener(listener),
        app.into_make_service_with_connect_info::<Conn>(),
    )
    .with_graceful_shutdown(stop)
    .await
}

/// The NB listener: a TCP listener whose connections can be cut from inside.
pub struct NbListener(pub tokio::net::TcpListener);

/// A connection as its requests see it: the peer, and the switch that cuts it.
#[derive(Clone, Debug)]
pub struct Conn {
    pub peer: SocketAddr,
    cut: Arc<Cut>,
}

impl axum::serve::Listener for NbListener {
    type Io = CuttableIo;
    type Addr = Conn;

    async fn accept(&mut self) -> (CuttableIo, Conn) {
        let (io, peer) = axum::serve::Listener::accept(&mut self.0).await;
        let cut = Arc::new(Cut::default());
        (
            CuttableIo {
                io,
                cut: cut.clone(),
            },
            Conn { peer, cut },
        )
    }

    fn local_addr(&self) -> std::io::Result<Conn> {
        Ok(Conn {
            peer: self.0.local_addr()?,
            cut: Arc::default(),
        })
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, NbListener>> for Conn {
    fn connect_info(stream: axum::serve::IncomingStream<'_, NbListener>) -> Conn {
        stream.remote_addr().clone()
    }
}

/// Set once a connection is to be cut; wakes the connection's task so it sees it.
#[derive(Debug, Default)]
struct Cut {
    cut: AtomicBool,
    waker: std::sync::Mutex<Option<Waker>>,
}

impl Cut {
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().ok().and_then(|mut w| w.take()) {
            w.wake();
        }
    }

    /// Whether the connection is cut; otherwise remembers who to wake when it is.
    fn is_cut(&self, cx: &Context<'_>) -> bool {
        if let Ok(mut w) = self.waker.lock() {
            match w.as_mut() {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *w = Some(cx.waker().clone()),
            }
        }
        self.cut.load(Ordering::SeqCst)
    }
}

/// A TCP connection that fails every read and write once cut: hyper drops it, and with
/// a zero linger the kernel resets it at once rather than keep its queued bytes (up to
/// the socket's send buffer, 4 MB by default) for a peer that does not read.
pub struct CuttableIo {
    io: tokio::net::TcpStream,
    cut: Arc<Cut>,
}

impl CuttableIo {
    fn check(&self, cx: &Context<'_>) -> std::io::Result<()> {
        if !self.cut.is_cut(cx) {
            return Ok(());
        }
        let _ = self.io.set_zero_linger();
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "NB watcher stalled",
        ))
    }
}

impl AsyncRead for CuttableIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        me.check(cx)?;
        Pin::new(&mut me.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        me.check(cx)?;
        Pin::new(&mut me.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        me.check(cx)?;
        Pin::new(&mut me.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        me.check(cx)?;
        Pin::new(&mut me.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// 403 for a write the caller's token does not allow.
fn refused(p: &Principal, what: impl std::fmt::Display) -> ApiError {
    tracing::warn!(principal = %p, "NB write refused: {what}");
    ApiError::forbidden(format!("{p} may not {what}"))
}

/// `PUT /nb/v1/chassis/{name}` `{"ip": .., "tunnel_types": [..]}`: a controller registers
/// its host (topic-less, so every host learns every tunnel endpoint). Every host tunnels
/// to the address written here, so only that host (or the admin) may write it.
pub async fn put_chassis(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<Json<Value>> {
    match &who {
        Principal::Admin => {}
        Principal::Host(me) if *me == name => {}
        _ => return Err(refused(&who, format_args!("write chassis {name}"))),
    }
    let ip = body
        .get("ip")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<std::net::IpAddr>().ok())
        .ok_or_else(|| ApiError::bad_request("HTTPBadRequest", "ip must be an IP address"))?;
    let tunnel_types = body
        .get("tunnel_types")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|t| {
                    t.as_str()
                        .and_then(model::NetworkType::parse)
                        .filter(|t| t.is_tunnel())
                })
                .collect::<Option<Vec<_>>>()
        })
        .unwrap_or(Some(vec![]))
        .ok_or_else(|| {
            ApiError::bad_request(
                "HTTPBadRequest",
                "tunnel_types must be geneve, vxlan or gre",
            )
        })?;
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::bad_request("HTTPBadRequest", "bad chassis name"));
    }
    let chassis = model::Chassis {
        id: name.clone(),
        ip,
        tunnel_types,
    };
    let value = serde_json::to_vec(&chassis).map_err(|e| ApiError::internal(e.to_string()))?;
    api.db
        .store
        .commit(vec![nbdb::Op::put(
            model::Table::Chassis.name(),
            &name,
            value,
            nbdb::Expect::Any,
        )])
        .await?;
    tracing::info!(chassis = %name, %ip, "chassis registered");
    Ok(Json(json!({"chassis": chassis})))
}

/// Whether `who` may set the binding of a port bound to `current` to `wanted` (`None`:
/// only its status). A host binds ports to itself (a VM plugged there, moved there), and
/// changes or clears the binding of a port only while that port is its own.
fn may_bind(who: &Principal, current: &str, wanted: Option<&str>) -> bool {
    match who {
        Principal::Admin => true,
        Principal::Reader => false,
        Principal::Host(me) => match wanted {
            Some(h) if h == me => true,
            Some("") | None => current == me,
            Some(_) => false,
        },
    }
}

/// `PUT /nb/v1/ports/{id}/binding` `{"host": .., "status": "ACTIVE"|"DOWN"}`: the
/// controller that plugged a port binds it and reports its state (ACTIVE once its flows
/// are confirmed installed).
pub async fn put_binding(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<Json<Value>> {
    if who == Principal::Reader {
        return Err(refused(&who, format_args!("bind port {id}")));
    }
    let host = body.get("host").and_then(Value::as_str).map(str::to_string);
    let status = status_of(body.get("status"))?;
    let port = crate::db::retrying(|| async {
        let (mut p, rev) = api.db.fetch::<model::Port>(&id).await?;
        if !may_bind(&who, &p.binding_host_id, host.as_deref()) {
            return Err(refused(
                &who,
                format_args!(
                    "bind port {id} (bound to {:?}) to {:?}",
                    p.binding_host_id,
                    host.as_deref().unwrap_or(&p.binding_host_id)
                ),
            ));
        }
        let h = host.clone().unwrap_or_else(|| p.binding_host_id.clone());
        if !p.report_applies(&h, status) {
            return Ok(p);
        }
        let event = p.bind(&h, status);
        let mut txn = crate::db::Txn::new();
        txn.update(&p, rev);
        txn.nova_events(event.into_iter().collect());
        txn.commit(&api.db).await?;
        Ok(p)
    })
    .await?;
    tracing::info!(port = %id, host = %port.binding_host_id, status = port.status.as_str(), "port binding reported");
    Ok(Json(json!({"port": crate::resources::render(&port)})))
}

/// A binding as a request names it: the port, its host (`None`: unchanged), its status.
type Binding = (String, Option<String>, model::PortStatus);

fn status_of(v: Option<&Value>) -> ApiResult<model::PortStatus> {
    match v.and_then(Value::as_str) {
        Some("ACTIVE") => Ok(model::PortStatus::Active),
        Some("DOWN") => Ok(model::PortStatus::Down),
        Some("BUILD") => Ok(model::PortStatus::Build),
        Some("ERROR") => Ok(model::PortStatus::Error),
        _ => Err(ApiError::bad_request(
            "HTTPBadRequest",
            "status must be ACTIVE, DOWN, BUILD or ERROR",
        )),
    }
}

/// Bindings written in one transaction at most: etcd takes at most 127 operations in one.
const BINDINGS_PER_TXN: usize = 100;
/// Bindings one request may carry.
const MAX_BINDINGS: usize = 20_000;

/// `PUT /nb/v1/bindings` `{"bindings": [{"port": .., "host": .., "status": ..}, ..]}`: the
/// bindings and statuses of many ports in one request (a host that plugged hundreds of
/// ports at once reports them together), written a hundred to a transaction. Each port is
/// checked as `put_binding` checks it; the answer says, port by port, what was written
/// (`{"results": [{"port": .., "ok": true} | {"port": .., "error": ..}]}`).
pub async fn put_bindings(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<Json<Value>> {
    if who == Principal::Reader {
        return Err(refused(&who, "bind ports"));
    }
    let items = body
        .get("bindings")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_request("HTTPBadRequest", "bindings must be a list"))?;
    if items.len() > MAX_BINDINGS {
        return Err(ApiError::bad_request(
            "HTTPBadRequest",
            format!("at most {MAX_BINDINGS} bindings in one request"),
        ));
    }
    let mut wanted: Vec<Binding> = Vec::with_capacity(items.len());
    for item in items {
        let port = item
            .get("port")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ApiError::bad_request("HTTPBadRequest", "each binding names a port"))?;
        let host = item.get("host").and_then(Value::as_str).map(str::to_string);
        wanted.push((port.to_string(), host, status_of(item.get("status"))?));
    }
    let mut results = Vec::with_capacity(wanted.len());
    for chunk in wanted.chunks(BINDINGS_PER_TXN) {
        results.extend(bind_chunk(&api, &who, chunk).await?);
    }
    let written = results.iter().filter(|r| r["ok"] == true).count();
    tracing::info!(principal = %who, ports = results.len(), written, "port bindings reported");
    Ok(Json(json!({ "results": results })))
}

/// One transaction's worth of bindings: what may be written is, all at once; a port that
/// is gone or not the caller's to bind is answered as such.
async fn bind_chunk(api: &Api, who: &Principal, chunk: &[Binding]) -> ApiResult<Vec<Value>> {
    crate::db::retrying(|| async {
        let mut txn = crate::db::Txn::new();
        let mut results = Vec::with_capacity(chunk.len());
        let mut events = Vec::new();
        for (id, host, status) in chunk {
            let Some((mut p, rev)) = api.db.get::<model::Port>(id).await? else {
                results.push(json!({"port": id, "error": "no such port"}));
                continue;
            };
            if !may_bind(who, &p.binding_host_id, host.as_deref()) {
                let e = refused(who, format_args!("bind port {id}"));
                results.push(json!({"port": id, "error": e.message}));
                continue;
            }
            let h = host.clone().unwrap_or_else(|| p.binding_host_id.clone());
            if !p.report_applies(&h, *status) {
                results.push(json!({"port": id, "ok": true}));
                continue;
            }
            events.extend(p.bind(&h, *status));
            txn.update(&p, rev);
            results.push(json!({"port": id, "ok": true}));
        }
        txn.nova_events(events);
        if !txn.is_empty() {
            txn.commit(&api.db).await?;
        }
        Ok(results)
    })
    .await
}

/// `PUT /nb/v1/snat/{network}` `{"host": ..}`: the calling host's SNAT address port on
/// external network `network`, made by the ports resource if it has none yet (201) or
/// the one it has (200). A host asks only for itself (`host` may be left out); the admin
/// names the host.
pub async fn put_snat(
    State(api): State<Arc<Api>>,
    Extension(who): Extension<Principal>,
    Path(network): Path<String>,
    crate::body::JsonBody(body): crate::body::JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let asked = body.get("host").and_then(Value::as_str);
    let host = match (&who, asked) {
        (Principal::Host(me), None) => me.clone(),
        (Principal::Host(me), Some(h)) if h == me => me.clone(),
        (Principal::Admin, Some(h)) if !h.is_empty() => h.to_string(),
        (Principal::Admin, _) => {
            return Err(ApiError::bad_request(
                "HTTPBadRequest",
                "host is required with the admin token",
            ));
        }
        _ => {
            return Err(refused(
                &who,
                format_args!("make the SNAT port of {:?}", asked.unwrap_or_default()),
            ));
        }
    };
    let (port, created) =
        crate::resources::ops::ports::ensure_chassis_snat(&api, &network, &host).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"port": crate::resources::render(&port)})),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_binds_to_itself_and_releases_only_its_own() {
        let me = Principal::Host("a".into());
        assert!(may_bind(&me, "", Some("a")), "a new port plugged here");
        assert!(may_bind(&me, "b", Some("a")), "a VM moved here");
        assert!(may_bind(&me, "a", None), "status of its own port");
        assert!(may_bind(&me, "a", Some("")), "releasing its own port");
        assert!(!may_bind(&me, "b", None), "status of another host's port");
        assert!(
            !may_bind(&me, "b", Some("")),
            "releasing another host's port"
        );
        assert!(
            !may_bind(&me, "", Some("b")),
            "binding a port to another host"
        );
        assert!(!may_bind(&Principal::Reader, "", Some("a")));
        assert!(may_bind(&Principal::Admin, "b", Some("c")));
    }
}
