//! A sans-IO BGP-4 speaker core for Dragonflow's dynamic routing: the message codec
//! ([`wire`]), one peer session's state machine driven by explicit time ([`fsm`]) and the
//! routes to send a peer, batched into few UPDATEs ([`rib`]). The runtime (TCP, timers, the
//! NB model) lives in `dragonflow bgp`; nothing here reads a clock or a socket.
//!
//! Only what a speaker that advertises (and never installs) routes needs: OPEN with
//! capabilities (multiprotocol IPv4/IPv6 unicast, 4-octet AS numbers, route refresh,
//! graceful restart),
//! KEEPALIVE, UPDATE (IPv4 NLRI, MP_REACH/MP_UNREACH for IPv6), NOTIFICATION, ROUTE-REFRESH.
//! Bytes from a peer never panic: every malformation is a [`wire::Notification`] with the
//! RFC 4271 §6 code and subcode, to send before closing.

pub mod fsm;
pub mod prefix;
pub mod rib;
pub mod wire;

pub use fsm::{Config, Input, Output, Session, State};
pub use prefix::Prefix;
pub use rib::AdjRibOut;
pub use wire::{Message, Notification};
