//! Service function chaining (`sfc`, `flow_classifier`), in process: networking-sfc's
//! defaults and shapes, its refusals (a pair twice, ports of two devices, a pair in two
//! groups, classifiers in conflict or in use, two chains on the same groups or meeting
//! classifiers, chain ids, a symmetric chain's classifier without a destination port),
//! what this datapath adds (one network, no loop, a port in one hop only), and the
//! chain object the hosts compile following group changes.

mod common;

use common::{ADMIN, Cloud, OTHER, OWNER, kind, message};
use model::PortChain;
use serde_json::{Value, json};

async fn network(c: &Cloud, name: &str) -> String {
    let body = json!({"network": {"name": name, "project_id": "p1"}});
    c.made(ADMIN, "networks", body).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn subnet(c: &Cloud, net: &str, cidr: &str) {
    let body = json!({"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4}});
    c.made(OWNER, "subnets", body).await;
}

async fn port(c: &Cloud, net: &str, device: &str) -> String {
    let body = json!({"port": {"network_id": net, "device_id": device}});
    c.made(OWNER, "ports", body).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn post(c: &Cloud, coll: &str, body: Value) -> (u16, Value) {
    c.send(OWNER, "POST", &format!("/v2.0/sfc/{coll}"), body)
        .await
}

async fn pair(c: &Cloud, ingress: &str, egress: &str) -> String {
    let body = json!({"port_pair": {"ingress": ingress, "egress": egress}});
    id(&c.made(OWNER, "sfc/port_pairs", body).await)
}

async fn http_classifier(c: &Cloud, source: &str, port: u16) -> String {
    let body = json!({"flow_classifier": {"logical_source_port": source, "protocol": "TCP",
        "destination_port_range_min": port, "destination_port_range_max": port}});
    id(&c.made(OWNER, "sfc/flow_classifiers", body).await)
}

/// The chain object as the store has it (what the hosts compile).
async fn stored(c: &Cloud, id: &str) -> PortChain {
    c.api.db.fetch::<PortChain>(id).await.unwrap().0
}

#[tokio::test]
async fn a_chain_from_pairs_groups_and_classifiers() {
    let c = Cloud::new();
    let net = network(&c, "n").await;
    subnet(&c, &net, "10.0.0.0/24").await;
    let src = port(&c, &net, "vm-a").await;
    let (sf_in, sf_out) = (port(&c, &net, "sf1").await, port(&c, &net, "sf1").await);
    let (sf2_in, sf2_out) = (port(&c, &net, "sf2").await, port(&c, &net, "sf2").await);

    // Port pairs: defaults, then networking-sfc's refusals.
    let pp = c
        .made(
            OWNER,
            "sfc/port_pairs",
            json!({"port_pair": {"ingress": sf_in, "egress": sf_out, "name": "pp1"}}),
        )
        .await;
    assert_eq!(
        pp["service_function_parameters"],
        json!({"correlation": null, "weight": 1})
    );
    assert_eq!(pp["ingress"], json!(sf_in));
    let pp1 = id(&pp);
    let (st, v) = post(
        &c,
        "port_pairs",
        json!({"port_pair": {"ingress": sf_in, "egress": sf_out}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (400, "PortPairIngressEgressInUse"), "{v}");
    let (st, v) = post(
        &c,
        "port_pairs",
        json!({"port_pair": {"ingress": sf_in, "egress": sf2_out}}),
    )
    .await;
    assert_eq!(
        (st, kind(&v)),
        (400, "PortPairIngressEgressDifferentHost"),
        "{v}"
    );
    let nobody = port(&c, &net, "").await;
    let (st, v) = post(
        &c,
        "port_pairs",
        json!({"port_pair": {"ingress": nobody, "egress": sf_out}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (400, "PortPairIngressNoHost"), "{v}");
    let gone = "6b7c4a2e-0000-4000-8000-000000000000";
    let (st, v) = post(
        &c,
        "port_pairs",
        json!({"port_pair": {"ingress": gone, "egress": sf_out}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (404, "PortPairPortNotFound"), "{v}");
    let (st, v) = post(
        &c,
        "port_pairs",
        json!({"port_pair": {"ingress": sf2_in, "egress": sf2_out,
            "service_function_parameters": {"weight": -1}}}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = post(&c, "port_pairs", json!({"port_pair": {"ingress": sf2_in}})).await;
    assert_eq!(st, 400, "egress is required: {v}");
    let pp2 = id(&c
        .made(
            OWNER,
            "sfc/port_pairs",
            json!({"port_pair": {"ingress": sf2_in, "egress": sf2_out,
                "service_function_parameters": {"weight": 3}}}),
        )
        .await);

    // Groups: a pair joins one group only.
    let g = c
        .made(
            OWNER,
            "sfc/port_pair_groups",
            json!({"port_pair_group": {"port_pairs": [pp1]}}),
        )
        .await;
    assert_eq!(g["group_id"], 1);
    assert_eq!(
        g["port_pair_group_parameters"],
        json!({"lb_fields": [], "ppg_n_tuple_mapping":
            {"ingress_n_tuple": {}, "egress_n_tuple": {}}})
    );
    let g1 = id(&g);
    let (st, v) = post(
        &c,
        "port_pair_groups",
        json!({"port_pair_group": {"port_pairs": [pp1]}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (409, "PortPairInUse"), "{v}");
    let (st, v) = post(
        &c,
        "port_pair_groups",
        json!({"port_pair_group": {"port_pair_group_parameters":
            {"ppg_n_tuple_mapping": {"ingress_n_tuple": {"bogus": 1}}}}}),
    )
    .await;
    assert_eq!(
        (st, kind(&v)),
        (400, "PPGParametersInvalidNTupleMappingParameter"),
        "{v}"
    );
    let (st, v) = c
        .call(
            OWNER,
            "DELETE",
            &format!("/v2.0/sfc/port_pairs/{pp1}"),
            None,
        )
        .await;
    assert_eq!((st, kind(&v)), (409, "PortPairInUse"), "{v}");

    // Classifiers: networking-sfc's normalisation and checks.
    let fc = c
        .made(
            OWNER,
            "sfc/flow_classifiers",
            json!({"flow_classifier": {"logical_source_port": src, "protocol": "TCP",
                "destination_port_range_min": 80, "destination_port_range_max": 80}}),
        )
        .await;
    assert_eq!(fc["ethertype"], "IPv4");
    assert_eq!(fc["protocol"], "tcp");
    assert_eq!(fc["source_ip_prefix"], Value::Null);
    assert_eq!(fc["l7_parameters"], json!({}));
    let fc1 = id(&fc);
    for (body, want) in [
        (
            json!({"logical_source_port": src, "protocol": "tcp",
                "destination_port_range_min": 90, "destination_port_range_max": 80}),
            "FlowClassifierInvalidPortRange",
        ),
        (
            json!({"logical_source_port": src, "destination_port_range_min": 80}),
            "FlowClassifierProtocolRequiredWithPorts",
        ),
        (
            json!({"logical_source_port": src, "protocol": "sctp"}),
            "FlowClassifierInvalidProtocol",
        ),
        (
            json!({"logical_source_port": src, "ethertype": "IPv5"}),
            "FlowClassifierInvalidEthertype",
        ),
        (
            json!({"logical_source_port": src, "protocol": "udp",
                "source_port_range_min": 70000}),
            "FlowClassifierInvalidPortValue",
        ),
        (
            json!({"logical_source_port": src, "ethertype": "IPv6",
                "source_ip_prefix": "10.0.0.0/8"}),
            "FlowClassifierIpPrefixFormatConflictWithEthertype",
        ),
        (
            json!({"logical_source_port": src, "protocol": "tcp"}),
            "FlowClassifierInConflict",
        ),
        (
            json!({"logical_source_port": src, "l7_parameters": {"url": "x"}}),
            "FlowClassifierInvalidL7Parameter",
        ),
        (json!({"protocol": "udp"}), "FlowClassifierBadRequest"),
    ] {
        let (st, v) = post(&c, "flow_classifiers", json!({ "flow_classifier": body })).await;
        assert_eq!((st, kind(&v)), (400, want), "{v}");
    }
    let (st, v) = post(
        &c,
        "flow_classifiers",
        json!({"flow_classifier": {"logical_source_port": gone}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (404, "FlowClassifierPortNotFound"), "{v}");
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/sfc/flow_classifiers/{fc1}"),
            json!({"flow_classifier": {"protocol": "udp"}}),
        )
        .await;
    assert_eq!(st, 400, "classifiers are create-only: {v}");

    // The chain: defaults, and the resolved object the hosts compile.
    let pc = c
        .made(
            OWNER,
            "sfc/port_chains",
            json!({"port_chain": {"port_pair_groups": [g1], "flow_classifiers": [fc1]}}),
        )
        .await;
    assert_eq!(pc["chain_id"], 1);
    assert_eq!(
        pc["chain_parameters"],
        json!({"correlation": "mpls", "symmetric": false})
    );
    let pc1 = id(&pc);
    let s = stored(&c, &pc1).await;
    assert_eq!(s.network_id, net, "the chain's topic is its network");
    assert_eq!(s.path.len(), 1);
    assert_eq!(s.path[0].pairs[0].ingress, sf_in);
    assert_eq!(s.classifiers[0].destination_port_range_min, Some(80));

    // Growing the group is written into the chain.
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/sfc/port_pair_groups/{g1}"),
            json!({"port_pair_group": {"port_pairs": [pp1, pp2]}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let s = stored(&c, &pc1).await;
    let weights: Vec<u32> = s.path[0].pairs.iter().map(|p| p.weight).collect();
    assert_eq!(weights, vec![1, 3]);

    // In use: the classifier, the group; a second chain meets the first.
    for (path, want) in [
        (format!("flow_classifiers/{fc1}"), "FlowClassifierInUse"),
        (format!("port_pair_groups/{g1}"), "PortPairGroupInUse"),
    ] {
        let (st, v) = c
            .call(OWNER, "DELETE", &format!("/v2.0/sfc/{path}"), None)
            .await;
        assert_eq!((st, kind(&v)), (409, want), "{v}");
    }
    let g2 = id(&c
        .made(
            OWNER,
            "sfc/port_pair_groups",
            json!({"port_pair_group": {}}),
        )
        .await);
    let (st, v) = post(
        &c,
        "port_chains",
        json!({"port_chain": {"port_pair_groups": [g2], "flow_classifiers": [fc1]}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (409, "FlowClassifierInUse"), "{v}");
    let other_src = port(&c, &net, "vm-b").await;
    let fc2 = http_classifier(&c, &other_src, 80).await;
    let (st, v) = post(
        &c,
        "port_chains",
        json!({"port_chain": {"port_pair_groups": [g1], "flow_classifiers": [fc2]}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (409, "InvalidPortPairGroups"), "{v}");
    let (st, v) = post(
        &c,
        "port_chains",
        json!({"port_chain": {"port_pair_groups": [g2], "flow_classifiers": [fc2]}}),
    )
    .await;
    assert_eq!(
        (st, kind(&v)),
        (400, "PortChainFlowClassifierInConflict"),
        "{v}"
    );
    let (st, v) = post(
        &c,
        "port_chains",
        json!({"port_chain": {"port_pair_groups": [g2], "chain_id": 1}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (400, "PortChainChainIdInConflict"), "{v}");
    let (st, v) = post(
        &c,
        "port_chains",
        json!({"port_chain": {"port_pair_groups": []}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (400, "PortPairGroupNotSpecified"), "{v}");
    let (st, v) = post(
        &c,
        "port_chains",
        json!({"port_chain": {"port_pair_groups": [gone]}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (404, "PortPairGroupNotFound"), "{v}");
    let (st, v) = post(
        &c,
        "port_chains",
        json!({"port_chain": {"port_pair_groups": [g2], "chain_id": 65536}}),
    )
    .await;
    assert_eq!(st, 400, "{v}");

    // Another project sees none of it.
    let (st, _) = c
        .call(OTHER, "GET", &format!("/v2.0/sfc/port_chains/{pc1}"), None)
        .await;
    assert_eq!(st, 404);

    // The chain goes; its classifier and group are free again, in that order.
    let (st, v) = c
        .call(
            OWNER,
            "DELETE",
            &format!("/v2.0/sfc/port_chains/{pc1}"),
            None,
        )
        .await;
    assert_eq!(st, 204, "{v}");
    for path in [
        format!("flow_classifiers/{fc1}"),
        format!("port_pair_groups/{g1}"),
        format!("port_pairs/{pp1}"),
    ] {
        let (st, v) = c
            .call(OWNER, "DELETE", &format!("/v2.0/sfc/{path}"), None)
            .await;
        assert_eq!(st, 204, "{path}: {v}");
    }
    let (st, v) = c
        .call(OWNER, "GET", &format!("/v2.0/sfc/port_pairs/{pp1}"), None)
        .await;
    assert_eq!((st, kind(&v)), (404, "PortPairNotFound"), "{v}");
}

#[tokio::test]
async fn chains_this_datapath_cannot_steer_are_refused() {
    let c = Cloud::new();
    let net = network(&c, "n").await;
    let other_net = network(&c, "m").await;
    let src = port(&c, &net, "vm-a").await;
    let (sf_in, sf_out) = (port(&c, &net, "sf").await, port(&c, &net, "sf").await);
    let far_in = port(&c, &other_net, "far").await;
    let far_out = port(&c, &other_net, "far").await;
    let pp = pair(&c, &sf_in, &sf_out).await;
    let far = pair(&c, &far_in, &far_out).await;
    let g = |pairs: Vec<String>| json!({"port_pair_group": {"port_pairs": pairs}});
    let g1 = id(&c.made(OWNER, "sfc/port_pair_groups", g(vec![pp])).await);
    let g2 = id(&c.made(OWNER, "sfc/port_pair_groups", g(vec![far])).await);
    let fc = http_classifier(&c, &src, 80).await;
    // A service function on another network than the source.
    let (st, v) = post(
        &c,
        "port_chains",
        json!({"port_chain": {"port_pair_groups": [g2], "flow_classifiers": [fc]}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (400, "InvalidInput"), "{v}");
    assert!(message(&v).contains("one network"));
    // A chain whose service function port is its own source loops.
    let looped = http_classifier(&c, &sf_out, 8080).await;
    let (st, v) = post(
        &c,
        "port_chains",
        json!({"port_chain": {"port_pair_groups": [g1], "flow_classifiers": [looped]}}),
    )
    .await;
    assert_eq!((st, kind(&v)), (400, "InvalidInput"), "{v}");
    assert!(message(&v).contains("loop"));
    // What was refused marked nothing: the same classifier and group still make a chain.
    let pc = c
        .made(
            OWNER,
            "sfc/port_chains",
            json!({"port_chain": {"port_pair_groups": [g1], "flow_classifiers": [fc],
                "chain_id": 4242}}),
        )
        .await;
    assert_eq!(pc["chain_id"], 4242);
    let (_, v) = c.call(OWNER, "GET", "/v2.0/extensions/sfc", None).await;
    assert_eq!(v["extension"]["alias"], "sfc");
    let (_, v) = c
        .call(OWNER, "GET", "/v2.0/extensions/flow_classifier", None)
        .await;
    assert_eq!(v["extension"]["alias"], "flow_classifier");
}

#[tokio::test]
async fn symmetric_chains_and_ports_that_would_loop() {
    let c = Cloud::new();
    let net = network(&c, "n").await;
    subnet(&c, &net, "10.0.0.0/24").await;
    let (src, dst) = (port(&c, &net, "vm-a").await, port(&c, &net, "vm-b").await);
    let (sf_in, sf_out) = (port(&c, &net, "sf").await, port(&c, &net, "sf").await);
    let sf_in2 = port(&c, &net, "sf").await;
    let pp = pair(&c, &sf_in, &sf_out).await;
    let g = |pairs: Vec<String>| json!({"port_pair_group": {"port_pairs": pairs}});
    let g1 = id(&c
        .made(OWNER, "sfc/port_pair_groups", g(vec![pp.clone()]))
        .await);
    let chain = |groups: Vec<&str>, fc: &str, symmetric: bool| {
        json!({"port_chain": {"port_pair_groups": groups, "flow_classifiers": [fc],
            "chain_parameters": {"symmetric": symmetric}}})
    };
    // networking-sfc's OVS driver: a symmetric chain needs the destination port.
    let no_dst = http_classifier(&c, &src, 80).await;
    let (st, v) = post(&c, "port_chains", chain(vec![&g1], &no_dst, true)).await;
    assert_eq!((st, kind(&v)), (400, "SfcBadRequest"), "{v}");
    assert_eq!(
        message(&v),
        format!(
            "FlowClassifier {no_dst} does not setlogical_destination_port. \
             logical_destination_port needed when symmetric has been set. Please recreate \
             FlowClassifier with logical_destination_port and destination_ip_prefix."
        )
    );
    // Its answers start at the destination port: a service function port there loops.
    let to_sf = |port: u16, d: &str| {
        json!({"flow_classifier": {"logical_source_port": src, "logical_destination_port": d,
            "protocol": "tcp", "destination_port_range_min": port,
            "destination_port_range_max": port}})
    };
    let fc = id(&c
        .made(OWNER, "sfc/flow_classifiers", to_sf(81, &sf_in))
        .await);
    let (st, v) = post(&c, "port_chains", chain(vec![&g1], &fc, true)).await;
    assert_eq!((st, kind(&v)), (400, "InvalidInput"), "{v}");
    assert!(message(&v).contains("logical destination port"), "{v}");
    assert!(message(&v).contains("loop"), "{v}");
    // Not symmetric, the same classifier is fine (the answers are not chained).
    let pc = c
        .made(OWNER, "sfc/port_chains", chain(vec![&g1], &fc, false))
        .await;
    let (st, _) = c
        .call(
            OWNER,
            "DELETE",
            &format!("/v2.0/sfc/port_chains/{}", id(&pc)),
            None,
        )
        .await;
    assert_eq!(st, 204);
    // A port in two hops.
    let shared = pair(&c, &sf_in2, &sf_out).await;
    let g2 = id(&c.made(OWNER, "sfc/port_pair_groups", g(vec![shared])).await);
    let (st, v) = post(&c, "port_chains", chain(vec![&g1, &g2], &no_dst, false)).await;
    assert_eq!((st, kind(&v)), (400, "InvalidInput"), "{v}");
    assert!(message(&v).contains("two port pair groups"), "{v}");
    // A symmetric chain with its destination port: stored as such.
    let fc = id(&c.made(OWNER, "sfc/flow_classifiers", to_sf(82, &dst)).await);
    let pc = c
        .made(OWNER, "sfc/port_chains", chain(vec![&g1], &fc, true))
        .await;
    assert_eq!(pc["chain_parameters"]["symmetric"], json!(true), "{pc}");
    assert!(stored(&c, &id(&pc)).await.symmetric);
    // A group change that would make a chain loop is refused too: a pair whose port is
    // the chain's source, added to its group.
    let looping = pair(&c, &src, &src).await;
    let (st, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/sfc/port_pair_groups/{g1}"),
            g(vec![pp, looping]),
        )
        .await;
    assert_eq!((st, kind(&v)), (400, "InvalidInput"), "{v}");
    assert!(message(&v).contains("loop"), "{v}");
}

#[tokio::test]
async fn a_chain_needs_room_for_its_label_on_the_underlay() {
    let c = Cloud::new();
    let body = json!({"network": {"name": "x", "project_id": "p1",
        "provider:network_type": "vxlan"}});
    let net = id(&c.made(ADMIN, "networks", body).await);
    subnet(&c, &net, "10.0.0.0/24").await;
    let src = port(&c, &net, "vm-a").await;
    let (sf_in, sf_out) = (port(&c, &net, "sf").await, port(&c, &net, "sf").await);
    let pp = pair(&c, &sf_in, &sf_out).await;
    let g = json!({"port_pair_group": {"port_pairs": [pp]}});
    let g = id(&c.made(OWNER, "sfc/port_pair_groups", g).await);
    let fc = http_classifier(&c, &src, 80).await;
    let chain = json!({"port_chain": {"port_pair_groups": [g], "flow_classifiers": [fc]}});
    let (st, v) = post(&c, "port_chains", chain.clone()).await;
    assert_eq!((st, kind(&v)), (400, "InvalidInput"), "{v}");
    assert!(message(&v).contains("MTU must be at most 1446"), "{v}");
    let (st, v) = c
        .send(
            ADMIN,
            "PUT",
            &format!("/v2.0/networks/{net}"),
            json!({"network": {"mtu": 1446}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = post(&c, "port_chains", chain).await;
    assert_eq!(st, 201, "{v}");
}

#[tokio::test]
async fn a_symmetric_chains_answers_meet_no_other_chains_classifier() {
    let c = Cloud::new();
    let net = network(&c, "n").await;
    subnet(&c, &net, "10.0.0.0/24").await;
    let (a, b) = (port(&c, &net, "vm-a").await, port(&c, &net, "vm-b").await);
    let mut groups = Vec::new();
    for sf in ["sf1", "sf2"] {
        let (i, o) = (port(&c, &net, sf).await, port(&c, &net, sf).await);
        let pp = pair(&c, &i, &o).await;
        let g = json!({"port_pair_group": {"port_pairs": [pp]}});
        groups.push(id(&c.made(OWNER, "sfc/port_pair_groups", g).await));
    }
    let classifier = |from: &str, to: &str, sport: u16, dport: u16| {
        json!({"flow_classifier": {"logical_source_port": from,
            "logical_destination_port": to, "protocol": "tcp",
            "source_port_range_min": sport, "source_port_range_max": sport,
            "destination_port_range_min": dport, "destination_port_range_max": dport}})
    };
    let fc = id(&c
        .made(OWNER, "sfc/flow_classifiers", classifier(&a, &b, 1000, 80))
        .await);
    let chain = |g: &str, fc: &str, symmetric: bool| {
        json!({"port_chain": {"port_pair_groups": [g], "flow_classifiers": [fc],
            "chain_parameters": {"symmetric": symmetric}}})
    };
    let first = c
        .made(OWNER, "sfc/port_chains", chain(&groups[0], &fc, true))
        .await;
    // b's answers from port 80 to port 1000 are the first chain's reverse path.
    let back = id(&c
        .made(OWNER, "sfc/flow_classifiers", classifier(&b, &a, 80, 1000))
        .await);
    let (st, v) = post(&c, "port_chains", chain(&groups[1], &back, false)).await;
    assert_eq!(
        (st, kind(&v)),
        (400, "PortChainFlowClassifierInConflict"),
        "{v}"
    );
    assert!(message(&v).contains(&id(&first)), "{v}");
    // To another port they are not.
    let other = id(&c
        .made(OWNER, "sfc/flow_classifiers", classifier(&b, &a, 80, 2000))
        .await);
    c.made(OWNER, "sfc/port_chains", chain(&groups[1], &other, false))
        .await;
}
