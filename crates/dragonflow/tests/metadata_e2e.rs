//! The metadata service end to end: real OVS, `dragonflow controller` per host serving
//! 169.254.169.254 behind br-int's internal port, user data and keys set through the API,
//! and the real client, cloud-init's own OpenStack reader (Debian's package, extracted by
//! scripts/setup), run in the VM namespaces of two hosts; `curl` for the EC2 paths; a VM
//! that forges its address, MAC and headers still reads only its own metadata, over IPv4
//! and IPv6; slow and flooding clients do not stop others being answered. The Nova proxy
//! mode is in metadata_nova_e2e.rs.

mod common;

use common::cloud::{addr, wait_until};
use common::metadata::{Cloud, curl, md};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const CLOUD_INIT: &str = "/opt/dragonflow/cloud-init";

/// The reader cloud-init's OpenStack data source uses, run in `vm`: its `read_v2()`, as
/// JSON (user data as text).
fn cloud_init_read(vm: &testbed::Vm) -> Result<Value, String> {
    let script = r#"
import json
from cloudinit.sources.helpers import openstack
r = openstack.MetadataReader("http://169.254.169.254", timeout=5, retries=2)
res = r.read_v2()
ud = res.get("userdata")
if isinstance(ud, bytes):
    ud = ud.decode()
print(json.dumps({"metadata": res["metadata"], "userdata": ud,
                  "networkdata": res.get("networkdata"),
                  "vendordata": res.get("vendordata"),
                  "ec2": res.get("ec2-metadata")}, default=str))
"#;
    let py = format!("{CLOUD_INIT}/venv/bin/python");
    let path = format!("PYTHONPATH={CLOUD_INIT}/root/usr/lib/python3/dist-packages");
    let out = vm
        .ns
        .exec(["env", &path, &py, "-c", script])
        .map_err(|e| e.to_string())?;
    serde_json::from_str(out.trim()).map_err(|e| format!("{e}: {out}"))
}

fn have_cloud_init() -> bool {
    std::path::Path::new(&format!("{CLOUD_INIT}/venv/bin/python")).exists()
}

#[test]
fn cloud_init_reads_each_vms_own_identity_on_two_hosts() {
    if !testbed::require_root("cloud_init_reads_each_vms_own_identity_on_two_hosts") {
        return;
    }
    assert!(
        have_cloud_init(),
        "cloud-init is missing: run scripts/setup"
    );
    let c = Cloud::start(2, &[]);
    c.network("mdnet1", "10.61.1.0/24");
    c.network("mdnet2", "10.61.2.0/24");
    let dev1 = "6c1a1d5e-0000-4000-8000-000000000001";
    let dev2 = "6c1a1d5e-0000-4000-8000-000000000002";
    let p1 = c.port("mdnet1", "web-1", dev1, "vm1");
    let p2 = c.port("mdnet2", "db-1", dev2, "");
    // User data, keys and properties through the API (the CLI has no option for them).
    let user_data = "#cloud-config\nhostname: from-user-data\n";
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx5Zf0rVxjJ6Yb2k2pT4xxkYq2iQnQ5Yb2q test@df";
    let b64 = base64_encode(user_data.as_bytes());
    let (code, v) = c.srv.call(
        "PUT",
        &format!("/v2.0/ports/{}", p1["id"].as_str().unwrap()),
        Some(json!({"port": {"instance_metadata": {
            "user_data": b64, "public_keys": {"mykey": key}, "meta": {"role": "web"}}}})),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["port"]["instance_metadata"]["meta"]["role"], "web");
    // Bad input is a Neutron 400.
    let (code, _) = c.srv.call(
        "PUT",
        &format!("/v2.0/ports/{}", p1["id"].as_str().unwrap()),
        Some(json!({"port": {"instance_metadata": {"user_data": "not base64!"}}})),
    );
    assert_eq!(code, 400);

    let vm1 = c.plug(&p1, 0);
    // vm1 reaches the address on-link (the switch answers its ARP).
    vm1.ns
        .exec(["ip", "route", "add", "169.254.169.254/32", "dev", "eth0"])
        .expect("route");
    // vm2 boots as a cloud image does: DHCP, then cloud-init at once. The lease's
    // option 121 routes the address through the isolated subnet's DHCP port, and the
    // metadata flows went in with the DHCP flows, before any reply.
    let (mac2, _) = addr(&p2);
    let vm2 = testbed::Vm::plug_unaddressed(&c.ovs[1], "br-int", p2["id"].as_str().unwrap(), &mac2)
        .expect("plug");
    let dir = tempfile::tempdir().expect("tmp");
    let (pf, lf) = (dir.path().join("pid"), dir.path().join("leases"));
    let out = vm2
        .ns
        .dhclient("eth0", &pf, &lf, &["-1"])
        .expect("dhclient")
        .output()
        .expect("dhclient");
    assert!(
        out.status.success(),
        "no lease: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _stop = Stop(&vm2, &pf, &lf);
    let r2 = cloud_init_read(&vm2).unwrap_or_else(|e| panic!("{e}\n{}", c.dumps()));
    let routes = vm2.ns.exec(["ip", "-4", "route"]).unwrap_or_default();
    let dhcp2 = dhcp_address(&c, &p2);
    assert!(
        routes.contains(&format!("169.254.169.254 via {dhcp2}")),
        "the DHCP route to the metadata address: {routes}"
    );

    let t = Instant::now();
    let r1 = cloud_init_read(&vm1).unwrap_or_else(|e| panic!("{e}\n{}", c.dumps()));
    println!("cloud-init read_v2 on vm1 took {:?}", t.elapsed());
    assert_eq!(r1["metadata"]["uuid"], dev1, "{r1}");
    // vm1's request to the metadata address, as OVS takes it to the host's server.
    let r = common::trace::delivered(&c.srv, &c.ovs[0], &addr(&p1).1, "169.254.169.254:80", None);
    assert!(r.verdict.contains("df-metadata"), "{}", r.out);
    assert_eq!(r1["metadata"]["name"], "web-1");
    assert_eq!(r1["metadata"]["hostname"], "vm1.openstacklocal");
    assert_eq!(r1["metadata"]["public_keys"]["mykey"], key);
    assert_eq!(r1["metadata"]["keys"][0]["data"], key);
    assert_eq!(r1["metadata"]["meta"]["role"], "web");
    assert_eq!(r1["metadata"]["project_id"], p1["project_id"]);
    assert_eq!(r1["metadata"]["availability_zone"], "nova");
    assert_eq!(r1["userdata"], user_data);
    let (mac1, ip1) = addr(&p1);
    let nd = &r1["networkdata"];
    assert_eq!(nd["links"][0]["ethernet_mac_address"], mac1, "{nd}");
    assert_eq!(nd["links"][0]["vif_id"], p1["id"]);
    assert_eq!(nd["networks"][0]["ip_address"], ip1.as_str());
    assert_eq!(nd["networks"][0]["netmask"], "255.255.255.0");
    assert_eq!(nd["networks"][0]["type"], "ipv4_dhcp");
    assert_eq!(nd["services"][0]["type"], "dns");
    // cloud-init crawled the EC2 tree too.
    assert_eq!(r1["ec2"]["local-ipv4"], ip1.as_str(), "{}", r1["ec2"]);
    assert_eq!(r1["ec2"]["public-keys"]["mykey"], key, "{}", r1["ec2"]);
    assert_eq!(r1["ec2"]["placement"]["availability-zone"], "nova");

    // The other VM, on another network and host: its own identity, no user data.
    assert_eq!(r2["metadata"]["uuid"], dev2, "{r2}");
    assert_eq!(r2["metadata"]["hostname"], "db-1.openstacklocal");
    assert_eq!(r2["userdata"], "");
    assert_eq!(
        r2["networkdata"]["links"][0]["ethernet_mac_address"],
        addr(&p2).0
    );
    assert!(
        c.ctl[1].log().contains("metadata answered") && !c.ctl[0].log().contains(dev2),
        "vm2 is answered on its own host"
    );

    // curl on the EC2 paths.
    let keys = port_keys(&c.ovs[0]);
    assert_eq!(keys.len(), 1, "one VM port on host a: {keys:?}");
    assert_eq!(
        curl(&vm1, &[&md("/2009-04-04/meta-data/instance-id")]),
        (200, format!("i-{:08x}", keys[0]))
    );
    assert_eq!(
        curl(&vm1, &[&md("/2009-04-04/meta-data/local-ipv4")]),
        (200, ip1.clone())
    );
    assert_eq!(
        curl(&vm1, &[&md("/2009-04-04/meta-data/hostname")]),
        (200, "vm1.openstacklocal".into())
    );
    assert_eq!(
        curl(
            &vm1,
            &[&md("/2009-04-04/meta-data/public-keys/0/openssh-key")]
        ),
        (200, key.to_string())
    );
    let (code, listing) = curl(&vm1, &[&md("/latest/meta-data/")]);
    assert_eq!(code, 200);
    assert!(listing.lines().any(|l| l == "instance-id"), "{listing}");
    let (code, versions) = curl(&vm1, &[&md("/openstack")]);
    assert_eq!(code, 200);
    assert!(versions.lines().any(|l| l == "2018-08-27") && versions.ends_with("latest"));
    assert_eq!(
        curl(&vm1, &[&md("/openstack/latest/user_data")]),
        (200, user_data.to_string())
    );
    assert_eq!(curl(&vm2, &[&md("/openstack/latest/user_data")]).0, 404);
    assert_eq!(curl(&vm1, &[&md("/nothing")]).0, 404);
    // Requests with a body are refused; the request size is bounded.
    assert_eq!(
        curl(&vm1, &["-X", "POST", "-d", "x=1", &md("/openstack")]).0,
        413
    );
    let long = format!("/openstack/{}", "a".repeat(20_000));
    let (code, _) = curl(&vm1, &[&md(&long)]);
    assert_ne!(code, 200, "an oversized request is not served");
    // The service still answers afterwards.
    assert_eq!(curl(&vm1, &[&md("/openstack")]).0, 200);
}

/// Stops a VM's background DHCP client when the test ends, however it ends.
struct Stop<'a>(&'a testbed::Vm, &'a std::path::Path, &'a std::path::Path);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .ns
            .dhclient("eth0", self.1, self.2, &["-x"])
            .map(|mut c| c.output());
    }
}

/// The first address of the DHCP port of `port`'s network.
fn dhcp_address(c: &Cloud, port: &Value) -> String {
    let net = port["network_id"].as_str().unwrap();
    let (_, ports) = c.srv.call(
        "GET",
        &format!("/v2.0/ports?network_id={net}&device_owner=network:dhcp"),
        None,
    );
    ports["ports"][0]["fixed_ips"][0]["ip_address"]
        .as_str()
        .expect("the DHCP port")
        .to_string()
}

/// The port keys of the VM ports with a metadata flow on `ovs` (reg6 of table 35's
/// request flows; the key is not in the API's JSON).
/// The keys classification gives this host's VM ports (`set_field:KEY->reg6` or
/// `load:KEY->NXM_NX_REG6[]` in table 0).
fn port_keys(ovs: &testbed::Ovs) -> Vec<u32> {
    let flows = ovs
        .ofctl(["dump-flows", "br-int", "table=0"])
        .unwrap_or_default();
    let keys: std::collections::BTreeSet<u32> = flows
        .lines()
        .flat_map(|l| l.split([':', ',']).collect::<Vec<_>>())
        .filter_map(|a| {
            let (v, rest) = a.split_once("->")?;
            if rest != "reg6" && rest != "NXM_NX_REG6[]" {
                return None;
            }
            u32::from_str_radix(v.trim_start_matches("0x"), 16).ok()
        })
        .collect();
    keys.into_iter().collect()
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn a_vm_forging_its_address_mac_or_headers_reads_only_its_own_metadata() {
    if !testbed::require_root("a_vm_forging_its_address_mac_or_headers") {
        return;
    }
    let c = Cloud::start(1, &[]);
    c.network("spoofnet", "10.62.0.0/24");
    let (dev1, dev3) = (
        "5e0f0000-0000-4000-8000-000000000001",
        "5e0f0000-0000-4000-8000-000000000003",
    );
    let p1 = c.port("spoofnet", "attacker", dev1, "attacker");
    let p3 = c.port("spoofnet", "victim", dev3, "victim");
    let (code, v) = c.srv.call(
        "PUT",
        &format!("/v2.0/ports/{}", p3["id"].as_str().unwrap()),
        Some(
            json!({"port": {"instance_metadata": {"user_data": base64_encode(b"victim secret")}}}),
        ),
    );
    assert_eq!(code, 200, "{v}");
    let vm1 = c.plug(&p1, 0);
    let vm3 = c.plug(&p3, 0);
    for vm in [&vm1, &vm3] {
        vm.ns
            .exec(["ip", "route", "add", "169.254.169.254/32", "dev", "eth0"])
            .expect("route");
    }
    let uuid = |vm: &testbed::Vm, extra: &[&str]| {
        let mut args = extra.to_vec();
        let url = md("/openstack/latest/meta_data.json");
        args.push(&url);
        let (code, body) = curl(vm, &args);
        (code == 200)
            .then(|| serde_json::from_str::<Value>(&body).ok())
            .flatten()
            .map(|v| v["uuid"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(uuid(&vm3, &[]).as_deref(), Some(dev3), "{}", c.dumps());
    assert_eq!(uuid(&vm1, &[]).as_deref(), Some(dev1));
    // Headers naming another instance change nothing.
    let forged = [
        "-H",
        "X-Instance-ID: 5e0f0000-0000-4000-8000-000000000003",
        "-H",
        "X-Forwarded-For: 10.62.0.99",
    ];
    assert_eq!(uuid(&vm1, &forged).as_deref(), Some(dev1));

    // The attacker takes the victim's address and MAC: port security drops it.
    let (mac3, ip3) = addr(&p3);
    let (_, ip1) = addr(&p1);
    let sh = |cmd: &str| vm1.ns.exec(["sh", "-c", cmd]).map(|_| ());
    sh(&format!(
        "ip addr del {ip1}/24 dev eth0; ip addr add {ip3}/24 dev eth0; ip link set eth0 address {mac3}; ip route replace 169.254.169.254/32 dev eth0"
    ))
    .expect("spoof");
    let got = uuid(&vm1, &[]);
    assert_ne!(
        got.as_deref(),
        Some(dev3),
        "forged identity read the victim's metadata"
    );
    assert_eq!(got, None, "port security drops the forged frames");
    let (_, body) = curl(&vm1, &[&md("/openstack/latest/user_data")]);
    assert!(!body.contains("victim secret"));

    // With port security off the forged frames pass: the switch still knows the port.
    let (code, v) = c.srv.call(
        "PUT",
        &format!("/v2.0/ports/{}", p1["id"].as_str().unwrap()),
        Some(json!({"port": {"port_security_enabled": false, "security_groups": []}})),
    );
    assert_eq!(code, 200, "{v}");
    let start = Instant::now();
    let got = loop {
        let got = uuid(&vm1, &[]);
        if got.is_some() || start.elapsed() > Duration::from_secs(10) {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(got.as_deref(), Some(dev1), "{}", c.dumps());
    let (code, body) = curl(&vm1, &[&md("/openstack/latest/user_data")]);
    assert!(
        code == 404 && !body.contains("victim secret"),
        "{code} {body}"
    );
    // The victim is still itself.
    assert_eq!(uuid(&vm3, &[]).as_deref(), Some(dev3));
}

/// The VM's link-local address once past DAD.
fn link_local(vm: &testbed::Vm) -> String {
    let mut found = String::new();
    wait_until(
        "a link-local address past DAD",
        Duration::from_secs(10),
        || {
            let out = vm
                .ns
                .exec([
                    "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
                ])
                .unwrap_or_default();
            found = out
                .split_whitespace()
                .skip_while(|w| *w != "inet6")
                .nth(1)
                .and_then(|a| a.split('/').next())
                .unwrap_or("")
                .to_string();
            !found.is_empty() && !out.contains("tentative")
        },
    );
    found
}

/// The IPv6 metadata address, as a VM names it on its link.
fn md6(path: &str) -> String {
    format!("http://[fe80::a9fe:a9fe%eth0]{path}")
}

#[test]
fn over_ipv6_each_vm_reads_its_own_metadata_at_fe80_a9fe_a9fe_even_forging() {
    if !testbed::require_root("over_ipv6_each_vm_reads_its_own_metadata") {
        return;
    }
    let c = Cloud::start(2, &[]);
    c.network("md6net", "10.63.0.0/24");
    c.srv.os(&[
        "subnet",
        "create",
        "--network",
        "md6net",
        "--ip-version",
        "6",
        "--ipv6-address-mode",
        "slaac",
        "--ipv6-ra-mode",
        "slaac",
        "--subnet-range",
        "2001:db8:63::/64",
        "md6net-v6",
    ]);
    let (dev1, dev2, dev3) = (
        "6e0f0000-0000-4000-8000-000000000001",
        "6e0f0000-0000-4000-8000-000000000002",
        "6e0f0000-0000-4000-8000-000000000003",
    );
    let p1 = c.port("md6net", "six-attacker", dev1, "six-attacker");
    let p2 = c.port("md6net", "six-remote", dev2, "six-remote");
    let p3 = c.port("md6net", "six-victim", dev3, "six-victim");
    let (code, v) = c.srv.call(
        "PUT",
        &format!("/v2.0/ports/{}", p3["id"].as_str().unwrap()),
        Some(json!({"port": {"instance_metadata": {"user_data": base64_encode(b"six secret")}}})),
    );
    assert_eq!(code, 200, "{v}");
    let vm1 = c.plug(&p1, 0);
    let vm2 = c.plug(&p2, 1);
    let vm3 = c.plug(&p3, 0);
    for vm in [&vm1, &vm2, &vm3] {
        link_local(vm);
    }
    let uuid = |vm: &testbed::Vm| {
        let (code, body) = curl(vm, &["-g", &md6("/openstack/latest/meta_data.json")]);
        (code == 200)
            .then(|| serde_json::from_str::<Value>(&body).ok())
            .flatten()
            .map(|v| v["uuid"].as_str().unwrap_or("").to_string())
    };
    // The version list, as the brief's client asks it.
    let (code, body) = curl(&vm1, &["-g", &md6("/openstack")]);
    assert_eq!(code, 200, "{body}\n{}", c.dumps());
    assert!(body.lines().any(|l| l == "latest"), "{body}");
    assert_eq!(uuid(&vm1).as_deref(), Some(dev1), "{}", c.dumps());
    assert_eq!(uuid(&vm2).as_deref(), Some(dev2), "{}", c.dumps());
    assert_eq!(uuid(&vm3).as_deref(), Some(dev3));
    let (code, body) = curl(&vm3, &["-g", &md6("/openstack/latest/user_data")]);
    assert_eq!((code, body.as_str()), (200, "six secret"));
    // The switch answered the neighbour solicitation with the metadata MAC.
    let neigh = vm1
        .ns
        .exec([
            "ip",
            "-6",
            "neigh",
            "show",
            "fe80::a9fe:a9fe",
            "dev",
            "eth0",
        ])
        .unwrap_or_default();
    assert!(neigh.contains("02:a9:fe:a9:fe:fe"), "{neigh}");

    // The attacker takes the victim's MAC and link-local address (port security off, so
    // the frames pass): the switch still knows the port, and the answer is its own.
    let (code, v) = c.srv.call(
        "PUT",
        &format!("/v2.0/ports/{}", p1["id"].as_str().unwrap()),
        Some(json!({"port": {"port_security_enabled": false, "security_groups": []}})),
    );
    assert_eq!(code, 200, "{v}");
    let victim_ll = link_local(&vm3);
    let mine = link_local(&vm1);
    let (mac3, _) = addr(&p3);
    vm1.ns
        .exec([
            "sh",
            "-c",
            &format!(
                "ip link set eth0 address {mac3}; ip -6 addr del {mine}/64 dev eth0; ip -6 addr add {victim_ll}/64 dev eth0 nodad; ip -6 neigh flush dev eth0"
            ),
        ])
        .expect("spoof");
    let start = Instant::now();
    let got = loop {
        let got = uuid(&vm1);
        if got.is_some() || start.elapsed() > Duration::from_secs(10) {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(got.as_deref(), Some(dev1), "{}", c.dumps());
    let (_, body) = curl(&vm1, &["-g", &md6("/openstack/latest/user_data")]);
    assert!(!body.contains("six secret"), "{body}");
    assert_eq!(
        uuid(&vm3).as_deref(),
        Some(dev3),
        "the victim is still itself"
    );
}

/// Slowloris from `vm`: `n` connections that send headers a line a second and never end
/// them; prints how many the server closed within `secs` seconds.
const SLOWLORIS: &str = r#"
import socket, sys, time
n, secs = int(sys.argv[1]), float(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect(("169.254.169.254", 80))
        s.send(b"GET /openstack HTTP/1.1\r\nHost: x\r\n")
    except OSError:
        pass
    socks.append(s)
closed = set()
end = time.time() + secs
while time.time() < end and len(closed) < n:
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            s.send(b"X-Slow: 1\r\n")
            if s.recv(4096) == b"":
                closed.add(i)
        except socket.timeout:
            pass
        except OSError:
            closed.add(i)
    time.sleep(0.5)
print(len(closed))
"#;

/// `n` requests from `vm` as fast as it can: how many were 200 and how many 429.
const FLOOD: &str = r#"
import http.client, sys
ok = limited = 0
for _ in range(int(sys.argv[1])):
    c = http.client.HTTPConnection("169.254.169.254", 80, timeout=2)
    c.request("GET", "/openstack")
    r = c.getresponse(); r.read(); c.close()
    ok += r.status == 200
    limited += r.status == 429
print(ok, limited)
"#;

#[test]
fn slowloris_and_a_flooding_vm_do_not_stop_others_being_answered() {
    if !testbed::require_root("slowloris_and_a_flooding_vm") {
        return;
    }
    let c = Cloud::start(1, &[]);
    c.network("loris", "10.64.0.0/24");
    let pa = c.port("loris", "attacker", "", "");
    let pb = c.port("loris", "bystander", "", "");
    let (va, vb) = (c.plug(&pa, 0), c.plug(&pb, 0));
    for vm in [&va, &vb] {
        vm.ns
            .exec(["ip", "route", "add", "169.254.169.254/32", "dev", "eth0"])
            .expect("route");
    }
    let bystander_answered = |what: &str| {
        for _ in 0..5 {
            let t = Instant::now();
            let (code, _) = curl(&vb, &[&md("/openstack/latest/meta_data.json")]);
            assert_eq!(code, 200, "the bystander during {what}\n{}", c.dumps());
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "{what}: {:?}",
                t.elapsed()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // 20 connections that never finish their headers: 8 held (the per-VM cap), the rest
    // closed at once, the held ones closed by the header timeout (5 s).
    let loris = va
        .ns
        .command(["python3", "-c", SLOWLORIS, "20", "9"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    std::thread::sleep(Duration::from_millis(500));
    bystander_answered("slowloris");
    let out = loris.wait_with_output().expect("slowloris");
    let closed: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert_eq!(closed, 20, "every slow connection was closed by the server");

    // A flood: past its 20 a second, the attacker gets 429s; the bystander is answered.
    let flood = va
        .ns
        .command(["python3", "-c", FLOOD, "300"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    bystander_answered("a flood");
    let out = flood.wait_with_output().expect("flood");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (ok, limited) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    println!("flood: {ok} answered, {limited} refused with 429");
    assert!(limited > 0 && ok >= 20, "{ok} answered, {limited} limited");
    assert_eq!(ok + limited, 300);
}
