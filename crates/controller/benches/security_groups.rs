//! Benchmark: security groups at scale on one host. 100 local ports, each holding one of 5
//! groups of 20 rules (10 by prefix and port range, 10 naming one of 10 remote groups of 50
//! members each, 500 remote member ports). Measures the flows on the host, the full
//! compile, and a rule added / removed: incremental recompile, flow-mods, conntrack
//! flushes, and (as root, on a real OVS) the bundle commit that enforces it.
//!
//! `cargo bench -p controller --bench security_groups`

use controller::apps::security_groups::{Cuts, assign_zones};
use controller::apps::{Desired, Host, affected, base_owner};
use controller::view::{View, record, removed, written};
use model::{Direction, Port, PortStatus, SecurityGroupRule, fixtures};
use nbdb::Change;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use testbed::bench::{ms, percentile, write_section};

fn rule(id: String, g: String, n: u16) -> SecurityGroupRule {
    SecurityGroupRule {
        protocol: Some("tcp".into()),
        protocol_number: Some(6),
        port_range_min: Some(1000 + n * 10),
        port_range_max: Some(1000 + n * 10 + 5),
        ..fixtures::security_group_rule(&id, &g, Direction::Ingress)
    }
}

fn port(i: u32, host: &str, groups: Vec<String>) -> Port {
    let ip = Ipv4Addr::from(0x0a00_0000 + i).to_string();
    Port {
        fixed_ips: vec![fixtures::fixed_ip("s", &ip)],
        security_groups: groups,
        status: PortStatus::Active,
        unique_key: i + 1,
        ..fixtures::port(&format!("port{i}"), "net", i, host)
    }
}

/// One change as the runtime handles it: view, affected owners, recompile, diff, cuts.
struct Step {
    recompile: Duration,
    mods: Vec<openflow::flow::FlowMod>,
    groups: controller::reconcile::GroupDiff,
    flushes: usize,
}

fn step(
    view: &mut View,
    host: &mut Host,
    desired: &mut Desired,
    cuts: &mut Cuts,
    c: &Change,
) -> Step {
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
    // What the runtime sends a switch in sync: the changes alone.
    let (mods, groups) = desired.take_changes();
    let membership = view.take_membership();
    let flushes = cuts.update(view, host, &owners, &membership).len();
    Step {
        recompile: start.elapsed(),
        mods,
        groups,
        flushes,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let net = fixtures::network("net", 1);
    let mut records = vec![record(&net, 1)];
    let chassis = fixtures::chassis("far", "192.0.2.2");
    records.push(nbdb::Record {
        table: "chassis".into(),
        id: "far".into(),
        revision: 1,
        topic: None,
        value: serde_json::to_vec(&chassis).unwrap(),
    });
    let group = |id: String| fixtures::security_group(&id);
    for g in 0..5 {
        records.push(record(&group(format!("app{g}")), 1));
        for n in 0..20u16 {
            let mut r = rule(format!("app{g}-r{n}"), format!("app{g}"), n);
            if n < 10 {
                r.remote_ip_prefix = Some(format!("10.{}.0.0/16", 100 + n).parse().unwrap());
            } else {
                r.remote_group_id = Some(format!("members{}", (usize::from(n) + g) % 10));
            }
            records.push(record(&r, 1));
        }
    }
    for m in 0..10 {
        records.push(record(&group(format!("members{m}")), 1));
    }
    let mut host = Host::default();
    host.tunnels.insert("geneve".into(), 1);
    for i in 0..100u32 {
        let p = port(i, "here", vec![format!("app{}", i % 5)]);
        host.ofports.insert(p.meta.id.clone(), i + 10);
        records.push(record(&p, 2));
    }
    for i in 0..500u32 {
        let p = port(1000 + i, "far", vec![format!("members{}", i / 50)]);
        records.push(record(&p, 2));
    }
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
    let sg_flows = desired
        .table()
        .iter()
        .filter(|(_, b)| b.cookie >> 56 == controller::pipeline::App::SecurityGroup as u64)
        .count();
    let mut cuts = Cuts::default();
    let membership = view.take_membership();
    cuts.update(&view, &host, &controller::apps::owners(&view), &membership);

    // Rule changes: a remote-group rule added to and removed from one group (20 holders).
    let mut rev = 10;
    let mut adds = Vec::new();
    let mut removes = Vec::new();
    let (mut add_mods, mut del_mods, mut del_flushes) = (0, 0, 0);
    for k in 0..20u16 {
        rev += 1;
        let mut r = rule(format!("extra{k}"), "app0".into(), 50 + k);
        r.remote_group_id = Some("members3".into());
        let s = step(
            &mut view,
            &mut host,
            &mut desired,
            &mut cuts,
            &written(&r, rev),
        );
        adds.push(s.recompile);
        add_mods = s.mods.len();
        rev += 1;
        let gone = removed("secgroup_rule", &r.meta.id, rev);
        let s = step(&mut view, &mut host, &mut desired, &mut cuts, &gone);
        removes.push(s.recompile);
        del_mods = s.mods.len();
        del_flushes = s.flushes;
    }
    adds.sort();
    removes.sort();
    println!(
        "100 local ports x 20 rules, 10 remote groups of 50: {flows} flows ({sg_flows} security group), full compile {:.1} ms",
        ms(compile)
    );
    println!(
        "rule added: recompile p50 {:.2} ms ({add_mods} flow-mods); removed: p50 {:.2} ms ({del_mods} flow-mods, {del_flushes} flushes)",
        ms(percentile(&adds, 0.5)),
        ms(percentile(&removes, 0.5))
    );

    // Enforcement on a real switch: the rule change's bundle, committed and acknowledged.
    let real = if testbed::require_root("security_groups bench (real OVS)") {
        enforce_on_ovs(&mut view, &mut host, &mut desired, &mut cuts, rev)
    } else {
        None
    };
    let real_rows = match &real {
        Some((install, add, del)) => format!(
            "| install every flow on an empty OVS (one bundle) | {:.1} ms | |\n\
             | rule added → bundle committed on OVS (p50 / max of 20) | {:.2} / {:.2} ms | < 100 ms |\n\
             | rule removed → bundle committed and flushes sent (p50 / max of 20) | {:.2} / {:.2} ms | < 100 ms |\n",
            ms(*install),
            ms(percentile(add, 0.5)),
            ms(percentile(add, 1.0)),
            ms(percentile(del, 0.5)),
            ms(percentile(del, 1.0)),
        ),
        None => "| on a real OVS | not run (needs root) | |\n".into(),
    };
    if let Some((install, add, del)) = &real {
        println!(
            "real OVS: install {:.1} ms; rule added to enforced p50 {:.2} ms; removed p50 {:.2} ms",
            ms(*install),
            ms(percentile(add, 0.5)),
            ms(percentile(del, 0.5))
        );
    }
    // The machine is shared: the figures scale with what else runs.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let section = format!(
        "## Controller: security groups at scale\n\n\
         `cargo bench -p controller --bench security_groups`: one host, 100 local ports in one network, each holding one of 5 groups \
         of 20 ingress rules (10 by prefix and tcp port range, 10 naming one of 10 remote groups of 50 members; 500 remote \
         member ports). A rule change is a remote-group rule added to (then removed from) a group held by 20 local ports: the \
         time from the change entering the view to its flow-mods (and, on removal, its conntrack flushes) being computed, then \
         on a real OVS (userspace datapath) until the bundle's commit is acknowledged. The end-to-end tests print the whole \
         path (API call → store → controller → OVS → traffic) as well. Load average of the 2-core machine when \
         measured: {load}.\n\n\
         | measure | value | target |\n|---|---|---|\n\
         | flows on this host (security group flows) | {flows} ({sg_flows}) | rules + members, not their product |\n\
         | full compile | {:.1} ms | |\n\
         | rule added: recompile + diff (p50 of 20) | {:.2} ms ({add_mods} flow-mods) | |\n\
         | rule removed: recompile + diff + flushes (p50 of 20) | {:.2} ms ({del_mods} flow-mods, {del_flushes} flushes) | |\n\
         {real_rows}",
        ms(compile),
        ms(percentile(&adds, 0.5)),
        ms(percentile(&removes, 0.5)),
    );
    write_section("controller-security-groups", &section);
}

/// Installs the desired flows on a fresh OVS, then measures 20 rule adds and removes from
/// the change to the acknowledged bundle (and the flushes sent).
fn enforce_on_ovs(
    view: &mut View,
    host: &mut Host,
    desired: &mut Desired,
    cuts: &mut Cuts,
    mut rev: u64,
) -> Option<(Duration, Vec<Duration>, Vec<Duration>)> {
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
        let (mut adds, mut dels) = (Vec::new(), Vec::new());
        for k in 0..20u16 {
            rev += 1;
            let mut r = rule(format!("more{k}"), "app1".into(), 70 + k);
            r.remote_group_id = Some("members5".into());
            let start = Instant::now();
            let st = step(view, host, desired, cuts, &written(&r, rev));
            s.commit_with_groups(&st.groups, &st.mods).await.ok()?;
            adds.push(start.elapsed());
            rev += 1;
            let gone = removed("secgroup_rule", &r.meta.id, rev);
            let start = Instant::now();
            let mut owners: Vec<_> = view
                .apply(&gone)
                .iter()
                .flat_map(|t| affected(view, t))
                .collect();
            owners.push(base_owner());
            owners.sort();
            owners.dedup();
            desired.update(view, host, owners.iter().cloned());
            let (mods, groups) = desired.take_changes();
            s.commit_with_groups(&groups, &mods).await.ok()?;
            let membership = view.take_membership();
            for f in cuts.update(view, host, &owners, &membership) {
                s.ct_flush(openflow::Message::CtFlush(f)).await.ok()?;
            }
            s.barrier().await.ok()?;
            dels.push(start.elapsed());
        }
        adds.sort();
        dels.sort();
        Some((install, adds, dels))
    })
}
