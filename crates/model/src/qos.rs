//! QoS policies (Neutron's `qos` extension): a policy holds its rules (bandwidth limit per
//! direction, DSCP marking, minimum bandwidth), and ports and networks name a policy by
//! `qos_policy_id`. The rules live inside their policy, so one object carries everything
//! a host compiles for a port and a rule change is one write of the policy.

use crate::{Deletable, Meta, NbObject};
use serde::{Deserialize, Serialize};

/// Neutron's `VALID_DSCP_MARKS`: the DSCP values a marking rule may set.
pub const VALID_DSCP_MARKS: [u8; 22] = [
    0, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 44, 46, 48, 56,
];

/// Direction as seen from the VM: `egress` leaves the VM, `ingress` goes to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QosDirection {
    Egress,
    Ingress,
}

impl QosDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            QosDirection::Egress => "egress",
            QosDirection::Ingress => "ingress",
        }
    }

    pub fn parse(s: &str) -> Option<QosDirection> {
        match s {
            "egress" => Some(QosDirection::Egress),
            "ingress" => Some(QosDirection::Ingress),
            _ => None,
        }
    }
}

/// What a rule does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QosRuleKind {
    BandwidthLimit {
        max_kbps: u32,
        max_burst_kbps: u32,
        direction: QosDirection,
    },
    DscpMarking {
        dscp_mark: u8,
    },
    MinimumBandwidth {
        min_kbps: u32,
        direction: QosDirection,
    },
}

impl QosRuleKind {
    /// Neutron's rule type name (`bandwidth_limit`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            QosRuleKind::BandwidthLimit { .. } => "bandwidth_limit",
            QosRuleKind::DscpMarking { .. } => "dscp_marking",
            QosRuleKind::MinimumBandwidth { .. } => "minimum_bandwidth",
        }
    }

    pub fn direction(&self) -> Option<QosDirection> {
        match self {
            QosRuleKind::BandwidthLimit { direction, .. }
            | QosRuleKind::MinimumBandwidth { direction, .. } => Some(*direction),
            QosRuleKind::DscpMarking { .. } => None,
        }
    }

    /// Two rules of one policy that may not coexist: same type and direction.
    pub fn duplicates(&self, other: &QosRuleKind) -> bool {
        self.type_name() == other.type_name() && self.direction() == other.direction()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QosRule {
    pub id: String,
    #[serde(flatten)]
    pub kind: QosRuleKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QosPolicy {
    #[serde(flatten)]
    pub meta: Meta,
    /// Has a `*` `access_as_shared` RBAC policy (kept in step by the API server).
    pub shared: bool,
    /// The project's default: networks created without a policy take it.
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub rules: Vec<QosRule>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

impl QosPolicy {
    /// The bandwidth limit in `direction`, if any: `(max_kbps, max_burst_kbps)`.
    pub fn limit(&self, direction: QosDirection) -> Option<(&QosRule, u32, u32)> {
        self.rules.iter().find_map(|r| match r.kind {
            QosRuleKind::BandwidthLimit {
                max_kbps,
                max_burst_kbps,
                direction: d,
            } if d == direction => Some((r, max_kbps, max_burst_kbps)),
            _ => None,
        })
    }

    /// The DSCP mark, if any.
    pub fn dscp(&self) -> Option<(&QosRule, u8)> {
        self.rules.iter().find_map(|r| match r.kind {
            QosRuleKind::DscpMarking { dscp_mark } => Some((r, dscp_mark)),
            _ => None,
        })
    }

    /// The minimum bandwidth in `direction`, if any.
    pub fn minimum(&self, direction: QosDirection) -> Option<(&QosRule, u32)> {
        self.rules.iter().find_map(|r| match r.kind {
            QosRuleKind::MinimumBandwidth {
                min_kbps,
                direction: d,
            } if d == direction => Some((r, min_kbps)),
            _ => None,
        })
    }
}

impl NbObject for QosPolicy {
    const TABLE: crate::Table = crate::Table::QosPolicy;
    const KIND: &'static str = "QosPolicy";
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }
}

impl Deletable for QosPolicy {
    fn deleting(&self) -> bool {
        self.deleting
    }
    fn set_deleting(&mut self, on: bool) {
        self.deleting = on;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_through_json() {
        let p = QosPolicy {
            meta: crate::fixtures::meta("q1"),
            shared: false,
            is_default: false,
            rules: vec![
                QosRule {
                    id: "r1".into(),
                    kind: QosRuleKind::BandwidthLimit {
                        max_kbps: 10_000,
                        max_burst_kbps: 1_000,
                        direction: QosDirection::Ingress,
                    },
                },
                QosRule {
                    id: "r2".into(),
                    kind: QosRuleKind::DscpMarking { dscp_mark: 46 },
                },
            ],
            deleting: false,
        };
        let j = serde_json::to_string(&p).unwrap();
        assert!(j.contains("\"type\":\"bandwidth_limit\""), "{j}");
        assert_eq!(serde_json::from_str::<QosPolicy>(&j).unwrap(), p);
        assert_eq!(p.limit(QosDirection::Ingress).unwrap().1, 10_000);
        assert!(p.limit(QosDirection::Egress).is_none());
        assert_eq!(p.dscp().unwrap().1, 46);
    }

    #[test]
    fn one_rule_per_type_and_direction() {
        let a = QosRuleKind::BandwidthLimit {
            max_kbps: 1,
            max_burst_kbps: 0,
            direction: QosDirection::Egress,
        };
        let b = QosRuleKind::BandwidthLimit {
            max_kbps: 2,
            max_burst_kbps: 0,
            direction: QosDirection::Ingress,
        };
        assert!(!a.duplicates(&b));
        assert!(a.duplicates(&a.clone()));
        let d = QosRuleKind::DscpMarking { dscp_mark: 8 };
        assert!(d.duplicates(&QosRuleKind::DscpMarking { dscp_mark: 10 }));
    }
}
