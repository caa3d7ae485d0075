//! The messages of the publish-subscribe fan-out and their encoding: one JSON object each,
//! the changes in the NB stream's own form ([`crate::source::wire`]). Sans-IO; the decoder
//! takes bytes from the network, so anything it is given yields a message or an error,
//! never a panic (fuzzed: `crates/nbdb/fuzz`, target `pubsub`).

use crate::source::wire as nbwire;
use crate::{Change, Revision};
use serde_json::{Value, json};

/// Where a message is published: one channel per topic, and one for the objects every
/// host needs (no topic: chassis, claims).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Global,
    Topic(String),
}

impl Channel {
    /// The channel of an object with this topic.
    pub fn of(topic: Option<&str>) -> Channel {
        match topic {
            None => Channel::Global,
            Some(t) => Channel::Topic(t.to_string()),
        }
    }

    /// The routing key: the zmq subscription prefix and the tail of the Redis channel
    /// name. It ends with a newline so that one topic's key is never a prefix of
    /// another's (zmq matches subscriptions by prefix).
    pub fn key(&self) -> String {
        match self {
            Channel::Global => "g\n".to_string(),
            Channel::Topic(t) => format!("t:{t}\n"),
        }
    }

    fn name(&self) -> String {
        match self {
            Channel::Global => "g".into(),
            Channel::Topic(t) => format!("t:{t}"),
        }
    }

    fn from_name(s: &str) -> Option<Channel> {
        match s {
            "g" => Some(Channel::Global),
            _ => s.strip_prefix("t:").map(|t| Channel::Topic(t.to_string())),
        }
    }

    /// The topic, `None` for the global channel.
    pub fn topic(&self) -> Option<&str> {
        match self {
            Channel::Global => None,
            Channel::Topic(t) => Some(t),
        }
    }
}

/// One published message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Every change of `revision` on `channel`; the channel had no change in
    /// `(prev, revision)`. A subscriber that has not seen `channel` up to `prev` lost
    /// something and fills the gap from the store.
    Data {
        channel: Channel,
        prev: Revision,
        revision: Revision,
        changes: Vec<Change>,
    },
    /// The last revision published on `channel`, sent again after the channel went quiet,
    /// so that the loss of a channel's last message is noticed too.
    Tail { channel: Channel, last: Revision },
    /// Everything up to `revision` was published (on the global channel): how far a
    /// subscriber has come when its own channels are quiet.
    Tick { revision: Revision },
}

impl Message {
    /// The channel it is published on.
    pub fn channel(&self) -> Channel {
        match self {
            Message::Data { channel, .. } | Message::Tail { channel, .. } => channel.clone(),
            Message::Tick { .. } => Channel::Global,
        }
    }
}

/// Why bytes are not a message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad pubsub message: {0}")]
pub struct DecodeError(pub String);

/// The format's version, in every message: a subscriber ignores what it cannot read.
const VERSION: u64 = 1;

/// The bytes of a message. A change whose value is not JSON is left out (and logged), as
/// the NB stream does.
pub fn encode(m: &Message) -> Vec<u8> {
    let v = match m {
        Message::Data {
            channel,
            prev,
            revision,
            changes,
        } => {
            let changes: Vec<Value> = changes.iter().filter_map(nbwire::change).collect();
            json!({"v": VERSION, "ch": channel.name(), "prev": prev, "rev": revision, "changes": changes})
        }
        Message::Tail { channel, last } => {
            json!({"v": VERSION, "ch": channel.name(), "tail": last})
        }
        Message::Tick { revision } => json!({"v": VERSION, "tick": revision}),
    };
    v.to_string().into_bytes()
}

/// The message in `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let bad = |what: &str| DecodeError(what.to_string());
    let v: Value = serde_json::from_slice(bytes).map_err(|e| DecodeError(e.to_string()))?;
    let o = v.as_object().ok_or_else(|| bad("not an object"))?;
    if o.get("v").and_then(Value::as_u64) != Some(VERSION) {
        return Err(bad("unknown version"));
    }
    let rev = |k: &str| o.get(k).and_then(Value::as_u64);
    if let Some(revision) = rev("tick") {
        return Ok(Message::Tick { revision });
    }
    let channel = o
        .get("ch")
        .and_then(Value::as_str)
        .and_then(Channel::from_name)
        .ok_or_else(|| bad("no channel"))?;
    if let Some(last) = rev("tail") {
        return Ok(Message::Tail { channel, last });
    }
    let (Some(prev), Some(revision)) = (rev("prev"), rev("rev")) else {
        return Err(bad("no revisions"));
    };
    if prev >= revision {
        return Err(bad("prev not before rev"));
    }
    let items = o
        .get("changes")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no changes"))?;
    let mut changes = Vec::with_capacity(items.len());
    for item in items {
        let c = nbwire::parse(item).map_err(|e| DecodeError(e.to_string()))?;
        // A change of another revision or channel would break the chain it rides on.
        if c.revision != revision || Channel::of(c.topic.as_deref()) != channel {
            return Err(bad("a change of another revision or channel"));
        }
        changes.push(c);
    }
    Ok(Message::Data {
        channel,
        prev,
        revision,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(rev: Revision, topic: Option<&str>, value: Option<&str>) -> Change {
        Change {
            revision: rev,
            table: "port".into(),
            id: format!("p{rev}"),
            topic: topic.map(str::to_string),
            value: value.map(|v| v.as_bytes().to_vec()),
        }
    }

    #[test]
    fn messages_go_through_their_encoding_unchanged() {
        let t = Channel::Topic("n1".into());
        for m in [
            Message::Data {
                channel: t.clone(),
                prev: 3,
                revision: 7,
                changes: vec![
                    change(7, Some("n1"), Some(r#"{"a":1}"#)),
                    change(7, Some("n1"), None),
                ],
            },
            Message::Data {
                channel: Channel::Global,
                prev: 0,
                revision: 1,
                changes: vec![change(1, None, Some("2"))],
            },
            Message::Tail {
                channel: t,
                last: 9,
            },
            Message::Tick { revision: 12 },
        ] {
            assert_eq!(decode(&encode(&m)), Ok(m.clone()), "{m:?}");
        }
    }

    #[test]
    fn keys_of_two_topics_are_never_prefixes_of_each_other() {
        let (a, ab) = (Channel::Topic("a".into()), Channel::Topic("ab".into()));
        assert!(!ab.key().starts_with(&a.key()));
        assert!(!a.key().starts_with(&Channel::Global.key()));
    }

    #[test]
    fn malformed_messages_are_errors() {
        for bad in [
            &b""[..],
            b"\xff",
            b"[]",
            br#"{"v":2,"tick":1}"#,
            br#"{"v":1}"#,
            br#"{"v":1,"ch":"x","tail":1}"#,
            br#"{"v":1,"ch":"g","prev":5,"rev":5,"changes":[]}"#,
            br#"{"v":1,"ch":"g","prev":1,"rev":5}"#,
            br#"{"v":1,"ch":"g","prev":1,"rev":5,"changes":[{"revision":4,"table":"t","id":"i"}]}"#,
            br#"{"v":1,"ch":"t:a","prev":1,"rev":5,"changes":[{"revision":5,"table":"t","id":"i"}]}"#,
        ] {
            assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
