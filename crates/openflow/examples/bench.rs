//! Codec and real-switch throughput (a benchmark, not a test). Run in release mode:
//!
//! `cargo run --release -p openflow --example bench [N]`
//!
//! Prints flow-mod encode and decode rates on one core, then (as root, with OVS installed)
//! the time to push N flows into a real Open vSwitch through this codec (pipelined
//! flow-mods + barrier, and one atomic bundle) next to `ovs-ofctl add-flows` of the same
//! flows from a file (plain and `--bundle`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use openflow::bundle::{BundleCtrl, BundleCtrlType, bundle_flags};
use openflow::flow::FlowMod;
use openflow::oxm::Field;
use openflow::{Action, Instruction, Match, Message};

fn mac(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0xfa, 0x16, 0x3e, b[1], b[2], b[3]]
}

/// Flow `i`: an L2 lookup entry as the pipeline's table 55 holds them.
fn flow(i: u32) -> FlowMod {
    FlowMod {
        cookie: 0x55_0000_0000 | u64::from(i),
        match_: Match::new()
            .metadata(u64::from(0x10 + i % 16))
            .eth_dst(mac(i)),
        instructions: vec![
            Instruction::ApplyActions(vec![Action::load(Field::Reg(7), 0, 32, u64::from(i))]),
            Instruction::GotoTable(75),
        ],
        ..FlowMod::add(55, 100)
    }
}

fn flow_text(i: u32) -> String {
    let m = mac(i);
    format!(
        "cookie=0x{:x},table=55,priority=100,metadata=0x{:x},dl_dst={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x},actions=load:0x{:x}->NXM_NX_REG7[],goto_table:75",
        0x55_0000_0000u64 | u64::from(i),
        0x10 + i % 16,
        m[0],
        m[1],
        m[2],
        m[3],
        m[4],
        m[5],
        i
    )
}

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{:.2} M/s ({:.0} ns each)",
        n as f64 / d.as_secs_f64() / 1e6,
        d.as_nanos() as f64 / n as f64
    )
}

fn codec(n: u32) {
    let flows: Vec<Message> = (0..n).map(|i| Message::FlowMod(flow(i))).collect();
    let mut buf = Vec::with_capacity(flows.len() * 96);
    // Warm up, then measure the best of 5 runs.
    let mut best_enc = Duration::MAX;
    for _ in 0..5 {
        buf.clear();
        let t = Instant::now();
        for (i, m) in flows.iter().enumerate() {
            m.encode(i as u32, &mut buf).expect("encode");
        }
        best_enc = best_enc.min(t.elapsed());
        black_box(&buf);
    }
    let bytes = buf.len();
    let mut best_dec = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let mut fr = openflow::FrameReader::new();
        fr.extend(&buf);
        let mut count = 0;
        while let Some(f) = fr.next_frame().expect("frame") {
            black_box(Message::decode(f).expect("decode"));
            count += 1;
        }
        assert_eq!(count, flows.len());
        best_dec = best_dec.min(t.elapsed());
    }
    println!("flow-mod size: {} bytes", bytes / flows.len());
    println!(
        "encode: {} flow-mods in {:?}: {}",
        flows.len(),
        best_enc,
        rate(flows.len(), best_enc)
    );
    println!(
        "decode: {} flow-mods in {:?}: {}",
        flows.len(),
        best_dec,
        rate(flows.len(), best_dec)
    );
}

fn flow_count(ovs: &testbed::Ovs) -> usize {
    let out = ovs
        .ofctl(["dump-aggregate", "br-int"])
        .expect("dump-aggregate");
    out.split("flow_count=")
        .nth(1)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn clear(ovs: &testbed::Ovs) {
    ovs.ofctl(["del-flows", "br-int"]).expect("del-flows");
    assert_eq!(flow_count(ovs), 0);
}

fn real_switch(n: u32) {
    if !testbed::is_root() || !testbed::have_ovs() {
        println!("real OVS: skipped (needs root and Open vSwitch)");
        return;
    }
    let ovs = testbed::Ovs::start().expect("start ovs");
    ovs.add_bridge("br-int").expect("bridge");
    let mut conn = common::Conn::connect(&ovs.mgmt_sock("br-int"));

    // 1. Pipelined flow-mods, one buffer per 1000, then a barrier.
    let t = Instant::now();
    let mut buf = Vec::with_capacity(1000 * 96);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        buf.clear();
        for &i in chunk {
            Message::FlowMod(flow(i))
                .encode(conn.xids.next_xid(), &mut buf)
                .expect("encode");
        }
        conn.send_raw(&buf);
    }
    let errs = conn.barrier();
    let pipelined = t.elapsed();
    assert!(errs.is_empty(), "{:?}", errs.first());
    assert_eq!(flow_count(&ovs), n as usize);
    clear(&ovs);

    // 2. One atomic bundle.
    let t = Instant::now();
    let flags = bundle_flags::ATOMIC | bundle_flags::ORDERED;
    conn.send(&Message::BundleControl(BundleCtrl {
        bundle_id: 1,
        ty: BundleCtrlType::OpenRequest,
        flags,
        properties: vec![],
    }));
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        buf.clear();
        for &i in chunk {
            let m = Message::BundleAdd {
                bundle_id: 1,
                flags,
                message: Box::new(Message::FlowMod(flow(i))),
            };
            m.encode(conn.xids.next_xid(), &mut buf).expect("encode");
        }
        conn.send_raw(&buf);
    }
    let xid = conn.send(&Message::BundleControl(BundleCtrl {
        bundle_id: 1,
        ty: BundleCtrlType::CommitRequest,
        flags,
        properties: vec![],
    }));
    let (_, reply) = conn.recv_until(|x, _| x == xid);
    let bundled = t.elapsed();
    assert!(
        matches!(&reply, Message::BundleControl(b) if b.ty == BundleCtrlType::CommitReply),
        "{reply:?}"
    );
    assert_eq!(flow_count(&ovs), n as usize);
    clear(&ovs);

    // 3. ovs-ofctl add-flows of the same flows from a file, plain and as a bundle.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flows.txt");
    let text: String = (0..n).map(|i| flow_text(i) + "\n").collect();
    std::fs::write(&file, text).expect("write flows");
    let t = Instant::now();
    ovs.ofctl([
        std::ffi::OsStr::new("add-flows"),
        "br-int".as_ref(),
        file.as_os_str(),
    ])
    .expect("add-flows");
    let ofctl = t.elapsed();
    assert_eq!(flow_count(&ovs), n as usize);
    clear(&ovs);
    let t = Instant::now();
    ovs.ofctl([
        std::ffi::OsStr::new("--bundle"),
        "add-flows".as_ref(),
        "br-int".as_ref(),
        file.as_os_str(),
    ])
    .expect("add-flows --bundle");
    let ofctl_bundle = t.elapsed();
    assert_eq!(flow_count(&ovs), n as usize);

    println!("real OVS, {n} flows:");
    println!(
        "  openflow crate, pipelined flow-mods + barrier: {:?} ({:.0} flows/s)",
        pipelined,
        f64::from(n) / pipelined.as_secs_f64()
    );
    println!(
        "  openflow crate, one atomic bundle:             {:?} ({:.0} flows/s)",
        bundled,
        f64::from(n) / bundled.as_secs_f64()
    );
    println!(
        "  ovs-ofctl add-flows FILE:                      {:?} ({:.0} flows/s)",
        ofctl,
        f64::from(n) / ofctl.as_secs_f64()
    );
    println!(
        "  ovs-ofctl --bundle add-flows FILE:             {:?} ({:.0} flows/s)",
        ofctl_bundle,
        f64::from(n) / ofctl_bundle.as_secs_f64()
    );
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    codec(n.max(100_000));
    real_switch(n);
}
