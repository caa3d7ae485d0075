//! Against a real Open vSwitch: install every kind of flow the pipeline needs through our
//! codec, compare `ovs-ofctl dump-flows` text and our own flow-stats decoding, exercise
//! groups, bundles, errors, packet-in and packet-in2.

mod common;

use common::{Conn, normalise_dump};
use openflow::action::{Action, port};
use openflow::bundle::{BundleCtrl, BundleCtrlType, bundle_flags};
use openflow::flow::{Bucket, FlowMod, FlowModCommand, GroupMod, GroupModCommand, GroupType};
use openflow::multipart::{FlowStatsRequest, MultipartReply, MultipartRequest};
use openflow::nx::*;
use openflow::oxm::{Field, Match, OxmField, ct_state};
use openflow::{Instruction, Message};

fn apply(a: Vec<Action>) -> Instruction {
    Instruction::ApplyActions(a)
}

fn flow(table: u8, prio: u16, cookie: u64, m: Match, ins: Vec<Instruction>) -> FlowMod {
    FlowMod {
        cookie,
        match_: m,
        instructions: ins,
        ..FlowMod::add(table, prio)
    }
}

fn ip() -> Match {
    Match::new().eth_type(0x0800)
}

/// One flow of every kind the Dragonflow pipeline uses.
fn pipeline_flows() -> Vec<FlowMod> {
    let reg6_zone = CtZone::Field(Subfield::new(Field::Reg(6), 0, 16));
    vec![
        // Table 0: VM port → reg6 = port key, metadata = network key, goto 1.
        flow(
            0,
            100,
            0x1,
            Match::new().in_port(1),
            vec![
                apply(vec![Action::load(Field::Reg(6), 0, 32, 0x5)]),
                Instruction::WriteMetadata {
                    metadata: 0x10,
                    mask: 0xffff_ffff,
                },
                Instruction::GotoTable(1),
            ],
        ),
        // Table 0: tunnel by tun_id.
        flow(
            0,
            100,
            0x2,
            Match::new().in_port(2).tun_id(0x64),
            vec![
                Instruction::WriteMetadata {
                    metadata: 0x11,
                    mask: u64::MAX,
                },
                Instruction::GotoTable(100),
            ],
        ),
        // Table 1: anti-spoofing (MAC + IP) then goto 10.
        flow(
            1,
            200,
            0x3,
            ip().reg(6, 5)
                .eth_src([0xfa, 0x16, 0x3e, 0, 0, 1])
                .ipv4_src("10.0.0.5".parse().unwrap()),
            vec![Instruction::GotoTable(10)],
        ),
        // Table 10: egress conntrack in the port's zone.
        flow(
            10,
            100,
            0x4,
            ip(),
            vec![apply(vec![Action::Ct(Ct {
                zone: reg6_zone,
                recirc_table: 15,
                ..Ct::default()
            })])],
        ),
        // Table 15: commit with SNAT and ct_mark.
        flow(
            15,
            100,
            0x5,
            ip().ct_state(ct_state::NEW | ct_state::TRK, ct_state::NEW | ct_state::TRK),
            vec![apply(vec![Action::Ct(Ct {
                flags: ct_flags::COMMIT,
                zone: reg6_zone,
                recirc_table: 20,
                alg: 0,
                actions: vec![
                    Action::Nat(Nat {
                        flags: nat_flags::SRC,
                        addr_min: Some("172.24.4.10".parse().unwrap()),
                        addr_max: Some("172.24.4.20".parse().unwrap()),
                        port_min: Some(1024),
                        port_max: Some(65535),
                    }),
                    Action::set_field(Field::CtMark, 0x1u32),
                ],
            })])],
        ),
        // Table 15: security group as conjunction (two clauses), then the conj_id flow.
        flow(
            15,
            50,
            0x6,
            ip().ipv4_src("10.0.0.7".parse().unwrap()),
            vec![apply(vec![Action::Conjunction {
                id: 7,
                clause: 0,
                n_clauses: 2,
            }])],
        ),
        flow(
            15,
            50,
            0x6,
            ip().ip_proto(6).tcp_dst(80),
            vec![apply(vec![Action::Conjunction {
                id: 7,
                clause: 1,
                n_clauses: 2,
            }])],
        ),
        flow(
            15,
            50,
            0x6,
            ip().with(OxmField::new(Field::ConjId, 7u32)),
            vec![Instruction::GotoTable(20)],
        ),
        // Table 20: ARP → 25, DHCP → 30.
        flow(
            20,
            100,
            0x7,
            Match::new().eth_type(0x0806),
            vec![Instruction::GotoTable(25)],
        ),
        flow(
            20,
            100,
            0x7,
            ip().ip_proto(17).udp_src(68).udp_dst(67),
            vec![Instruction::GotoTable(30)],
        ),
        // Table 25: ARP responder.
        flow(
            25,
            100,
            0x8,
            Match::new()
                .eth_type(0x0806)
                .arp_op(1)
                .with(OxmField::new(Field::ArpTpa, 0x0a00_0001u32))
                .metadata(0x10),
            vec![apply(vec![
                Action::RegMove {
                    src: Subfield::whole(Field::EthSrc),
                    dst: Subfield::whole(Field::EthDst),
                },
                Action::set_field(
                    Field::EthSrc,
                    openflow::oxm::mac_u128([0xfa, 0x16, 0x3e, 0, 0, 0xfe]),
                ),
                Action::load(Field::ArpOp, 0, 16, 2),
                Action::RegMove {
                    src: Subfield::whole(Field::ArpSha),
                    dst: Subfield::whole(Field::ArpTha),
                },
                Action::RegMove {
                    src: Subfield::whole(Field::ArpSpa),
                    dst: Subfield::whole(Field::ArpTpa),
                },
                Action::set_field(Field::ArpSpa, 0x0a00_0001u32),
                Action::Output {
                    port: port::IN_PORT,
                    max_len: 0,
                },
            ])],
        ),
        // Table 25: learn (e.g. MAC learning for provider networks), then resubmit.
        flow(
            25,
            10,
            0x8,
            Match::new().eth_type(0x0806),
            vec![apply(vec![
                Action::Learn(Learn {
                    table_id: 55,
                    priority: 100,
                    idle_timeout: 300,
                    cookie: 0x99,
                    specs: vec![
                        LearnSpec::Match {
                            src: LearnSrc::Field(Subfield::whole(Field::Metadata)),
                            dst: Subfield::whole(Field::Metadata),
                        },
                        LearnSpec::Match {
                            src: LearnSrc::Field(Subfield::whole(Field::EthSrc)),
                            dst: Subfield::whole(Field::EthDst),
                        },
                        LearnSpec::Load {
                            src: LearnSrc::Field(Subfield::whole(Field::Reg(6))),
                            dst: Subfield::whole(Field::Reg(7)),
                        },
                        LearnSpec::Load {
                            src: LearnSrc::Imm(1),
                            dst: Subfield::new(Field::Reg(5), 0, 8),
                        },
                    ],
                    ..Learn::default()
                }),
                Action::resubmit_table(55),
            ])],
        ),
        // Table 30: DHCP to the controller with userdata (controller2).
        flow(
            30,
            100,
            0x9,
            ip().ip_proto(17).udp_dst(67),
            vec![apply(vec![Action::Controller2(Controller2 {
                max_len: 1500,
                userdata: vec![0xdf, 0x01, 0x02],
                ..Controller2::default()
            })])],
        ),
        // Table 45: IPv6 ND responder match.
        flow(
            45,
            100,
            0xa,
            Match::new()
                .eth_type(0x86dd)
                .ip_proto(58)
                .icmpv6_type(135)
                .with(OxmField::new(
                    Field::NdTarget,
                    0xfe80_0000_0000_0000_0000_0000_0000_0001u128,
                )),
            vec![apply(vec![Action::controller(128)])],
        ),
        // Table 55: L2 lookup; broadcast → group; router MAC → 60.
        flow(
            55,
            100,
            0xb,
            Match::new()
                .metadata(0x10)
                .eth_dst([0xfa, 0x16, 0x3e, 0, 0, 2]),
            vec![
                apply(vec![Action::load(Field::Reg(7), 0, 32, 0x6)]),
                Instruction::GotoTable(75),
            ],
        ),
        flow(
            55,
            50,
            0xb,
            Match::new().metadata(0x10).masked(
                Field::EthDst,
                openflow::oxm::mac_u128([1, 0, 0, 0, 0, 0]),
                openflow::oxm::mac_u128([1, 0, 0, 0, 0, 0]),
            ),
            vec![apply(vec![Action::Group(1)])],
        ),
        // Table 60: route: dec_ttl, rewrite MACs, set destination.
        flow(
            60,
            200,
            0xc,
            ip().metadata(0x10)
                .masked(Field::Ipv4Dst, 0x0a00_0100u32, 0xffff_ff00u32),
            vec![
                apply(vec![
                    Action::DecTtlCntIds(vec![0]),
                    Action::set_field(
                        Field::EthSrc,
                        openflow::oxm::mac_u128([0xfa, 0x16, 0x3e, 0, 0, 0xfe]),
                    ),
                    Action::set_field(
                        Field::EthDst,
                        openflow::oxm::mac_u128([0xfa, 0x16, 0x3e, 0, 1, 3]),
                    ),
                    Action::load(Field::Metadata, 0, 64, 0x11),
                    Action::load(Field::Reg(7), 0, 32, 0x8),
                ]),
                Instruction::GotoTable(75),
            ],
        ),
        // Table 75: remote port → tunnel.
        flow(
            75,
            100,
            0xd,
            Match::new().reg(7, 9),
            vec![apply(vec![
                Action::set_field(Field::TunId, 0x64u64),
                Action::set_field(Field::TunIpv4Dst, 0xc0a8_0002u32),
                Action::output(2),
            ])],
        ),
        // Table 105: ingress conntrack states.
        flow(
            105,
            100,
            0xe,
            ip().ct_state(
                ct_state::EST | ct_state::TRK,
                ct_state::EST | ct_state::TRK | ct_state::INV,
            ),
            vec![Instruction::GotoTable(115)],
        ),
        flow(
            105,
            100,
            0xe,
            ip().ct_state(ct_state::INV | ct_state::TRK, ct_state::INV | ct_state::TRK),
            vec![],
        ),
        // Table 115: dispatch.
        flow(
            115,
            100,
            0xf,
            Match::new().reg(7, 6),
            vec![apply(vec![Action::output(1)])],
        ),
        flow(
            115,
            50,
            0xf,
            Match::new().masked(Field::Reg(7), 0x100u32, 0xff00u32),
            vec![apply(vec![
                Action::OutputReg {
                    src: Subfield::new(Field::Reg(7), 0, 16),
                    max_len: 0,
                },
                Action::CtClear,
                Action::Note(vec![0x64, 0x66, 0, 0, 0, 0]),
            ])],
        ),
        flow(
            115,
            40,
            0xf,
            ip().ct_state(ct_state::TRK, ct_state::TRK | ct_state::INV)
                .reg(7, 0x200),
            vec![apply(vec![
                Action::Resubmit {
                    in_port: 0xfff8,
                    table: 116,
                    ct: true,
                },
                Action::Exit,
            ])],
        ),
    ]
}

fn groups() -> Vec<GroupMod> {
    let mut weighted = Bucket::new(vec![Action::output(3)]);
    weighted.weight = 10;
    let mut weighted2 = Bucket::new(vec![Action::output(4)]);
    weighted2.weight = 20;
    weighted2.watch_port = 4;
    vec![
        GroupMod {
            command: GroupModCommand::Add,
            group_type: GroupType::All,
            group_id: 1,
            buckets: vec![
                Bucket::new(vec![Action::output(1)]),
                Bucket::new(vec![
                    Action::set_field(Field::TunId, 0x64u64),
                    Action::output(2),
                ]),
            ],
        },
        GroupMod {
            command: GroupModCommand::Add,
            group_type: GroupType::Select,
            group_id: 2,
            buckets: vec![weighted, weighted2],
        },
        GroupMod {
            command: GroupModCommand::Add,
            group_type: GroupType::Indirect,
            group_id: 3,
            buckets: vec![Bucket::new(vec![Action::resubmit_table(60)])],
        },
    ]
}

fn start() -> Option<(testbed::Ovs, Conn)> {
    let ovs = testbed::Ovs::start().expect("start ovs");
    ovs.add_bridge("br-int").expect("add bridge");
    let mut conn = Conn::connect(&ovs.mgmt_sock("br-int"));
    conn.send(&Message::FeaturesRequest);
    let (_, m) = conn.recv_until(|_, m| matches!(m, Message::FeaturesReply(_)));
    let Message::FeaturesReply(f) = m else {
        unreachable!()
    };
    assert!(f.n_tables >= 200, "{f:?}");
    assert_ne!(f.datapath_id, 0);
    Some((ovs, conn))
}

fn dump_flows_via_codec(conn: &mut Conn) -> Vec<openflow::multipart::FlowStats> {
    let xid = conn.send(&Message::MultipartRequest {
        flags: 0,
        body: MultipartRequest::Flow(FlowStatsRequest::default()),
    });
    let mut all = Vec::new();
    loop {
        let (_, m) = conn.recv_until(|x, _| x == xid);
        let Message::MultipartReply {
            flags,
            body: MultipartReply::Flow(v),
        } = m
        else {
            panic!("{m:?}")
        };
        all.extend(v);
        if flags & openflow::multipart::OFPMPF_REPLY_MORE == 0 {
            return all;
        }
    }
}

fn sorted(m: &Match) -> Vec<OxmField> {
    let mut v = m.fields.clone();
    v.sort_by_key(|f| format!("{f:?}"));
    v
}

const EXPECTED_DUMP: &str = include_str!("data/pipeline_dump.txt");

#[test]
fn pipeline_flows_install_and_dump_back() {
    if !testbed::require_root("pipeline_flows_install_and_dump_back") {
        return;
    }
    let Some((ovs, mut conn)) = start() else {
        return;
    };
    for g in groups() {
        conn.send_ok(&Message::GroupMod(g));
    }
    let flows = pipeline_flows();
    for f in &flows {
        conn.send(&Message::FlowMod(f.clone()));
    }
    let errors = conn.barrier();
    assert!(errors.is_empty(), "{errors:?}");

    // 1. ovs-ofctl's view of what we installed.
    let dump = ovs.ofctl(["dump-flows", "br-int"]).expect("dump-flows");
    let got = normalise_dump(&dump);
    if std::env::var_os("OPENFLOW_PRINT_DUMP").is_some() {
        println!("{}", got.join("\n"));
    }
    let want: Vec<String> = EXPECTED_DUMP
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(got, want);

    // 2. Our own flow-stats decoding of the same flows equals what we sent.
    let stats = dump_flows_via_codec(&mut conn);
    assert_eq!(stats.len(), flows.len());
    for f in &flows {
        let found = stats.iter().find(|s| {
            s.table_id == f.table_id
                && s.priority == f.priority
                && sorted(&s.match_) == sorted(&f.match_)
        });
        let s = found.unwrap_or_else(|| panic!("flow not read back: {f:?}"));
        assert_eq!(s.cookie, f.cookie);
        assert_eq!(
            s.instructions, f.instructions,
            "table {} prio {}",
            f.table_id, f.priority
        );
    }

    // The aggregate of table 15 counts its flows.
    let req = FlowStatsRequest {
        table_id: 15,
        ..FlowStatsRequest::default()
    };
    let xid = conn.send(&Message::MultipartRequest {
        flags: 0,
        body: MultipartRequest::Aggregate(req),
    });
    let (_, m) = conn.recv_until(|x, _| x == xid);
    let Message::MultipartReply {
        body: MultipartReply::Aggregate(agg),
        ..
    } = m
    else {
        panic!("{m:?}")
    };
    assert_eq!(
        agg.flow_count as usize,
        flows.iter().filter(|f| f.table_id == 15).count()
    );

    // 3. Group descriptions read back equal what we sent.
    let xid = conn.send(&Message::MultipartRequest {
        flags: 0,
        body: MultipartRequest::GroupDesc,
    });
    let (_, m) = conn.recv_until(|x, _| x == xid);
    let Message::MultipartReply {
        body: MultipartReply::GroupDesc(mut descs),
        ..
    } = m
    else {
        panic!("{m:?}")
    };
    descs.sort_by_key(|d| d.group_id);
    let sent = groups();
    assert_eq!(descs.len(), sent.len());
    for (d, g) in descs.iter().zip(&sent) {
        assert_eq!((d.group_id, d.group_type), (g.group_id, g.group_type));
        assert_eq!(d.buckets, g.buckets);
    }
    let gd = ovs.ofctl(["dump-groups", "br-int"]).expect("dump-groups");
    assert!(gd.contains("group_id=2,type=select,bucket=weight:10,actions=output:3,bucket=weight:20,watch_port:4,actions=output:4"), "{gd}");

    // 4. Modify, then delete_strict and delete by cookie.
    let mut m = flows[0].clone();
    m.command = FlowModCommand::ModifyStrict;
    m.instructions = vec![Instruction::GotoTable(2)];
    conn.send_ok(&Message::FlowMod(m));
    let dump = ovs
        .ofctl(["dump-flows", "br-int", "table=0,in_port=1"])
        .expect("dump");
    assert!(dump.contains("actions=goto_table:2"), "{dump}");
    let mut d = flows[0].clone();
    d.command = FlowModCommand::DeleteStrict;
    d.instructions.clear();
    conn.send_ok(&Message::FlowMod(d));
    let mut del = FlowMod::delete(openflow::flow::OFPTT_ALL, Match::new());
    del.cookie = 0x6;
    del.cookie_mask = u64::MAX;
    conn.send_ok(&Message::FlowMod(del));
    let left = dump_flows_via_codec(&mut conn);
    assert_eq!(left.len(), flows.len() - 1 - 3);
    assert!(left.iter().all(|s| s.cookie != 0x6 && s.cookie != 0x1));
    // Delete by out_port: only flows that output to port 1 go.
    let mut del = FlowMod::delete(openflow::flow::OFPTT_ALL, Match::new());
    del.out_port = 1;
    conn.send_ok(&Message::FlowMod(del));
    let left2 = dump_flows_via_codec(&mut conn);
    assert_eq!(left2.len(), left.len() - 1);
}

#[test]
fn port_desc_desc_config_role_async() {
    if !testbed::require_root("port_desc_desc_config_role_async") {
        return;
    }
    let Some((_ovs, mut conn)) = start() else {
        return;
    };
    let xid = conn.send(&Message::MultipartRequest {
        flags: 0,
        body: MultipartRequest::PortDesc,
    });
    let (_, m) = conn.recv_until(|x, _| x == xid);
    let Message::MultipartReply {
        body: MultipartReply::PortDesc(ports),
        ..
    } = m
    else {
        panic!("{m:?}")
    };
    assert!(
        ports
            .iter()
            .any(|p| p.name == "br-int" && p.port_no == port::LOCAL),
        "{ports:?}"
    );

    let xid = conn.send(&Message::MultipartRequest {
        flags: 0,
        body: MultipartRequest::Desc,
    });
    let (_, m) = conn.recv_until(|x, _| x == xid);
    let Message::MultipartReply {
        body: MultipartReply::Desc(d),
        ..
    } = m
    else {
        panic!("{m:?}")
    };
    assert_eq!(d.mfr_desc, "Nicira, Inc.");

    conn.send_ok(&Message::SetConfig(openflow::switch::SwitchConfig {
        flags: 0,
        miss_send_len: 200,
    }));
    let xid = conn.send(&Message::GetConfigRequest);
    let (_, m) = conn.recv_until(|x, _| x == xid);
    assert_eq!(
        m,
        Message::GetConfigReply(openflow::switch::SwitchConfig {
            flags: 0,
            miss_send_len: 200
        })
    );

    let xid = conn.send(&Message::RoleRequest(openflow::switch::RoleMsg {
        role: openflow::switch::Role::Master,
        generation_id: 1,
    }));
    let (_, m) = conn.recv_until(|x, _| x == xid);
    let Message::RoleReply(r) = m else {
        panic!("{m:?}")
    };
    assert_eq!(r.role, openflow::switch::Role::Master);

    let cfg = openflow::switch::AsyncConfig {
        packet_in_mask: [0x3, 0x0],
        port_status_mask: [0x7, 0x7],
        flow_removed_mask: [0xf, 0],
    };
    conn.send_ok(&Message::SetAsync(cfg));
    let xid = conn.send(&Message::GetAsyncRequest);
    let (_, m) = conn.recv_until(|x, _| x == xid);
    assert_eq!(m, Message::GetAsyncReply(cfg));

    // Flushing a conntrack zone is accepted (no error before the barrier).
    conn.send_ok(&Message::CtFlushZone(5));

    let xid = conn.send(&Message::EchoRequest(b"ping".to_vec()));
    let (_, m) = conn.recv_until(|x, _| x == xid);
    assert_eq!(m, Message::EchoReply(b"ping".to_vec()));
}

#[test]
fn bundle_commit_applies_atomically() {
    if !testbed::require_root("bundle_commit_applies_atomically") {
        return;
    }
    let Some((ovs, mut conn)) = start() else {
        return;
    };
    let open = BundleCtrl {
        bundle_id: 7,
        ty: BundleCtrlType::OpenRequest,
        flags: bundle_flags::ATOMIC | bundle_flags::ORDERED,
        properties: vec![],
    };
    let xid = conn.send(&Message::BundleControl(open));
    let (_, m) = conn.recv_until(|x, _| x == xid);
    assert!(
        matches!(&m, Message::BundleControl(b) if b.ty == BundleCtrlType::OpenReply && b.bundle_id == 7),
        "{m:?}"
    );
    for i in 0..10u32 {
        let f = flow(
            0,
            100,
            u64::from(i),
            Match::new().in_port(i + 1),
            vec![Instruction::GotoTable(1)],
        );
        conn.send(&Message::BundleAdd {
            bundle_id: 7,
            flags: bundle_flags::ATOMIC | bundle_flags::ORDERED,
            message: Box::new(Message::FlowMod(f)),
        });
    }
    // Nothing is visible before the commit.
    assert_eq!(
        normalise_dump(&ovs.ofctl(["dump-flows", "br-int"]).expect("dump")).len(),
        0
    );
    let commit = BundleCtrl {
        bundle_id: 7,
        ty: BundleCtrlType::CommitRequest,
        flags: bundle_flags::ATOMIC | bundle_flags::ORDERED,
        properties: vec![],
    };
    let xid = conn.send(&Message::BundleControl(commit));
    let (_, m) = conn.recv_until(|x, _| x == xid);
    assert!(
        matches!(&m, Message::BundleControl(b) if b.ty == BundleCtrlType::CommitReply),
        "{m:?}"
    );
    assert_eq!(
        normalise_dump(&ovs.ofctl(["dump-flows", "br-int"]).expect("dump")).len(),
        10
    );

    // A failing bundle (bad group reference) applies nothing and reports the error by name.
    let open = BundleCtrl {
        bundle_id: 8,
        ty: BundleCtrlType::OpenRequest,
        flags: bundle_flags::ATOMIC,
        properties: vec![],
    };
    let xid = conn.send(&Message::BundleControl(open));
    conn.recv_until(|x, _| x == xid);
    let good = flow(1, 1, 0, Match::new(), vec![]);
    let bad = flow(1, 2, 0, Match::new(), vec![apply(vec![Action::Group(99)])]);
    for f in [good, bad] {
        conn.send(&Message::BundleAdd {
            bundle_id: 8,
            flags: bundle_flags::ATOMIC,
            message: Box::new(Message::FlowMod(f)),
        });
    }
    let commit = BundleCtrl {
        bundle_id: 8,
        ty: BundleCtrlType::CommitRequest,
        flags: bundle_flags::ATOMIC,
        properties: vec![],
    };
    conn.send(&Message::BundleControl(commit));
    let errs = conn.barrier();
    let names: Vec<&str> = errs
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Error(e) => e.name(),
            _ => None,
        })
        .collect();
    assert!(names.contains(&"OFPBAC_BAD_OUT_GROUP"), "{errs:?}");
    assert!(names.contains(&"OFPBFC_MSG_FAILED"), "{errs:?}");
    assert_eq!(
        normalise_dump(
            &ovs.ofctl(["dump-flows", "br-int", "table=1"])
                .expect("dump")
        )
        .len(),
        0
    );
}

#[test]
fn switch_errors_are_decoded_with_names() {
    if !testbed::require_root("switch_errors_are_decoded_with_names") {
        return;
    }
    let Some((_ovs, mut conn)) = start() else {
        return;
    };
    // goto_table backwards is a bad instruction.
    let f = flow(10, 1, 0, Match::new(), vec![Instruction::GotoTable(5)]);
    let xid = conn.send(&Message::FlowMod(f));
    let (_, m) = conn.recv_until(|x, _| x == xid);
    let Message::Error(e) = m else {
        panic!("{m:?}")
    };
    assert_eq!(e.type_name(), Some("OFPET_BAD_INSTRUCTION"));
    assert_eq!(e.name(), Some("OFPBIC_BAD_TABLE_ID"));
    // The error carries the start of our request, which decodes back to it.
    assert_eq!(openflow::Header::parse(&e.data).map(|h| h.xid), Ok(xid));

    // Conjunction mixed with another action: a Nicira experimenter error.
    let f = flow(
        10,
        1,
        0,
        Match::new(),
        vec![apply(vec![
            Action::Conjunction {
                id: 1,
                clause: 0,
                n_clauses: 2,
            },
            Action::output(1),
        ])],
    );
    let xid = conn.send(&Message::FlowMod(f));
    let (_, m) = conn.recv_until(|x, _| x == xid);
    let Message::Error(e) = m else {
        panic!("{m:?}")
    };
    assert_eq!(e.name(), Some("NXBAC_BAD_CONJUNCTION"), "{e:?}");
}

#[test]
fn flow_removed_and_port_status_arrive_decoded() {
    if !testbed::require_root("flow_removed_and_port_status_arrive_decoded") {
        return;
    }
    let Some((ovs, mut conn)) = start() else {
        return;
    };
    // A service (mgmt socket) connection gets async messages once miss_send_len is nonzero.
    conn.send_ok(&Message::SetConfig(openflow::switch::SwitchConfig {
        flags: 0,
        miss_send_len: 128,
    }));
    let mut f = flow(40, 7, 0xfeed, Match::new().reg(6, 9), vec![]);
    f.hard_timeout = 1;
    f.flags = openflow::flow::flow_flags::SEND_FLOW_REM;
    conn.send_ok(&Message::FlowMod(f));
    let (_, m) = conn.recv_until(|_, m| matches!(m, Message::FlowRemoved(_)));
    let Message::FlowRemoved(r) = m else {
        unreachable!()
    };
    assert_eq!(
        (r.cookie, r.priority, r.table_id, r.reason),
        (0xfeed, 7, 40, 1),
        "{r:?}"
    );
    assert_eq!(r.match_, Match::new().reg(6, 9));

    ovs.vsctl([
        "add-port",
        "br-int",
        "ofps-p",
        "--",
        "set",
        "Interface",
        "ofps-p",
        "type=internal",
    ])
    .expect("add-port");
    let (_, m) =
        conn.recv_until(|_, m| matches!(m, Message::PortStatus(p) if p.port.name == "ofps-p"));
    let Message::PortStatus(ps) = m else {
        unreachable!()
    };
    assert_eq!(ps.reason, 0, "expected OFPPR_ADD: {ps:?}");
    assert!(
        ps.port.port_no >= 1 && ps.port.port_no < port::MAX,
        "{ps:?}"
    );
}

#[test]
fn packet_out_goes_through_the_pipeline() {
    if !testbed::require_root("packet_out_goes_through_the_pipeline") {
        return;
    }
    let Some((_ovs, mut conn)) = start() else {
        return;
    };
    conn.send_ok(&Message::SetConfig(openflow::switch::SwitchConfig {
        flags: 0,
        miss_send_len: 0xffff,
    }));
    // Packets injected with in_port=CONTROLLER and output:TABLE hit table 0 like any other.
    conn.send_ok(&Message::FlowMod(flow(
        0,
        10,
        0x77,
        Match::new().in_port(port::CONTROLLER),
        vec![apply(vec![
            Action::load(Field::Reg(3), 0, 32, 0xabcd),
            Action::controller(openflow::action::OFPCML_NO_BUFFER),
        ])],
    )));
    let frame: Vec<u8> = [
        &[0xff; 6][..],
        &[2, 0, 0, 0, 0, 1],
        &[
            0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1,
        ],
        &[0; 6],
        &[10, 0, 0, 2],
    ]
    .concat();
    conn.send(&Message::PacketOut(openflow::packet::PacketOut {
        buffer_id: openflow::flow::NO_BUFFER,
        in_port: port::CONTROLLER,
        actions: vec![Action::output(port::TABLE)],
        data: frame.clone(),
    }));
    let (_, m) = conn.recv_until(|_, m| matches!(m, Message::PacketIn(_) | Message::Error(_)));
    let Message::PacketIn(pi) = m else {
        panic!("{m:?}")
    };
    use openflow::packet::PipelineFields;
    assert_eq!(pi.data, frame);
    assert_eq!(pi.reg(3), 0xabcd);
    assert_eq!(pi.cookie, 0x77);
}

#[test]
fn meters_are_installed_and_referenced() {
    if !testbed::require_root("meters_are_installed_and_referenced") {
        return;
    }
    let Some((ovs, mut conn)) = start() else {
        return;
    };
    use openflow::flow::{MeterBand, MeterMod, MeterModCommand, meter_flags};
    conn.send_ok(&Message::MeterMod(MeterMod {
        command: MeterModCommand::Add,
        flags: meter_flags::PKTPS | meter_flags::BURST,
        meter_id: 1,
        bands: vec![MeterBand::Drop {
            rate: 100,
            burst: 20,
        }],
    }));
    // DHCP to the controller, rate limited per port (table 30).
    conn.send_ok(&Message::FlowMod(flow(
        30,
        100,
        0x9,
        ip().ip_proto(17).udp_dst(67),
        vec![
            Instruction::Meter(1),
            apply(vec![Action::controller(openflow::action::OFPCML_NO_BUFFER)]),
        ],
    )));
    let meters = ovs.ofctl(["dump-meters", "br-int"]).expect("dump-meters");
    assert!(
        meters.contains("meter=1 pktps burst bands=")
            && meters.contains("type=drop rate=100 burst_size=20"),
        "{meters}"
    );
    let flows = ovs.ofctl(["dump-flows", "br-int"]).expect("dump-flows");
    assert!(
        flows.contains("actions=meter:1,CONTROLLER:65535"),
        "{flows}"
    );
}

#[test]
fn meter_configs_and_stats_read_back_and_modify_in_place() {
    if !testbed::require_root("meter_configs_and_stats_read_back_and_modify_in_place") {
        return;
    }
    let Some((_ovs, mut conn)) = start() else {
        return;
    };
    use openflow::flow::{MeterBand, MeterMod, MeterModCommand, meter_flags};
    use openflow::meter::OFPM_ALL;
    let flags = meter_flags::KBPS | meter_flags::BURST | meter_flags::STATS;
    let meter = |command, rate| {
        Message::MeterMod(MeterMod {
            command,
            flags,
            meter_id: 7,
            bands: vec![MeterBand::Drop {
                rate,
                burst: rate / 5,
            }],
        })
    };
    conn.send_ok(&meter(MeterModCommand::Add, 10_000));
    conn.send_ok(&Message::FlowMod(flow(
        0,
        100,
        0x7,
        Match::new().in_port(1),
        vec![Instruction::Meter(7), apply(vec![Action::output(2)])],
    )));
    let read = |conn: &mut Conn, body| {
        let xid = conn.send(&Message::MultipartRequest { flags: 0, body });
        let (_, m) = conn.recv_until(|x, _| x == xid);
        match m {
            Message::MultipartReply { body, .. } => body,
            other => panic!("{other:?}"),
        }
    };
    let configs = |conn: &mut Conn| match read(conn, MultipartRequest::MeterConfig(OFPM_ALL)) {
        MultipartReply::MeterConfig(v) => v,
        other => panic!("{other:?}"),
    };
    let c = configs(&mut conn);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].meter_id, c[0].flags), (7, flags), "{c:?}");
    assert_eq!(
        c[0].bands,
        vec![MeterBand::Drop {
            rate: 10_000,
            burst: 2_000
        }]
    );
    // A modify keeps the meter (and the flow that uses it): what a rule change does.
    conn.send_ok(&meter(MeterModCommand::Modify, 20_000));
    let c = configs(&mut conn);
    assert_eq!(
        c[0].bands,
        vec![MeterBand::Drop {
            rate: 20_000,
            burst: 4_000
        }]
    );
    match read(&mut conn, MultipartRequest::MeterStats(7)) {
        MultipartReply::MeterStats(v) => {
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!((v[0].meter_id, v[0].flow_count), (7, 1), "{v:?}");
            assert_eq!(v[0].bands.len(), 1, "{v:?}");
        }
        other => panic!("{other:?}"),
    }
    conn.send_ok(&meter(MeterModCommand::Delete, 0));
    assert!(configs(&mut conn).is_empty());
}

#[test]
fn every_action_kind_reads_back_from_the_switch() {
    if !testbed::require_root("every_action_kind_reads_back_from_the_switch") {
        return;
    }
    let Some((_ovs, mut conn)) = start() else {
        return;
    };
    use openflow::flow::{MeterBand, MeterMod, MeterModCommand, meter_flags};
    conn.send_ok(&Message::MeterMod(MeterMod {
        command: MeterModCommand::Add,
        flags: meter_flags::KBPS,
        meter_id: 3,
        bands: vec![MeterBand::Drop {
            rate: 1000,
            burst: 0,
        }],
    }));
    conn.send_ok(&Message::GroupMod(GroupMod {
        command: GroupModCommand::Add,
        group_type: GroupType::Indirect,
        group_id: 7,
        buckets: vec![Bucket::new(vec![Action::output(1)])],
    }));
    let sent = common::big_flow_mod();
    conn.send_ok(&Message::FlowMod(sent.clone()));
    let stats = dump_flows_via_codec(&mut conn);
    assert_eq!(stats.len(), 1);
    let got = &stats[0];
    // xreg3 is reg6:reg7; OVS reports a match on its low half as reg7.
    let mut want_match = sent.match_.clone();
    for f in &mut want_match.fields {
        if f.field == Field::XReg(3) {
            *f = OxmField::masked(
                Field::Reg(7),
                f.value,
                f.mask.unwrap_or(u128::from(u32::MAX)),
            );
        }
    }
    assert_eq!(sorted(&got.match_), sorted(&want_match));
    assert_eq!(
        (got.cookie, got.priority, got.table_id),
        (sent.cookie, sent.priority, sent.table_id)
    );
    assert_eq!(
        (got.idle_timeout, got.hard_timeout),
        (sent.idle_timeout, sent.hard_timeout)
    );
    // OVS returns the meter as an instruction first, as OpenFlow 1.3 orders them.
    let mut want = sent.instructions.clone();
    want.sort_by_key(|i| matches!(i, Instruction::Meter(_)).then_some(0).unwrap_or(1));
    assert_eq!(got.instructions, want);
}
