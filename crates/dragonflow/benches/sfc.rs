//! Service function chaining (issue 24) on two hosts with real OVS (userspace datapath):
//! TCP throughput from a client VM (host A) to a server VM (host B) through a one-hop
//! chain (the service function on host B, a namespace forwarding with `tc mirred`, reached
//! with an MPLS label over Geneve) against the direct path, in alternating rounds of the
//! same run; and the time from a chain's create in the API to the first packet the
//! service function sees. Records its figures in docs/benchmarks.md. Needs root and
//! iperf3: `cargo bench -p dragonflow --bench sfc`.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/sfc/mod.rs"]
mod sfc;

use common::backends::{Proc, python};
use common::cloud::wait_until;
use serde_json::{Value, json};
use sfc::{Sf, chain_left, setup, sfc, sfc_call};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testbed::bench::write_section;

const DIRECT: u16 = 5201;
const CHAINED: u16 = 5202;
const ROUND_SECONDS: &str = "3";
const ROUNDS: usize = 4;
const SAMPLES: usize = 5;

/// In the service function: the wall clock time of the first IPv4 packet arriving on
/// `eth0` (a packet socket for every protocol sees it before tc redirects it; one for
/// IPv4 only would not). Prints "ready" first.
const FIRST: &str = r#"
import socket, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("eth0", 0))
print("ready", flush=True)
while True:
    frame, addr = s.recvfrom(65535)
    if addr[2] != socket.PACKET_OUTGOING and frame[12:14] == b"\x08\x00":
        print(time.time(), flush=True)
        break
"#;

/// In the client: a new connection to `host:80` every 2 ms, for ever.
const KNOCK: &str = r#"
import socket, sys, time
while True:
    try:
        socket.create_connection((sys.argv[1], 80), timeout=0.05).close()
    except OSError:
        pass
    time.sleep(0.002)
"#;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn spawn(vm: &testbed::Vm, argv: &[&str]) -> Proc {
    let mut c = vm.ns.command(argv);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Proc(c.spawn().expect(argv[0]))
}

/// One iperf3 round from the client to `ip:port`: received bits per second.
fn iperf(vm: &testbed::Vm, ip: &str, port: u16) -> f64 {
    let out = vm
        .ns
        .exec([
            "iperf3",
            "-c",
            ip,
            "-p",
            &port.to_string(),
            "-t",
            ROUND_SECONDS,
            "-J",
        ])
        .expect("iperf3");
    let v: Value = serde_json::from_str(&out).expect("iperf3 JSON");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
}

fn main() {
    if !testbed::require_root("service function chaining benchmark") {
        return;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_string();
    let s = setup();
    let t = &s.t;
    let sf = Sf::new(t, &s.net, 1, "sf1");
    let group = sfc(
        t,
        "port_pair_groups",
        "port_pair_group",
        json!({"port_pairs": [sf.pair]}),
    );

    // Chain create → the first packet the service function sees, the client opening a
    // connection to port 80 every 2 ms.
    let fc = s.classifier(80, false);
    let knock = spawn(&s.client, &[&python(), "-c", KNOCK, &s.server_ip]);
    let mut first = Vec::new();
    for _ in 0..SAMPLES {
        let mut poll = sf.vm.ns.command([&python(), "-c", FIRST]);
        poll.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut poll = poll.spawn().expect("packet socket");
        let mut lines = BufReader::new(poll.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
        let t0 = now();
        let chain = t.srv.create(
            "sfc/port_chains",
            "port_chain",
            json!({"port_pair_groups": [group], "flow_classifiers": [fc]}),
        );
        let at: f64 = lines
            .next()
            .and_then(Result::ok)
            .and_then(|l| l.trim().parse().ok())
            .expect("a steered packet");
        let _ = poll.wait();
        first.push((at - t0) * 1000.0);
        let (st, v) = sfc_call(
            t,
            "DELETE",
            &format!("port_chains/{}", chain["id"].as_str().unwrap()),
            None,
        );
        assert_eq!(st, 204, "{v}");
        let id = chain["chain_id"].as_u64().unwrap();
        wait_until("the chain's flows gone", Duration::from_secs(20), || {
            t.ovs.iter().all(|o| chain_left(o, id).is_empty())
        });
    }
    drop(knock);
    let first_ms = median(first.clone());
    eprintln!("sfc: chain create → first steered packet {first:?} ms");

    // Throughput: iperf3 to one port straight, to another through the chain.
    let _servers =
        [DIRECT, CHAINED].map(|p| spawn(&s.server, &["iperf3", "-s", "-p", &p.to_string()]));
    let fc = s.classifier(CHAINED, false);
    sfc(
        t,
        "port_chains",
        "port_chain",
        json!({"port_pair_groups": [group], "flow_classifiers": [fc]}),
    );
    std::thread::sleep(Duration::from_secs(1));
    let (mut chained, mut direct) = (Vec::new(), Vec::new());
    let mut through = 0;
    for _ in 0..ROUNDS {
        // The last round's connections close first (their last packets are chained).
        std::thread::sleep(Duration::from_millis(500));
        let before = sf.forwarded("eth0");
        direct.push(iperf(&s.client, &s.server_ip, DIRECT));
        assert_eq!(
            sf.forwarded("eth0"),
            before,
            "the direct round bypasses the SF"
        );
        chained.push(iperf(&s.client, &s.server_ip, CHAINED));
        through += sf.forwarded("eth0") - before;
    }
    assert!(through > 0, "the chained rounds went through the SF");
    let gbit = |v: &[f64]| {
        v.iter()
            .map(|b| format!("{:.2}", b / 1e9))
            .collect::<Vec<_>>()
    };
    eprintln!(
        "sfc: chained {:?} Gbit/s, direct {:?} Gbit/s",
        gbit(&chained),
        gbit(&direct)
    );
    let (c, d) = (median(chained.clone()) / 1e9, median(direct.clone()) / 1e9);

    let body = format!(
        "## Service function chaining (issue 24): throughput through a chain, chain create to its first steered packet\n\n\
`cargo bench -p dragonflow --bench sfc` (as root; {profile} build; two hosts with real OVS 3.1, userspace \
datapath, one controller each; {cores} cores, load {load} at the start). The client VM is on host A, \
the server VM and the service function on host B: the chained traffic crosses the tunnel once \
with an MPLS label (popped on host B), the direct traffic once without. The service function \
is a VM namespace forwarding every IPv4 packet from its ingress port to its egress port with \
`tc mirred` (correlation none); the classifier is TCP to the chained port from the client. \
The network's MTU (1400) on every VM interface.\n\n\
| iperf3 TCP, client to server, {ROUNDS} alternating rounds of {ROUND_SECONDS} s (median) | Gbit/s |\n\
|---|---|\n\
| through the one-hop chain | {c:.2} |\n\
| straight to the server | {d:.2} |\n\
| chain / straight | {ratio:.2} |\n\n\
Each round (chained; straight): {cl}; {dl}.\n\n\
A chain created in the API (`POST /v2.0/sfc/port_chains`, the API's answer included) to \
the first packet its service function sees (a packet socket in it), the client opening a \
connection every 2 ms: median {first_ms:.0} ms of {SAMPLES} (each: {list}).\n",
        profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
        ratio = c / d,
        cl = gbit(&chained).join(", "),
        dl = gbit(&direct).join(", "),
        list = first
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    write_section("sfc", &body);
}
