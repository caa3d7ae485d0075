//! The random objects of `incremental_equals_full_after_random_changes`: routers,
//! balancers, port chains and firewall changes made from the test's random stream.

use super::*;

/// Balancer b0 or b1 with its VIP on network n`k`: a TCP listener on 80 and one on 81
/// (maybe down), members among the addresses ports of n`k` may have (weights 0..3).
/// A random FWaaS change: rule r0..r2 written, policy f0 with some of them in some
/// order, group g0 or g1 on some of the ports x0..x5 with f0 on either side or none, or
/// a group deleted.
pub fn random_fw(rnd: &mut impl FnMut(u64) -> u64, rev: u64) -> Change {
    use model::fwaas::{FwAction, PortRange};
    match rnd(5) {
        0 => {
            let port = 20 + rnd(4) as u16;
            written(
                &model::FirewallRule {
                    meta: fixtures::meta(&format!("r{}", rnd(3))),
                    shared: false,
                    protocol: Some(["tcp", "udp"][rnd(2) as usize].into()),
                    ip_version: 4,
                    source_ip_address: None,
                    destination_ip_address: None,
                    source_port: None,
                    destination_port: Some(PortRange {
                        min: port,
                        max: port + rnd(3) as u16,
                    }),
                    action: [FwAction::Allow, FwAction::Deny, FwAction::Reject][rnd(3) as usize],
                    enabled: rnd(5) != 0,
                    deleting: false,
                },
                rev,
            )
        }
        1 => {
            let mut rules: Vec<String> = (0..3)
                .filter(|_| rnd(3) != 0)
                .map(|i| format!("r{i}"))
                .collect();
            if rnd(2) == 0 {
                rules.reverse();
            }
            written(
                &model::FirewallPolicy {
                    meta: fixtures::meta("f0"),
                    shared: false,
                    audited: false,
                    firewall_rules: rules,
                    deleting: false,
                },
                rev,
            )
        }
        2 | 3 => {
            let side = |rnd: &mut dyn FnMut(u64) -> u64| (rnd(3) != 0).then(|| "f0".to_string());
            let mut rnd = rnd;
            written(
                &model::FirewallGroup {
                    meta: fixtures::meta(&format!("g{}", rnd(2))),
                    shared: false,
                    admin_state_up: rnd(6) != 0,
                    ingress_firewall_policy_id: side(&mut rnd),
                    egress_firewall_policy_id: side(&mut rnd),
                    ports: (0..6)
                        .filter(|_| rnd(3) == 0)
                        .map(|i| format!("x{i}"))
                        .collect(),
                    is_default: false,
                },
                rev,
            )
        }
        _ => removed("firewall_group", &format!("g{}", rnd(2)), rev),
    }
}

pub fn random_lb(rnd: &mut impl FnMut(u64) -> u64, k: u64) -> model::LoadBalancer {
    use model::lb::*;
    let b = rnd(2);
    let st = || Status {
        provisioning_status: "ACTIVE".into(),
        operating_status: "ONLINE".into(),
    };
    let listener = |port: u16, up: bool| Listener {
        meta: fixtures::meta(&format!("b{b}l{port}")),
        status: st(),
        admin_state_up: up,
        protocol: Protocol::Tcp,
        protocol_port: port,
        connection_limit: -1,
        allowed_cidrs: vec![],
        default_pool_id: Some(format!("b{b}p")),
    };
    // Network n1's balancers are IPv6 (its ports have IPv6 addresses too), the others
    // IPv4, without drawing more random numbers.
    let address = |last: u64| -> std::net::IpAddr {
        if k == 1 {
            format!("fd00:1::{last}").parse().unwrap()
        } else {
            format!("10.0.{}.{last}", k % 3).parse().unwrap()
        }
    };
    let mut members = Vec::new();
    for n in 0..12u64 {
        if rnd(3) != 0 {
            continue;
        }
        // Some marked down by a health check (out of the group, still checked).
        let status = if rnd(4) == 0 {
            Status {
                operating_status: "ERROR".into(),
                ..st()
            }
        } else {
            st()
        };
        members.push(Member {
            meta: fixtures::meta(&format!("b{b}m{n}")),
            status,
            admin_state_up: rnd(5) != 0,
            address: address(10 + n),
            protocol_port: 8000,
            weight: rnd(4) as u16,
            backup: false,
            subnet_id: None,
            monitor_address: None,
            monitor_port: None,
        });
    }
    // A health monitor of any kind, maybe (its members bound here get punt flows).
    let healthmonitor = (rnd(2) == 0).then(|| {
        let kind = ["TCP", "PING", "HTTP", "UDP-CONNECT"][rnd(4) as usize];
        HealthMonitor {
            meta: fixtures::meta(&format!("b{b}h")),
            status: st(),
            admin_state_up: rnd(4) != 0,
            kind: kind.into(),
            delay: 2,
            timeout: 1,
            max_retries: 2,
            max_retries_down: 2,
            http_method: None,
            url_path: None,
            expected_codes: None,
        }
    });
    LoadBalancer {
        meta: fixtures::meta(&format!("b{b}")),
        status: st(),
        admin_state_up: true,
        provider: PROVIDER.into(),
        // Its own VIP: a port's address, unique in its network.
        vip_address: address(200 + b),
        vip_port_id: String::new(),
        vip_subnet_id: format!("s{k}"),
        vip_network_id: format!("n{k}"),
        vip_mac: fixtures::mac(200),
        vip_port_owned: true,
        unique_key: b as u32 + 1,
        listeners: vec![listener(80, true), listener(81, rnd(2) == 0)],
        pools: vec![Pool {
            meta: fixtures::meta(&format!("b{b}p")),
            status: st(),
            admin_state_up: true,
            protocol: Protocol::Tcp,
            // SOURCE_IP affinity on some balancers, without drawing more random numbers
            // (the sequence of changes stays the one this test always ran).
            lb_algorithm: [Algorithm::RoundRobin, Algorithm::SourceIp][b as usize % 2],
            session_persistence: k.is_multiple_of(2).then(|| model::lb::SessionPersistence {
                kind: "SOURCE_IP".into(),
                persistence_timeout: Some(30 + k as i64),
                persistence_granularity: None,
            }),
            listener_id: None,
            members,
            healthmonitor,
        }],
        failovers: 0,
        fip_holder: None,
    }
}

/// Chain pc0 or pc1 on network n`k`: UDP from one of the ports x0..x11 through one or
/// two hops of one or two pairs among those ports (weights 0..3).
pub fn random_chain(rnd: &mut impl FnMut(u64) -> u64, k: u64) -> model::PortChain {
    use model::sfc::{Classifier, Hop, HopPair};
    let c = rnd(2);
    let hops = 1 + rnd(2) as usize;
    let path = (0..hops)
        .map(|h| Hop {
            group: format!("pc{c}g{h}"),
            pairs: (0..1 + rnd(2))
                .map(|i| HopPair {
                    id: format!("pc{c}g{h}p{i}"),
                    ingress: format!("x{}", rnd(12)),
                    egress: format!("x{}", rnd(12)),
                    weight: rnd(4) as u32,
                })
                .collect(),
        })
        .collect();
    model::PortChain {
        meta: fixtures::meta(&format!("pc{c}")),
        chain_id: c as u32 + 1,
        port_pair_groups: vec![],
        flow_classifiers: vec![],
        correlation: "mpls".into(),
        symmetric: false,
        network_id: format!("n{k}"),
        path,
        classifiers: vec![Classifier {
            id: format!("fc{c}"),
            ethertype: if rnd(4) == 0 { "IPv6" } else { "IPv4" }.into(),
            protocol: Some("udp".into()),
            // Apart per chain: networking-sfc refuses two chains whose classifiers
            // overlap (the same source port and traffic), so no two chains ever own the
            // same classifier flow.
            destination_port_range_min: Some(7000 + 100 * c as u16),
            destination_port_range_max: Some(7000 + 100 * c as u16 + rnd(3) as u16),
            logical_source_port: Some(format!("x{}", rnd(12))),
            ..Classifier::default()
        }],
    }
}

/// Router r0 or r1 with interfaces on some of n0..n2 and maybe an extra route.
pub fn random_router(rnd: &mut impl FnMut(u64) -> u64) -> model::Router {
    let which = rnd(2);
    let interfaces = (0..3u64)
        .filter(|_| rnd(2) == 0)
        .map(|k| model::RouterInterface {
            port_id: format!("rp{which}-{k}"),
            subnet_id: format!("s{k}"),
            network_id: format!("n{k}"),
            ip_address: format!("10.0.{k}.1").parse().unwrap(),
            cidr: format!("10.0.{k}.0/24").parse().unwrap(),
            mac_address: model::MacAddr([0xfa, 0x16, 0x3f, which as u8, k as u8, 1]),
        })
        .collect();
    let mut routes: Vec<model::HostRoute> = (rnd(2) == 0)
        .then(|| model::HostRoute {
            destination: "10.9.0.0/16".parse().unwrap(),
            nexthop: format!("10.0.{}.{}", rnd(3), 10 + rnd(12)).parse().unwrap(),
        })
        .into_iter()
        .collect();
    // Sometimes an IPv6 route to a next hop outside (on the IPv6 external subnet).
    if rnd(3) == 0 {
        routes.push(model::HostRoute {
            destination: "2001:db8:77::/64".parse().unwrap(),
            nexthop: "2001:db8:ff::5".parse().unwrap(),
        });
    }
    // Sometimes a gateway on the external network, with or without SNAT, and sometimes
    // an IPv6 address there too (routed, no NAT).
    let external_gateway = (rnd(2) == 0).then(|| {
        let mut ips = vec![fixtures::fixed_ip(
            "sext",
            &format!("203.0.113.{}", 2 + which),
        )];
        if rnd(2) == 0 {
            ips.push(fixtures::fixed_ip(
                "sext6",
                &format!("2001:db8:ff::{}", 2 + which),
            ));
        }
        model::ExternalGateway {
            network_id: "ext".into(),
            enable_snat: rnd(2) == 0,
            external_fixed_ips: ips,
            port_id: format!("gw{which}"),
        }
    });
    model::Router {
        external_gateway,
        routes,
        interfaces,
        ..fixtures::router(&format!("r{which}"), 50 + which as u32)
    }
}

/// A random tap-as-a-service change: services ts0/ts1 on ports x0..x11 come and go,
/// and flows tf0..tf3 from those ports into them, in any direction (a service port
/// that is a source too included).
pub fn random_tap(rnd: &mut impl FnMut(u64) -> u64, view: &crate::view::View, rev: u64) -> Change {
    use model::{TapDirection, TapFlow, TapService};
    let net_of = |p: &str| {
        view.ports
            .get(p)
            .map_or("n0".to_string(), |p| p.network_id.clone())
    };
    match rnd(6) {
        0 => crate::view::removed("tap_flow", &format!("tf{}", rnd(4)), rev),
        1 => crate::view::removed("tap_service", &format!("ts{}", rnd(2)), rev),
        2 => {
            let port = format!("x{}", rnd(12));
            let s = TapService {
                meta: fixtures::meta(&format!("ts{}", rnd(2))),
                network_id: net_of(&port),
                port_id: port,
                tap_key: Some(5000 + rnd(2) as u32),
                status: "ACTIVE".into(),
            };
            written(&s, rev)
        }
        _ => {
            let (source, service) = (format!("x{}", rnd(12)), format!("x{}", rnd(12)));
            let direction =
                [TapDirection::In, TapDirection::Out, TapDirection::Both][rnd(3) as usize];
            let f = TapFlow {
                meta: fixtures::meta(&format!("tf{}", rnd(4))),
                tap_service_id: format!("ts{}", rnd(2)),
                network_id: net_of(&source),
                source_port: source,
                direction,
                vlan_filter: None,
                status: "ACTIVE".into(),
                service_network: net_of(&service),
                service_port: service,
                tap_key: Some(5000 + rnd(2) as u32),
            };
            written(&f, rev)
        }
    }
}
