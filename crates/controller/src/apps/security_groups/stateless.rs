//! Stateless groups (`stateful: false`): the port's IP traffic skips conntrack, so its
//! rules see every packet and must allow both directions themselves (replies included),
//! as with Neutron's and OVN's stateless groups. A port's groups are all stateful or all
//! stateless (the API refuses the mix); a group missing from the view counts as stateful.

use super::{PRIO_STATELESS, accept, dir_tables, eth};
use crate::apps::{Flow, flow};
use crate::pipeline::App as AppId;
use crate::view::View;
use model::{Direction, EtherType, Port};
use openflow::Instruction;
use openflow::oxm::Match;

/// Whether the port's traffic is tracked: false when one of its groups is stateless.
pub fn tracked(view: &View, p: &Port) -> bool {
    !p.security_groups
        .iter()
        .any(|g| view.security_groups.get(g).is_some_and(|g| !g.stateful))
}

/// Whether group `g`'s rules accept through conntrack.
pub fn group_tracked(view: &View, g: &str) -> bool {
    view.security_groups.get(g).is_none_or(|g| g.stateful)
}

/// A matched packet of a rule: committed (stateful), or just on to the next table.
pub fn pass(d: Direction, tracked: bool) -> Vec<Instruction> {
    if tracked {
        accept(d)
    } else {
        let (_, next, _, _) = dir_tables(d);
        vec![Instruction::GotoTable(next)]
    }
}

/// The port's IP traffic, out and in, straight to its rules without ct(): above the
/// network's ct() flows, below what is never filtered (neighbour discovery, DHCP).
pub fn bypass(key: u32) -> Vec<Flow> {
    let mut out = Vec::new();
    for d in [Direction::Egress, Direction::Ingress] {
        let (sg, _, preg, _) = dir_tables(d);
        let ct = match d {
            Direction::Egress => crate::pipeline::table::EGRESS_CT,
            Direction::Ingress => crate::pipeline::table::INGRESS_CT,
        };
        for et in [EtherType::IPv4, EtherType::IPv6] {
            out.push(flow(
                ct,
                PRIO_STATELESS,
                Match::new().eth_type(eth(et)).masked(preg, key, u32::MAX),
                AppId::SecurityGroup,
                key,
                [Instruction::GotoTable(sg)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::table;
    use openflow::action::Action;

    fn commits(i: &[Instruction]) -> bool {
        i.iter().any(|i| {
            matches!(i, Instruction::ApplyActions(a)
                if a.iter().any(|a| matches!(a, Action::Ct(c) if c.flags & openflow::nx::ct_flags::COMMIT != 0)))
        })
    }

    #[test]
    fn stateless_rules_go_on_without_a_commit() {
        for (d, next) in [
            (Direction::Egress, table::EGRESS_FW),
            (Direction::Ingress, table::ROUTER_FW_OUT),
        ] {
            assert!(commits(&pass(d, true)));
            assert_eq!(pass(d, false), [Instruction::GotoTable(next)]);
        }
    }

    #[test]
    fn a_stateless_port_skips_ct_for_ip_only() {
        let flows = bypass(7);
        let mut seen: Vec<(u8, u16, u8)> = flows
            .iter()
            .map(|f| {
                let ins = f.body.instructions();
                let [Instruction::GotoTable(to)] = ins.as_slice() else {
                    panic!("{f:?}");
                };
                (f.key.table(), f.key.priority(), *to)
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                (table::EGRESS_CT, PRIO_STATELESS, table::EGRESS_SG),
                (table::EGRESS_CT, PRIO_STATELESS, table::EGRESS_SG),
                (table::INGRESS_CT, PRIO_STATELESS, table::INGRESS_SG),
                (table::INGRESS_CT, PRIO_STATELESS, table::INGRESS_SG),
            ]
        );
    }
}
