//! One JSON-RPC 1.0 connection to ovsdb-server (RFC 7047 section 4).
//!
//! A background task owns the socket: it frames incoming JSON, matches replies to pending
//! requests by id, answers the server's `echo` requests, forwards notifications (`update`,
//! `update2`, ...) to a channel, and runs the inactivity probe: after `probe_interval` with
//! nothing received it sends an `echo`, and if another interval passes in silence it declares
//! the server dead and closes, failing every pending request with [`Error::Disconnected`].
//! Reconnection is not done here but by the owners ([`crate::Client`], [`crate::Monitor`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::error::{Error, OvsdbError, Result};
use crate::framing::Splitter;

/// Where ovsdb-server listens, in the form OVS writes it (`unix:PATH`, `tcp:IP:PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A unix domain socket path.
    Unix(PathBuf),
    /// A TCP address `IP:PORT` (IPv6 as `[addr]:port`).
    Tcp(String),
}

impl Target {
    /// Parses `unix:PATH` or `tcp:IP:PORT`.
    pub fn parse(s: &str) -> Result<Target> {
        if let Some(p) = s.strip_prefix("unix:")
            && !p.is_empty()
        {
            return Ok(Target::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s.strip_prefix("tcp:")
            && a.parse::<std::net::SocketAddr>().is_ok()
        {
            return Ok(Target::Tcp(a.to_string()));
        }
        Err(Error::BadTarget(s.to_string()))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Connection tuning.
#[derive(Debug, Clone)]
pub struct RpcOptions {
    /// Silence after which an echo is sent; twice this with no answer closes the connection.
    /// `None` disables the probe.
    pub probe_interval: Option<Duration>,
    /// Upper bound of one incoming message.
    pub max_message: usize,
}

impl Default for RpcOptions {
    fn default() -> Self {
        RpcOptions {
            probe_interval: Some(Duration::from_secs(5)),
            max_message: crate::framing::DEFAULT_MAX_MESSAGE,
        }
    }
}

/// A message the server sent without expecting an answer (`id` null).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The method, e.g. `update2`.
    pub method: String,
    /// The params array.
    pub params: Json,
}

enum Command {
    Call {
        method: String,
        params: Json,
        reply: oneshot::Sender<Result<Json>>,
    },
}

/// A cheap, cloneable handle to send requests on one connection.
#[derive(Debug, Clone)]
pub struct RpcHandle {
    cmds: mpsc::UnboundedSender<Command>,
    closed: watch::Receiver<bool>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Call { method, .. } => write!(f, "Call({method})"),
        }
    }
}

impl RpcHandle {
    /// Sends a request and waits for its result (the `result` member), or the decoded `error`.
    pub async fn call(&self, method: &str, params: Json) -> Result<Json> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Command::Call {
                method: method.to_string(),
                params,
                reply,
            })
            .map_err(|_| Error::Disconnected)?;
        rx.await.map_err(|_| Error::Disconnected)?
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow() || self.cmds.is_closed()
    }

    /// Resolves when the connection ends.
    pub async fn closed(&self) {
        let mut rx = self.closed.clone();
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// Connects to `target` and starts the connection task.
///
/// Returns the request handle and the stream of notifications. The connection ends when the
/// socket fails, the probe declares the peer dead, or every handle is dropped.
pub async fn connect(
    target: &Target,
    opts: &RpcOptions,
) -> Result<(RpcHandle, mpsc::UnboundedReceiver<Notification>)> {
    match target {
        Target::Unix(p) => {
            let s = tokio::net::UnixStream::connect(p).await?;
            Ok(spawn(s, opts))
        }
        Target::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a.as_str()).await?;
            // Small request/response messages: do not wait to coalesce them.
            s.set_nodelay(true)?;
            Ok(spawn(s, opts))
        }
    }
}

/// Runs the connection protocol over any byte stream (used by tests with in-memory pipes).
pub fn spawn<S>(stream: S, opts: &RpcOptions) -> (RpcHandle, mpsc::UnboundedReceiver<Notification>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (note_tx, note_rx) = mpsc::unbounded_channel();
    let (closed_tx, closed_rx) = watch::channel(false);
    let task = ConnTask {
        splitter: Splitter::new(opts.max_message),
        pending: HashMap::new(),
        next_id: 1,
        notes: note_tx,
        probe: opts.probe_interval,
    };
    tokio::spawn(async move {
        if let Err(e) = task.run(stream, cmd_rx).await {
            tracing::debug!("ovsdb connection ended: {e}");
        }
        let _ = closed_tx.send(true);
    });
    (
        RpcHandle {
            cmds: cmd_tx,
            closed: closed_rx,
        },
        note_rx,
    )
}

/// Id of our own keepalive echo, distinct from the integer ids of calls.
const PROBE_ID: &str = "probe";

struct ConnTask {
    splitter: Splitter,
    pending: HashMap<u64, oneshot::Sender<Result<Json>>>,
    next_id: u64,
    notes: mpsc::UnboundedSender<Notification>,
    probe: Option<Duration>,
}

impl ConnTask {
    async fn run<S>(mut self, stream: S, mut cmds: mpsc::UnboundedReceiver<Command>) -> Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut buf = vec![0u8; 64 * 1024];
        let mut last_rx = Instant::now();
        let mut probe_sent: Option<Instant> = None;
        // With the probe disabled the timer still ticks, rarely, and does nothing.
        let tick = self.probe.unwrap_or(Duration::from_secs(3600));
        let mut timer = tokio::time::interval(tick / 2);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                n = rd.read(&mut buf) => {
                    let n = n?;
                    if n == 0 {
                        return Err(Error::Disconnected);
                    }
                    last_rx = Instant::now();
                    probe_sent = None;
                    self.splitter.push(buf.get(..n).unwrap_or_default());
                    while let Some(msg) = self.splitter.next_message()? {
                        let j: Json = serde_json::from_slice(&msg)
                            .map_err(|e| Error::Protocol(format!("bad JSON: {e}")))?;
                        if let Some(out) = self.incoming(j)? {
                            write_json(&mut wr, &out).await?;
                        }
                    }
                }
                cmd = cmds.recv() => {
                    let Some(Command::Call { method, params, reply }) = cmd else {
                        // Every handle dropped: nobody can use this connection any more.
                        return Ok(());
                    };
                    let id = self.next_id;
                    self.next_id = self.next_id.wrapping_add(1);
                    let msg = json!({"method": method, "params": params, "id": id});
                    self.pending.insert(id, reply);
                    write_json(&mut wr, &msg).await?;
                }
                _ = timer.tick(), if self.probe.is_some() => {
                    let now = Instant::now();
                    if let Some(sent) = probe_sent {
                        if now.duration_since(sent) >= tick {
                            return Err(Error::Protocol("inactivity probe: no answer".into()));
                        }
                    } else if now.duration_since(last_rx) >= tick {
                        probe_sent = Some(now);
                        let msg = json!({"method": "echo", "params": [], "id": PROBE_ID});
                        write_json(&mut wr, &msg).await?;
                    }
                }
            }
        }
    }

    /// Handles one message; returns an answer to write back, if any.
    fn incoming(&mut self, j: Json) -> Result<Option<Json>> {
        let Json::Object(mut o) = j else {
            return Err(Error::Protocol("message is not an object".into()));
        };
        let id = o.remove("id").unwrap_or(Json::Null);
        if let Some(method) = o.get("method").and_then(Json::as_str).map(str::to_string) {
            let params = o.remove("params").unwrap_or(Json::Null);
            if id.is_null() {
                let _ = self.notes.send(Notification { method, params });
                return Ok(None);
            }
            // A request from the server: echo is the only one defined for clients.
            let answer = if method == "echo" {
                json!({"result": params, "error": null, "id": id})
            } else {
                json!({"result": null, "error": "unknown method", "id": id})
            };
            return Ok(Some(answer));
        }
        // A reply. Our probe's echo reply needs nothing more (last_rx was updated).
        if id.as_str() == Some(PROBE_ID) {
            return Ok(None);
        }
        let Some(n) = id.as_u64() else {
            return Err(Error::Protocol(format!("reply with unknown id {id}")));
        };
        let Some(reply) = self.pending.remove(&n) else {
            tracing::debug!("reply to unknown request {n} ignored");
            return Ok(None);
        };
        let error = o.get("error").and_then(OvsdbError::from_json);
        let result = match error {
            Some(e) => Err(Error::Rpc(e)),
            None => Ok(o.remove("result").unwrap_or(Json::Null)),
        };
        let _ = reply.send(result);
        Ok(None)
    }
}

async fn write_json<W: AsyncWrite + Unpin>(wr: &mut W, j: &Json) -> Result<()> {
    let bytes = serde_json::to_vec(j).map_err(|e| Error::Protocol(e.to_string()))?;
    wr.write_all(&bytes).await?;
    wr.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    #[test]
    fn parses_targets() {
        assert_eq!(
            Target::parse("unix:/run/openvswitch/db.sock").expect("unix"),
            Target::Unix("/run/openvswitch/db.sock".into())
        );
        assert_eq!(
            Target::parse("tcp:127.0.0.1:6640").expect("tcp"),
            Target::Tcp("127.0.0.1:6640".into())
        );
        assert!(Target::parse("tcp:[::1]:6640").is_ok());
        for bad in ["", "unix:", "tcp:host", "ssl:1.2.3.4:6640", "punix:/x"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    async fn read_msg(s: &mut tokio::io::DuplexStream, sp: &mut Splitter) -> Json {
        let mut buf = [0u8; 256];
        loop {
            if let Some(m) = sp.next_message().expect("frame") {
                return serde_json::from_slice(&m).expect("json");
            }
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "peer closed");
            sp.push(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn matches_replies_answers_echo_and_forwards_notifications() {
        let (client, mut server) = duplex(4096);
        let (h, mut notes) = spawn(client, &RpcOptions::default());
        let mut sp = Splitter::default();
        let call = tokio::spawn({
            let h = h.clone();
            async move { h.call("list_dbs", json!([])).await }
        });
        let req = read_msg(&mut server, &mut sp).await;
        assert_eq!(req["method"], "list_dbs");
        let id = req["id"].clone();
        // Server echo request, a notification and the reply, split across writes.
        let text = format!(
            r#"{{"method":"echo","params":["x"],"id":"e1"}}{{"method":"update2","params":["m",{{}}],"id":null}}{{"id":{id},"result":["Open_vSwitch"],"error":null}}"#
        );
        let (a, b) = text.as_bytes().split_at(30);
        server.write_all(a).await.expect("w");
        server.write_all(b).await.expect("w");
        let echo = read_msg(&mut server, &mut sp).await;
        assert_eq!(echo, json!({"id": "e1", "result": ["x"], "error": null}));
        let note = notes.recv().await.expect("note");
        assert_eq!(note.method, "update2");
        assert_eq!(
            call.await.expect("join").expect("ok"),
            json!(["Open_vSwitch"])
        );

        // An error reply decodes into a typed error.
        let call = tokio::spawn({
            let h = h.clone();
            async move { h.call("get_schema", json!(["nope"])).await }
        });
        let req = read_msg(&mut server, &mut sp).await;
        let reply = json!({"id": req["id"], "result": null,
                           "error": {"error": "unknown database", "details": "nope"}});
        server
            .write_all(reply.to_string().as_bytes())
            .await
            .expect("w");
        match call.await.expect("join") {
            Err(Error::Rpc(e)) => assert_eq!(e.error, "unknown database"),
            other => panic!("unexpected {other:?}"),
        }

        // Closing the server side fails pending calls and marks the handle closed.
        let call = tokio::spawn({
            let h = h.clone();
            async move { h.call("list_dbs", json!([])).await }
        });
        let _ = read_msg(&mut server, &mut sp).await;
        drop(server);
        assert!(matches!(
            call.await.expect("join"),
            Err(Error::Disconnected)
        ));
        h.closed().await;
        assert!(h.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn probe_closes_a_silent_peer() {
        let (client, mut server) = duplex(4096);
        let opts = RpcOptions {
            probe_interval: Some(Duration::from_secs(2)),
            ..RpcOptions::default()
        };
        let (h, _notes) = spawn(client, &opts);
        let mut sp = Splitter::default();
        let probe = read_msg(&mut server, &mut sp).await;
        assert_eq!(probe["method"], "echo");
        // Never answer: the connection must close by itself.
        tokio::time::timeout(Duration::from_secs(30), h.closed())
            .await
            .expect("closed by probe");
        assert!(matches!(
            h.call("list_dbs", json!([])).await,
            Err(Error::Disconnected)
        ));
    }

    #[tokio::test]
    async fn garbage_from_server_closes_without_panic() {
        let (client, mut server) = duplex(4096);
        let (h, _notes) = spawn(client, &RpcOptions::default());
        server.write_all(b"{\"id\":1}x").await.expect("w");
        h.closed().await;
        assert!(h.is_closed());
    }
}
