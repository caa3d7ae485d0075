//! Tap as a service (tap-as-a-service, issue 24): copies of what a source port sends
//! (`OUT`) and receives (`IN`: towards the VM) delivered to a tap service's port.
//!
//! - **Copies by a group, never by changing the frame.** A tapped port's frames meet, at a
//!   higher priority than the ordinary flow, a flow to an `all` group: one bucket per
//!   tap service the copies go to, and a last bucket that marks the frame
//!   (`reg::TAPPED`) and looks it up again in the same table, where the mark lets the
//!   ordinary flow take it (classification for `OUT`, in table 0; dispatch for `IN`, in
//!   table 115, after the ingress security groups: the copy is what the VM gets).
//! - **A copy bypasses the service port's filters.** A bucket outputs it straight to the
//!   service port's OpenFlow port (same host), or into the tunnel to the service port's
//!   host with the service's own key (`TapService::tap_key`, a segmentation id no network
//!   has), where table 0 outputs what arrives with that key straight to the port. No
//!   copy passes port security, the security groups or dispatch.
//! - **No loops.** A copy is output, never looked up again, so a service port that is
//!   also a source (of this or another service) gets one copy of each frame it sends or
//!   receives, and copies are never copied. Flows from one source into one service with
//!   the same direction give one copy.
//! - `vlan_filter` is stored and shown but not applied (neither does upstream's OVS
//!   driver; only its SR-IOV one). A trunk subport (no OpenFlow port of its own) cannot
//!   be a tapped source here; a service port on a provider network gets copies from its
//!   own host only (no tunnel key).

use super::{App, Cx, Group, Host, Object, Owner, Sink, flow};
use crate::pipeline::{App as AppId, reg, table};
use crate::reconcile::GroupBody;
use crate::view::{Touched, View};
use model::{Port, Table, TapFlow};
use openflow::Instruction;
use openflow::action::Action;
use openflow::flow::{Bucket, GroupType};
use openflow::oxm::{Field, Match};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Above classification (100), QoS's shadows of it (105, 110) and dispatch (100).
pub const PRIO_TAP: u16 = 200;
/// Copies arriving by tunnel: above the networks' arrivals (100).
pub const PRIO_ARRIVAL: u16 = 200;
/// `reg::TAPPED` bits.
const OUT_DONE: u32 = 1;
const IN_DONE: u32 = 2;

/// Bit 29 sets tap groups apart (flood groups use 24 bits and bit 24, balancers bit 25,
/// chains bit 28 and below, multicast 0x4000_0000 and up); bit 27 is the direction.
const GROUP_BIT: u32 = 1 << 29;
const IN_BIT: u32 = 1 << 27;
/// The port keys a group id holds (ports with larger keys are not tapped; the server
/// hands out keys from the lowest free one).
const KEY_MASK: u32 = IN_BIT - 1;

/// The copy group of a source port's key for one direction.
pub fn group_id(key: u32, ingress: bool) -> Option<u32> {
    (key <= KEY_MASK).then_some(GROUP_BIT | if ingress { IN_BIT } else { 0 } | key)
}

/// Where one copy goes: a service port and the key copies to it travel with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Target<'a> {
    port: &'a str,
    network: &'a str,
    key: Option<u32>,
}

fn target(f: &TapFlow) -> Target<'_> {
    Target {
        port: &f.service_port,
        network: &f.service_network,
        key: f.tap_key,
    }
}

/// The actions that deliver one copy (none when the service port's host, or this host's
/// tunnel of its type, is not known yet). Each starts by clearing `in_port` in its
/// bucket: the copy may have to leave by the port the frame came in by (a reply from the
/// tunnel copied back into it, a service port's own frame), which OpenFlow's `output`
/// skips.
fn copy(view: &View, host: &Host, t: &Target<'_>) -> Option<Vec<Action>> {
    let clear = Action::load(Field::NxmInPort, 0, 16, 0);
    if let Some(&ofport) = host.ofports.get(t.port) {
        return Some(vec![clear, Action::output(ofport)]);
    }
    let service = view.ports.get(t.port)?;
    let net = view.networks.get(t.network)?;
    let chassis = view.chassis_by_name.get(&service.binding_host_id)?;
    let tunnel = super::deliver::tunnel_port(host, net)?;
    let (IpAddr::V4(dst), Some(key)) = (chassis.ip, t.key) else {
        return None;
    };
    if service.binding_host_id == view.chassis {
        return None; // Bound here but not plugged yet.
    }
    Some(vec![
        clear,
        Action::set_field(Field::TunId, u64::from(key)),
        Action::set_field(Field::TunIpv4Dst, u32::from(dst)),
        Action::output(tunnel),
    ])
}

/// The group and flow that copy a source port's frames in one direction.
fn tap(cx: Cx<'_>, p: &Port, ingress: bool, targets: &BTreeSet<Target<'_>>, out: &mut Sink<'_>) {
    let (Some(&ofport), Some(id)) = (
        cx.host.ofports.get(&p.meta.id),
        group_id(p.unique_key, ingress),
    ) else {
        return;
    };
    let mut buckets: Vec<Bucket> = targets
        .iter()
        .filter_map(|t| copy(cx.view, cx.host, t))
        .map(Bucket::new)
        .collect();
    if buckets.is_empty() {
        return;
    }
    let (t, bit, m) = if ingress {
        let m = Match::new().masked(Field::Reg(7), p.unique_key, u32::MAX);
        (table::DISPATCH, IN_DONE, m)
    } else {
        (table::CLASSIFY, OUT_DONE, Match::new().in_port(ofport))
    };
    buckets.push(Bucket::new(vec![
        Action::load(reg::TAPPED, bit.trailing_zeros() as u16, 1, 1),
        Action::resubmit_table(t),
    ]));
    out.group(Group {
        id,
        body: GroupBody {
            group_type: GroupType::All,
            buckets,
        },
    });
    out.flow(
        t,
        PRIO_TAP,
        m.masked(reg::TAPPED, 0u32, bit),
        p.unique_key,
        [Instruction::ApplyActions(vec![Action::Group(id)])],
    );
}

/// A local port's tap flows and groups: copies of its frames (a source), and copies
/// arriving for it by tunnel (a service port).
pub fn compile(cx: Cx<'_>, p: &Port, out: &mut Sink<'_>) {
    if !super::is_local(cx.view, cx.host, p) {
        return;
    }
    let (mut ins, mut outs) = (BTreeSet::new(), BTreeSet::new());
    for f in cx.view.taps_from(&p.meta.id) {
        if f.direction.ingress() {
            ins.insert(target(f));
        }
        if f.direction.egress() {
            outs.insert(target(f));
        }
    }
    tap(cx, p, true, &ins, out);
    tap(cx, p, false, &outs, out);
    let Some(&ofport) = cx.host.ofports.get(&p.meta.id) else {
        return;
    };
    let keys: BTreeSet<u32> = cx
        .view
        .tap_services_on(&p.meta.id)
        .filter_map(|s| s.tap_key)
        .collect();
    let Some(tunnel) = cx
        .view
        .networks
        .get(&p.network_id)
        .and_then(|n| super::deliver::tunnel_port(cx.host, n))
    else {
        return;
    };
    for key in keys {
        out.push(flow(
            table::CLASSIFY,
            PRIO_ARRIVAL,
            Match::new().in_port(tunnel).tun_id(u64::from(key)),
            AppId::Taas,
            p.unique_key,
            [Instruction::ApplyActions(vec![Action::output(ofport)])],
        ));
    }
}

pub struct Taas;

impl App for Taas {
    fn id(&self) -> AppId {
        AppId::Taas
    }

    fn tables(&self) -> &'static [u8] {
        &[table::CLASSIFY, table::DISPATCH]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        if let Object::Port(p) = obj {
            compile(cx, p, out);
        }
    }

    /// A source port's copies read its services' ports (where they are bound, and so
    /// their hosts' addresses).
    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        let sources = |pred: &dyn Fn(&TapFlow) -> bool| -> Vec<Owner> {
            view.tap_flows
                .values()
                .filter(|f| pred(f))
                .map(|f| Touched {
                    table: Table::Port,
                    id: f.source_port.clone(),
                })
                .collect()
        };
        match changed.table {
            Table::Port => out.extend(sources(&|f| f.service_port == changed.id)),
            Table::Chassis if !changed.id.is_empty() => out.extend(sources(&|f| {
                view.ports
                    .get(&f.service_port)
                    .is_some_and(|s| s.binding_host_id == changed.id)
            })),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
