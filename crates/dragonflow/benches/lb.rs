//! Distributed load balancing (issue 23) on two hosts with real OVS (userspace datapath):
//! new TCP connections per second through a VIP against straight to its one member, in
//! alternating rounds of the same run; the time from a member's create in the Octavia API
//! to its first balanced answer; and the flows a balancer and a member cost on the
//! client's host. Records its figures in docs/benchmarks.md. Needs root:
//! `cargo bench -p dragonflow --bench lb`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::backends::{balancer, first_subnet, octavia as lb, octavia_made as made, python};
use common::cloud::{TwoHosts, two_hosts, wait_until};
use common::conn_rate::{ROUND_SECONDS, load, median, profile, rate, serve_name as serve};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testbed::bench::write_section;

const ROUNDS: usize = 4;

/// New connections every 5 ms until one is answered by `sys.argv[2]`; prints the wall
/// clock time of that answer. Prints "ready" first.
const FIRST: &str = r#"
import socket, sys, time
host, want = sys.argv[1], sys.argv[2].encode()
print("ready", flush=True)
while True:
    try:
        s = socket.create_connection((host, 9000), timeout=1)
        got = b""
        while True:
            b = s.recv(64)
            if not b:
                break
            got += b
        s.close()
        if got == want:
            print(time.time(), flush=True)
            break
    except OSError:
        pass
    time.sleep(0.005)
"#;

/// Flows of the load-balancing app (cookie app byte 18) in br-int.
fn lb_flows(ovs: &testbed::Ovs) -> usize {
    ovs.ofctl(["--no-stats", "dump-flows", "br-int"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split("cookie=0x").nth(1)?.split(',').next())
        .filter_map(|c| u64::from_str_radix(c, 16).ok())
        .filter(|c| c >> 56 == 18)
        .count()
}

/// Waits until the client host's balancer flows stop changing and returns their count.
fn settled_flows(ovs: &testbed::Ovs) -> usize {
    let mut last = usize::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let n = lb_flows(ovs);
        if n == last {
            return n;
        }
        last = n;
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn main() {
    if !testbed::require_root("load-balancing benchmark") {
        return;
    }
    let load = load();
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("lbnet", "10.60.0.0/24");
    let subnet = first_subnet(srv, &net);
    // Two clients on host A: one through the VIP, one straight to the member. One client
    // doing both meets the member's TIME_WAIT of the other path's connection on the same
    // ports (it picks ports per destination; the server closes first), and that SYN is
    // refused and sent again a second later: direct connections right after balanced ones
    // from one client fell to about 1 a second. DNAT balancing (OVN's, kube-proxy's) is
    // the same.
    let (client, _) = t.vm(&net, 0);
    let (direct_client, _) = t.vm(&net, 0);
    let (m1, ip1) = t.vm(&net, 1);
    let (m2, ip2) = t.vm(&net, 1);
    let _servers = [serve(&m1, "m1"), serve(&m2, "m2")];
    for ip in [&ip1, &ip2] {
        wait_until("a member to serve", Duration::from_secs(20), || {
            rate(&direct_client, ip).0 > 0.0
        });
    }
    let base = settled_flows(&t.ovs[0]);

    let bal = balancer(srv, &subnet, "bench", 9000, json!({}));
    let (vip, members) = (bal.vip, bal.members);
    made(
        srv,
        &members,
        json!({"member": {"address": ip1, "protocol_port": 9000, "subnet_id": subnet}}),
    );
    wait_until("the VIP to answer", Duration::from_secs(20), || {
        rate(&client, &vip).0 > 0.0
    });
    let one_member = settled_flows(&t.ovs[0]);

    // Connections per second, VIP and direct in alternating rounds.
    let (mut via, mut direct, mut failed) = (Vec::new(), Vec::new(), 0);
    for _ in 0..ROUNDS {
        let (r, f) = rate(&client, &vip);
        via.push(r);
        failed += f;
        let (r, f) = rate(&direct_client, &ip1);
        direct.push(r);
        failed += f;
    }
    let (via, direct) = (median(via), median(direct));
    eprintln!("lb: {via:.0} connections/s through the VIP, {direct:.0} direct");

    // Member create → its first balanced answer, five times (create, measure, delete).
    let (mut first, mut flows) = (Vec::new(), (base, one_member, one_member));
    for _ in 0..5 {
        let mut poll = client.ns.command([&python(), "-c", FIRST, &vip, "m2"]);
        poll.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut poll = poll.spawn().expect("poller");
        let mut lines = BufReader::new(poll.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
        let t0 = now();
        let m = made(
            srv,
            &members,
            json!({"member": {"address": ip2, "protocol_port": 9000}}),
        );
        let at: f64 = lines
            .next()
            .and_then(Result::ok)
            .and_then(|s| s.trim().parse().ok())
            .expect("m2 answered");
        let _ = poll.wait();
        first.push((at - t0) * 1000.0);
        if first.len() == 1 {
            flows.2 = settled_flows(&t.ovs[0]);
            eprintln!("lb: flows {base} → {one_member} → {}", flows.2);
        }
        let (st, v) = lb(
            srv,
            "DELETE",
            &format!("{members}/{}", m["id"].as_str().unwrap()),
            None,
        );
        assert_eq!(st, 204, "{v}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let first_ms = median(first.clone());
    eprintln!("lb: member create → first answer {first:?} ms");

    let body = format!(
        "## Load balancing: connections through a VIP, a new member's first answer, flows (issue 23)\n\n\
`cargo bench -p dragonflow --bench lb` (as root; {profile} build; two hosts with real OVS 3.1, userspace \
datapath, one controller each; {cores} cores, load {load} at the start). The client VM is \
on host A, the members on host B (a second client VM on host A makes the direct \
connections: one client doing both meets the member's TIME_WAIT of the other path's \
connections on the same ports, as with any DNAT balancer); the servers are Python asyncio servers that write their \
name and close, and the client is one Python loop of connect, read to the end, close.\n\n\
| new TCP connections, one after another, {ROUNDS} alternating rounds of {ROUND_SECONDS} s (median) | per second |\n\
|---|---|\n\
| through the VIP (one listener, a pool with that one member) | {via:.0} |\n\
| straight to the member | {direct:.0} |\n\
| through the VIP / straight | {ratio:.2} |\n\n\
Failed connections in all rounds: {failed}.\n\n\
A member created in the API (`POST …/members`, the API's answer included) to its first \
answer to a new connection through the VIP, the client connecting every 5 ms: median \
{first_ms:.0} ms of 5 (each: {list}).\n\n\
Flows of the balancer app on the client's host: {base} with none, {one} with a \
balancer, a TCP listener and a pool of one member (+{per_lb} for the balancer), {two} \
with a second member (+{per_member} per member).\n",
        profile = profile(),
        cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
        ratio = via / direct.max(1.0),
        list = first
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        base = flows.0,
        one = flows.1,
        two = flows.2,
        per_lb = flows.1 as i64 - flows.0 as i64,
        per_member = flows.2 as i64 - flows.1 as i64,
    );
    write_section("lb", &body);
    println!("{body}");
}
