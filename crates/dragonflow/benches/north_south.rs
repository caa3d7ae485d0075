//! North-south figures on real OVS (two hosts, an outside namespace on the physical
//! network): how long a floating IP takes to follow its move to a VM on the other host
//! (API call to the first answered ping from the outside), and TCP throughput to the
//! outside through SNAT and through a floating IP, against east-west routing between the
//! two hosts as the reference. Records its figures in docs/benchmarks.md. Needs root: `cargo bench -p dragonflow --bench north_south`.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/ns/mod.rs"]
mod ns;

use ns::{Cloud, reaches, routed_inside};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use testbed::bench::{ms, percentile, write_section};

const MOVES: usize = 10;
const SECONDS: &str = "3";

/// iperf3 TCP throughput from `client` to `server_ip` (served in `server`), in Gbit/s.
fn iperf(client: &testbed::Netns, server: &testbed::Netns, server_ip: &str) -> f64 {
    let mut s = server
        .command(["iperf3", "-s", "-1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("iperf3 server");
    std::thread::sleep(Duration::from_millis(300));
    let out = client
        .command(["iperf3", "-c", server_ip, "-t", SECONDS, "-J"])
        .output()
        .expect("iperf3 client");
    let _ = s.kill();
    let _ = s.wait();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
        / 1e9
}

fn main() {
    if !testbed::require_root("north-south benchmark") {
        return;
    }
    let t = Cloud::start(None);
    let (ext, net) = routed_inside(&t);
    let ports = [t.port(&net), t.port(&net)];
    let vms = [t.plug(&ports[0], 0), t.plug(&ports[1], 1)];
    for vm in &vms {
        vm.ns
            .exec(["ip", "route", "add", "default", "via", "10.0.0.1"])
            .expect("route");
        // Geneve's 58 bytes between the hosts (the reference runs across them).
        vm.ns
            .exec(["ip", "link", "set", "eth0", "mtu", "1400"])
            .expect("mtu");
    }
    assert!(reaches(&vms[1].ns, "203.0.113.1"), "SNAT: {}", t.dumps());
    let fip = t.srv.create(
        "floatingips",
        "floatingip",
        json!({"floating_network_id": ext["id"], "port_id": ports[0]["id"]}),
    );
    let fip_ip = fip["floating_ip_address"].as_str().unwrap().to_string();
    let fip_id = fip["id"].as_str().unwrap().to_string();
    assert!(reaches(&t.outside, &fip_ip), "FIP: {}", t.dumps());

    // Throughput: vm b (host b, SNAT) and vm a (host a, floating IP) to the outside, and
    // vm a to vm b (east-west across hosts, geneve) as the reference.
    let b_ip = common::cloud::addr(&ports[1]).1;
    let snat = iperf(&vms[1].ns, &t.outside, "203.0.113.1");
    let via_fip = iperf(&t.outside, &vms[0].ns, &fip_ip);
    let east_west = iperf(&vms[0].ns, &vms[1].ns, &b_ip);

    // Moves: back and forth between the two VMs (hosts), timed from the API call to the
    // first ping the outside gets answered.
    let mut took = Vec::new();
    for i in 0..MOVES {
        let to = &ports[(i + 1) % 2];
        let (st, _) = t.srv.call(
            "PUT",
            &format!("/v2.0/floatingips/{fip_id}"),
            Some(json!({"floatingip": {"port_id": to["id"]}})),
        );
        assert_eq!(st, 200);
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "move {i}: the floating IP did not follow\n{}\nphys: {}",
                t.dumps(),
                t.phys().exec(["bridge", "fdb", "show"]).unwrap_or_default()
            );
            if t.outside
                .exec(["ping", "-c", "1", "-W", "0.05", &fip_ip])
                .is_ok()
            {
                took.push(start.elapsed());
                break;
            }
        }
    }
    took.sort();
    let section = format!(
        "## North-south: floating IP moves and throughput to the outside\n\n\
`cargo bench -p dragonflow --bench north_south`: two hosts (real OVS, userspace datapath), \
an outside namespace on a flat external network (a Linux bridge joining each host's br-ex \
NIC). A floating IP moved {MOVES} times between a VM on host a and one on host b: time from \
the API call to the first ping from the outside answered (ping timeout 50 ms, so the \
figures include up to that much polling). Throughput: iperf3 TCP, {SECONDS} s each.\n\n\
| measure | value |\n|---|---|\n\
| floating IP follows a move, median | {:.0} ms |\n\
| floating IP follows a move, max | {:.0} ms |\n\
| VM → outside via SNAT (host address) | {snat:.2} Gbit/s |\n\
| outside → VM via floating IP | {via_fip:.2} Gbit/s |\n\
| VM → VM east-west across hosts (reference) | {east_west:.2} Gbit/s |\n",
        ms(percentile(&took, 0.5)),
        ms(*took.last().expect("moves")),
    );
    println!("{section}");
    write_section("north-south", &section);
}
