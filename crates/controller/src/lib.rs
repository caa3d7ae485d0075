//! The per-host local controller. So far: the pipeline declaration that every app's flows
//! will be checked against (issue 5 builds the view, the apps and the reconciler on it).

pub mod pipeline;
