//! The controller's Prometheus metrics: what the runtime saw (packet-ins by app, packets
//! sent, resyncs by cause, bundle commit times) and what the core holds (flows by app,
//! groups, local ports, the NB revision applied), with the process's own (memory, CPU).
//! The `prometheus` crate keeps and encodes them; the binary serves the registry.

use crate::engine::Controller;
use crate::pipeline::{App, Cookie};
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often the flows are counted by app (a walk over the whole table).
const RECOUNT: Duration = Duration::from_secs(1);

pub struct Metrics {
    pub registry: Registry,
    flows: IntGaugeVec,
    groups: IntGauge,
    ports: IntGauge,
    revision: IntGauge,
    packet_ins: IntCounterVec,
    packets_out: IntCounter,
    resyncs: IntCounterVec,
    commit: Histogram,
    counted: std::sync::Mutex<Option<Instant>>,
}

/// Why the controller compared everything with the switch or the store again.
#[derive(Debug, Clone, Copy)]
pub enum Resync {
    /// The process started: it reads back what the switch holds.
    Start,
    /// ovs-vswitchd went away and came back.
    SwitchReconnected,
    /// The NB stream fell behind the store's log: a fresh snapshot.
    NbCompacted,
    /// A balancer's failover: the switch is read back and repaired.
    Failover,
}

impl Resync {
    fn label(self) -> &'static str {
        match self {
            Resync::Start => "start",
            Resync::SwitchReconnected => "switch_reconnected",
            Resync::NbCompacted => "nb_compacted",
            Resync::Failover => "failover",
        }
    }
}

fn app_label(cookie: u64) -> String {
    match Cookie::decode(cookie) {
        Some(c) => format!("{:?}", c.app),
        None => "other".into(),
    }
}

impl Metrics {
    /// Every metric, registered (with the process collector) under `dragonflow_controller_`.
    pub fn new(chassis: &str) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(
            Some("dragonflow_controller".into()),
            Some([("chassis".to_string(), chassis.to_string())].into()),
        )?;
        let flows = IntGaugeVec::new(
            Opts::new("flows", "Desired OpenFlow flows, by app"),
            &["app"],
        )?;
        let groups = IntGauge::new("groups", "Desired OpenFlow groups")?;
        let ports = IntGauge::new("local_ports", "Ports plugged into br-int on this host")?;
        let revision = IntGauge::new("nb_revision", "The NB store revision the view holds")?;
        let packet_ins = IntCounterVec::new(
            Opts::new(
                "packet_ins_total",
                "Packets the switch sent to the controller, by app",
            ),
            &["app"],
        )?;
        let packets_out = IntCounter::new(
            "packets_out_total",
            "Packets the controller sent (DHCP, ND, ARP, ICMP answers and others)",
        )?;
        let resyncs = IntCounterVec::new(
            Opts::new(
                "resyncs_total",
                "Full comparisons with the switch or the store, by cause",
            ),
            &["cause"],
        )?;
        let commit = Histogram::with_opts(
            HistogramOpts::new(
                "bundle_commit_seconds",
                "Time to commit one bundle to the switch",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )?;
        for c in [
            Box::new(flows.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(groups.clone()),
            Box::new(ports.clone()),
            Box::new(revision.clone()),
            Box::new(packet_ins.clone()),
            Box::new(packets_out.clone()),
            Box::new(resyncs.clone()),
            Box::new(commit.clone()),
        ] {
            registry.register(c)?;
        }
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry,
            flows,
            groups,
            ports,
            revision,
            packet_ins,
            packets_out,
            resyncs,
            commit,
            counted: std::sync::Mutex::new(None),
        })
    }

    pub fn packet_in(&self, cookie: u64) {
        self.packet_ins
            .with_label_values(&[&app_label(cookie)])
            .inc();
    }

    pub fn packets_out(&self, n: usize) {
        self.packets_out.inc_by(n as u64);
    }

    pub fn resync(&self, cause: Resync) {
        self.resyncs.with_label_values(&[cause.label()]).inc();
    }

    pub fn committed(&self, took: Duration) {
        self.commit.observe(took.as_secs_f64());
    }

    /// What the core holds now; the flows by app at most once a [`RECOUNT`].
    pub fn observe(&self, core: &Controller, now: Instant) {
        self.revision.set(core.view().revision as i64);
        self.ports.set(core.host().ofports.len() as i64);
        self.groups.set(core.desired().groups().len() as i64);
        let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
        if counted.is_some_and(|t| now.duration_since(t) < RECOUNT) {
            return;
        }
        *counted = Some(now);
        let mut by_app: BTreeMap<String, i64> =
            App::ALL.iter().map(|a| (format!("{a:?}"), 0)).collect();
        for (_, body) in core.desired().table().iter() {
            *by_app.entry(app_label(body.cookie)).or_default() += 1;
        }
        for (app, n) in by_app {
            self.flows.with_label_values(&[&app]).set(n);
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) =
            prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out)
        {
            tracing::warn!(error = %e, "metrics not encoded");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_their_labels() {
        let m = Metrics::new("host-a").unwrap();
        m.packet_in(
            Cookie {
                app: App::Dhcp,
                key: 3,
            }
            .encode(),
        );
        m.packet_in(
            Cookie {
                app: App::Dhcp,
                key: 4,
            }
            .encode(),
        );
        m.packet_in(0x42);
        m.resync(Resync::Start);
        m.packets_out(3);
        m.committed(Duration::from_millis(3));
        let text = m.render();
        for line in [
            "dragonflow_controller_packet_ins_total{app=\"Dhcp\",chassis=\"host-a\"} 2",
            "dragonflow_controller_packet_ins_total{app=\"other\",chassis=\"host-a\"} 1",
            "dragonflow_controller_resyncs_total{cause=\"start\",chassis=\"host-a\"} 1",
            "dragonflow_controller_packets_out_total{chassis=\"host-a\"} 3",
            "dragonflow_controller_bundle_commit_seconds_count{chassis=\"host-a\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
