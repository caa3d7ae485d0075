//! IPv6 north-south on the fake switch: routed, never NATed. The controller solicits the
//! external subnet's gateway from the router's gateway address and learns its MAC from the
//! advertisement; the router's IPv6 default route then leaves by the patch port (port 50)
//! from this host's own MAC on the external network; solicitations for the router's
//! gateway address are answered in the switch with that MAC (anycast: no override flag);
//! arrivals for the router's prefix reach the VM, here or over the tunnel.
//!
//! Router r (key 7) joins net1 (2001:db8:1::/64, geneve) and has its gateway on `ext`
//! (flat on physnet1) at 203.0.113.2 and 2001:db8:ff::2; the upstream is 2001:db8:ff::1.
//! VM a (2001:db8:1::5) is local at port 1, VM c (2001:db8:1::7) on host h2. This host's
//! port on the external network (MAC fa:16:3e:00:00:14) holds 2001:db8:ff::20.

mod support;

use controller::apps::Settings;
use controller::apps::nat::CHASSIS_SNAT;
use fake_switch::Outcome;
use model::{
    ExternalGateway, MacAddr, Network, NetworkType, Port, Router, RouterInterface, Subnet,
    fixtures, owner,
};
use openflow::packet::PacketOut;
use packet::icmpv6::{self, Icmpv6Repr};
use packet::ipv6::Ipv6Repr;
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;
use support::mac;
use support::sim::Sim;

const PATCH: u32 = 50;
const TUNNEL: u32 = 99;
const OUTSIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const UPSTREAM: &str = "2001:db8:ff::1";
const GW6: &str = "2001:db8:ff::2";

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn network(id: &str, key: u32, t: NetworkType, seg: u32) -> Network {
    Network {
        mtu: 1500,
        external: id == "ext",
        port_security_enabled: false,
        network_type: t,
        physical_network: t.is_provider().then(|| "physnet1".to_string()),
        segmentation_id: Some(seg),
        ..fixtures::network(id, key)
    }
}

fn port(id: &str, net: &str, n: u8, ips: &[(&str, &str)], host: &str) -> Port {
    Port {
        fixed_ips: ips
            .iter()
            .map(|(s, ip)| fixtures::fixed_ip(s, ip))
            .collect(),
        port_security_enabled: false,
        ..fixtures::port(id, net, n.into(), host)
    }
}

fn router(routes: Vec<model::HostRoute>) -> Router {
    Router {
        external_gateway: Some(ExternalGateway {
            network_id: "ext".into(),
            enable_snat: true,
            external_fixed_ips: vec![
                fixtures::fixed_ip("s-ext", "203.0.113.2"),
                fixtures::fixed_ip("s-ext6", GW6),
            ],
            port_id: "gw".into(),
        }),
        interfaces: vec![RouterInterface {
            port_id: "r1".into(),
            subnet_id: "s-net1".into(),
            network_id: "net1".into(),
            ip_address: "2001:db8:1::1".parse().unwrap(),
            cidr: "2001:db8:1::/64".parse().unwrap(),
            mac_address: MacAddr(mac(201)),
        }],
        routes,
        ..fixtures::router("r", 7)
    }
}

/// The world with the upstream's MAC not known yet.
fn bare() -> Sim {
    let mut sim = Sim::with("h", TUNNEL, &[("physnet1", PATCH)], &Settings::default());
    sim.chassis("h2", "192.0.2.2");
    sim.put(&network("net1", 1, NetworkType::Geneve, 101));
    sim.put(&network("ext", 10, NetworkType::Flat, 0));
    sim.put(&Subnet {
        enable_dhcp: false,
        ..fixtures::subnet("s-ext", "ext", "203.0.113.0/24")
    });
    sim.put(&Subnet {
        enable_dhcp: false,
        gateway_ip: Some(UPSTREAM.parse().unwrap()),
        ip_version: 6,
        ..fixtures::subnet("s-ext6", "ext", "2001:db8:ff::/64")
    });
    sim.put(&Subnet {
        enable_dhcp: false,
        gateway_ip: Some("2001:db8:1::1".parse().unwrap()),
        ip_version: 6,
        ..fixtures::subnet("s-net1", "net1", "2001:db8:1::/64")
    });
    sim.put(&router(vec![]));
    sim.put(&port("a", "net1", 5, &[("s-net1", "2001:db8:1::5")], "h"));
    sim.plug("a", 1);
    sim.put(&port("c", "net1", 7, &[("s-net1", "2001:db8:1::7")], "h2"));
    sim.put(&Port {
        device_owner: owner::ROUTER_INTERFACE.into(),
        device_id: "r".into(),
        ..port("r1", "net1", 201, &[("s-net1", "2001:db8:1::1")], "")
    });
    sim.put(&Port {
        device_owner: owner::ROUTER_GATEWAY.into(),
        device_id: "r".into(),
        ..port(
            "gw",
            "ext",
            2,
            &[("s-ext", "203.0.113.2"), ("s-ext6", GW6)],
            "",
        )
    });
    sim.put(&Port {
        device_owner: CHASSIS_SNAT.into(),
        device_id: "h".into(),
        ..port(
            "snat-h",
            "ext",
            20,
            &[("s-ext", "203.0.113.20"), ("s-ext6", "2001:db8:ff::20")],
            "h",
        )
    });
    sim
}

fn upstream_mac(sim: &Sim) -> Option<[u8; 6]> {
    let hop: (String, IpAddr) = ("ext".into(), UPSTREAM.parse().unwrap());
    sim.core.host().neighbours.get(&hop).copied()
}

fn ticked(sim: &mut Sim) -> Vec<PacketOut> {
    sim.wait(Duration::from_millis(100))
        .into_iter()
        .flat_map(|p| p.packets)
        .collect()
}

/// An ND message from the upstream (at OUTSIDE_MAC) on the external network.
fn nd_from_outside(src: Ipv6Addr, dst: Ipv6Addr, eth_dst: [u8; 6], m: &Icmpv6Repr<'_>) -> Vec<u8> {
    let ip = Ipv6Repr::new(src, dst, IpProtocol::Icmpv6, 0, 255);
    icmpv6::build_frame(
        EthernetAddress(OUTSIDE_MAC),
        EthernetAddress(eth_dst),
        None,
        &ip,
        m,
    )
}

fn echo(from: [u8; 6], to: [u8; 6], src: &str, dst: &str) -> Vec<u8> {
    let ip = Ipv6Repr::new(ip6(src), ip6(dst), IpProtocol::Icmpv6, 0, 64);
    let m = Icmpv6Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: b"ping",
    };
    icmpv6::build_frame(EthernetAddress(from), EthernetAddress(to), None, &ip, &m)
}

/// The world once the upstream answered the controller's solicitation.
fn world(sim: &mut Sim) {
    let na = Icmpv6Repr::NeighborAdvert {
        router: true,
        solicited: true,
        override_: true,
        target_addr: ip6(UPSTREAM),
        lladdr: Some(EthernetAddress(OUTSIDE_MAC)),
    };
    sim.send(
        PATCH,
        &nd_from_outside(ip6(UPSTREAM), ip6(GW6), mac(20), &na),
    );
}

fn only(out: &Outcome, port: u32) -> Vec<u8> {
    assert_eq!(out.ports(), vec![port], "{out}");
    out.outputs[0].frame.clone()
}

#[test]
fn the_upstream_is_solicited_and_learnt_then_vms_leave_unnated_from_this_hosts_mac() {
    let mut sim = bare();
    // No way out before the upstream's MAC is known.
    let out = sim
        .send(
            1,
            &echo(mac(5), mac(201), "2001:db8:1::5", "2001:db8:77::9"),
        )
        .outcome;
    assert!(!out.ports().contains(&PATCH), "{out}");
    // The controller asks for it: from the gateway address and this host's MAC.
    let asks = ticked(&mut sim);
    let ns = asks
        .iter()
        .find_map(|p| {
            let f = icmpv6::parse_frame(&p.data).ok()?;
            match f.icmpv6 {
                Icmpv6Repr::NeighborSolicit {
                    target_addr,
                    lladdr,
                } if target_addr == ip6(UPSTREAM) => Some((f.ipv6.src_addr, lladdr, f.ethernet)),
                _ => None,
            }
        })
        .unwrap_or_else(|| panic!("no NS for the upstream: {asks:?}"));
    assert_eq!(ns.0, ip6(GW6));
    assert_eq!(ns.1, Some(EthernetAddress(mac(20))));
    assert_eq!(ns.2.src_addr.0, mac(20));
    assert_eq!(ns.2.dst_addr.0, [0x33, 0x33, 0xff, 0, 0, 1]);

    world(&mut sim);
    assert_eq!(upstream_mac(&sim), Some(OUTSIDE_MAC));
    assert!(
        ticked(&mut sim).iter().all(|p| icmpv6::parse_frame(&p.data)
            .is_ok_and(|f| !matches!(f.icmpv6, Icmpv6Repr::NeighborSolicit { .. }))),
        "asked no more once known"
    );
    let out = sim
        .send(
            1,
            &echo(mac(5), mac(201), "2001:db8:1::5", "2001:db8:77::9"),
        )
        .outcome;
    let f = only(&out, PATCH);
    let p = icmpv6::parse_frame(&f).unwrap();
    assert_eq!(
        p.ethernet.src_addr.0,
        mac(20),
        "this host's MAC, not the gateway port's"
    );
    assert_eq!(p.ethernet.dst_addr.0, OUTSIDE_MAC);
    assert_eq!(p.ipv6.src_addr, ip6("2001:db8:1::5"), "no NAT");
    assert_eq!(p.ipv6.hop_limit, 63);
}

#[test]
fn the_gateway_address_is_answered_with_this_hosts_mac_and_arrivals_reach_the_vms() {
    let mut sim = bare();
    world(&mut sim);
    // Solicited from the upstream (multicast, with its link-layer option): answered in the
    // switch, back out of the patch port, anycast (no override).
    let group = ip6("ff02::1:ff00:2");
    let ns = Icmpv6Repr::NeighborSolicit {
        target_addr: ip6(GW6),
        lladdr: Some(EthernetAddress(OUTSIDE_MAC)),
    };
    let sent = sim.send(
        PATCH,
        &nd_from_outside(ip6(UPSTREAM), group, [0x33, 0x33, 0xff, 0, 0, 2], &ns),
    );
    assert!(sent.punted.is_empty(), "answered by flows");
    let f = only(&sent.outcome, PATCH);
    let p = icmpv6::parse_frame(&f).unwrap();
    assert_eq!(p.ethernet.src_addr.0, mac(20));
    assert_eq!(p.ethernet.dst_addr.0, OUTSIDE_MAC);
    assert_eq!(
        (p.ipv6.src_addr, p.ipv6.dst_addr),
        (ip6(GW6), ip6(UPSTREAM))
    );
    assert_eq!(
        p.icmpv6,
        Icmpv6Repr::NeighborAdvert {
            router: true,
            solicited: true,
            override_: false,
            target_addr: ip6(GW6),
            lladdr: Some(EthernetAddress(mac(20))),
        }
    );
    // A reachability probe (unicast, no option): the controller answers.
    let probe = Icmpv6Repr::NeighborSolicit {
        target_addr: ip6(GW6),
        lladdr: None,
    };
    let sent = sim.send(
        PATCH,
        &nd_from_outside(ip6(UPSTREAM), ip6(GW6), mac(20), &probe),
    );
    let answers: Vec<(u32, Vec<u8>)> = sent.frames();
    let (port, f) = answers
        .iter()
        .find(|(_, f)| {
            icmpv6::parse_frame(f)
                .is_ok_and(|p| matches!(p.icmpv6, Icmpv6Repr::NeighborAdvert { .. }))
        })
        .unwrap_or_else(|| panic!("no answer to the probe: {answers:?}"));
    assert_eq!(*port, PATCH);
    assert_eq!(icmpv6::parse_frame(f).unwrap().ethernet.src_addr.0, mac(20));
    // Other addresses on the external subnet are not this host's to answer.
    let other = Icmpv6Repr::NeighborSolicit {
        target_addr: ip6("2001:db8:ff::77"),
        lladdr: Some(EthernetAddress(OUTSIDE_MAC)),
    };
    let sent = sim.send(
        PATCH,
        &nd_from_outside(
            ip6(UPSTREAM),
            ip6("ff02::1:ff00:77"),
            [0x33, 0x33, 0xff, 0, 0, 0x77],
            &other,
        ),
    );
    assert!(!sent.outcome.ports().contains(&PATCH), "{}", sent.outcome);

    // In: to this host's MAC for the router's prefix, routed to the VM, here or on h2.
    let out = sim
        .send(
            PATCH,
            &echo(OUTSIDE_MAC, mac(20), UPSTREAM, "2001:db8:1::5"),
        )
        .outcome;
    let f = only(&out, 1);
    let p = icmpv6::parse_frame(&f).unwrap();
    assert_eq!(
        (p.ethernet.src_addr.0, p.ethernet.dst_addr.0),
        (mac(201), mac(5))
    );
    assert_eq!(p.ipv6.hop_limit, 63);
    let out = sim
        .send(
            PATCH,
            &echo(OUTSIDE_MAC, mac(20), UPSTREAM, "2001:db8:1::7"),
        )
        .outcome;
    only(&out, TUNNEL);
    // Not to another MAC (the router's gateway port's, say), and not for another prefix.
    let out = sim
        .send(PATCH, &echo(OUTSIDE_MAC, mac(2), UPSTREAM, "2001:db8:1::5"))
        .outcome;
    assert!(!out.ports().contains(&1), "{out}");
    let out = sim
        .send(
            PATCH,
            &echo(OUTSIDE_MAC, mac(20), UPSTREAM, "2001:db8:2::5"),
        )
        .outcome;
    assert!(
        !out.ports().contains(&1) && !out.ports().contains(&TUNNEL),
        "{out}"
    );
}

#[test]
fn extra_routes_with_ipv6_next_hops_inside_and_outside() {
    let mut sim = bare();
    world(&mut sim);
    let far_mac = [0x02, 0, 0, 0, 0, 0x05];
    sim.put(&router(vec![
        model::HostRoute {
            destination: "2001:db8:99::/64".parse().unwrap(),
            nexthop: "2001:db8:1::5".parse().unwrap(),
        },
        model::HostRoute {
            destination: "2001:db8:77::/64".parse().unwrap(),
            nexthop: "2001:db8:ff::5".parse().unwrap(),
        },
    ]));
    // The outside next hop is solicited, and learnt from its advertisement.
    let asks = ticked(&mut sim);
    assert!(
        asks.iter().any(|p| {
            icmpv6::parse_frame(&p.data).is_ok_and(|f| matches!(
            f.icmpv6,
            Icmpv6Repr::NeighborSolicit { target_addr, .. } if target_addr == ip6("2001:db8:ff::5")
        ))
        }),
        "{asks:?}"
    );
    let na = Icmpv6Repr::NeighborAdvert {
        router: false,
        solicited: true,
        override_: true,
        target_addr: ip6("2001:db8:ff::5"),
        lladdr: Some(EthernetAddress(far_mac)),
    };
    let ip = Ipv6Repr::new(ip6("2001:db8:ff::5"), ip6(GW6), IpProtocol::Icmpv6, 0, 255);
    sim.send(
        PATCH,
        &icmpv6::build_frame(
            EthernetAddress(far_mac),
            EthernetAddress(mac(20)),
            None,
            &ip,
            &na,
        ),
    );
    // Out to the far prefix: to the far machine, not the upstream.
    let out = sim
        .send(
            1,
            &echo(mac(5), mac(201), "2001:db8:1::5", "2001:db8:77::9"),
        )
        .outcome;
    let f = only(&out, PATCH);
    assert_eq!(&f[..6], &far_mac);
    // Elsewhere: the upstream still.
    let out = sim
        .send(
            1,
            &echo(mac(5), mac(201), "2001:db8:1::5", "2001:db8:55::9"),
        )
        .outcome;
    assert_eq!(&only(&out, PATCH)[..6], &OUTSIDE_MAC);
    // In, for the prefix behind VM a: routed to it.
    let out = sim
        .send(
            PATCH,
            &echo(OUTSIDE_MAC, mac(20), UPSTREAM, "2001:db8:99::1"),
        )
        .outcome;
    let f = only(&out, 1);
    assert_eq!(&f[..6], &mac(5));
}
