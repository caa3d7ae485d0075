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
//!
//! ```no_run
//! use std::time::Duration;
//! use ovsdb::{BridgeSpec, Client, FailMode, InterfaceEvent, PortSpec, TunnelKind};
//!
//! # async fn demo() -> ovsdb::Result<()> {
//! let ovs = Client::new("unix:/var/run/openvswitch/db.sock")?;
//! // Idempotent: creates br-int or fixes only what differs.
//! let br = ovs
//!     .ensure_bridge(
//!         &BridgeSpec::new("br-int")
//!             .datapath_type("netdev")
//!             .fail_mode(FailMode::Secure)
//!             .protocols(&["OpenFlow13"])
//!             .controllers(&["unix:/run/dragonflow/br-int.sock"]),
//!     )
//!     .await?;
//! if let Some(cfg) = br.next_cfg {
//!     ovs.wait_reconfigured(cfg, Duration::from_secs(10)).await?;
//! }
//! ovs.add_port("br-int", &PortSpec::tunnel("tun-geneve", TunnelKind::Geneve)).await?;
//! let tunnel_ofport = ovs.wait_ofport("tun-geneve", Duration::from_secs(10)).await?;
//!
//! // Bind VM ports as ovs-vswitchd numbers them; reconnects and resyncs by itself.
//! let mut watcher = ovs.watch_interfaces();
//! while let Some(event) = watcher.next().await {
//!     match event {
//!         InterfaceEvent::Added(i) | InterfaceEvent::Changed { new: i, .. } => {
//!             if let (Some(port), Some(ofport)) = (&i.iface_id, i.ofport()) {
//!                 println!("neutron port {port} is OpenFlow port {ofport}");
//!             }
//!         }
//!         InterfaceEvent::Removed(i) => println!("{} is gone", i.name),
//!         InterfaceEvent::Resync(all) => println!("{} interfaces after (re)connect", all.len()),
//!         InterfaceEvent::Disconnected => println!("ovsdb-server lost; retrying"),
//!     }
//! }
//! # let _ = tunnel_ofport;
//! # Ok(())
//! # }
//! ```

// Bytes from ovsdb-server: a narrowing cast must say what bounds it, and nothing is
// public that the crate's users cannot reach.
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    unreachable_pub
)]
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
