//! BGP dynamic routing end to end, control plane: a real `dragonflow server`, a real
//! `dragonflow bgp`, and bird2 in a namespace on the "underlay" (a veth to this namespace,
//! 198.18.25.0/24, which is also the external network's subnet, so every next hop is
//! directly connected for bird). Through the API: a router with its gateway on the
//! external network and a tenant subnet in the same address scope, a speaker and a peer.
//! `birdc show route` then shows the tenant /24 via the router's gateway address; a
//! floating IP associated with a port bound to host A adds a /32 via A's underlay
//! address, moving the port to host B moves the next hop, disassociating withdraws it
//! within a second, a second speaker process on another host advertises the same routes
//! over its own session, a killed speaker's routes stay in bird (graceful restart) until
//! its restart's End-of-RIB, restarting bird learns everything again; FRR's bgpd, a second
//! peer implementation, holds the same routes as best paths; with TCP MD5 (bird's `password`), a peer with the right password gets
//! the session and one with a wrong password none. An IPv6 speaker's tenant /64 reaches
//! bird over a second, IPv6 session, via the router's IPv6 gateway address. The hosts are
//! chassis records (no OVS here: what is advertised depends on the model only).

mod common;

use common::Server;
use common::bgp::{
    BIRD_IP, BIRD_IP6, Bird, FRR_IP, Frr, HOST_A, HOST_B, SPEAKER2_IP, Speaker, id, scopeguard,
};
use common::cloud::wait_until;
use neutron_api::nb_auth::Principal;
use serde_json::json;
use std::time::{Duration, Instant};

/// Associates the floating IP at `uri` with `port` (a port id, or null: disassociates).
fn associate(srv: &Server, uri: &str, port: serde_json::Value) {
    let (st, v) = srv.call("PUT", uri, Some(json!({"floatingip": {"port_id": port}})));
    assert_eq!(st, 200, "{v}");
}

#[test]
fn bird_learns_tenant_networks_and_floating_ips_via_their_host() {
    // Heartbeats live 3 s, so that a controller's death shows within the test.
    let conf = tempfile::NamedTempFile::new().expect("config");
    std::fs::write(
        conf.path(),
        "[neutron]\nreport_interval = 1\nagent_down_time = 3\n",
    )
    .expect("config");
    let srv = Server::start_args(&[
        "--noauth-admin",
        "--config",
        &conf.path().display().to_string(),
    ]);
    let link = format!("bgpv{}", std::process::id() % 10000);
    let mut bird = Bird::start(&link);
    let _cleanup = scopeguard(link.clone());

    let common::bgp::Tenant { ext, net, cidr, gw } = common::bgp::tenant(&srv);

    // The speaker and its peer through the real `openstack bgp` commands.
    let speaker = srv.os(&[
        "bgp",
        "speaker",
        "create",
        "--local-as",
        "64512",
        "--ip-version",
        "4",
        "s1",
    ]);
    assert_eq!(speaker["local_as"], json!(64512), "{speaker}");
    let peer = srv.os(&[
        "bgp",
        "peer",
        "create",
        "--peer-ip",
        BIRD_IP,
        "--remote-as",
        "65000",
        "bird",
    ]);
    assert_eq!(peer["auth_type"], json!("none"), "{peer}");
    srv.os_ok(&["bgp", "speaker", "add", "peer", "s1", "bird"]);
    srv.os_ok(&["bgp", "speaker", "add", "network", "s1", "public"]);
    let base = format!("/v2.0/bgp-speakers/{}", id(&speaker));
    let (_, v) = srv.call("GET", &base, None);
    assert_eq!(v["bgp_speaker"]["peers"], json!([peer["id"]]), "{v}");

    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, common::token(Principal::Admin)).expect("token");
    let mut spk = Speaker::start(&srv, &token_file);

    let took = bird.wait("the tenant subnet via the gateway", |r| {
        r.get(&cidr) == Some(&gw)
    });
    eprintln!("tenant route in bird after {took:?}");

    // Two hosts (their chassis records) and a port bound to A.
    common::bgp::hosts(&srv);
    let port = srv.create(
        "ports",
        "port",
        json!({"network_id": net["id"], "binding:host_id": "host-a"}),
    );
    let fip = srv.create(
        "floatingips",
        "floatingip",
        json!({"floating_network_id": ext["id"]}),
    );
    let fip_addr = format!("{}/32", fip["floating_ip_address"].as_str().expect("fip"));
    let fip_uri = format!("/v2.0/floatingips/{}", id(&fip));
    let t = Instant::now();
    associate(&srv, &fip_uri, json!(port["id"]));
    bird.wait("the floating IP via host A", |r| {
        r.get(&fip_addr).map(String::as_str) == Some(HOST_A)
    });
    eprintln!(
        "floating IP /32 in bird {:?} after the association",
        t.elapsed()
    );

    // The port moves to host B: so does the next hop.
    let (st, v) = srv.call(
        "PUT",
        &format!("/v2.0/ports/{}", id(&port)),
        Some(json!({"port": {"binding:host_id": "host-b"}})),
    );
    assert_eq!(st, 200, "{v}");
    bird.wait("the floating IP via host B", |r| {
        r.get(&fip_addr).map(String::as_str) == Some(HOST_B)
    });

    // Disassociated: withdrawn within a second.
    let t = Instant::now();
    associate(&srv, &fip_uri, json!(null));
    bird.wait("the floating IP withdrawn", |r| !r.contains_key(&fip_addr));
    let withdrawn = t.elapsed();
    eprintln!("floating IP withdrawn from bird after {withdrawn:?}");
    assert!(withdrawn < Duration::from_secs(1), "{withdrawn:?}");
    assert_eq!(bird.routes().get(&cidr), Some(&gw));

    // The API says the same as bird, and so does the CLI.
    let (_, v) = srv.call("GET", &format!("{base}/get_advertised_routes"), None);
    assert_eq!(
        v["advertised_routes"],
        json!([{"destination": cidr, "next_hop": gw}])
    );
    let routes = srv.os(&["bgp", "speaker", "list", "advertised", "routes", "s1"]);
    assert_eq!(routes.as_array().map(Vec::len), Some(1), "{routes}");
    assert!(routes.to_string().contains(&cidr), "{routes}");

    // The agents API shows the speaker.
    let (_, v) = srv.call("GET", "/v2.0/agents?agent_type=DF%20BGP%20speaker", None);
    assert_eq!(v["agents"][0]["host"], json!("bgp-host"), "{v}");

    // A second speaker process, on another host, serves the same speaker: bird learns the
    // same routes over its own session (`df2`, from the address given by --local-address),
    // and the agents API shows both.
    let spk2 = Speaker::start_as(
        &srv,
        &token_file,
        "bgp-host-2",
        SPEAKER2_IP,
        &["--local-address", SPEAKER2_IP],
    );
    bird.wait_on("df2", "the tenant subnet from the second speaker", |r| {
        r.get(&cidr) == Some(&gw)
    });
    wait_until(
        "both speakers in the agents API",
        Duration::from_secs(10),
        || {
            let (_, v) = srv.call("GET", "/v2.0/agents?agent_type=DF%20BGP%20speaker", None);
            let mut hosts: Vec<String> = v["agents"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["host"].as_str().map(str::to_string))
                .collect();
            hosts.sort();
            hosts == ["bgp-host", "bgp-host-2"]
        },
    );
    drop(spk2);

    // FRR (bgpd) as a second peer implementation, beside bird: it takes the speaker's
    // OPEN (graceful restart, 4-octet AS, route refresh) and UPDATEs, and holds the tenant
    // route and a floating IP's /32 via its host as best paths, until withdrawn.
    let frr = Frr::start(&bird);
    srv.os(&[
        "bgp",
        "peer",
        "create",
        "--peer-ip",
        FRR_IP,
        "--remote-as",
        "65001",
        "frr",
    ]);
    srv.os_ok(&["bgp", "speaker", "add", "peer", "s1", "frr"]);
    frr.wait("the tenant subnet in FRR", |r| r.get(&cidr) == Some(&gw));
    associate(&srv, &fip_uri, json!(port["id"]));
    frr.wait("the floating IP via host B in FRR", |r| {
        r.get(&fip_addr).map(String::as_str) == Some(HOST_B)
    });
    eprintln!("FRR's best paths: {:?}", frr.routes());
    associate(&srv, &fip_uri, json!(null));
    frr.wait("the floating IP withdrawn from FRR", |r| {
        !r.contains_key(&fip_addr) && r.get(&cidr) == Some(&gw)
    });
    srv.os_ok(&["bgp", "speaker", "remove", "peer", "s1", "frr"]);
    frr.wait("everything withdrawn from FRR (CEASE)", |r| r.is_empty());
    drop(frr);

    // Graceful restart (RFC 4724): the speaker offers it, so when its process dies (no
    // NOTIFICATION) bird keeps its routes, stale, and the hosts forward on. The restarted
    // speaker advertises everything again; a floating IP disassociated while it was down
    // is swept by bird at the new session's End-of-RIB.
    associate(&srv, &fip_uri, json!(port["id"]));
    bird.wait("the floating IP via host B again", |r| {
        r.get(&fip_addr).map(String::as_str) == Some(HOST_B)
    });
    drop(spk);
    std::thread::sleep(Duration::from_secs(2));
    let kept = bird.routes();
    assert_eq!(kept.get(&cidr), Some(&gw), "kept while down: {kept:?}");
    assert!(kept.contains_key(&fip_addr), "kept while down: {kept:?}");
    associate(&srv, &fip_uri, json!(null));
    spk = Speaker::start(&srv, &token_file);
    bird.wait("the stale floating IP swept at the End-of-RIB", |r| {
        !r.contains_key(&fip_addr) && r.get(&cidr) == Some(&gw)
    });

    // A restarted bird learns everything again.
    bird.restart(None);
    bird.wait("the tenant subnet after bird's restart", |r| {
        r.get(&cidr) == Some(&gw)
    });

    // TCP MD5: bird asks for it; a peer with auth_type md5 and the right password gets
    // the session, a wrong password none (the kernels drop the unsigned or badly signed
    // segments), and the right one again brings the routes back.
    let md5 = srv.os(&[
        "bgp",
        "peer",
        "create",
        "--peer-ip",
        BIRD_IP,
        "--remote-as",
        "65000",
        "--auth-type",
        "md5",
        "--password",
        "s3cret",
        "bird-md5",
    ]);
    assert_eq!(md5["auth_type"], json!("md5"), "{md5}");
    srv.os_ok(&["bgp", "speaker", "remove", "peer", "s1", "bird"]);
    bird.restart(Some("s3cret"));
    srv.os_ok(&["bgp", "speaker", "add", "peer", "s1", "bird-md5"]);
    bird.wait("the tenant subnet over an MD5-signed session", |r| {
        r.get(&cidr) == Some(&gw)
    });
    srv.os_ok(&["bgp", "peer", "set", "--password", "wrong", "bird-md5"]);
    bird.restart(Some("s3cret"));
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        bird.routes().is_empty(),
        "no session with a wrong password: {:?}",
        bird.routes()
    );
    srv.os_ok(&["bgp", "peer", "set", "--password", "s3cret", "bird-md5"]);
    bird.wait("the routes with the right password again", |r| {
        r.get(&cidr) == Some(&gw)
    });

    // A host whose controller dies takes its floating IPs' routes with it (its DNAT is
    // gone): host B's controller heartbeat runs out (3 s here) and bird loses the /32;
    // a heartbeat again brings it back.
    common::bgp::controller_beat(&srv, "host-b");
    associate(&srv, &fip_uri, json!(port["id"]));
    bird.wait("the floating IP via host B, alive", |r| {
        r.get(&fip_addr).map(String::as_str) == Some(HOST_B)
    });
    let t = Instant::now();
    let took = bird.wait("the floating IP withdrawn: host B's controller died", |r| {
        !r.contains_key(&fip_addr) && r.get(&cidr) == Some(&gw)
    });
    eprintln!("floating IP withdrawn {took:?} after host B's last heartbeat (3 s lease)");
    assert!(
        t.elapsed() > Duration::from_secs(1),
        "before the lease ran out"
    );
    let (_, v) = srv.call("GET", &format!("{base}/get_advertised_routes"), None);
    assert_eq!(
        v["advertised_routes"],
        json!([{"destination": cidr, "next_hop": gw}])
    );
    common::bgp::controller_beat(&srv, "host-b");
    bird.wait("the floating IP back with host B's controller", |r| {
        r.get(&fip_addr).map(String::as_str) == Some(HOST_B)
    });
    associate(&srv, &fip_uri, json!(null));

    // IPv6: a second session (bird's `df6`) for an IPv6 speaker. Its tenant /64 is
    // advertised via the router's IPv6 gateway address (MP_REACH_NLRI, an IPv6 next hop).
    let scope6 = srv.create(
        "address-scopes",
        "address_scope",
        json!({"name": "s6", "ip_version": 6, "shared": true}),
    );
    let pool6 = |name: &str, prefix: &str| {
        srv.create(
            "subnetpools",
            "subnetpool",
            json!({"name": name, "prefixes": [prefix], "address_scope_id": scope6["id"],
                   "shared": true}),
        )
    };
    let (ext_pool6, tenant_pool6) = (
        pool6("ext6", "fd00:25::/64"),
        pool6("tenant6", "fd00:26::/48"),
    );
    let ext6 = srv.create(
        "subnets",
        "subnet",
        json!({"network_id": ext["id"], "ip_version": 6, "cidr": "fd00:25::/64",
               "subnetpool_id": ext_pool6["id"], "gateway_ip": "fd00:25::ffff",
               "allocation_pools": [{"start": "fd00:25::100", "end": "fd00:25::200"}]}),
    );
    let sub6 = srv.create(
        "subnets",
        "subnet",
        json!({"network_id": net["id"], "ip_version": 6, "subnetpool_id": tenant_pool6["id"],
               "prefixlen": 64}),
    );
    let r6 = srv.create(
        "routers",
        "router",
        json!({"name": "r6", "external_gateway_info": {"network_id": ext["id"],
               "external_fixed_ips": [{"subnet_id": ext6["id"]}]}}),
    );
    let gw6 = r6["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        .as_str()
        .expect("IPv6 gateway")
        .to_string();
    let (st, v) = srv.call(
        "PUT",
        &format!("/v2.0/routers/{}/add_router_interface", id(&r6)),
        Some(json!({"subnet_id": sub6["id"]})),
    );
    assert_eq!(st, 200, "{v}");
    let cidr6 = sub6["cidr"].as_str().expect("cidr").to_string();
    let s6 = srv.create(
        "bgp-speakers",
        "bgp_speaker",
        json!({"name": "s6", "local_as": 64512, "ip_version": 6}),
    );
    let peer6 = srv.create(
        "bgp-peers",
        "bgp_peer",
        json!({"name": "bird6", "peer_ip": BIRD_IP6, "remote_as": 65000, "auth_type": "none"}),
    );
    let base6 = format!("/v2.0/bgp-speakers/{}", id(&s6));
    for (action, body) in [
        ("add_bgp_peer", json!({"bgp_peer_id": id(&peer6)})),
        ("add_gateway_network", json!({"network_id": id(&ext)})),
    ] {
        let (st, v) = srv.call("PUT", &format!("{base6}/{action}"), Some(body));
        assert_eq!(st, 200, "{action}: {v}");
    }
    bird.wait_on("df6", "the tenant /64 via the IPv6 gateway", |r| {
        r.get(&cidr6) == Some(&gw6)
    });
    drop(spk);
}
