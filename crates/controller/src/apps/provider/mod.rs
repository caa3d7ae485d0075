//! Provider networks (flat and VLAN on a physical network): the door between `br-int` and
//! the operator's bridge of each mapped physical network (`--bridge-mappings`), through
//! the patch port the controller made. Frames from the patch port lose their tag and enter
//! their network at ingress NAT (floating IPs and SNAT return traffic), else go to the
//! local ports; frames of a provider network for no local port leave by the patch port,
//! tagged for VLAN networks. Other hosts' ports on a provider network are reached through
//! the physical network, never through a tunnel.

use super::deliver::{self, OFPVID_PRESENT, patch_port, to_physical, vlan};
use super::here::serves;
use super::{App, Cx, Flow, Host, Object, Sink, flow, is_local};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::View;
use model::{Network, Port};
use openflow::Instruction;
use openflow::action::Action;
use openflow::oxm::{Field, Match, OxmField};

const PRIO: u16 = 100;
/// Below every port's own entry in egress (local ports, tunnels).
const PRIO_EGRESS: u16 = 10;
/// What no ingress NAT flow claims goes on to the local ports.
const PRIO_INGRESS_DEFAULT: u16 = 1;

/// The name of the patch port on `br-int` for physical network `physnet`.
pub fn int_patch(physnet: &str) -> String {
    format!("patch-int-{physnet}")
}

/// The name of its peer on the physical network's bridge.
pub fn ex_patch(physnet: &str) -> String {
    format!("patch-ex-{physnet}")
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
            AppId::Provider,
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
            AppId::Provider,
            key,
            [Instruction::GotoTable(table::FROM_TUNNEL)],
        ),
        flow(
            table::EGRESS,
            PRIO_EGRESS,
            Match::new().metadata(meta),
            AppId::Provider,
            key,
            [Instruction::GotoTable(table::PROVIDER)],
        ),
        flow(
            table::PROVIDER,
            PRIO,
            Match::new().metadata(meta),
            AppId::Provider,
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
    if patch_port(host, net).is_none() || !host.plugged(&p.meta.id) || !is_local(view, host, p) {
        return Vec::new();
    }
    vec![deliver::to_port(
        table::FROM_TUNNEL,
        PRIO,
        AppId::Provider,
        net,
        p,
        table::INGRESS_CT,
    )]
}

pub struct Provider;

impl App for Provider {
    fn id(&self) -> AppId {
        AppId::Provider
    }

    fn tables(&self) -> &'static [u8] {
        &[
            table::CLASSIFY,
            table::INGRESS_NAT,
            table::EGRESS,
            table::PROVIDER,
            table::FROM_TUNNEL,
        ]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Port(p) => out.extend(port(cx.view, cx.host, p)),
            Object::Network(n) => out.extend(network(cx.view, cx.host, n)),
            _ => {}
        }
    }
}
