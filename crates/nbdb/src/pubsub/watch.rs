//! A host's change stream from the fan-out ([`PubsubWatch`], a [`Changes`] like the
//! others): it subscribes first, reads the store's stream (the [`Source`]'s watch) from
//! `after` until that reaches the first message received, then hands out what the
//! messages carry; a missing link of a channel's chain is read from the store before
//! the message that showed it. After a reconnection it reads the store's stream again
//! from where every channel is known complete, passing over what it handed out already.
//!
//! Guarantees: every change within the filter once, each channel (topic) in revision
//! order, and so each object's changes in order; changes of different topics are in
//! revision order except around a filled gap, where the filled changes come after newer
//! ones of other topics. [`StoreError::Compacted`] from the store surfaces as from any
//! watch (take a new snapshot).

use super::seq::{Tracker, Verdict};
use super::transport::{Feed, Subscription};
use super::wire::{Channel, Message, decode};
use crate::{Change, Changes, Filter, Result, Revision, Source, StoreError};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// How long one wait on the store's stream lasts before its position is looked at.
const POLL: Duration = Duration::from_millis(100);
/// Messages held while catching up; past this, newer ones are dropped (and filled later).
const HELD: usize = 65_536;

/// Counts for tests and measurements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Changes handed out from messages.
    pub from_messages: u64,
    /// Changes handed out from the store's stream (catching up and filling gaps).
    pub from_store: u64,
    /// Gaps filled.
    pub gaps: u64,
    /// Catch-ups (the first, and one after each reconnection).
    pub catch_ups: u64,
}

enum Phase {
    /// Reading the store's stream until it reaches `target` (set by the first message).
    CatchUp {
        changes: Changes,
        target: Option<Revision>,
        handed: Revision,
    },
    Live,
    /// Reading `channel`'s changes in `(after, upto]`, then judging `pending` again.
    Fill {
        channel: Channel,
        after: Revision,
        upto: Revision,
        changes: Changes,
        pending: Message,
    },
}

/// The changes within a filter from a subscription, complete and in order as above.
pub struct PubsubWatch {
    source: Arc<dyn Source>,
    filter: Filter,
    /// `None`: every channel.
    channels: Option<BTreeSet<Channel>>,
    feed: Feed,
    tracker: Tracker,
    phase: Phase,
    held: VecDeque<Message>,
    out: VecDeque<Change>,
    stats: Stats,
}

impl PubsubWatch {
    /// The changes within `filter` after `after`, from `sub`, filled from `source`.
    pub fn new(
        sub: &Subscription,
        source: Arc<dyn Source>,
        after: Revision,
        filter: Filter,
    ) -> PubsubWatch {
        let channels = filter.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| Channel::Topic(t.clone()))
                .chain([Channel::Global])
                .collect()
        });
        // Subscribed before the store is read: nothing falls between the two.
        let feed = sub.follow(channels.clone());
        let changes = source.watch(after, filter.clone());
        PubsubWatch {
            source,
            filter,
            channels,
            feed,
            tracker: Tracker::new(after),
            phase: Phase::CatchUp {
                changes,
                target: None,
                handed: after,
            },
            held: VecDeque::new(),
            out: VecDeque::new(),
            stats: Stats {
                catch_ups: 1,
                ..Stats::default()
            },
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The revision up to which every change within the filter has been handed out, as
    /// far as the messages tell (a loss not yet noticed is not known here).
    pub fn position(&self) -> Revision {
        let p = match &self.phase {
            Phase::CatchUp { changes, .. } => changes.position().max(self.tracker.safe()),
            Phase::Live => self.tracker.position(),
            Phase::Fill { after, .. } => self.tracker.position().min(*after),
        };
        match self.out.front() {
            Some(c) => p.min(c.revision.saturating_sub(1)),
            None => p,
        }
    }

    fn follows(&self, ch: &Channel) -> bool {
        self.channels.as_ref().is_none_or(|chs| chs.contains(ch))
    }

    fn decode(&self, bytes: &[u8]) -> Option<Message> {
        match decode(bytes) {
            Ok(m) if self.follows(&m.channel()) => Some(m),
            // Another channel's, still arriving after an unsubscribe.
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "pubsub: message ignored");
                None
            }
        }
    }

    /// Reads the store's stream again from where every channel is complete.
    fn catch_up(&mut self) {
        let after = self.tracker.safe();
        self.stats.catch_ups += 1;
        self.phase = Phase::CatchUp {
            changes: self.source.watch(after, self.filter.clone()),
            target: None,
            handed: after,
        };
    }

    /// Judges one message: hands out its changes, drops it, or starts a fill.
    fn judge(&mut self, m: Message) {
        match self.tracker.offer(&m) {
            Verdict::Deliver => {
                if let Message::Data { changes, .. } = m {
                    for c in changes {
                        if self.filter.admits(&c.table, c.topic.as_deref()) {
                            self.stats.from_messages += 1;
                            self.out.push_back(c);
                        }
                    }
                }
            }
            Verdict::Drop => {}
            Verdict::Gap {
                channel,
                after,
                upto,
            } => {
                tracing::debug!(?channel, after, upto, "pubsub: gap; filling from the store");
                self.stats.gaps += 1;
                let filter = Filter {
                    tables: self.filter.tables.clone(),
                    topics: Some(channel.topic().map(str::to_string).into_iter().collect()),
                };
                self.phase = Phase::Fill {
                    changes: self.source.watch(after, filter),
                    channel,
                    after,
                    upto,
                    pending: m,
                };
            }
        }
    }

    /// The next change. Cancel-safe: each step awaits once and then only updates state.
    pub async fn next(&mut self) -> Result<Change> {
        loop {
            if let Some(c) = self.out.pop_front() {
                return Ok(c);
            }
            if self.feed.take_reconnected() {
                self.catch_up();
            }
            match &mut self.phase {
                Phase::Live => {
                    if let Some(m) = self.held.pop_front() {
                        self.judge(m);
                        continue;
                    }
                    match tokio::time::timeout(POLL, self.feed.messages.recv()).await {
                        Ok(Some(bytes)) => {
                            if let Some(m) = self.decode(&bytes) {
                                self.judge(m);
                            }
                        }
                        Ok(None) => {
                            return Err(StoreError::Unavailable(
                                "pubsub subscription ended".into(),
                            ));
                        }
                        Err(_) => {}
                    }
                }
                Phase::CatchUp { .. } => self.catch_up_step().await?,
                Phase::Fill { .. } => self.fill_step().await?,
            }
        }
    }

    async fn catch_up_step(&mut self) -> Result<()> {
        // What arrived meanwhile is held; the first message says how far to read.
        while let Ok(bytes) = self.feed.messages.try_recv() {
            let Some(m) = self.decode(&bytes) else {
                continue;
            };
            if let Phase::CatchUp { target, .. } = &mut self.phase
                && target.is_none()
            {
                *target = match &m {
                    Message::Data { revision, .. } => Some(revision - 1),
                    Message::Tick { revision } => Some(*revision),
                    Message::Tail { .. } => None,
                };
            }
            if self.held.len() < HELD {
                self.held.push_back(m);
            }
        }
        let Phase::CatchUp {
            changes,
            target,
            handed,
        } = &mut self.phase
        else {
            return Ok(());
        };
        let mut reached = None;
        if let Ok(c) = tokio::time::timeout(POLL, changes.next()).await {
            let c = c?;
            if target.is_some_and(|t| c.revision > t) && c.revision > *handed {
                // The first change past the first message (a busy stream sends no
                // progress): everything before its revision is out; it and the rest
                // come as messages.
                reached = Some(c.revision - 1);
            } else {
                *handed = (*handed).max(c.revision);
                if !self
                    .tracker
                    .covered(&Channel::of(c.topic.as_deref()), c.revision)
                {
                    self.stats.from_store += 1;
                    self.out.push_back(c);
                }
            }
        }
        let p = changes.position();
        // Or at a revision's end past the first message (a quiet stream).
        if reached.is_none() && target.is_some_and(|t| p >= t) && p >= *handed {
            reached = Some(p);
        }
        if let Some(p) = reached {
            self.tracker.raise_floor(p);
            self.phase = Phase::Live;
        }
        Ok(())
    }

    async fn fill_step(&mut self) -> Result<()> {
        let Phase::Fill {
            channel,
            upto,
            changes,
            ..
        } = &mut self.phase
        else {
            return Ok(());
        };
        let mut done = false;
        if let Ok(c) = tokio::time::timeout(POLL, changes.next()).await {
            let c = c?;
            if c.revision > *upto {
                done = true; // past the gap: its message comes (or is missed) on its own
            } else if Channel::of(c.topic.as_deref()) != *channel {
                // A topic's filter passes the topic-less objects too: not this gap's.
            } else {
                self.stats.from_store += 1;
                self.out.push_back(c);
            }
        }
        if done || changes.position() >= *upto {
            let (channel, upto) = (channel.clone(), *upto);
            self.tracker.filled(&channel, upto);
            if let Phase::Fill { pending, .. } = std::mem::replace(&mut self.phase, Phase::Live) {
                self.judge(pending);
            }
        }
        Ok(())
    }
}
