//! The one harness of the app tests: the controller's real core (`engine::Controller`)
//! with an in-memory NB store, a fake switch and a clock. A test puts and deletes NB
//! objects, plugs interfaces, sends frames in and sees what comes out; everything goes
//! through the same orchestration as the real runtime (look-ups, snapshots, claims, zones,
//! compile, commit, flushes, reports written back to the store and streamed again).
//! After every event it checks that the incremental state equals a full compile and that
//! the switch holds exactly the desired flows and groups. The one-off flows the handlers
//! add (flood guards) expire with the clock, as the switch's hard timeouts would.

use controller::apps::{self, Desired, Handler, Punted, Settings};
use controller::engine::{self, Controller, Effects, Event, Read};
use controller::reconcile::{FlowTable, GroupTable};
use controller::switch::{Refusal, Refused};
use controller::view::Touched;
use fake_switch::{Outcome, Switch};
use model::{Chassis, NbObject, Port, PortStatus, Table};
use nbdb::{Change, Filter, Record, Snapshot};
use openflow::flow::{FlowMod, FlowModCommand, OFPG_ANY};
use openflow::oxm::Match;
use openflow::packet::PacketIn;
use ovsdb::{InterfaceEvent, InterfaceState, Uuid};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What came of one frame: what the switch did with it, and what the controller answered
/// (its packet-outs already went through the switch: their outputs are in `answers`).
pub struct Sent {
    pub outcome: Outcome,
    pub punted: Vec<Punted>,
    pub answers: Vec<Outcome>,
}

impl Sent {
    /// Every frame that left, by port: the switch's own and the controller's answers.
    pub fn frames(&self) -> Vec<(u32, Vec<u8>)> {
        self.outcome
            .outputs
            .iter()
            .chain(self.answers.iter().flat_map(|a| a.outputs.iter()))
            .map(|o| (o.port, o.frame.clone()))
            .collect()
    }
}

/// Which flow-mods the switch refuses.
pub type Refuse = Box<dyn Fn(&FlowMod) -> bool>;

pub struct Sim {
    pub core: Controller,
    pub switch: Switch,
    pub now: Instant,
    /// The store: records by (table, id), and the last revision.
    store: BTreeMap<(String, String), Record>,
    revision: u64,
    /// What the controller's watch follows.
    followed: Option<Filter>,
    /// Conntrack flushes sent, in order.
    pub flushes: Vec<openflow::Message>,
    /// Statuses reported, in order.
    pub reports: Vec<(String, PortStatus)>,
    /// Interfaces plugged: port id → OpenFlow port.
    plugged: BTreeMap<String, u32>,
    /// Skip the equality checks (benchmark-sized worlds).
    pub unchecked: bool,
    /// What the commits sent, applied in order: what a real switch would hold.
    sent: (FlowTable, GroupTable),
    /// One-off flows with a hard timeout, and when the switch drops each.
    expiring: Vec<(Instant, FlowMod)>,
    /// Flow-mods the switch refuses (as Open vSwitch refuses a bundle: every refused one
    /// named, none of the bundle applied).
    pub refuse: Option<Refuse>,
    /// Commits handed to the switch, and those it refused.
    pub commits: usize,
    pub refused: usize,
}

fn iface(name: &str, iface_id: Option<&str>, ofport: u32) -> InterfaceState {
    InterfaceState {
        uuid: Uuid::nil(),
        name: name.to_string(),
        iface_type: String::new(),
        iface_id: iface_id.map(str::to_string),
        attached_mac: None,
        ofport: Some(i64::from(ofport)),
        admin_state: None,
        link_state: None,
        mac_in_use: None,
        external_ids: BTreeMap::new(),
    }
}

impl Sim {
    /// A controller for chassis `name` (tunnel address 192.0.2.1) on an empty switch with a
    /// Geneve tunnel port at `tunnel` (none: 0), following an empty store.
    pub fn new(name: &str, tunnel: u32) -> Sim {
        Sim::with(name, tunnel, &[], &Settings::default())
    }

    /// The same with provider patch ports (`physnet`, OpenFlow port) and handler settings.
    pub fn with(name: &str, tunnel: u32, patches: &[(&str, u32)], settings: &Settings) -> Sim {
        let me = model::fixtures::chassis(name, "192.0.2.1");
        let mut sim = Sim {
            core: Controller::new(me.clone(), settings),
            switch: Switch::new(),
            now: Instant::now(),
            store: BTreeMap::new(),
            revision: 0,
            followed: None,
            flushes: Vec::new(),
            reports: Vec::new(),
            plugged: BTreeMap::new(),
            unchecked: false,
            sent: Default::default(),
            expiring: Vec::new(),
            refuse: None,
            commits: 0,
            refused: 0,
        };
        sim.write_chassis(&me);
        sim.event(Event::SwitchRead(
            FlowTable::default(),
            GroupTable::default(),
        ));
        let mut all = Vec::new();
        if tunnel != 0 {
            all.push(iface("tun-geneve", None, tunnel));
        }
        for (physnet, port) in patches {
            all.push(iface(&format!("patch-int-{physnet}"), None, *port));
        }
        sim.event(Event::Interface(InterfaceEvent::Resync(all)));
        sim
    }

    /// Writes an object to the store (and streams the change if the controller follows it).
    pub fn put<T: NbObject>(&mut self, obj: &T) {
        let c = self.write(obj);
        self.stream(c);
    }

    /// Writes an object to the store only: its change reaches the controller when given
    /// to [`Sim::stream`] (a write the stream has not delivered yet).
    pub fn write<T: NbObject>(&mut self, obj: &T) -> Change {
        let r = controller::view::record(obj, self.revision + 1);
        self.write_record(r)
    }

    /// Chassis records are not `NbObject`s: written under their name, with no topic.
    fn write_chassis(&mut self, c: &Chassis) -> Change {
        self.write_record(Record {
            table: Table::Chassis.name().to_string(),
            id: c.id.clone(),
            revision: self.revision + 1,
            topic: None,
            value: serde_json::to_vec(c).expect("chassis"),
        })
    }

    /// This host's multicast records of `network`, made to say `groups` (as the server's
    /// `PUT /nb/v1/mcast/{network}` does).
    fn write_mcast(
        &mut self,
        network: &str,
        groups: &std::collections::BTreeSet<std::net::IpAddr>,
    ) -> Vec<Change> {
        let me = self.core.chassis().to_string();
        let table = Table::McastGroup.name().to_string();
        let prefix = model::mcast::prefix(network, &me);
        let existing: Vec<String> = self
            .store
            .keys()
            .filter(|(t, id)| *t == table && id.starts_with(&prefix))
            .map(|(_, id)| id.clone())
            .collect();
        let (puts, deletes) = model::mcast::plan(network, &me, groups, &existing);
        let mut out = Vec::new();
        for g in puts {
            out.push(self.write_record(Record {
                table: table.clone(),
                id: g.id.clone(),
                revision: self.revision + 1,
                topic: Some(network.to_string()),
                value: serde_json::to_vec(&g).expect("record"),
            }));
        }
        for id in deletes {
            if let Some(r) = self.store.remove(&(table.clone(), id)) {
                self.revision += 1;
                out.push(Change {
                    revision: self.revision,
                    table: r.table,
                    id: r.id,
                    topic: r.topic,
                    value: None,
                });
            }
        }
        out
    }

    /// The ids of the store's objects of `table`, in order.
    pub fn stored(&self, table: Table) -> Vec<String> {
        self.store
            .keys()
            .filter(|(t, _)| t == table.name())
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Another host's membership record, written and streamed.
    pub fn put_mcast(&mut self, g: &model::McastGroup) {
        let c = self.write_record(Record {
            table: Table::McastGroup.name().to_string(),
            id: g.id.clone(),
            revision: self.revision + 1,
            topic: Some(g.network_id.clone()),
            value: serde_json::to_vec(g).expect("record"),
        });
        self.stream(c);
    }

    fn write_record(&mut self, r: Record) -> Change {
        self.revision += 1;
        let c = Change {
            revision: r.revision,
            table: r.table.clone(),
            id: r.id.clone(),
            topic: r.topic.clone(),
            value: Some(r.value.clone()),
        };
        self.store.insert((r.table.clone(), r.id.clone()), r);
        c
    }

    /// Deletes an object from the store.
    pub fn delete(&mut self, table: Table, id: &str) {
        let Some(r) = self
            .store
            .remove(&(table.name().to_string(), id.to_string()))
        else {
            return;
        };
        self.revision += 1;
        self.stream(Change {
            revision: self.revision,
            table: r.table,
            id: r.id,
            topic: r.topic,
            value: None,
        });
    }

    /// Deletes an object from the store only: the stream never tells the controller (a
    /// delete it missed behind a compacted log).
    pub fn forget(&mut self, table: Table, id: &str) {
        if self
            .store
            .remove(&(table.name().to_string(), id.to_string()))
            .is_some()
        {
            self.revision += 1;
        }
    }

    /// A chassis record for another host at `ip`.
    pub fn chassis(&mut self, name: &str, ip: &str) {
        let c = self.write_chassis(&model::fixtures::chassis(name, ip));
        self.stream(c);
    }

    /// Hands the change to the controller if its watch would (nothing before its first
    /// snapshot: that snapshot brings it).
    pub fn stream(&mut self, c: Change) {
        if self
            .followed
            .as_ref()
            .is_some_and(|f| f.admits(&c.table, c.topic.as_deref()))
        {
            self.event(Event::Change(c));
        }
    }

    /// Plugs an interface for port `id` at OpenFlow port `ofport`.
    pub fn plug(&mut self, id: &str, ofport: u32) {
        self.plugged.insert(id.to_string(), ofport);
        let s = iface(&format!("tap{ofport}"), Some(id), ofport);
        self.event(Event::Interface(InterfaceEvent::Added(s)));
    }

    /// Plugs an interface with no port (`name` tells the controller what it is, as the
    /// metadata service's internal port `df-metadata`).
    #[allow(dead_code)]
    pub fn plug_named(&mut self, name: &str, ofport: u32) {
        let s = iface(name, None, ofport);
        self.event(Event::Interface(InterfaceEvent::Added(s)));
    }

    /// Plugs interfaces for many ports at once, as one `ovs-vsctl` does: one batch of
    /// events (one pass through the core).
    pub fn plug_batch(&mut self, ports: &[(String, u32)]) {
        let events = ports
            .iter()
            .map(|(id, ofport)| {
                self.plugged.insert(id.clone(), *ofport);
                let s = iface(&format!("tap{ofport}"), Some(id), *ofport);
                Event::Interface(InterfaceEvent::Added(s))
            })
            .collect();
        let fx = self.core.handle_batch(events, self.now);
        self.perform(fx);
    }

    /// Unplugs the interface of port `id`.
    pub fn unplug(&mut self, id: &str) {
        if let Some(ofport) = self.plugged.remove(id) {
            let s = iface(&format!("tap{ofport}"), Some(id), ofport);
            self.event(Event::Interface(InterfaceEvent::Removed(s)));
        }
    }

    /// Moves the clock on by `d`, in 100 ms ticks; the one-off flows whose hard timeout
    /// is over leave the switch first.
    pub fn wait(&mut self, d: Duration) -> Vec<Punted> {
        let mut out = Vec::new();
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(100);
            self.expire();
            let fx = self.core.handle(Event::Tick, self.now);
            out.push(Punted {
                packets: fx.packets.clone(),
                flow_mods: fx.flow_mods.clone(),
                recompile: Vec::new(),
                dns: fx.dns.clone(),
                mcast: fx.mcast.clone(),
                health: fx.health.clone(),
            });
            self.perform(fx);
        }
        out
    }

    /// The switch drops the one-off flows whose hard timeout is over.
    fn expire(&mut self) {
        let now = self.now;
        let (gone, kept) = std::mem::take(&mut self.expiring)
            .into_iter()
            .partition(|(t, _)| *t <= now);
        self.expiring = kept;
        for (_, m) in gone {
            let del = FlowMod {
                command: FlowModCommand::DeleteStrict,
                cookie_mask: 0,
                out_port: openflow::action::port::ANY,
                out_group: OFPG_ANY,
                instructions: Vec::new(),
                ..m
            };
            self.switch.apply_flow_mod(&del).expect("expiry");
        }
    }

    /// A one-off flow-mod from a handler, applied at once; one with a hard timeout is
    /// dropped when it is over (a flow added again starts its timeout again).
    fn one_off(&mut self, m: FlowMod) {
        self.switch.apply_flow_mod(&m).expect("one-off flow-mod");
        if m.command != FlowModCommand::Add {
            return;
        }
        let key = |f: &FlowMod| (f.table_id, f.priority, f.match_.clone());
        self.expiring.retain(|(_, f)| key(f) != key(&m));
        if m.hard_timeout > 0 {
            let at = self.now + Duration::from_secs(m.hard_timeout.into());
            self.expiring.push((at, m));
        }
    }

    /// The packet-in handler of type `T` (its settings and counters).
    pub fn handler<T: Handler>(&self) -> &T {
        self.core.punt().get::<T>().expect("no such handler")
    }

    pub fn handler_mut<T: Handler>(&mut self) -> &mut T {
        self.core
            .punt_mut()
            .get_mut::<T>()
            .expect("no such handler")
    }

    /// Sends a frame in by OpenFlow port `ofport`; packet-ins go to the controller, whose
    /// answers go through the switch in turn.
    pub fn send(&mut self, ofport: u32, frame: &[u8]) -> Sent {
        let outcome = self.switch.process(ofport, frame);
        self.settle(outcome)
    }

    /// Sends a packet already made (tunnel metadata and all).
    pub fn send_packet(&mut self, pkt: fake_switch::Packet) -> Sent {
        let outcome = self.switch.process_packet(pkt);
        self.settle(outcome)
    }

    fn settle(&mut self, outcome: Outcome) -> Sent {
        let mut punted = Vec::new();
        let mut answers = Vec::new();
        for pi in &outcome.to_controller {
            let mut m = Match::new()
                .in_port(pi.packet.in_port)
                .metadata(pi.packet.metadata);
            for r in [5u8, 6, 7] {
                m = m.with(openflow::oxm::OxmField::new(
                    openflow::oxm::Field::Reg(r),
                    u128::from(pi.packet.regs[usize::from(r)]),
                ));
            }
            let msg = PacketIn {
                buffer_id: u32::MAX,
                total_len: pi.frame.len() as u16,
                reason: pi.reason,
                table_id: pi.table,
                cookie: pi.cookie,
                match_: m,
                data: pi.frame.clone(),
            };
            let (p, a) = self.punt(msg);
            punted.push(p);
            answers.extend(a);
        }
        Sent {
            outcome,
            punted,
            answers,
        }
    }

    /// Hands the controller a packet-in made up by the test (not from the switch); returns
    /// what it answered (its packet-outs already went through the switch).
    pub fn packet_in(&mut self, msg: PacketIn) -> Punted {
        self.punt(msg).0
    }

    fn punt(&mut self, msg: PacketIn) -> (Punted, Vec<Outcome>) {
        let fx = self.core.handle(Event::PacketIn(msg), self.now);
        let punted = Punted {
            packets: fx.packets.clone(),
            flow_mods: fx.flow_mods.clone(),
            recompile: Vec::new(),
            dns: fx.dns.clone(),
            mcast: fx.mcast.clone(),
            health: fx.health.clone(),
        };
        (punted, self.perform(fx))
    }

    /// Hands an event to the core and performs what it asks.
    pub fn event(&mut self, ev: Event) {
        let fx = self.core.handle(ev, self.now);
        self.perform(fx);
    }

    /// Someone else's `ovs-ofctl del-flows` and `del-groups` on the switch: the flows whose
    /// cookie `cookie` selects, and the groups `groups`, are gone; the controller is not
    /// told.
    pub fn tamper(&mut self, cookie: impl Fn(u64) -> bool, groups: &[u32]) {
        let gone: Vec<FlowMod> = self
            .sent
            .0
            .iter()
            .filter(|(_, b)| cookie(b.cookie))
            .map(|(k, _)| controller::reconcile::flow_mod(&(k, None)))
            .collect();
        for m in &gone {
            self.switch.apply_flow_mod(m).expect("a delete");
        }
        self.sent.0.apply(&gone);
        let deletes: Vec<openflow::flow::GroupMod> = groups
            .iter()
            .map(|&g| openflow::flow::GroupMod {
                command: openflow::flow::GroupModCommand::Delete,
                group_type: openflow::flow::GroupType::Select,
                group_id: g,
                buckets: Vec::new(),
            })
            .collect();
        for g in &deletes {
            self.switch.apply_group_mod(g).expect("a group delete");
        }
        self.sent.1.apply(&deletes);
    }

    /// Performs effects as the runtime does; returns what the packet-outs did.
    pub fn perform(&mut self, fx: Effects) -> Vec<Outcome> {
        let mut answers = Vec::new();
        let mut echoes = Vec::new();
        let mut queue = vec![fx];
        while let Some(mut fx) = queue.pop() {
            if let Some((_, topics)) = fx.watch_from.take() {
                self.followed = Some(Filter::new(&engine::followed_tables(), &topics));
            }
            for m in std::mem::take(&mut fx.flow_mods) {
                self.one_off(m);
            }
            for p in std::mem::take(&mut fx.packets) {
                answers.push(self.switch.packet_out(&p));
            }
            for (net, groups) in std::mem::take(&mut fx.mcast) {
                for c in self.write_mcast(&net, &groups) {
                    self.stream(c);
                }
            }
            if let Some(me) = fx.register.take() {
                let c = self.write_chassis(&me);
                self.stream(c);
            }
            let next = if let Some(read) = fx.read.take() {
                Some(self.read(read))
            } else if fx.commit {
                fx.commit = false;
                let (mods, groups) = {
                    let c = self.core.commit().expect("a commit");
                    (c.flow_mods.collect::<Vec<_>>(), c.groups)
                };
                self.commits += 1;
                let refused: Vec<Refusal> = mods
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| self.refuse.as_ref().is_some_and(|r| r(m)))
                    .map(|(i, _)| Refusal {
                        what: Refused::Flow(i),
                        error: refusal_error(),
                    })
                    .collect();
                if !refused.is_empty() {
                    self.refused += 1;
                    queue.push(fx);
                    queue.push(self.core.handle(Event::Refused(refused), self.now));
                    continue;
                }
                for g in &groups.before {
                    self.switch.apply_group_mod(g).expect("group-mod");
                }
                for m in &mods {
                    self.switch
                        .apply_flow_mod(m)
                        .unwrap_or_else(|e| panic!("{e}: {m:?}"));
                }
                for g in &groups.after {
                    self.switch.apply_group_mod(g).expect("group-mod");
                }
                self.sent.0.apply(&mods);
                self.sent.1.apply(&groups.before);
                self.sent.1.apply(&groups.after);
                self.sent.1.apply_meters(&groups.meters_before);
                self.sent.1.apply_meters(&groups.meters_after);
                Some(Event::Committed)
            } else {
                None
            };
            if let Some(ev) = next {
                queue.push(fx);
                queue.push(self.core.handle(ev, self.now));
                continue;
            }
            self.flushes.append(&mut fx.flushes);
            if std::mem::take(&mut fx.reread) {
                // Read back: the switch holds what the commits sent, less what was
                // taken behind the controller's back.
                let read = Event::SwitchRead(self.sent.0.clone(), self.sent.1.clone());
                queue.push(fx);
                queue.push(self.core.handle(read, self.now));
                continue;
            }
            if !fx.reports.is_empty() {
                let reports = std::mem::take(&mut fx.reports);
                let results = reports
                    .iter()
                    .map(|(id, status)| {
                        let r = self.bind(id, *status);
                        (id.clone(), *status, r.map(|c| echoes.extend(c)))
                    })
                    .collect();
                self.reports.extend(reports);
                queue.push(self.core.handle(Event::Reported(results), self.now));
            }
        }
        // The stream brings the status writes back later, as a real one would (and one
        // at a time: hundreds of reports do not nest).
        for c in echoes {
            self.stream(c);
        }
        if !self.unchecked {
            self.check();
        }
        answers
    }

    /// The port as the store holds it.
    pub fn stored_port(&self, id: &str) -> Option<Port> {
        let r = self
            .store
            .get(&(Table::Port.name().to_string(), id.to_string()))?;
        serde_json::from_slice(&r.value).ok()
    }

    /// Writes a port's binding and status, as the store write of a report does; returns
    /// the change for the stream.
    fn bind(&mut self, id: &str, status: PortStatus) -> Result<Option<Change>, String> {
        let key = (Table::Port.name().to_string(), id.to_string());
        let Some(r) = self.store.get(&key) else {
            return Err(format!("port {id} is gone"));
        };
        let mut p: Port = serde_json::from_slice(&r.value).map_err(|e| e.to_string())?;
        let chassis = self.core.view().chassis.clone();
        if !p.report_applies(&chassis, status) {
            return Ok(None);
        }
        p.binding_host_id = chassis;
        p.status = status;
        Ok(Some(self.write(&p)))
    }

    fn read(&self, read: Read) -> Event {
        match read {
            Read::Lookups(objects) => Event::LookedUp(
                objects
                    .into_iter()
                    .map(|t: Touched| {
                        let topic = self
                            .store
                            .get(&(t.table.name().to_string(), t.id.clone()))
                            .map(|r| r.topic.clone());
                        (t, Ok(topic.flatten()))
                    })
                    .collect(),
            ),
            Read::Snapshot(topics) => {
                let filter = Filter::new(&engine::followed_tables(), &topics);
                Event::Snapshot(Ok(Snapshot {
                    revision: self.revision,
                    records: self
                        .store
                        .values()
                        .filter(|r| filter.admits(&r.table, r.topic.as_deref()))
                        .cloned()
                        .collect(),
                }))
            }
        }
    }

    /// The core's incremental state equals a full compile of its view, every flow fits the
    /// pipeline, and the commits sent add up to exactly what the core wants.
    pub fn check(&self) {
        if !self.core.ready() {
            return;
        }
        let (view, host) = (self.core.view(), self.core.host());
        let mut full = Desired::full(view, host);
        for o in self.core.failed() {
            full.drop_owner(o);
        }
        let d = self.core.desired();
        assert!(
            d.table() == full.table(),
            "incremental differs from full: {:?}",
            full.table().diff(d.table())
        );
        assert_eq!(d.groups(), full.groups(), "groups: incremental vs full");
        for (key, body) in d.table().iter() {
            apps::check(&apps::Flow {
                key: key.clone(),
                body: body.clone(),
            })
            .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(
            &self.sent.0 == d.table(),
            "the commits sent differ from the desired flows: {:?}",
            d.table().diff(&self.sent.0)
        );
        assert_eq!(&self.sent.1, d.groups(), "the commits' groups");
    }
}

/// What Open vSwitch answers a `goto_table` backwards: OFPET_BAD_INSTRUCTION
/// OFPBIC_BAD_TABLE_ID.
fn refusal_error() -> openflow::errors::ErrorMsg {
    openflow::errors::ErrorMsg {
        ty: 3,
        code: 2,
        experimenter: 0,
        data: Vec::new(),
    }
}
