//! What this host holds and serves, as the apps ask it: its ports (plugged or bound here),
//! the routers it routes for, the provider networks it serves. Shared by the apps so that
//! each answers these questions the same way.

use super::{Host, deliver};
use crate::view::View;
use model::{Network, Port, Router, owner};
use std::collections::HashMap;

/// Whether port `p` is this host's: plugged here (what the datapath knows, before the
/// binding has made its round trip through the store) or bound here.
pub fn is_local(view: &View, host: &Host, p: &Port) -> bool {
    host.plugged(&p.meta.id) || p.binding_host_id == view.chassis
}

/// Ports that belong to a router rather than to a VM.
pub fn is_router_port(p: &Port) -> bool {
    p.device_owner == owner::ROUTER_INTERFACE || p.device_owner == owner::ROUTER_GATEWAY
}

/// Whether this host routes for the router: it has a local port on one of its networks.
pub fn routes_for(view: &View, r: &Router) -> bool {
    r.interfaces.iter().any(|i| {
        view.ports_of(&i.network_id)
            .any(|p| p.binding_host_id == view.chassis && !is_router_port(p))
    })
}

/// Whether `ip` is on one of the subnets of the router's gateway (an extra route's next hop
/// outside, rather than behind one of its interfaces).
pub fn on_gateway_subnet(view: &View, r: &Router, ip: &std::net::IpAddr) -> bool {
    r.external_gateway.as_ref().is_some_and(|g| {
        g.external_fixed_ips
            .iter()
            .filter_map(|f| view.subnets.get(&f.subnet_id))
            .any(|s| s.cidr.contains(ip))
    })
}

/// The routers with an interface on `network`.
pub fn routers_on<'a>(view: &'a View, network: &'a str) -> impl Iterator<Item = &'a Router> {
    view.routers
        .values()
        .filter(move |r| r.interfaces.iter().any(|i| i.network_id == network))
}

/// Whether this host serves the provider network: it is mapped here and a local port is on
/// it, or it is the gateway network of a router this host routes for.
pub fn serves(view: &View, host: &Host, net: &Network) -> bool {
    deliver::patch_port(host, net).is_some()
        && (view.ports_of(&net.meta.id).any(|p| is_local(view, host, p))
            || view.routers.values().any(|r| {
                r.external_gateway
                    .as_ref()
                    .is_some_and(|g| g.network_id == net.meta.id)
                    && routes_for(view, r)
            }))
}

/// This host's ports by datapath key, as packet-in handlers look them up (a cookie carries
/// the key): a cache of earlier look-ups, checked against the view on every use (it may
/// have changed since), else a scan of the view.
#[derive(Debug, Default)]
pub struct LocalPorts {
    by_key: HashMap<u32, String>,
}

impl LocalPorts {
    /// The port with key `key` bound to this chassis.
    pub fn get<'v>(&mut self, view: &'v View, key: u32) -> Option<&'v Port> {
        let ours = |p: &Port| p.unique_key == key && p.binding_host_id == view.chassis;
        if let Some(p) = self.by_key.get(&key).and_then(|id| view.ports.get(id))
            && ours(p)
        {
            return Some(p);
        }
        let found = view.ports.values().find(|p| ours(p));
        match found {
            Some(p) => {
                if self.by_key.len() > 65_536 {
                    self.by_key.clear();
                }
                self.by_key.insert(key, p.meta.id.clone());
            }
            None => {
                self.by_key.remove(&key);
            }
        }
        found
    }
}
