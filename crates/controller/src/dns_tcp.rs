//! DNS over TCP's I/O: the listeners behind the metadata service's internal port (the
//! switch brings a VM's TCP to its network's DNS address, port 53, there, with the source
//! rewritten to the address of the asking port, as for metadata), the connections, and the
//! upstream resolvers over TCP. Every answer comes from the event loop, which owns the view
//! and the responder (`apps::dns::responder::DnsResponder::answer_tcp`): a query goes there
//! as a [`Question`]. The framing is `apps::dns::tcp::Framer`'s (sans-IO, fuzzed).
//!
//! Limits: [`MAX_PER_VM`] connections per VM at once (and the metadata service's total),
//! a connection closed after [`IDLE`] without a whole query or [`CONNECTION_TIMEOUT`] in all,
//! and the port's query rate (past it, the connection is closed).

use crate::apps::dns::responder::{TcpAnswer, answers};
use crate::apps::dns::tcp::{Framer, frame};
use crate::metadata_http::Held;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// Connections one VM may hold at once.
pub const MAX_PER_VM: usize = 4;
/// How long a connection may go without a whole query (RFC 7766 suggests seconds).
pub const IDLE: Duration = Duration::from_secs(10);
/// The longest a connection lives (shorter than the learned reply flows' idle timeout).
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one upstream resolver has to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// A query for the event loop to answer.
pub struct Question {
    /// The connection's source address (the switch's, standing for the port).
    pub source: IpAddr,
    pub query: Vec<u8>,
    pub reply: oneshot::Sender<TcpAnswer>,
}

/// Accepts connections on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    held: Arc<Held>,
    ask: mpsc::Sender<Question>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "DNS over TCP accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(slot) = held.take(peer.ip()) else {
            tracing::debug!(source = %peer.ip(), "too many DNS connections; one closed");
            continue;
        };
        let ask = ask.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _ =
                tokio::time::timeout(CONNECTION_TIMEOUT, connection(stream, peer.ip(), ask)).await;
        });
    }
}

/// Serves one connection from `source`: queries in, answers out, in order.
pub async fn connection<I>(mut io: I, source: IpAddr, ask: mpsc::Sender<Question>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut framer = Framer::new();
    let mut buf = vec![0u8; 4096];
    loop {
        while let Some(m) = framer.next_message() {
            let Ok(query) = m else { return };
            let (tx, rx) = oneshot::channel();
            let q = Question {
                source,
                query,
                reply: tx,
            };
            if ask.send(q).await.is_err() {
                return;
            }
            let answer = match rx.await {
                Ok(TcpAnswer::Reply(a)) => a,
                Ok(TcpAnswer::Forward { query, upstreams }) => {
                    match upstream(&query, &upstreams).await {
                        Some(a) => a,
                        // The resolver asks again, or another.
                        None => return,
                    }
                }
                Ok(TcpAnswer::Close) | Err(_) => return,
            };
            let Some(framed) = frame(&answer) else { return };
            if io.write_all(&framed).await.is_err() {
                return;
            }
        }
        let want = framer.want().min(buf.len());
        let n = match tokio::time::timeout(IDLE, io.read(&mut buf[..want])).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        framer.push(&buf[..n]);
    }
}

/// The first resolver's answer to `query` over TCP (checked to answer it).
async fn upstream(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let framed = frame(query)?;
    for up in upstreams {
        let ask = async {
            let mut s = tokio::net::TcpStream::connect(up).await.ok()?;
            s.write_all(&framed).await.ok()?;
            let mut f = Framer::new();
            let mut buf = vec![0u8; 4096];
            loop {
                if let Some(m) = f.next_message() {
                    return m.ok();
                }
                let want = f.want().min(buf.len());
                let n = s.read(&mut buf[..want]).await.ok()?;
                if n == 0 {
                    return None;
                }
                f.push(&buf[..n]);
            }
        };
        match tokio::time::timeout(UPSTREAM_TIMEOUT, ask).await {
            Ok(Some(a)) if answers(query, &a) => return Some(a),
            _ => tracing::debug!(upstream = %up, "no answer over TCP from the upstream resolver"),
        }
    }
    None
}

/// Answers one question from the event loop's view.
pub fn answer(
    responder: &mut crate::apps::dns::responder::DnsResponder,
    core: &crate::engine::Controller,
    q: Question,
) {
    let host = core.host();
    let a = match crate::apps::metadata::key_of_ip(host.metadata.range, q.source) {
        Some(key) => {
            responder.answer_tcp(core.view(), host, std::time::Instant::now(), key, &q.query)
        }
        None => TcpAnswer::Close,
    };
    let _ = q.reply.send(a);
}
