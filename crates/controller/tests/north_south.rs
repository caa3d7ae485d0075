//! North-south on the fake switch: what leaves by the provider patch port (port 50) and
//! as what, what comes back in to the VMs, ARP on the external network, VLAN tags.
//!
//! Router r (key 7) joins net1 (10.0.1.0/24, geneve) and has its gateway on `ext` (flat on
//! physnet1, 203.0.113.0/24, next hop 203.0.113.1). Local VMs: a (10.0.1.5, port 1) with
//! floating IP 203.0.113.30, b (10.0.1.6, port 2) without; this host's SNAT address is
//! 203.0.113.20. A VLAN network v100 (segmentation id 100) has VM d (198.51.100.5, port 3).

mod support;

use controller::apps::nat::CHASSIS_SNAT;
use controller::apps::nat::punt::NatPunt;
use controller::apps::{Desired, Host};
use controller::apps::{Owner, Punt};
use controller::view::{View, record};
use fake_switch::{Outcome, Switch};
use model::{
    ExternalGateway, FloatingIp, MacAddr, Network, NetworkType, Port, Router, RouterInterface,
    Subnet, fixtures, owner,
};
use openflow::oxm::{Field, Match, OxmField};
use openflow::packet::PacketIn;
use packet::arp::{self, ArpRepr, Operation};
use packet::ethernet::{EtherType, EthernetRepr, Frame, VlanTag};
use packet::ipv4::Ipv4Repr;
use packet::udp::UdpRepr;
use packet::{EthernetAddress, IpProtocol, ipv4, udp};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

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

fn mac(n: u8) -> [u8; 6] {
    [0xfa, 0x16, 0x3e, 0, 0, n]
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
    }
}

struct Cloud {
    view: View,
    host: Host,
    sw: Switch,
    punt: Punt,
    /// The owners the handlers asked to recompile (after learning a next hop).
    recompile: Vec<Owner>,
}

impl Cloud {
    fn new() -> Cloud {
        let mut view = View::new("h");
        let snat = Port {
            device_owner: CHASSIS_SNAT.into(),
            device_id: "h".into(),
            ..port("snat-h", "ext", 20, "203.0.113.20")
        };
        let fip_port = Port {
            device_owner: owner::FLOATING_IP.into(),
            binding_host_id: String::new(),
            ..port("fip-port", "ext", 30, "203.0.113.30")
        };
        let rport = Port {
            device_owner: owner::ROUTER_INTERFACE.into(),
            device_id: "r".into(),
            binding_host_id: String::new(),
            ..port("r1", "net1", 201, "10.0.1.1")
        };
        let records = vec![
            record(&network("net1", 1, NetworkType::Geneve, 101), 1),
            record(&network("ext", 10, NetworkType::Flat, 0), 1),
            record(&network("v100", 3, NetworkType::Vlan, 100), 1),
            record(&ext_subnet(), 1),
            record(&port("a", "net1", 5, "10.0.1.5"), 1),
            record(&port("b", "net1", 6, "10.0.1.6"), 1),
            record(&port("d", "v100", 8, "198.51.100.5"), 1),
            record(&rport, 1),
            record(&snat, 1),
            record(&fip_port, 1),
            record(&router(), 1),
            record(&fip(), 1),
        ];
        view.load(&nbdb::Snapshot {
            revision: 1,
            records,
        });
        let host = Host {
            ofports: [
                ("a".to_string(), 1),
                ("b".to_string(), 2),
                ("d".to_string(), 3),
            ]
            .into_iter()
            .collect(),
            tunnels: [("geneve".to_string(), 99)].into(),
            provider_ports: [("physnet1".to_string(), PATCH)].into(),
            neighbours: [(
                ("ext".to_string(), "203.0.113.1".parse().unwrap()),
                OUTSIDE_MAC,
            )]
            .into(),
            ..Host::default()
        };
        let mut c = Cloud {
            view,
            host,
            sw: Switch::new(),
            punt: Punt::default(),
            recompile: Vec::new(),
        };
        c.install();
        c
    }

    fn install(&mut self) {
        self.sw = Switch::new();
        let d = Desired::full(&self.view, &self.host);
        for (key, body) in d.table().iter() {
            controller::apps::check(&controller::apps::Flow {
                key: key.clone(),
                body: body.clone(),
            })
            .unwrap();
        }
        support::install(&mut self.sw, &d);
    }

    /// Processes `frame` from `port`, handing packet-ins to the controller.
    fn send(&mut self, port: u32, frame: &[u8]) -> Outcome {
        let out = self.sw.process(port, frame);
        for pi in &out.to_controller {
            let pin = PacketIn {
                buffer_id: u32::MAX,
                total_len: pi.frame.len() as u16,
                reason: pi.reason,
                table_id: pi.table,
                cookie: pi.cookie,
                match_: Match::new()
                    .in_port(pi.packet.in_port)
                    .metadata(pi.packet.metadata)
                    .with(OxmField::new(Field::Reg(6), u128::from(pi.packet.regs[6]))),
                data: pi.frame.clone(),
            };
            let punted = self
                .punt
                .handle(&self.view, &mut self.host, Instant::now(), &pin);
            self.recompile.extend(punted.recompile);
        }
        out
    }
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
    let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let payload = UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload: b"hello",
    }
    .build(&s, &d);
    let ip = Ipv4Repr::new(
        src.parse().unwrap(),
        dst.parse().unwrap(),
        IpProtocol::Udp,
        payload.len(),
    );
    eth(from, to, None, EtherType::Ipv4, &ip.build(&payload))
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
    let mut c = Cloud::new();
    let out = c.send(
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
    let back = c.send(
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
    let stray = c.send(
        PATCH,
        &udp_frame("198.18.0.9", "203.0.113.20", 53, 9999, OUTSIDE_MAC, mac(20)),
    );
    assert!(stray.outputs.is_empty(), "{stray}");
}

#[test]
fn a_floating_ip_is_dnated_to_its_vm_and_the_vm_leaves_by_it() {
    let mut c = Cloud::new();
    let inbound = c.send(
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
    let reply = c.send(
        1,
        &udp_frame("10.0.1.5", "198.18.0.9", 80, 5555, mac(5), mac(201)),
    );
    assert_eq!(reply.ports(), vec![PATCH], "{reply}");
    let (e, ip, sport, _) = parsed(&reply.outputs[0].frame);
    assert_eq!(ip.src_addr, Ipv4Addr::new(203, 0, 113, 30));
    assert_eq!(sport, 80);
    assert_eq!(e.src_addr.0, mac(30), "the floating IP's MAC");
    // East-west is untouched: a to b stays routed inside (no NAT, not out the patch).
    let inside = c.send(1, &udp_frame("10.0.1.5", "10.0.1.6", 1, 2, mac(5), mac(6)));
    assert_eq!(inside.ports(), vec![2], "{inside}");
}

#[test]
fn arp_for_local_addresses_is_answered_on_the_external_network_and_replies_teach_the_next_hop() {
    let mut c = Cloud::new();
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
        let out = c.send(PATCH, &ask(ip));
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
        let out = c.send(PATCH, &ask(ip));
        assert!(!out.ports().contains(&PATCH), "{ip}: {out}");
    }
    // A reply from the next hop is learnt.
    c.host.neighbours.clear();
    c.punt = Punt::default();
    c.install();
    // Unknown, the controller asks for it from this host's SNAT address, and announces
    // the SNAT address (gratuitous ARP) once.
    let asks = c.punt.tick(&c.view, &c.host, Instant::now()).packets;
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
    let reply = ArpRepr {
        operation: Operation::Reply,
        source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 9]),
        source_protocol_addr: "203.0.113.1".parse().unwrap(),
        target_hardware_addr: EthernetAddress(mac(20)),
        target_protocol_addr: "203.0.113.20".parse().unwrap(),
    };
    let mut p = [0u8; 28];
    reply.emit(&mut arp::Packet::new_unchecked(&mut p[..]));
    c.send(
        PATCH,
        &eth([2, 0, 0, 0, 0, 9], mac(20), None, EtherType::Arp, &p),
    );
    assert!(!c.recompile.is_empty(), "what was learnt is compiled in");
    assert_eq!(
        c.host
            .neighbours
            .get(&("ext".to_string(), "203.0.113.1".parse().unwrap())),
        Some(&[2, 0, 0, 0, 0, 9])
    );
    // Once known, it is not asked for again; the SNAT address was announced once.
    // (The floating IP, whose way out is known now, is announced for the first time.)
    let later = c.punt.tick(&c.view, &c.host, Instant::now()).packets;
    assert!(
        later
            .iter()
            .all(|p| target(p) != [203, 0, 113, 1] && target(p) != [203, 0, 113, 20]),
        "{later:?}"
    );
}

#[test]
fn a_vlan_network_is_tagged_towards_the_physical_network_and_untagged_inside() {
    let mut c = Cloud::new();
    let out = c.send(
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
    let inbound = c.send(PATCH, &reply(100));
    assert_eq!(inbound.ports(), vec![3], "{inbound}");
    let f = Frame::new_checked(&inbound.outputs[0].frame[..]).unwrap();
    assert_eq!(f.vlan(), None);
    assert!(c.send(PATCH, &reply(101)).outputs.is_empty());
}

/// Every north-south flow and group, committed to a real OVS, reads back equal (so a
/// restarted controller changes nothing), and OVS accepts the conntrack NAT actions.
#[tokio::test]
async fn the_north_south_pipeline_commits_to_real_ovs_and_reads_back_equal() {
    if !testbed::require_root("the_north_south_pipeline_commits_to_real_ovs_and_reads_back_equal") {
        return;
    }
    let c = Cloud::new();
    let d = Desired::full(&c.view, &c.host);
    let ovs = testbed::Ovs::start().expect("ovs");
    ovs.add_bridge("br-int").expect("bridge");
    let mut s = controller::switch::Session::connect_unix(&ovs.mgmt_sock("br-int"))
        .await
        .expect("session");
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
    let mut c = Cloud::new();
    c.host.neighbours.clear();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
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
        c.punt.handle(&c.view, &mut c.host, Instant::now(), &pin);
    }
    // 203.0.113.99 is nobody's next hop: only the router's next hop can ever be learnt (a
    // mangled byte may well turn a frame into its valid reply).
    let hop: (String, IpAddr) = ("ext".into(), "203.0.113.1".parse().unwrap());
    assert!(
        c.host.neighbours.keys().all(|k| *k == hop),
        "{:?}",
        c.host.neighbours
    );
    assert!(c.punt.get::<NatPunt>().expect("NAT handler").ignored > 4000);
}
