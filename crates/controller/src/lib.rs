//! The per-host local controller: the pipeline declaration every app's flows are checked
//! against, the local view of the NB model, the apps (pure flow compilers, flows kept by
//! owner), the packet-in handlers, the reconciler that turns desired versus installed flows
//! into flow-mods, the OpenFlow session that applies them, and the runtime that drives it all.

pub mod apps;
pub mod dns_forward;
pub mod dns_tcp;
pub mod engine;
pub mod heartbeat;
pub mod lb_stats;
pub mod metadata_http;
pub mod metrics;
pub mod nb;
pub mod pipeline;
pub mod reconcile;
pub mod runtime;
pub mod simhost;
pub mod switch;
pub mod view;
