//! L2 lookup: in the port's network, its MAC leads to its key in reg7; broadcast,
//! multicast and unknown unicast go to the network's flood group (the local ports plus one
//! copy per other host with ports in the network). Frames that came by tunnel are flooded
//! to the local ports only, so no frame is sent back into the underlay.

use super::{Flow, Group, Host, flow, is_local, tunnel};
use crate::pipeline::{App, reg, table};
use crate::reconcile::GroupBody;
use crate::view::View;
use model::{Network, Port};
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

/// In table `t`: a frame of `net` to `p`'s MAC is for `p` (reg7 = its key); on to `next`.
/// L2 lookup, and arrivals from tunnels and physical networks, all say this.
pub fn to_port(t: u8, priority: u16, app: App, net: &Network, p: &Port, next: u8) -> Flow {
    flow(
        t,
        priority,
        Match::new()
            .metadata(u64::from(net.unique_key))
            .eth_dst(p.mac_address.0),
        app,
        p.unique_key,
        [
            Instruction::ApplyActions(vec![Action::load(
                reg::DST_PORT,
                0,
                32,
                u64::from(p.unique_key),
            )]),
            Instruction::GotoTable(next),
        ],
    )
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
    vec![to_port(
        table::L2,
        PRIO_UNICAST,
        App::L2,
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
            App::L2,
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
        if host.ofports.contains_key(&p.meta.id) {
            let b = Bucket::new(vec![
                Action::load(reg::DST_PORT, 0, 32, u64::from(p.unique_key)),
                Action::resubmit_table(table::INGRESS_CT),
            ]);
            all.push(b.clone());
            local.push(b);
        } else if p.binding_host_id != view.chassis && !p.binding_host_id.is_empty() {
            remote_hosts.insert(p.binding_host_id.as_str());
        }
    }
    if net.network_type.is_tunnel() {
        all.extend(
            remote_hosts
                .into_iter()
                .filter_map(|c| tunnel::to_chassis(view, host, net, c))
                .map(Bucket::new),
        );
    }
    all.extend(super::provider::flood_bucket(host, net));
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
