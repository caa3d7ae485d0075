//! The conntrack zone of each network with a local port, allocated on this host.

use crate::apps::Host;
use crate::view::{Touched, View};
use model::Table;
use std::collections::BTreeSet;

/// The local conntrack zone of a network on this host: the lowest free number, given to
/// every network with a port bound here and taken back when its last one leaves. Zone 0
/// (the default zone) is never used.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ZoneChanges {
    /// Networks whose conntrack flows name a zone that was given or taken back, and their
    /// ports (whose connections live in it).
    pub touched: Vec<Touched>,
    /// Zones taken back (their conntrack entries should be flushed before reuse).
    pub released: Vec<u16>,
}

/// Brings `host.zones` in line with the networks that have local ports.
pub fn assign_zones(view: &View, host: &mut Host) -> ZoneChanges {
    let mut out = ZoneChanges::default();
    let needed: BTreeSet<&str> = view.local_ports().map(|p| p.network_id.as_str()).collect();
    let gone: Vec<String> = host
        .zones
        .keys()
        .filter(|n| !needed.contains(n.as_str()))
        .cloned()
        .collect();
    for n in gone {
        if let Some(z) = host.zones.remove(&n) {
            out.released.push(z);
            out.touched.push(Touched {
                table: Table::Network,
                id: n,
            });
        }
    }
    let mut used: BTreeSet<u16> = host.zones.values().copied().collect();
    for n in needed {
        if host.zones.contains_key(n) {
            continue;
        }
        let Some(z) = (1..=u16::MAX).find(|z| !used.contains(z)) else {
            tracing::error!(network = n, "no conntrack zone left");
            continue;
        };
        used.insert(z);
        host.zones.insert(n.to_string(), z);
        out.touched.push(Touched {
            table: Table::Network,
            id: n.to_string(),
        });
        out.touched.extend(view.ports_of(n).map(|p| Touched {
            table: Table::Port,
            id: p.meta.id.clone(),
        }));
    }
    out
}
