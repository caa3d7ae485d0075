//! The controller's core, sans-IO: every decision the local controller makes. Events go in
//! (NB changes and the answers to reads, interface changes, packet-ins, ticks, what the
//! switch did), effects come out (objects to look up and snapshots to take, flows and
//! groups to commit, packets to send, conntrack flushes, statuses to report, this host's
//! chassis record to write again, SNAT addresses to ask for). The runtime owns the
//! sockets and timers and performs the effects; tests drive the same core with a fake
//! switch, an in-memory store and a clock.
//!
//! One change goes through the same steps, in this order, whoever drives it: follow what
//! the host needs now (look-ups and snapshots), take plugged ports as bound here (and
//! follow what they bring), give conntrack zones, compile the affected owners, commit, cut
//! the connections the flows no longer allow, report statuses.

mod follow;
pub mod ports;
mod refused;

pub use follow::{RELOOKUP, Read};
pub use ports::interface_event;

use crate::apps::security_groups::{Cuts, assign_zones};
use crate::apps::{self, Desired, Host, Owner, Punt};
use crate::reconcile::{self, FlowTable, GroupDiff, GroupTable};
use crate::view::{Touched, View};
use follow::{Follow, Loaded};
use model::{Chassis, PortStatus, Table};
use nbdb::{Change, Revision, Snapshot};
use openflow::flow::FlowMod;
use openflow::packet::{PacketIn, PacketOut};
use ovsdb::InterfaceEvent;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The tables a controller follows (not claims).
pub const TABLES: [Table; 19] = [
    Table::Network,
    Table::Subnet,
    Table::Port,
    Table::Router,
    Table::FloatingIp,
    Table::SecurityGroup,
    Table::SecurityGroupRule,
    Table::AddressGroup,
    Table::Chassis,
    Table::Trunk,
    Table::McastGroup,
    Table::LoadBalancer,
    Table::QosPolicy,
    Table::SfcPortChain,
    Table::FirewallRule,
    Table::FirewallPolicy,
    Table::FirewallGroup,
    Table::TapService,
    Table::TapFlow,
];

/// [`TABLES`] by name, as snapshots and watches are limited to them.
pub fn followed_tables() -> BTreeSet<String> {
    TABLES.iter().map(|t| t.name().to_string()).collect()
}

/// A refused status write is tried again after this long.
const REPORT_AGAIN: Duration = Duration::from_secs(1);
/// This host's SNAT address on an external network is asked for at most this often.
const SNAT_AGAIN: Duration = Duration::from_secs(5);
/// This host's chassis record is written back at most this often.
const REASSERT_AGAIN: Duration = Duration::from_secs(1);

/// What happened.
#[derive(Debug)]
// One event at a time, moved once into `handle`: its size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// A change from the NB stream.
    Change(Change),
    /// The stream fell behind the store's log (compacted): a fresh snapshot is needed.
    Compacted,
    /// The answers to [`Read::Lookups`]: each object's topic (`Ok(None)`: no such object).
    LookedUp(Vec<(Touched, Result<Option<String>, String>)>),
    /// The answer to [`Read::Snapshot`].
    Snapshot(Result<Snapshot, String>),
    /// An OVSDB Interface change.
    Interface(InterfaceEvent),
    PacketIn(PacketIn),
    /// The 100 ms timer.
    Tick,
    /// The switch was (re)connected and read back: it holds these flows and groups.
    SwitchRead(FlowTable, GroupTable),
    /// The connection to the switch was lost: what it holds is unknown until read back.
    SwitchLost,
    /// The switch applied the commit [`Controller::commit`] gave.
    Committed,
    /// The switch refused these messages of that commit, and applied none of it.
    Refused(Vec<crate::switch::Refusal>),
    /// The statuses written for [`Effects::reports`], with the store's answers.
    Reported(Vec<(String, PortStatus, Result<(), String>)>),
}

/// What the runtime is to do, in this order: read, commit, then the rest.
#[derive(Debug, Default)]
pub struct Effects {
    /// Read this from the store and hand the answer back before anything else.
    pub read: Option<Read>,
    /// Follow the change stream from this revision with these topics (after a snapshot).
    pub watch_from: Option<(Revision, BTreeSet<String>)>,
    /// [`Controller::commit`] has flows and groups for the switch.
    pub commit: bool,
    /// Packets to send, and short-lived flows to add at once (not reconciled).
    pub packets: Vec<PacketOut>,
    pub flow_mods: Vec<FlowMod>,
    /// DNS questions to forward to the upstream resolvers (`apps::dns`).
    pub dns: Vec<apps::dns::responder::Forward>,
    /// Conntrack flushes (zones given back, connections no longer allowed), after the
    /// commit that disallowed them.
    pub flushes: Vec<openflow::Message>,
    /// Port statuses (and bindings to this host) to write.
    pub reports: Vec<(String, PortStatus)>,
    /// This host's chassis record, to write (again).
    pub register: Option<Chassis>,
    /// External networks on which this host needs its SNAT address port.
    pub snat_ports: Vec<String>,
    /// This host's multicast groups of a network, to write (`apps::mcast`).
    pub mcast: Vec<(String, BTreeSet<std::net::IpAddr>)>,
    /// Members' health as this host's checks concluded it (`apps::lb::health`), to write.
    pub health: Vec<apps::lb::health::MemberHealth>,
    /// Read the switch back and compare everything with it (a balancer's failover), after
    /// this round's commit.
    pub reread: bool,
}

/// What the core knows of what the switch holds.
#[derive(Debug)]
enum Installed {
    /// The desired state as of the last commit: only what changed since needs sending.
    Synced,
    /// As read back from the switch: everything needs comparing.
    Read(FlowTable, GroupTable),
    /// Unknown (the connection was lost; the runtime reconnects and reads it back).
    Unknown,
}

/// Where the handling of changes stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing to do.
    Idle,
    /// Following what the host needs; `claimed` once plugged ports were taken as bound
    /// here (they may bring new topics: the view is refreshed once more).
    Refresh { claimed: bool },
    /// A commit was handed out and is not confirmed yet.
    Committing,
    /// Waiting for the switch to be read back.
    NoSwitch,
}

/// What is to be sent at the next [`Controller::commit`], kept until the switch answers:
/// a refusal names flow-mods by their place in it.
#[derive(Debug)]
enum Outgoing {
    Changes(Vec<FlowMod>, GroupDiff),
    /// Everything that differs from what was read back.
    Full,
}

/// A commit for the switch: group-mods before and after the flow-mods, in one bundle.
pub struct Commit<'a> {
    pub groups: GroupDiff,
    pub flow_mods: Box<dyn Iterator<Item = FlowMod> + Send + 'a>,
    /// (flow-mods, group-mods), for the log.
    pub counts: (usize, usize),
}

/// The local controller's state and decisions.
pub struct Controller {
    me: Chassis,
    view: View,
    host: Host,
    desired: Desired,
    cuts: Cuts,
    punt: Punt,
    follow: Follow,
    installed: Installed,
    phase: Phase,
    /// The first full compile is done.
    started: bool,
    /// Owners to recompile at the next compile.
    pending: Vec<Owner>,
    /// What the snapshots of a second refresh (after claiming) touched: ports to claim
    /// again on the fresh view.
    touched: Vec<Touched>,
    /// What the last compile recompiled, and the zones it gave back: for the cuts and
    /// flushes once committed.
    compiled: Vec<Owner>,
    released: Vec<u16>,
    outgoing: Option<Outgoing>,
    /// Owners whose flows the switch refused: left out of the desired flows until they are
    /// compiled again (they or what they depend on changed).
    failed: BTreeSet<Owner>,
    /// Statuses written (or being written) and not yet seen back in the stream.
    reported: BTreeMap<String, PortStatus>,
    report_again: Option<Instant>,
    snat_asked: BTreeMap<String, Instant>,
    /// When this host's chassis record was last written back.
    reasserted: Option<Instant>,
    /// A refresh is following what the host needs (until no read is left to make).
    following: bool,
    /// The interface watcher has told what is plugged: until then, a compile would take
    /// away the flows of every port a previous run left in the switch.
    interfaces_known: bool,
}

impl Controller {
    /// A controller for this host (`me`: its chassis record, as registered).
    pub fn new(me: Chassis, settings: &apps::Settings) -> Controller {
        Controller {
            view: View::new(&me.id),
            me,
            host: Host {
                metadata: apps::metadata::HostSide {
                    ofport: None,
                    range: settings.metadata_range,
                },
                ..Host::default()
            },
            desired: Desired::default(),
            cuts: Cuts::default(),
            punt: Punt::new(settings),
            follow: Follow::default(),
            installed: Installed::Unknown,
            phase: Phase::Refresh { claimed: false },
            started: false,
            pending: Vec::new(),
            touched: Vec::new(),
            compiled: Vec::new(),
            released: Vec::new(),
            outgoing: None,
            failed: BTreeSet::new(),
            reported: BTreeMap::new(),
            report_again: None,
            snat_asked: BTreeMap::new(),
            reasserted: None,
            following: false,
            interfaces_known: false,
        }
    }

    pub fn view(&self) -> &View {
        &self.view
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn desired(&self) -> &Desired {
        &self.desired
    }

    /// The owners whose flows the switch refused, left out of [`Controller::desired`].
    pub fn failed(&self) -> &BTreeSet<Owner> {
        &self.failed
    }

    /// This host's chassis name.
    pub fn chassis(&self) -> &str {
        &self.me.id
    }

    pub fn punt(&self) -> &Punt {
        &self.punt
    }

    pub fn punt_mut(&mut self) -> &mut Punt {
        &mut self.punt
    }

    /// Whether the first compile was committed (or had nothing to commit).
    pub fn ready(&self) -> bool {
        self.started && self.phase == Phase::Idle
    }

    /// Whether a commit is being waited for.
    pub fn committing(&self) -> bool {
        self.phase == Phase::Committing
    }

    /// Handles one event; returns what to do about it.
    pub fn handle(&mut self, ev: Event, now: Instant) -> Effects {
        self.handle_batch(vec![ev], now)
    }

    /// Handles every event that was ready at once as one batch: their changes are all
    /// taken in, then followed, compiled and committed together (one bundle, one status
    /// write), so a thousand interfaces plugged by one `ovs-vsctl` cost one pass. A batch
    /// of one goes through at once, as a single event.
    pub fn handle_batch(&mut self, events: Vec<Event>, now: Instant) -> Effects {
        let mut fx = Effects::default();
        for ev in events {
            self.absorb(ev, now, &mut fx);
        }
        self.advance(now, &mut fx);
        fx
    }

    /// Takes one event in, without going on to compile.
    fn absorb(&mut self, ev: Event, now: Instant, fx: &mut Effects) {
        match ev {
            Event::Change(c) => {
                // A failed port's own status write coming back changes nothing of its
                // flows: compiling it again would only be refused again.
                let echo = self.status_echo(&c);
                // A local port deleted: its learned metadata replies go with it.
                let gone = (c.value.is_none() && c.table == Table::Port.name())
                    .then(|| self.view.ports.get(&c.id))
                    .flatten()
                    .filter(|_| self.host.ofports.contains_key(&c.id))
                    .map(|p| p.unique_key);
                if let Some(key) = gone {
                    fx.flow_mods
                        .extend(apps::metadata::forget(self.host.metadata.range, key));
                }
                let failovers = |v: &View| v.loadbalancers.get(&c.id).map(|lb| lb.failovers);
                let before = (c.table == Table::LoadBalancer.name())
                    .then(|| failovers(&self.view))
                    .flatten();
                let touched = self.view.apply(&c);
                if let (Some(b), Some(a)) = (before, failovers(&self.view))
                    && a > b
                {
                    tracing::info!(loadbalancer = %c.id, "balancer failover: reading the switch back");
                    fx.reread = true;
                }
                if !echo {
                    self.changed(touched);
                }
            }
            Event::Compacted => {
                // Behind the log: a fresh snapshot of the same topics (now, or once the
                // commit that is out is confirmed).
                self.follow.loaded = false;
                self.refresh();
            }
            Event::LookedUp(answers) => self.follow.looked_up(answers, now),
            Event::Snapshot(Ok(snap)) => match self.follow.snapshot_done(true, now) {
                Some(Loaded::Whole(topics)) => {
                    tracing::info!(topics = ?topics, revision = snap.revision, objects = snap.records.len(), "following projects");
                    let touched = self.view.load(&snap);
                    self.changed(touched);
                    fx.watch_from = Some((snap.revision, topics));
                }
                Some(Loaded::Added { new, all }) => {
                    tracing::info!(topics = ?new, revision = snap.revision, objects = snap.records.len(), "following more projects");
                    let touched = self.view.merge(&snap, &new);
                    self.changed(touched);
                    // The rest of the view is as current as the stream was: resume from
                    // there (its last revision again, in case a batch split it), for all.
                    fx.watch_from = Some((self.view.revision.saturating_sub(1), all));
                }
                None => {}
            },
            Event::Snapshot(Err(e)) => {
                tracing::warn!(error = %e, "NB snapshot failed; trying again in 1 s");
                self.follow.snapshot_done(false, now);
            }
            Event::Interface(ev) => {
                tracing::debug!(event = ?ev, "interface");
                self.interfaces_known = true;
                let mut unplugged = Vec::new();
                let owners = interface_event(&mut self.host, &self.view, ev, &mut unplugged);
                for key in unplugged {
                    fx.flow_mods
                        .extend(apps::metadata::forget(self.host.metadata.range, key));
                }
                self.pending.extend(owners);
                self.refresh();
            }
            Event::PacketIn(pi) => {
                let out = self.punt.handle(&self.view, &mut self.host, now, &pi);
                fx.packets.extend(out.packets);
                fx.flow_mods.extend(out.flow_mods);
                fx.dns.extend(out.dns);
                fx.mcast.extend(out.mcast);
                fx.health.extend(out.health);
                if !out.recompile.is_empty() {
                    self.pending.extend(out.recompile);
                    self.refresh();
                }
            }
            Event::Tick => self.tick(now, fx),
            Event::SwitchRead(flows, groups) => {
                // Whatever was out is forgotten: everything is compared with what is there.
                self.installed = Installed::Read(flows, groups);
                self.outgoing = None;
                if matches!(self.phase, Phase::NoSwitch | Phase::Committing) {
                    self.phase = Phase::Idle;
                }
                if self.started {
                    self.pending.extend(apps::owners(&self.view));
                    self.refresh();
                }
            }
            Event::SwitchLost => {
                self.installed = Installed::Unknown;
                self.outgoing = None;
                if self.phase == Phase::Committing {
                    self.phase = Phase::NoSwitch;
                }
            }
            Event::Committed => {
                if self.phase == Phase::Committing {
                    self.installed = Installed::Synced;
                    self.outgoing = None;
                    self.desired.forget_changes();
                    self.after_commit(now, fx);
                }
            }
            Event::Refused(refusals) => self.refused(refusals, now, fx),
            Event::Reported(results) => {
                for (id, status, r) in results {
                    match r {
                        Ok(()) => {
                            tracing::info!(port = %id, status = status.as_str(), "port status reported");
                            self.reported.insert(id, status);
                        }
                        Err(e) => {
                            tracing::warn!(port = %id, error = %e, "port status not reported; trying again in 1 s");
                            self.report_again = Some(now + REPORT_AGAIN);
                        }
                    }
                }
            }
        }
    }

    /// The flows and groups to send now ([`Effects::commit`]); the runtime answers with
    /// [`Event::Committed`] or [`Event::SwitchLost`].
    pub fn commit(&mut self) -> Option<Commit<'_>> {
        match self.outgoing.as_ref()? {
            Outgoing::Changes(mods, groups) => Some(Commit {
                groups: groups.clone(),
                flow_mods: Box::new(mods.iter().cloned()),
                counts: (mods.len(), groups.len()),
            }),
            Outgoing::Full => {
                let Installed::Read(flows, groups) = &self.installed else {
                    return None;
                };
                let changes = self.desired.table().changes(flows);
                let groups = self.desired.groups().diff(groups);
                let counts = (changes.len(), groups.len());
                Some(Commit {
                    groups,
                    flow_mods: Box::new(changes.into_iter().map(|c| reconcile::flow_mod(&c))),
                    counts,
                })
            }
        }
    }

    /// The port statuses to write now ([`ports::reports_due`]).
    fn reports_due(&mut self) -> Vec<(String, PortStatus)> {
        ports::reports_due(
            &self.me.id,
            &self.view,
            &self.host,
            &self.failed,
            &mut self.reported,
        )
    }

    /// Objects changed in the view: their owners are to be recompiled.
    fn changed(&mut self, touched: Vec<Touched>) {
        for t in &touched {
            self.pending.extend(apps::affected(&self.view, t));
        }
        if self.phase == (Phase::Refresh { claimed: true }) {
            self.touched.extend(touched);
        }
        self.refresh();
    }

    /// Whether what is pending may move the followed topics: a port of a new network
    /// plugged here, or the last of one gone. Only ports, routers and groups do.
    fn moves_topics(&self) -> bool {
        self.pending.iter().any(|o| {
            matches!(
                o.table,
                Table::Port
                    | Table::Router
                    | Table::SecurityGroup
                    | Table::SecurityGroupRule
                    | Table::FirewallGroup
                    | Table::FirewallPolicy
            )
        })
    }

    /// Something is to be recompiled: start over from following, unless a commit is out
    /// (its confirmation comes first) or the switch is away.
    fn refresh(&mut self) {
        if self.phase == Phase::Idle {
            self.phase = Phase::Refresh { claimed: false };
            self.follow.restart();
        }
    }

    /// Others tunnel to this host by its chassis record: when the store's differs from
    /// what this host registered (someone changed or deleted it), it is written back; at
    /// most once a second, so two controllers with one name log their fight rather than
    /// flood the store.
    fn reassert(&mut self, now: Instant, fx: &mut Effects) {
        let seen = self.view.chassis_by_name.get(&self.me.id);
        if !self.started
            || seen == Some(&self.me)
            || self
                .reasserted
                .is_some_and(|t| now.duration_since(t) < REASSERT_AGAIN)
        {
            return;
        }
        match seen {
            Some(c) => tracing::warn!(
                chassis = %c.id, ip = %c.ip, tunnel_types = ?c.tunnel_types, expected_ip = %self.me.ip,
                "this host's chassis record was changed by someone else (another controller with this name?); restoring it"
            ),
            None => {
                tracing::warn!(chassis = %self.me.id, "this host's chassis record was deleted; restoring it")
            }
        }
        self.reasserted = Some(now);
        fx.register = Some(self.me.clone());
    }

    fn tick(&mut self, now: Instant, fx: &mut Effects) {
        self.reassert(now, fx);
        let out = self.punt.tick(&self.view, &mut self.host, now);
        fx.packets.extend(out.packets);
        fx.flow_mods.extend(out.flow_mods);
        fx.mcast.extend(out.mcast);
        fx.health.extend(out.health);
        if !out.recompile.is_empty() {
            self.pending.extend(out.recompile);
            self.refresh();
        }
        if self.phase == Phase::Idle && self.report_again.is_some_and(|t| t <= now) {
            self.report_again = None;
            fx.reports = self.reports_due();
        }
        if self.follow.relookup_due(now) {
            self.refresh();
        }
        for net in apps::nat::snat_ports_wanted(&self.view, &self.host) {
            if self
                .snat_asked
                .get(&net)
                .is_some_and(|t| now.duration_since(*t) < SNAT_AGAIN)
            {
                continue;
            }
            self.snat_asked.insert(net.clone(), now);
            fx.snat_ports.push(net);
        }
    }

    /// Goes through the steps as far as it can without an answer from outside.
    fn advance(&mut self, now: Instant, fx: &mut Effects) {
        // A restarted controller computes, from what is plugged, the flows that are
        // installed, and changes nothing: it starts once it knows what is plugged.
        if !self.interfaces_known {
            return;
        }
        loop {
            match self.phase {
                Phase::Idle | Phase::Committing | Phase::NoSwitch => return,
                Phase::Refresh { claimed } => {
                    // Once started, following goes on until the view holds what the host
                    // needs, across the reads it takes.
                    self.following |= claimed
                        || self.moves_topics()
                        || self.follow.has_unknown()
                        || self.follow.relookup_due(now)
                        || self.follow.plugged_changed(&self.host)
                        || !self.follow.loaded;
                    if self.following {
                        if fx.read.is_some() || self.follow.waiting(now) {
                            return;
                        }
                        if let Some(read) = self.follow.next(&self.view, &self.host, now) {
                            fx.read = Some(read);
                            return;
                        }
                    }
                    self.following = false;
                    // Plugged ports among what changed are taken as bound here: first among
                    // the owners to recompile, then (second refresh) among what the fresh
                    // snapshots brought.
                    let mut among = if claimed {
                        std::mem::take(&mut self.touched)
                    } else {
                        self.pending.clone()
                    };
                    // Trunk subports wired or unwired by what changed (their parent
                    // plugged, the trunk, the subport itself) are plugged ports too.
                    let wired = apps::trunk::wire(&self.view, &mut self.host);
                    for t in &wired {
                        self.pending.extend(apps::affected(&self.view, t));
                    }
                    among.extend(wired);
                    let claimed_now = ports::claim(
                        &self.me.id,
                        &mut self.view,
                        &self.host,
                        &among,
                        &mut self.reported,
                    );
                    self.pending.extend(claimed_now.iter().cloned());
                    if !claimed && !claimed_now.is_empty() {
                        // A port bound here brings its security groups' projects into the
                        // followed set; a fresh snapshot replaces the view, claims and all,
                        // and the ports are claimed again on it.
                        self.phase = Phase::Refresh { claimed: true };
                        self.follow.restart();
                        continue;
                    }
                    self.compile(now, fx);
                }
            }
        }
    }

    /// Gives zones, recompiles what is pending, and hands out the commit.
    fn compile(&mut self, now: Instant, fx: &mut Effects) {
        let zones = assign_zones(&self.view, &mut self.host);
        self.pending.extend(zones.touched);
        // A network's firewall zone goes with its security groups' zone.
        let fw = zones.released.iter().filter_map(|z| apps::fwaas::zone(*z));
        let fw: Vec<u16> = fw.collect();
        self.released.extend(zones.released);
        self.released.extend(fw);
        let ids = apps::mcast::assign_ids(&self.view, &mut self.host);
        self.pending.extend(ids);
        let mut owners = std::mem::take(&mut self.pending);
        if self.started {
            // Changes touch overlapping sets of owners (a group's holders and members):
            // compile each once.
            owners.sort();
            owners.dedup();
            for o in &owners {
                // Compiled again: it may go in this time.
                self.failed.remove(o);
            }
            self.desired
                .update(&self.view, &self.host, owners.iter().cloned());
        } else {
            self.desired = Desired::full(&self.view, &self.host);
            self.failed.clear();
            owners = apps::owners(&self.view);
        }
        self.compiled.extend(owners);
        self.hand_out(now, fx);
    }

    /// Hands out what brings the switch to the desired flows, or goes on at once when it
    /// holds them already.
    fn hand_out(&mut self, now: Instant, fx: &mut Effects) {
        let outgoing = match &self.installed {
            Installed::Unknown => {
                self.phase = Phase::NoSwitch;
                return;
            }
            Installed::Synced => {
                // The changes are kept until the commit is confirmed: a refused one is
                // made again from them.
                let (mods, groups) = self.desired.changes();
                if mods.is_empty() && groups.is_empty() {
                    self.desired.forget_changes();
                    None
                } else {
                    Some(Outgoing::Changes(mods, groups))
                }
            }
            Installed::Read(flows, groups) => {
                self.desired.forget_changes();
                let same = self.desired.table().changes(flows).is_empty()
                    && self.desired.groups().diff(groups).is_empty();
                (!same).then_some(Outgoing::Full)
            }
        };
        match outgoing {
            Some(o) => {
                self.outgoing = Some(o);
                self.phase = Phase::Committing;
                fx.commit = true;
            }
            None => {
                self.installed = Installed::Synced;
                self.after_commit(now, fx);
            }
        }
    }

    /// The switch holds the desired flows: cut what they no longer allow, report statuses.
    fn after_commit(&mut self, now: Instant, fx: &mut Effects) {
        let membership = self.view.take_membership();
        let owners = std::mem::take(&mut self.compiled);
        let flushes = self
            .cuts
            .update(&self.view, &self.host, &owners, &membership);
        fx.flushes.extend(
            std::mem::take(&mut self.released)
                .into_iter()
                .map(openflow::Message::CtFlushZone)
                .chain(flushes.into_iter().map(openflow::Message::CtFlush)),
        );
        if !self.started {
            self.started = true;
            tracing::info!(chassis = %self.me.id, revision = self.view.revision, ports = self.view.ports.len(), plugged = self.host.ofports.len(), "controller ready");
        }
        fx.reports = self.reports_due();
        let _ = now;
        // Changes that came in while the commit was out are handled now, and so is a
        // stream that fell behind the log meanwhile (it is not read again until then).
        self.phase = Phase::Idle;
        if !self.pending.is_empty() || !self.follow.loaded {
            self.refresh();
        }
    }
}
