//! The apps: one folder per feature, each a pure compiler from the local view (and what
//! the host knows) to the flows and groups of one NB object, what those flows depend on,
//! and, where the feature answers packets itself, its packet-in handler. [`APPS`] is the
//! one list of them. Every flow and group is compiled for one owner, the NB object it
//! comes from, so a change recompiles only the owners it affects; [`Desired`] keeps them
//! by owner.
//!
//! Shared rooms, not features: [`deliver`] (to a port, another host, the physical
//! network), [`here`] (what this host holds and serves), [`rate`] (token buckets),
//! [`Sink`] (where an app's flows go, checked against the pipeline).

pub mod arp;
pub mod classify;
pub mod deliver;
mod desired;
pub mod dhcp;
pub mod dhcpv6;
pub mod dns;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod fwaas;
pub mod here;
pub mod l2;
pub mod l3;
pub mod lb;
pub mod mcast;
pub mod metadata;
pub mod nat;
pub mod nd;
pub mod port_security;
pub mod provider;
pub mod punt;
pub mod qos;
pub mod ra;
pub mod rate;
pub mod security_groups;
pub mod sfc;
mod sink;
pub mod taas;
pub mod trunk;
pub mod tunnel;

pub use desired::Desired;
pub use here::is_local;
pub use punt::{Handler, Punt, Punted};
pub use sink::Sink;

use crate::pipeline::{App as AppId, Cookie, may_goto, table};
use crate::reconcile::{FlowBody, FlowKey, GroupBody, Hasher, MeterBody};
use crate::view::{Touched, View};
use model::{FloatingIp, Network, Port, Router, SecurityGroupRule, Table};
use openflow::Instruction;
use openflow::oxm::Match;
use std::collections::{BTreeMap, HashMap};

/// What the host knows that the NB store does not: the OpenFlow port each plugged VM
/// interface got (from the OVSDB Interface watcher, by `iface-id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Host {
    /// Hashed, not ordered: every app of every local port looks its port up here.
    pub ofports: HashMap<String, u32, Hasher>,
    /// The OpenFlow port of this host's tunnel port of each type (`geneve`, `vxlan`, ...).
    pub tunnels: BTreeMap<String, u32>,
    /// The conntrack zone of each network with a local port, allocated on this host
    /// (`security_groups::assign_zones`).
    pub zones: BTreeMap<String, u16>,
    /// The OpenFlow port of the patch port to each mapped physical network's bridge.
    pub provider_ports: BTreeMap<String, u32>,
    /// MACs of next hops on external networks, by (network id, address), learnt from ARP.
    pub neighbours: BTreeMap<(String, std::net::IpAddr), [u8; 6]>,
    /// Interfaces with an `iface-id` that ovs-vswitchd has not given an OpenFlow port yet:
    /// not plugged for the flows, but their ports are looked up and their networks
    /// followed already, while ovs-vswitchd reconfigures (a few hundred ms for hundreds).
    pub announced: std::collections::BTreeSet<String>,
    /// The metadata service's internal port and address range.
    pub metadata: metadata::HostSide,
    /// Trunk subports wired on this host, by port id (`trunk::wire`): they have no
    /// interface of their own; their frames pass through their parent's, tagged.
    pub subports: HashMap<String, trunk::Wired, Hasher>,
    /// Multicast listeners learnt by snooping, and the numbers of their groups.
    pub mcast: mcast::State,
}

impl Host {
    /// Whether port `id` is plugged here: an interface of its own, or a trunk subport
    /// wired through its parent's.
    pub fn plugged(&self, id: &str) -> bool {
        self.ofports.contains_key(id) || self.subports.contains_key(id)
    }

    /// The OpenFlow port the frames of port `id` come in by (a subport's: its parent's).
    pub fn door(&self, id: &str) -> Option<u32> {
        self.ofports
            .get(id)
            .or_else(|| self.subports.get(id).map(|w| &w.ofport))
            .copied()
    }
}

/// The object a flow was compiled for.
pub type Owner = Touched;

/// One desired flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub key: FlowKey,
    pub body: FlowBody,
}

/// One desired group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: u32,
    pub body: GroupBody,
}

/// One desired meter (its id is the owner's to choose: a port's key and direction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    pub id: u32,
    pub body: MeterBody,
}

/// What one owner compiled, from every app.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    pub flows: Vec<Flow>,
    pub groups: Vec<Group>,
    pub meters: Vec<Meter>,
}

/// A flow in `table` at `priority`, cookie naming `app` and the object `key`.
pub fn flow(
    table: u8,
    priority: u16,
    m: Match,
    app: AppId,
    key: u32,
    instructions: impl AsRef<[Instruction]>,
) -> Flow {
    keyed_flow(FlowKey::new(table, priority, m), app, key, instructions)
}

/// [`flow`] with its key already made.
/// (Instructions by reference: an array made on the stack does as well as a vector.)
pub fn keyed_flow(
    flow_key: FlowKey,
    app: AppId,
    key: u32,
    instructions: impl AsRef<[Instruction]>,
) -> Flow {
    Flow {
        key: flow_key,
        body: FlowBody::new(Cookie { app, key }.encode(), instructions.as_ref()),
    }
}

/// The owner of the flows every pipeline has whatever the topology.
pub fn base_owner() -> Owner {
    Touched {
        table: Table::Chassis,
        id: String::new(),
    }
}

/// What an app is asked to compile: one owner, as the view holds it.
#[derive(Debug, Clone, Copy)]
pub enum Object<'a> {
    /// The flows every pipeline has.
    Base,
    Network(&'a Network),
    Port(&'a Port),
    Router(&'a Router),
    FloatingIp(&'a FloatingIp),
    Rule(&'a SecurityGroupRule),
    LoadBalancer(&'a model::LoadBalancer),
    PortChain(&'a model::PortChain),
}

/// What an app compiles from: the local view and what the host knows.
#[derive(Debug, Clone, Copy)]
pub struct Cx<'a> {
    pub view: &'a View,
    pub host: &'a Host,
}

/// The settings of the apps' packet-in handlers (from the controller's command line).
#[derive(Debug, Clone)]
pub struct Settings {
    /// ICMP errors a router port answers per second.
    pub icmp_rate: u32,
    pub dhcp: dhcp::responder::Config,
    pub dns: dns::responder::Config,
    /// The metadata server's address range (`metadata::HostSide::range`).
    pub metadata_range: ipnet::Ipv4Net,
    pub mcast: mcast::snoop::Config,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            icmp_rate: l3::punt::DEFAULT_RATE,
            dhcp: dhcp::responder::Config::default(),
            dns: dns::responder::Config::default(),
            metadata_range: metadata::DEFAULT_RANGE,
            mcast: mcast::snoop::Config::default(),
        }
    }
}

/// One feature of the pipeline.
pub trait App: Sync {
    /// The app's id: the top byte of its flows' cookies, and whom packet-ins go to.
    fn id(&self) -> AppId;
    /// The tables it writes (every flow is checked against them in debug builds).
    fn tables(&self) -> &'static [u8];
    /// The flows and groups of one owner. Pure: the same view and host give the same flows.
    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>);
    /// The owners, beyond the changed object itself, whose flows this app derives from
    /// `changed` (read from the view after the change; a deleted object is gone from it).
    fn affected(&self, _view: &View, _changed: &Touched, _out: &mut Vec<Owner>) {}
    /// Its packet-in handler, with fresh state, if it answers packets itself.
    fn handler(&self, _settings: &Settings) -> Option<Box<dyn Handler>> {
        None
    }
}

/// Every app, in the order their flows are compiled.
pub static APPS: &[&dyn App] = &[
    &classify::Classify,
    &port_security::PortSecurity,
    &l2::L2,
    &arp::Arp,
    &nd::Nd,
    &tunnel::Tunnel,
    &dhcp::Dhcp,
    &security_groups::SecurityGroups,
    &provider::Provider,
    &nat::NorthSouth,
    &l3::L3,
    &dhcpv6::Dhcpv6,
    &ra::Ra,
    &dns::Dns,
    &metadata::Metadata,
    &trunk::Trunk,
    &mcast::Mcast,
    &lb::Lb,
    &qos::Qos,
    &sfc::Sfc,
    &fwaas::Fwaas,
    &taas::Taas,
];

/// The object an owner names, if the view has it.
fn object<'a>(view: &'a View, owner: &Owner) -> Option<Object<'a>> {
    Some(match owner.table {
        Table::Chassis if owner.id.is_empty() => Object::Base,
        Table::Port => Object::Port(view.ports.get(&owner.id)?),
        Table::Network => Object::Network(view.networks.get(&owner.id)?),
        Table::Router => Object::Router(view.routers.get(&owner.id)?),
        Table::FloatingIp => Object::FloatingIp(view.floating_ips.get(&owner.id)?),
        Table::SecurityGroupRule => Object::Rule(view.rules.get(&owner.id)?),
        Table::LoadBalancer => Object::LoadBalancer(view.loadbalancers.get(&owner.id)?),
        Table::SfcPortChain => Object::PortChain(view.port_chains.get(&owner.id)?),
        _ => return None,
    })
}

/// All flows, groups and meters of one owner, from every app.
pub fn compile_owner(view: &View, host: &Host, owner: &Owner) -> Compiled {
    let mut c = Compiled::default();
    if let Some(obj) = object(view, owner) {
        let cx = Cx { view, host };
        for app in APPS {
            app.compile(cx, obj, &mut Sink::new(*app, &mut c));
        }
        // Past the sink: the flow is meant to break the pipeline's rules.
        #[cfg(feature = "fault-injection")]
        if let Object::Port(p) = obj {
            fault::compile(cx, p, &mut c.flows);
        }
    }
    c
}

/// All flows of one owner.
pub fn compile(view: &View, host: &Host, owner: &Owner) -> Vec<Flow> {
    compile_owner(view, host, owner).flows
}

/// Every owner the view has flows for.
pub fn owners(view: &View) -> Vec<Owner> {
    std::iter::once(base_owner())
        .chain(view.networks.keys().map(|id| Touched {
            table: Table::Network,
            id: id.clone(),
        }))
        .chain(view.ports.keys().map(|id| Touched {
            table: Table::Port,
            id: id.clone(),
        }))
        .chain(view.routers.keys().map(|id| Touched {
            table: Table::Router,
            id: id.clone(),
        }))
        .chain(view.rules.keys().map(|id| Touched {
            table: Table::SecurityGroupRule,
            id: id.clone(),
        }))
        .chain(view.floating_ips.keys().map(|id| Touched {
            table: Table::FloatingIp,
            id: id.clone(),
        }))
        .chain(view.loadbalancers.keys().map(|id| Touched {
            table: Table::LoadBalancer,
            id: id.clone(),
        }))
        .chain(view.port_chains.keys().map(|id| Touched {
            table: Table::SfcPortChain,
            id: id.clone(),
        }))
        .collect()
}

/// The owners whose flows depend on a changed object: the object itself when it is an
/// owner, the ports of a network (every port's flows read its network), and what each app
/// derives from it.
pub fn affected(view: &View, touched: &Touched) -> Vec<Owner> {
    let mut out = Vec::new();
    match touched.table {
        Table::Network => {
            out.push(touched.clone());
            out.extend(view.ports_of(&touched.id).map(|p| Touched {
                table: Table::Port,
                id: p.meta.id.clone(),
            }));
        }
        Table::Port
        | Table::Router
        | Table::FloatingIp
        | Table::SecurityGroupRule
        | Table::LoadBalancer
        | Table::SfcPortChain => out.push(touched.clone()),
        _ => {}
    }
    for app in APPS {
        app.affected(view, touched, &mut out);
    }
    out
}

/// Checks a group against the pipeline declaration: a bucket may only resubmit to a
/// declared table.
pub fn check_group(g: &Group) -> Result<(), String> {
    for b in &g.body.buckets {
        for a in &b.actions {
            if let openflow::Action::Resubmit { table: t, .. } = a
                && table(*t).is_none()
            {
                return Err(format!("group {} resubmits to undeclared table {t}", g.id));
            }
        }
    }
    Ok(())
}

/// Checks a flow against the pipeline declaration: its table exists and every goto is
/// to a table it may continue to.
pub fn check(f: &Flow) -> Result<(), String> {
    let t = f.key.table();
    if table(t).is_none() {
        return Err(format!("flow in undeclared table {t}"));
    }
    for i in &f.body.instructions() {
        if let Instruction::GotoTable(n) = i
            && !may_goto(t, *n)
        {
            return Err(format!("table {t} may not go to table {n}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
