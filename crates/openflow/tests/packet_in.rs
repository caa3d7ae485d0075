//! Real packet-ins: a namespace sends a frame through a veth into br-int, a flow sends it
//! to the controller, and we decode the pipeline fields OVS attaches (in_port, reg6,
//! metadata), both as OFPT_PACKET_IN and as NXT_PACKET_IN2 with userdata, pause and resume.

mod common;

use std::process::{Child, Command, Stdio};

use common::Conn;
use openflow::action::{Action, OFPCML_NO_BUFFER};
use openflow::flow::FlowMod;
use openflow::message::packet_in_format;
use openflow::nx::Controller2;
use openflow::oxm::{Field, Match};
use openflow::packet::PipelineFields;
use openflow::{Instruction, Message};

struct Setup {
    ovs: testbed::Ovs,
    _ns: testbed::Netns,
    conn: Conn,
    ofport: u32,
    ns_name: String,
}

fn setup(tag: &str) -> Setup {
    let ovs = testbed::Ovs::start().expect("start ovs");
    ovs.add_bridge("br-int").expect("bridge");
    let ns_name = format!("ofp-{tag}");
    let ns = testbed::Netns::new(&ns_name).expect("netns");
    let (vm, host) = (format!("ofp{tag}v"), format!("ofp{tag}h"));
    // The host end lives in the namespace of this OVS instance.
    testbed::veth(&vm, Some(&ns), &host, ovs.own_netns()).expect("veth");
    ns.exec(["ip", "addr", "add", "10.77.0.1/24", "dev", &vm])
        .expect("addr");
    ns.exec(["ip", "link", "set", &vm, "up"]).expect("up");
    ovs.cmd("ip")
        .args(["link", "set", &host, "up"])
        .output()
        .expect("up host");
    ovs.vsctl(["add-port", "br-int", &host]).expect("add-port");
    let ofport: u32 = ovs
        .vsctl(["get", "Interface", &host, "ofport"])
        .expect("ofport")
        .trim()
        .parse()
        .expect("ofport number");
    let mut conn = Conn::connect(&ovs.mgmt_sock("br-int"));
    // OVS sends asynchronous messages to a service (mgmt socket) connection only once it
    // has set a nonzero miss_send_len.
    conn.send_ok(&Message::SetConfig(openflow::switch::SwitchConfig {
        flags: 0,
        miss_send_len: 0xffff,
    }));
    Setup {
        ovs,
        _ns: ns,
        conn,
        ofport,
        ns_name,
    }
}

fn classify(ofport: u32) -> FlowMod {
    FlowMod {
        cookie: 0xabc,
        match_: Match::new().in_port(ofport),
        instructions: vec![
            Instruction::ApplyActions(vec![Action::load(Field::Reg(6), 0, 32, 0x2a)]),
            Instruction::WriteMetadata {
                metadata: 0x99,
                mask: u64::MAX,
            },
            Instruction::GotoTable(1),
        ],
        ..FlowMod::add(0, 100)
    }
}

/// Makes the namespace send ARP requests (a UDP datagram to an unresolved neighbour,
/// through bash's /dev/udp: no ping needed) until the child is killed.
fn ping(ns: &str) -> Child {
    let script = "for i in $(seq 50); do echo x > /dev/udp/10.77.0.2/9; sleep 0.2; done";
    Command::new("ip")
        .args(["netns", "exec", ns, "bash", "-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ping")
}

#[test]
fn packet_in_carries_pipeline_fields() {
    if !testbed::require_root("packet_in_carries_pipeline_fields") {
        return;
    }
    let mut s = setup("pi");
    s.conn.send_ok(&Message::FlowMod(classify(s.ofport)));
    let to_ctl = FlowMod {
        cookie: 0xdef,
        match_: Match::new().eth_type(0x0806),
        instructions: vec![Instruction::ApplyActions(vec![Action::controller(
            OFPCML_NO_BUFFER,
        )])],
        ..FlowMod::add(1, 100)
    };
    s.conn.send_ok(&Message::FlowMod(to_ctl));
    let mut child = ping(&s.ns_name);
    let (_, m) = s.conn.recv_until(|_, m| matches!(m, Message::PacketIn(_)));
    let _ = child.kill();
    let _ = child.wait();
    let Message::PacketIn(pi) = m else {
        unreachable!()
    };
    assert_eq!(pi.in_port(), Some(s.ofport));
    assert_eq!(pi.reg(6), 0x2a);
    assert_eq!(pi.metadata(), 0x99);
    assert_eq!(pi.table_id, 1);
    assert_eq!(pi.cookie, 0xdef);
    assert_eq!(pi.reason, openflow::packet::reason::ACTION);
    assert_eq!(
        pi.data.get(12..14),
        Some(&[0x08, 0x06][..]),
        "not an ARP frame"
    );
    assert_eq!(usize::from(pi.total_len), pi.data.len());
    drop(s.ovs);
}

#[test]
fn packet_in2_userdata_pause_and_resume() {
    if !testbed::require_root("packet_in2_userdata_pause_and_resume") {
        return;
    }
    let mut s = setup("p2");
    s.conn.send_ok(&Message::SetPacketInFormat(
        packet_in_format::NXT_PACKET_IN2,
    ));
    s.conn.send_ok(&Message::FlowMod(classify(s.ofport)));
    // controller2 pauses; after resume the pipeline loads reg0 and sends a plain packet-in.
    let to_ctl = FlowMod {
        cookie: 0x1234,
        match_: Match::new().eth_type(0x0806),
        instructions: vec![Instruction::ApplyActions(vec![
            Action::Controller2(Controller2 {
                userdata: vec![0xde, 0xad, 0xbe, 0xef, 0x01],
                pause: true,
                ..Controller2::default()
            }),
            Action::load(Field::Reg(0), 0, 32, 0x77),
            Action::controller(OFPCML_NO_BUFFER),
        ])],
        ..FlowMod::add(1, 100)
    };
    s.conn.send_ok(&Message::FlowMod(to_ctl));
    let mut child = ping(&s.ns_name);
    let (_, m) = s
        .conn
        .recv_until(|_, m| matches!(m, Message::PacketIn2(p) if p.continuation.is_some()));
    let Message::PacketIn2(p) = m else {
        unreachable!()
    };
    assert_eq!(
        p.userdata.as_deref(),
        Some(&[0xde, 0xad, 0xbe, 0xef, 0x01][..])
    );
    // A paused packet-in2 reports table 0 / cookie 0: OVS keeps the real ones inside the
    // continuation (checked on the packet-in that follows the resume).
    assert!(p.table_id.is_some() && p.cookie.is_some(), "{p:?}");
    assert_eq!(p.reason, Some(openflow::packet::reason::ACTION));
    assert_eq!(p.reg(6), 0x2a);
    assert_eq!(p.metadata(), 0x99);
    assert_eq!(p.in_port(), Some(s.ofport));
    assert_eq!(p.packet.get(12..14), Some(&[0x08, 0x06][..]));

    // Resume: the same properties sent back (without userdata).
    let resume = openflow::packet::PacketIn2 {
        userdata: None,
        ..p.clone()
    };
    s.conn.send(&Message::Resume(resume));
    let (_, m) = s.conn.recv_until(|_, m| {
        matches!(m, Message::PacketIn2(q) if q.continuation.is_none() && q.packet == p.packet)
            || matches!(m, Message::Error(_))
    });
    let _ = child.kill();
    let _ = child.wait();
    let Message::PacketIn2(after) = m else {
        panic!("resume failed: {m:?}")
    };
    assert_eq!(after.reg(0), 0x77, "pipeline did not continue after resume");
    assert_eq!(after.reg(6), 0x2a);
    assert_eq!(after.userdata, None);
    assert_eq!(after.table_id, Some(1));
    assert_eq!(after.cookie, Some(0x1234));
    drop(s.ovs);
}
