//! The cloud around the controller in end-to-end tests: `dragonflow controller` processes
//! on real OVS instances, two hosts joined by an underlay wire, VMs plugged for ports made
//! through the API.

use super::Server;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Controller(pub Child, tempfile::NamedTempFile);

impl Controller {
    /// `dragonflow controller` for chassis `name` on `ovs`, following `srv`'s NB listener.
    pub fn start(srv: &Server, ovs: &testbed::Ovs, name: &str, ip: &str) -> Controller {
        Controller::start_nb(&srv.nb_url, ovs, name, ip)
    }

    /// The same, with `--nb nb` (a server's NB listener, or a store's URL such as
    /// `etcd://…`).
    pub fn start_nb(nb: &str, ovs: &testbed::Ovs, name: &str, ip: &str) -> Controller {
        Controller::start_nb_with(nb, ovs, name, ip, &[])
    }

    /// [`Controller::start_nb`] with `extra` flags (e.g. `--metrics-listen ADDR`).
    pub fn start_nb_with(
        nb: &str,
        ovs: &testbed::Ovs,
        name: &str,
        ip: &str,
        extra: &[&str],
    ) -> Controller {
        let mut args = vec!["--tunnel-types", "geneve,vxlan,gre"];
        args.extend_from_slice(extra);
        let c = Controller::spawn(nb, ovs, name, ip, &args, None);
        c.wait_for_br_int(ovs);
        c
    }

    /// `dragonflow controller` with `args` after the chassis, store and OVS ones, logging at
    /// `log` (default: `DF_TEST_LOG`, else info) in plain text, with the host's NB token
    /// (of the tests' secret) in `DRAGONFLOW_NB_TOKEN`.
    pub fn spawn(
        nb: &str,
        ovs: &testbed::Ovs,
        name: &str,
        ip: &str,
        args: &[&str],
        log: Option<&str>,
    ) -> Controller {
        let file = tempfile::NamedTempFile::new().expect("log");
        let level = log
            .map(str::to_string)
            .or_else(|| std::env::var("DF_TEST_LOG").ok())
            .unwrap_or_else(|| "info".into());
        let child = Command::new(env!("CARGO_BIN_EXE_dragonflow"))
            .args([
                "controller",
                "--chassis",
                name,
                "--nb",
                nb,
                "--local-ip",
                ip,
            ])
            .arg(format!("--ovsdb=unix:{}", ovs.db_sock().display()))
            .arg(format!(
                "--openflow=unix:{}",
                ovs.mgmt_sock("br-int").display()
            ))
            .args(args)
            .env("DRAGONFLOW_LOG", level)
            .env("DRAGONFLOW_NB_TOKEN", super::host_token(name))
            .env("NO_COLOR", "1")
            .stderr(Stdio::from(file.reopen().expect("log")))
            .spawn()
            .expect("controller");
        Controller(child, file)
    }

    /// Waits until the controller has made br-int.
    pub fn wait_for_br_int(&self, ovs: &testbed::Ovs) {
        wait_until("br-int", Duration::from_secs(20), || {
            ovs.vsctl(["br-exists", "br-int"]).is_ok()
        });
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.1.path()).unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until eth0 in `ns` has a link-local address past DAD (what dhclient -6 binds to,
/// and the source of RS and ND).
pub fn wait_link_local(ns: &testbed::Netns) {
    wait_until(
        "a link-local address past DAD",
        Duration::from_secs(10),
        || {
            ns.exec(["ip", "-6", "addr", "show", "dev", "eth0", "scope", "link"])
                .is_ok_and(|s| s.contains("fe80::") && !s.contains("tentative"))
        },
    );
}

pub fn addr(port: &Value) -> (String, String) {
    (
        port["mac_address"].as_str().unwrap().to_string(),
        port["fixed_ips"][0]["ip_address"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

/// The underlay of a host: `br-phy` (netdev) holding its end of the wire, with the host's
/// tunnel address on it.
pub fn underlay(ovs: &testbed::Ovs, nic: &str, cidr: &str) {
    ovs.add_nic_bridge("br-phy", nic, Some(cidr))
        .expect("underlay");
}

/// Two hosts, each with its own OVS (and underlay on br-phy) and controller.
pub struct TwoHosts {
    pub srv: Server,
    pub ovs: [testbed::Ovs; 2],
    pub ctl: [Controller; 2],
}

pub fn two_hosts() -> TwoHosts {
    let srv = Server::start();
    let nb = srv.nb_url.clone();
    two_hosts_on(srv, &nb)
}

/// The two hosts' chassis names and tunnel addresses.
pub const HOSTS: [(&str, &str); 2] = [("host-a", "192.0.2.1"), ("host-b", "192.0.2.2")];

/// Two hosts whose controllers follow `nb` (the server's NB listener or its store's URL).
pub fn two_hosts_on(srv: Server, nb: &str) -> TwoHosts {
    two_hosts_with(srv, nb, [&[], &[]])
}

/// [`two_hosts_on`], with `extra` flags for each host's controller.
pub fn two_hosts_with(srv: Server, nb: &str, extra: [&[&str]; 2]) -> TwoHosts {
    let (ovs_a, ovs_b) = (
        testbed::Ovs::start().expect("ovs a"),
        testbed::Ovs::start().expect("ovs b"),
    );
    testbed::veth("ul0", ovs_a.own_netns(), "ul0", ovs_b.own_netns()).expect("underlay wire");
    underlay(&ovs_a, "ul0", "192.0.2.1/24");
    underlay(&ovs_b, "ul0", "192.0.2.2/24");
    let ctl_a = Controller::start_nb_with(nb, &ovs_a, HOSTS[0].0, HOSTS[0].1, extra[0]);
    let ctl_b = Controller::start_nb_with(nb, &ovs_b, HOSTS[1].0, HOSTS[1].1, extra[1]);
    TwoHosts {
        srv,
        ovs: [ovs_a, ovs_b],
        ctl: [ctl_a, ctl_b],
    }
}

impl TwoHosts {
    /// Replaces host `h`'s controller (stopped by `kill -SIGNAL`, then started again
    /// following `nb`) while `vm` pings `ip` every 50 ms for 3 s; panics unless every one
    /// of the 60 pings was answered.
    pub fn restart_under_ping(
        &mut self,
        h: usize,
        nb: &str,
        signal: &str,
        vm: &testbed::Vm,
        ip: &str,
    ) {
        let ping = vm
            .ns
            .command(["ping", "-i", "0.05", "-c", "60", ip])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ping");
        std::thread::sleep(Duration::from_millis(500));
        let pid = self.ctl[h].0.id().to_string();
        Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill");
        let _ = self.ctl[h].0.wait();
        std::thread::sleep(Duration::from_millis(500));
        let (name, addr) = HOSTS[h];
        self.ctl[h] = Controller::start_nb(nb, &self.ovs[h], name, addr);
        let out = ping.wait_with_output().expect("ping");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(" 60 received"),
            "packets lost across the restart (kill -{signal}):\n{text}\n{}",
            self.dumps()
        );
    }

    pub fn dumps(&self) -> String {
        format!(
            "host a:\n{}\nhost b:\n{}\ncontroller a:\n{}\ncontroller b:\n{}",
            self.ovs[0]
                .ofctl(["dump-flows", "br-int"])
                .unwrap_or_default(),
            self.ovs[1]
                .ofctl(["dump-flows", "br-int"])
                .unwrap_or_default(),
            self.ctl[0].log(),
            self.ctl[1].log()
        )
    }

    /// A VM on host `h` (0 or 1) for a new port of `net` (a /24, or a /64 when its first
    /// address is IPv6), once that port is ACTIVE there.
    /// `n` VMs on `net` on host `h`, one after another, and how long each took to wire.
    pub fn timed_vms(
        &self,
        net: &Value,
        h: usize,
        n: usize,
    ) -> (Vec<(testbed::Vm, String)>, Vec<Duration>) {
        (0..n)
            .map(|_| {
                let t = Instant::now();
                let vm = self.vm(net, h);
                (vm, t.elapsed())
            })
            .unzip()
    }

    pub fn vm(&self, net: &Value, h: usize) -> (testbed::Vm, String) {
        let p = self
            .srv
            .create("ports", "port", json!({"network_id": net["id"]}));
        let ip = addr(&p).1;
        let len = if ip.contains(':') { 64 } else { 24 };
        (self.plug(&p, h, len), ip)
    }

    /// Plugs `port` (as the API returned it) into a VM on host `h` with its first fixed IP
    /// and `prefix_len`, and waits for the port to turn ACTIVE there.
    /// A VLAN-aware VM on host a: port `parent` plugged as its `eth0` (no address), and
    /// an Open vSwitch of its own in its namespace (this kernel has no 8021q module) with
    /// bridge `br-vm` holding `eth0` as a port with `eth0_port` (`vlan_mode=…`, `tag=…`,
    /// `trunks=…`; none: every VLAN). Returns once the parent is ACTIVE on host a. Drop
    /// the OVS before the VM: its daemons run in the VM's namespace.
    pub fn vlan_aware_vm(&self, parent: &Value, eth0_port: &[&str]) -> (testbed::Ovs, testbed::Vm) {
        let (mac, _) = addr(parent);
        let id = parent["id"].as_str().unwrap();
        let vm = testbed::Vm::plug_unaddressed(&self.ovs[0], "br-int", id, &mac).expect("plug");
        let ovs = testbed::Ovs::start_in_netns(&vm.ns).expect("the VM's own OVS");
        ovs.vsctl([
            "add-br",
            "br-vm",
            "--",
            "set",
            "bridge",
            "br-vm",
            "datapath_type=netdev",
        ])
        .expect("br-vm");
        let mut add = vec!["add-port", "br-vm", "eth0"];
        if !eth0_port.is_empty() {
            add.extend(["--", "set", "port", "eth0"]);
            add.extend(eth0_port);
        }
        ovs.vsctl(add).expect("the trunk port");
        wait_until("the parent to turn ACTIVE", Duration::from_secs(20), || {
            let (_, v) = self.srv.call("GET", &format!("/v2.0/ports/{id}"), None);
            v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == "host-a"
        });
        (ovs, vm)
    }

    pub fn plug(&self, port: &Value, h: usize, prefix_len: u8) -> testbed::Vm {
        let (mac, ip) = addr(port);
        let id = port["id"].as_str().unwrap().to_string();
        let vm = testbed::Vm::plug(
            &self.ovs[h],
            "br-int",
            &id,
            &mac,
            &format!("{ip}/{prefix_len}"),
        )
        .expect("plug");
        let host = ["host-a", "host-b"][h];
        wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
            let (_, v) = self.srv.call("GET", &format!("/v2.0/ports/{id}"), None);
            v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == host
        });
        vm
    }
}

/// br-int's flows on `ovs` without counters, sorted: two dumps compare equal when the
/// switch holds the same flows.
pub fn flows(ovs: &testbed::Ovs) -> Vec<String> {
    let dump = ovs
        .ofctl(["--no-stats", "dump-flows", "br-int"])
        .expect("dump-flows");
    let mut l: Vec<String> = dump
        .lines()
        .filter(|l| l.contains("table="))
        .map(str::to_string)
        .collect();
    l.sort();
    l
}

/// A server on the store at `url` and two hosts whose controllers read that store
/// themselves (no server in their path): VMs on both hosts ping each other, and the trace
/// of that path agrees with Open vSwitch.
pub fn vms_ping_on_store(url: &str) {
    let srv = Server::start_on(url);
    let t = two_hosts_on(srv, url);
    let net = t.srv.network("n", "10.0.0.0/24");
    let (a, ip_a) = t.vm(&net, 0);
    let (b, ip_b) = t.vm(&net, 1);
    assert!(a.pings(&ip_b), "{}", t.dumps());
    assert!(b.pings(&ip_a));
    // The store the controllers read directly, through the server's NB: the same tables.
    super::trace::delivered(&t.srv, &t.ovs[0], &ip_a, &ip_b, None);
}

/// br-int's groups, one line each, sorted (to compare a switch's groups with another's).
pub fn groups(ovs: &testbed::Ovs) -> Vec<String> {
    let dump = ovs
        .ofctl(["-O", "OpenFlow13", "dump-groups", "br-int"])
        .expect("dump-groups");
    let mut l: Vec<String> = dump
        .lines()
        .filter(|l| l.contains("group_id="))
        .map(str::to_string)
        .collect();
    l.sort();
    l
}

/// Renames port `id` through the API at `url` with a change of about 5 kB (the binding
/// profile is free-form): the load that fills a stopped host's sockets after about a
/// thousand changes.
pub fn pad_port(agent: &ureq::Agent, url: &str, id: &str, i: usize) {
    let (long, pad) = ("x".repeat(240), "p".repeat(4000));
    let body = json!({"port": {"name": format!("{i}-{long}"), "description": long,
        "binding:profile": {"pad": pad}}});
    let r = agent
        .put(&format!("{url}/v2.0/ports/{id}"))
        .send_json(&body)
        .expect("rename");
    assert_eq!(r.status().as_u16(), 200);
}

/// Sends `sig` (`-STOP`, `-CONT`, ...) to process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill {sig} {pid}");
}
