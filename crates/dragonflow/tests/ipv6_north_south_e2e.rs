//! IPv6 north-south end to end, on the north-south cloud (two hosts with real OVS, a
//! physical network with an outside namespace): the external network has an IPv6 subnet,
//! the router's gateway takes an address on it, and tenant IPv6 is routed to the outside
//! and back without NAT, as in Neutron. The outside routes the tenant prefix through the
//! router's gateway address (the operator's part in Neutron too). An extra route with an
//! IPv6 next hop inside (a VM routing a prefix of its own) and one outside (another
//! machine on the external subnet) are followed both ways. A VM in each address mode
//! (slaac, dhcpv6-stateless, dhcpv6-stateful with a real `dhclient -6`) on networks of the
//! same router configures itself from the router's advertisements or DHCPv6 and is routed
//! both ways too.

mod common;

mod ns;

use common::cloud::wait_until;
use ns::{Cloud, capture, captured, external, ip};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const OUTSIDE: &str = "2001:db8:ff::1";
const FAR: &str = "2001:db8:ff::5";
const FAR_PREFIX: &str = "2001:db8:77::/64";
const FAR_HOST: &str = "2001:db8:77::1";
const BEHIND_B: &str = "2001:db8:99::/64";
const BEHIND_B_HOST: &str = "2001:db8:99::1";
const INSIDE: &str = "2001:db8:1::/64";
const SLAAC: &str = "2001:db8:2::/64";
const STATELESS: &str = "2001:db8:3::/64";
const STATEFUL: &str = "2001:db8:4::/64";

/// ping6 from `ns` until it works, up to 20 s.
fn reaches6(ns: &testbed::Netns, ip: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if ns
            .exec(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", ip])
            .is_ok()
        {
            return true;
        }
    }
    false
}

/// The port's IPv6 fixed IP.
fn v6(port: &Value) -> String {
    port["fixed_ips"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["ip_address"].as_str())
        .find(|a| a.contains(':'))
        .expect("an IPv6 fixed IP")
        .to_string()
}

/// Plugs `port` into a VM on host `h` with its IPv6 address (no DAD wait) and a default
/// route through the router.
fn plug6(t: &Cloud, port: &Value, h: usize) -> testbed::Vm {
    let id = port["id"].as_str().unwrap();
    let mac = port["mac_address"].as_str().unwrap();
    let vm = testbed::Vm::plug_unaddressed(&t.ovs[h], "br-int", id, mac).expect("plug");
    ip(
        &vm.ns,
        &[
            "-6",
            "addr",
            "add",
            &format!("{}/64", v6(port)),
            "dev",
            "eth0",
            "nodad",
        ],
    );
    ip(
        &vm.ns,
        &["-6", "route", "add", "default", "via", "2001:db8:1::1"],
    );
    let host = ["host-a", "host-b"][h];
    wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
        let (_, v) = t.srv.call("GET", &format!("/v2.0/ports/{id}"), None);
        v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == host
    });
    vm
}

#[test]
fn ipv6_is_routed_to_the_outside_and_back_without_nat() {
    if !testbed::require_root("ipv6_is_routed_to_the_outside_and_back_without_nat") {
        return;
    }
    let t = Cloud::start(None);
    ip(
        &t.outside,
        &[
            "-6",
            "addr",
            "add",
            &format!("{OUTSIDE}/64"),
            "dev",
            "eth0",
            "nodad",
        ],
    );
    // Another machine on the external subnet, the next hop of an extra route (the outside
    // does not forward: a packet for its prefix sent to the outside instead is lost).
    let far = testbed::Netns::new(&testbed::unique_name("far")).expect("far");
    testbed::veth("eth0", Some(&far), "far", Some(t.phys())).expect("far wire");
    ip(t.phys(), &["link", "set", "far", "master", "phys", "up"]);
    ip(&far, &["link", "set", "eth0", "up"]);
    ip(&far, &["link", "set", "lo", "up"]);
    let _ = far.exec(["ethtool", "-K", "eth0", "tx", "off"]);
    ip(
        &far,
        &[
            "-6",
            "addr",
            "add",
            &format!("{FAR}/64"),
            "dev",
            "eth0",
            "nodad",
        ],
    );
    ip(
        &far,
        &["-6", "addr", "add", &format!("{FAR_HOST}/128"), "dev", "lo"],
    );

    // The external network: IPv4 and IPv6 subnets.
    let (ext, _) = external(&t);
    let ext6 = t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": ext["id"], "ip_version": 6, "cidr": "2001:db8:ff::/64",
               "gateway_ip": OUTSIDE, "enable_dhcp": false,
               "allocation_pools": [{"start": "2001:db8:ff::10", "end": "2001:db8:ff::99"}]}),
    );
    let net = t
        .srv
        .create("networks", "network", json!({"name": "inside6"}));
    let sub = t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 6, "cidr": INSIDE,
               "enable_dhcp": false}),
    );
    let r = t.srv.create(
        "routers",
        "router",
        json!({"name": "r6", "external_gateway_info": {"network_id": ext["id"]}}),
    );
    let rid = r["id"].as_str().unwrap().to_string();
    // The gateway port has an address on each external subnet, the IPv6 one included.
    let gw_ips = r["external_gateway_info"]["external_fixed_ips"]
        .as_array()
        .expect("external_fixed_ips")
        .clone();
    assert_eq!(gw_ips.len(), 2, "{r}");
    let gw6 = gw_ips
        .iter()
        .find(|f| f["subnet_id"] == ext6["id"])
        .and_then(|f| f["ip_address"].as_str())
        .expect("an IPv6 gateway address")
        .to_string();
    let (st, body) = t.srv.call(
        "PUT",
        &format!("/v2.0/routers/{rid}/add_router_interface"),
        Some(json!({"subnet_id": sub["id"]})),
    );
    assert_eq!(st, 200, "{body}");
    // The operator's part: the outside routes the tenant prefixes to the gateway address.
    for p in [INSIDE, BEHIND_B] {
        ip(&t.outside, &["-6", "route", "add", p, "via", &gw6]);
        ip(&far, &["-6", "route", "add", p, "via", &gw6]);
    }

    // VMs on both hosts, in a group that lets ICMPv6 in from anywhere.
    let sg = t.srv.create(
        "security-groups",
        "security_group",
        json!({"name": "outside-in6"}),
    );
    t.srv.create(
        "security-group-rules",
        "security_group_rule",
        json!({"security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv6",
               "protocol": "ipv6-icmp", "remote_ip_prefix": "::/0"}),
    );
    let (_, defaults) = t
        .srv
        .call("GET", "/v2.0/security-groups?name=default", None);
    let groups = json!([defaults["security_groups"][0]["id"], sg["id"]]);
    let pa = t.srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "security_groups": groups}),
    );
    // vm b routes a prefix of its own (it may send from it).
    let pb = t.srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "security_groups": groups,
               "allowed_address_pairs": [{"ip_address": BEHIND_B}]}),
    );
    let vm_a = plug6(&t, &pa, 0);
    let vm_b = plug6(&t, &pb, 1);
    let (ip_a, ip_b) = (v6(&pa), v6(&pb));

    // Out: each VM reaches the outside from its own host, with its own address (no NAT).
    let cap = capture(&t.outside, "eth0", &["icmp6"]);
    assert!(reaches6(&vm_a.ns, OUTSIDE), "vm a out: {}", t.dumps());
    assert!(reaches6(&vm_b.ns, OUTSIDE), "vm b out: {}", t.dumps());
    let seen = captured(cap);
    for vm_ip in [&ip_a, &ip_b] {
        assert!(
            seen.contains(&format!("{vm_ip} > {OUTSIDE}: ICMP6, echo request")),
            "the outside saw: {seen}"
        );
    }
    // vm a's echo request routed out without NAT, as OVS takes it on host a.
    let r = common::trace::delivered(&t.srv, &t.ovs[0], &ip_a, OUTSIDE, None);
    assert!(r.verdict.contains("physical network"), "{}", r.out);
    // In: the outside reaches both VMs' global addresses (one of them through the host
    // that answered for the gateway address, then the tunnel).
    assert!(
        reaches6(&t.outside, &ip_a),
        "outside to vm a: {}",
        t.dumps()
    );
    assert!(
        reaches6(&t.outside, &ip_b),
        "outside to vm b: {}",
        t.dumps()
    );
    // The gateway address is answered (ndisc6, a real ND client) with a host's own MAC on
    // the external network, never the router's gateway port MAC (which several hosts
    // would then send from).
    let (_, ports) = t.srv.call("GET", "/v2.0/ports", None);
    let mac_of = |owner: &str| -> Vec<String> {
        ports["ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["device_owner"] == owner)
            .map(|p| p["mac_address"].as_str().unwrap().to_uppercase())
            .collect()
    };
    let (host_macs, gw_mac) = (
        mac_of("network:chassis_snat"),
        mac_of("network:router_gateway"),
    );
    assert_eq!(host_macs.len(), 2, "a port of each host: {ports}");
    let nd = t
        .outside
        .exec(["ndisc6", "-1", "-r", "3", &gw6, "eth0"])
        .unwrap_or_else(|e| panic!("ndisc6 {gw6}: {e}\n{}", t.dumps()));
    eprintln!("ndisc6 {gw6}: {nd}");
    let answer = nd.to_uppercase();
    assert!(
        host_macs.iter().any(|m| answer.contains(m)) && !answer.contains(&gw_mac[0]),
        "{nd}"
    );
    // A network per address mode on the same router: the VM configures itself from our
    // RAs (slaac, dhcpv6-stateless) or from DHCPv6 (dhcpv6-stateful, the default route
    // still from the RA, the router having a way out), and is reached both ways.
    for (h, (mode, cidr)) in [
        ("slaac", SLAAC),
        ("dhcpv6-stateless", STATELESS),
        ("dhcpv6-stateful", STATEFUL),
    ]
    .into_iter()
    .enumerate()
    {
        let net = t.srv.create("networks", "network", json!({"name": mode}));
        let sub = t.srv.create(
            "subnets",
            "subnet",
            json!({"network_id": net["id"], "ip_version": 6, "cidr": cidr,
                   "ipv6_ra_mode": mode, "ipv6_address_mode": mode}),
        );
        let (st, body) = t.srv.call(
            "PUT",
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            Some(json!({"subnet_id": sub["id"]})),
        );
        assert_eq!(st, 200, "{body}");
        ip(&t.outside, &["-6", "route", "add", cidr, "via", &gw6]);
        let port = t.srv.create(
            "ports",
            "port",
            json!({"network_id": net["id"], "security_groups": groups}),
        );
        let addr = v6(&port);
        let id = port["id"].as_str().unwrap();
        let mac = port["mac_address"].as_str().unwrap();
        let vm = testbed::Vm::plug_unaddressed(&t.ovs[h % 2], "br-int", id, mac).expect("plug");
        for (k, v) in [("accept_ra", "1"), ("autoconf", "1"), ("use_tempaddr", "0")] {
            vm.ns
                .exec(["sysctl", "-qw", &format!("net.ipv6.conf.eth0.{k}={v}")])
                .expect("sysctl");
        }
        let leases = tempfile::tempdir().expect("tmp");
        let (pf, lf) = (leases.path().join("pid6"), leases.path().join("leases6"));
        if mode == "dhcpv6-stateful" {
            // dhclient binds to the link-local address: it must have passed DAD.
            common::cloud::wait_link_local(&vm.ns);
            let out = vm
                .ns
                .dhclient("eth0", &pf, &lf, &["-6", "-1"])
                .expect("resolv.conf")
                .output()
                .expect("dhclient");
            assert!(
                out.status.success(),
                "dhclient -6: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        wait_until(
            &format!("{mode}: the API's address and a default route from the RA"),
            Duration::from_secs(30),
            || {
                let addrs = vm
                    .ns
                    .exec(["ip", "-6", "addr", "show", "dev", "eth0", "scope", "global"])
                    .unwrap_or_default();
                let routes = vm
                    .ns
                    .exec(["ip", "-6", "route", "show", "default"])
                    .unwrap_or_default();
                addrs.contains(&addr) && !addrs.contains("tentative") && routes.contains("fe80::")
            },
        );
        assert!(reaches6(&vm.ns, OUTSIDE), "{mode} vm out: {}", t.dumps());
        assert!(reaches6(&t.outside, &addr), "outside to the {mode} vm");
        if mode == "dhcpv6-stateful" {
            // Stop the background client without a RELEASE.
            let _ = vm
                .ns
                .dhclient("eth0", &pf, &lf, &["-6", "-x"])
                .map(|mut c| c.output());
        }
    }

    // The router's IPv6 default route leaves by the external network's gateway.
    assert!(
        !t.ovs[0]
            .ofctl(["dump-flows", "br-int", "table=65,ipv6"])
            .unwrap_or_default()
            .is_empty()
    );

    // Extra routes with IPv6 next hops: a prefix behind vm b, and one behind the far
    // machine on the external subnet.
    ip(&vm_b.ns, &["link", "set", "lo", "up"]);
    ip(
        &vm_b.ns,
        &[
            "-6",
            "addr",
            "add",
            &format!("{BEHIND_B_HOST}/128"),
            "dev",
            "lo",
        ],
    );
    assert!(
        t.outside
            .exec(["ping", "-6", "-c", "1", "-W", "1", BEHIND_B_HOST])
            .is_err(),
        "no route yet"
    );
    assert!(
        vm_a.ns
            .exec(["ping", "-6", "-c", "1", "-W", "1", FAR_HOST])
            .is_err(),
        "no route yet"
    );
    let (st, body) = t.srv.call(
        "PUT",
        &format!("/v2.0/routers/{rid}"),
        Some(json!({"router": {"routes": [
            {"destination": BEHIND_B, "nexthop": ip_b},
            {"destination": FAR_PREFIX, "nexthop": FAR},
        ]}})),
    );
    assert_eq!(st, 200, "{body}");
    assert!(
        reaches6(&t.outside, BEHIND_B_HOST),
        "outside to vm b's prefix: {}",
        t.dumps()
    );
    assert!(
        reaches6(&vm_a.ns, FAR_HOST),
        "vm a to the far prefix: {}",
        t.dumps()
    );
    assert!(reaches6(&vm_b.ns, FAR_HOST), "vm b to the far prefix");

    // The gateway removed: the VMs lose the outside.
    let (st, body) = t.srv.call(
        "PUT",
        &format!("/v2.0/routers/{rid}"),
        Some(json!({"router": {"routes": []}})),
    );
    assert_eq!(st, 200, "{body}");
    let (st, body) = t.srv.call(
        "PUT",
        &format!("/v2.0/routers/{rid}"),
        Some(json!({"router": {"external_gateway_info": {}}})),
    );
    assert_eq!(st, 200, "{body}");
    wait_until("the way out to go", Duration::from_secs(10), || {
        vm_a.ns
            .exec(["ping", "-6", "-c", "1", "-W", "1", OUTSIDE])
            .is_err()
    });
}
