//! Random request bodies and query strings against every collection, in process: the API
//! must answer each with a Neutron error or a success, never a panic or a 500.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use neutron_api::{Api, ApiConfig, router};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

const KEYS: &[&str] = &[
    "ingress",
    "egress",
    "service_function_parameters",
    "port_pairs",
    "port_pair_group_parameters",
    "source_port_range_min",
    "destination_port_range_max",
    "source_ip_prefix",
    "logical_source_port",
    "l7_parameters",
    "port_pair_groups",
    "flow_classifiers",
    "chain_parameters",
    "chain_id",
    "tap_service_id",
    "source_port",
    "direction",
    "vlan_filter",
    "name",
    "network_id",
    "subnet_id",
    "port_id",
    "cidr",
    "ip_version",
    "gateway_ip",
    "fixed_ips",
    "ip_address",
    "mac_address",
    "allocation_pools",
    "start",
    "end",
    "security_groups",
    "allowed_address_pairs",
    "host_routes",
    "destination",
    "nexthop",
    "dns_nameservers",
    "external_gateway_info",
    "routes",
    "floating_network_id",
    "protocol",
    "direction",
    "ethertype",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "security_group_id",
    "tags",
    "mtu",
    "provider:network_type",
    "provider:segmentation_id",
    "provider:physical_network",
    "binding:profile",
    "extra_dhcp_opts",
    "opt_name",
    "opt_value",
    "enable_dhcp",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "admin_state_up",
    "availability_zone_hints",
    "flavor_id",
    "project_id",
    "object_type",
    "object_id",
    "action",
    "target_tenant",
    "prefixes",
    "min_prefixlen",
    "max_prefixlen",
    "default_prefixlen",
    "default_quota",
    "prefixlen",
    "subnetpool_id",
    "use_default_subnetpool",
    "is_default",
    "shared",
    "address_scope_id",
    "internal_port_id",
    "internal_ip_address",
    "internal_port",
    "external_port",
    "description",
    "addresses",
    "remote_address_group_id",
    "used_in_default_sg",
    "used_in_non_default_sg",
    "stateful",
    "dns_name",
    "dns_domain",
    "dns_assignment",
    "sub_ports",
    "segmentation_type",
    "segmentation_id",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (0u32..70000).prop_map(|n| json!(n)),
        "[a-z0-9:./-]{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("10.0.0.0/24"),
            Just("10.0.0.5"),
            Just("fd00::/64"),
            Just("fa:16:3e:00:00:01"),
            Just("tcp"),
            Just("ingress"),
            Just("IPv6"),
            Just("slaac"),
            Just("vlan"),
            Just("0.0.0.0/0"),
            Just("network"),
            Just("security_group"),
            Just("access_as_shared"),
            Just("access_as_external"),
            Just("*"),
            Just("10.0.0.0/8"),
            Just("28"),
            Just("PARENT"),
            Just("10.0.0.7/24"),
            Just("vm1"),
            Just("VM-1.openstacklocal."),
            Just("example.org."),
            Just("-bad..name_"),
            Just("inherit"),
            Just("reject"),
            Just("22:23"),
            Just("0b6f5c1e-8c77-4f43-9d3e-6c3f0b3e2a11"),
        ]
        .prop_map(|s| json!(s)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

const TARGETS: &[(&str, &str)] = &[
    ("networks", "network"),
    ("subnets", "subnet"),
    ("ports", "port"),
    ("routers", "router"),
    ("floatingips", "floatingip"),
    ("security-groups", "security_group"),
    ("security-group-rules", "security_group_rule"),
    ("rbac-policies", "rbac_policy"),
    ("subnetpools", "subnetpool"),
    ("address-scopes", "address_scope"),
    // `{fip}`: a floating IP made for the case, with a port its forwardings may use.
    ("floatingips/{fip}/port_forwardings", "port_forwarding"),
    ("address-groups", "address_group"),
    ("trunks", "trunk"),
    ("fwaas/firewall_rules", "firewall_rule"),
    ("fwaas/firewall_policies", "firewall_policy"),
    ("fwaas/firewall_groups", "firewall_group"),
    ("sfc/port_pairs", "port_pair"),
    ("sfc/port_pair_groups", "port_pair_group"),
    ("sfc/flow_classifiers", "flow_classifier"),
    ("sfc/port_chains", "port_chain"),
    ("taas/tap_services", "tap_service"),
    ("taas/tap_flows", "tap_flow"),
    (
        "default-security-group-rules",
        "default_security_group_rule",
    ),
];

/// An external network reached by a router from a subnet with a port on it, and a floating
/// IP of that network: `(floating IP id, port id)`.
async fn forwarding_world(app: &axum::Router, net_id: &Value) -> (String, Value) {
    let post = |coll: &'static str, body: Value| async move {
        send(app, "POST", &format!("/v2.0/{coll}"), body.to_string())
            .await
            .1
    };
    let ext = post("networks", json!({"network": {"router:external": true}})).await;
    let ext_id = ext["network"]["id"].clone();
    post(
        "subnets",
        json!({"subnet": {"network_id": ext_id, "cidr": "203.0.113.0/24", "ip_version": 4}}),
    )
    .await;
    let sub = post(
        "subnets",
        json!({"subnet": {"network_id": net_id, "cidr": "10.0.0.0/24", "ip_version": 4}}),
    )
    .await;
    let router = post(
        "routers",
        json!({"router": {"external_gateway_info": {"network_id": ext_id}}}),
    )
    .await;
    let rid = router["router"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let iface = json!({"subnet_id": sub["subnet"]["id"]}).to_string();
    send(
        app,
        "PUT",
        &format!("/v2.0/routers/{rid}/add_router_interface"),
        iface,
    )
    .await;
    let port = post("ports", json!({"port": {"network_id": net_id}})).await;
    let fip = post(
        "floatingips",
        json!({"floatingip": {"floating_network_id": ext_id}}),
    )
    .await;
    let fip_id = fip["floatingip"]["id"].as_str().unwrap_or("x").to_string();
    (fip_id, port["port"]["id"].clone())
}

async fn send(app: &axum::Router, method: &str, uri: &str, body: String) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

fn check(status: StatusCode, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!(!status.is_server_error(), "{status}: {body}");
    if status.is_client_error() {
        prop_assert!(body["NeutronError"]["type"].is_string(), "{status}: {body}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bodies_never_fail_the_server(which in 0..TARGETS.len(), attrs in value(), wrap in any::<bool>(), raw in "[ -~]{0,40}") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = nbdb::open(&format!("embedded:{}", dir.path().join("nb.redb").display())).expect("store");
            let app = router(Api::new(store, ApiConfig {
            // These requests carry no project: they act as the default project's admin.
            noauth_default_admin: true,
            ..ApiConfig::default()
        }
        .check().expect("config")));
            let (coll, res) = TARGETS[which];
            // A network and subnet to refer to, so deeper validation paths are reached.
            let (_, net) = send(&app, "POST", "/v2.0/networks", json!({"network": {"name": "n"}}).to_string()).await;
            let mut coll = coll.to_string();
            let mut port_id = Value::Null;
            if coll.contains("{fip}") {
                let (fip, port) = forwarding_world(&app, &net["network"]["id"]).await;
                coll = coll.replace("{fip}", &fip);
                port_id = port;
            }
            let net_id = net["network"]["id"].clone();
            // A scope and a pool in it, for subnets and pools to name.
            let (_, scope) = send(&app, "POST", "/v2.0/address-scopes", json!({"address_scope": {"name": "s", "ip_version": 4}}).to_string()).await;
            let (_, pool) = send(&app, "POST", "/v2.0/subnetpools", json!({"subnetpool": {"name": "p", "prefixes": ["10.0.0.0/8"], "address_scope_id": scope["address_scope"]["id"]}}).to_string()).await;
            let mut attrs = attrs;
            if let Value::Object(m) = &mut attrs {
                for (k, v) in [
                    ("network_id", &net_id),
                    ("object_id", &net_id),
                    ("subnetpool_id", &pool["subnetpool"]["id"]),
                    ("address_scope_id", &scope["address_scope"]["id"]),
                ] {
                    if m.contains_key(k) {
                        m.insert(k.into(), v.clone());
                    }
                }
                // A trunk's parent: a port that exists.
                if coll == "trunks" && m.contains_key("port_id") {
                    let (_, p) = send(&app, "POST", "/v2.0/ports", json!({"port": {"network_id": net_id}}).to_string()).await;
                    m.insert("port_id".into(), p["port"]["id"].clone());
                }
                if m.contains_key("internal_port_id") && !port_id.is_null() {
                    m.insert("internal_port_id".into(), port_id.clone());
                }
            }
            let body = if wrap { json!({ res: attrs }).to_string() } else { attrs.to_string() };
            let (st, v) = send(&app, "POST", &format!("/v2.0/{coll}"), body.clone()).await;
            check(st, &v)?;
            // A forwarding made is then updated with the same body (reaching its checks).
            let put_id = match v[res]["id"].as_str() {
                Some(id) if res == "port_forwarding" => id.to_string(),
                _ => "x".to_string(),
            };
            let (st, v) = send(&app, "POST", &format!("/v2.0/{coll}"), raw.clone()).await;
            check(st, &v)?;
            // The bulk form: the same attributes twice, and once beside junk.
            let plural = coll.replace('-', "_");
            let bulk = json!({ plural.as_str(): [attrs.clone(), attrs.clone()] }).to_string();
            let (st, v) = send(&app, "POST", &format!("/v2.0/{coll}"), bulk).await;
            check(st, &v)?;
            let bulk = json!({ plural.as_str(): [attrs.clone(), raw.clone()] }).to_string();
            let (st, v) = send(&app, "POST", &format!("/v2.0/{coll}"), bulk).await;
            check(st, &v)?;
            // The random text as query pairs, encoded so that any of it is a valid URI.
            let mut q = form_urlencoded::Serializer::new(String::new());
            for pair in raw.split('&') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                q.append_pair(k, v);
            }
            let query = q.finish();
            let (st, v) = send(&app, "GET", &format!("/v2.0/{coll}?{query}"), String::new()).await;
            check(st, &v)?;
            // The read-only collections take the same queries.
            for ro in ["availability_zones", "network-ip-availabilities", "service-providers"] {
                let (st, v) = send(&app, "GET", &format!("/v2.0/{ro}?{query}"), String::new()).await;
                check(st, &v)?;
            }
            let (st, v) = send(&app, "PUT", &format!("/v2.0/{coll}/{put_id}"), body.clone()).await;
            check(st, &v)?;
            // The address group actions, on a group that exists.
            if coll == "address-groups" {
                let ag = json!({"address_group": {"addresses": ["10.0.0.0/24"]}}).to_string();
                let (_, ag) = send(&app, "POST", "/v2.0/address-groups", ag).await;
                let id = ag["address_group"]["id"].as_str().unwrap_or("x").to_string();
                for action in ["add_addresses", "remove_addresses"] {
                    let uri = format!("/v2.0/address-groups/{id}/{action}");
                    let (st, v) = send(&app, "PUT", &uri, body.clone()).await;
                    check(st, &v)?;
                    let (st, v) = send(&app, "PUT", &uri, raw.clone()).await;
                    check(st, &v)?;
                }
            }
            // The policy actions, on a policy that exists, with a rule in it.
            if coll == "fwaas/firewall_policies" {
                let r = json!({"firewall_rule": {"protocol": "tcp"}}).to_string();
                let (_, r) = send(&app, "POST", "/v2.0/fwaas/firewall_rules", r).await;
                let p = json!({"firewall_policy": {"firewall_rules": [r["firewall_rule"]["id"]]}});
                let (_, p) = send(&app, "POST", "/v2.0/fwaas/firewall_policies", p.to_string()).await;
                let id = p["firewall_policy"]["id"].as_str().unwrap_or("x").to_string();
                for action in ["insert_rule", "remove_rule"] {
                    let uri = format!("/v2.0/fwaas/firewall_policies/{id}/{action}");
                    for b in [&body, &raw, &attrs.to_string()] {
                        let (st, v) = send(&app, "PUT", &uri, b.clone()).await;
                        check(st, &v)?;
                    }
                }
            }
            // The trunk actions, on a trunk that exists, with a subport to name.
            if coll == "trunks" {
                let port = |_: ()| json!({"port": {"network_id": net_id}}).to_string();
                let (_, parent) = send(&app, "POST", "/v2.0/ports", port(())).await;
                let (_, subport) = send(&app, "POST", "/v2.0/ports", port(())).await;
                let t = json!({"trunk": {"port_id": parent["port"]["id"], "sub_ports": [
                    {"port_id": subport["port"]["id"], "segmentation_type": "vlan", "segmentation_id": 7}]}});
                let (_, t) = send(&app, "POST", "/v2.0/trunks", t.to_string()).await;
                let id = t["trunk"]["id"].as_str().unwrap_or("x").to_string();
                for action in ["add_subports", "remove_subports"] {
                    let uri = format!("/v2.0/trunks/{id}/{action}");
                    for b in [&body, &raw, &json!({"sub_ports": attrs.clone()}).to_string()] {
                        let (st, v) = send(&app, "PUT", &uri, b.clone()).await;
                        check(st, &v)?;
                    }
                }
                let (st, v) = send(&app, "GET", &format!("/v2.0/trunks/{id}/get_subports?{query}"), String::new()).await;
                check(st, &v)?;
                let (st, v) = send(&app, "GET", &format!("/v2.0/ports?{query}"), String::new()).await;
                check(st, &v)?;
            }
            // An update of a real pool and scope, and the prefix operations.
            let pool_id = pool["subnetpool"]["id"].as_str().unwrap_or_default();
            let scope_id = scope["address_scope"]["id"].as_str().unwrap_or_default();
            for uri in [
                format!("/v2.0/subnetpools/{pool_id}"),
                format!("/v2.0/address-scopes/{scope_id}"),
                format!("/v2.0/subnetpools/{pool_id}/add_prefixes"),
                format!("/v2.0/subnetpools/{pool_id}/remove_prefixes"),
            ] {
                let (st, v) = send(&app, "PUT", &uri, body.clone()).await;
                check(st, &v)?;
                let (st, v) = send(&app, "PUT", &uri, attrs.to_string()).await;
                check(st, &v)?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}
