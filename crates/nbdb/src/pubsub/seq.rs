//! The sequencing of the fan-out, sans-IO: the publisher's [`Sequencer`] chains each
//! channel's messages (each names the revision of the channel's previous one), and a
//! subscriber's [`Tracker`] follows each chain and says when a link is missing.
//!
//! Why chains per channel and not one sequence: a subscriber receives only its channels,
//! so the revisions it sees are never contiguous; only a channel's own history can tell
//! it what it missed. Its tail is covered by [`Message::Tail`], re-sent after a channel
//! goes quiet.

use super::wire::{Channel, Message};
use crate::{Change, Revision};
use std::collections::HashMap;

/// How many sweeps a channel's tail is re-sent after its last message.
const TAIL_SWEEPS: u8 = 3;

/// The publisher's side: where each channel's chain stands.
#[derive(Debug)]
pub struct Sequencer {
    /// The revision the publisher started following from: it knows nothing before it,
    /// so a channel's first message links back to here.
    start: Revision,
    last: HashMap<Channel, Revision>,
    /// Channels whose tail is still to be re-sent, and how many more times.
    recent: HashMap<Channel, u8>,
    published: Revision,
}

impl Sequencer {
    /// A publisher that follows every change after `start`.
    pub fn new(start: Revision) -> Sequencer {
        Sequencer {
            start,
            last: HashMap::new(),
            recent: HashMap::new(),
            published: start,
        }
    }

    /// The messages for one revision's changes: one per channel, in the order of the
    /// channels' first change.
    pub fn revision(&mut self, revision: Revision, changes: Vec<Change>) -> Vec<Message> {
        let mut out: Vec<Message> = Vec::new();
        for c in changes {
            let channel = Channel::of(c.topic.as_deref());
            let found = out.iter_mut().find_map(|m| match m {
                Message::Data {
                    channel: ch,
                    changes,
                    ..
                } if *ch == channel => Some(changes),
                _ => None,
            });
            match found {
                Some(changes) => changes.push(c),
                None => {
                    let prev = self.last.get(&channel).copied().unwrap_or(self.start);
                    if revision <= prev {
                        continue; // not after what was published: never twice
                    }
                    out.push(Message::Data {
                        channel,
                        prev,
                        revision,
                        changes: vec![c],
                    });
                }
            }
        }
        for m in &out {
            let ch = m.channel();
            self.last.insert(ch.clone(), revision);
            self.recent.insert(ch, TAIL_SWEEPS);
        }
        self.published = self.published.max(revision);
        out
    }

    /// Everything up to `revision` was published (a revision only of other tables' or no
    /// changes included).
    pub fn reached(&mut self, revision: Revision) {
        self.published = self.published.max(revision);
    }

    /// The messages of a periodic sweep: the tails of recently active channels and a tick.
    pub fn sweep(&mut self) -> Vec<Message> {
        let mut out = Vec::with_capacity(self.recent.len() + 1);
        self.recent.retain(|ch, left| {
            if let Some(&last) = self.last.get(ch) {
                out.push(Message::Tail {
                    channel: ch.clone(),
                    last,
                });
            }
            *left -= 1;
            *left > 0
        });
        out.push(Message::Tick {
            revision: self.published,
        });
        out
    }
}

/// What a subscriber does with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand out its changes.
    Deliver,
    /// Nothing new (seen already, or a tail or tick that tells nothing missing).
    Drop,
    /// `channel` lost its changes in `(after, upto]`: read them from the store, then
    /// call [`Tracker::filled`] and offer the message again.
    Gap {
        channel: Channel,
        after: Revision,
        upto: Revision,
    },
}

/// A subscriber's side: how far each channel is known complete.
#[derive(Debug)]
pub struct Tracker {
    /// Every channel is complete up to here (where the subscriber started, or the
    /// store's stream brought it).
    floor: Revision,
    known: HashMap<Channel, Revision>,
    /// The highest revision handed out or ticked: how far the subscriber has come.
    position: Revision,
}

impl Tracker {
    /// Every channel complete up to `after`.
    pub fn new(after: Revision) -> Tracker {
        Tracker {
            floor: after,
            known: HashMap::new(),
            position: after,
        }
    }

    /// How far `channel` is known complete.
    pub fn known(&self, channel: &Channel) -> Revision {
        self.known
            .get(channel)
            .copied()
            .unwrap_or(self.floor)
            .max(self.floor)
    }

    /// Where a reader that may have missed anything not confirmed must start: every
    /// channel is complete up to here (a channel without messages since is at it).
    pub fn safe(&self) -> Revision {
        self.floor
    }

    /// How far the subscriber has come (see [`Tracker::position`]'s field).
    pub fn position(&self) -> Revision {
        self.position
    }

    /// A change at `revision` on `channel` was handed out already.
    pub fn covered(&self, channel: &Channel, revision: Revision) -> bool {
        revision <= self.known(channel)
    }

    /// Every channel is complete up to `revision` (the store's stream brought it there).
    pub fn raise_floor(&mut self, revision: Revision) {
        self.floor = self.floor.max(revision);
        let floor = self.floor;
        self.known.retain(|_, k| *k > floor);
        self.position = self.position.max(revision);
    }

    /// `channel` is complete up to `upto` (a gap was filled).
    pub fn filled(&mut self, channel: &Channel, upto: Revision) {
        if upto > self.known(channel) {
            self.known.insert(channel.clone(), upto);
        }
    }

    /// Judges a message; a delivered one advances its channel.
    pub fn offer(&mut self, m: &Message) -> Verdict {
        match m {
            Message::Data {
                channel,
                prev,
                revision,
                ..
            } => {
                let known = self.known(channel);
                if *revision <= known {
                    return Verdict::Drop;
                }
                if *prev > known {
                    return Verdict::Gap {
                        channel: channel.clone(),
                        after: known,
                        upto: *prev,
                    };
                }
                self.known.insert(channel.clone(), *revision);
                self.position = self.position.max(*revision);
                Verdict::Deliver
            }
            Message::Tail { channel, last } => {
                let known = self.known(channel);
                if *last > known {
                    return Verdict::Gap {
                        channel: channel.clone(),
                        after: known,
                        upto: *last,
                    };
                }
                Verdict::Drop
            }
            Message::Tick { revision } => {
                // Only how far the host has come: a loss on one of its channels may not
                // have shown yet, so the floor (where a catch-up starts) stays.
                self.position = self.position.max(*revision);
                Verdict::Drop
            }
        }
    }
}

#[cfg(test)]
#[path = "seq_tests.rs"]
mod tests;
