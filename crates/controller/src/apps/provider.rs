//! Provider networks (flat and VLAN on a physical network): the door between `br-int` and
//! the operator's bridge of each mapped physical network (`--bridge-mappings`), through
//! the patch port the controller made. Frames from the patch port lose their tag and enter
//! their network at ingress NAT (floating IPs and SNAT return traffic), else go to the
//! local ports; frames of a provider network for no local port leave by the patch port,
//! tagged for VLAN networks. Other hosts' ports on a provider network are reached through
//! the physical network, never through a tunnel.

use super::{Flow, Host, flow, is_local};
use crate::pipeline::{App, reg, table};
use crate::view::View;
use model::{Network, NetworkType, Port};
use openflow::Instruction;
use openflow::action::Action;
use openflow::oxm::{Field, Match, OxmField};

const PRIO: u16 = 100;
/// Below every port's own entry in egress (local ports, tunnels).
const PRIO_EGRESS: u16 = 10;
/// What no ingress NAT flow claims goes on to the local ports.
const PRIO_INGRESS_DEFAULT: u16 = 1;

/// OpenFlow's "a VLAN tag is present" bit of `vlan_vid`.
const OFPVID_PRESENT: u16 = 0x1000;
const TPID_8021Q: u16 = 0x8100;

/// The name of the patch port on `br-int` for physical network `physnet`.
pub fn int_patch(physnet: &str) -> String {
    format!("patch-int-{physnet}")
}

/// The name of its peer on the physical network's bridge.
pub fn ex_patch(physnet: &str) -> String {
    format!("patch-ex-{physnet}")
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
fn vlan(net: &Network) -> Option<u16> {
    match net.network_type {
        NetworkType::Vlan => net.segmentation_id.map(|s| (s & 0x0fff) as u16),
        _ => None,
    }
}

/// The actions that send a frame of `net` out to its physical network (tagged for VLAN).
pub fn to_physical(host: &Host, net: &Network) -> Option<Vec<Action>> {
    let ofport = patch_port(host, net)?;
    let mut out = Vec::new();
    if let Some(vid) = vlan(net) {
        out.push(Action::PushVlan(TPID_8021Q));
        out.push(Action::set_field(Field::VlanVid, vid | OFPVID_PRESENT));
    }
    out.push(Action::output(ofport));
    Some(out)
}

/// Whether this host needs the provider network: it is mapped here and a local port is on
/// it, or it is the gateway network of a router this host routes for.
pub fn serves(view: &View, host: &Host, net: &Network) -> bool {
    patch_port(host, net).is_some()
        && (view.ports_of(&net.meta.id).any(|p| is_local(view, host, p))
            || view.routers.values().any(|r| {
                r.external_gateway
                    .as_ref()
                    .is_some_and(|g| g.network_id == net.meta.id)
                    && super::l3::wanted(view, r)
            }))
}

/// The network's own flows on a host that serves it: arrival from the patch port (tag
/// removed, network in metadata, on to ingress NAT), ingress NAT's default on to the local
/// ports, and departure of the frames no local port or tunnel takes.
pub fn network(view: &View, host: &Host, net: &Network) -> Vec<Flow> {
    if !serves(view, host, net) {
        return Vec::new();
    }
    let (Some(ofport), Some(out)) = (patch_port(host, net), to_physical(host, net)) else {
        return Vec::new();
    };
    let key = net.unique_key;
    let meta = u64::from(key);
    let (arrive, mut actions) = match vlan(net) {
        Some(vid) => (
            Match::new()
                .in_port(ofport)
                // Exact: OVS reads a full 13-bit mask back as none.
                .with(OxmField::new(
                    Field::VlanVid,
                    u128::from(vid | OFPVID_PRESENT),
                )),
            vec![Action::PopVlan],
        ),
        // Flat: untagged frames only.
        None => (
            Match::new()
                .in_port(ofport)
                .with(OxmField::new(Field::VlanVid, 0u128)),
            Vec::new(),
        ),
    };
    // No source port: nothing later mistakes the frame for a VM's.
    actions.push(Action::load(reg::SRC_PORT, 0, 32, 0));
    vec![
        flow(
            table::CLASSIFY,
            PRIO,
            arrive,
            App::Provider,
            key,
            vec![
                Instruction::ApplyActions(actions),
                Instruction::WriteMetadata {
                    metadata: meta,
                    mask: u64::MAX,
                },
                Instruction::GotoTable(table::INGRESS_NAT),
            ],
        ),
        flow(
            table::INGRESS_NAT,
            PRIO_INGRESS_DEFAULT,
            Match::new().metadata(meta),
            App::Provider,
            key,
            [Instruction::GotoTable(table::FROM_TUNNEL)],
        ),
        flow(
            table::EGRESS,
            PRIO_EGRESS,
            Match::new().metadata(meta),
            App::Provider,
            key,
            [Instruction::GotoTable(table::PROVIDER)],
        ),
        flow(
            table::PROVIDER,
            PRIO,
            Match::new().metadata(meta),
            App::Provider,
            key,
            [Instruction::ApplyActions(out)],
        ),
    ]
}

/// A local port of a provider network: frames from the physical network addressed to it.
pub fn port(view: &View, host: &Host, p: &Port) -> Vec<Flow> {
    let Some(net) = view.networks.get(&p.network_id) else {
        return Vec::new();
    };
    if patch_port(host, net).is_none()
        || !host.ofports.contains_key(&p.meta.id)
        || !is_local(view, host, p)
    {
        return Vec::new();
    }
    vec![super::l2::to_port(
        table::FROM_TUNNEL,
        PRIO,
        App::Provider,
        net,
        p,
        table::INGRESS_CT,
    )]
}

/// The flood group's bucket to the physical network (a provider network reaches the other
/// hosts and the outside there, not through tunnels).
pub fn flood_bucket(host: &Host, net: &Network) -> Option<openflow::flow::Bucket> {
    to_physical(host, net).map(openflow::flow::Bucket::new)
}
