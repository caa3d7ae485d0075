//! Token buckets that keep a VM from making its controller answer without limit: a plain
//! [`Limiter`], and the [`FloodGuard`] of the DHCP responders (v4 and v6), which past its
//! rate has the port blocked in the switch for a while.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// `rate` answers a second per key, with bursts of up to `rate` (at least one).
#[derive(Debug)]
pub struct Limiter<K> {
    rate: f64,
    burst: f64,
    buckets: HashMap<K, (f64, Instant)>,
}

impl<K: Hash + Eq> Limiter<K> {
    pub fn new(rate: u32) -> Limiter<K> {
        Limiter::with_burst(rate, rate)
    }

    /// `rate` tokens a second, up to `burst` saved (at least `rate`).
    pub fn with_burst(rate: u32, burst: u32) -> Limiter<K> {
        Limiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(rate).max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key` at `now`: false when its bucket is empty.
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        let (rate, burst) = (self.rate, self.burst);
        // Keys are ports of this host's routers and VMs: forget idle ones now and then.
        if self.buckets.len() > 4096 {
            self.buckets
                .retain(|_, (_, at)| now.saturating_duration_since(*at).as_secs() < 2);
        }
        let (tokens, at) = self.buckets.entry(key).or_insert((burst, now));
        let refill = now.saturating_duration_since(*at).as_secs_f64() * rate;
        *tokens = (*tokens + refill).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the flood guard says of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Within the rate: answer it.
    Pass,
    /// The port is blocked (the switch's drop flow was not in yet): drop it.
    Dropped,
    /// The port just went past its rate: drop it and block the port for this many seconds
    /// (the caller sends the drop flow and logs, once per block).
    Block(u16),
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// A token bucket per port key (`rate` a second, as many in a burst) whose overflow blocks
/// the port for `block`. Rate and block are passed on each call, so the handler's settings
/// may change at run time.
#[derive(Debug, Default)]
pub struct FloodGuard {
    buckets: HashMap<u32, Bucket>,
}

impl FloodGuard {
    /// One request from port `key` at `now`; `rate` 0 turns the guard off.
    pub fn admit(&mut self, now: Instant, key: u32, rate: u32, block: Duration) -> Admit {
        if rate == 0 {
            return Admit::Pass;
        }
        let rate = f64::from(rate);
        if self.buckets.len() > 4096 {
            // Ports come and go; forget those quiet for a while.
            let horizon = block.max(Duration::from_secs(60));
            self.buckets
                .retain(|_, b| now.saturating_duration_since(b.last) < horizon);
        }
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: rate,
            last: now,
            blocked_until: None,
        });
        if let Some(until) = b.blocked_until {
            if now < until {
                return Admit::Dropped;
            }
            b.blocked_until = None;
            b.tokens = rate;
            b.last = now;
        }
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Admit::Pass;
        }
        b.blocked_until = Some(now + block);
        Admit::Block(block.as_secs().clamp(1, u64::from(u16::MAX)) as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_saved_up_to_its_size_and_refilled_at_the_rate() {
        let t0 = Instant::now();
        let mut l = Limiter::with_burst(2, 6);
        assert_eq!((0..8).filter(|_| l.allow(1u32, t0)).count(), 6);
        // Half a second refills one token, not a burst.
        let t1 = t0 + std::time::Duration::from_millis(500);
        assert_eq!((0..3).filter(|_| l.allow(1u32, t1)).count(), 1);
        // Another key has its own bucket.
        assert!(l.allow(2u32, t1));
    }

    #[test]
    fn bursts_up_to_the_rate_then_refills_at_the_rate() {
        let mut l = Limiter::new(3);
        let t0 = Instant::now();
        assert_eq!((0..10).filter(|_| l.allow("a", t0)).count(), 3);
        assert!(l.allow("b", t0), "keys are separate");
        assert!(!l.allow("a", t0 + Duration::from_millis(300)));
        assert!(l.allow("a", t0 + Duration::from_millis(340)));
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!((0..10).filter(|_| l.allow("a", t1)).count(), 3);
    }
}
