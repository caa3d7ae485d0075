//! Router advertisements on the fake switch: a VM's router solicitation reaches this
//! host's controller (and no other port), the RA comes back out of the asking port with
//! the contents its subnet's modes call for, and unsolicited RAs go to local ports only,
//! each on its own jittered schedule.
//!
//! Network n (key 1, MTU 1400) has subnet s6 (fd00:1::/64) behind router r (key 7,
//! interface MAC fa:16:3e:00:00:c9). Local VMs a (OpenFlow port 1) and b (port 2), port
//! security on; c is on host o.

mod support;

use controller::apps::ra::responder::Ra;
use model::{
    ExternalGateway, HostRoute, MacAddr, Network, Port, Router, RouterInterface, Subnet, fixtures,
    owner,
};
use openflow::action::Action;
use packet::icmpv6::{self, Icmpv6Repr};
use packet::ipv6::{self, Ipv6Repr};
use packet::ra::{self, RouterAdvert};
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;
use support::mac;
use support::sim::Sim;

const ROUTER_MAC: u8 = 201;
const DNS: &str = "2001:db8::53";

fn subnet(mode: Option<&str>) -> Subnet {
    Subnet {
        ipv6_ra_mode: mode.map(str::to_string),
        ipv6_address_mode: mode.map(str::to_string),
        dns_nameservers: vec![DNS.parse().unwrap(), "192.0.2.53".parse().unwrap()],
        enable_dhcp: true,
        ..fixtures::subnet("s6", "n", "fd00:1::/64")
    }
}

fn vm(id: &str, n: u8, host: &str) -> Port {
    let ip = ipv6::link_local(mac(n))
        .to_string()
        .replace("fe80::", "fd00:1::");
    Port {
        fixed_ips: vec![fixtures::fixed_ip("s6", &ip)],
        port_security_enabled: true,
        ..fixtures::port(id, "n", n.into(), host)
    }
}

fn router(gateway: bool, routes: Vec<HostRoute>) -> Router {
    Router {
        routes,
        external_gateway: gateway.then(|| ExternalGateway {
            network_id: "ext".into(),
            enable_snat: false,
            external_fixed_ips: Vec::new(),
            port_id: "gw".into(),
        }),
        interfaces: vec![RouterInterface {
            port_id: "r1".into(),
            subnet_id: "s6".into(),
            network_id: "n".into(),
            ip_address: "fd00:1::1".parse().unwrap(),
            cidr: "fd00:1::/64".parse().unwrap(),
            mac_address: MacAddr(mac(ROUTER_MAC)),
        }],
        ..fixtures::router("r", 7)
    }
}

fn world(mode: Option<&str>) -> Sim {
    let mut sim = Sim::new("h", 99);
    sim.chassis("o", "192.0.2.2");
    sim.put(&Network {
        subnets: vec!["s6".into()],
        mtu: 1400,
        segmentation_id: Some(101),
        ..fixtures::network("n", 1)
    });
    sim.put(&subnet(mode));
    sim.put(&router(false, Vec::new()));
    sim.put(&Port {
        device_owner: owner::ROUTER_INTERFACE.into(),
        device_id: "r".into(),
        fixed_ips: vec![fixtures::fixed_ip("s6", "fd00:1::1")],
        ..fixtures::port("r1", "n", ROUTER_MAC.into(), "")
    });
    for (id, n, ofport) in [("a", 5, 1), ("b", 6, 2)] {
        sim.put(&vm(id, n, ""));
        sim.plug(id, ofport);
    }
    sim.put(&vm("c", 8, "o"));
    sim
}

/// A router solicitation from the VM with MAC `mac(n)`, from its link-local address.
fn rs(n: u8) -> Vec<u8> {
    let all_routers: Ipv6Addr = "ff02::2".parse().unwrap();
    icmpv6::build_frame(
        EthernetAddress(mac(n)),
        EthernetAddress::ipv6_multicast(&all_routers),
        None,
        &Ipv6Repr::new(
            ipv6::link_local(mac(n)),
            all_routers,
            IpProtocol::Icmpv6,
            0,
            255,
        ),
        &Icmpv6Repr::RouterSolicit {
            lladdr: Some(EthernetAddress(mac(n))),
        },
    )
}

/// The RAs that left, by port, parsed as a host would.
fn adverts(frames: &[(u32, Vec<u8>)]) -> Vec<(u32, RouterAdvert)> {
    frames
        .iter()
        .map(|(p, f)| {
            let (e, ip, ra) = ra::parse_frame(f).expect("an RA a host accepts");
            assert_eq!(e.src_addr, EthernetAddress(mac(ROUTER_MAC)));
            assert_eq!(ip.src_addr, ipv6::link_local(mac(ROUTER_MAC)));
            assert_eq!(ip.hop_limit, 255);
            (*p, ra)
        })
        .collect()
}

fn solicit(sim: &mut Sim, ofport: u32, n: u8) -> Vec<(u32, RouterAdvert)> {
    let sent = sim.send(ofport, &rs(n));
    adverts(&sent.frames())
}

#[test]
fn a_solicitation_is_answered_out_of_the_asking_port_only_with_the_slaac_contents() {
    let mut sim = world(Some("slaac"));
    let got = solicit(&mut sim, 1, 5);
    assert_eq!(got.len(), 1, "one RA, nothing flooded: {got:?}");
    let (port, ra) = &got[0];
    assert_eq!(*port, 1);
    assert!(!ra.managed && !ra.other);
    assert_eq!(ra.router_lifetime, 0, "no gateway, no default route");
    assert_eq!(ra.mtu, Some(1400));
    assert_eq!(ra.source_lladdr, Some(EthernetAddress(mac(ROUTER_MAC))));
    assert_eq!(ra.prefixes.len(), 1);
    let p = ra.prefixes[0];
    assert_eq!((p.prefix, p.prefix_len), ("fd00:1::".parse().unwrap(), 64));
    assert!(p.on_link && p.autonomous);
    let dns = ra.rdnss.as_ref().expect("RDNSS");
    assert_eq!(
        dns.servers,
        vec![DNS.parse::<Ipv6Addr>().unwrap()],
        "IPv6 servers only"
    );
    assert_eq!(sim.handler::<Ra>().stats.answered, 1);
}

#[test]
fn flags_and_autonomy_follow_the_mode() {
    let mut sim = world(Some("slaac"));
    for (mode, managed, other, autonomous) in [
        ("dhcpv6-stateless", false, true, true),
        ("dhcpv6-stateful", true, true, false),
        ("slaac", false, false, true),
    ] {
        sim.put(&subnet(Some(mode)));
        let got = solicit(&mut sim, 2, 6);
        assert_eq!(got.len(), 1, "{mode}");
        let (port, ra) = &got[0];
        assert_eq!(*port, 2);
        assert_eq!((ra.managed, ra.other), (managed, other), "{mode}");
        assert_eq!(ra.prefixes[0].autonomous, autonomous, "{mode}");
        assert!(ra.prefixes[0].on_link, "{mode}");
    }
}

#[test]
fn a_router_with_a_way_out_is_a_default_router() {
    let mut sim = world(Some("slaac"));
    sim.put(&router(true, Vec::new()));
    assert_eq!(solicit(&mut sim, 1, 5)[0].1.router_lifetime, 300);
    let default = HostRoute {
        destination: "::/0".parse().unwrap(),
        nexthop: "fd00:1::fe".parse::<IpAddr>().unwrap(),
    };
    sim.put(&router(false, vec![default]));
    assert_eq!(solicit(&mut sim, 1, 5)[0].1.router_lifetime, 300);
    sim.put(&router(false, Vec::new()));
    assert_eq!(solicit(&mut sim, 1, 5)[0].1.router_lifetime, 0);
}

#[test]
fn without_an_ra_mode_solicitations_go_on_like_any_multicast() {
    let mut sim = world(None);
    let sent = sim.send(1, &rs(5));
    assert!(sent.outcome.to_controller.is_empty());
    assert!(sent.answers.is_empty());
    assert!(
        sent.outcome.outputs.iter().any(|o| o.port == 2),
        "flooded to the network's other port"
    );
    // The mode set later: the punt appears.
    sim.put(&subnet(Some("slaac")));
    assert_eq!(solicit(&mut sim, 1, 5).len(), 1);
}

#[test]
fn a_flood_of_solicitations_is_answered_at_the_rate_then_blocked_in_the_switch() {
    let mut sim = world(Some("slaac"));
    let answered: usize = (0..100).map(|_| solicit(&mut sim, 1, 5).len()).sum();
    assert_eq!(answered, 10);
    let stats = &sim.handler::<Ra>().stats;
    assert_eq!((stats.limited, stats.blocks), (1, 1), "{stats:?}");
    // The rest never reached the controller: the switch dropped them.
    let sent = sim.send(1, &rs(5));
    assert!(sent.outcome.to_controller.is_empty() && sent.outcome.outputs.is_empty());
    // b is not held back by a's flood.
    assert_eq!(solicit(&mut sim, 2, 6).len(), 1);
    // The block ends by itself (hard timeout).
    sim.wait(Duration::from_secs(11));
    assert_eq!(solicit(&mut sim, 1, 5).len(), 1);
}

#[test]
fn unsolicited_adverts_go_to_local_ports_only_on_jittered_schedules() {
    let mut sim = world(Some("slaac"));
    let mut sent: Vec<(Duration, u32)> = Vec::new();
    let step = Duration::from_millis(100);
    for i in 1..=4000u32 {
        for punted in sim.wait(step) {
            for p in punted.packets {
                let [Action::Output { port, .. }] = p.actions[..] else {
                    panic!("one output: {:?}", p.actions);
                };
                adverts(&[(port, p.data)]);
                sent.push((step * i, port));
            }
        }
    }
    let at = |port: u32| -> Vec<Duration> {
        sent.iter()
            .filter(|(_, p)| *p == port)
            .map(|(t, _)| *t)
            .collect()
    };
    let (a, b) = (at(1), at(2));
    assert!(sent.iter().all(|(_, p)| [1, 2].contains(p)), "{sent:?}");
    // At once, then three within 16 s each, then 30 to 100 s apart: 400 s holds 4 + 3..10.
    for times in [&a, &b] {
        assert_eq!(times[0], step, "the first on the first tick");
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps[..3]
                .iter()
                .all(|g| *g >= Duration::from_secs(4) && *g <= Duration::from_secs(16)),
            "{gaps:?}"
        );
        assert!(
            gaps[3..]
                .iter()
                .all(|g| *g >= Duration::from_secs(30) && *g <= Duration::from_secs(101)),
            "{gaps:?}"
        );
        assert!((7..=14).contains(&times.len()), "{times:?}");
    }
    assert_ne!(a[1..], b[1..], "ports do not send in step");
    // An unplugged port gets no more.
    sim.unplug("a");
    let later: usize = (0..1200)
        .flat_map(|_| sim.wait(step))
        .flat_map(|p| p.packets)
        .filter(|p| matches!(p.actions[..], [Action::Output { port: 1, .. }]))
        .count();
    assert_eq!(later, 0);
}
