//! L2 lookup: in the port's network, its MAC leads to its key in reg7.

use super::{Flow, flow};
use crate::pipeline::{App, reg, table};
use crate::view::View;
use model::Port;
use openflow::Instruction;
use openflow::action::Action;
use openflow::oxm::Match;

const PRIO_UNICAST: u16 = 100;

/// The L2 entry of any port (local or remote) of a network this host has.
pub fn compile(view: &View, p: &Port) -> Vec<Flow> {
    let Some(net) = view.networks.get(&p.network_id) else {
        return Vec::new();
    };
    // A router interface's MAC leads to L3 instead (apps/l3.rs).
    if p.device_owner == model::owner::ROUTER_INTERFACE {
        return Vec::new();
    }
    vec![flow(
        table::L2,
        PRIO_UNICAST,
        Match::new()
            .metadata(u64::from(net.unique_key))
            .eth_dst(p.mac_address.0),
        App::L2,
        p.unique_key,
        vec![
            Instruction::ApplyActions(vec![Action::load(
                reg::DST_PORT,
                0,
                32,
                u64::from(p.unique_key),
            )]),
            Instruction::GotoTable(table::EGRESS),
        ],
    )]
}
