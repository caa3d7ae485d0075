//! The internal DNS responder's cost per query, sans-IO: a host that knows 10,000 named
//! ports (1,000 of them local) in 100 networks answers its local ports' A queries for a
//! neighbour's name, PTR queries for its address, and names nobody has; and the cost of a
//! blocked (flooding) port's query. Prints the figures (mean, p99, answers a second) and
//! records them in docs/benchmarks.md.

use controller::apps::dns::responder::{Config, DnsResponder, TcpAnswer};
use controller::apps::{Punt, Settings};
use controller::pipeline::{App, Cookie};
use controller::view::{View, record};
use model::{MacAddr, Network, Port, PortStatus, fixtures, owner};
use openflow::flow::NO_BUFFER;
use openflow::oxm::{Field, Match, OxmField};
use openflow::packet::PacketIn;
use openflow::packet::PipelineFields;
use packet::dns::{reverse_name, rtype};
use packet::ethernet::{EtherType, EthernetRepr};
use packet::ipv4::Ipv4Repr;
use packet::udp::UdpRepr;
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use testbed::bench::write_section;

fn addr(net: u32, last: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, net as u8, (last >> 8) as u8, last as u8)
}

fn query(m: MacAddr, src: Ipv4Addr, dst: Ipv4Addr, id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = vec![0; 12];
    q[0..2].copy_from_slice(&id.to_be_bytes());
    q[2] = 1;
    q[5] = 1;
    for l in name.trim_end_matches('.').split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    let udp = UdpRepr {
        src_port: 33_000,
        dst_port: 53,
        payload: &q,
    }
    .build(&IpAddr::V4(src), &IpAddr::V4(dst));
    let ip = Ipv4Repr::new(src, dst, IpProtocol::Udp, udp.len()).build(&udp);
    EthernetRepr {
        src_addr: EthernetAddress(m.0),
        dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&ip)
}

/// Mean and 99th percentile of answering every packet-in of `queries` `rounds` times;
/// checks each gets exactly `packets` packet-outs.
fn measure(
    punt: &mut Punt,
    view: &View,
    host: &mut controller::apps::Host,
    queries: &[PacketIn],
    rounds: usize,
) -> (Duration, Duration, usize) {
    let now = Instant::now();
    let mut times = Vec::with_capacity(rounds * queries.len());
    let mut out = 0;
    for _ in 0..rounds {
        for q in queries {
            let t = Instant::now();
            out += punt.handle(view, host, now, q).packets.len();
            times.push(t.elapsed());
        }
    }
    times.sort_unstable();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    let p99 = times[times.len() * 99 / 100];
    (mean, p99, out)
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
        let sub = fixtures::subnet(
            &format!("sub{n}"),
            &format!("net{n}"),
            &format!("10.{n}.0.0/16"),
        );
        records.push(record(&sub, 1));
    }
    let port = |i: u32, net: u32, owner: &str, host: &str, last: u32| Port {
        fixed_ips: vec![fixtures::fixed_ip(
            &format!("sub{net}"),
            &addr(net, last).to_string(),
        )],
        device_owner: owner.into(),
        status: PortStatus::Active,
        unique_key: i + 1,
        dns_name: if owner.is_empty() {
            format!("vm{i}")
        } else {
            String::new()
        },
        ..fixtures::port(&format!("port{i}"), &format!("net{net}"), i, host)
    };
    let mut host = controller::apps::Host::default();
    let mut local = Vec::new();
    for i in 0..10_000u32 {
        let here = i % 10 == 0;
        let p = port(
            i,
            i % 100,
            "",
            if here { "here" } else { "far" },
            10 + i / 100,
        );
        if here {
            host.ofports.insert(p.meta.id.clone(), i + 10);
            local.push((i, p.unique_key, i + 10, p.mac_address));
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
    let pi = |net: u32, key: u32, ofport: u32, data: Vec<u8>| PacketIn {
        buffer_id: NO_BUFFER,
        total_len: data.len() as u16,
        reason: 1,
        table_id: 32,
        cookie: Cookie {
            app: App::Dns,
            key: net + 1,
        }
        .encode(),
        match_: Match::new()
            .in_port(ofport)
            .with(OxmField::new(Field::Reg(6), key)),
        data,
    };
    // Port i asks for port i + 100's name (modulo 10,000) (same network, another host), and its address.
    let make = |name: &dyn Fn(u32) -> (String, u16)| -> Vec<PacketIn> {
        local
            .iter()
            .map(|(i, key, ofport, mac)| {
                let net = i % 100;
                let (n, t) = name(*i);
                let q = query(
                    *mac,
                    addr(net, 10 + i / 100),
                    addr(net, 2),
                    *i as u16,
                    &n,
                    t,
                );
                pi(net, *key, *ofport, q)
            })
            .collect()
    };
    let by_name = make(&|i| (format!("vm{}.openstacklocal", (i + 100) % 10_000), rtype::A));
    let by_addr = make(&|i| {
        let j = (i + 100) % 10_000;
        (reverse_name(addr(j % 100, 10 + j / 100).into()), rtype::PTR)
    });
    let nobody = make(&|i| (format!("nobody{i}.openstacklocal"), rtype::A));
    let settings = Settings {
        dns: Config {
            rate_limit: 1_000_000,
            ..Config::default()
        },
        ..Settings::default()
    };
    let mut punt = Punt::new(&settings);
    let rounds = 20;
    let n = rounds * local.len();
    let a = measure(&mut punt, &view, &mut host, &by_name, rounds);
    let ptr = measure(&mut punt, &view, &mut host, &by_addr, rounds);
    let nx = measure(&mut punt, &view, &mut host, &nobody, rounds);
    for (what, m) in [("A", a), ("PTR", ptr), ("NXDOMAIN", nx)] {
        assert_eq!(m.2, n, "every {what} query answered");
    }
    let stats = punt.get::<DnsResponder>().expect("DNS handler").stats;
    assert_eq!((stats.answered, stats.nxdomain), (2 * n as u64, n as u64));

    // The same names over TCP (`answer_tcp`: the message without a frame; the port from
    // the key the connection's source stands for).
    let mut tcp = DnsResponder::new(settings.dns.clone());
    let over_tcp: Vec<(u32, Vec<u8>)> = by_name
        .iter()
        .map(|pi| (pi.reg(6), pi.data[14 + 20 + 8..].to_vec()))
        .collect();
    let tcp_a = {
        let now = Instant::now();
        let mut times = Vec::with_capacity(n);
        for _ in 0..rounds {
            for (key, q) in &over_tcp {
                let t = Instant::now();
                let a = tcp.answer_tcp(&view, &host, now, *key, q);
                times.push(t.elapsed());
                assert!(matches!(a, TcpAnswer::Reply(_)), "answered over TCP");
            }
        }
        times.sort_unstable();
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        (mean, times[times.len() * 99 / 100], n)
    };

    // The flood guard: one port sends 100,000 queries at once; a burst of the rate is
    // answered, one block goes to the switch, the rest cost only the guard's check.
    let mut guarded = Punt::default();
    let flood = &by_name[0];
    let now = Instant::now();
    let start = Instant::now();
    let (mut out, mut mods) = (0, 0);
    for _ in 0..100_000 {
        let p = guarded.handle(&view, &mut host, now, flood);
        out += p.packets.len();
        mods += p.flow_mods.len();
    }
    let blocked = start.elapsed() / 100_000;
    assert_eq!((out, mods), (100, 2));

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let row = |what: &str, (mean, p99, _): (Duration, Duration, usize)| {
        format!(
            "| {what} | {:.1} µs | {:.1} µs | {:.0} |\n",
            us(mean),
            us(p99),
            1.0 / mean.as_secs_f64()
        )
    };
    let table = format!(
        "{}{}{}{}",
        row("A for a neighbour's name", a),
        row("PTR for a neighbour's address", ptr),
        row("a name nobody has (NXDOMAIN)", nx),
        row(
            "A for a neighbour's name over TCP (the answer alone, no socket)",
            tcp_a
        )
    );
    println!("{table}blocked port's query: {:.2} us", us(blocked));
    write_section(
        "dns",
        &format!(
            "## Controller: internal DNS responder per query\n\n\
             `cargo bench --profile dev -p controller --bench dns`: the responder alone (sans-IO, \
             no switch; parse, rate check, look-up, answer frame), on a view of 10,000 named \
             ports (1,000 local) in 100 networks, 100 ports a network; {n} queries of each \
             kind. A look-up scans the asker's reachable networks (here 100 ports), with no \
             index. Measured on the *debug* build on a shared 2-core machine (load 8 to 10; the last run beside the controller test suite): \
             the DHCP bench run the same way gives 159 µs per DISCOVER against its 6.5 µs \
             release figure above, so divide by about 25 for an optimised build; the p99 is \
             mostly other processes' CPU.\n\n\
             | query | mean | p99 | answers/s (one core) |\n|---|---|---|---|\n{table}\
             | a blocked port's query (flood guard) | {:.2} µs | | |\n\n",
            us(blocked)
        ),
    );
}
