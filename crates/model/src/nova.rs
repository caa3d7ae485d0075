//! Nova's port events (`POST /os-server-external-events`): which change of a port a
//! waiting Nova must hear of, and the outbox record that carries the events of one NB
//! transaction until the API server has delivered them. The record is written in the same
//! transaction as the port, by whoever writes the port (the API server, or a controller
//! writing straight to the store), so an event exists exactly when its change does.

use crate::{Port, PortStatus};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The NB table of undelivered events. Controllers never ask for it.
pub const OUTBOX: &str = "nova_event";

pub const VIF_PLUGGED: &str = "network-vif-plugged";
pub const VIF_UNPLUGGED: &str = "network-vif-unplugged";
pub const VIF_DELETED: &str = "network-vif-deleted";

/// One event, in the shape Nova's API takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub name: String,
    /// The instance: the port's `device_id`.
    pub server_uuid: String,
    /// The port's id.
    pub tag: String,
    /// `completed` or `failed`.
    pub status: String,
}

/// The outbox record of one transaction: its events, and when they happened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    pub at: String,
    pub events: Vec<Event>,
}

/// A port Nova waits on: one a compute instance owns.
fn watched(port: &Port) -> bool {
    port.device_owner.starts_with("compute:") && !port.device_id.is_empty()
}

fn event(port: &Port, name: &str, status: &str) -> Event {
    Event {
        name: name.into(),
        server_uuid: port.device_id.clone(),
        tag: port.meta.id.clone(),
        status: status.into(),
    }
}

/// The event a status change from `old` to the port's status sends, as Neutron sends it:
/// plugged (`completed`) on reaching ACTIVE, plugged (`failed`) on reaching ERROR, both
/// from DOWN or BUILD; unplugged when an ACTIVE port goes DOWN.
pub fn on_status(port: &Port, old: PortStatus) -> Option<Event> {
    use PortStatus::*;
    if !watched(port) {
        return None;
    }
    match (old, port.status) {
        (Down | Build, Active) => Some(event(port, VIF_PLUGGED, "completed")),
        (Down | Build, Error) => Some(event(port, VIF_PLUGGED, "failed")),
        (Active, Down) => Some(event(port, VIF_UNPLUGGED, "completed")),
        _ => None,
    }
}

/// The event a deleted port sends.
pub fn on_delete(port: &Port) -> Option<Event> {
    watched(port).then(|| event(port, VIF_DELETED, "completed"))
}

/// A new outbox key: ordered by time, unique across writers (a random tail), so the
/// sender delivers in about the order things happened.
pub fn new_key() -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tail = uuid::Uuid::new_v4().simple().to_string();
    format!("{nanos:020}-{seq:010}-{}", &tail[..8])
}

impl Outbox {
    /// The record of `events` (None when there are none), as `(key, JSON)`.
    pub fn record(events: Vec<Event>) -> Option<(String, Vec<u8>)> {
        if events.is_empty() {
            return None;
        }
        let rec = Outbox {
            at: crate::time::now(),
            events,
        };
        // Plain strings: serializing cannot fail.
        Some((new_key(), serde_json::to_vec(&rec).unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(owner: &str, status: PortStatus) -> Port {
        let mut p = crate::fixtures::port("p1", "n1", 1, "h1");
        p.device_owner = owner.into();
        p.device_id = "vm-1".into();
        p.status = status;
        p
    }

    #[test]
    fn nova_hears_of_plugging_unplugging_and_failure_of_compute_ports_only() {
        use PortStatus::*;
        let p = port("compute:nova", Active);
        let e = on_status(&p, Down).expect("plugged");
        assert_eq!(
            (e.name.as_str(), e.status.as_str(), e.tag.as_str()),
            (VIF_PLUGGED, "completed", "p1")
        );
        assert_eq!(e.server_uuid, "vm-1");
        assert_eq!(on_status(&p, Build).unwrap().name, VIF_PLUGGED);
        assert_eq!(on_status(&p, Active), None, "no change, no event");
        let failed = on_status(&port("compute:az1", Error), Down).unwrap();
        assert_eq!(
            (failed.name.as_str(), failed.status.as_str()),
            (VIF_PLUGGED, "failed")
        );
        let down = on_status(&port("compute:nova", Down), Active).unwrap();
        assert_eq!(down.name, VIF_UNPLUGGED);
        assert_eq!(on_status(&port("compute:nova", Down), Build), None);
        assert_eq!(on_status(&port("network:dhcp", Active), Down), None);
        assert_eq!(on_status(&port("", Active), Down), None);
        let mut orphan = port("compute:nova", Active);
        orphan.device_id.clear();
        assert_eq!(on_status(&orphan, Down), None, "no instance to tell");
        assert_eq!(on_delete(&p).unwrap().name, VIF_DELETED);
        assert_eq!(on_delete(&port("network:router_interface", Active)), None);
    }

    #[test]
    fn outbox_keys_sort_in_the_order_they_were_made() {
        let keys: Vec<String> = (0..50).map(|_| new_key()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(Outbox::record(vec![]), None);
        let (_, json) = Outbox::record(vec![
            on_delete(&port("compute:x", PortStatus::Down)).unwrap(),
        ])
        .unwrap();
        let back: Outbox = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.events.len(), 1);
    }
}
