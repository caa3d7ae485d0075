//! Benchmark: the controller's compile for 10,000 ports (every port in one of 100
//! networks), once with a tenth of them on this host and once with all of them: full
//! compile time, flows, resident memory, and the cost of one more port plugged afterwards
//! (recompiling what it affects and working out the flow-mods from the changes alone).
//! Each scenario runs in its own process so their memory figures do not mix.
//!
//! `cargo bench -p controller --bench compile`

use controller::apps::{Desired, Host};
use controller::view::{View, record};
use model::{
    Direction, EtherType, MacAddr, Port, PortStatus, SecurityGroup, SecurityGroupRule, fixtures,
};
use std::net::Ipv4Addr;
use std::time::Instant;
use testbed::bench::write_section;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// Figures of one scenario, printed by its process as `key=value` lines: one port in
/// `local_every` on this host, every port in the default security group or in none.
fn scenario(local_every: u32, default_group: bool) {
    let rss_before = rss_kib();
    let mut records = Vec::new();
    if default_group {
        // The group Neutron gives every project: all out, and in from its own members.
        records.push(record(
            &SecurityGroup {
                is_default: true,
                ..fixtures::security_group("default")
            },
            1,
        ));
        for (id, direction, ethertype) in [
            ("out4", Direction::Egress, EtherType::IPv4),
            ("out6", Direction::Egress, EtherType::IPv6),
            ("in4", Direction::Ingress, EtherType::IPv4),
            ("in6", Direction::Ingress, EtherType::IPv6),
        ] {
            let rule = SecurityGroupRule {
                ethertype,
                remote_group_id: (direction == Direction::Ingress).then(|| "default".into()),
                ..fixtures::security_group_rule(id, "default", direction)
            };
            records.push(record(&rule, 1));
        }
    }
    for n in 0..100u32 {
        let net = fixtures::network(&format!("net{n}"), n + 1);
        records.push(record(&net, 1));
    }
    let mut host = Host::default();
    host.tunnels.insert("geneve".into(), 1);
    let chassis = fixtures::chassis("far", "192.0.2.2");
    records.push(nbdb::Record {
        table: "chassis".into(),
        id: "far".into(),
        revision: 1,
        topic: None,
        value: serde_json::to_vec(&chassis).unwrap(),
    });
    for i in 0..10_000u32 {
        let local = i % local_every == 0;
        let ip = Ipv4Addr::from(0x0a00_0000 + i).to_string();
        let p = Port {
            fixed_ips: vec![fixtures::fixed_ip("s", &ip)],
            status: PortStatus::Active,
            unique_key: i + 1,
            security_groups: if default_group {
                vec!["default".into()]
            } else {
                vec![]
            },
            ..fixtures::port(
                &format!("port{i}"),
                &format!("net{}", i % 100),
                i,
                if local { "here" } else { "far" },
            )
        };
        if local {
            host.ofports.insert(p.meta.id.clone(), i + 10);
        }
        records.push(record(&p, 2));
    }
    let mut view = View::new("here");
    let start = Instant::now();
    view.load(&nbdb::Snapshot {
        revision: 2,
        records,
    });
    let load = start.elapsed();
    // As the runtime does before compiling: a conntrack zone per network with local ports.
    controller::apps::security_groups::assign_zones(&view, &mut host);
    // The median of five full compiles (one machine's noise is large next to 100 ms).
    let mut times = Vec::new();
    let mut desired = Desired::default();
    for _ in 0..5 {
        drop(desired);
        let start = Instant::now();
        desired = Desired::full(&view, &host);
        times.push(start.elapsed());
    }
    times.sort();
    let compile = times[2];
    let flows = desired.table().len();
    // What a controller keeps: the view and the desired flows.
    let rss = rss_kib().saturating_sub(rss_before);
    // The first sync against an empty switch: every flow encoded as a bundle message, made
    // one at a time as the controller streams them.
    let start = Instant::now();
    let empty = controller::reconcile::FlowTable::new();
    let changes = desired.table().changes(&empty);
    let mut wire = Vec::new();
    let mut bytes = 0;
    for c in &changes {
        let m = openflow::Message::BundleAdd {
            bundle_id: 1,
            flags: 0,
            message: Box::new(openflow::Message::FlowMod(controller::reconcile::flow_mod(
                c,
            ))),
        };
        wire.clear();
        m.encode(1, &mut wire).expect("encode");
        bytes += wire.len();
    }
    drop(changes);
    let diff = start.elapsed();
    let after_sync = rss_kib().saturating_sub(rss_before);
    let peak = status_kib("VmHWM:").saturating_sub(rss_before);
    // The switch now holds it all; one more port is plugged on this host.
    let mut p = view.ports.get("port1").cloned().expect("a port");
    p.meta.id = "new".into();
    p.unique_key = 20_001;
    p.mac_address = MacAddr([0xfa, 0x16, 0x3e, 0xff, 0, 1]);
    p.binding_host_id = "here".into();
    let change = nbdb::Change {
        revision: 3,
        table: "port".into(),
        id: "new".into(),
        topic: None,
        value: Some(serde_json::to_vec(&p).unwrap()),
    };
    host.ofports.insert("new".into(), 99_999);
    let start = Instant::now();
    let owners: Vec<_> = view
        .apply(&change)
        .iter()
        .flat_map(|t| controller::apps::affected(&view, t))
        .collect();
    desired.update(&view, &host, owners);
    let (mods, groups) = desired.take_changes();
    let one_more = start.elapsed();
    println!("local={}", host.ofports.len() - 1);
    println!("flows={flows}");
    println!("load_ms={:.1}", load.as_secs_f64() * 1e3);
    println!("compile_ms={:.1}", compile.as_secs_f64() * 1e3);
    println!("diff_ms={:.1}", diff.as_secs_f64() * 1e3);
    println!("rss_mib={:.1}", rss as f64 / 1024.0);
    println!("peak_mib={:.1}", peak as f64 / 1024.0);
    println!("after_sync_mib={:.1}", after_sync as f64 / 1024.0);
    println!("sync_mib={:.1}", bytes as f64 / (1 << 20) as f64);
    println!("one_more_ms={:.3}", one_more.as_secs_f64() * 1e3);
    println!("one_more_mods={}", mods.len() + groups.len());
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if let Some(every) = std::env::var("DF_BENCH_LOCAL_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        scenario(every, std::env::var("DF_BENCH_DEFAULT_GROUP").is_ok());
        return;
    }
    let run = |every: u32, default_group: bool| -> std::collections::BTreeMap<String, String> {
        let mut cmd = std::process::Command::new(std::env::current_exe().expect("exe"));
        if default_group {
            cmd.env("DF_BENCH_DEFAULT_GROUP", "1");
        }
        let out = cmd
            .arg("--bench")
            .env("DF_BENCH_LOCAL_EVERY", every.to_string())
            .output()
            .expect("scenario");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (tenth, all, grouped) = (run(10, false), run(1, false), run(1, true));
    let row = |what: &str, key: &str, unit: &str, target: &str| {
        format!(
            "| {what} | {} {unit} | {} {unit} | {} {unit} | {target} |\n",
            tenth[key], all[key], grouped[key]
        )
    };
    let table = format!(
        "| measure | 1,000 local | 10,000 local | 10,000 local, default security group | target |\n|---|---|---|---|---|\n{}{}{}{}{}{}{}{}{}{}",
        row("flows on this host", "flows", "", ""),
        row("view load from a snapshot", "load_ms", "ms", ""),
        row("full compile (median of 5)", "compile_ms", "ms", "< 100 ms"),
        row(
            "first sync: every flow as a bundled flow-mod, encoded",
            "diff_ms",
            "ms",
            ""
        ),
        row("bytes of that bundle", "sync_mib", "MiB", ""),
        row(
            "resident memory added: view + desired flows",
            "rss_mib",
            "MiB",
            ""
        ),
        row(
            "after the first sync (what stays resident)",
            "after_sync_mib",
            "MiB",
            "< 100 MB"
        ),
        row("peak", "peak_mib", "MiB", ""),
        row(
            "one more port plugged: recompile what it affects + flow-mods from the changes",
            "one_more_ms",
            "ms",
            ""
        ),
        row("flow-mods and group-mods for it", "one_more_mods", "", ""),
    );
    println!("{table}");
    let section = format!(
        "## Controller: compile of 10,000 ports\n\n\
         `cargo bench -p controller --bench compile`: 10,000 ports in 100 Geneve networks, a tenth of them or all of them on this host \
         (classification, port security, L2 and flood groups, ARP and ND responders, tunnels, DHCP), and all of them again each in \
         the project's default security group (egress anywhere, ingress from the group's members: conntrack and a conjunction per \
         remote member), each scenario in its own process. Memory is the process's resident size added from before the view was \
         loaded (after five full compiles, so it includes what the allocator keeps).\n\n{table}"
    );
    write_section("controller-compile", &section);
}
