//! North-south end to end: two hosts (real OVS each), each with an operator bridge `br-ex`
//! whose NIC is wired into a "physical network" (a Linux bridge in its own namespace) that
//! also holds an outside namespace. Controllers run with `--bridge-mappings
//! physnet1:br-ex`. VMs reach the outside through SNAT on their own host, the outside
//! reaches a VM through its floating IP, the floating IP follows its move to the other
//! host, and a VLAN provider network carries its tag on the wire.

mod common;

mod ns;

use common::cloud::{addr, wait_until};
use ns::{Cloud, TcpServer, capture, captured, ip, reaches, routed_inside, tcp_get};
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn snat_and_floating_ips_on_the_vms_own_host() {
    if !testbed::require_root("snat_and_floating_ips_on_the_vms_own_host") {
        return;
    }
    let t = Cloud::start(None);
    let (ext, net) = routed_inside(&t);
    let pa = t.port(&net);
    let pb = t.port(&net);
    let pc = t.port(&net);
    let vm_a = t.plug(&pa, 0);
    let vm_b = t.plug(&pb, 1);
    let vm_c = t.plug(&pc, 1);
    for vm in [&vm_a, &vm_b, &vm_c] {
        vm.ns
            .exec(["ip", "route", "add", "default", "via", "10.0.0.1"])
            .expect("route");
    }

    // SNAT: each host got its own address on the external network.
    let snat_ip = |host: &str| -> Option<String> {
        let (_, v) = t.srv.call("GET", "/v2.0/ports", None);
        v["ports"].as_array()?.iter().find_map(|p| {
            (p["device_owner"] == "network:chassis_snat" && p["device_id"] == host)
                .then(|| addr(p).1)
        })
    };
    wait_until("SNAT addresses", Duration::from_secs(20), || {
        snat_ip("host-a").is_some() && snat_ip("host-b").is_some()
    });
    let (snat_a, snat_b) = (snat_ip("host-a").unwrap(), snat_ip("host-b").unwrap());
    assert_ne!(snat_a, snat_b);

    // A VM without a floating IP reaches the outside (ping, tcp); the outside sees its
    // host's SNAT address.
    let cap = capture(&t.outside, "eth0", &["icmp"]);
    assert!(reaches(&vm_b.ns, "203.0.113.1"), "{}", t.dumps());
    let seen = captured(cap);
    assert!(
        seen.contains(&format!("{snat_b} > 203.0.113.1: ICMP echo request")),
        "outside saw: {seen}"
    );
    let srv = TcpServer::start(&t.outside, 5001);
    assert_eq!(tcp_get(&vm_b.ns, "203.0.113.1", 5001), "hello");
    assert_eq!(srv.peer().as_deref(), Some(snat_b.as_str()));
    // SNAT on host b: out to the physical network, as OVS takes it.
    let r = common::trace::delivered(&t.srv, &t.ovs[1], &addr(&pb).1, "203.0.113.1:5001", None);
    assert!(r.verdict.contains("physical network"), "{}", r.out);
    // host a's VM leaves by host a's address.
    let srv = TcpServer::start(&t.outside, 5002);
    assert_eq!(tcp_get(&vm_a.ns, "203.0.113.1", 5002), "hello");
    assert_eq!(srv.peer().as_deref(), Some(snat_a.as_str()));

    // A floating IP for vm a: the outside reaches it (ping, tcp), vm a sees the outside's
    // real address, and vm a's own connections leave from the floating IP.
    let fip = t.srv.create(
        "floatingips",
        "floatingip",
        json!({"floating_network_id": ext["id"], "port_id": pa["id"]}),
    );
    let fip_ip = fip["floating_ip_address"].as_str().unwrap().to_string();
    let fip_id = fip["id"].as_str().unwrap().to_string();
    assert!(reaches(&t.outside, &fip_ip), "{}", t.dumps());
    let srv = TcpServer::start(&vm_a.ns, 6000);
    assert_eq!(tcp_get(&t.outside, &fip_ip, 6000), "hello");
    assert_eq!(srv.peer().as_deref(), Some("203.0.113.1"));
    let srv = TcpServer::start(&t.outside, 5003);
    assert_eq!(tcp_get(&vm_a.ns, "203.0.113.1", 5003), "hello");
    assert_eq!(srv.peer().as_deref(), Some(fip_ip.as_str()));
    // From the floating IP on host a, as OVS takes it.
    common::trace::delivered(&t.srv, &t.ovs[0], &addr(&pa).1, "203.0.113.1:5003", None);

    // ICMP errors on the floating-IP path are translated: a UDP probe to a closed port of
    // vm a through its floating IP gets "port unreachable" the outside's socket accepts.
    let probe = t
        .outside
        .command([
            "/usr/bin/python3",
            "-c",
            &format!(
                "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(2)\ns.connect(('{fip_ip}',7777))\ns.send(b'x')\ntry:\n  s.recv(10)\n  print('data')\nexcept ConnectionRefusedError:\n  print('refused')\nexcept socket.timeout:\n  print('timeout')\n"
            ),
        ])
        .output()
        .expect("udp probe");
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "refused",
        "the ICMP error came back NATed"
    );

    // The floating IP moves to vm c on host b: it follows within a second.
    let (st, body) = t.srv.call(
        "PUT",
        &format!("/v2.0/floatingips/{fip_id}"),
        Some(json!({"floatingip": {"port_id": pc["id"]}})),
    );
    assert_eq!(st, 200, "{body}");
    let moved = Instant::now();
    let mut took = None;
    while moved.elapsed() < Duration::from_secs(10) {
        if t.outside
            .exec(["ping", "-c", "1", "-W", "0.1", &fip_ip])
            .is_ok()
        {
            took = Some(moved.elapsed());
            break;
        }
    }
    let took = took.unwrap_or_else(|| panic!("the floating IP did not follow: {}", t.dumps()));
    // A ping can still be answered by vm a while host a's flows for the address are
    // being removed: TCP is tried until the server on vm c answers.
    let srv = TcpServer::start(&vm_c.ns, 6001);
    let mut got = String::new();
    while got.is_empty() && moved.elapsed() < Duration::from_secs(15) {
        got = tcp_get(&t.outside, &fip_ip, 6001);
    }
    assert_eq!(got, "hello", "vm c answers");
    assert_eq!(srv.peer().as_deref(), Some("203.0.113.1"));
    eprintln!("floating IP followed its port to the other host in {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // And vm a is back to its host's SNAT address.
    let srv = TcpServer::start(&t.outside, 5004);
    assert_eq!(tcp_get(&vm_a.ns, "203.0.113.1", 5004), "hello");
    assert_eq!(srv.peer().as_deref(), Some(snat_a.as_str()));

    // Disassociated: the floating IP answers no more, and vm c leaves by host b's address.
    let (st, body) = t.srv.call(
        "PUT",
        &format!("/v2.0/floatingips/{fip_id}"),
        Some(json!({"floatingip": {"port_id": null}})),
    );
    assert_eq!(st, 200, "{body}");
    wait_until("the floating IP to go", Duration::from_secs(5), || {
        t.outside
            .exec(["ping", "-c", "1", "-W", "0.2", &fip_ip])
            .is_err()
    });
    let srv = TcpServer::start(&vm_c.ns, 6002);
    assert_ne!(tcp_get(&t.outside, &fip_ip, 6002), "hello");
    drop(srv);
    let srv = TcpServer::start(&t.outside, 5005);
    assert_eq!(tcp_get(&vm_c.ns, "203.0.113.1", 5005), "hello");
    assert_eq!(srv.peer().as_deref(), Some(snat_b.as_str()));
}

#[test]
fn vlan_provider_network_is_tagged_on_the_wire() {
    if !testbed::require_root("vlan_provider_network_is_tagged_on_the_wire") {
        return;
    }
    // The outside is on an access port of VLAN 100 of the physical switch.
    let t = Cloud::start(Some(100));
    ip(
        &t.outside,
        &["addr", "add", "198.51.100.1/24", "dev", "eth0"],
    );
    let net = t.srv.create(
        "networks",
        "network",
        json!({"name": "v100", "provider:network_type": "vlan",
               "provider:physical_network": "physnet1", "provider:segmentation_id": 100}),
    );
    t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "198.51.100.0/24",
               "gateway_ip": "198.51.100.1", "enable_dhcp": false,
               "allocation_pools": [{"start": "198.51.100.10", "end": "198.51.100.99"}]}),
    );
    let pa = t.port(&net);
    let pb = t.port(&net);
    let vm_a = t.plug(&pa, 0);
    let vm_b = t.plug(&pb, 1);
    let ip_b = addr(&pb).1;
    let cap = capture(t.phys(), "ha", &["icmp", "or", "vlan"]);
    assert!(reaches(&vm_a.ns, "198.51.100.1"), "{}", t.dumps());
    assert!(reaches(&vm_a.ns, &ip_b), "across hosts on the VLAN");
    // Across the physical network (not a tunnel), as OVS takes it on host a.
    let a_ip = addr(&pa).1;
    let r = common::trace::agrees(&t.srv, &t.ovs[0], &a_ip, &ip_b, None);
    assert!(r.verdict.contains("physical network"), "{}", r.out);
    let srv = TcpServer::start(&t.outside, 5100);
    assert_eq!(tcp_get(&vm_b.ns, "198.51.100.1", 5100), "hello");
    assert_eq!(srv.peer(), Some(ip_b.clone()));
    let wire = captured(cap);
    let ip_a = addr(&pa).1;
    let tagged = wire
        .lines()
        .filter(|l| l.contains("vlan 100") && l.contains(&format!("{ip_a} > 198.51.100.1")))
        .count();
    assert!(tagged > 0, "host a's wire: {wire}");
    assert!(
        !wire
            .lines()
            .any(|l| l.contains("ICMP") && !l.contains("vlan 100")),
        "untagged ICMP on the wire: {wire}"
    );
}
