//! What the app tests share: putting a compiled pipeline (groups, then flows) into a
//! fake switch, as the runtime's bundle would into a real one.

#![allow(dead_code)]

use controller::apps::Desired;
use controller::reconcile::GroupDiff;
use fake_switch::Switch;
use openflow::flow::FlowMod;

/// Installs everything `desired` holds into an empty `sw`.
pub fn install(sw: &mut Switch, desired: &Desired) {
    apply(
        sw,
        &desired.table().diff(&Default::default()),
        &desired.groups().diff(&Default::default()),
    );
}

/// Applies a change in the order the runtime's bundle does: new and changed groups, the
/// flows, then the groups no flow uses any more.
pub fn apply(sw: &mut Switch, flows: &[FlowMod], groups: &GroupDiff) {
    for g in &groups.before {
        sw.apply_group_mod(g)
            .unwrap_or_else(|e| panic!("{e}: {g:?}"));
    }
    for m in flows {
        sw.apply_flow_mod(m)
            .unwrap_or_else(|e| panic!("{e}: {m:?}"));
    }
    for g in &groups.after {
        sw.apply_group_mod(g)
            .unwrap_or_else(|e| panic!("{e}: {g:?}"));
    }
}
