//! The CNI plugin as a container runtime runs it: the `dragonflow` binary found as
//! `dragonflow-cni` in a CNI_PATH directory, the `CNI_*` environment and the network
//! configuration on stdin; and pods, namespaces with their loopback set up by Debian's
//! reference `loopback` plugin.

use super::cloud::{TwoHosts, two_hosts};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The plugin installed as a runtime finds it: `dragonflow-cni` in a CNI_PATH directory.
pub struct Plugin {
    dir: tempfile::TempDir,
    /// Print each invocation's output (tests: yes; benches: no).
    pub verbose: bool,
}

impl Plugin {
    pub fn install() -> Plugin {
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_dragonflow"),
            dir.path().join("dragonflow-cni"),
        )
        .expect("symlink");
        Plugin { dir, verbose: true }
    }

    /// Starts `command` for `container` with `stdin` written; the runtime's side of it.
    pub fn spawn(&self, command: &str, container: &str, netns: &Path, stdin: &[u8]) -> Child {
        let mut child = Command::new(self.dir.path().join("dragonflow-cni"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", self.dir.path())
            .env("DRAGONFLOW_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("plugin");
        // A plugin may answer without reading stdin (VERSION does) and exit first: the
        // pipe is then closed, which is not the plugin's failure.
        match child.stdin.take().unwrap().write_all(stdin) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r.unwrap(),
        }
        child
    }

    /// The CNI_PATH directory holding `dragonflow-cni`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `command` for `container`: exit success, stdout as JSON (Null when empty).
    pub fn exec(
        &self,
        command: &str,
        container: &str,
        netns: &Path,
        conf: &Value,
    ) -> (bool, Value) {
        self.exec_raw(command, container, netns, conf.to_string().as_bytes())
    }

    pub fn exec_raw(
        &self,
        command: &str,
        container: &str,
        netns: &Path,
        stdin: &[u8],
    ) -> (bool, Value) {
        let child = self.spawn(command, container, netns, stdin);
        let out = child.wait_with_output().expect("plugin");
        let text = String::from_utf8_lossy(&out.stdout);
        if self.verbose {
            eprintln!(
                "{command} {container}: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {text}"))
        };
        (out.status.success(), v)
    }
}

/// Runs reference plugin `name` of Debian's containernetworking-plugins as a runtime runs a
/// chained plugin: the `CNI_*` environment and `conf` (with its `prevResult`) on stdin, in
/// host namespace `host_ns` (where a runtime on that host runs) when given. Exit success
/// and stdout as JSON (Null when empty).
pub fn reference(
    name: &str,
    command: &str,
    container: &str,
    netns: &Path,
    host_ns: Option<&str>,
    conf: &Value,
) -> (bool, Value) {
    let bin = format!("/usr/lib/cni/{name}");
    let mut cmd = match host_ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, &bin]);
            c
        }
        None => Command::new(&bin),
    };
    let mut child = cmd
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin} (containernetworking-plugins): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .expect("stdin");
    let out = child.wait_with_output().expect(name);
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "{name} {command} {container}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    (out.status.success(), v)
}

/// A pod: a network namespace with its loopback set up by the reference plugin.
pub fn pod() -> (testbed::Netns, PathBuf) {
    let ns = testbed::Netns::new(&testbed::unique_name("pod")).expect("netns");
    let path = PathBuf::from(format!("/var/run/netns/{}", ns.name()));
    let lo = Command::new("/usr/lib/cni/loopback")
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", ns.name())
        .env("CNI_NETNS", &path)
        .env("CNI_IFNAME", "lo")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(br#"{"cniVersion":"1.0.0","name":"lo","type":"loopback"}"#)?;
            c.wait()
        })
        .expect("the reference loopback plugin (containernetworking-plugins)");
    assert!(lo.success(), "loopback plugin failed");
    (ns, path)
}

/// The project the pods' ports are made in.
pub const PROJECT: &str = "pods-project";

/// The network configuration of a plugin on the host of `ovs`, acting in `project`.
pub fn conf_for(url: &str, ovs: &testbed::Ovs, host: &str, project: &str, extra: Value) -> Value {
    let mut c = json!({
        "cniVersion": "1.0.0",
        "name": "pods",
        "type": "dragonflow-cni",
        "api": {"url": url, "auth": {"strategy": "noauth", "project_id": project}},
        "network": "pods",
        "ovsdb": format!("unix:{}", ovs.db_sock().display()),
        "ovs_netns": ovs.netns().expect("host namespace"),
        "host": host,
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        c[k] = v.clone();
    }
    c
}

pub fn pings(ns: &testbed::Netns, ip: &str) -> bool {
    ns.exec(["ping", "-c", "2", "-i", "0.2", "-W", "1", ip])
        .is_ok()
}

pub fn address(result: &Value) -> String {
    let a = result["ips"][0]["address"].as_str().expect("an address");
    a.split('/').next().unwrap().to_string()
}

/// Two hosts and the project's `pods` network (10.10.0.0/24, DNS 10.10.0.53).
pub fn pods_cloud() -> TwoHosts {
    let t = two_hosts();
    let h = [("X-Project-Id", PROJECT)];
    let (st, n) = t.srv.call_as(
        "POST",
        "/v2.0/networks",
        Some(json!({"network": {"name": "pods"}})),
        &h,
    );
    assert_eq!(st, 201, "{n}");
    let sub = json!({"subnet": {"network_id": n["network"]["id"], "ip_version": 4,
        "cidr": "10.10.0.0/24", "dns_nameservers": ["10.10.0.53"]}});
    assert_eq!(t.srv.call_as("POST", "/v2.0/subnets", Some(sub), &h).0, 201);
    t
}

/// A VM of the project on the `pods` network, plugged on host `h` with the network's MTU
/// (its default group admits the pods of the project): the VM and its address.
pub fn pods_vm(t: &TwoHosts, h: usize) -> (testbed::Vm, String) {
    let net = t.srv.call("GET", "/v2.0/networks?name=pods", None).1["networks"][0].clone();
    let (st, port) = t.srv.call_as(
        "POST",
        "/v2.0/ports",
        Some(json!({"port": {"network_id": net["id"]}})),
        &[("X-Project-Id", PROJECT)],
    );
    assert_eq!(st, 201, "{port}");
    let vm = t.plug(&port["port"], h, 24);
    let mtu = net["mtu"].as_u64().expect("the network's MTU").to_string();
    vm.ns.ip(["link", "set", "eth0", "mtu", &mtu]).expect("mtu");
    let ip = port["port"]["fixed_ips"][0]["ip_address"].as_str().unwrap();
    (vm, ip.to_string())
}
