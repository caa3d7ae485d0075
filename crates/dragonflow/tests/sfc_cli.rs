//! The real `openstack sfc ...` commands (python-neutronclient's OSC plugin, in the venv
//! scripts/setup makes) drive networking-sfc's API against a real `dragonflow server`
//! process: a port pair, a group, a classifier and a chain, the deletes refused while in
//! use, a symmetric chain without a destination port refused, and the teardown in order.

mod common;

use common::Server;
use serde_json::Value;

/// The object's id, as the plugin names the column (`ID` or `id`).
fn id(v: &Value) -> String {
    v.get("ID")
        .or_else(|| v.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

fn count(v: &Value) -> Option<usize> {
    v.as_array().map(Vec::len)
}

#[test]
fn a_chain_made_and_unmade_with_the_openstack_cli() {
    let srv = Server::start();
    srv.os(&["network", "create", "n1"]);
    srv.os(&[
        "subnet",
        "create",
        "--network",
        "n1",
        "--subnet-range",
        "10.0.0.0/24",
        "s1",
    ]);
    srv.os(&["port", "create", "--network", "n1", "--device", "vm-a", "a"]);
    for p in ["sf-in", "sf-out"] {
        srv.os(&["port", "create", "--network", "n1", "--device", "sf1", p]);
    }
    let pp = srv.os(&[
        "sfc",
        "port",
        "pair",
        "create",
        "--ingress",
        "sf-in",
        "--egress",
        "sf-out",
        "--service-function-parameters",
        "weight=2",
        "pp1",
    ]);
    let pp_id = id(&pp);
    // The same ports again: networking-sfc's refusal reaches the CLI.
    let again = srv.openstack(&[
        "sfc",
        "port",
        "pair",
        "create",
        "--ingress",
        "sf-in",
        "--egress",
        "sf-out",
        "pp2",
    ]);
    assert!(again.is_err(), "{again:?}");
    let ppg = srv.os(&[
        "sfc",
        "port",
        "pair",
        "group",
        "create",
        "--port-pair",
        "pp1",
        "g1",
    ]);
    let fc = srv.os(&[
        "sfc",
        "flow",
        "classifier",
        "create",
        "--protocol",
        "tcp",
        "--destination-port",
        "80:80",
        "--logical-source-port",
        "a",
        "http",
    ]);
    // Symmetric needs the classifier's destination port (networking-sfc's OVS driver).
    let sym = srv.openstack(&[
        "sfc",
        "port",
        "chain",
        "create",
        "--port-pair-group",
        "g1",
        "--flow-classifier",
        "http",
        "--chain-parameters",
        "symmetric=true",
        "sym",
    ]);
    let err = sym.expect_err("a symmetric chain without a destination port");
    assert!(
        err.contains("does not setlogical_destination_port"),
        "{err}"
    );
    let pc = srv.os(&[
        "sfc",
        "port",
        "chain",
        "create",
        "--port-pair-group",
        "g1",
        "--flow-classifier",
        "http",
        "web",
    ]);
    let pc_id = id(&pc);
    let chains = srv.os(&["sfc", "port", "chain", "list"]);
    assert_eq!(count(&chains), Some(1), "{chains}");
    let shown = srv.os(&["sfc", "port", "chain", "show", &pc_id]);
    assert!(shown.to_string().contains(&id(&ppg)), "{shown}");
    assert!(shown.to_string().contains(&id(&fc)), "{shown}");
    // In use: the classifier, the group, the pair.
    for args in [
        &["sfc", "flow", "classifier", "delete", "http"][..],
        &["sfc", "port", "pair", "group", "delete", "g1"][..],
    ] {
        let r = srv.openstack(args);
        assert!(r.is_err(), "{args:?}: {r:?}");
    }
    let r = srv.openstack(&["sfc", "port", "pair", "delete", &pp_id]);
    assert!(r.is_err(), "{r:?}");
    // Torn down in order.
    srv.os_ok(&["sfc", "port", "chain", "delete", "web"]);
    srv.os_ok(&["sfc", "flow", "classifier", "delete", "http"]);
    srv.os_ok(&["sfc", "port", "pair", "group", "delete", "g1"]);
    srv.os_ok(&["sfc", "port", "pair", "delete", "pp1"]);
    for what in [
        ["sfc", "port", "chain", "list"],
        ["sfc", "port", "pair", "list"],
    ] {
        let left = srv.os(&what);
        assert_eq!(count(&left), Some(0), "{what:?}: {left}");
    }
}
