//! What the web console's topology shows, worked out from a view of the whole store and
//! the controllers' heartbeats: networks, routers, and each host with its ports. Pure.

use crate::db::wait;
use controller::view::View;
use model::{Port, PortStatus};

/// One port as a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRow {
    pub id: String,
    /// Its name, or its id when it has none.
    pub label: String,
    pub network: String,
    pub addresses: Vec<String>,
    pub status: &'static str,
}

/// One host: its chassis record and its controller's heartbeat, either of which may be
/// missing (a chassis whose controller never beat, a heartbeat before the chassis row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRow {
    pub name: String,
    pub tunnel_ip: Option<String>,
    pub alive: bool,
    pub applied: Option<u64>,
    /// Every change up to the store's last commit applied.
    pub realized: bool,
    pub ports: Vec<PortRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRow {
    pub id: String,
    pub label: String,
    pub cidrs: Vec<String>,
    pub external: bool,
    pub ports: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterRow {
    pub id: String,
    pub label: String,
    /// The networks it joins, by label, the external one marked.
    pub links: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub revision: u64,
    pub networks: Vec<NetworkRow>,
    pub routers: Vec<RouterRow>,
    pub hosts: Vec<HostRow>,
    /// Ports of VMs bound nowhere (the distributed ones, routers' and DHCP's, are left
    /// out: they live on every host).
    pub unbound: Vec<PortRow>,
}

fn label(name: &str, id: &str) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        name.to_string()
    }
}

fn status(s: PortStatus) -> &'static str {
    match s {
        PortStatus::Down => "DOWN",
        PortStatus::Build => "BUILD",
        PortStatus::Active => "ACTIVE",
        PortStatus::Error => "ERROR",
    }
}

fn row(view: &View, p: &Port) -> PortRow {
    PortRow {
        id: p.meta.id.clone(),
        label: label(&p.meta.name, &p.meta.id),
        network: view
            .networks
            .get(&p.network_id)
            .map_or_else(|| p.network_id.clone(), |n| label(&n.meta.name, &n.meta.id)),
        addresses: p
            .fixed_ips
            .iter()
            .map(|f| f.ip_address.to_string())
            .collect(),
        status: status(p.status),
    }
}

/// Whether the port is infrastructure that every host serves (`network:*` owners).
fn distributed(p: &Port) -> bool {
    p.device_owner.starts_with("network:")
}

/// The topology at `revision` (the store's last commit) from `view` (loaded from a
/// snapshot of every table) and the controllers' heartbeats.
pub fn topology(view: &View, revision: u64, hosts: &[wait::Host]) -> Topology {
    let networks = view
        .networks
        .values()
        .map(|n| NetworkRow {
            id: n.meta.id.clone(),
            label: label(&n.meta.name, &n.meta.id),
            cidrs: view
                .subnets
                .values()
                .filter(|s| s.network_id == n.meta.id)
                .map(|s| s.cidr.to_string())
                .collect(),
            external: n.external,
            ports: view.ports_of(&n.meta.id).count(),
        })
        .collect();
    let net_label = |id: &str| {
        view.networks
            .get(id)
            .map_or_else(|| id.to_string(), |n| label(&n.meta.name, &n.meta.id))
    };
    let routers = view
        .routers
        .values()
        .map(|r| {
            let mut links: Vec<String> = r
                .interfaces
                .iter()
                .map(|i| format!("{} ({})", net_label(&i.network_id), i.cidr))
                .collect();
            if let Some(g) = &r.external_gateway {
                links.push(format!("{} (gateway)", net_label(&g.network_id)));
            }
            RouterRow {
                id: r.meta.id.clone(),
                label: label(&r.meta.name, &r.meta.id),
                links,
            }
        })
        .collect();
    let mut names: Vec<&str> = view.chassis_by_name.keys().map(String::as_str).collect();
    names.extend(hosts.iter().map(|h| h.host.as_str()));
    names.sort_unstable();
    names.dedup();
    let hosts = names
        .into_iter()
        .map(|name| {
            let beat = hosts.iter().find(|h| h.host == name);
            HostRow {
                name: name.to_string(),
                tunnel_ip: view.chassis_by_name.get(name).map(|c| c.ip.to_string()),
                alive: beat.is_some_and(|h| h.alive),
                applied: beat.map(|h| h.applied),
                realized: beat.is_some_and(|h| h.alive && h.applied >= revision),
                ports: view
                    .ports
                    .values()
                    .filter(|p| p.binding_host_id == name)
                    .map(|p| row(view, p))
                    .collect(),
            }
        })
        .collect();
    let unbound = view
        .ports
        .values()
        .filter(|p| p.binding_host_id.is_empty() && !distributed(p))
        .map(|p| row(view, p))
        .collect();
    Topology {
        revision,
        networks,
        routers,
        hosts,
        unbound,
    }
}
