//! FWaaS v2 in the datapath (issue 24). So far only its pure rule compiler
//! ([`matches`]): a policy's rules, in order, as prioritised OpenFlow matches with first
//! match winning and the implicit deny below them. The app that places them in tables of
//! its own, with conntrack and the reject handler, is not built yet (docs/architecture.md,
//! "FWaaS v2").

pub mod matches;
