//! Packet views and `Repr` types for the packets a Dragonflow controller parses and builds.
//!
//! Every protocol module offers the same three layers, in the style of smoltcp's `wire`:
//!
//! * a *view* (`Frame`, `Packet`) over any `AsRef<[u8]>` buffer with field getters and, for
//!   `AsMut<[u8]>` buffers, setters;
//! * a high-level `Repr` with `parse(&view) -> Result<Repr>`, `buffer_len()` and
//!   `emit(&self, &mut view)`;
//! * builders for the replies a controller sends (ARP reply, neighbor advertisement, ICMP
//!   errors quoting the offending datagram, TCP RST, DHCP and DHCPv6 replies).
//!
//! # Panic contract
//!
//! Packets come from untrusted VMs, so:
//!
//! * `new_checked(buf)` validates every length the accessors rely on; after it succeeds, no
//!   getter (and no `parse`) panics, whatever the bytes are.
//! * `Repr::emit` into a view over a buffer of at least `buffer_len()` bytes (made with
//!   `new_unchecked`) never panics.
//! * `new_unchecked` skips validation: accessors on a view over a too-short buffer may panic.
//!   Use it only for buffers you sized yourself for `emit`.
//! * The builders (`reply_frame`, `time_exceeded`, ...) never panic on any input; they
//!   return an `Error` when the input cannot be answered.

// Bytes from the network: a narrowing cast must say what bounds it (try_from, or a
// reason beside it), and nothing is public that the crate's users cannot reach.
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]
#![warn(missing_docs)]

pub mod arp;
pub mod checksum;
pub mod dhcpv4;
pub mod dhcpv6;
pub mod dhcpv6_server;
pub mod dns;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod mcast;
pub mod ra;
pub mod tcp;
pub mod udp;

pub use ethernet::EthernetAddress;
pub use ip::IpProtocol;

use std::fmt;

/// Why a buffer could not be viewed or parsed, or a reply could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the lengths in its headers require.
    Truncated,
    /// A field holds a value the protocol forbids (bad version, length, option, ...).
    Malformed,
    /// The checksum does not match the contents.
    Checksum,
    /// Well-formed but not handled here (unknown message type, option overload, ...), or a
    /// reply the RFCs forbid (e.g. an ICMP error about an ICMP error).
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::Malformed => "malformed packet",
            Error::Checksum => "bad checksum",
            Error::Unsupported => "unsupported packet",
        })
    }
}

impl std::error::Error for Error {}

/// Result of parsing or building a packet.
pub type Result<T> = std::result::Result<T, Error>;
