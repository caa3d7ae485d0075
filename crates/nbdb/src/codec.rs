//! Byte encodings of stored records and change-log entries (embedded and etcd backends).
//!
//! Stored bytes are treated as untrusted: decoding returns an error, never panics.

use crate::{Change, Revision, StoreError};

/// A stored object: the revision that wrote it, its topic ("" for none) and its value.
#[derive(Debug, PartialEq, Eq)]
pub struct Object<'a> {
    pub revision: Revision,
    pub topic: &'a str,
    pub value: &'a [u8],
}

/// Layout: revision (u64 LE), topic length (u32 LE), topic, value.
pub fn encode_object(revision: Revision, topic: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + topic.len() + value.len());
    out.extend_from_slice(&revision.to_le_bytes());
    put_bytes(&mut out, topic.as_bytes());
    out.extend_from_slice(value);
    out
}

pub fn decode_object(bytes: &[u8]) -> Result<Object<'_>, StoreError> {
    let mut r = Reader(bytes);
    let rev = r.take(8)?;
    let revision = u64::from_le_bytes(rev.try_into().map_err(|_| corrupt())?);
    let topic = r.str()?;
    Ok(Object {
        revision,
        topic,
        value: r.0,
    })
}

/// An object's payload without a revision, for backends that keep revisions themselves
/// (etcd): topic length (u32 LE), topic, value.
pub fn encode_value(topic: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + topic.len() + value.len());
    put_bytes(&mut out, topic.as_bytes());
    out.extend_from_slice(value);
    out
}

/// Splits what [`encode_value`] wrote into (topic, value).
pub fn decode_value(bytes: &[u8]) -> Result<(&str, &[u8]), StoreError> {
    let mut r = Reader(bytes);
    let topic = r.str()?;
    Ok((topic, r.0))
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("truncated or malformed stored record".into())
}

/// One change of a revision before encoding.
pub struct LogEntry<'a> {
    pub table: &'a str,
    pub id: &'a str,
    pub topic: &'a str,
    /// `None` for a deletion.
    pub value: Option<&'a [u8]>,
}

/// A change-log entry: the changes of one revision, one after the other.
pub fn encode_changes(changes: &[LogEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in changes {
        put_bytes(&mut out, c.table.as_bytes());
        put_bytes(&mut out, c.id.as_bytes());
        put_bytes(&mut out, c.topic.as_bytes());
        match c.value {
            Some(v) => {
                out.push(1);
                put_bytes(&mut out, v);
            }
            None => out.push(0),
        }
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(corrupt());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = self.take(4)?;
        let len = u32::from_le_bytes(len.try_into().map_err(|_| corrupt())?) as usize;
        self.take(len)
    }

    fn str(&mut self) -> Result<&'a str, StoreError> {
        std::str::from_utf8(self.bytes()?)
            .map_err(|_| StoreError::Corrupt("stored key is not UTF-8".into()))
    }
}

pub(crate) fn topic_of(t: &str) -> Option<String> {
    (!t.is_empty()).then(|| t.to_string())
}

pub fn decode_changes(revision: Revision, bytes: &[u8]) -> Result<Vec<Change>, StoreError> {
    let mut r = Reader(bytes);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let table = r.str()?.to_string();
        let id = r.str()?.to_string();
        let topic = topic_of(r.str()?);
        let value = match r.take(1)?.first() {
            Some(0) => None,
            Some(1) => Some(r.bytes()?.to_vec()),
            _ => return Err(StoreError::Corrupt("bad change tag".into())),
        };
        out.push(Change {
            revision,
            table,
            id,
            topic,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip() {
        let enc = encode_object(42, "proj", b"{}");
        let o = decode_object(&enc).unwrap();
        assert_eq!((o.revision, o.topic, o.value), (42, "proj", &b"{}"[..]));
    }

    #[test]
    fn changes_round_trip() {
        let enc = encode_changes(&[
            LogEntry {
                table: "port",
                id: "a",
                topic: "p1",
                value: Some(b"{}"),
            },
            LogEntry {
                table: "claim",
                id: "ip/x",
                topic: "",
                value: None,
            },
        ]);
        let dec = decode_changes(7, &enc).unwrap();
        assert_eq!(dec.len(), 2);
        assert_eq!(dec[0].value.as_deref(), Some(&b"{}"[..]));
        assert_eq!(dec[0].topic.as_deref(), Some("p1"));
        assert_eq!(dec[1].id, "ip/x");
        assert_eq!((dec[1].value.as_ref(), dec[1].topic.as_ref()), (None, None));
    }

    #[test]
    fn values_round_trip_and_reject_garbage() {
        let enc = encode_value("p", b"xyz");
        assert_eq!(decode_value(&enc).unwrap(), ("p", &b"xyz"[..]));
        assert!(decode_value(b"\xff\xff\xff\x7fabc").is_err());
        assert!(decode_value(b"\x01").is_err());
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let enc = encode_changes(&[LogEntry {
            table: "port",
            id: "abc",
            topic: "t",
            value: Some(b"{\"x\":1}"),
        }]);
        for n in 0..enc.len() {
            let _ = decode_changes(1, &enc[..n]);
        }
        assert!(decode_changes(1, &enc[..enc.len() - 1]).is_err());
        let obj = encode_object(1, "topic", b"v");
        for n in 0..11 {
            assert!(decode_object(&obj[..n]).is_err(), "{n}");
        }
    }
}
