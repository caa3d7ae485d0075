//! Trunk ports (VLAN-aware VMs): which subports are wired on this host ([`wire`]: those
//! of trunks whose parent is plugged here), and their flows. A subport is a port like
//! any other from table 1 on: only its door differs. In, a frame of the parent tagged
//! with the subport's VLAN loses its tag and becomes the subport's (reg6, its network);
//! untagged frames stay the parent's (`classify`), other tags miss and are dropped.
//! Out, dispatch pushes the tag and sends the frame to the parent's OpenFlow port, and
//! the answers the switch makes itself (ARP, ND: the `reply` table) are tagged again
//! the same way. Packets the controller sends use `deliver::to_local` and
//! `deliver::back`, which tag them the same way.

use super::{App, Cx, Flow, Host, Object, Sink, deliver, flow};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::{Touched, View};
use model::{Port, Table};
use openflow::Instruction;
use openflow::action::{Action, port};
use openflow::oxm::{Field, Match, OxmField};

/// A subport's way in and out: classification, dispatch, the tagged answers.
const PRIO_PORT: u16 = 100;
/// To a port of a trunk from the parent's own OpenFlow port (another subport, or the
/// parent): out the way it came, since OVS does not send a frame back out its in_port.
const PRIO_HAIRPIN: u16 = 110;
/// A port's own frame flooded back to it: dropped, as OVS does for an access port.
const PRIO_SELF: u16 = 120;
const PRIO_DEFAULT: u16 = 1;

/// A subport wired here: its parent's OpenFlow port and its VLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wired {
    /// The parent's OpenFlow port: the subport's frames come in and go out by it.
    pub ofport: u32,
    pub vid: u16,
    /// The subport's datapath key.
    pub key: u32,
}

/// The subports wired on this host, from the view and the plugged parents: a subport of
/// a trunk whose parent is plugged here, with a valid VLAN, once the view holds the
/// subport marked `trunk:subport`. The API writes the mark in the same transaction as
/// the trunk; requiring both means that whichever of the two changes arrives first, a
/// subport leaving is unwired rather than taken for a port plugged here and not bound
/// (which the host would bind back). Returns the subports whose wiring changed (their
/// flows and status follow).
pub fn wire(view: &View, host: &mut Host) -> Vec<Touched> {
    let mut now = std::collections::HashMap::with_hasher(Default::default());
    for t in view.trunks.values() {
        let Some(&ofport) = host.ofports.get(&t.port_id) else {
            continue;
        };
        for s in &t.sub_ports {
            let (Some(p), Some(vid)) = (view.ports.get(&s.port_id), t.vlan_of(&s.port_id)) else {
                continue;
            };
            if p.device_owner != model::trunk::SUBPORT_OWNER {
                continue;
            }
            // A port plugged as an interface of its own is not also a subport here.
            if host.ofports.contains_key(&s.port_id) {
                continue;
            }
            now.insert(
                s.port_id.clone(),
                Wired {
                    ofport,
                    vid,
                    key: p.unique_key,
                },
            );
        }
    }
    let mut touched: Vec<Touched> = now
        .iter()
        .filter(|(id, w)| host.subports.get(*id) != Some(*w))
        .chain(
            host.subports
                .iter()
                .filter(|(id, _)| !now.contains_key(*id)),
        )
        .map(|(id, _)| Touched {
            table: Table::Port,
            id: id.clone(),
        })
        .collect();
    touched.sort();
    touched.dedup();
    host.subports = now;
    touched
}

/// The VLAN match of a subport's frames.
fn tagged(vid: u16) -> OxmField {
    // Exact: OVS reads a full 13-bit mask back as none.
    OxmField::new(Field::VlanVid, u128::from(vid | deliver::OFPVID_PRESENT))
}

fn dst(key: u32) -> Match {
    Match::new().masked(reg::DST_PORT, key, u32::MAX)
}

/// The flows of a subport wired here.
fn subport(view: &View, p: &Port, w: Wired) -> Vec<Flow> {
    let Some(net) = view.networks.get(&p.network_id) else {
        return Vec::new();
    };
    let key = w.key;
    let tag = deliver::push_tag(w.vid);
    let out = |to: u32| {
        let mut a = tag.clone();
        a.push(Action::output(to));
        [Instruction::ApplyActions(a)]
    };
    vec![
        flow(
            table::CLASSIFY,
            PRIO_PORT,
            Match::new().in_port(w.ofport).with(tagged(w.vid)),
            AppId::Trunk,
            key,
            vec![
                Instruction::ApplyActions(vec![
                    Action::PopVlan,
                    Action::load(reg::SRC_PORT, 0, 32, u64::from(key)),
                ]),
                Instruction::WriteMetadata {
                    metadata: u64::from(net.unique_key),
                    mask: u64::MAX,
                },
                Instruction::GotoTable(table::PORT_SECURITY),
            ],
        ),
        flow(
            table::EGRESS,
            PRIO_PORT,
            dst(key),
            AppId::Trunk,
            key,
            [Instruction::GotoTable(table::INGRESS_CT)],
        ),
        flow(
            table::DISPATCH,
            PRIO_PORT,
            dst(key),
            AppId::Trunk,
            key,
            out(w.ofport),
        ),
        flow(
            table::DISPATCH,
            PRIO_HAIRPIN,
            dst(key).in_port(w.ofport),
            AppId::Trunk,
            key,
            out(port::IN_PORT),
        ),
        flow(
            table::DISPATCH,
            PRIO_SELF,
            dst(key).masked(reg::SRC_PORT, key, u32::MAX),
            AppId::Trunk,
            key,
            [],
        ),
        flow(
            table::REPLY,
            PRIO_PORT,
            Match::new().masked(reg::SRC_PORT, key, u32::MAX),
            AppId::Trunk,
            key,
            out(port::IN_PORT),
        ),
    ]
}

/// A parent plugged here: frames from its subports to it go back out its own port.
fn parent(p: &Port, ofport: u32) -> Vec<Flow> {
    let key = p.unique_key;
    vec![
        flow(
            table::DISPATCH,
            PRIO_HAIRPIN,
            dst(key).in_port(ofport),
            AppId::Trunk,
            key,
            [Instruction::ApplyActions(vec![Action::output(
                port::IN_PORT,
            )])],
        ),
        flow(
            table::DISPATCH,
            PRIO_SELF,
            dst(key).masked(reg::SRC_PORT, key, u32::MAX),
            AppId::Trunk,
            key,
            [],
        ),
    ]
}

/// The flows of one port: a subport wired here, or a trunk's parent plugged here.
pub fn compile(view: &View, host: &Host, p: &Port) -> Vec<Flow> {
    if let Some(w) = host.subports.get(&p.meta.id) {
        return subport(view, p, *w);
    }
    match (host.ofports.get(&p.meta.id), view.trunk_of(&p.meta.id)) {
        (Some(ofport), Some(t)) if t.port_id == p.meta.id => parent(p, *ofport),
        _ => Vec::new(),
    }
}

/// An answer made in the switch goes back out the port its question came in by.
fn base() -> Flow {
    flow(
        table::REPLY,
        PRIO_DEFAULT,
        Match::new(),
        AppId::Trunk,
        0,
        [Instruction::ApplyActions(vec![Action::output(
            port::IN_PORT,
        )])],
    )
}

pub struct Trunk;

impl App for Trunk {
    fn id(&self) -> AppId {
        AppId::Trunk
    }

    fn tables(&self) -> &'static [u8] {
        &[
            table::CLASSIFY,
            table::EGRESS,
            table::DISPATCH,
            table::REPLY,
        ]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.push(base()),
            Object::Port(p) => out.extend(compile(cx.view, cx.host, p)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
