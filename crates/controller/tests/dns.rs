//! Internal DNS on the fake switch: a VM's query to its network's DNS address goes through
//! the pipeline to the controller (and nowhere else), whose answer comes back out of the
//! VM's port as the VM's resolver would read it: names of its project's ports on its
//! network and behind its router, reverse names, nothing of another project, REFUSED or a
//! forward for the rest, TC past 512 bytes, the flood guard, and garbage dropped.

mod support;

use controller::apps::Settings;
use controller::apps::dns::responder::{self, DnsResponder, Forward};
use controller::pipeline::table;
use model::{FixedIp, Network, Port, PortStatus, Router, RouterInterface, Subnet, fixtures, owner};
use packet::dns::{self, Message, Name, Question, rcode, rtype};
use packet::ethernet::{EtherType, EthernetRepr};
use packet::ipv4::Ipv4Repr;
use packet::udp::UdpRepr;
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use support::sim::Sim;

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

fn port(id: &str, n: u8, host: &str, project: &str) -> Port {
    let mut p = Port {
        fixed_ips: vec![fixtures::fixed_ip("s", &ip(n).to_string())],
        port_security_enabled: false,
        status: PortStatus::Active,
        ..fixtures::port(id, "n", n.into(), host)
    };
    p.meta.project_id = project.into();
    p
}

/// Network n (project p1, shared) with subnet s and DHCP port d (10.0.0.2); VM ports
/// a (10.0.0.5, vm1, here on OpenFlow port 1), b (10.0.0.6, vm2, on host o), c (10.0.0.7,
/// vm3, project p2, on host o); routed network m with e (10.1.0.5, vm5, p1) behind router r.
fn world(settings: &Settings) -> Sim {
    let mut sim = Sim::with("h", 0, &[], settings);
    let mut net = Network {
        subnets: vec!["s".into()],
        shared: true,
        ..fixtures::network("n", 9)
    };
    net.meta.project_id = "p1".into();
    sim.put(&net);
    sim.put(&Subnet {
        ..fixtures::subnet("s", "n", "10.0.0.0/24")
    });
    let mut d = port("d", 2, "", "p1");
    d.device_owner = owner::DHCP.into();
    sim.put(&d);
    for (id, n, host, project, name) in [
        ("a", 5, "", "p1", "vm1"),
        ("b", 6, "o", "p1", "vm2"),
        ("c", 7, "o", "p2", "vm3"),
    ] {
        let mut p = port(id, n, host, project);
        p.dns_name = name.into();
        sim.put(&p);
    }
    sim.plug("a", 1);
    // A router joins n to m.
    let mut m = Network {
        subnets: vec!["sm".into()],
        ..fixtures::network("m", 10)
    };
    m.meta.project_id = "p1".into();
    sim.put(&m);
    sim.put(&fixtures::subnet("sm", "m", "10.1.0.0/24"));
    let mut e = port("e", 8, "o", "p1");
    e.network_id = "m".into();
    e.fixed_ips = vec![FixedIp {
        subnet_id: "sm".into(),
        ip_address: "10.1.0.5".parse().unwrap(),
    }];
    e.dns_name = "vm5".into();
    sim.put(&e);
    let iface =
        |port: &str, net: &str, subnet: &str, addr: &str, cidr: &str, n: u32| RouterInterface {
            port_id: port.into(),
            subnet_id: subnet.into(),
            network_id: net.into(),
            ip_address: addr.parse().unwrap(),
            cidr: cidr.parse().unwrap(),
            mac_address: fixtures::mac(n),
        };
    // As Neutron makes them: the router before its interfaces' ports.
    let mut r = Router {
        interfaces: vec![
            iface("ri1", "n", "s", "10.0.0.1", "10.0.0.0/24", 100),
            iface("ri2", "m", "sm", "10.1.0.1", "10.1.0.0/24", 101),
        ],
        ..fixtures::router("r", 3)
    };
    r.meta.project_id = "p1".into();
    sim.put(&r);
    for (id, net, subnet, addr, n) in [
        ("ri1", "n", "s", "10.0.0.1", 100),
        ("ri2", "m", "sm", "10.1.0.1", 101),
    ] {
        let mut p = port(id, 0, "", "p1");
        p.network_id = net.into();
        p.unique_key = n;
        p.mac_address = fixtures::mac(n);
        p.device_owner = owner::ROUTER_INTERFACE.into();
        p.device_id = "r".into();
        p.fixed_ips = vec![fixtures::fixed_ip(subnet, addr)];
        sim.put(&p);
    }
    sim
}

/// A query from port a (10.0.0.5, OpenFlow port 1) to `server`.
fn query_to(server: Ipv4Addr, id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = vec![0; 12];
    q[0..2].copy_from_slice(&id.to_be_bytes());
    q[2] = 1; // RD
    q[5] = 1; // one question
    for l in name.trim_end_matches('.').split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    let (src, dst) = (IpAddr::V4(ip(5)), IpAddr::V4(server));
    let udp = UdpRepr {
        src_port: 40_000,
        dst_port: 53,
        payload: &q,
    }
    .build(&src, &dst);
    let ipv4 = Ipv4Repr::new(ip(5), server, IpProtocol::Udp, udp.len()).build(&udp);
    EthernetRepr {
        src_addr: EthernetAddress(fixtures::mac(5).0),
        dst_addr: EthernetAddress(fixtures::mac(2).0),
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&ipv4)
}

fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    query_to(ip(2), id, name, qtype)
}

/// The one answer to `frame` from port 1: it leaves by port 1, from the DHCP port's MAC
/// and address, port 53, to the asker; the DNS message parsed.
fn ask(sim: &mut Sim, frame: &[u8]) -> Message {
    let sent = sim.send(1, frame);
    assert_eq!(sent.punted.len(), 1, "one packet-in");
    let out = sent.frames();
    let [(1, reply)] = out.as_slice() else {
        panic!("one frame back out of port 1, got {out:?}");
    };
    let eth = packet::ethernet::Frame::new_checked(&reply[..]).unwrap();
    assert_eq!(eth.src_addr(), EthernetAddress(fixtures::mac(2).0));
    assert_eq!(eth.dst_addr(), EthernetAddress(fixtures::mac(5).0));
    let ipp = packet::ipv4::Packet::new_checked(eth.payload()).unwrap();
    let ipr = Ipv4Repr::parse(&ipp).unwrap();
    assert_eq!((ipr.src_addr, ipr.dst_addr), (ip(2), ip(5)));
    let u = packet::udp::Packet::new_checked(ipp.payload()).unwrap();
    let u = UdpRepr::parse(&u, &IpAddr::V4(ip(2)), &IpAddr::V4(ip(5))).unwrap();
    assert_eq!((u.src_port, u.dst_port), (53, 40_000));
    let m = Message::parse(u.payload).unwrap();
    assert!(m.is_response());
    m
}

fn stats(sim: &Sim) -> responder::Stats {
    sim.handler::<DnsResponder>().stats
}

#[test]
fn names_of_the_project_are_answered_on_its_networks_and_behind_its_router() {
    let mut sim = world(&Settings::default());
    let m = ask(&mut sim, &query(7, "vm2.openstacklocal", rtype::A));
    assert_eq!((m.id, m.rcode()), (7, rcode::NOERROR));
    assert_eq!(m.flags & 0x0400, 0x0400, "authoritative");
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data, ip(6).octets(), "b, on another host");
    assert_eq!(m.answers[0].ttl, 0);
    // The bare host name, case as the VM wrote it, and default names.
    let m = ask(&mut sim, &query(8, "VM2", rtype::A));
    assert_eq!(m.answers[0].data, ip(6).octets());
    let m = ask(
        &mut sim,
        &query(9, "host-10-0-0-2.openstacklocal", rtype::A),
    );
    assert_eq!(
        m.answers[0].data,
        ip(2).octets(),
        "the DHCP port's default name"
    );
    // Behind the router.
    let m = ask(&mut sim, &query(10, "vm5.openstacklocal", rtype::A));
    assert_eq!(m.answers[0].data, [10, 1, 0, 5]);
    // The reverse name.
    let m = ask(
        &mut sim,
        &query(11, &dns::reverse_name(ip(6).into()), rtype::PTR),
    );
    assert_eq!(m.rcode(), rcode::NOERROR);
    assert_eq!(m.answers[0].rtype, rtype::PTR);
    let mut target = Vec::new();
    for l in ["vm2", "openstacklocal"] {
        target.push(l.len() as u8);
        target.extend_from_slice(l.as_bytes());
    }
    target.push(0);
    assert_eq!(m.answers[0].data, target);
    // A known name with no IPv6 address: no data, not NXDOMAIN.
    let m = ask(&mut sim, &query(12, "vm2.openstacklocal", rtype::AAAA));
    assert_eq!((m.rcode(), m.answers.len()), (rcode::NOERROR, 0));
    assert_eq!(stats(&sim).answered, 6);
}

#[test]
fn another_projects_names_are_as_names_nobody_has() {
    let mut sim = world(&Settings::default());
    let m = ask(&mut sim, &query(1, "vm3.openstacklocal", rtype::A));
    assert_eq!((m.rcode(), m.answers.len()), (rcode::NXDOMAIN, 0));
    let nobody = ask(&mut sim, &query(1, "nobody.openstacklocal", rtype::A));
    assert_eq!(
        m.flags, nobody.flags,
        "the same answer as a name that does not exist"
    );
    let m = ask(
        &mut sim,
        &query(2, &dns::reverse_name(ip(7).into()), rtype::PTR),
    );
    assert_eq!((m.rcode(), m.answers.len()), (rcode::NXDOMAIN, 0));
    let m = ask(&mut sim, &query(3, "host-10-0-0-7", rtype::A));
    assert_eq!(m.rcode(), rcode::NXDOMAIN);
    assert_eq!(stats(&sim).nxdomain, 4);
}

#[test]
fn a_renamed_port_is_answered_at_once() {
    let mut sim = world(&Settings::default());
    let mut b = port("b", 6, "o", "p1");
    b.dns_name = "web".into();
    sim.put(&b);
    let m = ask(&mut sim, &query(1, "web.openstacklocal", rtype::A));
    assert_eq!(m.answers[0].data, ip(6).octets());
    let m = ask(&mut sim, &query(2, "vm2.openstacklocal", rtype::A));
    assert_eq!(m.rcode(), rcode::NXDOMAIN);
}

#[test]
fn other_names_are_refused_without_upstream_and_forwarded_with_one() {
    let mut sim = world(&Settings::default());
    let m = ask(&mut sim, &query(1, "example.com", rtype::A));
    assert_eq!(m.rcode(), rcode::REFUSED);
    // A public address's reverse name is not ours either.
    let m = ask(&mut sim, &query(2, "8.8.8.8.in-addr.arpa", rtype::PTR));
    assert_eq!(m.rcode(), rcode::REFUSED);

    let settings = Settings {
        dns: responder::Config {
            upstreams: vec!["192.0.2.53:53".parse().unwrap()],
            ..responder::Config::default()
        },
        ..Settings::default()
    };
    let mut sim = world(&settings);
    let frame = query(3, "example.com", rtype::A);
    let sent = sim.send(1, &frame);
    assert!(sent.frames().is_empty(), "nothing answered here");
    let [f]: [Forward; 1] = sent.punted[0].dns.clone().try_into().unwrap();
    assert_eq!(f.upstreams, settings.dns.upstreams);
    assert_eq!(f.to.ofport, 1);
    // The upstream's answer to that query goes back to the VM; anything else does not.
    let q = Message::parse(&f.query).unwrap();
    let mut r = dns::Response::to(&q, rcode::NOERROR);
    r.answers.push(dns::Answer {
        name: Name::from_dotted("example.com").unwrap(),
        ttl: 60,
        data: dns::Data::A(Ipv4Addr::new(192, 0, 2, 80)),
    });
    let answer = r.build(512);
    let out = responder::relay(&f, &answer).expect("relayed");
    assert_eq!(out.actions, vec![openflow::action::Action::output(1)]);
    let mut wrong = answer.clone();
    wrong[1] ^= 1;
    assert_eq!(responder::relay(&f, &wrong), None, "another id");
    assert_eq!(responder::relay(&f, &f.query), None, "not a response");
    assert_eq!(stats(&sim).forwarded, 1);
}

#[test]
fn answers_past_512_bytes_are_cut_with_tc() {
    let mut sim = world(&Settings::default());
    let mut b = port("b", 6, "o", "p1");
    b.dns_name = "big".into();
    b.fixed_ips = (10..60)
        .map(|n| fixtures::fixed_ip("s", &ip(n).to_string()))
        .collect();
    sim.put(&b);
    let sent = sim.send(1, &query(1, "big.openstacklocal", rtype::A));
    let (_, reply) = &sent.frames()[0];
    let m = ask(&mut sim, &query(1, "big.openstacklocal", rtype::A));
    assert!(m.truncated());
    assert!(!m.answers.is_empty() && m.answers.len() < 50);
    assert!(reply.len() - 14 - 20 - 8 <= 512);
}

#[test]
fn only_queries_to_the_dns_address_are_punted() {
    let mut sim = world(&Settings::default());
    let sent = sim.send(
        1,
        &query_to(Ipv4Addr::new(192, 0, 2, 53), 1, "vm2", rtype::A),
    );
    assert!(sent.punted.is_empty(), "another resolver: not ours");
    // The punt flows are the port's, in the DNS table.
    let dns_flows = sim
        .core
        .desired()
        .table()
        .iter()
        .filter(|(k, _)| k.table() == table::DNS)
        .count();
    assert_eq!(
        dns_flows, 3,
        "the default, and for the DNS address: the UDP punt and TCP to the server"
    );
}

#[test]
fn a_flooding_port_is_blocked_in_the_switch() {
    let mut sim = world(&Settings::default());
    let frame = query(1, "vm2", rtype::A);
    let mut answered = 0;
    let mut blocks = Vec::new();
    for _ in 0..300 {
        let sent = sim.send(1, &frame);
        answered += sent.frames().len();
        blocks.extend(sent.punted.into_iter().flat_map(|p| p.flow_mods));
    }
    assert_eq!(answered, 100, "a burst of the rate");
    assert_eq!(blocks.len(), 2, "one block, IPv4 and IPv6: {blocks:?}");
    assert!(
        blocks
            .iter()
            .all(|b| b.hard_timeout == 1 && b.table_id == table::DNS)
    );
    assert_eq!(stats(&sim).blocks, 1);
    // Blocked in the switch: nothing reaches the controller until the block ends.
    assert!(sim.send(1, &frame).punted.is_empty());
    sim.wait(Duration::from_millis(1100));
    assert_eq!(sim.send(1, &frame).frames().len(), 1);
}

#[test]
fn garbage_is_dropped_and_counted() {
    let mut sim = world(&Settings::default());
    let good = query(1, "vm2.openstacklocal", rtype::A);
    let mut seed: u32 = 0x1234_5678;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut dropped = 0;
    for _ in 0..2000 {
        let mut f = good.clone();
        // Corrupt the DNS message (past the headers), keeping the checksum honest.
        let keep = (next() as usize) % (f.len() - 42 + 8);
        let mut payload = f[42..].to_vec();
        for b in payload.iter_mut() {
            if next() % 4 == 0 {
                *b = next() as u8;
            }
        }
        payload.truncate(keep);
        let udp = UdpRepr {
            src_port: 40_000,
            dst_port: 53,
            payload: &payload,
        }
        .build(&IpAddr::V4(ip(5)), &IpAddr::V4(ip(2)));
        let ipv4 = Ipv4Repr::new(ip(5), ip(2), IpProtocol::Udp, udp.len()).build(&udp);
        f = EthernetRepr {
            src_addr: EthernetAddress(fixtures::mac(5).0),
            dst_addr: EthernetAddress(fixtures::mac(2).0),
            vlan: None,
            ethertype: EtherType::Ipv4,
        }
        .build(&ipv4);
        // Under the rate: fifty queries a second on the fake clock.
        sim.now += Duration::from_millis(20);
        if sim.send(1, &f).frames().is_empty() {
            dropped += 1;
        }
    }
    let s = stats(&sim);
    assert!(s.malformed > 0 && dropped > 0, "{s:?}");
    assert_eq!(s.rate_limited, 0);
    // Still answering.
    let m = ask(&mut sim, &good);
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn a_question_is_echoed_as_asked() {
    let mut sim = world(&Settings::default());
    let m = ask(&mut sim, &query(1, "Vm2.OpenStackLocal", rtype::A));
    assert_eq!(
        m.questions[0],
        Question {
            name: Name::from_dotted("Vm2.OpenStackLocal").unwrap(),
            qtype: rtype::A,
            qclass: 1
        }
    );
    assert_eq!(m.answers[0].name, m.questions[0].name);
}

#[test]
fn queries_over_ipv6_get_aaaa_answers_from_the_ipv6_dns_address() {
    let mut sim = world(&Settings::default());
    let mut net = Network {
        subnets: vec!["s".into(), "s6".into()],
        shared: true,
        ..fixtures::network("n", 9)
    };
    net.meta.project_id = "p1".into();
    sim.put(&net);
    sim.put(&fixtures::subnet("s6", "n", "fd00::/64"));
    for (id, n, host) in [("d", 2, ""), ("a", 5, ""), ("b", 6, "o")] {
        let mut p = sim.core.view().ports[id].clone();
        p.fixed_ips
            .push(fixtures::fixed_ip("s6", &format!("fd00::{n}")));
        p.binding_host_id = host.into();
        sim.put(&p);
    }
    let (src, dst): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        ("fd00::5".parse().unwrap(), "fd00::2".parse().unwrap());
    let mut q = vec![0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in ["vm2", "openstacklocal"] {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 28, 0, 1]);
    let udp = UdpRepr {
        src_port: 40_001,
        dst_port: 53,
        payload: &q,
    }
    .build(&src.into(), &dst.into());
    let ip = packet::ipv6::Ipv6Repr::new(src, dst, IpProtocol::Udp, udp.len(), 64).build(&udp);
    let frame = EthernetRepr {
        src_addr: EthernetAddress(fixtures::mac(5).0),
        dst_addr: EthernetAddress(fixtures::mac(2).0),
        vlan: None,
        ethertype: EtherType::Ipv6,
    }
    .build(&ip);
    let sent = sim.send(1, &frame);
    let out = sent.frames();
    let [(1, reply)] = out.as_slice() else {
        panic!("one answer back out of port 1, got {out:?}");
    };
    let eth = packet::ethernet::Frame::new_checked(&reply[..]).unwrap();
    let ipp = packet::ipv6::Packet::new_checked(eth.payload()).unwrap();
    assert_eq!((ipp.src_addr(), ipp.dst_addr()), (dst, src));
    let u = packet::udp::Packet::new_checked(ipp.payload()).unwrap();
    let u = UdpRepr::parse(&u, &dst.into(), &src.into()).unwrap();
    let m = Message::parse(u.payload).unwrap();
    assert_eq!(m.answers.len(), 1);
    assert_eq!(
        m.answers[0].data,
        "fd00::6".parse::<std::net::Ipv6Addr>().unwrap().octets()
    );
}
