//! Isolation of the data plane, end to end: a VM tries what an attacker would (rogue router advertisements and
//! DHCP servers, VLAN-tagged frames, an address that impersonates another project's group
//! member) from a real VM namespace, with raw frames made by `tests/tools/vmattack.py`;
//! victims on the same host and on the other host count what reaches them. Each attack
//! comes with a control frame that must arrive, so a silent path cannot pass for a fix.

mod common;
mod ns;

use common::cloud::{TwoHosts, addr, two_hosts, wait_until};
use serde_json::{Value, json};
use std::process::{Child, Stdio};
use std::time::Duration;

const TOOL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/vmattack.py");

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// Sends `kind` frames from the VM's eth0 (`vmattack.py send eth0 KIND ARGS`).
fn send(vm: &testbed::Vm, kind: &str, args: &[&str]) {
    let mut argv = vec!["python3", TOOL, "send", "eth0", kind];
    argv.extend_from_slice(args);
    vm.ns
        .exec(argv)
        .unwrap_or_else(|e| panic!("vmattack send {kind}: {e}"));
}

/// A sniffer on a namespace's interface counting marked frames from one MAC.
struct Sniffer(Child);

impl Sniffer {
    fn start(ns: &testbed::Netns, iface: &str, from_mac: &str, seconds: f32) -> Sniffer {
        let mut c = ns.command([
            "python3",
            TOOL,
            "sniff",
            iface,
            &seconds.to_string(),
            "--from-mac",
            from_mac,
        ]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let s = Sniffer(c.spawn().expect("sniffer"));
        // Let it bind its socket before anything is sent.
        std::thread::sleep(Duration::from_millis(300));
        s
    }

    /// Waits for the end of its time and returns the number of frames it saw, and what it
    /// printed.
    fn seen(self) -> (usize, String) {
        let out = self.0.wait_with_output().expect("sniffer output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let n = text
            .lines()
            .find_map(|l| l.strip_prefix("seen "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("sniffer: {text}{}", String::from_utf8_lossy(&out.stderr)));
        (n, text)
    }
}

/// Counts the marked frames from `from_mac` that each of `victims` sees while `attack` runs.
fn delivered(victims: &[&testbed::Vm], from_mac: &str, attack: impl FnOnce()) -> Vec<usize> {
    let sniffers: Vec<Sniffer> = victims
        .iter()
        .map(|v| Sniffer::start(&v.ns, "eth0", from_mac, 2.5))
        .collect();
    attack();
    sniffers.into_iter().map(|s| s.seen().0).collect()
}

/// A security group that lets everything in (IPv4 and IPv6), so that only the fixes under
/// test stand between the attacker and its victims.
fn open_group(t: &TwoHosts) -> String {
    let g = id(&t
        .srv
        .create("security-groups", "security_group", json!({"name": "open"})));
    for ethertype in ["IPv4", "IPv6"] {
        t.srv.create(
            "security-group-rules",
            "security_group_rule",
            json!({"security_group_id": g, "direction": "ingress", "ethertype": ethertype}),
        );
    }
    g
}

/// An attacker on host a, a victim beside it and a victim on host b, all in a group that
/// lets everything in; returns (attacker, its MAC, victims, their MACs and IPs).
struct Scene {
    t: TwoHosts,
    attacker: testbed::Vm,
    attacker_mac: String,
    victims: [testbed::Vm; 2],
    victim_addrs: [(String, String); 2],
}

fn scene() -> Scene {
    let t = two_hosts();
    let net = t.srv.network("n", "10.0.7.0/24");
    let open = open_group(&t);
    let port = |_: usize| {
        t.srv.create(
            "ports",
            "port",
            json!({"network_id": net["id"], "security_groups": [open]}),
        )
    };
    let (pa, p1, p2) = (port(0), port(1), port(2));
    let attacker = t.plug(&pa, 0, 24);
    let v1 = t.plug(&p1, 0, 24);
    let v2 = t.plug(&p2, 1, 24);
    Scene {
        attacker_mac: addr(&pa).0,
        attacker,
        victims: [v1, v2],
        victim_addrs: [addr(&p1), addr(&p2)],
        t,
    }
}

impl Scene {
    fn victims(&self) -> [&testbed::Vm; 2] {
        [&self.victims[0], &self.victims[1]]
    }

    /// The control: a plain UDP datagram from the attacker reaches both victims.
    fn control(&self) {
        let seen = delivered(&self.victims(), &self.attacker_mac, || {
            for (mac, ip) in &self.victim_addrs {
                send(&self.attacker, "udp", &["--to-mac", mac, "--to-ip", ip]);
            }
        });
        assert!(
            seen.iter().all(|n| *n > 0),
            "the control frames reach both victims: {seen:?}\n{}",
            self.t.dumps()
        );
    }
}

/// The IPv6 addresses of the VM's eth0, and its IPv6 routes.
fn ipv6_state(vm: &testbed::Vm) -> (String, String) {
    (
        vm.ns
            .exec(["ip", "-6", "-o", "addr", "show", "dev", "eth0"])
            .unwrap_or_default(),
        vm.ns.exec(["ip", "-6", "route"]).unwrap_or_default(),
    )
}

#[test]
fn a_vm_cannot_advertise_itself_as_an_ipv6_router() {
    if !testbed::require_root("a_vm_cannot_advertise_itself_as_an_ipv6_router") {
        return;
    }
    let s = scene();
    for v in &s.victims {
        // Hosts, not routers: they take advertised prefixes and default routes.
        v.ns.exec(["sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=1"])
            .expect("sysctl");
        wait_until(
            "the victim's link-local address",
            Duration::from_secs(10),
            || {
                let a =
                    v.ns.exec(["ip", "-6", "addr", "show", "dev", "eth0", "scope", "link"])
                        .unwrap_or_default();
                a.contains("fe80") && !a.contains("tentative")
            },
        );
    }
    s.control();
    let seen = delivered(&s.victims(), &s.attacker_mac, || {
        send(&s.attacker, "ra", &["--count", "5"]);
        for (mac, _) in &s.victim_addrs {
            send(&s.attacker, "redirect", &["--to-mac", mac]);
        }
    });
    assert_eq!(
        seen,
        [0, 0],
        "router advertisements and redirects reached the victims"
    );
    // What the kernel would have done with them: an address in the rogue prefix and a
    // default route through the attacker.
    for v in &s.victims {
        let (addrs, routes) = ipv6_state(v);
        assert!(!addrs.contains("2001:db8:bad"), "{addrs}");
        assert!(!routes.contains("default via"), "{routes}");
    }
}

#[test]
fn a_vm_cannot_act_as_a_dhcp_server() {
    if !testbed::require_root("a_vm_cannot_act_as_a_dhcp_server") {
        return;
    }
    let s = scene();
    s.control();
    let seen = delivered(&s.victims(), &s.attacker_mac, || {
        for (mac, ip) in &s.victim_addrs {
            send(&s.attacker, "dhcp", &["--to-mac", mac, "--to-ip", ip]);
            send(&s.attacker, "dhcp6", &["--to-mac", mac]);
        }
    });
    assert_eq!(
        seen,
        [0, 0],
        "DHCP and DHCPv6 server traffic from a VM reached the victims"
    );
}

#[test]
fn an_access_port_drops_vlan_tagged_frames() {
    if !testbed::require_root("an_access_port_drops_vlan_tagged_frames") {
        return;
    }
    let s = scene();
    s.control();
    let seen = delivered(&s.victims(), &s.attacker_mac, || {
        for vid in ["100", "0"] {
            for (mac, ip) in &s.victim_addrs {
                send(
                    &s.attacker,
                    "udp",
                    &["--to-mac", mac, "--to-ip", ip, "--vid", vid],
                );
            }
            // Broadcast: flooded to every port of the network and over the underlay.
            send(&s.attacker, "udp", &["--vid", vid]);
            send(&s.attacker, "udp", &["--vid", vid, "--vid", "7"]);
        }
    });
    assert_eq!(
        seen,
        [0, 0],
        "tagged frames from an access port were delivered"
    );
}

/// A port of a provider network in the "outside-in" and default groups, plugged on host h.
fn provider_vm(c: &ns::Cloud, body: Value, cidr: &str, h: usize) -> (testbed::Vm, Value) {
    let net = c.srv.create("networks", "network", body);
    c.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": cidr, "enable_dhcp": false}),
    );
    let p = c.port(&net);
    (c.plug(&p, h), p)
}

#[test]
fn no_tagged_frame_hops_into_another_vlan_of_the_physical_network() {
    if !testbed::require_root("no_tagged_frame_hops_into_another_vlan_of_the_physical_network") {
        return;
    }
    // The outside sits on an access port of VLAN 200 of the physical switch.
    let c = ns::Cloud::start(Some(200));
    ns::ip(
        &c.outside,
        &["addr", "add", "198.51.200.1/24", "dev", "eth0"],
    );
    let physnet = |kind: &str, seg: Option<u16>| {
        let mut b = json!({"name": kind, "provider:network_type": kind,
                           "provider:physical_network": "physnet1"});
        if let Some(s) = seg {
            b["provider:segmentation_id"] = json!(s);
        }
        b
    };
    let (flat_vm, flat_p) = provider_vm(&c, physnet("flat", None), "198.51.50.0/24", 0);
    let (v100_vm, v100_p) = provider_vm(&c, physnet("vlan", Some(100)), "198.51.100.0/24", 0);
    let (victim, victim_p) = provider_vm(&c, physnet("vlan", Some(200)), "198.51.200.0/24", 1);
    let (victim_mac, victim_ip) = addr(&victim_p);
    // The control: the VLAN 200 network reaches the outside on VLAN 200.
    assert!(ns::reaches(&victim.ns, "198.51.200.1"), "{}", c.dumps());
    for (vm, port) in [(&flat_vm, &flat_p), (&v100_vm, &v100_p)] {
        let mac = addr(port).0;
        let outside = Sniffer::start(&c.outside, "eth0", &mac, 2.5);
        let inside = Sniffer::start(&victim.ns, "eth0", &mac, 2.5);
        // Tagged 200 inside the VM's own network: a frame of VLAN 200 on the wire if a
        // flat network let it through, double-tagged on a VLAN network.
        send(vm, "udp", &["--vid", "200"]);
        send(
            vm,
            "udp",
            &[
                "--vid",
                "200",
                "--to-mac",
                &victim_mac,
                "--to-ip",
                &victim_ip,
            ],
        );
        send(vm, "udp", &["--vid", "100", "--vid", "200"]);
        let (o, ot) = outside.seen();
        let (i, it) = inside.seen();
        assert_eq!(
            (o, i),
            (0, 0),
            "from {mac}: the outside on VLAN 200 saw {ot}, the VLAN 200 VM saw {it}"
        );
    }
}

/// Creates `resource` in `collection` as a member of `project`.
fn create_as(t: &TwoHosts, project: &str, collection: &str, resource: &str, attrs: Value) -> Value {
    let (st, v) = t.srv.call_as(
        "POST",
        &format!("/v2.0/{collection}"),
        Some(json!({ resource: attrs })),
        &[("x-project-id", project)],
    );
    assert_eq!(st, 201, "create {resource} as {project}: {v}");
    v[resource].clone()
}

fn network_as(t: &TwoHosts, project: &str, cidr: &str, shared: bool) -> Value {
    let net = if shared {
        t.srv.create(
            "networks",
            "network",
            json!({"name": "shared", "shared": true}),
        )
    } else {
        create_as(t, project, "networks", "network", json!({"name": "n"}))
    };
    let subnet = json!({"network_id": net["id"], "ip_version": 4, "cidr": cidr});
    if shared {
        t.srv.create("subnets", "subnet", subnet);
    } else {
        create_as(t, project, "subnets", "subnet", subnet);
    }
    net
}

/// How many marked UDP datagrams that `from` sends (frames to `to`: a MAC and an IP, with
/// `extra` arguments) arrive at `at`, where they come from `arrive_from` (the sender's MAC,
/// or a router's when routed).
fn udp_arrives(
    from: &testbed::Vm,
    extra: &[&str],
    to: &(String, String),
    at: &testbed::Vm,
    arrive_from: &str,
) -> usize {
    let mut args = vec!["--to-mac", to.0.as_str(), "--to-ip", to.1.as_str()];
    args.extend_from_slice(extra);
    delivered(&[at], arrive_from, || send(from, "udp", &args))[0]
}

/// The MAC of router `router`'s interface on network `net`.
fn router_mac(t: &TwoHosts, router: &Value, net: &Value) -> String {
    let (_, ports) = t.srv.call(
        "GET",
        &format!(
            "/v2.0/ports?device_id={}&network_id={}",
            id(router),
            id(net)
        ),
        None,
    );
    ports["ports"][0]["mac_address"]
        .as_str()
        .expect("router port")
        .to_string()
}

#[test]
fn a_same_ip_in_another_project_neither_takes_nor_borrows_group_membership() {
    if !testbed::require_root(
        "a_same_ip_in_another_project_neither_takes_nor_borrows_group_membership",
    ) {
        return;
    }
    let t = two_hosts();
    // Project A: two VMs in its default group (ingress only from members), one per host.
    let na = network_as(&t, "proj-a", "10.0.0.0/24", false);
    let a1p = create_as(
        &t,
        "proj-a",
        "ports",
        "port",
        json!({"network_id": na["id"]}),
    );
    let a2p = create_as(
        &t,
        "proj-a",
        "ports",
        "port",
        json!({"network_id": na["id"]}),
    );
    let a1 = t.plug(&a1p, 0, 24);
    let a2 = t.plug(&a2p, 1, 24);
    let (a1_mac, a1_ip) = addr(&a1p);
    let a2_addr = addr(&a2p);
    assert!(
        udp_arrives(&a1, &[], &a2_addr, &a2, &a1_mac) > 0,
        "members reach each other\n{}",
        t.dumps()
    );
    // Project B: the same CIDR, and a VM with A1's address next to A2.
    let nb = network_as(&t, "proj-b", "10.0.0.0/24", false);
    let b1p = create_as(
        &t,
        "proj-b",
        "ports",
        "port",
        json!({"network_id": nb["id"], "fixed_ips": [{"ip_address": a1_ip}]}),
    );
    let b1 = t.plug(&b1p, 1, 24);
    assert!(
        udp_arrives(&a1, &[], &a2_addr, &a2, &a1_mac) > 0,
        "a member still reaches its peer once another project uses its address\n{}",
        t.dumps()
    );
    drop(b1);
    let (st, body) = t
        .srv
        .call("DELETE", &format!("/v2.0/ports/{}", id(&b1p)), None);
    assert_eq!(st, 204, "{body}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        udp_arrives(&a1, &[], &a2_addr, &a2, &a1_mac) > 0,
        "... and after that port is gone\n{}",
        t.dumps()
    );

    // A shared network joined to A's network by A's router; A's member M on A's network,
    // A's victim V on the shared network (A's default group: only members in).
    let shared = network_as(&t, "", "10.1.0.0/24", true);
    let router = create_as(&t, "proj-a", "routers", "router", json!({"name": "ra"}));
    for net in [&na, &shared] {
        let sub = t
            .srv
            .call(
                "GET",
                &format!("/v2.0/subnets?network_id={}", id(net)),
                None,
            )
            .1;
        // As admin: the shared network's subnet is the admin's.
        let (st, v) = t.srv.call(
            "PUT",
            &format!("/v2.0/routers/{}/add_router_interface", id(&router)),
            Some(json!({"subnet_id": sub["subnets"][0]["id"]})),
        );
        assert_eq!(st, 200, "{v}");
    }
    let vp = create_as(
        &t,
        "proj-a",
        "ports",
        "port",
        json!({"network_id": shared["id"]}),
    );
    let v = t.plug(&vp, 1, 24);
    let v_addr = addr(&vp);
    // The control: routed from the member, with its own address (sent to the router's MAC
    // on its network): admitted.
    let to_v = (router_mac(&t, &router, &na), v_addr.1.clone());
    let routed_from = router_mac(&t, &router, &shared);
    assert!(
        udp_arrives(&a1, &[], &to_v, &v, &routed_from) > 0,
        "a member on another network of the project reaches V through the router\n{}",
        t.dumps()
    );
    // Project B's VM X on the shared network claims M's address as an allowed address pair.
    // Neutron's policy lets only the network's owner (or an admin) give a port on it
    // allowed address pairs: the admin makes proj-b's port, as the datapath must hold
    // whatever the API lets through.
    let xp = t.srv.create(
        "ports",
        "port",
        json!({"network_id": shared["id"], "project_id": "proj-b",
               "allowed_address_pairs": [{"ip_address": format!("{a1_ip}/32")}]}),
    );
    let x = t.plug(&xp, 0, 24);
    let x_mac = addr(&xp).0;
    x.ns.exec(["ip", "addr", "add", &format!("{a1_ip}/32"), "dev", "eth0"])
        .expect("alias");
    assert_eq!(
        udp_arrives(&x, &["--from-ip", &a1_ip], &v_addr, &v, &x_mac),
        0,
        "another project's VM passed as a member of A's group\n{}",
        t.dumps()
    );
    // The same from X's own address is not a member either (the default group of A).
    assert_eq!(udp_arrives(&x, &[], &v_addr, &v, &x_mac), 0);
}
