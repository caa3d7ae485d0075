//! The CNI plugin's nested mode end to end (Kuryr's nested VLAN): a VM on host a whose port
//! is a trunk's parent runs an Open vSwitch of its own (`br-vm`, `eth0` its trunk port:
//! this kernel has no 8021q module, so no `eth0.N`), as trunk_e2e's VLAN-aware VM does. The
//! plugin, executed as a runtime in that VM executes it with `nested` in its configuration,
//! makes each container's port a subport of the VM's trunk on a VLAN of its own and plugs
//! the container into `br-vm` as an access port of that VLAN. The containers reach a VM
//! on host b and each other; DEL leaves no subport, no port and no OVS port.

mod common;

use common::cloud::TwoHosts;
use common::cni::{PROJECT, Plugin, address, conf_for, pings, pod, pods_cloud, pods_vm};
use serde_json::{Value, json};

const AS: [(&str, &str); 1] = [("X-Project-Id", PROJECT)];

/// The VM: its own OVS first (dropped before the namespace goes), then its namespace.
struct NestedVm {
    ovs: testbed::Ovs,
    _vm: testbed::Vm,
    parent: String,
}

/// A VM of the project on host a, plugged as a new port of network `vms`, with its own
/// bridge `br-vm` whose trunk port is `eth0` (every VLAN; untagged frames are the VM's).
fn nested_vm(t: &TwoHosts) -> NestedVm {
    let (st, n) = t.srv.call_as(
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {"name": "vms"}})),
        &AS,
    );
    assert_eq!(st, 201, "{n}");
    let sub = json!({"subnet": {"network_id": n["network"]["id"], "ip_version": 4,
        "cidr": "10.20.0.0/24"}});
    assert_eq!(
        t.srv.call_as("POST", "/v2.0/subnets", Some(sub), &AS).0,
        201
    );
    let (st, p) = t.srv.call_as(
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"network_id": n["network"]["id"], "name": "vm-parent"}})),
        &AS,
    );
    assert_eq!(st, 201, "{p}");
    let parent = p["port"]["id"].as_str().unwrap().to_string();
    let (ovs, vm) = t.vlan_aware_vm(&p["port"], &[]);
    NestedVm {
        ovs,
        _vm: vm,
        parent,
    }
}

/// The nested configuration: the VM's OVS, its bridge, its link.
fn conf(t: &TwoHosts, vm: &NestedVm) -> Value {
    conf_for(
        &t.srv.url,
        &vm.ovs,
        "host-a",
        PROJECT,
        json!({"bridge": "br-vm", "nested": {"link_iface": "eth0"}}),
    )
}

fn tagged(t: &TwoHosts, container: &str) -> Vec<Value> {
    let (st, v) = t.srv.call(
        "GET",
        &format!("/v2.0/ports?tags=cni-container-{container}"),
        None,
    );
    assert_eq!(st, 200, "{v}");
    v["ports"].as_array().cloned().unwrap_or_default()
}

fn trunk(t: &TwoHosts, id: &str) -> Value {
    let (st, v) = t.srv.call("GET", &format!("/v2.0/trunks/{id}"), None);
    assert_eq!(st, 200, "{v}");
    v["trunk"].clone()
}

fn tap(port: &Value) -> String {
    let id: String = port["id"]
        .as_str()
        .unwrap()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(11)
        .collect();
    format!("tap{id}")
}

#[test]
fn containers_in_a_vm_are_subports_that_reach_a_vm_on_another_host_and_leave_nothing() {
    if !testbed::require_root(
        "containers_in_a_vm_are_subports_that_reach_a_vm_on_another_host_and_leave_nothing",
    ) {
        return;
    }
    let t = pods_cloud();
    let vm = nested_vm(&t);
    let plugin = Plugin::install();
    let (pod1, path1) = pod();
    let (pod2, path2) = pod();

    // A VM whose port is no trunk's parent: a clear error, and no port is made.
    let (ok, v) = plugin.exec("ADD", "nest-1", &path1, &conf(&t, &vm));
    assert!(!ok, "{v}");
    assert_eq!(v["code"], 7, "{v}");
    assert!(
        v["details"]
            .as_str()
            .unwrap_or("")
            .contains("not a trunk's parent"),
        "{v}"
    );
    assert!(tagged(&t, "nest-1").is_empty());

    let (st, tr) = t.srv.call_as(
        "POST",
        "/v2.0/trunks",
        Some(json!({"trunk": {"port_id": vm.parent, "name": "vm-trunk"}})),
        &AS,
    );
    assert_eq!(st, 201, "{tr}");
    let trunk_id = tr["trunk"]["id"].as_str().unwrap().to_string();

    let (ok, r1) = plugin.exec("ADD", "nest-1", &path1, &conf(&t, &vm));
    assert!(ok, "ADD 1: {r1}\n{}", t.dumps());
    let (ok, r2) = plugin.exec("ADD", "nest-2", &path2, &conf(&t, &vm));
    assert!(ok, "ADD 2: {r2}\n{}", t.dumps());

    // Each container's port is a subport of the VM's trunk on a VLAN of its own, bound to
    // the VM's host and ACTIVE when ADD answers; its interface is an access port of it.
    let tr = trunk(&t, &trunk_id);
    let subs = tr["sub_ports"].as_array().unwrap();
    assert_eq!(subs.len(), 2, "{tr}");
    for (c, r, vlan) in [("nest-1", &r1, 1), ("nest-2", &r2, 2)] {
        let ports = tagged(&t, c);
        assert_eq!(ports.len(), 1, "{ports:?}");
        let p = &ports[0];
        assert_eq!(p["device_owner"], "trunk:subport");
        assert_eq!(p["binding:host_id"], "host-a");
        assert_eq!(p["status"], "ACTIVE");
        assert_eq!(r["interfaces"][0]["mac"], p["mac_address"]);
        assert_eq!(
            address(r),
            p["fixed_ips"][0]["ip_address"].as_str().unwrap()
        );
        assert!(
            subs.iter()
                .any(|s| s["port_id"] == p["id"] && s["segmentation_id"] == vlan),
            "{c} on VLAN {vlan}: {tr}"
        );
        let tag = vm.ovs.vsctl(["get", "Port", &tap(p), "tag"]).unwrap();
        assert_eq!(tag.trim(), vlan.to_string(), "{c}");
    }

    // A VM of the pods network on host b, and each container: over the trunk, the tunnel.
    let (_vm_b, ip_b) = pods_vm(&t, 1);
    let ip_b = ip_b.as_str();
    assert!(
        pings(&pod1, ip_b),
        "container 1 to the VM on host b\n{}",
        t.dumps()
    );
    assert!(
        pings(&pod2, &address(&r1)),
        "container 2 to container 1\n{}",
        t.dumps()
    );

    // Container 1's frame, tagged on the VM's trunk port, as OVS takes it on host a.
    common::trace::delivered(&t.srv, &t.ovs[0], &address(&r1), ip_b, None);

    let (ok, v) = plugin.exec("CHECK", "nest-1", &path1, &conf(&t, &vm));
    assert!(ok, "CHECK: {v}");

    // Three ADDs at once: each gets a VLAN of its own (two that chose the same one at the
    // same moment are told apart by the trunk's DuplicateSubPort and the retry).
    let more: Vec<_> = (3..6).map(|i| (format!("nest-{i}"), pod())).collect();
    let conf_text = conf(&t, &vm).to_string();
    let children: Vec<_> = more
        .iter()
        .map(|(c, (_, path))| plugin.spawn("ADD", c, path, conf_text.as_bytes()))
        .collect();
    for (child, (c, _)) in children.into_iter().zip(&more) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ADD {c}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut vlans: Vec<u64> = trunk(&t, &trunk_id)["sub_ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["segmentation_id"].as_u64().unwrap())
        .collect();
    vlans.sort();
    assert_eq!(vlans, [1, 2, 3, 4, 5]);
    for (c, (ns, path)) in &more {
        let (ok, v) = plugin.exec("DEL", c, path, &conf(&t, &vm));
        assert!(ok, "DEL {c}: {v}");
        assert!(ns.exec(["ip", "link", "show", "eth0"]).is_err());
    }

    // DEL: the subport, the port and the OVS port go; twice is fine; the other stays.
    let tap1 = tap(&tagged(&t, "nest-1")[0]);
    for _ in 0..2 {
        let (ok, v) = plugin.exec("DEL", "nest-1", &path1, &conf(&t, &vm));
        assert!(ok, "DEL: {v}");
        assert!(tagged(&t, "nest-1").is_empty());
        assert_eq!(
            trunk(&t, &trunk_id)["sub_ports"].as_array().unwrap().len(),
            1
        );
        let ports = vm.ovs.vsctl(["list-ports", "br-vm"]).unwrap();
        assert!(!ports.contains(&tap1), "{ports}");
        assert!(pod1.exec(["ip", "link", "show", "eth0"]).is_err());
    }
    assert!(
        pings(&pod2, ip_b),
        "container 2 after 1 left\n{}",
        t.dumps()
    );
    let (ok, v) = plugin.exec("DEL", "nest-2", &path2, &conf(&t, &vm));
    assert!(ok, "DEL 2: {v}");
    assert!(
        trunk(&t, &trunk_id)["sub_ports"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        vm.ovs.vsctl(["list-ports", "br-vm"]).unwrap().trim(),
        "eth0"
    );
}
