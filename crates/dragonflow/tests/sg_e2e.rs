//! Security groups end to end: two hosts, each with its own OVS and controller; groups and
//! rules created through the REST API; real traffic with `nc` and `ping`. Conntrack runs in
//! each host's userspace datapath.

mod common;

use common::cloud::{TwoHosts, addr, two_hosts, wait_until};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped (listeners, clients).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(mut c: Command) -> Proc {
    Proc(c.spawn().expect("spawn"))
}

/// A TCP listener on `port` in the VM that keeps accepting (`nc -lk`), output discarded.
fn listen(vm: &testbed::Vm, port: u16) -> Proc {
    let mut c = vm.ns.command(["nc", "-lk", &port.to_string()]);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let p = spawn(c);
    std::thread::sleep(Duration::from_millis(200));
    p
}

/// True when a TCP connection to `ip:port` from the VM is accepted within a second.
fn connects(vm: &testbed::Vm, ip: &str, port: u16) -> bool {
    vm.ns
        .exec(["nc", "-z", "-w", "1", ip, &port.to_string()])
        .is_ok()
}

/// A connection that should work: a few attempts, since the first packet across the
/// underlay can be lost while OVS resolves the tunnel peer's MAC.
fn reaches(vm: &testbed::Vm, ip: &str, port: u16) -> bool {
    (0..3).any(|_| connects(vm, ip, port))
}

fn pings_once(vm: &testbed::Vm, ip: &str) -> bool {
    vm.ns.exec(["ping", "-c", "1", "-W", "1", ip]).is_ok()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

fn group(t: &TwoHosts, name: &str) -> String {
    id(&t
        .srv
        .create("security-groups", "security_group", json!({"name": name})))
}

fn rule(t: &TwoHosts, body: Value) -> String {
    id(&t
        .srv
        .create("security-group-rules", "security_group_rule", body))
}

fn delete_rule(t: &TwoHosts, rule: &str) {
    let (code, body) = t.srv.call(
        "DELETE",
        &format!("/v2.0/security-group-rules/{rule}"),
        None,
    );
    assert_eq!(code, 204, "{body}");
}

fn network(t: &TwoHosts, cidr: &str, ip_version: u8) -> Value {
    let net = t.srv.create("networks", "network", json!({"name": "n"}));
    t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": ip_version, "cidr": cidr}),
    );
    net
}

/// A port of `net` holding `groups` (the project's default group when `None`), plugged on
/// host `h` and ACTIVE.
fn vm(
    t: &TwoHosts,
    net: &Value,
    groups: Option<Vec<&str>>,
    h: usize,
    prefix: u8,
) -> (testbed::Vm, String, String) {
    let mut body = json!({"network_id": net["id"]});
    if let Some(g) = groups {
        body["security_groups"] = json!(g);
    }
    let p = t.srv.create("ports", "port", body);
    let (mac, ip) = addr(&p);
    let pid = id(&p);
    let vm = testbed::Vm::plug(&t.ovs[h], "br-int", &pid, &mac, &format!("{ip}/{prefix}"))
        .expect("plug");
    let host = ["host-a", "host-b"][h];
    let start = Instant::now();
    loop {
        let (_, v) = t.srv.call("GET", &format!("/v2.0/ports/{pid}"), None);
        if v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == host {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "port {pid} not ACTIVE on {host}\n{}",
            t.dumps()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (vm, ip, pid)
}

/// Waits until `ok` holds, and returns how long it took.
fn within(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    wait_until(what, limit, &mut ok);
    start.elapsed()
}

#[test]
fn ingress_rules_by_port_prefix_and_protocol() {
    if !testbed::require_root("ingress_rules_by_port_prefix_and_protocol") {
        return;
    }
    let t = two_hosts();
    let net = network(&t, "10.0.1.0/24", 4);
    let srv_group = group(&t, "ssh-only");
    rule(
        &t,
        json!({"security_group_id": srv_group, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.1.0/24"}),
    );
    let (client, ip_c, _) = vm(&t, &net, None, 0, 24);
    let (server, ip_s, _) = vm(&t, &net, Some(vec![&srv_group]), 1, 24);
    let _l22 = listen(&server, 22);
    let _l23 = listen(&server, 23);
    assert!(
        reaches(&client, &ip_s, 22),
        "tcp/22 from 10.0.1.0/24 is allowed\n{}",
        t.dumps()
    );
    assert!(!connects(&client, &ip_s, 23), "tcp/23 has no rule");
    // The compiled pipeline agrees with OVS and with nc: 22 admitted, 23 dropped.
    let (to22, to23) = (format!("{ip_s}:22"), format!("{ip_s}:23"));
    common::trace::delivered(&t.srv, &t.ovs[0], &ip_c, &to22, None);
    common::trace::expect(&t.srv, &t.ovs[0], &ip_c, &to23, None, "dropped");
    assert!(!pings_once(&client, &ip_s), "ICMP has no rule yet");
    let asked = Instant::now();
    let icmp = rule(
        &t,
        json!({"security_group_id": srv_group, "direction": "ingress", "protocol": "icmp"}),
    );
    // From the API call to the rule's flow on the server's switch (polling ovs-ofctl).
    wait_until("the ICMP rule's flow", Duration::from_secs(5), || {
        t.ovs[1]
            .ofctl(["dump-flows", "br-int", "table=110,icmp"])
            .unwrap_or_default()
            .contains("ct(commit")
    });
    let took = asked.elapsed();
    eprintln!("API call to the rule's flow in the switch: {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "a rule takes effect promptly: {took:?}"
    );
    let took = within("ICMP to be allowed", Duration::from_secs(5), || {
        pings_once(&client, &ip_s)
    });
    eprintln!("icmp rule effective after {took:?}");
    delete_rule(&t, &icmp);
    within("ICMP to be blocked again", Duration::from_secs(5), || {
        !pings_once(&client, &ip_s)
    });
    // tcp/22 is still open.
    assert!(reaches(&client, &ip_s, 22));
}

#[test]
fn replies_to_egress_connections_pass_without_ingress_rules() {
    if !testbed::require_root("replies_to_egress_connections_pass_without_ingress_rules") {
        return;
    }
    let t = two_hosts();
    let net = network(&t, "10.0.1.0/24", 4);
    // The client's group has only the default egress rules: nothing may come in.
    let closed = group(&t, "closed");
    let open = group(&t, "open");
    rule(
        &t,
        json!({"security_group_id": open, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 8000, "port_range_max": 8100}),
    );
    rule(
        &t,
        json!({"security_group_id": open, "direction": "ingress", "protocol": "icmp"}),
    );
    let (client, ip_c, _) = vm(&t, &net, Some(vec![&closed]), 0, 24);
    let (server, ip_s, _) = vm(&t, &net, Some(vec![&open]), 1, 24);
    let _l = listen(&server, 8080);
    let _lc = listen(&client, 8080);
    assert!(
        reaches(&client, &ip_s, 8080),
        "the handshake's replies come back to the client\n{}",
        t.dumps()
    );
    assert!(client.pings(&ip_s), "echo replies come back");
    assert!(
        !connects(&server, &ip_c, 8080),
        "nothing may start towards the client"
    );
    assert!(!pings_once(&server, &ip_c), "no echo request reaches it");
    // From host b: the server's own connection is dropped at the client's group.
    let to = format!("{ip_c}:8080");
    common::trace::expect(&t.srv, &t.ovs[1], &ip_s, &to, None, "dropped");
}

#[test]
fn remote_group_members_connect_and_joining_opens() {
    if !testbed::require_root("remote_group_members_connect_and_joining_opens") {
        return;
    }
    let t = two_hosts();
    let net = network(&t, "10.0.1.0/24", 4);
    let clients = group(&t, "clients");
    let web = group(&t, "web");
    rule(
        &t,
        json!({"security_group_id": web, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 80, "port_range_max": 80, "remote_group_id": clients}),
    );
    let (member, ip_m, _) = vm(&t, &net, Some(vec![&clients]), 0, 24);
    let (outsider, ip_o, outsider_id) = vm(&t, &net, Some(vec![&web]), 0, 24);
    let (server, ip_w, _) = vm(&t, &net, Some(vec![&web]), 1, 24);
    let _l = listen(&server, 80);
    assert!(
        reaches(&member, &ip_w, 80),
        "a member of the remote group connects\n{}",
        t.dumps()
    );
    assert!(!connects(&outsider, &ip_w, 80), "a non-member does not");
    // The remote group's clause, as OVS and nc saw it.
    let to80 = format!("{ip_w}:80");
    common::trace::delivered(&t.srv, &t.ovs[0], &ip_m, &to80, None);
    common::trace::expect(&t.srv, &t.ovs[0], &ip_o, &to80, None, "dropped");
    let (code, body) = t.srv.call(
        "PUT",
        &format!("/v2.0/ports/{outsider_id}"),
        Some(json!({"port": {"security_groups": [web, clients]}})),
    );
    assert_eq!(code, 200, "{body}");
    // The new member's clause on the server's host, from the API call.
    let clause = format!("nw_src={ip_o} ");
    let took = within("the member's clause flow", Duration::from_secs(5), || {
        t.ovs[1]
            .ofctl(["dump-flows", "br-int", "table=110"])
            .unwrap_or_default()
            .contains(&clause)
    });
    eprintln!("joining: the member's flow on the server's host after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let took = within("the new member to connect", Duration::from_secs(5), || {
        connects(&outsider, &ip_w, 80)
    });
    eprintln!("joining took effect after {took:?}");
    // The member that was there all along is still in.
    assert!(reaches(&member, &ip_w, 80));
}

/// Reads what arrived so far in a file written by a listener.
fn received(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn an_established_session_is_cut_when_its_rule_goes() {
    if !testbed::require_root("an_established_session_is_cut_when_its_rule_goes") {
        return;
    }
    let t = two_hosts();
    let net = network(&t, "10.0.1.0/24", 4);
    let g = group(&t, "svc");
    let r5000 = rule(
        &t,
        json!({"security_group_id": g, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 5000, "port_range_max": 5000}),
    );
    rule(
        &t,
        json!({"security_group_id": g, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 6000, "port_range_max": 6000}),
    );
    let (client, _, _) = vm(&t, &net, None, 0, 24);
    let (server, ip_s, _) = vm(&t, &net, Some(vec![&g]), 1, 24);
    let dir = tempfile::tempdir().expect("tempdir");
    let session = |port: u16| {
        let out = dir.path().join(format!("rx{port}"));
        let mut l = server.ns.command(["nc", "-l", &port.to_string()]);
        l.stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("file"))
            .stderr(Stdio::null());
        let l = spawn(l);
        std::thread::sleep(Duration::from_millis(200));
        let mut c = client.ns.command(["nc", &ip_s, &port.to_string()]);
        c.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let c = spawn(c);
        (l, c, out)
    };
    let send = |c: &mut Proc, line: &str| {
        let stdin = c.0.stdin.as_mut().expect("stdin");
        stdin.write_all(line.as_bytes()).expect("write");
        stdin.flush().expect("flush");
    };
    let (_l1, mut c1, rx1) = session(5000);
    let (_l2, mut c2, rx2) = session(6000);
    send(&mut c1, "one\n");
    send(&mut c2, "one\n");
    wait_until("the first lines to arrive", Duration::from_secs(5), || {
        received(&rx1).contains("one") && received(&rx2).contains("one")
    });
    delete_rule(&t, &r5000);
    std::thread::sleep(Duration::from_millis(500));
    send(&mut c1, "two\n");
    send(&mut c2, "two\n");
    wait_until(
        "the session whose rule stays to go on",
        Duration::from_secs(5),
        || received(&rx2).contains("two"),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !received(&rx1).contains("two"),
        "the session on tcp/5000 must be cut once its rule is gone\n{}",
        t.dumps()
    );
}

#[test]
fn an_ipv6_rule_allows_ping6_and_its_absence_blocks_it() {
    if !testbed::require_root("an_ipv6_rule_allows_ping6_and_its_absence_blocks_it") {
        return;
    }
    let t = two_hosts();
    let net = network(&t, "fd00:1::/64", 6);
    let g = group(&t, "v6");
    let (client, ip_c, _) = vm(&t, &net, Some(vec![&g]), 0, 64);
    let (server, ip_s, _) = vm(&t, &net, Some(vec![&g]), 1, 64);
    // Neighbour discovery is not what this test is about: static neighbours, no DAD wait.
    let mac = |vm: &testbed::Vm| {
        vm.ns
            .exec(["cat", "/sys/class/net/eth0/address"])
            .expect("mac")
            .trim()
            .to_string()
    };
    let (mac_c, mac_s) = (mac(&client), mac(&server));
    for (vm, ip, mac) in [(&client, &ip_s, &mac_s), (&server, &ip_c, &mac_c)] {
        vm.ns
            .exec([
                "ip",
                "-6",
                "neigh",
                "replace",
                ip,
                "lladdr",
                mac,
                "dev",
                "eth0",
                "nud",
                "permanent",
            ])
            .expect("neighbour");
    }
    let ping6 =
        |vm: &testbed::Vm, ip: &str| vm.ns.exec(["ping", "-6", "-c", "1", "-W", "1", ip]).is_ok();
    wait_until("DAD to finish", Duration::from_secs(5), || {
        !client
            .ns
            .exec(["ip", "-6", "addr", "show", "dev", "eth0", "tentative"])
            .unwrap_or_default()
            .contains("inet6")
            && !server
                .ns
                .exec(["ip", "-6", "addr", "show", "dev", "eth0", "tentative"])
                .unwrap_or_default()
                .contains("inet6")
    });
    assert!(!ping6(&client, &ip_s), "no ingress ICMPv6 rule: blocked");
    let r = rule(
        &t,
        json!({"security_group_id": g, "direction": "ingress", "ethertype": "IPv6",
               "protocol": "icmpv6"}),
    );
    within("ping6 to pass", Duration::from_secs(5), || {
        ping6(&client, &ip_s)
    });
    assert!(ping6(&server, &ip_c), "and the other way");
    common::trace::delivered(&t.srv, &t.ovs[0], &ip_c, &ip_s, None);
    delete_rule(&t, &r);
    within("ping6 to be blocked again", Duration::from_secs(5), || {
        !ping6(&client, &ip_s)
    });
}

#[test]
fn a_stateless_group_passes_and_blocks_as_its_rules_say() {
    if !testbed::require_root("a_stateless_group_passes_and_blocks_as_its_rules_say") {
        return;
    }
    let t = two_hosts();
    let net = network(&t, "10.0.1.0/24", 4);
    let g = t.srv.create(
        "security-groups",
        "security_group",
        json!({"name": "stateless", "stateful": false}),
    );
    assert_eq!(g["stateful"], false);
    let sg = id(&g);
    // Its rules from the templates: everything out.
    let egress: Vec<String> = g["security_group_rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| r["direction"] == "egress")
        .map(id)
        .collect();
    assert_eq!(egress.len(), 2, "{g}");
    rule(
        &t,
        json!({"security_group_id": sg, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 22, "port_range_max": 22}),
    );
    let (client, ip_c, _) = vm(&t, &net, None, 0, 24);
    let (server, ip_s, _) = vm(&t, &net, Some(vec![&sg]), 1, 24);
    let _l22 = listen(&server, 22);
    let _l23 = listen(&server, 23);
    assert!(
        reaches(&client, &ip_s, 22),
        "tcp/22 in, the replies out by the egress rules\n{}",
        t.dumps()
    );
    assert!(!connects(&client, &ip_s, 23), "tcp/23 has no rule");
    // Stateless: the compiled pipeline agrees with OVS and with nc, 22 in and 23 dropped.
    let (to22, to23) = (format!("{ip_s}:22"), format!("{ip_s}:23"));
    common::trace::delivered(&t.srv, &t.ovs[0], &ip_c, &to22, None);
    common::trace::expect(&t.srv, &t.ovs[0], &ip_c, &to23, None, "dropped");
    // The server's packets skip conntrack: its rule's flow (priority 100) commits nothing.
    let flows = t.ovs[1]
        .ofctl(["dump-flows", "br-int", "table=110,tcp"])
        .unwrap_or_default();
    assert!(
        flows.contains("priority=100") && !flows.contains("ct(commit"),
        "{flows}"
    );
    // Without egress rules nothing remembers the client's SYN: the replies are dropped.
    for r in &egress {
        delete_rule(&t, r);
    }
    within("the handshake to fail", Duration::from_secs(5), || {
        !connects(&client, &ip_s, 22)
    });
    // Replies allowed by a rule of their own (to the client's ephemeral ports).
    rule(
        &t,
        json!({"security_group_id": sg, "direction": "egress", "protocol": "tcp",
               "port_range_min": 1024, "port_range_max": 65535}),
    );
    within(
        "the handshake to work again",
        Duration::from_secs(5),
        || connects(&client, &ip_s, 22),
    );
    assert!(!connects(&client, &ip_s, 23), "tcp/23 still has no rule");
}

#[test]
fn an_address_group_admits_its_prefixes_and_follows_their_changes() {
    if !testbed::require_root("an_address_group_admits_its_prefixes_and_follows_their_changes") {
        return;
    }
    let t = two_hosts();
    let net = network(&t, "10.0.1.0/24", 4);
    let (client, ip_c, _) = vm(&t, &net, None, 0, 24);
    let (other, ip_o, _) = vm(&t, &net, None, 0, 24);
    let ag = t.srv.create(
        "address-groups",
        "address_group",
        json!({"name": "admins", "addresses": [format!("{ip_c}/32")]}),
    );
    let ag = id(&ag);
    let g = group(&t, "ssh-from-admins");
    rule(
        &t,
        json!({"security_group_id": g, "direction": "ingress", "protocol": "tcp",
               "port_range_min": 22, "port_range_max": 22, "remote_address_group_id": ag}),
    );
    let (server, ip_s, _) = vm(&t, &net, Some(vec![&g]), 1, 24);
    let _l = listen(&server, 22);
    assert!(
        reaches(&client, &ip_s, 22),
        "the group's address connects\n{}",
        t.dumps()
    );
    assert!(!connects(&other, &ip_s, 22), "another address does not");
    let to22 = format!("{ip_s}:22");
    common::trace::delivered(&t.srv, &t.ovs[0], &ip_c, &to22, None);
    common::trace::expect(&t.srv, &t.ovs[0], &ip_o, &to22, None, "dropped");
    let change = |action: &str, ip: &str| {
        let (code, body) = t.srv.call(
            "PUT",
            &format!("/v2.0/address-groups/{ag}/{action}"),
            Some(json!({"address_group": {"addresses": [format!("{ip}/32")]}})),
        );
        assert_eq!(code, 200, "{body}");
    };
    change("add_addresses", &ip_o);
    within(
        "the added address to connect",
        Duration::from_secs(5),
        || connects(&other, &ip_s, 22),
    );
    change("remove_addresses", &ip_c);
    within(
        "the removed address to be refused",
        Duration::from_secs(5),
        || !connects(&client, &ip_s, 22),
    );
    assert!(reaches(&other, &ip_s, 22));
}
