//! What the app tests share: putting a compiled pipeline (groups, then flows) into a
//! fake switch, as the runtime's bundle would into a real one.

#![allow(dead_code)]

use controller::apps::Desired;
use fake_switch::Switch;

/// Installs everything `desired` holds into `sw` (groups first: flows point at them).
pub fn install(sw: &mut Switch, desired: &Desired) {
    let groups = desired.groups().diff(&Default::default());
    for g in &groups.before {
        sw.apply_group_mod(g)
            .unwrap_or_else(|e| panic!("{e}: {g:?}"));
    }
    for m in desired.table().diff(&Default::default()) {
        sw.apply_flow_mod(&m)
            .unwrap_or_else(|e| panic!("{e}: {m:?}"));
    }
}
