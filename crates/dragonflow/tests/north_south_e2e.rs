//! North-south end to end: two hosts (real OVS each), each with an operator bridge `br-ex`
//! whose NIC is wired into a "physical network" (a Linux bridge in its own namespace) that
//! also holds an outside namespace. Controllers run with `--bridge-mappings
//! physnet1:br-ex`. VMs reach the outside through SNAT on their own host, the outside
//! reaches a VM through its floating IP, the floating IP follows its move to the other
//! host, and a VLAN provider network carries its tag on the wire.

mod common;

use common::Server;
use common::cloud::{addr, underlay, wait_until};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A controller process with bridge mappings (the shared harness starts them without).
struct Ctl(Child, tempfile::NamedTempFile);

impl Ctl {
    fn start(srv: &Server, ovs: &testbed::Ovs, name: &str, ip: &str) -> Ctl {
        let log = tempfile::NamedTempFile::new().expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
            .args([
                "controller",
                "--chassis",
                name,
                "--nb",
                &srv.url,
                "--local-ip",
                ip,
                "--tunnel-types",
                "geneve",
                "--bridge-mappings",
                "physnet1:br-ex",
            ])
            .arg(format!("--ovsdb=unix:{}", ovs.db_sock().display()))
            .arg(format!(
                "--openflow=unix:{}",
                ovs.mgmt_sock("br-int").display()
            ))
            .env(
                "DRAGONFLOW_LOG",
                std::env::var("DF_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stderr(Stdio::from(log.reopen().expect("log")))
            .spawn()
            .expect("controller");
        Ctl(child, log)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.1.path()).unwrap_or_default()
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Cloud {
    srv: Server,
    ovs: [testbed::Ovs; 2],
    ctl: Vec<Ctl>,
    /// The physical network: a switch with one link per host (`ha`, `hb`) and one to the
    /// outside (`out`): a Linux bridge, or for VLANs (no 8021q module nor bridge VLAN
    /// filtering here) an OVS in standalone mode whose `out` is an access port.
    phys: Option<testbed::Netns>,
    phys_ovs: Option<testbed::Ovs>,
    outside: testbed::Netns,
}

fn ip(ns: &testbed::Netns, args: &[&str]) {
    let mut argv = vec!["ip"];
    argv.extend_from_slice(args);
    ns.exec(argv).unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
}

impl Cloud {
    fn phys(&self) -> &testbed::Netns {
        self.phys
            .as_ref()
            .or_else(|| self.phys_ovs.as_ref().and_then(|o| o.own_netns()))
            .expect("physical network namespace")
    }

    /// With `access_vlan`, the outside is on that VLAN of the physical network.
    fn start(access_vlan: Option<u16>) -> Cloud {
        let srv = Server::start();
        let ovs = [
            testbed::Ovs::start().expect("ovs a"),
            testbed::Ovs::start().expect("ovs b"),
        ];
        testbed::veth("ul0", ovs[0].own_netns(), "ul0", ovs[1].own_netns()).expect("underlay");
        underlay(&ovs[0], "ul0", "192.0.2.1/24");
        underlay(&ovs[1], "ul0", "192.0.2.2/24");
        let outside = testbed::Netns::new(&testbed::unique_name("out")).expect("outside");
        let (phys, phys_ovs) = match access_vlan {
            None => {
                let ns = testbed::Netns::new(&testbed::unique_name("phys")).expect("phys");
                ip(&ns, &["link", "add", "phys", "type", "bridge"]);
                ip(&ns, &["link", "set", "phys", "up"]);
                (Some(ns), None)
            }
            Some(_) => {
                let o = testbed::Ovs::start().expect("physical switch");
                o.vsctl([
                    "add-br",
                    "phys",
                    "--",
                    "set",
                    "bridge",
                    "phys",
                    "datapath_type=netdev",
                ])
                .expect("phys bridge");
                (None, Some(o))
            }
        };
        let pns = phys
            .as_ref()
            .or_else(|| phys_ovs.as_ref().and_then(|o| o.own_netns()))
            .expect("phys ns");
        let attach = |end: &str, tag: Option<u16>| match &phys_ovs {
            None => ip(pns, &["link", "set", end, "master", "phys", "up"]),
            Some(o) => {
                let mut args = vec!["add-port".to_string(), "phys".into(), end.into()];
                if let Some(t) = tag {
                    args.push(format!("tag={t}"));
                }
                o.vsctl(args).expect("phys port");
                ip(pns, &["link", "set", end, "up"]);
            }
        };
        for (h, o) in ovs.iter().enumerate() {
            let end = ["ha", "hb"][h];
            testbed::veth("ex0", o.own_netns(), end, Some(pns)).expect("host wire");
            attach(end, None);
            o.vsctl([
                "add-br",
                "br-ex",
                "--",
                "set",
                "bridge",
                "br-ex",
                "datapath_type=netdev",
            ])
            .expect("br-ex");
            o.vsctl(["add-port", "br-ex", "ex0"]).expect("ex0");
            for args in [["link", "set", "ex0", "up"], ["link", "set", "br-ex", "up"]] {
                let st = o.cmd("ip").args(args).status().expect("ip");
                assert!(st.success());
            }
        }
        testbed::veth("eth0", Some(&outside), "out", Some(pns)).expect("outside wire");
        attach("out", access_vlan);
        ip(&outside, &["link", "set", "eth0", "up"]);
        let _ = outside.exec(["ethtool", "-K", "eth0", "tx", "off"]);
        let ctl = vec![
            Ctl::start(&srv, &ovs[0], "host-a", "192.0.2.1"),
            Ctl::start(&srv, &ovs[1], "host-b", "192.0.2.2"),
        ];
        for o in &ovs {
            wait_until("patch ports", Duration::from_secs(20), || {
                o.vsctl(["list-ports", "br-ex"])
                    .is_ok_and(|p| p.contains("patch-ex-physnet1"))
            });
        }
        Cloud {
            srv,
            ovs,
            ctl,
            phys,
            phys_ovs,
            outside,
        }
    }

    fn dumps(&self) -> String {
        let mut s = String::new();
        for (h, o) in self.ovs.iter().enumerate() {
            s += &format!(
                "host {h}:\n{}\n",
                o.ofctl(["dump-flows", "br-int"]).unwrap_or_default()
            );
        }
        for c in &self.ctl {
            s += &format!("controller:\n{}\n", c.log());
        }
        s
    }

    /// Plugs `port` into a VM on host `h` and waits for it to be ACTIVE there.
    fn plug(&self, port: &Value, h: usize) -> testbed::Vm {
        let (mac, ip) = addr(port);
        let id = port["id"].as_str().unwrap().to_string();
        let vm = testbed::Vm::plug(&self.ovs[h], "br-int", &id, &mac, &format!("{ip}/24"))
            .expect("plug");
        let host = ["host-a", "host-b"][h];
        wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
            let (_, v) = self.srv.call("GET", &format!("/v2.0/ports/{id}"), None);
            v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == host
        });
        vm
    }

    fn port(&self, net: &Value) -> Value {
        self.srv
            .create("ports", "port", json!({"network_id": net["id"]}))
    }
}

/// Pings until it works, up to 20 s.
fn reaches(ns: &testbed::Netns, ip: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if ns
            .exec(["ping", "-c", "2", "-i", "0.2", "-W", "1", ip])
            .is_ok()
        {
            return true;
        }
    }
    false
}

/// A one-connection TCP server in a namespace that tells the peer's address it saw and
/// answers "hello"; killed when dropped.
struct TcpServer {
    child: Child,
    peer: std::sync::mpsc::Receiver<String>,
}

impl TcpServer {
    fn start(ns: &testbed::Netns, port: u16) -> TcpServer {
        use std::io::BufRead;
        let script = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',{port}))\ns.listen(1)\nprint('ready',flush=True)\nc,a=s.accept()\nprint(a[0],flush=True)\nc.sendall(b'hello')\nc.close()\n"
        );
        let mut child = ns
            .command(["/usr/bin/python3", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("server");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
        let (tx, peer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        TcpServer { child, peer }
    }

    /// The address the connection came from.
    fn peer(&self) -> Option<String> {
        self.peer.recv_timeout(Duration::from_secs(5)).ok()
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects from `ns` to `ip:port` with nc and returns what the server said.
fn tcp_get(ns: &testbed::Netns, ip: &str, port: u16) -> String {
    let out = ns
        .command(["nc", "-w", "3", ip, &port.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("nc");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// tcpdump on `iface` of `ns`, `-e` (link level, VLAN tags), until killed.
fn capture(ns: &testbed::Netns, iface: &str, filter: &[&str]) -> Child {
    let mut argv = vec!["tcpdump", "-l", "-e", "-n", "-i", iface];
    argv.extend_from_slice(filter);
    let c = ns
        .command(argv)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(500));
    c
}

fn captured(c: Child) -> String {
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-INT", &c.id().to_string()])
        .status();
    let out = c.wait_with_output().expect("tcpdump output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn external(t: &Cloud) -> (Value, Value) {
    let net = t.srv.create(
        "networks",
        "network",
        json!({"name": "ext", "router:external": true,
               "provider:network_type": "flat", "provider:physical_network": "physnet1"}),
    );
    let sub = t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "203.0.113.0/24",
               "gateway_ip": "203.0.113.1", "enable_dhcp": false,
               "allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.99"}]}),
    );
    (net, sub)
}

#[test]
fn snat_and_floating_ips_on_the_vms_own_host() {
    if !testbed::require_root("snat_and_floating_ips_on_the_vms_own_host") {
        return;
    }
    let t = Cloud::start(None);
    ip(
        &t.outside,
        &["addr", "add", "203.0.113.1/24", "dev", "eth0"],
    );
    let (ext, _) = external(&t);
    let net = t
        .srv
        .create("networks", "network", json!({"name": "inside"}));
    let sub = t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}),
    );
    let r = t.srv.create(
        "routers",
        "router",
        json!({"name": "r", "external_gateway_info": {"network_id": ext["id"]}}),
    );
    let rid = r["id"].as_str().unwrap();
    let (st, body) = t.srv.call(
        "PUT",
        &format!("/v2.0/routers/{rid}/add_router_interface"),
        Some(json!({"subnet_id": sub["id"]})),
    );
    assert_eq!(st, 200, "{body}");
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
    let srv = TcpServer::start(&vm_c.ns, 6001);
    assert_eq!(tcp_get(&t.outside, &fip_ip, 6001), "hello", "vm c answers");
    assert_eq!(srv.peer().as_deref(), Some("203.0.113.1"));
    eprintln!("floating IP followed its port to the other host in {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // And vm a is back to its host's SNAT address.
    let srv = TcpServer::start(&t.outside, 5004);
    assert_eq!(tcp_get(&vm_a.ns, "203.0.113.1", 5004), "hello");
    assert_eq!(srv.peer().as_deref(), Some(snat_a.as_str()));
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
