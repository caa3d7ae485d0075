//! Floating IP port forwarding end to end on real OVS (the north-south cloud of `ns`): a
//! VM runs a real `nc -l` on TCP 22; from the outside, `nc` to the floating IP's port 2222
//! reaches it, data flows both ways and the VM sees the outside's real address; ports not
//! forwarded reach nothing, and a deleted forwarding stops.

mod common;

mod ns;

use common::cloud::addr;
use ns::{Cloud, capture, captured, routed_inside};
use serde_json::json;
use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// `nc -l` on `port` in `ns` that sends `says` to the first peer and prints what it got
/// (stdout) and who connected (`-v`, stderr); killed when dropped.
struct Listener(Option<Child>);

impl Listener {
    fn start(ns: &testbed::Netns, port: u16, says: &str) -> Listener {
        let mut child = ns
            // -n: no name lookups (the namespace has no resolver; -v would wait on one).
            .command(["nc", "-n", "-v", "-N", "-w", "5", "-l", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nc -l");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(says.as_bytes()).expect("write");
        drop(stdin);
        // nc has no ready signal: give it time to bind.
        std::thread::sleep(Duration::from_millis(300));
        Listener(Some(child))
    }

    /// What it received and what it said on stderr, once it ended.
    fn finish(mut self) -> (String, String) {
        let Some(mut c) = self.0.take() else {
            return Default::default();
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let out = c.wait_with_output().expect("nc output");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Connects from `ns` to `ip:port`, sends `says` and returns what came back.
fn talk(ns: &testbed::Netns, ip: &str, port: u16, says: &str) -> String {
    let mut c = ns
        .command(["nc", "-n", "-N", "-w", "3", ip, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nc");
    let mut stdin = c.stdin.take().expect("stdin");
    let _ = stdin.write_all(says.as_bytes());
    drop(stdin);
    let out = c.wait_with_output().expect("nc output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_forwarded_port_reaches_the_vm_and_others_do_not() {
    if !testbed::require_root("a_forwarded_port_reaches_the_vm_and_others_do_not") {
        return;
    }
    let t = Cloud::start(None);
    let (ext, net) = routed_inside(&t);
    let pa = t.port(&net);
    let vm = t.plug(&pa, 0);
    vm.ns
        .exec(["ip", "route", "add", "default", "via", "10.0.0.1"])
        .expect("route");
    let (_, vm_ip) = addr(&pa);
    let fip = t.srv.create(
        "floatingips",
        "floatingip",
        json!({"floating_network_id": ext["id"]}),
    );
    let fip_ip = fip["floating_ip_address"].as_str().unwrap().to_string();
    let fip_id = fip["id"].as_str().unwrap().to_string();
    let pfs = format!("/v2.0/floatingips/{fip_id}/port_forwardings");
    let (st, pf) = t.srv.call(
        "POST",
        &pfs,
        Some(json!({"port_forwarding": {
            "internal_port_id": pa["id"], "internal_ip_address": vm_ip,
            "internal_port": 22, "external_port": 2222, "protocol": "tcp"}})),
    );
    assert_eq!(st, 201, "{pf}");
    let pf_id = pf["port_forwarding"]["id"].as_str().unwrap().to_string();

    // Until the controller has it, a try may find nothing: a fresh listener each time.
    let cap = capture(&t.outside, "eth0", &["tcp"]);
    let start = Instant::now();
    let (got, heard, who) = loop {
        let l = Listener::start(&vm.ns, 22, "from-vm\n");
        let got = talk(&t.outside, &fip_ip, 2222, "from-outside\n");
        let (heard, who) = l.finish();
        if got.contains("from-vm") || start.elapsed() > Duration::from_secs(20) {
            break (got, heard, who);
        }
    };
    let wire = captured(cap);
    assert_eq!(
        got,
        "from-vm\n",
        "heard {heard:?}, {who}; the outside saw:\n{wire}\n{}",
        t.dumps()
    );
    assert_eq!(heard, "from-outside\n");
    assert!(
        who.contains("203.0.113.1"),
        "the VM sees the outside: {who}"
    );
    // The forwarded connection starts outside, where trace cannot send from (it sends
    // only from Neutron ports): the VM's own way out through the same router is traced.
    common::trace::delivered(&t.srv, &t.ovs[0], &vm_ip, "203.0.113.1:2222", None);

    // Not forwarded: the floating IP's port 22 itself, and a port the VM listens on.
    for port in [22, 2223] {
        let l = Listener::start(&vm.ns, port, "from-vm\n");
        assert_eq!(talk(&t.outside, &fip_ip, port, "x\n"), "", "port {port}");
        let (heard, _) = l.finish();
        assert_eq!(heard, "", "port {port}");
    }

    // Deleted, the forwarding stops.
    let (st, _) = t.srv.call("DELETE", &format!("{pfs}/{pf_id}"), None);
    assert_eq!(st, 204);
    std::thread::sleep(Duration::from_secs(1));
    let l = Listener::start(&vm.ns, 22, "from-vm\n");
    assert_eq!(talk(&t.outside, &fip_ip, 2222, "x\n"), "");
    drop(l);
    let (st, body) = t
        .srv
        .call("DELETE", &format!("/v2.0/floatingips/{fip_id}"), None);
    assert_eq!(st, 204, "{body}");
}
