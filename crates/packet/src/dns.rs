//! DNS messages (RFC 1035) as the controller's internal resolver needs them: any message
//! parsed (header, questions and the three record sections, names with compression
//! pointers), and answers built (A, AAAA and PTR records, cut to a size limit with the TC
//! bit set). Sans-IO, never panics on input (fuzzed, target `dns`); compression pointers
//! must point backwards, so no name can loop.

use crate::{Error, Result};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The DNS port.
pub const PORT: u16 = 53;
/// The largest answer over UDP without EDNS (RFC 1035 4.2.1).
pub const MAX_UDP_LEN: usize = 512;
/// Class IN.
pub const CLASS_IN: u16 = 1;
const HEADER_LEN: usize = 12;
const MAX_NAME_LEN: usize = 255;
const MAX_LABEL_LEN: usize = 63;

/// Record types this module names.
pub mod rtype {
    /// IPv4 address.
    pub const A: u16 = 1;
    /// Name server.
    pub const NS: u16 = 2;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// Start of authority.
    pub const SOA: u16 = 6;
    /// Reverse pointer.
    pub const PTR: u16 = 12;
    /// IPv6 address.
    pub const AAAA: u16 = 28;
    /// EDNS pseudo-record.
    pub const OPT: u16 = 41;
    /// Any type (a query only).
    pub const ANY: u16 = 255;
}

/// Response codes.
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// The query could not be read.
    pub const FORMERR: u8 = 1;
    /// The server failed.
    pub const SERVFAIL: u8 = 2;
    /// The name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// The kind of query is not implemented.
    pub const NOTIMP: u8 = 4;
    /// The server will not answer this.
    pub const REFUSED: u8 = 5;
}

/// A domain name as its labels (bytes as received: case is kept, compared without it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Name {
    labels: Vec<Vec<u8>>,
}

impl Name {
    /// The root name.
    pub fn root() -> Name {
        Name::default()
    }

    /// A name from its dotted form (`vm1.example.org.`, the final dot optional): labels of
    /// 1 to 63 bytes, at most 255 bytes on the wire.
    pub fn from_dotted(s: &str) -> Result<Name> {
        let s = s.strip_suffix('.').unwrap_or(s);
        let labels: Vec<Vec<u8>> = if s.is_empty() {
            Vec::new()
        } else {
            s.split('.').map(|l| l.as_bytes().to_vec()).collect()
        };
        let name = Name { labels };
        if name
            .labels
            .iter()
            .any(|l| l.is_empty() || l.len() > MAX_LABEL_LEN)
            || name.wire_len() > MAX_NAME_LEN
        {
            return Err(Error::Malformed);
        }
        Ok(name)
    }

    /// The labels, first (leftmost) first.
    pub fn labels(&self) -> &[Vec<u8>] {
        &self.labels
    }

    /// The name in lowercase dotted form with the final dot (`vm1.example.org.`; the root
    /// is `.`), or `None` when a label holds a dot or a byte outside printable ASCII (no
    /// name this resolver knows looks like that).
    pub fn to_lowercase_dotted(&self) -> Option<String> {
        if self.labels.is_empty() {
            return Some(".".into());
        }
        let mut out = String::with_capacity(self.wire_len());
        for l in &self.labels {
            if l.iter().any(|b| *b == b'.' || !b.is_ascii_graphic()) {
                return None;
            }
            out.extend(l.iter().map(|b| char::from(b.to_ascii_lowercase())));
            out.push('.');
        }
        Some(out)
    }

    /// Bytes on the wire, uncompressed (labels with their length bytes, and the root).
    pub fn wire_len(&self) -> usize {
        self.labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1
    }

    fn emit(&self, out: &mut Vec<u8>) {
        for l in &self.labels {
            // Labels are at most 63 bytes: checked where a name is made.
            out.push(u8::try_from(l.len()).unwrap_or(0));
            out.extend_from_slice(l);
        }
        out.push(0);
    }

    /// Reads the name at `pos` of `msg`; returns it and where the record goes on.
    fn parse(msg: &[u8], mut pos: usize) -> Result<(Name, usize)> {
        let mut labels = Vec::new();
        let mut len = 1;
        let mut end = None;
        // Every pointer must go strictly backwards, so the walk ends.
        let mut limit = pos;
        loop {
            let b = *msg.get(pos).ok_or(Error::Truncated)?;
            match b & 0xc0 {
                0x00 if b == 0 => {
                    return Ok((Name { labels }, end.unwrap_or(pos + 1)));
                }
                0x00 => {
                    let n = usize::from(b);
                    let label = msg.get(pos + 1..pos + 1 + n).ok_or(Error::Truncated)?;
                    len += n + 1;
                    if len > MAX_NAME_LEN {
                        return Err(Error::Malformed);
                    }
                    labels.push(label.to_vec());
                    pos += 1 + n;
                }
                0xc0 => {
                    let lo = *msg.get(pos + 1).ok_or(Error::Truncated)?;
                    let target = usize::from(u16::from_be_bytes([b & 0x3f, lo]));
                    if target >= limit {
                        return Err(Error::Malformed);
                    }
                    end.get_or_insert(pos + 2);
                    limit = target;
                    pos = target;
                }
                // 0x40 and 0x80: extended label types (RFC 6891 retired them).
                _ => return Err(Error::Malformed),
            }
        }
    }
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name asked about.
    pub name: Name,
    /// Its type (`rtype`).
    pub qtype: u16,
    /// Its class (IN).
    pub qclass: u16,
}

/// One resource record as read: its data left raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The owner name.
    pub name: Name,
    /// Its type (`rtype`).
    pub rtype: u16,
    /// Its class (for OPT: the sender's UDP payload size).
    pub class: u16,
    /// Time to live (for OPT: extended flags).
    pub ttl: u32,
    /// The record data.
    pub data: Vec<u8>,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The id the answer must carry.
    pub id: u16,
    /// The flags word: QR, opcode, AA, TC, RD, RA, Z, AD, CD, RCODE.
    pub flags: u16,
    /// The question section.
    pub questions: Vec<Question>,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section.
    pub authority: Vec<Record>,
    /// The additional section.
    pub additional: Vec<Record>,
}

fn u16_at(b: &[u8], pos: usize) -> Result<u16> {
    let s = b.get(pos..pos + 2).ok_or(Error::Truncated)?;
    Ok(u16::from_be_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], pos: usize) -> Result<u32> {
    let s = b.get(pos..pos + 4).ok_or(Error::Truncated)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl Message {
    /// Parses a whole message; bytes past its last record are ignored.
    pub fn parse(b: &[u8]) -> Result<Message> {
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let id = u16_at(b, 0)?;
        let flags = u16_at(b, 2)?;
        let counts = [u16_at(b, 4)?, u16_at(b, 6)?, u16_at(b, 8)?, u16_at(b, 10)?];
        let mut pos = HEADER_LEN;
        let mut questions = Vec::new();
        for _ in 0..counts[0] {
            let (name, at) = Name::parse(b, pos)?;
            questions.push(Question {
                name,
                qtype: u16_at(b, at)?,
                qclass: u16_at(b, at + 2)?,
            });
            pos = at + 4;
        }
        let mut sections: [Vec<Record>; 3] = Default::default();
        for (section, count) in sections.iter_mut().zip(&counts[1..]) {
            for _ in 0..*count {
                let (name, at) = Name::parse(b, pos)?;
                let rdlen = usize::from(u16_at(b, at + 8)?);
                let data = b
                    .get(at + 10..at + 10 + rdlen)
                    .ok_or(Error::Truncated)?
                    .to_vec();
                section.push(Record {
                    name,
                    rtype: u16_at(b, at)?,
                    class: u16_at(b, at + 2)?,
                    ttl: u32_at(b, at + 4)?,
                    data,
                });
                pos = at + 10 + rdlen;
            }
        }
        let [answers, authority, additional] = sections;
        Ok(Message {
            id,
            flags,
            questions,
            answers,
            authority,
            additional,
        })
    }

    /// Whether it is a response (QR).
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// The opcode (0: a standard query).
    pub fn opcode(&self) -> u8 {
        u8::try_from((self.flags >> 11) & 0xf).unwrap_or(0)
    }

    /// Recursion desired.
    pub fn recursion_desired(&self) -> bool {
        self.flags & 0x0100 != 0
    }

    /// Truncated (TC).
    pub fn truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }

    /// The response code (low four bits).
    pub fn rcode(&self) -> u8 {
        u8::try_from(self.flags & 0xf).unwrap_or(0)
    }

    /// The UDP payload size the sender takes (its EDNS OPT record), if it says.
    pub fn edns_udp_size(&self) -> Option<u16> {
        self.additional
            .iter()
            .find(|r| r.rtype == rtype::OPT)
            .map(|r| r.class)
    }
}

/// The data of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A reverse pointer's name.
    Ptr(Name),
}

/// One answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The owner name.
    pub name: Name,
    /// Time to live in seconds.
    pub ttl: u32,
    /// What it says.
    pub data: Data,
}

/// An answer to a query, to be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The query's id.
    pub id: u16,
    /// The query's opcode.
    pub opcode: u8,
    /// The query's RD bit, echoed.
    pub recursion_desired: bool,
    /// Whether this server is the authority for the name (AA).
    pub authoritative: bool,
    /// Whether recursion is available (RA).
    pub recursion_available: bool,
    /// The response code (`rcode`).
    pub rcode: u8,
    /// The question, echoed.
    pub question: Option<Question>,
    /// The answers.
    pub answers: Vec<Answer>,
}

impl Response {
    /// An empty answer to `query` with `rcode`, echoing its id, opcode, RD and question.
    pub fn to(query: &Message, rcode: u8) -> Response {
        Response {
            id: query.id,
            opcode: query.opcode(),
            recursion_desired: query.recursion_desired(),
            authoritative: false,
            recursion_available: false,
            rcode,
            question: query.questions.first().cloned(),
            answers: Vec::new(),
        }
    }

    /// The message, at most `max_len` bytes (at least the header and question): answers
    /// that do not fit are left out whole and the TC bit is set, so the client knows to
    /// ask again over TCP.
    pub fn build(&self, max_len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_UDP_LEN);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        let qd = u16::from(self.question.is_some());
        out.extend_from_slice(&qd.to_be_bytes());
        out.extend_from_slice(&[0; 6]);
        if let Some(q) = &self.question {
            q.name.emit(&mut out);
            out.extend_from_slice(&q.qtype.to_be_bytes());
            out.extend_from_slice(&q.qclass.to_be_bytes());
        }
        let mut count: u16 = 0;
        let mut truncated = false;
        for a in &self.answers {
            let mut rr = Vec::new();
            // The question's name is at offset 12: point there when the owner is it.
            match &self.question {
                Some(q) if q.name == a.name => rr.extend_from_slice(&[0xc0, 12]),
                _ => a.name.emit(&mut rr),
            }
            let (t, data) = match &a.data {
                Data::A(ip) => (rtype::A, ip.octets().to_vec()),
                Data::Aaaa(ip) => (rtype::AAAA, ip.octets().to_vec()),
                Data::Ptr(n) => {
                    let mut d = Vec::new();
                    n.emit(&mut d);
                    (rtype::PTR, d)
                }
            };
            rr.extend_from_slice(&t.to_be_bytes());
            rr.extend_from_slice(&CLASS_IN.to_be_bytes());
            rr.extend_from_slice(&a.ttl.to_be_bytes());
            // A name is at most 255 bytes, an address 16.
            rr.extend_from_slice(&u16::try_from(data.len()).unwrap_or(0).to_be_bytes());
            rr.extend_from_slice(&data);
            if out.len() + rr.len() > max_len || count == u16::MAX {
                truncated = true;
                break;
            }
            out.extend_from_slice(&rr);
            count += 1;
        }
        let mut flags: u16 = 0x8000 | (u16::from(self.opcode & 0xf) << 11);
        flags |= u16::from(self.authoritative) << 10;
        flags |= u16::from(truncated) << 9;
        flags |= u16::from(self.recursion_desired) << 8;
        flags |= u16::from(self.recursion_available) << 7;
        flags |= u16::from(self.rcode & 0xf);
        out[2..4].copy_from_slice(&flags.to_be_bytes());
        out[6..8].copy_from_slice(&count.to_be_bytes());
        out
    }
}

/// The address a reverse name (`5.0.0.10.in-addr.arpa.`, or the 32 nibbles of
/// `ip6.arpa.`) stands for, given in lowercase dotted form.
pub fn reverse_address(name: &str) -> Option<std::net::IpAddr> {
    if let Some(v4) = name.strip_suffix(".in-addr.arpa.") {
        let parts: Vec<u8> = v4
            .split('.')
            .map(|p| {
                // No leading zeros: one spelling per address.
                (p == "0" || !p.starts_with('0'))
                    .then(|| p.parse().ok())
                    .flatten()
            })
            .collect::<Option<_>>()?;
        let [d, c, b, a] = parts.as_slice() else {
            return None;
        };
        return Some(Ipv4Addr::new(*a, *b, *c, *d).into());
    }
    let v6 = name.strip_suffix(".ip6.arpa.")?;
    let nibbles: Vec<u8> = v6
        .split('.')
        .map(|n| match n.len() {
            1 => u8::from_str_radix(n, 16).ok(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut octets = [0u8; 16];
    for (i, pair) in nibbles.rchunks(2).enumerate() {
        // rchunks from the end: [low, high] of octet i (the name lists low nibble first).
        octets[i] = (pair[1] << 4) | pair[0];
    }
    Some(Ipv6Addr::from(octets).into())
}

/// The reverse name of `ip` (`5.0.0.10.in-addr.arpa.`).
pub fn reverse_name(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(a) => {
            let [a, b, c, d] = a.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        std::net::IpAddr::V6(a) => {
            let mut s = String::with_capacity(72);
            for o in a.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", o & 0xf, o >> 4));
            }
            s.push_str("ip6.arpa.");
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query shaped as dig 9.18 sends one (EDNS with a 1232-byte size and a cookie).
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0xab, 0xcd, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1];
        Name::from_dotted(name).unwrap().emit(&mut q);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        // OPT: root, type 41, size 1232, ttl 0, a 12-byte cookie option.
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 16]);
        q.extend_from_slice(&[0, 10, 0, 12]);
        q.extend_from_slice(&[7; 12]);
        q
    }

    #[test]
    fn a_query_parses_with_its_edns_size() {
        let m = Message::parse(&query("VM1.Example.org", rtype::AAAA)).unwrap();
        assert_eq!(m.id, 0xabcd);
        assert!(!m.is_response());
        assert_eq!(m.opcode(), 0);
        assert!(m.recursion_desired());
        let q = &m.questions[0];
        assert_eq!(q.qtype, rtype::AAAA);
        assert_eq!(
            q.name.to_lowercase_dotted().as_deref(),
            Some("vm1.example.org.")
        );
        assert_eq!(m.edns_udp_size(), Some(1232));
    }

    #[test]
    fn answers_point_to_the_question_and_round_trip() {
        let m = Message::parse(&query("vm1.example.org", rtype::A)).unwrap();
        let mut r = Response::to(&m, rcode::NOERROR);
        r.authoritative = true;
        r.answers.push(Answer {
            name: m.questions[0].name.clone(),
            ttl: 0,
            data: Data::A(Ipv4Addr::new(10, 0, 0, 5)),
        });
        r.answers.push(Answer {
            name: Name::from_dotted("5.0.0.10.in-addr.arpa").unwrap(),
            ttl: 0,
            data: Data::Ptr(Name::from_dotted("vm1.example.org.").unwrap()),
        });
        let bytes = r.build(MAX_UDP_LEN);
        let back = Message::parse(&bytes).unwrap();
        assert!(back.is_response());
        assert_eq!(back.id, 0xabcd);
        assert_eq!(back.flags & 0x0400, 0x0400, "AA");
        assert!(back.recursion_desired() && !back.truncated());
        assert_eq!(back.answers.len(), 2);
        assert_eq!(back.answers[0].name, m.questions[0].name);
        assert_eq!(back.answers[0].data, [10, 0, 0, 5]);
        assert_eq!(back.answers[1].rtype, rtype::PTR);
        // The first answer's owner is a 2-byte pointer.
        assert_eq!(&bytes[12 + 17 + 4..12 + 17 + 6], &[0xc0, 12]);
    }

    #[test]
    fn too_many_answers_are_cut_with_tc() {
        let m = Message::parse(&query("many.example.org", rtype::A)).unwrap();
        let mut r = Response::to(&m, rcode::NOERROR);
        for i in 0..100u8 {
            r.answers.push(Answer {
                name: Name::from_dotted(&format!("host-{i}.example.org")).unwrap(),
                ttl: 0,
                data: Data::A(Ipv4Addr::new(10, 0, 0, i)),
            });
        }
        let bytes = r.build(MAX_UDP_LEN);
        assert!(bytes.len() <= MAX_UDP_LEN);
        let back = Message::parse(&bytes).unwrap();
        assert!(back.truncated());
        assert!(!back.answers.is_empty() && back.answers.len() < 100);
        assert!(!Message::parse(&r.build(65_535)).unwrap().truncated());
    }

    #[test]
    fn pointer_loops_and_forward_pointers_are_refused() {
        let mut b = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(
            Message::parse(&b),
            Err(Error::Malformed),
            "points at itself"
        );
        let mut b = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[0xc0, 20, 0, 1, 0, 1, 0, 0, 0]);
        assert_eq!(Message::parse(&b), Err(Error::Malformed), "points forward");
        assert_eq!(Message::parse(&[0; 5]), Err(Error::Truncated));
        let mut b = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..5 {
            b.push(63);
            b.extend_from_slice(&[b'a'; 63]);
        }
        b.push(0);
        assert_eq!(Message::parse(&b), Err(Error::Malformed), "over 255 bytes");
    }

    #[test]
    fn names_with_dots_or_odd_bytes_have_no_dotted_form() {
        let n = Name {
            labels: vec![b"a.b".to_vec()],
        };
        assert_eq!(n.to_lowercase_dotted(), None);
        let n = Name {
            labels: vec![vec![b'a', 0]],
        };
        assert_eq!(n.to_lowercase_dotted(), None);
        assert_eq!(Name::root().to_lowercase_dotted().as_deref(), Some("."));
        assert!(Name::from_dotted(&"a".repeat(64)).is_err());
    }

    #[test]
    fn reverse_names_both_ways() {
        for ip in ["10.0.0.5", "fd00::5", "2001:db8::abcd:1"] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(reverse_address(&reverse_name(ip)), Some(ip));
        }
        assert_eq!(
            reverse_name("10.0.0.5".parse().unwrap()),
            "5.0.0.10.in-addr.arpa."
        );
        assert_eq!(reverse_address("05.0.0.10.in-addr.arpa."), None);
        assert_eq!(reverse_address("0.0.10.in-addr.arpa."), None);
        assert_eq!(reverse_address("300.0.0.10.in-addr.arpa."), None);
        assert_eq!(reverse_address("5.ip6.arpa."), None);
        assert_eq!(reverse_address("vm1.example.org."), None);
    }
}
