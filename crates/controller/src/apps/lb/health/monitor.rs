//! The health check state machine, sans-IO: when each member is probed, what a probe's
//! outcome does to the member's health (up after `max_retries` successes in a row, down
//! after `max_retries_down` failures in a row), and when the NB store is to be told. The
//! caller sends the probes and hands back their outcomes; time is passed in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a health monitor asks of each of its members' checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Between the starts of two probes.
    pub delay: Duration,
    /// A probe with no answer by then has failed (UDP-CONNECT: succeeded).
    pub timeout: Duration,
    /// Successes in a row that bring a member up (Octavia's `max_retries`).
    pub rise: u8,
    /// Failures in a row that take it down (`max_retries_down`).
    pub fall: u8,
    /// Silence until the timeout is a success (UDP-CONNECT: only an ICMP port
    /// unreachable says the port is closed).
    pub silence_ok: bool,
}

/// A member's health as this host last concluded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not concluded yet (a new monitor, a member never checked).
    Unknown,
    Up,
    Down,
}

/// A write the NB store is to receive: member `key` is up (ONLINE) or down (ERROR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<K> {
    pub key: K,
    pub up: bool,
}

/// What the NB store says of a member now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// No conclusion stored (NO_MONITOR, OFFLINE, ...).
    Unchecked,
    Online,
    Error,
}

/// A probe that was started and is not concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Inflight {
    token: u16,
    deadline: Instant,
}

#[derive(Debug, Clone)]
struct Check {
    params: Params,
    health: Health,
    successes: u8,
    failures: u8,
    next_at: Instant,
    inflight: Option<Inflight>,
    stored: Stored,
    /// When the last report was handed out: a write that did not show up in the store is
    /// asked again after [`REPORT_AGAIN`].
    reported_at: Option<Instant>,
}

/// A report whose write is not seen in the store is made again after this long.
pub const REPORT_AGAIN: Duration = Duration::from_secs(2);

/// What a tick asks: probes to start (member, token) and writes to make.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Due<K> {
    pub start: Vec<(K, u16)>,
    /// Probes that ran out of time (their sessions can go).
    pub expired: Vec<u16>,
    pub reports: Vec<Report<K>>,
}

/// Every member this host checks.
#[derive(Debug)]
pub struct Monitor<K> {
    checks: BTreeMap<K, Check>,
    next_token: u16,
}

impl<K> Default for Monitor<K> {
    fn default() -> Monitor<K> {
        Monitor {
            checks: BTreeMap::new(),
            next_token: 0,
        }
    }
}

impl<K: Ord + Clone> Monitor<K> {
    /// The members to check now, with their monitor's settings and what the store says:
    /// new ones start with a probe at once, gone ones are forgotten (their probes too).
    /// The health a check starts from is the stored one, so a controller restart or a
    /// takeover does not flap the member.
    pub fn sync(&mut self, wanted: impl IntoIterator<Item = (K, Params, Stored)>, now: Instant) {
        let mut keep = BTreeMap::new();
        for (key, params, stored) in wanted {
            let check = match self.checks.remove(&key) {
                Some(mut c) => {
                    if c.params != params {
                        c.params = params;
                        c.next_at = c.next_at.min(now + params.delay);
                    }
                    if c.stored != stored {
                        // The store caught up (or someone else wrote): a write is due only
                        // if it still differs.
                        c.reported_at = None;
                    }
                    c.stored = stored;
                    c
                }
                None => Check {
                    params,
                    health: match stored {
                        Stored::Online => Health::Up,
                        Stored::Error => Health::Down,
                        Stored::Unchecked => Health::Unknown,
                    },
                    successes: 0,
                    failures: 0,
                    next_at: now,
                    inflight: None,
                    stored,
                    reported_at: None,
                },
            };
            keep.insert(key, check);
        }
        self.checks = keep;
    }

    /// The probes to start at `now`, the ones that ran out of time (concluded as
    /// failures, or successes for silence-is-fine checks), and the writes due.
    pub fn tick(&mut self, now: Instant) -> Due<K> {
        let mut due = Due {
            start: Vec::new(),
            expired: Vec::new(),
            reports: Vec::new(),
        };
        for (key, c) in &mut self.checks {
            if let Some(i) = c.inflight
                && now >= i.deadline
            {
                c.inflight = None;
                due.expired.push(i.token);
                let ok = c.params.silence_ok;
                c.record(ok);
            }
            if c.inflight.is_none() && now >= c.next_at {
                self.next_token = self.next_token.wrapping_add(1);
                let token = self.next_token;
                c.inflight = Some(Inflight {
                    token,
                    deadline: now + c.params.timeout.min(c.params.delay).max(MIN_TIMEOUT),
                });
                c.next_at = now + c.params.delay.max(MIN_TIMEOUT);
                due.start.push((key.clone(), token));
            }
            if let Some(r) = c.report(key, now) {
                due.reports.push(r);
            }
        }
        due
    }

    /// The outcome of probe `token` of member `key`: a write when it changes what the
    /// store is to say. A late or unknown outcome is ignored.
    pub fn outcome(&mut self, key: &K, token: u16, ok: bool, now: Instant) -> Option<Report<K>> {
        let c = self.checks.get_mut(key)?;
        if c.inflight.map(|i| i.token) != Some(token) {
            return None;
        }
        c.inflight = None;
        c.record(ok);
        c.report(key, now)
    }

    /// The probe of member `key` that is waiting for its answer.
    pub fn inflight(&self, key: &K) -> Option<u16> {
        self.checks.get(key)?.inflight.map(|i| i.token)
    }

    pub fn health(&self, key: &K) -> Option<Health> {
        self.checks.get(key).map(|c| c.health)
    }

    pub fn len(&self) -> usize {
        self.checks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }
}

/// No probe waits less than this for its answer, nor starts sooner after the last one (a
/// monitor with `delay` or `timeout` 0).
const MIN_TIMEOUT: Duration = Duration::from_millis(100);

impl Check {
    fn record(&mut self, ok: bool) {
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            if self.health != Health::Up && self.successes >= self.params.rise.max(1) {
                self.health = Health::Up;
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            if self.health != Health::Down && self.failures >= self.params.fall.max(1) {
                self.health = Health::Down;
            }
        }
    }

    /// A write when the store says otherwise than this host concluded, at most once per
    /// [`REPORT_AGAIN`] while it has not shown up.
    fn report<K: Clone>(&mut self, key: &K, now: Instant) -> Option<Report<K>> {
        let up = match (self.health, self.stored) {
            (Health::Up, Stored::Online) | (Health::Down, Stored::Error) => return None,
            (Health::Unknown, _) => return None,
            (Health::Up, _) => true,
            (Health::Down, _) => false,
        };
        if self
            .reported_at
            .is_some_and(|at| now.saturating_duration_since(at) < REPORT_AGAIN)
        {
            return None;
        }
        self.reported_at = Some(now);
        Some(Report {
            key: key.clone(),
            up,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn params(rise: u8, fall: u8) -> Params {
        Params {
            delay: 2 * S,
            timeout: S,
            rise,
            fall,
            silence_ok: false,
        }
    }

    /// Runs one probe of `m` at `t`: started by the tick, concluded with `ok` (None: left to
    /// time out). Returns the reports made on the way.
    fn probe(
        m: &mut Monitor<&'static str>,
        t: Instant,
        ok: Option<bool>,
    ) -> Vec<Report<&'static str>> {
        let due = m.tick(t);
        let mut out = due.reports;
        let (_, token) = *due.start.first().expect("a probe is due");
        match ok {
            Some(ok) => out.extend(m.outcome(&"m", token, ok, t + S / 10)),
            None => out.extend(m.tick(t + S + S / 10).reports),
        }
        out
    }

    #[test]
    fn a_new_member_is_probed_at_once_and_then_every_delay() {
        let mut m = Monitor::default();
        let t0 = Instant::now();
        m.sync([("m", params(1, 3), Stored::Unchecked)], t0);
        assert_eq!(m.tick(t0).start.len(), 1);
        // Still waiting for the answer: nothing new.
        assert!(m.tick(t0 + S / 2).start.is_empty());
        let token = m.inflight(&"m").unwrap();
        m.outcome(&"m", token, true, t0 + S / 2);
        assert!(m.tick(t0 + S).start.is_empty(), "not before the delay");
        assert_eq!(m.tick(t0 + 2 * S).start.len(), 1);
    }

    #[test]
    fn up_after_rise_successes_down_after_fall_failures() {
        let mut m = Monitor::default();
        let t0 = Instant::now();
        m.sync([("m", params(2, 3), Stored::Unchecked)], t0);
        assert!(
            probe(&mut m, t0, Some(true)).is_empty(),
            "one success of two"
        );
        assert_eq!(
            probe(&mut m, t0 + 2 * S, Some(true)),
            vec![Report { key: "m", up: true }]
        );
        m.sync([("m", params(2, 3), Stored::Online)], t0 + 3 * S);
        assert!(probe(&mut m, t0 + 4 * S, Some(false)).is_empty());
        assert!(
            probe(&mut m, t0 + 6 * S, None).is_empty(),
            "a timeout is a failure"
        );
        assert_eq!(
            probe(&mut m, t0 + 8 * S, Some(false)),
            vec![Report {
                key: "m",
                up: false
            }]
        );
        assert_eq!(m.health(&"m"), Some(Health::Down));
        m.sync([("m", params(2, 3), Stored::Error)], t0 + 9 * S);
        // One success is not enough to come back; a failure in between starts over.
        assert!(probe(&mut m, t0 + 10 * S, Some(true)).is_empty());
        assert!(probe(&mut m, t0 + 12 * S, Some(false)).is_empty());
        assert!(probe(&mut m, t0 + 14 * S, Some(true)).is_empty());
        assert_eq!(
            probe(&mut m, t0 + 16 * S, Some(true)),
            vec![Report { key: "m", up: true }]
        );
    }

    #[test]
    fn silence_is_a_success_for_udp_connect() {
        let mut m = Monitor::default();
        let t0 = Instant::now();
        let p = Params {
            silence_ok: true,
            ..params(1, 1)
        };
        m.sync([("m", p, Stored::Error)], t0);
        assert_eq!(probe(&mut m, t0, None), vec![Report { key: "m", up: true }]);
        m.sync([("m", p, Stored::Online)], t0 + S);
        // An ICMP port unreachable is a failure.
        assert_eq!(
            probe(&mut m, t0 + 2 * S, Some(false)),
            vec![Report {
                key: "m",
                up: false
            }]
        );
    }

    #[test]
    fn a_late_or_foreign_answer_changes_nothing() {
        let mut m = Monitor::default();
        let t0 = Instant::now();
        m.sync([("m", params(1, 1), Stored::Unchecked)], t0);
        let (_, token) = m.tick(t0).start[0];
        assert_eq!(m.outcome(&"m", token.wrapping_add(1), true, t0), None);
        assert_eq!(m.outcome(&"x", token, true, t0), None);
        // Timed out as a failure; its answer after that is ignored.
        let due = m.tick(t0 + 2 * S);
        assert_eq!(due.expired, vec![token]);
        assert_eq!(
            due.reports,
            vec![Report {
                key: "m",
                up: false
            }]
        );
        assert_eq!(m.outcome(&"m", token, true, t0 + 2 * S), None);
        assert_eq!(m.health(&"m"), Some(Health::Down));
    }

    #[test]
    fn the_stored_health_is_the_start_and_writes_are_retried_until_seen() {
        let mut m = Monitor::default();
        let t0 = Instant::now();
        // A takeover: the store says ERROR; this host starts from there, writes nothing.
        m.sync([("m", params(1, 3), Stored::Error)], t0);
        assert_eq!(m.health(&"m"), Some(Health::Down));
        assert!(m.tick(t0).reports.is_empty());
        let token = m.inflight(&"m").unwrap();
        assert_eq!(
            m.outcome(&"m", token, true, t0),
            Some(Report { key: "m", up: true })
        );
        // Not seen in the store: asked again, but not at every tick.
        assert!(m.tick(t0 + S).reports.is_empty());
        assert_eq!(
            m.tick(t0 + REPORT_AGAIN + S / 10).reports,
            vec![Report { key: "m", up: true }]
        );
        m.sync([("m", params(1, 3), Stored::Online)], t0 + 3 * S);
        assert!(m.tick(t0 + 10 * S).reports.is_empty());
        // Someone reset it (a new monitor): written again at once.
        m.sync([("m", params(1, 3), Stored::Unchecked)], t0 + 11 * S);
        assert_eq!(
            m.tick(t0 + 11 * S).reports,
            vec![Report { key: "m", up: true }]
        );
    }

    #[test]
    fn members_no_longer_wanted_are_forgotten() {
        let mut m = Monitor::default();
        let t0 = Instant::now();
        m.sync(
            [
                ("m", params(1, 1), Stored::Unchecked),
                ("n", params(1, 1), Stored::Unchecked),
            ],
            t0,
        );
        assert_eq!(m.tick(t0).start.len(), 2);
        m.sync([("n", params(1, 1), Stored::Unchecked)], t0);
        assert_eq!(m.len(), 1);
        assert_eq!(m.inflight(&"m"), None);
    }

    #[test]
    fn detection_takes_fall_probes() {
        // A member that stops answering is down by its `fall`th unanswered probe: within
        // delay × (fall − 1) + timeout of the first probe it missed.
        let mut m = Monitor::default();
        let t0 = Instant::now();
        m.sync([("m", params(1, 3), Stored::Online)], t0);
        let mut t = t0;
        let down_at = loop {
            if m.tick(t).reports.iter().any(|r| !r.up) {
                break t;
            }
            t += S / 10;
            assert!(t < t0 + 60 * S, "never went down");
        };
        let took = down_at - t0;
        assert!(
            took >= 2 * 2 * S + S && took <= 2 * 2 * S + S + S / 10,
            "{took:?}"
        );
    }
}
