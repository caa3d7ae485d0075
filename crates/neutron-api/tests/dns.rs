//! `dns-integration` and `dns-domain-ports`, in process: `dns_name` checked and lowercased
//! as Neutron does, `dns_assignment` under the configured domain (`host-<address>` for a
//! port with no name), `dns_domain` on networks and ports, a name not unique on its network
//! (as in Neutron) and the read-only assignment.

mod common;

use common::{Cloud, OWNER, Who};
use neutron_api::ApiConfig;
use serde_json::{Value, json};

impl Cloud {
    fn with_domain(domain: &str) -> Cloud {
        Cloud::with_config(ApiConfig {
            dns_domain: domain.into(),
            ..ApiConfig::default()
        })
    }

    /// A network with an IPv4 and an IPv6 subnet.
    async fn network(&self, who: Who) -> String {
        let n = self
            .made(who, "networks", json!({"network": {"name": "n"}}))
            .await;
        let id = n["id"].as_str().unwrap().to_string();
        for (cidr, v) in [("10.0.0.0/24", 4), ("fd00::/64", 6)] {
            self.made(
                who,
                "subnets",
                json!({"subnet": {"network_id": id, "cidr": cidr, "ip_version": v}}),
            )
            .await;
        }
        id
    }

    async fn port(&self, who: Who, net: &str, extra: Value) -> (u16, Value) {
        let mut body = json!({"network_id": net});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, v) = self
            .send(who, "POST", "/v2.0/ports", json!({ "port": body }))
            .await;
        let port = v.get("port").cloned();
        (status, port.unwrap_or(v))
    }
}

#[tokio::test]
async fn a_port_is_named_under_the_configured_domain() {
    let c = Cloud::with_domain("example.org");
    let net = c.network(OWNER).await;
    let (status, p) = c.port(OWNER, &net, json!({"dns_name": "VM1"})).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["dns_name"], "vm1", "lowercased, as Neutron converts it");
    assert_eq!(p["dns_domain"], "");
    let a = p["dns_assignment"].as_array().unwrap();
    assert_eq!(a.len(), 2, "one per fixed IP: {p}");
    for (entry, ip) in a.iter().zip(p["fixed_ips"].as_array().unwrap()) {
        assert_eq!(entry["ip_address"], ip["ip_address"]);
        assert_eq!(entry["hostname"], "vm1");
        assert_eq!(entry["fqdn"], "vm1.example.org.");
    }
    // No name: host-<address with dashes>, IPv6 colons too.
    let (_, q) = c.port(OWNER, &net, json!({})).await;
    assert_eq!(q["dns_name"], "");
    for entry in q["dns_assignment"].as_array().unwrap() {
        let ip = entry["ip_address"].as_str().unwrap();
        let host = format!("host-{}", ip.replace(['.', ':'], "-"));
        assert_eq!(entry["hostname"], host.as_str());
        assert_eq!(entry["fqdn"], format!("{host}.example.org."));
    }
    // A fully qualified name within the domain is kept as it is.
    let (status, r) = c
        .port(OWNER, &net, json!({"dns_name": "vm2.example.org."}))
        .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["dns_assignment"][0]["fqdn"], "vm2.example.org.");
    // The name follows a PUT, and shows in a GET.
    let id = p["id"].as_str().unwrap();
    let (status, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/ports/{id}"),
            json!({"port": {"dns_name": "web"}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (_, v) = c
        .call(OWNER, "GET", &format!("/v2.0/ports/{id}"), None)
        .await;
    assert_eq!(v["port"]["dns_assignment"][0]["fqdn"], "web.example.org.");
    // Filter by name.
    let (_, v) = c.call(OWNER, "GET", "/v2.0/ports?dns_name=web", None).await;
    assert_eq!(v["ports"].as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test]
async fn the_default_domain_is_openstacklocal() {
    let c = Cloud::with_domain("openstacklocal");
    let net = c.network(OWNER).await;
    let (_, p) = c.port(OWNER, &net, json!({"dns_name": "vm1"})).await;
    assert_eq!(p["dns_assignment"][0]["fqdn"], "vm1.openstacklocal.");
    assert_eq!(ApiConfig::default().dns_domain, "openstacklocal");
}

#[tokio::test]
async fn bad_names_and_domains_are_refused_as_neutron_does() {
    let c = Cloud::with_domain("example.org");
    let net = c.network(OWNER).await;
    for bad in [
        json!("-vm"),
        json!("vm_1"),
        json!("a..b"),
        json!("vm1.123"),
        json!("x".repeat(64)),
        json!("vm1.other.org."),
        json!(7),
    ] {
        let (status, v) = c.port(OWNER, &net, json!({ "dns_name": bad })).await;
        assert_eq!(status, 400, "{bad}: {v}");
    }
    for bad in [json!("example.org"), json!("ex_ample.org."), json!(["a."])] {
        let (status, v) = c
            .send(
                OWNER,
                "POST",
                "/v2.0/networks",
                json!({"network": {"dns_domain": bad}}),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {v}");
        let (status, v) = c.port(OWNER, &net, json!({ "dns_domain": bad })).await;
        assert_eq!(status, 400, "{bad}: {v}");
    }
    let (status, v) = c.port(OWNER, &net, json!({"dns_assignment": []})).await;
    assert_eq!(status, 400, "read-only: {v}");
    let (_, p) = c.port(OWNER, &net, json!({})).await;
    let id = p["id"].as_str().unwrap();
    let (status, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/ports/{id}"),
            json!({"port": {"dns_assignment": []}}),
        )
        .await;
    assert_eq!(status, 400, "read-only: {v}");
}

#[tokio::test]
async fn domains_are_kept_on_networks_and_ports() {
    let c = Cloud::with_domain("example.org");
    let n = c
        .made(
            OWNER,
            "networks",
            json!({"network": {"dns_domain": "Corp.Example.org."}}),
        )
        .await;
    assert_eq!(n["dns_domain"], "corp.example.org.");
    let id = n["id"].as_str().unwrap();
    let (status, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/networks/{id}"),
            json!({"network": {"dns_domain": ""}}),
        )
        .await;
    assert_eq!(
        (status, &v["network"]["dns_domain"]),
        (200, &json!("")),
        "{v}"
    );
    let (status, p) = c
        .port(OWNER, id, json!({"dns_domain": "a.example.org."}))
        .await;
    assert_eq!(
        (status, &p["dns_domain"]),
        (201, &json!("a.example.org.")),
        "{p}"
    );
    let pid = p["id"].as_str().unwrap();
    let (_, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/ports/{pid}"),
            json!({"port": {"dns_domain": "b.example.org."}}),
        )
        .await;
    assert_eq!(v["port"]["dns_domain"], "b.example.org.");
}

#[tokio::test]
async fn a_name_may_be_given_twice_on_a_network_as_in_neutron() {
    // Neutron's own suite (`test_create_update_port_with_dns_name` after
    // `..._with_dns_domain`, one network) renames a second port to a name another holds.
    let c = Cloud::with_domain("example.org");
    let net = c.network(OWNER).await;
    let (_, p) = c.port(OWNER, &net, json!({"dns_name": "vm1"})).await;
    let (status, v) = c.port(OWNER, &net, json!({"dns_name": "VM1"})).await;
    assert_eq!((status, &v["dns_name"]), (201, &json!("vm1")), "{v}");
    let (_, q) = c.port(OWNER, &net, json!({})).await;
    let q_id = q["id"].as_str().unwrap();
    let (status, v) = c
        .send(
            OWNER,
            "PUT",
            &format!("/v2.0/ports/{q_id}"),
            json!({"port": {"dns_name": "vm1"}}),
        )
        .await;
    assert_eq!(
        (status, &v["port"]["dns_name"]),
        (200, &json!("vm1")),
        "{v}"
    );
    let p_id = p["id"].as_str().unwrap();
    let (status, _) = c
        .call(OWNER, "DELETE", &format!("/v2.0/ports/{p_id}"), None)
        .await;
    assert_eq!(status, 204);
}
