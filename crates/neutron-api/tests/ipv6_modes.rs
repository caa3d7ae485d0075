//! Subnet IPv6 modes as Neutron validates them: both set must be equal, neither without
//! DHCP (nor DHCP turned off under them), none on IPv4, a /64 for the EUI-64 modes (either
//! mode counts), and EUI-64 addresses from the port MAC where either mode says so.

mod common;

use common::{Cloud, OWNER, kind};
use serde_json::{Value, json};

async fn network(c: &Cloud) -> Value {
    c.made(OWNER, "networks", json!({"network": {"name": "n"}}))
        .await["id"]
        .clone()
}

async fn subnet(c: &Cloud, net: &Value, attrs: Value) -> (u16, Value) {
    let mut body = json!({"network_id": net, "ip_version": 6, "cidr": "fd00:1::/64"});
    body.as_object_mut()
        .unwrap()
        .extend(attrs.as_object().unwrap().clone());
    c.send(OWNER, "POST", "/v2.0/subnets", json!({ "subnet": body }))
        .await
}

fn message(v: &Value) -> &str {
    v["NeutronError"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn mode_combinations_get_neutrons_errors() {
    let c = Cloud::new();
    let net = network(&c).await;
    let cases = [
        (
            json!({"ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"}),
            "Invalid input for operation: ipv6_ra_mode set to 'slaac' with ipv6_address_mode set to 'dhcpv6-stateful' is not valid. If both attributes are set, they must be the same value.",
        ),
        (
            json!({"ipv6_address_mode": "slaac", "enable_dhcp": false}),
            "Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False.",
        ),
        (
            json!({"ipv6_ra_mode": "dhcpv6-stateless", "cidr": "fd00:1::/80"}),
            "Invalid input for operation: Invalid CIDR fd00:1::/80 for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64.",
        ),
        (
            json!({"ipv6_ra_mode": "slaac", "ip_version": 4, "cidr": "10.0.0.0/24"}),
            "Invalid input for operation: ipv6_ra_mode is not valid when ip_version is 4.",
        ),
        (
            json!({"ipv6_address_mode": "slaac", "ip_version": 4, "cidr": "10.0.0.0/24"}),
            "Invalid input for operation: ipv6_address_mode is not valid when ip_version is 4.",
        ),
    ];
    for (attrs, want) in cases {
        let (status, v) = subnet(&c, &net, attrs.clone()).await;
        assert_eq!(status, 400, "{attrs}: {v}");
        assert_eq!(kind(&v), "InvalidInput", "{attrs}: {v}");
        assert_eq!(message(&v), want, "{attrs}");
    }
    // A stateful subnet may be any size; an RA-only mode (an external router advertises
    // when only the address mode is set, OpenStack when only the RA mode is) is accepted.
    for attrs in [
        json!({"ipv6_ra_mode": "dhcpv6-stateful", "ipv6_address_mode": "dhcpv6-stateful", "cidr": "fd00:2::/80"}),
        json!({"ipv6_address_mode": "slaac", "cidr": "fd00:3::/64"}),
        json!({"ipv6_ra_mode": "slaac", "cidr": "fd00:4::/64"}),
    ] {
        let (status, v) = subnet(&c, &net, attrs.clone()).await;
        assert_eq!(status, 201, "{attrs}: {v}");
    }
}

#[tokio::test]
async fn dhcp_cannot_be_turned_off_under_a_mode() {
    let c = Cloud::new();
    let net = network(&c).await;
    let (_, v) = subnet(
        &c,
        &net,
        json!({"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
    )
    .await;
    let id = v["subnet"]["id"].as_str().unwrap().to_string();
    let (status, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/subnets/{id}"),
            json!({"subnet": {"enable_dhcp": false}}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        message(&v),
        "Invalid input for operation: Cannot disable enable_dhcp with ipv6 attributes set."
    );
}

#[tokio::test]
async fn either_eui64_mode_gives_the_port_its_eui64_address() {
    let c = Cloud::new();
    let net = network(&c).await;
    let (status, v) = subnet(&c, &net, json!({"ipv6_ra_mode": "slaac"})).await;
    assert_eq!(status, 201, "{v}");
    let port = c
        .made(
            OWNER,
            "ports",
            json!({"port": {"network_id": net, "mac_address": "fa:16:3e:12:34:56"}}),
        )
        .await;
    assert_eq!(
        port["fixed_ips"][0]["ip_address"], "fd00:1::f816:3eff:fe12:3456",
        "{port}"
    );
}
