//! QoS through the API, in process: policies and their rules (admin-only writes, one rule
//! per type and direction, the DSCP marks and ranges Neutron takes), the alias API, rule
//! types, policies on networks and ports (the project's default, another project's
//! policy hidden unless shared, `qos_network_policy_id`), and deletes refused in use.

mod common;

use common::{ADMIN, Cloud, OTHER, OWNER, kind};
use serde_json::{Value, json};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn policy(c: &Cloud, body: Value) -> String {
    id(&c
        .made(ADMIN, "qos/policies", json!({ "policy": body }))
        .await)
}

#[tokio::test]
async fn policies_and_rules_follow_neutron() {
    let c = Cloud::new();
    // Creating policies is the admin's, even in one's own project.
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            "/v2.0/qos/policies",
            json!({"policy": {"name": "x"}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (403, "PolicyNotAuthorized"), "{v}");
    let p = policy(&c, json!({"name": "gold", "project_id": "p1"})).await;
    let (st, v) = c
        .call(OWNER, "GET", &format!("/v2.0/qos/policies/{p}"), None)
        .await;
    assert_eq!(st, 200, "{v}");
    let pol = &v["policy"];
    assert_eq!(pol["rules"], json!([]));
    assert_eq!(pol["shared"], json!(false));
    assert_eq!(pol["is_default"], json!(false));
    assert_eq!(pol["revision_number"], json!(0));
    // Another project does not see it.
    let (st, v) = c
        .call(OTHER, "GET", &format!("/v2.0/qos/policies/{p}"), None)
        .await;
    assert_eq!((st, kind(&v)), (404, "QosPolicyNotFound"), "{v}");

    let rules = format!("/v2.0/qos/policies/{p}/bandwidth_limit_rules");
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            &rules,
            json!({"bandwidth_limit_rule": {"max_kbps": 1}}),
        )
        .await;
    assert_eq!(st, 403, "{v}");
    let (st, v) = c
        .send(
            ADMIN,
            "POST",
            &rules,
            json!({"bandwidth_limit_rule": {"max_kbps": 10000}}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let r = &v["bandwidth_limit_rule"];
    assert_eq!(r["direction"], "egress");
    assert_eq!(r["max_burst_kbps"], 0);
    let egress = id(r);
    // One per type and direction; the other direction is another rule.
    let (st, v) = c
        .send(
            ADMIN,
            "POST",
            &rules,
            json!({"bandwidth_limit_rule": {"max_kbps": 5}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "QoSRulesConflict"), "{v}");
    let (st, v) = c
        .send(
            ADMIN,
            "POST",
            &rules,
            json!({"bandwidth_limit_rule":
            {"max_kbps": 20000, "max_burst_kbps": 2000, "direction": "ingress"}}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = c
        .send(
            ADMIN,
            "POST",
            &rules,
            json!({"bandwidth_limit_rule":
            {"max_kbps": -1}}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    // A minimum above the limit of its direction is refused.
    let mins = format!("/v2.0/qos/policies/{p}/minimum_bandwidth_rules");
    let (st, v) = c
        .send(
            ADMIN,
            "POST",
            &mins,
            json!({"minimum_bandwidth_rule": {"min_kbps": 50000}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "QoSRuleParameterConflict"), "{v}");
    let (st, v) = c
        .send(ADMIN, "POST", &mins, json!({"minimum_bandwidth_rule": {}}))
        .await;
    assert_eq!(st, 400, "{v}");
    // DSCP marks: Neutron's list only.
    let dscp = format!("/v2.0/qos/policies/{p}/dscp_marking_rules");
    for bad in [58, 1, 42] {
        let (st, v) = c
            .send(
                ADMIN,
                "POST",
                &dscp,
                json!({"dscp_marking_rule": {"dscp_mark": bad}}),
            )
            .await;
        assert_eq!(st, 400, "{bad}: {v}");
    }
    let (st, v) = c
        .send(
            ADMIN,
            "POST",
            &dscp,
            json!({"dscp_marking_rule": {"dscp_mark": 46}}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let mark = id(&v["dscp_marking_rule"]);

    // The policy shows its rules with their type and policy; its revision moved.
    let (_, v) = c
        .call(OWNER, "GET", &format!("/v2.0/qos/policies/{p}"), None)
        .await;
    let shown = v["policy"]["rules"].as_array().expect("rules").clone();
    assert_eq!(shown.len(), 3, "{v}");
    assert!(shown.iter().all(|r| r["qos_policy_id"] == json!(p)));
    assert!(
        shown
            .iter()
            .any(|r| r["type"] == "dscp_marking" && r["dscp_mark"] == 46)
    );
    assert_eq!(v["policy"]["revision_number"], json!(3));
    // The member of the owning project reads rules, but may not change them.
    let one = format!("{rules}/{egress}");
    let (st, _) = c.call(OWNER, "GET", &one, None).await;
    assert_eq!(st, 200);
    let (st, _) = c
        .send(
            OWNER,
            "PUT",
            &one,
            json!({"bandwidth_limit_rule": {"max_kbps": 2}}),
        )
        .await;
    assert_eq!(st, 403);
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &one,
            json!({"bandwidth_limit_rule": {"max_kbps": 12000}}),
        )
        .await;
    assert_eq!(
        (st, &v["bandwidth_limit_rule"]["max_kbps"]),
        (200, &json!(12000)),
        "{v}"
    );
    // Moving it to the direction that has a rule conflicts.
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &one,
            json!({"bandwidth_limit_rule": {"direction": "ingress"}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "QoSRulesConflict"), "{v}");

    // The alias API finds a rule by its id alone.
    let alias = format!("/v2.0/qos/alias-dscp-marking-rules/{mark}");
    let (st, v) = c.call(OWNER, "GET", &alias, None).await;
    assert_eq!(
        (st, &v["alias_dscp_marking_rule"]["dscp_mark"]),
        (200, &json!(46)),
        "{v}"
    );
    let (st, v) = c.call(OTHER, "GET", &alias, None).await;
    assert_eq!(st, 404, "{v}");
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &alias,
            json!({"alias_dscp_marking_rule": {"dscp_mark": 10}}),
        )
        .await;
    assert_eq!(
        (st, &v["alias_dscp_marking_rule"]["dscp_mark"]),
        (200, &json!(10)),
        "{v}"
    );
    let (st, _) = c.call(ADMIN, "DELETE", &alias, None).await;
    assert_eq!(st, 204);
    let (st, v) = c.call(ADMIN, "GET", &format!("{dscp}/{mark}"), None).await;
    assert_eq!((st, kind(&v)), (404, "QosRuleNotFound"), "{v}");
}

#[tokio::test]
async fn rule_types_and_their_details() {
    let c = Cloud::new();
    let (st, v) = c.call(OWNER, "GET", "/v2.0/qos/rule-types", None).await;
    assert_eq!(st, 200);
    let types: Vec<&str> = (v["rule_types"].as_array().expect("types").iter())
        .map(|t| t["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        ["bandwidth_limit", "dscp_marking", "minimum_bandwidth"]
    );
    let (st, v) = c
        .call(OWNER, "GET", "/v2.0/qos/rule-types/dscp_marking", None)
        .await;
    assert_eq!((st, kind(&v)), (403, "NotAuthorized"));
    let (st, v) = c
        .call(ADMIN, "GET", "/v2.0/qos/rule-types/dscp_marking", None)
        .await;
    assert_eq!(st, 200);
    let params = &v["rule_type"]["drivers"][0]["supported_parameters"][0];
    assert_eq!(
        params["parameter_values"].as_array().map(Vec::len),
        Some(22),
        "{v}"
    );
}

#[tokio::test]
async fn networks_and_ports_take_policies() {
    let c = Cloud::new();
    let default = policy(&c, json!({"project_id": "p1", "is_default": true})).await;
    let (st, v) = c
        .send(
            ADMIN,
            "POST",
            "/v2.0/qos/policies",
            json!({"policy": {"project_id": "p1", "is_default": true}}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (409, "QoSPolicyDefaultAlreadyExists"),
        "{v}"
    );
    // A network made without a policy takes its project's default.
    let net = c.made(OWNER, "networks", json!({"network": {}})).await;
    assert_eq!(net["qos_policy_id"], json!(default));
    let net = id(&net);
    // Another project's policy is not found, unless shared with the caller.
    let foreign = policy(&c, json!({"project_id": "p2"})).await;
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            "/v2.0/ports",
            json!({"port": {"network_id": net, "qos_policy_id": foreign}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (404, "QosPolicyNotFound"), "{v}");
    let shared = policy(&c, json!({"project_id": "p2", "shared": true})).await;
    let port = c
        .made(
            OWNER,
            "ports",
            json!({"port": {"network_id": net, "qos_policy_id": shared}}),
        )
        .await;
    assert_eq!(port["qos_policy_id"], json!(shared));
    assert_eq!(port["qos_network_policy_id"], json!(default));
    let port = id(&port);
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/ports/{port}"),
            json!({"port": {"qos_network_policy_id": shared}}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    // In use: neither the default (its network) nor the shared one (the port) goes,
    // and the shared one stays shared while another project uses it.
    for p in [&default, &shared] {
        let (st, v) = c
            .call(ADMIN, "DELETE", &format!("/v2.0/qos/policies/{p}"), None)
            .await;
        assert_eq!((st, kind(&v)), (409, "QosPolicyInUse"), "{v}");
    }
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &format!("/v2.0/qos/policies/{shared}"),
            json!({"policy": {"shared": false}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "RbacPolicyInUse"), "{v}");
    // Detached, they go.
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/ports/{port}"),
            json!({"port": {"qos_policy_id": null}}),
        )
        .await;
    assert_eq!(
        (st, &v["port"]["qos_policy_id"]),
        (200, &Value::Null),
        "{v}"
    );
    let (st, _) = c
        .call(
            ADMIN,
            "DELETE",
            &format!("/v2.0/qos/policies/{shared}"),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (st, _) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/networks/{net}"),
            json!({"network": {"qos_policy_id": null}}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = c
        .call(
            ADMIN,
            "DELETE",
            &format!("/v2.0/qos/policies/{default}"),
            None,
        )
        .await;
    assert_eq!(st, 204);
    // The default is free again.
    policy(&c, json!({"project_id": "p1", "is_default": true})).await;
}

#[tokio::test]
async fn policies_page_by_marker_to_the_end() {
    let c = Cloud::new();
    for n in ["a", "b", "c"] {
        policy(&c, json!({"name": n, "description": "page"})).await;
    }
    let mut uri =
        "/v2.0/qos/policies?limit=1&sort_key=name&sort_dir=asc&description=page".to_string();
    let mut names = Vec::new();
    for _ in 0..5 {
        let (st, v) = c.call(ADMIN, "GET", &uri, None).await;
        assert_eq!(st, 200, "{uri}: {v}");
        names.extend(
            (v["policies"].as_array().expect("policies").iter())
                .map(|p| p["name"].as_str().expect("name").to_string()),
        );
        let next = (v["policies_links"].as_array().into_iter().flatten())
            .find(|l| l["rel"] == "next")
            .map(|l| l["href"].as_str().expect("href").to_string());
        let Some(next) = next else { break };
        uri = format!("/v2.0{}", next.split_once("/v2.0").expect("path").1);
    }
    assert_eq!(names, ["a", "b", "c"]);
}

/// A marker the caller cannot see still places the page (Neutron's pagination of
/// another project's object): the member following the admin's last `next` link gets
/// an empty page, and a `previous` link.
#[tokio::test]
async fn an_invisible_marker_pages_from_where_it_stands() {
    let c = Cloud::new();
    let a = policy(&c, json!({"name": "a"})).await;
    let uri = format!("/v2.0/qos/policies?limit=1&sort_key=name&sort_dir=asc&marker={a}");
    let (st, v) = c.call(OWNER, "GET", &uri, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["policies"], json!([]));
    let rels: Vec<&str> = (v["policies_links"].as_array().into_iter().flatten())
        .filter_map(|l| l["rel"].as_str())
        .collect();
    assert_eq!(rels, ["previous"], "{v}");
    // A marker that does not exist stays a 400.
    let uri = "/v2.0/qos/policies?limit=1&marker=5a3c1b0e-0000-4000-8000-000000000000";
    let (st, _) = c.call(OWNER, "GET", uri, None).await;
    assert_eq!(st, 400);
}
