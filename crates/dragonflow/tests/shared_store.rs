//! Two API servers on one etcd, and on one Redis: concurrent creations split over both
//! never hand out the same IP, MAC, segmentation id or datapath key; `dragonflow db` reads
//! those stores directly.

mod common;

use common::Server;
use serde_json::{Value, json};
use std::collections::HashSet;
use testbed::{StoreKind, StoreServer};

fn distinct(values: &[String]) -> bool {
    values.iter().collect::<HashSet<_>>().len() == values.len()
}

fn two_servers_never_collide(kind: StoreKind) {
    let store = StoreServer::start(kind).expect("store server");
    let a = Server::start_on(&store.url());
    let b = Server::start_on(&store.url());
    let net = a.create("networks", "network", json!({"name": "shared"}));
    let net_id = net["id"].as_str().unwrap().to_string();
    a.create(
        "subnets",
        "subnet",
        json!({"network_id": net_id, "ip_version": 4, "cidr": "10.30.0.0/24"}),
    );
    let (ports, networks): (Vec<Value>, Vec<Value>) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..60)
            .map(|i| {
                let srv = if i % 2 == 0 { &a } else { &b };
                let net_id = &net_id;
                s.spawn(move || {
                    let p = srv.create("ports", "port", json!({"network_id": net_id}));
                    let n = srv.create("networks", "network", json!({"name": format!("n{i}")}));
                    (p, n)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .unzip()
    });
    let field =
        |items: &[Value], f: &dyn Fn(&Value) -> String| items.iter().map(f).collect::<Vec<_>>();
    let ips = field(&ports, &|p| {
        p["fixed_ips"][0]["ip_address"]
            .as_str()
            .unwrap()
            .to_string()
    });
    let macs = field(&ports, &|p| p["mac_address"].as_str().unwrap().to_string());
    let segs = field(&networks, &|n| n["provider:segmentation_id"].to_string());
    assert!(distinct(&ips), "IPs: {ips:?}");
    assert!(distinct(&macs), "MACs: {macs:?}");
    assert!(distinct(&segs), "segmentation ids: {segs:?}");
    // Datapath keys live in the store only: read them with `dragonflow db`.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dragonflow"))
        .args(["db", "--nb", &store.url(), "--json", "ls", "port"])
        .output()
        .expect("dragonflow db");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json line")["value"]["unique_key"].to_string()
        })
        .collect();
    // The 60 ports and the subnet's DHCP port.
    assert_eq!(keys.len(), 61);
    assert!(distinct(&keys), "port keys: {keys:?}");
    // Both servers see everything.
    let (_, listed) = b.call("GET", "/v2.0/ports", None);
    assert_eq!(listed["ports"].as_array().unwrap().len(), 61);
}

#[test]
fn two_servers_on_one_etcd() {
    two_servers_never_collide(StoreKind::Etcd);
}

#[test]
fn two_servers_on_one_redis() {
    two_servers_never_collide(StoreKind::Redis);
}
