//! neutron-dynamic-routing through the API, in process: speakers and peers as upstream
//! renders them, their validations and errors, the actions, the admin-only policy, and
//! the routes a speaker advertises (tenant subnets in the gateway network's address
//! scope via the router's gateway address; nothing from another scope).

mod common;

use common::{ADMIN, Cloud, OWNER, kind, message};
use serde_json::{Value, json};

async fn speaker(c: &Cloud, attrs: Value) -> Value {
    c.made(ADMIN, "bgp-speakers", json!({ "bgp_speaker": attrs }))
        .await
}

async fn peer(c: &Cloud, ip: &str) -> Value {
    c.made(
        ADMIN,
        "bgp-peers",
        json!({"bgp_peer": {"name": "p", "peer_ip": ip, "remote_as": 65000, "auth_type": "none"}}),
    )
    .await
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn a_speaker_is_rendered_and_validated_as_upstream() {
    let c = Cloud::new();
    let s = speaker(
        &c,
        json!({"name": "s", "local_as": 4_200_000_000u64, "ip_version": 4}),
    )
    .await;
    let mut keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "advertise_floating_ip_host_routes",
            "advertise_tenant_networks",
            "id",
            "ip_version",
            "local_as",
            "name",
            "networks",
            "peers",
            "project_id",
            "tenant_id"
        ],
        "{s}"
    );
    assert_eq!(s["local_as"], json!(4_200_000_000u64));
    assert_eq!(s["advertise_tenant_networks"], json!(true));
    assert_eq!(s["peers"], json!([]));
    for (body, what) in [
        (json!({"local_as": 0, "ip_version": 4}), "too small"),
        (
            json!({"local_as": 4_294_967_296u64, "ip_version": 4}),
            "too large",
        ),
        (
            json!({"local_as": 65000, "ip_version": 5}),
            "is not in [4, 6]",
        ),
        (json!({"ip_version": 4}), "local_as"),
        (
            json!({"local_as": 65000, "ip_version": 4, "peers": []}),
            "peers",
        ),
    ] {
        let (st, v) = c
            .send(
                ADMIN,
                "POST",
                "/v2.0/bgp-speakers",
                json!({"bgp_speaker": body}),
            )
            .await;
        assert_eq!(st, 400, "{body}: {v}");
        assert!(message(&v).contains(what), "{v}");
    }
    // Only the switches and the name change.
    let uri = format!("/v2.0/bgp-speakers/{}", id(&s));
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &uri,
            json!({"bgp_speaker": {"advertise_tenant_networks": false}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["bgp_speaker"]["advertise_tenant_networks"], json!(false));
    let (st, _) = c
        .send(ADMIN, "PUT", &uri, json!({"bgp_speaker": {"local_as": 1}}))
        .await;
    assert_eq!(st, 400);
    // The admin's only.
    let (st, v) = c
        .send(
            OWNER,
            "POST",
            "/v2.0/bgp-speakers",
            json!({"bgp_speaker": {"local_as": 1, "ip_version": 4}}),
        )
        .await;
    assert_eq!((st, kind(&v)), (403, "PolicyNotAuthorized"), "{v}");
    let (st, v) = c.call(OWNER, "GET", "/v2.0/bgp-speakers", None).await;
    assert_eq!(st, 200);
    assert_eq!(v["bgp_speakers"], json!([]));
    let (st, v) = c
        .call(ADMIN, "GET", "/v2.0/extensions/bgp_4byte_asn", None)
        .await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test]
async fn peers_hide_their_password_and_change_only_name_and_password() {
    let c = Cloud::new();
    let (st, v) = c
        .send(
            ADMIN,
            "POST",
            "/v2.0/bgp-peers",
            json!({"bgp_peer": {"peer_ip": "192.0.2.1", "remote_as": 65000, "auth_type": "md5"}}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (400, "InvalidBgpPeerMd5Authentication"),
        "{v}"
    );
    let (st, v) = c
        .send(
            ADMIN,
            "POST",
            "/v2.0/bgp-peers",
            json!({"bgp_peer": {"peer_ip": "192.0.2.1", "remote_as": 65000, "auth_type": "sha1"}}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = c
        .send(ADMIN, "POST", "/v2.0/bgp-peers", json!({"bgp_peer": {"peer_ip": "192.0.2.300", "remote_as": 65000, "auth_type": "none"}})).await;
    assert_eq!(st, 400, "{v}");
    let p = c
        .made(ADMIN, "bgp-peers", json!({"bgp_peer": {"name": "r", "peer_ip": "192.0.2.1", "remote_as": 65000, "auth_type": "md5", "password": "s3cret"}}))
        .await;
    assert!(p.get("password").is_none(), "{p}");
    assert_eq!(p["auth_type"], json!("md5"));
    let uri = format!("/v2.0/bgp-peers/{}", id(&p));
    let (st, _) = c
        .send(
            ADMIN,
            "PUT",
            &uri,
            json!({"bgp_peer": {"password": "new", "name": "r2"}}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = c
        .send(ADMIN, "PUT", &uri, json!({"bgp_peer": {"remote_as": 1}}))
        .await;
    assert_eq!(st, 400);
    // A password for a peer without authentication.
    let plain = peer(&c, "192.0.2.2").await;
    let (st, v) = c
        .call(
            ADMIN,
            "PUT",
            &format!("/v2.0/bgp-peers/{}", id(&plain)),
            Some(json!({"bgp_peer": {"password": "x"}})),
        )
        .await;
    assert_eq!((st, kind(&v)), (404, "BgpPeerNotAuthenticated"), "{v}");
}

#[tokio::test]
async fn actions_bind_peers_and_networks_as_upstream() {
    let c = Cloud::new();
    let s = speaker(&c, json!({"local_as": 64512, "ip_version": 4})).await;
    let base = format!("/v2.0/bgp-speakers/{}", id(&s));
    let p1 = peer(&c, "192.0.2.1").await;
    let p2 = peer(&c, "192.0.2.1").await;
    let act = |name: &str| format!("{base}/{name}");
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &act("add_bgp_peer"),
            json!({"bgp_peer_id": id(&p1)}),
        )
        .await;
    assert_eq!((st, &v), (200, &json!({"bgp_peer_id": id(&p1)})));
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &act("add_bgp_peer"),
            json!({"bgp_peer_id": id(&p2)}),
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "DuplicateBgpPeerIpException"), "{v}");
    let (st, v) = c.send(ADMIN, "PUT", &act("add_bgp_peer"), json!({})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &act("add_bgp_peer"),
            json!({"bgp_peer_id": "6a3f1c2e-0000-4000-8000-000000000000"}),
        )
        .await;
    assert_eq!((st, kind(&v)), (404, "BgpPeerNotFound"), "{v}");
    let (_, v) = c.call(ADMIN, "GET", &base, None).await;
    assert_eq!(v["bgp_speaker"]["peers"], json!([id(&p1)]));
    // Deleting a peer takes it out of the speaker.
    let (st, _) = c
        .call(
            ADMIN,
            "DELETE",
            &format!("/v2.0/bgp-peers/{}", id(&p1)),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (_, v) = c.call(ADMIN, "GET", &base, None).await;
    assert_eq!(v["bgp_speaker"]["peers"], json!([]));
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &act("remove_bgp_peer"),
            json!({"bgp_peer_id": id(&p2)}),
        )
        .await;
    assert_eq!((st, kind(&v)), (404, "BgpSpeakerPeerNotAssociated"), "{v}");

    let net = c
        .made(
            ADMIN,
            "networks",
            json!({"network": {"name": "ext", "router:external": true}}),
        )
        .await;
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &act("add_gateway_network"),
            json!({"network_id": id(&net)}),
        )
        .await;
    assert_eq!((st, &v), (200, &json!({"network_id": id(&net)})));
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &act("add_gateway_network"),
            json!({"network_id": id(&net)}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (409, "BgpSpeakerNetworkBindingError"),
        "{v}"
    );
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &act("remove_gateway_network"),
            json!({"network_id": id(&net)}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &act("remove_gateway_network"),
            json!({"network_id": id(&net)}),
        )
        .await;
    assert_eq!(
        (st, kind(&v)),
        (404, "BgpSpeakerNetworkNotAssociated"),
        "{v}"
    );
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &act("add_gateway_network"),
            json!({"network_id": id(&net)}),
        )
        .await;
    assert_eq!(st, 404, "another project's speaker is not seen: {v}");
}

#[tokio::test]
async fn tenant_subnets_in_the_gateway_scope_are_advertised_via_the_router_gateway() {
    let c = Cloud::new();
    let scope = c
        .made(
            ADMIN,
            "address-scopes",
            json!({"address_scope": {"name": "s", "ip_version": 4, "shared": true}}),
        )
        .await;
    let pool = |prefix: &str, scoped: bool| {
        let mut p = json!({"name": "p", "prefixes": [prefix], "shared": true});
        if scoped {
            p["address_scope_id"] = scope["id"].clone();
        }
        json!({ "subnetpool": p })
    };
    let ext_pool = c
        .made(ADMIN, "subnetpools", pool("172.24.4.0/24", true))
        .await;
    let tenant_pool = c
        .made(ADMIN, "subnetpools", pool("10.10.0.0/16", true))
        .await;
    let other_pool = c
        .made(ADMIN, "subnetpools", pool("10.20.0.0/16", false))
        .await;
    let ext = c
        .made(
            ADMIN,
            "networks",
            json!({"network": {"name": "ext", "router:external": true}}),
        )
        .await;
    c.made(ADMIN, "subnets", json!({"subnet": {"network_id": id(&ext), "ip_version": 4, "subnetpool_id": id(&ext_pool), "prefixlen": 24}})).await;
    let router = c
        .made(
            ADMIN,
            "routers",
            json!({"router": {"name": "r", "external_gateway_info": {"network_id": id(&ext)}}}),
        )
        .await;
    let gw = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"].clone();
    for (name, p) in [("in", &tenant_pool), ("out", &other_pool)] {
        let n = c
            .made(ADMIN, "networks", json!({"network": {"name": name}}))
            .await;
        let s = c
            .made(ADMIN, "subnets", json!({"subnet": {"network_id": id(&n), "ip_version": 4, "subnetpool_id": id(p), "prefixlen": 24}}))
            .await;
        let (st, v) = c
            .call(
                ADMIN,
                "PUT",
                &format!("/v2.0/routers/{}/add_router_interface", id(&router)),
                Some(json!({"subnet_id": id(&s)})),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    let s = speaker(&c, json!({"local_as": 64512, "ip_version": 4})).await;
    let base = format!("/v2.0/bgp-speakers/{}", id(&s));
    let routes = || async {
        let (st, v) = c
            .call(ADMIN, "GET", &format!("{base}/get_advertised_routes"), None)
            .await;
        assert_eq!(st, 200, "{v}");
        v["advertised_routes"].clone()
    };
    assert_eq!(routes().await, json!([]));
    c.send(
        ADMIN,
        "PUT",
        &format!("{base}/add_gateway_network"),
        json!({"network_id": id(&ext)}),
    )
    .await;
    assert_eq!(
        routes().await,
        json!([{"destination": "10.10.0.0/24", "next_hop": gw}])
    );
    c.send(
        ADMIN,
        "PUT",
        &base,
        json!({"bgp_speaker": {"advertise_tenant_networks": false}}),
    )
    .await;
    assert_eq!(routes().await, json!([]));
}
