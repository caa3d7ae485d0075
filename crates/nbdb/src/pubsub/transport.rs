//! The sockets of the fan-out: a [`Publisher`] (ZeroMQ PUB bound to its address, or
//! Redis `PUBLISH`), and a [`Subscription`] whose task owns a ZeroMQ SUB socket or a Redis
//! pub/sub connection, follows the channel set it is told (subscribing and unsubscribing
//! as it changes) and hands the messages' bytes to the current [`Feed`].
//!
//! Nothing here orders or completes anything: a message that does not fit in the feed is
//! dropped, and a reconnection is only flagged; [`super::watch`] makes up for both.

use super::wire::{Channel, Message, encode};
use super::{Endpoint, Kind, REDIS_PREFIX};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use zeromq::{Socket, SocketEvent, SocketRecv, SocketSend};

/// Messages a feed holds before newer ones are dropped (and later filled from the store).
const FEED: usize = 16_384;
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The publishing end.
pub struct Publisher {
    sink: Sink,
    drop_every: Option<u64>,
    sent: u64,
}

enum Sink {
    Zmq(Box<zeromq::PubSocket>),
    Redis(redis::aio::ConnectionManager),
}

fn redis_channel(key: &str) -> String {
    format!("{REDIS_PREFIX}{}", key.trim_end_matches('\n'))
}

impl Publisher {
    /// Binds the ZeroMQ socket, or connects to Redis.
    pub async fn open(ep: &Endpoint) -> Result<Publisher, String> {
        let sink = match &ep.kind {
            Kind::Zmq(addr) => {
                let mut s = zeromq::PubSocket::new();
                s.bind(addr)
                    .await
                    .map_err(|e| format!("--pubsub: cannot bind {addr}: {e}"))?;
                Sink::Zmq(Box::new(s))
            }
            Kind::Redis(url) => {
                let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
                let conn = redis::aio::ConnectionManager::new(client)
                    .await
                    .map_err(|e| format!("--pubsub: Redis: {e}"))?;
                Sink::Redis(conn)
            }
        };
        Ok(Publisher {
            sink,
            drop_every: ep.drop_every,
            sent: 0,
        })
    }

    /// Publishes one message; a failure is logged (the subscribers fill what they miss).
    pub async fn send(&mut self, m: &Message) {
        self.sent += 1;
        if self.drop_every.is_some_and(|n| self.sent.is_multiple_of(n)) {
            return; // the test knob: a message lost on the way
        }
        let key = m.channel().key();
        let body = encode(m);
        let result = match &mut self.sink {
            Sink::Zmq(s) => {
                let mut msg = zeromq::ZmqMessage::from(key.into_bytes());
                msg.push_back(body.into());
                s.send(msg).await.map_err(|e| e.to_string())
            }
            Sink::Redis(conn) => redis::cmd("PUBLISH")
                .arg(redis_channel(&key))
                .arg(body)
                .query_async::<i64>(conn)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "pubsub: publishing failed");
        }
    }
}

/// What one watch receives: messages' bytes, and a flag raised when the connection was
/// made again (anything may have been lost meanwhile).
pub struct Feed {
    pub messages: mpsc::Receiver<Vec<u8>>,
    pub reconnected: Arc<AtomicBool>,
}

impl Feed {
    /// Whether the connection was made again since the last call.
    pub fn take_reconnected(&self) -> bool {
        self.reconnected.swap(false, Ordering::AcqRel)
    }
}

/// The channels to follow (`None`: all) and where their messages go.
struct Follow {
    channels: Option<BTreeSet<Channel>>,
    sink: mpsc::Sender<Vec<u8>>,
    reconnected: Arc<AtomicBool>,
}

impl Follow {
    fn keys(&self) -> BTreeSet<String> {
        match &self.channels {
            // The empty prefix: everything.
            None => [String::new()].into(),
            Some(chs) => chs.iter().map(Channel::key).collect(),
        }
    }

    fn forward(&self, bytes: Vec<u8>) {
        // A full feed drops the message: the chain shows the loss and the store fills it.
        let _ = self.sink.try_send(bytes);
    }
}

/// A subscriber's connection, shared by the watches of one host (one at a time).
#[derive(Clone)]
pub struct Subscription {
    follow: mpsc::UnboundedSender<Follow>,
}

impl Subscription {
    /// Starts the task that connects (and reconnects) to `ep`; must be called in a tokio
    /// runtime.
    pub fn start(ep: &Endpoint) -> Subscription {
        let (tx, rx) = mpsc::unbounded_channel();
        match ep.kind.clone() {
            Kind::Zmq(addr) => tokio::spawn(zmq_task(addr, rx)),
            Kind::Redis(url) => tokio::spawn(redis_task(url, rx)),
        };
        Subscription { follow: tx }
    }

    /// From now on, the messages of `channels` (`None`: all) go to the returned feed, and
    /// no longer to the previous one.
    pub fn follow(&self, channels: Option<BTreeSet<Channel>>) -> Feed {
        let (sink, messages) = mpsc::channel(FEED);
        let reconnected = Arc::new(AtomicBool::new(false));
        let _ = self.follow.send(Follow {
            channels,
            sink,
            reconnected: reconnected.clone(),
        });
        Feed {
            messages,
            reconnected,
        }
    }
}

async fn zmq_task(addr: String, mut follows: mpsc::UnboundedReceiver<Follow>) {
    let mut socket = zeromq::SubSocket::new();
    let mut monitor = socket.monitor();
    let mut backoff = Duration::from_millis(50);
    // The socket reconnects by itself once connected; the first connection is ours.
    while let Err(e) = socket.connect(&addr).await {
        tracing::debug!(%addr, error = %e, "pubsub: publisher not reachable yet");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    tracing::info!(%addr, "pubsub: subscribed");
    let mut current: Option<Follow> = None;
    let mut keys: BTreeSet<String> = BTreeSet::new();
    // The first `Connected` is the connection made above.
    let mut connections = 0u64;
    loop {
        tokio::select! {
            f = follows.recv() => {
                let Some(f) = f else { return };
                let want = f.keys();
                for k in want.difference(&keys) {
                    if let Err(e) = socket.subscribe(k).await {
                        tracing::warn!(error = %e, "pubsub: subscribe failed");
                    }
                }
                for k in keys.difference(&want) {
                    if let Err(e) = socket.unsubscribe(k).await {
                        tracing::warn!(error = %e, "pubsub: unsubscribe failed");
                    }
                }
                keys = want;
                current = Some(f);
            }
            ev = futures_next(&mut monitor) => {
                if let Some(SocketEvent::Connected(..)) = ev {
                    connections += 1;
                }
                if let (Some(SocketEvent::Connected(..)), Some(f)) = (&ev, &current)
                    && connections > 1
                {
                    tracing::info!(%addr, "pubsub: reconnected to the publisher");
                    f.reconnected.store(true, Ordering::Release);
                }
            }
            m = socket.recv() => match m {
                Ok(m) => {
                    if let (Some(f), Some(body)) = (&current, m.get(1)) {
                        f.forward(body.to_vec());
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "pubsub: receive failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
}

/// The next monitor event (`None` once the socket is gone).
async fn futures_next(
    rx: &mut futures::channel::mpsc::Receiver<SocketEvent>,
) -> Option<SocketEvent> {
    use futures::StreamExt;
    rx.next().await
}

async fn redis_task(url: String, mut follows: mpsc::UnboundedReceiver<Follow>) {
    use futures::StreamExt;
    let mut current: Option<Follow> = None;
    let mut backoff = Duration::from_millis(50);
    let mut connected_before = false;
    loop {
        let conn = match redis::Client::open(url.as_str()) {
            Ok(c) => c.get_async_pubsub().await,
            Err(e) => Err(e),
        };
        let (mut sink, mut stream) = match conn {
            Ok(ps) => ps.split(),
            Err(e) => {
                tracing::debug!(error = %e, "pubsub: Redis not reachable");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // Take the newest follow meanwhile.
                while let Ok(f) = follows.try_recv() {
                    current = Some(f);
                }
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        let mut keys: BTreeSet<String> = BTreeSet::new();
        if let Some(f) = &current {
            if connected_before {
                f.reconnected.store(true, Ordering::Release);
            }
            keys = resubscribe(&mut sink, &BTreeSet::new(), f).await;
        }
        connected_before = true;
        loop {
            tokio::select! {
                f = follows.recv() => {
                    let Some(f) = f else { return };
                    keys = resubscribe(&mut sink, &keys, &f).await;
                    current = Some(f);
                }
                m = stream.next() => match m {
                    Some(m) => {
                        if let Some(f) = &current {
                            f.forward(m.get_payload_bytes().to_vec());
                        }
                    }
                    None => {
                        tracing::info!("pubsub: Redis connection lost; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}

/// Moves a Redis subscription from `had` to what `f` wants; what it has now.
async fn resubscribe(
    sink: &mut redis::aio::PubSubSink,
    had: &BTreeSet<String>,
    f: &Follow,
) -> BTreeSet<String> {
    let want = f.keys();
    for k in want.difference(had) {
        let r = if k.is_empty() {
            sink.psubscribe(format!("{REDIS_PREFIX}*")).await
        } else {
            sink.subscribe(redis_channel(k)).await
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "pubsub: Redis subscribe failed");
        }
    }
    for k in had.difference(&want) {
        let r = if k.is_empty() {
            sink.punsubscribe(format!("{REDIS_PREFIX}*")).await
        } else {
            sink.unsubscribe(redis_channel(k)).await
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "pubsub: Redis unsubscribe failed");
        }
    }
    want
}
