//! Byte encodings of the embedded store's records and change-log entries.
//!
//! Stored bytes are treated as untrusted: decoding returns an error, never panics.

use crate::{Change, Revision, StoreError};

/// An object value: the writing revision (8 bytes, little endian) then the payload.
pub fn encode_object(revision: Revision, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&revision.to_le_bytes());
    out.extend_from_slice(value);
    out
}

pub fn decode_object(bytes: &[u8]) -> Result<(Revision, &[u8]), StoreError> {
    let (rev, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| StoreError::Corrupt("object shorter than its revision".into()))?;
    Ok((u64::from_le_bytes(*rev), rest))
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// A change-log entry: the changes of one revision as (table, id, optional value) triples.
pub fn encode_changes(changes: &[(&str, &str, Option<&[u8]>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (table, id, value) in changes {
        put_bytes(&mut out, table.as_bytes());
        put_bytes(&mut out, id.as_bytes());
        match value {
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
            return Err(StoreError::Corrupt("truncated change-log entry".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = self.take(4)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, StoreError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| StoreError::Corrupt("change-log key is not UTF-8".into()))
    }
}

pub fn decode_changes(revision: Revision, bytes: &[u8]) -> Result<Vec<Change>, StoreError> {
    let mut r = Reader(bytes);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let table = r.string()?;
        let id = r.string()?;
        let value = match r.take(1)?[0] {
            0 => None,
            1 => Some(r.bytes()?.to_vec()),
            _ => return Err(StoreError::Corrupt("bad change tag".into())),
        };
        out.push(Change {
            revision,
            table,
            id,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip() {
        let enc = encode_changes(&[("port", "a", Some(b"{}")), ("claim", "ip/x", None)]);
        let dec = decode_changes(7, &enc).unwrap();
        assert_eq!(dec.len(), 2);
        assert_eq!(dec[0].value.as_deref(), Some(&b"{}"[..]));
        assert_eq!(dec[1].id, "ip/x");
        assert_eq!(dec[1].value, None);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let enc = encode_changes(&[("port", "abc", Some(b"{\"x\":1}"))]);
        for n in 0..enc.len() {
            let _ = decode_changes(1, &enc[..n]);
        }
        assert!(decode_changes(1, &enc[..enc.len() - 1]).is_err());
        assert!(decode_object(&[1, 2, 3]).is_err());
    }
}
