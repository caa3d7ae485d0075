//! The 8-byte OpenFlow header, stream framing and transaction ids.

use crate::buf::Reader;
use crate::error::{Error, Result};

/// OpenFlow 1.3 wire version.
pub const OFP13_VERSION: u8 = 0x04;

/// Message type numbers (`ofp_type`) of OpenFlow 1.3.
pub mod msg_type {
    #![allow(missing_docs)]
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const GROUP_MOD: u8 = 15;
    pub const PORT_MOD: u8 = 16;
    pub const TABLE_MOD: u8 = 17;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    pub const QUEUE_GET_CONFIG_REQUEST: u8 = 22;
    pub const QUEUE_GET_CONFIG_REPLY: u8 = 23;
    pub const ROLE_REQUEST: u8 = 24;
    pub const ROLE_REPLY: u8 = 25;
    pub const GET_ASYNC_REQUEST: u8 = 26;
    pub const GET_ASYNC_REPLY: u8 = 27;
    pub const SET_ASYNC: u8 = 28;
    pub const METER_MOD: u8 = 29;
}

/// The OpenFlow header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Protocol version.
    pub version: u8,
    /// Message type.
    pub ty: u8,
    /// Total length including the header.
    pub length: u16,
    /// Transaction id.
    pub xid: u32,
}

impl Header {
    /// Header length on the wire.
    pub const LEN: usize = 8;

    /// Parses the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Header> {
        let mut r = Reader::new(buf, "OpenFlow header");
        let h = Header {
            version: r.u8()?,
            ty: r.u8()?,
            length: r.u16()?,
            xid: r.u32()?,
        };
        if usize::from(h.length) < Self::LEN {
            return Err(Error::BadLength("OpenFlow header"));
        }
        Ok(h)
    }
}

/// Splits a byte stream into whole OpenFlow messages.
///
/// Feed it bytes as they arrive with [`FrameReader::extend`] and take complete frames with
/// [`FrameReader::next_frame`]; consumed bytes are dropped lazily so that a burst of small
/// messages costs one move, not one per message.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    pos: usize,
}

impl FrameReader {
    /// An empty reader.
    pub fn new() -> Self {
        FrameReader::default()
    }

    /// Appends received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next complete message (header included), if one is buffered. A length field
    /// below 8 is an error: the stream cannot be resynchronised after it.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        if rest.len() < Header::LEN {
            return Ok(None);
        }
        let h = Header::parse(rest)?;
        let len = usize::from(h.length);
        if rest.len() < len {
            return Ok(None);
        }
        let start = self.pos;
        self.pos += len;
        Ok(self.buf.get(start..start + len))
    }
}

/// Hands out transaction ids, skipping 0 (kept for unsolicited messages).
#[derive(Debug, Clone)]
pub struct XidAllocator {
    next: u32,
}

impl Default for XidAllocator {
    fn default() -> Self {
        XidAllocator { next: 1 }
    }
}

impl XidAllocator {
    /// Starts at 1.
    pub fn new() -> Self {
        XidAllocator::default()
    }

    /// The next xid (wrapping, never 0).
    pub fn next_xid(&mut self) -> u32 {
        let x = self.next;
        self.next = self.next.wrapping_add(1);
        if self.next == 0 {
            self.next = 1;
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_header() {
        let h = Header::parse(&[0x04, 0x0e, 0x00, 0x50, 0xde, 0xad, 0xbe, 0xef]).expect("header");
        assert_eq!(
            h,
            Header {
                version: 4,
                ty: msg_type::FLOW_MOD,
                length: 80,
                xid: 0xdead_beef
            }
        );
        assert_eq!(
            Header::parse(&[4, 0, 0]),
            Err(Error::Truncated("OpenFlow header"))
        );
        assert_eq!(
            Header::parse(&[4, 0, 0, 7, 0, 0, 0, 0]),
            Err(Error::BadLength("OpenFlow header"))
        );
    }

    #[test]
    fn frames_split_across_reads() {
        let a = [4u8, 20, 0, 8, 0, 0, 0, 1];
        let b = [4u8, 2, 0, 11, 0, 0, 0, 2, b'a', b'b', b'c'];
        let stream: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        let mut fr = FrameReader::new();
        fr.extend(&stream[..5]);
        assert_eq!(fr.next_frame(), Ok(None));
        fr.extend(&stream[5..12]);
        assert_eq!(fr.next_frame(), Ok(Some(&a[..])));
        assert_eq!(fr.next_frame(), Ok(None));
        fr.extend(&stream[12..]);
        assert_eq!(fr.next_frame(), Ok(Some(&b[..])));
        assert_eq!(fr.pending(), 0);
    }

    #[test]
    fn xids_skip_zero() {
        let mut x = XidAllocator { next: u32::MAX };
        assert_eq!(x.next_xid(), u32::MAX);
        assert_eq!(x.next_xid(), 1);
        assert_eq!(XidAllocator::new().next_xid(), 1);
    }
}
