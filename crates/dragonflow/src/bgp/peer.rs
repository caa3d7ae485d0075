//! One BGP session over TCP: the thin runtime around `bgp::Session` (the FSM) and
//! `bgp::AdjRibOut`. It connects, feeds the FSM bytes and ticks, and sends the routes it
//! is handed through a watch channel: a change is flushed at once as few UPDATEs.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bgp::fsm::{Config, Input, Output, Session};
use bgp::rib::{AdjRibOut, Speaker};
use bgp::wire::Message;
use bgp::{Prefix, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// UPDATE messages written to peers by this process, every session together: reported
/// with its heartbeat (the agents API's `updates_sent`).
pub static UPDATES_SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The routes of a speaker: prefix → next hop.
pub type Routes = Arc<BTreeMap<Prefix, IpAddr>>;

/// What a session is run with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    pub fsm: Config,
    pub peer: SocketAddr,
    /// The address to connect from (the peer's neighbour address for this speaker);
    /// None: the one the kernel picks towards the peer.
    pub local: Option<IpAddr>,
    /// The TCP MD5 key of a peer with `auth_type` md5.
    pub md5: Option<Key>,
}

/// A peer's password: compared, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub String);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(***)")
    }
}

/// A TCP connection to `peer` from `local` (when given), its segments signed with `md5`
/// when given.
async fn connect(
    peer: SocketAddr,
    local: Option<IpAddr>,
    md5: Option<Key>,
) -> std::io::Result<TcpStream> {
    let socket = if peer.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    if let Some(Key(key)) = &md5 {
        super::md5::sign(&socket, peer, key.as_bytes())?;
    }
    socket.connect(peer).await
}

type Connecting = Pin<Box<dyn Future<Output = std::io::Result<TcpStream>> + Send>>;

/// Runs the session until the task is aborted.
pub async fn run(cfg: PeerConfig, mut routes: watch::Receiver<Routes>) {
    let label = cfg.peer.to_string();
    let local_as = cfg.fsm.local_as;
    let mut fsm = Session::new(cfg.fsm.clone());
    let mut rib = AdjRibOut::new();
    rib.replace((**routes.borrow_and_update()).clone());
    let mut stream: Option<TcpStream> = None;
    let mut connecting: Option<Connecting> = None;
    let mut buf = vec![0u8; 65536];
    let mut pending = fsm.handle(std::time::Instant::now(), Input::Start);
    loop {
        // Perform what the FSM asked, which may feed it again (a failed write), and send
        // what the Adj-RIB-Out owes (new routes arrive with no FSM output).
        while !pending.is_empty() || (fsm.state() == State::Established && rib.pending()) {
            let now = std::time::Instant::now();
            let mut next = Vec::new();
            for o in pending.drain(..) {
                match o {
                    Output::Connect => {
                        stream = None;
                        let (peer, local, md5) = (cfg.peer, cfg.local, cfg.md5.clone());
                        let limit = cfg.fsm.connect_retry;
                        connecting = Some(Box::pin(async move {
                            tokio::time::timeout(limit, connect(peer, local, md5))
                                .await
                                .unwrap_or_else(|_| {
                                    Err(std::io::Error::new(
                                        std::io::ErrorKind::TimedOut,
                                        "connect timed out",
                                    ))
                                })
                        }));
                    }
                    Output::Send(bytes) => {
                        if let Some(s) = stream.as_mut()
                            && let Err(e) = s.write_all(&bytes).await
                        {
                            tracing::info!(peer = %label, error = %e, "BGP write failed");
                            stream = None;
                            next.extend(fsm.handle(now, Input::Closed));
                        }
                    }
                    Output::Close => {
                        if let Some(mut s) = stream.take() {
                            let _ = s.shutdown().await;
                        }
                    }
                    Output::Established(n) => {
                        tracing::info!(peer = %label, hold = n.hold_time, families = ?n.families, "BGP session established");
                        rib.reset();
                    }
                    Output::Down(why) => {
                        tracing::warn!(peer = %label, %why, "BGP session down");
                        rib.reset();
                    }
                    Output::RouteRefresh => rib.reset(),
                }
            }
            if fsm.state() == State::Established && rib.pending() {
                next.extend(flush(&mut fsm, &mut rib, &mut stream, local_as, &label).await);
            }
            pending = next;
        }
        let deadline = fsm
            .deadline()
            .map(|d| {
                let now = std::time::Instant::now();
                Instant::now() + d.saturating_duration_since(now)
            })
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            res = async {
                match connecting.as_mut() {
                    Some(c) => c.await,
                    None => std::future::pending().await,
                }
            } => {
                connecting = None;
                let now = std::time::Instant::now();
                match res {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        stream = Some(s);
                        pending = fsm.handle(now, Input::Connected);
                    }
                    Err(e) => {
                        tracing::debug!(peer = %label, error = %e, "BGP connect failed");
                        pending = fsm.handle(now, Input::ConnectFailed);
                    }
                }
            }
            n = async {
                match stream.as_mut() {
                    Some(s) => s.read(&mut buf).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = std::time::Instant::now();
                match n {
                    Ok(0) | Err(_) => {
                        stream = None;
                        pending = fsm.handle(now, Input::Closed);
                    }
                    Ok(n) => pending = fsm.handle(now, Input::Bytes(&buf[..n])),
                }
            }
            changed = routes.changed() => {
                if changed.is_err() {
                    // The speaker or peer is gone: say goodbye.
                    pending = fsm.handle(std::time::Instant::now(), Input::Stop);
                    for o in pending.drain(..) {
                        if let (Output::Send(b), Some(s)) = (o, stream.as_mut()) {
                            let _ = s.write_all(&b).await;
                        }
                    }
                    return;
                }
                rib.replace((**routes.borrow_and_update()).clone());
            }
            _ = tokio::time::sleep_until(deadline) => {
                pending = fsm.handle(std::time::Instant::now(), Input::Tick);
            }
        }
    }
}

/// Sends what the Adj-RIB-Out owes the peer; a failed write is the FSM's `Closed`.
async fn flush(
    fsm: &mut Session,
    rib: &mut AdjRibOut,
    stream: &mut Option<TcpStream>,
    local_as: u32,
    label: &str,
) -> Vec<Output> {
    let Some(n) = fsm.negotiated().cloned() else {
        return Vec::new();
    };
    let speaker = Speaker {
        local_as,
        internal: n.internal,
    };
    let codec = fsm.codec();
    let updates = rib.flush(speaker, codec, &n.families);
    let mut bytes = Vec::new();
    for u in &updates {
        bytes.extend(Message::Update(u.clone()).encode(codec));
    }
    if bytes.is_empty() {
        return Vec::new();
    }
    tracing::debug!(peer = %label, updates = updates.len(), routes = rib.sent().len(), "BGP UPDATEs");
    if let Some(s) = stream.as_mut() {
        if s.write_all(&bytes).await.is_err() {
            *stream = None;
            return fsm.handle(std::time::Instant::now(), Input::Closed);
        }
        UPDATES_SENT.fetch_add(updates.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
    Vec::new()
}
