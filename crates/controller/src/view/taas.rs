//! The view's tap services and tap flows (tap-as-a-service). A tap flow has the source
//! port's network as topic and a service the service port's, so the hosts of both ports
//! get what concerns them by following their ports' networks. A source host also follows
//! the network of each service its local ports are tapped into, for the service port
//! (where it is bound; on this host or not). A port's copies follow the flows from it and
//! the services on it: their changes touch that port, whose owner compiles them.

use super::{Touched, View};
use model::{TapFlow, TapService};
use std::collections::BTreeSet;

impl View {
    /// The tap flows whose source is port `id`.
    pub fn taps_from<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a TapFlow> + 'a {
        self.tap_flows.values().filter(move |f| f.source_port == id)
    }

    /// The tap services on port `id`.
    pub fn tap_services_on<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a TapService> + 'a {
        self.tap_services.values().filter(move |s| s.port_id == id)
    }

    /// The port whose flows a tap flow or service's `id` change touches, if the view has
    /// it (the source port of a flow, the port of a service).
    pub(super) fn tap_port(&self, table: model::Table, id: &str) -> Option<String> {
        match table {
            model::Table::TapFlow => self.tap_flows.get(id).map(|f| f.source_port.clone()),
            model::Table::TapService => self.tap_services.get(id).map(|s| s.port_id.clone()),
            _ => None,
        }
    }

    /// The ports a tap flow or service's change touches: its port before and after.
    pub(super) fn tap_ports_touched(
        &self,
        table: model::Table,
        id: &str,
        before: Option<String>,
    ) -> Vec<Touched> {
        let ports: BTreeSet<String> = before.into_iter().chain(self.tap_port(table, id)).collect();
        ports
            .into_iter()
            .map(|id| Touched {
                table: model::Table::Port,
                id,
            })
            .collect()
    }

    /// The tap topics: the networks of the service ports of flows from local ports.
    pub(super) fn taas_topics(&self, topics: &mut BTreeSet<String>) {
        for p in self.local_ports() {
            topics.extend(
                self.taps_from(&p.meta.id)
                    .map(|f| f.service_network.clone()),
            );
        }
    }
}
