//! Trunk ports on the fake switch: a VM's tagged frames become its subports' (their
//! networks, their port security), untagged ones stay the parent's, and everything sent
//! to a subport leaves by the parent's port with the subport's tag: frames from local
//! and remote ports, ARP answers made in the switch, DHCP replies from the controller.
//! Subports report ACTIVE with the parent; removing one takes away every flow of it.

mod support;

use controller::apps::Settings;
use model::{Direction, MacAddr, Network, Port, PortStatus, SubPort, Trunk, fixtures, owner};
use packet::dhcpv4::{self, DhcpRepr, MessageType, Op};
use packet::ethernet::{EtherType, EthernetRepr, VlanTag};
use packet::ipv4::Ipv4Repr;
use packet::udp::UdpRepr;
use packet::{EthernetAddress, IpProtocol};
use std::net::{IpAddr, Ipv4Addr};
use support::sim::Sim;

/// OpenFlow ports: the trunk VM's interface, a VM on the first subport's network, the
/// tunnel.
const PARENT: u32 = 1;
const NEIGHBOUR: u32 = 2;
const TUNNEL: u32 = 100;

fn mac(n: u8) -> MacAddr {
    MacAddr([0xfa, 0x16, 0x3e, 0, 0, n])
}

/// Network `n` (key n) with subnet `s<n>` 10.n.0.0/24, DHCP on, its DHCP port at .2.
fn network(sim: &mut Sim, n: u8) {
    let id = format!("n{n}");
    sim.put(&Network {
        subnets: vec![format!("s{n}")],
        ..fixtures::network(&id, n.into())
    });
    sim.put(&fixtures::subnet(
        &format!("s{n}"),
        &id,
        &format!("10.{n}.0.0/24"),
    ));
    sim.put(&Port {
        fixed_ips: vec![fixtures::fixed_ip(&format!("s{n}"), &format!("10.{n}.0.2"))],
        device_owner: owner::DHCP.into(),
        port_security_enabled: false,
        ..fixtures::port(&format!("dhcp{n}"), &id, u32::from(n) * 10 + 2, "")
    });
}

/// Port `id` on network `n` with address 10.n.0.`host` and MAC fa:16:3e:00:00:`m`.
fn port(id: &str, n: u8, host_octet: u8, m: u8, host: &str) -> Port {
    Port {
        mac_address: mac(m),
        fixed_ips: vec![fixtures::fixed_ip(
            &format!("s{n}"),
            &format!("10.{n}.0.{host_octet}"),
        )],
        status: PortStatus::Down,
        security_groups: vec!["open".into()],
        ..fixtures::port(id, &format!("n{n}"), m.into(), host)
    }
}

/// Subport `id` as the API leaves it in a trunk: marked `trunk:subport`.
fn subport(id: &str, n: u8, host_octet: u8, m: u8) -> Port {
    Port {
        device_owner: model::trunk::SUBPORT_OWNER.into(),
        ..port(id, n, host_octet, m, "")
    }
}

fn sub(id: &str, vid: u32, n: u8) -> SubPort {
    SubPort {
        port_id: id.into(),
        segmentation_type: "vlan".into(),
        segmentation_id: vid,
        network_id: format!("n{n}"),
    }
}

fn trunk(subs: Vec<SubPort>) -> Trunk {
    Trunk {
        meta: fixtures::meta("t"),
        admin_state_up: true,
        port_id: "p".into(),
        network_id: "n1".into(),
        sub_ports: subs,
    }
}

/// The trunk VM's parent `p` on n1 (plugged at [`PARENT`]), subports `s2` (VLAN 101, n2)
/// and `s3` (VLAN 102, n3); on n2 a local neighbour `l2` and a remote `r2` on host `o`.
fn world() -> Sim {
    let mut sim = Sim::with("h", TUNNEL, &[], &Settings::default());
    sim.chassis("o", "192.0.2.2");
    sim.put(&fixtures::security_group("open"));
    sim.put(&fixtures::security_group_rule(
        "in",
        "open",
        Direction::Ingress,
    ));
    sim.put(&fixtures::security_group_rule(
        "out",
        "open",
        Direction::Egress,
    ));
    for n in 1..=3 {
        network(&mut sim, n);
    }
    sim.put(&port("p", 1, 5, 1, ""));
    sim.put(&subport("s2", 2, 5, 2));
    sim.put(&subport("s3", 3, 5, 3));
    sim.put(&port("l2", 2, 6, 4, ""));
    sim.put(&port("r2", 2, 7, 5, "o"));
    sim.put(&trunk(vec![sub("s2", 101, 2), sub("s3", 102, 3)]));
    sim.plug("p", PARENT);
    sim.plug("l2", NEIGHBOUR);
    sim
}

fn tag(vid: u16) -> Option<VlanTag> {
    Some(VlanTag {
        pcp: 0,
        dei: false,
        vid,
    })
}

/// A UDP frame from `src` (MAC m, address) to `dst`, with an optional tag.
fn udp(vlan: Option<VlanTag>, (sm, sip): (u8, Ipv4Addr), (dm, dip): (u8, Ipv4Addr)) -> Vec<u8> {
    let udp = UdpRepr {
        src_port: 4000,
        dst_port: 5000,
        payload: b"trunk",
    }
    .build(&IpAddr::V4(sip), &IpAddr::V4(dip));
    let ip = Ipv4Repr::new(sip, dip, IpProtocol::Udp, udp.len()).build(&udp);
    EthernetRepr {
        src_addr: EthernetAddress(mac(sm).0),
        dst_addr: EthernetAddress(mac(dm).0),
        vlan,
        ethertype: EtherType::Ipv4,
    }
    .build(&ip)
}

fn ip(n: u8, h: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, n, 0, h)
}

/// The frame's VLAN id, if tagged.
fn vid_of(frame: &[u8]) -> Option<u16> {
    let eth = packet::ethernet::Frame::new_checked(frame).ok()?;
    EthernetRepr::parse(&eth).ok()?.vlan.map(|v| v.vid)
}

#[test]
fn tagged_frames_are_the_subports_and_come_back_tagged() {
    let mut sim = world();
    // Subport s2 (VLAN 101) to its local neighbour: untagged at the neighbour.
    let out = sim.send(PARENT, &udp(tag(101), (2, ip(2, 5)), (4, ip(2, 6))));
    let frames = out.frames();
    assert_eq!(frames.len(), 1, "{:?}", out.outcome.log);
    assert_eq!(frames[0].0, NEIGHBOUR);
    assert_eq!(vid_of(&frames[0].1), None);
    // And back: tagged 101, out of the parent's port.
    let out = sim.send(NEIGHBOUR, &udp(None, (4, ip(2, 6)), (2, ip(2, 5))));
    let frames = out.frames();
    assert_eq!(frames.len(), 1, "{:?}", out.outcome.log);
    assert_eq!((frames[0].0, vid_of(&frames[0].1)), (PARENT, Some(101)));
    // To the remote port on n2: into the tunnel with n2's VNI.
    let out = sim.send(PARENT, &udp(tag(101), (2, ip(2, 5)), (5, ip(2, 7))));
    assert_eq!(out.outcome.ports(), [TUNNEL], "{:?}", out.outcome.log);
    assert_eq!(out.outcome.outputs[0].tun_id, 2);
    // The subport's port security: another address on VLAN 101 is dropped.
    let out = sim.send(PARENT, &udp(tag(101), (2, ip(2, 99)), (4, ip(2, 6))));
    assert!(out.outcome.dropped(), "{:?}", out.outcome.log);
    // The parent's MAC on VLAN 101 is not s2's either.
    let out = sim.send(PARENT, &udp(tag(101), (1, ip(2, 5)), (4, ip(2, 6))));
    assert!(out.outcome.dropped(), "{:?}", out.outcome.log);
    // An unknown VLAN is dropped; untagged frames are the parent's (n1: not n2's ports).
    let out = sim.send(PARENT, &udp(tag(999), (2, ip(2, 5)), (4, ip(2, 6))));
    assert!(out.outcome.dropped(), "{:?}", out.outcome.log);
    let out = sim.send(PARENT, &udp(None, (1, ip(1, 5)), (4, ip(2, 6))));
    assert!(
        !out.frames().iter().any(|(p, _)| *p == NEIGHBOUR),
        "the parent's frames stay on n1: {:?}",
        out.outcome.log
    );
}

#[test]
fn answers_to_a_subport_are_tagged() {
    let mut sim = world();
    // ARP: s2 asks on VLAN 101 for its neighbour's address; the switch answers.
    let req = packet::arp::ArpRepr {
        operation: packet::arp::Operation::Request,
        source_hardware_addr: EthernetAddress(mac(2).0),
        source_protocol_addr: ip(2, 5),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: ip(2, 6),
    };
    let mut body = vec![0u8; req.buffer_len()];
    req.emit(&mut packet::arp::Packet::new_unchecked(&mut body[..]));
    let frame = EthernetRepr {
        src_addr: EthernetAddress(mac(2).0),
        dst_addr: EthernetAddress::BROADCAST,
        vlan: tag(101),
        ethertype: EtherType::Arp,
    }
    .build(&body);
    let out = sim.send(PARENT, &frame);
    let frames = out.frames();
    assert_eq!(
        frames.len(),
        1,
        "answered in the switch: {:?}",
        out.outcome.log
    );
    assert_eq!((frames[0].0, vid_of(&frames[0].1)), (PARENT, Some(101)));

    // DHCP from s3 (VLAN 102): the controller's offer goes back tagged 102, from n3's
    // DHCP port, with s3's address.
    let mut d = DhcpRepr::new(
        Op::Request,
        MessageType::Discover,
        7,
        EthernetAddress(mac(3).0),
    );
    d.parameter_request_list = Some(vec![1, 3, 6]);
    let payload = d.build();
    let (src, dst) = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);
    let u = UdpRepr {
        src_port: 68,
        dst_port: 67,
        payload: &payload,
    }
    .build(&IpAddr::V4(src), &IpAddr::V4(dst));
    let ip4 = Ipv4Repr::new(src, dst, IpProtocol::Udp, u.len()).build(&u);
    let frame = EthernetRepr {
        src_addr: EthernetAddress(mac(3).0),
        dst_addr: EthernetAddress::BROADCAST,
        vlan: tag(102),
        ethertype: EtherType::Ipv4,
    }
    .build(&ip4);
    let out = sim.send(PARENT, &frame);
    let answers: Vec<_> = out.answers.iter().flat_map(|a| &a.outputs).collect();
    assert_eq!(answers.len(), 1, "{:?}", out.outcome.log);
    assert_eq!(answers[0].port, PARENT);
    assert_eq!(vid_of(&answers[0].frame), Some(102));
    let offer = dhcpv4::parse_frame(&answers[0].frame).expect("a DHCP reply");
    assert_eq!(offer.dhcp.message_type, MessageType::Offer);
    assert_eq!(offer.dhcp.your_ip, ip(3, 5));
    assert_eq!(offer.ipv4.src_addr, ip(3, 2), "from n3's DHCP port");
}

#[test]
fn subports_are_active_and_bound_with_their_parent() {
    let mut sim = world();
    for id in ["p", "s2", "s3"] {
        assert!(
            sim.reports.contains(&(id.to_string(), PortStatus::Active)),
            "{id}: {:?}",
            sim.reports
        );
        assert_eq!(sim.core.view().ports[id].binding_host_id, "h", "{id}");
    }
    // The parent gone, its subports are DOWN.
    sim.unplug("p");
    for id in ["s2", "s3"] {
        assert_eq!(
            sim.reports.iter().rev().find(|(p, _)| p == id).map(|r| r.1),
            Some(PortStatus::Down),
            "{id}"
        );
    }
}

#[test]
fn a_removed_subport_leaves_no_flow_behind() {
    let mut sim = world();
    let before = sim.switch.dump();
    let groups_before = format!("{:?}", sim.switch.groups());
    // s4 (VLAN 103) on a fourth network joins, and leaves again as the API leaves it:
    // no longer a subport, unbound.
    network(&mut sim, 4);
    sim.put(&subport("s4", 4, 5, 6));
    sim.put(&trunk(vec![
        sub("s2", 101, 2),
        sub("s3", 102, 3),
        sub("s4", 103, 4),
    ]));
    let during = sim.switch.dump();
    assert_ne!(during, before);
    let out = sim.send(PARENT, &udp(tag(103), (6, ip(4, 5)), (0xff, ip(4, 9))));
    assert!(
        out.outcome.tables().contains(&1),
        "VLAN 103 is s4's: {:?}",
        out.outcome.log
    );
    // The API's transaction unbinds s4 with the trunk change; the stream brings the trunk
    // first, so the host still sees s4 bound here and reports it DOWN: old news, which
    // must not bind it back (the host would then follow its network for ever).
    let unbound = sim.write(&Port {
        status: PortStatus::Down,
        ..port("s4", 4, 5, 6, "")
    });
    sim.put(&trunk(vec![sub("s2", 101, 2), sub("s3", 102, 3)]));
    assert_eq!(
        sim.reports.last(),
        Some(&("s4".to_string(), PortStatus::Down))
    );
    sim.stream(unbound);
    let stored = sim.stored_port("s4").expect("s4");
    assert_eq!(
        stored.binding_host_id, "",
        "the DOWN report did not bind it back"
    );
    let after = sim.switch.dump();
    assert_eq!(after, before, "every flow of s4 is gone");
    assert_eq!(format!("{:?}", sim.switch.groups()), groups_before);
    let out = sim.send(PARENT, &udp(tag(103), (6, ip(4, 5)), (0xff, ip(4, 9))));
    assert!(
        out.outcome.dropped() && !out.outcome.tables().contains(&1),
        "missed in table 0: {:?}",
        out.outcome.log
    );
}

#[test]
fn flows_per_subport() {
    // The figure docs/benchmarks.md quotes: what one more subport (port security on, one
    // open security group, DHCP on its network, the network already on the host) adds.
    let mut sim = world();
    let lines = |sim: &Sim| -> std::collections::BTreeSet<String> {
        sim.switch.dump().lines().map(str::to_string).collect()
    };
    let before = lines(&sim);
    sim.put(&subport("s5", 2, 8, 7));
    sim.put(&trunk(vec![
        sub("s2", 101, 2),
        sub("s3", 102, 3),
        sub("s5", 104, 2),
    ]));
    let after = lines(&sim);
    let added: Vec<&String> = after.difference(&before).collect();
    let mut by_table = std::collections::BTreeMap::<u8, usize>::new();
    for l in &added {
        let t = l["table=".len()..]
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        *by_table.entry(t).or_default() += 1;
    }
    println!(
        "flows per trunk subport: {} by table {by_table:?}",
        added.len()
    );
    assert!(
        before.difference(&after).next().is_none(),
        "nothing else changed"
    );
    // The trunk's own: classify, egress, dispatch ×3, reply.
    let app = |l: &str| {
        let c = l.split("cookie=0x").nth(1)?.split([',', ' ']).next()?;
        u64::from_str_radix(c, 16).ok().map(|c| c >> 56)
    };
    let trunk_app = added
        .iter()
        .filter(|l| app(l) == Some(controller::pipeline::App::Trunk as u64))
        .count();
    assert_eq!(trunk_app, 6, "{added:#?}");
    assert_eq!(added.len(), 21, "{added:#?}");
    // Beside it, an access port of the same kind on the same network.
    sim.put(&port("a6", 2, 9, 8, ""));
    sim.plug("a6", 9);
    let access = lines(&sim).difference(&after).count();
    println!("flows per access port, the same way: {access}");
    assert_eq!(
        access,
        added.len() - 6 + 3,
        "classify's 3 instead of the trunk app's 6"
    );
}
