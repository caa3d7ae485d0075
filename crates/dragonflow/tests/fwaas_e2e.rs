//! FWaaS v2 end to end (issue 24): two hosts with their own OVS and controller, a router
//! between net1 (the client, host a) and net2 (the server, host b), and a firewall group
//! made with the real `openstack firewall group …` commands on the router's net1
//! interface, ingress policy [deny tcp/22, reject tcp/23, allow any]. Enforced where the
//! router routes the client's traffic (host a): `nc` to 22 times out, 23 is refused at
//! once (the controller's RST), 80 works, the server's security group still keeps 8080
//! closed, and an allow tcp/22 inserted before the deny opens 22 while an established
//! session stays up (it is cut when a later change no longer allows it). Then an egress
//! policy on the server's interface, checked where the routed packet arrives (host b):
//! its reject is routed back over the tunnel. And a VM port's group, on its own host.

mod common;

use common::cloud::{TwoHosts, two_hosts, wait_until};
use serde_json::{Value, json};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP listener on `port` in the VM that keeps accepting.
fn listen(vm: &testbed::Vm, port: u16) -> Proc {
    let mut c = vm.ns.command(["nc", "-lk", &port.to_string()]);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Proc(c.spawn().expect("nc -lk"))
}

/// A TCP session from the VM to a listener that writes what it receives to a file: lines
/// are sent one by one, and the file says which arrived.
struct Session {
    client: Proc,
    _server: Proc,
    file: tempfile::NamedTempFile,
}

impl Session {
    fn open(client: &testbed::Vm, server: &testbed::Vm, ip: &str, port: u16) -> Session {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let mut l = server.ns.command([
            "sh",
            "-c",
            &format!("exec nc -l {port} > {}", file.path().display()),
        ]);
        l.stdin(Stdio::null()).stderr(Stdio::null());
        let server = Proc(l.spawn().expect("nc -l"));
        std::thread::sleep(Duration::from_millis(300));
        let mut c = client.ns.command(["nc", ip, &port.to_string()]);
        c.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Session {
            client: Proc(c.spawn().expect("nc")),
            _server: server,
            file,
        }
    }

    /// Sends `line`; whether it arrives within `within`.
    fn sends(&mut self, line: &str, within: Duration) -> bool {
        use std::io::Write;
        let stdin = self.client.0.stdin.as_mut().expect("stdin");
        if writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .is_err()
        {
            return false;
        }
        let start = Instant::now();
        while start.elapsed() < within {
            let got = std::fs::read_to_string(self.file.path()).unwrap_or_default();
            if got.lines().any(|l| l == line) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

/// One `nc -z -v -w <secs>` from the VM: whether it connected, what nc said, how long
/// it took.
fn try_connect(vm: &testbed::Vm, ip: &str, port: u16, secs: u32) -> (bool, String, Duration) {
    let start = Instant::now();
    let out = vm
        .ns
        .command([
            "nc",
            "-z",
            "-v",
            "-w",
            &secs.to_string(),
            ip,
            &port.to_string(),
        ])
        .output()
        .expect("nc");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said, start.elapsed())
}

/// Waits (up to 20 s, for the flows) until a connection to `ip:port` is refused at once.
fn refused_soon(t: &TwoHosts, vm: &testbed::Vm, ip: &str, port: u16) {
    let start = Instant::now();
    loop {
        let (ok, said, took) = try_connect(vm, ip, port, 5);
        if !ok && said.contains("refused") && took < Duration::from_millis(1500) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{port} not refused: connected {ok}, {said:?} after {took:?}\n{}",
            t.dumps()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A connection that should work: a few attempts (the first packet across the underlay
/// can be lost while OVS resolves the tunnel peer's MAC).
fn reaches(vm: &testbed::Vm, ip: &str, port: u16) -> bool {
    (0..3).any(|_| try_connect(vm, ip, port, 1).0)
}

fn id(v: &Value) -> String {
    v.get("id")
        .or_else(|| v.get("ID"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

fn network(t: &TwoHosts, name: &str, cidr: &str) -> (Value, Value) {
    let net = t.srv.create("networks", "network", json!({"name": name}));
    let sub = t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": cidr}),
    );
    (net, sub)
}

fn default_route(vm: &testbed::Vm, sub: &Value) {
    let via = sub["gateway_ip"].as_str().expect("gateway");
    vm.ns
        .exec(["ip", "route", "add", "default", "via", via])
        .expect("default route");
}

/// `openstack firewall group rule create` for TCP to `port`.
fn tcp_rule(t: &TwoHosts, name: &str, port: u16, action: &str) -> String {
    let port = port.to_string();
    id(&t.srv.os(&[
        "firewall",
        "group",
        "rule",
        "create",
        "--name",
        name,
        "--protocol",
        "tcp",
        "--destination-port",
        &port,
        "--action",
        action,
    ]))
}

/// The issue's policy `name`, [deny tcp/22, reject tcp/23, allow any], through the CLI:
/// the three rules' ids and the policy's.
fn issue_policy(t: &TwoHosts, name: &str) -> [String; 4] {
    let d22 = tcp_rule(t, "no-ssh", 22, "deny");
    let r23 = tcp_rule(t, "no-telnet", 23, "reject");
    let any = id(&t.srv.os(&[
        "firewall",
        "group",
        "rule",
        "create",
        "--name",
        "rest",
        "--protocol",
        "any",
        "--action",
        "allow",
    ]));
    let policy = id(&t.srv.os(&[
        "firewall",
        "group",
        "policy",
        "create",
        "--firewall-rule",
        &d22,
        "--firewall-rule",
        &r23,
        "--firewall-rule",
        &any,
        name,
    ]));
    [d22, r23, any, policy]
}

#[test]
fn a_router_interface_group_denies_rejects_and_allows_alongside_security_groups() {
    if !testbed::require_root(
        "a_router_interface_group_denies_rejects_and_allows_alongside_security_groups",
    ) {
        return;
    }
    let t = two_hosts();
    let (n1, s1) = network(&t, "net1", "10.0.1.0/24");
    let (n2, s2) = network(&t, "net2", "10.0.2.0/24");
    let r = t.srv.create("routers", "router", json!({"name": "r"}));
    let rid = id(&r);
    for s in [&s1, &s2] {
        let (st, body) = t.srv.call(
            "PUT",
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            Some(json!({"subnet_id": s["id"]})),
        );
        assert_eq!(st, 200, "{body}");
    }
    // The server's security group: 22, 23, 25, 80 and 443 in, not 8080.
    let web = id(&t
        .srv
        .create("security-groups", "security_group", json!({"name": "web"})));
    for p in [22, 23, 25, 80, 443] {
        t.srv.create(
            "security-group-rules",
            "security_group_rule",
            json!({"security_group_id": web, "direction": "ingress", "protocol": "tcp",
                   "port_range_min": p, "port_range_max": p}),
        );
    }
    let (client, ip_c) = t.vm(&n1, 0);
    let sp = t.srv.create(
        "ports",
        "port",
        json!({"network_id": n2["id"], "security_groups": [web]}),
    );
    let server = t.plug(&sp, 1, 24);
    let ip_s = common::cloud::addr(&sp).1;
    default_route(&client, &s1);
    default_route(&server, &s2);
    let _listeners: Vec<Proc> = [22, 23, 25, 80, 8080]
        .into_iter()
        .map(|p| listen(&server, p))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    wait_until("22 to be reachable", Duration::from_secs(20), || {
        reaches(&client, &ip_s, 22)
    });
    assert!(
        !try_connect(&client, &ip_s, 8080, 1).0,
        "the security group keeps 8080 closed\n{}",
        t.dumps()
    );

    // The group on the router's net1 interface.
    let (_, ports) = t.srv.call(
        "GET",
        &format!("/v2.0/ports?device_id={rid}&network_id={}", id(&n1)),
        None,
    );
    let r1 = id(&ports["ports"][0]);
    let [d22, _, any, policy] = issue_policy(&t, "edge");
    t.srv.os(&[
        "firewall",
        "group",
        "create",
        "--name",
        "edge",
        "--ingress-firewall-policy",
        &policy,
        "--port",
        &r1,
    ]);

    // 23 refused at once: the firewall is in.
    refused_soon(&t, &client, &ip_s, 23);
    let (ok, said, took) = try_connect(&client, &ip_s, 22, 2);
    assert!(
        !ok && !said.contains("refused") && took >= Duration::from_secs(2),
        "22 times out: {said} after {took:?}\n{}",
        t.dumps()
    );
    assert!(reaches(&client, &ip_s, 80), "80 works\n{}", t.dumps());
    let (ok, said, _) = try_connect(&client, &ip_s, 8080, 1);
    assert!(!ok, "the security group still applies: {said}");
    // The router's firewall in the compiled pipeline, as OVS and nc saw it.
    let (to22, to80) = (format!("{ip_s}:22"), format!("{ip_s}:80"));
    let r = common::trace::expect(&t.srv, &t.ovs[0], &ip_c, &to22, None, "dropped");
    assert!(r.verdict.contains("firewall"), "{}", r.out);
    common::trace::delivered(&t.srv, &t.ovs[0], &ip_c, &to80, None);

    // A session to 443 (allow any), open across the changes below.
    let mut session = Session::open(&client, &server, &ip_s, 443);
    assert!(
        session.sends("one", Duration::from_secs(5)),
        "the session works\n{}",
        t.dumps()
    );

    // allow tcp/22 inserted before the deny opens it.
    let a22 = tcp_rule(&t, "ssh", 22, "allow");
    t.srv.os_ok(&[
        "firewall",
        "group",
        "policy",
        "add",
        "rule",
        &policy,
        &a22,
        "--insert-before",
        &d22,
    ]);
    wait_until("22 to open", Duration::from_secs(20), || {
        reaches(&client, &ip_s, 22)
    });
    let (ok, said, took) = try_connect(&client, &ip_s, 23, 5);
    assert!(
        !ok && said.contains("refused") && took < Duration::from_millis(1500),
        "23 still refused: {said}"
    );
    assert!(
        session.sends("two", Duration::from_secs(5)),
        "the reordering kept the established session"
    );

    // The server's interface (net2) with an egress policy [reject tcp/25, allow any]:
    // checked where the routed packet arrives (host b), whose controller routes the RST
    // back over the tunnel.
    assert!(reaches(&client, &ip_s, 25), "25 open so far");
    let (_, ports) = t.srv.call(
        "GET",
        &format!("/v2.0/ports?device_id={rid}&network_id={}", id(&n2)),
        None,
    );
    let r2 = id(&ports["ports"][0]);
    let r25 = tcp_rule(&t, "no-smtp", 25, "reject");
    let any2 = id(&t.srv.os(&[
        "firewall",
        "group",
        "rule",
        "create",
        "--name",
        "rest2",
        "--protocol",
        "any",
        "--action",
        "allow",
    ]));
    let out = id(&t.srv.os(&[
        "firewall",
        "group",
        "policy",
        "create",
        "--firewall-rule",
        &r25,
        "--firewall-rule",
        &any2,
        "servers-out",
    ]));
    t.srv.os(&[
        "firewall",
        "group",
        "create",
        "--name",
        "servers",
        "--egress-firewall-policy",
        &out,
        "--port",
        &r2,
    ]);
    refused_soon(&t, &client, &ip_s, 25);
    assert!(
        reaches(&client, &ip_s, 80),
        "80 passes both interfaces' groups\n{}",
        t.dumps()
    );

    // Without its allow any, the policy no longer allows the session: it stops.
    t.srv.os_ok(&[
        "firewall", "group", "policy", "remove", "rule", &policy, &any,
    ]);
    wait_until("80 to close", Duration::from_secs(20), || {
        !try_connect(&client, &ip_s, 80, 1).0
    });
    assert!(
        !session.sends("three", Duration::from_secs(2)),
        "the session a policy change no longer allows is cut"
    );
}

/// A VM port (`compute:nova`) on host b, in the project's default group first (ingress
/// deny, egress allow: nothing gets in, its own connections and their replies do), then
/// in a group of its own with the ingress policy [deny tcp/22, reject tcp/23, allow any]:
/// enforced on its own host, the RST for 23 crossing the tunnel back to the client.
#[test]
fn a_vm_port_group_filters_on_the_ports_own_host() {
    if !testbed::require_root("a_vm_port_group_filters_on_the_ports_own_host") {
        return;
    }
    let t = two_hosts();
    let (net, _) = network(&t, "net", "10.0.1.0/24");
    let (client, ip_c) = t.vm(&net, 0);
    let sp = t.srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "device_owner": "compute:nova"}),
    );
    let server = t.plug(&sp, 1, 24);
    let (sid, ip_s) = (id(&sp), common::cloud::addr(&sp).1);
    let _server_listens: Vec<Proc> = [22, 23, 80]
        .into_iter()
        .map(|p| listen(&server, p))
        .collect();
    let _client_listens = listen(&client, 8000);
    std::thread::sleep(Duration::from_millis(300));
    wait_until("80 to be reachable", Duration::from_secs(20), || {
        reaches(&client, &ip_s, 80)
    });

    // The default group (made on the first listing).
    let groups = t.srv.os(&["firewall", "group", "list"]);
    let default = (groups.as_array().expect("groups").iter())
        .find(|g| g.get("Name").or_else(|| g.get("name")) == Some(&json!("default")))
        .map(id)
        .expect("the default group");
    t.srv
        .os_ok(&["firewall", "group", "set", &default, "--port", &sid]);
    wait_until(
        "the default group to close 80",
        Duration::from_secs(20),
        || !try_connect(&client, &ip_s, 80, 1).0,
    );
    assert!(
        reaches(&server, &ip_c, 8000),
        "the server's own connection and its replies pass\n{}",
        t.dumps()
    );
    t.srv
        .os_ok(&["firewall", "group", "unset", &default, "--port", &sid]);

    let [.., policy] = issue_policy(&t, "vm");
    t.srv.os(&[
        "firewall",
        "group",
        "create",
        "--name",
        "vm",
        "--ingress-firewall-policy",
        &policy,
        "--port",
        &sid,
    ]);
    refused_soon(&t, &client, &ip_s, 23);
    let (ok, said, took) = try_connect(&client, &ip_s, 22, 2);
    assert!(
        !ok && !said.contains("refused") && took >= Duration::from_secs(2),
        "22 times out: {said} after {took:?}\n{}",
        t.dumps()
    );
    assert!(reaches(&client, &ip_s, 80), "80 works\n{}", t.dumps());
    let (to22, to80) = (format!("{ip_s}:22"), format!("{ip_s}:80"));
    common::trace::expect(&t.srv, &t.ovs[0], &ip_c, &to22, None, "dropped");
    common::trace::delivered(&t.srv, &t.ovs[0], &ip_c, &to80, None);
}
