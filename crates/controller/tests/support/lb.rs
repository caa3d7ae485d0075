//! Load-balancing fixtures for the fake-switch tests (`lb`, `lb_ops`): a UDP balancer on
//! 10.0.0.100:53, its members, the one-network world of a client and two members (one
//! here, one behind the tunnel), and what a datagram to the VIP became.

use super::sim::Sim;
use super::{mac, open_port, put_open_group, udp_frame};
use controller::apps::Settings;
use model::lb::{HealthMonitor, Listener, LoadBalancer, Member, Pool, Protocol, Status};
use model::{Network, Port, fixtures};
use std::net::{IpAddr, Ipv4Addr};

pub const CLIENT: u32 = 1;
pub const LOCAL_MEMBER: u32 = 2;
pub const TUNNEL: u32 = 100;
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);

pub fn up() -> Status {
    Status {
        provisioning_status: "ACTIVE".into(),
        operating_status: "ONLINE".into(),
    }
}

pub fn member(id: &str, last: u8, weight: u16) -> Member {
    Member {
        meta: fixtures::meta(id),
        status: up(),
        admin_state_up: true,
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
        protocol_port: 5353,
        weight,
        backup: false,
        subnet_id: None,
        monitor_address: None,
        monitor_port: None,
    }
}

/// A UDP balancer on 10.0.0.100:53 over `members` (port 5353).
pub fn balancer(members: Vec<Member>) -> LoadBalancer {
    LoadBalancer {
        meta: fixtures::meta("lb"),
        status: up(),
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
            status: up(),
            admin_state_up: true,
            protocol: Protocol::Udp,
            protocol_port: 53,
            connection_limit: -1,
            allowed_cidrs: vec![],
            default_pool_id: Some("pool".into()),
        }],
        pools: vec![Pool {
            meta: fixtures::meta("pool"),
            status: up(),
            admin_state_up: true,
            protocol: Protocol::Udp,
            lb_algorithm: model::lb::Algorithm::SourceIpPort,
            session_persistence: None,
            listener_id: Some("l".into()),
            members,
            healthmonitor: None::<HealthMonitor>,
        }],
        failovers: 0,
        fip_holder: None,
    }
}

/// Network n (10.0.0.0/24) on host h: the client (.5, plugged), a local member m1 (.11)
/// and a member m2 (.12) on host o, the VIP port (.100, unbound), and the balancer.
pub fn world(members: Vec<Member>) -> Sim {
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
    sim.put(&balancer(members));
    sim
}

/// The IPv4 destination (address, UDP port) and Ethernet destination of a frame.
pub fn dst(frame: &[u8]) -> (Ipv4Addr, u16, [u8; 6]) {
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let a = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let port = u16::from_be_bytes([ip[ihl + 2], ip[ihl + 3]]);
    let mut m = [0u8; 6];
    m.copy_from_slice(&frame[0..6]);
    (a, port, m)
}

pub fn src(frame: &[u8]) -> (Ipv4Addr, u16) {
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    (
        Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        u16::from_be_bytes([ip[ihl], ip[ihl + 1]]),
    )
}

/// A datagram from the client's port `sport` to the VIP: where it went, as (OpenFlow
/// port, destination address, destination port).
pub fn to_vip(sim: &mut Sim, sport: u16) -> Vec<(u32, Ipv4Addr, u16, [u8; 6])> {
    from_client(sim, CLIENT, 5, sport)
}

/// A datagram to the VIP from the client on OpenFlow port `ofport` with address
/// 10.0.0.`last`, from UDP port `sport`.
pub fn from_client(
    sim: &mut Sim,
    ofport: u32,
    last: u8,
    sport: u16,
) -> Vec<(u32, Ipv4Addr, u16, [u8; 6])> {
    let ip = Ipv4Addr::new(10, 0, 0, last);
    let f = udp_frame(mac(last), fixtures::mac(100).0, (ip, sport), (VIP, 53));
    sim.send(ofport, &f)
        .frames()
        .into_iter()
        .map(|(port, fr)| {
            let (a, p, m) = dst(&fr);
            (port, a, p, m)
        })
        .collect()
}
