mod common;
use openflow::flow::FlowMod;
use openflow::nx::*;
use openflow::*;
#[test]
fn scratch() {
    let mut fm = FlowMod::add(0, 100);
    fm.match_ = Match::new()
        .in_port(5)
        .eth_type(0x0800)
        .ipv4_src("10.0.0.1".parse().unwrap())
        .reg(6, 7)
        .ct_state(0x21, 0x21);
    fm.instructions = vec![
        Instruction::ApplyActions(vec![
            Action::load(Field::Reg(6), 0, 32, 5),
            Action::set_field(Field::TunId, 0x42u64),
            Action::Ct(Ct {
                flags: 1,
                zone: CtZone::Field(Subfield::new(Field::Reg(6), 0, 16)),
                recirc_table: 10,
                alg: 0,
                actions: vec![
                    Action::Nat(Nat {
                        flags: 1,
                        addr_min: Some("1.2.3.4".parse().unwrap()),
                        addr_max: Some("1.2.3.9".parse().unwrap()),
                        port_min: Some(100),
                        port_max: Some(200),
                    }),
                    Action::set_field(Field::CtMark, 7u32),
                ],
            }),
            Action::Controller2(Controller2 {
                userdata: vec![1, 2, 3],
                pause: true,
                ..Default::default()
            }),
            Action::Learn(Learn {
                table_id: 20,
                priority: 5,
                idle_timeout: 30,
                specs: vec![
                    LearnSpec::Match {
                        src: LearnSrc::Field(Subfield::whole(Field::EthSrc)),
                        dst: Subfield::whole(Field::EthDst),
                    },
                    LearnSpec::Match {
                        src: LearnSrc::Imm(0x800),
                        dst: Subfield::whole(Field::EthType),
                    },
                    LearnSpec::Load {
                        src: LearnSrc::Imm(5),
                        dst: Subfield::whole(Field::Reg(7)),
                    },
                    LearnSpec::Output {
                        src: Subfield::whole(Field::NxmInPort),
                    },
                ],
                ..Default::default()
            }),
            Action::RegMove {
                src: Subfield::new(Field::Reg(6), 0, 16),
                dst: Subfield::new(Field::Reg(7), 16, 16),
            },
            Action::Resubmit {
                in_port: 0xfff8,
                table: 20,
                ct: true,
            },
            Action::DecTtlCntIds(vec![1, 2]),
            Action::Note(vec![0xaa, 0xbb, 0, 0, 0, 0]),
            Action::OutputReg {
                src: Subfield::new(Field::Reg(7), 0, 32),
                max_len: 0,
            },
            Action::CtClear,
            Action::controller(128),
            Action::Group(3),
        ]),
        Instruction::WriteMetadata {
            metadata: 5,
            mask: 0xff,
        },
        Instruction::GotoTable(10),
    ];
    let b = Message::FlowMod(fm.clone()).to_vec(1).unwrap();
    println!("{}", common::ofp_parse(&b));
    let (_, m) = Message::decode(&b).unwrap();
    assert_eq!(m, Message::FlowMod(fm));
}
