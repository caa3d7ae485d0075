//! The real `openstack tap service ...` and `openstack tap flow ...` commands
//! (python-openstackclient's own since tap-as-a-service dropped its OSC plugin; scripts/
//! setup makes sure the CLI venv has them) drive a tap-as-a-service lifecycle against a
//! real `dragonflow server` process: a service on a port, flows into it in each
//! direction with a VLAN filter, listing, an update, the refusals, and deleting a
//! service with its flows.

mod common;

use common::Server;
use serde_json::Value;

/// A field of the CLI's JSON, by its display name or its API name.
fn field<'a>(v: &'a Value, names: &[&str]) -> &'a Value {
    names
        .iter()
        .find_map(|n| v.get(*n))
        .unwrap_or_else(|| panic!("none of {names:?} in {v}"))
}

fn id(v: &Value) -> String {
    field(v, &["ID", "id"]).as_str().unwrap().to_string()
}

#[test]
fn tap_service_and_flow_lifecycle_with_the_cli() {
    let srv = Server::start();
    srv.os(&["network", "create", "tapnet"]);
    srv.os(&[
        "subnet",
        "create",
        "tapsub",
        "--network",
        "tapnet",
        "--subnet-range",
        "10.9.0.0/24",
    ]);
    let port = |name: &str| id(&srv.os(&["port", "create", name, "--network", "tapnet"]));
    let (s_port, a_port, b_port) = (port("collector"), port("a"), port("b"));

    let s = srv.os(&[
        "tap", "service", "create", "--name", "mirror", "--port", &s_port,
    ]);
    assert_eq!(field(&s, &["port_id", "Port ID"]), s_port.as_str(), "{s}");
    assert_eq!(field(&s, &["status", "Status"]), "ACTIVE", "{s}");
    let sid = id(&s);

    let f = srv.os(&[
        "tap",
        "flow",
        "create",
        "--name",
        "a-both",
        "--port",
        &a_port,
        "--tap-service",
        "mirror",
        "--direction",
        "BOTH",
    ]);
    assert_eq!(field(&f, &["direction", "Direction"]), "BOTH", "{f}");
    assert_eq!(field(&f, &["source_port"]), a_port.as_str(), "{f}");
    assert_eq!(field(&f, &["tap_service_id"]), sid.as_str(), "{f}");
    let fid = id(&f);
    let g = srv.os(&[
        "tap",
        "flow",
        "create",
        "--port",
        &b_port,
        "--tap-service",
        &sid,
        "--direction",
        "IN",
        "--vlan-filter",
        "10-13,20",
    ]);
    let filter = field(&g, &["vlan_filter", "Vlan Filter"]).to_string();
    assert!(filter.contains("10-13,20"), "{g}");

    let flows = srv.os(&["tap", "flow", "list"]);
    assert_eq!(flows.as_array().map(Vec::len), Some(2), "{flows}");
    srv.os_ok(&["tap", "flow", "update", &fid, "--name", "renamed"]);
    let f = srv.os(&["tap", "flow", "show", &fid]);
    assert_eq!(field(&f, &["name", "Name"]), "renamed", "{f}");

    // The server's refusal, with tap-as-a-service's message (the CLI resolves names and
    // ids itself, so a missing port or service never reaches the server).
    let e = srv
        .openstack(&[
            "tap",
            "flow",
            "create",
            "--port",
            &a_port,
            "--tap-service",
            &sid,
            "--direction",
            "OUT",
            "--vlan-filter",
            "13-10",
        ])
        .expect_err("a range backwards");
    assert!(e.contains("is not a valid input"), "{e}");

    // The service goes with its flows.
    srv.os_ok(&["tap", "service", "delete", "mirror"]);
    let flows = srv.os(&["tap", "flow", "list"]);
    assert_eq!(flows.as_array().map(Vec::len), Some(0), "{flows}");
    let services = srv.os(&["tap", "service", "list"]);
    assert_eq!(services.as_array().map(Vec::len), Some(0), "{services}");
}
