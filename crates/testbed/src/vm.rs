//! VMs as a hypervisor makes them: a namespace whose `eth0` is one end of a veth pair, the
//! other end (with no address) plugged into an OVS bridge as a Neutron port; their DHCP
//! client.

use crate::netns::{Netns, veth_via};
use crate::ovs::Ovs;
use crate::process::run;
use std::io;
use std::path::PathBuf;
use std::process::Command;

/// A VM: a namespace whose `eth0` is plugged into a bridge of an [`Ovs`]. One plugged by
/// [`Vm::plug`] is unplugged on drop: its OVS port deleted, then its namespace (deleting a
/// plugged veth and making it again under the same name silently stops forwarding unless
/// the OVS port goes too). One plugged into a kept namespace (`Detached::vm`) stays.
#[derive(Debug)]
pub struct Vm {
    pub ns: Netns,
    /// The OpenFlow port OVS gave its interface.
    pub ofport: u32,
    /// `ovs-vsctl del-port` for drop, and the database socket it needs.
    unplug: Option<(Command, PathBuf)>,
}

impl Vm {
    /// Plugs a new VM into `bridge` of `ovs` as Neutron port `iface_id`, with `mac` and
    /// `cidr` (e.g. `10.0.0.5/24`) on its `eth0` (checksum offload off, as the userspace
    /// datapath needs).
    pub fn plug(ovs: &Ovs, bridge: &str, iface_id: &str, mac: &str, cidr: &str) -> io::Result<Vm> {
        let ns = Netns::new(&crate::unique_name("vm"))?;
        Self::plug_into(None, ns, ovs, bridge, iface_id, mac, Some(cidr))
    }

    /// Plugs a new VM with `mac` and no address on its `eth0` (for DHCP clients).
    pub fn plug_unaddressed(ovs: &Ovs, bridge: &str, iface_id: &str, mac: &str) -> io::Result<Vm> {
        let ns = Netns::new(&crate::unique_name("vm"))?;
        Self::plug_into(None, ns, ovs, bridge, iface_id, mac, None)
    }

    /// Plugs namespace `ns` as a VM: a veth whose `eth0` end goes into `ns` with `mac` (and
    /// `cidr` if given), tx checksum offload off (with it on, ping works but TCP fails with
    /// bad checksums through the userspace datapath), and whose host end
    /// ([`Vm::tap_name`]) goes into `ovs`'s namespace with no address ([`Ovs::vm_port_up`])
    /// and into `bridge` with `external_ids:iface-id` (and `attached-mac`), as Nova does.
    /// The pair is made under the temporary names `tmp` (see [`crate::Detached::veth`]), or
    /// unique ones. A VM in a kept namespace stays plugged when dropped.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn plug_into(
        tmp: Option<(String, String)>,
        ns: Netns,
        ovs: &Ovs,
        bridge: &str,
        iface_id: &str,
        mac: &str,
        cidr: Option<&str>,
    ) -> io::Result<Vm> {
        let tap = Self::tap_name(iface_id);
        let tmp = tmp.unwrap_or_else(|| (crate::unique_name("vta"), crate::unique_name("vtb")));
        veth_via(tmp, ("eth0", Some(ns.name())), (&tap, ovs.netns()))?;
        ns.ip(["link", "set", "eth0", "address", mac])?;
        if let Some(cidr) = cidr {
            ns.ip(["addr", "add", cidr, "dev", "eth0"])?;
        }
        ns.ip(["link", "set", "eth0", "up"])?;
        let _ = ns.exec(["ethtool", "-K", "eth0", "tx", "off"]);
        ovs.vm_port_up(&tap)?;
        ovs.vsctl([
            "add-port",
            bridge,
            &tap,
            "--",
            "set",
            "Interface",
            &tap,
            &format!("external_ids:iface-id={iface_id}"),
            &format!("external_ids:attached-mac={mac}"),
        ])?;
        let ofport = ovs
            .vsctl(["get", "Interface", &tap, "ofport"])?
            .trim()
            .parse()
            .map_err(|_| io::Error::other(format!("{tap}: no ofport")))?;
        let unplug = (!ns.kept()).then(|| {
            let del = ovs.vsctl_cmd(["--if-exists", "del-port", bridge, &tap]);
            (del, ovs.db_sock())
        });
        Ok(Vm { ns, ofport, unplug })
    }

    /// The host end of the VM interface of Neutron port `iface_id`: `tap` and the port id's
    /// first 11 letters and digits, as Nova names it.
    pub fn tap_name(iface_id: &str) -> String {
        let id: String = iface_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(11)
            .collect();
        format!("tap{id}")
    }

    /// True when `ip` answers a ping (the neighbour cache flushed first, so an earlier
    /// failed ARP does not hold the attempt back).
    pub fn pings(&self, ip: &str) -> bool {
        let _ = self.ns.exec(["ip", "neigh", "flush", "dev", "eth0"]);
        self.ns
            .exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", ip])
            .is_ok()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Some((mut del, sock)) = self.unplug.take()
            && sock.exists()
        {
            let _ = run(&mut del);
        }
    }
}
