//! `dragonflow trace`: follows a packet, described in Neutron terms, through the pipeline
//! that each host's controller compiles, and says what happened to it and which Neutron
//! objects decided. The pipelines are compiled from a snapshot of the NB store by the
//! controller's own compiler onto the fake switch, hosts joined by their tunnels; `--real`
//! also runs the frame through this host's Open vSwitch and checks that it agrees.

pub(crate) mod explain;
pub(crate) mod frame;
mod fwaas;
mod inspect;
pub(crate) mod real;
mod rules;
#[cfg(test)]
mod tests;
mod world;

use explain::Report;
pub(crate) use frame::Proto;
use world::World;

/// What to trace.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sender: a port's id, name, or fixed IP address.
    #[arg(long)]
    from: String,
    /// The destination: IP, IP:PORT or [IPv6]:PORT.
    #[arg(long, required_unless_present = "frame")]
    to: Option<String>,
    /// The protocol (default: tcp with a destination port, else icmp echo).
    #[arg(long, value_enum)]
    proto: Option<Proto>,
    /// A first packet (`new`), or one of a connection already admitted (`established`: the
    /// same packet is sent once before the traced one, so conntrack knows it).
    #[arg(long, value_enum, default_value = "new")]
    state: State,
    /// Experts: this Ethernet frame (hex) sent by the port instead of one made up.
    #[arg(long)]
    frame: Option<String>,
    /// Also trace the frame through this host's Open vSwitch (`ovs-appctl ofproto/trace`;
    /// run on the sender's host) and fail if its tables differ from the compiled ones.
    #[arg(long)]
    real: bool,
    /// The integration bridge, for `--real`.
    #[arg(long, default_value = "br-int")]
    bridge: String,
    /// OVSDB for `--real` (`unix:PATH`; default: OVS's own, under `OVS_RUNDIR`).
    #[arg(long)]
    ovsdb: Option<String>,
    /// ovs-vswitchd's control socket for `--real` (default: OVS's own).
    #[arg(long)]
    vswitchd_ctl: Option<String>,
    /// Each host's OVS directory (the sandbox's): where `--real` finds the sender's OVS
    /// when `--ovsdb` and `--vswitchd-ctl` are not given.
    #[arg(skip)]
    pub ovs_dirs: std::collections::BTreeMap<String, std::path::PathBuf>,
}

/// Connection state of the traced packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum State {
    New,
    Established,
}

/// A trace of a made-up packet from port `from` (id, name or IP) to `to` (IP[:port]) on
/// the pipelines compiled from `snap`, with no real switch: what the web console shows.
pub(crate) fn trace(
    snap: &nbdb::Snapshot,
    from: &str,
    to: &str,
    proto: Option<Proto>,
    state: State,
) -> Result<Report, String> {
    let mut world = World::compile(snap, None)?;
    let from = frame::find_port(&world.view, from)?;
    let (host, ofport) = sender(&world, &from)?;
    let (dst, dport) = frame::parse_to(to)?;
    let probe = frame::probe(&world.view, from, dst, dport, proto)?;
    let bytes = frame::frame(&world.view, &probe)?;
    Ok(send(&mut world, &host, ofport, Some(&probe), &bytes, state))
}

/// The host a port is bound to and its OpenFlow port there (a trunk subport's: its
/// parent's, where its VM sends it tagged).
fn sender(world: &World, from: &model::Port) -> Result<(String, u32), String> {
    let host = world.host_of(from)?;
    let name = host.chassis.id.clone();
    let ofport = host.host.door(&from.meta.id).ok_or_else(|| {
        format!(
            "port {} is bound to {name} but not plugged there (no interface has its iface-id)",
            from.meta.id
        )
    })?;
    Ok((name, ofport))
}

/// Sends `bytes` in at `ofport` of `host` (twice for an established connection: the
/// first makes conntrack know it) and explains what happened to the last one.
fn send(
    world: &mut World,
    host: &str,
    ofport: u32,
    probe: Option<&frame::Probe>,
    bytes: &[u8],
    state: State,
) -> Report {
    if state == State::Established {
        world.net.send(host, ofport, bytes);
    }
    let delivery = world.net.send(host, ofport, bytes);
    explain::explain(world, host, probe, &delivery)
}

/// `dragonflow flows --owner X`.
pub fn flows(nb: &str, token: Option<&str>, owner: &str, json: bool) -> Result<(), String> {
    let snap = crate::db::snapshot(nb, token)?;
    inspect::flows(&World::compile(&snap, None)?, owner, json)
}

/// `dragonflow port X`.
pub fn port(
    nb: &str,
    token: Option<&str>,
    what: &str,
    switch: Option<&std::path::Path>,
    json: bool,
) -> Result<(), String> {
    let snap = crate::db::snapshot(nb, token)?;
    let counters = switch.map(meter_stats).transpose()?;
    let hosts = crate::db::realized(nb, token)?;
    let stored_at = |id: &str| {
        snap.records
            .iter()
            .find(|r| r.table == model::Table::Port.name() && r.id == id)
            .map_or(0, |r| r.revision)
    };
    let applied = |host: &str| {
        hosts
            .iter()
            .find(|h| h.host == host)
            .map(|h| (h.applied, h.alive))
    };
    inspect::port(
        &World::compile(&snap, None)?,
        what,
        stored_at,
        applied,
        counters.as_deref(),
        json,
    )
}

/// Every meter's counters, read from the bridge at `socket` over OpenFlow.
fn meter_stats(socket: &std::path::Path) -> Result<Vec<openflow::meter::MeterStats>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut sw = controller::switch::Session::connect_unix(socket)
            .await
            .map_err(|e| format!("{}: {e}", socket.display()))?;
        sw.meter_stats()
            .await
            .map_err(|e| format!("meter stats: {e}"))
    })
}

pub fn run(nb: &str, token: Option<&str>, json: bool, mut args: Args) -> Result<(), String> {
    let snap = crate::db::snapshot(nb, token)?;
    let mut all = controller::view::View::new("");
    all.load(&snap);
    let from = frame::find_port(&all, &args.from)?;
    if let Some(dir) = args.ovs_dirs.get(&from.binding_host_id) {
        let ovsdb = format!("unix:{}", dir.join("db.sock").display());
        let ctl = dir.join("ovs-vswitchd.ctl").display().to_string();
        args.ovsdb.get_or_insert(ovsdb);
        args.vswitchd_ctl.get_or_insert(ctl);
    }
    let real_ifaces = if args.real {
        Some((
            from.binding_host_id.clone(),
            real::bridge_interfaces(args.ovsdb.as_deref(), &args.bridge)?,
        ))
    } else {
        None
    };
    let mut world = World::compile(
        &snap,
        real_ifaces.as_ref().map(|(h, i)| (h.as_str(), i.clone())),
    )?;
    let (host_name, ofport) = sender(&world, &from)?;
    let (probe, bytes) = match &args.frame {
        Some(hex) => (None, frame::parse_hex(hex)?),
        None => {
            let to = args.to.as_deref().unwrap_or_default();
            let (dst, dport) = frame::parse_to(to)?;
            let p = frame::probe(&world.view, from.clone(), dst, dport, args.proto)?;
            let bytes = frame::frame(&world.view, &p)?;
            (Some(p), bytes)
        }
    };
    let report = send(
        &mut world,
        &host_name,
        ofport,
        probe.as_ref(),
        &bytes,
        args.state,
    );
    let ovs = if args.real {
        Some(real::ofproto_trace(
            args.vswitchd_ctl.as_deref(),
            &args.bridge,
            ofport,
            &bytes,
        )?)
    } else {
        None
    };
    let agreed = ovs
        .as_ref()
        .filter(|o| agrees(o, &report.first_host_tables));
    print(&report, json, agreed);
    if let Some(o) = ovs
        && !agrees(&o, &report.first_host_tables)
    {
        let partial = o.unfollowed.map(|u| format!(" ({u})")).unwrap_or_default();
        let notes: String = report
            .notes
            .iter()
            .map(|n| format!("\nnote: {n}"))
            .collect();
        return Err(format!(
            "Open vSwitch disagrees: it went through tables {:?}{partial}, the compiled pipeline through {:?} (a bug of ours).{notes}\nIts trace:\n{}",
            o.tables, report.first_host_tables, o.text
        ));
    }
    Ok(())
}

/// Whether OVS went through the compiled tables: all of them, or where its trace cannot
/// follow the packet (a dp_hash group), all of them up to there.
fn agrees(ovs: &real::OvsTrace, compiled: &[u8]) -> bool {
    match ovs.unfollowed {
        None => ovs.tables == compiled,
        Some(_) => !ovs.tables.is_empty() && compiled.starts_with(&ovs.tables),
    }
}

fn print(r: &Report, json: bool, real: Option<&real::OvsTrace>) {
    if json {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        if let Some(o) = real {
            v["ovs_tables"] = serde_json::json!(o.tables);
            if let Some(u) = &o.unfollowed {
                v["ovs_unfollowed"] = serde_json::json!(u);
            }
        }
        println!("{v}");
        return;
    }
    let mut host = "";
    for s in &r.steps {
        if s.host != host {
            host = &s.host;
            println!("{host}:");
        }
        let indent = "  ".repeat(usize::from(s.depth) + 1);
        println!(
            "{indent}{:>3} {:<14} prio {:<5} {:<14} {}",
            s.table, s.table_name, s.priority, s.app, s.owner
        );
    }
    if let Some(o) = real {
        match &o.unfollowed {
            None => println!("Open vSwitch agrees: tables {:?}", o.tables),
            Some(u) => println!(
                "Open vSwitch agrees up to where it stops: tables {:?}; {u}",
                o.tables
            ),
        }
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    println!("{}", r.verdict);
}
