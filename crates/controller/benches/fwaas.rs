//! Benchmark: FWaaS on one host. 100 local VM ports in one firewall group whose ingress
//! policy has 100 rules (tcp to one port each, the last allow any). Measures the flows
//! (per port and rule), the full compile, and a rule inserted first in the policy (every
//! rule after it moves down one priority) and removed again: incremental recompile and
//! flow-mods, and (as root, on a real OVS) the bundle commit that enforces it.
//!
//! `cargo bench -p controller --bench fwaas`

use controller::apps::security_groups::assign_zones;
use controller::apps::{Desired, Host, affected, base_owner};
use controller::view::{View, record, written};
use model::fwaas::{FwAction, PortRange};
use model::{FirewallGroup, FirewallPolicy, FirewallRule, Port, PortStatus, fixtures};
use nbdb::Change;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use testbed::bench::{ms, percentile, write_section};

const PORTS: u32 = 100;
const RULES: u16 = 100;

fn rule(id: String, port: Option<u16>, action: FwAction) -> FirewallRule {
    FirewallRule {
        meta: fixtures::meta(&id),
        shared: false,
        protocol: port.map(|_| "tcp".into()),
        ip_version: 4,
        source_ip_address: None,
        destination_ip_address: None,
        source_port: None,
        destination_port: port.map(|p| PortRange { min: p, max: p }),
        action,
        enabled: true,
        deleting: false,
    }
}

fn policy(rules: Vec<String>) -> FirewallPolicy {
    FirewallPolicy {
        meta: fixtures::meta("in"),
        shared: false,
        audited: false,
        firewall_rules: rules,
        deleting: false,
    }
}

fn port(i: u32) -> Port {
    let ip = Ipv4Addr::from(0x0a00_0000 + i).to_string();
    Port {
        fixed_ips: vec![fixtures::fixed_ip("s", &ip)],
        device_owner: "compute:nova".into(),
        status: PortStatus::Active,
        unique_key: i + 1,
        ..fixtures::port(&format!("port{i}"), "net", i, "here")
    }
}

/// One change as the runtime handles it: view, affected owners, recompile, diff.
fn step(
    view: &mut View,
    host: &mut Host,
    desired: &mut Desired,
    c: &Change,
) -> (
    Duration,
    controller::reconcile::GroupDiff,
    Vec<openflow::flow::FlowMod>,
) {
    let start = Instant::now();
    let mut owners: Vec<_> = view
        .apply(c)
        .iter()
        .flat_map(|t| affected(view, t))
        .collect();
    owners.push(base_owner());
    owners.extend(assign_zones(view, host).touched);
    owners.sort();
    owners.dedup();
    desired.update(view, host, owners.iter().cloned());
    let (mods, groups) = desired.take_changes();
    (start.elapsed(), groups, mods)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut records = vec![record(&fixtures::network("net", 1), 1)];
    let mut ids = Vec::new();
    for n in 0..RULES {
        let (id, r) = if n + 1 == RULES {
            ("any".to_string(), rule("any".into(), None, FwAction::Allow))
        } else {
            let id = format!("r{n}");
            let action = if n % 2 == 0 {
                FwAction::Allow
            } else {
                FwAction::Deny
            };
            (id.clone(), rule(id, Some(1000 + n), action))
        };
        records.push(record(&r, 1));
        ids.push(id);
    }
    records.push(record(&policy(ids.clone()), 1));
    let mut host = Host::default();
    let mut ports = Vec::new();
    for i in 0..PORTS {
        let p = port(i);
        host.ofports.insert(p.meta.id.clone(), i + 10);
        ports.push(p.meta.id.clone());
        records.push(record(&p, 2));
    }
    records.push(record(
        &FirewallGroup {
            meta: fixtures::meta("fwg"),
            shared: false,
            admin_state_up: true,
            ingress_firewall_policy_id: Some("in".into()),
            egress_firewall_policy_id: None,
            ports,
            is_default: false,
        },
        2,
    ));
    let mut view = View::new("here");
    view.load(&nbdb::Snapshot {
        revision: 2,
        records,
    });
    assign_zones(&view, &mut host);
    let start = Instant::now();
    let mut desired = Desired::full(&view, &host);
    let compile = start.elapsed();
    let flows = desired.table().len();
    let fw_flows = desired
        .table()
        .iter()
        .filter(|(_, b)| b.cookie >> 56 == controller::pipeline::App::Fwaas as u64)
        .count();

    // A rule inserted first, then taken out again.
    let mut rev = 10;
    let view_rule = |view: &mut View, rev: u64, k: u16| {
        let r = rule(format!("first{k}"), Some(2000 + k), FwAction::Allow);
        view.apply(&written(&r, rev));
        r.meta.id
    };
    let (mut inserts, mut removes) = (Vec::new(), Vec::new());
    let (mut ins_mods, mut del_mods) = (0, 0);
    for k in 0..10u16 {
        rev += 1;
        let id = view_rule(&mut view, rev, k);
        let mut with = vec![id];
        with.extend(ids.iter().cloned());
        rev += 1;
        let (t, _, mods) = step(
            &mut view,
            &mut host,
            &mut desired,
            &written(&policy(with), rev),
        );
        inserts.push(t);
        ins_mods = mods.len();
        rev += 1;
        let (t, _, mods) = step(
            &mut view,
            &mut host,
            &mut desired,
            &written(&policy(ids.clone()), rev),
        );
        removes.push(t);
        del_mods = mods.len();
    }
    inserts.sort();
    removes.sort();
    let per = fw_flows as f64 / f64::from(PORTS);
    println!(
        "{PORTS} ports x {RULES} rules: {flows} flows ({fw_flows} FWaaS, {per:.0} a port), full compile {:.1} ms",
        ms(compile)
    );
    println!(
        "rule inserted first: p50 {:.2} ms ({ins_mods} flow-mods); removed: p50 {:.2} ms ({del_mods} flow-mods)",
        ms(percentile(&inserts, 0.5)),
        ms(percentile(&removes, 0.5))
    );
    let real = if testbed::require_root("fwaas bench (real OVS)") {
        enforce_on_ovs(&mut view, &mut host, &mut desired, &ids, rev)
    } else {
        None
    };
    let real_rows = match &real {
        Some((install, ins)) => format!(
            "| install every flow on an empty OVS (one bundle) | {:.1} ms |\n\
             | rule inserted first → bundle committed on OVS (p50 / max of 10) | {:.1} / {:.1} ms |\n",
            ms(*install),
            ms(percentile(ins, 0.5)),
            ms(percentile(ins, 1.0)),
        ),
        None => "| on a real OVS | not run (needs root) |\n".into(),
    };
    if let Some((install, ins)) = &real {
        println!(
            "real OVS: install {:.1} ms; rule inserted first to enforced p50 {:.1} ms",
            ms(*install),
            ms(percentile(ins, 0.5))
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let section = format!(
        "## FWaaS (issue 24): flows per rule, a rule inserted first to its enforcement\n\n\
         `cargo bench -p controller --bench fwaas`: one host, {PORTS} local VM ports in one network and one firewall group \
         whose ingress policy has {RULES} rules (tcp to one port each, allow or deny, the last allow any); no egress policy \
         (its side passes everything, committed). A rule inserted first moves every rule after it down one priority on every \
         port of the group: the time from the policy's change entering the view to its flow-mods being computed, then on a \
         real OVS (userspace datapath) until the bundle's commit is acknowledged. Priorities are positions, so an insert \
         rewrites every later rule of every port of the group (2 flow-mods each): its cost grows with rules × ports, \
         where sparse priorities would make it the new rule's own flows. New connections per second through the \
         policy against none, and an insert's enforcement on real traffic, are in the next section \
         (`fwaas_traffic`). Load average of the 2-core machine when measured: {load}.\n\n\
         | measure | value |\n|---|---|\n\
         | flows on this host (FWaaS flows; a port's: 2 entry + 1 per rule and port block, each side) | {flows} ({fw_flows}; {per:.0} a port) |\n\
         | full compile | {:.1} ms |\n\
         | rule inserted first: recompile + diff (p50 of 10) | {:.2} ms ({ins_mods} flow-mods) |\n\
         | the rule removed again (p50 of 10) | {:.2} ms ({del_mods} flow-mods) |\n\
         {real_rows}",
        ms(compile),
        ms(percentile(&inserts, 0.5)),
        ms(percentile(&removes, 0.5)),
    );
    write_section("fwaas", &section);
}

/// Installs the desired flows on a fresh OVS, then measures 10 rule inserts from the
/// policy change to the acknowledged bundle.
fn enforce_on_ovs(
    view: &mut View,
    host: &mut Host,
    desired: &mut Desired,
    ids: &[String],
    mut rev: u64,
) -> Option<(Duration, Vec<Duration>)> {
    let ovs = testbed::Ovs::start().ok()?;
    ovs.add_bridge("br-int").ok()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let mut s = controller::switch::Session::connect_unix(&ovs.mgmt_sock("br-int"))
            .await
            .ok()?;
        let start = Instant::now();
        s.commit_with_groups(
            &desired.groups().diff(&Default::default()),
            &desired.table().diff(&Default::default()),
        )
        .await
        .ok()?;
        let install = start.elapsed();
        let mut inserts = Vec::new();
        for k in 0..10u16 {
            rev += 1;
            let r = rule(format!("more{k}"), Some(3000 + k), FwAction::Allow);
            view.apply(&written(&r, rev));
            let mut with = vec![r.meta.id.clone()];
            with.extend(ids.iter().cloned());
            rev += 1;
            let start = Instant::now();
            let (_, groups, mods) = step(view, host, desired, &written(&policy(with), rev));
            s.commit_with_groups(&groups, &mods).await.ok()?;
            inserts.push(start.elapsed());
            rev += 1;
            let (_, groups, mods) = step(view, host, desired, &written(&policy(ids.to_vec()), rev));
            s.commit_with_groups(&groups, &mods).await.ok()?;
        }
        inserts.sort();
        Some((install, inserts))
    })
}
