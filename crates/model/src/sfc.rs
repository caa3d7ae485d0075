//! Service function chaining (networking-sfc's `sfc` and `flow_classifier` extensions):
//! port pairs, port pair groups, flow classifiers and port chains. The API server keeps
//! the four as networking-sfc has them; a port chain also carries its resolved path (each
//! group's pairs with their ports and weights) and its classifiers' match, so a host
//! compiles a chain from one object, as a load balancer is compiled from one.

use crate::{Meta, NbObject};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// networking-sfc's `MAX_CHAIN_ID`: chain ids are 1..=65535 (0 asks for one).
pub const MAX_CHAIN_ID: u32 = 65535;
/// The hops a chain may have: the hop index takes the label's low 4 bits.
pub const MAX_HOPS: usize = 16;

/// One port pair: the service function's ingress and egress ports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPair {
    #[serde(flatten)]
    pub meta: Meta,
    pub ingress: String,
    pub egress: String,
    /// `service_function_parameters.correlation`: None, `mpls` or `nsh`.
    #[serde(default)]
    pub correlation: Option<String>,
    /// `service_function_parameters.weight`.
    pub weight: u32,
    /// The group holding the pair (a pair is in at most one).
    #[serde(default)]
    pub group: Option<String>,
}

/// A port pair group: pairs that share the load of one hop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPairGroup {
    #[serde(flatten)]
    pub meta: Meta,
    /// Server-given, lowest free from 1 (networking-sfc's `group_id`).
    pub group_id: u32,
    pub port_pairs: Vec<String>,
    /// `port_pair_group_parameters.lb_fields`.
    #[serde(default)]
    pub lb_fields: Vec<String>,
    /// `port_pair_group_parameters.ppg_n_tuple_mapping`, kept as given.
    #[serde(default)]
    pub ppg_n_tuple_mapping: serde_json::Value,
    /// The chains using the group.
    #[serde(default)]
    pub chains: Vec<String>,
}

/// What a flow classifier matches (also carried, resolved, by the chains using it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classifier {
    /// The classifier's id.
    pub id: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// `tcp`, `udp`, `icmp` or none.
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub source_port_range_min: Option<u16>,
    #[serde(default)]
    pub source_port_range_max: Option<u16>,
    #[serde(default)]
    pub destination_port_range_min: Option<u16>,
    #[serde(default)]
    pub destination_port_range_max: Option<u16>,
    #[serde(default)]
    pub source_ip_prefix: Option<IpNet>,
    #[serde(default)]
    pub destination_ip_prefix: Option<IpNet>,
    #[serde(default)]
    pub logical_source_port: Option<String>,
    #[serde(default)]
    pub logical_destination_port: Option<String>,
}

fn prefixes_meet(a: &Option<IpNet>, b: &Option<IpNet>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.contains(&b.network()) || b.contains(&a.network()),
        _ => true,
    }
}

fn ranges_meet(a: (Option<u16>, Option<u16>), b: (Option<u16>, Option<u16>)) -> bool {
    let first = match (a.0, b.1) {
        (Some(amin), Some(bmax)) => amin <= bmax,
        _ => true,
    };
    let second = match (a.1, b.0) {
        (Some(amax), Some(bmin)) => bmin <= amax,
        _ => true,
    };
    first && second
}

fn same_or_any<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

impl Classifier {
    /// networking-sfc's reverse classification of a symmetric chain (what the datapath
    /// steers back and the API checks for conflicts): from the logical destination port
    /// back to the logical source port, prefixes and port ranges swapped; none for a
    /// classifier without a logical destination port (the API refuses those in a
    /// symmetric chain it creates).
    pub fn reversed(&self) -> Option<Classifier> {
        let dst = self.logical_destination_port.clone()?;
        Some(Classifier {
            source_ip_prefix: self.destination_ip_prefix,
            destination_ip_prefix: self.source_ip_prefix,
            source_port_range_min: self.destination_port_range_min,
            source_port_range_max: self.destination_port_range_max,
            destination_port_range_min: self.source_port_range_min,
            destination_port_range_max: self.source_port_range_max,
            logical_source_port: Some(dst),
            logical_destination_port: self.logical_source_port.clone(),
            ..self.clone()
        })
    }

    /// networking-sfc's basic conflict: some packet could match both (ethertype,
    /// protocol, prefixes and port ranges; the logical ports left out). Two chains may
    /// not have classifiers that meet.
    pub fn meets(&self, other: &Classifier) -> bool {
        self.ethertype == other.ethertype
            && same_or_any(&self.protocol, &other.protocol)
            && prefixes_meet(&self.source_ip_prefix, &other.source_ip_prefix)
            && prefixes_meet(&self.destination_ip_prefix, &other.destination_ip_prefix)
            && ranges_meet(
                (self.source_port_range_min, self.source_port_range_max),
                (other.source_port_range_min, other.source_port_range_max),
            )
            && ranges_meet(
                (
                    self.destination_port_range_min,
                    self.destination_port_range_max,
                ),
                (
                    other.destination_port_range_min,
                    other.destination_port_range_max,
                ),
            )
    }

    /// networking-sfc's full conflict: [`Classifier::meets`] and the same (or an
    /// unset) logical source and destination port. No two classifiers may conflict.
    pub fn conflicts(&self, other: &Classifier) -> bool {
        self.meets(other)
            && same_or_any(&self.logical_source_port, &other.logical_source_port)
            && same_or_any(
                &self.logical_destination_port,
                &other.logical_destination_port,
            )
    }

    pub fn is_ipv6(&self) -> bool {
        self.ethertype == "IPv6"
    }
}

/// A flow classifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowClassifier {
    #[serde(flatten)]
    pub meta: Meta,
    pub rule: Classifier,
    /// `l7_parameters` (networking-sfc supports none, so always empty).
    #[serde(default)]
    pub l7_parameters: BTreeMap<String, String>,
    /// The chain using the classifier (at most one).
    #[serde(default)]
    pub chain: Option<String>,
}

/// One pair of a hop, resolved: its ports and its weight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopPair {
    pub id: String,
    pub ingress: String,
    pub egress: String,
    pub weight: u32,
}

/// One hop of a chain: a port pair group, resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    pub group: String,
    pub pairs: Vec<HopPair>,
}

/// A port chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortChain {
    #[serde(flatten)]
    pub meta: Meta,
    /// 1..=65535, the chain path id in the MPLS label.
    pub chain_id: u32,
    pub port_pair_groups: Vec<String>,
    pub flow_classifiers: Vec<String>,
    /// `chain_parameters.correlation`: `mpls` or `nsh`.
    pub correlation: String,
    /// `chain_parameters.symmetric`.
    pub symmetric: bool,
    /// The network of every port of the chain: its topic.
    pub network_id: String,
    /// The groups in order, resolved (what the hosts compile).
    #[serde(default)]
    pub path: Vec<Hop>,
    /// The classifiers, resolved.
    #[serde(default)]
    pub classifiers: Vec<Classifier>,
}

impl PortChain {
    /// The MPLS label that carries "on to hop `hop` of this chain" between hosts: the
    /// chain id in the upper 16 bits of the 20, the hop in the lower 4, so every chain
    /// id networking-sfc allows has labels of its own (never a reserved label 0..15,
    /// since chain ids start at 1).
    pub fn label(&self, hop: usize) -> u32 {
        (self.chain_id & 0xffff) << 4 | (hop as u32 & 0xf)
    }
}

macro_rules! sfc_object {
    ($t:ty, $table:ident, $kind:literal, $topic:expr) => {
        impl NbObject for $t {
            const TABLE: crate::Table = crate::Table::$table;
            const KIND: &'static str = $kind;
            fn meta(&self) -> &Meta {
                &self.meta
            }
            fn meta_mut(&mut self) -> &mut Meta {
                &mut self.meta
            }
            fn topic(&self) -> &str {
                let f: fn(&$t) -> &str = $topic;
                f(self)
            }
        }
    };
}

sfc_object!(PortPair, SfcPortPair, "PortPair", |o| &o.meta.project_id);
sfc_object!(PortPairGroup, SfcPortPairGroup, "PortPairGroup", |o| &o
    .meta
    .project_id);
sfc_object!(FlowClassifier, SfcFlowClassifier, "FlowClassifier", |o| &o
    .meta
    .project_id);
sfc_object!(PortChain, SfcPortChain, "PortChain", |c| &c.network_id);

#[cfg(test)]
mod tests {
    use super::*;

    fn c(f: impl FnOnce(&mut Classifier)) -> Classifier {
        let mut c = Classifier {
            ethertype: "IPv4".into(),
            ..Classifier::default()
        };
        f(&mut c);
        c
    }

    #[test]
    fn classifiers_meet_as_networking_sfc_says() {
        let http = c(|c| {
            c.protocol = Some("tcp".into());
            c.destination_port_range_min = Some(80);
            c.destination_port_range_max = Some(80);
        });
        let ssh = c(|c| {
            c.protocol = Some("tcp".into());
            c.destination_port_range_min = Some(22);
            c.destination_port_range_max = Some(22);
        });
        let any_tcp = c(|c| c.protocol = Some("tcp".into()));
        let udp = c(|c| c.protocol = Some("udp".into()));
        let v6 = c(|c| c.ethertype = "IPv6".into());
        assert!(!http.meets(&ssh));
        assert!(http.meets(&any_tcp) && any_tcp.meets(&http));
        assert!(!any_tcp.meets(&udp));
        assert!(!http.meets(&v6));
        let a = c(|c| c.source_ip_prefix = Some("10.0.0.0/24".parse().unwrap()));
        let b = c(|c| c.source_ip_prefix = Some("10.0.0.128/25".parse().unwrap()));
        let d = c(|c| c.source_ip_prefix = Some("10.0.1.0/24".parse().unwrap()));
        assert!(a.meets(&b) && b.meets(&a));
        assert!(!a.meets(&d));
        let p1 = c(|c| c.logical_source_port = Some("p1".into()));
        let p2 = c(|c| c.logical_source_port = Some("p2".into()));
        assert!(p1.meets(&p2) && !p1.conflicts(&p2));
        assert!(p1.conflicts(&c(|_| {})));
    }

    #[test]
    fn labels_use_the_whole_20_bits() {
        let mut chain = PortChain {
            meta: Meta::default(),
            chain_id: MAX_CHAIN_ID,
            port_pair_groups: vec![],
            flow_classifiers: vec![],
            correlation: "mpls".into(),
            symmetric: false,
            network_id: String::new(),
            path: vec![],
            classifiers: vec![],
        };
        assert_eq!(chain.label(15), 0xfffff);
        chain.chain_id = 1;
        assert_eq!(chain.label(0), 16);
    }
}
