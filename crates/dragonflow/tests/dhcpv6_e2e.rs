//! DHCPv6 end to end: real OVS on two hosts, `dragonflow controller` per host, VMs with
//! only their link-local address (`accept_ra=0`: no router advertisement is needed or
//! taken) that run ISC `dhclient -6` and get exactly the Neutron address from their own
//! host's controller with their names (the Client FQDN option, read back from dhclient's
//! lease file), a changed address at the next Renew, the DNS servers by
//! `dhclient -6 -S` on a stateless subnet; `dhcpcd` as a second client; a rogue DHCPv6
//! server in a VM never reaches another VM (tcpdump on the victims); a VM flooding
//! 10,000 Solicits a second is blocked in the switch and does not hold up another's
//! Advertise.

mod common;

use common::Server;
use common::cloud::{Controller as Ctl, addr, underlay, wait_until};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const TOOL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/vmattack.py");

/// `dragonflow controller` with the DHCPv6 handler's debug lines (which the tests read)
/// and `extra` flags.
fn ctl(srv: &Server, ovs: &testbed::Ovs, name: &str, ip: &str, extra: &[&str]) -> Ctl {
    let mut args = vec!["--tunnel-types", "geneve"];
    args.extend_from_slice(extra);
    let c = Ctl::spawn(
        &srv.nb_url,
        ovs,
        name,
        ip,
        &args,
        Some("info,controller::apps::dhcpv6=debug"),
    );
    c.wait_for_br_int(ovs);
    c
}

/// A server and two hosts (OVS on an underlay wire, a controller each with `extra`).
fn two_hosts(extra: &[&str]) -> (Server, [testbed::Ovs; 2], [Ctl; 2]) {
    let srv = Server::start();
    let (ovs_a, ovs_b) = (
        testbed::Ovs::start().expect("ovs a"),
        testbed::Ovs::start().expect("ovs b"),
    );
    testbed::veth("ul0", ovs_a.own_netns(), "ul0", ovs_b.own_netns()).expect("wire");
    underlay(&ovs_a, "ul0", "192.0.2.1/24");
    underlay(&ovs_b, "ul0", "192.0.2.2/24");
    let ctl_a = ctl(&srv, &ovs_a, "host-a", "192.0.2.1", extra);
    let ctl_b = ctl(&srv, &ovs_b, "host-b", "192.0.2.2", extra);
    (srv, [ovs_a, ovs_b], [ctl_a, ctl_b])
}

/// A network with one IPv6 subnet of `cidr` in address (and RA) mode `mode`.
fn network(srv: &Server, cidr: &str, mode: &str, extra: Value) -> (Value, Value) {
    let net = srv.create("networks", "network", json!({"name": "v6"}));
    let mut body = json!({"network_id": net["id"], "ip_version": 6, "cidr": cidr,
        "ipv6_address_mode": mode, "ipv6_ra_mode": mode});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let subnet = srv.create("subnets", "subnet", body);
    (net, subnet)
}

/// A VM with only its link-local address, and its DHCPv6 clients' files.
struct V6Vm {
    vm: testbed::Vm,
    dir: tempfile::TempDir,
    resolv: PathBuf,
    mac: String,
}

impl V6Vm {
    fn plug(ovs: &testbed::Ovs, port: &Value, srv: &Server, host: &str) -> V6Vm {
        let (mac, _) = addr(port);
        let id = port["id"].as_str().unwrap();
        let vm = testbed::Vm::plug_unaddressed(ovs, "br-int", id, &mac).expect("plug");
        // No router advertisements taken: the tests do not depend on them.
        for key in ["all", "default", "eth0"] {
            vm.ns
                .exec(["sysctl", "-qw", &format!("net.ipv6.conf.{key}.accept_ra=0")])
                .expect("sysctl");
        }
        let resolv = vm.ns.resolv_conf().expect("/etc/netns/NS/resolv.conf");
        wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
            let (_, v) = srv.call("GET", &format!("/v2.0/ports/{id}"), None);
            v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == host
        });
        // dhclient binds to the link-local address: it must have passed DAD.
        common::cloud::wait_link_local(&vm.ns);
        V6Vm {
            vm,
            dir: tempfile::tempdir().expect("tmp"),
            resolv,
            mac,
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// `dhclient -6` with this VM's own pid and lease files; extra args before the
    /// interface.
    fn dhclient(&self, args: &[&str]) -> std::process::Output {
        let (pf, lf) = (self.file("pid6"), self.file("leases6"));
        let mut all = vec!["-6"];
        all.extend_from_slice(args);
        self.vm
            .ns
            .dhclient("eth0", pf.as_ref(), lf.as_ref(), &all)
            .expect("resolv.conf")
            .output()
            .expect("dhclient")
    }

    /// Runs `dhclient -6 -1 ARGS` to success (it then stays in the background, renewing);
    /// returns how long it took.
    fn lease(&self, args: &[&str]) -> Duration {
        let t = Instant::now();
        let mut all = vec!["-1"];
        all.extend_from_slice(args);
        let out = self.dhclient(&all);
        assert!(
            out.status.success(),
            "dhclient -6 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.elapsed()
    }

    fn sh(&self, argv: &[&str]) -> String {
        self.vm.ns.exec(argv).unwrap_or_default()
    }

    /// The global IPv6 addresses of eth0.
    fn global(&self) -> String {
        self.sh(&[
            "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global",
        ])
    }

    fn resolv(&self) -> String {
        std::fs::read_to_string(&self.resolv).unwrap_or_default()
    }

    fn link_local(&self) -> String {
        let a = self.sh(&[
            "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
        ]);
        a.split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|c| c.split('/').next())
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for V6Vm {
    fn drop(&mut self) {
        // Stop the background client without a RELEASE.
        let _ = self.dhclient(&["-x"]);
    }
}

/// Whether the controller's log shows a DHCPv6 answer giving `ip`.
fn answered(log: &str, ip: &str) -> bool {
    log.lines().any(|l| {
        l.contains("DHCPv6 answered")
            && l.split("addresses=")
                .nth(1)
                .is_some_and(|a| a.split([',', ' ']).any(|x| x == ip))
    })
}

fn v6_of(port: &Value) -> String {
    port["fixed_ips"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|f| f["ip_address"].as_str().filter(|a| a.contains(':')))
        .expect("an IPv6 address")
        .to_string()
}

#[test]
fn stateful_dhclient_gets_the_neutron_address_on_two_hosts_and_a_changed_one_at_renew() {
    if !testbed::require_root("stateful_dhclient_gets_the_neutron_address") {
        return;
    }
    // A short lease: T1 after 3 s.
    let (srv, [ovs_a, ovs_b], [ctl_a, ctl_b]) = two_hosts(&["--dhcp-lease-seconds", "6"]);
    let (net, subnet) = network(
        &srv,
        "2001:db8:61::/64",
        "dhcpv6-stateful",
        json!({"dns_nameservers": ["2001:db8:61::53"]}),
    );
    let pa = srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "dns_name": "vm6a"}),
    );
    let pb = srv.create("ports", "port", json!({"network_id": net["id"]}));
    let (ip_a, ip_b) = (v6_of(&pa), v6_of(&pb));
    // The names DHCPv6 hands out (RFC 4704's Client FQDN): the dns_name, or host-<address>.
    let names = [
        "vm6a".to_string(),
        format!("host-{}", ip_b.replace(':', "-")),
    ];
    let a = V6Vm::plug(&ovs_a, &pa, &srv, "host-a");
    let b = V6Vm::plug(&ovs_b, &pb, &srv, "host-b");
    let dumps = || {
        format!(
            "host a:\n{}\nhost b:\n{}\ncontroller a:\n{}\ncontroller b:\n{}",
            ovs_a.ofctl(["dump-flows", "br-int"]).unwrap_or_default(),
            ovs_b.ofctl(["dump-flows", "br-int"]).unwrap_or_default(),
            ctl_a.log(),
            ctl_b.log()
        )
    };
    for ((vm, ip), name) in [(&a, &ip_a), (&b, &ip_b)].into_iter().zip(&names) {
        let took = vm.lease(&[]);
        println!("dhclient -6 lease for {ip}: {took:?}");
        let g = vm.global();
        assert!(
            g.contains(&format!("inet6 {ip}/")),
            "exactly the Neutron address: {g}\n{}",
            dumps()
        );
        assert_eq!(g.lines().count(), 1, "{g}");
        let resolv = vm.resolv();
        assert!(resolv.contains("nameserver 2001:db8:61::53"), "{resolv}");
        // dhclient keeps what it read in its lease file, the server's update flag too.
        let lease = std::fs::read_to_string(vm.file("leases6")).unwrap_or_default();
        for line in [
            format!("option fqdn.hostname \"{name}\";"),
            format!("option fqdn.fqdn \"{name}.openstacklocal\";"),
            "option fqdn.server-update true;".to_string(),
        ] {
            assert!(lease.contains(&line), "{line} in the lease: {lease}");
        }
    }
    // Each from its own host's controller.
    assert!(answered(&ctl_a.log(), &ip_a), "{}", dumps());
    assert!(answered(&ctl_b.log(), &ip_b), "{}", dumps());
    assert!(!answered(&ctl_a.log(), &ip_b) && !answered(&ctl_b.log(), &ip_a));
    // A's request to All_DHCP_Relay_Agents_and_Servers goes to its own host's controller.
    common::trace::expect(
        &srv,
        &ovs_a,
        &ip_a,
        "[ff02::1:2]:547",
        Some("udp"),
        "controller",
    );
    // The addresses work: a reaches b across the hosts by them (dhclient sets a /128;
    // with no router advertisement the /64 is put on-link by hand).
    for vm in [&a, &b] {
        vm.sh(&[
            "ip",
            "-6",
            "route",
            "add",
            "2001:db8:61::/64",
            "dev",
            "eth0",
        ]);
    }
    // (A renewal may re-add the address, tentative again for a moment: ping from it, a
    // few times.)
    let t = Instant::now();
    let mut ping = Err(std::io::Error::other("not tried"));
    while t.elapsed() < Duration::from_secs(10) {
        ping =
            a.vm.ns
                .exec(["ping", "-6", "-c", "1", "-W", "1", "-I", &ip_a, &ip_b]);
        if ping.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        ping.is_ok(),
        "a reaches b by its DHCPv6 address: {ping:?}\na: {} {}\nb: {} {}\n{}",
        a.sh(&["ip", "-6", "addr"]),
        a.sh(&["ip", "-6", "neigh"]),
        b.sh(&["ip", "-6", "addr"]),
        b.sh(&["ip", "-6", "neigh"]),
        dumps()
    );

    // The address changes through the API; the running client's Renew brings the new
    // one, and the old one goes.
    let new_ip = "2001:db8:61::77";
    let pid = pa["id"].as_str().unwrap();
    let (status, body) = srv.call(
        "PUT",
        &format!("/v2.0/ports/{pid}"),
        Some(json!({"port": {"fixed_ips": [{"subnet_id": subnet["id"], "ip_address": new_ip}]}})),
    );
    assert_eq!(status, 200, "{body}");
    let t = Instant::now();
    wait_until(
        "the new address by renewal",
        Duration::from_secs(30),
        || a.global().contains(&format!("inet6 {new_ip}/")),
    );
    println!("the changed address arrived after {:?}", t.elapsed());
    wait_until("the old address to go", Duration::from_secs(20), || {
        !a.global().contains(&format!("inet6 {ip_a}/"))
    });
    assert!(answered(&ctl_a.log(), new_ip), "{}", dumps());
    assert!(
        ctl_a
            .log()
            .lines()
            .any(|l| l.contains("DHCPv6 answered") && l.contains("request=Some(Renew)")),
        "by a Renew\n{}",
        dumps()
    );
}

#[test]
fn stateless_dhclient_gets_the_dns_servers_and_dhcpcd_is_served_too() {
    if !testbed::require_root("stateless_dhclient_gets_the_dns_servers") {
        return;
    }
    let (srv, [ovs_a, _ovs_b], [ctl_a, _ctl_b]) = two_hosts(&[]);
    let (net, _) = network(
        &srv,
        "2001:db8:62::/64",
        "dhcpv6-stateless",
        json!({"dns_nameservers": ["2001:db8:62::53", "2001:db8:62::54"]}),
    );
    // The port's IPv6 extra_dhcp_opts add to the domain search list; its IPv4 ones are not
    // DHCPv6's.
    let p = srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "extra_dhcp_opts": [
            {"opt_name": "domain-search", "opt_value": "example.org,openstacklocal", "ip_version": 6},
            {"opt_name": "domain-name", "opt_value": "v4.example", "ip_version": 4}
        ]}),
    );
    let vm = V6Vm::plug(&ovs_a, &p, &srv, "host-a");
    vm.lease(&["-S"]);
    let resolv = vm.resolv();
    assert!(
        resolv.contains("nameserver 2001:db8:62::53")
            && resolv.contains("nameserver 2001:db8:62::54"),
        "{resolv}\n{}",
        ctl_a.log()
    );
    assert!(
        resolv.contains("example.org") && resolv.contains("openstacklocal"),
        "the domain search list, from the port's extra_dhcp_opts: {resolv}"
    );
    assert!(!resolv.contains("v4.example"), "{resolv}");
    assert_eq!(vm.global().trim(), "", "stateless: no address from DHCPv6");
    assert!(
        ctl_a
            .log()
            .contains("request=Some(InformationRequest) reply=Some(Reply)"),
        "{}",
        ctl_a.log()
    );
    let _ = vm.dhclient(&["-x"]);

    // dhcpcd, the second client: an Information-request too (no RA: asked for by hand).
    std::fs::write(vm.resolv.clone(), "").expect("resolv");
    let out = dhcpcd(&vm, &["--inform6"], "");
    let resolv = vm.resolv();
    assert!(
        resolv.contains("2001:db8:62::53"),
        "dhcpcd --inform6: {resolv}\n{out}\n{}",
        ctl_a.log()
    );
}

/// Runs `dhcpcd -6` once in the VM (`-1 -B`: configure, then exit), with `conf` as its
/// configuration; returns its output. dhcpcd keeps its pid file and control socket under
/// `/run/dhcpcd` by interface name (every VM's is eth0): each run gets a private one, a
/// tmpfs in a mount namespace of its own.
fn dhcpcd(vm: &V6Vm, args: &[&str], conf: &str) -> String {
    let file = vm.file("dhcpcd.conf");
    std::fs::write(&file, format!("noipv6rs\n{conf}")).expect("dhcpcd.conf");
    let script = format!(
        "mkdir -p /run/dhcpcd && mount -t tmpfs tmpfs /run/dhcpcd && \
         exec timeout 30 dhcpcd -6 -1 -B -d -t 20 -f {file} {} eth0",
        args.join(" ")
    );
    let out = vm
        .vm
        .ns
        .command([
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .expect("dhcpcd");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn dhcpcd_gets_the_neutron_address_on_a_stateful_subnet() {
    if !testbed::require_root("dhcpcd_gets_the_neutron_address") {
        return;
    }
    let (srv, [ovs_a, _ovs_b], [ctl_a, _ctl_b]) = two_hosts(&[]);
    let (net, _) = network(&srv, "2001:db8:63::/64", "dhcpv6-stateful", json!({}));
    let p = srv.create("ports", "port", json!({"network_id": net["id"]}));
    let ip = v6_of(&p);
    let vm = V6Vm::plug(&ovs_a, &p, &srv, "host-a");
    let out = dhcpcd(&vm, &[], "ia_na 1\n");
    let g = vm.global();
    assert!(
        g.contains(&format!("inet6 {ip}/")),
        "dhcpcd: exactly the Neutron address: {g}\n{out}\n{}",
        ctl_a.log()
    );
}

/// `tcpdump` on a VM's eth0: UDP frames from `mac`, printed one a line.
struct Tcpdump(Child);

impl Tcpdump {
    fn start(vm: &testbed::Vm, mac: &str) -> Tcpdump {
        let c = vm
            .ns
            .command([
                "timeout",
                "6",
                "tcpdump",
                "-i",
                "eth0",
                "-n",
                "-l",
                "-e",
                &format!("ether src {mac} and udp"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump");
        Tcpdump(c)
    }

    fn lines(self) -> String {
        String::from_utf8_lossy(&self.0.wait_with_output().expect("tcpdump").stdout).into_owned()
    }
}

#[test]
fn a_rogue_dhcpv6_server_in_a_vm_never_reaches_the_other_vms() {
    if !testbed::require_root("a_rogue_dhcpv6_server_in_a_vm_never_reaches_the_other_vms") {
        return;
    }
    let (srv, [ovs_a, ovs_b], [ctl_a, ctl_b]) = two_hosts(&[]);
    let (net, _) = network(&srv, "2001:db8:64::/64", "dhcpv6-stateful", json!({}));
    // Victims in a group that lets everything in: only the DHCPv6 rules stand between
    // them and the rogue servers.
    let open = srv.create("security-groups", "security_group", json!({"name": "open"}));
    srv.create(
        "security-group-rules",
        "security_group_rule",
        json!({"security_group_id": open["id"], "direction": "ingress", "ethertype": "IPv6"}),
    );
    let victim = |h: &testbed::Ovs, host: &str| {
        let p = srv.create(
            "ports",
            "port",
            json!({"network_id": net["id"], "security_groups": [open["id"]]}),
        );
        V6Vm::plug(h, &p, &srv, host)
    };
    let (v1, v2) = (victim(&ovs_a, "host-a"), victim(&ovs_b, "host-b"));
    // Two rogues on host a: one with port security off (stopped at the victims' ingress,
    // table 105), one with it on (stopped at its own egress, table 1).
    let rogue = |body: Value| {
        let mut b = json!({"network_id": net["id"]});
        b.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let p = srv.create("ports", "port", b);
        V6Vm::plug(&ovs_a, &p, &srv, "host-a")
    };
    let unfiltered = rogue(json!({"port_security_enabled": false, "security_groups": []}));
    let filtered = rogue(json!({}));
    let dumps = || {
        format!(
            "host a:\n{}\nhost b:\n{}\ncontroller a:\n{}\ncontroller b:\n{}",
            ovs_a.ofctl(["dump-flows", "br-int"]).unwrap_or_default(),
            ovs_b.ofctl(["dump-flows", "br-int"]).unwrap_or_default(),
            ctl_a.log(),
            ctl_b.log()
        )
    };
    for r in [&unfiltered, &filtered] {
        let caps = [
            Tcpdump::start(&v1.vm, &r.mac),
            Tcpdump::start(&v2.vm, &r.mac),
        ];
        std::thread::sleep(Duration::from_millis(700));
        for v in [&v1, &v2] {
            // The rogue server's ADVERTISEs (to ff02::1:2 and to the victim) ...
            r.vm.ns
                .exec(["python3", TOOL, "send", "eth0", "dhcp6", "--to-mac", &v.mac])
                .expect("vmattack dhcp6");
            // ... and a control datagram, which must arrive.
            let script = format!(
                "import socket,time\ns=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n\
                 for _ in range(5):\n    s.sendto(b'control',('{}%eth0',9999)); time.sleep(0.2)",
                v.link_local()
            );
            r.vm.ns
                .exec(["python3", "-c", &script])
                .expect("control datagram");
        }
        for (name, cap) in ["v1 (same host)", "v2 (other host)"].into_iter().zip(caps) {
            let seen = cap.lines();
            let server = seen.lines().filter(|l| l.contains(".547 > ")).count();
            let control = seen.lines().filter(|l| l.contains(".9999")).count();
            println!("{name}: {server} DHCPv6 server frames, {control} control datagrams");
            assert!(
                control > 0,
                "{name}: the control reached it:\n{seen}\n{}",
                dumps()
            );
            assert_eq!(
                server,
                0,
                "{name}: the rogue DHCPv6 server reached it:\n{seen}\n{}",
                dumps()
            );
        }
    }
    // The victims still get their own addresses from their controllers.
    v1.lease(&[]);
    assert!(!v1.global().trim().is_empty(), "{}", dumps());
}

/// A raw DHCPv6 client in Python (AF_PACKET, from the VM's own MAC and link-local
/// address): `flood RATE SECS` sends Solicits at RATE per second and prints how many;
/// `probe N MS` sends N Solicits MS apart and prints the Solicit→Advertise time of each
/// in milliseconds (or `lost`).
const RAW_CLIENT: &str = r#"
import socket, struct, sys, time, random, select
mac = bytes(int(x, 16) for x in open('/sys/class/net/eth0/address').read().strip().split(':'))
ll = b'\xfe\x80' + b'\0' * 6 + bytes([mac[0] ^ 2]) + mac[1:3] + b'\xff\xfe' + mac[3:]
dst = socket.inet_pton(socket.AF_INET6, 'ff02::1:2')
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def solicit(xid):
    d = struct.pack('!I', (1 << 24) | xid)
    d += struct.pack('!HHHH', 1, 10, 3, 1) + mac
    d += struct.pack('!HHH', 8, 2, 0)
    d += struct.pack('!HHIII', 3, 12, xid, 0, 0)
    udp = struct.pack('!HHHH', 546, 547, 8 + len(d), 0) + d
    ph = ll + dst + struct.pack('!IxxxB', len(udp), 17)
    c = csum(ph + udp) or 0xffff
    udp = udp[:6] + struct.pack('!H', c) + udp[8:]
    ip = struct.pack('!IHBB', 6 << 28, len(udp), 17, 1) + ll + dst
    return b'\x33\x33\x00\x01\x00\x02' + mac + b'\x86\xdd' + ip + udp
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86dd))
s.bind(('eth0', 0))
if sys.argv[1] == 'flood':
    rate, secs = int(sys.argv[2]), float(sys.argv[3])
    # Made before: building each one here (a checksum in Python) took a core of this
    # two-core machine, which the host's switch and controller then lacked; a real VM's
    # flood costs its own CPU, not the host's.
    frames = [solicit(random.getrandbits(24)) for _ in range(256)]
    t0 = time.monotonic(); n = 0
    while time.monotonic() - t0 < secs:
        s.send(frames[n % 256]); n += 1
        d = t0 + n / rate - time.monotonic()
        if d > 0: time.sleep(d)
    print(n)
else:
    n, gap = int(sys.argv[2]), int(sys.argv[3]) / 1000.0
    for i in range(n):
        xid = random.getrandbits(24)
        t = time.monotonic()
        s.send(solicit(xid))
        got = None
        while time.monotonic() - t < 2.0:
            r, _, _ = select.select([s], [], [], 0.05)
            if not r: continue
            f = s.recv(2048)
            if len(f) < 14 + 40 + 8 + 4 or f[20] != 17: continue
            u = 14 + 40
            if struct.unpack('!HH', f[u:u+4]) != (547, 546): continue
            m = f[u+8:]
            if m[0] == 2 and struct.unpack('!I', b'\0' + m[1:4])[0] == xid:
                got = (time.monotonic() - t) * 1000.0; break
        print('%.3f' % got if got is not None else 'lost', flush=True)
        time.sleep(gap)
"#;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[test]
fn a_vm_flooding_solicits_does_not_delay_another_vms_advertise() {
    if !testbed::require_root("a_vm_flooding_solicits_does_not_delay") {
        return;
    }
    let (srv, [ovs_a, _ovs_b], [ctl_a, _ctl_b]) = two_hosts(&[]);
    let (net, _) = network(&srv, "2001:db8:65::/64", "dhcpv6-stateful", json!({}));
    let pf = srv.create("ports", "port", json!({"network_id": net["id"]}));
    let pq = srv.create("ports", "port", json!({"network_id": net["id"]}));
    let flooder = V6Vm::plug(&ovs_a, &pf, &srv, "host-a");
    let prober = V6Vm::plug(&ovs_a, &pq, &srv, "host-a");
    let script = prober.dir.path().join("rawdhcp6.py");
    std::fs::write(&script, RAW_CLIENT).expect("script");
    let script = script.display().to_string();
    // Two probes a second: within the prober's own rate of 3.
    let probe = |n: usize| -> Vec<f64> {
        let out = prober
            .vm
            .ns
            .command(["python3", &script, "probe", &n.to_string(), "500"])
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .map(|l| {
                l.parse::<f64>()
                    .unwrap_or_else(|_| panic!("a probe got no advertise: {text}\n{}", ctl_a.log()))
            })
            .collect()
    };
    let quiet = probe(6);
    let flood = flooder
        .vm
        .ns
        .command(["python3", &script, "flood", "10000", "6"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("flood");
    std::thread::sleep(Duration::from_millis(500));
    let flooded = probe(6);
    let sent = flood.wait_with_output().expect("flood");
    let sent: u64 = String::from_utf8_lossy(&sent.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let (q, f) = (median(quiet.clone()), median(flooded.clone()));
    println!(
        "Solicit->Advertise on a quiet host: {quiet:?} ms (median {q:.2}); while another VM \
         floods {sent} Solicits (target 10,000/s): {flooded:?} ms (median {f:.2})"
    );
    assert!(sent > 5000, "the flood ran: {sent}");
    assert!(
        f - q < 100.0,
        "the flood delayed another VM's advertise by {:.1} ms",
        f - q
    );
    let log = ctl_a.log();
    assert_eq!(
        log.matches("DHCPv6 flood").count(),
        1,
        "blocked and logged once:\n{log}"
    );
    let dump = ovs_a
        .ofctl(["dump-flows", "br-int", "table=31"])
        .unwrap_or_default();
    assert!(
        dump.contains("hard_timeout=100") && dump.contains("priority=200"),
        "the flooder is blocked in the switch:\n{dump}"
    );
    let flooder_ip = v6_of(&pf);
    let answers = log.lines().filter(|l| answered(l, &flooder_ip)).count();
    assert!(answers <= 3, "{answers} answers to the flooder");
    // A test run leaves the docs alone: DF_RECORD=1 records the figures.
    if std::env::var_os("DF_RECORD").is_some() {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let load = load.split_whitespace().next().unwrap_or("?").to_string();
        testbed::bench::write_section(
            "dhcpv6-flood",
            &format!(
                "## DHCPv6 under a flooding VM (end to end)\n\n\
                 `DF_RECORD=1 cargo nextest run -p dragonflow --test dhcpv6_e2e flooding --no-capture`: \
                 one host (real OVS, `dragonflow controller`), VM A sends {sent} Solicits in 6 s \
                 (raw socket, aiming at 10,000/s; 256 Solicits built beforehand and sent in turn, so that the flood costs the host no Python checksums), VM B measures Solicit→Advertise (2/s).\n\n\
                 | measure | quiet host | while A floods |\n|---|---|---|\n\
                 | Solicit→Advertise, median of 6 | {q:.2} ms | {f:.2} ms |\n\
                 | Solicit→Advertise, worst of 6 | {:.2} ms | {:.2} ms |\n\n\
                 A is answered three times, then blocked in the switch (one drop flow in table \
                 31, 100 s). The issue's target: under 5 ms at the median while flooded. \
                 Machine load (1 min) when recorded: {load}.\n\n",
                quiet.iter().copied().fold(0.0, f64::max),
                flooded.iter().copied().fold(0.0, f64::max),
            ),
        );
    }
}
