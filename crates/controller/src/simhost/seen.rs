//! What a simulated host compiled into its switch and reported, and when: the first time
//! each object's write (or deletion) was installed, and the first time each port was
//! reported ACTIVE. Kept only while the harness records (its measured waves), so that
//! setting up a thousand hosts does not fill it.

use model::PortStatus;
use nbdb::{Change, Record};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// One object's write or deletion.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub table: String,
    pub id: String,
    /// A deletion.
    pub gone: bool,
}

impl Key {
    pub fn of(c: &Change) -> Key {
        Key {
            table: c.table.clone(),
            id: c.id.clone(),
            gone: c.value.is_none(),
        }
    }

    pub fn of_record(r: &Record) -> Key {
        Key {
            table: r.table.clone(),
            id: r.id.clone(),
            gone: false,
        }
    }
}

/// What one host saw while recording.
#[derive(Debug, Default)]
pub struct Seen {
    recording: AtomicBool,
    installed: Mutex<HashMap<Key, Instant>>,
    received: Mutex<HashMap<Key, Instant>>,
    active: Mutex<HashMap<String, Instant>>,
}

/// What [`Seen::take`] hands over.
#[derive(Debug, Default)]
pub struct Taken {
    /// When each write or deletion was first in the switch.
    pub installed: HashMap<Key, Instant>,
    /// When the host took each of them from the stream (or a snapshot).
    pub received: HashMap<Key, Instant>,
    /// When each port was first reported ACTIVE (and the store took it).
    pub active: HashMap<String, Instant>,
}

impl Seen {
    pub fn record(&self, on: bool) {
        self.recording.store(on, Ordering::SeqCst);
    }

    /// These writes, each received when it says, are in the switch as of `at` (the first
    /// time counts).
    pub fn installed(&self, keys: Vec<(Key, Instant)>, at: Instant) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let mut m = self.installed.lock().unwrap_or_else(|e| e.into_inner());
        let mut r = self.received.lock().unwrap_or_else(|e| e.into_inner());
        for (k, got) in keys {
            r.entry(k.clone()).or_insert(got);
            m.entry(k).or_insert(at);
        }
    }

    /// The store took these reports as of `at`.
    pub fn reported(&self, reports: &[(String, PortStatus, Result<(), String>)], at: Instant) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let mut m = self.active.lock().unwrap_or_else(|e| e.into_inner());
        for (id, status, r) in reports {
            if *status == PortStatus::Active && r.is_ok() {
                m.entry(id.clone()).or_insert(at);
            }
        }
    }

    /// Everything recorded so far, which is forgotten here.
    pub fn take(&self) -> Taken {
        Taken {
            installed: std::mem::take(
                &mut *self.installed.lock().unwrap_or_else(|e| e.into_inner()),
            ),
            received: std::mem::take(&mut *self.received.lock().unwrap_or_else(|e| e.into_inner())),
            active: std::mem::take(&mut *self.active.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> Key {
        Key {
            table: "port".into(),
            id: id.into(),
            gone: false,
        }
    }

    #[test]
    fn only_the_first_time_counts_and_only_while_recording() {
        let s = Seen::default();
        let t0 = Instant::now();
        s.installed(vec![(key("a"), t0)], t0);
        assert!(s.take().installed.is_empty(), "not recording yet");
        s.record(true);
        s.installed(vec![(key("a"), t0)], t0);
        s.installed(
            vec![(key("a"), t0), (key("b"), t0)],
            t0 + std::time::Duration::from_millis(5),
        );
        s.reported(
            &[
                ("a".into(), PortStatus::Active, Ok(())),
                ("b".into(), PortStatus::Active, Err("refused".into())),
                ("c".into(), PortStatus::Down, Ok(())),
            ],
            t0,
        );
        let t = s.take();
        assert_eq!(t.installed[&key("a")], t0);
        assert_eq!(t.installed.len(), 2);
        assert_eq!(t.received[&key("b")], t0);
        assert_eq!(t.active.keys().collect::<Vec<_>>(), vec!["a"]);
        assert!(s.take().installed.is_empty(), "taken once");
    }
}
