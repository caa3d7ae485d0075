//! Replays bytes captured from a real ovsdb-server 3.1 (`fixtures/monitor_cond_capture.json`,
//! made by `fixtures/capture.py`: a `monitor_cond` reply, then `update2` notifications for
//! adding an internal port `tap1` with an iface-id, ovs-vswitchd assigning its ofport, changing
//! the iface-id and deleting the port) through the framing and the replica, in every chunk size.

use std::collections::BTreeMap;

use ovsdb::framing::Splitter;
use ovsdb::replica::MonitoredColumns;
use ovsdb::{ChangeKind, InterfaceState, Replica, Schema, Value};
use serde_json::Value as Json;

const CAPTURE: &[u8] = include_bytes!("fixtures/monitor_cond_capture.json");

fn messages(chunk: usize) -> Vec<Json> {
    let mut sp = Splitter::default();
    let mut out = Vec::new();
    for part in CAPTURE.chunks(chunk) {
        sp.push(part);
        while let Some(m) = sp.next_message().expect("real server output frames") {
            out.push(serde_json::from_slice(&m).expect("real server output parses"));
        }
    }
    assert_eq!(sp.pending(), 0, "bytes left over");
    out
}

fn schema() -> Option<Schema> {
    let text = std::fs::read_to_string("/usr/share/openvswitch/vswitch.ovsschema").ok()?;
    Some(Schema::from_json(&serde_json::from_str(&text).expect("schema json")).expect("schema"))
}

fn columns() -> MonitoredColumns {
    let c = |cols: &[&str]| Some(cols.iter().map(|s| s.to_string()).collect());
    BTreeMap::from([
        (
            "Bridge".to_string(),
            c(&["name", "ports", "fail_mode", "datapath_type"]),
        ),
        ("Port".to_string(), c(&["name", "interfaces"])),
        (
            "Interface".to_string(),
            c(&[
                "name",
                "type",
                "external_ids",
                "ofport",
                "admin_state",
                "link_state",
                "options",
            ]),
        ),
    ])
}

fn iface(r: &Replica, name: &str) -> Option<InterfaceState> {
    r.table("Interface")?
        .iter()
        .map(|(u, row)| InterfaceState::from_row(u.clone(), row))
        .find(|s| s.name == name)
}

#[test]
fn framing_is_independent_of_chunking() {
    let whole = messages(CAPTURE.len());
    assert_eq!(whole.len(), 5);
    assert_eq!(whole[0]["id"], 1);
    for m in &whole[1..] {
        assert_eq!(m["method"], "update2");
        assert_eq!(m["params"][0], "capture");
    }
    for chunk in [1, 2, 3, 7, 64, 500] {
        assert_eq!(messages(chunk), whole, "chunk {chunk}");
    }
}

#[test]
fn replica_follows_the_real_updates() {
    let Some(schema) = schema() else {
        eprintln!("SKIP replica_follows_the_real_updates: vswitch.ovsschema not installed");
        return;
    };
    let cols = columns();
    let msgs = messages(13);
    let mut r = Replica::new();
    let initial = r
        .apply_update2(&schema, &cols, &msgs[0]["result"])
        .expect("initial");
    assert_eq!(initial.len(), 5, "bridge, 2 ports, 2 interfaces");
    let geneve = iface(&r, "tun-geneve").expect("tunnel");
    assert_eq!(geneve.iface_type, "geneve");
    assert_eq!(geneve.ofport(), Some(1));
    let local = iface(&r, "br-int").expect("local port");
    assert_eq!(local.ofport, Some(65534));
    assert_eq!(local.ofport(), None, "OFPP_LOCAL is not a regular port");
    // Defaults filled in for columns the server omitted.
    assert_eq!(geneve.iface_id, None);
    let bridge = r
        .table("Bridge")
        .and_then(|t| t.values().next())
        .expect("bridge");
    assert_eq!(bridge["ports"].uuids().len(), 2);

    let step = |r: &mut Replica, i: usize| {
        r.apply_update2(&schema, &cols, &msgs[i]["params"][1])
            .expect("update2")
    };

    let ch = step(&mut r, 1);
    assert!(ch.iter().all(|c| c.kind != ChangeKind::Delete));
    let tap = iface(&r, "tap1").expect("tap1 inserted");
    assert_eq!(tap.iface_id.as_deref(), Some("port-1"));
    assert_eq!(tap.attached_mac.as_deref(), Some("fa:16:3e:00:00:01"));
    assert_eq!(tap.ofport, None, "not yet assigned");
    let bridge = r
        .table("Bridge")
        .and_then(|t| t.values().next())
        .expect("bridge");
    assert_eq!(bridge["ports"].uuids().len(), 3, "set diff adds the port");

    let ch = step(&mut r, 2);
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].kind, ChangeKind::Modify);
    let tap = iface(&r, "tap1").expect("tap1");
    assert_eq!(tap.ofport(), Some(2), "ofport assigned by ovs-vswitchd");
    assert_eq!(tap.link_state.as_deref(), Some("down"));
    assert_eq!(
        tap.iface_id.as_deref(),
        Some("port-1"),
        "untouched column kept"
    );

    step(&mut r, 3);
    let tap = iface(&r, "tap1").expect("tap1");
    // Map diff: iface-id replaced, attached-mac (not in the diff) kept.
    assert_eq!(tap.iface_id.as_deref(), Some("port-2"));
    assert_eq!(tap.attached_mac.as_deref(), Some("fa:16:3e:00:00:01"));

    let ch = step(&mut r, 4);
    let deleted: Vec<_> = ch
        .iter()
        .filter(|c| c.kind == ChangeKind::Delete)
        .map(|c| c.table.as_str())
        .collect();
    assert_eq!(deleted, vec!["Interface", "Port"]);
    assert!(iface(&r, "tap1").is_none());
    let bridge = r
        .table("Bridge")
        .and_then(|t| t.values().next())
        .expect("bridge");
    assert_eq!(
        bridge["ports"].uuids().len(),
        2,
        "set diff removes the port"
    );
    assert_eq!(bridge["fail_mode"], Value::from("secure"));
}
