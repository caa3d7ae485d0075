//! The sandbox's machines, built on the detached lab (`testbed::Detached`): the wire
//! namespace (underlay and physical network as Linux bridges), each host (a namespace with
//! its own OVS on the userspace datapath, br-phy for tunnels, br-ex for the external network,
//! and its `dragonflow controller`), the outside namespace, and VMs plugged into br-int
//! with their DHCP client.

use super::Result;
use super::state::{self, State};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testbed::{Netns, Ovs};

/// The namespace joining the hosts (`dfsb-wire`): bridge `ul` (underlay) and bridge `ext`
/// (the physical network `physnet1`, where the outside host lives).
pub const WIRE: &str = "wire";
/// The outside host's namespace (`dfsb-outside`).
pub const OUTSIDE: &str = "outside";
/// The external network: the outside host is its gateway.
pub const EXT_CIDR: &str = "203.0.113.0/24";
pub const OUTSIDE_IP: &str = "203.0.113.1";
pub const PHYSNET: &str = "physnet1";

/// The wire namespace; recorded in `st`.
pub fn wire(st: &mut State) -> Result<()> {
    let ns = record_netns(st, WIRE)?;
    for br in ["ul", "ext"] {
        ns.ip(["link", "add", br, "type", "bridge"])?;
        ns.ip(["link", "set", br, "up"])?;
    }
    Ok(())
}

/// The outside host: `eth0` on the external network, no route to any tenant network.
pub fn outside(st: &mut State) -> Result<()> {
    let ns = record_netns(st, OUTSIDE)?;
    let lab = state::lab();
    let wire = Netns::attach(&lab.ns_name(WIRE));
    lab.veth("eth0", &ns, "out", &wire)?;
    wire.ip(["link", "set", "out", "master", "ext"])?;
    ns.ip(["addr", "add", &format!("{OUTSIDE_IP}/24"), "dev", "eth0"])?;
    let _ = ns.exec(["ethtool", "-K", "eth0", "tx", "off"]);
    st.outside_ip = OUTSIDE_IP.into();
    st.save()?;
    Ok(())
}

/// Creates the lab's namespace `name`, recorded in the state file first.
fn record_netns(st: &mut State, name: &str) -> Result<Netns> {
    st.namespaces.push(state::lab().ns_name(name));
    st.save()?;
    Ok(state::lab().netns(name)?)
}

/// The OVS of host `h`, started by `up`.
pub fn ovs(h: &state::Host) -> Ovs {
    Ovs::attach(Some(&h.ns), &h.ovs_dir)
}

/// Host `i` (0-based): namespace, OVS, underlay on br-phy, br-ex on the physical network.
/// Records everything in `st` as it goes.
pub fn start_ovs(st: &mut State, i: usize) -> Result<()> {
    let lab = state::lab();
    let name = format!("host{}", i + 1);
    let ip = format!("192.0.2.{}", i + 1);
    let ns = record_netns(st, &name)?;
    st.hosts.push(state::Host {
        name: name.clone(),
        ns: ns.name().into(),
        ovs_dir: lab.dir().join(&name),
        ip: ip.clone(),
    });
    st.save()?;
    let ovs = lab.ovs(&ns, &name)?;
    for (daemon, pid) in ovs.pids() {
        st.processes.push((format!("{name} {daemon}"), pid));
    }
    st.save()?;
    // Underlay: br-phy holds the wire NIC and carries the tunnel address; br-ex holds the
    // NIC on the physical network.
    let wire = Netns::attach(&lab.ns_name(WIRE));
    let tunnel_ip = format!("{ip}/24");
    for (br, nic, switch, cidr) in [
        ("br-phy", "ul0", "ul", Some(tunnel_ip.as_str())),
        ("br-ex", "ex0", "ext", None),
    ] {
        let end = format!("{name}-{}", &nic[..2]);
        lab.veth(nic, &ns, &end, &wire)?;
        wire.ip(["link", "set", &end, "master", switch])?;
        ovs.add_nic_bridge(br, nic, cidr)?;
    }
    Ok(())
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
pub fn start_controller(st: &mut State, i: usize, exe: &Path) -> Result<()> {
    let h = st.hosts[i].clone();
    let ovs = ovs(&h);
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
        .arg(format!("--ovsdb=unix:{}", ovs.db_sock().display()))
        .arg(format!(
            "--openflow=unix:{}",
            ovs.mgmt_sock("br-int").display()
        ));
    if controller_has_bridge_mappings(exe) {
        c.arg(format!("--bridge-mappings={PHYSNET}:br-ex"));
    }
    // Reading etcd or Redis directly, the controller still asks the server's NB listener
    // for its SNAT address (the server allocates addresses).
    if !st.nb.starts_with("http") {
        c.args(["--api", &st.nb_url]);
    }
    let pid = testbed::spawn_detached(&mut c, &log)?;
    st.processes.push((format!("{} controller", h.name), pid));
    st.save()?;
    let ok = testbed::wait_for(Duration::from_secs(20), || {
        testbed::alive(pid)
            && ovs.vsctl(["br-exists", "br-int"]).is_ok()
            && ovs.mgmt_sock("br-int").exists()
    });
    if !ok {
        return Err(format!(
            "the controller of {} did not make br-int: {}",
            h.name,
            testbed::tail(&log, 3)
        )
        .into());
    }
    Ok(())
}

/// Plugs VM `vm` into its host's br-int as its Neutron port (its namespace and veth, no
/// address yet).
pub fn plug(st: &State, vm: &state::Vm) -> Result<()> {
    let h = &st.hosts[vm.host];
    let plugged = state::lab().vm(&vm.name, &ovs(h), "br-int", &vm.port_id, &vm.mac)?;
    // A lost first ARP otherwise costs a second.
    let _ = plugged.ns.exec([
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.neigh.eth0.retrans_time_ms=100",
    ]);
    Ok(())
}

/// Starts `dhclient -1` in `vm` (it keeps running after its lease, renewing), with its
/// pid, lease and log files in `vms/`.
pub fn dhclient(vm: &state::Vm) -> Result<Child> {
    let d = state::lab().mkdir("vms")?;
    let file = |what: &str| -> PathBuf { d.join(format!("{}.{what}", vm.name)) };
    let log = std::fs::File::create(file("dhclient.log"))?;
    let child = Netns::attach(&vm.ns)
        .dhclient("eth0", &file("dhclient.pid"), &file("leases"), &["-1"])?
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    Ok(child)
}

/// The IPv4 addresses on `vm`'s eth0.
pub fn addresses(vm: &state::Vm) -> Vec<String> {
    Netns::attach(&vm.ns)
        .ip(["-4", "-o", "addr", "show", "dev", "eth0"])
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
pub fn static_address(vm: &state::Vm) -> Result<()> {
    let ns = Netns::attach(&vm.ns);
    let cidr = format!("{}/{}", vm.ip, vm.prefix_len);
    let _ = ns.ip(["addr", "flush", "dev", "eth0"]);
    ns.ip(["addr", "add", &cidr, "dev", "eth0"])?;
    ns.ip(["link", "set", "eth0", "mtu", "1400"])?;
    if !vm.gateway.is_empty() {
        ns.ip(["route", "replace", "default", "via", &vm.gateway])?;
    }
    Ok(())
}
