//! Version discovery (`GET /`, `GET /v2.0/`), the extension list, the service providers,
//! and JSON answers for unknown paths and methods.

use crate::Api;
use crate::error::ApiError;
use crate::listing::Query;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// Extensions that are really implemented, with a one-line description each.
pub const EXTENSIONS: &[(&str, &str, &str)] = &[
    (
        "address-group",
        "Address group",
        "Named sets of prefixes, the remote end of security group rules",
    ),
    (
        "address-scope",
        "Address scope",
        "Address scopes: subnet pools with unique prefixes; ipv4/ipv6_address_scope on networks",
    ),
    (
        "agent",
        "agent",
        "The agent management extension: controllers and API servers, alive or not",
    ),
    (
        "allowed-address-pairs",
        "Allowed Address Pairs",
        "Extra MAC/IP pairs a port may send from",
    ),
    (
        "availability_zone",
        "Availability Zone",
        "The zones host controllers report, and hints on networks and routers",
    ),
    (
        "bgp",
        "Neutron BGP Dynamic Routing Extension",
        "Advertise tenant networks and floating IPs (via their host) to BGP peers",
    ),
    (
        "bgp_4byte_asn",
        "4-byte ASN support for BGP",
        "AS numbers up to 4294967295 for speakers and peers",
    ),
    (
        "binding",
        "Port Binding",
        "binding:host_id, binding:vif_type, binding:profile",
    ),
    (
        "default-subnetpools",
        "Default Subnetpools",
        "is_default on subnet pools; use_default_subnetpool on subnets",
    ),
    (
        "dns-domain-ports",
        "dns_domain for ports",
        "Allows the DNS domain to be specified for a network port.",
    ),
    (
        "dns-integration",
        "DNS Integration",
        "Provides integration with DNS.",
    ),
    (
        "expose-port-forwarding-in-fip",
        "Expose port forwardings in floating IPs",
        "port_forwardings on floating IPs",
    ),
    (
        "external-net",
        "Neutron external network",
        "router:external on networks",
    ),
    (
        "ext-gw-mode",
        "Neutron L3 Configurable external gateway mode",
        "enable_snat on router gateways",
    ),
    (
        "extra_dhcp_opt",
        "Neutron Extra DHCP options",
        "extra_dhcp_opts on ports",
    ),
    ("extraroute", "Neutron Extra Route", "routes on routers"),
    (
        "extraroute-atomic",
        "Atomically add/remove extra routes",
        "add_extraroutes and remove_extraroutes",
    ),
    (
        "filter-validation",
        "Filter parameters validation",
        "Unknown filters are rejected with 400",
    ),
    (
        "flow_classifier",
        "Flow Classifier",
        "Flow Classifier Extension: the traffic a port chain takes",
    ),
    (
        "floating-ip-port-forwarding",
        "Floating IP Port Forwarding",
        "Allow port forwarding from floating IP port to an internal port",
    ),
    (
        "floating-ip-port-forwarding-description",
        "Floating IP Port Forwarding description",
        "description on port forwardings",
    ),
    (
        "floating-ip-port-forwarding-detail",
        "Floating IP Port Forwarding detail",
        "id and internal_port_id in a floating IP's port_forwardings",
    ),
    ("net-mtu", "Network MTU", "mtu on networks"),
    (
        "fwaas_v2",
        "FWaaS v2",
        "Provides support for firewall-as-a-service version 2",
    ),
    (
        "net-mtu-writable",
        "Network MTU (writable)",
        "mtu can be set on networks",
    ),
    (
        "network-ip-availability",
        "Network IP Availability",
        "Total and used addresses per network and subnet",
    ),
    (
        "network_availability_zone",
        "Network Availability Zone",
        "availability_zone_hints and availability_zones on networks",
    ),
    (
        "pagination",
        "Pagination support",
        "limit and marker on collections",
    ),
    (
        "port-security",
        "Port Security",
        "port_security_enabled on networks and ports",
    ),
    (
        "project-id",
        "project_id field enabled",
        "project_id beside tenant_id",
    ),
    (
        "provider",
        "Provider Network",
        "provider:network_type, physical_network, segmentation_id",
    ),
    (
        "quota-check-limit",
        "Quota engine limit check",
        "check_limit in quota updates: refuse a limit below the current usage",
    ),
    (
        "quota_details",
        "Quota details management support",
        "used, limit and reserved per resource",
    ),
    (
        "qos",
        "Quality of Service",
        "QoS policies with bandwidth limit, DSCP marking and minimum bandwidth rules; qos_policy_id on ports and networks",
    ),
    (
        "qos-bw-limit-direction",
        "Direction for QoS bandwidth limit rule",
        "direction (egress or ingress) on bandwidth limit rules",
    ),
    (
        "qos-bw-minimum-ingress",
        "Ingress direction for QoS minimum bandwidth rule",
        "direction ingress on minimum bandwidth rules",
    ),
    (
        "qos-default",
        "QoS default policy",
        "is_default on QoS policies: a project's new networks take its default policy",
    ),
    (
        "qos-port-network-policy",
        "QoS port network policy ID",
        "qos_network_policy_id on ports",
    ),
    (
        "qos-rule-type-details",
        "Details of QoS rule types",
        "drivers and their parameters on QoS rule types (admins)",
    ),
    (
        "qos-rules-alias",
        "Quality of Service rules alias API",
        "GET, PUT and DELETE of QoS rules without their policy id",
    ),
    (
        "quotas",
        "Quota management support",
        "Per-project limits on networks, subnets, ports, routers, floating IPs, security groups and RBAC policies",
    ),
    (
        "rbac-policies",
        "RBAC Policies",
        "Allows creation and modification of policies that control project access to resources.",
    ),
    (
        "rbac-security-groups",
        "Add security_group type to network RBAC",
        "Add security_group type to network RBAC",
    ),
    (
        "revision-if-match",
        "If-Match constraints based on revision_number",
        "If-Match: revision_number=N",
    ),
    (
        "router",
        "Neutron L3 Router",
        "Routers, interfaces and floating IPs",
    ),
    (
        "router_availability_zone",
        "Router Availability Zone",
        "availability_zone_hints and availability_zones on routers",
    ),
    (
        "security-group",
        "security-group",
        "Security groups and rules",
    ),
    (
        "security-groups-default-rules",
        "Default rules for security groups",
        "Templates of the rules new security groups get",
    ),
    (
        "security-groups-normalized-cidr",
        "Normalized CIDR field for security group rules",
        "normalized_cidr on security group rules",
    ),
    (
        "security-groups-remote-address-group",
        "Remote address group id field for security group rules",
        "remote_address_group_id on security group rules",
    ),
    (
        "service-type",
        "Neutron Service Type Management",
        "The service providers: this project's distributed routers",
    ),
    (
        "sfc",
        "Service Function Chaining",
        "Service Function Chain extension: port pairs, port pair groups and port chains, steered with MPLS between hosts",
    ),
    (
        "sorting",
        "Sorting support",
        "sort_key and sort_dir on collections",
    ),
    (
        "standard-attr-description",
        "standard-attr-description",
        "description on every resource",
    ),
    (
        "standard-attr-fwaas-v2",
        "Standard Attribute FWaaS v2 Extension",
        "Add standard attributes to FWaaS v2 resources",
    ),
    (
        "standard-attr-revisions",
        "Resource revision numbers",
        "revision_number on every resource",
    ),
    (
        "standard-attr-tag",
        "Tag support for resources with standard attribute",
        "Tags on networks, subnets, ports, routers, floating IPs, security groups, subnet pools and trunks",
    ),
    (
        "standard-attr-timestamp",
        "Resource timestamps",
        "created_at and updated_at",
    ),
    (
        "stateful-security-group",
        "Stateful security group",
        "stateful on security groups: a stateless group's rules filter without conntrack",
    ),
    (
        "subnet-external-network",
        "Subnet External Network",
        "Subnets of external networks are visible to every project (a router gateway's)",
    ),
    (
        "subnet_allocation",
        "Subnet Allocation",
        "Subnet pools: subnets take their CIDR from a pool's prefixes",
    ),
    (
        "subnetpool-prefix-ops",
        "Subnetpool prefix operations",
        "add_prefixes and remove_prefixes on subnet pools",
    ),
    (
        "taas",
        "Neutron Tap as a Service",
        "Neutron Tap as a Service Extension: tap services and tap flows (copies by a group, between hosts over the tunnel with the service's own key)",
    ),
    (
        "taas-vlan-filter",
        "VLAN filtering for Neutron Tap as a Service",
        "vlan_filter on tap flows (stored and shown; every frame is copied, as upstream's OVS driver does)",
    ),
    (
        "tag-creation",
        "Tag support for resource creation",
        "tags in create requests",
    ),
    (
        "trunk",
        "Trunk Extension",
        "Provides support for trunk ports",
    ),
    (
        "trunk-details",
        "Trunk port details",
        "Expose trunk port details",
    ),
];

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:9696");
    format!("http://{host}")
}

pub async fn versions(headers: HeaderMap) -> Json<Value> {
    let base = base_url(&headers);
    Json(json!({"versions": [{
        "id": "v2.0", "status": "CURRENT",
        "links": [{"rel": "self", "href": format!("{base}/v2.0/")}],
    }]}))
}

pub async fn v2(headers: HeaderMap) -> Json<Value> {
    let base = base_url(&headers);
    let resources: Vec<Value> = [
        ("network", "networks"),
        ("subnet", "subnets"),
        ("port", "ports"),
        ("router", "routers"),
        ("floatingip", "floatingips"),
        ("security_group", "security-groups"),
        ("security_group_rule", "security-group-rules"),
        ("agent", "agents"),
        ("rbac_policy", "rbac-policies"),
        ("address_group", "address-groups"),
        (
            "default_security_group_rule",
            "default-security-group-rules",
        ),
        ("quota", "quotas"),
        ("network_ip_availability", "network-ip-availabilities"),
        ("service_provider", "service-providers"),
        ("availability_zone", "availability_zones"),
        ("subnetpool", "subnetpools"),
        ("address_scope", "address-scopes"),
        ("policy", "qos/policies"),
        ("rule_type", "qos/rule-types"),
        ("trunk", "trunks"),
        ("firewall_group", "fwaas/firewall_groups"),
        ("firewall_policy", "fwaas/firewall_policies"),
        ("firewall_rule", "fwaas/firewall_rules"),
        ("bgp_speaker", "bgp-speakers"),
        ("bgp_peer", "bgp-peers"),
        ("port_pair", "sfc/port_pairs"),
        ("port_pair_group", "sfc/port_pair_groups"),
        ("flow_classifier", "sfc/flow_classifiers"),
        ("port_chain", "sfc/port_chains"),
        ("tap_service", "taas/tap_services"),
        ("tap_flow", "taas/tap_flows"),
    ]
    .into_iter()
    .map(|(name, coll)| {
        json!({"name": name, "collection": coll,
               "links": [{"rel": "self", "href": format!("{base}/v2.0/{coll}")}]})
    })
    .collect();
    Json(json!({"resources": resources}))
}

fn extension_json(alias: &str, name: &str, description: &str) -> Value {
    json!({"alias": alias, "name": name, "description": description,
           "updated": "2026-11-21T00:00:00-00:00", "links": []})
}

pub async fn extensions() -> Json<Value> {
    let list: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(a, n, d)| extension_json(a, n, d))
        .collect();
    Json(json!({"extensions": list}))
}

pub async fn extension(Path(alias): Path<String>) -> Result<Json<Value>, ApiError> {
    EXTENSIONS
        .iter()
        .find(|(a, _, _)| *a == alias)
        .map(|(a, n, d)| Json(json!({"extension": extension_json(a, n, d)})))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "ExtensionNotFound",
                format!("Extension with alias {alias} does not exist"),
            )
        })
}

pub async fn not_found(State(_): State<Arc<Api>>, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "HTTPNotFound",
        format!("The resource could not be found: {}", uri.path()),
    )
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTPMethodNotAllowed",
        format!("The method {method} is not allowed on {}", uri.path()),
    )
}

/// `GET /v2.0/service-providers` (the `service-type` extension): the one provider of
/// each service built here. Routers are this project's own distributed routers; there
/// are no other providers to choose from.
pub async fn service_providers(
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let query = Query::parse(q.as_deref(), &["service_type", "name", "default"])?;
    let items =
        vec![json!({"service_type": "L3_ROUTER_NAT", "name": "dragonflow", "default": true})]
            .into_iter()
            .filter_map(|v| v.as_object().cloned())
            .collect();
    Ok(Json(query.respond(
        "service_providers",
        &base_url(&headers),
        items,
    )?))
}
