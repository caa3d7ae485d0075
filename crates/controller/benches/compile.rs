//! Benchmark: the controller's full compile for 10,000 ports on one host (every port in
//! one of 100 networks, a tenth of them local): compile time, flows, and resident memory.
//!
//! `cargo bench -p controller --bench compile`

use controller::apps::{Desired, Host};
use controller::view::{View, record};
use model::{FixedIp, MacAddr, Meta, Network, NetworkType, Port, PortStatus};
use std::time::Instant;
use testbed::bench::write_section;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rss_before = rss_kib();
    let meta = |id: String| Meta {
        id,
        project_id: "p".into(),
        ..Meta::default()
    };
    let mut records = Vec::new();
    for n in 0..100u32 {
        let net = Network {
            meta: meta(format!("net{n}")),
            admin_state_up: true,
            mtu: 1400,
            shared: false,
            external: false,
            port_security_enabled: true,
            network_type: NetworkType::Geneve,
            physical_network: None,
            segmentation_id: Some(n + 1),
            subnets: vec![],
            unique_key: n + 1,
            deleting: false,
        };
        records.push(record(&net, 1));
    }
    let mut host = Host::default();
    host.tunnels.insert("geneve".into(), 1);
    let chassis = model::Chassis {
        id: "far".into(),
        ip: "192.0.2.2".parse().unwrap(),
        tunnel_types: vec![NetworkType::Geneve],
    };
    records.push(nbdb::Record {
        table: "chassis".into(),
        id: "far".into(),
        revision: 1,
        topic: None,
        value: serde_json::to_vec(&chassis).unwrap(),
    });
    for i in 0..10_000u32 {
        let local = i % 10 == 0;
        let p = Port {
            meta: meta(format!("port{i}")),
            network_id: format!("net{}", i % 100),
            admin_state_up: true,
            mac_address: MacAddr([0xfa, 0x16, 0x3e, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
            fixed_ips: vec![FixedIp {
                subnet_id: "s".into(),
                ip_address: std::net::Ipv4Addr::from(0x0a00_0000 + i).into(),
            }],
            security_groups: vec![],
            allowed_address_pairs: vec![],
            port_security_enabled: true,
            device_owner: String::new(),
            device_id: String::new(),
            binding_host_id: if local { "here".into() } else { "far".into() },
            binding_profile: Default::default(),
            binding_vnic_type: "normal".into(),
            extra_dhcp_opts: vec![],
            status: PortStatus::Active,
            unique_key: i + 1,
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
    let start = Instant::now();
    let desired = Desired::full(&view, &host);
    let compile = start.elapsed();
    let flows = desired.table().len();
    let start = Instant::now();
    let mods = desired.table().diff(&Default::default());
    let diff = start.elapsed();
    let rss = rss_kib().saturating_sub(rss_before);
    println!("10,000 ports (1,000 local) in 100 networks: {flows} flows");
    println!(
        "view load {:.1} ms, full compile {:.1} ms, diff against an empty switch {:.1} ms ({} flow-mods)",
        load.as_secs_f64() * 1e3,
        compile.as_secs_f64() * 1e3,
        diff.as_secs_f64() * 1e3,
        mods.len()
    );
    println!("resident memory added: {:.1} MiB", rss as f64 / 1024.0);
    let section = format!(
        "## Controller: full compile of 10,000 ports\n\n\
         `cargo bench -p controller --bench compile`: 10,000 ports in 100 Geneve networks, 1,000 of them on this host \
         (classification, port security, L2, ARP responder, tunnels so far), in one process.\n\n\
         | measure | value | target |\n|---|---|---|\n\
         | flows on this host | {flows} | |\n\
         | view load from a snapshot | {:.1} ms | |\n\
         | full compile | {:.1} ms | < 100 ms |\n\
         | diff against an empty switch | {:.1} ms | |\n\
         | resident memory added (view + desired flows + flow-mods) | {:.1} MiB | < 100 MB |\n",
        load.as_secs_f64() * 1e3,
        compile.as_secs_f64() * 1e3,
        diff.as_secs_f64() * 1e3,
        rss as f64 / 1024.0
    );
    write_section("controller-compile", &section);
}
