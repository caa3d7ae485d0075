//! What the host follows of the NB store: the controller's tables, limited to the topics
//! its ports reach (their networks, the projects of their groups and routers). The topics
//! grow when a port of a new network is plugged here and shrink when the last one goes.
//! Growing takes a snapshot of only the new topics, merged into the view; shrinking (rare),
//! or a view behind a compacted log, takes a fresh snapshot of the whole set, which the
//! view diffs against what it held. Sans-IO: it says which objects to look up and which snapshot to take,
//! and is told the answers.

use crate::apps::Host;
use crate::view::{Touched, View};
use model::{NbObject, Table};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long an interface whose port was not found (or a look-up that failed) waits before
/// it is looked up again.
pub const RELOOKUP: Duration = Duration::from_secs(2);
/// How long a failed snapshot waits before it is asked again.
const RESNAPSHOT: Duration = Duration::from_secs(1);
/// Snapshots in one refresh at most: each may bring objects that reach new topics.
const ROUNDS: u8 = 8;

/// What to read from the store before going on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The topic of each object (`None` when it does not exist).
    Lookups(Vec<Touched>),
    /// A snapshot of the controller's tables limited to these topics.
    Snapshot(BTreeSet<String>),
}

/// What an answered snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// Everything the host follows, these topics: it replaces the view.
    Whole(BTreeSet<String>),
    /// Only the topics `new`, added to what the view holds; `all` is followed from now on.
    Added {
        new: BTreeSet<String>,
        all: BTreeSet<String>,
    },
}

#[derive(Debug, Default)]
pub struct Follow {
    /// The topics the view holds a snapshot of.
    pub topics: BTreeSet<String>,
    /// Whether the view holds a snapshot of `topics` (not yet, or behind a compacted log).
    pub loaded: bool,
    /// The topic (network) of each plugged interface's port, learnt by looking the port up
    /// since the host does not follow that network before it has a port on it; `None` for
    /// an interface whose port does not exist (looked up again after [`RELOOKUP`]).
    plugged: BTreeMap<String, (Option<String>, Instant)>,
    /// The topics of objects the local ports refer to but the view lacks
    /// ([`View::missing`]), looked up once; one not found (written later, under a project
    /// this host does not follow yet) or whose look-up failed is looked up again after
    /// [`RELOOKUP`], for as long as it is missing.
    referred: BTreeMap<Touched, (Option<String>, Option<Instant>)>,
    /// The snapshot asked for and not answered yet (what it will hold), and when it may be
    /// asked again after a failure.
    asked: Option<Loaded>,
    retry_at: Option<Instant>,
    rounds: u8,
}

impl Follow {
    /// Starts a refresh: the next [`Follow::next`] calls may ask for snapshots again.
    pub fn restart(&mut self) {
        self.rounds = 0;
    }

    /// Whether an interface is plugged whose port was not found (yet).
    pub fn has_unknown(&self) -> bool {
        self.plugged.values().any(|(p, _)| p.is_none())
    }

    /// Whether the plugged ports known here are not those of the host.
    pub fn plugged_changed(&self, host: &Host) -> bool {
        host.ofports.len() + host.announced.len() != self.plugged.len()
    }

    /// Whether an unknown interface or a missing reference is due to be looked up again.
    pub fn relookup_due(&self, now: Instant) -> bool {
        let due = |at: &Instant| now.duration_since(*at) > RELOOKUP;
        self.plugged.values().any(|(p, at)| p.is_none() && due(at))
            || self
                .referred
                .values()
                .any(|(_, again)| again.as_ref().is_some_and(due))
    }

    /// What must be read before the view holds what the host needs; `None` once it does
    /// (or when a failed read is not due again yet: `waiting` tells).
    pub fn next(&mut self, view: &View, host: &Host, now: Instant) -> Option<Read> {
        if self.asked.is_some() || self.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        self.retry_at = None;
        let mut lookups = Vec::new();
        for id in host.ofports.keys().chain(&host.announced) {
            let stale = match self.plugged.get(id) {
                None => true,
                Some((None, at)) => now.duration_since(*at) > RELOOKUP,
                Some((Some(_), _)) => false,
            };
            if !stale {
                continue;
            }
            match view.ports.get(id) {
                Some(p) => {
                    self.plugged
                        .insert(id.clone(), (Some(p.topic().to_string()), now));
                }
                None => lookups.push(Touched {
                    table: Table::Port,
                    id: id.clone(),
                }),
            }
        }
        self.plugged
            .retain(|id, _| host.ofports.contains_key(id) || host.announced.contains(id));
        self.referred
            .retain(|_, (_, failed)| failed.is_none_or(|t| now.duration_since(t) <= RELOOKUP));
        lookups.extend(
            view.missing()
                .into_iter()
                .filter(|m| !self.referred.contains_key(m)),
        );
        if !lookups.is_empty() {
            return Some(Read::Lookups(lookups));
        }
        if self.rounds >= ROUNDS {
            return None;
        }
        let mut want = view.topics();
        want.extend(self.plugged.values().filter_map(|(t, _)| t.clone()));
        want.extend(self.referred.values().filter_map(|(t, _)| t.clone()));
        if want == self.topics && self.loaded {
            return None;
        }
        self.rounds += 1;
        // Growing by a few networks needs only theirs: the stream keeps the rest current.
        let (asked, read) = if self.loaded && want.is_superset(&self.topics) {
            let new: BTreeSet<String> = want.difference(&self.topics).cloned().collect();
            let read = new.clone();
            (Loaded::Added { new, all: want }, read)
        } else {
            (Loaded::Whole(want.clone()), want)
        };
        self.asked = Some(asked);
        Some(Read::Snapshot(read))
    }

    /// Whether a read is outstanding or waiting to be tried again.
    pub fn waiting(&self, now: Instant) -> bool {
        self.asked.is_some() || self.retry_at.is_some_and(|t| now < t)
    }

    /// The answers to [`Read::Lookups`]. A failed look-up counts as "not found"; either is
    /// tried again after [`RELOOKUP`].
    pub fn looked_up(
        &mut self,
        answers: Vec<(Touched, Result<Option<String>, String>)>,
        now: Instant,
    ) {
        for (t, topic) in answers {
            if let Err(e) = &topic {
                tracing::warn!(table = t.table.name(), id = %t.id, error = %e, "NB look-up failed; trying again later");
            }
            let topic = topic.unwrap_or(None);
            let again = topic.is_none().then_some(now);
            if t.table == Table::Port {
                self.plugged.insert(t.id, (topic, now));
            } else {
                self.referred.insert(t, (topic, again));
            }
        }
    }

    /// The snapshot asked for arrived (the view is to load it as it says) or failed.
    pub fn snapshot_done(&mut self, ok: bool, now: Instant) -> Option<Loaded> {
        let asked = self.asked.take()?;
        if ok {
            self.topics = match &asked {
                Loaded::Whole(all) | Loaded::Added { all, .. } => all.clone(),
            };
            self.loaded = true;
            Some(asked)
        } else {
            self.retry_at = Some(now + RESNAPSHOT);
            self.rounds = self.rounds.saturating_sub(1);
            None
        }
    }
}
