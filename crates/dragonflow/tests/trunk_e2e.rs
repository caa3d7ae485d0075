//! Trunk ports end to end: a VLAN-aware VM on host a, VMs on the subports' networks on
//! host b, Geneve between them. This kernel has no 8021q module, so the VM cannot make
//! `eth0.101`: the VM's namespace runs an Open vSwitch of its own whose bridge holds
//! `eth0` as the trunk (untagged frames on native VLAN 100) and internal ports as access
//! ports (`par` untagged, `v101`, `v102`), each with its port's MAC. Real `dhclient` and
//! `ping` run on each of them. The trunk is made with the `openstack` CLI.

mod common;

use common::cloud::{TwoHosts, addr, two_hosts, wait_until};
use serde_json::{Value, json};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// A VLAN-aware VM on host a: the parent port plugged as `eth0`, and the VM's own bridge.
/// Fields drop in order: the bridge's OVS stops before the VM's namespace goes.
struct TrunkVm {
    ovs: testbed::Ovs,
    vm: testbed::Vm,
    dir: tempfile::TempDir,
}

impl TrunkVm {
    fn new(t: &TwoHosts, parent: &Value) -> TrunkVm {
        let (ovs, vm) = t.vlan_aware_vm(
            parent,
            &["vlan_mode=native-untagged", "tag=100", "trunks=100,101,102"],
        );
        vm.ns.resolv_conf().expect("/etc/netns/NS/resolv.conf");
        TrunkVm {
            ovs,
            vm,
            dir: tempfile::tempdir().expect("tmp"),
        }
    }

    /// An access port `dev` on VLAN `vid` with `mac`, up, as a guest's VLAN interface.
    fn access(&self, dev: &str, vid: u16, mac: &str) {
        self.ovs
            .vsctl([
                "add-port",
                "br-vm",
                dev,
                &format!("tag={vid}"),
                "--",
                "set",
                "interface",
                dev,
                "type=internal",
                &format!("mac=\"{mac}\""),
            ])
            .expect("access port");
        wait_until(dev, Duration::from_secs(10), || {
            self.vm.ns.ip(["link", "show", dev]).is_ok()
        });
        let ns = &self.vm.ns;
        ns.ip(["link", "set", dev, "address", mac]).expect("mac");
        ns.ip(["link", "set", dev, "up"]).expect("up");
        let _ = ns.exec(["ethtool", "-K", dev, "tx", "off"]);
    }

    fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// `dhclient ARGS DEV` with the interface's own pid and lease files.
    fn dhclient(&self, dev: &str, args: &[&str]) -> Output {
        let (pf, lf) = (
            self.file(&format!("{dev}.pid")),
            self.file(&format!("{dev}.leases")),
        );
        self.vm
            .ns
            .dhclient(dev, &pf, &lf, args)
            .expect("resolv.conf")
            .output()
            .expect("dhclient")
    }

    /// Takes a lease on `dev` and returns its IPv4 address.
    fn lease(&self, dev: &str) -> String {
        let out = self.dhclient(dev, &["-1"]);
        assert!(
            out.status.success(),
            "dhclient on {dev}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.ipv4(dev).unwrap_or_default()
    }

    fn ipv4(&self, dev: &str) -> Option<String> {
        let out = self
            .vm
            .ns
            .exec(["ip", "-4", "-o", "addr", "show", "dev", dev])
            .ok()?;
        let cidr = out.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
        Some(cidr.split('/').next()?.to_string())
    }

    /// One ping out of `dev`.
    fn ping(&self, dev: &str, ip: &str, count: &str) -> bool {
        self.vm
            .ns
            .exec(["ping", "-I", dev, "-c", count, "-i", "0.2", "-W", "1", ip])
            .is_ok()
    }
}

impl Drop for TrunkVm {
    fn drop(&mut self) {
        for dev in ["par", "v101", "v102"] {
            let _ = self.dhclient(dev, &["-x"]);
        }
    }
}

/// A network with one DHCP subnet and no gateway (a VM on three networks wants no three
/// default routes).
fn network(t: &TwoHosts, name: &str, cidr: &str) -> Value {
    let net = t.srv.create("networks", "network", json!({"name": name}));
    t.srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 4, "cidr": cidr, "gateway_ip": null}),
    );
    net
}

fn port(t: &TwoHosts, net: &Value) -> Value {
    t.srv
        .create("ports", "port", json!({"network_id": net["id"]}))
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

/// Host a's flows and groups, without counters, sorted.
fn dump(t: &TwoHosts) -> String {
    let flows = t.ovs[0]
        .ofctl(["-O", "OpenFlow13", "--no-stats", "dump-flows", "br-int"])
        .unwrap_or_default();
    let groups = t.ovs[0]
        .ofctl(["-O", "OpenFlow13", "dump-groups", "br-int"])
        .unwrap_or_default();
    let mut lines: Vec<&str> = flows.lines().chain(groups.lines()).collect();
    lines.sort();
    lines.join("\n")
}

/// Whether `vm` sees an ICMP packet from `src` while `during` runs.
fn heard(vm: &testbed::Vm, src: &str, during: impl FnOnce()) -> bool {
    let cap = vm
        .ns
        .command([
            "timeout", "6", "tcpdump", "-l", "-n", "-i", "eth0", "-c", "1", "icmp", "and", "src",
            src,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(800));
    during();
    let out = cap.wait_with_output().expect("tcpdump");
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

#[test]
fn a_vlan_aware_vm_reaches_each_subports_network_across_hosts() {
    if !testbed::require_root("a_vlan_aware_vm_reaches_each_subports_network_across_hosts") {
        return;
    }
    let t = two_hosts();
    let pnet = network(&t, "parent-net", "10.10.0.0/24");
    let n101 = network(&t, "net101", "10.101.0.0/24");
    let n102 = network(&t, "net102", "10.102.0.0/24");
    let parent = port(&t, &pnet);
    let s101 = port(&t, &n101);
    let s102 = port(&t, &n102);
    let trunk = t.srv.os(&[
        "network",
        "trunk",
        "create",
        "--parent-port",
        id(&parent),
        "--subport",
        &format!(
            "port={},segmentation-type=vlan,segmentation-id=101",
            id(&s101)
        ),
        "trunk1",
    ]);
    assert_eq!(trunk["port_id"], parent["id"], "{trunk}");
    // The VMs on host b, one per network.
    let (bp, bp_ip) = t.vm(&pnet, 1);
    let (_b101, b101_ip) = t.vm(&n101, 1);
    let (_b102, b102_ip) = t.vm(&n102, 1);

    let vm = TrunkVm::new(&t, &parent);
    vm.access("par", 100, &addr(&parent).0);
    vm.access("v101", 101, &addr(&s101).0);
    // Each interface gets its own port's address by DHCP from its own network.
    assert_eq!(vm.lease("par"), addr(&parent).1, "{}", t.dumps());
    assert_eq!(vm.lease("v101"), addr(&s101).1, "{}", t.dumps());
    let (_, v) = t
        .srv
        .call("GET", &format!("/v2.0/ports/{}", id(&s101)), None);
    assert_eq!(
        (
            &v["port"]["status"],
            &v["port"]["binding:host_id"],
            &v["port"]["device_owner"]
        ),
        (&json!("ACTIVE"), &json!("host-a"), &json!("trunk:subport")),
        "{v}"
    );
    // Over Geneve to host b: each to its own network's VM.
    assert!(
        vm.ping("v101", &b101_ip, "3"),
        "v101 → net101\n{}",
        t.dumps()
    );
    assert!(
        vm.ping("par", &bp_ip, "3"),
        "par → parent-net\n{}",
        t.dumps()
    );
    // The subport's frame, tagged 101 on the parent's port, as OVS takes it.
    let r = common::trace::delivered(&t.srv, &t.ovs[0], &addr(&s101).1, &b101_ip, None);
    assert!(r.verdict.contains("host-b"), "{}", r.out);
    // VLAN 101 is net101 only: a frame to the parent network's VM (its MAC known, as if
    // on-link) never reaches it, while the same from the parent's interface does.
    let (bp_mac, _) = {
        let (_, v) = t.srv.call("GET", "/v2.0/ports", None);
        let p = v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["fixed_ips"][0]["ip_address"] == json!(bp_ip))
            .expect("host b's parent-net VM")
            .clone();
        addr(&p)
    };
    vm.vm
        .ns
        .ip(["route", "add", &format!("{bp_ip}/32"), "dev", "v101"])
        .expect("route");
    vm.vm
        .ns
        .ip([
            "neigh",
            "replace",
            &bp_ip,
            "lladdr",
            &bp_mac,
            "dev",
            "v101",
            "nud",
            "permanent",
        ])
        .expect("neighbour");
    let v101_ip = addr(&s101).1;
    assert!(
        !heard(&bp, &v101_ip, || {
            vm.ping("v101", &bp_ip, "3");
        }),
        "a frame on VLAN 101 reached the parent's network\n{}",
        t.dumps()
    );
    vm.vm
        .ns
        .ip(["route", "del", &format!("{bp_ip}/32"), "dev", "v101"])
        .expect("route");
    // The control: the same capture hears the parent's interface.
    assert!(
        heard(&bp, &addr(&parent).1, || {
            vm.ping("par", &bp_ip, "2");
        }),
        "the capture hears the parent's pings"
    );

    // A second subport, added live: time to its first ping (address set by hand first),
    // then its own lease.
    let before = dump(&t);
    let start = Instant::now();
    let (st, v) = t.srv.call(
        "PUT",
        &format!("/v2.0/trunks/{}/add_subports", id(&trunk)),
        Some(
            json!({"sub_ports": [{"port_id": s102["id"], "segmentation_type": "vlan",
            "segmentation_id": 102}]}),
        ),
    );
    assert_eq!(st, 200, "{v}");
    vm.access("v102", 102, &addr(&s102).0);
    vm.vm
        .ns
        .ip([
            "addr",
            "add",
            &format!("{}/24", addr(&s102).1),
            "dev",
            "v102",
        ])
        .expect("address");
    let mut first = None;
    while start.elapsed() < Duration::from_secs(30) {
        if vm.ping("v102", &b102_ip, "1") {
            first = Some(start.elapsed());
            break;
        }
    }
    let first = first.unwrap_or_else(|| panic!("v102 never reached net102\n{}", t.dumps()));
    println!("add_subports to the subport's first ping (debug build): {first:?}");
    vm.vm
        .ns
        .ip(["addr", "flush", "dev", "v102"])
        .expect("flush");
    assert_eq!(vm.lease("v102"), addr(&s102).1, "{}", t.dumps());
    assert!(
        vm.ping("v102", &b102_ip, "3"),
        "v102 → net102\n{}",
        t.dumps()
    );
    let shown = t.srv.os(&["network", "trunk", "show", id(&trunk)]);
    assert_eq!(shown["status"], "ACTIVE", "{shown}");
    assert_eq!(
        shown["sub_ports"].as_array().map(Vec::len),
        Some(2),
        "{shown}"
    );

    // Removed with the CLI: every flow of it goes, back to the dump before it came.
    let _ = vm.dhclient("v102", &["-x"]);
    t.srv.os_ok(&[
        "network",
        "trunk",
        "unset",
        "--subport",
        id(&s102),
        id(&trunk),
    ]);
    let mut after = String::new();
    let settled = Instant::now();
    while settled.elapsed() < Duration::from_secs(15) {
        after = dump(&t);
        if after == before {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if after != before {
        let b: std::collections::BTreeSet<&str> = before.lines().collect();
        let a: std::collections::BTreeSet<&str> = after.lines().collect();
        let (_, port) = t
            .srv
            .call("GET", &format!("/v2.0/ports/{}", id(&s102)), None);
        let log = t.ctl[0].log();
        let about: Vec<&str> = log.lines().filter(|l| l.contains(id(&s102))).collect();
        panic!(
            "host a's flows differ after the subport left:\nleft behind: {:#?}\nmissing: {:#?}\nthe port: {port}\nhost a on it: {about:#?}",
            a.difference(&b).collect::<Vec<_>>(),
            b.difference(&a).collect::<Vec<_>>()
        );
    }
    assert!(!vm.ping("v102", &b102_ip, "2"), "VLAN 102 is nothing now");
    assert!(vm.ping("v101", &b101_ip, "2"), "VLAN 101 still works");
    let (_, v) = t
        .srv
        .call("GET", &format!("/v2.0/ports/{}", id(&s102)), None);
    assert_eq!(v["port"]["device_owner"], "", "{v}");
    assert_eq!(v["port"]["status"], "DOWN", "{v}");
    drop(vm);
    // The parent is still bound (Nova would unbind it when the VM goes): in use.
    let err = t
        .srv
        .openstack(&["network", "trunk", "delete", id(&trunk)])
        .expect_err("a trunk with a bound parent is in use");
    assert!(err.contains("in use"), "{err}");
}
