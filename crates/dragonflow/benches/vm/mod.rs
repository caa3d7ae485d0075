//! What the benches that time a VM's first packet share: a VM namespace made before its
//! port (as Nova boots an instance for a port), and pinging until the first reply.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// A VM namespace with `mac` and `ip/prefix` on its eth0, whose other end (`tap`, returned)
/// is up in the host's namespace and not yet on any bridge. The VM asks ARP again every
/// 10 ms and does not give up.
pub fn make(ovs: &testbed::Ovs, mac: &str, ip: &str, prefix: u8) -> (testbed::Netns, String) {
    let ns = testbed::Netns::new(&testbed::unique_name("bvm")).expect("netns");
    let tap = testbed::unique_name("tb");
    testbed::veth("eth0", Some(&ns), &tap, ovs.own_netns()).expect("veth");
    for args in [
        vec!["ip", "link", "set", "eth0", "address", mac],
        vec![
            "ip",
            "addr",
            "add",
            &format!("{ip}/{prefix}"),
            "dev",
            "eth0",
        ],
        vec!["ip", "link", "set", "eth0", "up"],
        vec!["sysctl", "-qw", "net.ipv4.neigh.eth0.retrans_time_ms=10"],
        // Keep asking for the target's MAC (every 10 ms) rather than failing after three.
        vec!["sysctl", "-qw", "net.ipv4.neigh.eth0.mcast_solicit=100"],
    ] {
        ns.exec(args).expect("vm set-up");
    }
    let _ = ns.exec(["ethtool", "-K", "eth0", "tx", "off"]);
    ovs.vm_port_up(&tap).expect("tap up");
    (ns, tap)
}

/// [`make`] for an IPv6-only VM: `ip/64` on its eth0 (no duplicate address detection, as
/// a VM whose address was given to it), no router advertisements taken, neighbour
/// solicitations again every 10 ms without giving up. The IPv4 side is left as a new
/// namespace has it (no address).
pub fn make6(ovs: &testbed::Ovs, mac: &str, ip: &str) -> (testbed::Netns, String) {
    let ns = testbed::Netns::new(&testbed::unique_name("bvm")).expect("netns");
    let tap = testbed::unique_name("tb");
    testbed::veth("eth0", Some(&ns), &tap, ovs.own_netns()).expect("veth");
    for args in [
        vec!["ip", "link", "set", "eth0", "address", mac],
        vec!["sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=0"],
        vec!["sysctl", "-qw", "net.ipv6.neigh.eth0.retrans_time_ms=10"],
        vec!["sysctl", "-qw", "net.ipv6.neigh.eth0.mcast_solicit=100"],
        vec![
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{ip}/64"),
            "dev",
            "eth0",
            "nodad",
        ],
        vec!["ip", "link", "set", "eth0", "up"],
    ] {
        ns.exec(args).expect("vm set-up");
    }
    let _ = ns.exec(["ethtool", "-K", "eth0", "tx", "off"]);
    ovs.vm_port_up(&tap).expect("tap up");
    (ns, tap)
}

/// Plugs `tap` into br-int as Neutron port `id`.
pub fn plug(ovs: &testbed::Ovs, tap: &str, id: &str) {
    ovs.vsctl([
        "add-port",
        "br-int",
        tap,
        "--",
        "set",
        "Interface",
        tap,
        &format!("external_ids:iface-id={id}"),
    ])
    .expect("plug");
}

/// Pings `target` from `ns` every 2 ms until the first reply (until the port's flows are
/// in, the VM's ARP goes unanswered and ping gives up: it is asked again); whether one
/// came within `limit`.
pub fn first_reply(ns: &testbed::Netns, target: &str, start: Instant, limit: Duration) -> bool {
    // `ping` speaks IPv6 to an IPv6 address by itself.
    while start.elapsed() < limit {
        if ns
            .command([
                "ping", "-n", "-q", "-c", "1", "-i", "0.002", "-w", "2", target,
            ])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return true;
        }
    }
    false
}
