//! The per-host local controller. So far: the pipeline declaration that every app's flows
//! are checked against, the local view of the NB model, the first apps (classification,
//! dispatch, L2 lookup) with flows kept by owner, the reconciler that turns desired versus
//! installed flows into flow-mods, and the OpenFlow session that applies them (issue 5
//! builds the remaining apps and the runtime on these).

pub mod apps;
pub mod pipeline;
pub mod reconcile;
pub mod runtime;
pub mod switch;
pub mod view;
