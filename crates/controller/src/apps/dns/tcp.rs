//! DNS over TCP's framing (RFC 1035 4.2.2, RFC 7766), sans-IO: each message goes with a
//! two-byte length before it. [`Framer`] takes the bytes as they arrive and hands out whole
//! messages; the runtime (`dns_tcp`) owns the socket. Bounded: it never holds more than one
//! message (64 KiB) and the start of the next.

/// Why a connection's bytes cannot be read further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A message of length 0 (no DNS message is that short): the peer is not speaking DNS.
    Empty,
    /// A message shorter than a DNS header.
    TooShort,
}

/// The smallest message worth reading: a DNS header.
const HEADER: usize = 12;

/// Reassembles length-prefixed messages from a byte stream.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Bytes that may be taken now without exceeding the bound: the rest of the message
    /// being read (at least its length prefix).
    pub fn want(&self) -> usize {
        match self.buf.as_slice() {
            [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])))
                .saturating_sub(rest.len())
                .max(1),
            [_] => 1,
            [] => 2,
        }
    }

    /// Takes up to [`Framer::want`] bytes of `data`; returns how many it took.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = self.want().min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        n
    }

    /// The next whole message, if one is in.
    pub fn next_message(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        let [a, b, rest @ ..] = self.buf.as_slice() else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        if len == 0 {
            return Some(Err(FrameError::Empty));
        }
        if len < HEADER {
            return Some(Err(FrameError::TooShort));
        }
        if rest.len() < len {
            return None;
        }
        let msg = rest[..len].to_vec();
        self.buf.drain(..2 + len);
        Some(Ok(msg))
    }

    /// Bytes held (at most two plus the longest message).
    pub fn held(&self) -> usize {
        self.buf.len()
    }
}

/// `msg` with its length prefix (none for a message longer than 65535 bytes, which no
/// responder here builds).
pub fn frame(msg: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(msg.len()).ok()?;
    let mut out = Vec::with_capacity(2 + msg.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(f: &mut Framer, mut data: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut out = Vec::new();
        loop {
            while let Some(m) = f.next_message() {
                let err = m.is_err();
                out.push(m);
                if err {
                    return out;
                }
            }
            if data.is_empty() {
                return out;
            }
            let n = f.push(data);
            data = &data[n..];
        }
    }

    #[test]
    fn messages_come_out_whole_however_the_bytes_arrive() {
        let a: Vec<u8> = (0..20).collect();
        let b: Vec<u8> = (100..140).collect();
        let mut stream = frame(&a).unwrap();
        stream.extend(frame(&b).unwrap());
        for chunk in [1, 2, 3, 7, 64] {
            let mut f = Framer::new();
            let mut got = Vec::new();
            for c in stream.chunks(chunk) {
                got.extend(feed(&mut f, c));
            }
            assert_eq!(got, vec![Ok(a.clone()), Ok(b.clone())], "chunks of {chunk}");
            assert_eq!(f.held(), 0);
        }
    }

    #[test]
    fn a_half_message_waits_and_the_bound_holds() {
        let mut f = Framer::new();
        let big = vec![7u8; 65535];
        let s = frame(&big).unwrap();
        // First the length, then the rest of the message, and no more than that.
        assert_eq!(f.push(&s[..1000]), 2);
        assert_eq!(f.push(&s[2..1000]), 998);
        assert!(f.next_message().is_none());
        let mut more = s[1000..].to_vec();
        more.extend(frame(&[1; 12]).unwrap());
        assert_eq!(f.push(&more), s.len() - 1000);
        assert!(f.held() <= 2 + 65535);
        assert_eq!(f.next_message(), Some(Ok(big)));
    }

    #[test]
    fn lengths_no_message_can_have_are_errors() {
        let mut f = Framer::new();
        assert_eq!(feed(&mut f, &[0, 0, 1]), vec![Err(FrameError::Empty)]);
        let mut f = Framer::new();
        assert_eq!(
            feed(&mut f, &[0, 3, 1, 2, 3]),
            vec![Err(FrameError::TooShort)]
        );
        assert_eq!(frame(&vec![0; 65536]), None);
    }
}
