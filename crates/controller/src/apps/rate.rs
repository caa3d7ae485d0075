//! Token buckets that keep a VM from making its controller answer without limit.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

/// `rate` answers a second per key, with bursts of up to `rate` (at least one).
#[derive(Debug)]
pub struct Limiter<K> {
    rate: f64,
    buckets: HashMap<K, (f64, Instant)>,
}

impl<K: Hash + Eq> Limiter<K> {
    pub fn new(rate: u32) -> Limiter<K> {
        Limiter {
            rate: f64::from(rate.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key` at `now`: false when its bucket is empty.
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        let rate = self.rate;
        // Keys are ports of this host's routers and VMs: forget idle ones now and then.
        if self.buckets.len() > 4096 {
            self.buckets
                .retain(|_, (_, at)| now.saturating_duration_since(*at).as_secs() < 2);
        }
        let (tokens, at) = self.buckets.entry(key).or_insert((rate, now));
        let refill = now.saturating_duration_since(*at).as_secs_f64() * rate;
        *tokens = (*tokens + refill).min(rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
