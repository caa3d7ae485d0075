//! Splits the OVSDB byte stream into complete top-level JSON texts.
//!
//! OVSDB (RFC 7047) sends JSON-RPC messages back to back with no delimiter, and a read may end
//! anywhere (inside a string, an escape or a multi-byte character). [`Splitter`] tracks just
//! enough lexical state (nesting depth, inside-string, after-backslash) to find where each
//! top-level object or array ends; full parsing is left to `serde_json` on the complete slice.
//! It works on bytes, so split UTF-8 sequences need no care: every structural character is ASCII
//! and never appears inside a multi-byte sequence. It never panics, and it bounds memory with a
//! maximum message size.

/// Default upper bound of one message (OVS itself has no limit, but a replica of a big
/// database arrives in one reply; 64 MiB is generous and still bounded).
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Why the byte stream cannot be split any further. The connection must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A byte that cannot start a JSON-RPC message (only `{` or `[` may, after whitespace).
    #[error("unexpected byte 0x{0:02x} between messages")]
    UnexpectedByte(u8),
    /// A closing bracket that does not match the one opened.
    #[error("mismatched closing bracket 0x{0:02x}")]
    Mismatched(u8),
    /// A message grew past the configured limit.
    #[error("message longer than {0} bytes")]
    TooLong(usize),
    /// Nesting deeper than the limit (protects the later recursive parse).
    #[error("nesting deeper than {0}")]
    TooDeep(usize),
}

/// Maximum nesting accepted; serde_json's own recursion limit is 128.
const MAX_DEPTH: usize = 120;

/// Incremental splitter of concatenated JSON texts.
#[derive(Debug)]
pub struct Splitter {
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned (the lexical state below describes `buf[..scanned]`).
    scanned: usize,
    /// Open brackets, innermost last.
    stack: Vec<u8>,
    in_string: bool,
    escaped: bool,
    max: usize,
    failed: Option<FramingError>,
}

impl Default for Splitter {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE)
    }
}

impl Splitter {
    /// A splitter that rejects messages longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Splitter {
            buf: Vec::new(),
            scanned: 0,
            stack: Vec::new(),
            in_string: false,
            escaped: false,
            max,
            failed: None,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that do not yet form a complete message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Returns the next complete JSON text, `Ok(None)` when more bytes are needed, or an error
    /// once the stream is known to be malformed (then every later call returns it again).
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.scan() {
            Ok(Some(end)) => {
                let rest = self.buf.split_off(end);
                let msg = std::mem::replace(&mut self.buf, rest);
                self.scanned = 0;
                Ok(Some(msg))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf.clear();
                Err(e)
            }
        }
    }

    /// Advances the lexical state; returns the end offset of a complete message if one is found.
    fn scan(&mut self) -> Result<Option<usize>, FramingError> {
        // Whitespace before a message is dropped so that it never counts against the limit.
        if self.stack.is_empty() && self.scanned == 0 {
            let skip = self
                .buf
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .count();
            self.buf.drain(..skip);
        }
        while let Some(&b) = self.buf.get(self.scanned) {
            self.scanned += 1;
            if self.scanned > self.max {
                return Err(FramingError::TooLong(self.max));
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            if self.stack.is_empty() && b != b'{' && b != b'[' {
                return Err(FramingError::UnexpectedByte(b));
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(FramingError::TooDeep(MAX_DEPTH));
                    }
                    self.stack.push(b);
                }
                b'}' | b']' => {
                    let open = if b == b'}' { b'{' } else { b'[' };
                    if self.stack.pop() != Some(open) {
                        return Err(FramingError::Mismatched(b));
                    }
                    if self.stack.is_empty() {
                        return Ok(Some(self.scanned));
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(s: &mut Splitter) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Some(m)) = s.next_message() {
            out.push(String::from_utf8(m).expect("utf8"));
        }
        out
    }

    #[test]
    fn splits_concatenated_messages() {
        let mut s = Splitter::default();
        s.push(br#"{"id":1,"result":[]}{"id":2,"result":{"a":"}{"}} [1,[2]]"#);
        assert_eq!(
            all(&mut s),
            vec![
                r#"{"id":1,"result":[]}"#,
                r#"{"id":2,"result":{"a":"}{"}}"#,
                "[1,[2]]"
            ]
        );
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn tolerates_every_split_point() {
        let text = r#"{"method":"echo","params":["a\"}\\",{"é":"ü"}],"id":"x"}{"id":null}"#;
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let mut s = Splitter::default();
            s.push(&bytes[..cut]);
            let mut got = all(&mut s);
            s.push(&bytes[cut..]);
            got.extend(all(&mut s));
            assert_eq!(
                got,
                vec![
                    r#"{"method":"echo","params":["a\"}\\",{"é":"ü"}],"id":"x"}"#,
                    r#"{"id":null}"#
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn rejects_garbage_and_overlong() {
        let mut s = Splitter::default();
        s.push(b"  x{}");
        assert_eq!(s.next_message(), Err(FramingError::UnexpectedByte(b'x')));
        assert_eq!(s.next_message(), Err(FramingError::UnexpectedByte(b'x')));

        let mut s = Splitter::default();
        s.push(b"{]");
        assert_eq!(s.next_message(), Err(FramingError::Mismatched(b']')));

        let mut s = Splitter::new(8);
        s.push(br#"{"abcdefgh":1}"#);
        assert_eq!(s.next_message(), Err(FramingError::TooLong(8)));

        let mut s = Splitter::default();
        s.push(&[b'['; 200]);
        assert_eq!(s.next_message(), Err(FramingError::TooDeep(MAX_DEPTH)));
    }

    proptest! {
        /// Random bytes (raw, or from JSON's structural alphabet so that deep states are
        /// reached) in random chunks: never panics, and every message returned starts and ends
        /// with matching brackets.
        #[test]
        fn random_bytes_never_panic(
            data in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..512),
                proptest::collection::vec(proptest::sample::select(
                    b"{}[]\"\\a:, \xc3".to_vec()), 0..512),
            ],
            chunk in 1usize..64,
        ) {
            let mut s = Splitter::new(300);
            for part in data.chunks(chunk) {
                s.push(part);
                while let Ok(Some(m)) = s.next_message() {
                    let ends = (m.first().copied(), m.last().copied());
                    prop_assert!(
                        matches!(ends, (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']'))),
                        "bad message {:?}", m
                    );
                    let _ = serde_json::from_slice::<serde_json::Value>(&m);
                }
            }
        }

        /// Valid messages mutated by a byte flip: never panics; valid messages in random chunks
        /// come out whole and parse.
        #[test]
        fn chunked_valid_and_mutated(n in 1usize..5, chunk in 1usize..17,
                                     flip in any::<(usize, u8)>()) {
            let one = r#"{"id":7,"result":[{"rows":[{"name":"br\"{x"}]}],"error":null}"#;
            let text = one.repeat(n);
            let mut s = Splitter::default();
            let mut got = 0;
            for part in text.as_bytes().chunks(chunk) {
                s.push(part);
                while let Ok(Some(m)) = s.next_message() {
                    let v: serde_json::Value = serde_json::from_slice(&m).expect("parses");
                    prop_assert_eq!(&v["id"], &serde_json::json!(7));
                    got += 1;
                }
            }
            prop_assert_eq!(got, n);

            let mut bad = text.into_bytes();
            let i = flip.0 % bad.len();
            bad[i] = flip.1;
            let mut s = Splitter::default();
            s.push(&bad);
            while let Ok(Some(m)) = s.next_message() {
                let _ = serde_json::from_slice::<serde_json::Value>(&m);
            }
        }
    }
}
