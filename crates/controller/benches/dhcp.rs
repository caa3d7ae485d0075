//! The DHCP responder's cost per packet-in, sans-IO: a host that knows 10,000 ports
//! (1,000 of them local) in 100 networks answers DISCOVERs of its local ports, and drops
//! malformed requests. Prints the figures and records them in docs/benchmarks.md.

use controller::apps::dhcp::responder::{Config, Dhcp};
use controller::apps::{Punt, Settings};
use controller::pipeline::{App, Cookie};
use controller::view::{View, record};
use model::{MacAddr, Network, Port, PortStatus, Subnet, fixtures, owner};
use openflow::flow::NO_BUFFER;
use openflow::oxm::Match;
use openflow::packet::PacketIn;
use packet::dhcpv4::{DhcpRepr, MessageType, Op};
use packet::ethernet::{EtherType, EthernetRepr};
use packet::ipv4::Ipv4Repr;
use packet::udp::UdpRepr;
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use testbed::bench::write_section;

fn discover(m: MacAddr, xid: u32) -> Vec<u8> {
    let d = DhcpRepr::new(
        Op::Request,
        MessageType::Discover,
        xid,
        EthernetAddress(m.0),
    )
    .build();
    let (src, dst) = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);
    let udp = UdpRepr {
        src_port: 68,
        dst_port: 67,
        payload: &d,
    }
    .build(&IpAddr::V4(src), &IpAddr::V4(dst));
    let ip = Ipv4Repr::new(src, dst, IpProtocol::Udp, udp.len()).build(&udp);
    EthernetRepr {
        src_addr: EthernetAddress(m.0),
        dst_addr: EthernetAddress::BROADCAST,
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&ip)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut records = Vec::new();
    for n in 0..100u32 {
        let net = Network {
            subnets: vec![format!("sub{n}")],
            ..fixtures::network(&format!("net{n}"), n + 1)
        };
        records.push(record(&net, 1));
        let sub = Subnet {
            dns_nameservers: vec!["192.0.2.53".parse().unwrap()],
            host_routes: vec![model::HostRoute {
                destination: "172.16.0.0/12".parse().unwrap(),
                nexthop: format!("10.{n}.0.254").parse().unwrap(),
            }],
            ..fixtures::subnet(
                &format!("sub{n}"),
                &format!("net{n}"),
                &format!("10.{n}.0.0/16"),
            )
        };
        records.push(record(&sub, 1));
    }
    let port = |i: u32, net: u32, owner: &str, host: &str, last: u32| Port {
        fixed_ips: vec![fixtures::fixed_ip(
            &format!("sub{net}"),
            &format!("10.{net}.{}.{}", last >> 8, last & 0xff),
        )],
        device_owner: owner.into(),
        status: PortStatus::Active,
        unique_key: i + 1,
        ..fixtures::port(&format!("port{i}"), &format!("net{net}"), i, host)
    };
    let mut host = controller::apps::Host::default();
    let mut local = Vec::new();
    for i in 0..10_000u32 {
        let is_local = i % 10 == 0;
        let p = port(
            i,
            i % 100,
            "",
            if is_local { "here" } else { "far" },
            10 + i / 100,
        );
        if is_local {
            host.ofports.insert(p.meta.id.clone(), i + 10);
            local.push((p.unique_key, i + 10, p.mac_address));
        }
        records.push(record(&p, 2));
    }
    for n in 0..100u32 {
        records.push(record(&port(20_000 + n, n, owner::DHCP, "", 2), 2));
    }
    let mut view = View::new("here");
    view.load(&nbdb::Snapshot {
        revision: 2,
        records,
    });
    let mut punt = Punt::new(&Settings {
        dhcp: Config {
            rate_limit: 0,
            ..Config::default()
        },
        ..Settings::default()
    });
    let pi = |key: u32, ofport: u32, data: Vec<u8>| PacketIn {
        buffer_id: NO_BUFFER,
        total_len: data.len() as u16,
        reason: 1,
        table_id: 30,
        cookie: Cookie {
            app: App::Dhcp,
            key,
        }
        .encode(),
        match_: Match::new().in_port(ofport),
        data,
    };
    let requests: Vec<PacketIn> = local
        .iter()
        .enumerate()
        .map(|(i, (key, ofport, m))| pi(*key, *ofport, discover(*m, i as u32)))
        .collect();
    let now = Instant::now();
    let rounds = 20;
    let start = Instant::now();
    let mut answered = 0usize;
    for _ in 0..rounds {
        for r in &requests {
            answered += punt.handle(&view, &mut host, now, r).packets.len();
        }
    }
    let answer = start.elapsed() / (rounds * requests.len()) as u32;
    assert_eq!(answered, rounds * requests.len(), "every DISCOVER answered");

    let junk: Vec<PacketIn> = requests
        .iter()
        .map(|r| {
            let mut j = r.clone();
            j.data.truncate(j.data.len() - 100);
            j
        })
        .collect();
    let start = Instant::now();
    for _ in 0..rounds {
        for r in &junk {
            punt.handle(&view, &mut host, now, r);
        }
    }
    let malformed = start.elapsed() / (rounds * junk.len()) as u32;
    assert!(
        punt.get::<Dhcp>().expect("DHCP handler").stats.malformed >= (rounds * junk.len()) as u64
    );

    // With the flood guard on: one port sends 100,000 requests at once; the first three
    // are answered, one flow-mod blocks it, the rest cost only the guard's check.
    let mut guarded = Punt::default();
    let flood = &requests[0];
    let start = Instant::now();
    let (mut out, mut mods) = (0, 0);
    for _ in 0..100_000 {
        let p = guarded.handle(&view, &mut host, now, flood);
        out += p.packets.len();
        mods += p.flow_mods.len();
    }
    let blocked = start.elapsed() / 100_000;
    assert_eq!((out, mods), (3, 1));

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "DISCOVER -> OFFER: {:.1} us each ({:.0}/s); malformed dropped: {:.1} us; blocked by the flood guard: {:.2} us",
        us(answer),
        1.0 / answer.as_secs_f64(),
        us(malformed),
        us(blocked)
    );
    write_section(
        "dhcp",
        &format!(
            "## Controller: DHCP responder per packet-in\n\n\
             `cargo bench -p controller --bench dhcp`: the responder alone (sans-IO, no switch), on a \
             view of 10,000 ports (1,000 local) in 100 networks with a DHCP subnet each.\n\n\
             | measure | value |\n|---|---|\n\
             | DISCOVER → OFFER (parse, look up, build the reply frame) | {:.1} µs ({:.0}/s) |\n\
             | malformed request dropped and counted | {:.1} µs |\n\
             | request of a blocked port (flood guard) | {:.2} µs |\n\n",
            us(answer),
            1.0 / answer.as_secs_f64(),
            us(malformed),
            us(blocked)
        ),
    );
}
