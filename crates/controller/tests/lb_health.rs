//! Health checks of balancer members on the fake switch (issue 23): the host a member's
//! port is bound to probes it from the VIP (TCP, HTTP, PING, UDP-CONNECT), the member's
//! answers are punted from its port-security table, and the conclusions come out as
//! member health to write; a member marked ERROR in the store leaves the select group. An
//! IPv6 VIP's members are checked in IPv6 (and resolve the VIP by the ND responder).

mod support;

use controller::apps::Handler;
use controller::apps::Settings;
use controller::apps::lb::health::{Checker, MemberHealth};
use model::lb::{HealthMonitor, Listener, LoadBalancer, Member, Pool, Protocol, Status};
use model::{Network, Port, fixtures};
use packet::ethernet::{EtherType, EthernetAddress, EthernetRepr, Frame};
use packet::icmpv4::{self, Icmpv4Repr};
use packet::icmpv6::{self, Icmpv6Repr};
use packet::ip::IpProtocol;
use packet::ipv4::{self, Ipv4Repr};
use packet::ipv6::{self, Ipv6Repr};
use packet::tcp::{self, Flags, TcpRepr};
use packet::udp::{self, UdpRepr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use support::sim::Sim;
use support::{mac, open_port, put_open_group};

const CLIENT: u32 = 1;
const LOCAL_MEMBER: u32 = 2;
const TUNNEL: u32 = 100;
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const M1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);

fn status(op: &str) -> Status {
    Status {
        provisioning_status: "ACTIVE".into(),
        operating_status: op.into(),
    }
}

fn member(id: &str, last: u8, op: &str) -> Member {
    Member {
        meta: fixtures::meta(id),
        status: status(op),
        admin_state_up: true,
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
        protocol_port: 80,
        weight: 1,
        backup: false,
        subnet_id: None,
        monitor_address: None,
        monitor_port: None,
    }
}

fn monitor(kind: &str, rise: u8, fall: u8) -> HealthMonitor {
    let http = kind == "HTTP";
    HealthMonitor {
        meta: fixtures::meta("hm"),
        status: status("ONLINE"),
        admin_state_up: true,
        kind: kind.into(),
        delay: 2,
        timeout: 1,
        max_retries: rise,
        max_retries_down: fall,
        http_method: http.then(|| "GET".into()),
        url_path: http.then(|| "/healthz".into()),
        expected_codes: http.then(|| "200-204".into()),
    }
}

/// A balancer on 10.0.0.100:80 over m1 (.11, here) and m2 (.12, on host o), checked by
/// `hm`, its members' statuses `ops`.
fn balancer(proto: Protocol, hm: HealthMonitor, ops: [&str; 2]) -> LoadBalancer {
    let mut lb = LoadBalancer {
        meta: fixtures::meta("lb"),
        status: status("ONLINE"),
        admin_state_up: true,
        provider: "dragonflow".into(),
        vip_address: IpAddr::V4(VIP),
        vip_port_id: "vip".into(),
        vip_subnet_id: "s".into(),
        vip_network_id: "n".into(),
        vip_mac: fixtures::mac(100),
        vip_port_owned: true,
        unique_key: 7,
        listeners: vec![Listener {
            meta: fixtures::meta("l"),
            status: status("ONLINE"),
            admin_state_up: true,
            protocol: proto,
            protocol_port: 80,
            connection_limit: -1,
            allowed_cidrs: vec![],
            default_pool_id: Some("pool".into()),
        }],
        pools: vec![Pool {
            meta: fixtures::meta("pool"),
            status: status("ONLINE"),
            admin_state_up: true,
            protocol: proto,
            lb_algorithm: model::lb::Algorithm::SourceIpPort,
            session_persistence: None,
            listener_id: Some("l".into()),
            members: vec![member("m1", 11, ops[0]), member("m2", 12, ops[1])],
            healthmonitor: Some(hm),
        }],
        failovers: 0,
        fip_holder: None,
    };
    lb.roll_up();
    lb
}

fn world(lb: &LoadBalancer) -> Sim {
    let mut sim = Sim::with("h", TUNNEL, &[], &Settings::default());
    sim.chassis("o", "192.0.2.2");
    put_open_group(&mut sim);
    sim.put(&Network {
        subnets: vec!["s".into()],
        ..fixtures::network("n", 1)
    });
    sim.put(&fixtures::subnet("s", "n", "10.0.0.0/24"));
    sim.put(&open_port("c", 5, "h"));
    sim.put(&open_port("m1", 11, "h"));
    sim.put(&open_port("m2", 12, "o"));
    sim.put(&Port {
        fixed_ips: vec![fixtures::fixed_ip("s", "10.0.0.100")],
        device_owner: "Octavia".into(),
        ..fixtures::port("vip", "n", 100, "")
    });
    sim.plug("c", CLIENT);
    sim.plug("m1", LOCAL_MEMBER);
    sim.put(lb);
    sim
}

/// The probes that left over `d`: (OpenFlow port, frame), and the health concluded.
fn run(sim: &mut Sim, d: Duration) -> (Vec<(u32, Vec<u8>)>, Vec<MemberHealth>) {
    let punted = sim.wait(d);
    let health = punted.iter().flat_map(|p| p.health.clone()).collect();
    let frames = punted
        .iter()
        .flat_map(|p| &p.packets)
        .map(|po| {
            let port = match po.actions.first() {
                Some(openflow::action::Action::Output { port, .. }) => *port,
                other => panic!("probe sent with {other:?}"),
            };
            (port, po.data.clone())
        })
        .collect();
    (frames, health)
}

/// The IPv4 packet of a frame, parsed: (header, L4 bytes).
fn ip_of(frame: &[u8]) -> (Ipv4Repr, Vec<u8>) {
    let eth = Frame::new_checked(frame).unwrap();
    let ip = ipv4::Packet::new_checked(eth.payload()).unwrap();
    (Ipv4Repr::parse(&ip).unwrap(), ip.payload().to_vec())
}

fn tcp_of(frame: &[u8]) -> (u16, u16, u32, u32, u8, Vec<u8>) {
    let (ip, l4) = ip_of(frame);
    let p = tcp::Packet::new_checked(&l4[..]).unwrap();
    let s = TcpRepr::parse(&p, &IpAddr::V4(ip.src_addr), &IpAddr::V4(ip.dst_addr)).unwrap();
    (
        s.src_port,
        s.dst_port,
        s.seq_number,
        s.ack_number,
        s.flags.0,
        s.payload.to_vec(),
    )
}

/// A frame from m1 to the VIP carrying `l4`.
fn from_m1(protocol: IpProtocol, l4: &[u8]) -> Vec<u8> {
    let ip = Ipv4Repr::new(M1, VIP, protocol, l4.len()).build(l4);
    EthernetRepr {
        src_addr: EthernetAddress(mac(11)),
        dst_addr: EthernetAddress(fixtures::mac(100).0),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&ip)
}

fn m1_tcp(dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let seg = TcpRepr {
        src_port: 80,
        dst_port: dport,
        seq_number: seq,
        ack_number: ack,
        flags: Flags(flags),
        window_len: 1000,
        urgent_at: 0,
        payload,
    }
    .build(&IpAddr::V4(M1), &IpAddr::V4(VIP));
    from_m1(IpProtocol::Tcp, &seg)
}

fn up(up: bool) -> Vec<MemberHealth> {
    vec![MemberHealth {
        loadbalancer: "lb".into(),
        member: "m1".into(),
        up,
    }]
}

/// The first probe of a fresh world: to m1's port only (m2 is o's to check).
fn first_probe(sim: &mut Sim) -> Vec<u8> {
    let (frames, health) = run(sim, Duration::from_millis(100));
    assert!(health.is_empty());
    assert_eq!(frames.len(), 1, "one probe, for m1: {frames:?}");
    assert_eq!(frames[0].0, LOCAL_MEMBER);
    let (ip, _) = ip_of(&frames[0].1);
    assert_eq!((ip.src_addr, ip.dst_addr), (VIP, M1), "from the VIP");
    frames[0].1.clone()
}

#[test]
fn tcp_syn_ack_is_up_and_the_connection_is_reset() {
    let lb = balancer(Protocol::Tcp, monitor("TCP", 1, 2), ["NO_MONITOR"; 2]);
    let mut sim = world(&lb);
    let syn = first_probe(&mut sim);
    let (sport, dport, isn, _, flags, _) = tcp_of(&syn);
    assert_eq!(dport, 80);
    assert_eq!(flags, Flags::SYN);
    // m1's kernel answers: the switch punts it from m1's port.
    let sent = sim.send(
        LOCAL_MEMBER,
        &m1_tcp(sport, 5000, isn + 1, Flags::SYN | Flags::ACK, b""),
    );
    let health: Vec<_> = sent.punted.iter().flat_map(|p| p.health.clone()).collect();
    assert_eq!(health, up(true));
    let frames = sent.frames();
    assert_eq!(frames.len(), 1, "the RST, nothing else: {frames:?}");
    assert_eq!(frames[0].0, LOCAL_MEMBER);
    let (_, _, seq, _, flags, _) = tcp_of(&frames[0].1);
    assert_eq!((seq, flags), (isn + 1, Flags::RST));
    // Nothing more until the delay is over.
    let (frames, _) = run(&mut sim, Duration::from_millis(1800));
    assert!(frames.is_empty(), "{frames:?}");
    let (frames, _) = run(&mut sim, Duration::from_millis(200));
    assert_eq!(frames.len(), 1);
}

#[test]
fn resets_take_a_member_down_after_max_retries_down() {
    let lb = balancer(Protocol::Tcp, monitor("TCP", 1, 2), ["ONLINE"; 2]);
    let mut sim = world(&lb);
    let mut health = Vec::new();
    for round in 0..2 {
        let (frames, h) = run(&mut sim, Duration::from_secs(2));
        health.extend(h);
        assert_eq!(frames.len(), 1, "round {round}: {frames:?}");
        let (sport, ..) = tcp_of(&frames[0].1);
        let sent = sim.send(
            LOCAL_MEMBER,
            &m1_tcp(sport, 0, 0, Flags::RST | Flags::ACK, b""),
        );
        health.extend(sent.punted.iter().flat_map(|p| p.health.clone()));
        if round == 0 {
            assert!(health.is_empty(), "one failure of two");
        }
    }
    assert_eq!(health, up(false));
}

#[test]
fn silence_takes_a_member_down_too() {
    let lb = balancer(Protocol::Tcp, monitor("TCP", 1, 2), ["ONLINE"; 2]);
    let mut sim = world(&lb);
    // Two probes unanswered, each failing at its 1 s timeout.
    let (frames, health) = run(&mut sim, Duration::from_millis(3200));
    assert_eq!(frames.len(), 2);
    assert_eq!(health, up(false));
}

#[test]
fn an_error_member_leaves_the_select_group() {
    let lb = balancer(Protocol::Tcp, monitor("TCP", 1, 2), ["ERROR", "ONLINE"]);
    let mut sim = world(&lb);
    assert_eq!(lb.status.operating_status, "DEGRADED");
    for sport in 2000..2032u16 {
        let seg = TcpRepr {
            src_port: sport,
            dst_port: 80,
            seq_number: 1,
            ack_number: 0,
            flags: Flags(Flags::SYN),
            window_len: 1000,
            urgent_at: 0,
            payload: &[],
        }
        .build(&IpAddr::V4(CLIENT_IP), &IpAddr::V4(VIP));
        let ip = Ipv4Repr::new(CLIENT_IP, VIP, IpProtocol::Tcp, seg.len()).build(&seg);
        let f = EthernetRepr {
            src_addr: EthernetAddress(mac(5)),
            dst_addr: EthernetAddress(fixtures::mac(100).0),
            vlan: None,
            ethertype: EtherType::Ipv4,
        }
        .build(&ip);
        let out = sim.send(CLIENT, &f).frames();
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].0, TUNNEL, "only m2 takes connections");
    }
}

#[test]
fn http_gets_the_path_and_checks_the_code() {
    for (answer, ok) in [
        (&b"HTTP/1.0 204 No Content\r\n\r\n"[..], true),
        (b"HTTP/1.0 500 Oops\r\n", false),
    ] {
        let lb = balancer(Protocol::Tcp, monitor("HTTP", 1, 1), ["NO_MONITOR"; 2]);
        let mut sim = world(&lb);
        let syn = first_probe(&mut sim);
        let (sport, _, isn, ..) = tcp_of(&syn);
        let sent = sim.send(
            LOCAL_MEMBER,
            &m1_tcp(sport, 9000, isn + 1, Flags::SYN | Flags::ACK, b""),
        );
        let frames = sent.frames();
        assert_eq!(frames.len(), 1, "{frames:?}");
        let (_, dport, seq, ack, flags, payload) = tcp_of(&frames[0].1);
        assert_eq!((dport, seq, ack), (80, isn + 1, 9001));
        assert_eq!(flags, Flags::ACK | Flags::PSH);
        let req = String::from_utf8(payload.clone()).unwrap();
        assert!(req.starts_with("GET /healthz HTTP/1.0\r\n"), "{req}");
        assert!(
            sent.punted.iter().all(|p| p.health.is_empty()),
            "not concluded yet"
        );
        let sent = sim.send(
            LOCAL_MEMBER,
            &m1_tcp(
                sport,
                9001,
                seq + payload.len() as u32,
                Flags::ACK | Flags::PSH,
                answer,
            ),
        );
        let health: Vec<_> = sent.punted.iter().flat_map(|p| p.health.clone()).collect();
        assert_eq!(health, up(ok), "{}", String::from_utf8_lossy(answer));
        let frames = sent.frames();
        assert_eq!(frames.len(), 1);
        let (.., flags, _) = tcp_of(&frames[0].1);
        assert_eq!(flags, Flags::RST);
    }
}

#[test]
fn ping_is_answered_by_an_echo_reply() {
    let lb = balancer(Protocol::Tcp, monitor("PING", 1, 1), ["NO_MONITOR"; 2]);
    let mut sim = world(&lb);
    let probe = first_probe(&mut sim);
    let eth = Frame::new_checked(&probe[..]).unwrap();
    let reply = icmpv4::echo_reply(eth.payload()).unwrap();
    let frame = EthernetRepr {
        src_addr: EthernetAddress(mac(11)),
        dst_addr: EthernetAddress(fixtures::mac(100).0),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&reply);
    let sent = sim.send(LOCAL_MEMBER, &frame);
    let health: Vec<_> = sent.punted.iter().flat_map(|p| p.health.clone()).collect();
    assert_eq!(health, up(true));
    // An echo reply the VM makes up (another sequence number) concludes nothing.
    let mut sim = world(&lb);
    first_probe(&mut sim);
    let fake = Icmpv4Repr::EchoReply {
        ident: 0xdf1b,
        seq_no: 999,
        data: b"x",
    }
    .build();
    let sent = sim.send(LOCAL_MEMBER, &from_m1(IpProtocol::Icmp, &fake));
    assert!(sent.punted.iter().all(|p| p.health.is_empty()));
}

#[test]
fn udp_connect_is_down_on_port_unreachable_and_up_on_silence() {
    let lb = balancer(
        Protocol::Udp,
        monitor("UDP-CONNECT", 1, 1),
        ["NO_MONITOR"; 2],
    );
    let mut sim = world(&lb);
    let probe = first_probe(&mut sim);
    let (ip, l4) = ip_of(&probe);
    assert_eq!(ip.protocol, IpProtocol::Udp);
    let d = UdpRepr::parse(
        &udp::Packet::new_checked(&l4[..]).unwrap(),
        &IpAddr::V4(VIP),
        &IpAddr::V4(M1),
    )
    .unwrap();
    assert_eq!(d.dst_port, 80);
    let eth = Frame::new_checked(&probe[..]).unwrap();
    let unreach = icmpv4::dst_unreachable(eth.payload(), icmpv4::unreachable::PORT, 0, M1).unwrap();
    let frame = EthernetRepr {
        src_addr: EthernetAddress(mac(11)),
        dst_addr: EthernetAddress(fixtures::mac(100).0),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&unreach);
    let sent = sim.send(LOCAL_MEMBER, &frame);
    let health: Vec<_> = sent.punted.iter().flat_map(|p| p.health.clone()).collect();
    assert_eq!(health, up(false));
    // Nobody said otherwise: silence until the timeout is up.
    let mut sim = world(&lb);
    first_probe(&mut sim);
    let (_, health) = run(&mut sim, Duration::from_millis(1100));
    assert_eq!(health, up(true));
}

#[test]
fn a_member_flooding_the_vip_is_limited() {
    let lb = balancer(Protocol::Tcp, monitor("TCP", 1, 2), ["ONLINE"; 2]);
    let mut sim = world(&lb);
    first_probe(&mut sim);
    let mut punted = 0;
    for i in 0..500u32 {
        let sent = sim.send(
            LOCAL_MEMBER,
            &m1_tcp(0xf123, i, 0, Flags::SYN | Flags::ACK, b""),
        );
        punted += sent.punted.len();
        assert!(
            sent.punted
                .iter()
                .all(|p| p.health.is_empty() && p.packets.is_empty())
        );
    }
    assert_eq!(punted, 500, "the answers are punted");
    let counters = sim.handler::<Checker>().counters();
    let dropped = counters
        .iter()
        .find(|(n, _)| *n == "health_dropped")
        .unwrap()
        .1;
    assert!(dropped >= 400, "past 50 a second, dropped: {counters:?}");
    // The member's own connections to the VIP (ephemeral source port) are not punted.
    let sent = sim.send(
        LOCAL_MEMBER,
        &m1_tcp(40000, 1, 0, Flags::SYN | Flags::ACK, b""),
    );
    assert!(sent.punted.is_empty());
}

const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);
const M16: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 11);

/// The world of an IPv6 VIP (fd00::100) over m1 (fd00::b, here) and m2 (fd00::c, on o):
/// the same ports with IPv6 addresses in subnet s6.
fn world6(kind: &str, proto: Protocol) -> Sim {
    let mut lb = balancer(proto, monitor(kind, 1, 1), ["NO_MONITOR"; 2]);
    lb.vip_address = IpAddr::V6(VIP6);
    lb.vip_subnet_id = "s6".into();
    for (m, last) in lb.pools[0].members.iter_mut().zip([11u16, 12]) {
        m.address = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, last));
    }
    let mut sim = world(&lb);
    sim.put(&Network {
        subnets: vec!["s".into(), "s6".into()],
        ..fixtures::network("n", 1)
    });
    sim.put(&fixtures::subnet("s6", "n", "fd00::/64"));
    for (id, n, host) in [("c", 5u8, "h"), ("m1", 11, "h"), ("m2", 12, "o")] {
        let mut p = open_port(id, n, host);
        let six = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, n.into());
        p.fixed_ips.push(fixtures::fixed_ip("s6", &six.to_string()));
        sim.put(&p);
    }
    sim.put(&Port {
        fixed_ips: vec![fixtures::fixed_ip("s6", &VIP6.to_string())],
        device_owner: "Octavia".into(),
        ..fixtures::port("vip", "n", 100, "")
    });
    sim.put(&lb);
    sim
}

/// An IPv6 packet from m1 to the VIP in a frame.
fn from_m16(ip: &[u8]) -> Vec<u8> {
    EthernetRepr {
        src_addr: EthernetAddress(mac(11)),
        dst_addr: EthernetAddress(fixtures::mac(100).0),
        vlan: None,
        ethertype: EtherType::Ipv6,
    }
    .build(ip)
}

/// The one probe of a fresh IPv6 world, to m1's port from the VIP: its IPv6 packet.
fn first_probe6(sim: &mut Sim) -> Vec<u8> {
    let (frames, _) = run(sim, Duration::from_millis(100));
    assert_eq!(frames.len(), 1, "one probe, for m1: {frames:?}");
    assert_eq!(frames[0].0, LOCAL_MEMBER);
    let eth = Frame::new_checked(&frames[0].1[..]).unwrap();
    assert_eq!(eth.src_addr(), EthernetAddress(fixtures::mac(100).0));
    let ip = ipv6::Packet::new_checked(eth.payload()).unwrap();
    assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP6, M16), "from the VIP");
    ip.packet().to_vec()
}

fn health_of(sent: &support::sim::Sent) -> Vec<MemberHealth> {
    sent.punted.iter().flat_map(|p| p.health.clone()).collect()
}

/// m1's TCP segment to the VIP from port 80.
fn m16_tcp(dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let seg = TcpRepr {
        src_port: 80,
        dst_port: dport,
        seq_number: seq,
        ack_number: ack,
        flags: Flags(flags),
        window_len: 1000,
        urgent_at: 0,
        payload,
    }
    .build(&IpAddr::V6(M16), &IpAddr::V6(VIP6));
    from_m16(&Ipv6Repr::new(M16, VIP6, IpProtocol::Tcp, seg.len(), 64).build(&seg))
}

#[test]
fn an_ipv6_vip_checks_its_members_in_ipv6() {
    // m1 resolves the VIP by neighbour discovery on its own host, or it could never
    // answer: the switch answers its solicitation with the VIP's MAC.
    let mut sim = world6("TCP", Protocol::Tcp);
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x100);
    let ns = icmpv6::build_frame(
        EthernetAddress(mac(11)),
        EthernetAddress::ipv6_multicast(&group),
        None,
        &Ipv6Repr::new(M16, group, IpProtocol::Icmpv6, 0, 255),
        &Icmpv6Repr::NeighborSolicit {
            target_addr: VIP6,
            lladdr: Some(EthernetAddress(mac(11))),
        },
    );
    let na = sim.send(LOCAL_MEMBER, &ns).frames();
    assert_eq!(na.len(), 1, "{na:?}");
    assert_eq!(na[0].0, LOCAL_MEMBER);
    let parsed = icmpv6::parse_frame(&na[0].1).unwrap();
    assert!(
        matches!(parsed.icmpv6, Icmpv6Repr::NeighborAdvert { target_addr, lladdr, .. }
            if target_addr == VIP6 && lladdr == Some(EthernetAddress(fixtures::mac(100).0))),
        "{parsed:?}"
    );

    // TCP: a SYN from the VIP; m1's SYN-ACK is up, and the connection is reset.
    let syn = first_probe6(&mut sim);
    let seg = TcpRepr::parse(
        &tcp::Packet::new_checked(&syn[40..]).unwrap(),
        &IpAddr::V6(VIP6),
        &IpAddr::V6(M16),
    )
    .unwrap();
    assert_eq!((seg.dst_port, seg.flags.0), (80, Flags::SYN));
    let (sport, isn) = (seg.src_port, seg.seq_number);
    let sent = sim.send(
        LOCAL_MEMBER,
        &m16_tcp(sport, 5000, isn + 1, Flags::SYN | Flags::ACK, b""),
    );
    assert_eq!(health_of(&sent), up(true));
    assert_eq!(sent.frames().len(), 1, "the RST");

    // HTTP: the GET on the SYN-ACK, its status line read.
    let mut sim = world6("HTTP", Protocol::Tcp);
    let syn = first_probe6(&mut sim);
    let sport = u16::from_be_bytes([syn[40], syn[41]]);
    let isn = u32::from_be_bytes([syn[44], syn[45], syn[46], syn[47]]);
    let sent = sim.send(
        LOCAL_MEMBER,
        &m16_tcp(sport, 9000, isn + 1, Flags::SYN | Flags::ACK, b""),
    );
    let get = sent.frames();
    assert_eq!(get.len(), 1, "{get:?}");
    let req = String::from_utf8_lossy(&get[0].1[14 + 40 + 20..]).to_string();
    assert!(
        req.starts_with("GET /healthz HTTP/1.0\r\nHost: [fd00::b]\r\n"),
        "{req}"
    );
    let sent = sim.send(
        LOCAL_MEMBER,
        &m16_tcp(
            sport,
            9001,
            isn + 1 + req.len() as u32,
            Flags::ACK | Flags::PSH,
            b"HTTP/1.0 200 OK\r\n\r\n",
        ),
    );
    assert_eq!(health_of(&sent), up(true));

    // PING: an ICMPv6 echo request; m1's echo reply is up.
    let mut sim = world6("PING", Protocol::Tcp);
    let request = first_probe6(&mut sim);
    let sent = sim.send(
        LOCAL_MEMBER,
        &from_m16(&icmpv6::echo_reply(&request).unwrap()),
    );
    assert_eq!(health_of(&sent), up(true));

    // UDP-CONNECT: m1's ICMPv6 port unreachable is down.
    let mut sim = world6("UDP-CONNECT", Protocol::Udp);
    let datagram = first_probe6(&mut sim);
    assert_eq!(datagram[6], 17, "UDP");
    let unreach = icmpv6::dst_unreachable(&datagram, icmpv6::unreachable::PORT, M16).unwrap();
    let sent = sim.send(LOCAL_MEMBER, &from_m16(&unreach));
    assert_eq!(health_of(&sent), up(false));
    // Nobody said otherwise: silence until the timeout is up.
    let mut sim = world6("UDP-CONNECT", Protocol::Udp);
    first_probe6(&mut sim);
    let (_, health) = run(&mut sim, Duration::from_millis(1100));
    assert_eq!(health, up(true));
}

#[test]
fn an_answer_goes_to_the_check_it_answers_when_one_port_has_several() {
    // m1 in a UDP pool checked by UDP-CONNECT (first), and as m1b in a TCP pool checked
    // by PING: its echo reply is the PING check's, whichever target is looked at first.
    let mut lb = balancer(
        Protocol::Udp,
        monitor("UDP-CONNECT", 1, 1),
        ["NO_MONITOR"; 2],
    );
    let mut l2 = lb.listeners[0].clone();
    l2.meta = fixtures::meta("l2");
    l2.protocol = Protocol::Tcp;
    l2.default_pool_id = Some("pool2".into());
    let mut pool = lb.pools[0].clone();
    pool.meta = fixtures::meta("pool2");
    pool.protocol = Protocol::Tcp;
    pool.listener_id = Some("l2".into());
    pool.members = vec![member("m1b", 11, "NO_MONITOR")];
    pool.healthmonitor = Some(HealthMonitor {
        meta: fixtures::meta("hm2"),
        ..monitor("PING", 1, 1)
    });
    lb.listeners.push(l2);
    lb.pools.push(pool);
    let mut sim = world(&lb);
    let (frames, _) = run(&mut sim, Duration::from_millis(100));
    assert_eq!(
        frames.len(),
        2,
        "a datagram and an echo request: {frames:?}"
    );
    let echo = frames
        .iter()
        .find(|(_, f)| ip_of(f).0.protocol == IpProtocol::Icmp)
        .expect("the echo request");
    let eth = Frame::new_checked(&echo.1[..]).unwrap();
    let reply = EthernetRepr {
        src_addr: EthernetAddress(mac(11)),
        dst_addr: EthernetAddress(fixtures::mac(100).0),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&icmpv4::echo_reply(eth.payload()).unwrap());
    let sent = sim.send(LOCAL_MEMBER, &reply);
    let health: Vec<_> = sent.punted.iter().flat_map(|p| p.health.clone()).collect();
    assert_eq!(
        health,
        [MemberHealth {
            loadbalancer: "lb".into(),
            member: "m1b".into(),
            up: true,
        }]
    );
}

/// A member on another network, behind a router of the VIP's network, is checked by its
/// own host, which has no port on the VIP's network (it follows it through the router):
/// the probe comes from the VIP as the router delivers it (from its interface's MAC on the
/// member's network), and the member's answer to its gateway is punted and concludes.
#[test]
fn a_member_behind_a_router_is_checked_from_its_own_host() {
    use model::{MacAddr, Router, RouterInterface, owner};
    const ROUTED: u32 = 3;
    let m3 = Ipv4Addr::new(10, 0, 2, 13);
    let mut lb = balancer(Protocol::Tcp, monitor("TCP", 1, 2), ["NO_MONITOR"; 2]);
    lb.pools[0].members[0].address = IpAddr::V4(m3);
    lb.pools[0].members.truncate(1);
    let mut sim = Sim::with("h", TUNNEL, &[], &Settings::default());
    sim.chassis("o", "192.0.2.2");
    put_open_group(&mut sim);
    for (n, s, key, cidr) in [("n", "s", 1, "10.0.0.0/24"), ("n2", "s2", 2, "10.0.2.0/24")] {
        sim.put(&Network {
            subnets: vec![s.into()],
            ..fixtures::network(n, key)
        });
        sim.put(&fixtures::subnet(s, n, cidr));
    }
    sim.put(&Port {
        fixed_ips: vec![fixtures::fixed_ip("s", "10.0.0.100")],
        device_owner: "Octavia".into(),
        ..fixtures::port("vip", "n", 100, "")
    });
    sim.put(&open_port("c", 5, "o"));
    let iface =
        |port: &str, net: &str, subnet: &str, n: u8, ip: &str, cidr: &str| RouterInterface {
            port_id: port.into(),
            subnet_id: subnet.into(),
            network_id: net.into(),
            ip_address: ip.parse().unwrap(),
            cidr: cidr.parse().unwrap(),
            mac_address: MacAddr(mac(n)),
        };
    let interfaces = vec![
        iface("r1", "n", "s", 201, "10.0.0.1", "10.0.0.0/24"),
        iface("r2", "n2", "s2", 202, "10.0.2.1", "10.0.2.0/24"),
    ];
    for i in &interfaces {
        sim.put(&Port {
            fixed_ips: vec![fixtures::fixed_ip(&i.subnet_id, &i.ip_address.to_string())],
            device_owner: owner::ROUTER_INTERFACE.into(),
            device_id: "r".into(),
            ..fixtures::port(&i.port_id, &i.network_id, u32::from(i.mac_address.0[5]), "")
        });
    }
    sim.put(&Router {
        interfaces,
        ..fixtures::router("r", 9)
    });
    sim.put(&lb);
    // The member's port comes last, as a VM booted after its balancer.
    sim.put(&Port {
        fixed_ips: vec![fixtures::fixed_ip("s2", "10.0.2.13")],
        security_groups: vec!["open".into()],
        ..fixtures::port("m3", "n2", 13, "h")
    });
    sim.plug("m3", ROUTED);
    let (frames, health) = run(&mut sim, Duration::from_millis(100));
    assert!(health.is_empty());
    assert_eq!(frames.len(), 1, "one probe, for m3: {frames:?}");
    assert_eq!(frames[0].0, ROUTED);
    let syn = &frames[0].1;
    assert_eq!(syn[6..12], mac(202), "from the router's interface on n2");
    assert_eq!(syn[0..6], mac(13));
    let (ip, _) = ip_of(syn);
    assert_eq!((ip.src_addr, ip.dst_addr), (VIP, m3), "from the VIP");
    let (sport, _, isn, ..) = tcp_of(syn);
    // m3 answers its gateway: punted from its port, and up.
    let seg = TcpRepr {
        src_port: 80,
        dst_port: sport,
        seq_number: 9000,
        ack_number: isn + 1,
        flags: Flags(Flags::SYN | Flags::ACK),
        window_len: 1000,
        urgent_at: 0,
        payload: b"",
    }
    .build(&IpAddr::V4(m3), &IpAddr::V4(VIP));
    let answer = EthernetRepr {
        src_addr: EthernetAddress(mac(13)),
        dst_addr: EthernetAddress(mac(202)),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&Ipv4Repr::new(m3, VIP, IpProtocol::Tcp, seg.len()).build(&seg));
    let sent = sim.send(ROUTED, &answer);
    let health: Vec<_> = sent.punted.iter().flat_map(|p| p.health.clone()).collect();
    assert_eq!(health, up(true));
}
