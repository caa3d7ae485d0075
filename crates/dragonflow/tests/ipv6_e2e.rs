//! IPv6 configured the way a VM does it, end to end on real OVS: the Linux kernel's own
//! SLAAC forms exactly the address the API shows, `rdisc6` reads the router
//! advertisement of each of the three modes off the wire (flags, prefix, MTU, RDNSS,
//! router lifetime) and finds it equal to radvd's configured as Neutron configures it, a
//! VM with port security cannot be a rogue router or DHCPv6 server (tcpdump on the
//! victim) while one with port security off can, and MLD reports and queries are flooded
//! within their network only.

mod common;

use common::cloud::{TwoHosts, two_hosts, wait_until};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DNS: &str = "2001:db8::53";

/// A network with one IPv6 subnet in `mode` (both RA and address mode; `None`: neither),
/// behind a new router; returns (network, subnet).
fn advertised(t: &TwoHosts, name: &str, cidr: &str, mode: Option<&str>) -> (Value, Value) {
    let net = t.srv.create("networks", "network", json!({"name": name}));
    let mut attrs = json!({
        "network_id": net["id"], "ip_version": 6, "cidr": cidr, "dns_nameservers": [DNS],
    });
    if let Some(m) = mode {
        attrs["ipv6_ra_mode"] = json!(m);
        attrs["ipv6_address_mode"] = json!(m);
    }
    let sub = t.srv.create("subnets", "subnet", attrs);
    let r = t.srv.create("routers", "router", json!({"name": name}));
    let (st, body) = t.srv.call(
        "PUT",
        &format!(
            "/v2.0/routers/{}/add_router_interface",
            r["id"].as_str().unwrap()
        ),
        Some(json!({"subnet_id": sub["id"]})),
    );
    assert_eq!(st, 200, "add interface: {body}");
    (net, sub)
}

/// Plugs `port` into a VM on host `h` with no address of its own: IPv6 comes from the
/// kernel (link-local, and SLAAC from router advertisements).
fn plug(t: &TwoHosts, port: &Value, h: usize) -> testbed::Vm {
    let id = port["id"].as_str().unwrap();
    let mac = port["mac_address"].as_str().unwrap();
    let vm = testbed::Vm::plug_unaddressed(&t.ovs[h], "br-int", id, mac).expect("plug");
    // What the kernel would do anyway in a new namespace, said out loud: take RAs, form
    // SLAAC addresses from them, no privacy addresses beside them.
    for (k, v) in [("accept_ra", "1"), ("autoconf", "1"), ("use_tempaddr", "0")] {
        vm.ns
            .exec(["sysctl", "-qw", &format!("net.ipv6.conf.eth0.{k}={v}")])
            .expect("sysctl");
    }
    let host = ["host-a", "host-b"][h];
    wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
        let (_, v) = t.srv.call("GET", &format!("/v2.0/ports/{id}"), None);
        v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == host
    });
    common::cloud::wait_link_local(&vm.ns);
    vm
}

/// The VM's global IPv6 addresses (neither temporary nor tentative filtered out).
fn globals(vm: &testbed::Vm) -> Vec<String> {
    let out = vm
        .ns
        .exec([
            "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global",
        ])
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "inet6")?;
            Some(w.next()?.split('/').next()?.to_string())
        })
        .collect()
}

/// fe80:: with the modified EUI-64 of `mac`, as `ip` prints it.
fn eui64_link_local(mac: &str) -> String {
    let m: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    let words = [
        u16::from_be_bytes([m[0] ^ 2, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    ];
    format!(
        "fe80::{:x}:{:x}:{:x}:{:x}",
        words[0], words[1], words[2], words[3]
    )
}

/// Whether `ip` answers ping6 within 10 s (flows arrive a moment after the API answers).
fn pings6(vm: &testbed::Vm, ip: &str) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if vm
            .ns
            .exec(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", ip])
            .is_ok()
        {
            return true;
        }
    }
    false
}

/// rdisc6's account of the first RA it gets for its solicitation.
fn rdisc6(vm: &testbed::Vm) -> String {
    rdisc6_in(&vm.ns)
}

/// rdisc6's account of the first RA on `ns`'s eth0.
fn rdisc6_in(ns: &testbed::Netns) -> String {
    for _ in 0..5 {
        if let Ok(out) = ns.exec(["rdisc6", "-1", "-r", "3", "-w", "1500", "eth0"]) {
            return out;
        }
    }
    panic!("rdisc6 got no router advertisement");
}

/// The value rdisc6 prints after `label`'s colon on its line.
fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim())
        .unwrap_or_else(|| panic!("no {label:?} in:\n{out}"))
}

#[test]
fn each_mode_advertises_what_neutron_says_and_slaac_forms_the_api_address() {
    if !testbed::require_root(
        "each_mode_advertises_what_neutron_says_and_slaac_forms_the_api_address",
    ) {
        return;
    }
    let t = two_hosts();
    let modes = [
        ("slaac", "fd00:51::/64", "No", "No", "Yes"),
        ("dhcpv6-stateless", "fd00:52::/64", "No", "Yes", "Yes"),
        ("dhcpv6-stateful", "fd00:53::/64", "Yes", "Yes", "No"),
    ];
    for (i, (mode, cidr, managed, other, autonomous)) in modes.into_iter().enumerate() {
        let (net, sub) = advertised(&t, mode, cidr, Some(mode));
        let port = t
            .srv
            .create("ports", "port", json!({"network_id": net["id"]}));
        let fixed = common::cloud::addr(&port).1;
        let vm = plug(&t, &port, i % 2);
        let out = rdisc6(&vm);
        let ctx = format!("{mode}:\n{out}\n{}", t.dumps());
        assert_eq!(field(&out, "Stateful address conf."), managed, "{ctx}");
        assert_eq!(field(&out, "Stateful other conf."), other, "{ctx}");
        assert!(
            field(&out, "Router lifetime").starts_with("0 "),
            "no gateway: {ctx}"
        );
        assert!(field(&out, "Hop limit").starts_with("64 "), "{ctx}");
        assert_eq!(field(&out, "Prefix"), cidr, "{ctx}");
        assert_eq!(field(&out, "On-link"), "Yes", "{ctx}");
        assert_eq!(field(&out, "Autonomous address conf."), autonomous, "{ctx}");
        let mtu = net["mtu"].as_u64().expect("network MTU");
        assert!(
            field(&out, "MTU").starts_with(&format!("{mtu} bytes")),
            "{ctx}"
        );
        assert_eq!(field(&out, "Recursive DNS server"), DNS, "{ctx}");
        // From the router interface: its MAC, and the link-local address of its EUI-64.
        let (_, ports) = t.srv.call(
            "GET",
            &format!(
                "/v2.0/ports?network_id={}&device_owner=network:router_interface",
                net["id"].as_str().unwrap()
            ),
            None,
        );
        let router_mac = ports["ports"][0]["mac_address"]
            .as_str()
            .expect("router port");
        assert_eq!(
            field(&out, "Source link-layer address").to_lowercase(),
            router_mac,
            "{ctx}"
        );
        let from = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("from "))
            .expect("the RA's source");
        assert_eq!(from, eui64_link_local(router_mac), "{ctx}");
        // The router answers ping6 at the link-local address its RAs come from.
        assert!(pings6(&vm, &format!("{from}%eth0")), "ping6 {from}: {ctx}");
        if autonomous == "Yes" {
            wait_until(
                &format!("{mode}: the kernel's SLAAC address {fixed}"),
                Duration::from_secs(20),
                || globals(&vm).contains(&fixed),
            );
            assert_eq!(
                globals(&vm),
                vec![fixed.clone()],
                "exactly the API's: {ctx}"
            );
            let gw = sub["gateway_ip"].as_str().expect("gateway");
            assert!(pings6(&vm, gw), "ping6 the router at {gw}: {ctx}");
        } else {
            std::thread::sleep(Duration::from_secs(2));
            assert!(globals(&vm).is_empty(), "no SLAAC when stateful: {ctx}");
        }
        // The kernel took the RA: the MTU is the network's.
        let link = vm
            .ns
            .exec(["cat", "/proc/sys/net/ipv6/conf/eth0/mtu"])
            .unwrap();
        assert_eq!(link.trim(), mtu.to_string(), "{ctx}");
    }
}

/// tcpdump on the VM's eth0 for `filter`.
fn capture(vm: &testbed::Vm, filter: &str) -> Child {
    let mut argv = vec!["tcpdump", "-l", "-n", "-i", "eth0", "-c", "50"];
    argv.extend(filter.split(' '));
    let c = vm
        .ns
        .command(argv)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(700));
    c
}

fn stop(c: Child) -> String {
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(c.id().to_string())
        .status();
    let out = c.wait_with_output().expect("capture");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Five router advertisements for 2001:db8:bad::/64 to all nodes and five DHCPv6 server
/// replies (547 → 546) to `victim`, from the VM's eth0, by raw and UDP sockets.
fn rogue(vm: &testbed::Vm, victim: &str) {
    let script = format!(
        r#"
import socket, struct, time
ra = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0)
ra += struct.pack('!BBBBIII', 3, 4, 64, 0xc0, 86400, 14400, 0)
ra += socket.inet_pton(socket.AF_INET6, '2001:db8:bad::')
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.bind(('::', 547))
idx = socket.if_nametoindex('eth0')
for _ in range(5):
    s.sendto(ra, ('ff02::1', 0, 0, idx))
    u.sendto(b'\x07\x00\x00\x01', ('{victim}', 546, 0, idx))
    time.sleep(0.2)
"#
    );
    vm.ns
        .exec(["python3", "-c", &script])
        .expect("rogue sender");
}

/// The VM's link-local address.
fn link_local(vm: &testbed::Vm) -> String {
    let out = vm
        .ns
        .exec([
            "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
        ])
        .unwrap();
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .expect("link-local")
        .to_string()
}

#[test]
fn a_vm_with_port_security_is_never_a_router_or_a_dhcpv6_server_one_without_may_be() {
    if !testbed::require_root(
        "a_vm_with_port_security_is_never_a_router_or_a_dhcpv6_server_one_without_may_be",
    ) {
        return;
    }
    let t = two_hosts();
    // No RA mode: the only RAs on this network are the VMs' own.
    let (net, _) = advertised(&t, "rogue", "fd00:66::/64", None);
    let port = |attrs: Value| {
        let mut a = json!({"network_id": net["id"]});
        a.as_object_mut()
            .unwrap()
            .extend(attrs.as_object().unwrap().clone());
        t.srv.create("ports", "port", a)
    };
    let victim = plug(&t, &port(json!({})), 1);
    let filtered = plug(&t, &port(json!({})), 0);
    let open = plug(&t, &port(json!({"port_security_enabled": false})), 0);
    let target = link_local(&victim);
    let filter = "icmp6 and ip6[40] == 134 or udp port 546";

    let cap = capture(&victim, filter);
    rogue(&filtered, &target);
    let seen = stop(cap);
    assert!(
        !seen.contains("router advertisement") && !seen.contains("dhcp6"),
        "a rogue RA or DHCPv6 reply from a VM with port security got through:\n{seen}\n{}",
        t.dumps()
    );
    assert!(
        !globals(&victim)
            .iter()
            .any(|a| a.starts_with("2001:db8:bad:")),
        "the victim took the rogue prefix"
    );

    let cap = capture(&victim, filter);
    rogue(&open, &target);
    let seen = stop(cap);
    assert!(
        seen.contains("router advertisement"),
        "port security off: its RAs go through:\n{seen}\n{}",
        t.dumps()
    );
    assert!(seen.contains("546"), "and its DHCPv6 replies:\n{seen}");
}

/// Two VMs on a slaac network on two hosts configure themselves and reach each other;
/// on the underlay only the ping6 crosses: router solicitations are answered on the
/// asking VM's host, RAs go only to local ports, and ND for a known address is answered
/// by the switch.
#[test]
fn slaac_vms_on_two_hosts_reach_each_other_and_no_nd_or_ra_crosses_the_underlay() {
    if !testbed::require_root(
        "slaac_vms_on_two_hosts_reach_each_other_and_no_nd_or_ra_crosses_the_underlay",
    ) {
        return;
    }
    let t = two_hosts();
    let (net, _) = advertised(&t, "sl", "fd00:57::/64", Some("slaac"));
    let ports: Vec<Value> = (0..2)
        .map(|_| {
            t.srv
                .create("ports", "port", json!({"network_id": net["id"]}))
        })
        .collect();
    let fixed: Vec<String> = ports.iter().map(|p| common::cloud::addr(p).1).collect();
    let underlay = t.ovs[1]
        .own_netns()
        .expect("host b namespace")
        .command([
            "tcpdump", "-l", "-n", "-i", "ul0", "-c", "500", "udp", "port", "6081",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(700));
    let vms: Vec<testbed::Vm> = ports
        .iter()
        .enumerate()
        .map(|(h, p)| plug(&t, p, h))
        .collect();
    for (vm, ip) in vms.iter().zip(&fixed) {
        // The kernel solicits on link up; its SLAAC address is the API's.
        wait_until(&format!("SLAAC {ip}"), Duration::from_secs(20), || {
            globals(vm).contains(ip)
        });
    }
    assert!(pings6(&vms[0], &fixed[1]), "{}", t.dumps());
    common::trace::delivered(&t.srv, &t.ovs[0], &fixed[0], &fixed[1], None);
    let text = stop(underlay);
    assert!(
        text.contains("ICMP6, echo request"),
        "the ping6 crossed in the tunnel: {text}"
    );
    // DAD probes (from ::) for a new address do flood, as they must; no other
    // solicitation does.
    let ns: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("neighbor solicitation") && !l.contains("IP6 :: >"))
        .collect();
    assert!(
        ns.is_empty(),
        "a neighbour solicitation crossed the underlay: {ns:?}"
    );
    for what in ["router solicitation", "router advertisement"] {
        assert!(
            !text.contains(what),
            "a {what} crossed the underlay:\n{text}"
        );
    }
}

/// From the VM: joins ff05::1234 (the kernel sends its MLDv2 reports to ff02::16) and sends
/// three MLDv1 general queries to all nodes from a raw socket.
fn mld(vm: &testbed::Vm) {
    let script = r#"
import socket, struct, time
idx = socket.if_nametoindex('eth0')
j = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
j.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
             socket.inet_pton(socket.AF_INET6, 'ff05::1234') + struct.pack('@I', idx))
q = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
q.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
query = struct.pack('!BBHHH', 130, 0, 0, 1000, 0) + bytes(16)
for _ in range(3):
    q.sendto(query, ('ff02::1', 0, 0, idx))
    time.sleep(0.3)
"#;
    vm.ns.exec(["python3", "-c", script]).expect("mld sender");
}

/// MLD is flooded within its network as other multicast is (until MLD snooping): a VM's
/// reports and queries reach the other VMs of its network on both hosts, and no VM of
/// another network, even on the same hosts.
#[test]
fn mld_from_a_vm_reaches_its_network_and_no_other() {
    if !testbed::require_root("mld_from_a_vm_reaches_its_network_and_no_other") {
        return;
    }
    let t = two_hosts();
    let (net, _) = advertised(&t, "mld", "fd00:31::/64", None);
    let (other, _) = advertised(&t, "mld-other", "fd00:32::/64", None);
    let sg = t.srv.create(
        "security-groups",
        "security_group",
        json!({"name": "icmp6-in"}),
    );
    t.srv.create(
        "security-group-rules",
        "security_group_rule",
        json!({"security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv6",
               "protocol": "ipv6-icmp", "remote_ip_prefix": "::/0"}),
    );
    let port = |n: &Value| {
        t.srv.create(
            "ports",
            "port",
            json!({"network_id": n["id"], "security_groups": [sg["id"]]}),
        )
    };
    let sender = plug(&t, &port(&net), 0);
    let near = plug(&t, &port(&net), 0);
    let far = plug(&t, &port(&net), 1);
    let apart_near = plug(&t, &port(&other), 0);
    let apart_far = plug(&t, &port(&other), 1);
    let from = link_local(&sender);
    let filter = format!("ip6 and src host {from}");
    let caps: Vec<Child> = [&near, &far, &apart_near, &apart_far]
        .iter()
        .map(|vm| capture(vm, &filter))
        .collect();
    mld(&sender);
    let seen: Vec<String> = caps.into_iter().map(stop).collect();
    for (name, s) in ["same host", "other host"].iter().zip(&seen[..2]) {
        assert!(
            s.contains("multicast listener report v2"),
            "{name}: no MLD report from {from}:\n{s}\n{}",
            t.dumps()
        );
        assert!(
            s.contains("multicast listener query"),
            "{name}: no MLD query from {from}:\n{s}"
        );
    }
    for (name, s) in ["same host", "other host"].iter().zip(&seen[2..]) {
        assert!(
            !s.contains(&from),
            "another network's VM ({name}) heard {from}:\n{s}"
        );
    }
}

/// radvd in a namespace of its own, stopped when dropped.
struct Radvd(Child);

impl Drop for Radvd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What rdisc6 says of an RA, without what names its sender (source address, MAC), in
/// order (the options' order in the message means nothing).
fn contents(rdisc6: &str) -> Vec<String> {
    let mut lines: Vec<String> = rdisc6
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("Soliciting")
                && !l.starts_with("Source link-layer address")
                && !l.starts_with("from ")
        })
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// radvd as the reference: configured as Neutron's L3 agent configures it for a slaac
/// subnet (its template: Neutron's intervals, the network's MTU, the subnet's DNS servers
/// as RDNSS, the prefix on-link and autonomous), it advertises what our controller does,
/// field for field as rdisc6 reads them (flags, hop limit, router lifetime, reachable and
/// retransmit times, prefix and its lifetimes, RDNSS and its lifetime, MTU).
#[test]
fn our_router_advertisement_reads_as_radvd_configured_by_neutron() {
    if !testbed::require_root("our_router_advertisement_reads_as_radvd_configured_by_neutron") {
        return;
    }
    let t = two_hosts();
    let cidr = "fd00:58::/64";
    let (net, _) = advertised(&t, "reference", cidr, Some("slaac"));
    // A router with a way out (radvd as Neutron runs it always advertises a lifetime).
    let ext = t.srv.create(
        "networks",
        "network",
        json!({"name": "ext", "router:external": true,
               "provider:network_type": "flat", "provider:physical_network": "physnet1"}),
    );
    t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": ext["id"], "ip_version": 4, "cidr": "198.51.100.0/24",
               "enable_dhcp": false}),
    );
    let (_, routers) = t.srv.call("GET", "/v2.0/routers?name=reference", None);
    let rid = routers["routers"][0]["id"]
        .as_str()
        .expect("router")
        .to_string();
    let (st, body) = t.srv.call(
        "PUT",
        &format!("/v2.0/routers/{rid}"),
        Some(json!({"router": {"external_gateway_info": {"network_id": ext["id"]}}})),
    );
    assert_eq!(st, 200, "{body}");
    let port = t
        .srv
        .create("ports", "port", json!({"network_id": net["id"]}));
    let vm = plug(&t, &port, 0);
    let mtu = net["mtu"].as_u64().expect("network MTU");

    // radvd on a wire of its own, from Neutron's template.
    let router = testbed::Netns::new(&testbed::unique_name("radvd")).expect("radvd ns");
    let client = testbed::Netns::new(&testbed::unique_name("rdisc")).expect("client ns");
    testbed::veth("eth0", Some(&router), "eth0", Some(&client)).expect("wire");
    for ns in [&router, &client] {
        ns.exec(["ip", "link", "set", "eth0", "up"]).expect("up");
    }
    router
        .exec(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        .expect("forwarding");
    for ns in [&router, &client] {
        wait_until(
            "a link-local address past DAD",
            Duration::from_secs(10),
            || {
                ns.exec(["ip", "-6", "addr", "show", "dev", "eth0", "scope", "link"])
                    .is_ok_and(|s| s.contains("fe80::") && !s.contains("tentative"))
            },
        );
    }
    let dir = tempfile::tempdir().expect("dir");
    let conf = dir.path().join("radvd.conf");
    std::fs::write(
        &conf,
        format!(
            "interface eth0\n{{\n   AdvSendAdvert on;\n   MinRtrAdvInterval 30;\n   MaxRtrAdvInterval 100;\n   AdvLinkMTU {mtu};\n   RDNSS {DNS} {{}};\n   prefix {cidr}\n   {{\n        AdvOnLink on;\n        AdvAutonomous on;\n   }};\n}};\n"
        ),
    )
    .expect("radvd.conf");
    let _radvd = Radvd(
        router
            .command([
                "radvd",
                "-n",
                "-m",
                "stderr",
                "-C",
                conf.to_str().unwrap(),
                "-p",
                dir.path().join("radvd.pid").to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("radvd"),
    );
    let theirs = rdisc6_in(&client);
    let ours = rdisc6(&vm);
    assert_eq!(
        contents(&ours),
        contents(&theirs),
        "ours:\n{ours}\nradvd's:\n{theirs}"
    );
    // Not vacuous: the fields are there.
    for f in [
        "Router lifetime",
        "Prefix",
        "Valid time",
        "Recursive DNS server",
        "MTU",
    ] {
        assert!(theirs.contains(f), "{f}: {theirs}");
    }
}
