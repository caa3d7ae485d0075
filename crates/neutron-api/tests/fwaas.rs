//! FWaaS v2 (`fwaas_v2`), in process: the default group on first sight, rule
//! validations, `insert_rule` / `remove_rule` order and errors, `audited`, sharing
//! conflicts, ports in one group only, refused deletes, and the default group's limits,
//! each with neutron-fwaas's status and error type.

mod common;

use common::{ADMIN, Cloud, OTHER, OWNER, kind};
use serde_json::{Value, json};

const RULES: &str = "/v2.0/fwaas/firewall_rules";
const POLICIES: &str = "/v2.0/fwaas/firewall_policies";
const GROUPS: &str = "/v2.0/fwaas/firewall_groups";

async fn rule(c: &Cloud, who: common::Who, body: Value) -> String {
    c.made(
        who,
        "fwaas/firewall_rules",
        json!({ "firewall_rule": body }),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn policy_rules(c: &Cloud, id: &str) -> Vec<String> {
    let (st, v) = c
        .call(OWNER, "GET", &format!("{POLICIES}/{id}"), None)
        .await;
    assert_eq!(st, 200, "{v}");
    serde_json::from_value(v["firewall_policy"]["firewall_rules"].clone()).unwrap()
}

#[tokio::test]
async fn a_project_sees_its_default_group_on_first_listing() {
    let c = Cloud::new();
    let (st, v) = c.call(OWNER, "GET", GROUPS, None).await;
    assert_eq!(st, 200, "{v}");
    let groups = v["firewall_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{v}");
    let g = &groups[0];
    assert_eq!(g["name"], "default");
    assert_eq!(g["status"], "INACTIVE");
    assert_eq!(g["ports"], json!([]));
    assert_eq!(g["project_id"], "p1");
    // Its policies hold the four default rules: ingress deny, egress allow.
    let (_, v) = c.call(OWNER, "GET", POLICIES, None).await;
    let mut names: Vec<&str> = (v["firewall_policies"].as_array().unwrap())
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["default egress", "default ingress"]);
    let (_, v) = c.call(OWNER, "GET", RULES, None).await;
    let rules = v["firewall_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4, "{v}");
    for r in rules {
        let ingress = r["name"].as_str().unwrap().contains("ingress");
        let want = if ingress { "deny" } else { "allow" };
        assert_eq!(r["action"], want, "{r}");
        assert_eq!(r["firewall_policy_id"].as_array().map(Vec::len), Some(1));
    }
    // Listing again makes no second one; another project gets its own.
    let (_, v) = c.call(OWNER, "GET", GROUPS, None).await;
    assert_eq!(v["firewall_groups"].as_array().unwrap().len(), 1);
    let (_, v) = c.call(OTHER, "GET", GROUPS, None).await;
    let theirs = v["firewall_groups"].as_array().unwrap();
    assert_eq!(theirs.len(), 1);
    assert_ne!(theirs[0]["id"], groups[0]["id"]);

    // Only an admin deletes it; a member may not rename or reconfigure it.
    let uri = format!("{GROUPS}/{}", g["id"].as_str().unwrap());
    let (st, v) = c.call(OWNER, "DELETE", &uri, None).await;
    assert_eq!((st, kind(&v)), (409, "FirewallGroupCannotRemoveDefault"));
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"firewall_group": {"admin_state_up": false}}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (409, "FirewallDefaultObjectUpdateRestricted")
    );
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &uri,
            json!({"firewall_group": {"name": "mine"}}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (409, "FirewallDefaultObjectUpdateRestricted")
    );
    let (st, v) = c.call(ADMIN, "DELETE", &uri, None).await;
    assert_eq!(st, 204, "{v}");
    // Its policies went with it; a new one appears on next sight.
    let (_, v) = c.call(OWNER, "GET", GROUPS, None).await;
    let again = v["firewall_groups"].as_array().unwrap();
    assert_eq!(again.len(), 1);
    assert_ne!(again[0]["id"], g["id"]);
}

#[tokio::test]
async fn reserved_names_are_refused() {
    let c = Cloud::new();
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            GROUPS,
            json!({"firewall_group": {"name": "default"}}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (409, "FirewallDefaultParameterExists"),
        "{v}"
    );
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            POLICIES,
            json!({"firewall_policy": {"name": "default ingress"}}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (409, "FirewallDefaultParameterExists"),
        "{v}"
    );
}

#[tokio::test]
async fn rules_are_validated_as_neutron_fwaas_does() {
    let c = Cloud::new();
    let r = c
        .made(
            OWNER,
            "fwaas/firewall_rules",
            json!({"firewall_rule": {"protocol": "tcp", "destination_port": "8000:8080",
                "source_ip_address": "10.0.0.1", "action": "REJECT"}}),
        )
        .await;
    assert_eq!(r["action"], "reject");
    assert_eq!(r["destination_port"], "8000:8080");
    assert_eq!(r["source_ip_address"], "10.0.0.1");
    assert_eq!(r["ip_version"], 4);
    assert_eq!(r["enabled"], true);
    assert_eq!(r["shared"], false);
    assert_eq!(r["firewall_policy_id"], Value::Null);
    let d = c
        .made(OWNER, "fwaas/firewall_rules", json!({"firewall_rule": {}}))
        .await;
    assert_eq!(d["action"], "deny");
    assert_eq!(d["protocol"], Value::Null);

    for (body, status, want) in [
        (
            json!({"protocol": "icmp", "destination_port": "22"}),
            400,
            "FirewallRuleInvalidICMPParameter",
        ),
        (
            json!({"source_port": "22"}),
            400,
            "FirewallRuleWithPortWithoutProtocolInvalid",
        ),
        (
            json!({"protocol": "tcp", "destination_port": "30:20"}),
            400,
            "FirewallRuleInvalidPortValue",
        ),
        (
            json!({"source_ip_address": "2001:db8::1"}),
            400,
            "FirewallIpAddressConflict",
        ),
        (
            json!({"ip_version": 6, "destination_ip_address": "10.0.0.0/8"}),
            400,
            "FirewallIpAddressConflict",
        ),
        (
            json!({"protocol": "tcp", "destination_port": "1:2:3"}),
            400,
            "HTTPBadRequest",
        ),
        (
            json!({"protocol": "tcp", "destination_port": "70000"}),
            400,
            "HTTPBadRequest",
        ),
        (json!({"protocol": "gre"}), 400, "InvalidInput"),
        (json!({"protocol": 6}), 400, "HTTPBadRequest"),
        (json!({"ip_version": 5}), 400, "HTTPBadRequest"),
        (json!({"action": "drop"}), 400, "HTTPBadRequest"),
        (
            json!({"source_ip_address": "10.0.0.300"}),
            400,
            "HTTPBadRequest",
        ),
        (json!({"position": 1}), 400, "HTTPBadRequest"),
        (json!({"shared": true}), 403, "PolicyNotAuthorized"),
    ] {
        let (st, v) = c
            .send(
                OWNER,
                "POST",
                RULES,
                json!({ "firewall_rule": body.clone() }),
            )
            .await;
        assert_eq!((st, kind(&v)), (status, want), "{body}: {v}");
    }
    // An update is checked against the whole rule.
    let uri = format!("{RULES}/{}", r["id"].as_str().unwrap());
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"firewall_rule": {"protocol": "icmp"}}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (400, "FirewallRuleInvalidICMPParameter"),
        "{v}"
    );
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"firewall_rule": {"protocol": "icmp", "destination_port": null}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["firewall_rule"]["destination_port"], Value::Null);
}

#[tokio::test]
async fn insert_and_remove_keep_the_order_and_clear_audited() {
    let c = Cloud::new();
    let a = rule(
        &c,
        OWNER,
        json!({"name": "a", "protocol": "tcp", "destination_port": "22"}),
    )
    .await;
    let b = rule(
        &c,
        OWNER,
        json!({"name": "b", "protocol": "tcp", "destination_port": "23"}),
    )
    .await;
    let x = rule(&c, OWNER, json!({"name": "x", "action": "allow"})).await;
    let p = c
        .made(
            OWNER,
            "fwaas/firewall_policies",
            json!({"firewall_policy": {"firewall_rules": [a, x], "audited": true}}),
        )
        .await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["audited"], true);
    let insert = format!("{POLICIES}/{id}/insert_rule");
    let remove = format!("{POLICIES}/{id}/remove_rule");

    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &insert,
            json!({"firewall_rule_id": b, "insert_after": a}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // The action answers with the policy itself, not wrapped.
    assert_eq!(v["firewall_rules"], json!([a, b, x]), "{v}");
    assert_eq!(v["audited"], false);
    assert_eq!(
        policy_rules(&c, &id).await,
        [a.clone(), b.clone(), x.clone()]
    );

    // Errors: missing info, not a UUID, already there, an unknown reference.
    for (body, status, want) in [
        (json!({}), 400, "FirewallRuleInfoMissing"),
        (
            json!({"firewall_rule_id": "nope"}),
            404,
            "FirewallRuleNotFound",
        ),
        (
            json!({"firewall_rule_id": a}),
            409,
            "FirewallRuleAlreadyAssociated",
        ),
        (
            json!({"firewall_rule_id": "0b6f5c1e-8c77-4f43-9d3e-6c3f0b3e2a11"}),
            404,
            "FirewallRuleNotFound",
        ),
    ] {
        let (st, v) = c.send(OWNER, "PUT", &insert, body.clone()).await;
        assert_eq!((st, kind(&v)), (status, want), "{body}: {v}");
    }
    let (st, v) = c
        .send(OWNER, "PUT", &remove, json!({"firewall_rule_id": b}))
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &insert,
            json!({"firewall_rule_id": b, "insert_before": b}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (400, "FirewallRuleNotAssociatedWithPolicy"),
        "{v}"
    );
    // With no reference the rule goes first; insert_before wins over insert_after.
    let (_, v) = c
        .send(OWNER, "PUT", &insert, json!({"firewall_rule_id": b}))
        .await;
    assert_eq!(v["firewall_rules"], json!([b, a, x]));
    let (_, _) = c
        .send(OWNER, "PUT", &remove, json!({"firewall_rule_id": b}))
        .await;
    let (_, v) = c
        .send(
            OWNER,
            "PUT",
            &insert,
            json!({"firewall_rule_id": b, "insert_before": x, "insert_after": a}),
        )
        .await;
    assert_eq!(v["firewall_rules"], json!([a, b, x]));
    let (st, v) = c
        .send(OWNER, "PUT", &remove, json!({"firewall_rule_id": b}))
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = c
        .send(OWNER, "PUT", &remove, json!({"firewall_rule_id": b}))
        .await;
    assert_eq!(
        (st, kind(&v)),
        (400, "FirewallRuleNotAssociatedWithPolicy"),
        "{v}"
    );

    // A rule in a policy is in use; changing it un-audits the policy.
    let uri = format!("{POLICIES}/{id}");
    c.send(
        OWNER,
        "PUT",
        &uri,
        json!({"firewall_policy": {"audited": true}}),
    )
    .await;
    let (st, v) = c.call(OWNER, "DELETE", &format!("{RULES}/{a}"), None).await;
    assert_eq!((st, kind(&v)), (409, "FirewallRuleInUse"), "{v}");
    let (st, _) = c
        .send(
            OWNER,
            "PUT",
            &format!("{RULES}/{a}"),
            json!({"firewall_rule": {"enabled": false}}),
        )
        .await;
    assert_eq!(st, 200);
    let (_, v) = c.call(OWNER, "GET", &uri, None).await;
    assert_eq!(v["firewall_policy"]["audited"], false, "{v}");
    // A PUT that does not say `audited` clears it too.
    c.send(
        OWNER,
        "PUT",
        &uri,
        json!({"firewall_policy": {"audited": true}}),
    )
    .await;
    let (_, v) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"firewall_policy": {"description": "d"}}),
        )
        .await;
    assert_eq!(v["firewall_policy"]["audited"], false, "{v}");
    // A rule list with a duplicate is refused.
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"firewall_policy": {"firewall_rules": [a, a]}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (400, "HTTPBadRequest"), "{v}");
}

#[tokio::test]
async fn sharing_rules_follow_neutron_fwaas() {
    let c = Cloud::new();
    let mine = rule(&c, OWNER, json!({"protocol": "udp"})).await;
    let shared = rule(&c, ADMIN, json!({"protocol": "tcp", "shared": true})).await;
    let private = rule(&c, ADMIN, json!({"protocol": "tcp"})).await;
    // Another project's private rule: FirewallRuleConflict; a shared one is fine.
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            POLICIES,
            json!({"firewall_policy": {"firewall_rules": [private]}}),
        )
        .await;
    // The member cannot see it: not found. The admin can, and gets the conflict when
    // it sets the rules without `shared` (a create always has `shared`, and
    // neutron-fwaas then checks only the sharing).
    assert_eq!((st, kind(&v)), (404, "FirewallRuleNotFound"), "{v}");
    let theirs = c
        .made(
            ADMIN,
            "fwaas/firewall_policies",
            json!({"firewall_policy": {"project_id": "p1", "firewall_rules": [private]}}),
        )
        .await;
    let (st, v) = c
        .call(
            ADMIN,
            "PUT",
            &format!("{POLICIES}/{}", theirs["id"].as_str().unwrap()),
            Some(json!({"firewall_policy": {"firewall_rules": [private]}})),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "FirewallRuleConflict"), "{v}");
    let p = c
        .made(
            OWNER,
            "fwaas/firewall_policies",
            json!({"firewall_policy": {"firewall_rules": [shared, mine]}}),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    // Sharing the policy needs every rule shared (and the admin).
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &format!("{POLICIES}/{id}"),
            json!({"firewall_policy": {"shared": true}}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (409, "FirewallPolicySharingConflict"),
        "{v}"
    );
    let (st, v) = c
        .send(
            ADMIN,
            "POST",
            POLICIES,
            json!({"firewall_policy": {"shared": true, "firewall_rules": [mine]}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (404, "FirewallRuleSharingConflict"), "{v}");
    // Another project sees the shared rule, not the private one.
    let (st, _) = c
        .call(OTHER, "GET", &format!("{RULES}/{shared}"), None)
        .await;
    assert_eq!(st, 200);
    let (st, v) = c
        .call(OTHER, "GET", &format!("{RULES}/{private}"), None)
        .await;
    assert_eq!((st, kind(&v)), (404, "FirewallRuleNotFound"), "{v}");
    assert_eq!(
        v["NeutronError"]["message"],
        format!("Firewall rule {private} could not be found.")
    );
    // Another project's unshared policy in a group: FirewallPolicyConflict.
    let (st, v) = c
        .send(
            ADMIN,
            "POST",
            GROUPS,
            json!({"firewall_group": {"name": "g", "ingress_firewall_policy_id": id}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (404, "FirewallPolicyConflict"), "{v}");
}

/// A router with an interface on a new subnet: (router id, interface port id).
async fn router_interface(c: &Cloud) -> (String, String) {
    let net = c
        .made(OWNER, "networks", json!({"network": {"name": "n"}}))
        .await;
    let sub = c
        .made(
            OWNER,
            "subnets",
            json!({"subnet": {"network_id": net["id"], "cidr": "10.7.0.0/24", "ip_version": 4}}),
        )
        .await;
    let r = c
        .made(OWNER, "routers", json!({"router": {"name": "r"}}))
        .await;
    let rid = r["id"].as_str().unwrap().to_string();
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            json!({"subnet_id": sub["id"]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    (rid, v["port_id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn groups_take_router_interfaces_and_bound_vm_ports_once() {
    let c = Cloud::new();
    let (rid, iface) = router_interface(&c).await;
    let p = c
        .made(
            OWNER,
            "fwaas/firewall_policies",
            json!({"firewall_policy": {"name": "p"}}),
        )
        .await;
    let g = c
        .made(
            OWNER,
            "fwaas/firewall_groups",
            json!({"firewall_group": {"name": "g", "ports": [iface],
                "ingress_firewall_policy_id": p["id"], "egress_firewall_policy_id": p["id"]}}),
        )
        .await;
    assert_eq!(g["status"], "ACTIVE", "{g}");
    assert_eq!(g["ports"], json!([iface]));
    let gid = g["id"].as_str().unwrap().to_string();
    // A port is in one group at most.
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            GROUPS,
            json!({"firewall_group": {"ports": [iface]}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "FirewallGroupPortInUse"), "{v}");
    // A DHCP or unowned port is invalid; an unbound VM port is not supported.
    let net = c
        .made(OWNER, "networks", json!({"network": {"name": "m"}}))
        .await;
    let plain = c
        .made(OWNER, "ports", json!({"port": {"network_id": net["id"]}}))
        .await;
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            GROUPS,
            json!({"firewall_group": {"ports": [plain["id"]]}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "FirewallGroupPortInvalid"), "{v}");
    let vm = c
        .made(
            OWNER,
            "ports",
            json!({"port": {"network_id": net["id"], "device_owner": "compute:nova"}}),
        )
        .await;
    let vm_id = vm["id"].as_str().unwrap().to_string();
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            GROUPS,
            json!({"firewall_group": {"ports": [vm_id]}}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (409, "FirewallGroupPortNotSupported"),
        "{v}"
    );
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &format!("/v2.0/ports/{vm_id}"),
            json!({"port": {"binding:host_id": "host-a"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // Bound to a host with no live controller is `binding_failed`: still not supported
    // (a bound VM port is taken: fwaas_e2e).
    let uri = format!("{GROUPS}/{gid}");
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"firewall_group": {"ports": [iface, vm_id]}}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (409, "FirewallGroupPortNotSupported"),
        "{v}"
    );
    // In use: the policy and the group.
    let (st, v) = c
        .call(
            OWNER,
            "DELETE",
            &format!("{POLICIES}/{}", p["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "FirewallPolicyInUse"), "{v}");
    let (st, v) = c.call(OWNER, "DELETE", &uri, None).await;
    assert_eq!((st, kind(&v)), (409, "FirewallGroupInUse"), "{v}");
    // A removed interface leaves the group.
    let (st, _) = c
        .call(OWNER, "DELETE", &format!("/v2.0/ports/{vm_id}"), None)
        .await;
    assert_eq!(st, 204);
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            json!({"port_id": iface}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = c.call(OWNER, "GET", &uri, None).await;
    assert_eq!(v["firewall_group"]["ports"], json!([]), "{v}");
    assert_eq!(v["firewall_group"]["status"], "INACTIVE");
    let (st, v) = c.call(OWNER, "DELETE", &uri, None).await;
    assert_eq!(st, 204, "{v}");
    // A missing policy is FirewallPolicyNotFound.
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            GROUPS,
            json!({"firewall_group": {
                "ingress_firewall_policy_id": "0b6f5c1e-8c77-4f43-9d3e-6c3f0b3e2a11"}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (404, "FirewallPolicyNotFound"), "{v}");
}

#[tokio::test]
async fn the_extension_and_collections_are_listed() {
    let c = Cloud::new();
    let (st, v) = c
        .call(OWNER, "GET", "/v2.0/extensions/fwaas_v2", None)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["extension"]["alias"], "fwaas_v2");
    let (_, v) = c.call(OWNER, "GET", "/v2.0", None).await;
    let colls: Vec<&str> = (v["resources"].as_array().unwrap())
        .iter()
        .map(|r| r["collection"].as_str().unwrap())
        .collect();
    for want in [
        "fwaas/firewall_groups",
        "fwaas/firewall_policies",
        "fwaas/firewall_rules",
    ] {
        assert!(colls.contains(&want), "{colls:?}");
    }
}
