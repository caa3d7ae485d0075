//! One peer session's state machine (RFC 4271 §8), sans-IO: the runtime feeds it TCP events,
//! received bytes and the time, and performs what it returns (connect, send, close). The
//! speaker only initiates connections (it is the active side; the peer may be passive),
//! so the Active state and connection collisions do not arise.
//!
//! Timers: connect retry while down, hold timer and keepalive once OPENs are exchanged.
//! The hold time is the smaller of both OPENs' (0: no keepalives, no hold timer); before
//! the peer's OPEN arrives the hold timer is the RFC's large value, 4 minutes.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::wire::{
    self, BAD_BGP_IDENTIFIER, BAD_PEER_AS, Codec, FSM_ERROR, HOLD_TIMER_EXPIRED, Message,
    Notification, Open, UNACCEPTABLE_HOLD_TIME,
};

/// What a session is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub peer_as: u32,
    /// The hold time proposed in our OPEN (seconds; 0 or at least 3).
    pub hold_time: u16,
    /// Time between connection attempts while the session is down.
    pub connect_retry: Duration,
    /// The (AFI, SAFI) pairs to offer.
    pub families: Vec<(u16, u8)>,
    /// Graceful restart (RFC 4724) offered with this restart time in seconds; 0: not
    /// offered. A session that ends without a NOTIFICATION (the process killed or
    /// restarted) then leaves our routes with the peer, marked stale, until the next
    /// session's End-of-RIB or this time; a [`Input::Stop`] still withdraws them (CEASE).
    pub restart_time: u16,
}

/// The session's state; `Connect` covers waiting for TCP and for the retry timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Connect,
    OpenSent,
    OpenConfirm,
    Established,
}

/// What both OPENs agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub hold_time: u16,
    pub four_octet_as: bool,
    /// Families both sides offered.
    pub families: Vec<(u16, u8)>,
    pub peer_router_id: Ipv4Addr,
    /// Whether the peer is in our AS (iBGP).
    pub internal: bool,
}

/// An event for the session.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// Bring the session up (connect, then retry until it is).
    Start,
    /// Take it down for good: a CEASE to the peer if connected.
    Stop,
    /// The TCP connection asked for by [`Output::Connect`] is up.
    Connected,
    /// That connection attempt failed.
    ConnectFailed,
    /// The connection was closed or broke.
    Closed,
    /// Bytes read from the connection.
    Bytes(&'a [u8]),
    /// Time moved on (call at [`Session::deadline`] at the latest).
    Tick,
}

/// What the runtime must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection to the peer (dropping any attempt still pending).
    Connect,
    /// Write these bytes.
    Send(Vec<u8>),
    /// Close the connection (after writing what was sent before).
    Close,
    /// The session is up: send the whole Adj-RIB-Out.
    Established(Negotiated),
    /// The session left Established: the peer forgot our routes.
    Down(String),
    /// The peer asked for our routes again (RFC 2918).
    RouteRefresh,
}

/// One BGP session with one peer.
#[derive(Debug)]
pub struct Session {
    cfg: Config,
    state: State,
    buf: Vec<u8>,
    negotiated: Option<Negotiated>,
    retry_at: Option<Instant>,
    hold_at: Option<Instant>,
    keepalive_at: Option<Instant>,
    /// Why the session last went down, for operators.
    last_error: Option<String>,
}

/// The hold timer before the peer's OPEN (RFC 4271 §8.2.2: "4 minutes is suggested").
const LARGE_HOLD: Duration = Duration::from_secs(240);

impl Session {
    pub fn new(cfg: Config) -> Session {
        Session {
            cfg,
            state: State::Idle,
            buf: Vec::new(),
            negotiated: None,
            retry_at: None,
            hold_at: None,
            keepalive_at: None,
            last_error: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The encoding UPDATEs to this peer must use.
    pub fn codec(&self) -> Codec {
        Codec {
            four_octet_as: self.negotiated.as_ref().is_some_and(|n| n.four_octet_as),
        }
    }

    /// The next time the session needs a [`Input::Tick`].
    pub fn deadline(&self) -> Option<Instant> {
        [self.retry_at, self.hold_at, self.keepalive_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Start => {
                if self.state == State::Idle {
                    self.connect(now, &mut out);
                }
            }
            Input::Stop => {
                if matches!(
                    self.state,
                    State::OpenSent | State::OpenConfirm | State::Established
                ) {
                    let n = Notification::cease(wire::ADMINISTRATIVE_SHUTDOWN);
                    out.push(Output::Send(Message::Notification(n).encode(self.codec())));
                    out.push(Output::Close);
                }
                self.reset("stopped".into(), &mut out);
                self.state = State::Idle;
                self.retry_at = None;
            }
            Input::Connected => {
                if self.state == State::Connect {
                    let mut open = Open::new(
                        self.cfg.local_as,
                        self.cfg.hold_time,
                        self.cfg.router_id,
                        &self.cfg.families,
                    );
                    if self.cfg.restart_time > 0 {
                        open = open.with_graceful_restart(self.cfg.restart_time);
                    }
                    out.push(Output::Send(Message::Open(open).encode(Codec::default())));
                    self.state = State::OpenSent;
                    self.retry_at = None;
                    self.hold_at = Some(now + LARGE_HOLD);
                }
            }
            Input::ConnectFailed => {
                if self.state == State::Connect && self.retry_at.is_none() {
                    self.retry_at = Some(now + self.cfg.connect_retry);
                }
            }
            Input::Closed => {
                if self.state != State::Idle && self.state != State::Connect {
                    self.down(now, "connection closed by the peer".into(), &mut out);
                }
            }
            Input::Bytes(b) => {
                if matches!(
                    self.state,
                    State::OpenSent | State::OpenConfirm | State::Established
                ) {
                    self.buf.extend_from_slice(b);
                    self.read(now, &mut out);
                }
            }
            Input::Tick => self.tick(now, &mut out),
        }
        out
    }

    fn connect(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.state = State::Connect;
        self.retry_at = Some(now + self.cfg.connect_retry);
        out.push(Output::Connect);
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.state == State::Connect && self.retry_at.is_some_and(|t| t <= now) {
            self.connect(now, out);
            return;
        }
        if self.hold_at.is_some_and(|t| t <= now) {
            self.fail(
                now,
                Notification::new(HOLD_TIMER_EXPIRED, 0, Vec::new()),
                out,
            );
            return;
        }
        if let Some(t) = self.keepalive_at.filter(|&t| t <= now) {
            out.push(Output::Send(Message::Keepalive.encode(self.codec())));
            let every = self.keepalive_interval();
            // Catch up without a burst when ticks came late.
            self.keepalive_at = Some(if t + every > now {
                t + every
            } else {
                now + every
            });
        }
    }

    fn keepalive_interval(&self) -> Duration {
        let hold = self.negotiated.as_ref().map_or(0, |n| n.hold_time);
        Duration::from_secs(u64::from(hold / 3).max(1))
    }

    fn read(&mut self, now: Instant, out: &mut Vec<Output>) {
        let mut at = 0;
        loop {
            match wire::decode(&self.buf[at..], self.codec()) {
                Ok(None) => break,
                Ok(Some((msg, used))) => {
                    at += used;
                    if !self.message(now, msg, out) {
                        return;
                    }
                }
                Err(n) => {
                    self.fail(now, n, out);
                    return;
                }
            }
        }
        self.buf.drain(..at);
    }

    /// Handles one message; false when the session was torn down.
    fn message(&mut self, now: Instant, msg: Message, out: &mut Vec<Output>) -> bool {
        let fsm_error = |state: State| {
            // RFC 6608: which state the unexpected message arrived in.
            let sub = match state {
                State::OpenSent => 1,
                State::OpenConfirm => 2,
                _ => 3,
            };
            Notification::new(FSM_ERROR, sub, Vec::new())
        };
        match (self.state, msg) {
            (_, Message::Notification(n)) => {
                self.down(now, format!("the peer sent {n}"), out);
                out.push(Output::Close);
                false
            }
            (State::OpenSent, Message::Open(open)) => match self.check_open(&open) {
                Err(n) => {
                    self.fail(now, n, out);
                    false
                }
                Ok(neg) => {
                    self.negotiated = Some(neg);
                    out.push(Output::Send(Message::Keepalive.encode(self.codec())));
                    self.state = State::OpenConfirm;
                    self.arm(now);
                    true
                }
            },
            (State::OpenConfirm, Message::Keepalive) => {
                self.state = State::Established;
                self.last_error = None;
                self.arm_hold(now);
                if let Some(n) = &self.negotiated {
                    out.push(Output::Established(n.clone()));
                }
                true
            }
            (State::Established, Message::Keepalive | Message::Update(_)) => {
                // Routes from the peer are not used: this speaker only advertises.
                self.arm_hold(now);
                true
            }
            (State::Established, Message::RouteRefresh { .. }) => {
                self.arm_hold(now);
                out.push(Output::RouteRefresh);
                true
            }
            (state, _) => {
                self.fail(now, fsm_error(state), out);
                false
            }
        }
    }

    fn check_open(&self, open: &Open) -> Result<Negotiated, Notification> {
        if open.asn() != self.cfg.peer_as {
            return Err(Notification::open(BAD_PEER_AS, open.my_as.to_be_bytes()));
        }
        if open.hold_time == 1 || open.hold_time == 2 {
            return Err(Notification::open(UNACCEPTABLE_HOLD_TIME, Vec::new()));
        }
        let internal = self.cfg.peer_as == self.cfg.local_as;
        if open.router_id.is_unspecified() || (internal && open.router_id == self.cfg.router_id) {
            return Err(Notification::open(
                BAD_BGP_IDENTIFIER,
                open.router_id.octets(),
            ));
        }
        let theirs = open.families();
        let families = self
            .cfg
            .families
            .iter()
            .filter(|f| theirs.contains(f))
            .copied()
            .collect();
        Ok(Negotiated {
            hold_time: open.hold_time.min(self.cfg.hold_time),
            four_octet_as: open.four_octet_as(),
            families,
            peer_router_id: open.router_id,
            internal,
        })
    }

    /// Starts the negotiated hold and keepalive timers (none with a hold time of 0).
    fn arm(&mut self, now: Instant) {
        self.arm_hold(now);
        let hold = self.negotiated.as_ref().map_or(0, |n| n.hold_time);
        self.keepalive_at = (hold > 0).then(|| now + self.keepalive_interval());
    }

    fn arm_hold(&mut self, now: Instant) {
        let hold = self.negotiated.as_ref().map_or(0, |n| n.hold_time);
        self.hold_at = (hold > 0).then(|| now + Duration::from_secs(u64::from(hold)));
    }

    /// Sends the NOTIFICATION, closes, and retries later.
    fn fail(&mut self, now: Instant, n: Notification, out: &mut Vec<Output>) {
        out.push(Output::Send(
            Message::Notification(n.clone()).encode(self.codec()),
        ));
        out.push(Output::Close);
        self.down(now, format!("sent {n}"), out);
    }

    /// The connection is gone: wait for the retry timer.
    fn down(&mut self, now: Instant, why: String, out: &mut Vec<Output>) {
        self.reset(why, out);
        self.state = State::Connect;
        self.retry_at = Some(now + self.cfg.connect_retry);
    }

    fn reset(&mut self, why: String, out: &mut Vec<Output>) {
        if self.state == State::Established {
            out.push(Output::Down(why.clone()));
        }
        self.last_error = Some(why);
        self.buf.clear();
        self.negotiated = None;
        self.hold_at = None;
        self.keepalive_at = None;
    }
}

#[cfg(test)]
mod tests;
