//! A commit the switch refused: which owners' flows it refused, leaving those owners out
//! (a port among them is reported ERROR), and the rest committed at once. A failed owner
//! is compiled again when it, or something it depends on, changes next.

use super::{Controller, Installed, Outgoing, Phase};
use crate::apps::Owner;
use crate::reconcile::{self, FlowKey};
use crate::switch::{Refusal, Refused};
use model::{Port, Table};
use nbdb::Change;
use openflow::errors::ErrorMsg;
use openflow::flow::{FlowMod, FlowModCommand};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Instant;

impl Controller {
    /// The switch refused messages of the commit that is out (and applied none of it).
    pub(super) fn refused(
        &mut self,
        refusals: Vec<Refusal>,
        now: Instant,
        fx: &mut super::Effects,
    ) {
        if self.phase != Phase::Committing {
            return;
        }
        let Some(outgoing) = self.outgoing.take() else {
            return;
        };
        // What the commit held at each refused place: the flow-mods kept, or (a full
        // comparison) the same comparison made again, nothing having changed since.
        let full = match (&outgoing, &self.installed) {
            (Outgoing::Full, Installed::Read(flows, _)) => Some(
                self.desired
                    .table()
                    .changes(flows)
                    .iter()
                    .map(reconcile::flow_mod)
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        };
        let sent = |i: usize| match &outgoing {
            Outgoing::Changes(mods, _) => mods.get(i),
            Outgoing::Full => full.as_ref().and_then(|m| m.get(i)),
        };
        let mut failed = BTreeSet::new();
        let mut forgotten = 0;
        for Refusal { what, error } in &refusals {
            let reason = reason(error);
            match *what {
                Refused::Flow(i) => {
                    let Some(m) = sent(i) else {
                        tracing::error!(index = i, error = %reason, "the switch refused a flow-mod it was not sent");
                        continue;
                    };
                    let flow = describe(m);
                    let key = FlowKey::new(m.table_id, m.priority, m.match_.clone());
                    let owner = (m.command != FlowModCommand::DeleteStrict)
                        .then(|| self.desired.owner_of(&key).cloned())
                        .flatten();
                    match owner {
                        Some(o) if o.table == Table::Port => {
                            tracing::error!(port = %o.id, error = %reason, %flow, "the switch refused a flow of this port: the port is left out (ERROR) until it changes");
                            failed.insert(o);
                        }
                        // A flow of no port (a network's, a router's, a rule's, the base
                        // pipeline's): its owner is left out the same way, with no status
                        // to report; what depends on it may be refused in turn, and is
                        // left out in the next round.
                        Some(o) => {
                            tracing::error!(owner = %format_args!("{} {}", o.table, o.id), error = %reason, %flow, "the switch refused a flow: its owner is left out until it changes");
                            failed.insert(o);
                        }
                        // Not a desired flow (a delete): the switch keeps it, and is taken
                        // to; a later read-back tries again.
                        None => {
                            tracing::error!(error = %reason, %flow, "the switch refused to remove a flow: left in place");
                            self.forget(&key);
                            forgotten += 1;
                        }
                    }
                }
                Refused::Group(id) => match self.desired.owner_of_group(id).cloned() {
                    Some(o) => {
                        tracing::error!(owner = %format_args!("{} {}", o.table, o.id), group = id, error = %reason, "the switch refused a group: its owner is left out until it changes");
                        failed.insert(o);
                    }
                    None => {
                        tracing::error!(group = id, error = %reason, "the switch refused to remove a group: left in place");
                        self.forget_group(id);
                        forgotten += 1;
                    }
                },
            }
        }
        if failed.is_empty() && forgotten == 0 {
            // Nothing to leave out: the same commit would be refused again. Nothing more is
            // committed until the switch is read back (it reconnects).
            tracing::error!(
                refused = refusals.len(),
                "the switch refused a commit for no flow it was sent; committing nothing until it is read back"
            );
            self.installed = Installed::Unknown;
            self.phase = Phase::NoSwitch;
            return;
        }
        for o in &failed {
            self.desired.drop_owner(o);
        }
        self.failed.extend(failed);
        // The rest, at once: from the changes kept since the last confirmed commit, or
        // compared with what was read back.
        self.hand_out(now, fx);
    }

    /// The switch keeps the flow at `key` whatever it was told: no longer a change to send.
    fn forget(&mut self, key: &FlowKey) {
        match &mut self.installed {
            Installed::Read(flows, _) => {
                flows.remove(key);
            }
            _ => self.desired.forget_change(key),
        }
    }

    fn forget_group(&mut self, id: u32) {
        match &mut self.installed {
            Installed::Read(_, groups) => {
                groups.remove(id);
            }
            _ => self.desired.forget_group_change(id),
        }
    }

    /// Whether `c` is only a failed port's status (and binding) as this host wrote it.
    pub(super) fn status_echo(&self, c: &Change) -> bool {
        if self.failed.is_empty() || c.table != Table::Port.name() {
            return false;
        }
        let owner = Owner {
            table: Table::Port,
            id: c.id.clone(),
        };
        if !self.failed.contains(&owner) {
            return false;
        }
        let (Some(old), Some(value)) = (self.view.ports.get(&c.id), c.value.as_deref()) else {
            return false;
        };
        let Ok(mut new) = serde_json::from_slice::<Port>(value) else {
            return false;
        };
        new.status = old.status;
        new.binding_host_id.clone_from(&old.binding_host_id);
        new.meta.updated_at.clone_from(&old.meta.updated_at);
        new.meta.revision_number = old.meta.revision_number;
        new == *old
    }
}

/// The error's OpenFlow names (`OFPET_BAD_INSTRUCTION OFPBIC_BAD_TABLE_ID`).
fn reason(e: &ErrorMsg) -> String {
    format!(
        "{} {}",
        e.type_name().unwrap_or("?"),
        e.name().unwrap_or("?")
    )
}

/// A flow-mod for the log: `table=60 priority=100 cookie=0x… in_port=0x5 … actions=[…]`.
pub fn describe(m: &FlowMod) -> String {
    let mut s = format!(
        "table={} priority={} cookie={:#x}",
        m.table_id, m.priority, m.cookie
    );
    for f in &m.match_.fields {
        let _ = write!(s, " {f}");
    }
    let _ = write!(s, " instructions={:?}", m.instructions);
    s
}
