//! Subnet pools and address scopes through the API, in process: pool attributes as
//! Neutron renders them, subnets allocated from pools (by length, by CIDR, from the
//! default pool), the prefix quota, prefix updates and operations, scopes and their
//! overlap rule, refused deletes, and concurrent allocations that never overlap.

mod common;

use common::{ADMIN, Cloud, OTHER, OWNER, Who, call, kind};
use ipnet::IpNet;
use serde_json::{Value, json};

impl Cloud {
    async fn network(&self, who: Who) -> String {
        let n = self
            .made(who, "networks", json!({"network": {"name": "n"}}))
            .await;
        n["id"].as_str().expect("id").to_string()
    }

    async fn pool(&self, who: Who, attrs: Value) -> Value {
        self.made(who, "subnetpools", json!({ "subnetpool": attrs }))
            .await
    }

    /// POSTs a subnet on `net` with `attrs` added to it.
    async fn subnet(&self, who: Who, net: &str, mut attrs: Value) -> (u16, Value) {
        attrs["network_id"] = json!(net);
        if attrs.get("ip_version").is_none() {
            attrs["ip_version"] = json!(4);
        }
        self.send(who, "POST", "/v2.0/subnets", json!({ "subnet": attrs }))
            .await
    }
}

#[tokio::test]
async fn a_pool_is_rendered_as_neutron_does() {
    let c = Cloud::new();
    let p = c
        .pool(
            OWNER,
            json!({"name": "p", "prefixes": ["10.0.1.0/24", "10.0.0.7/24"], "min_prefixlen": "24"}),
        )
        .await;
    assert_eq!(p["prefixes"], json!(["10.0.0.0/23"]));
    assert_eq!(p["ip_version"], json!(4));
    assert_eq!(p["min_prefixlen"], json!("24"));
    assert_eq!(p["default_prefixlen"], json!("24"));
    assert_eq!(p["max_prefixlen"], json!("32"));
    assert_eq!(p["default_quota"], Value::Null);
    assert_eq!(p["is_default"], json!(false));
    assert_eq!(p["shared"], json!(false));
    assert_eq!(p["address_scope_id"], Value::Null);
    assert_eq!(p["revision_number"], json!(0));
    assert_eq!(p["project_id"], json!("p1"));
    let id = p["id"].as_str().unwrap();
    let (st, _) = c
        .call(OTHER, "GET", &format!("/v2.0/subnetpools/{id}"), None)
        .await;
    assert_eq!(st, 404);
    // Shared and default pools are the admin's to make.
    for attr in ["shared", "is_default"] {
        let body = json!({"subnetpool": {"name": "x", "prefixes": ["10.9.0.0/16"], attr: true}});
        let (st, v) = c.send(OWNER, "POST", "/v2.0/subnetpools", body).await;
        assert_eq!(st, 403, "{attr}: {v}");
    }
    // Bad bounds, mixed versions, no prefixes: 400 with Neutron's types.
    for (attrs, want) in [
        (
            json!({"prefixes": ["10.0.0.0/8"], "min_prefixlen": 30, "max_prefixlen": 28}),
            "IllegalSubnetPoolPrefixBounds",
        ),
        (
            json!({"prefixes": ["10.0.0.0/8"], "max_prefixlen": 33}),
            "IllegalSubnetPoolPrefixBounds",
        ),
        (
            json!({"prefixes": ["10.0.0.0/8", "fd00::/8"]}),
            "PrefixVersionMismatch",
        ),
        (json!({"prefixes": []}), "EmptySubnetPoolPrefixList"),
        (
            json!({"prefixes": ["10.0.0.0/8"], "address_scope_id": "foo"}),
            "HTTPBadRequest",
        ),
    ] {
        let (st, v) = c
            .send(
                OWNER,
                "POST",
                "/v2.0/subnetpools",
                json!({ "subnetpool": attrs }),
            )
            .await;
        assert_eq!((st, kind(&v)), (400, want), "{v}");
    }
    // The shared flag cannot change, even for a pool the caller cannot see.
    let (st, v) = c
        .send(
            OTHER,
            "PUT",
            &format!("/v2.0/subnetpools/{id}"),
            json!({"subnetpool": {"shared": true}}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
}

#[tokio::test]
async fn subnets_take_their_cidrs_from_the_pool() {
    let c = Cloud::new();
    let p = c
        .pool(
            OWNER,
            json!({"prefixes": ["10.11.12.0/24"], "min_prefixlen": 28, "max_prefixlen": 30}),
        )
        .await;
    let pool = p["id"].as_str().unwrap();
    let net = c.network(OWNER).await;
    let (st, s1) = c
        .subnet(OWNER, &net, json!({"subnetpool_id": pool, "prefixlen": 30}))
        .await;
    assert_eq!(st, 201, "{s1}");
    assert_eq!(s1["subnet"]["cidr"], json!("10.11.12.0/30"));
    assert_eq!(s1["subnet"]["subnetpool_id"], json!(pool));
    assert_eq!(s1["subnet"]["gateway_ip"], json!("10.11.12.1"));
    let (st, s2) = c
        .subnet(
            OWNER,
            &c.network(OWNER).await,
            json!({"subnetpool_id": pool}),
        )
        .await;
    assert_eq!(st, 201, "{s2}");
    assert_eq!(
        s2["subnet"]["cidr"],
        json!("10.11.12.16/28"),
        "the default length, best fit"
    );
    let (st, s3) = c
        .subnet(
            OWNER,
            &c.network(OWNER).await,
            json!({"subnetpool_id": pool, "cidr": "10.11.12.128/28"}),
        )
        .await;
    assert_eq!(st, 201, "{s3}");
    // Outside the pool, taken, too long or too short, or the wrong version.
    let other = c.network(OWNER).await;
    for (attrs, want) in [
        (
            json!({"cidr": "10.11.13.0/28"}),
            (400, "SubnetAllocationError"),
        ),
        (
            json!({"cidr": "10.11.12.128/29"}),
            (409, "SubnetAllocationError"),
        ),
        (
            json!({"prefixlen": 31}),
            (400, "MaxPrefixSubnetAllocationError"),
        ),
        (
            json!({"prefixlen": 24}),
            (400, "MinPrefixSubnetAllocationError"),
        ),
        (json!({"ip_version": 6}), (400, "BadRequest")),
        (
            json!({"allocation_pools": [{"start": "10.11.12.2", "end": "10.11.12.3"}]}),
            (400, "BadRequest"),
        ),
    ] {
        let mut attrs = attrs;
        attrs["subnetpool_id"] = json!(pool);
        let (st, v) = c.subnet(OWNER, &other, attrs.clone()).await;
        assert_eq!((st, kind(&v)), want, "{attrs}: {v}");
    }
    // Full: every /28 is gone after 13 more.
    for _ in 0..13 {
        let (st, v) = c
            .subnet(
                OWNER,
                &c.network(OWNER).await,
                json!({"subnetpool_id": pool}),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }
    let (st, v) = c
        .subnet(OWNER, &other, json!({"subnetpool_id": pool}))
        .await;
    assert_eq!((st, kind(&v)), (409, "SubnetAllocationError"), "{v}");
    // In use: the pool stays; once the subnet goes, its CIDR is free again.
    let uri = format!("/v2.0/subnetpools/{pool}");
    let (st, v) = c.call(OWNER, "DELETE", &uri, None).await;
    assert_eq!((st, kind(&v)), (400, "SubnetPoolDeleteError"), "{v}");
    let s3_id = s3["subnet"]["id"].as_str().unwrap();
    let (st, _) = c
        .call(OWNER, "DELETE", &format!("/v2.0/subnets/{s3_id}"), None)
        .await;
    assert_eq!(st, 204);
    let (st, v) = c
        .subnet(
            OWNER,
            &other,
            json!({"subnetpool_id": pool, "prefixlen": 28}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["subnet"]["cidr"], json!("10.11.12.128/28"));
}

#[tokio::test]
async fn one_network_takes_subnets_of_one_version_from_one_pool() {
    let c = Cloud::new();
    let pool = c.pool(ADMIN, json!({"prefixes": ["192.168.0.0/16"]})).await;
    let net = c.network(ADMIN).await;
    let (st, _) = c
        .subnet(
            ADMIN,
            &net,
            json!({"cidr": "10.10.10.0/24", "gateway_ip": null}),
        )
        .await;
    assert_eq!(st, 201);
    let (st, v) = c
        .subnet(
            ADMIN,
            &net,
            json!({"subnetpool_id": pool["id"], "prefixlen": 24}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (400, "NetworkSubnetPoolAffinityError"),
        "{v}"
    );
    // Nothing was written: the pool's only allocation is the one of another network,
    // whose delete gives it back.
    let other = c.network(ADMIN).await;
    let (st, v) = c
        .subnet(
            ADMIN,
            &other,
            json!({"subnetpool_id": pool["id"], "prefixlen": 24}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let uri = format!("/v2.0/subnetpools/{}", pool["id"].as_str().unwrap());
    let (st, _) = c.call(ADMIN, "DELETE", &uri, None).await;
    assert_eq!(st, 400);
    let (st, _) = c
        .call(ADMIN, "DELETE", &format!("/v2.0/networks/{other}"), None)
        .await;
    assert_eq!(st, 204);
    let (st, v) = c.call(ADMIN, "DELETE", &uri, None).await;
    assert_eq!(st, 204, "{v}");
}

#[tokio::test]
async fn the_prefix_quota_counts_the_projects_addresses() {
    let c = Cloud::new();
    let p = c
        .pool(OWNER, json!({"prefixes": ["10.0.0.0/24"], "min_prefixlen": 28, "max_prefixlen": 30, "default_quota": 8}))
        .await;
    let pool = p["id"].as_str().unwrap();
    for _ in 0..2 {
        let (st, v) = c
            .subnet(
                OWNER,
                &c.network(OWNER).await,
                json!({"subnetpool_id": pool, "prefixlen": 30}),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }
    let net = c.network(OWNER).await;
    let (st, v) = c
        .subnet(OWNER, &net, json!({"subnetpool_id": pool, "prefixlen": 30}))
        .await;
    assert_eq!((st, kind(&v)), (409, "SubnetPoolQuotaExceeded"), "{v}");
    let (_, shown) = c
        .call(OWNER, "GET", &format!("/v2.0/subnetpools/{pool}"), None)
        .await;
    assert_eq!(shown["subnetpool"]["revision_number"], json!(0));
    let (_, n) = c
        .call(OWNER, "GET", &format!("/v2.0/networks/{net}"), None)
        .await;
    assert_eq!(n["network"]["subnets"], json!([]));
}

#[tokio::test]
async fn prefixes_grow_but_never_shrink() {
    let c = Cloud::new();
    let p = c
        .pool(
            OWNER,
            json!({"prefixes": ["10.11.12.0/24"], "min_prefixlen": 29}),
        )
        .await;
    let uri = format!("/v2.0/subnetpools/{}", p["id"].as_str().unwrap());
    let put = |attrs: Value| json!({ "subnetpool": attrs });
    let (st, v) = c
        .call(
            OWNER,
            "PUT",
            &uri,
            Some(put(json!({"prefixes": ["10.11.12.0/26"]}))),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (400, "IllegalSubnetPoolPrefixUpdate"),
        "{v}"
    );
    let (st, v) = c
        .call(
            OWNER,
            "PUT",
            &uri,
            Some(put(json!({"prefixes": ["10.11.12.0/24", "10.11.15.0/24"]}))),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["subnetpool"]["prefixes"],
        json!(["10.11.12.0/24", "10.11.15.0/24"])
    );
    assert_eq!(v["subnetpool"]["revision_number"], json!(1));
    let (st, v) = c
        .call(
            OWNER,
            "PUT",
            &uri,
            Some(put(json!({"prefixes": ["10.11.0.0/16"]}))),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["subnetpool"]["prefixes"], json!(["10.11.0.0/16"]));
    // The operations: add merges, remove splits; a prefix in use stays.
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("{uri}/add_prefixes"),
            json!({"prefixes": ["10.12.0.0/16"]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!({"prefixes": ["10.11.0.0/16", "10.12.0.0/16"]}));
    let (st, s) = c
        .subnet(
            OWNER,
            &c.network(OWNER).await,
            json!({"subnetpool_id": p["id"], "cidr": "10.12.0.0/29"}),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("{uri}/remove_prefixes"),
            json!({"prefixes": ["10.12.0.0/16"]}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (400, "IllegalSubnetPoolPrefixUpdate"),
        "{v}"
    );
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("{uri}/remove_prefixes"),
            json!({"prefixes": ["10.11.0.0/17"]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!({"prefixes": ["10.11.128.0/17", "10.12.0.0/16"]}));
    let (st, _) = c
        .send(
            OWNER,
            "PUT",
            &format!("{uri}/add_prefixes"),
            json!({"prefixes": []}),
        )
        .await;
    assert_eq!(st, 400);
    let (st, _) = c
        .send(
            OTHER,
            "PUT",
            &format!("{uri}/add_prefixes"),
            json!({"prefixes": ["10.0.0.0/8"]}),
        )
        .await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn pools_in_a_scope_do_not_overlap() {
    let c = Cloud::new();
    let scope = c
        .made(
            OWNER,
            "address-scopes",
            json!({"address_scope": {"name": "s", "ip_version": 4}}),
        )
        .await;
    assert_eq!(scope["shared"], json!(false));
    assert!(scope.get("revision_number").is_none() && scope.get("tags").is_none());
    let sid = scope["id"].as_str().unwrap();
    let p1 = c
        .pool(
            OWNER,
            json!({"prefixes": ["20.0.0.0/18"], "address_scope_id": sid}),
        )
        .await;
    let body = json!({"subnetpool": {"prefixes": ["20.0.0.13/24"], "address_scope_id": sid}});
    let (st, v) = c.send(OWNER, "POST", "/v2.0/subnetpools", body).await;
    assert_eq!((st, kind(&v)), (409, "AddressScopePrefixConflict"), "{v}");
    let p2 = c
        .pool(
            OWNER,
            json!({"prefixes": ["20.10.0.0/24"], "address_scope_id": sid}),
        )
        .await;
    let uri = format!("/v2.0/subnetpools/{}", p1["id"].as_str().unwrap());
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"subnetpool": {"prefixes": ["20.0.0.0/12"]}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "AddressScopePrefixConflict"), "{v}");
    // The wrong version, another project's scope (unseen: 404; shared: 400).
    let v6 = c
        .made(
            OWNER,
            "address-scopes",
            json!({"address_scope": {"name": "s6", "ip_version": 6}}),
        )
        .await;
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"subnetpool": {"address_scope_id": v6["id"]}}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (400, "IllegalSubnetPoolIpVersionAssociationToAddressScope"),
        "{v}"
    );
    let hidden = c
        .made(
            ADMIN,
            "address-scopes",
            json!({"address_scope": {"name": "a", "ip_version": 4}}),
        )
        .await;
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &uri,
            json!({"subnetpool": {"address_scope_id": hidden["id"]}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (404, "AddressScopeNotFound"), "{v}");
    let shared = c
        .made(
            ADMIN,
            "address-scopes",
            json!({"address_scope": {"name": "a", "ip_version": 4, "shared": true}}),
        )
        .await;
    let body =
        json!({"subnetpool": {"prefixes": ["30.0.0.0/8"], "address_scope_id": shared["id"]}});
    let (st, v) = c.send(OWNER, "POST", "/v2.0/subnetpools", body).await;
    assert_eq!(
        (st, kind(&v)),
        (400, "IllegalSubnetPoolAssociationToAddressScope"),
        "{v}"
    );
    let suri = format!("/v2.0/address-scopes/{}", shared["id"].as_str().unwrap());
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &suri,
            json!({"address_scope": {"shared": false}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (400, "AddressScopeUpdateError"), "{v}");
    let (st, _) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/address-scopes/{sid}"),
            json!({"address_scope": {"shared": true}}),
        )
        .await;
    assert_eq!(st, 403);
    // A network shows the scope of its subnets' pool.
    let net = c.network(OWNER).await;
    let (st, v) = c
        .subnet(
            OWNER,
            &net,
            json!({"subnetpool_id": p2["id"], "prefixlen": 28}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (_, n) = c
        .call(OWNER, "GET", &format!("/v2.0/networks/{net}"), None)
        .await;
    assert_eq!(n["network"]["ipv4_address_scope"], json!(sid));
    assert_eq!(n["network"]["ipv6_address_scope"], Value::Null);
    // In use: the scope stays.
    let (st, v) = c
        .call(
            OWNER,
            "DELETE",
            &format!("/v2.0/address-scopes/{sid}"),
            None,
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "AddressScopeInUse"), "{v}");
    let (st, _) = c
        .call(OWNER, "GET", &format!("/v2.0/address-scopes/{sid}"), None)
        .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn the_default_pool_serves_use_default_subnetpool() {
    let c = Cloud::new();
    let net = c.network(OWNER).await;
    let (st, v) = c
        .subnet(OWNER, &net, json!({"use_default_subnetpool": true}))
        .await;
    assert_eq!((st, kind(&v)), (400, "BadRequest"), "{v}");
    let p = c
        .pool(ADMIN, json!({"prefixes": ["10.50.0.0/16"], "default_prefixlen": 24, "is_default": true, "shared": true}))
        .await;
    let body = json!({"subnetpool": {"prefixes": ["10.60.0.0/16"], "is_default": true}});
    let (st, v) = c.send(ADMIN, "POST", "/v2.0/subnetpools", body).await;
    assert_eq!((st, kind(&v)), (400, "InvalidInput"), "{v}");
    let (st, v) = c
        .subnet(OWNER, &net, json!({"use_default_subnetpool": true}))
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["subnet"]["cidr"], json!("10.50.0.0/24"));
    assert_eq!(v["subnet"]["subnetpool_id"], p["id"]);
    let (st, v) = c
        .subnet(
            OWNER,
            &net,
            json!({"use_default_subnetpool": true, "subnetpool_id": p["id"]}),
        )
        .await;
    assert_eq!((st, kind(&v)), (400, "BadRequest"), "{v}");
    // Another default once this one is not.
    let uri = format!("/v2.0/subnetpools/{}", p["id"].as_str().unwrap());
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &uri,
            json!({"subnetpool": {"is_default": false}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let q = c
        .pool(
            ADMIN,
            json!({"prefixes": ["10.60.0.0/16"], "is_default": true}),
        )
        .await;
    assert_eq!(q["is_default"], json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_allocations_never_overlap() {
    let c = Cloud::new();
    let p = c
        .pool(
            OWNER,
            json!({"prefixes": ["10.0.0.0/24"], "min_prefixlen": 26, "max_prefixlen": 28}),
        )
        .await;
    let pool = p["id"].as_str().unwrap().to_string();
    let mut nets = Vec::new();
    for _ in 0..24 {
        nets.push(c.network(OWNER).await);
    }
    let tasks: Vec<_> = nets
        .into_iter()
        .enumerate()
        .map(|(i, net)| {
            let app = c.app.clone();
            let pool = pool.clone();
            // Mixed lengths so that differently sized prefixes race too.
            let len = if i % 3 == 0 { 27 } else { 28 };
            tokio::spawn(async move {
                let body = json!({"subnet": {"network_id": net, "ip_version": 4,
                    "subnetpool_id": pool, "prefixlen": len}});
                call(&app, OWNER, "POST", "/v2.0/subnets", Some(body)).await
            })
        })
        .collect();
    let mut got: Vec<IpNet> = Vec::new();
    for t in tasks {
        let (st, v) = t.await.expect("task");
        match st {
            201 => got.push(v["subnet"]["cidr"].as_str().unwrap().parse().unwrap()),
            409 => assert_eq!(kind(&v), "SubnetAllocationError", "{v}"),
            _ => panic!("{st}: {v}"),
        }
    }
    let total: u32 = got.iter().map(|n| 1u32 << (32 - n.prefix_len())).sum();
    assert_eq!(total, 256, "the pool is used up exactly: {got:?}");
    for (i, a) in got.iter().enumerate() {
        for b in &got[i + 1..] {
            assert!(
                !a.contains(&b.network()) && !b.contains(&a.network()),
                "{a} and {b} overlap"
            );
        }
    }
}
