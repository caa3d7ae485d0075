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

#[test]
fn two_hosts_switch_over_a_geneve_tunnel() {
    if !testbed::require_root("two_hosts_switch_over_a_geneve_tunnel") {
        return;
    }
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

    let net = srv.create("networks", "network", json!({"name": "n"}));
    srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}),
    );
    let pa = srv.create("ports", "port", json!({"network_id": net["id"]}));
    let pb = srv.create("ports", "port", json!({"network_id": net["id"]}));
    let ((mac_a, ip_a), (mac_b, ip_b)) = (addr(&pa), addr(&pb));
    let a = testbed::Vm::plug(
        &ovs_a,
        "br-int",
        pa["id"].as_str().unwrap(),
        &mac_a,
        &format!("{ip_a}/24"),
    )
    .expect("plug a");
    let b = testbed::Vm::plug(
        &ovs_b,
        "br-int",
        pb["id"].as_str().unwrap(),
        &mac_b,
        &format!("{ip_b}/24"),
    )
    .expect("plug b");
    for (p, host) in [(&pa, "host-a"), (&pb, "host-b")] {
        let path = format!("/v2.0/ports/{}", p["id"].as_str().unwrap());
        wait_until("the port to turn ACTIVE", Duration::from_secs(20), || {
            let (_, v) = srv.call("GET", &path, None);
            v["port"]["status"] == "ACTIVE" && v["port"]["binding:host_id"] == host
        });
    }
    let dumps = || {
        format!(
            "host a:\n{}\nhost b:\n{}\ncontroller a:\n{}\ncontroller b:\n{}",
            ovs_a.ofctl(["dump-flows", "br-int"]).unwrap_or_default(),
            ovs_b.ofctl(["dump-flows", "br-int"]).unwrap_or_default(),
            ctl_a.log(),
            ctl_b.log()
        )
    };
    assert!(a.pings(&ip_b), "a (host a) reaches b (host b)\n{}", dumps());
    assert!(b.pings(&ip_a), "b reaches a");
}
