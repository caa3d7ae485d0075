//! A simulated host for the scale harness: the controller's real core
//! ([`engine::Controller`]) and its real NB follower ([`Nb`], against a real server or
//! store), with a switch that takes every commit and counts it in place of Open vSwitch, and
//! interfaces plugged by the harness rather than by OVSDB. Many of them run as tasks of one
//! process. What each host compiled, and when, is kept for the harness ([`Seen`]), so that
//! it can tell how long a change took to reach every host that needs it, and which hosts
//! received a change they did not need.
//!
//! This is a thin runtime of its own rather than [`crate::runtime`] over a fake switch:
//! it performs the same NB effects through the same calls ([`Nb::answer`], [`Nb::report`],
//! [`Nb::watch`]), and has none of the switch, packet, metadata or heartbeat I/O.

mod seen;

pub use seen::{Key, Seen, Taken};

use crate::apps::Settings;
use crate::engine::{self, Controller, Effects, Event};
use crate::nb::{Nb, NbWatch};
use crate::reconcile::{FlowTable, GroupTable};
use model::Chassis;
use ovsdb::{InterfaceEvent, InterfaceState, Uuid};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Events taken in one batch at most, as the real runtime does.
const MAX_BATCH: usize = 10_000;
/// The core's timer. Slower than the real runtime's 100 ms: a thousand hosts share a few
/// cores, and the timer only paces retries (look-ups, reports), which are rare here.
const TICK: Duration = Duration::from_millis(250);

/// Who a simulated host is and where it reads the NB model.
#[derive(Debug, Clone)]
pub struct Config {
    pub chassis: String,
    pub ip: IpAddr,
    /// The server's NB listener or a store's URL, as `dragonflow controller --nb`.
    pub nb: String,
    /// This host's token for the server's NB listener.
    pub token: Option<String>,
    /// Ports plugged when the host starts (Neutron port ids).
    pub plugged: Vec<String>,
    /// The publish-subscribe fan-out the change stream comes from (`Nb::with_pubsub`).
    pub pubsub: Option<String>,
}

/// What the harness asks of a running host.
#[derive(Debug)]
pub enum Command {
    /// A VIF is plugged for this Neutron port (as Nova's `ovs-vsctl add-port` would).
    Plug(String),
    /// The VIF of this port is unplugged.
    Unplug(String),
    /// What the host holds now.
    Figures(oneshot::Sender<Figures>),
    Stop,
}

/// What one host holds: its share of the cloud.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// NB objects in its view.
    pub objects: usize,
    /// The networks in its view.
    pub networks: BTreeSet<String>,
    /// The networks of the ports plugged on it.
    pub local_networks: BTreeSet<String>,
    /// Flows and groups the switch holds.
    pub flows: usize,
    pub groups: usize,
    /// Changes received from the stream, snapshots taken, commits sent.
    pub changes: u64,
    pub snapshots: u64,
    pub commits: u64,
    pub flow_mods: u64,
    /// What the host asked of the store: reads (look-ups and snapshots), writes (status
    /// reports and its chassis record), and watch streams opened.
    pub reads: u64,
    pub writes: u64,
    pub watches: u64,
    /// Whether every change handed out is compiled and committed.
    pub ready: bool,
}

/// A running simulated host.
pub struct Handle {
    pub chassis: String,
    pub commands: mpsc::UnboundedSender<Command>,
    pub seen: Arc<Seen>,
    pub task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Handle {
    /// Sends a command; a host that has ended has nothing to answer.
    pub fn send(&self, c: Command) {
        let _ = self.commands.send(c);
    }

    /// What the host holds now (`None`: it has ended).
    pub async fn figures(&self) -> Option<Figures> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Figures(tx));
        rx.await.ok()
    }
}

/// Connects a host's NB follower, registers its chassis and starts it.
pub async fn start(cfg: Config) -> Result<Handle, String> {
    let mut nb = Nb::connect(&cfg.nb, None, cfg.token.as_deref()).await?;
    if let Some(url) = &cfg.pubsub {
        nb = nb.with_pubsub(url)?;
    }
    let me = Chassis {
        id: cfg.chassis.clone(),
        ip: cfg.ip,
        tunnel_types: vec![model::NetworkType::Geneve],
    };
    nb.register(&me).await?;
    let tables = engine::followed_tables();
    let watch = nb.watch(0, &tables, &BTreeSet::new());
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(Seen::default());
    let host = Host {
        core: Controller::new(me, &Settings::default()),
        nb,
        tables,
        watch,
        behind: false,
        ofports: BTreeMap::new(),
        seen: seen.clone(),
        pending: Vec::new(),
        counts: Figures::default(),
    };
    let task = tokio::spawn(host.run(rx, cfg.plugged));
    Ok(Handle {
        chassis: cfg.chassis,
        commands: tx,
        seen,
        task,
    })
}

struct Host {
    core: Controller,
    nb: Nb,
    tables: BTreeSet<String>,
    watch: NbWatch,
    /// The watch said Compacted: not read again until a snapshot replaces it, as in the
    /// real runtime.
    behind: bool,
    /// Plugged ports and their OpenFlow port numbers.
    ofports: BTreeMap<String, u32>,
    seen: Arc<Seen>,
    /// What this host took in (and when) and has not yet compiled and committed.
    pending: Vec<(Key, Instant)>,
    /// The counters of [`Figures`].
    counts: Figures,
}

/// One wait's result.
// Made and taken apart at once, one at a time, as the runtime's own: not worth a box.
#[allow(clippy::large_enum_variant)]
enum Got {
    Event(Event),
    Answer(oneshot::Sender<Figures>),
    Nothing,
    Stop,
}

impl Host {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        plugged: Vec<String>,
    ) -> Result<(), String> {
        let all = plugged.iter().map(|p| self.iface(p)).collect();
        self.perform(vec![
            Event::SwitchRead(FlowTable::default(), GroupTable::default()),
            Event::Interface(InterfaceEvent::Resync(all)),
        ])
        .await;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Everything ready at once is one batch, as in the real runtime.
            let mut batch = Vec::new();
            let mut wait = true;
            while batch.len() < MAX_BATCH {
                let got = tokio::select! {
                    biased;
                    c = commands.recv() => match c {
                        Some(Command::Plug(p)) => {
                            let s = self.iface(&p);
                            Got::Event(Event::Interface(InterfaceEvent::Added(s)))
                        }
                        Some(Command::Unplug(p)) => match self.ofports.remove(&p) {
                            Some(n) => Got::Event(Event::Interface(InterfaceEvent::Removed(
                                iface(&p, n),
                            ))),
                            None => Got::Nothing,
                        },
                        Some(Command::Figures(tx)) => Got::Answer(tx),
                        Some(Command::Stop) | None => Got::Stop,
                    },
                    c = self.watch.next(), if !self.behind => match c {
                        Ok(c) => Got::Event(Event::Change(c)),
                        Err(nbdb::StoreError::Compacted { .. }) => {
                            self.behind = true;
                            Got::Event(Event::Compacted)
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "NB stream interrupted");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            Got::Nothing
                        }
                    },
                    _ = tick.tick(), if wait => Got::Event(Event::Tick),
                    _ = std::future::ready(()), if !wait => break,
                };
                match got {
                    Got::Event(ev) => batch.push(ev),
                    Got::Answer(tx) => {
                        let _ = tx.send(self.figures());
                    }
                    Got::Nothing => {}
                    Got::Stop => return Ok(()),
                }
                wait = batch.is_empty();
            }
            self.perform(batch).await;
        }
    }

    /// The interface of a newly plugged port, with the next free OpenFlow port.
    fn iface(&mut self, port: &str) -> InterfaceState {
        let n = self
            .ofports
            .get(port)
            .copied()
            .unwrap_or(self.ofports.values().max().map_or(10, |m| m + 1));
        self.ofports.insert(port.to_string(), n);
        iface(port, n)
    }

    fn figures(&self) -> Figures {
        let v = self.core.view();
        Figures {
            objects: v.networks.len()
                + v.subnets.len()
                + v.ports.len()
                + v.routers.len()
                + v.floating_ips.len()
                + v.security_groups.len()
                + v.rules.len()
                + v.address_groups.len()
                + v.chassis_by_name.len(),
            networks: v.networks.keys().cloned().collect(),
            local_networks: v.local_ports().map(|p| p.network_id.clone()).collect(),
            flows: self.core.desired().table().len(),
            groups: self.core.desired().groups().len(),
            ready: self.core.ready(),
            ..self.counts.clone()
        }
    }

    /// Hands a batch to the core and performs what it asks until it asks nothing more;
    /// then, if the core is idle, everything the batch brought is in the switch.
    async fn perform(&mut self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let got = Instant::now();
        for ev in &events {
            if let Event::Change(c) = ev {
                self.counts.changes += 1;
                self.pending.push((Key::of(c), got));
            }
        }
        let mut queue = vec![self.core.handle_batch(events, Instant::now())];
        while let Some(mut fx) = queue.pop() {
            if let Some((revision, topics)) = fx.watch_from.take() {
                self.counts.watches += 1;
                self.watch = self.nb.watch(revision, &self.tables, &topics);
                self.behind = false;
            }
            if let Some(me) = fx.register.take() {
                self.counts.writes += 1;
                if let Err(e) = self.nb.write_chassis(&me).await {
                    tracing::warn!(error = %e, "chassis record not restored");
                }
            }
            let next = if let Some(read) = fx.read.take() {
                self.counts.reads += 1;
                let ev = self.nb.answer(&self.tables, read).await;
                if let Event::Snapshot(Ok(s)) = &ev {
                    self.counts.snapshots += 1;
                    let got = Instant::now();
                    self.pending
                        .extend(s.records.iter().map(|r| (Key::of_record(r), got)));
                }
                Some(ev)
            } else if std::mem::take(&mut fx.commit) {
                Some(self.commit())
            } else {
                None
            };
            if let Some(ev) = next {
                queue.push(fx);
                queue.push(self.core.handle(ev, Instant::now()));
                continue;
            }
            // The counting switch never refuses: a read-back is never asked for.
            debug_assert!(!fx.reread, "the counting switch refused nothing");
            ignore_switch_only(&mut fx);
            if !fx.reports.is_empty() {
                self.counts.writes += 1;
                let ev = self
                    .nb
                    .report(self.core.view().chassis.as_str(), fx.reports)
                    .await;
                if let Event::Reported(r) = &ev {
                    self.seen.reported(r, Instant::now());
                }
                queue.push(self.core.handle(ev, Instant::now()));
            }
        }
        if self.core.ready() && !self.pending.is_empty() {
            self.seen
                .installed(std::mem::take(&mut self.pending), Instant::now());
        }
    }

    /// The counting switch: takes the commit whole.
    fn commit(&mut self) -> Event {
        if let Some(c) = self.core.commit() {
            self.counts.commits += 1;
            self.counts.flow_mods += (c.counts.0 + c.counts.1) as u64;
        }
        Event::Committed
    }
}

/// What only a real switch does (packets, one-off flows, conntrack flushes, DNS relays),
/// and the writes no scenario of the harness needs (multicast, member health, SNAT
/// addresses): dropped, and said so in the log at debug level.
fn ignore_switch_only(fx: &mut Effects) {
    let dropped = fx.packets.len()
        + fx.flow_mods.len()
        + fx.flushes.len()
        + fx.dns.len()
        + fx.mcast.len()
        + fx.health.len()
        + fx.snat_ports.len();
    if dropped > 0 {
        tracing::debug!(dropped, "effects a simulated host does not perform");
    }
    fx.packets.clear();
    fx.flow_mods.clear();
    fx.flushes.clear();
    fx.dns.clear();
    fx.mcast.clear();
    fx.health.clear();
    fx.snat_ports.clear();
}

/// A VIF as OVSDB shows it: `tap` + the port's id, with its `iface-id`.
fn iface(port: &str, ofport: u32) -> InterfaceState {
    InterfaceState {
        uuid: Uuid::nil(),
        name: format!("tap{}", &port[..port.len().min(11)]),
        iface_type: String::new(),
        iface_id: Some(port.to_string()),
        attached_mac: None,
        ofport: Some(i64::from(ofport)),
        admin_state: Some("up".into()),
        link_state: Some("up".into()),
        mac_in_use: None,
        external_ids: BTreeMap::new(),
    }
}
