//! Behaviour tests: hand-written Dragonflow-like flows, frames in, "which port, which bytes,
//! what did the controller get" out.

mod common;

use common::*;
use fake_switch::{Error, Switch, reason};
use openflow::action::port;
use openflow::flow::{Bucket, FlowMod, FlowModCommand, GroupMod, GroupModCommand, GroupType};
use openflow::nx::{Controller2, Ct, CtZone, Nat, Subfield, ct_flags, nat_flags};
use openflow::oxm::{OFPVID_PRESENT, ct_state, mac_u128};
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

fn install(sw: &mut Switch, fms: &[FlowMod]) {
    for fm in fms {
        sw.apply_flow_mod(fm)
            .unwrap_or_else(|e| panic!("{e}: {fm:?}"));
    }
}

fn group(id: u32, ty: GroupType, buckets: Vec<Vec<Action>>) -> GroupMod {
    GroupMod {
        command: GroupModCommand::Add,
        group_type: ty,
        group_id: id,
        buckets: buckets.into_iter().map(Bucket::new).collect(),
    }
}

const NET: u64 = 100;

/// classify (0) → port security (1) → L2 lookup (55) → dispatch (115), flood group 1.
fn l2_switch() -> Switch {
    let mut sw = Switch::new();
    sw.apply_group_mod(&group(
        1,
        GroupType::All,
        vec![
            vec![Action::output(1)],
            vec![Action::output(2)],
            vec![Action::output(3)],
        ],
    ))
    .unwrap();
    let mut fms = Vec::new();
    for p in 1..=3u8 {
        fms.push(flow(
            0,
            100,
            Match::new().in_port(u32::from(p)),
            vec![
                apply(vec![Action::load(Field::Reg(6), 0, 32, u64::from(p))]),
                Instruction::WriteMetadata {
                    metadata: NET,
                    mask: u64::MAX,
                },
                Instruction::GotoTable(1),
            ],
        ));
        fms.push(flow(
            1,
            100,
            Match::new().reg(6, u32::from(p)).eth_src(mac(p)),
            vec![Instruction::GotoTable(55)],
        ));
        fms.push(flow(
            55,
            100,
            Match::new().metadata(NET).eth_dst(mac(p)),
            vec![
                apply(vec![Action::load(Field::Reg(7), 0, 32, u64::from(p))]),
                Instruction::GotoTable(115),
            ],
        ));
        fms.push(flow(
            115,
            100,
            Match::new().reg(7, u32::from(p)),
            vec![apply(vec![Action::output(u32::from(p))])],
        ));
    }
    fms.push(flow(
        55,
        1,
        Match::new().metadata(NET),
        vec![apply(vec![Action::Group(1)])],
    ));
    install(&mut sw, &fms);
    sw
}

#[test]
fn l2_known_mac_leaves_by_its_port() {
    let mut sw = l2_switch();
    let f = udp_frame(
        mac(2),
        mac(1),
        ip(10, 0, 0, 1),
        ip(10, 0, 0, 2),
        1000,
        2000,
        64,
    );
    let out = sw.process(1, &f);
    assert_eq!(out.ports(), vec![2], "{out}");
    assert_eq!(out.outputs[0].frame, f);
    assert_eq!(out.outputs[0].packet.regs[6], 1);
    assert_eq!(out.outputs[0].packet.regs[7], 2);
    assert_eq!(out.outputs[0].packet.metadata, NET);
    assert_eq!(out.tables(), vec![0, 1, 55, 115]);
}

#[test]
fn l2_unknown_mac_floods_but_not_back_to_in_port() {
    let mut sw = l2_switch();
    let f = udp_frame(
        mac(9),
        mac(1),
        ip(10, 0, 0, 1),
        ip(10, 0, 0, 9),
        1000,
        2000,
        64,
    );
    let out = sw.process(1, &f);
    assert_eq!(out.ports(), vec![2, 3], "{out}");
    let f = arp_request(mac(3), ip(10, 0, 0, 3), ip(10, 0, 0, 1));
    assert_eq!(sw.process(3, &f).ports(), vec![1, 2]);
}

#[test]
fn port_security_drops_spoofed_source_mac() {
    let mut sw = l2_switch();
    let f = udp_frame(
        mac(2),
        mac(7),
        ip(10, 0, 0, 1),
        ip(10, 0, 0, 2),
        1000,
        2000,
        64,
    );
    let out = sw.process(1, &f);
    assert!(out.dropped(), "{out}");
    assert_eq!(out.tables(), vec![0]);
    assert!(out.log.iter().any(|l| l.contains("table 1: miss")));
    // The MAC of another port is also a spoof on port 1.
    let f = udp_frame(
        mac(2),
        mac(3),
        ip(10, 0, 0, 1),
        ip(10, 0, 0, 2),
        1000,
        2000,
        64,
    );
    assert!(sw.process(1, &f).dropped());
}

#[test]
fn arp_responder_answers_out_of_in_port() {
    let router_mac = [0xfa, 0x16, 0x3e, 0xaa, 0xbb, 0xcc];
    let gw = ip(10, 0, 0, 1);
    let mut sw = Switch::new();
    let sf = |f| Subfield::whole(f);
    install(
        &mut sw,
        &[flow(
            25,
            100,
            Match::new().eth_type(0x0806).arp_op(1).arp_tpa(gw),
            vec![apply(vec![
                Action::RegMove {
                    src: sf(Field::EthSrc),
                    dst: sf(Field::EthDst),
                },
                Action::set_field(Field::EthSrc, mac_u128(router_mac)),
                Action::set_field(Field::ArpOp, 2u16),
                Action::RegMove {
                    src: sf(Field::ArpSha),
                    dst: sf(Field::ArpTha),
                },
                Action::RegMove {
                    src: sf(Field::ArpSpa),
                    dst: sf(Field::ArpTpa),
                },
                Action::set_field(Field::ArpSha, mac_u128(router_mac)),
                Action::set_field(Field::ArpSpa, u32::from(gw)),
                Action::output(port::IN_PORT),
            ])],
        )],
    );
    let req = arp_request(mac(5), ip(10, 0, 0, 5), gw);
    let out = sw.process_from(fake_switch::Packet::new(4, req), 25);
    assert_eq!(out.ports(), vec![4], "{out}");
    let frame = &out.outputs[0].frame;
    let eth = packet::ethernet::Frame::new_checked(frame.as_slice()).unwrap();
    assert_eq!(eth.dst_addr().0, mac(5));
    assert_eq!(eth.src_addr().0, router_mac);
    let arp =
        packet::arp::ArpRepr::parse(&packet::arp::Packet::new_checked(eth.payload()).unwrap())
            .unwrap();
    assert_eq!(arp.operation, packet::arp::Operation::Reply);
    assert_eq!(arp.source_hardware_addr.0, router_mac);
    assert_eq!(arp.source_protocol_addr, gw);
    assert_eq!(arp.target_hardware_addr.0, mac(5));
    assert_eq!(arp.target_protocol_addr, ip(10, 0, 0, 5));
    // A request for another address is not answered.
    let other = arp_request(mac(5), ip(10, 0, 0, 5), ip(10, 0, 0, 7));
    assert!(
        sw.process_from(fake_switch::Packet::new(4, other), 25)
            .dropped()
    );
}

fn router() -> Switch {
    let mut sw = Switch::new();
    install(
        &mut sw,
        &[flow(
            60,
            200,
            Match::new()
                .eth_type(0x0800)
                .ipv4_dst_prefix(ip(10, 0, 1, 0), 24),
            vec![apply(vec![
                Action::DecNwTtl,
                Action::set_field(Field::EthSrc, mac_u128(mac(0xee))),
                Action::set_field(Field::EthDst, mac_u128(mac(2))),
                Action::output(2),
            ])],
        )],
    );
    sw
}

#[test]
fn router_decrements_ttl_and_rewrites_macs() {
    let mut sw = router();
    let f = udp_frame(
        mac(0xee),
        mac(1),
        ip(10, 0, 0, 5),
        ip(10, 0, 1, 7),
        5,
        6,
        64,
    );
    let out = sw.process_from(fake_switch::Packet::new(1, f), 60);
    let o = out.single().expect("one output");
    assert_eq!(o.port, 2);
    assert_eq!(&o.frame[0..6], &mac(2));
    assert_eq!(&o.frame[6..12], &mac(0xee));
    assert_eq!(o.frame[14 + 8], 63);
    assert!(checksums_ok(&o.frame));
    // Not routed: another subnet.
    let f = udp_frame(
        mac(0xee),
        mac(1),
        ip(10, 0, 0, 5),
        ip(10, 0, 2, 7),
        5,
        6,
        64,
    );
    assert!(
        sw.process_from(fake_switch::Packet::new(1, f), 60)
            .dropped()
    );
}

#[test]
fn router_ttl_one_goes_to_controller() {
    let mut sw = router();
    let f = udp_frame(mac(0xee), mac(1), ip(10, 0, 0, 5), ip(10, 0, 1, 7), 5, 6, 1);
    let out = sw.process_from(fake_switch::Packet::new(1, f.clone()), 60);
    assert!(out.outputs.is_empty(), "{out}");
    assert_eq!(out.to_controller.len(), 1);
    let pi = &out.to_controller[0];
    assert_eq!(pi.reason, reason::INVALID_TTL);
    assert_eq!(pi.table, 60);
    assert_eq!(pi.frame, f);
}

#[test]
fn conjunction_of_two_dimensions() {
    let mut sw = Switch::new();
    let tcp = || Match::new().eth_type(0x0800).ip_proto(6);
    let conj = |clause| {
        vec![apply(vec![Action::Conjunction {
            id: 7,
            clause,
            n_clauses: 2,
        }])]
    };
    install(
        &mut sw,
        &[
            flow(0, 100, tcp().ipv4_src(ip(10, 0, 0, 1)), conj(0)),
            flow(0, 100, tcp().ipv4_src(ip(10, 0, 0, 2)), conj(0)),
            flow(0, 100, tcp().tcp_dst(80), conj(1)),
            flow(0, 100, tcp().tcp_dst(443), conj(1)),
            flow(
                0,
                100,
                Match::new().conj_id(7),
                vec![apply(vec![Action::output(2)])],
            ),
            flow(0, 1, Match::new(), vec![apply(vec![Action::output(3)])]),
        ],
    );
    let send = |sw: &mut Switch, src, dport| {
        let f = tcp_frame(
            mac(2),
            mac(1),
            ip(10, 0, 0, src),
            ip(10, 0, 0, 9),
            3333,
            dport,
            0x02,
        );
        sw.process(1, &f).ports()
    };
    assert_eq!(send(&mut sw, 1, 80), vec![2]);
    assert_eq!(send(&mut sw, 2, 443), vec![2]);
    assert_eq!(send(&mut sw, 1, 443), vec![2]);
    assert_eq!(send(&mut sw, 3, 80), vec![3]);
    assert_eq!(send(&mut sw, 1, 22), vec![3]);
    // Non-TCP traffic never satisfies the dimensions.
    let f = udp_frame(
        mac(2),
        mac(1),
        ip(10, 0, 0, 1),
        ip(10, 0, 0, 9),
        3333,
        80,
        64,
    );
    assert_eq!(sw.process(1, &f).ports(), vec![3]);
}

/// table 0: ip → ct(zone=reg6, table=1); table 1: +new → commit (mark 42), +est → forward,
/// +inv → drop.
fn firewall() -> Switch {
    let mut sw = Switch::new();
    let ip4 = || Match::new().eth_type(0x0800);
    let fwd =
        |p: u32, q: u32, m: Match| flow(10, 50, m.in_port(p), vec![apply(vec![Action::output(q)])]);
    install(
        &mut sw,
        &[
            flow(
                0,
                100,
                Match::new().in_port(1),
                vec![
                    apply(vec![Action::load(Field::Reg(6), 0, 32, 5)]),
                    Instruction::GotoTable(5),
                ],
            ),
            flow(
                0,
                100,
                Match::new().in_port(2),
                vec![
                    apply(vec![Action::load(Field::Reg(6), 0, 32, 5)]),
                    Instruction::GotoTable(5),
                ],
            ),
            flow(
                5,
                100,
                ip4(),
                vec![apply(vec![Action::Ct(Ct {
                    zone: CtZone::Field(Subfield::new(Field::Reg(6), 0, 16)),
                    recirc_table: 10,
                    ..Ct::default()
                })])],
            ),
            flow(
                10,
                100,
                ip4()
                    .ct_state(ct_state::TRK | ct_state::NEW, ct_state::TRK | ct_state::NEW)
                    .in_port(1),
                vec![apply(vec![
                    Action::Ct(Ct {
                        flags: ct_flags::COMMIT,
                        zone: CtZone::Imm(5),
                        actions: vec![Action::set_field(Field::CtMark, 42u32)],
                        ..Ct::default()
                    }),
                    Action::output(2),
                ])],
            ),
            fwd(
                1,
                2,
                ip4().ct_state(
                    ct_state::TRK | ct_state::EST,
                    ct_state::TRK | ct_state::EST | ct_state::INV,
                ),
            ),
            fwd(
                2,
                1,
                ip4().ct_state(
                    ct_state::TRK | ct_state::EST,
                    ct_state::TRK | ct_state::EST | ct_state::INV,
                ),
            ),
            flow(
                10,
                200,
                ip4().ct_state(ct_state::TRK | ct_state::INV, ct_state::TRK | ct_state::INV),
                vec![],
            ),
        ],
    );
    sw
}

#[test]
fn conntrack_new_commit_then_reply_established() {
    let mut sw = firewall();
    let a = ip(10, 0, 0, 1);
    let b = ip(10, 0, 0, 2);
    let out = sw.process(1, &udp_frame(mac(2), mac(1), a, b, 1111, 53, 64));
    assert_eq!(out.ports(), vec![2], "{out}");
    assert_eq!(sw.conntrack().connections().len(), 1);
    let c = &sw.conntrack().connections()[0];
    assert_eq!((c.zone, c.mark), (5, 42));
    // Reply direction: established, reply bit, mark visible.
    let out = sw.process(2, &udp_frame(mac(1), mac(2), b, a, 53, 1111, 64));
    assert_eq!(out.ports(), vec![1], "{out}");
    let st = out.outputs[0].packet.ct_state;
    assert_eq!(
        st & (ct_state::EST | ct_state::RPL | ct_state::TRK),
        ct_state::EST | ct_state::RPL | ct_state::TRK
    );
    assert_eq!(out.outputs[0].packet.ct_mark, 42);
    // Original direction again: established, not reply.
    let out = sw.process(1, &udp_frame(mac(2), mac(1), a, b, 1111, 53, 64));
    assert_eq!(out.ports(), vec![2]);
    assert_eq!(out.outputs[0].packet.ct_state & ct_state::RPL, 0);
    assert_ne!(out.outputs[0].packet.ct_state & ct_state::EST, 0);
    // An unsolicited packet from 2 is new there, and no flow allows new from port 2.
    assert!(
        sw.process(2, &udp_frame(mac(1), mac(2), b, a, 54, 1111, 64))
            .dropped()
    );
}

#[test]
fn conntrack_invalid_is_dropped() {
    let mut sw = firewall();
    // A bare ACK with no connection is invalid.
    let out = sw.process(
        1,
        &tcp_frame(
            mac(2),
            mac(1),
            ip(10, 0, 0, 1),
            ip(10, 0, 0, 2),
            40000,
            22,
            0x10,
        ),
    );
    assert!(out.dropped(), "{out}");
    assert_eq!(out.trace.last().map(|s| s.priority), Some(200));
    // A SYN is new and passes.
    let out = sw.process(
        1,
        &tcp_frame(
            mac(2),
            mac(1),
            ip(10, 0, 0, 1),
            ip(10, 0, 0, 2),
            40000,
            22,
            0x02,
        ),
    );
    assert_eq!(out.ports(), vec![2]);
}

#[test]
fn snat_translates_both_directions() {
    let ext = ip(172, 24, 4, 10);
    let mut sw = Switch::new();
    let nat = Nat {
        flags: nat_flags::SRC,
        addr_min: Some(ext.into()),
        addr_max: Some(ext.into()),
        ..Nat::default()
    };
    install(
        &mut sw,
        &[
            flow(
                70,
                100,
                Match::new().eth_type(0x0800).in_port(1),
                vec![apply(vec![Action::Ct(Ct {
                    flags: ct_flags::COMMIT,
                    zone: CtZone::Imm(9),
                    recirc_table: 71,
                    actions: vec![Action::Nat(nat)],
                    ..Ct::default()
                })])],
            ),
            flow(
                70,
                100,
                Match::new().eth_type(0x0800).in_port(2),
                vec![apply(vec![Action::Ct(Ct {
                    zone: CtZone::Imm(9),
                    recirc_table: 71,
                    actions: vec![Action::Nat(Nat::default())],
                    ..Ct::default()
                })])],
            ),
            flow(
                71,
                100,
                Match::new().in_port(1),
                vec![apply(vec![Action::output(2)])],
            ),
            flow(
                71,
                100,
                Match::new().in_port(2),
                vec![apply(vec![Action::output(1)])],
            ),
        ],
    );
    let vm = ip(10, 0, 0, 5);
    let server = ip(8, 8, 8, 8);
    let out = sw.process_from(
        fake_switch::Packet::new(1, udp_frame(mac(2), mac(1), vm, server, 5000, 53, 64)),
        70,
    );
    let o = out.single().unwrap_or_else(|| panic!("{out}"));
    assert_eq!(&o.frame[26..30], &ext.octets());
    assert_ne!(o.packet.ct_state & ct_state::SNAT, 0);
    assert!(checksums_ok(&o.frame));
    let out = sw.process_from(
        fake_switch::Packet::new(2, udp_frame(mac(1), mac(2), server, ext, 53, 5000, 64)),
        70,
    );
    let o = out.single().unwrap_or_else(|| panic!("{out}"));
    assert_eq!(o.port, 1);
    assert_eq!(&o.frame[30..34], &vm.octets());
    assert!(checksums_ok(&o.frame));
    assert_ne!(o.packet.ct_state & ct_state::RPL, 0);
}

#[test]
fn select_group_is_deterministic_and_spreads() {
    let mut sw = Switch::new();
    sw.apply_group_mod(&group(
        5,
        GroupType::Select,
        (1..=4).map(|p| vec![Action::output(p)]).collect(),
    ))
    .unwrap();
    install(
        &mut sw,
        &[flow(
            0,
            1,
            Match::new(),
            vec![apply(vec![Action::Group(5)])],
        )],
    );
    let mut seen = std::collections::BTreeSet::new();
    for sport in 0..32u16 {
        let f = udp_frame(
            mac(2),
            mac(1),
            ip(10, 0, 0, 1),
            ip(10, 0, 0, 2),
            1000 + sport,
            80,
            64,
        );
        let a = sw.process(9, &f).ports();
        let b = sw.process(9, &f).ports();
        assert_eq!(a.len(), 1);
        assert_eq!(a, b);
        seen.insert(a[0]);
    }
    assert!(seen.len() >= 2, "{seen:?}");
}

#[test]
fn goto_backwards_or_same_table_is_refused() {
    let mut sw = Switch::new();
    let back = flow(10, 1, Match::new(), vec![Instruction::GotoTable(5)]);
    assert_eq!(
        sw.apply_flow_mod(&back),
        Err(Error::GotoBackward { table: 10, goto: 5 })
    );
    let same = flow(10, 1, Match::new(), vec![Instruction::GotoTable(10)]);
    assert!(sw.apply_flow_mod(&same).is_err());
    assert!(
        sw.apply_flow_mod(&flow(10, 1, Match::new(), vec![Instruction::GotoTable(20)]))
            .is_ok()
    );
    assert_eq!(sw.flows(10).len(), 1);
}

#[test]
fn prerequisites_and_missing_groups_are_refused() {
    let mut sw = Switch::new();
    let fm = flow(0, 1, Match::new().ipv4_src(ip(1, 2, 3, 4)), vec![]);
    assert_eq!(
        sw.apply_flow_mod(&fm),
        Err(Error::Prerequisite(Field::Ipv4Src))
    );
    let fm = flow(0, 1, Match::new(), vec![apply(vec![Action::Group(3)])]);
    assert_eq!(sw.apply_flow_mod(&fm), Err(Error::UnknownGroup(3)));
    // Deleting a group deletes the flows that use it.
    sw.apply_group_mod(&group(3, GroupType::All, vec![vec![Action::output(1)]]))
        .unwrap();
    sw.apply_flow_mod(&fm).unwrap();
    assert_eq!(
        sw.apply_group_mod(&group(3, GroupType::All, vec![])),
        Err(Error::GroupExists(3))
    );
    sw.apply_group_mod(&GroupMod {
        command: GroupModCommand::Delete,
        ..group(3, GroupType::All, vec![])
    })
    .unwrap();
    assert!(sw.flows(0).is_empty());
}

#[test]
fn priority_replacement_modify_and_delete() {
    let mut sw = Switch::new();
    let m = || Match::new().in_port(1);
    install(
        &mut sw,
        &[
            flow(0, 10, Match::new(), vec![apply(vec![Action::output(9)])]),
            flow(0, 20, m(), vec![apply(vec![Action::output(2)])]),
        ],
    );
    let f = udp_frame(mac(2), mac(1), ip(1, 1, 1, 1), ip(2, 2, 2, 2), 1, 2, 64);
    assert_eq!(sw.process(1, &f).ports(), vec![2]);
    assert_eq!(sw.process(5, &f).ports(), vec![9]);
    // Same table, priority and match: replaced, not added.
    install(
        &mut sw,
        &[FlowMod {
            cookie: 0x77,
            ..flow(0, 20, m(), vec![apply(vec![Action::output(3)])])
        }],
    );
    assert_eq!(sw.flows(0).len(), 2);
    assert_eq!(sw.process(1, &f).ports(), vec![3]);
    assert_eq!(sw.process(1, &f).trace[0].cookie, 0x77);
    // A higher priority wins.
    install(
        &mut sw,
        &[flow(0, 30, m(), vec![apply(vec![Action::output(4)])])],
    );
    assert_eq!(sw.process(1, &f).ports(), vec![4]);
    // delete_strict removes only the exact priority.
    install(
        &mut sw,
        &[FlowMod {
            command: FlowModCommand::DeleteStrict,
            ..flow(0, 30, m(), vec![])
        }],
    );
    assert_eq!(sw.process(1, &f).ports(), vec![3]);
    // modify (non-strict, empty match) rewrites every flow with that cookie.
    install(
        &mut sw,
        &[FlowMod {
            command: FlowModCommand::Modify,
            cookie: 0x77,
            cookie_mask: u64::MAX,
            ..flow(0, 0, Match::new(), vec![apply(vec![Action::output(5)])])
        }],
    );
    assert_eq!(sw.process(1, &f).ports(), vec![5]);
    assert_eq!(sw.process(5, &f).ports(), vec![9]);
    // delete by cookie.
    install(
        &mut sw,
        &[FlowMod {
            cookie: 0x77,
            cookie_mask: u64::MAX,
            ..FlowMod::delete(255, Match::new())
        }],
    );
    assert_eq!(sw.flows(0).len(), 1);
    // delete with out_port.
    install(
        &mut sw,
        &[FlowMod {
            out_port: 8,
            ..FlowMod::delete(0, Match::new())
        }],
    );
    assert_eq!(sw.flows(0).len(), 1);
    install(
        &mut sw,
        &[FlowMod {
            out_port: 9,
            ..FlowMod::delete(0, Match::new())
        }],
    );
    assert!(sw.flows(0).is_empty());
    sw.clear();
    assert!(sw.tables().is_empty());
}

#[test]
fn action_set_resubmit_and_metadata_mask() {
    let mut sw = Switch::new();
    install(
        &mut sw,
        &[
            flow(
                0,
                1,
                Match::new(),
                vec![
                    Instruction::WriteActions(vec![Action::output(7)]),
                    Instruction::WriteMetadata {
                        metadata: 0xff00,
                        mask: 0x0f00,
                    },
                    apply(vec![Action::resubmit_table(30), Action::output(4)]),
                    Instruction::GotoTable(10),
                ],
            ),
            flow(
                30,
                1,
                Match::new(),
                vec![apply(vec![Action::load(Field::Reg(0), 0, 8, 0xab)])],
            ),
            flow(
                10,
                1,
                Match::new().metadata(0x0f00).reg(0, 0xab),
                vec![Instruction::WriteActions(vec![Action::output(8)])],
            ),
        ],
    );
    let f = udp_frame(mac(2), mac(1), ip(1, 1, 1, 1), ip(2, 2, 2, 2), 1, 2, 64);
    let out = sw.process(1, &f);
    // Apply-actions output first, then the action set (output 8 replaced output 7).
    assert_eq!(out.ports(), vec![4, 8], "{out}");
    assert_eq!(out.tables(), vec![0, 30, 10]);
}

#[test]
fn tunnel_output_keeps_tun_id_and_dst_and_vlan_push_pop() {
    let mut sw = Switch::new();
    install(
        &mut sw,
        &[flow(
            0,
            1,
            Match::new().in_port(1),
            vec![apply(vec![
                Action::set_field(Field::TunId, 0x42u64),
                Action::set_field(Field::TunIpv4Dst, u32::from(ip(192, 168, 0, 2))),
                Action::output(100),
                Action::PushVlan(0x8100),
                Action::set_field(Field::VlanVid, OFPVID_PRESENT | 7),
                Action::output(101),
                Action::PopVlan,
                Action::output(102),
            ])],
        )],
    );
    let f = udp_frame(mac(2), mac(1), ip(1, 1, 1, 1), ip(2, 2, 2, 2), 1, 2, 64);
    let out = sw.process(1, &f);
    assert_eq!(out.ports(), vec![100, 101, 102]);
    assert_eq!(out.outputs[0].tun_id, 0x42);
    assert_eq!(out.outputs[0].tun_dst, u32::from(ip(192, 168, 0, 2)));
    assert_eq!(out.outputs[1].frame.len(), f.len() + 4);
    assert_eq!(&out.outputs[1].frame[12..16], &[0x81, 0x00, 0x00, 0x07]);
    assert_eq!(out.outputs[2].frame, f);
}

#[test]
fn controller2_userdata_and_tunnel_ingress() {
    let mut sw = Switch::new();
    install(
        &mut sw,
        &[
            flow(
                0,
                10,
                Match::new().tun_id(0x42),
                vec![apply(vec![Action::Controller2(Controller2 {
                    userdata: vec![1, 2, 3],
                    ..Controller2::default()
                })])],
            ),
            flow(
                0,
                1,
                Match::new(),
                vec![apply(vec![Action::output(port::CONTROLLER)])],
            ),
        ],
    );
    let f = arp_request(mac(1), ip(1, 1, 1, 1), ip(1, 1, 1, 2));
    let out = sw.process_packet(fake_switch::Packet {
        tun_id: 0x42,
        ..fake_switch::Packet::new(50, f.clone())
    });
    assert_eq!(out.to_controller.len(), 1);
    assert_eq!(out.to_controller[0].userdata, vec![1, 2, 3]);
    assert_eq!(out.to_controller[0].packet.tun_id, 0x42);
    let out = sw.process(50, &f);
    assert_eq!(out.to_controller[0].reason, reason::ACTION);
    assert!(out.to_controller[0].userdata.is_empty());
}

#[test]
fn resubmit_loops_end_at_the_limit() {
    let mut sw = Switch::new();
    install(
        &mut sw,
        &[flow(
            0,
            1,
            Match::new(),
            vec![apply(vec![Action::output(3), Action::resubmit_table(0)])],
        )],
    );
    let out = sw.process(1, &[0u8; 60]);
    assert!(!out.outputs.is_empty());
    assert!(out.outputs.len() <= fake_switch::MAX_STEPS);
    assert!(out.log.iter().any(|l| l.contains("limit")));
}

#[test]
fn learn_adds_a_flow() {
    use openflow::nx::{Learn, LearnSpec, LearnSrc};
    let mut sw = Switch::new();
    install(
        &mut sw,
        &[flow(
            0,
            1,
            Match::new(),
            vec![apply(vec![Action::Learn(Learn {
                table_id: 5,
                priority: 10,
                specs: vec![
                    LearnSpec::Match {
                        src: LearnSrc::Field(Subfield::whole(Field::EthSrc)),
                        dst: Subfield::whole(Field::EthDst),
                    },
                    LearnSpec::Output {
                        src: Subfield::new(Field::InPort, 0, 16),
                    },
                ],
                ..Learn::default()
            })])],
        )],
    );
    sw.process(
        3,
        &udp_frame(mac(2), mac(1), ip(1, 1, 1, 1), ip(2, 2, 2, 2), 1, 2, 64),
    );
    assert_eq!(sw.flows(5).len(), 1);
    let back = udp_frame(mac(1), mac(2), ip(2, 2, 2, 2), ip(1, 1, 1, 1), 2, 1, 64);
    assert_eq!(
        sw.process_from(fake_switch::Packet::new(4, back), 5)
            .ports(),
        vec![3]
    );
}
