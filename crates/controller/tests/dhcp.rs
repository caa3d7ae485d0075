//! DHCP on the fake switch: a VM's request goes through the pipeline to the controller
//! (and nowhere else), the responder's packet-out comes back out of the VM's port, and
//! what comes out is checked as the client would parse it.

mod support;

use controller::apps::Settings;
use controller::apps::dhcp::responder::{Config, Dhcp};
use controller::pipeline::{App, Cookie, table};
use model::{ExtraDhcpOpt, HostRoute, MacAddr, Network, Port, PortStatus, Subnet, fixtures, owner};
use openflow::flow::NO_BUFFER;
use openflow::oxm::Match;
use openflow::packet::PacketIn;
use packet::dhcpv4::{self, DhcpRepr, MessageType, Op, ParsedFrame};
use packet::ethernet::{EtherType, EthernetRepr};
use packet::ipv4::Ipv4Repr;
use packet::udp::UdpRepr;
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use support::sim::Sim;

const DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

fn mac(n: u8) -> MacAddr {
    MacAddr([0xfa, 0x16, 0x3e, 0, 0, n])
}

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

fn port(id: &str, n: u8, host: &str, device_owner: &str) -> Port {
    Port {
        fixed_ips: vec![fixtures::fixed_ip("s", &ip(n).to_string())],
        port_security_enabled: device_owner.is_empty(),
        device_owner: device_owner.into(),
        status: PortStatus::Active,
        ..fixtures::port(id, "n", n.into(), host)
    }
}

fn subnet(enable_dhcp: bool) -> Subnet {
    Subnet {
        enable_dhcp,
        host_routes: vec![HostRoute {
            destination: "192.168.0.0/16".parse().unwrap(),
            nexthop: "10.0.0.254".parse().unwrap(),
        }],
        ..fixtures::subnet("s", "n", "10.0.0.0/24")
    }
}

/// The network: subnet s (DHCP on), DHCP port d (10.0.0.2), VM ports a (10.0.0.5, OpenFlow
/// port 1) and b (10.0.0.6, port 2) plugged here, c (10.0.0.7) elsewhere.
fn world() -> Sim {
    let settings = Settings {
        dhcp: Config {
            dns_servers: vec![DNS],
            ..Config::default()
        },
        ..Settings::default()
    };
    let mut sim = Sim::with("h", 0, &[], &settings);
    sim.put(&Network {
        subnets: vec!["s".into()],
        ..fixtures::network("n", 9)
    });
    sim.put(&subnet(true));
    sim.put(&port("d", 2, "", owner::DHCP));
    for (id, n, ofport) in [("a", 5, 1), ("b", 6, 2)] {
        sim.put(&port(id, n, "", ""));
        sim.plug(id, ofport);
    }
    sim.put(&port("c", 7, "o", ""));
    sim
}

/// The DHCP responder's counters.
fn stats(sim: &Sim) -> &controller::apps::dhcp::responder::Stats {
    &sim.handler::<Dhcp>().stats
}

/// The one DHCP reply `frame` from port `ofport` gets, parsed, and the port it left by.
fn ask(sim: &mut Sim, ofport: u32, frame: &[u8]) -> (u32, ParsedFrame) {
    let sent = sim.send(ofport, frame);
    let left = sent.frames();
    assert_eq!(sent.punted.len(), 1, "one packet-in: {left:?}");
    let [(port, reply)] = left.as_slice() else {
        panic!("one frame out, got {left:?}");
    };
    (*port, dhcpv4::parse_frame(reply).expect("the reply parses"))
}

/// A packet-in from the DHCP table for port `key`, arriving by OpenFlow port 1.
fn dhcp_packet_in(key: u32, data: Vec<u8>) -> PacketIn {
    PacketIn {
        buffer_id: NO_BUFFER,
        total_len: data.len() as u16,
        reason: 1,
        table_id: table::DHCP,
        cookie: Cookie {
            app: App::Dhcp,
            key,
        }
        .encode(),
        match_: Match::new().in_port(1),
        data,
    }
}

/// A client's message from port `n` (MAC fa:16:3e:00:00:n) in a frame, from `src`.
fn request(n: u8, mut dhcp: DhcpRepr, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    dhcp.client_hardware_addr = EthernetAddress(mac(n).0);
    let payload = dhcp.build();
    let udp = UdpRepr {
        src_port: 68,
        dst_port: 67,
        payload: &payload,
    }
    .build(&IpAddr::V4(src), &IpAddr::V4(dst));
    let ipv4 = Ipv4Repr::new(src, dst, IpProtocol::Udp, udp.len()).build(&udp);
    EthernetRepr {
        src_addr: EthernetAddress(mac(n).0),
        dst_addr: if dst == Ipv4Addr::BROADCAST {
            EthernetAddress::BROADCAST
        } else {
            EthernetAddress(mac(2).0)
        },
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .build(&ipv4)
}

fn arp_request(n: u8, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let req = packet::arp::ArpRepr {
        operation: packet::arp::Operation::Request,
        source_hardware_addr: EthernetAddress(mac(n).0),
        source_protocol_addr: spa,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: tpa,
    };
    let mut body = vec![0u8; req.buffer_len()];
    req.emit(&mut packet::arp::Packet::new_unchecked(&mut body[..]));
    EthernetRepr {
        src_addr: EthernetAddress(mac(n).0),
        dst_addr: EthernetAddress::BROADCAST,
        vlan: None,
        ethertype: EtherType::Arp,
    }
    .build(&body)
}

fn msg(t: MessageType, xid: u32) -> DhcpRepr {
    let mut d = DhcpRepr::new(Op::Request, t, xid, EthernetAddress([0; 6]));
    d.parameter_request_list = Some(vec![1, 3, 6, 15, 26, 121]);
    d
}

fn discover(n: u8) -> Vec<u8> {
    request(
        n,
        msg(MessageType::Discover, 0x1000 + u32::from(n)),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
    )
}

fn select(n: u8, wanted: Ipv4Addr) -> Vec<u8> {
    let mut d = msg(MessageType::Request, 0x2000 + u32::from(n));
    d.requested_ip = Some(wanted);
    d.server_identifier = Some(ip(2));
    request(n, d, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
}

#[test]
fn discover_gets_an_offer_with_the_neutron_configuration_and_request_an_ack() {
    let mut sim = world();
    let (port, offer) = ask(&mut sim, 1, &discover(5));
    assert_eq!(port, 1, "back out of the VM's own port");
    let d = &offer.dhcp;
    assert_eq!(d.message_type, MessageType::Offer);
    assert_eq!(d.op, Op::Reply);
    assert_eq!(d.transaction_id, 0x1005);
    assert_eq!(d.your_ip, ip(5));
    assert_eq!(d.server_identifier, Some(ip(2)));
    assert_eq!(
        offer.ethernet.src_addr,
        EthernetAddress(mac(2).0),
        "from the DHCP port's MAC"
    );
    assert_eq!(offer.ipv4.src_addr, ip(2), "from the DHCP port's address");
    assert_eq!((offer.src_port, offer.dst_port), (67, 68));
    assert_eq!(d.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(d.router, [ip(1)]);
    assert_eq!(d.dns_servers, [DNS], "the configured default");
    assert_eq!(d.domain_name.as_deref(), Some("openstacklocal"));
    assert_eq!(d.interface_mtu, Some(1400));
    assert_eq!(d.lease_time, Some(86_400));
    assert_eq!(d.renewal_time, Some(43_200));
    assert_eq!(d.rebinding_time, Some(75_600));
    assert_eq!(
        d.classless_routes,
        [
            dhcpv4::ClasslessRoute::new(Ipv4Addr::new(192, 168, 0, 0), 16, ip(254)),
            // No router on the subnet (isolated, in Neutron's words): the metadata
            // address through the DHCP port, as Neutron's DHCP agent routes it.
            dhcpv4::ClasslessRoute::new(Ipv4Addr::new(169, 254, 169, 254), 32, ip(2)),
            dhcpv4::ClasslessRoute::new(Ipv4Addr::UNSPECIFIED, 0, ip(1)),
        ],
        "host routes, the metadata route, the default route"
    );

    let (_, ack) = ask(&mut sim, 1, &select(5, ip(5)));
    assert_eq!(ack.dhcp.message_type, MessageType::Ack);
    assert_eq!(ack.dhcp.your_ip, ip(5));
    assert_eq!(ack.dhcp.lease_time, Some(86_400));
    assert_eq!(stats(&sim).offers, 1);
    assert_eq!(stats(&sim).acks, 1);

    // The other local port gets its own address.
    let (port, offer) = ask(&mut sim, 2, &discover(6));
    assert_eq!((port, offer.dhcp.your_ip), (2, ip(6)));
}

#[test]
fn the_subnet_dns_servers_win_and_extra_dhcp_opts_override() {
    let mut sim = world();
    let mut s = subnet(true);
    s.dns_nameservers = vec!["10.0.0.53".parse().unwrap()];
    s.host_routes.clear();
    sim.put(&s);
    let mut a = port("a", 5, "h", "");
    a.extra_dhcp_opts = vec![
        ExtraDhcpOpt {
            opt_name: "mtu".into(),
            opt_value: "1300".into(),
            ip_version: 4,
        },
        ExtraDhcpOpt {
            opt_name: "bootfile-name".into(),
            opt_value: "pxelinux.0".into(),
            ip_version: 4,
        },
        ExtraDhcpOpt {
            opt_name: "router".into(),
            opt_value: "".into(),
            ip_version: 4,
        },
        ExtraDhcpOpt {
            opt_name: "dns-server".into(),
            opt_value: "fd00::1".into(),
            ip_version: 6,
        },
    ];
    sim.put(&a);
    let (_, offer) = ask(&mut sim, 1, &discover(5));
    let d = offer.dhcp;
    assert_eq!(d.dns_servers, [ip(53)]);
    assert_eq!(d.interface_mtu, Some(1300));
    assert!(
        d.router.is_empty(),
        "an empty router option removes the gateway"
    );
    assert_eq!(
        d.classless_routes,
        [dhcpv4::ClasslessRoute::new(
            Ipv4Addr::new(169, 254, 169, 254),
            32,
            ip(2)
        )],
        "no host routes: the metadata route alone (no default: the router option took it)"
    );
    assert!(
        d.other_options.contains(&(67, b"pxelinux.0".to_vec())),
        "{:?}",
        d.other_options
    );
}

#[test]
fn a_subnet_without_a_gateway_gives_no_router() {
    let mut sim = world();
    let mut s = subnet(true);
    s.gateway_ip = None;
    sim.put(&s);
    let (_, offer) = ask(&mut sim, 1, &discover(5));
    assert!(offer.dhcp.router.is_empty());
    assert!(
        offer
            .dhcp
            .classless_routes
            .iter()
            .all(|r| r.prefix_len != 0),
        "no default route either: {:?}",
        offer.dhcp.classless_routes
    );
}

#[test]
fn a_request_for_another_address_is_naked_and_a_changed_address_is_renewed_with_a_nak() {
    let mut sim = world();
    let (out_port, nak) = ask(&mut sim, 1, &select(5, ip(99)));
    assert_eq!(out_port, 1);
    assert_eq!(nak.dhcp.message_type, MessageType::Nak);
    assert_eq!(nak.ethernet.dst_addr, EthernetAddress::BROADCAST);
    assert_eq!(nak.dhcp.your_ip, Ipv4Addr::UNSPECIFIED);
    assert_eq!(nak.dhcp.lease_time, None);
    assert_eq!(stats(&sim).naks, 1);

    // A REQUEST naming another server is that server's business.
    let mut other = msg(MessageType::Request, 7);
    other.requested_ip = Some(ip(5));
    other.server_identifier = Some(ip(3));
    let sent = sim.send(
        1,
        &request(5, other, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST),
    );
    assert_eq!(sent.punted.len(), 1);
    assert!(sent.frames().is_empty(), "{:?}", sent.frames());

    // The port's address changes through the API: the client's renewal (unicast from the
    // old address) still reaches the controller past port security, and is NAKed; the
    // next DISCOVER is offered the new address.
    let mut a = port("a", 5, "h", "");
    a.fixed_ips[0].ip_address = IpAddr::V4(ip(50));
    sim.put(&a);
    // First the client asks for the server's MAC from its old address: answered; asking
    // for anyone else from it is still spoofing.
    let left = sim.send(1, &arp_request(5, ip(5), ip(2))).frames();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].0, 1);
    let reply = packet::arp::ArpRepr::parse(
        &packet::arp::Packet::new_checked(&left[0].1[14..]).expect("arp"),
    )
    .expect("arp");
    assert_eq!(
        (reply.source_hardware_addr, reply.source_protocol_addr),
        (EthernetAddress(mac(2).0), ip(2))
    );
    let left = sim.send(1, &arp_request(5, ip(5), ip(6))).frames();
    assert!(left.is_empty(), "{left:?}");
    let mut renew = msg(MessageType::Request, 8);
    renew.client_ip = ip(5);
    let (_, nak) = ask(&mut sim, 1, &request(5, renew, ip(5), ip(2)));
    assert_eq!(nak.dhcp.message_type, MessageType::Nak);
    // (A second later: the port has sent its burst of three.)
    sim.wait(Duration::from_secs(1));
    let (_, offer) = ask(&mut sim, 1, &discover(5));
    assert_eq!(offer.dhcp.your_ip, ip(50));
    let mut renew = msg(MessageType::Request, 9);
    renew.client_ip = ip(50);
    let (_, ack) = ask(&mut sim, 1, &request(5, renew, ip(50), ip(2)));
    assert_eq!(ack.dhcp.message_type, MessageType::Ack);
    assert_eq!(
        ack.ipv4.dst_addr,
        ip(50),
        "a renewal is answered by unicast"
    );
    assert_eq!(ack.dhcp.client_ip, ip(50));
}

#[test]
fn release_is_taken_without_a_reply_and_inform_gets_options_without_a_lease() {
    let mut sim = world();
    let mut release = msg(MessageType::Release, 1);
    release.client_ip = ip(5);
    release.server_identifier = Some(ip(2));
    let sent = sim.send(1, &request(5, release, ip(5), ip(2)));
    assert_eq!(sent.punted.len(), 1, "it reached the controller");
    assert!(sent.frames().is_empty(), "{:?}", sent.frames());
    assert_eq!(stats(&sim).releases, 1);

    let mut inform = msg(MessageType::Inform, 2);
    inform.client_ip = ip(5);
    let (_, ack) = ask(&mut sim, 1, &request(5, inform, ip(5), Ipv4Addr::BROADCAST));
    assert_eq!(ack.dhcp.message_type, MessageType::Ack);
    assert_eq!(ack.dhcp.your_ip, Ipv4Addr::UNSPECIFIED);
    assert_eq!(ack.dhcp.lease_time, None, "no lease for INFORM");
    assert_eq!(ack.dhcp.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(ack.ipv4.dst_addr, ip(5));
}

#[test]
fn enable_dhcp_false_means_no_answer_and_the_request_goes_on_as_a_broadcast() {
    let mut sim = world();
    sim.put(&subnet(false));
    let out = sim.send(1, &discover(5)).outcome;
    assert!(out.to_controller.is_empty(), "{out}");
    assert!(
        out.trace
            .iter()
            .any(|s| s.table == table::DHCP && s.priority == 1),
        "through the DHCP table's default on to L2: {out}"
    );
    // Even a packet-in made up by hand gets no answer: there is no DHCP subnet.
    let p = sim.packet_in(dhcp_packet_in(5, discover(5)));
    assert!(p.packets.is_empty());
    // And back on: answered again.
    sim.put(&subnet(true));
    let (_, offer) = ask(&mut sim, 1, &discover(5));
    assert_eq!(offer.dhcp.message_type, MessageType::Offer);
}

#[test]
fn a_flooding_port_is_blocked_in_the_switch_and_others_are_still_answered() {
    let mut sim = world();
    sim.handler_mut::<Dhcp>().config.block = Duration::from_secs(100);
    let mut answered = 0;
    let mut blocks = Vec::new();
    for _ in 0..50 {
        let sent = sim.send(1, &discover(5));
        answered += sent.frames().len();
        for a in sent.punted {
            blocks.extend(a.flow_mods);
        }
    }
    assert_eq!(answered, 3, "the burst of the rate is answered");
    assert_eq!(blocks.len(), 1, "one drop flow, once");
    assert_eq!(blocks[0].hard_timeout, 100);
    assert_eq!(blocks[0].table_id, table::DHCP);
    assert_eq!(stats(&sim).blocks, 1);
    // The drop flow keeps the flood in the switch: nothing reaches the controller.
    let out = sim.send(1, &discover(5)).outcome;
    assert!(out.dropped(), "{out}");
    assert_eq!(stats(&sim).rate_limited, 1);
    // The other port is served at once.
    let (port, offer) = ask(&mut sim, 2, &discover(6));
    assert_eq!((port, offer.dhcp.your_ip), (2, ip(6)));
    // Once the block is over (the switch dropped the flow itself), the port is served.
    sim.wait(Duration::from_secs(101));
    let (_, offer) = ask(&mut sim, 1, &discover(5));
    assert_eq!(offer.dhcp.your_ip, ip(5));
}

#[test]
fn malformed_requests_are_counted_and_nothing_a_vm_sends_panics() {
    let mut sim = world();
    sim.handler_mut::<Dhcp>().config.rate_limit = 0;
    let good = discover(5);
    let pi = |data: Vec<u8>| dhcp_packet_in(5, data);
    // Truncated at every length.
    for n in 0..good.len() {
        let p = sim.packet_in(pi(good[..n].to_vec()));
        assert!(p.packets.is_empty(), "truncated at {n}");
    }
    assert!(stats(&sim).malformed >= good.len() as u64 - 1);
    // Random bytes and random corruptions of a good request.
    let mut rnd = support::rng();
    for _ in 0..5000 {
        let mut f = good.clone();
        for _ in 0..1 + rnd() % 8 {
            let at = (rnd() as usize) % f.len();
            f[at] = rnd() as u8;
        }
        sim.packet_in(pi(f));
        let len = (rnd() % 600) as usize;
        let junk: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        sim.packet_in(pi(junk));
    }
    // A packet-in claiming another port's cookie but arriving by port 1 is not answered.
    assert!(
        sim.packet_in(dhcp_packet_in(6, discover(6)))
            .packets
            .is_empty()
    );
    // Still answering.
    let p = sim.packet_in(pi(good));
    assert_eq!(p.packets.len(), 1);
}

#[test]
fn only_the_networks_own_dhcp_port_is_the_server() {
    let mut sim = world();
    // Another project's port on the (shared) network calling itself a DHCP port, sorted
    // before the real one.
    let mut fake = port("0fake", 9, "", owner::DHCP);
    fake.meta.project_id = "q".into();
    sim.put(&fake);
    let (_, offer) = ask(&mut sim, 1, &discover(5));
    assert_eq!(offer.dhcp.server_identifier, Some(ip(2)));
    assert_eq!(offer.ethernet.src_addr, EthernetAddress(mac(2).0));
}

#[test]
fn the_hostname_is_the_ports_dns_name_and_internal_dns_the_default_server() {
    let mut sim = world();
    let mut a = port("a", 5, "h", "");
    a.dns_name = "vm-a".into();
    sim.put(&a);
    let (_, offer) = ask(&mut sim, 1, &discover(5));
    assert_eq!(offer.dhcp.hostname.as_deref(), Some("vm-a"));
    assert_eq!(offer.dhcp.domain_name.as_deref(), Some("openstacklocal"));
    // No dns_name: host-<address>, as Neutron's dns_assignment.
    let (_, offer) = ask(&mut sim, 2, &discover(6));
    assert_eq!(offer.dhcp.hostname.as_deref(), Some("host-10-0-0-6"));

    // With no DNS server configured anywhere, the DHCP port's address: this host answers.
    let mut sim = Sim::with("h", 0, &[], &Settings::default());
    sim.put(&Network {
        subnets: vec!["s".into()],
        ..fixtures::network("n", 9)
    });
    sim.put(&subnet(true));
    sim.put(&port("d", 2, "", owner::DHCP));
    sim.put(&port("a", 5, "", ""));
    sim.plug("a", 1);
    let (_, offer) = ask(&mut sim, 1, &discover(5));
    assert_eq!(offer.dhcp.dns_servers, [ip(2)]);
}
