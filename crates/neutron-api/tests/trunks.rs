//! Trunks (`trunk`, `trunk-details`), in process: subports marked and bound with their
//! parent, `inherit`, the actions' answers, the parent's `trunk_details`, and Neutron's
//! refusals (a parent as subport, a port in two trunks, a segmentation id twice, a
//! disabled trunk, a bound parent's trunk, a port in a trunk deleted, MTU).

mod common;

use common::{ADMIN, Cloud, OWNER, kind};
use serde_json::{Value, json};

async fn network(c: &Cloud, body: Value) -> String {
    c.made(ADMIN, "networks", body).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn port(c: &Cloud, net: &str) -> Value {
    c.made(OWNER, "ports", json!({"port": {"network_id": net}}))
        .await
}

fn sub(port: &Value, vid: u32) -> Value {
    json!({"port_id": port["id"], "segmentation_type": "vlan", "segmentation_id": vid})
}

#[tokio::test]
async fn subports_join_with_their_vlan_and_leave_as_they_were() {
    let c = Cloud::new();
    let owned = |name: &str| json!({"network": {"name": name, "project_id": "p1"}});
    let n1 = network(&c, owned("parent")).await;
    let n2 = network(&c, owned("a")).await;
    let vlan = network(
        &c,
        json!({"network": {"name": "v", "project_id": "p1", "provider:network_type": "vlan",
            "provider:physical_network": "physnet1", "provider:segmentation_id": 333,
            "mtu": 1400}}),
    )
    .await;
    let parent = port(&c, &n1).await;
    // The parent is bound: its subports are bound where it is.
    let (st, v) = c
        .call(
            ADMIN,
            "PUT",
            &format!("/v2.0/ports/{}", parent["id"].as_str().unwrap()),
            Some(json!({"port": {"binding:host_id": "host-a"}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let a = port(&c, &n2).await;
    let b = port(&c, &vlan).await;
    let t = c
        .made(
            OWNER,
            "trunks",
            json!({"trunk": {"port_id": parent["id"], "sub_ports": [sub(&a, 101)],
                "tags": ["x"]}}),
        )
        .await;
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["sub_ports"], json!([sub(&a, 101)]));
    assert_eq!(t["status"], "DOWN", "the parent is not up: {t}");
    assert_eq!(t["admin_state_up"], true);
    assert_eq!(t["tags"], json!(["x"]));
    let (_, v) = c
        .call(
            ADMIN,
            "GET",
            &format!("/v2.0/ports/{}", a["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(v["port"]["device_owner"], "trunk:subport");
    assert_eq!(v["port"]["binding:host_id"], "host-a");

    // inherit: the VLAN network's type and id.
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/trunks/{id}/add_subports"),
            json!({"sub_ports": [{"port_id": b["id"], "segmentation_type": "inherit"}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["sub_ports"][1],
        sub(&b, 333),
        "an action answers unwrapped: {v}"
    );
    let (_, v) = c
        .call(
            OWNER,
            "GET",
            &format!("/v2.0/trunks/{id}/get_subports"),
            None,
        )
        .await;
    assert_eq!(v, json!({"sub_ports": [sub(&a, 101), sub(&b, 333)]}));

    // The parent shows its trunk; other ports have no trunk_details.
    let (_, v) = c
        .call(
            OWNER,
            "GET",
            &format!("/v2.0/ports/{}", parent["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(v["port"]["trunk_details"]["trunk_id"], json!(id));
    assert_eq!(
        v["port"]["trunk_details"]["sub_ports"][0],
        json!({"port_id": a["id"], "segmentation_type": "vlan", "segmentation_id": 101,
               "mac_address": a["mac_address"]})
    );
    let (_, v) = c.call(OWNER, "GET", "/v2.0/ports", None).await;
    let with: Vec<&Value> = v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p.get("trunk_details").is_some())
        .collect();
    assert_eq!(with.len(), 1, "only the parent: {v}");

    // Ports in a trunk are not deleted.
    for (p, want) in [
        (&parent, "PortInUseAsTrunkParent"),
        (&a, "PortInUseAsSubPort"),
    ] {
        let (st, v) = c
            .call(
                OWNER,
                "DELETE",
                &format!("/v2.0/ports/{}", p["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!((st, kind(&v)), (409, want), "{v}");
    }

    // A bound parent's trunk stays.
    let (st, v) = c
        .call(OWNER, "DELETE", &format!("/v2.0/trunks/{id}"), None)
        .await;
    assert_eq!((st, kind(&v)), (409, "TrunkInUse"), "{v}");

    // Removed: no longer a subport, unbound, and deletable.
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/trunks/{id}/remove_subports"),
            json!({"sub_ports": [{"port_id": a["id"]}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["sub_ports"], json!([sub(&b, 333)]));
    let a_uri = format!("/v2.0/ports/{}", a["id"].as_str().unwrap());
    let (_, v) = c.call(ADMIN, "GET", &a_uri, None).await;
    assert_eq!(v["port"]["device_owner"], "");
    assert_eq!(v["port"]["binding:host_id"], "");
    assert_eq!(c.call(OWNER, "DELETE", &a_uri, None).await.0, 204);
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/trunks/{id}/remove_subports"),
            json!({"sub_ports": [{"port_id": a["id"]}]}),
        )
        .await;
    assert_eq!((st, kind(&v)), (404, "SubPortNotFound"), "{v}");

    // Unbound, the trunk goes, and its subports with it.
    let (st, _) = c
        .call(
            ADMIN,
            "PUT",
            &format!("/v2.0/ports/{}", parent["id"].as_str().unwrap()),
            Some(json!({"port": {"binding:host_id": ""}})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, v) = c
        .call(OWNER, "DELETE", &format!("/v2.0/trunks/{id}"), None)
        .await;
    assert_eq!(st, 204, "{v}");
    let (_, v) = c
        .call(
            OWNER,
            "GET",
            &format!("/v2.0/ports/{}", b["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(v["port"]["device_owner"], "", "{v}");
    // The parent is free again.
    let (st, _) = c
        .call(
            OWNER,
            "DELETE",
            &format!("/v2.0/ports/{}", parent["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, 204);
}

#[tokio::test]
async fn neutrons_refusals() {
    let c = Cloud::new();
    let n1 = network(&c, json!({"network": {"name": "n", "project_id": "p1"}})).await;
    let small = network(
        &c,
        json!({"network": {"name": "small", "project_id": "p1", "mtu": 1300}}),
    )
    .await;
    let parent = port(&c, &n1).await;
    let other = port(&c, &n1).await;
    let a = port(&c, &n1).await;
    let b = port(&c, &n1).await;
    let t = c
        .made(OWNER, "trunks", json!({"trunk": {"port_id": parent["id"]}}))
        .await;
    let id = t["id"].as_str().unwrap().to_string();
    let add = |body: Value| {
        let uri = format!("/v2.0/trunks/{id}/add_subports");
        let c = &c;
        async move { c.send(OWNER, "PUT", &uri, json!({"sub_ports": body})).await }
    };

    // The parent as its own subport; a second trunk on the parent or on a subport.
    let (st, v) = add(json!([sub(&parent, 2)])).await;
    assert_eq!((st, kind(&v)), (409, "ParentPortInUse"), "{v}");
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            "/v2.0/trunks",
            json!({"trunk": {"port_id": parent["id"]}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "ParentPortInUse"), "{v}");
    assert_eq!(add(json!([sub(&a, 2)])).await.0, 200);
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            "/v2.0/trunks",
            json!({"trunk": {"port_id": other["id"], "sub_ports": [sub(&a, 3)]}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "TrunkPortInUse"), "{v}");
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            "/v2.0/trunks",
            json!({"trunk": {"port_id": a["id"]}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "TrunkPortInUse"), "{v}");

    // Segmentation: unique per trunk, in range, VLAN only, both given.
    let (st, v) = add(json!([sub(&b, 2)])).await;
    assert_eq!((st, kind(&v)), (409, "DuplicateSubPort"), "{v}");
    for bad in [
        sub(&b, 4095),
        json!({"port_id": b["id"], "segmentation_type": "vxlan", "segmentation_id": 5}),
        json!({"port_id": b["id"], "segmentation_type": "vlan"}),
        json!({"port_id": b["id"], "segmentation_type": "inherit"}),
    ] {
        let (st, v) = add(json!([bad])).await;
        assert_eq!((st, kind(&v)), (400, "InvalidInput"), "{bad}: {v}");
    }
    let (st, v) = add(json!({"port_id": b["id"]})).await;
    assert_eq!(st, 400, "a dict, not a list: {v}");
    let (st, v) = add(json!([sub(&json!({"id": model::new_id()}), 7)])).await;
    assert_eq!((st, kind(&v)), (404, "PortNotFound"), "{v}");

    // A subport's network may not have a larger MTU than the parent's.
    let big_parent = port(&c, &small).await;
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            "/v2.0/trunks",
            json!({"trunk": {"port_id": big_parent["id"], "sub_ports": [sub(&b, 9)]}}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (409, "SubPortMtuGreaterThanTrunkPortMtu"),
        "{v}"
    );

    // A disabled trunk: no subport change, no delete; it may be enabled again.
    let uri = format!("/v2.0/trunks/{id}");
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"trunk": {"admin_state_up": false}}),
        )
        .await;
    assert_eq!(
        (st, &v["trunk"]["admin_state_up"]),
        (200, &json!(false)),
        "{v}"
    );
    let (st, v) = add(json!([sub(&b, 5)])).await;
    assert_eq!((st, kind(&v)), (409, "TrunkDisabled"), "{v}");
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("{uri}/remove_subports"),
            json!({"sub_ports": [sub(&a, 2)]}),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "TrunkDisabled"), "{v}");
    let (st, v) = c.call(OWNER, "DELETE", &uri, None).await;
    assert_eq!((st, kind(&v)), (409, "TrunkDisabled"), "{v}");
    let (st, _) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"trunk": {"admin_state_up": true}}),
        )
        .await;
    assert_eq!(st, 200);
    // Read-only after create.
    let (st, _) = c
        .send(OWNER, "PUT", &uri, json!({"trunk": {"sub_ports": []}}))
        .await;
    assert_eq!(st, 400);
    assert_eq!(c.call(OWNER, "DELETE", &uri, None).await.0, 204);
    // A missing trunk.
    let (st, v) = add(json!([sub(&b, 5)])).await;
    assert_eq!((st, kind(&v)), (404, "TrunkNotFound"), "{v}");
}
