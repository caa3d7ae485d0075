//! A watcher of the `Interface` table: what the controller needs to bind OVS ports to
//! Neutron ports (name, `external_ids:iface-id`, `external_ids:attached-mac`, the `ofport`
//! that ovs-vswitchd assigns, admin and link state), as add/change/remove events.
//!
//! It is a [`Monitor`] of a few columns, so only changes to these columns are sent by the
//! server (statistics and status churn are not). After every (re)connection it emits
//! [`InterfaceEvent::Resync`] with the full current state, followed by the events that turn
//! the previously reported state into it: applying either gives the same result.

use std::collections::{BTreeMap, VecDeque};

use crate::client::{Client, OPEN_VSWITCH};
use crate::monitor::{Monitor, MonitorEvent, MonitorSpec};
use crate::replica::{ChangeKind, RowChange};
use crate::value::{Row, Uuid, Value};

/// Columns of `Interface` that the watcher replicates.
pub const COLUMNS: &[&str] = &[
    "name",
    "type",
    "external_ids",
    "ofport",
    "admin_state",
    "link_state",
    "mac_in_use",
];

pub(crate) const COLUMNS_WITH_UUID: &[&str] = &[
    "_uuid",
    "name",
    "type",
    "external_ids",
    "ofport",
    "admin_state",
    "link_state",
    "mac_in_use",
];

/// Highest valid OpenFlow port number (OFPP_MAX in OpenFlow 1.0 numbering, as OVS uses).
const OFPP_MAX: i64 = 0xff00;

/// The watched state of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceState {
    /// Row uuid.
    pub uuid: Uuid,
    /// Interface name.
    pub name: String,
    /// `type` (`""` for system devices).
    pub iface_type: String,
    /// `external_ids:iface-id`: the Neutron port bound to this interface.
    pub iface_id: Option<String>,
    /// `external_ids:attached-mac`: the MAC of the VM behind it.
    pub attached_mac: Option<String>,
    /// `ofport`: `None` until ovs-vswitchd assigns it, `Some(-1)` if it failed to open.
    pub ofport: Option<i64>,
    /// `admin_state` (`up`/`down`), set by ovs-vswitchd.
    pub admin_state: Option<String>,
    /// `link_state` (`up`/`down`), set by ovs-vswitchd.
    pub link_state: Option<String>,
    /// `mac_in_use`.
    pub mac_in_use: Option<String>,
    /// All of `external_ids`.
    pub external_ids: BTreeMap<String, String>,
}

impl InterfaceState {
    /// Builds the state from an `Interface` row (missing columns read as empty).
    pub fn from_row(uuid: Uuid, row: &Row) -> InterfaceState {
        let s = |c: &str| row.get(c).and_then(Value::as_str).map(str::to_string);
        let external_ids = row
            .get("external_ids")
            .map(Value::as_string_map)
            .unwrap_or_default();
        InterfaceState {
            uuid,
            name: s("name").unwrap_or_default(),
            iface_type: s("type").unwrap_or_default(),
            iface_id: external_ids.get("iface-id").cloned(),
            attached_mac: external_ids.get("attached-mac").cloned(),
            ofport: row.get("ofport").and_then(Value::as_integer),
            admin_state: s("admin_state"),
            link_state: s("link_state"),
            mac_in_use: s("mac_in_use"),
            external_ids,
        }
    }

    /// The OpenFlow port number when one is assigned and valid.
    pub fn ofport(&self) -> Option<u32> {
        self.ofport
            .filter(|p| (1..=OFPP_MAX).contains(p))
            .and_then(|p| u32::try_from(p).ok())
    }
}

/// A change of the watched interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "events are few and short-lived; boxing would only complicate matching"
)]
pub enum InterfaceEvent {
    /// An interface appeared.
    Added(InterfaceState),
    /// A watched column changed (e.g. the ofport got assigned).
    Changed {
        /// Before.
        old: InterfaceState,
        /// After.
        new: InterfaceState,
    },
    /// An interface went away.
    Removed(InterfaceState),
    /// After a (re)connection: every interface that exists now. The events that follow bring
    /// the previous state up to this one.
    Resync(Vec<InterfaceState>),
    /// The connection to ovsdb-server was lost; a `Resync` follows on reconnect.
    Disconnected,
}

/// Streams [`InterfaceEvent`]s; reconnects by itself.
#[derive(Debug)]
pub struct InterfaceWatcher {
    monitor: Monitor,
    queue: VecDeque<InterfaceEvent>,
}

impl InterfaceWatcher {
    /// Starts watching the interfaces of the server `client` talks to.
    pub fn new(client: &Client) -> InterfaceWatcher {
        let spec = MonitorSpec::new(OPEN_VSWITCH).table("Interface", Some(COLUMNS));
        InterfaceWatcher {
            monitor: client.monitor(spec),
            queue: VecDeque::new(),
        }
    }

    /// The next event (`None` only if the monitor task ended).
    pub async fn next(&mut self) -> Option<InterfaceEvent> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            match self.monitor.next().await? {
                MonitorEvent::Disconnected => return Some(InterfaceEvent::Disconnected),
                MonitorEvent::Snapshot { changes, .. } => {
                    self.queue.push_back(InterfaceEvent::Resync(self.current()));
                    self.queue.extend(changes.iter().filter_map(convert));
                }
                MonitorEvent::Update(changes) => {
                    self.queue.extend(changes.iter().filter_map(convert));
                }
            }
        }
    }

    /// The interfaces as currently replicated (may be ahead of the events taken so far).
    pub fn current(&self) -> Vec<InterfaceState> {
        self.monitor.with_replica(|r| {
            r.table("Interface")
                .map(|t| {
                    t.iter()
                        .map(|(u, row)| InterfaceState::from_row(u.clone(), row))
                        .collect()
                })
                .unwrap_or_default()
        })
    }
}

fn convert(c: &RowChange) -> Option<InterfaceEvent> {
    let state = |r: &Option<Row>| {
        r.as_ref()
            .map(|r| InterfaceState::from_row(c.uuid.clone(), r))
    };
    match c.kind {
        ChangeKind::Insert => state(&c.new).map(InterfaceEvent::Added),
        ChangeKind::Delete => state(&c.old).map(InterfaceEvent::Removed),
        ChangeKind::Modify => {
            let (old, new) = (state(&c.old)?, state(&c.new)?);
            (old != new).then_some(InterfaceEvent::Changed { old, new })
        }
    }
}

impl Client {
    /// Starts an [`InterfaceWatcher`] on this server.
    pub fn watch_interfaces(&self) -> InterfaceWatcher {
        InterfaceWatcher::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Atom;

    #[test]
    fn reads_state_from_row_and_converts_changes() {
        let u = Uuid::parse("11111111-1111-1111-1111-111111111111").expect("uuid");
        let mut row = Row::new();
        row.insert("name".into(), Value::from("tap1"));
        row.insert(
            "external_ids".into(),
            Value::string_map([("iface-id", "p1"), ("attached-mac", "fa:16:3e:00:00:01")]),
        );
        row.insert("ofport".into(), Value::empty_set());
        let before = InterfaceState::from_row(u.clone(), &row);
        assert_eq!(before.iface_id.as_deref(), Some("p1"));
        assert_eq!(before.attached_mac.as_deref(), Some("fa:16:3e:00:00:01"));
        assert_eq!(before.ofport, None);
        assert_eq!(before.ofport(), None);

        let mut after = row.clone();
        after.insert("ofport".into(), Value::Set([Atom::Integer(7)].into()));
        after.insert("link_state".into(), Value::from("up"));
        let ev = convert(&RowChange {
            table: "Interface".into(),
            uuid: u.clone(),
            kind: ChangeKind::Modify,
            old: Some(row.clone()),
            new: Some(after.clone()),
        });
        match ev {
            Some(InterfaceEvent::Changed { old, new }) => {
                assert_eq!(old, before);
                assert_eq!(new.ofport(), Some(7));
                assert_eq!(new.link_state.as_deref(), Some("up"));
            }
            other => panic!("unexpected {other:?}"),
        }

        let failed = {
            let mut r = row.clone();
            r.insert("ofport".into(), Value::from(-1i64));
            InterfaceState::from_row(u.clone(), &r)
        };
        assert_eq!(failed.ofport, Some(-1));
        assert_eq!(failed.ofport(), None);

        // A modify that leaves the watched state equal yields nothing.
        assert_eq!(
            convert(&RowChange {
                table: "Interface".into(),
                uuid: u,
                kind: ChangeKind::Modify,
                old: Some(row.clone()),
                new: Some(row),
            }),
            None
        );
    }
}
