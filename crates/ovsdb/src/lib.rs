//! An async client for OVSDB (RFC 7047), as used by the per-host controller to drive
//! Open vSwitch's `ovsdb-server`.
//!
//! Layers, one module each:
//! - [`framing`]: splits the byte stream into JSON texts (never panics on any input);
//! - [`rpc`]: one JSON-RPC connection (request ids, echo, inactivity probe);
//! - [`value`], [`schema`]: OVSDB values and column types;
//! - [`ops`]: typed `transact` operations and results; [`error`]: typed errors;
//! - [`replica`], [`monitor`]: `monitor_cond`/`monitor` into a local replica with typed row
//!   changes, reconnecting and resyncing by itself;
//! - [`client`]: the handle used by everything else;
//! - [`vswitch`]: idempotent helpers for bridges, ports and interfaces of the Open_vSwitch
//!   database; [`iface`]: a watcher of interfaces (ofport, iface-id, link state).

#![warn(missing_docs)]

pub mod client;
pub mod error;
pub mod framing;
pub mod iface;
pub mod monitor;
pub mod ops;
pub mod replica;
pub mod rpc;
pub mod schema;
pub mod value;
pub mod vswitch;

pub use client::{Client, ClientOptions, OPEN_VSWITCH};
pub use error::{Error, ErrorKind, OvsdbError, Result};
pub use iface::{InterfaceEvent, InterfaceState, InterfaceWatcher};
pub use monitor::{Backoff, Monitor, MonitorEvent, MonitorSpec, TableMonitor};
pub use ops::{Condition, Function, Mutation, Mutator, OpResult, Operation, WaitUntil};
pub use replica::{ChangeKind, Replica, RowChange};
pub use rpc::{RpcOptions, Target};
pub use schema::Schema;
pub use value::{Atom, Row, Uuid, Value};
pub use vswitch::{Applied, BridgeSpec, FailMode, PortSpec, TunnelKind};
