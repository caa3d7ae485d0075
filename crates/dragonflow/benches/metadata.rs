//! Metadata service figures on real OVS (one host, `dragonflow controller`, VMs as
//! namespaces): requests per second and latency percentiles of `meta_data.json` with `wrk`
//! from one VM and from 50 at once (one connection each, keep-alive), and the time from a
//! port's creation through the API to its metadata being served to the plugged VM.
//! Records its figures in docs/benchmarks.md. Needs root and `wrk`:
//! `cargo bench -p dragonflow --bench metadata` (a debug run: `cargo test -p dragonflow
//! --bench metadata`, labelled as such).

#[path = "../tests/common/mod.rs"]
mod common;

use common::Server;
use common::cloud::{Controller as Ctl, addr, wait_until};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use testbed::bench::{ms, percentile, write_section};

const VMS: usize = 50;
const SECONDS: u32 = 5;
const CREATIONS: usize = 10;
const URL: &str = "http://169.254.169.254/openstack/latest/meta_data.json";

/// `wrk`'s requests per second and 50th/99th percentile latencies.
struct Wrk {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

fn duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

fn parse_wrk(out: &str) -> Option<Wrk> {
    let rps = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let pct = |p: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(p).and_then(duration))
    };
    Some(Wrk {
        rps,
        p50: pct("50%")?,
        p99: pct("99%")?,
    })
}

fn wrk(vm: &testbed::Vm) -> std::process::Child {
    vm.ns
        .command([
            "wrk",
            "-t1",
            "-c1",
            &format!("-d{SECONDS}s"),
            "--latency",
            URL,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("wrk")
}

fn finish(c: std::process::Child) -> Wrk {
    let out = c.wait_with_output().expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_wrk(&text).unwrap_or_else(|| panic!("wrk said: {text}"))
}

fn main() {
    if !testbed::require_root("metadata benchmark") {
        return;
    }
    assert!(testbed::have("wrk"), "wrk is missing: run scripts/setup");
    let srv = Server::start_unlimited();
    let ovs = testbed::Ovs::start().expect("ovs");
    // The rate limit off: the figures are the server's, not the limit's.
    let ctl = Ctl::spawn(
        &srv.nb_url,
        &ovs,
        "host-a",
        "192.0.2.1",
        &[
            "--tunnel-types",
            "geneve",
            "--metadata-rate-limit",
            "1000000",
        ],
        Some("warn"),
    );
    ctl.wait_for_br_int(&ovs);
    let net = srv.network("mdbench", "10.70.0.0/24");
    let plug = |p: &Value| {
        let (mac, ip) = addr(p);
        let id = p["id"].as_str().unwrap();
        let vm = testbed::Vm::plug(&ovs, "br-int", id, &mac, &format!("{ip}/24")).expect("plug");
        vm.ns
            .exec(["ip", "route", "add", "169.254.169.254/32", "dev", "eth0"])
            .expect("route");
        vm
    };
    let served = |vm: &testbed::Vm, uuid: &str| {
        vm.ns
            .exec(["curl", "-s", "-m", "1", URL])
            .is_ok_and(|b| b.contains(uuid))
    };

    // Creation to first answer: POST the port, plug it (as Nova does once it has the
    // port), ask until meta_data.json names it.
    let mut took = Vec::new();
    for i in 0..CREATIONS {
        let uuid = format!("00000000-0000-4000-8000-{i:012}");
        let t = Instant::now();
        let p = srv.create(
            "ports",
            "port",
            json!({"network_id": net["id"], "device_id": uuid, "device_owner": "compute:nova"}),
        );
        let vm = plug(&p);
        wait_until("metadata served", Duration::from_secs(30), || {
            served(&vm, &uuid)
        });
        took.push(t.elapsed());
        let (code, _) = srv.call(
            "DELETE",
            &format!("/v2.0/ports/{}", p["id"].as_str().unwrap()),
            None,
        );
        assert_eq!(code, 204);
    }
    took.sort();

    let vms: Vec<testbed::Vm> = (0..VMS)
        .map(|_| {
            let p = srv.create("ports", "port", json!({"network_id": net["id"]}));
            plug(&p)
        })
        .collect();
    for vm in &vms {
        wait_until("every VM served", Duration::from_secs(60), || {
            vm.ns.exec(["curl", "-sf", "-m", "1", URL]).is_ok()
        });
    }
    let one = finish(wrk(&vms[0]));
    let many: Vec<Wrk> = vms
        .iter()
        .map(wrk)
        .collect::<Vec<_>>()
        .into_iter()
        .map(finish)
        .collect();
    let total: f64 = many.iter().map(|w| w.rps).sum();
    let mut p99s: Vec<Duration> = many.iter().map(|w| w.p99).collect();
    p99s.sort();
    let mut p50s: Vec<Duration> = many.iter().map(|w| w.p50).collect();
    p50s.sort();

    let build = if cfg!(debug_assertions) {
        "debug build (`cargo test -p dragonflow --bench metadata`)"
    } else {
        "release build (`cargo bench -p dragonflow --bench metadata`)"
    };
    let body = format!(
        "## Metadata service (end to end)\n\n\
         One host (real OVS, userspace datapath, `dragonflow controller`, {build}), VMs as \
         namespaces on one network asking `{URL}` with `wrk` (one connection each, \
         keep-alive, {SECONDS} s; rate limit lifted with `--metadata-rate-limit`). Every \
         request crosses br-int twice (rewritten to the internal port, and back by the \
         learned flow) and the controller's event loop once. 2 shared cores.\n\n\
         | measure | figure |\n|---|---|\n\
         | 1 VM: requests/s | {:.0} |\n\
         | 1 VM: p50 / p99 latency | {:.2} ms / {:.2} ms |\n\
         | {VMS} VMs at once: requests/s, all together | {total:.0} |\n\
         | {VMS} VMs at once: p50 latency, median VM | {:.2} ms |\n\
         | {VMS} VMs at once: p99 latency, median VM / worst VM | {:.2} ms / {:.2} ms |\n\
         | port created (API) → plugged → metadata served, median of {CREATIONS} | {:.0} ms |\n\
         | the same, worst | {:.0} ms |\n\n",
        one.rps,
        ms(one.p50),
        ms(one.p99),
        ms(percentile(&p50s, 0.5)),
        ms(percentile(&p99s, 0.5)),
        ms(*p99s.last().unwrap()),
        ms(percentile(&took, 0.5)),
        ms(*took.last().unwrap()),
    );
    print!("{body}");
    write_section("metadata", &body);
    drop(vms);
    drop(ctl);
}
