//! The hosts of a trace: each host's pipeline compiled from a snapshot of the NB store by
//! the controller's own compiler, loaded into a fake switch, hosts joined by their tunnels.

use controller::apps::security_groups::assign_zones;
use controller::apps::{Desired, Host};
use controller::engine::ports::interface_event;
use controller::reconcile::{self, GroupTable};
use controller::view::View;
use fake_switch::{Network, Switch};
use model::{Chassis, Port};
use nbdb::Snapshot;
use ovsdb::{InterfaceEvent, InterfaceState, Uuid};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Where the made-up OpenFlow ports of a compiled host start: VM ports count from 1,
/// provider patch ports and tunnel ports from these (below OpenFlow's OFPP_MAX).
const PATCH_BASE: u32 = 0xfd00;
const TUNNEL_BASE: u32 = 0xfe00;

/// An interface of a host, as its controller would see it in OVSDB.
#[derive(Debug, Clone)]
pub struct Iface {
    pub name: String,
    pub iface_id: Option<String>,
    pub ofport: u32,
}

impl Iface {
    fn state(&self) -> InterfaceState {
        InterfaceState {
            uuid: Uuid::nil(),
            name: self.name.clone(),
            iface_type: String::new(),
            iface_id: self.iface_id.clone(),
            attached_mac: None,
            ofport: Some(i64::from(self.ofport)),
            admin_state: None,
            link_state: None,
            mac_in_use: None,
            external_ids: BTreeMap::new(),
        }
    }
}

/// One host's compiled pipeline.
pub struct Compiled {
    pub chassis: Chassis,
    pub view: View,
    pub host: Host,
    pub desired: Desired,
    /// OpenFlow port → what is plugged there (a port id, `tun-geneve`, `patch-int-…`).
    pub at: BTreeMap<u32, Iface>,
    /// The next hops taken as resolved here.
    pub assumed: Vec<String>,
}

impl Compiled {
    /// The OpenFlow port of a Neutron port plugged here.
    pub fn ofport_of(&self, port: &str) -> Option<u32> {
        self.host.ofports.get(port).copied()
    }
}

/// Every host that has ports, compiled, and the network of their switches.
pub struct World {
    /// Every object of the snapshot (bound to no host in particular).
    pub view: View,
    pub hosts: BTreeMap<String, Compiled>,
    pub net: Network,
    /// The next hops taken as resolved ([`NEXT_HOP_MAC`]), described.
    pub assumed: Vec<String>,
}

/// The MAC the trace gives a router's next hop on an external network. The controller
/// learns the real one by ARP or ND at run time and keeps it in memory only, so the store
/// cannot say it: the trace takes every next hop as resolved, the steady state (the tables
/// a packet goes through do not depend on the MAC's value). A host still resolving it
/// sends the packet to its controller instead, and `--real` then says they disagree.
pub const NEXT_HOP_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];

/// Gives every router's next hop on its external network [`NEXT_HOP_MAC`] on `host`.
fn assume_next_hops(view: &View, host: &mut Host) -> Vec<String> {
    use controller::apps::nat;
    let mut hops: Vec<(String, IpAddr)> = view
        .routers
        .values()
        .filter_map(|r| nat::nexthop(view, r))
        .map(|(net, ip)| (net.meta.id.clone(), IpAddr::V4(ip)))
        .collect();
    hops.extend(
        nat::ipv6::unresolved(view, host)
            .into_iter()
            .map(|(net, _, _, ip)| (net.meta.id.clone(), IpAddr::V6(ip))),
    );
    let mut out = Vec::new();
    for k in hops {
        if host.neighbours.insert(k.clone(), NEXT_HOP_MAC).is_none() {
            out.push(format!(
                "next hop {} of the external network is taken as resolved: its MAC is learnt by the controller at run time and is in no store",
                k.1
            ));
        }
    }
    out
}

/// The interfaces a host's controller would see, made up from the store: one per port
/// bound to it, a patch port per physical network in use, a tunnel port per type.
pub fn made_up_ifaces(view: &View, chassis: &Chassis) -> Vec<Iface> {
    let mut out = Vec::new();
    let mut bound: Vec<&Port> = view
        .ports
        .values()
        .filter(|p| p.binding_host_id == chassis.id)
        .collect();
    bound.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
    for (i, p) in bound.iter().enumerate() {
        out.push(Iface {
            name: format!("tap{}", &p.meta.id[..p.meta.id.len().min(11)]),
            iface_id: Some(p.meta.id.clone()),
            ofport: i as u32 + 1,
        });
    }
    let mut physnets: Vec<&str> = view
        .networks
        .values()
        .filter_map(|n| n.physical_network.as_deref())
        .collect();
    physnets.sort_unstable();
    physnets.dedup();
    for (i, physnet) in physnets.iter().enumerate() {
        out.push(Iface {
            name: format!("patch-int-{physnet}"),
            iface_id: None,
            ofport: PATCH_BASE + i as u32,
        });
    }
    for (i, t) in chassis.tunnel_types.iter().enumerate() {
        out.push(Iface {
            name: format!("tun-{}", t.as_str()),
            iface_id: None,
            ofport: TUNNEL_BASE + i as u32,
        });
    }
    out
}

/// Compiles one host from the snapshot with the given interfaces.
pub fn compile(snap: &Snapshot, chassis: &Chassis, ifaces: Vec<Iface>) -> Compiled {
    let mut view = View::new(&chassis.id);
    view.load(snap);
    let mut host = Host::default();
    let states = ifaces.iter().map(Iface::state).collect();
    interface_event(
        &mut host,
        &view,
        InterfaceEvent::Resync(states),
        &mut Vec::new(),
    );
    // What the controller derives next from the view and the plugged ports, as its
    // engine does before compiling: trunk subports wired through their plugged parents,
    // the numbers of multicast groups with listeners (those of other hosts, by their
    // records: the local ones learnt by snooping are no part of the store).
    controller::apps::trunk::wire(&view, &mut host);
    assign_zones(&view, &mut host);
    controller::apps::mcast::assign_ids(&view, &mut host);
    let assumed = assume_next_hops(&view, &mut host);
    let desired = Desired::full(&view, &host);
    let at = ifaces.into_iter().map(|i| (i.ofport, i)).collect();
    Compiled {
        chassis: chassis.clone(),
        view,
        host,
        desired,
        at,
        assumed,
    }
}

/// Loads a compiled host's flows and groups into a fresh fake switch. A flow the fake
/// switch cannot take is an error of the compiler: it is named, not skipped.
pub fn switch_of(c: &Compiled) -> Result<Switch, String> {
    let mut sw = Switch::new();
    let groups = c.desired.groups().diff(&GroupTable::default());
    for g in groups.before.iter().chain(groups.after.iter()) {
        sw.apply_group_mod(g)
            .map_err(|e| format!("{}: group {g:?}: {e}", c.chassis.id))?;
    }
    for (k, b) in c.desired.table().iter() {
        let m = reconcile::flow_mod(&(k, Some(b)));
        sw.apply_flow_mod(&m)
            .map_err(|e| format!("{}: flow {m:?}: {e}", c.chassis.id))?;
    }
    Ok(sw)
}

impl World {
    /// Compiles every host that has a chassis record; `real` replaces the made-up
    /// interfaces of one host by those its Open vSwitch really has.
    pub fn compile(snap: &Snapshot, real: Option<(&str, Vec<Iface>)>) -> Result<World, String> {
        let mut view = View::new("");
        view.load(snap);
        let mut hosts = BTreeMap::new();
        let mut net = Network::new();
        let mut assumed = Vec::new();
        let mut chassis: Vec<Chassis> = view.chassis_by_name.values().cloned().collect();
        chassis.sort_by(|a, b| a.id.cmp(&b.id));
        for ch in chassis {
            let ifaces = match &real {
                Some((name, ifaces)) if *name == ch.id => ifaces.clone(),
                _ => made_up_ifaces(&view, &ch),
            };
            let c = compile(snap, &ch, ifaces);
            let IpAddr::V4(ip) = ch.ip else {
                return Err(format!(
                    "host {} tunnels over IPv6 ({}): not simulated",
                    ch.id, ch.ip
                ));
            };
            net.add_host(&ch.id, ip);
            for (kind, p) in &c.host.tunnels {
                net.add_tunnel_port_of(&ch.id, *p, kind);
            }
            let sw = switch_of(&c)?;
            if let Some(s) = net.switch_mut(&ch.id) {
                *s = sw;
            }
            for a in &c.assumed {
                if !assumed.contains(a) {
                    assumed.push(a.clone());
                }
            }
            hosts.insert(ch.id.clone(), c);
        }
        Ok(World {
            view,
            hosts,
            net,
            assumed,
        })
    }

    /// The host a port is bound to, compiled.
    pub fn host_of(&self, port: &Port) -> Result<&Compiled, String> {
        if port.binding_host_id.is_empty() {
            return Err(format!(
                "port {} is bound to no host (binding:host_id is empty): nothing compiles its flows",
                port.meta.id
            ));
        }
        self.hosts.get(&port.binding_host_id).ok_or_else(|| {
            format!(
                "port {} is bound to host {}, which has no chassis record (its controller never registered)",
                port.meta.id, port.binding_host_id
            )
        })
    }
}
