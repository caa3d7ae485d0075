//! The host's ports: which OpenFlow port each plugged interface got (from the OVSDB
//! watcher's events), taking a plugged port as bound here at once, and which statuses to
//! report (ACTIVE once its flows are in, DOWN once unplugged).

use crate::apps::{self, Host, Owner};
use crate::view::{Touched, View};
use model::{PortStatus, Table};
use ovsdb::{InterfaceEvent, InterfaceState};
use std::collections::{BTreeMap, BTreeSet};

/// Keeps the iface-id → ofport map, the tunnel and patch ports; returns the owners whose
/// flows depend on the event, and adds to `unplugged` the key of each known port that left
/// the switch.
pub fn interface_event(
    host: &mut Host,
    view: &View,
    ev: InterfaceEvent,
    unplugged: &mut Vec<u32>,
) -> Vec<Owner> {
    let mut touched = Vec::new();
    let mut set = |host: &mut Host, s: &InterfaceState, present: bool| {
        let ofport = s.ofport().filter(|_| present);
        // Provider patch ports and tunnel ports: every network and port may use them.
        let infra = match (
            s.name.strip_prefix("patch-int-"),
            s.name.strip_prefix("tun-"),
        ) {
            (Some(physnet), _) => Some((&mut host.provider_ports, physnet)),
            (None, Some(t)) => Some((&mut host.tunnels, t)),
            _ => None,
        };
        if s.name == apps::metadata::PORT_NAME {
            if host.metadata.ofport != ofport {
                host.metadata.ofport = ofport;
                touched.extend(apps::owners(view));
            }
            return;
        }
        if let Some((ports, name)) = infra {
            let changed = match ofport {
                Some(p) => ports.insert(name.to_string(), p) != Some(p),
                None => ports.remove(name).is_some(),
            };
            if changed {
                touched.extend(apps::owners(view));
            }
            return;
        }
        let Some(id) = s.iface_id.clone() else { return };
        // Announced until it has an OpenFlow port (followed already, not yet plugged).
        if present && ofport.is_none() {
            host.announced.insert(id.clone());
        } else {
            host.announced.remove(&id);
        }
        let changed = match ofport {
            Some(p) => host.ofports.insert(id.clone(), p) != Some(p),
            None => {
                let was = host.ofports.remove(&id).is_some();
                if was && let Some(p) = view.ports.get(&id) {
                    unplugged.push(p.unique_key);
                }
                was
            }
        };
        if changed {
            touched.push(Touched {
                table: Table::Port,
                id,
            });
        }
    };
    match ev {
        // An interface with no OpenFlow port yet is only announced (its port is followed
        // ahead of the flows); it changes no flow, which also keeps the events replayed
        // after a resync (older than the state it reported) from undoing it.
        InterfaceEvent::Added(s) if s.ofport().is_none() => {
            if let Some(id) = s
                .iface_id
                .as_ref()
                .filter(|id| !host.ofports.contains_key(*id))
            {
                host.announced.insert(id.clone());
            }
        }
        InterfaceEvent::Added(s) => set(host, &s, true),
        InterfaceEvent::Changed { old, new } => {
            if old.iface_id != new.iface_id {
                set(host, &old, false);
            }
            set(host, &new, true);
        }
        InterfaceEvent::Removed(s) => set(host, &s, false),
        InterfaceEvent::Resync(all) => {
            host.tunnels.clear();
            host.provider_ports.clear();
            let metadata_before = host.metadata.ofport.take();
            host.announced.clear();
            let before = std::mem::take(&mut host.ofports);
            for s in &all {
                set(host, s, true);
            }
            if metadata_before.is_some() && host.metadata.ofport.is_none() {
                touched.extend(apps::owners(view));
            }
            for id in before.keys().filter(|id| !host.ofports.contains_key(*id)) {
                touched.push(Touched {
                    table: Table::Port,
                    id: id.clone(),
                });
            }
        }
        InterfaceEvent::Disconnected => {}
    }
    touched
}

/// Takes the ports among `touched` that are plugged here but not bound here as bound here
/// in the view at once, so that their flows that need the binding (security groups, DHCP)
/// go in with the first commit. The port is this host's either way: the report writes the
/// binding, with the status ACTIVE, once the flows are committed (and again on later
/// changes if the store refuses it). Writing the binding first would put a store write,
/// or its round trip through the stream, before the flows while the VM is already
/// sending. The stream's copy replaces the view's when it comes back (the same binding:
/// nothing to recompile). Returns the owners to recompile.
pub fn claim(
    chassis: &str,
    view: &mut View,
    host: &Host,
    touched: &[Touched],
    reported: &mut BTreeMap<String, PortStatus>,
) -> Vec<Owner> {
    let mut owners = Vec::new();
    for t in touched {
        if t.table != Table::Port || !host.plugged(&t.id) {
            continue;
        }
        let Some(p) = view.ports.get_mut(&t.id) else {
            continue;
        };
        if p.binding_host_id == chassis {
            continue;
        }
        p.binding_host_id = chassis.to_string();
        // Not the store's status: one report is bound to correct with ACTIVE.
        p.status = PortStatus::Build;
        reported.remove(&t.id);
        owners.extend(apps::affected(view, t));
    }
    owners
}

/// The statuses to write now (this runs after the commit): plugged and bound here →
/// ACTIVE (ERROR when the switch refused its flows: it is among `failed`), plugged but
/// bound elsewhere (plugged before this controller started, not
/// claimed) → BUILD with the binding, bound here but unplugged → DOWN. What the store
/// already says, or what was written and not yet seen back, is not written again.
pub fn reports_due(
    chassis: &str,
    view: &View,
    host: &Host,
    failed: &BTreeSet<Owner>,
    reported: &mut BTreeMap<String, PortStatus>,
) -> Vec<(String, PortStatus)> {
    let failed: BTreeSet<&str> = failed
        .iter()
        .filter(|o| o.table == Table::Port)
        .map(|o| o.id.as_str())
        .collect();
    let mut want = Vec::new();
    for (id, p) in &view.ports {
        let plugged = host.plugged(id);
        let ours = p.binding_host_id == chassis;
        let status = match (plugged, ours) {
            (true, true) if failed.contains(id.as_str()) => PortStatus::Error,
            (true, true) => PortStatus::Active,
            (true, false) => PortStatus::Build,
            (false, true) => PortStatus::Down,
            (false, false) => continue,
        };
        if ours && p.status == status {
            reported.remove(id);
            continue;
        }
        if reported.get(id) != Some(&status) {
            want.push((id.clone(), status));
        }
    }
    want
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::PortStatus;

    fn port(id: &str, host: &str, status: PortStatus) -> model::Port {
        model::Port {
            meta: model::Meta {
                project_id: "p1".into(),
                ..model::fixtures::meta(id)
            },
            status,
            ..model::fixtures::port(id, "n1", 1, host)
        }
    }

    fn touched(id: &str) -> Touched {
        Touched {
            table: Table::Port,
            id: id.into(),
        }
    }

    #[test]
    fn a_plugged_port_is_compiled_as_bound_here_before_the_binding_is_written() {
        // "a" plugged here, unbound; "b" unbound, not plugged; "c" plugged, bound and
        // ACTIVE on another host (reported here before); "d" plugged, bound here.
        let mut view = View::new("host-a");
        for p in [
            port("a", "", PortStatus::Down),
            port("b", "", PortStatus::Down),
            port("c", "host-b", PortStatus::Active),
            port("d", "host-a", PortStatus::Active),
        ] {
            view.ports.insert(p.meta.id.clone(), p);
        }
        let mut host = Host::default();
        for (id, ofport) in [("a", 5), ("c", 6), ("d", 7)] {
            host.ofports.insert(id.into(), ofport);
        }
        let mut reported = BTreeMap::from([
            ("c".to_string(), PortStatus::Active),
            ("d".to_string(), PortStatus::Active),
        ]);
        let all: Vec<Touched> = ["a", "b", "c", "d"].map(touched).to_vec();

        let owners = claim("host-a", &mut view, &host, &all, &mut reported);

        for id in ["a", "c"] {
            assert_eq!(view.ports[id].binding_host_id, "host-a", "{id}");
            assert!(owners.contains(&touched(id)), "{id}: {owners:?}");
            // Not written yet: `report` writes ACTIVE (and the binding) after the commit.
            assert_eq!(view.ports[id].status, PortStatus::Build, "{id}");
            assert_eq!(reported.get(id), None, "{id}");
        }
        assert_eq!(view.ports["b"].binding_host_id, "");
        assert_eq!(view.ports["d"].status, PortStatus::Active);
        assert_eq!(reported.get("d"), Some(&PortStatus::Active));
        for id in ["b", "d"] {
            assert!(!owners.contains(&touched(id)), "{id}: {owners:?}");
        }
        // Only ports among what changed are taken here.
        let mut later = Host::default();
        later.ofports.insert("b".into(), 8);
        assert!(claim("host-a", &mut view, &later, &[], &mut reported).is_empty());
        assert_eq!(view.ports["b"].binding_host_id, "");
    }
}
