//! The container's interface as a hypervisor makes a VM's: a veth pair whose container
//! end carries the port's MAC, addresses and routes, and whose host end (no address) is
//! plugged into the integration bridge with the port's `iface-id`. The steps are planned
//! as plain command lines (pure, tested here) and then run; a failed ADD undoes its steps.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

/// What the container end gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub port_id: String,
    pub container_id: String,
    pub mac: String,
    pub mtu: u32,
    /// `address/prefix` of each fixed IP.
    pub addresses: Vec<String>,
    /// The default route of each IP version that has a gateway.
    pub gateways: Vec<IpAddr>,
    /// Nested mode: the VLAN of the port's subport; the host end is an access port of it.
    pub vlan: Option<u16>,
}

/// Where the two ends live and how OVS is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place<'a> {
    pub netns: &'a Path,
    pub ifname: &'a str,
    pub bridge: &'a str,
    pub ovsdb: &'a str,
    pub ovs_netns: Option<&'a str>,
}

/// The host end of port `port_id`: `tap` and the id's first 11 letters and digits, as Nova
/// names a VM's (15 characters, the kernel's limit).
pub fn tap_name(port_id: &str) -> String {
    let id: String = port_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(11)
        .collect();
    format!("tap{id}")
}

/// A name the kernel takes for an interface: 1 to 15 bytes, no '/', no blank.
pub fn is_ifname(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b.is_ascii_whitespace() || b == 0)
}

type Argv = Vec<String>;

fn argv(parts: &[&str]) -> Argv {
    parts.iter().map(|s| s.to_string()).collect()
}

impl Place<'_> {
    /// A command in the namespace Open vSwitch runs in.
    fn host(&self, parts: &[&str]) -> Argv {
        match self.ovs_netns {
            Some(ns) => [&["ip", "netns", "exec", ns][..], parts].concat(),
            None => parts.to_vec(),
        }
        .into_iter()
        .map(str::to_string)
        .collect()
    }

    /// A command in the container's namespace.
    fn inside(&self, parts: &[&str]) -> Argv {
        let net = format!("--net={}", self.netns.display());
        let mut v = argv(&["nsenter", &net, "--"]);
        v.extend(argv(parts));
        v
    }

    fn vsctl(&self, parts: &[&str]) -> Argv {
        let db = format!("--db={}", self.ovsdb);
        let mut v = argv(&["ovs-vsctl", "--timeout=10", &db]);
        v.extend(argv(parts));
        v
    }

    /// Removes whatever an earlier, interrupted ADD or a DEL's target left on the host:
    /// the OVS port and the host end (the container end goes with it). Each may be absent.
    pub fn remove(&self, tap: &str) -> Vec<Argv> {
        vec![
            self.vsctl(&["--if-exists", "del-port", self.bridge, tap]),
            self.host(&["ip", "link", "del", tap]),
        ]
    }

    /// The steps that make the interface and plug it. `offload_off`: the bridge's datapath
    /// is OVS's userspace one, which needs the container to checksum its own packets.
    pub fn add(&self, a: &Attachment, offload_off: bool) -> Vec<Argv> {
        let tap = tap_name(&a.port_id);
        let mtu = a.mtu.to_string();
        let ns = self.netns.display().to_string();
        let mut steps = vec![self.host(&[
            "ip",
            "link",
            "add",
            &tap,
            "mtu",
            &mtu,
            "type",
            "veth",
            "peer",
            "name",
            self.ifname,
            "netns",
            &ns,
        ])];
        steps.push(self.inside(&[
            "ip",
            "link",
            "set",
            self.ifname,
            "address",
            &a.mac,
            "mtu",
            &mtu,
        ]));
        for cidr in &a.addresses {
            steps.push(self.inside(&["ip", "addr", "add", cidr, "dev", self.ifname]));
        }
        steps.push(self.inside(&["ip", "link", "set", self.ifname, "up"]));
        steps.push(self.inside(&["ip", "link", "set", "lo", "up"]));
        for gw in &a.gateways {
            let (v, default) = match gw {
                IpAddr::V4(_) => ("-4", "0.0.0.0/0"),
                IpAddr::V6(_) => ("-6", "::/0"),
            };
            let gw = gw.to_string();
            steps.push(self.inside(&[
                "ip",
                v,
                "route",
                "add",
                default,
                "via",
                &gw,
                "dev",
                self.ifname,
            ]));
        }
        if offload_off {
            steps.push(self.inside(&["ethtool", "-K", self.ifname, "tx", "off"]));
        }
        // The host end carries no address and sends nothing of its own (no IPv6 DAD or
        // router solicitation into the port), as a hypervisor's tap.
        let sysctl = format!("net.ipv6.conf.{tap}.disable_ipv6=1");
        steps.push(self.host(&["sysctl", "-qw", &sysctl]));
        steps.push(self.host(&["ip", "link", "set", &tap, "up"]));
        let tag = a.vlan.map(|v| format!("tag={v}"));
        let (id, mac, owner) = (
            format!("external_ids:iface-id={}", a.port_id),
            format!("external_ids:attached-mac={}", a.mac),
            format!("external_ids:cni-container-id={}", a.container_id),
        );
        let mut plug = vec!["add-port", self.bridge, &tap];
        plug.extend(tag.as_deref());
        plug.extend(["--", "set", "Interface", &tap, &id, &mac, &owner]);
        steps.push(self.vsctl(&plug));
        steps
    }

    /// The MAC of `iface`, an interface where Open vSwitch runs (nested mode: the VM's link).
    pub fn mac_of(&self, iface: &str) -> Result<String, String> {
        let path = format!("/sys/class/net/{iface}/address");
        let mac = run(&self.host(&["cat", &path]))?;
        Ok(mac.trim().to_string())
    }

    /// Whether the bridge is a userspace (netdev) datapath.
    pub fn datapath_is_netdev(&self) -> Result<bool, String> {
        let out = run(&self.vsctl(&["get", "Bridge", self.bridge, "datapath_type"]))?;
        Ok(out.trim().trim_matches('"') == "netdev")
    }

    /// Whether the container already has an interface of this name.
    pub fn ifname_exists(&self) -> bool {
        run(&self.inside(&["ip", "link", "show", self.ifname])).is_ok()
    }

    /// What the container end holds: its MAC and `address/prefix` list.
    pub fn inspect(&self) -> Result<(String, Vec<String>), String> {
        let out = run(&self.inside(&["ip", "-j", "addr", "show", "dev", self.ifname]))?;
        let v: serde_json::Value =
            serde_json::from_str(&out).map_err(|e| format!("ip -j addr: {e}"))?;
        let link = &v[0];
        let mac = link["address"].as_str().unwrap_or_default().to_string();
        let addrs = link["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["scope"] == "global")
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
            .collect();
        Ok((mac, addrs))
    }

    /// The `iface-id` OVS holds for the host end, if plugged.
    pub fn plugged_id(&self, tap: &str) -> Option<String> {
        run(&self.vsctl(&[
            "--if-exists",
            "get",
            "Interface",
            tap,
            "external_ids:iface-id",
        ]))
        .ok()
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
    }
}

/// Runs one planned command; its stdout, or its stderr as the error.
pub fn run(argv: &[String]) -> Result<String, String> {
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs every step of an ADD; on the first failure, removes what was made and says why.
pub fn make(place: &Place<'_>, a: &Attachment, offload_off: bool) -> Result<(), String> {
    let tap = tap_name(&a.port_id);
    for step in place.add(a, offload_off) {
        if let Err(e) = run(&step) {
            for undo in place.remove(&tap) {
                let _ = run(&undo);
            }
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(ovs_netns: Option<&str>) -> Place<'_> {
        Place {
            netns: Path::new("/var/run/netns/pod1"),
            ifname: "eth0",
            bridge: "br-int",
            ovsdb: "unix:/run/ovs/db.sock",
            ovs_netns,
        }
    }

    fn attachment() -> Attachment {
        Attachment {
            port_id: "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0".into(),
            container_id: "c1".into(),
            mac: "fa:16:3e:00:00:01".into(),
            mtu: 1442,
            addresses: vec!["10.0.0.5/24".into(), "fd00::5/64".into()],
            gateways: vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
            vlan: None,
        }
    }

    #[test]
    fn tap_names_are_novas() {
        assert_eq!(tap_name("0b1c2d3e-4f50-6172"), "tap0b1c2d3e4f5");
        assert_eq!(tap_name("0b1c2d3e-4f50-6172").len(), 14);
    }

    #[test]
    fn add_makes_the_pair_addresses_routes_then_plugs() {
        let steps: Vec<String> = place(None)
            .add(&attachment(), true)
            .iter()
            .map(|s| s.join(" "))
            .collect();
        let ns = "nsenter --net=/var/run/netns/pod1 --";
        assert_eq!(
            steps,
            [
                "ip link add tap0b1c2d3e4f5 mtu 1442 type veth peer name eth0 netns /var/run/netns/pod1".to_string(),
                format!("{ns} ip link set eth0 address fa:16:3e:00:00:01 mtu 1442"),
                format!("{ns} ip addr add 10.0.0.5/24 dev eth0"),
                format!("{ns} ip addr add fd00::5/64 dev eth0"),
                format!("{ns} ip link set eth0 up"),
                format!("{ns} ip link set lo up"),
                format!("{ns} ip -4 route add 0.0.0.0/0 via 10.0.0.1 dev eth0"),
                format!("{ns} ip -6 route add ::/0 via fd00::1 dev eth0"),
                format!("{ns} ethtool -K eth0 tx off"),
                "sysctl -qw net.ipv6.conf.tap0b1c2d3e4f5.disable_ipv6=1".to_string(),
                "ip link set tap0b1c2d3e4f5 up".to_string(),
                "ovs-vsctl --timeout=10 --db=unix:/run/ovs/db.sock add-port br-int tap0b1c2d3e4f5 -- set Interface tap0b1c2d3e4f5 external_ids:iface-id=0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0 external_ids:attached-mac=fa:16:3e:00:00:01 external_ids:cni-container-id=c1".to_string(),
            ]
        );
    }

    #[test]
    fn a_nested_container_is_an_access_port_of_its_vlan() {
        let mut a = attachment();
        a.vlan = Some(7);
        let p = Place {
            bridge: "br-vm",
            ..place(Some("vm1"))
        };
        let plug = p.add(&a, true).pop().unwrap().join(" ");
        assert!(
            plug.starts_with("ovs-vsctl --timeout=10 --db=unix:/run/ovs/db.sock add-port br-vm tap0b1c2d3e4f5 tag=7 -- set Interface tap0b1c2d3e4f5 external_ids:iface-id="),
            "{plug}"
        );
        assert_eq!(
            p.host(&["cat", "/sys/class/net/eth0/address"]).join(" "),
            "ip netns exec vm1 cat /sys/class/net/eth0/address"
        );
    }

    #[test]
    fn interface_names_are_the_kernels() {
        for ok in ["eth0", "ens3", "a", "tap0b1c2d3e4f5a"] {
            assert!(is_ifname(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "sixteen-letters!"] {
            assert!(!is_ifname(bad), "{bad}");
        }
    }

    #[test]
    fn host_steps_run_in_the_ovs_namespace_when_named() {
        let p = place(Some("hostns"));
        let mut a = attachment();
        a.gateways.clear();
        let steps = p.add(&a, false);
        assert_eq!(steps[0][..4], argv(&["ip", "netns", "exec", "hostns"]));
        assert!(!steps.iter().any(|s| s.contains(&"ethtool".to_string())));
        assert!(!steps.iter().any(|s| s.contains(&"route".to_string())));
        let remove: Vec<String> = p.remove("tapx").iter().map(|s| s.join(" ")).collect();
        assert_eq!(
            remove,
            [
                "ovs-vsctl --timeout=10 --db=unix:/run/ovs/db.sock --if-exists del-port br-int tapx",
                "ip netns exec hostns ip link del tapx"
            ]
        );
    }
}
