//! Tap as a service (tap-as-a-service's `taas` and `taas-vlan-filter` extensions): a tap
//! service names the port that receives the copies; a tap flow copies what a source port
//! sends (`OUT`), receives (`IN`, towards the VM) or both into a tap service. A tap flow
//! carries what the source's host needs of its service, resolved by the API server (the
//! service port, its network and the service's tunnel key: none of them can change), so
//! that host compiles the copies from the flow and the service port alone.

use crate::{Meta, NbObject};
use serde::{Deserialize, Serialize};

/// Which traffic of the source port is copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TapDirection {
    /// What the port receives (towards the VM).
    In,
    /// What the port sends.
    Out,
    Both,
}

impl TapDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            TapDirection::In => "IN",
            TapDirection::Out => "OUT",
            TapDirection::Both => "BOTH",
        }
    }

    pub fn parse(s: &str) -> Option<TapDirection> {
        match s {
            "IN" => Some(TapDirection::In),
            "OUT" => Some(TapDirection::Out),
            "BOTH" => Some(TapDirection::Both),
            _ => None,
        }
    }

    /// Whether frames towards the VM are copied.
    pub fn ingress(self) -> bool {
        matches!(self, TapDirection::In | TapDirection::Both)
    }

    /// Whether frames from the VM are copied.
    pub fn egress(self) -> bool {
        matches!(self, TapDirection::Out | TapDirection::Both)
    }
}

/// A tap service: the port mirrored traffic is delivered to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapService {
    #[serde(flatten)]
    pub meta: Meta,
    pub port_id: String,
    /// The service port's network: the topic, followed by the port's host.
    pub network_id: String,
    /// The tunnel key copies from other hosts carry (a segmentation id of the service
    /// network's tunnel type, claimed as a network's is, so no network's traffic has it);
    /// `None` on a provider network: only copies from its own host reach it.
    #[serde(default)]
    pub tap_key: Option<u32>,
    /// `ACTIVE`: the API server sets it once written (hosts compile it from the store).
    pub status: String,
}

/// A tap flow: copies of a source port's traffic into a tap service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapFlow {
    #[serde(flatten)]
    pub meta: Meta,
    pub tap_service_id: String,
    pub source_port: String,
    pub direction: TapDirection,
    /// `taas-vlan-filter`: VLAN ids and ranges (`4,6,10-13`), kept as given.
    #[serde(default)]
    pub vlan_filter: Option<String>,
    pub status: String,
    /// The source port's network: the topic, followed by the source's host.
    pub network_id: String,
    /// Resolved from the tap service: its port, that port's network and its key.
    pub service_port: String,
    pub service_network: String,
    #[serde(default)]
    pub tap_key: Option<u32>,
}

impl NbObject for TapService {
    const TABLE: crate::Table = crate::Table::TapService;
    const KIND: &'static str = "TapService";
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }
    fn topic(&self) -> &str {
        &self.network_id
    }
}

impl NbObject for TapFlow {
    const TABLE: crate::Table = crate::Table::TapFlow;
    const KIND: &'static str = "TapFlow";
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }
    fn topic(&self) -> &str {
        &self.network_id
    }
}

/// The VLAN ids of a `vlan_filter` (tap-as-a-service's `RANGE_REGEX`: comma separated ids
/// and `a-b` ranges), or `None` when it does not read as one. Ids above 4095 or ranges
/// that run backwards are refused too: they could never match a tag.
pub fn vlan_ranges(s: &str) -> Option<Vec<(u16, u16)>> {
    let mut out = Vec::new();
    for item in s.split(',') {
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (a, b),
            None => (item, item),
        };
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
        if !digits(a) || !digits(b) {
            return None;
        }
        let (a, b) = (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?);
        if a > b || b > 4095 {
            return None;
        }
        out.push((a, b));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_filters_read_as_upstream_writes_them() {
        assert_eq!(
            vlan_ranges("4,6,10-13"),
            Some(vec![(4, 4), (6, 6), (10, 13)])
        );
        for bad in ["", "a", "1,", "-3", "5-", "1-2-3", "9-2", "4096", "99999"] {
            assert_eq!(vlan_ranges(bad), None, "{bad}");
        }
    }

    #[test]
    fn directions_spell_as_upstream() {
        for d in [TapDirection::In, TapDirection::Out, TapDirection::Both] {
            assert_eq!(TapDirection::parse(d.as_str()), Some(d));
            let j = serde_json::to_string(&d).unwrap();
            assert_eq!(j, format!("\"{}\"", d.as_str()));
        }
        assert!(TapDirection::In.ingress() && !TapDirection::In.egress());
        assert!(TapDirection::Both.ingress() && TapDirection::Both.egress());
        assert_eq!(TapDirection::parse("in"), None);
    }
}
