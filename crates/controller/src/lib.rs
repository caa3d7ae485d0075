//! The per-host local controller. So far: the pipeline declaration that every app's flows
//! are checked against, the local view of the NB model, and the reconciler that turns
//! desired versus installed flows into flow-mods (issue 5 builds the apps and the switch
//! session on these).

pub mod pipeline;
pub mod reconcile;
pub mod switch;
pub mod view;
