//! `dragonflow trace` against a real cloud: two hosts with their own Open vSwitch and
//! controller. A missing security group rule is named by the trace and `nc` really times
//! out; after the rule is added the trace says delivered and `nc` connects; a routed
//! packet names its router; and Open vSwitch's own `ofproto/trace` agrees table by table.
//! `dragonflow capture` shows a VM's pings both ways through a mirror it then removes.

mod common;

use common::cloud::{TwoHosts, addr, two_hosts, wait_until};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `dragonflow trace ARGS` with host `h`'s OVS for `--real`.
fn trace(t: &TwoHosts, h: usize, args: &[&str]) -> (bool, Value, String) {
    common::trace::run(&t.srv, &t.ovs[h], args)
}

/// `dragonflow ARGS --json` against the server with the reader token.
fn inspect(t: &TwoHosts, args: &[&str]) -> (bool, Value, String) {
    common::trace::inspect(&t.srv, args)
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn listen(vm: &testbed::Vm, port: u16) -> Proc {
    let mut c = vm.ns.command(["nc", "-lk", &port.to_string()]);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let p = Proc(c.spawn().expect("nc -l"));
    std::thread::sleep(Duration::from_millis(200));
    p
}

fn connects(vm: &testbed::Vm, ip: &str, port: u16) -> bool {
    vm.ns
        .exec(["nc", "-z", "-w", "2", ip, &port.to_string()])
        .is_ok()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

#[test]
fn a_missing_rule_is_named_nc_times_out_and_after_the_rule_both_agree_it_is_delivered() {
    if !testbed::require_root("a_missing_rule_is_named") {
        return;
    }
    let t = two_hosts();
    let net = t.srv.network("front", "10.0.1.0/24");
    let web = id(&t
        .srv
        .create("security-groups", "security_group", json!({"name": "web"})));
    let p1 = t.srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "name": "client"}),
    );
    let p2 = t.srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "name": "server", "security_groups": [web]}),
    );
    let vm1 = t.plug(&p1, 0, 24);
    let vm2 = t.plug(&p2, 1, 24);
    let ip2 = addr(&p2).1;
    let _nc = listen(&vm2, 22);

    // No ingress rule of `web` admits tcp/22: the trace names the group, and OVS agrees.
    let to = format!("{ip2}:22");
    let (ok, r, out) = trace(&t, 0, &["--from", "client", "--to", &to, "--real"]);
    assert!(ok, "{out}");
    assert_eq!(r["outcome"], "dropped", "{out}");
    let verdict = r["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict.contains("security group web")
            && verdict.contains("ingress")
            && verdict.contains("tcp/22"),
        "{verdict}"
    );
    assert!(
        verdict.contains("host-b"),
        "dropped on the receiver's host: {verdict}"
    );
    assert!(r["ovs_tables"].is_array(), "--real compared: {out}");
    assert!(
        !connects(&vm1, &ip2, 22),
        "nc must time out without the rule"
    );

    // The rule: the trace says delivered over Geneve, and nc connects.
    t.srv.create(
        "security-group-rules",
        "security_group_rule",
        json!({"security_group_id": web, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 22, "port_range_max": 22}),
    );
    wait_until("the rule to reach host b", Duration::from_secs(10), || {
        trace(&t, 0, &["--from", "client", "--to", &to]).1["outcome"] == "delivered"
    });
    let (ok, r, out) = trace(&t, 0, &["--from", "client", "--to", &to, "--real"]);
    assert!(ok, "{out}");
    let verdict = r["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict.contains("delivered to server")
            && verdict.contains("host-b")
            && verdict.contains("geneve"),
        "{verdict}"
    );
    let owners: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["owner"].as_str())
        .collect();
    assert!(
        owners
            .iter()
            .any(|o| o.contains("security group web, rule")),
        "the admitting rule is named among the steps: {owners:?}"
    );
    wait_until("nc to connect", Duration::from_secs(10), || {
        connects(&vm1, &ip2, 22)
    });

    // The text form: a line per flow with its table's name, the verdict last.
    let text = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .args([
            "trace",
            "--nb",
            &t.srv.nb_url,
            "--from",
            "client",
            "--to",
            &to,
        ])
        .env(
            "DRAGONFLOW_NB_TOKEN",
            common::token(neutron_api::nb_auth::Principal::Reader),
        )
        .output()
        .expect("dragonflow trace");
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    let last = text.lines().last().unwrap_or_default();
    assert!(
        text.contains("host-a:")
            && text.contains("ingress_sg")
            && last.contains("delivered to server"),
        "{text}"
    );

    // `dragonflow port`: bound, plugged, realized by its host, flows by app.
    let (ok, v, out) = inspect(&t, &["port", "server"]);
    assert!(ok, "{out}");
    assert_eq!(v["binding_host_id"], "host-b", "{out}");
    assert_eq!(v["status"], "ACTIVE", "{out}");
    assert!(v["plugged_at_ofport"].as_u64().is_some(), "{out}");
    assert_eq!(v["realized"]["realized"], true, "{out}");
    for app in ["Classifier", "L2", "SecurityGroup"] {
        assert!(
            v["flows_by_app"][app].as_u64().unwrap_or(0) > 0,
            "{app}: {out}"
        );
    }

    // `established`: a packet of a connection already admitted passes the groups too.
    let (ok, r, out) = trace(
        &t,
        0,
        &["--from", "client", "--to", &to, "--state", "established"],
    );
    assert!(ok && r["outcome"] == "delivered", "{out}");
}

#[test]
fn a_routed_packet_names_its_router_and_ovs_agrees() {
    if !testbed::require_root("a_routed_packet_names_its_router") {
        return;
    }
    let t = two_hosts();
    let net_with_subnet = |name: &str, cidr: &str| {
        let net = t.srv.create("networks", "network", json!({"name": name}));
        let subnet = t.srv.create(
            "subnets",
            "subnet",
            json!({"network_id": net["id"], "ip_version": 4, "cidr": cidr}),
        );
        (net, id(&subnet))
    };
    let (a, sa) = net_with_subnet("left", "10.0.2.0/24");
    let (b, sb) = net_with_subnet("right", "10.0.3.0/24");
    let router = t.srv.create("routers", "router", json!({"name": "edge"}));
    for subnet in [sa, sb] {
        let (code, body) = t.srv.call(
            "PUT",
            &format!("/v2.0/routers/{}/add_router_interface", id(&router)),
            Some(json!({"subnet_id": subnet})),
        );
        assert_eq!(code, 200, "{body}");
    }
    let pa = t.srv.create(
        "ports",
        "port",
        json!({"network_id": a["id"], "name": "left-vm"}),
    );
    let pb = t.srv.create(
        "ports",
        "port",
        json!({"network_id": b["id"], "name": "right-vm"}),
    );
    let vma = t.plug(&pa, 0, 24);
    let vmb = t.plug(&pb, 1, 24);
    for (vm, gw) in [(&vma, "10.0.2.1"), (&vmb, "10.0.3.1")] {
        vm.ns
            .exec(["ip", "route", "add", "default", "via", gw])
            .expect("default route");
    }
    let ipb = addr(&pb).1;

    let (ok, r, out) = trace(&t, 0, &["--from", "left-vm", "--to", &ipb, "--real"]);
    assert!(ok, "{out}");
    assert_eq!(r["outcome"], "delivered", "{out}");
    let verdict = r["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict.contains("right-vm") && verdict.contains("host-b"),
        "{verdict}"
    );
    assert!(
        r["steps"].as_array().unwrap().iter().any(|s| s["owner"]
            .as_str()
            .unwrap_or_default()
            .contains("router edge")),
        "the router's flows are named: {out}"
    );
    wait_until("ping across the router", Duration::from_secs(10), || {
        vma.ns.exec(["ping", "-c", "1", "-W", "1", &ipb]).is_ok()
    });

    // `dragonflow capture` of the VM's port on its host (in the namespace of that host's
    // OVS, where the capture port appears): its pings seen through a mirror, and neither
    // the mirror nor the capture port left afterwards. By id: the store is not needed.
    let mut cap = t.ovs[0].cmd(env!("CARGO_BIN_EXE_dragonflow"));
    cap.args(["capture", &id(&pa), "--", "-c", "4", "icmp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut cap = cap.spawn().expect("dragonflow capture");
    let mirrors = || t.ovs[0].vsctl(["--bare", "--columns=name", "list", "Mirror"]);
    let start = std::time::Instant::now();
    while !mirrors().is_ok_and(|m| m.contains("dragonflow-capture-")) {
        if cap.try_wait().expect("capture").is_some() {
            let out = cap.wait_with_output().expect("capture output");
            panic!(
                "capture ended early: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no mirror");
        std::thread::sleep(Duration::from_millis(100));
    }
    // tcpdump opens the port just after the mirror exists: ping until 4 packets are seen.
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..20 {
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let _ = vma.ns.exec(["ping", "-c", "1", "-W", "1", &ipb]);
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        let out = cap.wait_with_output().expect("capture output");
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}{err}");
        let ipa = addr(&pa).1;
        assert!(
            text.contains(&format!("{ipa} > {ipb}: ICMP echo request"))
                && text.contains(&format!("{ipb} > {ipa}: ICMP echo reply")),
            "both directions captured: {text}{err}"
        );
        assert!(err.contains("removed mirror"), "{err}");
    });
    let left = mirrors().unwrap_or_default();
    assert!(!left.contains("dragonflow-capture-"), "mirror left: {left}");
    let ports = t.ovs[0].vsctl(["list-ports", "br-int"]).unwrap_or_default();
    assert!(!ports.contains("dfcap"), "capture port left: {ports}");
    // By name, on a host where the port is not: the store says which port it is and where
    // it is bound; a clear error, and nothing added.
    let db = format!("unix:{}", t.ovs[1].db_sock().display());
    let out = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .args(["capture", "left-vm", "--ovsdb", &db, "--nb", &t.srv.nb_url])
        .env(
            "DRAGONFLOW_NB_TOKEN",
            common::token(neutron_api::nb_auth::Principal::Reader),
        )
        .output()
        .expect("dragonflow capture");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not plugged on this host") && err.contains("host-a"),
        "{err}"
    );
    let ports = t.ovs[1].vsctl(["list-ports", "br-int"]).unwrap_or_default();
    assert!(!ports.contains("dfcap"), "{ports}");

    // `dragonflow flows --owner`: the router's flows, on both hosts (distributed).
    let (ok, v, out) = inspect(&t, &["flows", "--owner", "edge"]);
    assert!(ok, "{out}");
    for h in ["host-a", "host-b"] {
        let flows = v["hosts"][h].as_array().map_or(0, Vec::len);
        assert!(flows > 0, "{h}: {out}");
    }
    let (ok, _, out) = inspect(&t, &["flows", "--owner", "no-such-thing"]);
    assert!(!ok && out.contains("no port, network, router"), "{out}");

    // The shared helper of the e2e scenarios can fail: a wrong expectation of the outcome,
    // and (below) a table of host a's pipeline deleted behind the controller's back.
    let wrong = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::trace::expect(&t.srv, &t.ovs[0], "left-vm", &ipb, None, "dropped")
    }));
    assert!(wrong.is_err(), "a wrong expectation must fail the helper");

    // An address nobody has: the trace says where it went, and no port is named falsely.
    let (ok, r, out) = trace(&t, 0, &["--from", "left-vm", "--to", "10.0.3.99"]);
    assert!(ok, "{out}");
    assert_ne!(r["outcome"], "delivered", "{out}");

    // Bad input is refused with a clear message, not a panic.
    for bad in [
        vec!["--from", "nobody", "--to", "10.0.3.5"],
        vec!["--from", "left-vm", "--to", "not-an-ip"],
        vec!["--from", "left-vm", "--frame", "zz"],
        vec!["--from", "left-vm", "--to", "10.0.3.5", "--proto", "udp"],
    ] {
        let (ok, _, out) = trace(&t, 0, &bad);
        assert!(
            !ok && out.contains("dragonflow:") && !out.contains("panicked"),
            "{bad:?}: {out}"
        );
    }

    // A table the packet goes through, emptied on host a: OVS no longer agrees with the
    // compiled pipeline, and the trace says so (the helper of the e2e scenarios fails).
    let r = common::trace::delivered(&t.srv, &t.ovs[0], "left-vm", &ipb, None);
    let tables = r.json["ovs_tables"].as_array().cloned().unwrap_or_default();
    let table = tables[tables.len() / 2].as_u64().expect("a table");
    t.ovs[0]
        .ofctl(["del-flows", "br-int", &format!("table={table}")])
        .expect("del-flows");
    let (ok, _, out) = trace(&t, 0, &["--from", "left-vm", "--to", &ipb, "--real"]);
    assert!(
        !ok && out.contains("Open vSwitch disagrees"),
        "table {table} emptied: {out}"
    );
    let tampered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::trace::agrees(&t.srv, &t.ovs[0], "left-vm", &ipb, None)
    }));
    assert!(
        tampered.is_err(),
        "the helper must fail on a tampered table"
    );
}
