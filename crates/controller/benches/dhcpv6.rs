//! The DHCPv6 responder's cost per packet-in, sans-IO: a host that knows 10,000 ports
//! (1,000 of them local) in 100 networks with a DHCPv6-stateful subnet each answers
//! Solicits of its local ports with Advertises, and drops malformed messages. Prints the
//! figures and records them in docs/benchmarks.md (saying which profile built them).

use controller::apps::dhcpv6::responder::{Config, Dhcpv6};
use controller::apps::{Punt, Settings};
use controller::pipeline::{App, Cookie};
use controller::view::{View, record};
use model::{MacAddr, Network, Port, PortStatus, Subnet, fixtures, owner};
use openflow::flow::NO_BUFFER;
use openflow::oxm::Match;
use openflow::packet::PacketIn;
use packet::dhcpv6::{self, ALL_SERVERS, Dhcpv6Repr, IaNa, MessageType};
use packet::ethernet::{EtherType, EthernetRepr};
use packet::ipv6::Ipv6Repr;
use packet::udp::UdpRepr;
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};
use testbed::bench::write_section;

fn link_local(m: MacAddr) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b[0] = 0xfe;
    b[1] = 0x80;
    b[8..].copy_from_slice(&m.eui64());
    Ipv6Addr::from(b)
}

/// A Solicit as a client sends it: its DUID-LL, elapsed time, an option request for DNS
/// and the domain list, one IA_NA.
fn solicit(m: MacAddr, xid: u32) -> Vec<u8> {
    let mut d = Dhcpv6Repr::new(MessageType::Solicit, xid);
    d.client_id = Some(dhcpv6::duid_ll(EthernetAddress(m.0)));
    d.elapsed_time = Some(0);
    d.oro = vec![23, 24];
    d.ia_na = vec![IaNa {
        iaid: xid,
        t1: 0,
        t2: 0,
        addresses: vec![],
        status: None,
    }];
    let payload = d.build();
    let (src, dst) = (link_local(m), ALL_SERVERS);
    let udp = UdpRepr {
        src_port: 546,
        dst_port: 547,
        payload: &payload,
    }
    .build(&IpAddr::V6(src), &IpAddr::V6(dst));
    let ip = Ipv6Repr::new(src, dst, IpProtocol::Udp, 0, 1).build(&udp);
    EthernetRepr {
        src_addr: EthernetAddress(m.0),
        dst_addr: EthernetAddress::ipv6_multicast(&dst),
        vlan: None,
        ethertype: EtherType::Ipv6,
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
            dns_nameservers: vec![format!("2001:db8:{n:x}::53").parse().unwrap()],
            ipv6_address_mode: Some("dhcpv6-stateful".into()),
            ipv6_ra_mode: Some("dhcpv6-stateful".into()),
            ..fixtures::subnet(
                &format!("sub{n}"),
                &format!("net{n}"),
                &format!("2001:db8:{n:x}::/64"),
            )
        };
        records.push(record(&sub, 1));
    }
    let port = |i: u32, net: u32, owner: &str, host: &str, last: u32| Port {
        fixed_ips: vec![fixtures::fixed_ip(
            &format!("sub{net}"),
            &format!("2001:db8:{net:x}::{last:x}"),
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
    let mut settings = Settings::default();
    settings.dhcp.rate_limit = 0;
    let mut punt = Punt::new(&settings);
    let pi = |key: u32, ofport: u32, data: Vec<u8>| PacketIn {
        buffer_id: NO_BUFFER,
        total_len: data.len() as u16,
        reason: 1,
        table_id: 31,
        cookie: Cookie {
            app: App::Dhcpv6,
            key,
        }
        .encode(),
        match_: Match::new().in_port(ofport),
        data,
    };
    let requests: Vec<PacketIn> = local
        .iter()
        .enumerate()
        .map(|(i, (key, ofport, m))| pi(*key, *ofport, solicit(*m, i as u32)))
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
    assert_eq!(answered, rounds * requests.len(), "every Solicit answered");
    assert_eq!(
        punt.get::<Dhcpv6>()
            .expect("DHCPv6 handler")
            .stats
            .advertises,
        (rounds * requests.len()) as u64
    );

    let junk: Vec<PacketIn> = requests
        .iter()
        .map(|r| {
            let mut j = r.clone();
            j.data.truncate(j.data.len() - 20);
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
        punt.get::<Dhcpv6>()
            .expect("DHCPv6 handler")
            .stats
            .malformed
            >= (rounds * junk.len()) as u64
    );

    // With the flood guard on (DHCPv4's default, 3 a second): one port sends 100,000
    // Solicits at once; three are answered, one flow-mod blocks it.
    let mut guarded = Punt::new(&Settings {
        dhcp: Default::default(),
        ..Settings::default()
    });
    assert_eq!(
        guarded.get::<Dhcpv6>().expect("DHCPv6 handler").config,
        Config::default()
    );
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
    let profile = if cfg!(debug_assertions) {
        "a debug build (`--profile dev`: expect several times the release figures)"
    } else {
        "the release (bench) profile"
    };
    println!(
        "Solicit -> Advertise: {:.1} us each ({:.0}/s); malformed dropped: {:.1} us; blocked by the flood guard: {:.2} us ({profile})",
        us(answer),
        1.0 / answer.as_secs_f64(),
        us(malformed),
        us(blocked)
    );
    write_section(
        "dhcpv6",
        &format!(
            "## Controller: DHCPv6 responder per packet-in\n\n\
             `cargo bench -p controller --bench dhcpv6`: the responder alone (sans-IO, no switch), on a \
             view of 10,000 ports (1,000 local) in 100 networks with a DHCPv6-stateful subnet each; \
             measured with {profile}.\n\n\
             | measure | value |\n|---|---|\n\
             | Solicit → Advertise (parse, look up, build the reply frame) | {:.1} µs ({:.0}/s) |\n\
             | malformed message dropped and counted | {:.1} µs |\n\
             | message of a blocked port (flood guard) | {:.2} µs |\n\n",
            us(answer),
            1.0 / answer.as_secs_f64(),
            us(malformed),
            us(blocked)
        ),
    );
}
