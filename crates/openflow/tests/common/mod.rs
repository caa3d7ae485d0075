//! Helpers shared by the real-OVS tests.
#![allow(dead_code)]

use std::io::Write;
use std::process::Command;

/// Whether tests that only need the OVS tools (not a running switch) can run.
pub fn can_use_ovs_tools(test: &str) -> bool {
    if testbed::have_ovs() {
        return true;
    }
    // Without OVS: a root machine is a broken set-up (require_root asserts); else skip.
    testbed::require_root(test)
}

/// Runs `ovs-ofctl ofp-parse` on raw OpenFlow bytes and returns its text.
pub fn ofp_parse(bytes: &[u8]) -> String {
    let mut f = tempfile::NamedTempFile::new().expect("tempfile");
    f.write_all(bytes).expect("write");
    let out = Command::new("ovs-ofctl")
        .arg("ofp-parse")
        .arg(f.path())
        .output()
        .expect("run ovs-ofctl");
    assert!(
        out.status.success(),
        "ofp-parse failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

use openflow::{FrameReader, Message, XidAllocator};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A blocking OpenFlow connection over a unix socket, for tests.
pub struct Conn {
    pub sock: UnixStream,
    pub frames: FrameReader,
    pub xids: XidAllocator,
    /// Messages received while waiting for something else.
    pub backlog: Vec<(u32, Message)>,
}

impl Conn {
    /// Connects and does hello (OpenFlow 1.3).
    pub fn connect(path: &Path) -> Conn {
        let sock = UnixStream::connect(path).expect("connect mgmt socket");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut c = Conn {
            sock,
            frames: FrameReader::new(),
            xids: XidAllocator::new(),
            backlog: Vec::new(),
        };
        c.send(&Message::Hello(openflow::switch::Hello::of13()));
        match c.recv() {
            (_, Message::Hello(h)) => assert!(h.supports(4), "switch does not speak 1.3: {h:?}"),
            other => panic!("expected hello, got {other:?}"),
        }
        c
    }

    /// Sends a message with a fresh xid; returns the xid.
    pub fn send(&mut self, m: &Message) -> u32 {
        let xid = self.xids.next_xid();
        let buf = m.to_vec(xid).expect("encode");
        self.sock.write_all(&buf).expect("write");
        xid
    }

    /// Writes raw bytes.
    pub fn send_raw(&mut self, buf: &[u8]) {
        self.sock.write_all(buf).expect("write");
    }

    /// Receives the next message (answering echo requests).
    pub fn recv(&mut self) -> (u32, Message) {
        loop {
            if let Some(f) = self.frames.next_frame().expect("framing") {
                let (xid, m) = Message::decode(f).expect("decode message from OVS");
                if let Message::EchoRequest(d) = &m {
                    let b = Message::EchoReply(d.clone()).to_vec(xid).expect("encode");
                    self.sock.write_all(&b).expect("write");
                    continue;
                }
                return (xid, m);
            }
            let mut buf = [0u8; 65536];
            let n = self.sock.read(&mut buf).expect("read from OVS");
            assert!(n > 0, "OVS closed the connection");
            self.frames.extend(buf.get(..n).unwrap_or(&[]));
        }
    }

    /// Receives until `pred` matches, keeping other messages in the backlog.
    pub fn recv_until(&mut self, mut pred: impl FnMut(u32, &Message) -> bool) -> (u32, Message) {
        if let Some(i) = self.backlog.iter().position(|(x, m)| pred(*x, m)) {
            return self.backlog.remove(i);
        }
        loop {
            let (x, m) = self.recv();
            if pred(x, &m) {
                return (x, m);
            }
            self.backlog.push((x, m));
        }
    }

    /// Sends a barrier and waits for its reply; returns every message received before it
    /// that answers an earlier xid (errors, replies).
    pub fn barrier(&mut self) -> Vec<(u32, Message)> {
        let xid = self.send(&Message::BarrierRequest);
        let mut before = Vec::new();
        loop {
            let (x, m) = self.recv();
            if x == xid && m == Message::BarrierReply {
                return before;
            }
            before.push((x, m));
        }
    }

    /// Sends `m` then a barrier; panics on any error reply.
    pub fn send_ok(&mut self, m: &Message) {
        self.send(m);
        let got = self.barrier();
        assert!(
            got.iter().all(|(_, m)| !matches!(m, Message::Error(_))),
            "switch said {got:?}"
        );
    }
}

/// Removes duration/n_packets/n_bytes/idle_age from `ovs-ofctl dump-flows` text and drops
/// the reply header line, so flows compare across runs.
pub fn normalise_dump(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .filter(|l| !l.contains("reply"))
        .map(|l| {
            l.trim()
                .split(", ")
                .filter(|p| {
                    !(p.starts_with("duration=")
                        || p.starts_with("n_packets=")
                        || p.starts_with("n_bytes=")
                        || p.starts_with("idle_age=")
                        || p.starts_with("hard_age="))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

#[allow(clippy::wildcard_imports)]
mod kitchen_sink {
    pub use openflow::Instruction;
    pub use openflow::action::{Action, port};
    pub use openflow::flow::*;
    pub use openflow::nx::*;
    pub use openflow::oxm::{Field, Match, OxmField, mac_u128};
}

/// A flow-mod using every action and instruction kind at once (IPv6/TCP match so that ct
/// with an ALG and NAT ports are consistent); refers to group 7 and meter 3.
pub fn big_flow_mod() -> openflow::flow::FlowMod {
    use kitchen_sink::*;
    FlowMod {
        cookie: 0x1234_0000_0000_0001,
        idle_timeout: 60,
        hard_timeout: 600,
        flags: flow_flags::SEND_FLOW_REM | flow_flags::CHECK_OVERLAP,
        match_: Match::new()
            .in_port(5)
            .eth_type(0x86dd)
            .with(OxmField::new(
                Field::Ipv6Src,
                0x2001_0db8_0000_0000_0000_0000_0000_0001u128,
            ))
            .masked(
                Field::Ipv6Dst,
                0x2001_0db8_0000_0000_0000_0000_0000_0000u128,
                u128::MAX << 64,
            )
            .ip_proto(6)
            .masked(Field::TcpSrc, 0x400u16, 0xfc00u16)
            .masked(Field::XReg(3), 5u64, 0xffu64)
            .masked(Field::TunIpv4Src, 0x0a00_0000u32, 0xff00_0000u32)
            .with(OxmField::new(Field::TunIpv4Dst, 0x0a00_0002u32))
            .masked(Field::TunFlags, 1u16, 1u16)
            .masked(Field::CtMark, 1u32, 1u32)
            .masked(Field::CtLabel, 1u128 << 64, 1u128 << 64)
            .ct_zone(3)
            .masked(Field::PktMark, 0x10u32, 0xf0u32)
            .with(OxmField::new(Field::VlanVid, 0x1000u16 | 10))
            .with(OxmField::new(Field::VlanPcp, 3u8))
            .masked(Field::Metadata, 0x10u64, 0xffffu64),
        instructions: vec![
            Instruction::ApplyActions(vec![
                Action::PushVlan(0x8100),
                Action::set_field(Field::VlanVid, 0x1000u16 | 20),
                Action::PopVlan,
                Action::DecNwTtl,
                Action::SetQueue(2),
                Action::RegLoad2(OxmField::masked(Field::Reg(3), 0x50u32, 0xf0u32)),
                Action::FinTimeout { idle: 10, hard: 20 },
                Action::Controller {
                    max_len: 100,
                    controller_id: 3,
                    reason: 0,
                },
                Action::Multipath(Multipath {
                    fields: 0,
                    basis: 50,
                    algorithm: 2,
                    max_link: 3,
                    arg: 0,
                    dst: Subfield::new(Field::Reg(0), 0, 2),
                }),
                Action::Ct(Ct {
                    flags: ct_flags::COMMIT | ct_flags::FORCE,
                    zone: CtZone::Imm(5),
                    recirc_table: 255,
                    alg: 21,
                    actions: vec![
                        Action::Nat(Nat {
                            flags: nat_flags::DST | nat_flags::PERSISTENT | nat_flags::PROTO_HASH,
                            addr_min: Some("2001:db8::1".parse().unwrap()),
                            addr_max: None,
                            port_min: Some(80),
                            port_max: None,
                        }),
                        Action::set_field(Field::CtLabel, 7u128),
                    ],
                }),
                Action::Learn(Learn {
                    table_id: 3,
                    hard_timeout: 10,
                    flags: learn_flags::SEND_FLOW_REM | learn_flags::DELETE_LEARNED,
                    fin_idle_timeout: 2,
                    fin_hard_timeout: 4,
                    specs: vec![
                        LearnSpec::Match {
                            src: LearnSrc::Imm(mac_u128([0xfa, 0x16, 0x3e, 1, 2, 3])),
                            dst: Subfield::whole(Field::EthSrc),
                        },
                        LearnSpec::Load {
                            src: LearnSrc::Field(Subfield::new(Field::Reg(1), 4, 8)),
                            dst: Subfield::new(Field::Reg(2), 8, 8),
                        },
                        LearnSpec::Output {
                            src: Subfield::new(Field::Reg(3), 0, 16),
                        },
                    ],
                    ..Learn::default()
                }),
                Action::Controller2(Controller2 {
                    max_len: 64,
                    controller_id: 2,
                    reason: 2,
                    userdata: vec![],
                    pause: false,
                    meter_id: 4,
                }),
            ]),
            Instruction::ClearActions,
            Instruction::WriteActions(vec![Action::Group(7), Action::output(port::NORMAL)]),
            Instruction::Meter(3),
        ],
        ..FlowMod::add(3, 1000)
    }
}
