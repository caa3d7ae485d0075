//! FWaaS v2 in the datapath (issue 24): a firewall group's ingress and egress policies on
//! its VM ports, after the security groups of each side (a packet must pass both), and
//! on its router interface ports where the router's traffic is ([`router`]).
//!
//! - **Entry** (egress_fw 16, ingress_fw 113): a local VM port in a group with a policy:
//!   its IP traffic (reg6 out, reg7 in) → `ct()` in the firewall's
//!   zone of its network ([`zone`]: the security groups' zone + 0x8000, so that neither
//!   app's commits ever mark the other's connections), recirculating to the rules table;
//!   everything else goes on (services 20, dispatch 115).
//! - **Rules** (egress_fw_rules 17, ingress_fw_rules 114): invalid dropped; replies and
//!   related packets of a connection pass; every other packet, of a new connection or
//!   an established one, meets the policy's enabled rules in order as falling
//!   priorities ([`matches`]): allow commits, deny drops, reject goes to the controller
//!   ([`reject`]), which answers with a TCP RST or an ICMP port unreachable. So a policy
//!   change keeps the established connections it still allows and stops, from their
//!   next packet, those it no longer does, with no conntrack flush, in the one bundle
//!   every change is; and the two sides of a connection between two ports of one
//!   network on one host, which share the zone, each apply their own policy.
//!   Below them the implicit deny (priority 1). A group administratively down denies
//!   everything its policies would filter; a group with no policy for a direction lets
//!   everything through that side, committed (so that the replies of what it lets out
//!   are known as replies where the other side's policy looks at them).
//!
//! A port's firewall flows are compiled with the port, a router interface's with its
//! router, so a rule inserted or moved in a policy recompiles the owners of its groups'
//! ports.

pub mod matches;
pub mod reject;
pub mod router;

use super::{App, Cx, Flow, Host, Object, Owner, Sink, flow, security_groups};
use crate::pipeline::{App as AppId, reg, table};
use crate::view::{Touched, View};
use model::fwaas::FwAction;
use model::{Direction, Port, Table};
use openflow::Instruction;
use openflow::action::{Action, OFPCML_NO_BUFFER};
use openflow::nx::{Ct, CtZone, ct_flags};
use openflow::oxm::{Field, Match, ct_state};

/// The firewall zone of a network is its security groups' zone plus this.
pub const ZONE_OFFSET: u16 = 0x8000;

/// In the entry tables.
const PRIO_CT: u16 = 100;
const PRIO_PASS: u16 = 1;
/// In the rules tables: above every rule ([`matches::PRIO_FIRST`]).
const PRIO_INVALID: u16 = 30_300;
const PRIO_REPLY: u16 = 30_200;
/// The implicit deny.
const PRIO_DENY: u16 = 1;
/// A side with no policy: everything, committed.
const PRIO_UNFILTERED: u16 = 2;
const _: () = assert!(matches::PRIO_FIRST < PRIO_REPLY);

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;

/// The firewall's conntrack zone of the network whose security groups' zone is
/// `sg_zone`; `None` past the range (below the NAT and balancer zones, 0xfff0 and up).
pub fn zone(sg_zone: u16) -> Option<u16> {
    (sg_zone < 0x7ff0).then(|| sg_zone + ZONE_OFFSET)
}

/// The tables of one place a policy is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    pub entry: u8,
    pub rules: u8,
    pub next: u8,
}

/// A VM port's side of direction `d`, with the register that holds the port.
pub fn vm_side(d: Direction) -> (Side, Field) {
    match d {
        Direction::Egress => (
            Side {
                entry: table::EGRESS_FW,
                rules: table::EGRESS_FW_RULES,
                next: table::SERVICES,
            },
            reg::SRC_PORT,
        ),
        Direction::Ingress => (
            Side {
                entry: table::INGRESS_FW,
                rules: table::INGRESS_FW_RULES,
                next: table::DISPATCH,
            },
            reg::DST_PORT,
        ),
    }
}

/// A router interface's side of direction `d` (ingress: into the router, where it
/// routes; egress: out of it, where it arrives).
pub fn router_side(d: Direction) -> Side {
    match d {
        Direction::Ingress => Side {
            entry: table::ROUTER_FW_IN,
            rules: table::ROUTER_FW_IN_RULES,
            next: table::L3,
        },
        // On the destination's host, as it arrives (see `router`).
        Direction::Egress => Side {
            entry: table::ROUTER_FW_OUT,
            rules: table::ROUTER_FW_OUT_RULES,
            next: table::INGRESS_FW,
        },
    }
}

/// What a rule's match does.
fn action(side: Side, zone: u16, a: FwAction) -> Vec<Instruction> {
    match a {
        FwAction::Allow => vec![
            Instruction::ApplyActions(vec![Action::Ct(Ct {
                flags: ct_flags::COMMIT,
                zone: CtZone::Imm(zone),
                ..Ct::default()
            })]),
            Instruction::GotoTable(side.next),
        ],
        FwAction::Deny => Vec::new(),
        // The whole frame: the answer quotes it (ICMP) or mirrors its sequence (RST).
        FwAction::Reject => vec![Instruction::ApplyActions(vec![Action::controller(
            OFPCML_NO_BUFFER,
        )])],
    }
}

/// The flows of one side of a port or interface in a group: its traffic (`m`) to ct() in
/// `zone` (none: dropped, fail closed), and its policy's rules, each also matching `m`;
/// `up` false leaves only the implicit deny. With no policy for this side everything
/// passes, but committed: the replies of what this side lets out must be known as such
/// where the other side's policy looks at them. `key` is the owner's, for the cookie.
pub(super) fn enforce(
    view: &View,
    (side, m): (Side, &Match),
    zone: Option<u16>,
    policy: Option<&str>,
    up: bool,
    key: u32,
) -> Vec<Flow> {
    let mut out = Vec::new();
    for et in [ETH_IPV4, ETH_IPV6] {
        let ins = match zone {
            Some(z) => vec![Instruction::ApplyActions(vec![Action::Ct(Ct {
                zone: CtZone::Imm(z),
                recirc_table: side.rules,
                ..Ct::default()
            })])],
            None => Vec::new(),
        };
        out.push(flow(
            side.entry,
            PRIO_CT,
            m.clone().eth_type(et),
            AppId::Fwaas,
            key,
            ins,
        ));
    }
    let Some(z) = zone else {
        return out;
    };
    let Some(policy) = policy else {
        // ct() needs the IP version in the match (OVS refuses it otherwise).
        for et in [ETH_IPV4, ETH_IPV6] {
            out.push(flow(
                side.rules,
                PRIO_UNFILTERED,
                m.clone().eth_type(et),
                AppId::Fwaas,
                key,
                action(side, z, FwAction::Allow),
            ));
        }
        return out;
    };
    if !up {
        return out;
    }
    for e in matches::compile(&view.fw_rules_of(policy)) {
        for rm in e.matches {
            let mut full = rm;
            for f in &m.fields {
                full = full.with(*f);
            }
            out.push(flow(
                side.rules,
                e.priority,
                full,
                AppId::Fwaas,
                key,
                action(side, z, e.action),
            ));
        }
    }
    out
}

/// A group's policy for direction `d`.
pub fn policy_of(g: &model::FirewallGroup, d: Direction) -> Option<&str> {
    match d {
        Direction::Ingress => g.ingress_firewall_policy_id.as_deref(),
        Direction::Egress => g.egress_firewall_policy_id.as_deref(),
    }
}

/// Whether a group filters anything (a group with neither policy does not).
pub fn filters(g: &model::FirewallGroup) -> bool {
    g.ingress_firewall_policy_id.is_some() || g.egress_firewall_policy_id.is_some()
}

/// The firewall flows of a local VM port (one whose traffic passes the security groups'
/// tables: bound and plugged here, port security on, its network with a zone).
pub fn port(view: &View, host: &Host, p: &Port) -> Vec<Flow> {
    let Some(sg_zone) = security_groups::filtered(view, host, p) else {
        return Vec::new();
    };
    let Some(g) = view.fw_group_of(&p.meta.id).filter(|g| filters(g)) else {
        return Vec::new();
    };
    let key = p.unique_key;
    let mut out = Vec::new();
    for d in [Direction::Egress, Direction::Ingress] {
        let (side, preg) = vm_side(d);
        let m = Match::new().masked(preg, key, u32::MAX);
        let (z, pid) = (zone(sg_zone), policy_of(g, d));
        out.extend(enforce(view, (side, &m), z, pid, g.admin_state_up, key));
    }
    out
}

/// The flows every pipeline has: on past the entry tables; in the rules tables the
/// conntrack states that pass or drop whatever the policy, and the implicit deny.
pub fn base(view: &View) -> Vec<Flow> {
    let mut out = Vec::new();
    // The rules tables are reached only from a grouped port's or interface's flows: a
    // host with none has only the pass-through entries.
    let enforced = view.fw_groups.values().any(|g| !g.ports.is_empty());
    let f = |t: u8, prio: u16, m: Match, next: Option<u8>| {
        flow(
            t,
            prio,
            m,
            AppId::Fwaas,
            0,
            next.map(Instruction::GotoTable)
                .into_iter()
                .collect::<Vec<_>>(),
        )
    };
    use ct_state::{EST, INV, REL, RPL, TRK};
    let st = |v: u32, m: u32| Match::new().ct_state(v, m);
    let sides = [Direction::Egress, Direction::Ingress]
        .into_iter()
        .flat_map(|d| [vm_side(d).0, router_side(d)]);
    for side in sides {
        let (rules, next) = (side.rules, side.next);
        out.push(f(side.entry, PRIO_PASS, Match::new(), Some(next)));
        if !enforced {
            continue;
        }
        out.push(f(rules, PRIO_INVALID, st(TRK | INV, TRK | INV), None));
        out.push(f(
            rules,
            PRIO_REPLY,
            st(TRK | EST | RPL, TRK | EST | RPL | INV),
            Some(next),
        ));
        out.push(f(
            rules,
            PRIO_REPLY,
            st(TRK | REL, TRK | REL | INV),
            Some(next),
        ));
        out.push(f(rules, PRIO_DENY, Match::new(), None));
    }
    out
}

/// The ports whose firewall flows a changed policy or rule decides. (A group's own
/// change touches its ports, before and after, from the view: `View::apply`.)
fn affected_ports(view: &View, changed: &Touched) -> Vec<Owner> {
    let ports = match changed.table {
        Table::FirewallPolicy => view.fw_ports_of_policy(&changed.id),
        Table::FirewallRule => view.fw_ports_of_rule(&changed.id),
        _ => return Vec::new(),
    };
    ports
        .into_iter()
        .map(|id| match view.ports.get(&id) {
            // A router interface's flows are its router's.
            Some(p) if router::is_interface(p) => Touched {
                table: Table::Router,
                id: p.device_id.clone(),
            },
            _ => Touched {
                table: Table::Port,
                id,
            },
        })
        .collect()
}

pub struct Fwaas;

impl App for Fwaas {
    fn id(&self) -> AppId {
        AppId::Fwaas
    }

    fn tables(&self) -> &'static [u8] {
        &[
            table::EGRESS_FW,
            table::EGRESS_FW_RULES,
            table::INGRESS_FW,
            table::INGRESS_FW_RULES,
            table::ROUTER_FW_IN,
            table::ROUTER_FW_IN_RULES,
            table::ROUTER_FW_OUT,
            table::ROUTER_FW_OUT_RULES,
        ]
    }

    fn compile(&self, cx: Cx<'_>, obj: Object<'_>, out: &mut Sink<'_>) {
        match obj {
            Object::Base => out.extend(base(cx.view)),
            Object::Port(p) => out.extend(port(cx.view, cx.host, p)),
            Object::Router(r) => out.extend(router::compile(cx.view, cx.host, r)),
            _ => {}
        }
    }

    fn affected(&self, view: &View, changed: &Touched, out: &mut Vec<Owner>) {
        out.extend(affected_ports(view, changed));
        // A group gaining its first ports or losing its last adds or removes the rules
        // tables' shared flows.
        if changed.table == Table::FirewallGroup {
            out.push(super::base_owner());
        }
    }

    fn handler(&self, _settings: &super::Settings) -> Option<Box<dyn super::Handler>> {
        Some(Box::new(reject::Reject::new(reject::DEFAULT_RATE)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firewall_zones_stay_apart_from_the_others() {
        assert_eq!(zone(1), Some(0x8001));
        assert_eq!(zone(0x7fef), Some(0xffef));
        assert!(zone(0x7fef).unwrap() < crate::apps::nat::NAT_ZONE);
        assert_eq!(zone(0x7ff0), None);
    }
}
