//! The metadata service's I/O: br-int's internal port and its address, the listening
//! socket, HTTP/1 connections (hyper) and, with a Nova, the request to Nova. Every answer
//! comes from the event loop, which owns the view: a request goes there as a
//! [`Question`] and comes back as an [`Answer`] (`apps::metadata::serve`, the pure core).
//!
//! Limits: requests with a body are refused (413), headers past [`MAX_HEADERS`] bytes close
//! the connection, headers must arrive within [`HEADER_TIMEOUT`] and a connection lives at
//! most [`CONNECTION_TIMEOUT`] (so slowloris connections end on their own), and each VM
//! holds at most [`MAX_PER_VM`] connections at once, so one VM cannot take the sockets
//! everyone needs; requests are rate limited per VM in the core.

use crate::apps::metadata::serve::{Answer, Request};
use crate::apps::metadata::{self, PORT, PORT_NAME};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::Ipv4Net;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Connections one VM may hold at once.
pub const MAX_PER_VM: usize = 8;
/// Connections in all.
pub const MAX_CONNECTIONS: usize = 4096;
/// Bytes of request line and headers (hyper's smallest buffer).
pub const MAX_HEADERS: usize = 8192;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Shorter than the learned reply flows' idle timeout, so the server's FIN still finds
/// its way back.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// What Nova may answer, at most.
const MAX_NOVA_BODY: usize = 1 << 20;

/// A request for the event loop to answer.
pub struct Question {
    pub method: String,
    pub target: String,
    pub source: Ipv4Addr,
    pub reply: oneshot::Sender<Answer>,
}

/// Where the service lives on this host.
#[derive(Debug, Clone)]
pub struct Setup {
    pub range: Ipv4Net,
    /// A file naming ovs-vswitchd's network namespace (`/proc/PID/ns/net`), when it is not
    /// the controller's own: its internal port's device is there.
    pub netns: Option<std::path::PathBuf>,
}

/// ovs-vswitchd's namespace, found through its pid file beside br-int's management
/// socket (`OVS_RUNDIR`), when it differs from ours.
pub fn vswitchd_netns(mgmt: &std::path::Path) -> Option<std::path::PathBuf> {
    let pid = std::fs::read_to_string(mgmt.parent()?.join("ovs-vswitchd.pid")).ok()?;
    let theirs = std::path::PathBuf::from(format!("/proc/{}/ns/net", pid.trim()));
    let ino = |p: &std::path::Path| {
        std::fs::metadata(p).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        })
    };
    let t = ino(&theirs)?;
    (Some(t) != ino(std::path::Path::new("/proc/self/ns/net"))).then_some(theirs)
}

/// Runs `ip` (in the calling thread's namespace: a child inherits it).
fn ip(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// In ovs-vswitchd's namespace (a thread of its own moves there): waits for the internal
/// port's device, gives it the MAC and the server's address with no ARP (replies take the
/// learned flows, whatever their Ethernet destination) and no IPv6, and listens there.
fn configure(setup: &Setup) -> Result<std::net::TcpListener, String> {
    if let Some(ns) = &setup.netns {
        let f = std::fs::File::open(ns).map_err(|e| format!("{}: {e}", ns.display()))?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&f),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| format!("entering {}: {e}", ns.display()))?;
    }
    let mut tries = 0;
    while ip(&["link", "show", "dev", PORT_NAME]).is_err() {
        tries += 1;
        if tries > 200 {
            return Err(format!("{PORT_NAME} did not appear"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mac = metadata::MAC.map(|b| format!("{b:02x}")).join(":");
    // No IPv6 link-local address: nothing to answer there, and the userspace datapath
    // scans every address of the namespace on each output it translates.
    ip(&["link", "set", "dev", PORT_NAME, "addrgenmode", "none"])?;
    ip(&[
        "link", "set", "dev", PORT_NAME, "address", &mac, "arp", "off", "up",
    ])?;
    let server = metadata::server(setup.range);
    let cidr = format!("{server}/{}", setup.range.prefix_len());
    ip(&["addr", "replace", &cidr, "dev", PORT_NAME])?;
    let addr = SocketAddr::from((server, PORT));
    let l = std::net::TcpListener::bind(addr).map_err(|e| format!("listen {addr}: {e}"))?;
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(l)
}

/// Makes the internal port on br-int and the listener behind it.
pub async fn start(ovs: &ovsdb::Client, setup: &Setup) -> Result<tokio::net::TcpListener, String> {
    ovs.add_port("br-int", &ovsdb::PortSpec::internal(PORT_NAME))
        .await
        .map_err(|e| format!("{PORT_NAME}: {e}"))?;
    let s = setup.clone();
    let listener = tokio::task::spawn_blocking(move || {
        // A thread of its own: it may leave the process's namespace for good.
        std::thread::spawn(move || configure(&s))
            .join()
            .map_err(|_| "the metadata set-up thread panicked".to_string())?
    })
    .await
    .map_err(|e| e.to_string())??;
    tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        port = PORT_NAME, netns = ?setup.netns, "metadata service listening");
    tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())
}

/// Connections held per source address.
#[derive(Default)]
struct Held(Mutex<(usize, HashMap<Ipv4Addr, usize>)>);

impl Held {
    fn take(self: &Arc<Self>, a: Ipv4Addr) -> Option<Slot> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = g.1.get(&a).copied().unwrap_or(0);
        if n >= MAX_PER_VM || g.0 >= MAX_CONNECTIONS {
            return None;
        }
        g.0 += 1;
        g.1.insert(a, n + 1);
        Some(Slot(self.clone(), a))
    }
}

/// One connection's place, given back when it ends.
struct Slot(Arc<Held>, Ipv4Addr);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut g = self.0.0.lock().unwrap_or_else(|e| e.into_inner());
        g.0 -= 1;
        if let Some(n) = g.1.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                g.1.remove(&self.1);
            }
        }
    }
}

/// Accepts connections until the process ends; questions go to `ask`.
pub async fn serve(listener: tokio::net::TcpListener, ask: mpsc::Sender<Question>) {
    let held = Arc::new(Held::default());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "metadata accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let SocketAddr::V4(peer) = peer else { continue };
        // Small answers written as they come: no waiting on the client's delayed ACK.
        let _ = stream.set_nodelay(true);
        let Some(slot) = held.take(*peer.ip()) else {
            tracing::debug!(source = %peer.ip(), "too many metadata connections; one closed");
            continue;
        };
        let (ask, http) = (ask.clone(), http.clone());
        tokio::spawn(async move {
            let _slot = slot;
            connection(stream, *peer.ip(), ask, http).await;
        });
    }
}

/// Serves one connection from `source` (HTTP/1 with the limits above) until it ends.
pub async fn connection<I>(
    io: I,
    source: Ipv4Addr,
    ask: mpsc::Sender<Question>,
    http: reqwest::Client,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let (ask, http) = (ask.clone(), http.clone());
        async move { Ok::<_, std::convert::Infallible>(handle(req, source, ask, http).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADERS)
        .serve_connection(TokioIo::new(io), service);
    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
}

fn response(status: u16, content_type: &str, body: Vec<u8>) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn handle(
    req: hyper::Request<Incoming>,
    source: Ipv4Addr,
    ask: mpsc::Sender<Question>,
    http: reqwest::Client,
) -> hyper::Response<Full<Bytes>> {
    let has_body = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(hyper::header::TRANSFER_ENCODING);
    if has_body {
        let mut r = response(
            413,
            "text/plain",
            b"413 Request Entity Too Large\n".to_vec(),
        );
        r.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return r;
    }
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let (tx, rx) = oneshot::channel();
    let q = Question {
        method: req.method().as_str().to_string(),
        target,
        source,
        reply: tx,
    };
    if ask.send(q).await.is_err() {
        return response(503, "text/plain", b"503 Service Unavailable\n".to_vec());
    }
    match rx.await {
        Ok(Answer::Reply(r)) => response(r.status, r.content_type, r.body),
        Ok(Answer::Proxy(p)) => nova(&http, p).await,
        Err(_) => response(503, "text/plain", b"503 Service Unavailable\n".to_vec()),
    }
}

/// Nova's answer, passed on (status, content type, body up to [`MAX_NOVA_BODY`]).
async fn nova(http: &reqwest::Client, p: metadata::serve::Proxy) -> hyper::Response<Full<Bytes>> {
    let mut rb = http.get(&p.url);
    for (k, v) in &p.headers {
        rb = rb.header(*k, v);
    }
    match rb.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let ct = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("text/plain")
                .to_string();
            match resp.bytes().await {
                Ok(b) if b.len() <= MAX_NOVA_BODY => response(status, &ct, b.to_vec()),
                _ => response(502, "text/plain", b"502 Bad Gateway\n".to_vec()),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, url = %p.url, "Nova's metadata API did not answer");
            response(502, "text/plain", b"502 Bad Gateway\n".to_vec())
        }
    }
}

/// Answers one question from the event loop's view (called there, between batches).
pub fn answer(server: &mut metadata::serve::Server, core: &crate::engine::Controller, q: Question) {
    reply(server, core.view(), core.host(), q);
}

/// Answers one question from `view`.
pub fn reply(
    server: &mut metadata::serve::Server,
    view: &crate::view::View,
    host: &crate::apps::Host,
    q: Question,
) {
    let a = server.answer(
        view,
        host,
        host.metadata.range,
        Request {
            method: &q.method,
            target: &q.target,
            source: q.source,
        },
        std::time::Instant::now(),
    );
    if let Answer::Reply(r) = &a {
        tracing::debug!(source = %q.source, target = %q.target, status = r.status, "metadata answered");
    }
    let _ = q.reply.send(a);
}
