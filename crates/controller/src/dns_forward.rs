//! Asks the upstream resolvers the questions the DNS responder (`apps::dns`) does not
//! answer itself: the I/O half of forwarding. One task per question, with a UDP socket of
//! its own (so answers cannot be confused or spoofed across questions), each resolver in
//! turn for up to 2 s; what comes back goes through `apps::dns::responder::relay` (which
//! checks it answers that query) and, as a packet-out, through the channel to the event
//! loop. At most [`MAX_IN_FLIGHT`] questions are out at once: past that, a question is
//! dropped (the VM's resolver asks again).

use crate::apps::dns::responder::{Forward, relay};
use openflow::packet::PacketOut;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Questions out at once, for every port together (each port is rate limited too).
pub const MAX_IN_FLIGHT: usize = 512;
/// How long one resolver has to answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Where answers go, and how many questions are out.
#[derive(Clone)]
pub struct Forwarder {
    tx: mpsc::Sender<PacketOut>,
    in_flight: Arc<AtomicUsize>,
}

impl Forwarder {
    /// A forwarder and the receiving end of its answers.
    pub fn new() -> (Forwarder, mpsc::Receiver<PacketOut>) {
        let (tx, rx) = mpsc::channel(1024);
        (
            Forwarder {
                tx,
                in_flight: Arc::new(AtomicUsize::new(0)),
            },
            rx,
        )
    }

    /// Sends `f` on its way in a task of its own.
    pub fn forward(&self, f: Forward) {
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!("too many DNS questions upstream; one dropped");
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Some(p) = ask(&f).await {
                let _ = me.tx.send(p).await;
            }
            me.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// The first usable answer of the resolvers, tried in order.
async fn ask(f: &Forward) -> Option<PacketOut> {
    for up in &f.upstreams {
        let local: SocketAddr = match up {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let Ok(sock) = UdpSocket::bind(local).await else {
            continue;
        };
        if sock.connect(up).await.is_err() || sock.send(&f.query).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        // A connected socket hears only that resolver; anything not an answer to this
        // query is skipped until the time is up.
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            if let Some(p) = relay(f, &buf[..n]) {
                return Some(p);
            }
        }
        tracing::debug!(upstream = %up, "no answer from the upstream resolver");
    }
    None
}
