//! DHCPv6 on the fake switch: a VM's message goes through the pipeline to the controller
//! (and nowhere else), the responder's packet-out comes back out of the VM's port, and
//! what comes out is checked as the client would parse it: stateful (Solicit, Request,
//! Renew after an address change, Rebind, Confirm, Release, Decline, rapid commit) and
//! stateless (Information-request with DNS, domain list and extra options); no answer
//! where there is no DHCPv6 subnet; the flood guard; malformed input.

mod support;

use controller::apps::dhcpv6::responder::{Dhcpv6, Stats};
use controller::pipeline::{App, Cookie, table};
use model::{ExtraDhcpOpt, MacAddr, Network, Port, PortStatus, Subnet, fixtures, owner};
use openflow::flow::NO_BUFFER;
use openflow::oxm::Match;
use openflow::packet::PacketIn;
use packet::dhcpv6::{
    self, ALL_SERVERS, Dhcpv6Repr, IaAddress, IaNa, MessageType, ParsedFrame, status,
};
use packet::ethernet::{EtherType, EthernetRepr};
use packet::ipv6::Ipv6Repr;
use packet::udp::UdpRepr;
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;
use support::sim::Sim;

const DNS: &str = "2001:db8:53::1";

fn mac(n: u8) -> MacAddr {
    fixtures::mac(n.into())
}

fn v6(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n)
}

fn ll(n: u8) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b[0] = 0xfe;
    b[1] = 0x80;
    b[8..].copy_from_slice(&mac(n).eui64());
    Ipv6Addr::from(b)
}

fn port(id: &str, n: u8, ip: Option<Ipv6Addr>, device_owner: &str) -> Port {
    Port {
        fixed_ips: ip
            .map(|a| fixtures::fixed_ip("s", &a.to_string()))
            .into_iter()
            .collect(),
        port_security_enabled: device_owner.is_empty(),
        device_owner: device_owner.into(),
        status: PortStatus::Active,
        ..fixtures::port(id, "n", n.into(), "")
    }
}

fn subnet(mode: Option<&str>) -> Subnet {
    Subnet {
        ipv6_address_mode: mode.map(str::to_string),
        ipv6_ra_mode: mode.map(str::to_string),
        dns_nameservers: vec![DNS.parse().unwrap(), "192.0.2.53".parse().unwrap()],
        ..fixtures::subnet("s", "n", "2001:db8::/64")
    }
}

/// The network: subnet s (2001:db8::/64 in `mode`), DHCP port d (::2), VM ports a (::5,
/// OpenFlow port 1) and b (::6, port 2) plugged here, c (::7) elsewhere.
fn world(mode: &str) -> Sim {
    let mut sim = Sim::new("h", 0);
    sim.put(&Network {
        subnets: vec!["s".into()],
        ..fixtures::network("n", 9)
    });
    sim.put(&subnet(Some(mode)));
    sim.put(&port("d", 2, Some(v6(2)), owner::DHCP));
    for (id, n, ofport) in [("a", 5, 1), ("b", 6, 2)] {
        sim.put(&port(id, n, Some(v6(n.into())), ""));
        sim.plug(id, ofport);
    }
    let mut c = port("c", 7, Some(v6(7)), "");
    c.binding_host_id = "o".into();
    sim.put(&c);
    sim
}

fn stats(sim: &Sim) -> Stats {
    sim.handler::<Dhcpv6>().stats
}

/// The server's DUID-LL: the DHCP port's MAC.
fn server_duid() -> Vec<u8> {
    dhcpv6::duid_ll(EthernetAddress(mac(2).0))
}

/// A client message from port `n` (MAC fa:16:3e:00:00:n, its link-local address) to
/// ff02::1:2, UDP 546 → 547.
fn frame(n: u8, dhcp: &Dhcpv6Repr) -> Vec<u8> {
    let payload = dhcp.build();
    let (src, dst) = (ll(n), ALL_SERVERS);
    let udp = UdpRepr {
        src_port: 546,
        dst_port: 547,
        payload: &payload,
    }
    .build(&IpAddr::V6(src), &IpAddr::V6(dst));
    let ip = Ipv6Repr::new(src, dst, IpProtocol::Udp, 0, 1).build(&udp);
    EthernetRepr {
        src_addr: EthernetAddress(mac(n).0),
        dst_addr: EthernetAddress::ipv6_multicast(&dst),
        vlan: None,
        ethertype: EtherType::Ipv6,
    }
    .build(&ip)
}

/// A message of type `t` from client `n` (its DUID-LL), with one IA_NA (IAID 0x100 + n)
/// listing `addrs`.
fn msg(t: MessageType, n: u8, addrs: &[Ipv6Addr]) -> Dhcpv6Repr {
    let mut d = Dhcpv6Repr::new(t, 0x1000 + u32::from(n));
    d.client_id = Some(dhcpv6::duid_ll(EthernetAddress(mac(n).0)));
    d.elapsed_time = Some(0);
    d.oro = vec![23, 24];
    d.ia_na = vec![IaNa {
        iaid: 0x100 + u32::from(n),
        t1: 0,
        t2: 0,
        addresses: addrs
            .iter()
            .map(|a| IaAddress {
                addr: *a,
                preferred: 0,
                valid: 0,
                status: None,
            })
            .collect(),
        status: None,
    }];
    d
}

fn to_us(mut d: Dhcpv6Repr) -> Dhcpv6Repr {
    d.server_id = Some(server_duid());
    d
}

/// The one reply the message from port `ofport` gets, parsed, and the port it left by.
fn ask(sim: &mut Sim, ofport: u32, n: u8, d: &Dhcpv6Repr) -> (u32, ParsedFrame) {
    let sent = sim.send(ofport, &frame(n, d));
    let left = sent.frames();
    assert_eq!(sent.punted.len(), 1, "one packet-in: {left:?}");
    let [(port, reply)] = left.as_slice() else {
        panic!("one frame out, got {left:?}");
    };
    (*port, dhcpv6::parse_frame(reply).expect("the reply parses"))
}

/// Sends and expects no answer at all.
fn unanswered(sim: &mut Sim, ofport: u32, n: u8, d: &Dhcpv6Repr) {
    let sent = sim.send(ofport, &frame(n, d));
    assert!(sent.frames().is_empty(), "{:?}", sent.frames());
}

fn addrs_of(p: &ParsedFrame) -> Vec<(Ipv6Addr, u32)> {
    p.dhcp
        .ia_na
        .iter()
        .flat_map(|ia| ia.addresses.iter().map(|a| (a.addr, a.valid)))
        .collect()
}

#[test]
fn solicit_gets_an_advertise_of_the_neutron_address_and_request_a_reply() {
    let mut sim = world("dhcpv6-stateful");
    let (out, adv) = ask(&mut sim, 1, 5, &msg(MessageType::Solicit, 5, &[]));
    assert_eq!(out, 1, "back out of the VM's own port");
    assert_eq!(adv.dhcp.message_type, Some(MessageType::Advertise));
    assert_eq!(adv.dhcp.transaction_id, 0x1005);
    assert_eq!((adv.src_port, adv.dst_port), (547, 546));
    assert_eq!(
        adv.ethernet.src_addr,
        EthernetAddress(mac(2).0),
        "the DHCP port's MAC"
    );
    assert_eq!(adv.ethernet.dst_addr, EthernetAddress(mac(5).0));
    assert_eq!(
        adv.ipv6.src_addr,
        ll(2),
        "from the DHCP port's link-local address"
    );
    assert_eq!(adv.ipv6.dst_addr, ll(5), "to the client's");
    assert_eq!(adv.dhcp.server_id, Some(server_duid()));
    assert_eq!(
        adv.dhcp.client_id,
        Some(dhcpv6::duid_ll(EthernetAddress(mac(5).0))),
        "the client id echoed"
    );
    assert_eq!(adv.dhcp.preference, Some(255));
    let [ia] = adv.dhcp.ia_na.as_slice() else {
        panic!("{:?}", adv.dhcp.ia_na);
    };
    assert_eq!(ia.iaid, 0x105, "the IAID echoed");
    assert_eq!((ia.t1, ia.t2), (43_200, 69_120));
    assert_eq!(ia.addresses.len(), 1);
    assert_eq!(ia.addresses[0].addr, v6(5), "exactly the Neutron address");
    assert_eq!(
        (ia.addresses[0].preferred, ia.addresses[0].valid),
        (86_400, 172_800)
    );
    assert_eq!(adv.dhcp.dns_servers, [DNS.parse::<Ipv6Addr>().unwrap()]);
    assert_eq!(adv.dhcp.domain_list, ["openstacklocal"]);
    // No dns_name: the address's default name, under the domain (RFC 4704's option).
    let name = adv
        .dhcp
        .client_fqdn
        .as_ref()
        .expect("the Client FQDN option");
    assert_eq!(
        name.name,
        format!(
            "{}.openstacklocal.",
            model::dns::default_hostname(v6(5).into())
        )
    );
    assert_eq!(name.flags, dhcpv6::fqdn_flag::S);

    let (_, reply) = ask(
        &mut sim,
        1,
        5,
        &to_us(msg(MessageType::Request, 5, &[v6(5)])),
    );
    assert_eq!(reply.dhcp.message_type, Some(MessageType::Reply));
    assert_eq!(addrs_of(&reply), [(v6(5), 172_800)]);
    assert_eq!((stats(&sim).advertises, stats(&sim).replies), (1, 1));

    // The other local port gets its own address.
    let (out, adv) = ask(&mut sim, 2, 6, &msg(MessageType::Solicit, 6, &[]));
    assert_eq!((out, addrs_of(&adv)), (2, vec![(v6(6), 172_800)]));
}

#[test]
fn messages_for_another_server_or_without_identifiers_are_ignored() {
    let mut sim = world("dhcpv6-stateful");
    let mut other = msg(MessageType::Request, 5, &[v6(5)]);
    other.server_id = Some(vec![0, 3, 0, 1, 9, 9, 9, 9, 9, 9]);
    unanswered(&mut sim, 1, 5, &other);
    unanswered(&mut sim, 1, 5, &msg(MessageType::Request, 5, &[v6(5)]));
    sim.wait(Duration::from_secs(1));
    let mut anonymous = msg(MessageType::Solicit, 5, &[]);
    anonymous.client_id = None;
    unanswered(&mut sim, 1, 5, &anonymous);
    unanswered(&mut sim, 1, 5, &to_us(msg(MessageType::Solicit, 5, &[])));
    sim.wait(Duration::from_secs(1));
    let mut info = Dhcpv6Repr::new(MessageType::InformationRequest, 1);
    info.server_id = other.server_id.clone();
    unanswered(&mut sim, 1, 5, &info);
    assert_eq!(stats(&sim).ignored, 5);
    assert_eq!(stats(&sim).replies + stats(&sim).advertises, 0);
}

#[test]
fn a_changed_address_is_given_at_renew_and_the_old_one_expires() {
    let mut sim = world("dhcpv6-stateful");
    let mut a = port("a", 5, Some(v6(0x50)), "");
    a.binding_host_id = "h".into();
    sim.put(&a);
    let (_, reply) = ask(&mut sim, 1, 5, &to_us(msg(MessageType::Renew, 5, &[v6(5)])));
    assert_eq!(reply.dhcp.message_type, Some(MessageType::Reply));
    assert_eq!(
        addrs_of(&reply),
        [(v6(0x50), 172_800), (v6(5), 0)],
        "the new address, and the old one with lifetimes 0"
    );
    // Rebind (to any server): the same.
    let (_, reply) = ask(&mut sim, 1, 5, &msg(MessageType::Rebind, 5, &[v6(5)]));
    assert_eq!(addrs_of(&reply), [(v6(0x50), 172_800), (v6(5), 0)]);
    // Confirm: the address is on the link (it is the subnet's), or not.
    let (_, reply) = ask(&mut sim, 1, 5, &msg(MessageType::Confirm, 5, &[v6(0x50)]));
    assert_eq!(reply.dhcp.status.unwrap().code, status::SUCCESS);
    sim.wait(Duration::from_secs(1));
    let elsewhere: Ipv6Addr = "2001:db8:ffff::1".parse().unwrap();
    let (_, reply) = ask(&mut sim, 1, 5, &msg(MessageType::Confirm, 5, &[elsewhere]));
    assert_eq!(reply.dhcp.status.unwrap().code, status::NOT_ON_LINK);

    // The port loses its address on the subnet: a Renew is told NoBinding, a Rebind gets
    // its addresses back with lifetimes 0.
    let mut a = port("a", 5, None, "");
    a.binding_host_id = "h".into();
    sim.put(&a);
    let (_, reply) = ask(
        &mut sim,
        1,
        5,
        &to_us(msg(MessageType::Renew, 5, &[v6(0x50)])),
    );
    let ia = &reply.dhcp.ia_na[0];
    assert!(ia.addresses.is_empty());
    assert_eq!(ia.status.as_ref().unwrap().code, status::NO_BINDING);
    sim.wait(Duration::from_secs(1));
    let (_, reply) = ask(&mut sim, 1, 5, &msg(MessageType::Rebind, 5, &[v6(0x50)]));
    assert_eq!(addrs_of(&reply), [(v6(0x50), 0)]);
    // A Solicit now: nothing to assign.
    let (_, adv) = ask(&mut sim, 1, 5, &msg(MessageType::Solicit, 5, &[]));
    assert!(adv.dhcp.ia_na.is_empty());
    assert_eq!(adv.dhcp.status.unwrap().code, status::NO_ADDRS_AVAIL);
}

#[test]
fn release_decline_and_rapid_commit() {
    let mut sim = world("dhcpv6-stateful");
    for (t, n) in [(MessageType::Release, 1), (MessageType::Decline, 2)] {
        let (_, reply) = ask(&mut sim, 1, 5, &to_us(msg(t, 5, &[v6(5)])));
        assert_eq!(reply.dhcp.message_type, Some(MessageType::Reply));
        assert_eq!(reply.dhcp.status.unwrap().code, status::SUCCESS);
        assert_eq!(stats(&sim).releases + stats(&sim).declines, n);
    }
    let mut rapid = msg(MessageType::Solicit, 5, &[]);
    rapid.rapid_commit = true;
    let (_, reply) = ask(&mut sim, 1, 5, &rapid);
    assert_eq!(reply.dhcp.message_type, Some(MessageType::Reply));
    assert!(reply.dhcp.rapid_commit);
    assert_eq!(addrs_of(&reply), [(v6(5), 172_800)]);
}

#[test]
fn stateless_information_request_gets_dns_domain_and_extra_options() {
    let mut sim = world("dhcpv6-stateless");
    let mut a = port("a", 5, Some(v6(5)), "");
    a.binding_host_id = "h".into();
    a.dns_name = "web".into();
    a.extra_dhcp_opts = vec![
        ExtraDhcpOpt {
            opt_name: "option6:ntp-server".into(),
            opt_value: "[2001:db8::123]".into(),
            ip_version: 6,
        },
        ExtraDhcpOpt {
            opt_name: "domain-search".into(),
            opt_value: "example.org,openstacklocal".into(),
            ip_version: 6,
        },
        ExtraDhcpOpt {
            opt_name: "dns-server".into(),
            opt_value: "192.0.2.1".into(),
            ip_version: 4,
        },
        // Never: the server alone writes its identity and the IAs.
        ExtraDhcpOpt {
            opt_name: "2".into(),
            opt_value: "x".into(),
            ip_version: 6,
        },
        ExtraDhcpOpt {
            opt_name: "12".into(),
            opt_value: "2001:db8::66".into(),
            ip_version: 6,
        },
    ];
    sim.put(&a);
    let mut info = Dhcpv6Repr::new(MessageType::InformationRequest, 0x77);
    info.client_id = Some(vec![0, 3, 0, 1, 1, 2, 3, 4, 5, 6]);
    info.oro = vec![23, 24, 56];
    let (_, reply) = ask(&mut sim, 1, 5, &info);
    let d = &reply.dhcp;
    assert_eq!(d.message_type, Some(MessageType::Reply));
    assert_eq!(d.transaction_id, 0x77);
    assert!(d.ia_na.is_empty());
    assert_eq!(d.dns_servers, [DNS.parse::<Ipv6Addr>().unwrap()]);
    assert_eq!(d.domain_list, ["example.org", "openstacklocal"]);
    assert_eq!(
        d.client_fqdn.as_ref().map(|f| f.name.as_str()),
        Some("web.openstacklocal."),
        "the port's dns_name"
    );
    let mut ntp = vec![0, 1, 0, 16];
    ntp.extend_from_slice(&"2001:db8::123".parse::<Ipv6Addr>().unwrap().octets());
    assert_eq!(
        d.other_options,
        [(56, ntp)],
        "only the understood extra option"
    );
    assert_eq!(d.server_id, Some(server_duid()));

    // An Information-request holding an IA is dropped; one naming us is answered.
    unanswered(
        &mut sim,
        1,
        5,
        &msg(MessageType::InformationRequest, 5, &[]),
    );
    sim.wait(Duration::from_secs(1));
    let (_, reply) = ask(&mut sim, 1, 5, &to_us(info.clone()));
    assert_eq!(reply.dhcp.message_type, Some(MessageType::Reply));
    // A stateless subnet has no address to give by DHCPv6.
    let (_, adv) = ask(&mut sim, 1, 5, &msg(MessageType::Solicit, 5, &[]));
    assert_eq!(adv.dhcp.status.unwrap().code, status::NO_ADDRS_AVAIL);
}

#[test]
fn no_dhcpv6_subnet_means_no_punt_and_the_message_goes_on() {
    for mode in [None, Some("slaac")] {
        let mut sim = world("dhcpv6-stateful");
        sim.put(&subnet(mode));
        let out = sim
            .send(1, &frame(5, &msg(MessageType::Solicit, 5, &[])))
            .outcome;
        assert!(out.to_controller.is_empty(), "{mode:?}: {out}");
        assert!(
            out.trace
                .iter()
                .any(|s| s.table == table::DHCPV6 && s.priority == 1),
            "through the DHCPv6 table's default on to L2: {out}"
        );
    }
    // DHCP off on a stateful subnet: the same.
    let mut sim = world("dhcpv6-stateful");
    let mut s = subnet(Some("dhcpv6-stateful"));
    s.enable_dhcp = false;
    sim.put(&s);
    let out = sim
        .send(1, &frame(5, &msg(MessageType::Solicit, 5, &[])))
        .outcome;
    assert!(out.to_controller.is_empty(), "{out}");
    // No DHCP port: punted, but no server to answer as.
    let mut sim = world("dhcpv6-stateful");
    sim.delete(model::Table::Port, "d");
    unanswered(&mut sim, 1, 5, &msg(MessageType::Solicit, 5, &[]));
}

#[test]
fn a_flooding_port_is_blocked_in_table_31_and_others_are_still_answered() {
    let mut sim = world("dhcpv6-stateful");
    sim.handler_mut::<Dhcpv6>().config.block = Duration::from_secs(100);
    let solicit = frame(5, &msg(MessageType::Solicit, 5, &[]));
    let mut answered = 0;
    let mut blocks = Vec::new();
    for _ in 0..50 {
        let sent = sim.send(1, &solicit);
        answered += sent.frames().len();
        for a in sent.punted {
            blocks.extend(a.flow_mods);
        }
    }
    assert_eq!(answered, 3, "the burst of the rate is answered");
    assert_eq!(blocks.len(), 1, "one drop flow, once");
    assert_eq!(blocks[0].table_id, table::DHCPV6);
    assert_eq!(blocks[0].hard_timeout, 100);
    assert_eq!(stats(&sim).blocks, 1);
    let out = sim.send(1, &solicit).outcome;
    assert!(out.dropped(), "kept in the switch: {out}");
    let (out, _) = ask(&mut sim, 2, 6, &msg(MessageType::Solicit, 6, &[]));
    assert_eq!(out, 2, "the other port is served at once");
    sim.wait(Duration::from_secs(101));
    ask(&mut sim, 1, 5, &msg(MessageType::Solicit, 5, &[]));
}

fn packet_in(key: u32, data: Vec<u8>) -> PacketIn {
    PacketIn {
        buffer_id: NO_BUFFER,
        total_len: data.len() as u16,
        reason: 1,
        table_id: table::DHCPV6,
        cookie: Cookie {
            app: App::Dhcpv6,
            key,
        }
        .encode(),
        match_: Match::new().in_port(1),
        data,
    }
}

#[test]
fn malformed_messages_are_counted_and_nothing_a_vm_sends_panics() {
    let mut sim = world("dhcpv6-stateful");
    sim.handler_mut::<Dhcpv6>().config.rate_limit = 0;
    let good = frame(5, &msg(MessageType::Solicit, 5, &[]));
    for n in 0..good.len() {
        let p = sim.packet_in(packet_in(5, good[..n].to_vec()));
        assert!(p.packets.is_empty(), "truncated at {n}");
    }
    assert!(stats(&sim).malformed >= good.len() as u64 - 1);
    let mut rnd = support::rng();
    for _ in 0..5000 {
        let mut f = good.clone();
        for _ in 0..1 + rnd() % 8 {
            let at = (rnd() as usize) % f.len();
            f[at] = rnd() as u8;
        }
        sim.packet_in(packet_in(5, f));
        let len = (rnd() % 400) as usize;
        let junk: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        sim.packet_in(packet_in(5, junk));
    }
    // Another port's cookie arriving by port 1 is not answered.
    assert!(sim.packet_in(packet_in(6, good.clone())).packets.is_empty());
    assert_eq!(
        sim.packet_in(packet_in(5, good)).packets.len(),
        1,
        "still answering"
    );
}

#[test]
fn dhcpv6_server_traffic_from_a_port_without_port_security_does_not_reach_filtered_ports() {
    let mut sim = world("dhcpv6-stateful");
    support::put_open_group(&mut sim);
    let mut a = support::open_port("a", 5, "h");
    a.fixed_ips = vec![fixtures::fixed_ip("s", &v6(5).to_string())];
    a.network_id = "n".into();
    sim.put(&a);
    let mut rogue = port("r", 8, Some(v6(8)), "");
    rogue.port_security_enabled = false;
    sim.put(&rogue);
    sim.plug("r", 3);
    let mut adv = Dhcpv6Repr::new(MessageType::Advertise, 1);
    adv.server_id = Some(vec![0, 3, 0, 1, 6, 6, 6, 6, 6, 6]);
    let rogue_frame = dhcpv6::reply_frame(
        &adv,
        (EthernetAddress(mac(8).0), ll(8)),
        (EthernetAddress(mac(5).0), ll(5)),
        None,
    );
    let out = sim.send(3, &rogue_frame).outcome;
    assert!(
        out.outputs.iter().all(|o| o.port != 1),
        "the rogue server reached the filtered port: {out}"
    );
    assert!(
        out.trace
            .iter()
            .any(|s| s.table == table::INGRESS_CT && s.priority == 205),
        "dropped by the DHCPv6 server rule: {out}"
    );
}
