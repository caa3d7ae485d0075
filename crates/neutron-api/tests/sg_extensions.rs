//! The security group extensions, in process: rule templates (`security-groups-default-
//! rules`: the legacy four, admin-only writes, duplicates, new groups made from them),
//! address groups (CRUD, the add/remove actions and their errors, rules naming them, in
//! use), `stateful` (no mixing on a port, no change while in use) and `normalized_cidr`.

mod common;

use common::{ADMIN, Cloud, OTHER, OWNER, kind};
use serde_json::{Value, json};

/// A rule's content as the templates test compares it.
fn content(r: &Value) -> Value {
    let keys = [
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "remote_group_id",
        "remote_address_group_id",
    ];
    keys.iter().map(|k| (k.to_string(), r[k].clone())).collect()
}

#[tokio::test]
async fn the_legacy_templates_make_the_groups_until_the_admin_changes_them() {
    let c = Cloud::new();
    let (status, v) = c
        .call(OWNER, "GET", "/v2.0/default-security-group-rules", None)
        .await;
    assert_eq!(status, 200, "{v}");
    let templates = v["default_security_group_rules"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(templates.len(), 4, "{v}");
    let parent = templates
        .iter()
        .filter(|t| t["remote_group_id"] == "PARENT")
        .count();
    assert_eq!(parent, 2);
    assert!(templates.iter().all(|t| t["used_in_default_sg"] == true));
    let egress = templates
        .iter()
        .find(|t| t["direction"] == "egress")
        .unwrap();
    assert_eq!(
        egress["description"],
        "Legacy default SG rule for egress traffic"
    );
    // Only the admin writes them.
    let tcp = |port: u16, default: bool, other: bool| {
        json!({"default_security_group_rule": {"direction": "ingress", "protocol": "tcp",
            "port_range_min": port, "port_range_max": port,
            "used_in_default_sg": default, "used_in_non_default_sg": other}})
    };
    let (status, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/default-security-group-rules",
            Some(tcp(22, true, true)),
        )
        .await;
    assert_eq!((status, kind(&v)), (403, "PolicyNotAuthorized"), "{v}");
    let ssh = c
        .made(ADMIN, "default-security-group-rules", tcp(22, true, true))
        .await;
    assert_eq!(ssh["remote_address_group_id"], Value::Null);
    // The same content for a kind of group it is already used in: 409, either way.
    for (d, o) in [(true, false), (false, true)] {
        let (status, v) = c
            .call(
                ADMIN,
                "POST",
                "/v2.0/default-security-group-rules",
                Some(tcp(22, d, o)),
            )
            .await;
        assert_eq!(
            (status, kind(&v)),
            (409, "DefaultSecurityGroupRuleExists"),
            "{v}"
        );
    }
    // ...but one for default groups and one for others may share a content.
    c.made(ADMIN, "default-security-group-rules", tcp(80, true, false))
        .await;
    c.made(ADMIN, "default-security-group-rules", tcp(80, false, true))
        .await;
    // The egress IPv6 template goes: new groups have no such rule.
    let v6_out = templates
        .iter()
        .find(|t| t["direction"] == "egress" && t["ethertype"] == "IPv6")
        .unwrap();
    let uri = format!(
        "/v2.0/default-security-group-rules/{}",
        v6_out["id"].as_str().unwrap()
    );
    assert_eq!(c.call(OWNER, "DELETE", &uri, None).await.0, 403);
    assert_eq!(c.call(ADMIN, "DELETE", &uri, None).await.0, 204);
    assert_eq!(c.call(ADMIN, "GET", &uri, None).await.0, 404);
    // A new project's default group, and another group of it, from the templates.
    let (_, v) = c
        .call(OTHER, "GET", "/v2.0/security-groups?name=default", None)
        .await;
    let default = v["security_groups"][0].clone();
    let id = default["id"].as_str().unwrap();
    let mut got: Vec<Value> = default["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(content)
        .collect();
    got.sort_by_key(|v| v.to_string());
    let any = |dir: &str, et: &str, remote: Value| {
        json!({"direction": dir, "ethertype": et, "protocol": null, "port_range_min": null,
            "port_range_max": null, "remote_ip_prefix": null, "remote_group_id": remote,
            "remote_address_group_id": null})
    };
    let port = |p: u16| {
        json!({"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
            "port_range_min": p, "port_range_max": p, "remote_ip_prefix": null,
            "remote_group_id": null, "remote_address_group_id": null})
    };
    let mut want = vec![
        any("egress", "IPv4", Value::Null),
        any("ingress", "IPv4", json!(id)),
        any("ingress", "IPv6", json!(id)),
        port(22),
        port(80),
    ];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(got, want);
    let g = c
        .made(
            OTHER,
            "security-groups",
            json!({"security_group": {"name": "web"}}),
        )
        .await;
    let mut got: Vec<Value> = g["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(content)
        .collect();
    got.sort_by_key(|v| v.to_string());
    let mut want = vec![any("egress", "IPv4", Value::Null), port(22), port(80)];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(got, want);
}

#[tokio::test]
async fn address_groups_hold_normalised_prefixes_and_refuse_what_neutron_does() {
    let c = Cloud::new();
    let ag = c
        .made(
            OWNER,
            "address-groups",
            json!({"address_group": {"name": "a", "description": "d",
                "addresses": ["10.10.10.3/32", "192.168.0.10/24", "2001:db8::f00/64"]}}),
        )
        .await;
    let mut addrs: Vec<&str> = ag["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    addrs.sort();
    assert_eq!(addrs, ["10.10.10.3/32", "192.168.0.0/24", "2001:db8::/64"]);
    let id = ag["id"].as_str().unwrap().to_string();
    let uri = format!("/v2.0/address-groups/{id}");
    // A bare address, or something else, is no address group member.
    for bad in ["10.20.30.40", "this is bad IP address"] {
        let (status, v) = c
            .send(
                OWNER,
                "POST",
                "/v2.0/address-groups",
                json!({"address_group": {"addresses": [bad]}}),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {v}");
    }
    // The addresses change through the actions only.
    let (status, _) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"address_group": {"addresses": []}}),
        )
        .await;
    assert_eq!(status, 400);
    let action = |a: &str, addrs: Value| {
        let uri = format!("{uri}/{a}");
        let c = &c;
        async move {
            c.send(
                OWNER,
                "PUT",
                &uri,
                json!({"address_group": {"addresses": addrs}}),
            )
            .await
        }
    };
    let (status, v) = action("add_addresses", json!(["10.20.30.40/32"])).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["address_group"]["addresses"].as_array().unwrap().len(), 4);
    let (status, v) = action("add_addresses", json!(["10.20.30.40/32"])).await;
    assert_eq!((status, kind(&v)), (400, "AddressesAlreadyExist"), "{v}");
    let (status, v) = action("remove_addresses", json!(["10.200.200.200"])).await;
    assert_eq!((status, kind(&v)), (404, "AddressesNotFound"), "{v}");
    let (status, _) = action("remove_addresses", json!(["this is bad IP address"])).await;
    assert_eq!(status, 400);
    // Neutron's own client sends the addresses unwrapped.
    let (status, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("{uri}/remove_addresses"),
            json!({"addresses": ["10.10.10.3"]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["address_group"]["addresses"].as_array().unwrap().len(), 3);
    // Another project neither sees nor changes it.
    assert_eq!(c.call(OTHER, "GET", &uri, None).await.0, 404);
    let (status, _) = c
        .send(
            OTHER,
            "PUT",
            &format!("{uri}/add_addresses"),
            json!({"address_group": {"addresses": ["1.2.3.0/24"]}}),
        )
        .await;
    assert_eq!(status, 404);
    // A rule names it: alone, not with another remote end.
    let sg = c
        .made(
            OWNER,
            "security-groups",
            json!({"security_group": {"name": "g"}}),
        )
        .await;
    let rule = |extra: Value| {
        let mut r = json!({"security_group_id": sg["id"], "direction": "ingress",
            "remote_address_group_id": id});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        json!({ "security_group_rule": r })
    };
    for extra in [
        json!({"remote_ip_prefix": "10.0.0.0/8"}),
        json!({"remote_group_id": sg["id"]}),
    ] {
        let (status, v) = c
            .send(OWNER, "POST", "/v2.0/security-group-rules", rule(extra))
            .await;
        assert_eq!(status, 400, "{v}");
    }
    let (status, v) = c
        .call(
            OTHER,
            "POST",
            "/v2.0/security-group-rules",
            Some(rule(json!({}))),
        )
        .await;
    assert_eq!(status, 404, "another project's group: {v}");
    let r = c.made(OWNER, "security-group-rules", rule(json!({}))).await;
    assert_eq!(r["remote_address_group_id"], json!(id));
    assert_eq!(r["remote_ip_prefix"], Value::Null);
    // In use: 409 until the rule goes.
    let (status, v) = c.call(OWNER, "DELETE", &uri, None).await;
    assert_eq!((status, kind(&v)), (409, "AddressGroupInUse"), "{v}");
    let rule_uri = format!("/v2.0/security-group-rules/{}", r["id"].as_str().unwrap());
    assert_eq!(c.call(OWNER, "DELETE", &rule_uri, None).await.0, 204);
    assert_eq!(c.call(OWNER, "DELETE", &uri, None).await.0, 204);
    let (status, v) = c.call(OWNER, "GET", &uri, None).await;
    assert_eq!((status, kind(&v)), (404, "AddressGroupNotFound"));
    // A rule naming a group that is not there.
    let (status, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/security-group-rules",
            Some(rule(json!({}))),
        )
        .await;
    assert_eq!((status, kind(&v)), (404, "AddressGroupNotFound"), "{v}");
}

#[tokio::test]
async fn stateful_is_one_kind_per_port_and_fixed_while_in_use() {
    let c = Cloud::new();
    let net = c
        .made(OWNER, "networks", json!({"network": {"name": "n"}}))
        .await;
    let group = |stateful: bool| json!({"security_group": {"name": "g", "stateful": stateful}});
    let stateless = c.made(OWNER, "security-groups", group(false)).await;
    let stateful = c.made(OWNER, "security-groups", group(true)).await;
    assert_eq!(stateless["stateful"], false);
    let port =
        |groups: Vec<&Value>| json!({"port": {"network_id": net["id"], "security_groups": groups}});
    let (status, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/ports",
            Some(port(vec![&stateless["id"], &stateful["id"]])),
        )
        .await;
    assert_eq!((status, kind(&v)), (409, "SecurityGroupConflict"), "{v}");
    let p = c.made(OWNER, "ports", port(vec![&stateless["id"]])).await;
    let p_uri = format!("/v2.0/ports/{}", p["id"].as_str().unwrap());
    let (status, _) = c
        .send(
            OWNER,
            "PUT",
            &p_uri,
            json!({"port": {"security_groups": [stateless["id"], stateful["id"]]}}),
        )
        .await;
    assert_eq!(status, 409);
    // In use: its kind stays; the same value, or another attribute, is fine.
    let g_uri = format!(
        "/v2.0/security-groups/{}",
        stateless["id"].as_str().unwrap()
    );
    let (status, v) = c
        .send(
            OWNER,
            "PUT",
            &g_uri,
            json!({"security_group": {"stateful": true}}),
        )
        .await;
    assert_eq!((status, kind(&v)), (409, "SecurityGroupInUse"), "{v}");
    let (status, _) = c
        .send(
            OWNER,
            "PUT",
            &g_uri,
            json!({"security_group": {"stateful": false, "name": "h"}}),
        )
        .await;
    assert_eq!(status, 200);
    // Free again: it changes.
    assert_eq!(c.call(OWNER, "DELETE", &p_uri, None).await.0, 204);
    let (status, v) = c
        .send(
            OWNER,
            "PUT",
            &g_uri,
            json!({"security_group": {"stateful": true}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["security_group"]["stateful"], true);
}

#[tokio::test]
async fn a_rule_shows_its_prefix_as_given_and_normalised() {
    let c = Cloud::new();
    let sg = c
        .made(
            OWNER,
            "security-groups",
            json!({"security_group": {"name": "g"}}),
        )
        .await;
    let rule = |prefix: &str| {
        json!({"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress",
            "remote_ip_prefix": prefix}})
    };
    let r = c
        .made(OWNER, "security-group-rules", rule("10.0.0.34/24"))
        .await;
    assert_eq!(r["remote_ip_prefix"], "10.0.0.34/24");
    assert_eq!(r["normalized_cidr"], "10.0.0.0/24");
    // The same network written otherwise is the same rule.
    let (status, v) = c
        .call(
            OWNER,
            "POST",
            "/v2.0/security-group-rules",
            Some(rule("10.0.0.0/24")),
        )
        .await;
    assert_eq!((status, kind(&v)), (409, "SecurityGroupRuleExists"), "{v}");
    let (_, v) = c
        .call(
            OWNER,
            "GET",
            "/v2.0/security-group-rules?normalized_cidr=10.0.0.0/24",
            None,
        )
        .await;
    assert_eq!(
        v["security_group_rules"].as_array().unwrap().len(),
        1,
        "{v}"
    );
}
