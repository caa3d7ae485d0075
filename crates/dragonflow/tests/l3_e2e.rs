//! Distributed routing end to end: real OVS on two hosts, routers made through the API,
//! VMs that ping, traceroute and ping6 across them; IPv6 neighbour discovery answered on
//! the asking VM's host.

mod common;

use common::cloud::{TwoHosts, two_hosts, wait_until};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A network with one subnet; returns (network, subnet).
fn network(t: &TwoHosts, name: &str, version: u8, cidr: &str) -> (Value, Value) {
    let net = t.srv.create("networks", "network", json!({"name": name}));
    let sub = t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": version, "cidr": cidr}),
    );
    (net, sub)
}

fn router(t: &TwoHosts, name: &str) -> String {
    let r = t.srv.create("routers", "router", json!({"name": name}));
    r["id"].as_str().unwrap().to_string()
}

fn interface(t: &TwoHosts, router: &str, action: &str, subnet: &Value) {
    let (st, body) = t.srv.call(
        "PUT",
        &format!("/v2.0/routers/{router}/{action}_router_interface"),
        Some(json!({"subnet_id": subnet["id"]})),
    );
    assert_eq!(st, 200, "{action} interface: {body}");
}

fn gateway_of(subnet: &Value) -> String {
    subnet["gateway_ip"].as_str().expect("gateway").to_string()
}

fn default_route(vm: &testbed::Vm, via: &str) {
    let family = if via.contains(':') { "-6" } else { "-4" };
    vm.ns
        .exec(["ip", family, "route", "add", "default", "via", via])
        .expect("default route");
}

/// Pings until it works (flows arrive a moment after the API answers), up to 20 s.
fn reaches(vm: &testbed::Vm, ip: &str) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if vm.pings(ip) {
            return true;
        }
    }
    false
}

/// The output of one ping that is expected to fail.
fn ping_output(vm: &testbed::Vm, ip: &str) -> String {
    let out = vm
        .ns
        .command(["ping", "-c", "2", "-i", "0.3", "-W", "1", ip])
        .output()
        .expect("ping");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// tcpdump of the underlay (geneve) on host `h`.
fn capture(t: &TwoHosts, h: usize) -> Child {
    let c = t.ovs[h]
        .own_netns()
        .expect("host namespace")
        .command([
            "tcpdump", "-l", "-n", "-i", "ul0", "-c", "500", "udp", "port", "6081",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(700));
    c
}

fn stop(c: Child) -> String {
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(c.id().to_string())
        .status();
    let out = c.wait_with_output().expect("capture");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two networks on one router, vm1 on net1 and vm2 on net2, each on host `h1`/`h2`, with
/// their default routes through the router.
struct Routed {
    t: TwoHosts,
    router: String,
    subnets: [Value; 2],
    vms: [(testbed::Vm, String); 2],
}

fn routed(h1: usize, h2: usize) -> Routed {
    let t = two_hosts();
    let (n1, s1) = network(&t, "net1", 4, "10.0.1.0/24");
    let (n2, s2) = network(&t, "net2", 4, "10.0.2.0/24");
    let r = router(&t, "r");
    interface(&t, &r, "add", &s1);
    interface(&t, &r, "add", &s2);
    let vm1 = t.vm(&n1, h1);
    let vm2 = t.vm(&n2, h2);
    default_route(&vm1.0, &gateway_of(&s1));
    default_route(&vm2.0, &gateway_of(&s2));
    Routed {
        t,
        router: r,
        subnets: [s1, s2],
        vms: [vm1, vm2],
    }
}

#[test]
fn vms_on_two_hosts_route_through_the_distributed_router() {
    if !testbed::require_root("vms_on_two_hosts_route_through_the_distributed_router") {
        return;
    }
    let r = routed(0, 1);
    let [(vm1, ip1), (vm2, ip2)] = &r.vms;
    let gw1 = gateway_of(&r.subnets[0]);
    assert!(reaches(vm1, ip2), "vm1 reaches vm2\n{}", r.t.dumps());
    assert!(vm2.pings(ip1), "vm2 reaches vm1\n{}", r.t.dumps());
    assert!(vm1.pings(&gw1), "the gateway answers ping\n{}", r.t.dumps());
    // The router's own address answers: OVS agrees on the way the echo request takes.
    common::trace::agrees(&r.t.srv, &r.t.ovs[0], ip1, &gw1, None);
    assert!(
        vm1.pings(&gateway_of(&r.subnets[1])),
        "the router's other address answers too"
    );
    // One probe at a time, one per hop: the router's time exceeded, then vm2's port
    // unreachable.
    let out = vm1
        .ns
        .command([
            "traceroute",
            "-n",
            "-q",
            "1",
            "-N",
            "1",
            "-w",
            "2",
            "-m",
            "5",
            ip2,
        ])
        .output()
        .expect("traceroute");
    let text = String::from_utf8_lossy(&out.stdout);
    let hops: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        hops,
        [gw1.as_str(), ip2.as_str()],
        "exactly one hop, the router's interface:\n{text}"
    );
}

#[test]
fn routing_on_one_host_never_touches_the_tunnel() {
    if !testbed::require_root("routing_on_one_host_never_touches_the_tunnel") {
        return;
    }
    let r = routed(0, 0);
    let [(vm1, ip1), (_, ip2)] = &r.vms;
    // A third VM on net2 on the other host: the control that the capture sees routing.
    let net2 = r.subnets[1]["network_id"].clone();
    let (vm3, ip3) = r.t.vm(&json!({"id": net2}), 1);
    default_route(&vm3, &gateway_of(&r.subnets[1]));
    assert!(reaches(vm1, ip2), "{}", r.t.dumps());
    assert!(reaches(vm1, &ip3), "{}", r.t.dumps());
    // Routed on host a, delivered there: no tunnel in the compiled pipeline either.
    let tr = common::trace::delivered(&r.t.srv, &r.t.ovs[0], ip1, ip2, None);
    assert!(
        tr.verdict.contains("on host-a") && !tr.verdict.contains(" via "),
        "{}",
        tr.out
    );
    let cap = capture(&r.t, 0);
    assert!(vm1.pings(ip2));
    assert!(vm1.pings(&ip3));
    let text = stop(cap);
    assert!(
        text.contains(&format!("> {ip3}: ICMP echo request")),
        "routing to the other host crossed the underlay:\n{text}"
    );
    assert!(
        !text.contains(&format!("> {ip2}: ICMP")) && !text.contains(&format!("{ip2} >")),
        "routing between networks on one host used the tunnel:\n{text}"
    );
}

#[test]
fn removing_the_interface_stops_routing_and_another_routers_network_is_unreachable() {
    if !testbed::require_root(
        "removing_the_interface_stops_routing_and_another_routers_network_is_unreachable",
    ) {
        return;
    }
    let r = routed(0, 1);
    let [(vm1, ip1), (vm2, ip2)] = &r.vms;
    let t = &r.t;
    // net3 is on another router.
    let (n3, s3) = network(t, "net3", 4, "10.0.3.0/24");
    let other = router(t, "other");
    interface(t, &other, "add", &s3);
    let (vm3, ip3) = t.vm(&n3, 0);
    default_route(&vm3, &gateway_of(&s3));
    assert!(reaches(vm1, ip2), "{}", t.dumps());
    assert!(reaches(&vm3, &gateway_of(&s3)), "net3 has its own router");
    assert!(!vm1.pings(&ip3), "net3 is on another router");
    let text = ping_output(vm1, &ip3);
    assert!(
        text.contains(&format!("From {}", gateway_of(&r.subnets[0])))
            && text.contains("Unreachable"),
        "the router says so:\n{text}"
    );
    // Not routed to another router's network, as OVS takes it.
    let tr = common::trace::agrees(&t.srv, &t.ovs[0], ip1, &ip3, None);
    assert_ne!(tr.outcome, "delivered", "{}", tr.out);
    interface(t, &r.router, "remove", &r.subnets[1]);
    wait_until("vm2 to be unreachable", Duration::from_secs(15), || {
        !vm1.pings(ip2)
    });
    // And it comes back when the interface is added again (a new port: a new MAC, which
    // vm2 must learn again).
    interface(t, &r.router, "add", &r.subnets[1]);
    let _ = vm2.ns.exec(["ip", "neigh", "flush", "dev", "eth0"]);
    assert!(reaches(vm1, ip2), "{}", t.dumps());
}

#[test]
fn an_extra_route_through_a_vm_gateway_works() {
    if !testbed::require_root("an_extra_route_through_a_vm_gateway_works") {
        return;
    }
    let r = routed(0, 1);
    let t = &r.t;
    let [(vm1, ip1), _] = &r.vms;
    // vm-gw on net2 owns 10.9.0.0/24 behind it (on its loopback) and may send from it.
    let port = t.srv.create(
        "ports",
        "port",
        json!({
            "network_id": r.subnets[1]["network_id"],
            "allowed_address_pairs": [{"ip_address": "10.9.0.0/24"}],
        }),
    );
    let ip_gw = common::cloud::addr(&port).1;
    let gw = t.plug(&port, 1, 24);
    default_route(&gw, &gateway_of(&r.subnets[1]));
    gw.ns
        .exec(["ip", "addr", "add", "10.9.0.1/32", "dev", "lo"])
        .expect("address behind the gateway");
    assert!(reaches(vm1, &ip_gw), "{}", t.dumps());
    assert!(!vm1.pings("10.9.0.1"), "no route yet");
    let (st, body) = t.srv.call(
        "PUT",
        &format!("/v2.0/routers/{}", r.router),
        Some(json!({"router": {"routes": [{"destination": "10.9.0.0/24", "nexthop": ip_gw}]}})),
    );
    assert_eq!(st, 200, "{body}");
    assert!(
        reaches(vm1, "10.9.0.1"),
        "through the route's next hop\n{}",
        t.dumps()
    );
    let r = common::trace::delivered(&t.srv, &t.ovs[0], ip1, "10.9.0.1", None);
    assert!(
        r.verdict.contains("host-b"),
        "to the next hop's host: {}",
        r.out
    );
}

/// Waits for the VM's IPv6 addresses to finish duplicate address detection.
fn v6_ready(vm: &testbed::Vm) {
    wait_until("IPv6 DAD", Duration::from_secs(10), || {
        vm.ns
            .exec(["ip", "-6", "addr", "show", "dev", "eth0"])
            .is_ok_and(|s| !s.contains("tentative"))
    });
}

#[test]
fn ping6_across_the_router_between_two_ipv6_subnets() {
    if !testbed::require_root("ping6_across_the_router_between_two_ipv6_subnets") {
        return;
    }
    let t = two_hosts();
    let (n1, s1) = network(&t, "v6a", 6, "fd00:a::/64");
    let (n2, s2) = network(&t, "v6b", 6, "fd00:b::/64");
    let r = router(&t, "r6");
    interface(&t, &r, "add", &s1);
    interface(&t, &r, "add", &s2);
    let p1 = t
        .srv
        .create("ports", "port", json!({"network_id": n1["id"]}));
    let p2 = t
        .srv
        .create("ports", "port", json!({"network_id": n2["id"]}));
    let (ip1, ip2) = (common::cloud::addr(&p1).1, common::cloud::addr(&p2).1);
    let vm1 = t.plug(&p1, 0, 64);
    let vm2 = t.plug(&p2, 1, 64);
    v6_ready(&vm1);
    v6_ready(&vm2);
    default_route(&vm1, &gateway_of(&s1));
    default_route(&vm2, &gateway_of(&s2));
    assert!(
        reaches(&vm1, &gateway_of(&s1)),
        "the gateway answers\n{}",
        t.dumps()
    );
    assert!(
        reaches(&vm1, &ip2),
        "vm1 reaches vm2 over IPv6\n{}",
        t.dumps()
    );
    assert!(vm2.pings(&ip1), "and back");
    common::trace::delivered(&t.srv, &t.ovs[0], &ip1, &ip2, None);
}

/// ND for a known address is answered on the asking VM's host: no solicitation for it
/// crosses the underlay, while the ping6 itself does.
#[test]
fn nd_for_a_known_address_never_crosses_the_underlay() {
    if !testbed::require_root("nd_for_a_known_address_never_crosses_the_underlay") {
        return;
    }
    let t = two_hosts();
    let (net, _) = network(&t, "v6", 6, "fd00:c::/64");
    let p1 = t
        .srv
        .create("ports", "port", json!({"network_id": net["id"]}));
    let p2 = t
        .srv
        .create("ports", "port", json!({"network_id": net["id"]}));
    let ip2 = common::cloud::addr(&p2).1;
    let vm1 = t.plug(&p1, 0, 64);
    let vm2 = t.plug(&p2, 1, 64);
    v6_ready(&vm1);
    v6_ready(&vm2);
    let cap = capture(&t, 1);
    assert!(reaches(&vm1, &ip2), "{}", t.dumps());
    let text = stop(cap);
    assert!(
        text.contains("ICMP6, echo request"),
        "the ping6 crossed in the tunnel: {text}"
    );
    assert!(
        !text.contains("neighbor solicitation"),
        "a neighbour solicitation crossed the underlay:\n{text}"
    );
}
