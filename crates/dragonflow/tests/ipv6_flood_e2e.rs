//! A VM flooding router solicitations (aiming at 10,000 a second) does not slow the router
//! advertisements another VM of the same host gets: past its rate the flooder is blocked
//! in the switch (a drop flow in table 46), so the controller does no work for it. Real
//! OVS, the real controller, raw sockets in the VMs. The DHCPv6 Solicit flood is
//! `dhcpv6_e2e.rs`'s.

mod common;

use common::cloud::{two_hosts, wait_until};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

/// A raw router solicitation client in Python (AF_PACKET, from the VM's own MAC and
/// link-local address, with its source link-layer option): `flood RATE SECS` sends RSs at
/// RATE per second and prints how many; `probe N MS` sends N RSs MS apart and prints the
/// RS→RA time of each in milliseconds (or `lost`).
const RAW_RS: &str = r#"
import socket, struct, sys, time, select
mac = bytes(int(x, 16) for x in open('/sys/class/net/eth0/address').read().strip().split(':'))
ll = b'\xfe\x80' + b'\0' * 6 + bytes([mac[0] ^ 2]) + mac[1:3] + b'\xff\xfe' + mac[3:]
dst = socket.inet_pton(socket.AF_INET6, 'ff02::2')
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def rs():
    icmp = struct.pack('!BBHI', 133, 0, 0, 0) + struct.pack('!BB', 1, 1) + mac
    ph = ll + dst + struct.pack('!IxxxB', len(icmp), 58)
    c = csum(ph + icmp)
    icmp = icmp[:2] + struct.pack('!H', c) + icmp[4:]
    ip = struct.pack('!IHBB', 6 << 28, len(icmp), 58, 255) + ll + dst
    return b'\x33\x33\x00\x00\x00\x02' + mac + b'\x86\xdd' + ip + icmp
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86dd))
s.bind(('eth0', 0))
frame = rs()
if sys.argv[1] == 'flood':
    rate, secs = int(sys.argv[2]), float(sys.argv[3])
    t0 = time.monotonic(); n = 0
    while time.monotonic() - t0 < secs:
        s.send(frame); n += 1
        d = t0 + n / rate - time.monotonic()
        if d > 0: time.sleep(d)
    print(n)
else:
    n, gap = int(sys.argv[2]), int(sys.argv[3]) / 1000.0
    for i in range(n):
        while select.select([s], [], [], 0)[0]:
            s.recv(2048)
        t = time.monotonic()
        s.send(frame)
        got = None
        while time.monotonic() - t < 2.0:
            r, _, _ = select.select([s], [], [], 0.05)
            if not r: continue
            f = s.recv(2048)
            if len(f) > 54 and f[12:14] == b'\x86\xdd' and f[20] == 58 and f[54] == 134:
                got = (time.monotonic() - t) * 1000.0; break
        print('%.3f' % got if got is not None else 'lost', flush=True)
        time.sleep(gap)
"#;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Plugs `port` into a VM on host a and waits for it to be ACTIVE with a usable link-local
/// address.
fn plug(t: &common::cloud::TwoHosts, port: &serde_json::Value) -> testbed::Vm {
    let id = port["id"].as_str().unwrap();
    let mac = port["mac_address"].as_str().unwrap();
    let vm = testbed::Vm::plug_unaddressed(&t.ovs[0], "br-int", id, mac).expect("plug");
    wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
        let (_, v) = t.srv.call("GET", &format!("/v2.0/ports/{id}"), None);
        v["port"]["status"] == "ACTIVE"
    });
    wait_until("a link-local address", Duration::from_secs(10), || {
        vm.ns
            .exec(["ip", "-6", "addr", "show", "dev", "eth0", "scope", "link"])
            .is_ok_and(|s| s.contains("fe80::") && !s.contains("tentative"))
    });
    vm
}

#[test]
fn a_vm_flooding_router_solicitations_does_not_delay_another_vms_advertisement() {
    if !testbed::require_root("a_vm_flooding_router_solicitations_does_not_delay") {
        return;
    }
    let t = two_hosts();
    let net = t
        .srv
        .create("networks", "network", json!({"name": "rs-flood"}));
    let sub = t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 6, "cidr": "2001:db8:66::/64",
               "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
    );
    let r = t
        .srv
        .create("routers", "router", json!({"name": "rs-flood"}));
    let (st, body) = t.srv.call(
        "PUT",
        &format!(
            "/v2.0/routers/{}/add_router_interface",
            r["id"].as_str().unwrap()
        ),
        Some(json!({"subnet_id": sub["id"]})),
    );
    assert_eq!(st, 200, "{body}");
    let pf = t
        .srv
        .create("ports", "port", json!({"network_id": net["id"]}));
    let pq = t
        .srv
        .create("ports", "port", json!({"network_id": net["id"]}));
    let flooder = plug(&t, &pf);
    let prober = plug(&t, &pq);
    let dir = tempfile::tempdir().expect("dir");
    let script = dir.path().join("rawrs.py");
    std::fs::write(&script, RAW_RS).expect("script");
    let script = script.display().to_string();
    // Two probes a second: within the prober's own rate of 10.
    let probe = |n: usize| -> Vec<f64> {
        let out = prober
            .ns
            .command(["python3", &script, "probe", &n.to_string(), "500"])
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A probe with no answer within its 2 s counts as 2 s: one lost on a loaded
        // machine does not move the median, a flood that delays or loses most does.
        let got: Vec<f64> = text
            .lines()
            .map(|l| l.parse::<f64>().unwrap_or(2000.0))
            .collect();
        assert_eq!(got.len(), n, "{text}");
        got
    };
    let quiet = probe(8);
    let flood = flooder
        .ns
        .command(["python3", &script, "flood", "10000", "6"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("flood");
    std::thread::sleep(Duration::from_millis(500));
    let flooded = probe(8);
    let sent = flood.wait_with_output().expect("flood");
    let sent: u64 = String::from_utf8_lossy(&sent.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let (q, f) = (median(quiet.clone()), median(flooded.clone()));
    println!(
        "RS->RA on a quiet host: {quiet:?} ms (median {q:.2}); while another VM floods \
         {sent} RSs (target 10,000/s): {flooded:?} ms (median {f:.2})"
    );
    assert!(sent > 5000, "the flood ran: {sent}");
    let lost = |v: &[f64]| v.iter().filter(|&&x| x >= 2000.0).count();
    assert!(
        lost(&quiet) + lost(&flooded) <= 1,
        "lost probes: {quiet:?} {flooded:?}\n{}",
        t.ctl[0].log()
    );
    assert!(
        f - q < 100.0,
        "the flood delayed another VM's advertisement by {:.1} ms",
        f - q
    );
    let log = t.ctl[0].log();
    assert_eq!(
        log.matches("RS flood").count(),
        1,
        "blocked and logged once:\n{log}"
    );
    let dump = t.ovs[0]
        .ofctl(["dump-flows", "br-int", "table=46"])
        .unwrap_or_default();
    assert!(
        dump.contains("hard_timeout=10") && dump.contains("priority=200"),
        "the flooder is blocked in the switch:\n{dump}"
    );
    if std::env::var_os("DF_RECORD").is_some() {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let load = load.split_whitespace().next().unwrap_or("?").to_string();
        testbed::bench::write_section(
            "ra-flood",
            &format!(
                "## Router advertisements under a flooding VM (end to end)\n\n\
                 `DF_RECORD=1 cargo nextest run -p dragonflow --test ipv6_flood_e2e --no-capture`: \
                 one host (real OVS, `dragonflow controller`), VM A sends {sent} router \
                 solicitations in 6 s (raw socket, aiming at 10,000/s), VM B measures RS→RA (2/s).\n\n\
                 | measure | quiet host | while A floods |\n|---|---|---|\n\
                 | RS→RA, median of 8 | {q:.2} ms | {f:.2} ms |\n\
                 | RS→RA, worst of 8 | {:.2} ms | {:.2} ms |\n\n\
                 A is answered ten times, then blocked in the switch (one drop flow in table \
                 46 for 10 s). The issue's target: under 5 ms at the \
                 median while flooded. Machine load (1 min) when recorded: {load}.\n\n",
                quiet.iter().copied().fold(0.0, f64::max),
                flooded.iter().copied().fold(0.0, f64::max),
            ),
        );
    }
}
