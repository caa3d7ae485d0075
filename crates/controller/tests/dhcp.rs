//! DHCP on the fake switch: a VM's request goes through the pipeline to the controller
//! (and nowhere else), the responder's packet-out comes back out of the VM's port, and
//! what comes out is checked as the client would parse it.

mod support;

use controller::apps::Settings;
use controller::apps::dhcp::responder::{Config, Dhcp};
use controller::apps::{Desired, Host};
use controller::apps::{Punt, Punted};
use controller::pipeline::{App, Cookie, table};
use controller::view::{View, written};
use fake_switch::Switch;
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
use std::time::{Duration, Instant};

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

fn put<T: model::NbObject>(view: &mut View, obj: &T) {
    view.apply(&written(obj, view.revision + 1));
}

/// The network: subnet s (DHCP on), DHCP port d (10.0.0.2), VM ports a (10.0.0.5, OpenFlow
/// port 1) and b (10.0.0.6, port 2) on this host, c (10.0.0.7) elsewhere.
struct Cloud {
    view: View,
    host: Host,
    sw: Switch,
    punt: Punt,
    now: Instant,
}

impl Cloud {
    fn new() -> Cloud {
        let mut view = View::new("h");
        put(
            &mut view,
            &Network {
                subnets: vec!["s".into()],
                ..fixtures::network("n", 9)
            },
        );
        put(&mut view, &subnet(true));
        put(&mut view, &port("d", 2, "", owner::DHCP));
        put(&mut view, &port("a", 5, "h", ""));
        put(&mut view, &port("b", 6, "h", ""));
        put(&mut view, &port("c", 7, "o", ""));
        let host = Host {
            ofports: [("a".to_string(), 1), ("b".to_string(), 2)]
                .into_iter()
                .collect(),
            ..Host::default()
        };
        let punt = Punt::new(&Settings {
            dhcp: Config {
                dns_servers: vec![DNS],
                ..Config::default()
            },
            ..Settings::default()
        });
        let mut c = Cloud {
            view,
            host,
            sw: Switch::new(),
            punt,
            now: Instant::now(),
        };
        c.recompile();
        c
    }

    /// The DHCP responder, its settings and counters.
    fn dhcp(&mut self) -> &mut Dhcp {
        self.punt.get_mut::<Dhcp>().expect("the DHCP app's handler")
    }

    /// Loads the switch with the flows compiled from the view.
    fn recompile(&mut self) {
        self.sw = Switch::new();
        support::install(&mut self.sw, &Desired::full(&self.view, &self.host));
    }

    /// Sends `frame` in by OpenFlow port `ofport`; returns what the controller answered
    /// (the packet-ins handed to it, in order) and the frames that left the switch.
    fn send(&mut self, ofport: u32, frame: &[u8]) -> (Vec<Punted>, Vec<(u32, Vec<u8>)>) {
        let out = self.sw.process(ofport, frame);
        let mut left: Vec<(u32, Vec<u8>)> = out
            .outputs
            .iter()
            .map(|o| (o.port, o.frame.clone()))
            .collect();
        let mut answers = Vec::new();
        for pi in &out.to_controller {
            let pi = PacketIn {
                buffer_id: NO_BUFFER,
                total_len: pi.frame.len() as u16,
                reason: pi.reason,
                table_id: pi.table,
                cookie: pi.cookie,
                match_: Match::new().in_port(pi.packet.in_port),
                data: pi.frame.clone(),
            };
            let punted = self.punt.handle(&self.view, &mut self.host, self.now, &pi);
            for fm in &punted.flow_mods {
                self.sw.apply_flow_mod(fm).expect("flow-mod");
            }
            for po in &punted.packets {
                let o = self.sw.packet_out(po);
                left.extend(o.outputs.iter().map(|o| (o.port, o.frame.clone())));
            }
            answers.push(punted);
        }
        (answers, left)
    }

    /// The one DHCP reply `frame` from port `ofport` gets, parsed, and the port it left by.
    fn ask(&mut self, ofport: u32, frame: &[u8]) -> (u32, ParsedFrame) {
        let (answers, left) = self.send(ofport, frame);
        assert_eq!(answers.len(), 1, "one packet-in: {left:?}");
        let [(port, reply)] = left.as_slice() else {
            panic!("one frame out, got {left:?}");
        };
        (*port, dhcpv4::parse_frame(reply).expect("the reply parses"))
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
    let mut c = Cloud::new();
    let (port, offer) = c.ask(1, &discover(5));
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
            dhcpv4::ClasslessRoute::new(Ipv4Addr::UNSPECIFIED, 0, ip(1)),
        ],
        "host routes plus the default route"
    );

    let (_, ack) = c.ask(1, &select(5, ip(5)));
    assert_eq!(ack.dhcp.message_type, MessageType::Ack);
    assert_eq!(ack.dhcp.your_ip, ip(5));
    assert_eq!(ack.dhcp.lease_time, Some(86_400));
    assert_eq!(c.dhcp().stats.offers, 1);
    assert_eq!(c.dhcp().stats.acks, 1);

    // The other local port gets its own address.
    let (port, offer) = c.ask(2, &discover(6));
    assert_eq!((port, offer.dhcp.your_ip), (2, ip(6)));
}

#[test]
fn the_subnet_dns_servers_win_and_extra_dhcp_opts_override() {
    let mut c = Cloud::new();
    let mut s = subnet(true);
    s.dns_nameservers = vec!["10.0.0.53".parse().unwrap()];
    s.host_routes.clear();
    put(&mut c.view, &s);
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
    put(&mut c.view, &a);
    c.recompile();
    let (_, offer) = c.ask(1, &discover(5));
    let d = offer.dhcp;
    assert_eq!(d.dns_servers, [ip(53)]);
    assert_eq!(d.interface_mtu, Some(1300));
    assert!(
        d.router.is_empty(),
        "an empty router option removes the gateway"
    );
    assert!(
        d.classless_routes.is_empty(),
        "no host routes: no option 121"
    );
    assert!(
        d.other_options.contains(&(67, b"pxelinux.0".to_vec())),
        "{:?}",
        d.other_options
    );
}

#[test]
fn a_subnet_without_a_gateway_gives_no_router() {
    let mut c = Cloud::new();
    let mut s = subnet(true);
    s.gateway_ip = None;
    put(&mut c.view, &s);
    let (_, offer) = c.ask(1, &discover(5));
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
    let mut c = Cloud::new();
    let (out_port, nak) = c.ask(1, &select(5, ip(99)));
    assert_eq!(out_port, 1);
    assert_eq!(nak.dhcp.message_type, MessageType::Nak);
    assert_eq!(nak.ethernet.dst_addr, EthernetAddress::BROADCAST);
    assert_eq!(nak.dhcp.your_ip, Ipv4Addr::UNSPECIFIED);
    assert_eq!(nak.dhcp.lease_time, None);
    assert_eq!(c.dhcp().stats.naks, 1);

    // A REQUEST naming another server is that server's business.
    let mut other = msg(MessageType::Request, 7);
    other.requested_ip = Some(ip(5));
    other.server_identifier = Some(ip(3));
    let (answers, left) = c.send(
        1,
        &request(5, other, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST),
    );
    assert_eq!(answers.len(), 1);
    assert!(left.is_empty(), "{left:?}");

    // The port's address changes through the API: the client's renewal (unicast from the
    // old address) still reaches the controller past port security, and is NAKed; the
    // next DISCOVER is offered the new address.
    let mut a = port("a", 5, "h", "");
    a.fixed_ips[0].ip_address = IpAddr::V4(ip(50));
    put(&mut c.view, &a);
    c.recompile();
    // First the client asks for the server's MAC from its old address: answered; asking
    // for anyone else from it is still spoofing.
    let (_, left) = c.send(1, &arp_request(5, ip(5), ip(2)));
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
    let (_, left) = c.send(1, &arp_request(5, ip(5), ip(6)));
    assert!(left.is_empty(), "{left:?}");
    let mut renew = msg(MessageType::Request, 8);
    renew.client_ip = ip(5);
    let (_, nak) = c.ask(1, &request(5, renew, ip(5), ip(2)));
    assert_eq!(nak.dhcp.message_type, MessageType::Nak);
    // (A second later: the port has sent its burst of three.)
    c.now += Duration::from_secs(1);
    let (_, offer) = c.ask(1, &discover(5));
    assert_eq!(offer.dhcp.your_ip, ip(50));
    let mut renew = msg(MessageType::Request, 9);
    renew.client_ip = ip(50);
    let (_, ack) = c.ask(1, &request(5, renew, ip(50), ip(2)));
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
    let mut c = Cloud::new();
    let mut release = msg(MessageType::Release, 1);
    release.client_ip = ip(5);
    release.server_identifier = Some(ip(2));
    let (answers, left) = c.send(1, &request(5, release, ip(5), ip(2)));
    assert_eq!(answers.len(), 1, "it reached the controller");
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(c.dhcp().stats.releases, 1);

    let mut inform = msg(MessageType::Inform, 2);
    inform.client_ip = ip(5);
    let (_, ack) = c.ask(1, &request(5, inform, ip(5), Ipv4Addr::BROADCAST));
    assert_eq!(ack.dhcp.message_type, MessageType::Ack);
    assert_eq!(ack.dhcp.your_ip, Ipv4Addr::UNSPECIFIED);
    assert_eq!(ack.dhcp.lease_time, None, "no lease for INFORM");
    assert_eq!(ack.dhcp.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(ack.ipv4.dst_addr, ip(5));
}

#[test]
fn enable_dhcp_false_means_no_answer_and_the_request_goes_on_as_a_broadcast() {
    let mut c = Cloud::new();
    put(&mut c.view, &subnet(false));
    c.recompile();
    let out = c.sw.process(1, &discover(5));
    assert!(out.to_controller.is_empty(), "{out}");
    assert!(
        out.trace
            .iter()
            .any(|s| s.table == table::DHCP && s.priority == 1),
        "through the DHCP table's default on to L2: {out}"
    );
    // Even a packet-in made up by hand gets no answer: there is no DHCP subnet.
    let pi = PacketIn {
        buffer_id: NO_BUFFER,
        total_len: 0,
        reason: 1,
        table_id: table::DHCP,
        cookie: Cookie {
            app: App::Dhcp,
            key: 5,
        }
        .encode(),
        match_: Match::new().in_port(1),
        data: discover(5),
    };
    let p = c.punt.handle(&c.view, &mut c.host, c.now, &pi);
    assert!(p.packets.is_empty());
    // And back on: answered again.
    put(&mut c.view, &subnet(true));
    c.recompile();
    let (_, offer) = c.ask(1, &discover(5));
    assert_eq!(offer.dhcp.message_type, MessageType::Offer);
}

#[test]
fn a_flooding_port_is_blocked_in_the_switch_and_others_are_still_answered() {
    let mut c = Cloud::new();
    c.dhcp().config.block = Duration::from_secs(100);
    let mut answered = 0;
    let mut blocks = Vec::new();
    for _ in 0..50 {
        let (answers, left) = c.send(1, &discover(5));
        answered += left.len();
        for a in answers {
            blocks.extend(a.flow_mods);
        }
    }
    assert_eq!(answered, 3, "the burst of the rate is answered");
    assert_eq!(blocks.len(), 1, "one drop flow, once");
    assert_eq!(blocks[0].hard_timeout, 100);
    assert_eq!(blocks[0].table_id, table::DHCP);
    assert_eq!(c.dhcp().stats.blocks, 1);
    // The drop flow keeps the flood in the switch: nothing reaches the controller.
    let out = c.sw.process(1, &discover(5));
    assert!(out.dropped(), "{out}");
    assert_eq!(c.dhcp().stats.rate_limited, 1);
    // The other port is served at once.
    let (port, offer) = c.ask(2, &discover(6));
    assert_eq!((port, offer.dhcp.your_ip), (2, ip(6)));
    // Once the block is over (the switch dropped the flow itself), the port is served.
    c.recompile();
    c.now += Duration::from_secs(101);
    let (_, offer) = c.ask(1, &discover(5));
    assert_eq!(offer.dhcp.your_ip, ip(5));
}

#[test]
fn malformed_requests_are_counted_and_nothing_a_vm_sends_panics() {
    let mut c = Cloud::new();
    c.dhcp().config.rate_limit = 0;
    let good = discover(5);
    let pi = |data: Vec<u8>| PacketIn {
        buffer_id: NO_BUFFER,
        total_len: data.len() as u16,
        reason: 1,
        table_id: table::DHCP,
        cookie: Cookie {
            app: App::Dhcp,
            key: 5,
        }
        .encode(),
        match_: Match::new().in_port(1),
        data,
    };
    // Truncated at every length.
    for n in 0..good.len() {
        let p = c
            .punt
            .handle(&c.view, &mut c.host, c.now, &pi(good[..n].to_vec()));
        assert!(p.packets.is_empty(), "truncated at {n}");
    }
    assert!(c.dhcp().stats.malformed >= good.len() as u64 - 1);
    // Random bytes and random corruptions of a good request.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..5000 {
        let mut f = good.clone();
        for _ in 0..1 + rnd() % 8 {
            let at = (rnd() as usize) % f.len();
            f[at] = rnd() as u8;
        }
        let _ = c.punt.handle(&c.view, &mut c.host, c.now, &pi(f));
        let len = (rnd() % 600) as usize;
        let junk: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        let _ = c.punt.handle(&c.view, &mut c.host, c.now, &pi(junk));
    }
    // A packet-in claiming another port's cookie but arriving by port 1 is not answered.
    let mut wrong = pi(discover(6));
    wrong.cookie = Cookie {
        app: App::Dhcp,
        key: 6,
    }
    .encode();
    assert!(
        c.punt
            .handle(&c.view, &mut c.host, c.now, &wrong)
            .packets
            .is_empty()
    );
    // Still answering.
    let p = c.punt.handle(&c.view, &mut c.host, c.now, &pi(good));
    assert_eq!(p.packets.len(), 1);
}

#[test]
fn only_the_networks_own_dhcp_port_is_the_server() {
    let mut c = Cloud::new();
    // Another project's port on the (shared) network calling itself a DHCP port, sorted
    // before the real one.
    let mut fake = port("0fake", 9, "", owner::DHCP);
    fake.meta.project_id = "q".into();
    put(&mut c.view, &fake);
    c.recompile();
    let (_, offer) = c.ask(1, &discover(5));
    assert_eq!(offer.dhcp.server_identifier, Some(ip(2)));
    assert_eq!(offer.ethernet.src_addr, EthernetAddress(mac(2).0));
}
