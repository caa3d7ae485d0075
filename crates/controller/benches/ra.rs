//! The router advertisement responder's cost, sans-IO: a host that knows 10,000 ports
//! (1,000 of them local) in 100 networks, each with a slaac subnet behind one router,
//! answers router solicitations of its local ports, and sends the unsolicited RAs of one
//! tick where every local port is due. Prints the figures and records them in
//! docs/benchmarks.md.

use controller::apps::ra::responder::Ra;
use controller::apps::{Handler, Punt, Settings};
use controller::pipeline::{App, Cookie};
use controller::view::{View, record};
use model::{MacAddr, Network, Port, PortStatus, Router, RouterInterface, Subnet, fixtures, owner};
use openflow::flow::NO_BUFFER;
use openflow::oxm::Match;
use openflow::packet::PacketIn;
use packet::icmpv6::{self, Icmpv6Repr};
use packet::ipv6::{self, Ipv6Repr};
use packet::{EthernetAddress, IpProtocol};
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};
use testbed::bench::write_section;

fn rs(m: MacAddr) -> Vec<u8> {
    let all_routers: Ipv6Addr = "ff02::2".parse().unwrap();
    icmpv6::build_frame(
        EthernetAddress(m.0),
        EthernetAddress::ipv6_multicast(&all_routers),
        None,
        &Ipv6Repr::new(
            ipv6::link_local(m.0),
            all_routers,
            IpProtocol::Icmpv6,
            0,
            255,
        ),
        &Icmpv6Repr::RouterSolicit {
            lladdr: Some(EthernetAddress(m.0)),
        },
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut records = Vec::new();
    let mut interfaces = Vec::new();
    for n in 0..100u32 {
        let net = Network {
            subnets: vec![format!("sub{n}")],
            ..fixtures::network(&format!("net{n}"), n + 1)
        };
        records.push(record(&net, 1));
        let sub = Subnet {
            dns_nameservers: vec!["2001:db8::53".parse().unwrap()],
            ipv6_ra_mode: Some("slaac".into()),
            ipv6_address_mode: Some("slaac".into()),
            ..fixtures::subnet(
                &format!("sub{n}"),
                &format!("net{n}"),
                &format!("fd00:{n:x}::/64"),
            )
        };
        records.push(record(&sub, 1));
        interfaces.push(RouterInterface {
            port_id: format!("rp{n}"),
            subnet_id: format!("sub{n}"),
            network_id: format!("net{n}"),
            ip_address: format!("fd00:{n:x}::1").parse().unwrap(),
            cidr: format!("fd00:{n:x}::/64").parse().unwrap(),
            mac_address: fixtures::mac(50_000 + n),
        });
        let rp = Port {
            device_owner: owner::ROUTER_INTERFACE.into(),
            device_id: "r".into(),
            fixed_ips: vec![fixtures::fixed_ip(
                &format!("sub{n}"),
                &format!("fd00:{n:x}::1"),
            )],
            unique_key: 30_000 + n,
            ..fixtures::port(&format!("rp{n}"), &format!("net{n}"), 50_000 + n, "")
        };
        records.push(record(&rp, 1));
    }
    records.push(record(
        &Router {
            interfaces,
            ..fixtures::router("r", 1)
        },
        1,
    ));
    let mut host = controller::apps::Host::default();
    let mut local = Vec::new();
    for i in 0..10_000u32 {
        let is_local = i % 10 == 0;
        let net = i % 100;
        let p = Port {
            fixed_ips: vec![fixtures::fixed_ip(
                &format!("sub{net}"),
                &format!("fd00:{net:x}::{:x}", 10 + i),
            )],
            status: PortStatus::Active,
            unique_key: i + 1,
            ..fixtures::port(
                &format!("port{i}"),
                &format!("net{net}"),
                i,
                if is_local { "here" } else { "far" },
            )
        };
        if is_local {
            host.ofports.insert(p.meta.id.clone(), i + 10);
            local.push((p.unique_key, i + 10, p.mac_address));
        }
        records.push(record(&p, 2));
    }
    let mut view = View::new("here");
    view.load(&nbdb::Snapshot {
        revision: 2,
        records,
    });
    let mut punt = Punt::new(&Settings::default());
    let requests: Vec<PacketIn> = local
        .iter()
        .map(|(key, ofport, m)| {
            let data = rs(*m);
            PacketIn {
                buffer_id: NO_BUFFER,
                total_len: data.len() as u16,
                reason: 1,
                table_id: 46,
                cookie: Cookie {
                    app: App::Ra,
                    key: *key,
                }
                .encode(),
                match_: Match::new().in_port(*ofport),
                data,
            }
        })
        .collect();
    let t0 = Instant::now();
    // The ports' schedules first (one tick), so look-ups by key are what a running host
    // does.
    punt.tick(&view, &mut host, t0);
    let rounds = 10u32;
    let start = Instant::now();
    let mut answered = 0usize;
    for round in 0..rounds {
        // A second apart: within every port's rate.
        let now = t0 + Duration::from_secs(u64::from(round) + 1);
        for r in &requests {
            answered += punt.handle(&view, &mut host, now, r).packets.len();
        }
    }
    let answer = start.elapsed() / (rounds * requests.len() as u32);
    assert_eq!(
        answered,
        rounds as usize * requests.len(),
        "every RS answered"
    );

    // One tick where all 1,000 local ports are due (a fresh handler: all new).
    let mut fresh = Ra::default();
    let start = Instant::now();
    let sent = fresh.tick(&view, &mut host, t0).packets.len();
    let tick_all = start.elapsed();
    assert_eq!(sent, local.len());
    // And a tick where none is due (the steady state between RAs).
    let start = Instant::now();
    for i in 1..=100u64 {
        fresh.tick(&view, &mut host, t0 + Duration::from_millis(10 * i));
    }
    let tick_idle = start.elapsed() / 100;

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "RS -> RA: {:.1} us each ({:.0}/s); a tick sending 1,000 RAs: {:.0} us; an idle tick: {:.0} us",
        us(answer),
        1.0 / answer.as_secs_f64(),
        us(tick_all),
        us(tick_idle)
    );
    write_section(
        "ra",
        &format!(
            "## Controller: router advertisements per packet-in and per tick\n\n\
             `cargo bench -p controller --bench ra`: the RA responder alone (sans-IO, no switch), \
             on a view of 10,000 ports (1,000 local) in 100 networks with a slaac subnet each \
             behind one router.\n\n\
             | measure | value |\n|---|---|\n\
             | RS → RA (parse, look up, build the RA with prefix, MTU, RDNSS) | {:.1} µs ({:.0}/s) |\n\
             | one tick with all 1,000 local ports due (1,000 unsolicited RAs) | {:.0} µs |\n\
             | one tick with none due (the 100 ms steady state) | {:.0} µs |\n\n",
            us(answer),
            1.0 / answer.as_secs_f64(),
            us(tick_all),
            us(tick_idle)
        ),
    );
}
