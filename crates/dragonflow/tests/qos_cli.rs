//! The real `openstack` CLI drives QoS against a real `dragonflow server` process:
//! policies, each rule type, rule types, policies on networks and ports, and the delete
//! refused while a port uses its policy.

mod common;

use common::Server;
use serde_json::Value;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}"))
}

#[test]
fn qos_policy_and_rule_lifecycle() {
    let srv = Server::start();
    let gold = srv.os(&[
        "network",
        "qos",
        "policy",
        "create",
        "gold",
        "--description",
        "ten megabits",
    ]);
    let gid = s(&gold, "id").to_string();
    assert_eq!(gold["shared"], false, "{gold}");
    let limit = srv.os(&[
        "network",
        "qos",
        "rule",
        "create",
        "--type",
        "bandwidth-limit",
        "--max-kbps",
        "10000",
        "--max-burst-kbits",
        "1000",
        "--egress",
        "gold",
    ]);
    assert_eq!(limit["max_kbps"], 10000, "{limit}");
    let lid = s(&limit, "id").to_string();
    srv.os(&[
        "network",
        "qos",
        "rule",
        "create",
        "--type",
        "bandwidth-limit",
        "--max-kbps",
        "20000",
        "--ingress",
        "gold",
    ]);
    let mark = srv.os(&[
        "network",
        "qos",
        "rule",
        "create",
        "--type",
        "dscp-marking",
        "--dscp-mark",
        "46",
        "gold",
    ]);
    assert_eq!(mark["dscp_mark"], 46, "{mark}");
    srv.os(&[
        "network",
        "qos",
        "rule",
        "create",
        "--type",
        "minimum-bandwidth",
        "--min-kbps",
        "1000",
        "--egress",
        "gold",
    ]);
    // The same type and direction again is refused.
    let again = srv.openstack(&[
        "network",
        "qos",
        "rule",
        "create",
        "--type",
        "dscp-marking",
        "--dscp-mark",
        "10",
        "gold",
    ]);
    assert!(again.is_err(), "{again:?}");
    let rules = srv.os(&["network", "qos", "rule", "list", "gold"]);
    assert_eq!(rules.as_array().map(Vec::len), Some(4), "{rules}");
    srv.os_ok(&[
        "network",
        "qos",
        "rule",
        "set",
        "--max-kbps",
        "12000",
        "gold",
        &lid,
    ]);
    let shown = srv.os(&["network", "qos", "rule", "show", "gold", &lid]);
    assert_eq!(shown["max_kbps"], 12000, "{shown}");
    let types = srv.os(&["network", "qos", "rule", "type", "list"]);
    assert_eq!(types.as_array().map(Vec::len), Some(3), "{types}");
    let details = srv.os(&["network", "qos", "rule", "type", "show", "dscp_marking"]);
    assert!(details.to_string().contains("dscp_mark"), "{details}");

    // On a network and on a port of it.
    let net = srv.os(&["network", "create", "n1", "--qos-policy", "gold"]);
    assert_eq!(s(&net, "qos_policy_id"), gid, "{net}");
    let port = srv.os(&[
        "port",
        "create",
        "--network",
        "n1",
        "--qos-policy",
        "gold",
        "p1",
    ]);
    assert_eq!(s(&port, "qos_policy_id"), gid, "{port}");
    let busy = srv.openstack(&["network", "qos", "policy", "delete", "gold"]);
    assert!(busy.is_err(), "{busy:?}");
    srv.os_ok(&["port", "unset", "--qos-policy", "p1"]);
    srv.os_ok(&["network", "set", "--no-qos-policy", "n1"]);
    let port = srv.os(&["port", "show", "p1"]);
    assert_eq!(port["qos_policy_id"], Value::Null, "{port}");
    srv.os_ok(&["network", "qos", "rule", "delete", "gold", &lid]);
    srv.os_ok(&["network", "qos", "policy", "delete", "gold"]);
    let left = srv.os(&["network", "qos", "policy", "list"]);
    assert_eq!(left.as_array().map(Vec::len), Some(0), "{left}");
}
