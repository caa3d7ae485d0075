//! The CNI plugin end to end, executed exactly as a container runtime executes it: the
//! binary found as `dragonflow-cni` in `CNI_PATH`, the `CNI_*` environment and the network
//! configuration on stdin, on namespace "pods" of two hosts (real OVS, real controllers,
//! the reference `loopback` plugin from Debian's containernetworking-plugins beside it).

mod common;
mod ns;

use common::backends::Proc;
use common::cloud::{TwoHosts, wait_until};
use common::cni::{
    PROJECT, Plugin, address, conf_for, pings, pod, pods_cloud as setup, pods_vm, reference,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// The network configuration for host `h` of `t`.
fn conf(t: &TwoHosts, h: usize, extra: Value) -> Value {
    conf_for(
        &t.srv.url,
        &t.ovs[h],
        ["host-a", "host-b"][h],
        PROJECT,
        extra,
    )
}

fn container_ports(t: &TwoHosts, container: &str) -> Vec<Value> {
    let (st, v) = t
        .srv
        .call("GET", &format!("/v2.0/ports?device_id={container}"), None);
    assert_eq!(st, 200);
    v["ports"].as_array().cloned().unwrap_or_default()
}

fn ovs_ports(t: &TwoHosts, h: usize) -> String {
    t.ovs[h].vsctl(["list-ports", "br-int"]).unwrap_or_default()
}

/// Two pods on two hosts reach each other and a VM through their Neutron ports; the result
/// is the port's; DEL leaves no OVS port and no Neutron port, and is idempotent.
#[test]
fn pods_on_two_hosts_get_ports_reach_each_other_and_leave_nothing() {
    if !testbed::require_root("pods_on_two_hosts_get_ports_reach_each_other_and_leave_nothing") {
        return;
    }
    let t = setup();
    let plugin = Plugin::install();
    let (pod_a, path_a) = pod();
    let (pod_b, path_b) = pod();
    let (ok, ra) = plugin.exec("ADD", "ctr-a", &path_a, &conf(&t, 0, json!({})));
    assert!(ok, "ADD a: {ra}");
    let (ok, rb) = plugin.exec("ADD", "ctr-b", &path_b, &conf(&t, 1, json!({})));
    assert!(ok, "ADD b: {rb}");

    // The result is the port's, and the port is ACTIVE when ADD answers.
    let ports = container_ports(&t, "ctr-a");
    assert_eq!(ports.len(), 1, "{ports:?}");
    let p = &ports[0];
    assert_eq!(p["status"], "ACTIVE");
    assert_eq!(p["device_owner"], "compute:container");
    assert_eq!(p["binding:host_id"], "host-a");
    assert_eq!(p["project_id"], PROJECT);
    assert_eq!(ra["cniVersion"], "1.0.0");
    assert_eq!(ra["interfaces"][0]["mac"], p["mac_address"]);
    assert_eq!(ra["interfaces"][0]["sandbox"], path_a.display().to_string());
    assert_eq!(
        address(&ra),
        p["fixed_ips"][0]["ip_address"].as_str().unwrap()
    );
    assert_eq!(ra["ips"][0]["gateway"], "10.10.0.1");
    assert_eq!(ra["routes"][0]["dst"], "0.0.0.0/0");
    assert_eq!(ra["dns"]["nameservers"], json!(["10.10.0.53"]));
    let link = pod_a.exec(["ip", "-j", "addr", "show", "eth0"]).unwrap();
    assert!(link.contains(p["mac_address"].as_str().unwrap()), "{link}");
    assert!(
        pod_a
            .exec(["ip", "route"])
            .unwrap()
            .contains("default via 10.10.0.1")
    );

    // The first packet is not lost: ADD answered once the port's flows were in.
    assert!(pings(&pod_a, &address(&rb)), "{}", t.dumps());
    // A VM of the same project (its default group admits its members) on host b.
    let (_vm, vm_ip) = pods_vm(&t, 1);
    assert!(pings(&pod_a, &vm_ip), "pod to VM\n{}", t.dumps());
    common::trace::delivered(&t.srv, &t.ovs[0], &address(&ra), &vm_ip, None);

    // CHECK agrees with what ADD made.
    let (ok, v) = plugin.exec(
        "CHECK",
        "ctr-a",
        &path_a,
        &conf(&t, 0, json!({"prevResult": ra})),
    );
    assert!(ok, "CHECK: {v}");

    // ADD again without DEL: a clear error, nothing changed or leaked.
    let (ok, v) = plugin.exec("ADD", "ctr-a", &path_a, &conf(&t, 0, json!({})));
    assert!(!ok);
    assert_eq!(v["code"], 101, "{v}");
    assert_eq!(container_ports(&t, "ctr-a").len(), 1);
    assert!(pings(&pod_a, &address(&rb)));

    // DEL: no OVS port and no Neutron port; a second DEL succeeds too.
    let tap_b = format!(
        "tap{}",
        container_ports(&t, "ctr-b")[0]["id"]
            .as_str()
            .unwrap()
            .replace('-', "")
            .chars()
            .take(11)
            .collect::<String>()
    );
    assert!(ovs_ports(&t, 1).contains(&tap_b));
    for _ in 0..2 {
        let (ok, v) = plugin.exec("DEL", "ctr-b", &path_b, &conf(&t, 1, json!({})));
        assert!(ok, "DEL: {v}");
        assert!(container_ports(&t, "ctr-b").is_empty());
        assert!(!ovs_ports(&t, 1).contains(&tap_b), "{}", ovs_ports(&t, 1));
        assert!(
            pod_b.exec(["ip", "link", "show", "eth0"]).is_err(),
            "eth0 left in the pod"
        );
    }
    // CHECK of what is gone fails.
    let (ok, v) = plugin.exec("CHECK", "ctr-b", &path_b, &conf(&t, 1, json!({})));
    assert!(!ok && v["code"] == 102, "{v}");
}

/// The pod's port holds the configured security group: ICMP to it is dropped until a rule
/// admits it.
#[test]
fn a_pod_gets_its_security_groups_filtering() {
    if !testbed::require_root("a_pod_gets_its_security_groups_filtering") {
        return;
    }
    let t = setup();
    let h = [("X-Project-Id", PROJECT)];
    let (st, sg) = t.srv.call_as(
        "POST",
        "/v2.0/security-groups",
        Some(json!({"security_group": {"name": "closed"}})),
        &h,
    );
    assert_eq!(st, 201, "{sg}");
    let plugin = Plugin::install();
    let (pod_a, path_a) = pod();
    let (_pod_b, path_b) = pod();
    let (ok, ra) = plugin.exec("ADD", "ctr-a", &path_a, &conf(&t, 0, json!({})));
    assert!(ok);
    let closed = conf(&t, 1, json!({"security_groups": ["closed"]}));
    let (ok, rb) = plugin.exec("ADD", "ctr-b", &path_b, &closed);
    assert!(ok, "{rb}");
    let port_b = &container_ports(&t, "ctr-b")[0];
    assert_eq!(
        port_b["security_groups"],
        json!([sg["security_group"]["id"]])
    );
    assert!(
        !pings(&pod_a, &address(&rb)),
        "no ingress rule, yet ICMP passed"
    );
    let r = common::trace::expect(
        &t.srv,
        &t.ovs[0],
        &address(&ra),
        &address(&rb),
        None,
        "dropped",
    );
    assert!(r.verdict.contains("security group closed"), "{}", r.out);
    let rule = json!({"security_group_rule": {"security_group_id": sg["security_group"]["id"],
        "direction": "ingress", "ethertype": "IPv4", "protocol": "icmp"}});
    assert_eq!(
        t.srv
            .call_as("POST", "/v2.0/security-group-rules", Some(rule), &h)
            .0,
        201
    );
    wait_until("the rule to admit ICMP", Duration::from_secs(10), || {
        pings(&pod_a, &address(&rb))
    });
}

/// Bad input gets the specification's errors and leaves nothing behind; a port left by an
/// interrupted ADD is adopted by the next one; DEL of an unknown container succeeds.
#[test]
fn bad_input_gets_clear_errors_and_nothing_leaks() {
    if !testbed::require_root("bad_input_gets_clear_errors_and_nothing_leaks") {
        return;
    }
    let t = setup();
    let plugin = Plugin::install();
    let (pod_a, path_a) = pod();
    let before = ovs_ports(&t, 0);
    let count = || {
        t.srv.call("GET", "/v2.0/ports", None).1["ports"]
            .as_array()
            .unwrap()
            .len()
    };
    let ports_before = count();

    let (ok, v) = plugin.exec_raw("ADD", "ctr-x", &path_a, b"{not json");
    assert!(!ok && v["code"] == 6, "malformed config: {v}");
    let (ok, v) = plugin.exec(
        "ADD",
        "ctr-x",
        &path_a,
        &conf(&t, 0, json!({"network": "nowhere"})),
    );
    assert!(!ok && v["code"] == 7, "unknown network: {v}");
    assert!(v["details"].as_str().unwrap().contains("nowhere"), "{v}");
    let (ok, v) = plugin.exec("ADD", "ctr-x", &path_a, &conf(&t, 0, json!({"bridge": 5})));
    assert!(!ok && v["code"] == 7, "bad field: {v}");
    let gone = Path::new("/var/run/netns/no-such-pod");
    let (ok, v) = plugin.exec("ADD", "ctr-x", gone, &conf(&t, 0, json!({})));
    assert!(!ok && v["code"] == 8, "no netns: {v}");
    let unreachable = json!({"api": {"url": "http://127.0.0.1:9", "auth": {"strategy": "noauth", "project_id": PROJECT}}});
    let (ok, v) = plugin.exec("ADD", "ctr-x", &path_a, &conf(&t, 0, unreachable));
    assert!(!ok && v["code"] == 11, "API unreachable is retryable: {v}");
    assert_eq!(count(), ports_before, "a failed ADD left a port");
    assert_eq!(ovs_ports(&t, 0), before, "a failed ADD left an OVS port");
    assert!(pod_a.exec(["ip", "link", "show", "eth0"]).is_err());

    // DEL before ADD, of a container never seen: success.
    let (ok, v) = plugin.exec("DEL", "ctr-never", &path_a, &conf(&t, 0, json!({})));
    assert!(ok, "{v}");

    // A runtime killed mid-ADD left the container's port: the next ADD adopts it.
    let net = t.srv.call("GET", "/v2.0/networks?name=pods", None).1["networks"][0].clone();
    let (st, left) = t.srv.call_as(
        "POST",
        "/v2.0/ports",
        Some(
            json!({"port": {"network_id": net["id"], "device_owner": "compute:container",
            "device_id": "ctr-k"}}),
        ),
        &[("X-Project-Id", PROJECT)],
    );
    assert_eq!(st, 201, "{left}");
    let (ok, r) = plugin.exec("ADD", "ctr-k", &path_a, &conf(&t, 0, json!({})));
    assert!(ok, "{r}");
    assert_eq!(
        address(&r),
        left["port"]["fixed_ips"][0]["ip_address"].as_str().unwrap()
    );
    assert_eq!(container_ports(&t, "ctr-k").len(), 1);

    // VERSION as the specification says.
    let (ok, v) = plugin.exec("VERSION", "", &path_a, &json!({"cniVersion": "1.0.0"}));
    assert!(ok);
    assert!(
        v["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("1.0.0")),
        "{v}"
    );
}

/// A pod behind a router with a gateway reaches the outside through its host's SNAT
/// address, as a VM does.
#[test]
fn a_pod_reaches_the_outside_through_snat() {
    if !testbed::require_root("a_pod_reaches_the_outside_through_snat") {
        return;
    }
    let t = ns::Cloud::start(None);
    let (_ext, inside) = ns::routed_inside(&t);
    let plugin = Plugin::install();
    let (pod_a, path_a) = pod();
    let project = inside["project_id"].as_str().unwrap();
    let c = conf_for(
        &t.srv.url,
        &t.ovs[0],
        "host-a",
        project,
        json!({"network": inside["id"]}),
    );
    let (ok, r) = plugin.exec("ADD", "ctr-out", &path_a, &c);
    assert!(ok, "{r}");
    assert!(ns::reaches(&pod_a, "203.0.113.1"), "{}", t.dumps());
    let server = ns::TcpServer::start(&t.outside, 8080);
    assert_eq!(ns::tcp_get(&pod_a, "203.0.113.1", 8080), "hello");
    let peer = server.peer().expect("the outside saw the connection");
    assert!(peer.starts_with("203.0.113."), "not SNATed: {peer}");
    assert_ne!(peer, address(&r));
    common::trace::delivered(&t.srv, &t.ovs[0], &address(&r), "203.0.113.1:8080", None);
}

/// A real runtime: podman (Debian's 4.3, CNI backend) runs a container from a directory
/// root filesystem (a static busybox, no image pulled) on the pods network through
/// dragonflow-cni; the container pings a VM on the other host, and podman's own teardown
/// (DEL) leaves no Neutron port.
#[test]
fn podman_runs_a_container_that_pings_a_vm() {
    if !testbed::require_root("podman_runs_a_container_that_pings_a_vm") {
        return;
    }
    let t = setup();
    let plugin = Plugin::install();
    let dir = tempfile::tempdir().expect("tempdir");
    // The root filesystem: busybox and its applets.
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox-static");
    for applet in ["sh", "ping", "ip"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    // podman's network configuration and plugin directories, its storage, all private.
    let netd = dir.path().join("net.d");
    std::fs::create_dir_all(&netd).unwrap();
    let mut c = conf(&t, 1, json!({}));
    c.as_object_mut().unwrap().remove("cniVersion");
    c.as_object_mut().unwrap().remove("name");
    let list = json!({"cniVersion": "1.0.0", "name": "pods", "plugins": [c]});
    std::fs::write(netd.join("pods.conflist"), list.to_string()).unwrap();
    let conf_file = dir.path().join("containers.conf");
    std::fs::write(
        &conf_file,
        format!(
            "[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\", \"/usr/lib/cni\"]\nnetwork_config_dir = \"{}\"\n",
            plugin.dir().display(),
            netd.display()
        ),
    )
    .unwrap();
    // The VM the container pings, of the same project, on host a.
    let (_vm, vm_ip) = pods_vm(&t, 0);
    let vm_ip = vm_ip.as_str();
    let out = std::process::Command::new("podman")
        .env("CONTAINERS_CONF", &conf_file)
        .arg(format!("--root={}", dir.path().join("storage").display()))
        .arg(format!("--runroot={}", dir.path().join("run").display()))
        // runc, not Debian's default crun: crun refuses this machine's hybrid cgroup
        // layout (v1 controllers beside a v2 mount). Limits within this VM's hard ones:
        // podman's defaults for open files and processes are refused here.
        .args(["--runtime", "runc", "run", "--rm"])
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(["--network", "pods", "--rootfs"])
        .arg(&rootfs)
        .args(["/bin/ping", "-c", "3", "-W", "2", vm_ip])
        .output()
        .expect("podman");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "podman run: {text}\n{}", t.dumps());
    // At least one echo answered (busybox ping fails without). The first may be lost: the
    // VM's host admits the pod's address into its default group's remote-group rule when
    // the new port reaches it over the NB stream, which ADD does not wait for.
    assert!(text.contains(&format!("bytes from {vm_ip}")), "{text}");
    let left: Vec<Value> = t
        .srv
        .call("GET", "/v2.0/ports?device_owner=compute:container", None)
        .1["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(left.is_empty(), "podman's teardown left ports: {left:?}");
}

/// A runtime killed mid-ADD (the plugin killed once its port exists): DEL then removes
/// everything that ADD had made, and a new ADD attaches the container afresh.
#[test]
fn an_add_killed_midway_is_cleaned_by_del() {
    if !testbed::require_root("an_add_killed_midway_is_cleaned_by_del") {
        return;
    }
    let t = setup();
    let plugin = Plugin::install();
    let (pod_a, path_a) = pod();
    let c = conf(&t, 0, json!({}));
    let before = ovs_ports(&t, 0);
    let mut child = plugin.spawn("ADD", "ctr-kill", &path_a, c.to_string().as_bytes());
    wait_until("the ADD to make its port", Duration::from_secs(10), || {
        !container_ports(&t, "ctr-kill").is_empty()
    });
    child.kill().expect("kill -9");
    let _ = child.wait();
    let (ok, v) = plugin.exec("DEL", "ctr-kill", &path_a, &c);
    assert!(ok, "{v}");
    assert!(container_ports(&t, "ctr-kill").is_empty());
    assert_eq!(ovs_ports(&t, 0), before, "the killed ADD left an OVS port");
    assert!(
        pod_a.exec(["ip", "link", "show", "eth0"]).is_err(),
        "eth0 left in the pod"
    );
    let (ok, r) = plugin.exec("ADD", "ctr-kill", &path_a, &c);
    assert!(ok, "{r}");
    assert_eq!(container_ports(&t, "ctr-kill")[0]["status"], "ACTIVE");
}

/// `iperf3` between `pod` and `server` for 3 s after 1 s left out (`download`: the server
/// sends): the receiver's Mbit/s.
fn iperf(pod: &testbed::Netns, server: &str, download: bool) -> f64 {
    let mut argv = vec![
        "iperf3",
        "-c",
        server,
        "-t",
        "3",
        "-O",
        "1",
        "-J",
        "--connect-timeout",
        "3000",
    ];
    if download {
        argv.push("-R");
    }
    // A test that fails to start (the server still closing the last one, or its control
    // connection reset on a loaded machine, seen once in CI) is tried again, 5 times.
    let mut last = String::new();
    for _ in 0..5 {
        let out = pod.command(&argv).output().expect("iperf3");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(b) = v["end"]["sum_received"]["bits_per_second"].as_f64() {
            return b / 1e6;
        }
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("iperf3, 5 times: {last}")
}

/// Chaining: the reference `bandwidth` plugin after dragonflow-cni, run by the runtime on
/// the host (where the veth's host end is, which the result names), holds the pod's
/// download to its `ingressRate` (a `tbf` on the host end). Its `egressRate` (the host
/// end's ingress redirected to an `ifb`) is not held on the userspace datapath: OVS reads
/// the host end with a packet socket, which sees a frame before tc's ingress hook; the
/// test prints that rate and does not assert it. DEL of the chain (in reverse) leaves no
/// ifb device and no port.
#[test]
fn the_bandwidth_plugin_chained_after_it_shapes_the_pods_download() {
    if !testbed::require_root("the_bandwidth_plugin_chained_after_it_shapes_the_pods_download") {
        return;
    }
    let t = setup();
    let plugin = Plugin::install();
    let (pod_a, path_a) = pod();
    let (ok, r) = plugin.exec("ADD", "bw-1", &path_a, &conf(&t, 0, json!({})));
    assert!(ok, "ADD: {r}");
    assert!(
        r["interfaces"][1]["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("tap"),
        "{r}"
    );

    let (vm, ip_b) = pods_vm(&t, 1);
    let ip_b = ip_b.as_str();
    let _server = Proc(
        vm.ns
            .command(["iperf3", "-s"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("iperf3 -s"),
    );
    wait_until("iperf3 to listen", Duration::from_secs(10), || {
        vm.ns
            .exec(["ss", "-ltn", "sport = :5201"])
            .is_ok_and(|o| o.contains("5201"))
    });
    assert!(pings(&pod_a, ip_b), "pod to VM\n{}", t.dumps());
    let (down_before, up_before) = (iperf(&pod_a, ip_b, true), iperf(&pod_a, ip_b, false));

    let host_ns = t.ovs[0].netns().expect("host a's namespace").to_string();
    let bw = json!({"cniVersion": "1.0.0", "name": "pods", "type": "bandwidth",
        "ingressRate": 10_000_000, "ingressBurst": 1_000_000,
        "egressRate": 10_000_000, "egressBurst": 1_000_000, "prevResult": r});
    let (ok, v) = reference("bandwidth", "ADD", "bw-1", &path_a, Some(&host_ns), &bw);
    assert!(ok, "bandwidth ADD: {v}");
    let (down, up) = (iperf(&pod_a, ip_b, true), iperf(&pod_a, ip_b, false));
    eprintln!(
        "download {down_before:.1} Mbit/s alone, {down:.1} with bandwidth at 10; upload {up_before:.1} alone, {up:.1} with bandwidth at 10 (not held on the userspace datapath)"
    );
    assert!(down < 13.0, "shaped to 10 Mbit/s, measured {down:.1}");
    assert!(
        down_before > 2.0 * down,
        "{down_before:.1} before, {down:.1} after"
    );

    let host = testbed::Netns::attach(&host_ns);
    let ifbs = || {
        host.ip(["-o", "link", "show", "type", "ifb"])
            .unwrap_or_default()
    };
    assert!(!ifbs().trim().is_empty(), "bandwidth made its ifb");
    let (ok, v) = reference("bandwidth", "DEL", "bw-1", &path_a, Some(&host_ns), &bw);
    assert!(ok, "bandwidth DEL: {v}");
    let (ok, v) = plugin.exec(
        "DEL",
        "bw-1",
        &path_a,
        &conf(&t, 0, json!({"prevResult": r})),
    );
    assert!(ok, "DEL: {v}");
    assert!(ifbs().trim().is_empty(), "left: {}", ifbs());
    assert!(container_ports(&t, "bw-1").is_empty());
}
