//! The BGP-4 message codec: the 19-byte header and framing ([`decode`]), and the messages
//! ([`Message`]). Decoding a peer's bytes gives either a message or the [`Notification`] to
//! answer with; encoding never fails (the caller keeps an UPDATE under [`MAX_LEN`], which
//! [`crate::rib`] does).

mod notification;
mod open;
pub mod update;

pub use notification::*;
pub use open::{Capability, Open};
pub use update::{AsSegment, Attr, Update};

/// The header: 16 bytes of marker, a 2-byte length, a type byte.
pub const HEADER_LEN: usize = 19;
/// The largest message without the extended message capability (RFC 4271 §4.1).
pub const MAX_LEN: usize = 4096;
pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
pub const SAFI_UNICAST: u8 = 1;
/// The 2-octet stand-in for a 4-octet AS (RFC 6793).
pub const AS_TRANS: u16 = 23456;

const OPEN: u8 = 1;
const UPDATE: u8 = 2;
const NOTIFICATION: u8 = 3;
const KEEPALIVE: u8 = 4;
const ROUTE_REFRESH: u8 = 5;

/// One BGP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    /// RFC 2918: the peer asks for the routes of one family again.
    RouteRefresh {
        afi: u16,
        safi: u8,
    },
}

/// What the session negotiated that changes the encoding: whether AS numbers in AS_PATH
/// take 4 octets (RFC 6793). Before the OPENs are exchanged it does not matter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Codec {
    pub four_octet_as: bool,
}

/// Reads one message from the front of `buf`: `Ok(None)` while it is incomplete, or the
/// message and the bytes it took, or the NOTIFICATION a malformed one deserves.
pub fn decode(buf: &[u8], codec: Codec) -> Result<Option<(Message, usize)>, Notification> {
    if buf.len() < HEADER_LEN {
        // A wrong marker is reported as soon as it is seen, so garbage is not waited on.
        if buf.iter().take(16).any(|&b| b != 0xff) {
            return Err(Notification::header(
                CONNECTION_NOT_SYNCHRONIZED,
                Vec::new(),
            ));
        }
        return Ok(None);
    }
    if buf[..16].iter().any(|&b| b != 0xff) {
        return Err(Notification::header(
            CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
        ));
    }
    let len_bytes = [buf[16], buf[17]];
    let len = usize::from(u16::from_be_bytes(len_bytes));
    let kind = buf[18];
    let bad_len = || Notification::header(BAD_MESSAGE_LENGTH, len_bytes);
    let min = match kind {
        OPEN => 29,
        UPDATE => 23,
        NOTIFICATION => 21,
        KEEPALIVE => HEADER_LEN,
        ROUTE_REFRESH => 23,
        _ => return Err(Notification::header(BAD_MESSAGE_TYPE, [kind])),
    };
    if !(min..=MAX_LEN).contains(&len) || (kind == KEEPALIVE && len != HEADER_LEN) {
        return Err(bad_len());
    }
    let Some(body) = buf.get(HEADER_LEN..len) else {
        return Ok(None);
    };
    let msg = match kind {
        OPEN => Message::Open(Open::parse(body)?),
        UPDATE => Message::Update(Update::parse(body, codec)?),
        // A NOTIFICATION is the last word: it is never answered, and its body is at least
        // two bytes by the length check above.
        NOTIFICATION => Message::Notification(Notification::parse(body).ok_or_else(bad_len)?),
        KEEPALIVE => Message::Keepalive,
        _ => {
            if body.len() != 4 {
                return Err(bad_len());
            }
            Message::RouteRefresh {
                afi: u16::from_be_bytes([body[0], body[1]]),
                safi: body[3],
            }
        }
    };
    Ok(Some((msg, len)))
}

impl Message {
    /// The message with its header. An UPDATE over [`MAX_LEN`] is the caller's mistake
    /// (a peer would refuse it); [`crate::rib`] packs them to fit.
    pub fn encode(&self, codec: Codec) -> Vec<u8> {
        let mut out = vec![0xff; 16];
        out.extend_from_slice(&[0, 0, 0]);
        let kind = match self {
            Message::Open(o) => {
                o.emit(&mut out);
                OPEN
            }
            Message::Update(u) => {
                u.emit(&mut out, codec);
                UPDATE
            }
            Message::Notification(n) => {
                n.emit(&mut out);
                NOTIFICATION
            }
            Message::Keepalive => KEEPALIVE,
            Message::RouteRefresh { afi, safi } => {
                out.extend_from_slice(&afi.to_be_bytes());
                out.push(0);
                out.push(*safi);
                ROUTE_REFRESH
            }
        };
        let len = u16::try_from(out.len()).unwrap_or(u16::MAX);
        out[16..18].copy_from_slice(&len.to_be_bytes());
        out[18] = kind;
        out
    }
}

/// Reads a big-endian u16 at `at`, if there.
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads a big-endian u32 at `at`, if there.
pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

#[cfg(test)]
mod tests;
