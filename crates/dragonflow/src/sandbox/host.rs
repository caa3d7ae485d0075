//! The machinery of the sandbox: the wire namespace (underlay and physical network as Linux
//! bridges), each host (a namespace with its own ovsdb-server and ovs-vswitchd on the
//! userspace datapath, br-phy for tunnels, br-ex for the external network, and its
//! `dragonflow controller`), the outside namespace, and VMs plugged into br-int.

use super::state::{self, State};
use super::sys::{self, PREFIX, in_ns, ns_exec, run, spawn_detached, veth, wait_for};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The namespace joining the hosts: bridge `ul` (underlay) and bridge `ext` (the physical
/// network `physnet1`, where the outside host lives).
pub const WIRE: &str = "dfsb-wire";
pub const OUTSIDE: &str = "dfsb-outside";
/// The external network: the outside host is its gateway.
pub const EXT_CIDR: &str = "203.0.113.0/24";
pub const OUTSIDE_IP: &str = "203.0.113.1";
pub const PHYSNET: &str = "physnet1";

pub fn wire() -> Result<(), String> {
    sys::netns_add(WIRE)?;
    for br in ["ul", "ext"] {
        ns_exec(WIRE, ["ip", "link", "add", br, "type", "bridge"])?;
        ns_exec(WIRE, ["ip", "link", "set", br, "up"])?;
    }
    Ok(())
}

/// The outside host: `eth0` on the external network, no route to any tenant network.
pub fn outside() -> Result<(), String> {
    sys::netns_add(OUTSIDE)?;
    veth("eth0", OUTSIDE, "out", WIRE)?;
    ns_exec(WIRE, ["ip", "link", "set", "out", "master", "ext"])?;
    ns_exec(
        OUTSIDE,
        [
            "ip",
            "addr",
            "add",
            &format!("{OUTSIDE_IP}/24"),
            "dev",
            "eth0",
        ],
    )?;
    let _ = ns_exec(OUTSIDE, ["ethtool", "-K", "eth0", "tx", "off"]);
    Ok(())
}

/// A command for an OVS tool of the OVS in `dir`, run in namespace `ns`.
fn ovs_cmd(ns: &str, dir: &Path, program: &str) -> Command {
    let mut c = in_ns(ns, [program]);
    c.env("OVS_RUNDIR", dir)
        .env("OVS_LOGDIR", dir)
        .env("OVS_DBDIR", dir);
    c
}

pub fn vsctl(ns: &str, dir: &Path, args: &[&str]) -> Result<String, String> {
    let mut c = ovs_cmd(ns, dir, "ovs-vsctl");
    c.arg(format!("--db=unix:{}", dir.join("db.sock").display()))
        .arg("--timeout=10")
        .args(args);
    run(&mut c)
}

/// An OVS daemon, detached, with pid file, control socket and log in `dir`.
fn ovs_daemon(ns: &str, dir: &Path, name: &str, args: &[String]) -> Result<(), String> {
    let mut c = ovs_cmd(ns, dir, name);
    c.args(args)
        .arg(format!(
            "--pidfile={}",
            dir.join(format!("{name}.pid")).display()
        ))
        .arg(format!(
            "--unixctl={}",
            dir.join(format!("{name}.ctl")).display()
        ))
        .arg(format!(
            "--log-file={}",
            dir.join(format!("{name}.log")).display()
        ))
        .arg("--detach");
    run(&mut c).map(|_| ())
}

/// Host `i` (0-based): namespace, OVS, underlay on br-phy, br-ex on the physical network.
/// Records everything in `st` as it goes.
pub fn start_ovs(st: &mut State, i: usize) -> Result<(), String> {
    let name = format!("host{}", i + 1);
    let ns = format!("{PREFIX}-{name}");
    let dir = state::dir().join(&name);
    let ip = format!("192.0.2.{}", i + 1);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    sys::netns_add(&ns)?;
    st.namespaces.push(ns.clone());
    st.hosts.push(state::Host {
        name: name.clone(),
        ns: ns.clone(),
        ovs_dir: dir.clone(),
        ip: ip.clone(),
    });
    st.save()?;
    run(ovs_cmd(&ns, &dir, "ovsdb-tool")
        .arg("create")
        .arg(dir.join("conf.db"))
        .arg("/usr/share/openvswitch/vswitch.ovsschema"))?;
    ovs_daemon(
        &ns,
        &dir,
        "ovsdb-server",
        &[
            dir.join("conf.db").display().to_string(),
            format!("--remote=punix:{}", dir.join("db.sock").display()),
        ],
    )?;
    vsctl(&ns, &dir, &["--no-wait", "init"])?;
    ovs_daemon(
        &ns,
        &dir,
        "ovs-vswitchd",
        &[
            format!("unix:{}", dir.join("db.sock").display()),
            "--disable-system".into(),
        ],
    )?;
    for d in ["ovsdb-server", "ovs-vswitchd"] {
        if let Some(pid) = read_pid(&dir.join(format!("{d}.pid"))) {
            st.processes.push((format!("{name} {d}"), pid));
        }
    }
    st.save()?;
    // Underlay: br-phy holds the wire NIC and carries the tunnel address.
    veth("ul0", &ns, &format!("{name}-ul"), WIRE)?;
    ns_exec(
        WIRE,
        ["ip", "link", "set", &format!("{name}-ul"), "master", "ul"],
    )?;
    for (br, nic) in [("br-phy", "ul0"), ("br-ex", "ex0")] {
        if nic == "ex0" {
            veth("ex0", &ns, &format!("{name}-ex"), WIRE)?;
            ns_exec(
                WIRE,
                ["ip", "link", "set", &format!("{name}-ex"), "master", "ext"],
            )?;
        }
        vsctl(
            &ns,
            &dir,
            &[
                "add-br",
                br,
                "--",
                "set",
                "bridge",
                br,
                "datapath_type=netdev",
            ],
        )?;
        vsctl(&ns, &dir, &["add-port", br, nic])?;
        ns_exec(&ns, ["ip", "link", "set", br, "up"])?;
    }
    ns_exec(
        &ns,
        ["ip", "addr", "add", &format!("{ip}/24"), "dev", "br-phy"],
    )?;
    Ok(())
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether this build's controller takes `--bridge-mappings` (north-south support).
fn controller_has_bridge_mappings(exe: &Path) -> bool {
    Command::new(exe)
        .args(["controller", "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--bridge-mappings"))
        .unwrap_or(false)
}

/// Starts host `i`'s controller and waits until it has made br-int.
pub fn start_controller(st: &mut State, i: usize, exe: &Path) -> Result<(), String> {
    let h = st.hosts[i].clone();
    let log = h.ovs_dir.join("controller.log");
    // The host's own NB token: it may write only its chassis and its ports' bindings.
    let token = h.ovs_dir.join("nb-token");
    let (auth, _) = neutron_api::nb_auth::NbAuth::load_or_create(&super::state::nb_secret())?;
    super::write_token(
        &auth,
        &neutron_api::nb_auth::Principal::Host(h.name.clone()),
        &token,
    )?;
    let mut c = Command::new(exe);
    c.args(["controller", "--chassis", &h.name, "--nb", &st.nb])
        .arg("--nb-token-file")
        .arg(&token)
        .args(["--local-ip", &h.ip, "--tunnel-types", "geneve,vxlan"])
        .arg(format!(
            "--ovsdb=unix:{}",
            h.ovs_dir.join("db.sock").display()
        ))
        .arg(format!(
            "--openflow=unix:{}",
            h.ovs_dir.join("br-int.mgmt").display()
        ));
    if controller_has_bridge_mappings(exe) {
        c.arg(format!("--bridge-mappings={PHYSNET}:br-ex"));
    }
    // Reading etcd or Redis directly, the controller still asks the server's NB listener
    // for its SNAT address (the server allocates addresses).
    if !st.nb.starts_with("http") {
        c.args(["--api", &st.nb_url]);
    }
    let pid = spawn_detached(&mut c, &log)?;
    st.processes.push((format!("{} controller", h.name), pid));
    st.save()?;
    let ok = wait_for(Duration::from_secs(20), || {
        sys::alive(pid)
            && vsctl(&h.ns, &h.ovs_dir, &["br-exists", "br-int"]).is_ok()
            && h.ovs_dir.join("br-int.mgmt").exists()
    });
    if !ok {
        return Err(format!(
            "the controller of {} did not make br-int: {}",
            h.name,
            sys::tail(&log, 3)
        ));
    }
    Ok(())
}

/// Plugs VM `vm` (its namespace and veth, the host end on br-int with the Neutron port id).
pub fn plug(st: &State, vm: &state::Vm) -> Result<(), String> {
    let h = &st.hosts[vm.host];
    sys::netns_add(&vm.ns)?;
    let tap = format!(
        "tap{}",
        vm.port_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(11)
            .collect::<String>()
    );
    veth("eth0", &vm.ns, &tap, &h.ns)?;
    // The host end carries no address: with the userspace datapath, OVS scans every address
    // of the host on each output it translates (docs/operations.md, "Userspace datapath").
    ns_exec(
        &h.ns,
        [
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{tap}.disable_ipv6=1"),
        ],
    )?;
    ns_exec(&vm.ns, ["ip", "link", "set", "eth0", "down"])?;
    ns_exec(&vm.ns, ["ip", "link", "set", "eth0", "address", &vm.mac])?;
    ns_exec(&vm.ns, ["ip", "link", "set", "eth0", "up"])?;
    // The userspace datapath passes bad TCP checksums with offload on.
    let _ = ns_exec(&vm.ns, ["ethtool", "-K", "eth0", "tx", "off"]);
    // A lost first ARP otherwise costs a second.
    let _ = ns_exec(
        &vm.ns,
        [
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.neigh.eth0.retrans_time_ms=100",
        ],
    );
    vsctl(
        &h.ns,
        &h.ovs_dir,
        &[
            "add-port",
            "br-int",
            &tap,
            "--",
            "set",
            "Interface",
            &tap,
            &format!("external_ids:iface-id={}", vm.port_id),
            &format!("external_ids:attached-mac={}", vm.mac),
        ],
    )?;
    Ok(())
}

/// The files of `vm`'s DHCP client.
fn dhclient_files(vm: &state::Vm) -> (PathBuf, PathBuf) {
    let d = state::dir().join("vms");
    (
        d.join(format!("{}.dhclient.pid", vm.name)),
        d.join(format!("{}.leases", vm.name)),
    )
}

/// Starts `dhclient -1` in `vm` (it keeps running after its lease, renewing). The VM's own
/// `/etc/netns/NS/resolv.conf` exists first, so the client never writes the machine's.
pub fn dhclient(vm: &state::Vm) -> Result<std::process::Child, String> {
    let etc = PathBuf::from("/etc/netns").join(&vm.ns);
    std::fs::create_dir_all(&etc).map_err(|e| format!("cannot create {}: {e}", etc.display()))?;
    std::fs::write(etc.join("resolv.conf"), "")
        .map_err(|e| format!("cannot write {}/resolv.conf: {e}", etc.display()))?;
    let (pf, lf) = dhclient_files(vm);
    if let Some(d) = pf.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let log = state::dir()
        .join("vms")
        .join(format!("{}.dhclient.log", vm.name));
    let log = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    in_ns(&vm.ns, ["dhclient", "-1", "-v", "-pf"])
        .arg(&pf)
        .arg("-lf")
        .arg(&lf)
        .args(["-sf", "/sbin/dhclient-script", "eth0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run dhclient: {e}"))
}

/// The IPv4 addresses on `vm`'s eth0.
pub fn addresses(vm: &state::Vm) -> Vec<String> {
    ns_exec(&vm.ns, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|t| *t == "inet")?;
            Some(w.next()?.split('/').next()?.to_string())
        })
        .collect()
}

/// Static addressing: what DHCP would have given (address, MTU, default route).
pub fn static_address(vm: &state::Vm) -> Result<(), String> {
    let cidr = format!("{}/{}", vm.ip, vm.prefix_len);
    let _ = ns_exec(&vm.ns, ["ip", "addr", "flush", "dev", "eth0"]);
    ns_exec(&vm.ns, ["ip", "addr", "add", &cidr, "dev", "eth0"])?;
    ns_exec(&vm.ns, ["ip", "link", "set", "eth0", "mtu", "1400"])?;
    if !vm.gateway.is_empty() {
        ns_exec(
            &vm.ns,
            ["ip", "route", "replace", "default", "via", &vm.gateway],
        )?;
    }
    Ok(())
}
