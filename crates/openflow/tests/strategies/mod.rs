//! proptest strategies for every codec type (shared by the round-trip and robustness tests).
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use openflow::action::Action;
use openflow::flow::*;
use openflow::multipart::*;
use openflow::nx::*;
use openflow::oxm::{Field, Match, OxmField, low_bits};
use openflow::packet::{PacketIn, PacketIn2, PacketOut};
use openflow::switch::Port;
use openflow::{Instruction, Message};
use proptest::collection::vec;
use proptest::prelude::*;

pub fn field() -> impl Strategy<Value = Field> {
    use Field::*;
    prop_oneof![
        Just(InPort),
        Just(NxmInPort),
        Just(Metadata),
        Just(EthDst),
        Just(EthSrc),
        Just(EthType),
        Just(VlanVid),
        Just(VlanPcp),
        Just(IpDscp),
        Just(IpEcn),
        Just(IpProto),
        Just(Ipv4Src),
        Just(Ipv4Dst),
        Just(TcpSrc),
        Just(TcpDst),
        Just(UdpSrc),
        Just(UdpDst),
        Just(Icmpv4Type),
        Just(Icmpv4Code),
        Just(ArpOp),
        Just(ArpSpa),
        Just(ArpTpa),
        Just(ArpSha),
        Just(ArpTha),
        Just(Ipv6Src),
        Just(Ipv6Dst),
        Just(Icmpv6Type),
        Just(Icmpv6Code),
        Just(NdTarget),
        Just(NdSll),
        Just(NdTll),
        Just(TunId),
        (0u8..16).prop_map(Reg),
        (0u8..8).prop_map(XReg),
        (0u8..4).prop_map(XxReg),
        Just(TunIpv4Src),
        Just(TunIpv4Dst),
        Just(TunFlags),
        Just(CtState),
        Just(CtZone),
        Just(CtMark),
        Just(CtLabel),
        Just(CtNwProto),
        Just(CtNwSrc),
        Just(CtNwDst),
        Just(CtIpv6Src),
        Just(CtIpv6Dst),
        Just(CtTpSrc),
        Just(CtTpDst),
        Just(PktMark),
        Just(IpTtl),
        Just(IpFrag),
        Just(TcpFlags),
        Just(RecircId),
        Just(DpHash),
        Just(ConjId),
    ]
}

fn value_for(f: Field) -> impl Strategy<Value = u128> {
    let m = low_bits(u32::from(f.byte_len()) * 8);
    any::<u128>().prop_map(move |v| v & m)
}

pub fn oxm_field() -> impl Strategy<Value = OxmField> {
    field().prop_flat_map(|f| {
        (value_for(f), proptest::option::of(value_for(f))).prop_map(move |(value, mask)| OxmField {
            field: f,
            value,
            mask,
        })
    })
}

pub fn oxm_exact() -> impl Strategy<Value = OxmField> {
    field().prop_flat_map(|f| value_for(f).prop_map(move |value| OxmField::new(f, value)))
}

pub fn match_() -> impl Strategy<Value = Match> {
    vec(oxm_field(), 0..8).prop_map(|fields| Match { fields })
}

pub fn subfield() -> impl Strategy<Value = Subfield> {
    (field(), 0u16..1024, 1u16..=64).prop_map(|(field, ofs, n_bits)| Subfield {
        field,
        ofs,
        n_bits,
    })
}

fn note_bytes() -> impl Strategy<Value = Vec<u8>> {
    (0usize..4).prop_flat_map(|k| vec(any::<u8>(), 6 + 8 * k))
}

fn nat() -> impl Strategy<Value = Nat> {
    let v4 = (any::<u32>(), any::<u32>())
        .prop_map(|(a, b)| (IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b))));
    let v6 = (any::<u128>(), any::<u128>())
        .prop_map(|(a, b)| (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b))));
    (
        0u16..32,
        prop_oneof![v4, v6],
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(
            |(flags, (a, b), has_min, has_max, port_min, port_max)| Nat {
                flags,
                addr_min: has_min.then_some(a),
                addr_max: has_max.then_some(b),
                port_min,
                port_max,
            },
        )
}

fn learn_spec() -> impl Strategy<Value = LearnSpec> {
    let src_field =
        (field(), 0u16..1024, 1u16..=1023, field(), 0u16..1024).prop_map(|(sf, so, n, df, dof)| {
            (
                LearnSrc::Field(Subfield::new(sf, so, n)),
                Subfield::new(df, dof, n),
            )
        });
    let src_imm = (1u16..=128, any::<u128>(), field(), 0u16..1024).prop_map(|(n, v, df, dof)| {
        let bytes = 2 * u32::from(n).div_ceil(16);
        (
            LearnSrc::Imm(v & low_bits(bytes * 8)),
            Subfield::new(df, dof, n),
        )
    });
    prop_oneof![
        (prop_oneof![src_field, src_imm], any::<bool>()).prop_map(|((src, dst), is_match)| {
            if is_match {
                LearnSpec::Match { src, dst }
            } else {
                LearnSpec::Load { src, dst }
            }
        }),
        (field(), 0u16..1024, 1u16..=1023).prop_map(|(f, o, n)| LearnSpec::Output {
            src: Subfield::new(f, o, n)
        }),
    ]
}

fn learn() -> impl Strategy<Value = Learn> {
    (
        any::<[u16; 7]>(),
        any::<u64>(),
        any::<u8>(),
        vec(learn_spec(), 0..5),
    )
        .prop_map(|(a, cookie, table_id, specs)| Learn {
            idle_timeout: a[0],
            hard_timeout: a[1],
            priority: a[2],
            cookie,
            flags: a[3],
            table_id,
            fin_idle_timeout: a[4],
            fin_hard_timeout: a[5],
            specs,
        })
}

fn controller2() -> impl Strategy<Value = Controller2> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
        vec(any::<u8>(), 0..20),
        any::<bool>(),
        any::<u32>(),
    )
        .prop_map(
            |(max_len, controller_id, reason, userdata, pause, meter_id)| Controller2 {
                max_len,
                controller_id,
                reason,
                userdata,
                pause,
                meter_id,
            },
        )
}

/// Actions that may appear anywhere (not ct, which nests).
pub fn leaf_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (any::<u32>(), any::<u16>()).prop_map(|(port, max_len)| Action::Output { port, max_len }),
        any::<u32>().prop_map(Action::Group),
        oxm_exact().prop_map(Action::SetField),
        any::<u16>().prop_map(Action::PushVlan),
        Just(Action::PopVlan),
        any::<u16>().prop_map(Action::PushMpls),
        any::<u16>().prop_map(Action::PopMpls),
        Just(Action::DecNwTtl),
        any::<u32>().prop_map(Action::SetQueue),
        (any::<u16>(), any::<u8>(), any::<bool>())
            .prop_map(|(in_port, table, ct)| Action::Resubmit { in_port, table, ct }),
        (subfield(), subfield()).prop_map(|(src, mut dst)| {
            dst.n_bits = src.n_bits;
            Action::RegMove { src, dst }
        }),
        (subfield(), any::<u64>()).prop_map(|(dst, value)| Action::RegLoad { dst, value }),
        oxm_field().prop_map(Action::RegLoad2),
        (subfield(), any::<u16>()).prop_map(|(src, max_len)| Action::OutputReg { src, max_len }),
        nat().prop_map(Action::Nat),
        Just(Action::CtClear),
        (any::<u32>(), any::<u8>(), any::<u8>()).prop_map(|(id, clause, n_clauses)| {
            Action::Conjunction {
                id,
                clause,
                n_clauses,
            }
        }),
        learn().prop_map(Action::Learn),
        (any::<u16>(), any::<u16>(), any::<u8>()).prop_map(|(max_len, controller_id, reason)| {
            Action::Controller {
                max_len,
                controller_id,
                reason,
            }
        }),
        controller2().prop_map(Action::Controller2),
        vec(any::<u16>(), 0..10).prop_map(Action::DecTtlCntIds),
        note_bytes().prop_map(Action::Note),
        (any::<u16>(), any::<u16>()).prop_map(|(idle, hard)| Action::FinTimeout { idle, hard }),
        Just(Action::Exit),
        (any::<[u16; 4]>(), any::<u32>(), subfield()).prop_map(|(a, arg, dst)| Action::Multipath(
            Multipath {
                fields: a[0],
                basis: a[1],
                algorithm: a[2],
                max_link: a[3],
                arg,
                dst,
            }
        )),
        (
            any::<u32>().prop_filter("not Nicira", |e| *e != openflow::action::NX_VENDOR_ID),
            (0usize..3).prop_flat_map(|k| vec(any::<u8>(), 8 * k))
        )
            .prop_map(|(experimenter, data)| Action::Experimenter { experimenter, data }),
        (
            100u16..0xfff0,
            (0usize..3).prop_flat_map(|k| vec(any::<u8>(), 4 + 8 * k))
        )
            .prop_map(|(ty, data)| Action::Unknown { ty, data }),
    ]
}

fn ct() -> impl Strategy<Value = Ct> {
    let zone = prop_oneof![
        any::<u16>().prop_map(CtZone::Imm),
        subfield().prop_map(CtZone::Field),
    ];
    (
        any::<u16>(),
        zone,
        any::<u8>(),
        any::<u16>(),
        vec(leaf_action(), 0..3),
    )
        .prop_map(|(flags, zone, recirc_table, alg, actions)| Ct {
            flags,
            zone,
            recirc_table,
            alg,
            actions,
        })
}

pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![8 => leaf_action(), 1 => ct().prop_map(Action::Ct)]
}

pub fn actions() -> impl Strategy<Value = Vec<Action>> {
    vec(action(), 0..6)
}

pub fn instruction() -> impl Strategy<Value = Instruction> {
    prop_oneof![
        any::<u8>().prop_map(Instruction::GotoTable),
        (any::<u64>(), any::<u64>())
            .prop_map(|(metadata, mask)| Instruction::WriteMetadata { metadata, mask }),
        actions().prop_map(Instruction::WriteActions),
        actions().prop_map(Instruction::ApplyActions),
        Just(Instruction::ClearActions),
        any::<u32>().prop_map(Instruction::Meter),
        (
            7u16..0xffff,
            (0usize..3).prop_flat_map(|k| vec(any::<u8>(), 4 + 8 * k))
        )
            .prop_map(|(ty, data)| Instruction::Unknown { ty, data }),
    ]
}

pub fn flow_mod() -> impl Strategy<Value = FlowMod> {
    let cmd = prop_oneof![
        Just(FlowModCommand::Add),
        Just(FlowModCommand::Modify),
        Just(FlowModCommand::ModifyStrict),
        Just(FlowModCommand::Delete),
        Just(FlowModCommand::DeleteStrict),
    ];
    (
        any::<(u64, u64, u8, u16, u16, u16)>(),
        cmd,
        any::<(u32, u32, u32, u16)>(),
        match_(),
        vec(instruction(), 0..4),
    )
        .prop_map(
            |(
                (cookie, cookie_mask, table_id, idle_timeout, hard_timeout, priority),
                command,
                (buffer_id, out_port, out_group, flags),
                match_,
                instructions,
            )| FlowMod {
                cookie,
                cookie_mask,
                table_id,
                command,
                idle_timeout,
                hard_timeout,
                priority,
                buffer_id,
                out_port,
                out_group,
                flags,
                match_,
                instructions,
            },
        )
}

fn group_type() -> impl Strategy<Value = GroupType> {
    prop_oneof![
        Just(GroupType::All),
        Just(GroupType::Select),
        Just(GroupType::Indirect),
        Just(GroupType::FastFailover)
    ]
}

pub fn bucket() -> impl Strategy<Value = Bucket> {
    (any::<u16>(), any::<u32>(), any::<u32>(), actions()).prop_map(
        |(weight, watch_port, watch_group, actions)| Bucket {
            weight,
            watch_port,
            watch_group,
            actions,
        },
    )
}

pub fn group_mod() -> impl Strategy<Value = GroupMod> {
    let cmd = prop_oneof![
        Just(GroupModCommand::Add),
        Just(GroupModCommand::Modify),
        Just(GroupModCommand::Delete)
    ];
    (cmd, group_type(), any::<u32>(), vec(bucket(), 0..4)).prop_map(
        |(command, group_type, group_id, buckets)| GroupMod {
            command,
            group_type,
            group_id,
            buckets,
        },
    )
}

pub fn packet_in() -> impl Strategy<Value = PacketIn> {
    (
        any::<(u32, u16, u8, u8, u64)>(),
        match_(),
        vec(any::<u8>(), 0..100),
    )
        .prop_map(
            |((buffer_id, total_len, reason, table_id, cookie), match_, data)| PacketIn {
                buffer_id,
                total_len,
                reason,
                table_id,
                cookie,
                match_,
                data,
            },
        )
}

pub fn packet_in2() -> impl Strategy<Value = PacketIn2> {
    use proptest::option::of;
    (
        vec(any::<u8>(), 0..100),
        (
            of(any::<u32>()),
            of(any::<u32>()),
            of(any::<u8>()),
            of(any::<u64>()),
            of(any::<u8>()),
        ),
        match_(),
        of(vec(any::<u8>(), 0..20)),
        of(vec(any::<u8>(), 0..40)),
    )
        .prop_map(
            |(
                packet,
                (full_len, buffer_id, table_id, cookie, reason),
                metadata,
                userdata,
                continuation,
            )| PacketIn2 {
                packet,
                full_len,
                buffer_id,
                table_id,
                cookie,
                reason,
                metadata,
                userdata,
                continuation,
            },
        )
}

fn name(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-zA-Z0-9 ,.-]{{0,{max}}}")).expect("regex")
}

pub fn port() -> impl Strategy<Value = Port> {
    (any::<u32>(), any::<[u8; 6]>(), name(15), any::<[u32; 8]>()).prop_map(
        |(port_no, hw_addr, name, a)| Port {
            port_no,
            hw_addr,
            name,
            config: a[0],
            state: a[1],
            curr: a[2],
            advertised: a[3],
            supported: a[4],
            peer: a[5],
            curr_speed: a[6],
            max_speed: a[7],
        },
    )
}

pub fn flow_stats() -> impl Strategy<Value = FlowStats> {
    (
        any::<(u8, u32, u32, u16, u16, u16, u16)>(),
        any::<(u64, u64, u64)>(),
        match_(),
        vec(instruction(), 0..3),
    )
        .prop_map(
            |(
                (
                    table_id,
                    duration_sec,
                    duration_nsec,
                    priority,
                    idle_timeout,
                    hard_timeout,
                    flags,
                ),
                (cookie, packet_count, byte_count),
                match_,
                instructions,
            )| FlowStats {
                table_id,
                duration_sec,
                duration_nsec,
                priority,
                idle_timeout,
                hard_timeout,
                flags,
                cookie,
                packet_count,
                byte_count,
                match_,
                instructions,
            },
        )
}

pub fn multipart() -> impl Strategy<Value = Message> {
    let req = prop_oneof![
        Just(MultipartRequest::Desc),
        Just(MultipartRequest::PortDesc),
        Just(MultipartRequest::GroupDesc),
        (any::<(u8, u32, u32, u64, u64)>(), match_(), any::<bool>()).prop_map(
            |((table_id, out_port, out_group, cookie, cookie_mask), match_, aggregate)| {
                let r = FlowStatsRequest {
                    table_id,
                    out_port,
                    out_group,
                    cookie,
                    cookie_mask,
                    match_,
                };
                if aggregate {
                    MultipartRequest::Aggregate(r)
                } else {
                    MultipartRequest::Flow(r)
                }
            }
        ),
    ];
    let rep = prop_oneof![
        (name(255), name(255), name(255), name(31), name(255)).prop_map(|(a, b, c, d, e)| {
            MultipartReply::Desc(Desc {
                mfr_desc: a,
                hw_desc: b,
                sw_desc: c,
                serial_num: d,
                dp_desc: e,
            })
        }),
        vec(flow_stats(), 0..4).prop_map(MultipartReply::Flow),
        any::<(u64, u64, u32)>().prop_map(|(packet_count, byte_count, flow_count)| {
            MultipartReply::Aggregate(AggregateStats {
                packet_count,
                byte_count,
                flow_count,
            })
        }),
        vec(port(), 0..4).prop_map(MultipartReply::PortDesc),
        vec(
            (group_type(), any::<u32>(), vec(bucket(), 0..3)).prop_map(
                |(group_type, group_id, buckets)| GroupDesc {
                    group_type,
                    group_id,
                    buckets
                }
            ),
            0..3
        )
        .prop_map(MultipartReply::GroupDesc),
    ];
    prop_oneof![
        (any::<u16>(), req).prop_map(|(flags, body)| Message::MultipartRequest { flags, body }),
        (any::<u16>(), rep).prop_map(|(flags, body)| Message::MultipartReply { flags, body }),
    ]
}

pub fn packet_out() -> impl Strategy<Value = PacketOut> {
    (
        any::<u32>(),
        any::<u32>(),
        actions(),
        vec(any::<u8>(), 0..64),
    )
        .prop_map(|(buffer_id, in_port, actions, data)| PacketOut {
            buffer_id,
            in_port,
            actions,
            data,
        })
}

/// Any message this crate encodes.
pub fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        flow_mod().prop_map(Message::FlowMod),
        group_mod().prop_map(Message::GroupMod),
        packet_in().prop_map(Message::PacketIn),
        packet_in2().prop_map(Message::PacketIn2),
        packet_in2().prop_map(Message::Resume),
        packet_out().prop_map(Message::PacketOut),
        multipart(),
        Just(Message::BarrierRequest),
        any::<u16>().prop_map(Message::CtFlushZone),
        any::<u32>().prop_map(Message::SetPacketInFormat),
        Just(Message::FeaturesRequest),
        vec(any::<u8>(), 0..32).prop_map(Message::EchoRequest),
        (any::<u32>(), any::<u16>(), flow_mod()).prop_map(|(bundle_id, flags, f)| {
            Message::BundleAdd {
                bundle_id,
                flags,
                message: Box::new(Message::FlowMod(f)),
            }
        }),
    ]
}
