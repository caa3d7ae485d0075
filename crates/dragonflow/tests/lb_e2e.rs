//! Distributed load balancing end to end (issue 23): two hosts with real OVS, a balancer
//! made through the Octavia API, members serving HTTP with Python's `http.server` in VM
//! namespaces on both hosts, and a client VM on the first host that reaches them through
//! the VIP: every member answers, one connection stays on one member (also while a member
//! is added), and a removed member gets no new connection; the balancer reads
//! PENDING_* until both hosts applied a change, and answers once ACTIVE. A member reaches
//! its own VIP (hairpin) whichever member it is balanced to. With SOURCE_IP session
//! persistence, every new connection of one client reaches one member, on either host. A
//! member on another network, behind a router, is balanced to beside one on the VIP's. An
//! IPv6 VIP spreads connections over IPv6 members on both hosts, a member reaches its own
//! IPv6 VIP, and SOURCE_IP persistence keeps an IPv6 client (or, with an IPv6
//! granularity, a /64 of clients) on one member.

mod common;

use common::backends::{
    Proc, ask_udp, balancer, curl, first_subnet, octavia as lb, octavia_made as made, python,
    serve, serve_on, serve_udp, tally,
};
use common::cloud::{TwoHosts, two_hosts, wait_until};
use serde_json::json;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

/// One TCP connection to `vip:80`: a request, `pause` seconds, a second request; prints
/// both answers on one line.
const KEEPALIVE: &str = r#"
import http.client, sys, time
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5)
c.request("GET", "/"); a = c.getresponse().read().decode()
time.sleep(float(sys.argv[2]))
c.request("GET", "/"); b = c.getresponse().read().decode()
print(a, b)
"#;

/// Members m1 (on host A), m2 and m3 (on host B), each answering HTTP on port 8000 with
/// its name, once `from` reaches them all: the VMs and their servers (kept while the
/// test runs), and the members' addresses.
fn three_members(
    t: &TwoHosts,
    net: &serde_json::Value,
    from: &testbed::Vm,
) -> (Vec<(testbed::Vm, Proc)>, [String; 3]) {
    let mut kept = Vec::new();
    let mut ips = Vec::new();
    for (name, host) in [("m1", 0), ("m2", 1), ("m3", 1)] {
        let (vm, ip) = t.vm(net, host);
        let server = serve(&vm, name);
        kept.push((vm, server));
        ips.push(ip);
    }
    for ip in &ips {
        wait_until("a member to serve", Duration::from_secs(20), || {
            curl(from, &format!("http://{ip}:8000/")).is_some()
        });
    }
    let ips: [String; 3] = ips.try_into().expect("three members");
    (kept, ips)
}

#[test]
fn a_vip_spreads_connections_over_members_on_two_hosts() {
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("lbnet", "10.50.0.0/24");
    let subnet = first_subnet(srv, &net);
    // The default group lets the members in from the client (same group) and the client's
    // replies back (conntrack).
    let (client, client_ip) = t.vm(&net, 0);
    let (_members, [ip1, ip2, ip3]) = three_members(&t, &net, &client);

    let bal = balancer(srv, &subnet, "web", 80, json!({}));
    let (lb_id, vip, members) = (bal.id, bal.vip, bal.members);
    let mut ids = BTreeMap::new();
    for (name, ip) in [("m1", &ip1), ("m2", &ip2)] {
        let m = made(
            srv,
            &members,
            json!({"member": {"address": ip, "protocol_port": 8000, "subnet_id": subnet}}),
        );
        // Both hosts have a port on the network: the member is pending until they
        // applied it.
        assert_eq!(m["provisioning_status"], "PENDING_CREATE", "{m}");
        ids.insert(name, m["id"].as_str().unwrap().to_string());
    }
    let url = format!("http://{vip}/");

    // ACTIVE once both hosts applied the tree: then the VIP answers at once.
    wait_until("the balancer to be ACTIVE", Duration::from_secs(20), || {
        let (_, v) = lb(
            srv,
            "GET",
            &format!("/v2/lbaas/loadbalancers/{lb_id}"),
            None,
        );
        v["loadbalancer"]["provisioning_status"] == "ACTIVE"
    });
    assert!(curl(&client, &url).is_some(), "ACTIVE and not answering");
    // 30 new connections: both members answer, nothing is lost.
    let seen = tally(&client, &url, 30);
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["m1", "m2"],
        "every member answers, and only members: {seen:?}\n{}",
        t.dumps()
    );
    assert!(seen.values().all(|n| *n >= 5), "spread: {seen:?}");
    // A new connection to the VIP, balanced to a member: OVS takes the same tables.
    common::trace::delivered(&t.srv, &t.ovs[0], &client_ip, &format!("{vip}:80"), None);

    // One connection stays on its member, even when a member is added meanwhile.
    let mut keep = client.ns.command([&python(), "-c", KEEPALIVE, &vip, "3"]);
    keep.stdout(Stdio::piped()).stderr(Stdio::piped());
    let keep = keep.spawn().expect("keepalive client");
    std::thread::sleep(Duration::from_millis(800));
    let m = made(
        srv,
        &members,
        json!({"member": {"address": ip3, "protocol_port": 8000}}),
    );
    ids.insert("m3", m["id"].as_str().unwrap().to_string());
    let out = keep.wait_with_output().expect("keepalive");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the connection broke: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(answers.len(), 2, "{text}");
    assert_eq!(answers[0], answers[1], "one connection, one member");
    wait_until(
        "the new member to take connections",
        Duration::from_secs(20),
        || tally(&client, &url, 6).contains_key("m3"),
    );

    // A member removed gets no new connection.
    let (st, v) = lb(srv, "DELETE", &format!("{members}/{}", ids["m2"]), None);
    assert_eq!(st, 204, "{v}");
    std::thread::sleep(Duration::from_secs(1));
    let seen = tally(&client, &url, 30);
    assert!(
        !seen.contains_key("m2"),
        "a removed member answered: {seen:?}"
    );
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["m1", "m3"],
        "the others still answer, every time: {seen:?}"
    );

    // The status tree, and the balancer gone with its VIP.
    let (st, v) = lb(
        srv,
        "GET",
        &format!("/v2/lbaas/loadbalancers/{lb_id}/status"),
        None,
    );
    assert_eq!(st, 200);
    assert_eq!(
        v["statuses"]["loadbalancer"]["listeners"][0]["pools"][0]["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (st, _) = lb(
        srv,
        "DELETE",
        &format!("/v2/lbaas/loadbalancers/{lb_id}?cascade=true"),
        None,
    );
    assert_eq!(st, 204);
    wait_until("the VIP to go quiet", Duration::from_secs(20), || {
        curl(&client, &url).is_none()
    });
}

/// The one member that answered all `n` new connections of `vm`; panics, with the
/// switches' flows, when several (or none) did.
fn pinned(t: &TwoHosts, vm: &testbed::Vm, url: &str, n: usize) -> String {
    let seen = tally(vm, url, n);
    let groups = |h: usize| {
        t.ovs[h]
            .ofctl(["-O", "OpenFlow13", "dump-groups", "br-int"])
            .unwrap_or_else(|e| e.to_string())
    };
    assert_eq!(
        seen.len(),
        1,
        "one client, one member: {seen:?}\n{}\ngroups a:\n{}\ngroups b:\n{}",
        t.dumps(),
        groups(0),
        groups(1)
    );
    let who = seen.into_keys().next().unwrap_or_default();
    assert!(who.starts_with('m'), "answered by {who}\n{}", t.dumps());
    who
}

#[test]
fn source_ip_persistence_keeps_each_client_on_one_member() {
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("stickynet", "10.51.0.0/24");
    let subnet = first_subnet(srv, &net);
    // A client on each host (each host balances its own clients' connections).
    let (c1, _) = t.vm(&net, 0);
    let (c2, _) = t.vm(&net, 1);
    let (_members, [ip1, ip2, ip3]) = three_members(&t, &net, &c1);
    let bal = balancer(
        srv,
        &subnet,
        "sticky",
        80,
        json!({"session_persistence": {"type": "SOURCE_IP"}}),
    );
    let (vip, pool, members) = (bal.vip, bal.pool, bal.members);
    assert_eq!(pool["session_persistence"]["type"], "SOURCE_IP", "{pool}");
    let mut ids = BTreeMap::new();
    for (name, ip) in [("m1", &ip1), ("m2", &ip2), ("m3", &ip3)] {
        let m = made(
            srv,
            &members,
            json!({"member": {"address": ip, "protocol_port": 8000, "subnet_id": subnet}}),
        );
        ids.insert(name.to_string(), m["id"].as_str().unwrap().to_string());
    }
    let url = format!("http://{vip}/");
    for c in [&c1, &c2] {
        wait_until("the VIP to answer", Duration::from_secs(20), || {
            curl(c, &url).is_some()
        });
    }

    // 20 new connections (new source ports) of each client: one member each.
    let first = pinned(&t, &c1, &url, 20);
    let second = pinned(&t, &c2, &url, 20);
    // The memory is a flow learned on the client's host.
    let learned = t.ovs[0]
        .ofctl(["dump-flows", "br-int", "table=24"])
        .unwrap_or_default();
    assert!(
        learned.contains("load:") && learned.contains("idle_timeout=360"),
        "{learned}"
    );

    // The first client's member disabled: the client moves, and keeps its new member.
    let (st, v) = lb(
        srv,
        "PUT",
        &format!("{members}/{}", ids[&first]),
        Some(json!({"member": {"admin_state_up": false}})),
    );
    assert_eq!(st, 200, "{v}");
    wait_until(
        "the client to leave its disabled member",
        Duration::from_secs(20),
        || curl(&c1, &url).is_some_and(|w| w != first),
    );
    let moved = pinned(&t, &c1, &url, 10);
    assert_ne!(moved, first);
    // The other client's member still takes traffic: it stays (unless it was the same).
    if second != first {
        assert_eq!(pinned(&t, &c2, &url, 10), second);
    }
}

/// Hairpin: a member that connects to its own VIP and is balanced to itself is answered
/// (source-NATed to the VIP, as OVN does), and balanced to the other member as well.
#[test]
fn a_member_reaches_its_own_vip_whichever_member_it_gets() {
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("hairnet", "10.52.0.0/24");
    let subnet = first_subnet(srv, &net);
    let (m1, ip1) = t.vm(&net, 0);
    let _s1 = serve(&m1, "m1");
    let (m2, ip2) = t.vm(&net, 1);
    let _s2 = serve(&m2, "m2");
    for (from, ip) in [(&m1, &ip2), (&m2, &ip1)] {
        wait_until("a member to serve", Duration::from_secs(20), || {
            curl(from, &format!("http://{ip}:8000/")).is_some()
        });
    }
    let bal = balancer(srv, &subnet, "hair", 80, json!({}));
    // A member balanced to itself sees the VIP connecting: its group lets the VIP in.
    let (_, groups) = srv.call("GET", "/v2.0/security-groups?name=default", None);
    srv.create(
        "security-group-rules",
        "security_group_rule",
        json!({"security_group_id": groups["security_groups"][0]["id"], "direction": "ingress",
               "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 8000,
               "port_range_max": 8000, "remote_ip_prefix": format!("{}/32", bal.vip)}),
    );
    made(
        srv,
        &bal.members,
        json!({"member": {"address": ip1, "protocol_port": 8000, "subnet_id": subnet}}),
    );
    let url = format!("http://{}/", bal.vip);
    // m1 is the only member: every connection of m1 to the VIP comes back to m1.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while curl(&m1, &url).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "m1 does not reach itself through its VIP\n{}",
            t.dumps()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let seen = tally(&m1, &url, 10);
    assert_eq!(
        seen.get("m1"),
        Some(&10),
        "m1 through its own VIP: {seen:?}\n{}",
        t.dumps()
    );
    // Hairpin: m1 balanced to itself, as OVS takes it.
    let vip80 = format!("{}:80", bal.vip);
    common::trace::delivered(srv, &t.ovs[0], &ip1, &vip80, None);
    // With m2 too, m1's connections reach both.
    made(
        srv,
        &bal.members,
        json!({"member": {"address": ip2, "protocol_port": 8000, "subnet_id": subnet}}),
    );
    wait_until("m2 to take connections", Duration::from_secs(20), || {
        tally(&m1, &url, 6).contains_key("m2")
    });
    let seen = tally(&m1, &url, 30);
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["m1", "m2"],
        "both answer m1, every time: {seen:?}\n{}",
        t.dumps()
    );
}

/// A member on another network, behind a router of the VIP's network: the client's host
/// balances the connection and routes it there, the member's host routes the answer back,
/// and the client's host un-NATs it; a member on the VIP's network shares the pool.
#[test]
fn a_member_behind_a_router_is_balanced_to_with_one_on_the_vip_network() {
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("vipnet", "10.53.0.0/24");
    let far = srv.network("farnet", "10.54.0.0/24");
    let subnet = first_subnet(srv, &net);
    let far_subnet = first_subnet(srv, &far);
    common::backends::router_on(srv, "lbr", &[&subnet, &far_subnet]);
    let (client, client_ip) = t.vm(&net, 0);
    let (near, near_ip) = t.vm(&net, 0);
    let (remote, remote_ip) = t.vm(&far, 1);
    for (vm, gw) in [
        (&client, "10.53.0.1"),
        (&near, "10.53.0.1"),
        (&remote, "10.54.0.1"),
    ] {
        vm.ns
            .exec(["ip", "route", "add", "default", "via", gw])
            .expect("default route");
    }
    let _servers = [serve(&near, "near"), serve(&remote, "far")];
    for ip in [&near_ip, &remote_ip] {
        wait_until("a member to serve", Duration::from_secs(20), || {
            curl(&client, &format!("http://{ip}:8000/")).is_some()
        });
    }
    let bal = balancer(srv, &subnet, "routed", 80, json!({}));
    made(
        srv,
        &bal.members,
        json!({"member": {"address": remote_ip, "protocol_port": 8000, "subnet_id": far_subnet}}),
    );
    let url = format!("http://{}/", bal.vip);
    wait_until("the far member to answer", Duration::from_secs(20), || {
        curl(&client, &url).as_deref() == Some("far")
    });
    let seen = tally(&client, &url, 10);
    assert_eq!(seen.get("far"), Some(&10), "{seen:?}\n{}", t.dumps());
    // Balanced, then routed to the far member on host b, as OVS takes it.
    let r = common::trace::delivered(srv, &t.ovs[0], &client_ip, &format!("{}:80", bal.vip), None);
    assert!(r.verdict.contains("host-b"), "{}", r.out);
    made(
        srv,
        &bal.members,
        json!({"member": {"address": near_ip, "protocol_port": 8000, "subnet_id": subnet}}),
    );
    wait_until(
        "the near member to take connections",
        Duration::from_secs(20),
        || tally(&client, &url, 6).contains_key("near"),
    );
    let seen = tally(&client, &url, 30);
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["far", "near"],
        "both answer, every time: {seen:?}\n{}",
        t.dumps()
    );
}

/// Members m1 (host A) and m2 (host B) on the IPv6 network `net`, serving HTTP on
/// [::]:8000 with their names, once `from` reaches both: the VMs and servers, and the
/// members' addresses.
fn two_members6(
    t: &TwoHosts,
    net: &serde_json::Value,
    from: &testbed::Vm,
) -> (Vec<(testbed::Vm, Proc)>, [String; 2]) {
    let mut kept = Vec::new();
    let mut ips = Vec::new();
    for (name, host) in [("m1", 0), ("m2", 1)] {
        let (vm, ip) = t.vm(net, host);
        let server = serve_on(&vm, name, "::");
        kept.push((vm, server));
        ips.push(ip);
    }
    for ip in &ips {
        wait_until("a member to serve", Duration::from_secs(30), || {
            curl(from, &format!("http://[{ip}]:8000/")).is_some()
        });
    }
    let ips: [String; 2] = ips.try_into().expect("two members");
    (kept, ips)
}

/// An IPv6 VIP on an IPv6-only network: connections from a client VM reach members on
/// both hosts through it, and their answers come back from the VIP (curl checks that).
#[test]
fn an_ipv6_vip_spreads_connections_over_members_on_two_hosts() {
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("lb6", "fd00:55::/64");
    let subnet = first_subnet(srv, &net);
    let (client, client_ip) = t.vm(&net, 0);
    let (_members, [ip1, ip2]) = two_members6(&t, &net, &client);
    let bal = balancer(srv, &subnet, "web6", 80, json!({}));
    assert!(bal.vip.contains(':'), "an IPv6 VIP: {}", bal.vip);
    for ip in [&ip1, &ip2] {
        made(
            srv,
            &bal.members,
            json!({"member": {"address": ip, "protocol_port": 8000, "subnet_id": subnet}}),
        );
    }
    let url = format!("http://[{}]/", bal.vip);
    wait_until("both members to answer", Duration::from_secs(20), || {
        tally(&client, &url, 8).len() == 2
    });
    let seen = tally(&client, &url, 30);
    assert_eq!(
        seen.values().sum::<usize>(),
        30,
        "every connection answered: {seen:?}\n{}",
        t.dumps()
    );
    assert_eq!(seen.len(), 2, "both members: {seen:?}");
    common::trace::delivered(
        srv,
        &t.ovs[0],
        &client_ip,
        &format!("[{}]:80", bal.vip),
        None,
    );
}

/// Hairpin on an IPv6 VIP: a member balanced to itself is source-NATed to the VIP (and
/// resolves the VIP by neighbour discovery to answer it), and reaches the other member
/// through the VIP too.
#[test]
fn an_ipv6_member_reaches_its_own_vip_whichever_member_it_gets() {
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("hair6", "fd00:56::/64");
    let subnet = first_subnet(srv, &net);
    let (client, _) = t.vm(&net, 0);
    let (members, [ip1, ip2]) = two_members6(&t, &net, &client);
    let m1 = &members[0].0;
    let bal = balancer(srv, &subnet, "hair6", 80, json!({}));
    // A member balanced to itself sees the VIP connecting: its group lets the VIP in.
    let (_, groups) = srv.call("GET", "/v2.0/security-groups?name=default", None);
    srv.create(
        "security-group-rules",
        "security_group_rule",
        json!({"security_group_id": groups["security_groups"][0]["id"], "direction": "ingress",
               "ethertype": "IPv6", "protocol": "tcp", "port_range_min": 8000,
               "port_range_max": 8000, "remote_ip_prefix": format!("{}/128", bal.vip)}),
    );
    made(
        srv,
        &bal.members,
        json!({"member": {"address": ip1, "protocol_port": 8000, "subnet_id": subnet}}),
    );
    let url = format!("http://[{}]/", bal.vip);
    // m1 is the only member: every connection of m1 to the VIP comes back to m1.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while curl(m1, &url).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "m1 does not reach itself through its IPv6 VIP\n{}",
            t.dumps()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let seen = tally(m1, &url, 10);
    assert_eq!(
        seen.get("m1"),
        Some(&10),
        "m1 through its own VIP: {seen:?}\n{}",
        t.dumps()
    );
    common::trace::delivered(srv, &t.ovs[0], &ip1, &format!("[{}]:80", bal.vip), None);
    made(
        srv,
        &bal.members,
        json!({"member": {"address": ip2, "protocol_port": 8000, "subnet_id": subnet}}),
    );
    wait_until("m2 to take connections", Duration::from_secs(20), || {
        tally(m1, &url, 6).contains_key("m2")
    });
    let seen = tally(m1, &url, 30);
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        ["m1", "m2"],
        "both answer m1, every time: {seen:?}\n{}",
        t.dumps()
    );
}

/// SOURCE_IP persistence on an IPv6 VIP: every new connection of one IPv6 client reaches
/// one member, remembered by a flow learned on its host (keyed on its IPv6 address); a
/// client whose member is disabled moves and stays.
#[test]
fn source_ip_persistence_keeps_each_ipv6_client_on_one_member() {
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("sticky6", "fd00:57::/64");
    let subnet = first_subnet(srv, &net);
    let (c1, _) = t.vm(&net, 0);
    let (c2, _) = t.vm(&net, 1);
    let (_members, [ip1, ip2]) = two_members6(&t, &net, &c1);
    let bal = balancer(
        srv,
        &subnet,
        "sticky6",
        80,
        json!({"lb_algorithm": "SOURCE_IP"}),
    );
    let mut ids = BTreeMap::new();
    for (name, ip) in [("m1", &ip1), ("m2", &ip2)] {
        let m = made(
            srv,
            &bal.members,
            json!({"member": {"address": ip, "protocol_port": 8000, "subnet_id": subnet}}),
        );
        ids.insert(name.to_string(), m["id"].as_str().unwrap().to_string());
    }
    let url = format!("http://[{}]/", bal.vip);
    for c in [&c1, &c2] {
        wait_until("the VIP to answer", Duration::from_secs(20), || {
            curl(c, &url).is_some()
        });
    }
    let first = pinned(&t, &c1, &url, 20);
    pinned(&t, &c2, &url, 20);
    let learned = t.ovs[0]
        .ofctl(["dump-flows", "br-int", "table=24"])
        .unwrap_or_default();
    assert!(
        learned.contains("ipv6_src=") && learned.contains("idle_timeout=360"),
        "{learned}"
    );
    let (st, v) = lb(
        srv,
        "PUT",
        &format!("{}/{}", bal.members, ids[&first]),
        Some(json!({"member": {"admin_state_up": false}})),
    );
    assert_eq!(st, 200, "{v}");
    wait_until(
        "the client to leave its disabled member",
        Duration::from_secs(20),
        || curl(&c1, &url).is_some_and(|w| w != first),
    );
    assert_ne!(pinned(&t, &c1, &url, 10), first);
}

/// An IPv6 `persistence_granularity` (a UDP pool's, as Octavia allows): two clients of
/// one /64 on one host are one memory, so every new datagram flow of either reaches one
/// member; the learned flow matches the client's /64.
#[test]
fn an_ipv6_granularity_keeps_a_prefix_of_clients_on_one_member() {
    let t: TwoHosts = two_hosts();
    let srv = &t.srv;
    let net = srv.network("gran6", "fd00:59::/64");
    let subnet = first_subnet(srv, &net);
    let (c1, _) = t.vm(&net, 0);
    let (c2, _) = t.vm(&net, 0);
    let mut kept = Vec::new();
    let mut ips = Vec::new();
    for (name, host) in [("m1", 0), ("m2", 1)] {
        let (vm, ip) = t.vm(&net, host);
        let server = serve_udp(&vm, name, "::", 5353);
        wait_until("a member to answer", Duration::from_secs(30), || {
            ask_udp(&c1, &ip, 5353).as_deref() == Some(name)
        });
        ips.push(ip);
        kept.push((vm, server));
    }
    let bal = balancer(
        srv,
        &subnet,
        "gran6",
        53,
        json!({"protocol": "UDP", "lb_algorithm": "SOURCE_IP",
            "session_persistence": {"type": "SOURCE_IP",
                "persistence_granularity": "ffff:ffff:ffff:ffff::"}}),
    );
    for ip in &ips {
        made(
            srv,
            &bal.members,
            json!({"member": {"address": ip, "protocol_port": 5353, "subnet_id": subnet}}),
        );
    }
    wait_until("the VIP to answer", Duration::from_secs(20), || {
        ask_udp(&c1, &bal.vip, 53).is_some()
    });
    let mut seen = BTreeMap::new();
    for c in [&c1, &c2, &c1, &c2] {
        for _ in 0..5 {
            let who = ask_udp(c, &bal.vip, 53).unwrap_or_else(|| "(no answer)".into());
            *seen.entry(who).or_insert(0) += 1;
        }
    }
    let learned = t.ovs[0]
        .ofctl(["dump-flows", "br-int", "table=24"])
        .unwrap_or_default();
    assert_eq!(
        seen.len(),
        1,
        "one /64, one member: {seen:?}\n{learned}\n{}",
        t.dumps()
    );
    assert!(seen.keys().all(|w| w.starts_with('m')), "{seen:?}");
    assert!(learned.contains("ipv6_src=fd00:59::/64"), "{learned}");
}
