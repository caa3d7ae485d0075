//! `dragonflow capture PORT`: a tcpdump of one logical port on its host, through an OVS
//! mirror. The port's traffic both ways is copied to an internal port made for the capture,
//! tcpdump reads that port, and both the mirror and the port are removed when tcpdump ends
//! (Ctrl-C included). Nothing in the pipeline changes: a mirror copies what the datapath
//! sends and receives on the port, after and before the flow tables.
//!
//! The plan (the `ovs-vsctl` command lines) is pure and unit-tested; the runtime only runs
//! them, as `dragonflow trace --real` runs `ovs-vsctl` and `ovs-appctl`.

use std::process::{Command, Stdio};

/// The command line of `dragonflow capture`.
#[derive(clap::Args)]
pub struct Args {
    /// The port: its id (the interface's `iface-id`), or its name or fixed IP (then looked
    /// up through the NB store with `--nb`).
    port: String,
    /// The integration bridge.
    #[arg(long, default_value = "br-int")]
    bridge: String,
    /// OVSDB (`unix:PATH`; default: OVS's own, under `OVS_RUNDIR`).
    #[arg(long)]
    ovsdb: Option<String>,
    /// tcpdump's own arguments (after `--`): a count, a filter, `-w FILE`, `-e`, ...
    #[arg(last = true)]
    tcpdump: Vec<String>,
}

/// What a capture of the OVS port `vm_port` of port `port_id` adds and removes.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// The bridge of the port.
    pub bridge: String,
    /// The internal port that receives the copies (an interface name: at most 15 bytes).
    pub tap: String,
    /// The mirror's name, which says whose capture it is.
    pub mirror: String,
    /// `ovs-vsctl` arguments that add the tap port and the mirror in one transaction.
    pub add: Vec<String>,
    /// `ovs-vsctl` arguments that remove the tap port (the mirror then has no output; it
    /// is removed by its uuid, found by name, by [`remove`]).
    pub del_port: Vec<String>,
}

/// The capture of `vm_port` (the OVS port of Neutron port `port_id`) on `bridge`.
pub fn plan(bridge: &str, vm_port: &str, port_id: &str) -> Plan {
    let short: String = port_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    let tap = format!("dfcap{short}");
    let mirror = format!("dragonflow-capture-{port_id}");
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let add = s(&[
        "--",
        "add-port",
        bridge,
        &tap,
        "--",
        "set",
        "Interface",
        &tap,
        "type=internal",
        "--",
        "--id=@out",
        "get",
        "Port",
        &tap,
        "--",
        "--id=@vm",
        "get",
        "Port",
        vm_port,
        "--",
        "--id=@m",
        "create",
        "Mirror",
        &format!("name={mirror}"),
        "select-src-port=@vm",
        "select-dst-port=@vm",
        "output-port=@out",
        "--",
        "add",
        "Bridge",
        bridge,
        "mirrors",
        "@m",
    ]);
    let del_port = s(&["--if-exists", "del-port", bridge, &tap]);
    Plan {
        bridge: bridge.to_string(),
        tap,
        mirror,
        add,
        del_port,
    }
}

/// `dragonflow capture`.
pub fn run(nb: &str, token: Option<&str>, args: Args) -> Result<(), String> {
    let ifaces = crate::trace::real::interfaces(args.ovsdb.as_deref())?;
    let found = |id: &str| {
        ifaces
            .iter()
            .find(|i| i.iface_id.as_deref() == Some(id))
            .map(|i| i.name.clone())
    };
    let (port_id, vm_port) = match found(&args.port) {
        Some(name) => (args.port.clone(), name),
        None => {
            // A name or an address: the store says which port it is.
            let snap = crate::db::snapshot(nb, token)?;
            let mut view = controller::view::View::new("");
            view.load(&snap);
            let p = crate::trace::frame::find_port(&view, &args.port)?;
            let name = found(&p.meta.id).ok_or_else(|| {
                format!(
                    "port {} is not plugged on this host (no interface has its iface-id); it is bound to {:?}",
                    p.meta.id, p.binding_host_id
                )
            })?;
            (p.meta.id, name)
        }
    };
    let plan = plan(&args.bridge, &vm_port, &port_id);
    let db = args.ovsdb.as_ref().map(|d| format!("--db={d}"));
    let vsctl = |argv: &[String]| -> Result<String, String> {
        let mut all: Vec<&str> = db.iter().map(String::as_str).collect();
        all.extend(argv.iter().map(String::as_str));
        crate::trace::real::run("ovs-vsctl", &all)
    };
    // A capture killed before it could clean up left these behind.
    remove(&plan, &vsctl);
    vsctl(&plan.add)?;
    let result = capture(&plan, &args.tcpdump, &vm_port);
    remove(&plan, &vsctl);
    eprintln!(
        "capture: removed mirror {} and port {}",
        plan.mirror, plan.tap
    );
    result
}

/// Removes the mirror (by its uuid, found by name) and the tap port; either may be absent.
fn remove(plan: &Plan, vsctl: &impl Fn(&[String]) -> Result<String, String>) {
    let find = [
        "--bare",
        "--columns=_uuid",
        "find",
        "Mirror",
        &format!("name={}", plan.mirror),
    ]
    .map(str::to_string);
    if let Ok(uuids) = vsctl(&find) {
        for uuid in uuids.split_whitespace() {
            let _ = vsctl(&["remove", "Bridge", &plan.bridge, "mirrors", uuid].map(str::to_string));
        }
    }
    let _ = vsctl(&plan.del_port);
}

/// Brings the tap up (without IPv6, so that the host sends nothing on it) and runs tcpdump
/// on it until it ends.
fn capture(plan: &Plan, extra: &[String], vm_port: &str) -> Result<(), String> {
    let sysctl = format!("net.ipv6.conf.{}.disable_ipv6=1", plan.tap);
    let _ = Command::new("sysctl").args(["-qw", &sysctl]).status();
    let up = Command::new("ip")
        .args(["link", "set", &plan.tap, "up"])
        .status()
        .map_err(|e| format!("ip link: {e}"))?;
    if !up.success() {
        return Err(format!("cannot bring {} up", plan.tap));
    }
    eprintln!(
        "capture: port {vm_port} mirrored to {} (mirror {}); tcpdump {}",
        plan.tap,
        plan.mirror,
        extra.join(" ")
    );
    // Ctrl-C goes to the whole foreground group: tcpdump stops by itself and prints its
    // counts; we only must not die before removing the mirror. Taking SIGINT through
    // tokio replaces its default action (exit) for this process; the child, after exec,
    // has the default again.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let _sigint = rt
        .block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        })
        .map_err(|e| format!("SIGINT: {e}"))?;
    let status = Command::new("tcpdump")
        .args(["-i", &plan.tap, "-n", "-l", "-U"])
        .args(extra)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("tcpdump: {e}"))?;
    match status.code() {
        Some(0) | None => Ok(()),
        Some(c) => Err(format!("tcpdump exited with status {c}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_adds_a_tap_and_a_mirror_of_both_directions_in_one_transaction() {
        let p = plan("br-int", "vm1", "5b1c2d3e-aaaa-bbbb-cccc-000000000001");
        assert_eq!(p.tap, "dfcap5b1c2d3e");
        assert!(p.tap.len() <= 15);
        assert_eq!(
            p.mirror,
            "dragonflow-capture-5b1c2d3e-aaaa-bbbb-cccc-000000000001"
        );
        let add = p.add.join(" ");
        assert!(add.starts_with(
            "-- add-port br-int dfcap5b1c2d3e -- set Interface dfcap5b1c2d3e type=internal"
        ));
        assert!(add.contains("--id=@vm get Port vm1"));
        assert!(add.contains("select-src-port=@vm select-dst-port=@vm output-port=@out"));
        assert!(add.ends_with("add Bridge br-int mirrors @m"));
        assert_eq!(
            p.del_port.join(" "),
            "--if-exists del-port br-int dfcap5b1c2d3e"
        );
    }

    #[test]
    fn a_port_id_without_hex_still_gives_a_valid_interface_name() {
        let p = plan("br-int", "vm1", "zz-weird-id-that-is-very-long");
        assert!(p.tap.len() <= 15 && p.tap.starts_with("dfcap"));
    }
}
