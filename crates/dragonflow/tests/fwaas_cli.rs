//! The real `openstack firewall group ...` commands (python-neutronclient's OSC plugin,
//! installed by scripts/setup) drive one FWaaS v2 lifecycle against a real `dragonflow
//! server` process: rules, a policy with `add rule --insert-before` and `remove rule`, a
//! group with the policy, the default group, and the refusals of in-use deletes.

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

/// The rule ids of a policy, in order.
fn rules_of(v: &Value) -> Vec<String> {
    serde_json::from_value(field(v, &["Firewall Rules", "firewall_rules"]).clone())
        .unwrap_or_else(|e| panic!("rules of {v}: {e}"))
}

#[test]
fn firewall_group_lifecycle_with_the_osc_plugin() {
    let srv = Server::start();
    let rule = |args: &[&str]| {
        let mut a = vec!["firewall", "group", "rule", "create"];
        a.extend_from_slice(args);
        srv.os(&a)
    };
    let d22 = rule(&[
        "--name",
        "no-ssh",
        "--protocol",
        "tcp",
        "--destination-port",
        "22",
        "--action",
        "deny",
    ]);
    assert_eq!(field(&d22, &["Action", "action"]), "deny", "{d22}");
    assert_eq!(field(&d22, &["Destination Port", "destination_port"]), "22");
    let r23 = rule(&[
        "--name",
        "no-telnet",
        "--protocol",
        "tcp",
        "--destination-port",
        "23",
        "--action",
        "reject",
    ]);
    let any = rule(&["--name", "rest", "--protocol", "any", "--action", "allow"]);
    assert_eq!(
        field(&any, &["Protocol", "protocol"]),
        &Value::Null,
        "{any}"
    );
    let (d22, r23, any) = (id(&d22), id(&r23), id(&any));

    let p = srv.os(&[
        "firewall",
        "group",
        "policy",
        "create",
        "--firewall-rule",
        &d22,
        "--firewall-rule",
        &r23,
        "--firewall-rule",
        &any,
        "web",
    ]);
    assert_eq!(rules_of(&p), [d22.clone(), r23.clone(), any.clone()]);
    let pid = id(&p);

    // A new rule before the deny, then out again.
    let a22 = id(&rule(&[
        "--name",
        "ssh",
        "--protocol",
        "tcp",
        "--destination-port",
        "22",
        "--action",
        "allow",
    ]));
    srv.os_ok(&[
        "firewall",
        "group",
        "policy",
        "add",
        "rule",
        "web",
        &a22,
        "--insert-before",
        &d22,
    ]);
    let p = srv.os(&["firewall", "group", "policy", "show", &pid]);
    assert_eq!(
        rules_of(&p),
        [a22.clone(), d22.clone(), r23.clone(), any.clone()]
    );
    srv.os_ok(&["firewall", "group", "policy", "remove", "rule", "web", &a22]);
    let p = srv.os(&["firewall", "group", "policy", "show", &pid]);
    assert_eq!(rules_of(&p), [d22.clone(), r23.clone(), any.clone()]);

    let g = srv.os(&[
        "firewall",
        "group",
        "create",
        "--name",
        "edge",
        "--ingress-firewall-policy",
        "web",
        "--no-port",
    ]);
    assert_eq!(
        field(&g, &["Ingress Policy ID", "ingress_firewall_policy_id"]),
        pid.as_str(),
        "{g}"
    );
    assert_eq!(field(&g, &["Status", "status"]), "INACTIVE", "{g}");
    let gid = id(&g);
    // The project's default group is there too.
    let all = srv.os(&["firewall", "group", "list"]);
    let names: Vec<&str> = (all.as_array().unwrap())
        .iter()
        .map(|g| field(g, &["Name", "name"]).as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"default") && names.contains(&"edge"),
        "{all}"
    );

    // In use: the policy by the group, the rule by the policy.
    let e = srv
        .openstack(&["firewall", "group", "policy", "delete", "web"])
        .expect_err("policy in use");
    assert!(e.contains("being used"), "{e}");
    let e = srv
        .openstack(&["firewall", "group", "rule", "delete", &d22])
        .expect_err("rule in use");
    assert!(e.contains("being used"), "{e}");

    srv.os_ok(&["firewall", "group", "delete", &gid]);
    srv.os_ok(&["firewall", "group", "policy", "delete", &pid]);
    for r in [&d22, &r23, &any, &a22] {
        srv.os_ok(&["firewall", "group", "rule", "delete", r]);
    }
    let left = srv.os(&["firewall", "group", "rule", "list"]);
    // Only the default group's four rules remain.
    assert_eq!(left.as_array().map(Vec::len), Some(4), "{left}");
}
