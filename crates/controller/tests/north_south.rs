//! North-south on the fake switch: what leaves by the provider patch port (port 50) and
//! as what, what comes back in to the VMs, ARP on the external network, VLAN tags.
//!
//! Router r (key 7) joins net1 (10.0.1.0/24, geneve) and has its gateway on `ext` (flat on
//! physnet1, 203.0.113.0/24, next hop 203.0.113.1). Local VMs: a (10.0.1.5, port 1) with
//! floating IP 203.0.113.30, b (10.0.1.6, port 2) without; this host's SNAT address is
//! 203.0.113.20. A VLAN network v100 (segmentation id 100) has VM d (198.51.100.5, port 3).
//! A load balancer's VIP on net1 with a floating IP is balanced here and answered from it.

mod support;

use controller::apps::Settings;
use controller::apps::nat::CHASSIS_SNAT;
use controller::apps::nat::punt::NatPunt;
use fake_switch::Outcome;
use model::{
    ExternalGateway, FloatingIp, MacAddr, Network, NetworkType, Port, PortStatus, Router,
    RouterInterface, Subnet, fixtures, owner,
};
use openflow::oxm::Match;
use openflow::packet::{PacketIn, PacketOut};
use packet::arp::{self, ArpRepr, Operation};
use packet::ethernet::{EtherType, EthernetRepr, Frame, VlanTag};
use packet::ipv4::Ipv4Repr;
use packet::{EthernetAddress, IpProtocol, ipv4, udp};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use support::mac;
use support::sim::Sim;

const PATCH: u32 = 50;
const OUTSIDE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

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

fn port(id: &str, net: &str, n: u8, ip: &str) -> Port {
    Port {
        fixed_ips: vec![fixtures::fixed_ip(&format!("s-{net}"), ip)],
        port_security_enabled: false,
        ..fixtures::port(id, net, n.into(), "h")
    }
}

fn ext_subnet() -> Subnet {
    Subnet {
        enable_dhcp: false,
        ..fixtures::subnet("s-ext", "ext", "203.0.113.0/24")
    }
}

fn router() -> Router {
    Router {
        external_gateway: Some(ExternalGateway {
            network_id: "ext".into(),
            enable_snat: true,
            external_fixed_ips: vec![fixtures::fixed_ip("s-ext", "203.0.113.2")],
            port_id: "gw".into(),
        }),
        interfaces: vec![RouterInterface {
            port_id: "r1".into(),
            subnet_id: "s-net1".into(),
            network_id: "net1".into(),
            ip_address: "10.0.1.1".parse().unwrap(),
            cidr: "10.0.1.0/24".parse().unwrap(),
            mac_address: MacAddr(mac(201)),
        }],
        ..fixtures::router("r", 7)
    }
}

fn fip() -> FloatingIp {
    FloatingIp {
        meta: fixtures::meta("fip"),
        floating_network_id: "ext".into(),
        floating_ip_address: "203.0.113.30".parse().unwrap(),
        floating_subnet_id: "s-ext".into(),
        floating_port_id: "fip-port".into(),
        port_id: Some("a".into()),
        fixed_ip_address: Some("10.0.1.5".parse().unwrap()),
        router_id: Some("r".into()),
        port_forwardings: Vec::new(),
    }
}

/// The world with the next hop not known yet: a, b and d plugged at OpenFlow ports 1-3,
/// the patch port to physnet1 at 50, the geneve tunnel at 99.
fn bare() -> Sim {
    let mut sim = Sim::with("h", 99, &[("physnet1", PATCH)], &Settings::default());
    sim.put(&network("net1", 1, NetworkType::Geneve, 101));
    sim.put(&network("ext", 10, NetworkType::Flat, 0));
    sim.put(&network("v100", 3, NetworkType::Vlan, 100));
    sim.put(&ext_subnet());
    // As Neutron makes them: the router before its interfaces' ports.
    sim.put(&router());
    for (id, net, n, ip, ofport) in [
        ("a", "net1", 5, "10.0.1.5", 1),
        ("b", "net1", 6, "10.0.1.6", 2),
        ("d", "v100", 8, "198.51.100.5", 3),
    ] {
        sim.put(&port(id, net, n, ip));
        sim.plug(id, ofport);
    }
    sim.put(&Port {
        device_owner: owner::ROUTER_INTERFACE.into(),
        device_id: "r".into(),
        binding_host_id: String::new(),
        ..port("r1", "net1", 201, "10.0.1.1")
    });
    sim.put(&Port {
        device_owner: CHASSIS_SNAT.into(),
        device_id: "h".into(),
        ..port("snat-h", "ext", 20, "203.0.113.20")
    });
    sim.put(&Port {
        device_owner: owner::FLOATING_IP.into(),
        binding_host_id: String::new(),
        ..port("fip-port", "ext", 30, "203.0.113.30")
    });
    sim.put(&fip());
    sim
}

/// The next hop's ARP reply (from 203.0.113.1 at `from`), to this host's SNAT address.
fn next_hop_reply(from: [u8; 6]) -> Vec<u8> {
    let reply = ArpRepr {
        operation: Operation::Reply,
        source_hardware_addr: EthernetAddress(from),
        source_protocol_addr: "203.0.113.1".parse().unwrap(),
        target_hardware_addr: EthernetAddress(mac(20)),
        target_protocol_addr: "203.0.113.20".parse().unwrap(),
    };
    let mut p = [0u8; 28];
    reply.emit(&mut arp::Packet::new_unchecked(&mut p[..]));
    eth(from, mac(20), None, EtherType::Arp, &p)
}

/// The next hop learnt, as `from`.
fn next_hop(sim: &Sim) -> Option<[u8; 6]> {
    let hop: (String, IpAddr) = ("ext".into(), "203.0.113.1".parse().unwrap());
    sim.core.host().neighbours.get(&hop).copied()
}

/// Processes `frame` from `port` (packet-ins go to the controller).
fn send(sim: &mut Sim, port: u32, frame: &[u8]) -> Outcome {
    sim.send(port, frame).outcome
}

/// What the controller sends on its own at the next tick.
fn ticked(sim: &mut Sim) -> Vec<PacketOut> {
    sim.wait(Duration::from_millis(100))
        .into_iter()
        .flat_map(|p| p.packets)
        .collect()
}

/// The world once the next hop (at OUTSIDE_MAC) answered.
fn world() -> Sim {
    let mut sim = bare();
    sim.send(PATCH, &next_hop_reply(OUTSIDE_MAC));
    assert_eq!(next_hop(&sim), Some(OUTSIDE_MAC));
    sim
}

fn eth(src: [u8; 6], dst: [u8; 6], vlan: Option<u16>, et: EtherType, payload: &[u8]) -> Vec<u8> {
    EthernetRepr {
        src_addr: EthernetAddress(src),
        dst_addr: EthernetAddress(dst),
        vlan: vlan.map(|vid| VlanTag {
            pcp: 0,
            dei: false,
            vid,
        }),
        ethertype: et,
    }
    .build(payload)
}

fn udp_frame(src: &str, dst: &str, sport: u16, dport: u16, from: [u8; 6], to: [u8; 6]) -> Vec<u8> {
    let ip = |a: &str| a.parse().unwrap();
    support::udp_frame(from, to, (ip(src), sport), (ip(dst), dport))
}

/// (eth, ip, udp source port, udp destination port) of a frame.
fn parsed(frame: &[u8]) -> (EthernetRepr, Ipv4Repr, u16, u16) {
    let f = Frame::new_checked(frame).unwrap();
    let e = EthernetRepr::parse(&f).unwrap();
    let ip_bytes = &frame[f.header_len()..];
    let ip = Ipv4Repr::parse(&ipv4::Packet::new_checked(ip_bytes).unwrap()).unwrap();
    let u = udp::Packet::new_checked(&ip_bytes[20..]).unwrap();
    (e, ip, u.src_port(), u.dst_port())
}

#[test]
fn a_vm_without_floating_ip_leaves_by_this_hosts_snat_address_and_the_reply_comes_back() {
    let mut sim = world();
    let out = send(
        &mut sim,
        2,
        &udp_frame("10.0.1.6", "198.18.0.9", 4000, 53, mac(6), mac(201)),
    );
    assert_eq!(out.ports(), vec![PATCH], "{out}");
    let (e, ip, sport, _) = parsed(&out.outputs[0].frame);
    assert_eq!(e.src_addr.0, mac(20), "the SNAT port's MAC");
    assert_eq!(e.dst_addr.0, OUTSIDE_MAC, "the next hop's MAC");
    assert_eq!(e.vlan, None, "flat");
    assert_eq!(ip.src_addr, Ipv4Addr::new(203, 0, 113, 20));
    assert_eq!(ip.ttl, 63);
    // The reply, to the SNAT address and the port conntrack chose.
    let back = send(
        &mut sim,
        PATCH,
        &udp_frame(
            "198.18.0.9",
            "203.0.113.20",
            53,
            sport,
            OUTSIDE_MAC,
            mac(20),
        ),
    );
    assert_eq!(back.ports(), vec![2], "{back}");
    let (e, ip, _, dport) = parsed(&back.outputs[0].frame);
    assert_eq!(ip.dst_addr, Ipv4Addr::new(10, 0, 1, 6));
    assert_eq!(dport, 4000);
    assert_eq!(e.dst_addr.0, mac(6));
    assert_eq!(e.src_addr.0, mac(201), "from the router");
    // Something nobody asked for, to the SNAT address, goes nowhere.
    let stray = send(
        &mut sim,
        PATCH,
        &udp_frame("198.18.0.9", "203.0.113.20", 53, 9999, OUTSIDE_MAC, mac(20)),
    );
    assert!(stray.outputs.is_empty(), "{stray}");
}

#[test]
fn a_floating_ip_is_dnated_to_its_vm_and_the_vm_leaves_by_it() {
    let mut sim = world();
    let inbound = send(
        &mut sim,
        PATCH,
        &udp_frame("198.18.0.9", "203.0.113.30", 5555, 80, OUTSIDE_MAC, mac(30)),
    );
    assert_eq!(inbound.ports(), vec![1], "{inbound}");
    let (e, ip, sport, dport) = parsed(&inbound.outputs[0].frame);
    assert_eq!(
        (ip.src_addr, ip.dst_addr),
        (Ipv4Addr::new(198, 18, 0, 9), Ipv4Addr::new(10, 0, 1, 5)),
        "the VM sees the outside's real address"
    );
    assert_eq!((sport, dport), (5555, 80));
    assert_eq!(e.dst_addr.0, mac(5));
    // The answer leaves from the floating IP.
    let reply = send(
        &mut sim,
        1,
        &udp_frame("10.0.1.5", "198.18.0.9", 80, 5555, mac(5), mac(201)),
    );
    assert_eq!(reply.ports(), vec![PATCH], "{reply}");
    let (e, ip, sport, _) = parsed(&reply.outputs[0].frame);
    assert_eq!(ip.src_addr, Ipv4Addr::new(203, 0, 113, 30));
    assert_eq!(sport, 80);
    assert_eq!(e.src_addr.0, mac(30), "the floating IP's MAC");
    // East-west is untouched: a to b stays routed inside (no NAT, not out the patch).
    let inside = send(
        &mut sim,
        1,
        &udp_frame("10.0.1.5", "10.0.1.6", 1, 2, mac(5), mac(6)),
    );
    assert_eq!(inside.ports(), vec![2], "{inside}");
}

#[test]
fn arp_for_local_addresses_is_answered_on_the_external_network_and_replies_teach_the_next_hop() {
    let mut sim = world();
    let ask = |target: &str| {
        let a = ArpRepr {
            operation: Operation::Request,
            source_hardware_addr: EthernetAddress(OUTSIDE_MAC),
            source_protocol_addr: "203.0.113.1".parse().unwrap(),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target.parse().unwrap(),
        };
        let mut p = [0u8; 28];
        a.emit(&mut arp::Packet::new_unchecked(&mut p[..]));
        eth(OUTSIDE_MAC, [0xff; 6], None, EtherType::Arp, &p)
    };
    for (ip, m) in [("203.0.113.30", mac(30)), ("203.0.113.20", mac(20))] {
        let out = send(&mut sim, PATCH, &ask(ip));
        assert_eq!(out.ports(), vec![PATCH], "{out}");
        let f = Frame::new_checked(&out.outputs[0].frame[..]).unwrap();
        let r = ArpRepr::parse(&arp::Packet::new_checked(f.payload()).unwrap()).unwrap();
        assert_eq!(r.operation, Operation::Reply);
        assert_eq!(r.source_hardware_addr.0, m);
        assert_eq!(r.source_protocol_addr.to_string(), ip);
        assert_eq!(f.dst_addr().0, OUTSIDE_MAC);
    }
    // The router's gateway address and anything else are not this host's to answer.
    for ip in ["203.0.113.2", "203.0.113.77"] {
        let out = send(&mut sim, PATCH, &ask(ip));
        assert!(!out.ports().contains(&PATCH), "{ip}: {out}");
    }
    // A reply from the next hop is learnt: on a host that does not know it yet.
    let mut sim = bare();
    // Unknown, the controller asks for it from this host's SNAT address, and announces
    // the SNAT address (gratuitous ARP) once.
    let asks = ticked(&mut sim);
    let target = |p: &openflow::packet::PacketOut| p.data[38..42].to_vec();
    assert!(
        asks.iter()
            .any(|p| p.data[28..32] == [203, 0, 113, 20] && target(p) == [203, 0, 113, 1]),
        "{asks:?}"
    );
    assert!(
        asks.iter().any(|p| target(p) == [203, 0, 113, 20]),
        "gratuitous ARP: {asks:?}"
    );
    let before = sim.core.desired().table().clone();
    send(&mut sim, PATCH, &next_hop_reply([2, 0, 0, 0, 0, 9]));
    assert_eq!(next_hop(&sim), Some([2, 0, 0, 0, 0, 9]));
    assert!(
        sim.core.desired().table() != &before,
        "what was learnt is compiled in"
    );
    let out = send(
        &mut sim,
        2,
        &udp_frame("10.0.1.6", "198.18.0.9", 4000, 53, mac(6), mac(201)),
    );
    assert_eq!(out.ports(), vec![PATCH], "{out}");
    assert_eq!(&out.outputs[0].frame[..6], &[2, 0, 0, 0, 0, 9], "{out}");
    // Once known, it is not asked for again; the SNAT address was announced once.
    // (The floating IP, whose way out is known now, is announced for the first time.)
    let later = ticked(&mut sim);
    assert!(
        later
            .iter()
            .all(|p| target(p) != [203, 0, 113, 1] && target(p) != [203, 0, 113, 20]),
        "{later:?}"
    );
}

#[test]
fn a_vlan_network_is_tagged_towards_the_physical_network_and_untagged_inside() {
    let mut sim = world();
    let out = send(
        &mut sim,
        3,
        &udp_frame("198.51.100.5", "198.51.100.1", 1, 2, mac(8), OUTSIDE_MAC),
    );
    assert_eq!(out.ports(), vec![PATCH], "{out}");
    let f = Frame::new_checked(&out.outputs[0].frame[..]).unwrap();
    assert_eq!(f.vlan().map(|v| v.vid), Some(100));
    // In with tag 100 to d: untagged at d; tag 101 is not this network.
    let reply = |vid| {
        let ip = Ipv4Repr::new(
            "198.51.100.1".parse().unwrap(),
            "198.51.100.5".parse().unwrap(),
            IpProtocol::Udp,
            8,
        );
        eth(
            OUTSIDE_MAC,
            mac(8),
            Some(vid),
            EtherType::Ipv4,
            &ip.build(&[0, 2, 0, 1, 0, 8, 0, 0]),
        )
    };
    let inbound = send(&mut sim, PATCH, &reply(100));
    assert_eq!(inbound.ports(), vec![3], "{inbound}");
    let f = Frame::new_checked(&inbound.outputs[0].frame[..]).unwrap();
    assert_eq!(f.vlan(), None);
    assert!(send(&mut sim, PATCH, &reply(101)).outputs.is_empty());
}

/// Every north-south flow and group, committed to a real OVS, reads back equal (so a
/// restarted controller changes nothing), and OVS accepts the conntrack NAT actions.
#[tokio::test]
async fn the_north_south_pipeline_commits_to_real_ovs_and_reads_back_equal() {
    if !testbed::require_root("the_north_south_pipeline_commits_to_real_ovs_and_reads_back_equal") {
        return;
    }
    let sim = world();
    let d = sim.core.desired();
    let ovs = support::ovs();
    let mut s = support::session(&ovs).await;
    let groups = d.groups().diff(&s.dump_groups().await.expect("groups"));
    let flows = d.table().diff(&s.dump_flows().await.expect("flows"));
    s.commit_with_groups(&groups, &flows)
        .await
        .unwrap_or_else(|e| panic!("OVS refused: {e}"));
    let back = s.dump_flows().await.expect("dump");
    let again = d.table().diff(&back);
    assert!(again.is_empty(), "read back differs: {again:?}");
    assert!(
        d.groups()
            .diff(&s.dump_groups().await.expect("groups"))
            .is_empty()
    );
    let dump = ovs.ofctl(["dump-flows", "br-int"]).expect("dump-flows");
    for want in [
        "nat(src=203.0.113.20)",
        "nat(dst=10.0.1.5)",
        "nat(src=203.0.113.30)",
        "zone=65520",
        "push_vlan:0x8100",
    ] {
        assert!(dump.contains(want), "{want} not in:\n{dump}");
    }
}

/// Whatever arrives on the external network and reaches the controller (random bytes,
/// mangled ARP), the NAT handler does not panic, and learns nothing but next hops.
#[test]
fn random_and_mangled_frames_from_outside_never_panic_the_nat_handler() {
    let mut sim = bare();
    let mut rnd = support::rng();
    let reply = ArpRepr {
        operation: Operation::Reply,
        source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 9]),
        source_protocol_addr: "203.0.113.99".parse().unwrap(),
        target_hardware_addr: EthernetAddress(mac(20)),
        target_protocol_addr: "203.0.113.20".parse().unwrap(),
    };
    let mut p = [0u8; 28];
    reply.emit(&mut arp::Packet::new_unchecked(&mut p[..]));
    let good = eth([2, 0, 0, 0, 0, 9], mac(20), None, EtherType::Arp, &p);
    let cookie = controller::pipeline::Cookie {
        app: controller::pipeline::App::Nat,
        key: 10,
    }
    .encode();
    for i in 0..5000 {
        let mut frame = if i % 2 == 0 {
            good.clone()
        } else {
            (0..(rnd() % 80) as usize).map(|_| rnd() as u8).collect()
        };
        if !frame.is_empty() && i % 2 == 0 {
            let n = frame.len();
            frame[(rnd() as usize) % n] = rnd() as u8;
            frame.truncate((rnd() as usize) % (n + 1));
        }
        let pin = PacketIn {
            buffer_id: u32::MAX,
            total_len: frame.len() as u16,
            reason: 1,
            table_id: 50,
            cookie,
            match_: Match::new().metadata(if i % 3 == 0 { 10 } else { rnd() }),
            data: frame,
        };
        sim.packet_in(pin);
    }
    // 203.0.113.99 is nobody's next hop: only the router's next hop can ever be learnt (a
    // mangled byte may well turn a frame into its valid reply).
    let hop: (String, IpAddr) = ("ext".into(), "203.0.113.1".parse().unwrap());
    let neighbours = &sim.core.host().neighbours;
    assert!(neighbours.keys().all(|k| *k == hop), "{neighbours:?}");
    assert!(sim.handler::<NatPunt>().ignored > 4000);
}

/// A UDP balancer on 10.0.1.100:53 (port `vip`, MAC 100) of net1 over a (10.0.1.5, here)
/// and c (10.0.1.7, on host o), port 5353, with floating IP 203.0.113.40 on its VIP.
fn with_vip_fip(sim: &mut Sim) {
    use model::lb::{Algorithm, Listener, LoadBalancer, Member, Pool, Protocol, Status};
    let up = || Status {
        provisioning_status: "ACTIVE".into(),
        operating_status: "ONLINE".into(),
    };
    let member = |id: &str, ip: &str| Member {
        meta: fixtures::meta(id),
        status: up(),
        admin_state_up: true,
        address: ip.parse().unwrap(),
        protocol_port: 5353,
        weight: 1,
        backup: false,
        subnet_id: None,
        monitor_address: None,
        monitor_port: None,
    };
    sim.chassis("o", "192.0.2.2");
    sim.put(&Port {
        status: PortStatus::Active,
        ..port("a", "net1", 5, "10.0.1.5")
    });
    sim.put(&Port {
        status: PortStatus::Active,
        binding_host_id: "o".into(),
        ..port("c", "net1", 7, "10.0.1.7")
    });
    sim.put(&Port {
        device_owner: model::lb::VIP_OWNER.into(),
        binding_host_id: String::new(),
        ..port("vip", "net1", 100, "10.0.1.100")
    });
    sim.put(&LoadBalancer {
        meta: fixtures::meta("lb"),
        status: up(),
        admin_state_up: true,
        provider: "dragonflow".into(),
        vip_address: "10.0.1.100".parse().unwrap(),
        vip_port_id: "vip".into(),
        vip_subnet_id: "s-net1".into(),
        vip_network_id: "net1".into(),
        vip_mac: MacAddr(mac(100)),
        vip_port_owned: true,
        unique_key: 9,
        listeners: vec![Listener {
            meta: fixtures::meta("l"),
            status: up(),
            admin_state_up: true,
            protocol: Protocol::Udp,
            protocol_port: 53,
            connection_limit: -1,
            allowed_cidrs: Vec::new(),
            default_pool_id: Some("p".into()),
        }],
        pools: vec![Pool {
            meta: fixtures::meta("p"),
            status: up(),
            admin_state_up: true,
            protocol: Protocol::Udp,
            lb_algorithm: Algorithm::RoundRobin,
            session_persistence: None,
            listener_id: Some("l".into()),
            members: vec![member("ma", "10.0.1.5"), member("mc", "10.0.1.7")],
            healthmonitor: None,
        }],
        failovers: 0,
        fip_holder: None,
    });
    sim.put(&Port {
        device_owner: owner::FLOATING_IP.into(),
        binding_host_id: String::new(),
        ..port("fip2-port", "ext", 40, "203.0.113.40")
    });
    sim.put(&FloatingIp {
        meta: fixtures::meta("fip2"),
        floating_ip_address: "203.0.113.40".parse().unwrap(),
        floating_port_id: "fip2-port".into(),
        port_id: Some("vip".into()),
        fixed_ip_address: Some("10.0.1.100".parse().unwrap()),
        ..fip()
    });
}

#[test]
fn a_floating_ip_on_a_vip_is_balanced_by_its_holder_and_answered_from_it() {
    let mut sim = world();
    with_vip_fip(&mut sim);
    let (outside, fip, vip) = (
        Ipv4Addr::new(198, 18, 0, 9),
        Ipv4Addr::new(203, 0, 113, 40),
        Ipv4Addr::new(10, 0, 1, 100),
    );
    // This host (h, before o by name) holds it: the outside's datagrams reach both
    // members, from the VIP.
    let mut to: std::collections::BTreeMap<u32, u16> = Default::default();
    for sport in 4000..4032u16 {
        let o = send(
            &mut sim,
            PATCH,
            &udp_frame(
                "198.18.0.9",
                "203.0.113.40",
                sport,
                53,
                OUTSIDE_MAC,
                mac(40),
            ),
        );
        assert_eq!(o.outputs.len(), 1, "{o}");
        let (_, ip, s, d) = parsed(&o.outputs[0].frame);
        assert_eq!((ip.src_addr, s, d), (vip, sport, 5353), "{o}");
        let port = o.outputs[0].port;
        let member = match port {
            1 => Ipv4Addr::new(10, 0, 1, 5),
            99 => Ipv4Addr::new(10, 0, 1, 7),
            p => panic!("out of {p}: {o}"),
        };
        assert_eq!(ip.dst_addr, member);
        to.insert(port, sport);
    }
    assert_eq!(to.len(), 2, "both members: {to:?}");
    // a's answer (here) leaves by the floating IP.
    let sport = to[&1];
    let o = send(
        &mut sim,
        1,
        &udp_frame("10.0.1.5", "10.0.1.100", 5353, sport, mac(5), mac(100)),
    );
    assert_eq!(o.ports(), vec![PATCH], "{o}");
    let (e, ip, s, d) = parsed(&o.outputs[0].frame);
    assert_eq!((ip.src_addr, s, ip.dst_addr, d), (fip, 53, outside, sport));
    assert_eq!((e.src_addr.0, e.dst_addr.0), (mac(40), OUTSIDE_MAC));
    // c's answer comes by tunnel and leaves the same way.
    let sport = to[&99];
    let mut pkt = fake_switch::Packet::new(
        99,
        udp_frame("10.0.1.7", "10.0.1.100", 5353, sport, mac(7), mac(100)),
    );
    pkt.tun_id = 101;
    let o = sim.send_packet(pkt).outcome;
    assert_eq!(o.ports(), vec![PATCH], "{o}");
    let (_, ip, s, d) = parsed(&o.outputs[0].frame);
    assert_eq!((ip.src_addr, s, ip.dst_addr, d), (fip, 53, outside, sport));
}

#[test]
fn a_floating_ip_on_a_vip_made_before_the_next_hop_is_learnt_works_once_it_is() {
    // Found by lb_fip_e2e under load: learning the next hop recompiled floating IPs and
    // routers but not the balancer that compiles its VIP's floating IP.
    let mut sim = bare();
    with_vip_fip(&mut sim);
    let datagram = udp_frame("198.18.0.9", "203.0.113.40", 4000, 53, OUTSIDE_MAC, mac(40));
    assert!(
        send(&mut sim, PATCH, &datagram).outputs.is_empty(),
        "no way out yet, no floating IP"
    );
    send(&mut sim, PATCH, &next_hop_reply([2, 0, 0, 0, 0, 9]));
    let o = send(&mut sim, PATCH, &datagram);
    assert_eq!(
        o.outputs.len(),
        1,
        "to a member once the next hop is known: {o}"
    );
}
