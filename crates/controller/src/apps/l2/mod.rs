//! L2 lookup: in the port's network, its MAC leads to its key in reg7; broadcast,
//! multicast and unknown unicast go to the network's flood group (the local ports plus one
//! copy per other host with ports in the network). Frames that came by tunnel are flooded
//! to the local ports only, so no frame is sent back into the underlay.

use super::{App, Cx, Flow, Group, Host, Object, Owner, Sink, deliver, flow, is_local};
use crate::pipeline::{App as AppId, table};
use crate::reconcile::GroupBody;
use crate::view::{Touched, View};
use model::{Network, Port, Table};
use openflow::Instruction;
use openflow::action::Action;
use openflow::flow::{Bucket, GroupType};
use openflow::oxm::Match;
use std::collections::BTreeSet;

const PRIO_UNICAST: u16 = 100;
const PRIO_FLOOD: u16 = 1;

/// The bit that tells the flood group of a network's local ports from the one that also
/// reaches other hosts (network keys use 24 bits).
const LOCAL_ONLY: u32 = 1 << 24;

/// The group that floods a frame of the network with key `key` to every port it has.
pub fn flood_group(key: u32) -> u32 {
    key
}

/// The group that floods to this host's ports of the network only.
pub fn local_flood_group(key: u32) -> u32 {
    key | LOCAL_ONLY
}

/// The L2 entry of any port (local or remote) of a network this host has.
pub fn compile(view: &View, p: &Port) -> Vec<Flow> {
    let Some(net) = view.networks.get(&p.network_id) else {
        return Vec::new();
    };
    // A router interface's MAC leads to L3 instead (apps/l3.rs).
    if p.device_owner == model::owner::ROUTER_INTERFACE {
        return Vec::new();
    }
    vec![deliver::to_port(
        table::L2,
        PRIO_UNICAST,
        AppId::L2,
        net,
        p,
        table::EGRESS,
    )]
}

/// Whether this host floods in `net`: it has a port there.
fn floods(view: &View, host: &Host, net: &Network) -> bool {
    view.ports_of(&net.meta.id).any(|p| is_local(view, host, p))
}

/// The flood flows of a network this host has ports in: what no unicast entry claims goes
/// to the flood group (from local ports) or the local flood group (from tunnels).
pub fn network(view: &View, host: &Host, net: &Network) -> Vec<Flow> {
    if !floods(view, host, net) {
        return Vec::new();
    }
    let key = net.unique_key;
    let to = |t: u8, group: u32| {
        flow(
            t,
            PRIO_FLOOD,
            Match::new().metadata(u64::from(key)),
            AppId::L2,
            key,
            [Instruction::ApplyActions(vec![Action::Group(group)])],
        )
    };
    vec![
        to(table::L2, flood_group(key)),
        to(table::FROM_TUNNEL, local_flood_group(key)),
    ]
}

/// The two flood groups of a network this host has ports in. A local port's bucket takes
/// the frame through ingress (security groups, then dispatch; OVS drops the copy for the
/// port it came in by); a remote host's bucket sends one copy into the tunnel to it.
pub fn groups(view: &View, host: &Host, net: &Network) -> Vec<Group> {
    if !floods(view, host, net) {
        return Vec::new();
    }
    // The local ports' buckets go in both groups: made once each.
    let (mut local, mut all) = (Vec::new(), Vec::new());
    let mut remote_hosts = BTreeSet::new();
    for p in view.ports_of(&net.meta.id) {
        if host.plugged(&p.meta.id) {
            let b = deliver::local_bucket(p);
            all.push(b.clone());
            local.push(b);
        } else if p.binding_host_id != view.chassis && !p.binding_host_id.is_empty() {
            remote_hosts.insert(p.binding_host_id.as_str());
        }
    }
    // A provider network reaches the other hosts and the outside on the physical network.
    all.extend(deliver::remote_buckets(view, host, net, remote_hosts));
    let group = |id: u32, buckets: Vec<Bucket>| Group {
        id,
        body: GroupBody {
            group_type: GroupType::All,
            buckets,
        },
    };
    vec![
        group(flood_group(net.unique_key), all),
        group(local_flood_group(net.unique_key), local),
    ]
}

pub struct L2;

impl App for L2 {
    fn id(&self) -> AppId {
        AppId::L2
    }

    fn tables(&self) -> &'static [u8] {
        &[table::L2, table::FROM_TUNNEL]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Port(p) => out.extend(compile(cx.view, p)),
            Object::Network(n) => {
                out.extend(network(cx.view, cx.host, n));
                for g in groups(cx.view, cx.host, n) {
                    out.group(g);
                }
            }
            _ => {}
        }
    }

    /// A port decides whether its network has a port here (flooding, the flood groups'
    /// buckets); the view reports the network it left as touched too.
    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        if changed.table == Table::Port
            && let Some(p) = view.ports.get(&changed.id)
        {
            out.push(Touched {
                table: Table::Network,
                id: p.network_id.clone(),
            });
        }
    }
}
