//! The controller process: the only part with I/O, and no decision of its own. It sets up
//! `br-int` over OVSDB, then turns what happens (the NB stream, the Interface watcher, the
//! switch's messages, a 100 ms timer) into events for the [`engine::Controller`] and
//! performs the effects it returns: reads from the store, commits to the switch, packets,
//! conntrack flushes, status writes. A transient failure (the store or the switch away for
//! a while) is retried here; flows the switch refuses go back to the core (which leaves
//! their owners out); only a switch that stays unreachable, or refuses a request outside
//! a bundle, ends the process.

use crate::engine::{self, Controller, Effects, Event};
use crate::metrics::{Metrics, Resync};
use crate::nb::{Nb, NbWatch};
use crate::switch::{Session, SwitchError};
use crate::{apps, heartbeat};
use ovsdb::{BridgeSpec, FailMode, PortSpec, TunnelKind};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What `dragonflow controller` is told on its command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub chassis: String,
    /// The server's NB listener (`http://127.0.0.1:9697`), which serves the store's
    /// stream, or a store's URL.
    pub nb: String,
    /// This host's token for the server's NB listener.
    pub nb_token: Option<String>,
    /// ovsdb-server (`unix:PATH` or `tcp:IP:PORT`).
    pub ovsdb: String,
    /// br-int's management socket (`OVS_RUNDIR/br-int.mgmt`).
    pub openflow: PathBuf,
    pub local_ip: IpAddr,
    pub datapath_type: String,
    pub tunnel_types: Vec<String>,
    /// ICMP errors a router port answers per second (TTL expiry, unreachables).
    pub icmp_rate: u32,
    /// The server's NB listener, when `nb` names a store: for the write that needs its
    /// allocation (the SNAT address).
    pub api: Option<String>,
    /// The publish-subscribe fan-out the change stream comes from (`zmq://…`,
    /// `redis://…`), filled from `nb`; `None`: from `nb` alone.
    pub pubsub: Option<String>,
    /// The DHCP responder's settings.
    pub dhcp: crate::apps::dhcp::responder::Config,
    /// The DNS responder's settings (internal domain, upstream resolvers, rate).
    pub dns: crate::apps::dns::responder::Config,
    /// IGMP/MLD snooping (`apps::mcast`).
    pub mcast: crate::apps::mcast::snoop::Config,
    /// Physical networks and the operator's bridge of each (`--bridge-mappings
    /// physnet1:br-ex`); the controller patches each bridge to `br-int`.
    pub bridge_mappings: Vec<(String, String)>,
    /// Seconds between heartbeats (Neutron's `report_interval`).
    pub report_interval: Duration,
    /// The heartbeat's time to live when it is written to a store directly (through a
    /// server, the server's `agent_down_time` applies).
    pub agent_down_time: Duration,
    /// The availability zone this host is in (its agent reports it).
    pub availability_zone: String,
    /// The metadata service (None: off): its address range and the server's settings.
    pub metadata: Option<(ipnet::Ipv4Net, crate::apps::metadata::serve::Config)>,
    /// How often the balancer listeners' statistics are counted (`crate::lb_stats`).
    pub lb_stats_interval: Duration,
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

type Switch = Session<tokio::net::UnixStream>;

/// The connections the effects go through.
struct Io {
    cfg: Config,
    nb: Nb,
    tables: BTreeSet<String>,
    watch: NbWatch,
    /// The watch said its revision was compacted: it is not read again until a snapshot
    /// replaces it (asked again, it would say so again, one request after another).
    behind: bool,
    session: Switch,
    metrics: std::sync::Arc<Metrics>,
    /// Asks upstream resolvers what internal DNS does not answer.
    dns: crate::dns_forward::Forwarder,
}

/// Runs until the process is stopped; returns only on a fatal error.
pub async fn run(cfg: Config, metrics: std::sync::Arc<Metrics>) -> Result<(), String> {
    let mut nb = Nb::connect(&cfg.nb, cfg.api.as_deref(), cfg.nb_token.as_deref()).await?;
    if let Some(url) = &cfg.pubsub {
        nb = nb.with_pubsub(url)?;
    }
    let tunnel_types = cfg
        .tunnel_types
        .iter()
        .map(|t| {
            model::NetworkType::parse(t)
                .filter(|t| t.is_tunnel())
                .ok_or_else(|| format!("unknown tunnel type {t:?} (geneve, vxlan, gre)"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let me = model::Chassis {
        id: cfg.chassis.clone(),
        ip: cfg.local_ip,
        tunnel_types,
    };
    nb.register(&me).await?;
    // After the registration, which waits for a server still starting.
    let model = nb.model_version().await?;
    if model != model::version::MODEL_VERSION {
        tracing::warn!(
            store = model,
            this = model::version::MODEL_VERSION,
            "the NB model is one version step from this controller's: it follows it (a rolling upgrade); upgrade the other side to match"
        );
    } else {
        tracing::info!(version = model, "NB model version");
    }
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
    // The metadata service: br-int's internal port and the listener behind it. A host
    // where it cannot be set up still switches and routes (logged).
    let (md_tx, mut md_rx) = tokio::sync::mpsc::channel::<crate::metadata_http::Question>(1024);
    let (dt_tx, mut dt_rx) = tokio::sync::mpsc::channel::<crate::dns_tcp::Question>(1024);
    let mut md_server = None;
    // DNS over TCP rides the same internal port; its own responder (and rate per port).
    let mut dns_tcp = None;
    if let Some((range, server_cfg)) = &cfg.metadata {
        let setup = crate::metadata_http::Setup {
            range: *range,
            netns: crate::metadata_http::vswitchd_netns(&cfg.openflow),
        };
        match crate::metadata_http::start(&ovs, &setup).await {
            Ok(listeners) => {
                let held = crate::metadata_http::Held::new(crate::metadata_http::MAX_PER_VM);
                for l in listeners.http {
                    tokio::spawn(crate::metadata_http::serve(l, held.clone(), md_tx.clone()));
                }
                let held = crate::metadata_http::Held::new(crate::dns_tcp::MAX_PER_VM);
                for l in listeners.dns {
                    tokio::spawn(crate::dns_tcp::serve(l, held.clone(), dt_tx.clone()));
                }
                md_server = Some(apps::metadata::serve::Server::new(server_cfg.clone()));
                dns_tcp = Some(apps::dns::responder::DnsResponder::new(cfg.dns.clone()));
            }
            Err(e) => tracing::warn!(error = %e, "no metadata service on this host"),
        }
    }
    drop(md_tx);
    drop(dt_tx);
    let mut ifaces = ovs.watch_interfaces();
    let session = connect_switch(&cfg.openflow).await?;
    let tables = engine::followed_tables();
    // Replaced by the first snapshot's watch before anything is read from it.
    let watch = nb.watch(0, &tables, &BTreeSet::new());
    let mut core = Controller::new(
        me,
        &apps::Settings {
            icmp_rate: cfg.icmp_rate,
            dhcp: cfg.dhcp.clone(),
            dns: cfg.dns.clone(),
            mcast: cfg.mcast.clone(),
            metadata_range: cfg
                .metadata
                .as_ref()
                .map_or(apps::metadata::DEFAULT_RANGE, |m| m.0),
        },
    );
    // The heartbeat has a task of its own; it is told what to report after every batch.
    let (status, status_rx) = tokio::sync::watch::channel(heartbeat::Status::default());
    let (collector, lb_stats_rx) = crate::lb_stats::Collector::new(&cfg.openflow);
    tokio::spawn(heartbeat::run(
        nb.beats(),
        heartbeat::Settings {
            host: cfg.chassis.clone(),
            tunnel_types: cfg.tunnel_types.clone(),
            bridge_mappings: cfg.bridge_mappings.clone(),
            datapath_type: cfg.datapath_type.clone(),
            report_interval: cfg.report_interval,
            agent_down_time: cfg.agent_down_time,
            availability_zone: cfg.availability_zone.clone(),
        },
        status_rx,
        lb_stats_rx,
    ));
    let (dns, mut dns_answers) = crate::dns_forward::Forwarder::new();
    let mut io = Io {
        cfg,
        nb,
        tables,
        watch,
        behind: false,
        session,
        metrics,
        dns,
    };
    // Flows survive a controller restart (fail_mode secure): start from what is there, and
    // from what is plugged, so a restarted controller computes the flows that are
    // installed and changes nothing.
    let read = read_switch(&mut io.session).await?;
    io.metrics.resync(Resync::Start);
    let Some(first) = ifaces.next().await else {
        return Err("the OVSDB monitor ended".into());
    };
    io.perform_batch(
        &mut core,
        vec![Event::SwitchRead(read.0, read.1), Event::Interface(first)],
    )
    .await?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stats_tick = tokio::time::interval(io.cfg.lb_stats_interval);
    stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Wait for something, then take whatever else is ready at once: one batch, one
        // pass through the engine (one bundle, one status write).
        let mut batch = Vec::new();
        let mut wait = true;
        while batch.len() < MAX_BATCH {
            let got = tokio::select! {
                biased;
                e = ifaces.next() => match e {
                    Some(ev) => Got::Event(Event::Interface(ev)),
                    None => return Err("the OVSDB monitor ended".into()),
                },
                c = io.watch.next(), if !io.behind => match c {
                    Ok(c) => Got::Event(Event::Change(c)),
                    Err(nbdb::StoreError::Compacted { .. }) => {
                        io.behind = true;
                        io.metrics.resync(Resync::NbCompacted);
                        Got::Event(Event::Compacted)
                    }
                    Err(e) => Got::StoreAway(e),
                },
                m = io.session.next_event() => match m {
                    Ok((_, openflow::Message::PacketIn(pi))) => {
                        io.metrics.packet_in(pi.cookie);
                        Got::Event(Event::PacketIn(pi))
                    }
                    Ok(_) => Got::Nothing,
                    Err(e) => Got::SwitchLost(e),
                },
                a = dns_answers.recv() => match a {
                    Some(p) => Got::Relay(p),
                    None => Got::Nothing,
                },
                q = md_rx.recv(), if md_server.is_some() => match q {
                    Some(q) => Got::Metadata(q),
                    None => Got::Nothing,
                },
                q = dt_rx.recv(), if dns_tcp.is_some() => match q {
                    Some(q) => Got::DnsTcp(q),
                    None => Got::Nothing,
                },
                _ = tick.tick(), if wait => Got::Event(Event::Tick),
                _ = stats_tick.tick() => Got::Stats,
                _ = std::future::ready(()), if !wait => break,
            };
            match got {
                Got::Event(ev) => batch.push(ev),
                Got::Nothing => {}
                Got::Stats => collector.collect(&mut io.session, core.view()).await,
                Got::Metadata(q) => {
                    if let Some(server) = md_server.as_mut() {
                        crate::metadata_http::answer(server, &core, q);
                    }
                }
                Got::DnsTcp(q) => {
                    if let Some(r) = dns_tcp.as_mut() {
                        crate::dns_tcp::answer(r, &core, q);
                    }
                }
                Got::Relay(p) => {
                    if let Err(e) = io.session.packet_out(p).await {
                        tracing::warn!(error = %e, "DNS answer not sent");
                    }
                }
                Got::StoreAway(e) => {
                    // A store (etcd, Redis) that went away: the watch resumes where it stood.
                    tracing::warn!(error = %e, "NB stream interrupted");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Got::SwitchLost(e) => {
                    // ovs-vswitchd went away: its flows went with it. Refill once it is back.
                    tracing::warn!(error = %e, "the switch connection was lost");
                    io.perform_batch(&mut core, std::mem::take(&mut batch))
                        .await?;
                    io.perform(&mut core, Event::SwitchLost).await?;
                    io.reconnect(&mut core).await?;
                }
            }
            wait = batch.is_empty();
        }
        io.perform_batch(&mut core, batch).await?;
        report_status(&core, &io.watch, &status);
        io.metrics.observe(&core, Instant::now());
    }
}

/// Tells the heartbeat what the switch now reflects. Only when the core is idle (every
/// change handed out is compiled and its commit confirmed) does the stream's position
/// count as applied: then everything within the host's filter up to it is installed.
fn report_status(
    core: &Controller,
    watch: &NbWatch,
    status: &tokio::sync::watch::Sender<heartbeat::Status>,
) {
    if !core.ready() {
        return;
    }
    let now = heartbeat::Status {
        applied: watch.position(),
        flows: core.desired().table().len(),
        devices: core.host().ofports.len(),
    };
    status.send_if_modified(|s| {
        let changed = now.applied > s.applied || now.flows != s.flows || now.devices != s.devices;
        if changed {
            *s = heartbeat::Status {
                applied: now.applied.max(s.applied),
                ..now
            };
        }
        changed
    });
}

/// Events taken in one batch at most (a stream of changes still gets a pass now and then).
const MAX_BATCH: usize = 10_000;

/// What one wait for the sources gave.
// Made and taken apart at once, one at a time: its size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Got {
    Event(Event),
    Nothing,
    /// An upstream resolver's answer for a VM, as a packet-out.
    Relay(openflow::packet::PacketOut),
    /// A metadata request, answered from the view between batches.
    Metadata(crate::metadata_http::Question),
    /// A DNS query over TCP, answered from the view between batches.
    DnsTcp(crate::dns_tcp::Question),
    StoreAway(nbdb::StoreError),
    SwitchLost(crate::switch::SwitchError),
    /// Time to count the balancer listeners' statistics.
    Stats,
}

impl Io {
    /// Hands `ev` to the core and performs what it asks, feeding the answers back, until
    /// it asks nothing more.
    async fn perform(&mut self, core: &mut Controller, ev: Event) -> Result<(), String> {
        self.perform_batch(core, vec![ev]).await
    }

    /// The same for every event of a batch at once.
    async fn perform_batch(
        &mut self,
        core: &mut Controller,
        events: Vec<Event>,
    ) -> Result<(), String> {
        if events.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let n = events.len();
        // Where the batch's time went (core, store reads, switch, store writes), for the log.
        let mut spent = [Duration::ZERO; 4];
        let mut queue = vec![core.handle_batch(events, Instant::now())];
        spent[0] += start.elapsed();
        while let Some(mut fx) = queue.pop() {
            if let Some((revision, topics)) = fx.watch_from.take() {
                self.watch = self.nb.watch(revision, &self.tables, &topics);
                self.behind = false;
            }
            self.send(&mut fx).await;
            if let Some(me) = fx.register.take() {
                match self.nb.write_chassis(&me).await {
                    Ok(()) => {
                        tracing::info!(chassis = %me.id, ip = %me.ip, "chassis record restored")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "chassis record not restored; trying again")
                    }
                }
            }
            for (net, groups) in std::mem::take(&mut fx.mcast) {
                match self.nb.set_mcast(&net, &self.cfg.chassis, &groups).await {
                    Ok(()) => {
                        tracing::info!(network = %net, groups = ?groups, "multicast groups written")
                    }
                    Err(e) => {
                        tracing::warn!(network = %net, error = %e, "multicast groups not written")
                    }
                }
            }
            for h in std::mem::take(&mut fx.health) {
                // The check makes the write again until the store says so.
                if let Err(e) = self.nb.set_member_health(&self.cfg.chassis, &h).await {
                    tracing::warn!(member = %h.member, error = %e, "member health not written");
                }
            }
            for net in std::mem::take(&mut fx.snat_ports) {
                match self.nb.ensure_snat_port(&net, &self.cfg.chassis).await {
                    Ok(()) => tracing::info!(network = %net, "SNAT address requested"),
                    Err(e) => tracing::warn!(network = %net, error = %e, "no SNAT address"),
                }
            }
            // What the core waits for comes back first; the rest of this round's effects
            // follow it.
            let t = Instant::now();
            let next = if let Some(read) = fx.read.take() {
                let ev = self.nb.answer(&self.tables, read).await;
                spent[1] += t.elapsed();
                Some(ev)
            } else if fx.commit {
                fx.commit = false;
                let ev = self.commit(core).await?;
                spent[2] += t.elapsed();
                Some(ev)
            } else {
                None
            };
            if let Some(ev) = next {
                queue.push(fx);
                let t = Instant::now();
                queue.push(core.handle(ev, Instant::now()));
                spent[0] += t.elapsed();
                continue;
            }
            self.flush(std::mem::take(&mut fx.flushes)).await;
            if std::mem::take(&mut fx.reread) {
                let (flows, groups) = read_switch(&mut self.session).await?;
                self.metrics.resync(Resync::Failover);
                queue.push(core.handle(Event::SwitchRead(flows, groups), Instant::now()));
            }
            if !fx.reports.is_empty() {
                let reports = std::mem::take(&mut fx.reports);
                let t = Instant::now();
                let ev = self.nb.report(&self.cfg.chassis, reports).await;
                spent[3] += t.elapsed();
                queue.push(core.handle(ev, Instant::now()));
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        // Not every idle tick: a batch, or one event that took a while.
        if n == 1 && start.elapsed() < Duration::from_millis(2) {
            return Ok(());
        }
        tracing::debug!(
            events = n,
            total_ms = ms(start.elapsed()),
            core_ms = ms(spent[0]),
            reads_ms = ms(spent[1]),
            switch_ms = ms(spent[2]),
            writes_ms = ms(spent[3]),
            "batch handled"
        );
        Ok(())
    }

    /// Sends the core's commit in one bundle; a switch that went away is reconnected and
    /// read back (the core then compares everything). The messages of a refused bundle go
    /// back to the core, which leaves out what they were for and commits the rest; any
    /// other refusal is fatal.
    async fn commit(&mut self, core: &mut Controller) -> Result<Event, String> {
        let (sent, (flow_mods, group_mods)) = {
            let Some(c) = core.commit() else {
                return Ok(Event::Committed);
            };
            let counts = c.counts;
            let started = Instant::now();
            let sent = self.session.commit_stream(&c.groups, c.flow_mods).await;
            self.metrics.committed(started.elapsed());
            (sent, counts)
        };
        match sent {
            Ok(()) => {
                tracing::debug!(flow_mods, group_mods, "switch updated");
                Ok(Event::Committed)
            }
            Err(SwitchError::BundleRefused(refused)) => {
                tracing::warn!(
                    flow_mods,
                    group_mods,
                    refused = refused.len(),
                    "the switch refused a commit"
                );
                Ok(Event::Refused(refused))
            }
            Err(e @ SwitchError::Refused(_)) if !e.bundle_lost() => {
                Err(format!("the switch refused the flows: {e}"))
            }
            Err(e) => {
                // A lost connection, or a bundle the switch dropped (stopped past its idle
                // timeout): either way, read the switch back and compare.
                tracing::warn!(error = %e, "lost the switch or its bundle; reconnecting");
                core.handle(Event::SwitchLost, Instant::now());
                tokio::time::sleep(Duration::from_millis(100)).await;
                self.session = connect_switch(&self.cfg.openflow).await?;
                let (flows, groups) = read_switch(&mut self.session).await?;
                self.metrics.resync(Resync::SwitchReconnected);
                Ok(Event::SwitchRead(flows, groups))
            }
        }
    }

    /// After the connection was lost: connects again and tells the core what is there.
    async fn reconnect(&mut self, core: &mut Controller) -> Result<(), String> {
        self.session = connect_switch(&self.cfg.openflow).await?;
        let (flows, groups) = read_switch(&mut self.session).await?;
        self.metrics.resync(Resync::SwitchReconnected);
        self.perform(core, Event::SwitchRead(flows, groups)).await
    }

    /// Sends packets and one-off flow-mods. A failure here is the connection going away,
    /// which the event loop notices and handles on its next read.
    async fn send(&mut self, fx: &mut Effects) {
        for m in std::mem::take(&mut fx.flow_mods) {
            if let Err(e) = self.session.flow_mod(m).await {
                tracing::warn!(error = %e, "flow-mod not sent");
            }
        }
        self.metrics.packets_out(fx.packets.len());
        for f in std::mem::take(&mut fx.dns) {
            self.dns.forward(f);
        }
        for p in std::mem::take(&mut fx.packets) {
            if let Err(e) = self.session.packet_out(p).await {
                tracing::warn!(error = %e, "packet-out not sent");
            }
        }
    }

    /// Conntrack flushes: zones given back, connections no longer allowed.
    async fn flush(&mut self, msgs: Vec<openflow::Message>) {
        for m in msgs {
            tracing::debug!(?m, "conntrack flush");
            if let Err(e) = self.session.ct_flush(m).await {
                tracing::warn!(error = %e, "conntrack flush not sent");
            }
        }
    }
}

/// What the switch holds.
async fn read_switch(
    session: &mut Switch,
) -> Result<(crate::reconcile::FlowTable, crate::reconcile::GroupTable), String> {
    let flows = session
        .dump_flows()
        .await
        .map_err(|e| format!("flow dump: {e}"))?;
    let groups = session
        .dump_groups()
        .await
        .map_err(|e| format!("group dump: {e}"))?;
    Ok((flows, groups))
}

async fn connect_switch(path: &std::path::Path) -> Result<Switch, String> {
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
