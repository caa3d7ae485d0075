//! Delivery primitives shared by the apps: how a frame of a network reaches a port
//! (reg7), another host (its tunnel), or the physical network (the patch port, tagged for
//! VLAN), and the flood group buckets made of them; how the controller's own packets reach
//! a local port (a trunk subport's tagged, out of its parent). Policy-free: the apps decide when.

use super::{Flow, Host, flow};
use crate::pipeline::{App, reg, table};
use crate::view::View;
use model::{Network, NetworkType, Port};
use openflow::Instruction;
use openflow::action::Action;
use openflow::flow::Bucket;
use openflow::oxm::{Field, Match};
use std::net::IpAddr;

/// OpenFlow's "a VLAN tag is present" bit of `vlan_vid`.
pub const OFPVID_PRESENT: u16 = 0x1000;
const TPID_8021Q: u16 = 0x8100;

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

/// What table 0 does to a frame from a local port `key` of network `net_key`, `extra`
/// actions applied with it: reg6 and metadata set, on to port security. (Classification
/// and the QoS flows that shadow it for a limited or marked port say the same.)
pub fn classified(key: u32, net_key: u32, extra: Vec<Action>) -> Vec<Instruction> {
    let mut actions = vec![Action::load(reg::SRC_PORT, 0, 32, u64::from(key))];
    actions.extend(extra);
    vec![
        Instruction::ApplyActions(actions),
        Instruction::WriteMetadata {
            metadata: u64::from(net_key),
            mask: u64::MAX,
        },
        Instruction::GotoTable(table::PORT_SECURITY),
    ]
}

/// A flood bucket to a local port: through ingress (security groups, then dispatch).
pub fn local_bucket(p: &Port) -> Bucket {
    Bucket::new(vec![
        Action::load(reg::DST_PORT, 0, 32, u64::from(p.unique_key)),
        Action::resubmit_table(table::INGRESS_CT),
    ])
}

/// The tunnel port of this host for the network's type (geneve, vxlan, gre).
pub fn tunnel_port(host: &Host, net: &Network) -> Option<u32> {
    host.tunnels.get(net.network_type.as_str()).copied()
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

/// The patch port (on `br-int`) of the network's physical network, if it is a provider
/// network mapped on this host.
pub fn patch_port(host: &Host, net: &Network) -> Option<u32> {
    if !net.network_type.is_provider() {
        return None;
    }
    host.provider_ports
        .get(net.physical_network.as_deref()?)
        .copied()
}

/// The VLAN id of a VLAN network (`None` for flat).
pub fn vlan(net: &Network) -> Option<u16> {
    match net.network_type {
        NetworkType::Vlan => net.segmentation_id.map(|s| (s & 0x0fff) as u16),
        _ => None,
    }
}

/// The actions that send a frame of `net` out to its physical network (tagged for VLAN).
pub fn to_physical(host: &Host, net: &Network) -> Option<Vec<Action>> {
    let ofport = patch_port(host, net)?;
    let mut out = vlan(net).map(push_tag).unwrap_or_default();
    out.push(Action::output(ofport));
    Some(out)
}

/// The buckets that carry a flood of `net` beyond this host: one per host in `chassis`
/// over its tunnel (tunnelled networks), and the physical network (provider networks).
pub fn remote_buckets<'a>(
    view: &View,
    host: &Host,
    net: &Network,
    chassis: impl IntoIterator<Item = &'a str>,
) -> Vec<Bucket> {
    let mut out = Vec::new();
    if net.network_type.is_tunnel() {
        out.extend(
            chassis
                .into_iter()
                .filter_map(|c| to_chassis(view, host, net, c))
                .map(Bucket::new),
        );
    }
    out.extend(to_physical(host, net).map(Bucket::new));
    out
}

/// The actions that put an 802.1Q tag with VLAN `vid` on a frame.
pub fn push_tag(vid: u16) -> Vec<Action> {
    vec![
        Action::PushVlan(TPID_8021Q),
        Action::set_field(Field::VlanVid, vid | OFPVID_PRESENT),
    ]
}

/// The actions that send a frame the controller made to local port `id`: out of its
/// own OpenFlow port, or, for a trunk subport wired here, tagged with its VLAN out of
/// its parent's (as dispatch sends it). `None` when the port is not plugged here.
pub fn to_local(host: &Host, id: &str) -> Option<Vec<Action>> {
    if let Some(&ofport) = host.ofports.get(id) {
        return Some(vec![Action::output(ofport)]);
    }
    let w = host.subports.get(id)?;
    let mut out = push_tag(w.vid);
    out.push(Action::output(w.ofport));
    Some(out)
}

/// The actions that send the controller's answer to a frame from source port key `src`
/// (reg6) back out the OpenFlow port `in_port` it came in by: tagged again when the
/// sender is a trunk subport.
pub fn back(host: &Host, src: u32, in_port: u32) -> Vec<Action> {
    let mut out = host
        .subports
        .values()
        .find(|w| w.key == src && w.ofport == in_port)
        .map(|w| push_tag(w.vid))
        .unwrap_or_default();
    out.push(Action::output(in_port));
    out
}
