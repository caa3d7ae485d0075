//! FWaaS v2 (issue 24) on real traffic, two hosts with real OVS (userspace datapath): new
//! TCP connections per second to a VM port behind a 100-rule ingress policy whose match is
//! the last rule, against a VM port with no firewall group, in alternating rounds of the
//! same run; and the time from a rule inserted first (`insert_rule`, the API's answer
//! included) to its enforcement on the wire, and from its removal to traffic passing
//! again. Records its figures in docs/benchmarks.md. Needs root:
//! `cargo bench -p dragonflow --bench fwaas_traffic`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::backends::python;
use common::cloud::{addr, two_hosts, wait_until};
use common::conn_rate::{PORT, ROUND_SECONDS, load, median, profile, rate, serve_name};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testbed::bench::write_section;

const ROUNDS: usize = 4;
/// Rules in the policy: RULES - 1 that the measured traffic does not match, then its allow.
const RULES: usize = 100;

/// Whether one connection from `vm` to `ip:port` is made within `secs` (`nc -z`).
fn connects(vm: &testbed::Vm, ip: &str, port: &str, secs: &str) -> bool {
    vm.ns
        .command(["nc", "-z", "-w", secs, ip, port])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// Flows of the FWaaS app (cookie app byte 21) in br-int.
fn fwaas_flows(ovs: &testbed::Ovs) -> usize {
    ovs.ofctl(["--no-stats", "dump-flows", "br-int"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split("cookie=0x").nth(1)?.split(',').next())
        .filter_map(|c| u64::from_str_radix(c, 16).ok())
        .filter(|c| c >> 56 == 21)
        .count()
}

/// A new connection every 2 ms, each given 200 ms and not waited for, until one comes
/// out as `sys.argv[3]` says ("made" or "lost"); prints "ready" first, then the wall-clock
/// time at which that one was started.
const POLL: &str = r#"
import asyncio, sys, time
host, port, want = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "made"
async def attempt(done):
    t = time.time()
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, port), 0.2)
        w.close()
        made = True
    except Exception:
        made = False
    if made == want and not done.done():
        done.set_result(t)
async def main():
    done = asyncio.get_running_loop().create_future()
    print("ready", flush=True)
    tasks = []
    while not done.done():
        tasks.append(asyncio.ensure_future(attempt(done)))
        await asyncio.sleep(0.002)
    print(done.result(), flush=True)
    for t in tasks:
        t.cancel()
asyncio.run(main())
"#;

/// Milliseconds from `change()` (made once the poller in `vm` is running) until a new
/// connection to `ip:PORT` comes out as `want`.
fn ms_until(vm: &testbed::Vm, ip: &str, want: &str, change: impl FnOnce()) -> f64 {
    let mut poll = vm.ns.command([&python(), "-c", POLL, ip, PORT, want]);
    poll.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut poll = poll.spawn().expect("poller");
    let mut lines = BufReader::new(poll.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
    let t0 = now();
    change();
    let at: f64 = lines
        .next()
        .and_then(Result::ok)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no connection came out {want}"));
    let _ = poll.wait();
    ((at - t0) * 1000.0).max(0.0)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn main() {
    if !testbed::require_root("FWaaS traffic benchmark") {
        return;
    }
    let load = load();
    let t = two_hosts();
    let srv = &t.srv;
    let net = srv.network("fwnet", "10.61.0.0/24");
    let (client, _) = t.vm(&net, 0);
    let (open, open_ip) = t.vm(&net, 1);
    let wp = srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "device_owner": "compute:nova"}),
    );
    let walled = t.plug(&wp, 1, 24);
    let walled_ip = addr(&wp).1;
    let _servers = [serve_name(&open, "open"), serve_name(&walled, "walled")];
    for ip in [&open_ip, &walled_ip] {
        wait_until("a server to answer", Duration::from_secs(20), || {
            rate(&client, ip).0 > 0.0
        });
    }

    // RULES - 1 denies of other TCP ports, then the allow of the measured port: a new
    // connection meets every rule before its own.
    let mut rules: Vec<String> = (0..RULES - 1)
        .map(|i| {
            let port = (10000 + i).to_string();
            id(&srv.create(
                "fwaas/firewall_rules",
                "firewall_rule",
                json!({"protocol": "tcp", "destination_port": port, "action": "deny"}),
            ))
        })
        .collect();
    rules.push(id(&srv.create(
        "fwaas/firewall_rules",
        "firewall_rule",
        json!({"protocol": "tcp", "destination_port": PORT, "action": "allow"}),
    )));
    let policy = id(&srv.create(
        "fwaas/firewall_policies",
        "firewall_policy",
        json!({"name": "bench", "firewall_rules": rules}),
    ));
    srv.create(
        "fwaas/firewall_groups",
        "firewall_group",
        json!({"name": "bench", "ingress_firewall_policy_id": policy, "ports": [id(&wp)]}),
    );
    wait_until("the policy's flows", Duration::from_secs(30), || {
        fwaas_flows(&t.ovs[1]) >= RULES
    });
    // The policy is in force: a denied port times out where the open VM refuses at once.
    wait_until("a denied port to time out", Duration::from_secs(20), || {
        !connects(&client, &walled_ip, "10000", "1")
    });
    let flows = fwaas_flows(&t.ovs[1]);

    let (mut walled_rates, mut open_rates, mut failed) = (Vec::new(), Vec::new(), 0);
    for _ in 0..ROUNDS {
        let (r, f) = rate(&client, &walled_ip);
        walled_rates.push(r);
        failed += f;
        let (r, f) = rate(&client, &open_ip);
        open_rates.push(r);
        failed += f;
    }
    let (w, o) = (median(walled_rates), median(open_rates));
    eprintln!("fwaas: {w:.0} connections/s through {RULES} rules, {o:.0} with none");

    // A deny of the measured port inserted first, then removed: the API's call to the
    // first refused (timed out) connection, and back to the first made one.
    let deny = id(&srv.create(
        "fwaas/firewall_rules",
        "firewall_rule",
        json!({"protocol": "tcp", "destination_port": PORT, "action": "deny"}),
    ));
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        on.push(ms_until(&client, &walled_ip, "lost", || {
            let (st, v) = srv.call(
                "PUT",
                &format!("/v2.0/fwaas/firewall_policies/{policy}/insert_rule"),
                Some(json!({"firewall_rule_id": deny, "insert_before": rules[0]})),
            );
            assert_eq!(st, 200, "{v}");
        }));
        off.push(ms_until(&client, &walled_ip, "made", || {
            let (st, v) = srv.call(
                "PUT",
                &format!("/v2.0/fwaas/firewall_policies/{policy}/remove_rule"),
                Some(json!({"firewall_rule_id": deny})),
            );
            assert_eq!(st, 200, "{v}");
        }));
    }
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!("fwaas: insert → enforced {on:?} ms, removed → passing {off:?} ms");

    let body = format!(
        "## FWaaS on the wire: new connections through a {RULES}-rule policy, a rule insert to its enforcement (issue 24)\n\n\
`cargo bench -p dragonflow --bench fwaas_traffic` (as root; {profile} build; two hosts with real OVS 3.1, userspace \
datapath, one controller each; {cores} cores, load {load} at the start). The client VM is on host A; two server VMs \
on host B in the client's network and security group: one in a firewall group whose ingress policy has {RULES} \
rules (tcp to {first}–{last} denied, then tcp/{PORT} allowed: a new connection meets every rule before its own), \
one in no group. The servers are Python asyncio servers that write their name and close; the client is one \
Python loop of connect, read to the end, close. Flows of the FWaaS app on host B: {flows}.\n\n\
| new TCP connections, one after another, {ROUNDS} alternating rounds of {ROUND_SECONDS} s (median) | per second |\n\
|---|---|\n\
| to the VM behind the {RULES}-rule policy | {w:.0} |\n\
| to the VM with no firewall group | {o:.0} |\n\
| through the policy / none | {ratio:.2} |\n\n\
Failed connections in all rounds: {failed}. The rules are met by a connection's first packets in the \
switch's slow path; OVS's megaflow cache then carries the next connections of the same shape (the pipeline \
matches no source port), so {RULES} rules cost a new connection next to nothing here.\n\n\
A deny of tcp/{PORT} inserted first (`PUT …/insert_rule`, the API's answer included) until a new \
connection started after it times out (a new one every 2 ms, each given 200 ms, not waited for), and removed again \
(`remove_rule`) until a new connection started after it is made, 5 times: insert → enforced median {on_ms:.0} ms (each: {on_list}); removed → passing median {off_ms:.0} ms (each: {off_list}). Every \
insert rewrites the {RULES} rules' priorities of the port (see the compile figures above).\n",
        profile = profile(),
        cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
        first = 10000,
        last = 10000 + RULES - 2,
        ratio = w / o.max(1.0),
        on_ms = median(on.clone()),
        off_ms = median(off.clone()),
        on_list = list(&on),
        off_list = list(&off),
    );
    write_section("fwaas-traffic", &body);
    println!("{body}");
}
