//! The apps together: every flow fits the pipeline, and incremental compiles equal a
//! full one through random changes.

use super::*;
use crate::reconcile::{FlowTable, GroupTable};
use crate::view::{removed, written};
use model::fixtures::{self, network};
use model::{Network, NetworkType, Port};
use nbdb::Change;
use random::{random_chain, random_fw, random_lb, random_router, random_tap};

mod random;

/// Port `id` with key `key` and MAC fa:16:3e:00:00:`mac`.
fn port(id: &str, net: &str, host: &str, key: u32, mac: u8) -> Port {
    Port {
        unique_key: key,
        ..fixtures::port(id, net, mac.into(), host)
    }
}

/// An IPv4 subnet, or (`v6`) a DHCPv6-stateful one.
fn subnet(id: &str, net: &str, enable_dhcp: bool, v6: bool) -> model::Subnet {
    let (cidr, mode) = if v6 {
        ("2001:db8::/64", Some("dhcpv6-stateful".to_string()))
    } else {
        ("10.0.0.0/24", None)
    };
    model::Subnet {
        gateway_ip: None,
        enable_dhcp,
        ipv6_address_mode: mode,
        ..fixtures::subnet(id, net, cidr)
    }
}

/// Rule `r<n>` of group `g<g>`: kinds of rule by `kind` (remote group `g<kind>` for
/// the first three).
fn sg_rule(n: u64, g: u64, kind: u64) -> model::SecurityGroupRule {
    let direction = if n.is_multiple_of(2) {
        model::Direction::Ingress
    } else {
        model::Direction::Egress
    };
    model::SecurityGroupRule {
        protocol: Some("tcp".into()),
        protocol_number: Some(6),
        port_range_min: Some(20 + n as u16),
        port_range_max: Some(30),
        remote_ip_prefix: (kind == 3).then(|| "10.0.0.0/24".parse().unwrap()),
        remote_group_id: (kind < 3).then(|| format!("g{kind}")),
        ..fixtures::security_group_rule(&format!("r{n}"), &format!("g{g}"), direction)
    }
}

#[test]
fn every_flow_fits_the_pipeline() {
    let mut v = View::new("h");
    v.apply(&written(&network("n", 1), 1));
    v.apply(&written(&port("a", "n", "h", 1, 1), 2));
    v.apply(&written(&port("b", "n", "other", 2, 2), 3));
    let host = Host {
        ofports: [("a".to_string(), 5)].into_iter().collect(),
        ..Host::default()
    };
    let d = Desired::full(&v, &host);
    assert!(d.table().len() >= 6, "{:?}", d.table());
    assert_eq!(d.groups().len(), 2, "the network's two flood groups");
    for (id, body) in d.groups().iter() {
        check_group(&Group {
            id,
            body: body.clone(),
        })
        .unwrap();
    }
    for (key, body) in d.table().iter() {
        check(&Flow {
            key: key.clone(),
            body: body.clone(),
        })
        .unwrap();
    }
    // The remote port has an L2 entry but no classification or dispatch.
    let remote_flows = compile(
        &v,
        &host,
        &Touched {
            table: Table::Port,
            id: "b".into(),
        },
    );
    assert_eq!(remote_flows.len(), 1);
    assert_eq!(remote_flows[0].key.table(), table::L2);
}

/// The port's address in network `n<k>` (10.0.k.0/24; n3 is another project's 10.0.0.0/24,
/// overlapping n0), as the API would give it; in n1 also fd00:1::`10 + n` (its
/// balancers' VIPs are IPv6: [`random::random_lb`]).
fn with_address(mut p: Port, k: u64, n: u64) -> Port {
    p.fixed_ips = vec![fixtures::fixed_ip(
        &format!("s{k}"),
        &format!("10.0.{}.{}", k % 3, 10 + n),
    )];
    if k == 1 {
        p.fixed_ips
            .push(fixtures::fixed_ip("s1", &format!("fd00:1::{}", 10 + n)));
    }
    p
}

/// A switch that is sent only what changed since the last time.
#[derive(Default)]
struct Sent {
    flows: FlowTable,
    groups: GroupTable,
}

impl Sent {
    fn follow(&mut self, d: &mut Desired) {
        let (mods, groups) = d.take_changes();
        self.flows.apply(&mods);
        self.groups.apply(&groups.before);
        self.groups.apply(&groups.after);
        self.groups.apply_meters(&groups.meters_before);
        self.groups.apply_meters(&groups.meters_after);
        assert_eq!(&self.flows, d.table(), "flows sent by difference");
        assert_eq!(&self.groups, d.groups(), "groups sent by difference");
    }
}

#[test]
fn incremental_equals_full_after_random_changes() {
    // DF_SEED=N runs another sequence (seeds 1 to 16 were run when the chains' classifiers
    // were made disjoint).
    let mut seed: u64 = std::env::var("DF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    // The firewall changes' own stream (below).
    let mut fw_seed = seed ^ 0x5bd1_e995;
    // And the tap changes' (below).
    let mut tap_seed = seed ^ 0x27d4_eb2f;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut fw_rnd = |n: u64| {
        fw_seed ^= fw_seed << 13;
        fw_seed ^= fw_seed >> 7;
        fw_seed ^= fw_seed << 17;
        fw_seed % n
    };
    let mut tap_rnd = |n: u64| {
        tap_seed ^= tap_seed << 13;
        tap_seed ^= tap_seed >> 7;
        tap_seed ^= tap_seed << 17;
        tap_seed % n
    };
    let mut v = View::new("h");
    let mut host = Host {
        tunnels: [("geneve".to_string(), 99)].into(),
        provider_ports: [("physnet1".to_string(), 77)].into(),
        neighbours: [
            (
                ("ext".to_string(), "203.0.113.1".parse().unwrap()),
                [2, 0, 0, 0, 0, 1],
            ),
            (
                ("ext".to_string(), "2001:db8:ff::1".parse().unwrap()),
                [2, 0, 0, 0, 0, 1],
            ),
            (
                ("ext".to_string(), "2001:db8:ff::5".parse().unwrap()),
                [2, 0, 0, 0, 0, 5],
            ),
        ]
        .into(),
        ..Host::default()
    };
    // The external network (flat on physnet1), its subnet, and this host's SNAT port.
    let ext = Network {
        external: true,
        network_type: NetworkType::Flat,
        physical_network: Some("physnet1".into()),
        segmentation_id: None,
        ..network("ext", 40)
    };
    v.apply(&written(&ext, 900));
    let sext = model::Subnet {
        enable_dhcp: false,
        ..fixtures::subnet("sext", "ext", "203.0.113.0/24")
    };
    v.apply(&written(&sext, 901));
    let sext6 = model::Subnet {
        enable_dhcp: false,
        ..fixtures::subnet("sext6", "ext", "2001:db8:ff::/64")
    };
    v.apply(&written(&sext6, 903));
    let mut snat = port("snat-h", "ext", "h", 90, 90);
    snat.device_owner = nat::CHASSIS_SNAT.into();
    snat.device_id = "h".into();
    snat.fixed_ips = vec![
        fixtures::fixed_ip("sext", "203.0.113.20"),
        fixtures::fixed_ip("sext6", "2001:db8:ff::20"),
    ];
    v.apply(&written(&snat, 902));
    let mut fip_ports = 0;
    for (rev, name) in [(1000, "h"), (1001, "o")] {
        let c = fixtures::chassis(name, "192.0.2.1");
        v.apply(&Change {
            revision: rev,
            table: "chassis".into(),
            id: name.into(),
            topic: None,
            value: Some(serde_json::to_vec(&c).unwrap()),
        });
    }
    let mut d = Desired::default();
    d.update(&v, &host, owners(&v));
    // A switch kept up to date with only what changed ends equal to the desired state.
    let mut sent = Sent::default();
    sent.follow(&mut d);
    let mut routed = 0;
    let mut routed6 = 0;
    let (mut seen_clauses, mut seen_rule) = ([false; 2], false);
    let mut nated = 0;
    let mut trunked = 0;
    let mut balanced = 0;
    let mut chained = 0;
    // Port keys, MACs and port numbers are unique per port, as the API and OVS make them.
    let mut firewalled = 0;
    let mut tapped = 0;
    for rev in 1..2000 {
        // Tap services and flows come and go every seventh change, from their own stream.
        if rev % 7 == 0 {
            let c = random_tap(&mut tap_rnd, &v, rev);
            let todo: Vec<Owner> = v.apply(&c).iter().flat_map(|t| affected(&v, t)).collect();
            d.update(&v, &host, todo);
            sent.follow(&mut d);
            let full = Desired::full(&v, &host);
            assert!(
                d.table() == full.table(),
                "after tap change {rev} ({} {}): to reach a full compile: {:?}",
                c.table,
                c.id,
                full.table().diff(d.table())
            );
            assert_eq!(d.groups(), full.groups(), "tap change {rev}: groups");
            tapped += d
                .table()
                .iter()
                .filter(|(k, _)| {
                    [table::CLASSIFY, table::DISPATCH].contains(&k.table())
                        && k.priority() == crate::apps::taas::PRIO_TAP
                })
                .count();
        }
        // Firewall groups on the local ports come, change their policies, rules and
        // ports, and go: every ninth change, from a stream of their own, so that the
        // other changes keep the sequence the seeds above were run with.
        if rev % 9 == 0 {
            let c = random_fw(&mut fw_rnd, rev);
            let todo: Vec<Owner> = v.apply(&c).iter().flat_map(|t| affected(&v, t)).collect();
            d.update(&v, &host, todo);
            sent.follow(&mut d);
            let full = Desired::full(&v, &host);
            assert!(
                d.table() == full.table(),
                "after firewall change {rev} ({} {}): to reach a full compile: {:?}",
                c.table,
                c.id,
                full.table().diff(d.table())
            );
            firewalled += d
                .table()
                .iter()
                .filter(|(k, _)| {
                    [table::EGRESS_FW_RULES, table::INGRESS_FW_RULES].contains(&k.table())
                        && k.priority() > 100
                })
                .count();
        }
        let n = rnd(12);
        let id = format!("x{n}");
        // n3 overlaps n0: the same addresses on two networks, as two projects have them.
        let k = rnd(4);
        let net = format!("n{k}");
        let change = match rnd(28) {
            // Port chains come, change their path and go.
            27 if rnd(3) == 0 => removed("sfc_port_chain", &format!("pc{}", rnd(2)), rev),
            27 => written(&random_chain(&mut rnd, k), rev),
            // Balancers come, change their members and go.
            22 if rnd(3) == 0 => removed("loadbalancer", &format!("b{}", rnd(2)), rev),
            22 => written(&random_lb(&mut rnd, k), rev),
            // Trunks t0 (parent x0, subports among x2..x6) and t1 (x1; x7..x11) come,
            // change their subports and go.
            16 => {
                let w = rnd(2);
                let sub_ports = (0..5u64)
                    .filter(|_| rnd(2) == 0)
                    .map(|i| {
                        let sp = format!("x{}", 2 + 5 * w + i);
                        model::SubPort {
                            network_id: v
                                .ports
                                .get(&sp)
                                .map_or("n0".into(), |p| p.network_id.clone()),
                            port_id: sp,
                            segmentation_type: "vlan".into(),
                            segmentation_id: 100 + i as u32,
                        }
                    })
                    .collect();
                written(
                    &model::Trunk {
                        meta: fixtures::meta(&format!("t{w}")),
                        admin_state_up: true,
                        port_id: format!("x{w}"),
                        network_id: "n0".into(),
                        sub_ports,
                    },
                    rev,
                )
            }
            17 => removed("trunk", &format!("t{}", rnd(2)), rev),
            // Another host joins or leaves a multicast group of a network.
            18 => {
                let g = model::McastGroup::new(
                    &net,
                    format!("239.0.0.{}", rnd(3)).parse().unwrap(),
                    "o",
                );
                Change {
                    revision: rev,
                    table: "mcast_group".into(),
                    id: g.id.clone(),
                    topic: Some(net.clone()),
                    value: Some(serde_json::to_vec(&g).unwrap()),
                }
            }
            19 => removed(
                "mcast_group",
                &model::McastGroup::key(&net, format!("239.0.0.{}", rnd(3)).parse().unwrap(), "o"),
                rev,
            ),
            // A local port joins or leaves a group (what snooping learnt).
            20 => {
                let key = (net.clone(), format!("239.0.0.{}", rnd(3)).parse().unwrap());
                let m = host.mcast.members.entry(key).or_default();
                if m.remove(&(1 + n as u32)).is_none() {
                    m.insert(1 + n as u32, std::time::Instant::now());
                }
                host.mcast.members.retain(|_, m| !m.is_empty());
                let mut todo = vec![Touched {
                    table: Table::Network,
                    id: net.clone(),
                }];
                todo.extend(mcast::assign_ids(&v, &mut host));
                d.update(&v, &host, todo);
                sent.follow(&mut d);
                let full = Desired::full(&v, &host);
                assert_eq!(d.table(), full.table(), "after a join at {rev}");
                assert_eq!(d.groups(), full.groups(), "groups after a join at {rev}");
                continue;
            }
            // QoS policies q0 and q1 come with random limits and marks, and go; ports
            // and networks name them (below).
            23 => {
                let dir = |i| {
                    if i == 0 {
                        model::QosDirection::Egress
                    } else {
                        model::QosDirection::Ingress
                    }
                };
                let mut rules = Vec::new();
                for i in 0..2u64 {
                    if rnd(2) == 0 {
                        rules.push(model::QosRule {
                            id: format!("l{i}"),
                            kind: model::QosRuleKind::BandwidthLimit {
                                max_kbps: 1000 * (1 + rnd(3) as u32),
                                max_burst_kbps: 0,
                                direction: dir(i),
                            },
                        });
                    }
                }
                if rnd(2) == 0 {
                    rules.push(model::QosRule {
                        id: "m".into(),
                        kind: model::QosRuleKind::DscpMarking {
                            dscp_mark: [10u8, 46][rnd(2) as usize],
                        },
                    });
                }
                written(
                    &model::QosPolicy {
                        meta: fixtures::meta(&format!("q{}", rnd(2))),
                        shared: false,
                        is_default: false,
                        rules,
                        deleting: false,
                    },
                    rev,
                )
            }
            24 => removed("qos_policy", &format!("q{}", rnd(2)), rev),
            // Floating IPs come, move between ports and routers, and go.
            // Half of them with a port forwarding instead of a port.
            14 => {
                let fixed = format!("10.0.{}.{}", k % 3, 10 + n).parse().unwrap();
                let forwarded = rnd(2) == 0;
                let f = model::FloatingIp {
                    meta: fixtures::meta(&format!("f{}", rnd(3))),
                    floating_network_id: "ext".into(),
                    floating_ip_address: format!("203.0.113.{}", 30 + n).parse().unwrap(),
                    floating_subnet_id: "sext".into(),
                    floating_port_id: format!("fp{n}"),
                    port_id: (!forwarded).then(|| id.clone()),
                    fixed_ip_address: (!forwarded).then_some(fixed),
                    router_id: Some(format!("r{}", rnd(2))),
                    port_forwardings: (forwarded)
                        .then(|| model::PortForwarding {
                            id: format!("pf{n}"),
                            internal_port_id: id.clone(),
                            internal_ip_address: fixed,
                            internal_port: 22,
                            external_port: 2000 + n as u16,
                            protocol: model::PfProtocol::Tcp,
                            description: String::new(),
                        })
                        .into_iter()
                        .collect(),
                };
                let mut fp = port(&format!("fp{n}"), "ext", "", 60 + n as u32, 60 + n as u8);
                fp.device_owner = model::owner::FLOATING_IP.into();
                fip_ports += 1;
                let touched = v.apply(&written(&fp, rev));
                let todo: Vec<Owner> = touched.iter().flat_map(|t| affected(&v, t)).collect();
                d.update(&v, &host, todo);
                written(&f, rev)
            }
            15 => removed("floatingip", &format!("f{}", rnd(3)), rev),
            // Routers come and go with interfaces on random networks and a route.
            6 => written(&random_router(&mut rnd), rev),
            7 => removed("router", &format!("r{}", rnd(2)), rev),
            // Security group rules come and go; ports hold random groups (below).
            12 => written(&sg_rule(rnd(6), rnd(3), rnd(4)), rev),
            13 => removed("secgroup_rule", &format!("r{}", rnd(6)), rev),
            // Network keys (and segmentation ids) are unique and never change.
            0 => written(&snooping(network(&net, 1 + k as u32), rnd(2) == 0), rev),
            1 => removed("network", &net, rev),
            2 | 3 => {
                let mut p = with_address(
                    port(
                        &id,
                        &net,
                        if rnd(2) == 0 { "h" } else { "o" },
                        1 + n as u32,
                        n as u8,
                    ),
                    k,
                    n,
                );
                p.security_groups = (0..3)
                    .filter(|_| rnd(2) == 0)
                    .map(|g| format!("g{g}"))
                    .collect();
                p.port_security_enabled = rnd(4) != 0;
                p.qos_policy_id =
                    [None, Some("q0"), Some("q1")][rnd(3) as usize].map(str::to_string);
                // Trunks' subports (x2..x11) are marked, as the API marks them, or not.
                if n >= 2 && rnd(3) != 0 {
                    p.device_owner = model::trunk::SUBPORT_OWNER.into();
                }
                // Sometimes another port's address (of this network or an overlapping
                // one) as an allowed address pair, as a VM on a shared network may claim.
                if rnd(3) == 0 {
                    p.allowed_address_pairs = vec![model::AddressPair {
                        ip_address: format!("10.0.{}.{}/32", rnd(3), 10 + rnd(12))
                            .parse()
                            .unwrap(),
                        mac_address: p.mac_address,
                    }];
                }
                written(&p, rev)
            }
            4 => removed("port", &id, rev),
            // The other host moves its tunnel endpoint (or registers anew).
            5 => {
                let c = fixtures::chassis("o", &format!("192.0.2.{}", 10 + rnd(3)));
                Change {
                    revision: rev,
                    table: "chassis".into(),
                    id: "o".into(),
                    topic: None,
                    value: Some(serde_json::to_vec(&c).unwrap()),
                }
            }
            // DHCP and DHCPv6 flows follow the network's subnets, their enable_dhcp and
            // their IPv6 address mode; RA punts follow an IPv6 subnet's ipv6_ra_mode.
            8 => {
                let mut s = subnet(&format!("s{k}"), &net, rnd(2) == 0, rnd(3) == 0);
                if rnd(2) == 0 {
                    s.ip_version = 6;
                    s.cidr = format!("fd00:{k}::/64").parse().unwrap();
                    s.ipv6_ra_mode = (rnd(2) == 0).then(|| "slaac".to_string());
                }
                written(&s, rev)
            }
            9 => removed("subnet", &format!("s{k}"), rev),
            10 => written(
                &snooping(
                    Network {
                        subnets: vec![format!("s{k}")],
                        qos_policy_id: (rnd(2) == 0).then(|| format!("q{}", rnd(2))),
                        ..network(&net, 1 + k as u32)
                    },
                    rnd(2) == 0,
                ),
                rev,
            ),
            // A DHCP port: its addresses are in its network's local ports' flows.
            11 => written(
                &Port {
                    device_owner: model::owner::DHCP.into(),
                    // Addresses are unique per network, as the API makes them.
                    fixed_ips: vec![fixtures::fixed_ip(
                        &format!("s{k}"),
                        &format!("10.0.{k}.{}", 100 + n),
                    )],
                    ..port(&id, &net, "", 1 + n as u32, n as u8)
                },
                rev,
            ),
            _ => {
                // The interface is plugged or unplugged on this host.
                if rnd(2) == 0 {
                    host.ofports.insert(id.clone(), 100 + n as u32);
                } else {
                    host.ofports.remove(&id);
                }
                let t = Touched {
                    table: Table::Port,
                    id,
                };
                let mut todo = affected(&v, &t);
                for t in trunk::wire(&v, &mut host) {
                    todo.extend(affected(&v, &t));
                }
                todo.extend(security_groups::assign_zones(&v, &mut host).touched);
                todo.extend(mcast::assign_ids(&v, &mut host));
                d.update(&v, &host, todo);
                sent.follow(&mut d);
                let full = Desired::full(&v, &host);
                assert_eq!(d.table(), full.table(), "after host change at {rev}");
                assert_eq!(
                    d.groups(),
                    full.groups(),
                    "groups after host change at {rev}"
                );
                continue;
            }
        };
        let mut todo: Vec<Owner> = v
            .apply(&change)
            .iter()
            .flat_map(|t| affected(&v, t))
            .collect();
        for t in trunk::wire(&v, &mut host) {
            todo.extend(affected(&v, &t));
        }
        todo.extend(security_groups::assign_zones(&v, &mut host).touched);
        todo.extend(mcast::assign_ids(&v, &mut host));
        d.update(&v, &host, todo);
        sent.follow(&mut d);
        let full = Desired::full(&v, &host);
        assert!(
            d.table() == full.table(),
            "after change {rev} ({} {}): to reach a full compile: {:?}",
            change.table,
            change.id,
            full.table().diff(d.table())
        );
        // The changes reach conjunctions (both clauses) and plain rule flows.
        for (k, b) in d.table().iter() {
            if let Some(Instruction::ApplyActions(a)) = b.instructions().first() {
                for act in a {
                    if let openflow::Action::Conjunction { clause, .. } = act {
                        seen_clauses[usize::from(*clause).min(1)] = true;
                    }
                }
            }
            seen_rule |= k.table() == table::INGRESS_SG && k.priority() == 100;
        }
        assert_eq!(
            d.groups(),
            full.groups(),
            "groups after change {rev}: {change:?}"
        );
        routed += d
            .table()
            .iter()
            .filter(|(k, _)| k.table() == table::L3)
            .count();
        trunked += host.subports.len();
        balanced += d
            .table()
            .iter()
            .filter(|(k, _)| k.table() == table::LB_OUT)
            .count();
        chained += d
            .table()
            .iter()
            .filter(|(k, _)| {
                k.table() == table::SERVICES && k.priority() == super::sfc::PRIO_CLASSIFY
            })
            .count();
        nated += d
            .table()
            .iter()
            .filter(|(k, _)| k.table() == table::EGRESS_NAT)
            .count();
        // IPv6 north-south: the ND answers for routers' IPv6 gateway addresses.
        routed6 += d
            .table()
            .iter()
            .filter(|(k, _)| k.table() == table::INGRESS_NAT && k.priority() == 201)
            .count();
    }
    assert!(routed > 500, "routers were exercised: {routed}");
    assert!(
        firewalled > 50,
        "firewall rules were exercised: {firewalled}"
    );
    assert!(routed6 > 50, "IPv6 gateways were exercised: {routed6}");
    assert!(
        seen_clauses == [true, true] && seen_rule,
        "security groups exercised: clauses {seen_clauses:?}, rule {seen_rule}"
    );
    assert!(fip_ports > 10, "floating IPs were exercised: {fip_ports}");
    assert!(nated > 50, "north-south flows were exercised: {nated}");
    assert!(trunked > 100, "subports were wired: {trunked}");
    assert!(balanced > 50, "load balancers were exercised: {balanced}");
    assert!(chained > 50, "port chains were exercised: {chained}");
    assert!(tapped > 50, "tap flows were exercised: {tapped}");
}

/// The network, tagged `mcast_snoop` when `on`.
fn snooping(mut n: Network, on: bool) -> Network {
    if on {
        n.meta.tags = vec![model::mcast::SNOOP_TAG.into()];
    }
    n
}
