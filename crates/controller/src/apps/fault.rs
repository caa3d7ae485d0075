//! Fault injection, in test builds only (the `fault-injection` feature, which only the
//! end-to-end tests' dev-dependency turns on): a port named [`REFUSED_FLOW_PORT`] gets one
//! flow that Open vSwitch refuses, a `goto_table` backwards, so a test can make the real
//! switch refuse one port's flows among a batch.

use super::{Cx, Flow, Port, flow};
use crate::pipeline::{App, table};
use openflow::Instruction;
use openflow::oxm::Match;

/// The name that marks a port for a refused flow.
pub const REFUSED_FLOW_PORT: &str = "fault-injection:refused-flow";

/// The refused flow of a marked, plugged port: in the last table, matching its OpenFlow
/// port (no other flow there does), going back to the first table (OpenFlow forbids it).
pub fn compile(cx: Cx<'_>, p: &Port, out: &mut Vec<Flow>) {
    if p.meta.name != REFUSED_FLOW_PORT {
        return;
    }
    let Some(ofport) = cx.host.ofports.get(&p.meta.id) else {
        return;
    };
    out.push(flow(
        table::DISPATCH,
        1,
        Match::new().in_port(*ofport),
        App::Classifier,
        p.unique_key,
        [Instruction::GotoTable(table::CLASSIFY)],
    ));
}
