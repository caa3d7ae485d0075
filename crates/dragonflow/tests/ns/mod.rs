//! The north-south cloud of the e2e tests and the benchmark: two hosts (real OVS each) with
//! an operator bridge `br-ex` wired into a physical network that also holds an outside
//! namespace; controllers with `--bridge-mappings physnet1:br-ex`.

#![allow(dead_code)]

use crate::common::Server;
use crate::common::cloud::{addr, underlay, wait_until};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::common::cloud::Controller as Ctl;

/// A controller with `--bridge-mappings physnet1:br-ex` (the shared harness starts them
/// without).
pub fn controller(srv: &Server, ovs: &testbed::Ovs, name: &str, ip: &str) -> Ctl {
    controller_with(srv, ovs, name, ip, &[])
}

/// [`controller`] with `extra` arguments.
pub fn controller_with(
    srv: &Server,
    ovs: &testbed::Ovs,
    name: &str,
    ip: &str,
    extra: &[&str],
) -> Ctl {
    let mut args = vec![
        "--tunnel-types",
        "geneve",
        "--bridge-mappings",
        "physnet1:br-ex",
    ];
    args.extend_from_slice(extra);
    Ctl::spawn(&srv.nb_url, ovs, name, ip, &args, None)
}

pub struct Cloud {
    pub srv: Server,
    pub ovs: [testbed::Ovs; 2],
    pub ctl: Vec<Ctl>,
    /// The physical network: a switch with one link per host (`ha`, `hb`) and one to the
    /// outside (`out`): a Linux bridge, or for VLANs (no 8021q module nor bridge VLAN
    /// filtering here) an OVS in standalone mode whose `out` is an access port.
    pub phys: Option<testbed::Netns>,
    pub phys_ovs: Option<testbed::Ovs>,
    pub outside: testbed::Netns,
}

pub fn ip(ns: &testbed::Netns, args: &[&str]) {
    let mut argv = vec!["ip"];
    argv.extend_from_slice(args);
    ns.exec(argv).unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
}

impl Cloud {
    pub fn phys(&self) -> &testbed::Netns {
        self.phys
            .as_ref()
            .or_else(|| self.phys_ovs.as_ref().and_then(|o| o.own_netns()))
            .expect("physical network namespace")
    }

    /// With `access_vlan`, the outside is on that VLAN of the physical network.
    pub fn start(access_vlan: Option<u16>) -> Cloud {
        Cloud::start_on(Server::start(), access_vlan, &[])
    }

    /// [`Cloud::start`] around `srv`, its controllers with `ctl_args` too.
    pub fn start_on(srv: Server, access_vlan: Option<u16>, ctl_args: &[&str]) -> Cloud {
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
            o.add_nic_bridge("br-ex", "ex0", None).expect("br-ex");
        }
        testbed::veth("eth0", Some(&outside), "out", Some(pns)).expect("outside wire");
        attach("out", access_vlan);
        ip(&outside, &["link", "set", "eth0", "up"]);
        let _ = outside.exec(["ethtool", "-K", "eth0", "tx", "off"]);
        let ctl = vec![
            controller_with(&srv, &ovs[0], "host-a", "192.0.2.1", ctl_args),
            controller_with(&srv, &ovs[1], "host-b", "192.0.2.2", ctl_args),
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

    pub fn dumps(&self) -> String {
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
    pub fn plug(&self, port: &Value, h: usize) -> testbed::Vm {
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

    /// A port in the project's default group and a group that lets the outside in (ICMP,
    /// TCP): without it the default group admits only its own members, as in Neutron.
    pub fn port(&self, net: &Value) -> Value {
        let (_, groups) = self
            .srv
            .call("GET", "/v2.0/security-groups?name=outside-in", None);
        let sg = match groups["security_groups"].as_array().and_then(|a| a.first()) {
            Some(g) => g["id"].clone(),
            None => {
                let g = self.srv.create(
                    "security-groups",
                    "security_group",
                    json!({"name": "outside-in"}),
                );
                for protocol in ["icmp", "tcp", "udp"] {
                    self.srv.create(
                        "security-group-rules",
                        "security_group_rule",
                        json!({"security_group_id": g["id"], "direction": "ingress",
                               "ethertype": "IPv4", "protocol": protocol,
                               "remote_ip_prefix": "0.0.0.0/0"}),
                    );
                }
                g["id"].clone()
            }
        };
        let (_, defaults) = self
            .srv
            .call("GET", "/v2.0/security-groups?name=default", None);
        let default = defaults["security_groups"][0]["id"].clone();
        self.srv.create(
            "ports",
            "port",
            json!({"network_id": net["id"], "security_groups": [default, sg]}),
        )
    }
}

/// Pings until it works, up to 20 s.
pub fn reaches(ns: &testbed::Netns, ip: &str) -> bool {
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
pub struct TcpServer {
    child: Child,
    peer: std::sync::mpsc::Receiver<String>,
}

impl TcpServer {
    pub fn start(ns: &testbed::Netns, port: u16) -> TcpServer {
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
    pub fn peer(&self) -> Option<String> {
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
pub fn tcp_get(ns: &testbed::Netns, ip: &str, port: u16) -> String {
    let out = ns
        .command(["nc", "-w", "3", ip, &port.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("nc");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// tcpdump on `iface` of `ns`, `-e` (link level, VLAN tags), until killed.
pub fn capture(ns: &testbed::Netns, iface: &str, filter: &[&str]) -> Child {
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

pub fn captured(c: Child) -> String {
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-INT", &c.id().to_string()])
        .status();
    let out = c.wait_with_output().expect("tcpdump output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The outside host at 203.0.113.1, the external network, and an inside network
/// (10.0.0.0/24) behind a router with its gateway there; returns (external, inside).
pub fn routed_inside(t: &Cloud) -> (Value, Value) {
    ip(
        &t.outside,
        &["addr", "add", "203.0.113.1/24", "dev", "eth0"],
    );
    let (ext, _) = external(t);
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
    (ext, net)
}

pub fn external(t: &Cloud) -> (Value, Value) {
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
