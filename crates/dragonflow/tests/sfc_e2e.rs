//! Service function chaining on real traffic (issue 24): two hosts with real OVS
//! (userspace datapath), a client VM on host A, an HTTP server VM on host B and service
//! functions that are VM namespaces forwarding IP packets from one of their two
//! interfaces to the other with `tc mirred` (correlation none: a bump in the wire). The
//! client's HTTP goes through the service function (over the tunnel, MPLS-labelled, to
//! host B), and its counter grows by exactly the client's HTTP packets; ICMP and another
//! port go straight; a second pair in the group takes a share of new connections; a
//! symmetric chain takes the answers back through it; an IPv6 chain pops its label to
//! IPv6; full-size frames cross to a service function on every tunnel type (the API
//! refuses a VXLAN or GRE network whose MTU leaves no room for the label); deleting the
//! chain leaves no chain flow or group. The figures are `benches/sfc.rs`'.

mod common;
mod sfc;

use common::cloud::wait_until;
use serde_json::json;
use sfc::{Sf, chain_left, get, http_count, http_sent, mtu, setup, setup_on, sfc, sfc_call};
use std::time::{Duration, Instant};

#[test]
fn classified_http_goes_through_the_service_function_on_another_host() {
    if !testbed::require_root("sfc_e2e") {
        return;
    }
    let s = setup();
    let t = &s.t;
    let sf1 = Sf::new(t, &s.net, 1, "sf1");
    let sf2 = Sf::new(t, &s.net, 0, "sf2");
    let group = sfc(
        t,
        "port_pair_groups",
        "port_pair_group",
        json!({"name": "g", "port_pairs": [sf1.pair]}),
    );
    let fc = s.classifier(80, false);
    let started = Instant::now();
    let chain = t.srv.create(
        "sfc/port_chains",
        "port_chain",
        json!({"name": "web", "port_pair_groups": [group], "flow_classifiers": [fc]}),
    );
    let chain_id = chain["chain_id"].as_u64().expect("chain id");
    s.steered(&sf1);
    println!("chain created to HTTP through it: {:?}", started.elapsed());

    // Exactly the client's HTTP packets went through sf1 (none lost, none extra).
    let (sf_before, sent_before) = (sf1.forwarded("eth0"), http_sent(&s.client));
    for _ in 0..5 {
        assert!(get(&s.client, &s.url(80)), "HTTP through the chain");
    }
    let (sf_d, sent_d) = (
        sf1.forwarded("eth0") - sf_before,
        http_sent(&s.client) - sent_before,
    );
    assert!(sent_d >= 25, "5 connections: {sent_d} packets");
    assert_eq!(
        sf_d,
        sent_d,
        "sf1 forwarded exactly the client's HTTP\n{}",
        t.dumps()
    );
    assert_eq!(sf2.forwarded("eth0"), 0, "sf2 is not in the chain yet");
    // The classified packet steered to sf1's ingress port on host b, as OVS takes it.
    let r = common::trace::delivered(
        &t.srv,
        &t.ovs[0],
        &s.client_ip,
        &format!("{}:80", s.server_ip),
        None,
    );
    assert!(r.verdict.contains("sf1-in"), "{}", r.out);

    // ICMP and another port go straight.
    let sf_before = sf1.forwarded("eth0");
    assert!(s.client.pings(&s.server_ip), "ping");
    assert!(get(&s.client, &s.url(8080)), "HTTP to 8080");
    assert_eq!(sf1.forwarded("eth0"), sf_before, "ICMP and 8080 bypass sf1");

    // A second pair (on the client's host) takes a share of new connections.
    let (st, v) = sfc_call(
        t,
        "PUT",
        &format!("port_pair_groups/{group}"),
        Some(json!({"port_pair_group": {"port_pairs": [sf1.pair, sf2.pair]}})),
    );
    assert_eq!(st, 200, "{v}");
    wait_until("sf2 to take a connection", Duration::from_secs(20), || {
        get(&s.client, &s.url(80)) && sf2.forwarded("eth0") > 0
    });
    let (a, b, sent) = (
        sf1.forwarded("eth0"),
        sf2.forwarded("eth0"),
        http_sent(&s.client),
    );
    for _ in 0..30 {
        assert!(get(&s.client, &s.url(80)), "HTTP through two pairs");
    }
    let (da, db, dsent) = (
        sf1.forwarded("eth0") - a,
        sf2.forwarded("eth0") - b,
        http_sent(&s.client) - sent,
    );
    assert!(da > 0 && db > 0, "both pairs take connections: {da}, {db}");
    assert_eq!(da + db, dsent, "every HTTP packet through one of them");

    // The chain goes: the direct path again, and none of its flows or groups stays.
    let (st, v) = sfc_call(
        t,
        "DELETE",
        &format!("port_chains/{}", chain["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(st, 204, "{v}");
    wait_until("no chain flow left", Duration::from_secs(20), || {
        t.ovs.iter().all(|o| chain_left(o, chain_id).is_empty())
    });
    let (a, b) = (sf1.forwarded("eth0"), sf2.forwarded("eth0"));
    for _ in 0..5 {
        assert!(get(&s.client, &s.url(80)), "HTTP without the chain");
    }
    assert_eq!(
        (sf1.forwarded("eth0"), sf2.forwarded("eth0")),
        (a, b),
        "direct"
    );
}

#[test]
fn a_symmetric_chain_takes_the_answers_back_through_the_service_function() {
    if !testbed::require_root("sfc_e2e") {
        return;
    }
    let s = setup();
    let t = &s.t;
    let sf = Sf::new(t, &s.net, 1, "sf1");
    // The answers enter by the egress port and leave by the ingress port.
    sf.forward("eth1", "eth0");
    let group = sfc(
        t,
        "port_pair_groups",
        "port_pair_group",
        json!({"port_pairs": [sf.pair]}),
    );
    let fc = s.classifier(80, true);
    let chain = t.srv.create(
        "sfc/port_chains",
        "port_chain",
        json!({"port_pair_groups": [group], "flow_classifiers": [fc],
            "chain_parameters": {"symmetric": true}}),
    );
    assert_eq!(chain["chain_parameters"]["symmetric"], json!(true));
    s.steered(&sf);
    wait_until("an answer through the SF", Duration::from_secs(20), || {
        get(&s.client, &s.url(80)) && sf.forwarded("eth1") > 0
    });
    let before = (
        sf.forwarded("eth0"),
        sf.forwarded("eth1"),
        http_sent(&s.client),
        http_count(&s.client, "INPUT"),
    );
    for _ in 0..5 {
        assert!(
            get(&s.client, &s.url(80)),
            "HTTP through the symmetric chain"
        );
    }
    let (to_server, to_client) = (
        sf.forwarded("eth0") - before.0,
        sf.forwarded("eth1") - before.1,
    );
    let (sent, answered) = (
        http_sent(&s.client) - before.2,
        http_count(&s.client, "INPUT") - before.3,
    );
    assert!(answered >= 20, "5 answers: {answered} packets");
    assert_eq!(to_server, sent, "the requests, one way\n{}", t.dumps());
    assert_eq!(
        to_client,
        answered,
        "the answers, the other way\n{}",
        t.dumps()
    );
    // Other traffic between them is not chained either way.
    assert!(get(&s.client, &s.url(8080)), "8080");
    assert!(s.client.pings(&s.server_ip), "ping");
    assert_eq!(
        (sf.forwarded("eth0"), sf.forwarded("eth1")),
        (before.0 + to_server, before.1 + to_client),
        "8080 and ICMP bypass the chain"
    );
    let (st, v) = sfc_call(
        t,
        "DELETE",
        &format!("port_chains/{}", chain["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(st, 204, "{v}");
    let chain_id = chain["chain_id"].as_u64().unwrap();
    wait_until("no chain flow left", Duration::from_secs(20), || {
        t.ovs.iter().all(|o| chain_left(o, chain_id).is_empty())
    });
}

#[test]
fn an_ipv6_chain_pops_its_label_to_ipv6() {
    if !testbed::require_root("sfc_e2e") {
        return;
    }
    let s = setup();
    let t = &s.t;
    let sf = Sf::new(t, &s.net, 1, "sf1");
    sf.forward_tcp6("eth0", "eth1");
    let group = sfc(
        t,
        "port_pair_groups",
        "port_pair_group",
        json!({"port_pairs": [sf.pair]}),
    );
    let fc = sfc(
        t,
        "flow_classifiers",
        "flow_classifier",
        json!({"ethertype": "IPv6", "protocol": "tcp", "destination_port_range_min": 8081,
            "destination_port_range_max": 8081, "logical_source_port": s.client_port}),
    );
    sfc(
        t,
        "port_chains",
        "port_chain",
        json!({"port_pair_groups": [group], "flow_classifiers": [fc]}),
    );
    let url = format!("http://[{}]:8081/", s.server_ip6);
    wait_until(
        "HTTP over IPv6 through the SF",
        Duration::from_secs(20),
        || get(&s.client, &url) && sf.forwarded("eth0") > 0,
    );
    s.client
        .ns
        .exec(["ip6tables", "-A", "OUTPUT", "-p", "tcp", "--dport", "8081"])
        .expect("ip6tables counter");
    let before = sf.forwarded("eth0");
    for _ in 0..5 {
        assert!(get(&s.client, &url), "HTTP over IPv6 through the chain");
    }
    let sent: u64 = (s.client.ns)
        .exec(["ip6tables", "-nvxL", "OUTPUT"])
        .unwrap_or_default()
        .lines()
        .find(|l| l.contains("dpt:8081"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(sent >= 25, "5 connections: {sent} packets");
    assert_eq!(sf.forwarded("eth0") - before, sent, "{}", t.dumps());
    let to = format!("[{}]:8081", s.server_ip6);
    let r = common::trace::delivered(&t.srv, &t.ovs[0], &s.client_port, &to, None);
    assert!(r.verdict.contains("sf1-in"), "{}", r.out);
    // IPv4 to the same port is not this chain's.
    let v4 = format!("http://{}:8081/", s.server_ip);
    let before = sf.forwarded("eth0");
    assert!(get(&s.client, &v4), "IPv4 to 8081");
    assert_eq!(sf.forwarded("eth0"), before, "IPv4 bypasses the IPv6 chain");
}

#[test]
fn full_size_frames_reach_a_service_function_on_another_host_on_every_tunnel_type() {
    if !testbed::require_root("sfc_e2e") {
        return;
    }
    for kind in ["geneve", "vxlan", "gre"] {
        let s = setup_on(kind);
        let t = &s.t;
        let sf = Sf::new(t, &s.net, 1, "sf1");
        let group = sfc(
            t,
            "port_pair_groups",
            "port_pair_group",
            json!({"port_pairs": [sf.pair]}),
        );
        let fc = s.classifier(80, false);
        let body = json!({"port_chain": {"port_pair_groups": [group], "flow_classifiers": [fc]}});
        let max = s.net["mtu"].as_u64().unwrap();
        // Geneve keeps room for the label at its largest MTU.
        let (st, v) = sfc_call(t, "POST", "port_chains", Some(body.clone()));
        if kind == "geneve" {
            assert_eq!(st, 201, "{kind}: {v}");
        } else {
            // At the largest MTU of the type, the label does not fit the underlay: OVS
            // would drop every full-size frame sent to the service function's host.
            assert_eq!(st, 400, "{kind}: {v}");
            let said = v["NeutronError"]["message"].as_str().unwrap_or_default();
            assert!(
                said.contains(&format!("at most {}", max - 4)),
                "{kind}: {v}"
            );
            // Four bytes lower (the VMs told, as DHCP would), it passes whole.
            let net_id = s.net["id"].as_str().unwrap();
            let (st, v) = t.srv.call(
                "PUT",
                &format!("/v2.0/networks/{net_id}"),
                Some(json!({"network": {"mtu": max - 4}})),
            );
            assert_eq!(st, 200, "{v}");
            let net = &v["network"];
            for vm in [&s.client, &s.server] {
                mtu(vm, net, "eth0");
            }
            for dev in ["eth0", "eth1"] {
                mtu(&sf.vm, net, dev);
            }
            let (st, v) = sfc_call(t, "POST", "port_chains", Some(body));
            assert_eq!(st, 201, "{kind}: {v}");
        }
        s.steered(&sf);
        let big = "x".repeat(max as usize * 3);
        let before = sf.forwarded("eth0");
        let posted = s.client.ns.exec([
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "--data",
            &big,
            &s.url(80),
        ]);
        assert!(posted.is_ok(), "{kind}: full-size frames through the chain");
        assert!(sf.forwarded("eth0") > before + 3, "{kind}: through the SF");
        let to = format!("{}:80", s.server_ip);
        let r = common::trace::delivered(&t.srv, &t.ovs[0], &s.client_ip, &to, None);
        assert!(
            r.verdict.contains("sf1-in") && r.verdict.contains(&format!("via {kind}")),
            "{}",
            r.out
        );
    }
}

#[test]
fn a_two_hop_chain_crosses_between_the_hosts_with_each_hops_label() {
    if !testbed::require_root("sfc_e2e") {
        return;
    }
    let s = setup();
    let t = &s.t;
    // Client (A) → sf1 (B, hop 0's label) → sf2 (A, hop 1's label) → server (B).
    let sf1 = Sf::new(t, &s.net, 1, "sf1");
    let sf2 = Sf::new(t, &s.net, 0, "sf2");
    let groups: Vec<String> = [&sf1, &sf2]
        .iter()
        .map(|sf| {
            sfc(
                t,
                "port_pair_groups",
                "port_pair_group",
                json!({"port_pairs": [sf.pair]}),
            )
        })
        .collect();
    let fc = s.classifier(80, false);
    sfc(
        t,
        "port_chains",
        "port_chain",
        json!({"port_pair_groups": groups, "flow_classifiers": [fc]}),
    );
    s.steered(&sf2);
    let before = (
        sf1.forwarded("eth0"),
        sf2.forwarded("eth0"),
        http_sent(&s.client),
    );
    for _ in 0..5 {
        assert!(get(&s.client, &s.url(80)), "HTTP through two hops");
    }
    let sent = http_sent(&s.client) - before.2;
    assert!(sent >= 25, "5 connections: {sent} packets");
    assert_eq!(
        sf1.forwarded("eth0") - before.0,
        sent,
        "hop 0\n{}",
        t.dumps()
    );
    assert_eq!(
        sf2.forwarded("eth0") - before.1,
        sent,
        "hop 1\n{}",
        t.dumps()
    );
    // Hop 0 from the client's host, and hop 1 from sf1's egress port on host b.
    let to = format!("{}:80", s.server_ip);
    let r = common::trace::delivered(&t.srv, &t.ovs[0], &s.client_ip, &to, None);
    assert!(r.verdict.contains("sf1-in"), "{}", r.out);
    common::trace::agrees(&t.srv, &t.ovs[1], "sf1-out", &to, None);
}
