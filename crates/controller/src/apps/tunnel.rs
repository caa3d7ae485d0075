//! Tunnels between hosts: a frame for a port on another host leaves by this host's tunnel
//! port of the network's type, with the network's segmentation id as key and that host's
//! address as destination; a frame arriving by tunnel is put in its network by key and
//! delivered to the local port its MAC names.

use super::{Flow, Host, flow};
use crate::pipeline::{App, table};
use crate::view::View;
use model::{Network, Port};
use openflow::Instruction;
use openflow::action::Action;
use openflow::oxm::{Field, Match};
use std::net::IpAddr;

const PRIO: u16 = 100;

/// The tunnel port of this host for the network's type (geneve, vxlan, gre).
fn tunnel_port(host: &Host, net: &Network) -> Option<u32> {
    host.tunnels.get(net.network_type.as_str()).copied()
}

/// Arrivals: the network of a frame by its key, for networks with a port on this host.
pub fn network(view: &View, host: &Host, net: &Network) -> Vec<Flow> {
    let (Some(ofport), Some(seg)) = (tunnel_port(host, net), net.segmentation_id) else {
        return Vec::new();
    };
    if !view
        .ports_of(&net.meta.id)
        .any(|p| super::is_local(view, host, p))
    {
        return Vec::new();
    }
    vec![flow(
        table::CLASSIFY,
        PRIO,
        Match::new().in_port(ofport).tun_id(u64::from(seg)),
        App::Tunnel,
        net.unique_key,
        vec![
            Instruction::WriteMetadata {
                metadata: u64::from(net.unique_key),
                mask: u64::MAX,
            },
            Instruction::GotoTable(table::FROM_TUNNEL),
        ],
    )]
}

/// For a local port: frames from tunnels addressed to it. For a remote port: frames to it
/// go into the tunnel to its host.
pub fn port(view: &View, host: &Host, p: &Port) -> Vec<Flow> {
    let Some(net) = view.networks.get(&p.network_id) else {
        return Vec::new();
    };
    if !net.network_type.is_tunnel() {
        return Vec::new();
    }
    let key = p.unique_key;
    if super::is_local(view, host, p) {
        if !host.ofports.contains_key(&p.meta.id) {
            return Vec::new();
        }
        return vec![super::l2::to_port(
            table::FROM_TUNNEL,
            PRIO,
            App::Tunnel,
            net,
            p,
            table::INGRESS_CT,
        )];
    }
    let Some(actions) = to_chassis(view, host, net, &p.binding_host_id) else {
        return Vec::new();
    };
    vec![flow(
        table::EGRESS,
        PRIO,
        Match::new().masked(Field::Reg(7), key, u32::MAX),
        App::Tunnel,
        key,
        [Instruction::ApplyActions(actions)],
    )]
}

/// The actions that send a frame of `net` to the host `chassis` over this host's tunnel
/// (`None` when that host or this host's tunnel port of the type is not known yet).
pub fn to_chassis(view: &View, host: &Host, net: &Network, chassis: &str) -> Option<Vec<Action>> {
    let c = view.chassis_by_name.get(chassis)?;
    let ofport = tunnel_port(host, net)?;
    let seg = net.segmentation_id?;
    let IpAddr::V4(dst) = c.ip else {
        return None;
    };
    Some(vec![
        Action::set_field(Field::TunId, u64::from(seg)),
        Action::set_field(Field::TunIpv4Dst, u32::from(dst)),
        Action::output(ofport),
    ])
}
