//! The controller process: the only part with I/O. It sets up `br-int` over OVSDB, follows
//! the NB store's change stream into the view, learns which OpenFlow port each VM
//! interface got, recompiles the owners a change affects, sends the switch only the
//! difference, and reports ports ACTIVE once their flows are in (DOWN when unplugged).

use crate::apps::{self, Desired, Host};
use crate::punt::{Punt, Punted};
use crate::switch::Session;
use crate::view::{Touched, View};
use model::{PortStatus, Table};
use nbdb::remote::{Filter, Remote, RemoteWatch};
use ovsdb::{BridgeSpec, FailMode, InterfaceEvent, InterfaceState, PortSpec, TunnelKind};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What `dragonflow controller` is told on its command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub chassis: String,
    /// The API server (`http://127.0.0.1:9696`), which serves the store's stream.
    pub nb: String,
    /// ovsdb-server (`unix:PATH` or `tcp:IP:PORT`).
    pub ovsdb: String,
    /// br-int's management socket (`OVS_RUNDIR/br-int.mgmt`).
    pub openflow: PathBuf,
    pub local_ip: IpAddr,
    pub datapath_type: String,
    pub tunnel_types: Vec<String>,
}

/// The tables a controller follows (not claims).
const TABLES: [Table; 8] = [
    Table::Network,
    Table::Subnet,
    Table::Port,
    Table::Router,
    Table::FloatingIp,
    Table::SecurityGroup,
    Table::SecurityGroupRule,
    Table::Chassis,
];

/// Runs until the process is stopped; returns only on a fatal error.
pub async fn run(cfg: Config) -> Result<(), String> {
    let http = reqwest::Client::new();
    register(&http, &cfg).await?;
    let ovs = ovsdb::Client::connect(&cfg.ovsdb)
        .await
        .map_err(|e| format!("ovsdb {}: {e}", cfg.ovsdb))?;
    let spec = BridgeSpec::new("br-int")
        .datapath_type(&cfg.datapath_type)
        .fail_mode(FailMode::Secure)
        .protocols(&["OpenFlow13"]);
    ovs.ensure_bridge(&spec)
        .await
        .map_err(|e| format!("br-int: {e}"))?;
    // One flow-based tunnel port per type: the destination and key are set per flow.
    for t in &cfg.tunnel_types {
        let kind = match t.as_str() {
            "geneve" => TunnelKind::Geneve,
            "vxlan" => TunnelKind::Vxlan,
            "gre" => TunnelKind::Gre,
            other => {
                return Err(format!(
                    "unknown tunnel type {other:?} (geneve, vxlan, gre)"
                ));
            }
        };
        ovs.add_port("br-int", &PortSpec::tunnel(&tunnel_name(t), kind))
            .await
            .map_err(|e| format!("tunnel port {t}: {e}"))?;
    }
    let mut ifaces = ovs.watch_interfaces();
    let mut session = connect_switch(&cfg.openflow).await?;
    // Flows survive a controller restart (fail_mode secure): start from what is there.
    let mut installed = session
        .dump_flows()
        .await
        .map_err(|e| format!("flow dump: {e}"))?;

    let remote = Remote::new(&cfg.nb);
    let filter = Filter {
        topics: None,
        tables: Some(TABLES.iter().map(|t| t.name().to_string()).collect()),
    };
    let snap = remote
        .snapshot(&filter)
        .await
        .map_err(|e| format!("NB snapshot: {e}"))?;
    let mut view = View::new(&cfg.chassis);
    view.load(&snap);
    let mut watch: RemoteWatch = remote.watch(snap.revision, filter.clone());
    let mut host = Host::default();
    apps::security_groups::assign_zones(&view, &mut host);
    let mut desired = Desired::full(&view, &host);
    // What the security groups allowed, to cut the connections a change disallows.
    let mut cuts = apps::security_groups::Cuts::default();
    cuts.update(&view, &host, &apps::owners(&view));
    let mut reported: BTreeMap<String, PortStatus> = BTreeMap::new();
    let mut punt = Punt::default();
    tracing::info!(chassis = %cfg.chassis, revision = snap.revision, objects = snap.records.len(), "controller ready");

    loop {
        // Wait for something, then take whatever else is ready before recompiling.
        let mut owners: Vec<Touched> = Vec::new();
        tokio::select! {
            c = watch.next() => match c {
                Ok(c) => {
                    for t in view.apply(&c) {
                        owners.extend(apps::affected(&view, &t));
                    }
                }
                Err(nbdb::StoreError::Compacted { .. }) => {
                    let snap = remote.snapshot(&filter).await.map_err(|e| format!("NB snapshot: {e}"))?;
                    for t in view.load(&snap) {
                        owners.extend(apps::affected(&view, &t));
                    }
                    watch = remote.watch(snap.revision, filter.clone());
                }
                Err(e) => return Err(format!("NB stream: {e}")),
            },
            m = session.next_event() => match m {
                Ok((_, openflow::Message::PacketIn(pi))) => {
                    let out = punt.handle(&view, &host, std::time::Instant::now(), &pi);
                    answer(&mut session, out).await;
                    continue;
                }
                Ok(_) => continue,
                Err(e) => {
                    // ovs-vswitchd went away: its flows went with it. Refill once it is back.
                    tracing::warn!(error = %e, "the switch connection was lost");
                    session = connect_switch(&cfg.openflow).await?;
                    installed = session.dump_flows().await.map_err(|e| format!("flow dump: {e}"))?;
                    owners.extend(apps::owners(&view));
                }
            },
            e = ifaces.next() => match e {
                Some(ev) => owners.extend(interface_event(&mut host, &view, ev)),
                None => return Err("the OVSDB monitor ended".into()),
            },
        }
        let zones = apps::security_groups::assign_zones(&view, &mut host);
        owners.extend(zones.touched);
        // Changes touch overlapping sets of owners (a group's holders and members): compile
        // each once.
        owners.sort();
        owners.dedup();
        desired.update(&view, &host, owners.iter().cloned());
        sync(&cfg, &mut session, &mut installed, &desired).await?;
        // Once the flows no longer allow them, cut the connections they allowed.
        let flushes = cuts.update(&view, &host, &owners);
        flush(&mut session, zones.released, flushes).await;
        report(&http, &cfg, &view, &host, &mut reported).await;
    }
}

/// Makes the switch hold the desired flows. A switch that went away (ovs-vswitchd
/// restarted: its flows are gone) is reconnected, read back and refilled.
async fn sync(
    cfg: &Config,
    session: &mut Session<tokio::net::UnixStream>,
    installed: &mut crate::reconcile::FlowTable,
    desired: &Desired,
) -> Result<(), String> {
    for attempt in 0..20 {
        let mods = desired.table().diff(installed);
        if mods.is_empty() {
            return Ok(());
        }
        match session.commit(&mods).await {
            Ok(()) => {
                *installed = desired.table().clone();
                tracing::debug!(
                    flow_mods = mods.len(),
                    flows = installed.len(),
                    "switch updated"
                );
                return Ok(());
            }
            Err(crate::switch::SwitchError::Refused(e)) => {
                return Err(format!(
                    "the switch refused the flows: {}",
                    crate::switch::SwitchError::Refused(e)
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "lost the switch; reconnecting");
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Ok(s) = connect_switch(&cfg.openflow).await {
                    *session = s;
                    match session.dump_flows().await {
                        Ok(t) => *installed = t,
                        Err(e) => tracing::warn!(error = %e, "flow dump after reconnect failed"),
                    }
                }
            }
        }
    }
    Err("the switch stays unreachable".into())
}

/// Flushes the conntrack entries of released zones and of disallowed connections.
async fn flush(
    session: &mut Session<tokio::net::UnixStream>,
    zones: Vec<u16>,
    flushes: Vec<openflow::ct_flush::CtFlush>,
) {
    let msgs = zones
        .into_iter()
        .map(openflow::Message::CtFlushZone)
        .chain(flushes.into_iter().map(openflow::Message::CtFlush));
    for m in msgs {
        tracing::debug!(?m, "conntrack flush");
        if let Err(e) = session.ct_flush(m).await {
            tracing::warn!(error = %e, "conntrack flush not sent");
        }
    }
}

/// Sends what a packet-in was answered with. A failure here is the connection going
/// away, which the event loop notices and handles on its next read.
async fn answer(session: &mut Session<tokio::net::UnixStream>, out: Punted) {
    for m in out.flow_mods {
        if let Err(e) = session.flow_mod(m).await {
            tracing::warn!(error = %e, "flow-mod for a packet-in not sent");
        }
    }
    for p in out.packets {
        if let Err(e) = session.packet_out(p).await {
            tracing::warn!(error = %e, "packet-out not sent");
        }
    }
}

/// Registers this chassis (its tunnel endpoint) with the server.
async fn register(http: &reqwest::Client, cfg: &Config) -> Result<(), String> {
    let url = format!(
        "{}/nb/v1/chassis/{}",
        cfg.nb.trim_end_matches('/'),
        cfg.chassis
    );
    let body =
        serde_json::json!({"ip": cfg.local_ip, "tunnel_types": cfg.tunnel_types}).to_string();
    for attempt in 0..50 {
        match http
            .put(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => return Err(format!("registering chassis: HTTP {}", r.status())),
            Err(e) if attempt < 49 => {
                tracing::debug!(error = %e, "server not reachable yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("registering chassis at {url}: {e}")),
        }
    }
    Err("registering chassis: no answer".into())
}

async fn connect_switch(path: &std::path::Path) -> Result<Session<tokio::net::UnixStream>, String> {
    // br-int's management socket appears once ovs-vswitchd has (re)created the bridge;
    // until then the path is missing or refuses connections.
    let mut last = String::new();
    for _ in 0..300 {
        if path.exists() {
            match Session::connect_unix(path).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e.to_string(),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("no OpenFlow switch at {}: {last}", path.display()))
}

/// The name of this host's tunnel port of type `t`.
fn tunnel_name(t: &str) -> String {
    format!("tun-{t}")
}

/// Keeps the iface-id → ofport map and the tunnel ports; returns the owners whose flows
/// depend on the event.
fn interface_event(host: &mut Host, view: &View, ev: InterfaceEvent) -> Vec<Touched> {
    let mut touched = Vec::new();
    let mut set = |host: &mut Host, s: &InterfaceState, present: bool| {
        if let Some(t) = s.name.strip_prefix("tun-") {
            let ofport = s.ofport().filter(|_| present);
            let changed = match ofport {
                Some(p) => host.tunnels.insert(t.to_string(), p) != Some(p),
                None => host.tunnels.remove(t).is_some(),
            };
            if changed {
                // Every network and port may tunnel.
                touched.extend(apps::owners(view));
            }
            return;
        }
        let Some(id) = s.iface_id.clone() else { return };
        let ofport = s.ofport().filter(|_| present);
        let changed = match ofport {
            Some(p) => host.ofports.insert(id.clone(), p) != Some(p),
            None => host.ofports.remove(&id).is_some(),
        };
        if changed {
            touched.push(Touched {
                table: Table::Port,
                id,
            });
        }
    };
    match ev {
        InterfaceEvent::Added(s) => set(host, &s, true),
        InterfaceEvent::Changed { old, new } => {
            if old.iface_id != new.iface_id {
                set(host, &old, false);
            }
            set(host, &new, true);
        }
        InterfaceEvent::Removed(s) => set(host, &s, false),
        InterfaceEvent::Resync(all) => {
            host.tunnels.clear();
            let before = std::mem::take(&mut host.ofports);
            for s in &all {
                set(host, s, true);
            }
            for id in before.keys().filter(|id| !host.ofports.contains_key(*id)) {
                touched.push(Touched {
                    table: Table::Port,
                    id: id.clone(),
                });
            }
        }
        InterfaceEvent::Disconnected => {}
    }
    touched
}

/// Binds plugged ports to this chassis and reports them ACTIVE once their flows are in
/// (this runs after the commit), DOWN once unplugged.
async fn report(
    http: &reqwest::Client,
    cfg: &Config,
    view: &View,
    host: &Host,
    reported: &mut BTreeMap<String, PortStatus>,
) {
    let mut want: Vec<(String, PortStatus)> = Vec::new();
    for (id, p) in &view.ports {
        let plugged = host.ofports.contains_key(id);
        let ours = p.binding_host_id == cfg.chassis;
        // Plugged here but not bound here yet: bind it (BUILD); its flows are compiled once
        // the binding comes back through the stream, and only then is it ACTIVE.
        let status = match (plugged, ours) {
            (true, true) => PortStatus::Active,
            (true, false) => PortStatus::Build,
            (false, true) => PortStatus::Down,
            (false, false) => continue,
        };
        if ours && p.status == status {
            reported.remove(id);
            continue;
        }
        if reported.get(id) != Some(&status) {
            want.push((id.clone(), status));
        }
    }
    for (id, status) in want {
        let url = format!("{}/nb/v1/ports/{id}/binding", cfg.nb.trim_end_matches('/'));
        let body = serde_json::json!({"host": cfg.chassis, "status": status.as_str()}).to_string();
        match http
            .put(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                tracing::info!(port = %id, status = status.as_str(), "port status reported");
                reported.insert(id, status);
            }
            Ok(r) => tracing::warn!(port = %id, status = %r.status(), "port status refused"),
            Err(e) => tracing::warn!(port = %id, error = %e, "port status not reported"),
        }
    }
}
