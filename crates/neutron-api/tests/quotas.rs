//! Quotas through the API, in process on an embedded store: the answers of list, show,
//! update, reset, details and defaults and who may call them; bad values; `OverQuota` at
//! the limit; a limit lowered below the usage; what is counted (the default group and its
//! rules, DHCP and router interface ports) and what deletes and cascades release; and a
//! store written before quotas counted on first use.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use neutron_api::{Api, ApiConfig, router};
use serde_json::{Value, json};
use tower::ServiceExt;

#[derive(Clone, Copy)]
struct Who(&'static str, bool);

const P1: Who = Who("p1", false);
const P2: Who = Who("p2", false);
const ADMIN: Who = Who("admin", true);

struct Cloud {
    app: axum::Router,
    store: std::sync::Arc<dyn nbdb::Store>,
    _dir: tempfile::TempDir,
}

impl Cloud {
    fn new() -> Cloud {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = nbdb::open(&format!(
            "embedded:{}",
            dir.path().join("nb.redb").display()
        ))
        .expect("store");
        let config = ApiConfig::default().check().expect("config");
        Cloud {
            app: router(Api::new(store.clone(), config)),
            store,
            _dir: dir,
        }
    }

    async fn call(&self, who: Who, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("x-project-id", who.0);
        if who.1 {
            r = r.header("x-roles", "admin");
        }
        let req = r
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn made(&self, who: Who, collection: &str, body: Value) -> Value {
        let (status, v) = self
            .call(who, "POST", &format!("/v2.0/{collection}"), Some(body))
            .await;
        assert_eq!(status, 201, "{collection}: {v}");
        v.as_object()
            .and_then(|o| o.values().next())
            .cloned()
            .expect("object")
    }

    /// `used` of each resource in the details of `project`.
    async fn used(&self, project: &str) -> Value {
        let (status, v) = self
            .call(
                ADMIN,
                "GET",
                &format!("/v2.0/quotas/{project}/details"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let q = v["quota"].as_object().expect("quota");
        q.iter()
            .map(|(k, d)| (k.clone(), d["used"].clone()))
            .collect()
    }

    async fn set(&self, project: &str, quota: Value) -> Value {
        let (status, v) = self
            .call(
                ADMIN,
                "PUT",
                &format!("/v2.0/quotas/{project}"),
                Some(json!({ "quota": quota })),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }
}

fn defaults() -> Value {
    json!({"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
           "security_group": 10, "security_group_rule": 100, "rbac_policy": 10})
}

fn error_type(v: &Value) -> &str {
    v["NeutronError"]["type"].as_str().unwrap_or("")
}

#[tokio::test]
async fn show_update_reset_list_details_and_who_may() {
    let c = Cloud::new();
    // Defaults, for the project itself and for the admin.
    let (s, v) = c.call(P1, "GET", "/v2.0/quotas/p1", None).await;
    assert_eq!((s, &v["quota"]), (200, &defaults()), "{v}");
    let (s, v) = c.call(P1, "GET", "/v2.0/quotas/p1/default", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["quota"]["port"], 500);
    // Another project's quotas are the admin's.
    for path in [
        "/v2.0/quotas/p2",
        "/v2.0/quotas/p2/details",
        "/v2.0/quotas/p2/default",
    ] {
        let (s, v) = c.call(P1, "GET", path, None).await;
        assert_eq!(
            (s, error_type(&v)),
            (403, "PolicyNotAuthorized"),
            "{path}: {v}"
        );
    }
    let (s, v) = c.call(P1, "GET", "/v2.0/quotas", None).await;
    assert_eq!((s, error_type(&v)), (403, "AdminRequired"), "{v}");
    let body = json!({"quota": {"network": 5}});
    let (s, v) = c.call(P1, "PUT", "/v2.0/quotas/p1", Some(body)).await;
    assert_eq!((s, error_type(&v)), (403, "PolicyNotAuthorized"), "{v}");
    let (s, v) = c.call(P1, "DELETE", "/v2.0/quotas/p1", None).await;
    assert_eq!((s, error_type(&v)), (403, "AdminRequired"), "{v}");

    // The admin sets two limits; the answer has all of them.
    let v = c.set("p1", json!({"network": 5, "port": "-1"})).await;
    let mut want = defaults();
    want["network"] = json!(5);
    want["port"] = json!(-1);
    assert_eq!(v["quota"], want);
    let v = c.set("p1", json!({"router": 0})).await;
    want["router"] = json!(0);
    assert_eq!(v["quota"], want, "earlier limits are kept");
    let (_, v) = c.call(P1, "GET", "/v2.0/quotas/p1", None).await;
    assert_eq!(v["quota"], want);
    let (_, v) = c.call(P1, "GET", "/v2.0/quotas/p1/default", None).await;
    assert_eq!(v["quota"]["network"], 100, "the default stays: {v}");

    // The list holds projects with limits of their own only.
    let (s, v) = c.call(ADMIN, "GET", "/v2.0/quotas", None).await;
    assert_eq!(s, 200, "{v}");
    let list = v["quotas"].as_array().expect("quotas");
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(
        (
            &list[0]["project_id"],
            &list[0]["tenant_id"],
            &list[0]["network"],
            &list[0]["subnet"]
        ),
        (&json!("p1"), &json!("p1"), &json!(5), &json!(100))
    );

    // Details: used, limit, reserved for each of the eight.
    let (s, v) = c.call(P1, "GET", "/v2.0/quotas/p1/details", None).await;
    assert_eq!(s, 200, "{v}");
    let q = v["quota"].as_object().expect("quota");
    assert_eq!(q.len(), 8, "{v}");
    assert_eq!(q["network"], json!({"used": 0, "limit": 5, "reserved": 0}));
    assert_eq!(q["port"]["limit"], -1);

    // Reset: back to the defaults, out of the list.
    let (s, v) = c.call(ADMIN, "DELETE", "/v2.0/quotas/p1", None).await;
    assert_eq!(s, 204, "{v}");
    let (_, v) = c.call(P1, "GET", "/v2.0/quotas/p1", None).await;
    assert_eq!(v["quota"], defaults());
    let (_, v) = c.call(ADMIN, "GET", "/v2.0/quotas", None).await;
    assert_eq!(v["quotas"], json!([]));

    // The extensions are announced.
    let (_, v) = c.call(P1, "GET", "/v2.0/extensions", None).await;
    let aliases: Vec<&str> = v["extensions"]
        .as_array()
        .expect("extensions")
        .iter()
        .filter_map(|e| e["alias"].as_str())
        .collect();
    for a in ["quotas", "quota_details", "quota-check-limit"] {
        assert!(aliases.contains(&a), "{a} missing: {aliases:?}");
    }
}

#[tokio::test]
async fn bad_quota_bodies_are_400_and_change_nothing() {
    let c = Cloud::new();
    let cases = [
        (
            json!({"quota": {"network": -2}}),
            "'-2' is too small - must be at least '-1'",
        ),
        (
            json!({"quota": {"network": "ten"}}),
            "'ten' is not an integer",
        ),
        (
            json!({"quota": {"network": null}}),
            "'null' is not an integer",
        ),
        (json!({"quota": {"network": 2147483648u64}}), "is too large"),
        (
            json!({"quota": {"volumes": 3}}),
            "Unrecognized attribute(s) 'volumes'",
        ),
        (
            json!({"quota": {"network": 3, "check_limit": "maybe"}}),
            "cannot be converted to boolean",
        ),
        (json!({"quota": [1]}), "must be a JSON object"),
        (json!({"quotas": {"network": 1}}), "Unable to find 'quota'"),
    ];
    for (body, message) in cases {
        let (s, v) = c
            .call(ADMIN, "PUT", "/v2.0/quotas/p1", Some(body.clone()))
            .await;
        assert_eq!(s, 400, "{body}: {v}");
        let m = v["NeutronError"]["message"].as_str().unwrap_or_default();
        assert!(m.contains(message), "{body}: {m}");
    }
    let (_, v) = c.call(P1, "GET", "/v2.0/quotas/p1", None).await;
    assert_eq!(v["quota"], defaults());
    // What Neutron's convert_to_int takes: decimal strings and floats (truncated).
    let v = c.set("p1", json!({"network": " 7 ", "subnet": 2.9})).await;
    assert_eq!(
        (&v["quota"]["network"], &v["quota"]["subnet"]),
        (&json!(7), &json!(2))
    );
}

#[tokio::test]
async fn creates_past_the_limit_are_over_quota_and_deletes_free_room() {
    let c = Cloud::new();
    c.set("p1", json!({"network": 2})).await;
    let a = c
        .made(P1, "networks", json!({"network": {"name": "a"}}))
        .await;
    c.made(P1, "networks", json!({"network": {"name": "b"}}))
        .await;
    let (s, v) = c
        .call(
            P1,
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"name": "c"}})),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(
        v["NeutronError"],
        json!({"type": "OverQuota", "message": "Quota exceeded for resources: ['network'].", "detail": ""})
    );
    // Another project is not affected; an admin acting for p1 is held to p1's quota.
    c.made(P2, "networks", json!({"network": {"name": "c"}}))
        .await;
    let (s, _) = c
        .call(
            ADMIN,
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"project_id": "p1"}})),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(c.used("p1").await["network"], 2);
    let (s, _) = c
        .call(
            P1,
            "DELETE",
            &format!("/v2.0/networks/{}", a["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(c.used("p1").await["network"], 1);
    c.made(P1, "networks", json!({"network": {"name": "c"}}))
        .await;
    // check_limit refuses a limit below the usage; without it the limit is taken.
    let body = json!({"quota": {"network": 1, "check_limit": true}});
    let (s, v) = c.call(ADMIN, "PUT", "/v2.0/quotas/p1", Some(body)).await;
    assert_eq!((s, error_type(&v)), (400, "InvalidQuotaValue"), "{v}");
    // Unlimited: no refusal at all.
    c.set("p1", json!({"network": -1})).await;
    for i in 0..5 {
        c.made(
            P1,
            "networks",
            json!({"network": {"name": format!("u{i}")}}),
        )
        .await;
    }
    assert_eq!(c.used("p1").await["network"], 7);
}

#[tokio::test]
async fn a_limit_lowered_below_the_usage_keeps_objects_and_refuses_creates() {
    let c = Cloud::new();
    let net = c
        .made(P1, "networks", json!({"network": {"name": "n"}}))
        .await;
    let nid = net["id"].as_str().unwrap().to_string();
    let mut ports = Vec::new();
    for _ in 0..4 {
        ports.push(
            c.made(P1, "ports", json!({"port": {"network_id": nid}}))
                .await,
        );
    }
    c.set("p1", json!({"port": 2})).await;
    let (s, v) = c.call(P1, "GET", "/v2.0/ports", None).await;
    assert_eq!((s, v["ports"].as_array().map(Vec::len)), (200, Some(4)));
    let (s, v) = c
        .call(
            P1,
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": nid}})),
        )
        .await;
    assert_eq!(
        (s, v["NeutronError"]["message"].as_str()),
        (409, Some("Quota exceeded for resources: ['port']."))
    );
    let (_, v) = c.call(P1, "GET", "/v2.0/quotas/p1/details", None).await;
    assert_eq!(
        v["quota"]["port"],
        json!({"used": 4, "limit": 2, "reserved": 0})
    );
    // Updates of existing objects are no creates.
    let pid = ports[0]["id"].as_str().unwrap();
    let (s, _) = c
        .call(
            P1,
            "PUT",
            &format!("/v2.0/ports/{pid}"),
            Some(json!({"port": {"name": "x"}})),
        )
        .await;
    assert_eq!(s, 200);
    // Deleting down to the limit is not enough (2 used of 2); one more makes room.
    for p in &ports[..3] {
        let id = p["id"].as_str().unwrap();
        let (s, _) = c
            .call(P1, "DELETE", &format!("/v2.0/ports/{id}"), None)
            .await;
        assert_eq!(s, 204);
    }
    c.made(P1, "ports", json!({"port": {"network_id": nid}}))
        .await;
    assert_eq!(c.used("p1").await["port"], 2);
}

#[tokio::test]
async fn counted_as_neutron_counts_and_released_by_cascades() {
    let c = Cloud::new();
    let net = c
        .made(P1, "networks", json!({"network": {"name": "n"}}))
        .await;
    let nid = net["id"].as_str().unwrap().to_string();
    let sub = c
        .made(
            P1,
            "subnets",
            json!({"subnet": {"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24"}}),
        )
        .await;
    // The DHCP port is the network owner's; the first port brings the default group and
    // its four rules.
    c.made(P1, "ports", json!({"port": {"network_id": nid}}))
        .await;
    let u = c.used("p1").await;
    assert_eq!(
        (
            &u["network"],
            &u["subnet"],
            &u["port"],
            &u["security_group"],
            &u["security_group_rule"]
        ),
        (&json!(1), &json!(1), &json!(2), &json!(1), &json!(4)),
        "{u}"
    );
    // A group of one's own comes with its two egress rules.
    let g = c
        .made(
            P1,
            "security-groups",
            json!({"security_group": {"name": "g"}}),
        )
        .await;
    let u = c.used("p1").await;
    assert_eq!(
        (&u["security_group"], &u["security_group_rule"]),
        (&json!(2), &json!(6)),
        "{u}"
    );
    // A router interface on the subnet is a port of the project.
    let r = c
        .made(P1, "routers", json!({"router": {"name": "r"}}))
        .await;
    let rid = r["id"].as_str().unwrap();
    let (s, v) = c
        .call(
            P1,
            "PUT",
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            Some(json!({"subnet_id": sub["id"]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let u = c.used("p1").await;
    assert_eq!((&u["router"], &u["port"]), (&json!(1), &json!(3)), "{u}");
    let (s, _) = c
        .call(
            P1,
            "PUT",
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            Some(json!({"subnet_id": sub["id"]})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(c.used("p1").await["port"], 2);
    // Deleting the group takes its rules; deleting the port, then the network, takes the
    // subnet and the DHCP port.
    let gid = g["id"].as_str().unwrap();
    assert_eq!(
        c.call(P1, "DELETE", &format!("/v2.0/security-groups/{gid}"), None)
            .await
            .0,
        204
    );
    let (_, v) = c.call(P1, "GET", "/v2.0/ports?device_owner=", None).await;
    for p in v["ports"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        assert_eq!(
            c.call(P1, "DELETE", &format!("/v2.0/ports/{id}"), None)
                .await
                .0,
            204
        );
    }
    assert_eq!(
        c.call(P1, "DELETE", &format!("/v2.0/networks/{nid}"), None)
            .await
            .0,
        204
    );
    let u = c.used("p1").await;
    assert_eq!(
        (
            &u["network"],
            &u["subnet"],
            &u["port"],
            &u["security_group"],
            &u["security_group_rule"]
        ),
        (&json!(0), &json!(0), &json!(0), &json!(1), &json!(4)),
        "{u}"
    );
    // The details agree with what the listings show.
    let (_, v) = c.call(P1, "GET", "/v2.0/security-group-rules", None).await;
    assert_eq!(v["security_group_rules"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn a_store_written_before_quotas_is_counted_on_first_use() {
    let c = Cloud::new();
    for (who, name) in [(P1, "a"), (P1, "b"), (P1, "c"), (P2, "d")] {
        c.made(who, "networks", json!({"network": {"name": name}}))
            .await;
    }
    // Make it a store of before quotas: no counters, no marker.
    let old: Vec<nbdb::Count> = c
        .store
        .counters("")
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| nbdb::Count::set(&n, 0))
        .collect();
    assert_eq!(old.len(), 2, "{old:?}");
    let marker = nbdb::Op::delete("quota_usage", "counted", nbdb::Expect::Present);
    c.store.commit_counted(vec![marker], old).await.unwrap();
    assert!(c.store.counters("").await.unwrap().is_empty());
    let Cloud {
        app,
        store,
        _dir: dir,
    } = c;
    drop((app, store));
    // The writer thread holds the file until its channel closes.
    let path = format!("embedded:{}", dir.path().join("nb.redb").display());
    let store = loop {
        match nbdb::open(&path) {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    let c = Cloud {
        app: router(Api::new(
            store.clone(),
            ApiConfig::default().check().unwrap(),
        )),
        store,
        _dir: dir,
    };
    assert_eq!(c.used("p1").await["network"], 3);
    assert_eq!(c.used("p2").await["network"], 1);
    c.set("p1", json!({"network": 4})).await;
    c.made(P1, "networks", json!({"network": {"name": "x"}}))
        .await;
    let (s, _) = c
        .call(
            P1,
            "POST",
            "/v2.0/networks",
            Some(json!({"network": {"name": "y"}})),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(
        c.store.counters("p1/").await.unwrap(),
        [("p1/network".to_string(), 4)]
    );
}
