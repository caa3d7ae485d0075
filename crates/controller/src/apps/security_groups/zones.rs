//! The conntrack zone of each network with a local port, allocated on this host, and of
//! each router whose firewall groups this host enforces (`fwaas::router`).

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

/// The owner whose flows name the zone of `key`: a network, or a router's firewall.
fn owner(key: &str) -> Touched {
    match key.strip_prefix("router/") {
        Some(id) => Touched {
            table: Table::Router,
            id: id.to_string(),
        },
        None => Touched {
            table: Table::Network,
            id: key.to_string(),
        },
    }
}

/// Brings `host.zones` in line with the networks that have local ports and the routers
/// with a firewall group enforced here.
pub fn assign_zones(view: &View, host: &mut Host) -> ZoneChanges {
    let mut out = ZoneChanges::default();
    let mut needed: BTreeSet<String> = view.local_ports().map(|p| p.network_id.clone()).collect();
    needed.extend(
        view.routers
            .values()
            .filter(|r| crate::apps::fwaas::router::enforced(view, r))
            .map(|r| crate::apps::fwaas::router::zone_key(&r.meta.id)),
    );
    let gone: Vec<String> = host
        .zones
        .keys()
        .filter(|n| !needed.contains(n.as_str()))
        .cloned()
        .collect();
    for n in gone {
        if let Some(z) = host.zones.remove(&n) {
            out.released.push(z);
            out.touched.push(owner(&n));
        }
    }
    let mut used: BTreeSet<u16> = host.zones.values().copied().collect();
    for n in &needed {
        let n = n.as_str();
        if host.zones.contains_key(n) {
            continue;
        }
        let Some(z) = (1..=u16::MAX).find(|z| !used.contains(z)) else {
            tracing::error!(network = n, "no conntrack zone left");
            continue;
        };
        used.insert(z);
        host.zones.insert(n.to_string(), z);
        out.touched.push(owner(n));
        out.touched.extend(view.ports_of(n).map(|p| Touched {
            table: Table::Port,
            id: p.meta.id.clone(),
        }));
    }
    out
}
