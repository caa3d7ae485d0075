//! Tap as a service end to end (issue 24): two hosts with real OVS and controllers, VM A
//! on host a, VM B and the tap service's VM S on host b, and a `BOTH` tap flow on A into
//! S made through the API. tcpdump in S sees every request A sends to B and every reply
//! B sends back, each once and unchanged (the request copied at A's door on host a, the
//! reply where it is delivered to A, both tunnelled to host b with the service's own
//! key); S's port has a security group that lets nothing in, which the copies bypass;
//! tcpdump in B sees each request exactly once. Deleting the flow stops the mirror. And a
//! service port that taps itself gets a bounded number of copies on real OVS too.

mod common;

use common::cloud::{TwoHosts, addr, two_hosts, wait_until};
use serde_json::{Value, json};
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A tcpdump of ICMP on a VM's eth0, one packet a line, stopped after `secs`.
struct Tcpdump(Child);

impl Tcpdump {
    fn start(vm: &testbed::Vm, secs: u32) -> Tcpdump {
        let c = vm
            .ns
            .command([
                "timeout",
                &secs.to_string(),
                "tcpdump",
                "-i",
                "eth0",
                "-n",
                "-l",
                "icmp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump");
        // tcpdump needs a moment before it captures.
        std::thread::sleep(Duration::from_millis(800));
        Tcpdump(c)
    }

    fn lines(self) -> Vec<String> {
        let out = self.0.wait_with_output().expect("tcpdump").stdout;
        String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Lines of `lines` with an ICMP `kind` (`request`, `reply`) from `src` to `dst`.
fn count(lines: &[String], src: &str, dst: &str, kind: &str) -> usize {
    lines
        .iter()
        .filter(|l| l.contains(&format!("{src} > {dst}:")) && l.contains(&format!("echo {kind}")))
        .count()
}

/// `n` pings from `vm` to `ip`, a fifth of a second apart; whether all were answered.
fn ping(vm: &testbed::Vm, ip: &str, n: u32) -> bool {
    vm.ns
        .exec(["ping", "-c", &n.to_string(), "-i", "0.2", "-W", "1", ip])
        .is_ok()
}

/// Whether host `h`'s br-int holds tap flows (the tap app's cookie, 22 << 56).
fn has_tap_flows(t: &TwoHosts, h: usize) -> bool {
    t.ovs[h]
        .ofctl(["-O", "OpenFlow13", "dump-flows", "br-int"])
        .unwrap_or_default()
        .contains("cookie=0x16000000")
}

#[test]
fn a_both_tap_flow_mirrors_request_and_reply_to_a_service_on_another_host() {
    if !testbed::require_root(
        "a_both_tap_flow_mirrors_request_and_reply_to_a_service_on_another_host",
    ) {
        return;
    }
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("tapnet", "10.61.0.0/24");
    let (a, a_ip) = t.vm(&net, 0);
    let (b, b_ip) = t.vm(&net, 1);
    // The collector: a group with no rules, so nothing addressed to it gets in.
    let closed = srv.create(
        "security-groups",
        "security_group",
        json!({"name": "closed"}),
    );
    for r in srv
        .call(
            "GET",
            &format!(
                "/v2.0/security-group-rules?security_group_id={}",
                closed["id"].as_str().unwrap()
            ),
            None,
        )
        .1["security_group_rules"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let (st, v) = srv.call(
            "DELETE",
            &format!("/v2.0/security-group-rules/{}", r["id"].as_str().unwrap()),
            None,
        );
        assert_eq!(st, 204, "{v}");
    }
    let s_port = srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "security_groups": [closed["id"]]}),
    );
    let s_ip = addr(&s_port).1;
    let s = t.plug(&s_port, 1, 24);
    wait_until("A to reach B", Duration::from_secs(20), || {
        ping(&a, &b_ip, 1)
    });
    assert!(!ping(&a, &s_ip, 2), "nothing gets into S by itself");

    let (st, ts) = srv.call(
        "POST",
        "/v2.0/taas/tap_services",
        Some(json!({"tap_service": {"name": "collector", "port_id": s_port["id"]}})),
    );
    assert_eq!(st, 201, "{ts}");
    let (st, tf) = srv.call(
        "POST",
        "/v2.0/taas/tap_flows",
        Some(
            json!({"tap_flow": {"tap_service_id": ts["tap_service"]["id"],
            "source_port": port_id(&t, &a_ip), "direction": "BOTH"}}),
        ),
    );
    assert_eq!(st, 201, "{tf}");
    let tf_id = tf["tap_flow"]["id"].as_str().unwrap().to_string();
    wait_until(
        "the tap flows on both hosts",
        Duration::from_secs(20),
        || has_tap_flows(&t, 0) && has_tap_flows(&t, 1),
    );

    let (in_s, in_b) = (Tcpdump::start(&s, 6), Tcpdump::start(&b, 5));
    assert!(ping(&a, &b_ip, 5), "A still reaches B\n{}", t.dumps());
    let (seen_s, seen_b) = (in_s.lines(), in_b.lines());
    let why = || {
        format!(
            "S saw:\n{}\nB saw:\n{}\n{}",
            seen_s.join("\n"),
            seen_b.join("\n"),
            t.dumps()
        )
    };
    assert_eq!(count(&seen_s, &a_ip, &b_ip, "request"), 5, "{}", why());
    assert_eq!(count(&seen_s, &b_ip, &a_ip, "reply"), 5, "{}", why());
    assert_eq!(
        count(&seen_b, &a_ip, &b_ip, "request"),
        5,
        "B gets each once: {}",
        why()
    );
    assert_eq!(seen_s.len(), 10, "nothing else, no copy twice: {seen_s:#?}");
    // The request and its mirrored copy, as OVS takes them on A's host.
    let r = common::trace::delivered(&t.srv, &t.ovs[0], &a_ip, &b_ip, None);
    let collector = s_port["id"].as_str().unwrap_or_default();
    assert!(r.verdict.contains(collector), "the copy to S: {}", r.out);

    // The flow goes: the mirror stops.
    let (st, v) = srv.call("DELETE", &format!("/v2.0/taas/tap_flows/{tf_id}"), None);
    assert_eq!(st, 204, "{v}");
    wait_until(
        "the tap flows gone from host a",
        Duration::from_secs(20),
        || !has_tap_flows(&t, 0),
    );
    let in_s = Tcpdump::start(&s, 4);
    assert!(ping(&a, &b_ip, 3));
    let seen: Vec<String> = in_s.lines();
    assert!(seen.is_empty(), "no copy after the delete: {seen:?}");

    // A flow made again while A pings B every 10 ms: from the API's request to the first
    // copy in S (docs/benchmarks.md), by tcpdump's clock, which is this machine's.
    let dump =
        s.ns.command([
            "timeout", "8", "tcpdump", "-i", "eth0", "-n", "-l", "-tt", "icmp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(800));
    let mut pinger =
        a.ns.command(["ping", "-q", "-i", "0.01", "-c", "300", &b_ip])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping");
    std::thread::sleep(Duration::from_millis(300));
    let asked = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let source = port_id(&t, &a_ip);
    tap(
        &t,
        Some(&ts["tap_service"]["id"]),
        &Value::Null,
        &source,
        "BOTH",
    );
    let _ = pinger.wait();
    // Not killed: `timeout` would leave tcpdump running, holding its output open.
    let out = dump.wait_with_output().expect("tcpdump").stdout;
    let first = String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .expect("a copy after the flow was made again");
    let ms = (first - asked.as_secs_f64()) * 1000.0;
    println!("taas: tap flow create -> first copy in S: {ms:.1} ms");
    assert!(ms > 0.0 && ms < 5000.0, "{ms} ms");
}

/// A tap service on port `port` and a tap flow from `source` into it; the flow's id.
fn tap(
    t: &TwoHosts,
    service: Option<&Value>,
    port: &Value,
    source: &Value,
    direction: &str,
) -> (Value, String) {
    let ts = match service {
        Some(s) => s.clone(),
        None => {
            let (st, v) = t.srv.call(
                "POST",
                "/v2.0/taas/tap_services",
                Some(json!({"tap_service": {"port_id": port}})),
            );
            assert_eq!(st, 201, "{v}");
            v["tap_service"]["id"].clone()
        }
    };
    let (st, v) = t.srv.call(
        "POST",
        "/v2.0/taas/tap_flows",
        Some(
            json!({"tap_flow": {"tap_service_id": ts, "source_port": source,
            "direction": direction}}),
        ),
    );
    assert_eq!(st, 201, "{v}");
    (ts, v["tap_flow"]["id"].as_str().unwrap().to_string())
}

/// On real Open vSwitch (its recursion through a group's resubmit included): a service
/// port S that taps itself both ways, and a source A tapped into it, give a bounded
/// number of copies. S pings B: S sees its request leave and its own `OUT` copy of it,
/// B's reply arrive and its own `IN` copy of it (2 and 2 a ping; the copies are not
/// copied again). A pings B: S sees one copy of each request and reply.
#[test]
fn a_service_port_that_taps_itself_gets_bounded_copies() {
    if !testbed::require_root("a_service_port_that_taps_itself_gets_bounded_copies") {
        return;
    }
    let t: TwoHosts = two_hosts();
    let net = t.srv.network("tapnet", "10.62.0.0/24");
    let (a, a_ip) = t.vm(&net, 0);
    let (b, b_ip) = t.vm(&net, 1);
    let (s, s_ip) = t.vm(&net, 1);
    // The first ping across hosts may go before the other host has its flows.
    wait_until("S and A to reach B", Duration::from_secs(20), || {
        ping(&s, &b_ip, 1) && ping(&a, &b_ip, 1)
    });
    let s_port = port_id(&t, &s_ip);
    let (ts, _) = tap(&t, None, &s_port, &port_id(&t, &a_ip), "BOTH");
    tap(&t, Some(&ts), &s_port, &s_port, "BOTH");
    wait_until(
        "the tap flows on both hosts",
        Duration::from_secs(20),
        || has_tap_flows(&t, 0) && has_tap_flows(&t, 1),
    );
    let (in_s, in_b) = (Tcpdump::start(&s, 6), Tcpdump::start(&b, 5));
    assert!(ping(&s, &b_ip, 4), "S reaches B\n{}", t.dumps());
    assert!(ping(&a, &b_ip, 4), "A reaches B\n{}", t.dumps());
    let (seen, at_b) = (in_s.lines(), in_b.lines());
    let n = |src: &str, dst: &str, kind: &str| count(&seen, src, dst, kind);
    assert_eq!(
        (n(&s_ip, &b_ip, "request"), n(&b_ip, &s_ip, "reply")),
        (8, 8),
        "{seen:#?}"
    );
    assert_eq!(
        (n(&a_ip, &b_ip, "request"), n(&b_ip, &a_ip, "reply")),
        (4, 4),
        "{seen:#?}"
    );
    assert_eq!(seen.len(), 24, "nothing else: {seen:#?}");
    // S's own request and its copy back to S, as OVS takes them on host b.
    common::trace::delivered(&t.srv, &t.ovs[1], &s_ip, &b_ip, None);
    assert_eq!(at_b.len(), 16, "B: each request and reply once: {at_b:#?}");
}

/// The id of the port with address `ip`.
fn port_id(t: &TwoHosts, ip: &str) -> Value {
    let (_, v) = t.srv.call("GET", "/v2.0/ports", None);
    v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["fixed_ips"][0]["ip_address"] == ip)
        .map(|p| p["id"].clone())
        .expect("A's port")
}
