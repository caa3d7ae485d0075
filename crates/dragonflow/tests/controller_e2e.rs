//! End to end on one host: the API server, a real OVS, and `dragonflow controller`; ports
//! created through the REST API, VMs plugged with their iface-id. The controller binds the
//! ports, they turn ACTIVE, the VMs ping each other, and a deleted port's traffic stops.

mod common;

use common::Server;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Controller(Child, tempfile::NamedTempFile);

impl Controller {
    /// `dragonflow controller` for chassis `name` on `ovs`, following `srv`.
    fn start(srv: &Server, ovs: &testbed::Ovs, name: &str, ip: &str) -> Controller {
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
                "geneve,vxlan",
            ])
            .arg(format!("--ovsdb=unix:{}", ovs.db_sock().display()))
            .arg(format!(
                "--openflow=unix:{}",
                ovs.mgmt_sock("br-int").display()
            ))
            .env("DRAGONFLOW_LOG", "info")
            .stderr(Stdio::from(log.reopen().expect("log")))
            .spawn()
            .expect("controller");
        wait_until("br-int", Duration::from_secs(20), || {
            ovs.vsctl(["br-exists", "br-int"]).is_ok()
        });
        Controller(child, log)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.1.path()).unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn addr(port: &Value) -> (String, String) {
    (
        port["mac_address"].as_str().unwrap().to_string(),
        port["fixed_ips"][0]["ip_address"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

#[test]
fn one_host_switches_between_ports_created_through_the_api() {
    if !testbed::require_root("one_host_switches_between_ports_created_through_the_api") {
        return;
    }
    let srv = Server::start();
    let ovs = testbed::Ovs::start().expect("ovs");
    let ctl = Controller::start(&srv, &ovs, "host-a", "192.0.2.1");
    let ctl_log = || ctl.log();

    let net = srv.create("networks", "network", json!({"name": "n"}));
    srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}),
    );
    let pa = srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "port_security_enabled": false}),
    );
    let pb = srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "port_security_enabled": false}),
    );
    let ((mac_a, ip_a), (mac_b, ip_b)) = (addr(&pa), addr(&pb));
    let id_b = pb["id"].as_str().unwrap().to_string();
    let a = testbed::Vm::plug(
        &ovs,
        "br-int",
        pa["id"].as_str().unwrap(),
        &mac_a,
        &format!("{ip_a}/24"),
    )
    .expect("plug a");
    let b =
        testbed::Vm::plug(&ovs, "br-int", &id_b, &mac_b, &format!("{ip_b}/24")).expect("plug b");

    for p in [&pa, &pb] {
        let path = format!("/v2.0/ports/{}", p["id"].as_str().unwrap());
        wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
            let (_, v) = srv.call("GET", &path, None);
            v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == "host-a"
        });
    }
    assert!(
        a.pings(&ip_b),
        "a reaches b\n{}\n{}",
        ovs.ofctl(["dump-flows", "br-int"]).unwrap_or_default(),
        ctl_log()
    );
    assert!(b.pings(&ip_a), "b reaches a");

    // Deleting b stops its traffic and removes its flows.
    assert_eq!(
        srv.call("DELETE", &format!("/v2.0/ports/{id_b}"), None).0,
        204
    );
    wait_until("b's flows to go", Duration::from_secs(10), || {
        !ovs.ofctl(["dump-flows", "br-int"])
            .unwrap_or_default()
            .contains(&mac_b)
    });
    assert!(!a.pings(&ip_b), "b's traffic must stop");
}

/// The underlay of a host: `br-phy` (netdev) holding its end of the wire, with the host's
/// tunnel address on it.
fn underlay(ovs: &testbed::Ovs, nic: &str, cidr: &str) {
    ovs.vsctl([
        "add-br",
        "br-phy",
        "--",
        "set",
        "bridge",
        "br-phy",
        "datapath_type=netdev",
    ])
    .expect("br-phy");
    ovs.vsctl(["add-port", "br-phy", nic]).expect("nic");
    for args in [
        vec!["link", "set", nic, "up"],
        vec!["addr", "add", cidr, "dev", "br-phy"],
        vec!["link", "set", "br-phy", "up"],
    ] {
        let out = ovs.cmd("ip").args(&args).output().expect("ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Two hosts, each with its own OVS (and underlay on br-phy) and controller.
struct TwoHosts {
    srv: Server,
    ovs: [testbed::Ovs; 2],
    ctl: [Controller; 2],
}

fn two_hosts() -> TwoHosts {
    let srv = Server::start();
    let (ovs_a, ovs_b) = (
        testbed::Ovs::start().expect("ovs a"),
        testbed::Ovs::start().expect("ovs b"),
    );
    testbed::veth("ul0", ovs_a.own_netns(), "ul0", ovs_b.own_netns()).expect("underlay wire");
    underlay(&ovs_a, "ul0", "192.0.2.1/24");
    underlay(&ovs_b, "ul0", "192.0.2.2/24");
    let ctl_a = Controller::start(&srv, &ovs_a, "host-a", "192.0.2.1");
    let ctl_b = Controller::start(&srv, &ovs_b, "host-b", "192.0.2.2");
    TwoHosts {
        srv,
        ovs: [ovs_a, ovs_b],
        ctl: [ctl_a, ctl_b],
    }
}

impl TwoHosts {
    fn dumps(&self) -> String {
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

    /// A VM on host `h` (0 or 1) for a new port of `net`, once that port is ACTIVE there.
    fn vm(&self, net: &Value, h: usize) -> (testbed::Vm, String) {
        let p = self
            .srv
            .create("ports", "port", json!({"network_id": net["id"]}));
        let (mac, ip) = addr(&p);
        let id = p["id"].as_str().unwrap().to_string();
        let vm = testbed::Vm::plug(&self.ovs[h], "br-int", &id, &mac, &format!("{ip}/24"))
            .expect("plug");
        let host = ["host-a", "host-b"][h];
        wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
            let (_, v) = self.srv.call("GET", &format!("/v2.0/ports/{id}"), None);
            v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == host
        });
        (vm, ip)
    }
}

fn across_hosts(network_type: &str) {
    let t = two_hosts();
    let net = t.srv.create(
        "networks",
        "network",
        json!({"name": "n", "provider:network_type": network_type}),
    );
    t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}),
    );
    let (a, ip_a) = t.vm(&net, 0);
    let (b, ip_b) = t.vm(&net, 1);
    assert!(
        a.pings(&ip_b),
        "a (host a) reaches b (host b) over {network_type}\n{}",
        t.dumps()
    );
    assert!(b.pings(&ip_a), "b reaches a");
}

#[test]
fn two_hosts_switch_over_a_geneve_tunnel() {
    if !testbed::require_root("two_hosts_switch_over_a_geneve_tunnel") {
        return;
    }
    across_hosts("geneve");
}

#[test]
fn two_hosts_switch_over_a_vxlan_tunnel() {
    if !testbed::require_root("two_hosts_switch_over_a_vxlan_tunnel") {
        return;
    }
    across_hosts("vxlan");
}

/// `kill -9` of a controller while a VM pings across hosts: the flows stay (fail_mode
/// secure), nothing is lost, and the restarted controller finds nothing to change.
#[test]
fn a_killed_controller_loses_no_packet_and_restarts_hitless() {
    if !testbed::require_root("a_killed_controller_loses_no_packet_and_restarts_hitless") {
        return;
    }
    let mut t = two_hosts();
    let net = t.srv.create("networks", "network", json!({"name": "n"}));
    t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}),
    );
    let (a, _) = t.vm(&net, 0);
    let (_b, ip_b) = t.vm(&net, 1);
    assert!(a.pings(&ip_b), "{}", t.dumps());
    let before = t.ovs[0]
        .ofctl(["--no-stats", "dump-flows", "br-int"])
        .expect("dump");
    let ping =
        a.ns.command(["ping", "-i", "0.05", "-c", "60", &ip_b])
            .stdout(Stdio::piped())
            .spawn()
            .expect("ping");
    std::thread::sleep(Duration::from_millis(500));
    let _ = t.ctl[0].0.kill();
    let _ = t.ctl[0].0.wait();
    std::thread::sleep(Duration::from_millis(500));
    t.ctl[0] = Controller::start(&t.srv, &t.ovs[0], "host-a", "192.0.2.1");
    let out = ping.wait_with_output().expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("60 received"),
        "packets lost across the restart:\n{text}\n{}",
        t.dumps()
    );
    wait_until(
        "the restarted controller to be ready",
        Duration::from_secs(10),
        || t.ctl[0].log().contains("controller ready"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let after = t.ovs[0]
        .ofctl(["--no-stats", "dump-flows", "br-int"])
        .expect("dump");
    let sorted = |s: &str| {
        let mut l: Vec<String> = s
            .lines()
            .filter(|l| l.contains("table="))
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    assert_eq!(sorted(&before), sorted(&after), "the restart changed flows");
}

/// ovs-vswitchd restarts (its flows are gone): the controller notices, reconnects and
/// refills the switch, and traffic flows again.
#[test]
fn a_restarted_vswitchd_gets_its_flows_back() {
    if !testbed::require_root("a_restarted_vswitchd_gets_its_flows_back") {
        return;
    }
    let t = two_hosts();
    let net = t.srv.create("networks", "network", json!({"name": "n"}));
    t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}),
    );
    let (a, _) = t.vm(&net, 0);
    let (_b, ip_b) = t.vm(&net, 1);
    assert!(a.pings(&ip_b), "{}", t.dumps());
    let count = |ovs: &testbed::Ovs| {
        ovs.ofctl(["--no-stats", "dump-flows", "br-int"])
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("table="))
            .count()
    };
    let before = count(&t.ovs[0]);
    t.ovs[0].restart_vswitchd().expect("restart ovs-vswitchd");
    let restarted = Instant::now();
    wait_until("the flows to come back", Duration::from_secs(15), || {
        count(&t.ovs[0]) == before
    });
    eprintln!(
        "flows restored {:?} after ovs-vswitchd was started again",
        restarted.elapsed()
    );
    assert!(a.pings(&ip_b), "traffic after the restart\n{}", t.dumps());
}

/// Two projects' networks with the same CIDR over the same two hosts stay apart: each VM
/// reaches the address in its own network, and learns that port's MAC, not the other's.
#[test]
fn same_cidr_in_two_projects_stays_isolated() {
    if !testbed::require_root("same_cidr_in_two_projects_stays_isolated") {
        return;
    }
    let t = two_hosts();
    let mut nets = Vec::new();
    for project in ["alice", "bob"] {
        let h = [("X-Project-Id", project)];
        let (st, n) = t.srv.call_as(
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"name": project}})),
            &h,
        );
        assert_eq!(st, 201, "{n}");
        let sub = json!({"subnet": {"network_id": n["network"]["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}});
        assert_eq!(t.srv.call_as("POST", "/v2.0/subnets", Some(sub), &h).0, 201);
        nets.push(n["network"].clone());
    }
    // Ports are created by the admin default context on each project's network.
    let (a1, _) = t.vm(&nets[0], 0);
    let (_a2, ip_a2) = t.vm(&nets[0], 1);
    let (b1, _) = t.vm(&nets[1], 0);
    let (_b2, ip_b2) = t.vm(&nets[1], 1);
    assert_eq!(ip_a2, ip_b2, "both networks hand out the same addresses");
    assert!(a1.pings(&ip_a2), "{}", t.dumps());
    assert!(b1.pings(&ip_b2));
    let mac_of = |vm: &testbed::Vm| {
        vm.ns
            .exec(["ip", "neigh", "show", &ip_a2])
            .unwrap_or_default()
    };
    let (seen_a, seen_b) = (mac_of(&a1), mac_of(&b1));
    assert!(
        seen_a.contains("lladdr") && seen_b.contains("lladdr"),
        "{seen_a} / {seen_b}"
    );
    assert_ne!(
        seen_a, seen_b,
        "each network answers with its own port's MAC"
    );
}

/// ARP for a known address is answered on the asking VM's host: no ARP request for it
/// crosses the underlay to the other host, while the ping itself does.
#[test]
fn arp_for_a_known_address_never_crosses_the_underlay() {
    if !testbed::require_root("arp_for_a_known_address_never_crosses_the_underlay") {
        return;
    }
    let t = two_hosts();
    let net = t.srv.create("networks", "network", json!({"name": "n"}));
    t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}),
    );
    let (a, _) = t.vm(&net, 0);
    let (_b, ip_b) = t.vm(&net, 1);
    let host_b = t.ovs[1].own_netns().expect("host b namespace");
    let capture = host_b
        .command([
            "tcpdump", "-l", "-n", "-i", "ul0", "-c", "200", "udp", "port", "6081",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(700));
    assert!(a.pings(&ip_b), "{}", t.dumps());
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(capture.id().to_string())
        .status();
    let out = capture.wait_with_output().expect("capture");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ICMP echo request"),
        "the ping crossed in the tunnel: {text}"
    );
    assert!(
        !text.contains("who-has"),
        "an ARP request crossed the underlay:\n{text}"
    );
}
