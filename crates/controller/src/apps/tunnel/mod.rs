//! Tunnels between hosts: a frame for a port on another host leaves by this host's tunnel
//! port of the network's type, with the network's segmentation id as key and that host's
//! address as destination; a frame arriving by tunnel is put in its network by key and
//! delivered to the local port its MAC names.

use super::{App, Cx, Flow, Host, Object, Owner, Sink, deliver, flow};
use crate::pipeline::{App as AppId, table};
use crate::view::{Touched, View};
use model::{Network, Port, Table};
use openflow::Instruction;
use openflow::oxm::{Field, Match};

const PRIO: u16 = 100;

/// Arrivals: the network of a frame by its key, for networks with a port on this host.
pub fn network(view: &View, host: &Host, net: &Network) -> Vec<Flow> {
    let (Some(ofport), Some(seg)) = (deliver::tunnel_port(host, net), net.segmentation_id) else {
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
        AppId::Tunnel,
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
        if !host.plugged(&p.meta.id) {
            return Vec::new();
        }
        return vec![deliver::to_port(
            table::FROM_TUNNEL,
            PRIO,
            AppId::Tunnel,
            net,
            p,
            table::INGRESS_CT,
        )];
    }
    let Some(actions) = deliver::to_chassis(view, host, net, &p.binding_host_id) else {
        return Vec::new();
    };
    vec![flow(
        table::EGRESS,
        PRIO,
        Match::new().masked(Field::Reg(7), key, u32::MAX),
        AppId::Tunnel,
        key,
        [Instruction::ApplyActions(actions)],
    )]
}

pub struct Tunnel;

impl App for Tunnel {
    fn id(&self) -> AppId {
        AppId::Tunnel
    }

    fn tables(&self) -> &'static [u8] {
        &[table::CLASSIFY, table::FROM_TUNNEL, table::EGRESS]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Port(p) => out.extend(port(cx.view, cx.host, p)),
            Object::Network(n) => out.extend(network(cx.view, cx.host, n)),
            _ => {}
        }
    }

    /// The ports bound to a chassis tunnel to its address, and their networks flood to it.
    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        if changed.table != Table::Chassis || changed.id.is_empty() {
            return;
        }
        let bound = view
            .ports
            .values()
            .filter(|p| p.binding_host_id == changed.id);
        let networks: std::collections::BTreeSet<&str> =
            bound.clone().map(|p| p.network_id.as_str()).collect();
        out.extend(bound.map(|p| Touched {
            table: Table::Port,
            id: p.meta.id.clone(),
        }));
        out.extend(networks.into_iter().map(|n| Touched {
            table: Table::Network,
            id: n.to_string(),
        }));
    }
}
