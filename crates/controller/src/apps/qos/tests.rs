//! The QoS compiler: meters and flows of a port from its policy or its network's, and what
//! a policy change recompiles.

use super::*;
use crate::apps::{Host, compile_owner};
use crate::view::{removed, written};
use model::{QosPolicy, QosRule, QosRuleKind, fixtures};

fn policy(id: &str, rules: Vec<QosRuleKind>) -> QosPolicy {
    QosPolicy {
        meta: fixtures::meta(id),
        shared: false,
        is_default: false,
        rules: rules
            .into_iter()
            .enumerate()
            .map(|(i, kind)| QosRule {
                id: format!("{id}-r{i}"),
                kind,
            })
            .collect(),
        deleting: false,
    }
}

fn limit(max_kbps: u32, max_burst_kbps: u32, direction: QosDirection) -> QosRuleKind {
    QosRuleKind::BandwidthLimit {
        max_kbps,
        max_burst_kbps,
        direction,
    }
}

fn port_owner(id: &str) -> Touched {
    Touched {
        table: Table::Port,
        id: id.into(),
    }
}

/// View with network "n" (key 1) and local port "p" (key 3) plugged at OpenFlow port 9.
fn setup() -> (View, Host) {
    let mut v = View::new("h");
    v.apply(&written(&fixtures::network("n", 1), 1));
    v.apply(&written(&fixtures::port("p", "n", 3, "h"), 2));
    let mut host = Host::default();
    host.ofports.insert("p".into(), 9);
    (v, host)
}

fn with_policy(v: &mut View, port_policy: Option<&str>, rev: u64) {
    let mut p = fixtures::port("p", "n", 3, "h");
    p.qos_policy_id = port_policy.map(str::to_string);
    v.apply(&written(&p, rev));
}

fn qos_flows(c: &crate::apps::Compiled) -> Vec<&crate::apps::Flow> {
    c.flows
        .iter()
        .filter(|f| {
            crate::pipeline::Cookie::decode(f.body.cookie).map(|k| k.app) == Some(AppId::Qos)
        })
        .collect()
}

#[test]
fn meter_ids_are_the_port_key_and_direction() {
    assert_eq!(meter_id(3, QosDirection::Egress), Some(6));
    assert_eq!(meter_id(3, QosDirection::Ingress), Some(7));
    assert_eq!(
        meter_id(0, QosDirection::Egress),
        None,
        "meter 0 does not exist"
    );
    assert_eq!(meter_id(u32::MAX, QosDirection::Ingress), None);
}

#[test]
fn the_burst_is_neutrons_and_at_least_a_tenth_of_the_rate() {
    assert_eq!(
        burst(10_000, 0),
        8_000,
        "none given: 80 % as Neutron's OVS agent"
    );
    assert_eq!(burst(10_000, 100), 1_000, "too small for TCP: 10 %");
    assert_eq!(burst(10_000, 5_000), 5_000);
    assert_eq!(burst(1, 0), 1);
}

#[test]
fn a_limited_and_marked_port_gets_its_meters_and_flows() {
    let (mut v, host) = setup();
    v.apply(&written(
        &policy(
            "q",
            vec![
                limit(10_000, 0, QosDirection::Egress),
                limit(20_000, 3_000, QosDirection::Ingress),
                QosRuleKind::DscpMarking { dscp_mark: 46 },
                QosRuleKind::MinimumBandwidth {
                    min_kbps: 1_000,
                    direction: QosDirection::Egress,
                },
            ],
        ),
        3,
    ));
    with_policy(&mut v, Some("q"), 4);
    let c = compile_owner(&v, &host, &port_owner("p"));
    let meters: Vec<_> = c.meters.iter().map(|m| (m.id, m.body.clone())).collect();
    let body = |rate, burst| MeterBody {
        flags: FLAGS,
        bands: vec![MeterBand::Drop { rate, burst }],
    };
    assert_eq!(meters, [(6, body(10_000, 8_000)), (7, body(20_000, 3_000))]);
    let flows = qos_flows(&c);
    assert_eq!(flows.len(), 4, "{flows:#?}");
    let eth_of = |f: &crate::apps::Flow| {
        f.key
            .match_()
            .fields
            .iter()
            .find(|o| o.field == Field::EthType)
            .map(|o| o.value as u16)
    };
    let find = |t: u8, eth: Option<u16>| {
        flows
            .iter()
            .find(|f| f.key.table() == t && eth_of(f) == eth)
            .unwrap_or_else(|| panic!("no flow in {t} for {eth:?}: {flows:#?}"))
            .body
            .instructions()
    };
    for eth in [ETH_IPV4, ETH_IPV6] {
        let i = find(table::CLASSIFY, Some(eth));
        assert_eq!(i[0], Instruction::Meter(6), "{i:?}");
        assert!(
            matches!(&i[1], Instruction::ApplyActions(a) if a.contains(&Action::set_field(Field::IpDscp, 46u8))),
            "{i:?}"
        );
        assert_eq!(
            i.last(),
            Some(&Instruction::GotoTable(table::PORT_SECURITY))
        );
    }
    let i = find(table::CLASSIFY, None);
    assert_eq!(i[0], Instruction::Meter(6));
    let i = find(table::DISPATCH, None);
    assert_eq!(
        i,
        [
            Instruction::Meter(7),
            Instruction::ApplyActions(vec![Action::output(9)])
        ]
    );
}

#[test]
fn a_network_policy_applies_unless_the_port_has_its_own() {
    let (mut v, host) = setup();
    v.apply(&written(
        &policy("net", vec![limit(1_000, 0, QosDirection::Ingress)]),
        3,
    ));
    v.apply(&written(
        &policy("own", vec![QosRuleKind::DscpMarking { dscp_mark: 10 }]),
        4,
    ));
    let mut n = fixtures::network("n", 1);
    n.qos_policy_id = Some("net".into());
    v.apply(&written(&n, 5));
    let p = v.ports["p"].clone();
    assert_eq!(v.qos_policy_of(&p), Some("net"));
    let c = compile_owner(&v, &host, &port_owner("p"));
    assert_eq!(c.meters.iter().map(|m| m.id).collect::<Vec<_>>(), [7]);
    with_policy(&mut v, Some("own"), 6);
    let c = compile_owner(&v, &host, &port_owner("p"));
    assert!(c.meters.is_empty(), "the port's own policy has no limit");
    assert_eq!(qos_flows(&c).len(), 2, "marking only: IPv4 and IPv6");
    // Both policies gone from the port and the network: line rate, no QoS flow.
    with_policy(&mut v, None, 7);
    v.apply(&written(&fixtures::network("n", 1), 8));
    let c = compile_owner(&v, &host, &port_owner("p"));
    assert!(c.meters.is_empty() && qos_flows(&c).is_empty());
}

#[test]
fn a_policy_change_recompiles_the_ports_it_applies_to() {
    let (mut v, _) = setup();
    v.apply(&written(&fixtures::port("other", "n", 4, "h"), 3));
    v.apply(&written(&fixtures::port("remote", "n", 5, "elsewhere"), 4));
    let mut n = fixtures::network("n", 1);
    n.qos_policy_id = Some("net".into());
    v.apply(&written(&n, 5));
    with_policy(&mut v, Some("own"), 6);
    let affected = |v: &View, id: &str| {
        let mut out = Vec::new();
        Qos.affected(
            v,
            &Touched {
                table: Table::QosPolicy,
                id: id.into(),
            },
            &mut out,
        );
        out.into_iter().map(|t| t.id).collect::<Vec<_>>()
    };
    assert_eq!(affected(&v, "own"), ["p"]);
    assert_eq!(
        affected(&v, "net"),
        ["other", "remote"],
        "ports without their own"
    );
    // A deleted policy still reaches the ports that named it.
    v.apply(&written(&policy("own", vec![]), 7));
    v.apply(&removed("qos_policy", "own", 8));
    assert_eq!(affected(&v, "own"), ["p"]);
}

#[test]
fn a_port_names_its_missing_policy_and_follows_its_project() {
    let (mut v, _) = setup();
    with_policy(&mut v, Some("q"), 3);
    let missing = v.missing();
    assert!(
        missing.contains(&Touched {
            table: Table::QosPolicy,
            id: "q".into()
        }),
        "{missing:?}"
    );
    let mut q = policy("q", vec![]);
    q.meta.project_id = "proj-q".into();
    v.apply(&written(&q, 4));
    assert!(v.topics().contains("proj-q"));
    assert!(!v.missing().iter().any(|t| t.table == Table::QosPolicy));
}
