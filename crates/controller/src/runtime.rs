//! The controller process: the only part with I/O. It sets up `br-int` over OVSDB, follows
//! the NB store's change stream into the view, learns which OpenFlow port each VM
//! interface got, recompiles the owners a change affects, sends the switch only the
//! difference, and reports ports ACTIVE once their flows are in (DOWN when unplugged).

use crate::apps::{self, Desired, Host};
use crate::apps::{Punt, Punted};
use crate::nb::{Nb, NbWatch};
use crate::reconcile::{self, FlowTable, GroupTable};
use crate::switch::Session;
use crate::view::{Touched, View};
use model::{NbObject, PortStatus, Table};
use ovsdb::{BridgeSpec, FailMode, InterfaceEvent, InterfaceState, PortSpec, TunnelKind};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    /// ICMP errors a router port answers per second (TTL expiry, unreachables).
    pub icmp_rate: u32,
    /// The API server, when `nb` names a store: for the writes that need its allocation.
    pub api: Option<String>,
    /// The DHCP responder's settings.
    pub dhcp: crate::apps::dhcp::responder::Config,
    /// Physical networks and the operator's bridge of each (`--bridge-mappings
    /// physnet1:br-ex`); the controller patches each bridge to `br-int`.
    pub bridge_mappings: Vec<(String, String)>,
}

/// Parses `physnet:bridge[,physnet:bridge]`.
pub fn parse_bridge_mappings(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| match m.split_once(':') {
            Some((p, b)) if !p.is_empty() && !b.is_empty() => Ok((p.to_string(), b.to_string())),
            _ => Err(format!("bad bridge mapping {m:?} (physnet:bridge)")),
        })
        .collect()
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

/// What the host follows of the NB store: the controller's tables, limited to the topics
/// (projects) its ports reach. The topics grow when a port of a new project is plugged
/// here and shrink when the last one goes; each change takes a fresh snapshot of the new
/// set (rare: the first port of a project on this host), which the view diffs against
/// what it held.
struct Follow {
    nb: Nb,
    tables: BTreeSet<String>,
    topics: BTreeSet<String>,
    /// Whether the view holds a snapshot of `topics` (not yet, or behind a compacted log).
    loaded: bool,
    /// The topic (network) of each plugged interface's port, learnt by looking the port up
    /// since the host does not follow that network before it has a port on it; `None` for
    /// an interface whose port does not exist (looked up again after a while).
    plugged: BTreeMap<String, (Option<String>, Instant)>,
    /// The topics of objects the local ports refer to but the view lacks (see
    /// [`View::missing`]), looked up once.
    referred: BTreeMap<Touched, Option<String>>,
    watch: NbWatch,
}

/// How long an interface whose port was not found waits before it is looked up again.
const RELOOKUP: Duration = Duration::from_secs(2);

impl Follow {
    /// Loads the view for the topics the host needs: the projects of the plugged ports,
    /// then whatever those reach, until the set is stable. Returns what changed in the view.
    async fn refresh(&mut self, view: &mut View, host: &Host) -> Result<Vec<Touched>, String> {
        let now = Instant::now();
        for id in host.ofports.keys() {
            let stale = match self.plugged.get(id) {
                None => true,
                Some((None, at)) => now.duration_since(*at) > RELOOKUP,
                Some((Some(_), _)) => false,
            };
            if stale {
                let topic = match view.ports.get(id) {
                    Some(p) => Some(p.topic().to_string()),
                    None => self.topic_of("port", id).await?,
                };
                self.plugged.insert(id.clone(), (topic, now));
            }
        }
        self.plugged.retain(|id, _| host.ofports.contains_key(id));
        let mut touched = Vec::new();
        for _ in 0..8 {
            for m in view.missing() {
                if !self.referred.contains_key(&m) {
                    let topic = self.topic_of(m.table.name(), &m.id).await?;
                    self.referred.insert(m, topic);
                }
            }
            let mut want = view.topics();
            want.extend(self.plugged.values().filter_map(|(t, _)| t.clone()));
            want.extend(self.referred.values().flatten().cloned());
            if want == self.topics && self.loaded {
                break;
            }
            let snap = self
                .nb
                .snapshot(&self.tables, &want)
                .await
                .map_err(|e| format!("NB snapshot: {e}"))?;
            tracing::info!(topics = ?want, revision = snap.revision, objects = snap.records.len(), "following projects");
            touched.extend(view.load(&snap));
            self.topics = want;
            self.loaded = true;
            self.watch = self.nb.watch(snap.revision, &self.tables, &self.topics);
        }
        Ok(touched)
    }

    /// Whether an interface is plugged whose port was not found (yet).
    fn has_unknown(&self) -> bool {
        self.plugged.values().any(|(p, _)| p.is_none())
    }

    /// The topic of one object, looked up in the store.
    async fn topic_of(&self, table: &str, id: &str) -> Result<Option<String>, String> {
        match self.nb.get(table, id).await {
            Ok(r) => Ok(r.and_then(|r| r.topic)),
            Err(e) => Err(format!("looking up {table} {id}: {e}")),
        }
    }
}

/// Runs until the process is stopped; returns only on a fatal error.
pub async fn run(cfg: Config) -> Result<(), String> {
    let nb = Nb::connect(&cfg.nb, cfg.api.as_deref()).await?;
    let tunnel_types = cfg
        .tunnel_types
        .iter()
        .map(|t| {
            model::NetworkType::parse(t)
                .filter(|t| t.is_tunnel())
                .ok_or_else(|| format!("unknown tunnel type {t:?} (geneve, vxlan, gre)"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    nb.register(&model::Chassis {
        id: cfg.chassis.clone(),
        ip: cfg.local_ip,
        tunnel_types,
    })
    .await?;
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
    // A patch port pair per physical network: br-int <-> the operator's bridge.
    for (physnet, bridge) in &cfg.bridge_mappings {
        let (int, ex) = (
            apps::provider::int_patch(physnet),
            apps::provider::ex_patch(physnet),
        );
        ovs.add_port("br-int", &PortSpec::patch(&int, &ex))
            .await
            .map_err(|e| format!("patch port {int}: {e}"))?;
        ovs.add_port(bridge, &PortSpec::patch(&ex, &int))
            .await
            .map_err(|e| format!("patch port {ex} on {bridge}: {e}"))?;
    }
    let mut ifaces = ovs.watch_interfaces();
    let mut session = connect_switch(&cfg.openflow).await?;
    // Flows survive a controller restart (fail_mode secure): start from what is there.
    let mut installed = Installed::read(&mut session)
        .await
        .map_err(|e| format!("flow dump: {e}"))?;

    // What is plugged here decides what to follow: read it before the first compile, so a
    // restarted controller computes the flows that are installed and changes nothing.
    let mut host = Host::default();
    match ifaces.next().await {
        Some(ev) => {
            interface_event(&mut host, &View::default(), ev);
        }
        None => return Err("the OVSDB monitor ended".into()),
    }
    let tables: BTreeSet<String> = TABLES.iter().map(|t| t.name().to_string()).collect();
    let watch = nb.watch(0, &tables, &BTreeSet::new());
    let mut follow = Follow {
        nb,
        tables,
        topics: BTreeSet::new(),
        loaded: false,
        plugged: BTreeMap::new(),
        referred: BTreeMap::new(),
        watch,
    };
    let mut view = View::new(&cfg.chassis);
    follow.refresh(&mut view, &host).await?;
    apps::security_groups::assign_zones(&view, &mut host);
    let mut desired = Desired::full(&view, &host);
    // What the security groups allowed, to cut the connections a change disallows.
    let mut cuts = apps::security_groups::Cuts::default();
    let membership = view.take_membership();
    cuts.update(&view, &host, &apps::owners(&view), &membership);
    let mut reported: BTreeMap<String, PortStatus> = BTreeMap::new();
    let mut punt = Punt::new(&apps::Settings {
        icmp_rate: cfg.icmp_rate,
        dhcp: cfg.dhcp.clone(),
    });
    sync(&cfg, &mut session, &mut installed, &mut desired).await?;
    // North-south: next-hop ARP and announcements, and this host's SNAT addresses.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut snat_asked: BTreeMap<String, Instant> = BTreeMap::new();
    // When a status write the store refused is to be tried again (none pending: None).
    let mut report_again: Option<Instant> = None;
    tracing::info!(chassis = %cfg.chassis, revision = view.revision, ports = view.ports.len(), plugged = host.ofports.len(), "controller ready");

    loop {
        // Wait for something, then take whatever else is ready before recompiling.
        let mut owners: Vec<Touched> = Vec::new();
        tokio::select! {
            c = follow.watch.next() => match c {
                Ok(c) => {
                    for t in view.apply(&c) {
                        owners.extend(apps::affected(&view, &t));
                    }
                }
                Err(nbdb::StoreError::Compacted { .. }) => {
                    // Behind the log: a fresh snapshot of the same topics.
                    follow.loaded = false;
                    for t in follow.refresh(&mut view, &host).await? {
                        owners.extend(apps::affected(&view, &t));
                    }
                }
                Err(e) => {
                    // A store (etcd, Redis) that went away: the watch resumes where it stood.
                    tracing::warn!(error = %e, "NB stream interrupted");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
            m = session.next_event() => match m {
                Ok((_, openflow::Message::PacketIn(pi))) => {
                    let mut out = punt.handle(&view, &mut host, std::time::Instant::now(), &pi);
                    let recompile = std::mem::take(&mut out.recompile);
                    answer(&mut session, out).await;
                    if recompile.is_empty() {
                        continue;
                    }
                    owners.extend(recompile);
                }
                Ok(_) => continue,
                Err(e) => {
                    // ovs-vswitchd went away: its flows went with it. Refill once it is back.
                    tracing::warn!(error = %e, "the switch connection was lost");
                    session = connect_switch(&cfg.openflow).await?;
                    installed = Installed::read(&mut session).await.map_err(|e| format!("flow dump: {e}"))?;
                    owners.extend(apps::owners(&view));
                }
            },
            _ = tick.tick() => {
                let out = punt.tick(&view, &host, Instant::now());
                answer(&mut session, out).await;
                if report_again.is_some_and(|t| t <= Instant::now()) {
                    report_again = report(&follow.nb, &cfg, &view, &host, &mut reported).await;
                }
                for net in apps::nat::snat_ports_wanted(&view, &host) {
                    if snat_asked.get(&net).is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
                        continue;
                    }
                    snat_asked.insert(net.clone(), Instant::now());
                    match follow.nb.ensure_snat_port(&net, &cfg.chassis, apps::nat::CHASSIS_SNAT).await {
                        Ok(()) => tracing::info!(network = %net, "SNAT address requested"),
                        Err(e) => tracing::warn!(network = %net, error = %e, "no SNAT address"),
                    }
                }
                continue;
            }
            // An interface plugged before its port existed: look again now and then.
            _ = tokio::time::sleep(RELOOKUP), if follow.has_unknown() => {}
            e = ifaces.next() => match e {
                Some(ev) => {
                    tracing::debug!(event = ?ev, "interface");
                    owners.extend(interface_event(&mut host, &view, ev));
                }
                None => return Err("the OVSDB monitor ended".into()),
            },
        }
        let woke = Instant::now();
        // A port of a new project plugged here, or the last of one gone: follow what the
        // host needs now. Only ports, routers, groups and interfaces move the topics.
        let moves_topics = owners.iter().any(|o| {
            matches!(
                o.table,
                Table::Port | Table::Router | Table::SecurityGroup | Table::SecurityGroupRule
            )
        });
        if moves_topics || follow.has_unknown() || host.ofports.len() != follow.plugged.len() {
            for t in follow.refresh(&mut view, &host).await? {
                owners.extend(apps::affected(&view, &t));
            }
        }
        let mut claimed = claim(&cfg, &mut view, &host, &owners, &mut reported);
        if !claimed.is_empty() {
            // A port bound here brings its security groups' projects into the followed set.
            // A fresh snapshot replaces the view, claims and all: claim again on it.
            let touched = follow.refresh(&mut view, &host).await?;
            for t in &touched {
                claimed.extend(apps::affected(&view, t));
            }
            claimed.extend(claim(&cfg, &mut view, &host, &touched, &mut reported));
        }
        owners.extend(claimed);
        let refreshed = Instant::now();
        let zones = apps::security_groups::assign_zones(&view, &mut host);
        owners.extend(zones.touched);
        // Changes touch overlapping sets of owners (a group's holders and members): compile
        // each once.
        owners.sort();
        owners.dedup();
        desired.update(&view, &host, owners.iter().cloned());
        let compiled = Instant::now();
        sync(&cfg, &mut session, &mut installed, &mut desired).await?;
        let synced = Instant::now();
        // Once the flows no longer allow them, cut the connections they allowed.
        let membership = view.take_membership();
        let flushes = cuts.update(&view, &host, &owners, &membership);
        flush(&mut session, zones.released, flushes).await;
        report_again = report(&follow.nb, &cfg, &view, &host, &mut reported).await;
        tracing::debug!(
            owners = owners.len(),
            refresh_us = (refreshed - woke).as_micros() as u64,
            compile_us = (compiled - refreshed).as_micros() as u64,
            sync_us = (synced - compiled).as_micros() as u64,
            report_us = synced.elapsed().as_micros() as u64,
            "change handled"
        );
    }
}

/// What the controller knows of what the switch holds.
enum Installed {
    /// The desired state as of the last sync: only what changed since needs sending.
    Synced,
    /// As read back from the switch: everything needs comparing.
    Read(FlowTable, GroupTable),
    /// Unknown (a commit failed and the switch could not be read back yet).
    Unknown,
}

impl Installed {
    async fn read(
        session: &mut Session<tokio::net::UnixStream>,
    ) -> crate::switch::Result<Installed> {
        Ok(Installed::Read(
            session.dump_flows().await?,
            session.dump_groups().await?,
        ))
    }
}

/// Makes the switch hold the desired flows and groups. A switch that went away
/// (ovs-vswitchd restarted: its flows are gone) is reconnected, read back and refilled.
async fn sync(
    cfg: &Config,
    session: &mut Session<tokio::net::UnixStream>,
    installed: &mut Installed,
    desired: &mut Desired,
) -> Result<(), String> {
    for attempt in 0..20 {
        // Until this commit is confirmed, what the switch holds is unknown.
        let sent = match std::mem::replace(installed, Installed::Unknown) {
            Installed::Synced => {
                let (mods, groups) = desired.take_changes();
                if mods.is_empty() && groups.is_empty() {
                    *installed = Installed::Synced;
                    return Ok(());
                }
                let n = (mods.len(), groups.len());
                session
                    .commit_stream(&groups, mods.into_iter())
                    .await
                    .map(|()| n)
            }
            Installed::Read(flows, groups) => {
                desired.forget_changes();
                let changes = desired.table().changes(&flows);
                let groups = desired.groups().diff(&groups);
                if changes.is_empty() && groups.is_empty() {
                    *installed = Installed::Synced;
                    return Ok(());
                }
                let n = (changes.len(), groups.len());
                session
                    .commit_stream(&groups, changes.iter().map(reconcile::flow_mod))
                    .await
                    .map(|()| n)
            }
            Installed::Unknown => {
                reconnect(cfg, session, installed).await;
                continue;
            }
        };
        match sent {
            Ok((flow_mods, group_mods)) => {
                *installed = Installed::Synced;
                tracing::debug!(
                    flow_mods,
                    group_mods,
                    flows = desired.table().len(),
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
                reconnect(cfg, session, installed).await;
            }
        }
    }
    Err("the switch stays unreachable".into())
}

/// After a short pause, reconnects to the switch and reads back what it holds (left
/// unknown if that fails, to be tried again).
async fn reconnect(
    cfg: &Config,
    session: &mut Session<tokio::net::UnixStream>,
    installed: &mut Installed,
) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    if let Ok(s) = connect_switch(&cfg.openflow).await {
        *session = s;
        match Installed::read(session).await {
            Ok(t) => *installed = t,
            Err(e) => tracing::warn!(error = %e, "flow dump after reconnect failed"),
        }
    }
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
        if let Some(physnet) = s.name.strip_prefix("patch-int-") {
            let ofport = s.ofport().filter(|_| present);
            let changed = match ofport {
                Some(p) => host.provider_ports.insert(physnet.to_string(), p) != Some(p),
                None => host.provider_ports.remove(physnet).is_some(),
            };
            if changed {
                touched.extend(apps::owners(view));
            }
            return;
        }
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
        // An interface with no OpenFlow port yet changes nothing; this also keeps the
        // events replayed after a resync (older than the state it reported) from undoing it.
        InterfaceEvent::Added(s) if s.ofport().is_none() => {}
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
            host.provider_ports.clear();
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

/// Takes the ports among `touched` that are plugged here but not bound here as bound here
/// in the view at once, so that their flows that need the binding (security groups, DHCP)
/// go in with the first commit. The port is this host's either way: `report` writes the
/// binding, with the status ACTIVE, once the flows are committed (and again on later
/// changes if the store refuses it). Writing the binding first would put a store write,
/// or its round trip through the stream, before the flows while the VM is already
/// sending. The stream's copy replaces the view's when it comes back (the same binding:
/// nothing to recompile). Returns the owners to recompile.
fn claim(
    cfg: &Config,
    view: &mut View,
    host: &Host,
    touched: &[Touched],
    reported: &mut BTreeMap<String, PortStatus>,
) -> Vec<Touched> {
    let mut owners = Vec::new();
    for t in touched {
        if t.table != Table::Port || !host.ofports.contains_key(&t.id) {
            continue;
        }
        let Some(p) = view.ports.get_mut(&t.id) else {
            continue;
        };
        if p.binding_host_id == cfg.chassis {
            continue;
        }
        p.binding_host_id = cfg.chassis.clone();
        // Not the store's status: one `report` is bound to correct with ACTIVE.
        p.status = PortStatus::Build;
        reported.remove(&t.id);
        owners.extend(apps::affected(view, t));
    }
    owners
}

/// Binds plugged ports to this chassis and reports them ACTIVE once their flows are in
/// (this runs after the commit), DOWN once unplugged. Returns when to try again if the
/// store refused a write.
async fn report(
    nb: &Nb,
    cfg: &Config,
    view: &View,
    host: &Host,
    reported: &mut BTreeMap<String, PortStatus>,
) -> Option<Instant> {
    let mut want: Vec<(String, PortStatus)> = Vec::new();
    for (id, p) in &view.ports {
        let plugged = host.ofports.contains_key(id);
        let ours = p.binding_host_id == cfg.chassis;
        // Plugged here but not bound here, and not taken by `claim` (plugged before this
        // controller started): bind it (BUILD); its flows are compiled once the binding
        // comes back through the stream, and only then is it ACTIVE.
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
    let mut again = None;
    for (id, status) in want {
        match nb.bind(&id, &cfg.chassis, status).await {
            Ok(()) => {
                tracing::info!(port = %id, status = status.as_str(), "port status reported");
                reported.insert(id, status);
            }
            Err(e) => {
                tracing::warn!(port = %id, error = %e, "port status not reported; trying again in 1 s");
                again = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }
    again
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(id: &str, host: &str, status: PortStatus) -> model::Port {
        model::Port {
            meta: model::Meta {
                project_id: "p1".into(),
                ..model::fixtures::meta(id)
            },
            status,
            ..model::fixtures::port(id, "n1", 1, host)
        }
    }

    fn config() -> Config {
        Config {
            chassis: "host-a".into(),
            nb: String::new(),
            ovsdb: String::new(),
            openflow: PathBuf::new(),
            local_ip: "192.0.2.1".parse().unwrap(),
            datapath_type: "netdev".into(),
            tunnel_types: vec![],
            icmp_rate: 3,
            api: None,
            dhcp: Default::default(),
            bridge_mappings: vec![],
        }
    }

    fn touched(id: &str) -> Touched {
        Touched {
            table: Table::Port,
            id: id.into(),
        }
    }

    #[test]
    fn a_plugged_port_is_compiled_as_bound_here_before_the_binding_is_written() {
        // "a" plugged here, unbound; "b" unbound, not plugged; "c" plugged, bound and
        // ACTIVE on another host (reported here before); "d" plugged, bound here.
        let mut view = View::new("host-a");
        for p in [
            port("a", "", PortStatus::Down),
            port("b", "", PortStatus::Down),
            port("c", "host-b", PortStatus::Active),
            port("d", "host-a", PortStatus::Active),
        ] {
            view.ports.insert(p.meta.id.clone(), p);
        }
        let mut host = Host::default();
        for (id, ofport) in [("a", 5), ("c", 6), ("d", 7)] {
            host.ofports.insert(id.into(), ofport);
        }
        let mut reported = BTreeMap::from([
            ("c".to_string(), PortStatus::Active),
            ("d".to_string(), PortStatus::Active),
        ]);
        let all: Vec<Touched> = ["a", "b", "c", "d"].map(touched).to_vec();

        let owners = claim(&config(), &mut view, &host, &all, &mut reported);

        for id in ["a", "c"] {
            assert_eq!(view.ports[id].binding_host_id, "host-a", "{id}");
            assert!(owners.contains(&touched(id)), "{id}: {owners:?}");
            // Not written yet: `report` writes ACTIVE (and the binding) after the commit.
            assert_eq!(view.ports[id].status, PortStatus::Build, "{id}");
            assert_eq!(reported.get(id), None, "{id}");
        }
        assert_eq!(view.ports["b"].binding_host_id, "");
        assert_eq!(view.ports["d"].status, PortStatus::Active);
        assert_eq!(reported.get("d"), Some(&PortStatus::Active));
        for id in ["b", "d"] {
            assert!(!owners.contains(&touched(id)), "{id}: {owners:?}");
        }
        // Only ports among what changed are taken here.
        let mut later = Host::default();
        later.ofports.insert("b".into(), 8);
        assert!(claim(&config(), &mut view, &later, &[], &mut reported).is_empty());
        assert_eq!(view.ports["b"].binding_host_id, "");
    }
}
