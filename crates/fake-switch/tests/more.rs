//! More behaviour: DNAT (floating IP), related ICMP errors, packet-out, check_overlap,
//! two hosts over a tunnel, readable dumps, exit and clear_actions.

mod common;

use common::*;
use fake_switch::{Error, Network, Packet, Switch};
use openflow::action::port;
use openflow::flow::{FlowMod, flow_flags};
use openflow::nx::{Ct, CtZone, Nat, nat_flags};
use openflow::oxm::ct_state;
use openflow::packet::PacketOut;
use openflow::{Action, Field, Instruction, Match};

fn flow(table: u8, prio: u16, m: Match, ins: Vec<Instruction>) -> FlowMod {
    FlowMod {
        match_: m,
        instructions: ins,
        ..FlowMod::add(table, prio)
    }
}

fn apply(a: Vec<Action>) -> Instruction {
    Instruction::ApplyActions(a)
}

fn ct(commit: bool, table: u8, actions: Vec<Action>) -> Action {
    Action::Ct(Ct {
        flags: u16::from(commit),
        zone: CtZone::Imm(3),
        recirc_table: table,
        actions,
        ..Ct::default()
    })
}

#[test]
fn dnat_floating_ip_both_directions() {
    let fip = ip(172, 24, 4, 100);
    let fixed = ip(10, 0, 0, 5);
    let nat = Nat {
        flags: nat_flags::DST,
        addr_min: Some(fixed.into()),
        ..Nat::default()
    };
    let mut sw = Switch::new();
    for fm in [
        // From outside (port 1) to the floating IP: DNAT to the fixed IP.
        flow(
            0,
            100,
            Match::new().in_port(1).eth_type(0x0800).ipv4_dst(fip),
            vec![apply(vec![ct(true, 1, vec![Action::Nat(nat)])])],
        ),
        // From the VM (port 2): un-NAT the replies.
        flow(
            0,
            100,
            Match::new().in_port(2).eth_type(0x0800),
            vec![apply(vec![ct(false, 1, vec![Action::Nat(Nat::default())])])],
        ),
        flow(
            1,
            100,
            Match::new().in_port(1),
            vec![apply(vec![Action::output(2)])],
        ),
        flow(
            1,
            100,
            Match::new().in_port(2),
            vec![apply(vec![Action::output(1)])],
        ),
    ] {
        sw.apply_flow_mod(&fm).unwrap();
    }
    let client = ip(203, 0, 113, 9);
    let out = sw.process(1, &tcp_frame(mac(2), mac(1), client, fip, 40000, 22, 0x02));
    let o = out.single().unwrap_or_else(|| panic!("{out}"));
    assert_eq!(&o.frame[30..34], &fixed.octets());
    assert_ne!(o.packet.ct_state & ct_state::DNAT, 0);
    assert!(checksums_ok(&o.frame));
    let out = sw.process(
        2,
        &tcp_frame(mac(1), mac(2), fixed, client, 22, 40000, 0x12),
    );
    let o = out.single().unwrap_or_else(|| panic!("{out}"));
    assert_eq!(&o.frame[26..30], &fip.octets());
    assert!(checksums_ok(&o.frame));
    let est = ct_state::TRK | ct_state::EST | ct_state::RPL;
    assert_eq!(o.packet.ct_state & est, est);
    // ct_nw_* / ct_tp_* give the connection's original tuple.
    assert_eq!(
        o.packet.get(Field::CtNwSrc),
        Some(u128::from(u32::from(client)))
    );
    assert_eq!(
        o.packet.get(Field::CtNwDst),
        Some(u128::from(u32::from(fip)))
    );
    assert_eq!(o.packet.get(Field::CtNwProto), Some(6));
    assert_eq!(o.packet.get(Field::CtTpDst), Some(22));
    assert_eq!(o.packet.get(Field::CtIpv6Src), None);
}

#[test]
fn icmp_error_about_a_connection_is_related() {
    let mut sw = Switch::new();
    sw.apply_flow_mod(&flow(
        0,
        100,
        Match::new().eth_type(0x0800),
        vec![apply(vec![ct(false, 1, vec![])])],
    ))
    .unwrap();
    sw.apply_flow_mod(&flow(
        1,
        100,
        Match::new().ct_state(ct_state::NEW, ct_state::NEW),
        vec![apply(vec![ct(true, 255, vec![]), Action::output(2)])],
    ))
    .unwrap();
    sw.apply_flow_mod(&flow(
        1,
        100,
        Match::new().ct_state(ct_state::REL, ct_state::REL),
        vec![apply(vec![Action::output(9)])],
    ))
    .unwrap();
    let a = ip(10, 0, 0, 1);
    let b = ip(10, 0, 0, 2);
    let udp = udp_frame(mac(2), mac(1), a, b, 1111, 53, 64);
    assert_eq!(sw.process(1, &udp).ports(), vec![2]);
    // Port unreachable from b, quoting the datagram.
    let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&udp[14..]);
    let err = eth(mac(1), mac(2), 0x0800, &ipv4(b, a, 1, 64, &icmp));
    let out = sw.process(2, &err);
    assert_eq!(out.ports(), vec![9], "{out}");
}

#[test]
fn packet_out_to_table_runs_the_pipeline() {
    let mut sw = Switch::new();
    sw.apply_flow_mod(&flow(
        0,
        1,
        Match::new().in_port(port::CONTROLLER),
        vec![apply(vec![Action::output(4)])],
    ))
    .unwrap();
    let f = arp_request(mac(1), ip(10, 0, 0, 1), ip(10, 0, 0, 2));
    let out = sw.packet_out(&PacketOut {
        buffer_id: 0xffff_ffff,
        in_port: port::CONTROLLER,
        actions: vec![Action::output(port::TABLE), Action::output(7)],
        data: f.clone(),
    });
    assert_eq!(out.ports(), vec![4, 7], "{out}");
    assert!(out.outputs.iter().all(|o| o.frame == f));
}

#[test]
fn check_overlap_refuses_overlapping_adds() {
    let mut sw = Switch::new();
    sw.apply_flow_mod(&flow(0, 5, Match::new().in_port(1), vec![]))
        .unwrap();
    let overlapping = FlowMod {
        flags: flow_flags::CHECK_OVERLAP,
        ..flow(0, 5, Match::new().eth_type(0x0800), vec![])
    };
    assert_eq!(sw.apply_flow_mod(&overlapping), Err(Error::Overlap));
    let disjoint = FlowMod {
        flags: flow_flags::CHECK_OVERLAP,
        ..flow(0, 5, Match::new().in_port(2), vec![])
    };
    assert_eq!(sw.apply_flow_mod(&disjoint), Ok(()));
    let other_priority = FlowMod {
        flags: flow_flags::CHECK_OVERLAP,
        ..flow(0, 6, Match::new().in_port(1), vec![])
    };
    assert_eq!(sw.apply_flow_mod(&other_priority), Ok(()));
}

#[test]
fn two_hosts_over_a_tunnel() {
    const TUN: u32 = 10;
    let mut net = Network::new();
    net.add_host("a", ip(192, 168, 0, 1));
    net.add_host("b", ip(192, 168, 0, 2));
    net.add_tunnel_port("a", TUN);
    net.add_tunnel_port("b", TUN);
    // a: VM on port 1 → tunnel to b with VNI 0x42 when eth_dst is the remote VM.
    let a = net.switch_mut("a").unwrap();
    a.apply_flow_mod(&flow(
        0,
        100,
        Match::new().in_port(1).eth_dst(mac(2)),
        vec![apply(vec![
            Action::set_field(Field::TunId, 0x42u64),
            Action::set_field(Field::TunIpv4Dst, u32::from(ip(192, 168, 0, 2))),
            Action::output(TUN),
        ])],
    ))
    .unwrap();
    // b: from the tunnel with VNI 0x42 → VM port 3, remembering the source host in reg0.
    let b = net.switch_mut("b").unwrap();
    b.apply_flow_mod(&flow(
        0,
        100,
        Match::new().in_port(TUN).tun_id(0x42).eth_dst(mac(2)),
        vec![apply(vec![
            Action::RegMove {
                src: openflow::nx::Subfield::whole(Field::TunIpv4Src),
                dst: openflow::nx::Subfield::whole(Field::Reg(0)),
            },
            Action::output(3),
        ])],
    ))
    .unwrap();
    let f = udp_frame(mac(2), mac(1), ip(10, 0, 0, 1), ip(10, 0, 0, 2), 1, 2, 64);
    let d = net.send("a", 1, &f);
    assert_eq!(d.endpoints(), vec![("b".to_string(), 3)], "{:#?}", d.log);
    assert_eq!(d.delivered[0].2, f);
    // Unknown tunnel destination: lost, reported.
    let a = net.switch_mut("a").unwrap();
    a.apply_flow_mod(&flow(
        0,
        100,
        Match::new().in_port(1).eth_dst(mac(3)),
        vec![apply(vec![
            Action::set_field(Field::TunIpv4Dst, 0x0a0a_0a0au32),
            Action::output(TUN),
        ])],
    ))
    .unwrap();
    let f = udp_frame(mac(3), mac(1), ip(10, 0, 0, 1), ip(10, 0, 0, 3), 1, 2, 64);
    let d = net.send("a", 1, &f);
    assert!(d.delivered.is_empty());
    assert_eq!(d.lost, vec![("a".to_string(), TUN, 0x0a0a_0a0a)]);
}

#[test]
fn dump_is_readable_and_exit_clear_actions_work() {
    let mut sw = Switch::new();
    sw.apply_flow_mod(&FlowMod {
        cookie: 0xabc,
        ..flow(
            0,
            7,
            Match::new().reg(6, 3),
            vec![
                Instruction::WriteActions(vec![Action::output(5)]),
                Instruction::GotoTable(1),
            ],
        )
    })
    .unwrap();
    sw.apply_flow_mod(&flow(
        1,
        1,
        Match::new(),
        vec![
            Instruction::ClearActions,
            apply(vec![Action::output(6), Action::Exit, Action::output(7)]),
        ],
    ))
    .unwrap();
    let dump = sw.dump();
    assert!(
        dump.contains("table=0, priority=7, cookie=0xabc, reg6=0x3"),
        "{dump}"
    );
    let out = sw.process_packet(Packet {
        regs: [0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ..Packet::new(1, vec![0; 60])
    });
    // Apply-actions run before clear-actions; exit stops them but, as in OVS, the action
    // set (output:5) still runs.
    assert_eq!(out.ports(), vec![6, 5], "{out}");
    sw.apply_flow_mod(&flow(
        1,
        1,
        Match::new(),
        vec![Instruction::ClearActions, apply(vec![Action::output(6)])],
    ))
    .unwrap();
    let out = sw.process_packet(Packet {
        regs: [0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ..Packet::new(1, vec![0; 60])
    });
    assert_eq!(out.ports(), vec![6], "{out}");
    // ct_clear resets the conntrack fields.
    sw.clear();
    sw.apply_flow_mod(&flow(
        0,
        1,
        Match::new(),
        vec![apply(vec![Action::CtClear, Action::resubmit_table(3)])],
    ))
    .unwrap();
    sw.apply_flow_mod(&flow(
        3,
        1,
        Match::new().ct_state(0, ct_state::TRK),
        vec![apply(vec![Action::output(2)])],
    ))
    .unwrap();
    let out = sw.process_packet(Packet {
        ct_state: ct_state::TRK | ct_state::EST,
        ..Packet::new(1, vec![0; 60])
    });
    assert_eq!(out.ports(), vec![2]);
}

#[test]
fn recirculation_runs_after_the_current_pass_and_loops_end() {
    let mut sw = Switch::new();
    sw.apply_flow_mod(&flow(
        0,
        1,
        Match::new().eth_type(0x0800).ct_state(0, ct_state::TRK),
        vec![apply(vec![ct(false, 5, vec![]), Action::output(3)])],
    ))
    .unwrap();
    sw.apply_flow_mod(&flow(
        5,
        1,
        Match::new().ct_state(ct_state::TRK, ct_state::TRK),
        vec![apply(vec![Action::output(4)])],
    ))
    .unwrap();
    let f = udp_frame(mac(2), mac(1), ip(10, 0, 0, 1), ip(10, 0, 0, 2), 1, 2, 64);
    let out = sw.process(1, &f);
    assert_eq!(out.ports(), vec![3, 4], "{out}");
    // The copy that continued is untracked; the recirculated one is tracked.
    assert_eq!(out.outputs[0].packet.ct_state, 0);
    assert_ne!(out.outputs[1].packet.ct_state & ct_state::TRK, 0);
    // ct(table=0) forever: ends at the limits.
    sw.clear();
    sw.apply_flow_mod(&flow(
        0,
        1,
        Match::new().eth_type(0x0800),
        vec![apply(vec![ct(false, 0, vec![]), ct(false, 0, vec![])])],
    ))
    .unwrap();
    let out = sw.process(1, &f);
    assert!(out.log.iter().any(|l| l.contains("limit")), "{out}");
}

#[test]
fn ipv6_connections_are_tracked() {
    let mut sw = Switch::new();
    let ip6 = || Match::new().eth_type(0x86dd);
    sw.apply_flow_mod(&flow(
        0,
        1,
        ip6().ct_state(0, ct_state::TRK),
        vec![apply(vec![ct(false, 1, vec![])])],
    ))
    .unwrap();
    sw.apply_flow_mod(&flow(
        1,
        1,
        ip6().ct_state(ct_state::NEW, ct_state::NEW).in_port(1),
        vec![apply(vec![ct(true, 255, vec![]), Action::output(2)])],
    ))
    .unwrap();
    sw.apply_flow_mod(&flow(
        1,
        1,
        ip6().ct_state(ct_state::EST, ct_state::EST).in_port(2),
        vec![apply(vec![Action::output(1)])],
    ))
    .unwrap();
    let v6 = |src: u8, dst: u8, sport: u16, dport: u16| {
        let mut udp = Vec::new();
        udp.extend_from_slice(&sport.to_be_bytes());
        udp.extend_from_slice(&dport.to_be_bytes());
        udp.extend_from_slice(&[0, 8, 0, 0]);
        let mut ip = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        ip.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, src]);
        ip.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, dst]);
        ip.extend_from_slice(&udp);
        eth(mac(2), mac(1), 0x86dd, &ip)
    };
    assert_eq!(sw.process(1, &v6(1, 2, 546, 547)).ports(), vec![2]);
    assert_eq!(sw.process(2, &v6(2, 1, 547, 546)).ports(), vec![1]);
    assert!(sw.process(2, &v6(2, 1, 547, 999)).dropped());
    assert_eq!(sw.conntrack().connections().len(), 1);
}

#[test]
fn thousands_of_flows_install_and_match() {
    let mut sw = Switch::new();
    for i in 0..5000u32 {
        let m = Match::new().metadata(u64::from(i % 50)).eth_dst([
            0xfa,
            0x16,
            0x3e,
            0,
            (i >> 8) as u8,
            i as u8,
        ]);
        sw.apply_flow_mod(&flow(55, 100, m, vec![apply(vec![Action::output(i + 10)])]))
            .unwrap();
    }
    // Re-adding the same flows replaces them.
    for i in 0..100u32 {
        let m = Match::new()
            .eth_dst([0xfa, 0x16, 0x3e, 0, (i >> 8) as u8, i as u8])
            .metadata(u64::from(i % 50));
        sw.apply_flow_mod(&flow(
            55,
            100,
            m,
            vec![apply(vec![Action::output(i + 20_000)])],
        ))
        .unwrap();
    }
    assert_eq!(sw.flows(55).len(), 5000);
    for i in (0..5000u32).step_by(50) {
        let dst = [0xfa, 0x16, 0x3e, 0, (i >> 8) as u8, i as u8];
        let f = udp_frame(dst, mac(1), ip(10, 0, 0, 1), ip(10, 0, 0, 2), 1, 2, 64);
        let out = sw.process_from(
            Packet {
                metadata: u64::from(i % 50),
                ..Packet::new(1, f)
            },
            55,
        );
        let want = if i < 100 { i + 20_000 } else { i + 10 };
        assert_eq!(out.ports(), vec![want], "{out}");
    }
}

#[test]
fn conjunction_clauses_at_different_priorities_do_not_combine() {
    let mut sw = Switch::new();
    let conj = |clause| {
        vec![apply(vec![Action::Conjunction {
            id: 1,
            clause,
            n_clauses: 2,
        }])]
    };
    sw.apply_flow_mod(&flow(0, 10, Match::new().in_port(1), conj(0)))
        .unwrap();
    sw.apply_flow_mod(&flow(0, 20, Match::new().eth_type(0x0806), conj(1)))
        .unwrap();
    sw.apply_flow_mod(&flow(
        0,
        10,
        Match::new().conj_id(1),
        vec![apply(vec![Action::output(2)])],
    ))
    .unwrap();
    let f = arp_request(mac(1), ip(10, 0, 0, 1), ip(10, 0, 0, 2));
    assert!(sw.process(1, &f).dropped());
    // Same priority: the conjunction fires.
    sw.apply_flow_mod(&flow(0, 10, Match::new().eth_type(0x0806), conj(1)))
        .unwrap();
    assert_eq!(sw.process(1, &f).ports(), vec![2]);
    assert!(sw.process(3, &f).dropped());
}

/// Hosts number their tunnel ports independently: a VXLAN packet from a's port 2 arrives
/// on b's VXLAN port (11), not on b's port 2 (Geneve there) nor b's first tunnel port.
#[test]
fn a_tunnel_packet_arrives_on_the_peers_port_of_its_type() {
    let mut net = Network::new();
    net.add_host("a", ip(192, 168, 0, 1));
    net.add_host("b", ip(192, 168, 0, 2));
    net.add_tunnel_port_of("a", 1, "geneve");
    net.add_tunnel_port_of("a", 2, "vxlan");
    net.add_tunnel_port_of("b", 2, "geneve");
    net.add_tunnel_port_of("b", 11, "vxlan");
    let a = net.switch_mut("a").unwrap();
    a.apply_flow_mod(&flow(
        0,
        100,
        Match::new().in_port(5),
        vec![apply(vec![
            Action::set_field(Field::TunIpv4Dst, u32::from(ip(192, 168, 0, 2))),
            Action::output(2),
        ])],
    ))
    .unwrap();
    let b = net.switch_mut("b").unwrap();
    for (tun, vm) in [(2, 7), (11, 8)] {
        b.apply_flow_mod(&flow(
            0,
            100,
            Match::new().in_port(tun),
            vec![apply(vec![Action::output(vm)])],
        ))
        .unwrap();
    }
    let f = udp_frame(mac(2), mac(1), ip(10, 0, 0, 1), ip(10, 0, 0, 2), 1, 2, 64);
    let d = net.send("a", 5, &f);
    assert_eq!(d.endpoints(), vec![("b".to_string(), 8)], "{:#?}", d.log);
}
