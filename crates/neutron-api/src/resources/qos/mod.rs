//! Neutron's QoS API (`/v2.0/qos/...`): policies (`policies`), their rules as
//! sub-resources and by id alone (`rules`), and the rule types this backend supports
//! (`rule_types`). The rules live inside their policy object (`model::qos`).

pub mod policies;
pub mod rule_types;
pub mod rules;
