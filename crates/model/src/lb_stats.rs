//! A listener's statistics (Octavia's `/stats`): what each host counted for the
//! connections it balanced, carried in its controller's heartbeat and summed by the server.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Octavia's statistics of a listener (or, summed, of a balancer), as one host counted
/// them since its flows were installed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Bytes from the clients to the VIP.
    pub bytes_in: u64,
    /// Bytes of the members' answers to the clients.
    pub bytes_out: u64,
    /// Connections open now (conntrack entries of the listener's VIP and port).
    pub active_connections: u64,
    /// Connections balanced so far.
    pub total_connections: u64,
    /// Always 0: a switch sees no request to get wrong.
    pub request_errors: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        // Saturating: the counts come from every host's heartbeat, which the server
        // trusts no more than it must.
        self.bytes_in = self.bytes_in.saturating_add(o.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(o.bytes_out);
        self.active_connections = self.active_connections.saturating_add(o.active_connections);
        self.total_connections = self.total_connections.saturating_add(o.total_connections);
        self.request_errors = self.request_errors.saturating_add(o.request_errors);
    }
}

/// Listener id → its counts on one host.
pub type ByListener = BTreeMap<String, Stats>;

/// The sum over hosts of the listeners in `ids`.
pub fn sum<'a>(hosts: impl IntoIterator<Item = &'a ByListener>, ids: &[&str]) -> Stats {
    let mut total = Stats::default();
    for h in hosts {
        for id in ids {
            if let Some(s) = h.get(*id) {
                total += *s;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_takes_the_named_listeners_of_every_host_and_saturates() {
        let s = |b| Stats {
            bytes_in: b,
            total_connections: 1,
            ..Stats::default()
        };
        let a: ByListener = [("l1".into(), s(10)), ("l2".into(), s(5))].into();
        let b: ByListener = [("l1".into(), s(u64::MAX))].into();
        assert_eq!(sum([&a], &["l1"]).bytes_in, 10);
        assert_eq!(sum([&a], &["l1", "l2"]).total_connections, 2);
        assert_eq!(sum([&a, &b], &["l1"]).bytes_in, u64::MAX);
        assert_eq!(sum([&a, &b], &["l3"]), Stats::default());
    }
}
